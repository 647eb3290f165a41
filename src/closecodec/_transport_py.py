"""Pure-Python transport backend: WebSocket frames and MQTT packets.

Same names, results and errors as ``_transport_c``. Decoders take any
C-contiguous buffer and a start offset and return ``(value, next_offset)``;
encoders return bytes. Wire facts: RFC 6455, RFC 7692, OASIS MQTT 5.0 and MQTT 3.1.1; the choices below are
documented in docs/transports.md and are identical in ``_transport_c``.

WebSocket (RFC 6455 §5.2):

- A frame's header is checked field by field as its bytes arrive, so a prefix
  that is already invalid is malformed, not incomplete. Incomplete errors point
  at the frame's first byte (where a streaming caller resumes).
- Lengths must be in their shortest form unless ``minimal_length=False``; the
  64-bit length's top bit must be clear. A length over ``max_payload`` fails
  with close code 1009 before anything is allocated.
- RSV bits must be allowed by ``rsv_allowed``; control frames never carry them.
- ``expect_masked`` states the decoder's side: True for a server (client frames
  are masked), False for a client, None (the default) accepts both, for readers
  of captures; the frame reports ``mask_key`` either way.

MQTT (MQTT 5.0 §2, §3.2, §3.14; MQTT 3.1.1):

- Malformed (0x81) errors are raised as soon as they are met; protocol errors
  (0x82) are remembered and raised only once the whole packet has parsed, so a
  packet that is both is reported as malformed (MQTT 5 §4.13: malformed means
  it cannot be parsed at all).
- ``version=None`` infers the version where the bytes say it and reports None
  for ``e0 00``, identical in 3.1.1 and in 5.0's short form.
"""

from __future__ import annotations

from operator import index
from typing import Any, Optional, Tuple

from .buffer import byte_view, start_reading, varint_bytes
from .errors import EncodeError, IncompleteError, MqttPacketError, WebSocketFrameError
from .frames import (
    MQTT_PACKET_PROPERTIES,
    MQTT_PROPERTY_TYPES,
    MqttConnack,
    MqttDisconnect,
    MqttOtherPacket,
    MqttPacketType,
    MqttPropertyId,
    WebSocketClose,
    WebSocketFrame,
    WebSocketHeader,
    WebSocketOpcode,
)
from .reasons import (
    MqttReasonCode,
    mqtt_disconnect_reason_allowed,
    websocket_close_code_allowed_on_wire,
)

__all__ = [
    "DEFAULT_MAX_WS_PAYLOAD",
    "decode_mqtt_packet",
    "decode_mqtt_varint",
    "decode_ws_frame",
    "decode_ws_header",
    "encode_mqtt_packet",
    "encode_mqtt_varint",
    "encode_ws_frame",
    "unmask_ws_payload",
]

#: Default ``max_payload`` of :func:`decode_ws_frame`: 16 MiB.
DEFAULT_MAX_WS_PAYLOAD = 16 * 1024 * 1024

_MAX_CONTROL_PAYLOAD = 125
_MAX_CLOSE_REASON = 123
_MAX_VBI = 268_435_455
_MALFORMED, _PROTOCOL_ERROR, _PACKET_TOO_LARGE = 0x81, 0x82, 0x95
_OPCODES = tuple(WebSocketOpcode(op) if op in (0, 1, 2, 8, 9, 10) else None for op in range(16))
_DISCONNECT, _CONNACK = MqttPacketType.DISCONNECT, MqttPacketType.CONNACK
_PROPERTY_IDS = {int(pid): pid for pid in MqttPropertyId}
# MQTT 5 §3.2.2.3: these Byte properties are 0 or 1, these integers never 0.
_BOOLEAN_PROPERTIES = frozenset(
    (
        MqttPropertyId.MAXIMUM_QOS,
        MqttPropertyId.RETAIN_AVAILABLE,
        MqttPropertyId.WILDCARD_SUBSCRIPTION_AVAILABLE,
        MqttPropertyId.SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        MqttPropertyId.SHARED_SUBSCRIPTION_AVAILABLE,
    )
)
_NONZERO_PROPERTIES = frozenset((MqttPropertyId.RECEIVE_MAXIMUM, MqttPropertyId.MAXIMUM_PACKET_SIZE))


# -- WebSocket -----------------------------------------------------------------


