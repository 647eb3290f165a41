"""Closes as they happen (docs/live.md): from a pipe, each record is written once the packet that makes it
has arrived, in every format, on both backends; ``closecodec capture -i lo`` captures with the system's
dumpcap or tcpdump while real peers (websockets, paho-mqtt with mosquitto) close; ``-c``, ``-a`` and Ctrl-C
end a run cleanly; ``--follow`` reads a file as it is written.

Ordering, not timing: a test writes part of a capture, reads back the records of that part, then writes
the rest. The waits have generous bounds (60 s) only so that a fault fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from closecodec.capture.records import CloseRecordReader

from helpers import DATA, installed_sides, pcap_file, tool_env, use_backend

CAPTURE = DATA / "websocket-close-codes.pcap"
WAIT = 60  # seconds: a bound on waits, so that a fault fails the test rather than hangs it


class Paused(Exception):
    """The file below has given all it has."""


class Prefix(io.RawIOBase):
    """The first ``size`` bytes of ``data``, then Paused: what a reader makes before it must wait."""

    def __init__(self, data: bytes, size: int) -> None:
        super().__init__()
        self.data, self.size, self.at = data, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.at >= self.size:
            raise Paused
        count = min(len(buffer), self.size - self.at)
        buffer[:count] = self.data[self.at:self.at + count]
        self.at += count
        return count


def records_before(data: bytes, size: int, side: str) -> List[Any]:
    """The records a reader makes from the first ``size`` bytes, before it waits for more."""
    with use_backend(side):
        reader = CloseRecordReader(Prefix(data, size))
    found: List[Any] = []
    try:
        found.extend(reader)
    except Paused:
        pass
    return found


def environment(side: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("CLOSECODEC_NO_EXTENSIONS", None)
    if side == "py":
        env["CLOSECODEC_NO_EXTENSIONS"] = "1"
    return env


class Lines:
    """The lines a process writes, collected by a thread: ``take(n)`` waits (up to WAIT) for n more."""

    def __init__(self, stream: Any) -> None:
        self.queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.queue.put(line.decode() if isinstance(line, bytes) else line)
        self.queue.put(None)

    def _next(self, taken: List[str], waiting_for: str) -> Optional[str]:
        """The next line (None: the output ended), or an AssertionError after WAIT."""
        try:
            return self.queue.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"{waiting_for} in {WAIT} s: {taken}") from None

    def take(self, count: int) -> List[str]:
        taken: List[str] = []
        for _ in range(count):
            line = self._next(taken, f"{len(taken)} of {count} lines")
            assert line is not None, f"the output ended after {len(taken)} of {count} lines"
            taken.append(line)
        return taken

    def so_far(self) -> List[str]:
        """The lines that came and were not taken (for a failure's message)."""
        taken = []
        while not self.queue.empty():
            taken.append(self.queue.get())
        return taken

    def until(self, text: str) -> List[str]:
        taken: List[str] = []
        while True:
            line = self._next(taken, f"no {text!r}")
            assert line is not None, f"the output ended before {text!r}: {taken}"
            taken.append(line)
            if text in line:
                return taken

    def rest(self) -> List[str]:
        taken: List[str] = []
        while True:
            line = self._next(taken, "the output did not end")
            if line is None:
                return taken
            taken.append(line)


class Following:
    """A following reader's records, put in a queue by a thread as they come."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.found: "queue.Queue[Any]" = queue.Queue()
        self.thread = threading.Thread(target=lambda: [self.found.put(record) for record in reader], daemon=True)
        self.thread.start()

    def take(self, count: int) -> List[Any]:
        return [self.found.get(timeout=WAIT) for _ in range(count)]

    def stop(self) -> None:
        """Stop the reader: it ends, with no record more and no problem."""
        self.reader.stop()
        self.thread.join(WAIT)
        assert not self.thread.is_alive() and self.found.empty() and self.reader.problems == []


def command(*args: str) -> List[str]:
    return [sys.executable, "-m", "closecodec", "capture", *args]


@pytest.fixture(autouse=True)
def nothing_left_running(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A process a test started and left running (it failed half way) is ended: SIGTERM first, which a
    live command takes as a stop (it stops its capture tool too), then SIGKILL."""
    started: List[subprocess.Popen] = []

    class Tracked(subprocess.Popen):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Tracked)
    yield
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def running(text: str) -> List[str]:
    """The command lines of this machine's processes that hold ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in line:
            found.append(line)
    return found


# -- a pipe ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", installed_sides())
@pytest.mark.parametrize("form", ["jsonl", "csv", "table"])
def test_records_come_out_of_a_pipe_as_their_packets_arrive(side, form):
    data = CAPTURE.read_bytes()
    cut = 20000
    early = records_before(data, cut, side)
    assert 0 < len(early) < 60
    process = subprocess.Popen(command("-", "--format", form), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               env=environment(side))
    lines = Lines(process.stdout)
    process.stdin.write(data[:cut])
    process.stdin.flush()
    heading = 0 if form == "jsonl" else 1
    first = lines.take(heading + len(early))  # before the rest is written: it would hang otherwise
    process.stdin.write(data[cut:])
    process.stdin.close()
    rest = lines.rest()
    assert process.wait(timeout=WAIT) == 0
    with CAPTURE.open("rb") as whole:  # the same command on the file: not live
        expected = subprocess.run(command("-", "--format", form), stdin=whole, capture_output=True, env=environment(side),
                                  check=True).stdout.decode().splitlines(keepends=True)
    if form == "table":  # live, the columns are the widest, not those of the first records
        assert [line.split()[0] for line in first[1:] + rest] == [line.split()[0] for line in expected[1:]]
        assert [line.split()[0] for line in first[1:]] == [str(record.frame) for record in early]
    else:
        assert first + rest == expected
        if form == "jsonl":
            assert [line.split('"frame": ')[1].split(",")[0] for line in first] == [str(r.frame) for r in early]


def test_an_idle_pipe_calls_idle_before_a_read_that_would_wait_or_after_a_while(monkeypatch):
    from closecodec.capture import live
    from closecodec.capture.live import IdlePipe

    clock = [0.0]
    monkeypatch.setattr(live, "monotonic", lambda: clock[0])
    read_end, write_end = os.pipe()
    calls: List[int] = []

    def idle() -> None:
        calls.append(len(calls))
        if calls == [0]:
            os.write(write_end, b"later")  # the writer goes on once the reader waits

    with open(read_end, "rb") as pipe:
        piped = IdlePipe(pipe, idle)
        buffer = bytearray(16)
        os.write(write_end, b"now")
        assert piped.readinto(buffer) == 3 and calls == []
        assert piped.readinto(buffer) == 5 and bytes(buffer[:5]) == b"later" and calls == [0]
        os.write(write_end, b"busy")
        clock[0] += live.IDLE_SECONDS  # a pipe that has bytes at every read, for that long
        assert piped.readinto(buffer) == 4 and calls == [0, 1]
        os.write(write_end, b"again")
        assert piped.readinto(buffer) == 5 and calls == [0, 1]
        os.close(write_end)
        assert piped.readinto(buffer) == 0 and calls == [0, 1]  # the writer's end closed: no wait


@pytest.mark.parametrize("side", installed_sides())
def test_a_pipe_that_never_makes_the_reader_wait_is_flushed_at_its_end_not_per_record(side, monkeypatch):
    """Records read from a pipe are written out when reading waits for the writer (the test above), not one
    write each: ``zcat big.pcap.gz | closecodec capture -`` is not slowed by a write per record. (The clock
    stands still: a slow run would also flush every ``IDLE_SECONDS``.)"""
    import fcntl

    from closecodec.capture import live
    from closecodec.cli import main

    monkeypatch.setattr(live, "monotonic", lambda: 0.0)

    class Output(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1
            super().flush()

    data = CAPTURE.read_bytes()
    read_end, write_end = os.pipe()
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 1 << 20)
    os.write(write_end, data)  # all of it there before reading starts: no read waits
    os.close(write_end)
    out = Output()
    with open(read_end, "rb") as pipe, use_backend(side):
        stdin = io.TextIOWrapper(pipe)
        assert main(["capture", "-", "--format", "jsonl"], out=out, stdin=stdin, err=io.StringIO()) == 0
        expected = [json.dumps(record.to_dict(), ensure_ascii=False) + "\n" for record in CloseRecordReader(io.BytesIO(data))]
    assert out.getvalue().splitlines(keepends=True) == expected and len(expected) > 10
    assert out.flushes <= 1


class Terminal:
    """What a process writes to a pseudo-terminal, read by a thread."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.text = ""
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the other end is closed
                chunk = b""
            with self.changed:
                if not chunk:
                    self.changed.notify_all()
                    return
                self.text += chunk.decode().replace("\r\n", "\n")
                self.changed.notify_all()

    def wait_for(self, pattern: str) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: re.search(pattern, self.text) is not None, timeout=WAIT), self.text


