//! Writing recordings: the hub sink that starts a recording per publish of an app with
//! recording on (`flv_archive`, or the app's `record`), and one writer task per file.
//!
//! The sink runs inside the hub on the stream's home shard and never waits: it turns each
//! frame into FLV pieces ([`crate::record::FlvRecorder`], the payload shared, not copied)
//! and queues them. The writer task drains the queue into a glommio buffered file (io_uring
//! writes, so the executor thread never blocks on the disk), flushing at least every
//! [`FLUSH_EVERY`] so a `kill -9` loses at most that much. A disk slower than the stream
//! makes the queue grow to `record_max_pending_bytes`; past it, frames are skipped up to the
//! next keyframe (logged), never blocking the publisher.

use super::hooks::HookClient;
use crate::hooks::{Action, HookEvent};
use crate::hub::{Frame, HomeSink};
use crate::media::MediaKind;
use crate::record::{record_path, FlvRecorder};
use ahash::{AHashMap, AHashSet};
use bytes::Bytes;
use futures_lite::AsyncWriteExt;
use glommio::io::{OpenOptions, StreamWriterBuilder};
use std::cell::RefCell;
use std::future::poll_fn;
use std::path::PathBuf;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime};
use tracing::{info, warn};

/// Longest time written bytes may sit in the writer's buffer.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Size of the file writer's buffer.
const WRITE_BUF: usize = 128 * 1024;
/// Files tried for one second before giving up (`room_{unix}_{n}.flv`).
const MAX_SAME_SECOND: u32 = 100;

/// What and where to record.
#[derive(Debug, Clone)]
pub struct RecordSettings {
    pub dir: PathBuf,
    /// Apps recorded (`flv_archive` makes it every app).
    pub apps: AHashSet<String>,
    pub max_pending_bytes: usize,
}

/// The queue between the sink and a file's writer task.
#[derive(Default)]
struct Pending {
    pieces: Vec<Bytes>,
    bytes: usize,
    waker: Option<Waker>,
    /// The stream ended: write what is queued, then close the file.
    finished: bool,
    /// The writer is done (file closed or failed): nothing more is accepted.
    done: bool,
}

/// One file being written.
struct Recording {
    pending: RefCell<Pending>,
}

impl Recording {
    fn queue(&self, pieces: &mut Vec<Bytes>) {
        let mut p = self.pending.borrow_mut();
        if p.done || p.finished {
            // Shutdown ended the file while the publisher still sends.
            pieces.clear();
            return;
        }
        p.bytes += pieces.iter().map(Bytes::len).sum::<usize>();
        p.pieces.append(pieces);
        if let Some(w) = p.waker.take() {
            w.wake();
        }
    }

    fn finish(&self) {
        let mut p = self.pending.borrow_mut();
        p.finished = true;
        if let Some(w) = p.waker.take() {
            w.wake();
        }
    }

    fn pending_bytes(&self) -> usize {
        self.pending.borrow().bytes
    }

