"""The one place that picks the backend, once, at import.

The compiled backend is used when it imports; the pure-Python one otherwise,
or when ``CLOSECODEC_NO_EXTENSIONS`` is set (see ``_extensions``). Package code
imports codec functions from here only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._extensions import NO_EXTENSIONS

if TYPE_CHECKING or NO_EXTENSIONS:
    from . import _codec_py as backend
    from . import _transport_py as transport
    from . import _stream_py as stream
    from . import _capture_py as capture_backend
else:
    # Both compiled modules or neither, so that BACKEND names every codec in use.
    try:
        from . import _codec_c as backend
        from . import _transport_c as transport
        from . import _stream_c as stream
        from . import _capture_c as capture_backend
    except ImportError:  # not built: no compiler at install time
        from . import _codec_py as backend
        from . import _transport_py as transport
        from . import _stream_py as stream
        from . import _capture_py as capture_backend

#: ``"c"`` for the compiled backend, ``"py"`` for pure Python.
BACKEND: str = "c" if backend.__name__.endswith("_codec_c") else "py"

decode_int32 = backend.decode_int32
decode_int64 = backend.decode_int64
decode_byte = backend.decode_byte
decode_boolean = backend.decode_boolean
decode_bytes = backend.decode_bytes
decode_string = backend.decode_string
decode_collection = backend.decode_collection
decode_string_dict = backend.decode_string_dict
decode_session_id = backend.decode_session_id
encode_int32 = backend.encode_int32
encode_int64 = backend.encode_int64
encode_byte = backend.encode_byte
encode_boolean = backend.encode_boolean
encode_bytes = backend.encode_bytes
encode_string = backend.encode_string
encode_collection = backend.encode_collection
encode_string_dict = backend.encode_string_dict
encode_session_id = backend.encode_session_id
decode_message = backend.decode_message
scan_close_events = backend.scan_close_events
decode_event_batch = backend.decode_event_batch
decode_event = backend.decode_event
decode_close_client_request = backend.decode_close_client_request
decode_connection_response = backend.decode_connection_response
encode_message = backend.encode_message
encode_event_batch = backend.encode_event_batch
encode_event = backend.encode_event
encode_close_client_request = backend.encode_close_client_request
encode_connection_response = backend.encode_connection_response

# WebSocket frames and MQTT packets (the transport pair).
DEFAULT_MAX_WS_PAYLOAD: int = transport.DEFAULT_MAX_WS_PAYLOAD
unmask_ws_payload = transport.unmask_ws_payload
decode_ws_header = transport.decode_ws_header
decode_ws_frame = transport.decode_ws_frame
encode_ws_frame = transport.encode_ws_frame
decode_mqtt_varint = transport.decode_mqtt_varint
encode_mqtt_varint = transport.encode_mqtt_varint
decode_mqtt_packet = transport.decode_mqtt_packet
encode_mqtt_packet = transport.encode_mqtt_packet

# Incremental decoders of WebSocket, Diffusion and MQTT byte streams (the stream pair).
DEFAULT_MAX_MESSAGE_SIZE: int = stream.DEFAULT_MAX_MESSAGE_SIZE
WebSocketStream = stream.WebSocketStream
DiffusionStream = stream.DiffusionStream
MqttStream = stream.MqttStream

# Packet captures: pcap/pcapng records and link/IP/TCP headers (the capture pair).
PacketReader = capture_backend.PacketReader
parse_packet = capture_backend.parse_packet
