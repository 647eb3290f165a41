"""Close records (closecodec.capture.records): the shared captures against tshark, and synthetic captures.

Truth: every capture copied in tests/data has tshark 4.0.17's decoding of its close
frames next to it (``*.closes.jsonl``, ``*.truth.jsonl``; field meanings in the
project's shared captures README, and tests/data/README.md). Our records must name
the same frames, endpoints, codes and reasons, on both backends, and there must be
no WebSocket or MQTT record that tshark does not have.

How our record fields map onto tshark's:

- ``code``: ``websocket.payload.close.status_code`` (``ws_status_code``), None for an
  empty close payload (tshark shows none); ``mqtt.disconnect.reason_code``
  (``mqtt_reason_code``), None for a DISCONNECT with Remaining Length 0 (MQTT 3.1.1,
  or MQTT 5's two-byte short form, whose implied 0x00 is kept in ``name``:
  ``NORMAL_DISCONNECTION``).
- ``reason``: tshark shows ``websocket.payload.close.reason`` only when the close
  payload has bytes after the code. Our rule: the reason text, or None when it is
  empty (a payload of just the code, or no payload), so ``reason`` is exactly
  ``ws_reason``, null included. For MQTT, ``reason`` is the Reason String property
  (0x1F), None without one: exactly ``mqtt_reason_string``.
- ``mqtt_version``: from the connection's CONNECT, as tshark's ``mqtt.ver`` of the
  CONNECT in the same TCP stream. We recognise MQTT by that CONNECT on any port,
  so the MQTT capture needs no ``decode_as`` (tshark needs ``-d tcp.port==...,mqtt``);
  giving the same ports as ``decode_as`` changes nothing.
- ``frame``/``timestamp_ns``: the frame holding the close's last byte, and its time
  to the nanosecond (tshark's ``frame.time_epoch`` digits).

The tshark test at the end runs tshark itself (when installed) with the commands
of the shared captures README and compares in the same way.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
import struct
import subprocess
from collections import Counter, defaultdict
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closecodec import (
    AbortNotification, CloseClientRequest, CloseEvent, CloseRequest, ConnectionResponse, MqttConnack, MqttDisconnect,
    SessionId, WebSocketClose,
)
from closecodec.capture.records import CloseRecord, CloseRecordReader, close_records, parse_decode_as
from closecodec.errors import IncompleteError, MalformedError

from helpers import (
    A6, ACK, ALL_CAPTURES, B6, DATA, DIFFUSION_CAPTURE, FIN, MASK, MQTT_CAPTURE, MQTT_PORTS, PSH, RST, UPGRADE,
    WS_CAPTURES, Capture, Flow, compiled_missing, installed_sides, mqtt_connect, tool_env, upgrade, use_backend,
    websocket_flow, ws, ws_close,
)

@functools.lru_cache(maxsize=None)
def records_of(name: str, side: str, decode_as: Tuple[Tuple[int, str], ...] = ()) -> Tuple[CloseRecord, ...]:
    with use_backend(side):
        reader = CloseRecordReader(DATA / name, decode_as=dict(decode_as) or None)
    with reader:
        out = tuple(reader)
        assert reader.error is None
        assert not reader.errors, reader.errors
    return out


def truth_of(name: str) -> List[Dict[str, Any]]:
    suffix = ".truth.jsonl" if name == DIFFUSION_CAPTURE else ".closes.jsonl"
    return [json.loads(line) for line in (DATA / (name + suffix)).open(encoding="utf-8")]


def epoch_ns(text: str) -> int:
    """tshark's ``frame.time_epoch`` text (``"1795626857.962186000"``) as integer ns."""
    seconds, _, fraction = text.partition(".")
    return int(seconds) * 10**9 + int(fraction.ljust(9, "0")[:9])


def port(endpoint: str) -> int:
    return int(endpoint.rpartition(":")[2])


# The names RFC 6455 §7.4.1 / the IANA registry give the codes in the captures.
WS_NAMES = {
    1000: "NORMAL_CLOSURE", 1001: "GOING_AWAY", 1002: "PROTOCOL_ERROR", 1003: "UNSUPPORTED_DATA",
    1007: "INVALID_PAYLOAD_DATA", 1008: "POLICY_VIOLATION", 1009: "MESSAGE_TOO_BIG", 1010: "MANDATORY_EXTENSION",
    1011: "INTERNAL_ERROR", 1012: "SERVICE_RESTART", 1013: "TRY_AGAIN_LATER", 1014: "BAD_GATEWAY",
}
# MQTT 5.0 §3.14.2.1 names of the DISCONNECT reason codes in the capture.
MQTT_NAMES = {
    0x00: "NORMAL_DISCONNECTION", 0x04: "DISCONNECT_WITH_WILL_MESSAGE", 0x81: "MALFORMED_PACKET",
    0x82: "PROTOCOL_ERROR", 0x83: "IMPLEMENTATION_SPECIFIC_ERROR", 0x8E: "SESSION_TAKEN_OVER",
    0x95: "PACKET_TOO_LARGE", 0x9A: "RETAIN_NOT_SUPPORTED", 0x9B: "QOS_NOT_SUPPORTED",
}


