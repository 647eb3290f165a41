"""TCP reassembly: order, retransmission, overlap, gaps, ends, limits; and the real captures' close frames."""

from __future__ import annotations

import io
import ipaddress
import json
from typing import Dict, List, Tuple

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from closecodec.capture import reassembly as capture
from closecodec.capture import (
    FrameIndex, StreamData, StreamEnd, StreamGap, StreamStart, TcpConnection, TcpReassembler, TcpStreamReader,
)
from closecodec.frames import TcpSegment

from helpers import A4, ACK, B4, DATA, FIN, RST, SYN, ether, ipv4, pcap_file, tcp

C, S = (A4, 40000), (B4, 80)


def seg(seq: int, payload: bytes = b"", flags: int = ACK, client: bool = True, missing: int = 0) -> TcpSegment:
    src, dst = (C, S) if client else (S, C)
    return TcpSegment(src[0], src[1], dst[0], dst[1], seq % 2**32, 0, flags, memoryview(payload), missing)


def run(segments, **limits) -> List:
    r = TcpReassembler(**limits)
    events = []
    for frame, s in enumerate(segments, 1):
        events += r.add(frame, frame * 1000, s)
    return events + r.finish()


def stream_of(events, direction=0) -> Tuple[bytes, List]:
    """The bytes of a direction (gaps as '?' bytes), checking offsets are contiguous."""
    out = bytearray()
    kinds = []
    for e in events:
        if type(e) in (StreamData, StreamGap, StreamEnd) and e.direction == direction:
            assert e.offset == len(out), (e, len(out))
            if type(e) is StreamData:
                out += bytes(e.data)
            elif type(e) is StreamGap:
                out += b"?" * e.length
            kinds.append(type(e).__name__ if type(e) is not StreamEnd else e.reason)
    return bytes(out), kinds


@st.composite
def segmented(draw, min_size=1):
    data = draw(st.binary(min_size=min_size, max_size=300))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=12))))
    bounds = [0] + [c for c in cuts if c < len(data)] + [len(data)]
    pieces = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    isn = draw(st.sampled_from([0, 1000, 2**32 - 5, 2**31 - 1, 2**32 - 1]))
    return data, pieces, isn


@given(case=segmented(), order=st.randoms(use_true_random=False), extra=st.lists(
    st.tuples(st.integers(0, 299), st.integers(1, 60)), max_size=6), duplicate=st.lists(st.integers(0, 20), max_size=5))
def test_any_order_duplication_and_overlap_reassembles_the_stream(case, order, extra, duplicate):
    data, pieces, isn = case
    base = isn + 1
    segments = [seg(base + a, data[a:b]) for a, b in pieces]
    segments += [segments[i % len(segments)] for i in duplicate]
    segments += [seg(base + a, data[a:a + n]) for a, n in extra if a < len(data)]  # overlapping, same bytes
    order.shuffle(segments)
    segments = [seg(isn, flags=SYN)] + segments + [seg(base + len(data), flags=FIN | ACK)]
    events = run(segments)
    got, kinds = stream_of(events)
    assert got == data
    assert kinds[-1] == "fin" and "StreamGap" not in kinds


@given(case=segmented(), order=st.randoms(use_true_random=False))
def test_bytes_that_waited_are_delivered_at_the_frame_that_filled_the_hole(case, order):
    data, pieces, isn = case
    base = isn + 1
    order.shuffle(pieces)
    segments = [seg(isn, flags=SYN)] + [seg(base + a, data[a:b]) for a, b in pieces]
    events = run(segments)
    # Frame 1 is the SYN; piece i arrives in frame i + 2. A byte is in order once every byte before
    # it has arrived: at the latest frame among the pieces up to and including its own.
    arrival = {}
    for frame, (a, b) in enumerate(pieces, 2):
        for offset in range(a, b):
            arrival[offset] = frame
    for event in events:
        if type(event) is StreamData:
            completed = max(arrival[offset] for offset in range(0, event.end))
            assert event.frame == completed, (event, pieces)


@given(case=segmented(min_size=3), order=st.randoms(use_true_random=False), drop=st.integers(0, 100),
       limit=st.sampled_from([None, 1, 100, 10**6]))
