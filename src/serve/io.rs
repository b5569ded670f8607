//! A TCP stream shared by a connection's reader and writer.
//!
//! glommio's non-buffered `TcpStream` does readiness-based I/O: each poll tries the syscall
//! and registers interest, so a read or write future can be dropped at any point without
//! losing bytes. Two futures of one connection can therefore share the stream through a
//! `RefCell` that is borrowed only inside a poll, never across an await.

use bytes::{Buf, Bytes};
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
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

    /// Write every buffer of `bufs` in order (see [`write_all_vectored`]), then give back the
    /// room a burst made the list grow.
    pub async fn write_all_vectored(&self, bufs: &mut Vec<Bytes>) -> io::Result<()> {
        write_all_vectored(&self.stream, bufs).await?;
        crate::hub::release_burst(bufs);
        Ok(())
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

/// How long an HTTP connection lingers after its last reply (see [`linger_close`]).
pub const LINGER: Duration = Duration::from_secs(2);
/// Most bytes a lingering close reads and throws away.
const LINGER_MAX_BYTES: usize = 64 * 1024;

/// Close after a final reply without losing it (RFC 9112 section 9.6, "tear-down"): closing a
/// socket with unread request bytes in its receive queue makes the kernel send RST, and a
/// peer that gets the RST before reading the reply loses it. So: half-close (the peer sees
/// the reply, then EOF), then read and discard what it still sends until it closes, for at
/// most `limit` and [`LINGER_MAX_BYTES`].
pub async fn linger_close(conn: &Conn, limit: Duration) {
    conn.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 512];
        let mut left = LINGER_MAX_BYTES;
        while left > 0 {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    super::within(limit, drain).await;
}

/// Write every buffer of `bufs`, in order, with as few syscalls as the socket allows: one
/// `sendmsg` gathers up to [`MAX_IOV`] shared buffers straight from their `Bytes`, so a
/// player's pending frames go out without being copied into a per-player buffer first. When
/// the socket is full, glommio's `poll_write` waits for room (under the stream's write
/// timeout: `TimedOut`). `bufs` is left empty on success. Public for the load generator.
pub async fn write_all_vectored(
    stream: &RefCell<TcpStream>,
    bufs: &mut Vec<Bytes>,
) -> io::Result<()> {
    bufs.retain(|b| !b.is_empty());
    let mut done = 0; // buffers fully written
    while done < bufs.len() {
        let sent = send_vectored(stream.borrow().as_raw_fd(), &bufs[done..]);
        let n = match sent {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let first = &bufs[done];
                let n =
                    poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_write(cx, first)).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                n
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        done += advance(&mut bufs[done..], n);
    }
    bufs.clear();
    Ok(())
}

/// Buffers gathered by one `sendmsg` (Linux's IOV_MAX is 1024; a player rarely has more
/// than a few dozen pending).
const MAX_IOV: usize = 64;

/// One non-blocking `sendmsg` of up to [`MAX_IOV`] buffers. `MSG_DONTWAIT` makes it
/// non-blocking whatever the fd's flags; `MSG_NOSIGNAL` turns a closed peer into `EPIPE`
/// instead of a SIGPIPE.
fn send_vectored(fd: std::os::fd::RawFd, bufs: &[Bytes]) -> io::Result<usize> {
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_IOV];
    let count = bufs.len().min(MAX_IOV);
    for (slot, b) in iov.iter_mut().zip(bufs) {
        slot.iov_base = b.as_ptr() as *mut libc::c_void;
        slot.iov_len = b.len();
    }
    // SAFETY: an all-zero msghdr is valid (no address, no control data); `iov` holds `count`
    // initialised entries pointing into `bufs`, which outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = count;
    // SAFETY: `msg` is fully initialised above and only read by the kernel.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Consume `n` written bytes from the front of `bufs`; returns how many buffers were
/// written completely (the next one, if partly written, is advanced in place).
fn advance(bufs: &mut [Bytes], mut n: usize) -> usize {
    let mut whole = 0;
    for b in bufs.iter_mut() {
        if n < b.len() {
            b.advance(n);
            break;
        }
        n -= b.len();
        whole += 1;
    }
    whole
}

/// A byte stream a request loop or a relay can run on: a plain [`Conn`] or TLS over one.
/// A reader and a writer future may share one (`&self`), as with [`Conn`].
pub(crate) trait Io {
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    async fn write_all(&self, buf: &[u8]) -> io::Result<()>;

    /// Write every buffer in order, leaving `bufs` empty. The default writes them one by one;
    /// a plain socket gathers them into `sendmsg` calls.
    async fn write_all_vectored(&self, bufs: &mut Vec<Bytes>) -> io::Result<()> {
        for b in bufs.iter() {
            self.write_all(b).await?;
        }
        bufs.clear();
        Ok(())
    }
}

impl Io for Conn {
    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Conn::read(self, buf).await
    }

    async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        Conn::write_all(self, buf).await
    }

    async fn write_all_vectored(&self, bufs: &mut Vec<Bytes>) -> io::Result<()> {
        Conn::write_all_vectored(self, bufs).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_counts_whole_buffers_and_trims_the_partial_one() {
        let mut bufs = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"de"),
            Bytes::from_static(b"fgh"),
        ];
        assert_eq!(advance(&mut bufs, 0), 0);
        assert_eq!(advance(&mut bufs, 4), 1);
        assert_eq!(&bufs[1][..], b"e");
        assert_eq!(advance(&mut bufs[1..], 2), 1);
        assert_eq!(&bufs[2][..], b"gh");
        assert_eq!(advance(&mut bufs[2..], 2), 1);
    }

    #[test]
    fn send_vectored_gathers_in_order() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let bufs: Vec<Bytes> = (0..100u8).map(|i| Bytes::from(vec![i; 3])).collect();
        let n = send_vectored(a.as_raw_fd(), &bufs).unwrap();
        assert_eq!(n, MAX_IOV * 3, "one call sends at most MAX_IOV buffers");
        let mut got = vec![0u8; n];
        std::io::Read::read_exact(&mut &b, &mut got).unwrap();
        let want: Vec<u8> = (0..MAX_IOV as u8).flat_map(|i| [i; 3]).collect();
        assert_eq!(got, want);
    }
}
