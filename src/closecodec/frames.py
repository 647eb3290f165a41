"""The immutable values closecodec's decoders return and its encoders take.

Both backends build these same classes, so a value is identical whichever
backend produced it. Values are immutable, hashable, compare equal by type and
fields, and have readable reprs (reason names, session ids as text).

This module is plain Python; where a compiler is available it is also compiled
by Cython (pure-Python mode, with the attribute declarations in ``frames.pxd``)
so that the compiled backend can build values without Python-level calls. The
source is the same either way.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar, Tuple

from .buffer import pairs_of as _pairs
from .protocol import EntryType, MessageType, UpdateType, service_name
from .reasons import HANDSHAKE_PROTOCOL_BYTE, ClientCloseReason, CloseReason, ResponseCode, handshake_close_reason
from .reasons import MqttConnackReturnCode, MqttReasonCode, WebSocketCloseCode

try:
    import cython
except ImportError:  # Cython is needed only to build; interpreted, "compiled" is False

    class cython:  # type: ignore[no-redef]
        compiled = False

__all__ = [
    "AbortNotification",
    "CloseClientRequest",
    "CloseEvent",
    "CloseRequest",
    "ConnectionResponse",
    "EventBatch",
    "OpenEvent",
    "OtherMessage",
    "PropertyChange",
    "ServiceRequest",
    "SessionId",
    "UpdateEvent",
    "MqttConnack",
    "MqttDisconnect",
    "MqttOtherPacket",
    "MqttPacketType",
    "MqttPropertyId",
    "WebSocketClose",
    "WebSocketFrame",
    "WebSocketHeader",
    "WebSocketMessage",
    "WebSocketOpcode",
    "Packet",
    "TcpSegment",
]

_UINT64_MAX = (1 << 64) - 1
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class _Frame:
    """Base of every value: immutability, equality, hashing and repr by fields."""

    _fields: ClassVar[Tuple[str, ...]] = ()

    def _astuple(self) -> tuple:
        return tuple([getattr(self, name) for name in self._fields])

    def __setattr__(self, name: str, value: Any) -> None:
        # Compiled, __init__ assigns typed attributes directly and never gets
        # here. Interpreted, __init__ assigns each field once through here.
        if cython.compiled or name not in self._fields or hasattr(self, name):
            raise AttributeError(f"{type(self).__name__} is immutable")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._astuple() == other._astuple()  # type: ignore[attr-defined]

    def __ne__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._astuple() != other._astuple()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._astuple()))

    def __repr__(self) -> str:
        fields = ", ".join([f"{name}={getattr(self, name)!r}" for name in self._fields])
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple:
        return (type(self), self._astuple())


class SessionId(_Frame):
    """A Diffusion session id: two unsigned 64-bit numbers, ``server`` and ``value``.

    Its text form is ``%016x-%016x`` (lower-case hex), as Diffusion prints it.
    Session ids order by ``(server, value)``.

    Args:
        server: the server part, 0 to 2**64 - 1.
        value: the session's own part, 0 to 2**64 - 1.

    Raises:
        TypeError: a part is not an int.
        ValueError: a part is out of range.
    """

    _fields = ("server", "value")

    def __init__(self, server: int, value: int) -> None:
        for part in (server, value):
            if type(part) is not int:
                raise TypeError(f"session id parts must be int, not {type(part).__name__}")
            if not 0 <= part <= _UINT64_MAX:
                raise ValueError(f"session id part {part} is outside 0..2**64-1")
        self.server = server
        self.value = value

    @classmethod
    def parse(cls, text: str) -> "SessionId":
        """Parse the ``%016x-%016x`` text form (either case of hex digits).

        Raises:
            ValueError: ``text`` is not two 16-digit hex numbers joined by ``-``.
        """
        if (
            not isinstance(text, str)
            or len(text) != 33
            or text[16] != "-"
            or not _HEX_DIGITS.issuperset(text[:16] + text[17:])
        ):
            raise ValueError(f"not a session id (want %016x-%016x): {text!r}")
        return cls(int(text[:16], 16), int(text[17:], 16))

    def __str__(self) -> str:
        return f"{self.server:016x}-{self.value:016x}"

    def __repr__(self) -> str:
        return f"SessionId('{self}')"

    # Defining an ordering replaces the inherited comparison, so equality and
    # hashing are restated here (a compiled type would otherwise be unhashable).
    def __eq__(self, other: object) -> bool:
        if type(other) is not SessionId:
            return NotImplemented
        return self.server == other.server and self.value == other.value  # type: ignore[attr-defined]

    def __ne__(self, other: object) -> bool:
        if type(other) is not SessionId:
            return NotImplemented
        return self.server != other.server or self.value != other.value  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(("SessionId", self.server, self.value))

    def __lt__(self, other: "SessionId") -> bool:
        if type(other) is not SessionId:
            return NotImplemented
        return (self.server, self.value) < (other.server, other.value)

    def __le__(self, other: "SessionId") -> bool:
        if type(other) is not SessionId:
            return NotImplemented
        return (self.server, self.value) <= (other.server, other.value)

    def __gt__(self, other: "SessionId") -> bool:
        if type(other) is not SessionId:
            return NotImplemented
        return (self.server, self.value) > (other.server, other.value)

    def __ge__(self, other: "SessionId") -> bool:
        if type(other) is not SessionId:
            return NotImplemented
        return (self.server, self.value) >= (other.server, other.value)


# -- Diffusion session events (docs/diffusion.md section 4) ------------------------


def _session_id(value: Any) -> SessionId:
    if type(value) is not SessionId:
        raise TypeError(f"session_id must be a SessionId, not {type(value).__name__}")
    return value


class OpenEvent(_Frame):
    """A session opened, with its properties.

    Args:
        session_id: the session.
        properties: a mapping or ``(key, value)`` pairs, kept in order as a
            tuple of pairs (duplicate keys are allowed on the wire).
    """

    _fields = ("session_id", "properties")

    def __init__(self, session_id: SessionId, properties: Any = ()) -> None:
        self.session_id = _session_id(session_id)
        self.properties = _pairs(properties)


class CloseEvent(_Frame):
    """A session closed: why, and its properties as they were at close.

    Args:
        session_id: the session.
        reason: a :class:`~closecodec.reasons.ClientCloseReason` (an int is
            converted; unknown numbers become its ``UNKNOWN`` value).
        properties: a mapping or ``(key, value)`` pairs, kept in order; None
            when they were not decoded (``scan_close_events(properties=False)``).
    """

    _fields = ("session_id", "reason", "properties")

    def __init__(self, session_id: SessionId, reason: Any, properties: Any = ()) -> None:
        self.session_id = _session_id(session_id)
        self.reason = ClientCloseReason(reason)
        self.properties = None if properties is None else _pairs(properties)


class PropertyChange(_Frame):
    """One entry of an UPDATE event: a property's key, what happened, and its values.

    ``values`` holds the wire values in order: NEW ``(new,)``, CHANGE
    ``(old, new)``, REMOVE ``(old,)``, SAME ``(current,)``.
    """

    _fields = ("key", "entry_type", "values")

    def __init__(self, key: str, entry_type: Any, values: Any) -> None:
        entry_type = EntryType(entry_type)
        values = tuple(values)
        if type(key) is not str or not all(type(value) is str for value in values):
            raise TypeError("a property change's key and values are str")
        if len(values) != entry_type.value_count:
            raise ValueError(f"a {entry_type.name} entry has {entry_type.value_count} value(s), not {len(values)}")
        self.key = key
        self.entry_type = entry_type
        self.values = values


class UpdateEvent(_Frame):
    """A session's properties changed (or it reconnected, failed over, disconnected).

    Args:
        session_id: the session.
        update_type: an :class:`~closecodec.protocol.UpdateType` (unknown
            numbers are kept as its ``UNKNOWN`` value).
        changes: :class:`PropertyChange` entries, in wire order.
    """

    _fields = ("session_id", "update_type", "changes")

    def __init__(self, session_id: SessionId, update_type: Any, changes: Any = ()) -> None:
        changes = tuple(changes)
        for change in changes:
            if type(change) is not PropertyChange:
                raise TypeError(f"changes must be PropertyChange, not {type(change).__name__}")
        self.session_id = _session_id(session_id)
        self.update_type = UpdateType(update_type)
        self.changes = changes


class EventBatch(_Frame):
    """The payload of a session-events request (service 82): a conversation id and events."""

    _fields = ("conversation_id", "events")

    def __init__(self, conversation_id: int, events: Any = ()) -> None:
        events = tuple(events)
        for event in events:
            if type(event) not in (OpenEvent, UpdateEvent, CloseEvent):
                raise TypeError(f"events must be session events, not {type(event).__name__}")
        self.conversation_id = conversation_id
        self.events = events


class CloseClientRequest(_Frame):
    """The payload of a CLOSE_CLIENT request (service 14): the session to close."""

    _fields = ("session_id",)

    def __init__(self, session_id: SessionId) -> None:
        self.session_id = _session_id(session_id)


# -- Diffusion messages (docs/diffusion.md section 3) ---------------------------------


class ServiceRequest(_Frame):
    """A SERVICE_REQUEST message.

    Args:
        service_id: the service; 82 and 14 have decoded payloads.
        conversation_id: the request's conversation id.
        payload: an :class:`EventBatch` (service 82), a
            :class:`CloseClientRequest` (service 14), or the undecoded payload
            bytes of any other service.
        compressed: the body is zlib-compressed on the wire (type byte flag 0x80).
    """

    _fields = ("service_id", "conversation_id", "payload", "compressed")

    def __init__(self, service_id: int, conversation_id: int, payload: Any, compressed: bool = False) -> None:
        expected = _PAYLOAD_TYPES.get(service_id, bytes)
        if type(payload) is not expected:
            raise TypeError(f"service {service_id} takes a {expected.__name__} payload, not {type(payload).__name__}")
        self.service_id = service_id
        self.conversation_id = conversation_id
        self.payload = payload
        self.compressed = bool(compressed)

    @property
    def service_name(self) -> str:
        """The service's name, e.g. ``SESSION_PROPERTIES_EVENT_2``, or ``SERVICE_<id>``."""
        return service_name(self.service_id)


