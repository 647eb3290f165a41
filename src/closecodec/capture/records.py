# cython: annotation_typing=False
"""Close records: every close in a packet capture, one record each (docs/capture.md, "Close records").

Builds on :mod:`closecodec.capture` (reading and TCP reassembly) and the
streaming decoders (:class:`~closecodec.WebSocketStream`,
:class:`~closecodec.MqttStream`). For each TCP connection:

1. **Recognise** what it carries from its first bytes, holding at most
   ``MAX_HANDSHAKE`` (64 KiB) per direction meanwhile: an HTTP upgrade request
   answered by ``101`` is WebSocket (any port); its ``mqtt`` subprotocol makes
   it MQTT over WebSocket; a last path segment ``diffusion`` in the request,
   or a first server binary message that is a whole Diffusion connection
   response, makes it Diffusion over WebSocket; an upgrade answered by another
   status is a rejected handshake (a record). A first client packet that is an
   MQTT CONNECT is MQTT (any port). Failing those, the port tables decide:
   ``decode_as`` (``{port: "websocket" | "mqtt" | "diffusion"}``, as tshark's
   "decode as") and ``mqtt_ports`` (1883 by default), for captures that lack
   the handshake; then the bytes themselves, WebSocket frames or MQTT packets
   that tile the stream (:mod:`closecodec.capture.midstream`); otherwise the
   connection is ignored.
2. **Decode** each direction with a stream decoder, and turn each close into a
   :class:`CloseRecord` at the frame that carried its last byte (as tshark
   reports a frame split over segments), or that filled the hole before it.
3. **Gaps and errors**: after a :class:`~closecodec.capture.StreamGap` the
   decoder restarts where the data resumes, and after a decode error at the
   start of the next segment, on the assumption that a segment starts a frame
   (senders usually write whole frames). Nothing is recorded from bytes that
   do not decode; errors are counted in :attr:`CloseRecordReader.stats`, and
   later records of the connection have ``data_lost`` set.
4. A recognised connection that ends with FIN or RST without any close record
   in either direction gives one ``tcp`` record, at the first FIN (or the RST),
   from the side that sent it, in the FIN's own frame (also when bytes before
   it arrived later or never). Connections that are cut by the end of the
   capture, evicted or never recognised give none.

This module is plain Python; where a compiler is available it is also compiled
by Cython (pure-Python mode, with the declarations in ``records.pxd``): the
per-connection work (set-up, recognition, records, the end) is most of what a
capture costs beyond the compiled segment loop. The source, and so the
behaviour, is the same either way.

Memory: per connection a few hundred bytes, the handshake bytes while
recognising (at most 64 KiB a direction) and what the stream decoders hold
(one unfinished WebSocket message or MQTT packet, up to ``max_message_size``);
all of it is freed when the connection ends.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import warnings
import zlib
from collections import Counter
from time import monotonic
from os import PathLike, fspath
from typing import Any, BinaryIO, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from .. import _backend
from ..buffer import DEFAULT_MAX_INFLATED, DEFAULT_MAX_MESSAGE_SIZE
from ..diffusion.values import (
    AbortNotification,
    CloseClientRequest,
    CloseRequest,
    ConnectionResponse,
    EventBatch,
    ServiceRequest,
)
from ..diffusion.values import CloseEvent as _CloseEvent
from ..errors import DecodeError, IncompleteError
from ..jsonform import mqtt_property_json
from ..mqtt.values import MqttConnack, MqttDisconnect
from ..websocket.deflate import MessageInflater
from ..websocket.deflate import negotiated as deflate_negotiated
from ..websocket.values import WebSocketClose, WebSocketMessage
from .files import HEAD_BYTES, POLL_SECONDS, FollowedFile, is_dir, is_url, list_dir, natural_order, open_file
from .midstream import MIN_MESSAGES, Candidates, recognise
from .values import FILE_SHIFT, FRAME_MASK, ITEM_BOUNDARY, ITEM_DECODED, ITEM_HELD, check_partition
from .reassembly import (
    CAPTURE_MAGICS,
    DEFAULT_BLOCK_SIZE,
    DEFAULT_MAX_BUFFER_PER_DIRECTION,
    DEFAULT_MAX_BUFFER_TOTAL,
    DEFAULT_MAX_CLOSED,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RECORD,
    SourceReader,
    StreamData,
    StreamEnd,
    StreamGap,
    StreamStart,
    TcpConnection,
    TcpReassembler,
    TupleValue,
    capture_files,
    first_packet_time,
    tuple_new,
    with_fields,
)

__all__ = [
    "DECODE_AS_KINDS",
    "DETECTIONS",
    "MAX_HANDSHAKE",
    "CloseRecord",
    "CloseRecordReader",
    "close_records",
    "parse_decode_as",
]

#: Bytes held per direction while recognising a connection (HTTP upgrade, CONNECT).
MAX_HANDSHAKE = 64 * 1024
#: Bytes read at a time for the first look at each file of a capture set (its first packet's time).
FIRST_LOOK_BLOCK = 4096
#: What ``decode_as`` may say a port carries.
DECODE_AS_KINDS = ("websocket", "mqtt", "diffusion")
#: How a connection was recognised (a record's ``detection``).
DETECTIONS = ("handshake", "decode-as", "port", "heuristic")

_DIRECTIONS = ("client_to_server", "server_to_client")
_BINARY = 2
# The headers of an HTTP upgrade that recognition reads (RFC 6455 §4.1 and §4.2.2, RFC 7692 §5).
_UPGRADE_HEADERS = (b"upgrade", b"sec-websocket-protocol", b"sec-websocket-extensions")


@with_fields
class CloseRecord(TupleValue):
    """One close seen in a capture: a close frame, a refusal, or a TCP end without one.

    Immutable, hashable, comparable (a tuple underneath, like the capture
    events). :meth:`to_dict` gives the JSON form (docs/capture.md).

    Fields:
        file: the capture file the close is in (as its path was given, or
            found in a directory given), None for standard input or a file
            object without a name.
        frame: the frame number in that file (1-based, as Wireshark counts)
            of the packet holding the close's last byte, or, when bytes before it arrived
            later, of the packet that filled that hole (where Wireshark shows
            it when it reassembles out-of-order segments).
        timestamp_ns: that packet's capture time, in ns since the epoch
            (:attr:`time` in seconds).
        stream: the TCP stream number (tshark's ``tcp.stream``).
        src, dst: ``ip:port`` of the sender and receiver (IPv6 in brackets).
        direction: ``"client_to_server"`` or ``"server_to_client"``.
        protocol: the layer that closed: ``"websocket"``, ``"mqtt"``,
            ``"diffusion"``, or ``"tcp"`` (ended without a close frame).
        kind: what was seen: ``ws_close``, ``ws_rejected``,
            ``mqtt_disconnect``, ``mqtt_connack``, ``diffusion_response``,
            ``diffusion_abort``, ``diffusion_close_request``,
            ``diffusion_close_event``, ``diffusion_close_client``, ``tcp_end``.
        code: the number on the wire (WebSocket status, MQTT reason code,
            Diffusion response code or close reason, HTTP status), or None.
        name: the code's name (``NORMAL_CLOSURE``, ``SESSION_TAKEN_OVER``,
            ``FIN``...), or a name for what was seen when there is no code.
        reason: the reason text on the wire, or None.
        session_id: the Diffusion session id (text) where known, else None.
        close_reason: what the vendor's Diffusion client reports for it
            (``ACCESS_DENIED``...), for Diffusion records, else None.
        client_id: the MQTT client identifier from the connection's CONNECT.
        mqtt_version: 3, 4 or 5 for MQTT records (from the CONNECT; None
            when the capture lacks it), else None.
        properties: the MQTT 5 properties, ``(MqttPropertyId, value)`` pairs.
        application: what the connection was recognised as: ``"websocket"``,
            ``"mqtt"``, ``"mqtt-websocket"``, ``"diffusion"``.
        detection: how: ``"handshake"`` (an HTTP upgrade, an MQTT CONNECT),
            ``"decode-as"`` (``decode_as``), ``"port"`` (``mqtt_ports``) or
            ``"heuristic"`` (its bytes, mid-stream: docs/capture.md).
        data_lost: bytes of the connection before this record were missing
            from the capture or did not decode.
        value: the decoded value (:class:`WebSocketClose`,
            :class:`MqttDisconnect`, ...), or None.
    """

    __slots__ = ()
    _fields = (
        "file", "frame", "timestamp_ns", "stream", "src", "dst", "direction", "protocol", "kind", "code", "name",
        "reason", "session_id", "close_reason", "client_id", "mqtt_version", "properties", "application",
        "detection", "data_lost", "value",
    )

    @property
    def time(self) -> float:
        """The capture time in seconds since the epoch (``timestamp_ns`` is exact)."""
        return self.timestamp_ns / 1e9

    def to_dict(self) -> Dict[str, Any]:
        """The record as a JSON-ready dict (the JSON lines schema, docs/capture.md)."""
        mqtt = self.protocol == "mqtt"
        return {
            "file": self.file,
            "frame": self.frame,
            "time": self.timestamp_ns / 1e9,
            "time_ns": self.timestamp_ns,
            "stream": self.stream,
            "src": self.src,
            "dst": self.dst,
            "direction": self.direction,
            "protocol": self.protocol,
            "kind": self.kind,
            "code": self.code,
            "name": self.name,
            "reason": self.reason,
            "session_id": self.session_id,
            "close_reason": self.close_reason,
            "client_id": self.client_id,
            "mqtt_version": self.mqtt_version,
            "properties": [mqtt_property_json(pid, item) for pid, item in self.properties] if mqtt else None,
            "application": self.application,
            "detection": self.detection,
            "data_lost": self.data_lost,
        }

    def __repr__(self) -> str:
        return (f"CloseRecord(file={self.file!r}, frame={self.frame}, {self.src} -> {self.dst}, "
                f"{self.protocol} {self.kind}, code={self.code!r}, name={self.name!r}, reason={self.reason!r}, "
                f"session_id={self.session_id!r})")


def parse_decode_as(items: Iterable[str]) -> Dict[int, str]:
    """``["8080=websocket", ...]`` as ``{8080: "websocket"}``.

    Raises:
        ValueError: an item is not ``PORT=KIND`` with a port 1..65535 and a
            kind in :data:`DECODE_AS_KINDS`.
    """
    out: Dict[int, str] = {}
    for item in items:
        port, sep, kind = item.partition("=")
        kind = kind.strip().lower()
        if not sep or not port.strip().isdigit() or not 1 <= int(port) <= 65535 or kind not in DECODE_AS_KINDS:
            raise ValueError(f"--decode-as takes PORT=KIND with KIND one of {', '.join(DECODE_AS_KINDS)}, "
                             f"not {item!r}")
        out[int(port)] = kind
    return out


# -- recognition helpers -------------------------------------------------------------


class _Head:
    """A direction's held bytes while recognising: joined, classified, and parsed as HTTP when asked.

    ``kind`` is ``"request"``, ``"response"``, ``"connect"`` (then ``connect``
    is the CONNECT's ``(level, client id)``), ``"more"`` (undecided yet) or
    ``"other"``.
    """

    __slots__ = ("held", "data", "kind", "connect", "_http")

    def __init__(self, held: int, data: bytes, parse_connect: Callable[[bytes], Any]) -> None:
        self.held = held
        self.data = data
        self.connect = None
        self._http: Any = False  # not parsed yet
        if b"GET ".startswith(data[:4]):  # a request, or the start of one
            self.kind = "request" if len(data) >= 4 else "more"
        elif b"HTTP/".startswith(data[:5]):
            self.kind = "response" if len(data) >= 5 else "more"
        else:
            found = parse_connect(data)
            self.kind = "more" if found is None else "connect" if found else "other"
            if found:
                self.connect = found

    def http(self, parse: Callable[..., Any]) -> Optional[Tuple[str, Dict[str, str], int]]:
        """The held bytes as an HTTP head, by the backend's ``parse_http_head`` (the headers recognition
        reads)."""
        if self._http is False:
            self._http = parse(self.data, _UPGRADE_HEADERS)
        return self._http


def _head_of(half: _DirectionDecoder, parse_connect: Callable[[bytes], Any]) -> Optional[_Head]:
    """The half's :class:`_Head`, made again only when it holds more bytes; None while it holds none."""
    if not half.held:
        return None
    head = half.head
    if head is None or head.held != half.held:
        pending = half.pending
        data = pending[0][1] if len(pending) == 1 else b"".join([piece[1] for piece in pending])
        head = half.head = _Head(half.held, data, parse_connect)
    return head


