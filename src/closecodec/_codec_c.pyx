# Compiled backend: the byte loops. Same names, results and errors as
# _codec_py.py, whose module docstring records the decisions both follow.
#
# Every read goes through a Reader (pointer, size, position) whose helpers
# check bounds before touching a byte, so indexing below never needs Cython's
# own bounds checks (boundscheck/wraparound are off for that reason only).
# cython: boundscheck=False, wraparound=False

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy

from closecodec.frames cimport SessionId

from closecodec._common import pairs_of
from closecodec.errors import EncodeError, IncompleteError, MalformedError


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t* size) except NULL

cdef extern from *:
    """
    /* The key cache swaps shared slots without a lock: only safe with a GIL. */
    #ifdef Py_GIL_DISABLED
    #define CLOSECODEC_KEY_CACHE 0
    #else
    #define CLOSECODEC_KEY_CACHE 1
    #endif
    """
    const bint KEY_CACHE_ENABLED "CLOSECODEC_KEY_CACHE"


cdef object INT32_MIN = -(1 << 31)
cdef object INT32_MAX = (1 << 31) - 1
cdef object INT64_MIN = -(1 << 63)
cdef object INT64_MAX = (1 << 63) - 1
cdef enum:
    # Bits of the last allowed varint byte beyond the type's width
    # (spec/diffusion.md section 2): Int32 byte 5 carries bits 28..31,
    # Int64 byte 10 bit 63 only.
    INT32_EXCESS = 0x70
    INT64_EXCESS = 0x7E
    # Dictionary keys repeat from event to event ($Principal, $ClientIP, ...):
    # short ones are interned in a small direct-mapped cache of owned strings.
    KEY_CACHE_SLOTS = 512
    KEY_CACHE_MAX_LENGTH = 32

cdef PyObject* key_cache[KEY_CACHE_SLOTS]


# -- reading -----------------------------------------------------------------


cdef inline void tuple_set(tuple items, Py_ssize_t i, object item) noexcept:
    # PyTuple_SET_ITEM steals a reference. A tuple left partly filled by an
    # error is still safe to free: tuple deallocation skips NULL slots.
    Py_INCREF(item)
    PyTuple_SET_ITEM(items, i, item)


cdef int open_reader(Reader* r, object buf, Py_ssize_t offset, Py_buffer* view) except -1:
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


cdef int read_varint(Reader* r, int max_bytes, unsigned char excess, str what, uint64_t* out) except -1:
    cdef Py_ssize_t start = r.pos
    cdef Py_ssize_t pos = r.pos
    cdef Py_ssize_t last = r.pos + max_bytes - 1
    cdef uint64_t result = 0
    cdef unsigned int shift = 0
    cdef unsigned char byte
    while True:
        if pos >= r.size:
            raise IncompleteError(what, start)
        byte = r.data[pos]
        if pos == last:
            if byte & 0x80:
                raise MalformedError(f"{what} is longer than {max_bytes} bytes", pos)
            if byte & excess:
                raise MalformedError(f"{what} has bits beyond its width in byte {max_bytes}", pos)
        result |= (<uint64_t>(byte & 0x7F)) << shift
        if byte < 0x80:
            out[0] = result
            r.pos = pos + 1
            return 0
        pos += 1
        shift += 7


cdef int read_int32(Reader* r, str what, int32_t* out) except -1:
    cdef uint64_t value
    read_varint(r, 5, INT32_EXCESS, what, &value)
    out[0] = <int32_t><uint32_t>value
    return 0


cdef int read_uint64(Reader* r, str what, uint64_t* out) except -1:
    return read_varint(r, 10, INT64_EXCESS, what, out)


cdef Py_ssize_t read_length(Reader* r, str what, str what_length, Py_ssize_t unit) except -1:
    """A non-negative Int32 length or count whose ``unit``-byte items fit in the input."""
    cdef Py_ssize_t start = r.pos
    cdef int32_t length
    read_int32(r, what_length, &length)
    if length < 0:
        raise MalformedError(f"negative {what} length {length}", start)
    if <Py_ssize_t>length * unit > r.size - r.pos:
        raise IncompleteError(what, start)
    return length


cdef str read_utf8(Reader* r, Py_ssize_t length):
    """``length`` bytes of strict UTF-8 at the reader's position (already bounds-checked)."""
    cdef Py_ssize_t start = r.pos
    try:
        text = PyUnicode_DecodeUTF8(<const char*>r.data + start, length, NULL)
    except UnicodeDecodeError as error:
        raise MalformedError("invalid UTF-8 in String", start + error.start) from None
    r.pos = start + length
    return text


cdef str read_string(Reader* r):
    return read_utf8(r, read_length(r, "String", "String length", 1))


