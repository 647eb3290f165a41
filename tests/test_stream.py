"""Streaming decoders: any chunking of a stream decodes exactly as the whole, on both backends."""

from __future__ import annotations

import array
import importlib
from types import ModuleType
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import closecodec
from closecodec.diffusion import _py as diffusion_py
from closecodec.mqtt import _py as mqtt_py
from closecodec.websocket import _py as websocket_py
from closecodec.errors import DecodeError, MalformedError, MqttPacketError, WebSocketFrameError
from closecodec.frames import (
    AbortNotification,
    CloseEvent,
    CloseRequest,
    ConnectionResponse,
    EventBatch,
    MqttConnack,
    MqttDisconnect,
    MqttOtherPacket,
    MqttPacketType,
    MqttPropertyId,
    OpenEvent,
    ServiceRequest,
    SessionId,
    WebSocketClose,
    WebSocketFrame,
    WebSocketMessage,
    WebSocketOpcode,
)
from closecodec.reasons import ResponseCode

from helpers import installed

#: Each stream class's room.
STREAM_ROOMS = {"WebSocketStream": "websocket", "DiffusionStream": "diffusion", "MqttStream": "mqtt"}


def stream_classes(name: str) -> List[Any]:
    """The stream class ``name`` of each backend this install has, for property tests (no fixture: Hypothesis)."""
    return [getattr(module, name) for module in installed(STREAM_ROOMS[name])]


# -- running a stream ----------------------------------------------------------------


def run(factory: Any, data: bytes, cuts: List[int]) -> Tuple[List[Tuple[int, Any]], Optional[tuple]]:
    """Feed ``data`` cut at ``cuts``; the (end, value) pairs and the error, as comparable tuples."""
    stream = factory()
    values: List[Tuple[int, Any]] = []
    error = None
    bounds = [0] + sorted(set(c for c in cuts if 0 < c < len(data))) + [len(data)]
    chunks = [data[a:b] for a, b in zip(bounds, bounds[1:])] + [b""]  # b"": raises a pending error
    for chunk in chunks:
        try:
            values += stream.feed(chunk, offsets=True)
        except DecodeError as exc:
            error = (type(exc).__name__, str(exc), exc.offset, getattr(exc, "close_code", None),
                     getattr(exc, "reason_code", None))
            assert stream.error is exc
            break
    if error is None:
        assert stream.position == len(data)
    return values, error


def check_chunkings(factories: List[Any], data: bytes, cuts: List[int]) -> Tuple[list, Optional[tuple]]:
    """Every backend, whole and cut at ``cuts`` and byte by byte, gives the same values and error."""
    reference = run(factories[0], data, [])
    for factory in factories:
        assert run(factory, data, []) == reference
        assert run(factory, data, cuts) == reference
    return reference


cuts_strategy = st.lists(st.integers(min_value=1, max_value=200_000), max_size=40)


# -- WebSocket streams ----------------------------------------------------------------

KEYS = st.binary(min_size=4, max_size=4)
CLOSE_CODES = st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])


