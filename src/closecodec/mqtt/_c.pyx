# MQTT (3.1.1 and 5.0), compiled: the packet codec, the stream decoder and the CONNECT
# that identifies MQTT on any port. Same names, results and errors as _py.py beside
# it, whose docstring records the decisions both follow (docs/transports.md).
#
# Every read is preceded by an explicit comparison with the size of the buffer
# (or of the packet / property block being read), so indexing below never needs
# Cython's own bounds checks: boundscheck/wraparound are off for that reason only.
# cython: boundscheck=False, wraparound=False

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy

from closecodec.buffer._c cimport (
    CLOSECODEC_INCOMPLETE,
    CLOSECODEC_MALFORMED,
    CLOSECODEC_OK,
    CLOSECODEC_WRONG_TYPE,
    KEEP_BUFFER,
    SHAPE_OFFSETS,
    SHAPE_VALUES,
    Reader,
    Stream,
    be16,
    be32,
    check_limit,
    open_reader,
    parse_error,
    shifted,
    utf8_invalid_at,
    varint_bytes,
)
from closecodec.mqtt.values cimport MqttConnack, MqttDisconnect, MqttOtherPacket

from closecodec.buffer import DEFAULT_MAX_MESSAGE_SIZE
from closecodec.errors import DecodeError, EncodeError, IncompleteError, MqttPacketError
from closecodec.mqtt.values import MQTT_PACKET_PROPERTIES, MQTT_PROPERTY_TYPES, MqttPacketType, MqttPropertyId
from closecodec.reasons import MqttConnackReturnCode, MqttReasonCode, mqtt_disconnect_reason_allowed

__all__ = [
    "MqttStream",
    "decode_mqtt_packet",
    "decode_mqtt_varint",
    "encode_mqtt_packet",
    "encode_mqtt_varint",
    "mqtt_tile",
    "parse_mqtt_connect",
]

cdef enum:
    MAX_VBI = 268435455
    MALFORMED = 0x81
    PROTOCOL_ERROR = 0x82
    PACKET_TOO_LARGE = 0x95
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

cdef object USER_PROPERTY = MqttPropertyId.USER_PROPERTY
cdef object DISCONNECT = MqttPacketType.DISCONNECT
cdef object CONNACK = MqttPacketType.CONNACK
cdef tuple PACKET_TYPES = tuple([None] + [MqttPacketType(n) for n in range(1, 16)])
cdef list PROPERTY_IDS = [None] * PROPERTY_SLOTS
cdef unsigned char PROPERTY_KIND[PROPERTY_SLOTS]
cdef unsigned char PROPERTY_FLAGS[PROPERTY_SLOTS]
# Enum values are looked up once and kept: the enum constructors are slow.
# Filled on first use, so that no pseudo-member exists before it is met.
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


# -- the rules, once, without the GIL ----------------------------------------------------
#
# The *_parse functions below never raise and never touch a Python object: they say what
# is wrong (an MQ_* problem) and where. The Python-level decoders raise those problems with
# their messages (mqtt_error); the C-level API (mqtt_disconnect_parse) returns them as
# statuses. So each rule of the fixed header, the Variable Byte Integer, the strings and
# the properties is written here once.

cdef enum:
    MQ_SHORT = 1  # runs past the end of what is here
    MQ_VBI_LONG  # a Variable Byte Integer over 4 bytes
    MQ_VBI_NOT_SHORTEST
    MQ_RESERVED_TYPE
    MQ_FLAGS
    MQ_PROPERTIES_LONG  # a Property Length past the end of the packet
    MQ_UNKNOWN_PROPERTY
    MQ_PROPERTY_NOT_ALLOWED
    MQ_VALUE_SHORT  # a property value past the end of the properties
    MQ_NOT_UTF8
    MQ_NUL
    MQ_V311_BODY  # an MQTT 3.1.1 DISCONNECT with a body
    MQ_TRAILING  # bytes after the end of what the packet holds
    # Protocol errors (0x82), raised once the whole packet has parsed.
    MQ_NOT_BOOLEAN
    MQ_ZERO
    MQ_REPEATED
    MQ_REASON_REFUSED  # a reason code the packet may not carry (strict)


# reasons.mqtt_disconnect_reason_allowed, as a table (the rule is written there, once).
cdef bint DISCONNECT_CODE_ALLOWED[256]


cdef void init_disconnect_codes():
    cdef int code
    for code in range(256):
        DISCONNECT_CODE_ALLOWED[code] = mqtt_disconnect_reason_allowed(code)


init_disconnect_codes()


cdef inline Py_ssize_t vbi_parse(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, uint64_t* out,
                                 Py_ssize_t* error_offset) noexcept nogil:
    """A Variable Byte Integer (MQTT 5 §1.5.5): at most 4 bytes, shortest form. The next offset, -1 past
    ``end``, -2 malformed (at ``error_offset``: its 4th byte with the continuation bit, or a 0 byte
    after the first)."""
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


cdef inline int vbi_problem(const unsigned char* data, Py_ssize_t at) noexcept nogil:
    """Which rule the Variable Byte Integer that vbi_parse refused at ``at`` broke."""
    return MQ_VBI_LONG if data[at] & 0x80 else MQ_VBI_NOT_SHORTEST


