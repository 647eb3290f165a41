# WebSocket (RFC 6455), compiled: the frame codec, the stream decoder and the HTTP
# upgrade head. Same names, results and errors as _py.py beside it, whose docstring
# records the decisions both follow (docs/transports.md, docs/streaming.md).
#
# Every read is preceded by an explicit comparison with the size of the buffer
# (or of the frame or head being read), so indexing below never needs Cython's
# own bounds checks: boundscheck/wraparound are off for that reason only.
# cython: boundscheck=False, wraparound=False

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DecodeLatin1, PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memchr, memcpy

from closecodec.buffer._c cimport (
    CLOSECODEC_INCOMPLETE,
    CLOSECODEC_MALFORMED,
    CLOSECODEC_OK,
    CLOSECODEC_WRONG_TYPE,
    KEEP_BUFFER,
    SHAPE_OFFSETS,
    SHAPE_SPANS,
    SHAPE_VALUES,
    Reader,
    Stream,
    check_limit,
    open_reader,
    parse_error,
    shifted,
    utf8_invalid_at,
)
from closecodec.websocket.values cimport WebSocketClose, WebSocketFrame, WebSocketHeader, WebSocketMessage

from operator import index

from closecodec.buffer import DEFAULT_MAX_MESSAGE_SIZE
from closecodec.errors import DecodeError, EncodeError, IncompleteError, WebSocketFrameError
from closecodec.reasons import WEBSOCKET_CLOSE_CODES_ON_WIRE, WebSocketCloseCode
from closecodec.websocket.values import WebSocketOpcode

__all__ = [
    "DEFAULT_MAX_WS_PAYLOAD",
    "WebSocketStream",
    "decode_ws_frame",
    "decode_ws_header",
    "encode_ws_frame",
    "parse_http_head",
    "unmask_ws_payload",
    "ws_tile",
]

#: Default ``max_payload`` of :func:`decode_ws_frame`: 16 MiB.
DEFAULT_MAX_WS_PAYLOAD = 16 * 1024 * 1024

cdef enum:
    # Above this many bytes the unmask loop runs without the GIL.
    NOGIL_UNMASK = 4096
    OPCODE_CLOSE = 8

cdef tuple OPCODES = tuple([WebSocketOpcode(op) if opcode_defined(op) else None for op in range(16)])
cdef tuple RSV_VALUES = tuple(range(8))
# Enum values are looked up once and kept: the enum constructors are slow.
# Filled on first use, so that no pseudo-member exists before it is met.
cdef list CLOSE_CODES = [None] * 4000  # 1000..4999, every code allowed on the wire


cdef inline object close_code(int code):
    cached = CLOSE_CODES[code - 1000]
    if cached is None:
        cached = CLOSE_CODES[code - 1000] = WebSocketCloseCode(code)
    return cached


# reasons.WEBSOCKET_CLOSE_CODES_ON_WIRE, the ranges a close frame's code may be in (the rule is
# written there, once), copied into C at import.
cdef enum:
    MAX_CLOSE_CODE_RANGES = 8
cdef int CLOSE_CODE_LOW[MAX_CLOSE_CODE_RANGES]
cdef int CLOSE_CODE_HIGH[MAX_CLOSE_CODE_RANGES]
cdef int CLOSE_CODE_RANGES = 0


cdef int init_close_codes() except -1:
    global CLOSE_CODE_RANGES
    if len(WEBSOCKET_CLOSE_CODES_ON_WIRE) > MAX_CLOSE_CODE_RANGES:
        raise ImportError("reasons.WEBSOCKET_CLOSE_CODES_ON_WIRE has more ranges than websocket/_c.pyx holds")
    for low, high in WEBSOCKET_CLOSE_CODES_ON_WIRE:
        CLOSE_CODE_LOW[CLOSE_CODE_RANGES] = low
        CLOSE_CODE_HIGH[CLOSE_CODE_RANGES] = high
        CLOSE_CODE_RANGES += 1
    return 0


init_close_codes()


cdef inline bint close_code_allowed(int code) noexcept nogil:
    cdef int i
    for i in range(CLOSE_CODE_RANGES):
        if CLOSE_CODE_LOW[i] <= code <= CLOSE_CODE_HIGH[i]:
            return True
    return False


