//! Test certificates, made by openssl (installed by scripts/setup).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A self-signed certificate and key (PEM) for the name `localhost` (and no IP address), in
/// `dir`: `(dir/cert.pem, dir/key.pem)`. A leaf, not a CA: webpki refuses a CA certificate as
/// a server's own, so this one can be trusted directly (e.g. through `SSL_CERT_FILE`).
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed by scripts/setup");
    assert!(made.success(), "openssl made a certificate");
    (cert, key)
}
