# cython: annotation_typing=False
"""Read packet captures and reassemble their TCP streams (docs/capture.md).

Three layers, each usable alone:

- :func:`open_capture` / :class:`PacketReader`: the packets of a pcap or pcapng
  file (a path, a binary file object or standard input), read in blocks, in
  constant memory. Compiled when the compiled backend is built.
- :func:`parse_packet`: the TCP segment inside one packet (Ethernet with VLAN
  tags, Linux SLL/SLL2, raw IP, BSD NULL/LOOP; IPv4 with options, IPv6 with
  extension headers), or a reason it has none. Compiled likewise.
- :class:`TcpReassembler`: per-connection, per-direction reassembly into an
  ordered sequence of :class:`StreamStart`, :class:`StreamData`,
  :class:`StreamGap` and :class:`StreamEnd` events, in bounded memory. This
  module is plain Python; where a compiler is available it is also compiled by
  Cython (pure-Python mode, with the declarations in ``reassembly.pxd``). The
  source, and so the behaviour, is the same either way.

:class:`TcpStreamReader` runs all three over a file. Reassembly policies:

- A connection is its 4-tuple; ``direction`` 0 is from the client (the sender
  of the SYN, or of the first packet seen when the capture starts mid-stream)
  and 1 from the server. Streams are numbered from 0 in order of first packet,
  like tshark's ``tcp.stream``.
- A SYN sets the direction's initial sequence number (its data starts one
  later); without one, the first sequence number seen is offset 0. A SYN and a
  FIN each take one sequence number.
- Where segments overlap, the bytes seen first win (retransmitted or
  overlapping bytes that disagree are dropped, as tshark keeps the first copy).
- Data ahead of a hole waits in a bounded out-of-order buffer, and is delivered
  at the frame that fills the hole (Wireshark's frame for it). When the
  direction's or the total buffer limit is passed, or the connection ends,
  the hole is skipped: a :class:`StreamGap` says how many bytes were lost and
  the data after it follows intact. Bytes the capture cut off (snap length)
  are gaps too.
- A FIN ends its direction once every byte before it is delivered
  (``StreamEnd.reason == "fin"``); a RST ends both at once (``"rst"``). At the
  end of the capture every open direction ends with ``"eof"``; a connection
  evicted to respect ``max_connections`` ends with ``"evicted"``; a new SYN on
  a 4-tuple that carried another connection ends it with ``"reused"``.
- Packets that arrive for a closed connection (the last ACK, a retransmitted
  FIN) are absorbed; a SYN on it starts a new connection.
"""

from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right
from collections import Counter, OrderedDict
from heapq import heapify, heappop, heappush, heapreplace
from ipaddress import ip_address
from os import PathLike, fspath
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from .._backend import DEFAULT_BLOCK_SIZE, DEFAULT_MAX_RECORD, PacketReader, parse_packet
from ..errors import IncompleteError
from .files import is_dir, list_dir, open_file
from .values import Packet, TcpSegment

__all__ = [
    "CAPTURE_MAGICS",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_MAX_BUFFER_PER_DIRECTION",
    "DEFAULT_MAX_BUFFER_TOTAL",
    "DEFAULT_MAX_CLOSED",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_RECORD",
    "FrameIndex",
    "Packet",
    "PacketReader",
    "StreamData",
    "StreamEnd",
    "StreamGap",
    "StreamStart",
    "TcpConnection",
    "TcpReassembler",
    "TcpSegment",
    "TcpStreamReader",
    "capture_files",
    "first_packet_time",
    "open_capture",
    "parse_packet",
]

#: Out-of-order bytes held for one direction before its first hole is skipped: 1 MiB.
DEFAULT_MAX_BUFFER_PER_DIRECTION = 1 << 20
#: Out-of-order bytes held across all connections: 64 MiB.
DEFAULT_MAX_BUFFER_TOTAL = 64 << 20
#: Open connections tracked at once; the least recently active is evicted past it.
DEFAULT_MAX_CONNECTIONS = 65536
#: Closed connections remembered (to absorb their late packets).
DEFAULT_MAX_CLOSED = 65536
#: Bookkeeping counted per held out-of-order piece, on top of its bytes.
PIECE_OVERHEAD = 64

_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
_MOD = 1 << 32
_HALF = 1 << 31