def ws_name(code: Optional[int]) -> str:
    if code is None:
        return "NO_STATUS_RECEIVED"
    if 3000 <= code <= 3999:
        return "REGISTERED"
    if 4000 <= code <= 4999:
        return "PRIVATE_USE"
    return WS_NAMES[code]


# -- truth: the shared captures ------------------------------------------------------


@pytest.mark.parametrize("name", WS_CAPTURES)
def test_websocket_closes_are_tsharks(side, name):
    records = records_of(name, side)
    truth = truth_of(name)
    assert len(truth) == 68
    ours = [(r.frame, r.timestamp_ns, r.src, r.dst, r.protocol, r.kind, r.code, r.reason) for r in records]
    theirs = [(t["frame"], epoch_ns(t["epoch"]), t["src"], t["dst"], "websocket", "ws_close", t["ws_status_code"],
               t["ws_reason"]) for t in truth]
    # Every connection here ends with close frames: no other record, nothing tshark lacks.
    assert ours == theirs
    for record, row in zip(records, truth):
        assert record.name == ws_name(row["ws_status_code"])
        assert record.stream == row["tcp_stream"]
        assert record.session_id is None and record.mqtt_version is None and record.properties == ()
        assert record.application == "websocket" and record.data_lost is False
        # Clients mask, servers do not (RFC 6455 §5.1): the direction follows.
        assert record.direction == ("client_to_server" if row["ws_masked"] else "server_to_client")
        assert type(record.value) is WebSocketClose
        assert record.value.masked is row["ws_masked"]
        key = record.value.mask_key
        assert (key.hex() if key is not None else None) == row["ws_masking_key"]
        assert record.time == pytest.approx(epoch_ns(row["epoch"]) / 1e9, abs=1e-6)


def test_pcap_and_pcapng_of_the_same_packets_give_the_same_records(side):
    pcapng, pcap = (records_of(name, side) for name in WS_CAPTURES)
    assert len(pcapng) == len(pcap) == 68
    for a, b in zip(pcapng, pcap):
        others = [name for name in a._fields if name not in ("file", "timestamp_ns")]
        assert [getattr(a, name) for name in others] == [getattr(b, name) for name in others]
        # Two capture programs stamped the packets separately: the same time to a few µs
        # (each is exactly tshark's, test_websocket_closes_are_tsharks); the pcap's in whole µs.
        assert abs(a.timestamp_ns - b.timestamp_ns) < 10_000 and b.timestamp_ns % 1000 == 0


@pytest.mark.parametrize("decode_as", [(), tuple(MQTT_PORTS.items())], ids=["by-connect", "decode-as"])
def test_mqtt_disconnects_are_tsharks(side, decode_as):
    records = records_of(MQTT_CAPTURE, side, decode_as)
    truth = truth_of(MQTT_CAPTURE)
    assert len(truth) == 29
    mqtt = [r for r in records if r.protocol == "mqtt"]
    ours = [(r.frame, r.timestamp_ns, r.src, r.dst, r.kind, r.code, r.reason, r.mqtt_version) for r in mqtt]
    theirs = [(t["frame"], epoch_ns(t["epoch"]), t["src"], t["dst"], "mqtt_disconnect", t["mqtt_reason_code"],
               t["mqtt_reason_string"], t["mqtt_version"]) for t in truth]
    assert ours == theirs
    for record, row in zip(mqtt, truth):
        effective = row["mqtt_reason_code_effective"]
        assert record.name == MQTT_NAMES[0 if effective is None else effective]
        assert record.stream == row["tcp_stream"]
        assert record.direction == ("server_to_client" if port(record.src) in MQTT_PORTS else "client_to_server")
        properties = [{"id": int(pid), "name": pid.name.lower(), **(
            {"key": value[0], "value": value[1]} if int(pid) == 0x26 else {"value": value})}
            for pid, value in record.properties]
        assert properties == row["mqtt_properties"]
        assert record.to_dict()["properties"] == [dict(p, name=p["name"].upper()) for p in row["mqtt_properties"]]
        assert type(record.value) is MqttDisconnect
        assert record.application == "mqtt" and record.data_lost is False
    # Client ids from the CONNECT (the generator's log names them).
    by_frame = {r.frame: r for r in mqtt}
    assert by_frame[265].client_id == "dup" and by_frame[265].name == "SESSION_TAKEN_OVER"
    assert by_frame[93].client_id == by_frame[95].client_id == "protoerr"
    assert by_frame[82].client_id == by_frame[318].client_id == "propper2"


