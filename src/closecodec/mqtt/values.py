"""MQTT's values: packet types, property identifiers, DISCONNECT, CONNACK and other packets.

See ``closecodec/value.py`` for what every value guarantees.
"""

from __future__ import annotations

import enum
from typing import Any

from ..reasons import MqttConnackReturnCode, MqttReasonCode
from ..value import Value

__all__ = [
    "MQTT_PACKET_PROPERTIES",
    "MQTT_PROPERTY_TYPES",
    "MqttConnack",
    "MqttDisconnect",
    "MqttOtherPacket",
    "MqttPacketType",
    "MqttPropertyId",
]


# -- MQTT packets (MQTT 5.0 §2, §3.2, §3.14; MQTT 3.1.1 §3.2, §3.14) ------------------


class MqttPacketType(enum.IntEnum):
    """The MQTT control packet type, the high nibble of the first byte (0 is reserved)."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


class MqttPropertyId(enum.IntEnum):
    """An MQTT 5.0 property identifier (MQTT 5 §2.2.2.2, table 2-4)."""

    PAYLOAD_FORMAT_INDICATOR = 0x01
    MESSAGE_EXPIRY_INTERVAL = 0x02
    CONTENT_TYPE = 0x03
    RESPONSE_TOPIC = 0x08
    CORRELATION_DATA = 0x09
    SUBSCRIPTION_IDENTIFIER = 0x0B
    SESSION_EXPIRY_INTERVAL = 0x11
    ASSIGNED_CLIENT_IDENTIFIER = 0x12
    SERVER_KEEP_ALIVE = 0x13
    AUTHENTICATION_METHOD = 0x15
    AUTHENTICATION_DATA = 0x16
    REQUEST_PROBLEM_INFORMATION = 0x17
    WILL_DELAY_INTERVAL = 0x18
    REQUEST_RESPONSE_INFORMATION = 0x19
    RESPONSE_INFORMATION = 0x1A
    SERVER_REFERENCE = 0x1C
    REASON_STRING = 0x1F
    RECEIVE_MAXIMUM = 0x21
    TOPIC_ALIAS_MAXIMUM = 0x22
    TOPIC_ALIAS = 0x23
    MAXIMUM_QOS = 0x24
    RETAIN_AVAILABLE = 0x25
    USER_PROPERTY = 0x26
    MAXIMUM_PACKET_SIZE = 0x27
    WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
    SHARED_SUBSCRIPTION_AVAILABLE = 0x2A

    @property
    def data_type(self) -> str:
        """The value's data type (MQTT 5 §1.5): ``byte``, ``u16``, ``u32``, ``vbi``, ``utf8``, ``binary`` or ``pair``."""
        return MQTT_PROPERTY_TYPES[self]


