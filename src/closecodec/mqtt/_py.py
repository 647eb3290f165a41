"""MQTT (3.1.1 and 5.0), pure side: the packet codec, the stream decoder and the CONNECT.

Same names, results and errors as ``_c.pyx`` beside it. Decoders take any
C-contiguous buffer and a start offset and return ``(value, next_offset)``;
encoders return bytes. Wire facts: OASIS MQTT 5.0 §2, §3.2, §3.14 and MQTT
3.1.1; the choices below are documented in docs/transports.md and are identical
in ``_c.pyx``:

- Malformed (0x81) errors are raised as soon as they are met; protocol errors
  (0x82) are remembered and raised only once the whole packet has parsed, so a
  packet that is both is reported as malformed (MQTT 5 §4.13: malformed means
  it cannot be parsed at all).
- ``version=None`` infers the version where the bytes say it and reports None
  for ``e0 00``, identical in 3.1.1 and in 5.0's short form.
- The stream decoder follows the rules of every stream (``closecodec/buffer/_py.py``).
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from ..buffer import DEFAULT_MAX_MESSAGE_SIZE, byte_view, start_reading, varint_bytes
from ..buffer._py import SHAPE_OFFSETS, SHAPE_VALUES, Stream, check_limit, shifted
from ..errors import DecodeError, EncodeError, IncompleteError, MqttPacketError
from ..reasons import MqttReasonCode, mqtt_disconnect_reason_allowed
from .values import (
    MQTT_PACKET_PROPERTIES,
    MQTT_PROPERTY_TYPES,
    MqttConnack,
    MqttDisconnect,
    MqttOtherPacket,
    MqttPacketType,
    MqttPropertyId,
)

__all__ = [
    "MqttStream",
    "decode_mqtt_packet",
    "decode_mqtt_varint",
    "encode_mqtt_packet",
    "encode_mqtt_varint",
    "mqtt_tile",
    "parse_mqtt_connect",
]

_MAX_VBI = 268_435_455
_MALFORMED, _PROTOCOL_ERROR, _PACKET_TOO_LARGE = 0x81, 0x82, 0x95
_MAX_MQTT_HEADER = 5  # type byte + a 4-byte Remaining Length (MQTT 5 §2.1.4)
_DISCONNECT, _CONNACK = MqttPacketType.DISCONNECT, MqttPacketType.CONNACK
_PACKET_TYPES = tuple([None] + [MqttPacketType(n) for n in range(1, 16)])
_PROPERTY_IDS = {int(pid): pid for pid in MqttPropertyId}
# MQTT 5 §3.2.2.3: these Byte properties are 0 or 1, these integers never 0.
_BOOLEAN_PROPERTIES = frozenset(
    (
        MqttPropertyId.MAXIMUM_QOS,
        MqttPropertyId.RETAIN_AVAILABLE,
        MqttPropertyId.WILDCARD_SUBSCRIPTION_AVAILABLE,
        MqttPropertyId.SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        MqttPropertyId.SHARED_SUBSCRIPTION_AVAILABLE,
    )
)
_NONZERO_PROPERTIES = frozenset((MqttPropertyId.RECEIVE_MAXIMUM, MqttPropertyId.MAXIMUM_PACKET_SIZE))



def _read_vbi(data: Any, pos: int, end: int, what: str) -> Tuple[int, int]:
    """A Variable Byte Integer (MQTT 5 §1.5.5): at most 4 bytes, shortest form.

    Returns ``(value, next)``, or ``(-1, pos)`` when it runs past ``end``.
    """
    value = 0
    shift = 0
    at = pos
    while True:
        if at >= end:
            return -1, pos
        byte = data[at]
        if at - pos == 3 and byte & 0x80:
            raise MqttPacketError(f"{what} is longer than 4 bytes", at)
        if byte == 0 and at > pos:
            raise MqttPacketError(f"{what} is not in its shortest form", at)
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7


def decode_mqtt_varint(buf: Any, offset: int = 0, /) -> Tuple[int, int]:
    """Decode an MQTT Variable Byte Integer (MQTT 5 §1.5.5); return ``(value, next_offset)``.

    Raises:
        IncompleteError: it runs past the end of ``buf``.
        MqttPacketError: more than 4 bytes, or not in its shortest form (0x81).
    """
    data, start, size = start_reading(buf, offset)
    value, end = _read_vbi(data, start, size, "Variable Byte Integer")
    if value < 0:
        raise IncompleteError("Variable Byte Integer", start)
    return value, end


def encode_mqtt_varint(value: int, /) -> bytes:
    """Encode an MQTT Variable Byte Integer, 0..268,435,455, in its shortest form.

    Raises:
        EncodeError: not an int, or out of range.
    """
    if type(value) is not int:
        raise EncodeError(f"a Variable Byte Integer needs an int, not {type(value).__name__}")
    if not 0 <= value <= _MAX_VBI:
        raise EncodeError(f"{value} is outside the Variable Byte Integer range 0..268435455")
    return varint_bytes(value)


class _Deferred:
    """The first protocol error (0x82) seen in a packet, raised once it has parsed."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: Optional[MqttPacketError] = None

    def note(self, message: str, offset: int) -> None:
        if self.error is None:
            self.error = MqttPacketError(message, offset, _PROTOCOL_ERROR)