def test_mqtt_connections_that_end_without_disconnect_are_tcp_records(side):
    """The shared README's scenario: with no DISCONNECT on the wire, the broker just closed."""
    records = records_of(MQTT_CAPTURE, side)
    assert {r.protocol for r in records} == {"mqtt", "tcp"}
    ends = [r for r in records if r.protocol == "tcp"]
    # 2.0.11: the taken-over `dup` (no 0x8E before 2.0.15), the keep-alive timeouts, the 3.1.1
    # takeover, and the three clients connected at shutdown; 2.0.22 the same but `dup`.
    expected = Counter({21883: 7, 21885: 6})
    assert Counter(port(r.src) for r in ends) == expected
    by_broker = defaultdict(set)
    for r in ends:
        assert (r.kind, r.code, r.name, r.reason, r.direction) == ("tcp_end", None, "FIN", None, "server_to_client")
        assert r.application == "mqtt" and r.mqtt_version is None and r.value is None
        by_broker[port(r.src)].add(r.client_id)
    common = {"sleepy", "sleepy311", "dup311", "last5", "last311", "watcher"}
    assert by_broker == {21883: common | {"dup"}, 21885: common}
    # One record per connection, never for a connection that also has a DISCONNECT record.
    streams = Counter(r.stream for r in ends)
    assert max(streams.values()) == 1
    assert not set(streams) & {r.stream for r in records if r.protocol == "mqtt"}


def test_diffusion_capture_is_what_tshark_and_the_client_saw(side):
    records = records_of(DIFFUSION_CAPTURE, side)
    truth = truth_of(DIFFUSION_CAPTURE)
    closes = [t for t in truth if t["kind"] == "ws_close"]
    assert [(r.frame, r.timestamp_ns, r.src, r.dst, r.direction, r.code, r.reason)
            for r in records if r.protocol == "websocket"] == \
        [(t["frame"], epoch_ns(t["epoch"]), t["src"], t["dst"], t["direction"], t["ws_status_code"], t["ws_reason"])
         for t in closes]
    # The Diffusion-level closes: the rejected handshake, the abort, the close request,
    # each with the close reason the vendor's client reported for it.
    ended = [t for t in truth if "close_reason" in (t.get("client_reported") or {})]
    diffusion = [r for r in records if r.protocol == "diffusion"]
    assert [(r.frame, r.src, r.dst, r.direction, r.close_reason) for r in diffusion] == \
        [(t["frame"], t["src"], t["dst"], t["direction"], t["client_reported"]["close_reason"]["name"]) for t in ended]
    rejected, abort, request = diffusion
    assert (rejected.kind, rejected.code, rejected.name) == ("diffusion_response", 116, "AUTHENTICATION_FAILED")
    assert type(rejected.value) is ConnectionResponse and rejected.session_id is None
    assert (abort.kind, abort.code, abort.name) == ("diffusion_abort", None, "ABORT_NOTIFICATION")
    assert type(abort.value) is AbortNotification
    assert (request.kind, request.code, request.name) == ("diffusion_close_request", None, "CLOSE_REQUEST")
    assert type(request.value) is CloseRequest
    # Session ids: from each connection's OK response, on every later record of it.
    sessions = {t["tcp_stream"]: t["decoded"]["session_id"] for t in truth
                if t["kind"] == "connection_response" and "session_id" in t["decoded"]}
    for record in records:
        assert record.session_id == sessions.get(record.stream)
        assert record.application == "diffusion"
    assert len(records) == len(closes) + len(ended)  # and nothing else (no tcp records: every one closed)


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_both_backends_give_identical_records(name):
    missing = compiled_missing()
    if missing:
        pytest.skip(missing)
    compiled, pure = records_of(name, "c"), records_of(name, "py")
    assert compiled == pure
    assert [r.to_dict() for r in compiled] == [r.to_dict() for r in pure]
    assert [type(r.value) for r in compiled] == [type(r.value) for r in pure]


def test_records_are_values_with_a_json_form():
    record = records_of(MQTT_CAPTURE, "py")[0]
    assert hash(record) == hash(records_of(MQTT_CAPTURE, "py")[0])
    data = record.to_dict()
    for field in ("frame", "time", "src", "dst", "protocol", "code", "name", "reason", "session_id",
                  "mqtt_version", "properties"):
        assert field in data
    assert json.loads(json.dumps(data)) == data
    assert data["time_ns"] == record.timestamp_ns and data["time"] == record.timestamp_ns / 1e9
    text = repr(record)
    assert f"frame={record.frame}" in text and record.src in text and record.name in text
    with pytest.raises(AttributeError):
        record.frame = 1  # type: ignore[misc]