@pytest.mark.parametrize("side", installed_sides())
def test_the_summary_on_a_terminal_is_redrawn_as_closes_come(side):
    data = CAPTURE.read_bytes()
    cut = 20000
    early = records_before(data, cut, side)
    master, slave = pty.openpty()
    process = subprocess.Popen(command("-", "--summary"), stdin=subprocess.PIPE, stdout=slave,
                               stderr=subprocess.PIPE, env=environment(side))
    os.close(slave)
    screen = Terminal(master)
    process.stdin.write(data[:cut])
    process.stdin.flush()
    screen.wait_for(rf"total +{len(early)}\n")  # the table of the first part, before the rest is written
    process.stdin.write(data[cut:])
    process.stdin.close()
    assert process.wait(timeout=WAIT) == 0
    screen.thread.join(timeout=WAIT)
    os.close(master)
    with CAPTURE.open("rb") as whole:
        expected = subprocess.run(command("-", "--summary"), stdin=whole, capture_output=True, env=environment(side),
                                  check=True).stdout.decode()
    assert "\033[" in screen.text  # redrawn in place
    assert screen.text.rsplit("\033[J", 1)[-1] == expected  # the table taken off, then the final summary


@pytest.mark.parametrize("side", installed_sides())
def test_a_file_object_with_read_alone_is_read(side):
    class Reads(io.BufferedIOBase):  # its read1 and readinto1 are io's, which raise
        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            return self.data.read(size)

    with use_backend(side):
        found = list(CloseRecordReader(Reads(CAPTURE.read_bytes())))
        expected = list(CloseRecordReader(str(CAPTURE)))
    assert [tuple(r)[1:] for r in found] == [tuple(r)[1:] for r in expected] and found


