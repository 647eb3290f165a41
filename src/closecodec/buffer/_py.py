"""The buffer layer, pure side: the base of every incremental decoder (:class:`Stream`).

Same names, results and errors as ``_c.pyx`` beside it. Each protocol's stream
(``WebSocketStream``, ``DiffusionStream``, ``MqttStream``) derives from it;
docs/streaming.md is the user's guide. The rules every stream follows, in both
backends:

- **Chunking never shows.** For any split of a stream into chunks, the values
  (and their end offsets) are exactly those of feeding it whole, and so is the
  error, if any: a header is checked as its bytes arrive, as
  ``decode_ws_header`` does, so an invalid prefix fails at the same byte
  whatever the chunking.
- **Offsets are stream offsets.** ``position`` counts every byte fed so far;
  ``feed(data, offsets=True)`` pairs each value with the stream offset one past
  its last byte; every error's ``offset`` is a stream offset.
- **Errors are final.** The first error fails the stream: ``feed()`` raises it
  at once if it has no value to return, else returns the values decoded before
  it and raises the error on the next call. ``error`` holds it; every later
  ``feed()`` raises it again until ``reset()``.
- **Bounded.** A stream holds at most one frame header (14 bytes; an MQTT fixed
  header is 5) plus the payload of the message being reassembled, and refuses
  a message, frame or packet over its limit from its header, before buffering
  any of it: WebSocket close code 1009, MQTT reason code 0x95.
"""

from __future__ import annotations

import sys
from typing import Any, List, Optional

from ..errors import DecodeError
from . import byte_view

__all__ = ["Stream"]

# What feed_into appends: bare values, (end, value) or (start, end, value).
SHAPE_VALUES, SHAPE_OFFSETS, SHAPE_SPANS = 0, 1, 2


def check_limit(value: Any, name: str) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} must be an int >= 0, not {value!r}")
    if value > sys.maxsize:
        raise ValueError(f"{name} must be at most {sys.maxsize}, not {value!r}")
    return value


def shifted(error: DecodeError, delta: int) -> DecodeError:
    """``error`` with its offset moved by ``delta`` (from a buffer's to the stream's)."""
    error.offset += delta
    error.args = (error.args[0], error.offset) + error.args[2:]
    return error


class Stream:
    """What every stream shares: the position, the error state and ``feed``."""

    def __init__(self) -> None:
        self._position = 0
        self._error: Optional[DecodeError] = None

    @property
    def position(self) -> int:
        """The stream offset of the next byte: how many bytes were fed so far."""
        return self._position

    @property
    def error(self) -> Optional[DecodeError]:
        """The error that failed the stream, or None; cleared by :meth:`reset`."""
        return self._error

    def feed(self, data: Any, /, *, offsets: bool = False, spans: bool = False) -> List[Any]:
        """Decode the next bytes of the stream; return the values they complete.

        Args:
            data: the next bytes, any C-contiguous buffer, of any size (empty
                is allowed). Bytes of an unfinished value are kept (copied)
                until the rest arrives; ``data`` may be reused once this returns.
            offsets: return ``(end, value)`` pairs, ``end`` being the stream
                offset one past the value's last byte, instead of bare values.
            spans: return ``(start, end, value)`` triples, ``start`` being the
                stream offset of the value's first byte (its first frame
                header, or the packet's fixed header).

        Returns:
            The values completed by ``data``, in stream order (maybe none).

        Raises:
            DecodeError: the stream is invalid (see the class for which
                subclass); the stream has failed. If values precede the error
                in ``data``, they are returned and the error is raised by the
                next call instead. A failed stream raises its error again on
                every call until :meth:`reset`.
            TypeError: ``data`` is not a C-contiguous buffer.
            ValueError: both ``offsets`` and ``spans``.
        """
        if offsets and spans:
            raise ValueError("offsets and spans are exclusive: spans include the end offsets")
        if self._error is not None:
            raise self._error
        out: List[Any] = []
        self.feed_into(byte_view(data), out, SHAPE_SPANS if spans else SHAPE_OFFSETS if offsets else SHAPE_VALUES)
        if self._error is not None and not out:
            raise self._error
        return out

    def feed_into(self, view: Any, out: List[Any], shape: int) -> None:
        """``feed`` for the capture loop: appends to ``out``; a decode error is kept in ``_error``, not raised.

        ``view`` is a byte memoryview; the stream must not have failed already.
        """
        base = self._position
        self._position = base + len(view)
        try:
            self._process(view, base, out, shape)
        except DecodeError as error:
            self._error = error

    def reset(self, position: Optional[int] = None) -> None:
        """Forget any unfinished frame and the error: decoding starts afresh at a frame boundary.

        For a stream that lost bytes (a capture with a gap): the next byte fed
        must start a frame (or packet).

        Args:
            position: the stream offset of that next byte (e.g. past the gap);
                None keeps :attr:`position` as it is.
        """
        if position is not None:
            if type(position) is not int or position < 0:
                raise ValueError(f"position must be an int >= 0, not {position!r}")
            self._position = position
        self._error = None
        self._clear()

    def _process(self, view: Any, base: int, out: List[Any], shape: int) -> None:  # pragma: no cover
        raise NotImplementedError

    def _clear(self) -> None:  # pragma: no cover
        raise NotImplementedError
