"""Parallel reading (docs/scale.md): chunks in time (a set's files in groups, a pcap file in byte ranges)
and partitions of the connections, in a process pool or on a real Dask LocalCluster, give exactly one
reader's records (order, stream numbers, file and frame), counters and errors, on both backends; a
process that dies is run again, a piece that fails for good is named.
"""

from __future__ import annotations

import enum
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from collections import Counter
from typing import Any, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closecodec.capture import partition_of
from closecodec.capture.parallel import ParallelCloseRecordReader, PartitionError, find_record, read_chunk
from closecodec.capture.records import CloseRecordReader

from helpers import (A4, ACK, ALL_CAPTURES, B4, DATA, FIN, MASK, SYN, Capture, Flow, generate_capture, installed_sides,
                     pcap_file, upgrade, use_backend, ws)

from test_capture_sets import PACKETS, write_set


# Tests marked ``processes`` start a process pool or a Dask cluster; the sanitizer run leaves them out
# (scripts/sanitizers.sh), the tests below them run the same readers in this process.


def serial(source: Any, side: str, **options: Any) -> Tuple[List[Any], CloseRecordReader]:
    with use_backend(side):
        reader = CloseRecordReader(source, **options)
    with reader:
        return list(reader), reader


def parallel(source: Any, side: str, **options: Any) -> Tuple[List[Any], ParallelCloseRecordReader]:
    # The pool forks only from a process with one thread; from a fork server, the side would not carry over.
    assert threading.active_count() == 1, [thread.name for thread in threading.enumerate()]
    with use_backend(side):  # the pool's processes start (fork) inside the block, on this side
        reader = ParallelCloseRecordReader(source, **options)
        return list(reader), reader


def assert_same(source: Any, side: str, jobs: int, how: str = "chunks", **options: Any) -> ParallelCloseRecordReader:
    expected, one = serial(source, side, **options)
    found, many = parallel(source, side, jobs=jobs, **options)
    assert found == expected
    assert [record.stream for record in found] == [record.stream for record in expected]
    assert many.stats == one.stats
    assert many.skipped == one.skipped
    assert many.errors == one.errors
    assert (many.files, many.problems, many.frames) == (one.files, one.problems, one.frames)
    assert many.how == how, many.why
    return many


@pytest.mark.processes
@pytest.mark.parametrize("jobs", [2, 3, 7])
@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_the_shared_captures_in_chunks_are_one_readers(side, name, jobs):
    how = "chunks" if name.endswith(".pcap") else "partitions"  # pcapng files are not cut in byte ranges
    assert_same(str(DATA / name), side, jobs, how, mqtt_ports=(1883, 21883, 21885))


@pytest.fixture(scope="module")
def traffic(tmp_path_factory) -> Tuple[Path, Path]:
    """The benchmark's traffic (300 connections open at a time), whole and with its handshakes cut."""
    folder = tmp_path_factory.mktemp("traffic")
    whole, cut = folder / "whole.pcap", folder / "cut.pcap"
    generate_capture(whole, 3_000_000)
    generate_capture(cut, 3_000_000, handshakes=False)
    return whole, cut


@pytest.mark.processes
@pytest.mark.parametrize("jobs", [2, 5])
def test_the_benchmark_traffic_in_chunks_is_one_readers(side, traffic, jobs):
    whole, cut = traffic
    assert_same(str(whole), side, jobs)
    # Connections that start without a SYN after the first chunk: no chunk can tell them from ones that
    # started before it, so the capture is read in partitions.
    many = assert_same(str(cut), side, jobs, "partitions")
    assert "start no chunk saw" in many.why


@pytest.mark.processes
def test_a_rotated_set_in_chunks_is_one_readers(side, tmp_path):
    name = "websocket-close-codes.pcap"
    write_set(tmp_path, PACKETS[name], [40, 41, 200, 333])
    paths = sorted(str(path) for path in tmp_path.iterdir())
    assert_same(paths, side, 3)
    assert_same([str(tmp_path)], side, 2)  # a directory: its capture files