# -- per-connection state ----------------------------------------------------------------


class _DirectionDecoder:
    """One direction: held handshake bytes, then its decoder."""

    __slots__ = ("pending", "held", "head", "ws", "mqtt", "inflater", "done", "ended", "messages", "candidates")

    def __init__(self) -> None:
        self.pending: List[Tuple[int, bytes, int, int]] = []  # (offset, bytes, frame, timestamp_ns)
        self.held = 0
        self.head: Optional[_Head] = None  # what the held bytes are, for as long as no more are held
        self.ws: Any = None  # a WebSocketStream
        self.mqtt: Any = None  # an MqttStream (on TCP, or inside WebSocket binary messages)
        self.inflater: Any = None  # permessage-deflate context
        self.done = False  # a close frame was read: nothing more to decode
        self.ended = False
        self.messages = 0  # binary messages seen (the first server one may be a connection response)
        self.candidates: Optional[Candidates] = None  # mid-stream recognition's, once it is tried


class _Conn:
    __slots__ = ("value", "app", "client", "halves", "records", "first_end", "session_id", "client_id",
                 "mqtt_version", "lost", "port_kind", "port_client", "port_detection", "detection", "deflate",
                 "maybe_diffusion", "probation", "lane", "endpoints")

    def __init__(self, value: TcpConnection, port_kind: Optional[str], port_client: int,
                 port_detection: Optional[str]) -> None:
        self.value = value
        self.app: Optional[str] = None  # None while recognising; "ignore" when not ours
        self.client = 0
        self.halves = (_DirectionDecoder(), _DirectionDecoder())
        self.records = 0
        self.first_end: Optional[Tuple[str, int, int, int]] = None  # (reason, direction, frame, timestamp_ns)
        self.session_id: Optional[str] = None
        self.client_id: Optional[str] = None
        self.mqtt_version: Optional[int] = None
        self.lost = False
        self.port_kind = port_kind
        self.port_client = port_client
        self.port_detection = port_detection  # "decode-as" or "port": which table gave port_kind
        self.detection = "handshake"
        self.deflate = False
        self.maybe_diffusion = False
        # Recognised mid-stream as WebSocket: the Diffusion messages seen while it may be Diffusion, as
        # (direction, value, frame, timestamp_ns); None once it is plain WebSocket or Diffusion.
        self.probation: Optional[List[Tuple[int, Any, int, int]]] = None
        self.lane: Any = None  # the reassembler's Lane for it: where the segment loop feeds its decoders
        self.endpoints: Optional[Tuple[str, str]] = None  # client and server as text, once a record needs them


def _sink(conn: _Conn, d: int) -> None:
    """Tell a connection's lane, if it has one, where direction ``d``'s in-order bytes go, as the
    reader's ``_feed`` would take them (until the connection is recognised, back to the reader as bytes:
    they are held for recognition). Called whenever that changes: recognition, ignoring, a close."""
    lane = conn.lane
    if lane is None:
        return
    if conn.app is None:
        lane.hold(d)
        return
    half: _DirectionDecoder = conn.halves[d]
    if conn.app == "ignore" or half.done:
        lane.sink(d, True, None)
    else:
        lane.sink(d, True, half.ws if half.ws is not None else half.mqtt)


def _plain_websocket(conn: _Conn) -> None:
    """Plain WebSocket for good: only close frames matter from the next message on."""
    conn.maybe_diffusion = False
    conn.probation = None
    for half in conn.halves:
        if half.ws is not None:
            half.ws.closes_only = True


