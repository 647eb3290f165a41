"""Decoded values as JSON-ready dicts, and back: the shape of the shared vectors' ``expected``.

Session ids are ``{server, value, string}``, enum values ``{code, name}``,
properties a ``{key: value}`` object plus ``property_order`` (wire order; with
duplicate keys the object keeps the last, as JSON must, and ``pairs`` keeps all).
"""

from __future__ import annotations

from typing import Any, Dict, List

from .frames import (
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
from .protocol import EntryType, MessageType, service_name
from .reasons import ClientCloseReason

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
        return {"message_type": _enum(MessageType.ABORT_NOTIFICATION)}
    if kind is CloseRequest:
        return {"message_type": _enum(MessageType.CLOSE_REQUEST)}
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
    raise ValueError(f"unknown kind {kind!r}")
