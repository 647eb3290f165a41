"""Close records as Arrow record batches and Parquet datasets (closecodec.capture.arrow, --format parquet):
the same rows as JSON lines, with real types, read back by pyarrow and by DuckDB."""

from __future__ import annotations

import io
import json
from typing import Any, Dict, List

import pytest

from closecodec.capture.arrow import COLUMNS, PARQUET_FILE, record_batches, write_parquet
from closecodec.capture.records import CloseRecordReader
from closecodec.cli import main

from helpers import ALL_CAPTURES, DATA, use_backend

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (the test extra installs it)")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed (the test extra installs it)")


def json_rows(table: Any) -> List[Dict[str, Any]]:
    """A table's rows in the JSON lines form: ``time`` (ns, read exactly) as seconds and ``time_ns``,
    the properties parsed."""
    index = table.schema.get_field_index("time")
    table = table.set_column(index, "time", table.column("time").cast(pa.int64()))
    rows = []
    for row in table.to_pylist():
        row["time_ns"] = row["time"]
        row["time"] = row["time_ns"] / 1e9
        row["properties"] = None if row["properties"] is None else json.loads(row["properties"])
        rows.append(row)
    return rows


def records(name: str, side: str = "c") -> List[Any]:
    with use_backend(side):
        reader = CloseRecordReader(DATA / name)
    with reader:
        return list(reader)


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_record_batches_are_the_json_lines_rows_with_real_types(side, name):
    found = records(name, side)
    batches = list(record_batches(found, batch_size=7))
    assert [batch.num_rows for batch in batches[:-1]] == [7] * (len(batches) - 1)
    table = pa.Table.from_batches(batches)
    assert table.schema.names == [column for column, _ in COLUMNS]
    assert str(table.schema.field("time").type) == "timestamp[ns, tz=UTC]"
    assert str(table.schema.field("code").type) == "int32" and str(table.schema.field("frame").type) == "int64"
    rows = json_rows(table)
    assert len(rows) == len(found)
    for row, record in zip(rows, found):
        assert row == record.to_dict()


def test_a_parquet_dataset_reads_back_with_pyarrow_and_duckdb(tmp_path):
    found = records("mqtt5-session-takeover.pcapng")
    folder = tmp_path / "closes"
    assert write_parquet(found, folder) == len(found)
    assert sorted(p.name for p in folder.iterdir()) == [PARQUET_FILE]
    assert json_rows(pq.read_table(folder)) == [r.to_dict() for r in found]
    duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed (the test extra installs it)")
    counts = duckdb.sql(f"select protocol, count(*) from read_parquet('{folder}/*.parquet') group by protocol "
                        "order by protocol").fetchall()
    assert counts == sorted((p, sum(r.protocol == p for r in found)) for p in {r.protocol for r in found})
    nulls = duckdb.sql(f"select count(*) from read_parquet('{folder}/*.parquet') where code is null").fetchall()
    assert nulls == [(sum(r.code is None for r in found),)]
    # The dataset goes to a new or empty directory.
    with pytest.raises(FileExistsError):
        write_parquet(found, folder)
    # No record: a valid, empty dataset.
    assert write_parquet([], tmp_path / "empty") == 0
    assert pq.read_table(tmp_path / "empty").num_rows == 0


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError):
        list(record_batches([], batch_size=0))


def run(*argv: Any) -> Any:
    out, err = io.StringIO(), io.StringIO()
    return main(["capture", *map(str, argv)], out=out, stdin=io.StringIO(), err=err), out.getvalue(), err.getvalue()


def test_format_parquet_on_the_command_line(tmp_path):
    path = DATA / "websocket-close-codes.pcap"
    status, out, err = run(path, "--format", "parquet", "--output", tmp_path / "closes")
    assert (status, out) == (0, "") and "wrote 68 records" in err
    status, lines, _ = run(path, "--format", "jsonl")
    assert json_rows(pq.read_table(tmp_path / "closes")) == [json.loads(line) for line in lines.splitlines()]
    for argv in (["--format", "parquet"], ["--output", tmp_path / "x"], ["--format", "parquet", "--summary",
                                                                         "--output", tmp_path / "y"]):
        status, _, err = run(path, *argv)
        assert status == 2 and err
    status, _, err = run(path, "--format", "parquet", "--output", tmp_path / "closes")  # not empty
    assert status == 2 and "holds files" in err
