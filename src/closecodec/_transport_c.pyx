# Compiled transport backend: WebSocket frames and MQTT packets. Same names,
# results and errors as _transport_py.py, whose module docstring records the
# decisions both follow.
#
# Every read is preceded by an explicit comparison with the size of the
# buffer (or of the packet / property block being read), so indexing below
# never needs Cython's own bounds checks: boundscheck/wraparound are off for
# that reason only.
# cython: boundscheck=False, wraparound=False

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memchr, memcpy

from closecodec.buffer._c cimport Reader, open_reader, varint_bytes
from closecodec.mqtt.values cimport MqttConnack, MqttDisconnect, MqttOtherPacket
from closecodec.websocket.values cimport WebSocketClose, WebSocketFrame, WebSocketHeader

from operator import index

from closecodec.errors import EncodeError, IncompleteError, MqttPacketError, WebSocketFrameError
from closecodec.frames import (
    MQTT_PACKET_PROPERTIES,
    MQTT_PROPERTY_TYPES,
    MqttPacketType,
    MqttPropertyId,
    WebSocketOpcode,
)
from closecodec.reasons import (
    MqttConnackReturnCode,
    MqttReasonCode,
    WebSocketCloseCode,
    mqtt_disconnect_reason_allowed,
    websocket_close_code_allowed_on_wire,
)

__all__ = [
    "DEFAULT_MAX_WS_PAYLOAD",
    "decode_mqtt_packet",
    "decode_mqtt_varint",
    "decode_ws_frame",
    "decode_ws_header",
    "encode_mqtt_packet",
    "encode_mqtt_varint",
    "encode_ws_frame",
    "unmask_ws_payload",
]

#: Default ``max_payload`` of :func:`decode_ws_frame`: 16 MiB.
DEFAULT_MAX_WS_PAYLOAD = 16 * 1024 * 1024

cdef enum:
    MAX_CONTROL_PAYLOAD = 125
    MAX_CLOSE_REASON = 123
    MAX_VBI = 268435455
    MALFORMED = 0x81
    PROTOCOL_ERROR = 0x82
    PACKET_TOO_LARGE = 0x95
    # Above this many bytes the unmask loop runs without the GIL.
    NOGIL_UNMASK = 4096
    # Property value kinds (MQTT 5 §2.2.2.2), indexed by identifier below.
    KIND_NONE = 0
    KIND_BYTE = 1
    KIND_U16 = 2
    KIND_U32 = 3
    KIND_VBI = 4
    KIND_UTF8 = 5
    KIND_BINARY = 6
    KIND_PAIR = 7
    # Property flags: allowed in DISCONNECT / CONNACK; value must be 0 or 1; never 0.
    IN_DISCONNECT = 1
    IN_CONNACK = 2
    VALUE_BOOLEAN = 4
    VALUE_NONZERO = 8
    PROPERTY_SLOTS = 64
    PACKET_DISCONNECT = 14
    PACKET_CONNACK = 2

cdef tuple OPCODES = tuple([WebSocketOpcode(op) if op in (0, 1, 2, 8, 9, 10) else None for op in range(16)])
cdef object CLOSE = WebSocketOpcode.CLOSE
cdef object USER_PROPERTY = MqttPropertyId.USER_PROPERTY
cdef object DISCONNECT = MqttPacketType.DISCONNECT
cdef object CONNACK = MqttPacketType.CONNACK
cdef tuple PACKET_TYPES = tuple([None] + [MqttPacketType(n) for n in range(1, 16)])
cdef list PROPERTY_IDS = [None] * PROPERTY_SLOTS
cdef unsigned char PROPERTY_KIND[PROPERTY_SLOTS]
cdef unsigned char PROPERTY_FLAGS[PROPERTY_SLOTS]
# Enum values are looked up once and kept: the enum constructors are slow.
# Filled on first use, so that no pseudo-member exists before it is met.
cdef list CLOSE_CODES = [None] * 4000  # 1000..4999, every code allowed on the wire
cdef list REASON_CODES = [None] * 256
cdef list RETURN_CODES = [None] * 256


cdef void init_property_tables():
    kinds = {"byte": KIND_BYTE, "u16": KIND_U16, "u32": KIND_U32, "vbi": KIND_VBI,
             "utf8": KIND_UTF8, "binary": KIND_BINARY, "pair": KIND_PAIR}
    cdef int number
    for number in range(PROPERTY_SLOTS):
        PROPERTY_KIND[number] = KIND_NONE
        PROPERTY_FLAGS[number] = 0
    for pid, kind in MQTT_PROPERTY_TYPES.items():
        number = pid
        PROPERTY_IDS[number] = pid
        PROPERTY_KIND[number] = kinds[kind]
    for pid in MQTT_PACKET_PROPERTIES[DISCONNECT]:
        PROPERTY_FLAGS[<int>pid] |= IN_DISCONNECT
    for pid in MQTT_PACKET_PROPERTIES[CONNACK]:
        PROPERTY_FLAGS[<int>pid] |= IN_CONNACK
    for pid in (MqttPropertyId.MAXIMUM_QOS, MqttPropertyId.RETAIN_AVAILABLE,
                MqttPropertyId.WILDCARD_SUBSCRIPTION_AVAILABLE,
                MqttPropertyId.SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                MqttPropertyId.SHARED_SUBSCRIPTION_AVAILABLE):
        PROPERTY_FLAGS[<int>pid] |= VALUE_BOOLEAN
    for pid in (MqttPropertyId.RECEIVE_MAXIMUM, MqttPropertyId.MAXIMUM_PACKET_SIZE):
        PROPERTY_FLAGS[<int>pid] |= VALUE_NONZERO


init_property_tables()


cdef inline object close_code(int code):
    cached = CLOSE_CODES[code - 1000]
    if cached is None:
        cached = CLOSE_CODES[code - 1000] = WebSocketCloseCode(code)
    return cached


cdef inline object reason_code(int code):
    cached = REASON_CODES[code]
    if cached is None:
        cached = REASON_CODES[code] = MqttReasonCode(code)
    return cached


cdef inline object return_code(int code):
    cached = RETURN_CODES[code]
    if cached is None:
        cached = RETURN_CODES[code] = MqttConnackReturnCode(code)
    return cached


cdef inline bint close_code_allowed(int code) noexcept nogil:
    # websocket_close_code_allowed_on_wire, inlined for the hot path.
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# -- WebSocket -----------------------------------------------------------------


