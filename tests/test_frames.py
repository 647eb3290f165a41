"""Diffusion session events and messages: round trips, backend agreement, CLI."""

from __future__ import annotations

import copy
import io
import json
import pickle
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closecodec import cli
from closecodec.errors import EncodeError, IncompleteError, MalformedError
from closecodec.frames import (
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
from closecodec.protocol import EntryType, UpdateType
from closecodec.reasons import ClientCloseReason, ReasonNumbering

from helpers import outcome

SESSION_IDS = st.builds(SessionId, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
PAIRS = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=5)
REASONS = st.integers(0, 127).map(ClientCloseReason)  # every member and unknown values
CHANGES = st.builds(
    lambda key, entry, values: PropertyChange(key, entry, values[: entry.value_count]),
    st.text(max_size=8),
    st.sampled_from(list(EntryType)),
    st.lists(st.text(max_size=8), min_size=2, max_size=2),
)
EVENTS = st.one_of(
    st.builds(CloseEvent, SESSION_IDS, REASONS, PAIRS),
    st.builds(OpenEvent, SESSION_IDS, PAIRS),
    st.builds(UpdateEvent, SESSION_IDS, st.integers(0, 127).map(UpdateType), st.lists(CHANGES, max_size=3)),
)
BATCHES = st.builds(EventBatch, st.integers(-(2**63), 2**63 - 1), st.lists(EVENTS, max_size=6))
MESSAGES = st.one_of(
    st.builds(ServiceRequest, st.just(82), st.integers(-(2**63), 2**63 - 1), BATCHES, st.booleans()),
    st.builds(ServiceRequest, st.just(14), st.integers(0, 2**40), st.builds(CloseClientRequest, SESSION_IDS)),
    st.builds(ServiceRequest, st.integers(0, 200).filter(lambda s: s not in (14, 82)), st.integers(0, 9), st.binary(max_size=8)),
    st.just(AbortNotification()),
    st.just(CloseRequest()),
    st.builds(OtherMessage, st.sampled_from([4, 5, 6, 7, 34]), st.binary(max_size=20), st.booleans()),
)


@given(MESSAGES)
def test_message_round_trip(diffusion, message):
    encoded = diffusion.encode_message(message)
    assert diffusion.decode_message(encoded) == message
    assert diffusion.decode_message(b"\xff\xff" + encoded, 2) == message


@given(BATCHES)
def test_batch_round_trip_and_close_scan(diffusion, batch):
    encoded = diffusion.encode_event_batch(batch)
    assert diffusion.decode_event_batch(encoded) == (batch, len(encoded))
    message = diffusion.encode_message(ServiceRequest(82, 7, batch))
    closes = [event for event in batch.events if type(event) is CloseEvent]
    assert diffusion.scan_close_events(message) == closes
    assert diffusion.scan_close_events(message, properties=False) == [
        CloseEvent(event.session_id, event.reason, None) for event in closes
    ]


@given(BATCHES, st.sampled_from(list(ReasonNumbering)))
def test_close_event_columns_hold_the_scanned_close_events(diffusion, batch, numbering):
    message = diffusion.encode_message(ServiceRequest(82, 7, batch))
    closes = diffusion.scan_close_events(message, numbering=numbering)
    columns = diffusion.close_event_columns(message, numbering=numbering)
    assert len(columns) == len(closes) and list(columns) == closes
    assert list(columns.servers) == [event.session_id.server for event in closes]
    assert list(columns.values) == [event.session_id.value for event in closes]
    assert columns.servers.typecode == columns.values.typecode == "Q"
    assert columns.reasons == tuple(event.reason for event in closes)
    wire = [event.reason for event in batch.events if type(event) is CloseEvent]
    assert columns.reason_bytes == bytes(int(reason) for reason in wire)
    for i, event in enumerate(closes):
        assert columns[i] == columns[i - len(closes)] == event
        assert (columns.session_id(i), columns.reason(i), columns.properties(i)) == (
            event.session_id, event.reason, event.properties)
    for outside in (len(closes), -len(closes) - 1):
        with pytest.raises(IndexError):
            columns[outside]
        with pytest.raises(IndexError):
            columns.properties(outside)


def test_close_event_columns_outlive_the_callers_buffer(diffusion):
    batch = EventBatch(1, [
        CloseEvent(SessionId(1, 2), 11, {"$Principal": "alice", "k": "é"}),
        OpenEvent(SessionId(5, 6), {"$Principal": "bob"}),
        CloseEvent(SessionId(3, 2**64 - 1), 4, {}),
    ])
    plain = diffusion.encode_message(ServiceRequest(82, 0, batch))
    closes = [batch.events[0], batch.events[2]]
    compressed = bytes((0x80,)) + zlib.compress(plain[1:])
    for message in (plain, compressed):
        buffer = bytearray(b"\xff\xff" + message)
        columns = diffusion.close_event_columns(memoryview(buffer), 2)
        buffer[:] = bytes(len(buffer))  # the caller reuses its buffer
        assert list(columns) == closes and columns.properties(0) == (("$Principal", "alice"), ("k", "é"))


def test_close_event_columns_of_other_messages_are_empty(diffusion):
    for message in (CloseRequest(), ServiceRequest(14, 1, CloseClientRequest(SessionId(1, 2)))):
        columns = diffusion.close_event_columns(diffusion.encode_message(message))
        assert len(columns) == 0 and list(columns) == [] and columns.reason_bytes == b""
        assert list(columns.servers) == [] and columns.reasons == ()


def test_close_event_columns_are_made_by_the_scan_alone(diffusion):
    columns = diffusion.close_event_columns(diffusion.encode_message(CloseRequest()))
    with pytest.raises(TypeError, match="made by close_event_columns"):
        type(columns)()
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(columns)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.copy(columns)


def _columns_read(diffusion, data, **options):
    columns = diffusion.close_event_columns(data, **options)
    return list(columns), list(columns.servers), list(columns.values), columns.reason_bytes, columns.reasons


def test_close_events_without_decoded_properties_cannot_be_encoded(diffusion):
    with pytest.raises(EncodeError, match="not decoded"):
        diffusion.encode_event(CloseEvent(SessionId(1, 2), 4, None))


@given(MESSAGES)
def test_backends_encode_alike_and_read_each_other(diffusion_both, message):
    compiled, pure = diffusion_both
    encoded = pure.encode_message(message)
    assert compiled.encode_message(message) == encoded
    assert compiled.decode_message(encoded) == pure.decode_message(encoded) == message


@pytest.mark.parametrize("name", ["decode_message", "scan_close_events", "decode_connection_response"])
@given(data=st.binary(max_size=60))
def test_backends_agree_on_arbitrary_bytes(diffusion_both, name, data):
    compiled, pure = diffusion_both
    assert outcome(lambda: getattr(compiled, name)(data)) == outcome(lambda: getattr(pure, name)(data))


def damaged(encoded, data):
    """A truncation of ``encoded`` and a copy with one byte changed, drawn from ``data``."""
    cut = data.draw(st.integers(0, len(encoded)))
    mutated = bytearray(encoded)
    if encoded:
        mutated[data.draw(st.integers(0, len(encoded) - 1))] = data.draw(st.integers(0, 255))
    return [encoded[:cut], bytes(mutated)]


@given(message=MESSAGES, data=st.data())
def test_backends_agree_on_truncations_and_corruptions(diffusion_both, message, data):
    compiled, pure = diffusion_both
    for variant in damaged(pure.encode_message(message), data):
        for name in ("decode_message", "scan_close_events"):
            assert outcome(lambda: getattr(compiled, name)(variant)) == outcome(lambda: getattr(pure, name)(variant))
        assert outcome(lambda: compiled.scan_close_events(variant, properties=False)) == outcome(
            lambda: pure.scan_close_events(variant, properties=False)
        )
        offset = min(9, len(variant))  # inside the batch of a service-82 message
        assert outcome(lambda: compiled.decode_event_batch(variant, offset)) == outcome(
            lambda: pure.decode_event_batch(variant, offset)
        )


@given(message=MESSAGES, data=st.data(), strict=st.booleans())
def test_close_event_columns_fail_where_the_scan_fails(diffusion_both, message, data, strict):
    # Damaged messages, and arbitrary bytes behind a service-82 header: both
    # backends' columns hold the scan's events, or raise just what the scan raises.
    compiled, pure = diffusion_both
    arbitrary = b"\x00\x52\x01\x01" + data.draw(st.binary(max_size=60))
    for variant in damaged(pure.encode_message(message), data) + [arbitrary]:
        scanned = outcome(lambda: pure.scan_close_events(variant, strict=strict))
        read = outcome(lambda: _columns_read(compiled, variant, strict=strict))
        assert read == outcome(lambda: _columns_read(pure, variant, strict=strict))
        assert (read[0], read[1][0]) == scanned if read[0] == "ok" else read == scanned


def test_every_truncation_of_a_message_is_incomplete(diffusion):
    batch = EventBatch(1, [CloseEvent(SessionId(1, 2), 11, {"$Principal": "alice", "k": "é"})])
    encoded = diffusion.encode_message(ServiceRequest(82, 0, batch))
    for cut in range(len(encoded)):
        with pytest.raises(IncompleteError):
            diffusion.decode_message(encoded[:cut])


def test_compressed_service_message_is_inflated(diffusion):
    batch = EventBatch(1, [CloseEvent(SessionId(1, 2), 4)])
    plain = diffusion.encode_message(ServiceRequest(82, 5, batch))
    flagged = bytes((0x80,)) + zlib.compress(plain[1:])
    assert diffusion.decode_message(flagged) == ServiceRequest(82, 5, batch, compressed=True)


def test_zlib_bomb_is_refused(diffusion):
    bomb = bytes((0x84,)) + zlib.compress(b"\x00" * 2_000_000)
    with pytest.raises(MalformedError, match="limit") as caught:
        diffusion.decode_message(bomb, max_inflated=1_000_000)
    assert caught.value.offset == 1


def test_errors_inside_an_inflated_body_point_at_the_body(diffusion):
    broken = bytes((0x80,)) + zlib.compress(b"\x52\x00\x01\x01")
    with pytest.raises(MalformedError, match="in the inflated body") as caught:
        diffusion.decode_message(broken)
    assert caught.value.offset == 1


def test_abort_and_close_request(diffusion):
    assert diffusion.decode_message(b"\x1c") == AbortNotification()
    assert diffusion.decode_message(b"\x1d") == CloseRequest()
    assert AbortNotification().close_reason.name == "CLOSED_BY_SERVER"
    assert CloseRequest().close_reason.name == "CLOSED_BY_CLIENT"
    with pytest.raises(MalformedError, match="after the end"):
        diffusion.decode_message(b"\x1c\x00")


def test_unknown_message_type_and_encoding_are_malformed(diffusion):
    with pytest.raises(MalformedError, match="unknown message type 35"):
        diffusion.decode_message(b"\x23\x1d\x74")
    with pytest.raises(MalformedError, match="encoding bits 0x40"):
        diffusion.decode_message(b"\x40")


def test_published_numbering_on_request(diffusion):
    event = CloseEvent(SessionId(1, 2), ClientCloseReason.SESSION_TAKEN_OVER)
    wire = diffusion.encode_event(event)
    published = diffusion.encode_event(event, numbering=ReasonNumbering.PUBLISHED)
    assert wire[3] == 15 and published[3] == 12
    assert diffusion.decode_event(published, numbering=ReasonNumbering.PUBLISHED)[0] == event
    with pytest.raises(EncodeError):
        diffusion.encode_event(CloseEvent(SessionId(1, 2), ClientCloseReason.EXPIRED), numbering=ReasonNumbering.PUBLISHED)


CONNECTION_OK = bytes.fromhex("231d64") + bytes.fromhex("8000cafe00000001" "0000000000001002") + b"T" * 24 + (5000).to_bytes(8, "big") + (1048576).to_bytes(4, "big")


def test_connection_responses(diffusion):
    response, end = diffusion.decode_connection_response(CONNECTION_OK)
    assert end == 55 and response.close_reason is None
    assert response == ConnectionResponse(29, 100, SessionId.parse("8000cafe00000001-0000000000001002"), b"T" * 24, 5000, 1048576)
    assert diffusion.encode_connection_response(response) == CONNECTION_OK
    rejected, end = diffusion.decode_connection_response(bytes.fromhex("231d74"))
    assert end == 3 and rejected.close_reason.name == "ACCESS_DENIED"
    with pytest.raises(IncompleteError):
        diffusion.decode_connection_response(CONNECTION_OK[:54])
    with pytest.raises(MalformedError, match="protocol byte"):
        diffusion.decode_connection_response(b"\x24\x1d\x64")


def run_cli(*argv, stdin=""):
    out = io.StringIO()
    status = cli.main(list(argv), out=out, stdin=io.StringIO(stdin))
    return status, [json.loads(line) if line.startswith("{") else line for line in out.getvalue().splitlines()]


def test_cli_decode_goes_on_after_a_bad_input():
    status, lines = run_cli("decode", "--as", "int32", "7f", "80", "zz", "ffffffff0f")
    assert status == 1
    assert lines[0] == {"value": 127}
    assert lines[1] == {"class": "IncompleteError", "message": "incomplete Int32: the input ends before it does", "offset": 0}
    assert lines[2]["class"] == "ValueError" and lines[2]["offset"] is None
    assert lines[3] == {"value": -1}


def test_cli_decode_reads_stdin_and_refuses_trailing_bytes():
    status, lines = run_cli("decode", "--as", "session-id", "-", stdin="0102\n010203\n")
    assert status == 1
    assert lines[0]["session_id"]["string"] == "0000000000000001-0000000000000002"
    assert lines[1] == {"class": "MalformedError", "message": "1 bytes after the end of the value", "offset": 2}


def test_cli_encode_is_the_inverse_of_decode():
    hexed = "00520001010102020b010a245072696e636970616c05616c696365"
    _, (decoded,) = run_cli("decode", "--as", "message", hexed)
    status, lines = run_cli("encode", "--as", "message", json.dumps(decoded), '{"bad": 1}')
    assert status == 1 and lines[0] == hexed and lines[1]["class"] == "KeyError"


def test_cli_reasons_table_lists_every_reason():
    status, lines = run_cli("reasons", "--format", "jsonl")
    assert status == 0 and [row["name"] for row in lines] == [reason.name for reason in ClientCloseReason]


def test_numbering_by_name_and_bad_numbering(diffusion):
    event = CloseEvent(SessionId(1, 2), ClientCloseReason.FAILED_OVER)
    published = diffusion.encode_event(event, numbering="published")
    assert diffusion.decode_event(published, numbering="published")[0] == event
    with pytest.raises(ValueError):
        diffusion.decode_event(published, numbering="other")
    with pytest.raises(ValueError):
        diffusion.encode_event(event, numbering="other")
