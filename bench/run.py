#!/usr/bin/env python3
"""Benchmark orchestrator for shardcast (Python 3 standard library only).

Starts each server under test (shardcast, nginx-rtmp, xiu, and the raw fan-out ceiling) on
127.0.0.1 ports, drives it with the load generator (`shardcast-bench load`), keeps the raw
JSON of every run under bench/out/, and writes a Markdown report of medians (bench/RESULTS.md).
Installing the peers and building the binaries is scripts/bench's job; run that, not this.

Every process started here gets its own session and is killed at the end, on error, and on
SIGINT/SIGTERM/SIGHUP; its process-group id is also listed in bench/out/.live-pids so that
scripts/bench can kill whatever is left should this process itself be killed.
"""

import argparse
import datetime
import hashlib
import ipaddress
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
PEERS_DIR = BENCH_DIR / "peers"
TARGET = ROOT / "target" / "release"
OUT_ROOT = BENCH_DIR / "out"
PIDFILE = OUT_ROOT / ".live-pids"

SERVERS = ["shardcast", "shardcast-mw", "nginx", "xiu", "raw"]
TITLE = {"shardcast": "shardcast", "shardcast-mw": "shardcast, merge_write_ms=100",
         "nginx": "nginx-rtmp", "xiu": "xiu", "raw": "raw ceiling"}
# Fan-out only: shardcast with merged writes (SRS mw_latency), its CPU-saving mode.
FANOUT_ONLY = {"shardcast-mw"}
SCENARIOS = ["fanout", "join", "ingest", "mixed"]
PROTO_TITLE = {"rtmp": "RTMP", "flv": "HTTP-FLV", "hls": "HLS", "raw": "raw TCP"}

# Media: generated once, cached under bench/out/media/ keyed by the ffmpeg arguments.
MEDIA = {
    # ~2 Mbit/s total: fan-out and join storm.
    "2m": ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i",
           "sine=frequency=440", "-t", "20", "-c:v", "libx264", "-preset", "veryfast",
           "-pix_fmt", "yuv420p", "-b:v", "1900k", "-maxrate", "1900k", "-bufsize", "1900k",
           "-g", "60", "-c:a", "aac", "-b:a", "96k", "-f", "flv"],
    # ~1 Mbit/s total: ingest and mixed.
    "1m": ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i",
           "sine=frequency=440", "-t", "20", "-c:v", "libx264", "-preset", "veryfast",
           "-pix_fmt", "yuv420p", "-b:v", "900k", "-maxrate", "900k", "-bufsize", "900k",
           "-g", "60", "-c:a", "aac", "-b:a", "96k", "-f", "flv"],
}

# Seconds assumed, before any run was measured, for what a run costs beyond its settle,
# join, warm-up and measuring window (server start and stop, the generator's exit).
DEFAULT_OVERHEAD = 0.8
VERIFY_SECS = 15.0
BUDGET_RESERVE = 45.0  # seconds kept for the report and clean-up
OTHER_CPU_FLAG = 50.0  # % of a core used by other processes that flags a run in the report


def log(msg):
    stamp = time.strftime("%H:%M:%S")
    print(f"[bench {stamp}] {msg}", flush=True)


