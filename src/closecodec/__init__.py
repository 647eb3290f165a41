"""closecodec: encode and decode the frames that say why a connection or session closed.

Diffusion session-close events and the messages that end a Diffusion session,
WebSocket close frames and MQTT DISCONNECTs, in byte buffers, with a compiled
backend and a pure-Python twin that behaves identically. ``BACKEND`` says which
one is in use (``"c"`` or ``"py"``), ``BACKEND_MODULES`` which module each room's
byte loops come from.
"""

import os as _os

from ._backend import MODULES as BACKEND_MODULES
from ._backend import (
    BACKEND,
    DEFAULT_MAX_WS_PAYLOAD,
    CloseEventColumns,
    DiffusionStream,
    MqttStream,
    WebSocketStream,
    close_event_columns,
    decode_boolean,
    decode_byte,
    decode_bytes,
    decode_close_client_request,
    decode_collection,
    decode_connection_response,
    decode_event,
    decode_event_batch,
    decode_int32,
    decode_int64,
    decode_message,
    decode_mqtt_packet,
    decode_mqtt_varint,
    decode_session_id,
    decode_string,
    decode_string_dict,
    decode_ws_frame,
    decode_ws_header,
    encode_boolean,
    encode_byte,
    encode_bytes,
    encode_close_client_request,
    encode_collection,
    encode_connection_response,
    encode_event,
    encode_event_batch,
    encode_int32,
    encode_int64,
    encode_message,
    encode_mqtt_packet,
    encode_mqtt_varint,
    encode_session_id,
    encode_string,
    encode_string_dict,
    encode_ws_frame,
    scan_close_events,
    unmask_ws_payload,
)
from .buffer import DEFAULT_MAX_MESSAGE_SIZE, encode_into
from ._version import __version__
from .errors import (
    DecodeError,
    EncodeError,
    IncompleteError,
    MalformedError,
    MqttPacketError,
    UnknownValueError,
    WebSocketFrameError,
)
from .diffusion.protocol import EntryType, MessageType, UpdateType
from .diffusion.values import (
    AbortNotification,
    CloseClientRequest,
    CloseEvent,
    CloseRequest,
    ConnectionResponse,
    EventBatch,
    OpenEvent,
    OtherMessage,
    PropertyChange,
    ServiceRequest,
    SessionId,
    UpdateEvent,
)
from .mqtt.values import MqttConnack, MqttDisconnect, MqttOtherPacket, MqttPacketType, MqttPropertyId
from .reasons import (
    ClientCloseReason,
    CloseReason,
    MqttConnackReturnCode,
    MqttReasonCode,
    ReasonNumbering,
    ResponseCode,
    WebSocketCloseCode,
)
from .websocket.values import WebSocketClose, WebSocketFrame, WebSocketHeader, WebSocketMessage, WebSocketOpcode

__all__ = [
    "AbortNotification",
    "BACKEND",
    "BACKEND_MODULES",
    "ClientCloseReason",
    "CloseClientRequest",
    "CloseEvent",
    "CloseEventColumns",
    "CloseReason",
    "CloseRequest",
    "ConnectionResponse",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_WS_PAYLOAD",
    "DecodeError",
    "DiffusionStream",
    "EncodeError",
    "EntryType",
    "EventBatch",
    "IncompleteError",
    "MalformedError",
    "MessageType",
    "MqttConnack",
    "MqttConnackReturnCode",
    "MqttDisconnect",
    "MqttOtherPacket",
    "MqttPacketError",
    "MqttPacketType",
    "MqttPropertyId",
    "MqttReasonCode",
    "MqttStream",
    "OpenEvent",
    "OtherMessage",
    "PropertyChange",
    "ReasonNumbering",
    "ResponseCode",
    "ServiceRequest",
    "SessionId",
    "UnknownValueError",
    "UpdateEvent",
    "UpdateType",
    "WebSocketClose",
    "WebSocketCloseCode",
    "WebSocketFrame",
    "WebSocketFrameError",
    "WebSocketHeader",
    "WebSocketMessage",
    "WebSocketOpcode",
    "WebSocketStream",
    "__version__",
    "close_event_columns",
    "decode_boolean",
    "decode_byte",
    "decode_bytes",
    "decode_close_client_request",
    "decode_collection",
    "decode_connection_response",
    "decode_event",
    "decode_event_batch",
    "decode_int32",
    "decode_int64",
    "decode_message",
    "decode_mqtt_packet",
    "decode_mqtt_varint",
    "decode_session_id",
    "decode_string",
    "decode_string_dict",
    "decode_ws_frame",
    "decode_ws_header",
    "encode_boolean",
    "encode_byte",
    "encode_bytes",
    "encode_close_client_request",
    "encode_collection",
    "encode_connection_response",
    "encode_event",
    "encode_event_batch",
    "encode_int32",
    "encode_int64",
    "encode_into",
    "encode_message",
    "encode_mqtt_packet",
    "encode_mqtt_varint",
    "encode_session_id",
    "encode_string",
    "encode_string_dict",
    "encode_ws_frame",
    "get_include",
    "scan_close_events",
    "unmask_ws_payload",
]


def get_include() -> str:
    """The directory that holds the ``closecodec`` package's ``.pxd`` files' package.

    Add it to a Cython build's include path to ``cimport`` the C-level API of
    ``closecodec.websocket._c``, ``closecodec.mqtt._c``, ``closecodec.diffusion._c``
    and ``closecodec.buffer._c`` (docs/streaming.md), as ``numpy.get_include()`` is used:
    ``cythonize(..., include_path=[closecodec.get_include()])``. The compiled
    backend must be installed for the module to run.
    """
    return _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
