"""Interop with real peers: wsproto and websockets parse our WebSocket frames and we parse
theirs; paho-mqtt's client reads our DISCONNECT and CONNACK packets and we read its DISCONNECT.

The peers are in the ``test`` extra; each test skips, saying why, when its peer is missing.
"""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closecodec.frames import MqttConnack, MqttDisconnect, MqttPropertyId as P, WebSocketClose
from closecodec.reasons import websocket_close_code_allowed_on_wire

KEY = b"\x11\x22\x33\x44"
WIRE_CODES = st.integers(1000, 4999).filter(websocket_close_code_allowed_on_wire)
REASONS = st.text(max_size=40).filter(lambda text: len(text.encode("utf-8", "surrogatepass")) <= 123)


def no_surrogates(text: str) -> bool:
    return not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


# -- wsproto ---------------------------------------------------------------------------


def wsproto_parse(data: bytes, from_client: bool):
    frame_protocol = pytest.importorskip("wsproto.frame_protocol", reason="wsproto is not installed")
    # A server-side parser reads a client's (masked) frames, and the other way round.
    parser = frame_protocol.FrameProtocol(client=not from_client, extensions=[])
    parser.receive_bytes(data)
    return list(parser.received_frames())


# wsproto refuses 1014 (Bad Gateway): its code enum predates the IANA entry
# (the IANA WebSocket Close Code Number Registry, RFC 6455 §11.7); we follow the registry, as websockets does.
@given(code=WIRE_CODES.filter(lambda code: code != 1014), reason=REASONS.filter(no_surrogates), masked=st.booleans())
def test_wsproto_reads_our_close_frames(websocket, code, reason, masked):
    frames = wsproto_parse(websocket.encode_ws_frame(WebSocketClose(code, reason, KEY if masked else None)), masked)
    assert len(frames) == 1
    assert frames[0].opcode.value == 8
    assert (int(frames[0].payload[0]), frames[0].payload[1]) == (code, reason)


def test_wsproto_reads_an_empty_close(websocket):
    frames = wsproto_parse(websocket.encode_ws_frame(WebSocketClose(None, "", KEY)), True)
    assert int(frames[0].payload[0]) == 1005


@given(code=st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999]),
       reason=REASONS.filter(no_surrogates), client=st.booleans())
def test_we_read_wsproto_close_frames(websocket, code, reason, client):
    frame_protocol = pytest.importorskip("wsproto.frame_protocol", reason="wsproto is not installed")
    data = frame_protocol.FrameProtocol(client=client, extensions=[]).close(code, reason)
    close, end = websocket.decode_ws_frame(data, expect_masked=client)
    assert (close.code, close.reason, close.masked, end) == (code, reason, client, len(data))


# -- websockets ------------------------------------------------------------------------


def websockets_parse(data: bytes, mask: bool):
    frames = pytest.importorskip("websockets.frames", reason="websockets is not installed")
    streams = pytest.importorskip("websockets.streams", reason="websockets is not installed")
    reader = streams.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = frames.Frame.parse(reader.read_exact, mask=mask)
    with pytest.raises(StopIteration) as done:
        next(parser)
    frame = done.value.value
    return frame, (frames.Close.parse(frame.data) if frame.opcode == frames.Opcode.CLOSE else None)


@given(code=WIRE_CODES, reason=REASONS.filter(no_surrogates), masked=st.booleans())
def test_websockets_reads_our_close_frames(websocket, code, reason, masked):
    frame, close = websockets_parse(websocket.encode_ws_frame(WebSocketClose(code, reason, KEY if masked else None)), masked)
    assert frame.fin and (close.code, close.reason) == (code, reason)


@given(code=WIRE_CODES, reason=REASONS.filter(no_surrogates), mask=st.booleans())
def test_we_read_websockets_close_frames(websocket, code, reason, mask):
    frames = pytest.importorskip("websockets.frames", reason="websockets is not installed")
    data = frames.Frame(frames.Opcode.CLOSE, frames.Close(code, reason).serialize()).serialize(mask=mask)
    close, end = websocket.decode_ws_frame(data, expect_masked=mask)
    assert (close.code, close.reason, close.masked, end) == (code, reason, mask, len(data))


