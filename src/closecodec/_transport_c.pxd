# C-level API of the compiled transport backend, for modules that cimport it
# (the streaming and capture readers). Every function checks bounds against
# the size it is given before reading a byte.

from libc.stdint cimport int64_t, uint32_t, uint64_t

from closecodec.websocket.values cimport WebSocketClose


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
cdef Py_ssize_t read_vbi(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, str what, uint64_t* out) except -2
cdef WebSocketClose read_close(const unsigned char* src, Py_ssize_t length, Py_ssize_t pos, WsHeader* h)


# -- C-level API for protocol stacks (docs/streaming.md) ----------------------
#
# The nogil parsers below return a status declared in closecodec/buffer/_c.pxd:
# CLOSECODEC_OK, _INCOMPLETE, _MALFORMED or _WRONG_TYPE.
from closecodec.buffer._c cimport (
    CLOSECODEC_INCOMPLETE,
    CLOSECODEC_MALFORMED,
    CLOSECODEC_OK,
    CLOSECODEC_WRONG_TYPE,
    utf8_invalid_at,
)


cdef struct WsCloseResult:
    Py_ssize_t size
    Py_ssize_t error_offset
    int answer                 # MALFORMED: the close code to answer with (1002, 1007)
    int code                   # the status code, or -1 for an empty body (reported as 1005)
    bint masked
    unsigned char mask_key[4]
    Py_ssize_t reason_length
    char reason[123]           # the reason, unmasked and valid UTF-8 (not NUL-terminated)


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


# One WebSocket close frame from data[0:size] (RFC 6455 §5.2, §5.5.1); expect_masked
# 1 (a server's view), 0 (a client's) or -1 (either). Never raises; no GIL needed.
cdef int ws_close_parse(const unsigned char* data, Py_ssize_t size, int expect_masked, WsCloseResult* out) noexcept nogil
# One MQTT DISCONNECT from data[0:size] (MQTT 5 §3.14, 3.1.1 §3.14); version 4, 5 or 0
# (not known); strict: a reason code a DISCONNECT may not carry is a protocol error.
cdef int mqtt_disconnect_parse(const unsigned char* data, Py_ssize_t size, int version, bint strict, MqttDisconnectResult* out) noexcept nogil

# The Python values: the frame or packet at data[0:size] exactly as decode_ws_frame /
# decode_mqtt_packet return it (and raising what they raise, offsets from data);
# end[0] is set to its size.
cdef object ws_frame_from(const unsigned char* data, Py_ssize_t size, int expect_masked, Py_ssize_t* end)
cdef object mqtt_packet_from(const unsigned char* data, Py_ssize_t size, object version, bint strict, Py_ssize_t* end)