def _read_string(data: Any, pos: int, end: int, what: str) -> Tuple[str, int]:
    """A UTF-8 Encoded String (MQTT 5 §1.5.4): 2-byte length, strict UTF-8, no U+0000."""
    if end - pos < 2:
        raise MqttPacketError(f"{what} runs past the end of the properties", pos)
    length = data[pos] << 8 | data[pos + 1]
    if end - pos - 2 < length:
        raise MqttPacketError(f"{what} runs past the end of the properties", pos)
    raw = bytes(data[pos + 2:pos + 2 + length])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MqttPacketError(f"invalid UTF-8 in {what}", pos + 2 + error.start) from None
    null = raw.find(0)  # in valid UTF-8, a zero byte is U+0000 and nothing else
    if null >= 0:
        raise MqttPacketError(f"U+0000 in {what}", pos + 2 + null)
    return text, pos + 2 + length


def _read_properties(data: Any, pos: int, end: int, packet: MqttPacketType, deferred: _Deferred) -> Tuple[tuple, int]:
    """Property Length and the properties (MQTT 5 §2.2.2) of a CONNACK or DISCONNECT."""
    length, at = _read_vbi(data, pos, end, "Property Length")
    if length < 0:
        raise MqttPacketError("Property Length runs past the end of the packet", pos)
    if end - at < length:
        raise MqttPacketError(f"properties of {length} bytes run past the end of the packet", pos)
    limit = at + length
    allowed = MQTT_PACKET_PROPERTIES[packet]
    seen = set()
    properties = []
    while at < limit:
        id_at = at
        number, at = _read_vbi(data, at, limit, "property identifier")
        if number < 0:
            raise MqttPacketError("property identifier runs past the end of the properties", id_at)
        pid = _PROPERTY_IDS.get(number)
        if pid is None:
            raise MqttPacketError(f"unknown property identifier 0x{number:02X}", id_at)
        name = f"{pid.name} (0x{number:02X})"
        if pid not in allowed:
            raise MqttPacketError(f"property {name} is not allowed in {packet.name}", id_at)
        kind = MQTT_PROPERTY_TYPES[pid]
        if kind == "utf8":
            value, at = _read_string(data, at, limit, name)
        elif kind == "pair":
            key, at = _read_string(data, at, limit, name)
            text, at = _read_string(data, at, limit, name)
            value = (key, text)
        elif kind == "binary":
            if limit - at < 2 or limit - at - 2 < (data[at] << 8 | data[at + 1]):
                raise MqttPacketError(f"{name} runs past the end of the properties", at)
            size = data[at] << 8 | data[at + 1]
            value, at = bytes(data[at + 2:at + 2 + size]), at + 2 + size
        else:
            width = 1 if kind == "byte" else 2 if kind == "u16" else 4
            if limit - at < width:
                raise MqttPacketError(f"{name} runs past the end of the properties", at)
            value = int.from_bytes(data[at:at + width], "big")
            if pid in _BOOLEAN_PROPERTIES and value > 1:
                deferred.note(f"{name} is {value}, not 0 or 1", at)
            elif pid in _NONZERO_PROPERTIES and value == 0:
                deferred.note(f"{name} is 0", at)
            at += width
        if pid in seen and pid != MqttPropertyId.USER_PROPERTY:
            deferred.note(f"property {name} appears more than once", id_at)
        seen.add(pid)
        properties.append((pid, value))
    return tuple(properties), at


