"""Diffusion's message, event, update and entry types: now ``closecodec.diffusion.protocol``.

This module keeps the old import path working.
"""

from .diffusion.protocol import SERVICE_NAMES, EntryType, EventType, MessageType, UpdateType, service_name

__all__ = ["SERVICE_NAMES", "EntryType", "EventType", "MessageType", "UpdateType", "service_name"]
