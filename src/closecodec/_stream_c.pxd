# The compiled streaming decoders' state, for modules that cimport them (the
# capture reader) and subclass or drive them without Python-level calls.

from libc.stdint cimport int64_t

from closecodec._transport_c cimport WsHeader


# What feed_into appends: bare values, (end, value) or (start, end, value).
cdef enum:
    SHAPE_VALUES = 0
    SHAPE_OFFSETS = 1
    SHAPE_SPANS = 2


cdef class _Stream:
    cdef int64_t _position
    cdef object _error

    cdef int feed_into(self, const unsigned char* data, Py_ssize_t n, list out, int shape) except -1
    cdef int process(self, const unsigned char* data, Py_ssize_t n, int64_t base, list out, int shape) except -1
    cdef void clear(self) noexcept


cdef class WebSocketStream(_Stream):
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
    cdef unsigned char _header[14]
    cdef Py_ssize_t _header_len
    # The frame being read: its header, payload bytes still to come (-1
    # between frames) and where its payload starts in the stream.
    cdef WsHeader _h
    cdef int64_t _remaining
    cdef int64_t _payload_at
    # A control payload split across chunks, as on the wire (still masked).
    cdef unsigned char _control[125]
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


cdef class DiffusionStream(WebSocketStream):
    cdef bint _awaiting_response
    cdef object _response
    cdef object _numbering
    cdef bint _strict
    cdef object _max_inflated


cdef class MqttStream(_Stream):
    cdef object _version
    cdef bint _strict
    cdef Py_ssize_t _max
    cdef bint _keep_bodies
    # closes_only: only DISCONNECT and CONNACK are returned.
    cdef public bint closes_only
    # A fixed header split across chunks (a type byte and at most 4 length bytes).
    cdef unsigned char _header[5]
    cdef Py_ssize_t _header_len
    cdef int64_t _remaining
    cdef int64_t _start
    cdef int _first
    # The packet so far (fixed header included), when it is decoded or kept.
    cdef bint _keep
    cdef unsigned char* _body
    cdef Py_ssize_t _body_len
    cdef Py_ssize_t _body_cap

    cdef Py_ssize_t read_fixed_header(self, const unsigned char* data, Py_ssize_t size, int64_t start) except -1
    cdef int append(self, const unsigned char* data, Py_ssize_t n) except -1
