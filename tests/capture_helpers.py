"""Builders of synthetic captures and packets, and the capture backend fixtures, for tests/test_capture_*.py."""

from __future__ import annotations

import importlib
import struct
from pathlib import Path
from types import ModuleType
from typing import Iterable, Optional, Sequence, Tuple

import pytest

DATA = Path(__file__).parent / "data"


def _load(name: str):
    try:
        return importlib.import_module(f"closecodec.{name}"), None
    except ImportError as error:
        return None, f"{name} is not importable: {error}"


CAPTURES = {"c": _load("_capture_c"), "py": _load("_capture_py")}


def _or_skip(name: str) -> ModuleType:
    module, reason = CAPTURES[name]
    if module is None:
        pytest.skip(reason or "backend missing")
    return module


@pytest.fixture(params=["c", "py"], scope="session")
def capture(request: pytest.FixtureRequest) -> ModuleType:
    """Each capture backend in turn; ``c`` skips, with the import error, where it is not built."""
    return _or_skip(request.param)


@pytest.fixture(scope="session")
def capture_both() -> Tuple[ModuleType, ModuleType]:
    """The compiled and the pure capture backend together, for differential tests."""
    return _or_skip("c"), _or_skip("py")


# -- files -------------------------------------------------------------------------

PCAP_MAGIC = {(False, False): 0xA1B2C3D4, (False, True): 0xA1B23C4D}


def pcap_file(records: Iterable[Tuple[int, bytes, Optional[int]]], *, big: bool = False, nano: bool = False,
              link: int = 1, snaplen: int = 262144) -> bytes:
    """A classic pcap file; records are (timestamp_ns, data, original_length or None)."""
    order = ">" if big else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link)]
    for ts, data, origlen in records:
        seconds, ns = divmod(ts, 10**9)
        out.append(struct.pack(order + "IIII", seconds, ns if nano else ns // 1000, len(data),
                               len(data) if origlen is None else origlen))
        out.append(data)
    return b"".join(out)


def block(block_type: int, body: bytes, big: bool = False) -> bytes:
    order = ">" if big else "<"
    body += b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def option(code: int, value: bytes, big: bool = False) -> bytes:
    order = ">" if big else "<"
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb(big: bool = False, options: bytes = b"", version: Tuple[int, int] = (1, 0)) -> bytes:
    order = ">" if big else "<"
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, version[0], version[1], -1) + options, big)


def idb(link: int, snaplen: int = 0, tsresol: Optional[int] = None, tsoffset: Optional[int] = None,
        big: bool = False) -> bytes:
    order = ">" if big else "<"
    options = option(2, b"eth0", big)
    if tsresol is not None:
        options += option(9, bytes([tsresol]), big)
    if tsoffset is not None:
        options += option(14, struct.pack(order + "q", tsoffset), big)
    options += option(0, b"", big)
    return block(1, struct.pack(order + "HHI", link, 0, snaplen) + options, big)


def epb(interface: int, ticks: int, data: bytes, origlen: Optional[int] = None, big: bool = False) -> bytes:
    order = ">" if big else "<"
    return block(6, struct.pack(order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                                len(data) if origlen is None else origlen) + data, big)


def spb(data: bytes, origlen: Optional[int] = None, big: bool = False) -> bytes:
    order = ">" if big else "<"
    return block(3, struct.pack(order + "I", len(data) if origlen is None else origlen) + data, big)


def pb(interface: int, ticks: int, data: bytes, big: bool = False) -> bytes:
    order = ">" if big else "<"
    return block(2, struct.pack(order + "HHIIII", interface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                                len(data)) + data, big)


# -- packets -------------------------------------------------------------------------

A4, B4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
A6, B6 = bytes(range(16)), bytes(range(16, 32))
SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08


def tcp(sport: int, dport: int, seq: int, ack: int = 0, flags: int = ACK, payload: bytes = b"",
        options: bytes = b"") -> bytes:
    options += b"\x01" * (-len(options) % 4)  # NOP padding
    offset = (20 + len(options)) // 4
    return struct.pack(">HHIIBBHHH", sport, dport, seq % 2**32, ack, offset << 4 | flags >> 8, flags & 0xFF,
                       65535, 0, 0) + options + payload


def ipv4(payload: bytes, src: bytes = A4, dst: bytes = B4, protocol: int = 6, options: bytes = b"",
         total: Optional[int] = None, fragment: int = 0) -> bytes:
    options += b"\0" * (-len(options) % 4)
    ihl = (20 + len(options)) // 4
    length = 20 + len(options) + len(payload) if total is None else total
    return struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, length, 1, fragment, 64, protocol, 0, src, dst) \
        + options + payload


def ipv6(payload: bytes, src: bytes = A6, dst: bytes = B6, next_header: int = 6,
         extensions: Sequence[Tuple[int, bytes]] = ()) -> bytes:
    """IPv6 with extension headers given as (type, header bytes after the type byte)."""
    chain = b""
    types = [t for t, _ in extensions] + [next_header]
    for i, (_, body) in enumerate(extensions):
        chain += bytes([types[i + 1]]) + body
    first = types[0]
    return struct.pack(">IHBB16s16s", 0x60000000, len(chain) + len(payload), first, 64, src, dst) + chain + payload


def ext_generic(units: int = 0) -> bytes:
    """A hop-by-hop / routing / destination options body: length byte then padding (8 * (units + 1) - 1 bytes)."""
    return bytes([units]) + b"\0" * (8 * (units + 1) - 2)


def ext_ah(words: int = 4) -> bytes:
    """An AH body: payload length (4-octet units - 2), then the rest ((words) * 4 - 1 bytes)."""
    return bytes([words - 2]) + b"\0" * (words * 4 - 2)


def ext_fragment(offset: int = 0, more: bool = False) -> bytes:
    return b"\0" + struct.pack(">HI", offset << 3 | int(more), 7)


def ether(payload: bytes, ethertype: int = 0x0800, vlans: Sequence[int] = ()) -> bytes:
    head = b"\0" * 12
    for tpid in vlans:
        head += struct.pack(">HH", tpid, 5)
    return head + struct.pack(">H", ethertype) + payload


def sll(payload: bytes, ethertype: int = 0x0800) -> bytes:
    return struct.pack(">HHH8sH", 0, 772, 6, b"\0" * 8, ethertype) + payload


def sll2(payload: bytes, ethertype: int = 0x0800) -> bytes:
    return struct.pack(">HHIHBB8s", ethertype, 0, 1, 772, 0, 6, b"\0" * 8) + payload


def null(payload: bytes, family: int = 2, big: bool = False) -> bytes:
    return struct.pack(">I" if big else "<I", family) + payload