class Interrupted(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Processes


class Procs:
    """Every process this script starts: own session each, all killed by stop_all()."""

    def __init__(self):
        self.live = {}

    def _write_pidfile(self):
        try:
            OUT_ROOT.mkdir(parents=True, exist_ok=True)
            lines = []
            for pid, (_, name) in self.live.items():
                lines.append(f"{pid} {proc_starttime(pid) or 0} {name}\n")
            tmp = PIDFILE.with_suffix(".tmp")
            tmp.write_text("".join(lines))
            tmp.replace(PIDFILE)
        except OSError:
            pass

    def spawn(self, name, cmd, cwd, log_path, env=None):
        with open(log_path, "ab") as f:
            f.write(("$ " + " ".join(str(c) for c in cmd) + "\n").encode())
            f.flush()
            p = subprocess.Popen([str(c) for c in cmd], cwd=str(cwd), env=env,
                                 stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self.live[p.pid] = (p, name)
        self._write_pidfile()
        return p

    def stop(self, p, grace=5.0):
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # The leader may be gone while others of its group (nginx workers) are not.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.live.pop(p.pid, None)
        self._write_pidfile()

    def stop_all(self):
        for pid in list(self.live):
            self.stop(self.live[pid][0], grace=2.0)


PROCS = Procs()


def proc_starttime(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def children_of(pid):
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            kids += [int(x) for x in text.split()]
    except OSError:
        pass
    return kids


def run_cmd(cmd, timeout=30, **kw):
    """Runs a short command; returns (rc, combined output). Never raises on failure."""
    try:
        r = subprocess.run([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, **kw)
        return r.returncode, r.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if e.stdout else ""
        return -1, out + "\n(timed out)"
    except OSError as e:
        return -2, str(e)


# --------------------------------------------------------------------------------------------
# Ports and sockets


def local_port_range():
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


_USED_PORTS = set()


def free_port():
    """A free 127.0.0.1 TCP port below the ephemeral range (clients' own ports never clash)."""
    eph_lo, _ = local_port_range()
    lo, hi = 20000, max(20100, min(eph_lo - 1, 32000))
    for _ in range(500):
        port = random.randint(lo, hi)
        if port in _USED_PORTS:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _USED_PORTS.add(port)
        return port
    raise RuntimeError("no free port found")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_ports(ports, proc, timeout, what):
    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited (code {proc.returncode}) before it listened")
        if port_open(pending[0]):
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: port {pending[0]} not open after {timeout:.0f} s")
        time.sleep(0.05)


def _decode_addr(hexaddr):
    addr, port = hexaddr.split(":")
    if len(addr) == 8:
        ip = socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(addr, 16)))
    else:
        raw = b"".join(struct.pack("<I", int(addr[i:i + 8], 16)) for i in range(0, 32, 8))
        ip = socket.inet_ntop(socket.AF_INET6, raw)
    return ip, int(port, 16)


def bound_sockets(pids):
    """(proto, ip, port) of every listening TCP / bound UDP socket the pids hold."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            pass
    found = []
    if not pids:
        return found
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/{pids[0]}/net/{proto}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10 or f[9] not in inodes:
                continue
            if proto.startswith("tcp") and f[3] != "0A":
                continue
            ip, port = _decode_addr(f[1])
            found.append((proto, ip, port))
    return found


def assert_loopback(pids, what):
    socks = bound_sockets(pids)
    bad = []
    for proto, ip, port in socks:
        a = ipaddress.ip_address(ip)
        if getattr(a, "ipv4_mapped", None):
            a = a.ipv4_mapped
        if not a.is_loopback:
            bad.append(f"{proto} {ip}:{port}")
    if bad:
        raise RuntimeError(f"{what} listens beyond loopback ({', '.join(bad)}): stopped")
    return socks


# --------------------------------------------------------------------------------------------
# Servers


class Server:
    key = ""
    protos = ()  # play protocols served

    def __init__(self, ctx):
        self.ctx = ctx
        self.proc = None
        self.dir = None
        self.ports = {}

    def title(self):
        return TITLE[self.key]

    def publish_url(self):
        return f"rtmp://127.0.0.1:{self.ports['rtmp']}/live/s{{i}}"

    def play_url(self, proto):
        raise NotImplementedError

    def pids(self):
        return [self.proc.pid]

    def _prepare_dir(self, run_name):
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.key}-{run_name}-", dir=self.ctx.tmp))
        return self.dir

    def start(self, run_name, flv=True, hls=False):
        raise NotImplementedError

    def stop(self):
        if self.proc is not None:
            PROCS.stop(self.proc)
            self.proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _after_start(self, ports, timeout=20.0):
        try:
            wait_ports(ports, self.proc, timeout, self.title())
            assert_loopback(self.pids() + [self.proc.pid], self.title())
        except Exception:
            self._copy_log()
            self.stop()
            raise

    def _log_path(self, run_name):
        return self.ctx.logdir / f"server-{self.key}-{run_name}.log"

    def _copy_log(self):
        pass


class Shardcast(Server):
    key = "shardcast"
    protos = ("rtmp", "flv", "hls")
    extra_args = ()

    def start(self, run_name, flv=True, hls=False):
        d = self._prepare_dir(run_name)
        self.ports = {"rtmp": free_port()}
        if flv:
            self.ports["flv"] = free_port()
        if hls:
            self.ports["hls"] = free_port()
        cmd = [self.ctx.shardcast_bin, "--config_file=",
               f"--rtmp_addr=127.0.0.1:{self.ports['rtmp']}",
               f"--httpflv_addr=127.0.0.1:{self.ports['flv']}" if flv else "--httpflv_addr=",
               f"--hls_addr=127.0.0.1:{self.ports['hls']}" if hls else "--hls_addr=",
               "--api_addr=", "--rtmp_noauth", f"--shards={self.ctx.shards}", "--level=warn",
               *self.extra_args]
        self.proc = PROCS.spawn("shardcast", cmd, d, self._log_path(run_name),
                                env=self.ctx.shardcast_env)
        self._after_start(list(self.ports.values()))

    def play_url(self, proto):
        if proto == "rtmp":
            return f"rtmp://127.0.0.1:{self.ports['rtmp']}/live/s{{i}}"
        if proto == "flv":
            return f"http://127.0.0.1:{self.ports['flv']}/live/s{{i}}.flv"
        if proto == "hls":
            return f"http://127.0.0.1:{self.ports['hls']}/live/s{{i}}.m3u8"
        raise ValueError(proto)


class Nginx(Server):
    key = "nginx"
    protos = ("rtmp", "hls")

    def start(self, run_name, flv=True, hls=False):
        d = self._prepare_dir(run_name)
        d.chmod(0o755)
        (d / "hls").mkdir()
        (d / "hls").chmod(0o777)  # workers run as nobody
        self.ports = {"rtmp": free_port(), "http": free_port()}
        nofile = max(4096, self.ctx.nofile)
        hls_block = ""
        if hls:
            hls_block = (PEERS_DIR / "nginx-hls.in").read_text().strip()
        conf = (PEERS_DIR / "nginx.conf.in").read_text()
        for k, v in {"@HLS_RTMP@": hls_block, "@DIR@": str(d), "@NOFILE@": str(nofile),
                     "@WORKER_CONNECTIONS@": str(max(1024, nofile - 64)),
                     "@RTMP_MODULE@": self.ctx.nginx_module,
                     "@RTMP_PORT@": str(self.ports["rtmp"]),
                     "@HTTP_PORT@": str(self.ports["http"])}.items():
            conf = conf.replace(k, v)
        (d / "nginx.conf").write_text(conf)
        cmd = [self.ctx.nginx_bin, "-e", d / "error.log", "-p", f"{d}/", "-c", d / "nginx.conf"]
        self.proc = PROCS.spawn("nginx", cmd, d, self._log_path(run_name))
        deadline = time.monotonic() + 10
        while not children_of(self.proc.pid):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._copy_log()
                self.stop()
                raise RuntimeError("nginx started no worker")
            time.sleep(0.05)
        self._after_start(list(self.ports.values()))

    def pids(self):
        return children_of(self.proc.pid) or [self.proc.pid]

    def _copy_log(self):
        if self.dir and (self.dir / "error.log").exists():
            with open(self.ctx.logdir / "server-nginx-errors.log", "ab") as f:
                f.write((self.dir / "error.log").read_bytes())

    def stop(self):
        self._copy_log()
        super().stop()

    def play_url(self, proto):
        if proto == "rtmp":
            return f"rtmp://127.0.0.1:{self.ports['rtmp']}/live/s{{i}}"
        if proto == "hls":
            return f"http://127.0.0.1:{self.ports['http']}/live/s{{i}}.m3u8"
        raise ValueError(proto)


class Xiu(Server):
    key = "xiu"
    protos = ("rtmp", "flv", "hls")

    def start(self, run_name, flv=True, hls=False):
        d = self._prepare_dir(run_name)
        self.ports = {"rtmp": free_port(), "flv": free_port(), "hls": free_port(),
                      "api": free_port()}
        conf = (PEERS_DIR / "xiu.toml.in").read_text()
        for k, v in {"@RTMP_PORT@": self.ports["rtmp"], "@FLV_PORT@": self.ports["flv"],
                     "@HLS_PORT@": self.ports["hls"], "@API_PORT@": self.ports["api"],
                     "@FLV_ENABLED@": "true" if flv else "false",
                     "@HLS_ENABLED@": "true" if hls else "false"}.items():
            conf = conf.replace(k, str(v))
        (d / "xiu.toml").write_text(conf)
        env = dict(os.environ)
        env["LD_PRELOAD"] = str(self.ctx.bind_shim)
        env.pop("RUST_LOG", None)
        self.proc = PROCS.spawn("xiu", [self.ctx.xiu_bin, "-c", d / "xiu.toml"], d,
                                self._log_path(run_name), env=env)
        want = [self.ports["rtmp"], self.ports["api"]]
        if flv:
            want.append(self.ports["flv"])
        if hls:
            want.append(self.ports["hls"])
        self._after_start(want)

    def play_url(self, proto):
        if proto == "rtmp":
            return f"rtmp://127.0.0.1:{self.ports['rtmp']}/live/s{{i}}"
        if proto == "flv":
            return f"http://127.0.0.1:{self.ports['flv']}/live/s{{i}}.flv"
        if proto == "hls":
            return f"http://127.0.0.1:{self.ports['hls']}/live/s{{i}}/s{{i}}.m3u8"
        raise ValueError(proto)


class Raw(Server):
    """raw-fanout: the FLV file's bytes, paced, to every TCP client. No publisher."""
    key = "raw"
    protos = ("raw",)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.media = None

    def start(self, run_name, flv=True, hls=False):
        d = self._prepare_dir(run_name)
        self.ports = {"raw": free_port()}
        logp = self._log_path(run_name)
        self.proc = PROCS.spawn("raw-fanout", [self.ctx.raw_bin, "--listen",
                                               f"127.0.0.1:{self.ports['raw']}",
                                               "--file", self.media], d, logp)
        deadline = time.monotonic() + 15
        while True:
            if "listening" in logp.read_text(errors="replace"):
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("raw-fanout did not say it was listening")
            time.sleep(0.05)
        try:
            assert_loopback(self.pids(), "raw-fanout")
        except Exception:
            self.stop()
            raise

    def publish_url(self):
        return None

    def play_url(self, proto):
        return f"tcp://127.0.0.1:{self.ports['raw']}"


class ShardcastMerged(Shardcast):
    """shardcast holding every frame up to 100 ms for one write per player per period."""
    key = "shardcast-mw"
    extra_args = ("--merge_write_ms=100",)


SERVER_CLASSES = {"shardcast": Shardcast, "shardcast-mw": ShardcastMerged, "nginx": Nginx, "xiu": Xiu, "raw": Raw}


# --------------------------------------------------------------------------------------------
# Media, verification


def media_file(ctx, kind):
    args = MEDIA[kind]
    key = hashlib.sha1(json.dumps(args).encode()).hexdigest()[:10]
    cache = OUT_ROOT / "media"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{kind}-{key}.flv"
    if not path.exists():
        log(f"generating media {path.name} (ffmpeg, ~20-40 s)")
        tmp = path.with_suffix(".part.flv")
        rc, out = run_cmd(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args, tmp],
                          timeout=600)
        if rc != 0:
            raise RuntimeError(f"ffmpeg could not make the media: {out[-2000:]}")
        tmp.replace(path)
    return path


def probe(url, timeout=10):
    cmd = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"]
    if url.startswith("tcp://"):
        cmd += ["-f", "flv"]
    if url.startswith(("rtmp://", "tcp://")):
        cmd += ["-rw_timeout", "5000000"]
    rc, out = run_cmd(cmd + [url], timeout=timeout)
    codecs = set(out.split())
    return rc == 0 and "h264" in codecs and "aac" in codecs, out.strip()[-300:]


def verify_server(ctx, key):
    """Start the server, push the media with ffmpeg, read it back with ffprobe."""
    srv = SERVER_CLASSES[key](ctx)
    media = ctx.media["1m"]
    result = {}
    push = None
    try:
        if key == "raw":
            srv.media = media
            srv.start("verify")
            ok, out = probe(srv.play_url("raw"))
            result["raw"] = "ok" if ok else f"FAILED: {out}"
            return result
        srv.start("verify", flv=True, hls=True)
        url = srv.publish_url().replace("{i}", "0")
        push = PROCS.spawn("ffmpeg-push", ["ffmpeg", "-nostdin", "-loglevel", "error", "-re",
                                           "-stream_loop", "-1", "-i", media, "-t", "40",
                                           "-c", "copy", "-f", "flv", url],
                           ctx.tmp, ctx.logdir / f"verify-{key}-ffmpeg.log")
        for proto in srv.protos:
            deadline = time.monotonic() + (25 if proto == "hls" else 12)
            play = srv.play_url(proto).replace("{i}", "0")
            ok, out = False, ""
            while time.monotonic() < deadline:
                if push.poll() is not None:
                    out = "ffmpeg publisher exited"
                    break
                ok, out = probe(play, timeout=max(3, min(10, deadline - time.monotonic())))
                if ok:
                    break
                time.sleep(0.5)
            result[proto] = "ok" if ok else f"FAILED: {out}"
        return result
    finally:
        PROCS.stop(push)
        srv.stop()


# --------------------------------------------------------------------------------------------
# Plan


def fanout_join_over(size):
    return 1.0 if size <= 3000 else 2.0


def fanout_warmup(size):
    return 1.0 if size < 3000 else 2.0


def build_plan(args):
    """The cases of each scenario, in order; each case is run `runs` times (rounds)."""
    quick = args.quick
    runs = args.runs or (1 if quick else 3)
    servers = args.servers
    window = args.window or 5.0
    mixed_dur = args.mixed_duration or (30.0 if quick else 120.0)
    fan_sizes = args.sizes or ([1000, 3000] if quick else [100, 1000, 3000, 6000])
    ing_sizes = args.ingest_sizes or ([200] if quick else [50, 200, 500])
    scen = {}

    def fan_cases(sizes):
        cases = []
        for size in sizes:
            for s in servers:
                if s in FANOUT_ONLY and size not in (1000, 3000):
                    continue
                protos = ["raw"] if s == "raw" else [p for p in ("rtmp", "flv")
                                                     if p in SERVER_CLASSES[s].protos]
                for proto in protos:
                    cases.append(dict(server=s, proto=proto, size=size, media="2m",
                                      publish=0 if s == "raw" else 1, play=size, streams=1,
                                      templates=[proto], settle=1.0,
                                      join=fanout_join_over(size), warmup=fanout_warmup(size),
                                      duration=window))
        return cases

    if "fanout" in args.only:
        scen["fanout"] = dict(cases=fan_cases(fan_sizes), runs=runs, scalable=True)
    if "join" in args.only:
        if "fanout" in args.only and 1000 in fan_sizes:
            scen["join"] = dict(cases=[], runs=0, derived_from="fanout")
        else:
            cases = fan_cases([1000])
            for c in cases:
                c["duration"] = 3.0
            scen["join"] = dict(cases=cases, runs=runs, scalable=False)
    if "ingest" in args.only:
        cases = []
        for n in ing_sizes:
            for s in servers:
                if s == "raw" or s in FANOUT_ONLY:
                    continue
                cases.append(dict(server=s, proto="rtmp", size=n, media="1m", publish=n,
                                  play=n, streams=n, templates=["rtmp"],
                                  settle=2.0 if n <= 200 else 3.0, join=1.0, warmup=1.0,
                                  duration=window))
        scen["ingest"] = dict(cases=cases, runs=runs, scalable=True)
    if "mixed" in args.only:
        cases = []
        for s in servers:
            if s == "raw" or s in FANOUT_ONLY:
                continue
            if s == "nginx":  # no HTTP-FLV: its third of the players play RTMP instead
                templates = ["rtmp", "hls", "rtmp"]
            else:
                templates = ["rtmp", "flv", "hls"]
            cases.append(dict(server=s, proto="mixed", size=2000, media="1m", publish=100,
                              play=2000, streams=100, templates=templates, settle=6.0,
                              join=5.0, warmup=5.0, duration=mixed_dur, hls=True,
                              runs=args.mixed_runs.get(s, 1) if args.mixed_runs else 1))
        scen["mixed"] = dict(cases=cases, runs=None, scalable=True, mixed=True)
    return scen


def case_runs(scenario, case):
    return case.get("runs") if scenario.get("mixed") else scenario["runs"]


def run_secs(case, overhead):
    return case["settle"] + case["join"] + case["warmup"] + case["duration"] + overhead \
        + case["play"] / 6000.0


def estimate(plan, overhead):
    total = 0.0
    for sc in plan.values():
        for c in sc["cases"]:
            total += run_secs(c, overhead) * case_runs(sc, c)
    return total


def fit_windows(plan, name_order, remaining, overhead, floors):
    """Shrink the measuring windows of the scenarios in name_order so that they fit
    `remaining` seconds; never below floors[scenario]. Returns the scale applied."""
    def est_at(scale):
        t = 0.0
        for n in name_order:
            sc = plan[n]
            for c in sc["cases"]:
                d = c["nominal"] if sc.get("scalable") else c["duration"]
                if sc.get("scalable"):
                    d = max(min(floors.get(n, d), d), d * scale)
                cc = dict(c, duration=d)
                t += run_secs(cc, overhead) * case_runs(sc, c)
        return t

    for n in name_order:
        for c in plan[n]["cases"]:
            c.setdefault("nominal", c["duration"])
    scale = 1.0
    while scale > 0.05 and est_at(scale) > remaining:
        scale -= 0.05
    for n in name_order:
        sc = plan[n]
        if not sc.get("scalable"):
            continue
        for c in sc["cases"]:
            floor = min(floors.get(n, c["nominal"]), c["nominal"])
            c["duration"] = round(max(floor, c["nominal"] * scale), 1)
    return scale, est_at(scale)


# --------------------------------------------------------------------------------------------
# Running


def loadavg():
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError):
        return None