cdef void xor_mask(const unsigned char* src, unsigned char* dst, Py_ssize_t n, const unsigned char* key) noexcept nogil:
    """dst[i] = src[i] ^ key[i % 4] (RFC 6455 §5.3), eight bytes at a time."""
    cdef unsigned char key8[8]
    cdef uint64_t word, mask
    cdef Py_ssize_t i = 0
    cdef int j
    for j in range(8):
        key8[j] = key[j & 3]
    memcpy(&mask, key8, 8)
    while i + 8 <= n:  # i stays a multiple of 8, so key8 lines up with i % 4 == 0
        memcpy(&word, src + i, 8)
        word ^= mask
        memcpy(dst + i, &word, 8)
        i += 8
    while i < n:
        dst[i] = src[i] ^ key[i & 3]
        i += 1


cdef bytes masked_copy(const unsigned char* src, Py_ssize_t n, const unsigned char* key):
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char* dst = <unsigned char*>PyBytes_AS_STRING(out)
    if n > NOGIL_UNMASK:
        with nogil:
            xor_mask(src, dst, n, key)
    else:
        xor_mask(src, dst, n, key)
    return out


def unmask_ws_payload(data, mask_key, phase=0, /):
    """Unmask (or mask: the same XOR) a WebSocket payload (RFC 6455 §5.3).

    Args:
        data: the payload bytes, any C-contiguous buffer.
        mask_key: the frame's 4-byte masking key.
        phase: the payload position of ``data[0]`` modulo 4, for a payload
            unmasked in pieces.

    Returns:
        ``data[i] ^ mask_key[(phase + i) % 4]`` for every byte, as bytes.

    Raises:
        TypeError: ``mask_key`` is not 4 bytes.
        ValueError: ``phase`` is not 0..3.
    """
    cdef Py_buffer key_view, data_view
    cdef Reader key_reader, data_reader
    cdef unsigned char key[4]
    cdef Py_ssize_t shift, j
    open_reader(&key_reader, mask_key, 0, &key_view)
    try:
        if key_reader.size != 4:
            raise TypeError("a masking key is 4 bytes")
        shift = index(phase)
        if not 0 <= shift <= 3:
            raise ValueError(f"phase {shift} is not 0..3")
        for j in range(4):
            key[j] = key_reader.data[(shift + j) & 3]
    finally:
        PyBuffer_Release(&key_view)
    open_reader(&data_reader, data, 0, &data_view)
    try:
        return masked_copy(data_reader.data, data_reader.size, key)
    finally:
        PyBuffer_Release(&data_view)


cdef int read_ws_header(
    const unsigned char* data, Py_ssize_t start, Py_ssize_t size, int expect_masked, int rsv_allowed,
    bint minimal_length, int64_t max_payload, int64_t base, WsHeader* h,
) except -1:
    """The header fields, in RFC 6455 §5.2's layout; ``expect_masked`` is -1 for either. An error's
    offset is ``base`` plus its position in ``data`` (a stream passes where ``data`` starts in it)."""
    cdef unsigned char byte0, byte1
    cdef Py_ssize_t pos, length_at
    cdef int width, j
    cdef uint64_t length
    cdef bint control
    if size - start < 2:
        raise IncompleteError("WebSocket frame header", base + start)
    byte0 = data[start]
    h.fin = byte0 & 0x80 != 0
    h.rsv = (byte0 >> 4) & 0x07
    h.opcode = byte0 & 0x0F
    if OPCODES[h.opcode] is None:
        raise WebSocketFrameError(f"reserved opcode {h.opcode}", base + start)
    control = h.opcode >= 8
    if h.rsv & ~(0 if control else rsv_allowed):
        what = "on a control frame" if control else "and no negotiated extension allows them"
        raise WebSocketFrameError(f"RSV bits {h.rsv:#x} are set {what}", base + start)
    if control and not h.fin:
        raise WebSocketFrameError(f"control frame (opcode {h.opcode}) is fragmented (FIN clear)", base + start)
    byte1 = data[start + 1]
    h.masked = byte1 & 0x80 != 0
    if expect_masked >= 0 and h.masked != expect_masked:
        which = "unmasked frame where masking is required" if expect_masked else "masked frame where masking is forbidden"
        raise WebSocketFrameError(which, base + start + 1)
    length = byte1 & 0x7F
    if control and length > MAX_CONTROL_PAYLOAD:
        raise WebSocketFrameError("control frame payload longer than 125 bytes", base + start + 1)
    pos = start + 2
    length_at = start + 1
    if length >= 126:
        width = 2 if length == 126 else 8
        length_at = pos
        if width == 8 and pos < size and data[pos] & 0x80:
            raise WebSocketFrameError("64-bit payload length has its most significant bit set", base + pos)
        if size - pos < width:
            raise IncompleteError("WebSocket frame header", base + start)
        length = 0
        for j in range(width):
            length = (length << 8) | data[pos + j]
        if minimal_length and length < (126 if width == 2 else 0x10000):
            raise WebSocketFrameError(f"payload length {length} is not in its shortest form", base + pos)
        pos += width
    if max_payload >= 0 and length > <uint64_t>max_payload:
        raise WebSocketFrameError(f"payload of {length} bytes is over the {max_payload}-byte limit", base + length_at, 1009)
    if h.masked:
        if size - pos < 4:
            raise IncompleteError("WebSocket frame header", base + start)
        memcpy(h.key, data + pos, 4)
        pos += 4
    h.length = length
    h.payload_at = pos
    return 0


cdef int64_t payload_limit(object max_payload) except -2:
    if max_payload is None:
        return -1
    if type(max_payload) is not int or max_payload < 0:
        raise ValueError(f"max_payload must be None or an int >= 0, not {max_payload!r}")
    # No payload length reaches 2**63, so a larger limit is no limit.
    return max_payload if max_payload < (1 << 63) else -1


cdef int rsv_mask(object rsv_allowed) except -1:
    if type(rsv_allowed) is not int or not 0 <= rsv_allowed <= 7:
        raise ValueError(f"rsv_allowed must be 0..7 (RSV1 is 4), not {rsv_allowed!r}")
    return rsv_allowed


cdef inline int masked_side(object expect_masked) except -2:
    if expect_masked is None:
        return -1
    return 1 if expect_masked else 0


