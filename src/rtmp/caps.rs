//! Enhanced RTMP `connect` capability negotiation (veovera enhanced-rtmp v1 `fourCcList`,
//! v2 `videoFourCcInfoMap` / `audioFourCcInfoMap` / `capsEx`), sans-IO.
//!
//! A client states in the `connect` command object which FourCCs it can decode, encode or
//! forward, and which extensions (`capsEx`) it understands. The server answers in the
//! `_result` properties with the same names and its own capabilities. shardcast decodes and
//! encodes nothing: it forwards every FourCC listed in [`caps::VIDEO_FOURCCS`] and
//! [`caps::AUDIO_FOURCCS`] (RTMP, HTTP-FLV, recordings; HLS is narrower, see the README),
//! passes multitrack packets through and parses `ModEx` packet types. It never sends
//! reconnect requests, so it does not claim `Reconnect`.
//!
//! Clients that send none of these properties (legacy ones) get the legacy `_result`.

use crate::media::ertmp::caps;
use crate::rtmp::amf::Value;

/// At most this many FourCCs are kept from one client list (hostile input is bounded).
const MAX_FOURCCS: usize = 32;

/// What a client declared in `connect`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientCaps {
    /// `fourCcList` (v1): FourCCs the client supports.
    pub fourcc_list: Vec<String>,
    /// `videoFourCcInfoMap` (v2): FourCC to `FourCcInfoMask` bits.
    pub video: Vec<(String, u32)>,
    /// `audioFourCcInfoMap` (v2).
    pub audio: Vec<(String, u32)>,
    /// `capsEx` (v2) bits.
    pub caps_ex: u32,
}