class CloseRecordReader(SourceReader):
    """The close records of a capture, lazily, in constant memory.

    Args:
        source: a path, ``"-"`` or None for standard input, a binary file
            object (read from its position; not closed here), or a list of
            paths, a capture set: files, and directories standing for their
            pcap and pcapng files (by their first bytes), read as one capture
            with packets in time order (files that overlap in time merged as
            mergecap merges them) and connections continuing from file to
            file.
        decode_as: ``{port: kind}`` (or ``"PORT=KIND"`` strings) for traffic
            whose handshake the capture lacks, as tshark's "decode as":
            ``"websocket"``, ``"mqtt"``, or ``"diffusion"`` (Diffusion messages
            inside WebSocket binary messages). A connection whose server or
            client port is listed is decoded as that (server port first).
        mqtt_ports: ports taken as MQTT without a CONNECT (``decode_as`` wins).
        heuristics: recognise WebSocket, MQTT and Diffusion inside WebSocket
            from the bytes of a connection whose start the capture lacks
            (docs/capture.md, "Mid-stream recognition"); the port tables win.
        mqtt_version: the MQTT version (3, 4 or 5) of connections whose
            CONNECT the capture lacks and whose packets do not show it (as
            Wireshark's ``mqtt.default_version``); None decodes their
            DISCONNECTs by their length.
        max_message_size: the largest WebSocket message or MQTT packet
            reassembled; a larger one is a decode error (counted).
        progress: called with the file offset read so far every few thousand
            packets (for a progress bar).
        block_size, max_record, max_connections, max_buffer_per_direction,
        max_buffer_total, max_closed: as for
            :class:`~closecodec.capture.TcpStreamReader`.
        partition: ``(index, count)``: read every packet but only the
            connections of partition ``index`` of ``count``, by a hash of
            their addresses and ports (:func:`~closecodec.capture.partition_of`);
            a unit of parallel reading (:mod:`closecodec.capture.parallel`
            puts the partitions back together as one reader's records).
        chunk: ``(index, boundary)``: read chunk ``index`` of a capture cut in
            time, the other unit of parallel reading: the connections that
            start in it (after chunk 0, with a SYN), to their end, reading
            past ``boundary`` (where the next chunk starts, as ``SegmentLoop``
            takes it; None for the last chunk) for those still open there.
            :attr:`chunk_report` says what the merge needs.
        follow: keep reading ``source`` as it is written, until :meth:`stop`:
            a capture file (at its end, look again every 0.1 s), or a
            directory of a rotating capture's files (``tcpdump -G``/``-C``,
            dumpcap's ring buffer), from the file written last (in a
            directory with none yet, the first to appear), each next one (by
            name, numbers by value; round a ring that reuses its names) once
            it is written to, its connections continuing as in a capture
            set. Not a URL or standard input.
        on_problem: called with ``(path, why)`` as each entry of
            :attr:`problems` is made, from the reading thread: at once for a
            followed ring's file that broke off (the ring goes on), not only
            when iteration ends.

    Iterating yields :class:`CloseRecord` values as the capture is read.

    Attributes:
        stats: a :class:`collections.Counter` of what was counted so far
            (a new one at each read): ``connections``, recognised ones by
            application (``websocket``, ``mqtt``, ...), ``ignored``,
            ``records``, ``gaps``, ``websocket_errors``, ``mqtt_errors``,
            ``diffusion_errors``, ``http_errors``, ``compressed_skipped``.
        errors: the first 100 decode errors as ``(frame, stream, message)``.
        skipped: packets without a usable TCP segment, by reason.
        error: an :class:`~closecodec.errors.IncompleteError` once iteration
            has ended if the file is truncated (records up to the cut were
            yielded), else None.
        position: the file offset read so far (for a set, the bytes read
            from all its files).
        files: the files read, by index (one for a single source: its path,
            or None for standard input); records name theirs.
        problems: ``(path, why)`` for each file of a set left out (not a
            capture, unreadable, no packet) or that stopped early (truncated,
            broken: the records before are kept), once iteration has ended
            for the latter. Empty for a single source, whose problems are
            ``error`` and the exceptions.
        partition: ``(index, count)``, ``(0, 1)`` when not partitioned.
        starts, order, error_order, peak_open, peak_buffered: for a
            partition or a chunk (else None): the packet count (packets read so far)
            at each connection's start, by stream number; at which each
            record and each error was made (-1: at the end of the capture);
            the most connections open and out-of-order bytes held at once.

    Raises:
        MalformedError: (while iterating) the file is not a capture, or its
            structure is broken (records before it were yielded).
        OSError: the path cannot be opened.
        ValueError: a bad ``decode_as`` or limit.
    """

    def __init__(self, source: Union[str, "PathLike[str]", BinaryIO, None], /, *,
                 decode_as: Union[Mapping[int, str], Iterable[str], None] = None,
                 mqtt_ports: Iterable[int] = (1883,), heuristics: bool = True, mqtt_version: Optional[int] = None,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 progress: Optional[Callable[[int], None]] = None,
                 block_size: int = DEFAULT_BLOCK_SIZE, max_record: int = DEFAULT_MAX_RECORD,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 max_buffer_per_direction: int = DEFAULT_MAX_BUFFER_PER_DIRECTION,
                 max_buffer_total: int = DEFAULT_MAX_BUFFER_TOTAL, max_closed: int = DEFAULT_MAX_CLOSED,
                 partition: Optional[Tuple[int, int]] = None,
                 chunk: Optional[Tuple[int, Optional[int]]] = None, follow: bool = False,
                 on_problem: Optional[Callable[[str, str], None]] = None) -> None:
        self.partition = check_partition(partition)
        if chunk is not None and (partition is not None or type(chunk) is not tuple or len(chunk) != 2
                                  or type(chunk[0]) is not int or chunk[0] < 0
                                  or not (chunk[1] is None or type(chunk[1]) is int and 0 <= chunk[1] < 1 << 62)):
            raise ValueError(f"chunk must be (index >= 0, boundary >= 0 or None), without partition, not {chunk!r}")
        self.chunk = chunk
        if decode_as is None:
            ports: Dict[int, str] = {}
        elif isinstance(decode_as, Mapping):
            ports = parse_decode_as(f"{port}={kind}" for port, kind in decode_as.items())
        else:
            ports = parse_decode_as(decode_as)
        if mqtt_version not in (None, 3, 4, 5):
            raise ValueError(f"mqtt_version must be None, 3, 4 or 5, not {mqtt_version!r}")
        # Port -> (kind, detection): decode_as wins over mqtt_ports.
        self._ports = {int(port): ("mqtt", "port") for port in mqtt_ports}
        self._ports.update({port: (kind, "decode-as") for port, kind in ports.items()})
        self._heuristics = bool(heuristics)
        self._mqtt_version = mqtt_version
        self._tiles = (_backend.websocket.ws_tile, _backend.mqtt.mqtt_tile)
        # The byte loops as the package selected them when this reader was made (docs/architecture.md).
        self._capture, self._websocket, self._mqtt, self._diffusion = (
            _backend.capture, _backend.websocket, _backend.mqtt, _backend.diffusion)
        self._max_message = max_message_size
        self._progress = progress
        self.reassembler = TcpReassembler(max_connections=max_connections,
                                          max_buffer_per_direction=max_buffer_per_direction,
                                          max_buffer_total=max_buffer_total, max_closed=max_closed)
        self._following: Optional[threading.Event] = None  # with follow: set by stop()
        # A followed directory's capture files, by path, as last looked at (_look): which were written over.
        self._seen: Dict[str, Tuple[int, int, int, int, int]] = {}
        self._listed: Optional[Tuple[int, float, List[Any]]] = None  # (_listing) the directory's mtime, when
        self._followed: Optional[FollowedFile] = None  # the file of a ring read last
        ring = None  # with follow, a directory: a rotating capture's
        if follow:
            if not isinstance(source, (str, PathLike)) or source == "-" or is_url(fspath(source)):
                raise ValueError("follow takes the path of a capture file, or of a directory of rotating "
                                 "capture files, on this machine")
            self._following = threading.Event()
            if is_dir(fspath(source)):
                ring = fspath(source)
                source = [ring]
            else:
                source = FollowedFile(fspath(source), self._following)
        super().__init__(source)
        if follow and self._file is not None:
            self._owned = self._file
        self.problems: List[Tuple[str, str]] = []
        self._on_problem = on_problem
        self._failures_named = 0  # of packets.failures, those in problems
        if ring is not None:
            self.packets = self._open_ring(ring, block_size, max_record)
            self._owned = self.packets
        elif self._file is None:  # a capture set
            self.packets = self._open_set(source, block_size, max_record)
            self._owned = self.packets
        else:
            self.packets = self._capture.PacketReader(self._file, block_size=block_size, max_record=max_record)
            name = source if isinstance(source, (str, PathLike)) and source != "-" else getattr(source, "name", None)
            name = fspath(name) if isinstance(name, (str, PathLike)) else None
            # Standard input (sys.stdin.buffer is named "<stdin>"), or a file that is no path: no name.
            self.files = [None if name is None or name.startswith("<") else name]
        self._counts: Dict[str, int] = {}  # stats, in a plain dict (see _tally)
        self.skipped: Counter = Counter()
        self.errors: List[Tuple[int, int, str]] = []
        self._conns: Dict[int, _Conn] = {}  # by stream number
        self._by_lane: Dict[Any, _Conn] = {}  # the same, by the reassembler's lane (those that have one)
        self._out: List[CloseRecord] = []
        self._clock: Any = None  # a partition's segment loop while it reads (its count orders what is made)
        self.starts: Optional[List[int]] = None
        self.order: Optional[List[int]] = None
        self.error_order: Optional[List[int]] = None
        self.peak_open: Optional[int] = None
        self.peak_buffered: Optional[int] = None
        self.chunk_report: Optional[ChunkReport] = None
        if partition is not None or chunk is not None:
            self.starts, self.order, self.error_order = [], [], []
            self.peak_open = self.peak_buffered = 0
        if chunk is not None:
            self.chunk_report = ChunkReport()

    def _open_set(self, paths: Sequence[Any], block_size: int, max_record: int) -> Any:
        """A ``PacketMerger`` over the capture files ``paths`` name, after a first look at each: a file
        that cannot be read, is not a capture or holds no packet is left out, in ``problems``."""
        reader_class = self._capture.PacketReader
        reader_class(None, block_size=block_size, max_record=max_record)  # the sizes checked here, for every file
        self.files, firsts, left_out = look_at_set(reader_class, paths, max_record)
        for path, why in left_out:
            self._problem(path, why)
        opens = [functools.partial(_open_packets, reader_class, path, block_size, max_record) for path in self.files]
        return self._capture.PacketMerger(opens, firsts)

    def _open_ring(self, directory: str, block_size: int, max_record: int) -> Any:
        """A ``PacketMerger`` over a rotating capture's files as they come: the one written now (or, in a
        directory with none yet, the first to appear), then each next one (:meth:`_next_file`)."""
        self._capture.PacketReader(None, block_size=block_size, max_record=max_record)  # the sizes checked here
        names = _ring_files(directory)
        self._seen = {name: look for name, look in zip(names, map(_look, names)) if look is not None}
        names = [name for name in names if name in self._seen]
        if names:
            # The last written (a ring that reuses its names writes over its oldest). Files written in the same
            # clock tick (a rotation: the old file's last packet, the new one's first) by their first packet,
            # a file with none yet the newest; then the last by name.
            last = max(self._seen[name][2] for name in names)
            tied = [name for name in names if self._seen[name][2] == last]
            start = max(range(len(tied)), key=lambda i: (self._first_time(tied[i], max_record) if len(tied) > 1
                                                         else 0, i))
            self.files = [tied[start]]
            first = functools.partial(self._open_followed, tied[start], directory, block_size, max_record)
        else:
            self.files = [directory]  # named in the problems if no file appears before the stop
            first = functools.partial(self._open_first, directory, block_size, max_record)
        return self._capture.PacketMerger([first], [0], functools.partial(self._go_on, directory, block_size,
                                                                          max_record))

    def _open_first(self, directory: str, block_size: int, max_record: int) -> Any:
        """The reader of the first capture file to appear in ``directory`` (looking every ``POLL_SECONDS``;
        the first by name of those there then), opened when the merger first reads.

        Raises:
            FileNotFoundError: the reader was stopped before one appeared.
        """
        assert self._following is not None
        while True:
            stopped = self._following.is_set()  # after a stop too, what the directory holds then is read
            names = [name for name in _ring_files(directory) if _head(name) is not None]
            if names:
                break
            if stopped:
                raise FileNotFoundError(f"no capture file appeared in {directory} before the stop")
            self._following.wait(POLL_SECONDS)
        self.files[0] = names[0]
        return self._open_followed(names[0], directory, block_size, max_record)

    def _first_time(self, path: str, max_record: int) -> float:
        """The first packet time of a ring file (to order files written in one clock tick): infinite for a
        file with no whole packet yet (just made), minus infinity for one that cannot be read."""
        try:
            with open_file(path) as file:
                first = first_packet_time(self._capture.PacketReader(file, block_size=FIRST_LOOK_BLOCK,
                                                                     max_record=max_record))
        except (OSError, DecodeError):
            return float("-inf")
        return float("inf") if first is None else first

    def _open_followed(self, path: str, directory: str, block_size: int, max_record: int) -> Any:
        self._set_failures()  # the file before, if it broke off after the ring went on: named now
        done = functools.partial(self._next_file, path, directory, block_size, max_record)
        self._followed = None  # until it opens
        self._followed = FollowedFile(path, self._following, done)
        return self._capture.PacketReader(self._followed, block_size=block_size, max_record=max_record)

    def _next_file(self, path: str, directory: str, block_size: int, max_record: int, ended: bool = False,
                   cut: bool = False) -> bool:
        """Whether the rotating capture has gone on past ``path``; its next file is then added to the set.

        The next file is one of the ring's: a capture file whose name differs from ``path``'s only in
        its numbers (``trace.pcap`` and ``trace.pcap1``; dumpcap's ``NAME_00001_DATE``). It is the first
        after ``path`` by name (:func:`~closecodec.capture.files.natural_order`) that is new or was
        written over since it was last looked at (:meth:`_written_over`); without one, a ring that reuses
        its names (``tcpdump -C N -W M``) has gone round once a file before ``path`` is written over: the
        first such by name. Files of the ring's last round, and files only added to (another capture's
        whose name differs in its numbers too), are never taken. No clocks are compared.

        ``ended``: ``path`` has ended before the ring went on (it broke off, or was gone), so ``path``
        itself is next when no other file is and it was written over since (a ring of one name);
        ``cut``: it ended found shorter than what was read, so its bytes now are a later round's, not read
        yet, and it is next when no other file is.
        """
        if self.files[-1] != path:
            return True
        stem, order = _stem(path), natural_order(path)
        ring = [(name, at) for name, name_stem, at in self._listing(directory) if name != path and name_stem == stem]
        chosen = next((name for name, at in ring if at > order and self._written_over(name)), None)
        if chosen is None:
            chosen = next((name for name, at in ring if at < order and self._written_over(name)), None)
        if chosen is None and ended and (_look(path) is not None if cut else self._written_over(path)):
            chosen = path
        if chosen is None:
            return False
        if cut:
            self._seen.pop(path, None)  # what it holds now is new
        elif not ended:
            look = _look(path)
            if look is not None:
                self._seen[path] = look  # as it was left: written over, it is the ring going round
        # (ended: _go_on keeps it as it was read, which it may no longer be)
        self.files.append(chosen)
        self.packets.add(functools.partial(self._open_followed, chosen, directory, block_size, max_record))
        return True

    def _go_on(self, directory: str, block_size: int, max_record: int) -> bool:
        """Whether the rotating capture goes on, when the file read last has ended before the stop: it broke
        off, was cut, or could not be opened (dumpcap's ``-b files:N`` removes its oldest). Its failure names it in
        ``problems``; the ring's next file is waited for and added, as :meth:`_next_file` finds it."""
        assert self._following is not None
        path = self.files[-1]
        if not self._following.is_set():
            self._set_failures()  # named now: following may last days
        followed = self._followed if self._followed is not None and self._followed.name == path else None
        cut = followed is not None and followed.cut
        if followed is not None and not cut:
            # As it was read (it may be written over already): it comes again once written over.
            inode, size, head = followed.as_read()
            self._seen[path] = (inode, size, -1, len(head), zlib.crc32(head))
        else:
            self._seen.pop(path, None)  # cut, or never opened: what it holds later is new
        while not self._following.is_set():
            if self._next_file(path, directory, block_size, max_record, True, cut):
                return True
            self._following.wait(POLL_SECONDS)
        return False

    def _listing(self, directory: str) -> List[Tuple[str, str, Tuple[Any, ...]]]:
        """The ring's files (``_ring_files``) with their stems and sort keys, listed again when the directory
        changed (a file was made, removed or renamed) and at least every second (a clock of coarse ticks
        may give two changes one mtime): a ring of thousands of files is looked at every 0.1 s."""
        try:
            changed = os.stat(directory).st_mtime_ns
        except OSError:
            return []
        now = monotonic()
        if self._listed is None or self._listed[0] != changed or now - self._listed[1] >= 1:
            self._listed = (changed, now, [(name, _stem(name), natural_order(name))
                                           for name in _ring_files(directory)])
        return self._listed[2]

    def _written_over(self, path: str) -> bool:
        """Whether a file of a followed ring is a capture file that is new, or was written over since it was
        last looked at: another inode, fewer bytes, or other first bytes (the first packet's time). A file
        only added to is not: it is another capture's, or the last round's being finished."""
        before = self._seen.get(path)
        if before is not None:
            try:
                found = os.stat(path)
            except OSError:
                return False
            if (found.st_ino, found.st_size, found.st_mtime_ns) == before[:3]:
                return False  # untouched: no need to read it
        now = _head(path)
        if now is None:
            return False
        if before is None:
            return True
        (found, head), (inode, size, _, head_length, head_crc) = now, before
        # Written over and grown back, the same inode's first bytes tell.
        return found.st_ino != inode or found.st_size < size or zlib.crc32(head[:head_length]) != head_crc

    def stop(self) -> None:
        """With ``follow``: read what the files hold now, then end (from any thread; a signal handler
        should call it from another thread, as ``Event.set`` takes a lock).

        Raises:
            ValueError: the reader does not follow.
        """
        if self._following is None:
            raise ValueError("stop() is for a reader made with follow=True")
        self._following.set()

    def _set_failures(self) -> None:
        """The files of a set that stopped early since this was last called, in ``problems`` (when iteration
        has ended, and when a followed ring goes on past one)."""
        failures = self.packets.failures
        for index, error in failures[self._failures_named:]:
            path = self.files[index]
            if isinstance(error, IncompleteError):
                what = f"truncated: it stops inside the record at byte {error.offset}; the records before are kept"
            elif isinstance(error, OSError):
                what = f"cannot read it: {error.strerror or error}"
            else:
                what = f"broken: {error}; the records before are kept"
            self._problem(path, what)
        self._failures_named = len(failures)

    def _problem(self, path: str, why: str) -> None:
        self.problems.append((path, why))
        if self._on_problem is not None:
            self._on_problem(path, why)

    @property
    def stats(self) -> Counter:
        """What was counted so far, in a new :class:`collections.Counter` at each read."""
        return Counter(self._counts)

    @property
    def error(self) -> Optional[IncompleteError]:
        """A single source's truncation (a set's files are in :attr:`problems`)."""
        return self.packets.error

    @property
    def position(self) -> int:
        return self.packets.offset

    @property
    def frames(self) -> int:
        """Packet records read so far (for a set, from all its files)."""
        return self.packets.frames if self._file is not None else self.packets.packets

    def __iter__(self) -> Iterator[CloseRecord]:
        if self.chunk is not None:
            yield from self._read_chunk()
            return
        reassembler = self.reassembler
        out = self._out
        progress = self._progress
        # The compiled (or pure) segment loop reads and parses the packets and feeds in-order bytes of
        # recognised connections straight to their decoders; the rest comes here.
        partitioned = self.order is not None
        loop = self._capture.SegmentLoop(self.packets, self.skipped, progress,
                                         self.partition if partitioned else None)
        self._attach(loop)
        if partitioned:
            self._clock = loop
        by_lane = self._by_lane
        try:
            for item in loop:
                kind = item[0]
                if kind == ITEM_DECODED:
                    _, frame, time, lane, d, spans = item
                    self._decoded(by_lane[lane], d, spans, frame, time)
                elif kind == ITEM_HELD:
                    _, frame, time, lane, d, offset, data = item
                    self._hold(by_lane[lane], d, offset, data, frame, time)
                else:  # ITEM_SEGMENT
                    _, frame, time, segment = item
                    for event in reassembler.add(frame, time, segment):
                        self._event(event, segment)
                    if partitioned:
                        self.peak_open = max(self.peak_open, reassembler.open_connections)
                        self.peak_buffered = max(self.peak_buffered, reassembler.buffered)
                if out:
                    yield from out
                    out.clear()
            yield from self._at_end(loop)
            if progress is not None:
                progress(self.packets.offset)
            if self._file is None:
                self._set_failures()
        finally:
            self.close()

    def _read_chunk(self) -> Iterator[CloseRecord]:
        """``__iter__`` for a chunk: its own connections, read past its end while they are open."""
        reassembler = self.reassembler
        out = self._out
        index, boundary = self.chunk
        report = self.chunk_report
        key_of = self._capture.loop_key
        drop: Optional[Dict[Any, List[int]]] = {} if index else None
        loop = self._capture.SegmentLoop(self.packets, self.skipped, None, None, boundary, drop)
        self._attach(loop)
        self._clock = loop
        by_lane = self._by_lane
        keep: Any = None  # past the boundary: the 4-tuples still taken
        try:
            for item in loop:
                kind = item[0]
                if kind == ITEM_DECODED:
                    _, frame, time, lane, d, spans = item
                    self._decoded(by_lane[lane], d, spans, frame, time)
                elif kind == ITEM_HELD:
                    _, frame, time, lane, d, offset, data = item
                    self._hold(by_lane[lane], d, offset, data, frame, time)
                elif kind == ITEM_BOUNDARY:
                    if not item[1] or keep is not None or self._file is None and self.packets.open_before(boundary):
                        report.unsure = ("no record starts at the boundary" if self._file is not None
                                         else "files of the chunk overlap the next chunk's in time")
                        break
                    report.packets = loop.count - 1
                    report.continued = reassembler.open_keys()
                    if not report.continued:
                        report.stopped = report.packets
                        break
                    keep = set()
                    for src, src_port, dst, dst_port in report.continued:
                        keep.add(key_of(src, src_port, dst, dst_port))
                        keep.add(key_of(dst, dst_port, src, src_port))
                    loop.keep = keep
                else:  # ITEM_SEGMENT
                    _, frame, time, segment = item
                    src, src_port, dst, dst_port = segment.src, segment.src_port, segment.dst, segment.dst_port
                    syn = segment.flags & 0x12 == 0x02  # SYN without ACK: a connection's first segment
                    if keep is not None and syn:
                        if reassembler.knows(src, src_port, dst, dst_port) == 2:
                            report.unsure = "a SYN past the boundary for a connection open across it"
                            break
                        # A new connection on the 4-tuple of one that ended: the next chunks'.
                        keep.discard(key_of(src, src_port, dst, dst_port))
                        keep.discard(key_of(dst, dst_port, src, src_port))
                        report.released.append(((src, src_port, dst, dst_port), loop.count))
                        continue
                    known = reassembler.knows(src, src_port, dst, dst_port)
                    if drop is not None and keep is None and not syn and not known:
                        # It started before this chunk: an earlier chunk's, or no one's (the merge decides).
                        entry = [loop.count, loop.count]
                        drop[key_of(src, src_port, dst, dst_port)] = drop[key_of(dst, dst_port, src, src_port)] = entry
                        report.foreign.append(((src, src_port, dst, dst_port), entry))
                        continue
                    if known == 1 and not syn:  # after its connection's end: dropped, if one reader remembers it
                        report.absorbed.append(((src, src_port, dst, dst_port), loop.count))
                    open_before = reassembler.open_connections
                    streams_before = reassembler._streams
                    for event in reassembler.add(frame, time, segment):
                        self._event(event, segment)
                    started = reassembler._streams - streams_before
                    if started and index and keep is None:
                        report.opened.append(((src, src_port, dst, dst_port), loop.count))
                    for _ in range(open_before + started - reassembler.open_connections):
                        report.retired.append(((src, src_port, dst, dst_port), loop.count))
                    self.peak_open = max(self.peak_open, reassembler.open_connections)
                    self.peak_buffered = max(self.peak_buffered, reassembler.buffered)
                    if keep is not None and not reassembler.open_connections:
                        report.stopped = loop.count
                        yield from out
                        out.clear()
                        break
                if out:
                    yield from out
                    out.clear()
            else:  # to the end of the capture
                yield from self._at_end(loop)
                if report.packets is None:
                    report.packets = loop.count
                    if boundary is not None:  # stopped short of it: cut, or broken, where one reader stops
                        report.unsure = "the capture ends before the chunk's boundary"
            if self._file is None:
                self._set_failures()
        finally:
            self.close()

    def _at_end(self, loop: Any) -> Iterator[CloseRecord]:
        """The records the end of the capture makes: every open connection ended, in stream order."""
        self._clock = None
        for event in self.reassembler.finish(loop.last_segment):
            self._event(event, None)
        yield from self._out
        self._out.clear()

    def _attach(self, loop: Any) -> None:
        """Give the segment loop the reassembler's lanes: in-order bytes of recognised connections go
        straight to their decoders, not through the reassembler (tests/test_capture_lanes.py compares
        the two paths by overriding this)."""
        self.reassembler.attach(loop)

    # -- events ----------------------------------------------------------------------

    def _event(self, event: Any, segment: Any) -> None:
        kind = type(event)
        if kind is StreamData:
            conn = self._conns.get(event.connection.stream)
            if conn is None or conn.app == "ignore":
                return
            d = event.direction
            if conn.app is None:
                self._hold(conn, d, event.offset, bytes(event.data), event.frame, event.timestamp_ns)
            else:
                self._feed(conn, d, event.data, event.offset, event.frame, event.timestamp_ns)
        elif kind is StreamStart:
            self._start(event)
        elif kind is StreamGap:
            self._gap(event)
        elif kind is StreamEnd:
            self._end(event, segment)

    def _start(self, event: StreamStart) -> None:
        value = event.connection
        self._tally("connections")
        port = self._ports.get(value.server_port)
        client = 0
        if port is None:
            port = self._ports.get(value.client_port)
            client = 1
        conn = _Conn(value, None, client, None) if port is None else _Conn(value, port[0], client, port[1])
        if self.starts is not None:
            self.starts.append(self._clock.count)
        conn.lane = self.reassembler.lane_of(value)
        self._conns[value.stream] = conn
        if conn.lane is not None:
            self._by_lane[conn.lane] = conn
        _sink(conn, 0)
        _sink(conn, 1)

    def _gap(self, event: StreamGap) -> None:
        conn = self._conns.get(event.connection.stream)
        if conn is None or conn.app == "ignore":
            return
        self._tally("gaps")
        conn.lost = True
        if conn.app is None:
            # The handshake is incomplete: only the port tables, or the bytes after the gap, can say what
            # follows.
            if conn.port_kind is None:
                if not self._heuristics:
                    self._ignore(conn)
                    return
                half = conn.halves[event.direction]
                half.pending, half.held, half.head = [], 0, None
                if half.candidates is not None:
                    half.candidates = Candidates()
                return
            self._setup_by_port(conn)
        half: _DirectionDecoder = conn.halves[event.direction]
        if half.ws is not None:
            half.ws.reset(event.offset + event.length)
            if conn.deflate or half.inflater is not None:
                half.inflater = False  # the permessage-deflate window is lost with the bytes
            if half.mqtt is not None:
                half.mqtt.reset()
        elif half.mqtt is not None:
            half.mqtt.reset(event.offset + event.length)

    def _end(self, event: StreamEnd, segment: Any) -> None:
        conn = self._conns.get(event.connection.stream)
        if conn is None:
            return
        d = event.direction
        if conn.first_end is None and event.reason in ("fin", "rst"):
            sender = d
            if event.reason == "rst" and segment is not None:
                value = conn.value
                sender = 0 if (segment.src, segment.src_port) == (value.client, value.client_port) else 1
            conn.first_end = (event.reason, sender, event.frame, event.timestamp_ns)
        conn.halves[d].ended = True
        if not (conn.halves[0].ended and conn.halves[1].ended):
            return
        del self._conns[event.connection.stream]
        if conn.lane is not None:
            del self._by_lane[conn.lane]
        if conn.app is None:
            if conn.port_kind is not None and any(half.pending for half in conn.halves):
                self._setup_by_port(conn)
            elif not (self._heuristics and self._guess(conn, True)):
                self._ignore(conn)
        if conn.app != "ignore" and not conn.records and conn.first_end is not None:
            reason, sender, frame, time = conn.first_end
            self._record(conn, sender, frame, time, "tcp", "tcp_end", None, reason.upper(), None)

    def _ignore(self, conn: _Conn) -> None:
        if conn.app is None:
            self._tally("ignored")
        conn.app = "ignore"
        for half in conn.halves:
            half.pending = []
            half.held = 0
            half.head = None
            half.candidates = None
        _sink(conn, 0)
        _sink(conn, 1)

    # -- recognition -----------------------------------------------------------------

    def _hold(self, conn: _Conn, d: int, offset: int, data: bytes, frame: int, time: int) -> None:
        half: _DirectionDecoder = conn.halves[d]
        half.pending.append((offset, data, frame, time))
        half.held += len(data)
        if half.candidates is not None:
            # Being recognised by its bytes: no handshake can follow the bytes already held.
            half.candidates.add(data)
            self._guess(conn, False)
        else:
            self._recognise(conn)
        if conn.app is None and (conn.halves[0].held > MAX_HANDSHAKE or conn.halves[1].held > MAX_HANDSHAKE):
            if conn.port_kind is not None:
                self._setup_by_port(conn)
            elif not (self._heuristics and self._guess(conn, True)):
                self._ignore(conn)

    def _recognise(self, conn: _Conn) -> None:
        half0, half1 = conn.halves
        parse_connect = self._mqtt.parse_mqtt_connect
        heads = (_head_of(half0, parse_connect), _head_of(half1, parse_connect))
        kinds = (None if heads[0] is None else heads[0].kind, None if heads[1] is None else heads[1].kind)
        for d in (0, 1):
            head = heads[d]
            if kinds[d] == "request":
                parsed = head.http(self._websocket.parse_http_head)
                if parsed is None:
                    return  # wait for the rest of the request
                line, headers, size = parsed
                if "websocket" not in headers.get("upgrade", "").lower():
                    self._ignore(conn)  # plain HTTP
                    return
                if kinds[1 - d] is None or kinds[1 - d] == "more":
                    return  # wait for the response
                if kinds[1 - d] != "response":
                    self._fallback(conn)
                    return
                other = heads[1 - d]
                answer = other.http(self._websocket.parse_http_head)
                if answer is None:
                    return
                self._upgrade(conn, d, line, headers, size, answer)
                return
            if kinds[d] == "connect":
                conn.client = d
                conn.mqtt_version, conn.client_id = head.connect
                self._setup(conn, "mqtt")
                return
        if "more" in kinds or kinds == (None, None):
            return
        if "response" in kinds and None in kinds:
            return  # a response first: wait for the other side's request
        self._fallback(conn)

    def _fallback(self, conn: _Conn) -> None:
        """Neither an upgrade nor a CONNECT: the port tables, else the bytes (undecided: hold more)."""
        if conn.port_kind is not None:
            self._setup_by_port(conn)
        elif not self._heuristics:
            self._ignore(conn)
        else:
            self._guess(conn, False)

    def _guess(self, conn: _Conn, ended: bool) -> bool:
        """Recognise the connection from its held bytes (docs/capture.md, "Mid-stream recognition"); True
        if it was. ``ended``: it holds all it ever will."""
        half: _DirectionDecoder
        for half in conn.halves:
            if half.candidates is None:
                half.candidates = Candidates()
                for piece in half.pending:
                    half.candidates.add(piece[1])
        verdict = None
        for window in (False, True):
            if window and (conn.halves[0].candidates.alive_any() or not conn.halves[0].held) \
                    and (conn.halves[1].candidates.alive_any() or not conn.halves[1].held):
                break  # the segment starts tile: what is missing is more of them, not another start
            for half in conn.halves:
                if half.held:
                    half.candidates.update(self._tiles, self._max_message, window)
            value = conn.value
            verdict = recognise((conn.halves[0].held, conn.halves[1].held),
                                (conn.halves[0].candidates, conn.halves[1].candidates), ended,
                                value.server_port < value.client_port)
            if verdict is not None:
                break
        if verdict is None:
            return False
        conn.client = verdict.client
        conn.detection = "heuristic"
        if verdict.starts[0] or verdict.starts[1]:
            conn.lost = True  # decoding starts after bytes it could not read
            self._tally("midstream_skipped_bytes", verdict.starts[0] + verdict.starts[1])
        for half in conn.halves:
            half.candidates = None
        if verdict.kind == "websocket":
            conn.maybe_diffusion = True
            conn.probation = []
            for half in conn.halves:
                half.inflater = False  # compressed messages: their window was before the capture
            self._setup(conn, "websocket", ws=True, rsv=4, skip=verdict.starts)
        else:
            conn.mqtt_version = verdict.version or self._mqtt_version
            self._setup(conn, "mqtt", ws=False, rsv=0, skip=verdict.starts)
        return True

    def _setup_by_port(self, conn: _Conn) -> None:
        conn.client = conn.port_client
        conn.detection = conn.port_detection
        kind = conn.port_kind
        if kind == "mqtt" and conn.mqtt_version is None:
            conn.mqtt_version = self._mqtt_version
        if kind == "websocket":
            conn.maybe_diffusion = True
        self._setup(conn, kind, ws=kind != "mqtt", rsv=4)

    def _upgrade(self, conn: _Conn, d: int, line: str, headers: Dict[str, str], size: int,
                 answer: Tuple[str, Dict[str, str], int]) -> None:
        status_line, response, response_size = answer
        parts = status_line.split(" ", 2)
        conn.client = d
        # ASCII digits only: the head is decoded as Latin-1, where isdigit() also takes the
        # superscripts "¹²³" (bytes B9, B2, B3), which int() refuses.
        if len(parts) < 2 or not (parts[1].isascii() and parts[1].isdigit()):
            self._tally("http_errors")
            self._ignore(conn)
            return
        status = int(parts[1])
        if status != 101:
            # A rejected upgrade: recorded at the frame holding the response head's last byte.
            frame, time = _frame_of(conn.halves[1 - d].pending, response_size)
            conn.app = "websocket"
            self._tally("websocket")
            self._record(conn, 1 - d, frame, time, "websocket", "ws_rejected", status, "HANDSHAKE_REJECTED",
                         parts[2] if len(parts) > 2 and parts[2] else None)
            self._ignore(conn)
            return
        target = line.split(" ")[1] if line.count(" ") >= 1 else ""
        path = target.split("?", 1)[0].rstrip("/")
        subprotocol = response.get("sec-websocket-protocol", "").strip().lower()
        conn.deflate = deflate_negotiated(response)
        rsv = 4 if conn.deflate else 0
        if subprotocol.startswith("mqtt"):
            kind = "mqtt-websocket"
        elif path.rsplit("/", 1)[-1].lower() == "diffusion" or conn.port_kind == "diffusion":
            kind = "diffusion"
        else:
            kind = "websocket"
            conn.maybe_diffusion = True
        self._setup(conn, kind, ws=True, rsv=rsv, skip=(size, response_size) if d == 0 else (response_size, size))

    def _setup(self, conn: _Conn, kind: Optional[str], *, ws: bool = False, rsv: int = 0,
               skip: Tuple[int, int] = (0, 0)) -> None:
        """Start decoding the connection as ``kind``; feed what was held, past ``skip`` bytes a direction."""
        half: _DirectionDecoder
        conn.app = kind
        self._tally(kind)
        for d, half in enumerate(conn.halves):
            if ws:
                # Messages are needed until plain WebSocket is told from Diffusion (_on_websocket), but only
                # the server's: the client's matter once it is Diffusion.
                half.ws = self._websocket.WebSocketStream(
                    expect_masked=d == conn.client, rsv_allowed=rsv, minimal_length=False,
                    max_message_size=self._max_message,
                    closes_only=conn.maybe_diffusion and conn.probation is None and d == conn.client)
            else:
                version = conn.mqtt_version
                half.mqtt = self._mqtt.MqttStream(version=None if version is None else max(4, version),
                                              max_packet_size=self._max_message, closes_only=True)
        held = []
        starts = [0, 0]
        for d, half in enumerate(conn.halves):
            pending, half.pending, half.held, half.head = half.pending, [], 0, None
            held.append(pending)
            if pending:
                starts[d] = pending[0][0] + skip[d]
                decoder = half.ws if half.ws is not None else half.mqtt
                decoder.reset(starts[d])
        # Both directions' held pieces, merged in the order they came (each direction's in its own
        # order), so that the records come in that order too.
        i = j = 0
        while i < len(held[0]) or j < len(held[1]):
            if j == len(held[1]) or i < len(held[0]) and _came_first(held[0][i], held[1][j]):
                d, piece = 0, held[0][i]
                i += 1
            else:
                d, piece = 1, held[1][j]
                j += 1
            offset, data, frame, time = piece
            start = starts[d]
            if offset + len(data) <= start:
                continue
            if offset < start:
                data, offset = data[start - offset:], start
            self._feed(conn, d, data, offset, frame, time)
        _sink(conn, 0)
        _sink(conn, 1)

    # -- decoding --------------------------------------------------------------------

    def _feed(self, conn: _Conn, d: int, data: Any, offset: int, frame: int, time: int) -> None:
        half: _DirectionDecoder = conn.halves[d]
        if half.done:
            return
        decoder = half.ws if half.ws is not None else half.mqtt
        if decoder is None:
            return
        if decoder.position != offset:
            decoder.reset(offset)
        try:
            spans = decoder.feed(data, spans=True)
        except DecodeError:
            spans = []
        self._decoded(conn, d, spans, frame, time)

    def _decoded(self, conn: _Conn, d: int, spans: List[Tuple[int, int, Any]], frame: int, time: int) -> None:
        """What a direction's decoder returned for the bytes of ``frame``, then its error if it failed."""
        half: _DirectionDecoder = conn.halves[d]
        decoder = half.ws if half.ws is not None else half.mqtt
        if half.ws is not None:
            for _, _, value in spans:
                self._on_websocket(conn, d, value, frame, time)
            what = "websocket_errors"
        else:
            for start, end, value in spans:
                self._on_mqtt(conn, d, end - start, value, frame, time)
            what = "mqtt_errors"
        error = decoder.error
        if error is not None:
            # Resynchronise at the next segment, taken to start a frame (or packet).
            self._count(what, frame, conn, error)
            decoder.reset()

    def _tally(self, key: str, by: int = 1) -> None:
        # A plain dict, not a Counter: Counter's __delitem__, written in Python, sends each item
        # assignment through the interpreter's slot lookup, which cost 2 k instructions an increment.
        counts = self._counts
        counts[key] = counts.get(key, 0) + by

    def _count(self, what: str, frame: int, conn: _Conn, error: Exception) -> None:
        self._tally(what)
        conn.lost = True
        if len(self.errors) < 100:
            message = error.args[0] if isinstance(error, DecodeError) and error.args else str(error)
            if self._file is None:  # a set: which of its files
                message = f"{message} (in {self.files[frame >> FILE_SHIFT]})"
            self.errors.append((frame & FRAME_MASK, conn.value.stream, f"{what[:-7]}: {message}"))
            if self.error_order is not None:
                self.error_order.append(-1 if self._clock is None else self._clock.count)

    def _on_websocket(self, conn: _Conn, d: int, value: Any, frame: int, time: int) -> None:
        kind = type(value)
        if kind is WebSocketClose:
            close = value  # typed in records.pxd, as message below: compiled, fields are read directly
            conn.halves[d].done = True
            _sink(conn, d)
            code = close.code
            # Names are read as the enums' _name_: the .name property runs Python code for each record.
            self._record(conn, d, frame, time, "websocket", "ws_close", None if code is None else int(code),
                         "NO_STATUS_RECEIVED" if code is None else code._name_, close.reason or None, value=close)
            return
        if kind is not WebSocketMessage:
            return
        message = value
        app = conn.app
        half: _DirectionDecoder = conn.halves[d]
        if app == "websocket":
            if conn.probation is not None:
                self._on_probation(conn, d, message, frame, time)
                return
            # A first server message that is a whole connection response makes the connection Diffusion.
            if not conn.maybe_diffusion or d == conn.client:
                return
            conn.maybe_diffusion = False
            payload = message.payload
            if message.opcode != _BINARY or message.rsv or payload[:1] != b"\x23":
                _plain_websocket(conn)
                return
            try:
                response, end = self._diffusion.decode_connection_response(payload)
            except DecodeError:
                _plain_websocket(conn)
                return
            if end != len(payload):
                _plain_websocket(conn)
            else:
                conn.app = "diffusion"
                self._tally("websocket", -1)
                self._tally("diffusion")
                half.messages = 1
                # The client's messages from the next one on (one under way when this arrived is skipped).
                conn.halves[conn.client].ws.closes_only = False
                self._on_diffusion(conn, d, response, frame, time)
            return
        payload = message.payload
        if message.rsv & 4:
            payload = self._inflate(conn, half, payload, frame)
            if payload is None:
                return
        if message.opcode != _BINARY:
            return
        half.messages += 1
        if app == "mqtt-websocket":
            self._on_mqtt_bytes(conn, d, payload, frame, time)
        else:
            self._on_diffusion_bytes(conn, d, payload, frame, time)

    def _on_probation(self, conn: _Conn, d: int, message: Any, frame: int, time: int) -> None:
        """A message of a connection recognised mid-stream as WebSocket: Diffusion once a connection
        response or ``MIN_MESSAGES`` binary messages in a row parse as Diffusion messages, plain WebSocket
        at the first that does not (docs/capture.md)."""
        if message.rsv:
            self._tally("compressed_skipped")  # its window was before the capture: no telling
            return
        payload = message.payload
        if message.opcode != _BINARY:
            _plain_websocket(conn)
            return
        half: _DirectionDecoder = conn.halves[d]
        half.messages += 1
        codec = self._diffusion
        try:
            if d != conn.client and half.messages == 1 and payload[:1] == b"\x23":
                value, end = codec.decode_connection_response(payload)
                if end != len(payload):
                    raise DecodeError("bytes after the connection response", end)
            else:
                value = codec.decode_message(payload)
        except DecodeError:
            _plain_websocket(conn)
            return
        probation = conn.probation
        probation.append((d, value, frame, time))
        if type(value) is not ConnectionResponse and len(probation) < MIN_MESSAGES:
            return
        conn.app = "diffusion"
        conn.maybe_diffusion = False
        conn.probation = None
        self._tally("websocket", -1)
        self._tally("diffusion")
        conn.halves[0].ws.closes_only = conn.halves[1].ws.closes_only = False
        for sender, value, at, when in probation:
            self._on_diffusion(conn, sender, value, at, when)

    def _inflate(self, conn: _Conn, half: _DirectionDecoder, payload: bytes, frame: int) -> Optional[bytes]:
        """A permessage-deflate message's payload (RFC 7692 §7.2.2), or None if it cannot be had.

        One inflater a direction, kept across messages (context takeover; also
        right without it). After a gap the window is lost: compressed messages
        are skipped (counted) from then on.
        """
        if half.inflater is False:
            self._tally("compressed_skipped")
            return None
        if half.inflater is None:
            half.inflater = MessageInflater(DEFAULT_MAX_INFLATED)
        try:
            data = half.inflater.inflate(payload)
        except zlib.error as error:
            half.inflater = False
            self._count("websocket_errors", frame, conn, ValueError(f"permessage-deflate: {error}"))
            return None
        return data

    def _on_diffusion_bytes(self, conn: _Conn, d: int, payload: bytes, frame: int, time: int) -> None:
        half: _DirectionDecoder = conn.halves[d]
        codec = self._diffusion
        try:
            if d != conn.client and half.messages == 1 and payload[:1] == b"\x23":
                value, end = codec.decode_connection_response(payload)
            else:
                value = codec.decode_message(payload)
        except DecodeError as error:
            self._count("diffusion_errors", frame, conn, error)
            return
        self._on_diffusion(conn, d, value, frame, time)

    def _on_diffusion(self, conn: _Conn, d: int, value: Any, frame: int, time: int) -> None:
        kind = type(value)
        if kind is ConnectionResponse:
            code = value.code
            if code.is_success:
                conn.session_id = str(value.session_id)
                return
            reason = value.close_reason
            self._record(conn, d, frame, time, "diffusion", "diffusion_response", int(code), code._name_, None,
                         value=value, close_reason=None if reason is None else reason._name_)
        elif kind is AbortNotification:
            self._record(conn, d, frame, time, "diffusion", "diffusion_abort", None, "ABORT_NOTIFICATION", None,
                         value=value, close_reason=value.close_reason._name_)
        elif kind is CloseRequest:
            self._record(conn, d, frame, time, "diffusion", "diffusion_close_request", None, "CLOSE_REQUEST", None,
                         value=value, close_reason=value.close_reason._name_)
        elif kind is ServiceRequest:
            payload = value.payload
            if type(payload) is EventBatch:
                for event in payload.events:
                    if type(event) is _CloseEvent:
                        reason = event.reason
                        self._record(conn, d, frame, time, "diffusion", "diffusion_close_event", int(reason),
                                     reason._name_, None, value=event, close_reason=None,
                                     session_id=str(event.session_id))
            elif type(payload) is CloseClientRequest:
                self._record(conn, d, frame, time, "diffusion", "diffusion_close_client", None, "CLOSE_CLIENT",
                             None, value=payload, close_reason=None, session_id=str(payload.session_id))

    def _on_mqtt_bytes(self, conn: _Conn, d: int, payload: bytes, frame: int, time: int) -> None:
        half: _DirectionDecoder = conn.halves[d]
        if half.mqtt is None:
            if d == conn.client and conn.mqtt_version is None:
                found = self._mqtt.parse_mqtt_connect(payload)
                if found:
                    conn.mqtt_version, conn.client_id = found
            version = conn.mqtt_version
            half.mqtt = self._mqtt.MqttStream(version=None if version is None else max(4, version),
                                                max_packet_size=self._max_message, closes_only=True)
        mqtt = half.mqtt
        try:
            spans = mqtt.feed(payload, spans=True)
        except DecodeError:
            spans = []
        for start, end, value in spans:
            self._on_mqtt(conn, d, end - start, value, frame, time)
        if mqtt.error is not None:
            self._count("mqtt_errors", frame, conn, mqtt.error)
            mqtt.reset()

    def _on_mqtt(self, conn: _Conn, d: int, size: int, value: Any, frame: int, time: int) -> None:
        kind = type(value)
        if kind is MqttDisconnect:
            disconnect = value  # typed in records.pxd
            code = disconnect.reason_code
            # tshark shows no reason code for the two-byte form (Remaining Length 0): nor do we.
            short = size == 2
            self._record(conn, d, frame, time, "mqtt", "mqtt_disconnect", None if short else int(code),
                         code.name_in("DISCONNECT"), disconnect.reason_string, value=disconnect, close_reason=None,
                         session_id=None, properties=disconnect.properties,
                         mqtt_version=conn.mqtt_version or disconnect.version)
        elif kind is MqttConnack and not value.accepted:
            code = value.reason_code
            self._record(conn, d, frame, time, "mqtt", "mqtt_connack", int(code), code._name_, value.reason_string,
                         value=value, close_reason=None, session_id=None, properties=value.properties,
                         mqtt_version=conn.mqtt_version or value.version)

    def _record(self, conn: _Conn, d: int, frame: int, time: int, protocol: str, kind: str, code: Optional[int],
                name: Optional[str], reason: Optional[str], *, value: Any = None, close_reason: Optional[str] = None,
                session_id: Optional[str] = None, properties: tuple = (), mqtt_version: Optional[int] = None) -> None:
        # Compiled, a C method: a call may leave out only the keywords after the last one it gives.
        conn.records += 1
        self._tally("records")
        if conn.endpoints is None:
            conn.endpoints = conn.value.endpoint(0)
        src, dst = conn.endpoints if d == 0 else conn.endpoints[::-1]
        file = self.files[frame >> FILE_SHIFT]  # a set's frames carry their file (capture/values.py)
        app = conn.app if conn.app != "ignore" else None
        mqtt = app in ("mqtt", "mqtt-websocket")
        if self.order is not None:
            self.order.append(-1 if self._clock is None else self._clock.count)
        self._out.append(tuple_new(CloseRecord, (
            file, frame & FRAME_MASK, time, conn.value.stream, src, dst, _DIRECTIONS[d != conn.client], protocol,
            kind, code, name, reason, session_id if session_id is not None else conn.session_id, close_reason,
            conn.client_id if mqtt else None, mqtt_version if protocol == "mqtt" else None, tuple(properties),
            app, conn.detection, conn.lost, value,
        )))