def decode_ws_header(buf, Py_ssize_t offset=0, /, *, expect_masked=None, rsv_allowed=0,
                     bint minimal_length=True, max_payload=None):
    """Decode a WebSocket frame header; return ``(header, payload_offset)``.

    The payload itself is not needed (see :func:`decode_ws_frame` for whole
    frames); a streaming reader uses this for data frames too large to buffer.

    Args:
        expect_masked: True if this endpoint is a server (frames must be
            masked), False if a client (frames must not be), None to accept both.
        rsv_allowed: the RSV bits a negotiated extension allows on data frames
            (RSV1 is 4, RSV2 2, RSV3 1); control frames never carry any.
        minimal_length: refuse lengths not in their shortest form (RFC 6455
            §5.2 requires it); False accepts them, as some peers do.
        max_payload: refuse a longer payload with close code 1009; None: no limit.

    Raises:
        IncompleteError: the header ends early (offset: the frame's first byte).
        WebSocketFrameError: a header no further bytes can make valid; its
            ``close_code`` is 1002 (or 1009 over ``max_payload``).
    """
    cdef Py_buffer view
    cdef Reader r
    cdef WsHeader h
    cdef WebSocketHeader header
    open_reader(&r, buf, offset, &view)
    try:
        limit = payload_limit(max_payload)
        read_ws_header(r.data, r.pos, r.size, masked_side(expect_masked), rsv_mask(rsv_allowed), minimal_length, limit,
                       0, &h)
        header = WebSocketHeader.__new__(WebSocketHeader)
        header.fin = h.fin
        header.rsv = h.rsv
        header.opcode = OPCODES[h.opcode]
        header.mask_key = PyBytes_FromStringAndSize(<char*>h.key, 4) if h.masked else None
        header.length = h.length
        return header, h.payload_at
    finally:
        PyBuffer_Release(&view)


def decode_ws_frame(buf, Py_ssize_t offset=0, /, *, expect_masked=None, rsv_allowed=0,
                    bint minimal_length=True, max_payload=DEFAULT_MAX_WS_PAYLOAD):
    """Decode one whole WebSocket frame, payload unmasked; return ``(frame, next_offset)``.

    A close frame becomes a :class:`WebSocketClose` whose body is checked (RFC
    6455 §5.5.1, §7.4); any other frame a :class:`WebSocketFrame`.

    Args:
        expect_masked, rsv_allowed, minimal_length: as for :func:`decode_ws_header`.
        max_payload: the longest payload accepted (default
            :data:`DEFAULT_MAX_WS_PAYLOAD`); longer fails at once, with close
            code 1009, before anything is allocated. None: no limit.

    Raises:
        IncompleteError: the frame ends early (offset: the frame's first byte).
        WebSocketFrameError: the frame can never be valid; ``close_code`` is
            what to answer: 1002 for a bad header, code or close length, 1007
            for a close reason that is not UTF-8, 1009 over ``max_payload``.
    """
    cdef Py_buffer view
    cdef Reader r
    cdef WsHeader h
    cdef Py_ssize_t length, end
    cdef WebSocketFrame frame
    open_reader(&r, buf, offset, &view)
    try:
        limit = payload_limit(max_payload)
        read_ws_header(r.data, r.pos, r.size, masked_side(expect_masked), rsv_mask(rsv_allowed), minimal_length, limit,
                       0, &h)
        if <uint64_t>(r.size - h.payload_at) < h.length:
            raise IncompleteError("WebSocket frame payload", r.pos)
        length = <Py_ssize_t>h.length
        end = h.payload_at + length
        if h.opcode == 8:
            return read_close(r.data + h.payload_at, length, h.payload_at, &h), end
        frame = WebSocketFrame.__new__(WebSocketFrame)
        frame.opcode = OPCODES[h.opcode]
        frame.fin = h.fin
        frame.rsv = h.rsv
        if h.masked:
            frame.payload = masked_copy(r.data + h.payload_at, length, h.key)
            frame.mask_key = PyBytes_FromStringAndSize(<char*>h.key, 4)
        else:
            frame.payload = PyBytes_FromStringAndSize(<const char*>r.data + h.payload_at, length)
            frame.mask_key = None
        return frame, end
    finally:
        PyBuffer_Release(&view)


cdef WebSocketClose read_close(const unsigned char* src, Py_ssize_t length, Py_ssize_t pos, WsHeader* h):
    """A close body (RFC 6455 §5.5.1), at most 125 bytes: unmasked on the stack, then read."""
    cdef unsigned char body[MAX_CONTROL_PAYLOAD]
    cdef const unsigned char* p = src
    cdef int code
    cdef WebSocketClose close = WebSocketClose.__new__(WebSocketClose)
    close.mask_key = PyBytes_FromStringAndSize(<char*>h.key, 4) if h.masked else None
    if length == 0:
        close.code = None
        close.reason = ""
        return close
    if length == 1:
        raise WebSocketFrameError("close payload of 1 byte (a status code takes 2)", pos)
    if h.masked:
        xor_mask(src, body, length, h.key)
        p = body
    code = p[0] << 8 | p[1]
    if not close_code_allowed(code):
        raise WebSocketFrameError(f"close code {code} may not be sent in a close frame", pos)
    try:
        close.reason = PyUnicode_DecodeUTF8(<const char*>p + 2, length - 2, NULL)
    except UnicodeDecodeError as error:
        raise WebSocketFrameError("invalid UTF-8 in the close reason", pos + 2 + error.start, 1007) from None
    close.code = close_code(code)
    return close


cdef bytes ws_header_bytes(int first, bint masked, Py_ssize_t length):
    cdef unsigned char out[10]
    cdef int n, j
    cdef unsigned char mask_bit = 0x80 if masked else 0
    out[0] = first
    if length < 126:
        out[1] = mask_bit | length
        n = 2
    elif length < 0x10000:
        out[1] = mask_bit | 126
        out[2] = (length >> 8) & 0xFF
        out[3] = length & 0xFF
        n = 4
    else:
        out[1] = mask_bit | 127
        for j in range(8):
            out[2 + j] = (<uint64_t>length >> (56 - 8 * j)) & 0xFF
        n = 10
    return PyBytes_FromStringAndSize(<char*>out, n)