def _check_version(version: Any) -> None:
    if version is not None and version not in (4, 5):
        raise ValueError(f"version must be 4, 5 or None, not {version!r}")


def decode_mqtt_packet(
    buf: Any, offset: int = 0, /, *, version: Optional[int] = None, strict: bool = False,
    max_packet_size: Optional[int] = None,
) -> Tuple[Any, int]:
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
    data, start, size = start_reading(buf, offset)
    _check_version(version)
    if max_packet_size is not None and (type(max_packet_size) is not int or max_packet_size < 0):
        raise ValueError(f"max_packet_size must be None or an int >= 0, not {max_packet_size!r}")
    if start >= size:
        raise IncompleteError("MQTT fixed header", start)
    first = data[start]
    number, flags = first >> 4, first & 0x0F
    if number == 0:
        raise MqttPacketError("reserved packet type 0", start)
    packet_type = MqttPacketType(number)
    if flags and (packet_type == _DISCONNECT or packet_type == _CONNACK):
        raise MqttPacketError(f"{packet_type.name} flags 0x{flags:X} are not 0", start)
    remaining, pos = _read_vbi(data, start + 1, size, "Remaining Length")
    if remaining < 0:
        raise IncompleteError("MQTT fixed header", start)
    if max_packet_size is not None and pos - start + remaining > max_packet_size:
        raise MqttPacketError(
            f"packet of {pos - start + remaining} bytes is over the {max_packet_size}-byte limit", start,
            _PACKET_TOO_LARGE,
        )
    if size - pos < remaining:
        raise IncompleteError("MQTT packet", start)
    end = pos + remaining
    if packet_type == _DISCONNECT:
        return _disconnect(data, pos, end, version, strict), end
    if packet_type == _CONNACK:
        return _connack(data, pos, end, version, strict), end
    return MqttOtherPacket(packet_type, flags, bytes(data[pos:end])), end


def _expect_end(at: int, end: int, packet: str) -> None:
    if at != end:
        raise MqttPacketError(f"{end - at} bytes after the end of the {packet}", at)


def _disconnect(data: Any, pos: int, end: int, version: Optional[int], strict: bool) -> MqttDisconnect:
    """MQTT 5 §3.14.2: [reason code [Property Length, properties]]; 3.1.1: nothing."""
    if pos == end:
        return MqttDisconnect(0, (), version)
    if version == 4:
        raise MqttPacketError(f"an MQTT 3.1.1 DISCONNECT has no body, this one has {end - pos} bytes", pos)
    deferred = _Deferred()
    code = data[pos]
    if strict and not mqtt_disconnect_reason_allowed(code):
        deferred.note(f"reason code 0x{code:02X} is not a DISCONNECT reason code", pos)
    properties: tuple = ()
    at = pos + 1
    if at < end:
        properties, at = _read_properties(data, at, end, _DISCONNECT, deferred)
        _expect_end(at, end, "DISCONNECT")
    if deferred.error is not None:
        raise deferred.error
    return MqttDisconnect(code, properties, 5)


