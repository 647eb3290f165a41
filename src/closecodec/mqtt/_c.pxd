# C-level API of the compiled MQTT module, for modules that cimport it (protocol
# stacks: docs/streaming.md). Every function checks bounds against the size it is
# given before reading a byte.

from libc.stdint cimport int64_t, uint32_t, uint64_t

from closecodec.buffer._c cimport Stream


cdef enum:
    MAX_MQTT_HEADER = 5  # the type byte and a Remaining Length of at most 4 bytes (MQTT 5 §2.1.4)


cdef Py_ssize_t read_vbi(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, str what, uint64_t* out) except -2


# -- C-level API for protocol stacks (docs/streaming.md) ----------------------
#
# mqtt_disconnect_parse returns a status of closecodec/buffer/_c.pxd: CLOSECODEC_OK,
# _INCOMPLETE, _MALFORMED or _WRONG_TYPE.

cdef struct MqttDisconnectResult:
    Py_ssize_t size
    Py_ssize_t error_offset
    int answer                 # MALFORMED: the reason code to answer with (0x81, 0x82)
    int reason_code
    int version                # 5, or the version asked for (0: not known) for ``e0 00``
    bint has_session_expiry
    uint32_t session_expiry_interval
    # Offsets into the input (-1: absent) and lengths of UTF-8 property values.
    Py_ssize_t reason_string_at
    Py_ssize_t reason_string_length
    Py_ssize_t server_reference_at
    Py_ssize_t server_reference_length
    Py_ssize_t user_properties  # how many USER_PROPERTY pairs
    Py_ssize_t properties_at    # the property block (after its length), for walking it
    Py_ssize_t properties_length


# One MQTT DISCONNECT from data[0:size] (MQTT 5 §3.14, 3.1.1 §3.14); version 4, 5 or 0
# (not known); strict: a reason code a DISCONNECT may not carry is a protocol error.
cdef int mqtt_disconnect_parse(const unsigned char* data, Py_ssize_t size, int version, bint strict, MqttDisconnectResult* out) noexcept nogil
# The Python value: the packet at data[0:size] exactly as decode_mqtt_packet returns it
# (and raising what it raises, offsets from data); end[0] is set to its size.
cdef object mqtt_packet_from(const unsigned char* data, Py_ssize_t size, object version, bint strict, Py_ssize_t* end)


# The stream decoder, for modules that subclass or drive it without Python-level calls.
cdef class MqttStream(Stream):
    cdef object _version
    cdef bint _strict
    cdef Py_ssize_t _max
    cdef bint _keep_bodies
    # closes_only: only DISCONNECT and CONNACK are returned.
    cdef public bint closes_only
    # A fixed header split across chunks (a type byte and at most 4 length bytes).
    cdef unsigned char _header[MAX_MQTT_HEADER]
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
