//! Percent-decoding of paths and `application/x-www-form-urlencoded` query strings.

use super::HttpError;

/// Strictly percent-decodes `s` (RFC 3986 §2.1): every `%` must be followed by two hex
/// digits and the decoded bytes must be UTF-8. `+` is left as is (it only means a space in
/// form data, see [`parse_query`]).
pub fn percent_decode(s: &str) -> Result<String, HttpError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hi = bytes.next().and_then(hex_value);
        let lo = bytes.next().and_then(hex_value);
        match (hi, lo) {
            (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
            _ => return Err(HttpError::BadRequest("invalid percent-encoding".into())),
        }
    }
    String::from_utf8(out)
        .map_err(|_| HttpError::BadRequest("percent-decoded text is not valid UTF-8".into()))
}

/// Splits a query string (or urlencoded form body) into decoded `(name, value)` pairs, in
/// order. `+` means a space. Leniently, a name or value whose escapes are invalid keeps its raw
/// text instead of failing the whole request. Empty segments (`a=1&&b=2`) are skipped, like
/// Go's `url.ParseQuery`; a segment without `=` has an empty value.
pub fn parse_query(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            (decode_component(name), decode_component(value))
        })
        .collect()
}

/// Decodes one form component (`+` = space), falling back to the raw text.
fn decode_component(raw: &str) -> String {
    percent_decode(&raw.replace('+', " ")).unwrap_or_else(|_| raw.to_owned())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_including_dot_segments() {
        assert_eq!(percent_decode("/a%2e%2e/%2E%2E").unwrap(), "/a../..");
        assert_eq!(percent_decode("a%20b+c").unwrap(), "a b+c");
        assert_eq!(percent_decode("%C3%A9").unwrap(), "é");
        assert_eq!(percent_decode("").unwrap(), "");
    }

    #[test]
    fn rejects_bad_escapes_and_invalid_utf8() {
        for bad in ["%", "%4", "%zz", "a%g1", "%ff", "%C3"] {
            assert!(
                matches!(percent_decode(bad), Err(HttpError::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn query_plus_is_space_and_bad_escapes_keep_raw_text() {
        let pairs = parse_query("room=a+b%2Bc&&x&bad=%zz&room=second&=v");
        let expected = [
            ("room", "a b+c"),
            ("x", ""),
            ("bad", "%zz"),
            ("room", "second"),
            ("", "v"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs, expected);
        assert!(parse_query("").is_empty());
    }
}
