"""Close records as Arrow record batches and Parquet files, with real types (docs/capture.md, "Parquet").

Needs pyarrow, an optional dependency: ``pip install 'closecodec[parquet]'``.
Importing this module does not import pyarrow; the functions do, and raise
:class:`ImportError` with that advice when it is missing.

The columns are :data:`COLUMNS`: the JSON lines fields, with ``time`` a UTC
timestamp in nanoseconds (``time_ns`` exactly), codes and numbers as integers,
null where a field does not apply, and ``properties`` as JSON text (MQTT 5
properties hold values of several types).
"""

from __future__ import annotations

import json
import os
from os import PathLike
from typing import Any, Iterable, Iterator, List, Tuple, Union

__all__ = ["COLUMNS", "PARQUET_FILE", "ParquetDataset", "record_batches", "schema", "write_parquet"]

#: Each column's name and Arrow type (as ``pyarrow``'s factory and its arguments), in order.
COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("file", "string"),
    ("frame", "int64"),
    ("time", "timestamp[ns, tz=UTC]"),
    ("stream", "int64"),
    ("src", "string"),
    ("dst", "string"),
    ("direction", "string"),
    ("protocol", "string"),
    ("kind", "string"),
    ("code", "int32"),
    ("name", "string"),
    ("reason", "string"),
    ("session_id", "string"),
    ("close_reason", "string"),
    ("client_id", "string"),
    ("mqtt_version", "int8"),
    ("properties", "string"),
    ("application", "string"),
    ("detection", "string"),
    ("data_lost", "bool"),
)
#: The name of the file ``write_parquet`` writes in its dataset directory.
PARQUET_FILE = "part-00000.parquet"
_BATCH = 65536


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise ImportError("Arrow and Parquet output needs pyarrow: pip install 'closecodec[parquet]'") from None
    return pyarrow


def schema() -> Any:
    """The Arrow schema of :data:`COLUMNS` (every column nullable, as Parquet readers expect)."""
    pa = _pyarrow()
    types = {"string": pa.string(), "int64": pa.int64(), "int32": pa.int32(), "int8": pa.int8(),
             "bool": pa.bool_(), "timestamp[ns, tz=UTC]": pa.timestamp("ns", tz="UTC")}
    return pa.schema([(name, types[kind]) for name, kind in COLUMNS])


def _row(record: Any) -> Tuple[Any, ...]:
    properties = record.to_dict()["properties"] if record.protocol == "mqtt" else None
    return (record.file, record.frame, record.timestamp_ns, record.stream, record.src, record.dst,
            record.direction, record.protocol, record.kind, record.code, record.name, record.reason,
            record.session_id, record.close_reason, record.client_id, record.mqtt_version,
            None if properties is None else json.dumps(properties, ensure_ascii=False), record.application,
            record.detection, record.data_lost)


def record_batches(records: Iterable[Any], batch_size: int = _BATCH) -> Iterator[Any]:
    """The close records as ``pyarrow.RecordBatch`` values of at most ``batch_size`` rows, lazily.

    Raises:
        ImportError: pyarrow is not installed.
        ValueError: ``batch_size`` is not a positive int.
    """
    if type(batch_size) is not int or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
    pa = _pyarrow()
    arrow_schema = schema()
    rows: List[Tuple[Any, ...]] = []
    for record in records:
        rows.append(_row(record))
        if len(rows) >= batch_size:
            yield _batch(pa, arrow_schema, rows)
            rows = []
    if rows:
        yield _batch(pa, arrow_schema, rows)


def _batch(pa: Any, arrow_schema: Any, rows: List[Tuple[Any, ...]]) -> Any:
    columns = list(zip(*rows))
    return pa.RecordBatch.from_arrays(
        [pa.array(column, type=field.type) for column, field in zip(columns, arrow_schema)], schema=arrow_schema)


class ParquetDataset:
    """A Parquet dataset being written: the directory ``path`` (made if need be; it must hold no file
    yet) with one file, :data:`PARQUET_FILE`, written a batch at a time as records are added.

    DuckDB reads it as ``read_parquet('PATH/*.parquet')``, pandas and Polars as ``read_parquet(PATH)``.
    Use it as a context manager, or call :meth:`close` (the file is whole only then).

    Raises:
        ImportError: pyarrow is not installed.
        FileExistsError: ``path`` is a file, or a directory that already holds files.
        OSError: it cannot be written.
    """

    def __init__(self, path: Union[str, "PathLike[str]"]) -> None:
        self._pa = _pyarrow()
        import pyarrow.parquet as pq

        folder = os.fspath(path)
        if os.path.exists(folder) and (not os.path.isdir(folder) or os.listdir(folder)):
            raise FileExistsError(f"{folder} is a file, or a directory that holds files already: "
                                  "the dataset is written to a new or empty directory")
        os.makedirs(folder, exist_ok=True)
        self.path = folder
        self.rows = 0
        self._schema = schema()
        self._writer = pq.ParquetWriter(os.path.join(folder, PARQUET_FILE), self._schema)
        self._waiting: List[Tuple[Any, ...]] = []

    def add(self, record: Any) -> None:
        """Add one close record."""
        self._waiting.append(_row(record))
        if len(self._waiting) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._waiting:
            self._writer.write_batch(_batch(self._pa, self._schema, self._waiting))
            self.rows += len(self._waiting)
            self._waiting = []

    def close(self) -> int:
        """Write what is waiting and finish the file; return the rows written."""
        if self._writer is not None:
            self._flush()
            if not self.rows:
                self._writer.write_table(self._pa.Table.from_batches([], schema=self._schema))
            self._writer.close()
            self._writer = None
        return self.rows

    def __enter__(self) -> "ParquetDataset":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_parquet(records: Iterable[Any], path: Union[str, "PathLike[str]"]) -> int:
    """Write the close records as a :class:`ParquetDataset` at ``path``; return the rows written."""
    with ParquetDataset(path) as dataset:
        for record in records:
            dataset.add(record)
    return dataset.rows
