//! Shared harness of the end-to-end tests (`mod common;` in each `tests/*.rs`): the real
//! server on free ports, HTTP and RTMP clients, ffmpeg/ffprobe helpers and synthetic media.
//!
//! Each test binary uses a different subset of it.
#![allow(dead_code, unused_imports)]

pub mod certs;
pub mod ffmpeg;
pub mod flv;
pub mod hostile;
pub mod http;
pub mod modern;
pub mod rtmp;
pub mod server;
pub mod synth;
pub mod wait;

pub use ffmpeg::{
    count_video_frames, ffmpeg_available, ffprobe_streams, push, push_looped, record,
    require_ffmpeg, test_media, test_media_variant, Variant, DURATION_SECS, FPS, FRAMES, GOP,
};
pub use flv::{parse_flv, read_flv_tags, FlvTag};
pub use http::{
    api_json, header, http_get, http_open, key_of, metric_sum, read_until_closed, HttpResponse,
};
pub use rtmp::{publish_frames, shard_of, MediaMessage, RtmpClient};
pub use server::{rss_kib, run_to_exit, Server};
pub use shardcast::rtmp::client::{ClientEvent, MediaKind};
pub use synth::{
    aac_frame, aac_sequence_header, avc_frame, avc_frame_sized, avc_sequence_header, frame_seq,
    is_keyframe, metadata,
};
pub use wait::wait_until;
