"""Close-reason tables for Diffusion, WebSocket and MQTT, as plain data.

Every enum here is an :class:`~enum.IntEnum` whose members carry a one-line
``description``. The enums that can meet a value on the wire are *open*: a value
this version does not define does not raise, it becomes a cached pseudo-member
whose ``name`` is ``"UNKNOWN"`` (WebSocket codes are named by range instead),
whose int value is the raw number and whose ``known`` is False, so a newer peer
never crashes a protocol stack. Values outside an enum's range (a byte, or a
16-bit close code) still raise :exc:`ValueError`.

Diffusion numbering. The byte on the wire for :class:`ClientCloseReason` is not
the number on the vendor's published JavaScript API page. The vendor's own
clients agree on the wire values across releases: JS 5.9.24 reads 10 as
SERVER_CLOSING and 11 as CLOSED_BY_CONTROLLER, JS 6.12.1 reads 11..15 as
CLOSED_BY_CONTROLLER, FAILED_OVER, EXPIRED, REVOKED, SESSION_TAKEN_OVER (and
rejects the retired 10), and the Apple client API lists serverClosing just
before closedByController. The page's 10/11/12 (CLOSED_BY_CONTROLLER,
FAILED_OVER, SESSION_TAKEN_OVER) look like a renumbering in the documentation
only. So the enum's values are the wire values, and the page's numbering is
kept as :attr:`ReasonNumbering.PUBLISHED`, which a caller asks for explicitly.

Unknown bytes under the published numbering. A ``ClientCloseReason``'s int value
is always its wire value, so a byte that the published numbering does not
define (13 and up) cannot be given the int value of that byte: 13 is EXPIRED on
the wire, and an IntEnum compares equal to its int. Such a byte decodes to an
UNKNOWN pseudo-member whose int value is ``0x100 + byte``, outside the wire
range, so it equals no wire value; ``str()`` shows ``UNKNOWN (published 13)``
and :func:`close_reason_to_byte` gives the raw byte back under PUBLISHED (and
refuses it under WIRE, where its value is not known). These objects come only
from :func:`close_reason_from_byte`; the constructor accepts 0..255.

docs/reasons.md documents every table and each mapping choice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Optional, Tuple, Type, TypeVar, Union

__all__ = [
    "CLOSE_REASON_BY_BYTE",
    "GATEWAY_MAPPINGS",
    "HANDSHAKE_PROTOCOL_BYTE",
    "ClientCloseReason",
    "CloseReason",
    "GatewayMapping",
    "MqttConnackReturnCode",
    "MqttReasonCode",
    "ReasonNumbering",
    "ResponseCode",
    "WEBSOCKET_CLOSE_CODES_ON_WIRE",
    "WebSocketCloseCode",
    "close_reason_from_byte",
    "close_reason_from_mqtt",
    "close_reason_from_websocket",
    "close_reason_to_byte",
    "gateway_codes",
    "handshake_close_reason",
    "mqtt_disconnect_reason_allowed",
    "reason_table",
    "websocket_close_code_allowed_on_wire",
]


_E = TypeVar("_E", bound="OpenIntEnum")


class OpenIntEnum(enum.IntEnum):
    """An IntEnum that turns a value it does not define into a pseudo-member.

    Members are written ``NAME = value, description, *fields``; a subclass that
    has more fields takes them in its ``__init__``. Pseudo-members are created
    on first use, cached in ``_value2member_map_`` (so the same value gives the
    same object) and pickle like members. ``str()`` is ``NAME (value)``;
    ``format()`` with an empty spec is ``str()``, with a spec formats the int.
    Note that on Python 3.12+ ``value in Enum`` is also true for a value whose
    pseudo-member exists: test ``.known`` instead.
    """

    # Inclusive bounds of what the constructor accepts. A plain attribute in an
    # Enum body would become a member, hence the dunder name.
    __value_range__ = (0, 0xFF)

    def __new__(cls, value: int, *fields: object) -> OpenIntEnum:
        member = int.__new__(cls, value)
        member._value_ = value
        return member

    # The default keeps type checkers, which read this signature for calls such
    # as ClientCloseReason(16), from asking for a description.
    def __init__(self, value: int, description: str = "", *fields: object) -> None:
        self._description = description
        self._known = True

    @classmethod
    def _missing_(cls: Type[_E], value: object) -> Optional[_E]:
        if not isinstance(value, int):
            return None
        value = int(value)
        low, high = cls.__value_range__
        if not low <= value <= high:
            raise ValueError(f"{value} is not in {cls.__name__}'s range {low}..{high}")
        name, fields = cls._unknown(value)
        pseudo = cls._value2member_map_.setdefault(value, cls._pseudo(value, name, fields))
        assert isinstance(pseudo, cls)
        return pseudo

    @classmethod
    def _pseudo(cls: Type[_E], value: int, name: str, fields: Tuple[Any, ...]) -> _E:
        # Built the way Enum builds a member, minus registration by name.
        pseudo = int.__new__(cls, value)
        pseudo._name_ = name
        pseudo._value_ = value
        cls.__init__(pseudo, value, *fields)
        pseudo._known = False
        return pseudo

    @classmethod
    def _unknown(cls, value: int) -> Tuple[str, Tuple[Any, ...]]:
        """Name and ``__init__`` fields of the pseudo-member for ``value``."""
        return "UNKNOWN", ("unknown value, perhaps from a newer peer",)

    @property
    def known(self) -> bool:
        """False for a pseudo-member: a value this version does not define."""
        return self._known

    @property
    def description(self) -> str:
        """What the value means, in one line."""
        return self._description

    def __str__(self) -> str:
        return f"{self._name_} ({self._value_})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self._name_}: {self._value_}>"

    def __format__(self, format_spec: str) -> str:
        return str(self) if not format_spec else format(int(self), format_spec)


# ---------------------------------------------------------------------------
# Diffusion: the server's close reason (docs/diffusion.md §1.1)


class ClientCloseReason(OpenIntEnum):
    """Why the server closed a client session: one byte in a session-close event.

    Values are the wire values the vendor's clients read (see the module
    docstring); 10 is retired but still decodes. Any byte decodes: a value
    not listed here gives an UNKNOWN pseudo-member (``known`` is False).
    """

    CONNECTION_LOST = 0, "the connection dropped, or failed during the handshake or a transport timeout"
    IO_EXCEPTION = 1, "an I/O error on the connection, such as reading a closed socket or a TLS failure"
    CLIENT_UNRESPONSIVE = 2, "the client missed a ping or did not reopen an HTTP poll in time"
    MESSAGE_QUEUE_LIMIT_REACHED = 3, "the client's outbound queue reached its limit and was discarded"
    CLOSED_BY_CLIENT = 4, "the client asked to close the session"
    MESSAGE_TOO_LARGE = 5, "the client sent a message over the server's size limit"
    INTERNAL_ERROR = 6, "the server hit an internal error"
    INVALID_INBOUND_MESSAGE = 7, "the client sent bytes that are not a valid Diffusion message"
    ABORTED = 8, "the server aborted the connection, e.g. disallowed or an unrecognised client id"
    LOST_MESSAGES = 9, "messages were lost: a sequence gap, or missing or repeated sequence numbers"
    SERVER_CLOSING = 10, "retired (5.x): the server was shutting down"
    CLOSED_BY_CONTROLLER = 11, "a control session closed this client"
    FAILED_OVER = 12, "the session moved to another server in the cluster"
    EXPIRED = 13, "the session's expiry time passed before it re-authenticated (6.12)"
    REVOKED = 14, "a privileged user revoked the session's authentication (6.12)"
    SESSION_TAKEN_OVER = 15, "a new connection took over the session, e.g. an MQTT client id reused"

    @property
    def recoverable(self) -> bool:
        """True only for the reasons the vendor calls recoverable: 0, 1 and 2."""
        return self._value_ in (0, 1, 2)

    def __str__(self) -> str:
        if self._value_ > 0xFF:
            return f"UNKNOWN (published {self._value_ - _PUBLISHED_UNKNOWN})"
        return super().__str__()

    def __repr__(self) -> str:
        if self._value_ > 0xFF:
            return f"<ClientCloseReason.UNKNOWN: published {self._value_ - _PUBLISHED_UNKNOWN}>"
        return super().__repr__()

    def __reduce_ex__(self, protocol: Any) -> Tuple[Any, ...]:
        if self._value_ > 0xFF:  # not reachable through the constructor
            return close_reason_from_byte, (self._value_ - _PUBLISHED_UNKNOWN, ReasonNumbering.PUBLISHED)
        return super().__reduce_ex__(protocol)


class ReasonNumbering(enum.Enum):
    """Which numbering a :class:`ClientCloseReason` byte is read or written in."""

    WIRE = "wire"
    """What the vendor's clients read and servers send (the enum's values)."""
    PUBLISHED = "published"
    """The published JS API page: 0..9 as on the wire, then 10 CLOSED_BY_CONTROLLER,
    11 FAILED_OVER, 12 SESSION_TAKEN_OVER."""


# Offset of the int values given to bytes the published numbering does not define.
_PUBLISHED_UNKNOWN = 0x100
_R = ClientCloseReason
_PUBLISHED_TO_WIRE: Dict[int, ClientCloseReason] = {
    **{value: _R(value) for value in range(10)},
    10: _R.CLOSED_BY_CONTROLLER,
    11: _R.FAILED_OVER,
    12: _R.SESSION_TAKEN_OVER,
}
_WIRE_TO_PUBLISHED: Dict[ClientCloseReason, int] = {r: b for b, r in _PUBLISHED_TO_WIRE.items()}
_published_unknown: Dict[int, ClientCloseReason] = {}


def close_reason_from_byte(
    value: int, numbering: ReasonNumbering = ReasonNumbering.WIRE
) -> ClientCloseReason:
    """Read a close-reason byte in the given numbering.

    Args:
        value: the byte, 0..255.
        numbering: how the sender numbered its reasons (a member, or its
            value ``"wire"`` or ``"published"``).

    Returns:
        The member; for a byte the numbering does not define, an UNKNOWN
        pseudo-member (under WIRE its int value is the byte; under PUBLISHED it
        is ``0x100 + byte``, see the module docstring). Never raises for a byte.

    Raises:
        ValueError: ``value`` is not a byte, or ``numbering`` is not a numbering.
    """
    if not 0 <= value <= 0xFF:
        raise ValueError(f"close reason byte {value} is not in 0..255")
    if ReasonNumbering(numbering) is ReasonNumbering.WIRE:
        return ClientCloseReason(value)
    reason = _PUBLISHED_TO_WIRE.get(value)
    if reason is None:
        reason = _published_unknown.get(value)
    if reason is None:  # first sight of this byte
        reason = ClientCloseReason._pseudo(
            _PUBLISHED_UNKNOWN + value,
            "UNKNOWN",
            (f"byte {value} in the published numbering, which does not define it",),
        )
        reason = _published_unknown.setdefault(value, reason)
    return reason


def close_reason_to_byte(
    reason: Union[ClientCloseReason, int], numbering: ReasonNumbering = ReasonNumbering.WIRE
) -> int:
    """Give the byte that stands for ``reason`` in the given numbering.

    Args:
        reason: a member or pseudo-member (a plain int is read as a wire value).
        numbering: the numbering to write in (a member or its value).

    Returns:
        The byte, 0..255.

    Raises:
        ValueError: the numbering cannot express ``reason``: under PUBLISHED,
            SERVER_CLOSING, EXPIRED, REVOKED and unknown wire values (which
            byte the publisher would use is not known); under WIRE, an unknown
            byte read in the published numbering. Also: ``numbering`` is not
            a numbering.
    """
    if not isinstance(reason, ClientCloseReason):
        reason = ClientCloseReason(reason)
    value = reason._value_
    if ReasonNumbering(numbering) is ReasonNumbering.WIRE:
        if value > 0xFF:
            raise ValueError(f"{reason} has no known wire value")
        return value
    if value > 0xFF:
        return value - _PUBLISHED_UNKNOWN
    byte = _WIRE_TO_PUBLISHED.get(reason)
    if byte is None:
        raise ValueError(f"the published numbering has no value for {reason}")
    return byte


CLOSE_REASON_BY_BYTE: Dict[ReasonNumbering, Tuple[ClientCloseReason, ...]] = {
    numbering: tuple(close_reason_from_byte(byte, numbering) for byte in range(128))
    for numbering in ReasonNumbering
}
"""For a fast decoder: ``CLOSE_REASON_BY_BYTE[numbering][byte]`` for bytes 0..127
is ``close_reason_from_byte(byte, numbering)``, pseudo-members included."""


# ---------------------------------------------------------------------------
# Diffusion: the client's own close reasons and the handshake (§1.2, §5, §7)


class CloseReason(OpenIntEnum):
    """Why a client library reports its session closed (never sent on the wire).

    A capture decoder infers some of them: handshake rejections, ABORT, an idle
    connection. Open like the other enums, over 0..255.
    """

    CLOSED_BY_CLIENT = 0, "the application closed the session"
    CLOSED_BY_SERVER = 1, "the server closed or aborted the session"
    RECONNECT_ABORTED = 2, "reconnection was abandoned"
    CONNECTION_TIMEOUT = 3, "the connection attempt timed out"
    HANDSHAKE_REJECTED = 4, "the server answered the handshake with a rejection"
    HANDSHAKE_ERROR = 5, "the handshake response could not be understood"
    TRANSPORT_ERROR = 6, "the transport failed, or the server closed the WebSocket"
    CONNECTION_ERROR = 7, "the connection could not be made or failed"
    IDLE_CONNECTION = 8, "no ping arrived for twice the announced period"
    LOST_MESSAGES = 16, "messages were lost, so the session cannot continue"
    PROTOCOL_VERSION_MISMATCH = 17, "client and server speak different protocol versions"
    LICENSE_EXCEEDED = 18, "the server's licence allows no more connections"
    ACCESS_DENIED = 99, "the server did not accept the client's credentials"

    @property
    def can_reconnect(self) -> bool:
        """True for the reasons after which the client may reconnect: 6, 7 and 8."""
        return self._value_ in (6, 7, 8)


HANDSHAKE_PROTOCOL_BYTE = 0x23
"""The first byte of a Diffusion connection response (``'#'``)."""


class ResponseCode(OpenIntEnum):
    """The response code, third byte of a Diffusion connection response."""

    PEER_CONNECTION_FAILED = 1, "(peer link) the connection between servers failed"
    LOOPBACK_DENIED = 2, "(peer link) refused: the server would connect to itself"
    SECONDARY_ACCEPTOR_NOT_FOUND = 3, "(peer link) no secondary acceptor was found"
    OK = 100, "connected: a new session was created"
    DOWNGRADE = 102, "the server wants an older protocol version than the client's"
    RECONNECTED = 105, "reconnected to the existing session"
    RECONNECTED_WITH_MESSAGE_LOSS = 106, "reconnected to the existing session, but messages were lost"
    REVERSE_CONNECTION_ACCEPTED = 107, "a reverse connection was accepted; no client session follows"
    REJECTED = 111, "the connection was rejected"
    LICENSE_EXCEEDED = 113, "the server's licence allows no more connections"
    RECONNECTION_UNSUPPORTED = 114, "the server does not support reconnection"
    CONNECTION_PROTOCOL_ERROR = 115, "the connection request broke the protocol"
    AUTHENTICATION_FAILED = 116, "the credentials were not accepted"
    UNKNOWN_SESSION = 117, "the session to reconnect to is not known to the server"
    RECONNECTION_FAILED_MESSAGE_LOSS = 118, "reconnection failed because messages were lost"
    REJECTED_SERVER_INITIALISING = 119, "the server is still starting up"

    @property
    def is_success(self) -> bool:
        """True for 100, 105 and 106, the codes that open a client session.

        107 is not one: it carries no session id, token or ping period.
        """
        return self._value_ in (100, 105, 106)


_HANDSHAKE_FAILURES = {
    ResponseCode.AUTHENTICATION_FAILED: CloseReason.ACCESS_DENIED,
    ResponseCode.LICENSE_EXCEEDED: CloseReason.LICENSE_EXCEEDED,
    ResponseCode.DOWNGRADE: CloseReason.PROTOCOL_VERSION_MISMATCH,
}


def handshake_close_reason(
    protocol_byte: int, version: int, code: int, *, expected_version: Optional[int] = None
) -> Optional[CloseReason]:
    """Say how a client reports a connection response, as the vendor's JS client does.

    Args:
        protocol_byte: first byte of the response (0x23 expected).
        version: second byte, the server's protocol version.
        code: third byte, the :class:`ResponseCode`.
        expected_version: the client's own version; None skips the check.

    Returns:
        None if the session opened (code 100, 105 or 106); else HANDSHAKE_ERROR
        for a wrong protocol byte, PROTOCOL_VERSION_MISMATCH for another version
        or code 102, ACCESS_DENIED for 116, LICENSE_EXCEEDED for 113, and
        HANDSHAKE_REJECTED for every other code, unknown ones included.

    Raises:
        ValueError: an argument is not a byte.
    """
    for label, byte in (("protocol byte", protocol_byte), ("version", version), ("code", code)):
        if not 0 <= byte <= 0xFF:
            raise ValueError(f"handshake {label} {byte} is not in 0..255")
    if protocol_byte != HANDSHAKE_PROTOCOL_BYTE:
        return CloseReason.HANDSHAKE_ERROR
    if expected_version is not None and version != expected_version:
        return CloseReason.PROTOCOL_VERSION_MISMATCH
    response = ResponseCode(code)
    if response.is_success:
        return None
    return _HANDSHAKE_FAILURES.get(response, CloseReason.HANDSHAKE_REJECTED)


# ---------------------------------------------------------------------------
# WebSocket close codes (RFC 6455 §7.4.1, §7.4.2; the IANA WebSocket Close Code Number Registry, RFC 6455 §11.7)


#: The status codes a close frame may carry, as inclusive ``(low, high)`` ranges (RFC 6455 §7.4.1,
#: §7.4.2): the rule of :func:`websocket_close_code_allowed_on_wire`, as data for the compiled decoder.
WEBSOCKET_CLOSE_CODES_ON_WIRE: Tuple[Tuple[int, int], ...] = ((1000, 1003), (1007, 1014), (3000, 4999))


def websocket_close_code_allowed_on_wire(code: int) -> bool:
    """Say whether a close frame may carry ``code``.

    Args:
        code: a status code.

    Returns:
        True for 1000-1003, 1007-1014 and 3000-4999 (:data:`WEBSOCKET_CLOSE_CODES_ON_WIRE`);
        False for everything else, including the local-only 1005, 1006 and 1015 and
        the reserved 1004.
    """
    for low, high in WEBSOCKET_CLOSE_CODES_ON_WIRE:
        if low <= code <= high:
            return True
    return False


class WebSocketCloseCode(OpenIntEnum):
    """A WebSocket close status code: every code of the IANA registry, 1000-1015.

    Any value 0..65535 constructs. A code without a member becomes a
    pseudo-member named by its range: REGISTERED (3000-3999), PRIVATE_USE
    (4000-4999), or UNKNOWN (never valid in a close frame). ``str()`` reads
    ``1000 (normal closure)``.
    """

    __value_range__ = (0, 0xFFFF)

    NORMAL_CLOSURE = 1000, "the connection did what it was opened for"
    GOING_AWAY = 1001, "the endpoint is leaving: a server going down or a page navigated away"
    PROTOCOL_ERROR = 1002, "the endpoint saw the protocol broken"
    UNSUPPORTED_DATA = 1003, "the endpoint received a kind of data it cannot accept"
    RESERVED = 1004, "reserved; never sent"
    NO_STATUS_RECEIVED = 1005, "local only: the close frame had no status code"
    ABNORMAL_CLOSURE = 1006, "local only: the connection ended without a close frame"
    INVALID_PAYLOAD_DATA = 1007, "a message's data did not match its type, e.g. text that is not UTF-8"
    POLICY_VIOLATION = 1008, "a message broke the endpoint's policy (the generic refusal)"
    MESSAGE_TOO_BIG = 1009, "a message was too big to process"
    MANDATORY_EXTENSION = 1010, "the client needed an extension the server did not agree to"
    INTERNAL_ERROR = 1011, "an unexpected condition stopped the endpoint"
    SERVICE_RESTART = 1012, "the service is restarting"
    TRY_AGAIN_LATER = 1013, "a temporary condition: come back later"
    BAD_GATEWAY = 1014, "a gateway got a bad answer from the server behind it"
    TLS_HANDSHAKE = 1015, "local only: the TLS handshake failed"

    @classmethod
    def _unknown(cls, value: int) -> Tuple[str, Tuple[Any, ...]]:
        if 3000 <= value <= 3999:
            return "REGISTERED", ("a code registered with IANA by a library, framework or application",)
        if 4000 <= value <= 4999:
            return "PRIVATE_USE", ("a private-use code, meaning agreed between the applications",)
        if 1016 <= value <= 2999:
            return "UNKNOWN", ("reserved for later WebSocket revisions; not valid on the wire",)
        return "UNKNOWN", ("outside the status-code ranges; not valid on the wire",)

    @property
    def allowed_on_wire(self) -> bool:
        """Whether a close frame may carry this code; see :func:`websocket_close_code_allowed_on_wire`."""
        return websocket_close_code_allowed_on_wire(self._value_)

    @property
    def sender(self) -> Optional[str]:
        """Who may send it: ``"client"`` for 1010, ``"both"``, or None if no one may."""
        if not self.allowed_on_wire:
            return None
        return "client" if self._value_ == 1010 else "both"

    def __str__(self) -> str:
        label = self._name_.lower().replace("_", " ").replace("tls", "TLS")
        return f"{self._value_} ({label})"


# ---------------------------------------------------------------------------
# MQTT (OASIS MQTT 5.0 §2.4, §3.14.2.1, §3.2.2.2; MQTT 3.1.1 §3.2.2.3)


_ANY_PACKET = "CONNACK PUBACK PUBREC PUBREL PUBCOMP SUBACK UNSUBACK DISCONNECT AUTH"
_ERROR_PACKETS = "CONNACK PUBACK PUBREC SUBACK UNSUBACK DISCONNECT"


class MqttReasonCode(OpenIntEnum):
    """An MQTT 5.0 reason code: every code of the standard's §2.4 table.

    One member per value; 0x00 is SUCCESS, with the aliases NORMAL_DISCONNECTION
    (its name in DISCONNECT) and GRANTED_QOS_0 (in SUBACK); see :meth:`name_in`.
    ``packets`` lists the packets the standard allows it in; ``disconnect_sender``
    says who may send it in a DISCONNECT (``"client"``, ``"server"``, ``"both"``),
    None if it is not a DISCONNECT reason.
    """

    # NAME = value, description, packets it may appear in, who may send it in DISCONNECT
    SUCCESS = 0x00, "success; normal disconnection in DISCONNECT, maximum QoS 0 in SUBACK", _ANY_PACKET, "both"
    NORMAL_DISCONNECTION = SUCCESS
    GRANTED_QOS_0 = SUCCESS
    GRANTED_QOS_1 = 0x01, "subscription accepted, maximum QoS 1", "SUBACK", None
    GRANTED_QOS_2 = 0x02, "subscription accepted, maximum QoS 2", "SUBACK", None
    DISCONNECT_WITH_WILL_MESSAGE = 0x04, "the client leaves and wants its will published", "DISCONNECT", "client"
    NO_MATCHING_SUBSCRIBERS = 0x10, "accepted, but no one is subscribed", "PUBACK PUBREC", None
    NO_SUBSCRIPTION_EXISTED = 0x11, "there was no such subscription to remove", "UNSUBACK", None
    CONTINUE_AUTHENTICATION = 0x18, "authentication goes on with another step", "AUTH", None
    RE_AUTHENTICATE = 0x19, "the client starts authenticating again", "AUTH", None
    UNSPECIFIED_ERROR = 0x80, "an error the sender does not name", _ERROR_PACKETS, "both"
    MALFORMED_PACKET = 0x81, "a packet could not be parsed", "CONNACK DISCONNECT", "both"
    PROTOCOL_ERROR = 0x82, "a packet parsed but not allowed, or out of order", "CONNACK DISCONNECT", "both"
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83, "valid, but this implementation will not process it", _ERROR_PACKETS, "both"
    UNSUPPORTED_PROTOCOL_VERSION = 0x84, "the server does not speak the requested version", "CONNACK", None
    CLIENT_IDENTIFIER_NOT_VALID = 0x85, "the client id is well formed but refused", "CONNACK", None
    BAD_USER_NAME_OR_PASSWORD = 0x86, "the user name or password was refused", "CONNACK", None
    NOT_AUTHORIZED = 0x87, "not authorised", _ERROR_PACKETS, "server"
    SERVER_UNAVAILABLE = 0x88, "the server cannot serve now", "CONNACK", None
    SERVER_BUSY = 0x89, "the server is busy; try later", "CONNACK DISCONNECT", "server"
    BANNED = 0x8A, "the client is banned", "CONNACK", None
    SERVER_SHUTTING_DOWN = 0x8B, "the server is shutting down", "DISCONNECT", "server"
    # §2.4 allows 0x8C in DISCONNECT though §3.14's list omits it: accepted on decode.
    BAD_AUTHENTICATION_METHOD = 0x8C, "authentication method not supported or changed", "CONNACK DISCONNECT", "server"
    KEEP_ALIVE_TIMEOUT = 0x8D, "nothing arrived for 1.5 keep-alive periods", "DISCONNECT", "server"
    SESSION_TAKEN_OVER = 0x8E, "a connection with the same client id took the session", "DISCONNECT", "server"
    TOPIC_FILTER_INVALID = 0x8F, "the topic filter is well formed but refused", "SUBACK UNSUBACK DISCONNECT", "server"
    TOPIC_NAME_INVALID = 0x90, "the topic name is well formed but refused", "CONNACK PUBACK PUBREC DISCONNECT", "both"
    PACKET_IDENTIFIER_IN_USE = 0x91, "the packet identifier is in use", "PUBACK PUBREC SUBACK UNSUBACK", None
    PACKET_IDENTIFIER_NOT_FOUND = 0x92, "the packet identifier is not known", "PUBREL PUBCOMP", None
    RECEIVE_MAXIMUM_EXCEEDED = 0x93, "more QoS 1 and 2 publishes in flight than allowed", "DISCONNECT", "both"
    TOPIC_ALIAS_INVALID = 0x94, "a topic alias out of range or not defined", "DISCONNECT", "both"
    PACKET_TOO_LARGE = 0x95, "a packet over the maximum packet size", "CONNACK DISCONNECT", "both"
    MESSAGE_RATE_TOO_HIGH = 0x96, "data arrived faster than allowed", "DISCONNECT", "both"
    QUOTA_EXCEEDED = 0x97, "a configured limit was reached", "CONNACK PUBACK PUBREC SUBACK DISCONNECT", "both"
    ADMINISTRATIVE_ACTION = 0x98, "closed by an administrator", "DISCONNECT", "both"
    PAYLOAD_FORMAT_INVALID = 0x99, "payload unlike its format indicator", "CONNACK PUBACK PUBREC DISCONNECT", "both"
    RETAIN_NOT_SUPPORTED = 0x9A, "the server keeps no retained messages", "CONNACK DISCONNECT", "server"
    QOS_NOT_SUPPORTED = 0x9B, "a QoS above the server's maximum", "CONNACK DISCONNECT", "server"
    USE_ANOTHER_SERVER = 0x9C, "use another server for now", "CONNACK DISCONNECT", "server"
    SERVER_MOVED = 0x9D, "use another server from now on", "CONNACK DISCONNECT", "server"
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E, "no shared subscriptions", "SUBACK DISCONNECT", "server"
    CONNECTION_RATE_EXCEEDED = 0x9F, "the client connects too often", "CONNACK DISCONNECT", "server"
    MAXIMUM_CONNECT_TIME = 0xA0, "the connection reached its permitted lifetime", "DISCONNECT", "server"
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1, "no subscription identifiers", "SUBACK DISCONNECT", "server"
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2, "no wildcard subscriptions", "SUBACK DISCONNECT", "server"

    def __init__(
        self, value: int, description: str = "", packets: str = "", sender: Optional[str] = None
    ) -> None:
        super().__init__(value, description)
        self._packets = frozenset(packets.split())
        self._disconnect_sender = sender

    @classmethod
    def _unknown(cls, value: int) -> Tuple[str, Tuple[Any, ...]]:
        kind = "an error" if value >= 0x80 else "a success"
        return "UNKNOWN", (f"a code MQTT 5.0 does not define ({kind} by its value)", "", None)

    @property
    def packets(self) -> FrozenSet[str]:
        """The packet types the standard allows this code in, e.g. ``{"CONNACK", "DISCONNECT"}``."""
        return self._packets

    @property
    def disconnect_sender(self) -> Optional[str]:
        """Who may send it in a DISCONNECT: ``"client"``, ``"server"``, ``"both"`` or None."""
        return self._disconnect_sender

    @property
    def is_error(self) -> bool:
        """True for 0x80 and above, the codes that mean failure."""
        return self._value_ >= 0x80

    def name_in(self, packet: str) -> str:
        """The standard's name for this code in ``packet`` (they differ only for 0x00).

        Args:
            packet: a packet type name such as ``"DISCONNECT"``.

        Returns:
            ``NORMAL_DISCONNECTION`` for 0x00 in DISCONNECT, ``GRANTED_QOS_0``
            for 0x00 in SUBACK, otherwise ``name``.
        """
        if self._value_ == 0 and packet in ("DISCONNECT", "SUBACK"):
            return "NORMAL_DISCONNECTION" if packet == "DISCONNECT" else "GRANTED_QOS_0"
        return self._name_

    def __str__(self) -> str:
        return f"{self._name_} (0x{self._value_:02X})"


def mqtt_disconnect_reason_allowed(code: int, sender: Optional[str] = None) -> bool:
    """Say whether an MQTT 5.0 DISCONNECT may carry ``code``.

    Args:
        code: the reason code.
        sender: ``"client"`` or ``"server"`` to ask about one direction; None
            for either.

    Returns:
        True if the code is a DISCONNECT reason (0x8C included, accepted on
        decode) that ``sender`` may send.

    Raises:
        ValueError: ``sender`` is not None, ``"client"`` or ``"server"``.
    """
    if sender not in (None, "client", "server"):
        raise ValueError(f"sender must be None, 'client' or 'server', not {sender!r}")
    if not 0 <= code <= 0xFF:
        return False
    allowed = MqttReasonCode(code).disconnect_sender
    return allowed is not None and (sender is None or allowed in (sender, "both"))


class MqttConnackReturnCode(OpenIntEnum):
    """An MQTT 3.1.1 CONNACK return code (6..255 are reserved and decode as UNKNOWN)."""

    CONNECTION_ACCEPTED = 0, "the connection was accepted"
    UNACCEPTABLE_PROTOCOL_VERSION = 1, "the server does not speak the requested protocol level"
    IDENTIFIER_REJECTED = 2, "the client id is valid UTF-8 but refused"
    SERVER_UNAVAILABLE = 3, "the network connection is up but the MQTT service is not"
    BAD_USER_NAME_OR_PASSWORD = 4, "the user name or password is malformed or wrong"
    NOT_AUTHORIZED = 5, "the client may not connect"


# ---------------------------------------------------------------------------
# The gateway mapping: Diffusion reason <-> WebSocket close code / MQTT 5 DISCONNECT


@dataclass(frozen=True)
class GatewayMapping:
    """What a gateway sends its peer when a Diffusion session closes for ``reason``.

    Attributes:
        reason: the Diffusion close reason.
        websocket_code: the close code to send (always valid on the wire).
        mqtt_reason_code: the DISCONNECT reason to send (always one a server may send).
        why: the choice, in one line.
    """

    reason: ClientCloseReason
    websocket_code: WebSocketCloseCode
    mqtt_reason_code: MqttReasonCode
    why: str


_W = WebSocketCloseCode
_M = MqttReasonCode
GATEWAY_MAPPINGS: Tuple[GatewayMapping, ...] = tuple(
    GatewayMapping(reason, websocket, mqtt, why)
    for reason, websocket, mqtt, why in (
        (_R.CONNECTION_LOST, _W.GOING_AWAY, _M.UNSPECIFIED_ERROR,
         'the link under the session broke; "going away" invites a reconnect, MQTT has no closer code'),
        (_R.IO_EXCEPTION, _W.GOING_AWAY, _M.UNSPECIFIED_ERROR,
         "an I/O failure is a lost connection by another cause; same codes as CONNECTION_LOST"),
        (_R.CLIENT_UNRESPONSIVE, _W.GOING_AWAY, _M.KEEP_ALIVE_TIMEOUT,
         'MQTT names the keep-alive timeout; WebSocket has no such code, so recoverable "going away"'),
        (_R.MESSAGE_QUEUE_LIMIT_REACHED, _W.POLICY_VIOLATION, _M.QUOTA_EXCEEDED,
         "a configured limit on queued data was reached: MQTT's quota code, WebSocket's generic refusal"),
        (_R.CLOSED_BY_CLIENT, _W.NORMAL_CLOSURE, _M.SUCCESS,
         "the client asked to close: a normal closure in both protocols"),
        (_R.MESSAGE_TOO_LARGE, _W.MESSAGE_TOO_BIG, _M.PACKET_TOO_LARGE,
         "both protocols have a code for a message over the size limit"),
        (_R.INTERNAL_ERROR, _W.INTERNAL_ERROR, _M.IMPLEMENTATION_SPECIFIC_ERROR,
         "a server fault: WebSocket's internal error, MQTT's implementation-specific error"),
        (_R.INVALID_INBOUND_MESSAGE, _W.PROTOCOL_ERROR, _M.MALFORMED_PACKET,
         "the peer broke the protocol; 1007 is for data unlike its frame's type, not binary messages"),
        (_R.ABORTED, _W.POLICY_VIOLATION, _M.UNSPECIFIED_ERROR,
         "the server refused to go on and gives no detail: each protocol's generic refusal"),
        (_R.LOST_MESSAGES, _W.PROTOCOL_ERROR, _M.PROTOCOL_ERROR,
         "a broken message sequence is a protocol fault; MQTT's code names out-of-order packets"),
        (_R.SERVER_CLOSING, _W.GOING_AWAY, _M.SERVER_SHUTTING_DOWN,
         "the server is going down: RFC 6455 gives it as the example of 1001; MQTT has a shutdown code"),
        (_R.CLOSED_BY_CONTROLLER, _W.POLICY_VIOLATION, _M.ADMINISTRATIVE_ACTION,
         "an operator closed the session: MQTT's administrative action; WebSocket has none, so generic"),
        (_R.FAILED_OVER, _W.SERVICE_RESTART, _M.USE_ANOTHER_SERVER,
         "the session moved to another server: reconnect elsewhere (add a Server Reference if known)"),
        (_R.EXPIRED, _W.POLICY_VIOLATION, _M.MAXIMUM_CONNECT_TIME,
         "the session outlived its permitted time: MQTT's maximum connect time"),
        (_R.REVOKED, _W.POLICY_VIOLATION, _M.NOT_AUTHORIZED,
         "the session's authentication was withdrawn, so it is no longer authorised"),
        (_R.SESSION_TAKEN_OVER, _W.POLICY_VIOLATION, _M.SESSION_TAKEN_OVER,
         "MQTT-3.1.4-3 takeover; 1008 because a reconnect invited by 1001 would steal the session back"),
    )
)
"""One row per :class:`ClientCloseReason` member, in wire order."""

_GATEWAY_BY_REASON = {mapping.reason: mapping for mapping in GATEWAY_MAPPINGS}


def gateway_codes(reason: Union[ClientCloseReason, int]) -> GatewayMapping:
    """Give the WebSocket close code and MQTT DISCONNECT reason for a Diffusion reason.

    Args:
        reason: a close reason (a plain int is read as a wire value).

    Returns:
        Its row of :data:`GATEWAY_MAPPINGS`; for an unknown reason, a row with
        the generic codes 1008 and 0x80.
    """
    if not isinstance(reason, ClientCloseReason):
        reason = ClientCloseReason(reason)
    mapping = _GATEWAY_BY_REASON.get(reason)
    if mapping is None:
        mapping = GatewayMapping(
            reason,
            WebSocketCloseCode.POLICY_VIOLATION,
            MqttReasonCode.UNSPECIFIED_ERROR,
            "a reason this version does not know: each protocol's generic code",
        )
    return mapping


# Reverse direction. Both functions answer with values every current vendor
# client accepts: never SERVER_CLOSING (JS 6.12.1 drops a batch holding 10).
_FROM_WEBSOCKET: Dict[int, ClientCloseReason] = {
    1000: _R.CLOSED_BY_CLIENT,
    1001: _R.CONNECTION_LOST,
    1002: _R.INVALID_INBOUND_MESSAGE,
    1003: _R.INVALID_INBOUND_MESSAGE,
    1004: _R.INVALID_INBOUND_MESSAGE,
    1005: _R.CLOSED_BY_CLIENT,
    1006: _R.CONNECTION_LOST,
    1007: _R.INVALID_INBOUND_MESSAGE,
    1008: _R.ABORTED,
    1009: _R.MESSAGE_TOO_LARGE,
    1010: _R.CLOSED_BY_CLIENT,
    1011: _R.INTERNAL_ERROR,
    1012: _R.FAILED_OVER,
    1013: _R.CONNECTION_LOST,
    1014: _R.CONNECTION_LOST,
    1015: _R.IO_EXCEPTION,
}

_FROM_MQTT: Dict[int, ClientCloseReason] = {
    0x00: _R.CLOSED_BY_CLIENT,
    0x04: _R.CLOSED_BY_CLIENT,
    0x80: _R.CONNECTION_LOST,
    0x81: _R.INVALID_INBOUND_MESSAGE,
    0x82: _R.LOST_MESSAGES,
    0x83: _R.INTERNAL_ERROR,
    0x87: _R.REVOKED,
    0x89: _R.CONNECTION_LOST,
    0x8B: _R.CONNECTION_LOST,
    0x8C: _R.REVOKED,
    0x8D: _R.CLIENT_UNRESPONSIVE,
    0x8E: _R.SESSION_TAKEN_OVER,
    0x8F: _R.INVALID_INBOUND_MESSAGE,
    0x90: _R.INVALID_INBOUND_MESSAGE,
    0x93: _R.MESSAGE_QUEUE_LIMIT_REACHED,
    0x94: _R.INVALID_INBOUND_MESSAGE,
    0x95: _R.MESSAGE_TOO_LARGE,
    0x96: _R.MESSAGE_QUEUE_LIMIT_REACHED,
    0x97: _R.MESSAGE_QUEUE_LIMIT_REACHED,
    0x98: _R.CLOSED_BY_CONTROLLER,
    0x99: _R.INVALID_INBOUND_MESSAGE,
    0x9A: _R.INVALID_INBOUND_MESSAGE,
    0x9B: _R.INVALID_INBOUND_MESSAGE,
    0x9C: _R.FAILED_OVER,
    0x9D: _R.FAILED_OVER,
    0x9E: _R.INVALID_INBOUND_MESSAGE,
    0x9F: _R.ABORTED,
    0xA0: _R.EXPIRED,
    0xA1: _R.INVALID_INBOUND_MESSAGE,
    0xA2: _R.INVALID_INBOUND_MESSAGE,
}


def close_reason_from_websocket(code: int) -> ClientCloseReason:
    """Say which Diffusion reason a gateway reports for a WebSocket close code.

    Args:
        code: the close code received (or reported locally, e.g. 1006).

    Returns:
        The reason for 1000-1015 per docs/reasons.md; CLOSED_BY_CLIENT for
        3000-4999 (a deliberate close with an application meaning);
        INVALID_INBOUND_MESSAGE for any other code, none of which may be sent.

    Raises:
        ValueError: ``code`` is not in 0..65535.
    """
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"WebSocket close code {code} is not in 0..65535")
    reason = _FROM_WEBSOCKET.get(code)
    if reason is None:
        reason = _R.CLOSED_BY_CLIENT if 3000 <= code <= 4999 else _R.INVALID_INBOUND_MESSAGE
    return reason


def close_reason_from_mqtt(code: int) -> ClientCloseReason:
    """Say which Diffusion reason a gateway reports for an MQTT 5.0 DISCONNECT reason code.

    Args:
        code: the DISCONNECT reason code received.

    Returns:
        The reason for each DISCONNECT code per docs/reasons.md; for any other
        byte, by MQTT's own split: CLOSED_BY_CLIENT below 0x80 (like 0x00),
        CONNECTION_LOST from 0x80 (like 0x80, an unnamed error).

    Raises:
        ValueError: ``code`` is not a byte.
    """
    if not 0 <= code <= 0xFF:
        raise ValueError(f"MQTT reason code {code} is not in 0..255")
    reason = _FROM_MQTT.get(code)
    if reason is None:
        reason = _R.CONNECTION_LOST if code >= 0x80 else _R.CLOSED_BY_CLIENT
    return reason


def reason_table() -> List[Dict[str, object]]:
    """Rows of the cross-protocol table that ``closecodec reasons`` prints.

    Returns:
        One dict per :class:`ClientCloseReason` member, in wire order, with
        keys ``wire``, ``published`` (None where that numbering has no value),
        ``name``, ``recoverable``, ``description``, ``websocket_code``,
        ``websocket_name``, ``mqtt_code``, ``mqtt_code_hex``, ``mqtt_name``
        (its DISCONNECT name) and ``why``.
    """
    rows: List[Dict[str, object]] = []
    for mapping in GATEWAY_MAPPINGS:
        reason, mqtt = mapping.reason, mapping.mqtt_reason_code
        rows.append(
            {
                "wire": int(reason),
                "published": _WIRE_TO_PUBLISHED.get(reason),
                "name": reason.name,
                "recoverable": reason.recoverable,
                "description": reason.description,
                "websocket_code": int(mapping.websocket_code),
                "websocket_name": mapping.websocket_code.name,
                "mqtt_code": int(mqtt),
                "mqtt_code_hex": f"0x{int(mqtt):02X}",
                "mqtt_name": mqtt.name_in("DISCONNECT"),
                "why": mapping.why,
            }
        )
    return rows

