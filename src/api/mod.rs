//! The livego-compatible key control API (livego.md §2.3), as a sans-IO function.
//!
//! Every answer uses livego's envelope `{"status":N,"data":...}` with the HTTP status equal to
//! `status`. Like livego, any method is accepted (parameters from the query string or an
//! urlencoded body); `OPTIONS` gets a CORS preflight; HEAD is answered like GET and the serve
//! layer drops the body. Differences from livego, on purpose:
//! - a failing key store answers 503 with its reason (livego: 400): the request was fine;
//! - room names that cannot be a stream name are refused with 400 (livego allowed `../x`);
//! - unknown paths answer a JSON 404 rather than Go's text `404 page not found`;
//! - `/control/reset` invalidates the old key and `/control/delete` always invalidates the
//!   key (see [`crate::keys`]).
//!
//! The store is called synchronously: when `keys.is_blocking()`, run [`handle`] off the executor.
//!
//! Every request first goes through [`route`]: the JWT check when `jwt.secret` or
//! `jwt.public_key` is set ([`jwt`]), for every method and path, then the CORS preflight, then
//! `/statics/` ([`statics`]) or the control routes.

pub mod jwt;
pub mod statics;

pub mod relay;

use serde_json::Value;

use crate::http::{preflight, Request, Response};
use crate::keys::{validate_room, KeyError, KeyStore};
use crate::relay::Registry;
use crate::stats::{self, LivestatError, StatsBoard};

pub use jwt::JwtAuth;
pub use statics::StaticPath;

/// What to do with a request, decided before any handler runs.
#[derive(Debug)]
pub enum Route {
    /// Answer at once: a refused token (403), a preflight, a bad or redirected path.
    Answer(Response),
    /// Serve this file from `statics_dir`.
    Statics(StaticPath),
    /// A control route: call [`handle`].
    Control,
}

/// Route a request. With `auth` set, a request without a valid token at Unix time `now` is
/// answered 403 whatever its method or path: unlike livego, `OPTIONS` is no way around it.
pub fn route(req: &Request, auth: Option<&JwtAuth>, now: u64) -> Route {
    if let Some(auth) = auth {
        if let Err(reason) = auth.authorize(req, now) {
            return Route::Answer(reply(403, &reason));
        }
    }
    if req.method == "OPTIONS" {
        return Route::Answer(preflight(req));
    }
    let path = match req.decoded_path() {
        Ok(path) => path,
        Err(e) => return Route::Answer(e.to_response()),
    };
    match statics::resolve(&req.method, &path, &req.path, &req.query) {
        Some(Ok(file)) => Route::Statics(file),
        Some(Err(answer)) => Route::Answer(answer),
        None => Route::Control,
    }
}

/// What the API handlers need.
pub struct ApiContext<'a> {
    /// The room-key store.
    pub keys: &'a dyn KeyStore,
    /// Every shard's latest statistics.
    pub stats: &'a StatsBoard,
    /// Every relay session (for `/metrics`).
    pub relays: &'a Registry,
}

/// Routes one request to `/control/get`, `/control/reset`, `/control/delete`,
/// `/stat/livestat` or `/metrics`; anything else is a 404 `{"status":404,"data":"not found"}`.
/// `/control/pull` and `/control/push` wait on the network: the serve layer routes them first
/// (see [`relay`]).
pub fn handle(req: &Request, ctx: &ApiContext) -> Response {
    if req.method == "OPTIONS" {
        return preflight(req);
    }
    let path = match req.decoded_path() {
        Ok(path) => path,
        Err(e) => return e.to_response(),
    };
    match path.as_str() {
        "/control/get" => control_get(req, ctx.keys),
        "/control/reset" => control_reset(req, ctx.keys),
        "/control/delete" => control_delete(req, ctx.keys),
        "/stat/livestat" => livestat(req, ctx.stats),
        "/metrics" => metrics(ctx),
        _ => reply(404, "not found"),
    }
}

/// `/stat/livestat[?room=APP/ROOM]`: publishers and players of every protocol and shard.
fn livestat(req: &Request, board: &StatsBoard) -> Response {
    let room = req.param("room").filter(|r| !r.is_empty());
    match stats::livestat(&board.reports(), room.as_deref()) {
        Ok(data) => Response::envelope(200, &data),
        Err(LivestatError::RoomNotFound) => reply(404, "room not found or inactive"),
    }
}

