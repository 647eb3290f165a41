"""What a connection costs ``closecodec capture``, and what a packet costs once its connection is set up
(issue 20; docs/performance.md, "Packet captures").

For each traffic of the capture suite (1 KiB messages with 300 connections open at a time, and 100 to 300
byte messages with 1,000), the compiled reader reads three captures:

- the traffic with its connections open throughout, at two sizes (an eighth and half of the full size):
  the difference of the two times over the difference of their packets is what a packet costs on an
  open connection, the segment loop's own cost (setting up the connections, the same in both, drops out);
- the capture suite's traffic (connections of 20 to 100 messages, a quarter of the full size): what it
  takes beyond its packets at that rate, over its connections, is what a connection costs: its visits
  to Python (SYN, handshake, first server message or CONNACK, closes, last FIN).

Then, for each of issue 20's targets on that traffic, what a connection may cost for the target to be met.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

from closecodec.capture.records import CloseRecordReader
from tests.helpers import CONCURRENT, generate_capture, use_backend

from .capture import ISSUE_20_MB_S, SMALL_CONCURRENT, SMALL_MESSAGES
from .harness import Case

LASTING = (10**6, 10**6 + 1)  # messages a connection carries: more than any capture here holds


def compiled(path: Path) -> int:
    """Read the capture with the compiled backend; its connections."""
    with use_backend("c"):
        reader = CloseRecordReader(path)
    with reader:
        for _ in reader:
            pass
        return reader.stats["connections"]


def cases() -> List[Case]:
    if importlib.util.find_spec("closecodec.capture._c") is None:
        print("\nconnections: the compiled capture backend is not built; nothing to measure")
        return []
    size = (20 if "--quick" in sys.argv else 200) * 1000 * 1000
    folder = Path(tempfile.mkdtemp(prefix="closecodec-bench-"))
    atexit.register(shutil.rmtree, folder, True)
    made = []
    for name, shape, targets in (
            ("1 KiB messages", {"concurrent": CONCURRENT}, {"mb_s": ISSUE_20_MB_S}),
            ("100 to 300 byte messages", {"message_sizes": SMALL_MESSAGES, "concurrent": SMALL_CONCURRENT},
             {"ns": 150})):
        paths = {part: folder / f"{len(made)}-{part}.pcap" for part in ("short", "long", "traffic")}
        short, _ = generate_capture(paths["short"], size // 8, messages=LASTING, **shape)
        long, _ = generate_capture(paths["long"], size // 2, messages=LASTING, **shape)
        packets, _ = generate_capture(paths["traffic"], size // 4, **shape)
        count = compiled(paths["traffic"])
        nbytes = os.path.getsize(paths["traffic"])
        print(f"\nconnections, {name}: open throughout, {short} and {long} packets; the suite's traffic, "
              f"{packets} packets, {count} connections ({packets / count:.0f} packets each)")
        made.append(Case(
            f"connections: {name}, what a packet and a connection cost (compiled)",
            {"open throughout, short": lambda path=paths["short"]: compiled(path),
             "open throughout, long": lambda path=paths["long"]: compiled(path),
             "the suite's traffic": lambda path=paths["traffic"]: compiled(path)},
            derived=lambda results, short=short, long=long, packets=packets, count=count, nbytes=nbytes,
            targets=targets: costs(results, short, long, packets, count, nbytes, targets)))
    return made


def costs(results: Dict[str, float], short: int, long: int, packets: int, count: int, nbytes: int,
          targets: Dict[str, float]) -> List[str]:
    """A packet's cost on open connections, a connection's, and the connection cost each target allows."""
    loop = (results["open throughout, long"] - results["open throughout, short"]) / (long - short)
    traffic = results["the suite's traffic"]
    # What a run costs whatever it reads (the reader's start, the first reads) counts here as the
    # connections': under a millisecond (a 60 KB capture is read whole in 0.65 ms), against tens.
    connection = (traffic - packets * loop) / count
    if loop <= 0 or connection <= 0:
        return ["noise outweighs the difference between the captures: run it without --quick"]
    lines = [f"a packet on an open connection: {loop * 1e9:,.0f} ns",
             f"the suite's traffic: {traffic / packets * 1e9:,.0f} ns a packet, {nbytes / traffic / 1e6:,.0f} MB/s",
             f"a connection beyond its packets: {connection * 1e6:,.1f} us"]
    if "mb_s" in targets:
        allowed = nbytes / (targets["mb_s"] * 1e6)
        what = f"{targets['mb_s']:,.0f} MB/s"
    else:
        allowed = packets * targets["ns"] * 1e-9
        what = f"{targets['ns']:,.0f} ns a packet"
    budget = (allowed - packets * loop) / count
    if budget <= 0:
        lines.append(f"for {what}: out of reach even if a connection cost nothing")
    else:
        lines.append(f"for {what}: a connection may cost {budget * 1e6:,.1f} us "
                     f"({budget / connection:.0%} of its cost now)")
    return lines
