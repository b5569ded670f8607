#!/usr/bin/env python3
"""Make the fuzz seed corpora from real traffic, once (the output is committed).

- ffmpeg encodes 1 s of H.264 + AAC (and MP3) to FLV: the FLV, AVC and AAC seeds.
- ffmpeg publishes and plays over RTMP against a minimal scripted RTMP server here: what
  ffmpeg sends seeds the handshake, chunk decoder, session and AMF targets; what the script
  answers seeds the client session.
- curl and ffmpeg send HTTP requests to a socket here: the HTTP request seeds.

Usage: fuzz/make_seeds.py  (needs ffmpeg and curl; writes fuzz/corpus/<target>/seed-*)
"""

import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import subprocess
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
LAVFI = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-f", "lavfi", "-i", "sine"]


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def run_ffmpeg(args):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"] + args,
                   check=True, timeout=60)


# --- FLV ---------------------------------------------------------------------------------

def flv_tags(data):
    pos = struct.unpack(">I", data[5:9])[0] + 4
    while pos + 11 <= len(data):
        kind, size = data[pos], int.from_bytes(data[pos + 1:pos + 4], "big")
        body = data[pos + 11:pos + 11 + size]
        if len(body) < size:
            break
        yield kind, body
        pos += 11 + size + 4


def flv_seeds(tmp):
    path = os.path.join(tmp, "seed.flv")
    run_ffmpeg(LAVFI + ["-t", "1", "-c:v", "libx264", "-g", "5", "-c:a", "aac", "-f", "flv", path])
    data = open(path, "rb").read()
    write("flv_tags", "ffmpeg-h264-aac.flv", data[:16384])
    write("flv_tags", "ffmpeg-head.flv", data[:600])
    tags = list(flv_tags(data))
    video = [b for k, b in tags if k == 9]
    audio = [b for k, b in tags if k == 8]
    meta = [b for k, b in tags if k == 18]
    record = video[0][5:]
    write("avc_config", "record", record)
    write("avc_config", "seq-header-tag", video[0])
    for i, body in enumerate(video[1:4]):
        sample = body[5:][:2048]
        write("avc_config", f"record+sample-{i}", bytes([min(len(record), 255)]) + record + sample)
    write("aac_config", "asc", audio[0][2:])
    write("aac_config", "seq-header-tag", audio[0])
    write("aac_config", "raw-tag", audio[1][:64])
    write("amf0", "onMetaData", meta[0])
    write("chunk_decoder", "placeholder", b"")  # replaced by the RTMP capture below
    mp3 = os.path.join(tmp, "seed.mp3")
    run_ffmpeg(["-f", "lavfi", "-i", "sine", "-t", "0.1", "-c:a", "libmp3lame", "-f", "mp3", mp3])
    frame = open(mp3, "rb").read()
    start = frame.find(b"\xff\xfb")
    write("aac_config", "mp3-frame", frame[start:start + 64] if start >= 0 else frame[:64])


# --- RTMP --------------------------------------------------------------------------------

def amf0(*values):
    out = b""
    for v in values:
        if v is None:
            out += b"\x05"
        elif isinstance(v, bool):
            out += b"\x01" + bytes([v])
        elif isinstance(v, (int, float)):
            out += b"\x00" + struct.pack(">d", v)
        elif isinstance(v, str):
            out += b"\x02" + struct.pack(">H", len(v)) + v.encode()
        elif isinstance(v, dict):
            out += b"\x03"
            for k, x in v.items():
                out += struct.pack(">H", len(k)) + k.encode() + amf0(x)
            out += b"\x00\x00\x09"
    return out


def chunk(csid, type_id, stream_id, payload, size=128):
    out = bytes([csid]) + b"\0\0\0" + len(payload).to_bytes(3, "big") + bytes([type_id])
    out += struct.pack("<I", stream_id)
    for i in range(0, max(len(payload), 1), size):
        if i:
            out += bytes([0xC0 | csid])
        out += payload[i:i + size]
    return out


def status(code):
    info = {"level": "status", "code": code, "description": code}
    return chunk(5, 20, 1, amf0("onStatus", 0, None, info))


def answers():
    """What the scripted server sends, keyed by the command that triggers it."""
    connect = (chunk(2, 5, 0, struct.pack(">I", 2500000)) + chunk(2, 6, 0, struct.pack(">IB", 2500000, 2))
               + chunk(2, 1, 0, struct.pack(">I", 4096)))
    connect += chunk(3, 20, 0, amf0("_result", 1, {"fmsVer": "FMS/3,0,1,123", "capabilities": 31},
                                    {"level": "status", "code": "NetConnection.Connect.Success",
                                     "description": "Connection succeeded.", "objectEncoding": 0}),
                     size=4096)
    return [
        (b"\x07connect", connect),
        (b"\x0ccreateStream", chunk(3, 20, 0, amf0("_result", 4, None, 1), 4096)),
        (b"\x07publish", chunk(2, 4, 0, struct.pack(">HI", 0, 1)) + status("NetStream.Publish.Start")),
        (b"\x04play", chunk(2, 4, 0, struct.pack(">HI", 0, 1)) + status("NetStream.Play.Start")),
    ]


