"""Diffusion, pure side: the same names, results and errors as ``_c.pyx`` beside it.

The wire primitives, messages, session events, the connection response and the
stream decoder of Diffusion over WebSocket (docs/diffusion.md).

Every decoder takes any C-contiguous buffer and a start offset and returns
``(value, next_offset)``. Every encoder returns bytes (``closecodec.encode_into``
writes any encoder's output into a caller's buffer at an offset). Wire formats: docs/diffusion.md section 2.

Decisions where the format leaves room (identical in ``_c.pyx``):

- Varints: non-shortest forms within 5 (Int32) or 10 (Int64) bytes are read;
  a longer run of continuation bytes is malformed at the 5th/10th byte, and so
  is a last byte carrying bits beyond the type's width (the vendor readers drop
  them silently; we refuse to invent a value). Writers emit the shortest form.
- Byte: one raw byte, 0..127. A byte >= 0x80 is malformed: the vendor readers
  disagree on it (raw byte vs. varint), so no value would be trustworthy.
- Lengths and counts that run past the end of the input are incomplete (more
  input could complete them) and are checked before anything is allocated;
  negative ones are malformed.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from typing import Any, Callable, Iterable, Iterator, List, Mapping, Optional, Tuple, TypeVar, Union

from ..buffer import (
    DEFAULT_MAX_INFLATED,
    DEFAULT_MAX_MESSAGE_SIZE,
    Pairs,
    inflate,
    looks_like_zlib,
    pairs_of,
    ssize,
    start_reading,
    varint_bytes,
)
from ..errors import DecodeError, EncodeError, IncompleteError, MalformedError, UnknownValueError, WebSocketFrameError
from ..reasons import (
    CLOSE_REASON_BY_BYTE,
    HANDSHAKE_PROTOCOL_BYTE,
    ClientCloseReason,
    ReasonNumbering,
    ResponseCode,
    close_reason_to_byte,
)
from ..websocket._py import WebSocketStream
from ..websocket.values import WebSocketOpcode
from .protocol import EntryType, EventType, MessageType, UpdateType
from .values import (
    AbortNotification,
    CloseClientRequest,
    CloseEvent,
    CloseRequest,
    ConnectionResponse,
    EventBatch,
    OpenEvent,
    OtherMessage,
    PropertyChange,
    ServiceRequest,
    SessionId,
    UpdateEvent,
)

__all__ = [
    "CloseEventColumns",
    "DiffusionStream",
    "close_event_columns",
    "decode_boolean",
    "decode_byte",
    "decode_bytes",
    "decode_close_client_request",
    "decode_collection",
    "decode_connection_response",
    "decode_event",
    "decode_event_batch",
    "decode_int32",
    "decode_int64",
    "decode_message",
    "decode_session_id",
    "decode_string",
    "decode_string_dict",
    "encode_boolean",
    "encode_byte",
    "encode_bytes",
    "encode_close_client_request",
    "encode_collection",
    "encode_connection_response",
    "encode_event",
    "encode_event_batch",
    "encode_int32",
    "encode_int64",
    "encode_message",
    "encode_session_id",
    "encode_string",
    "encode_string_dict",
    "scan_close_events",
]


T = TypeVar("T")

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_UINT32_MASK, _UINT64_MASK = (1 << 32) - 1, (1 << 64) - 1
# Bits of the last allowed byte that lie beyond the type's width: an Int32's
# 5th byte carries bits 28..31 (mask 0x0f), an Int64's 10th byte bit 63 only.
_INT32_EXCESS, _INT64_EXCESS = 0x70, 0x7E


# -- varints -----------------------------------------------------------------


def _read_varint(data: Any, offset: int, size: int, max_bytes: int, excess: int, what: str) -> Tuple[int, int]:
    """An unsigned varint of at most ``max_bytes`` bytes (docs/diffusion.md section 2)."""
    result = 0
    shift = 0
    pos = offset
    last = offset + max_bytes - 1
    while True:
        if pos >= size:
            raise IncompleteError(what, offset)
        byte = data[pos]
        if pos == last:
            if byte & 0x80:
                raise MalformedError(f"{what} is longer than {max_bytes} bytes", pos)
            if byte & excess:
                raise MalformedError(f"{what} has bits beyond its width in byte {max_bytes}", pos)
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos + 1
        pos += 1
        shift += 7


def _read_int32(data: Any, offset: int, size: int, what: str) -> Tuple[int, int]:
    value, end = _read_varint(data, offset, size, 5, _INT32_EXCESS, what)
    return (value - (1 << 32) if value > _INT32_MAX else value), end


def _read_uint64(data: Any, offset: int, size: int, what: str) -> Tuple[int, int]:
    return _read_varint(data, offset, size, 10, _INT64_EXCESS, what)


def _read_length(data: Any, offset: int, size: int, what: str, unit: int = 1) -> Tuple[int, int]:
    """A non-negative Int32 length or count whose ``unit``-byte items fit in the input."""
    length, pos = _read_int32(data, offset, size, f"{what} length")
    if length < 0:
        raise MalformedError(f"negative {what} length {length}", offset)
    if length * unit > size - pos:
        raise IncompleteError(what, offset)
    return length, pos


def _check_int(value: Any, low: int, high: int, what: str) -> None:
    if type(value) is not int:
        raise EncodeError(f"{what} needs an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise EncodeError(f"{value} is outside the {what} range {low}..{high}")


# -- strings -----------------------------------------------------------------


def _read_string(data: Any, offset: int, size: int, what: str) -> Tuple[str, int]:
    length, start = _read_length(data, offset, size, what)
    end = start + length
    try:
        return str(data[start:end], "utf-8"), end
    except UnicodeDecodeError as error:
        raise MalformedError(f"invalid UTF-8 in {what}", start + error.start) from None


def _write_string(value: Any, what: str) -> bytes:
    if type(value) is not str:
        raise EncodeError(f"{what} needs a str, not {type(value).__name__}")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError(f"{what} is not encodable as UTF-8 (lone surrogate)") from None
    return _write_length(len(encoded), what) + encoded


def _write_length(length: int, what: str) -> bytes:
    if length > _INT32_MAX:
        raise EncodeError(f"{what} of {length} bytes or items is longer than an Int32 length allows")
    return varint_bytes(length)


def _read_pairs(data: Any, offset: int, size: int) -> Tuple[Pairs, int]:
    # Each pair takes at least two bytes (two empty strings).
    count, pos = _read_length(data, offset, size, "Dictionary", 2)
    pairs = []
    for _ in range(count):
        key, pos = _read_string(data, pos, size, "String")
        value, pos = _read_string(data, pos, size, "String")
        pairs.append((key, value))
    return tuple(pairs), pos


def _write_pairs(pairs: Pairs) -> bytes:
    parts = [_write_length(len(pairs), "Dictionary")]
    for key, value in pairs:
        parts.append(_write_string(key, "String"))
        parts.append(_write_string(value, "String"))
    return b"".join(parts)


# -- public decoders ---------------------------------------------------------


def decode_int32(buf: Any, offset: int = 0, /) -> Tuple[int, int]:
    """Decode an Int32 varint; return ``(value, next_offset)``.

    Raises:
        IncompleteError: the varint runs past the end of ``buf``.
        MalformedError: more than 5 bytes, or bits beyond 32 in the 5th byte.
    """
    data, offset, size = start_reading(buf, offset)
    return _read_int32(data, offset, size, "Int32")


def decode_int64(buf: Any, offset: int = 0, /) -> Tuple[int, int]:
    """Decode an Int64 varint (signed, two's complement); return ``(value, next_offset)``.

    Raises:
        IncompleteError: the varint runs past the end of ``buf``.
        MalformedError: more than 10 bytes, or bits beyond 64 in the 10th byte.
    """
    data, offset, size = start_reading(buf, offset)
    value, end = _read_uint64(data, offset, size, "Int64")
    return (value - (1 << 64) if value > _INT64_MAX else value), end


def decode_byte(buf: Any, offset: int = 0, /) -> Tuple[int, int]:
    """Decode a Byte (0..127); return ``(value, next_offset)``.

    Raises:
        IncompleteError: no byte at ``offset``.
        MalformedError: the byte is 0x80 or above.
    """
    data, offset, size = start_reading(buf, offset)
    if offset >= size:
        raise IncompleteError("Byte", offset)
    value = data[offset]
    if value > 0x7F:
        raise MalformedError(f"Byte 0x{value:02x} is above 0x7f", offset)
    return value, offset + 1


def decode_boolean(buf: Any, offset: int = 0, /) -> Tuple[bool, int]:
    """Decode a Boolean (one byte, 0 or 1); return ``(value, next_offset)``.

    Raises:
        IncompleteError: no byte at ``offset``.
        MalformedError: the byte is neither 0 nor 1.
    """
    data, offset, size = start_reading(buf, offset)
    if offset >= size:
        raise IncompleteError("Boolean", offset)
    value = data[offset]
    if value > 1:
        raise MalformedError(f"Boolean 0x{value:02x} is neither 0 nor 1", offset)
    return value == 1, offset + 1


def decode_bytes(buf: Any, offset: int = 0, /) -> Tuple[bytes, int]:
    """Decode Bytes (Int32 length, then the bytes); return ``(value, next_offset)``.

    Raises:
        IncompleteError: the length or the bytes run past the end of ``buf``.
        MalformedError: a malformed or negative length.
    """
    data, offset, size = start_reading(buf, offset)
    length, start = _read_length(data, offset, size, "Bytes")
    return bytes(data[start : start + length]), start + length


def decode_string(buf: Any, offset: int = 0, /) -> Tuple[str, int]:
    """Decode a String (Bytes holding strict UTF-8); return ``(value, next_offset)``.

    Raises:
        IncompleteError: the length or the text runs past the end of ``buf``.
        MalformedError: a malformed or negative length, or invalid UTF-8 (the
            offset is that of the first bad byte).
    """
    data, offset, size = start_reading(buf, offset)
    return _read_string(data, offset, size, "String")


def decode_collection(buf: Any, offset: int, decode_item: Callable[[Any, int], Tuple[T, int]], /) -> Tuple[Tuple[T, ...], int]:
    """Decode a Collection (Int32 count, then the items); return ``(items, next_offset)``.

    Args:
        decode_item: a decoder of this module (or one with the same signature)
            for one item; every item must take at least one byte.

    Raises:
        IncompleteError: the count or an item runs past the end of ``buf``.
        MalformedError: a malformed or negative count, or a malformed item.
    """
    data, offset, size = start_reading(buf, offset)
    count, pos = _read_length(data, offset, size, "Collection")
    items = []
    for _ in range(count):
        item, pos = decode_item(buf, pos)
        items.append(item)
    return tuple(items), pos


def decode_string_dict(buf: Any, offset: int = 0, /) -> Tuple[Pairs, int]:
    """Decode a string Dictionary; return ``(pairs, next_offset)``.

    The pairs are a tuple of ``(key, value)`` in wire order, duplicate keys
    included: what is on the wire, for the caller to fold (``dict(pairs)``
    keeps the last of duplicates).

    Raises:
        IncompleteError: the count or a string runs past the end of ``buf``.
        MalformedError: a malformed or negative count, or a malformed string.
    """
    data, offset, size = start_reading(buf, offset)
    return _read_pairs(data, offset, size)


def decode_session_id(buf: Any, offset: int = 0, /) -> Tuple[SessionId, int]:
    """Decode a SessionId (two unsigned Int64 varints); return ``(session_id, next_offset)``.

    Raises:
        IncompleteError: a part runs past the end of ``buf``.
        MalformedError: a part is not a valid 64-bit varint.
    """
    data, offset, size = start_reading(buf, offset)
    server, pos = _read_uint64(data, offset, size, "SessionId server")
    value, pos = _read_uint64(data, pos, size, "SessionId value")
    return SessionId(server, value), pos


# -- public encoders ---------------------------------------------------------


def encode_int32(value: int, /) -> bytes:
    """Encode an Int32 varint in its shortest form (negatives take 5 bytes).

    Raises:
        EncodeError: not an int, or outside -2**31..2**31-1.
    """
    _check_int(value, _INT32_MIN, _INT32_MAX, "Int32")
    return varint_bytes(value & _UINT32_MASK)


def encode_int64(value: int, /) -> bytes:
    """Encode an Int64 varint in its shortest form (negatives take 10 bytes).

    Raises:
        EncodeError: not an int, or outside -2**63..2**63-1.
    """
    _check_int(value, _INT64_MIN, _INT64_MAX, "Int64")
    return varint_bytes(value & _UINT64_MASK)


def encode_byte(value: int, /) -> bytes:
    """Encode a Byte (0..127).

    Raises:
        EncodeError: not an int, or outside 0..127.
    """
    _check_int(value, 0, 0x7F, "Byte")
    return bytes((value,))


def encode_boolean(value: bool, /) -> bytes:
    """Encode a Boolean as one byte, 0 or 1.

    Raises:
        EncodeError: not a bool.
    """
    if type(value) is not bool:
        raise EncodeError(f"Boolean needs a bool, not {type(value).__name__}")
    return b"\x01" if value else b"\x00"


def encode_bytes(value: Any, /) -> bytes:
    """Encode Bytes: an Int32 length, then the bytes of any bytes-like object.

    Raises:
        EncodeError: not bytes-like, or longer than 2**31-1 bytes.
    """
    try:
        data = bytes(memoryview(value).cast("B"))
    except TypeError:
        raise EncodeError(f"Bytes needs a bytes-like object, not {type(value).__name__}") from None
    return _write_length(len(data), "Bytes") + data


def encode_string(value: str, /) -> bytes:
    """Encode a String: an Int32 length, then UTF-8.

    Raises:
        EncodeError: not a str, a lone surrogate, or too long.
    """
    return _write_string(value, "String")


def encode_collection(items: Iterable[T], encode_item: Callable[[T], bytes], /) -> bytes:
    """Encode a Collection: an Int32 count, then each item by ``encode_item``.

    Raises:
        EncodeError: ``items`` is not iterable, or an item cannot be encoded.
    """
    try:
        items = tuple(items)
    except TypeError:
        raise EncodeError(f"a Collection needs an iterable, not {type(items).__name__}") from None
    parts = [_write_length(len(items), "Collection")]
    for item in items:
        encoded = encode_item(item)
        if type(encoded) is not bytes:
            raise EncodeError(f"an item encoder returned {type(encoded).__name__}, not bytes")
        parts.append(encoded)
    return b"".join(parts)


def encode_string_dict(value: Union[Mapping[str, str], Iterable[Tuple[str, str]]], /) -> bytes:
    """Encode a string Dictionary from a mapping or ``(key, value)`` pairs, in order.

    Raises:
        EncodeError: not a mapping or pairs, or a key or value is not a str.
    """
    return _write_pairs(pairs_of(value))


def encode_session_id(value: SessionId, /) -> bytes:
    """Encode a SessionId as two varints, ``server`` then ``value``.

    Raises:
        EncodeError: not a :class:`SessionId`.
    """
    if type(value) is not SessionId:
        raise EncodeError(f"SessionId needs a SessionId, not {type(value).__name__}")
    return varint_bytes(value.server) + varint_bytes(value.value)



# -- Diffusion session events and messages (docs/diffusion.md sections 3-5) ----------

_WIRE = ReasonNumbering.WIRE
_UNIT_CHANGE = 3  # an UPDATE entry takes at least key, entry type and one value
# What _read_message builds: everything, or only close events (with or without properties,
# or as the rows of CloseEventColumns).
_DECODE_ALL, _SCAN_CLOSES, _SCAN_CLOSES_WITHOUT_PROPERTIES, _SCAN_CLOSE_COLUMNS = 0, 1, 2, 3


def _read_enum_byte(data: Any, pos: int, size: int, what: str) -> int:
    if pos >= size:
        raise IncompleteError(what, pos)
    value = data[pos]
    if value > 0x7F:
        raise MalformedError(f"Byte 0x{value:02x} is above 0x7f", pos)
    return value


def _reasons_for(numbering: Any) -> Tuple[ClientCloseReason, ...]:
    try:
        return CLOSE_REASON_BY_BYTE[numbering]
    except KeyError:  # "wire", "published", or an error from ReasonNumbering
        return CLOSE_REASON_BY_BYTE[ReasonNumbering(numbering)]


def _reason(data: Any, pos: int, size: int, reasons: Tuple[ClientCloseReason, ...], strict: bool) -> ClientCloseReason:
    reason = reasons[_read_enum_byte(data, pos, size, "close reason")]
    if strict and not reason.known:
        raise UnknownValueError(f"unknown close reason {data[pos]}", pos)
    return reason


def _read_event(data: Any, pos: int, size: int, reasons: Tuple[ClientCloseReason, ...], strict: bool, mode: int) -> Tuple[Any, int]:
    """One session event; when scanning (``mode``), OPEN and UPDATE are walked, not built (None)."""
    server, pos = _read_uint64(data, pos, size, "SessionId server")
    value, pos = _read_uint64(data, pos, size, "SessionId value")
    event_type = _read_enum_byte(data, pos, size, "event type")
    pos += 1
    if event_type == EventType.CLOSE:
        reason = _reason(data, pos, size, reasons, strict)
        if mode == _SCAN_CLOSES_WITHOUT_PROPERTIES:
            return CloseEvent(SessionId(server, value), reason, None), _skip_pairs(data, pos + 1, size)
        properties, end = _read_pairs(data, pos + 1, size)
        if mode == _SCAN_CLOSE_COLUMNS:
            return (server, value, data[pos], properties), end
        return CloseEvent(SessionId(server, value), reason, properties), end
    if event_type == EventType.OPEN:
        if mode:
            return None, _skip_pairs(data, pos, size)
        properties, pos = _read_pairs(data, pos, size)
        return OpenEvent(SessionId(server, value), properties), pos
    if event_type == EventType.UPDATE:
        update_type = UpdateType(_read_enum_byte(data, pos, size, "update type"))
        count, pos = _read_length(data, pos + 1, size, "UPDATE entries", _UNIT_CHANGE)
        changes = []
        for _ in range(count):
            if mode:
                pos = _skip_string(data, pos, size)
            else:
                key, pos = _read_string(data, pos, size, "String")
            entry_code = _read_enum_byte(data, pos, size, "entry type")
            if not EntryType.NEW <= entry_code <= EntryType.SAME:
                raise MalformedError(f"unknown property entry type {entry_code}", pos)
            entry_type = EntryType(entry_code)
            pos += 1
            values = []
            for _ in range(entry_type.value_count):
                if mode:
                    pos = _skip_string(data, pos, size)
                else:
                    text, pos = _read_string(data, pos, size, "String")
                    values.append(text)
            if not mode:
                changes.append(PropertyChange(key, entry_type, values))
        if mode:
            return None, pos
        return UpdateEvent(SessionId(server, value), update_type, changes), pos
    raise MalformedError(f"unknown session event type {event_type}", pos - 1)


def _skip_string(data: Any, pos: int, size: int) -> int:
    length, start = _read_length(data, pos, size, "String")
    return start + length


def _skip_pairs(data: Any, pos: int, size: int) -> int:
    count, pos = _read_length(data, pos, size, "Dictionary", 2)
    for _ in range(2 * count):
        pos = _skip_string(data, pos, size)
    return pos


def _read_batch(data: Any, pos: int, size: int, reasons: Tuple[ClientCloseReason, ...], strict: bool, mode: int) -> Tuple[Any, int]:
    conversation_id, pos = _read_uint64(data, pos, size, "conversation id")
    if conversation_id > _INT64_MAX:
        conversation_id -= 1 << 64
    # An event takes at least 4 bytes: two varints, its type and one more.
    count, pos = _read_length(data, pos, size, "event batch", 4)
    events = []
    for _ in range(count):
        event, pos = _read_event(data, pos, size, reasons, strict, mode)
        if event is not None:
            events.append(event)
    if mode:
        return events, pos
    return EventBatch(conversation_id, events), pos


def _expect_end(pos: int, size: int, what: str) -> None:
    if pos != size:
        raise MalformedError(f"{size - pos} bytes after the end of the {what}", pos)


def _read_message(data: Any, offset: int, size: int, reasons: Tuple[ClientCloseReason, ...], strict: bool, mode: int, max_inflated: int) -> Any:
    if offset >= size:
        raise IncompleteError("message type byte", offset)
    type_byte = data[offset]
    message_type = type_byte & 0x3F
    encoding = type_byte & 0xC0
    if encoding not in (0x00, 0x80):
        raise MalformedError(f"unknown encoding bits 0x{encoding:02x} in the message type byte", offset)
    known = MessageType(message_type)
    if not known.known:
        raise MalformedError(f"unknown message type {message_type}", offset)
    start = offset + 1
    # The 0x80 flag means a zlib body. Service messages with the flag are read
    # as they are unless the body is a zlib stream: the vendor's clients ignore
    # the flag on them (docs/diffusion.md section 7). Topic messages always honour it.
    compressed = encoding == 0x80 and (
        message_type in (MessageType.TOPIC_VALUE, MessageType.TOPIC_DELTA)
        or looks_like_zlib(bytes(data[start : start + 2]))
    )
    if compressed:
        body = inflate(data[start:size], max_inflated, start)
        try:
            return _read_body(body, 0, len(body), known, True, reasons, strict, mode)
        except DecodeError as error:
            raise MalformedError(f"in the inflated body: {error}", start) from None
    return _read_body(data, start, size, known, False, reasons, strict, mode)


def _read_body(data: Any, pos: int, size: int, message_type: MessageType, compressed: bool, reasons: Tuple[ClientCloseReason, ...], strict: bool, mode: int) -> Any:
    if message_type == MessageType.SERVICE_REQUEST:
        service_id, pos = _read_int32(data, pos, size, "service id")
        conversation_id, pos = _read_uint64(data, pos, size, "conversation id")
        if conversation_id > _INT64_MAX:
            conversation_id -= 1 << 64
        if service_id == 82:
            payload, pos = _read_batch(data, pos, size, reasons, strict, mode)
            _expect_end(pos, size, "message")
            if mode:
                return payload
        elif mode:
            return []
        elif service_id == 14:
            server, pos = _read_uint64(data, pos, size, "SessionId server")
            value, pos = _read_uint64(data, pos, size, "SessionId value")
            _expect_end(pos, size, "message")
            payload = CloseClientRequest(SessionId(server, value))
        else:
            payload = bytes(data[pos:size])
        return ServiceRequest(service_id, conversation_id, payload, compressed)
    if mode:
        return []
    if message_type in (MessageType.ABORT_NOTIFICATION, MessageType.CLOSE_REQUEST):
        _expect_end(pos, size, "message")
        return AbortNotification() if message_type == MessageType.ABORT_NOTIFICATION else CloseRequest()
    return OtherMessage(message_type, bytes(data[pos:size]), compressed)


def decode_message(buf: Any, offset: int = 0, /, *, numbering: ReasonNumbering = _WIRE, strict: bool = False, max_inflated: int = DEFAULT_MAX_INFLATED) -> Any:
    """Decode one whole Diffusion message: the bytes of one WebSocket binary message.

    The message runs from ``offset`` to the end of ``buf``.

    Args:
        numbering: how close-reason bytes are numbered (the wire's by default).
        strict: raise :class:`UnknownValueError` for a close reason this
            version does not know, instead of decoding it as ``UNKNOWN``.
        max_inflated: the most bytes a compressed body may inflate to.

    Returns:
        A :class:`ServiceRequest`, :class:`AbortNotification`,
        :class:`CloseRequest` or :class:`OtherMessage`.

    Raises:
        IncompleteError: the message ends early.
        MalformedError: it is not a valid message (unknown type, bytes after its end, ...).
    """
    reasons = _reasons_for(numbering)
    data, offset, size = start_reading(buf, offset)
    return _read_message(data, offset, size, reasons, strict, _DECODE_ALL, max_inflated)


def scan_close_events(buf: Any, offset: int = 0, /, *, numbering: ReasonNumbering = _WIRE, strict: bool = False, max_inflated: int = DEFAULT_MAX_INFLATED, properties: bool = True) -> List[CloseEvent]:
    """The close events of one whole Diffusion message, without building other events.

    Any message other than a session-events request (service 82) gives an
    empty list. OPEN and UPDATE events are walked but not built, and their
    strings are not checked as UTF-8.

    Args:
        properties: False to skip the close events' properties too: each
            event then has ``properties=None`` (not decoded), which is all a
            caller needs to know who closed and why, at a fraction of the cost.

    Other arguments and errors as :func:`decode_message`.
    """
    reasons = _reasons_for(numbering)
    data, offset, size = start_reading(buf, offset)
    mode = _SCAN_CLOSES if properties else _SCAN_CLOSES_WITHOUT_PROPERTIES
    return _read_message(data, offset, size, reasons, strict, mode, max_inflated)


def close_event_columns(buf: Any, offset: int = 0, /, *, numbering: ReasonNumbering = _WIRE, strict: bool = False, max_inflated: int = DEFAULT_MAX_INFLATED) -> "CloseEventColumns":
    """The close events of one whole Diffusion message, as a :class:`CloseEventColumns`.

    The fastest way to learn who closed and why: the compiled backend builds
    no event. Session ids and reasons come as columns, an event's properties
    when asked for. The message is checked as :func:`scan_close_events` checks
    it, with the same errors. Any message other than a session-events request
    (service 82) gives no events.

    Arguments and errors as :func:`decode_message`.
    """
    reasons = _reasons_for(numbering)
    data, offset, size = start_reading(buf, offset)
    columns = CloseEventColumns.__new__(CloseEventColumns)
    columns._rows = _read_message(data, offset, size, reasons, strict, _SCAN_CLOSE_COLUMNS, max_inflated)
    columns._reasons = reasons
    return columns


class CloseEventColumns:
    """The close events of one Diffusion message, as columns; see ``close_event_columns``.

    Session ids and reasons are read at once, each event's properties only
    when asked for. ``len``, indexing and iteration give :class:`CloseEvent`
    values equal to :func:`scan_close_events`' list. The result stays valid when
    the caller's buffer is reused or changed.
    """

    # The compiled twin keeps offsets into the message; here the rows hold the decoded properties.
    __slots__ = ("_rows", "_reasons")
    _rows: List[Tuple[int, int, int, Pairs]]
    _reasons: Tuple[ClientCloseReason, ...]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("CloseEventColumns are made by close_event_columns")

    def __reduce__(self) -> Any:
        raise TypeError("CloseEventColumns cannot be pickled: pickle list(columns)")

    def _row(self, i: int) -> Tuple[int, int, int, Pairs]:
        i = ssize(i)
        if i < 0:
            i += len(self._rows)
        if not 0 <= i < len(self._rows):
            raise IndexError("close event index out of range")
        return self._rows[i]

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"<CloseEventColumns of {len(self._rows)} close events>"

    def session_id(self, i: int, /) -> SessionId:
        """Event ``i``'s :class:`SessionId`."""
        server, value, _, _ = self._row(i)
        return SessionId(server, value)

    def reason(self, i: int, /) -> ClientCloseReason:
        """Event ``i``'s :class:`~closecodec.reasons.ClientCloseReason`."""
        return self._reasons[self._row(i)[2]]

    def properties(self, i: int, /) -> Pairs:
        """Event ``i``'s properties, ``(key, value)`` pairs as :class:`CloseEvent` has them."""
        return self._row(i)[3]

    def __getitem__(self, i: int) -> CloseEvent:
        """Event ``i`` as a :class:`CloseEvent`, its properties read."""
        server, value, code, properties = self._row(i)
        return CloseEvent(SessionId(server, value), self._reasons[code], properties)

    def __iter__(self) -> Iterator[CloseEvent]:
        for i in range(len(self._rows)):
            yield self[i]

    @property
    def servers(self) -> "array[int]":
        """The session ids' server parts, an ``array('Q')``."""
        return array("Q", [row[0] for row in self._rows])

    @property
    def values(self) -> "array[int]":
        """The session ids' value parts, an ``array('Q')``."""
        return array("Q", [row[1] for row in self._rows])

    @property
    def reason_bytes(self) -> bytes:
        """The close reasons' bytes as on the wire, one per event."""
        return bytes([row[2] for row in self._rows])

    @property
    def reasons(self) -> Tuple[ClientCloseReason, ...]:
        """The close reasons, a tuple of :class:`~closecodec.reasons.ClientCloseReason`."""
        return tuple([self._reasons[row[2]] for row in self._rows])


def decode_event_batch(buf: Any, offset: int = 0, /, *, numbering: ReasonNumbering = _WIRE, strict: bool = False) -> Tuple[EventBatch, int]:
    """Decode a session-event batch (service 82's payload); return ``(batch, next_offset)``.

    Raises:
        IncompleteError: the batch runs past the end of ``buf``.
        MalformedError: an unknown event or entry type, a bad varint, string or Byte.
    """
    reasons = _reasons_for(numbering)
    data, offset, size = start_reading(buf, offset)
    return _read_batch(data, offset, size, reasons, strict, _DECODE_ALL)


def decode_event(buf: Any, offset: int = 0, /, *, numbering: ReasonNumbering = _WIRE, strict: bool = False) -> Tuple[Any, int]:
    """Decode one session event (OPEN, UPDATE or CLOSE); return ``(event, next_offset)``.

    Raises:
        IncompleteError: the event runs past the end of ``buf``.
        MalformedError: as for :func:`decode_event_batch`.
    """
    reasons = _reasons_for(numbering)
    data, offset, size = start_reading(buf, offset)
    return _read_event(data, offset, size, reasons, strict, _DECODE_ALL)


def decode_close_client_request(buf: Any, offset: int = 0, /) -> Tuple[CloseClientRequest, int]:
    """Decode a CLOSE_CLIENT payload (a SessionId); return ``(request, next_offset)``."""
    session_id, end = decode_session_id(buf, offset)
    return CloseClientRequest(session_id), end


def decode_connection_response(buf: Any, offset: int = 0, /, *, strict: bool = False) -> Tuple[ConnectionResponse, int]:
    """Decode a connection response (the handshake); return ``(response, next_offset)``.

    Raises:
        IncompleteError: the response runs past the end of ``buf``.
        MalformedError: the protocol byte is not ``#`` (0x23).
        UnknownValueError: ``strict`` and an unknown response code.
    """
    data, offset, size = start_reading(buf, offset)
    if size - offset < 3:
        raise IncompleteError("connection response", offset)
    if data[offset] != HANDSHAKE_PROTOCOL_BYTE:
        raise MalformedError(f"protocol byte 0x{data[offset]:02x} is not 0x23 ('#')", offset)
    version = data[offset + 1]
    code = ResponseCode(data[offset + 2])
    if strict and not code.known:
        raise UnknownValueError(f"unknown response code {int(code)}", offset + 2)
    if not code.is_success:
        return ConnectionResponse(version, code), offset + 3
    if size - offset < _SUCCESS_LENGTH:
        raise IncompleteError("connection response", offset)
    pos = offset + 3
    server, value, token, ping_period, last = _SUCCESS_LAYOUT.unpack_from(bytes(data[pos : offset + _SUCCESS_LENGTH]))
    reconnected = code == ResponseCode.RECONNECTED
    response = ConnectionResponse(
        version,
        code,
        SessionId(server, value),
        token,
        ping_period,
        None if reconnected else last,
        last if reconnected else None,
    )
    return response, offset + _SUCCESS_LENGTH


# After the 3 header bytes: session id (2 x 8), token (24), ping period (8), a 4-byte number.
_SUCCESS_LAYOUT = struct.Struct(">QQ24sQI")
_SUCCESS_LENGTH = 3 + _SUCCESS_LAYOUT.size


def _reason_byte(reason: Any, numbering: ReasonNumbering) -> bytes:
    try:
        value = close_reason_to_byte(reason, numbering)
    except (ValueError, TypeError) as error:
        raise EncodeError(str(error)) from None
    if value > 0x7F:
        raise EncodeError(f"close reason {value} does not fit a Byte (0..127)")
    return bytes((value,))


def _write_event(event: Any, numbering: ReasonNumbering) -> bytes:
    kind = type(event)
    if kind not in (OpenEvent, UpdateEvent, CloseEvent):
        raise EncodeError(f"a session event is an OpenEvent, UpdateEvent or CloseEvent, not {kind.__name__}")
    parts = [encode_session_id(event.session_id)]
    if kind is CloseEvent:
        if event.properties is None:
            raise EncodeError("a close event whose properties were not decoded cannot be encoded")
        parts += [b"\x02", _reason_byte(event.reason, numbering), _write_pairs(event.properties)]
    elif kind is OpenEvent:
        parts += [b"\x00", _write_pairs(event.properties)]
    else:
        parts += [b"\x01", encode_byte(int(event.update_type)), _write_length(len(event.changes), "UPDATE entries")]
        for change in event.changes:
            parts.append(_write_string(change.key, "String"))
            parts.append(bytes((int(change.entry_type),)))
            parts += [_write_string(text, "String") for text in change.values]
    return b"".join(parts)


def encode_event(event: Any, /, *, numbering: ReasonNumbering = _WIRE) -> bytes:
    """Encode one session event.

    Raises:
        EncodeError: not a session event, or a value that cannot be encoded
            (e.g. a reason the numbering cannot express).
    """
    return _write_event(event, numbering)


def encode_event_batch(batch: EventBatch, /, *, numbering: ReasonNumbering = _WIRE) -> bytes:
    """Encode a session-event batch (service 82's payload).

    Raises:
        EncodeError: not an :class:`EventBatch`, or an event cannot be encoded.
    """
    if type(batch) is not EventBatch:
        raise EncodeError(f"an event batch is an EventBatch, not {type(batch).__name__}")
    parts = [encode_int64(batch.conversation_id), _write_length(len(batch.events), "event batch")]
    parts += [_write_event(event, numbering) for event in batch.events]
    return b"".join(parts)


def encode_close_client_request(request: CloseClientRequest, /) -> bytes:
    """Encode a CLOSE_CLIENT payload (the SessionId of the session to close)."""
    if type(request) is not CloseClientRequest:
        raise EncodeError(f"a close-client request is a CloseClientRequest, not {type(request).__name__}")
    return encode_session_id(request.session_id)


def encode_message(message: Any, /, *, numbering: ReasonNumbering = _WIRE) -> bytes:
    """Encode one whole Diffusion message (the bytes of one WebSocket binary message).

    A message with ``compressed`` set gets the 0x80 flag and a zlib body.

    Raises:
        EncodeError: not a message value, or a part cannot be encoded.
    """
    kind = type(message)
    if kind is AbortNotification:
        return bytes((MessageType.ABORT_NOTIFICATION,))
    if kind is CloseRequest:
        return bytes((MessageType.CLOSE_REQUEST,))
    if kind is ServiceRequest:
        payload = message.payload
        if type(payload) is EventBatch:
            encoded = encode_event_batch(payload, numbering=numbering)
        elif type(payload) is CloseClientRequest:
            encoded = encode_close_client_request(payload)
        else:
            encoded = bytes(payload)
        body = encode_int32(message.service_id) + encode_int64(message.conversation_id) + encoded
        message_type = MessageType.SERVICE_REQUEST
    elif kind is OtherMessage:
        body = message.body
        message_type = message.message_type
    else:
        raise EncodeError(f"a Diffusion message value, not {kind.__name__}")
    if message.compressed:
        return bytes((int(message_type) | 0x80,)) + zlib.compress(body)
    return bytes((int(message_type),)) + body


def encode_connection_response(response: ConnectionResponse, /) -> bytes:
    """Encode a connection response (the handshake's outcome).

    Raises:
        EncodeError: not a :class:`ConnectionResponse`, or a field out of range.
    """
    if type(response) is not ConnectionResponse:
        raise EncodeError(f"a connection response is a ConnectionResponse, not {type(response).__name__}")
    _check_int(response.version, 0, 0xFF, "protocol version")
    header = bytes((HANDSHAKE_PROTOCOL_BYTE, response.version, int(response.code)))
    if not response.code.is_success:
        return header
    last = response.recovery_sequence if response.code == ResponseCode.RECONNECTED else response.max_message_size
    _check_int(response.ping_period, 0, _UINT64_MASK, "ping period")
    _check_int(last, 0, _UINT32_MASK, "maximum message size or recovery sequence")
    session_id = response.session_id
    return header + _SUCCESS_LAYOUT.pack(session_id.server, session_id.value, response.token, response.ping_period, last)


# -- the stream decoder (docs/streaming.md) --------------------------------------------


class DiffusionStream(WebSocketStream):
    """An incremental decoder of Diffusion over WebSocket, one direction (docs/diffusion.md §3, §5).

    A :class:`WebSocketStream` whose binary messages are decoded: the first
    one as the :class:`ConnectionResponse` (server to client; pass
    ``connection_response=False`` for the client's direction, or for a stream
    joined after the handshake), every later one with :func:`decode_message`
    (:class:`ServiceRequest`, :class:`AbortNotification`,
    :class:`CloseRequest`, :class:`OtherMessage`). PING and PONG frames come
    out as :class:`WebSocketFrame`, the close frame as :class:`WebSocketClose`.

    Args:
        connection_response: the first binary message is the connection response.
        numbering, strict, max_inflated: as for :func:`decode_message`.
        expect_masked, minimal_length, max_message_size: as for
            :class:`WebSocketStream` (no RSV bits are allowed).

    Raises (from :meth:`feed`):
        WebSocketFrameError: as for :class:`WebSocketStream`, and close code
            1003 for a TEXT message (Diffusion sends binary messages only).
        MalformedError, UnknownValueError: a binary message that is not a
            valid Diffusion message (or connection response). The message says
            what is wrong and where in the message; ``offset`` is the stream
            offset of the message's first byte. A message that ends early is
            malformed: a WebSocket message is whole. The stream fails, as for
            any error; to skip bad messages and go on, use a
            :class:`WebSocketStream` and decode each message yourself.
    """

    def __init__(
        self, *, connection_response: bool = True, numbering: Any = ReasonNumbering.WIRE, strict: bool = False,
        max_inflated: int = DEFAULT_MAX_INFLATED, expect_masked: Optional[bool] = None, minimal_length: bool = True,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        super().__init__(expect_masked=expect_masked, minimal_length=minimal_length, max_message_size=max_message_size)
        self._numbering = ReasonNumbering(numbering)
        self._strict = bool(strict)
        self._max_inflated = max_inflated
        self._awaiting_response = bool(connection_response)
        self._response: Any = None

    @property
    def response(self) -> Any:
        """The :class:`ConnectionResponse` once read, else None (kept by :meth:`reset`)."""
        return self._response

    def _on_message(self, opcode: int, payload: bytes, rsv: int, masked: bool, start: int) -> Any:
        if opcode == WebSocketOpcode.TEXT:
            raise WebSocketFrameError("TEXT message in a Diffusion stream (Diffusion sends binary messages only)",
                                      start, 1003)
        if self._awaiting_response:
            what = "connection response"
            try:
                response, end = decode_connection_response(payload, strict=self._strict)
                if end != len(payload):
                    raise MalformedError(f"{len(payload) - end} bytes after the end of the connection response", end)
            except DecodeError as error:
                raise _in_message(error, what, start) from None
            self._awaiting_response = False
            self._response = response
            return response
        try:
            return decode_message(payload, numbering=self._numbering, strict=self._strict,
                                            max_inflated=self._max_inflated)
        except DecodeError as error:
            raise _in_message(error, "Diffusion message", start) from None


def _in_message(error: DecodeError, what: str, start: int) -> DecodeError:
    """An error inside a whole message, restated at the message's stream offset."""
    kind = MalformedError if isinstance(error, IncompleteError) else type(error)
    return kind(f"{what}: {error.args[0]} (byte {error.offset} of the message)", start)
