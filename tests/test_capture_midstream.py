"""Mid-stream recognition (docs/capture.md, "Mid-stream recognition"): the tile functions of the
WebSocket and MQTT rooms, and connections whose start the capture lacks, on both backends."""

from __future__ import annotations

import io
import random
import struct
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closecodec import WebSocketFrame, WebSocketOpcode, encode_ws_frame
from closecodec.capture.midstream import MIN_MESSAGES, SEARCH

from closecodec.capture.records import CloseRecordReader

from helpers import ACK, FIN, MASK, Capture, Flow, generate_capture, installed, outcome, tool_env, use_backend, ws, ws_close

LIMIT = 1 << 20  # max_payload / max_packet in the tile calls below

CLOSE_EVENT = bytes.fromhex("00520001010102020b010a245072696e636970616c05616c696365")
TOPIC_VALUE = bytes.fromhex("0400000007") + b"value"


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: Optional[bytes] = None) -> bytes:
    """Any WebSocket frame, by the package's encoder (shortest length form)."""
    return encode_ws_frame(WebSocketFrame(WebSocketOpcode(opcode), payload, fin, rsv, mask))


def packet(first: int, body: bytes = b"") -> bytes:
    """An MQTT control packet with a one-byte Remaining Length."""
    assert len(body) < 128
    return bytes([first, len(body)]) + body


def publish(topic: bytes, payload: bytes, qos: int = 0) -> bytes:
    return packet(0x30 | qos << 1, struct.pack(">H", len(topic)) + topic + (b"\x00\x01" if qos else b"") + payload)


PINGREQ, PINGRESP = packet(0xC0), packet(0xD0)


# -- ws_tile ---------------------------------------------------------------------------


def test_ws_tile_walks_whole_frames(websocket):
    tile = websocket.ws_tile
    stream = ws(1, b"hi") + frame(2, b"x" * 300) + ws(9, b"") + ws_close(1000, b"bye")
    assert tile(stream, 0, LIMIT) == (len(stream), 4, 0, True, False, False)
    # A frame not whole yet: the walk stops at its start.
    cut = len(stream) - 3
    assert tile(stream[:cut], 0, LIMIT) == (len(stream) - len(ws_close(1000, b"bye")), 3, 0, False, False, False)
    # Masked, fragmented, compressed (RSV1 on the first fragment only).
    masked = frame(2, b"abc", fin=False, rsv=4, mask=MASK) + frame(0, b"def", mask=MASK) + ws(10, b"p", MASK)
    assert tile(masked, 0, LIMIT) == (len(masked), 3, 1, False, True, False)
    assert tile(masked[:9], 0, LIMIT) == (9, 1, 1, False, True, True)  # inside the fragmented message
    # A stream that starts inside a fragmented message: a continuation may come first.
    assert tile(frame(0, b"tail") + ws(1, b"ok"), 0, LIMIT) == (10, 2, 0, False, False, False)
    assert tile(b"", 0, LIMIT) == (0, 0, -1, False, False, False)
    assert tile(stream, len(stream), LIMIT) == (len(stream), 0, -1, False, False, False)


@pytest.mark.parametrize("stream", [
    bytes([0x83, 0]),  # reserved opcode
    bytes([0xA2, 0]),  # RSV2
    bytes([0xC9, 0]),  # RSV1 on a control frame
    bytes([0x09, 0]),  # a control frame not final
    bytes([0x89, 126, 0, 126]) + b"x" * 126,  # a control frame over 125 bytes
    bytes([0x82, 126, 0, 5]) + b"12345",  # a length not in its shortest form
    ws(1, b"a") + ws(1, b"b", MASK),  # masked and unmasked
    frame(0, b"x") + frame(0, b"y"),  # a continuation outside a message (not first)
    frame(1, b"a", fin=False) + ws(2, b"b"),  # a new message inside one
    frame(2, b"", fin=False),  # an empty non-final fragment
    frame(2, b"a", fin=False, rsv=4) + frame(0, b"b", rsv=4),  # RSV1 on a continuation
    ws(8, b"\x03"),  # a close body of one byte
    ws_close(1005),  # a code not allowed on the wire
    ws_close(1000, b"\xff"),  # a reason not UTF-8
    ws_close(1000) + ws(1, b"after"),  # a frame after a close
    ws(1, b"\xc3\x28"),  # a whole text frame not UTF-8
])
def test_ws_tile_refuses_what_rfc_6455_forbids(websocket, stream):
    assert websocket.ws_tile(stream, 0, LIMIT) is None


