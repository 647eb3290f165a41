# C-level API of the compiled Diffusion module, for modules that cimport it.
# Every function checks bounds against Reader.size before reading a byte.

from libc.stdint cimport int32_t, uint64_t

from closecodec.buffer._c cimport Reader, Writer
from closecodec.websocket._c cimport WebSocketStream
from closecodec.diffusion.values cimport SessionId


cdef int read_varint(Reader* r, int max_bytes, unsigned char excess, str what, uint64_t* out) except -1
cdef int read_int32(Reader* r, str what, int32_t* out) except -1
cdef int read_uint64(Reader* r, str what, uint64_t* out) except -1
cdef Py_ssize_t read_length(Reader* r, str what, str what_length, Py_ssize_t unit) except -1
cdef str read_utf8(Reader* r, Py_ssize_t length)
cdef str read_string(Reader* r)
cdef str read_key(Reader* r)
cdef tuple read_pairs(Reader* r)
cdef SessionId read_session_id(Reader* r)

cdef int write_length(Writer* w, Py_ssize_t length, str what) except -1
cdef int write_string(Writer* w, object value, str what) except -1
cdef int write_pairs(Writer* w, tuple pairs) except -1


# -- C-level API for protocol stacks (docs/streaming.md) ----------------------
#
# The nogil parsers return a status of closecodec/buffer/_c.pxd: CLOSECODEC_OK,
# _INCOMPLETE, _MALFORMED or _WRONG_TYPE.


cdef struct CloseEventResult:
    Py_ssize_t size
    Py_ssize_t error_offset
    uint64_t server            # the session id
    uint64_t value
    int reason                 # the close reason's wire byte, 0..127 (ClientCloseReason, wire numbering)
    Py_ssize_t property_count
    Py_ssize_t properties_at   # 2 * property_count Strings (Int32 length, UTF-8) from here


# One Diffusion session CLOSE event (docs/diffusion.md section 4) from data[0:size]:
# SessionId, event type 2, reason, Dictionary. OPEN and UPDATE events are WRONG_TYPE.
# Never raises; no GIL needed.
cdef int close_event_parse(const unsigned char* data, Py_ssize_t size, CloseEventResult* out) noexcept nogil
# The event at data[0:size] exactly as decode_event returns it (raising what it raises,
# offsets from data); end[0] is set to its size.
cdef object event_from(const unsigned char* data, Py_ssize_t size, object numbering, bint strict, Py_ssize_t* end)


# The stream decoder of Diffusion over WebSocket.
cdef class DiffusionStream(WebSocketStream):
    cdef bint _awaiting_response
    cdef object _response
    cdef object _numbering
    cdef bint _strict
    cdef object _max_inflated
