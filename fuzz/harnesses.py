"""The fuzz harnesses: one per decoder entry point, each differential (compiled vs pure Python).

Each harness is a plain function of the fuzz input (``bytes``) that returns
None or raises: :class:`fuzz.common.Disagreement` when the backends differ,
anything else when a backend raised something other than a documented
:class:`~closecodec.errors.DecodeError`. They run under atheris
(``python -m fuzz``) and also without it (``python -m fuzz --reproduce FILE``).

Input layouts:

- decoders (``message`` ... ``mqtt_packet``, ``tile``): two option bytes, then
  the bytes to decode (:func:`fuzz.common.decoder_input`);
- streams: two option bytes, one byte seeding the chunking, then the stream;
- captures (``pcap``, ``closes``): the file itself.
"""

from __future__ import annotations

import io
from typing import Any, Callable, Dict, List, Tuple

from closecodec.buffer import DEFAULT_MAX_INFLATED
from closecodec.capture import _c as capture_c
from closecodec.capture import _py as capture_py
from closecodec.capture.parallel import find_record
from closecodec.capture.reassembly import CAPTURE_MAGICS, first_packet_time
from closecodec.capture.records import CloseRecordReader
from closecodec.diffusion import _c as diffusion_c
from closecodec.diffusion import _py as diffusion_py
from closecodec.errors import DecodeError
from closecodec.mqtt import _c as mqtt_c
from closecodec.mqtt import _py as mqtt_py
from closecodec.reasons import ReasonNumbering
from closecodec.websocket import _c as websocket_c
from closecodec.websocket import _py as websocket_py
from tests.helpers import use_backend, without_lanes

from . import LINK_TYPES, NAMES
from .common import (
    Options,
    agree,
    as_buffer,
    both,
    canon,
    canon_error,
    chunks,
    decoder_input,
    fields,
    outcome,
    short,
)

DIFFUSION = (diffusion_c, diffusion_py)
WEBSOCKET = (websocket_c, websocket_py)
MQTT = (mqtt_c, mqtt_py)
CAPTURE = (capture_c, capture_py)
#: Each stream class's compiled module and pure twin.
STREAMS = {"WebSocketStream": WEBSOCKET, "DiffusionStream": DIFFUSION, "MqttStream": MQTT}

NUMBERINGS = (ReasonNumbering.WIRE, ReasonNumbering.PUBLISHED)
MAX_INFLATED = (DEFAULT_MAX_INFLATED, 64, 0)
MAX_SIZES = (None, 0, 1, 5, 125, 126, 65536)  # None: the decoder's default


def _sized(name: str, size: Any) -> Dict[str, Any]:
    return {} if size is None else {name: size}


# -- Diffusion -----------------------------------------------------------------------


def message(data: bytes) -> None:
    """decode_message, scan_close_events and close_event_columns on one whole Diffusion message."""
    options, buf, offset = decoder_input(data)
    common = {"numbering": options.pick(NUMBERINGS), "strict": options.flag(),
              "max_inflated": options.pick(MAX_INFLATED)}
    properties = options.pick((True, False))
    both(DIFFUSION, "decode_message", buf, offset, **common)
    scanned = both(DIFFUSION, "scan_close_events", buf, offset, properties=True, **common)
    if not properties:
        both(DIFFUSION, "scan_close_events", buf, offset, properties=False, **common)
    columns = [outcome(lambda: _columns_read(module, buf, offset, **common)) for module in DIFFUSION]
    agree(f"close_event_columns(*{short((buf, offset), 300)}, **{common})", *columns)
    # The columns hold the very events the scan finds, and fail where it fails.
    events = columns[0] if columns[0][0] != "ok" else ("ok", columns[0][1][2])  # canon: ("tuple", len, events, ...)
    agree("close_event_columns against scan_close_events", events, scanned, left="columns", right="scan")


