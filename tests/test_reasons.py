"""closecodec.reasons: the reason tables, unknown values, numberings and mappings.

The expected tables below are transcribed from the specs (docs/diffusion.md §1, §5,
§7; RFC 6455 §7.4 and the IANA close-code registry; MQTT 5.0 §2.4, §3.14.2.1, §3.2.2.2), independently of the
module, so a wrong entry in either shows up as a failure.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closecodec import reasons
from closecodec.reasons import (
    CLOSE_REASON_BY_BYTE,
    GATEWAY_MAPPINGS,
    ClientCloseReason,
    CloseReason,
    GatewayMapping,
    MqttConnackReturnCode,
    MqttReasonCode,
    ReasonNumbering,
    ResponseCode,
    WebSocketCloseCode,
    close_reason_from_byte,
    close_reason_from_mqtt,
    close_reason_from_websocket,
    close_reason_to_byte,
    gateway_codes,
    handshake_close_reason,
    mqtt_disconnect_reason_allowed,
    reason_table,
    websocket_close_code_allowed_on_wire,
)

WIRE = ReasonNumbering.WIRE
PUBLISHED = ReasonNumbering.PUBLISHED

# docs/diffusion.md §1.1
CLIENT_CLOSE_REASONS = {
    0: "CONNECTION_LOST",
    1: "IO_EXCEPTION",
    2: "CLIENT_UNRESPONSIVE",
    3: "MESSAGE_QUEUE_LIMIT_REACHED",
    4: "CLOSED_BY_CLIENT",
    5: "MESSAGE_TOO_LARGE",
    6: "INTERNAL_ERROR",
    7: "INVALID_INBOUND_MESSAGE",
    8: "ABORTED",
    9: "LOST_MESSAGES",
    10: "SERVER_CLOSING",
    11: "CLOSED_BY_CONTROLLER",
    12: "FAILED_OVER",
    13: "EXPIRED",
    14: "REVOKED",
    15: "SESSION_TAKEN_OVER",
}
PUBLISHED_NUMBERS = {
    **{value: CLIENT_CLOSE_REASONS[value] for value in range(10)},
    10: "CLOSED_BY_CONTROLLER",
    11: "FAILED_OVER",
    12: "SESSION_TAKEN_OVER",
}

# docs/diffusion.md §1.2: id -> (name, can reconnect)
CLIENT_REASONS = {
    0: ("CLOSED_BY_CLIENT", False),
    1: ("CLOSED_BY_SERVER", False),
    2: ("RECONNECT_ABORTED", False),
    3: ("CONNECTION_TIMEOUT", False),
    4: ("HANDSHAKE_REJECTED", False),
    5: ("HANDSHAKE_ERROR", False),
    6: ("TRANSPORT_ERROR", True),
    7: ("CONNECTION_ERROR", True),
    8: ("IDLE_CONNECTION", True),
    16: ("LOST_MESSAGES", False),
    17: ("PROTOCOL_VERSION_MISMATCH", False),
    18: ("LICENSE_EXCEEDED", False),
    99: ("ACCESS_DENIED", False),
}

# docs/diffusion.md §5
RESPONSE_CODES = {
    1: "PEER_CONNECTION_FAILED",
    2: "LOOPBACK_DENIED",
    3: "SECONDARY_ACCEPTOR_NOT_FOUND",
    100: "OK",
    102: "DOWNGRADE",
    105: "RECONNECTED",
    106: "RECONNECTED_WITH_MESSAGE_LOSS",
    107: "REVERSE_CONNECTION_ACCEPTED",
    111: "REJECTED",
    113: "LICENSE_EXCEEDED",
    114: "RECONNECTION_UNSUPPORTED",
    115: "CONNECTION_PROTOCOL_ERROR",
    116: "AUTHENTICATION_FAILED",
    117: "UNKNOWN_SESSION",
    118: "RECONNECTION_FAILED_MESSAGE_LOSS",
    119: "REJECTED_SERVER_INITIALISING",
}

# RFC 6455 §7.4.1 and the IANA WebSocket Close Code Number Registry (RFC 6455 §11.7)
WEBSOCKET_CODES = {
    1000: "NORMAL_CLOSURE",
    1001: "GOING_AWAY",
    1002: "PROTOCOL_ERROR",
    1003: "UNSUPPORTED_DATA",
    1004: "RESERVED",
    1005: "NO_STATUS_RECEIVED",
    1006: "ABNORMAL_CLOSURE",
    1007: "INVALID_PAYLOAD_DATA",
    1008: "POLICY_VIOLATION",
    1009: "MESSAGE_TOO_BIG",
    1010: "MANDATORY_EXTENSION",
    1011: "INTERNAL_ERROR",
    1012: "SERVICE_RESTART",
    1013: "TRY_AGAIN_LATER",
    1014: "BAD_GATEWAY",
    1015: "TLS_HANDSHAKE",
}
# The "on the wire" column of §1.4, row by row.
WEBSOCKET_ON_WIRE_ROWS = [
    (range(0, 1000), False),
    (range(1000, 1004), True),
    (range(1004, 1007), False),
    (range(1007, 1015), True),
    (range(1015, 3000), False),
    (range(3000, 4000), True),
    (range(4000, 5000), True),
    (range(5000, 65536), False),
]

# MQTT 5.0 §3.14.2.1: the DISCONNECT reason codes, hex -> who sends it.
MQTT_DISCONNECT_SENDERS = {
    0x00: "both", 0x04: "client", 0x80: "both", 0x81: "both", 0x82: "both", 0x83: "both",
    0x87: "server", 0x89: "server", 0x8B: "server", 0x8D: "server", 0x8E: "server",
    0x8F: "server", 0x90: "both", 0x93: "both", 0x94: "both", 0x95: "both", 0x96: "both",
    0x97: "both", 0x98: "both", 0x99: "both", 0x9A: "server", 0x9B: "server",
    0x9C: "server", 0x9D: "server", 0x9E: "server", 0x9F: "server", 0xA0: "server",
    0xA1: "server", 0xA2: "server",
}
# Not in that table, but accepted on decode (MQTT 5.0 §2.4 lists 0x8C for DISCONNECT; §3.14.2.1 omits it): sent by the server.
MQTT_DISCONNECT_EXTRA = {0x8C: "server"}

# MQTT 5.0 §2.4, Table 2-6: value -> packets it may appear in.
_ACKS = {"CONNACK", "PUBACK", "PUBREC", "SUBACK", "UNSUBACK", "DISCONNECT"}
MQTT_PACKETS = {
    0x00: {"CONNACK", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP", "UNSUBACK", "AUTH", "DISCONNECT", "SUBACK"},
    0x01: {"SUBACK"},
    0x02: {"SUBACK"},
    0x04: {"DISCONNECT"},
    0x10: {"PUBACK", "PUBREC"},
    0x11: {"UNSUBACK"},
    0x18: {"AUTH"},
    0x19: {"AUTH"},
    0x80: _ACKS,
    0x81: {"CONNACK", "DISCONNECT"},
    0x82: {"CONNACK", "DISCONNECT"},
    0x83: _ACKS,
    0x84: {"CONNACK"},
    0x85: {"CONNACK"},
    0x86: {"CONNACK"},
    0x87: _ACKS,
    0x88: {"CONNACK"},
    0x89: {"CONNACK", "DISCONNECT"},
    0x8A: {"CONNACK"},
    0x8B: {"DISCONNECT"},
    0x8C: {"CONNACK", "DISCONNECT"},
    0x8D: {"DISCONNECT"},
    0x8E: {"DISCONNECT"},
    0x8F: {"SUBACK", "UNSUBACK", "DISCONNECT"},
    0x90: {"CONNACK", "PUBACK", "PUBREC", "DISCONNECT"},
    0x91: {"PUBACK", "PUBREC", "SUBACK", "UNSUBACK"},
    0x92: {"PUBREL", "PUBCOMP"},
    0x93: {"DISCONNECT"},
    0x94: {"DISCONNECT"},
    0x95: {"CONNACK", "DISCONNECT"},
    0x96: {"DISCONNECT"},
    0x97: {"CONNACK", "PUBACK", "PUBREC", "SUBACK", "DISCONNECT"},
    0x98: {"DISCONNECT"},
    0x99: {"CONNACK", "PUBACK", "PUBREC", "DISCONNECT"},
    0x9A: {"CONNACK", "DISCONNECT"},
    0x9B: {"CONNACK", "DISCONNECT"},
    0x9C: {"CONNACK", "DISCONNECT"},
    0x9D: {"CONNACK", "DISCONNECT"},
    0x9E: {"SUBACK", "DISCONNECT"},
    0x9F: {"CONNACK", "DISCONNECT"},
    0xA0: {"DISCONNECT"},
    0xA1: {"SUBACK", "DISCONNECT"},
    0xA2: {"SUBACK", "DISCONNECT"},
}
# MQTT 5.0 §3.2.2.2: the CONNACK reason codes.
MQTT_CONNACK_CODES = {
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90,
    0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
}
MQTT311_CONNACK = {
    0: "CONNECTION_ACCEPTED",
    1: "UNACCEPTABLE_PROTOCOL_VERSION",
    2: "IDENTIFIER_REJECTED",
    3: "SERVER_UNAVAILABLE",
    4: "BAD_USER_NAME_OR_PASSWORD",
    5: "NOT_AUTHORIZED",
}

# (enum, range it accepts, values its members have)
OPEN_ENUMS = [
    (ClientCloseReason, 0xFF, set(CLIENT_CLOSE_REASONS)),
    (CloseReason, 0xFF, set(CLIENT_REASONS)),
    (ResponseCode, 0xFF, set(RESPONSE_CODES)),
    (WebSocketCloseCode, 0xFFFF, set(WEBSOCKET_CODES)),
    (MqttReasonCode, 0xFF, set(MQTT_PACKETS)),
    (MqttConnackReturnCode, 0xFF, set(MQTT311_CONNACK)),
]
OPEN_ENUM_IDS = [enum.__name__ for enum, _, _ in OPEN_ENUMS]


# --- the spec tables, row by row ---------------------------------------------


def test_client_close_reason_table() -> None:
    assert {m.value: m.name for m in ClientCloseReason} == CLIENT_CLOSE_REASONS
    for value, name in CLIENT_CLOSE_REASONS.items():
        assert ClientCloseReason[name] == value
        assert ClientCloseReason(value).known


def test_recoverable_is_exactly_0_1_2() -> None:
    assert {int(m) for m in ClientCloseReason if m.recoverable} == {0, 1, 2}
    assert not ClientCloseReason(16).recoverable
    assert not close_reason_from_byte(13, PUBLISHED).recoverable


def test_client_reason_table() -> None:
    assert {m.value: (m.name, m.can_reconnect) for m in CloseReason} == CLIENT_REASONS


def test_response_code_table_and_success() -> None:
    assert {m.value: m.name for m in ResponseCode} == RESPONSE_CODES
    assert {int(m) for m in ResponseCode if m.is_success} == {100, 105, 106}
    assert not ResponseCode(200).is_success


def test_websocket_code_table() -> None:
    assert {m.value: m.name for m in WebSocketCloseCode} == WEBSOCKET_CODES


def test_mqtt_reason_code_table() -> None:
    assert {m.value for m in MqttReasonCode} == set(MQTT_PACKETS)
    assert len(MqttReasonCode) == 43
    for value, packets in MQTT_PACKETS.items():
        assert MqttReasonCode(value).packets == frozenset(packets), hex(value)
    assert {int(m) for m in MqttReasonCode if "CONNACK" in m.packets} == MQTT_CONNACK_CODES
    assert {int(m) for m in MqttReasonCode if m.is_error} == {v for v in MQTT_PACKETS if v >= 0x80}


def test_mqtt_zero_has_one_member_and_its_aliases() -> None:
    assert MqttReasonCode.NORMAL_DISCONNECTION is MqttReasonCode.SUCCESS
    assert MqttReasonCode.GRANTED_QOS_0 is MqttReasonCode.SUCCESS
    assert MqttReasonCode(0).name == "SUCCESS"
    assert MqttReasonCode(0).name_in("DISCONNECT") == "NORMAL_DISCONNECTION"
    assert MqttReasonCode(0).name_in("SUBACK") == "GRANTED_QOS_0"
    assert MqttReasonCode(0).name_in("CONNACK") == "SUCCESS"
    assert MqttReasonCode(0x8E).name_in("DISCONNECT") == "SESSION_TAKEN_OVER"


def test_mqtt311_connack_table() -> None:
    assert {m.value: m.name for m in MqttConnackReturnCode} == MQTT311_CONNACK


@pytest.mark.parametrize("enum, high, values", OPEN_ENUMS, ids=OPEN_ENUM_IDS)
def test_every_member_has_a_one_line_description(enum, high, values) -> None:
    for member in enum:
        assert member.description and "\n" not in member.description, member
    assert enum(_first_unknown(values)).description


# --- unknown values -----------------------------------------------------------


def _first_unknown(values: set) -> int:
    return next(value for value in range(1, 0x100) if value not in values)


@pytest.mark.parametrize("enum, high, values", OPEN_ENUMS, ids=OPEN_ENUM_IDS)
def test_unknown_values_are_cached_pseudo_members(enum, high, values) -> None:
    value = _first_unknown(values)
    pseudo = enum(value)
    assert isinstance(pseudo, enum)
    assert int(pseudo) == pseudo.value == value
    assert pseudo is enum(value)
    assert not pseudo.known
    assert all(member.known for member in enum)
    assert pseudo not in list(enum)
    assert len(enum) == len(values)
    assert pickle.loads(pickle.dumps(pseudo)) is pseudo
    assert copy.deepcopy(pseudo) is pseudo


@pytest.mark.parametrize("enum, high, values", OPEN_ENUMS, ids=OPEN_ENUM_IDS)
def test_out_of_range_still_raises(enum, high, values) -> None:
    for bad in (-1, high + 1, -(2**70), 2**70):
        with pytest.raises(ValueError):
            enum(bad)
    with pytest.raises(ValueError):
        enum("1")


@pytest.mark.parametrize("enum, high, values", OPEN_ENUMS, ids=OPEN_ENUM_IDS)
def test_any_value_in_range_constructs(enum, high, values) -> None:
    @given(st.integers(min_value=0, max_value=high))
    def check(value: int) -> None:
        member = enum(value)
        assert int(member) == value
        assert member.known == (value in values)
        assert member is enum(value)
        assert repr(member) and str(member) and member.description

    check()


def test_unknown_reprs_and_strs() -> None:
    assert ClientCloseReason(16).name == "UNKNOWN"
    assert repr(ClientCloseReason(16)) == "<ClientCloseReason.UNKNOWN: 16>"
    assert str(ClientCloseReason(16)) == "UNKNOWN (16)"
    assert str(ClientCloseReason.CLOSED_BY_CONTROLLER) == "CLOSED_BY_CONTROLLER (11)"
    assert repr(ClientCloseReason.ABORTED) == "<ClientCloseReason.ABORTED: 8>"
    assert str(CloseReason.ACCESS_DENIED) == "ACCESS_DENIED (99)"
    assert str(MqttReasonCode.SESSION_TAKEN_OVER) == "SESSION_TAKEN_OVER (0x8E)"
    assert str(MqttReasonCode(0x05)) == "UNKNOWN (0x05)"
    assert str(WebSocketCloseCode.NORMAL_CLOSURE) == "1000 (normal closure)"
    assert str(WebSocketCloseCode.TLS_HANDSHAKE) == "1015 (TLS handshake)"
    assert str(WebSocketCloseCode(4000)) == "4000 (private use)"


def test_format_is_readable_without_spec_and_numeric_with_one() -> None:
    reason = ClientCloseReason.SESSION_TAKEN_OVER
    assert f"{reason}" == str(reason) == "SESSION_TAKEN_OVER (15)"
    assert f"{reason:d}" == "15"
    assert f"{WebSocketCloseCode.GOING_AWAY:04x}" == "03e9"
    assert "%d" % MqttReasonCode.PACKET_TOO_LARGE == "149"


def test_websocket_pseudo_members_are_named_by_range() -> None:
    expected = {3000: "REGISTERED", 3999: "REGISTERED", 4000: "PRIVATE_USE", 4999: "PRIVATE_USE"}
    for code in (0, 999, 1016, 2999, 5000, 65535):
        expected[code] = "UNKNOWN"
    for code, name in expected.items():
        pseudo = WebSocketCloseCode(code)
        assert (pseudo.name, pseudo.known, int(pseudo)) == (name, False, code)


# --- the two numberings -------------------------------------------------------


def test_wire_numbering() -> None:
    assert close_reason_from_byte(10) is ClientCloseReason.SERVER_CLOSING
    assert close_reason_from_byte(10, WIRE) is ClientCloseReason.SERVER_CLOSING
    for value, name in CLIENT_CLOSE_REASONS.items():
        assert close_reason_from_byte(value).name == name
        assert close_reason_to_byte(ClientCloseReason[name]) == value


def test_published_numbering() -> None:
    for byte, name in PUBLISHED_NUMBERS.items():
        assert close_reason_from_byte(byte, PUBLISHED) is ClientCloseReason[name]
        assert close_reason_to_byte(ClientCloseReason[name], PUBLISHED) == byte
    assert close_reason_from_byte(10, PUBLISHED) is ClientCloseReason.CLOSED_BY_CONTROLLER
    assert close_reason_from_byte(11, PUBLISHED) is ClientCloseReason.FAILED_OVER
    assert close_reason_from_byte(12, PUBLISHED) is ClientCloseReason.SESSION_TAKEN_OVER


@pytest.mark.parametrize("name", ["SERVER_CLOSING", "EXPIRED", "REVOKED"])
def test_published_numbering_refuses_what_it_lacks(name: str) -> None:
    with pytest.raises(ValueError):
        close_reason_to_byte(ClientCloseReason[name], PUBLISHED)


def test_every_member_round_trips_under_each_numbering() -> None:
    for numbering in ReasonNumbering:
        expressible = 0
        for reason in ClientCloseReason:
            try:
                byte = close_reason_to_byte(reason, numbering)
            except ValueError:
                continue
            expressible += 1
            assert close_reason_from_byte(byte, numbering) is reason
        assert expressible == (16 if numbering is WIRE else 13)


@pytest.mark.parametrize("numbering", list(ReasonNumbering))
def test_every_byte_round_trips(numbering: ReasonNumbering) -> None:
    for byte in range(256):
        reason = close_reason_from_byte(byte, numbering)
        assert isinstance(reason, ClientCloseReason)
        assert close_reason_from_byte(byte, numbering) is reason
        assert close_reason_to_byte(reason, numbering) == byte


def test_unknown_published_byte_is_not_the_wire_value() -> None:
    for byte in range(13, 256):
        reason = close_reason_from_byte(byte, PUBLISHED)
        assert not reason.known and reason.name == "UNKNOWN"
        assert reason not in set(ClientCloseReason)
        assert all(reason != wire for wire in range(256))
        assert str(reason) == f"UNKNOWN (published {byte})"
        assert repr(reason) == f"<ClientCloseReason.UNKNOWN: published {byte}>"
        with pytest.raises(ValueError):
            close_reason_to_byte(reason, WIRE)
        assert pickle.loads(pickle.dumps(reason)) is reason
    assert close_reason_from_byte(13, PUBLISHED) != ClientCloseReason.EXPIRED
    # Only close_reason_from_byte makes them: the constructor stays a byte.
    with pytest.raises(ValueError):
        ClientCloseReason(int(close_reason_from_byte(13, PUBLISHED)))


def test_unknown_wire_value_has_no_published_byte() -> None:
    reason = close_reason_from_byte(16)
    assert reason is ClientCloseReason(16) and not reason.known
    with pytest.raises(ValueError):
        close_reason_to_byte(reason, PUBLISHED)
    assert close_reason_to_byte(16) == 16
    assert close_reason_to_byte(3, PUBLISHED) == 3  # plain ints are wire values


@pytest.mark.parametrize("bad", [-1, 256, 1000])
def test_from_byte_refuses_non_bytes(bad: int) -> None:
    for numbering in ReasonNumbering:
        with pytest.raises(ValueError):
            close_reason_from_byte(bad, numbering)


def test_numbering_is_checked() -> None:
    assert close_reason_from_byte(12, "published") is ClientCloseReason.SESSION_TAKEN_OVER
    assert close_reason_to_byte(ClientCloseReason.SESSION_TAKEN_OVER, "published") == 12
    for bad in (None, "PUBLISHED", 1):
        with pytest.raises(ValueError):
            close_reason_from_byte(12, bad)
        with pytest.raises(ValueError):
            close_reason_to_byte(ClientCloseReason.SESSION_TAKEN_OVER, bad)


def test_close_reason_by_byte_matches_the_function() -> None:
    assert set(CLOSE_REASON_BY_BYTE) == set(ReasonNumbering)
    for numbering, table in CLOSE_REASON_BY_BYTE.items():
        assert isinstance(table, tuple) and len(table) == 128
        for byte, reason in enumerate(table):
            assert reason is close_reason_from_byte(byte, numbering)


# --- the handshake ------------------------------------------------------------


def _expected_handshake(code: int):
    """docs/diffusion.md §5 and §7, written out again."""
    if code in (100, 105, 106):
        return None
    return {
        116: CloseReason.ACCESS_DENIED,
        113: CloseReason.LICENSE_EXCEEDED,
        102: CloseReason.PROTOCOL_VERSION_MISMATCH,
    }.get(code, CloseReason.HANDSHAKE_REJECTED)


def test_handshake_every_code() -> None:
    for code in range(256):
        assert handshake_close_reason(0x23, 29, code) == _expected_handshake(code)
        assert handshake_close_reason(0x23, 29, code, expected_version=29) == _expected_handshake(code)


def test_handshake_every_response_code_by_name() -> None:
    rejected = CloseReason.HANDSHAKE_REJECTED
    expected = {
        "OK": None, "RECONNECTED": None, "RECONNECTED_WITH_MESSAGE_LOSS": None,
        "AUTHENTICATION_FAILED": CloseReason.ACCESS_DENIED,
        "LICENSE_EXCEEDED": CloseReason.LICENSE_EXCEEDED,
        "DOWNGRADE": CloseReason.PROTOCOL_VERSION_MISMATCH,
    }
    for code in ResponseCode:
        assert handshake_close_reason(0x23, 25, code) is expected.get(code.name, rejected), code


def test_handshake_observed_with_the_js_client() -> None:
    # docs/diffusion.md §7: 23 1d 74 -> ACCESS_DENIED (99); the client's own version is 29.
    assert handshake_close_reason(*bytes.fromhex("231d74"), expected_version=29) == 99
    assert handshake_close_reason(0x23, 29, 113, expected_version=29) == 18
    assert handshake_close_reason(0x23, 29, 102, expected_version=29) == 17
    assert handshake_close_reason(0x23, 28, 100, expected_version=29) == 17
    assert handshake_close_reason(0x23, 29, 117, expected_version=29) == 4
    assert handshake_close_reason(0x23, 29, 119, expected_version=29) == 4
    # 111: the JS client says HANDSHAKE_ERROR (no table entry); we follow the rule.
    assert handshake_close_reason(0x23, 29, 111) is CloseReason.HANDSHAKE_REJECTED
    assert handshake_close_reason(0x23, 29, 107) is CloseReason.HANDSHAKE_REJECTED


def test_handshake_wrong_protocol_byte_comes_first() -> None:
    for protocol_byte in range(256):
        if protocol_byte == 0x23:
            continue
        for code in (100, 116, 200):
            result = handshake_close_reason(protocol_byte, 1, code, expected_version=29)
            assert result is CloseReason.HANDSHAKE_ERROR


def test_handshake_version_mismatch_only_when_asked() -> None:
    for version in range(256):
        mismatch = handshake_close_reason(0x23, version, 100, expected_version=29)
        assert mismatch is (None if version == 29 else CloseReason.PROTOCOL_VERSION_MISMATCH)
        assert handshake_close_reason(0x23, version, 100) is None


@pytest.mark.parametrize("args", [(0x123, 29, 100), (0x23, -1, 100), (0x23, 29, 256)])
def test_handshake_refuses_non_bytes(args) -> None:
    with pytest.raises(ValueError):
        handshake_close_reason(*args)


# --- WebSocket ----------------------------------------------------------------


def test_websocket_allowed_on_wire_for_every_code() -> None:
    expected = {}
    for codes, allowed in WEBSOCKET_ON_WIRE_ROWS:
        expected.update(dict.fromkeys(codes, allowed))
    assert len(expected) == 65536
    for code, allowed in expected.items():
        assert websocket_close_code_allowed_on_wire(code) is allowed, code
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 3000, 4999, 5000, 65535):
        assert WebSocketCloseCode(code).allowed_on_wire is expected[code]
    for member in WebSocketCloseCode:
        assert member.allowed_on_wire is expected[member.value]
    assert not websocket_close_code_allowed_on_wire(-1)
    assert not websocket_close_code_allowed_on_wire(65536)


def test_websocket_sender() -> None:
    assert WebSocketCloseCode.MANDATORY_EXTENSION.sender == "client"
    assert WebSocketCloseCode.NORMAL_CLOSURE.sender == "both"
    assert WebSocketCloseCode(4000).sender == "both"
    assert WebSocketCloseCode.ABNORMAL_CLOSURE.sender is None
    assert WebSocketCloseCode(5000).sender is None


# --- MQTT DISCONNECT ----------------------------------------------------------


@pytest.mark.parametrize("code, sender", sorted({**MQTT_DISCONNECT_SENDERS, **MQTT_DISCONNECT_EXTRA}.items()))
def test_mqtt_disconnect_row(code: int, sender: str) -> None:
    member = MqttReasonCode(code)
    assert member.known and "DISCONNECT" in member.packets
    assert member.disconnect_sender == sender
    assert mqtt_disconnect_reason_allowed(code)
    assert mqtt_disconnect_reason_allowed(code, "client") is (sender in ("client", "both"))
    assert mqtt_disconnect_reason_allowed(code, "server") is (sender in ("server", "both"))


def test_mqtt_disconnect_nothing_else_is_allowed() -> None:
    table = {**MQTT_DISCONNECT_SENDERS, **MQTT_DISCONNECT_EXTRA}
    for code in range(256):
        if code in table:
            continue
        assert MqttReasonCode(code).disconnect_sender is None
        assert "DISCONNECT" not in MqttReasonCode(code).packets
        for sender in (None, "client", "server"):
            assert not mqtt_disconnect_reason_allowed(code, sender), (hex(code), sender)
    assert not mqtt_disconnect_reason_allowed(-1)
    assert not mqtt_disconnect_reason_allowed(0x100)
    with pytest.raises(ValueError):
        mqtt_disconnect_reason_allowed(0, "broker")


# --- the gateway mapping ------------------------------------------------------


def test_gateway_mapping_has_one_row_per_member_in_order() -> None:
    assert [m.reason for m in GATEWAY_MAPPINGS] == list(ClientCloseReason)
    for mapping in GATEWAY_MAPPINGS:
        assert isinstance(mapping, GatewayMapping)
        assert gateway_codes(mapping.reason) is mapping
        assert gateway_codes(int(mapping.reason)) is mapping
        assert mapping.why and "\n" not in mapping.why
        assert isinstance(mapping.websocket_code, WebSocketCloseCode) and mapping.websocket_code.known
        assert isinstance(mapping.mqtt_reason_code, MqttReasonCode) and mapping.mqtt_reason_code.known
        # What a gateway sends must be sendable: by a server, in each protocol.
        assert mapping.websocket_code.allowed_on_wire
        assert mapping.websocket_code.sender == "both"
        assert mqtt_disconnect_reason_allowed(mapping.mqtt_reason_code, "server")
    with pytest.raises(dataclasses.FrozenInstanceError):
        GATEWAY_MAPPINGS[0].why = "changed"  # frozen


def test_gateway_examples_from_the_issue() -> None:
    assert gateway_codes(ClientCloseReason.SESSION_TAKEN_OVER).mqtt_reason_code == 0x8E
    assert gateway_codes(ClientCloseReason.MESSAGE_TOO_LARGE).websocket_code == 1009
    assert gateway_codes(ClientCloseReason.MESSAGE_TOO_LARGE).mqtt_reason_code == 0x95
    assert gateway_codes(ClientCloseReason.CLIENT_UNRESPONSIVE).mqtt_reason_code == 0x8D
    assert gateway_codes(ClientCloseReason.CLOSED_BY_CLIENT).websocket_code == 1000
    assert gateway_codes(ClientCloseReason.CLOSED_BY_CLIENT).mqtt_reason_code == 0x00


def test_gateway_unknown_reason_gets_generic_codes() -> None:
    for reason in (ClientCloseReason(16), ClientCloseReason(255), close_reason_from_byte(13, PUBLISHED)):
        mapping = gateway_codes(reason)
        assert mapping.reason is reason
        assert (mapping.websocket_code, mapping.mqtt_reason_code) == (1008, 0x80)


def test_reverse_mappings_are_total() -> None:
    members = set(ClientCloseReason)
    for code in range(65536):
        reason = close_reason_from_websocket(code)
        assert reason in members and reason is not ClientCloseReason.SERVER_CLOSING
    for code in range(256):
        reason = close_reason_from_mqtt(code)
        assert reason in members and reason is not ClientCloseReason.SERVER_CLOSING
    for bad in (-1, 65536):
        with pytest.raises(ValueError):
            close_reason_from_websocket(bad)
    for bad in (-1, 256):
        with pytest.raises(ValueError):
            close_reason_from_mqtt(bad)


def test_reverse_mapping_examples() -> None:
    r = ClientCloseReason
    assert close_reason_from_websocket(1006) is r.CONNECTION_LOST
    assert close_reason_from_websocket(1015) is r.IO_EXCEPTION
    assert close_reason_from_websocket(1005) is r.CLOSED_BY_CLIENT
    assert close_reason_from_websocket(3000) is r.CLOSED_BY_CLIENT
    assert close_reason_from_websocket(4999) is r.CLOSED_BY_CLIENT
    for invalid in (0, 999, 1016, 2999, 5000, 65535):
        assert close_reason_from_websocket(invalid) is r.INVALID_INBOUND_MESSAGE
    assert close_reason_from_mqtt(0x8E) is r.SESSION_TAKEN_OVER
    assert close_reason_from_mqtt(0x8C) is r.REVOKED
    assert close_reason_from_mqtt(0x8B) is r.CONNECTION_LOST
    assert close_reason_from_mqtt(0x05) is r.CLOSED_BY_CLIENT  # undefined, success class
    assert close_reason_from_mqtt(0x01) is r.CLOSED_BY_CLIENT  # not a DISCONNECT reason
    assert close_reason_from_mqtt(0x86) is r.CONNECTION_LOST  # CONNACK only, error class
    assert close_reason_from_mqtt(0xFF) is r.CONNECTION_LOST


@pytest.mark.parametrize(
    "field, reverse",
    [("websocket_code", close_reason_from_websocket), ("mqtt_reason_code", close_reason_from_mqtt)],
)
def test_there_and_back(field: str, reverse) -> None:
    preimage: dict = {}
    for mapping in GATEWAY_MAPPINGS:
        preimage.setdefault(int(getattr(mapping, field)), set()).add(mapping.reason)
    for mapping in GATEWAY_MAPPINGS:
        code = int(getattr(mapping, field))
        back = reverse(code)
        if mapping.reason is ClientCloseReason.SERVER_CLOSING:
            # The documented exception: the retired value is never produced.
            assert back is not mapping.reason
        elif len(preimage[code]) == 1:
            assert back is mapping.reason, mapping
        else:
            assert back in preimage[code], mapping


def test_server_closing_is_the_only_mqtt_exception() -> None:
    assert gateway_codes(ClientCloseReason.SERVER_CLOSING).mqtt_reason_code == 0x8B
    assert close_reason_from_mqtt(0x8B) is ClientCloseReason.CONNECTION_LOST
    one_to_one = [m for m in GATEWAY_MAPPINGS if close_reason_from_mqtt(m.mqtt_reason_code) is m.reason]
    assert len(one_to_one) == 13  # all but IO_EXCEPTION, ABORTED (0x80) and SERVER_CLOSING


# --- the CLI table ------------------------------------------------------------


def test_reason_table_rows() -> None:
    rows = reason_table()
    assert [row["wire"] for row in rows] == list(range(16))
    keys = {"wire", "published", "name", "recoverable", "description", "websocket_code",
            "websocket_name", "mqtt_code", "mqtt_code_hex", "mqtt_name", "why"}
    published = {name: byte for byte, name in PUBLISHED_NUMBERS.items()}
    for row, mapping in zip(rows, GATEWAY_MAPPINGS):
        assert set(row) == keys
        assert row["name"] == CLIENT_CLOSE_REASONS[row["wire"]]
        assert row["published"] == published.get(row["name"])
        assert row["recoverable"] is (row["wire"] in (0, 1, 2))
        assert row["websocket_code"] == mapping.websocket_code
        assert row["websocket_name"] == WEBSOCKET_CODES[row["websocket_code"]]
        assert row["mqtt_code"] == mapping.mqtt_reason_code
        assert row["mqtt_code_hex"] == "0x%02X" % row["mqtt_code"]
        assert row["why"] == mapping.why
    assert rows[4]["mqtt_name"] == "NORMAL_DISCONNECTION"
    assert rows[15]["mqtt_code_hex"] == "0x8E"


# --- the docs say what the code does ------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs" / "reasons.md"
needs_docs = pytest.mark.skipif(not DOCS.is_file(), reason="docs/reasons.md is not beside the tests")


@needs_docs
def test_docs_gateway_table_matches() -> None:
    row = re.compile(r"^\| (\d+) \| (\w+) \| (\d{4}) (\w+) \| 0x([0-9A-F]{2}) (\w+) \| (.+) \|$")
    rows = [row.match(line) for line in DOCS.read_text(encoding="utf-8").splitlines()]
    documented = [m.groups() for m in rows if m]
    expected = [
        (str(int(m.reason)), m.reason.name, str(int(m.websocket_code)), m.websocket_code.name,
         "%02X" % m.mqtt_reason_code, m.mqtt_reason_code.name_in("DISCONNECT"), m.why)
        for m in GATEWAY_MAPPINGS
    ]
    assert documented == expected


@needs_docs
def test_docs_reverse_tables_match() -> None:
    text = DOCS.read_text(encoding="utf-8")
    websocket = re.findall(r"^\| (\d{4}) \w+ \| (\w+) \|", text, re.M)
    assert websocket and {int(c): n for c, n in websocket} == {
        code: close_reason_from_websocket(code).name for code in range(1000, 1016)
    }
    mqtt = re.findall(r"^\| 0x([0-9A-F]{2}) \w+ \| (\w+) \|", text, re.M)
    allowed = {code for code in range(256) if mqtt_disconnect_reason_allowed(code)}
    assert mqtt and {int(c, 16): n for c, n in mqtt} == {
        code: close_reason_from_mqtt(code).name for code in allowed
    }


def test_module_exports() -> None:
    for name in reasons.__all__:
        assert hasattr(reasons, name), name