class _CountingReader(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self.data[self.position:self.position + len(buffer)]
        buffer[:len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)


def test_close_records_is_lazy(side):
    data = (DATA / WS_CAPTURES[1]).read_bytes()
    source = _CountingReader(data)
    records = close_records(source, block_size=4096)
    assert source.position == 0  # nothing read before the first record is asked for
    first = next(records)
    assert first.frame == 10
    assert source.position < len(data) // 4
    assert len(list(records)) == 67


def test_stats_are_the_counts_so_far_in_a_counter_of_their_own(side):
    reader = CloseRecordReader(io.BytesIO((DATA / WS_CAPTURES[1]).read_bytes()))
    assert reader.stats == Counter()
    records = iter(reader)
    next(records)
    early = reader.stats
    assert type(early) is Counter and early["records"] == 1 and early["connections"] >= 1
    early["records"] += 100  # the caller's copy: the reader's counts stay as they were
    rest = list(records)
    assert reader.stats["records"] == 1 + len(rest) == 68 and early["records"] == 101


# -- synthetic captures ---------------------------------------------------------------


def test_a_close_split_over_segments_is_at_the_frame_of_its_last_byte(side):
    capture = Capture()
    flow = websocket_flow(capture)
    close = ws_close(1001, b"going away")
    flow.send(1, close[:3])
    last = flow.send(1, close[3:])
    answer = flow.send(0, ws_close(1001, b"going away", MASK))
    records = capture.records(side)
    assert [(r.frame, r.src, r.code, r.name, r.reason) for r in records] == [
        (last, flow.endpoint(1), 1001, "GOING_AWAY", "going away"),
        (answer, flow.endpoint(0), 1001, "GOING_AWAY", "going away"),
    ]
    assert records[0].timestamp_ns == capture.packets[last - 1][0]


def reordered(capture: Capture, flow: Flow, side: int, before: bytes, close: bytes) -> Tuple[int, int]:
    """Send ``before`` then ``close`` on ``side``, the second segment first (reordering, or a first copy
    of ``before`` the capture missed and its retransmission); return the frames of the two packets."""
    seq = flow.seq[side]
    ahead = capture.add(flow.ends[side], flow.ends[1 - side], seq + len(before), ACK | PSH, close)
    behind = capture.add(flow.ends[side], flow.ends[1 - side], seq, ACK | PSH, before)
    flow.seq[side] = seq + len(before) + len(close)
    return ahead, behind


def test_a_close_behind_a_hole_is_at_the_frame_that_fills_it(side):
    capture = Capture()
    flow = websocket_flow(capture)
    ahead, behind = reordered(capture, flow, 1, ws(1, b"said first"), ws_close(1001, b"bye"))
    answer = flow.send(0, ws_close(1001, b"", MASK))
    records = capture.records(side)
    # Wireshark, reassembling out-of-order segments, shows the close where its reassembly completes.
    assert [(r.frame, r.code) for r in records] == [(behind, 1001), (answer, 1001)]
    assert behind == ahead + 1 and records[0].timestamp_ns == capture.packets[behind - 1][0]


def test_closes_behind_holes_are_tsharks(tmp_path):
    capture = Capture()
    flow = websocket_flow(capture)
    reordered(capture, flow, 1, ws(1, b"a" * 40), ws(1, b"b") + ws_close(1000))
    flow.send(0, ws(1, b"between", MASK))
    reordered(capture, flow, 0, ws(2, b"c" * 10, MASK), ws_close(1000, b"", MASK))
    mqtt = Flow(capture, client_port=50001, server_port=1883)
    mqtt.send(0, mqtt_connect(b"sensor", version=5))
    reordered(capture, mqtt, 0, b"\xc0\x00", b"\xe0\x02\x04\x00")
    path = tmp_path / "reordered.pcap"
    path.write_bytes(capture.file().getvalue())
    text = tshark("-n", "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE", "-d", "tcp.port==8080,http",
                  "-d", "tcp.port==1883,mqtt", "-Y", "websocket.opcode == 8 || mqtt.msgtype == 14",
                  "-T", "fields", "-e", "frame.number")
    expected = [int(line) for line in text.split()]
    assert len(expected) == 3  # two WebSocket closes, one DISCONNECT, each behind a hole
    for side in installed_sides():
        with use_backend(side):
            reader = CloseRecordReader(path)
        assert [r.frame for r in reader if r.protocol != "tcp"] == expected


def test_ipv6_endpoints_are_bracketed(side):
    capture = Capture()
    flow = websocket_flow(capture, addresses=(A6, B6))
    frame = flow.send(1, ws_close(1000))
    records = capture.records(side)
    assert [(r.frame, r.src, r.dst) for r in records] == [(frame, flow.endpoint(1), flow.endpoint(0))]
    assert records[0].src == "[1011:1213:1415:1617:1819:1a1b:1c1d:1e1f]:8080"


@pytest.mark.parametrize("ender, how", [(0, FIN), (1, FIN), (0, RST), (1, RST)])
def test_a_connection_that_ends_without_a_close_frame_is_a_tcp_record(side, ender, how):
    capture = Capture()
    flow = websocket_flow(capture)
    frame = flow.flag(ender, how | ACK)
    if how == FIN:
        flow.flag(1 - ender, FIN | ACK)
    records = capture.records(side)
    assert [(r.frame, r.src, r.dst, r.protocol, r.kind, r.code, r.name, r.reason, r.direction) for r in records] == [
        (frame, flow.endpoint(ender), flow.endpoint(1 - ender), "tcp", "tcp_end", None,
         "FIN" if how == FIN else "RST", None, ("client_to_server", "server_to_client")[ender])]
    assert records[0].application == "websocket"


def test_no_tcp_record_after_a_close_frame_or_for_unrecognised_or_unfinished_connections(side):
    capture = Capture()
    closed = websocket_flow(capture, client_port=50001)
    frame = closed.send(1, ws_close(1000))
    closed.flag(1, FIN | ACK)
    closed.flag(0, FIN | ACK)
    other = Flow(capture, client_port=50002, server_port=5555)  # not WebSocket, not MQTT
    other.send(0, b"hello there\r\n")
    other.send(1, b"general kenobi\r\n")
    other.flag(0, RST | ACK)
    cut = websocket_flow(capture, client_port=50003)  # still open when the capture ends
    cut.send(1, ws(1, b"more"))
    records = capture.records(side)
    assert [(r.frame, r.protocol, r.code) for r in records] == [(frame, "websocket", 1000)]


def test_refused_connacks_are_records_accepted_ones_are_not(side):
    capture = Capture()
    refused = Flow(capture, client_port=50001, server_port=21000)
    refused.send(0, mqtt_connect(b"alice", 4))
    no = refused.send(1, bytes.fromhex("20020005"))  # 3.1.1 return code 5: not authorized
    refused.flag(1, FIN | ACK)
    refused.flag(0, FIN | ACK)
    refused5 = Flow(capture, client_port=50002, server_port=21000)
    refused5.send(0, mqtt_connect(b"bob", 5))
    reason = b"go away"
    properties = b"\x1f" + struct.pack(">H", len(reason)) + reason
    body = b"\x00\x87" + bytes([len(properties)]) + properties  # 0x87 Not authorized, with a Reason String
    no5 = refused5.send(1, bytes([0x20, len(body)]) + body)
    accepted = Flow(capture, client_port=50003, server_port=21000)
    accepted.send(0, mqtt_connect(b"carol", 5))
    accepted.send(1, bytes.fromhex("2003000000"))
    bye = accepted.send(1, bytes.fromhex("e0018e"))
    records = capture.records(side)
    assert [(r.frame, r.src, r.protocol, r.kind, r.code, r.reason, r.mqtt_version, r.client_id) for r in records
            if r.protocol == "mqtt"] == [
        (no, refused.endpoint(1), "mqtt", "mqtt_connack", 5, None, 4, "alice"),
        (no5, refused5.endpoint(1), "mqtt", "mqtt_connack", 0x87, "go away", 5, "bob"),
        (bye, accepted.endpoint(1), "mqtt", "mqtt_disconnect", 0x8E, None, 5, "carol"),
    ]
    connacks = [r for r in records if r.kind == "mqtt_connack"]
    assert all(type(r.value) is MqttConnack and not r.value.accepted for r in connacks)
    assert connacks[1].name == "NOT_AUTHORIZED"
    assert connacks[1].to_dict()["properties"] == [{"id": 0x1F, "name": "REASON_STRING", "value": "go away"}]
    # The refused connection has a close record (the CONNACK): no tcp record for its FIN.
    assert [r for r in records if r.protocol == "tcp"] == []


def test_a_rejected_websocket_upgrade_is_a_record(side):
    capture = Capture()
    flow = Flow(capture)
    flow.send(0, UPGRADE)
    flow.send(1, b"HTTP/1.1 403 Forbidden\r\n")
    frame = flow.send(1, b"Content-Length: 9\r\n\r\n")  # the head ends here
    flow.send(1, b"forbidden")
    flow.flag(1, FIN | ACK)
    flow.flag(0, FIN | ACK)
    records = capture.records(side)
    assert [(r.frame, r.src, r.dst, r.protocol, r.kind, r.code, r.reason, r.direction) for r in records] == [
        (frame, flow.endpoint(1), flow.endpoint(0), "websocket", "ws_rejected", 403, "Forbidden", "server_to_client")]


def test_mqtt_over_websocket_is_mqtt(side):
    capture = Capture()
    flow = Flow(capture)
    request, response = upgrade(b"/mqtt", b"mqtt")
    flow.send(0, request)
    flow.send(1, response)
    flow.send(0, ws(2, mqtt_connect(b"wsclient", 5), MASK))
    flow.send(1, ws(2, bytes.fromhex("2003000000")))
    frame = flow.send(1, ws(2, bytes.fromhex("e0018e")))
    after = flow.send(1, ws_close(1000))
    records = capture.records(side)
    assert [(r.frame, r.protocol, r.kind, r.code, r.name, r.mqtt_version, r.client_id, r.application)
            for r in records] == [
        (frame, "mqtt", "mqtt_disconnect", 0x8E, "SESSION_TAKEN_OVER", 5, "wsclient", "mqtt-websocket"),
        (after, "websocket", "ws_close", 1000, "NORMAL_CLOSURE", None, "wsclient", "mqtt-websocket"),
    ]


# The vendor's Diffusion client's own bytes (tests/data/*.truth.jsonl): a 100 OK connection response.
OK_RESPONSE = next(bytes.fromhex(t["message_hex"]) for t in truth_of(DIFFUSION_CAPTURE)
                   if t["kind"] == "connection_response" and t["decoded"]["response_code"] == 100)
# README's example: service 82 batch with CloseEvent(SessionId(1, 2), CLOSED_BY_CONTROLLER, $Principal=alice).
CLOSE_EVENT = bytes.fromhex("00520001010102020b010a245072696e636970616c05616c696365")
# Service 14, conversation 3: CLOSE_CLIENT of session 0000000000000005-0000000000000006.
CLOSE_CLIENT = bytes.fromhex("000e030506")


@pytest.mark.parametrize("path", [b"/diffusion", b"/other"], ids=["by-path", "by-response"])
def test_diffusion_session_close_events_are_records(side, path):
    capture = Capture()
    flow = Flow(capture)
    request, response = upgrade(path)
    flow.send(0, request)
    flow.send(1, response)
    flow.send(1, ws(2, OK_RESPONSE))
    event = flow.send(1, ws(2, CLOSE_EVENT))
    close_client = flow.send(0, ws(2, CLOSE_CLIENT, MASK))
    records = capture.records(side)
    assert [(r.frame, r.direction, r.protocol, r.kind, r.code, r.name, r.session_id, r.application)
            for r in records] == [
        (event, "server_to_client", "diffusion", "diffusion_close_event", 11, "CLOSED_BY_CONTROLLER",
         "0000000000000001-0000000000000002", "diffusion"),
        (close_client, "client_to_server", "diffusion", "diffusion_close_client", None, "CLOSE_CLIENT",
         "0000000000000005-0000000000000006", "diffusion")]
    assert records[0].value == CloseEvent(SessionId(1, 2), 11, {"$Principal": "alice"})
    assert records[1].value == CloseClientRequest(SessionId(5, 6))


def test_decode_as_reads_a_connection_whose_handshake_is_missing(side):
    capture = Capture()
    flow = Flow(capture, handshake=False, server_port=9000)  # the capture starts mid-stream
    flow.send(1, ws(1, b"still talking"))
    frame = flow.send(1, ws_close(4000, b"bye"))
    answer = flow.send(0, ws_close(4000, b"bye", MASK))
    assert capture.records(side, heuristics=False) == []
    expected = [(frame, flow.endpoint(1), "server_to_client", 4000, "bye"),
                (answer, flow.endpoint(0), "client_to_server", 4000, "bye")]
    for decode_as in ({9000: "websocket"}, ["9000=websocket"]):
        records = capture.records(side, decode_as=decode_as)
        assert [(r.frame, r.src, r.direction, r.code, r.reason) for r in records] == expected
        assert {r.detection for r in records} == {"decode-as"}
    # Without the port: recognised by its bytes (the closes end both directions exactly).
    records = capture.records(side)
    assert [(r.frame, r.src, r.direction, r.code, r.reason) for r in records] == expected
    assert {r.detection for r in records} == {"heuristic"}


def test_decode_as_diffusion_and_mqtt(side):
    capture = Capture()
    diffusion = Flow(capture, handshake=False, client_port=50001, server_port=9000)
    event = diffusion.send(1, ws(2, CLOSE_EVENT))
    mqtt = Flow(capture, handshake=False, client_port=50002, server_port=9001)
    disconnect = mqtt.send(1, bytes.fromhex("e0018b"))  # 0x8B server shutting down
    assert capture.records(side, heuristics=False) == []
    records = capture.records(side, decode_as=["9000=diffusion", "9001=mqtt"])
    assert [(r.frame, r.protocol, r.kind, r.code, r.name, r.session_id, r.mqtt_version, r.application)
            for r in records] == [
        (event, "diffusion", "diffusion_close_event", 11, "CLOSED_BY_CONTROLLER", "0000000000000001-0000000000000002",
         None, "diffusion"),
        (disconnect, "mqtt", "mqtt_disconnect", 0x8B, "SERVER_SHUTTING_DOWN", None, 5, "mqtt")]


def test_mqtt_on_port_1883_needs_no_connect(side):
    capture = Capture()
    flow = Flow(capture, handshake=False, server_port=1883)
    frame = flow.send(1, bytes.fromhex("e00195"))
    elsewhere = Flow(capture, handshake=False, server_port=1884)
    elsewhere.send(1, bytes.fromhex("e00195"))
    records = capture.records(side, heuristics=False)
    assert [(r.frame, r.protocol, r.code, r.name, r.detection) for r in records] == [
        (frame, "mqtt", 0x95, "PACKET_TOO_LARGE", "port")]
    assert capture.records(side, mqtt_ports=(), heuristics=False) == []
    # By its bytes, on any port: a DISCONNECT that ends its direction exactly.
    assert [(r.frame, r.detection) for r in capture.records(side)] == [(frame, "port"), (frame + 1, "heuristic")]


def test_parse_decode_as():
    assert parse_decode_as(["80=websocket", "1883=MQTT", "8080=diffusion"]) == {
        80: "websocket", 1883: "mqtt", 8080: "diffusion"}
    for bad in ("80", "80=http", "x=mqtt", "0=mqtt", "65536=mqtt", "=mqtt"):
        with pytest.raises(ValueError, match="PORT=KIND"):
            parse_decode_as([bad])
    with pytest.raises(ValueError):
        CloseRecordReader(io.BytesIO(b""), decode_as={80: "telnet"})


def test_records_after_lost_data_say_so(side):
    capture = Capture()
    flow = websocket_flow(capture)
    flow.skip(1, 50)  # a segment the capture missed
    frame = flow.send(1, ws_close(1011, b"oops"))
    records = capture.records(side)
    assert [(r.frame, r.code, r.reason, r.data_lost) for r in records] == [(frame, 1011, "oops", True)]


def test_a_truncated_capture_gives_the_records_before_the_cut(side):
    data = (DATA / WS_CAPTURES[1]).read_bytes()
    cut = 30000
    reader = CloseRecordReader(io.BytesIO(data[:cut]))
    records = list(reader)
    whole = records_of(WS_CAPTURES[1], side)
    assert [r[1:] for r in records] == [r[1:] for r in whole if r.frame <= reader.packets.frames]  # but file
    assert {r.file for r in records} == {None}  # a file object without a name
    assert 0 < len(records) < len(whole)
    assert isinstance(reader.error, IncompleteError)
    assert reader.error.offset <= cut
    with pytest.raises(IncompleteError):
        list(close_records(io.BytesIO(data[:cut])))


def test_not_a_capture_raises_malformed(side):
    with pytest.raises(MalformedError, match="not a pcap or pcapng file"):
        list(close_records(io.BytesIO(b"PK\x03\x04" + bytes(60))))


@given(cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=6, unique=True),
       code=st.sampled_from([None, 1000, 1008, 3000, 4999]),
       reason=st.sampled_from([b"", b"x", "naïve ✓".encode()]))
