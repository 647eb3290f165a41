"""The one place that picks the backend of every compiled module and its twin, once, at import.

Each byte loop is a compiled module, ``_c``, beside a pure-Python twin, ``_py``,
with the same names: one pair per room (docs/architecture.md). The compiled
pairs are used when they import; the pure twins otherwise, or when
``CLOSECODEC_NO_EXTENSIONS`` is set (see ``_extensions``), and always for type
checkers. All pairs come from one side: a mix would make ``BACKEND`` untrue.
Package code imports byte-loop functions and classes from here only.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Dict, Mapping

from ._extensions import NO_EXTENSIONS

#: The rooms with a compiled module and its pure twin, bottom up: each only uses rooms before it.
PAIRS = ("buffer", "websocket", "mqtt", "diffusion", "capture")


def _load(side: str) -> Dict[str, ModuleType]:
    return {room: importlib.import_module(f"closecodec.{room}._{side}") for room in PAIRS}


if NO_EXTENSIONS:
    _modules = _load("py")
else:
    try:
        _modules = _load("c")
    except ImportError:  # not built: no compiler at install time
        _modules = _load("py")

if TYPE_CHECKING:
    from .buffer import _py as buffer
    from .capture import _py as capture
    from .diffusion import _py as diffusion
    from .mqtt import _py as mqtt
    from .websocket import _py as websocket
else:
    buffer = _modules["buffer"]
    diffusion = _modules["diffusion"]
    websocket = _modules["websocket"]
    mqtt = _modules["mqtt"]
    capture = _modules["capture"]

#: ``"c"`` for the compiled backend, ``"py"`` for pure Python.
BACKEND: str = "c" if diffusion.__name__.endswith("._c") else "py"
#: Each pair's loaded module, by room, read-only: ``{"buffer": "closecodec.buffer._c", ...}``.
MODULES: Mapping[str, str] = MappingProxyType({room: module.__name__ for room, module in _modules.items()})

# Diffusion: wire primitives, messages, events, the connection response, the stream.
decode_int32 = diffusion.decode_int32
decode_int64 = diffusion.decode_int64
decode_byte = diffusion.decode_byte
decode_boolean = diffusion.decode_boolean
decode_bytes = diffusion.decode_bytes
decode_string = diffusion.decode_string
decode_collection = diffusion.decode_collection
decode_string_dict = diffusion.decode_string_dict
decode_session_id = diffusion.decode_session_id
encode_int32 = diffusion.encode_int32
encode_int64 = diffusion.encode_int64
encode_byte = diffusion.encode_byte
encode_boolean = diffusion.encode_boolean
encode_bytes = diffusion.encode_bytes
encode_string = diffusion.encode_string
encode_collection = diffusion.encode_collection
encode_string_dict = diffusion.encode_string_dict
encode_session_id = diffusion.encode_session_id
decode_message = diffusion.decode_message
scan_close_events = diffusion.scan_close_events
close_event_columns = diffusion.close_event_columns
decode_event_batch = diffusion.decode_event_batch
decode_event = diffusion.decode_event
decode_close_client_request = diffusion.decode_close_client_request
decode_connection_response = diffusion.decode_connection_response
encode_message = diffusion.encode_message
encode_event_batch = diffusion.encode_event_batch
encode_event = diffusion.encode_event
encode_close_client_request = diffusion.encode_close_client_request
encode_connection_response = diffusion.encode_connection_response
DiffusionStream = diffusion.DiffusionStream
CloseEventColumns = diffusion.CloseEventColumns

# WebSocket: frames, the stream, the upgrade head.
DEFAULT_MAX_WS_PAYLOAD: int = websocket.DEFAULT_MAX_WS_PAYLOAD
unmask_ws_payload = websocket.unmask_ws_payload
decode_ws_header = websocket.decode_ws_header
decode_ws_frame = websocket.decode_ws_frame
encode_ws_frame = websocket.encode_ws_frame
WebSocketStream = websocket.WebSocketStream
parse_http_head = websocket.parse_http_head
ws_tile = websocket.ws_tile

# MQTT: packets, the stream, the CONNECT.
decode_mqtt_varint = mqtt.decode_mqtt_varint
encode_mqtt_varint = mqtt.encode_mqtt_varint
decode_mqtt_packet = mqtt.decode_mqtt_packet
encode_mqtt_packet = mqtt.encode_mqtt_packet
MqttStream = mqtt.MqttStream
parse_mqtt_connect = mqtt.parse_mqtt_connect
mqtt_tile = mqtt.mqtt_tile

# Packet captures: pcap/pcapng records, link/IP/TCP headers, the segment loop.
DEFAULT_BLOCK_SIZE: int = capture.DEFAULT_BLOCK_SIZE
DEFAULT_MAX_RECORD: int = capture.DEFAULT_MAX_RECORD
PacketReader = capture.PacketReader
parse_packet = capture.parse_packet