def test_a_dropped_segment_is_a_gap_of_its_size_and_the_rest_is_intact(case, order, drop, limit):
    data, pieces, isn = case
    assume(len(pieces) >= 2)
    dropped = 1 + drop % (len(pieces) - 1)  # never the first: it carries offset 0 after the SYN
    a, b = pieces[dropped]
    base = isn + 1
    kept = [seg(base + x, data[x:y]) for i, (x, y) in enumerate(pieces) if i != dropped]
    order.shuffle(kept)
    limits = {} if limit is None else {"max_buffer_per_direction": limit}
    events = run([seg(isn, flags=SYN)] + kept + [seg(base + len(data), flags=FIN | ACK)], **limits)
    got, kinds = stream_of(events)
    gaps = [e for e in events if type(e) is StreamGap]
    assert kinds[-1] == "fin" and len(got) == len(data)
    if limit is None or limit >= 10**6:
        # Room to wait: exactly the dropped bytes are lost.
        assert [(g.offset, g.length) for g in gaps] == [(a, b - a)]
        assert got == data[:a] + b"?" * (b - a) + data[b:]
    else:
        # A small buffer also gives up on bytes that were only late: every
        # delivered byte is still the right one, and the dropped ones are in gaps.
        lost = {i for g in gaps for i in range(g.offset, g.end)}
        assert set(range(a, b)) <= lost
        assert all(got[i] == data[i] for i in range(len(data)) if i not in lost)


def test_first_seen_bytes_win_on_overlap():
    events = run([seg(0, flags=SYN), seg(1, b"abcd"), seg(3, b"XYZW"), seg(9, b"late"), seg(5, b"1234")])
    got, kinds = stream_of(events)
    assert got == b"abcdZW34late"  # "XYZW" lands at 2..5, "1234" at 4..7
    assert kinds[-1] == "eof"


def test_mid_stream_start_and_sequence_wraparound():
    events = run([seg(2**32 - 3, b"abc"), seg(0, b"def"), seg(3, b"ghi"), seg(2**32 - 3, b"abc")])
    assert stream_of(events)[0] == b"abcdefghi"
    assert type(events[0]) is StreamStart and events[0].connection.client == A4


def test_syn_ack_first_makes_the_sender_the_server():
    events = run([seg(100, flags=SYN | ACK, client=False), seg(101, b"hi", client=False), seg(7, b"yo")])
    connection = events[0].connection
    assert (connection.client, connection.client_port, connection.server_port) == (A4, 40000, 80)
    assert stream_of(events, 1)[0] == b"hi" and stream_of(events, 0)[0] == b"yo"
    assert str(connection) == "stream 0: 10.0.0.1:40000 -> 10.0.0.2:80"


def test_endpoint_text_for_more_addresses_than_are_remembered():
    # Endpoint text keeps the text of recent addresses: it stays right past that memory's size,
    # for both IP versions and for an address given as a bytearray (a user's own TcpConnection).
    for n in range(2 * capture._ADDRESS_TEXT_SIZE + 3):
        v4, v6 = n.to_bytes(4, "big"), (n * 0x1_0001_0001).to_bytes(16, "big")
        connection = TcpConnection(n, v4, 1 + n % 65535, bytearray(v6), 443)
        assert connection.endpoint(0) == (f"{ipaddress.ip_address(v4)}:{1 + n % 65535}",
                                          f"[{ipaddress.ip_address(v6)}]:443")
        assert len(capture._ADDRESS_TEXT) <= capture._ADDRESS_TEXT_SIZE


def test_fin_waits_for_the_hole_before_it():
    # The end comes once the hole fills (frame 3), and carries the FIN's own frame and time (frame 2).
    events = run([seg(0, flags=SYN), seg(4, b"def", flags=FIN | ACK), seg(1, b"abc")])
    ends = [e for e in events if type(e) is StreamEnd and e.direction == 0]
    assert stream_of(events)[0] == b"abcdef" and ends[0].reason == "fin"
    assert (ends[0].frame, ends[0].timestamp_ns) == (2, 2000)
    # A hole that never fills: a gap, then the FIN end, at the FIN's frame still (not the last one).
    events = run([seg(0, flags=SYN), seg(4, b"def", flags=FIN | ACK), seg(0, flags=ACK, client=False)])
    assert stream_of(events) == (b"???def", ["StreamGap", "StreamData", "fin"])
    ends = [e for e in events if type(e) is StreamEnd and e.direction == 0]
    assert (ends[0].frame, ends[0].timestamp_ns) == (2, 2000)