cdef Py_ssize_t read_vbi(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, str what, uint64_t* out) except -2:
    """vbi_parse, raising: the offset after it, or -1 when it runs past ``end``."""
    cdef Py_ssize_t at = 0
    cdef Py_ssize_t next_at = vbi_parse(data, pos, end, out, &at)
    if next_at == -2:
        raise mqtt_error(vbi_problem(data, at), at, what)
    return next_at


cdef inline int value_width(int kind) noexcept nogil:
    """The bytes of a Byte, Two Byte or Four Byte Integer property (MQTT 5 §1.5, §2.2.2.2): the only
    integers a CONNACK or DISCONNECT carries."""
    return 1 if kind == KIND_BYTE else 2 if kind == KIND_U16 else 4


cdef inline int fixed_header_parse(const unsigned char* data, Py_ssize_t start, Py_ssize_t size, int* number,
                                   uint64_t* remaining, Py_ssize_t* pos) noexcept nogil:
    """The fixed header (MQTT 5 §2.1) at ``data[start:size]``: 0, or what is wrong and where (``pos[0]``).
    On success ``pos[0]`` is where the packet's body starts."""
    cdef Py_ssize_t at
    pos[0] = start
    if start >= size:
        return MQ_SHORT
    number[0] = data[start] >> 4
    if number[0] == 0:
        return MQ_RESERVED_TYPE
    if data[start] & 0x0F and (number[0] == PACKET_DISCONNECT or number[0] == PACKET_CONNACK):
        return MQ_FLAGS
    at = vbi_parse(data, start + 1, size, remaining, pos)
    if at == -2:
        return vbi_problem(data, pos[0])
    if at == -1:
        pos[0] = start
        return MQ_SHORT
    pos[0] = at
    return 0


cdef inline int string_parse(const unsigned char* data, Py_ssize_t* at, Py_ssize_t limit) noexcept nogil:
    """A UTF-8 Encoded String (MQTT 5 §1.5.4): 2-byte length, strict UTF-8, no U+0000. 0 and ``at[0]``
    moved past it, or what is wrong and where (``at[0]``)."""
    cdef Py_ssize_t pos = at[0]
    cdef Py_ssize_t length, bad
    cdef const void* nul
    if limit - pos < 2 or limit - pos - 2 < (data[pos] << 8 | data[pos + 1]):
        return MQ_VALUE_SHORT
    length = data[pos] << 8 | data[pos + 1]
    bad = utf8_invalid_at(data + pos + 2, length)
    if bad >= 0:
        at[0] = pos + 2 + bad
        return MQ_NOT_UTF8
    nul = memchr(data + pos + 2, 0, length)  # in valid UTF-8, a zero byte is U+0000 and nothing else
    if nul != NULL:
        at[0] = <const unsigned char*>nul - data
        return MQ_NUL
    at[0] = pos + 2 + length
    return 0


cdef struct PropertyWalk:
    # What is wrong (MQ_*), where, and about which property (its identifier, and its value for MQ_NOT_BOOLEAN;
    # the Property Length for MQ_PROPERTIES_LONG).
    int problem
    Py_ssize_t at
    uint64_t number
    uint64_t value
    # The first protocol error (0x82), likewise: raised once the whole packet has parsed.
    int deferred
    Py_ssize_t deferred_at
    uint64_t deferred_number
    uint64_t deferred_value
    # Where the properties start and end, which identifiers were seen (a bit each), and where the last
    # value of each one seen starts.
    Py_ssize_t start
    Py_ssize_t end
    uint64_t seen
    Py_ssize_t user_properties
    Py_ssize_t value_at[PROPERTY_SLOTS]


cdef inline void walk_defer(PropertyWalk* w, int problem, Py_ssize_t at, uint64_t number,
                            uint64_t value) noexcept nogil:
    if not w.deferred:
        w.deferred, w.deferred_at, w.deferred_number, w.deferred_value = problem, at, number, value


