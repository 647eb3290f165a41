"""The segment loop's fast path (lanes) gives exactly what the Python reassembler gives, on both backends.

A reader whose reassembler is not attached to the segment loop
(``helpers.without_lanes``) sends every segment through the reassembler and the
decoding layer in Python; with lanes (what ``CloseRecordReader`` does) the
segment loop feeds in-order bytes of recognised connections to their decoders
itself. Records, statistics and errors must not differ, on the shared
captures, on the benchmark's traffic, and on generated captures with
reordering, retransmissions, losses, ACKs and damaged bytes.
"""

from __future__ import annotations

import io
import struct
import types
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closecodec.capture.records import CloseRecordReader

from helpers import (
    ACK, ALL_CAPTURES, DATA, FIN, MQTT_PORTS, PSH, RST, SYN, backend_module, ether, generate_capture, installed_sides,
    ipv4, pcap_file, tcp, use_backend, without_lanes,
)

SIDES = installed_sides()


def outcome(source: Any, side: str, lanes: bool, **options: Any) -> Tuple[Any, ...]:
    """Everything a reader reports: records (and their JSON form), counters, errors."""
    with use_backend(side):
        reader = CloseRecordReader(source, **options) if lanes else without_lanes(source, **options)
    records = list(reader)
    return (records, [r.to_dict() for r in records], [type(r.value) for r in records], dict(reader.stats),
            reader.errors, dict(reader.skipped), dict(reader.reassembler.stats), repr(reader.error))


def check_same(data: bytes, **options: Any) -> List[Any]:
    results = [outcome(io.BytesIO(data), side, lanes, **options) for side in SIDES for lanes in (True, False)]
    for result in results[1:]:
        assert result == results[0]
    return results[0][0]


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_shared_captures_give_the_same_with_and_without_lanes(name):
    data = (DATA / name).read_bytes()
    assert check_same(data)
    check_same(data, decode_as=MQTT_PORTS)


def test_benchmark_traffic_gives_the_same_with_and_without_lanes(tmp_path: Path):
    path = tmp_path / "traffic.pcap"
    _, closes = generate_capture(path, 400_000, seed=3)
    records = check_same(path.read_bytes())
    assert sum(r.protocol != "tcp" for r in records) == closes
    # A connection table too small for the traffic: eviction order must not change either.
    check_same(path.read_bytes(), max_connections=40)


# -- generated captures -------------------------------------------------------------------

