"""MQTT DISCONNECT and CONNACK (MQTT 5.0 §3.2, §3.14; 3.1.1), and the CONNECT that identifies MQTT, once per backend."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closecodec import cli
from closecodec.errors import EncodeError, IncompleteError, MqttPacketError
from closecodec.frames import MqttConnack, MqttDisconnect, MqttOtherPacket, MqttPacketType, MqttPropertyId as P
from closecodec.reasons import MqttConnackReturnCode, MqttReasonCode

from helpers import capture_frames

MQTT_CAPTURE = capture_frames("mqtt")


def string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


@pytest.mark.parametrize("row", MQTT_CAPTURE, ids=lambda row: f"{row['capture']}:{row['frame']}")
def test_capture_disconnects_decode_as_tshark_did(mqtt, row):
    data = bytes.fromhex(row["tcp_payload_hex"])
    packet, end = mqtt.decode_mqtt_packet(data, version=row["mqtt_version"])
    assert end == len(data) == 2 + row["mqtt_remaining_length"]
    assert type(packet) is MqttDisconnect and packet.version == row["mqtt_version"]
    if row["mqtt_version"] == 5:
        assert packet.reason_code == row["mqtt_reason_code_effective"]
    assert packet.reason_string == row["mqtt_reason_string"]
    assert packet.session_expiry_interval == row["mqtt_session_expiry_interval"]
    assert [list(pair) for pair in packet.user_properties] == row["mqtt_user_properties"]
    assert [(int(pid), value if pid != P.USER_PROPERTY else value[1]) for pid, value in packet.properties] == [
        (p["id"], p["value"]) for p in row["mqtt_properties"]
    ]
    # Without the version: the same, except that e0 00 cannot say which it is.
    guessed, _ = mqtt.decode_mqtt_packet(data)
    assert guessed.version == (None if data == b"\xe0\x00" else 5)
    # Re-encoded in the shortest form: identical except "e0 01 00", which becomes "e0 00".
    assert mqtt.encode_mqtt_packet(packet) == (b"\xe0\x00" if data == b"\xe0\x01\x00" else data)


def test_capture_covers_what_it_should():
    assert {row["mqtt_reason_code"] for row in MQTT_CAPTURE} >= {None, 0x00, 0x04, 0x81, 0x82, 0x8E, 0x95}
    assert {row["mqtt_version"] for row in MQTT_CAPTURE} == {4, 5}


@pytest.mark.parametrize(
    "value, hex_bytes",
    [(0, "00"), (127, "7f"), (128, "8001"), (16383, "ff7f"), (16384, "808001"), (268_435_455, "ffffff7f")],
)
def test_variable_byte_integer(mqtt, value, hex_bytes):
    assert mqtt.encode_mqtt_varint(value).hex() == hex_bytes
    assert mqtt.decode_mqtt_varint(bytes.fromhex(hex_bytes) + b"\x01") == (value, len(hex_bytes) // 2)


@pytest.mark.parametrize("hex_bytes, offset, text", [("ffffffff", 3, "longer than 4"), ("8000", 1, "shortest"), ("ff8000", 2, "shortest")])
def test_variable_byte_integer_malformed(mqtt, hex_bytes, offset, text):
    with pytest.raises(MqttPacketError, match=text) as caught:
        mqtt.decode_mqtt_varint(bytes.fromhex(hex_bytes))
    assert (caught.value.offset, caught.value.reason_code) == (offset, 0x81)


def test_variable_byte_integer_limits(mqtt):
    with pytest.raises(IncompleteError):
        mqtt.decode_mqtt_varint(b"\xff\xff")
    for value in (-1, 268_435_456, "1"):
        with pytest.raises(EncodeError):
            mqtt.encode_mqtt_varint(value)


def test_short_forms(mqtt):
    assert mqtt.decode_mqtt_packet(b"\xe0\x00") == (MqttDisconnect(0, (), None), 2)
    assert mqtt.decode_mqtt_packet(b"\xe0\x00", version=4) == (MqttDisconnect(0, (), 4), 2)
    assert mqtt.decode_mqtt_packet(b"\xe0\x00", version=5) == (MqttDisconnect(0, (), 5), 2)
    assert mqtt.decode_mqtt_packet(b"\xe0\x01\x8e") == (MqttDisconnect(0x8E), 3)
    assert mqtt.decode_mqtt_packet(b"\xe0\x02\x8e\x00") == (MqttDisconnect(0x8E), 4)
    assert mqtt.encode_mqtt_packet(MqttDisconnect(0x8E)) == b"\xe0\x01\x8e"
    assert mqtt.encode_mqtt_packet(MqttDisconnect()) == b"\xe0\x00"
    assert mqtt.encode_mqtt_packet(MqttDisconnect(version=4)) == b"\xe0\x00"
    with pytest.raises(MqttPacketError, match="3.1.1 DISCONNECT has no body"):
        mqtt.decode_mqtt_packet(b"\xe0\x01\x00", version=4)


def test_disconnect_with_every_property(mqtt):
    packet = MqttDisconnect(
        MqttReasonCode.SERVER_MOVED,
        [(P.SESSION_EXPIRY_INTERVAL, 30), (P.REASON_STRING, "moved ✓"), (P.USER_PROPERTY, ("k", "v")),
         (P.USER_PROPERTY, ("k", "w")), (P.SERVER_REFERENCE, "other:1883")],
    )
    data = mqtt.encode_mqtt_packet(packet)
    assert mqtt.decode_mqtt_packet(data) == (packet, len(data))
    assert packet.user_properties == (("k", "v"), ("k", "w"))
    assert (packet.server_reference, packet.session_expiry_interval) == ("other:1883", 30)


def test_spec_examples(mqtt):
    taken = b"\xe0\x17\x8e\x15\x1f" + string("Session taken over")
    assert mqtt.decode_mqtt_packet(taken)[0] == MqttDisconnect(0x8E, [(P.REASON_STRING, "Session taken over")])
    going = b"\xe0\x1d\x04\x1b\x1f" + string("client going away") + b"\x26" + string("k") + string("v")
    packet, _ = mqtt.decode_mqtt_packet(going)
    assert packet.reason_code == MqttReasonCode.DISCONNECT_WITH_WILL_MESSAGE
    assert packet.reason_string == "client going away" and packet.user_properties == (("k", "v"),)


def props(body: bytes) -> bytes:
    return len(body).to_bytes(1, "big") + body


@pytest.mark.parametrize(
    "body, offset, reason_code, text",
    [
        # MQTT 5 §2.2.2.2: a property the packet may not carry is malformed.
        (b"\x00" + props(b"\x21\x00\x01"), 4, 0x81, "not allowed in DISCONNECT"),
        (b"\x00" + props(b"\x7f\x00"), 4, 0x81, "unknown property identifier 0x7F"),
        (b"\x00" + props(b"\x80\x00"), 5, 0x81, "property identifier is not in its shortest form"),
        (b"\x00" + props(b"\x80"), 4, 0x81, "property identifier runs past the end of the properties"),
        # The Property Length itself (MQTT 5 §1.5.5, §2.2.2.1).
        (b"\x00\x80\x00", 4, 0x81, "Property Length is not in its shortest form"),
        (b"\x00\x80\x80\x80\x80\x01", 6, 0x81, "Property Length is longer than 4 bytes"),
        (b"\x00\x80", 3, 0x81, "Property Length runs past the end of the packet"),
        (b"\x00" + props(b"\x1f\x00\x05ab"), 5, 0x81, "runs past the end"),
        (b"\x00" + props(b"\x1f\x00\x02\xc3\x28"), 7, 0x81, "invalid UTF-8"),
        (b"\x00" + props(b"\x1f\x00\x03a\x00b"), 8, 0x81, "U\\+0000"),
        (b"\x00\x05\x1f\x00\x00", 3, 0x81, "run past the end of the packet"),
        (b"\x00" + props(b"\x1f\x00\x00") + b"x", 7, 0x81, "1 bytes after the end"),
        # ... and a repeat of a single-use one a protocol error (MQTT 5 §3.14.2.2).
        (b"\x00" + props(b"\x1f\x00\x00\x1f\x00\x00"), 7, 0x82, "appears more than once"),
        (b"\x00" + props(b"\x11\x00\x00\x00\x01\x11\x00\x00\x00\x02"), 9, 0x82, "appears more than once"),
    ],
)
def test_malformed_and_protocol_errors(mqtt, body, offset, reason_code, text):
    data = b"\xe0" + bytes((len(body),)) + body
    with pytest.raises(MqttPacketError, match=text) as caught:
        mqtt.decode_mqtt_packet(data)
    assert (caught.value.offset, caught.value.reason_code) == (offset, reason_code)


def test_malformed_wins_over_an_earlier_protocol_error(mqtt):
    # A repeated Reason String (0x82) followed by an unknown property (0x81): the
    # packet cannot be parsed at all, so it is malformed (MQTT 5 §4.13).
    body = b"\x00" + props(b"\x1f\x00\x00\x1f\x00\x00\x7f")
    with pytest.raises(MqttPacketError) as caught:
        mqtt.decode_mqtt_packet(b"\xe0" + bytes((len(body),)) + body)
    assert caught.value.reason_code == 0x81


def test_fixed_header_errors(mqtt):
    for data, offset, text in ((b"\xe2\x00", 0, "flags"), (b"\x21\x02\x00\x00", 0, "flags"), (b"\x00\x00", 0, "reserved")):
        with pytest.raises(MqttPacketError, match=text) as caught:
            mqtt.decode_mqtt_packet(data)
        assert (caught.value.offset, caught.value.reason_code) == (offset, 0x81)
    for data in (b"", b"\xe0", b"\xe0\x80", b"\xe0\x02\x8e"):
        with pytest.raises(IncompleteError):
            mqtt.decode_mqtt_packet(data)


def test_packet_size_limit(mqtt):
    with pytest.raises(MqttPacketError, match="over the 100-byte limit") as caught:
        mqtt.decode_mqtt_packet(b"\x30\xff\xff\xff\x7f", max_packet_size=100)
    assert caught.value.reason_code == 0x95
    with pytest.raises(IncompleteError):  # 256 MiB claimed, nothing allocated
        mqtt.decode_mqtt_packet(b"\x30\xff\xff\xff\x7f")


def test_unknown_reason_codes_decode_unless_strict(mqtt):
    for code in (0x84, 0x01, 0x70):
        data = bytes((0xE0, 1, code))
        assert mqtt.decode_mqtt_packet(data)[0].reason_code == code
        with pytest.raises(MqttPacketError, match="not a DISCONNECT reason code") as caught:
            mqtt.decode_mqtt_packet(data, strict=True)
        assert caught.value.reason_code == 0x82
    assert not mqtt.decode_mqtt_packet(b"\xe0\x01\x70")[0].reason_code.known
    assert mqtt.decode_mqtt_packet(b"\xe0\x01\x8c", strict=True)[0].reason_code == 0x8C
    with pytest.raises(EncodeError, match="may not be sent in a DISCONNECT"):
        mqtt.encode_mqtt_packet(MqttDisconnect(0x84))


def test_connack_3_1_1(mqtt):
    for code in range(6):
        data = bytes((0x20, 2, 0, code))
        packet, _ = mqtt.decode_mqtt_packet(data)
        assert packet == MqttConnack(code, False, (), 4) and type(packet.reason_code) is MqttConnackReturnCode
        assert mqtt.encode_mqtt_packet(packet) == data
    assert mqtt.decode_mqtt_packet(b"\x20\x02\x01\x00")[0].session_present
    assert not mqtt.decode_mqtt_packet(b"\x20\x02\x00\x09")[0].reason_code.known
    with pytest.raises(MqttPacketError):
        mqtt.decode_mqtt_packet(b"\x20\x02\x00\x09", strict=True)
    with pytest.raises(MqttPacketError, match="too short"):
        mqtt.decode_mqtt_packet(b"\x20\x02\x00\x00", version=5)
    with pytest.raises(EncodeError, match="reserved"):
        mqtt.encode_mqtt_packet(MqttConnack(9, version=4))


def test_connack_5(mqtt):
    packet = MqttConnack(
        0, True,
        [(P.RECEIVE_MAXIMUM, 10), (P.MAXIMUM_QOS, 1), (P.RETAIN_AVAILABLE, 0), (P.MAXIMUM_PACKET_SIZE, 2048),
         (P.ASSIGNED_CLIENT_IDENTIFIER, "auto-1"), (P.SERVER_KEEP_ALIVE, 30), (P.AUTHENTICATION_DATA, b"\x00\x01"),
         (P.USER_PROPERTY, ("a", "b"))],
    )
    data = mqtt.encode_mqtt_packet(packet)
    assert mqtt.decode_mqtt_packet(data) == (packet, len(data))
    assert mqtt.decode_mqtt_packet(b"\x20\x03\x00\x87\x00")[0] == MqttConnack(MqttReasonCode.NOT_AUTHORIZED)
    cases = [
        (b"\x01\x87\x00", "Session Present is set on a refusal"),
        (b"\x00\x00" + props(b"\x24\x02"), "not 0 or 1"),
        (b"\x00\x00" + props(b"\x21\x00\x00"), "is 0"),
        (b"\x00\x00" + props(b"\x12\x00\x00\x12\x00\x00"), "more than once"),
    ]
    for body, text in cases:
        with pytest.raises(MqttPacketError, match=text) as caught:
            mqtt.decode_mqtt_packet(b"\x20" + bytes((len(body),)) + body)
        assert caught.value.reason_code == 0x82
    with pytest.raises(MqttPacketError, match="reserved bits") as caught:
        mqtt.decode_mqtt_packet(b"\x20\x03\x02\x00\x00")
    assert caught.value.reason_code == 0x81
    with pytest.raises(MqttPacketError, match="not allowed in CONNACK"):
        mqtt.decode_mqtt_packet(b"\x20\x04\x00\x00" + props(b"\x23"))
    for bad in (MqttConnack(0x04), MqttConnack(0x87, True), MqttConnack(0, False, [(P.MAXIMUM_QOS, 2)]),
                MqttConnack(0, False, [(P.REASON_STRING, "a"), (P.REASON_STRING, "b")])):
        with pytest.raises(EncodeError):
            mqtt.encode_mqtt_packet(bad)


def test_other_packets_are_kept_whole(mqtt):
    publish = b"\x32\x05\x00\x01t\x00\x07"
    assert mqtt.decode_mqtt_packet(publish + b"\xc0\x00") == (MqttOtherPacket(MqttPacketType.PUBLISH, 2, publish[2:]), 7)
    assert mqtt.decode_mqtt_packet(publish + b"\xc0\x00", 7) == (MqttOtherPacket(12), 9)
    assert mqtt.encode_mqtt_packet(MqttOtherPacket(3, 2, publish[2:])) == publish


def test_encoder_refuses_what_may_not_be_sent(mqtt):
    bad = [
        MqttDisconnect(0x8E, [(P.RECEIVE_MAXIMUM, 5)]),
        MqttDisconnect(0x8E, [(P.REASON_STRING, "a"), (P.REASON_STRING, "b")]),
        MqttDisconnect(0x8E, [(P.REASON_STRING, "nul\x00")]),
        MqttDisconnect(0x8E, [(P.REASON_STRING, "\udc80")]),
        MqttDisconnect(0x8E, [(P.REASON_STRING, "x" * 65536)]),
        "e000",
    ]
    for packet in bad:
        with pytest.raises(EncodeError):
            mqtt.encode_mqtt_packet(packet)


def test_packet_values():
    packet = MqttDisconnect(0x8E, [(0x1F, "x")])
    assert packet == MqttDisconnect(MqttReasonCode.SESSION_TAKEN_OVER, [(P.REASON_STRING, "x")])
    assert hash(packet) == hash(MqttDisconnect(0x8E, [(0x1F, "x")]))
    assert "SESSION_TAKEN_OVER" in repr(packet) and "REASON_STRING" in repr(packet)
    with pytest.raises(AttributeError):
        packet.version = 4
    with pytest.raises(ValueError):
        MqttDisconnect(0x8E, version=4)
    with pytest.raises(ValueError):
        MqttDisconnect(0, [(0x11, 2**32)])
    with pytest.raises(TypeError):
        MqttDisconnect(0, [(0x1F, b"bytes")])
    with pytest.raises(ValueError):
        MqttDisconnect(0, [(0x05, 1)])
    with pytest.raises(ValueError):
        MqttOtherPacket(MqttPacketType.DISCONNECT)


def run_cli(*argv):
    out = io.StringIO()
    status = cli.main(list(argv), out=out)
    return status, [json.loads(line) if line[0] == "{" else line for line in out.getvalue().splitlines()]


def test_cli_decode_and_encode():
    taken = (b"\xe0\x17\x8e\x15\x1f" + string("Session taken over")).hex()
    status, lines = run_cli("decode", "--as", "mqtt-packet", "e000", taken, "e0018e00", "e00184")
    assert status == 1
    assert lines[0] == {"type": "DISCONNECT", "type_code": 14, "version": None,
                        "reason_code": {"code": 0, "name": "NORMAL_DISCONNECTION"}, "properties": []}
    assert lines[1]["reason_code"] == {"code": 0x8E, "name": "SESSION_TAKEN_OVER"}
    assert lines[1]["properties"] == [{"id": 31, "name": "REASON_STRING", "value": "Session taken over"}]
    assert lines[2] == {"class": "MalformedError", "message": "1 bytes after the end of the value", "offset": 3,
                        "reason_code": None}
    assert lines[3]["reason_code"]["code"] == 0x84
    status, lines = run_cli("decode", "--as", "mqtt-packet", "--strict", "e00184")
    assert lines[0]["class"] == "MqttPacketError" and lines[0]["reason_code"] == 0x82
    status, lines = run_cli("encode", "--as", "mqtt-packet", json.dumps(run_cli("decode", "--as", "mqtt-packet", taken)[1][0]))
    assert (status, lines) == (0, [taken])


# -- MQTT CONNECT (recognition on any port) -------------------------------------------------


def mqtt_connect(level: int, client_id: bytes, properties: bytes = b"\x00", name: bytes = b"") -> bytes:
    """A CONNECT (MQTT 5.0 §3.1; 3.1.1 §3.1; 3.1 with MQIsdp): flags 0x02, keep alive 60."""
    name = name or (b"MQIsdp" if level == 3 else b"MQTT")
    body = (len(name).to_bytes(2, "big") + name + bytes([level, 0x02, 0x00, 0x3C])
            + (properties if level == 5 else b"") + len(client_id).to_bytes(2, "big") + client_id)
    assert len(body) < 128
    return bytes([0x10, len(body)]) + body


@pytest.mark.parametrize("level", [3, 4, 5])
def test_mqtt_connect_levels_and_client_ids(mqtt, level):
    packet = mqtt_connect(level, b"sensor-\xc3\xa9")
    assert mqtt.parse_mqtt_connect(packet) == (level, "sensor-\u00e9")
    assert mqtt.parse_mqtt_connect(packet + b"\x30\x00") == (level, "sensor-\u00e9")  # the next packet
    assert mqtt.parse_mqtt_connect(bytearray(packet)) == mqtt.parse_mqtt_connect(memoryview(packet))
    # The header and level are enough to say it is a CONNECT; the client id needs the whole packet.
    assert mqtt.parse_mqtt_connect(packet[:-1]) == (level, None)


def test_mqtt_connect_properties_come_before_the_client_id(mqtt):
    properties = b"\x05\x11\x00\x00\x00\x3c"  # Session Expiry Interval, 60
    assert mqtt.parse_mqtt_connect(mqtt_connect(5, b"c1", properties)) == (5, "c1")
    # Properties longer than the packet, or a length of more than four bytes or not in its shortest
    # form: no client id.
    assert mqtt.parse_mqtt_connect(mqtt_connect(5, b"c1", b"\x7f")) == (5, None)
    assert mqtt.parse_mqtt_connect(mqtt_connect(5, b"c1", b"\x80\x80\x80\x80\x00")) == (5, None)
    assert mqtt.parse_mqtt_connect(mqtt_connect(5, b"c1", b"\x80\x00")) == (5, None)


@pytest.mark.parametrize("data, expected", [
    (b"", None), (b"\x10", None), (b"\x10\x80", None), (b"\x10\x0c\x00", None), (b"\x10\x0c\x00\x04MQ", None),
    (b"\x20\x02\x00\x00", False),  # a CONNACK
    (b"GET / HTTP/1.1\r\n", False),
    (b"\x10\x80\x80\x80\x80\x01", False),  # Remaining Length over four bytes
    (b"\x10\x8c\x00\x00\x04MQTT\x04", False),  # Remaining Length not in its shortest form
    (b"\x10\x0c\x00\x05MQTTX\x04", False),  # a name of five bytes
    (b"\x10\x0c\x00\x04MQTT\x03", False),  # MQTT with level 3
    (b"\x10\x0c\x00\x06MQIsdp\x04", False),  # MQIsdp with level 4
    (b"\x10\x0c\x00\x04mqtt\x04", False),
])
def test_mqtt_connect_undecided_or_not_a_connect(mqtt, data, expected):
    assert mqtt.parse_mqtt_connect(data) is expected


def test_mqtt_connect_client_id_must_be_utf8_and_inside_the_packet(mqtt):
    assert mqtt.parse_mqtt_connect(mqtt_connect(4, b"\xff\xfe")) == (4, None)
    packet = bytearray(mqtt_connect(4, b"abc"))
    packet[1] -= 1  # the client id's last byte is past the packet's end
    assert mqtt.parse_mqtt_connect(bytes(packet)) == (4, None)


def test_mqtt_connect_needs_bytes(mqtt):
    with pytest.raises(TypeError):
        mqtt.parse_mqtt_connect("\x10\x00")


CONNECT_BYTES = st.builds(
    lambda level, client_id, properties, cut, noise: (mqtt_connect(level, client_id, properties) + noise)[:cut],
    st.sampled_from([3, 4, 5]), st.binary(max_size=12), st.sampled_from([b"\x00", b"\x7f", b"\x80\x00", b"\x02\x01\x00"]),
    st.integers(0, 60), st.binary(max_size=4))


@given(data=st.one_of(st.binary(max_size=40), CONNECT_BYTES, st.binary(max_size=30).map(lambda b: b"\x10" + b)))
def test_backends_agree_on_mqtt_connects(mqtt_both, data):
    compiled, pure = mqtt_both
    assert compiled.parse_mqtt_connect(data) == pure.parse_mqtt_connect(data)