cdef int properties_parse(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, int packet,
                          PropertyWalk* w) noexcept nogil:
    """Property Length and the properties (MQTT 5 §2.2.2) of a CONNACK or DISCONNECT at ``data[pos:end]``:
    w.problem (0, or a malformed problem, which ends the walk at once), and the first deferred one."""
    cdef uint64_t length, number, value
    cdef Py_ssize_t at, limit, id_at, size
    cdef int kind, flags, width, j, problem
    cdef unsigned char allowed_flag = IN_DISCONNECT if packet == PACKET_DISCONNECT else IN_CONNACK
    w.problem = w.deferred = 0
    w.number = 0  # not a property's: the Property Length's (PROPERTY_SLOTS: an identifier's)
    w.user_properties = 0
    w.seen = 0
    at = vbi_parse(data, pos, end, &length, &w.at)
    if at == -2:
        w.problem = vbi_problem(data, w.at)
        return w.problem
    if at == -1:
        w.problem, w.at = MQ_SHORT, pos
        return w.problem
    if <uint64_t>(end - at) < length:
        w.problem, w.at, w.value = MQ_PROPERTIES_LONG, pos, length
        return w.problem
    w.start = at
    limit = at + <Py_ssize_t>length
    while at < limit:
        id_at = at
        at = vbi_parse(data, id_at, limit, &number, &w.at)
        if at == -2:
            w.problem = vbi_problem(data, w.at)
            w.number = PROPERTY_SLOTS  # the identifier itself
            return w.problem
        w.at, w.number = id_at, number
        if at == -1:
            w.problem, w.number = MQ_SHORT, PROPERTY_SLOTS
            return w.problem
        if number >= PROPERTY_SLOTS or PROPERTY_KIND[number] == KIND_NONE:
            w.problem = MQ_UNKNOWN_PROPERTY
            return w.problem
        flags = PROPERTY_FLAGS[number]
        if not flags & allowed_flag:
            w.problem = MQ_PROPERTY_NOT_ALLOWED
            return w.problem
        kind = PROPERTY_KIND[number]
        w.value_at[number] = at
        if kind == KIND_UTF8 or kind == KIND_PAIR:
            w.at = at
            problem = string_parse(data, &w.at, limit)
            if not problem and kind == KIND_PAIR:
                problem = string_parse(data, &w.at, limit)
                w.user_properties += 1
            if problem:
                w.problem = problem
                return problem
            at = w.at
        elif kind == KIND_BINARY:
            if limit - at < 2 or limit - at - 2 < (data[at] << 8 | data[at + 1]):
                w.problem, w.at = MQ_VALUE_SHORT, at
                return w.problem
            at += 2 + (data[at] << 8 | data[at + 1])
        else:
            width = value_width(kind)
            if limit - at < width:
                w.problem, w.at = MQ_VALUE_SHORT, at
                return w.problem
            value = 0
            for j in range(width):
                value = (value << 8) | data[at + j]
            if flags & VALUE_BOOLEAN and value > 1:
                walk_defer(w, MQ_NOT_BOOLEAN, at, number, value)
            elif flags & VALUE_NONZERO and value == 0:
                walk_defer(w, MQ_ZERO, at, number, value)
            at += width
        if w.seen & (<uint64_t>1 << number) and kind != KIND_PAIR:
            walk_defer(w, MQ_REPEATED, id_at, number, 0)
        w.seen |= <uint64_t>1 << number
    w.end = at
    return 0


cdef int disconnect_parse(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, int version, bint strict,
                          PropertyWalk* w) noexcept nogil:
    """A DISCONNECT's body at ``data[pos:end]`` (MQTT 5 §3.14.2: [reason code [Property Length,
    properties]]; 3.1.1: none; ``version`` 4, 5 or 0 for not known): w.problem and w.at, and the first
    protocol error, deferred. Its properties are at w.start..w.end when ``end - pos > 1``."""
    cdef bint refused
    w.problem = w.deferred = 0
    w.seen = 0
    w.user_properties = 0
    w.start = w.end = end
    if pos == end:
        return 0
    if version == 4:
        w.problem, w.at = MQ_V311_BODY, pos
        return w.problem
    refused = strict and not DISCONNECT_CODE_ALLOWED[data[pos]]
    if end - pos > 1:
        if properties_parse(data, pos + 1, end, PACKET_DISCONNECT, w):
            return w.problem
        if w.end != end:
            w.problem, w.at = MQ_TRAILING, w.end
            return w.problem
    if refused:  # before the properties in the packet, so before their protocol errors
        w.deferred, w.deferred_at, w.deferred_number = MQ_REASON_REFUSED, pos, data[pos]
    return 0


cdef str property_name(uint64_t number):
    return f"{PROPERTY_IDS[number].name} (0x{number:02X})"


cdef object mqtt_error(int problem, Py_ssize_t at, str what, uint64_t value=0):
    """The MqttPacketError of a problem: ``what`` names the thing it is about."""
    if problem == MQ_VBI_LONG:
        return MqttPacketError(f"{what} is longer than 4 bytes", at)
    if problem == MQ_VBI_NOT_SHORTEST:
        return MqttPacketError(f"{what} is not in its shortest form", at)
    if problem == MQ_RESERVED_TYPE:
        return MqttPacketError("reserved packet type 0", at)
    if problem == MQ_FLAGS:
        return MqttPacketError(f"{what} flags 0x{value:X} are not 0", at)
    if problem == MQ_PROPERTIES_LONG:
        return MqttPacketError(f"properties of {value} bytes run past the end of the packet", at)
    if problem == MQ_UNKNOWN_PROPERTY:
        return MqttPacketError(f"unknown property identifier 0x{value:02X}", at)
    if problem == MQ_PROPERTY_NOT_ALLOWED:
        return MqttPacketError(f"property {property_name(value)} is not allowed in {what}", at)
    if problem == MQ_NOT_UTF8:
        return MqttPacketError(f"invalid UTF-8 in {what}", at)
    if problem == MQ_NUL:
        return MqttPacketError(f"U+0000 in {what}", at)
    return MqttPacketError(f"{what} runs past the end of the properties", at)  # MQ_VALUE_SHORT


cdef object header_error(int problem, Py_ssize_t at, int number, int flags):
    """The MqttPacketError of a fixed_header_parse problem."""
    if problem == MQ_FLAGS:
        return mqtt_error(problem, at, PACKET_TYPES[number].name, flags)
    return mqtt_error(problem, at, "Remaining Length")


