"""The values closecodec's decoders return and its encoders take, from every protocol.

Each protocol keeps its values in its own room (``closecodec.diffusion.values``,
``closecodec.websocket.values``, ``closecodec.mqtt.values``,
``closecodec.capture.values``); this module gathers them under the name they
have always had.
"""

from .capture.values import Packet, TcpSegment
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
