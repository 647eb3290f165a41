"""The ``closecodec`` command.

    closecodec                          version, backend and the reason table
    closecodec reasons [--format jsonl] the cross-protocol close-reason table
    closecodec decode --as KIND HEX...  one JSON object per input line
    closecodec encode --as KIND JSON... one hex line per input
    closecodec capture [FILE|-]         one record per close in a packet capture
                                        (no FILE: the shipped sample capture)

``-`` in place of the inputs reads one input per line from standard input. A bad
input prints a JSON error object (``class``, ``message``, ``offset``) and the
command goes on; the exit status is 1 if any input failed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import signal
import socket
import stat
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, TextIO, Tuple

from . import BACKEND, __version__, _backend
from .capture.files import file_size, is_dir, is_url, list_dir
from .capture.live import STOP_SIGNALS, CaptureError, IdlePipe, LiveCapture, call_after, relay, start_aside
from .errors import DecodeError, EncodeError, MalformedError
from .jsonform import from_json, to_json_as
from .reasons import ReasonNumbering, reason_table

BACKEND_NAMES = {"c": "compiled (Cython)", "py": "pure Python"}


def _whole(decode: Callable[..., Any]) -> Callable[..., Any]:
    """A decoder of the whole input: bytes left after the value are malformed."""

    def decode_whole(data: bytes, **options: Any) -> Any:
        value, end = decode(data, 0, **options)
        if end != len(data):
            raise MalformedError(f"{len(data) - end} bytes after the end of the value", end)
        return value

    return decode_whole


def _with_reasons(decode: Callable[..., Any]) -> Callable[..., Any]:
    return lambda data, numbering, strict: decode(data, numbering=numbering, strict=strict)


def _plain(decode: Callable[..., Any]) -> Callable[..., Any]:
    return lambda data, numbering, strict: decode(data)


# kind -> (decode(data, numbering, strict), encode(value, numbering))
KINDS: Dict[str, Any] = {
    "message": (
        _with_reasons(_backend.decode_message),
        lambda value, numbering: _backend.encode_message(value, numbering=numbering),
    ),
    "event-batch": (
        _with_reasons(_whole(_backend.decode_event_batch)),
        lambda value, numbering: _backend.encode_event_batch(value, numbering=numbering),
    ),
    "event-core": (
        _with_reasons(_whole(_backend.decode_event)),
        lambda value, numbering: _backend.encode_event(value, numbering=numbering),
    ),
    "close-client-request": (
        _plain(_whole(_backend.decode_close_client_request)),
        lambda value, numbering: _backend.encode_close_client_request(value),
    ),
    "connection-response": (
        lambda data, numbering, strict: _whole(_backend.decode_connection_response)(data, strict=strict),
        lambda value, numbering: _backend.encode_connection_response(value),
    ),
    "ws-frame": (_plain(_whole(_backend.decode_ws_frame)), lambda value, numbering: _backend.encode_ws_frame(value)),
    "mqtt-packet": (
        lambda data, numbering, strict: _whole(_backend.decode_mqtt_packet)(data, strict=strict),
        lambda value, numbering: _backend.encode_mqtt_packet(value),
    ),
    "session-id": (_plain(_whole(_backend.decode_session_id)), lambda value, numbering: _backend.encode_session_id(value)),
    "int32": (_plain(_whole(_backend.decode_int32)), lambda value, numbering: _backend.encode_int32(value)),
    "int64": (_plain(_whole(_backend.decode_int64)), lambda value, numbering: _backend.encode_int64(value)),
    "byte": (_plain(_whole(_backend.decode_byte)), lambda value, numbering: _backend.encode_byte(value)),
    "string": (_plain(_whole(_backend.decode_string)), lambda value, numbering: _backend.encode_string(value)),
}


def version_line() -> str:
    """The version, the backend, and the module each room's byte loops come from."""
    modules = ", ".join(f"{room} {name.rpartition('.')[2]}" for room, name in _backend.MODULES.items())
    return f"closecodec {__version__} (backend {BACKEND}: {BACKEND_NAMES[BACKEND]}; {modules})"


# The code a peer answers a bad frame with, in the error objects of these kinds.
_ANSWER_CODES = {"ws-frame": "close_code", "mqtt-packet": "reason_code"}


def _error(error: Exception, kind: Optional[str] = None) -> Dict[str, Any]:
    message = error.args[0] if isinstance(error, DecodeError) else str(error)
    out = {"class": type(error).__name__, "message": message, "offset": getattr(error, "offset", None)}
    answer = _ANSWER_CODES.get(kind or "")
    if answer is not None:  # None for an incomplete input: nothing to answer yet
        out[answer] = getattr(error, answer, None)
    return out


def _inputs(items: List[str], stdin: TextIO) -> Iterable[str]:
    if items == ["-"]:
        for line in stdin:
            if line.strip():
                yield line.strip()
    else:
        yield from items


def _hex_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", "").replace(" ", ""))


