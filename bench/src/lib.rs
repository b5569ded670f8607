//! shardcast's load generator and raw fan-out baseline, as a library shared by the
//! `shardcast-bench` and `raw-fanout` binaries.
//!
//! - [`flvfile`]: an FLV file in memory (tags, metadata, sequence headers, duration).
//! - [`replay`]: the real-time pacer that loops a file with continuous timestamps and stamps
//!   every H.264 coded frame ([`stamp`]) with its stream, sequence number and send time.
//! - [`flvstream`], [`http`], [`hls`]: incremental parsers the players run over the bytes they
//!   read (FLV tags, chunked transfer coding, response heads, playlists, MPEG-TS packets).
//! - [`track`]: the per-player checks and counters; [`stats`], [`procfs`], [`report`]: the
//!   measurements and the JSON report.
//! - [`load`]: the `load` subcommand on glommio; [`fanout`]: the raw fan-out server.

pub mod clock;
pub mod fanout;
pub mod flvfile;
pub mod flvstream;
pub mod hls;
pub mod http;
pub mod load;
pub mod net;
pub mod procfs;
pub mod replay;
pub mod report;
pub mod stamp;
pub mod stats;
pub mod track;