def test_ws_tile_limits_and_arguments(websocket):
    big = frame(2, b"x" * 200)
    assert websocket.ws_tile(big, 0, 199) is None
    assert websocket.ws_tile(big, 0, 200) == (len(big), 1, 0, False, False, False)
    # Long text frames are not checked as UTF-8; compressed and fragmented ones neither.
    assert websocket.ws_tile(frame(1, b"\xff" * 1025), 0, LIMIT) is not None
    assert websocket.ws_tile(frame(1, b"\xff", rsv=4), 0, LIMIT) is not None
    for bad in (-1, 1.0, None):
        with pytest.raises(ValueError):
            websocket.ws_tile(big, 0, bad)
    with pytest.raises(ValueError):
        websocket.ws_tile(big, len(big) + 1, LIMIT)
    with pytest.raises(TypeError):
        websocket.ws_tile("text", 0, LIMIT)


@given(st.binary(max_size=300), st.integers(0, 300), st.sampled_from([0, 5, 125, LIMIT]))
def test_ws_tile_agrees_on_arbitrary_bytes(data, start, limit):
    results = [outcome(lambda: (m.ws_tile(data, min(start, len(data)), limit),)) for m in installed("websocket")]
    assert all(result == results[0] for result in results)


@given(st.lists(st.tuples(st.sampled_from([1, 2, 9, 10]), st.binary(max_size=200)), max_size=8),
       st.booleans(), st.binary(min_size=4, max_size=4))
def test_frames_that_the_encoder_writes_tile(frames, masked, key):
    data = b""
    for op, payload in frames:
        if op == 1:
            payload = payload.decode("latin-1").encode("utf-8")  # valid UTF-8, as a text frame must be
        data += frame(op, payload if op < 8 else payload[:125], mask=key if masked else None)
    for module in installed("websocket"):
        assert module.ws_tile(data, 0, LIMIT) == (len(data), len(frames), masked if frames else -1, False, False,
                                                  False)


# -- mqtt_tile ---------------------------------------------------------------------------