# What a header or a close body breaks: the nogil parsers below find it, and the Python-level
# decoders raise it with its message (ws_header_error, close_body_error).
cdef enum:
    WS_SHORT = 1  # not all of it is here yet
    WS_RESERVED_OPCODE
    WS_RSV_BITS
    WS_FRAGMENTED_CONTROL
    WS_MASKING
    WS_CONTROL_TOO_LONG
    WS_LENGTH_TOP_BIT
    WS_LENGTH_NOT_SHORTEST
    WS_OVER_LIMIT
    CLOSE_ONE_BYTE
    CLOSE_CODE_REFUSED
    CLOSE_REASON_NOT_UTF8


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


cdef inline int ws_header_parse(
    const unsigned char* data, Py_ssize_t start, Py_ssize_t size, int expect_masked, int rsv_allowed,
    bint minimal_length, int64_t max_payload, WsHeader* h, Py_ssize_t* at,
) noexcept nogil:
    """The header at ``data[start:size]``, in RFC 6455 §5.2's layout, into ``h``; ``expect_masked`` is -1
    for either, ``max_payload`` -1 for no limit. 0, or what is wrong (WS_*) and where (``at[0]``); fields
    are set as they are read, so a problem's fields are there for its message."""
    cdef unsigned char byte0, byte1
    cdef Py_ssize_t pos, length_at
    cdef int width, j
    cdef uint64_t length
    cdef bint control
    at[0] = start
    h.masked = 0
    h.length = 0
    if size - start < 2:
        return WS_SHORT
    byte0 = data[start]
    h.fin = byte0 & 0x80 != 0
    h.rsv = (byte0 >> 4) & 0x07
    h.opcode = byte0 & 0x0F
    if not opcode_defined(h.opcode):
        return WS_RESERVED_OPCODE
    control = h.opcode >= 8
    if h.rsv & ~(0 if control else rsv_allowed):
        return WS_RSV_BITS
    if control and not h.fin:
        return WS_FRAGMENTED_CONTROL
    byte1 = data[start + 1]
    h.masked = byte1 & 0x80 != 0
    at[0] = start + 1
    if expect_masked >= 0 and h.masked != expect_masked:
        return WS_MASKING
    length = byte1 & 0x7F
    h.length = length
    if control and length > MAX_CONTROL_PAYLOAD:
        return WS_CONTROL_TOO_LONG
    pos = start + 2
    length_at = start + 1
    if length >= 126:
        width = 2 if length == 126 else 8
        length_at = pos
        at[0] = pos
        if width == 8 and pos < size and data[pos] & 0x80:
            return WS_LENGTH_TOP_BIT
        if size - pos < width:
            at[0] = start
            return WS_SHORT
        length = 0
        for j in range(width):
            length = (length << 8) | data[pos + j]
        h.length = length
        if minimal_length and length < (126 if width == 2 else 0x10000):
            return WS_LENGTH_NOT_SHORTEST
        pos += width
    if max_payload >= 0 and length > <uint64_t>max_payload:
        at[0] = length_at
        return WS_OVER_LIMIT
    if h.masked:
        if size - pos < 4:
            at[0] = start
            return WS_SHORT
        memcpy(h.key, data + pos, 4)
        pos += 4
    h.payload_at = pos
    return 0


cdef int read_ws_header(
    const unsigned char* data, Py_ssize_t start, Py_ssize_t size, int expect_masked, int rsv_allowed,
    bint minimal_length, int64_t max_payload, int64_t base, WsHeader* h,
) except -1:
    """ws_header_parse, raising what is wrong. An error's offset is ``base`` plus its position in
    ``data`` (a stream passes where ``data`` starts in it)."""
    cdef Py_ssize_t at
    cdef int problem = ws_header_parse(data, start, size, expect_masked, rsv_allowed, minimal_length, max_payload,
                                       h, &at)
    if problem:
        raise ws_header_error(problem, h, base + at, expect_masked, max_payload)
    return 0


