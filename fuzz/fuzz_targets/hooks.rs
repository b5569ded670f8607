//! What a hook server may answer and what a viewer's URL may carry: `parse_response` on the
//! whole answer and on prefixes of it (as reads arrive), then the verdict; the HLS query
//! helpers (`session_of`, `without_session`, `query_object`), a session id check, the playlist
//! rewrite and `HookUrl::parse` on the same bytes as text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shardcast::hooks::{
    parse_response, playlist_with_session, query_object, session_of, without_session, HookUrl,
    SessionSigner,
};

fuzz_target!(|data: &[u8]| {
    for eof in [false, true] {
        if let Ok(Some(reply)) = parse_response(data, eof) {
            let _ = reply.verdict();
        }
    }
    for cut in [data.len() / 3, data.len() / 2, data.len().saturating_sub(1)] {
        let _ = parse_response(&data[..cut], false);
    }
    let text = String::from_utf8_lossy(data);
    // What the hook is told of an HLS request never carries a session id.
    let told = without_session(&text);
    assert!(session_of(&told).is_none(), "{told:?}");
    let _ = query_object(&text);
    // An id this signer did not mint is refused, whatever its shape (no MAC can be guessed).
    if let Some(id) = session_of(&text) {
        let signer = SessionSigner::new([7; 32]);
        assert!(!signer.check(id, "live/movie", 0), "forged id accepted: {id:?}");
    }
    let _ = playlist_with_session(&text, "1000.0123456789abcdef0123456789abcdef");
    let _ = HookUrl::parse(&text);
});