def _columns_read(module: Any, buf: Any, offset: int, **options: Any) -> Tuple[Any, ...]:
    """All that close_event_columns' result gives: its events, then each column."""
    columns = module.close_event_columns(buf, offset, **options)
    count = len(columns)
    return (len(columns), list(columns), list(columns.servers), list(columns.values), columns.reason_bytes,
            columns.reasons, [(columns.session_id(i), columns.reason(i), columns.properties(i)) for i in range(count)])


def event_batch(data: bytes) -> None:
    """decode_event_batch (and, by option, decode_event and decode_close_client_request)."""
    options, buf, offset = decoder_input(data)
    name = options.pick(("decode_event_batch", "decode_event_batch", "decode_event", "decode_close_client_request"))
    if name == "decode_close_client_request":
        both(DIFFUSION, name, buf, offset)
    else:
        both(DIFFUSION, name, buf, offset, numbering=options.pick(NUMBERINGS), strict=options.flag())


def connection_response(data: bytes) -> None:
    """decode_connection_response: the handshake's outcome."""
    options, buf, offset = decoder_input(data)
    both(DIFFUSION, "decode_connection_response", buf, offset, strict=options.flag())


# -- WebSocket and MQTT --------------------------------------------------------------


def ws_frame(data: bytes) -> None:
    """decode_ws_frame and decode_ws_header with every option."""
    options, buf, offset = decoder_input(data)
    kw = {"expect_masked": options.pick((None, True, False)), "rsv_allowed": options.pick(range(8)),
          "minimal_length": not options.flag()}
    kw.update(_sized("max_payload", options.pick(MAX_SIZES)))
    both(WEBSOCKET, "decode_ws_frame", buf, offset, **kw)
    both(WEBSOCKET, "decode_ws_header", buf, offset, **kw)


def mqtt_packet(data: bytes) -> None:
    """decode_mqtt_packet (and decode_mqtt_varint) with every option."""
    options, buf, offset = decoder_input(data)
    kw = {"version": options.pick((None, 4, 5)), "strict": options.flag()}
    kw.update(_sized("max_packet_size", options.pick(MAX_SIZES)))
    both(MQTT, "decode_mqtt_packet", buf, offset, **kw)
    both(MQTT, "decode_mqtt_varint", buf, offset)


TILE_LIMITS = (1 << 24, 0, 1, 125, 126, 65536)


def tile(data: bytes) -> None:
    """ws_tile and mqtt_tile (mid-stream recognition) on any bytes, from any start, with any limit."""
    options, buf, offset = decoder_input(data)
    limit = options.pick(TILE_LIMITS)
    both(WEBSOCKET, "ws_tile", buf, offset, limit)
    both(MQTT, "mqtt_tile", buf, offset, limit)


# -- streams ---------------------------------------------------------------------------

STREAM_SIZES = (None, 0, 1, 5, 125, 126, 1000)  # None: the default (16 MiB)
CHUNK_SIZES = (1000, 1, 2, 3, 7, 16, 64)  # the largest chunk; chunks are 0..largest bytes


def _stream_input(data: bytes) -> Tuple[Options, List[Any], bytes, bool]:
    """Option bytes, the chunking seed byte, then the stream: ``(options, chunks, whole, reset_on_error)``."""
    options = Options(int.from_bytes(data[:2], "little"))
    seed = data[2] if len(data) > 2 else 0
    stream = data[3:]
    kind = options.pick((0, 1, 2))
    largest = options.pick(CHUNK_SIZES)
    reset_on_error = options.pick((False, False, False, True))
    pieces = [as_buffer(piece, kind) for piece in chunks(stream, seed, largest)]
    return options, pieces, stream, reset_on_error


def _state(stream: Any) -> Tuple[Any, ...]:
    """A stream's public state (compared after every feed, so kept cheap: values compare by ==)."""
    error = stream.error
    return (stream.position, stream.buffered, getattr(stream, "closed", None), getattr(stream, "in_message", None),
            getattr(stream, "response", None), None if error is None else canon_error(error))


