# Compiled capture backend: pcap/pcapng records and the link/IP/TCP headers
# inside them. Same names, results and errors as _capture_py.py, whose module
# docstring records the decisions both follow (and docs/capture.md).
#
# Every length read from the file or a packet is compared with the bytes
# actually held (the block buffer, the record, the packet) before any byte it
# covers is read, so indexing below never needs Cython's own bounds checks:
# boundscheck/wraparound are off for that reason only. Nothing is allocated
# from a length before it is checked against max_record.
# cython: boundscheck=False, wraparound=False

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t

from closecodec._codec_c cimport Reader, open_reader
from closecodec.frames cimport Packet, TcpSegment

import builtins

from closecodec.errors import IncompleteError, MalformedError

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_MAX_RECORD",
    "PacketReader",
    "parse_packet",
]

#: Default size of each read from the file: 1 MiB.
DEFAULT_BLOCK_SIZE = 1 << 20
#: Default bound on one pcap record or pcapng block: 16 MiB.
DEFAULT_MAX_RECORD = 16 << 20

cdef enum:
    ST_START = 0
    ST_PCAP = 1
    ST_PCAPNG = 2
    ST_DONE = 3
    BT_SHB = 0x0A0D0D0A
    BT_IDB = 1
    BT_PB = 2
    BT_SPB = 3
    BT_EPB = 6
    # Link types (spec/transports.md §3.3)
    LT_NULL = 0
    LT_ETHERNET = 1
    LT_RAW_OLD = 12
    LT_RAW = 101
    LT_LOOP = 108
    LT_SLL = 113
    LT_IPV4 = 228
    LT_IPV6 = 229
    LT_SLL2 = 276

cdef object MEMORYVIEW = builtins.memoryview
cdef int64_t NS = 1000000000
cdef int64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF
cdef tuple KNOWN_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d",
                           b"\x0a\x0d\x0d\x0a")
cdef int64_t POW10[10]
POW10[0] = 1
for _i in range(1, 10):
    POW10[_i] = POW10[_i - 1] * 10

# Skip reasons, identical strings in both backends.
cdef str R_LINK = "unsupported link type"
cdef str R_LINK_SHORT = "truncated link header"
cdef str R_NOT_IP = "not IP"
cdef str R_IP_SHORT = "truncated IP header"
cdef str R_BAD_V4 = "bad IPv4 header"
cdef str R_BAD_V6 = "bad IPv6 header"
cdef str R_BAD_EXT = "bad IPv6 extension header"
cdef str R_FRAGMENT = "IP fragment"
cdef str R_NOT_TCP = "not TCP"
cdef str R_TCP_SHORT = "truncated TCP header"
cdef str R_BAD_TCP = "bad TCP header"


cdef inline uint32_t u16(const unsigned char* p, bint big) noexcept nogil:
    return (<uint32_t>p[0] << 8 | p[1]) if big else (<uint32_t>p[1] << 8 | p[0])


cdef inline uint32_t u32(const unsigned char* p, bint big) noexcept nogil:
    if big:
        return <uint32_t>p[0] << 24 | <uint32_t>p[1] << 16 | <uint32_t>p[2] << 8 | p[3]
    return <uint32_t>p[3] << 24 | <uint32_t>p[2] << 16 | <uint32_t>p[1] << 8 | p[0]


cdef inline uint32_t be16(const unsigned char* p) noexcept nogil:
    return <uint32_t>p[0] << 8 | p[1]


cdef inline uint32_t be32(const unsigned char* p) noexcept nogil:
    return <uint32_t>p[0] << 24 | <uint32_t>p[1] << 16 | <uint32_t>p[2] << 8 | p[3]


cdef str hex_bytes(bytes data):
    return " ".join([f"{b:02x}" for b in data])


cdef int check_sizes(object block_size, object max_record) except -1:
    for name, value in (("block_size", block_size), ("max_record", max_record)):
        if type(value) is not int:
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if not 64 <= value <= 1 << 30:
            raise ValueError(f"{name} must be 64..2**30, not {value}")
    return 0