def run_decode(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    decode = KINDS[args.kind][0]
    numbering = ReasonNumbering(args.numbering)
    status = 0
    for item in _inputs(args.inputs, stdin):
        try:
            result = to_json_as(args.kind, decode(_hex_bytes(item), numbering, args.strict))
        except (DecodeError, ValueError) as error:
            result, status = _error(error, args.kind), 1
        print(json.dumps(result, ensure_ascii=False), file=out)
    return status


def run_encode(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    encode = KINDS[args.kind][1]
    numbering = ReasonNumbering(args.numbering)
    status = 0
    for item in _inputs(args.inputs, stdin):
        try:
            print(encode(from_json(args.kind, json.loads(item)), numbering).hex(), file=out)
        except (EncodeError, ValueError, KeyError, TypeError) as error:
            print(json.dumps(_error(error), ensure_ascii=False), file=out)
            status = 1
    return status


def print_reasons(out: TextIO, as_jsonl: bool = False) -> None:
    rows = reason_table()
    if as_jsonl:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False), file=out)
        return
    print(f"{'wire':>4} {'pub':>4}  {'ClientCloseReason':<28} {'rec':<3}  {'WebSocket':<24} MQTT 5", file=out)
    for row in rows:
        published = "-" if row["published"] is None else row["published"]
        websocket = f"{row['websocket_code']} {row['websocket_name']}"
        print(
            f"{row['wire']:>4} {published:>4}  {row['name']:<28} {'yes' if row['recoverable'] else 'no':<3}  "
            f"{websocket:<24} {row['mqtt_code_hex']} {row['mqtt_name']}",
            file=out,
        )


# -- closecodec capture ------------------------------------------------------------------

#: The sample capture shipped in the package (docs/capture.md, "The sample").
SAMPLE_CAPTURE = "diffusion-js-client-handshake-abort.pcap"
#: Files at least this large get a progress bar (when standard error is a terminal).
PROGRESS_MIN_SIZE = 32 * 1024 * 1024
_PROTOCOLS = ("websocket", "mqtt", "diffusion", "tcp")
_SHORT = {"websocket": "ws", "mqtt": "mqtt", "diffusion": "diff", "tcp": "tcp"}
_CSV_FIELDS = ("file", "frame", "time", "time_ns", "stream", "src", "dst", "direction", "protocol", "kind", "code",
               "name", "reason", "session_id", "close_reason", "client_id", "mqtt_version", "properties",
               "application", "detection", "data_lost")


def sample_capture() -> Any:
    """The shipped sample capture, as an importlib.resources Traversable."""
    from importlib.resources import files

    return files("closecodec").joinpath("data", SAMPLE_CAPTURE)


def _endpoint_filter(text: str) -> Callable[[str], bool]:
    """A test of ``ip:port`` texts against ``HOST``, ``HOST:PORT``, ``[V6]`` or ``[V6]:PORT``."""
    text = text.strip()
    port: Optional[str] = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host = text
    host = host.lower()

    def match(endpoint: str) -> bool:
        address, _, endpoint_port = endpoint.rpartition(":")
        address = address.strip("[]").lower()
        return (not host or address == host) and (port is None or endpoint_port == port)

    return match


def _reason_filter(text: str) -> Callable[[Any], bool]:
    """A test of records against a reason: a name (any case), a code (decimal or 0x hex), or reason text."""
    wanted = text.strip()
    code: Optional[int] = None
    try:
        code = int(wanted, 0)
    except ValueError:
        pass
    lowered = wanted.lower()

    def match(record: Any) -> bool:
        if code is not None:
            return record.code == code
        name = (record.name or "").lower()
        return name == lowered or lowered in (record.reason or "").lower() \
            or lowered == (record.close_reason or "").lower()

    return match


def _code_text(record: Any) -> str:
    if record.code is None:
        return "-"
    if record.protocol == "mqtt":
        return f"0x{record.code:02X}"
    return str(record.code)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "\u2026"


