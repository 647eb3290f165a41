# The buffer layer, compiled side: what every compiled protocol module cimports.
#
# A Reader is (pointer, size, position) over a buffer the caller holds; every
# function that reads checks its bounds against ``size`` before touching a byte.
# A Writer is a growable byte array. These functions are inline, so they compile
# into each module that cimports them: no call across modules on a hot path.
# Stream, the base of every incremental decoder, is defined in _c.pyx.

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Realloc
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy


cdef struct Reader:
    const unsigned char* data
    Py_ssize_t size
    Py_ssize_t pos


cdef struct Writer:
    char* data
    Py_ssize_t size
    Py_ssize_t capacity


# Status of the nogil parsers of the C-level API (docs/streaming.md).
cdef enum:
    CLOSECODEC_OK = 0          # decoded; the result's ``size`` is the bytes it took
    CLOSECODEC_INCOMPLETE = 1  # a valid prefix: ``size`` is the bytes needed, if known (else 0)
    CLOSECODEC_MALFORMED = 2   # invalid from ``error_offset`` on (and ``answer`` where there is one)
    CLOSECODEC_WRONG_TYPE = 3  # a valid frame, packet or event of another type


# What Stream.feed_into appends: bare values, (end, value) or (start, end, value).
cdef enum:
    SHAPE_VALUES = 0
    SHAPE_OFFSETS = 1
    SHAPE_SPANS = 2
    # A stream's message or packet buffer larger than this is freed once its value is out.
    KEEP_BUFFER = 65536


cdef class Stream:
    cdef int64_t _position
    cdef object _error

    cdef int feed_into(self, const unsigned char* data, Py_ssize_t n, list out, int shape) except -1
    cdef int process(self, const unsigned char* data, Py_ssize_t n, int64_t base, list out, int shape) except -1
    cdef void clear(self) noexcept

    cdef inline bint failed(self) noexcept:
        """Whether an error failed the stream (``error`` is set)."""
        return self._error is not None

    cdef inline bint expects(self, int64_t position) noexcept:
        """Whether the stream has not failed and its next byte is at ``position``."""
        return self._error is None and self._position == position


# A stream's size limit, checked: an int from 0 to sys.maxsize.
cdef Py_ssize_t check_limit(object value, str name) except -1
# ``error`` with its offset moved by ``delta`` (from a buffer's to the stream's).
cdef object shifted(object error, int64_t delta)


cdef inline int parse_error(Py_ssize_t* error_offset, int* answer, Py_ssize_t offset, int code) noexcept nogil:
    """A nogil parser's MALFORMED verdict: where, and the code to answer with."""
    error_offset[0] = offset
    answer[0] = code
    return CLOSECODEC_MALFORMED


cdef inline int open_reader(Reader* r, object buf, Py_ssize_t offset, Py_buffer* view) except -1:
    """Acquire ``buf``'s bytes into ``view`` and point ``r`` at ``offset``."""
    try:
        PyObject_GetBuffer(buf, view, PyBUF_SIMPLE)
    except BufferError:
        raise TypeError("closecodec decodes C-contiguous buffers only") from None
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not {type(buf).__name__!r}") from None
    r.data = <const unsigned char*>view.buf
    r.size = view.len
    if offset < 0 or offset > r.size:
        PyBuffer_Release(view)
        raise ValueError(f"offset {offset} is outside the buffer (0..{r.size})")
    r.pos = offset
    return 0


# Big-endian (network order) integers from two or four bytes the caller has checked are there.
cdef inline uint32_t be16(const unsigned char* p) noexcept nogil:
    return <uint32_t>p[0] << 8 | p[1]


cdef inline uint32_t be32(const unsigned char* p) noexcept nogil:
    return <uint32_t>p[0] << 24 | <uint32_t>p[1] << 16 | <uint32_t>p[2] << 8 | p[3]


cdef inline int writer_reserve(Writer* w, Py_ssize_t extra) except -1:
    cdef Py_ssize_t needed = w.size + extra
    cdef Py_ssize_t capacity
    cdef char* grown
    if needed <= w.capacity:
        return 0
    capacity = max(needed, 2 * w.capacity, 64)
    grown = <char*>PyMem_Realloc(w.data, capacity)
    if grown is NULL:
        raise MemoryError()
    w.data = grown
    w.capacity = capacity
    return 0


cdef inline int write_raw(Writer* w, const char* data, Py_ssize_t length) except -1:
    writer_reserve(w, length)
    memcpy(w.data + w.size, data, length)
    w.size += length
    return 0


cdef inline Py_ssize_t varint_into(unsigned char* out, uint64_t value) noexcept nogil:
    """Write ``value`` as a little-endian base-128 varint (7 bits a byte, the high bit set on every
    byte but the last) into ``out``, which has room for 10 bytes; return its length. Diffusion's
    varints and MQTT's Variable Byte Integers are this form; range checks are the caller's."""
    cdef Py_ssize_t n = 0
    while value > 0x7F:
        out[n] = (value & 0x7F) | 0x80
        n += 1
        value >>= 7
    out[n] = <unsigned char>value
    return n + 1


cdef inline int write_varint(Writer* w, uint64_t value) except -1:
    writer_reserve(w, 10)
    w.size += varint_into(<unsigned char*>w.data + w.size, value)
    return 0


cdef inline bytes varint_bytes(uint64_t value):
    cdef unsigned char out[10]
    return PyBytes_FromStringAndSize(<char*>out, varint_into(out, value))


cdef inline bytes writer_finish(Writer* w):
    return PyBytes_FromStringAndSize(w.data, w.size)


cdef inline bint is_ascii(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """Whether every byte of ``s[0:n]`` is below 0x80 (so any string inside is UTF-8)."""
    cdef uint64_t word, seen = 0
    cdef Py_ssize_t i = 0
    while n - i >= 8:
        memcpy(&word, s + i, 8)
        seen |= word
        i += 8
    while i < n:
        seen |= s[i]
        i += 1
    return (seen & <uint64_t>0x8080808080808080) == 0


cdef inline Py_ssize_t utf8_invalid_at(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """Where the first invalid UTF-8 sequence starts (as UnicodeDecodeError.start), or -1.

    Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
    U+10FFFF; a sequence cut short by the end is invalid at its first byte.
    """
    cdef Py_ssize_t i = 0
    cdef int need, k
    cdef unsigned char c, lo, hi
    cdef uint64_t word
    while i < n:
        c = s[i]
        if c < 0x80:
            i += 1
            # ASCII runs (most text) eight bytes at a time.
            while n - i >= 8:
                memcpy(&word, s + i, 8)
                if word & <uint64_t>0x8080808080808080:
                    break
                i += 8
            continue
        if c < 0xC2:
            return i
        if c < 0xE0:
            need = 1
            lo = 0x80
            hi = 0xBF
        elif c < 0xF0:
            need = 2
            lo = 0xA0 if c == 0xE0 else 0x80
            hi = 0x9F if c == 0xED else 0xBF
        elif c < 0xF5:
            need = 3
            lo = 0x90 if c == 0xF0 else 0x80
            hi = 0x8F if c == 0xF4 else 0xBF
        else:
            return i
        if i + 1 >= n or s[i + 1] < lo or s[i + 1] > hi:
            return i
        for k in range(2, need + 1):
            if i + k >= n or s[i + k] & 0xC0 != 0x80:
                return i
        i += need + 1
    return -1