def _connack(data: Any, pos: int, end: int, version: Optional[int], strict: bool) -> MqttConnack:
    """MQTT 5 §3.2.2: flags, reason code, Property Length, properties; 3.1.1: flags, return code."""
    remaining = end - pos
    if version is None:
        version = 4 if remaining == 2 else 5
    if remaining < (2 if version == 4 else 3):
        raise MqttPacketError(f"a CONNACK body of {remaining} bytes is too short", pos)
    flags = data[pos]
    if flags & 0xFE:
        raise MqttPacketError(f"CONNACK acknowledge flags 0x{flags:02X} set reserved bits", pos)
    code = data[pos + 1]
    deferred = _Deferred()
    if flags and code:
        deferred.note(f"Session Present is set on a refusal (code 0x{code:02X})", pos)
    if strict and (code > 5 if version == 4 else "CONNACK" not in MqttReasonCode(code).packets):
        deferred.note(f"reason code 0x{code:02X} is not a CONNACK reason code", pos + 1)
    properties: tuple = ()
    at = pos + 2
    if version == 5:
        properties, at = _read_properties(data, at, end, _CONNACK, deferred)
    _expect_end(at, end, "CONNACK")
    if deferred.error is not None:
        raise deferred.error
    return MqttConnack(code, flags == 1, properties, version)


def _check_properties(properties: tuple, packet: MqttPacketType) -> bytes:
    allowed = MQTT_PACKET_PROPERTIES[packet]
    seen = set()
    out = bytearray()
    for pid, value in properties:
        name = f"{pid.name} (0x{int(pid):02X})"
        if pid not in allowed:
            raise EncodeError(f"property {name} is not allowed in {packet.name}")
        if pid in seen and pid != MqttPropertyId.USER_PROPERTY:
            raise EncodeError(f"property {name} may appear only once")
        seen.add(pid)
        if pid in _BOOLEAN_PROPERTIES and value > 1:
            raise EncodeError(f"{name} is {value}, not 0 or 1")
        if pid in _NONZERO_PROPERTIES and value == 0:
            raise EncodeError(f"{name} may not be 0")
        out.append(int(pid))
        kind = MQTT_PROPERTY_TYPES[pid]
        if kind == "utf8":
            out += _string(value, name)
        elif kind == "pair":
            out += _string(value[0], name) + _string(value[1], name)
        elif kind == "binary":
            if len(value) > 0xFFFF:
                raise EncodeError(f"{name} of {len(value)} bytes is over the 65535-byte limit")
            out += len(value).to_bytes(2, "big") + value
        else:
            out += value.to_bytes(1 if kind == "byte" else 2 if kind == "u16" else 4, "big")
    return _vbi_checked(len(out), "properties") + bytes(out)


def _string(text: str, what: str) -> bytes:
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError(f"{what} is not encodable as UTF-8 (lone surrogate)") from None
    if len(raw) > 0xFFFF:
        raise EncodeError(f"{what} of {len(raw)} UTF-8 bytes is over the 65535-byte limit")
    if "\x00" in text:
        raise EncodeError(f"{what} contains U+0000")
    return len(raw).to_bytes(2, "big") + raw


def _vbi_checked(value: int, what: str) -> bytes:
    if value > _MAX_VBI:
        raise EncodeError(f"{what} of {value} bytes is over MQTT's 268435455-byte limit")
    return varint_bytes(value)


def encode_mqtt_packet(packet: Any, /) -> bytes:
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
            body += _check_properties(packet.properties, _DISCONNECT)
        return b"\xe0" + _vbi_checked(len(body), "DISCONNECT") + body
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
            body += _check_properties(packet.properties, _CONNACK)
        return b"\x20" + _vbi_checked(len(body), "CONNACK") + body
    if kind is MqttOtherPacket:
        return bytes((int(packet.packet_type) << 4 | packet.flags,)) + _vbi_checked(len(packet.body), "packet body") + packet.body
    raise EncodeError(f"an MQTT packet is an MqttDisconnect, MqttConnack or MqttOtherPacket, not {kind.__name__}")