def open_capture(source: Union[str, "PathLike[str]", BinaryIO, None], /, *,
                 block_size: int = DEFAULT_BLOCK_SIZE, max_record: int = DEFAULT_MAX_RECORD) -> PacketReader:
    """A :class:`PacketReader` over a capture file.

    Args:
        source: a path, ``"-"`` or None for standard input, or a binary file
            object (read from its current position; not closed here).
        block_size: bytes read at a time.
        max_record: the largest record or block accepted.

    Returns:
        A reader; iterate it for :class:`~closecodec.frames.Packet` values. A
        path is opened here and closed when the reader is exhausted or
        garbage-collected (use :class:`TcpStreamReader` as a context manager
        to close it at once).

    Raises:
        OSError: the path cannot be opened.
        TypeError, ValueError: a bad argument.
    """
    file, _ = _source_file(source)
    return PacketReader(file, block_size=block_size, max_record=max_record)


def _source_file(source: Union[str, "PathLike[str]", BinaryIO, None]) -> Tuple[Any, bool]:
    """The binary file to read for ``source``, and whether it was opened here (a path)."""
    if source is None or source == "-":
        return sys.stdin.buffer, False
    if isinstance(source, (str, bytes, PathLike)):
        path = fspath(source)
        return open_file(path) if isinstance(path, str) else open(path, "rb"), True
    return source, False


class SourceReader:
    """What the readers of a capture source share: a path is opened, and closed by :meth:`close`.

    A list or tuple of paths is a capture set: no file is opened here, the reader opens the set
    (:func:`capture_files`) and keeps what closes it in ``_owned``.
    """

    def __init__(self, source: Union[str, "PathLike[str]", BinaryIO, None, Sequence[Any]]) -> None:
        if isinstance(source, (list, tuple)):
            self._file = self._owned = None
            return
        self._file, owned = _source_file(source)
        self._owned = self._file if owned else None

    def close(self) -> None:
        """Close the file if this reader opened it (the files of a set that are still open)."""
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- capture sets ----------------------------------------------------------------

#: The first four bytes of a pcap file (either byte order; µs or ns) or a pcapng file.
CAPTURE_MAGICS = frozenset((b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1",
                            b"\x0a\x0d\x0d\x0a"))


def capture_files(paths: Sequence[Union[str, "PathLike[str]"]]) -> Tuple[List[str], List[Tuple[str, str]]]:
    """The files of a capture set, and what it leaves out.

    A directory stands for its files that start with a pcap or pcapng magic
    number (recognised by their bytes, not their names), by name; any other
    path is taken as it is. Returns the files, and ``(path, why)`` for each
    directory that cannot be listed and each file of a directory that is not
    a capture or cannot be read.
    """
    files: List[str] = []
    left_out: List[Tuple[str, str]] = []
    for path in map(fspath, paths):
        if not is_dir(path):
            files.append(path)
            continue
        try:
            inside_files = list_dir(path)
        except OSError as error:
            left_out.append((path, f"cannot list the directory: {error.strerror or error}"))
            continue
        for inside in inside_files:
            try:
                with open_file(inside) as file:
                    magic = file.read(4)
            except OSError as error:
                left_out.append((inside, f"cannot read it: {error.strerror or error}"))
                continue
            if magic in CAPTURE_MAGICS:
                files.append(inside)
            else:
                left_out.append((inside, "not a pcap or pcapng file (by its first bytes); left out"))
    return files, left_out


def first_packet_time(reader: Any) -> Optional[int]:
    """The time of the first packet of a fresh packet reader (a first look at its file), or None when
    it has no whole packet (``reader.error`` then says whether it is cut inside its first record).

    Raises:
        MalformedError: the file is not a capture, or its first record is broken.
    """
    for packet in reader:
        return packet.timestamp_ns
    return None


# -- values ----------------------------------------------------------------------