def unmask_ws_payload(data: Any, mask_key: Any, phase: int = 0, /) -> bytes:
    """Unmask (or mask: the same XOR) a WebSocket payload (RFC 6455 §5.3).

    Args:
        data: the payload bytes, any C-contiguous buffer.
        mask_key: the frame's 4-byte masking key.
        phase: the payload position of ``data[0]`` modulo 4, for a payload
            unmasked in pieces.

    Returns:
        ``data[i] ^ mask_key[(phase + i) % 4]`` for every byte, as bytes.

    Raises:
        TypeError: ``mask_key`` is not 4 bytes.
        ValueError: ``phase`` is not 0..3.
    """
    key = bytes(byte_view(mask_key))
    if len(key) != 4:
        raise TypeError("a masking key is 4 bytes")
    phase = index(phase)
    if not 0 <= phase <= 3:
        raise ValueError(f"phase {phase} is not 0..3")
    return _xor(bytes(byte_view(data)), key[phase:] + key[:phase])


def _xor(data: bytes, key: bytes) -> bytes:
    size = len(data)
    if not size:
        return b""
    # One big-integer XOR: far faster in CPython than a loop over bytes.
    keys = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(keys, "little")).to_bytes(size, "little")


def _read_header(
    data: Any, start: int, size: int, expect_masked: Optional[bool], rsv_allowed: int, minimal_length: bool,
    max_payload: Optional[int],
) -> Tuple[bool, int, Any, Optional[bytes], int, int]:
    """Header fields and the payload's offset; the layout is RFC 6455 §5.2's."""
    if size - start < 2:
        raise IncompleteError("WebSocket frame header", start)
    byte0 = data[start]
    fin = byte0 & 0x80 != 0
    rsv = (byte0 >> 4) & 0x07
    opcode = _OPCODES[byte0 & 0x0F]
    if opcode is None:
        raise WebSocketFrameError(f"reserved opcode {byte0 & 0x0F}", start)
    control = opcode >= 8
    if rsv & ~(0 if control else rsv_allowed):
        what = "on a control frame" if control else "and no negotiated extension allows them"
        raise WebSocketFrameError(f"RSV bits {rsv:#x} are set {what}", start)
    if control and not fin:
        raise WebSocketFrameError(f"control frame (opcode {int(opcode)}) is fragmented (FIN clear)", start)
    byte1 = data[start + 1]
    masked = byte1 & 0x80 != 0
    if expect_masked is not None and masked != expect_masked:
        which = "unmasked frame where masking is required" if expect_masked else "masked frame where masking is forbidden"
        raise WebSocketFrameError(which, start + 1)
    length = byte1 & 0x7F
    if control and length > _MAX_CONTROL_PAYLOAD:
        raise WebSocketFrameError("control frame payload longer than 125 bytes", start + 1)
    pos = start + 2
    length_at = start + 1
    if length >= 126:
        width = 2 if length == 126 else 8
        length_at = pos
        if width == 8 and pos < size and data[pos] & 0x80:
            raise WebSocketFrameError("64-bit payload length has its most significant bit set", pos)
        if size - pos < width:
            raise IncompleteError("WebSocket frame header", start)
        length = int.from_bytes(data[pos:pos + width], "big")
        if minimal_length and length < (126 if width == 2 else 0x10000):
            raise WebSocketFrameError(f"payload length {length} is not in its shortest form", pos)
        pos += width
    if max_payload is not None and length > max_payload:
        raise WebSocketFrameError(f"payload of {length} bytes is over the {max_payload}-byte limit", length_at, 1009)
    mask_key = None
    if masked:
        if size - pos < 4:
            raise IncompleteError("WebSocket frame header", start)
        mask_key = bytes(data[pos:pos + 4])
        pos += 4
    return fin, rsv, opcode, mask_key, length, pos


def _options(max_payload: Any, rsv_allowed: Any) -> None:
    if max_payload is not None and (type(max_payload) is not int or max_payload < 0):
        raise ValueError(f"max_payload must be None or an int >= 0, not {max_payload!r}")
    if type(rsv_allowed) is not int or not 0 <= rsv_allowed <= 7:
        raise ValueError(f"rsv_allowed must be 0..7 (RSV1 is 4), not {rsv_allowed!r}")