cdef object ws_header_error(int problem, WsHeader* h, int64_t offset, int expect_masked, int64_t max_payload):
    if problem == WS_SHORT:
        return IncompleteError("WebSocket frame header", offset)
    if problem == WS_RESERVED_OPCODE:
        message = f"reserved opcode {h.opcode}"
    elif problem == WS_RSV_BITS:
        what = "on a control frame" if h.opcode >= 8 else "and no negotiated extension allows them"
        message = f"RSV bits {h.rsv:#x} are set {what}"
    elif problem == WS_FRAGMENTED_CONTROL:
        message = f"control frame (opcode {h.opcode}) is fragmented (FIN clear)"
    elif problem == WS_MASKING:
        message = ("unmasked frame where masking is required" if expect_masked
                   else "masked frame where masking is forbidden")
    elif problem == WS_CONTROL_TOO_LONG:
        message = "control frame payload longer than 125 bytes"
    elif problem == WS_LENGTH_TOP_BIT:
        message = "64-bit payload length has its most significant bit set"
    elif problem == WS_LENGTH_NOT_SHORTEST:
        message = f"payload length {h.length} is not in its shortest form"
    else:  # WS_OVER_LIMIT
        return WebSocketFrameError(f"payload of {h.length} bytes is over the {max_payload}-byte limit", offset, 1009)
    return WebSocketFrameError(message, offset)


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
    cdef Py_ssize_t end
    cdef int64_t limit
    open_reader(&r, buf, offset, &view)
    try:
        limit = payload_limit(max_payload)  # first, as in decode_ws_header and the pure twin
        frame = read_frame(r.data, r.pos, r.size, masked_side(expect_masked), rsv_mask(rsv_allowed), minimal_length,
                           limit, &end)
        return frame, end
    finally:
        PyBuffer_Release(&view)


cdef object read_frame(const unsigned char* data, Py_ssize_t start, Py_ssize_t size, int expect_masked,
                       int rsv_allowed, bint minimal_length, int64_t max_payload, Py_ssize_t* end):
    """The whole frame at ``data[start:size]`` (offsets in errors are from ``data``); ``end[0]``: where it ends."""
    cdef WsHeader h
    cdef Py_ssize_t length
    cdef WebSocketFrame frame
    read_ws_header(data, start, size, expect_masked, rsv_allowed, minimal_length, max_payload, 0, &h)
    if <uint64_t>(size - h.payload_at) < h.length:
        raise IncompleteError("WebSocket frame payload", start)
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


cdef inline int close_body_parse(const unsigned char* body, Py_ssize_t length, int* code,
                                 Py_ssize_t* at) noexcept nogil:
    """A close body (RFC 6455 §5.5.1, §7.4), unmasked: 0, or what is wrong (CLOSE_*) and where in the
    body (``at[0]``). ``code[0]``: the status code, or -1 for an empty body (1005, "no status")."""
    code[0] = -1
    at[0] = 0
    if length == 0:
        return 0
    if length == 1:  # a status code takes 2 bytes
        return CLOSE_ONE_BYTE
    code[0] = body[0] << 8 | body[1]
    if not close_code_allowed(code[0]):
        return CLOSE_CODE_REFUSED
    at[0] = utf8_invalid_at(body + 2, length - 2)
    if at[0] >= 0:  # §8.1
        at[0] += 2
        return CLOSE_REASON_NOT_UTF8
    at[0] = 0
    return 0


cdef WebSocketClose read_close(const unsigned char* src, Py_ssize_t length, Py_ssize_t pos, WsHeader* h):
    """A close frame's body, at most 125 bytes at ``src`` (``pos`` in the input): unmasked on the stack,
    then read by close_body_parse."""
    cdef unsigned char body[MAX_CONTROL_PAYLOAD]
    cdef const unsigned char* p = src
    cdef int code
    cdef Py_ssize_t at
    cdef WebSocketClose close = WebSocketClose.__new__(WebSocketClose)
    if h.masked:
        xor_mask(src, body, length, h.key)
        p = body
    problem = close_body_parse(p, length, &code, &at)
    if problem == CLOSE_ONE_BYTE:
        raise WebSocketFrameError("close payload of 1 byte (a status code takes 2)", pos)
    if problem == CLOSE_CODE_REFUSED:
        raise WebSocketFrameError(f"close code {code} may not be sent in a close frame", pos)
    if problem == CLOSE_REASON_NOT_UTF8:
        raise WebSocketFrameError("invalid UTF-8 in the close reason", pos + at, 1007)
    close.mask_key = PyBytes_FromStringAndSize(<char*>h.key, 4) if h.masked else None
    close.code = None if code < 0 else close_code(code)
    close.reason = PyUnicode_DecodeUTF8(<const char*>p + 2, length - 2, NULL) if length else ""
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


# -- C-level API for protocol stacks (docs/streaming.md) ------------------------------
#
# ws_close_parse reads one close frame from a pointer and a length without the GIL: it
# never raises and never touches a Python object. Its verdict and error offset are those
# of decode_ws_frame on the same bytes (tests/test_c_api.py checks it); ws_frame_from
# returns the very value, and raises the very error, of that decoder.


