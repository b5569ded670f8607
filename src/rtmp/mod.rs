//! RTMP, sans-IO: handshake, chunk stream, AMF, protocol control and the server session.

pub mod amf;
pub mod caps;
pub mod chunk;
pub mod client;
pub mod control;
pub mod handshake;
pub mod session;