class AbortNotification(_Frame):
    """ABORT_NOTIFICATION (type 28): the server aborts the session."""

    @property
    def close_reason(self) -> CloseReason:
        """What the vendor's client reports: CLOSED_BY_SERVER (docs/diffusion.md section 5)."""
        return CloseReason.CLOSED_BY_SERVER


class CloseRequest(_Frame):
    """CLOSE_REQUEST (type 29): the client asks the server to close the session."""

    @property
    def close_reason(self) -> CloseReason:
        """What the vendor's client reports: CLOSED_BY_CLIENT (docs/diffusion.md section 7)."""
        return CloseReason.CLOSED_BY_CLIENT


class OtherMessage(_Frame):
    """A message of a known type that closecodec does not decode further.

    ``body`` is everything after the type byte (inflated when ``compressed``).
    """

    _fields = ("message_type", "body", "compressed")

    def __init__(self, message_type: Any, body: bytes, compressed: bool = False) -> None:
        self.message_type = MessageType(message_type)
        self.body = bytes(body)
        self.compressed = bool(compressed)


# -- the connection response (docs/diffusion.md section 5) ---------------------------


class ConnectionResponse(_Frame):
    """The server's first message on a connection: the handshake's outcome.

    A success (100, 105, 106) carries the session id, its 24-byte token, the
    ping period (ms) and either the recovery sequence (105) or the maximum
    message size; a failure carries none of them (``None``). The protocol byte
    is always ``#`` (0x23): a response with another is malformed.
    """

    _fields = (
        "version",
        "code",
        "session_id",
        "token",
        "ping_period",
        "max_message_size",
        "recovery_sequence",
    )

    def __init__(
        self,
        version: int,
        code: Any,
        session_id: Any = None,
        token: Any = None,
        ping_period: Any = None,
        max_message_size: Any = None,
        recovery_sequence: Any = None,
    ) -> None:
        code = ResponseCode(code)
        given = {
            name
            for name, part in (
                ("session_id", session_id),
                ("token", token),
                ("ping_period", ping_period),
                ("max_message_size", max_message_size),
                ("recovery_sequence", recovery_sequence),
            )
            if part is not None
        }
        wanted = set()
        if code.is_success:
            last = "recovery_sequence" if code == ResponseCode.RECONNECTED else "max_message_size"
            wanted = {"session_id", "token", "ping_period", last}
            _session_id(session_id)
            if type(token) is not bytes or len(token) != 24:
                raise ValueError("a session token is 24 bytes")
        if given != wanted:
            raise ValueError(f"a {code.name} response carries {sorted(wanted) or 'nothing after its code'}, not {sorted(given)}")
        self.version = version
        self.code = code
        self.session_id = session_id
        self.token = token
        self.ping_period = ping_period
        self.max_message_size = max_message_size
        self.recovery_sequence = recovery_sequence

    @property
    def close_reason(self) -> Any:
        """The client's :class:`~closecodec.reasons.CloseReason` for a failed handshake, else None."""
        return handshake_close_reason(HANDSHAKE_PROTOCOL_BYTE, self.version, self.code)