cdef int ws_close_parse(const unsigned char* data, Py_ssize_t size, int expect_masked, WsCloseResult* out) noexcept nogil:
    cdef unsigned char body[MAX_CONTROL_PAYLOAD]
    cdef WsHeader h
    cdef int opcode, problem
    cdef Py_ssize_t length, at
    out.size = 0
    out.error_offset = 0
    out.answer = 0
    out.code = -1
    out.masked = 0
    out.reason_length = 0
    if size < 2:
        out.size = 2
        return CLOSECODEC_INCOMPLETE
    opcode = data[0] & 0x0F
    if opcode != OPCODE_CLOSE and opcode_defined(opcode):
        return CLOSECODEC_WRONG_TYPE
    # The header as decode_ws_frame reads it (a close frame is a control frame: at most 125 bytes).
    problem = ws_header_parse(data, 0, size, expect_masked, 0, True, -1, &h, &at)
    out.masked = h.masked
    if problem == WS_SHORT:  # only the masking key can be missing: the length is known
        out.size = (6 if h.masked else 2) + <Py_ssize_t>h.length
        return CLOSECODEC_INCOMPLETE
    if problem:
        return parse_error(&out.error_offset, &out.answer, at, 1002)
    length = <Py_ssize_t>h.length
    out.size = h.payload_at + length
    if size < out.size:
        return CLOSECODEC_INCOMPLETE
    if h.masked:
        memcpy(out.mask_key, h.key, 4)
        xor_mask(data + h.payload_at, body, length, h.key)
    else:
        memcpy(body, data + h.payload_at, length)
    problem = close_body_parse(body, length, &out.code, &at)
    if problem:
        out.code = -1
        return parse_error(&out.error_offset, &out.answer, h.payload_at + at,
                           1007 if problem == CLOSE_REASON_NOT_UTF8 else 1002)
    if length:
        out.reason_length = length - 2
        memcpy(out.reason, body + 2, length - 2)
    return CLOSECODEC_OK


cdef object ws_frame_from(const unsigned char* data, Py_ssize_t size, int expect_masked, Py_ssize_t* end):
    """The frame at ``data``, as ``decode_ws_frame(..., expect_masked=...)`` returns it; ``end[0]``: its size."""
    return read_frame(data, 0, size, expect_masked, 0, True, DEFAULT_MAX_WS_PAYLOAD, end)


# -- the stream decoder (docs/streaming.md) --------------------------------------------


cdef inline Py_ssize_t ws_header_size(unsigned char byte1) noexcept nogil:
    """The header's size from its second byte (RFC 6455 §5.2)."""
    cdef Py_ssize_t size = 6 if byte1 & 0x80 else 2
    byte1 &= 0x7F
    if byte1 == 126:
        size += 2
    elif byte1 == 127:
        size += 8
    return size


cdef inline void unmask_from(const unsigned char* src, unsigned char* dst, Py_ssize_t n, const unsigned char* key,
                             uint64_t phase) noexcept nogil:
    """xor_mask for bytes that start ``phase`` bytes into the payload (RFC 6455 §5.3)."""
    cdef unsigned char rotated[4]
    cdef int j
    for j in range(4):
        rotated[j] = key[(phase + j) & 3]
    xor_mask(src, dst, n, rotated)


