//! `/control/pull` and `/control/push` (livego.md §2.3): parameter checks and answers. The
//! serve layer runs the relay itself (starting one waits for the remote's answer).
//!
//! Differences from livego, on purpose: the HTTP status is the envelope's status (livego
//! answers 400 for a successful pull stop and 200 for every push error); `data` is plain text
//! (no HTML fragments); a relay that already runs answers 409 (livego overwrote it and leaked
//! the old one); a start answers only once the remote accepted play/publish (502 otherwise);
//! `url` is not needed to stop; a pulled stream is published straight into the hub, so the
//! operator who calls the API needs no channel key for `name`.

use crate::config::Config;
use crate::http::{Request, Response};
use crate::keys::validate_room;
use crate::relay::{session_id, Kind};
use crate::rtmp::client::RtmpUrl;
use serde_json::Value;

/// Start or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oper {
    Start,
    Stop,
}

/// A checked relay request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayCommand {
    pub kind: Kind,
    pub oper: Oper,
    /// The local stream, `app/name`.
    pub stream: String,
    /// The remote URL as given (start only; empty for stop).
    pub url: String,
    /// The parsed remote URL (start only).
    pub target: Option<RtmpUrl>,
}

impl RelayCommand {
    /// The registry id of this relay (`pull:app/name`).
    pub fn id(&self) -> String {
        session_id(self.kind, &self.stream)
    }
}

/// The relay kind `path` routes to, if any.
pub fn route(path: &str) -> Option<Kind> {
    match path {
        "/control/pull" => Some(Kind::Pull),
        "/control/push" => Some(Kind::Push),
        _ => None,
    }
}

/// Check a relay request's parameters; the `Err` is the 400 to answer.
pub fn parse(req: &Request, kind: Kind, cfg: &Config) -> Result<RelayCommand, Response> {
    let param = |name| req.param(name).unwrap_or_default();
    let (oper, app, name, url) = (param("oper"), param("app"), param("name"), param("url"));
    let oper = match oper.as_str() {
        "start" => Oper::Start,
        "stop" => Oper::Stop,
        _ => return Err(usage(kind)),
    };
    if app.is_empty() || name.is_empty() || (oper == Oper::Start && url.is_empty()) {
        return Err(usage(kind));
    }
    if !cfg.app(&app).is_some_and(|a| a.live) {
        return Err(reply(400, &format!("unknown or disabled live app `{app}`")));
    }
    if let Err(why) = validate_room(&name) {
        return Err(reply(400, &format!("invalid stream name: {why}")));
    }
    let target = match oper {
        Oper::Start => Some(parse_url(&url)?),
        Oper::Stop => None,
    };
    Ok(RelayCommand {
        kind,
        oper,
        stream: format!("{app}/{name}"),
        url: if oper == Oper::Start {
            url
        } else {
            String::new()
        },
        target,
    })
}

/// A remote URL a relay can use: `rtmp[s]://host[:port]/app/stream`.
pub fn parse_url(url: &str) -> Result<RtmpUrl, Response> {
    let parsed = RtmpUrl::parse(url).map_err(|e| reply(400, &format!("invalid url: {e}")))?;
    if parsed.stream.is_empty() {
        return Err(reply(400, "invalid url: no stream name after the app"));
    }
    Ok(parsed)
}

fn usage(kind: Kind) -> Response {
    let route = kind.label();
    reply(
        400,
        &format!(
            "url: /control/{route}?oper=start|stop&app=APP&name=NAME&url=rtmp://HOST[:PORT]/APP/NAME"
        ),
    )
}

/// livego's envelope with a text `data`.
pub fn reply(status: u16, data: &str) -> Response {
    Response::envelope(status, &Value::String(data.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, Limits};

    fn request(target: &str) -> Request {
        let head = format!("GET {target} HTTP/1.1\r\n\r\n");
        let limits = Limits {
            max_header_bytes: 4096,
            max_body_bytes: 4096,
        };
        parse_request(head.as_bytes(), &limits).unwrap().unwrap().0
    }

    fn cfg() -> Config {
        let args = ["shardcast".to_owned()];
        let no_file = |_: &std::path::Path| Err(std::io::ErrorKind::NotFound.into());
        Config::load_with(&args, &|_| None, &no_file).unwrap()
    }

    fn err(kind: Kind, target: &str) -> (u16, String) {
        let resp = parse(&request(target), kind, &cfg()).unwrap_err();
        (resp.status, String::from_utf8(resp.body.to_vec()).unwrap())
    }

    #[test]
    fn start_and_stop_parse() {
        let c = parse(
            &request("/control/pull?oper=start&app=live&name=x&url=rtmp://h:1936/live/y?k=1"),
            Kind::Pull,
            &cfg(),
        )
        .unwrap();
        assert_eq!(
            (c.oper, c.stream.as_str(), c.id()),
            (Oper::Start, "live/x", "pull:live/x".into())
        );
        let t = c.target.unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.app.as_str()),
            ("h", 1936, "live")
        );
        assert_eq!(t.stream, "y?k=1");
        let c = parse(
            &request("/control/push?oper=stop&app=live&name=x"),
            Kind::Push,
            &cfg(),
        )
        .unwrap();
        assert_eq!(
            (c.oper, c.id(), c.target),
            (Oper::Stop, "push:live/x".into(), None)
        );
    }

    #[test]
    fn bad_parameters_are_400() {
        let usage = r#"{"status":400,"data":"url: /control/pull?oper=start|stop&app=APP&name=NAME&url=rtmp://HOST[:PORT]/APP/NAME"}"#;
        for target in [
            "/control/pull",
            "/control/pull?oper=go&app=live&name=x&url=rtmp://h/a/b",
            "/control/pull?oper=start&app=live&name=x",
            "/control/pull?oper=start&app=&name=x&url=rtmp://h/a/b",
        ] {
            assert_eq!(err(Kind::Pull, target), (400, usage.to_owned()), "{target}");
        }
        let cases = [
            (
                "app=nope&name=x&url=rtmp://h/a/b",
                "unknown or disabled live app `nope`",
            ),
            (
                "app=live&name=..&url=rtmp://h/a/b",
                "invalid stream name: room name cannot be \\\".\\\" or \\\"..\\\"",
            ),
            (
                "app=live&name=x&url=http://h/a/b",
                "invalid url: URL does not start with rtmp:// or rtmps://",
            ),
            (
                "app=live&name=x&url=rtmp://h/a",
                "invalid url: no stream name after the app",
            ),
        ];
        for (query, why) in cases {
            let (status, body) = err(Kind::Push, &format!("/control/push?oper=start&{query}"));
            assert_eq!(status, 400, "{query}");
            assert_eq!(
                body,
                format!(r#"{{"status":400,"data":"{why}"}}"#),
                "{query}"
            );
        }
    }

    #[test]
    fn routes() {
        assert_eq!(route("/control/pull"), Some(Kind::Pull));
        assert_eq!(route("/control/push"), Some(Kind::Push));
        assert_eq!(route("/control/get"), None);
    }
}
