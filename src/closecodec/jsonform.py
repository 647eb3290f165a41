"""Decoded values as JSON-ready dicts, and back: the shape of the shared vectors' ``expected``.

Session ids are ``{server, value, string}``, enum values ``{code, name}``,
properties a ``{key: value}`` object plus ``property_order`` (wire order; with
duplicate keys the object keeps the last, as JSON must, and ``pairs`` keeps all).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List

from .diffusion.protocol import EntryType, MessageType, service_name
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
from .reasons import ClientCloseReason, MqttReasonCode
from .websocket.values import WebSocketClose, WebSocketFrame, WebSocketOpcode

__all__ = ["from_json", "to_json", "to_json_as"]

_EVENT_NAMES = {OpenEvent: ("OPEN", 0), UpdateEvent: ("UPDATE", 1), CloseEvent: ("CLOSE", 2)}


def _enum(value: Any) -> Dict[str, Any]:
    return {"code": int(value), "name": value.name}


def _compressed(message: Any) -> Dict[str, bool]:
    # Only when set, so that plain messages have exactly the vectors' shape.
    return {"compressed": True} if message.compressed else {}


def _session_id(value: SessionId) -> Dict[str, Any]:
    return {"server": value.server, "value": value.value, "string": str(value)}


def _properties(pairs: tuple) -> Dict[str, Any]:
    out: Dict[str, Any] = {"properties": dict(pairs), "property_order": [key for key, _ in pairs]}
    if len(out["properties"]) != len(pairs):  # duplicate keys: keep every pair too
        out["pairs"] = [list(pair) for pair in pairs]
    return out


def to_json(value: Any) -> Any:
    """A JSON-ready form of any closecodec value (frames, session ids, ints, strings)."""
    kind = type(value)
    if kind is SessionId:
        return _session_id(value)
    if kind in _EVENT_NAMES:
        name, code = _EVENT_NAMES[kind]
        out: Dict[str, Any] = {"type": name, "type_code": code, "session_id": _session_id(value.session_id)}
        if kind is CloseEvent:
            out["close_reason"] = _enum(value.reason)
        if kind is UpdateEvent:
            out["update_type"] = _enum(value.update_type)
            out["entries"] = [
                {"key": c.key, "entry_type": c.entry_type.name, "entry_type_code": int(c.entry_type), "values": list(c.values)}
                for c in value.changes
            ]
        else:
            out.update(_properties(value.properties))
        return out
    if kind is EventBatch:
        return {"conversation_id": value.conversation_id, "events": [to_json(event) for event in value.events]}
    if kind is CloseClientRequest:
        return {"session_id": _session_id(value.session_id)}
    if kind is ServiceRequest:
        payload = value.payload
        return {
            "message_type": _enum(MessageType.SERVICE_REQUEST),
            "service_id": value.service_id,
            "service_name": service_name(value.service_id),
            "message_cid": value.conversation_id,
            "payload": payload.hex() if type(payload) is bytes else to_json(payload),
            **_compressed(value),
        }
    if kind is AbortNotification:
        return {"message_type": _enum(MessageType.ABORT_NOTIFICATION), "close_reason": _enum(value.close_reason)}
    if kind is CloseRequest:
        return {"message_type": _enum(MessageType.CLOSE_REQUEST), "close_reason": _enum(value.close_reason)}
    if kind is OtherMessage:
        return {"message_type": _enum(value.message_type), "body": value.body.hex(), **_compressed(value)}
    if kind is ConnectionResponse:
        out = {"protocol_version": value.version, "response_code": _enum(value.code), "success": value.code.is_success}
        if value.code.is_success:
            out.update(
                session_id=_session_id(value.session_id),
                token=value.token.decode("ascii", "backslashreplace"),
                ping_period=value.ping_period,
                max_message_size=value.max_message_size,
                recovery_sequence=value.recovery_sequence,
            )
        reason = value.close_reason
        out["close_reason"] = None if reason is None else _enum(reason)
        return out
    if kind is int:
        return {"value": value}
    if kind is str:
        return {"value": value, "utf8_length": len(value.encode("utf-8"))}
    if kind in _TRANSPORT_TYPES:
        return _transport_json(value)
    raise TypeError(f"no JSON form for {kind.__name__}")


def to_json_as(kind: str, value: Any) -> Any:
    """:func:`to_json` for a CLI ``--as`` kind: a bare session id is wrapped as ``{"session_id": ...}``."""
    if kind == "session-id":
        return {"session_id": _session_id(value)}
    return to_json(value)


def _session_id_from(obj: Any) -> SessionId:
    if isinstance(obj, str):
        return SessionId.parse(obj)
    if "string" in obj and "server" not in obj:
        return SessionId.parse(obj["string"])
    return SessionId(obj["server"], obj["value"])


def _code(obj: Any) -> int:
    return obj["code"] if isinstance(obj, dict) else obj


def _pairs_from(obj: Dict[str, Any]) -> List[tuple]:
    if "pairs" in obj:
        return [tuple(pair) for pair in obj["pairs"]]
    properties = obj.get("properties", {})
    order = obj.get("property_order", list(properties))
    return [(key, properties[key]) for key in order]


def _event_from(obj: Dict[str, Any]) -> Any:
    session_id = _session_id_from(obj["session_id"])
    kind = obj["type"]
    if kind == "CLOSE":
        return CloseEvent(session_id, ClientCloseReason(_code(obj["close_reason"])), _pairs_from(obj))
    if kind == "OPEN":
        return OpenEvent(session_id, _pairs_from(obj))
    if kind == "UPDATE":
        changes = [PropertyChange(e["key"], EntryType[e["entry_type"]], e["values"]) for e in obj.get("entries", [])]
        return UpdateEvent(session_id, _code(obj["update_type"]), changes)
    raise ValueError(f"unknown event type {kind!r}")


def from_json(kind: str, obj: Any) -> Any:
    """The value of a CLI ``--as`` kind from its JSON form (the inverse of :func:`to_json`).

    Raises:
        ValueError, KeyError, TypeError: ``obj`` is not a valid JSON form of ``kind``.
    """
    if kind in ("int32", "int64", "byte", "string"):
        return obj["value"] if isinstance(obj, dict) else obj
    if kind == "session-id":
        return _session_id_from(obj.get("session_id", obj) if isinstance(obj, dict) else obj)
    if kind == "close-client-request":
        return CloseClientRequest(_session_id_from(obj["session_id"]))
    if kind == "event-core":
        return _event_from(obj)
    if kind == "event-batch":
        return EventBatch(obj["conversation_id"], [_event_from(event) for event in obj["events"]])
    if kind == "message":
        message_type = MessageType(_code(obj["message_type"]))
        compressed = bool(obj.get("compressed", False))
        if message_type == MessageType.ABORT_NOTIFICATION:
            return AbortNotification()
        if message_type == MessageType.CLOSE_REQUEST:
            return CloseRequest()
        if message_type == MessageType.SERVICE_REQUEST:
            service_id = obj["service_id"]
            payload = obj["payload"]
            if service_id == 82:
                payload = from_json("event-batch", payload)
            elif service_id == 14:
                payload = from_json("close-client-request", payload)
            else:
                payload = bytes.fromhex(payload)
            return ServiceRequest(service_id, obj["message_cid"], payload, compressed)
        return OtherMessage(message_type, bytes.fromhex(obj["body"]), compressed)
    if kind == "connection-response":
        success = {}
        if "session_id" in obj:
            success = dict(
                session_id=_session_id_from(obj["session_id"]),
                token=obj["token"].encode("ascii"),
                ping_period=obj["ping_period"],
                max_message_size=obj.get("max_message_size"),
                recovery_sequence=obj.get("recovery_sequence"),
            )
        return ConnectionResponse(obj["protocol_version"], _code(obj["response_code"]), **success)
    if kind == "ws-frame":
        return _ws_frame_from(obj)
    if kind == "mqtt-packet":
        return _mqtt_packet_from(obj)
    raise ValueError(f"unknown kind {kind!r}")


# -- WebSocket frames and MQTT packets (docs/transports.md) -------------------------


_TRANSPORT_TYPES = (WebSocketClose, WebSocketFrame, MqttDisconnect, MqttConnack, MqttOtherPacket)


def mqtt_property_json(pid: Any, value: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {"id": int(pid), "name": pid.name}
    if pid == MqttPropertyId.USER_PROPERTY:
        out.update(key=value[0], value=value[1])
    else:
        out["value"] = value.hex() if type(value) is bytes else value
    return out


def _transport_json(value: Any) -> Dict[str, Any]:
    """A WebSocket frame as ``fin, rsv, opcode, masked, mask_key, length`` plus
    ``code``/``name``/``reason`` (a close) or ``payload`` (hex); an MQTT packet as
    ``type``, ``version``, ``reason_code``, ``properties`` (wire order)."""
    kind = type(value)
    if kind is WebSocketClose or kind is WebSocketFrame:
        out: Dict[str, Any] = {
            "fin": value.fin,
            "rsv": value.rsv,
            "opcode": int(value.opcode),
            "opcode_name": value.opcode.name,
            "masked": value.masked,
            "mask_key": None if value.mask_key is None else value.mask_key.hex(),
            "length": value.length,
        }
        if kind is WebSocketClose:
            code = value.code
            out.update(code=None if code is None else int(code), name=None if code is None else code.name, reason=value.reason)
        else:
            out["payload"] = value.payload.hex()
        return out
    packet_type = MqttPacketType.CONNACK if kind is MqttConnack else MqttPacketType.DISCONNECT
    if kind is MqttOtherPacket:
        return {"type": value.packet_type.name, "type_code": int(value.packet_type), "flags": value.flags, "body": value.body.hex()}
    code = value.reason_code
    out = {"type": packet_type.name, "type_code": int(packet_type), "version": value.version}
    if kind is MqttConnack:
        out["session_present"] = value.session_present
    name = code.name_in(packet_type.name) if isinstance(code, MqttReasonCode) else code.name
    out["reason_code"] = {"code": int(code), "name": name}
    out["properties"] = [mqtt_property_json(pid, item) for pid, item in value.properties]
    return out


def _ws_frame_from(obj: Dict[str, Any]) -> Any:
    mask_key = obj.get("mask_key")
    if mask_key is not None:
        mask_key = bytes.fromhex(mask_key)
    elif obj.get("masked"):
        mask_key = os.urandom(4)  # RFC 6455 §5.3: an unpredictable key per frame
    opcode = obj.get("opcode", 8)
    opcode = WebSocketOpcode[opcode] if isinstance(opcode, str) else WebSocketOpcode(opcode)
    if opcode == WebSocketOpcode.CLOSE:
        return WebSocketClose(_code(obj["code"]) if obj.get("code") is not None else None, obj.get("reason", ""), mask_key)
    return WebSocketFrame(opcode, bytes.fromhex(obj.get("payload", "")), obj.get("fin", True), obj.get("rsv", 0), mask_key)


def _mqtt_property_from(obj: Dict[str, Any]) -> tuple:
    pid = MqttPropertyId[obj["name"]] if "id" not in obj else MqttPropertyId(obj["id"])
    if pid == MqttPropertyId.USER_PROPERTY:
        return (pid, (obj["key"], obj["value"]))
    value = obj["value"]
    return (pid, bytes.fromhex(value) if pid.data_type == "binary" else value)


def _mqtt_packet_from(obj: Dict[str, Any]) -> Any:
    packet_type = obj.get("type_code", obj.get("type"))
    packet_type = MqttPacketType[packet_type] if isinstance(packet_type, str) else MqttPacketType(packet_type)
    version = obj.get("version", 5)
    if packet_type == MqttPacketType.DISCONNECT or packet_type == MqttPacketType.CONNACK:
        code = _code(obj.get("reason_code", 0))
        properties = [_mqtt_property_from(item) for item in obj.get("properties", [])]
        if packet_type == MqttPacketType.DISCONNECT:
            return MqttDisconnect(code, properties, version)
        return MqttConnack(code, obj.get("session_present", False), properties, version)
    return MqttOtherPacket(packet_type, obj.get("flags", 0), bytes.fromhex(obj.get("body", "")))
