# C-level API of the compiled WebSocket module, for modules that cimport it (the
# Diffusion stream, protocol stacks: docs/streaming.md). Every function checks
# bounds against the size it is given before reading a byte.

from libc.stdint cimport int64_t, uint64_t

from closecodec.buffer._c cimport Stream
from closecodec.websocket.values cimport WebSocketClose


cdef enum:
    MAX_HEADER = 14  # RFC 6455 §5.2: 2 + 8 (64-bit length) + 4 (masking key)
    MAX_CONTROL_PAYLOAD = 125  # §5.5
    MAX_CLOSE_REASON = 123  # §5.5.1: a control payload less the status code


cdef inline bint opcode_defined(int opcode) noexcept nogil:
    """CONTINUATION, TEXT, BINARY, CLOSE, PING or PONG (RFC 6455 §5.2; 3-7 and 11-15 are reserved)."""
    return opcode <= 2 or 8 <= opcode <= 10


cdef struct WsHeader:
    bint fin
    int rsv
    int opcode
    bint masked
    unsigned char key[4]
    uint64_t length
    Py_ssize_t payload_at  # offset of the payload's first byte


cdef void xor_mask(const unsigned char* src, unsigned char* dst, Py_ssize_t n, const unsigned char* key) noexcept nogil
cdef int read_ws_header(
    const unsigned char* data, Py_ssize_t start, Py_ssize_t size, int expect_masked, int rsv_allowed,
    bint minimal_length, int64_t max_payload, int64_t base, WsHeader* h,
) except -1
cdef WebSocketClose read_close(const unsigned char* src, Py_ssize_t length, Py_ssize_t pos, WsHeader* h)


# -- C-level API for protocol stacks (docs/streaming.md) ----------------------
#
# ws_close_parse returns a status of closecodec/buffer/_c.pxd: CLOSECODEC_OK,
# _INCOMPLETE, _MALFORMED or _WRONG_TYPE.

cdef struct WsCloseResult:
    Py_ssize_t size
    Py_ssize_t error_offset
    int answer                 # MALFORMED: the close code to answer with (1002, 1007)
    int code                   # the status code, or -1 for an empty body (reported as 1005)
    bint masked
    unsigned char mask_key[4]
    Py_ssize_t reason_length
    char reason[MAX_CLOSE_REASON]  # the reason, unmasked and valid UTF-8 (not NUL-terminated)


# One WebSocket close frame from data[0:size] (RFC 6455 §5.2, §5.5.1); expect_masked
# 1 (a server's view), 0 (a client's) or -1 (either). Never raises; no GIL needed.
cdef int ws_close_parse(const unsigned char* data, Py_ssize_t size, int expect_masked, WsCloseResult* out) noexcept nogil
# The Python value: the frame at data[0:size] exactly as decode_ws_frame returns it
# (and raising what it raises, offsets from data); end[0] is set to its size.
cdef object ws_frame_from(const unsigned char* data, Py_ssize_t size, int expect_masked, Py_ssize_t* end)


# The stream decoder, for modules that subclass or drive it without Python-level calls.
cdef class WebSocketStream(Stream):
    cdef int _expect_masked  # -1: either
    cdef int _rsv_allowed
    cdef bint _minimal_length
    cdef Py_ssize_t _max
    # closes_only: data messages, pings and pongs are checked and delimited, not returned.
    cdef public bint closes_only
    cdef bint _skip_message  # closes_only as it was when the current message started
    cdef int64_t _skipped_len  # payload bytes of that message counted past (for max_message_size)
    cdef int64_t _frame_at  # where the current frame's header starts
    # A header split across chunks (RFC 6455 §5.2: at most 14 bytes).
    cdef unsigned char _header[MAX_HEADER]
    cdef Py_ssize_t _header_len
    # The frame being read: its header, payload bytes still to come (-1
    # between frames) and where its payload starts in the stream.
    cdef WsHeader _h
    cdef int64_t _remaining
    cdef int64_t _payload_at
    # A control payload split across chunks, as on the wire (still masked).
    cdef unsigned char _control[MAX_CONTROL_PAYLOAD]
    cdef Py_ssize_t _control_len
    # The data message being reassembled, unmasked.
    cdef unsigned char* _message
    cdef Py_ssize_t _message_len
    cdef Py_ssize_t _message_cap
    cdef bint _in_message
    cdef int _message_opcode
    cdef int _message_rsv
    cdef bint _message_masked
    cdef int64_t _message_at
    cdef bint _closed

    cdef int read_header(self, const unsigned char* data, Py_ssize_t size, int64_t start) except -1
    cdef int start_frame(self, int64_t start, Py_ssize_t header_size) except -1
    cdef int append(self, const unsigned char* data, Py_ssize_t n) except -1
    cdef object finish_frame(self, const unsigned char* payload)
    cdef object on_message(self, int opcode, bytes payload, int rsv, bint masked, int64_t start)
