"""The capture reader's packet-level values: a packet record and the TCP segment inside it.

See ``closecodec/value.py`` for what every value guarantees; docs/capture.md
for the reader.
"""

from __future__ import annotations

import io
from typing import Any, Tuple

from ..value import Value

__all__ = [
    "ITEM_DECODED",
    "ITEM_BOUNDARY",
    "ITEM_HELD",
    "FILE_SHIFT",
    "FRAME_MASK",
    "ITEM_SEGMENT",
    "Packet",
    "TcpSegment",
    "check_partition",
    "partition_of",
]

# What the segment loop (``_c.pyx`` and ``_py.py``) hands the record reader: a tuple whose first
# item says which of three it is (SegmentLoop's docstring has their fields).
ITEM_SEGMENT = 0  #: a TCP segment for the reassembler
ITEM_DECODED = 1  #: what a lane's decoder returned for a frame's payload
ITEM_HELD = 2  #: the in-order payload of a direction that holds it
ITEM_BOUNDARY = 3  #: a chunk's loop reached the next chunk (or found that it cannot have)

#: A packet of a merged capture set (``PacketMerger``) has the frame number ``index << FILE_SHIFT | frame``:
#: the index of its file in the set, and its frame number in that file.
FILE_SHIFT = 40
FRAME_MASK = (1 << FILE_SHIFT) - 1
#: The first packet time of a file added to a merger (``PacketMerger.add``): after every packet, so it is
#: opened when the files before it have ended (and below the compiled merger's "none" mark, INT64_MAX).
FOLLOWS = (1 << 63) - 2


def reads_some(file: object) -> bool:
    """Whether a packet reader takes what ``file`` has now through its ``read1`` and ``readinto1``: the
    file's class has its own ``read1`` (``io.BufferedIOBase``'s raises ``UnsupportedOperation``)."""
    read1 = getattr(type(file), "read1", None)
    return read1 is not None and read1 is not io.BufferedIOBase.read1


def partition_of(src: Any, src_port: Any, dst: Any, dst_port: Any, count: Any) -> int:
    """Which of ``count`` partitions a TCP connection belongs to, the same for both of its directions.

    Each endpoint (its address bytes, then its port's two bytes, big-endian) is hashed with
    32-bit FNV-1a; the two hashes are combined with XOR (so the order of the endpoints does
    not matter), mixed by a multiplication (Fibonacci hashing), and the high 16 bits taken
    modulo ``count``. The segment loops of both backends compute exactly this
    (docs/scale.md, "Partitions").

    Raises:
        TypeError: an address that is not ``bytes``, or a port or ``count`` that is not an ``int``
            (exactly: not a bool or another subclass, as for a loop's ``partition``).
        ValueError: a port outside 0 to 65535, or ``count`` less than 1.
    """
    # Checked here, not left to the annotations: compiled, they would convert a float port and refuse a
    # bytearray; interpreted, the reverse. Exact types: compiled, an int subclass would be hashed as its
    # __int__, interpreted as its own >> and &.
    for address in (src, dst):
        if type(address) is not bytes:
            raise TypeError(f"an address is bytes, not {type(address).__name__}")
    for number in (src_port, dst_port, count):
        if type(number) is not int:
            raise TypeError(f"ports and the count are ints, not {type(number).__name__}")
    for port in (src_port, dst_port):
        if not 0 <= port <= 0xFFFF:
            raise ValueError(f"a port is from 0 to 65535, not {port}")
    if count < 1:
        raise ValueError(f"the count of partitions is at least 1, not {count}")
    return connection_hash(src, src_port, dst, dst_port) % count


def connection_hash(src: bytes, src_port: int, dst: bytes, dst_port: int) -> int:
    """:func:`partition_of`'s number before the modulo, unchecked: for the pure segment loop, whose
    segments hold bytes and ports."""
    mixed = ((_endpoint_hash(src, src_port) ^ _endpoint_hash(dst, dst_port)) * 0x9E3779B1) & 0xFFFFFFFF
    return mixed >> 16


