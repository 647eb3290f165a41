"""The shared vectors (tests/data/diffusion-close-frames.json), on each backend.

Valid vectors decode to their ``expected`` value (in the CLI's JSON form) and
re-encode to the same bytes. Invalid and edge vectors give what POLICY says:
our written-down answer, not what the vendor readers did (their verdicts are in
the file as evidence). Each entry: (outcome, error offset or None).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from closecodec.errors import IncompleteError, MalformedError
from closecodec.jsonform import to_json_as

VECTORS = json.loads((Path(__file__).parent / "data" / "diffusion-close-frames.json").read_text())["vectors"]

# Truncations are incomplete at the start of the field that runs past the end.
POLICY = {
    "event-type/127-unknown": (MalformedError, 22),  # no such event type
    "event-type/raw-0x80-0x00-non-minimal-zero": (MalformedError, 22),  # a Byte >= 0x80
    "close-reason/16": ("unknown", 16),  # decodes, reason UNKNOWN keeping 16 (contract 5)
    "close-reason/200-raw-byte-0xc8": (MalformedError, 23),
    "close-reason/200-python-byte-varint-c8-01": (MalformedError, 23),
    "close-reason/255-python-byte-varint-ff-01": (MalformedError, 23),
    "update-type/99-undefined": ("unknown", 99),  # update type UNKNOWN keeping 99
    "update-entry-type/0": (MalformedError, 27),
    "varint/11-continuation-bytes-in-conversation-id": (MalformedError, 9),
    "varint/int64-10th-byte-high-bits": (MalformedError, 9),
    "varint/int32-6-bytes": (MalformedError, 4),
    "varint/int64-11-bytes": (MalformedError, 9),
    "byte/ff-01": (MalformedError, 0),
    "byte/80-80-00": (MalformedError, 0),
    "string/length-exceeds-remaining-last-field": (IncompleteError, 27),
    "string/length-2^31-1": (IncompleteError, 27),
    "utf8/value-ff-invalid-byte": (MalformedError, 28),
    "utf8/value-c0-af-overlong": (MalformedError, 28),
    "utf8/value-e6-97-truncated-sequence": (MalformedError, 28),
    "utf8/key-c3-28": (MalformedError, 26),
    "properties/duplicate-key": ("ok", None),  # both pairs kept, in wire order
    "batch/trailing-byte": ("trailing", 68),  # the batch ends at 68; one byte is left
    "batch/negative-property-count": (MalformedError, 24),
    "batch/empty-input": (IncompleteError, 0),
    "message/compressed-flag-0x80": ("ok", None),  # not a zlib body: read as it is
    "message/type-byte-only": (IncompleteError, 1),
    "message/truncated-in-cid": (IncompleteError, 2),
}
TRUNCATION_FIELD_STARTS = {2: 2, 4: 2, 6: 2, 8: 3, 11: 3, 24: 24, 25: 24, 42: 42}


def decode(diffusion, kind, data):
    """Decode a vector's bytes as its codec says; return (value, end)."""
    if kind == "message":
        return diffusion.decode_message(data), len(data)
    return {
        "event-core": diffusion.decode_event,
        "event-batch": diffusion.decode_event_batch,
        "close-client-request": diffusion.decode_close_client_request,
        "session-id": diffusion.decode_session_id,
        "int32": diffusion.decode_int32,
        "int64": diffusion.decode_int64,
        "byte": diffusion.decode_byte,
        "string": diffusion.decode_string,
    }[kind](data)


def encode(diffusion, kind, value):
    return {
        "message": diffusion.encode_message,
        "event-core": diffusion.encode_event,
        "event-batch": diffusion.encode_event_batch,
        "close-client-request": diffusion.encode_close_client_request,
        "session-id": diffusion.encode_session_id,
        "int32": diffusion.encode_int32,
        "int64": diffusion.encode_int64,
        "byte": diffusion.encode_byte,
        "string": diffusion.encode_string,
    }[kind](value)


