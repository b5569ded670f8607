//! Relays: RTMP client connections that pull a remote stream into the hub (`/control/pull`)
//! or push a local stream out (`/control/push`, an app's `static_push`).
//!
//! Each relay is one task on the shard that started it (the API request's shard; for a
//! static push, the stream's home shard). The task drives a sans-IO [`ClientSession`] over a
//! transport ([`Transport`]: plain TCP, or TLS for `rtmps://`) and, when the remote drops or refuses,
//! reconnects with exponential backoff until it is stopped. It watches its registry
//! [`Handle`]'s stop flag every [`STOP_POLL`], so a stop may come from any shard.
//!
//! - A pull is a publisher like an RTMP one: `Hub::start_publish` once the remote accepted
//!   `play`, every media message through `Hub::publish_frame`, `stop_publish` when the
//!   connection ends. Replaced by another publisher, it ends for good (like an RTMP publisher).
//! - A push is a hub player with an ordinary bounded [`PlayerQueue`]: a slow or dead remote
//!   only loses its own frames (skips to keyframes, then the queue closes and the relay
//!   reconnects); the publisher and other players never wait for it. Frames go out as the
//!   shard's shared chunk encodings (`LocalFrame::rtmp_chunks`), like to any RTMP player.

use super::io::{Conn, Io};
use super::tls::{TlsConn, Transport};
use super::{within, ShardState};
use crate::api::relay::{self as api_relay, reply, Oper, RelayCommand};
use crate::http::{Request, Response};
use crate::hub::{release_burst, Frame, HomeSink, Item, PlayerQueue, PubId, StreamKey};
use crate::media::MediaKind as FrameKind;
use crate::relay::{Backoff, Handle, Kind, State};
use crate::rtmp::chunk::DecoderLimits;
use crate::rtmp::client::{ClientEvent, ClientSession, MediaKind, RtmpUrl};
use crate::stats::{Role as StatsRole, SessionGuard, SessionInfo};
use ahash::AHashMap;
use bytes::Bytes;
use futures_lite::future;
use glommio::net::TcpStream;
use std::cell::{OnceCell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn, Instrument};

/// Longest time one attempt may take until media can flow: name resolution, TCP connect,
/// handshake, `connect`, `createStream` and the answer to `play`/`publish`. The API's answer
/// to a start waits for the first attempt, so this also bounds that request.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// First reconnect delay; it doubles after each failure up to [`BACKOFF_MAX`].
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Longest reconnect delay. A session that ran at least this long resets the backoff.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often a relay task looks at its stop flag (and, for a pull, whether it was replaced).
const STOP_POLL: Duration = Duration::from_millis(200);
/// Size of one socket read.
const READ_BUF: usize = 64 * 1024;

/// Why a session ended.
enum Ended {
    /// Stopped by the API or the end of the published stream (static push).
    Stopped,
    /// A pull replaced by another publisher of its stream.
    Replaced,
    /// The remote refused, dropped or misbehaved: reconnect after a backoff.
    Failed(String),
}

/// A session whose `play` or `publish` the remote accepted.
struct Link<S> {
    io: S,
    session: RefCell<ClientSession>,
    /// The remote's message stream we play or publish on.
    stream_id: u32,
    peer: SocketAddr,
    /// Events that arrived with the acceptance (media right after Play.Start).
    pending: RefCell<VecDeque<ClientEvent>>,
}

/// What a relay asks of the remote.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    Play,
    Publish,
}