UPGRADE = (b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
SWITCHING = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
MQTT_CONNECT = b"\x10\x10\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x03abc"
LOST = -1  # in a conversation: bytes the capture missed (a hole before what follows)


def ws_frame(opcode: int, payload: bytes, masked: bool) -> bytes:
    head = bytes([0x80 | opcode]) + (bytes([len(payload)]) if len(payload) < 126 else
                                     b"\x7e" + struct.pack(">H", len(payload)))
    if not masked:
        return head + payload
    key = b"\x01\x02\x03\x04"
    return bytes([head[0], head[1] | 0x80]) + head[2:] + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


@st.composite
def conversations(draw: Any) -> List[Tuple[int, int, bytes]]:
    """One connection's application bytes: (side, flags, payload) in sending order, with a TCP end."""
    kind = draw(st.sampled_from(["websocket", "mqtt", "plain"]))
    out: List[Tuple[int, int, bytes]] = [(0, SYN, b""), (1, SYN | ACK, b""), (0, ACK, b"")]
    if kind == "websocket":
        out += [(0, ACK | PSH, UPGRADE), (1, ACK | PSH, SWITCHING)]
    elif kind == "mqtt":
        out += [(0, ACK | PSH, MQTT_CONNECT), (1, ACK | PSH, b"\x20\x03\x00\x00\x00")]
    for _ in range(draw(st.integers(0, 8))):
        side = draw(st.integers(0, 1))
        body = draw(st.binary(max_size=300))
        if kind == "websocket":
            data = ws_frame(draw(st.sampled_from([1, 2, 9])), body, side == 0)
        elif kind == "mqtt":
            data = b"\x30" + bytes([min(len(body), 127)]) + body[:127]
        else:
            data = body
        if draw(st.booleans()):
            data += b"" if kind != "websocket" else ws_frame(8, b"\x03\xe8bye", side == 0)
        out.append((side, ACK | PSH, data))
        if draw(st.booleans()):
            out.append((1 - side, ACK, b""))  # a pure ACK
    if kind == "mqtt" and draw(st.booleans()):
        out.append((0, ACK | PSH, b"\xe0\x01" + bytes([draw(st.sampled_from([0, 4, 0x8E]))])))
    if draw(st.booleans()):
        out.append((draw(st.integers(0, 1)), LOST, bytes(draw(st.integers(1, 50)))))  # bytes never captured
    end = draw(st.sampled_from([FIN, RST, 0]))
    if end:
        first = draw(st.integers(0, 1))
        out.append((first, end | ACK, b""))
        if end == FIN:
            out.append((1 - first, FIN | ACK, b""))
    if draw(st.booleans()):
        out.append((draw(st.integers(0, 1)), ACK, b""))  # a last ACK (after a FIN, or of an open connection)
    return out


@st.composite
def captures(draw: Any) -> bytes:
    """Interleaved connections, cut into segments, with reordering, copies, losses and damage."""
    flows = draw(st.lists(conversations(), min_size=1, max_size=4))
    queues = []
    for n, messages in enumerate(flows):
        seq = [1000 + n * 7919, 2_000_000_000 + n * 104729]
        client, server = (b"\x0a\x00\x00" + bytes([n + 1]), 40000 + n), (b"\x0a\x00\x01\x01", 8080 + n % 2)
        queue = []
        for side, flags, data in messages:
            if flags == LOST:
                seq[side] = (seq[side] + len(data)) % 2**32
                continue
            src, dst = (client, server) if side == 0 else (server, client)
            cuts = sorted(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=2))) if data else []
            for a, b in zip([0] + cuts, cuts + [len(data)]):
                piece = data[a:b]
                if not piece and a:
                    continue
                queue.append((src, dst, seq[side], flags if b == len(data) else ACK | PSH, piece))
                seq[side] = (seq[side] + len(piece) + (1 if flags & (SYN | FIN) and b == len(data) else 0)) % 2**32
        queues.append(queue)
    order: List[Any] = []
    while any(queues):
        queue = draw(st.sampled_from([q for q in queues if q]))
        order.append(queue.pop(0))
    # Damage: swap neighbours, repeat or drop a packet, flip a payload byte.
    for _ in range(draw(st.integers(0, 3))):
        if len(order) < 2:
            break
        i = draw(st.integers(0, len(order) - 2))
        what = draw(st.sampled_from(["swap", "copy", "drop", "flip"]))
        if what == "swap":
            order[i], order[i + 1] = order[i + 1], order[i]
        elif what == "copy":
            order.insert(i + 2, order[i])
        elif what == "drop":
            del order[i]
        elif order[i][4]:
            src, dst, seq, flags, piece = order[i]
            j = draw(st.integers(0, len(piece) - 1))
            order[i] = (src, dst, seq, flags, piece[:j] + bytes([piece[j] ^ 0x5A]) + piece[j + 1:])
    records = []
    for k, (src, dst, seq, flags, piece) in enumerate(order):
        frame = ether(ipv4(tcp(src[1], dst[1], seq, 0, flags, piece), src[0], dst[0]))
        records.append((1_700_000_000 * 10**9 + k * 1000, frame, None))
    return pcap_file(records)


@settings(deadline=None)
@given(captures())
def test_generated_captures_give_the_same_with_and_without_lanes(data: bytes):
    check_same(data, decode_as={8080: "websocket", 8081: "mqtt"})