class ChunkReport:
    """What a chunk's reader found that the merge of a parallel read needs (packet counts are the
    chunk's loop's: 1 is the chunk's first packet).

    Attributes:
        packets: the packets of the chunk itself (before the boundary).
        continued: the 4-tuples (client first) of its connections open at the boundary.
        stopped: the count where it stopped reading past the boundary (its connections had ended),
            or None (it read to the end of the capture).
        released: ``(4-tuple, count)``: a SYN past the boundary starting a new connection on the 4-tuple
            of one of its connections that had ended (left to the next chunks).
        retired: ``(4-tuple, count)`` for each of its connections that ended.
        foreign: ``(4-tuple, [first, last, SYNs...])``: segments of connections that did not start in it,
            passed over (after chunk 0).
        opened: ``(4-tuple, count)`` for each connection it started (after chunk 0, before its boundary).
        absorbed: ``(4-tuple, count)`` for each segment it dropped as coming after its connection's end.
        unsure: why the chunks cannot be put together as one reader's (then the merge reads otherwise).
    """

    __slots__ = ("packets", "continued", "stopped", "released", "retired", "foreign", "opened", "absorbed",
                 "unsure")

    def __init__(self) -> None:
        self.packets: Optional[int] = None
        self.continued: List[Tuple[bytes, int, bytes, int]] = []
        self.stopped: Optional[int] = None
        self.released: List[Tuple[Tuple[bytes, int, bytes, int], int]] = []
        self.retired: List[Tuple[Tuple[bytes, int, bytes, int], int]] = []
        self.foreign: List[Tuple[Tuple[bytes, int, bytes, int], List[int]]] = []
        self.opened: List[Tuple[Tuple[bytes, int, bytes, int], int]] = []
        self.absorbed: List[Tuple[Tuple[bytes, int, bytes, int], int]] = []
        self.unsure: Optional[str] = None

    def __getstate__(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple) -> None:
        for name, value in zip(self.__slots__, state):
            setattr(self, name, value)


