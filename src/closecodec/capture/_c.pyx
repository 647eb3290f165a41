# The capture room, compiled: pcap/pcapng records, the link/IP/TCP headers inside
# them and the per-packet segment loop. Same names, results and errors as _py.py
# beside it, whose module docstring records the decisions both follow (and
# docs/capture.md).
#
# Every length read from the file or a packet is compared with the bytes
# actually held (the block buffer, the record, the packet) before any byte it
# covers is read, so indexing below never needs Cython's own bounds checks:
# boundscheck/wraparound are off for that reason only. Nothing is allocated
# from a length before it is checked against max_record.
# cython: boundscheck=False, wraparound=False

from cpython.buffer cimport PyBuffer_Release
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.mem cimport PyMem_Calloc, PyMem_Free
from cpython.object cimport PyObject
from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memmove

from closecodec.buffer._c cimport SHAPE_SPANS, Reader, Stream, be16, be32, open_reader
from closecodec.capture.values cimport Packet, TcpSegment

import builtins

from closecodec.capture.values import (FILE_SHIFT, FOLLOWS, ITEM_BOUNDARY, ITEM_DECODED, ITEM_HELD, ITEM_SEGMENT,
                                       check_partition, reads_some)
from closecodec.errors import DecodeError, IncompleteError, MalformedError


cdef extern from "Python.h":
    # CPython's bytearray: how many buffers it exports now (a memoryview over it, and all of that
    # view's slices, count as one until the last of them is gone). Nonzero: someone still views it.
    ctypedef struct PyByteArrayObject:
        Py_ssize_t ob_exports

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_MAX_RECORD",
    "Lane",
    "PacketMerger",
    "PacketReader",
    "SegmentLoop",
    "parse_packet",
]

#: Default size of each read from the file: 256 KiB (a block and its copy stay in a core's L2 cache;
#: 1 MiB blocks made ``closecodec capture`` about 15% slower).
DEFAULT_BLOCK_SIZE = 256 << 10
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
    # Link types (the LINKTYPE registry, draft-ietf-opsawg-pcaplinktype)
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

# Skip reasons: parse_headers returns the code, SKIP_REASONS[code] is the text
# (identical strings in both backends).
cdef enum:
    R_LINK = 1
    R_LINK_SHORT
    R_NOT_IP
    R_IP_SHORT
    R_BAD_V4
    R_BAD_V6
    R_BAD_EXT
    R_FRAGMENT
    R_NOT_TCP
    R_TCP_SHORT
    R_BAD_TCP
cdef tuple SKIP_REASONS = (None, "unsupported link type", "truncated link header", "not IP", "truncated IP header",
                           "bad IPv4 header", "bad IPv6 header", "bad IPv6 extension header", "IP fragment",
                           "not TCP", "truncated TCP header", "bad TCP header")


cdef inline uint32_t u16(const unsigned char* p, bint big) noexcept nogil:
    return (<uint32_t>p[0] << 8 | p[1]) if big else (<uint32_t>p[1] << 8 | p[0])