def _is_regular_file(file: Any) -> bool:
    """Whether ``file`` is a regular file (not a pipe, a socket or a terminal)."""
    try:
        return stat.S_ISREG(os.fstat(file.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):  # no descriptor: an object in memory
        return True


class _Table:
    """The table format: 100 columns. The address columns are as wide as the first 256 records need
    (at most 21, the longest ``IPv4:port``); longer addresses, and the reason text in the last column, are
    clipped with an ellipsis. The names in the last column (the code's, the client's close reason, the
    data-lost mark) are never clipped: they are the answer (a row is longer than 100 columns rather).
    For a capture set, a first column names each record's file (its name, without the directory; at
    most 24 columns, clipped at the front, where rotated files differ). Live, each record is printed as it
    comes, with the widest columns."""

    WIDTH = 100
    LOOKAHEAD = 256

    def __init__(self, out: TextIO, files: bool = False, live: bool = False) -> None:
        self.out = out
        self.waiting: Optional[List[Any]] = []
        self.src = self.dst = 0
        self.files = files
        self.file = 0  # the file column's width, when there is one
        self.live = live  # records as they come: the widest columns, no look ahead

    def add(self, record: Any) -> None:
        if self.waiting is None:
            print(self.row(record), file=self.out)
            return
        self.waiting.append(record)
        if self.live or len(self.waiting) >= self.LOOKAHEAD:
            self.flush()

    def flush(self) -> None:
        if self.waiting is None:
            return
        waiting, self.waiting = self.waiting, None
        self.src = 21 if self.live else min(21, max([len(r.src) for r in waiting] + [6]))
        self.dst = 21 if self.live else min(21, max([len(r.dst) for r in waiting] + [11]))
        if self.files:
            self.file = 24 if self.live else min(24, max([len(_file_name(r.file)) for r in waiting] + [4]))
        head = f"{'file':<{self.file}} " if self.files else ""
        print(f"{head}{'frame':>6} {'time (UTC)':<12} {'source':<{self.src}} {'destination':<{self.dst}} "
              f"{'proto':<5} {'code':>5} name / reason", file=self.out)
        for record in waiting:
            print(self.row(record), file=self.out)

    def row(self, record: Any) -> str:
        stamp = datetime.fromtimestamp(record.timestamp_ns // 10**9, timezone.utc).strftime("%H:%M:%S")
        stamp += f".{record.timestamp_ns // 10**6 % 1000:03d}"
        detail = record.name or ""
        if record.close_reason:
            detail += f" ({record.close_reason})"
        if record.data_lost:
            detail += " [data lost]"
        rest = self.WIDTH - (6 + 1 + 12 + 1 + self.src + 1 + self.dst + 1 + 5 + 1 + 5 + 1)
        head = ""
        if self.files:
            name = _file_name(record.file)
            if len(name) > self.file:
                name = "\u2026" + name[len(name) - self.file + 1:]
            head = f"{name:<{self.file}} "
            rest -= self.file + 1
        if record.reason:
            room = rest - len(detail) - 1
            if room > 0:
                detail += " " + _clip(repr(record.reason), room)
        return (f"{head}{record.frame:>6} {stamp:<12} {_clip(record.src, self.src):<{self.src}} "
                f"{_clip(record.dst, self.dst):<{self.dst}} {_SHORT[record.protocol]:<5} {_code_text(record):>5} "
                f"{detail}".rstrip())


def _file_name(path: Optional[str]) -> str:
    return "-" if path is None else os.path.basename(path)


def _csv_row(record: Any) -> List[Any]:
    row = record.to_dict()
    row["properties"] = "" if row["properties"] is None else json.dumps(row["properties"], ensure_ascii=False)
    return ["" if row[name] is None else row[name] for name in _CSV_FIELDS]


def _print_summary(counts: "Counter[Tuple[str, Any, Any]]", detections: "Counter[str]", form: str,
                   out: TextIO) -> None:
    groups = sorted(counts.items(), key=lambda item: (item[0][0], -item[1], str(item[0][2])))
    if form == "jsonl":
        for (protocol, code, name), count in groups:
            print(json.dumps({"protocol": protocol, "code": code, "name": name, "count": count}), file=out)
        return
    if form == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["protocol", "code", "name", "count"])
        for (protocol, code, name), count in groups:
            writer.writerow([protocol, "" if code is None else code, name or "", count])
        return
    by_protocol: Counter = Counter()
    for (protocol, _, _), count in groups:
        by_protocol[protocol] += count
    print(f"{'protocol':<10} {'closes':>7}", file=out)
    for protocol, count in sorted(by_protocol.items()):
        print(f"{protocol:<10} {count:>7}", file=out)
    print(f"{'total':<10} {sum(by_protocol.values()):>7}", file=out)
    print(file=out)
    print(f"{'protocol':<10} {'code':>6}  {'name':<40} {'count':>7}", file=out)
    for (protocol, code, name), count in groups:
        code_text = "-" if code is None else (f"0x{code:02X}" if protocol == "mqtt" else str(code))
        print(f"{protocol:<10} {code_text:>6}  {_clip(name or '-', 40):<40} {count:>7}", file=out)
    if detections:
        # How the connections of these closes were recognised (docs/capture.md).
        from .capture.records import DETECTIONS

        print(file=out)
        print(f"{'detection':<10} {'closes':>7}", file=out)
        for detection in DETECTIONS:
            if detections[detection]:
                print(f"{detection:<10} {detections[detection]:>7}", file=out)


class _LiveSummary:
    """``--summary`` of a live read on a terminal: the summary table, redrawn in place as closes come, at
    most four times a second (a timer draws what a burst left undrawn)."""

    INTERVAL = 0.25

    def __init__(self, out: TextIO, counts: "Counter[Tuple[str, Any, Any]]", detections: "Counter[str]") -> None:
        self.out, self.counts, self.detections = out, counts, detections
        self.lines = 0  # how many lines the table on the screen has
        self.last = 0.0
        self.lock = threading.Lock()
        self.timer: Optional[threading.Timer] = None
        self.ended = False

    def update(self) -> None:
        """A close was counted: draw now, or when the interval is up."""
        with self.lock:
            wait = self.last + self.INTERVAL - time.monotonic()
            if wait <= 0:
                self._draw()
            elif self.timer is None:
                self.timer = call_after(wait, self._drawn_late)

    def _drawn_late(self) -> None:
        with self.lock:
            self.timer = None
            if not self.ended:  # the timer fired while end() took the table off
                self._draw()

    def _draw(self) -> None:
        text = io.StringIO()
        _print_summary(self.counts, self.detections, "table", text)
        self._erase()
        self.out.write(text.getvalue())
        self.out.flush()
        self.lines = text.getvalue().count("\n")
        self.last = time.monotonic()

    def _erase(self) -> None:
        if self.lines:
            self.out.write(f"\033[{self.lines}F\033[J")  # up to the table's first line, and clear below

    def end(self) -> None:
        """Take the table off the screen (the final summary is printed in its place)."""
        with self.lock:
            self.ended = True
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            self._erase()
            self.lines = 0


def _plot(records: List[Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    series: Dict[str, List[datetime]] = {}
    for record in records:
        label = f"{record.protocol} {record.name}" if record.name else record.protocol
        series.setdefault(label, []).append(datetime.fromtimestamp(record.timestamp_ns / 1e9, timezone.utc))
    figure, axes = plt.subplots(figsize=(10, 5))
    ranked = sorted(series.items(), key=lambda item: -len(item[1]))
    shown, rest = ranked[:10], [t for _, times in ranked[10:] for t in times]
    if rest:
        shown.append(("other", sorted(rest)))
    # Ten distinct colours for the ten largest series; "other" dashed black.
    styles = [{"color": colour} for colour in plt.get_cmap("tab10").colors] + [{"color": "black", "linestyle": "--"}]
    for (label, times), style in zip(shown, styles):
        times = sorted(times)
        axes.step(times, range(1, len(times) + 1), where="post", label=f"{label} ({len(times)})", **style)
    locator = mdates.AutoDateLocator(tz=timezone.utc)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=timezone.utc))
    axes.set_xlabel("capture time (UTC)")
    axes.set_ylabel("closes so far")
    axes.set_title("Closes over time, by reason")
    if shown:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _total_size(paths: List[str]) -> int:
    """The bytes of the files ``paths`` name (a directory's files), for a progress bar; 0 where unknown."""
    total = 0
    for path in paths:
        try:
            total += sum(map(file_size, list_dir(path))) if is_dir(path) else file_size(path)
        except (OSError, ImportError):
            pass
    return total


class _Progress:
    """A one-line progress bar on a terminal: ``\\r`` updates, at most five a second."""

    def __init__(self, err: TextIO, name: str, size: int) -> None:
        self.err, self.name, self.size = err, name, size
        self.last = 0.0

    def __call__(self, position: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        share = min(100, position * 100 // max(1, self.size))
        bar = "#" * (share // 5)
        self.err.write(f"\r{self.name}: [{bar:<20}] {share:3d}% "
                       f"({position / 1e6:.0f} of {self.size / 1e6:.0f} MB)")
        self.err.flush()

    def done(self) -> None:
        self.err.write("\r\033[K")
        self.err.flush()


def run_capture(args: argparse.Namespace, out: TextIO, stdin: TextIO, err: TextIO) -> int:
    from .capture.parallel import PartitionError
    from .capture.records import CloseRecordReader, parse_decode_as
    from .errors import IncompleteError

    if args.sample and args.file:
        print(f"closecodec capture: --sample and a FILE ({args.file[0]}) exclude each other", file=err)
        return 2
    if "-" in args.file and len(args.file) > 1:
        print("closecodec capture: - (standard input) cannot be part of a capture set", file=err)
        return 2
    refusal = _live_refusal(args)
    if refusal is not None:
        print(f"closecodec capture: {refusal}", file=err)
        return 2
    try:
        decode_as = parse_decode_as(args.decode_as or [])
    except ValueError as error:
        print(f"closecodec capture: {error}", file=err)
        return 2
    limits = {option: getattr(args, option) for option in ("max_connections", "max_buffer_per_direction",
                                                          "max_buffer_total", "max_message_size")
              if getattr(args, option) is not None}
    if (args.format == "parquet") != (args.output is not None):
        print("closecodec capture: --format parquet writes to --output DIR, and --output is for it alone", file=err)
        return 2
    if args.format == "parquet" and args.summary:
        print("closecodec capture: --summary prints counts; it does not go with --format parquet", file=err)
        return 2
    dataset = None
    if args.format == "parquet":
        try:
            from .capture.arrow import ParquetDataset

            dataset = ParquetDataset(args.output)
        except ImportError as error:
            print(f"closecodec capture: {error}", file=err)
            return 2
        except OSError as error:
            print(f"closecodec capture: cannot write {args.output}: {error.strerror or error}", file=err)
            return 2
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("closecodec capture: --plot needs matplotlib; install it with: pip install 'closecodec[capture]'",
                  file=err)
            return 2
    name = args.file[0] if len(args.file) == 1 else f"{len(args.file)} paths"
    progress = None
    live = False  # reading as packets arrive (a pipe, a followed file): each record is written out promptly
    idle_pipe: Optional[IdlePipe] = None  # a pipe read live: the output is flushed when reading waits
    watched: Any = None  # a LiveCapture, or a following reader: stopped by Ctrl-C or -a, closed at the end
    stopping: Optional[_Stopping] = None
    opened: List[Any] = []  # closed when the command ends: the sample's file, a Dask client and cluster
    told: List[Tuple[str, str]] = []  # the problems said as they were found (following), not again at the end
    redrawn: Optional[_LiveSummary] = None  # the summary table drawn in place, which a message would break

    def told_at_once(path: str, why: str) -> None:
        if redrawn is None or not getattr(err, "isatty", lambda: False)():  # else after the table, at the end
            relay(err)(f"{path}: {why}")
            told.append((path, why))

    def release() -> Optional[CaptureError]:
        """Close what the command opened (files, a Dask cluster, the stop handlers, the capture tool); the
        capture tool's error, if it failed."""
        for thing in reversed(opened):
            thing.close()
        if stopping is None:
            return None
        stopping.end()
        try:
            watched.close()
        except CaptureError as error:
            return error
        return None

    try:
        if args.interface:
            name = f"the capture on {', '.join(args.interface)}"
            watched = LiveCapture(args.interface, args.capture_filter, args.count, messages=relay(err))
            stopping = _Stopping(watched, args.autostop)  # before the tool starts: Ctrl-C stops it from then on
            source = watched.start()
            live = True
        elif args.follow:
            source = name
            live = True
        elif args.sample or not args.file:
            name = SAMPLE_CAPTURE
            source: Any = sample_capture().open("rb")
            opened.append(source)
        elif name == "-":
            name = "<stdin>"
            source = getattr(stdin, "buffer", None) or sys.stdin.buffer
            live = not _is_regular_file(source)
        else:
            # One file is read as it is; several, or a directory, are a capture set.
            source = name if len(args.file) == 1 and not is_dir(name) else list(args.file)
            # A named pipe (mkfifo, or the shell's <(tcpdump ...)) is read live, as a pipe on standard input.
            live = isinstance(source, str) and not is_url(name) and os.path.exists(name) and not os.path.isfile(name)
            if getattr(err, "isatty", lambda: False)() and not live:
                size = _total_size(args.file)
                if size >= PROGRESS_MIN_SIZE:
                    progress = _Progress(err, os.path.basename(name), size)
        if live and (args.dask is not None or (args.jobs or 1) > 1):
            raise _Refused("a pipe is read in one process: --jobs and --dask are for files")
        if live and not args.follow:
            if isinstance(source, str):  # a named pipe
                source = open(source, "rb")
                opened.append(source)
            try:
                idle_pipe = source = IdlePipe(source, out.flush)
            except (OSError, ValueError):  # no descriptor (a capture stopped before it began), no poll()
                pass
        options = dict(decode_as=decode_as, heuristics=args.heuristics, mqtt_version=args.mqtt_version, **limits)
        if args.dask is not None or (args.jobs or 1) > 1:
            reader = _parallel_reader(source, args, options, opened)
        else:
            reader = CloseRecordReader(source, progress=progress, follow=args.follow,
                                       on_problem=told_at_once if args.follow else None, **options)
        if args.follow:
            watched = reader
            stopping = _Stopping(reader, args.autostop)
            if not is_dir(name):
                relay(err)(f"following {name} (Ctrl-C stops)")
            elif reader.files == [name]:  # a rotating capture that has not begun
                relay(err)(f"following {name}: no capture file in it yet; the first to appear is read (Ctrl-C stops)")
            else:
                relay(err)(f"following {name} from {os.path.basename(reader.files[0])} (Ctrl-C stops)")
    except BaseException as error:  # nothing is left open: files, a Dask cluster, the tool, the handlers
        release()  # a tool's failure here comes second: the error below says what went wrong first
        if not isinstance(error, (OSError, ImportError, _Refused, CaptureError)):  # ImportError: a URL, no fsspec
            raise
        if not isinstance(error, OSError):
            print(f"closecodec capture: {error}", file=err)
        else:
            print(f"closecodec capture: cannot read {name}: {error.strerror or error}", file=err)
        return 2

    tests: List[Callable[[Any], bool]] = []
    if args.protocol:
        protocols = set(args.protocol)
        tests.append(lambda record: record.protocol in protocols)
    if args.reason:
        reason_tests = [_reason_filter(text) for text in args.reason]
        tests.append(lambda record: any(test(record) for test in reason_tests))
    if args.endpoint:
        endpoint_tests = [_endpoint_filter(text) for text in args.endpoint]
        tests.append(lambda record: any(test(record.src) or test(record.dst) for test in endpoint_tests))

    form = args.format
    counts: Counter = Counter()
    detections: Counter = Counter()
    kept: List[Any] = []
    writer = csv.writer(out, lineterminator="\n") if form == "csv" else None
    table = _Table(out, files=len(reader.files) > 1, live=live)
    if not args.summary and writer is not None:
        writer.writerow(_CSV_FIELDS)
    status = 0
    broken: Optional[str] = None
    failure: Optional[CaptureError] = None  # the capture tool failed
    redrawn = (_LiveSummary(out, counts, detections) if live and args.summary and form == "table"
               and getattr(out, "isatty", lambda: False)() else None)
    try:
        for record in reader:
            if tests and not all(test(record) for test in tests):
                continue
            counts[(record.protocol, record.code, record.name)] += 1
            detections[record.detection] += 1
            if args.plot:
                kept.append(record)
            if args.summary:
                if redrawn is not None:
                    redrawn.update()
                continue
            if dataset is not None:
                dataset.add(record)
            elif form == "jsonl":
                print(json.dumps(record.to_dict(), ensure_ascii=False), file=out)
            elif writer is not None:
                writer.writerow(_csv_row(record))
            else:
                table.add(record)
            if live and idle_pipe is None:
                out.flush()  # each close as it is seen (from a pipe: when reading waits for more)
    except DecodeError as error:
        if reader.frames == 0:
            if progress is not None:
                progress.done()
            if dataset is not None:
                dataset.close()
            print(f"closecodec capture: {name} is not a capture file: {error}", file=err)
            return 2
        # Broken structure further on: show what came before it (the table and summary are
        # printed at the end), then say where it stopped.
        broken = (f"closecodec capture: {name}: stopped after frame {reader.frames}: {error}; "
                  f"the records above are what comes before")
    except BrokenPipeError:  # writing, not reading: main() ends the command quietly
        raise
    except PartitionError as error:
        if dataset is not None:
            dataset.close()
        print(f"closecodec capture: {error}; no records are reported as complete", file=err)
        return 2
    except OSError as error:
        if dataset is not None:
            dataset.close()
        print(f"closecodec capture: cannot read {name}: {error.strerror or error}", file=err)
        return 2
    except KeyboardInterrupt:
        if progress is not None:
            progress.done()  # the shell's prompt comes on a clean line
        if dataset is not None:
            dataset.close()  # what was found is kept, in a whole file; the status (130) says it stopped
        raise
    finally:
        if redrawn is not None:
            redrawn.end()
        failure = release()
    if progress is not None:
        progress.done()
    if failure is not None and reader.frames == 0:  # the tool could not capture: nothing was seen
        if dataset is not None:
            dataset.close()
        print(f"closecodec capture: {failure}", file=err)
        return 2
    if dataset is not None:
        try:
            rows = dataset.close()
        except OSError as error:
            print(f"closecodec capture: cannot write {args.output}: {error.strerror or error}", file=err)
            return 2
        print(f"closecodec capture: wrote {rows} records to {args.output}", file=err)
    elif args.summary:
        _print_summary(counts, detections, form, out)
    elif form == "table":
        table.flush()
        if not counts:
            print("(no closes found)", file=out)
    problems = sum(reader.stats[key] for key in ("websocket_errors", "mqtt_errors", "diffusion_errors"))
    if problems:
        frame, stream, message = reader.errors[0]
        print(f"closecodec capture: {problems} stretch(es) of stream data did not decode and were skipped; "
              f"the first at frame {frame} (tcp.stream {stream}): {message}", file=err)
    for path, why in reader.problems[len(told):]:  # the files of a set left out or cut short
        print(f"closecodec capture: {path}: {why}", file=err)
    if reader.problems:
        # Some of the set was read (or a followed directory stayed empty: files names it), or none of it.
        status = 1 if reader.files else 2
    if failure is not None:
        print(f"closecodec capture: {failure}", file=err)
        status = 2
    elif broken is not None:
        print(broken, file=err)
        status = 2
    elif reader.error is not None and not (stopping is not None and stopping.stopped):
        # (A live capture stopped here may end inside a packet the tool was writing: that is its end.)
        truncated: IncompleteError = reader.error
        if reader.frames == 0:
            print(f"closecodec capture: {name} is empty or cut inside its file header, before any packet "
                  f"({truncated})", file=err)
        else:
            print(f"closecodec capture: {name} is truncated: it stops inside the record at byte {truncated.offset} "
                  f"(after frame {reader.frames}); the records above are what comes before", file=err)
        status = 1
    if args.plot:
        try:
            _plot(kept, args.plot)
        except OSError as error:
            print(f"closecodec capture: cannot write {args.plot}: {error.strerror or error}", file=err)
            return 2
        print(f"closecodec capture: wrote {args.plot} ({sum(counts.values())} closes)", file=err)
    return status


class _Refused(Exception):
    """A capture command that cannot run as asked (its message says why)."""


def _live_refusal(args: argparse.Namespace) -> Optional[str]:
    """Why the live options cannot go together as given, or None."""
    if (args.interface or args.follow) and (args.jobs not in (None, 1) or args.dask is not None):
        return "a live capture or a followed file is read in one process: --jobs and --dask are for files"
    if args.interface:
        if args.file or args.sample:
            return "-i captures live; it does not go with FILE or --sample"
        if args.follow:
            return "-i captures live; --follow is for a FILE being written"
        return None
    if args.capture_filter is not None or args.count is not None:
        return "-f and -c are for a live capture (-i)"
    if args.follow:
        if len(args.file) != 1 or args.file[0] == "-" or is_url(args.file[0]):
            return "--follow follows one capture file, or a directory of rotating files, on this machine (not - or a URL)"
    elif args.autostop is not None:
        return "-a is for a live capture (-i) or a followed file (--follow)"
    return None


class _Stopping:
    """While a live capture or a followed file is read: the first Ctrl-C (or SIGTERM, SIGHUP), or ``-a
    duration:S``, stops it (what it has is read to the end, then the summary comes); a second Ctrl-C
    interrupts.

    A thread does the stop, woken by the signal's C handler through Python's wakeup fd: the Python handler
    runs only when the main thread next runs Python, and a main thread that entered a read of a quiet pipe
    just after the signal came would wait in it for ever (one run in twenty, in a test)."""

    def __init__(self, watched: Any, seconds: Optional[float]) -> None:
        self.watched = watched
        self.stopped = False  # by -a, or by a stop signal's handler: a Ctrl-C then interrupts
        self.timer: Optional[threading.Timer] = None
        self.previous: Dict[int, Any] = {}
        self._woken, self._waker = socket.socketpair()
        self._previous_wakeup: Optional[int] = None  # once the wakeup fd is set: the one before
        reader: Optional[threading.Thread] = None
        try:
            self._waker.setblocking(False)
            self._previous_wakeup = signal.set_wakeup_fd(self._waker.fileno(), warn_on_full_buffer=False)
            reader = threading.Thread(target=self._stop_at_signal, name="closecodec-stop", daemon=True)
            start_aside(reader)
            self.timer = call_after(seconds, self.stop) if seconds is not None else None
            for signum in STOP_SIGNALS:
                self.previous[signum] = signal.signal(signum, self.interrupted)
        except BaseException:  # a Ctrl-C before the handlers are in, say: nothing is left set
            self.end()
            if reader is None:
                self._woken.close()  # else the thread closes it
            raise

    def stop(self) -> None:
        self.stopped = True
        self.watched.stop()

    def _stop_at_signal(self) -> None:
        """(A thread) stop the watched source at the first stop signal; read the wakeup fd until :meth:`end`
        closes it (closed early, the signals after the first would make the C handler report a broken
        pipe)."""
        asked = False
        with self._woken:
            while True:
                signums = self._woken.recv(64)
                if not signums:
                    return
                if not asked and any(signum in STOP_SIGNALS for signum in signums):
                    asked = True
                    self.watched.stop()

    def interrupted(self, signum: int, frame: Any) -> None:
        if self.stopped:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.stopped = True  # the stop itself is the thread's: this handler may come late, or hold a lock it needs

    def end(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        if self._previous_wakeup is not None:
            signal.set_wakeup_fd(self._previous_wakeup)
        self._waker.close()  # the thread's read ends


def _parallel_reader(source: Any, args: argparse.Namespace, options: Dict[str, Any], opened: List[Any]) -> Any:
    """A ParallelCloseRecordReader for --jobs and --dask: a process pool, or a Dask cluster's client (added to
    ``opened``, to be closed when the command ends)."""
    from .capture.parallel import ParallelCloseRecordReader, default_jobs

    if not isinstance(source, (str, list)):
        raise _Refused("--jobs and --dask read files: not standard input or the sample")
    client = None
    if args.dask is not None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise _Refused("--dask needs Dask's distributed scheduler; install it with: "
                           "pip install 'closecodec[dask]'") from None
        if args.dask == "local":
            cluster = LocalCluster(n_workers=args.jobs or default_jobs(), threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            opened.append(cluster)
            client = Client(cluster)
        else:
            try:
                client = Client(args.dask)
            except (OSError, ValueError) as error:  # refused, timed out, or not an address
                raise _Refused(f"cannot reach the Dask scheduler at {args.dask}: {error}") from None
        opened.append(client)
    return ParallelCloseRecordReader(source, jobs=args.jobs, client=client, **options)


def _add_capture_parser(commands: Any) -> None:
    capture = commands.add_parser(
        "capture",
        help="one record per close in a pcap or pcapng capture",
        description="Decode every close in a packet capture: WebSocket closes, MQTT DISCONNECTs and refused "
                    "CONNACKs, Diffusion handshake rejections, aborts, close requests and session-close events, "
                    "and connections that end with FIN or RST without one. Without FILE, the shipped sample.",
    )
    capture.add_argument("file", nargs="*", metavar="FILE",
                         help="a pcap or pcapng file, - for standard input, or several files and directories (their "
                              "capture files): a capture set, read as one capture; URLs (s3://...) through fsspec")
    capture.add_argument("--sample", action="store_true", help="decode the sample capture shipped with closecodec")
    capture.add_argument("--format", choices=["table", "jsonl", "csv", "parquet"], default="table",
                         help="parquet: a Parquet dataset in the directory --output names (needs pyarrow)")
    capture.add_argument("--output", metavar="DIR", help="with --format parquet: the dataset's directory (new or empty)")
    capture.add_argument("--summary", action="store_true", help="counts by protocol and reason instead of records")
    capture.add_argument("--protocol", action="append", choices=_PROTOCOLS, help="only this protocol (repeatable)")
    capture.add_argument("--reason", action="append", metavar="R",
                         help="only closes with this name, code (e.g. 1000, 0x8E) or reason text (repeatable)")
    capture.add_argument("--endpoint", action="append", metavar="HOST[:PORT]",
                         help="only closes to or from this endpoint; IPv6 as [addr]:port (repeatable)")
    capture.add_argument("--decode-as", action="append", metavar="PORT=KIND",
                         help="decode TCP port PORT as websocket, mqtt or diffusion (Diffusion in WebSocket) "
                              "when the capture lacks the handshake (repeatable); wins over everything but a "
                              "handshake")
    capture.add_argument("--no-heuristics", dest="heuristics", action="store_false",
                         help="do not recognise connections from their bytes when the capture lacks their start "
                              "(docs/capture.md)")
    capture.add_argument("--mqtt-version", type=int, choices=(3, 4, 5), metavar="{3,4,5}",
                         help="the MQTT version of connections whose CONNECT is not in the capture, when their "
                              "packets do not show it (as Wireshark's mqtt.default_version)")
    capture.add_argument("--plot", metavar="FILE.png", help="draw closes over time by reason (needs matplotlib)")
    capture.add_argument("--jobs", type=_count, metavar="N",
                         help="read in N processes, each decoding a share of the connections; the records are "
                              "those of one process (default 1; docs/scale.md has what it gains)")
    capture.add_argument("--dask", metavar="ADDRESS",
                         help="run the processes as tasks of the Dask scheduler at ADDRESS (the files at the same "
                              "paths on its workers), or of a LocalCluster on this machine for 'local'; "
                              "needs closecodec[dask]")
    live = capture.add_argument_group("live", "closes as they happen (docs/live.md)")
    live.add_argument("-i", "--interface", action="append", metavar="IFACE",
                      help="capture on this interface with tcpdump or dumpcap (repeatable, with dumpcap)")
    live.add_argument("-f", "--capture-filter", metavar="FILTER",
                      help="with -i: a capture filter, as tcpdump takes it ('tcp port 8080')")
    live.add_argument("-c", "--count", type=_count, metavar="N", help="with -i: stop after N packets")
    live.add_argument("-a", "--autostop", type=_duration, metavar="duration:S",
                      help="with -i or --follow: stop after S seconds")
    live.add_argument("--follow", action="store_true",
                      help="keep reading FILE as it grows (tcpdump -U -w FILE), or a directory's rotating files as "
                           "they come (from the newest), until Ctrl-C or -a")
    limits = capture.add_argument_group(
        "limits", "bounds on memory for hostile or huge captures (SIZE: bytes, or a number with K, M or G for "
                  "KiB, MiB, GiB; docs/robustness.md)")
    for option, (metavar, help_text) in _capture_limits().items():
        limits.add_argument("--" + option.replace("_", "-"), dest=option, metavar=metavar,
                            type=_count if metavar == "N" else _size, help=help_text)


def _capture_limits() -> Dict[str, Tuple[str, str]]:
    """The CloseRecordReader limits the capture command can set: option -> (metavar, help)."""
    from .capture.records import (DEFAULT_MAX_BUFFER_PER_DIRECTION, DEFAULT_MAX_BUFFER_TOTAL,
                                  DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE_SIZE)

    def size(value: int) -> str:
        return next(f"{value >> shift}{unit}" for shift, unit in ((30, "G"), (20, "M"), (10, "K"), (0, ""))
                    if value % (1 << shift) == 0)

    return {
        "max_connections": ("N", "TCP connections tracked at once; the least recently active is evicted "
                                 f"(default {DEFAULT_MAX_CONNECTIONS})"),
        "max_buffer_per_direction": ("SIZE", "out-of-order bytes held per direction before its first hole is "
                                             f"skipped as a gap (default {size(DEFAULT_MAX_BUFFER_PER_DIRECTION)})"),
        "max_buffer_total": ("SIZE", f"out-of-order bytes held in all (default {size(DEFAULT_MAX_BUFFER_TOTAL)})"),
        "max_message_size": ("SIZE", "largest WebSocket message or MQTT packet reassembled "
                                     f"(default {size(DEFAULT_MAX_MESSAGE_SIZE)})"),
    }


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _size(text: str) -> int:
    """An argparse type: "4096", "64K", "16M", "1G" (powers of 1024), at least 1."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE | re.ASCII)
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size of at least 1 (e.g. 4096, 64K, 16M)")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]


def _count(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not re.fullmatch(r"\s*\d+\s*", text, re.ASCII) or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _duration(text: str) -> float:
    """An argparse type: ``duration:S``, seconds (as tshark's -a takes it)."""
    match = re.fullmatch(r"duration:(\d+(?:\.\d+)?)", text.strip(), re.ASCII)
    if match is None or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not duration:S, a number of seconds above 0")
    return float(match.group(1))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="closecodec",
        description="Decode and encode the frames that say why a connection or session closed.",
    )
    parser.add_argument("--version", action="version", version=version_line())
    commands = parser.add_subparsers(dest="command")
    reasons = commands.add_parser("reasons", help="print the cross-protocol close-reason table")
    reasons.add_argument("--format", choices=["table", "jsonl"], default="table")
    for name, help_text, metavar in (
        ("decode", "decode hex inputs to JSON lines", "HEX"),
        ("encode", "encode JSON inputs to hex lines", "JSON"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--as", dest="kind", required=True, choices=sorted(KINDS), help="what the inputs are")
        command.add_argument(
            "--numbering",
            choices=[n.value for n in ReasonNumbering],
            default=ReasonNumbering.WIRE.value,
            help="close-reason numbering: the wire's (default) or the published API page's",
        )
        if name == "decode":
            command.add_argument("--strict", action="store_true", help="unknown close reasons are errors")
        command.add_argument("inputs", nargs="+", metavar=metavar, help="inputs, or - to read one per line from stdin")
    _add_capture_parser(commands)
    return parser


#: Exit statuses as a shell reports a command that SIGPIPE or SIGINT (Ctrl-C) ended.
EXIT_BROKEN_PIPE = 128 + 13
EXIT_INTERRUPTED = 128 + 2


def main(argv: Optional[List[str]] = None, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin,
         err: Optional[TextIO] = None) -> int:
    """Run the command line; return the exit status.

    As Unix tools do, output into a closed pipe (``closecodec capture FILE | head``) ends the
    command quietly with status 141, and Ctrl-C with status 130, without a traceback.
    """
    try:
        return _run(argv, out, stdin, err)
    except BrokenPipeError:
        if out is sys.stdout:
            # Python flushes stdout once more at exit: into a closed pipe, that would complain.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _run(argv: Optional[List[str]], out: TextIO, stdin: TextIO, err: Optional[TextIO]) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "capture":
        return run_capture(args, out, stdin, sys.stderr if err is None else err)
    if args.command == "decode":
        return run_decode(args, out, stdin)
    if args.command == "encode":
        return run_encode(args, out, stdin)
    if args.command == "reasons":
        print_reasons(out, args.format == "jsonl")
        return 0
    print(version_line(), file=out)
    print(file=out)
    print_reasons(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
