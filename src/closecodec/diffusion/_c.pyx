# Diffusion, compiled: the wire primitives, messages, session events, the connection
# response and the stream decoder of Diffusion over WebSocket. Same names, results
# and errors as _py.py beside it, whose module docstring records the decisions both
# follow (docs/diffusion.md).
#
# Every read goes through a Reader (pointer, size, position) whose helpers
# check bounds before touching a byte, so indexing below never needs Cython's
# own bounds checks (boundscheck/wraparound are off for that reason only).
# cython: boundscheck=False, wraparound=False

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython cimport array
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

from closecodec.buffer._c cimport (
    CLOSECODEC_INCOMPLETE,
    CLOSECODEC_MALFORMED,
    CLOSECODEC_OK,
    CLOSECODEC_WRONG_TYPE,
    Reader,
    Writer,
    is_ascii,
    open_reader,
    utf8_invalid_at,
    varint_bytes,
    write_raw,
    write_varint,
    writer_finish,
)
from closecodec.diffusion.values cimport (
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

import array
import struct
import zlib

from closecodec.buffer import DEFAULT_MAX_INFLATED, DEFAULT_MAX_MESSAGE_SIZE, inflate, looks_like_zlib, pairs_of
from closecodec.errors import DecodeError, EncodeError, IncompleteError, MalformedError, UnknownValueError, WebSocketFrameError
from closecodec.diffusion.protocol import EntryType, MessageType, UpdateType
from closecodec.reasons import (
    CLOSE_REASON_BY_BYTE,
    HANDSHAKE_PROTOCOL_BYTE,
    ClientCloseReason,
    ReasonNumbering,
    ResponseCode,
    close_reason_to_byte,
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


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t* size) except NULL
    void PyObject_GC_UnTrack(object op)
    str PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_DATA(object unicode)
    Py_ssize_t PyUnicode_GET_LENGTH(object unicode)
    bint PyUnicode_IS_COMPACT_ASCII(object unicode)

cdef extern from *:
    """
    /* The caches of keys and pairs swap shared slots without a lock: only safe with a GIL. */
    #ifdef Py_GIL_DISABLED
    #define CLOSECODEC_SHARED_CACHES 0
    #else
    #define CLOSECODEC_SHARED_CACHES 1
    #endif
    """
    const bint SHARED_CACHES "CLOSECODEC_SHARED_CACHES"


cdef object INT32_MIN = -(1 << 31)
cdef object INT32_MAX = (1 << 31) - 1
cdef object INT64_MIN = -(1 << 63)
cdef object INT64_MAX = (1 << 63) - 1
cdef object UINT32_MAX = (1 << 32) - 1
cdef object UINT64_MAX = (1 << 64) - 1
cdef object RECONNECTED = ResponseCode.RECONNECTED
# After a success response's 3 header bytes: session id (2 x 8), token (24),
# ping period (8), a 4-byte number (docs/diffusion.md section 5).
cdef object SUCCESS_LAYOUT = struct.Struct(">QQ24sQI")
cdef enum:
    OPCODE_TEXT = 1  # a WebSocket TEXT message (RFC 6455 §5.6)
    # Bits of the last allowed varint byte beyond the type's width
    # (docs/diffusion.md section 2): Int32 byte 5 carries bits 28..31,
    # Int64 byte 10 bit 63 only.
    INT32_EXCESS = 0x70
    INT64_EXCESS = 0x7E
    # Dictionary keys repeat from event to event ($Principal, $ClientIP, ...):
    # short ones are interned in a small direct-mapped cache of owned strings.
    KEY_CACHE_SLOTS = 512
    KEY_CACHE_MAX_LENGTH = 32
    # Whole properties repeat too ($ClientType, $Connector, $Principal ...): an
    # ASCII pair of at most PAIR_CACHE_MAX_LENGTH wire bytes is served as one shared
    # (key, value) tuple from a second cache, which keeps the bytes it was read
    # from. A unique value (an address, a time) only misses.
    PAIR_CACHE_SLOTS = 1024
    PAIR_CACHE_MAX_LENGTH = 64

cdef struct PairSlot:
    PyObject* pair  # owned; NULL: empty
    Py_ssize_t length
    unsigned char raw[PAIR_CACHE_MAX_LENGTH]  # the pair's wire bytes: two Strings

cdef PyObject* key_cache[KEY_CACHE_SLOTS]
cdef PairSlot pair_cache[PAIR_CACHE_SLOTS]


# -- reading -----------------------------------------------------------------


cdef inline void tuple_set(tuple items, Py_ssize_t i, object item) noexcept:
    # PyTuple_SET_ITEM steals a reference. A tuple left partly filled by an
    # error is still safe to free: tuple deallocation skips NULL slots.
    Py_INCREF(item)
    PyTuple_SET_ITEM(items, i, item)


cdef int read_varint(Reader* r, int max_bytes, unsigned char excess, str what, uint64_t* out) except -1:
    # One-byte varints (most lengths and counts) take the short path.
    cdef Py_ssize_t pos = r.pos
    if pos < r.size and r.data[pos] < 0x80:
        out[0] = r.data[pos]
        r.pos = pos + 1
        return 0
    return read_long_varint(r, max_bytes, excess, what, out)


cdef int read_long_varint(Reader* r, int max_bytes, unsigned char excess, str what, uint64_t* out) except -1:
    cdef Py_ssize_t pos = r.pos
    cdef Py_ssize_t bad
    cdef int status = varint_parse(r.data, &pos, r.size, max_bytes, excess, out, &bad)
    if status == CLOSECODEC_OK:
        r.pos = pos
        return 0
    if status == CLOSECODEC_INCOMPLETE:
        raise IncompleteError(what, r.pos)
    if r.data[bad] & 0x80:
        raise MalformedError(f"{what} is longer than {max_bytes} bytes", bad)
    raise MalformedError(f"{what} has bits beyond its width in byte {max_bytes}", bad)


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
    cdef str text
    if is_ascii(r.data + start, length):  # most strings: a copy, no decoding
        text = PyUnicode_New(length, 127)
        memcpy(PyUnicode_DATA(text), r.data + start, length)
        r.pos = start + length
        return text
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
    cdef Py_ssize_t cached_length
    cdef uint64_t slot
    cdef PyObject* cached
    cdef str text
    if not SHARED_CACHES or length > KEY_CACHE_MAX_LENGTH:
        return read_utf8(r, length)
    slot = cache_hash(raw, length) % KEY_CACHE_SLOTS
    cached = key_cache[slot]
    if cached is not NULL:
        if PyUnicode_IS_COMPACT_ASCII(<object>cached):
            utf8 = <const char*>PyUnicode_DATA(<object>cached)
            cached_length = PyUnicode_GET_LENGTH(<object>cached)
        else:
            utf8 = PyUnicode_AsUTF8AndSize(<object>cached, &cached_length)
        if cached_length == length and same_bytes(utf8, raw, length):
            r.pos += length
            return <str>cached
    text = read_utf8(r, length)
    Py_INCREF(text)
    Py_XDECREF(key_cache[slot])
    key_cache[slot] = <PyObject*>text
    return text


cdef inline uint64_t cache_hash(const unsigned char* raw, Py_ssize_t length) noexcept nogil:
    """A cache slot's hash: the length mixed with the first and last 8 bytes.

    Enough to spread property names and values, cheap to compute; a collision
    only costs a miss."""
    cdef uint64_t head = 0, tail = 0
    cdef Py_ssize_t i
    if length >= 8:
        memcpy(&head, raw, 8)
        memcpy(&tail, raw + length - 8, 8)
    else:
        for i in range(length):
            head = (head << 8) | raw[i]
    return ((head * 0x9E3779B97F4A7C15u) ^ (tail * 0xC2B2AE3D27D4EB4Fu) ^ <uint64_t>length) >> 40


cdef inline bint same_bytes(const void* a, const void* b, Py_ssize_t n) noexcept nogil:
    """memcmp(a, b, n) == 0 for the short strings of the caches, inline: 8 bytes at a time."""
    cdef const unsigned char* p = <const unsigned char*>a
    cdef const unsigned char* q = <const unsigned char*>b
    cdef uint64_t x, y
    while n >= 8:
        memcpy(&x, p, 8)
        memcpy(&y, q, 8)
        if x != y:
            return False
        p += 8
        q += 8
        n -= 8
    while n > 0:
        if p[0] != q[0]:
            return False
        p += 1
        q += 1
        n -= 1
    return True


cdef tuple read_pair(Reader* r):
    """A Dictionary's (key, value) pair: served from the pair cache when it can be."""
    cdef const unsigned char* raw = r.data + r.pos
    cdef Py_ssize_t left = r.size - r.pos
    cdef Py_ssize_t span
    cdef PairSlot* slot = NULL
    cdef Reader copy
    cdef unsigned char copied[PAIR_CACHE_MAX_LENGTH]
    cdef tuple pair
    # Cached: pairs of one-byte lengths within PAIR_CACHE_MAX_LENGTH bytes of input.
    if SHARED_CACHES and left >= 2 and raw[0] < 0x80 and raw[0] + 1 < left and raw[raw[0] + 1] < 0x80:
        span = raw[0] + 2 + raw[raw[0] + 1]
        if span <= PAIR_CACHE_MAX_LENGTH and span <= left:
            slot = &pair_cache[cache_hash(raw, span) % PAIR_CACHE_SLOTS]
            if slot.pair is not NULL and slot.length == span and same_bytes(slot.raw, raw, span):
                r.pos += span
                return <tuple>slot.pair
            # A miss is read from a copy, so that the slot holds the very bytes its
            # pair was read from whatever the caller's buffer does meanwhile; an
            # ASCII copy is read without fail. Other pairs are not cached.
            memcpy(copied, raw, span)
            if is_ascii(copied, span):
                copy.data = copied
                copy.size = span
                copy.pos = 0
                key = read_key(&copy)
                pair = (key, read_string(&copy))
                PyObject_GC_UnTrack(pair)
                Py_INCREF(pair)
                Py_XDECREF(slot.pair)
                slot.pair = <PyObject*>pair
                slot.length = span
                memcpy(slot.raw, copied, span)
                r.pos += span
                return pair
    key = read_key(r)
    pair = (key, read_string(r))
    # Two strings cannot be in a cycle: the collector need not track the pair
    # (CPython's own collector untracks such tuples when it first meets them).
    PyObject_GC_UnTrack(pair)
    return pair


cdef tuple read_pairs(Reader* r):
    # Each pair takes at least two bytes (two empty strings).
    return read_pair_items(r, read_length(r, "Dictionary", "Dictionary length", 2))


cdef tuple read_pair_items(Reader* r, Py_ssize_t count):
    """A Dictionary's ``count`` pairs, after its count."""
    cdef Py_ssize_t i
    cdef tuple pairs = PyTuple_New(count)
    for i in range(count):
        tuple_set(pairs, i, read_pair(r))
    PyObject_GC_UnTrack(pairs)  # untracked pairs of strings: no cycle either
    return pairs


cdef SessionId read_session_id(Reader* r):
    cdef uint64_t server, value
    read_uint64(r, "SessionId server", &server)
    read_uint64(r, "SessionId value", &value)
    return new_session_id(server, value)


cdef SessionId new_session_id(uint64_t server, uint64_t value):
    # Built without __init__: the parts are uint64 by construction.
    cdef SessionId session_id = SessionId.__new__(SessionId)
    session_id.server = server
    session_id.value = value
    return session_id


# -- writing -----------------------------------------------------------------


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


cdef int check_int(object value, object low, object high, str what) except -1:
    if type(value) is not int:
        raise EncodeError(f"{what} needs an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise EncodeError(f"{value} is outside the {what} range {low}..{high}")
    return 0


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


# -- Diffusion session events and messages (docs/diffusion.md sections 3-5) ----------

cdef enum:
    EVENT_OPEN = 0
    EVENT_UPDATE = 1
    EVENT_CLOSE = 2
    ENTRY_NEW = 1
    ENTRY_CHANGE = 2
    ENTRY_SAME = 4
    MESSAGE_SERVICE_REQUEST = 0
    MESSAGE_TOPIC_VALUE = 4
    MESSAGE_TOPIC_DELTA = 5
    MESSAGE_ABORT_NOTIFICATION = 28
    MESSAGE_CLOSE_REQUEST = 29
    SERVICE_CLOSE_CLIENT = 14
    SERVICE_SESSION_EVENTS = 82
    UNIT_CHANGE = 3  # an UPDATE entry takes at least key, entry type and one value
    UNIT_EVENT = 4  # an event takes at least two varints, its type and one more byte
    SUCCESS_LENGTH = 3 + 16 + 24 + 8 + 4
    # What read_message builds: everything, or only close events (with or
    # without their properties, or as the rows of a CloseEventColumns).
    DECODE_ALL = 0
    SCAN_CLOSES = 1
    SCAN_CLOSES_WITHOUT_PROPERTIES = 2
    SCAN_CLOSE_COLUMNS = 3  # close events into a CloseEventColumns, nothing built

cdef object WIRE = ReasonNumbering.WIRE
cdef dict REASONS_BY_NUMBERING = CLOSE_REASON_BY_BYTE
cdef tuple ENTRY_TYPES = (None, EntryType.NEW, EntryType.CHANGE, EntryType.REMOVE, EntryType.SAME)
cdef tuple UPDATE_TYPES = tuple([UpdateType(value) for value in range(128)])
cdef array.array UINT64_ARRAY = array.array("Q")


cdef unsigned char read_enum_byte(Reader* r, Py_ssize_t pos, str what) except? 0xFF:
    cdef unsigned char value
    if pos >= r.size:
        raise IncompleteError(what, pos)
    value = r.data[pos]
    if value > 0x7F:
        raise MalformedError(f"Byte 0x{value:02x} is above 0x7f", pos)
    return value


cdef object int64_of(uint64_t value):
    return <int64_t>value


cdef int skip_string(Reader* r) except -1:
    cdef Py_ssize_t length = read_length(r, "String", "String length", 1)
    r.pos += length
    return 0


cdef int skip_pairs(Reader* r) except -1:
    cdef Py_ssize_t count = read_length(r, "Dictionary", "Dictionary length", 2)
    cdef Py_ssize_t i
    for i in range(2 * count):
        skip_string(r)
    return 0


cdef struct CloseRow:
    uint64_t server
    uint64_t value
    Py_ssize_t properties_at  # the event's property Strings, in CloseEventColumns.source
    Py_ssize_t property_count
    unsigned char code


cdef class CloseEventColumns:
    """The close events of one Diffusion message, as columns; see ``close_event_columns``.

    Session ids and reasons are read at once, each event's properties only
    when asked for. ``len``, indexing and iteration give :class:`CloseEvent`
    values equal to :func:`scan_close_events`' list. The result stays valid when
    the caller's buffer is reused or changed.
    """
    # The rows point into the message's bytes: a bytes input is kept, any other buffer copied.
    cdef CloseRow* rows
    cdef Py_ssize_t count
    cdef Py_ssize_t capacity
    cdef tuple reasons_by_byte
    cdef bytes source
    cdef Py_ssize_t base  # where source starts in the buffer the rows' offsets are in

    def __init__(self, *args, **kwargs):
        raise TypeError("CloseEventColumns are made by close_event_columns")

    def __dealloc__(self):
        PyMem_Free(self.rows)

    def __reduce__(self):
        raise TypeError("CloseEventColumns cannot be pickled: pickle list(columns)")

    cdef int add(self, CloseEventResult* event, Py_ssize_t at) except -1:
        """Add the CLOSE event parsed at ``at``."""
        cdef Py_ssize_t capacity
        cdef CloseRow* grown
        if self.count == self.capacity:
            capacity = max(16, 2 * self.capacity)
            grown = <CloseRow*>PyMem_Realloc(self.rows, capacity * sizeof(CloseRow))
            if grown is NULL:
                raise MemoryError()
            self.rows = grown
            self.capacity = capacity
        self.rows[self.count] = CloseRow(event.server, event.value, at + event.properties_at, event.property_count,
                                         event.reason)
        self.count += 1
        return 0

    cdef int keep(self, object buf, const unsigned char* data, Py_ssize_t offset, Py_ssize_t size) except -1:
        """Keep the bytes the rows' properties are read from: ``buf`` itself if it is bytes."""
        if type(buf) is bytes:
            self.source = buf
        else:
            self.source = PyBytes_FromStringAndSize(<const char*>data + offset, size - offset)
            self.base = offset
        return 0

    cdef Py_ssize_t row(self, Py_ssize_t i) except -1:
        if i < 0:
            i += self.count
        if i < 0 or i >= self.count:
            raise IndexError("close event index out of range")
        return i

    def __len__(self):
        return self.count

    def __repr__(self):
        return f"<CloseEventColumns of {self.count} close events>"

    def session_id(self, Py_ssize_t i, /):
        """Event ``i``'s :class:`SessionId`."""
        cdef CloseRow* row = &self.rows[self.row(i)]
        return new_session_id(row.server, row.value)

    def reason(self, Py_ssize_t i, /):
        """Event ``i``'s :class:`~closecodec.reasons.ClientCloseReason`."""
        return self.reasons_by_byte[self.rows[self.row(i)].code]

    def properties(self, Py_ssize_t i, /):
        """Event ``i``'s properties, ``(key, value)`` pairs as :class:`CloseEvent` has them."""
        cdef CloseRow* row = &self.rows[self.row(i)]
        cdef Reader r
        # The scan checked these strings (lengths and UTF-8): reading them cannot fail.
        r.data = <const unsigned char*>PyBytes_AS_STRING(self.source)
        r.size = PyBytes_GET_SIZE(self.source)
        r.pos = row.properties_at - self.base
        return read_pair_items(&r, row.property_count)

    def __getitem__(self, Py_ssize_t i):
        """Event ``i`` as a :class:`CloseEvent`, its properties read."""
        cdef CloseEvent close = CloseEvent.__new__(CloseEvent)
        i = self.row(i)
        close.session_id = self.session_id(i)
        close.reason = self.reason(i)
        close.properties = self.properties(i)
        return close

    def __iter__(self):
        cdef Py_ssize_t i
        for i in range(self.count):
            yield self[i]

    cdef array.array session_id_parts(self, bint servers):
        cdef array.array out = array.clone(UINT64_ARRAY, self.count, False)
        cdef Py_ssize_t i
        for i in range(self.count):
            out.data.as_ulonglongs[i] = self.rows[i].server if servers else self.rows[i].value
        return out

    @property
    def servers(self):
        """The session ids' server parts, an ``array('Q')``."""
        return self.session_id_parts(True)

    @property
    def values(self):
        """The session ids' value parts, an ``array('Q')``."""
        return self.session_id_parts(False)

    @property
    def reason_bytes(self):
        """The close reasons' bytes as on the wire, one per event."""
        cdef bytes out = PyBytes_FromStringAndSize(NULL, self.count)
        cdef char* p = PyBytes_AS_STRING(out)
        cdef Py_ssize_t i
        for i in range(self.count):
            p[i] = <char>self.rows[i].code
        return out

    @property
    def reasons(self):
        """The close reasons, a tuple of :class:`~closecodec.reasons.ClientCloseReason`."""
        return tuple([self.reasons_by_byte[self.rows[i].code] for i in range(self.count)])


cdef object read_event(Reader* r, tuple reasons, bint strict, int mode, CloseEventColumns columns):
    """One session event; when scanning (``mode``), OPEN and UPDATE are walked, not built (None).

    In SCAN_CLOSE_COLUMNS mode a CLOSE event is added to ``columns`` and not built either.
    """
    cdef CloseEventResult parsed
    cdef uint64_t server, value
    cdef unsigned char event_type, code, entry_code
    cdef Py_ssize_t count, i, j, n_values
    cdef CloseEvent close
    cdef SessionId session_id
    if mode == SCAN_CLOSE_COLUMNS:
        # The nogil parser reads a valid CLOSE event, UTF-8 included, in one pass. Anything
        # else is walked below: an OPEN or UPDATE event, or one that raises just what
        # decode_message raises (the parser's verdicts are read_event's: tests/test_c_api.py).
        if close_event_parse(r.data + r.pos, r.size - r.pos, &parsed) == CLOSECODEC_OK and (
            not strict or reasons[parsed.reason].known
        ):
            columns.add(&parsed, r.pos)
            r.pos += parsed.size
            return None
        if read_event(r, reasons, strict, SCAN_CLOSES, None) is not None:
            raise SystemError("close_event_parse refused a CLOSE event that read_event reads")
        return None
    read_uint64(r, "SessionId server", &server)
    read_uint64(r, "SessionId value", &value)
    event_type = read_enum_byte(r, r.pos, "event type")
    r.pos += 1
    if event_type == EVENT_CLOSE:
        code = read_enum_byte(r, r.pos, "close reason")
        reason = reasons[code]
        if strict and not reason.known:
            raise UnknownValueError(f"unknown close reason {code}", r.pos)
        r.pos += 1
        close = CloseEvent.__new__(CloseEvent)
        close.session_id = new_session_id(server, value)
        close.reason = reason
        if mode == SCAN_CLOSES_WITHOUT_PROPERTIES:
            skip_pairs(r)
            close.properties = None
        else:
            close.properties = read_pairs(r)
        return close
    if event_type == EVENT_OPEN:
        if mode:
            skip_pairs(r)
            return None
        session_id = new_session_id(server, value)
        return OpenEvent(session_id, read_pairs(r))
    if event_type == EVENT_UPDATE:
        update_type = UPDATE_TYPES[read_enum_byte(r, r.pos, "update type")]
        r.pos += 1
        count = read_length(r, "UPDATE entries", "UPDATE entries length", UNIT_CHANGE)
        changes = [] if not mode else None
        for i in range(count):
            if mode:
                skip_string(r)
            else:
                key = read_string(r)
            entry_code = read_enum_byte(r, r.pos, "entry type")
            if entry_code < ENTRY_NEW or entry_code > ENTRY_SAME:
                raise MalformedError(f"unknown property entry type {entry_code}", r.pos)
            r.pos += 1
            n_values = 2 if entry_code == ENTRY_CHANGE else 1
            if mode:
                for j in range(n_values):
                    skip_string(r)
            else:
                values = tuple([read_string(r) for j in range(n_values)])
                changes.append(PropertyChange(key, ENTRY_TYPES[entry_code], values))
        if mode:
            return None
        return UpdateEvent(new_session_id(server, value), update_type, changes)
    raise MalformedError(f"unknown session event type {event_type}", r.pos - 1)


cdef object read_batch(Reader* r, tuple reasons, bint strict, int mode, CloseEventColumns columns):
    cdef uint64_t conversation_id
    cdef Py_ssize_t count, i
    cdef list events = []
    cdef EventBatch batch
    read_uint64(r, "conversation id", &conversation_id)
    count = read_length(r, "event batch", "event batch length", UNIT_EVENT)
    for i in range(count):
        event = read_event(r, reasons, strict, mode, columns)
        if event is not None:
            events.append(event)
    if mode:
        return events
    batch = EventBatch.__new__(EventBatch)
    batch.conversation_id = int64_of(conversation_id)
    batch.events = tuple(events)
    return batch


cdef int expect_end(Reader* r, str what) except -1:
    if r.pos != r.size:
        raise MalformedError(f"{r.size - r.pos} bytes after the end of the {what}", r.pos)
    return 0


cdef tuple reasons_for(object numbering):
    try:
        return REASONS_BY_NUMBERING[numbering]
    except KeyError:  # "wire", "published", or an error from ReasonNumbering
        return REASONS_BY_NUMBERING[ReasonNumbering(numbering)]


cdef object read_message(object buf, Py_ssize_t offset, object numbering, bint strict, int mode, object max_inflated,
                         CloseEventColumns columns):
    cdef Py_buffer view
    cdef Reader r
    cdef unsigned char type_byte, message_type, encoding
    cdef bint compressed
    cdef tuple reasons = reasons_for(numbering)
    open_reader(&r, buf, offset, &view)
    try:
        if r.pos >= r.size:
            raise IncompleteError("message type byte", r.pos)
        type_byte = r.data[r.pos]
        message_type = type_byte & 0x3F
        encoding = type_byte & 0xC0
        if encoding != 0x00 and encoding != 0x80:
            raise MalformedError(f"unknown encoding bits 0x{encoding:02x} in the message type byte", r.pos)
        known = MessageType(message_type)
        if not known.known:
            raise MalformedError(f"unknown message type {message_type}", r.pos)
        r.pos += 1
        # The 0x80 flag means a zlib body; see _py.py for why service
        # messages are inflated only when the body is a zlib stream.
        compressed = encoding == 0x80 and (
            message_type == MESSAGE_TOPIC_VALUE
            or message_type == MESSAGE_TOPIC_DELTA
            or looks_like_zlib(PyBytes_FromStringAndSize(<const char*>r.data + r.pos, min(2, r.size - r.pos)))
        )
        if not compressed:
            result = read_body(&r, known, False, reasons, strict, mode, columns)
            if columns is not None and columns.count:
                columns.keep(buf, r.data, offset, r.size)
            return result
        start = r.pos
        body = inflate(PyBytes_FromStringAndSize(<const char*>r.data + r.pos, r.size - r.pos), max_inflated, start)
    finally:
        PyBuffer_Release(&view)
    open_reader(&r, body, 0, &view)
    try:
        result = read_body(&r, known, True, reasons, strict, mode, columns)
    except DecodeError as error:
        raise MalformedError(f"in the inflated body: {error}", start) from None
    finally:
        PyBuffer_Release(&view)
    if columns is not None and columns.count:
        columns.source = body  # inflate's bytes, the rows' offsets are in
    return result


cdef object read_body(Reader* r, object message_type, bint compressed, tuple reasons, bint strict, int mode,
                      CloseEventColumns columns):
    cdef int32_t service_id
    cdef uint64_t conversation_id
    cdef ServiceRequest request
    if message_type == MESSAGE_SERVICE_REQUEST:
        read_int32(r, "service id", &service_id)
        read_uint64(r, "conversation id", &conversation_id)
        if service_id == SERVICE_SESSION_EVENTS:
            payload = read_batch(r, reasons, strict, mode, columns)
            expect_end(r, "message")
            if mode:
                return payload
        elif mode:
            return []
        elif service_id == SERVICE_CLOSE_CLIENT:
            payload = CloseClientRequest(read_session_id(r))
            expect_end(r, "message")
        else:
            payload = PyBytes_FromStringAndSize(<const char*>r.data + r.pos, r.size - r.pos)
        request = ServiceRequest.__new__(ServiceRequest)
        request.service_id = service_id
        request.conversation_id = int64_of(conversation_id)
        request.payload = payload
        request.compressed = compressed
        return request
    if mode:
        return []
    if message_type == MESSAGE_ABORT_NOTIFICATION or message_type == MESSAGE_CLOSE_REQUEST:
        expect_end(r, "message")
        return AbortNotification() if message_type == MESSAGE_ABORT_NOTIFICATION else CloseRequest()
    return OtherMessage(message_type, PyBytes_FromStringAndSize(<const char*>r.data + r.pos, r.size - r.pos), compressed)


def decode_message(buf, Py_ssize_t offset=0, /, *, numbering=WIRE, bint strict=False, max_inflated=DEFAULT_MAX_INFLATED):
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
    return read_message(buf, offset, numbering, strict, DECODE_ALL, max_inflated, None)


def scan_close_events(buf, Py_ssize_t offset=0, /, *, numbering=WIRE, bint strict=False, max_inflated=DEFAULT_MAX_INFLATED, bint properties=True):
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
    return read_message(buf, offset, numbering, strict, SCAN_CLOSES if properties else SCAN_CLOSES_WITHOUT_PROPERTIES, max_inflated, None)


def close_event_columns(buf, Py_ssize_t offset=0, /, *, numbering=WIRE, bint strict=False, max_inflated=DEFAULT_MAX_INFLATED):
    """The close events of one whole Diffusion message, as a :class:`CloseEventColumns`.

    The fastest way to learn who closed and why: the compiled backend builds
    no event. Session ids and reasons come as columns, an event's properties
    when asked for. The message is checked as :func:`scan_close_events` checks
    it, with the same errors. Any message other than a session-events request
    (service 82) gives no events.

    Arguments and errors as :func:`decode_message`.
    """
    cdef CloseEventColumns columns = CloseEventColumns.__new__(CloseEventColumns)
    columns.reasons_by_byte = reasons_for(numbering)
    read_message(buf, offset, numbering, strict, SCAN_CLOSE_COLUMNS, max_inflated, columns)
    return columns


def decode_event_batch(buf, Py_ssize_t offset=0, /, *, numbering=WIRE, bint strict=False):
    """Decode a session-event batch (service 82's payload); return ``(batch, next_offset)``.

    Raises:
        IncompleteError: the batch runs past the end of ``buf``.
        MalformedError: an unknown event or entry type, a bad varint, string or Byte.
    """
    cdef Py_buffer view
    cdef Reader r
    cdef tuple reasons = reasons_for(numbering)
    open_reader(&r, buf, offset, &view)
    try:
        batch = read_batch(&r, reasons, strict, DECODE_ALL, None)
        return batch, r.pos
    finally:
        PyBuffer_Release(&view)


def decode_event(buf, Py_ssize_t offset=0, /, *, numbering=WIRE, bint strict=False):
    """Decode one session event (OPEN, UPDATE or CLOSE); return ``(event, next_offset)``.

    Raises:
        IncompleteError: the event runs past the end of ``buf``.
        MalformedError: as for :func:`decode_event_batch`.
    """
    cdef Py_buffer view
    cdef Reader r
    cdef tuple reasons = reasons_for(numbering)
    open_reader(&r, buf, offset, &view)
    try:
        event = read_event(&r, reasons, strict, DECODE_ALL, None)
        return event, r.pos
    finally:
        PyBuffer_Release(&view)


def decode_close_client_request(buf, Py_ssize_t offset=0, /):
    """Decode a CLOSE_CLIENT payload (a SessionId); return ``(request, next_offset)``."""
    session_id, end = decode_session_id(buf, offset)
    return CloseClientRequest(session_id), end


cdef uint64_t read_be(const unsigned char* p, int width) noexcept nogil:
    cdef uint64_t value = 0
    cdef int i
    for i in range(width):
        value = (value << 8) | p[i]
    return value


def decode_connection_response(buf, Py_ssize_t offset=0, /, *, bint strict=False):
    """Decode a connection response (the handshake); return ``(response, next_offset)``.

    Raises:
        IncompleteError: the response runs past the end of ``buf``.
        MalformedError: the protocol byte is not ``#`` (0x23).
        UnknownValueError: ``strict`` and an unknown response code.
    """
    cdef Py_buffer view
    cdef Reader r
    cdef const unsigned char* p
    open_reader(&r, buf, offset, &view)
    try:
        if r.size - r.pos < 3:
            raise IncompleteError("connection response", r.pos)
        p = r.data + r.pos
        if p[0] != HANDSHAKE_PROTOCOL_BYTE:
            raise MalformedError(f"protocol byte 0x{p[0]:02x} is not 0x23 ('#')", r.pos)
        version = p[1]
        code = ResponseCode(p[2])
        if strict and not code.known:
            raise UnknownValueError(f"unknown response code {p[2]}", r.pos + 2)
        if not code.is_success:
            return ConnectionResponse(version, code), r.pos + 3
        if r.size - r.pos < SUCCESS_LENGTH:
            raise IncompleteError("connection response", r.pos)
        session_id = new_session_id(read_be(p + 3, 8), read_be(p + 11, 8))
        token = PyBytes_FromStringAndSize(<const char*>p + 19, 24)
        ping_period = read_be(p + 43, 8)
        last = read_be(p + 51, 4)
        reconnected = code == RECONNECTED
        response = ConnectionResponse(
            version, code, session_id, token, ping_period,
            None if reconnected else last,
            last if reconnected else None,
        )
        return response, r.pos + SUCCESS_LENGTH
    finally:
        PyBuffer_Release(&view)


cdef int write_event(Writer* w, object event, object numbering) except -1:
    cdef object kind = type(event)
    cdef SessionId session_id
    cdef CloseEvent close
    if kind is CloseEvent:
        close = event
        session_id = close.session_id
        write_varint(w, session_id.server)
        write_varint(w, session_id.value)
        write_raw(w, "\x02", 1)
        write_reason(w, close.reason, numbering)
        if close.properties is None:
            raise EncodeError("a close event whose properties were not decoded cannot be encoded")
        return write_pairs(w, close.properties)
    if kind is OpenEvent:
        session_id = event.session_id
        write_varint(w, session_id.server)
        write_varint(w, session_id.value)
        write_raw(w, "\x00", 1)
        return write_pairs(w, event.properties)
    if kind is UpdateEvent:
        session_id = event.session_id
        write_varint(w, session_id.server)
        write_varint(w, session_id.value)
        write_raw(w, "\x01", 1)
        encoded = encode_byte(int(event.update_type))
        write_raw(w, encoded, 1)
        write_length(w, len(event.changes), "UPDATE entries")
        for change in event.changes:
            write_string(w, change.key, "String")
            write_varint(w, int(change.entry_type))
            for text in change.values:
                write_string(w, text, "String")
        return 0
    raise EncodeError(f"a session event is an OpenEvent, UpdateEvent or CloseEvent, not {kind.__name__}")


cdef int write_reason(Writer* w, object reason, object numbering) except -1:
    cdef unsigned char byte
    cdef long value
    if numbering is WIRE and type(reason) is ClientCloseReason:
        value = reason
        if 0 <= value <= 0x7F:  # the common case: what close_reason_to_byte would give
            byte = <unsigned char>value
            return write_raw(w, <const char*>&byte, 1)
    try:
        value = close_reason_to_byte(reason, numbering)
    except (ValueError, TypeError) as error:
        raise EncodeError(str(error)) from None
    if value > 0x7F:
        raise EncodeError(f"close reason {value} does not fit a Byte (0..127)")
    byte = value
    return write_raw(w, <const char*>&byte, 1)


def encode_event(event, /, *, numbering=WIRE):
    """Encode one session event.

    Raises:
        EncodeError: not a session event, or a value that cannot be encoded
            (e.g. a reason the numbering cannot express).
    """
    cdef Writer w = Writer(NULL, 0, 0)
    try:
        write_event(&w, event, numbering)
        return writer_finish(&w)
    finally:
        PyMem_Free(w.data)


def encode_event_batch(batch, /, *, numbering=WIRE):
    """Encode a session-event batch (service 82's payload).

    Raises:
        EncodeError: not an :class:`EventBatch`, or an event cannot be encoded.
    """
    if type(batch) is not EventBatch:
        raise EncodeError(f"an event batch is an EventBatch, not {type(batch).__name__}")
    cdef Writer w = Writer(NULL, 0, 0)
    cdef EventBatch events = batch
    conversation_id = encode_int64(events.conversation_id)
    try:
        write_raw(&w, conversation_id, len(conversation_id))
        write_length(&w, len(events.events), "event batch")
        for event in events.events:
            write_event(&w, event, numbering)
        return writer_finish(&w)
    finally:
        PyMem_Free(w.data)


def encode_close_client_request(request, /):
    """Encode a CLOSE_CLIENT payload (the SessionId of the session to close)."""
    if type(request) is not CloseClientRequest:
        raise EncodeError(f"a close-client request is a CloseClientRequest, not {type(request).__name__}")
    return encode_session_id(request.session_id)


def encode_message(message, /, *, numbering=WIRE):
    """Encode one whole Diffusion message (the bytes of one WebSocket binary message).

    A message with ``compressed`` set gets the 0x80 flag and a zlib body.

    Raises:
        EncodeError: not a message value, or a part cannot be encoded.
    """
    kind = type(message)
    if kind is AbortNotification:
        return bytes((MESSAGE_ABORT_NOTIFICATION,))
    if kind is CloseRequest:
        return bytes((MESSAGE_CLOSE_REQUEST,))
    if kind is ServiceRequest:
        payload = message.payload
        if type(payload) is EventBatch:
            encoded = encode_event_batch(payload, numbering=numbering)
        elif type(payload) is CloseClientRequest:
            encoded = encode_close_client_request(payload)
        else:
            encoded = bytes(payload)
        body = encode_int32(message.service_id) + encode_int64(message.conversation_id) + encoded
        message_type = MESSAGE_SERVICE_REQUEST
    elif kind is OtherMessage:
        body = message.body
        message_type = message.message_type
    else:
        raise EncodeError(f"a Diffusion message value, not {kind.__name__}")
    if message.compressed:
        return bytes((int(message_type) | 0x80,)) + zlib.compress(body)
    return bytes((int(message_type),)) + body


def encode_connection_response(response, /):
    """Encode a connection response (the handshake's outcome).

    Raises:
        EncodeError: not a :class:`ConnectionResponse`, or a field out of range.
    """
    if type(response) is not ConnectionResponse:
        raise EncodeError(f"a connection response is a ConnectionResponse, not {type(response).__name__}")
    check_int(response.version, 0, 0xFF, "protocol version")
    header = bytes((HANDSHAKE_PROTOCOL_BYTE, response.version, int(response.code)))
    if not response.code.is_success:
        return header
    last = response.recovery_sequence if response.code == RECONNECTED else response.max_message_size
    check_int(response.ping_period, 0, UINT64_MAX, "ping period")
    check_int(last, 0, UINT32_MAX, "maximum message size or recovery sequence")
    session_id = response.session_id
    return header + SUCCESS_LAYOUT.pack(session_id.server, session_id.value, response.token, response.ping_period, last)


# -- C-level API for protocol stacks (docs/streaming.md) ------------------------------
#
# close_event_parse reads one session CLOSE event from a pointer and a length
# without the GIL: it never raises and never touches a Python object; its
# verdict and error offset are those of decode_event on the same bytes
# (tests/test_c_api.py checks it). event_from returns the very value, and
# raises the very error, of decode_event.

cdef int varint_parse(const unsigned char* data, Py_ssize_t* at, Py_ssize_t size, int max_bytes,
                      unsigned char excess, uint64_t* out, Py_ssize_t* error_offset) noexcept nogil:
    """read_varint without the GIL (docs/diffusion.md section 2): a status, ``at`` moved past it."""
    cdef Py_ssize_t pos = at[0]
    cdef Py_ssize_t last = pos + max_bytes - 1
    cdef uint64_t result = 0
    cdef unsigned int shift = 0
    cdef unsigned char byte
    cdef int k
    if max_bytes > 0 and last < size:
        # Every byte the number may take is there: no bounds checks, and the last
        # byte's checks once. Its errors are left to the loop below.
        for k in range(max_bytes - 1):
            byte = data[pos + k]
            result |= (<uint64_t>(byte & 0x7F)) << (7 * k)
            if byte < 0x80:
                out[0] = result
                at[0] = pos + k + 1
                return CLOSECODEC_OK
        byte = data[last]
        if not (byte & 0x80 or byte & excess):
            out[0] = result | (<uint64_t>byte) << (7 * (max_bytes - 1))
            at[0] = last + 1
            return CLOSECODEC_OK
        result = 0
    while True:
        if pos >= size:
            return CLOSECODEC_INCOMPLETE
        byte = data[pos]
        if pos == last and (byte & 0x80 or byte & excess):
            error_offset[0] = pos
            return CLOSECODEC_MALFORMED
        result |= (<uint64_t>(byte & 0x7F)) << shift
        pos += 1
        if byte < 0x80:
            out[0] = result
            at[0] = pos
            return CLOSECODEC_OK
        shift += 7


cdef int length_parse(const unsigned char* data, Py_ssize_t* at, Py_ssize_t size, Py_ssize_t unit,
                      Py_ssize_t* length, Py_ssize_t* error_offset) noexcept nogil:
    """read_length without the GIL: a non-negative Int32 whose ``unit``-byte items fit."""
    cdef Py_ssize_t start = at[0]
    cdef uint64_t value
    cdef int32_t signed
    cdef int status
    if start < size and data[start] < 0x80:  # one byte: most lengths and counts
        at[0] = start + 1
        if <Py_ssize_t>data[start] * unit > size - at[0]:
            return CLOSECODEC_INCOMPLETE
        length[0] = data[start]
        return CLOSECODEC_OK
    status = varint_parse(data, at, size, 5, INT32_EXCESS, &value, error_offset)
    if status != CLOSECODEC_OK:
        return status
    signed = <int32_t><uint32_t>value
    if signed < 0:
        error_offset[0] = start
        return CLOSECODEC_MALFORMED
    if <Py_ssize_t>signed * unit > size - at[0]:
        return CLOSECODEC_INCOMPLETE
    length[0] = signed
    return CLOSECODEC_OK


cdef int close_event_parse(const unsigned char* data, Py_ssize_t size, CloseEventResult* out) noexcept nogil:
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t count, length, i
    cdef unsigned char event_type
    cdef int status
    out.size = 0
    out.error_offset = 0
    out.server = 0
    out.value = 0
    out.reason = 0
    out.property_count = 0
    out.properties_at = 0
    # docs/diffusion.md section 4: SessionId, Byte event type, Byte reason, Dictionary.
    status = varint_parse(data, &pos, size, 10, INT64_EXCESS, &out.server, &out.error_offset)
    if status != CLOSECODEC_OK:
        return status
    status = varint_parse(data, &pos, size, 10, INT64_EXCESS, &out.value, &out.error_offset)
    if status != CLOSECODEC_OK:
        return status
    if pos >= size:
        return CLOSECODEC_INCOMPLETE
    event_type = data[pos]
    if event_type > 0x7F:
        out.error_offset = pos
        return CLOSECODEC_MALFORMED
    pos += 1
    if event_type != EVENT_CLOSE:
        if event_type == EVENT_OPEN or event_type == EVENT_UPDATE:
            return CLOSECODEC_WRONG_TYPE
        out.error_offset = pos - 1
        return CLOSECODEC_MALFORMED
    if pos >= size:
        return CLOSECODEC_INCOMPLETE
    if data[pos] > 0x7F:
        out.error_offset = pos
        return CLOSECODEC_MALFORMED
    out.reason = data[pos]
    pos += 1
    status = length_parse(data, &pos, size, 2, &count, &out.error_offset)
    if status != CLOSECODEC_OK:
        return status
    out.property_count = count
    out.properties_at = pos
    # The strings' lengths first, then one look at all their bytes: when every byte from
    # the first string on is ASCII, every string is UTF-8 (most property maps). Otherwise,
    # or when a length fails, the strings before are checked one by one, so that the
    # error is the first one read_event meets.
    for i in range(2 * count):
        if pos < size and data[pos] < 0x80 and data[pos] < size - pos:  # a one-byte length that fits
            pos += 1 + data[pos]
            continue
        status = length_parse(data, &pos, size, 1, &length, &out.error_offset)
        if status != CLOSECODEC_OK:
            if strings_utf8_error(data, size, out.properties_at, i, &out.error_offset):
                return CLOSECODEC_MALFORMED
            return status
        pos += length
    if not is_ascii(data + out.properties_at, pos - out.properties_at):
        if strings_utf8_error(data, size, out.properties_at, 2 * count, &out.error_offset):
            return CLOSECODEC_MALFORMED
    out.size = pos
    return CLOSECODEC_OK


cdef bint strings_utf8_error(const unsigned char* data, Py_ssize_t size, Py_ssize_t pos, Py_ssize_t count,
                             Py_ssize_t* error_offset) noexcept nogil:
    """Whether one of ``count`` Strings from ``pos``, whose lengths have been read, is not UTF-8;
    ``error_offset`` is set to the first bad byte."""
    cdef Py_ssize_t i, length, bad
    cdef uint64_t value
    for i in range(count):
        varint_parse(data, &pos, size, 5, INT32_EXCESS, &value, error_offset)
        length = <Py_ssize_t>value
        bad = utf8_invalid_at(data + pos, length)
        if bad >= 0:
            error_offset[0] = pos + bad
            return True
        pos += length
    return False


cdef object event_from(const unsigned char* data, Py_ssize_t size, object numbering, bint strict, Py_ssize_t* end):
    """The session event at ``data``, as ``decode_event(..., numbering=..., strict=...)`` returns it."""
    cdef Reader r
    r.data = data
    r.size = size
    r.pos = 0
    event = read_event(&r, reasons_for(numbering), strict, DECODE_ALL, None)
    end[0] = r.pos
    return event


# -- the stream decoder (docs/streaming.md) --------------------------------------------


cdef object in_message(object error, str what, int64_t start):
    """An error inside a whole message, restated at the message's stream offset."""
    kind = MalformedError if isinstance(error, IncompleteError) else type(error)
    return kind(f"{what}: {error.args[0]} (byte {error.offset} of the message)", start)


cdef class DiffusionStream(WebSocketStream):
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

    def __init__(self, *, connection_response=True, numbering=ReasonNumbering.WIRE, strict=False,
                 max_inflated=DEFAULT_MAX_INFLATED, expect_masked=None, minimal_length=True,
                 max_message_size=DEFAULT_MAX_MESSAGE_SIZE):
        super().__init__(expect_masked=expect_masked, minimal_length=minimal_length, max_message_size=max_message_size)
        self._numbering = ReasonNumbering(numbering)
        self._strict = bool(strict)
        self._max_inflated = max_inflated
        self._awaiting_response = bool(connection_response)
        self._response = None

    @property
    def response(self):
        """The :class:`ConnectionResponse` once read, else None (kept by :meth:`reset`)."""
        return self._response

    cdef object on_message(self, int opcode, bytes payload, int rsv, bint masked, int64_t start):
        cdef Py_ssize_t end
        if opcode == OPCODE_TEXT:
            raise WebSocketFrameError("TEXT message in a Diffusion stream (Diffusion sends binary messages only)",
                                      start, 1003)
        if self._awaiting_response:
            try:
                response, end = decode_connection_response(payload, strict=self._strict)
                if end != len(payload):
                    raise MalformedError(f"{len(payload) - end} bytes after the end of the connection response", end)
            except DecodeError as error:
                raise in_message(error, "connection response", start) from None
            self._awaiting_response = False
            self._response = response
            return response
        try:
            return decode_message(payload, numbering=self._numbering, strict=self._strict,
                                  max_inflated=self._max_inflated)
        except DecodeError as error:
            raise in_message(error, "Diffusion message", start) from None