cdef class WebSocketStream(Stream):
    """An incremental decoder of one direction of a WebSocket connection (RFC 6455 §5).

    Feed it the bytes after the HTTP upgrade, in chunks of any size; it returns
    a :class:`WebSocketMessage` for each whole data message (its fragments
    reassembled, control frames allowed between them), a
    :class:`WebSocketFrame` for each PING and PONG and a
    :class:`WebSocketClose` for the close frame.

    States: between frames; inside a frame header (:attr:`buffered` bytes
    held); inside a payload; inside a fragmented message (:attr:`in_message`);
    closed (:attr:`closed`: a close frame was read; any byte after it is a
    protocol error, RFC 6455 §5.5.1 and §1.4); failed (:attr:`error`).

    Args:
        expect_masked: True for a server's view (client frames must be
            masked), False for a client's, None (default) to accept both.
        rsv_allowed: RSV bits a negotiated extension allows on data frames
            (RSV1 is 4); the payload is returned as it is, not inflated.
        minimal_length: refuse lengths not in their shortest form (RFC 6455 §5.2).
        max_message_size: the longest message payload (all its fragments) or
            control payload, in bytes (default 16 MiB); longer fails with close
            code 1009 as soon as the header of the frame that crosses it is read.
        closes_only: return only the close frame: data messages, pings and
            pongs are checked and delimited as usual (the same errors) but not
            returned, and their payloads are not copied. Also an attribute; a
            change applies from the next message.

    Raises (from :meth:`feed`):
        WebSocketFrameError: close code 1002 for a bad header, a continuation
            with no message to continue, a new data message before the last
            ended, a bad close body or bytes after the close frame; 1007 for a
            close reason that is not UTF-8; 1009 over ``max_message_size``.
    """

    def __init__(self, *, expect_masked=None, rsv_allowed=0, minimal_length=True,
                 max_message_size=DEFAULT_MAX_MESSAGE_SIZE, closes_only=False):
        self._rsv_allowed = rsv_mask(rsv_allowed)
        self._expect_masked = -1 if expect_masked is None else (1 if expect_masked else 0)
        self._minimal_length = bool(minimal_length)
        self._max = check_limit(max_message_size, "max_message_size")
        self.closes_only = closes_only
        self.clear()

    def __dealloc__(self):
        PyMem_Free(self._message)

    @property
    def max_message_size(self):
        """The longest message or control payload accepted, in bytes."""
        return self._max

    @property
    def closed(self):
        """Whether the close frame was read."""
        return self._closed

    @property
    def in_message(self):
        """Whether a fragmented data message is unfinished."""
        return self._in_message

    @property
    def buffered(self):
        """How many bytes the stream holds for unfinished frames and messages."""
        return self._header_len + self._message_len + self._control_len

    cdef void clear(self) noexcept:
        self._header_len = 0
        self._remaining = -1
        self._control_len = 0
        self._message_len = 0
        self._in_message = False
        self._closed = False
        if self._message_cap > KEEP_BUFFER:
            PyMem_Free(self._message)
            self._message = NULL
            self._message_cap = 0

    cdef int process(self, const unsigned char* data, Py_ssize_t n, int64_t base, list out, int shape) except -1:
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t held, need, take
        cdef int64_t start
        cdef const unsigned char* whole
        while True:
            if self._remaining < 0:
                if pos >= n:
                    return 0
                if self._closed:
                    raise WebSocketFrameError("bytes after the close frame", base + pos)
                held = self._header_len
                start = base + pos - held
                if held == 0 and n - pos >= 2 and n - pos >= ws_header_size(data[pos + 1]):
                    need = ws_header_size(data[pos + 1])  # the usual case: parsed in place
                    self.read_header(data + pos, need, start)
                    pos += need
                else:
                    # A header split across chunks: gathered, and checked as its bytes arrive.
                    need = 2 if held < 2 else ws_header_size(self._header[1])
                    take = min(need - held, n - pos)
                    memcpy(self._header + held, data + pos, take)
                    held += take
                    pos += take
                    if held >= 2 and held < ws_header_size(self._header[1]):
                        need = ws_header_size(self._header[1])
                        take = min(need - held, n - pos)
                        memcpy(self._header + held, data + pos, take)
                        held += take
                        pos += take
                    # The gathered bytes count as held only while the header is incomplete: a
                    # header that fails leaves `buffered` as it was, as in the pure twin.
                    if held < 2:
                        self._header_len = held
                        return 0
                    if held < ws_header_size(self._header[1]):
                        try:
                            read_ws_header(self._header, 0, held, self._expect_masked, self._rsv_allowed,
                                           self._minimal_length, -1, start, &self._h)
                        except IncompleteError:
                            self._header_len = held
                            return 0
                    self.read_header(self._header, held, start)
                    self._header_len = 0
                self.start_frame(start, <Py_ssize_t>(self._payload_at - start))
            whole = NULL
            if self._remaining:
                take = <Py_ssize_t>min(<uint64_t>self._remaining, <uint64_t>(n - pos))
                if take == 0:
                    return 0
                if self._h.opcode < 8 and self._skip_message:
                    self._skipped_len += take  # a data frame nobody asked for: counted past, not copied
                elif take == self._remaining and <uint64_t>self._remaining == self._h.length and (
                    self._h.opcode >= 8 or (self._h.fin and self._h.opcode != 0)
                ):
                    whole = data + pos  # the whole payload is here: no buffering
                else:
                    self.append(data + pos, take)
                pos += take
                self._remaining -= take
                if self._remaining:
                    return 0
            self._remaining = -1
            if self._h.opcode < 8 and self._skip_message:
                if self._h.fin:  # the end of a message nobody asked for: nothing to return
                    self._in_message = False
                    self._message_len = 0
                continue
            value = self.finish_frame(whole)
            if value is not None:
                if shape == SHAPE_VALUES:
                    out.append(value)
                elif shape == SHAPE_OFFSETS:
                    out.append((base + pos, value))
                else:
                    out.append((self._message_at if self._h.opcode < 8 else self._frame_at, base + pos, value))

    cdef int read_header(self, const unsigned char* data, Py_ssize_t size, int64_t start) except -1:
        # Its errors are at their stream offsets already (``start`` is where ``data`` starts).
        read_ws_header(data, 0, size, self._expect_masked, self._rsv_allowed, self._minimal_length, -1, start, &self._h)
        self._payload_at = start + self._h.payload_at
        return 0

    cdef int start_frame(self, int64_t start, Py_ssize_t header_size) except -1:
        """The checks that need the stream's state (RFC 6455 §5.4), then the limit."""
        cdef WsHeader* h = &self._h
        cdef uint64_t total = h.length
        if h.opcode < 8:
            if h.opcode == 0:
                if not self._in_message:
                    raise WebSocketFrameError("continuation frame with no message to continue", start)
                total += <uint64_t>(self._message_len + self._skipped_len)
            elif self._in_message:
                raise WebSocketFrameError(f"new {OPCODES[h.opcode].name} message before the fragmented message ended",
                                          start)
        if total > <uint64_t>self._max:
            length_at = start + (1 if header_size - (4 if h.masked else 0) == 2 else 2)
            raise WebSocketFrameError(f"payload reaches {total} bytes, over the {self._max}-byte limit", length_at, 1009)
        self._frame_at = start
        if h.opcode >= 8:
            self._control_len = 0
        elif h.opcode != 0:
            self._skip_message = self.closes_only
            self._skipped_len = 0
            self._in_message = True
            self._message_len = 0
            self._message_opcode = h.opcode
            self._message_rsv = h.rsv
            self._message_masked = h.masked
            self._message_at = start
        self._remaining = <int64_t>h.length
        return 0

    cdef int append(self, const unsigned char* data, Py_ssize_t n) except -1:
        """Payload bytes of a frame that spans chunks (or of a fragment): into the buffers."""
        cdef Py_ssize_t needed, capacity
        cdef unsigned char* grown
        cdef uint64_t phase = self._h.length - <uint64_t>self._remaining
        if self._h.opcode >= 8:  # kept as on the wire: read_close unmasks it
            memcpy(self._control + self._control_len, data, n)
            self._control_len += n
            return 0
        needed = self._message_len + n  # at most max_message_size: start_frame checked it
        if needed > self._message_cap:
            # Grown as bytes arrive, never from the length a header claims.
            capacity = max(needed, min(2 * self._message_cap, self._max), 256)
            grown = <unsigned char*>PyMem_Realloc(self._message, capacity)
            if grown is NULL:
                raise MemoryError()
            self._message = grown
            self._message_cap = capacity
        if self._h.masked:
            unmask_from(data, self._message + self._message_len, n, self._h.key, phase)
        else:
            memcpy(self._message + self._message_len, data, n)
        self._message_len = needed
        return 0

    cdef object finish_frame(self, const unsigned char* payload):
        """The value a complete frame makes, if any; ``payload`` is NULL when it was buffered. (The frames
        of a message skipped by ``closes_only`` end in :meth:`process`.)"""
        cdef WsHeader* h = &self._h
        cdef Py_ssize_t length = <Py_ssize_t>h.length
        cdef bytes data
        cdef WebSocketFrame frame
        if h.opcode >= 8:
            if payload is NULL:
                payload = self._control
            self._control_len = 0
            if h.opcode == OPCODE_CLOSE:
                try:
                    close = read_close(payload, length, 0, h)
                except DecodeError as error:
                    raise shifted(error, self._payload_at)
                self._closed = True
                return close
            if self.closes_only:
                return None
            frame = WebSocketFrame.__new__(WebSocketFrame)
            frame.opcode = OPCODES[h.opcode]
            frame.fin = True
            frame.rsv = 0
            frame.payload = PyBytes_FromStringAndSize(NULL, length)
            if h.masked:
                xor_mask(payload, <unsigned char*>PyBytes_AS_STRING(frame.payload), length, h.key)
                frame.mask_key = PyBytes_FromStringAndSize(<char*>h.key, 4)
            else:
                memcpy(PyBytes_AS_STRING(frame.payload), payload, length)
                frame.mask_key = None
            return frame
        if not h.fin:
            return None
        if payload is not NULL:
            data = PyBytes_FromStringAndSize(NULL, length)
            if h.masked:
                xor_mask(payload, <unsigned char*>PyBytes_AS_STRING(data), length, h.key)
            else:
                memcpy(PyBytes_AS_STRING(data), payload, length)
        else:
            data = PyBytes_FromStringAndSize(<char*>self._message, self._message_len)
            self._message_len = 0
            if self._message_cap > KEEP_BUFFER:
                PyMem_Free(self._message)
                self._message = NULL
                self._message_cap = 0
        self._in_message = False
        return self.on_message(self._message_opcode, data, self._message_rsv, self._message_masked, self._message_at)

    cdef object on_message(self, int opcode, bytes payload, int rsv, bint masked, int64_t start):
        cdef WebSocketMessage message = WebSocketMessage.__new__(WebSocketMessage)
        message.opcode = OPCODES[opcode]
        message.payload = payload
        message.rsv = RSV_VALUES[rsv]
        message.masked = masked
        return message


