"""Parallel reading (docs/scale.md): partitions of the connections, in a process pool or on a real Dask
LocalCluster, give exactly one reader's records (order, stream numbers, file and frame), counters and
errors, on both backends; a process that dies is run again, a partition that fails for good is named.
"""

from __future__ import annotations

import json
import os
import random
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
from closecodec.capture.parallel import ParallelCloseRecordReader, PartitionError
from closecodec.capture.records import CloseRecordReader

from helpers import ALL_CAPTURES, DATA, Capture, Flow, generate_capture, installed_sides, pcap_file, use_backend, ws

from test_capture_sets import PACKETS, write_set


def serial(source: Any, side: str, **options: Any) -> Tuple[List[Any], CloseRecordReader]:
    with use_backend(side):
        reader = CloseRecordReader(source, **options)
    with reader:
        return list(reader), reader


def parallel(source: Any, side: str, **options: Any) -> Tuple[List[Any], ParallelCloseRecordReader]:
    with use_backend(side):  # the pool's processes start (fork) inside the block, on this side
        reader = ParallelCloseRecordReader(source, **options)
        return list(reader), reader


def assert_same(source: Any, side: str, jobs: int, **options: Any) -> ParallelCloseRecordReader:
    expected, one = serial(source, side, **options)
    found, many = parallel(source, side, jobs=jobs, **options)
    assert found == expected
    assert [record.stream for record in found] == [record.stream for record in expected]
    assert many.stats == one.stats
    assert many.skipped == one.skipped
    assert many.errors == one.errors
    assert (many.files, many.problems, many.frames) == (one.files, one.problems, one.frames)
    return many


@pytest.mark.parametrize("jobs", [2, 3, 7])
@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_the_shared_captures_in_partitions_are_one_readers(side, name, jobs):
    many = assert_same(str(DATA / name), side, jobs, mqtt_ports=(1883, 21883, 21885))
    assert not many.read_again


@pytest.fixture(scope="module")
def traffic(tmp_path_factory) -> Tuple[Path, Path]:
    """The benchmark's traffic (300 connections open at a time), whole and with its handshakes cut."""
    folder = tmp_path_factory.mktemp("traffic")
    whole, cut = folder / "whole.pcap", folder / "cut.pcap"
    generate_capture(whole, 3_000_000)
    generate_capture(cut, 3_000_000, handshakes=False)
    return whole, cut


@pytest.mark.parametrize("jobs", [2, 5])
def test_the_benchmark_traffic_in_partitions_is_one_readers(side, traffic, jobs):
    for path in traffic:
        found = assert_same(str(path), side, jobs)
        assert not found.read_again


def test_a_rotated_set_in_partitions_is_one_readers(side, tmp_path):
    name = "websocket-close-codes.pcap"
    write_set(tmp_path, PACKETS[name], [40, 41, 200, 333])
    paths = sorted(str(path) for path in tmp_path.iterdir())
    assert_same(paths, side, 3)
    assert_same([str(tmp_path)], side, 2)  # a directory: its capture files


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


def test_a_run_that_may_reach_a_connection_limit_is_read_again_by_one_reader(side, traffic):
    many = assert_same(str(traffic[0]), side, 2, max_connections=200)
    assert many.read_again


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), size=st.integers(20_000, 200_000), handshakes=st.booleans(),
       jobs=st.integers(2, 6), side=st.sampled_from(installed_sides()))
def test_any_partitioning_of_any_traffic_is_one_readers(tmp_path, seed, size, handshakes, jobs, side):
    path = tmp_path / f"traffic-{seed}-{size}-{handshakes}.pcap"
    generate_capture(path, size, seed=seed, handshakes=handshakes)
    assert_same(str(path), side, jobs)


@given(src=st.binary(min_size=4, max_size=4) | st.binary(min_size=16, max_size=16),
       ports=st.tuples(st.integers(0, 65535), st.integers(0, 65535)), count=st.integers(1, 64))
def test_a_connections_partition_is_the_same_both_ways(src, ports, count):
    dst = bytes(reversed(src))
    one = partition_of(src, ports[0], dst, ports[1], count)
    assert one == partition_of(dst, ports[1], src, ports[0], count)
    assert 0 <= one < count


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


def test_a_process_that_dies_is_run_again(tmp_path):
    """The pure backend (slow enough that the kill lands while the partitions run): one pool process
    is killed; its partitions run again in a new pool and the records are still one reader's."""
    path = tmp_path / "traffic.pcap"
    generate_capture(path, 3_000_000)
    expected, _ = serial(str(path), "py")
    found: List[Any] = []
    with use_backend("py"):
        reader = ParallelCloseRecordReader(str(path), jobs=2)
        worker = threading.Thread(target=lambda: found.extend(reader))
        worker.start()
        killed = False
        while worker.is_alive() and not killed:
            children = _children()
            if children:
                os.kill(children[0], signal.SIGKILL)
                killed = True
            time.sleep(0.01)
        worker.join()
    assert killed
    assert reader.rerun, "no partition was run again"
    assert found == expected


def _children() -> List[int]:
    """The pids of this process's child processes (Linux /proc)."""
    me = str(os.getpid())
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                pids.append(int(entry))
    return pids


def test_a_partition_that_fails_for_good_names_itself_and_the_cause(tmp_path):
    missing = tmp_path / "gone.pcap"
    with pytest.raises(PartitionError, match=r"partition \d of 2 of .*gone\.pcap failed: FileNotFoundError"):
        list(ParallelCloseRecordReader(str(missing), jobs=2))


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


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_a_local_cluster_gives_one_readers_records(dask_client, name):
    expected, one = serial(str(DATA / name), "c" if "c" in installed_sides() else "py")
    reader = ParallelCloseRecordReader(str(DATA / name), client=dask_client)
    assert reader.jobs == 2
    assert list(reader) == expected
    assert reader.stats == one.stats


def test_a_local_cluster_reads_the_benchmark_traffic_and_sets(dask_client, traffic, tmp_path):
    side = "c" if "c" in installed_sides() else "py"
    for path in traffic:
        expected, _ = serial(str(path), side)
        assert list(ParallelCloseRecordReader(str(path), client=dask_client, jobs=3)) == expected
    write_set(tmp_path, PACKETS["mqtt5-session-takeover.pcapng"], [10, 90])
    paths = sorted(str(path) for path in tmp_path.iterdir())
    expected, _ = serial(paths, side)
    assert list(ParallelCloseRecordReader(paths, client=dask_client)) == expected


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


def test_the_command_with_jobs_and_a_local_cluster(tmp_path, traffic):
    pytest.importorskip("distributed", reason="the dask extra (distributed) is not installed")
    path = str(traffic[0])
    command = [sys.executable, "-m", "closecodec", "capture", "--format", "jsonl", path]
    one = subprocess.run(command + ["--jobs", "1"], capture_output=True, text=True, check=True).stdout
    two = subprocess.run(command + ["--jobs", "2"], capture_output=True, text=True, check=True).stdout
    dask = subprocess.run(command + ["--dask", "local", "--jobs", "2"], capture_output=True, text=True, check=True)
    assert one and two == one and dask.stdout == one
    assert len(one.splitlines()) == len([json.loads(line) for line in one.splitlines()])