def encode_ws_frame(frame, /):
    """Encode a WebSocket frame: header (shortest length form), masking key, masked payload.

    Args:
        frame: a :class:`WebSocketClose` or :class:`WebSocketFrame`; it is
            masked with its ``mask_key`` if it has one.

    Raises:
        EncodeError: not a frame; a close code that may not be sent (1004-1006,
            1015, below 1000, 1016-2999, 5000 and up); a close reason over 123
            UTF-8 bytes or not encodable; a control frame that is fragmented,
            carries RSV bits or has a payload over 125 bytes.
    """
    cdef int first
    cdef bytes payload, mask_key
    kind = type(frame)
    if kind is WebSocketClose:
        code = frame.code
        if code is None:
            payload = b""
        else:
            if not close_code_allowed(code):
                raise EncodeError(f"close code {int(code)} may not be sent in a close frame")
            try:
                reason = frame.reason.encode("utf-8")
            except UnicodeEncodeError:
                raise EncodeError("the close reason is not encodable as UTF-8 (lone surrogate)") from None
            if len(reason) > MAX_CLOSE_REASON:
                raise EncodeError(f"close reason of {len(reason)} UTF-8 bytes is over the 123-byte limit")
            payload = bytes(((code >> 8) & 0xFF, code & 0xFF)) + reason
        first = 0x88
    elif kind is WebSocketFrame:
        payload = frame.payload
        opcode = frame.opcode
        if opcode >= 8:
            if not frame.fin:
                raise EncodeError(f"a control frame ({opcode.name}) cannot be fragmented")
            if frame.rsv:
                raise EncodeError(f"a control frame ({opcode.name}) carries no RSV bits")
            if len(payload) > MAX_CONTROL_PAYLOAD:
                raise EncodeError(f"control frame payload of {len(payload)} bytes is over the 125-byte limit")
        first = (0x80 if frame.fin else 0) | frame.rsv << 4 | int(opcode)
    else:
        raise EncodeError(f"a WebSocket frame is a WebSocketFrame or WebSocketClose, not {kind.__name__}")
    mask_key = frame.mask_key
    header = ws_header_bytes(first, mask_key is not None, len(payload))
    if mask_key is None:
        return header + payload
    return header + mask_key + masked_copy(<const unsigned char*>PyBytes_AS_STRING(payload), len(payload),
                                           <const unsigned char*>PyBytes_AS_STRING(mask_key))


# -- MQTT ----------------------------------------------------------------------


cdef Py_ssize_t read_vbi(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, str what, uint64_t* out) except -2:
    """A Variable Byte Integer (MQTT 5 §1.5.5): at most 4 bytes, shortest form.

    Returns the offset after it, or -1 when it runs past ``end``.
    """
    cdef uint64_t value = 0
    cdef unsigned int shift = 0
    cdef Py_ssize_t at = pos
    cdef unsigned char byte
    while True:
        if at >= end:
            return -1
        byte = data[at]
        if at - pos == 3 and byte & 0x80:
            raise MqttPacketError(f"{what} is longer than 4 bytes", at)
        if byte == 0 and at > pos:
            raise MqttPacketError(f"{what} is not in its shortest form", at)
        value |= (<uint64_t>(byte & 0x7F)) << shift
        at += 1
        if byte < 0x80:
            out[0] = value
            return at
        shift += 7


def decode_mqtt_varint(buf, Py_ssize_t offset=0, /):
    """Decode an MQTT Variable Byte Integer (MQTT 5 §1.5.5); return ``(value, next_offset)``.

    Raises:
        IncompleteError: it runs past the end of ``buf``.
        MqttPacketError: more than 4 bytes, or not in its shortest form (0x81).
    """
    cdef Py_buffer view
    cdef Reader r
    cdef uint64_t value
    cdef Py_ssize_t end
    open_reader(&r, buf, offset, &view)
    try:
        end = read_vbi(r.data, r.pos, r.size, "Variable Byte Integer", &value)
        if end < 0:
            raise IncompleteError("Variable Byte Integer", r.pos)
        return value, end
    finally:
        PyBuffer_Release(&view)


def encode_mqtt_varint(value, /):
    """Encode an MQTT Variable Byte Integer, 0..268,435,455, in its shortest form.

    Raises:
        EncodeError: not an int, or out of range.
    """
    if type(value) is not int:
        raise EncodeError(f"a Variable Byte Integer needs an int, not {type(value).__name__}")
    if not 0 <= value <= MAX_VBI:
        raise EncodeError(f"{value} is outside the Variable Byte Integer range 0..268435455")
    return varint_bytes(value)


cdef inline int defer(list deferred, str message, Py_ssize_t offset) except -1:
    """Remember the first protocol error (0x82); it is raised once the packet has parsed."""
    if not deferred:
        deferred.append(MqttPacketError(message, offset, PROTOCOL_ERROR))
    return 0


cdef str property_name(int number):
    return f"{PROPERTY_IDS[number].name} (0x{number:02X})"


cdef str read_string(const unsigned char* data, Py_ssize_t* at, Py_ssize_t limit, int number):
    """A UTF-8 Encoded String (MQTT 5 §1.5.4): 2-byte length, strict UTF-8, no U+0000."""
    cdef Py_ssize_t pos = at[0]
    cdef Py_ssize_t length
    cdef const void* null
    if limit - pos < 2:
        raise MqttPacketError(f"{property_name(number)} runs past the end of the properties", pos)
    length = data[pos] << 8 | data[pos + 1]
    if limit - pos - 2 < length:
        raise MqttPacketError(f"{property_name(number)} runs past the end of the properties", pos)
    try:
        text = PyUnicode_DecodeUTF8(<const char*>data + pos + 2, length, NULL)
    except UnicodeDecodeError as error:
        raise MqttPacketError(f"invalid UTF-8 in {property_name(number)}", pos + 2 + error.start) from None
    null = memchr(data + pos + 2, 0, length)  # in valid UTF-8, a zero byte is U+0000 and nothing else
    if null is not NULL:
        raise MqttPacketError(f"U+0000 in {property_name(number)}", <const unsigned char*>null - data)
    at[0] = pos + 2 + length
    return text


