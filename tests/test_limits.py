"""Bounds (DESIGN.md contract 6): hostile input fails cleanly, at once, in memory that stays bounded.

One test per bound, each on both backends. Memory is the peak that tracemalloc
sees during the call. tracemalloc traces every allocation made through
CPython's allocators (PyMem_*, PyObject_*, PyMem_Raw*): the pure backend's
objects, and the compiled backend's too, which allocates only through them
(Cython objects, bytes, and PyMem_Realloc for the streams' buffers; no
.pyx file calls malloc). A plain C malloc in a future change would not be
seen, so the stream tests also check that the peak does include the buffer
they know is there. Peak RSS (resource.getrusage) is not used: ru_maxrss is
the process's lifetime maximum, which earlier tests in the same run have
already set, so it cannot show the growth during one call.

Each bound is stated against the input's size (or the configured limit) and is
far below what the input *claims*, so a missing check fails the test.
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from types import ModuleType
from typing import Any, Callable, Iterator, List, Tuple

import pytest

from closecodec import buffer
from closecodec.capture import (
    DEFAULT_BLOCK_SIZE, DEFAULT_MAX_BUFFER_PER_DIRECTION, DEFAULT_MAX_BUFFER_TOTAL, DEFAULT_MAX_CLOSED,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RECORD, StreamData, StreamEnd, StreamGap, StreamStart, TcpReassembler,
)
from closecodec.capture.records import MAX_HANDSHAKE, CloseRecordReader
from closecodec.errors import IncompleteError, MalformedError, MqttPacketError, WebSocketFrameError

from helpers import ACK, SIDES, SYN, backend_module, ether, ipv4, pcap_file, shb, tcp, use_backend

KiB, MiB = 1 << 10, 1 << 20
#: What a call that fails at once may allocate, whatever its input claims: the
#: exception, its message and traceback, a few small objects.
SMALL = 64 * KiB
#: The largest Int32 length: 2**31-1 as a varint (ff ff ff ff 07).
HUGE_INT32 = bytes.fromhex("ffffffff07")

def measure(call: Callable[[], Any]) -> Tuple[Any, int]:
    """Run ``call``; return its value (or the exception it raised) and the peak traced bytes during it."""
    tracing = tracemalloc.is_tracing()  # e.g. PYTHONTRACEMALLOC: share it, do not stop it
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        outcome = call()
    except Exception as error:
        outcome = error
    peak = tracemalloc.get_traced_memory()[1] - base
    if not tracing:
        tracemalloc.stop()
    return outcome, peak


# -- huge length prefixes ------------------------------------------------------------------

# (what, decoder call, input, offset of the claim). Every claim is 2**31-1 items or
# bytes, on an input of about ten bytes.
def _length_cases(diffusion: ModuleType) -> List[Tuple[str, Callable[[bytes], Any], bytes, int]]:
    pad = b"\x00" * 5
    return [
        ("String", diffusion.decode_string, HUGE_INT32 + pad, 0),
        ("Bytes", diffusion.decode_bytes, HUGE_INT32 + pad, 0),
        ("Collection", lambda b: diffusion.decode_collection(b, 0, diffusion.decode_int32), HUGE_INT32 + pad, 0),
        ("Dictionary", diffusion.decode_string_dict, HUGE_INT32 + pad, 0),
        # A close event's properties: session id 1-2, CLOSE (2), reason 11, then the count.
        ("Dictionary", diffusion.decode_event, b"\x01\x02\x02\x0b" + HUGE_INT32 + pad, 4),
        # An UPDATE event's entries: session id 1-2, UPDATE (1), update type 0, then the count.
        ("UPDATE entries", diffusion.decode_event, b"\x01\x02\x01\x00" + HUGE_INT32 + pad, 4),
        # A batch's event count: conversation id 1, then the count.
        ("event batch", diffusion.decode_event_batch, b"\x01" + HUGE_INT32 + pad, 1),
        # The same inside a whole message: SERVICE_REQUEST, service 82, conversation 1.
        ("event batch", diffusion.decode_message, b"\x00\x52\x01\x01" + HUGE_INT32 + pad, 4),
    ]


@pytest.mark.parametrize("case", range(8))
def test_huge_diffusion_length_prefix_fails_at_once(diffusion, case):
    what, decode, data, at = _length_cases(diffusion)[case]
    outcome, peak = measure(lambda: decode(data))
    # Documented (README, "Lengths and counts"): checked against the rest of the
    # input before anything is allocated, so a valid prefix that ends too soon.
    assert type(outcome) is IncompleteError, outcome
    assert outcome.offset == at and str(outcome) == f"incomplete {what}: the input ends before it does at byte {at}"
    assert peak < SMALL  # a claim of 2 GiB on 10 bytes


@pytest.mark.parametrize("scan", [None, "scan_close_events", "close_event_columns"])
def test_a_batch_claiming_millions_of_events_fails_at_once(diffusion, scan):
    # Two real close events, then nothing: the count (5,000,000, each event at
    # least 4 bytes) cannot fit in the input, so no event is decoded at all.
    event = b"\x01\x02\x02\x0b\x00"
    count = bytes.fromhex("c096b102")  # 5,000,000 as a varint
    assert diffusion.decode_int32(count) == (5_000_000, 4)
    message = b"\x00\x52\x01\x01" + count + event * 2
    if scan == "scan_close_events":
        outcome, peak = measure(lambda: diffusion.scan_close_events(message, properties=False))
    elif scan == "close_event_columns":
        outcome, peak = measure(lambda: diffusion.close_event_columns(message))
    else:
        outcome, peak = measure(lambda: diffusion.decode_message(message))
    assert type(outcome) is IncompleteError and outcome.offset == 4, outcome
    assert peak < SMALL


def test_scanning_very_many_events_builds_only_the_closes(diffusion):
    # 100,000 real OPEN events (6 bytes each) and one CLOSE: a scan walks the
    # OPEN events without building them, so its memory does not follow their number.
    n = 100_000
    opened = b"\x01\x02\x00\x01\x00\x00"  # session 1-2, OPEN, one pair ("", "")
    close = b"\x03\x04\x02\x0b\x00"
    count = diffusion.encode_int32(n + 1)
    message = b"\x00\x52\x01\x01" + count + opened * n + close
    for scan in (diffusion.scan_close_events, diffusion.close_event_columns):
        outcome, peak = measure(lambda: list(scan(message)))
        assert [str(event.session_id) for event in outcome] == ["0000000000000003-0000000000000004"]
        assert peak < len(message) // 4 + SMALL  # building the OPEN events would take ~30x the input


# -- WebSocket and MQTT lengths ---------------------------------------------------------------


def test_websocket_64_bit_length_fails_at_once(websocket):
    frame = bytes.fromhex("827f7fffffffffffffff") + b"x" * 10  # BINARY, length 2**63-1
    outcome, peak = measure(lambda: websocket.decode_ws_frame(frame))
    assert type(outcome) is WebSocketFrameError and outcome.close_code == 1009 and outcome.offset == 2
    assert "payload of 9223372036854775807 bytes is over the 16777216-byte limit" in str(outcome)
    assert peak < SMALL
    # Without a limit, the claim is checked against the input before any copy.
    outcome, peak = measure(lambda: websocket.decode_ws_frame(frame, max_payload=None))
    assert type(outcome) is IncompleteError and outcome.offset == 0 and peak < SMALL
    # A header alone allocates nothing for its payload.
    (header, at), peak = measure(lambda: websocket.decode_ws_header(frame))
    assert header.length == 2**63 - 1 and at == 10 and peak < SMALL
    # The 64-bit length's top bit: malformed (1002) at its first byte.
    outcome, _ = measure(lambda: websocket.decode_ws_frame(bytes.fromhex("827f8000000000000000")))
    assert type(outcome) is WebSocketFrameError and outcome.close_code == 1002 and outcome.offset == 2


@pytest.mark.parametrize("first", [0x30, 0xE0], ids=["PUBLISH", "DISCONNECT"])
def test_mqtt_huge_remaining_length_fails_at_once(mqtt, first):
    packet = bytes([first]) + bytes.fromhex("ffffff7f") + b"x" * 10  # Remaining Length 268,435,455
    outcome, peak = measure(lambda: mqtt.decode_mqtt_packet(packet))
    assert type(outcome) is IncompleteError and outcome.offset == 0 and peak < SMALL
    outcome, peak = measure(lambda: mqtt.decode_mqtt_packet(packet, max_packet_size=MiB))
    assert type(outcome) is MqttPacketError and outcome.reason_code == 0x95 and outcome.offset == 0
    assert "packet of 268435460 bytes is over the 1048576-byte limit" in str(outcome) and peak < SMALL
    # A fifth length byte is malformed (MQTT 5 §1.5.5), at that byte.
    outcome, _ = measure(lambda: mqtt.decode_mqtt_packet(bytes([first]) + bytes.fromhex("ffffffff7f")))
    assert type(outcome) is MqttPacketError and outcome.reason_code == 0x81 and outcome.offset == 4


# -- capture files ---------------------------------------------------------------------------


def _read_all(capture: ModuleType, path: Any, **options: Any) -> int:
    with open(path, "rb") as file:  # a real file: a read of n bytes would allocate n bytes
        reader = capture.PacketReader(file, **options)
        return sum(1 for _ in reader)


@pytest.mark.parametrize("where", ["pcapng block", "pcapng section header", "pcap record"])
def test_capture_record_length_of_4_gb_fails_at_once(capture, tmp_path, where):
    if where == "pcap record":
        data = pcap_file([]) + struct.pack("<IIII", 0, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"\x00" * 64
        at, message = 24 + 8, "pcap packet record of 4294967280 captured bytes is over the 16777216-byte record limit"
    elif where == "pcapng block":
        data = shb() + struct.pack("<II", 6, 0xFFFFFFFC) + b"\x00" * 64
        at, message = len(shb()) + 4, "pcapng block length 4294967292 is over the 16777216-byte record limit"
    else:
        data = struct.pack("<IIIHHq", 0x0A0D0D0A, 0xFFFFFFFC, 0x1A2B3C4D, 1, 0, -1) + b"\x00" * 64
        at, message = 4, "pcapng block length 4294967292 is over the 16777216-byte record limit"
    path = tmp_path / "huge.pcap"
    path.write_bytes(data)
    outcome, peak = measure(lambda: _read_all(capture, path))
    assert type(outcome) is MalformedError and outcome.offset == at, outcome
    assert str(outcome) == f"{message} at byte {at}"
    # Bounded by one read block (DEFAULT_BLOCK_SIZE: the file object's buffer
    # and the reader's block), not by the 4 GB claimed.
    assert peak < 2 * DEFAULT_BLOCK_SIZE + SMALL


# -- a zlib bomb --------------------------------------------------------------------------------


def _bomb(size: int) -> bytes:
    """A zlib stream of ``size`` zero bytes (about 1/1000 of it), compressed a MiB at a time."""
    compressor = zlib.compressobj(9)
    zeros = b"\x00" * MiB
    return b"".join(compressor.compress(zeros) for _ in range(size // MiB)) + compressor.flush()


BOMB_64_MIB = _bomb(64 * MiB)  # ~65 KB


@pytest.mark.parametrize("kind", ["topic value", "service request", "scan"])
@pytest.mark.parametrize("limit", [MiB, 0])
def test_zlib_bomb_stops_at_max_inflated(diffusion, kind, limit):
    if kind == "topic value":  # TOPIC_VALUE (4): the flag always means a zlib body
        decode, message = diffusion.decode_message, b"\x84" + BOMB_64_MIB
    elif kind == "service request":  # SERVICE_REQUEST (0): inflated when the body is zlib
        decode, message = diffusion.decode_message, b"\x80" + BOMB_64_MIB
    else:
        decode, message = diffusion.scan_close_events, b"\x80" + BOMB_64_MIB
    outcome, peak = measure(lambda: decode(message, max_inflated=limit))
    assert type(outcome) is MalformedError and outcome.offset == 1, outcome
    assert str(outcome) == f"compressed message inflates past the {limit}-byte limit at byte 1"
    # The inflated bytes up to the limit (twice: zlib's output blocks, then
    # the bytes they are joined into) and copies of the input; not 64 MiB.
    assert peak < 2 * limit + 4 * len(message) + SMALL


def test_zlib_bomb_default_limit(diffusion):
    message = b"\x84" + _bomb(256 * MiB)
    outcome, peak = measure(lambda: diffusion.decode_message(message))
    assert type(outcome) is MalformedError and outcome.offset == 1
    limit = buffer.DEFAULT_MAX_INFLATED
    assert str(outcome) == f"compressed message inflates past the {limit}-byte limit at byte 1"
    assert limit <= peak < 2 * limit + 4 * len(message) + SMALL  # the peak does see the inflated bytes


def test_max_inflated_must_be_an_int_of_at_least_0(diffusion):
    message = b"\x84" + zlib.compress(b"x")
    with pytest.raises(ValueError, match="max_inflated"):
        diffusion.decode_message(message, max_inflated=-1)
    with pytest.raises(TypeError):
        diffusion.decode_message(message, max_inflated=None)
    assert diffusion.decode_message(message, max_inflated=1).body == b"x"


def test_zlib_bomb_in_a_diffusion_stream(diffusion):
    # One Diffusion message in one unmasked binary WebSocket frame: the diffusion
    # fails with the decoder's error at the WebSocket message's offset (its
    # first frame's first byte), the text saying where in the message.
    message = b"\x84" + BOMB_64_MIB
    assert 125 < len(message) < 65536
    frame = b"\x82\x7e" + struct.pack(">H", len(message)) + message
    decoder = diffusion.DiffusionStream(connection_response=False, max_inflated=MiB)
    outcome, peak = measure(lambda: decoder.feed(frame))
    assert type(outcome) is MalformedError and outcome.offset == 0, outcome
    assert str(outcome) == ("Diffusion message: compressed message inflates past the 1048576-byte limit "
                            "(byte 1 of the message) at byte 0")
    assert peak < 2 * MiB + 4 * len(frame) + SMALL


# -- streams ----------------------------------------------------------------------------------


def _fragments(size: int) -> Iterator[bytes]:
    """A BINARY message that never ends: a first fragment, then continuations, none with FIN."""
    payload = b"\xab" * size
    yield b"\x02\x7e" + struct.pack(">H", size) + payload
    while True:
        yield b"\x00\x7e" + struct.pack(">H", size) + payload


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("room, kind", [("websocket", "WebSocketStream"), ("diffusion", "DiffusionStream")])
def test_never_ending_fragmented_message_fails_past_max_message_size(room, kind, side):
    limit, size = MiB, 60_000
    decoder = getattr(backend_module(room, side), kind)(max_message_size=limit)
    sent = 0

    def feed() -> None:
        nonlocal sent
        for fragment in _fragments(size):
            if sent > 8 * limit:
                return  # unbounded: everything was taken
            decoder.feed(fragment)
            sent += len(fragment)

    outcome, peak = measure(feed)
    crossing = limit // size + 1  # the fragment whose header takes the message past the limit
    assert type(outcome) is WebSocketFrameError and outcome.close_code == 1009, outcome
    assert outcome.offset == (crossing - 1) * (size + 4) + 2  # its length field
    assert str(outcome) == (f"payload reaches {crossing * size} bytes, over the {limit}-byte limit "
                            f"at byte {outcome.offset}")
    assert sent == (crossing - 1) * (size + 4)  # every fragment before it was taken
    # The message buffer, and no more: the stream held at most the limit.
    assert limit // 2 < peak < 2 * limit + 4 * size + SMALL
    # Errors are final: more bytes are refused, not taken.
    position = decoder.position
    with pytest.raises(WebSocketFrameError):
        decoder.feed(b"\x00" * size)
    assert decoder.position == position


def test_a_frame_claiming_2_63_bytes_fails_a_stream_at_once(websocket):
    decoder = websocket.WebSocketStream()
    outcome, peak = measure(lambda: decoder.feed(bytes.fromhex("827f7fffffffffffffff") + b"x" * 100))
    assert type(outcome) is WebSocketFrameError and outcome.close_code == 1009 and outcome.offset == 2
    assert peak < SMALL


@pytest.mark.parametrize("first", [0x30, 0xE0], ids=["PUBLISH", "DISCONNECT"])
@pytest.mark.parametrize("keep_bodies", [False, True])
def test_mqtt_stream_with_a_huge_remaining_length_fails_at_once(mqtt, first, keep_bodies):
    decoder = mqtt.MqttStream(keep_bodies=keep_bodies)  # max_packet_size: 16 MiB
    outcome, peak = measure(lambda: decoder.feed(bytes([first]) + bytes.fromhex("ffffff7f") + b"x" * 100))
    assert type(outcome) is MqttPacketError and outcome.reason_code == 0x95 and outcome.offset == 0, outcome
    assert "packet of 268435460 bytes is over the 16777216-byte limit" in str(outcome)
    assert peak < SMALL


def vbi(value: int) -> bytes:
    """MQTT's Variable Byte Integer (MQTT 5 §1.5.5)."""
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_mqtt_stream_skips_a_large_packet_without_buffering_it(mqtt):
    # A 200 MB PUBLISH within a raised limit: its body is skipped, not buffered.
    size = 200_000_000
    decoder = mqtt.MqttStream(max_packet_size=256 * MiB)
    chunk = b"\x00" * (256 * KiB)

    def feed() -> list:
        values = decoder.feed(b"\x30" + vbi(size))
        sent = 0
        while sent + len(chunk) <= size:
            values += decoder.feed(chunk)
            sent += len(chunk)
        values += decoder.feed(chunk[:size - sent] + b"\xe0\x00")
        return values

    outcome, peak = measure(feed)
    assert [type(value).__name__ for value in outcome] == ["MqttOtherPacket", "MqttDisconnect"], outcome
    assert peak < 4 * len(chunk) + SMALL


