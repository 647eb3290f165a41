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


# -- HTTP heads (WebSocket upgrades) ------------------------------------------------------


def test_http_head_fields(websocket):
    head = (b"GET /a?b HTTP/1.1\r\nHost: x\r\n  Sec-WebSocket-Protocol :  mqtt \r\nno colon here\r\n"
            b"SEC-WEBSOCKET-PROTOCOL:\x85v2\xa0\r\nX-\xc0\xd7\xde: \xc0 \r\nUpgrade: a\rb\r\n\r\nafter")
    line, headers, size = websocket.parse_http_head(head)
    assert line == "GET /a?b HTTP/1.1" and size == head.index(b"\r\n\r\n") + 4
    assert headers == {"host": "x", "sec-websocket-protocol": "mqtt, v2", "x-\xe0\xd7\xfe": "\xc0", "upgrade": "a\rb"}
    assert websocket.parse_http_head(bytearray(head)) == websocket.parse_http_head(memoryview(head)) == (line, headers, size)


@pytest.mark.parametrize("data", [b"", b"GET / HTTP/1.1\r\nHost: x\r\n", b"GET / HTTP/1.1\r\n\r", b"\r\n\r"])
def test_http_head_incomplete(websocket, data):
    assert websocket.parse_http_head(data) is None


def test_http_head_needs_bytes(websocket):
    with pytest.raises(TypeError):
        websocket.parse_http_head("GET / HTTP/1.1\r\n\r\n")


HEAD_BYTES = st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b":", b" ", b"\t", b"\x85", b"\xa0", b"\x1c", b"A",
                                       b"a", b"\xc0", b"\xd7", b"\xe0", b"Upgrade", b"x"]), max_size=40).map(b"".join)


def test_http_head_keeps_only_the_names_asked_for(websocket):
    head = b"HTTP/1.1 101 x\r\nUpgrade: websocket\r\n \xc0B : 1\r\nX: 2\r\n\xe0b: 3\r\nUPGRADE : again\r\n\r\n"
    line, headers, size = websocket.parse_http_head(head)
    assert websocket.parse_http_head(head, (b"upgrade", b"\xe0b", b"none")) == (
        line, {"upgrade": "websocket, again", "\xe0b": "1, 3"}, size)
    assert websocket.parse_http_head(head, ()) == (line, {}, size)
    assert websocket.parse_http_head(head[:-2], (b"upgrade",)) is None


@pytest.mark.parametrize("names", [[b"upgrade"], ("upgrade",), b"upgrade"])
def test_http_head_names_are_a_tuple_of_bytes(websocket, names):
    with pytest.raises(TypeError):
        websocket.parse_http_head(b"GET / HTTP/1.1\r\n\r\n", names)


@given(data=st.one_of(st.binary(max_size=80), HEAD_BYTES),
       names=st.none() | st.lists(st.sampled_from([b"upgrade", b"a", b"x", b"\xe0", b"", b"upgradex"]),
                                  max_size=3).map(tuple))
def test_backends_agree_on_http_heads(websocket_both, data, names):
    compiled, pure = websocket_both
    assert compiled.parse_http_head(data, names) == pure.parse_http_head(data, names)


# -- MQTT CONNECT (recognition on any port) -------------------------------------------------


def mqtt_connect(level: int, client_id: bytes, properties: bytes = b"\x00", name: bytes = b"") -> bytes:
    """A CONNECT (MQTT 5.0 §3.1; 3.1.1 §3.1; 3.1 with MQIsdp): flags 0x02, keep alive 60."""
    name = name or (b"MQIsdp" if level == 3 else b"MQTT")
    body = (len(name).to_bytes(2, "big") + name + bytes([level, 0x02, 0x00, 0x3C])
            + (properties if level == 5 else b"") + len(client_id).to_bytes(2, "big") + client_id)
    assert len(body) < 128
    return bytes([0x10, len(body)]) + body


