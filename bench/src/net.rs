//! Socket helpers on glommio.
//!
//! glommio's non-buffered `TcpStream` is readiness-based: a poll first tries `recv`/`send`
//! directly and only arms an io_uring readiness poll when the socket would block. No kernel
//! operation ever owns the caller's buffer while a future is pending. Two things follow:
//! - [`read_into`] can read into one buffer shared by every connection of an executor (it is
//!   borrowed only inside a poll, and the bytes are consumed before the poll returns), which
//!   keeps the generator's read buffer hot in cache whatever the number of connections;
//! - a connection's reader and writer can share the stream through a `RefCell` ([`Shared`]).

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use std::os::fd::AsRawFd;

/// Reads once from `stream` into `buf` and hands the bytes to `consume` before returning;
/// `Ok(None)` means the peer closed the connection.
pub async fn read_into<R>(
    stream: &RefCell<TcpStream>,
    buf: &RefCell<Vec<u8>>,
    mut consume: impl FnMut(&[u8]) -> R,
) -> io::Result<Option<R>> {
    poll_fn(|cx| {
        let mut buf = buf.borrow_mut();
        let mut stream = stream.borrow_mut();
        match Pin::new(&mut *stream).poll_read(cx, &mut buf[..]) {
            Poll::Ready(Ok(0)) => Poll::Ready(Ok(None)),
            Poll::Ready(Ok(n)) => Poll::Ready(Ok(Some(consume(&buf[..n])))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Writes all of `data`.
pub async fn write_all(stream: &RefCell<TcpStream>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *stream.borrow_mut()).poll_write(cx, data)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
    }
    Ok(())
}

/// Buffers gathered by one `sendmsg`.
const MAX_IOV: usize = 64;

/// One non-blocking `sendmsg` of up to [`MAX_IOV`] buffers (`MSG_NOSIGNAL`: a closed peer is
/// `EPIPE`, not SIGPIPE).
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
    // SAFETY: `msg` is initialised above and only read by the kernel.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Writes every buffer of `bufs` in order, gathering them into as few `sendmsg` calls as the
/// socket allows (no copy into a per-connection buffer); when the socket is full, glommio
/// waits for room. `bufs` is empty on success.
pub async fn write_all_vectored(
    stream: &RefCell<TcpStream>,
    bufs: &mut Vec<Bytes>,
) -> io::Result<()> {
    bufs.retain(|b| !b.is_empty());
    let mut done = 0;
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

/// Consumes `n` written bytes from the front of `bufs`; returns the buffers written whole.
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

/// A stream shared by a connection's reader and writer futures.
pub type Shared = Rc<RefCell<TcpStream>>;

/// Connects with a timeout; sets TCP_NODELAY.
pub async fn connect(addr: std::net::SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(addr, timeout).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// `fut`'s output, or `None` if `limit` passes first.
pub async fn timeout<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let fut = async { Some(fut.await) };
    let timer = async {
        glommio::timer::sleep(limit).await;
        None
    };
    futures_lite::future::or(fut, timer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_over_buffers() {
        let mut bufs = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")];
        assert_eq!(advance(&mut bufs, 4), 1);
        assert_eq!(&bufs[1][..], b"e");
        let mut bufs = vec![Bytes::from_static(b"abc")];
        assert_eq!(advance(&mut bufs, 3), 1);
    }

    #[test]
    fn gathered_send_over_a_socket_pair() {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let bufs = [Bytes::from_static(b"he"), Bytes::from_static(b"llo")];
        assert_eq!(send_vectored(a.as_raw_fd(), &bufs).unwrap(), 5);
        let mut got = [0u8; 5];
        std::io::Read::read_exact(&mut b, &mut got).unwrap();
        assert_eq!(&got, b"hello");
    }
}
