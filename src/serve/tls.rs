//! TLS over a [`Conn`] with rustls, whose `ServerConnection` is itself sans-IO: ciphertext
//! read from the socket goes in with `read_tls`, plaintext comes out of `reader()`, and what
//! rustls wants to send (handshake, records) is written out after every step.

use super::io::{Conn, Io};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Ciphertext read per socket read.
const READ_CHUNK: usize = 16 * 1024;

/// Load a certificate chain and private key (PEM) into a server configuration. Errors name
/// the file and the reason.
pub fn server_config(cert: &str, key: &str) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect())
        .map_err(|e| format!("{cert}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{cert}: no certificate found"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map(Arc::new)
        .map_err(|e| format!("certificate and key: {e}"))
}

/// A server-side TLS session on a socket.
pub struct TlsConn {
    io: Conn,
    tls: RefCell<ServerConnection>,
}

impl TlsConn {
    pub fn new(io: Conn, config: Arc<ServerConfig>) -> io::Result<Self> {
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsConn {
            io,
            tls: RefCell::new(tls),
        })
    }

    /// Send whatever rustls has queued (handshake messages, encrypted records, alerts).
    async fn flush(&self) -> io::Result<()> {
        loop {
            let mut out = Vec::new();
            {
                let mut tls = self.tls.borrow_mut();
                while tls.wants_write() {
                    tls.write_tls(&mut out)?;
                }
            }
            if out.is_empty() {
                return Ok(());
            }
            self.io.write_all(&out).await?;
        }
    }

    /// Say goodbye (close_notify) and flush.
    pub async fn close(&self) {
        self.tls.borrow_mut().send_close_notify();
        let _ = self.flush().await;
    }
}

impl Io for TlsConn {
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut raw = vec![0u8; READ_CHUNK];
        loop {
            match self.tls.borrow_mut().reader().read(buf) {
                Ok(n) => return Ok(n), // 0: the peer closed the session cleanly
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            self.flush().await?;
            let n = self.io.read(&mut raw).await?;
            if n == 0 {
                return Ok(0);
            }
            let processed = {
                let mut tls = self.tls.borrow_mut();
                let mut input = &raw[..n];
                let mut result = Ok(());
                while !input.is_empty() && result.is_ok() {
                    result = tls.read_tls(&mut input).and_then(|_| {
                        tls.process_new_packets()
                            .map(|_| ())
                            .map_err(io::Error::other)
                    });
                }
                result
            };
            if let Err(e) = processed {
                // Tell the peer why (the alert rustls queued), then fail.
                let _ = self.flush().await;
                return Err(e);
            }
        }
    }

    async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        // rustls takes a bounded amount of plaintext at a time (64 KiB by default): encrypt
        // and send what it took, then give it the rest.
        while !buf.is_empty() {
            let n = self.tls.borrow_mut().writer().write(buf)?;
            self.flush().await?;
            if n == 0 && !self.tls.borrow().wants_write() {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }
}
