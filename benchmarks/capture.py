"""Packet captures: the job of ``closecodec capture`` on a large generated capture (issue 7).

``generate_capture`` (tests/helpers.py, shared with the tests) writes, deterministically, a pcap of ordinary traffic with a
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
  modules above the backends (capture/reassembly.py and records.py) are the same for both:
  compiled where the install compiled them (a note says which).
- ``dpkt, segment starts``: dpkt's pcap reader and Ethernet/IP/TCP parsing,
  reading a close frame where a TCP payload starts with one (no reassembly: a
  close split over segments or behind another frame in a segment is missed).
- ``tshark -Y close``: tshark with a display filter for close frames
  (``websocket.opcode == 8 || mqtt.msgtype == 14``), where tshark is installed.

A second capture holds small messages (issue 20): 1,000 connections open at a time,
payloads of 100 to 300 bytes, as MQTT telemetry or Diffusion topic updates are; there
the cost is per packet, not per byte. The compiled reader, dpkt and tshark read it.

What is per connection and what per packet is the ``connections`` suite's.

Further tables time the packet reader alone; the capture cut into 20 files read as a
set against the one file; and the same traffic without its handshakes (mid-stream
recognition) against the tidy capture. The peak resident memory of
``closecodec capture --summary`` and of tshark on the same file is printed
(measured in child processes, each on its own).
"""

from __future__ import annotations

import atexit
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

from closecodec.capture import _py as capture_py
from closecodec.capture.records import CloseRecordReader
from tests.helpers import CONCURRENT, FRAME, generate_capture, use_backend

from .harness import Case

TSHARK_FILTER = "websocket.opcode == 8 || mqtt.msgtype == 14"
# The issue's speed targets are ratios to the peers, which each run measures, and its "about 1 GB/s":
# 10x its dpkt loop, which ran at 80 MB/s where it measured. Here the peers run slower, and runs of one
# build differ by up to a third on this shared machine: read the absolute check over several runs.
ISSUE_MB_S = 1000
# Issue 20's targets: 3 GB/s on the 1 KiB traffic; on small messages 150 ns a packet and 60x tshark.
ISSUE_20_MB_S = 3000
SMALL_MESSAGES = (100, 150, 200, 250, 300)
SMALL_CONCURRENT = 1000


def ours(side: str, path: Path) -> int:
    with use_backend(side):
        reader = CloseRecordReader(path)
    with reader:
        return sum(1 for record in reader if record.protocol != "tcp")


def split_pcap(path: Path, folder: Path, count: int) -> List[Path]:
    """Cut a classic pcap into ``count`` files of about equal size at record boundaries, as ``editcap -c``
    or a rotating tcpdump would; each starts with the file header."""
    data = path.read_bytes()
    header, offsets, pos = data[:24], [], 24
    while pos < len(data):
        offsets.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    cuts = [offsets[len(offsets) * n // count] for n in range(count)] + [len(data)]
    folder.mkdir()
    files = []
    for n in range(count):
        files.append(folder / f"traffic-{n:02d}.pcap")
        files[-1].write_bytes(header + data[cuts[n]:cuts[n + 1]])
    return files


def ours_set(side: str, paths: List[Path]) -> int:
    with use_backend(side):
        reader = CloseRecordReader(paths)
    with reader:
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
    cut = folder / "traffic-midstream.pcap"
    cut_packets, _ = generate_capture(cut, size, handshakes=False)
    print(f"the same traffic without handshakes (SYNs, upgrades, CONNECTs): {cut_packets} packets")

    try:
        from closecodec.capture import _c as capture_c
    except ImportError:
        print("note: the compiled capture backend is not built; measuring pure Python only")
        capture_c = None
    from closecodec.capture import records

    # "pure Python" is the pure-Python backend; the modules above the backends (reassembly and records) are
    # the same for both contenders: compiled where the install compiled them.
    glue = "compiled" if Path(records.__file__).suffix != ".py" else "interpreted"
    print(f"note: capture/reassembly.py and capture/records.py are {glue} here, for both closecodec contenders")
    jobs: Dict[str, object] = {}
    if capture_c is not None:
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

    parts = split_pcap(path, folder / "set", 20)
    rotated: Dict[str, object] = {}
    if capture_c is not None:
        rotated["compiled, one file"] = jobs["compiled"]
        rotated["compiled, 20 files"] = lambda: ours_set("c", parts)
        print(f"  compiled, 20 files: {rotated['compiled, 20 files']()} close frames found")

    small = folder / "traffic-small.pcap"
    small_packets, small_closes = generate_capture(small, size // 4, message_sizes=SMALL_MESSAGES,
                                                   concurrent=SMALL_CONCURRENT)
    print(f"small messages: {os.path.getsize(small) / 1e6:.0f} MB, {small_packets} packets, {small_closes} close "
          f"frames, {SMALL_CONCURRENT} connections open at a time, {SMALL_MESSAGES[0]}-{SMALL_MESSAGES[-1]}-byte "
          "messages")
    smalls: Dict[str, object] = {}
    if capture_c is not None:
        smalls["compiled"] = lambda: ours("c", small)
    if "dpkt, segment starts" in jobs:
        smalls["dpkt, segment starts"] = lambda: dpkt_segment_starts(dpkt, small)
    if tshark is not None:
        smalls["tshark -Y close"] = lambda: tshark_closes(tshark, small)
    for name, job in smalls.items():
        print(f"  small messages, {name}: {job()} close frames found")

    midstream: Dict[str, object] = {}
    if capture_c is not None:
        midstream["compiled, tidy"] = jobs["compiled"]
        midstream["compiled, handshakes cut"] = lambda: ours("c", cut)
        print(f"  compiled, handshakes cut: {midstream['compiled, handshakes cut']()} close frames found")

    readers: Dict[str, object] = {}
    if capture_c is not None:
        readers["compiled"] = lambda: read_only(capture_c, path)
    readers["pure Python"] = lambda: read_only(capture_py, path)
    return [
        Case("capture: find every close (closecodec capture's job)", jobs, units=packets, unit="packet",
             nbytes=nbytes, targets=[("compiled", "tshark -Y close", 30), ("compiled", "dpkt, segment starts", 10),
                                     ("compiled", "pure Python", 1)],
             throughput_targets=[("compiled", ISSUE_MB_S), ("compiled", ISSUE_20_MB_S)]),
        Case("capture: small messages, 1,000 connections (issue 20)", smalls, units=small_packets, unit="packet",
             nbytes=os.path.getsize(small), targets=[("compiled", "tshark -Y close", 60)],
             time_targets=[("compiled", 150)]),
        Case("capture: read packet records only", readers, units=packets, unit="packet", nbytes=nbytes),
        # Issue 17: a capture set (rotated files) is read within 1.1x of the time of the same packets in one file,
        Case("capture: a set of 20 files (the same packets)", rotated, units=packets, unit="packet", nbytes=nbytes,
             targets=[("compiled, 20 files", "compiled, one file", 0.91)]),  # 1.1x the time
        # and a capture that starts after its connections opened within 1.25x.
        Case("capture: mid-stream recognition (the same traffic, handshakes cut)", midstream, units=packets,
             unit="packet", nbytes=nbytes, targets=[("compiled, handshakes cut", "compiled, tidy", 0.8)]),
    ]