# -- mid-stream recognition (docs/capture.md) -----------------------------------------

cdef enum:
    TILE_TEXT_CHECKED_ = 1024  # as _py.TILE_TEXT_CHECKED

TILE_TEXT_CHECKED = TILE_TEXT_CHECKED_


def ws_tile(data, Py_ssize_t start, max_payload, /):
    """Whether WebSocket frames tile ``data`` from ``start`` (as _py.ws_tile, whose docstring has the rules)."""
    cdef Reader r
    cdef Py_buffer view
    cdef WsHeader h
    cdef Py_ssize_t pos, at, end, frames = 0
    cdef int masked = -1, code, problem
    cdef int64_t limit
    cdef bint fragmented = False, closed = False, compressed = False
    cdef unsigned char body[TILE_TEXT_CHECKED_]
    cdef const unsigned char* payload
    open_reader(&r, data, start, &view)
    try:
        if type(max_payload) is not int or max_payload < 0:
            raise ValueError(f"max_payload must be an int >= 0, not {max_payload!r}")
        limit = max_payload if max_payload < 0x7FFFFFFFFFFFFFFF else 0x7FFFFFFFFFFFFFFF
        pos = start
        while True:
            problem = ws_header_parse(r.data, pos, r.size, -1, 4, True, limit, &h, &at)
            if problem == WS_SHORT:
                break
            if problem or closed or (masked != -1 and masked != h.masked):
                return None
            masked = h.masked
            if h.opcode < 8:
                # A continuation outside a message is let pass first: the stream may start inside one.
                if ((h.opcode == 0) != fragmented and (h.opcode != 0 or pos != start)) or (h.rsv and h.opcode == 0):
                    return None
                if not h.fin and h.length == 0:
                    return None
                fragmented = not h.fin
                compressed = compressed or h.rsv != 0
            if <uint64_t>(r.size - h.payload_at) < h.length:
                break
            end = h.payload_at + <Py_ssize_t>h.length
            if h.opcode == 8 or (h.opcode == 1 and h.fin and not h.rsv and h.length <= TILE_TEXT_CHECKED_):
                payload = r.data + h.payload_at
                if h.masked:
                    xor_mask(payload, body, <Py_ssize_t>h.length, h.key)
                    payload = body
                if h.opcode == 8:
                    if close_body_parse(payload, <Py_ssize_t>h.length, &code, &at):
                        return None
                    closed = True
                elif utf8_invalid_at(payload, <Py_ssize_t>h.length) >= 0:
                    return None
            frames += 1
            pos = end
        return pos, frames, masked, closed, compressed, fragmented
    finally:
        PyBuffer_Release(&view)


