//! JWT authentication of the API listener (livego.md §2.2), sans-IO: the caller passes the
//! request and the current Unix time; nothing here reads a file or a clock.
//!
//! A token comes from `Authorization: Bearer <token>` (scheme case-insensitive, exactly two
//! fields) or else from the `jwt` query parameter, as livego's middleware takes it. A malformed
//! `Authorization` header is refused even when `?jwt=` is present, as in livego.
//!
//! Verification:
//! - the header's `alg` must equal the configured algorithm, so a token can never choose how
//!   it is checked (no HS256-with-the-RSA-public-key confusion); `none` is always refused;
//! - the signature is checked by `jsonwebtoken` with the configured key;
//! - `exp` and `nbf` are checked here when present, with no leeway: a token is expired from
//!   the second `exp` names (RFC 7519 §4.1.4) and valid from the second `nbf` names. A claim
//!   that is present but not a number is refused (it is not skipped as if absent). Tokens
//!   without `exp` are accepted, as in livego. `iat`, `aud`, `iss` and `sub` are not checked.
//!
//! Failures carry livego's (jwt-go's) messages where it had one; the API answers them as 403
//! `{"status":403,"data":"<reason>"}`.

use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::http::{parse_query, Request};

/// The algorithm names `jwt.algorithm` accepts, spelled as in a token header.
pub const ALGORITHMS: [&str; 12] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA",
];

/// No token in the request (livego's message).
pub const TOKEN_NOT_FOUND: &str = "Required authorization token not found";
/// An `Authorization` header that is not `Bearer <token>` (livego's message).
pub const BAD_AUTH_HEADER: &str = "Authorization header format must be Bearer {token}";

/// The canonical spelling of an algorithm name (case-insensitive), if it is supported.
pub fn normalize_algorithm(name: &str) -> Option<&'static str> {
    ALGORITHMS
        .iter()
        .copied()
        .find(|alg| alg.eq_ignore_ascii_case(name))
}

/// True for the HMAC algorithms, which verify with `jwt.secret`.
pub fn is_hmac(algorithm: &str) -> bool {
    algorithm.starts_with("HS")
}

/// What tokens are verified with.
#[derive(Debug, Clone, Copy)]
pub enum JwtKey<'a> {
    /// The shared secret of HS256/HS384/HS512 (`jwt.secret`).
    Secret(&'a [u8]),
    /// The text of a PEM public key (`jwt.public_key`): SPKI `PUBLIC KEY`, or PKCS#1
    /// `RSA PUBLIC KEY`.
    PublicPem(&'a str),
}

/// The kind of a public key, read from its PEM without trusting anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// The algorithm used when `jwt.algorithm` is empty.
    pub fn default_algorithm(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RS256",
            KeyKind::P256 => "ES256",
            KeyKind::P384 => "ES384",
            KeyKind::Ed25519 => "EdDSA",
        }
    }

    /// Whether tokens signed with `algorithm` can be verified with this kind of key.
    pub fn fits(self, algorithm: &str) -> bool {
        match self {
            KeyKind::Rsa => algorithm.starts_with("RS") || algorithm.starts_with("PS"),
            KeyKind::P256 => algorithm == "ES256",
            KeyKind::P384 => algorithm == "ES384",
            KeyKind::Ed25519 => algorithm == "EdDSA",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            KeyKind::Rsa => "an RSA key (RS256, RS384, RS512, PS256, PS384, PS512)",
            KeyKind::P256 => "an EC P-256 key (ES256)",
            KeyKind::P384 => "an EC P-384 key (ES384)",
            KeyKind::Ed25519 => "an Ed25519 key (EdDSA)",
        }
    }
}

/// DER of the AlgorithmIdentifier OIDs we recognize in an SPKI public key.
const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2B, 0x65, 0x70];

