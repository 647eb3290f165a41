"""Pure-Python backend: the same names, results and errors as ``_codec_c``.

Every decoder takes any C-contiguous buffer and a start offset and returns
``(value, next_offset)``. Every encoder returns bytes (``closecodec.encode_into``
writes any encoder's output into a caller's buffer at an offset). Wire formats: spec/diffusion.md section 2.

Decisions on the spec's open questions (identical in ``_codec_c``):

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

from operator import index
from typing import Any, Callable, Iterable, Mapping, Tuple, TypeVar, Union

from ._common import Pairs, pairs_of
from .errors import EncodeError, IncompleteError, MalformedError
from .frames import SessionId

T = TypeVar("T")

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_UINT32_MASK, _UINT64_MASK = (1 << 32) - 1, (1 << 64) - 1
# Bits of the last allowed byte that lie beyond the type's width: an Int32's
# 5th byte carries bits 28..31 (mask 0x0f), an Int64's 10th byte bit 63 only.
_INT32_EXCESS, _INT64_EXCESS = 0x70, 0x7E


# -- buffers -----------------------------------------------------------------


def _byte_view(buf: Any) -> Any:
    """An int-indexable, sliceable view of ``buf``'s bytes (no copy)."""
    if type(buf) is bytes or type(buf) is bytearray:
        return buf
    try:
        view = memoryview(buf)
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not {type(buf).__name__!r}") from None
    if not view.c_contiguous:
        raise TypeError("closecodec decodes C-contiguous buffers only")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _start(buf: Any, offset: Any) -> Tuple[Any, int, int]:
    data = _byte_view(buf)
    offset = index(offset)
    size = len(data)
    if not 0 <= offset <= size:
        raise ValueError(f"offset {offset} is outside the buffer (0..{size})")
    return data, offset, size


# -- varints -----------------------------------------------------------------


def _read_varint(data: Any, offset: int, size: int, max_bytes: int, excess: int, what: str) -> Tuple[int, int]:
    """An unsigned varint of at most ``max_bytes`` bytes (spec section 2)."""
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


def _write_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


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
    return _write_varint(length)


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
    data, offset, size = _start(buf, offset)
    return _read_int32(data, offset, size, "Int32")


def decode_int64(buf: Any, offset: int = 0, /) -> Tuple[int, int]:
    """Decode an Int64 varint (signed, two's complement); return ``(value, next_offset)``.

    Raises:
        IncompleteError: the varint runs past the end of ``buf``.
        MalformedError: more than 10 bytes, or bits beyond 64 in the 10th byte.
    """
    data, offset, size = _start(buf, offset)
    value, end = _read_uint64(data, offset, size, "Int64")
    return (value - (1 << 64) if value > _INT64_MAX else value), end


def decode_byte(buf: Any, offset: int = 0, /) -> Tuple[int, int]:
    """Decode a Byte (0..127); return ``(value, next_offset)``.

    Raises:
        IncompleteError: no byte at ``offset``.
        MalformedError: the byte is 0x80 or above.
    """
    data, offset, size = _start(buf, offset)
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
    data, offset, size = _start(buf, offset)
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
    data, offset, size = _start(buf, offset)
    length, start = _read_length(data, offset, size, "Bytes")
    return bytes(data[start : start + length]), start + length


def decode_string(buf: Any, offset: int = 0, /) -> Tuple[str, int]:
    """Decode a String (Bytes holding strict UTF-8); return ``(value, next_offset)``.

    Raises:
        IncompleteError: the length or the text runs past the end of ``buf``.
        MalformedError: a malformed or negative length, or invalid UTF-8 (the
            offset is that of the first bad byte).
    """
    data, offset, size = _start(buf, offset)
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
    data, offset, size = _start(buf, offset)
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
    data, offset, size = _start(buf, offset)
    return _read_pairs(data, offset, size)


def decode_session_id(buf: Any, offset: int = 0, /) -> Tuple[SessionId, int]:
    """Decode a SessionId (two unsigned Int64 varints); return ``(session_id, next_offset)``.

    Raises:
        IncompleteError: a part runs past the end of ``buf``.
        MalformedError: a part is not a valid 64-bit varint.
    """
    data, offset, size = _start(buf, offset)
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
    return _write_varint(value & _UINT32_MASK)


def encode_int64(value: int, /) -> bytes:
    """Encode an Int64 varint in its shortest form (negatives take 10 bytes).

    Raises:
        EncodeError: not an int, or outside -2**63..2**63-1.
    """
    _check_int(value, _INT64_MIN, _INT64_MAX, "Int64")
    return _write_varint(value & _UINT64_MASK)


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
    return _write_varint(value.server) + _write_varint(value.value)

