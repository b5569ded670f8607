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
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, Connection, DigitallySignedStruct, ServerConfig};
use rustls::{ServerConnection, SignatureScheme};
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

/// The configuration of outgoing TLS (`rtmps://` relays, `https://` hooks): the system's roots (honouring
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`) and host-name verification, or, with `verify` off
/// (`enable_tls_verify = false`), any certificate (still a TLS handshake, no authentication).
pub fn client_config(verify: bool) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if verify {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(format!(
                "no CA certificate found in the system store ({:?}); install ca-certificates, \
                 set SSL_CERT_FILE, or set enable_tls_verify = false",
                found.errors.first()
            ));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// `enable_tls_verify = false`: accept any certificate, but check the handshake signatures
/// (so the session is at least with whoever holds the certificate's key).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS session on a socket: the server side (HLS over HTTPS, RTMPS) or the client side
/// (`rtmps://` relays, `https://` hooks).
pub struct TlsConn {
    io: Conn,
    tls: RefCell<Connection>,
    /// One sender at a time (see the module comment).
    sending: Semaphore,
    /// The ciphertext read buffer, kept between reads (taken out while a read waits).
    raw: RefCell<Vec<u8>>,
}

impl TlsConn {
    pub fn new(io: Conn, config: Arc<ServerConfig>) -> io::Result<Self> {
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(Self::over(io, tls.into()))
    }

    /// The client side, to `host` (a DNS name, checked against the certificate when the
    /// configuration verifies, and sent as SNI; or an IP address).
    pub fn client(io: Conn, config: Arc<ClientConfig>, host: &str) -> io::Result<Self> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::other(format!("{host}: {e}")))?;
        let tls = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(Self::over(io, tls.into()))
    }

    fn over(io: Conn, tls: Connection) -> Self {
        TlsConn {
            io,
            tls: RefCell::new(tls),
            sending: Semaphore::new(1),
            raw: RefCell::default(),
        }
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

/// The byte stream of an RTMP connection: plain TCP, or TLS (RTMPS: `enable_rtmps` for the
/// listener, `rtmps://` URLs for relays).
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

impl Io for Transport {
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Transport::read(self, buf).await
    }

    async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        Transport::write_all(self, buf).await
    }

    async fn write_all_vectored(&self, bufs: &mut Vec<Bytes>) -> io::Result<()> {
        Transport::write_all_vectored(self, bufs).await
    }
}
