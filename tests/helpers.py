"""What the tests (and the benchmarks) share: the backends, capture builders, traffic, shared data.

Tests import it as ``helpers`` (pytest puts tests/ on the path); the benchmarks,
run from the repository's root, as ``tests.helpers``. Fixtures are in conftest.py.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import ipaddress
import json
import os
import random
import struct
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

DATA = Path(__file__).parent / "data"

# -- the backends -------------------------------------------------------------------

#: The rooms with a compiled module (``_c``) and its pure twin (``_py``), as closecodec._backend has them.
ROOMS = ("buffer", "websocket", "mqtt", "diffusion", "capture")
SIDES = ("c", "py")


def _load(room: str, side: str) -> Tuple[Optional[ModuleType], Optional[str]]:
    name = f"closecodec.{room}._{side}"
    try:
        return importlib.import_module(name), None
    except ImportError as error:
        return None, f"{name} is not importable: {error}"


LOADED: Dict[Tuple[str, str], Tuple[Optional[ModuleType], Optional[str]]] = {
    (room, side): _load(room, side) for room in ROOMS for side in SIDES
}


def backend_module(room: str, side: str) -> ModuleType:
    """``closecodec.<room>._<side>``; the test skips, with the import error, where it is not built."""
    module, reason = LOADED[room, side]
    if module is None:
        import pytest  # the benchmarks import this module without pytest

        pytest.skip(reason or "backend missing")
    return module


def compiled_missing() -> Optional[str]:
    """Why the compiled backend is not usable here, or None."""
    return next((reason for (room, side), (module, reason) in LOADED.items() if side == "c" and module is None),
                None)


def installed_sides() -> List[str]:
    """The sides this install has, for property tests (Hypothesis runs without fixtures)."""
    return ["py"] if compiled_missing() else ["c", "py"]


def installed(room: str) -> List[ModuleType]:
    """The backends of ``room`` this install has, for property tests."""
    return [LOADED[room, side][0] for side in installed_sides()]


def tool_env() -> Dict[str, str]:
    """The environment for a system tool a test runs (dumpcap, mergecap, mosquitto, openssl): this one
    without what the sanitizer run gives Python alone (scripts/sanitizers.sh): an uninstrumented tool
    with ASan's runtime preloaded can hang (mergecap did)."""
    drop = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC")
    return {name: value for name, value in os.environ.items() if name not in drop}


@contextmanager
def use_backend(side: str) -> Iterator[None]:
    """Point the selector (``closecodec._backend``'s rooms) at one side's byte loops while the block runs.

    A ``CloseRecordReader`` made in the block reads its byte loops from the selector, so it runs on
    that side's (as with ``CLOSECODEC_NO_EXTENSIONS`` for ``py``) and keeps them afterwards. Names
    bound when the package was imported (``closecodec.decode_ws_frame``, ``closecodec.capture``'s
    ``PacketReader``) keep the side the package loaded. The selector is restored afterwards.
    """
    from closecodec import _backend

    saved = {room: getattr(_backend, room) for room in ROOMS}
    for room in ROOMS:
        setattr(_backend, room, backend_module(room, side))
    try:
        yield
    finally:
        for room, module in saved.items():
            setattr(_backend, room, module)


def without_lanes(source: Any, **options: Any) -> Any:
    """A ``CloseRecordReader`` whose reassembler takes every segment: the path the segment loop's lanes
    bypass, for tests that compare the two."""
    from closecodec.capture.records import CloseRecordReader

    class WithoutLanes(CloseRecordReader):
        def _attach(self, loop: Any) -> None:
            pass

    return WithoutLanes(source, **options)


def outcome(call: Callable[[], Any]) -> Any:
    """A comparable summary of what a call did: its result, or its decode/encode error."""
    from closecodec.errors import DecodeError, EncodeError

    try:
        return ("ok", call())
    except (DecodeError, EncodeError) as error:
        return ("error", type(error), str(error), getattr(error, "offset", None))