def test_rst_ends_both_directions_and_late_packets_are_absorbed():
    r = TcpReassembler()
    events = r.add(1, 0, seg(0, flags=SYN)) + r.add(2, 0, seg(1, b"abc")) + r.add(3, 0, seg(0, flags=RST, client=False))
    ends = [(e.direction, e.reason, e.offset) for e in events if type(e) is StreamEnd]
    assert ends == [(0, "rst", 3), (1, "rst", 0)]
    assert r.add(4, 0, seg(4, b"more")) == [] and r.stats["after_close"] == 1
    # A new SYN on the same 4-tuple is a new connection.
    events = r.add(5, 0, seg(5000, flags=SYN))
    assert type(events[0]) is StreamStart and events[0].connection.stream == 1


def test_reused_four_tuple_ends_the_old_connection():
    events = run([seg(0, flags=SYN), seg(1, b"old"), seg(9000, flags=SYN), seg(9001, b"new")])
    reasons = [(e.connection.stream, e.reason) for e in events if type(e) is StreamEnd]
    assert reasons[:2] == [(0, "reused"), (0, "reused")] and (1, "eof") in reasons


def test_snaplen_cut_bytes_are_a_gap():
    events = run([seg(0, flags=SYN), seg(1, b"ab", missing=3), seg(6, b"cd")])
    assert stream_of(events)[0] == b"ab???cd"


def test_connection_limit_evicts_the_least_recently_active():
    r = TcpReassembler(max_connections=2)
    events = []
    for port in (1, 2, 1, 3):
        events += r.add(port, 0, TcpSegment(A4, port, B4, 80, 0, 0, ACK, memoryview(b"x"), 0))
    evicted = [e for e in events if type(e) is StreamEnd]
    assert {e.connection.client_port for e in evicted} == {2} and {e.reason for e in evicted} == {"evicted"}
    assert r.stats["evicted"] == 1 and r.open_connections == 2


def test_eviction_order_survives_many_connections_that_come_and_go():
    # Hundreds of short connections end (RST) between the activity of two long ones: the least
    # recently active of those still open is the one evicted, however many have come and gone.
    r = TcpReassembler(max_connections=3)

    def packet(port: int, flags: int = ACK) -> List:
        return r.add(0, 0, TcpSegment(A4, port, B4, 80, 0, 0, flags, memoryview(b"x"), 0))

    packet(1)
    packet(2)
    for port in range(100, 600):
        packet(port)
        packet(port, RST)
        if port % 7 == 0:
            packet(1 if port % 2 else 2)  # 1 and 2 take turns at being the most recently active
    last_touched = 1 if 595 % 2 else 2
    packet(3)
    evicted = [e.connection.client_port for e in packet(4) if type(e) is StreamEnd]
    assert evicted == [3 - last_touched] * 2
    assert r.stats["evicted"] == 1 and r.open_connections == 3


def test_total_buffer_limit_skips_holes():
    r = TcpReassembler(max_buffer_total=500)
    events = []
    for port in range(1, 6):
        events += r.add(port, 0, TcpSegment(A4, port, B4, 80, 0, 0, ACK, memoryview(b"a"), 0))
        events += r.add(port, 0, TcpSegment(A4, port, B4, 80, 100, 0, ACK, memoryview(b"b" * 200), 0))
    assert r.buffered <= 500
    assert [e.connection.client_port for e in events if type(e) is StreamGap] == [1, 2, 3, 4]


def test_limits_are_checked():
    with pytest.raises(ValueError):
        TcpReassembler(max_connections=0)
    with pytest.raises(TypeError):
        TcpReassembler(max_buffer_total="1")


def test_frame_index():
    index = FrameIndex()
    events = run([seg(0, flags=SYN), seg(1, b"abc"), seg(4, b"defg")])
    for e in events:
        if type(e) is StreamData:
            index.add(e)
    assert index.frame_at(2) == (2, 2000) and index.frame_at(3) == (3, 3000) and index.frame_at(6)[0] == 3
    with pytest.raises(KeyError):
        index.frame_at(7)
    index.forget_before(3)
    assert len(index) == 1


# -- the real captures -------------------------------------------------------------------