cdef tuple read_properties(const unsigned char* data, Py_ssize_t* at_out, Py_ssize_t end, int packet, list deferred):
    """Property Length and the properties (MQTT 5 §2.2.2) of a CONNACK or DISCONNECT."""
    cdef uint64_t length, number
    cdef Py_ssize_t pos = at_out[0]
    cdef Py_ssize_t at, limit, id_at, size
    cdef int kind, flags, width, j
    cdef unsigned char allowed_flag = IN_DISCONNECT if packet == PACKET_DISCONNECT else IN_CONNACK
    cdef uint64_t seen = 0
    cdef uint64_t value
    cdef list properties = []
    at = read_vbi(data, pos, end, "Property Length", &length)
    if at < 0:
        raise MqttPacketError("Property Length runs past the end of the packet", pos)
    if <uint64_t>(end - at) < length:
        raise MqttPacketError(f"properties of {length} bytes run past the end of the packet", pos)
    limit = at + <Py_ssize_t>length
    while at < limit:
        id_at = at
        at = read_vbi(data, at, limit, "property identifier", &number)
        if at < 0:
            raise MqttPacketError("property identifier runs past the end of the properties", id_at)
        if number >= PROPERTY_SLOTS or PROPERTY_KIND[number] == KIND_NONE:
            raise MqttPacketError(f"unknown property identifier 0x{number:02X}", id_at)
        flags = PROPERTY_FLAGS[number]
        if not flags & allowed_flag:
            packet_name = "DISCONNECT" if packet == PACKET_DISCONNECT else "CONNACK"
            raise MqttPacketError(f"property {property_name(number)} is not allowed in {packet_name}", id_at)
        kind = PROPERTY_KIND[number]
        if kind == KIND_UTF8:
            item = read_string(data, &at, limit, number)
        elif kind == KIND_PAIR:
            key = read_string(data, &at, limit, number)
            text = read_string(data, &at, limit, number)
            item = (key, text)
        elif kind == KIND_BINARY:
            if limit - at < 2 or limit - at - 2 < (data[at] << 8 | data[at + 1]):
                raise MqttPacketError(f"{property_name(number)} runs past the end of the properties", at)
            size = data[at] << 8 | data[at + 1]
            item = PyBytes_FromStringAndSize(<const char*>data + at + 2, size)
            at += 2 + size
        else:
            # Only Byte, Two and Four Byte Integers are allowed in these packets.
            width = 1 if kind == KIND_BYTE else 2 if kind == KIND_U16 else 4
            if limit - at < width:
                raise MqttPacketError(f"{property_name(number)} runs past the end of the properties", at)
            value = 0
            for j in range(width):
                value = (value << 8) | data[at + j]
            if flags & VALUE_BOOLEAN and value > 1:
                defer(deferred, f"{property_name(number)} is {value}, not 0 or 1", at)
            elif flags & VALUE_NONZERO and value == 0:
                defer(deferred, f"{property_name(number)} is 0", at)
            item = value
            at += width
        pid = PROPERTY_IDS[number]
        if seen & (<uint64_t>1 << number) and pid is not USER_PROPERTY:
            defer(deferred, f"property {property_name(number)} appears more than once", id_at)
        seen |= <uint64_t>1 << number
        properties.append((pid, item))
    at_out[0] = at
    return tuple(properties)


cdef int expect_end(Py_ssize_t at, Py_ssize_t end, str packet) except -1:
    if at != end:
        raise MqttPacketError(f"{end - at} bytes after the end of the {packet}", at)
    return 0


cdef MqttDisconnect read_disconnect(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, object version, bint strict):
    """MQTT 5 §3.14.2: [reason code [Property Length, properties]]; 3.1.1: nothing."""
    cdef MqttDisconnect packet = MqttDisconnect.__new__(MqttDisconnect)
    cdef list deferred
    cdef int code
    cdef Py_ssize_t at
    if pos == end:
        packet.reason_code = reason_code(0)
        packet.properties = ()
        packet.version = version
        return packet
    if version == 4:
        raise MqttPacketError(f"an MQTT 3.1.1 DISCONNECT has no body, this one has {end - pos} bytes", pos)
    deferred = []
    code = data[pos]
    if strict and not mqtt_disconnect_reason_allowed(code):
        defer(deferred, f"reason code 0x{code:02X} is not a DISCONNECT reason code", pos)
    properties = ()
    at = pos + 1
    if at < end:
        properties = read_properties(data, &at, end, PACKET_DISCONNECT, deferred)
        expect_end(at, end, "DISCONNECT")
    if deferred:
        raise deferred[0]
    packet.reason_code = reason_code(code)
    packet.properties = properties
    packet.version = 5
    return packet


cdef MqttConnack read_connack(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, object version, bint strict):
    """MQTT 5 §3.2.2: flags, reason code, Property Length, properties; 3.1.1: flags, return code."""
    cdef MqttConnack packet
    cdef Py_ssize_t remaining = end - pos
    cdef Py_ssize_t at
    cdef int flags, code
    cdef bint v4
    cdef list deferred = []
    if version is None:
        version = 4 if remaining == 2 else 5
    v4 = version == 4
    if remaining < (2 if v4 else 3):
        raise MqttPacketError(f"a CONNACK body of {remaining} bytes is too short", pos)
    flags = data[pos]
    if flags & 0xFE:
        raise MqttPacketError(f"CONNACK acknowledge flags 0x{flags:02X} set reserved bits", pos)
    code = data[pos + 1]
    if flags and code:
        defer(deferred, f"Session Present is set on a refusal (code 0x{code:02X})", pos)
    if strict and (code > 5 if v4 else "CONNACK" not in reason_code(code).packets):
        defer(deferred, f"reason code 0x{code:02X} is not a CONNACK reason code", pos + 1)
    properties = ()
    at = pos + 2
    if not v4:
        properties = read_properties(data, &at, end, PACKET_CONNACK, deferred)
    expect_end(at, end, "CONNACK")
    if deferred:
        raise deferred[0]
    packet = MqttConnack.__new__(MqttConnack)
    packet.reason_code = return_code(code) if v4 else reason_code(code)
    packet.session_present = flags == 1
    packet.properties = properties
    packet.version = version
    return packet