def _frame_of(pending: List[Tuple[int, bytes, int, int]], size: int) -> Tuple[int, int]:
    """The frame and time of the held piece holding byte ``size - 1`` of the held bytes."""
    seen = 0
    for _, data, frame, time in pending:
        seen += len(data)
        if seen >= size:
            return frame, time
    return pending[-1][2], pending[-1][3]


def _came_first(first: Tuple[int, bytes, int, int], second: Tuple[int, bytes, int, int]) -> bool:
    """Whether held piece ``first`` came no later than ``second``: by frame within a file, by time across
    the files of a set (as they were merged)."""
    if first[2] >> FILE_SHIFT == second[2] >> FILE_SHIFT:
        return first[2] <= second[2]
    return (first[3], first[2]) <= (second[3], second[2])


def look_at_set(reader_class: Any, paths: Sequence[Any], max_record: int = DEFAULT_MAX_RECORD,
                ) -> Tuple[List[str], List[int], List[Tuple[str, str]]]:
    """The capture files of a set (files, and directories standing for their capture files), each
    with its first packet's time, and ``(path, why)`` for those left out: unreadable, not a capture,
    or holding no packet. ``reader_class`` is a backend's ``PacketReader``."""
    candidates, left_out = capture_files(paths)
    files: List[str] = []
    firsts: List[int] = []
    for path in candidates:
        try:
            with open_file(path) as file:
                # A first look reads little: a small block, grown as the first record needs.
                first = first_packet_time(reader_class(file, block_size=FIRST_LOOK_BLOCK, max_record=max_record))
        except OSError as error:
            left_out.append((path, f"cannot read it: {error.strerror or error}"))
            continue
        except DecodeError as error:
            left_out.append((path, f"not a capture file, or broken at its start: {error}"))
            continue
        if first is None:
            left_out.append((path, "holds no packet"))
            continue
        files.append(path)
        firsts.append(first)
    return files, firsts, left_out