/// Resolve (off the executor: `ToSocketAddrs` blocks) and connect to the first address that
/// answers.
async fn dial(url: &RtmpUrl) -> Result<(Conn, SocketAddr), String> {
    let (host, port) = (url.host.clone(), url.port);
    let resolved = glommio::executor()
        .spawn_blocking(move || {
            (host.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>)
        })
        .await;
    let addrs = resolved.map_err(|e| format!("cannot resolve {}: {e}", url.host))?;
    let mut last = format!("no address for {}", url.host);
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok((Conn::new(s), addr)),
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

/// Dial `url` and run the session up to the remote's acceptance, within [`START_TIMEOUT`].
async fn open(st: &ShardState, url: &RtmpUrl, ask: Ask) -> Result<Link<Transport>, String> {
    let attempt = async {
        let (conn, peer) = dial(url).await?;
        conn.set_write_timeout(Some(Duration::from_secs(st.cfg.write_timeout)));
        let io = secure(st, conn, url)?;
        let mut cfg = url.client_config();
        // The remote gets the chunk size our players get, so pushed frames reuse the shard's
        // shared encodings.
        cfg.chunk_size = st.cfg.rtmp_chunk_size;
        let session = ClientSession::with_limits(cfg, limits(st));
        accept(io, peer, session, url, ask).await
    };
    within(START_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|| Err(format!("no answer within {} s", START_TIMEOUT.as_secs())))
}

/// The stream to speak RTMP on: the connection itself, or TLS over it for `rtmps://` (the
/// host name checked against the certificate unless `enable_tls_verify` is off).
fn secure(st: &ShardState, conn: Conn, url: &RtmpUrl) -> Result<Transport, String> {
    if !url.secure {
        return Ok(Transport::Plain(conn));
    }
    let config = st
        .relay_tls
        .clone()
        .map_err(|why| format!("rtmps: {why}"))?;
    TlsConn::client(conn, config, &url.host)
        .map(|t| Transport::Tls(Box::new(t)))
        .map_err(|e| format!("rtmps: {e}"))
}

fn limits(st: &ShardState) -> DecoderLimits {
    DecoderLimits {
        max_message_size: st.cfg.max_message_size,
        max_chunk_size: st.cfg.max_chunk_size,
        max_pending_bytes: st.cfg.max_pending_bytes,
        ..DecoderLimits::default()
    }
}

/// Handshake, `connect`, `createStream`, then `play` or `publish` until the remote accepts.
async fn accept<S: Io>(
    io: S,
    peer: SocketAddr,
    mut session: ClientSession,
    url: &RtmpUrl,
    ask: Ask,
) -> Result<Link<S>, String> {
    let mut buf = vec![0u8; READ_BUF];
    let mut pending = VecDeque::new();
    io.write_all(&session.start())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut step = Conversation {
        io: &io,
        session: &mut session,
        buf: &mut buf,
        pending: &mut pending,
    };
    step.answer(|e| match e {
        ClientEvent::Connected => Some(Ok(())),
        ClientEvent::ConnectRejected { code, description } => {
            Some(Err(format!("connect refused: {code} {description}")))
        }
        _ => None,
    })
    .await?;
    step.session.create_stream();
    let stream_id = step
        .answer(|e| match e {
            ClientEvent::StreamCreated { stream_id } => Some(Ok(*stream_id)),
            ClientEvent::CreateStreamFailed { code, description } => {
                Some(Err(format!("createStream refused: {code} {description}")))
            }
            _ => None,
        })
        .await?;
    let wanted = match ask {
        Ask::Play => {
            step.session.play(stream_id, &url.stream);
            "NetStream.Play.Start"
        }
        Ask::Publish => {
            step.session.publish(stream_id, &url.stream);
            "NetStream.Publish.Start"
        }
    };
    step.answer(|e| match e {
        ClientEvent::Status {
            level,
            code,
            description,
            ..
        } if level == "error" => Some(Err(format!("refused: {code} {description}"))),
        ClientEvent::Status { code, .. } if code == wanted => Some(Ok(())),
        _ => None,
    })
    .await?;
    Ok(Link {
        io,
        session: RefCell::new(session),
        stream_id,
        peer,
        pending: RefCell::new(pending),
    })
}

/// The set-up exchange: write what the session queued, read until an answer arrives.
struct Conversation<'a, S> {
    io: &'a S,
    session: &'a mut ClientSession,
    buf: &'a mut Vec<u8>,
    /// Events read but not consumed yet, in order.
    pending: &'a mut VecDeque<ClientEvent>,
}