# -- HTTP heads (WebSocket upgrades) ---------------------------------------------


cdef inline bint latin1_space(unsigned char c) noexcept nogil:
    """What str.isspace() says of the character Latin-1 decodes ``c`` to."""
    return 9 <= c <= 13 or 28 <= c <= 32 or c == 0x85 or c == 0xA0


cdef inline unsigned char latin1_lower(unsigned char c) noexcept nogil:
    """The byte of the character str.lower() makes of Latin-1 ``c`` (A-Z, and À-Þ but ×)."""
    if 65 <= c <= 90 or (0xC0 <= c <= 0xDE and c != 0xD7):
        return c + 32
    return c


cdef inline void latin1_strip(const unsigned char* v, Py_ssize_t* start, Py_ssize_t* end) noexcept nogil:
    """Narrow [start, end) of ``v`` as str.strip() would its Latin-1 text."""
    while start[0] < end[0] and latin1_space(v[start[0]]):
        start[0] += 1
    while end[0] > start[0] and latin1_space(v[end[0] - 1]):
        end[0] -= 1


cdef bint latin1_named(const unsigned char* v, Py_ssize_t start, Py_ssize_t end, tuple names):
    """Whether the lowercased Latin-1 text of [start, end) of ``v`` is one of ``names`` (bytes)."""
    cdef Py_ssize_t i
    cdef const unsigned char* name
    for item in names:
        if len(<bytes>item) != end - start:
            continue
        name = <const unsigned char*><const char*><bytes>item
        for i in range(end - start):
            if latin1_lower(v[start + i]) != name[i]:
                break
        else:
            return True
    return False