def rtmp_server(sock, received, sent):
    conn, _ = sock.accept()
    conn.settimeout(3)
    buf = b""
    while len(buf) < 1537:
        buf += conn.recv(65536)
    s1 = bytes(1536)
    reply = b"\x03" + s1 + buf[1:1537]
    conn.sendall(reply)
    sent.append(reply)
    pending = answers()
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            buf += data
            while pending and pending[0][0] in buf:
                _, msg = pending.pop(0)
                conn.sendall(msg)
                sent.append(msg)
    except (socket.timeout, ConnectionError):
        pass
    received.append(buf)
    conn.close()


def capture(args_before, url_suffix, args_after):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    received, sent = [], []
    t = threading.Thread(target=rtmp_server, args=(sock, received, sent))
    t.start()
    url = f"rtmp://127.0.0.1:{sock.getsockname()[1]}/live/{url_suffix}"
    try:
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "quiet", "-y"] + args_before + [url]
                       + args_after, timeout=8)
    except subprocess.TimeoutExpired:
        pass
    t.join()
    sock.close()
    return received[0], b"".join(sent)


def rtmp_seeds():
    pub_in, pub_out = capture(LAVFI + ["-t", "1", "-c:v", "libx264", "-g", "5", "-c:a", "aac", "-f", "flv"],
                              "room", [])
    play_in, play_out = capture(["-t", "1", "-i"], "room", ["-f", "null", "-"])
    hs = 1 + 2 * 1536
    write("handshake", "ffmpeg-c0c1c2", pub_in[:hs])
    write("handshake", "ffmpeg-c0c1", pub_in[:1537])
    write("session", "ffmpeg-publish", pub_in[hs:hs + 32768])
    write("session", "ffmpeg-publish-head", pub_in[hs:hs + 1024])
    write("session", "ffmpeg-play", play_in[hs:])
    write("chunk_decoder", "placeholder", b"\x80" + pub_in[hs:hs + 16384])
    os.rename(os.path.join(CORPUS, "chunk_decoder", "seed-placeholder"),
              os.path.join(CORPUS, "chunk_decoder", "seed-ffmpeg-publish"))
    write("chunk_decoder", "ffmpeg-play-bytewise", b"\x01" + play_in[hs:])
    write("client_session", "publish", b"\x02" + pub_out[hs:])
    write("client_session", "play", b"\x00" + play_out[hs:])
    for name, data in [("connect", pub_in), ("play", play_in)]:
        start = data.find(b"\x02\x00\x07connect")
        if start > 0:
            write("amf0", name + "-command", data[start:start + 120])
    write("amf3", "values", b"\x04\x7f\x06\x07abc\x0a\x0b\x01\x03k\x06\x00\x01\x09\x05\x01\x04\x01\x04\x02")


# --- HTTP --------------------------------------------------------------------------------

def http_capture(cmd_for):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]
    proc = subprocess.Popen(cmd_for(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conn, _ = sock.accept()
    conn.settimeout(2)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
    except socket.timeout:
        pass
    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    conn.close()
    sock.close()
    proc.kill()
    proc.wait()
    return data


def jwt_token(alg, claims, secret=b"fuzz-secret"):
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
    head = enc(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + b"." + enc(json.dumps(claims).encode())
    sig = hmac.new(secret, head, hashlib.sha256).digest() if alg == "HS256" else b""
    return head + b"." + enc(sig)


def http_seeds():
    write("http_request", "curl", http_capture(lambda p: ["curl", "-s", f"http://127.0.0.1:{p}/live/room.flv"]))
    write("http_request", "ffmpeg-hls", http_capture(
        lambda p: ["ffmpeg", "-loglevel", "quiet", "-i", f"http://127.0.0.1:{p}/live/room.m3u8", "-f", "null", "-"]))
    token = jwt_token("HS256", {"exp": 2000000000})
    write("http_request", "api-post", b"POST /control/get?room=r&jwt=" + token + b" HTTP/1.1\r\nHost: h\r\n"
          b"Content-Length: 5\r\n\r\nhelloGET /statics/a/index.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    write("http_request", "bearer", b"GET /stat/livestat HTTP/1.1\r\nAuthorization: Bearer " + token + b"\r\n\r\n")
    write("jwt", "hs256", token)
    write("jwt", "alg-none", jwt_token("none", {"exp": 1}))
    write("statics", "dotdot", b"\x01/statics/%2e%2e/etc/passwd\x00jwt=x")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        flv_seeds(tmp)
    rtmp_seeds()
    http_seeds()


if __name__ == "__main__":
    main()
