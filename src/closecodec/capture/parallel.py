"""One capture read on many cores, or on a Dask cluster, with exactly one reader's records (docs/scale.md).

The unit of work is a *partition*: every process reads the whole capture (a file
or a set), but decodes only the connections whose addresses and ports hash to
its partition (:func:`~closecodec.capture.partition_of`, both directions alike),
with :class:`~closecodec.capture.records.CloseRecordReader`'s ``partition``
option. A connection is whole in one partition, so its records are those of a
single reader; nothing is stitched. Putting the partitions back together:

- the ``stream`` numbers (tshark's ``tcp.stream``, numbered as connections
  start) come from the packet count at each connection's start, which every
  partition counts alike;
- the records come in the order one reader makes them: by the packet count at
  which each was made (one packet is one connection's, so one partition's),
  and those made at the end of the capture by stream number;
- counters add up (packets without a TCP segment are counted by partition 0).

The connection limits are per reader: a run in which the partitions together
may have held more connections or out-of-order bytes than ``max_connections``
or ``max_buffer_total`` allow (where one reader would have evicted or skipped)
is read again by one reader, so that the result stays that reader's
(:attr:`ParallelCloseRecordReader.read_again` says so).

Processes come from the standard library's process pool (``jobs``), or from a
Dask cluster (``client``, a ``distributed.Client``), whose retries rerun a
partition whose worker died. A partition that fails for good raises
:class:`PartitionError`, naming it and what failed; nothing partial is returned.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from os import PathLike, fspath
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import DecodeError, IncompleteError
from .records import CloseRecord, CloseRecordReader
from .reassembly import DEFAULT_MAX_BUFFER_TOTAL, DEFAULT_MAX_CONNECTIONS

__all__ = ["PartitionError", "ParallelCloseRecordReader", "PartitionResult", "default_jobs", "read_partition"]

#: How many times a partition is run again after its process died (the process pool; Dask has its own).
RETRIES = 2


_AT_END = 1 << 62  # the order of what the end of the capture made: after every packet, by stream


class PartitionError(Exception):
    """A partition of a parallel read failed for good (its message names the partition and the cause)."""


class PartitionResult:
    """What one partition found: its records and everything needed to merge them (picklable)."""

    __slots__ = ("records", "order", "starts", "errors", "error_order", "stats", "skipped", "files", "problems",
                 "error", "broken", "frames", "peak_open", "peak_buffered")

    def __init__(self, reader: CloseRecordReader, records: List[CloseRecord], broken: Optional[DecodeError]) -> None:
        self.records = records
        self.order: List[int] = reader.order
        self.starts: List[int] = reader.starts
        self.errors = reader.errors
        self.error_order: List[int] = reader.error_order
        self.stats = reader.stats
        self.skipped = reader.skipped
        self.files = reader.files
        self.problems = reader.problems
        self.error = reader.error
        self.broken = broken
        self.frames: int = reader.frames
        self.peak_open: int = reader.peak_open
        self.peak_buffered: int = reader.peak_buffered

    def __getstate__(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, state: tuple) -> None:
        for name, value in zip(self.__slots__, state):
            setattr(self, name, value)


def read_partition(source: Union[str, "PathLike[str]", Sequence[Any]], index: int, count: int,
                   options: Dict[str, Any]) -> PartitionResult:
    """Read partition ``index`` of ``count`` of a capture (a path, or a list of paths: a set).

    ``options`` are :class:`CloseRecordReader`'s. A broken structure further on
    (a :class:`~closecodec.errors.DecodeError` while reading) ends the partition
    where one reader would stop; it is in the result's ``broken``.
    """
    reader = CloseRecordReader(source, partition=(index, count), **options)
    records: List[CloseRecord] = []
    broken = None
    with reader:
        try:
            records.extend(reader)
        except DecodeError as error:
            broken = error
    return PartitionResult(reader, records, broken)


def default_jobs() -> int:
    """This machine's cores (those this process may use)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ParallelCloseRecordReader:
    """The close records of a capture, read in parallel: the records, the order, the stream numbers and the
    counters of one :class:`CloseRecordReader` over the same capture.

    Args:
        source: a path, or a list of paths (files and directories): a capture
            set. Not standard input or a file object: every process opens the
            files itself (on a cluster, at paths its workers see).
        jobs: the partitions and processes of the standard library's process
            pool (the machine's cores by default); with ``client``, the
            partitions (by default the cluster's worker threads).
        client: a ``distributed.Client`` to run the partitions on a Dask
            cluster, with ``retries`` (a partition whose worker died runs again
            elsewhere). None: a process pool on this machine.
        options: keyword options of :class:`CloseRecordReader` (``decode_as``,
            ``mqtt_ports``, limits...; not ``progress``).

    Iterating reads the whole capture first (the partitions' records are
    merged when all are in), then yields the records. Afterwards the
    attributes are one reader's: ``stats``, ``errors``, ``skipped``, ``files``,
    ``problems``, ``error``, ``frames``; and ``read_again`` (the partitions
    together may have reached a connection limit: one reader read it again)
    and ``rerun`` (the partitions of the process pool run again because
    their process died). A structure broken further on raises
    the :class:`~closecodec.errors.MalformedError` after the records before it,
    as one reader does.

    Raises:
        PartitionError: (while iterating) a partition failed for good.
        ValueError: ``jobs`` is less than 1, or the source is not paths.
    """

    def __init__(self, source: Union[str, "PathLike[str]", Sequence[Any]], /, *, jobs: Optional[int] = None,
                 client: Any = None, retries: int = RETRIES, **options: Any) -> None:
        if source is None or source == "-" or not isinstance(source, (str, PathLike, list, tuple)):
            raise ValueError("parallel reading needs capture files (a path or a list of paths), "
                             "not standard input or a file object")
        if "progress" in options or "partition" in options:
            raise TypeError("progress and partition are not options of a parallel read")
        if jobs is not None and (type(jobs) is not int or jobs < 1):
            raise ValueError(f"jobs must be an int of at least 1, not {jobs!r}")
        self._source = list(source) if isinstance(source, tuple) else source
        self._client = client
        self._retries = retries
        self._options = options
        if jobs is None:
            jobs = max(1, sum(client.nthreads().values())) if client is not None else default_jobs()
        self.jobs = jobs
        self.stats: Counter = Counter()
        self.errors: List[Tuple[int, int, str]] = []
        self.skipped: Counter = Counter()
        self.files: List[Optional[str]] = []
        self.problems: List[Tuple[str, str]] = []
        self.error: Optional[IncompleteError] = None
        self.frames = 0
        self.read_again = False
        self.rerun: List[int] = []

    def __enter__(self) -> "ParallelCloseRecordReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def __iter__(self) -> Iterator[CloseRecord]:
        if self.jobs == 1:
            results = [read_partition(self._source, 0, 1, self._options)]
        elif self._client is not None:
            results = self._on_dask()
        else:
            results = self._on_pool()
        if len(results) > 1 and not self._within_limits(results):
            self.read_again = True
            results = [read_partition(self._source, 0, 1, self._options)]
        yield from self._merge(results)

    def _within_limits(self, results: List[PartitionResult]) -> bool:
        """Whether one reader surely stayed within the connection limits (never evicted or skipped for them)."""
        max_open = self._options.get("max_connections", DEFAULT_MAX_CONNECTIONS)
        max_held = self._options.get("max_buffer_total", DEFAULT_MAX_BUFFER_TOTAL)
        return (sum(result.peak_open for result in results) <= max_open
                and sum(result.peak_buffered for result in results) <= max_held)

    def _failed(self, index: int, error: BaseException) -> PartitionError:
        return PartitionError(f"partition {index} of {self.jobs} of {_describe(self._source)} failed: "
                              f"{type(error).__name__}: {error}")

    def _on_pool(self) -> List[PartitionResult]:
        """The partitions in a process pool; those whose process died run again, ``retries`` times."""
        methods = multiprocessing.get_all_start_methods()
        # fork starts a process in milliseconds; spawn imports everything again (where fork is missing).
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        results: Dict[int, PartitionResult] = {}
        pending = list(range(self.jobs))
        attempts = 0
        while pending:
            died: List[int] = []
            with ProcessPoolExecutor(max_workers=min(self.jobs, len(pending)), mp_context=context) as pool:
                futures = {index: pool.submit(read_partition, self._source, index, self.jobs, self._options)
                           for index in pending}
                for index, future in futures.items():
                    try:
                        results[index] = future.result()
                    except BrokenProcessPool as error:
                        died.append(index)
                        cause: BaseException = error
                    except Exception as error:
                        raise self._failed(index, error) from error
            if died and attempts >= self._retries:
                raise self._failed(died[0], cause)
            attempts += 1
            self.rerun += died
            pending = died
        return [results[index] for index in range(self.jobs)]

    def _on_dask(self) -> List[PartitionResult]:
        """The partitions as tasks of a Dask cluster (its retries for workers that die)."""
        futures = self._client.map(read_partition, [self._source] * self.jobs, range(self.jobs),
                                   [self.jobs] * self.jobs, [self._options] * self.jobs,
                                   retries=self._retries, pure=False)
        results = []
        for index, future in enumerate(futures):
            try:
                results.append(future.result())
            except Exception as error:
                self._client.cancel(futures)
                raise self._failed(index, error) from error
        return results

    def _merge(self, results: List[PartitionResult]) -> Iterator[CloseRecord]:
        first = results[0]
        # Stream numbers: connections numbered by the packet count at their start, across partitions.
        starts = sorted((count, p, local) for p, result in enumerate(results)
                        for local, count in enumerate(result.starts))
        streams = [[0] * len(result.starts) for result in results]
        for number, (_, p, local) in enumerate(starts):
            streams[p][local] = number
        end = _AT_END
        made = []
        for p, result in enumerate(results):
            renumber = streams[p]
            for seq, (record, count) in enumerate(zip(result.records, result.order)):
                stream = renumber[record.stream]
                made.append(((count, 0, seq) if count >= 0 else (end, stream, seq), p,
                             record if stream == record.stream else _with_stream(record, stream)))
        made.sort(key=lambda item: (item[0], item[1]))
        errors = []
        for p, result in enumerate(results):
            for seq, ((frame, stream, message), count) in enumerate(zip(result.errors, result.error_order)):
                stream = streams[p][stream]
                errors.append(((count, 0, seq) if count >= 0 else (end, stream, seq), p, (frame, stream, message)))
        errors.sort(key=lambda item: (item[0], item[1]))
        self.errors = [error for _, _, error in errors[:100]]
        self.stats = sum((result.stats for result in results), Counter())
        self.skipped = sum((result.skipped for result in results), Counter())
        self.files, self.problems, self.error, self.frames = first.files, first.problems, first.error, first.frames
        for _, _, record in made:
            yield record
        if first.broken is not None:
            raise first.broken


def _with_stream(record: CloseRecord, stream: int) -> CloseRecord:
    return CloseRecord(*record[:3], stream, *record[4:])


def _describe(source: Any) -> str:
    if isinstance(source, list):
        return f"the capture set {', '.join(fspath(path) for path in source)}"
    return fspath(source)
