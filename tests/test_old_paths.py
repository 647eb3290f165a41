"""The import paths of the flat layout before the rooms still give every name they gave.

The names are those the modules offered publicly before the move (closecodec 0.1.0
at the commit before it), read from an install of it; code written against them keeps
working (docs/architecture.md, "Old import paths").
"""

import importlib

import pytest

OLD_NAMES = {
    "closecodec.frames": [
        "AbortNotification", "ClientCloseReason", "CloseClientRequest", "CloseEvent", "CloseReason", "CloseRequest",
        "ConnectionResponse", "EntryType", "EventBatch", "HANDSHAKE_PROTOCOL_BYTE", "MQTT_PACKET_PROPERTIES",
        "MQTT_PROPERTY_TYPES", "MessageType", "MqttConnack", "MqttConnackReturnCode", "MqttDisconnect",
        "MqttOtherPacket", "MqttPacketType", "MqttPropertyId", "MqttReasonCode", "OpenEvent", "OtherMessage", "Packet",
        "PropertyChange", "ResponseCode", "ServiceRequest", "SessionId", "TcpSegment", "UpdateEvent", "UpdateType",
        "WebSocketClose", "WebSocketCloseCode", "WebSocketFrame", "WebSocketHeader", "WebSocketMessage",
        "WebSocketOpcode", "handshake_close_reason", "service_name",
    ],
    "closecodec.closes": [
        "AbortNotification", "CloseClientRequest", "CloseRecord", "CloseRecordReader", "CloseRequest",
        "ConnectionResponse", "DECODE_AS_KINDS", "DEFAULT_BLOCK_SIZE", "DEFAULT_MAX_BUFFER_PER_DIRECTION",
        "DEFAULT_MAX_BUFFER_TOTAL", "DEFAULT_MAX_CLOSED", "DEFAULT_MAX_CONNECTIONS", "DEFAULT_MAX_MESSAGE_SIZE",
        "DEFAULT_MAX_RECORD", "DecodeError", "EventBatch", "IncompleteError", "MAX_HANDSHAKE", "MAX_INFLATED",
        "MqttConnack", "MqttDisconnect", "ServiceRequest", "StreamData", "StreamEnd", "StreamGap", "StreamStart",
        "TcpConnection", "TcpReassembler", "WebSocketClose", "WebSocketMessage", "close_records", "parse_decode_as",
    ],
    "closecodec.capture": [
        "BACKEND", "DEFAULT_BLOCK_SIZE", "DEFAULT_MAX_BUFFER_PER_DIRECTION", "DEFAULT_MAX_BUFFER_TOTAL",
        "DEFAULT_MAX_CLOSED", "DEFAULT_MAX_CONNECTIONS", "DEFAULT_MAX_RECORD", "FrameIndex", "IncompleteError",
        "PIECE_OVERHEAD", "Packet", "PacketReader", "StreamData", "StreamEnd", "StreamGap", "StreamStart",
        "TcpConnection", "TcpReassembler", "TcpStreamReader", "open_capture", "parse_packet",
    ],
    "closecodec.protocol": ["EntryType", "EventType", "MessageType", "SERVICE_NAMES", "UpdateType", "service_name"],
}
#: Where each old module's names live now.
NEW_HOMES = {
    "closecodec.closes": "closecodec.capture.records",
    "closecodec.protocol": "closecodec.diffusion.protocol",
    "closecodec.capture": "closecodec.capture.reassembly",
}


@pytest.mark.parametrize("module_name", sorted(OLD_NAMES))
def test_every_old_name_resolves(module_name):
    module = importlib.import_module(module_name)
    missing = [name for name in OLD_NAMES[module_name] if not hasattr(module, name)]
    assert missing == []
    exec(f"from {module_name} import {', '.join(OLD_NAMES[module_name])}", {})


@pytest.mark.parametrize("module_name", sorted(NEW_HOMES))
def test_old_names_are_the_new_homes_objects(module_name):
    old, new = importlib.import_module(module_name), importlib.import_module(NEW_HOMES[module_name])
    for name in OLD_NAMES[module_name]:
        if hasattr(new, name):
            assert getattr(old, name) is getattr(new, name), name


def test_closecodec_capture_lists_its_names():
    import closecodec.capture

    assert set(closecodec.capture.__all__) <= set(dir(closecodec.capture))