def _ring_files(directory: str) -> List[str]:
    """The files of a rotating capture's directory (not hidden ones), in order of name (natural_order)."""
    return sorted((path for path in list_dir(directory) if not os.path.basename(path).startswith(".")),
                  key=natural_order)


def _head(path: str) -> Optional[Tuple[os.stat_result, bytes]]:
    """A capture file's status and first bytes (at most ``HEAD_BYTES``); None if it cannot be read, or does
    not start as a pcap or pcapng file does (yet: a file being made is empty for a moment)."""
    try:
        with open(path, "rb") as file:
            found = os.fstat(file.fileno())
            head = file.read(HEAD_BYTES)
    except OSError:
        return None
    return (found, head) if head[:4] in CAPTURE_MAGICS else None


def _look(path: str) -> Optional[Tuple[int, int, int, int, int]]:
    """What ``_seen`` keeps of a capture file: its inode, size and mtime (ns), and the length and CRC-32 of
    its first bytes; None as for :func:`_head`."""
    read = _head(path)
    if read is None:
        return None
    found, head = read
    return (found.st_ino, found.st_size, found.st_mtime_ns, len(head), zlib.crc32(head))


def _stem(path: str) -> str:
    """The name without its numbers: the same for every file of a rotating capture."""
    return re.sub(r"\d+", "", os.path.basename(path))