@pytest.mark.processes
def test_bad_and_empty_files_of_a_set_are_named_as_one_reader_names_them(side, tmp_path):
    packets = PACKETS["websocket-close-codes.pcap"]
    write_set(tmp_path, packets, [150])
    (tmp_path / "empty.pcap").write_bytes(pcap_file([]))
    (tmp_path / "garbage.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + os.urandom(200))
    whole = (tmp_path / "part-1.pcap").read_bytes()
    (tmp_path / "part-1.pcap").write_bytes(whole[:-7])  # truncated inside its last record
    paths = sorted(str(path) for path in tmp_path.iterdir())
    many = assert_same(paths, side, 2)
    named = {Path(path).name for path, _ in many.problems}
    assert named == {"empty.pcap", "garbage.pcap", "part-1.pcap"}


@pytest.mark.processes
def test_a_run_that_may_reach_a_connection_limit_is_read_again_by_one_reader(side, traffic):
    many = assert_same(str(traffic[0]), side, 2, "one reader", max_connections=200)
    assert "connection limit" in many.why


@pytest.mark.processes
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), size=st.integers(20_000, 200_000), handshakes=st.booleans(),
       jobs=st.integers(2, 6), side=st.sampled_from(installed_sides()))
def test_any_cutting_of_any_traffic_is_one_readers(tmp_path, seed, size, handshakes, jobs, side):
    path = tmp_path / f"traffic-{seed}-{size}-{handshakes}.pcap"
    generate_capture(path, size, seed=seed, handshakes=handshakes)
    many = assert_same(str(path), side, jobs, "chunks" if handshakes else "partitions")
    if not handshakes:
        assert "start no chunk saw" in many.why


@pytest.mark.processes
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(ALL_CAPTURES), data=st.data(), side=st.sampled_from(installed_sides()))
def test_chunks_cut_anywhere_are_one_readers(tmp_path_factory, name, data, side):
    """A set cut at any packets (inside a close frame's segments, a reassembly gap, a handshake...), a
    chunk per file: the records of one reader, or (where the cut leaves a connection whose start no
    chunk saw) those of the partitions."""
    packets = PACKETS[name]
    cuts = data.draw(st.lists(st.integers(1, len(packets) - 1), min_size=1, max_size=4, unique=True))
    # Tight limits too: one reader then evicts, skips holes, forgets ended connections; the pieces must not
    # differ from it without noticing.
    limits = data.draw(st.fixed_dictionaries({}, optional={"max_closed": st.sampled_from([1, 3]),
                                                          "max_connections": st.sampled_from([1, 2]),
                                                          "max_buffer_total": st.sampled_from([100, 3000])}))
    folder = tmp_path_factory.mktemp("cut")
    write_set(folder, packets, cuts)
    paths = sorted(str(path) for path in folder.iterdir())
    expected, one = serial(paths, side, mqtt_ports=(1883, 21883, 21885), **limits)
    found, many = parallel(paths, side, jobs=len(paths), mqtt_ports=(1883, 21883, 21885), **limits)
    assert found == expected
    assert many.stats == one.stats and many.errors == one.errors and many.problems == one.problems
    assert many.how in ("chunks", "partitions", "one reader")


@pytest.mark.processes
def test_files_that_overlap_in_time_or_tie_at_the_cut_are_not_chunked(side, tmp_path):
    packets = PACKETS["websocket-close-codes.pcap"]
    (tmp_path / "even.pcap").write_bytes(pcap_file(packets[0::2], nano=True))
    (tmp_path / "odd.pcap").write_bytes(pcap_file(packets[1::2], nano=True))
    many = assert_same(sorted(str(path) for path in tmp_path.iterdir()), side, 2, "partitions")
    assert "overlap" in many.why
    # A tie: the second file's first packet at the first's last packet's time, and listed first, so that
    # one reader takes it first.
    cut = 200
    later = [(packets[cut - 1][0],) + tuple(packets[cut][1:])] + packets[cut + 1:]
    (tmp_path / "b-later.pcap").write_bytes(pcap_file(later, nano=True))
    (tmp_path / "c-earlier.pcap").write_bytes(pcap_file(packets[:cut], nano=True))
    assert_same([str(tmp_path / "b-later.pcap"), str(tmp_path / "c-earlier.pcap")], side, 2, "partitions")


