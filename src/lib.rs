//! shardcast: a thread-per-core live-streaming server. RTMP in; RTMP, HTTP-FLV and HLS out; a
//! livego-compatible control API. See docs/ARCHITECTURE.md for the map.

pub mod api;
pub mod config;
pub mod hls;
pub mod hooks;
pub mod http;
pub mod hub;
pub mod keys;
pub mod limits;
pub mod media;
pub mod record;
pub mod relay;
pub mod rtmp;
pub mod serve;
pub mod stats;
