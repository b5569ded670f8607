//! A player that stops reading must cost nobody else a frame, and must not make the server's
//! memory grow without bound.

mod common;

use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Frames published: 20 s at 30 fps.
const FRAMES: u32 = 600;
/// Padding per video frame: 40 KB at 30 fps is about 10 Mbit/s.
const PADDING: usize = 40_000;

#[test]
fn a_stalled_player_is_timed_out_and_costs_others_nothing() {
    stalled_player_scenario("slow", &["--write_timeout", "5"], "write_timeout");
}

#[test]
fn a_lagging_player_is_skipped_then_dropped_and_costs_others_nothing() {
    // A small queue and a long write timeout: the skip-to-keyframe path acts first.
    let args = ["--write_timeout", "60", "--player_queue_bytes", "2000000"];
    stalled_player_scenario("lag", &args, "keep up");
}

/// One player stops reading for the whole 20 s run while another reads everything.
fn stalled_player_scenario(name: &str, args: &[&str], close_reason: &str) {
    let mut all = vec!["--shards", "2"];
    all.extend_from_slice(args);
    let server = Server::start(name, &all);
    let key = key_of(&server, "slow");

    // The stalled player: plays, then never reads again.
    let mut stalled = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    stalled.play("slow").unwrap();
    let mut healthy = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    healthy.play("slow").unwrap();
    let baseline = rss_kib(server.pid());
    assert!(baseline > 0, "RSS readable from /proc");

    let addr = server.rtmp_addr();
    let publisher = thread::spawn(move || {
        let mut p = RtmpClient::connect(addr, "live").unwrap();
        p.publish(&key).unwrap();
        p.send_video(0, &avc_sequence_header()).unwrap();
        let start = Instant::now();
        for i in 0..FRAMES {
            // Real-time pacing of the source, as an encoder would send.
            let due = Duration::from_millis(u64::from(i) * 33);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                thread::sleep(wait);
            }
            let frame = avc_frame_sized(i % 30 == 0, i, PADDING);
            p.send_video(i * 33, &frame).unwrap();
        }
        p
    });

    // Sample the server's memory while everything runs.
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (peak, done, pid) = (peak.clone(), done.clone(), server.pid());
        thread::spawn(move || {
            while done.load(Ordering::SeqCst) == 0 {
                peak.fetch_max(rss_kib(pid), Ordering::SeqCst);
                thread::sleep(Duration::from_millis(200));
            }
        })
    };

    let got = healthy.read_media(Duration::from_secs(40), FRAMES as usize + 1);
    done.store(1, Ordering::SeqCst);
    sampler.join().unwrap();
    let _publisher = publisher.join().unwrap();

    let seqs: Vec<u32> = got.iter().filter_map(|m| frame_seq(&m.2)).collect();
    assert_eq!(
        seqs,
        (0..FRAMES).collect::<Vec<_>>(),
        "the healthy player lost no frame"
    );
    let closed = server.wait_for_line(
        |l| l.contains("closing") && l.contains(close_reason),
        Duration::from_secs(5),
    );
    assert!(closed.is_some(), "the stalled player was disconnected");
    let growth_mib = peak.load(Ordering::SeqCst).saturating_sub(baseline) / 1024;
    assert!(
        growth_mib < 96,
        "memory grew by {growth_mib} MiB with a stalled player"
    );
    drop(stalled);
}
