//! `/statics/` path resolution of arbitrary (decoded and raw) paths: must never panic, and a
//! resolved file must stay inside the statics directory (no `..`, no absolute part).
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::api::statics::{content_type, resolve};
use shardcast::http::percent_decode;
use std::path::Component;

fuzz_target!(|input: (bool, &str, &str)| {
    let (head, raw, query) = input;
    let method = if head { "HEAD" } else { "GET" };
    let decoded = percent_decode(raw).unwrap_or_else(|_| raw.to_owned());
    if let Some(Ok(path)) = resolve(method, &decoded, raw, query) {
        let rel = path.relative();
        assert!(
            rel.components().all(|c| matches!(c, Component::Normal(_))),
            "{rel:?}"
        );
        let _ = content_type(path.file_name());
    }
});