# Payloads past 65,535 bytes (64-bit lengths), built from a short pattern: cheap to draw.
LARGE_PAYLOADS = st.builds(
    lambda n, pattern: (pattern * (n // len(pattern) + 1))[:n],
    st.integers(60_000, 70_000), st.binary(min_size=1, max_size=16),
)


@st.composite
def ws_streams(draw: Any, masked: Optional[bool] = None) -> Tuple[bytes, List[Tuple[int, Any]]]:
    """A valid one-direction WebSocket stream and what it decodes to, with end offsets."""
    out = bytearray()
    expected: List[Tuple[int, Any]] = []

    def key() -> Optional[bytes]:
        m = draw(st.booleans()) if masked is None else masked
        return draw(KEYS) if m else None

    def put(frame: Any) -> None:
        out.extend(websocket_py.encode_ws_frame(frame))

    def control() -> None:
        frame = WebSocketFrame(draw(st.sampled_from([9, 10])), draw(st.binary(max_size=125)), mask_key=key())
        put(frame)
        expected.append((len(out), frame))

    for _ in range(draw(st.integers(0, 6))):
        opcode = draw(st.sampled_from([1, 2]))
        payload = draw(st.one_of(st.binary(max_size=300), LARGE_PAYLOADS))
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
        pieces = [payload[a:b] for a, b in zip([0] + cuts, cuts + [len(payload)])]
        mask = key()
        for i, piece in enumerate(pieces):
            if i and draw(st.booleans()):
                control()
            put(WebSocketFrame(0 if i else opcode, piece, fin=i == len(pieces) - 1, mask_key=key()))
        expected.append((len(out), WebSocketMessage(opcode, payload, 0, masked if masked is not None else mask is not None)))
        if draw(st.integers(0, 3)) == 0:
            control()
    if draw(st.booleans()):
        if draw(st.booleans()):
            close = WebSocketClose(None, "", key())
        else:
            close = WebSocketClose(draw(CLOSE_CODES), draw(st.text(max_size=30)), key())
        put(close)
        expected.append((len(out), close))
    return bytes(out), expected


@settings(max_examples=150)
@given(ws_streams(masked=True), cuts_strategy, st.data())
def test_websocket_any_chunking_masked(generated: Any, cuts: List[int], data: Any) -> None:
    stream_bytes, expected = generated
    cuts += data.draw(st.lists(st.integers(1, max(1, len(stream_bytes))), max_size=20))
    factories = [lambda cls=cls: cls(expect_masked=True) for cls in stream_classes("WebSocketStream")]
    values, error = check_chunkings(factories, stream_bytes, cuts)
    assert error is None
    assert values == expected


@settings(max_examples=150)
@given(ws_streams(masked=False), cuts_strategy)
def test_websocket_any_chunking_unmasked(generated: Any, cuts: List[int]) -> None:
    stream_bytes, expected = generated
    factories = [lambda cls=cls: cls(expect_masked=False) for cls in stream_classes("WebSocketStream")]
    values, error = check_chunkings(factories, stream_bytes, cuts)
    assert error is None
    assert values == expected


def _ws_message_mask_agnostic(values: list) -> list:
    # With frames masked at random, a message reports how its first frame was sent.
    return [(end, (v.opcode, v.payload) if type(v) is WebSocketMessage else v) for end, v in values]


@given(ws_streams(), cuts_strategy)
def test_websocket_any_chunking_mixed_masking(generated: Any, cuts: List[int]) -> None:
    stream_bytes, expected = generated
    factories = [lambda cls=cls: cls() for cls in stream_classes("WebSocketStream")]
    values, error = check_chunkings(factories, stream_bytes, cuts)
    assert error is None
    assert _ws_message_mask_agnostic(values) == _ws_message_mask_agnostic(expected)


def test_websocket_byte_by_byte(websocket: ModuleType) -> None:
    key = b"\x11\x22\x33\x44"
    frames = [
        WebSocketFrame(1, b"hel", fin=False, mask_key=key),
        WebSocketFrame(9, b"ping", mask_key=key),
        WebSocketFrame(0, b"lo", mask_key=key),
        WebSocketFrame(2, bytes(range(256)) * 300, mask_key=key),
        WebSocketClose(1001, "going away", key),
    ]
    data = b"".join(websocket_py.encode_ws_frame(f) for f in frames)
    ws = websocket.WebSocketStream(expect_masked=True)
    out = []
    for i in range(len(data)):
        out += ws.feed(data[i:i + 1])
    assert out == [
        WebSocketFrame(9, b"ping", mask_key=key),
        WebSocketMessage(1, b"hello", 0, True),
        WebSocketMessage(2, bytes(range(256)) * 300, 0, True),
        WebSocketClose(1001, "going away", key),
    ]
    assert ws.closed and not ws.in_message and ws.buffered == 0 and ws.position == len(data)
    assert out[1].text == "hello" and out[2].length == 76800


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview, lambda b: array.array("B", b)])
def test_feed_takes_any_buffer(websocket: ModuleType, kind: Any) -> None:
    data = websocket_py.encode_ws_frame(WebSocketFrame(2, b"abc")) + websocket_py.encode_ws_frame(WebSocketClose(1000))
    assert websocket.WebSocketStream().feed(kind(data)) == [WebSocketMessage(2, b"abc"), WebSocketClose(1000)]
    with pytest.raises(TypeError, match="bytes-like object is required"):
        websocket.WebSocketStream().feed("text")


