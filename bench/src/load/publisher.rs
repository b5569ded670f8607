//! Publisher tasks: connect, publish, then replay the file in real time with stamps.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use shardcast::rtmp::client::{ClientEvent, ClientSession, MediaKind, RtmpUrl};

use super::exec::{ConnState, Exec, PubRec};
use super::target::Target;
use crate::clock::{mono_ns, sleep_until};
use crate::flvfile::{FlvFile, TAG_AUDIO, TAG_VIDEO};
use crate::net::{connect, read_into, timeout, write_all, Shared};
use crate::replay::Pacer;

/// AMF0 string `@setDataFrame`: publishers wrap `onMetaData` in it (ffmpeg, OBS).
const SET_DATA_FRAME: &[u8] = b"\x02\x00\x0d@setDataFrame";

/// Runs one publisher until the executor drops it.
pub async fn run(ex: Rc<Exec>, rec: Rc<RefCell<PubRec>>, target: Target, file: Arc<FlvFile>) {
    let Target::Rtmp { addr, url } = target else {
        unreachable!("publish targets are RTMP (checked at start-up)");
    };
    rec.borrow_mut().state = ConnState::Connecting;
    let outcome = publish(&ex, &rec, addr, &url, file).await;
    let published = rec.borrow().state == ConnState::Connected;
    if !published {
        rec.borrow_mut().state = ConnState::Failed;
        ex.shared.pubs_settled.fetch_add(1, Ordering::AcqRel);
    }
    let e = outcome
        .err()
        .unwrap_or_else(|| "server closed the connection".into());
    if published {
        rec.borrow_mut().disconnected = true;
    }
    ex.error(format!("publisher: {e}"));
}

/// Connects and publishes; returns the stream, session and message stream id.
async fn setup(
    ex: &Exec,
    addr: std::net::SocketAddr,
    url: &RtmpUrl,
) -> Result<(Shared, ClientSession, u32), String> {
    let limit = Duration::from_secs_f64(ex.shared.cfg.connect_timeout);
    let stream = connect(addr, limit)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let stream = Rc::new(RefCell::new(stream));
    let mut session = ClientSession::new(url.client_config());
    let c0c1 = session.start();
    write_all(&stream, &c0c1)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut events = Vec::new();
    let mut stream_id = None;
    let handshake = async {
        loop {
            let fed = read_into(&stream, &ex.buf, |data| session.feed(data, &mut events))
                .await
                .map_err(|e| format!("read: {e}"))?;
            match fed {
                None => return Err("server closed the connection".to_owned()),
                Some(Err(e)) => return Err(format!("protocol error: {e}")),
                Some(Ok(())) => {}
            }
            for event in events.drain(..) {
                match event {
                    ClientEvent::Connected => session.create_stream(),
                    ClientEvent::ConnectRejected { code, .. } => {
                        return Err(format!("connect rejected: {code}"))
                    }
                    ClientEvent::StreamCreated { stream_id: id } => {
                        session.publish(id, &url.stream);
                        stream_id = Some(id);
                    }
                    ClientEvent::CreateStreamFailed { code, .. } => {
                        return Err(format!("createStream failed: {code}"))
                    }
                    ClientEvent::Status { level, code, .. } if level == "error" => {
                        return Err(format!("publish refused: {code}"))
                    }
                    ClientEvent::Status { code, .. } if code == "NetStream.Publish.Start" => {
                        if let Some(id) = stream_id {
                            return Ok(id);
                        }
                    }
                    _ => {}
                }
            }
            let out = session.take_output();
            write_all(&stream, &out)
                .await
                .map_err(|e| format!("write: {e}"))?;
        }
    };
    let id = timeout(limit, handshake)
        .await
        .ok_or("timed out before NetStream.Publish.Start")??;
    Ok((stream, session, id))
}

async fn publish(
    ex: &Exec,
    rec: &Rc<RefCell<PubRec>>,
    addr: std::net::SocketAddr,
    url: &RtmpUrl,
    file: Arc<FlvFile>,
) -> Result<(), String> {
    let stream_index = rec.borrow().stream;
    let mut pacer = Pacer::new(file, stream_index)?;
    let (stream, session, stream_id) = setup(ex, addr, url).await?;
    rec.borrow_mut().state = ConnState::Connected;
    ex.shared.pubs_settled.fetch_add(1, Ordering::AcqRel);
    let session = RefCell::new(session);
    // The reader feeds the session (acks, pings, status); the writer flushes its output.
    let reader = async {
        let mut events = Vec::new();
        loop {
            let fed = read_into(&stream, &ex.buf, |data| {
                session.borrow_mut().feed(data, &mut events)
            })
            .await
            .map_err(|e| format!("read: {e}"))?;
            match fed {
                None => return Err("server closed the connection".to_owned()),
                Some(Err(e)) => return Err(format!("protocol error: {e}")),
                Some(Ok(())) => {}
            }
            for event in events.drain(..) {
                if let ClientEvent::Status { level, code, .. } = event {
                    if level == "error" {
                        return Err(format!("status {code}"));
                    }
                }
            }
        }
    };
    let writer = async {
        let start = mono_ns();
        loop {
            sleep_until(start + pacer.next_ts_ms() * 1_000_000).await;
            let now = mono_ns();
            let in_window = ex.in_window(now);
            let out = {
                let mut s = session.borrow_mut();
                let mut frames = 0;
                while start + pacer.next_ts_ms() * 1_000_000 <= now {
                    let tag = pacer.next_tag(mono_ns());
                    frames += u64::from(tag.stamp.is_some());
                    let (kind, body) = match tag.type_id {
                        TAG_AUDIO => (MediaKind::Audio, tag.body),
                        TAG_VIDEO => (MediaKind::Video, tag.body),
                        _ => (MediaKind::Data, set_data_frame(&tag.body)),
                    };
                    s.send_media(stream_id, kind, tag.timestamp, &body);
                }
                if in_window {
                    rec.borrow_mut().frames += frames;
                }
                s.take_output()
            };
            if in_window {
                rec.borrow_mut().bytes += out.len() as u64;
            }
            write_all(&stream, &out)
                .await
                .map_err(|e| format!("write: {e}"))?;
        }
    };
    future::or(reader, writer).await
}

/// `@setDataFrame` + the metadata body, as publishers send it.
fn set_data_frame(body: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(SET_DATA_FRAME.len() + body.len());
    v.extend_from_slice(SET_DATA_FRAME);
    v.extend_from_slice(body);
    Bytes::from(v)
}
