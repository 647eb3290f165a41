"""The values closecodec's decoders return and its encoders take, from every protocol.

Each protocol keeps its values in its own room (``closecodec.diffusion.values``,
``closecodec.websocket.values``, ``closecodec.mqtt.values``,
``closecodec.capture.values``); this module gathers them under the name they
have always had, with the protocol and reason types it always offered beside them.
"""

from .capture.values import Packet, TcpSegment
from .diffusion.protocol import EntryType, MessageType, UpdateType, service_name
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
from .mqtt.values import (
    MQTT_PACKET_PROPERTIES,
    MQTT_PROPERTY_TYPES,
    MqttConnack,
    MqttDisconnect,
    MqttOtherPacket,
    MqttPacketType,
    MqttPropertyId,
)
from .reasons import (
    HANDSHAKE_PROTOCOL_BYTE,
    ClientCloseReason,
    CloseReason,
    MqttConnackReturnCode,
    MqttReasonCode,
    ResponseCode,
    WebSocketCloseCode,
    handshake_close_reason,
)
from .websocket.values import WebSocketClose, WebSocketFrame, WebSocketHeader, WebSocketMessage, WebSocketOpcode

__all__ = [
    "MQTT_PACKET_PROPERTIES",
    "MQTT_PROPERTY_TYPES",
    "AbortNotification",
    "CloseClientRequest",
    "CloseEvent",
    "CloseRequest",
    "ConnectionResponse",
    "EventBatch",
    "OpenEvent",
    "OtherMessage",
    "PropertyChange",
    "ServiceRequest",
    "SessionId",
    "UpdateEvent",
    "MqttConnack",
    "MqttDisconnect",
    "MqttOtherPacket",
    "MqttPacketType",
    "MqttPropertyId",
    "WebSocketClose",
    "WebSocketFrame",
    "WebSocketHeader",
    "WebSocketMessage",
    "WebSocketOpcode",
    "Packet",
    "TcpSegment",
]