# -- errors: where the stream stands afterwards ------------------------------------------


def ws_bytes(*frames: Any) -> bytes:
    return b"".join(websocket_py.encode_ws_frame(f) for f in frames)


def test_values_before_an_error_come_first_then_the_error_stays(websocket: ModuleType) -> None:
    data = ws_bytes(WebSocketFrame(2, b"x"), WebSocketClose(1000, "bye")) + b"\x81\x00"
    ws = websocket.WebSocketStream()
    assert ws.feed(data, offsets=True) == [(3, WebSocketMessage(2, b"x")), (10, WebSocketClose(1000, "bye"))]
    error = ws.error
    assert type(error) is WebSocketFrameError and error.offset == 10 and error.close_code == 1002
    assert str(error) == "bytes after the close frame at byte 10"
    for _ in range(2):  # raised by the next call, and by every one after it
        with pytest.raises(WebSocketFrameError) as raised:
            ws.feed(b"")
        assert raised.value is error
    assert ws.position == len(data)
    ws.reset()
    assert ws.error is None and not ws.closed and ws.position == len(data)
    assert ws.feed(ws_bytes(WebSocketFrame(1, b"again")), offsets=True) == [(len(data) + 7, WebSocketMessage(1, b"again"))]
    ws.reset(position=1000)
    assert ws.position == 1000
    assert ws.feed(b"\x82\x01", offsets=True) == [] and ws.in_message and ws.feed(b"z", offsets=True) == [
        (1003, WebSocketMessage(2, b"z"))
    ]


def test_an_error_with_nothing_before_it_is_raised_at_once(websocket: ModuleType) -> None:
    ws = websocket.WebSocketStream()
    with pytest.raises(WebSocketFrameError, match="continuation frame with no message to continue at byte 0"):
        ws.feed(b"\x80\x00")
    with pytest.raises(WebSocketFrameError):
        ws.feed(ws_bytes(WebSocketFrame(1, b"ok")))
    assert ws.position == 2  # a failed websocket takes no more bytes


@pytest.mark.parametrize(
    ("data", "message", "offset", "code"),
    [
        (ws_bytes(WebSocketFrame(1, b"a", fin=False), WebSocketFrame(2, b"b")),
         "new BINARY message before the fragmented message ended", 3, 1002),
        (b"\x83\x00", "reserved opcode 3", 0, 1002),
        (b"\x89\x7e", "control frame payload longer than 125 bytes", 1, 1002),
        (b"\x88\x01\x03", "close payload of 1 byte (a status code takes 2)", 2, 1002),
        (b"\x88\x02\x03\xed", "close code 1005 may not be sent in a close frame", 2, 1002),
        (b"\x88\x04\x03\xe8\xc3\x28", "invalid UTF-8 in the close reason", 4, 1007),
        (b"\x81\x7e\x00\x05hello", "payload length 5 is not in its shortest form", 2, 1002),
        (b"\xc1\x00", "RSV bits 0x4 are set and no negotiated extension allows them", 0, 1002),
    ],
)
def test_websocket_errors(websocket: ModuleType, data: bytes, message: str, offset: int, code: int) -> None:
    for cuts in ([], list(range(1, len(data)))):
        values, error = run(lambda: websocket.WebSocketStream(), b"\x8a\x00" + data, cuts)
        assert values == [(2, WebSocketFrame(10, b""))]
        assert error[1:4] == (f"{message} at byte {offset + 2}", offset + 2, code)


