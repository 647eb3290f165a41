"""The close records of a capture as a Dask DataFrame, read in chunks as Dask tasks (docs/scale.md).

Needs the dask extra (``pip install 'closecodec[dask]'``: Dask's DataFrame, pandas and
pyarrow). Importing this module does not import Dask; :func:`records_dataframe` does.

The graph has, for each chunk in time (as :class:`~closecodec.capture.parallel.ParallelCloseRecordReader`
cuts the capture): a task that reads it; a task that puts its records in one reader's
terms (stream and frame numbers) and splits them by the chunk of packets during which one
reader makes each; and a task that makes the partition: the records one reader makes while
it reads the chunk's packets, in its order. One task between them collects what every chunk
saw and checks, as the process pool's merge does, that the chunks read the capture as one
reader would.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from os import PathLike
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .arrow import record_batches, schema
from .parallel import (_AT_END, ParallelCloseRecordReader, PieceResult, _chunk_shifts, _chunk_starts, _chunks_fail,
                       _first, _positioned, _stream_numbers, read_chunk)
from .records import CloseRecord, CloseRecordReader

__all__ = ["records_dataframe"]


def records_dataframe(source: Union[str, "PathLike[str]", Sequence[Any]], /, *, chunks: Optional[int] = None,
                      **options: Any) -> Any:
    """The close records of a capture (a path, or a list of paths: a set) as a lazy ``dask.dataframe``.

    Its columns are :data:`~closecodec.capture.arrow.COLUMNS`, with pyarrow types
    (``pandas.ArrowDtype``). Its rows are one :class:`~closecodec.capture.records.CloseRecordReader`'s
    records, in its order, with its stream and frame numbers; partition ``k`` holds those one reader
    makes while it reads the packets of chunk ``k``. The records are read when it is computed, on the
    Dask scheduler in use (a ``distributed.Client``'s cluster, whose workers must see the files). Making
    it takes a first look here, to cut the chunks (a file's header and a search at each cut, or each
    file's first packet), so this process must see the files too.

    Args:
        chunks: how many chunks in time to cut the capture into (by default the Dask client's worker
            threads, else this machine's cores). A capture that cannot be cut in time (a pcapng file,
            a set of one file) is one partition, read by one reader.
        options: keyword options of :class:`~closecodec.capture.records.CloseRecordReader`.

    When the chunks cannot give one reader's records (the checks of
    :class:`~closecodec.capture.parallel.ParallelCloseRecordReader`: a broken structure, a
    connection limit, connections the cut separates from their start), the first partition is read by
    one reader and holds every record; a broken structure then fails the computation with
    :class:`~closecodec.errors.MalformedError`, as one reader raises it after its records. A truncated
    file's records up to the cut are rows; the truncation itself, and the files of a set left out, are
    not in the DataFrame (:class:`~closecodec.capture.parallel.ParallelCloseRecordReader` has them).

    Raises:
        ImportError: Dask's DataFrame (the dask extra) is not installed.
        ValueError, TypeError, OSError: as ``ParallelCloseRecordReader`` raises them.
    """
    try:
        import dask
        import dask.dataframe as dd
    except ImportError:
        raise ImportError("a Dask DataFrame of the records needs the dask extra: "
                          "pip install 'closecodec[dask]'") from None
    client = _default_client()
    reader = ParallelCloseRecordReader(source, jobs=chunks, client=client, **options)
    source = reader._source
    plan = reader._plan() if reader.jobs > 1 else None
    meta = _frame([])
    if plan is None:
        part = dask.delayed(_one_reader, pure=False)(source, options)
        return dd.from_delayed([part], meta=meta, verify_meta=False)
    sources, boundaries, _, _ = plan
    count = len(sources)
    single = isinstance(source, str)  # byte ranges of one file (a directory is a list by now)
    pieces = [dask.delayed(read_chunk, pure=False)(sources[k], k, boundaries[k], options) for k in range(count)]
    summaries = [dask.delayed(_summary)(piece) for piece in pieces]
    merge = dask.delayed(_MergePlan)(summaries, single, options)
    # split[j][k]: chunk j's records for partition k (empty for k < j), so that each partition gets its own.
    split = [dask.delayed(_split, nout=count)(pieces[k], merge, k, count) for k in range(count)]
    parts = [dask.delayed(_partition)(merge, k, source, options, *[split[j][k] for j in range(k + 1)])
             for k in range(count)]
    return dd.from_delayed(parts, meta=meta, verify_meta=False)


def _default_client() -> Any:
    """The default ``distributed.Client``, or None (none made, or distributed not installed)."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


class _MergePlan:
    """What every chunk saw, put together: whether the chunks read the capture as one reader would
    (``why`` not, else None), and each chunk's first packet, frame shift and stream numbers."""

    def __init__(self, summaries: List[PieceResult], single: bool, options: Dict[str, Any]) -> None:
        self.why = _chunks_fail(summaries, options)
        self.starts = _chunk_starts(summaries) if self.why is None else []
        self.shifts = _chunk_shifts(self.starts, single)
        self.streams = _stream_numbers(summaries, self.starts[:-1]) if self.why is None else []


def _summary(piece: PieceResult) -> PieceResult:
    """A chunk's result without its records: what the merge plan needs."""
    summary = PieceResult.__new__(PieceResult)
    for name in PieceResult.__slots__:
        setattr(summary, name, [] if name in ("records", "order") else getattr(piece, name))
    return summary


def _split(piece: PieceResult, plan: _MergePlan, k: int, count: int) -> Tuple[List[Tuple[int, CloseRecord]], ...]:
    """Chunk ``k``'s records, numbered as one reader's and placed where it makes them, by partition: its
    own (made during its packets), and those made while it followed its connections past its end into
    later chunks' packets (or at the end of the capture: the last partition's)."""
    out: List[List[Tuple[int, CloseRecord]]] = [[] for _ in range(count)]
    if plan.why is None:
        for item in _positioned(piece, plan.starts[k], plan.shifts[k], plan.streams[k]):
            out[count - 1 if item[0] >= _AT_END else min(bisect_left(plan.starts, item[0]) - 1, count - 1)].append(item)
    return tuple(out)


def _partition(plan: _MergePlan, k: int, source: Any, options: Dict[str, Any],
               *made: List[Tuple[int, CloseRecord]]) -> Any:
    """Partition ``k``: what chunks ``0..k`` made during chunk ``k``'s packets, merged in one reader's order;
    when the chunks cannot be used, one reader's records in the first."""
    if plan.why is not None:
        return _one_reader(source, options) if k == 0 else _frame([])
    return _frame([record for _, record in heapq.merge(*made, key=_first)])


def _one_reader(source: Any, options: Dict[str, Any]) -> Any:
    with CloseRecordReader(source, **options) as reader:
        return _frame(list(reader))


def _frame(records: List[CloseRecord]) -> Any:
    """Records as a pandas DataFrame of :data:`~closecodec.capture.arrow.COLUMNS`, with pyarrow types."""
    import pandas
    import pyarrow

    table = pyarrow.Table.from_batches(list(record_batches(records)), schema=schema())
    return table.to_pandas(types_mapper=pandas.ArrowDtype)
