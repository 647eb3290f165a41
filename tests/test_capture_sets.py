"""Capture sets: several files read as one capture (docs/capture.md, "Capture sets"), on both backends.

The shared captures are rewritten as sets of pcap files split at packet boundaries (as
``editcap -c`` and tcpdump's ``-C``/``-G`` rotations cut a capture), interleaved (as two
capture points that overlap in time), and spoiled (truncated, not a capture, missing):
the records of a set are the records of the whole, with each record's ``file`` and
``frame`` the file and the frame inside it that hold it.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, List, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closecodec.capture import _py as capture_py
from closecodec.capture.records import CloseRecordReader, close_records
from closecodec.capture.reassembly import capture_files, first_packet_time
from closecodec.capture.values import FILE_SHIFT

from helpers import ALL_CAPTURES, DATA, installed, installed_sides, pcap_file, tool_env, use_backend

Packets = List[Tuple[int, bytes, None]]


def packets_of(name: str) -> Packets:
    """A shared capture's packets, as ``(timestamp_ns, data, None)`` (all are Ethernet)."""
    with (DATA / name).open("rb") as file:
        return [(p.timestamp_ns, bytes(p.data), None) for p in capture_py.PacketReader(file)]


PACKETS = {name: packets_of(name) for name in ALL_CAPTURES}


def records(source: Any, side: str, **options: Any) -> Tuple[List[Any], CloseRecordReader]:
    with use_backend(side):
        reader = CloseRecordReader(source, **options)
    with reader:
        return list(reader), reader


def comparable(found: List[Any], starts: Sequence[int] = (0,)) -> List[Tuple[Any, ...]]:
    """Records as the whole capture numbers them: the frame in ``part-N.pcap`` mapped back by the index of
    its first packet, ``starts[N]``."""
    out = []
    for record in found:
        stem = "" if record.file is None else Path(record.file).stem
        index = int(stem[5:]) if stem.startswith("part-") else 0
        out.append((starts[index] + record.frame, record.timestamp_ns, record.src, record.dst, record.kind,
                    record.code, record.name, record.reason, record.detection, record.data_lost))
    return out


def write_set(folder: Path, packets: Packets, cuts: Sequence[int]) -> List[int]:
    """Write ``packets`` as files ``part-0.pcap``, ``part-1.pcap``, ... cut before each index in ``cuts``;
    return the index of each file's first packet."""
    bounds = [0] + sorted(set(cuts)) + [len(packets)]
    for n, (a, b) in enumerate(zip(bounds, bounds[1:])):
        (folder / f"part-{n}.pcap").write_bytes(pcap_file(packets[a:b], nano=True))
    return bounds[:-1]


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_a_capture_cut_around_every_close_gives_the_records_of_the_whole(tmp_path, name):
    packets = PACKETS[name]
    whole_path = tmp_path / "whole.pcap"
    whole_path.write_bytes(pcap_file(packets, nano=True))
    whole, _ = records(whole_path, "c" if "c" in installed_sides() else "py")
    expected = comparable(whole)
    frames = sorted({r.frame for r in whole})
    for n, frame in enumerate(frames):
        for cut in (frame - 1, frame):  # just before the packet holding the close, just after it
            if not 0 < cut < len(packets):
                continue
            folder = tmp_path / f"cut-{n}-{cut}"
            folder.mkdir()
            starts = write_set(folder, packets, [cut])
            side = installed_sides()[n % len(installed_sides())]
            found, reader = records([folder], side)
            assert comparable(found, starts) == expected, (name, cut, side)
            assert reader.problems == []
            assert len({r.file for r in found}) <= 2


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
@given(name=st.sampled_from(ALL_CAPTURES), cuts=st.lists(st.integers(1, 10**6), max_size=12))
def test_any_split_gives_the_records_of_the_whole(tmp_path_factory, name, cuts):
    packets = PACKETS[name]
    cuts = [cut % len(packets) for cut in cuts if cut % len(packets)]
    folder = tmp_path_factory.mktemp("split")
    starts = write_set(folder, packets, cuts)
    (folder / "whole").mkdir()
    (folder / "whole" / "all.pcap").write_bytes(pcap_file(packets, nano=True))
    results = []
    for side in installed_sides():
        whole, _ = records(folder / "whole" / "all.pcap", side)
        found, reader = records(sorted(folder.glob("part-*.pcap")), side)
        assert comparable(found, starts) == comparable(whole)
        assert reader.problems == []
        results.append([r.to_dict() for r in found])
    assert all(result == results[0] for result in results)  # both backends alike, files and frames included