def test_masking_side_is_checked(websocket: ModuleType) -> None:
    masked = ws_bytes(WebSocketFrame(2, b"x", mask_key=b"abcd"))
    with pytest.raises(WebSocketFrameError, match="masked frame where masking is forbidden at byte 1"):
        websocket.WebSocketStream(expect_masked=False).feed(masked)
    with pytest.raises(WebSocketFrameError, match="unmasked frame where masking is required at byte 1"):
        websocket.WebSocketStream(expect_masked=True).feed(ws_bytes(WebSocketFrame(2, b"x")))


def test_rsv_allowed_passes_bits_through(websocket: ModuleType) -> None:
    data = ws_bytes(WebSocketFrame(2, b"z", fin=False, rsv=4), WebSocketFrame(0, b"z"))
    assert websocket.WebSocketStream(rsv_allowed=4).feed(data) == [WebSocketMessage(2, b"zz", 4)]
    with pytest.raises(ValueError, match="rsv_allowed"):
        websocket.WebSocketStream(rsv_allowed=8)


# -- bounded memory --------------------------------------------------------------------


def test_never_ending_fragmented_message_fails_at_the_limit(websocket: ModuleType) -> None:
    limit = 10_000
    key = b"\x01\x02\x03\x04"
    ws = websocket.WebSocketStream(max_message_size=limit)
    fragment = ws_bytes(WebSocketFrame(0, b"y" * 999, fin=False, mask_key=key))
    assert ws.feed(ws_bytes(WebSocketFrame(1, b"x" * 999, fin=False, mask_key=key))) == []
    with pytest.raises(WebSocketFrameError) as raised:
        for _ in range(1000):
            assert ws.in_message and ws.buffered <= limit + 14
            ws.feed(fragment[:500])
            ws.feed(fragment[500:])
    error = raised.value
    assert error.close_code == 1009
    # Ten 999-byte fragments fit (9,990 bytes); the eleventh's header crosses the limit.
    frame_start = 10 * len(fragment)
    assert error.offset == frame_start + 2  # its 16-bit length field
    assert str(error) == f"payload reaches 10989 bytes, over the {limit}-byte limit at byte {frame_start + 2}"
    assert ws.buffered <= limit + 14


def test_a_header_claiming_a_huge_frame_fails_before_buffering(websocket: ModuleType) -> None:
    ws = websocket.WebSocketStream(max_message_size=1 << 20)
    header = b"\x82\x7f" + (1 << 40).to_bytes(8, "big")
    with pytest.raises(WebSocketFrameError) as raised:
        ws.feed(header + b"\x00" * 100)
    assert raised.value.close_code == 1009 and raised.value.offset == 2
    assert ws.buffered == 0


def test_websocket_limits_are_checked(websocket: ModuleType) -> None:
    for bad in (-1, "1", 1.0, None):
        with pytest.raises(ValueError, match="max_message_size"):
            websocket.WebSocketStream(max_message_size=bad)
    assert websocket.WebSocketStream().max_message_size == closecodec.DEFAULT_MAX_MESSAGE_SIZE == 16 * 1024 * 1024


def test_mqtt_limits_are_checked(mqtt: ModuleType) -> None:
    for bad in (-1, "1", 1.0, None):
        with pytest.raises(ValueError, match="max_packet_size"):
            mqtt.MqttStream(max_packet_size=bad)


def test_mqtt_packet_over_the_limit_fails_from_its_header(mqtt: ModuleType) -> None:
    mq = mqtt.MqttStream(max_packet_size=100)
    # PINGREQ, then a 2 MB PUBLISH header: the PINGREQ comes out, the error on the next call.
    assert mq.feed(b"\xc0\x00\x30\xff\xff\x7f") == [MqttOtherPacket(MqttPacketType.PINGREQ)]
    with pytest.raises(MqttPacketError) as raised:
        mq.feed(b"")
    assert raised.value.reason_code == 0x95 and raised.value.offset == 2
    assert str(raised.value) == "packet of 2097155 bytes is over the 100-byte limit at byte 2"


