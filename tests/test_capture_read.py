"""Reading pcap and pcapng files: formats, byte orders, timestamps, blocks, truncation, errors, memory."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc

import pytest

from closecodec import capture as public
from closecodec.errors import IncompleteError, MalformedError

from helpers import (
    DATA, backend_module, block, epb, ether, idb, ipv4, null, option, pb, pcap_file, shb, spb, tcp,
)

PKT = ether(ipv4(tcp(1000, 2000, 1, payload=b"hello")))


def read(capture, data: bytes, **options):
    reader = capture.PacketReader(io.BytesIO(data), **options)
    return list(reader), reader


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(capture, big, nano):
    ts = 1_795_626_857_909_984_321
    data = pcap_file([(ts, PKT, None), (ts + 1000, PKT[:30], len(PKT))], big=big, nano=nano, link=1)
    packets, reader = read(capture, data)
    assert reader.format == "pcap" and reader.error is None and reader.frames == 2
    assert [p.frame for p in packets] == [1, 2]
    expected = ts if nano else ts // 1000 * 1000
    assert packets[0].timestamp_ns == expected
    assert packets[0].timestamp == pytest.approx(expected / 1e9)
    assert bytes(packets[0].data) == PKT and packets[0].original_length == len(PKT)
    assert bytes(packets[1].data) == PKT[:30] and packets[1].original_length == len(PKT)
    assert packets[0].link_type == 1 and packets[0].interface == 0
    assert reader.offset == len(data)


def test_pcap_link_type_keeps_low_16_bits(capture):
    data = bytearray(pcap_file([(0, PKT, None)]))
    data[20:24] = (0x14000000 | 228).to_bytes(4, "little")  # FCS bits above the link type
    packets, _ = read(capture, bytes(data))
    assert packets[0].link_type == 228


@pytest.mark.parametrize("big", [False, True])
def test_pcapng_interfaces_resolutions_and_block_kinds(capture, big):
    raw = ipv4(tcp(1, 2, 3, payload=b"raw"))
    data = b"".join([
        shb(big, options=option(4, b"test writer", big) + option(0, b"", big)),
        idb(1, snaplen=0, big=big),  # no if_tsresol: microseconds
        idb(101, snaplen=0, tsresol=9, big=big),
        idb(0, snaplen=20, tsresol=0x80 | 10, tsoffset=-5, big=big),  # 2**-10 s units
        block(4, b"\0" * 8, big),  # name resolution: skipped
        epb(0, 1_700_000_000_123_456, PKT, big=big),
        epb(1, 1_700_000_000_123_456_789, raw, big=big),
        epb(2, 1025, null(raw), big=big),
        block(5, b"\0" * 16, big),  # interface statistics: skipped
        block(0x40000BAD, b"custom", big),  # custom block: skipped
        pb(1, 42, raw, big=big),
    ])
    packets, reader = read(capture, data)
    assert reader.format == "pcapng" and reader.error is None
    assert [(p.frame, p.interface, p.link_type) for p in packets] == [(1, 0, 1), (2, 1, 101), (3, 2, 0), (4, 1, 101)]
    assert packets[0].timestamp_ns == 1_700_000_000_123_456_000
    assert packets[1].timestamp_ns == 1_700_000_000_123_456_789
    assert packets[2].timestamp_ns == 1025 * 10**9 // 1024 - 5 * 10**9
    assert packets[3].timestamp_ns == 42
    assert bytes(packets[1].data) == raw and bytes(packets[2].data) == null(raw)


def test_pcapng_simple_packet_block_uses_interface_0_and_its_snaplen(capture):
    data = shb() + idb(1, snaplen=20) + spb(PKT[:20], origlen=len(PKT)) + spb(PKT[:8])
    packets, _ = read(capture, data)
    assert [(p.frame, p.timestamp_ns, bytes(p.data), p.original_length) for p in packets] == [
        (1, 0, PKT[:20], len(PKT)), (2, 0, PKT[:8], 8)]


def test_pcapng_sections_restart_interfaces_and_byte_order(capture):
    data = shb(False) + idb(1) + epb(0, 1, PKT) + shb(True) + idb(101, big=True) + epb(0, 2, PKT[14:], big=True)
    packets, _ = read(capture, data)
    assert [(p.frame, p.link_type) for p in packets] == [(1, 1), (2, 101)]
    bad = shb(False) + idb(1) + shb(False) + epb(0, 1, PKT)
    with pytest.raises(MalformedError, match="interface 0, but the section describes 0"):
        read(capture, bad)


@pytest.mark.parametrize("resolution, ticks, expected", [
    (6, 1, 1000), (9, 7, 7), (3, 2, 2_000_000), (0, 3, 3 * 10**9), (12, 123_456, 123),
    (0x80 | 0, 2, 2 * 10**9), (0x80 | 30, 2**30 + 1, 10**9 + 0), (0x80 | 20, 3, 2861),
    (19, 2**64 - 1, (2**64 - 1) * 10**9 // 10**19), (0, 2**64 - 1, (2**64 - 1) * 10**9),
])
def test_timestamp_resolutions_are_exact(capture, resolution, ticks, expected):
    packets, _ = read(capture, shb() + idb(1, tsresol=resolution) + epb(0, ticks, PKT))
    assert packets[0].timestamp_ns == expected


def test_tsoffset_is_added_in_seconds(capture):
    packets, _ = read(capture, shb() + idb(1, tsresol=9, tsoffset=1_000_000) + epb(0, 5, PKT))
    assert packets[0].timestamp_ns == 10**15 + 5


@pytest.mark.parametrize("block_size", [64, 100, 4096, 1 << 20])
def test_truncated_files_yield_what_is_complete_and_say_where(capture, block_size):
    whole = pcap_file([(0, PKT, None)] * 3)
    record = 16 + len(PKT)
    for cut in range(24, len(whole)):
        packets, reader = read(capture, whole[:cut], block_size=block_size)
        complete = (cut - 24) // record
        assert len(packets) == complete
        if (cut - 24) % record:
            assert isinstance(reader.error, IncompleteError)
            assert reader.error.offset == 24 + complete * record
            assert "pcap packet record" in str(reader.error)
        else:
            assert reader.error is None


class ReadOnlyFile:
    """A binary file object with read() only (no readinto), giving at most ``step`` bytes a call."""

    def __init__(self, data: bytes, step: int) -> None:
        self._file, self._step = io.BytesIO(data), step

    def read(self, size: int = -1) -> bytes:
        return self._file.read(min(size, self._step) if size >= 0 else self._step)


class TricklingFile(ReadOnlyFile):
    """A binary file object whose readinto() fills at most ``step`` bytes a call, like a pipe."""

    def readinto(self, buffer) -> int:
        return self._file.readinto(memoryview(buffer)[:self._step])


@pytest.mark.parametrize("source", [ReadOnlyFile, TricklingFile])
@pytest.mark.parametrize("step", [1, 7, 1 << 20])
@pytest.mark.parametrize("block_size", [64, 4096])
def test_files_without_readinto_or_with_short_reads_read_the_same(capture, source, step, block_size):
    pcap = pcap_file([(k, PKT + bytes([k]) * k, None) for k in range(40)])
    pcapng = b"".join([shb(), idb(1)] + [epb(0, k, PKT + bytes([k]) * k) for k in range(40)])
    for whole in (pcap, pcapng, pcap[:-3], pcapng[:-5]):
        expected, reader = read(capture, whole, block_size=block_size)
        got = capture.PacketReader(source(whole, step), block_size=block_size)
        assert list(got) == expected and repr(got.error) == repr(reader.error)
    assert all(packet.data.readonly for packet in expected)


@pytest.mark.parametrize("block_size", [64, 300, 4096])
def test_packets_kept_across_blocks_keep_their_bytes(capture, block_size):
    # The compiled reader refills a block in place once nothing views it: a packet still held (its data
    # is a view of the block) must keep the block from being reused, whichever packets are kept.
    payloads = [bytes([k]) * (k * 7 % 90) for k in range(200)]
    data = pcap_file([(k, PKT + payload, None) for k, payload in enumerate(payloads)])
    kept = []
    for packet in capture.PacketReader(io.BytesIO(data), block_size=block_size):
        if packet.frame % 3 == 0 or packet.frame > 190:
            kept.append(packet)
    assert [bytes(packet.data) for packet in kept] == [
        PKT + payloads[frame - 1] for frame in range(1, 201) if frame % 3 == 0 or frame > 190
    ]


class BoastingFile(ReadOnlyFile):
    """A broken file object whose readinto() claims more bytes than the buffer holds."""

    def readinto(self, buffer) -> int:
        return len(buffer) + 1


def test_a_file_that_claims_more_than_it_was_given_is_an_error_not_a_read_past_the_block():
    # Only the compiled reader has the file fill its blocks in place.
    reader = backend_module("capture", "c").PacketReader(BoastingFile(b"", 1))
    with pytest.raises(OSError, match="readinto"):
        list(reader)


def test_truncated_pcapng_and_headers(capture):
    blocks = [shb(), idb(1), epb(0, 1, PKT), epb(0, 2, PKT)]
    whole = b"".join(blocks)
    boundaries = [sum(len(b) for b in blocks[:i]) for i in range(1, len(blocks) + 1)]
    for cut in range(len(whole) + 1):
        packets, reader = read(capture, whole[:cut])
        assert len(packets) == sum(cut >= end for end in boundaries[2:])
        if cut in boundaries:
            assert reader.error is None
        else:
            assert isinstance(reader.error, IncompleteError)
            assert reader.error.offset == max([0] + [end for end in boundaries if end <= cut])
    for cut in (0, 2, 4, 23):
        _, reader = read(capture, pcap_file([])[:cut])
        assert isinstance(reader.error, IncompleteError) and reader.error.offset == 0


@pytest.mark.parametrize("data, message, offset", [
    (b"PK\x03\x04rest", "not a pcap or pcapng file: it starts with 50 4b 03 04", 0),
    (b"GET / HTTP/1.1", "not a pcap or pcapng file: it starts with 47 45 54 20", 0),
    (b"\x00\x01", "it starts with 00 01", 0),
])
def test_not_a_capture_names_the_first_bytes(capture, data, message, offset):
    with pytest.raises(MalformedError, match=message) as error:
        read(capture, data)
    assert error.value.offset == offset


def test_broken_structure_is_malformed(capture):
    cases = [
        (shb()[:8] + b"\x00\x00\x00\x00" + shb()[12:], "bad byte-order magic 00 00 00 00", 8),
        (shb(version=(2, 0)), "unsupported pcapng version 2.0", 12),
        (shb() + b"\x06\0\0\0\x0e\0\0\0" + b"\0" * 8, "not a multiple of 4", len(shb()) + 4),
        (shb() + b"\x06\0\0\0\x00\0\0\xf0" + b"\0" * 8, "over the 16777216-byte record limit", len(shb()) + 4),
        (shb() + block(6, b"\0" * 20)[:-4] + b"\x09\0\0\0", "does not match its trailing copy 9", len(shb()) + 28),
        (shb() + idb(1) + epb(3, 0, PKT), "packet on interface 3", len(shb() + idb(1)) + 8),
        (shb() + spb(PKT), "simple packet block before any interface", len(shb())),
        (shb() + block(1, b"\x01\0\0\0\0\0\0\0" + b"\x09\0\x02\0\x06\x06\0\0"), "if_tsresol option of 2 bytes",
         len(shb()) + 16),
        (shb() + block(1, b"\x01\0\0\0\0\0\0\0" + b"\x02\0\x40\0abcd"), "option 2 runs past", len(shb()) + 16),
        (pcap_file([])[:4] + b"\x03\x00\x04\x00" + pcap_file([])[8:], "unsupported pcap version 3.4", 4),
    ]
    for data, message, offset in cases:
        with pytest.raises(MalformedError, match=message) as error:
            read(capture, data)
        assert error.value.offset == offset, message
    # An EPB whose captured length runs past its block.
    bad = bytearray(shb() + idb(1) + epb(0, 0, PKT))
    at = len(shb() + idb(1)) + 20
    bad[at:at + 4] = (len(PKT) + 8).to_bytes(4, "little")
    with pytest.raises(MalformedError, match="runs past the end of its pcapng block"):
        read(capture, bytes(bad))


def test_huge_claimed_lengths_fail_without_allocating(capture):
    huge_pcap = pcap_file([])[:24] + (0).to_bytes(8, "little") + (0xFFFFFFF0).to_bytes(4, "little") * 2
    with pytest.raises(MalformedError, match="over the 16777216-byte record limit"):
        read(capture, huge_pcap)
    huge_block = shb() + b"\x06\0\0\0" + (0xFFFFFFFC).to_bytes(4, "little")
    tracemalloc.start()
    try:
        with pytest.raises(MalformedError, match="4294967292 is over"):
            read(capture, huge_block)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
    # The limit is settable.
    with pytest.raises(MalformedError, match="over the 64-byte record limit"):
        read(capture, shb() + idb(1) + epb(0, 0, PKT), max_record=64)


def test_reader_arguments_are_checked(capture):
    with pytest.raises(ValueError):
        capture.PacketReader(io.BytesIO(), block_size=1)
    with pytest.raises(TypeError):
        capture.PacketReader(io.BytesIO(), max_record=1.5)


def test_backends_agree_on_real_captures(capture_both):
    for name in ("websocket-close-codes.pcap", "websocket-close-codes.pcapng", "mqtt5-session-takeover.pcapng"):
        data = (DATA / name).read_bytes()
        results = []
        for module in capture_both:
            packets, reader = read(module, data, block_size=1000)
            results.append((packets, [module.parse_packet(p.data, p.link_type) for p in packets], reader.offset))
        assert results[0] == results[1]


def test_every_packet_of_the_real_captures_is_read_and_parsed(capture):
    for name, count in (("websocket-close-codes.pcap", 498), ("websocket-close-codes.pcapng", 498),
                        ("mqtt5-session-takeover.pcapng", 470)):
        packets, reader = read(capture, (DATA / name).read_bytes())
        assert len(packets) == count and reader.error is None
        assert all(type(capture.parse_packet(p.data, p.link_type)) is not str for p in packets)


def test_pcap_and_pcapng_of_the_same_traffic_agree_bar_timestamp_precision(capture):
    pcap, _ = read(capture, (DATA / "websocket-close-codes.pcap").read_bytes())
    pcapng, _ = read(capture, (DATA / "websocket-close-codes.pcapng").read_bytes())
    assert [bytes(p.data) for p in pcap] == [bytes(p.data) for p in pcapng]
    assert [p.original_length for p in pcap] == [p.original_length for p in pcapng]
    assert all(abs(a.timestamp_ns - b.timestamp_ns) < 1_000_000 for a, b in zip(pcap, pcapng))
    assert all(a.timestamp_ns % 1000 == 0 for a in pcap)


def test_timestamps_match_the_ground_truth(capture):
    import json

    truth = [json.loads(line) for line in (DATA / "websocket-close-codes.pcap.closes.jsonl").open()]
    packets, _ = read(capture, (DATA / "websocket-close-codes.pcap").read_bytes())
    for row in truth:
        seconds, fraction = row["epoch"].split(".")
        assert packets[row["frame"] - 1].timestamp_ns == int(seconds) * 10**9 + int(fraction.ljust(9, "0"))


def test_open_capture_takes_a_path_a_file_and_stdin(tmp_path):
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_file([(0, PKT, None)] * 2))
    assert len(list(public.open_capture(path))) == 2
    assert len(list(public.open_capture(str(path)))) == 2
    with path.open("rb") as file:
        assert len(list(public.open_capture(file))) == 2
    code = "import sys; from closecodec.capture import open_capture; print(len(list(open_capture('-'))))"
    with path.open("rb") as stdin:
        out = subprocess.run([sys.executable, "-c", code], stdin=stdin, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2"


class _Generated(io.RawIOBase):
    """A pcap file of ``count`` packets made on the fly: never held in memory."""

    def __init__(self, count: int, payload: int = 1400) -> None:
        self._header = pcap_file([])
        self._record = pcap_file([(0, ether(ipv4(tcp(1, 2, 0, payload=b"x" * payload))), None)])[24:]
        self._left = count
        self._pending = self._header

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while len(self._pending) < len(buffer) and self._left:
            take = min(self._left, 256)
            self._pending += self._record * take
            self._left -= take
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def test_constant_memory_on_a_capture_far_larger_than_the_peak(capture):
    count = 40_000  # ~58 MB of capture
    source = io.BufferedReader(_Generated(count), buffer_size=1 << 16)
    tracemalloc.start()
    try:
        reader = capture.PacketReader(source, block_size=1 << 18)
        n = 0
        total = 0
        for packet in reader:
            n += 1
            total += len(packet.data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == count and total > 50_000_000
    assert peak < 4 << 20, peak