_P = MqttPropertyId
#: Data type of each property's value (MQTT 5 §2.2.2.2).
MQTT_PROPERTY_TYPES = {
    **dict.fromkeys(
        (_P.PAYLOAD_FORMAT_INDICATOR, _P.REQUEST_PROBLEM_INFORMATION, _P.REQUEST_RESPONSE_INFORMATION,
         _P.MAXIMUM_QOS, _P.RETAIN_AVAILABLE, _P.WILDCARD_SUBSCRIPTION_AVAILABLE,
         _P.SUBSCRIPTION_IDENTIFIER_AVAILABLE, _P.SHARED_SUBSCRIPTION_AVAILABLE),
        "byte",
    ),
    **dict.fromkeys((_P.SERVER_KEEP_ALIVE, _P.RECEIVE_MAXIMUM, _P.TOPIC_ALIAS_MAXIMUM, _P.TOPIC_ALIAS), "u16"),
    **dict.fromkeys(
        (_P.MESSAGE_EXPIRY_INTERVAL, _P.SESSION_EXPIRY_INTERVAL, _P.WILL_DELAY_INTERVAL, _P.MAXIMUM_PACKET_SIZE), "u32"
    ),
    _P.SUBSCRIPTION_IDENTIFIER: "vbi",
    **dict.fromkeys(
        (_P.CONTENT_TYPE, _P.RESPONSE_TOPIC, _P.ASSIGNED_CLIENT_IDENTIFIER, _P.AUTHENTICATION_METHOD,
         _P.RESPONSE_INFORMATION, _P.SERVER_REFERENCE, _P.REASON_STRING),
        "utf8",
    ),
    **dict.fromkeys((_P.CORRELATION_DATA, _P.AUTHENTICATION_DATA), "binary"),
    _P.USER_PROPERTY: "pair",
}
#: The properties each packet may carry (MQTT 5 §3.2.2.3 and §3.14.2.2); all but
#: USER_PROPERTY at most once.
MQTT_PACKET_PROPERTIES = {
    MqttPacketType.DISCONNECT: frozenset(
        (_P.SESSION_EXPIRY_INTERVAL, _P.REASON_STRING, _P.USER_PROPERTY, _P.SERVER_REFERENCE)
    ),
    MqttPacketType.CONNACK: frozenset(
        (_P.SESSION_EXPIRY_INTERVAL, _P.RECEIVE_MAXIMUM, _P.MAXIMUM_QOS, _P.RETAIN_AVAILABLE,
         _P.MAXIMUM_PACKET_SIZE, _P.ASSIGNED_CLIENT_IDENTIFIER, _P.TOPIC_ALIAS_MAXIMUM, _P.REASON_STRING,
         _P.USER_PROPERTY, _P.WILDCARD_SUBSCRIPTION_AVAILABLE, _P.SUBSCRIPTION_IDENTIFIER_AVAILABLE,
         _P.SHARED_SUBSCRIPTION_AVAILABLE, _P.SERVER_KEEP_ALIVE, _P.RESPONSE_INFORMATION, _P.SERVER_REFERENCE,
         _P.AUTHENTICATION_METHOD, _P.AUTHENTICATION_DATA)
    ),
}
_INT_WIDTHS = {"byte": 0xFF, "u16": 0xFFFF, "u32": 0xFFFFFFFF, "vbi": 268_435_455}


def _mqtt_property(pair: Any) -> tuple:
    try:
        pid, value = pair
    except (TypeError, ValueError):
        raise TypeError(f"an MQTT property is an (identifier, value) pair, not {pair!r}") from None
    pid = MqttPropertyId(pid)
    kind = MQTT_PROPERTY_TYPES[pid]
    if kind in _INT_WIDTHS:
        if type(value) is not int or not 0 <= value <= _INT_WIDTHS[kind]:
            raise ValueError(f"{pid.name} is an integer 0..{_INT_WIDTHS[kind]}, not {value!r}")
    elif kind == "utf8":
        if type(value) is not str:
            raise TypeError(f"{pid.name} is a str, not {type(value).__name__}")
    elif kind == "binary":
        if type(value) is not bytes:
            raise TypeError(f"{pid.name} is bytes, not {type(value).__name__}")
    else:
        value = tuple(value)
        if len(value) != 2 or type(value[0]) is not str or type(value[1]) is not str:
            raise TypeError(f"a USER_PROPERTY value is a (name, value) pair of str, not {value!r}")
    return (pid, value)


def _mqtt_properties(properties: Any) -> tuple:
    return tuple([_mqtt_property(pair) for pair in properties])


def _mqtt_version(version: Any, allow_none: bool) -> Any:
    if version is None and allow_none:
        return None
    if type(version) is not int or version not in (4, 5):
        raise ValueError(f"an MQTT version is 4 (3.1.1) or 5{' or None (either)' if allow_none else ''}, not {version!r}")
    return version


def _property_value(properties: tuple, pid: Any) -> Any:
    for key, value in properties:
        if key == pid:
            return value
    return None


class _MqttWithProperties(Value):
    """Accessors shared by the packets that carry MQTT 5.0 properties."""

    @property
    def reason_string(self) -> Any:
        """The REASON_STRING property, or None."""
        return _property_value(self.properties, MqttPropertyId.REASON_STRING)  # type: ignore[attr-defined]

    @property
    def session_expiry_interval(self) -> Any:
        """The SESSION_EXPIRY_INTERVAL property (seconds), or None."""
        return _property_value(self.properties, MqttPropertyId.SESSION_EXPIRY_INTERVAL)  # type: ignore[attr-defined]

    @property
    def server_reference(self) -> Any:
        """The SERVER_REFERENCE property, or None."""
        return _property_value(self.properties, MqttPropertyId.SERVER_REFERENCE)  # type: ignore[attr-defined]

    @property
    def user_properties(self) -> tuple:
        """The USER_PROPERTY pairs, in wire order (names may repeat)."""
        return tuple([value for key, value in self.properties if key == MqttPropertyId.USER_PROPERTY])  # type: ignore[attr-defined]