impl<S: Io> Conversation<'_, S> {
    async fn answer<T>(
        &mut self,
        mut pick: impl FnMut(&ClientEvent) -> Option<Result<T, String>>,
    ) -> Result<T, String> {
        let mut events = Vec::new();
        loop {
            let out = self.session.take_output();
            if !out.is_empty() {
                self.io
                    .write_all(&out)
                    .await
                    .map_err(|e| format!("write: {e}"))?;
            }
            if let Some(i) = self.pending.iter().position(|e| pick(e).is_some()) {
                let event = self.pending.remove(i).expect("position is in range");
                // Events before the answer (onBWDone, control) are not needed any more.
                self.pending.drain(..i);
                return pick(&event).expect("picked above");
            }
            let n = match self.io.read(&mut self.buf[..]).await {
                Ok(0) => return Err("remote closed the connection".into()),
                Ok(n) => n,
                Err(e) => return Err(format!("read: {e}")),
            };
            self.session
                .feed(&self.buf[..n], &mut events)
                .map_err(|e| format!("bad input from remote: {e}"))?;
            self.pending.extend(events.drain(..));
        }
    }
}

// ---- the relay task ----

/// What a relay task needs to know.
struct Job {
    st: Rc<ShardState>,
    handle: Arc<Handle>,
    key: StreamKey,
    target: RtmpUrl,
}

impl Job {
    fn ask(&self) -> Ask {
        match self.handle.kind {
            Kind::Pull => Ask::Play,
            Kind::Push | Kind::StaticPush => Ask::Publish,
        }
    }
}

/// Run a relay until it is stopped (or, for a pull, replaced): sessions, then backoff and
/// reconnect after each failure. `first` is the link of a start the API already made.
async fn run(job: Job, mut first: Option<Link<Transport>>) {
    let handle = job.handle.clone();
    let mut backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX);
    loop {
        let link = match first.take() {
            Some(link) => Ok(link),
            None => {
                handle.set_state(State::Connecting);
                match future::or(
                    async { Some(open(&job.st, &job.target, job.ask()).await) },
                    async {
                        until_stopped(&handle).await;
                        None
                    },
                )
                .await
                {
                    Some(result) => result,
                    None => break,
                }
            }
        };
        let started = Instant::now();
        let ended = match link {
            Ok(link) => match handle.kind {
                Kind::Pull => pull(&job, &link).await,
                Kind::Push | Kind::StaticPush => push(&job, &link).await,
            },
            Err(why) => Ended::Failed(why),
        };
        match ended {
            Ended::Stopped => break,
            Ended::Replaced => {
                info!("replaced by another publisher of the stream: relay ended");
                break;
            }
            Ended::Failed(why) => warn!(reason = %why, "relay session failed"),
        }
        if started.elapsed() >= BACKOFF_MAX {
            backoff.reset();
        }
        handle.set_state(State::Backoff);
        let delay = backoff.next_delay();
        info!(delay_s = delay.as_secs(), "reconnecting after a delay");
        let slept = within(delay, until_stopped(&handle)).await;
        if slept.is_some() {
            break;
        }
    }
    job.st.relays.remove(&handle);
    info!("relay stopped");
}

/// Resolves once the handle is stopped.
async fn until_stopped(handle: &Handle) {
    while !handle.is_stopped() {
        glommio::timer::sleep(STOP_POLL).await;
    }
}

/// Start the relay task on this shard.
fn spawn(job: Job, first: Option<Link<Transport>>) {
    // No parent: the task outlives the API request that may have started it.
    let span = tracing::info_span!(
        parent: None,
        "relay",
        kind = job.handle.kind.label(),
        stream = %job.key,
        url = %job.handle.url,
        shard = job.st.id
    );
    super::spawn(run(job, first).instrument(span)).detach();
}

/// List a relay session in `/stat/livestat`.
fn list<S>(job: &Job, role: StatsRole, link: &Link<S>) -> SessionGuard {
    job.st.stats.open(SessionInfo {
        role,
        protocol: job.handle.kind.protocol(),
        key: job.key.clone(),
        url: job.handle.url.clone(),
        stream_id: link.stream_id,
        remote: link.peer.to_string(),
        connected_at: std::time::SystemTime::now(),
    })
}

// ---- pull ----

