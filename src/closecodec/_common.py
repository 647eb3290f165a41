"""Helpers shared by both backends: not byte loops, so written once."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Tuple, TypeVar, Union

from .errors import EncodeError

WritableBuffer = Union[bytearray, memoryview]
T = TypeVar("T")
Pairs = Tuple[Tuple[str, str], ...]


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
