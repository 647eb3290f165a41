# The buffer layer, compiled side: the base of every incremental decoder (Stream).
# Same names, results and errors as _py.py beside it, whose docstring states the
# rules every stream follows; the inline reader and writer are in _c.pxd.
# cython: boundscheck=False, wraparound=False

from cpython.buffer cimport PyBuffer_Release
from libc.stdint cimport int64_t

import sys

from closecodec.errors import DecodeError

__all__ = ["Stream"]


cdef Py_ssize_t check_limit(object value, str name) except -1:
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} must be an int >= 0, not {value!r}")
    if value > sys.maxsize:
        raise ValueError(f"{name} must be at most {sys.maxsize}, not {value!r}")
    return value


cdef object shifted(object error, int64_t delta):
    """``error`` with its offset moved by ``delta`` (from a buffer's to the stream's)."""
    error.offset += delta
    error.args = (error.args[0], error.offset) + error.args[2:]
    return error


cdef class Stream:
    """What every stream shares: the position, the error state and ``feed``."""

    @property
    def position(self):
        """The stream offset of the next byte: how many bytes were fed so far."""
        return self._position

    @property
    def error(self):
        """The error that failed the stream, or None; cleared by :meth:`reset`."""
        return self._error

    def feed(self, data, /, *, bint offsets=False, bint spans=False):
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
        cdef Py_buffer view
        cdef Reader r
        cdef list out = []
        if offsets and spans:
            raise ValueError("offsets and spans are exclusive: spans include the end offsets")
        if self._error is not None:
            raise self._error
        open_reader(&r, data, 0, &view)
        try:
            self.feed_into(r.data, r.size, out, SHAPE_SPANS if spans else SHAPE_OFFSETS if offsets else SHAPE_VALUES)
            if self._error is not None and not out:
                raise self._error
            return out
        finally:
            PyBuffer_Release(&view)

    cdef int feed_into(self, const unsigned char* data, Py_ssize_t n, list out, int shape) except -1:
        """``feed`` for C callers: appends to ``out``; a decode error is kept in ``_error``, not raised.

        The stream must not have failed already (``_error`` is None).
        """
        cdef int64_t base = self._position
        self._position = base + n
        try:
            self.process(data, n, base, out, shape)
        except DecodeError as error:
            self._error = error
        return 0

    def reset(self, position=None):
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
        self.clear()

    cdef int process(self, const unsigned char* data, Py_ssize_t n, int64_t base, list out, int shape) except -1:
        return 0

    cdef void clear(self) noexcept:
        pass