# -- the stream decoder (docs/streaming.md) --------------------------------------------


class MqttStream(Stream):
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

    def __init__(
        self, *, version: Optional[int] = None, strict: bool = False,
        max_packet_size: int = DEFAULT_MAX_MESSAGE_SIZE, keep_bodies: bool = False, closes_only: bool = False,
    ) -> None:
        super().__init__()
        _check_version(version)
        self._version = version
        self._strict = bool(strict)
        self._max = check_limit(max_packet_size, "max_packet_size")
        self._keep_bodies = bool(keep_bodies)
        self.closes_only = bool(closes_only)
        self._clear()

    @property
    def max_packet_size(self) -> int:
        """The longest packet accepted, fixed header included, in bytes."""
        return self._max

    @property
    def buffered(self) -> int:
        """How many bytes the stream holds for an unfinished packet."""
        return len(self._header) + (len(self._body) if self._body is not None else 0)

    def _clear(self) -> None:
        self._header = bytearray()
        self._remaining = -1  # body bytes still to come; -1 between packets
        self._body: Optional[bytearray] = None  # the packet so far, when it is kept
        self._first = 0
        self._start = 0

    def _read_fixed_header(self, avail: bytes, start: int) -> int:
        """Checks in :func:`decode_mqtt_packet`'s order; the header's size, or 0 if incomplete."""
        number, flags = avail[0] >> 4, avail[0] & 0x0F
        if number == 0:
            raise MqttPacketError("reserved packet type 0", start)
        if flags and number in (2, 14):
            raise MqttPacketError(f"{_PACKET_TYPES[number].name} flags 0x{flags:X} are not 0", start)
        try:
            remaining, header_size = _read_vbi(avail, 1, len(avail), "Remaining Length")
        except DecodeError as error:
            raise shifted(error, start) from None
        if remaining < 0:
            return 0
        if header_size + remaining > self._max:
            raise MqttPacketError(
                f"packet of {header_size + remaining} bytes is over the {self._max}-byte limit", start, 0x95
            )
        self._remaining = remaining
        return header_size

    def _process(self, view: Any, base: int, out: List[Any], shape: int) -> None:
        n = len(view)
        pos = 0
        while True:
            if self._remaining < 0:
                if pos >= n:
                    return
                held = len(self._header)
                avail = bytes(self._header) + bytes(view[pos:pos + _MAX_MQTT_HEADER - held])
                start = base + pos - held
                header_size = self._read_fixed_header(avail, start)
                if not header_size:
                    self._header = bytearray(avail)
                    return
                pos += header_size - held
                self._header = bytearray()
                self._first = avail[0]
                self._start = start
                number = avail[0] >> 4
                keep = (self._keep_bodies and not self.closes_only) or number in (2, 14)
                self._body = bytearray(avail[:header_size]) if keep else None
            if self._remaining:
                take = min(self._remaining, n - pos)
                if not take:
                    return
                if self._body is not None:
                    self._body += view[pos:pos + take]
                pos += take
                self._remaining -= take
                if self._remaining:
                    return
            self._remaining = -1
            if self._body is None:
                if self.closes_only:
                    continue
                value = MqttOtherPacket(_PACKET_TYPES[self._first >> 4], self._first & 0x0F, b"")
            else:
                packet = bytes(self._body)
                self._body = None
                try:
                    value, _ = decode_mqtt_packet(packet, version=self._version, strict=self._strict)
                except DecodeError as error:
                    raise shifted(error, self._start) from None
            if shape == SHAPE_VALUES:
                out.append(value)
            elif shape == SHAPE_OFFSETS:
                out.append((base + pos, value))
            else:
                out.append((self._start, base + pos, value))


# -- MQTT CONNECT (recognising MQTT on any port) ------------------------------------