cdef str read_key(Reader* r):
    """A String that is likely to repeat: served from the key cache when it can be."""
    cdef Py_ssize_t length = read_length(r, "String", "String length", 1)
    cdef const unsigned char* raw = r.data + r.pos
    cdef Py_ssize_t i, cached_length
    cdef uint32_t slot = 2166136261u  # FNV-1a
    cdef PyObject* cached
    cdef str text
    if not KEY_CACHE_ENABLED or length > KEY_CACHE_MAX_LENGTH:
        return read_utf8(r, length)
    for i in range(length):
        slot = (slot ^ raw[i]) * 16777619u
    slot %= KEY_CACHE_SLOTS
    cached = key_cache[slot]
    if cached is not NULL:
        utf8 = PyUnicode_AsUTF8AndSize(<object>cached, &cached_length)
        if cached_length == length and memcmp(utf8, raw, length) == 0:
            r.pos += length
            return <str>cached
    text = read_utf8(r, length)
    Py_INCREF(text)
    Py_XDECREF(key_cache[slot])
    key_cache[slot] = <PyObject*>text
    return text


cdef tuple read_pairs(Reader* r):
    # Each pair takes at least two bytes (two empty strings).
    cdef Py_ssize_t count = read_length(r, "Dictionary", "Dictionary length", 2)
    cdef Py_ssize_t i
    cdef tuple pairs = PyTuple_New(count)
    for i in range(count):
        key = read_key(r)
        value = read_string(r)
        tuple_set(pairs, i, (key, value))
    return pairs


cdef SessionId read_session_id(Reader* r):
    cdef uint64_t server, value
    read_uint64(r, "SessionId server", &server)
    read_uint64(r, "SessionId value", &value)
    cdef SessionId session_id = SessionId.__new__(SessionId)
    session_id.server = server
    session_id.value = value
    return session_id


# -- writing -----------------------------------------------------------------


cdef int writer_reserve(Writer* w, Py_ssize_t extra) except -1:
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


cdef int write_raw(Writer* w, const char* data, Py_ssize_t length) except -1:
    writer_reserve(w, length)
    memcpy(w.data + w.size, data, length)
    w.size += length
    return 0


cdef int write_varint(Writer* w, uint64_t value) except -1:
    writer_reserve(w, 10)
    while value > 0x7F:
        w.data[w.size] = <char>((value & 0x7F) | 0x80)
        w.size += 1
        value >>= 7
    w.data[w.size] = <char>value
    w.size += 1
    return 0


cdef int write_length(Writer* w, Py_ssize_t length, str what) except -1:
    if length > 0x7FFFFFFF:
        raise EncodeError(f"{what} of {length} bytes or items is longer than an Int32 length allows")
    return write_varint(w, <uint64_t>length)


cdef int write_string(Writer* w, object value, str what) except -1:
    cdef Py_ssize_t length
    cdef const char* utf8
    if type(value) is not str:
        raise EncodeError(f"{what} needs a str, not {type(value).__name__}")
    try:
        utf8 = PyUnicode_AsUTF8AndSize(value, &length)
    except UnicodeEncodeError:
        raise EncodeError(f"{what} is not encodable as UTF-8 (lone surrogate)") from None
    write_length(w, length, what)
    return write_raw(w, utf8, length)


cdef int write_pairs(Writer* w, tuple pairs) except -1:
    write_length(w, len(pairs), "Dictionary")
    for key, value in pairs:
        write_string(w, key, "String")
        write_string(w, value, "String")
    return 0


cdef bytes writer_finish(Writer* w):
    return PyBytes_FromStringAndSize(w.data, w.size)