/// The kind of the public key in `pem_text`. Errors say what was found instead (a private key
/// or a certificate given by mistake, an unsupported curve).
pub fn public_key_kind(pem_text: &str) -> Result<KeyKind, String> {
    let block = pem::parse(pem_text).map_err(|e| format!("not a PEM file: {e}"))?;
    match block.tag() {
        "RSA PUBLIC KEY" => Ok(KeyKind::Rsa),
        "PUBLIC KEY" => spki_kind(block.contents()),
        other => Err(format!(
            "expected a public key (PEM `PUBLIC KEY` or `RSA PUBLIC KEY`), found `{other}`"
        )),
    }
}

/// The key kind named by an SPKI's AlgorithmIdentifier:
/// `SEQUENCE { SEQUENCE { OID algorithm, parameters }, BIT STRING key }`.
fn spki_kind(der: &[u8]) -> Result<KeyKind, String> {
    let unreadable = || "the public key is not a valid SubjectPublicKeyInfo".to_owned();
    let (spki, _) = der_element(der, 0x30).ok_or_else(unreadable)?;
    let (algorithm_id, _) = der_element(spki, 0x30).ok_or_else(unreadable)?;
    let (oid, params) = der_element(algorithm_id, 0x06).ok_or_else(unreadable)?;
    let curve = der_element(params, 0x06).map(|(curve, _)| curve);
    match (oid, curve) {
        (OID_RSA, _) => Ok(KeyKind::Rsa),
        (OID_ED25519, _) => Ok(KeyKind::Ed25519),
        (OID_EC, Some(OID_P256)) => Ok(KeyKind::P256),
        (OID_EC, Some(OID_P384)) => Ok(KeyKind::P384),
        (OID_EC, _) => Err("unsupported elliptic curve (use P-256 or P-384)".to_owned()),
        _ => Err("unsupported public key type (use RSA, EC P-256/P-384 or Ed25519)".to_owned()),
    }
}

/// One DER element with tag `tag` at the front of `input`: `(contents, rest)`. Definite
/// lengths only (DER has no other), at most four length bytes.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len_byte, rest) = rest.split_first()?;
    let (len, rest) = if len_byte < 0x80 {
        (usize::from(len_byte), rest)
    } else {
        let count = usize::from(len_byte & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// A configured verifier: one algorithm, one key. Shared by every shard.
pub struct JwtAuth {
    name: &'static str,
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key (an HMAC secret).
        f.debug_struct("JwtAuth")
            .field("algorithm", &self.name)
            .finish()
    }
}

impl JwtAuth {
    /// A verifier for `algorithm` (a name from [`ALGORITHMS`], any case) with `key`. Errors
    /// (an unknown algorithm, a key that does not fit it, an unusable PEM) are for the
    /// operator, at start-up.
    pub fn new(algorithm: &str, key: JwtKey<'_>) -> Result<JwtAuth, String> {
        let name = normalize_algorithm(algorithm)
            .ok_or_else(|| format!("`{algorithm}` is not supported ({})", ALGORITHMS.join(", ")))?;
        let alg = Algorithm::from_str(name).map_err(|e| format!("{name}: {e}"))?;
        let key = decoding_key(name, key)?;
        let mut validation = Validation::new(alg);
        // Time claims are checked by `check_time` against the caller's clock, strictly.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        Ok(JwtAuth {
            name,
            key,
            validation,
        })
    }

    /// The configured algorithm's canonical name.
    pub fn algorithm(&self) -> &'static str {
        self.name
    }

    /// Whether `req` carries a valid token at Unix time `now` (seconds). The error is the
    /// reason to send back.
    pub fn authorize(&self, req: &Request, now: u64) -> Result<(), String> {
        let token = request_token(req).map_err(str::to_owned)?;
        self.verify(&token, now).map(drop)
    }

    /// The claims of `token` if it is valid at Unix time `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<Map<String, Value>, String> {
        let alg = header_alg(token)?;
        if alg.eq_ignore_ascii_case("none") {
            return Err("'none' signature type is not allowed".to_owned());
        }
        if alg != self.name {
            return Err(format!(
                "Expected {} signing method but token specified {alg}",
                self.name
            ));
        }
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| decode_error(e.kind()))?;
        check_time(&data.claims, now)?;
        Ok(data.claims)
    }
}

