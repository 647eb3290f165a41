"""The seed corpus, generated deterministically from the shared vectors and captures in tests/data.

``python -m fuzz.seeds DIR`` writes ``DIR/<harness>/<name>`` files; the runner
does it before every run (it takes about a second), so nothing generated is
committed. The same inputs come out on every machine: names say where each
seed came from, and option bytes follow the layouts in :mod:`fuzz.harnesses`.

Sources: tests/data/diffusion-close-frames.json (every vector, valid or not,
wrapped as each harness needs), tests/data/transport-close-frames.json (every
WebSocket and MQTT close frame), the Diffusion messages of
diffusion-js-client-handshake-abort.pcap.truth.jsonl, encodings of typical
values, and the .pcap/.pcapng captures: each TCP direction's bytes (streams),
each packet (parse_packet, re-wrapped in the other link types) and one small
capture per TCP connection, written in pcap and pcapng of both byte orders.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from closecodec import MessageType
from closecodec.capture import _py as capture_py
from closecodec.diffusion import _py as diffusion_py
from closecodec.frames import (
    AbortNotification,
    CloseRequest,
    ConnectionResponse,
    MqttConnack,
    MqttDisconnect,
    MqttOtherPacket,
    MqttPacketType,
    OtherMessage,
    ServiceRequest,
    SessionId,
    WebSocketClose,
    WebSocketFrame,
    WebSocketOpcode,
)
from closecodec.mqtt import _py as mqtt_py
from closecodec.reasons import ResponseCode
from closecodec.websocket import _py as websocket_py

from . import LINK_TYPES, NAMES

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
Seeds = Dict[str, Dict[str, bytes]]


def options(*picks: Tuple[int, int]) -> bytes:
    """Option bytes that make :class:`fuzz.common.Options` pick ``index`` of ``radix`` choices, in order."""
    value, scale = 0, 1
    for index, radix in picks:
        value += index * scale
        scale *= radix
    return value.to_bytes(2, "little")


#: Decoder option prefixes: defaults; offset 2 in the whole input; bytearray; memoryview at offset 2.
DECODER_PREFIXES = (options(), options((0, 4), (1, 2)), options((1, 4)), options((2, 4), (1, 2)))


def _vectors() -> List[Dict[str, Any]]:
    return json.loads((DATA / "diffusion-close-frames.json").read_text())["vectors"]


def _transport_frames(protocol: str) -> List[Tuple[str, bytes]]:
    frames = json.loads((DATA / "transport-close-frames.json").read_text())["frames"]
    return [(f"{f['capture']}-{f['frame']}", bytes.fromhex(f["tcp_payload_hex"]))
            for f in frames if f["protocol"] == protocol]


def _truth_messages() -> List[Tuple[str, str, bytes]]:
    out = []
    for line in (DATA / "diffusion-js-client-handshake-abort.pcap.truth.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "message_hex" in row:
            out.append((row["kind"], f"frame{row['frame']}", bytes.fromhex(row["message_hex"])))
    return out


# -- values to encode ----------------------------------------------------------------

SESSION = SessionId(0x0123456789ABCDEF, 0xFEDCBA9876543210)
TOKEN = bytes(range(24))


def _responses() -> List[bytes]:
    values = [
        ConnectionResponse(29, ResponseCode.OK, SESSION, TOKEN, 90000, 1 << 20),
        ConnectionResponse(29, ResponseCode.RECONNECTED, SESSION, TOKEN, 90000, recovery_sequence=7),
        ConnectionResponse(29, ResponseCode.RECONNECTED_WITH_MESSAGE_LOSS, SESSION, TOKEN, 1, 1),
        ConnectionResponse(29, ResponseCode.REJECTED),
        ConnectionResponse(29, ResponseCode.AUTHENTICATION_FAILED),
        ConnectionResponse(4, ResponseCode.DOWNGRADE),
        ConnectionResponse(29, ResponseCode.REVERSE_CONNECTION_ACCEPTED),
    ]
    return [diffusion_py.encode_connection_response(value) for value in values]


def _messages() -> List[bytes]:
    values: List[Any] = [
        AbortNotification(),
        CloseRequest(),
        AbortNotification(),
        OtherMessage(MessageType.TOPIC_VALUE, b"\x01\x02\x03"),
        OtherMessage(MessageType.SERVICE_RESPONSE, b"\x05\x00", compressed=True),
        ServiceRequest(99, 7, b"payload"),
        ServiceRequest(99, 7, b"payload", compressed=True),
    ]
    return [diffusion_py.encode_message(value) for value in values]


def _ws_frames() -> List[bytes]:
    key = b"\x11\x22\x33\x44"
    values = [
        WebSocketFrame(WebSocketOpcode.PING, b"ping"),
        WebSocketFrame(WebSocketOpcode.PONG, b"", mask_key=key),
        WebSocketFrame(WebSocketOpcode.TEXT, "héllo".encode(), fin=False),
        WebSocketFrame(WebSocketOpcode.CONTINUATION, b"more", mask_key=key),
        WebSocketFrame(WebSocketOpcode.BINARY, bytes(200)),  # 16-bit length
        WebSocketFrame(WebSocketOpcode.BINARY, b"x", rsv=4),
        WebSocketClose(),
        WebSocketClose(1001, "going away", mask_key=key),
        WebSocketClose(4000, "é" * 10),
    ]
    out = [websocket_py.encode_ws_frame(value) for value in values]
    out.append(b"\x82\x7f" + (70000).to_bytes(8, "big"))  # a 64-bit length header, no payload
    return out


def _mqtt_packets() -> List[bytes]:
    values = [
        MqttDisconnect(0x8E, version=5),
        MqttDisconnect(0, version=4),
        MqttConnack(0x87, version=5),
        MqttConnack(5, version=4),
        MqttConnack(0, True, version=5),
        MqttOtherPacket(MqttPacketType.PINGREQ),
        MqttOtherPacket(MqttPacketType.PUBLISH, 0x3, b"\x00\x01tpayload"),
    ]
    return [mqtt_py.encode_mqtt_packet(value) for value in values]


def _ws_binary(payload: bytes, mask_key: Any = None) -> bytes:
    return websocket_py.encode_ws_frame(WebSocketFrame(WebSocketOpcode.BINARY, payload, mask_key=mask_key))


# -- captures ------------------------------------------------------------------------


def _captures() -> List[Path]:
    return sorted(DATA.glob("*.pcap")) + sorted(DATA.glob("*.pcapng"))


def _packets(path: Path) -> List[Any]:
    with path.open("rb") as file:
        return [(p.frame, p.timestamp_ns, p.link_type, bytes(p.data), p.original_length)
                for p in capture_py.PacketReader(file)]


def _connection_key(data: bytes, link_type: int) -> Any:
    segment = capture_py.parse_packet(data, link_type)
    if type(segment) is str:
        return None
    return tuple(sorted([(segment.src, segment.src_port), (segment.dst, segment.dst_port)]))


def _connections(path: Path) -> "OrderedDict[Any, List[Any]]":
    groups: "OrderedDict[Any, List[Any]]" = OrderedDict()
    for packet in _packets(path):
        key = _connection_key(packet[3], packet[2])
        if key is not None:
            groups.setdefault(key, []).append(packet)
    return groups


def _directions(packets: List[Any]) -> List[bytes]:
    """Each direction's TCP payload in capture order (the captures are loopback: in order, no loss)."""
    first = capture_py.parse_packet(packets[0][3], packets[0][2])
    client = (first.src, first.src_port)
    out = [bytearray(), bytearray()]
    seen = set()
    for packet in packets:
        segment = capture_py.parse_packet(packet[3], packet[2])
        key = (segment.src, segment.src_port, segment.seq, len(segment.payload))
        if key in seen:  # a retransmission
            continue
        seen.add(key)
        out[(segment.src, segment.src_port) != client] += segment.payload
    return [bytes(direction) for direction in out]


