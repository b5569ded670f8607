//! The process-wide directory of live streams: which streams have a publisher and which
//! tracks they carry. Written by home shards when a publisher starts or stops (and once per
//! track when its first frame arrives), read by any shard to answer HTTP requests at once.
//! Rare control data behind a lock, never touched per packet.

use crate::media::Codec;
use ahash::AHashMap;
use std::sync::RwLock;

/// What the directory knows about a live stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamInfo {
    pub has_audio: bool,
    pub has_video: bool,
    /// The video codec, once a video message said (legacy codec id or E-RTMP FourCC).
    pub video_codec: Option<Codec>,
    /// The audio codec, once an audio message said.
    pub audio_codec: Option<Codec>,
}

/// Live streams by key (`app/name`).
#[derive(Debug, Default)]
pub struct Directory {
    live: RwLock<AHashMap<String, StreamInfo>>,
}

impl Directory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record `key` as live with `info` (a new publisher starts with no known tracks).
    pub fn set(&self, key: &str, info: StreamInfo) {
        if let Ok(mut live) = self.live.write() {
            live.insert(key.to_string(), info);
        }
    }

    /// Record `key` as live unless `max` other streams are: a stream already listed (a
    /// publisher replacing another) always may. Returns false when the stream is refused.
    pub fn claim(&self, key: &str, max: usize) -> bool {
        let Ok(mut live) = self.live.write() else {
            return false;
        };
        if !live.contains_key(key) {
            if live.len() >= max {
                return false;
            }
            live.insert(key.to_string(), StreamInfo::default());
        }
        true
    }

    /// Record that `key` has no publisher any more.
    pub fn remove(&self, key: &str) {
        if let Ok(mut live) = self.live.write() {
            live.remove(key);
        }
    }

    /// The stream's entry, if it is live.
    pub fn get(&self, key: &str) -> Option<StreamInfo> {
        self.live.read().ok()?.get(key).copied()
    }

    /// Every live stream with what is known of it, sorted by key.
    pub fn entries(&self) -> Vec<(String, StreamInfo)> {
        let mut entries: Vec<(String, StreamInfo)> = self
            .live
            .read()
            .map(|l| l.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove() {
        let d = Directory::new();
        assert_eq!(d.get("live/a"), None);
        d.set("live/b", StreamInfo::default());
        d.set(
            "live/a",
            StreamInfo {
                has_audio: true,
                has_video: false,
                ..StreamInfo::default()
            },
        );
        assert!(d.get("live/a").unwrap().has_audio);
        let keys: Vec<String> = d.entries().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["live/a", "live/b"]);
        assert!(d.entries()[0].1.has_audio);
        d.remove("live/a");
        assert_eq!(d.get("live/a"), None);
    }

    #[test]
    fn claim_caps_the_number_of_live_streams() {
        let d = Directory::new();
        assert!(d.claim("live/a", 2));
        assert!(d.claim("live/b", 2));
        assert!(!d.claim("live/c", 2), "a third stream");
        assert!(d.claim("live/a", 2), "a republish of a live stream");
        d.remove("live/b");
        assert!(d.claim("live/c", 2));
        let keys: Vec<String> = d.entries().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["live/a", "live/c"]);
    }
}