class TupleValue(tuple):
    """Immutable (a tuple underneath), hashable, compared by type and fields, repr by fields."""

    __slots__ = ()
    _fields: Tuple[str, ...] = ()

    def __new__(cls, *fields: Any) -> Any:
        if len(fields) != len(cls._fields):
            raise TypeError(f"{cls.__name__} takes {len(cls._fields)} fields, not {len(fields)}")
        return tuple_new(cls, fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return tuple.__ne__(self, other)

    # Ordering would compare different kinds of event as tuples: not offered.
    __lt__ = __le__ = __gt__ = __ge__ = None  # type: ignore[assignment]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self)))

    def __repr__(self) -> str:
        fields = ", ".join([f"{name}={value!r}" for name, value in zip(self._fields, self)])
        return f"{type(self).__name__}({fields})"

    def __getnewargs__(self) -> tuple:
        return tuple(self)


tuple_new = tuple.__new__


try:
    # namedtuple's field descriptor (CPython 3.8+, in C): several times cheaper than a property.
    from collections import _tuplegetter  # type: ignore[attr-defined]
except ImportError:  # another implementation
    from operator import itemgetter

    def _tuplegetter(index: int, doc: str) -> Any:
        return property(itemgetter(index), doc=doc)


def with_fields(cls: Any) -> Any:
    """Give a TupleValue subclass one read-only attribute per name in ``_fields``."""
    for i, name in enumerate(cls._fields):
        setattr(cls, name, _tuplegetter(i, f"field {i}: {name}"))
    return cls


@with_fields
class TcpConnection(TupleValue):
    """One TCP connection: its stream number and endpoints.

    Args:
        stream: 0, 1, ... in order of first packet (tshark's ``tcp.stream``).
        client: the client's packed IP address (4 or 16 bytes).
        client_port: the client's port.
        server: the server's packed IP address.
        server_port: the server's port.
    """

    __slots__ = ()
    _fields = ("stream", "client", "client_port", "server", "server_port")

    @property
    def ip_version(self) -> int:
        return 4 if len(self.client) == 4 else 6

    def endpoint(self, direction: int) -> Tuple[str, str]:
        """``(source, destination)`` of ``direction`` as text, ``ip:port`` or ``[ip]:port``."""
        client = _endpoint(self.client, self.client_port)
        server = _endpoint(self.server, self.server_port)
        return (client, server) if direction == 0 else (server, client)

    def __str__(self) -> str:
        client, server = self.endpoint(0)
        return f"stream {self.stream}: {client} -> {server}"


# Packed address -> its text in an endpoint (a capture has many connections per address); emptied when full.
_ADDRESS_TEXT: Dict[bytes, str] = {}
_ADDRESS_TEXT_SIZE = 4096


def _endpoint(address: bytes, port: int) -> str:
    packed = address if type(address) is bytes else bytes(address)
    text = _ADDRESS_TEXT.get(packed)
    if text is None:
        if len(_ADDRESS_TEXT) >= _ADDRESS_TEXT_SIZE:
            _ADDRESS_TEXT.clear()
        if len(packed) == 4:
            text = f"{packed[0]}.{packed[1]}.{packed[2]}.{packed[3]}"
        else:
            text = f"[{ip_address(packed)}]"
        _ADDRESS_TEXT[packed] = text
    return f"{text}:{port}"


@with_fields
class StreamStart(TupleValue):
    """A connection's first packet was seen.

    Args:
        connection: the :class:`TcpConnection`.
        frame: the frame number of that packet.
        timestamp_ns: its capture time.
    """

    __slots__ = ()
    _fields = ("connection", "frame", "timestamp_ns")



@with_fields
class StreamData(TupleValue):
    """Bytes of one direction's stream, in order.

    Args:
        connection: the :class:`TcpConnection`.
        direction: 0 client to server, 1 server to client.
        offset: the stream offset of ``data[0]`` (0 = the first byte after the
            SYN, or the first byte seen).
        data: the bytes (a memoryview into the capture's block, or bytes when
            they waited in the out-of-order buffer).
        frame: the frame number of the packet that carried them; for bytes that
            arrived before the bytes in front of them, of the packet that
            filled that hole (where their reassembly completed, as Wireshark
            shows them).
        timestamp_ns: that packet's capture time.
    """

    __slots__ = ()
    _fields = ("connection", "direction", "offset", "data", "frame", "timestamp_ns")


    @property
    def end(self) -> int:
        """The stream offset just past the last byte."""
        return self.offset + len(self.data)

    def __repr__(self) -> str:
        return (f"StreamData(stream={self.connection.stream}, direction={self.direction}, offset={self.offset}, "
                f"data=<{len(self.data)} bytes>, frame={self.frame}, timestamp_ns={self.timestamp_ns})")


@with_fields
class StreamGap(TupleValue):
    """Bytes of one direction's stream that the capture does not have.

    Args:
        connection: the :class:`TcpConnection`.
        direction: 0 or 1.
        offset: the stream offset of the first missing byte.
        length: how many bytes are missing; the next data starts at
            ``offset + length``.
        frame: the frame whose arrival (or the end of the connection or the
            capture) made the reassembler give up on them.
        timestamp_ns: that frame's capture time.
    """

    __slots__ = ()
    _fields = ("connection", "direction", "offset", "length", "frame", "timestamp_ns")


    @property
    def end(self) -> int:
        return self.offset + self.length


@with_fields
class StreamEnd(TupleValue):
    """One direction of a connection ended; nothing more follows for it.

    Args:
        connection: the :class:`TcpConnection`.
        direction: 0 or 1.
        offset: the stream's length (the offset just past its last byte).
        reason: ``"fin"``, ``"rst"``, ``"eof"`` (the capture ended first),
            ``"evicted"`` (the connection limit) or ``"reused"`` (a new SYN
            on the same 4-tuple).
        frame: the frame that ended it: the FIN (its own frame, also when
            bytes before it arrived later or never), the RST; for the others
            the last TCP frame processed.
        timestamp_ns: that frame's capture time.
    """

    __slots__ = ()
    _fields = ("connection", "direction", "offset", "reason", "frame", "timestamp_ns")



StreamEvent = Union[StreamStart, StreamData, StreamGap, StreamEnd]


class FrameIndex:
    """Which frame carried a stream byte, for one direction, in bounded memory.

    Feed it the direction's :class:`StreamData` events; a protocol layer that
    finds a message ending at stream offset ``end`` asks ``frame_at(end - 1)``
    for the frame that carried its last byte (how tshark attributes a message
    split over segments), and calls ``forget_before`` once it no longer needs
    older offsets.
    """

    __slots__ = ("_ends", "_frames", "_times")

    def __init__(self) -> None:
        self._ends: List[int] = []
        self._frames: List[int] = []
        self._times: List[int] = []

    def add(self, event: StreamData) -> None:
        """Record that ``event.frame`` carried ``event.offset`` up to ``event.end``."""
        self._ends.append(event.offset + len(event.data))
        self._frames.append(event.frame)
        self._times.append(event.timestamp_ns)

    def frame_at(self, offset: int) -> Tuple[int, int]:
        """``(frame, timestamp_ns)`` of the data event holding stream byte ``offset``.

        Raises:
            KeyError: no recorded event holds that byte (never added, or forgotten).
        """
        i = bisect_right(self._ends, offset)
        if i == len(self._ends):
            raise KeyError(offset)
        return self._frames[i], self._times[i]

    def forget_before(self, offset: int) -> None:
        """Drop what is known about bytes before ``offset``."""
        i = bisect_right(self._ends, offset)
        if i:
            del self._ends[:i], self._frames[:i], self._times[:i]

    def __len__(self) -> int:
        return len(self._ends)


# -- reassembly ----------------------------------------------------------------------


class _DirectionState:
    """One direction of a connection."""

    __slots__ = ("base", "next", "starts", "pieces", "buffered", "fin_at", "fin_frame", "fin_time", "ended")

    def __init__(self) -> None:
        self.base: Optional[int] = None  # sequence number of stream offset 0
        self.next = 0  # next stream offset to deliver
        # Out-of-order pieces, disjoint and sorted: starts[i] is pieces[i][0];
        # a piece is [start, end, data or None (lost bytes), frame, timestamp_ns].
        self.starts: List[int] = []
        self.pieces: List[list] = []
        self.buffered = 0
        self.fin_at: Optional[int] = None  # the stream offset of the FIN, once one was seen
        self.fin_frame = 0  # and its frame and capture time: the direction's end event carries them
        self.fin_time = 0
        self.ended = False


class _Connection:
    __slots__ = ("value", "halves", "key", "lane", "active")

    def __init__(self, value: TcpConnection, key: tuple, active: int) -> None:
        self.value = value
        self.halves = (_DirectionState(), _DirectionState())
        self.key = key  # the client-to-server 4-tuple
        self.lane: Any = None  # its Lane in the reassembler's SegmentLoop, if it has one
        self.active = active  # the clock at its last segment that went through add()

    def last_active(self) -> int:
        """The clock at its last segment, through :meth:`TcpReassembler.add` or its lane."""
        lane = self.lane
        return self.active if lane is None or lane.active < self.active else lane.active


class TcpReassembler:
    """Reassemble TCP segments into ordered per-direction streams, in bounded memory.

    Args:
        max_connections: open connections tracked at once (the least
            recently active one is evicted, its directions ended with
            ``"evicted"``, past it).
        max_buffer_per_direction: out-of-order bytes held for one direction
            before its first hole is skipped.
        max_buffer_total: out-of-order bytes held in all, past which the
            connections that have held data longest skip their holes first.
        max_closed: closed connections remembered to absorb their late packets.

    Each held out-of-order piece counts its bytes plus ``PIECE_OVERHEAD`` (64)
    against both buffer limits.

    Attributes:
        stats: a :class:`collections.Counter` of what happened:
            ``retransmitted`` (segments with no new byte), ``overlapping``
            (segments partly seen before), ``out_of_order``, ``gaps``,
            ``gap_bytes``, ``evicted``, ``after_close``, ``before_start``.

    Raises:
        TypeError, ValueError: a limit is not a positive int.
    """

    def __init__(self, *, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 max_buffer_per_direction: int = DEFAULT_MAX_BUFFER_PER_DIRECTION,
                 max_buffer_total: int = DEFAULT_MAX_BUFFER_TOTAL, max_closed: int = DEFAULT_MAX_CLOSED) -> None:
        for name, value in (("max_connections", max_connections),
                            ("max_buffer_per_direction", max_buffer_per_direction),
                            ("max_buffer_total", max_buffer_total), ("max_closed", max_closed)):
            if type(value) is not int:
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")
        self.max_connections = max_connections
        self.max_buffer_per_direction = max_buffer_per_direction
        self.max_buffer_total = max_buffer_total
        self.max_closed = max_closed
        # Stream number -> open connection; and a heap of (clock, stream) to find the least recently
        # active one (an entry is brought up to date when it comes to the top: see _evict).
        self._open: Dict[int, _Connection] = {}
        self._ages: List[Tuple[int, int]] = []
        self._clock = 0  # segments added (the attached loop's packet count instead, when there is one)
        # 4-tuple (either direction) -> (connection, direction).
        self._lookup: Dict[tuple, Tuple[_Connection, int]] = {}
        self._closed: "OrderedDict[tuple, None]" = OrderedDict()
        self._buffered = 0
        self._holding: "OrderedDict[int, None]" = OrderedDict()  # streams holding out-of-order data
        self._streams = 0
        self._frame = 0
        self._time = 0
        self.stats: Counter = Counter()
        self.relieved = 0  # connections whose holes were skipped for max_buffer_total
        self._loop: Any = None

    def attach(self, loop: Any) -> None:
        """Let a ``SegmentLoop`` (of either capture backend) take the in-order segments of open connections.

        Attach before adding segments. From then on every new connection gets
        a lane in ``loop``; whenever the reassembler hands a connection back,
        each direction with nothing held out of order and no FIN offers the
        loop its next in-order bytes (the loop feeds them to the direction's
        sink, when the decoding layer set one, exactly as :meth:`add` would
        deliver them). Activity is measured on the loop's packet count, which
        the lanes note for what they take, so eviction order is unchanged.
        """
        self._loop = loop

    def lane_of(self, connection: TcpConnection) -> Any:
        """The ``Lane`` of an open connection, or None (not attached, or not open)."""
        conn = self._open.get(connection.stream)
        return None if conn is None or not (conn.value is connection or conn.value == connection) else conn.lane

    @property
    def buffered(self) -> int:
        """Out-of-order bytes (with piece overhead) held now, across all connections."""
        return self._buffered

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def open_keys(self) -> List[Tuple[bytes, int, bytes, int]]:
        """The 4-tuples (client first) of the open connections, by stream number."""
        return [self._open[stream].key for stream in sorted(self._open)]

    def knows(self, src: bytes, src_port: int, dst: bytes, dst_port: int) -> int:
        """Whether a segment of this 4-tuple (either direction) is an open connection's (2), a recently
        closed one's (1: absorbed, unless a SYN starts a new one), or neither (0: it starts one)."""
        key = (src, src_port, dst, dst_port)
        if key in self._lookup:
            return 2
        return 1 if key in self._closed or (dst, dst_port, src, src_port) in self._closed else 0

    def add(self, frame: int, timestamp_ns: int, segment: TcpSegment) -> List[StreamEvent]:
        """Take one segment; return the events it releases, in order.

        Args:
            frame: the frame number of the packet that carried it.
            timestamp_ns: the packet's capture time.
            segment: the segment, as :func:`parse_packet` returns it.

        Returns:
            A list of stream events (often one :class:`StreamData`, often none).
        """
        conn: _Connection
        half: _DirectionState
        out: List[StreamEvent] = []
        self._frame = frame
        self._time = timestamp_ns
        if self._loop is None:
            self._clock += 1
        else:
            self._clock = self._loop.count
        key = (segment.src, segment.src_port, segment.dst, segment.dst_port)
        flags = segment.flags
        found = self._lookup.get(key)
        if found is not None:
            conn, direction = found
            if conn.lane is not None:
                self._reclaim(conn, out)
            half = conn.halves[direction]
            if flags & _SYN and not flags & _ACK and direction == 0 and half.base is not None \
                    and (segment.seq + 1) % _MOD != half.base:
                self._close(conn, "reused", out)  # a new connection on the same 4-tuple
                found = None
            else:
                conn.active = self._clock
        if found is None:
            reverse = (segment.dst, segment.dst_port, segment.src, segment.src_port)
            if (key in self._closed or reverse in self._closed) and not (flags & _SYN and not flags & _ACK):
                self.stats["after_close"] += 1
                return out
            self._closed.pop(key, None)
            self._closed.pop(reverse, None)
            if len(self._open) >= self.max_connections:
                self._evict(out)
            # A SYN+ACK comes from the server; anything else from the client.
            if flags & _SYN and flags & _ACK:
                key, reverse = reverse, key
                direction = 1
            else:
                direction = 0
            value = tuple_new(TcpConnection, (self._streams, key[0], key[1], key[2], key[3]))
            self._streams += 1
            conn = _Connection(value, key, self._clock)
            if self._loop is not None:
                conn.lane = self._loop.lane(conn, key)
            self._open[value.stream] = conn
            heappush(self._ages, (self._clock, value.stream))
            self._lookup[key] = (conn, 0)
            self._lookup[reverse] = (conn, 1)
            out.append(tuple_new(StreamStart, (value, frame, timestamp_ns)))
            half = conn.halves[direction]

        seq = segment.seq
        if flags & _SYN:
            seq = (seq + 1) % _MOD  # the SYN takes one sequence number; data follows it
            if half.base is None:
                half.base = seq
        elif half.base is None:
            half.base = seq  # mid-stream: the first sequence number seen is offset 0
        # Unwrap the 32-bit sequence number to the stream offset nearest the next one expected.
        delta = (seq - half.base - half.next) % _MOD
        if delta >= _HALF:
            delta -= _MOD
        offset = half.next + delta
        payload = segment.payload
        size = len(payload)
        if (size or segment.missing) and not half.ended:
            self._data(conn, direction, half, offset, payload, segment.missing, out)
        if flags & _FIN and half.fin_at is None and not half.ended:
            half.fin_at = offset + size + segment.missing
            half.fin_frame = frame
            half.fin_time = timestamp_ns
            self._drain(conn, direction, half, out)
        if flags & _RST:
            self._close(conn, "rst", out)
        if conn.lane is not None:
            self._offer(conn)
        return out

    def finish(self, last: Optional[Tuple[int, int]] = None) -> List[StreamEvent]:
        """End every open connection (``"eof"``): skip their holes and release what they hold.

        Args:
            last: ``(frame, timestamp_ns)`` of the capture's last segment when
                it did not come through :meth:`add` (a ``SegmentLoop`` took
                it); the end events carry the last segment's frame and time.

        Returns:
            The events, connections in stream order.
        """
        if last is not None:
            self._frame, self._time = last
        out: List[StreamEvent] = []
        for conn in sorted(self._open.values(), key=lambda c: c.value.stream):
            self._close(conn, "eof", out)
        return out

    # -- internals -----------------------------------------------------------

    def _data(self, conn: _Connection, direction: int, half: _DirectionState, offset: int, payload: Any, missing: int,
              out: List[StreamEvent]) -> None:
        size = len(payload)
        end = offset + size + missing
        nxt = half.next
        if half.fin_at is not None and end > half.fin_at:
            end = half.fin_at  # nothing after a FIN belongs to the stream
            size = min(size, max(0, end - offset))
            missing = max(0, end - offset - size)
        if end <= nxt:
            self.stats["retransmitted"] += 1
            if offset < 0 and nxt == 0:
                self.stats["before_start"] += 1
            return
        if offset == nxt and not half.pieces:
            # The common case: the next bytes, nothing held.
            if size:
                out.append(tuple_new(StreamData, (conn.value, direction, offset, payload if len(payload) == size
                                      else payload[:size], self._frame, self._time)))
            if missing:
                self._gap(conn, direction, offset + size, missing, out)
            half.next = end
            self._drain(conn, direction, half, out)
            return
        if offset < nxt:
            self.stats["overlapping"] += 1
        if offset > nxt:
            self.stats["out_of_order"] += 1
        # Keep the bytes not seen before (first seen wins), then deliver what is in order.
        added = self._hold(half, offset, offset + size, payload, self._frame, self._time)
        if missing:
            added += self._hold(half, offset + size, end, None, self._frame, self._time)
        if added:
            self._buffered += added
            self._holding[conn.value.stream] = None
        self._drain(conn, direction, half, out)
        if half.buffered > self.max_buffer_per_direction:
            while half.pieces and half.buffered > self.max_buffer_per_direction:
                self._skip(conn, direction, half, out)
        if self._buffered > self.max_buffer_total:
            self._relieve(out)

    def _hold(self, half: _DirectionState, start: int, end: int, data: Any, frame: int, time: int) -> int:
        """Add the parts of [start, end) not yet delivered or held; return the bytes accounted."""
        cur = max(start, half.next)
        starts, pieces = half.starts, half.pieces
        i = bisect_right(starts, cur) - 1
        if i < 0:
            i = 0
        added = 0
        new = []
        while cur < end:
            if i < len(pieces) and pieces[i][0] <= cur:
                if pieces[i][1] > cur:
                    cur = pieces[i][1]
                i += 1
                continue
            stop = min(end, pieces[i][0]) if i < len(pieces) else end
            piece_data = None if data is None else bytes(data[cur - start:stop - start])
            new.append([cur, stop, piece_data, frame, time])
            cur = stop
        for piece in new:
            at = bisect_left(starts, piece[0])
            starts.insert(at, piece[0])
            pieces.insert(at, piece)
            cost = piece[1] - piece[0] + PIECE_OVERHEAD
            half.buffered += cost
            added += cost
        return added

    def _drain(self, conn: _Connection, direction: int, half: _DirectionState, out: List[StreamEvent],
               completed: bool = True) -> None:
        """Deliver held pieces that now start at the next offset; end the direction at its FIN.

        ``completed``: the segment being added made them the next bytes; they are delivered at its
        frame, where their reassembly completed (as Wireshark shows data that arrived before the bytes
        in front of it). Otherwise the reassembler gave up on the hole before them: each piece keeps
        its own frame.
        """
        pieces = half.pieces
        released = 0
        while pieces and pieces[0][0] <= half.next:
            start, end, data, frame, time = pieces.pop(0)
            half.starts.pop(0)
            cost = end - start + PIECE_OVERHEAD
            half.buffered -= cost
            released += cost
            if end <= half.next:
                continue
            if data is None:
                self._gap(conn, direction, start, end - start, out)
            elif completed:
                out.append(tuple_new(StreamData, (conn.value, direction, start, data, self._frame, self._time)))
            else:
                out.append(tuple_new(StreamData, (conn.value, direction, start, data, frame, time)))
            half.next = end
        if released:
            self._buffered -= released
            if not pieces:
                self._holding.pop(conn.value.stream, None)
        if half.fin_at is not None and half.next >= half.fin_at and not half.ended and not pieces:
            half.ended = True
            out.append(tuple_new(StreamEnd, (conn.value, direction, half.next, "fin", half.fin_frame, half.fin_time)))
            if conn.halves[1 - direction].ended:
                self._retire(conn)

    def _skip(self, conn: _Connection, direction: int, half: _DirectionState, out: List[StreamEvent]) -> None:
        """Give up on the hole before the first held piece."""
        first = half.pieces[0][0]
        if first > half.next:
            self._gap(conn, direction, half.next, first - half.next, out)
            half.next = first
        self._drain(conn, direction, half, out, False)

    def _gap(self, conn: _Connection, direction: int, offset: int, length: int, out: List[StreamEvent]) -> None:
        self.stats["gaps"] += 1
        self.stats["gap_bytes"] += length
        out.append(tuple_new(StreamGap, (conn.value, direction, offset, length, self._frame, self._time)))

    def _evict(self, out: List[StreamEvent]) -> None:
        """End the least recently active connection (``"evicted"``)."""
        ages = self._ages
        while True:
            clock, stream = ages[0]
            conn = self._open.get(stream)
            if conn is None:
                heappop(ages)  # retired
                continue
            active = conn.last_active()
            if active != clock:
                heapreplace(ages, (active, stream))  # active since: back to its place
                continue
            heappop(ages)
            self.stats["evicted"] += 1
            self._close(conn, "evicted", out)
            return

    def _relieve(self, out: List[StreamEvent]) -> None:
        """Skip holes, connections that have held data longest first, until under the total limit."""
        for stream in list(self._holding):
            if self._buffered <= self.max_buffer_total:
                break
            conn = self._open.get(stream)
            if conn is None:
                continue
            self.relieved += 1
            for direction in (0, 1):
                half: _DirectionState = conn.halves[direction]
                while half.pieces:
                    self._skip(conn, direction, half, out)

    def _reclaim(self, conn: _Connection, out: List[StreamEvent]) -> None:
        """Take a connection back from its lane: what it took starts and advances the directions, and ends
        a direction at the FIN it took (the end event carries the FIN's frame)."""
        for direction, position in enumerate(conn.lane.take_back()):
            if position is not None:
                half: _DirectionState = conn.halves[direction]
                half.next = position[1]
                half.base = (position[0] - position[1]) % _MOD
                if len(position) == 4:
                    half.fin_at = half.next
                    half.fin_frame = position[2]
                    half.fin_time = position[3]
                    half.ended = True
                    out.append(tuple_new(StreamEnd, (conn.value, direction, half.next, "fin", half.fin_frame,
                                                half.fin_time)))

    def _offer(self, conn: _Connection) -> None:
        """Tell the connection's lane what it may take: the segment that starts a direction (a SYN or an ACK
        without payload), pure ACKs once it started, in-order bytes when nothing is held and no FIN was seen,
        and the direction's FIN while the other direction has not ended."""
        lane = conn.lane
        halves = conn.halves
        for direction, half in enumerate(halves):
            if half.base is None:
                lane.expect(direction, 3, 0, 0, not halves[1 - direction].ended)
            elif half.ended or half.fin_at is not None or half.pieces:
                lane.expect(direction, 1)
            else:
                lane.expect(direction, 2, (half.base + half.next) % _MOD, half.next, not halves[1 - direction].ended)

    def _close(self, conn: _Connection, reason: str, out: List[StreamEvent]) -> None:
        """Flush both directions (skipping holes) and end them with ``reason``."""
        if conn.lane is not None:
            self._reclaim(conn, out)
        for direction in (0, 1):
            half: _DirectionState = conn.halves[direction]
            while half.pieces:
                self._skip(conn, direction, half, out)
            if not half.ended and half.fin_at is not None and half.next < half.fin_at:
                self._gap(conn, direction, half.next, half.fin_at - half.next, out)  # a hole before the FIN
                half.next = half.fin_at
            if not half.ended:
                half.ended = True
                if half.fin_at is not None and half.next >= half.fin_at:
                    out.append(tuple_new(StreamEnd, (conn.value, direction, half.next, "fin", half.fin_frame,
                                                half.fin_time)))
                else:
                    out.append(tuple_new(StreamEnd, (conn.value, direction, half.next, reason, self._frame, self._time)))
        self._retire(conn)

    def _retire(self, conn: _Connection) -> None:
        key = conn.key
        if self._open.pop(conn.value.stream, None) is None:
            return
        reverse = (key[2], key[3], key[0], key[1])
        self._lookup.pop(key, None)
        self._lookup.pop(reverse, None)
        if conn.lane is not None:
            conn.lane.detach()
            conn.lane = None
        self._holding.pop(conn.value.stream, None)
        if len(self._ages) > 2 * len(self._open) + 64:
            # Mostly retired connections: keep the heap in proportion to the open ones.
            self._ages = [(c.last_active(), c.value.stream) for c in self._open.values()]
            heapify(self._ages)
        self._closed[key] = None
        if len(self._closed) > self.max_closed:
            self._closed.popitem(last=False)


# -- the whole pipeline ----------------------------------------------------------------


class TcpStreamReader(SourceReader):
    """Packets of a capture, parsed and reassembled into stream events.

    Args:
        source: a path, ``"-"`` or None for standard input, or a binary file object.
        block_size, max_record: as for :func:`open_capture`.
        max_connections, max_buffer_per_direction, max_buffer_total,
        max_closed: as for :class:`TcpReassembler`.

    Iterating yields :class:`StreamStart`, :class:`StreamData`,
    :class:`StreamGap` and :class:`StreamEnd` events; at the end of the file
    every open connection ends (``"eof"``), also when the file is truncated.

    Attributes:
        packets: the :class:`PacketReader` (``frames``, ``format``, ``error``).
        reassembler: the :class:`TcpReassembler` (``stats``).
        skipped: a :class:`collections.Counter` of packets without a usable
            TCP segment, by reason (see :func:`parse_packet`).
        error: the :class:`~closecodec.errors.IncompleteError` of a truncated
            file, once iteration ends, else None.

    Raises:
        MalformedError: (while iterating) the file is not a capture, or its
            structure is broken.
        OSError: the path cannot be opened.
        TypeError: ``source`` is a list (a capture set is read by
            :class:`~closecodec.capture.records.CloseRecordReader`).
    """

    def __init__(self, source: Union[str, "PathLike[str]", BinaryIO, None], /, *,
                 block_size: int = DEFAULT_BLOCK_SIZE, max_record: int = DEFAULT_MAX_RECORD,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 max_buffer_per_direction: int = DEFAULT_MAX_BUFFER_PER_DIRECTION,
                 max_buffer_total: int = DEFAULT_MAX_BUFFER_TOTAL, max_closed: int = DEFAULT_MAX_CLOSED) -> None:
        self.reassembler = TcpReassembler(max_connections=max_connections,
                                          max_buffer_per_direction=max_buffer_per_direction,
                                          max_buffer_total=max_buffer_total, max_closed=max_closed)
        super().__init__(source)
        if self._file is None:
            raise TypeError("TcpStreamReader reads one capture; a list of files is read by CloseRecordReader")
        self.packets = PacketReader(self._file, block_size=block_size, max_record=max_record)
        self.skipped: Counter = Counter()

    @property
    def error(self) -> Optional[IncompleteError]:
        return self.packets.error

    def __iter__(self) -> Iterator[StreamEvent]:
        add = self.reassembler.add
        skipped = self.skipped
        parse = parse_packet
        for packet in self.packets:
            segment = parse(packet.data, packet.link_type)
            if type(segment) is str:
                skipped[segment] += 1
                continue
            events = add(packet.frame, packet.timestamp_ns, segment)
            if events:
                yield from events
        yield from self.reassembler.finish()
        self.close()