def test_fins_behind_holes_left_open_to_the_end_of_the_capture_end_at_their_own_frames():
    # Found by the `closes` fuzz harness: FINs behind holes leave both directions open until the
    # end of the capture; the last packet is a pure ACK that the segment loop takes itself. The
    # tcp record is at the first FIN's own frame, not at the capture's last, lanes or not.
    client, server = (b"\x7f\x00\x00\x01", 43639), (b"\x7f\x00\x00\x01", 21883)
    packets = [
        (client, server, 1000, SYN, b""),
        (server, client, 5000, SYN | ACK, b""),
        (client, server, 1001, ACK, b""),
        (client, server, 1001, ACK | PSH, MQTT_CONNECT),
        (server, client, 5001, ACK, b""),
        (client, server, 1001 + len(MQTT_CONNECT) + 22, FIN | ACK, b""),  # 22 bytes never captured
        (server, client, 5021, FIN | ACK, b""),  # 20 bytes never captured
        (client, server, 1001 + len(MQTT_CONNECT) + 23, ACK, b""),
    ]
    frames = [ether(ipv4(tcp(src[1], dst[1], seq, 0, flags, data), src[0], dst[0])) for src, dst, seq, flags, data
              in packets]
    data = pcap_file([(1_700_000_000 * 10**9 + k * 1000, frame, None) for k, frame in enumerate(frames)])
    records = check_same(data)
    assert [(r.frame, r.kind, r.name, r.data_lost) for r in records] == [(6, "tcp_end", "FIN", True)]


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("args", [(2, 0), (0, 4), (0, 2, 1 << 32, 0), (0, 2, -1, 0), (0, 2, 0, -1), (0, 2, 0, 1 << 63)])
def test_lanes_refuse_what_no_reassembler_says_alike_on_both_backends(side, args):
    module = backend_module("capture", side)
    loop = module.SegmentLoop(module.PacketReader(io.BytesIO(b"")), {})
    lane = loop.lane(None, (b"\x01\x02\x03\x04", 1, b"\x05\x06\x07\x08", 2))
    with pytest.raises(ValueError, match="bad "):
        lane.expect(*args)
    lane.expect(1, 2, 0xFFFFFFFF, (1 << 63) - 1)  # the largest values are taken
    assert lane.take_back() == (None, (0xFFFFFFFF, (1 << 63) - 1))


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("direction", [-1, 2])
def test_lanes_refuse_a_direction_that_is_not_0_or_1_alike_on_both_backends(side, direction):
    module = backend_module("capture", side)
    lane = module.SegmentLoop(module.PacketReader(io.BytesIO(b"")), {}).lane(None, (b"\x01" * 4, 1, b"\x02" * 4, 2))
    for call in (lambda: lane.hold(direction), lambda: lane.sink(direction, True), lambda: lane.expect(direction, 1)):
        with pytest.raises(ValueError, match=f"bad direction {direction}"):
            call()


# -- what reaches Python ----------------------------------------------------------------


def one_connection(*connections: List[Tuple[int, int, bytes]]) -> bytes:
    """A capture of connections on one 4-tuple, one after the other: each one's (side, flags, payload)
    in order, one segment each."""
    client, server = (b"\x0a\x00\x00\x01", 40000), (b"\x0a\x00\x01\x01", 8080)
    records = []
    for n, messages in enumerate(connections):
        seq = [1000 + n * 77_777, 2_000_000_000 + n * 99_991]
        for side, flags, data in messages:
            src, dst = (client, server) if side == 0 else (server, client)
            frame = ether(ipv4(tcp(src[1], dst[1], seq[side], 0, flags, data), src[0], dst[0]))
            records.append((1_700_000_000 * 10**9 + len(records) * 1000, frame, None))
            seq[side] = (seq[side] + len(data) + (1 if flags & (SYN | FIN) else 0)) % 2**32
    return pcap_file(records)


class RecordingLoop:
    """A backend's SegmentLoop that notes the kind of every item it hands to Python."""

    def __init__(self, loop: Any, kinds: List[int]) -> None:
        self.loop, self.kinds = loop, kinds

    def lane(self, *args: Any) -> Any:
        return self.loop.lane(*args)

    @property
    def last_segment(self) -> Any:
        return self.loop.last_segment

    @property
    def count(self) -> int:
        return self.loop.count

    def __iter__(self) -> Any:
        for item in self.loop:
            self.kinds.append(item[0])
            yield item


