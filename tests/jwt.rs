//! End-to-end JWT on the API listener: with `jwt.secret` or `jwt.public_key` set, every
//! request (any method, any path, `/statics/` too) needs a valid token, and a bad key file
//! stops start-up.

mod common;

use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET: &str = "an end-to-end secret of 32+ bytes";
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    encode(&Header::new(alg), claims, key).expect("sign a token")
}

fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

fn valid_claims() -> Value {
    json!({"sub": "ops", "exp": now() + 600})
}

/// `method target` with extra headers: `(status, data)` of livego's envelope (`data` as text
/// when it is a string), or `(status, "")` for a response without a body.
fn call(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut resp = http_open(addr, method, target, headers)
        .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
    let body = resp.read_body().expect("the body");
    if body.is_empty() {
        return (resp.status, String::new());
    }
    let json: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
    assert_eq!(json["status"], resp.status, "envelope status = HTTP status");
    let data = match &json["data"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    (resp.status, data)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn start_hs256(name: &str) -> Server {
    Server::start(name, &["--shards", "2", "--jwt.secret", SECRET])
}

#[test]
fn a_valid_token_in_the_header_or_the_query_opens_the_api() {
    let server = start_hs256("jwt-valid");
    let api = server.api_addr();
    let token = hs256(&valid_claims());
    let auth = bearer(&token);
    let (status, key) = call(
        api,
        "GET",
        "/control/get?room=movie",
        &[("Authorization", &auth)],
    );
    assert_eq!(status, 200, "{key}");
    assert_eq!(key.len(), 48);
    let lower = format!("bearer {token}");
    let again = call(
        api,
        "GET",
        "/control/get?room=movie",
        &[("Authorization", &lower)],
    );
    assert_eq!(again, (200, key.clone()), "the scheme is case-insensitive");
    let query = format!("/control/get?room=movie&jwt={token}");
    assert_eq!(call(api, "GET", &query, &[]), (200, key.clone()));
    // Tokens without exp are accepted, as in livego.
    let forever = hs256(&json!({"sub": "ops"}));
    let query = format!("/control/get?jwt={forever}&room=movie");
    assert_eq!(call(api, "GET", &query, &[]), (200, key.clone()));
    // The key works for publishing; RTMP itself needs no token.
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher.publish(&key).expect("the key publishes");
    assert!(
        server
            .wait_for_line(|l| l.contains("API requires a JWT"), Duration::from_secs(5))
            .is_some_and(|l| l.contains("HS256")),
        "start-up names the algorithm"
    );
}

#[test]
fn bad_tokens_get_403_with_livego_reasons() {
    let server = start_hs256("jwt-bad");
    let api = server.api_addr();
    let target = "/control/get?room=movie";
    let expired = hs256(&json!({"exp": now() - 3600}));
    let not_yet = hs256(&json!({"nbf": now() + 3600}));
    let wrong_key = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"not the server's secret"),
        &valid_claims(),
    );
    let wrong_alg = sign(
        Algorithm::HS512,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        &valid_claims(),
    );
    let b64 = |v: Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let alg_none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(valid_claims())
    );
    let cases = [
        (None, "Required authorization token not found"),
        (
            Some("Basic b3BzOnB3"),
            "Authorization header format must be Bearer {token}",
        ),
        (
            Some("Bearer"),
            "Authorization header format must be Bearer {token}",
        ),
        (Some(bearer(&expired).as_str()), "Token is expired"),
        (Some(bearer(&not_yet).as_str()), "Token is not valid yet"),
        (Some(bearer(&wrong_key).as_str()), "signature is invalid"),
        (
            Some(bearer(&wrong_alg).as_str()),
            "Expected HS256 signing method but token specified HS512",
        ),
        (
            Some(bearer(&alg_none).as_str()),
            "'none' signature type is not allowed",
        ),
        (
            Some("Bearer a.b"),
            "token contains an invalid number of segments",
        ),
    ]
    .map(|(h, why)| (h.map(str::to_owned), why));
    for (auth, why) in cases {
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        assert_eq!(
            call(api, "GET", target, &headers),
            (403, why.to_owned()),
            "{auth:?}"
        );
    }
    for token in [&expired, &wrong_key, &wrong_alg, &alg_none] {
        let query = format!("{target}&jwt={token}");
        assert_eq!(call(api, "GET", &query, &[]).0, 403, "{token}");
    }
    // A malformed header is refused even with a good ?jwt=, as in livego.
    let query = format!("{target}&jwt={}", hs256(&valid_claims()));
    assert_eq!(
        call(api, "GET", &query, &[("Authorization", "Token x")]),
        (
            403,
            "Authorization header format must be Bearer {token}".to_owned()
        )
    );
    // Nothing above created the room.
    let auth = bearer(&hs256(&valid_claims()));
    let deleted = call(
        api,
        "GET",
        "/control/delete?room=movie",
        &[("Authorization", &auth)],
    );
    assert_eq!(deleted, (404, "room not found".to_owned()));
}