def parse_mqtt_connect(data: Any, /) -> Any:
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
    data = bytes(byte_view(data))
    if not data:
        return None
    if data[0] != 0x10:
        return False
    try:
        remaining, start = _read_vbi(data, 1, len(data), "Remaining Length")
    except MqttPacketError:
        return False
    if remaining < 0:
        return None
    if len(data) < start + 2:
        return None
    name_len = int.from_bytes(data[start:start + 2], "big")
    if name_len not in (4, 6):
        return False
    if len(data) < start + 2 + name_len + 1:
        return None
    name = data[start + 2:start + 2 + name_len]
    level = data[start + 2 + name_len]
    if (name, level) not in ((b"MQTT", 4), (b"MQTT", 5), (b"MQIsdp", 3)):
        return False
    # After the level: flags (1), keep alive (2), [properties], then the client id, a UTF-8 string.
    end = start + remaining
    at = start + 2 + name_len + 4
    if len(data) < end:
        return level, None
    if level == 5:
        try:
            length, at = _read_vbi(data, at, len(data), "Property Length")
        except MqttPacketError:
            return level, None
        if length < 0:
            return level, None
        at += length
    if at + 2 > end:
        return level, None
    size = int.from_bytes(data[at:at + 2], "big")
    if at + 2 + size > end:
        return level, None
    try:
        return level, data[at + 2:at + 2 + size].decode("utf-8")
    except UnicodeDecodeError:
        return level, None


# -- mid-stream recognition (docs/capture.md, "Mid-stream recognition") -------------

# The sender of the packet types only one side sends (MQTT 5 §2.1.2): 0 the client, 1 the server.
_TILE_SENDER = {1: 0, 8: 0, 10: 0, 12: 0, 2: 1, 9: 1, 11: 1, 13: 1}


def mqtt_tile(data: Any, start: int, max_packet: int, /) -> Optional[Tuple[int, int, int, int, bool]]:
    """Whether MQTT control packets tile ``data`` from ``start``: the test of a stream seen mid-way.

    Walks the packets that are whole in ``data`` by MQTT 5.0 §2 and §3 and
    3.1.1 §2 and §3: types 1..15 with their fixed flags (2 for PUBREL,
    SUBSCRIBE and UNSUBSCRIBE, 0 for the others but PUBLISH, whose QoS is not
    3); a Remaining Length of at most 4 bytes in its shortest form and at most
    ``max_packet``; one sender's types only (CONNECT, SUBSCRIBE, UNSUBSCRIBE,
    PINGREQ from a client, CONNACK, SUBACK, UNSUBACK, PINGRESP from a
    server); nothing after a DISCONNECT; and each body as its type lays it
    out: a CONNECT's protocol name and level, a PUBLISH's topic (UTF-8, no
    U+0000) and non-zero packet identifier, acknowledgements' identifiers,
    reason codes their packet may carry, property lengths that end where the
    packet does, PINGREQ and PINGRESP empty.

    Raises:
        TypeError: ``data`` is not a bytes-like object.
        ValueError: ``start`` is outside it, or ``max_packet`` is not an int >= 0.

    Returns:
        None when a rule is broken, else ``(end, packets, sender, version,
        closed)``: where the first packet not whole in ``data`` starts
        (``len(data)`` when there is none), how many packets are whole, who
        sent them (0 client, 1 server, -1 not known), the version they show
        (5 for a property length or a reason code, a CONNECT's level, else 0),
        whether the last of them is a DISCONNECT. From ``end`` on, two walks
        that give the same result but for ``packets`` go on alike.
    """
    view, pos, size = start_reading(data, start)
    if type(max_packet) is not int or max_packet < 0:
        raise ValueError(f"max_packet must be an int >= 0, not {max_packet!r}")
    packets = 0
    sender = -1
    version = 0
    closed = False
    while pos < size:
        kind = view[pos] >> 4
        flags = view[pos] & 0x0F
        if kind == 0 or ((flags >> 1) & 3 == 3 if kind == 3 else flags != (2 if kind in (6, 8, 10) else 0)):
            return None
        try:
            remaining, body = _read_vbi(view, pos + 1, size, "Remaining Length")
        except MqttPacketError:
            return None
        if remaining < 0:
            break
        if remaining > max_packet or closed:
            return None
        side = _TILE_SENDER.get(kind, -1)
        if side != -1:
            if sender not in (-1, side):
                return None
            sender = side
        end = body + remaining
        if end > size:
            break
        shown = _tile_body(view, kind, flags, body, end)
        if shown < 0 or shown and version and shown != version:
            return None
        version = shown or version
        closed = kind == 14
        packets += 1
        pos = end
    return pos, packets, sender, version, closed


