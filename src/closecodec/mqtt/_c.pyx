# MQTT (3.1.1 and 5.0), compiled: the packet codec, the stream decoder and the CONNECT
# that identifies MQTT on any port. Same names, results and errors as _py.py beside
# it, whose docstring records the decisions both follow (docs/transports.md).
#
# Every read is preceded by an explicit comparison with the size of the buffer
# (or of the packet / property block being read), so indexing below never needs
# Cython's own bounds checks: boundscheck/wraparound are off for that reason only.
# cython: boundscheck=False, wraparound=False

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy

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
    be16,
    check_limit,
    open_reader,
    parse_error,
    shifted,
    utf8_invalid_at,
    varint_bytes,
)
from closecodec.mqtt.values cimport MqttConnack, MqttDisconnect, MqttOtherPacket

from closecodec.buffer import DEFAULT_MAX_MESSAGE_SIZE
from closecodec.errors import DecodeError, EncodeError, IncompleteError, MalformedError, MqttPacketError
from closecodec.mqtt.values import MQTT_PACKET_PROPERTIES, MQTT_PROPERTY_TYPES, MqttPacketType, MqttPropertyId
from closecodec.reasons import MqttConnackReturnCode, MqttReasonCode, mqtt_disconnect_reason_allowed

__all__ = [
    "MqttStream",
    "decode_mqtt_packet",
    "decode_mqtt_varint",
    "encode_mqtt_packet",
    "encode_mqtt_varint",
    "parse_mqtt_connect",
]

cdef enum:
    MAX_VBI = 268435455
    MALFORMED = 0x81
    PROTOCOL_ERROR = 0x82
    PACKET_TOO_LARGE = 0x95
    MAX_MQTT_HEADER = 5  # type byte + a 4-byte Remaining Length (MQTT 5 §2.1.4)
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
# mqtt_disconnect_parse reads one DISCONNECT from a pointer and a length without the GIL:
# it never raises and never touches a Python object. Its verdict and error offset are
# those of decode_mqtt_packet on the same bytes (tests/test_c_api.py checks it);
# mqtt_packet_from returns the very value, and raises the very error, of that decoder.

cdef bint DISCONNECT_CODE_ALLOWED[256]


cdef void init_disconnect_codes():
    cdef int code
    for code in range(256):
        DISCONNECT_CODE_ALLOWED[code] = mqtt_disconnect_reason_allowed(code)


init_disconnect_codes()


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
        if version is not None and version not in (4, 5):
            raise ValueError(f"version must be 4, 5 or None, not {version!r}")
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
        """Checks in decode_mqtt_packet's order; the header's size, or 0 if incomplete."""
        cdef int number = data[0] >> 4
        cdef int flags = data[0] & 0x0F
        cdef uint64_t remaining
        cdef Py_ssize_t header_size
        if number == 0:
            raise MqttPacketError("reserved packet type 0", start)
        if flags and (number == 2 or number == 14):
            raise MqttPacketError(f"{PACKET_TYPES[number].name} flags 0x{flags:X} are not 0", start)
        try:
            header_size = read_vbi(data, 1, size, "Remaining Length", &remaining)
        except DecodeError as error:
            raise shifted(error, start)
        if header_size < 0:
            return 0
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
        try:
            start = read_vbi(v, 1, n, "Remaining Length", &remaining)
        except MqttPacketError:
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
            try:
                at = read_vbi(v, at, n, "Property Length", &length)
            except MqttPacketError:
                return level, None
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
