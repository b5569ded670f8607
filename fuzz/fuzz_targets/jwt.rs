//! JWT verification of arbitrary tokens (HS256 verifier; the header is read before the
//! signature check, so malformed headers and claims reach our code).
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::api::jwt::{JwtAuth, JwtKey};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let auth = JwtAuth::new("HS256", JwtKey::Secret(b"fuzz-secret")).expect("HS256 verifier");
    let _ = auth.verify(token, 1_700_000_000);
});
