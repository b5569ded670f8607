//! A TCP stream shared by a connection's reader and writer.
//!
//! glommio's non-buffered `TcpStream` does readiness-based I/O: each poll tries the syscall
//! and registers interest, so a read or write future can be dropped at any point without
//! losing bytes. Two futures of one connection can therefore share the stream through a
//! `RefCell` that is borrowed only inside a poll, never across an await.

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

/// Shared handle to one connection's socket.
#[derive(Clone)]
pub struct Conn {
    stream: Rc<RefCell<TcpStream>>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Self {
        let _ = stream.set_nodelay(true);
        Conn {
            stream: Rc::new(RefCell::new(stream)),
        }
    }

    /// Read some bytes; 0 means the peer closed. Fails with `TimedOut` after the read timeout.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| Pin::new(&mut *self.stream.borrow_mut()).poll_read(cx, buf)).await
    }

    /// Write all of `buf`. Fails with `TimedOut` when the peer accepts nothing for the write
    /// timeout.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n =
                poll_fn(|cx| Pin::new(&mut *self.stream.borrow_mut()).poll_write(cx, buf)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Set (or clear) the time a single read may wait.
    pub fn set_read_timeout(&self, d: Option<Duration>) {
        let _ = self.stream.borrow().set_read_timeout(d);
    }

    /// Set (or clear) the time a single write may wait.
    pub fn set_write_timeout(&self, d: Option<Duration>) {
        let _ = self.stream.borrow().set_write_timeout(d);
    }

    /// Half-close our side so the peer sees EOF after what we sent.
    pub async fn shutdown(&self) {
        let _ = poll_fn(|cx| Pin::new(&mut *self.stream.borrow_mut()).poll_close(cx)).await;
    }
}

/// A byte stream a request loop can run on: a plain [`Conn`] or TLS over one.
pub(crate) trait Io {
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    async fn write_all(&self, buf: &[u8]) -> io::Result<()>;
}

impl Io for Conn {
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Conn::read(self, buf).await
    }

    async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        Conn::write_all(self, buf).await
    }
}
