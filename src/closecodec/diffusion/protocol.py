"""Diffusion protocol constants: message types, services and session-event enums.

docs/diffusion.md sections 3 and 4. The enums that can meet a number a newer
server might add (message and update types) are open: an unlisted value becomes
an ``UNKNOWN`` pseudo-member that keeps the raw number (see ``reasons``).
"""

from __future__ import annotations

import enum
from typing import Dict

from ..reasons import OpenIntEnum

__all__ = ["EntryType", "EventType", "MessageType", "SERVICE_NAMES", "UpdateType", "service_name"]


class MessageType(OpenIntEnum):
    """The low six bits of a message's first byte."""

    __value_range__ = (0, 0x3F)

    SERVICE_REQUEST = 0, "a request to a service: service id, conversation id, payload"
    TOPIC_VALUE = 4, "a topic's value: topic id, value bytes"
    TOPIC_DELTA = 5, "a change to a topic's value: topic id, delta bytes"
    SERVICE_RESPONSE = 6, "a service's answer: conversation id, response payload"
    SERVICE_ERROR = 7, "a service's failure: conversation id, message, reason"
    ABORT_NOTIFICATION = 28, "the server aborts the session (empty body)"
    CLOSE_REQUEST = 29, "the client asks the server to close the session (empty body)"
    FETCH_REPLY = 34, "a legacy fetch reply"


class EventType(enum.IntEnum):
    """What a session event says happened (a Byte; no other value is valid)."""

    OPEN = 0
    UPDATE = 1
    CLOSE = 2


class UpdateType(OpenIntEnum):
    """Why an UPDATE event was sent (a Byte; the vendor reader accepts any value)."""

    __value_range__ = (0, 0x7F)

    UPDATED = 0, "the session's properties changed"
    RECONNECTED = 1, "the session reconnected"
    FAILED_OVER = 2, "the session failed over to another server"
    DISCONNECTED = 3, "the session disconnected and may reconnect"


class EntryType(enum.IntEnum):
    """What happened to one property in an UPDATE event, and how many values follow."""

    NEW = 1
    CHANGE = 2
    REMOVE = 3
    SAME = 4

    @property
    def value_count(self) -> int:
        """Strings that follow on the wire: NEW (new), CHANGE (old, new), REMOVE (old), SAME (current)."""
        return 2 if self is EntryType.CHANGE else 1


SERVICE_NAMES: Dict[int, str] = {
    14: "CLOSE_CLIENT",
    55: "SYSTEM_PING",
    82: "SESSION_PROPERTIES_EVENT_2",
}
"""Names of the services closecodec knows by number."""


def service_name(service_id: int) -> str:
    """A service's name, or ``SERVICE_<id>`` for one closecodec does not name."""
    return SERVICE_NAMES.get(service_id, f"SERVICE_{service_id}")