def test_overlapping_files_are_merged_in_time_order(tmp_path):
    packets = PACKETS["websocket-close-codes.pcapng"]
    # Two capture points that saw alternate packets: they overlap in time all along.
    (tmp_path / "part-0.pcap").write_bytes(pcap_file(packets[0::2], nano=True))
    (tmp_path / "part-1.pcap").write_bytes(pcap_file(packets[1::2], nano=True))
    whole_path = tmp_path / "whole.pcap"
    whole_path.write_bytes(pcap_file(packets, nano=True))
    for side in installed_sides():
        whole, _ = records(whole_path, side)
        # Given in the other order: time decides, not the order of the paths.
        found, _ = records([tmp_path / "part-1.pcap", tmp_path / "part-0.pcap"], side)
        assert [(r.timestamp_ns, r.src, r.code) for r in found] == [(r.timestamp_ns, r.src, r.code) for r in whole]
        for record in found:  # each in the file and frame that hold it
            index = int(Path(record.file).stem[-1])
            assert packets[(record.frame - 1) * 2 + index][0] == record.timestamp_ns


def test_a_directory_is_its_capture_files_by_their_bytes(tmp_path):
    packets = PACKETS["mqtt5-session-takeover.pcapng"]
    write_set(tmp_path, packets, [100, 200])
    (tmp_path / "part-1.pcap").rename(tmp_path / "trace.bin")  # a capture with no capture-like name
    (tmp_path / "notes.txt").write_text("not a capture\n")
    (tmp_path / "subdir").mkdir()
    files, left_out = capture_files([tmp_path])
    assert [Path(f).name for f in files] == ["part-0.pcap", "part-2.pcap", "trace.bin"]
    assert [(Path(path).name, "not a pcap" in why) for path, why in left_out] == [("notes.txt", True)]
    whole, _ = records(io.BytesIO(pcap_file(packets, nano=True)), installed_sides()[0])
    found, reader = records([tmp_path], installed_sides()[0])
    assert len(found) == len(whole) and [r.code for r in found] == [r.code for r in whole]
    assert [(Path(path).name, "not a pcap" in why) for path, why in reader.problems] == [("notes.txt", True)]