def _feed_all(stream: Any, pieces: List[Any], reset_on_error: bool) -> List[Any]:
    """Feed every piece; the trace of what each call returned or raised and the state after it."""
    trace = []
    failed = False
    for piece in pieces:
        result = outcome(lambda: stream.feed(piece, offsets=True))
        trace.append((result, _state(stream)))
        if result[0] == "error":
            if reset_on_error:
                stream.reset()
                trace.append(("reset", _state(stream)))
            elif failed:
                break  # a failed stream raised its error twice: it will go on doing so
            else:
                failed = True
    return trace


def _values_and_error(trace: List[Any], stream: Any) -> Tuple[List[Any], Any]:
    values = []
    for result, _state in trace:
        if result[0] == "ok":
            values.extend(result[1][1:])  # ("list", value...)
    return values, canon(stream.error)


def _stream_check(name: str, make: Callable[[Any], Any], options: Options, pieces: List[Any], whole: bytes,
                  reset_on_error: bool) -> None:
    compiled, pure = (make(module) for module in STREAMS[name])
    trace_c = _feed_all(compiled, pieces, reset_on_error)
    trace_py = _feed_all(pure, pieces, reset_on_error)
    if trace_c != trace_py:
        index = next(i for i in range(max(len(trace_c), len(trace_py)))
                     if i >= len(trace_c) or i >= len(trace_py) or trace_c[i] != trace_py[i])
        agree(f"{name}: feed #{index} of {len(pieces)} chunks",
              trace_c[index] if index < len(trace_c) else "(no call)",
              trace_py[index] if index < len(trace_py) else "(no call)")
    if reset_on_error:
        return
    # Chunking never shows (docs/streaming.md): the compiled stream fed whole gives the same.
    chunked = _values_and_error(trace_c, compiled)
    whole_stream = make(STREAMS[name][0])
    result = outcome(lambda: whole_stream.feed(whole, offsets=True))
    values = list(result[1][1:]) if result[0] == "ok" else []
    agree(f"{name}: chunked ({len(pieces)} chunks) vs whole, compiled", chunked,
          (values, canon(whole_stream.error)), left="chunked", right="whole")


def ws_stream(data: bytes) -> None:
    """WebSocketStream fed in chunks chosen by the input."""
    options, pieces, whole, reset_on_error = _stream_input(data)
    kw = {"expect_masked": options.pick((None, True, False)), "rsv_allowed": options.pick(range(8)),
          "minimal_length": not options.flag()}
    kw.update(_sized("max_message_size", options.pick(STREAM_SIZES)))
    _stream_check("WebSocketStream", lambda module: module.WebSocketStream(**kw), options, pieces, whole,
                  reset_on_error)


def diffusion_stream(data: bytes) -> None:
    """DiffusionStream fed in chunks chosen by the input."""
    options, pieces, whole, reset_on_error = _stream_input(data)
    kw = {"connection_response": not options.flag(), "numbering": options.pick(NUMBERINGS),
          "strict": options.flag(), "max_inflated": options.pick(MAX_INFLATED),
          "expect_masked": options.pick((None, True, False)), "minimal_length": not options.flag()}
    kw.update(_sized("max_message_size", options.pick(STREAM_SIZES)))
    _stream_check("DiffusionStream", lambda module: module.DiffusionStream(**kw), options, pieces, whole,
                  reset_on_error)


def mqtt_stream(data: bytes) -> None:
    """MqttStream fed in chunks chosen by the input."""
    options, pieces, whole, reset_on_error = _stream_input(data)
    kw = {"version": options.pick((None, 4, 5)), "strict": options.flag(), "keep_bodies": options.flag()}
    kw.update(_sized("max_packet_size", options.pick(STREAM_SIZES)))
    _stream_check("MqttStream", lambda module: module.MqttStream(**kw), options, pieces, whole, reset_on_error)


# -- captures --------------------------------------------------------------------------

READER_STATE = ("format", "frames", "offset", "error")
BLOCK_SIZES = (64, 4096)  # the smallest block (a record spans many reads) and a usual one