def test_any_segmentation_gives_the_same_records_on_both_backends(cuts, code, reason):
    if code is None:
        reason = b""
    capture = Capture()
    flow = websocket_flow(capture)
    data = ws(2, b"payload" * 3) + ws_close(code, reason)
    points = sorted(c for c in cuts if c < len(data))
    frames = []
    for start, end in zip([0] + points, points + [len(data)]):
        frames.append(flow.send(1, data[start:end]))
    answer = flow.send(0, ws_close(code, reason, MASK))
    expected = [(frames[-1], code, reason.decode() or None), (answer, code, reason.decode() or None)]
    results = [capture.records(side) for side in installed_sides()]
    for records in results:
        assert [(r.frame, r.code, r.reason) for r in records] == expected
    assert results[0] == results[-1]


# -- tshark itself --------------------------------------------------------------------

TSHARK_FILTER = "mqtt.msgtype == 1 || mqtt.msgtype == 14 || websocket.opcode == 8"
# The commands of the shared captures README, per capture.
TSHARK_DECODE = {
    MQTT_CAPTURE: ["-d", "tcp.port==21883,mqtt", "-d", "tcp.port==21885,mqtt"],
    WS_CAPTURES[0]: ["-d", "tcp.port==21890,http", "-d", "tcp.port==21891,http"],
    WS_CAPTURES[1]: ["-d", "tcp.port==21890,http", "-d", "tcp.port==21891,http"],
    DIFFUSION_CAPTURE: ["-d", "tcp.port==21932,http"],
}
TSHARK_DISPLAY = {DIFFUSION_CAPTURE: "http.request || websocket"}