@pytest.mark.processes
@pytest.mark.parametrize("client_spoke", [True, False])
def test_a_syn_after_the_cut_for_a_connection_followed_across_it(side, tmp_path, client_spoke):
    """A connection seen first from its SYN+ACK (the client's SYN not captured) is open at the cut; after it,
    the client's SYN comes again: one reader takes it into that connection (the lane of a direction not yet
    started takes it without Python, when the client has not spoken), and the next chunk must not start a
    connection of its own there."""
    made = Capture()
    client, server = (A4, 50000), (B4, 8080)
    request, response = upgrade()
    made.add(server, client, 700000, SYN | ACK)
    if client_spoke:
        made.add(client, server, 1001, ACK, request)
    made.add(server, client, 700001, ACK, response)
    before = len(made.packets)
    made.add(client, server, 1000, SYN)
    made.add(client, server, 1001 + len(request), ACK, ws(8, b"\x03\xe8", mask=MASK))
    made.add(server, client, 700001 + len(response), ACK | FIN, ws(8, b"\x03\xe8"))
    write_set(tmp_path, made.packets, [before])
    paths = sorted(str(path) for path in tmp_path.iterdir())
    expected, one = serial(paths, side)
    found, many = parallel(paths, side, jobs=2)
    assert found == expected and many.stats == one.stats
    assert many.how == "partitions", "the chunks were taken"


@pytest.mark.processes
def test_a_file_cut_short_before_a_chunk_boundary_is_read_as_one_reader_reads_it(side, tmp_path):
    data = bytearray((DATA / "websocket-close-codes.pcap").read_bytes())
    pos = 24
    for _ in range(100):  # a record a quarter of the way in: its captured length now runs past the end
        pos += 16 + int.from_bytes(data[pos + 8:pos + 12], "little")
    data[pos + 8:pos + 12] = (len(data) + 1000).to_bytes(4, "little")
    data[pos + 12:pos + 16] = (len(data) + 1000).to_bytes(4, "little")
    path = tmp_path / "cut.pcap"
    path.write_bytes(bytes(data))
    many = assert_same(str(path), side, 2, "partitions")
    assert many.error is not None and "boundary" in many.why


@given(src=st.binary(min_size=4, max_size=4) | st.binary(min_size=16, max_size=16),
       ports=st.tuples(st.integers(0, 65535), st.integers(0, 65535)), count=st.integers(1, 64))
def test_a_connections_partition_is_the_same_both_ways(src, ports, count):
    dst = bytes(reversed(src))
    one = partition_of(src, ports[0], dst, ports[1], count)
    assert one == partition_of(dst, ports[1], src, ports[0], count)
    assert 0 <= one < count


class Port(enum.IntEnum):
    HTTP = 80


@pytest.mark.parametrize("args, error", [
    ((bytearray(b"\x0a\0\0\1"), 1, b"\x0a\0\0\2", 2, 4), TypeError),
    ((b"\x0a\0\0\1", 1.0, b"\x0a\0\0\2", 2, 4), TypeError),
    ((b"\x0a\0\0\1", 1, b"\x0a\0\0\2", True, 4), TypeError),
    ((b"\x0a\0\0\1", 1, b"\x0a\0\0\2", 2, 4.0), TypeError),
    ((b"\x0a\0\0\1", 1, "10.0.0.2", 2, 4), TypeError),
    ((b"\x0a\0\0\1", 65536, b"\x0a\0\0\2", 2, 4), ValueError),
    ((b"\x0a\0\0\1", 1, b"\x0a\0\0\2", -1, 4), ValueError),
    ((b"\x0a\0\0\1", 1, b"\x0a\0\0\2", 2, 0), ValueError),
    ((b"\x0a\0\0\1", Port.HTTP, b"\x0a\0\0\2", 2, 4), TypeError),  # an int subclass: not hashed two ways
])
def test_partition_of_refuses_what_is_not_a_connection(args, error):
    """The same errors compiled and interpreted (the annotations once converted a float port compiled, and
    refused a bytearray; interpreted, the reverse): CI's pure install runs this too."""
    with pytest.raises(error):
        partition_of(*args)


