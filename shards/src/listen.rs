//! Listener address reservation for SO_REUSEPORT groups.
//!
//! Every shard binds its own listener on the same address with SO_REUSEPORT and the kernel
//! spreads connections over them. When the configured port is 0, the shards must still agree
//! on one port: [`reserve`] binds (without listening) a placeholder socket in the SO_REUSEPORT
//! group, which fixes the port and keeps any other process from taking it, and the shards then
//! bind that concrete address. A socket that is bound but not listening receives no
//! connections, so the placeholder never steals any.

use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;

/// A reserved listen address; keep it alive as long as the shards listen.
pub struct Reservation {
    _socket: Socket,
    /// The concrete address (port resolved when 0 was asked for).
    pub addr: SocketAddr,
}

/// Reserve `addr` (port 0 allowed) for a SO_REUSEPORT group.
pub fn reserve(addr: SocketAddr) -> std::io::Result<Reservation> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    let bound = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("reserved address is not an IP socket"))?;
    Ok(Reservation {
        _socket: socket,
        addr: bound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_resolves_and_is_shared_with_reuseport() {
        let r = reserve("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(r.addr.port(), 0);
        // A second member of the group can bind the same port.
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_reuse_port(true).unwrap();
        s.bind(&r.addr.into()).unwrap();
        // A plain socket cannot.
        let plain = std::net::TcpListener::bind(r.addr);
        assert!(plain.is_err());
    }
}
