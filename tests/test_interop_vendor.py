"""Interop with the vendor's Python SDK (PyPI ``diffusion``, a test-only peer).

Its generic reader decodes what we encode. Only OPEN and CLOSE events are
compared: its stock spec table cannot read UPDATE events (docs/diffusion.md
section 6). Skipped, with the reason, when the SDK is not installed.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closecodec.frames import CloseEvent, EventBatch, OpenEvent, SessionId

serialisers = pytest.importorskip(
    "diffusion.internal.serialisers.base", reason="the vendor SDK (PyPI diffusion) is not installed; the test extra installs it on CPython < 3.13 on x86_64"
)
BATCH_READER = serialisers.Serialiser.by_name("protocol16-session-properties-event-batch")

SESSION_IDS = st.builds(SessionId, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
# Unique keys: the SDK reads a Dictionary into a mapping.
PAIRS = st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4)
EVENTS = st.one_of(
    st.builds(CloseEvent, SESSION_IDS, st.integers(0, 15), PAIRS),
    st.builds(OpenEvent, SESSION_IDS, PAIRS),
)


def vendor_read(payload: bytes):
    conversation_id, events = tuple(BATCH_READER.read(io.BytesIO(payload)))
    return conversation_id, events  # events: one [session id pair, event choice] each


def as_unsigned(value: int) -> int:
    return value % 2**64


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**63 - 1), st.lists(EVENTS, min_size=1, max_size=4))
def test_vendor_sdk_reads_what_we_encode(diffusion, conversation_id, events):
    payload = diffusion.encode_event_batch(EventBatch(conversation_id, events))
    read_cid, read_events = vendor_read(payload)
    assert read_cid == conversation_id
    assert len(read_events) == len(events)
    for event, ((server, value), choice) in zip(events, read_events):
        assert (as_unsigned(server), as_unsigned(value)) == (event.session_id.server, event.session_id.value)
        if type(event) is CloseEvent:
            event_type, reason, properties = choice
            assert (event_type, reason) == (2, int(event.reason))
        else:
            event_type, properties = choice
            assert event_type == 0
        assert [(k.value, v.value) for k, v in properties.items()] == list(event.properties)


def vendor_write(conversation_id: int, events) -> bytes:
    """The SDK's writer: per event, the session id pair then the event choice."""
    encoded = []
    for event in events:
        pairs = list(event.properties)
        if type(event) is CloseEvent:
            choice = (2, int(event.reason), pairs)
        else:
            choice = (0, pairs)
        encoded.append([(event.session_id.server, event.session_id.value), choice])
    return BATCH_READER.to_bytes(conversation_id, encoded)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**63 - 1), st.lists(EVENTS, min_size=1, max_size=4))
def test_we_decode_what_the_vendor_sdk_writes(diffusion, conversation_id, events):
    payload = vendor_write(conversation_id, events)
    assert diffusion.decode_event_batch(payload) == (EventBatch(conversation_id, events), len(payload))