def run_case(ctx, scen_name, case, rnd):
    srv = SERVER_CLASSES[case["server"]](ctx)
    label = f"{scen_name}-{case['server']}-{case['proto']}-{case['size']}-r{rnd}"
    jpath = ctx.outdir / scen_name / f"{label}.json"
    jpath.parent.mkdir(parents=True, exist_ok=True)
    rec = dict(scenario=scen_name, server=case["server"], proto=case["proto"],
               size=case["size"], round=rnd, label=label, json=str(jpath.relative_to(ctx.outdir)),
               ok=False, error=None, loadavg_before=loadavg(),
               params={k: case[k] for k in ("publish", "play", "streams", "templates", "settle",
                                             "join", "warmup", "duration", "media")})
    t0 = time.monotonic()
    gen = None
    try:
        if case["server"] == "raw":
            srv.media = ctx.media[case["media"]]
        srv.start(label, flv="flv" in case["templates"], hls=case.get("hls", False))
        tmpl = [srv.play_url(p) for p in case["templates"]]
        rec["play_urls"] = tmpl
        cmd = [ctx.bench_bin, "load", "--file", ctx.media[case["media"]],
               "--publish", case["publish"]]
        if case["publish"]:
            cmd += ["--publish-url", srv.publish_url()]
        cmd += ["--play", case["play"]]
        for t in tmpl:
            cmd += ["--play-url", t]
        cmd += ["--streams", case["streams"], "--join-over", fmt_secs(case["join"]),
                "--settle", fmt_secs(case["settle"]), "--warmup", fmt_secs(case["warmup"]),
                "--duration", fmt_secs(case["duration"])]
        for pid in srv.pids():
            cmd += ["--server-pid", pid]
        if ctx.threads:
            cmd += ["--threads", ctx.threads]
        cmd += ["--label", label, "--json", jpath]
        if jpath.exists():
            jpath.unlink()
        expected = case["settle"] + case["join"] + case["warmup"] + case["duration"]
        limit = expected + 30 + case["play"] / 200.0
        gen = PROCS.spawn("shardcast-bench", cmd, ctx.tmp, ctx.logdir / f"{label}.log")
        # Wait for it, sampling the whole machine's CPU over (about) the measured window.
        t_gen = time.monotonic()
        win_start = t_gen + expected - case["duration"]
        win_end = t_gen + expected
        s0 = s1 = None
        while True:
            now = time.monotonic()
            if s0 is None and now >= win_start:
                s0 = cpu_sample()
            if s1 is None and now >= win_end:
                s1 = cpu_sample()
            rc = gen.poll()
            if rc is not None or now > t_gen + limit:
                break
            time.sleep(0.05)
        if s0 and s1:
            rec["machine_cpu_pct"] = busy_pct(s0, s1)
        if rc is None:
            rec["error"] = f"load generator still running after {limit:.0f} s: killed"
        elif srv.proc is not None and srv.proc.poll() is not None:
            rec["error"] = f"server exited during the run (code {srv.proc.returncode})"
        elif not jpath.exists():
            rec["error"] = f"load generator exited {rc} without a report"
        else:
            rep = json.loads(jpath.read_text())
            rec["ok"] = True
            rec["exit_code"] = rc
            if rc != 0:
                rec["error"] = f"load generator exited {rc} (report kept)"
            if rep.get("errors"):
                rec["gen_errors"] = rep["errors"][:5]
            srv_cpu, gen_cpu = dig(rep, "server.cpu_pct"), dig(rep, "bench.cpu_pct")
            if rec.get("machine_cpu_pct") is not None and srv_cpu is not None and gen_cpu is not None:
                rec["other_cpu_pct"] = round(rec["machine_cpu_pct"] - srv_cpu - gen_cpu, 1)
    except (Interrupted, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - a failed run is recorded, the rest go on
        rec["error"] = f"{type(e).__name__}: {e}"
    finally:
        PROCS.stop(gen)
        srv.stop()
    rec["elapsed"] = round(time.monotonic() - t0, 2)
    rec["overhead"] = round(rec["elapsed"] - (case["settle"] + case["join"] + case["warmup"]
                                              + case["duration"]), 2)
    return rec


def cpu_sample():
    vals = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    return sum(vals), vals[3] + vals[4]


def busy_pct(s0, s1):
    """Machine CPU busy between two samples, in % of one core."""
    dt, di = s1[0] - s0[0], s1[1] - s0[1]
    return round(100.0 * (dt - di) / dt * (os.cpu_count() or 1), 1) if dt > 0 else None


def fmt_secs(x):
    return f"{x:g}"


# --------------------------------------------------------------------------------------------
# Report


def dig(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def metric(rep, name):
    """One figure of one run's report, or None."""
    if rep is None:
        return None
    if name == "loss_pct":
        exp, lost = dig(rep, "frames.expected_video"), dig(rep, "frames.lost_video")
        if exp:
            return 100.0 * (lost or 0) / exp
        return None
    if name == "served_pct":
        req, con = dig(rep, "players.requested"), dig(rep, "players.connected")
        return 100.0 * con / req if req else None
    if name == "rss_peak_mib":
        v = dig(rep, "server.rss_peak_kib")
        return v / 1024.0 if v is not None else None
    return dig(rep, name)


def median(vals):
    vals = [v for v in vals if isinstance(v, (int, float))]
    return statistics.median(vals) if vals else None


def fnum(v, digits=None):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    a = abs(v)
    if digits is None and float(v).is_integer():
        return f"{v:,.0f}"
    if digits is None:
        digits = 0 if a >= 100 else (1 if a >= 10 else (2 if a >= 0.1 else 3))
    if a >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


class Results:
    def __init__(self, outdir):
        self.outdir = Path(outdir)
        meta = json.loads((self.outdir / "meta.json").read_text())
        self.meta = meta
        self.records = json.loads((self.outdir / "runs.json").read_text())
        for r in self.records:
            r["report"] = None
            p = self.outdir / r["json"]
            if r.get("ok") and p.exists():
                try:
                    r["report"] = json.loads(p.read_text())
                except ValueError:
                    r["report"] = None

    def runs(self, scenario, server, proto, size):
        return [r for r in self.records if r["scenario"] == scenario and r["server"] == server
                and r["proto"] == proto and r["size"] == size]

    def med(self, scenario, server, proto, size, name):
        return median([metric(r["report"], name)
                       for r in self.runs(scenario, server, proto, size)])

    def ratio(self, scenario, a, b, size, name):
        """Median over rounds of a/b, a and b measured in the same round."""
        out = []
        for ra in self.runs(scenario, *a, size):
            for rb in self.runs(scenario, *b, size):
                if rb["round"] != ra["round"]:
                    continue
                va, vb = metric(ra["report"], name), metric(rb["report"], name)
                if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and vb:
                    out.append(va / vb)
        return median(out)

    def count(self, scenario, server, proto, size):
        rs = self.runs(scenario, server, proto, size)
        return sum(1 for r in rs if r["report"] is not None), len(rs)


FANOUT_COLS = [
    ("served", "players.connected", None),
    ("Gbit/s", "delivered.gbps", 3),
    ("% of raw", "@raw", 0),
    ("Mbit/s per player p50", "delivered.per_player_mbps.p50", 2),
    ("lost video %", "loss_pct", 2),
    ("players w/ loss", "frames.players_with_loss", None),
    ("stalls", "frames.stalls", None),
    ("dropped", "players.disconnected", None),
    ("lag p99 ms", "lag_ms.p99", None),
    ("latency p50 ms", "latency_ms.p50", None),
    ("latency p99 ms", "latency_ms.p99", None),
    ("join p99 ms", "join_ms.p99", None),
    ("server CPU %", "server.cpu_pct", 0),
    ("CPU s per Gbit", "server.cpu_sec_per_gbit", 2),
    ("RSS peak MiB", "rss_peak_mib", 1),
    ("RSS KiB per player", "server.rss_per_player_kib", 1),
    ("bench CPU %", "bench.cpu_pct", 0),
]
RATIO_SKIP = {"% of raw", "bench CPU %"}


def other_cpu_line(res):
    vals = [r["other_cpu_pct"] for r in res.records if r.get("other_cpu_pct") is not None]
    if not vals:
        return ""
    return (f"; CPU of other processes during the measured windows (machine busy − server − "
            f"load generator): median {statistics.median(vals):.0f}%, max {max(vals):.0f}% of one core")


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    return "\n".join(out)


def render(res):
    m = res.meta
    L = []
    L.append("# shardcast benchmark results")
    L.append("")
    L.append("Generated by `scripts/bench` (bench/run.py) — do not edit by hand; "
             "see bench/README.md for how to run it and what each figure means.")
    L.append("")
    env = m["env"]
    su = m.get("setup") or {}
    setup_txt = ""
    if su:
        setup_txt = (f"; before it, installing the peers took {su.get('install', 0) / 60:.1f} min "
                     f"(one-off, outside the budget) and the build "
                     f"{su.get('build', 0) / 60:.1f} min")
    L.append(f"- Date: {m['date']}; the benchmark took {m.get('wall_min', '?')} min "
             f"(budget {m.get('budget_min', 30):g} min, build included){setup_txt}")
    L.append(f"- Machine: {env['cores']} cores ({env['cpu']}), {env['mem_gib']} GiB RAM, "
             f"kernel {env['kernel']}, {env['os']}")
    L.append(f"- Limits: open files {env['nofile']}, somaxconn {env['somaxconn']}, "
             f"ephemeral ports {env['port_range']}; load average at start {env['loadavg']}")
    L.append(f"- CPU busy before the benchmark (2 s sample, all processes): {env.get('busy_before', '?')}% "
             "of one core" + other_cpu_line(res))
    L.append("- Versions: " + "; ".join(f"{k} {v}" for k, v in m["versions"].items()))
    L.append(f"- Mode: {m['mode']}; scenarios {', '.join(m['scenarios'])}; "
             f"servers {', '.join(TITLE[s] for s in m['servers'])}")
    L.append(f"- Peers verified with ffmpeg → ffprobe: " + "; ".join(
        f"{TITLE[k]}: " + ", ".join(f"{PROTO_TITLE.get(p, p)} {v if v == 'ok' else 'FAILED'}"
                                    for p, v in vv.items())
        for k, vv in m.get("verify", {}).items()) if m.get("verify") else "- Peers not verified")
    L.append("")
    L.append("Every figure is the median of the runs listed (each figure's median taken on its "
             "own). Load generator and servers share the same cores. "
             "CPU % is of one core (200 = both cores of this machine).")
    L.append("")
    notes = m.get("notes", [])
    if notes:
        L.append("Notes:")
        L.append("")
        for n in notes:
            L.append(f"- {n}")
        L.append("")

    plan = m["plan"]
    servers = m["servers"]
    have = {r["scenario"] for r in res.records}

    # Headline figures.
    fan = plan.get("fanout")
    if fan and "fanout" in have:
        sizes = sorted({c["size"] for c in fan["cases"]})
        heads = [z for z in (1000, sizes[-1]) if z in sizes] or [sizes[-1]]
        heads = sorted(set(heads))
        join_src = "join" if "join" in have else "fanout"
        L.append("## Headline figures")
        L.append("")
        L.append("Fan-out of one ~2 Mbit/s stream at " +
                 " and ".join(f"{z:,}" for z in heads) + " players, and the join storm "
                 "(1,000 players joining within 1 s). Ratio rows: shardcast ÷ nginx-rtmp over "
                 "RTMP, the median over rounds of figures measured in the same round.")
        L.append("")
        hcols = [("players served", "players.connected", None),
                 ("Gbit/s", "delivered.gbps", 3),
                 ("% of raw ceiling", "@raw", 0),
                 ("CPU s per Gbit", "server.cpu_sec_per_gbit", 2),
                 ("RSS KiB per player", "server.rss_per_player_kib", 1),
                 ("lag p99 ms", "lag_ms.p99", None),
                 ("latency p99 ms", "latency_ms.p99", None),
                 ("join p99 ms, 1,000 in 1 s", "@join", None)]
        hdr = ["players", "server", "protocol"] + [c[0] for c in hcols]
        rows = []
        for big in heads:
            raw_g = res.med("fanout", "raw", "raw", big, "delivered.gbps")
            for s in servers:
                for proto in (["raw"] if s == "raw" else ["rtmp", "flv"]):
                    if not res.runs("fanout", s, proto, big):
                        continue
                    row = [f"{big:,}", TITLE[s], PROTO_TITLE[proto]]
                    for _, key, dg in hcols:
                        if key == "@raw":
                            g = res.med("fanout", s, proto, big, "delivered.gbps")
                            row.append(fnum(100 * g / raw_g, 0) if g is not None and raw_g
                                       else "–")
                        elif key == "@join":
                            row.append(fnum(res.med(join_src, s, proto, 1000, "join_ms.p99")))
                        else:
                            row.append(fnum(res.med("fanout", s, proto, big, key), dg))
                    rows.append(row)
            if res.runs("fanout", "shardcast", "rtmp", big) and \
                    res.runs("fanout", "nginx", "rtmp", big):
                row = [f"{big:,}", "**shardcast ÷ nginx-rtmp**", "RTMP"]
                for _, key, _ in hcols:
                    if key == "@raw":
                        key = "delivered.gbps"
                    if key == "@join":
                        r = res.ratio(join_src, ("shardcast", "rtmp"), ("nginx", "rtmp"), 1000,
                                      "join_ms.p99")
                    else:
                        r = res.ratio("fanout", ("shardcast", "rtmp"), ("nginx", "rtmp"), big,
                                      key)
                    row.append(f"×{fnum(r, 2)}" if r is not None else "–")
                rows.append(row)
        L.append(table(hdr, rows))
        L.append("")

    # Fan-out tables.
    if fan and "fanout" in have:
        c0 = fan["cases"][0]
        L.append("## 1. Fan-out: one ~2 Mbit/s H.264+AAC stream to N players")
        L.append("")
        L.append(f"Per run: publisher settles {fmt_secs(c0['settle'])} s, players join over "
                 f"1–2 s, {fmt_secs(c0['warmup'])} s warm-up, "
                 f"{fmt_secs(c0['duration'])} s measured window; "
                 f"{fan['runs']} run(s) per cell, rounds interleaved across servers. "
                 "The raw ceiling (raw-fanout: the same FLV bytes written to plain TCP "
                 "sockets, no protocol) is measured once per size and shown in both tables; "
                 "'% of raw' is a server's delivered Gbit/s over it. "
                 "nginx-rtmp has no HTTP-FLV output (n/a); its ratio row in the HTTP-FLV "
                 "table compares with its RTMP figures. Ratio rows: shardcast ÷ nginx-rtmp, "
                 "the median over rounds of the two figures measured in the same round.")
        L.append("")
        sizes = sorted({c["size"] for c in fan["cases"]})
        for proto in ("rtmp", "flv"):
            L.append(f"### Fan-out over {PROTO_TITLE[proto]}")
            L.append("")
            hdr = ["players", "server", "runs"] + [c[0] for c in FANOUT_COLS]
            rows = []
            for size in sizes:
                raw_g = res.med("fanout", "raw", "raw", size, "delivered.gbps")
                for s in servers:
                    p = "raw" if s == "raw" else proto
                    if s == "nginx" and proto == "flv":
                        rows.append([f"{size:,}", TITLE[s], "–"] + ["n/a"] * len(FANOUT_COLS))
                        continue
                    if not res.runs("fanout", s, p, size):
                        continue
                    ok, n = res.count("fanout", s, p, size)
                    row = [f"{size:,}", TITLE[s], f"{ok}/{n}"]
                    for _, key, dg in FANOUT_COLS:
                        if key == "@raw":
                            g = res.med("fanout", s, p, size, "delivered.gbps")
                            row.append(fnum(100 * g / raw_g, 0) if g is not None and raw_g
                                       else "–")
                        else:
                            row.append(fnum(res.med("fanout", s, p, size, key), dg))
                    rows.append(row)
                if "shardcast" in servers and "nginx" in servers and \
                        res.runs("fanout", "shardcast", proto, size) and \
                        res.runs("fanout", "nginx", "rtmp", size):
                    row = [f"{size:,}", "**shardcast ÷ nginx-rtmp**" if proto == "rtmp"
                           else "**shardcast ÷ nginx-rtmp (its RTMP)**", ""]
                    for title, key, _ in FANOUT_COLS:
                        if title in RATIO_SKIP:
                            row.append("")
                            continue
                        r = res.ratio("fanout", ("shardcast", proto), ("nginx", "rtmp"),
                                      size, key)
                        row.append(f"×{fnum(r, 2)}" if r is not None else "–")
                    rows.append(row)
            L.append(table(hdr, rows))
            L.append("")

    # Ingest.
    ing = plan.get("ingest")
    if ing and "ingest" in have:
        c0 = ing["cases"][0]
        L.append("## 2. Ingest: N publishers at ~1 Mbit/s, one RTMP player each")
        L.append("")
        L.append(f"Per run: publishers settle 2–3 s, players join over "
                 f"{fmt_secs(c0['join'])} s, {fmt_secs(c0['warmup'])} s warm-up, "
                 f"{fmt_secs(c0['duration'])} s measured window; {ing['runs']} run(s) per "
                 "cell. No raw ceiling here (raw-fanout takes no publisher).")
        L.append("")
        cols = [("publishers up", "publishers.connected", None),
                ("players served", "players.connected", None),
                ("Gbit/s out", "delivered.gbps", 3),
                ("lost video %", "loss_pct", 2),
                ("players w/ loss", "frames.players_with_loss", None),
                ("lag p99 ms", "lag_ms.p99", None),
                ("latency p50 ms", "latency_ms.p50", None),
                ("latency p99 ms", "latency_ms.p99", None),
                ("server CPU %", "server.cpu_pct", 0),
                ("CPU s per Gbit", "server.cpu_sec_per_gbit", 2),
                ("RSS peak MiB", "rss_peak_mib", 1),
                ("RSS KiB per player", "server.rss_per_player_kib", 1),
                ("bench CPU %", "bench.cpu_pct", 0)]
        hdr = ["publishers", "server", "runs"] + [c[0] for c in cols]
        rows = []
        for size in sorted({c["size"] for c in ing["cases"]}):
            for s in servers:
                if not res.runs("ingest", s, "rtmp", size):
                    continue
                ok, n = res.count("ingest", s, "rtmp", size)
                rows.append([f"{size:,}", TITLE[s], f"{ok}/{n}"] +
                            [fnum(res.med("ingest", s, "rtmp", size, k), d) for _, k, d in cols])
            if "shardcast" in servers and "nginx" in servers and \
                    res.runs("ingest", "nginx", "rtmp", size):
                row = [f"{size:,}", "**shardcast ÷ nginx-rtmp**", ""]
                for title, k, _ in cols:
                    if title == "bench CPU %":
                        row.append("")
                        continue
                    r = res.ratio("ingest", ("shardcast", "rtmp"), ("nginx", "rtmp"), size, k)
                    row.append(f"×{fnum(r, 2)}" if r is not None else "–")
                rows.append(row)
        L.append(table(hdr, rows))
        L.append("")

    # Join storm.
    jn = plan.get("join")
    if jn and ("join" in have or (jn.get("derived_from") and "fanout" in have)):
        src = "fanout" if jn.get("derived_from") else "join"
        L.append("## 3. Join storm: 1,000 players joining within one second")
        L.append("")
        if src == "fanout":
            L.append("Taken from the 1,000-player fan-out runs above, in which all 1,000 "
                     "players start within one second (`--join-over 1`) on a stream whose "
                     "publisher has been live for a second.")
        else:
            L.append("1,000 players start within one second (`--join-over 1`) on a stream "
                     "whose publisher has been live for a second.")
        L.append("Join time is what the load generator measures from a player's start to its "
                 "first video frame. nginx-rtmp keeps no GOP cache: its players wait for the "
                 "next key frame (GOP 2 s).")
        L.append("")
        hdr = ["server", "protocol", "runs", "joined", "join p50 ms", "join p90 ms",
               "join p99 ms", "join max ms", "server CPU %", "RSS peak MiB"]
        rows = []
        for s in servers:
            for proto in (["raw"] if s == "raw" else ["rtmp", "flv"]):
                if not res.runs(src, s, proto, 1000):
                    continue
                ok, n = res.count(src, s, proto, 1000)
                rows.append([TITLE[s], PROTO_TITLE[proto], f"{ok}/{n}",
                             fnum(res.med(src, s, proto, 1000, "players.connected")),
                             fnum(res.med(src, s, proto, 1000, "join_ms.p50")),
                             fnum(res.med(src, s, proto, 1000, "join_ms.p90")),
                             fnum(res.med(src, s, proto, 1000, "join_ms.p99")),
                             fnum(res.med(src, s, proto, 1000, "join_ms.max")),
                             fnum(res.med(src, s, proto, 1000, "server.cpu_pct"), 0),
                             fnum(res.med(src, s, proto, 1000, "rss_peak_mib"), 1)])
            if s == "nginx":
                rows.append([TITLE[s], "HTTP-FLV", "–"] + ["n/a"] * 7)
        L.append(table(hdr, rows))
        L.append("")

    # Mixed.
    mx = plan.get("mixed")
    if mx and "mixed" in have:
        L.append("## 4. Mixed: 100 publishers × 20 players (RTMP, HTTP-FLV, HLS)")
        L.append("")
        durs = sorted({c["duration"] for c in mx["cases"]})
        runs_txt = ", ".join(f"{TITLE[c['server']]} {c['runs']}" for c in mx["cases"])
        L.append(f"100 publishers at ~1 Mbit/s, 2,000 players, one third each of RTMP, "
                 f"HTTP-FLV and HLS (player j plays stream j mod 100 over protocol j mod 3); "
                 f"measured window {', '.join(fmt_secs(d) for d in durs)} s after 6 s settle, "
                 f"5 s of joining and 5 s warm-up. Runs: {runs_txt}. nginx-rtmp has no HTTP-FLV: "
                 "its FLV third plays RTMP instead (2/3 RTMP, 1/3 HLS). HLS lag and latency are "
                 "those of segments (3 s target on every server), so the mixed lag/latency "
                 "figures mostly reflect the HLS third.")
        L.append("")
        cols = [("publishers up", "publishers.connected", None),
                ("players served", "players.connected", None),
                ("RTMP", "players.by_protocol.rtmp", None),
                ("FLV", "players.by_protocol.flv", None),
                ("HLS", "players.by_protocol.hls", None),
                ("Gbit/s out", "delivered.gbps", 3),
                ("lost video %", "loss_pct", 2),
                ("stalls", "frames.stalls", None),
                ("lag p99 ms", "lag_ms.p99", None),
                ("latency p99 ms", "latency_ms.p99", None),
                ("join p99 ms", "join_ms.p99", None),
                ("HLS segments", "hls.segments", None),
                ("HLS errors", "hls.errors", None),
                ("server CPU %", "server.cpu_pct", 0),
                ("CPU s per Gbit", "server.cpu_sec_per_gbit", 2),
                ("RSS peak MiB", "rss_peak_mib", 1),
                ("RSS KiB per player", "server.rss_per_player_kib", 1)]
        hdr = ["server", "runs"] + [c[0] for c in cols]
        rows = []
        for s in servers:
            if not res.runs("mixed", s, "mixed", 2000):
                continue
            ok, n = res.count("mixed", s, "mixed", 2000)
            rows.append([TITLE[s], f"{ok}/{n}"] +
                        [fnum(res.med("mixed", s, "mixed", 2000, k), d) for _, k, d in cols])
        if "shardcast" in servers and "nginx" in servers and \
                res.runs("mixed", "nginx", "mixed", 2000):
            row = ["**shardcast ÷ nginx-rtmp**", ""]
            for title, k, _ in cols:
                if title in ("RTMP", "FLV", "HLS"):
                    row.append("")
                    continue
                r = res.ratio("mixed", ("shardcast", "mixed"), ("nginx", "mixed"), 2000, k)
                row.append(f"×{fnum(r, 2)}" if r is not None else "–")
            rows.append(row)
        L.append(table(hdr, rows))
        L.append("")

    # Failures.
    busy = [r for r in res.records if (r.get("other_cpu_pct") or 0) > OTHER_CPU_FLAG]
    bad = [r for r in res.records if r.get("error") or r.get("gen_errors")
           or (r.get("other_cpu_pct") or 0) > OTHER_CPU_FLAG]
    if bad:
        L.append("## Failed or flagged runs")
        L.append("")
        for r in bad[:60]:
            msg = r.get("error") or ""
            if r.get("gen_errors"):
                msg += (" " if msg else "") + "generator errors: " + "; ".join(
                    str(e)[:160] for e in r["gen_errors"][:3])
            if r in busy:
                msg += (" " if msg else "") + (
                    f"other processes used {r['other_cpu_pct']:.0f}% of a core during the window")
            L.append(f"- `{r['label']}`: {msg}")
        if len(bad) > 60:
            L.append(f"- … and {len(bad) - 60} more (see runs.json)")
        L.append("")
    L.append(f"Raw JSON of every run: `bench/out/{res.outdir.name}/` (not committed).")
    L.append("")
    return "\n".join(L)


# --------------------------------------------------------------------------------------------
# Environment


def sysctl(name):
    try:
        return Path("/proc/sys/" + name.replace(".", "/")).read_text().split("\n")[0].strip()
    except OSError:
        return "?"


def environment():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f}"
    except OSError:
        pass
    osname = platform.system()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    s0 = cpu_sample()
    time.sleep(2)
    busy = busy_pct(s0, cpu_sample())
    return dict(cores=os.cpu_count(), cpu=cpu, busy_before=busy, mem_gib=mem, kernel=platform.release(),
                os=osname, nofile=f"{soft} (hard {hard})",
                somaxconn=sysctl("net.core.somaxconn"),
                port_range=sysctl("net.ipv4.ip_local_port_range").replace("\t", "–"),
                loadavg=Path("/proc/loadavg").read_text().split()[0])


def versions(ctx, servers):
    v = {}
    if "shardcast" in servers:
        _, out = run_cmd([ctx.shardcast_bin, "--version"], cwd=ctx.tmp)
        rc, rev = run_cmd(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
        _, dirty = run_cmd(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
        v["shardcast"] = (out.strip().split()[-1] if out.strip() else "?") + \
            (f" (commit {rev.strip()}{', modified tree' if dirty.strip() else ''})"
             if rc == 0 else "")
    if "nginx" in servers:
        _, out = run_cmd([ctx.nginx_bin, "-v"])
        _, mod = run_cmd(["dpkg-query", "-W", "-f", "${Version}", "libnginx-mod-rtmp"])
        v["nginx"] = out.strip().split("/")[-1] + f" + nginx-rtmp (libnginx-mod-rtmp {mod.strip()})"
    if "xiu" in servers:
        _, out = run_cmd(["cargo", "install", "--list"])
        m = re.search(r"^xiu v(\S+):", out, re.M)
        v["xiu"] = m.group(1) if m else "?"
    _, out = run_cmd(["ffmpeg", "-version"])
    v["ffmpeg"] = out.split("\n")[0].split()[2] if out.startswith("ffmpeg version") else "?"
    return v


class Ctx:
    pass


def find_exe(name, extra=()):
    for p in extra:
        if p and Path(p).is_file() and os.access(p, os.X_OK):
            return str(p)
    return shutil.which(name)


def shardcast_env(shardcast_bin, tmp):
    """The environment minus every variable shardcast reads (its --help lists them)."""
    env = dict(os.environ)
    _, out = run_cmd([shardcast_bin, "--help"], cwd=tmp)
    for name in re.findall(r"\[env: ([A-Z0-9_]+)", out):
        env.pop(name, None)
    env.pop("RUST_LOG", None)
    return env


def build_shim(ctx):
    src = PEERS_DIR / "loopback_bind.c"
    so = OUT_ROOT / "loopback_bind.so"
    if not so.exists() or so.stat().st_mtime < src.stat().st_mtime:
        rc, out = run_cmd(["cc", "-shared", "-fPIC", "-O2", "-o", so, src, "-ldl"], timeout=60)
        if rc != 0:
            raise RuntimeError(f"could not build {src.name}: {out}")
    return so


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Run the shardcast benchmark scenarios against nginx-rtmp, xiu and the "
                    "raw ceiling and write bench/RESULTS.md.",
        epilog="scripts/bench itself also takes --no-install (no apt-get / cargo install of the "
               "peers) and --no-build (no cargo build); see bench/README.md.")
    ap.add_argument("--quick", action="store_true",
                    help="1 run, fan-out at 1,000 and 3,000, ingest at 200, 30 s mixed")
    ap.add_argument("--only", default=",".join(SCENARIOS),
                    help="scenarios to run, comma-separated: fanout,join,ingest,mixed")
    ap.add_argument("--servers", default=",".join(SERVERS),
                    help="servers, comma-separated: shardcast,nginx,xiu,raw")
    ap.add_argument("--runs", type=int, help="runs per cell (default 3; 1 with --quick)")
    ap.add_argument("--window", type=float, help="fan-out/ingest measured seconds (default 5)")
    ap.add_argument("--mixed-duration", type=float,
                    help="mixed measured seconds (default 120; 30 with --quick)")
    ap.add_argument("--mixed-runs", default="",
                    help="runs of the mixed scenario per server, e.g. shardcast=3,nginx=1 "
                         "(default 1 each: 3 x 2 min x 3 servers does not fit the budget)")
    ap.add_argument("--sizes", help="fan-out player counts, e.g. 100,1000")
    ap.add_argument("--ingest-sizes", help="ingest publisher counts, e.g. 50,200")
    ap.add_argument("--budget", type=float, default=30.0,
                    help="minutes for the run, the build included, the one-off install of the "
                         "peers not (default 30); measuring windows shrink to fit, then runs "
                         "are skipped")
    ap.add_argument("--shards", type=int, default=2, help="shardcast --shards (default 2)")
    ap.add_argument("--threads", type=int, help="load generator --threads")
    ap.add_argument("--bench-bin", help="load generator binary (default target/release/"
                                        "shardcast-bench)")
    ap.add_argument("--results", help="report path (default bench/RESULTS.md for a full run, "
                                      "bench/out/<run>/RESULTS.md otherwise)")
    ap.add_argument("--no-verify", action="store_true",
                    help="skip the ffmpeg/ffprobe check of each server")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and estimate only")
    ap.add_argument("--report-only", metavar="OUTDIR",
                    help="rebuild the report from a finished run's directory")
    ap.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--setup", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    aliases = {"nginx-rtmp": "nginx", "shard": "shardcast", "raw-fanout": "raw"}
    args.servers = [aliases.get(s, s) for s in args.servers]
    for s in args.only:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s!r} (known: {', '.join(SCENARIOS)})")
    for s in args.servers:
        if s not in SERVERS:
            ap.error(f"unknown server {s!r} (known: {', '.join(SERVERS)})")
    args.servers = [s for s in SERVERS if s in args.servers]  # fixed order
    args.sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else None
    args.ingest_sizes = [int(x) for x in args.ingest_sizes.split(",")] if args.ingest_sizes \
        else None
    mr = {}
    for part in filter(None, args.mixed_runs.split(",")):
        k, _, v = part.partition("=")
        mr[aliases.get(k.strip(), k.strip())] = int(v)
    args.mixed_runs = mr
    args.full = not (args.quick or args.runs or args.window or args.mixed_duration or args.sizes
                     or args.ingest_sizes or set(args.only) != set(SCENARIOS)
                     or set(args.servers) != set(SERVERS) or args.mixed_runs)
    return args


def main(argv):
    args = parse_args(argv)
    if args.report_only:
        d = Path(args.report_only)
        res = Results(d)
        dest = Path(args.results) if args.results else (
            BENCH_DIR / "RESULTS.md" if res.meta.get("full") else d / "RESULTS.md")
        dest.write_text(render(res))
        log(f"wrote {dest}")
        return 0

    t_start = time.time()
    t0 = args.t0 or t_start
    deadline = t0 + args.budget * 60 - BUDGET_RESERVE

    plan = build_plan(args)
    overhead = DEFAULT_OVERHEAD
    order = [s for s in SCENARIOS if s in plan]
    est = estimate(plan, overhead) + VERIFY_SECS * len(args.servers)
    log(f"plan: scenarios {', '.join(order)}; servers {', '.join(args.servers)}")
    for name in order:
        sc = plan[name]
        if sc.get("derived_from"):
            log(f"  {name}: from the {sc['derived_from']} runs at 1,000 players")
            continue
        n = sum(case_runs(sc, c) for c in sc["cases"])
        t = sum(run_secs(c, overhead) * case_runs(sc, c) for c in sc["cases"])
        durs = sorted({c["duration"] for c in sc["cases"]})
        log(f"  {name}: {len(sc['cases'])} cells, {n} runs, windows "
            f"{'/'.join(fmt_secs(d) for d in durs)} s, ~{t / 60:.1f} min")
    log(f"estimate: ~{est / 60:.1f} min of benchmarking (+ media generation the first time); "
        f"budget ends {max(0, (deadline - time.time())) / 60:.1f} min from now")
    if args.dry_run:
        return 0

    # Context: binaries, temp dirs.
    ctx = Ctx()
    ctx.bench_bin = args.bench_bin or str(TARGET / "shardcast-bench")
    ctx.shardcast_bin = str(TARGET / "shardcast")
    ctx.raw_bin = str(TARGET / "raw-fanout")
    ctx.nginx_bin = find_exe("nginx", ["/usr/sbin/nginx"])
    ctx.xiu_bin = find_exe("xiu", [Path.home() / ".cargo/bin/xiu"])
    ctx.nginx_module = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
    ctx.shards = args.shards
    ctx.threads = args.threads
    ctx.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    ctx.outdir = OUT_ROOT / stamp
    ctx.logdir = ctx.outdir / "logs"
    ctx.logdir.mkdir(parents=True, exist_ok=True)
    ctx.tmp = Path(tempfile.mkdtemp(prefix="shardcast-bench-"))
    ctx.tmp.chmod(0o755)  # nginx workers (user nobody) serve HLS files from below it
    (BENCH_DIR / "out" / "latest").unlink(missing_ok=True)
    try:
        (BENCH_DIR / "out" / "latest").symlink_to(stamp)
    except OSError:
        pass

    missing = []
    if not Path(ctx.bench_bin).exists():
        missing.append(f"load generator {ctx.bench_bin}")
    uses_shardcast = any(s.startswith("shardcast") for s in args.servers)
    if uses_shardcast and not Path(ctx.shardcast_bin).exists():
        missing.append(ctx.shardcast_bin)
    if "raw" in args.servers and not Path(ctx.raw_bin).exists():
        missing.append(ctx.raw_bin)
    if "nginx" in args.servers and (not ctx.nginx_bin or not Path(ctx.nginx_module).exists()):
        missing.append("nginx with libnginx-mod-rtmp")
    if "xiu" in args.servers and not ctx.xiu_bin:
        missing.append("xiu (cargo install xiu --locked)")
    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            missing.append(tool)
    if missing:
        log("missing: " + "; ".join(missing) + " (scripts/bench installs and builds them)")
        return 2
    if "xiu" in args.servers:
        ctx.bind_shim = build_shim(ctx)
    if uses_shardcast:
        ctx.shardcast_env = shardcast_env(ctx.shardcast_bin, ctx.tmp)

    biggest = max([c["play"] + c["publish"] for sc in plan.values() for c in sc["cases"]] or [0])
    if ctx.nofile < biggest * 2 + 256:
        log(f"warning: open-files limit {ctx.nofile} is low for {biggest} connections "
            "(scripts/bench raises it to the hard limit)")

    meta = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                env=environment(), versions=versions(ctx, args.servers),
                mode="quick" if args.quick else ("full" if args.full else "partial"),
                full=args.full, scenarios=order, servers=args.servers, notes=[], verify={},
                argv=argv, budget_min=args.budget,
                setup={k: int(v) for k, _, v in (p.partition("=") for p in args.setup.split(","))
                       if v.isdigit()})
    meta["notes"].append(
        "All servers listen on 127.0.0.1 only; the load generator runs on the same machine.")
    if "shardcast" in args.servers:
        meta["notes"].append(f"shardcast runs with --shards {args.shards} (its other settings "
                             "default: 1 GOP cached, shards pinned to cores, realtime writes: "
                             "video written at once, audio held up to 50 ms for the next video "
                             "frame).")
    if "shardcast-mw" in args.servers:
        meta["notes"].append("'shardcast, merge_write_ms=100' (fan-out at 1,000 and 3,000 "
                             "only) holds every frame up to 100 ms so each player gets one "
                             "write per 100 ms, as SRS's mw_latency does: less CPU for up to "
                             "100 ms more latency.")
    if "nginx" in args.servers:
        meta["notes"].append(
            "nginx-rtmp runs with 1 worker process, its best case: with more, a player is only "
            "served by the worker that holds the publisher. CPU and RSS are the worker's. "
            "`wait_key on` (players start at a key frame); no GOP cache exists in nginx-rtmp.")
    if "xiu" in args.servers:
        meta["notes"].append(
            "xiu cannot be told a listen address (it binds 0.0.0.0): it runs with an LD_PRELOAD "
            "shim (bench/peers/loopback_bind.c) that moves its binds to 127.0.0.1, checked in "
            "/proc before each run. gop_num = 1, like shardcast.")
    meta["notes"].append("HLS is switched on only in the mixed scenario (on every server), so "
                         "no server spends CPU on segmenting in the others.")

    records = []

    def save():
        (ctx.outdir / "runs.json").write_text(json.dumps(records, indent=1))
        meta["plan"] = plan
        meta["wall_min"] = round((time.time() - t_start) / 60, 1)
        meta["total_min"] = round((time.time() - t0) / 60, 1)
        (ctx.outdir / "meta.json").write_text(json.dumps(meta, indent=1, default=str))

    save()
    try:
        # Media.
        kinds = sorted({c["media"] for sc in plan.values() for c in sc["cases"]} | {"1m"})
        ctx.media = {k: str(media_file(ctx, k)) for k in kinds}

        # Verify each server once.
        if not args.no_verify:
            for key in list(args.servers):
                log(f"verifying {TITLE[key]}: ffmpeg publishes, ffprobe plays back")
                try:
                    v = verify_server(ctx, key)
                except (Interrupted, KeyboardInterrupt):
                    raise
                except Exception as e:  # noqa: BLE001
                    v = {"start": f"FAILED: {e}"}
                meta["verify"][key] = v
                log(f"  {TITLE[key]}: " + ", ".join(f"{p} {r}" for p, r in v.items()))
                first = "raw" if key == "raw" else "rtmp"
                if v.get(first) != "ok":
                    log(f"  {TITLE[key]} failed its check: left out of the runs")
                    meta["notes"].append(f"{TITLE[key]} failed the ffmpeg/ffprobe check "
                                         f"({v}) and was left out.")
                    args.servers.remove(key)
                    for sc in plan.values():
                        sc["cases"] = [c for c in sc["cases"] if c["server"] != key]
                save()

        # Scenarios.
        floors = {"fanout": 3.0, "ingest": 3.0, "mixed": 30.0}
        overheads = []
        for i, name in enumerate(order):
            sc = plan[name]
            if sc.get("derived_from"):
                continue
            remaining = deadline - time.time()
            scalable_rest = [n for n in order[i:] if not plan[n].get("derived_from")]
            scale, est_rest = fit_windows(plan, scalable_rest, remaining, overhead, floors)
            if scale < 0.999:
                log(f"budget: windows scaled to {scale:.0%} to fit "
                    f"{remaining / 60:.1f} min left")
                note = (f"{name}: measuring windows shortened to "
                        f"{'/'.join(sorted({fmt_secs(c['duration']) for c in sc['cases']}))} s "
                        f"to fit the {args.budget:g}-minute budget.")
                meta["notes"].append(note)
            rounds = max(case_runs(sc, c) for c in sc["cases"]) if sc["cases"] else 0
            log(f"== {name}: {len(sc['cases'])} cells x up to {rounds} run(s), "
                f"~{sum(run_secs(c, overhead) * case_runs(sc, c) for c in sc['cases']) / 60:.1f}"
                f" min")
            for rnd in range(1, rounds + 1):
                for case in sc["cases"]:
                    if rnd > case_runs(sc, case):
                        continue
                    need = run_secs(case, overhead)
                    if time.time() + need > deadline:
                        rec = dict(scenario=name, server=case["server"], proto=case["proto"],
                                   size=case["size"], round=rnd,
                                   label=f"{name}-{case['server']}-{case['proto']}-"
                                         f"{case['size']}-r{rnd}",
                                   json="", ok=False,
                                   error="skipped: time budget exhausted")
                        records.append(rec)
                        continue
                    rec = run_case(ctx, name, case, rnd)
                    records.append(rec)
                    overheads.append(max(0.0, rec["overhead"] - case["play"] / 6000.0))
                    overhead = max(DEFAULT_OVERHEAD / 2, statistics.median(overheads[-20:]))
                    rep = None
                    if rec["ok"]:
                        rep = json.loads((ctx.outdir / rec["json"]).read_text())
                    status = "ok" if rec["ok"] and not rec.get("error") else (
                        rec.get("error") or "failed")
                    log(f"  {rec['label']}: {status}; {summary_line(rep)} "
                        f"[{rec['elapsed']:.0f} s]")
                    save()
            skipped = sum(1 for r in records if r["scenario"] == name
                          and (r.get("error") or "").startswith("skipped"))
            if skipped:
                meta["notes"].append(f"{name}: {skipped} run(s) skipped: time budget exhausted.")
        if "mixed" in plan and plan["mixed"]["cases"]:
            runs_txt = ", ".join(f"{TITLE[c['server']]} {c['runs']}"
                                 for c in plan["mixed"]["cases"])
            meta["notes"].append(
                "mixed: 3 runs x 2 minutes x every server does not fit the 30-minute budget; "
                f"runs made: {runs_txt} (figures of a single run are that run's, not medians).")
    except (Interrupted, KeyboardInterrupt) as e:
        log(f"interrupted ({e or 'SIGINT'}): stopping everything")
        meta["notes"].append("The run was interrupted before it finished.")
        save()
        raise
    finally:
        PROCS.stop_all()
        shutil.rmtree(ctx.tmp, ignore_errors=True)
        save()

    res = Results(ctx.outdir)
    dest = Path(args.results) if args.results else (
        BENCH_DIR / "RESULTS.md" if args.full else ctx.outdir / "RESULTS.md")
    text = render(res)
    dest.write_text(text)
    (ctx.outdir / "RESULTS.md").write_text(text)
    log(f"done in {(time.time() - t_start) / 60:.1f} min; report: {dest}; raw JSON: {ctx.outdir}")
    return 0


