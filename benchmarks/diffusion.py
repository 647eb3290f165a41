"""Diffusion session-close events: service-82 messages of 100 CLOSE events, 4 properties each.

Contenders: compiled, pure Python, and the vendor's Python SDK reader (PyPI
``diffusion``, the bench extra) on the same batch bytes.

Each call decodes the next of ``MESSAGES`` different messages, in turn. Their
``$ClientIP`` values are all different, as in real traffic, so no cache can
serve them from an earlier call; ``$ClientType`` and ``$Connector`` repeat, and
``$Principal`` takes 17 values, as they do in real traffic.
"""

from __future__ import annotations

import io
from functools import partial
from itertools import cycle
from typing import Callable, List, Sequence

from closecodec.frames import CloseEvent, EventBatch, ServiceRequest, SessionId

from .backends import pair
from .harness import Case

EVENTS = 100
MESSAGES = 64


def sample_batch(k: int = 0) -> EventBatch:
    """Message ``k``'s batch: session ids and client addresses unique to it."""
    events = [
        CloseEvent(
            SessionId(0x0123456789ABCDEF, 0xFEDCBA9876543210 + EVENTS * k + i),
            (4, 2, 11, 8)[i % 4],
            [
                ("$Principal", f"user-{i % 17}"),
                ("$ClientIP", f"10.{k}.{i}.{(7 * i + k) % 256}"),
                ("$ClientType", "JAVASCRIPT_BROWSER"),
                ("$Connector", "Client Connector"),
            ],
        )
        for i in range(EVENTS)
    ]
    return EventBatch(42, events)


def in_turn(function: Callable[[bytes], object], inputs: Sequence[bytes]) -> Callable[[], object]:
    """A call of ``function`` on the next input, round and round."""
    following = cycle(inputs).__next__
    return lambda: function(following())


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
    batches = [sample_batch(k) for k in range(MESSAGES)]
    payloads = [py.encode_event_batch(batch) for batch in batches]
    messages = [py.encode_message(ServiceRequest(82, 0, batch)) for batch in batches]
    decode = {"pure Python": in_turn(py.decode_message, messages), "minimal Python loop": in_turn(minimal_loop, messages)}
    encode = {"pure Python": partial(py.encode_message, ServiceRequest(82, 0, batches[0]))}
    scan = {
        "pure Python columns": in_turn(py.close_event_columns, messages),
        "pure Python scan, no properties": in_turn(partial(py.scan_close_events, properties=False), messages),
    }
    if c is not None:
        decode = {"compiled": in_turn(c.decode_message, messages), **decode}
        encode = {"compiled": partial(c.encode_message, ServiceRequest(82, 0, batches[0])), **encode}
        scan = {
            "compiled columns": in_turn(c.close_event_columns, messages),
            "compiled scan, no properties": in_turn(partial(c.scan_close_events, properties=False), messages),
            "compiled scan": in_turn(c.scan_close_events, messages),
            "compiled full decode": decode["compiled"],
            **scan,
        }
    vendor = vendor_reader()
    if vendor is not None:
        decode["vendor SDK reader"] = scan["vendor SDK reader"] = in_turn(vendor, payloads)
    scan["minimal Python loop"] = decode["minimal Python loop"]
    print(f"\nsample: {MESSAGES} messages of {EVENTS} CLOSE events, 4 properties each, "
          f"{len(messages[0])} bytes each, decoded in turn")
    return [
        Case(
            f"decode a service-82 message of {EVENTS} close events",
            decode,
            baseline="pure Python",
            units=EVENTS,
            unit="event",
            nbytes=len(messages[0]),
            targets=[
                ("compiled", "vendor SDK reader", 100),
                ("compiled", "minimal Python loop", 8),
                ("compiled", "pure Python", 10),
            ],
            time_targets=[("compiled", 250)],
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
            "the close events of a message: session ids and reasons, properties on demand",
            scan,
            baseline="compiled full decode" if c is not None else "pure Python columns",
            units=EVENTS,
            unit="event",
            targets=[
                ("compiled columns", "vendor SDK reader", 1000),
                ("compiled scan, no properties", "compiled full decode", 1.5),
            ],
            time_targets=[("compiled columns", 55)],
        ),
    ]
