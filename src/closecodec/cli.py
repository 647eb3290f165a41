"""The ``closecodec`` command.

    closecodec                          version, backend and the reason table
    closecodec reasons [--format jsonl] the cross-protocol close-reason table
    closecodec decode --as KIND HEX...  one JSON object per input line
    closecodec encode --as KIND JSON... one hex line per input

``-`` in place of the inputs reads one input per line from standard input. A bad
input prints a JSON error object (``class``, ``message``, ``offset``) and the
command goes on; the exit status is 1 if any input failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, TextIO

from . import BACKEND, __version__, _codec
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
        _with_reasons(_codec.decode_message),
        lambda value, numbering: _codec.encode_message(value, numbering=numbering),
    ),
    "event-batch": (
        _with_reasons(_whole(_codec.decode_event_batch)),
        lambda value, numbering: _codec.encode_event_batch(value, numbering=numbering),
    ),
    "event-core": (
        _with_reasons(_whole(_codec.decode_event)),
        lambda value, numbering: _codec.encode_event(value, numbering=numbering),
    ),
    "close-client-request": (
        _plain(_whole(_codec.decode_close_client_request)),
        lambda value, numbering: _codec.encode_close_client_request(value),
    ),
    "connection-response": (
        lambda data, numbering, strict: _whole(_codec.decode_connection_response)(data, strict=strict),
        lambda value, numbering: _codec.encode_connection_response(value),
    ),
    "ws-frame": (_plain(_whole(_codec.decode_ws_frame)), lambda value, numbering: _codec.encode_ws_frame(value)),
    "mqtt-packet": (
        lambda data, numbering, strict: _whole(_codec.decode_mqtt_packet)(data, strict=strict),
        lambda value, numbering: _codec.encode_mqtt_packet(value),
    ),
    "session-id": (_plain(_whole(_codec.decode_session_id)), lambda value, numbering: _codec.encode_session_id(value)),
    "int32": (_plain(_whole(_codec.decode_int32)), lambda value, numbering: _codec.encode_int32(value)),
    "int64": (_plain(_whole(_codec.decode_int64)), lambda value, numbering: _codec.encode_int64(value)),
    "byte": (_plain(_whole(_codec.decode_byte)), lambda value, numbering: _codec.encode_byte(value)),
    "string": (_plain(_whole(_codec.decode_string)), lambda value, numbering: _codec.encode_string(value)),
}


def version_line() -> str:
    return f"closecodec {__version__} (backend {BACKEND}: {BACKEND_NAMES[BACKEND]})"


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
    return parser


def main(argv: Optional[List[str]] = None, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
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