def test_bad_files_are_named_and_the_rest_is_read(tmp_path):
    packets = PACKETS["websocket-close-codes.pcap"]
    starts = write_set(tmp_path, packets, [150, 300])
    last = tmp_path / "part-2.pcap"
    last.write_bytes(last.read_bytes()[:-30])  # tcpdump killed: its last record cut
    (tmp_path / "empty.pcap").write_bytes(b"")
    (tmp_path / "garbage.pcap").write_bytes(b"\xa1\xb2\xc3\xd4" + b"\xff" * 40)  # a pcap magic, then nonsense
    whole, _ = records(io.BytesIO(pcap_file(packets[:-1], nano=True)), installed_sides()[0])
    paths = [tmp_path / "part-0.pcap", tmp_path / "missing.pcap", tmp_path / "garbage.pcap", tmp_path / "empty.pcap",
             tmp_path / "part-1.pcap", last]
    outcomes = []
    for side in installed_sides():
        found, reader = records(paths, side)
        problems = {Path(path).name: why for path, why in reader.problems}
        assert set(problems) == {"missing.pcap", "garbage.pcap", "empty.pcap", "part-2.pcap"}
        assert problems["missing.pcap"].startswith("cannot read it")
        assert problems["garbage.pcap"].startswith("not a capture file")
        assert problems["empty.pcap"] == "holds no packet"
        assert problems["part-2.pcap"].startswith("truncated")
        # Nothing found before the cut is lost: the records of the whole up to its last packet.
        assert comparable(found, starts) == comparable(whole)
        outcomes.append(([r.to_dict() for r in found], reader.problems))
    assert all(outcome == outcomes[0] for outcome in outcomes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(list(close_records(paths))) == len(whole)
    assert sorted(str(w.message).split(": ")[1] for w in caught) == sorted(str(p) for p in paths[1:4] + [last])


def test_a_connection_continues_across_files(tmp_path):
    packets = PACKETS["mqtt5-session-takeover.pcapng"]
    for cut in range(1, len(packets), 7):  # every 7th boundary: connections open across many of them
        folder = tmp_path / str(cut)
        folder.mkdir()
        starts = write_set(folder, packets, range(cut, len(packets), 40))
        found, _ = records([folder], installed_sides()[0])
        whole, _ = records(io.BytesIO(pcap_file(packets, nano=True)), installed_sides()[0])
        assert comparable(found, starts) == comparable(whole)
        assert not any(r.data_lost for r in found)


def test_the_merger_numbers_frames_by_file(tmp_path):
    packets = PACKETS["diffusion-js-client-handshake-abort.pcap"]
    parts = [pcap_file(packets[:5], nano=True), pcap_file(packets[5:], nano=True)]
    for module in installed("capture"):
        opens = [lambda data=data: module.PacketReader(io.BytesIO(data)) for data in parts]
        firsts = [first_packet_time(module.PacketReader(io.BytesIO(data))) for data in parts]
        merger = module.PacketMerger(opens, firsts)
        frames = [(p.frame >> FILE_SHIFT, p.frame & ((1 << FILE_SHIFT) - 1)) for p in merger]
        assert frames == [(0, n) for n in range(1, 6)] + [(1, n) for n in range(1, len(packets) - 4)]
        assert merger.packets == len(packets) and merger.failures == []
        with pytest.raises(TypeError):
            module.PacketMerger(opens, firsts[:1])


def test_a_merger_asks_for_more_files_when_every_file_has_ended():
    """``more`` may add files when the merger has read them all (a followed ring's next file, after one
    that failed): what it adds is merged, a file that fails in between is in ``failures``, and a closed
    merger asks no more."""
    packets = PACKETS["diffusion-js-client-handshake-abort.pcap"]
    parts = [pcap_file(packets[:5], nano=True), b"not a capture file", pcap_file(packets[5:], nano=True)]
    for module in installed("capture"):
        asked: List[int] = []

        def more() -> bool:
            asked.append(merger.packets)
            if len(asked) == len(parts):
                return False
            merger.add(lambda data=parts[len(asked)]: module.PacketReader(io.BytesIO(data)))
            return True

        merger = module.PacketMerger([lambda: module.PacketReader(io.BytesIO(parts[0]))], [0], more)
        frames = [(p.frame >> FILE_SHIFT, p.frame & ((1 << FILE_SHIFT) - 1)) for p in merger]
        assert frames == [(0, n) for n in range(1, 6)] + [(2, n) for n in range(1, len(packets) - 4)]
        assert asked == [5, 5, len(packets)]
        assert [index for index, _ in merger.failures] == [1]
        merger.close()
        assert list(merger) == [] and len(asked) == len(parts)


def test_a_real_ring_buffer_from_dumpcap(tmp_path):
    """dumpcap's ring buffer (-b filesize) on loopback while websockets peers talk and close: the files,
    read as a set, give the closes of the same packets merged into one file by mergecap."""
    import asyncio
    import shutil
    import signal
    import subprocess

    dumpcap, mergecap = shutil.which("dumpcap"), shutil.which("mergecap")
    if dumpcap is None or mergecap is None:
        pytest.skip("dumpcap and mergecap are not installed (CI installs them with tshark)")
    server = pytest.importorskip("websockets.asyncio.server", reason="websockets is not installed")
    client = pytest.importorskip("websockets.asyncio.client", reason="websockets is not installed")
    closed = pytest.importorskip("websockets.exceptions").ConnectionClosed
    ring_folder = tmp_path / "ring"
    ring_folder.mkdir()

    async def talk() -> int:
        async def echo(connection: Any) -> None:
            try:
                async for message in connection:
                    await connection.send(message)
            except closed:  # the client's close codes are not 1000: websockets raises at the end
                pass

        async with server.serve(echo, "127.0.0.1", 0, compression=None) as running:
            port = running.sockets[0].getsockname()[1]
            ring = subprocess.Popen([dumpcap, "-q", "-i", "lo", "-f", f"tcp port {port}", "-b", "filesize:8",
                                     "-w", str(ring_folder / "ring.pcapng")], stderr=subprocess.PIPE, text=True,
                                    env=tool_env())
            try:
                line = await asyncio.get_running_loop().run_in_executor(None, ring.stderr.readline)
                if "Capturing on" not in line:
                    pytest.skip(f"dumpcap cannot capture on loopback here: {line.strip()}")
                await asyncio.sleep(1)  # it says so a moment before its filter is in place
                for n in range(12):
                    async with client.connect(f"ws://127.0.0.1:{port}/", compression=None) as connection:
                        for _ in range(4):
                            await connection.send("x" * 700)
                            await connection.recv()
                        await connection.close(4000 + n, f"done {n}")
                await asyncio.sleep(0.5)
            finally:
                ring.send_signal(signal.SIGINT)
                ring.communicate(timeout=30)
            return port

    asyncio.run(talk())
    files = sorted(ring_folder.glob("ring_*.pcapng"))
    assert len(files) > 2, files  # 8 kB files: the traffic crossed several
    subprocess.run([mergecap, "-w", str(tmp_path / "merged.pcapng"), *map(str, files)], check=True, timeout=60,
                   env=tool_env())
    for side in installed_sides():
        merged, _ = records(tmp_path / "merged.pcapng", side)
        found, reader = records([ring_folder], side)
        assert reader.problems == [] and len(reader.files) == len(files)
        assert [(r.timestamp_ns, r.src, r.code, r.reason) for r in found] == [
            (r.timestamp_ns, r.src, r.code, r.reason) for r in merged]
        codes = sorted(r.code for r in found if r.direction == "client_to_server")
        assert codes == sorted(set(codes)) and len(codes) >= 8 and set(codes) <= set(range(4000, 4012))
        assert len({r.file for r in found}) > 1  # the closes are spread over the files


def test_a_merger_stopped_early_closes_its_files_and_reads_no_more(tmp_path):
    packets = PACKETS["websocket-close-codes.pcap"]
    starts = write_set(tmp_path, packets, [100, 200])
    paths = [tmp_path / f"part-{n}.pcap" for n in range(len(starts))]
    for module in installed("capture"):
        files: List[Any] = []

        def opener(path: Path) -> Any:
            files.append(path.open("rb"))
            return module.PacketReader(files[-1])

        firsts = [first_packet_time(module.PacketReader(io.BytesIO(path.read_bytes()))) for path in paths]
        merger = module.PacketMerger([lambda path=path: opener(path) for path in paths], firsts)
        taken = [next(merger) for _ in range(150)]  # into the second file
        assert taken[-1].frame >> FILE_SHIFT == 1
        merger.close()
        assert files and all(file.closed for file in files)
        assert list(merger) == []  # nothing more, and no crash


def test_a_bad_block_size_for_a_set_is_an_error_at_once(tmp_path):
    write_set(tmp_path, PACKETS["diffusion-js-client-handshake-abort.pcap"], [5])
    for side in installed_sides():
        with use_backend(side), pytest.raises(ValueError, match="block_size"):
            CloseRecordReader([tmp_path], block_size=10)


def test_the_event_reader_reads_one_capture():
    from closecodec.capture import TcpStreamReader

    with pytest.raises(TypeError, match="CloseRecordReader"):
        TcpStreamReader([DATA / ALL_CAPTURES[0]])