def summary_line(rep):
    if not rep:
        return ""
    parts = []
    pl = rep.get("players") or {}
    parts.append(f"players {pl.get('connected')}/{pl.get('requested')}")
    g = dig(rep, "delivered.gbps")
    if g is not None:
        parts.append(f"{g:.3f} Gbit/s")
    loss = metric(rep, "loss_pct")
    if loss is not None:
        parts.append(f"loss {loss:.2f}%")
    lag = dig(rep, "lag_ms.p99")
    if lag is not None:
        parts.append(f"lag p99 {lag:.0f} ms")
    j = dig(rep, "join_ms.p99")
    if j is not None:
        parts.append(f"join p99 {j:.0f} ms")
    cpu = dig(rep, "server.cpu_pct")
    if cpu is not None:
        parts.append(f"server CPU {cpu:.0f}%")
    return ", ".join(parts)


def _install_signal_handlers():
    def handler(signum, _frame):
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)  # once: clean-up runs undisturbed
        raise Interrupted(signal.Signals(signum).name)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


if __name__ == "__main__":
    _install_signal_handlers()
    code = 130
    try:
        code = main(sys.argv[1:])
    except (Interrupted, KeyboardInterrupt):
        code = 130
    finally:
        PROCS.stop_all()
    sys.exit(code)