def _open_packets(reader_class: Any, path: str, block_size: int, max_record: int) -> Any:
    """A packet reader over the file at ``path``, for a set's merger (which closes the file)."""
    file = open_file(path)
    try:
        return reader_class(file, block_size=block_size, max_record=max_record)
    except BaseException:
        file.close()
        raise


def close_records(source: Union[str, "PathLike[str]", BinaryIO, None, Sequence[Any]], /,
                  **options: Any) -> Iterator[CloseRecord]:
    """Yield the :class:`CloseRecord` of every close in a capture, lazily.

    Args:
        source: a path, ``"-"`` or None for standard input, a binary file
            object, or a list of paths (files and directories): a capture set,
            read as one capture.
        options: keyword options of :class:`CloseRecordReader` (``decode_as``,
            ``mqtt_ports``, limits).

    Raises:
        MalformedError: the file is not a capture, or its structure is broken.
        IncompleteError: the file is truncated, raised after the records
            before the cut (use :class:`CloseRecordReader` to get the records
            and the error without an exception).
        OSError: the path cannot be opened.

    A file of a set that cannot be read, is not a capture, or stops early is
    left out (or kept up to where it stops) with a :class:`UserWarning` naming
    it, once the rest is read; :attr:`CloseRecordReader.problems` has them.
    """
    reader = CloseRecordReader(source, **options)
    with reader:
        yield from reader
    for path, why in reader.problems:
        warnings.warn(f"capture set: {path}: {why}", UserWarning, stacklevel=2)
    if reader.error is not None:
        raise reader.error