def _after_http(data: bytes) -> bytes:
    if data.startswith((b"GET ", b"HTTP/")):
        end = data.find(b"\r\n\r\n")
        return data[end + 4:] if end >= 0 else b""
    return data


def write_pcap(packets: Iterable[Any], order: str = "<", nano: bool = False) -> bytes:
    packets = list(packets)
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, packets[0][2] if packets else 1)]
    for _frame, ns, _link, data, original in packets:
        seconds, rest = divmod(ns, 10**9)
        out.append(struct.pack(order + "IIII", seconds, rest if nano else rest // 1000, len(data), original))
        out.append(data)
    return b"".join(out)


def _block(order: str, kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    size = len(body) + 12
    return struct.pack(order + "II", kind, size) + body + struct.pack(order + "I", size)


def write_pcapng(packets: Iterable[Any], order: str = "<", nano: bool = False, block: str = "epb") -> bytes:
    """A pcapng section: SHB, one IDB, then each packet as an EPB, SPB or obsolete PB."""
    packets = list(packets)
    link = packets[0][2] if packets else 1
    out = [_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))]
    idb_options = struct.pack(order + "HH", 9, 1) + b"\x09\0\0\0" if nano else b""
    out.append(_block(order, 1, struct.pack(order + "HHI", link, 0, 65535) + idb_options + b"\0" * 4))
    for _frame, ns, _link, data, original in packets:
        stamp = ns if nano else ns // 1000
        padded = data + b"\0" * (-len(data) % 4)
        if block == "spb":
            out.append(_block(order, 3, struct.pack(order + "I", original) + padded))
        elif block == "pb":
            out.append(_block(order, 2, struct.pack(order + "HHIIII", 0, 0, stamp >> 32, stamp & 0xFFFFFFFF,
                                                    len(data), original) + padded))
        else:
            out.append(_block(order, 6, struct.pack(order + "IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF,
                                                    len(data), original) + padded))
    return b"".join(out)


#: The per-connection capture formats, used in turn.
FORMATS = (
    ("pcap-le-us", lambda ps: write_pcap(ps)),
    ("pcapng-le-epb", lambda ps: write_pcapng(ps)),
    ("pcap-be-ns", lambda ps: write_pcap(ps, ">", True)),
    ("pcapng-be-ns", lambda ps: write_pcapng(ps, ">", True)),
    ("pcapng-le-spb", lambda ps: write_pcapng(ps, block="spb")),
    ("pcapng-le-pb", lambda ps: write_pcapng(ps, block="pb")),
)


def _rewrapped(ethernet_frame: bytes) -> List[Tuple[int, bytes]]:
    """One Ethernet frame's IP packet under every other link type parse_packet knows."""
    ethertype, ip = ethernet_frame[12:14], ethernet_frame[14:]
    family = 2 if ethertype == b"\x08\x00" else 30
    out = [
        (113, b"\0\x00\0\x01\0\x06" + bytes(8) + ethertype + ip),  # Linux SLL
        (276, ethertype + b"\0\0" + bytes(16) + ip),  # Linux SLL2
        (0, family.to_bytes(4, "little") + ip),  # BSD NULL, host order
        (108, family.to_bytes(4, "big") + ip),  # BSD LOOP
        (101, ip),
        (12, ip),
        (228 if family == 2 else 229, ip),
        (1, ethernet_frame[:12] + b"\x81\x00\x00\x05" + ethertype + ip),  # one 802.1Q tag
    ]
    if family == 2 and len(ip) >= 20:  # the same segment over IPv6
        ihl = (ip[0] & 15) * 4
        tcp = ip[ihl:]
        addresses = bytes(15) + b"\x01" + bytes(15) + b"\x02"
        out.append((229, b"\x60\0\0\0" + len(tcp).to_bytes(2, "big") + b"\x06\x40" + addresses + tcp))
        # A hop-by-hop options header (next: TCP) before the segment.
        hop = b"\x06\0" + bytes(6)
        out.append((229, b"\x60\0\0\0" + (len(tcp) + 8).to_bytes(2, "big") + b"\x00\x40" + addresses + hop + tcp))
    return out


# -- every harness's seeds -----------------------------------------------------------


def generate() -> Seeds:
    seeds: Seeds = {name: {} for name in NAMES}

    def add(harness: str, name: str, data: bytes) -> None:
        seeds[harness].setdefault(name, data)

    def decoder(harness: str, name: str, payload: bytes, index: int, extra: Sequence[Tuple[int, int]] = ()) -> None:
        prefix = DECODER_PREFIXES[index % len(DECODER_PREFIXES)]
        if extra:
            head = int.from_bytes(prefix, "little") + int.from_bytes(options((0, 4), (0, 2), *extra), "little")
            prefix = head.to_bytes(2, "little")
        add(harness, name, prefix + payload)

    vectors = _vectors()
    batch_prefix = b"\x00\x52\x00"  # SERVICE_REQUEST, service 82, conversation 0
    for i, vector in enumerate(vectors):
        data, name, codec = bytes.fromhex(vector["hex"]), vector["name"], vector["codec"]
        if codec == "message":
            decoder("message", name, data, i)
        elif codec == "event-batch":
            decoder("message", f"in-message-{name}", batch_prefix + data, i)
            decoder("event_batch", name, data, i)
        elif codec == "event-core":
            decoder("event_batch", name, data, i, [(2, 4)])
        elif codec == "close-client-request":
            decoder("message", f"in-message-{name}", b"\x00\x0e\x00" + data, i)
            decoder("event_batch", name, data, i, [(3, 4)])
        if codec == "event-batch" and vector["validity"] == "valid":
            batch, _ = diffusion_py.decode_event_batch(data)
            compressed = diffusion_py.encode_message(ServiceRequest(82, 5, batch, compressed=True))
            decoder("message", f"compressed-{name}", compressed, i)
    for i, (kind, name, data) in enumerate(_truth_messages()):
        decoder("connection_response" if kind == "connection_response" else "message", f"capture-{name}", data, i)
    for i, data in enumerate(_messages()):
        decoder("message", f"encoded-{i}", data, i)
    responses = _responses()
    for i, data in enumerate(responses):
        decoder("connection_response", f"encoded-{i}", data, i)

    ws_frames = _transport_frames("websocket")
    for i, (name, data) in enumerate(ws_frames):
        decoder("ws_frame", name, data, i)
    for i, data in enumerate(_ws_frames()):
        decoder("ws_frame", f"encoded-{i}", data, i)
    mqtt = _transport_frames("mqtt")
    for i, (name, data) in enumerate(mqtt):
        decoder("mqtt_packet", name, data, i)
    for i, data in enumerate(_mqtt_packets()):
        decoder("mqtt_packet", f"encoded-{i}", data, i)

    # Streams: 2 option bytes (defaults, or the largest chunk 1 / 7 bytes), a chunking seed byte.
    stream_prefixes = (options() + b"\0", options((0, 3), (1, 7)) + b"\0", options((1, 3), (4, 7)) + b"\x2a")
    def stream(harness: str, name: str, data: bytes, index: int, prefix: bytes = b"") -> None:
        # Byte by byte (the second prefix) only for short streams: feeding 4 KiB a byte at a
        # time through both backends takes 0.1 s, which slows the fuzzer down for little.
        choices = stream_prefixes if len(data) <= 600 else stream_prefixes[::2]
        add(harness, name, (prefix or choices[index % len(choices)]) + data)

    stream("ws_stream", "bytes-after-close", ws_frames[0][1] + _ws_frames()[0], 0)
    for i, (name, data) in enumerate(ws_frames):
        stream("ws_stream", name, data, i)
    stream("ws_stream", "encoded-frames", b"".join(_ws_frames()[:6]) + _ws_frames()[7], 1)
    for i, (name, data) in enumerate(mqtt):
        stream("mqtt_stream", name, data, i)
    stream("mqtt_stream", "encoded-packets", b"".join(_mqtt_packets()), 2)
    # A synthetic Diffusion stream: the response, every message vector, a close.
    messages = [bytes.fromhex(v["hex"]) for v in vectors if v["codec"] == "message" and v["validity"] == "valid"]
    for i, response in enumerate(responses):
        body = _ws_binary(response) + b"".join(_ws_binary(m) for m in messages + _messages()[:1])
        stream("diffusion_stream", f"synthetic-{i}", body + websocket_py.encode_ws_frame(WebSocketClose(1000)), i)
    client = options((0, 3), (0, 7), (0, 4), (1, 2)) + b"\0"  # connection_response=False
    key = b"\x01\x02\x03\x04"
    stream("diffusion_stream", "synthetic-client", b"".join(_ws_binary(m, key) for m in messages), 0, client)

    for path in _captures():
        connections = _connections(path)
        for n, (_key, packets) in enumerate(connections.items()):
            tag = f"{path.name}-conn{n}"
            for direction, data in enumerate(_directions(packets)):
                data = _after_http(data)
                if not data:
                    continue
                decoder("tile", f"{tag}-dir{direction}", data[:4000], n)
                if path.name.startswith("mqtt"):
                    stream("mqtt_stream", f"{tag}-dir{direction}", data, n)
                elif path.name.startswith("diffusion"):
                    stream("diffusion_stream", f"{tag}-dir{direction}", data, n,
                           client if direction == 0 else b"")
                    stream("ws_stream", f"{tag}-dir{direction}", data, n)
                else:
                    stream("ws_stream", f"{tag}-dir{direction}", data, n)
            fmt_name, write = FORMATS[n % len(FORMATS)]
            capture = write(packets)
            add("pcap", f"{tag}-{fmt_name}", capture)
            add("closes", f"{tag}-{fmt_name}", capture)
            # The connection as a capture that starts after its handshake: mid-stream recognition.
            add("closes", f"{tag}-{fmt_name}-midstream", write(packets[len(packets) // 3:]))
        add("pcap", path.name, path.read_bytes())
        add("closes", path.name, path.read_bytes())
        # A chunk after the first, its boundary halfway (and one with the boundary at the first record).
        add("chunk", path.name, options() + path.read_bytes())
        add("chunk", f"{path.name}-first", options((0, 3), (1, 5)) + path.read_bytes())
        # The capture as two files split in the middle (each a whole pcap), for the merger.
        packets = [packet for conn in connections.values() for packet in conn]
        packets.sort(key=lambda packet: packet[1])
        half = len(packets) // 2
        add("merge", path.name, options() + write_pcap(packets[:half]) + write_pcap(packets[half:]))
        # Packets for parse_packet: the first few of each connection, re-wrapped in every link type.
        for n, packets in enumerate(connections.values()):
            if n >= 8:
                break
            for frame, _ns, link_type, data, _original in packets[:4]:
                tag = f"{path.name}-frame{frame}"
                if link_type not in LINK_TYPES:
                    continue
                add("packet", tag, options((0, 4), (0, 2), (LINK_TYPES.index(link_type), len(LINK_TYPES))) + data)
                if link_type == 1 and n < 2:
                    for other, wrapped in _rewrapped(data):
                        add("packet", f"{tag}-as-{other}-{len(wrapped)}",
                            options((0, 4), (0, 2), (LINK_TYPES.index(other), len(LINK_TYPES))) + wrapped)
    return seeds


def write(directory: Path) -> Dict[str, int]:
    """Write every harness's seeds under ``directory/<harness>/`` (replacing it); counts by harness."""
    directory = Path(directory)
    if directory.exists():
        shutil.rmtree(directory)
    counts = {}
    for harness, items in generate().items():
        target = directory / harness
        target.mkdir(parents=True)
        unique = {}
        for name, data in items.items():
            unique.setdefault(hashlib.sha1(data).hexdigest(), (name, data))
        for digest, (name, data) in unique.items():
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
            (target / f"{safe}-{digest[:8]}").write_bytes(data)
        counts[harness] = len(unique)
    return counts


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "build" / "seeds"
    for harness, count in write(out).items():
        print(f"{harness}: {count} seeds")