/// `/metrics`: the Prometheus text format.
fn metrics(ctx: &ApiContext) -> Response {
    let text = stats::metrics_text(&ctx.stats.reports(), &ctx.relays.gauges());
    Response::new(200)
        .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        .with_body(text)
}

/// `/control/get?room=ROOM`: the room's key, created if needed.
fn control_get(req: &Request, keys: &dyn KeyStore) -> Response {
    match room_param(req, "/control/get") {
        Ok(room) => key_reply(keys.get_key(&room)),
        Err(resp) => resp,
    }
}

/// `/control/reset?room=ROOM`: a new key for the room.
fn control_reset(req: &Request, keys: &dyn KeyStore) -> Response {
    match room_param(req, "/control/reset") {
        Ok(room) => key_reply(keys.reset_key(&room)),
        Err(resp) => resp,
    }
}

/// `/control/delete?room=ROOM`: forget the room and its key.
fn control_delete(req: &Request, keys: &dyn KeyStore) -> Response {
    let room = match room_param(req, "/control/delete") {
        Ok(room) => room,
        Err(resp) => return resp,
    };
    match keys.delete_room(&room) {
        Ok(true) => reply(200, "Ok"),
        Ok(false) => reply(404, "room not found"),
        Err(e) => unavailable(&e),
    }
}

/// The `room` parameter, or the 400 to answer: livego's usage string when it is missing or
/// empty, the reason when it is not a valid room name.
fn room_param(req: &Request, route: &str) -> Result<String, Response> {
    let room = req.param("room").unwrap_or_default();
    if room.is_empty() {
        return Err(reply(400, &format!("url: {route}?room=<ROOM_NAME>")));
    }
    match validate_room(&room) {
        Ok(()) => Ok(room),
        Err(why) => Err(reply(400, &format!("invalid room name: {why}"))),
    }
}

fn key_reply(result: Result<String, KeyError>) -> Response {
    match result {
        Ok(key) => reply(200, &key),
        Err(e) => unavailable(&e),
    }
}

fn unavailable(e: &KeyError) -> Response {
    reply(503, &e.to_string())
}