cdef object walk_error(PropertyWalk* w, str packet_name):
    """The MqttPacketError of a properties_parse problem."""
    if w.problem == MQ_SHORT:
        if w.number == PROPERTY_SLOTS:
            return MqttPacketError("property identifier runs past the end of the properties", w.at)
        return MqttPacketError("Property Length runs past the end of the packet", w.at)
    if w.problem == MQ_VBI_LONG or w.problem == MQ_VBI_NOT_SHORTEST:
        return mqtt_error(w.problem, w.at, "property identifier" if w.number == PROPERTY_SLOTS else "Property Length")
    if w.problem == MQ_PROPERTIES_LONG or w.problem == MQ_UNKNOWN_PROPERTY:
        return mqtt_error(w.problem, w.at, "", w.value if w.problem == MQ_PROPERTIES_LONG else w.number)
    if w.problem == MQ_PROPERTY_NOT_ALLOWED:
        return mqtt_error(w.problem, w.at, packet_name, w.number)
    return mqtt_error(w.problem, w.at, property_name(w.number))


cdef object deferred_error(PropertyWalk* w):
    """The protocol error (0x82) properties_parse deferred."""
    if w.deferred == MQ_REASON_REFUSED:
        return MqttPacketError(f"reason code 0x{w.deferred_number:02X} is not a DISCONNECT reason code", w.deferred_at,
                               PROTOCOL_ERROR)
    name = property_name(w.deferred_number)
    if w.deferred == MQ_NOT_BOOLEAN:
        message = f"{name} is {w.deferred_value}, not 0 or 1"
    elif w.deferred == MQ_ZERO:
        message = f"{name} is 0"
    else:  # MQ_REPEATED
        message = f"property {name} appears more than once"
    return MqttPacketError(message, w.deferred_at, PROTOCOL_ERROR)


# -- the Python-level decoders and encoders ---------------------------------------------


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


cdef int check_version(object version) except -1:
    if version is not None and version not in (4, 5):
        raise ValueError(f"version must be 4, 5 or None, not {version!r}")
    return 0


cdef inline int defer(list deferred, str message, Py_ssize_t offset) except -1:
    """Remember the first protocol error (0x82); it is raised once the packet has parsed."""
    if not deferred:
        deferred.append(MqttPacketError(message, offset, PROTOCOL_ERROR))
    return 0


cdef str string_at(const unsigned char* data, Py_ssize_t* at):
    """A UTF-8 Encoded String that string_parse accepted."""
    cdef Py_ssize_t length = be16(data + at[0])
    text = PyUnicode_DecodeUTF8(<const char*>data + at[0] + 2, length, NULL)
    at[0] += 2 + length
    return text


cdef tuple read_properties(const unsigned char* data, Py_ssize_t* at_out, Py_ssize_t end, int packet, list deferred):
    """Property Length and the properties (MQTT 5 §2.2.2) of a CONNACK or DISCONNECT, as properties_parse
    checks them, as (identifier, value) pairs; the walk's protocol error is deferred."""
    cdef PropertyWalk w
    if properties_parse(data, at_out[0], end, packet, &w):
        raise walk_error(&w, "DISCONNECT" if packet == PACKET_DISCONNECT else "CONNACK")
    if w.deferred and not deferred:
        deferred.append(deferred_error(&w))
    at_out[0] = w.end
    return properties_from(data, &w)


cdef tuple properties_from(const unsigned char* data, PropertyWalk* w):
    """The properties that properties_parse walked, as (identifier, value) pairs."""
    cdef uint64_t number = 0
    cdef uint64_t value
    cdef Py_ssize_t at, unused
    cdef int kind, width, j
    cdef list properties = []
    at = w.start
    while at < w.end:
        at = vbi_parse(data, at, w.end, &number, &unused)
        kind = PROPERTY_KIND[number]
        if kind == KIND_UTF8:
            item = string_at(data, &at)
        elif kind == KIND_PAIR:
            key = string_at(data, &at)
            item = (key, string_at(data, &at))
        elif kind == KIND_BINARY:
            width = be16(data + at)
            item = PyBytes_FromStringAndSize(<const char*>data + at + 2, width)
            at += 2 + width
        else:
            width = value_width(kind)
            value = 0
            for j in range(width):
                value = (value << 8) | data[at + j]
            item = value
            at += width
        properties.append((PROPERTY_IDS[number], item))
    return tuple(properties)


cdef int expect_end(Py_ssize_t at, Py_ssize_t end, str packet) except -1:
    if at != end:
        raise MqttPacketError(f"{end - at} bytes after the end of the {packet}", at)
    return 0


