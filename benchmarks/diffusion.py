"""Diffusion session-close events: a service-82 message of 100 CLOSE events, 4 properties each.

Contenders: compiled, pure Python, and the vendor's Python SDK reader (PyPI
``diffusion``, the bench extra) on the same batch bytes.
"""

from __future__ import annotations

import io
from functools import partial
from typing import List

from closecodec.frames import CloseEvent, EventBatch, ServiceRequest, SessionId

from .backends import pair
from .harness import Case

EVENTS = 100


def sample_batch() -> EventBatch:
    events = [
        CloseEvent(
            SessionId(0x0123456789ABCDEF, 0xFEDCBA9876543210 + i),
            (4, 2, 11, 8)[i % 4],
            [
                ("$Principal", f"user-{i % 17}"),
                ("$ClientIP", f"192.168.{i % 256}.{(7 * i) % 256}"),
                ("$ClientType", "JAVASCRIPT_BROWSER"),
                ("$Connector", "Client Connector"),
            ],
        )
        for i in range(EVENTS)
    ]
    return EventBatch(42, events)


def minimal_loop(message: bytes) -> list:
    """The least a pure-Python decoder can do: no error checks, plain tuples and dicts."""

    def varint(pos: int):
        result = shift = 0
        while True:
            byte = message[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result, pos
            shift += 7

    def string(pos: int):
        length, pos = varint(pos)
        return message[pos : pos + length].decode(), pos + length

    _, pos = varint(1)  # service id
    _, pos = varint(pos)  # message conversation id
    _, pos = varint(pos)  # batch conversation id
    count, pos = varint(pos)
    events = []
    for _ in range(count):
        server, pos = varint(pos)
        value, pos = varint(pos)
        reason = message[pos + 1]  # after the event type byte (CLOSE)
        pairs, pos = varint(pos + 2)
        properties = {}
        for _ in range(pairs):
            key, pos = string(pos)
            properties[key], pos = string(pos)
        events.append(((server, value), reason, properties))
    return events


def vendor_reader():
    try:
        from diffusion.internal.serialisers.base import Serialiser
    except ImportError as error:
        print(f"note: vendor SDK not installed ({error}); pip install '.[bench]'")
        return None
    serialiser = Serialiser.by_name("protocol16-session-properties-event-batch")
    # read() is a generator: draining it is what decodes the batch.
    return lambda payload: tuple(serialiser.read(io.BytesIO(payload)))


def cases() -> List[Case]:
    c, py = pair("diffusion")
    batch = sample_batch()
    payload = py.encode_event_batch(batch)
    message = py.encode_message(ServiceRequest(82, 0, batch))
    decode = {"pure Python": partial(py.decode_message, message), "minimal Python loop": partial(minimal_loop, message)}
    encode = {"pure Python": partial(py.encode_message, ServiceRequest(82, 0, batch))}
    scan = {
        "pure Python scan": partial(py.scan_close_events, message),
        "pure Python scan, no properties": partial(py.scan_close_events, message, properties=False),
    }
    if c is not None:
        decode = {"compiled": partial(c.decode_message, message), **decode}
        encode = {"compiled": partial(c.encode_message, ServiceRequest(82, 0, batch)), **encode}
        scan = {
            "compiled scan, no properties": partial(c.scan_close_events, message, properties=False),
            "compiled scan": partial(c.scan_close_events, message),
            "compiled full decode": decode["compiled"],
            **scan,
        }
    vendor = vendor_reader()
    if vendor is not None:
        decode["vendor SDK reader"] = partial(vendor, payload)
    print(f"\nsample: {EVENTS} CLOSE events, 4 properties each, message {len(message)} bytes")
    return [
        Case(
            f"decode a service-82 message of {EVENTS} close events",
            decode,
            baseline="pure Python",
            units=EVENTS,
            unit="event",
            nbytes=len(message),
            targets=[
                ("compiled", "vendor SDK reader", 100),
                ("compiled", "minimal Python loop", 8),
                ("compiled", "pure Python", 10),
            ],
        ),
        Case(
            f"encode the same message ({EVENTS} close events)",
            encode,
            baseline="pure Python",
            units=EVENTS,
            unit="event",
            targets=[("compiled", "pure Python", 10)],
        ),
        Case(
            "scan the message for close events only",
            scan,
            baseline="compiled full decode" if c is not None else "pure Python scan",
            units=EVENTS,
            unit="event",
            targets=[("compiled scan, no properties", "compiled full decode", 1.5)],
        ),
    ]