fn reply(status: u16, data: &str) -> Response {
    Response::envelope(status, &Value::String(data.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, Limits};
    use crate::keys::MemoryKeyStore;

    fn request(head: &str) -> Request {
        let limits = Limits {
            max_header_bytes: 4096,
            max_body_bytes: 4096,
        };
        parse_request(head.as_bytes(), &limits).unwrap().unwrap().0
    }

    fn call(store: &dyn KeyStore, head: &str) -> (u16, String) {
        let stats = StatsBoard::new(1);
        let resp = handle(
            &request(head),
            &ApiContext {
                keys: store,
                stats: &stats,
                relays: &Registry::new(),
            },
        );
        assert_eq!(resp.get_header("Content-Type"), Some("application/json"));
        (resp.status, String::from_utf8(resp.body.to_vec()).unwrap())
    }

    fn get(store: &dyn KeyStore, target: &str) -> (u16, String) {
        call(store, &format!("GET {target} HTTP/1.1\r\n\r\n"))
    }

    /// The key inside a `{"status":200,"data":"<key>"}` body.
    fn key_of(body: &str) -> String {
        let v: Value = serde_json::from_str(body).unwrap();
        v["data"].as_str().unwrap().to_owned()
    }

    #[test]
    fn get_creates_then_returns_the_same_key() {
        let store = MemoryKeyStore::new();
        let (status, body) = get(&store, "/control/get?room=movie");
        assert_eq!(status, 200);
        let key = key_of(&body);
        assert_eq!(body, format!("{{\"status\":200,\"data\":\"{key}\"}}"));
        assert_eq!(key.len(), 48);
        assert_eq!(get(&store, "/control/get?room=movie"), (200, body));
        assert_eq!(store.room_for_key(&key), Ok(Some("movie".to_owned())));
    }

    #[test]
    fn post_form_and_any_method_work() {
        let store = MemoryKeyStore::new();
        let (status, body) = call(
            &store,
            "POST /control/get HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 8\r\n\r\nroom=abc",
        );
        assert_eq!(status, 200);
        assert_eq!(
            store.room_for_key(&key_of(&body)),
            Ok(Some("abc".to_owned()))
        );
        let (status, _) = call(&store, "PUT /control/get?room=abc HTTP/1.1\r\n\r\n");
        assert_eq!(status, 200);
    }

    #[test]
    fn reset_replaces_the_key() {
        let store = MemoryKeyStore::new();
        let old = key_of(&get(&store, "/control/get?room=movie").1);
        let (status, body) = get(&store, "/control/reset?room=movie");
        assert_eq!(status, 200);
        let new = key_of(&body);
        assert_ne!(new, old);
        assert_eq!(store.room_for_key(&old), Ok(None));
        assert_eq!(store.room_for_key(&new), Ok(Some("movie".to_owned())));
    }

    #[test]
    fn delete_known_and_unknown_rooms() {
        let store = MemoryKeyStore::new();
        let key = key_of(&get(&store, "/control/get?room=movie").1);
        assert_eq!(
            get(&store, "/control/delete?room=movie"),
            (200, r#"{"status":200,"data":"Ok"}"#.to_owned())
        );
        assert_eq!(store.room_for_key(&key), Ok(None));
        assert_eq!(
            get(&store, "/control/delete?room=movie"),
            (404, r#"{"status":404,"data":"room not found"}"#.to_owned())
        );
    }

    #[test]
    fn missing_or_empty_room_gives_usage() {
        let store = MemoryKeyStore::new();
        for route in ["/control/get", "/control/reset", "/control/delete"] {
            let usage = format!(r#"{{"status":400,"data":"url: {route}?room=<ROOM_NAME>"}}"#);
            assert_eq!(get(&store, route), (400, usage.clone()));
            assert_eq!(get(&store, &format!("{route}?room=")), (400, usage));
        }
    }

    #[test]
    fn bad_room_names_are_refused() {
        let store = MemoryKeyStore::new();
        let cases = [
            ("%2e%2e", r#"room name cannot be \".\" or \"..\""#),
            ("a%2Fb", r#"room name contains forbidden character '/'"#),
            ("a%0Ab", r#"room name contains forbidden character '\\n'"#),
        ];
        for (room, why) in cases {
            let (status, body) = get(&store, &format!("/control/get?room={room}"));
            assert_eq!(status, 400);
            assert_eq!(
                body,
                format!(r#"{{"status":400,"data":"invalid room name: {why}"}}"#)
            );
        }
        let long = "a".repeat(257);
        assert_eq!(get(&store, &format!("/control/reset?room={long}")).0, 400);
    }

    /// A store whose backend is down.
    struct DownStore;

    impl KeyStore for DownStore {
        fn get_key(&self, _: &str) -> Result<String, KeyError> {
            Err(KeyError::Unavailable("connection refused".into()))
        }
        fn reset_key(&self, room: &str) -> Result<String, KeyError> {
            self.get_key(room)
        }
        fn delete_room(&self, room: &str) -> Result<bool, KeyError> {
            self.get_key(room).map(|_| true)
        }
        fn room_for_key(&self, key: &str) -> Result<Option<String>, KeyError> {
            self.get_key(key).map(Some)
        }
    }

    #[test]
    fn store_errors_are_503() {
        let body = r#"{"status":503,"data":"key store unavailable: connection refused"}"#;
        for route in ["get", "reset", "delete"] {
            let target = format!("/control/{route}?room=movie");
            assert_eq!(get(&DownStore, &target), (503, body.to_owned()));
        }
    }

    #[test]
    fn livestat_has_livegos_envelope_and_404s_an_unknown_room() {
        let store = MemoryKeyStore::new();
        assert_eq!(
            get(&store, "/stat/livestat"),
            (
                200,
                r#"{"status":200,"data":{"players":[],"publishers":[]}}"#.into()
            )
        );
        assert_eq!(
            get(&store, "/stat/livestat?room=live/x"),
            (
                404,
                r#"{"status":404,"data":"room not found or inactive"}"#.into()
            )
        );
    }

    #[test]
    fn options_is_a_preflight() {
        let store = MemoryKeyStore::new();
        let resp = handle(
            &request("OPTIONS /control/reset?room=movie HTTP/1.1\r\n\r\n"),
            &ApiContext {
                keys: &store,
                stats: &StatsBoard::new(1),
                relays: &Registry::new(),
            },
        );
        assert_eq!(resp.status, 204);
        assert!(resp.body.is_empty());
        assert_eq!(
            resp.get_header("Access-Control-Allow-Methods"),
            Some("GET, POST, HEAD, OPTIONS")
        );
        // livego's OPTIONS bypass reached the handler; here it touches nothing.
        assert_eq!(store.delete_room("movie"), Ok(false));
    }

    #[test]
    fn unknown_paths_and_bad_paths() {
        let store = MemoryKeyStore::new();
        let not_found = (404, r#"{"status":404,"data":"not found"}"#.to_owned());
        assert_eq!(get(&store, "/"), not_found);
        assert_eq!(get(&store, "/control/get/?room=x"), not_found);
        // Relays are routed by the serve layer before this function.
        assert_eq!(get(&store, "/control/pull?room=x"), not_found);
        assert_eq!(get(&store, "/control/%67et?room=x").0, 200);
        assert_eq!(get(&store, "/control/%zz").0, 400);
    }

    fn routed(head: &str, auth: Option<&JwtAuth>) -> Route {
        route(&request(head), auth, 1_700_000_000)
    }

    fn answer(route: Route) -> (u16, String) {
        match route {
            Route::Answer(resp) => (resp.status, String::from_utf8(resp.body.to_vec()).unwrap()),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn every_request_needs_a_token_when_jwt_is_on() {
        let auth = JwtAuth::new("HS256", jwt::JwtKey::Secret(b"s3cret")).unwrap();
        let missing = (
            403,
            r#"{"status":403,"data":"Required authorization token not found"}"#.to_owned(),
        );
        for head in [
            "GET /control/get?room=a HTTP/1.1\r\n\r\n",
            "OPTIONS /control/reset?room=a HTTP/1.1\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\n\r\n",
            "GET /nope HTTP/1.1\r\n\r\n",
            "GET /statics/index.html HTTP/1.1\r\n\r\n",
            "GET /statics/../x HTTP/1.1\r\n\r\n",
            "GET /%zz HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(answer(routed(head, Some(&auth))), missing, "{head}");
        }
        let bad = "GET /control/get HTTP/1.1\r\nAuthorization: Token x\r\n\r\n";
        assert_eq!(
            answer(routed(bad, Some(&auth))),
            (
                403,
                r#"{"status":403,"data":"Authorization header format must be Bearer {token}"}"#
                    .to_owned()
            )
        );
        let garbage = "GET /control/get?jwt=a.b.c HTTP/1.1\r\n\r\n";
        assert_eq!(answer(routed(garbage, Some(&auth))).0, 403);
    }

    #[test]
    fn with_a_valid_token_requests_go_where_they_would_without_jwt() {
        use jsonwebtoken::{encode, EncodingKey, Header};
        let auth = JwtAuth::new("HS256", jwt::JwtKey::Secret(b"s3cret")).unwrap();
        let claims = serde_json::json!({"exp": 1_700_000_060u64});
        let token = encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap();
        let with = |head: &str| {
            head.replace(
                "\r\n\r\n",
                &format!("\r\nAuthorization: Bearer {token}\r\n\r\n"),
            )
        };
        for auth in [Some(&auth), None] {
            let head = with("OPTIONS /control/get HTTP/1.1\r\n\r\n");
            assert_eq!(answer(routed(&head, auth)).0, 204);
            let head = with("GET /control/get?room=a HTTP/1.1\r\n\r\n");
            assert!(matches!(routed(&head, auth), Route::Control));
            let head = with("GET /nope HTTP/1.1\r\n\r\n");
            assert!(matches!(routed(&head, auth), Route::Control));
            let head = with("GET /statics/app.js HTTP/1.1\r\n\r\n");
            let Route::Statics(file) = routed(&head, auth) else {
                panic!("statics")
            };
            assert_eq!(file.segments, ["app.js"]);
            let head = with("GET /statics/%2e%2e/x HTTP/1.1\r\n\r\n");
            assert_eq!(answer(routed(&head, auth)).0, 400);
            let head = with("GET /statics/..%2fx HTTP/1.1\r\n\r\n");
            assert_eq!(answer(routed(&head, auth)).0, 400);
            let head = with("GET /statics HTTP/1.1\r\n\r\n");
            assert_eq!(answer(routed(&head, auth)).0, 301);
            let head = with("GET /statics/%00 HTTP/1.1\r\n\r\n");
            assert_eq!(answer(routed(&head, auth)).0, 400);
        }
    }
}