def test_mqtt_skipped_bodies_are_not_buffered(mqtt: ModuleType) -> None:
    mq = mqtt.MqttStream()
    out = mq.feed(b"\x30\xff\xff\x03")  # a PUBLISH of 65,535 bytes
    for _ in range(63):
        out += mq.feed(b"\x00" * 1024)
        assert mq.buffered == 0
    out += mq.feed(b"\x00" * (65535 - 63 * 1024), offsets=True)
    assert out == [(4 + 65535, MqttOtherPacket(MqttPacketType.PUBLISH))]


# -- Diffusion over WebSocket ------------------------------------------------------------

SESSION = SessionId(0x0123456789ABCDEF, 42)
OK_RESPONSE = ConnectionResponse(29, ResponseCode.OK, SESSION, b"t" * 24, 30_000, 1 << 20)


@st.composite
def diffusion_streams(draw: Any) -> Tuple[bytes, List[Tuple[int, Any]]]:
    out = bytearray()
    expected: List[Tuple[int, Any]] = []

    def binary(payload: bytes, value: Any) -> None:
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
        pieces = [payload[a:b] for a, b in zip([0] + cuts, cuts + [len(payload)])]
        for i, piece in enumerate(pieces):
            if i and draw(st.booleans()):
                ping = WebSocketFrame(9, draw(st.binary(max_size=10)))
                out.extend(websocket_py.encode_ws_frame(ping))
                expected.append((len(out), ping))
            out.extend(websocket_py.encode_ws_frame(WebSocketFrame(0 if i else 2, piece, fin=i == len(pieces) - 1)))
        expected.append((len(out), value))

    response = draw(st.sampled_from([OK_RESPONSE, ConnectionResponse(29, ResponseCode.AUTHENTICATION_FAILED)]))
    binary(diffusion_py.encode_connection_response(response), response)
    reasons = st.integers(0, 15).filter(lambda r: r != 10)
    for _ in range(draw(st.integers(0, 5))):
        events = [CloseEvent(SessionId(draw(st.integers(0, 2**64 - 1)), i), draw(reasons), [("$Principal", "alice")])
                  for i in range(draw(st.integers(0, 3)))] + [OpenEvent(SESSION, {"a": "b"})]
        message = draw(st.sampled_from([
            ServiceRequest(82, 7, EventBatch(1, events)),
            AbortNotification(),
            CloseRequest(),
            ServiceRequest(5, 1, b"payload"),
        ]))
        binary(diffusion_py.encode_message(message), diffusion_py.decode_message(diffusion_py.encode_message(message)))
    if draw(st.booleans()):
        close = WebSocketClose(1000, "session closed")
        out.extend(websocket_py.encode_ws_frame(close))
        expected.append((len(out), close))
    return bytes(out), expected


@settings(max_examples=100)
@given(diffusion_streams(), cuts_strategy)
def test_diffusion_any_chunking(generated: Any, cuts: List[int]) -> None:
    stream_bytes, expected = generated
    factories = [lambda cls=cls: cls(expect_masked=False) for cls in stream_classes("DiffusionStream")]
    values, error = check_chunkings(factories, stream_bytes, cuts)
    assert error is None
    assert values == expected


def test_diffusion_stream_surfaces_close_events(diffusion: ModuleType) -> None:
    batch = EventBatch(1, [CloseEvent(SESSION, 11, {"$Principal": "alice"})])
    data = ws_bytes(
        WebSocketFrame(2, diffusion_py.encode_connection_response(OK_RESPONSE)),
        WebSocketFrame(2, diffusion_py.encode_message(ServiceRequest(82, 0, batch))),
        WebSocketFrame(2, diffusion_py.encode_message(AbortNotification())),
        WebSocketClose(1011, "bye"),
    )
    ds = diffusion.DiffusionStream(expect_masked=False)
    out = []
    for i in range(0, len(data), 3):
        out += ds.feed(data[i:i + 3])
    assert out == [OK_RESPONSE, ServiceRequest(82, 0, batch), AbortNotification(), WebSocketClose(1011, "bye")]
    assert ds.response == OK_RESPONSE and ds.closed