cdef MqttDisconnect read_disconnect(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, object version, bint strict):
    """MQTT 5 §3.14.2: [reason code [Property Length, properties]]; 3.1.1: nothing (disconnect_parse)."""
    cdef MqttDisconnect packet = MqttDisconnect.__new__(MqttDisconnect)
    cdef PropertyWalk w
    if disconnect_parse(data, pos, end, 4 if version == 4 else 0, strict, &w):
        if w.problem == MQ_V311_BODY:
            raise MqttPacketError(f"an MQTT 3.1.1 DISCONNECT has no body, this one has {end - pos} bytes", pos)
        if w.problem == MQ_TRAILING:
            raise MqttPacketError(f"{end - w.at} bytes after the end of the DISCONNECT", w.at)
        raise walk_error(&w, "DISCONNECT")
    if w.deferred:
        raise deferred_error(&w)
    if pos == end:
        packet.reason_code = reason_code(0)
        packet.properties = ()
        packet.version = version
        return packet
    packet.reason_code = reason_code(data[pos])
    packet.properties = properties_from(data, &w) if end - pos > 1 else ()
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


cdef object read_packet(const unsigned char* data, Py_ssize_t start, Py_ssize_t size, object version, bint strict,
                        int64_t packet_limit, Py_ssize_t* end):
    """The whole packet at ``data[start:size]`` (offsets in errors are from ``data``); ``end[0]``: where it
    ends. ``packet_limit``: the largest packet accepted, -1 for any."""
    cdef Py_ssize_t pos, stop
    cdef uint64_t remaining
    cdef int number
    cdef MqttOtherPacket other
    problem = fixed_header_parse(data, start, size, &number, &remaining, &pos)
    if problem == MQ_SHORT:
        raise IncompleteError("MQTT fixed header", start)
    if problem:
        raise header_error(problem, pos, number, data[start] & 0x0F)
    if packet_limit >= 0 and <uint64_t>(pos - start) + remaining > <uint64_t>packet_limit:
        raise MqttPacketError(f"packet of {pos - start + remaining} bytes is over the {packet_limit}-byte limit", start,
                              PACKET_TOO_LARGE)
    if <uint64_t>(size - pos) < remaining:
        raise IncompleteError("MQTT packet", start)
    stop = pos + <Py_ssize_t>remaining
    end[0] = stop
    if number == PACKET_DISCONNECT:
        return read_disconnect(data, pos, stop, version, strict)
    if number == PACKET_CONNACK:
        return read_connack(data, pos, stop, version, strict)
    other = MqttOtherPacket.__new__(MqttOtherPacket)
    other.packet_type = PACKET_TYPES[number]
    other.flags = data[start] & 0x0F
    other.body = PyBytes_FromStringAndSize(<const char*>data + pos, stop - pos)
    return other


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
    cdef Py_ssize_t end
    cdef int64_t packet_limit
    open_reader(&r, buf, offset, &view)
    try:
        check_version(version)
        if max_packet_size is not None and (type(max_packet_size) is not int or max_packet_size < 0):
            raise ValueError(f"max_packet_size must be None or an int >= 0, not {max_packet_size!r}")
        # No packet is longer than 5 + 268,435,455 bytes, so a larger limit is no limit.
        packet_limit = -1 if max_packet_size is None or max_packet_size > MAX_VBI + 5 else max_packet_size
        packet = read_packet(r.data, r.pos, r.size, version, strict, packet_limit, &end)
        return packet, end
    finally:
        PyBuffer_Release(&view)


cdef bytes check_properties(tuple properties, object packet):
    allowed = MQTT_PACKET_PROPERTIES[packet]
    seen = set()
    cdef bytearray out = bytearray()
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
            out += value.to_bytes(value_width(kind), "big")
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
# mqtt_disconnect_parse reads one DISCONNECT from a pointer and a length without the GIL:
# it never raises and never touches a Python object. Its verdict and error offset are
# those of decode_mqtt_packet on the same bytes (tests/test_c_api.py checks it);
# mqtt_packet_from returns the very value, and raises the very error, of that decoder.

cdef int mqtt_disconnect_parse(const unsigned char* data, Py_ssize_t size, int version, bint strict,
                               MqttDisconnectResult* out) noexcept nogil:
    cdef Py_ssize_t pos, end
    cdef uint64_t remaining
    cdef int number, problem
    cdef PropertyWalk w
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
    # The fixed header, checked as decode_mqtt_packet checks it; another type is WRONG_TYPE once it is
    # not reserved (type 0).
    if data[0] >> 4 != PACKET_DISCONNECT and data[0] >> 4 != 0:
        return CLOSECODEC_WRONG_TYPE
    problem = fixed_header_parse(data, 0, size, &number, &remaining, &pos)
    if problem == MQ_SHORT:
        return CLOSECODEC_INCOMPLETE
    if problem:
        return parse_error(&out.error_offset, &out.answer, pos, MALFORMED)
    if <uint64_t>(size - pos) < remaining:
        out.size = pos + <Py_ssize_t>remaining
        return CLOSECODEC_INCOMPLETE
    end = pos + <Py_ssize_t>remaining
    out.size = end
    if pos == end:
        return CLOSECODEC_OK
    if disconnect_parse(data, pos, end, version, strict, &w):
        return parse_error(&out.error_offset, &out.answer, w.at, MALFORMED)
    out.version = 5
    out.reason_code = data[pos]
    if end - pos > 1:
        out.properties_at = w.start
        out.properties_length = w.end - w.start
        out.user_properties = w.user_properties
        if w.seen & (<uint64_t>1 << 0x11):  # SESSION_EXPIRY_INTERVAL
            out.has_session_expiry = 1
            out.session_expiry_interval = be32(data + w.value_at[0x11])
        if w.seen & (<uint64_t>1 << 0x1F):  # REASON_STRING
            out.reason_string_at = w.value_at[0x1F] + 2
            out.reason_string_length = be16(data + w.value_at[0x1F])
        if w.seen & (<uint64_t>1 << 0x1C):  # SERVER_REFERENCE
            out.server_reference_at = w.value_at[0x1C] + 2
            out.server_reference_length = be16(data + w.value_at[0x1C])
    if w.deferred:
        return parse_error(&out.error_offset, &out.answer, w.deferred_at, PROTOCOL_ERROR)
    return CLOSECODEC_OK