cdef inline uint32_t u32(const unsigned char* p, bint big) noexcept nogil:
    if big:
        return <uint32_t>p[0] << 24 | <uint32_t>p[1] << 16 | <uint32_t>p[2] << 8 | p[3]
    return <uint32_t>p[3] << 24 | <uint32_t>p[2] << 16 | <uint32_t>p[1] << 8 | p[0]


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
            Its ``read1`` (or ``readinto1``) is used where its class has its
            own: from a pipe, a packet comes out as soon as its bytes are in,
            not when a block is full.
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
    cdef object _readinto  # the file's readinto1 or readinto (blocks are read in place), or None
    cdef object _read_some  # without either: its read1 or read, and a join
    cdef Py_ssize_t _block_size
    cdef Py_ssize_t _max_record
    # The current block: _buf (bytes or bytearray) owns the bytes _data points into, of which the
    # first _size were read; _view is a read-only view of those.
    cdef object _buf
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
    # The record _next_record found: its bytes are _data[_rec_at:_rec_at + _rec_len].
    cdef Py_ssize_t _rec_at
    cdef Py_ssize_t _rec_len
    cdef int64_t _rec_ns
    cdef object _rec_time  # the timestamp as a Python int when it does not fit _rec_ns, else None
    cdef object _rec_link
    cdef uint32_t _rec_origlen
    cdef uint32_t _rec_interface
    cdef int64_t _rec_start  # the file offset where the current pcap record starts

    def __init__(self, file, /, *, block_size=DEFAULT_BLOCK_SIZE, max_record=DEFAULT_MAX_RECORD):
        check_sizes(block_size, max_record)
        self._file = file
        # What the file has now, not a full block: from a pipe, a packet is read as soon as it is whole.
        some = reads_some(file)
        self._readinto = getattr(file, "readinto1" if some else "readinto", None)
        self._read_some = getattr(file, "read1" if some else "read", None)
        self._block_size = block_size
        self._max_record = max_record
        self._set_block(b"", 0)
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
        if not self._next_record():
            raise StopIteration
        cdef Packet packet = Packet.__new__(Packet)
        packet.frame = self.frames
        packet.timestamp_ns = self._timestamp()
        packet.link_type = self._rec_link
        packet.data = self._view[self._rec_at:self._rec_at + self._rec_len]
        packet.original_length = self._rec_origlen
        packet.interface = self._rec_interface
        return packet

    cdef object _timestamp(self):
        """The current record's time in ns, as a Python int."""
        return self._rec_ns if self._rec_time is None else self._rec_time

    cdef bint _next_record(self) except -1:
        """Find the next packet record (its fields in ``_rec_*``); False at the end."""
        while True:
            if self._state == ST_PCAP:
                if self._next_pcap():
                    return True
            elif self._state == ST_PCAPNG:
                if self._next_pcapng():
                    return True
            elif self._state == ST_START:
                self._start()
            else:
                return False

    # -- buffer ------------------------------------------------------------

    cdef int _set_block(self, object block, Py_ssize_t size) except -1:
        """Make ``block`` (bytes, or a bytearray whose first ``size`` bytes were read) the current block."""
        self._buf = block
        if type(block) is bytearray:
            self._data = <const unsigned char*>PyByteArray_AS_STRING(block)
            self._view = memoryview(block)[:size].toreadonly()
        else:
            self._data = <const unsigned char*><bytes>block
            self._view = memoryview(block)
        self._size = size
        self._pos = 0
        return 0

    cdef bytes _held(self, Py_ssize_t start, Py_ssize_t end):
        """Bytes ``start:end`` of the current block, as far as they were read."""
        end = min(end, self._size)
        return PyBytes_FromStringAndSize(<const char*>self._data + start, max(0, end - start))

    cdef inline bint _ensure(self, Py_ssize_t need) except -1:
        """Whether ``need`` bytes are available at _pos, reading more if needed (inline: the usual answer
        is that they are, without a call)."""
        return self._size - self._pos >= need or self._refill(need)

    cdef bint _refill(self, Py_ssize_t need) except -1:
        """Whether ``need`` bytes are available at _pos after reading more.

        The unread rest of the block moves to the start of the next one, which
        the file fills in place (``readinto1`` or ``readinto``; ``read1`` or
        ``read`` and a join for files without them), as far as it has bytes
        now and at least to ``need``. The next block is the current one again when nothing
        views it any more (no packet or segment still holds a slice of it):
        a fresh block would cost its pages' first touch, for every block of
        the file.
        """
        cdef Py_ssize_t have = self._size - self._pos
        cdef Py_ssize_t size
        if self._readinto is None:
            parts = [self._held(self._pos, self._size)]
            while have < need:
                chunk = self._read_some(max(self._block_size, need - have))
                if not chunk:
                    break
                parts.append(chunk)
                have += len(chunk)
            block = b"".join(parts)
        else:
            size = max(self._block_size, need)
            block = self._buf
            self._view = None  # our own view: without it the block is exported only to what still holds a slice
            if (type(block) is bytearray and size <= PyByteArray_GET_SIZE(block) <= 2 * size
                    and (<PyByteArrayObject*>block).ob_exports == 0):
                memmove(PyByteArray_AS_STRING(block), self._data + self._pos, have)
            else:
                block = PyByteArray_FromStringAndSize(NULL, size)
                memcpy(PyByteArray_AS_STRING(block), self._data + self._pos, have)
            self._base += self._pos
            self._set_block(block, have)  # the state stays whole if reading fails
            into = memoryview(block)
            while have < need:
                got = self._readinto(into[have:])
                if not got:
                    break
                if type(got) is not int or not 0 < got <= len(block) - have:
                    # What the file says it wrote bounds what is read from the block: never trust more.
                    raise OSError(f"readinto() returned {got!r}, not a count of bytes from 0 to {len(block) - have}")
                have += got
        self._base += self._pos  # 0 after a readinto: its block was set before reading
        self._set_block(block, have)
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
            head = self._held(self._pos, self._size)
            for known in KNOWN_MAGICS:
                if (<bytes>known).startswith(head):
                    return self._stop("capture file header", 0)
            return self._fail(f"not a pcap or pcapng file: it starts with {hex_bytes(head)}", 0)
        magic = self._held(self._pos, self._pos + 4)
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

    cdef bint _next_pcap(self) except -1:
        cdef int64_t start = self._base + self._pos
        cdef const unsigned char* p
        if not self._ensure(16):
            if self._size == self._pos:
                self._state = ST_DONE
                return False
            self._stop("pcap packet record", start)
            return False
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
            return False
        cdef Py_ssize_t at = self._pos + 16
        self._pos = at + caplen
        self.frames += 1
        self._rec_start = start
        self._rec_at = at
        self._rec_len = caplen
        self._rec_ns = <int64_t>seconds * NS + (<int64_t>fraction if self._nano else <int64_t>fraction * 1000)
        self._rec_time = None
        self._rec_link = self._link
        self._rec_origlen = origlen
        self._rec_interface = 0
        return True

    cdef bint _next_pcapng(self) except -1:
        """Read one block; True if it is a packet (its fields in ``_rec_*``)."""
        cdef int64_t start = self._base + self._pos
        cdef const unsigned char* p
        cdef uint32_t block_type, length, trailer, minimum = 12
        if not self._ensure(8):
            if self._size == self._pos:
                self._state = ST_DONE
                return False
            self._stop("pcapng block", start)
            return False
        p = self._data + self._pos  # 8 bytes held
        if p[0] == 0x0A and p[1] == 0x0D and p[2] == 0x0D and p[3] == 0x0A:
            # Section Header Block: its byte-order magic decides how to read its length.
            if not self._ensure(12):
                self._stop("pcapng block", start)
                return False
            p = self._data + self._pos  # 12 bytes held
            if p[8] == 0x4D and p[9] == 0x3C and p[10] == 0x2B and p[11] == 0x1A:
                self._big = False
            elif p[8] == 0x1A and p[9] == 0x2B and p[10] == 0x3C and p[11] == 0x4D:
                self._big = True
            else:
                self._fail(f"bad byte-order magic {hex_bytes(self._held(self._pos + 8, self._pos + 12))} "
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
            return False
        cdef Py_ssize_t pos = self._pos
        p = self._data + pos  # the whole block (length >= 12 bytes) is held from here on
        trailer = u32(p + length - 4, big)
        if trailer != length:
            self._fail(f"pcapng block length {length} does not match its trailing copy {trailer}",
                       start + length - 4)
        cdef uint32_t body = length - 12  # bytes between the two length fields
        cdef uint32_t interface, high, low, caplen, origlen
        cdef bint packet = False
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
            self.frames += 1
            self._set_time(self._interfaces[interface], (<uint64_t>high << 32) | low)
            self._rec_at = pos + 28
            self._rec_len = caplen
            self._rec_link = self._interfaces[interface][0]
            self._rec_origlen = origlen
            self._rec_interface = interface
            packet = True
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
            self._rec_at = pos + 12
            self._rec_len = caplen
            self._rec_ns = 0
            self._rec_time = None
            self._rec_link = description[0]
            self._rec_origlen = origlen
            self._rec_interface = 0
            packet = True
        elif block_type == BT_IDB:
            self._interface(pos, length, start)
        elif block_type == BT_SHB:
            # length >= 28 was checked for a section header: version at 12..15
            if u16(p + 12, big) != 1:
                self._fail(f"unsupported pcapng version {u16(p + 12, big)}.{u16(p + 14, big)}", start + 12)
            self._interfaces = []
        self._pos = pos + length
        return packet

    cdef int _set_time(self, tuple description, uint64_t ticks) except -1:
        """The record's timestamp from an interface's resolution and offset."""
        link, _, binary, exponent, tsoffset = description
        cdef int e = exponent
        cdef object big_ticks = ticks  # a Python int: the general formulas below cannot overflow
        self._rec_time = None
        if not binary and e <= 9 and tsoffset == 0 and ticks <= <uint64_t>(INT64_MAX // POW10[9 - e]):
            self._rec_ns = <int64_t>ticks * POW10[9 - e]  # exact: no overflow (checked)
        elif binary:
            self._rec_time = (big_ticks * 1000000000 >> exponent) + tsoffset * 1000000000
        else:
            self._rec_time = big_ticks * 1000000000 // 10 ** exponent + tsoffset * 1000000000
        return 0

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


# -- several captures as one ----------------------------------------------------

cdef int FILE_SHIFT_ = FILE_SHIFT  # capture/values.py's


cdef class PacketMerger(PacketReader):
    """The packets of several capture files as one capture, in time order (as mergecap merges them).

    ``PacketMerger(opens, firsts, more=None)``: one callable per file giving a :class:`PacketReader`
    over it, each file's first packet time, and what is called when every file has ended. As ``_py.PacketMerger``, whose docstring has the details; a
    :class:`PacketReader` to the segment loop, which reads it as it reads one file.
    """

    cdef list _opens
    cdef list _firsts
    cdef list _order  # file indices by (first packet time, index)
    cdef Py_ssize_t _next  # the next of _order to open
    cdef list _readers  # per file: its reader while open, else None
    cdef list _waiting  # indices of the open files, each with a record read and not yet merged
    cdef Py_ssize_t _last  # the file whose record was merged last (read its next first), or -1
    cdef PacketReader _current  # that file's reader
    cdef int64_t _due_ns  # the first packet time of the next file to open (INT64_MAX: none, or not an int64)
    cdef int64_t _done_bytes  # the sizes of the files already read, for offset
    # Blocks of files read to their end, for the files opened next: a fresh block costs the first touch
    # of its pages (in a set of 20 files, 20 % more time than one file of the same packets).
    cdef list _spares
    cdef object _more  # None, or called when every file has ended: whether it added more
    cdef public list failures
    cdef public Py_ssize_t packets

    def open_before(self, Py_ssize_t index):
        """Whether a file before ``index`` (in the order given) still has packets to merge."""
        cdef Py_ssize_t i
        for i in range(min(index, len(self._readers))):
            if self._readers[i] is not None:
                return True
        return False

    def add(self, open, /):
        """Add a file after all the others (as ``_py.PacketMerger.add``)."""
        self._opens.append(open)
        self._firsts.append(FOLLOWS)
        self._readers.append(None)
        self._order.append(len(self._opens) - 1)
        self._due()

    def __init__(self, opens, firsts, /, more=None):
        if type(opens) is not list or type(firsts) is not list or len(opens) != len(firsts):
            raise TypeError("opens and firsts are lists of the same length")
        self._opens = opens
        self._more = more
        self._firsts = firsts
        self._order = sorted(range(len(opens)), key=lambda i: (firsts[i], i))
        self._next = 0
        self._readers = [None] * len(opens)
        self._waiting = []
        self._last = -1
        self._current = None
        self._spares = []
        self._due()
        self._done_bytes = 0
        self._set_block(b"", 0)
        self._base = 0
        self._state = ST_DONE
        self._link = 0
        self._interfaces = []
        self.format = None
        self.frames = 0
        self.error = None
        self.failures = []
        self.packets = 0

    def close(self):
        """Close the files still open (iteration was stopped early); nothing more is read."""
        cdef Py_ssize_t i
        for i in list(self._waiting):
            self._retire(i)
        self._last = -1
        self._current = None
        self._next = len(self._order)
        self._more = None
        self._due()

    cdef int _due(self) except -1:
        """Note when the next file to open has its first packet (for the one-file-open path)."""
        self._due_ns = INT64_MAX
        if self._next < len(self._order):
            first = self._firsts[self._order[self._next]]
            if type(first) is int and -INT64_MAX <= first < INT64_MAX:
                self._due_ns = first
            else:
                self._due_ns = -INT64_MAX  # not comparable in C: the general path decides
        return 0

    cdef bint _read(self, Py_ssize_t i) except -1:
        """Read file ``i``'s next record (True), or retire it at its end, noting why it ended early."""
        cdef PacketReader r = self._readers[i]
        if r is None:  # closed
            return False
        try:
            if r._next_record():
                return True
        except DecodeError as error:  # broken structure: what came before is kept
            self.failures.append((i, error))
        else:
            if r.error is not None:  # truncated: the records before the cut are kept
                self.failures.append((i, r.error))
        self._retire(i)
        return False

    cdef int _retire(self, Py_ssize_t i) except -1:
        cdef PacketReader r = self._readers[i]
        self._readers[i] = None
        if i in self._waiting:
            self._waiting.remove(i)
        self._done_bytes += r._base + r._pos
        r._file.close()
        if type(r._buf) is bytearray:
            r._view = None  # its own view of the block: the next file may take the block once no record does
            self._spares.append(r._buf)
            del self._spares[:-2]
        return 0

    cdef int _open(self, Py_ssize_t i) except -1:
        cdef PacketReader r
        try:
            r = self._opens[i]()
        except (OSError, ValueError, TypeError) as error:
            self.failures.append((i, error))
            return 0
        for block in self._spares:
            # One no packet or segment views any more (the last file's may still be): the reader fills it.
            if (<PyByteArrayObject*>block).ob_exports == 0:
                self._spares.remove(block)
                r._set_block(block, 0)
                r._view = None
                break
        self._readers[i] = r
        self._waiting.append(i)
        self._read(i)
        return 0

    cdef bint _before(self, Py_ssize_t i, object time, Py_ssize_t j, PacketReader other):
        """Whether file ``i``'s packet at ``time`` comes before file ``j``'s waiting one (earlier; on a
        tie, the file given first)."""
        if other._rec_time is None and type(time) is int and -INT64_MAX <= time <= INT64_MAX:
            return <int64_t>time < other._rec_ns or (<int64_t>time == other._rec_ns and i < j)
        return time < other._timestamp() or (time == other._timestamp() and i < j)

    cdef bint _next_record(self) except -1:
        cdef PacketReader r, other
        cdef Py_ssize_t i, best
        # The last record is done with: without this view of its block, its reader refills the block
        # in place rather than a fresh one.
        self._view = None
        if self._last >= 0:
            best = self._last
            self._last = -1
            r = self._current
            # One file open, as in a rotated set: its next packet, unless the next file's first comes first
            # (on a tie the general path decides).
            if self._read(best) and len(self._waiting) == 1 and r._rec_time is None and r._rec_ns < self._due_ns:
                return self._take(best, r)
        while True:
            # The earliest waiting packet (one file open, as in a rotated set: that one).
            best = -1
            for i in self._waiting:
                if best < 0:
                    best = i
                    continue
                other = self._readers[best]
                r = self._readers[i]
                if self._before(i, r._timestamp(), best, other):
                    best = i
            # A file whose first packet comes before it is opened first.
            if self._next < len(self._order):
                i = self._order[self._next]
                if best < 0 or self._before(i, self._firsts[i], best, self._readers[best]):
                    self._next += 1
                    self._due()
                    self._open(i)
                    continue
            if best < 0:
                if self._more is not None and self._more():
                    continue
                return False
            break
        return self._take(best, self._readers[best])

    cdef bint _take(self, Py_ssize_t best, PacketReader r) except -1:
        """Make file ``best``'s waiting record this merger's current one."""
        self._last = best
        self._current = r
        self.packets += 1
        self.frames = (best << FILE_SHIFT_) | r.frames
        self._data = r._data
        self._view = r._view
        self._size = r._size
        self._base = self._done_bytes + r._base  # offset: the files read to their end, and this one so far
        self._pos = r._pos
        self._rec_at = r._rec_at
        self._rec_len = r._rec_len
        self._rec_ns = r._rec_ns
        self._rec_time = r._rec_time
        self._rec_link = r._rec_link
        self._rec_origlen = r._rec_origlen
        self._rec_interface = r._rec_interface
        self.format = r.format
        return True


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
    cdef Headers h
    cdef int reason
    if not (-0x7FFFFFFF <= link_object <= 0x7FFFFFFF):
        return SKIP_REASONS[R_LINK]
    reason = parse_headers(v, size, link_object, &h)
    if reason:
        return SKIP_REASONS[reason]
    return make_segment(v, &h, data)


cdef TcpSegment make_segment(const unsigned char* v, Headers* h, object data):
    """The TcpSegment that ``h`` describes; ``data`` holds the packet's bytes (``v``)."""
    cdef TcpSegment segment = TcpSegment.__new__(TcpSegment)
    segment.src = PyBytes_FromStringAndSize(<const char*>v + h.addr_at, h.addr_len)
    segment.src_port = h.src_port
    segment.dst = PyBytes_FromStringAndSize(<const char*>v + h.addr_at + h.addr_len, h.addr_len)
    segment.dst_port = h.dst_port
    segment.seq = h.seq
    segment.ack = h.ack
    segment.flags = h.flags
    if type(data) is MEMORYVIEW and data.format == "B" and data.ndim == 1:
        segment.payload = data[h.payload_at:h.payload_end]
    else:
        segment.payload = byte_memoryview(data)[h.payload_at:h.payload_end]
    segment.missing = h.missing
    return segment


cdef int parse_headers(const unsigned char* v, Py_ssize_t size, long link, Headers* h) noexcept nogil:
    """Fill ``h`` from the link, IP and TCP headers of a packet; 0, or the R_ code of why it has no segment."""
    # Every read of v[i] below follows a check that i < size (or < an end
    # already checked against size).
    cdef Py_ssize_t pos = 0, header, type_at, ihl, wire_end, captured_end, length, offset
    cdef uint32_t ethertype, family, total, payload_length
    cdef int version, protocol
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
        h.addr_at = pos + 12  # source, then destination
        h.addr_len = 4
        pos += ihl
    else:  # RFC 8200 §3
        if size - pos < 40:
            return R_IP_SHORT
        if v[pos] >> 4 != 6:
            return R_BAD_V6
        payload_length = be16(v + pos + 4)
        protocol = v[pos + 6]
        h.addr_at = pos + 8  # source, then destination
        h.addr_len = 16
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
    h.src_port = be16(v + pos)
    h.dst_port = be16(v + pos + 2)
    h.seq = be32(v + pos + 4)
    h.ack = be32(v + pos + 8)
    h.flags = ((v[pos + 12] & 0x0F) << 8) | v[pos + 13]
    h.payload_at = pos + offset
    h.payload_end = captured_end
    h.missing = wire_end - captured_end
    return 0


cdef object byte_memoryview(object data):
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


# -- the per-packet loop of the close-record reader ----------------------------

cdef enum:
    TCP_FIN = 0x01
    TCP_SYN = 0x02
    TCP_RST = 0x04
    TCP_ACK = 0x10
    # What a lane's direction takes without Python (SegmentLoop):
    LANE_NONE = 0  # nothing: every segment is returned
    LANE_ACKS = 1  # segments without payload, SYN, FIN or RST (they only mark the connection active)
    LANE_DATA = 2  # those, and the next in-order payload, into the direction's sink
    LANE_START = 3  # not started: a segment without payload, FIN or RST starts it (then LANE_DATA)


# A 4-tuple as SegmentLoop looks it up (at most 36 bytes): the source and destination addresses
# (4 or 16 bytes each), then the source and destination ports (big-endian).
cdef inline Py_ssize_t pack_ports(unsigned char* key, Py_ssize_t addresses, uint32_t src_port,
                                  uint32_t dst_port) noexcept nogil:
    """Complete a key whose first ``addresses`` bytes hold the two addresses; return its length."""
    key[addresses] = src_port >> 8
    key[addresses + 1] = src_port & 0xFF
    key[addresses + 2] = dst_port >> 8
    key[addresses + 3] = dst_port & 0xFF
    return addresses + 4


cdef inline uint32_t endpoint_hash(const unsigned char* address, int size, uint16_t port) noexcept nogil:
    """32-bit FNV-1a of an address's bytes and its port's two bytes (big-endian)."""
    cdef uint32_t h = 0x811C9DC5
    cdef int i
    for i in range(size):
        h = (h ^ address[i]) * 0x01000193
    h = (h ^ (port >> 8)) * 0x01000193
    return (h ^ (port & 0xFF)) * 0x01000193


cdef inline uint32_t connection_hash(const unsigned char* addresses, int size, uint16_t src_port,
                                     uint16_t dst_port) noexcept nogil:
    """values.partition_of's number before the modulo, for the two addresses at ``addresses`` (source first)."""
    cdef uint32_t mixed = (endpoint_hash(addresses, size, src_port)
                           ^ endpoint_hash(addresses + size, size, dst_port)) * <uint32_t>0x9E3779B1
    return mixed >> 16


def loop_key(bytes src, src_port, bytes dst, dst_port):
    """How a segment loop keys a 4-tuple in its ``keep`` set and ``drop`` dict (packed bytes here)."""
    return packed_key(src, src_port, dst, dst_port)


cdef bytes packed_key(bytes src, uint16_t src_port, bytes dst, uint16_t dst_port):
    """The key of a 4-tuple given as Python values, as bytes."""
    cdef unsigned char key[36]
    cdef Py_ssize_t size = len(src)
    if size != len(dst) or (size != 4 and size != 16):  # the key has room for two IPv6 addresses
        raise ValueError(f"addresses of 4 or 16 bytes expected, not {size} and {len(dst)}")
    memcpy(key, <const char*>src, size)
    memcpy(key + size, <const char*>dst, size)
    return PyBytes_FromStringAndSize(<char*>key, pack_ports(key, 2 * size, src_port, dst_port))


# SegmentLoop keeps the recently looked-up 4-tuples in a cache in front of its table (a dict):
# a hit costs a short hash and a compare instead of a bytes key, its SipHash and a dict lookup.
# The cache is 4-way set-associative, most recently used first in each set (with 300
# connections open, a direct-mapped one sent one lookup in seven to the dict, mostly through
# collisions; this one sends one in fourteen, mostly a connection's first). Its hash need not
# resist crafted keys: a collision only sends the lookup to the dict, whose hash does.
# An entry's lane is borrowed from the dict, and the lane clears the entries of its keys
# whenever it changes the dict (Lane.__init__, Lane.detach), so an entry always says what the
# dict says.
cdef enum:
    CACHE_WAYS = 4
    CACHE_SETS = 512  # a power of two: 2048 entries, 128 KiB


cdef struct CacheEntry:
    PyObject* lane  # NULL: empty
    int direction
    int size
    unsigned char key[48]  # 36 used (two IPv6 addresses and two ports); 64 bytes an entry


cdef inline CacheEntry* cache_set(CacheEntry* cache, const unsigned char* key, Py_ssize_t size) noexcept nogil:
    """The first of the ``CACHE_WAYS`` entries where a packed 4-tuple may be."""
    cdef uint64_t h = <uint64_t>size
    cdef uint64_t word
    cdef Py_ssize_t at = 0
    while at + 8 <= size:  # 8-byte words (a fixed-size memcpy is one load)
        memcpy(&word, key + at, 8)
        h = (h ^ word) * 0x9E3779B97F4A7C15ULL
        h ^= h >> 29
        at += 8
    word = 0
    while at < size:  # the rest (the ports: 4 bytes), a byte at a time
        word = (word << 8) | key[at]
        at += 1
    h = (h ^ word) * 0x9E3779B97F4A7C15ULL
    h = (h ^ (h >> 33)) * 0xFF51AFD7ED558CCDULL  # MurmurHash3's finaliser
    return cache + ((h ^ (h >> 33)) & (CACHE_SETS - 1)) * CACHE_WAYS


cdef class Lane:
    """One open TCP connection as a :class:`SegmentLoop` sees it.

    Made by :meth:`SegmentLoop.lane`. For each direction, the reassembler says
    what the loop may take (:meth:`expect`) and the decoding layer where the
    bytes go (:meth:`sink`, or :meth:`hold` to have them back as bytes);
    :meth:`take_back` returns control to Python and :meth:`detach` forgets the
    connection.

    Attributes:
        connection: the object the lane was made for (the reassembler's connection).
        active: the loop's :attr:`SegmentLoop.count` when the lane last took a
            segment (0: never), for the reassembler's least-recently-active order.
    """

    cdef readonly object connection
    cdef readonly Py_ssize_t active
    cdef SegmentLoop _loop
    cdef bytes _forward
    cdef bytes _reverse
    cdef int _state[2]
    cdef uint32_t _seq[2]
    cdef int64_t _offset[2]
    cdef bint _sink_ready[2]
    cdef bint _hold[2]
    cdef bint _fin_ok[2]
    cdef object _sink0
    cdef object _sink1
    cdef object _fin0  # (frame, timestamp_ns) of the FIN the loop took in direction 0, else None
    cdef object _fin1

    def __init__(self, SegmentLoop loop, connection, tuple key):
        client, client_port, server, server_port = key
        self.connection = connection
        self._loop = loop
        self._forward = packed_key(client, client_port, server, server_port)
        self._reverse = packed_key(server, server_port, client, client_port)
        loop._forget(self._forward)
        loop._forget(self._reverse)
        loop._table[self._forward] = (self, 0)
        loop._table[self._reverse] = (self, 1)

    def expect(self, int direction, int state, seq=0, offset=0, bint fin=False):
        """What the loop may take in ``direction`` (0 from the client, 1 from the server).

        Args:
            state: 0 nothing; 1 segments without payload, SYN, FIN or RST;
                2 those and in-order payload starting at sequence number
                ``seq``, stream offset ``offset``; 3 the direction has not
                started: a segment without payload, FIN or RST starts it at
                its sequence number (one more for a SYN), offset 0, then as 2.
            fin: in state 2 (or 3, once started), an in-order FIN without
                payload may end the direction here (not the connection: the
                loop leaves the other direction's FIN to Python);
                :meth:`take_back` reports it.
        """
        if not 0 <= direction <= 1 or not LANE_NONE <= state <= LANE_START:
            raise ValueError(f"bad direction {direction} or state {state}")
        if not (0 <= seq <= 0xFFFFFFFF and 0 <= offset <= INT64_MAX):
            raise ValueError(f"bad sequence number {seq} or offset {offset}")
        self._state[direction] = state
        self._seq[direction] = seq
        self._offset[direction] = offset
        self._fin_ok[direction] = fin and (state == LANE_DATA or state == LANE_START)

    def sink(self, int direction, bint ready, sink=None):
        """Where in-order payload of ``direction`` goes: ``sink`` (a compiled stream, or None to drop it).

        ``ready`` False: the payload goes back to Python. A sink that is not
        a compiled stream is never fed here.
        """
        if not 0 <= direction <= 1:
            raise ValueError(f"bad direction {direction}")
        if sink is not None and not isinstance(sink, Stream):
            ready = False
        self._sink_ready[direction] = ready
        self._hold[direction] = False
        if direction == 0:
            self._sink0 = sink
        else:
            self._sink1 = sink

    def hold(self, int direction):
        """In-order payload of ``direction`` comes back to Python as bytes (until :meth:`sink`)."""
        if not 0 <= direction <= 1:
            raise ValueError(f"bad direction {direction}")
        if direction == 0:
            self._sink_ready[0] = self._hold[0] = True
            self._sink0 = None
        else:
            self._sink_ready[1] = self._hold[1] = True
            self._sink1 = None

    def take_back(self):
        """Stop taking segments. Per direction: ``(seq, offset)`` expected next where it took payload;
        ``(seq, offset, frame, timestamp_ns)`` where it took the FIN (at that sequence number and offset,
        in that frame); else None."""
        cdef int d
        positions = [None, None]
        for d in range(2):
            fin = self._fin0 if d == 0 else self._fin1
            if fin is not None:
                positions[d] = (self._seq[d], self._offset[d]) + fin
            elif self._state[d] == LANE_DATA:
                positions[d] = (self._seq[d], self._offset[d])
            self._state[d] = LANE_NONE
            self._fin_ok[d] = False
        self._fin0 = self._fin1 = None
        return tuple(positions)

    def detach(self):
        """Forget the connection: its segments are returned to Python from now on."""
        self._state[0] = self._state[1] = LANE_NONE
        self._fin_ok[0] = self._fin_ok[1] = False
        self._fin0 = self._fin1 = None
        self._loop._forget(self._forward)
        self._loop._forget(self._reverse)
        if self._loop._table.get(self._forward, (None,))[0] is self:
            del self._loop._table[self._forward]
        if self._loop._table.get(self._reverse, (None,))[0] is self:
            del self._loop._table[self._reverse]
        self._sink0 = self._sink1 = None


cdef class SegmentLoop:
    """The per-packet loop of a capture decoder: records, headers, and in-order payload into decoders.

    Iterating reads packets from ``packets`` and returns only what needs
    Python, as tuples:

    - ``(ITEM_SEGMENT, frame, timestamp_ns, segment)``: a :class:`TcpSegment`
      for the reassembler: every segment of a connection without a
      :class:`Lane`, or that its lane does not take (out of order,
      SYN/FIN/RST, cut by the snap length, ...);
    - ``(ITEM_DECODED, frame, timestamp_ns, lane, direction, spans)``: what a
      sink returned (``(start, end, value)`` triples), or a sink that failed
      (its ``error`` set), for the payload of that frame;
    - ``(ITEM_HELD, frame, timestamp_ns, lane, direction, offset, data)``: the
      in-order payload (bytes, at stream ``offset``) of a direction that
      holds (:meth:`Lane.hold`).

    The tags are ``capture/values.py``'s.

    Packets without a usable TCP segment are counted in ``skipped`` by
    reason. Everything a lane takes is exactly what the reassembler and the
    decoding layer would have done with it: the connection is marked active
    (:attr:`Lane.active`), the payload is fed to the sink at the expected offset,
    a FIN it may take ends the direction where the reassembler would.

    Args:
        packets: a :class:`PacketReader`.
        skipped: a mapping of reason to count (a ``collections.Counter``).
        progress: called with the file offset every 4096 packets, or None.
        partition: ``(index, count)``: only the segments of connections in
            partition ``index`` of ``count`` (:func:`partition_of`) come out;
            the others are read and passed over. Packets without a TCP
            segment are counted in ``skipped`` by partition 0 alone, so that
            the partitions' counts add up to one loop's. None: every segment.
        boundary: for a chunk of a capture read in parallel, where the next
            chunk starts: the file offset of its first pcap record, or, when
            ``packets`` is a ``PacketMerger``, the index of its first file.
            At the first record there the loop returns ``(ITEM_BOUNDARY,
            True)`` before that record, or ``(ITEM_BOUNDARY, False)`` when no
            record starts at that offset (or, for a merger, when that record's
            time equals the one before: a tie the whole set may merge the other
            way); from then on it *continues*: only
            segments whose 4-tuple is in :attr:`keep` (set it then) come out,
            nothing is counted in ``skipped``, and a record of a file before
            the boundary (files that overlap in time) returns
            ``(ITEM_BOUNDARY, False)``.
        drop: a dict from 4-tuple keys (:func:`loop_key`) to lists ``[first,
            last, ...]`` of packet counts: segments of those 4-tuples are
            passed over, noting the count in ``last``, and appending it for a
            SYN without ACK. None: none is.
    """

    cdef PacketReader _packets
    cdef Py_ssize_t _part_index
    cdef Py_ssize_t _part_count
    cdef int64_t _boundary
    cdef bint _by_file
    cdef bint _continuing
    cdef bint _pending  # the record read before a boundary item, to take next
    cdef int64_t _prev_ns  # the time of the record before (a set's chunk: a tie across the boundary)
    cdef object _prev_time
    cdef dict _drop
    cdef public object keep
    cdef dict _table  # packed 4-tuple -> (lane, direction)
    cdef CacheEntry* _cache  # in front of _table
    cdef object _skipped
    cdef object _progress
    cdef Py_ssize_t _count
    cdef list _spans  # the list a sink appends to; handed out (and replaced) only when it is not empty
    # The last TCP segment read: its frame (0: none yet) and time.
    cdef Py_ssize_t _last_frame
    cdef int64_t _last_ns
    cdef object _last_time

    def __cinit__(self):
        self._cache = <CacheEntry*>PyMem_Calloc(CACHE_SETS * CACHE_WAYS, sizeof(CacheEntry))
        if self._cache is NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self._cache)

    cdef void _forget(self, bytes key) noexcept:
        """Clear the cache entry of a packed 4-tuple whose dict entry is about to change."""
        cdef Py_ssize_t size = len(key)
        cdef CacheEntry* entries = cache_set(self._cache, <const unsigned char*>key, size)
        cdef int way
        for way in range(CACHE_WAYS):
            if (entries[way].lane is not NULL and entries[way].size == size
                    and memcmp(entries[way].key, <const char*>key, size) == 0):
                entries[way].lane = NULL

    def __init__(self, PacketReader packets, skipped, progress=None, partition=None, boundary=None, drop=None):
        self._packets = packets
        self._spans = []
        self._table = {}
        self._skipped = skipped
        self._progress = progress
        self._count = 0
        self._part_index, self._part_count = check_partition(partition)
        self._boundary = -1 if boundary is None else boundary
        self._by_file = isinstance(packets, PacketMerger)
        self._continuing = self._pending = False
        self._drop = drop
        self.keep = None

    @property
    def last_segment(self):
        """``(frame, timestamp_ns)`` of the last packet with a TCP segment read so far, or None."""
        if not self._last_frame:
            return None
        return (self._last_frame, self._last_ns if self._last_time is None else self._last_time)

    @property
    def count(self):
        """Packet records read so far (the clock of :attr:`Lane.active`)."""
        return self._count

    def lane(self, connection, tuple key):
        """A :class:`Lane` for a connection whose client-to-server 4-tuple is ``key``."""
        return Lane(self, connection, key)

    def __iter__(self):
        return self

    def __next__(self):
        cdef PacketReader r = self._packets
        cdef Headers h
        cdef int reason, d
        cdef const unsigned char* v
        cdef unsigned char key[36]
        cdef Py_ssize_t n
        cdef int64_t offset
        cdef PyObject* found
        cdef CacheEntry* entries
        cdef CacheEntry hit
        cdef int way
        cdef Lane lane
        cdef object sink
        cdef list spans
        cdef bytes packed
        cdef int64_t position
        cdef object entry
        while True:
            if self._pending:
                self._pending = False  # the record read before the boundary item: take it now
            else:
                if not r._next_record():
                    raise StopIteration
                self._count += 1
                if self._progress is not None and not self._count & 0xFFF:
                    self._progress(r._base + r._pos)
                if self._boundary >= 0:
                    position = (r.frames >> FILE_SHIFT_) if self._by_file else r._rec_start
                    if self._continuing:
                        if position < self._boundary:  # a file of this chunk after the next chunk's first
                            return (ITEM_BOUNDARY, False)
                    elif position >= self._boundary:
                        self._continuing = True
                        self._pending = True
                        if self._by_file:  # a tie in time across the boundary may be merged otherwise
                            return (ITEM_BOUNDARY, r._timestamp() != (self._prev_ns if self._prev_time is None
                                                                      else self._prev_time))
                        return (ITEM_BOUNDARY, position == self._boundary)
                    elif self._by_file:
                        self._prev_ns = r._rec_ns
                        self._prev_time = r._rec_time
            v = r._data + r._rec_at
            reason = parse_headers(v, r._rec_len, <long>r._rec_link, &h)
            if reason:
                if not self._part_index and not self._continuing:
                    text = SKIP_REASONS[reason]
                    self._skipped[text] += 1
                continue
            self._last_frame = r.frames
            self._last_ns = r._rec_ns
            self._last_time = r._rec_time
            if self._part_count > 1 and (connection_hash(v + h.addr_at, h.addr_len, h.src_port, h.dst_port)
                                         % <uint32_t>self._part_count) != <uint32_t>self._part_index:
                continue
            if self._continuing or self._drop:  # a 4-tuple key, only for a filter that has keys
                if h.addr_len == 4:
                    memcpy(key, v + h.addr_at, 8)
                else:
                    memcpy(key, v + h.addr_at, 32)
                n = pack_ports(key, 2 * h.addr_len, h.src_port, h.dst_port)
                packed = PyBytes_FromStringAndSize(<char*>key, n)
                if self._continuing:
                    if packed not in self.keep:
                        continue
                elif self._drop:
                    found = PyDict_GetItem(self._drop, packed)
                    if found is not NULL:  # [first, last, pure SYNs...]: packet counts
                        entry = <object>found
                        entry[1] = self._count
                        if h.flags & TCP_SYN and not h.flags & TCP_ACK:
                            entry.append(self._count)
                        continue
            if h.missing == 0 and not h.flags & TCP_RST:
                # Both addresses, contiguous in the IP header (fixed sizes: a memcpy of each is a few moves).
                if h.addr_len == 4:
                    memcpy(key, v + h.addr_at, 8)
                else:
                    memcpy(key, v + h.addr_at, 32)
                n = pack_ports(key, 2 * h.addr_len, h.src_port, h.dst_port)
                entries = cache_set(self._cache, key, n)
                found = NULL
                for way in range(CACHE_WAYS):
                    if (entries[way].lane is not NULL and entries[way].size == n
                            and memcmp(entries[way].key, key, n) == 0):
                        found = entries[way].lane
                        d = entries[way].direction
                        if way:  # most recently used first
                            hit = entries[way]
                            memmove(&entries[1], &entries[0], way * sizeof(CacheEntry))
                            entries[0] = hit
                        break
                if found is NULL:
                    found = PyDict_GetItem(self._table, PyBytes_FromStringAndSize(<char*>key, n))
                    if found is not NULL:
                        d = (<tuple>found)[1]
                        found = <PyObject*>(<tuple>found)[0]
                        memmove(&entries[1], &entries[0], (CACHE_WAYS - 1) * sizeof(CacheEntry))  # the last goes
                        entries[0].lane = found
                        entries[0].direction = d
                        entries[0].size = <int>n
                        memcpy(entries[0].key, key, n)
                if found is not NULL:
                    lane = <Lane>found
                    n = h.payload_end - h.payload_at
                    if h.flags & TCP_FIN:
                        if (n == 0 and not h.flags & TCP_SYN and lane._state[d] == LANE_DATA and lane._fin_ok[d]
                                and h.seq == lane._seq[d]):
                            # The direction ends here; the other's FIN (the connection's end) is Python's.
                            lane.active = self._count
                            fin = (r.frames, r._timestamp())
                            if d == 0:
                                lane._fin0 = fin
                            else:
                                lane._fin1 = fin
                            lane._state[d] = LANE_ACKS
                            lane._fin_ok[0] = lane._fin_ok[1] = False
                            continue
                    elif lane._state[d] == LANE_START and n == 0:
                        # The direction's first sequence number (the SYN takes one).
                        lane.active = self._count
                        lane._seq[d] = h.seq + 1 if h.flags & TCP_SYN else h.seq
                        lane._offset[d] = 0
                        lane._state[d] = LANE_DATA
                        continue
                    elif h.flags & TCP_SYN:
                        pass
                    elif lane._state[d] != LANE_NONE and n == 0:
                        lane.active = self._count
                        continue
                    elif lane._state[d] == LANE_DATA and h.seq == lane._seq[d] and lane._sink_ready[d]:
                        sink = lane._sink0 if d == 0 else lane._sink1  # None while it holds
                        if sink is None or (<Stream>sink).expects(lane._offset[d]):
                            lane.active = self._count
                            offset = lane._offset[d]
                            lane._seq[d] += <uint32_t>n
                            lane._offset[d] += n
                            if lane._hold[d]:
                                return (ITEM_HELD, r.frames, r._timestamp(), lane, d, offset,
                                        PyBytes_FromStringAndSize(<char*>v + h.payload_at, n))
                            if sink is None:
                                continue
                            spans = self._spans
                            (<Stream>sink).feed_into(v + h.payload_at, n, spans, SHAPE_SPANS)
                            if not spans and not (<Stream>sink).failed():
                                continue
                            self._spans = []
                            return (ITEM_DECODED, r.frames, r._timestamp(), lane, d, spans)
            return (ITEM_SEGMENT, r.frames, r._timestamp(),
                    make_segment(v, &h, r._view[r._rec_at:r._rec_at + r._rec_len]))