/// A pull session: publish locally what the remote plays to us.
async fn pull<S: Io>(job: &Job, link: &Link<S>) -> Ended {
    let st = &job.st;
    let conn = st.next_conn_id();
    if !st.directory.claim(&job.key, st.cfg.max_streams) {
        st.stats
            .counters
            .limit_reached(crate::limits::Limit::Streams);
        return Ended::Failed("max_streams reached: not publishing locally".into());
    }
    let id = st.hub.borrow_mut().start_publish(&job.key, conn);
    let guard = list(job, StatsRole::Publisher, link);
    job.handle.set_state(State::Running);
    info!(peer = %link.peer, "pull started: publishing locally");
    let mut publisher = Publisher {
        st,
        key: &job.key,
        id,
        resync: false,
        guard: &guard,
    };
    let ended = future::or(pull_loop(link, &mut publisher), async {
        loop {
            glommio::timer::sleep(STOP_POLL).await;
            if job.handle.is_stopped() {
                return Ended::Stopped;
            }
            if st.hub.borrow().is_kicked(conn) {
                return Ended::Replaced;
            }
        }
    })
    .await;
    st.hub.borrow_mut().stop_publish(&job.key, id);
    ended
}

/// The local publishing side of a pull.
struct Publisher<'a> {
    st: &'a ShardState,
    key: &'a StreamKey,
    id: PubId,
    /// After a frame had to be dropped (home shard congested), skip to the next keyframe.
    resync: bool,
    guard: &'a SessionGuard,
}

impl Publisher<'_> {
    /// As `RtmpConn::on_media`: video resumes at a keyframe after a drop, audio always goes.
    fn media(&mut self, kind: MediaKind, timestamp: u32, payload: Bytes) {
        let kind = match kind {
            MediaKind::Audio => FrameKind::Audio,
            MediaKind::Video => FrameKind::Video,
            MediaKind::Data => FrameKind::Data,
        };
        let frame = Frame::from_message(kind, timestamp, payload);
        let is_video = kind == FrameKind::Video;
        if self.resync && is_video && !frame.keyframe && !frame.header {
            return;
        }
        let keyframe = is_video && frame.keyframe;
        self.guard.meter().media(kind, frame.len());
        let sent = self
            .st
            .hub
            .borrow_mut()
            .publish_frame(self.key, self.id, frame);
        if !sent {
            self.resync = true;
        } else if keyframe {
            self.resync = false;
        }
    }
}

/// Read the remote's messages and publish their media; answers (acks, pongs) go back at once.
async fn pull_loop<S: Io>(link: &Link<S>, publisher: &mut Publisher<'_>) -> Ended {
    let read_timeout = Duration::from_secs(publisher.st.cfg.read_timeout);
    let mut buf = vec![0u8; READ_BUF];
    let mut events: Vec<ClientEvent> = link.pending.borrow_mut().drain(..).collect();
    loop {
        for event in events.drain(..) {
            match event {
                ClientEvent::Media {
                    kind,
                    timestamp,
                    payload,
                    stream_id,
                } if stream_id == link.stream_id => publisher.media(kind, timestamp, payload),
                ClientEvent::Status {
                    level,
                    code,
                    description,
                    ..
                } if level == "error" => {
                    return Ended::Failed(format!("remote said {code} {description}"));
                }
                _ => {}
            }
        }
        let n = match within(read_timeout, link.io.read(&mut buf)).await {
            None => {
                return Ended::Failed(format!(
                    "remote sent nothing for {} s",
                    read_timeout.as_secs()
                ))
            }
            Some(Ok(0)) => return Ended::Failed("remote closed the connection".into()),
            Some(Ok(n)) => n,
            Some(Err(e)) => return Ended::Failed(format!("read: {e}")),
        };
        publisher.guard.meter().wire(n);
        let fed = link.session.borrow_mut().feed(&buf[..n], &mut events);
        if let Err(e) = fed {
            return Ended::Failed(format!("bad input from remote: {e}"));
        }
        let out = link.session.borrow_mut().take_output();
        if !out.is_empty() {
            if let Err(e) = link.io.write_all(&out).await {
                return Ended::Failed(format!("write: {e}"));
            }
        }
    }
}

// ---- push ----

