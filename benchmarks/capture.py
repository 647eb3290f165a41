"""Reading captures: pcap records -> Ethernet/IPv4/TCP -> per-direction reassembly.

The capture is generated here (``generate_capture``) in a temporary directory:
mostly WebSocket traffic, 1 KiB binary frames (one per TCP segment, server
frames unmasked, every fourth frame a masked client frame) over a few hundred
interleaved TCP connections, each opened with a handshake and closed with
close frames and FINs. 200 MB for a full run, 20 MB with ``--quick``.

Contenders, each reading the whole file from disk:

- ``compiled read`` / ``pure read``: the packet reader alone.
- ``compiled pipeline`` / ``pure pipeline``: reader + ``parse_packet`` +
  ``TcpReassembler`` (the reassembler is pure Python in both, so this shows
  what the compiled per-packet loop buys end to end).
- ``dpkt``: dpkt's pcap reader and Ethernet/IP/TCP parsing, extracting each
  TCP payload (no reassembly), when dpkt is installed (``pip install '.[bench]'``).
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import struct
import sys
import tempfile
from pathlib import Path
from typing import Callable, List

from closecodec import _capture_py
from closecodec.capture import TcpReassembler

from .harness import Case

CONNECTIONS = 300
FRAME = 1024


def _ws_frame(payload: bytes, mask: bool) -> bytes:
    # RFC 6455 §5.2: FIN + binary, 16-bit length (126), optional masking key.
    if mask:
        key = b"\x11\x22\x33\x44"
        masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
        return struct.pack(">BBH", 0x82, 0x80 | 126, len(payload)) + key + masked
    return struct.pack(">BBH", 0x82, 126, len(payload)) + payload


def generate_capture(path: Path, size: int, *, seed: int = 7) -> int:
    """Write a pcap of about ``size`` bytes to ``path``; return how many packets it holds."""
    rng = random.Random(seed)
    server_frame = _ws_frame(bytes(rng.randrange(256) for _ in range(FRAME)), False)
    client_frame = _ws_frame(bytes(rng.randrange(256) for _ in range(FRAME)), True)
    close = struct.pack(">BBH", 0x88, 2, 1000)
    mac = b"\0" * 12 + b"\x08\x00"
    server_ip, client_ip = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    # Per connection: [client port, client seq, server seq]
    state = [[20000 + i, rng.randrange(2**32), rng.randrange(2**32)] for i in range(CONNECTIONS)]
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    written = len(out[0])
    packets = 0
    clock = 1_700_000_000_000_000

    def packet(conn: list, from_client: bool, flags: int, payload: bytes = b"") -> None:
        nonlocal written, packets, clock
        port, cseq, sseq = conn
        if from_client:
            src, dst, sport, dport, seq, ack = client_ip, server_ip, port, 443, cseq, sseq
        else:
            src, dst, sport, dport, seq, ack = server_ip, client_ip, 443, port, sseq, cseq
        segment = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0x4000, 64, 6, 0, src, dst) + segment
        frame = mac + ip
        clock += 7
        out.append(struct.pack("<IIII", clock // 10**6, clock % 10**6, len(frame), len(frame)) + frame)
        written += 16 + len(frame)
        packets += 1
        advance = len(payload) + (1 if flags & 0x03 else 0)
        if from_client:
            conn[1] = (cseq + advance) % 2**32
        else:
            conn[2] = (sseq + advance) % 2**32

    for conn in state:
        packet(conn, True, 0x02)
        packet(conn, False, 0x12)
        packet(conn, True, 0x10)
    turn = 0
    while written < size:
        conn = state[rng.randrange(CONNECTIONS)]
        turn += 1
        if turn % 4:
            packet(conn, False, 0x18, server_frame)
        else:
            packet(conn, True, 0x18, client_frame)
        if len(out) > 4096:
            with path.open("ab") as file:
                file.write(b"".join(out))
            out.clear()
    for conn in state:
        packet(conn, False, 0x18, close)
        packet(conn, True, 0x18, close[:1] + b"\x82" + close[2:])
        packet(conn, False, 0x11)
        packet(conn, True, 0x11)
    with path.open("ab") as file:
        file.write(b"".join(out))
    return packets


def read_only(module, path: Path) -> int:
    n = 0
    with path.open("rb") as file:
        for _ in module.PacketReader(file):
            n += 1
    return n


def pipeline(module, path: Path) -> int:
    reassembler = TcpReassembler()
    add = reassembler.add
    parse = module.parse_packet
    n = 0
    with path.open("rb") as file:
        for packet in module.PacketReader(file):
            segment = parse(packet.data, packet.link_type)
            if type(segment) is str:
                continue
            n += len(add(packet.frame, packet.timestamp_ns, segment))
    return n + len(reassembler.finish())


def dpkt_payloads(dpkt, path: Path) -> int:
    total = 0
    with path.open("rb") as file:
        for _, buf in dpkt.pcap.Reader(file):
            ip = dpkt.ethernet.Ethernet(buf).data
            if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP):
                total += len(ip.data.data)
    return total


def cases() -> List[Case]:
    quick = "--quick" in sys.argv
    size = (20 if quick else 200) * 1000 * 1000
    folder = Path(tempfile.mkdtemp(prefix="closecodec-bench-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "websocket.pcap"
    count = generate_capture(path, size)
    nbytes = os.path.getsize(path)
    print(f"\ncapture: {nbytes / 1e6:.0f} MB, {count} packets, {CONNECTIONS} connections, {FRAME}-byte frames")
    contenders: dict = {}
    try:
        from closecodec import _capture_c
    except ImportError:
        print("note: the compiled capture backend is not built; measuring pure Python only")
        _capture_c = None
    if _capture_c is not None:
        contenders["compiled pipeline"] = lambda: pipeline(_capture_c, path)
    contenders["pure pipeline"] = lambda: pipeline(_capture_py, path)
    try:
        import dpkt
    except ImportError as error:
        print(f"note: dpkt not installed ({error}); pip install '.[bench]'")
    else:
        contenders["dpkt (payloads, no reassembly)"] = lambda: dpkt_payloads(dpkt, path)
    readers: dict = {}
    if _capture_c is not None:
        readers["compiled read"] = lambda: read_only(_capture_c, path)
    readers["pure read"] = lambda: read_only(_capture_py, path)
    targets = [("compiled pipeline", "pure pipeline", 1.0)]
    return [
        Case("capture: read records only", readers, units=count, unit="packet", nbytes=nbytes),
        Case("capture: read + parse + reassemble", contenders, units=count, unit="packet", nbytes=nbytes,
             targets=targets),
    ]
