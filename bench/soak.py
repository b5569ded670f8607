#!/usr/bin/env python3
"""Soak: publishers and viewers join and leave at random for a long time (30 minutes by
default) while shardcast's RSS, open file descriptors and per-shard task counts are sampled
every minute. After warm-up, all three must stay flat; at the end every client leaves and the
server must return to its idle figures. Writes bench/SOAK.md (or --out) and a JSON log.

    bench/soak.py                          # 30 minutes, the committed report
    bench/soak.py --minutes 3 --out /tmp/soak.md   # a quick look

Everything listens on and connects to 127.0.0.1. Publishers are ffmpeg pushing a small
pre-encoded file with -c copy (no encoding during the soak); RTMP viewers are ffmpeg copying
to null; HTTP-FLV and HLS viewers are threads of this script reading and discarding.
"""

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out" / "soak"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_media(path):
    """10 s of 320x240 H.264 + AAC, GOP 1 s, encoded once."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "10",
         "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-b:v", "400k",
         "-c:a", "aac", "-b:a", "64k", "-f", "flv", str(path)],
        check=True)


class Server:
    def __init__(self, binary, shards, workdir):
        self.ports = {k: free_port() for k in ("rtmp", "flv", "hls", "api")}
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = open(workdir / "shardcast.log", "w")
        env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
        self.proc = subprocess.Popen(
            [binary, "--config_file=",
             f"--rtmp_addr=127.0.0.1:{self.ports['rtmp']}",
             f"--httpflv_addr=127.0.0.1:{self.ports['flv']}",
             f"--hls_addr=127.0.0.1:{self.ports['hls']}",
             f"--api_addr=127.0.0.1:{self.ports['api']}",
             "--rtmp_noauth", f"--shards={shards}", "--level=warn"],
            cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                self.metrics()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("shardcast did not start")

    def metrics(self):
        url = f"http://127.0.0.1:{self.ports['api']}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()

    def sample(self):
        pid = self.proc.pid
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        text = self.metrics()
        tasks = {int(m.group(1)): int(m.group(2)) for m in
                 re.finditer(r'^shardcast_tasks\{shard="(\d+)"\} (\d+)', text, re.M)}
        return {"rss_kib": rss, "fds": fds, "tasks": tasks}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


class Clients:
    """Every client of the soak, each with a time to leave."""

    def __init__(self, server, media, rooms, rng):
        self.s, self.media, self.rooms, self.rng = server, media, rooms, rng
        self.publishers = {}   # room -> (Popen, leave_at)
        self.rtmp_viewers = []  # (Popen, leave_at)
        self.threads = []      # (Thread, stop Event, kind)
        self.joined = {"publish": 0, "rtmp": 0, "flv": 0, "hls": 0}

    def tick(self, caps):
        now = time.time()
        for room, (p, leave) in list(self.publishers.items()):
            if now >= leave or p.poll() is not None:
                stop_proc(p)
                del self.publishers[room]
        kept = []
        for p, leave in self.rtmp_viewers:
            if now >= leave or p.poll() is not None:
                stop_proc(p)
            else:
                kept.append((p, leave))
        self.rtmp_viewers = kept
        for t, stop, leave, kind in self.threads:
            if now >= leave:
                stop.set()
        self.threads = [x for x in self.threads if x[0].is_alive()]
        # Join at random, up to the caps.
        if len(self.publishers) < caps["publish"] and self.rng.random() < 0.3:
            free = [r for r in self.rooms if r not in self.publishers]
            room = self.rng.choice(free)
            url = f"rtmp://127.0.0.1:{self.s.ports['rtmp']}/live/{room}"
            p = subprocess.Popen(
                ["ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", str(self.media),
                 "-c", "copy", "-f", "flv", url],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.publishers[room] = (p, now + self.rng.uniform(20, 240))
            self.joined["publish"] += 1
        for _ in range(3):
            kind = self.rng.choice(["rtmp", "flv", "flv", "hls"])
            room = self.rng.choice(self.rooms)
            if kind == "rtmp":
                if len(self.rtmp_viewers) < caps["rtmp"]:
                    url = f"rtmp://127.0.0.1:{self.s.ports['rtmp']}/live/{room}"
                    p = subprocess.Popen(
                        ["ffmpeg", "-v", "error", "-rw_timeout", "10000000", "-i", url,
                         "-c", "copy", "-f", "null", "-"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
                    self.rtmp_viewers.append((p, now + self.rng.uniform(5, 120)))
                    self.joined["rtmp"] += 1
            elif sum(1 for x in self.threads if x[3] == kind) < caps[kind]:
                stop = threading.Event()
                target = flv_viewer if kind == "flv" else hls_viewer
                t = threading.Thread(target=target, args=(self.s, room, stop), daemon=True)
                t.start()
                self.threads.append((t, stop, now + self.rng.uniform(5, 120), kind))
                self.joined[kind] += 1

    def counts(self):
        c = {"publish": len(self.publishers), "rtmp": len(self.rtmp_viewers)}
        for kind in ("flv", "hls"):
            c[kind] = sum(1 for x in self.threads if x[3] == kind)
        return c

    def leave_all(self):
        for p, _ in self.publishers.values():
            stop_proc(p)
        for p, _ in self.rtmp_viewers:
            stop_proc(p)
        for t, stop, _, _ in self.threads:
            stop.set()
        for t, _, _, _ in self.threads:
            t.join(timeout=15)
        self.publishers, self.rtmp_viewers, self.threads = {}, [], []


def stop_proc(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def flv_viewer(server, room, stop):
    """GET /live/<room>.flv and read until told to stop or the server closes."""
    try:
        with socket.create_connection(("127.0.0.1", server.ports["flv"]), timeout=10) as s:
            s.sendall(f"GET /live/{room}.flv HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            s.settimeout(1)
            while not stop.is_set():
                try:
                    if not s.recv(65536):
                        return
                except socket.timeout:
                    pass
    except OSError:
        pass


def hls_viewer(server, room, stop):
    """Reload the playlist every 2 s and fetch each new segment, like hls.js."""
    base = f"http://127.0.0.1:{server.ports['hls']}/live/"
    seen = set()
    while not stop.wait(2):
        try:
            with urllib.request.urlopen(f"{base}{room}.m3u8", timeout=5) as r:
                lines = r.read().decode().splitlines()
            for seg in [x for x in lines if x and not x.startswith("#")]:
                if seg not in seen:
                    seen.add(seg)
                    url = seg if seg.startswith("http") else base + seg
                    with urllib.request.urlopen(url, timeout=5) as r:
                        r.read()
        except OSError:
            pass  # no publisher yet, or it left: try again


def report(rows, args, drained, idle, exit_code):
    warm = [r for r in rows if r["minute"] >= args.warmup]
    def spread(key, pick):
        vals = [pick(r) for r in warm]
        return (min(vals), max(vals)) if vals else (0, 0)
    rss = spread("rss", lambda r: r["rss_kib"])
    fds = spread("fds", lambda r: r["fds"])
    lines = [
        "# Soak",
        "",
        f"`bench/soak.py --minutes {args.minutes}` on {args.when}: shardcast "
        f"(`--shards {args.shards}`, release build) with publishers and viewers joining and "
        "leaving at random: up to "
        f"{args.publishers} ffmpeg publishers (-c copy, 320x240 H.264 + AAC, ~0.5 Mbit/s, each "
        "staying 20-240 s), up to "
        f"{args.rtmp} RTMP viewers (ffmpeg), {args.flv} HTTP-FLV and {args.hls} HLS viewers "
        "(each staying 5-120 s, on a random room of 12, live or not). One sample a minute; "
        "then every client leaves and the idle figures are taken again.",
        "",
        "| minute | RSS MiB | fds | tasks per shard | publishers | RTMP | FLV | HLS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    def row(label, r):
        tasks = " / ".join(str(r["tasks"].get(i, "?")) for i in sorted(r["tasks"]))
        c = r.get("clients", {})
        return (f"| {label} | {r['rss_kib'] / 1024:.1f} | {r['fds']} | {tasks} | "
                f"{c.get('publish', 0)} | {c.get('rtmp', 0)} | {c.get('flv', 0)} | "
                f"{c.get('hls', 0)} |")
    lines.append(row("idle, before", idle))
    for r in rows:
        lines.append(row(str(r["minute"]), r))
    lines.append(row("idle, after", drained))
    lines += [
        "",
        f"After the {args.warmup}-minute warm-up: RSS between {rss[0] / 1024:.1f} and "
        f"{rss[1] / 1024:.1f} MiB, descriptors between {fds[0]} and {fds[1]} (they follow "
        "the number of clients connected at the sample). Once every client left: "
        f"{drained['fds']} descriptors and {sum(drained['tasks'].values())} tasks, against "
        f"{idle['fds']} and {sum(idle['tasks'].values())} before the first client; RSS "
        f"{drained['rss_kib'] / 1024:.1f} MiB against {idle['rss_kib'] / 1024:.1f} MiB at "
        "start. SIGTERM at the end: exit code "
        f"{exit_code}.",
        "",
        "Joined over the run: " + ", ".join(f"{v} {k}" for k, v in args.joined.items()) + ".",
        "",
        "Reading it: descriptors and tasks follow the clients connected at the moment of the "
        "sample and must come back to the idle figures once they leave (a leaked connection, "
        "timer or relay would stay). RSS rises over the first minutes (GOP caches, HLS "
        "windows, player buffers, the allocator's arenas) and must then stay in a band; the "
        "allocator keeps freed pages, so the idle RSS after the run is not expected to fall "
        "back to the start-up figure, only to stay within that band.",
        "",
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5, help="minutes not judged (default 5)")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--publishers", type=int, default=8)
    ap.add_argument("--rtmp", type=int, default=6, help="RTMP viewers at most")
    ap.add_argument("--flv", type=int, default=60, help="HTTP-FLV viewers at most")
    ap.add_argument("--hls", type=int, default=20, help="HLS viewers at most")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "shardcast"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "SOAK.md"))
    args = ap.parse_args()
    if args.minutes < 1 or args.minutes > 240:
        sys.exit("--minutes: 1..=240")
    args.when = time.strftime("%Y-%m-%d")
    rng = random.Random(args.seed)
    media = OUT_DIR / "media.flv"
    make_media(media)
    server = Server(args.binary, args.shards, OUT_DIR / "run")
    rooms = [f"r{i}" for i in range(12)]
    clients = Clients(server, media, rooms, rng)
    caps = {"publish": args.publishers, "rtmp": args.rtmp, "flv": args.flv, "hls": args.hls}
    # /metrics is the shards' report of their last tick (once a second): let one pass.
    time.sleep(2)
    idle = server.sample()
    rows = []
    start = time.time()
    next_sample = start + 60
    try:
        while time.time() < start + args.minutes * 60:
            clients.tick(caps)
            if time.time() >= next_sample:
                r = server.sample()
                r["minute"] = round((time.time() - start) / 60)
                r["clients"] = clients.counts()
                rows.append(r)
                print(json.dumps(r), flush=True)
                next_sample += 60
            time.sleep(1)  # the churn's pace: one round of joins and leaves a second
    finally:
        clients.leave_all()
    # Let the server notice every departure (read timeouts, HLS viewer expiry).
    settle = time.time() + 90
    drained = server.sample()
    while time.time() < settle and drained["fds"] > idle["fds"]:
        time.sleep(2)
        drained = server.sample()
    time.sleep(2)  # one more tick, so the task counts are those of the drained server
    drained = server.sample()
    exit_code = server.stop()
    args.joined = clients.joined
    text = report(rows, args, drained, idle, exit_code)
    Path(args.out).write_text(text)
    (OUT_DIR / "soak.json").write_text(json.dumps(
        {"rows": rows, "idle": idle, "drained": drained}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