_PAYLOAD_TYPES = {82: EventBatch, 14: CloseClientRequest}


# -- WebSocket frames (RFC 6455 §5.2, §5.3, §5.5.1, §7.4) ------------


class WebSocketOpcode(enum.IntEnum):
    """A WebSocket frame's opcode (RFC 6455 §5.2); 3-7 and 11-15 are reserved."""

    CONTINUATION = 0
    TEXT = 1
    BINARY = 2
    CLOSE = 8
    PING = 9
    PONG = 10

    @property
    def is_control(self) -> bool:
        """True for CLOSE, PING and PONG (opcodes 8 and up)."""
        return self >= 8


def _mask_key(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is not bytes or len(value) != 4:
        raise TypeError("a masking key is 4 bytes (or None for an unmasked frame)")
    return value


class WebSocketHeader(_Frame):
    """A WebSocket frame header (RFC 6455 §5.2), as :func:`~closecodec.decode_ws_header` reads it.

    Args:
        fin: the FIN bit (the last frame of a message).
        rsv: the RSV1-3 bits as a number 0..7 (RSV1 is 4, RSV2 2, RSV3 1).
        opcode: a :class:`WebSocketOpcode`.
        mask_key: the 4-byte masking key, or None for an unmasked frame.
        length: the payload length in bytes, 0 to 2**63 - 1.

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range.
    """

    _fields = ("fin", "rsv", "opcode", "mask_key", "length")

    def __init__(self, fin: Any, rsv: Any, opcode: Any, mask_key: Any, length: Any) -> None:
        if type(rsv) is not int or not 0 <= rsv <= 7:
            raise ValueError(f"rsv is a number 0..7, not {rsv!r}")
        if type(length) is not int or not 0 <= length < 1 << 63:
            raise ValueError(f"a payload length is 0..2**63-1, not {length!r}")
        self.fin = bool(fin)
        self.rsv = rsv
        self.opcode = WebSocketOpcode(opcode)
        self.mask_key = _mask_key(mask_key)
        self.length = length

    @property
    def masked(self) -> bool:
        """Whether the payload is masked (client-to-server frames always are)."""
        return self.mask_key is not None


class WebSocketFrame(_Frame):
    """Any WebSocket frame but a close (see :class:`WebSocketClose`), payload unmasked.

    Args:
        opcode: a :class:`WebSocketOpcode` other than CLOSE.
        payload: the application data (unmasked), bytes.
        fin: the FIN bit; control frames (PING, PONG) always have it set.
        rsv: the RSV1-3 bits, 0..7 (RSV1 is 4), for a negotiated extension.
        mask_key: the 4-byte masking key the frame is (or was) sent with, or
            None for an unmasked (server-to-client) frame.

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range.
    """

    _fields = ("opcode", "payload", "fin", "rsv", "mask_key")

    def __init__(self, opcode: Any, payload: Any = b"", fin: Any = True, rsv: Any = 0, mask_key: Any = None) -> None:
        opcode = WebSocketOpcode(opcode)
        if opcode == WebSocketOpcode.CLOSE:
            raise ValueError("a close frame is a WebSocketClose")
        if type(rsv) is not int or not 0 <= rsv <= 7:
            raise ValueError(f"rsv is a number 0..7, not {rsv!r}")
        self.opcode = opcode
        self.payload = bytes(payload)
        self.fin = bool(fin)
        self.rsv = rsv
        self.mask_key = _mask_key(mask_key)

    @property
    def masked(self) -> bool:
        """Whether the frame is masked on the wire."""
        return self.mask_key is not None

    @property
    def length(self) -> int:
        """The payload length in bytes."""
        return len(self.payload)


class WebSocketClose(_Frame):
    """A WebSocket close frame (opcode 8): a status code and a reason, or neither.

    ``code`` None is an empty close body, which the receiver reports as 1005
    (no status received); the reason is then empty too. A close frame always
    has FIN set and no RSV bits.

    Args:
        code: a :class:`~closecodec.reasons.WebSocketCloseCode` (an int
            0..65535 is converted, unregistered ones included), or None.
        reason: the reason text; empty when ``code`` is None.
        mask_key: the 4-byte masking key, or None for an unmasked frame.

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range.
            Whether a code or reason may be *sent* is the encoder's check.
    """

    _fields = ("code", "reason", "mask_key")

    def __init__(self, code: Any = None, reason: Any = "", mask_key: Any = None) -> None:
        if type(reason) is not str:
            raise TypeError(f"a close reason is a str, not {type(reason).__name__}")
        if code is None:
            if reason:
                raise ValueError("a close frame without a status code has no reason")
        else:
            code = WebSocketCloseCode(code)
        self.code = code
        self.reason = reason
        self.mask_key = _mask_key(mask_key)

    fin = True
    rsv = 0
    opcode = WebSocketOpcode.CLOSE

    @property
    def masked(self) -> bool:
        """Whether the frame is masked on the wire."""
        return self.mask_key is not None

    @property
    def effective_code(self) -> Any:
        """``code``, or 1005 (NO_STATUS_RECEIVED) for an empty body (RFC 6455 §7.1.5)."""
        return WebSocketCloseCode.NO_STATUS_RECEIVED if self.code is None else self.code

    @property
    def payload(self) -> bytes:
        """The close body as sent: the code (2 bytes, big-endian) and the reason in UTF-8."""
        if self.code is None:
            return b""
        return int(self.code).to_bytes(2, "big") + self.reason.encode("utf-8")

    @property
    def length(self) -> int:
        """The payload length in bytes."""
        return len(self.payload)


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


class _MqttWithProperties(_Frame):
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


class MqttOtherPacket(_Frame):
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


# -- streams (docs/streaming.md) -------------------------------------------------------


class WebSocketMessage(_Frame):
    """A whole WebSocket data message, reassembled from its frames (RFC 6455 §5.4).

    What :class:`~closecodec.WebSocketStream` returns for a TEXT or BINARY message,
    however many frames carried it; a text payload is kept as bytes (``text``
    decodes it).

    Args:
        opcode: :attr:`WebSocketOpcode.TEXT` or :attr:`WebSocketOpcode.BINARY`.
        payload: the message's application data (unmasked), bytes.
        rsv: the RSV bits of its first frame, 0..7 (RSV1 is 4: compressed by
            permessage-deflate, RFC 7692, which the stream does not inflate).
        masked: whether its frames were masked (sent by a client).

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range.
    """

    _fields = ("opcode", "payload", "rsv", "masked")

    def __init__(self, opcode: Any, payload: Any = b"", rsv: Any = 0, masked: Any = False) -> None:
        opcode = WebSocketOpcode(opcode)
        if opcode not in (WebSocketOpcode.TEXT, WebSocketOpcode.BINARY):
            raise ValueError(f"a message is TEXT or BINARY, not {opcode.name}")
        if type(rsv) is not int or not 0 <= rsv <= 7:
            raise ValueError(f"rsv is a number 0..7, not {rsv!r}")
        self.opcode = opcode
        self.payload = bytes(payload)
        self.rsv = rsv
        self.masked = bool(masked)

    @property
    def length(self) -> int:
        """The payload length in bytes."""
        return len(self.payload)

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (RFC 6455 §5.6 requires it of a TEXT message).

        Raises:
            UnicodeDecodeError: the payload is not UTF-8.
        """
        return self.payload.decode("utf-8")


# -- packet captures (docs/capture.md) ---------------------------------------------


class Packet(_Frame):
    """One packet record of a pcap or pcapng file, as :class:`closecodec.capture.PacketReader` yields it.

    Args:
        frame: the frame number, 1-based, counting every packet record of the
            file (as Wireshark numbers frames).
        timestamp_ns: the capture time in nanoseconds since 1970-01-01 UTC, an
            exact integer (pcapng: the interface's ``if_tsresol`` and
            ``if_tsoffset`` applied; finer units are truncated to whole ns).
        link_type: the LINKTYPE_ value of the interface (1 Ethernet, ...).
        data: the captured bytes, a read-only memoryview into the reader's
            block (no copy); ``bytes(packet.data)`` keeps them past the block.
        original_length: the packet's length on the wire.
        interface: the pcapng interface id (0 for pcap).

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range.
    """

    _fields = ("frame", "timestamp_ns", "link_type", "data", "original_length", "interface")

    def __init__(self, frame: Any, timestamp_ns: Any, link_type: Any, data: Any, original_length: Any,
                 interface: Any = 0) -> None:
        for name, value in (("frame", frame), ("timestamp_ns", timestamp_ns), ("link_type", link_type),
                            ("original_length", original_length), ("interface", interface)):
            if type(value) is not int:
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        self.frame = frame
        self.timestamp_ns = timestamp_ns
        self.link_type = link_type
        self.data = data
        self.original_length = original_length
        self.interface = interface

    @property
    def timestamp(self) -> float:
        """The capture time in seconds since the epoch, as a float (sub-µs digits may round)."""
        return self.timestamp_ns / 1e9

    def __repr__(self) -> str:
        return (f"Packet(frame={self.frame!r}, timestamp_ns={self.timestamp_ns!r}, link_type={self.link_type!r}, "
                f"data=<{len(self.data)} bytes>, original_length={self.original_length!r}, "
                f"interface={self.interface!r})")


class TcpSegment(_Frame):
    """The TCP segment inside a packet, as ``parse_packet`` finds it.

    Args:
        src: the source IP address, packed (4 bytes IPv4, 16 bytes IPv6).
        src_port: the source port.
        dst: the destination IP address, packed.
        dst_port: the destination port.
        seq: the sequence number.
        ack: the acknowledgment number.
        flags: the TCP flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, ...).
        payload: the captured TCP payload, a memoryview into the packet's bytes.
        missing: payload bytes the IP header counts but the capture cut off
            (snap length), which follow ``payload`` on the wire.

    Raises:
        TypeError: a field of the wrong type.
    """

    _fields = ("src", "src_port", "dst", "dst_port", "seq", "ack", "flags", "payload", "missing")

    def __init__(self, src: Any, src_port: Any, dst: Any, dst_port: Any, seq: Any, ack: Any, flags: Any,
                 payload: Any, missing: Any = 0) -> None:
        for name, value in (("src_port", src_port), ("dst_port", dst_port), ("seq", seq), ("ack", ack),
                            ("flags", flags), ("missing", missing)):
            if type(value) is not int:
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        self.src = bytes(src)
        self.src_port = src_port
        self.dst = bytes(dst)
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.payload = payload
        self.missing = missing

    def __repr__(self) -> str:
        return (f"TcpSegment(src={self.src!r}, src_port={self.src_port!r}, dst={self.dst!r}, "
                f"dst_port={self.dst_port!r}, seq={self.seq!r}, ack={self.ack!r}, flags=0x{self.flags:03x}, "
                f"payload=<{len(self.payload)} bytes>, missing={self.missing!r})")