# -- shared captures (tests/data/README.md) ------------------------------------------

WS_CAPTURES = ("websocket-close-codes.pcapng", "websocket-close-codes.pcap")
MQTT_CAPTURE = "mqtt5-session-takeover.pcapng"
DIFFUSION_CAPTURE = "diffusion-js-client-handshake-abort.pcap"
ALL_CAPTURES = WS_CAPTURES + (MQTT_CAPTURE, DIFFUSION_CAPTURE)
MQTT_PORTS = {21883: "mqtt", 21885: "mqtt"}  # tshark's -d tcp.port==21883,mqtt -d tcp.port==21885,mqtt


def capture_frames(protocol: str) -> List[Dict[str, Any]]:
    """The ground truth's close frames of one protocol, with their bytes (tests/data/README.md)."""
    frames = json.loads((DATA / "transport-close-frames.json").read_text(encoding="utf-8"))["frames"]
    return [frame for frame in frames if frame["protocol"] == protocol]


# -- files -------------------------------------------------------------------------

PCAP_MAGIC = {(False, False): 0xA1B2C3D4, (False, True): 0xA1B23C4D}


def pcap_file(records: Iterable[Tuple[int, bytes, Optional[int]]], *, big: bool = False, nano: bool = False,
              link: int = 1, snaplen: int = 262144) -> bytes:
    """A classic pcap file; records are (timestamp_ns, data, original_length or None)."""
    order = ">" if big else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link)]
    for ts, data, origlen in records:
        seconds, ns = divmod(ts, 10**9)
        out.append(struct.pack(order + "IIII", seconds, ns if nano else ns // 1000, len(data),
                               len(data) if origlen is None else origlen))
        out.append(data)
    return b"".join(out)


def block(block_type: int, body: bytes, big: bool = False) -> bytes:
    order = ">" if big else "<"
    body += b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def option(code: int, value: bytes, big: bool = False) -> bytes:
    order = ">" if big else "<"
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb(big: bool = False, options: bytes = b"", version: Tuple[int, int] = (1, 0)) -> bytes:
    order = ">" if big else "<"
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, version[0], version[1], -1) + options, big)


def idb(link: int, snaplen: int = 0, tsresol: Optional[int] = None, tsoffset: Optional[int] = None,
        big: bool = False) -> bytes:
    order = ">" if big else "<"
    options = option(2, b"eth0", big)
    if tsresol is not None:
        options += option(9, bytes([tsresol]), big)
    if tsoffset is not None:
        options += option(14, struct.pack(order + "q", tsoffset), big)
    options += option(0, b"", big)
    return block(1, struct.pack(order + "HHI", link, 0, snaplen) + options, big)


def epb(interface: int, ticks: int, data: bytes, origlen: Optional[int] = None, big: bool = False) -> bytes:
    order = ">" if big else "<"
    return block(6, struct.pack(order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                                len(data) if origlen is None else origlen) + data, big)


def spb(data: bytes, origlen: Optional[int] = None, big: bool = False) -> bytes:
    order = ">" if big else "<"
    return block(3, struct.pack(order + "I", len(data) if origlen is None else origlen) + data, big)


def pb(interface: int, ticks: int, data: bytes, big: bool = False) -> bytes:
    order = ">" if big else "<"
    return block(2, struct.pack(order + "HHIIII", interface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                                len(data)) + data, big)


# -- packets -------------------------------------------------------------------------

A4, B4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
A6, B6 = bytes(range(16)), bytes(range(16, 32))
SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08


def tcp(sport: int, dport: int, seq: int, ack: int = 0, flags: int = ACK, payload: bytes = b"",
        options: bytes = b"") -> bytes:
    options += b"\x01" * (-len(options) % 4)  # NOP padding
    offset = (20 + len(options)) // 4
    return struct.pack(">HHIIBBHHH", sport, dport, seq % 2**32, ack, offset << 4 | flags >> 8, flags & 0xFF,
                       65535, 0, 0) + options + payload


