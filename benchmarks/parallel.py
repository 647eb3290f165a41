"""Benchmark: one capture read in parallel partitions (issue 18, docs/scale.md).

400 MB of the capture benchmark's traffic (300 connections open at a time, 1 KiB
WebSocket messages, MQTT and Diffusion) in one file and in 8 files (a rotated set),
read to close records by:

- one process (``--jobs 1``): ``CloseRecordReader``;
- ``--jobs 2``, ``--jobs 4``: ``ParallelCloseRecordReader`` on the standard library's
  process pool: chunks in time (the 8 files in groups, the one file in byte ranges), each
  process following the connections that start in its chunk;
- ``--dask local``: the same chunks as tasks of a Dask ``LocalCluster`` with two worker
  processes (started once, in the first of its runs), when the dask extra is installed.

The compiled backend, as users run it. Targets (issue 18): ``--jobs 2`` at least 1.7x
``--jobs 1`` on this 2-core machine, in one file and in 8; Dask within 15% of ``--jobs 2``
(at least 0.87x of its speed). Also printed: one partition of two alone (the fallback
for captures that cannot be cut in time: every process reads every packet).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

from closecodec.capture.parallel import ParallelCloseRecordReader, read_partition
from closecodec.capture.records import CloseRecordReader
from tests.helpers import generate_capture

from .capture import split_pcap
from .harness import Case


def serial(source) -> int:
    with CloseRecordReader(source) as reader:
        return sum(1 for _ in reader)


def parallel(source, jobs: int, client=None) -> int:
    reader = ParallelCloseRecordReader(source, jobs=jobs, client=client)
    found = sum(1 for _ in reader)
    if reader.how != "chunks":
        raise RuntimeError(f"read in {reader.how}, not chunks: {reader.why}")
    return found


class LazyCluster:
    """A Dask LocalCluster with two worker processes, started at its first use: the process pool
    contenders run before, in a process without the client's threads (where the pool forks)."""

    def __init__(self) -> None:
        self.client = None

    def __call__(self):
        if self.client is None:
            from distributed import Client, LocalCluster

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
            self.client = Client(cluster)
            atexit.register(cluster.close)
            atexit.register(self.client.close)
        return self.client


def cases() -> List[Case]:
    quick = "--quick" in sys.argv
    size = (40 if quick else 400) * 1000 * 1000
    folder = Path(tempfile.mkdtemp(prefix="closecodec-bench-parallel-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "traffic.pcap"
    packets, _ = generate_capture(path, size)
    files = [str(file) for file in split_pcap(path, folder / "set", 8)]
    nbytes = os.path.getsize(path)
    print(f"\nparallel: {nbytes / 1e6:.0f} MB, {packets} packets; {os.cpu_count()} cores")
    out = []
    for label, source in (("one file", str(path)), ("8 files", files)):
        jobs: Dict[str, object] = {
            "--jobs 1": lambda source=source: serial(source),
            "--jobs 2": lambda source=source: parallel(source, 2),
            "--jobs 4": lambda source=source: parallel(source, 4),
            "partition 0 of 2 alone": lambda source=source: len(read_partition(source, 0, 2, {}).records),
        }
        counts = {name: job() for name, job in jobs.items() if name.startswith("--")}
        assert len(set(counts.values())) == 1, counts  # every way finds the same records
        out.append(Case(f"parallel: {label}", jobs, units=packets, unit="packet", nbytes=nbytes,
                        targets=[("--jobs 2", "--jobs 1", 1.7)]))
    try:
        import distributed  # noqa: F401
    except ImportError as error:
        print(f"note: the dask extra is not installed ({error}); pip install '.[dask]'")
        return out
    cluster = LazyCluster()
    # Last: once the client exists, this process has threads, and the pool starts from a fork server.
    out.append(Case("parallel: Dask LocalCluster (2 workers) against the pool, one file", {
        "--dask local": lambda: parallel(str(path), 2, cluster()),
        "--jobs 2 (beside the client)": lambda: parallel(str(path), 2),
        "--jobs 1": lambda: serial(str(path)),
    }, units=packets, unit="packet", nbytes=nbytes, targets=[("--dask local", "--jobs 2 (beside the client)", 0.87)]))
    return out