def items_reaching_python(data: bytes, side: str) -> Tuple[List[int], List[Any]]:
    module = backend_module("capture", side)
    with use_backend(side):
        reader = CloseRecordReader(io.BytesIO(data), decode_as={8080: "websocket"})
    kinds: List[int] = []
    names = {name: value for name, value in vars(module).items() if not name.startswith("__")}
    names["SegmentLoop"] = lambda *args: RecordingLoop(module.SegmentLoop(*args), kinds)
    reader._capture = types.SimpleNamespace(**names)
    return kinds, list(reader)


HANDSHAKE = [(0, SYN, b""), (1, SYN | ACK, b""), (0, ACK, b""), (0, ACK | PSH, UPGRADE), (1, ACK, b""),
             (1, ACK | PSH, SWITCHING), (1, ACK | PSH, ws_frame(2, b"first", False)),
             (0, ACK | PSH, ws_frame(2, b"hello", True)), (1, ACK | PSH, ws_frame(2, b"more", False)), (0, ACK, b"")]


@pytest.mark.parametrize("side", SIDES)
def test_python_sees_a_websocket_connection_only_where_it_turns(side):
    # The SYN (0: a segment), the upgrade request and response (2: held bytes), the first server message
    # (1: the Diffusion check), each close frame (1); the server's FIN the loop takes itself, the client's
    # (the connection's end) is Python's. Messages and ACKs never reach Python.
    closes = [(1, ACK | PSH, ws_frame(8, b"\x03\xe8bye", False)), (0, ACK | PSH, ws_frame(8, b"\x03\xe8bye", True)),
              (1, FIN | ACK, b""), (0, ACK, b""), (0, FIN | ACK, b"")]
    data = one_connection(HANDSHAKE + closes)
    kinds, records = items_reaching_python(data, side)
    assert kinds == [0, 2, 2, 1, 1, 1, 0]
    assert [(r.frame, r.kind, r.code) for r in records] == [(11, "ws_close", 1000), (12, "ws_close", 1000)]
    assert records == check_same(data)


@pytest.mark.parametrize("side", SIDES)
def test_a_fin_the_loop_takes_ends_its_direction_at_its_own_frame(side):
    # No close frames: the tcp record is at the first FIN (frame 11, from the server), which the loop took;
    # the reassembler learns of it at the client's FIN (frame 13).
    data = one_connection(HANDSHAKE + [(1, FIN | ACK, b""), (0, ACK, b""), (0, FIN | ACK, b"")])
    kinds, records = items_reaching_python(data, side)
    assert kinds == [0, 2, 2, 1, 0]
    assert [(r.frame, r.kind, r.name, r.src) for r in records] == [(11, "tcp_end", "FIN", "10.0.1.1:8080")]
    assert records == check_same(data)


@pytest.mark.parametrize("side", SIDES)
def test_a_new_connection_on_the_same_four_tuple_gets_its_own_lane(side):
    # The loop remembers recent 4-tuples in front of its table; the second connection's packets must
    # reach its own lane and decoders, not the first one's.
    def closed_with(code: int) -> List[Tuple[int, int, bytes]]:
        body = code.to_bytes(2, "big") + b"bye"
        return HANDSHAKE + [(1, ACK | PSH, ws_frame(8, body, False)), (0, ACK | PSH, ws_frame(8, body, True)),
                            (1, FIN | ACK, b""), (0, FIN | ACK, b""), (1, ACK, b"")]

    data = one_connection(closed_with(1000), closed_with(4001))
    kinds, records = items_reaching_python(data, side)
    assert [(r.stream, r.code) for r in records] == [(0, 1000), (0, 1000), (1, 4001), (1, 4001)]
    assert kinds.count(2) == 4 and records == check_same(data)