    /// Wait for queued pieces; `None` once the stream ended and everything was taken.
    async fn next_batch(&self) -> Option<Vec<Bytes>> {
        poll_fn(|cx| {
            let mut p = self.pending.borrow_mut();
            if !p.pieces.is_empty() {
                p.bytes = 0;
                return Poll::Ready(Some(std::mem::take(&mut p.pieces)));
            }
            if p.finished {
                return Poll::Ready(None);
            }
            p.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// The writers of one shard, so shutdown can finish them.
#[derive(Default)]
pub(crate) struct Recorders {
    live: RefCell<Vec<Rc<Recording>>>,
}

impl Recorders {
    /// End every recording and wait (at most `limit`) until their files are closed.
    pub async fn finish_all(&self, limit: Duration) {
        let all: Vec<Rc<Recording>> = self.live.borrow().clone();
        for r in &all {
            r.finish();
        }
        let deadline = Instant::now() + limit;
        while all.iter().any(|r| !r.pending.borrow().done) && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
    }

    fn add(&self, r: Rc<Recording>) {
        self.live.borrow_mut().push(r);
    }

    fn remove(&self, r: &Rc<Recording>) {
        self.live.borrow_mut().retain(|x| !Rc::ptr_eq(x, r));
    }
}

/// A stream being recorded, as the sink sees it.
struct Active {
    rec: Rc<Recording>,
    flv: FlvRecorder,
    /// Over the queue bound: skip until the next keyframe.
    skipping: bool,
    has_video: bool,
    scratch: Vec<Bytes>,
}

/// The hub sink that records the streams a shard is home of.
pub(crate) struct RecordSink {
    settings: RecordSettings,
    recorders: Rc<Recorders>,
    active: AHashMap<String, Active>,
    /// Told `on_record_done` when a file is closed.
    hooks: Rc<HookClient>,
}

impl RecordSink {
    pub fn new(settings: RecordSettings, recorders: Rc<Recorders>, hooks: Rc<HookClient>) -> Self {
        RecordSink {
            settings,
            recorders,
            active: AHashMap::new(),
            hooks,
        }
    }

    fn end(&mut self, key: &str) {
        if let Some(mut a) = self.active.remove(key) {
            a.flv.finish(&mut a.scratch);
            a.rec.queue(&mut a.scratch);
            a.rec.finish();
        }
    }
}

impl HomeSink for RecordSink {
    fn on_publish(&mut self, key: &str) {
        let Some((app, room)) = key.split_once('/') else {
            return;
        };
        if !self.settings.apps.contains(app) {
            return;
        }
        // A republish (or a replaced publisher) starts a new file.
        self.end(key);
        let rec = Rc::new(Recording {
            pending: RefCell::default(),
        });
        let (dir, app, room) = (self.settings.dir.clone(), app.to_owned(), room.to_owned());
        self.recorders.add(rec.clone());
        let recorders = self.recorders.clone();
        let writer = rec.clone();
        let hooks = self.hooks.clone();
        super::spawn(async move {
            let file = write_recording(&writer, dir, &app, &room).await;
            if let Some(path) = file {
                let ev = HookEvent {
                    app,
                    stream: room,
                    protocol: "rtmp",
                    file: Some(
                        std::path::absolute(&path)
                            .unwrap_or(path)
                            .display()
                            .to_string(),
                    ),
                    ..HookEvent::default()
                };
                hooks.notify(Action::RecordDone, &ev);
            }
            writer.pending.borrow_mut().done = true;
            recorders.remove(&writer);
        })
        .detach();
        let active = Active {
            rec,
            flv: FlvRecorder::new(),
            skipping: false,
            has_video: false,
            scratch: Vec::new(),
        };
        self.active.insert(key.to_owned(), active);
    }

    fn on_frame(&mut self, key: &str, frame: &Frame) {
        let Some(a) = self.active.get_mut(key) else {
            return;
        };
        let max = self.settings.max_pending_bytes;
        a.has_video |= frame.kind == MediaKind::Video;
        if a.skipping || a.rec.pending_bytes() > max {
            // Resume where a player could: a keyframe (any frame of an audio-only stream).
            let resumes = frame.header
                || (frame.keyframe && (frame.kind == MediaKind::Video || !a.has_video));
            if !resumes || a.rec.pending_bytes() > max {
                if !a.skipping {
                    warn!(
                        stream = key,
                        max, "recording cannot keep up: skipping to the next keyframe"
                    );
                }
                a.skipping = true;
                return;
            }
            a.skipping = false;
        }
        a.flv.push(frame, &mut a.scratch);
        a.rec.queue(&mut a.scratch);
    }

    fn on_unpublish(&mut self, key: &str) {
        self.end(key);
    }

    fn tick(&mut self, _now: Instant) {}
}

/// Create the file and write the recording's pieces to it until the stream ends; the path of
/// the file when it was closed without error.
async fn write_recording(rec: &Recording, dir: PathBuf, app: &str, room: &str) -> Option<PathBuf> {
    let Some((path, file)) = create_file(&dir, app, room).await else {
        // Nothing can be written: drop what comes (the `done` flag stops the queue).
        return None;
    };
    info!(path = %path.display(), "recording started");
    let mut out = StreamWriterBuilder::new(file)
        .with_buffer_size(WRITE_BUF)
        .build();
    let mut written = 0u64;
    let mut flushed = Instant::now();
    let mut failed = None;
    while let Some(batch) = rec.next_batch().await {
        for piece in &batch {
            if let Err(e) = out.write_all(piece).await {
                failed = Some(e);
                break;
            }
            written += piece.len() as u64;
        }
        if failed.is_some() {
            break;
        }
        if flushed.elapsed() >= FLUSH_EVERY {
            if let Err(e) = out.flush().await {
                failed = Some(e);
                break;
            }
            flushed = Instant::now();
        }
    }
    rec.pending.borrow_mut().done = true;
    let closed = out.close().await;
    match failed.map_or(closed, Err) {
        Ok(()) => {
            info!(path = %path.display(), bytes = written, "recording finished");
            Some(path)
        }
        Err(e) => {
            warn!(path = %path.display(), error = %e, bytes = written, "recording failed");
            None
        }
    }
}

/// Make `dir/app` and a file no one else has: `room_{unix}.flv`, or `_1`, `_2`… after it.
async fn create_file(
    dir: &std::path::Path,
    app: &str,
    room: &str,
) -> Option<(PathBuf, glommio::io::BufferedFile)> {
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let app_dir = dir.join(app);
    let mkdir = app_dir.clone();
    // Creating directories has no io_uring operation in glommio: a blocking-pool call.
    let made = glommio::executor()
        .spawn_blocking(move || std::fs::create_dir_all(&mkdir))
        .await;
    if let Err(e) = made {
        warn!(dir = %app_dir.display(), error = %e, "cannot record: directory not created");
        return None;
    }
    for n in 0..MAX_SAME_SECOND {
        let path = match record_path(dir, app, room, unix, n) {
            Ok(p) => p,
            Err(bad) => {
                warn!(name = %bad.0, "cannot record: name would leave flv_dir");
                return None;
            }
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .buffered_open(&path)
            .await
        {
            Ok(f) => return Some((path, f)),
            Err(e) if is_exists(&e) => continue,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot record: file not created");
                return None;
            }
        }
    }
    warn!(
        app,
        room, "cannot record: too many files in the same second"
    );
    None
}

fn is_exists(e: &glommio::GlommioError<()>) -> bool {
    use glommio::GlommioError::{EnhancedIoError, IoError};
    match e {
        IoError(io) | EnhancedIoError { source: io, .. } => {
            io.kind() == std::io::ErrorKind::AlreadyExists
        }
        _ => false,
    }
}