/// A push session: play the local stream as a hub player and publish it to the remote.
async fn push<S: Io>(job: &Job, link: &Link<S>) -> Ended {
    let st = &job.st;
    let cfg = &st.cfg;
    let queue = Rc::new(RefCell::new(PlayerQueue::new(
        cfg.player_queue_bytes,
        cfg.player_max_skips,
    )));
    let player = st.hub.borrow_mut().add_player(&job.key, queue.clone());
    let guard = list(job, StatsRole::Player, link);
    job.handle.set_state(State::Running);
    info!(peer = %link.peer, "push started");
    let ended = future::or(
        future::or(push_reader(link, &queue), push_writer(link, &queue, &guard)),
        async {
            until_stopped(&job.handle).await;
            Ended::Stopped
        },
    )
    .await;
    st.hub.borrow_mut().remove_player(&job.key, player);
    ended
}

/// Read what the remote sends (acks, pings, statuses); the session's answers join the queue
/// so that only the writer writes (no interleaved messages).
async fn push_reader<S: Io>(link: &Link<S>, queue: &RefCell<PlayerQueue>) -> Ended {
    let mut buf = vec![0u8; 4096];
    let mut events = Vec::new();
    loop {
        let n = match link.io.read(&mut buf).await {
            Ok(0) => return Ended::Failed("remote closed the connection".into()),
            Ok(n) => n,
            Err(e) => return Ended::Failed(format!("read: {e}")),
        };
        let fed = link.session.borrow_mut().feed(&buf[..n], &mut events);
        if let Err(e) = fed {
            return Ended::Failed(format!("bad input from remote: {e}"));
        }
        let out = link.session.borrow_mut().take_output();
        if !out.is_empty() {
            queue.borrow_mut().push_raw(out);
        }
        for event in events.drain(..) {
            if let ClientEvent::Status {
                level,
                code,
                description,
                ..
            } = event
            {
                if level == "error" {
                    return Ended::Failed(format!("remote said {code} {description}"));
                }
            }
        }
    }
}

/// Write the queue to the remote: protocol answers, and frames as the shard's shared chunks.
async fn push_writer<S: Io>(
    link: &Link<S>,
    queue: &RefCell<PlayerQueue>,
    guard: &SessionGuard,
) -> Ended {
    let chunk_size = link.session.borrow().out_chunk_size();
    let mut items = Vec::new();
    let mut bufs: Vec<Bytes> = Vec::new();
    loop {
        poll_fn(|cx| queue.borrow_mut().poll_drain(cx, &mut items)).await;
        if let Some(reason) = queue.borrow().closed() {
            return Ended::Failed(format!("remote cannot keep up: queue closed ({reason:?})"));
        }
        for item in items.drain(..) {
            match item {
                Item::Raw(b) => bufs.push(b),
                Item::Frame(f) => {
                    guard.meter().media(f.frame.kind, f.frame.len());
                    f.rtmp_chunks(chunk_size, link.stream_id, &mut bufs);
                }
                // The remote learns of our publisher's changes from the media itself.
                Item::Event(_) => {}
            }
        }
        release_burst(&mut items);
        let len: usize = bufs.iter().map(Bytes::len).sum();
        if let Err(e) = link.io.write_all_vectored(&mut bufs).await {
            return Ended::Failed(format!("write: {e}"));
        }
        guard.meter().wire(len);
    }
}

// ---- the API ----

/// `/control/pull` and `/control/push`: check, then start (waiting for the first attempt's
/// outcome) or stop.
pub(crate) async fn api_request(st: &Rc<ShardState>, req: &Request, kind: Kind) -> Response {
    let cmd = match api_relay::parse(req, kind, &st.cfg) {
        Ok(cmd) => cmd,
        Err(resp) => return resp,
    };
    let label = kind.label();
    match cmd.oper {
        Oper::Stop => match st.relays.stop(&cmd.id()) {
            Some(h) => {
                info!(kind = label, stream = %h.stream, url = %h.url, "relay stop requested");
                reply(200, &format!("{label} {} stopped", cmd.stream))
            }
            None => reply(404, &format!("no {label} relay for {}", cmd.stream)),
        },
        Oper::Start => start(st, cmd).await,
    }
}

