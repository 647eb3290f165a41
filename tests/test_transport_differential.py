"""The two WebSocket and the two MQTT backends agree: same value and offset, or same error, on any input."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closecodec.errors import DecodeError, EncodeError
from closecodec.frames import (
    MQTT_PACKET_PROPERTIES,
    MQTT_PROPERTY_TYPES,
    MqttConnack,
    MqttDisconnect,
    MqttOtherPacket,
    MqttPacketType,
    WebSocketClose,
    WebSocketFrame,
    WebSocketOpcode,
)

from helpers import backend_module, capture_frames


def outcome(call: Callable[[], Any]) -> Any:
    """A comparable summary of a call: its result, or its error with offset and answer code."""
    try:
        return ("ok", call())
    except (DecodeError, EncodeError) as error:
        return (
            "error", type(error), str(error), getattr(error, "offset", None),
            getattr(error, "close_code", None), getattr(error, "reason_code", None),
        )


def assert_agree(name: str, *args: Any, **options: Any) -> Any:
    room = "mqtt" if "_mqtt_" in name else "websocket"
    compiled, pure = backend_module(room, "c"), backend_module(room, "py")
    result_c = outcome(lambda: getattr(compiled, name)(*args, **options))
    result_py = outcome(lambda: getattr(pure, name)(*args, **options))
    assert result_c == result_py
    return result_c


# Bytes biased towards frame and packet edges: header bytes, length markers, property ids.
EDGY = st.lists(
    st.one_of(
        st.integers(0, 255),
        st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x7E, 0x7F, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8A, 0xE0, 0x20,
                         0xFE, 0xFF, 0x1F, 0x26, 0x11, 0x1C, 0x21, 0x24, 0xC3, 0xED]),
    ),
    max_size=48,
).map(bytes)
WS_OPTIONS = st.fixed_dictionaries(
    {}, optional={"expect_masked": st.sampled_from([None, True, False]), "rsv_allowed": st.integers(0, 7),
                  "minimal_length": st.booleans(), "max_payload": st.sampled_from([None, 0, 5, 125, 2**20])},
)
MQTT_OPTIONS = st.fixed_dictionaries(
    {}, optional={"version": st.sampled_from([None, 4, 5]), "strict": st.booleans(),
                  "max_packet_size": st.sampled_from([None, 2, 10, 1000])},
)
DECODERS = ["decode_ws_frame", "decode_ws_header", "decode_mqtt_packet", "decode_mqtt_varint"]


@pytest.mark.parametrize("name", DECODERS)
@given(data=st.one_of(st.binary(max_size=48), EDGY), offset=st.integers(0, 3))
def test_decoders_agree_on_arbitrary_bytes(name, data, offset):
    assert_agree(name, data, min(offset, len(data)))


@given(data=EDGY, options=WS_OPTIONS)
def test_ws_options_agree(data, options):
    assert_agree("decode_ws_frame", data, **options)
    assert_agree("decode_ws_header", data, **options)


@given(data=EDGY, options=MQTT_OPTIONS)
def test_mqtt_options_agree(data, options):
    assert_agree("decode_mqtt_packet", data, **options)


KEYS = st.one_of(st.none(), st.binary(min_size=4, max_size=4))
CLOSES = st.builds(
    WebSocketClose,
    st.integers(0, 65535),
    st.text(max_size=70),
    KEYS,
) | st.builds(WebSocketClose, st.none(), st.just(""), KEYS)
DATA_FRAMES = st.builds(
    WebSocketFrame,
    st.sampled_from(list(WebSocketOpcode.__members__.values())).filter(lambda op: op != 8),
    st.binary(max_size=300),
    st.booleans(),
    st.integers(0, 7),
    KEYS,
)


def property_values(packet: MqttPacketType):
    strategies = {
        "byte": st.integers(0, 2), "u16": st.integers(0, 0xFFFF), "u32": st.integers(0, 0xFFFFFFFF),
        "utf8": st.text(max_size=12), "binary": st.binary(max_size=8), "pair": st.tuples(st.text(max_size=5), st.text(max_size=5)),
    }
    ids = sorted(MQTT_PACKET_PROPERTIES[packet])
    return st.lists(st.sampled_from(ids).flatmap(lambda pid: st.tuples(st.just(pid), strategies[MQTT_PROPERTY_TYPES[pid]])), max_size=5)


DISCONNECTS = st.builds(MqttDisconnect, st.integers(0, 255), property_values(MqttPacketType.DISCONNECT)) | st.builds(
    MqttDisconnect, st.just(0), st.just(()), st.sampled_from([4, None])
)
CONNACKS = st.builds(MqttConnack, st.integers(0, 255), st.booleans(), property_values(MqttPacketType.CONNACK)) | st.builds(
    MqttConnack, st.integers(0, 7), st.booleans(), st.just(()), st.just(4)
)
OTHERS = st.builds(MqttOtherPacket, st.sampled_from([t for t in MqttPacketType if t not in (2, 14)]), st.integers(0, 15), st.binary(max_size=200))


@given(frame=CLOSES | DATA_FRAMES)
def test_ws_encoders_agree_and_round_trip(websocket_both, frame):
    result = assert_agree("encode_ws_frame", frame)
    if result[0] == "ok":
        data = result[1]
        for module in websocket_both:
            # Decoded by either backend, with the options the frame needs.
            assert module.decode_ws_frame(data, rsv_allowed=7) == (frame, len(data))


@given(packet=DISCONNECTS | CONNACKS | OTHERS)
def test_mqtt_encoders_agree_and_round_trip(mqtt_both, packet):
    result = assert_agree("encode_mqtt_packet", packet)
    if result[0] == "ok":
        data = result[1]
        for module in mqtt_both:
            decoded, end = module.decode_mqtt_packet(data, version=getattr(packet, "version", None))
            assert end == len(data)
            if type(packet) is MqttDisconnect and packet.version == 5 and not packet.properties and packet.reason_code == 0:
                assert decoded == MqttDisconnect(0, (), 5)
            else:
                assert decoded == packet


VALID = [bytes.fromhex(row["tcp_payload_hex"]) for row in capture_frames("websocket") + capture_frames("mqtt")]


@pytest.mark.parametrize("data", VALID, ids=lambda data: data[:6].hex())
@given(position=st.integers(0, 200), value=st.integers(1, 255))
def test_truncations_and_corruptions_agree(data, position, value):
    name = "decode_ws_frame" if data[0] & 0x0F == 8 and data[0] & 0xF0 != 0xE0 else "decode_mqtt_packet"
    cut = position % (len(data) + 1)
    assert_agree(name, data[:cut])
    corrupt = bytearray(data)
    corrupt[position % len(data)] ^= value
    assert_agree(name, bytes(corrupt))


@given(data=st.binary(max_size=2000), key=st.binary(min_size=4, max_size=4), phase=st.integers(0, 3))
def test_unmask_agrees(websocket_both, data, key, phase):
    compiled, pure = websocket_both
    assert compiled.unmask_ws_payload(data, key, phase) == pure.unmask_ws_payload(data, key, phase)


def _refusal(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", call())
    except (TypeError, ValueError) as error:
        return (type(error), str(error))


BAD_WS_OPTIONS = [
    {"rsv_allowed": 8, "max_payload": -1},
    {"rsv_allowed": "4", "max_payload": 1.5},
    {"rsv_allowed": 8},
    {"max_payload": -1},
]
BAD_MQTT_OPTIONS = [{"version": 3, "max_packet_size": -1}, {"version": 3}, {"max_packet_size": "1"}]


@pytest.mark.parametrize("options", BAD_WS_OPTIONS, ids=str)
@pytest.mark.parametrize("name", ["decode_ws_frame", "decode_ws_header"])
def test_bad_websocket_options_are_refused_alike(websocket_both, name, options):
    # With more than one bad option, both backends name the same one first.
    compiled, pure = (getattr(module, name) for module in websocket_both)
    refused = _refusal(lambda: compiled(b"\x88\x00", **options))
    assert refused == _refusal(lambda: pure(b"\x88\x00", **options))
    assert refused[0] is ValueError


@pytest.mark.parametrize("options", BAD_MQTT_OPTIONS, ids=str)
def test_bad_mqtt_options_are_refused_alike(mqtt_both, options):
    compiled, pure = (module.decode_mqtt_packet for module in mqtt_both)
    refused = _refusal(lambda: compiled(b"\xe0\x00", **options))
    assert refused == _refusal(lambda: pure(b"\xe0\x00", **options))
    assert refused[0] is ValueError
