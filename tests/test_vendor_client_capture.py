"""What the vendor's JavaScript client reported, against what we decode from the same bytes.

tests/data/diffusion-js-client-handshake-abort.pcap.truth.jsonl: every Diffusion
message of a real client session (handshake rejection, server abort, client
close) with the client's own report of why it closed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from closecodec import AbortNotification, CloseRequest, SessionId

TRUTH = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "diffusion-js-client-handshake-abort.pcap.truth.jsonl").open()
]
RESPONSES = [t for t in TRUTH if t["kind"] == "connection_response"]
MESSAGES = [t for t in TRUTH if t["kind"] == "diffusion_message"]


@pytest.mark.parametrize("truth", RESPONSES, ids=lambda t: f"frame-{t['frame']}")
def test_connection_responses_decode_as_the_client_read_them(diffusion, truth):
    data = bytes.fromhex(truth["message_hex"])
    response, end = diffusion.decode_connection_response(data)
    decoded = truth["decoded"]
    assert end == len(data)
    assert (response.version, int(response.code), response.code.name) == (
        decoded["protocol_version"],
        decoded["response_code"],
        decoded["response_code_name"],
    )
    if response.code.is_success:
        assert response.session_id == SessionId.parse(decoded["session_id"])
        assert response.token.decode("ascii") == decoded["session_token_ascii"]
        assert response.ping_period == decoded["system_ping_period_ms"]
        assert response.max_message_size == decoded["maximum_message_size"]
        assert str(response.session_id) == truth["client_reported"]["session_id"]
        assert response.close_reason is None
    else:
        reported = truth["client_reported"]["close_reason"]
        assert (int(response.close_reason), response.close_reason.name) == (reported["id"], reported["name"])
    assert diffusion.encode_connection_response(response) == data


@pytest.mark.parametrize("truth", MESSAGES, ids=lambda t: f"frame-{t['frame']}")
def test_session_ending_messages_give_the_reason_the_client_reported(diffusion, truth):
    data = bytes.fromhex(truth["message_hex"])
    message = diffusion.decode_message(data)
    assert type(message) in (AbortNotification, CloseRequest)
    assert int(message.close_reason) == truth["client_reported"]["close_reason"]["id"]
    assert message.close_reason.name == truth["client_reported"]["close_reason"]["name"]
    assert diffusion.encode_message(message) == data