def test_partition_of_takes_the_ports_at_their_ends():
    assert 0 <= partition_of(b"\x0a\0\0\1", 0, b"\x0a\0\0\2", 65535, 7) < 7


def test_the_loops_take_exactly_their_partitions_segments(capture):
    """Each backend's loop lets through a segment exactly when partition_of puts its connection there."""
    rng = random.Random(5)
    made = Capture()
    for n in range(60):
        addresses = (bytes(rng.randrange(256) for _ in range(4)), bytes(rng.randrange(256) for _ in range(4)))
        if n % 3 == 0:
            addresses = (bytes(rng.randrange(256) for _ in range(16)), bytes(rng.randrange(256) for _ in range(16)))
        flow = Flow(made, client_port=rng.randrange(1024, 65536), server_port=rng.randrange(1, 1024),
                    addresses=addresses)
        flow.send(0, ws(1, b"x", mask=b"abcd"))
    every = list(capture.SegmentLoop(capture.PacketReader(made.file()), Counter(), None))
    assert len(every) == 60 * 4
    for index in range(3):
        loop = capture.SegmentLoop(capture.PacketReader(made.file()), Counter(), None, (index, 3))
        mine = [item[1] for item in every
                if partition_of(item[3].src, item[3].src_port, item[3].dst, item[3].dst_port, 3) == index]
        assert [item[1] for item in loop] == mine
        assert 0 < len(mine) < len(every)


@pytest.fixture(scope="module")
def big_traffic(tmp_path_factory) -> Path:
    """Traffic that keeps each of two pool processes busy for a while on the pure backend, so that a kill
    lands while they run."""
    path = tmp_path_factory.mktemp("big") / "traffic.pcap"
    generate_capture(path, 60_000_000)
    return path


# Kills the first process of the pool of the process whose pid it is given (its children with the same
# command line: forked), then exits. A process, not a thread: with a thread beside it, the pool would not fork.
KILLER = """
import os, signal, sys, time
parent = sys.argv[1]
with open(f"/proc/{parent}/cmdline", "rb") as file:
    command = file.read()
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = stat.read().rsplit(")", 1)[1].split()[1]
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                same = file.read() == command
        except (OSError, IndexError):
            continue
        if ppid == parent and same:
            os.kill(int(entry), signal.SIGKILL)
            print("killed", entry, flush=True)
            sys.exit(0)
    time.sleep(0.002)
sys.exit(1)
"""


def read_while_a_process_is_killed(reader: ParallelCloseRecordReader) -> Tuple[List[Any], Any]:
    """Read ``reader`` while a killer process kills one of its pool's processes: the records, or the error."""
    killer = subprocess.Popen([sys.executable, "-c", KILLER, str(os.getpid())], stdout=subprocess.PIPE, text=True)
    try:
        return list(reader), None
    except PartitionError as error:
        return [], error
    finally:
        killer.wait(timeout=60)
        assert killer.stdout is not None and killer.stdout.read().startswith("killed"), "no process was killed"


@pytest.mark.processes
def test_a_process_that_dies_is_run_again(big_traffic):
    """The pure backend: one pool process is killed while the pieces run; its pieces run again in a new
    pool and the records are still one reader's."""
    expected, _ = serial(str(big_traffic), "py")
    with use_backend("py"):
        reader = ParallelCloseRecordReader(str(big_traffic), jobs=2)
        found, error = read_while_a_process_is_killed(reader)
    assert error is None
    assert reader.rerun, "no piece was run again"
    assert found == expected


@pytest.mark.processes
def test_a_chunk_that_fails_for_good_names_its_byte_range(big_traffic):
    """No retries: the piece whose process is killed fails the run, named by its bytes; nothing is yielded."""
    with use_backend("py"):
        reader = ParallelCloseRecordReader(str(big_traffic), jobs=2, retries=0)
        found, error = read_while_a_process_is_killed(reader)
    assert not found
    assert re.match(rf"chunk [01] \(bytes \d+ to (\d+|the end) of {re.escape(str(big_traffic))}\) failed: "
                    r"(BrokenProcessPool|OSError)", str(error))