cdef object mqtt_packet_from(const unsigned char* data, Py_ssize_t size, object version, bint strict, Py_ssize_t* end):
    """The packet at ``data``, as ``decode_mqtt_packet(..., version=..., strict=...)`` returns it; ``end[0]``: its size."""
    check_version(version)
    return read_packet(data, 0, size, version, strict, -1, end)


# -- the stream decoder (docs/streaming.md) --------------------------------------------


cdef class MqttStream(Stream):
    """An incremental decoder of one direction of an MQTT connection (MQTT 5.0 §2, 3.1.1 §2).

    Packets are delimited by their Remaining Length. DISCONNECT and CONNACK
    come out decoded (:class:`MqttDisconnect`, :class:`MqttConnack`); any other
    packet as an :class:`MqttOtherPacket` whose body is skipped, not buffered
    (``body`` is empty) unless ``keep_bodies`` is set.

    States: between packets; inside a fixed header (:attr:`buffered` bytes
    held); inside a body; failed (:attr:`error`).

    Args:
        version, strict: as for :func:`decode_mqtt_packet`.
        max_packet_size: the longest packet, fixed header included (default
            16 MiB); longer fails with reason code 0x95 once its fixed header
            is read, skipped packets included.
        keep_bodies: keep the bodies of the other packets (buffered, up to
            ``max_packet_size``), as :func:`decode_mqtt_packet` returns them.
        closes_only: return only DISCONNECT and CONNACK; the other packets
            are delimited and checked as usual but not returned. Also an
            attribute.

    Raises (from :meth:`feed`):
        MqttPacketError: as :func:`decode_mqtt_packet` raises it, at the
            stream offset of the offending byte.
    """

    def __init__(self, *, version=None, strict=False, max_packet_size=DEFAULT_MAX_MESSAGE_SIZE, keep_bodies=False,
                 closes_only=False):
        check_version(version)
        self._version = version
        self._strict = bool(strict)
        self._max = check_limit(max_packet_size, "max_packet_size")
        self._keep_bodies = bool(keep_bodies)
        self.closes_only = closes_only
        self.clear()

    def __dealloc__(self):
        PyMem_Free(self._body)

    @property
    def max_packet_size(self):
        """The longest packet accepted, fixed header included, in bytes."""
        return self._max

    @property
    def buffered(self):
        """How many bytes the stream holds for an unfinished packet."""
        return self._header_len + self._body_len

    cdef void clear(self) noexcept:
        self._header_len = 0
        self._remaining = -1
        self._body_len = 0
        self._keep = False
        if self._body_cap > KEEP_BUFFER:
            PyMem_Free(self._body)
            self._body = NULL
            self._body_cap = 0

    cdef Py_ssize_t read_fixed_header(self, const unsigned char* data, Py_ssize_t size, int64_t start) except -1:
        """The fixed header as decode_mqtt_packet checks it; the header's size, or 0 if incomplete."""
        cdef int number
        cdef uint64_t remaining
        cdef Py_ssize_t header_size
        problem = fixed_header_parse(data, 0, size, &number, &remaining, &header_size)
        if problem == MQ_SHORT:
            return 0
        if problem:
            raise header_error(problem, start + header_size, number, data[0] & 0x0F)
        if <uint64_t>header_size + remaining > <uint64_t>self._max:
            raise MqttPacketError(
                f"packet of {header_size + remaining} bytes is over the {self._max}-byte limit", start, 0x95
            )
        self._remaining = <int64_t>remaining
        self._first = data[0]
        self._start = start
        self._keep = (self._keep_bodies and not self.closes_only) or number == 2 or number == 14
        return header_size

    cdef int append(self, const unsigned char* data, Py_ssize_t n) except -1:
        cdef Py_ssize_t needed = self._body_len + n  # at most max_packet_size
        cdef Py_ssize_t capacity
        cdef unsigned char* grown
        if needed > self._body_cap:
            capacity = max(needed, min(2 * self._body_cap, self._max), 64)
            grown = <unsigned char*>PyMem_Realloc(self._body, capacity)
            if grown is NULL:
                raise MemoryError()
            self._body = grown
            self._body_cap = capacity
        memcpy(self._body + self._body_len, data, n)
        self._body_len = needed
        return 0

    cdef int process(self, const unsigned char* data, Py_ssize_t n, int64_t base, list out, int shape) except -1:
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t held, take, header_size, end
        cdef const unsigned char* packet
        cdef Py_ssize_t packet_size
        cdef MqttOtherPacket other
        while True:
            packet = NULL
            if self._remaining < 0:
                if pos >= n:
                    return 0
                held = self._header_len
                if held == 0:
                    header_size = self.read_fixed_header(data + pos, min(<Py_ssize_t>MAX_MQTT_HEADER, n - pos), base + pos)
                    if not header_size:
                        memcpy(self._header, data + pos, n - pos)
                        self._header_len = n - pos
                        return 0
                    if self._keep and <uint64_t>(n - pos - header_size) >= <uint64_t>self._remaining:
                        packet = data + pos  # the whole packet is here: decoded in place
                        packet_size = header_size + <Py_ssize_t>self._remaining
                    elif self._keep:
                        self.append(data + pos, header_size)
                    pos += header_size
                else:
                    take = min(MAX_MQTT_HEADER - held, n - pos)
                    memcpy(self._header + held, data + pos, take)
                    header_size = self.read_fixed_header(self._header, held + take, base + pos - held)
                    if not header_size:
                        self._header_len = held + take
                        return 0
                    self._header_len = 0
                    if self._keep:
                        self.append(self._header, header_size)
                    pos += header_size - held
            if packet is not NULL:
                pos += <Py_ssize_t>self._remaining
                self._remaining = 0
            elif self._remaining:
                take = <Py_ssize_t>min(<uint64_t>self._remaining, <uint64_t>(n - pos))
                if take == 0:
                    return 0
                if self._keep:
                    self.append(data + pos, take)
                pos += take
                self._remaining -= take
                if self._remaining:
                    return 0
            self._remaining = -1
            if self._keep:
                if packet is NULL:
                    packet = self._body
                    packet_size = self._body_len
                    self._body_len = 0
                try:
                    value = mqtt_packet_from(packet, packet_size, self._version, self._strict, &end)
                except DecodeError as error:
                    raise shifted(error, self._start)
                if self._body_cap > KEEP_BUFFER:
                    PyMem_Free(self._body)
                    self._body = NULL
                    self._body_cap = 0
            elif self.closes_only:
                continue
            else:
                other = MqttOtherPacket.__new__(MqttOtherPacket)
                other.packet_type = PACKET_TYPES[self._first >> 4]
                other.flags = self._first & 0x0F
                other.body = b""
                value = other
            if shape == SHAPE_VALUES:
                out.append(value)
            elif shape == SHAPE_OFFSETS:
                out.append((base + pos, value))
            else:
                out.append((self._start, base + pos, value))