def decode_mqtt_packet(buf, Py_ssize_t offset=0, /, *, version=None, bint strict=False, max_packet_size=None):
    """Decode one MQTT control packet; return ``(packet, next_offset)``.

    DISCONNECT and CONNACK are decoded (:class:`MqttDisconnect`,
    :class:`MqttConnack`); any other type is kept whole as an
    :class:`MqttOtherPacket` (its flags and body are not checked).

    Args:
        version: the connection's protocol: 4 (MQTT 3.1.1), 5 (MQTT 5.0), or
            None to infer it from the packet: a DISCONNECT with a body or a
            CONNACK with properties is 5.0, a 2-byte CONNACK body is 3.1.1, and
            ``e0 00`` (the same in both) decodes with ``version=None``.
        strict: a reason code the packet type does not define (e.g. 0x84 in a
            DISCONNECT, an unassigned code) is a protocol error (0x82) instead of
            decoding (as an ``UNKNOWN`` pseudo-member for an unassigned value).
        max_packet_size: refuse a longer packet (fixed header included) with
            reason code 0x95; None: only MQTT's own limit.

    Raises:
        IncompleteError: the packet runs past the end of ``buf`` (offset: its first byte).
        MqttPacketError: ``reason_code`` 0x81 (malformed: reserved type or
            flags, a bad Variable Byte Integer, properties or strings that do
            not parse, a property the packet may not carry, bytes left over),
            0x82 (protocol error: a repeated property, a property value or
            reason code not allowed, Session Present with a refusal) or 0x95.
    """
    cdef Py_buffer view
    cdef Reader r
    cdef Py_ssize_t start, pos, end
    cdef uint64_t remaining
    cdef int number, flags
    cdef int64_t packet_limit
    cdef MqttOtherPacket other
    open_reader(&r, buf, offset, &view)
    try:
        if version is not None and version not in (4, 5):
            raise ValueError(f"version must be 4, 5 or None, not {version!r}")
        if max_packet_size is not None and (type(max_packet_size) is not int or max_packet_size < 0):
            raise ValueError(f"max_packet_size must be None or an int >= 0, not {max_packet_size!r}")
        # No packet is longer than 5 + 268,435,455 bytes, so a larger limit is no limit.
        packet_limit = -1 if max_packet_size is None or max_packet_size > MAX_VBI + 5 else max_packet_size
        start = r.pos
        if start >= r.size:
            raise IncompleteError("MQTT fixed header", start)
        number = r.data[start] >> 4
        flags = r.data[start] & 0x0F
        if number == 0:
            raise MqttPacketError("reserved packet type 0", start)
        if flags and (number == PACKET_DISCONNECT or number == PACKET_CONNACK):
            raise MqttPacketError(f"{PACKET_TYPES[number].name} flags 0x{flags:X} are not 0", start)
        pos = read_vbi(r.data, start + 1, r.size, "Remaining Length", &remaining)
        if pos < 0:
            raise IncompleteError("MQTT fixed header", start)
        if packet_limit >= 0 and <uint64_t>(pos - start) + remaining > <uint64_t>packet_limit:
            raise MqttPacketError(
                f"packet of {pos - start + remaining} bytes is over the {max_packet_size}-byte limit", start,
                PACKET_TOO_LARGE,
            )
        if <uint64_t>(r.size - pos) < remaining:
            raise IncompleteError("MQTT packet", start)
        end = pos + <Py_ssize_t>remaining
        if number == PACKET_DISCONNECT:
            return read_disconnect(r.data, pos, end, version, strict), end
        if number == PACKET_CONNACK:
            return read_connack(r.data, pos, end, version, strict), end
        other = MqttOtherPacket.__new__(MqttOtherPacket)
        other.packet_type = PACKET_TYPES[number]
        other.flags = flags
        other.body = PyBytes_FromStringAndSize(<const char*>r.data + pos, end - pos)
        return other, end
    finally:
        PyBuffer_Release(&view)


cdef bytes check_properties(tuple properties, object packet):
    allowed = MQTT_PACKET_PROPERTIES[packet]
    seen = set()
    cdef bytearray out = bytearray()
    cdef int width
    for pid, value in properties:
        name = f"{pid.name} (0x{int(pid):02X})"
        if pid not in allowed:
            raise EncodeError(f"property {name} is not allowed in {packet.name}")
        if pid in seen and pid is not USER_PROPERTY:
            raise EncodeError(f"property {name} may appear only once")
        seen.add(pid)
        flags = PROPERTY_FLAGS[<int>pid]
        if flags & VALUE_BOOLEAN and value > 1:
            raise EncodeError(f"{name} is {value}, not 0 or 1")
        if flags & VALUE_NONZERO and value == 0:
            raise EncodeError(f"{name} may not be 0")
        out.append(int(pid))
        kind = PROPERTY_KIND[<int>pid]
        if kind == KIND_UTF8:
            out += encode_string(value, name)
        elif kind == KIND_PAIR:
            out += encode_string(value[0], name)
            out += encode_string(value[1], name)
        elif kind == KIND_BINARY:
            if len(value) > 0xFFFF:
                raise EncodeError(f"{name} of {len(value)} bytes is over the 65535-byte limit")
            out += len(value).to_bytes(2, "big")
            out += value
        else:
            width = 1 if kind == KIND_BYTE else 2 if kind == KIND_U16 else 4
            out += value.to_bytes(width, "big")
    return vbi_checked(len(out), "properties") + bytes(out)


cdef bytes encode_string(str text, str what):
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError(f"{what} is not encodable as UTF-8 (lone surrogate)") from None
    if len(raw) > 0xFFFF:
        raise EncodeError(f"{what} of {len(raw)} UTF-8 bytes is over the 65535-byte limit")
    if "\x00" in text:
        raise EncodeError(f"{what} contains U+0000")
    return len(raw).to_bytes(2, "big") + raw


cdef bytes vbi_checked(Py_ssize_t value, str what):
    if value > MAX_VBI:
        raise EncodeError(f"{what} of {value} bytes is over MQTT's 268435455-byte limit")
    return varint_bytes(value)


def encode_mqtt_packet(packet, /):
    """Encode an MQTT packet in its shortest form.

    A 5.0 DISCONNECT drops its reason code when it is 0x00 with no properties,
    and its Property Length when there are none (MQTT 5 §3.14.2).

    Args:
        packet: an :class:`MqttDisconnect`, :class:`MqttConnack` or :class:`MqttOtherPacket`.

    Raises:
        EncodeError: not a packet; a reason code the packet may not carry; a
            property the packet may not carry, repeated or with a value not
            allowed; a string that is not encodable, has U+0000 or is over
            65,535 bytes; Session Present with a refusal; a packet over MQTT's
            size limit.
    """
    kind = type(packet)
    if kind is MqttDisconnect:
        code = packet.reason_code
        if packet.version != 5 or (code == 0 and not packet.properties):
            return b"\xe0\x00"
        if not mqtt_disconnect_reason_allowed(code):
            raise EncodeError(f"reason code 0x{int(code):02X} may not be sent in a DISCONNECT")
        body = bytes((int(code),))
        if packet.properties:
            body += check_properties(packet.properties, DISCONNECT)
        return b"\xe0" + vbi_checked(len(body), "DISCONNECT") + body
    if kind is MqttConnack:
        code = packet.reason_code
        if packet.version == 4:
            if not code.known:
                raise EncodeError(f"return code {int(code)} is reserved in MQTT 3.1.1")
        elif "CONNACK" not in code.packets:
            raise EncodeError(f"reason code 0x{int(code):02X} may not be sent in a CONNACK")
        if packet.session_present and code != 0:
            raise EncodeError("Session Present must be 0 on a refused connection")
        body = bytes((1 if packet.session_present else 0, int(code)))
        if packet.version == 5:
            body += check_properties(packet.properties, CONNACK)
        return b"\x20" + vbi_checked(len(body), "CONNACK") + body
    if kind is MqttOtherPacket:
        return bytes((int(packet.packet_type) << 4 | packet.flags,)) + vbi_checked(len(packet.body), "packet body") + packet.body
    raise EncodeError(f"an MQTT packet is an MqttDisconnect, MqttConnack or MqttOtherPacket, not {kind.__name__}")


