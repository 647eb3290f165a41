"""The examples run, by themselves, and decode what they should."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from closecodec import (
    AbortNotification,
    ClientCloseReason,
    ConnectionResponse,
    EventBatch,
    ResponseCode,
    ServiceRequest,
    WebSocketClose,
    WebSocketFrame,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "close_stack.py"
needs_example = pytest.mark.skipif(not EXAMPLE.is_file(), reason="examples/ is not beside the tests (installed-package run)")


@pytest.fixture(scope="module")
def close_stack():
    pytest.importorskip("websockets.asyncio.server", reason="the example needs websockets >= 13 (test extra)")
    spec = importlib.util.spec_from_file_location("close_stack", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_example
def test_close_stack_client_decodes_the_server_closes(close_stack) -> None:
    results = asyncio.run(asyncio.wait_for(close_stack.main(), 30))
    alice = results["/alice"]
    assert [type(value) for value in alice] == [
        ConnectionResponse, ServiceRequest, WebSocketFrame, AbortNotification, WebSocketClose
    ]
    assert alice[0].code == ResponseCode.OK
    batch = alice[1].payload
    assert type(batch) is EventBatch
    assert [event.reason for event in batch.events] == [
        ClientCloseReason.CLOSED_BY_CONTROLLER, ClientCloseReason.SESSION_TAKEN_OVER
    ]
    assert alice[2] == WebSocketFrame(9, b"still there?")
    assert alice[4] == WebSocketClose(1000, "session closed")
    mallory = results["/mallory"]
    assert mallory[0] == ConnectionResponse(29, ResponseCode.AUTHENTICATION_FAILED)
    assert mallory[1] == WebSocketClose(1008, "authentication failed")


@needs_example
def test_close_stack_runs_as_a_script(close_stack) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=True,
        env=dict(os.environ),
    ).stdout
    assert "SESSION_TAKEN_OVER (carol)" in out
    assert "ABORT_NOTIFICATION: the client reports CLOSED_BY_SERVER" in out
    assert "handshake refused: AUTHENTICATION_FAILED, the client reports ACCESS_DENIED" in out
    assert "WebSocket close 1008 (policy violation): 'authentication failed'" in out