/// The decoding key for `name`, checking that the key's kind fits the algorithm.
fn decoding_key(name: &str, key: JwtKey<'_>) -> Result<DecodingKey, String> {
    match key {
        JwtKey::Secret(secret) if is_hmac(name) => Ok(DecodingKey::from_secret(secret)),
        JwtKey::Secret(_) => Err(format!("{name} needs jwt.public_key, not jwt.secret")),
        JwtKey::PublicPem(_) if is_hmac(name) => {
            Err(format!("{name} needs jwt.secret, not jwt.public_key"))
        }
        JwtKey::PublicPem(text) => {
            let kind = public_key_kind(text)?;
            if !kind.fits(name) {
                return Err(format!(
                    "{name} does not fit the public key, which is {}",
                    kind.describe()
                ));
            }
            let pem = text.as_bytes();
            let key = match kind {
                KeyKind::Rsa => DecodingKey::from_rsa_pem(pem),
                KeyKind::P256 | KeyKind::P384 => DecodingKey::from_ec_pem(pem),
                KeyKind::Ed25519 => DecodingKey::from_ed_pem(pem),
            };
            key.map_err(|e| format!("unusable public key: {e}"))
        }
    }
}

/// The token of a request: `Authorization: Bearer <t>` first, else `?jwt=<t>` (livego's
/// `FromFirst(FromAuthHeader, FromParameter("jwt"))`). An empty header or parameter counts
/// as absent.
pub fn request_token(req: &Request) -> Result<String, &'static str> {
    if let Some(value) = req.header("Authorization").filter(|v| !v.trim().is_empty()) {
        let mut fields = value.split_ascii_whitespace();
        return match (fields.next(), fields.next(), fields.next()) {
            (Some(scheme), Some(token), None) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(token.to_owned())
            }
            _ => Err(BAD_AUTH_HEADER),
        };
    }
    parse_query(&req.query)
        .into_iter()
        .find(|(name, _)| name == "jwt")
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
        .ok_or(TOKEN_NOT_FOUND)
}

/// The `alg` of a token's header, read before any verification so that a mismatch can be
/// named (and `none` refused) whatever the key.
fn header_alg(token: &str) -> Result<String, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("token contains an invalid number of segments".to_owned());
    };
    let malformed = |what: &str| format!("token is malformed: {what}");
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("header is not base64url"))?;
    let header: Value =
        serde_json::from_slice(&bytes).map_err(|_| malformed("header is not JSON"))?;
    match header.get("alg") {
        Some(Value::String(alg)) => Ok(alg.clone()),
        _ => Err(malformed("header has no alg")),
    }
}

/// The reason for a `jsonwebtoken` failure, in jwt-go's words where it had some.
fn decode_error(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "signature is invalid".to_owned(),
        ErrorKind::Base64(_) => "token is malformed: not base64url".to_owned(),
        ErrorKind::Json(_) => "token is malformed: claims are not valid".to_owned(),
        ErrorKind::Utf8(_) => "token is malformed: not UTF-8".to_owned(),
        ErrorKind::InvalidToken => "token is malformed".to_owned(),
        ErrorKind::InvalidClaimFormat(name) => format!("token has an invalid {name} claim"),
        _ => "The token isn't valid".to_owned(),
    }
}

/// `exp` and `nbf`, when present, against `now` (no leeway).
fn check_time(claims: &Map<String, Value>, now: u64) -> Result<(), String> {
    // Seconds since the epoch fit an f64 exactly for the next 285 million years.
    let now = now as f64;
    if numeric_claim(claims, "exp")?.is_some_and(|exp| now >= exp) {
        return Err("Token is expired".to_owned());
    }
    if numeric_claim(claims, "nbf")?.is_some_and(|nbf| now < nbf) {
        return Err("Token is not valid yet".to_owned());
    }
    Ok(())
}

