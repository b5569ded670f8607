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

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

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

/// Writes every buffer of `bufs` in order with gathered `sendmsg` calls: shardcast's own.
pub use shardcast::serve::write_all_vectored;

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