impl ClientCaps {
    /// The Enhanced RTMP properties of a `connect` command object, or `None` when the client
    /// sent none (a legacy client).
    pub fn from_connect(obj: &Value) -> Option<ClientCaps> {
        let list = obj.get("fourCcList");
        let video = obj.get("videoFourCcInfoMap");
        let audio = obj.get("audioFourCcInfoMap");
        let caps_ex = obj.get("capsEx");
        if list.is_none() && video.is_none() && audio.is_none() && caps_ex.is_none() {
            return None;
        }
        let fourcc_list = match list {
            Some(Value::StrictArray(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .filter(|c| is_fourcc(c))
                .take(MAX_FOURCCS)
                .map(str::to_string)
                .collect(),
            // FFmpeg 6.1's `rtmp_enhanced_codecs` option sends the list as a strict array;
            // accept a single comma-separated string as well.
            Some(Value::String(s)) => s
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| is_fourcc(c))
                .take(MAX_FOURCCS)
                .collect(),
            _ => Vec::new(),
        };
        Some(ClientCaps {
            fourcc_list,
            video: info_map(video),
            audio: info_map(audio),
            caps_ex: caps_ex
                .and_then(Value::as_f64)
                .filter(|n| n.is_finite() && *n >= 0.0)
                .map_or(0, |n| n.min(f64::from(u32::MAX)) as u32),
        })
    }

    /// Whether the client can send or receive `fourcc` by its declarations (`*` matches
    /// anything).
    pub fn lists(&self, fourcc: &str) -> bool {
        let any = |c: &str| c == fourcc || c == "*";
        self.fourcc_list.iter().any(|c| any(c))
            || self
                .video
                .iter()
                .chain(&self.audio)
                .any(|(c, m)| any(c) && *m != 0)
    }
}

/// A FourCC or the `*` wildcard: anything else a client lists is ignored, so a connection
/// cannot pin long strings for its whole life.
fn is_fourcc(c: &str) -> bool {
    c.len() == 4 || c == "*"
}

fn info_map(v: Option<&Value>) -> Vec<(String, u32)> {
    let props = match v {
        Some(Value::Object(p) | Value::EcmaArray(p) | Value::TypedObject { props: p, .. }) => p,
        _ => return Vec::new(),
    };
    props
        .iter()
        .filter(|(k, _)| is_fourcc(k))
        .take(MAX_FOURCCS)
        .filter_map(|(k, v)| {
            let n = v.as_f64().filter(|n| n.is_finite() && *n >= 0.0)?;
            Some((k.clone(), (n.min(f64::from(u32::MAX))) as u32))
        })
        .collect()
}

/// shardcast's `capsEx`: multitrack passes through, `ModEx` is parsed.
pub const SERVER_CAPS_EX: u32 = caps::CAPS_EX_MULTITRACK | caps::CAPS_EX_MOD_EX;

/// What shardcast carries, as Enhanced RTMP `connect` properties: `fourCcList` (v1: the video
/// FourCCs), the v2 info maps (every FourCC `CanForward` only) and `capsEx`. The server adds
/// them to its `_result` for an Enhanced RTMP client; the relay client sends them in its own
/// `connect`, as OBS does, so an E-RTMP ingest (YouTube's needs it for HEVC and AV1) knows
/// the relay may send those codecs.
pub fn forwarding_properties() -> Vec<(String, Value)> {
    let map = |list: &[&str]| {
        Value::object(
            list.iter()
                .map(|c| (*c, Value::Number(f64::from(caps::CAN_FORWARD)))),
        )
    };
    vec![
        (
            "fourCcList".to_string(),
            Value::StrictArray(
                caps::VIDEO_FOURCCS
                    .iter()
                    .map(|c| Value::from(*c))
                    .collect(),
            ),
        ),
        ("videoFourCcInfoMap".to_string(), map(&caps::VIDEO_FOURCCS)),
        ("audioFourCcInfoMap".to_string(), map(&caps::AUDIO_FOURCCS)),
        (
            "capsEx".to_string(),
            Value::Number(f64::from(SERVER_CAPS_EX)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_connect_has_no_caps() {
        let obj = Value::object([("app", Value::from("live"))]);
        assert_eq!(ClientCaps::from_connect(&obj), None);
    }

    #[test]
    fn v1_list_and_v2_maps() {
        // FFmpeg 6.1+ with `-rtmp_enhanced_codecs hvc1,av01` sends a fourCcList strict array.
        let obj = Value::object([
            ("app", Value::from("live")),
            (
                "fourCcList",
                Value::StrictArray(vec![Value::from("hvc1"), Value::from("av01")]),
            ),
            (
                "videoFourCcInfoMap",
                Value::EcmaArray(vec![
                    ("vp09".into(), Value::Number(4.0)),
                    ("junk".into(), Value::from("x")),
                ]),
            ),
            (
                "audioFourCcInfoMap",
                Value::object([("*", Value::Number(6.0))]),
            ),
            ("capsEx", Value::Number(2.0)),
        ]);
        let c = ClientCaps::from_connect(&obj).unwrap();
        assert_eq!(c.fourcc_list, ["hvc1", "av01"]);
        assert_eq!(c.video, [("vp09".to_string(), 4)]);
        assert_eq!(c.audio, [("*".to_string(), 6)]);
        assert_eq!(c.caps_ex, 2);
        assert!(c.lists("hvc1") && c.lists("vp09") && c.lists("Opus"));
        let only_caps = Value::object([("capsEx", Value::Number(-1.0))]);
        assert_eq!(ClientCaps::from_connect(&only_caps).unwrap().caps_ex, 0);
    }

    #[test]
    fn server_answer_is_forward_only() {
        let props = forwarding_properties();
        let obj = Value::Object(props);
        let video = obj.get("videoFourCcInfoMap").unwrap();
        assert_eq!(video.get("hvc1"), Some(&Value::Number(4.0)));
        assert_eq!(video.get("av01"), Some(&Value::Number(4.0)));
        let audio = obj.get("audioFourCcInfoMap").unwrap();
        assert_eq!(audio.get("Opus"), Some(&Value::Number(4.0)));
        assert_eq!(obj.get("capsEx"), Some(&Value::Number(6.0)));
        let Some(Value::StrictArray(list)) = obj.get("fourCcList") else {
            panic!("fourCcList")
        };
        assert!(list.contains(&Value::from("hvc1")));
    }
}
