"""The buffer layer, pure-Python side: what both backends share and need not be a byte loop.

Buffer views and offsets for the pure twins, writing into a caller's buffer, the
varint writer of the pure twins (Diffusion's varints and MQTT's Variable Byte
Integers are the same base-128 form), Dictionary pairs, zlib bodies and the
streams' default size limit. Beside this file: ``_c.pxd``, the bounds-checked
reader and writer that every compiled protocol module cimports, and ``Stream``,
the base of every incremental decoder, compiled in ``_c.pyx`` with its twin in
``_py.py`` (docs/architecture.md).
"""

from __future__ import annotations

import sys
import zlib
from operator import index
from typing import Any, Callable, Mapping, Tuple, TypeVar, Union

from ..errors import EncodeError, IncompleteError, MalformedError

WritableBuffer = Union[bytearray, memoryview]
T = TypeVar("T")
Pairs = Tuple[Tuple[str, str], ...]


def byte_view(buf: Any) -> Any:
    """An int-indexable, sliceable view of ``buf``'s bytes (no copy), for the pure backends."""
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


def ssize(value: Any) -> int:
    """``value`` as a compiled function takes a ``Py_ssize_t`` argument: an int that fits in one."""
    value = index(value)
    if not -sys.maxsize - 1 <= value <= sys.maxsize:
        raise OverflowError("Python int too large to convert to C ssize_t")
    return value


def start_reading(buf: Any, offset: Any) -> Tuple[Any, int, int]:
    """``(view, offset, size)`` for a pure decoder, with the offset checked against the buffer."""
    offset = ssize(offset)  # first, as the compiled twins convert their arguments first
    data = byte_view(buf)
    size = len(data)
    if not 0 <= offset <= size:
        raise ValueError(f"offset {offset} is outside the buffer (0..{size})")
    return data, offset, size


def write_into(data: bytes, buffer: WritableBuffer, offset: int) -> int:
    """Copy ``data`` into ``buffer`` at byte ``offset`` and return ``len(data)``.

    A bytearray grows when ``data`` runs past its end; any other writable
    C-contiguous buffer must already have room. Nothing is written when the
    call fails.
    """
    if type(buffer) is bytearray:
        target: WritableBuffer = buffer
    else:
        target = memoryview(buffer).cast("B")
        if target.readonly:
            raise TypeError("cannot encode into a read-only buffer")
    size = len(target)
    if type(offset) is not int or not 0 <= offset <= size:
        raise EncodeError(f"offset {offset!r} is outside the buffer (0..{size})")
    end = offset + len(data)
    if end > size and type(target) is not bytearray:
        raise EncodeError(
            f"buffer too small: {len(data)} bytes at offset {offset} need {end}, it has {size}"
        )
    target[offset:end] = data
    return len(data)


def encode_into(encode: Callable[[T], bytes], value: T, buffer: WritableBuffer, offset: int = 0, /) -> int:
    """Encode ``value`` with ``encode`` straight into ``buffer`` at ``offset``.

    Args:
        encode: any closecodec encoder, e.g. ``closecodec.encode_string``.
        value: what to encode.
        buffer: a bytearray (grown if needed) or a writable memoryview.
        offset: where the encoding starts in ``buffer``.

    Returns:
        The number of bytes written.

    Raises:
        EncodeError: ``value`` cannot be encoded, or ``buffer`` has no room;
            nothing is written then.
    """
    return write_into(encode(value), buffer, offset)


def varint_bytes(value: int) -> bytes:
    """``value`` (at least 0) as a little-endian base-128 varint: 7 bits a byte, the high bit set on
    every byte but the last. Range checks are the caller's."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def pairs_of(value: Any) -> Pairs:
    """Key/value pairs, in order, from a mapping or an iterable of 2-tuples.

    Raises:
        EncodeError: ``value`` is neither.
    """
    if isinstance(value, Mapping):
        return tuple(value.items())
    try:
        pairs = tuple(value)
    except TypeError:
        pairs = None
    if pairs is None or isinstance(value, (str, bytes)) or not all(
        type(pair) is tuple and len(pair) == 2 for pair in pairs
    ):
        raise EncodeError("a Dictionary needs a mapping or (key, value) tuples")
    return pairs


#: Default ``max_message_size`` / ``max_packet_size`` of the streams and the capture reader: 16 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024

#: Default bound on an inflated (zlib) message body, in bytes.
DEFAULT_MAX_INFLATED = 16 * 1024 * 1024


def looks_like_zlib(header: bytes) -> bool:
    """Whether two bytes are a zlib stream header (RFC 1950 section 2.2) without a preset dictionary."""
    if len(header) < 2:
        return False
    cmf, flg = header[0], header[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0 and not flg & 0x20


def inflate(body: Any, max_size: int, offset: int) -> bytes:
    """Inflate a zlib-compressed message body of at most ``max_size`` bytes inflated.

    ``offset`` is where ``body`` starts in the caller's buffer, for errors.

    Raises:
        IncompleteError: the zlib stream ends early.
        MalformedError: it is not valid zlib data, inflates past ``max_size``,
            or is followed by other bytes.
        TypeError, ValueError: ``max_size`` is not an int of at least 0.
    """
    max_size = index(max_size)
    if max_size < 0:
        raise ValueError(f"max_inflated must be at least 0, not {max_size}")
    inflater = zlib.decompressobj()
    try:
        # One byte more than the limit, so that a body over it is seen (a
        # max_length of 0 would mean no limit at all to zlib).
        inflated = inflater.decompress(body, max_size + 1)
    except zlib.error:
        raise MalformedError("invalid zlib data in a compressed message", offset) from None
    if len(inflated) > max_size or inflater.unconsumed_tail:
        raise MalformedError(f"compressed message inflates past the {max_size}-byte limit", offset)
    if not inflater.eof:
        raise IncompleteError("zlib stream", offset)
    if inflater.unused_data:
        raise MalformedError("bytes after the end of a compressed message's zlib stream", offset)
    return inflated
