"""Packet captures: the job of ``closecodec capture`` on a large generated capture (issue 7).

``generate_capture`` writes, deterministically, a pcap of ordinary traffic with a
few thousand closes: 300 TCP connections open at a time, each a WebSocket
connection on port 80 (HTTP upgrade, then 1 KiB binary frames, unmasked from the
server and masked from the client, then a close each way and FINs) or, one in
four, an MQTT 5 connection on port 1883 (CONNECT, CONNACK, 1 KiB PUBLISHes, then
a DISCONNECT with a reason code). A connection that ends is replaced by a new
one. 200 MB for a full run, 20 MB with ``--quick``.

Contenders, each reading the whole file from disk and finding its closes:

- ``compiled`` / ``pure Python``: ``CloseRecordReader`` (what ``closecodec
  capture`` runs) with either backend: pcap records, Ethernet/IP/TCP, per
  direction reassembly, protocol recognition, WebSocket and MQTT decoding. The
  modules above the backends (capture.py, closes.py) are the same for both:
  compiled where the install compiled them (a note says which).
- ``dpkt, segment starts``: dpkt's pcap reader and Ethernet/IP/TCP parsing,
  reading a close frame where a TCP payload starts with one (no reassembly: a
  close split over segments or behind another frame in a segment is missed).
- ``tshark -Y close``: tshark with a display filter for close frames
  (``websocket.opcode == 8 || mqtt.msgtype == 14``), where tshark is installed.

A second table times the packet reader alone, and the peak resident memory of
``closecodec capture --summary`` and of tshark on the same file is printed
(measured in child processes, each on its own).
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

from closecodec import _capture_py
from closecodec.capture.records import CloseRecordReader

from .harness import Case

CONCURRENT = 300
FRAME = 1024
TSHARK_FILTER = "websocket.opcode == 8 || mqtt.msgtype == 14"
# The issue's speed targets are ratios to the peers, which each run measures, and its "about 1 GB/s":
# 10x its dpkt loop, which ran at 80 MB/s where it measured. Here the peers run slower, and runs of one
# build differ by up to a third on this shared machine: read the absolute check over several runs.
ISSUE_MB_S = 1000
WS_CLOSE_CODES = (1000, 1001, 1008, 1011, 4000)
MQTT_REASONS = (0x00, 0x04, 0x80, 0x8E, 0x95)


def _ws_frame(opcode: int, payload: bytes, key: Optional[bytes]) -> bytes:
    # RFC 6455 §5.2: FIN + opcode; 7- or 16-bit length; masking key from the client.
    size = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([size]) if size < 126 else b"\x7e" + struct.pack(">H", size))
    if key is None:
        return head + payload
    head = bytes([head[0], head[1] | 0x80]) + head[2:]
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def _mqtt(first: int, body: bytes) -> bytes:
    # MQTT 5 §2.1: fixed header, remaining length as a variable byte integer.
    size, length = len(body), bytearray()
    while True:
        size, digit = size >> 7, size & 0x7F
        length.append(digit | (0x80 if size else 0))
        if not size:
            return bytes([first]) + bytes(length) + body


class _Generator:
    """Writes the pcap, packet by packet, with a seeded random source."""

    def __init__(self, path: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.file = path.open("wb")
        self.file.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))  # µs, Ethernet
        self.written = 24
        self.packets = 0
        self.closes = 0
        self.clock = 1_700_000_000_000_000  # µs
        self.next_client = 0
        self.out: List[bytes] = []
        payload = bytes(self.rng.randrange(256) for _ in range(FRAME))
        self.server_frame = _ws_frame(2, payload, None)
        self.client_frame = _ws_frame(2, payload, b"\x11\x22\x33\x44")
        self.publish = _mqtt(0x30, struct.pack(">H", 5) + b"a/b/c" + b"\x00" + payload)

    def packet(self, conn: dict, from_client: bool, flags: int, payload: bytes = b"") -> None:
        if from_client:
            src, dst, sport, dport, seq, ack = conn["client"], conn["server"], conn["port"], conn["service"], \
                conn["cseq"], conn["sseq"]
        else:
            src, dst, sport, dport, seq, ack = conn["server"], conn["client"], conn["service"], conn["port"], \
                conn["sseq"], conn["cseq"]
        segment = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0x4000, 64, 6, 0, src, dst) + segment
        frame = b"\0" * 12 + b"\x08\x00" + ip
        self.clock += 7
        self.out.append(struct.pack("<IIII", self.clock // 10**6, self.clock % 10**6, len(frame), len(frame)))
        self.out.append(frame)
        self.written += 16 + len(frame)
        self.packets += 1
        advance = len(payload) + (1 if flags & 0x03 else 0)  # SYN and FIN take a sequence number
        side = "cseq" if from_client else "sseq"
        conn[side] = (conn[side] + advance) % 2**32
        if len(self.out) > 8192:
            self.flush()

    def flush(self) -> None:
        self.file.write(b"".join(self.out))
        self.out.clear()

    def open(self) -> dict:
        rng = self.rng
        n = self.next_client
        self.next_client += 1
        mqtt = rng.random() < 0.25
        conn = {
            "client": bytes([10, 1, (n >> 14) & 0xFF, 1 + (n >> 6) % 250]), "server": bytes([10, 0, 0, 1]),
            "port": 10000 + n % 50000, "service": 1883 if mqtt else 80, "mqtt": mqtt,
            "cseq": rng.randrange(2**32), "sseq": rng.randrange(2**32), "left": rng.randrange(20, 100),
        }
        self.packet(conn, True, 0x02)
        self.packet(conn, False, 0x12)
        self.packet(conn, True, 0x10)
        if mqtt:
            # CONNECT (MQTT 5): protocol name, level 5, clean start, keep alive, no properties, client id.
            client_id = f"bench{n}".encode()
            body = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + struct.pack(">H", len(client_id)) + client_id
            self.packet(conn, True, 0x18, _mqtt(0x10, body))
            self.packet(conn, False, 0x18, _mqtt(0x20, b"\x00\x00\x00"))
        else:
            key = base64.b64encode(rng.randbytes(16))
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            self.packet(conn, True, 0x18, b"GET /chat HTTP/1.1\r\nHost: server\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
            self.packet(conn, False, 0x18, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        return conn

    def step(self, conn: dict) -> None:
        from_client = self.rng.random() < 0.25
        if conn["mqtt"]:
            self.packet(conn, from_client, 0x18, self.publish)
        else:
            self.packet(conn, from_client, 0x18, self.client_frame if from_client else self.server_frame)
        conn["left"] -= 1

    def close(self, conn: dict) -> None:
        rng = self.rng
        if conn["mqtt"]:
            self.packet(conn, True, 0x18, _mqtt(0xE0, bytes([rng.choice(MQTT_REASONS)])))
            self.closes += 1
        else:
            body = struct.pack(">H", rng.choice(WS_CLOSE_CODES)) + b"bye"
            self.packet(conn, False, 0x18, _ws_frame(8, body, None))
            self.packet(conn, True, 0x18, _ws_frame(8, body, b"\x55\x66\x77\x88"))
            self.closes += 2
        self.packet(conn, False, 0x11)
        self.packet(conn, True, 0x11)


def generate_capture(path: Path, size: int, *, seed: int = 7) -> "tuple[int, int]":
    """Write a pcap of about ``size`` bytes to ``path``; return its packets and close frames."""
    gen = _Generator(path, seed)
    live = [gen.open() for _ in range(CONCURRENT)]
    while gen.written < size:
        i = gen.rng.randrange(CONCURRENT)
        gen.step(live[i])
        if live[i]["left"] <= 0:
            gen.close(live[i])
            live[i] = gen.open()
    for conn in live:
        gen.close(conn)
    gen.flush()
    gen.file.close()
    return gen.packets, gen.closes


def ours(backend: str, path: Path) -> int:
    with CloseRecordReader(path, backend=backend) as reader:
        return sum(1 for record in reader if record.protocol != "tcp")


def read_only(module, path: Path) -> int:
    with path.open("rb") as file:
        return sum(1 for _ in module.PacketReader(file))


def dpkt_segment_starts(dpkt, path: Path) -> int:
    closes = 0
    with path.open("rb") as file:
        for _, buf in dpkt.pcap.Reader(file):
            ip = dpkt.ethernet.Ethernet(buf).data
            if not isinstance(ip, dpkt.ip.IP) or not isinstance(ip.data, dpkt.tcp.TCP):
                continue
            payload = ip.data.data
            if len(payload) < 2:
                continue
            if payload[0] == 0x88:  # WebSocket close, FIN set: its status code, unmasked
                size, masked = payload[1] & 0x7F, payload[1] & 0x80
                body = payload[6:6 + size] if masked else payload[2:2 + size]
                if masked and len(body) >= 2:
                    key = payload[2:6]
                    body = bytes(b ^ key[i & 3] for i, b in enumerate(body[:2]))
                closes += len(body) >= 2 and struct.unpack(">H", body[:2])[0] > 0
            elif payload[0] == 0xE0:  # MQTT DISCONNECT
                closes += 1
    return closes


def tshark_closes(tshark: str, path: Path) -> int:
    out = subprocess.run([tshark, "-n", "-r", str(path), "-Y", TSHARK_FILTER, "-T", "fields", "-e", "frame.number"],
                         check=True, capture_output=True, text=True).stdout
    return len(out.split())


def peak_rss_mb(command: List[str]) -> float:
    """The peak resident memory of a child process running ``command``, in MB."""
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"{command[0]} exited with {child.returncode}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def cases() -> List[Case]:
    quick = "--quick" in sys.argv
    size = (20 if quick else 200) * 1000 * 1000
    folder = Path(tempfile.mkdtemp(prefix="closecodec-bench-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "traffic.pcap"
    packets, closes = generate_capture(path, size)
    nbytes = os.path.getsize(path)
    print(f"\ncapture: {nbytes / 1e6:.0f} MB, {packets} packets, {closes} close frames, "
          f"{CONCURRENT} connections open at a time, {FRAME}-byte messages")

    try:
        from closecodec import _capture_c
    except ImportError:
        print("note: the compiled capture backend is not built; measuring pure Python only")
        _capture_c = None
    from closecodec import closes

    # "pure Python" is the pure-Python backend; the modules above the backends (capture and closes) are
    # the same for both contenders: compiled where the install compiled them.
    glue = "compiled" if Path(closes.__file__).suffix != ".py" else "interpreted"
    print(f"note: capture.py and closes.py are {glue} here, for both closecodec contenders")
    jobs: Dict[str, object] = {}
    if _capture_c is not None:
        jobs["compiled"] = lambda: ours("c", path)
    jobs["pure Python"] = lambda: ours("py", path)
    try:
        import dpkt
    except ImportError as error:
        print(f"note: dpkt not installed ({error}); pip install '.[bench]'")
    else:
        jobs["dpkt, segment starts"] = lambda: dpkt_segment_starts(dpkt, path)
    tshark = shutil.which("tshark")
    if tshark is None:
        print("note: tshark not installed (Debian: apt-get install tshark); not measured")
    else:
        jobs["tshark -Y close"] = lambda: tshark_closes(tshark, path)
    # Each contender's answer, once: they must find the same closes (dpkt only those at segment starts).
    for name, job in jobs.items():
        print(f"  {name}: {job()} close frames found")

    memory = [("closecodec capture", [sys.executable, "-m", "closecodec", "capture", "--summary", str(path)])]
    if tshark is not None:
        memory.append(("tshark -Y close", [tshark, "-n", "-r", str(path), "-Y", TSHARK_FILTER]))
    for name, command in memory:
        print(f"  peak memory, {name}: {peak_rss_mb(command):.0f} MB")

    readers: Dict[str, object] = {}
    if _capture_c is not None:
        readers["compiled"] = lambda: read_only(_capture_c, path)
    readers["pure Python"] = lambda: read_only(_capture_py, path)
    return [
        Case("capture: find every close (closecodec capture's job)", jobs, units=packets, unit="packet",
             nbytes=nbytes, targets=[("compiled", "tshark -Y close", 30), ("compiled", "dpkt, segment starts", 10),
                                     ("compiled", "pure Python", 1)],
             throughput_targets=[("compiled", ISSUE_MB_S)]),
        Case("capture: read packet records only", readers, units=packets, unit="packet", nbytes=nbytes),
    ]