def test_a_missing_file_or_a_bad_option_is_an_error_at_once(tmp_path):
    with pytest.raises(FileNotFoundError):
        ParallelCloseRecordReader(str(tmp_path / "gone.pcap"), jobs=2)
    with pytest.raises(ValueError):
        ParallelCloseRecordReader(str(DATA / ALL_CAPTURES[0]), jobs=2, decode_as={80: "gopher"})


def test_the_chunks_read_here_report_what_the_merge_needs(side, tmp_path):
    """Two chunks of a rotated set read in this process (as each process of a run reads its own):
    the first follows its open connections past the boundary until they end; the second passes over
    their segments, which the first covered, so the merge takes the chunks; their records, put
    together, are one reader's."""
    write_set(tmp_path, PACKETS["websocket-close-codes.pcap"], [200])
    paths = sorted(str(path) for path in tmp_path.iterdir())
    with use_backend(side):
        first = read_chunk(paths, 0, 1, {})
        second = read_chunk(paths[1:], 1, None, {})
    assert first.report.continued and first.report.stopped is not None
    assert first.report.stopped > first.report.packets  # it read past its end
    followed = {tuple(sorted([(key[0], key[1]), (key[2], key[3])])) for key in first.report.continued}
    passed_over = {tuple(sorted([(key[0], key[1]), (key[2], key[3])])) for key, _ in second.report.foreign}
    assert passed_over and passed_over <= followed
    assert first.report.unsure is None and second.report.unsure is None
    expected, _ = serial(paths, side)
    found = sorted((r.file, r.frame, r.kind, r.code) for r in first.records + second.records)
    assert found == sorted((r.file, r.frame, r.kind, r.code) for r in expected)  # stream numbers aside


def test_find_record_finds_the_records_of_a_pcap_from_any_offset():
    data = (DATA / "websocket-close-codes.pcap").read_bytes()
    starts, pos = set(), 24
    while pos < len(data):
        starts.add(pos)
        pos += 16 + int.from_bytes(data[pos + 8:pos + 12], "little")
    snaplen = int.from_bytes(data[16:20], "little")
    for at in range(24, len(data), 97):
        found = find_record(data, at, "<", False, snaplen, True)
        assert found == min((start for start in starts if start >= at), default=None)


def test_only_files_can_be_read_in_parallel():
    with pytest.raises(ValueError, match="not standard input"):
        ParallelCloseRecordReader("-", jobs=2)
    with pytest.raises(ValueError, match="jobs"):
        ParallelCloseRecordReader(str(DATA / ALL_CAPTURES[0]), jobs=0)


# -- a real Dask cluster ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed", reason="the dask extra (distributed) is not installed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.processes
@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_a_local_cluster_gives_one_readers_records(dask_client, name):
    expected, one = serial(str(DATA / name), "c" if "c" in installed_sides() else "py")
    reader = ParallelCloseRecordReader(str(DATA / name), client=dask_client)
    assert reader.jobs == 2
    assert list(reader) == expected
    assert reader.stats == one.stats


@pytest.mark.processes
def test_a_local_cluster_reads_the_benchmark_traffic_and_sets(dask_client, traffic, tmp_path):
    side = "c" if "c" in installed_sides() else "py"
    for path in traffic:
        expected, _ = serial(str(path), side)
        assert list(ParallelCloseRecordReader(str(path), client=dask_client, jobs=3)) == expected
    write_set(tmp_path, PACKETS["mqtt5-session-takeover.pcapng"], [10, 90])
    paths = sorted(str(path) for path in tmp_path.iterdir())
    expected, _ = serial(paths, side)
    assert list(ParallelCloseRecordReader(paths, client=dask_client)) == expected


