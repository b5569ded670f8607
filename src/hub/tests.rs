//! Hub behaviour across shards, with the mesh replaced by an in-memory network.

use super::*;
use std::task::{Context, Waker};

/// Messages in flight between test shards, with an optional per-link capacity.
#[derive(Default)]
struct Net {
    queue: RefCell<VecDeque<(usize, usize, HubMsg)>>,
    capacity: Cell<Option<usize>>,
}

struct TestOutbox {
    from: usize,
    net: Rc<Net>,
}

impl Outbox for TestOutbox {
    fn try_send(&self, to: usize, msg: HubMsg) -> Result<(), HubMsg> {
        let mut q = self.net.queue.borrow_mut();
        let in_link = q
            .iter()
            .filter(|(f, t, _)| *f == self.from && *t == to)
            .count();
        if self.net.capacity.get().is_some_and(|c| in_link >= c) {
            return Err(msg);
        }
        q.push_back((self.from, to, msg));
        Ok(())
    }
    fn send_reliable(&self, to: usize, msg: HubMsg) {
        self.net.queue.borrow_mut().push_back((self.from, to, msg));
    }
}

struct Cluster {
    net: Rc<Net>,
    hubs: Vec<Hub>,
    directory: Arc<Directory>,
}

impl Cluster {
    fn new(n: usize, gop_num: usize) -> Self {
        let net = Rc::new(Net::default());
        let directory = Arc::new(Directory::new());
        let hubs = (0..n)
            .map(|i| {
                let outbox = Rc::new(TestOutbox {
                    from: i,
                    net: net.clone(),
                });
                let cfg = HubConfig {
                    gop_num,
                    gop_cache_max_bytes: 1 << 20,
                };
                Hub::new(i, n, cfg, outbox, directory.clone())
            })
            .collect();
        Cluster {
            net,
            hubs,
            directory,
        }
    }

    /// Deliver every message in flight (and what they cause) in FIFO order.
    fn pump(&mut self) {
        loop {
            let next = self.net.queue.borrow_mut().pop_front();
            let Some((from, to, msg)) = next else { break };
            self.hubs[to].on_message(from, msg);
        }
    }
}

/// A key whose home is `home` among `n` shards.
fn key_homed_at(home: usize, n: usize) -> StreamKey {
    (0..)
        .map(|i| format!("live/room{i}"))
        .find(|k| shards::home_shard(k, n) == home)
        .map(|k| StreamKey::from(k.as_str()))
        .expect("some key hashes to every shard")
}

fn queue() -> Rc<RefCell<PlayerQueue>> {
    Rc::new(RefCell::new(PlayerQueue::new(1 << 20, 3)))
}

fn video(ts: u32, key: bool) -> Frame {
    let b0 = if key { 0x17 } else { 0x27 };
    frame(
        MediaKind::Video,
        ts,
        Bytes::from(vec![b0, 1, 0, 0, 0, ts as u8]),
    )
}

fn video_header() -> Frame {
    frame(
        MediaKind::Video,
        0,
        Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]),
    )
}

fn audio(ts: u32) -> Frame {
    frame(MediaKind::Audio, ts, Bytes::from(vec![0xaf, 1, ts as u8]))
}

/// (kind, timestamp) of every frame a queue holds, and its events.
fn drain(q: &Rc<RefCell<PlayerQueue>>) -> (Vec<(MediaKind, u32, bool)>, Vec<StreamEvent>) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut items = Vec::new();
    let _ = q.borrow_mut().poll_drain(&mut cx, &mut items);
    let mut frames = Vec::new();
    let mut events = Vec::new();
    for i in items {
        match i {
            Item::Frame(f) => frames.push((f.frame.kind, f.frame.timestamp, f.frame.header)),
            Item::Event(e) => events.push(e),
            Item::Raw(_) => {}
        }
    }
    (frames, events)
}

#[test]
fn players_on_every_shard_get_every_frame_in_order() {
    let mut c = Cluster::new(3, 1);
    let key = key_homed_at(0, 3);
    let players: Vec<_> = (0..3).map(|_| queue()).collect();
    for (shard, q) in players.iter().enumerate() {
        c.hubs[shard].add_player(&key, q.clone());
    }
    c.pump();
    // The publisher sits on shard 2, the home is shard 0.
    let id = c.hubs[2].start_publish(&key, 7);
    c.pump();
    assert!(c.hubs[1].is_live(&key));
    let mut sent = vec![video_header()];
    for i in 0..30u32 {
        sent.push(video(i * 40, i % 10 == 0));
        sent.push(audio(i * 40 + 5));
    }
    for f in &sent {
        assert!(c.hubs[2].publish_frame(&key, id, f.clone()));
        c.pump();
    }
    for q in &players {
        let (frames, events) = drain(q);
        assert_eq!(events, vec![StreamEvent::Published]);
        assert_eq!(frames.len(), sent.len(), "every frame arrives");
        let ts: Vec<u32> = frames.iter().map(|f| f.1).collect();
        let want: Vec<u32> = sent.iter().map(|f| f.timestamp).collect();
        assert_eq!(ts, want);
    }
}

