"""Packet captures: files, packets, TCP reassembly, recognition and close records (docs/capture.md).

The capture room, from the bottom up:

- ``_c.pyx`` / ``_py.py``: the byte loops, a compiled module and its pure twin
  (pcap and pcapng records, link/IP/TCP headers, the per-packet segment loop).
- ``values.py``: :class:`Packet` and :class:`TcpSegment`.
- ``reassembly.py``: :func:`open_capture`, :class:`TcpReassembler` and
  :class:`TcpStreamReader`, in order and bounded.
- ``records.py``: recognising each connection's protocol and reading its close
  records (``closecodec capture``).

This package's namespace is the reassembly layer's public API, as
``closecodec.capture`` has always offered it. Its names are looked up when first
used: the compiled backends import ``capture.values`` while the package itself is
still being imported, before the reassembly layer above them can be.
"""

from importlib import import_module
from typing import Any, List

__all__ = [
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
    "open_capture",
    "parse_packet",
    "partition_of",
]


def __getattr__(name: str) -> Any:
    # import_module, not "from . import": that looks the submodule up here first, and would recurse.
    if name in ("Packet", "TcpSegment", "partition_of"):
        return getattr(import_module(".values", __name__), name)
    if name == "BACKEND":
        return import_module(".._backend", __name__).BACKEND
    if not name.startswith("_") and name not in ("reassembly", "records", "values"):
        reassembly = import_module(".reassembly", __name__)
        if hasattr(reassembly, name):
            return getattr(reassembly, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