@pytest.mark.parametrize("level", [3, 4, 5])
def test_mqtt_connect_levels_and_client_ids(mqtt, level):
    packet = mqtt_connect(level, b"sensor-\xc3\xa9")
    assert mqtt.parse_mqtt_connect(packet) == (level, "sensor-\u00e9")
    assert mqtt.parse_mqtt_connect(packet + b"\x30\x00") == (level, "sensor-\u00e9")  # the next packet
    assert mqtt.parse_mqtt_connect(bytearray(packet)) == mqtt.parse_mqtt_connect(memoryview(packet))
    # The header and level are enough to say it is a CONNECT; the client id needs the whole packet.
    assert mqtt.parse_mqtt_connect(packet[:-1]) == (level, None)


def test_mqtt_connect_properties_come_before_the_client_id(mqtt):
    properties = b"\x05\x11\x00\x00\x00\x3c"  # Session Expiry Interval, 60
    assert mqtt.parse_mqtt_connect(mqtt_connect(5, b"c1", properties)) == (5, "c1")
    # Properties longer than the packet, or a length of more than four bytes or not in its shortest
    # form: no client id.
    assert mqtt.parse_mqtt_connect(mqtt_connect(5, b"c1", b"\x7f")) == (5, None)
    assert mqtt.parse_mqtt_connect(mqtt_connect(5, b"c1", b"\x80\x80\x80\x80\x00")) == (5, None)
    assert mqtt.parse_mqtt_connect(mqtt_connect(5, b"c1", b"\x80\x00")) == (5, None)


@pytest.mark.parametrize("data, expected", [
    (b"", None), (b"\x10", None), (b"\x10\x80", None), (b"\x10\x0c\x00", None), (b"\x10\x0c\x00\x04MQ", None),
    (b"\x20\x02\x00\x00", False),  # a CONNACK
    (b"GET / HTTP/1.1\r\n", False),
    (b"\x10\x80\x80\x80\x80\x01", False),  # Remaining Length over four bytes
    (b"\x10\x8c\x00\x00\x04MQTT\x04", False),  # Remaining Length not in its shortest form
    (b"\x10\x0c\x00\x05MQTTX\x04", False),  # a name of five bytes
    (b"\x10\x0c\x00\x04MQTT\x03", False),  # MQTT with level 3
    (b"\x10\x0c\x00\x06MQIsdp\x04", False),  # MQIsdp with level 4
    (b"\x10\x0c\x00\x04mqtt\x04", False),
])
def test_mqtt_connect_undecided_or_not_a_connect(mqtt, data, expected):
    assert mqtt.parse_mqtt_connect(data) is expected


def test_mqtt_connect_client_id_must_be_utf8_and_inside_the_packet(mqtt):
    assert mqtt.parse_mqtt_connect(mqtt_connect(4, b"\xff\xfe")) == (4, None)
    packet = bytearray(mqtt_connect(4, b"abc"))
    packet[1] -= 1  # the client id's last byte is past the packet's end
    assert mqtt.parse_mqtt_connect(bytes(packet)) == (4, None)


def test_mqtt_connect_needs_bytes(mqtt):
    with pytest.raises(TypeError):
        mqtt.parse_mqtt_connect("\x10\x00")


CONNECT_BYTES = st.builds(
    lambda level, client_id, properties, cut, noise: (mqtt_connect(level, client_id, properties) + noise)[:cut],
    st.sampled_from([3, 4, 5]), st.binary(max_size=12), st.sampled_from([b"\x00", b"\x7f", b"\x80\x00", b"\x02\x01\x00"]),
    st.integers(0, 60), st.binary(max_size=4))


@given(data=st.one_of(st.binary(max_size=40), CONNECT_BYTES, st.binary(max_size=30).map(lambda b: b"\x10" + b)))
def test_backends_agree_on_mqtt_connects(mqtt_both, data):
    compiled, pure = mqtt_both
    assert compiled.parse_mqtt_connect(data) == pure.parse_mqtt_connect(data)