def ipv4(payload: bytes, src: bytes = A4, dst: bytes = B4, protocol: int = 6, options: bytes = b"",
         total: Optional[int] = None, fragment: int = 0) -> bytes:
    options += b"\0" * (-len(options) % 4)
    ihl = (20 + len(options)) // 4
    length = 20 + len(options) + len(payload) if total is None else total
    return struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, length, 1, fragment, 64, protocol, 0, src, dst) \
        + options + payload


def ipv6(payload: bytes, src: bytes = A6, dst: bytes = B6, next_header: int = 6,
         extensions: Sequence[Tuple[int, bytes]] = ()) -> bytes:
    """IPv6 with extension headers given as (type, header bytes after the type byte)."""
    chain = b""
    types = [t for t, _ in extensions] + [next_header]
    for i, (_, body) in enumerate(extensions):
        chain += bytes([types[i + 1]]) + body
    first = types[0]
    return struct.pack(">IHBB16s16s", 0x60000000, len(chain) + len(payload), first, 64, src, dst) + chain + payload


def ext_generic(units: int = 0) -> bytes:
    """A hop-by-hop / routing / destination options body: length byte then padding (8 * (units + 1) - 1 bytes)."""
    return bytes([units]) + b"\0" * (8 * (units + 1) - 2)


def ext_ah(words: int = 4) -> bytes:
    """An AH body: payload length (4-octet units - 2), then the rest ((words) * 4 - 1 bytes)."""
    return bytes([words - 2]) + b"\0" * (words * 4 - 2)


def ext_fragment(offset: int = 0, more: bool = False) -> bytes:
    return b"\0" + struct.pack(">HI", offset << 3 | int(more), 7)


def ether(payload: bytes, ethertype: int = 0x0800, vlans: Sequence[int] = ()) -> bytes:
    head = b"\0" * 12
    for tpid in vlans:
        head += struct.pack(">HH", tpid, 5)
    return head + struct.pack(">H", ethertype) + payload


def sll(payload: bytes, ethertype: int = 0x0800) -> bytes:
    return struct.pack(">HHH8sH", 0, 772, 6, b"\0" * 8, ethertype) + payload


def sll2(payload: bytes, ethertype: int = 0x0800) -> bytes:
    return struct.pack(">HHIHBB8s", ethertype, 0, 1, 772, 0, 6, b"\0" * 8) + payload


def null(payload: bytes, family: int = 2, big: bool = False) -> bytes:
    return struct.pack(">I" if big else "<I", family) + payload


# -- generated traffic (the capture benchmark's, and the tests') ---------------------
#
# generate_capture writes, deterministically, a pcap of ordinary traffic with a few
# thousand closes: 300 TCP connections open at a time, each a WebSocket connection on
# port 80 (HTTP upgrade, then 1 KiB binary frames, unmasked from the server and masked
# from the client, then a close each way and FINs) or, one in four, an MQTT 5
# connection on port 1883 (CONNECT, CONNACK, 1 KiB PUBLISHes, then a DISCONNECT with a
# reason code). A connection that ends is replaced by a new one. Without handshakes, the
# same traffic as a capture that started after every connection opened.