def packet(data: bytes) -> None:
    """parse_packet on one packet of any link type."""
    options, buf, offset = decoder_input(data)
    link_type = options.pick(LINK_TYPES)
    view = memoryview(buf)[offset:] if offset else buf
    both(CAPTURE, "parse_packet", view, link_type)


def _read_capture(module: Any, data: bytes, block_size: int) -> List[Any]:
    reader = module.PacketReader(io.BytesIO(data), block_size=block_size)
    trace = []
    try:
        for item in reader:
            # The packet's data is a view into the reader's block: compare it now.
            trace.append((canon(item), outcome(lambda: module.parse_packet(item.data, item.link_type))))
    except DecodeError as error:
        trace.append(canon_error(error))
    trace.append(fields(reader, READER_STATE))
    return trace


def pcap(data: bytes) -> None:
    """PacketReader (pcap and pcapng) and parse_packet on every packet it yields."""
    traces = {}
    for block_size in BLOCK_SIZES:
        trace_c = _read_capture(capture_c, data, block_size)
        trace_py = _read_capture(capture_py, data, block_size)
        _agree_lists(f"PacketReader(block_size={block_size})", trace_c, trace_py)
        traces[block_size] = trace_py
    small, large = (traces[size] for size in BLOCK_SIZES)
    _agree_lists("PacketReader, pure, by block size", small, large, left=f"block {BLOCK_SIZES[0]}",
                 right=f"block {BLOCK_SIZES[1]}")


def _merged(module: Any, parts: List[bytes], block_size: int) -> List[Any]:
    """The packets a PacketMerger gives over ``parts`` (each one file), its failures and state."""
    kept = []
    for index, part in enumerate(parts):  # the first look the record reader takes at each file
        try:
            first = first_packet_time(capture_py.PacketReader(io.BytesIO(part)))
        except DecodeError:
            continue
        if first is not None:
            kept.append((index, first))
    opens = [lambda part=parts[i]: module.PacketReader(io.BytesIO(part), block_size=block_size) for i, _ in kept]
    merger = module.PacketMerger(opens, [first for _, first in kept])
    trace: List[Any] = [canon(packet) for packet in merger]
    trace.append([(index, canon_error(error)) for index, error in merger.failures])
    trace.append(fields(merger, ("frames", "packets", "offset", "error")))
    return trace


def merge(data: bytes) -> None:
    """PacketMerger: the input cut into up to four files (each any bytes), merged in time order."""
    options = Options(int.from_bytes(data[:2], "little"))
    count = options.pick((2, 3, 4, 1))
    block_size = options.pick(BLOCK_SIZES)
    body = data[2:]
    # Each file starts at the next pcap or pcapng magic after an even share of the input, so that
    # a capture cut into pieces keeps its pieces' headers when it has several.
    cuts = [0]
    for n in range(1, count):
        at = n * len(body) // count
        found = [body.find(magic, at) for magic in CAPTURE_MAGICS]
        at = min([i for i in found if i >= 0], default=at)
        cuts.append(max(at, cuts[-1]))
    parts = [body[a:b] for a, b in zip(cuts, cuts[1:] + [len(body)])]
    _agree_lists(f"PacketMerger({count} files, block_size={block_size})", _merged(capture_c, parts, block_size),
                 _merged(capture_py, parts, block_size))


def _records_and_end(reader: Any) -> Tuple[List[Any], Any]:
    """A close-record reader's records (canonical) and how it ended (None, or the error)."""
    records = []
    try:
        for record in reader:
            records.append(canon(record))
    except DecodeError as error:
        return records, canon_error(error)
    return records, None


def _read_closes(side: str, data: bytes, lanes: bool = True) -> Dict[str, Any]:
    with use_backend(side):
        reader = CloseRecordReader(io.BytesIO(data)) if lanes else without_lanes(io.BytesIO(data))
    records, end = _records_and_end(reader)
    return {"records": records, "end": end, "stats": canon(dict(reader.stats)),
            "skipped": canon(dict(reader.skipped)), "errors": canon(reader.errors),
            "error": canon(reader.error), "position": reader.position}