# -- C-level API for protocol stacks (docs/streaming.md) ------------------------------
#
# The *_parse functions read one frame or packet from a pointer and a length
# without the GIL: they never raise and never touch a Python object. Their
# verdict and error offset are those of decode_ws_frame / decode_mqtt_packet on
# the same bytes (tests/test_c_api.py checks it); the *_from functions return
# the very values, and raise the very errors, of those decoders.

cdef bint DISCONNECT_CODE_ALLOWED[256]


cdef void init_disconnect_codes():
    cdef int code
    for code in range(256):
        DISCONNECT_CODE_ALLOWED[code] = mqtt_disconnect_reason_allowed(code)


init_disconnect_codes()


cdef inline int parse_error(Py_ssize_t* error_offset, int* answer, Py_ssize_t offset, int code) noexcept nogil:
    error_offset[0] = offset
    answer[0] = code
    return CLOSECODEC_MALFORMED


cdef int ws_close_parse(const unsigned char* data, Py_ssize_t size, int expect_masked, WsCloseResult* out) noexcept nogil:
    cdef unsigned char body[MAX_CONTROL_PAYLOAD]
    cdef unsigned char b0, b1
    cdef int opcode, code
    cdef Py_ssize_t pos, length, bad
    out.size = 0
    out.error_offset = 0
    out.answer = 0
    out.code = -1
    out.masked = 0
    out.reason_length = 0
    if size < 2:
        out.size = 2
        return CLOSECODEC_INCOMPLETE
    # RFC 6455 §5.2, checked in decode_ws_header's order.
    b0 = data[0]
    opcode = b0 & 0x0F
    if opcode != 8:
        if opcode <= 2 or opcode == 9 or opcode == 10:
            return CLOSECODEC_WRONG_TYPE
        return parse_error(&out.error_offset, &out.answer, 0, 1002)
    if b0 & 0x70 or not b0 & 0x80:  # RSV bits, or FIN clear (§5.5: never fragmented)
        return parse_error(&out.error_offset, &out.answer, 0, 1002)
    b1 = data[1]
    out.masked = b1 & 0x80 != 0
    if expect_masked >= 0 and out.masked != expect_masked:
        return parse_error(&out.error_offset, &out.answer, 1, 1002)
    length = b1 & 0x7F
    if length > MAX_CONTROL_PAYLOAD:
        return parse_error(&out.error_offset, &out.answer, 1, 1002)
    pos = 6 if out.masked else 2
    if size < pos + length:
        out.size = pos + length
        return CLOSECODEC_INCOMPLETE
    out.size = pos + length
    if out.masked:
        memcpy(out.mask_key, data + 2, 4)
    if length == 0:
        return CLOSECODEC_OK
    if length == 1:  # §5.5.1: a status code takes 2 bytes
        return parse_error(&out.error_offset, &out.answer, pos, 1002)
    if out.masked:
        xor_mask(data + pos, body, length, out.mask_key)
    else:
        memcpy(body, data + pos, length)
    code = body[0] << 8 | body[1]
    if not close_code_allowed(code):
        return parse_error(&out.error_offset, &out.answer, pos, 1002)
    bad = utf8_invalid_at(body + 2, length - 2)
    if bad >= 0:  # §8.1
        return parse_error(&out.error_offset, &out.answer, pos + 2 + bad, 1007)
    out.code = code
    out.reason_length = length - 2
    memcpy(out.reason, body + 2, length - 2)
    return CLOSECODEC_OK


cdef object ws_frame_from(const unsigned char* data, Py_ssize_t size, int expect_masked, Py_ssize_t* end):
    """The frame at ``data``, as ``decode_ws_frame(..., expect_masked=...)`` returns it; ``end[0]``: its size."""
    cdef WsHeader h
    cdef Py_ssize_t length
    cdef WebSocketFrame frame
    read_ws_header(data, 0, size, expect_masked, 0, True, DEFAULT_MAX_WS_PAYLOAD, 0, &h)
    if <uint64_t>(size - h.payload_at) < h.length:
        raise IncompleteError("WebSocket frame payload", 0)
    length = <Py_ssize_t>h.length
    end[0] = h.payload_at + length
    if h.opcode == 8:
        return read_close(data + h.payload_at, length, h.payload_at, &h)
    frame = WebSocketFrame.__new__(WebSocketFrame)
    frame.opcode = OPCODES[h.opcode]
    frame.fin = h.fin
    frame.rsv = h.rsv
    if h.masked:
        frame.payload = masked_copy(data + h.payload_at, length, h.key)
        frame.mask_key = PyBytes_FromStringAndSize(<char*>h.key, 4)
    else:
        frame.payload = PyBytes_FromStringAndSize(<const char*>data + h.payload_at, length)
        frame.mask_key = None
    return frame


cdef Py_ssize_t vbi_parse(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, uint64_t* out,
                          Py_ssize_t* error_offset) noexcept nogil:
    """read_vbi without the GIL: the next offset, -1 past ``end``, -2 malformed (at ``error_offset``)."""
    cdef uint64_t value = 0
    cdef unsigned int shift = 0
    cdef Py_ssize_t at = pos
    cdef unsigned char byte
    while True:
        if at >= end:
            return -1
        byte = data[at]
        if (at - pos == 3 and byte & 0x80) or (byte == 0 and at > pos):
            error_offset[0] = at
            return -2
        value |= (<uint64_t>(byte & 0x7F)) << shift
        at += 1
        if byte < 0x80:
            out[0] = value
            return at
        shift += 7


cdef Py_ssize_t string_parse(const unsigned char* data, Py_ssize_t pos, Py_ssize_t limit,
                             Py_ssize_t* error_offset) noexcept nogil:
    """read_string without the GIL: the offset after the string, or -2 (at ``error_offset``)."""
    cdef Py_ssize_t length, bad, j
    if limit - pos < 2 or limit - pos - 2 < (data[pos] << 8 | data[pos + 1]):
        error_offset[0] = pos
        return -2
    length = data[pos] << 8 | data[pos + 1]
    bad = utf8_invalid_at(data + pos + 2, length)
    if bad >= 0:
        error_offset[0] = pos + 2 + bad
        return -2
    for j in range(length):
        if data[pos + 2 + j] == 0:  # U+0000 (MQTT 5 §1.5.4)
            error_offset[0] = pos + 2 + j
            return -2
    return pos + 2 + length