/// Removes a registered handle unless disarmed (the request's future may be dropped).
struct Registered<'a> {
    st: &'a ShardState,
    handle: Option<Arc<Handle>>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.st.relays.remove(&h);
        }
    }
}

async fn start(st: &Rc<ShardState>, cmd: RelayCommand) -> Response {
    let label = cmd.kind.label();
    let Some(target) = cmd.target.clone() else {
        return reply(400, "missing url");
    };
    let handle = Arc::new(Handle::new(cmd.kind, cmd.id(), &cmd.stream, &cmd.url));
    if let Err(running) = st.relays.insert(handle.clone()) {
        let msg = format!("{label} {} already running ({})", cmd.stream, running.url);
        return reply(409, &msg);
    }
    let mut registered = Registered {
        st,
        handle: Some(handle.clone()),
    };
    let ask = if cmd.kind == Kind::Pull {
        Ask::Play
    } else {
        Ask::Publish
    };
    let link = match open(st, &target, ask).await {
        Ok(link) => link,
        Err(why) => {
            warn!(kind = label, stream = %cmd.stream, url = %cmd.url, reason = %why, "relay start failed");
            return reply(502, &format!("{label} {} failed: {why}", cmd.url));
        }
    };
    registered.handle = None;
    info!(kind = label, stream = %cmd.stream, url = %cmd.url, "relay started");
    let job = Job {
        st: st.clone(),
        handle,
        key: cmd.stream.as_str().into(),
        target,
    };
    spawn(job, Some(link));
    reply(200, &format!("{label} {} {} started", cmd.stream, cmd.url))
}

// ---- static push ----

/// The shard state, set once `shard_main` has built it (the sink exists before it).
pub(crate) type ShardCell = Rc<OnceCell<Weak<ShardState>>>;

/// The hub sink that starts an app's static pushes when one of its streams is published
/// (on the stream's home shard) and stops them when it ends. It only spawns tasks and sets
/// flags: the hub is borrowed while a sink runs, and a target never slows the publisher.
pub(crate) struct StaticPushSink {
    /// Target base URLs per app.
    targets: AHashMap<String, Vec<String>>,
    shard: ShardCell,
    active: AHashMap<String, Vec<Arc<Handle>>>,
}

impl StaticPushSink {
    pub fn new(targets: AHashMap<String, Vec<String>>, shard: ShardCell) -> Self {
        StaticPushSink {
            targets,
            shard,
            active: AHashMap::new(),
        }
    }
}

impl HomeSink for StaticPushSink {
    fn on_publish(&mut self, key: &str) {
        let Some((app, room)) = key.split_once('/') else {
            return;
        };
        // A replaced publisher continues the same stream: the pushes go on.
        let Some(urls) = self.targets.get(app) else {
            return;
        };
        if self.active.contains_key(key) {
            return;
        }
        let Some(st) = self.shard.get().and_then(Weak::upgrade) else {
            return;
        };
        let mut handles = Vec::new();
        for base in urls {
            let url = format!("{}/{room}", base.trim_end_matches('/'));
            let target = match api_relay::parse_url(&url) {
                Ok(t) => t,
                Err(_) => {
                    warn!(
                        stream = key,
                        url, "static_push target skipped: not a usable rtmp:// or rtmps:// URL"
                    );
                    continue;
                }
            };
            let id = st.relays.unique_id(Kind::StaticPush, key);
            let handle = Arc::new(Handle::new(Kind::StaticPush, id, key, &url));
            if st.relays.insert(handle.clone()).is_err() {
                continue;
            }
            handles.push(handle.clone());
            let job = Job {
                st: st.clone(),
                handle,
                key: key.into(),
                target,
            };
            // The task starts after this callback returns: it may use the hub then.
            spawn(job, None);
        }
        self.active.insert(key.to_owned(), handles);
    }

    fn on_frame(&mut self, _key: &str, _frame: &Frame) {}

    fn on_unpublish(&mut self, key: &str) {
        for h in self.active.remove(key).unwrap_or_default() {
            h.stop();
        }
    }

    fn tick(&mut self, _now: Instant) {}
}