cdef str latin1_stripped(const unsigned char* v, Py_ssize_t start, Py_ssize_t end, bint lower):
    cdef unsigned char buf[256]
    cdef Py_ssize_t i
    latin1_strip(v, &start, &end)
    if not lower:
        return PyUnicode_DecodeLatin1(<const char*>v + start, end - start, NULL)
    if end - start > 256:
        return PyUnicode_DecodeLatin1(<const char*>v + start, end - start, NULL).lower()
    for i in range(end - start):
        buf[i] = latin1_lower(v[start + i])
    return PyUnicode_DecodeLatin1(<const char*>buf, end - start, NULL)


def parse_http_head(data, /, names=None):
    """A complete HTTP head at the start of ``data``: ``(first line, headers, size)``, else None.

    The head ends at the first empty line (``\\r\\n\\r\\n``; ``size`` counts
    it), is decoded as Latin-1 and split into lines at ``\\r\\n``. Headers maps
    each name (stripped, lowercased) to its value (stripped); repeated names
    are joined with ``", "``; lines without a colon are left out. ``names``, a
    tuple of lowercase names as bytes, keeps only those headers.

    Raises:
        TypeError: ``data`` is not a bytes-like object, or ``names`` not a
            tuple of bytes.
    """
    cdef Reader r
    cdef Py_buffer view
    cdef const unsigned char* v
    cdef Py_ssize_t n, end = -1, i, start, stop, colon, name_start, name_end
    cdef const unsigned char* found
    if names is not None:
        if type(names) is not tuple:
            raise TypeError("names must be a tuple of bytes")
        for name in <tuple>names:
            if type(name) is not bytes:
                raise TypeError("names must be a tuple of bytes")
    open_reader(&r, data, 0, &view)
    try:
        v, n = r.data, r.size
        # The end: the first CR LF CR LF (each CR found by memchr, then the three bytes after it checked).
        i = 0
        while i < n - 3:
            found = <const unsigned char*>memchr(v + i, 13, n - 3 - i)
            if found is NULL:
                break
            i = found - v
            if v[i + 1] == 10 and v[i + 2] == 13 and v[i + 3] == 10:
                end = i
                break
            i += 1
        if end < 0:
            return None
        headers = {}
        first = None
        start = 0
        while True:
            # The line [start, stop): up to the next CR LF before the end, or to the end.
            stop = start
            while stop < end:
                found = <const unsigned char*>memchr(v + stop, 13, end - stop)
                if found is NULL:
                    stop = end
                    break
                stop = found - v
                if stop + 1 < end and v[stop + 1] == 10:
                    break
                stop += 1
            if first is None:
                first = PyUnicode_DecodeLatin1(<const char*>v + start, stop - start, NULL)
            else:
                found = <const unsigned char*>memchr(v + start, 58, stop - start)  # ':'
                if found is not NULL:
                    colon = found - v
                    name_start, name_end = start, colon
                    latin1_strip(v, &name_start, &name_end)
                    if names is None or latin1_named(v, name_start, name_end, names):
                        key = latin1_stripped(v, name_start, name_end, True)
                        value = latin1_stripped(v, colon + 1, stop, False)
                        previous = headers.get(key)
                        headers[key] = value if previous is None else f"{previous}, {value}"
            if stop >= end:
                break
            start = stop + 2
        return first, headers, end + 4
    finally:
        PyBuffer_Release(&view)