@pytest.mark.processes
def test_a_dask_worker_killed_during_its_task_is_retried(dask_client, tmp_path):
    path = tmp_path / "traffic.pcap"
    generate_capture(path, 6_000_000)
    side = "c" if "c" in installed_sides() else "py"
    expected, _ = serial(str(path), side)
    pids = list(dask_client.run(os.getpid).values())
    found: List[Any] = []
    reader = ParallelCloseRecordReader(str(path), client=dask_client, jobs=4)
    worker = threading.Thread(target=lambda: found.extend(reader))
    worker.start()
    while worker.is_alive() and not any(dask_client.processing().values()):
        time.sleep(0.005)
    os.kill(pids[0], signal.SIGKILL)
    worker.join()
    assert found == expected
    dask_client.wait_for_workers(2, timeout=60)


@pytest.mark.processes
def test_the_command_with_jobs_and_a_local_cluster(tmp_path, traffic):
    pytest.importorskip("distributed", reason="the dask extra (distributed) is not installed")
    path = str(traffic[0])
    command = [sys.executable, "-m", "closecodec", "capture", "--format", "jsonl", path]
    one = subprocess.run(command + ["--jobs", "1"], capture_output=True, text=True, check=True).stdout
    two = subprocess.run(command + ["--jobs", "2"], capture_output=True, text=True, check=True).stdout
    dask = subprocess.run(command + ["--dask", "local", "--jobs", "2"], capture_output=True, text=True, check=True)
    assert one and two == one and dask.stdout == one
    assert len(one.splitlines()) == len([json.loads(line) for line in one.splitlines()])
    refused = subprocess.run([sys.executable, "-m", "closecodec", "capture", "-", "--jobs", "2"], input=b"",
                             capture_output=True)
    assert refused.returncode == 2 and b"a pipe is read in one process" in refused.stderr
    # A scheduler that is not there: said so (Dask's connect timeout shortened through its config).
    unreachable = subprocess.run(command + ["--dask", "tcp://127.0.0.1:9"], capture_output=True, text=True,
                                 env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"})
    assert unreachable.returncode == 2 and not unreachable.stdout
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in unreachable.stderr


# -- the records as a Dask DataFrame ------------------------------------------------------------


def expected_frame(source: Any, side: str, **options: Any) -> Any:
    from closecodec.capture.dataframe import _frame

    return _frame(serial(source, side, **options)[0])


def computed(source: Any, side: str, chunks: int, **options: Any) -> Tuple[Any, List[int]]:
    """The DataFrame computed in this process (on ``side``), and its partitions' lengths."""
    dd = pytest.importorskip("dask.dataframe", reason="the dask extra (Dask's DataFrame) is not installed")
    from closecodec.capture.dataframe import records_dataframe

    import dask
    import pandas

    with use_backend(side):
        frame = records_dataframe(source, chunks=chunks, **options)
        assert isinstance(frame, dd.DataFrame)
        parts = dask.compute(*frame.to_delayed(), scheduler="sync")
    return pandas.concat(parts, ignore_index=True), [len(part) for part in parts]


@pytest.fixture(scope="module")
def longer_traffic(tmp_path_factory) -> Path:
    """The benchmark's traffic, long enough for connections to end in every chunk of five."""
    path = tmp_path_factory.mktemp("longer") / "traffic.pcap"
    generate_capture(path, 15_000_000)
    return path


@pytest.mark.parametrize("chunks", [2, 5])
def test_the_dataframe_holds_one_readers_records_in_its_order(side, longer_traffic, chunks):
    path = str(longer_traffic)
    frame, lengths = computed(path, side, chunks)
    assert frame.equals(expected_frame(path, side))
    assert str(frame.dtypes["time"]) == "timestamp[ns, tz=UTC][pyarrow]"
    # Partition k: the records one reader makes while it reads chunk k's packets (a record's frame is the
    # packet that completes it), those the end of the capture makes in the last.
    offsets = ParallelCloseRecordReader(path, jobs=chunks)._plan()[1][:-1]
    data = longer_traffic.read_bytes()
    firsts, pos, count = [], 24, 0  # each chunk's first packet (1-based)
    while pos < len(data):
        count += 1
        if pos in offsets:
            firsts.append(count)
        pos += 16 + int.from_bytes(data[pos + 8:pos + 12], "little")
    assert len(lengths) == chunks and len(firsts) == chunks - 1
    at = 0
    for k, length in enumerate(lengths):
        frames = frame["frame"][at:at + length].tolist()
        at += length
        low, high = ([1] + firsts)[k], (firsts + [count + 1])[k]
        assert all(low <= f < high for f in frames), (k, low, high)
    assert all(lengths[1:]), lengths


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(ALL_CAPTURES), data=st.data(), side=st.sampled_from(installed_sides()))
def test_the_dataframe_of_a_set_cut_anywhere_is_one_readers(tmp_path_factory, name, data, side):
    """As test_chunks_cut_anywhere_are_one_readers, for the DataFrame: where the chunks cannot be used, its
    first partition is one reader's."""
    packets = PACKETS[name]
    cuts = data.draw(st.lists(st.integers(1, len(packets) - 1), min_size=1, max_size=4, unique=True))
    limits = data.draw(st.fixed_dictionaries({}, optional={"max_closed": st.sampled_from([1, 3]),
                                                          "max_connections": st.sampled_from([1, 2])}))
    folder = tmp_path_factory.mktemp("cut")
    write_set(folder, packets, cuts)
    paths = sorted(str(path) for path in folder.iterdir())
    options = dict(mqtt_ports=(1883, 21883, 21885), **limits)
    frame, lengths = computed(paths, side, len(paths), **options)
    assert frame.equals(expected_frame(paths, side, **options))
    assert len(lengths) == len(paths)