def test_diffusion_client_direction_has_no_response(diffusion: ModuleType) -> None:
    data = ws_bytes(WebSocketFrame(2, b"\x1d", mask_key=b"abcd"))
    assert diffusion.DiffusionStream(connection_response=False, expect_masked=True).feed(data) == [CloseRequest()]


def test_diffusion_errors(diffusion: ModuleType) -> None:
    head = ws_bytes(WebSocketFrame(2, diffusion_py.encode_connection_response(OK_RESPONSE)))
    ds = diffusion.DiffusionStream()
    assert ds.feed(head + ws_bytes(WebSocketFrame(1, b"text"))) == [OK_RESPONSE]
    assert type(ds.error) is WebSocketFrameError and ds.error.close_code == 1003 and ds.error.offset == len(head)
    assert ds.response == OK_RESPONSE
    ds = diffusion.DiffusionStream()
    assert ds.feed(head + ws_bytes(WebSocketFrame(2, b"\x1c\x00"))) == [OK_RESPONSE]
    with pytest.raises(MalformedError) as raised:
        ds.feed(b"")
    assert str(raised.value) == (
        f"Diffusion message: 1 bytes after the end of the message (byte 1 of the message) at byte {len(head)}"
    )
    ds = diffusion.DiffusionStream()
    with pytest.raises(MalformedError) as raised:
        ds.feed(ws_bytes(WebSocketFrame(2, b"\x23\x1d")))
    assert type(raised.value) is MalformedError  # incomplete inside a whole message is malformed
    assert str(raised.value) == (
        "connection response: incomplete connection response: the input ends before it does (byte 0 of the message) at byte 0"
    )


# -- MQTT ---------------------------------------------------------------------------------

MQTT_PACKETS = st.sampled_from([
    MqttDisconnect(0, (), None),
    MqttDisconnect(0x8E, [(MqttPropertyId.REASON_STRING, "Session taken over")]),
    MqttDisconnect(0x04, [(MqttPropertyId.SESSION_EXPIRY_INTERVAL, 5), (MqttPropertyId.USER_PROPERTY, ("k", "v"))]),
    MqttConnack(0x87, False, [(MqttPropertyId.REASON_STRING, "no")]),
    MqttConnack(0, True, (), 4),
    MqttOtherPacket(MqttPacketType.PINGREQ),
    MqttOtherPacket(MqttPacketType.PUBLISH, 2, b"\x00\x01t\x00\x07hello"),
    MqttOtherPacket(MqttPacketType.PUBLISH, 0, b"\x00\x01t" + b"x" * 20_000),
])


@given(st.lists(MQTT_PACKETS, max_size=8), cuts_strategy, st.booleans())
def test_mqtt_any_chunking(packets: List[Any], cuts: List[int], keep: bool) -> None:
    data = b""
    expected = []
    for packet in packets:
        data += mqtt_py.encode_mqtt_packet(packet)
        if type(packet) is MqttOtherPacket and not keep:
            packet = MqttOtherPacket(packet.packet_type, packet.flags, b"")
        expected.append((len(data), packet))
    factories = [lambda cls=cls: cls(keep_bodies=keep) for cls in stream_classes("MqttStream")]
    values, error = check_chunkings(factories, data, cuts)
    assert error is None
    assert values == expected


def test_mqtt_errors_are_at_stream_offsets(mqtt: ModuleType) -> None:
    data = b"\xc0\x00" + b"\xe0\x03\x81\x01\x00"  # PINGREQ, then a DISCONNECT with an unknown property 0
    values, error = run(lambda: mqtt.MqttStream(), data, [3, 5])
    assert values == [(2, MqttOtherPacket(MqttPacketType.PINGREQ))]
    assert error == ("MqttPacketError", "unknown property identifier 0x00 at byte 6", 6, None, 0x81)
    _, error = run(lambda: mqtt.MqttStream(), b"\xe1\x00", [1])
    assert error[1] == "DISCONNECT flags 0x1 are not 0 at byte 0"
    _, error = run(lambda: mqtt.MqttStream(), b"\x30\x80\x80\x80\x80", [2])
    assert error[1] == "Remaining Length is longer than 4 bytes at byte 4"
    _, error = run(lambda: mqtt.MqttStream(version=4), b"\xc0\x00\xe0\x01\x00", [])
    assert error[1].startswith("an MQTT 3.1.1 DISCONNECT has no body") and error[2] == 4