def _tile_body(data: Any, kind: int, flags: int, pos: int, end: int) -> int:
    """A whole packet's body as mqtt_tile checks it: -1 if it breaks a rule, else the version it shows (0: none)."""
    n = end - pos
    if kind == 1:  # CONNECT: protocol name and level
        if n < 3:
            return -1
        length = data[pos] << 8 | data[pos + 1]
        if n < 3 + length:
            return -1
        named = (bytes(data[pos + 2:pos + 2 + length]), data[pos + 2 + length])
        return named[1] if named in ((b"MQTT", 4), (b"MQTT", 5), (b"MQIsdp", 3)) else -1
    if kind == 2:  # CONNACK: flags, a return code (3.1.1) or a reason code and properties (5.0)
        if n < 2 or data[pos] > 1:
            return -1
        if n == 2:
            return 0 if data[pos + 1] <= 5 else -1
        if 0 < data[pos + 1] < 0x80:
            return -1
        return 5 if _tile_properties(data, pos + 2, end) == end else -1
    if kind == 3:  # PUBLISH: topic, then a packet identifier from QoS 1 on
        try:
            _, at = _read_string(data, pos, end, "topic")
        except MqttPacketError:
            return -1
        if flags & 0x06:
            return 0 if end - at >= 2 and data[at] | data[at + 1] else -1
        return 0
    if 4 <= kind <= 7 or kind == 11:  # PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK
        if n < 2 or not data[pos] | data[pos + 1]:
            return -1
        if n == 2:
            return 0
        if kind == 11:  # properties, then at least one reason code
            at = _tile_properties(data, pos + 2, end)
            return 5 if 0 <= at < end else -1
        if data[pos + 2] not in (0, 0x10) and data[pos + 2] < 0x80:
            return -1
        return 5 if n == 3 or _tile_properties(data, pos + 3, end) == end else -1
    if kind in (8, 10, 9):  # SUBSCRIBE, UNSUBSCRIBE (an identifier and a topic filter), SUBACK
        return 0 if n >= (3 if kind == 9 else 5) and data[pos] | data[pos + 1] else -1
    if kind in (12, 13):  # PINGREQ, PINGRESP
        return 0 if n == 0 else -1
    if kind == 14:  # DISCONNECT: empty, or a reason code and properties (5.0)
        if n == 0:
            return 0
        if not mqtt_disconnect_reason_allowed(data[pos]):
            return -1
        return 5 if n == 1 or _tile_properties(data, pos + 1, end) == end else -1
    # AUTH (5.0 only): empty, or a reason code and properties
    if n == 0:
        return 5
    if data[pos] not in (0, 0x18, 0x19):
        return -1
    return 5 if n == 1 or _tile_properties(data, pos + 1, end) == end else -1


def _tile_properties(data: Any, pos: int, end: int) -> int:
    """Where a property block (its Property Length first) ends, or -1 if that is past ``end`` or malformed."""
    try:
        length, at = _read_vbi(data, pos, end, "Property Length")
    except MqttPacketError:
        return -1
    if length < 0 or at + length > end:
        return -1
    return at + length
