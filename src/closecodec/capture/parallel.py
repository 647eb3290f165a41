"""One capture read on many cores, or on a Dask cluster, with exactly one reader's records (docs/scale.md).

Two ways to cut the work, both giving one reader's records, order, stream numbers,
``file`` and ``frame``, counters and errors:

- **Chunks in time** (first choice): the files of a set in groups, or one pcap file
  in byte ranges (each range found again from an arbitrary offset, and checked by the
  chunk before it, which must end exactly where the next begins). Each chunk's reader
  (:class:`~closecodec.capture.records.CloseRecordReader`'s ``chunk`` option) takes the
  connections that start in it and follows them past its end, reading only their
  packets, until they end; it passes over the packets of connections that started
  before it. The merge checks that every packet passed over was a connection's that an
  earlier chunk followed, or one that one reader would have dropped as coming after its
  connection's end; anything else (a connection whose start no chunk saw, files that
  overlap in time, a boundary inside a record) and the chunks are not used.
- **Partitions of the connections** (otherwise): every process reads the whole capture
  but decodes only the connections that hash to it (:func:`~closecodec.capture.partition_of`).
  A connection is whole in one partition, so its records are one reader's whatever its
  length; it costs every process the reading of every packet. (Each partition remembers
  only its own ended connections, ``max_closed`` of them, longer than one reader: when the
  chunks find that this matters, the capture is read by one reader.)

Putting the pieces together: stream numbers come from the packet count at each
connection's start (every piece counts packets alike); records are merged by the packet
count at which each was made (a packet is one connection's, so one piece's), those made
at the end of the capture by stream number; counters add up.

The connection limits are per reader: a run whose pieces together may have held more
connections or out-of-order bytes than ``max_connections`` or ``max_buffer_total`` allow
is read again by one reader. The remembered closed connections (``max_closed``) are
checked for the packets the chunks left to the merge.

Processes come from the standard library's process pool (``jobs``), or from a Dask
cluster (``client``, a ``distributed.Client``), whose retries rerun a task whose worker
died. A piece that fails for good raises :class:`PartitionError`, naming it and the
cause; nothing partial is returned.
"""

from __future__ import annotations

import heapq
import io
import itertools
import multiprocessing
import os
import struct
import threading
from bisect import bisect_left, bisect_right
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from os import PathLike, fspath
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from .. import _backend
from ..errors import DecodeError, IncompleteError
from .files import file_size, is_dir, is_url, open_file
from .records import CloseRecord, CloseRecordReader, look_at_set
from .reassembly import (DEFAULT_MAX_BUFFER_TOTAL, DEFAULT_MAX_CLOSED, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RECORD,
                         tuple_new)

__all__ = ["PartitionError", "ParallelCloseRecordReader", "PieceResult", "default_jobs", "find_record",
           "read_chunk", "read_partition"]

#: How many times a piece is run again after its process died (the process pool; Dask has its own).
RETRIES = 2
#: Consecutive well-formed pcap records that make an offset a record start (docs/scale.md, "Chunks").
RESYNC_RECORDS = 16
#: How far past a cut the search for a record start goes before the cut is given up.
RESYNC_WINDOW = 1 << 20
_AT_END = 1 << 62  # the order of what the end of the capture made: after every packet, by stream
_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", False), b"\x4d\x3c\xb2\xa1": ("<", True),
                b"\xa1\xb2\xc3\xd4": (">", False), b"\xa1\xb2\x3c\x4d": (">", True)}


class PartitionError(Exception):
    """A piece of a parallel read failed for good (its message names the piece and the cause)."""


class PieceResult:
    """What one piece (a partition or a chunk) found: its records (their fields, once pickled) and what the
    merge needs."""

    __slots__ = ("records", "order", "starts", "errors", "error_order", "stats", "skipped", "files", "problems",
                 "error", "broken", "frames", "peak_open", "peak_buffered", "limited", "report")

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
        # It reached a limit itself: evicted a connection, or skipped holes for the total held.
        self.limited = bool(reader.reassembler.stats["evicted"] or reader.reassembler.relieved)
        self.report = reader.chunk_report

    def __getstate__(self) -> tuple:
        # Records travel as their fields: the merge makes each record once, with its stream number.
        return tuple([tuple(record) for record in self.records] if name == "records" else getattr(self, name)
                     for name in self.__slots__)

    def __setstate__(self, state: tuple) -> None:
        for name, value in zip(self.__slots__, state):
            setattr(self, name, value)