def test_a_dataframe_whose_chunks_cannot_be_used_is_read_by_one_reader(side, tmp_path):
    packets = PACKETS["websocket-close-codes.pcap"]
    (tmp_path / "even.pcap").write_bytes(pcap_file(packets[0::2], nano=True))
    (tmp_path / "odd.pcap").write_bytes(pcap_file(packets[1::2], nano=True))  # overlapping in time
    paths = sorted(str(path) for path in tmp_path.iterdir())
    frame, lengths = computed(paths, side, 2)
    assert frame.equals(expected_frame(paths, side))
    assert lengths[0] == len(frame) > 0 and lengths[1:] == [0]
    # A pcapng file is not cut in time: one partition.
    path = str(DATA / "mqtt5-session-takeover.pcapng")
    frame, lengths = computed(path, side, 2)
    assert frame.equals(expected_frame(path, side)) and lengths == [len(frame)]


def test_a_directory_given_as_a_string_is_a_set_for_one_reader_too(side, tmp_path):
    write_set(tmp_path, PACKETS["websocket-close-codes.pcap"], [100, 250])
    for chunks in (1, 2):
        frame, lengths = computed(str(tmp_path), side, chunks)
        assert frame.equals(expected_frame([str(tmp_path)], side)) and len(lengths) == chunks
    expected, _ = serial([str(tmp_path)], side)
    with use_backend(side):
        assert list(ParallelCloseRecordReader(str(tmp_path), jobs=1)) == expected


@pytest.mark.processes
def test_the_dataframe_on_a_local_cluster(dask_client, traffic, tmp_path):
    from closecodec.capture.dataframe import records_dataframe

    side = "c" if "c" in installed_sides() else "py"
    path = str(traffic[0])
    frame = records_dataframe(path)  # as many chunks as the cluster has worker threads
    assert frame.npartitions == 2
    assert frame.compute().reset_index(drop=True).equals(expected_frame(path, side))
    # What users do with it: filter, count, write Parquet, read it back.
    closes = frame[frame["kind"] == "ws_close"]
    assert len(closes) == int((expected_frame(path, side)["kind"] == "ws_close").sum()) > 0
    frame.to_parquet(str(tmp_path / "out"))
    import pandas

    back = pandas.read_parquet(str(tmp_path / "out"), dtype_backend="pyarrow").reset_index(drop=True)
    assert back["frame"].tolist() == expected_frame(path, side)["frame"].tolist()