def reassemble(name: str):
    reader = TcpStreamReader(DATA / name)
    streams: Dict[Tuple[int, int], bytearray] = {}
    indexes: Dict[Tuple[int, int], FrameIndex] = {}
    connections = {}
    ends = []
    for e in reader:
        if type(e) is StreamStart:
            connections[e.connection.stream] = e.connection
            continue
        key = (e.connection.stream, e.direction)
        if type(e) is StreamData:
            streams.setdefault(key, bytearray()).extend(e.data)
            indexes.setdefault(key, FrameIndex()).add(e)
        elif type(e) is StreamGap:
            raise AssertionError(f"unexpected gap {e}")
        else:
            ends.append(e)
    assert reader.error is None and not reader.skipped
    return streams, indexes, connections, ends


def direction_of(connection, src: str) -> int:
    return 0 if connection.endpoint(0)[0] == src else 1


@pytest.mark.parametrize("capture_name, truth_name", [
    ("websocket-close-codes.pcapng", "transport-close-frames.json"),
    ("mqtt5-session-takeover.pcapng", "transport-close-frames.json"),
    ("websocket-close-codes.pcap", "websocket-close-codes.pcap.closes.jsonl"),
])
def test_every_close_frame_is_in_its_stream_and_ends_in_its_frame(capture_name, truth_name):
    streams, indexes, connections, ends = reassemble(capture_name)
    if truth_name.endswith(".json"):
        rows = [r for r in json.loads((DATA / truth_name).read_text())["frames"]
                if r["capture"] == capture_name]
        payloads = {r["frame"]: bytes.fromhex(r["tcp_payload_hex"]) for r in rows}
    else:
        rows = [json.loads(line) for line in (DATA / truth_name).open()]
        frames = json.loads((DATA / "transport-close-frames.json").read_text())["frames"]
        payloads = {r["frame"]: bytes.fromhex(r["tcp_payload_hex"]) for r in frames
                    if r["capture"] == "websocket-close-codes.pcapng"}
    assert rows
    for row in rows:
        matches = [c for c in connections.values() if set(c.endpoint(0)) == {row["src"], row["dst"]}]
        assert len(matches) == 1, row
        connection = matches[0]
        key = (connection.stream, direction_of(connection, row["src"]))
        payload = payloads[row["frame"]]
        at = bytes(streams[key]).find(payload)
        assert at >= 0, row
        assert indexes[key].frame_at(at + len(payload) - 1)[0] == row["frame"]
        if "tcp_stream" in row:
            assert connection.stream == row["tcp_stream"]
    assert all(e.reason in ("fin", "rst") for e in ends)


def test_tcp_stream_numbers_match_tshark():
    for name in ("mqtt5-session-takeover.pcapng", "websocket-close-codes.pcap"):
        _, _, connections, _ = reassemble(name)
        for line in (DATA / f"{name}.closes.jsonl").open():
            row = json.loads(line)
            assert set(connections[row["tcp_stream"]].endpoint(0)) == {row["src"], row["dst"]}


def test_pcap_and_pcapng_reassemble_to_the_same_streams():
    a = reassemble("websocket-close-codes.pcap")
    b = reassemble("websocket-close-codes.pcapng")
    assert a[0] == b[0] and a[2] == b[2]


def test_a_truncated_capture_ends_its_connections_with_eof():
    data = (DATA / "websocket-close-codes.pcap").read_bytes()[:20000]
    reader = TcpStreamReader(io.BytesIO(data))
    events = list(reader)
    assert reader.error is not None and reader.error.offset < 20000
    assert any(type(e) is StreamEnd and e.reason == "eof" for e in events)


def test_segments_split_in_a_synthetic_capture_map_to_the_last_frame():
    # A close frame split over two segments is attributed to the second.
    records = [(1000, ether(ipv4(tcp(40000, 80, 0, flags=SYN))), None),
               (2000, ether(ipv4(tcp(40000, 80, 1, payload=b"\x88\x02"))), None),
               (3000, ether(ipv4(tcp(40000, 80, 3, payload=b"\x03\xe8"))), None)]
    index = FrameIndex()
    for e in TcpStreamReader(io.BytesIO(pcap_file(records))):
        if type(e) is StreamData:
            index.add(e)
    assert index.frame_at(3) == (3, 3000) and index.frame_at(1) == (2, 2000)