@given(payload=st.binary(max_size=70000), mask=st.booleans())
def test_data_frames_both_ways_with_websockets(websocket, payload, mask):
    frames = pytest.importorskip("websockets.frames", reason="websockets is not installed")
    theirs = frames.Frame(frames.Opcode.BINARY, payload).serialize(mask=mask)
    frame, _ = websocket.decode_ws_frame(theirs)
    assert frame.payload == payload
    parsed, _ = websockets_parse(websocket.encode_ws_frame(frame), mask)
    assert parsed.data == payload


# -- paho-mqtt -------------------------------------------------------------------------


@pytest.fixture
def paho_client():
    """A paho MQTT 5 client reading from one end of a socket pair: its real packet reader.

    ``_packet_read`` (private, paho-mqtt 2.x) reads one packet from the socket and
    dispatches it to on_connect / on_disconnect exactly as on a live connection.
    """
    paho = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed")
    enums = pytest.importorskip("paho.mqtt.enums", reason="paho-mqtt 2.x is needed")
    client = paho.Client(enums.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    ours, theirs = socket.socketpair()
    client._sock = theirs
    events = []
    client.on_connect = lambda c, userdata, flags, reason, properties: events.append(("connect", flags, reason, properties))
    client.on_disconnect = lambda c, userdata, flags, reason, properties: events.append(("disconnect", reason, properties))
    yield client, ours, events
    ours.close()
    theirs.close()


def test_paho_reads_our_disconnect(mqtt, paho_client):
    client, sock, events = paho_client
    packet = MqttDisconnect(0x8E, [(P.REASON_STRING, "Session taken over"), (P.USER_PROPERTY, ("k", "v")),
                                   (P.SERVER_REFERENCE, "other:1883")])
    sock.sendall(mqtt.encode_mqtt_packet(packet))
    assert client._packet_read() == 0
    (kind, reason, properties), = events
    assert (kind, reason.value, reason.getName()) == ("disconnect", 0x8E, "Session taken over")
    assert properties.ReasonString == "Session taken over"
    assert properties.UserProperty == [("k", "v")]
    assert properties.ServerReference == "other:1883"


def test_paho_reads_our_connack(mqtt, paho_client):
    client, sock, events = paho_client
    packet = MqttConnack(0, True, [(P.RECEIVE_MAXIMUM, 10), (P.ASSIGNED_CLIENT_IDENTIFIER, "auto-1"),
                                   (P.USER_PROPERTY, ("a", "b"))])
    sock.sendall(mqtt.encode_mqtt_packet(packet))
    assert client._packet_read() == 0
    (kind, flags, reason, properties), = events
    assert (kind, flags.session_present, reason.value) == ("connect", True, 0)
    assert (properties.ReceiveMaximum, properties.AssignedClientIdentifier) == (10, "auto-1")


@pytest.mark.parametrize("code, with_properties", [(0x00, False), (0x04, False), (0x80, True), (0x04, True)])
def test_we_read_pahos_disconnect(mqtt, paho_client, code, with_properties):
    paho = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed")
    client, _, _ = paho_client
    properties = None
    if with_properties:
        properties = paho.Properties(paho.PacketTypes.DISCONNECT)
        properties.ReasonString = "client going away ✓"
        properties.SessionExpiryInterval = 0
        properties.UserProperty = [("k", "v"), ("k", "w")]
    client._out_packet.clear()
    client._sock = None  # queue the packet without writing it anywhere
    client._send_disconnect(paho.ReasonCode(paho.PacketTypes.DISCONNECT, identifier=code), properties)
    data = bytes(client._out_packet[-1]["packet"])
    packet, end = mqtt.decode_mqtt_packet(data)
    assert end == len(data) and packet.reason_code == code and packet.version == 5
    if with_properties:
        assert packet.reason_string == "client going away ✓"
        assert packet.session_expiry_interval == 0
        assert packet.user_properties == (("k", "v"), ("k", "w"))