CONCURRENT = 300
FRAME = 1024
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

    def __init__(self, path: Path, seed: int, handshakes: bool, message_sizes: Tuple[int, ...],
                 messages: Tuple[int, int]) -> None:
        self.rng = random.Random(seed)
        self.messages = messages
        self.handshakes = handshakes
        self.file = path.open("wb")
        self.file.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))  # µs, Ethernet
        self.written = 24
        self.packets = 0
        self.closes = 0
        self.clock = 1_700_000_000_000_000  # µs
        self.next_client = 0
        self.out: List[bytes] = []
        self.server_frames, self.client_frames, self.publishes = [], [], []
        for size in message_sizes:
            payload = bytes(self.rng.randrange(256) for _ in range(size))
            self.server_frames.append(_ws_frame(2, payload, None))
            self.client_frames.append(_ws_frame(2, payload, b"\x11\x22\x33\x44"))
            self.publishes.append(_mqtt(0x30, struct.pack(">H", 5) + b"a/b/c" + b"\x00" + payload))

    def packet(self, conn: dict, from_client: bool, flags: int, payload: bytes = b"") -> None:
        if from_client:
            src, dst, sport, dport, seq, ack = conn["client"], conn["server"], conn["port"], conn["service"], \
                conn["cseq"], conn["sseq"]
        else:
            src, dst, sport, dport, seq, ack = conn["server"], conn["client"], conn["service"], conn["port"], \
                conn["sseq"], conn["cseq"]
        advance = len(payload) + (1 if flags & 0x03 else 0)  # SYN and FIN take a sequence number
        side = "cseq" if from_client else "sseq"
        if conn["opening"] and not self.handshakes:  # a capture that starts after the handshake
            conn[side] = (conn[side] + advance) % 2**32
            self.written += 16 + 54 + len(payload)  # as if written: the same packets follow, at the same times
            self.clock += 7
            return
        segment = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0x4000, 64, 6, 0, src, dst) + segment
        frame = b"\0" * 12 + b"\x08\x00" + ip
        self.clock += 7
        self.out.append(struct.pack("<IIII", self.clock // 10**6, self.clock % 10**6, len(frame), len(frame)))
        self.out.append(frame)
        self.written += 16 + len(frame)
        self.packets += 1
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
            "cseq": rng.randrange(2**32), "sseq": rng.randrange(2**32), "left": rng.randrange(*self.messages),
            "opening": True,
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
        conn["opening"] = False
        return conn

    def step(self, conn: dict) -> None:
        from_client = self.rng.random() < 0.25
        k = self.rng.randrange(len(self.publishes)) if len(self.publishes) > 1 else 0
        if conn["mqtt"]:
            self.packet(conn, from_client, 0x18, self.publishes[k])
        else:
            self.packet(conn, from_client, 0x18, self.client_frames[k] if from_client else self.server_frames[k])
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


def generate_capture(path: Path, size: int, *, seed: int = 7, handshakes: bool = True,
                     message_sizes: Tuple[int, ...] = (FRAME,), concurrent: int = CONCURRENT,
                     messages: Tuple[int, int] = (20, 100)) -> "tuple[int, int]":
    """Write a pcap of about ``size`` bytes to ``path``; return its packets and close frames.

    ``handshakes=False`` leaves out each connection's SYNs and its HTTP upgrade or CONNECT and CONNACK,
    as a capture that started after they were sent: the rest is the same traffic. Each message's payload
    takes one of ``message_sizes`` bytes, at random; ``concurrent`` connections are open at a time, each
    carrying from ``messages[0]`` to ``messages[1] - 1`` messages before it closes.
    """
    gen = _Generator(path, seed, handshakes, message_sizes, messages)
    live = [gen.open() for _ in range(concurrent)]
    while gen.written < size:
        i = gen.rng.randrange(concurrent)
        gen.step(live[i])
        if live[i]["left"] <= 0:
            gen.close(live[i])
            live[i] = gen.open()
    for conn in live:
        gen.close(conn)
    gen.flush()
    gen.file.close()
    return gen.packets, gen.closes


# -- synthetic captures of TCP connections --------------------------------------------


class Capture:
    """Packets of TCP connections over IPv4 and Ethernet, numbered from 1 as they are added."""

    def __init__(self) -> None:
        self.packets: List[Tuple[int, bytes, Optional[int]]] = []

    def add(self, src: Tuple[bytes, int], dst: Tuple[bytes, int], seq: int, flags: int, payload: bytes = b"") -> int:
        segment = tcp(src[1], dst[1], seq, 0, flags, payload)
        if len(src[0]) == 16:
            data = ether(ipv6(segment, src[0], dst[0]), 0x86DD)
        else:
            data = ether(ipv4(segment, src[0], dst[0]))
        self.packets.append((1_700_000_000 * 10**9 + len(self.packets) * 1_000_000, data, None))
        return len(self.packets)

    def file(self) -> io.BytesIO:
        return io.BytesIO(pcap_file(self.packets))

    def records(self, side: str, **options: Any) -> List[Any]:
        from closecodec.capture.records import CloseRecordReader

        with use_backend(side):
            reader = CloseRecordReader(self.file(), **options)
        out = list(reader)
        assert reader.error is None
        return out


class Flow:
    """One TCP connection in a :class:`Capture`: side 0 is the client."""

    def __init__(self, capture: Capture, client_port: int = 50000, server_port: int = 8080,
                 handshake: bool = True, addresses: Tuple[bytes, bytes] = (A4, B4)) -> None:
        self.capture = capture
        self.ends = ((addresses[0], client_port), (addresses[1], server_port))
        self.seq = [1000, 700000]
        if handshake:
            self.flag(0, SYN)
            self.flag(1, SYN | ACK)
            self.flag(0, ACK)

    def endpoint(self, side: int) -> str:
        address, number = self.ends[side]
        if len(address) == 16:
            return f"[{ipaddress.IPv6Address(address)}]:{number}"
        return f"{ipaddress.IPv4Address(address)}:{number}"

    def flag(self, side: int, flags: int) -> int:
        frame = self.capture.add(self.ends[side], self.ends[1 - side], self.seq[side], flags)
        if flags & (SYN | FIN):
            self.seq[side] += 1
        return frame

    def send(self, side: int, data: bytes) -> int:
        frame = self.capture.add(self.ends[side], self.ends[1 - side], self.seq[side], ACK | PSH, data)
        self.seq[side] += len(data)
        return frame

    def skip(self, side: int, size: int) -> None:
        """Bytes the capture missed."""
        self.seq[side] += size


UPGRADE = (b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
SWITCHING = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")


def upgrade(path: bytes = b"/chat", protocol: Optional[bytes] = None) -> Tuple[bytes, bytes]:
    request, response = UPGRADE.replace(b"/chat", path), SWITCHING
    if protocol is not None:
        request = request[:-2] + b"Sec-WebSocket-Protocol: " + protocol + b"\r\n\r\n"
        response = response[:-2] + b"Sec-WebSocket-Protocol: " + protocol + b"\r\n\r\n"
    return request, response


def ws(opcode: int, payload: bytes, mask: Optional[bytes] = None) -> bytes:
    """A WebSocket frame (RFC 6455 §5.2), FIN set, payloads under 126 bytes."""
    assert len(payload) < 126
    if mask is None:
        return bytes([0x80 | opcode, len(payload)]) + payload
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_close(code: Optional[int], reason: bytes = b"", mask: Optional[bytes] = None) -> bytes:
    return ws(8, b"" if code is None else struct.pack(">H", code) + reason, mask)


MASK = bytes.fromhex("37fa213d")


def mqtt_connect(client_id: bytes, version: int = 4) -> bytes:
    """A CONNECT (MQTT 3.1.1 §3.1 / 5.0 §3.1): clean session, keep-alive 60."""
    body = b"\x00\x04MQTT" + bytes([version, 0x02]) + b"\x00\x3c" + (b"\x00" if version == 5 else b"")
    body += struct.pack(">H", len(client_id)) + client_id
    return bytes([0x10, len(body)]) + body


def websocket_flow(capture: Capture, **options: Any) -> Flow:
    flow = Flow(capture, **options)
    request, response = upgrade()
    flow.send(0, request)
    flow.send(1, response)
    flow.send(1, ws(1, b"hello"))
    return flow