def decode_ws_header(
    buf: Any, offset: int = 0, /, *, expect_masked: Optional[bool] = None, rsv_allowed: int = 0,
    minimal_length: bool = True, max_payload: Optional[int] = None,
) -> Tuple[WebSocketHeader, int]:
    """Decode a WebSocket frame header; return ``(header, payload_offset)``.

    The payload itself is not needed (see :func:`decode_ws_frame` for whole
    frames); a streaming reader uses this for data frames too large to buffer.

    Args:
        expect_masked: True if this endpoint is a server (frames must be
            masked), False if a client (frames must not be), None to accept both.
        rsv_allowed: the RSV bits a negotiated extension allows on data frames
            (RSV1 is 4, RSV2 2, RSV3 1); control frames never carry any.
        minimal_length: refuse lengths not in their shortest form (RFC 6455
            §5.2 requires it); False accepts them, as some peers do.
        max_payload: refuse a longer payload with close code 1009; None: no limit.

    Raises:
        IncompleteError: the header ends early (offset: the frame's first byte).
        WebSocketFrameError: a header no further bytes can make valid; its
            ``close_code`` is 1002 (or 1009 over ``max_payload``).
    """
    data, start, size = start_reading(buf, offset)
    _options(max_payload, rsv_allowed)
    fin, rsv, opcode, mask_key, length, pos = _read_header(
        data, start, size, expect_masked, rsv_allowed, minimal_length, max_payload
    )
    return WebSocketHeader(fin, rsv, opcode, mask_key, length), pos


def decode_ws_frame(
    buf: Any, offset: int = 0, /, *, expect_masked: Optional[bool] = None, rsv_allowed: int = 0,
    minimal_length: bool = True, max_payload: Optional[int] = DEFAULT_MAX_WS_PAYLOAD,
) -> Tuple[Any, int]:
    """Decode one whole WebSocket frame, payload unmasked; return ``(frame, next_offset)``.

    A close frame becomes a :class:`WebSocketClose` whose body is checked (RFC
    6455 §5.5.1, §7.4); any other frame a :class:`WebSocketFrame`.

    Args:
        expect_masked, rsv_allowed, minimal_length: as for :func:`decode_ws_header`.
        max_payload: the longest payload accepted (default
            :data:`DEFAULT_MAX_WS_PAYLOAD`); longer fails at once, with close
            code 1009, before anything is allocated. None: no limit.

    Raises:
        IncompleteError: the frame ends early (offset: the frame's first byte).
        WebSocketFrameError: the frame can never be valid; ``close_code`` is
            what to answer: 1002 for a bad header, code or close length, 1007
            for a close reason that is not UTF-8, 1009 over ``max_payload``.
    """
    data, start, size = start_reading(buf, offset)
    _options(max_payload, rsv_allowed)
    fin, rsv, opcode, mask_key, length, pos = _read_header(
        data, start, size, expect_masked, rsv_allowed, minimal_length, max_payload
    )
    if size - pos < length:
        raise IncompleteError("WebSocket frame payload", start)
    end = pos + length
    payload = bytes(data[pos:end])
    if mask_key is not None:
        payload = _xor(payload, mask_key)
    if opcode != 8:
        return WebSocketFrame(opcode, payload, fin, rsv, mask_key), end
    return _close(payload, pos, mask_key), end


def _close(payload: bytes, pos: int, mask_key: Optional[bytes]) -> WebSocketClose:
    """A close body (RFC 6455 §5.5.1): empty, or a 2-byte code and a UTF-8 reason."""
    length = len(payload)
    if length == 0:
        return WebSocketClose(None, "", mask_key)
    if length == 1:
        raise WebSocketFrameError("close payload of 1 byte (a status code takes 2)", pos)
    code = payload[0] << 8 | payload[1]
    if not websocket_close_code_allowed_on_wire(code):
        raise WebSocketFrameError(f"close code {code} may not be sent in a close frame", pos)
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise WebSocketFrameError("invalid UTF-8 in the close reason", pos + 2 + error.start, 1007) from None
    return WebSocketClose(code, reason, mask_key)


def _ws_header_bytes(first: int, masked: bool, length: int) -> bytes:
    mask_bit = 0x80 if masked else 0
    if length < 126:
        return bytes((first, mask_bit | length))
    if length < 0x10000:
        return bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
    return bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")


