#!/usr/bin/env python3
"""Make the Enhanced RTMP fuzz seeds from real FFmpeg output, once (the output is committed).

A modern FFmpeg (imageio-ffmpeg's static 9.x; Debian's 5.1 predates E-RTMP) encodes 1 s of
HEVC+AAC, HEVC+Opus, AV1+Opus and VP9+Opus to FLV. Each distinct kind of tag body (by its
first byte, at most 4 KiB of it) seeds `ertmp_tags`; the head of each FLV file (up to
8 KiB of whole tags) seeds `flv_tags`. An AMF0 `connect` object with the E-RTMP
properties, as FFmpeg's -rtmp_enhanced_codecs sends it, seeds `ertmp_tags` too.

Usage: fuzz/make_ertmp_seeds.py  (needs python3 -m pip install imageio-ffmpeg)
"""

import os
import struct
import subprocess
import tempfile

import imageio_ffmpeg

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
CLIPS = {
    "hevc-aac": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
                 "-c:a", "aac"],
    "hevc-opus": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
                  "-c:a", "libopus"],
    "av1-opus": ["-c:v", "libsvtav1", "-preset", "12", "-c:a", "libopus"],
    "vp9-opus": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                 "-c:a", "libopus"],
}


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def tags(flv):
    pos = 13
    while pos + 11 <= len(flv):
        size = int.from_bytes(flv[pos + 1:pos + 4], "big")
        end = pos + 11 + size + 4
        if end > len(flv):
            return
        yield pos, flv[pos] & 0x1F, flv[pos + 11:pos + 11 + size], end
        pos = end


def amf_string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def connect_object():
    out = b"\x02" + amf_string("connect") + b"\x00" + struct.pack(">d", 1.0) + b"\x03"
    out += amf_string("app") + b"\x02" + amf_string("live")
    out += amf_string("fourCcList") + b"\x0a" + struct.pack(">I", 3)
    for cc in ["hvc1", "av01", "vp09"]:
        out += b"\x02" + amf_string(cc)
    out += amf_string("videoFourCcInfoMap") + b"\x03"
    out += amf_string("hvc1") + b"\x00" + struct.pack(">d", 4.0) + b"\x00\x00\x09"
    out += amf_string("capsEx") + b"\x00" + struct.pack(">d", 2.0)
    return out + b"\x00\x00\x09"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for name, codec_args in CLIPS.items():
            path = os.path.join(tmp, name + ".flv")
            subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
                            "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                            "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "1",
                            "-g", "5", "-pix_fmt", "yuv420p"] + codec_args +
                           ["-shortest", "-f", "flv", path], check=True, timeout=120)
            flv = open(path, "rb").read()
            seen = set()
            head_end = 13
            for pos, kind, body, end in tags(flv):
                if end <= 8192:
                    head_end = end
                if kind in (8, 9) and body and (kind, body[0]) not in seen:
                    seen.add((kind, body[0]))
                    label = "video" if kind == 9 else "audio"
                    write("ertmp_tags", f"{name}-{label}-{body[0]:02x}", body[:4096])
            write("flv_tags", f"ertmp-{name}", flv[:head_end])
    write("ertmp_tags", "connect-enhanced", connect_object())


if __name__ == "__main__":
    main()