#[test]
fn late_joiner_gets_headers_then_the_gop_from_its_keyframe() {
    let mut c = Cluster::new(2, 1);
    let key = key_homed_at(1, 2);
    let id = c.hubs[1].start_publish(&key, 1);
    let meta = frame(
        MediaKind::Data,
        0,
        Bytes::from_static(b"\x02\x00\x0d@setDataFrame\x02\x00\x0aonMetaData\x05"),
    );
    let mut all = vec![meta, video_header()];
    for i in 0..25u32 {
        all.push(video(i * 40, i % 10 == 0));
    }
    for f in all {
        c.hubs[1].publish_frame(&key, id, f);
    }
    c.pump();
    // Joins on the other shard after frame 24: GOP starts at the keyframe of frame 20.
    let q = queue();
    c.hubs[0].add_player(&key, q.clone());
    c.pump();
    let (frames, _) = drain(&q);
    assert_eq!(frames[0], (MediaKind::Data, 0, true));
    assert_eq!(frames[1], (MediaKind::Video, 0, true));
    let gop: Vec<u32> = frames[2..].iter().map(|f| f.1).collect();
    assert_eq!(gop, (20..25).map(|i| i * 40).collect::<Vec<_>>());
    // A second late joiner on the same shard is served from the local replica.
    let q2 = queue();
    c.hubs[0].add_player(&key, q2.clone());
    assert!(c.net.queue.borrow().is_empty());
    assert_eq!(drain(&q2).0.len(), frames.len());
}

#[test]
fn a_new_publisher_replaces_the_old_and_timestamps_continue() {
    let mut c = Cluster::new(2, 1);
    let key = key_homed_at(0, 2);
    let q = queue();
    c.hubs[1].add_player(&key, q.clone());
    let first = c.hubs[0].start_publish(&key, 1);
    c.pump();
    c.hubs[0].publish_frame(&key, first, video(1000, true));
    c.hubs[0].publish_frame(&key, first, video(1040, false));
    // The second publisher arrives on shard 1 and starts its clock at 0.
    let second = c.hubs[1].start_publish(&key, 2);
    c.pump();
    assert!(c.hubs[0].is_kicked(1), "old publisher kicked");
    assert!(!c.hubs[1].is_kicked(2));
    // The old publisher's late frames are ignored.
    c.hubs[0].publish_frame(&key, first, video(1080, false));
    c.hubs[1].publish_frame(&key, second, video(0, true));
    c.hubs[1].publish_frame(&key, second, video(40, false));
    c.pump();
    let (frames, events) = drain(&q);
    let ts: Vec<u32> = frames.iter().map(|f| f.1).collect();
    assert_eq!(ts, vec![1000, 1040, 1080, 1120]);
    assert_eq!(events, vec![StreamEvent::Published, StreamEvent::Published]);
}

/// A video frame with a composition offset (B-frame stream).
fn video_cts(ts: u32, key: bool, cts: u8) -> Frame {
    let b0 = if key { 0x17 } else { 0x27 };
    frame(MediaKind::Video, ts, Bytes::from(vec![b0, 1, 0, 0, cts, 9]))
}

#[test]
fn a_new_publisher_starts_after_the_last_picture_shown() {
    let mut c = Cluster::new(1, 1);
    let key = key_homed_at(0, 1);
    let q = queue();
    c.hubs[0].add_player(&key, q.clone());
    let first = c.hubs[0].start_publish(&key, 1);
    c.hubs[0].publish_frame(&key, first, video_cts(0, true, 67));
    // The last frame decoded (ts 33) is shown at 33 + 100 = 133: after the keyframe's 67.
    c.hubs[0].publish_frame(&key, first, video_cts(33, false, 100));
    let second = c.hubs[0].start_publish(&key, 2);
    c.hubs[0].publish_frame(&key, second, video_cts(0, true, 67));
    let (frames, _) = drain(&q);
    let ts: Vec<u32> = frames.iter().map(|f| f.1).collect();
    // 133 + 40 ms gap; its picture (at 173 + 67) comes after every old one.
    assert_eq!(ts, vec![0, 33, 173]);
}

#[test]
fn unpublish_notifies_players_who_keep_waiting_for_the_next_publisher() {
    let mut c = Cluster::new(2, 1);
    let key = key_homed_at(0, 2);
    let q = queue();
    c.hubs[1].add_player(&key, q.clone());
    c.pump();
    let p = c.hubs[0].start_publish(&key, 1);
    c.hubs[0].publish_frame(&key, p, video(0, true));
    c.pump();
    c.hubs[0].stop_publish(&key, p);
    c.pump();
    assert!(!c.hubs[1].is_live(&key));
    let p2 = c.hubs[0].start_publish(&key, 2);
    c.hubs[0].publish_frame(&key, p2, video(0, true));
    c.pump();
    let (frames, events) = drain(&q);
    assert_eq!(
        events,
        vec![
            StreamEvent::Published,
            StreamEvent::Unpublished,
            StreamEvent::Published
        ]
    );
    assert_eq!(frames.iter().map(|f| f.1).collect::<Vec<_>>(), vec![0, 40]);
}