def _read(reader: CloseRecordReader) -> PieceResult:
    records: List[CloseRecord] = []
    broken = None
    with reader:
        try:
            records.extend(reader)
        except DecodeError as error:
            broken = error
    return PieceResult(reader, records, broken)


def read_partition(source: Union[str, "PathLike[str]", Sequence[Any]], index: int, count: int,
                   options: Dict[str, Any]) -> PieceResult:
    """Read partition ``index`` of ``count`` of a capture (a path, or a list of paths: a set).

    ``options`` are :class:`CloseRecordReader`'s. A broken structure further on
    (a :class:`~closecodec.errors.DecodeError` while reading) ends the partition
    where one reader would stop; it is in the result's ``broken``.
    """
    return _read(CloseRecordReader(source, partition=(index, count), **options))


def read_chunk(source: Any, index: int, boundary: Optional[int], options: Dict[str, Any]) -> PieceResult:
    """Read chunk ``index`` of a capture cut in time: ``source`` is the list of a set's files from the
    chunk's first (``boundary``: how many are the chunk's), or ``(path, header, start)`` for a byte range
    of one pcap file from ``start`` to its end, read behind the file's ``header`` (``boundary``: the next
    chunk's first record, as a file offset)."""
    if isinstance(source, tuple):
        path, header, start = source
        file = _RangeFile(path, header, start)
        with file:
            return _read(CloseRecordReader(file, chunk=(index, None if boundary is None else
                                                        boundary - start + len(header)), **options))
    return _read(CloseRecordReader(source, chunk=(index, boundary), **options))


class _RangeFile(io.RawIOBase):
    """A pcap file seen from ``start`` on, behind its file header: a chunk's reader opens this."""

    def __init__(self, path: str, header: bytes, start: int) -> None:
        super().__init__()
        self.name = path
        self._header = header
        self._file = open_file(path) if is_url(path) else open(path, "rb", buffering=0)
        self._file.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._header:
            size = min(len(buffer), len(self._header))
            buffer[:size] = self._header[:size]
            self._header = self._header[size:]
            return size
        return self._file.readinto(buffer)

    def close(self) -> None:
        self._file.close()
        super().close()