def tshark(*args: str) -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.skip("tshark is not installed (CI installs it: apt-get install tshark)")
    done = subprocess.run([path, *args], capture_output=True, timeout=120, check=False, env=tool_env())
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode("utf-8")


def pairs(value: Any) -> List[Tuple[str, Any]]:
    return value if isinstance(value, list) else []


def get(items: List[Tuple[str, Any]], key: str) -> Any:
    return next((value for name, value in items if name == key), None)


def walk(items: Any, key: str) -> List[Any]:
    """Every value of ``key`` under ``items`` (tshark's JSON as lists of pairs, repeated keys kept), in order."""
    found = []
    for name, value in pairs(items):
        if name == key:
            found.append(value)
        found.extend(walk(value, key))
    return found


@functools.lru_cache(maxsize=None)
def tshark_closes(name: str) -> Tuple[List[Tuple[Any, ...]], Dict[int, int]]:
    """tshark's close frames of a capture: ``(frame, src, dst, protocol, code, reason, mqtt_version)``, and
    the MQTT version of each TCP stream with a CONNECT."""
    text = tshark("-n", "-r", str(DATA / name), *TSHARK_DECODE[name], "-Y", TSHARK_DISPLAY.get(name, TSHARK_FILTER),
                  "-T", "json")
    packets = json.loads(text, object_pairs_hook=lambda items: items)
    closes, versions = [], {}
    for packet in packets:
        layers = get(get(packet, "_source"), "layers")
        frame = int(get(get(layers, "frame"), "frame.number"))
        ip = get(layers, "ip") or get(layers, "ipv6")
        tcp_layer = get(layers, "tcp")
        stream = int(get(tcp_layer, "tcp.stream"))
        host = get(ip, "ip.src") or f"[{get(ip, 'ipv6.src')}]"
        peer = get(ip, "ip.dst") or f"[{get(ip, 'ipv6.dst')}]"
        src, dst = f"{host}:{get(tcp_layer, 'tcp.srcport')}", f"{peer}:{get(tcp_layer, 'tcp.dstport')}"
        for layer, value in layers:
            if layer == "websocket" and get(value, "websocket.opcode") == "8":
                code = walk(value, "websocket.payload.close.status_code")
                reason = walk(value, "websocket.payload.close.reason")
                closes.append((frame, src, dst, "websocket", int(code[0]) if code else None,
                               reason[0] if reason else None, None, stream))
            elif layer == "mqtt":
                kind = walk(value, "mqtt.msgtype")[0]
                if kind == "1":
                    versions[stream] = int(get(value, "mqtt.ver"))
                elif kind == "14":
                    code = get(value, "mqtt.disconnect.reason_code")
                    reason = None
                    properties = pairs(get(value, "mqtt.properties"))
                    for i, (key, item) in enumerate(properties):  # the string after property id 0x1f
                        if key == "mqtt.property_id" and item == "0x1f":
                            reason = get(properties[i:], "mqtt.prop_string")
                    closes.append((frame, src, dst, "mqtt", None if code is None else int(code), reason, None, stream))
    closes = [c[:6] + (versions.get(c[7]) if c[3] == "mqtt" else None,) for c in closes]
    return closes, versions


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_tshark_finds_the_closes_we_find(side, name):
    closes, versions = tshark_closes(name)
    assert closes, "tshark found no close frames: its output format has changed?"
    ours = [(r.frame, r.src, r.dst, r.protocol, r.code, r.reason, r.mqtt_version)
            for r in records_of(name, side) if r.protocol in ("websocket", "mqtt")]
    assert ours == closes
    if name == MQTT_CAPTURE:
        assert set(versions.values()) == {4, 5}