# -- MQTT CONNECT (recognising MQTT on any port) ------------------------------


def parse_mqtt_connect(data, /):
    """An MQTT CONNECT at the start of ``data``: ``(protocol level, client id or None)``.

    None if more bytes are needed to tell; False if the bytes are not a
    CONNECT of MQTT 3.1 (``MQIsdp``, level 3), 3.1.1 (4) or 5.0 (5), or its
    Remaining Length is not a Variable Byte Integer of at most four bytes in
    its shortest form (MQTT 5.0 §1.5.5). The client id is given when the whole
    packet is there and well formed up to it (MQTT 5.0 §3.1.2 and §3.1.3, 3.1.1
    §3.1), and is valid UTF-8.

    Raises:
        TypeError: ``data`` is not a bytes-like object.
    """
    cdef Reader r
    cdef Py_buffer view
    cdef const unsigned char* v
    cdef Py_ssize_t n, start, name_len, end, at, size
    cdef uint64_t remaining, length
    cdef int level
    open_reader(&r, data, 0, &view)
    try:
        v, n = r.data, r.size
        if n == 0:
            return None
        if v[0] != 0x10:
            return False
        start = vbi_parse(v, 1, n, &remaining, &at)
        if start == -2:
            return False
        if start < 0:
            return None
        if n < start + 2:
            return None
        name_len = be16(v + start)
        if name_len != 4 and name_len != 6:
            return False
        if n < start + 2 + name_len + 1:
            return None
        level = v[start + 2 + name_len]
        if not ((name_len == 4 and memcmp(v + start + 2, b"MQTT", 4) == 0 and (level == 4 or level == 5))
                or (name_len == 6 and memcmp(v + start + 2, b"MQIsdp", 6) == 0 and level == 3)):
            return False
        # After the level: flags (1), keep alive (2), [properties], then the client id, a UTF-8 string.
        end = start + <Py_ssize_t>remaining  # at most 2**28 - 1: four bytes of seven bits
        at = start + 2 + name_len + 4
        if n < end:
            return level, None
        if level == 5:
            at = vbi_parse(v, at, n, &length, &size)
            if at < 0:
                return level, None
            at += <Py_ssize_t>length
        if at + 2 > end:
            return level, None
        size = be16(v + at)
        if at + 2 + size > end:
            return level, None
        try:
            return level, PyUnicode_DecodeUTF8(<const char*>v + at + 2, size, NULL)
        except UnicodeDecodeError:
            return level, None
    finally:
        PyBuffer_Release(&view)


# -- mid-stream recognition (docs/capture.md) -----------------------------------------