def test_a_named_pipe_is_read_live(tmp_path):
    data = CAPTURE.read_bytes()
    cut = 20000
    early = records_before(data, cut, "c" if "c" in installed_sides() else "py")
    fifo = tmp_path / "packets"
    os.mkfifo(fifo)
    process = subprocess.Popen(command(str(fifo), "--format", "jsonl"), stdout=subprocess.PIPE)
    lines = Lines(process.stdout)
    with fifo.open("wb") as writer:
        writer.write(data[:cut])
        writer.flush()
        first = lines.take(len(early))  # before the rest is written
        writer.write(data[cut:])
    rest = lines.rest()
    assert process.wait(timeout=WAIT) == 0
    expected = subprocess.run(command(str(CAPTURE), "--format", "jsonl"), capture_output=True, check=True).stdout
    assert "".join(first + rest) == expected.decode().replace(str(CAPTURE), str(fifo))


def test_a_regular_file_on_standard_input_is_not_read_live():
    with CAPTURE.open("rb") as whole:
        table = subprocess.run(command("-"), stdin=whole, capture_output=True, check=True).stdout.decode()
    by_path = subprocess.run(command(str(CAPTURE)), capture_output=True, check=True).stdout.decode()
    assert table == by_path  # the look-ahead widths of a file, not the widest