def test_mqtt_tile_walks_whole_packets(mqtt):
    tile = mqtt.mqtt_tile
    client = PINGREQ + publish(b"a/b", b"hello", qos=1) + packet(0x40, b"\x00\x07") + packet(0xE0)
    assert tile(client, 0, LIMIT) == (len(client), 4, 0, 0, True)
    server = PINGRESP + publish(b"t", b"") + packet(0x90, b"\x00\x01\x00")
    assert tile(server, 0, LIMIT) == (len(server), 3, 1, 0, False)
    # MQTT 5 shows: a DISCONNECT with a reason code and properties, a PUBACK with a reason.
    v5 = packet(0x40, b"\x00\x07\x10") + packet(0xE0, b"\x8e\x00")
    assert tile(v5, 0, LIMIT) == (len(v5), 2, -1, 5, True)
    assert tile(packet(0x10, b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x01c"), 0, LIMIT)[2:4] == (0, 4)
    # A packet not whole yet.
    assert tile(PINGREQ + publish(b"topic", b"x")[:-1], 0, LIMIT) == (2, 1, 0, 0, False)
    assert tile(b"\x30", 0, LIMIT) == (0, 0, -1, 0, False)


@pytest.mark.parametrize("stream", [
    b"\x00\x00",  # type 0
    b"\xc1\x00",  # PINGREQ with flags
    b"\x60\x02\x00\x01",  # PUBREL without its flags
    b"\x36\x03\x00\x01a",  # PUBLISH QoS 3
    b"\x30\xff\xff\xff\xff\x01",  # a Remaining Length over 4 bytes
    b"\x30\x80\x00",  # not in its shortest form
    PINGREQ + PINGRESP,  # a client and a server packet in one direction
    packet(0xE0) + PINGREQ,  # a packet after a DISCONNECT
    packet(0xC0, b"x"),  # PINGREQ with a body
    publish(b"\xff", b""),  # a topic not UTF-8
    publish(b"a\x00", b""),  # U+0000 in a topic
    packet(0x32, b"\x00\x01a\x00\x00"),  # QoS 1 with packet identifier 0
    packet(0x30, b"\x00\x09ab"),  # a topic past the packet
    packet(0x40, b"\x00\x00"),  # PUBACK with packet identifier 0
    packet(0x40, b"\x00\x01\x05"),  # a reason code PUBACK may not carry
    packet(0x40, b"\x00\x01\x00\x05"),  # properties past the packet
    packet(0xE0, b"\x05"),  # a reason code DISCONNECT may not carry
    packet(0x20, b"\x00\x06"),  # a CONNACK return code over 5
    packet(0x20, b"\x02\x00"),  # CONNACK flags over 1
    packet(0x10, b"\x00\x04MQTX\x04"),  # not a CONNECT's protocol name
    packet(0x10, b"\x00\x04MQTT\x04") + packet(0xE0, b"\x8e"),  # version 4 then 5
])
def test_mqtt_tile_refuses_what_the_standard_forbids(mqtt, stream):
    assert mqtt.mqtt_tile(stream, 0, LIMIT) is None


def test_mqtt_tile_limits_and_arguments(mqtt):
    packet = publish(b"t", b"x" * 100)
    assert mqtt.mqtt_tile(packet, 0, len(packet) - 3) is None
    assert mqtt.mqtt_tile(packet, 0, len(packet) - 2) is not None
    for bad in (-1, 2.0, None):
        with pytest.raises(ValueError):
            mqtt.mqtt_tile(packet, 0, bad)
    with pytest.raises(ValueError):
        mqtt.mqtt_tile(packet, -1, LIMIT)


@given(st.binary(max_size=300), st.integers(0, 300), st.sampled_from([0, 3, 127, LIMIT]))
def test_mqtt_tile_agrees_on_arbitrary_bytes(data, start, limit):
    results = [outcome(lambda: (m.mqtt_tile(data, min(start, len(data)), limit),)) for m in installed("mqtt")]
    assert all(result == results[0] for result in results)


# -- connections seen mid-stream -----------------------------------------------------


def midstream(capture: Capture, **options: Any) -> Flow:
    return Flow(capture, handshake=False, **options)


def summary(records: List[Any]) -> List[Tuple[Any, ...]]:
    return [(r.frame, r.direction, r.protocol, r.code, r.name, r.reason, r.detection) for r in records]


def test_websocket_frames_in_a_row_recognise_a_connection(side):
    capture = Capture()
    flow = midstream(capture, server_port=9443)
    for i in range(3):
        flow.send(1, ws(1, b"update %d" % i))
    flow.send(0, ws(10, b"", MASK))
    close = flow.send(1, ws_close(1001, b"restart"))
    answer = flow.send(0, ws_close(1001, b"", MASK))
    records = capture.records(side)
    assert summary(records) == [
        (close, "server_to_client", "websocket", 1001, "GOING_AWAY", "restart", "heuristic"),
        (answer, "client_to_server", "websocket", 1001, "GOING_AWAY", None, "heuristic")]
    assert {r.application for r in records} == {"websocket"}
    assert not any(r.data_lost for r in records)  # decoding started at the first byte
    assert capture.records(side, heuristics=False) == []


def test_the_masking_side_is_the_client_whoever_sent_first(side):
    capture = Capture()
    flow = midstream(capture, client_port=443, server_port=50000)  # side 0 is the server here
    for i in range(4):
        flow.send(0, ws(2, b"push %d" % i))
    close = flow.send(1, ws_close(1000, b"", MASK))
    records = capture.records(side)
    assert [(r.frame, r.src, r.direction) for r in records] == [(close, flow.endpoint(1), "client_to_server")]


def test_a_capture_that_starts_inside_a_frame_finds_the_next_boundary(side):
    capture = Capture()
    flow = midstream(capture)
    big = frame(2, bytes(range(256)) * 8)
    # The capture begins 100 bytes into a frame, whose tail shares a segment with the next frames.
    flow.send(1, big[100:] + ws(1, b"a") + ws(1, b"b"))
    flow.send(1, ws(1, b"c") + ws(1, b"d"))
    close = flow.send(1, ws_close(1011, b"bug"))
    records = capture.records(side)
    assert summary(records) == [(close, "server_to_client", "websocket", 1011, "INTERNAL_ERROR", "bug", "heuristic")]
    assert records[0].data_lost  # the bytes before the first whole frame were not read


def test_a_start_past_the_search_is_found_at_a_segment_start(side):
    capture = Capture()
    flow = midstream(capture)
    tail = frame(2, b"x" * (3 * SEARCH))[100:]  # the tail of a frame, past the search
    flow.send(1, tail[:2 * SEARCH])
    flow.send(1, tail[2 * SEARCH:])
    for i in range(4):
        flow.send(1, ws(2, b"%d" % i))
    close = flow.send(1, ws_close(1000))
    assert [r.frame for r in capture.records(side)] == [close]


def test_compressed_messages_are_skipped_not_misread(side):
    capture = Capture()
    flow = midstream(capture)
    for i in range(4):
        flow.send(1, frame(1, b"\x4a\x2c\x4e\x05\x00" + bytes([i]), rsv=4))  # permessage-deflate, mid-window
    close = flow.send(1, ws_close(1000))
    assert [r.frame for r in capture.records(side)] == [close]


def test_diffusion_inside_websocket_after_three_messages(side):
    capture = Capture()
    flow = midstream(capture, server_port=8080)
    flow.send(1, ws(2, TOPIC_VALUE))
    flow.send(0, ws(2, TOPIC_VALUE, MASK))
    event = flow.send(1, ws(2, CLOSE_EVENT))
    close = flow.send(1, ws_close(1000))
    records = capture.records(side)
    assert MIN_MESSAGES == 3
    assert [(r.frame, r.protocol, r.kind, r.application, r.detection) for r in records] == [
        (event, "diffusion", "diffusion_close_event", "diffusion", "heuristic"),
        (close, "websocket", "ws_close", "diffusion", "heuristic")]


def test_binary_messages_that_are_not_diffusion_keep_plain_websocket(side):
    capture = Capture()
    flow = midstream(capture)
    flow.send(1, ws(2, TOPIC_VALUE))
    flow.send(1, ws(2, b"\x63not diffusion"))  # encoding bits 0x40: not a Diffusion message
    flow.send(1, ws(2, CLOSE_EVENT))
    flow.send(1, ws(2, CLOSE_EVENT))
    close = flow.send(1, ws_close(1000))
    records = capture.records(side)
    assert [(r.frame, r.application) for r in records] == [(close, "websocket")]


def test_mqtt_on_any_port_with_its_version_from_the_packets(side):
    capture = Capture()
    flow = midstream(capture, server_port=18830)
    flow.send(0, PINGREQ)
    flow.send(1, PINGRESP)
    flow.send(0, publish(b"sensors/1", b"21.5"))
    disconnect = flow.send(1, packet(0xE0, b"\x8e\x00"))  # MQTT 5: session taken over
    records = capture.records(side)
    assert [(r.frame, r.direction, r.code, r.name, r.mqtt_version, r.detection) for r in records] == [
        (disconnect, "server_to_client", 0x8E, "SESSION_TAKEN_OVER", 5, "heuristic")]


def test_mqtt_version_option_where_the_packets_do_not_show_it(side):
    capture = Capture()
    flow = midstream(capture, server_port=18830)
    for _ in range(2):
        flow.send(0, PINGREQ)
        flow.send(1, PINGRESP)
    disconnect = flow.send(0, packet(0xE0))
    assert [(r.frame, r.mqtt_version) for r in capture.records(side)] == [(disconnect, None)]
    assert [(r.frame, r.mqtt_version) for r in capture.records(side, mqtt_version=5)] == [(disconnect, 5)]
    with pytest.raises(ValueError, match="mqtt_version"):
        capture.records(side, mqtt_version=6)


def test_the_port_tables_win_over_the_bytes(side):
    capture = Capture()
    flow = midstream(capture, server_port=9000)
    for i in range(4):
        flow.send(1, ws(2, b"%d" % i))
    flow.send(1, ws_close(1000))
    assert {r.detection for r in capture.records(side, decode_as={9000: "websocket"})} == {"decode-as"}
    # Told MQTT, it is read as MQTT (and does not decode), not guessed.
    assert capture.records(side, decode_as={9000: "mqtt"}) == []


def test_a_gap_before_recognition_starts_the_search_again(side):
    capture = Capture()
    flow = midstream(capture)
    flow.send(1, b"\x17\x03\x03\x00\x20" + bytes(32))  # not WebSocket
    flow.skip(1, 100)
    for i in range(4):
        flow.send(1, ws(2, b"%d" % i))
    close = flow.send(1, ws_close(1000))
    records = capture.records(side)
    assert [(r.frame, r.data_lost) for r in records] == [(close, True)]


# -- what is none of these protocols ------------------------------------------------------

HTTP_REQUEST = b"GET /index.html HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n"
HTTP_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 12\r\n\r\n<html></html>"
REDIS = (b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n", b"+OK\r\n")
POSTGRES = (b"Q\x00\x00\x00\x0dSELECT 1;\x00",
            b"T\x00\x00\x00\x21\x00\x01?column?\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff"
            b"\x00\x00D\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x011C\x00\x00\x00\x0dSELECT 1\x00Z\x00\x00\x00\x05I")


@pytest.mark.parametrize("exchange", [(HTTP_REQUEST, HTTP_RESPONSE), REDIS, POSTGRES], ids=["http", "redis", "pg"])
def test_other_protocols_mid_stream_give_nothing(side, exchange):
    capture = Capture()
    flow = midstream(capture)
    for _ in range(20):
        flow.send(0, exchange[0])
        flow.send(1, exchange[1])
    flow.flag(0, FIN | ACK)
    flow.flag(1, FIN | ACK)
    assert capture.records(side) == []


def test_random_streams_give_nothing(side):
    rng = random.Random(17)
    capture = Capture()
    for n in range(60):
        flow = midstream(capture, client_port=40000 + n)
        for _ in range(rng.randrange(1, 12)):
            flow.send(rng.randrange(2), rng.randbytes(rng.randrange(1, 1400)))
        if rng.random() < 0.5:
            flow.flag(0, FIN | ACK)
            flow.flag(1, FIN | ACK)
    assert capture.records(side) == []


# -- real peers, cut mid-stream ------------------------------------------------------------


async def _recorded(serve: Any, talk: Any) -> List[Tuple[int, bytes]]:
    """Run a real server and client through a loopback proxy that records what each side wrote,
    as ``(side, bytes)`` in the order it passed (side 0 the client)."""
    import asyncio

    chunks: List[Tuple[int, bytes]] = []
    relays: List[Any] = []
    server_port, stop = await serve()

    async def pipe(reader: Any, writer: Any, side: int) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            chunks.append((side, data))
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # a half-close, passed on: the other direction may still talk

    async def relay(client_reader: Any, client_writer: Any) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", server_port)
        try:
            await asyncio.gather(pipe(client_reader, server_writer, 0), pipe(server_reader, client_writer, 1))
        finally:
            server_writer.close()
            client_writer.close()

    async def start(client_reader: Any, client_writer: Any) -> None:
        relays.append(asyncio.ensure_future(relay(client_reader, client_writer)))

    proxy = await asyncio.start_server(start, "127.0.0.1", 0)
    try:
        await talk(proxy.sockets[0].getsockname()[1])
        # Every connection relayed to its end: both sides closed, every byte passed.
        await asyncio.wait_for(asyncio.gather(*relays), 30)
    finally:
        proxy.close()
        await stop()
    return chunks


async def _websockets_peers() -> Any:
    websockets = pytest.importorskip("websockets.asyncio.server", reason="websockets is not installed")
    client = pytest.importorskip("websockets.asyncio.client", reason="websockets is not installed")

    async def handler(connection: Any) -> None:
        async for message in connection:
            await connection.send(message * 3)  # compressed by permessage-deflate, websockets' default

    async def serve() -> Any:
        server = await websockets.serve(handler, "127.0.0.1", 0)

        async def stop() -> None:
            server.close()
            await server.wait_closed()
        return server.sockets[0].getsockname()[1], stop

    async def talk(port: int) -> None:
        async with client.connect(f"ws://127.0.0.1:{port}/feed") as connection:
            for i in range(6):
                await connection.send(f"tick {i} " * 20)
                await connection.recv()
            await connection.close(4001, "done for today")
    return serve, talk


async def _aiohttp_peers() -> Any:
    web = pytest.importorskip("aiohttp.web", reason="aiohttp is not installed")
    aiohttp = pytest.importorskip("aiohttp", reason="aiohttp is not installed")

    async def handler(request: Any) -> Any:
        ws_response = web.WebSocketResponse()
        await ws_response.prepare(request)
        count = 0
        async for message in ws_response:
            await ws_response.send_bytes(message.data.encode() * 2)
            count += 1
            if count == 5:
                await ws_response.close(code=1001, message=b"server restarting")
        return ws_response

    async def serve() -> Any:
        app = web.Application()
        app.router.add_get("/ws", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1], runner.cleanup

    async def talk(port: int) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as connection:
                for i in range(5):
                    await connection.send_str(f"reading {i}")
                    await connection.receive()
                await connection.receive()  # the server's close, answered
    return serve, talk


def recorded(peers: Any) -> List[Tuple[int, bytes]]:
    """What a pair of real peers (``peers()`` gives their ``serve`` and ``talk``) wrote, through the proxy."""
    import asyncio

    async def main() -> List[Tuple[int, bytes]]:
        serve, talk = await peers()
        return await _recorded(serve, talk)

    return asyncio.run(main())


def _capture_of(chunks: List[Tuple[int, bytes]], cut: int) -> Tuple[Capture, int]:
    """The recorded connection as a capture; from chunk ``cut`` on, without the handshake when ``cut`` > 0.
    Returns the capture and how many packets of the whole one it lacks."""
    capture = Capture()
    flow = Flow(capture, server_port=8080, handshake=cut == 0)
    for side, data in chunks[:cut]:
        flow.skip(side, len(data))
    for side, data in chunks[cut:]:
        flow.send(side, data)
    flow.flag(0, FIN | ACK)
    flow.flag(1, FIN | ACK)
    return capture, 0 if cut == 0 else 3 + cut


@pytest.mark.parametrize("peers", [_websockets_peers, _aiohttp_peers], ids=["websockets", "aiohttp"])
def test_real_peers_cut_at_every_chunk_give_the_same_closes(side, peers):
    chunks = recorded(peers)
    whole, _ = _capture_of(chunks, 0)
    expected = [(r.frame, r.src, r.direction, r.code, r.reason) for r in whole.records(side)]
    assert len(expected) == 2 and expected[0][3] in (4001, 1001)  # the initiator's close, then the answer
    first_close = expected[0][0] - 4  # its chunk: the whole capture's frames 1-3 are the TCP handshake
    for cut in range(2, first_close + 1):  # past the upgrade request and response, up to the first close
        capture, lacking = _capture_of(chunks, cut)
        records = capture.records(side)
        assert [(r.frame + lacking, r.src, r.direction, r.code, r.reason) for r in records] == expected, cut
        assert {r.detection for r in records} == {"heuristic"}


def test_the_benchmark_traffic_without_its_handshakes_gives_the_same_closes(tmp_path, side):
    tidy, cut = tmp_path / "tidy.pcap", tmp_path / "cut.pcap"
    generate_capture(tidy, 1_000_000, seed=3)
    generate_capture(cut, 1_000_000, seed=3, handshakes=False)

    def closes(path: Any) -> List[Tuple[Any, ...]]:
        return [(r.timestamp_ns, r.src, r.dst, r.code, r.reason) for r in capture_records(path, side)
                if r.protocol != "tcp"]

    expected = closes(tidy)
    assert len(expected) > 20 and closes(cut) == expected


def capture_records(path: Any, side: str) -> List[Any]:
    with use_backend(side):
        reader = CloseRecordReader(path)
    with reader:
        return list(reader)


# -- the shared captures without their handshakes ------------------------------------------


def without_handshakes(name: str) -> Tuple[bytes, List[int]]:
    """A shared capture without its SYNs, HTTP upgrades and MQTT CONNECTs and CONNACKs (as ``tshark -Y
    'not http and not tcp.flags.syn==1 and not mqtt.msgtype in {1 2}'`` would cut it), as a pcap, and
    the original frame number of each packet kept."""
    from closecodec.capture import _py as capture_py
    from closecodec.capture.values import TcpSegment

    from helpers import DATA, pcap_file

    kept, frames = [], []
    with (DATA / name).open("rb") as file:
        for packet in capture_py.PacketReader(file):
            segment = capture_py.parse_packet(packet.data, packet.link_type)
            assert type(segment) is TcpSegment
            payload = bytes(segment.payload)
            if segment.flags & 0x02 or payload.startswith((b"GET ", b"HTTP/")) or payload[:1] in (b"\x10", b"\x20"):
                continue
            kept.append((packet.timestamp_ns, bytes(packet.data), None))
            frames.append(packet.frame)
    return pcap_file(kept, nano=True), frames


@pytest.mark.parametrize("name", ["websocket-close-codes.pcapng", "mqtt5-session-takeover.pcapng",
                                  "diffusion-js-client-handshake-abort.pcap"])
def test_the_shared_captures_without_handshakes_give_the_same_closes_frame_for_frame(side, name):
    from helpers import DATA

    kinds = ("ws_close", "mqtt_disconnect", "diffusion_abort", "diffusion_close_request", "diffusion_close_event",
             "diffusion_response")
    with use_backend(side):
        whole = [r for r in CloseRecordReader(DATA / name) if r.kind in kinds]
    data, frames = without_handshakes(name)
    with use_backend(side):
        reader = CloseRecordReader(io.BytesIO(data), mqtt_ports=())
    cut = [r for r in reader if r.kind in kinds]
    assert len(whole) >= 9
    # Sorted: a connection recognised only when it ends (a lone DISCONNECT) gives its record then.
    assert sorted((frames[r.frame - 1], r.src, r.kind, r.code, r.reason, r.session_id) for r in cut) == sorted(
        (r.frame, r.src, r.kind, r.code, r.reason, r.session_id) for r in whole)
    assert {r.detection for r in cut} == {"heuristic"}


async def _mosquitto_peers() -> Any:
    import asyncio
    import os
    import shutil
    import socket
    import subprocess
    import tempfile
    import threading

    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if mosquitto is None:
        pytest.skip("mosquitto is not installed (CI installs it: apt-get install mosquitto)")
    client = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed")
    packets = pytest.importorskip("paho.mqtt.packettypes", reason="paho-mqtt is not installed")
    reasons = pytest.importorskip("paho.mqtt.reasoncodes", reason="paho-mqtt is not installed")

    async def serve() -> Any:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
        config.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        config.close()
        broker = subprocess.Popen([mosquitto, "-c", config.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=tool_env())
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            broker.terminate()
            raise AssertionError(f"mosquitto did not listen on port {port} within 10 s (exit {broker.poll()})")

        async def stop() -> None:
            broker.terminate()
            broker.wait(timeout=10)
            os.unlink(config.name)
        return port, stop

    def session(port: int) -> None:
        done = threading.Event()
        mqtt = client.Client(client.CallbackAPIVersion.VERSION2, client_id="sensor-7", protocol=client.MQTTv5)
        mqtt.on_connect = lambda *args: done.set()
        mqtt.connect("127.0.0.1", port)
        mqtt.loop_start()
        assert done.wait(10)
        for n in range(5):
            mqtt.publish("plant/line-1/temperature", f"{20 + n}.5", qos=1).wait_for_publish(10)
        mqtt.disconnect(reasoncode=reasons.ReasonCode(packets.PacketTypes.DISCONNECT, "Disconnect with will message"))
        mqtt.loop_stop()

    async def talk(port: int) -> None:
        await asyncio.get_running_loop().run_in_executor(None, session, port)
    return serve, talk


def test_paho_and_mosquitto_cut_at_every_chunk_give_the_same_disconnect(side):
    chunks = recorded(_mosquitto_peers)
    whole, _ = _capture_of(chunks, 0)
    expected = [(r.frame, r.src, r.direction, r.code, r.name) for r in whole.records(side) if r.protocol == "mqtt"]
    assert [e[3:] for e in expected] == [(0x04, "DISCONNECT_WITH_WILL_MESSAGE")]
    disconnect = expected[0][0] - 4  # its chunk
    for cut in range(2, disconnect + 1):  # past the CONNECT and the CONNACK, up to the DISCONNECT
        capture, lacking = _capture_of(chunks, cut)
        records = [r for r in capture.records(side) if r.protocol == "mqtt"]
        assert [(r.frame + lacking, r.src, r.direction, r.code, r.name) for r in records] == expected, cut
        assert [(r.detection, r.mqtt_version) for r in records] == [("heuristic", 5)]


async def _http_peers() -> Any:
    """Python's HTTP server and client on one kept-alive connection: HTTP/1.1 as it runs on loopback."""
    import asyncio
    import http.client
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            body = (self.path * 40).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    async def serve() -> Any:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()

        async def stop() -> None:
            server.shutdown()
            server.server_close()
        return server.server_address[1], stop

    def session(port: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for n in range(12):
            connection.request("GET", f"/items/{n}?page={n * 7}")
            connection.getresponse().read()
        connection.close()

    async def talk(port: int) -> None:
        await asyncio.get_running_loop().run_in_executor(None, session, port)
    return serve, talk


async def _tls_peers() -> Any:
    """A TLS server and client (Python's ssl, a self-signed certificate from openssl) exchanging records."""
    import asyncio
    import shutil
    import ssl
    import subprocess
    import tempfile

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (it makes the test's certificate)")
    folder = tempfile.mkdtemp()
    key, cert = f"{folder}/key.pem", f"{folder}/cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True, timeout=60,
                   env=tool_env())
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.load_verify_locations(cert)

    async def echo(reader: Any, writer: Any) -> None:
        while data := await reader.read(4096):
            writer.write(data.upper())
            await writer.drain()
        writer.close()

    async def serve() -> Any:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_context)

        async def stop() -> None:
            server.close()
            shutil.rmtree(folder, ignore_errors=True)
        return server.sockets[0].getsockname()[1], stop

    async def talk(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context,
                                                       server_hostname="localhost")
        for n in range(12):
            writer.write(f"message {n} ".encode() * (n + 1))
            await writer.drain()
            await reader.read(4096)
        writer.close()
        await writer.wait_closed()
    return serve, talk


@pytest.mark.parametrize("peers", [_http_peers, _tls_peers], ids=["http", "tls"])
def test_real_http_and_tls_cut_anywhere_give_nothing(side, peers):
    chunks = recorded(peers)
    assert len(chunks) >= 20
    for cut in range(len(chunks)):
        capture, _ = _capture_of(chunks, cut)
        assert capture.records(side) == [], cut


def test_candidates_that_meet_are_kept_once(websocket, mqtt):
    from closecodec.capture.midstream import Candidates

    # One byte, then MQTT PUBLISH packets each in its own segment: every segment start is a candidate,
    # and every one of their walks meets the others'. One lives, however many segments come (with the
    # every-offset search, a few more wait a moment on headers that run past the bytes held).
    candidates = Candidates()
    candidates.add(b"\x83")
    for n in range(300):
        candidates.add(publish(b"t", bytes([n % 256])))
        candidates.update((websocket.ws_tile, mqtt.mqtt_tile), LIMIT, n % 50 == 0)
        assert len(candidates.alive[1]) <= 8, n
    start, result = candidates.best(1)
    assert start == 1 and result[1] == 300  # the first whole packet's start, every packet since