cdef int check_int(object value, object low, object high, str what) except -1:
    if type(value) is not int:
        raise EncodeError(f"{what} needs an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise EncodeError(f"{value} is outside the {what} range {low}..{high}")
    return 0


cdef bytes varint_bytes(uint64_t value):
    cdef unsigned char out[10]
    cdef Py_ssize_t n = 0
    while value > 0x7F:
        out[n] = (value & 0x7F) | 0x80
        n += 1
        value >>= 7
    out[n] = <unsigned char>value
    return PyBytes_FromStringAndSize(<char*>out, n + 1)


# -- public decoders ---------------------------------------------------------


def decode_int32(buf, Py_ssize_t offset=0, /):
    """Decode an Int32 varint; return ``(value, next_offset)``.

    Raises:
        IncompleteError: the varint runs past the end of ``buf``.
        MalformedError: more than 5 bytes, or bits beyond 32 in the 5th byte.
    """
    cdef Py_buffer view
    cdef Reader r
    cdef int32_t value
    open_reader(&r, buf, offset, &view)
    try:
        read_int32(&r, "Int32", &value)
        return value, r.pos
    finally:
        PyBuffer_Release(&view)


def decode_int64(buf, Py_ssize_t offset=0, /):
    """Decode an Int64 varint (signed, two's complement); return ``(value, next_offset)``.

    Raises:
        IncompleteError: the varint runs past the end of ``buf``.
        MalformedError: more than 10 bytes, or bits beyond 64 in the 10th byte.
    """
    cdef Py_buffer view
    cdef Reader r
    cdef uint64_t value
    open_reader(&r, buf, offset, &view)
    try:
        read_uint64(&r, "Int64", &value)
        return <int64_t>value, r.pos
    finally:
        PyBuffer_Release(&view)


cdef object read_one_byte(object buf, Py_ssize_t offset, str what):
    cdef Py_buffer view
    cdef Reader r
    open_reader(&r, buf, offset, &view)
    try:
        if r.pos >= r.size:
            raise IncompleteError(what, r.pos)
        return r.data[r.pos]
    finally:
        PyBuffer_Release(&view)


def decode_byte(buf, Py_ssize_t offset=0, /):
    """Decode a Byte (0..127); return ``(value, next_offset)``.

    Raises:
        IncompleteError: no byte at ``offset``.
        MalformedError: the byte is 0x80 or above.
    """
    cdef int value = read_one_byte(buf, offset, "Byte")
    if value > 0x7F:
        raise MalformedError(f"Byte 0x{value:02x} is above 0x7f", offset)
    return value, offset + 1


def decode_boolean(buf, Py_ssize_t offset=0, /):
    """Decode a Boolean (one byte, 0 or 1); return ``(value, next_offset)``.

    Raises:
        IncompleteError: no byte at ``offset``.
        MalformedError: the byte is neither 0 nor 1.
    """
    cdef int value = read_one_byte(buf, offset, "Boolean")
    if value > 1:
        raise MalformedError(f"Boolean 0x{value:02x} is neither 0 nor 1", offset)
    return value == 1, offset + 1


def decode_bytes(buf, Py_ssize_t offset=0, /):
    """Decode Bytes (Int32 length, then the bytes); return ``(value, next_offset)``.

    Raises:
        IncompleteError: the length or the bytes run past the end of ``buf``.
        MalformedError: a malformed or negative length.
    """
    cdef Py_buffer view
    cdef Reader r
    cdef Py_ssize_t length
    open_reader(&r, buf, offset, &view)
    try:
        length = read_length(&r, "Bytes", "Bytes length", 1)
        value = PyBytes_FromStringAndSize(<const char*>r.data + r.pos, length)
        return value, r.pos + length
    finally:
        PyBuffer_Release(&view)


def decode_string(buf, Py_ssize_t offset=0, /):
    """Decode a String (Bytes holding strict UTF-8); return ``(value, next_offset)``.

    Raises:
        IncompleteError: the length or the text runs past the end of ``buf``.
        MalformedError: a malformed or negative length, or invalid UTF-8 (the
            offset is that of the first bad byte).
    """
    cdef Py_buffer view
    cdef Reader r
    open_reader(&r, buf, offset, &view)
    try:
        value = read_string(&r)
        return value, r.pos
    finally:
        PyBuffer_Release(&view)


def decode_collection(buf, Py_ssize_t offset, decode_item, /):
    """Decode a Collection (Int32 count, then the items); return ``(items, next_offset)``.

    Args:
        decode_item: a decoder of this module (or one with the same signature)
            for one item; every item must take at least one byte.

    Raises:
        IncompleteError: the count or an item runs past the end of ``buf``.
        MalformedError: a malformed or negative count, or a malformed item.
    """
    cdef Py_buffer view
    cdef Reader r
    cdef Py_ssize_t count, i, pos
    open_reader(&r, buf, offset, &view)
    try:
        count = read_length(&r, "Collection", "Collection length", 1)
        pos = r.pos
    finally:
        PyBuffer_Release(&view)
    items = PyTuple_New(count)
    for i in range(count):
        item, pos = decode_item(buf, pos)
        tuple_set(items, i, item)
    return items, pos


def decode_string_dict(buf, Py_ssize_t offset=0, /):
    """Decode a string Dictionary; return ``(pairs, next_offset)``.

    The pairs are a tuple of ``(key, value)`` in wire order, duplicate keys
    included: what is on the wire, for the caller to fold (``dict(pairs)``
    keeps the last of duplicates).

    Raises:
        IncompleteError: the count or a string runs past the end of ``buf``.
        MalformedError: a malformed or negative count, or a malformed string.
    """
    cdef Py_buffer view
    cdef Reader r
    open_reader(&r, buf, offset, &view)
    try:
        value = read_pairs(&r)
        return value, r.pos
    finally:
        PyBuffer_Release(&view)


def decode_session_id(buf, Py_ssize_t offset=0, /):
    """Decode a SessionId (two unsigned Int64 varints); return ``(session_id, next_offset)``.

    Raises:
        IncompleteError: a part runs past the end of ``buf``.
        MalformedError: a part is not a valid 64-bit varint.
    """
    cdef Py_buffer view
    cdef Reader r
    open_reader(&r, buf, offset, &view)
    try:
        value = read_session_id(&r)
        return value, r.pos
    finally:
        PyBuffer_Release(&view)


# -- public encoders ---------------------------------------------------------


def encode_int32(value, /):
    """Encode an Int32 varint in its shortest form (negatives take 5 bytes).

    Raises:
        EncodeError: not an int, or outside -2**31..2**31-1.
    """
    check_int(value, INT32_MIN, INT32_MAX, "Int32")
    return varint_bytes(<uint32_t><int32_t>value)


def encode_int64(value, /):
    """Encode an Int64 varint in its shortest form (negatives take 10 bytes).

    Raises:
        EncodeError: not an int, or outside -2**63..2**63-1.
    """
    check_int(value, INT64_MIN, INT64_MAX, "Int64")
    return varint_bytes(<uint64_t><int64_t>value)


def encode_byte(value, /):
    """Encode a Byte (0..127).

    Raises:
        EncodeError: not an int, or outside 0..127.
    """
    check_int(value, 0, 0x7F, "Byte")
    return bytes((value,))


def encode_boolean(value, /):
    """Encode a Boolean as one byte, 0 or 1.

    Raises:
        EncodeError: not a bool.
    """
    if type(value) is not bool:
        raise EncodeError(f"Boolean needs a bool, not {type(value).__name__}")
    return b"\x01" if value else b"\x00"


def encode_bytes(value, /):
    """Encode Bytes: an Int32 length, then the bytes of any bytes-like object.

    Raises:
        EncodeError: not bytes-like, or longer than 2**31-1 bytes.
    """
    cdef Py_buffer view
    cdef Writer w = Writer(NULL, 0, 0)
    try:
        PyObject_GetBuffer(value, &view, PyBUF_SIMPLE)
    except (TypeError, BufferError):
        raise EncodeError(f"Bytes needs a bytes-like object, not {type(value).__name__}") from None
    try:
        write_length(&w, view.len, "Bytes")
        write_raw(&w, <const char*>view.buf, view.len)
        return writer_finish(&w)
    finally:
        PyBuffer_Release(&view)
        PyMem_Free(w.data)


def encode_string(value, /):
    """Encode a String: an Int32 length, then UTF-8.

    Raises:
        EncodeError: not a str, a lone surrogate, or too long.
    """
    cdef Writer w = Writer(NULL, 0, 0)
    try:
        write_string(&w, value, "String")
        return writer_finish(&w)
    finally:
        PyMem_Free(w.data)


def encode_collection(items, encode_item, /):
    """Encode a Collection: an Int32 count, then each item by ``encode_item``.

    Raises:
        EncodeError: ``items`` is not iterable, or an item cannot be encoded.
    """
    try:
        items = tuple(items)
    except TypeError:
        raise EncodeError(f"a Collection needs an iterable, not {type(items).__name__}") from None
    cdef Writer w = Writer(NULL, 0, 0)
    try:
        write_length(&w, len(items), "Collection")
        for item in items:
            encoded = encode_item(item)
            if type(encoded) is not bytes:
                raise EncodeError(f"an item encoder returned {type(encoded).__name__}, not bytes")
            write_raw(&w, PyBytes_AS_STRING(encoded), len(<bytes>encoded))
        return writer_finish(&w)
    finally:
        PyMem_Free(w.data)


def encode_string_dict(value, /):
    """Encode a string Dictionary from a mapping or ``(key, value)`` pairs, in order.

    Raises:
        EncodeError: not a mapping or pairs, or a key or value is not a str.
    """
    cdef Writer w = Writer(NULL, 0, 0)
    try:
        write_pairs(&w, pairs_of(value))
        return writer_finish(&w)
    finally:
        PyMem_Free(w.data)


def encode_session_id(value, /):
    """Encode a SessionId as two varints, ``server`` then ``value``.

    Raises:
        EncodeError: not a :class:`SessionId`.
    """
    if type(value) is not SessionId:
        raise EncodeError(f"SessionId needs a SessionId, not {type(value).__name__}")
    cdef SessionId session_id = value
    cdef Writer w = Writer(NULL, 0, 0)
    try:
        write_varint(&w, session_id.server)
        write_varint(&w, session_id.value)
        return writer_finish(&w)
    finally:
        PyMem_Free(w.data)