# -- arbitrary and damaged bytes: the backends and every chunking agree ---------------------

STREAM_KINDS = [
    ("WebSocketStream", {}),
    ("WebSocketStream", {"expect_masked": True, "max_message_size": 200}),
    ("DiffusionStream", {}),
    ("DiffusionStream", {"connection_response": False}),
    ("MqttStream", {}),
    ("MqttStream", {"keep_bodies": True, "max_packet_size": 300, "strict": True}),
]


@given(st.sampled_from(STREAM_KINDS), st.binary(max_size=400), cuts_strategy)
def test_arbitrary_bytes_agree(kind: Any, data: bytes, cuts: List[int]) -> None:
    name, options = kind
    factories = [lambda cls=cls: cls(**options) for cls in stream_classes(name)]
    check_chunkings(factories, data, cuts)


@given(ws_streams(), st.data(), cuts_strategy)
def test_damaged_websocket_streams_agree(generated: Any, data: Any, cuts: List[int]) -> None:
    stream_bytes, _ = generated
    if not stream_bytes:
        return
    damaged = bytearray(stream_bytes)
    for _ in range(data.draw(st.integers(1, 3))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    factories = [lambda cls=cls: cls(max_message_size=100_000) for cls in stream_classes("WebSocketStream")]
    check_chunkings(factories, bytes(damaged), cuts)


@given(diffusion_streams(), st.data(), cuts_strategy)
def test_damaged_diffusion_streams_agree(generated: Any, data: Any, cuts: List[int]) -> None:
    stream_bytes, _ = generated
    damaged = bytearray(stream_bytes)
    for _ in range(data.draw(st.integers(1, 3))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    factories = [lambda cls=cls: cls() for cls in stream_classes("DiffusionStream")]
    check_chunkings(factories, bytes(damaged), cuts)


# -- the package exports one backend's streams --------------------------------------------


def test_package_exports_the_active_backend() -> None:
    for name, room in STREAM_ROOMS.items():
        module = importlib.import_module(f"closecodec.{room}._{closecodec.BACKEND}")
        assert getattr(closecodec, name) is getattr(module, name)
    assert issubclass(closecodec.DiffusionStream, closecodec.WebSocketStream)


# -- closes_only and spans: what the capture reader asks for ---------------------------------

CLOSE_VALUES = (WebSocketClose, MqttDisconnect, MqttConnack)


def run_spans(factory: Any, data: bytes, cuts: List[int]) -> Tuple[List[Tuple[int, int, Any]], Optional[tuple]]:
    """Like :func:`run`, with ``spans=True``: (start, end, value) triples and the error."""
    stream = factory()
    values: List[Tuple[int, int, Any]] = []
    bounds = [0] + sorted(set(c for c in cuts if 0 < c < len(data))) + [len(data)]
    for a, b in zip(bounds, bounds[1:] + [len(data)]):
        try:
            values += stream.feed(data[a:b], spans=True)
        except DecodeError as exc:
            return values, (type(exc).__name__, str(exc), exc.offset)
    return values, None


CLOSES_ONLY_KINDS = [
    ("WebSocketStream", {}),
    ("WebSocketStream", {"expect_masked": True, "max_message_size": 200}),
    ("MqttStream", {}),
    ("MqttStream", {"keep_bodies": True, "max_packet_size": 300}),
]


def check_closes_only(name: str, options: dict, data: bytes, cuts: List[int]) -> None:
    """closes_only returns the full decode's closes, with the same spans and the same error."""
    for cls in stream_classes(name):
        full = run_spans(lambda: cls(**options), data, [])
        closes = run_spans(lambda: cls(closes_only=True, **options), data, cuts)
        assert closes == ([span for span in full[0] if type(span[2]) in CLOSE_VALUES], full[1])


@given(st.sampled_from(CLOSES_ONLY_KINDS), st.binary(max_size=400), cuts_strategy)
def test_closes_only_is_the_full_decode_filtered_on_arbitrary_bytes(kind: Any, data: bytes, cuts: List[int]) -> None:
    check_closes_only(kind[0], kind[1], data, cuts)


@given(ws_streams(), st.data(), cuts_strategy)
def test_closes_only_is_the_full_decode_filtered_on_websocket_streams(generated: Any, data: Any,
                                                                       cuts: List[int]) -> None:
    stream_bytes, _ = generated
    damaged = bytearray(stream_bytes)
    for _ in range(data.draw(st.integers(0, 2)) if damaged else 0):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    # A limit that some generated fragmented messages pass: closes_only must still refuse them.
    check_closes_only("WebSocketStream", {"max_message_size": 65_000}, bytes(damaged), cuts)


@given(st.lists(MQTT_PACKETS, max_size=8), cuts_strategy)
def test_closes_only_is_the_full_decode_filtered_on_mqtt_streams(packets: List[Any], cuts: List[int]) -> None:
    data = b"".join(mqtt_py.encode_mqtt_packet(packet) for packet in packets)
    check_closes_only("MqttStream", {}, data, cuts)


@given(ws_streams(masked=False), cuts_strategy)
def test_spans_start_where_the_value_starts(generated: Any, cuts: List[int]) -> None:
    data, expected = generated
    for cls in stream_classes("WebSocketStream"):
        values, error = run_spans(lambda: cls(), data, cuts)
        assert error is None
        assert [(end, value) for _, end, value in values] == expected
        for start, end, value in values:
            # The span alone decodes to the value (after the control frames inside a fragmented message).
            assert cls().feed(data[start:end])[-1] == value


def test_spans_of_a_fragmented_message_and_a_close(websocket: ModuleType) -> None:
    data = ws_bytes(WebSocketFrame(WebSocketOpcode.BINARY, b"ab", False),
                    WebSocketFrame(WebSocketOpcode.PING, b"p"),
                    WebSocketFrame(WebSocketOpcode.CONTINUATION, b"cd"),
                    WebSocketClose(1000, "bye"))
    values = websocket.WebSocketStream().feed(data, spans=True)
    assert [(start, end) for start, end, _ in values] == [(4, 7), (0, 11), (11, 18)]
    closes = websocket.WebSocketStream(closes_only=True).feed(data, spans=True)
    assert closes == [values[-1]]


def test_spans_of_mqtt_closes(mqtt: ModuleType) -> None:
    data = b"\xc0\x00" + b"\xe0\x00" + b"\xe0\x01\x8e"
    assert [(s, e) for s, e, _ in mqtt.MqttStream(version=5, closes_only=True).feed(data, spans=True)] == \
        [(2, 4), (4, 7)]


def test_closes_only_applies_from_the_next_message(websocket: ModuleType) -> None:
    first = ws_bytes(WebSocketFrame(WebSocketOpcode.BINARY, b"ab", False))
    rest = ws_bytes(WebSocketFrame(WebSocketOpcode.CONTINUATION, b"cd"), WebSocketFrame(WebSocketOpcode.TEXT, b"x"))
    ws = websocket.WebSocketStream()
    assert ws.feed(first) == []
    ws.closes_only = True
    assert ws.feed(rest) == [WebSocketMessage(WebSocketOpcode.BINARY, b"abcd")]  # started before the change
    ws.closes_only = False
    assert ws.feed(rest[4:]) == [WebSocketMessage(WebSocketOpcode.TEXT, b"x")]


def test_offsets_and_spans_are_exclusive(mqtt: ModuleType) -> None:
    with pytest.raises(ValueError, match="exclusive"):
        mqtt.MqttStream().feed(b"", offsets=True, spans=True)