# -- --follow -------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", installed_sides())
def test_a_followed_file_gives_its_records_as_it_is_written(side, tmp_path):
    data = CAPTURE.read_bytes()
    cut = 30000
    early = records_before(data, cut, side)
    path = tmp_path / "growing.pcap"
    path.write_bytes(data[:cut])
    process = subprocess.Popen(command("--follow", str(path), "--format", "jsonl"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=environment(side))
    lines = Lines(process.stdout)
    first = lines.take(len(early))
    with path.open("ab") as file:
        file.write(data[cut:])
    expected = subprocess.run(command(str(path), "--format", "jsonl"), capture_output=True, env=environment(side),
                              check=True).stdout.decode().splitlines(keepends=True)
    later = lines.take(len(expected) - len(early))
    process.send_signal(signal.SIGINT)  # following goes on until stopped
    assert lines.rest() == []
    assert process.wait(timeout=WAIT) == 0, process.stderr.read()
    assert first + later == expected


@pytest.mark.parametrize("side", installed_sides())
def test_a_followed_directory_takes_each_next_file_of_a_rotating_capture(side, tmp_path):
    """Files appear one after another, named as tcpdump -C names them (trace.pcap, trace.pcap1, ...,
    trace.pcap10: by number, not by text); the connections go on across them, and the records are those of
    the files read afterwards as a set, with their own file and frame."""
    from test_capture_sets import PACKETS

    packets = PACKETS["websocket-close-codes.pcap"]
    cuts = [0, 40, 90, 130, 170, 200, 230, 260, 290, 320, 350, 380, len(packets)]
    names = ["trace.pcap"] + [f"trace.pcap{n}" for n in range(1, len(cuts) - 1)]
    files = [pcap_file(packets[a:b], nano=True) for a, b in zip(cuts, cuts[1:])]
    first = tmp_path / names[0]
    first.write_bytes(files[0][:3000])  # the first file, half written
    process = subprocess.Popen(command("--follow", str(tmp_path), "--format", "jsonl"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=environment(side))
    lines = Lines(process.stdout)
    Lines(process.stderr).until("Ctrl-C stops")
    with first.open("ab") as file:
        file.write(files[0][3000:])
    for name, data in zip(names[1:], files[1:]):
        (tmp_path / name).write_bytes(data)
    expected = subprocess.run(command(*[str(tmp_path / name) for name in names], "--format", "jsonl"),
                              capture_output=True, env=environment(side), check=True).stdout.decode()
    expected_lines = expected.splitlines(keepends=True)
    found = lines.take(len(expected_lines))
    process.send_signal(signal.SIGINT)
    assert lines.rest() == []
    assert process.wait(timeout=WAIT) == 0
    assert found == expected_lines and len({line.split('"file": ')[1].split(",")[0] for line in found}) > 5


@pytest.mark.parametrize("side", installed_sides())
def test_following_an_empty_directory_reads_the_first_file_to_appear(side, tmp_path):
    """Following may start before the capture does: the first capture file that appears is read from its
    start. The tool's log, made empty before the capture starts (``2> dir/tcpdump.log``), is not one."""
    path = tmp_path / "trace.pcap"
    (tmp_path / "tcpdump.log").write_bytes(b"")
    with use_backend(side):
        expected = list(CloseRecordReader(CAPTURE))
        reader = CloseRecordReader(str(tmp_path), follow=True)  # nothing there yet
    following = Following(reader)
    path.write_bytes(CAPTURE.read_bytes())
    got = following.take(len(expected))
    following.stop()
    assert [record.file for record in got] == [str(path)] * len(expected)
    assert [record[1:] for record in got] == [record[1:] for record in expected]


@pytest.mark.parametrize("side", installed_sides())
def test_an_empty_directory_stopped_before_any_file_is_named_in_the_problems(side, tmp_path):
    with use_backend(side):
        reader = CloseRecordReader(str(tmp_path), follow=True)
    reader.stop()
    assert list(reader) == []
    assert reader.problems == [(str(tmp_path), f"cannot read it: no capture file appeared in {tmp_path} before the "
                                               "stop")]


def test_following_an_empty_directory_says_it_waits_and_a_stop_before_any_file_names_it(tmp_path):
    process = subprocess.Popen(command("--follow", str(tmp_path)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    said = Lines(process.stderr)
    assert said.until("Ctrl-C stops")[-1].endswith(f"following {tmp_path}: no capture file in it yet; the first to "
                                                    "appear is read (Ctrl-C stops)\n")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=WAIT) == 1
    assert said.rest() == [f"closecodec capture: {tmp_path}: cannot read it: no capture file appeared in {tmp_path} "
                           "before the stop\n"]


def follow_a_ring(side: str, directory: Path, before: List[Tuple[str, bytes, int]], start: str,
                  after: Tuple[str, bytes, int]) -> None:
    """Write the files ``before`` (name, bytes, mtime in seconds past a base) into ``directory`` and follow
    it: it must start with ``start``. Once that is read, write ``after`` (the same): the records must be
    those of ``start`` and ``after`` read afterwards as a set, and no other."""
    written = 1_800_000_000 * 10**9  # the files' times, set: the order of writing, not the test's timing
    for name, data, second in before:
        (directory / name).write_bytes(data)
        os.utime(directory / name, ns=(written + second * 10**9,) * 2)
    following_name, following_data, following_second = after
    alone = directory / "alone"
    alone.mkdir()
    (alone / start).write_bytes((directory / start).read_bytes())
    (alone / following_name).write_bytes(following_data)
    with use_backend(side):
        expected = [(os.path.basename(record.file),) + record[1:]
                    for record in CloseRecordReader([str(alone / start), str(alone / following_name)])]
        reader = CloseRecordReader(str(directory), follow=True)
    assert reader.files == [str(directory / start)]
    following = Following(reader)
    first = sum(1 for record in expected if record[0] == start)
    assert 0 < first < len(expected)
    got = following.take(first)  # the first file read to its end: the writer goes on
    (directory / following_name).write_bytes(following_data)
    os.utime(directory / following_name, ns=(written + following_second * 10**9,) * 2)
    got += following.take(len(expected) - first)
    following.stop()
    assert [(os.path.basename(record.file),) + record[1:] for record in got] == expected
    assert reader.files == [str(directory / start), str(directory / following_name)]


def ring_parts() -> List[bytes]:
    """Four pcap files, one capture cut in four: connections go on from one to the next."""
    from test_capture_sets import PACKETS

    packets = PACKETS["websocket-close-codes.pcap"]
    return [pcap_file(packets[a:b], nano=True) for a, b in ((0, 100), (100, 200), (200, 300), (300, len(packets)))]


@pytest.mark.parametrize("side", installed_sides())
def test_a_followed_ring_that_reuses_its_names_goes_round(side, tmp_path):
    """tcpdump -C N -W 3 writes trace.pcap0, 1, 2, then over trace.pcap0 again. Following starts with the
    file written last, and goes from trace.pcap2 back to trace.pcap0 once that is written again, never
    to the last round's trace.pcap1."""
    parts = ring_parts()
    follow_a_ring(side, tmp_path, [(f"trace.pcap{n}", parts[n], n) for n in range(3)], "trace.pcap2",
                  ("trace.pcap0", parts[3], 3))


@pytest.mark.parametrize("side", installed_sides())
def test_a_followed_ring_starts_where_it_is_written_and_passes_over_other_files(side, tmp_path):
    """A ring gone round once (trace.pcap0 written last, trace.pcap1 and 2 from the round before) and a log
    written after them all: following starts with trace.pcap0, not the log (the newest file) nor
    trace.pcap2 (the last by name); it takes trace.pcap1 once that is written again, though at a time
    before the others' (a clock set back), and never the stale trace.pcap2 nor the log."""
    parts = ring_parts()
    follow_a_ring(side, tmp_path, [("trace.pcap1", parts[0], 1), ("trace.pcap2", parts[1], 2),
                                   ("trace.pcap0", parts[2], 3), ("capture.log", b"listening on lo\n", 4)],
                  "trace.pcap0", ("trace.pcap1", parts[3], -10))


@pytest.mark.parametrize("side", installed_sides())
def test_a_broken_file_of_a_followed_ring_is_named_and_following_goes_on(side, tmp_path):
    """A file of the ring that breaks off (here a record over the size limit) is named in the problems,
    what it held before the break is kept, and the ring's next file is read when it comes: the records and
    problems are those of the same files read afterwards as a set."""
    parts = ring_parts()
    # A record header claiming 2 GiB (in either byte order), as a writer's crash can leave.
    files = [parts[0], parts[1] + bytes(8) + b"\xff\xff\xff\x7f" * 2, parts[2]]
    names = [f"trace.pcap{n}" for n in range(3)]
    alone = tmp_path / "alone"
    alone.mkdir()
    for name, data in zip(names, files):
        (alone / name).write_bytes(data)
    ring = tmp_path / "ring"
    ring.mkdir()
    (ring / names[0]).write_bytes(files[0])
    with use_backend(side):
        as_set = CloseRecordReader([str(alone / name) for name in names])
        expected = [(os.path.basename(record.file),) + record[1:] for record in as_set]
        reader = CloseRecordReader(str(ring), follow=True)
    following = Following(reader)
    before = sum(1 for record in expected if record[0] != names[2])
    assert 0 < before < len(expected) and [path for path, _ in as_set.problems] == [str(alone / names[1])]
    (ring / names[1]).write_bytes(files[1])
    got = following.take(before)
    (ring / names[2]).write_bytes(files[2])  # after the broken file has ended
    got += following.take(len(expected) - before)
    reader.stop()
    following.thread.join(WAIT)
    assert not following.thread.is_alive() and following.found.empty()
    assert [(os.path.basename(record.file),) + record[1:] for record in got] == expected
    assert reader.files == [str(ring / name) for name in names]
    assert reader.problems == [(str(ring / names[1]), as_set.problems[0][1])]


@pytest.mark.parametrize("side", installed_sides())
def test_a_followed_ring_goes_round_past_a_stale_file_that_sorts_first(side, tmp_path):
    """A trace.pcap left by an earlier run without -W sorts before trace.pcap0: the ring has gone round when
    any file before the current one is written over, not only the first by name."""
    parts = ring_parts()
    follow_a_ring(side, tmp_path, [("trace.pcap", parts[1], -5)] + [(f"trace.pcap{n}", parts[n], n) for n in range(3)],
                  "trace.pcap2", ("trace.pcap0", parts[3], 3))


def test_a_ring_written_in_one_clock_tick_starts_with_the_file_of_the_latest_first_packet(tmp_path):
    """tcpdump closes a file and starts the next (here trace.pcap0, written over) for one packet: on a quiet
    link both keep the same mtime. The one written now is the one whose first packet came last."""
    parts = ring_parts()
    for n, data in ((0, parts[3]), (1, parts[1]), (2, parts[2])):
        (tmp_path / f"trace.pcap{n}").write_bytes(data)
        os.utime(tmp_path / f"trace.pcap{n}", ns=(1_800_000_000 * 10**9 - (n == 1) * 10**9,) * 2)
    reader = CloseRecordReader(str(tmp_path), follow=True)
    assert reader.files == [str(tmp_path / "trace.pcap0")]
    reader.close()


@pytest.mark.parametrize("side", installed_sides())
@pytest.mark.parametrize("tail", [b"", bytes(8) + b"\xff\xff\xff\x7f" * 2], ids=["cut", "broken"])
def test_a_ring_of_one_name_is_read_again_once_written_over(side, tail, tmp_path):
    """tcpdump -W 1 (or a writer restarted on the same name) writes over the file being followed. Found cut
    shorter than what was read, or broken off where the writer went past the reader inside it (here a
    record header claiming 2 GiB, then named in the problems), the file is read again from its start once
    written over, as the next file of a set."""
    from test_capture_sets import PACKETS

    packets = PACKETS["websocket-close-codes.pcap"]
    first, later = pcap_file(packets[:200], nano=True) + tail, pcap_file(packets[200:300], nano=True)
    assert len(later) < len(first)
    alone = [tmp_path / "a", tmp_path / "b"]
    for folder, data in zip(alone, (first, later)):
        folder.mkdir()
        (folder / "trace.pcap").write_bytes(data)
    ring = tmp_path / "ring"
    ring.mkdir()
    path = ring / "trace.pcap"
    path.write_bytes(first)
    with use_backend(side):
        as_set = CloseRecordReader([str(folder / "trace.pcap") for folder in alone])
        expected = [record[1:] for record in as_set]
        before = sum(1 for record in CloseRecordReader([str(alone[0] / "trace.pcap")]))
        reader = CloseRecordReader(str(ring), follow=True)
    following = Following(reader)
    got = following.take(before)
    path.write_bytes(later)  # in place: the same inode, cut, then written
    got += following.take(len(expected) - before)
    reader.stop()
    following.thread.join(WAIT)
    assert not following.thread.is_alive() and following.found.empty()
    assert [record[1:] for record in got] == expected
    assert reader.files == [str(path), str(path)]
    assert reader.problems == [(str(path), why) for _, why in as_set.problems] and bool(reader.problems) == bool(tail)


def test_a_ring_starts_with_a_capture_file_and_takes_files_written_over_not_added_to(tmp_path):
    """Empty files (a lock, a log being made) are not capture files, newest or not. A file of the same name
    pattern that is only added to (another interface's capture beside this one) is not the ring's next: a
    file written over from its start (a ring going round) is, however its size and time compare."""
    parts = ring_parts()
    older, newer = tmp_path / "eth0.pcap", tmp_path / "eth1.pcap"
    older.write_bytes(parts[0])
    newer.write_bytes(parts[1])
    (tmp_path / "capture.lock").write_bytes(b"")
    base = 1_800_000_000 * 10**9
    for second, path in enumerate((older, newer, tmp_path / "capture.lock")):
        os.utime(path, ns=(base + second * 10**9,) * 2)
    reader = CloseRecordReader(str(tmp_path), follow=True)
    assert reader.files == [str(newer)]
    with older.open("ab") as file:
        file.write(parts[2][24:])  # more packets, after the pcap header
    assert not reader._written_over(str(older))
    older.write_bytes(parts[2] + parts[3][24:])  # larger than before, from its start
    os.utime(older, ns=(base,) * 2)
    assert reader._written_over(str(older))
    reader.close()


def test_a_followed_rings_broken_file_is_said_when_it_is_skipped_not_again_at_the_end(tmp_path):
    parts = ring_parts()
    (tmp_path / "trace.pcap0").write_bytes(parts[0])
    process = subprocess.Popen(command("--follow", str(tmp_path), "--summary"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    said = Lines(process.stderr)
    said.until("Ctrl-C stops")
    broken = tmp_path / "trace.pcap1"
    broken.write_bytes(parts[1] + bytes(8) + b"\xff\xff\xff\x7f" * 2)  # a record header claiming 2 GiB
    line = said.until(str(broken))[-1]  # while the run goes on
    assert line.startswith(f"closecodec capture: {broken}: broken: ") and "the records before are kept" in line
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=WAIT) == 1  # a file of the ring was left out
    assert said.rest() == []


def test_files_of_a_rotating_capture_are_taken_by_number():
    from closecodec.capture.files import natural_order

    names = ["trace.pcap10", "trace.pcap", "trace.pcap2", "trace.pcap1",
             "ring_00002_20261207120000.pcapng", "ring_00010_20261207120500.pcapng"]
    assert sorted(names, key=natural_order) == ["ring_00002_20261207120000.pcapng", "ring_00010_20261207120500.pcapng",
                                                "trace.pcap", "trace.pcap1", "trace.pcap2", "trace.pcap10"]


def test_stopping_a_followed_file_that_keeps_growing_ends_the_run(tmp_path):
    """Stopping reads what the file held then, not what is written while that is read."""
    data = CAPTURE.read_bytes()
    path = tmp_path / "growing.pcap"
    path.write_bytes(data)
    process = subprocess.Popen(command("--follow", str(path), "--summary"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    Lines(process.stderr).until("Ctrl-C stops")
    done = threading.Event()

    def write() -> None:  # packets, as fast as the disk takes them, until the run ends
        packet = data[24:24 + 16 + int.from_bytes(data[32:36], "little")]
        with path.open("ab") as file:
            while not done.is_set():
                file.write(packet * 1000)
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=WAIT) == 0
    finally:
        done.set()
        writer.join()


def test_a_followed_file_stops_after_its_duration(tmp_path):
    path = tmp_path / "quiet.pcap"
    path.write_bytes(CAPTURE.read_bytes()[:5000])
    done = subprocess.run(command("--follow", str(path), "-a", "duration:0.5", "--summary"), capture_output=True,
                          text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr
    assert "truncated" not in done.stderr  # a file stopped mid-record while followed is not cut short


@pytest.mark.parametrize("args, message", [
    (["-i", "lo", str(CAPTURE)], "does not go with FILE"),
    (["-i", "lo", "--jobs", "2"], "one process"),
    (["--follow", str(CAPTURE), "--jobs", "2"], "one process"),
    (["-c", "5", str(CAPTURE)], "are for a live capture"),
    (["-a", "duration:5", str(CAPTURE)], "-a is for"),
    (["--follow", str(CAPTURE), str(CAPTURE)], "--follow follows one capture file"),
    (["--follow", "-"], "--follow follows one capture file"),
    (["-i", "lo", "-a", "duration:0"], "duration:S"),
])
def test_live_options_that_do_not_go_together_are_refused(args, message):
    done = subprocess.run(command(*args), capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 2 and message in done.stderr and not done.stdout


@pytest.mark.parametrize("option", [["--jobs", "2"], ["--dask", "local"]])
def test_a_pipe_is_refused_for_several_processes_before_it_is_opened(option, tmp_path):
    """A named pipe is not opened (that waits for a writer) only to be refused; standard input as a pipe
    is refused the same way."""
    fifo = tmp_path / "packets"
    os.mkfifo(fifo)
    for args, stdin in (([str(fifo)], None), (["-"], subprocess.PIPE)):
        done = subprocess.run(command(*args, *option), capture_output=True, text=True, timeout=WAIT,
                              input="" if stdin else None)
        assert done.returncode == 2 and not done.stdout
        assert "a pipe is read in one process: --jobs and --dask are for files" in done.stderr


# -- -i: a real capture on loopback ----------------------------------------------------------------


def capture_tools() -> List[str]:
    return [tool for tool in ("dumpcap", "tcpdump") if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin")]


def only(tool: str, tmp_path: Path) -> Dict[str, str]:
    """An environment whose PATH has ``tool`` alone, of the capture tools."""
    folder = tmp_path / f"only-{tool}"
    if not folder.exists():
        folder.mkdir()
        (folder / tool).symlink_to(shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin"))
    return dict(tool_env(), PATH=str(folder))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ready(tool: Optional[str], tmp_path: Path) -> Dict[str, str]:
    """The environment of a command that captures with ``tool`` alone (None: the first installed); skip,
    with the reason, where it is not installed or cannot capture on loopback here."""
    tools = capture_tools()
    if tool is None and tools:
        tool = tools[0]
    if tool not in tools:
        pytest.skip(f"{tool or 'neither dumpcap nor tcpdump'} is not installed (CI installs it)")
    env = only(tool, tmp_path)
    done = subprocess.run(command("-i", "lo", "-a", "duration:1"), capture_output=True, text=True, env=env,
                          timeout=WAIT)
    if done.returncode != 0:
        pytest.skip(f"{tool} cannot capture on lo here: {done.stderr.strip()}")
    return env


def websocket_closes(port: int) -> None:
    pytest.importorskip("websockets", reason="websockets is not installed")
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def handler(connection: Any) -> None:
        async for _ in connection:
            pass

    async def run() -> None:
        async with serve(handler, "127.0.0.1", port):
            for code in (1000, 1001, 4000):
                async with connect(f"ws://127.0.0.1:{port}") as client:
                    await client.send("hello")
                    await client.close(code=code, reason=f"bye {code}")
    asyncio.run(run())


def start_live(env: Dict[str, str], *args: str) -> Any:
    process = subprocess.Popen(command("-i", "lo", "--format", "jsonl", *args), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    said = Lines(process.stderr)
    said.until("Ctrl-C stops")  # the tool captures from then on
    return process, Lines(process.stdout), said


@pytest.mark.capture
@pytest.mark.parametrize("tool", ["dumpcap", "tcpdump"])
def test_a_live_capture_on_loopback_shows_every_close_as_it_happens(tool, tmp_path):
    port = free_port()
    process, lines, said = start_live(ready(tool, tmp_path), "-f", f"tcp port {port}")
    websocket_closes(port)
    try:
        seen = lines.take(6)  # each side of three closes, before the capture ends
    except AssertionError as error:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=WAIT)
        raise AssertionError(f"{error}; the command said: {said.so_far()}") from None
    assert sorted(line.split('"code": ')[1].split(",")[0] for line in seen) == ["1000", "1000", "1001", "1001",
                                                                                "4000", "4000"]
    assert all('"kind": "ws_close"' in line and '"reason": "bye ' in line for line in seen)
    process.send_signal(signal.SIGINT)  # Ctrl-C: the tool stops, what it had is read, the command ends
    assert lines.rest() == []
    assert process.wait(timeout=WAIT) == 0


@pytest.mark.capture
def test_a_live_mqtt_disconnect_from_paho_and_mosquitto(tmp_path):
    env = ready(None, tmp_path)
    from test_capture_midstream import _mosquitto_peers

    async def run() -> str:
        serve, talk = await _mosquitto_peers()
        port, stop = await serve()
        process, lines, said = start_live(env, "-f", f"tcp port {port}")
        try:
            await talk(port)
        finally:
            await stop()
        try:
            line = lines.until("mqtt_disconnect")[-1]
        except AssertionError as error:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=WAIT)
            raise AssertionError(f"{error}; the command said: {said.so_far()}") from None
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=WAIT) == 0
        return line
    line = asyncio.run(run())
    assert '"name": "DISCONNECT_WITH_WILL_MESSAGE"' in line and '"client_id": "sensor-7"' in line


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_ends_a_followed_file_with_the_summary_of_what_was_seen(tmp_path, signum):
    path = tmp_path / "written.pcap"
    path.write_bytes(CAPTURE.read_bytes())
    process = subprocess.Popen(command("--follow", str(path), "--summary"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    Lines(process.stderr).until("Ctrl-C stops")
    process.send_signal(signum)  # stopping reads what the file holds, then ends
    out, _ = process.communicate(timeout=WAIT)
    assert process.returncode == 0
    expected = subprocess.run(command(str(path), "--summary"), capture_output=True, check=True).stdout
    assert out == expected and b"total" in out


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="needs POSIX signal masks")
def test_a_stop_signal_stops_while_the_main_thread_cannot_run_its_handler():
    """The race a live run met (one in twenty): a Ctrl-C that came just before the main thread entered the
    read of a quiet pipe left its Python handler waiting behind that read, for ever. Here the main thread
    blocks the signal and reads a pipe that only the stop closes; the signal lands on another thread."""
    from closecodec.cli import _Stopping

    read_end, write_end = os.pipe()
    closed_by: List[str] = []
    lock = threading.Lock()

    def close(by: str) -> None:
        with lock:
            if not closed_by:
                closed_by.append(by)
                os.close(write_end)

    class Source:
        def stop(self) -> None:
            close(threading.current_thread().name)

    awake = threading.Event()
    catcher = threading.Thread(target=awake.wait, daemon=True)  # a thread that takes the signal
    catcher.start()
    failsafe = threading.Timer(WAIT, close, args=("the failsafe",))
    failsafe.start()
    stopping = _Stopping(Source(), None)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert os.read(read_end, 1) == b""  # the pipe ended
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)  # the handler runs now, late: the run had stopped
        stopping.end()
        failsafe.cancel()
        awake.set()
        os.close(read_end)
    assert closed_by == ["closecodec-stop"] and stopping.stopped


def test_signals_after_the_stop_are_quiet_and_the_wakeup_fd_is_put_back(monkeypatch):
    """A second Ctrl-C (here SIGTERMs) comes after the stop: the stop is asked once, nothing is reported
    (a wakeup fd whose reader had gone made each one an "Exception ignored" report), and ``end()`` puts
    back the wakeup fd it found."""
    from closecodec.cli import _Stopping

    unraisable: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    stops: "queue.Queue[str]" = queue.Queue()

    class Source:
        def stop(self) -> None:
            stops.put(threading.current_thread().name)

    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    stopping = _Stopping(Source(), None)
    try:
        signal.raise_signal(signal.SIGTERM)
        assert stops.get(timeout=WAIT) == "closecodec-stop"
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)
    finally:
        stopping.end()
    assert stopping.stopped and stops.empty() and unraisable == []
    assert signal.set_wakeup_fd(before) == before


@pytest.mark.capture
def test_count_and_duration_end_a_live_capture_on_their_own(tmp_path):
    env = ready(None, tmp_path)
    port = free_port()
    process, lines, _ = start_live(env, "-f", f"tcp port {port}", "-c", "4")
    websocket_closes(port)  # more than 4 packets: the tool stops after the 4th (a handshake's)
    assert lines.rest() == []
    assert process.wait(timeout=WAIT) == 0
    quiet = subprocess.run(command("-i", "lo", "-f", f"tcp port {free_port()}", "-a", "duration:0.5"),
                           capture_output=True, text=True, env=env, timeout=WAIT)
    assert quiet.returncode == 0 and "(no closes found)" in quiet.stdout


@pytest.mark.capture
@pytest.mark.parametrize("tool", ["dumpcap", "tcpdump"])
def test_the_tool_ends_with_a_run_whose_output_is_closed(tool, tmp_path):
    port = free_port()
    process = subprocess.Popen(command("-i", "lo", "--format", "jsonl", "-f", f"tcp port {port}"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ready(tool, tmp_path))
    Lines(process.stderr).until("Ctrl-C stops")
    assert len(running(f"tcp port {port}")) == 2, "the command and its tool"
    process.stdout.close()  # as `| head` does: the first record written breaks the pipe
    websocket_closes(port)
    assert process.wait(timeout=WAIT) == 141  # the command's status for a closed output
    assert not running(f"tcp port {port}")  # its tool went with it


@pytest.mark.capture
def test_a_capture_that_cannot_start_says_why(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    none = subprocess.run(command("-i", "lo"), capture_output=True, text=True, env=dict(tool_env(), PATH=str(empty)),
                          timeout=WAIT)
    assert none.returncode == 2 and "needs tcpdump or dumpcap" in none.stderr
    tools = capture_tools()
    if not tools:
        return
    bad = subprocess.run(command("-i", "no-such-interface0", "-a", "duration:5"), capture_output=True, text=True,
                         env=only(tools[0], tmp_path), timeout=WAIT)
    assert bad.returncode == 2 and f"{tools[0]} failed" in bad.stderr and not bad.stdout
    assert "capturing on" not in bad.stderr
    if "tcpdump" in tools:
        several = subprocess.run(command("-i", "lo", "-i", "lo"), capture_output=True, text=True,
                                 env=only("tcpdump", tmp_path), timeout=WAIT)
        assert several.returncode == 2 and "install dumpcap" in several.stderr
