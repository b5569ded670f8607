//! Player and publisher URLs: the scheme picks the protocol.

use std::net::SocketAddr;

use shardcast::rtmp::client::RtmpUrl;

use crate::http::{resolve, split_url, HttpUrl};

/// Player protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Rtmp,
    Flv,
    Hls,
    Raw,
}

impl Proto {
    /// Name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rtmp => "rtmp",
            Self::Flv => "flv",
            Self::Hls => "hls",
            Self::Raw => "raw",
        }
    }
}

/// Where one player (or publisher) connects.
#[derive(Debug, Clone)]
pub enum Target {
    /// `rtmp://host:port/app/name`.
    Rtmp { addr: SocketAddr, url: RtmpUrl },
    /// `http://host:port/...` (not `.m3u8`): HTTP-FLV.
    Flv(HttpUrl),
    /// `http://host:port/....m3u8`: HLS.
    Hls(HttpUrl),
    /// `tcp://host:port`: FLV header then tags, no HTTP.
    Raw(SocketAddr),
}

impl Target {
    /// Parses a URL (with `{i}` already replaced).
    pub fn parse(url: &str) -> Result<Self, String> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("rtmp://") {
            let parsed = RtmpUrl::parse(url).map_err(|e| format!("{url}: {e}"))?;
            let addr = resolve(&parsed.authority(), parsed.port)?;
            Ok(Self::Rtmp { addr, url: parsed })
        } else if lower.starts_with("http://") {
            let u = HttpUrl::parse(url)?;
            let path = u.path.split('?').next().unwrap_or("");
            if path.to_ascii_lowercase().ends_with(".m3u8") {
                Ok(Self::Hls(u))
            } else {
                Ok(Self::Flv(u))
            }
        } else if lower.starts_with("tcp://") {
            let (authority, _) = split_url(url, "tcp://").ok_or("bad tcp:// URL")?;
            Ok(Self::Raw(resolve(authority, 0)?))
        } else {
            Err(format!("{url}: scheme must be rtmp://, http:// or tcp://"))
        }
    }

    /// The player protocol of this target.
    pub fn proto(&self) -> Proto {
        match self {
            Self::Rtmp { .. } => Proto::Rtmp,
            Self::Flv(_) => Proto::Flv,
            Self::Hls(_) => Proto::Hls,
            Self::Raw(_) => Proto::Raw,
        }
    }

    /// The address connected to.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Self::Rtmp { addr, .. } | Self::Raw(addr) => *addr,
            Self::Flv(u) | Self::Hls(u) => u.addr,
        }
    }
}

/// A URL template with `{i}` replaced by `index`.
pub fn expand(template: &str, index: usize) -> String {
    template.replace("{i}", &index.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let t = Target::parse(&expand("rtmp://127.0.0.1:39350/live/b{i}", 3)).unwrap();
        match &t {
            Target::Rtmp { addr, url } => {
                assert_eq!(addr.port(), 39350);
                assert_eq!((url.app.as_str(), url.stream.as_str()), ("live", "b3"));
            }
            _ => panic!("{t:?}"),
        }
        let t = Target::parse("http://127.0.0.1:37001/live/b0.flv").unwrap();
        assert_eq!(t.proto(), Proto::Flv);
        let t = Target::parse("http://127.0.0.1:37002/live/b0.m3u8").unwrap();
        assert_eq!(t.proto(), Proto::Hls);
        let t = Target::parse("tcp://127.0.0.1:9000").unwrap();
        assert_eq!((t.proto(), t.addr().port()), (Proto::Raw, 9000));
        assert!(Target::parse("udp://x").is_err());
        assert!(Target::parse("rtmp://127.0.0.1:0/live").is_err());
    }
}