def check_partition(partition: Any) -> Tuple[int, int]:
    """``(index, count)`` of a segment loop's ``partition`` argument, checked; ``(0, 1)`` for None.

    Raises:
        TypeError: not None or a pair of ints.
        ValueError: ``count`` is less than 1, or ``index`` is not in ``range(count)``.
    """
    if partition is None:
        return 0, 1
    if not isinstance(partition, tuple) or len(partition) != 2 or not all(
            type(part) is int for part in partition):
        raise TypeError(f"partition must be None or a pair of ints (index, count), not {partition!r}")
    index, count = partition
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"partition (index, count) needs 0 <= index < count, not {partition!r}")
    return index, count


def _endpoint_hash(address: bytes, port: int) -> int:
    h = 0x811C9DC5
    for byte in address:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    h = ((h ^ (port >> 8)) * 0x01000193) & 0xFFFFFFFF
    return ((h ^ (port & 0xFF)) * 0x01000193) & 0xFFFFFFFF


# -- packet captures (docs/capture.md) ---------------------------------------------


class Packet(Value):
    """One packet record of a pcap or pcapng file, as :class:`closecodec.capture.PacketReader` yields it.

    Args:
        frame: the frame number, 1-based, counting every packet record of the
            file (as Wireshark numbers frames).
        timestamp_ns: the capture time in nanoseconds since 1970-01-01 UTC, an
            exact integer (pcapng: the interface's ``if_tsresol`` and
            ``if_tsoffset`` applied; finer units are truncated to whole ns).
        link_type: the LINKTYPE_ value of the interface (1 Ethernet, ...).
        data: the captured bytes, a read-only memoryview into the reader's
            block (no copy); ``bytes(packet.data)`` keeps them past the block.
        original_length: the packet's length on the wire.
        interface: the pcapng interface id (0 for pcap).

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range.
    """

    _fields = ("frame", "timestamp_ns", "link_type", "data", "original_length", "interface")

    def __init__(self, frame: Any, timestamp_ns: Any, link_type: Any, data: Any, original_length: Any,
                 interface: Any = 0) -> None:
        for name, value in (("frame", frame), ("timestamp_ns", timestamp_ns), ("link_type", link_type),
                            ("original_length", original_length), ("interface", interface)):
            if type(value) is not int:
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        self.frame = frame
        self.timestamp_ns = timestamp_ns
        self.link_type = link_type
        self.data = data
        self.original_length = original_length
        self.interface = interface

    @property
    def timestamp(self) -> float:
        """The capture time in seconds since the epoch, as a float (sub-µs digits may round)."""
        return self.timestamp_ns / 1e9

    def __repr__(self) -> str:
        return (f"Packet(frame={self.frame!r}, timestamp_ns={self.timestamp_ns!r}, link_type={self.link_type!r}, "
                f"data=<{len(self.data)} bytes>, original_length={self.original_length!r}, "
                f"interface={self.interface!r})")


class TcpSegment(Value):
    """The TCP segment inside a packet, as ``parse_packet`` finds it.

    Args:
        src: the source IP address, packed (4 bytes IPv4, 16 bytes IPv6).
        src_port: the source port.
        dst: the destination IP address, packed.
        dst_port: the destination port.
        seq: the sequence number.
        ack: the acknowledgment number.
        flags: the TCP flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, ...).
        payload: the captured TCP payload, a memoryview into the packet's bytes.
        missing: payload bytes the IP header counts but the capture cut off
            (snap length), which follow ``payload`` on the wire.

    Raises:
        TypeError: a field of the wrong type.
    """

    _fields = ("src", "src_port", "dst", "dst_port", "seq", "ack", "flags", "payload", "missing")

    def __init__(self, src: Any, src_port: Any, dst: Any, dst_port: Any, seq: Any, ack: Any, flags: Any,
                 payload: Any, missing: Any = 0) -> None:
        for name, value in (("src_port", src_port), ("dst_port", dst_port), ("seq", seq), ("ack", ack),
                            ("flags", flags), ("missing", missing)):
            if type(value) is not int:
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        self.src = bytes(src)
        self.src_port = src_port
        self.dst = bytes(dst)
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.payload = payload
        self.missing = missing

    def __repr__(self) -> str:
        return (f"TcpSegment(src={self.src!r}, src_port={self.src_port!r}, dst={self.dst!r}, "
                f"dst_port={self.dst_port!r}, seq={self.seq!r}, ack={self.ack!r}, flags=0x{self.flags:03x}, "
                f"payload=<{len(self.payload)} bytes>, missing={self.missing!r})")
