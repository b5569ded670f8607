//! parse_request with small limits on arbitrary bytes; a parsed request is then taken through
//! what the API does with it (decoded path, query, statics resolve, token extraction).
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::api::{jwt, statics};
use shardcast::http::{parse_query, parse_request, preflight, Limits};

const LIMITS: Limits = Limits {
    max_header_bytes: 8 << 10,
    max_body_bytes: 16 << 10,
};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    // Pipelined requests: parse until the buffer is used up or incomplete.
    while let Ok(Some((req, used))) = parse_request(rest, &LIMITS) {
        assert!(used > 0 && used <= rest.len());
        assert!(req.body.len() <= LIMITS.max_body_bytes);
        rest = &rest[used..];
        let _ = req.keep_alive();
        let _ = parse_query(&req.query);
        let _ = jwt::request_token(&req);
        let _ = preflight(&req);
        if let Ok(path) = req.decoded_path() {
            let _ = statics::resolve(&req.method, &path, &req.path, &req.query);
        }
    }
});