@pytest.mark.parametrize("vector", [v for v in VECTORS if v["validity"] == "valid"], ids=lambda v: v["name"])
def test_valid_vector_decodes_and_reencodes(diffusion, vector):
    data = bytes.fromhex(vector["hex"])
    value, end = decode(diffusion, vector["codec"], data)
    assert end == len(data)
    assert to_json_as(vector["codec"], value) == vector["expected"]
    assert encode(diffusion, vector["codec"], value) == data


def test_every_invalid_and_edge_vector_has_a_policy():
    for vector in VECTORS:
        if vector["validity"] != "valid" and not vector["name"].startswith("truncated/"):
            assert vector["name"] in POLICY, vector["name"]


@pytest.mark.parametrize("vector", [v for v in VECTORS if v["validity"] != "valid"], ids=lambda v: v["name"])
def test_invalid_and_edge_vectors_follow_the_policy(diffusion, vector):
    data = bytes.fromhex(vector["hex"])
    name = vector["name"]
    if name.startswith("truncated/"):
        length = len(data)
        offset = TRUNCATION_FIELD_STARTS.get(length, 12 if length < 24 else None)
        with pytest.raises(IncompleteError) as caught:
            decode(diffusion, vector["codec"], data)
        if offset is not None:
            assert caught.value.offset == offset
        assert caught.value.offset <= length
        return
    outcome, detail = POLICY[name]
    if outcome in (MalformedError, IncompleteError):
        with pytest.raises(outcome) as caught:
            decode(diffusion, vector["codec"], data)
        assert type(caught.value) is outcome
        assert caught.value.offset == detail
        return
    value, end = decode(diffusion, vector["codec"], data)
    if outcome == "trailing":
        assert end == detail < len(data)
    else:
        assert end == len(data)
    if outcome == "unknown":
        event = value.events[0]
        unknown = event.reason if hasattr(event, "reason") else event.update_type
        assert unknown.name == "UNKNOWN" and not unknown.known and int(unknown) == detail


def test_strict_mode_refuses_an_unknown_reason(diffusion):
    from closecodec.errors import UnknownValueError

    vector = next(v for v in VECTORS if v["name"] == "close-reason/16")
    with pytest.raises(UnknownValueError) as caught:
        diffusion.decode_event_batch(bytes.fromhex(vector["hex"]), strict=True)
    assert caught.value.offset == 23


def test_duplicate_keys_are_kept_in_wire_order(diffusion):
    vector = next(v for v in VECTORS if v["name"] == "properties/duplicate-key")
    batch, _ = diffusion.decode_event_batch(bytes.fromhex(vector["hex"]))
    assert batch.events[0].properties == (("k", "first"), ("k", "second"))


MESSAGE_AND_BATCH_VECTORS = [v for v in VECTORS if v["validity"] == "valid" and v["codec"] in ("message", "event-batch")]


@pytest.mark.parametrize("vector", MESSAGE_AND_BATCH_VECTORS, ids=lambda v: v["name"])
def test_backends_agree_on_every_truncation_and_corruption(diffusion_both, vector):
    from helpers import outcome

    compiled, pure = diffusion_both
    data = bytes.fromhex(vector["hex"])
    variants = [data[:cut] for cut in range(len(data))]
    for index in range(len(data)):
        for replacement in {0x00, 0x7F, 0x80, 0xFF, data[index] ^ 0x01, data[index] ^ 0x40}:
            variants.append(data[:index] + bytes((replacement,)) + data[index + 1 :])
    decode = "decode_message" if vector["codec"] == "message" else "decode_event_batch"
    for variant in variants:
        assert outcome(lambda: getattr(compiled, decode)(variant)) == outcome(lambda: getattr(pure, decode)(variant))
    for cut in range(len(data)):  # every strict prefix is incomplete
        with pytest.raises(IncompleteError):
            getattr(pure, decode)(data[:cut])