def closes(data: bytes) -> None:
    """The whole close-record pipeline (closecodec.capture.records.CloseRecordReader): backend c vs py, and the
    compiled segment loop's fast path (lanes) vs every segment through the Python reassembler."""
    result_c = _read_closes("c", data)
    for name, other in (("py", _read_closes("py", data)), ("c without lanes", _read_closes("c", data, False))):
        for key in result_c:
            if key == "records":
                _agree_lists(f"CloseRecordReader records, c vs {name}", result_c[key], other[key], right=name)
            else:
                agree(f"CloseRecordReader {key}, c vs {name}", result_c[key], other[key], right=name)


def _read_chunk(side: str, data: bytes, index: int, boundary: Any) -> Dict[str, Any]:
    with use_backend(side):
        reader = CloseRecordReader(io.BytesIO(data), chunk=(index, boundary))
    records, end = _records_and_end(reader)
    report = reader.chunk_report
    return {"records": records, "end": end, "order": reader.order, "starts": reader.starts,
            "report": canon([getattr(report, name) for name in report.__slots__]),
            "stats": canon(dict(reader.stats)), "skipped": canon(dict(reader.skipped)),
            "errors": canon(reader.errors), "error": canon(reader.error)}


def chunk(data: bytes) -> None:
    """A chunk's reader (CloseRecordReader's chunk option: the connections that start in the chunk, the others
    passed over, read past the boundary for those still open), c vs py; and find_record, the search for a
    pcap record start that cuts a file into chunks, on the same bytes."""
    options = Options(int.from_bytes(data[:2], "little"))
    index = options.pick((1, 0, 3))
    where = options.pick((2, 3, 4, 0, None))  # the boundary: a share of the input, or none
    body = data[2:]
    boundary = None if where is None else (len(body) * where // 4 if where else 24)
    first = _read_chunk("c", body, index, boundary)
    second = _read_chunk("py", body, index, boundary)
    for key in first:
        if key == "records":
            _agree_lists("chunk records, c vs py", first[key], second[key])
        else:
            agree(f"chunk {key}, c vs py", first[key], second[key])
    magic = {b"\xd4\xc3\xb2\xa1": ("<", False), b"\x4d\x3c\xb2\xa1": ("<", True),
             b"\xa1\xb2\xc3\xd4": (">", False), b"\xa1\xb2\x3c\x4d": (">", True)}.get(body[:4])
    if magic is not None and len(body) >= 24:
        at = 24 + (len(body) - 24) * options.pick((1, 0, 2)) // 3
        found = find_record(body, at, magic[0], magic[1], int.from_bytes(body[16:20], "little" if magic[0] == "<"
                                                                          else "big"), options.flag())
        assert found is None or at <= found <= len(body) - 16, (at, found, len(body))


def _agree_lists(what: str, first: List[Any], second: List[Any], **names: str) -> None:
    """:func:`agree` on two lists, naming the first item where they differ."""
    if first == second:
        return
    index = next((i for i, (a, b) in enumerate(zip(first, second)) if a != b), min(len(first), len(second)))
    agree(f"{what}, item {index} (of {len(first)} / {len(second)})",
          first[index] if index < len(first) else "(none)", second[index] if index < len(second) else "(none)",
          **names)


#: Every harness, by name, in the order the runner runs them.
HARNESSES: Dict[str, Callable[[bytes], None]] = {
    "message": message,
    "event_batch": event_batch,
    "connection_response": connection_response,
    "ws_frame": ws_frame,
    "mqtt_packet": mqtt_packet,
    "tile": tile,
    "ws_stream": ws_stream,
    "diffusion_stream": diffusion_stream,
    "mqtt_stream": mqtt_stream,
    "packet": packet,
    "pcap": pcap,
    "merge": merge,
    "closes": closes,
    "chunk": chunk,
}
assert tuple(HARNESSES) == NAMES, "fuzz/__init__.py's NAMES and HARNESSES must match"