cdef int mqtt_disconnect_parse(const unsigned char* data, Py_ssize_t size, int version, bint strict,
                               MqttDisconnectResult* out) noexcept nogil:
    cdef Py_ssize_t pos, end, at, limit, id_at, next_at
    cdef Py_ssize_t deferred_at = -1
    cdef uint64_t remaining, length, number
    cdef uint64_t seen = 0
    cdef int code
    out.size = 0
    out.error_offset = 0
    out.answer = 0
    out.reason_code = 0
    out.version = version
    out.has_session_expiry = 0
    out.session_expiry_interval = 0
    out.reason_string_at = -1
    out.reason_string_length = 0
    out.server_reference_at = -1
    out.server_reference_length = 0
    out.user_properties = 0
    out.properties_at = -1
    out.properties_length = 0
    if size < 1:
        out.size = 2
        return CLOSECODEC_INCOMPLETE
    # The fixed header (MQTT 5 §2.1), checked in decode_mqtt_packet's order.
    if data[0] >> 4 == 0:
        return parse_error(&out.error_offset, &out.answer, 0, MALFORMED)
    if data[0] >> 4 != PACKET_DISCONNECT:
        return CLOSECODEC_WRONG_TYPE
    if data[0] & 0x0F:
        return parse_error(&out.error_offset, &out.answer, 0, MALFORMED)
    pos = vbi_parse(data, 1, size, &remaining, &out.error_offset)
    if pos == -2:
        out.answer = MALFORMED
        return CLOSECODEC_MALFORMED
    if pos == -1:
        return CLOSECODEC_INCOMPLETE
    if <uint64_t>(size - pos) < remaining:
        out.size = pos + <Py_ssize_t>remaining
        return CLOSECODEC_INCOMPLETE
    end = pos + <Py_ssize_t>remaining
    out.size = end
    if pos == end:
        return CLOSECODEC_OK
    # MQTT 5 §3.14.2: reason code [Property Length, properties]; 3.1.1 has no body.
    if version == 4:
        return parse_error(&out.error_offset, &out.answer, pos, MALFORMED)
    out.version = 5
    code = data[pos]
    out.reason_code = code
    if strict and not DISCONNECT_CODE_ALLOWED[code]:
        deferred_at = pos
    at = pos + 1
    if at < end:
        next_at = vbi_parse(data, at, end, &length, &out.error_offset)
        if next_at == -2:
            out.answer = MALFORMED
            return CLOSECODEC_MALFORMED
        if next_at == -1 or <uint64_t>(end - next_at) < length:
            return parse_error(&out.error_offset, &out.answer, at, MALFORMED)
        out.properties_at = next_at
        out.properties_length = <Py_ssize_t>length
        limit = next_at + <Py_ssize_t>length
        at = next_at
        while at < limit:
            id_at = at
            at = vbi_parse(data, at, limit, &number, &out.error_offset)
            if at == -2:
                out.answer = MALFORMED
                return CLOSECODEC_MALFORMED
            if at == -1 or number >= PROPERTY_SLOTS or not PROPERTY_FLAGS[number] & IN_DISCONNECT:
                return parse_error(&out.error_offset, &out.answer, id_at, MALFORMED)
            if PROPERTY_KIND[number] == KIND_U32:  # SESSION_EXPIRY_INTERVAL
                if limit - at < 4:
                    return parse_error(&out.error_offset, &out.answer, at, MALFORMED)
                out.has_session_expiry = 1
                out.session_expiry_interval = (
                    <uint32_t>data[at] << 24 | <uint32_t>data[at + 1] << 16 | <uint32_t>data[at + 2] << 8 | data[at + 3]
                )
                at += 4
            else:
                next_at = string_parse(data, at, limit, &out.error_offset)
                if next_at == -2:
                    out.answer = MALFORMED
                    return CLOSECODEC_MALFORMED
                if PROPERTY_KIND[number] == KIND_PAIR:  # USER_PROPERTY: a second string
                    next_at = string_parse(data, next_at, limit, &out.error_offset)
                    if next_at == -2:
                        out.answer = MALFORMED
                        return CLOSECODEC_MALFORMED
                    out.user_properties += 1
                elif number == 0x1F:  # REASON_STRING
                    out.reason_string_at = at + 2
                    out.reason_string_length = next_at - at - 2
                else:  # SERVER_REFERENCE
                    out.server_reference_at = at + 2
                    out.server_reference_length = next_at - at - 2
                at = next_at
            if seen & (<uint64_t>1 << number) and PROPERTY_KIND[number] != KIND_PAIR and deferred_at < 0:
                deferred_at = id_at  # §3.14.2.2: a protocol error, raised once the packet parsed
            seen |= <uint64_t>1 << number
        if at != end:
            return parse_error(&out.error_offset, &out.answer, at, MALFORMED)
    if deferred_at >= 0:
        return parse_error(&out.error_offset, &out.answer, deferred_at, PROTOCOL_ERROR)
    return CLOSECODEC_OK


cdef object mqtt_packet_from(const unsigned char* data, Py_ssize_t size, object version, bint strict, Py_ssize_t* end):
    """The packet at ``data``, as ``decode_mqtt_packet(..., version=..., strict=...)`` returns it; ``end[0]``: its size."""
    cdef Py_ssize_t pos, stop
    cdef uint64_t remaining
    cdef int number, flags
    cdef MqttOtherPacket other
    if version is not None and version not in (4, 5):
        raise ValueError(f"version must be 4, 5 or None, not {version!r}")
    if size < 1:
        raise IncompleteError("MQTT fixed header", 0)
    number = data[0] >> 4
    flags = data[0] & 0x0F
    if number == 0:
        raise MqttPacketError("reserved packet type 0", 0)
    if flags and (number == PACKET_DISCONNECT or number == PACKET_CONNACK):
        raise MqttPacketError(f"{PACKET_TYPES[number].name} flags 0x{flags:X} are not 0", 0)
    pos = read_vbi(data, 1, size, "Remaining Length", &remaining)
    if pos < 0:
        raise IncompleteError("MQTT fixed header", 0)
    if <uint64_t>(size - pos) < remaining:
        raise IncompleteError("MQTT packet", 0)
    stop = pos + <Py_ssize_t>remaining
    end[0] = stop
    if number == PACKET_DISCONNECT:
        return read_disconnect(data, pos, stop, version, strict)
    if number == PACKET_CONNACK:
        return read_connack(data, pos, stop, version, strict)
    other = MqttOtherPacket.__new__(MqttOtherPacket)
    other.packet_type = PACKET_TYPES[number]
    other.flags = flags
    other.body = PyBytes_FromStringAndSize(<const char*>data + pos, stop - pos)
    return other