def test_tshark_sees_the_tcp_ends_we_record(side):
    """Each MQTT stream (a CONNECT, per tshark) without a DISCONNECT: its first FIN or RST is our tcp record."""
    closes, versions = tshark_closes(MQTT_CAPTURE)
    text = tshark("-n", "-r", str(DATA / MQTT_CAPTURE), "-T", "fields", "-e", "frame.number", "-e", "tcp.stream",
                  "-e", "tcp.flags.fin", "-e", "tcp.flags.reset", "-e", "ip.src", "-e", "tcp.srcport")
    closed = {int(frame) for frame, *_ in closes}
    streams_closed = set()
    first_end: Dict[int, Tuple[int, str, str]] = {}
    for line in text.splitlines():
        frame, stream, fin, rst, host, source_port = line.split("\t")
        if int(frame) in closed:
            streams_closed.add(int(stream))
        if (fin in ("1", "True") or rst in ("1", "True")) and int(stream) not in first_end:
            first_end[int(stream)] = (int(frame), f"{host}:{source_port}", "FIN" if fin in ("1", "True") else "RST")
    expected = sorted(first_end[s] for s in versions if s not in streams_closed)
    ours = sorted((r.frame, r.src, r.name) for r in records_of(MQTT_CAPTURE, side) if r.protocol == "tcp")
    assert ours == expected
    assert len(ours) == 13