def encode_ws_frame(frame: Any, /) -> bytes:
    """Encode a WebSocket frame: header (shortest length form), masking key, masked payload.

    Args:
        frame: a :class:`WebSocketClose` or :class:`WebSocketFrame`; it is
            masked with its ``mask_key`` if it has one.

    Raises:
        EncodeError: not a frame; a close code that may not be sent (1004-1006,
            1015, below 1000, 1016-2999, 5000 and up); a close reason over 123
            UTF-8 bytes or not encodable; a control frame that is fragmented,
            carries RSV bits or has a payload over 125 bytes.
    """
    kind = type(frame)
    if kind is WebSocketClose:
        code = frame.code
        if code is None:
            payload = b""
        else:
            if not websocket_close_code_allowed_on_wire(code):
                raise EncodeError(f"close code {int(code)} may not be sent in a close frame")
            try:
                reason = frame.reason.encode("utf-8")
            except UnicodeEncodeError:
                raise EncodeError("the close reason is not encodable as UTF-8 (lone surrogate)") from None
            if len(reason) > _MAX_CLOSE_REASON:
                raise EncodeError(f"close reason of {len(reason)} UTF-8 bytes is over the 123-byte limit")
            payload = int(code).to_bytes(2, "big") + reason
        first = 0x88
    elif kind is WebSocketFrame:
        payload = frame.payload
        opcode = frame.opcode
        if opcode >= 8:
            if not frame.fin:
                raise EncodeError(f"a control frame ({opcode.name}) cannot be fragmented")
            if frame.rsv:
                raise EncodeError(f"a control frame ({opcode.name}) carries no RSV bits")
            if len(payload) > _MAX_CONTROL_PAYLOAD:
                raise EncodeError(f"control frame payload of {len(payload)} bytes is over the 125-byte limit")
        first = (0x80 if frame.fin else 0) | frame.rsv << 4 | int(opcode)
    else:
        raise EncodeError(f"a WebSocket frame is a WebSocketFrame or WebSocketClose, not {kind.__name__}")
    mask_key = frame.mask_key
    header = _ws_header_bytes(first, mask_key is not None, len(payload))
    if mask_key is None:
        return header + payload
    return header + mask_key + _xor(payload, mask_key)


# -- MQTT ----------------------------------------------------------------------


def _read_vbi(data: Any, pos: int, end: int, what: str) -> Tuple[int, int]:
    """A Variable Byte Integer (MQTT 5 §1.5.5): at most 4 bytes, shortest form.

    Returns ``(value, next)``, or ``(-1, pos)`` when it runs past ``end``.
    """
    value = 0
    shift = 0
    at = pos
    while True:
        if at >= end:
            return -1, pos
        byte = data[at]
        if at - pos == 3 and byte & 0x80:
            raise MqttPacketError(f"{what} is longer than 4 bytes", at)
        if byte == 0 and at > pos:
            raise MqttPacketError(f"{what} is not in its shortest form", at)
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7


def decode_mqtt_varint(buf: Any, offset: int = 0, /) -> Tuple[int, int]:
    """Decode an MQTT Variable Byte Integer (MQTT 5 §1.5.5); return ``(value, next_offset)``.

    Raises:
        IncompleteError: it runs past the end of ``buf``.
        MqttPacketError: more than 4 bytes, or not in its shortest form (0x81).
    """
    data, start, size = start_reading(buf, offset)
    value, end = _read_vbi(data, start, size, "Variable Byte Integer")
    if value < 0:
        raise IncompleteError("Variable Byte Integer", start)
    return value, end


def encode_mqtt_varint(value: int, /) -> bytes:
    """Encode an MQTT Variable Byte Integer, 0..268,435,455, in its shortest form.

    Raises:
        EncodeError: not an int, or out of range.
    """
    if type(value) is not int:
        raise EncodeError(f"a Variable Byte Integer needs an int, not {type(value).__name__}")
    if not 0 <= value <= _MAX_VBI:
        raise EncodeError(f"{value} is outside the Variable Byte Integer range 0..268435455")
    return varint_bytes(value)


