"""Link, IP and TCP headers: every link type, VLAN tags, IPv4 options and fragments, IPv6 extension headers."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closecodec.errors import MalformedError
from closecodec.frames import TcpSegment

from helpers import (
    A4, A6, ACK, B4, B6, PSH, epb, ether, ext_ah, ext_fragment, ext_generic, idb, ipv4,
    ipv6, null, pb, pcap_file, shb, sll, sll2, spb, tcp,
)

SEGMENT = tcp(40000, 443, 0xFFFFFFF0, 77, ACK | PSH, payload=b"payload!", options=b"\x02\x04\x05\xb4")


def expect4(payload=b"payload!", missing=0):
    return TcpSegment(A4, 40000, B4, 443, 0xFFFFFFF0, 77, ACK | PSH, payload, missing)


def expect6(payload=b"payload!", missing=0):
    return TcpSegment(A6, 40000, B6, 443, 0xFFFFFFF0, 77, ACK | PSH, payload, missing)


@pytest.mark.parametrize("link, data, expected", [
    (1, ether(ipv4(SEGMENT)), expect4()),
    (1, ether(ipv6(SEGMENT), 0x86DD), expect6()),
    (1, ether(ipv4(SEGMENT), vlans=[0x8100]), expect4()),
    (1, ether(ipv6(SEGMENT), 0x86DD, vlans=[0x88A8, 0x8100]), expect6()),
    (113, sll(ipv4(SEGMENT)), expect4()),
    (113, sll(ipv6(SEGMENT), 0x86DD), expect6()),
    (276, sll2(ipv4(SEGMENT)), expect4()),
    (276, sll2(ipv6(SEGMENT), 0x86DD), expect6()),
    (101, ipv4(SEGMENT), expect4()),
    (101, ipv6(SEGMENT), expect6()),
    (12, ipv4(SEGMENT), expect4()),
    (228, ipv4(SEGMENT), expect4()),
    (229, ipv6(SEGMENT), expect6()),
    (0, null(ipv4(SEGMENT), 2), expect4()),
    (0, null(ipv4(SEGMENT), 2, big=True), expect4()),
    (0, null(ipv6(SEGMENT), 30), expect6()),
    (0, null(ipv6(SEGMENT), 24, big=True), expect6()),
    (0, null(ipv6(SEGMENT), 28), expect6()),
    (108, null(ipv4(SEGMENT), 2, big=True), expect4()),
    (108, null(ipv6(SEGMENT), 28, big=True), expect6()),
])
def test_every_link_type(capture, link, data, expected):
    assert capture.parse_packet(data, link) == expected


def test_ipv4_options_padding_and_snaplen(capture):
    assert capture.parse_packet(ether(ipv4(SEGMENT, options=b"\x94\x04\0\0" * 3)), 1) == expect4()
    # Ethernet padding after the IP packet is not payload.
    assert capture.parse_packet(ether(ipv4(SEGMENT)) + b"\0" * 10, 1) == expect4()
    # Cut by the snap length: the missing bytes are counted.
    cut = ether(ipv4(SEGMENT))[:-3]
    assert capture.parse_packet(cut, 1) == expect4(b"paylo", 3)
    # Total length 0 (segmentation offload): as much as was captured.
    assert capture.parse_packet(ether(ipv4(SEGMENT, total=0)), 1) == expect4()


def test_ipv6_extension_headers(capture):
    chain = [(0, ext_generic(1)), (43, ext_generic()), (60, ext_generic(2)), (51, ext_ah(6)), (44, ext_fragment())]
    assert capture.parse_packet(ipv6(SEGMENT, extensions=chain), 229) == expect6()
    assert capture.parse_packet(ipv6(SEGMENT, extensions=[(44, ext_fragment(0, True))]), 229) == "IP fragment"
    assert capture.parse_packet(ipv6(SEGMENT, extensions=[(44, ext_fragment(8))]), 229) == "IP fragment"
    assert capture.parse_packet(ipv6(SEGMENT, extensions=[(50, b"\0" * 7)], next_header=6), 229) == "not TCP"
    assert capture.parse_packet(ipv6(b"", next_header=59), 229) == "not TCP"
    # An extension header longer than the payload.
    bad = ipv6(SEGMENT[:4], extensions=[(0, bytes([200]) + b"\0" * 6)])
    assert capture.parse_packet(bad, 229) == "bad IPv6 extension header"


@pytest.mark.parametrize("link, data, reason", [
    (147, ipv4(SEGMENT), "unsupported link type"),
    (1, ether(ipv4(SEGMENT))[:13], "truncated link header"),
    (1, ether(ipv4(SEGMENT), vlans=[0x8100])[:16], "truncated link header"),
    (1, ether(b"\0" * 28, 0x0806), "not IP"),
    (113, sll(b"", 0x0806), "not IP"),
    (0, null(ipv4(SEGMENT), 7), "not IP"),
    (101, b"\x50" + b"\0" * 30, "not IP"),
    (228, ipv6(SEGMENT), "bad IPv4 header"),
    (229, ipv4(SEGMENT), "bad IPv6 header"),
    (1, ether(ipv4(SEGMENT))[:30], "truncated IP header"),
    (1, ether(ipv6(SEGMENT), 0x86DD)[:50], "truncated IP header"),
    (1, ether(ipv6(SEGMENT)), "bad IPv4 header"),
    (1, ether(ipv4(SEGMENT), 0x86DD), "bad IPv6 header"),
    (101, ipv4(SEGMENT, total=10), "bad IPv4 header"),
    (101, bytes([0x44]) + ipv4(SEGMENT)[1:], "bad IPv4 header"),
    (101, ipv4(SEGMENT, fragment=0x2000), "IP fragment"),
    (101, ipv4(SEGMENT, fragment=0x0010), "IP fragment"),
    (101, ipv4(SEGMENT, fragment=0x4000), None),  # DF only: not a fragment
    (101, ipv4(SEGMENT, protocol=17), "not TCP"),
    (101, ipv4(SEGMENT)[:30], "truncated TCP header"),
    (101, ipv4(SEGMENT[:10]), "bad TCP header"),
    (101, ipv4(SEGMENT[:12] + b"\x40" + SEGMENT[13:]), "bad TCP header"),
    (101, ipv4(SEGMENT[:12] + b"\xf0" + SEGMENT[13:]), "bad TCP header"),
    (101, ipv4(SEGMENT)[:42], "truncated TCP header"),
])
def test_skip_reasons(capture, link, data, reason):
    result = capture.parse_packet(data, link)
    if reason is None:
        assert type(result) is TcpSegment
    else:
        assert result == reason


def test_payload_is_a_view_not_a_copy(capture):
    data = bytearray(ether(ipv4(SEGMENT)))
    segment = capture.parse_packet(memoryview(data), 1)
    assert type(segment.payload) is memoryview
    data[-1] = ord("?")
    assert bytes(segment.payload) == b"payload?"


def test_bad_arguments(capture):
    with pytest.raises(TypeError, match="a bytes-like object is required, not 'str'"):
        capture.parse_packet("text", 1)
    with pytest.raises(TypeError, match="link_type must be an int"):
        capture.parse_packet(b"", "1")


LINKS = st.sampled_from([0, 1, 12, 101, 108, 113, 228, 229, 276, 147, -1, 2**40])
# Packets that are nearly valid, then damaged: a byte changed, the tail cut.
GOOD = st.sampled_from([
    (1, ether(ipv4(SEGMENT))), (1, ether(ipv6(SEGMENT), 0x86DD, vlans=[0x8100])), (113, sll(ipv4(SEGMENT))),
    (276, sll2(ipv6(SEGMENT), 0x86DD)), (0, null(ipv4(SEGMENT))), (108, null(ipv6(SEGMENT), 30, big=True)),
    (229, ipv6(SEGMENT, extensions=[(0, ext_generic(1)), (51, ext_ah(4)), (44, ext_fragment())])),
    (101, ipv4(SEGMENT, options=b"\x01" * 8)),
])


@st.composite
def damaged(draw):
    link, data = draw(GOOD)
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return link, bytes(data[:draw(st.integers(0, len(data)))])


def agree(capture_both, data, link):
    compiled, pure = capture_both
    results = []
    for module in (compiled, pure):
        try:
            results.append(("ok", module.parse_packet(data, link)))
        except (TypeError, ValueError) as error:
            results.append(("error", type(error), str(error)))
    assert results[0] == results[1]


@given(data=st.binary(max_size=120), link=LINKS)
def test_backends_agree_on_arbitrary_bytes(capture_both, data, link):
    agree(capture_both, data, link)


@given(case=damaged())
def test_backends_agree_on_damaged_packets(capture_both, case):
    link, data = case
    agree(capture_both, data, link)


# -- the file reader, differentially -------------------------------------------------

FILES = st.sampled_from([
    pcap_file([(10**18 + 5, ether(ipv4(SEGMENT)), None)] * 2, big=True, nano=True),
    pcap_file([(10**18, ether(ipv4(SEGMENT)), 999)]),
    shb() + idb(1, tsresol=0x80 | 20, tsoffset=3) + epb(0, 12345, ether(ipv4(SEGMENT))) + spb(b"abc"),
    shb(True) + idb(101, snaplen=30, tsresol=12, big=True) + pb(0, 7, ipv4(SEGMENT), big=True)
    + spb(ipv4(SEGMENT), big=True),
])


@st.composite
def damaged_file(draw):
    data = bytearray(draw(FILES))
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.sampled_from([0, 1, 2, 3, 6, 0x1C, 0x80, 0xFF]))
    return bytes(data[:draw(st.integers(0, len(data)))])


def read_outcome(module, data, block_size):
    reader = module.PacketReader(io.BytesIO(data), block_size=block_size, max_record=4096)
    packets = []
    try:
        for packet in reader:
            packets.append(packet)
    except MalformedError as error:
        return packets, ("malformed", str(error), error.offset), reader.offset
    error = reader.error
    return packets, error and ("incomplete", str(error), error.offset), reader.offset


@given(data=damaged_file(), block_size=st.sampled_from([64, 100, 1 << 16]))
def test_readers_agree_on_damaged_files(capture_both, data, block_size):
    compiled, pure = capture_both
    assert read_outcome(compiled, data, block_size) == read_outcome(pure, data, block_size)


@given(data=st.binary(max_size=80))
def test_readers_agree_on_arbitrary_bytes(capture_both, data):
    compiled, pure = capture_both
    for prefix in (b"", b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", shb()):
        assert read_outcome(compiled, prefix + data, 64) == read_outcome(pure, prefix + data, 64)
