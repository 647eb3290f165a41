"""Captures at URLs (docs/capture.md, "Files and URLs"): fsspec's own file systems (``file://`` and the
in-memory ``memory://``) give the records of the same bytes on disk, for one file, a set, the parallel
readers and the command; a URL fsspec cannot open is an error that says so."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closecodec.capture.files import file_size, is_dir, is_url, list_dir, open_file
from closecodec.capture.records import CloseRecordReader

from helpers import ALL_CAPTURES, DATA, installed_sides, use_backend

from test_capture_sets import PACKETS, write_set

fsspec = pytest.importorskip("fsspec", reason="fsspec (the dask extra) is not installed")


def read(source: Any, side: str, **options: Any) -> Tuple[List[Any], CloseRecordReader]:
    with use_backend(side):
        reader = CloseRecordReader(source, **options)
    with reader:
        return list(reader), reader


def without_file(found: List[Any]) -> List[Tuple[Any, ...]]:
    return [tuple(record)[1:] for record in found]


def memory_folder() -> str:
    return f"memory://closecodec-{uuid.uuid4().hex}"


def test_what_is_a_url():
    assert is_url("s3://bucket/day/") and is_url("file:///tmp/x.pcap") and is_url("memory://a/b")
    assert not is_url("/tmp/x.pcap") and not is_url("C:\\captures\\x.pcap")
    assert not is_url("relative/path.pcap") and not is_url("-")


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_a_file_url_gives_the_records_of_its_path(side, name):
    path = DATA / name
    expected, one = read(str(path), side, mqtt_ports=(1883, 21883, 21885))
    found, other = read(path.as_uri(), side, mqtt_ports=(1883, 21883, 21885))
    assert without_file(found) == without_file(expected) and found
    assert {record.file for record in found} == {path.as_uri()}
    assert other.stats == one.stats and other.skipped == one.skipped


def test_a_set_in_memory_is_read_as_the_same_set_on_disk(side, tmp_path):
    packets = PACKETS["websocket-close-codes.pcap"]
    write_set(tmp_path, packets, [100, 250])
    (tmp_path / "notes.txt").write_bytes(b"not a capture")
    folder = memory_folder()
    fs = fsspec.filesystem("memory")
    for path in tmp_path.iterdir():
        fs.pipe(f"{folder}/{path.name}", path.read_bytes())
    expected, one = read([str(tmp_path)], side)
    found, other = read([folder], side)
    assert without_file(found) == without_file(expected)
    assert [Path(path).name for path in other.files] == [Path(path).name for path in one.files]
    assert all(path.startswith("memory://") for path in other.files)
    assert [(Path(path).name, why) for path, why in other.problems] == [("notes.txt", why) for _, why in one.problems]
    assert list_dir(folder) == sorted(other.files + [f"{folder}/notes.txt"], key=lambda url: url.rsplit("/", 1)[1])
    assert is_dir(folder) and not is_dir(f"{folder}/part-0.pcap")
    assert file_size(f"{folder}/part-0.pcap") == (tmp_path / "part-0.pcap").stat().st_size


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(ALL_CAPTURES), data=st.data(), side=st.sampled_from(installed_sides()))
def test_any_bytes_at_a_url_read_as_the_same_bytes_in_a_file_object(name, data, side):
    """A differential test of the URL path: the same bytes, spoiled anywhere, through fsspec and through a
    file object, give the same records and the same error."""
    whole = (DATA / name).read_bytes()
    cut = data.draw(st.integers(0, len(whole)))
    spoil = data.draw(st.lists(st.tuples(st.integers(0, max(0, cut - 1)), st.integers(0, 255)), max_size=4))
    spoiled = bytearray(whole[:cut])
    for at, value in spoil:
        if at < len(spoiled):
            spoiled[at] = value
    url = f"{memory_folder()}/trace.pcap"
    memory = fsspec.filesystem("memory")
    memory.pipe(url, bytes(spoiled))
    outcomes = []
    try:
        for source in (io.BytesIO(bytes(spoiled)), url):
            try:
                found, reader = read(source, side)
                outcomes.append((without_file(found), reader.error and str(reader.error)))
            except ValueError as error:  # a DecodeError: not a capture, or broken
                outcomes.append((type(error).__name__, str(error)))
    finally:
        memory.rm(url)
    assert outcomes[0] == outcomes[1]


def test_a_url_that_cannot_be_opened_is_an_error_that_says_so(side, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        read(f"{memory_folder()}/missing.pcap", side)
    with pytest.raises(OSError, match="nosuchprotocol"):
        read("nosuchprotocol://host/trace.pcap", side)
    with pytest.raises(OSError):
        open_file((tmp_path / "missing.pcap").as_uri())
    monkeypatch.setitem(sys.modules, "fsspec", None)  # as if fsspec were not installed
    monkeypatch.setitem(sys.modules, "fsspec.core", None)
    with pytest.raises(ImportError, match="pip install fsspec"):
        read("s3://bucket/trace.pcap", side)
    found, _ = read(str(DATA / ALL_CAPTURES[0]), side)  # paths do not need it
    assert found


@pytest.mark.processes
def test_the_parallel_readers_and_the_command_take_file_urls(tmp_path):
    from closecodec.capture.parallel import ParallelCloseRecordReader

    side = "c" if "c" in installed_sides() else "py"
    path = DATA / "websocket-close-codes.pcap"
    expected, _ = read(path.as_uri(), side)
    with use_backend(side):
        reader = ParallelCloseRecordReader(path.as_uri(), jobs=2)
        assert list(reader) == expected
    assert reader.how == "chunks"  # byte ranges, read through fsspec
    write_set(tmp_path, PACKETS["websocket-close-codes.pcap"], [100, 250])
    url = tmp_path.as_uri()
    expected, _ = read([url], side)
    with use_backend(side):
        reader = ParallelCloseRecordReader([url], jobs=2)
        assert list(reader) == expected
    assert reader.how == "chunks"
    command = [sys.executable, "-m", "closecodec", "capture", "--format", "jsonl"]
    by_url = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    by_path = subprocess.run(command + [str(tmp_path)], capture_output=True, text=True, check=True).stdout
    assert by_url.replace(url, str(tmp_path)) == by_path and by_path
    refused = subprocess.run(command + ["nosuchprotocol://x/y.pcap"], capture_output=True, text=True)
    assert refused.returncode == 2 and "nosuchprotocol" in refused.stderr and not refused.stdout


def test_the_dataframe_takes_a_file_url(side):
    dask = pytest.importorskip("dask", reason="the dask extra is not installed")
    pytest.importorskip("dask.dataframe", reason="the dask extra (Dask's DataFrame) is not installed")
    from closecodec.capture.dataframe import _frame, records_dataframe

    url = (DATA / "websocket-close-codes.pcap").as_uri()
    expected, _ = read(url, side)
    with use_backend(side):
        frame = records_dataframe(url, chunks=2)
        parts = dask.compute(*frame.to_delayed(), scheduler="sync")
    import pandas

    assert pandas.concat(parts, ignore_index=True).equals(_frame(expected))
    assert len(parts) == 2


def test_a_followed_file_written_over_ends_where_it_was_cut(tmp_path):
    """A followed file cut shorter than what was read (a ring writing over it) ends at once: its next
    bytes would be another round's, read from the middle."""
    import threading

    from closecodec.capture.files import FollowedFile

    path = tmp_path / "trace.pcap"
    path.write_bytes(b"x" * 100)
    followed = FollowedFile(str(path), threading.Event(), lambda: pytest.fail("asked whether the ring went on"))
    buffer = bytearray(200)
    assert followed.readinto(buffer) == 100
    path.write_bytes(b"y" * 10)  # truncated in place, then written: the same inode
    assert followed.readinto(buffer) == 0
    followed.close()