/// A NumericDate claim; present but not a number is an error, never "absent".
fn numeric_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("token has an invalid {name} claim")),
        Some(_) => Err(format!("token has an invalid {name} claim (not a number)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, Limits};
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;
    const SECRET: &[u8] = b"a test secret of thirty-two bytes";
    const RSA_PRIVATE: &str = include_str!("../../tests/data/jwt/rsa_private.pem");
    const RSA_PUBLIC: &str = include_str!("../../tests/data/jwt/rsa_public.pem");
    const RSA_PUBLIC_PKCS1: &str = include_str!("../../tests/data/jwt/rsa_public_pkcs1.pem");
    const EC256_PRIVATE: &str = include_str!("../../tests/data/jwt/ec256_private.pem");
    const EC256_PUBLIC: &str = include_str!("../../tests/data/jwt/ec256_public.pem");
    const EC384_PRIVATE: &str = include_str!("../../tests/data/jwt/ec384_private.pem");
    const EC384_PUBLIC: &str = include_str!("../../tests/data/jwt/ec384_public.pem");
    const ED25519_PRIVATE: &str = include_str!("../../tests/data/jwt/ed25519_private.pem");
    const ED25519_PUBLIC: &str = include_str!("../../tests/data/jwt/ed25519_public.pem");

    fn hs(alg: &str) -> JwtAuth {
        JwtAuth::new(alg, JwtKey::Secret(SECRET)).unwrap()
    }

    fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
        encode(&Header::new(alg), claims, key).unwrap()
    }

    fn sign_hs(alg: Algorithm, claims: &Value) -> String {
        sign(alg, &EncodingKey::from_secret(SECRET), claims)
    }

    /// A token with any header and claims, signed with `SECRET` over HS256 regardless.
    fn forged(header: &Value, claims: &Value) -> String {
        let good = sign_hs(Algorithm::HS256, claims);
        let signature = good.rsplit('.').next().unwrap();
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{claims}.{signature}")
    }

    fn request(head: &str) -> Request {
        let limits = Limits {
            max_header_bytes: 8192,
            max_body_bytes: 0,
        };
        parse_request(head.as_bytes(), &limits).unwrap().unwrap().0
    }

    #[test]
    fn valid_tokens_pass_with_and_without_exp() {
        let auth = hs("HS256");
        let claims = json!({"sub": "ops", "exp": NOW + 60, "nbf": NOW});
        let got = auth
            .verify(&sign_hs(Algorithm::HS256, &claims), NOW)
            .unwrap();
        assert_eq!(got["sub"], "ops");
        assert!(auth
            .verify(&sign_hs(Algorithm::HS256, &json!({})), NOW)
            .is_ok());
        let float = json!({"exp": NOW as f64 + 0.5});
        assert!(auth.verify(&sign_hs(Algorithm::HS256, &float), NOW).is_ok());
        for (name, alg) in [("hs384", Algorithm::HS384), ("HS512", Algorithm::HS512)] {
            let auth = hs(name);
            assert!(auth.verify(&sign_hs(alg, &claims), NOW).is_ok(), "{name}");
        }
    }

    #[test]
    fn expiry_and_not_before_have_no_leeway() {
        let auth = hs("HS256");
        let check = |claims: Value| auth.verify(&sign_hs(Algorithm::HS256, &claims), NOW);
        assert_eq!(check(json!({"exp": NOW})).unwrap_err(), "Token is expired");
        assert_eq!(
            check(json!({"exp": NOW - 3600})).unwrap_err(),
            "Token is expired"
        );
        assert!(check(json!({"exp": NOW + 1})).is_ok());
        assert_eq!(
            check(json!({"nbf": NOW + 1})).unwrap_err(),
            "Token is not valid yet"
        );
        assert!(check(json!({"nbf": NOW})).is_ok());
    }

    #[test]
    fn time_claims_of_the_wrong_type_are_refused_not_ignored() {
        let auth = hs("HS256");
        for claims in [
            json!({"exp": "never"}),
            json!({"nbf": "99999999999"}),
            json!({"exp": null}),
            json!({"exp": [1]}),
        ] {
            let err = auth
                .verify(&sign_hs(Algorithm::HS256, &claims), NOW)
                .unwrap_err();
            // jsonwebtoken itself may already stumble on a non-scalar claim.
            let refused =
                err.starts_with("token has an invalid") || err.starts_with("token is malformed");
            assert!(refused, "{claims}: {err}");
        }
    }

    #[test]
    fn wrong_signature_is_refused() {
        let auth = hs("HS256");
        let other = EncodingKey::from_secret(b"another secret");
        let token = sign(Algorithm::HS256, &other, &json!({"exp": NOW + 60}));
        assert_eq!(
            auth.verify(&token, NOW).unwrap_err(),
            "signature is invalid"
        );
        // Claims changed after signing.
        let good = sign_hs(Algorithm::HS256, &json!({"room": "a"}));
        let parts: Vec<&str> = good.split('.').collect();
        let evil = URL_SAFE_NO_PAD.encode(json!({"room": "b"}).to_string());
        let tampered = format!("{}.{evil}.{}", parts[0], parts[2]);
        assert_eq!(
            auth.verify(&tampered, NOW).unwrap_err(),
            "signature is invalid"
        );
    }

    #[test]
    fn the_token_cannot_choose_its_algorithm() {
        let auth = hs("HS256");
        let token = sign_hs(Algorithm::HS512, &json!({}));
        assert_eq!(
            auth.verify(&token, NOW).unwrap_err(),
            "Expected HS256 signing method but token specified HS512"
        );
        // An RS256 verifier is not fooled by an HS256 token "signed" with its public key.
        let rsa = JwtAuth::new("RS256", JwtKey::PublicPem(RSA_PUBLIC)).unwrap();
        let confused = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
            &json!({}),
        );
        assert_eq!(
            rsa.verify(&confused, NOW).unwrap_err(),
            "Expected RS256 signing method but token specified HS256"
        );
    }

    #[test]
    fn alg_none_is_always_refused() {
        let auth = hs("HS256");
        for alg in ["none", "None", "NONE"] {
            let header = json!({"alg": alg, "typ": "JWT"});
            let claims = URL_SAFE_NO_PAD.encode(json!({"sub": "x"}).to_string());
            let header = URL_SAFE_NO_PAD.encode(header.to_string());
            for token in [
                format!("{header}.{claims}."),
                format!("{header}.{claims}.x"),
            ] {
                assert_eq!(
                    auth.verify(&token, NOW).unwrap_err(),
                    "'none' signature type is not allowed"
                );
            }
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let auth = hs("HS256");
        let segments = "token contains an invalid number of segments";
        for token in ["", "abc", "a.b", "a.b.c.d"] {
            assert_eq!(auth.verify(token, NOW).unwrap_err(), segments, "{token}");
        }
        for token in ["!!.b.c", "e30.b.c", "bm90IGpzb24.b.c"] {
            let err = auth.verify(token, NOW).unwrap_err();
            assert!(err.starts_with("token is malformed"), "{token}: {err}");
        }
        let not_object = forged(&json!({"alg": "HS256"}), &json!([1, 2]));
        assert!(auth.verify(&not_object, NOW).is_err());
        let bad_sig = format!(
            "{}.%%%",
            sign_hs(Algorithm::HS256, &json!({}))
                .rsplit_once('.')
                .unwrap()
                .0
        );
        assert!(auth.verify(&bad_sig, NOW).is_err());
    }

    #[test]
    fn token_from_header_or_query() {
        let token = |head: &str| request_token(&request(head));
        assert_eq!(
            token("GET / HTTP/1.1\r\nAuthorization: Bearer abc\r\n\r\n"),
            Ok("abc".to_owned())
        );
        assert_eq!(
            token("GET / HTTP/1.1\r\nauthorization:   bEaReR   abc  \r\n\r\n"),
            Ok("abc".to_owned())
        );
        assert_eq!(
            token("GET /x?a=1&jwt=q%2Eq&jwt=second HTTP/1.1\r\n\r\n"),
            Ok("q.q".to_owned())
        );
        assert_eq!(
            token("GET /x?jwt=q HTTP/1.1\r\nAuthorization: \r\n\r\n"),
            Ok("q".to_owned())
        );
        for bad in ["Basic abc", "Bearer", "Bearer a b", "abc", "Bearerabc"] {
            let head = format!("GET /x?jwt=q HTTP/1.1\r\nAuthorization: {bad}\r\n\r\n");
            assert_eq!(token(&head), Err(BAD_AUTH_HEADER), "{bad}");
        }
        assert_eq!(token("GET /x HTTP/1.1\r\n\r\n"), Err(TOKEN_NOT_FOUND));
        assert_eq!(token("GET /x?jwt= HTTP/1.1\r\n\r\n"), Err(TOKEN_NOT_FOUND));
    }

    #[test]
    fn authorize_combines_extraction_and_verification() {
        let auth = hs("HS256");
        let good = sign_hs(Algorithm::HS256, &json!({"exp": NOW + 10}));
        let head =
            format!("GET /control/get?room=a HTTP/1.1\r\nAuthorization: Bearer {good}\r\n\r\n");
        assert_eq!(auth.authorize(&request(&head), NOW), Ok(()));
        let query = format!("GET /control/get?room=a&jwt={good} HTTP/1.1\r\n\r\n");
        assert_eq!(auth.authorize(&request(&query), NOW), Ok(()));
        assert_eq!(
            auth.authorize(&request(&query), NOW + 10),
            Err("Token is expired".to_owned())
        );
        assert_eq!(
            auth.authorize(&request("GET / HTTP/1.1\r\n\r\n"), NOW),
            Err(TOKEN_NOT_FOUND.to_owned())
        );
    }

    #[test]
    fn public_key_algorithms() {
        let claims = json!({"exp": NOW + 60});
        let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
        let cases = [
            ("RS256", Algorithm::RS256, RSA_PUBLIC, &rsa),
            ("RS384", Algorithm::RS384, RSA_PUBLIC_PKCS1, &rsa),
            ("RS512", Algorithm::RS512, RSA_PUBLIC, &rsa),
            ("PS256", Algorithm::PS256, RSA_PUBLIC, &rsa),
            ("PS512", Algorithm::PS512, RSA_PUBLIC_PKCS1, &rsa),
        ];
        for (name, alg, public, private) in cases {
            let auth = JwtAuth::new(name, JwtKey::PublicPem(public)).unwrap();
            let token = sign(alg, private, &claims);
            assert!(auth.verify(&token, NOW).is_ok(), "{name}");
            let mut bad = token.into_bytes();
            let last = bad.len() - 2;
            bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
            let bad = String::from_utf8(bad).unwrap();
            assert_eq!(auth.verify(&bad, NOW).unwrap_err(), "signature is invalid");
        }
        let ec = [
            ("ES256", Algorithm::ES256, EC256_PUBLIC, EC256_PRIVATE),
            ("ES384", Algorithm::ES384, EC384_PUBLIC, EC384_PRIVATE),
        ];
        for (name, alg, public, private) in ec {
            let auth = JwtAuth::new(name, JwtKey::PublicPem(public)).unwrap();
            let key = EncodingKey::from_ec_pem(private.as_bytes()).unwrap();
            assert!(
                auth.verify(&sign(alg, &key, &claims), NOW).is_ok(),
                "{name}"
            );
            let expired = sign(alg, &key, &json!({"exp": NOW - 1}));
            assert_eq!(auth.verify(&expired, NOW).unwrap_err(), "Token is expired");
        }
        let auth = JwtAuth::new("eddsa", JwtKey::PublicPem(ED25519_PUBLIC)).unwrap();
        assert_eq!(auth.algorithm(), "EdDSA");
        let key = EncodingKey::from_ed_pem(ED25519_PRIVATE.as_bytes()).unwrap();
        assert!(auth
            .verify(&sign(Algorithm::EdDSA, &key, &claims), NOW)
            .is_ok());
    }

    #[test]
    fn a_token_for_another_curve_is_refused() {
        let auth = JwtAuth::new("ES256", JwtKey::PublicPem(EC256_PUBLIC)).unwrap();
        let other = EncodingKey::from_ec_pem(EC384_PRIVATE.as_bytes()).unwrap();
        let token = sign(Algorithm::ES384, &other, &json!({}));
        assert_eq!(
            auth.verify(&token, NOW).unwrap_err(),
            "Expected ES256 signing method but token specified ES384"
        );
    }

    #[test]
    fn key_kinds_are_read_from_the_pem() {
        assert_eq!(public_key_kind(RSA_PUBLIC), Ok(KeyKind::Rsa));
        assert_eq!(public_key_kind(RSA_PUBLIC_PKCS1), Ok(KeyKind::Rsa));
        assert_eq!(public_key_kind(EC256_PUBLIC), Ok(KeyKind::P256));
        assert_eq!(public_key_kind(EC384_PUBLIC), Ok(KeyKind::P384));
        assert_eq!(public_key_kind(ED25519_PUBLIC), Ok(KeyKind::Ed25519));
        let err = public_key_kind(RSA_PRIVATE).unwrap_err();
        assert!(err.contains("found `PRIVATE KEY`"), "{err}");
        assert!(public_key_kind("hello")
            .unwrap_err()
            .starts_with("not a PEM file"));
        let junk = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert!(public_key_kind(junk).is_err());
        assert_eq!(KeyKind::P384.default_algorithm(), "ES384");
    }

    #[test]
    fn keys_must_fit_the_algorithm() {
        let err = |alg: &str, key: JwtKey| JwtAuth::new(alg, key).unwrap_err();
        assert_eq!(
            err("RS256", JwtKey::Secret(SECRET)),
            "RS256 needs jwt.public_key, not jwt.secret"
        );
        assert_eq!(
            err("HS256", JwtKey::PublicPem(RSA_PUBLIC)),
            "HS256 needs jwt.secret, not jwt.public_key"
        );
        assert!(err("ES256", JwtKey::PublicPem(RSA_PUBLIC)).contains("which is an RSA key"));
        assert!(err("RS256", JwtKey::PublicPem(EC256_PUBLIC)).contains("EC P-256"));
        assert!(err("ES384", JwtKey::PublicPem(EC256_PUBLIC)).contains("EC P-256"));
        assert!(err("HS128", JwtKey::Secret(SECRET)).starts_with("`HS128` is not supported"));
        assert!(err("none", JwtKey::Secret(SECRET)).starts_with("`none` is not supported"));
    }

    #[test]
    fn der_reader_bounds() {
        assert_eq!(der_element(&[0x30, 0x00], 0x30), Some((&[][..], &[][..])));
        assert_eq!(der_element(&[0x30, 0x02, 1], 0x30), None);
        assert_eq!(
            der_element(&[0x30, 0x81, 0x01, 7, 8], 0x30),
            Some((&[7][..], &[8][..]))
        );
        assert_eq!(der_element(&[0x30, 0x85, 0, 0, 0, 0, 1], 0x30), None);
        assert_eq!(der_element(&[0x30, 0x80], 0x30), None);
        assert_eq!(der_element(&[0x31, 0x00], 0x30), None);
        assert_eq!(der_element(&[], 0x30), None);
    }

    #[test]
    fn debug_never_shows_the_key() {
        assert_eq!(
            format!("{:?}", hs("HS256")),
            "JwtAuth { algorithm: \"HS256\" }"
        );
    }
}