def find_record(data: bytes, at: int, order: str, nano: bool, snaplen: int, final: bool,
                max_record: int = DEFAULT_MAX_RECORD) -> Optional[int]:
    """The first offset from ``at`` in ``data`` (a stretch of a pcap file's records; ``final``: it runs
    to the end of the file) where ``RESYNC_RECORDS`` well-formed records follow one another (or fewer
    that end exactly with a final ``data``), or None.

    Well-formed: captured length at most the snap length (when the header gives one) and the record
    limit, and at most the original length; sub-second part under 10^6 (10^9 for nanosecond files);
    within an hour of the first. A chance match inside packet data is not ruled out here: the chunk
    before a cut checks that its own records end exactly at it.
    """
    header = struct.Struct(order + "IIII")
    limit = 10**9 if nano else 10**6
    most = min(snaplen or max_record, max_record - 16)
    end = len(data)
    for start in range(at, end - 16 + 1):
        pos, seen, first = start, 0, None
        while seen < RESYNC_RECORDS:
            if pos + 16 > end:
                break
            seconds, fraction, caplen, origlen = header.unpack_from(data, pos)
            if fraction >= limit or caplen > most or caplen > origlen:
                pos = -1
                break
            if first is None:
                first = seconds
            elif abs(seconds - first) > 3600:
                pos = -1
                break
            pos += 16 + caplen
            seen += 1
        if pos >= 0 and (seen == RESYNC_RECORDS or final and pos == end):
            return start
    return None


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
            files itself (on a cluster, at paths or URLs its workers see).
        jobs: the pieces, and the processes of the standard library's process
            pool (the machine's cores by default); with ``client``, the pieces
            (by default the cluster's worker threads).
        client: a ``distributed.Client`` to run the pieces on a Dask cluster,
            with ``retries`` (a piece whose worker died runs again elsewhere).
            None: a process pool on this machine.
        options: keyword options of :class:`CloseRecordReader` (``decode_as``,
            ``mqtt_ports``, limits...; not ``progress``).

    Iterating reads the whole capture first (the pieces' records are merged
    when all are in), then yields the records. Afterwards the attributes are
    one reader's: ``stats``, ``errors``, ``skipped``, ``files``, ``problems``,
    ``error``, ``frames``; and ``how`` (``"chunks"``, ``"partitions"`` or
    ``"one reader"``), ``why`` (why not chunks, or None), ``rerun`` (the pieces
    of the process pool run again because their process died). A structure
    broken further on raises the :class:`~closecodec.errors.MalformedError`
    after the records before it, as one reader does.

    Raises:
        PartitionError: (while iterating) a piece failed for good.
        ValueError: ``jobs`` is less than 1, or the source is not paths.
    """

    def __init__(self, source: Union[str, "PathLike[str]", Sequence[Any]], /, *, jobs: Optional[int] = None,
                 client: Any = None, retries: int = RETRIES, **options: Any) -> None:
        if source is None or source == "-" or not isinstance(source, (str, PathLike, list, tuple)):
            raise ValueError("parallel reading needs capture files (a path or a list of paths), "
                             "not standard input or a file object")
        if any(name in options for name in ("progress", "partition", "chunk")):
            raise TypeError("progress, partition and chunk are not options of a parallel read")
        if jobs is not None and (type(jobs) is not int or jobs < 1):
            raise ValueError(f"jobs must be an int of at least 1, not {jobs!r}")
        self._source = [fspath(path) for path in source] if isinstance(source, (list, tuple)) else fspath(source)
        if isinstance(self._source, str):
            if is_dir(self._source):
                self._source = [self._source]  # a directory is a set, for one reader as for the pieces
            else:
                file_size(self._source)  # OSError now, as one reader raises it
        CloseRecordReader(io.BytesIO(), **options)  # a bad option is a ValueError or TypeError now
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
        self.how = ""
        self.why: Optional[str] = None
        self.rerun: List[int] = []

    def __enter__(self) -> "ParallelCloseRecordReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def __iter__(self) -> Iterator[CloseRecord]:
        if self.jobs > 1:
            plan = self._plan()
            if plan is not None:
                sources, boundaries, files, problems = plan
                args = [(sources[k], k, boundaries[k], self._options) for k in range(len(sources))]
                names = [_chunk_name(k, sources[k], boundaries[k]) for k in range(len(sources))]
                merged = self._merge_chunks(self._run(read_chunk, args, names), files, problems)
                if merged is not None:
                    self.how = "chunks"
                    yield from merged
                    return
            count = self.jobs
            self.how = "partitions"
        else:
            count = 1
        if self.why is not None and self.why.startswith(_MAX_CLOSED):
            count = 1  # partitions remember ended connections per partition too
        results = self._run(read_partition, [(self._source, index, count, self._options) for index in range(count)],
                            [f"partition {index} of {count} of {_describe(self._source)}" for index in range(count)])
        if count > 1 and not _within_limits(results, self._options):
            self.why = "the pieces together may have reached a connection limit"
            results = [read_partition(self._source, 0, 1, self._options)]
        if len(results) == 1:
            self.how = "one reader"
        yield from self._merge_partitions(results)

    # -- planning ------------------------------------------------------------------------------

    def _plan(self) -> Optional[Tuple[List[Any], List[Optional[int]], List[str], List[Tuple[str, str]]]]:
        """The chunks: their sources and boundaries, the set's files and what was left out; None (and
        ``why``) when the capture cannot be cut in time."""
        source = self._source
        max_record = self._options.get("max_record", DEFAULT_MAX_RECORD)
        if isinstance(source, str):  # one file: a directory became a set in __init__
            return self._plan_ranges(source, max_record)
        files, firsts, problems = look_at_set(_backend.capture.PacketReader, source, max_record)
        if len(files) < 2:
            self.why = "a set of fewer than two capture files"
            return None
        order = sorted(range(len(files)), key=lambda i: (firsts[i], i))  # as the set's merger opens them
        ordered = [files[i] for i in order]
        before = [0]  # the bytes of the files before each, in that order
        for path in ordered:
            before.append(before[-1] + file_size(path))
        count = min(self.jobs, len(ordered))
        groups: List[int] = [0]  # the index of each group's first file: sizes as even as whole files allow
        for g in range(1, count):
            target = before[-1] * g / count
            groups.append(min(range(groups[-1] + 1, len(ordered) - (count - g) + 1),
                              key=lambda i: abs(before[i] - target)))
        groups.append(len(ordered))
        sources = [ordered[groups[k]:] for k in range(len(groups) - 1)]
        boundaries: List[Optional[int]] = [groups[k + 1] - groups[k] for k in range(len(groups) - 2)] + [None]
        return sources, boundaries, files, problems

    def _plan_ranges(self, path: str, max_record: int) -> Optional[Tuple[List[Any], List[Optional[int]], List[str],
                                                                         List[Tuple[str, str]]]]:
        """Byte ranges of one pcap file, each starting at a record found again near an even cut."""
        with open_file(path) as file:
            header = file.read(24)
            magic = _PCAP_MAGICS.get(header[:4])
            if magic is None or len(header) < 24:
                self.why = "not a classic pcap file (pcapng files are not cut in byte ranges)"
                return None
            order, nano = magic
            snaplen = struct.unpack_from(order + "I", header, 16)[0]
            size = file_size(path)
            starts = [24]
            for k in range(1, self.jobs):
                cut = size * k // self.jobs
                if cut <= starts[-1]:
                    continue
                file.seek(cut)
                # Room for the search, then for a chain of records as long as the snap length allows.
                data = file.read(RESYNC_WINDOW + RESYNC_RECORDS * (16 + min(snaplen or max_record, max_record)))
                found = find_record(data, 0, order, nano, snaplen, cut + len(data) >= size, max_record)
                if found is not None and found < RESYNC_WINDOW and cut + found < size:
                    starts.append(cut + found)
        if len(starts) < 2:
            self.why = "no record start found near the cuts"
            return None
        sources: List[Any] = [path] + [(path, header, start) for start in starts[1:]]
        boundaries: List[Optional[int]] = starts[1:] + [None]
        return sources, boundaries, [path], []

    # -- running ---------------------------------------------------------------------------------

    def _run(self, work: Callable[..., PieceResult], args: List[tuple], names: List[str]) -> List[PieceResult]:
        """``work(*args[i])`` for each piece, in parallel; ``names[i]`` says which piece failed."""
        if len(args) == 1:
            return [work(*args[0])]
        if self._client is not None:
            return self._on_dask(work, args, names)
        return self._on_pool(work, args, names)

    def _on_pool(self, work: Callable[..., PieceResult], args: List[tuple], names: List[str]) -> List[PieceResult]:
        """The pieces in a process pool; those whose process died run again, ``retries`` times. (Not one of
        them in this process: after a fork, every page this process writes that its children still share
        is copied first, which made that piece half as slow again.)"""
        context = _pool_context()
        results: Dict[int, PieceResult] = {}
        pending = list(range(len(args)))
        attempts = 0
        while pending:
            died: List[int] = []
            cause: Optional[BaseException] = None
            with ProcessPoolExecutor(max_workers=min(self.jobs, len(pending)), mp_context=context) as pool:
                futures = {}
                try:
                    for index in pending:
                        futures[index] = pool.submit(work, *args[index])
                except (BrokenProcessPool, OSError) as error:  # a process died while the pool started another
                    cause = error
                for index in pending:
                    if index not in futures:
                        died.append(index)
                        continue
                    try:
                        results[index] = futures[index].result()
                    except BrokenProcessPool as error:
                        died.append(index)
                        cause = error
                    except Exception as error:
                        raise _failed(names[index], error) from error
            if died and attempts >= self._retries:
                raise _failed(names[died[0]], cause or BrokenProcessPool("a process of the pool died"))
            attempts += 1
            self.rerun += died
            pending = died
        return [results[index] for index in range(len(args))]

    def _on_dask(self, work: Callable[..., PieceResult], args: List[tuple], names: List[str]) -> List[PieceResult]:
        """The pieces as tasks of a Dask cluster (its retries for workers that die)."""
        futures = self._client.map(work, *zip(*args), retries=self._retries, pure=False)
        results = []
        for index, future in enumerate(futures):
            try:
                results.append(future.result())
            except Exception as error:
                self._client.cancel(futures)
                raise _failed(names[index], error) from error
        return results

    # -- merging -----------------------------------------------------------------------------------

    def _merge_chunks(self, results: List[PieceResult], files: List[str],
                      problems: List[Tuple[str, str]]) -> Optional[Iterator[CloseRecord]]:
        """The chunks' records as one reader's, or None (and ``why``) when they cannot be."""
        self.why = _chunks_fail(results, self._options)
        if self.why is not None:
            return None
        starts = _chunk_starts(results)
        single = isinstance(self._source, str)
        self.files = [self._source] if single else files
        self.problems = list(problems)
        for result in results:  # files cut short, found by the chunk that read them (and any that followed)
            self.problems += [problem for problem in result.problems if problem not in self.problems]
        self.error = results[-1].error
        self.frames = starts[-1]
        return self._merge(results, starts[:-1], _chunk_shifts(starts, single))

    def _merge_partitions(self, results: List[PieceResult]) -> Iterator[CloseRecord]:
        first = results[0]
        self.files, self.problems, self.error, self.frames = first.files, first.problems, first.error, first.frames
        yield from self._merge(results, [0] * len(results), [0] * len(results))
        if first.broken is not None:
            raise first.broken

    def _merge(self, results: List[PieceResult], starts: List[int], shifts: List[int]) -> Iterator[CloseRecord]:
        """The pieces' records, errors and counters as one reader's: ``starts`` is the packet count before
        each piece's first, ``shifts`` what to add to its frame numbers."""
        streams = _stream_numbers(results, starts)
        made = [_positioned(result, start, shift, renumber)
                for result, start, shift, renumber in zip(results, starts, shifts, streams)]
        errors = [[(start + count if count >= 0 else _AT_END + renumber[stream],
                    (frame + shift, renumber[stream], message))
                   for (frame, stream, message), count in zip(result.errors, result.error_order)]
                  for result, start, shift, renumber in zip(results, starts, shifts, streams)]
        self.errors = [error for _, error in itertools.islice(heapq.merge(*errors, key=_first), 100)]
        self.stats = sum((result.stats for result in results), Counter())
        self.skipped = sum((result.skipped for result in results), Counter())
        for _, record in heapq.merge(*made, key=_first):
            yield record


def _within_limits(results: List[PieceResult], options: Dict[str, Any]) -> bool:
    """Whether one reader surely stayed within the connection limits (never evicted or skipped for them)."""
    max_open = options.get("max_connections", DEFAULT_MAX_CONNECTIONS)
    max_held = options.get("max_buffer_total", DEFAULT_MAX_BUFFER_TOTAL)
    return (not any(result.limited for result in results)
            and sum(result.peak_open for result in results) <= max_open
            and sum(result.peak_buffered for result in results) <= max_held)


def _chunks_fail(results: List[PieceResult], options: Dict[str, Any]) -> Optional[str]:
    """Why the chunks' records are not one reader's (they are read another way then), or None."""
    for result in results:
        if result.broken is not None:
            return "the structure of the capture is broken"
        if result.report.unsure is not None:
            return result.report.unsure
    if not _within_limits(results, options):
        return "the pieces together may have reached a connection limit"
    return _check_chunks(results, _chunk_starts(results), options.get("max_closed", DEFAULT_MAX_CLOSED))


def _chunk_starts(results: List[PieceResult]) -> List[int]:
    """Each chunk's first packet as one reader counts them (0-based), then the capture's packets."""
    starts = [0]
    for result in results:
        starts.append(starts[-1] + result.report.packets)
    return starts


def _chunk_shifts(starts: List[int], single: bool) -> List[int]:
    """What to add to each chunk's frame numbers: the packets before it for byte ranges of one file (a
    set's chunks start at a file's first)."""
    return [starts[k] if single else 0 for k in range(len(starts) - 1)]


def _stream_numbers(results: List[PieceResult], starts: List[int]) -> List[List[int]]:
    """Each piece's connections numbered as one reader numbers them: by the packet count at their start."""
    opened = sorted((start + count, p, local) for p, (result, start) in enumerate(zip(results, starts))
                    for local, count in enumerate(result.starts))
    streams = [[0] * len(result.starts) for result in results]
    for number, (_, p, local) in enumerate(opened):
        streams[p][local] = number
    return streams


def _positioned(result: PieceResult, start: int, shift: int, streams: List[int]) -> List[Tuple[int, CloseRecord]]:
    """A piece's records as one reader's (stream, frame), each after where one reader makes it: the packet
    count then (a packet is one piece's), or, for what the end of the capture makes, after every packet by
    stream. In the order the piece made them, which is that order."""
    return [(start + count if count >= 0 else _AT_END + streams[record[3]], _renumbered(record, streams, shift))
            for record, count in zip(result.records, result.order)]


def _first(item: Tuple[int, Any]) -> int:
    return item[0]


def _renumbered(record: Any, streams: List[int], shift: int) -> CloseRecord:
    """A piece's record (or its fields, as a piece from another process sends them) with its stream as one
    reader numbers it and its frame shifted by ``shift``."""
    stream = streams[record[3]]
    if type(record) is CloseRecord and stream == record[3] and not shift:
        return record
    return tuple_new(CloseRecord, (record[0], record[1] + shift, record[2], stream) + tuple(record[4:]))


def _endpoints(key: Tuple[bytes, int, bytes, int]) -> Tuple[Tuple[bytes, int], Tuple[bytes, int]]:
    """A 4-tuple as its two endpoints in a fixed order (the same for both directions)."""
    one, other = (key[0], key[1]), (key[2], key[3])
    return (one, other) if one <= other else (other, one)


_MAX_CLOSED = "more connections ended meanwhile than one reader remembers"


def _check_chunks(results: List[PieceResult], starts: List[int], max_closed: int) -> Optional[str]:
    """Why the chunks did not read the capture as one reader would, or None.

    Every segment a chunk passed over must be a connection's that an earlier chunk followed while it
    did, or come after its connection's end (no SYN among them), within one reader's memory of ended
    connections (``max_closed``); a connection a chunk started must not be on the 4-tuple of one an
    earlier chunk was following then; and every segment a chunk dropped after its connection's end
    must be one one reader still remembered.
    """
    followed: Dict[Any, List[Tuple[int, float, Optional[int]]]] = {}  # endpoints -> (chunk, until, released at)
    ended: Dict[Any, List[int]] = {}  # endpoints -> where its connections ended
    every_end: List[int] = []
    for k, result in enumerate(results):
        report = result.report
        start = starts[k]
        stopped = float("inf") if report.stopped is None else start + report.stopped
        released = {_endpoints(key): start + count for key, count in report.released}
        for key in report.continued:
            pair = _endpoints(key)
            followed.setdefault(pair, []).append((k, stopped, released.get(pair)))
        for key, count in report.retired:
            ended.setdefault(_endpoints(key), []).append(start + count)
            every_end.append(start + count)
    for ends in ended.values():
        ends.sort()
    every_end.sort()

    def forgotten(pair: Any, first: int, last: int) -> Optional[str]:
        """Why one reader would not drop the segments of ``pair`` from ``first`` to ``last`` as coming
        after its connection's end."""
        before = ended.get(pair, [])
        i = bisect_left(before, first)
        if not i:
            return "a connection whose start no chunk saw (it started before the capture, or its SYN is missing)"
        if bisect_left(every_end, last) - bisect_right(every_end, before[i - 1]) >= max_closed:
            return f"{_MAX_CLOSED} (max_closed)"
        return None

    for j, result in enumerate(results):
        start = starts[j]
        for key, count in result.report.opened:
            for k, until, released in followed.get(_endpoints(key), ()):
                if k < j and until >= start + count and (released is None or released > start + count):
                    return "a connection started on the 4-tuple of one that an earlier chunk followed"
        for key, count in result.report.absorbed:
            why = forgotten(_endpoints(key), start + count, start + count)
            if why is not None:
                return why
        for key, entry in result.report.foreign:
            pair = _endpoints(key)
            first, last, syns = start + entry[0], start + entry[1], [start + count for count in entry[2:]]
            uncovered = first
            for k, until, released in followed.get(pair, ()):
                if k < j:
                    if released is not None and released <= last:
                        return "a connection started again on the 4-tuple of one that crossed a chunk's end"
                    uncovered = max(uncovered, until + 1)
            if uncovered > last:
                continue  # all of it read by the chunk that followed the connection
            if any(count >= uncovered for count in syns):
                return "a SYN on the 4-tuple of an ended connection, passed over"
            why = forgotten(pair, uncovered, last)
            if why is not None:
                return why
    return None


def _pool_context() -> Any:
    """How the pool starts its processes: fork (a few milliseconds) from a process with one thread; from
    one with several, where fork may copy a lock another thread holds, a fork server that has imported
    this module (fork's speed after the first); spawn where neither exists."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def _failed(name: str, error: BaseException) -> PartitionError:
    return PartitionError(f"{name} failed: {type(error).__name__}: {error}")


def _chunk_name(index: int, source: Any, boundary: Optional[int]) -> str:
    """Which part of the capture a chunk is, for an error: its byte range, or its files."""
    if isinstance(source, tuple):
        path, _, start = source
        return f"chunk {index} (bytes {start} to {'the end' if boundary is None else boundary} of {path})"
    if isinstance(source, str):  # the first byte range of a file
        return f"chunk {index} (bytes 0 to {boundary} of {source})"
    return f"chunk {index} ({', '.join(source if boundary is None else source[:boundary])})"


def _describe(source: Any) -> str:
    if isinstance(source, list):
        return f"the capture set {', '.join(fspath(path) for path in source)}"
    return fspath(source)
