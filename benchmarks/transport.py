"""WebSocket close frames and MQTT DISCONNECT: compiled vs pure Python vs the peers' own parsers.

- One masked close frame (1001 "going away", as a client sends it), parsed and its
  body decoded: our ``decode_ws_frame`` against wsproto's ``FrameProtocol`` (a new
  one per frame, see ``wsproto_close``) and websockets' ``Frame.parse`` +
  ``Close.parse`` on the same bytes.
- One MQTT 5 DISCONNECT 0x8E with a Reason String: ours against paho-mqtt's
  ``ReasonCode`` + ``Properties`` unpacking of the variable header (paho has no
  parser for a whole packet held in bytes; its fixed-header work is not counted).
- Unmasking 64 KiB: ours against websockets' ``apply_mask`` (its C speedup when built).
"""

from __future__ import annotations

from functools import partial
from typing import Dict, List, Optional

from closecodec.frames import MqttDisconnect, MqttPropertyId, WebSocketClose

from .backends import pair
from .harness import Case

KEY = b"\x11\x22\x33\x44"


def wsproto_close(data: bytes, frame_protocol) -> list:
    # A fresh parser per frame: after a close, wsproto's FrameProtocol yields
    # nothing more, and a connection sees one close frame anyway.
    parser = frame_protocol.FrameProtocol(client=False, extensions=[])
    parser.receive_bytes(data)
    return list(parser.received_frames())


def websockets_close(data: bytes, frames, streams):
    reader = streams.StreamReader()
    reader.feed_data(data)
    parser = frames.Frame.parse(reader.read_exact, mask=True)
    try:
        next(parser)
    except StopIteration as done:
        return frames.Close.parse(done.value.data)
    raise AssertionError("websockets wanted more bytes")


def paho_disconnect(body: bytes, packet_types, reason_code_cls, properties_cls):
    code = reason_code_cls(packet_types.DISCONNECT)
    code.unpack(body)
    properties = properties_cls(packet_types.DISCONNECT)
    properties.unpack(body[1:])
    return code, properties


def peers() -> Dict[str, Optional[object]]:
    found: Dict[str, Optional[object]] = {}
    for name in ("wsproto.frame_protocol", "websockets.frames", "websockets.streams", "websockets.utils",
                 "paho.mqtt.packettypes", "paho.mqtt.reasoncodes", "paho.mqtt.properties"):
        try:
            found[name] = __import__(name, fromlist=["_"])
        except ImportError as error:
            print(f"note: {name} not installed ({error}); pip install '.[bench]'")
            found[name] = None
    return found


def cases() -> List[Case]:
    c, py = pair("websocket")
    mqtt_c, mqtt_py = pair("mqtt")
    found = peers()
    frame = py.encode_ws_frame(WebSocketClose(1001, "going away", KEY))
    packet = mqtt_py.encode_mqtt_packet(MqttDisconnect(0x8E, [(MqttPropertyId.REASON_STRING, "Session taken over")]))
    payload = bytes(range(256)) * 256  # 64 KiB

    close: Dict[str, object] = {}
    mqtt: Dict[str, object] = {}
    unmask: Dict[str, object] = {}
    if c is not None:
        close["compiled"] = partial(c.decode_ws_frame, frame)
        unmask["compiled"] = partial(c.unmask_ws_payload, payload, KEY)
    if mqtt_c is not None:
        mqtt["compiled"] = partial(mqtt_c.decode_mqtt_packet, packet)
    close["pure Python"] = partial(py.decode_ws_frame, frame)
    mqtt["pure Python"] = partial(mqtt_py.decode_mqtt_packet, packet)
    unmask["pure Python"] = partial(py.unmask_ws_payload, payload, KEY)
    if found["wsproto.frame_protocol"] is not None:
        assert int(wsproto_close(frame, found["wsproto.frame_protocol"])[0].payload[0]) == 1001
        close["wsproto"] = partial(wsproto_close, frame, found["wsproto.frame_protocol"])
    if found["websockets.frames"] is not None and found["websockets.streams"] is not None:
        assert websockets_close(frame, found["websockets.frames"], found["websockets.streams"]).code == 1001
        close["websockets"] = partial(websockets_close, frame, found["websockets.frames"], found["websockets.streams"])
    if found["websockets.utils"] is not None:
        assert found["websockets.utils"].apply_mask(payload, KEY) == py.unmask_ws_payload(payload, KEY)
        unmask["websockets apply_mask"] = partial(found["websockets.utils"].apply_mask, payload, KEY)
    if None not in (found["paho.mqtt.packettypes"], found["paho.mqtt.reasoncodes"], found["paho.mqtt.properties"]):
        peer = (found["paho.mqtt.packettypes"].PacketTypes, found["paho.mqtt.reasoncodes"].ReasonCode,
                found["paho.mqtt.properties"].Properties)
        code, properties = paho_disconnect(packet[2:], *peer)
        assert code.value == 0x8E and properties.ReasonString == "Session taken over"
        mqtt["paho (variable header only)"] = partial(paho_disconnect, packet[2:], *peer)

    first = next(iter(close))
    return [
        Case(
            "WebSocket: parse + decode one masked close frame (1001 'going away', 18 bytes)",
            close, baseline=first, unit="frame",
            targets=[("compiled", "wsproto", 30), ("compiled", "websockets", 10)],
        ),
        Case(
            "MQTT 5: decode one DISCONNECT 0x8E with a Reason String (25 bytes)",
            mqtt, baseline=first, unit="packet",
            targets=[("compiled", "pure Python", 10)],
        ),
        Case(
            "WebSocket: unmask 64 KiB (target: compiled >= 1000 MB/s)",
            unmask, baseline=first, unit="64 KiB", nbytes=len(payload),
        ),
    ]