cdef inline int tile_sender(int kind) noexcept nogil:
    """The sender of the packet types only one side sends (MQTT 5 §2.1.2): 0 the client, 1 the server, else -1."""
    if kind == 1 or kind == 8 or kind == 10 or kind == 12:
        return 0
    if kind == 2 or kind == 9 or kind == 11 or kind == 13:
        return 1
    return -1


cdef inline Py_ssize_t tile_properties(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    """Where a property block (its Property Length first) ends, or -1 if that is past ``end`` or malformed."""
    cdef uint64_t length
    cdef Py_ssize_t bad
    cdef Py_ssize_t at = vbi_parse(data, pos, end, &length, &bad)
    if at < 0 or length > <uint64_t>(end - at):
        return -1
    return at + <Py_ssize_t>length


cdef int tile_body(const unsigned char* data, int kind, int flags, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    """A whole packet's body as mqtt_tile checks it (as _py._tile_body): -1, or the version it shows (0: none)."""
    cdef Py_ssize_t n = end - pos
    cdef Py_ssize_t at, length
    cdef int level
    if kind == 1:  # CONNECT: protocol name and level
        if n < 3:
            return -1
        length = be16(data + pos)
        if n < 3 + length:
            return -1
        level = data[pos + 2 + length]
        if length == 4 and memcmp(data + pos + 2, b"MQTT", 4) == 0 and (level == 4 or level == 5):
            return level
        if length == 6 and memcmp(data + pos + 2, b"MQIsdp", 6) == 0 and level == 3:
            return level
        return -1
    if kind == 2:  # CONNACK
        if n < 2 or data[pos] > 1:
            return -1
        if n == 2:
            return 0 if data[pos + 1] <= 5 else -1
        if 0 < data[pos + 1] < 0x80:
            return -1
        return 5 if tile_properties(data, pos + 2, end) == end else -1
    if kind == 3:  # PUBLISH
        at = pos
        if string_parse(data, &at, end):
            return -1
        if flags & 0x06:
            return 0 if end - at >= 2 and (data[at] | data[at + 1]) else -1
        return 0
    if 4 <= kind <= 7 or kind == 11:  # PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK
        if n < 2 or not (data[pos] | data[pos + 1]):
            return -1
        if n == 2:
            return 0
        if kind == 11:
            at = tile_properties(data, pos + 2, end)
            return 5 if 0 <= at < end else -1
        if data[pos + 2] != 0 and data[pos + 2] != 0x10 and data[pos + 2] < 0x80:
            return -1
        return 5 if n == 3 or tile_properties(data, pos + 3, end) == end else -1
    if kind == 8 or kind == 10 or kind == 9:  # SUBSCRIBE, UNSUBSCRIBE, SUBACK
        return 0 if n >= (3 if kind == 9 else 5) and (data[pos] | data[pos + 1]) else -1
    if kind == 12 or kind == 13:  # PINGREQ, PINGRESP
        return 0 if n == 0 else -1
    if kind == 14:  # DISCONNECT
        if n == 0:
            return 0
        if not DISCONNECT_CODE_ALLOWED[data[pos]]:
            return -1
        return 5 if n == 1 or tile_properties(data, pos + 1, end) == end else -1
    if n == 0:  # AUTH
        return 5
    if data[pos] != 0 and data[pos] != 0x18 and data[pos] != 0x19:
        return -1
    return 5 if n == 1 or tile_properties(data, pos + 1, end) == end else -1


def mqtt_tile(data, Py_ssize_t start, max_packet, /):
    """Whether MQTT control packets tile ``data`` from ``start`` (as _py.mqtt_tile, whose docstring has the
    rules)."""
    cdef Reader r
    cdef Py_buffer view
    cdef Py_ssize_t pos, body, end, bad, packets = 0
    cdef uint64_t remaining, limit
    cdef int kind, flags, side, shown, sender = -1, version = 0
    cdef bint closed = False
    open_reader(&r, data, start, &view)
    try:
        if type(max_packet) is not int or max_packet < 0:
            raise ValueError(f"max_packet must be an int >= 0, not {max_packet!r}")
        limit = max_packet if max_packet < 0xFFFFFFFF else 0xFFFFFFFF
        pos = start
        while pos < r.size:
            kind = r.data[pos] >> 4
            flags = r.data[pos] & 0x0F
            if kind == 0:
                return None
            if kind == 3:
                if (flags >> 1) & 3 == 3:
                    return None
            elif flags != (2 if kind == 6 or kind == 8 or kind == 10 else 0):
                return None
            body = vbi_parse(r.data, pos + 1, r.size, &remaining, &bad)
            if body == -2:
                return None
            if body == -1:
                break
            if remaining > limit or closed:
                return None
            side = tile_sender(kind)
            if side != -1:
                if sender != -1 and sender != side:
                    return None
                sender = side
            if remaining > <uint64_t>(r.size - body):
                break
            end = body + <Py_ssize_t>remaining
            shown = tile_body(r.data, kind, flags, body, end)
            if shown < 0 or (shown and version and shown != version):
                return None
            if shown:
                version = shown
            closed = kind == 14
            packets += 1
            pos = end
        return pos, packets, sender, version, closed
    finally:
        PyBuffer_Release(&view)
