"""A protocol stack in miniature: a server ends Diffusion sessions, a client decodes why.

    python examples/close_stack.py

The server (websockets, on 127.0.0.1 and an ephemeral port) plays a Diffusion server.
To the client ``/alice`` it sends the connection response, a session-events message
carrying the close events of two other sessions (as a control session receives them,
sent as one WebSocket message in two frames), a ping, an ABORT_NOTIFICATION, and then
closes the WebSocket with 1000. The client ``/mallory`` is refused in the connection
response (AUTHENTICATION_FAILED) and closed with 1008.

The client speaks raw TCP: it does the HTTP upgrade itself and feeds every byte it
receives, in whatever chunks arrive (7 bytes at most here, so frames are split), to a
``closecodec.DiffusionStream``, then answers the close frame as RFC 6455 §5.5.1 asks.
Every wait is bounded; the script stops by itself.
"""

from __future__ import annotations

import asyncio
import base64
import os
from typing import Any, Dict, List

from websockets.asyncio.server import serve

import closecodec
from closecodec import (
    AbortNotification,
    ClientCloseReason,
    CloseEvent,
    ConnectionResponse,
    EventBatch,
    ResponseCode,
    ServiceRequest,
    SessionId,
    WebSocketClose,
    WebSocketFrame,
)

TIMEOUT = 5.0  # seconds, for every network wait
SESSION = SessionId(0x5EED, 1)


async def diffusion_server(websocket: Any) -> None:
    """End the session: close events, an abort, a WebSocket close; or refuse it."""
    if websocket.request.path == "/mallory":
        await websocket.send(closecodec.encode_connection_response(
            ConnectionResponse(29, ResponseCode.AUTHENTICATION_FAILED)))
        await websocket.close(1008, "authentication failed")
        return
    await websocket.send(closecodec.encode_connection_response(
        ConnectionResponse(29, ResponseCode.OK, SESSION, b"0123456789abcdef01234567", 90_000, 10_000_000)))
    batch = EventBatch(1, [
        CloseEvent(SessionId(0x5EED, 2), ClientCloseReason.CLOSED_BY_CONTROLLER, {"$Principal": "bob"}),
        CloseEvent(SessionId(0x5EED, 3), ClientCloseReason.SESSION_TAKEN_OVER, {"$Principal": "carol"}),
    ])
    message = closecodec.encode_message(ServiceRequest(82, 0, batch))
    await websocket.send([message[:12], message[12:]])  # one message, two frames
    await websocket.ping(b"still there?")
    await websocket.send(closecodec.encode_message(AbortNotification()))
    await websocket.close(1000, "session closed")


async def client(port: int, path: str) -> List[Any]:
    """Upgrade a raw TCP connection and decode everything the server sends."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"upgrade refused: {head!r}")
        stream = closecodec.DiffusionStream(expect_masked=False)  # a client's view: server frames are unmasked
        decoded: List[Any] = []
        while not stream.closed:
            chunk = await asyncio.wait_for(reader.read(7), TIMEOUT)
            if not chunk:
                break  # TCP closed with no close frame: 1006
            for value in stream.feed(chunk):
                decoded.append(value)
                if type(value) is WebSocketFrame and value.opcode == 9:  # answer pings (RFC 6455 §5.5.2)
                    writer.write(closecodec.encode_ws_frame(WebSocketFrame(10, value.payload, mask_key=os.urandom(4))))
        if stream.closed:  # echo the close, masked as a client must (§5.1, §5.5.1)
            writer.write(closecodec.encode_ws_frame(WebSocketClose(decoded[-1].code, "", os.urandom(4))))
            await writer.drain()
            await asyncio.wait_for(reader.read(), TIMEOUT)  # then the server closes TCP
        return decoded
    finally:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), TIMEOUT)


def describe(value: Any) -> str:
    """One line per decoded value."""
    if isinstance(value, ConnectionResponse):
        if value.code.is_success:
            return f"connected as session {value.session_id}"
        return f"handshake refused: {value.code.name}, the client reports {value.close_reason.name}"
    if isinstance(value, ServiceRequest) and isinstance(value.payload, EventBatch):
        return "; ".join(
            f"session {event.session_id} closed: {event.reason.name} ({dict(event.properties)['$Principal']})"
            for event in value.payload.events if isinstance(event, CloseEvent)
        )
    if isinstance(value, AbortNotification):
        return f"ABORT_NOTIFICATION: the client reports {value.close_reason.name}"
    if isinstance(value, WebSocketClose):
        return f"WebSocket close {value.effective_code}: {value.reason!r}"
    if isinstance(value, WebSocketFrame):
        return f"WebSocket {value.opcode.name} {value.payload!r}"
    return repr(value)


async def main() -> Dict[str, List[Any]]:
    async with serve(diffusion_server, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        results = {}
        for path in ("/alice", "/mallory"):
            results[path] = await asyncio.wait_for(client(port, path), 2 * TIMEOUT)
    return results


if __name__ == "__main__":
    print(f"closecodec {closecodec.__version__}, backend {closecodec.BACKEND}")
    for path, values in asyncio.run(main()).items():
        print(f"client {path}:")
        for value in values:
            print("  " + describe(value))