class MqttDisconnect(_MqttWithProperties):
    """An MQTT DISCONNECT packet (MQTT 5.0 §3.14, MQTT 3.1.1 §3.14).

    A 3.1.1 DISCONNECT (``version=4``) and the 5.0 short form are the same
    two bytes ``e0 00``; a decoder that is not told the version reports
    ``version=None`` for them. Either way the reason is 0x00 (normal
    disconnection) and there are no properties.

    Args:
        reason_code: an :class:`~closecodec.reasons.MqttReasonCode` (an int
            0..255 is converted); must be 0 unless ``version`` is 5.
        properties: ``(MqttPropertyId, value)`` pairs in wire order; a
            USER_PROPERTY value is a ``(name, value)`` pair. Only with version 5.
        version: 5 (MQTT 5.0), 4 (MQTT 3.1.1) or None (``e0 00``, either).

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range.
            Which codes and properties may be *sent* is the encoder's check.
    """

    _fields = ("reason_code", "properties", "version")

    def __init__(self, reason_code: Any = 0, properties: Any = (), version: Any = 5) -> None:
        version = _mqtt_version(version, True)
        reason_code = MqttReasonCode(reason_code)
        properties = _mqtt_properties(properties)
        if version != 5 and (reason_code != 0 or properties):
            raise ValueError("only an MQTT 5.0 DISCONNECT carries a reason code or properties")
        self.reason_code = reason_code
        self.properties = properties
        self.version = version


class MqttConnack(_MqttWithProperties):
    """An MQTT CONNACK packet (MQTT 5.0 §3.2, MQTT 3.1.1 §3.2).

    Args:
        reason_code: version 5: an :class:`~closecodec.reasons.MqttReasonCode`;
            version 4: an :class:`~closecodec.reasons.MqttConnackReturnCode`
            (an int 0..255 is converted to the right one).
        session_present: the Session Present flag.
        properties: ``(MqttPropertyId, value)`` pairs (version 5 only).
        version: 5 or 4.

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range.
    """

    _fields = ("reason_code", "session_present", "properties", "version")

    def __init__(self, reason_code: Any = 0, session_present: Any = False, properties: Any = (), version: Any = 5) -> None:
        version = _mqtt_version(version, False)
        properties = _mqtt_properties(properties)
        if version == 4 and properties:
            raise ValueError("an MQTT 3.1.1 CONNACK has no properties")
        self.reason_code = MqttReasonCode(reason_code) if version == 5 else MqttConnackReturnCode(reason_code)
        self.session_present = bool(session_present)
        self.properties = properties
        self.version = version

    @property
    def accepted(self) -> bool:
        """Whether the server accepted the connection (code 0)."""
        return self.reason_code == 0


class MqttOtherPacket(Value):
    """An MQTT packet of another type, kept whole: its type, flags and body.

    Args:
        packet_type: an :class:`MqttPacketType` other than CONNACK and DISCONNECT.
        flags: the low nibble of the first byte, 0..15.
        body: the bytes after the Remaining Length (not decoded further).
    """

    _fields = ("packet_type", "flags", "body")

    def __init__(self, packet_type: Any, flags: Any = 0, body: Any = b"") -> None:
        packet_type = MqttPacketType(packet_type)
        if packet_type in (MqttPacketType.CONNACK, MqttPacketType.DISCONNECT):
            raise ValueError(f"a {packet_type.name} is an Mqtt{packet_type.name.title()}")
        if type(flags) is not int or not 0 <= flags <= 15:
            raise ValueError(f"fixed-header flags are 0..15, not {flags!r}")
        self.packet_type = packet_type
        self.flags = flags
        self.body = bytes(body)