#[test]
fn options_unknown_paths_and_statics_need_a_token_too() {
    let server = start_hs256("jwt-everywhere");
    let api = server.api_addr();
    let statics = server.dir().join("statics");
    std::fs::create_dir_all(&statics).unwrap();
    std::fs::write(statics.join("a.txt"), "static text").unwrap();
    let missing = (403, "Required authorization token not found".to_owned());
    let preflight = [
        ("Origin", "https://example.com"),
        ("Access-Control-Request-Method", "GET"),
    ];
    // livego let OPTIONS through to the handler: /control/reset answered with a new key.
    assert_eq!(
        call(api, "OPTIONS", "/control/reset?room=movie", &preflight),
        missing
    );
    assert_eq!(call(api, "OPTIONS", "*", &[]), missing);
    assert_eq!(call(api, "GET", "/nope", &[]), missing);
    assert_eq!(call(api, "HEAD", "/control/get?room=movie", &[]).0, 403);
    assert_eq!(call(api, "GET", "/statics/a.txt", &[]), missing);
    assert_eq!(call(api, "GET", "/statics/../Cargo.toml", &[]), missing);

    let token = hs256(&valid_claims());
    let auth = bearer(&token);
    let with_token = [("Authorization", auth.as_str())];
    assert_eq!(
        call(api, "OPTIONS", "/control/reset?room=movie", &with_token),
        (204, String::new())
    );
    assert_eq!(
        call(api, "GET", "/nope", &with_token),
        (404, "not found".to_owned())
    );
    let target = format!("/statics/a.txt?jwt={token}");
    let (status, _, body) = http_get(api, &target);
    assert_eq!((status, body.as_slice()), (200, &b"static text"[..]));
    // The OPTIONS requests reset nothing: the room never existed.
    let deleted = call(api, "GET", "/control/delete?room=movie", &with_token);
    assert_eq!(deleted, (404, "room not found".to_owned()));
}

/// A new empty directory for files a test writes.
fn scratch_dir(name: &str) -> PathBuf {
    common::server::scratch_dir("jwt-scratch", name)
}

/// Runs `openssl args` in `dir`; panics with its output if it fails (scripts/setup installs
/// openssl).
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl is needed (scripts/setup installs it): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh RSA key pair made by openssl: `(private PEM text, public key file)`.
fn rsa_key_pair(dir: &Path, name: &str) -> (String, PathBuf) {
    let private = format!("{name}.key");
    let public = format!("{name}.pub");
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &private,
        ],
    );
    openssl(dir, &["pkey", "-in", &private, "-pubout", "-out", &public]);
    let text = std::fs::read_to_string(dir.join(&private)).unwrap();
    (text, dir.join(public))
}

#[test]
fn rs256_with_an_openssl_key_pair() {
    let dir = scratch_dir("rs256");
    let (private, public) = rsa_key_pair(&dir, "api");
    let (other_private, _) = rsa_key_pair(&dir, "other");
    let public_arg = public.to_str().unwrap();
    let server = Server::start("jwt-rs256", &["--jwt.public_key", public_arg]);
    let api = server.api_addr();
    let key = EncodingKey::from_rsa_pem(private.as_bytes()).expect("openssl's PKCS#8 key");
    let good = sign(Algorithm::RS256, &key, &valid_claims());
    let target = "/control/get?room=movie";
    let (status, data) = call(api, "GET", target, &[("Authorization", &bearer(&good))]);
    assert_eq!(status, 200, "{data}");
    let query = format!("{target}&jwt={good}");
    assert_eq!(call(api, "GET", &query, &[]).0, 200);

    let other = EncodingKey::from_rsa_pem(other_private.as_bytes()).unwrap();
    let forged = sign(Algorithm::RS256, &other, &valid_claims());
    let public_pem = std::fs::read(&public).unwrap();
    // The classic confusion: HS256 "signed" with the server's public key as the secret.
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&public_pem),
        &valid_claims(),
    );
    let expired = sign(Algorithm::RS256, &key, &json!({"exp": now() - 1}));
    let cases = [
        (forged, "signature is invalid"),
        (
            confused,
            "Expected RS256 signing method but token specified HS256",
        ),
        (expired, "Token is expired"),
    ];
    for (token, why) in cases {
        let reply = call(api, "GET", target, &[("Authorization", &bearer(&token))]);
        assert_eq!(reply, (403, why.to_owned()));
    }
    assert!(
        server
            .wait_for_line(|l| l.contains("API requires a JWT"), Duration::from_secs(5))
            .is_some_and(|l| l.contains("RS256")),
        "the algorithm is inferred from the key"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the binary with `args` in `dir`, every listener but RTMP and the API off; it must
/// exit at once. Returns the exit code and stderr.
fn run_binary(args: &[&str], dir: &Path) -> (Option<i32>, String) {
    let mut all = args.to_vec();
    all.extend(["--rtmp_addr", "127.0.0.1:0", "--api_addr", "127.0.0.1:0"]);
    all.extend(["--httpflv_addr", "", "--hls_addr", ""]);
    let (code, _, stderr) = run_to_exit(&all, dir);
    (code, stderr)
}

#[test]
fn a_bad_key_or_algorithm_stops_start_up() {
    let dir = scratch_dir("bad-key");
    let (private, _) = rsa_key_pair(&dir, "api");
    std::fs::write(dir.join("private.pem"), private).unwrap();
    std::fs::write(dir.join("junk.pem"), "not a key\n").unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--jwt.public_key", "missing.pem"],
            "--jwt.public_key: missing.pem: ",
        ),
        (
            &["--jwt.public_key", "private.pem"],
            "expected a public key",
        ),
        (
            &["--jwt.public_key", "junk.pem"],
            "junk.pem: not a PEM file",
        ),
        (
            &["--jwt.secret", SECRET, "--jwt.algorithm", "RS999"],
            "`RS999` is not supported",
        ),
        (
            &["--jwt.secret", SECRET, "--jwt.algorithm", "RS256"],
            "RS256 needs jwt.public_key",
        ),
    ];
    for (args, want) in cases {
        let (code, err) = run_binary(args, &dir);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