# -- TCP reassembly in captures ----------------------------------------------------------------

CLIENT, SERVER = (bytes([10, 0, 0, 1]), 40000), (bytes([10, 0, 0, 2]), 80)


def _packet(seq: int, payload: bytes = b"", flags: int = ACK, client: Tuple[bytes, int] = CLIENT) -> bytes:
    return ether(ipv4(tcp(client[1], SERVER[1], seq, flags=flags, payload=payload), src=client[0], dst=SERVER[0]))


def _events(capture: ModuleType, path: Any, reassembler: TcpReassembler, block_size: int,
            on_event: Callable[[Any], None]) -> None:
    """TcpStreamReader's loop over one capture backend: read, parse, reassemble."""
    with open(path, "rb") as file:
        for packet in capture.PacketReader(file, block_size=block_size):
            segment = capture.parse_packet(packet.data, packet.link_type)
            assert type(segment) is not str, segment
            for event in reassembler.add(packet.frame, packet.timestamp_ns, segment):
                on_event(event)
    for event in reassembler.finish():
        on_event(event)


def test_a_tcp_stream_that_never_resynchronises_becomes_gaps_in_bounded_memory(capture, tmp_path):
    # 6,000 segments of 1,400 bytes (8.4 MB) after a SYN; every 10th segment is
    # lost, so a hole is always open and nothing after it can be delivered
    # until the direction's buffer limit gives up on the hole.
    size, count, limit, block = 1400, 6000, 256 * KiB, 256 * KiB
    records = [(0, _packet(0, flags=SYN), None)]
    lost = 0
    for i in range(count):
        if i % 10 == 3:
            lost += size
            continue
        records.append((i, _packet(1 + i * size, bytes([i % 251]) * size), None))
    path = tmp_path / "holes.pcap"
    path.write_bytes(pcap_file(records))
    reassembler = TcpReassembler(max_buffer_per_direction=limit)
    seen = {"data": 0, "gaps": 0, "gap_bytes": 0, "next": 0, "max_buffered": 0, "ends": []}

    def on_event(event: Any) -> None:
        kind = type(event)
        if kind is StreamData or kind is StreamGap:
            assert event.offset == seen["next"]  # contiguous: a gap, then the held data, intact
            seen["next"] = event.end
            if kind is StreamData:
                seen["data"] += len(event.data)
                assert bytes(event.data[:1]) == bytes([event.offset // size % 251])
            else:
                seen["gaps"] += 1
                seen["gap_bytes"] += event.length
        elif kind is StreamEnd:
            seen["ends"].append(event.reason)
        seen["max_buffered"] = max(seen["max_buffered"], reassembler.buffered)

    outcome, peak = measure(lambda: _events(capture, path, reassembler, block, on_event))
    assert outcome is None, outcome
    assert seen["gaps"] == count // 10 and seen["gap_bytes"] == lost  # exactly the lost segments
    assert seen["data"] == count * size - lost and seen["ends"] == ["eof", "eof"]
    assert seen["max_buffered"] <= limit and reassembler.buffered == 0
    # A few read blocks (the file's read, the reader's joined block) and the
    # direction's buffer, not the 8.4 MB stream.
    assert peak < 3 * block + 2 * limit + 2 * SMALL, peak


def _half_open(path: Any, n: int) -> None:
    """``n`` connections that send a SYN and nothing else, from distinct client addresses and ports."""
    records = []
    for i in range(n):
        client = (bytes([10, 1, i >> 8 & 0xFF, i & 0xFF]), 1024 + i % 60000)
        records.append((i, _packet(1000, flags=SYN, client=client), None))
    path.write_bytes(pcap_file(records))


@pytest.mark.parametrize("layer", ["streams", "close records"])
def test_thousands_of_half_open_connections_are_evicted_in_bounded_memory(capture, tmp_path, layer):
    n, limit, block = 20_000, 500, 256 * KiB
    path = tmp_path / "syns.pcap"
    _half_open(path, n)
    if layer == "streams":
        reassembler = TcpReassembler(max_connections=limit, max_closed=limit)
        counts = {StreamStart: 0, StreamEnd: 0}

        def run() -> None:
            def on_event(event: Any) -> None:
                counts[type(event)] += 1
                assert reassembler.open_connections <= limit

            _events(capture, path, reassembler, block, on_event)
    else:
        with use_backend(capture.__name__.rpartition("._")[2]):
            reader = CloseRecordReader(str(path), block_size=block, max_connections=limit, max_closed=limit)
        reassembler = reader.reassembler

        def run() -> None:
            assert list(reader) == []  # no connection closed: no record

    outcome, peak = measure(run)
    assert outcome is None, outcome
    assert reassembler.stats["evicted"] == n - limit
    if layer == "streams":
        assert counts == {StreamStart: n, StreamEnd: 2 * n}  # both directions: evicted, or eof at the end
    else:
        assert reader.stats["connections"] == n and reader.stats["websocket"] == 0
    # A few KiB per tracked connection (open or closed), and one read block;
    # 20,000 connections held would take ~40x the limit's worth.
    assert peak < 2 * block + 2 * limit * 4 * KiB + SMALL, peak


def _size(text: str) -> int:
    """A default as the docs write it ("16 MiB (...)", "64 KiB per direction", "65,536"): bytes or a count."""
    number, _, unit = text.replace(",", "").partition(" ")
    return int(number) * {"MiB": MiB, "KiB": KiB}.get(unit.split(" ")[0], 1)


def test_documented_defaults():
    """The defaults in docs/robustness.md's limits table are the ones in code."""
    import re
    from pathlib import Path

    import closecodec

    doc = (Path(__file__).resolve().parent.parent / "docs" / "robustness.md").read_text()
    limits = doc[doc.index("\n## Limits"):]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", limits, re.M))
    assert {name: _size(default) for name, default in rows.items()} == {
        "max_inflated": buffer.DEFAULT_MAX_INFLATED,
        "max_payload": closecodec.DEFAULT_MAX_WS_PAYLOAD,
        "max_message_size": closecodec.DEFAULT_MAX_MESSAGE_SIZE,
        "max_packet_size": closecodec.DEFAULT_MAX_MESSAGE_SIZE,
        "block_size": DEFAULT_BLOCK_SIZE,
        "max_record": DEFAULT_MAX_RECORD,
        "max_connections": DEFAULT_MAX_CONNECTIONS,
        "max_buffer_per_direction": DEFAULT_MAX_BUFFER_PER_DIRECTION,
        "max_buffer_total": DEFAULT_MAX_BUFFER_TOTAL,
        "max_closed": DEFAULT_MAX_CLOSED,
        "MAX_HANDSHAKE": MAX_HANDSHAKE,
    }
