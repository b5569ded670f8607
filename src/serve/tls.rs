//! TLS over a [`Conn`] with rustls, whose `ServerConnection` is itself sans-IO: ciphertext
//! read from the socket goes in with `read_tls`, plaintext comes out of `reader()`, and what
//! rustls wants to send (handshake, records) is written out after every step.
//!
//! Used by HLS over HTTPS (one request at a time) and by RTMPS, where a connection's reader
//! and writer run at once: both may have ciphertext to send (the reader: handshake messages,
//! session tickets, alerts), so sending is serialized by a one-permit semaphore, or records
//! of the two could interleave on the socket.

use super::io::{Conn, Io};
use bytes::Bytes;
use glommio::sync::Semaphore;
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
    /// One sender at a time (see the module comment).
    sending: Semaphore,
    /// The ciphertext read buffer, kept between reads (taken out while a read waits).
    raw: RefCell<Vec<u8>>,
}

impl TlsConn {
    pub fn new(io: Conn, config: Arc<ServerConfig>) -> io::Result<Self> {
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsConn {
            io,
            tls: RefCell::new(tls),
            sending: Semaphore::new(1),
            raw: RefCell::default(),
        })
    }

    /// The socket under the session.
    pub fn conn(&self) -> &Conn {
        &self.io
    }

    /// Encrypt `bufs` (in order) and send them, as few records and writes as rustls's
    /// plaintext buffer allows; `bufs` is left empty.
    pub async fn write_all_vectored(&self, bufs: &mut Vec<Bytes>) -> io::Result<()> {
        for b in bufs.drain(..) {
            let mut rest: &[u8] = &b;
            while !rest.is_empty() {
                let n = self.tls.borrow_mut().writer().write(rest)?;
                rest = &rest[n..];
                if !rest.is_empty() {
                    // rustls's buffer is full: send what it holds, then go on.
                    if n == 0 && !self.tls.borrow().wants_write() {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    self.flush().await?;
                }
            }
        }
        self.flush().await
    }

    /// Send whatever rustls has queued (handshake messages, encrypted records, alerts).
    async fn flush(&self) -> io::Result<()> {
        let _permit = self
            .sending
            .acquire_permit(1)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
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
        let mut raw = std::mem::take(&mut *self.raw.borrow_mut());
        raw.resize(READ_CHUNK, 0);
        let result = self.read_with(buf, &mut raw).await;
        *self.raw.borrow_mut() = raw;
        result
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

impl TlsConn {
    /// Plaintext into `buf`, reading ciphertext through `raw` as needed.
    async fn read_with(&self, buf: &mut [u8], raw: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.borrow_mut().reader().read(buf) {
                Ok(n) => return Ok(n), // 0: the peer closed the session cleanly
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            self.flush().await?;
            let n = self.io.read(raw).await?;
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
}

/// The byte stream of an RTMP connection: plain TCP, or RTMPS (`enable_rtmps`).
pub(crate) enum Transport {
    Plain(Conn),
    /// Boxed: a rustls session is over 1 KiB, and most connections are plain.
    Tls(Box<TlsConn>),
}

impl Transport {
    /// The socket under the stream.
    pub fn conn(&self) -> &Conn {
        match self {
            Transport::Plain(c) => c,
            Transport::Tls(t) => t.conn(),
        }
    }

    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(c) => c.read(buf).await,
            Transport::Tls(t) => Io::read(&**t, buf).await,
        }
    }

    pub async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(c) => c.write_all(buf).await,
            Transport::Tls(t) => Io::write_all(&**t, buf).await,
        }
    }

    /// Send `bufs` in order (see [`Conn::write_all_vectored`]); `bufs` is left empty.
    pub async fn write_all_vectored(&self, bufs: &mut Vec<Bytes>) -> io::Result<()> {
        match self {
            Transport::Plain(c) => c.write_all_vectored(bufs).await,
            Transport::Tls(t) => {
                t.write_all_vectored(bufs).await?;
                crate::hub::release_burst(bufs);
                Ok(())
            }
        }
    }

    /// End the session (TLS close_notify) and half-close the socket.
    pub async fn shutdown(&self) {
        if let Transport::Tls(t) = self {
            t.close().await;
        }
        self.conn().shutdown().await;
    }
}