cdef class PacketReader:
    """Iterate over the packets of a pcap or pcapng file, in constant memory.

    Args:
        file: a binary file object (anything with ``read(n)`` returning bytes):
            an open file, ``sys.stdin.buffer``, a socket file, ``io.BytesIO``.
        block_size: how many bytes to read at a time (at least 64).
        max_record: the largest pcap record or pcapng block accepted, in bytes
            (at least 64); a longer one is malformed.

    Iterating yields :class:`~closecodec.frames.Packet` values.

    Attributes:
        format: ``"pcap"`` or ``"pcapng"`` once the header is read, else None.
        frames: how many packets were yielded so far.
        offset: the file offset just past the last record or block read.
        error: after iteration stops, an :class:`IncompleteError` when the
            file ends inside a record (its ``offset`` is where that record
            starts), else None.

    Raises:
        MalformedError: (while iterating) the file is not a pcap or pcapng
            file, or its structure is broken; the message says what and the
            offset where.
        TypeError, ValueError: a bad argument.
    """

    cdef object _file
    cdef Py_ssize_t _block_size
    cdef Py_ssize_t _max_record
    # The current block: _buf owns the bytes _data points into; _view slices them.
    cdef bytes _buf
    cdef object _view
    cdef const unsigned char* _data
    cdef Py_ssize_t _size
    cdef Py_ssize_t _pos
    cdef int64_t _base
    cdef int _state
    cdef bint _big
    cdef bint _nano
    cdef object _link
    cdef list _interfaces
    cdef public object format
    cdef public Py_ssize_t frames
    cdef public object error

    def __init__(self, file, /, *, block_size=DEFAULT_BLOCK_SIZE, max_record=DEFAULT_MAX_RECORD):
        check_sizes(block_size, max_record)
        self._file = file
        self._block_size = block_size
        self._max_record = max_record
        self._set_block(b"")
        self._base = 0
        self._state = ST_START
        self._big = False
        self._nano = False
        self._link = 0
        self._interfaces = []
        self.format = None
        self.frames = 0
        self.error = None

    @property
    def offset(self):
        return self._base + self._pos

    def __iter__(self):
        return self

    def __next__(self):
        cdef object packet
        while True:
            if self._state == ST_PCAP:
                packet = self._next_pcap()
            elif self._state == ST_PCAPNG:
                packet = self._next_pcapng()
            elif self._state == ST_START:
                self._start()
                continue
            else:
                raise StopIteration
            if packet is not None:
                return packet

    # -- buffer ------------------------------------------------------------

    cdef void _set_block(self, bytes block):
        self._buf = block
        self._view = memoryview(block)
        self._data = <const unsigned char*>block
        self._size = len(block)
        self._pos = 0

    cdef bint _ensure(self, Py_ssize_t need) except -1:
        """Whether ``need`` bytes are available at _pos, reading more if needed."""
        cdef Py_ssize_t have = self._size - self._pos
        if have >= need:
            return True
        parts = [self._buf[self._pos:]]
        while have < need:
            chunk = self._file.read(max(self._block_size, need - have))
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        self._base += self._pos
        self._set_block(b"".join(parts))
        return have >= need

    cdef int _stop(self, str what, int64_t start) except -1:
        self._state = ST_DONE
        self.error = IncompleteError(what, start)
        return 0

    cdef int _fail(self, str message, int64_t offset) except -1:
        self._state = ST_DONE
        raise MalformedError(message, offset)

    # -- formats -----------------------------------------------------------

    cdef int _start(self) except -1:
        cdef bytes magic
        if not self._ensure(4):
            head = self._buf[self._pos:]
            for known in KNOWN_MAGICS:
                if (<bytes>known).startswith(head):
                    return self._stop("capture file header", 0)
            return self._fail(f"not a pcap or pcapng file: it starts with {hex_bytes(head)}", 0)
        magic = self._buf[self._pos:self._pos + 4]
        if magic == b"\x0a\x0d\x0d\x0a":
            self.format = "pcapng"
            self._state = ST_PCAPNG
            return 0
        if magic == b"\xd4\xc3\xb2\xa1" or magic == b"\x4d\x3c\xb2\xa1":
            self._big = False
        elif magic == b"\xa1\xb2\xc3\xd4" or magic == b"\xa1\xb2\x3c\x4d":
            self._big = True
        else:
            return self._fail(f"not a pcap or pcapng file: it starts with {hex_bytes(magic)}", 0)
        self._nano = magic == b"\x4d\x3c\xb2\xa1" or magic == b"\xa1\xb2\x3c\x4d"
        if not self._ensure(24):
            return self._stop("pcap file header", 0)
        cdef const unsigned char* p = self._data + self._pos  # 24 bytes held (checked above)
        cdef uint32_t major = u16(p + 4, self._big)
        if major != 2:
            return self._fail(f"unsupported pcap version {major}.{u16(p + 6, self._big)}", 4)
        self._link = u32(p + 20, self._big) & 0xFFFF
        self._pos += 24
        self.format = "pcap"
        self._state = ST_PCAP
        return 0

    cdef object _next_pcap(self):
        cdef int64_t start = self._base + self._pos
        cdef const unsigned char* p
        if not self._ensure(16):
            if self._size == self._pos:
                self._state = ST_DONE
                raise StopIteration
            self._stop("pcap packet record", start)
            return None
        p = self._data + self._pos  # the 16-byte record header is held
        cdef uint32_t seconds = u32(p, self._big)
        cdef uint32_t fraction = u32(p + 4, self._big)
        cdef uint32_t caplen = u32(p + 8, self._big)
        cdef uint32_t origlen = u32(p + 12, self._big)
        if caplen > <uint32_t>(self._max_record - 16):
            self._fail(f"pcap packet record of {caplen} captured bytes is over the "
                       f"{self._max_record}-byte record limit", start + 8)
        if not self._ensure(16 + <Py_ssize_t>caplen):  # bounded by max_record above
            self._stop("pcap packet record", start)
            return None
        cdef Py_ssize_t at = self._pos + 16
        self._pos = at + caplen
        self.frames += 1
        cdef int64_t ns = <int64_t>seconds * NS + (<int64_t>fraction if self._nano else <int64_t>fraction * 1000)
        cdef Packet packet = Packet.__new__(Packet)
        packet.frame = self.frames
        packet.timestamp_ns = ns
        packet.link_type = self._link
        packet.data = self._view[at:at + caplen]
        packet.original_length = origlen
        packet.interface = 0
        return packet

    cdef object _next_pcapng(self):
        cdef int64_t start = self._base + self._pos
        cdef const unsigned char* p
        cdef uint32_t block_type, length, trailer, minimum = 12
        if not self._ensure(8):
            if self._size == self._pos:
                self._state = ST_DONE
                raise StopIteration
            self._stop("pcapng block", start)
            return None
        p = self._data + self._pos  # 8 bytes held
        if p[0] == 0x0A and p[1] == 0x0D and p[2] == 0x0D and p[3] == 0x0A:
            # Section Header Block: its byte-order magic decides how to read its length.
            if not self._ensure(12):
                self._stop("pcapng block", start)
                return None
            p = self._data + self._pos  # 12 bytes held
            if p[8] == 0x4D and p[9] == 0x3C and p[10] == 0x2B and p[11] == 0x1A:
                self._big = False
            elif p[8] == 0x1A and p[9] == 0x2B and p[10] == 0x3C and p[11] == 0x4D:
                self._big = True
            else:
                self._fail(f"bad byte-order magic {hex_bytes(self._buf[self._pos + 8:self._pos + 12])} "
                           f"in a pcapng section header", start + 8)
            minimum = 28
        cdef bint big = self._big
        block_type = u32(p, big)
        length = u32(p + 4, big)
        if length < minimum or length % 4:
            self._fail(f"pcapng block length {length} is not a multiple of 4 of at least {minimum}", start + 4)
        if length > <uint32_t>self._max_record:
            self._fail(f"pcapng block length {length} is over the {self._max_record}-byte record limit",
                       start + 4)
        if not self._ensure(length):  # bounded by max_record above
            self._stop("pcapng block", start)
            return None
        cdef Py_ssize_t pos = self._pos
        p = self._data + pos  # the whole block (length >= 12 bytes) is held from here on
        trailer = u32(p + length - 4, big)
        if trailer != length:
            self._fail(f"pcapng block length {length} does not match its trailing copy {trailer}",
                       start + length - 4)
        cdef uint32_t body = length - 12  # bytes between the two length fields
        cdef uint32_t interface, high, low, caplen, origlen
        cdef object packet = None
        if block_type == BT_EPB or block_type == BT_PB:
            if body < 20:  # the fixed fields end at pos + 28 <= pos + length - 4
                self._fail(f"pcapng packet block too short ({length} bytes)", start + 4)
            if block_type == BT_EPB:
                interface = u32(p + 8, big)
            else:
                interface = u16(p + 8, big)
            high = u32(p + 12, big)
            low = u32(p + 16, big)
            caplen = u32(p + 20, big)
            origlen = u32(p + 24, big)
            if interface >= <uint32_t>len(self._interfaces):
                self._fail(f"packet on interface {interface}, but the section describes "
                           f"{len(self._interfaces)}", start + 8)
            if caplen > body - 20:  # the data must lie inside the block
                self._fail(f"captured length {caplen} runs past the end of its pcapng block", start + 20)
            description = self._interfaces[interface]
            self.frames += 1
            packet = self._packet(description, (<uint64_t>high << 32) | low,
                                  self._view[pos + 28:pos + 28 + caplen], origlen, interface)
        elif block_type == BT_SPB:
            if body < 4:
                self._fail(f"pcapng simple packet block too short ({length} bytes)", start + 4)
            if not self._interfaces:
                self._fail("simple packet block before any interface description", start)
            origlen = u32(p + 8, big)
            description = self._interfaces[0]
            caplen = origlen if origlen < body - 4 else body - 4  # inside the block
            snaplen = description[1]
            if snaplen and caplen > <uint32_t>snaplen:
                caplen = snaplen
            self.frames += 1
            spb = Packet.__new__(Packet)
            (<Packet>spb).frame = self.frames
            (<Packet>spb).timestamp_ns = 0
            (<Packet>spb).link_type = description[0]
            (<Packet>spb).data = self._view[pos + 12:pos + 12 + caplen]
            (<Packet>spb).original_length = origlen
            (<Packet>spb).interface = 0
            packet = spb
        elif block_type == BT_IDB:
            self._interface(pos, length, start)
        elif block_type == BT_SHB:
            # length >= 28 was checked for a section header: version at 12..15
            if u16(p + 12, big) != 1:
                self._fail(f"unsupported pcapng version {u16(p + 12, big)}.{u16(p + 14, big)}", start + 12)
            self._interfaces = []
        self._pos = pos + length
        return packet

    cdef Packet _packet(self, tuple description, uint64_t ticks, object data, uint32_t origlen, uint32_t interface):
        link, _, binary, exponent, tsoffset = description
        cdef int e = exponent
        cdef object big_ticks = ticks  # a Python int: the general formulas below cannot overflow
        cdef Packet packet = Packet.__new__(Packet)
        packet.frame = self.frames
        if not binary and e <= 9 and tsoffset == 0 and ticks <= <uint64_t>(INT64_MAX // POW10[9 - e]):
            packet.timestamp_ns = <int64_t>ticks * POW10[9 - e]  # exact: no overflow (checked)
        elif binary:
            packet.timestamp_ns = (big_ticks * 1000000000 >> exponent) + tsoffset * 1000000000
        else:
            packet.timestamp_ns = big_ticks * 1000000000 // 10 ** exponent + tsoffset * 1000000000
        packet.link_type = link
        packet.data = data
        packet.original_length = origlen
        packet.interface = interface
        return packet

    cdef int _interface(self, Py_ssize_t pos, uint32_t length, int64_t start) except -1:
        cdef const unsigned char* p = self._data + pos  # the whole block is held
        cdef bint big = self._big
        if length < 20:
            return self._fail(f"pcapng interface description block too short ({length} bytes)", start + 4)
        cdef uint32_t link = u16(p + 8, big)
        cdef uint32_t snaplen = u32(p + 12, big)
        cdef bint binary = False
        cdef int exponent = 6
        cdef int64_t tsoffset = 0
        cdef uint64_t raw
        cdef Py_ssize_t at = 16, end = length - 4, value
        cdef uint32_t code, size
        while at + 4 <= end:  # option header held
            code = u16(p + at, big)
            size = u16(p + at + 2, big)
            if code == 0:
                break
            value = at + 4
            if value + size > end:
                return self._fail(f"pcapng option {code} runs past the end of its block", start + at)
            if code == 9:
                if size != 1:
                    return self._fail(f"if_tsresol option of {size} bytes (not 1)", start + at)
                binary = (p[value] & 0x80) != 0
                exponent = p[value] & 0x7F
            elif code == 14:
                if size != 8:
                    return self._fail(f"if_tsoffset option of {size} bytes (not 8)", start + at)
                if big:
                    raw = (<uint64_t>u32(p + value, True) << 32) | u32(p + value + 4, True)
                else:
                    raw = (<uint64_t>u32(p + value + 4, False) << 32) | u32(p + value, False)
                tsoffset = <int64_t>raw
            at = value + (size + 3) // 4 * 4
        self._interfaces.append((link, snaplen, binary, exponent, tsoffset))
        return 0


# -- link, IP and TCP headers --------------------------------------------------


cdef inline bint vlan_type(uint32_t ethertype) noexcept nogil:
    return ethertype == 0x8100 or ethertype == 0x88A8 or ethertype == 0x9100


cdef inline bint ipv6_generic(uint32_t protocol) noexcept nogil:
    # RFC 8200 §4 layout: hop-by-hop, routing, destination options, mobility, HIP, shim6.
    return protocol == 0 or protocol == 43 or protocol == 60 or protocol == 135 or protocol == 139 or protocol == 140


def parse_packet(data, link_type, /):
    """Find the TCP segment in one captured packet.

    Args:
        data: the packet's captured bytes (any C-contiguous buffer), starting
            with the link-layer header.
        link_type: its LINKTYPE_ value: 1 Ethernet, 113 Linux SLL, 276 Linux
            SLL2, 0 BSD NULL, 108 BSD LOOP, 101 and 12 raw IP, 228 raw IPv4,
            229 raw IPv6. 802.1Q/802.1ad VLAN tags (stacked) are skipped.

    Returns:
        A :class:`~closecodec.frames.TcpSegment` whose payload is a memoryview
        into ``data``; or, for a packet that carries no usable TCP segment, a
        short reason: ``"unsupported link type"``, ``"truncated link header"``,
        ``"not IP"``, ``"truncated IP header"``, ``"bad IPv4 header"``,
        ``"bad IPv6 header"``, ``"bad IPv6 extension header"``,
        ``"IP fragment"``, ``"not TCP"``, ``"truncated TCP header"`` or
        ``"bad TCP header"``.

    Raises:
        TypeError: ``data`` is not a bytes-like object or ``link_type`` not an int.
    """
    cdef Reader r
    cdef Py_buffer view
    open_reader(&r, data, 0, &view)
    try:
        if type(link_type) is not int:
            raise TypeError(f"link_type must be an int, not {type(link_type).__name__}")
        return parse_tcp(r.data, r.size, link_type, data)
    finally:
        PyBuffer_Release(&view)


cdef object parse_tcp(const unsigned char* v, Py_ssize_t size, object link_object, object data):
    # Every read of v[i] below follows a check that i < size (or < an end
    # already checked against size).
    cdef Py_ssize_t pos = 0, header, type_at, ihl, wire_end, captured_end, length, offset
    cdef uint32_t ethertype, family, total, payload_length
    cdef int version, protocol
    cdef long link
    if not (-0x7FFFFFFF <= link_object <= 0x7FFFFFFF):
        return R_LINK
    link = link_object
    if link == LT_ETHERNET or link == LT_SLL or link == LT_SLL2:
        if link == LT_ETHERNET:
            header, type_at = 14, 12
        elif link == LT_SLL:
            header, type_at = 16, 14
        else:
            header, type_at = 20, 0
        if size < header:
            return R_LINK_SHORT
        ethertype = be16(v + type_at)
        pos = header
        while vlan_type(ethertype):  # 802.1Q / 802.1ad: TCI (2) then the next EtherType (2)
            if size - pos < 4:
                return R_LINK_SHORT
            ethertype = be16(v + pos + 2)
            pos += 4
        if ethertype == 0x0800:
            version = 4
        elif ethertype == 0x86DD:
            version = 6
        else:
            return R_NOT_IP
    elif link == LT_NULL or link == LT_LOOP:
        if size < 4:
            return R_LINK_SHORT
        family = be32(v)
        if link == LT_NULL and not (family & 0xFFFF):
            # NULL: the capturing host's byte order; a family is small, so a
            # value with empty low bytes was written little-endian.
            family = (family >> 24) | ((family >> 8) & 0xFF00)
        pos = 4
        if family == 2:
            version = 4
        elif family == 24 or family == 28 or family == 30:  # AF_INET6: NetBSD/OpenBSD, FreeBSD, macOS
            version = 6
        else:
            return R_NOT_IP
    elif link == LT_RAW or link == LT_RAW_OLD or link == LT_IPV4 or link == LT_IPV6:
        if size < 1:
            return R_IP_SHORT
        version = v[0] >> 4
        if link == LT_IPV4 and version != 4:
            return R_BAD_V4
        if link == LT_IPV6 and version != 6:
            return R_BAD_V6
        if version != 4 and version != 6:
            return R_NOT_IP
    else:
        return R_LINK

    if version == 4:  # RFC 791 §3.1
        if size - pos < 20:
            return R_IP_SHORT
        if v[pos] >> 4 != 4:
            return R_BAD_V4
        ihl = (v[pos] & 0x0F) * 4
        total = be16(v + pos + 2)
        if ihl < 20 or (total and total < <uint32_t>ihl):
            return R_BAD_V4
        if size - pos < ihl:
            return R_IP_SHORT
        wire_end = pos + total if total else size
        if be16(v + pos + 6) & 0x3FFF:  # MF flag or a fragment offset
            return R_FRAGMENT
        protocol = v[pos + 9]
        src = PyBytes_FromStringAndSize(<const char*>v + pos + 12, 4)
        dst = PyBytes_FromStringAndSize(<const char*>v + pos + 16, 4)
        pos += ihl
    else:  # RFC 8200 §3
        if size - pos < 40:
            return R_IP_SHORT
        if v[pos] >> 4 != 6:
            return R_BAD_V6
        payload_length = be16(v + pos + 4)
        protocol = v[pos + 6]
        src = PyBytes_FromStringAndSize(<const char*>v + pos + 8, 16)
        dst = PyBytes_FromStringAndSize(<const char*>v + pos + 24, 16)
        pos += 40
        wire_end = pos + payload_length if payload_length else size
        # Each extension header moves pos forward by at least 8 bytes and
        # pos never passes wire_end, so the loop ends (no recursion).
        while protocol != 6:
            captured_end = size if size < wire_end else wire_end
            if ipv6_generic(protocol) or protocol == 51:
                if captured_end - pos < 2:
                    return R_IP_SHORT if size < wire_end else R_BAD_EXT
                # AH (RFC 4302 §2.2) counts 4-octet units minus 2.
                length = (v[pos + 1] + 2) * 4 if protocol == 51 else (v[pos + 1] + 1) * 8
                protocol = v[pos]
            elif protocol == 44:  # fragment header (RFC 8200 §4.5), 8 octets
                if captured_end - pos < 8:
                    return R_IP_SHORT if size < wire_end else R_BAD_EXT
                if be16(v + pos + 2) & 0xFFF9:  # offset or M: a real fragment
                    return R_FRAGMENT
                length = 8
                protocol = v[pos]
            else:
                return R_NOT_TCP
            pos += length
            if pos > wire_end:
                return R_BAD_EXT
    if protocol != 6:
        return R_NOT_TCP
    # TCP header (RFC 9293 §3.1)
    captured_end = size if size < wire_end else wire_end
    if wire_end - pos < 20:
        return R_BAD_TCP
    if captured_end - pos < 20:
        return R_TCP_SHORT
    offset = (v[pos + 12] >> 4) * 4
    if offset < 20 or pos + offset > wire_end:
        return R_BAD_TCP
    if pos + offset > captured_end:
        return R_TCP_SHORT
    cdef TcpSegment segment = TcpSegment.__new__(TcpSegment)
    segment.src = src
    segment.src_port = be16(v + pos)
    segment.dst = dst
    segment.dst_port = be16(v + pos + 2)
    segment.seq = be32(v + pos + 4)
    segment.ack = be32(v + pos + 8)
    segment.flags = ((v[pos + 12] & 0x0F) << 8) | v[pos + 13]
    if type(data) is MEMORYVIEW and data.format == "B" and data.ndim == 1:
        segment.payload = data[pos + offset:captured_end]
    else:
        segment.payload = byte_memoryview(data)[pos + offset:captured_end]
    segment.missing = wire_end - captured_end
    return segment


cdef object byte_memoryview(object data):
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view
