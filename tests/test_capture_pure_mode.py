"""capture/reassembly.py, records.py and midstream.py give exactly the same compiled (Cython's pure-Python
mode) as interpreted.

Where a compiler is available, setup.py compiles these plain Python modules (with
the declarations in their .pxd files). The source is the same,
so the behaviour must be: this runs the interpreted modules in a child process
(a copy of the installed package without their compiled builds, the compiled
backends kept) and compares everything a reader reports with the compiled
modules' report in this process, on the shared captures and on the
benchmark's traffic, whole, without its handshakes (mid-stream recognition) and
damaged (reordered, duplicated and lost packets, a connection table small enough
to evict).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

import closecodec
from closecodec.capture import midstream, reassembly, records

from helpers import ALL_CAPTURES, DATA, MQTT_PORTS, generate_capture, use_backend, without_lanes

# The modules compiled from their .py that this test checks.
PURE_MODE = ("capture/reassembly", "capture/records", "capture/midstream")

pytestmark = pytest.mark.skipif(
    any(Path(module.__file__).suffix == ".py" for module in (reassembly, records, midstream)),
    reason="capture/reassembly.py, records.py and midstream.py are not compiled in this install (no compiler, or "
           "the pure-Python build)",
)

# Run in the child: the report of each (path, options) job, as JSON.
CHILD = """
import json, sys
from pathlib import Path
from closecodec.capture import midstream, reassembly, records
assert all(Path(m.__file__).suffix == ".py" for m in (reassembly, records, midstream)), "compiled modules imported"
sys.path.insert(0, sys.argv[1])
from test_capture_pure_mode import report
print(json.dumps([report(path, options) for path, options in json.loads(sys.stdin.read())]))
"""


def report(path: str, options: Dict[str, Any]) -> Any:
    """Everything the readers report on a capture, in JSON form (``side`` and ``lanes`` choose the path)."""
    options = dict(options)
    side, lanes = options.pop("side", closecodec.BACKEND), options.pop("lanes", True)
    with use_backend(side):
        reader = records.CloseRecordReader(path, **options) if lanes else without_lanes(path, **options)
    found = [record.to_dict() for record in reader]
    events = [repr(event) for event in reassembly.TcpStreamReader(path)]
    text = json.dumps([found, dict(reader.stats), reader.errors, dict(reader.skipped),
                       dict(reader.reassembler.stats), repr(reader.error), events], sort_keys=True)
    return json.loads(text)


def damaged(data: bytes) -> bytes:
    """A pcap's packets with some reordered (each 31st after its successor), duplicated (each 53rd)
    and lost (each 97th)."""
    header, pos, packets = data[:24], 24, []
    while pos < len(data):
        size = struct.unpack_from("<I", data, pos + 8)[0]
        packets.append(data[pos:pos + 16 + size])
        pos += 16 + size
    out: List[bytes] = []
    for i, packet in enumerate(packets):
        if i % 97 == 96:
            continue
        out.append(packet)
        if i % 53 == 52:
            out.append(packet)
        if i % 31 == 30 and len(out) >= 2:
            out[-1], out[-2] = out[-2], out[-1]
    return header + b"".join(out)


@pytest.fixture(scope="module")
def interpreted_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the installed package without the compiled modules of PURE_MODE."""
    root = tmp_path_factory.mktemp("interpreted")
    package = root / "closecodec"
    shutil.copytree(Path(closecodec.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in PURE_MODE:
        for built in list(package.glob(f"{name}.*.so")) + list(package.glob(f"{name}.*.pyd")):
            built.unlink()
    return root


def test_compiled_and_interpreted_modules_report_the_same(interpreted_package: Path, tmp_path: Path):
    traffic = tmp_path / "traffic.pcap"
    generate_capture(traffic, 400_000, seed=5)
    (tmp_path / "damaged.pcap").write_bytes(damaged(traffic.read_bytes()))
    generate_capture(tmp_path / "midstream.pcap", 400_000, seed=5, handshakes=False)
    jobs = [(str(DATA / name), {}) for name in ALL_CAPTURES]
    jobs += [(str(DATA / name), {"decode_as": MQTT_PORTS}) for name in ALL_CAPTURES]
    for name in ("traffic.pcap", "damaged.pcap", "midstream.pcap"):
        jobs += [(str(tmp_path / name), {}), (str(tmp_path / name), {"max_connections": 40}),
                 (str(tmp_path / name), {"lanes": False, "side": "py"})]
    jobs = [(path, {**options, "decode_as": {str(k): v for k, v in options.get("decode_as", {}).items()}})
            for path, options in jobs]

    child = subprocess.run([sys.executable, "-c", CHILD, str(Path(__file__).parent)], input=json.dumps(jobs),
                           capture_output=True, text=True, timeout=600,
                           env={**os.environ, "PYTHONPATH": str(interpreted_package)})
    assert child.returncode == 0, child.stderr[-3000:]
    interpreted = json.loads(child.stdout)
    compiled = [report(path, options) for path, options in jobs]
    assert len(compiled) == len(interpreted) == len(jobs)
    for job, mine, theirs in zip(jobs, compiled, interpreted):
        assert mine == theirs, job
    # The jobs saw what they should: closes on every capture, gaps in the damaged traffic.
    assert all(result[0] for result in compiled)
    assert any(result[1].get("gaps") for result in compiled)