#[test]
fn full_channel_drops_for_that_shard_then_resyncs_without_duplicates() {
    let mut c = Cluster::new(2, 2);
    let key = key_homed_at(0, 2);
    let remote = queue();
    let local = queue();
    c.hubs[1].add_player(&key, remote.clone());
    c.hubs[0].add_player(&key, local.clone());
    let p = c.hubs[0].start_publish(&key, 1);
    c.pump();
    c.hubs[0].publish_frame(&key, p, video_header());
    c.hubs[0].publish_frame(&key, p, video(0, true));
    c.pump();
    // Shard 1's link holds one message: frames 40 and 80 cannot all go through.
    c.net.capacity.set(Some(1));
    c.hubs[0].publish_frame(&key, p, video(40, false));
    c.hubs[0].publish_frame(&key, p, video(80, false));
    c.pump();
    c.net.capacity.set(None);
    c.hubs[0].publish_frame(&key, p, video(120, false));
    c.hubs[0].publish_frame(&key, p, video(160, true));
    c.pump();
    let (local_frames, _) = drain(&local);
    assert_eq!(local_frames.len(), 6, "the home's own player loses nothing");
    let (remote_frames, _) = drain(&remote);
    let ts: Vec<u32> = remote_frames.iter().filter(|f| !f.2).map(|f| f.1).collect();
    // 80 and 120 were not delivered; the snapshot sent at the next keyframe (160) carries
    // the cached GOPs (0..120, 160) and the player keeps only what it had not seen, in order.
    assert_eq!(ts, vec![0, 40, 80, 120, 160]);
}

#[test]
fn a_hole_the_cache_cannot_fill_resumes_at_the_next_keyframe() {
    let mut c = Cluster::new(2, 1);
    let key = key_homed_at(0, 2);
    let remote = queue();
    c.hubs[1].add_player(&key, remote.clone());
    let p = c.hubs[0].start_publish(&key, 1);
    c.pump();
    c.hubs[0].publish_frame(&key, p, video(0, true));
    c.pump();
    c.net.capacity.set(Some(0));
    c.hubs[0].publish_frame(&key, p, video(40, false));
    c.net.capacity.set(None);
    c.hubs[0].publish_frame(&key, p, video(80, false)); // not a start point: not resent
    c.hubs[0].publish_frame(&key, p, video(120, true)); // snapshot = this GOP only
    c.hubs[0].publish_frame(&key, p, video(160, false));
    c.pump();
    let (frames, _) = drain(&remote);
    let ts: Vec<u32> = frames.iter().map(|f| f.1).collect();
    assert_eq!(
        ts,
        vec![0, 120, 160],
        "no picture that references a lost frame"
    );
}

#[test]
fn streams_are_forgotten_when_nobody_uses_them() {
    let mut c = Cluster::new(2, 1);
    let key = key_homed_at(0, 2);
    let q = queue();
    let player = c.hubs[1].add_player(&key, q);
    let p = c.hubs[1].start_publish(&key, 3);
    c.pump();
    assert_eq!(c.hubs[0].stream_count(), 1);
    c.hubs[1].stop_publish(&key, p);
    c.hubs[1].remove_player(&key, player);
    c.pump();
    assert_eq!(c.hubs[0].stream_count(), 0);
    assert_eq!(c.hubs[1].stream_count(), 0);
}

#[test]
fn audio_only_streams_start_anywhere() {
    let mut c = Cluster::new(1, 1);
    let key = key_homed_at(0, 1);
    let p = c.hubs[0].start_publish(&key, 1);
    for i in 0..5 {
        c.hubs[0].publish_frame(&key, p, audio(i * 23));
    }
    let q = queue();
    c.hubs[0].add_player(&key, q.clone());
    c.hubs[0].publish_frame(&key, p, audio(200));
    let (frames, _) = drain(&q);
    assert_eq!(
        frames.iter().map(|f| f.1).collect::<Vec<_>>(),
        vec![92, 200]
    );
}

#[test]
fn the_directory_lists_a_stream_from_publish_start_to_its_end() {
    let mut c = Cluster::new(2, 1);
    let key = key_homed_at(0, 2);
    let p = c.hubs[1].start_publish(&key, 9);
    // Listed before the home even heard of it.
    assert_eq!(c.directory.get(&key), Some(StreamInfo::default()));
    c.pump();
    c.hubs[1].publish_frame(&key, p, video_header());
    c.hubs[1].publish_frame(&key, p, audio(0));
    c.pump();
    let info = c.directory.get(&key).unwrap();
    assert!(info.has_video && info.has_audio);
    c.hubs[1].stop_publish(&key, p);
    c.pump();
    assert_eq!(c.directory.get(&key), None);
}