class _Deferred:
    """The first protocol error (0x82) seen in a packet, raised once it has parsed."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: Optional[MqttPacketError] = None

    def note(self, message: str, offset: int) -> None:
        if self.error is None:
            self.error = MqttPacketError(message, offset, _PROTOCOL_ERROR)


def _read_string(data: Any, pos: int, end: int, what: str) -> Tuple[str, int]:
    """A UTF-8 Encoded String (MQTT 5 §1.5.4): 2-byte length, strict UTF-8, no U+0000."""
    if end - pos < 2:
        raise MqttPacketError(f"{what} runs past the end of the properties", pos)
    length = data[pos] << 8 | data[pos + 1]
    if end - pos - 2 < length:
        raise MqttPacketError(f"{what} runs past the end of the properties", pos)
    raw = bytes(data[pos + 2:pos + 2 + length])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MqttPacketError(f"invalid UTF-8 in {what}", pos + 2 + error.start) from None
    null = raw.find(0)  # in valid UTF-8, a zero byte is U+0000 and nothing else
    if null >= 0:
        raise MqttPacketError(f"U+0000 in {what}", pos + 2 + null)
    return text, pos + 2 + length


def _read_properties(data: Any, pos: int, end: int, packet: MqttPacketType, deferred: _Deferred) -> Tuple[tuple, int]:
    """Property Length and the properties (MQTT 5 §2.2.2) of a CONNACK or DISCONNECT."""
    length, at = _read_vbi(data, pos, end, "Property Length")
    if length < 0:
        raise MqttPacketError("Property Length runs past the end of the packet", pos)
    if end - at < length:
        raise MqttPacketError(f"properties of {length} bytes run past the end of the packet", pos)
    limit = at + length
    allowed = MQTT_PACKET_PROPERTIES[packet]
    seen = set()
    properties = []
    while at < limit:
        id_at = at
        number, at = _read_vbi(data, at, limit, "property identifier")
        if number < 0:
            raise MqttPacketError("property identifier runs past the end of the properties", id_at)
        pid = _PROPERTY_IDS.get(number)
        if pid is None:
            raise MqttPacketError(f"unknown property identifier 0x{number:02X}", id_at)
        name = f"{pid.name} (0x{number:02X})"
        if pid not in allowed:
            raise MqttPacketError(f"property {name} is not allowed in {packet.name}", id_at)
        kind = MQTT_PROPERTY_TYPES[pid]
        if kind == "utf8":
            value, at = _read_string(data, at, limit, name)
        elif kind == "pair":
            key, at = _read_string(data, at, limit, name)
            text, at = _read_string(data, at, limit, name)
            value = (key, text)
        elif kind == "binary":
            if limit - at < 2 or limit - at - 2 < (data[at] << 8 | data[at + 1]):
                raise MqttPacketError(f"{name} runs past the end of the properties", at)
            size = data[at] << 8 | data[at + 1]
            value, at = bytes(data[at + 2:at + 2 + size]), at + 2 + size
        else:
            width = 1 if kind == "byte" else 2 if kind == "u16" else 4
            if limit - at < width:
                raise MqttPacketError(f"{name} runs past the end of the properties", at)
            value = int.from_bytes(data[at:at + width], "big")
            if pid in _BOOLEAN_PROPERTIES and value > 1:
                deferred.note(f"{name} is {value}, not 0 or 1", at)
            elif pid in _NONZERO_PROPERTIES and value == 0:
                deferred.note(f"{name} is 0", at)
            at += width
        if pid in seen and pid != MqttPropertyId.USER_PROPERTY:
            deferred.note(f"property {name} appears more than once", id_at)
        seen.add(pid)
        properties.append((pid, value))
    return tuple(properties), at


def decode_mqtt_packet(
    buf: Any, offset: int = 0, /, *, version: Optional[int] = None, strict: bool = False,
    max_packet_size: Optional[int] = None,
) -> Tuple[Any, int]:
    """Decode one MQTT control packet; return ``(packet, next_offset)``.

    DISCONNECT and CONNACK are decoded (:class:`MqttDisconnect`,
    :class:`MqttConnack`); any other type is kept whole as an
    :class:`MqttOtherPacket` (its flags and body are not checked).

    Args:
        version: the connection's protocol: 4 (MQTT 3.1.1), 5 (MQTT 5.0), or
            None to infer it from the packet: a DISCONNECT with a body or a
            CONNACK with properties is 5.0, a 2-byte CONNACK body is 3.1.1, and
            ``e0 00`` (the same in both) decodes with ``version=None``.
        strict: a reason code the packet type does not define (e.g. 0x84 in a
            DISCONNECT, an unassigned code) is a protocol error (0x82) instead of
            decoding (as an ``UNKNOWN`` pseudo-member for an unassigned value).
        max_packet_size: refuse a longer packet (fixed header included) with
            reason code 0x95; None: only MQTT's own limit.

    Raises:
        IncompleteError: the packet runs past the end of ``buf`` (offset: its first byte).
        MqttPacketError: ``reason_code`` 0x81 (malformed: reserved type or
            flags, a bad Variable Byte Integer, properties or strings that do
            not parse, a property the packet may not carry, bytes left over),
            0x82 (protocol error: a repeated property, a property value or
            reason code not allowed, Session Present with a refusal) or 0x95.
    """
    data, start, size = start_reading(buf, offset)
    if version is not None and version not in (4, 5):
        raise ValueError(f"version must be 4, 5 or None, not {version!r}")
    if max_packet_size is not None and (type(max_packet_size) is not int or max_packet_size < 0):
        raise ValueError(f"max_packet_size must be None or an int >= 0, not {max_packet_size!r}")
    if start >= size:
        raise IncompleteError("MQTT fixed header", start)
    first = data[start]
    number, flags = first >> 4, first & 0x0F
    if number == 0:
        raise MqttPacketError("reserved packet type 0", start)
    packet_type = MqttPacketType(number)
    if flags and (packet_type == _DISCONNECT or packet_type == _CONNACK):
        raise MqttPacketError(f"{packet_type.name} flags 0x{flags:X} are not 0", start)
    remaining, pos = _read_vbi(data, start + 1, size, "Remaining Length")
    if remaining < 0:
        raise IncompleteError("MQTT fixed header", start)
    if max_packet_size is not None and pos - start + remaining > max_packet_size:
        raise MqttPacketError(
            f"packet of {pos - start + remaining} bytes is over the {max_packet_size}-byte limit", start,
            _PACKET_TOO_LARGE,
        )
    if size - pos < remaining:
        raise IncompleteError("MQTT packet", start)
    end = pos + remaining
    if packet_type == _DISCONNECT:
        return _disconnect(data, pos, end, version, strict), end
    if packet_type == _CONNACK:
        return _connack(data, pos, end, version, strict), end
    return MqttOtherPacket(packet_type, flags, bytes(data[pos:end])), end


def _expect_end(at: int, end: int, packet: str) -> None:
    if at != end:
        raise MqttPacketError(f"{end - at} bytes after the end of the {packet}", at)


def _disconnect(data: Any, pos: int, end: int, version: Optional[int], strict: bool) -> MqttDisconnect:
    """MQTT 5 §3.14.2: [reason code [Property Length, properties]]; 3.1.1: nothing."""
    if pos == end:
        return MqttDisconnect(0, (), version)
    if version == 4:
        raise MqttPacketError(f"an MQTT 3.1.1 DISCONNECT has no body, this one has {end - pos} bytes", pos)
    deferred = _Deferred()
    code = data[pos]
    if strict and not mqtt_disconnect_reason_allowed(code):
        deferred.note(f"reason code 0x{code:02X} is not a DISCONNECT reason code", pos)
    properties: tuple = ()
    at = pos + 1
    if at < end:
        properties, at = _read_properties(data, at, end, _DISCONNECT, deferred)
        _expect_end(at, end, "DISCONNECT")
    if deferred.error is not None:
        raise deferred.error
    return MqttDisconnect(code, properties, 5)


def _connack(data: Any, pos: int, end: int, version: Optional[int], strict: bool) -> MqttConnack:
    """MQTT 5 §3.2.2: flags, reason code, Property Length, properties; 3.1.1: flags, return code."""
    remaining = end - pos
    if version is None:
        version = 4 if remaining == 2 else 5
    if remaining < (2 if version == 4 else 3):
        raise MqttPacketError(f"a CONNACK body of {remaining} bytes is too short", pos)
    flags = data[pos]
    if flags & 0xFE:
        raise MqttPacketError(f"CONNACK acknowledge flags 0x{flags:02X} set reserved bits", pos)
    code = data[pos + 1]
    deferred = _Deferred()
    if flags and code:
        deferred.note(f"Session Present is set on a refusal (code 0x{code:02X})", pos)
    if strict and (code > 5 if version == 4 else "CONNACK" not in MqttReasonCode(code).packets):
        deferred.note(f"reason code 0x{code:02X} is not a CONNACK reason code", pos + 1)
    properties: tuple = ()
    at = pos + 2
    if version == 5:
        properties, at = _read_properties(data, at, end, _CONNACK, deferred)
    _expect_end(at, end, "CONNACK")
    if deferred.error is not None:
        raise deferred.error
    return MqttConnack(code, flags == 1, properties, version)


def _check_properties(properties: tuple, packet: MqttPacketType) -> bytes:
    allowed = MQTT_PACKET_PROPERTIES[packet]
    seen = set()
    out = bytearray()
    for pid, value in properties:
        name = f"{pid.name} (0x{int(pid):02X})"
        if pid not in allowed:
            raise EncodeError(f"property {name} is not allowed in {packet.name}")
        if pid in seen and pid != MqttPropertyId.USER_PROPERTY:
            raise EncodeError(f"property {name} may appear only once")
        seen.add(pid)
        if pid in _BOOLEAN_PROPERTIES and value > 1:
            raise EncodeError(f"{name} is {value}, not 0 or 1")
        if pid in _NONZERO_PROPERTIES and value == 0:
            raise EncodeError(f"{name} may not be 0")
        out.append(int(pid))
        kind = MQTT_PROPERTY_TYPES[pid]
        if kind == "utf8":
            out += _string(value, name)
        elif kind == "pair":
            out += _string(value[0], name) + _string(value[1], name)
        elif kind == "binary":
            if len(value) > 0xFFFF:
                raise EncodeError(f"{name} of {len(value)} bytes is over the 65535-byte limit")
            out += len(value).to_bytes(2, "big") + value
        else:
            out += value.to_bytes(1 if kind == "byte" else 2 if kind == "u16" else 4, "big")
    return _vbi_checked(len(out), "properties") + bytes(out)


def _string(text: str, what: str) -> bytes:
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError(f"{what} is not encodable as UTF-8 (lone surrogate)") from None
    if len(raw) > 0xFFFF:
        raise EncodeError(f"{what} of {len(raw)} UTF-8 bytes is over the 65535-byte limit")
    if "\x00" in text:
        raise EncodeError(f"{what} contains U+0000")
    return len(raw).to_bytes(2, "big") + raw


def _vbi_checked(value: int, what: str) -> bytes:
    if value > _MAX_VBI:
        raise EncodeError(f"{what} of {value} bytes is over MQTT's 268435455-byte limit")
    return varint_bytes(value)


def encode_mqtt_packet(packet: Any, /) -> bytes:
    """Encode an MQTT packet in its shortest form.

    A 5.0 DISCONNECT drops its reason code when it is 0x00 with no properties,
    and its Property Length when there are none (MQTT 5 §3.14.2).

    Args:
        packet: an :class:`MqttDisconnect`, :class:`MqttConnack` or :class:`MqttOtherPacket`.

    Raises:
        EncodeError: not a packet; a reason code the packet may not carry; a
            property the packet may not carry, repeated or with a value not
            allowed; a string that is not encodable, has U+0000 or is over
            65,535 bytes; Session Present with a refusal; a packet over MQTT's
            size limit.
    """
    kind = type(packet)
    if kind is MqttDisconnect:
        code = packet.reason_code
        if packet.version != 5 or (code == 0 and not packet.properties):
            return b"\xe0\x00"
        if not mqtt_disconnect_reason_allowed(code):
            raise EncodeError(f"reason code 0x{int(code):02X} may not be sent in a DISCONNECT")
        body = bytes((int(code),))
        if packet.properties:
            body += _check_properties(packet.properties, _DISCONNECT)
        return b"\xe0" + _vbi_checked(len(body), "DISCONNECT") + body
    if kind is MqttConnack:
        code = packet.reason_code
        if packet.version == 4:
            if not code.known:
                raise EncodeError(f"return code {int(code)} is reserved in MQTT 3.1.1")
        elif "CONNACK" not in code.packets:
            raise EncodeError(f"reason code 0x{int(code):02X} may not be sent in a CONNACK")
        if packet.session_present and code != 0:
            raise EncodeError("Session Present must be 0 on a refused connection")
        body = bytes((1 if packet.session_present else 0, int(code)))
        if packet.version == 5:
            body += _check_properties(packet.properties, _CONNACK)
        return b"\x20" + _vbi_checked(len(body), "CONNACK") + body
    if kind is MqttOtherPacket:
        return bytes((int(packet.packet_type) << 4 | packet.flags,)) + _vbi_checked(len(packet.body), "packet body") + packet.body
    raise EncodeError(f"an MQTT packet is an MqttDisconnect, MqttConnack or MqttOtherPacket, not {kind.__name__}")
