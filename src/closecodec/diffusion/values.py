# cython: annotation_typing=False
"""Diffusion's values: session ids, session events and the messages that end a session.

See ``closecodec/value.py`` for what every value guarantees; docs/diffusion.md
for the wire format behind them.
"""

from __future__ import annotations

from typing import Any

from ..buffer import pairs_of as _pairs
from ..reasons import HANDSHAKE_PROTOCOL_BYTE, ClientCloseReason, CloseReason, ResponseCode, handshake_close_reason
from ..value import Value
from .protocol import EntryType, MessageType, UpdateType, service_name

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
]

_UINT64_MAX = (1 << 64) - 1
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class SessionId(Value):
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


class OpenEvent(Value):
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


class CloseEvent(Value):
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


class PropertyChange(Value):
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


class UpdateEvent(Value):
    """A session's properties changed (or it reconnected, failed over, disconnected).

    Args:
        session_id: the session.
        update_type: an :class:`~closecodec.diffusion.protocol.UpdateType` (unknown
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


class EventBatch(Value):
    """The payload of a session-events request (service 82): a conversation id and events."""

    _fields = ("conversation_id", "events")

    def __init__(self, conversation_id: int, events: Any = ()) -> None:
        events = tuple(events)
        for event in events:
            if type(event) not in (OpenEvent, UpdateEvent, CloseEvent):
                raise TypeError(f"events must be session events, not {type(event).__name__}")
        self.conversation_id = conversation_id
        self.events = events


class CloseClientRequest(Value):
    """The payload of a CLOSE_CLIENT request (service 14): the session to close."""

    _fields = ("session_id",)

    def __init__(self, session_id: SessionId) -> None:
        self.session_id = _session_id(session_id)


# -- Diffusion messages (docs/diffusion.md section 3) ---------------------------------


class ServiceRequest(Value):
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


class AbortNotification(Value):
    """ABORT_NOTIFICATION (type 28): the server aborts the session."""

    @property
    def close_reason(self) -> CloseReason:
        """What the vendor's client reports: CLOSED_BY_SERVER (docs/diffusion.md section 5)."""
        return CloseReason.CLOSED_BY_SERVER


class CloseRequest(Value):
    """CLOSE_REQUEST (type 29): the client asks the server to close the session."""

    @property
    def close_reason(self) -> CloseReason:
        """What the vendor's client reports: CLOSED_BY_CLIENT (docs/diffusion.md section 7)."""
        return CloseReason.CLOSED_BY_CLIENT


class OtherMessage(Value):
    """A message of a known type that closecodec does not decode further.

    ``body`` is everything after the type byte (inflated when ``compressed``).
    """

    _fields = ("message_type", "body", "compressed")

    def __init__(self, message_type: Any, body: bytes, compressed: bool = False) -> None:
        self.message_type = MessageType(message_type)
        self.body = bytes(body)
        self.compressed = bool(compressed)


# -- the connection response (docs/diffusion.md section 5) ---------------------------


class ConnectionResponse(Value):
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
