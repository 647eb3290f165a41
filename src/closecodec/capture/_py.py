"""The capture room, pure side: pcap/pcapng records, the link/IP/TCP headers inside them, the segment loop.

Same names, results and errors as ``_c.pyx`` beside it. Format facts:
draft-ietf-opsawg-pcap, draft-ietf-opsawg-pcapng,
the link-type registry and RFC 791 / RFC 8200 / RFC 9293. The choices both
backends follow (docs/capture.md):

Reading (:class:`PacketReader`):

- The file is read in blocks of ``block_size`` bytes (never whole); a packet's
  ``data`` is a memoryview into the block that holds it, so nothing is copied
  per packet and memory stays bounded by the block and one record.
- A record or block longer than ``max_record`` bytes is malformed (it fails at
  once, before anything is read for it): a corrupt length cannot make the
  reader allocate more.
- A file that ends inside a record is *truncated*: iteration stops after the
  last complete packet and :attr:`PacketReader.error` holds an
  :class:`~closecodec.errors.IncompleteError` whose offset is where that
  record starts. A file that is not a capture, or whose structure is broken,
  raises :class:`~closecodec.errors.MalformedError` (no packet after it).
- Frame numbers count every packet record (EPB, SPB, obsolete PB, pcap
  record), whatever its link type, from 1, as Wireshark does.
- Timestamps are exact integers of nanoseconds: ``ts * 10**9 // units`` (plus
  ``if_tsoffset`` seconds), so units finer than 1 ns are truncated. A Simple
  Packet Block has no timestamp: 0.

Parsing (:func:`parse_packet`): a packet that is not TCP over IPv4/IPv6 on a
known link type, or whose headers are cut short or invalid, is not an error:
the function returns a short reason string for the caller's counters.
IP fragments are reported (``"IP fragment"``), not reassembled; an IPv6
atomic fragment (offset 0, no more fragments) is not a fragment. An IPv4
total length of 0 (TCP segmentation offload) or an IPv6 payload length of 0
means "as much as was captured". Checksums are not verified.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ..buffer import byte_view
from ..buffer._py import SHAPE_SPANS
from ..errors import DecodeError, IncompleteError, MalformedError
from .values import (FILE_SHIFT, FOLLOWS, ITEM_BOUNDARY, ITEM_DECODED, ITEM_HELD, ITEM_SEGMENT, Packet,
                     TcpSegment, check_partition, connection_hash, reads_some)

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

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\xa1\xb2\x3c\x4d": (">", True),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_KNOWN_MAGICS = tuple(_PCAP_MAGICS) + (_PCAPNG_SHB,)
_SHB, _IDB, _PB, _SPB, _EPB = 0x0A0D0D0A, 1, 2, 3, 6
_BOM = 0x1A2B3C4D
_NS = 10**9

_START, _PCAP, _PCAPNG, _DONE = 0, 1, 2, 3


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


class PacketReader:
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

    def __init__(self, file: Any, /, *, block_size: int = DEFAULT_BLOCK_SIZE,
                 max_record: int = DEFAULT_MAX_RECORD) -> None:
        _check_sizes(block_size, max_record)
        self._file = file
        # What the file has now, not a full block: from a pipe, a packet is read as soon as it is whole.
        self._read_some = getattr(file, "read1" if reads_some(file) else "read", None)
        self._block_size = block_size
        self._max_record = max_record
        self._buf = b""
        self._view = memoryview(self._buf)
        self._pos = 0
        self._base = 0
        self._state = _START
        self._order = "<"
        self._nano = False
        self._link = 0
        self._interfaces: List[Tuple[int, int, bool, int, int]] = []
        self.format: Optional[str] = None
        self.frames = 0
        self.record_start = 0  # the file offset where the current pcap record starts
        self.error: Optional[IncompleteError] = None

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def __iter__(self) -> "PacketReader":
        return self

    def __next__(self) -> Packet:
        while True:
            state = self._state
            if state == _PCAP:
                packet = self._next_pcap()
            elif state == _PCAPNG:
                packet = self._next_pcapng()
            elif state == _START:
                self._start()
                continue
            else:
                raise StopIteration
            if packet is not None:
                return packet

    # -- buffer ------------------------------------------------------------

    def _ensure(self, need: int) -> bool:
        """Whether ``need`` bytes are available at the position, reading more if needed."""
        have = len(self._buf) - self._pos
        if have >= need:
            return True
        parts = [self._buf[self._pos:]]
        while have < need:
            chunk = self._read_some(max(self._block_size, need - have))
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        self._base += self._pos
        self._pos = 0
        self._buf = b"".join(parts)
        self._view = memoryview(self._buf)
        return have >= need

    def _stop(self, what: str, start: int) -> None:
        self._state = _DONE
        self.error = IncompleteError(what, start)

    def _fail(self, message: str, offset: int) -> None:
        self._state = _DONE
        raise MalformedError(message, offset)

    # -- formats -----------------------------------------------------------

    def _start(self) -> None:
        if not self._ensure(4):
            head = bytes(self._buf[self._pos:])
            if any(magic.startswith(head) for magic in _KNOWN_MAGICS):
                self._stop("capture file header", 0)
                return
            self._fail(f"not a pcap or pcapng file: it starts with {_hex(head)}", 0)
        magic = bytes(self._buf[self._pos:self._pos + 4])
        if magic == _PCAPNG_SHB:
            self.format = "pcapng"
            self._state = _PCAPNG
            return
        if magic not in _PCAP_MAGICS:
            self._fail(f"not a pcap or pcapng file: it starts with {_hex(magic)}", 0)
        self._order, self._nano = _PCAP_MAGICS[magic]
        if not self._ensure(24):
            self._stop("pcap file header", 0)
            return
        major, minor, _, _, _, link = struct.unpack_from(self._order + "HHiIII", self._buf, self._pos + 4)
        if major != 2:
            self._fail(f"unsupported pcap version {major}.{minor}", 4)
        self._link = link & 0xFFFF
        self._pos += 24
        self.format = "pcap"
        self._state = _PCAP

    def _next_pcap(self) -> Optional[Packet]:
        start = self.offset
        if not self._ensure(16):
            if len(self._buf) == self._pos:
                self._state = _DONE
                raise StopIteration
            self._stop("pcap packet record", start)
            return None
        seconds, fraction, caplen, origlen = struct.unpack_from(self._order + "IIII", self._buf, self._pos)
        if caplen > self._max_record - 16:
            self._fail(f"pcap packet record of {caplen} captured bytes is over the "
                       f"{self._max_record}-byte record limit", start + 8)
        if not self._ensure(16 + caplen):
            self._stop("pcap packet record", start)
            return None
        at = self._pos + 16
        self._pos = at + caplen
        self.frames += 1
        self.record_start = start
        ns = seconds * _NS + (fraction if self._nano else fraction * 1000)
        return Packet(self.frames, ns, self._link, self._view[at:at + caplen], origlen, 0)

    def _next_pcapng(self) -> Optional[Packet]:
        start = self.offset
        if not self._ensure(8):
            if len(self._buf) == self._pos:
                self._state = _DONE
                raise StopIteration
            self._stop("pcapng block", start)
            return None
        buf, pos = self._buf, self._pos
        if bytes(buf[pos:pos + 4]) == _PCAPNG_SHB:
            # Section Header Block: its byte-order magic decides how to read its length.
            if not self._ensure(12):
                self._stop("pcapng block", start)
                return None
            buf, pos = self._buf, self._pos
            bom = bytes(buf[pos + 8:pos + 12])
            if bom == b"\x4d\x3c\x2b\x1a":
                self._order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                self._order = ">"
            else:
                self._fail(f"bad byte-order magic {_hex(bom)} in a pcapng section header", start + 8)
            minimum = 28
        else:
            minimum = 12
        order = self._order
        block_type, length = struct.unpack_from(order + "II", buf, pos)
        if length < minimum or length % 4:
            self._fail(f"pcapng block length {length} is not a multiple of 4 of at least {minimum}", start + 4)
        if length > self._max_record:
            self._fail(f"pcapng block length {length} is over the {self._max_record}-byte record limit", start + 4)
        if not self._ensure(length):
            self._stop("pcapng block", start)
            return None
        buf, pos = self._buf, self._pos
        (trailer,) = struct.unpack_from(order + "I", buf, pos + length - 4)
        if trailer != length:
            self._fail(f"pcapng block length {length} does not match its trailing copy {trailer}",
                       start + length - 4)
        body = length - 12  # bytes between the two length fields
        packet = None
        if block_type == _EPB or block_type == _PB:
            if body < 20:
                self._fail(f"pcapng packet block too short ({length} bytes)", start + 4)
            if block_type == _EPB:
                interface, high, low, caplen, origlen = struct.unpack_from(order + "IIIII", buf, pos + 8)
            else:
                interface, _, high, low, caplen, origlen = struct.unpack_from(order + "HHIIII", buf, pos + 8)
            if interface >= len(self._interfaces):
                self._fail(f"packet on interface {interface}, but the section describes "
                           f"{len(self._interfaces)}", start + 8)
            if caplen > body - 20:
                self._fail(f"captured length {caplen} runs past the end of its pcapng block", start + 20)
            link, _, binary, exponent, tsoffset = self._interfaces[interface]
            ticks = high << 32 | low
            if binary:
                ns = (ticks * _NS >> exponent) + tsoffset * _NS
            else:
                ns = ticks * _NS // 10**exponent + tsoffset * _NS
            self.frames += 1
            packet = Packet(self.frames, ns, link, self._view[pos + 28:pos + 28 + caplen], origlen, interface)
        elif block_type == _SPB:
            if body < 4:
                self._fail(f"pcapng simple packet block too short ({length} bytes)", start + 4)
            if not self._interfaces:
                self._fail("simple packet block before any interface description", start)
            (origlen,) = struct.unpack_from(order + "I", buf, pos + 8)
            link, snaplen = self._interfaces[0][:2]
            caplen = min(origlen, body - 4)
            if snaplen:
                caplen = min(caplen, snaplen)
            self.frames += 1
            packet = Packet(self.frames, 0, link, self._view[pos + 12:pos + 12 + caplen], origlen, 0)
        elif block_type == _IDB:
            self._interface(buf, pos, length, start)
        elif block_type == _SHB:
            major, minor = struct.unpack_from(order + "HH", buf, pos + 12)
            if major != 1:
                self._fail(f"unsupported pcapng version {major}.{minor}", start + 12)
            self._interfaces = []
        self._pos = pos + length
        return packet

    def _interface(self, buf: Any, pos: int, length: int, start: int) -> None:
        order = self._order
        if length < 20:
            self._fail(f"pcapng interface description block too short ({length} bytes)", start + 4)
        link, _, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
        binary, exponent, tsoffset = False, 6, 0
        at, end = pos + 16, pos + length - 4
        while at + 4 <= end:
            code, size = struct.unpack_from(order + "HH", buf, at)
            if code == 0:
                break
            value = at + 4
            if value + size > end:
                self._fail(f"pcapng option {code} runs past the end of its block", start + (at - pos))
            if code == 9:
                if size != 1:
                    self._fail(f"if_tsresol option of {size} bytes (not 1)", start + (at - pos))
                resolution = buf[value]
                binary, exponent = bool(resolution & 0x80), resolution & 0x7F
            elif code == 14:
                if size != 8:
                    self._fail(f"if_tsoffset option of {size} bytes (not 8)", start + (at - pos))
                (tsoffset,) = struct.unpack_from(order + "q", buf, value)
            at = value + (size + 3) // 4 * 4
        self._interfaces.append((link, snaplen, binary, exponent, tsoffset))


def _check_sizes(block_size: Any, max_record: Any) -> None:
    for name, value in (("block_size", block_size), ("max_record", max_record)):
        if type(value) is not int:
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if not 64 <= value <= 1 << 30:
            raise ValueError(f"{name} must be 64..2**30, not {value}")


# -- several captures as one ----------------------------------------------------

class PacketMerger:
    """The packets of several capture files as one capture, in time order.

    Files whose packets overlap in time are merged packet by packet, as
    mergecap merges them (the earlier packet first; on a tie, the file given
    first); a file is opened when its first packet is due and closed when it
    ends, so a set of rotated files holds one or two open at a time.

    Args:
        opens: one callable per file, giving a :class:`PacketReader` over it
            (the merger closes the reader's file when it is done with it).
        firsts: each file's first packet time in ns (a first look at the
            file), the order in which they are opened.
        more: called when every file given so far has ended (or None): it
            may :meth:`add` files and returns whether it did, and so
            whether merging goes on (a followed rotating capture waits for
            its next file when the one it read was broken).

    Iterating yields :class:`~closecodec.frames.Packet` values whose
    ``frame`` is ``index << FILE_SHIFT | frame in that file`` (``FILE_SHIFT``
    of capture/values.py); the segment
    loop reads it as it reads one :class:`PacketReader`.

    Attributes:
        failures: ``(index, error)`` for each file that could not be read to
            its end (an ``OSError`` opening it, the ``MalformedError`` that
            stopped it, the ``IncompleteError`` of a truncated last record);
            the packets before were merged.
        packets: how many packets were merged so far.
        offset: the bytes of the files read to their end, and of the last packet's
            file up to it.
        error: always None (a file's error is in ``failures``).
    """

    def __init__(self, opens: Any, firsts: Any, /, more: Optional[Callable[[], bool]] = None) -> None:
        if type(opens) is not list or type(firsts) is not list or len(opens) != len(firsts):
            raise TypeError("opens and firsts are lists of the same length")
        self._opens = opens
        self._more = more
        self._firsts = firsts
        self._order = sorted(range(len(opens)), key=lambda i: (firsts[i], i))
        self._next = 0
        self._readers: List[Any] = [None] * len(opens)
        self._heads: Dict[int, Packet] = {}  # per open file, the packet read and not yet merged
        self._last = -1
        self._done_bytes = 0
        self._offset = 0
        self.format: Optional[str] = None
        self.frames = 0
        self.error = None
        self.failures: List[Tuple[int, Exception]] = []
        self.packets = 0

    @property
    def offset(self) -> int:
        return self._offset

    def close(self) -> None:
        """Close the files still open (iteration was stopped early); nothing more is read."""
        for i, reader in enumerate(self._readers):
            if reader is not None:
                self._retire(i)
        self._last = -1
        self._next = len(self._order)
        self._more = None

    def open_before(self, index: int) -> bool:
        """Whether a file before ``index`` (in the order given) still has packets to merge."""
        return any(reader is not None for reader in self._readers[:index])

    def add(self, open: Any, /) -> None:
        """Add a file after all the others (a rotating capture's next): ``open`` gives its reader, which
        is opened once every file before it has ended. Its index is the number of files before it."""
        self._opens.append(open)
        self._firsts.append(FOLLOWS)
        self._readers.append(None)
        self._order.append(len(self._opens) - 1)

    def _read(self, i: int) -> None:
        """Read file ``i``'s next packet; retire it at its end, noting why it ended early."""
        reader = self._readers[i]
        if reader is None:  # closed
            return
        try:
            self._heads[i] = next(reader)
            return
        except StopIteration:
            if reader.error is not None:  # truncated: the records before the cut are kept
                self.failures.append((i, reader.error))
        except DecodeError as error:  # broken structure: what came before is kept
            self.failures.append((i, error))
        self._retire(i)

    def _retire(self, i: int) -> None:
        reader = self._readers[i]
        self._readers[i] = None
        self._heads.pop(i, None)
        self._done_bytes += reader.offset
        reader._file.close()

    def _open(self, i: int) -> None:
        try:
            reader = self._opens[i]()
        except (OSError, ValueError, TypeError) as error:
            self.failures.append((i, error))
            return
        self._readers[i] = reader
        self._read(i)

    def __iter__(self) -> "PacketMerger":
        return self

    def __next__(self) -> Packet:
        if self._last >= 0:
            self._read(self._last)
            self._last = -1
        while True:
            best = -1
            best_time = None
            for i, packet in self._heads.items():
                time = packet.timestamp_ns
                if best < 0 or time < best_time or (time == best_time and i < best):
                    best, best_time = i, time
            if self._next < len(self._order):
                i = self._order[self._next]
                if best < 0 or self._firsts[i] < best_time or (self._firsts[i] == best_time and i < best):
                    self._next += 1
                    self._open(i)
                    continue
            if best < 0:
                if self._more is not None and self._more():
                    continue
                raise StopIteration
            break
        packet = self._heads.pop(best)
        reader = self._readers[best]
        self._last = best
        self.packets += 1
        self.frames = best << FILE_SHIFT | packet.frame
        self._offset = self._done_bytes + reader.offset  # the files read to their end, and this one so far
        self.format = reader.format
        return Packet(self.frames, packet.timestamp_ns, packet.link_type, packet.data, packet.original_length,
                      packet.interface)


# -- link, IP and TCP headers --------------------------------------------------

_ETHERNET, _SLL, _SLL2, _NULL, _LOOP, _RAW, _RAW_OLD, _IPV4, _IPV6 = 1, 113, 276, 0, 108, 101, 12, 228, 229
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
# IPv6 extension headers with the generic layout (RFC 8200 §4: next header,
# length in 8-octet units not counting the first 8): hop-by-hop, routing,
# destination options, mobility, HIP, shim6.
_IPV6_GENERIC = frozenset((0, 43, 60, 135, 139, 140))


def loop_key(src: bytes, src_port: int, dst: bytes, dst_port: int) -> tuple:
    """How a segment loop keys a 4-tuple in its ``keep`` set and ``drop`` dict (a tuple here)."""
    return (src, src_port, dst, dst_port)


def parse_packet(data: Any, link_type: int, /) -> Union[TcpSegment, str]:
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
    view = byte_view(data)
    if type(link_type) is not int:
        raise TypeError(f"link_type must be an int, not {type(link_type).__name__}")
    size = len(view)
    pos = 0
    if link_type == _ETHERNET or link_type == _SLL or link_type == _SLL2:
        header, type_at = (14, 12) if link_type == _ETHERNET else (16, 14) if link_type == _SLL else (20, 0)
        if size < header:
            return "truncated link header"
        ethertype = view[type_at] << 8 | view[type_at + 1]
        pos = header
        while ethertype in _VLAN_TYPES:  # 802.1Q / 802.1ad: TCI (2) then the next EtherType (2)
            if size - pos < 4:
                return "truncated link header"
            ethertype = view[pos + 2] << 8 | view[pos + 3]
            pos += 4
        if ethertype == 0x0800:
            version = 4
        elif ethertype == 0x86DD:
            version = 6
        else:
            return "not IP"
    elif link_type == _NULL or link_type == _LOOP:
        if size < 4:
            return "truncated link header"
        family = view[0] << 24 | view[1] << 16 | view[2] << 8 | view[3]
        if link_type == _NULL and not family & 0xFFFF:
            # NULL: the capturing host's byte order; a family is small, so a
            # value with empty low bytes was written little-endian.
            family = (family >> 24) | (family >> 8 & 0xFF00)
        pos = 4
        if family == 2:
            version = 4
        elif family in (24, 28, 30):  # AF_INET6: NetBSD/OpenBSD, FreeBSD, macOS
            version = 6
        else:
            return "not IP"
    elif link_type == _RAW or link_type == _RAW_OLD or link_type == _IPV4 or link_type == _IPV6:
        if size < 1:
            return "truncated IP header"
        version = view[0] >> 4
        if link_type == _IPV4 and version != 4 or link_type == _IPV6 and version != 6:
            return "bad IPv4 header" if link_type == _IPV4 else "bad IPv6 header"
        if version != 4 and version != 6:
            return "not IP"
    else:
        return "unsupported link type"

    if version == 4:  # RFC 791 §3.1
        if size - pos < 20:
            return "truncated IP header"
        if view[pos] >> 4 != 4:
            return "bad IPv4 header"
        ihl = (view[pos] & 0x0F) * 4
        total = view[pos + 2] << 8 | view[pos + 3]
        if ihl < 20 or (total and total < ihl):
            return "bad IPv4 header"
        if size - pos < ihl:
            return "truncated IP header"
        wire_end = pos + total if total else size
        if (view[pos + 6] << 8 | view[pos + 7]) & 0x3FFF:  # MF flag or a fragment offset
            return "IP fragment"
        protocol = view[pos + 9]
        src = bytes(view[pos + 12:pos + 16])
        dst = bytes(view[pos + 16:pos + 20])
        pos += ihl
    else:  # RFC 8200 §3
        if size - pos < 40:
            return "truncated IP header"
        if view[pos] >> 4 != 6:
            return "bad IPv6 header"
        payload_length = view[pos + 4] << 8 | view[pos + 5]
        protocol = view[pos + 6]
        src = bytes(view[pos + 8:pos + 24])
        dst = bytes(view[pos + 24:pos + 40])
        pos += 40
        wire_end = pos + payload_length if payload_length else size
        while protocol != 6:
            if protocol in _IPV6_GENERIC or protocol == 51:
                if min(size, wire_end) - pos < 2:
                    return "truncated IP header" if size < wire_end else "bad IPv6 extension header"
                # AH (RFC 4302 §2.2) counts 4-octet units minus 2.
                length = (view[pos + 1] + 2) * 4 if protocol == 51 else (view[pos + 1] + 1) * 8
                protocol = view[pos]
            elif protocol == 44:  # fragment header (RFC 8200 §4.5), 8 octets
                if min(size, wire_end) - pos < 8:
                    return "truncated IP header" if size < wire_end else "bad IPv6 extension header"
                if (view[pos + 2] << 8 | view[pos + 3]) & 0xFFF9:  # offset or M: a real fragment
                    return "IP fragment"
                length = 8
                protocol = view[pos]
            else:
                return "not TCP"
            pos += length
            if pos > wire_end:
                return "bad IPv6 extension header"
    if protocol != 6:
        return "not TCP"
    # TCP header (RFC 9293 §3.1)
    captured_end = min(size, wire_end)
    if wire_end - pos < 20:
        return "bad TCP header"
    if captured_end - pos < 20:
        return "truncated TCP header"
    offset = (view[pos + 12] >> 4) * 4
    if offset < 20 or pos + offset > wire_end:
        return "bad TCP header"
    if pos + offset > captured_end:
        return "truncated TCP header"
    src_port = view[pos] << 8 | view[pos + 1]
    dst_port = view[pos + 2] << 8 | view[pos + 3]
    seq = view[pos + 4] << 24 | view[pos + 5] << 16 | view[pos + 6] << 8 | view[pos + 7]
    ack = view[pos + 8] << 24 | view[pos + 9] << 16 | view[pos + 10] << 8 | view[pos + 11]
    flags = (view[pos + 12] & 0x0F) << 8 | view[pos + 13]
    payload = memoryview(view)[pos + offset:captured_end]
    return TcpSegment(src, src_port, dst, dst_port, seq, ack, flags, payload, wire_end - captured_end)


# -- the per-packet loop of the close-record reader ----------------------------------

_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
# What a lane's direction takes without the reassembler (SegmentLoop):
_LANE_NONE = 0  # nothing: every segment is returned
_LANE_ACKS = 1  # segments without payload, SYN, FIN or RST (they only mark the connection active)
_LANE_DATA = 2  # those, and the next in-order payload, into the direction's sink
_LANE_START = 3  # not started: a segment without payload, FIN or RST starts it (then _LANE_DATA)


class Lane:
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

    __slots__ = ("connection", "active", "_loop", "_forward", "_reverse", "_state", "_seq", "_offset",
                 "_sink_ready", "_hold", "_fin_ok", "_sinks", "_fins")

    def __init__(self, loop: "SegmentLoop", connection: Any, key: tuple) -> None:
        client, client_port, server, server_port = key
        self.connection = connection
        self.active = 0
        self._loop = loop
        self._forward = key
        self._reverse = (server, server_port, client, client_port)
        self._state = [_LANE_NONE, _LANE_NONE]
        self._seq = [0, 0]
        self._offset = [0, 0]
        self._sink_ready = [False, False]
        self._hold = [False, False]
        self._fin_ok = [False, False]
        self._sinks: List[Any] = [None, None]
        self._fins: List[Optional[Tuple[int, int]]] = [None, None]  # (frame, timestamp_ns) of a FIN it took
        loop._table[self._forward] = (self, 0)
        loop._table[self._reverse] = (self, 1)

    def expect(self, direction: int, state: int, seq: int = 0, offset: int = 0, fin: bool = False) -> None:
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
        if direction not in (0, 1) or state not in (_LANE_NONE, _LANE_ACKS, _LANE_DATA, _LANE_START):
            raise ValueError(f"bad direction {direction} or state {state}")
        if not (0 <= seq <= 0xFFFFFFFF and 0 <= offset <= 0x7FFFFFFFFFFFFFFF):
            raise ValueError(f"bad sequence number {seq} or offset {offset}")
        self._state[direction] = state
        self._seq[direction] = seq
        self._offset[direction] = offset
        self._fin_ok[direction] = bool(fin) and state in (_LANE_DATA, _LANE_START)

    def sink(self, direction: int, ready: bool, sink: Any = None) -> None:
        """Where in-order payload of ``direction`` goes: ``sink`` (a pure-Python stream, or None to drop it).

        ``ready`` False: the payload goes back to Python. A sink without
        ``feed_into`` is never fed here.
        """
        if direction not in (0, 1):
            raise ValueError(f"bad direction {direction}")
        if sink is not None and not hasattr(sink, "feed_into"):
            ready = False
        self._sink_ready[direction] = bool(ready)
        self._hold[direction] = False
        self._sinks[direction] = sink

    def hold(self, direction: int) -> None:
        """In-order payload of ``direction`` comes back to Python as bytes (until :meth:`sink`)."""
        self.sink(direction, True, None)
        self._hold[direction] = True

    def take_back(self) -> Tuple[Optional[tuple], Optional[tuple]]:
        """Stop taking segments. Per direction: ``(seq, offset)`` expected next where it took payload;
        ``(seq, offset, frame, timestamp_ns)`` where it took the FIN (at that sequence number and offset,
        in that frame); else None."""
        positions: List[Optional[tuple]] = [None, None]
        for d in (0, 1):
            fin = self._fins[d]
            if fin is not None:
                positions[d] = (self._seq[d], self._offset[d]) + fin
            elif self._state[d] == _LANE_DATA:
                positions[d] = (self._seq[d], self._offset[d])
        self._state = [_LANE_NONE, _LANE_NONE]
        self._fin_ok = [False, False]
        self._fins = [None, None]
        return tuple(positions)  # type: ignore[return-value]

    def detach(self) -> None:
        """Forget the connection: its segments are returned to Python from now on."""
        self._state = [_LANE_NONE, _LANE_NONE]
        self._fin_ok = [False, False]
        self._fins = [None, None]
        table = self._loop._table
        for key in (self._forward, self._reverse):
            if table.get(key, (None,))[0] is self:
                del table[key]
        self._sinks = [None, None]


class SegmentLoop:
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

    def __init__(self, packets: PacketReader, skipped: Any, progress: Any = None,
                 partition: Optional[Tuple[int, int]] = None, boundary: Optional[int] = None,
                 drop: Optional[Dict[tuple, List[int]]] = None) -> None:
        self._packets = packets
        self._table: Dict[tuple, Tuple[Lane, int]] = {}
        self._skipped = skipped
        self._progress = progress
        self._count = 0
        self._last: Optional[Tuple[int, int]] = None
        self._part_index, self._part_count = check_partition(partition)
        self._boundary = -1 if boundary is None else boundary
        self._by_file = isinstance(packets, PacketMerger)
        self._continuing = False
        self._pending: Optional[Packet] = None
        self._prev: Any = None  # the time of the record before (a set's chunk: a tie across the boundary)
        self._drop = drop
        self.keep: Any = None

    @property
    def last_segment(self) -> Optional[Tuple[int, int]]:
        """``(frame, timestamp_ns)`` of the last packet with a TCP segment read so far, or None."""
        return self._last

    @property
    def count(self) -> int:
        """Packet records read so far (the clock of :attr:`Lane.active`)."""
        return self._count

    def lane(self, connection: Any, key: tuple) -> Lane:
        """A :class:`Lane` for a connection whose client-to-server 4-tuple is ``key``."""
        return Lane(self, connection, key)

    def __iter__(self) -> "SegmentLoop":
        return self

    def __next__(self) -> tuple:
        packets = self._packets
        table = self._table
        while True:
            if self._pending is not None:
                packet, self._pending = self._pending, None  # the record read before the boundary item
            else:
                packet = next(packets)
                self._count += 1
                if self._progress is not None and not self._count & 0xFFF:
                    self._progress(packets.offset)
                if self._boundary >= 0:
                    position = packet.frame >> FILE_SHIFT if self._by_file else packets.record_start
                    if self._continuing:
                        if position < self._boundary:  # a file of this chunk after the next chunk's first
                            return (ITEM_BOUNDARY, False)
                    elif position >= self._boundary:
                        self._continuing = True
                        self._pending = packet
                        if self._by_file:  # a tie in time across the boundary may be merged otherwise
                            return (ITEM_BOUNDARY, packet.timestamp_ns != self._prev)
                        return (ITEM_BOUNDARY, position == self._boundary)
                    elif self._by_file:
                        self._prev = packet.timestamp_ns
            segment = parse_packet(packet.data, packet.link_type)
            if type(segment) is str:
                if not self._part_index and not self._continuing:
                    self._skipped[segment] += 1
                continue
            self._last = (packet.frame, packet.timestamp_ns)
            if self._part_count > 1 and (connection_hash(segment.src, segment.src_port, segment.dst,
                                                         segment.dst_port) % self._part_count) != self._part_index:
                continue
            if self._continuing:
                if (segment.src, segment.src_port, segment.dst, segment.dst_port) not in self.keep:
                    continue
            elif self._drop:
                entry = self._drop.get((segment.src, segment.src_port, segment.dst, segment.dst_port))
                if entry is not None:  # [first, last, pure SYNs...]: packet counts
                    entry[1] = self._count
                    if segment.flags & _SYN and not segment.flags & _ACK:
                        entry.append(self._count)
                    continue
            if not segment.missing and not segment.flags & _RST:
                found = table.get((segment.src, segment.src_port, segment.dst, segment.dst_port))
                if found is not None:
                    lane, d = found
                    n = len(segment.payload)
                    state = lane._state[d]
                    if segment.flags & _FIN:
                        if (n == 0 and not segment.flags & _SYN and state == _LANE_DATA and lane._fin_ok[d]
                                and segment.seq == lane._seq[d]):
                            # The direction ends here; the other's FIN (the connection's end) is Python's.
                            lane.active = self._count
                            lane._fins[d] = (packet.frame, packet.timestamp_ns)
                            lane._state[d] = _LANE_ACKS
                            lane._fin_ok = [False, False]
                            continue
                    elif state == _LANE_START and n == 0:
                        # The direction's first sequence number (the SYN takes one).
                        lane.active = self._count
                        lane._seq[d] = (segment.seq + 1) & 0xFFFFFFFF if segment.flags & _SYN else segment.seq
                        lane._offset[d] = 0
                        lane._state[d] = _LANE_DATA
                        continue
                    elif segment.flags & _SYN:
                        pass
                    elif state != _LANE_NONE and n == 0:
                        lane.active = self._count
                        continue
                    elif state == _LANE_DATA and segment.seq == lane._seq[d] and lane._sink_ready[d]:
                        sink = lane._sinks[d]  # None while it holds
                        if sink is None or (sink.error is None and sink.position == lane._offset[d]):
                            lane.active = self._count
                            offset = lane._offset[d]
                            lane._seq[d] = (lane._seq[d] + n) & 0xFFFFFFFF
                            lane._offset[d] += n
                            if lane._hold[d]:
                                return (ITEM_HELD, packet.frame, packet.timestamp_ns, lane, d, offset,
                                        bytes(segment.payload))
                            if sink is None:
                                continue
                            spans: List[Any] = []
                            sink.feed_into(segment.payload, spans, SHAPE_SPANS)
                            if not spans and sink.error is None:
                                continue
                            return (ITEM_DECODED, packet.frame, packet.timestamp_ns, lane, d, spans)
            return (ITEM_SEGMENT, packet.frame, packet.timestamp_ns, segment)
