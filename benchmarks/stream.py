"""Streaming decoders: a 10 MB WebSocket stream fed in 1500-byte chunks (issue 6, item 5).

The stream is ~10 MB of sessions (one direction of a WebSocket connection each, about
64 KiB): data messages of 1 KiB to 16 KiB (a few of them fragmented), pings between
them, and a close frame ending each session. Every session is cut into 1500-byte
chunks (an Ethernet MTU's worth) on its own and fed to a fresh stream, as a capture
reader or a protocol stack would: the chunks split frames and headers anywhere.

- ``WebSocketStream`` compiled against pure Python, client-to-server (masked) and
  server-to-client (unmasked), and on frames of exactly 1 KiB (the 500 MB/s target).
- Peers, where installed, doing the same job on the same chunks: wsproto's
  ``FrameProtocol`` (frames, not reassembled messages) and websockets' sans-I/O
  ``Protocol`` (messages reassembled, pings and closes answered).
"""

from __future__ import annotations

import random
from typing import Callable, Dict, List, Optional

from closecodec.websocket import _py as websocket_py
from closecodec.websocket.values import WebSocketClose, WebSocketFrame

from .backends import pair
from .harness import Case

CHUNK = 1500
TOTAL = 10 * 1000 * 1000
SESSION = 64 * 1024


def sessions(masked: bool, sizes: Callable[[random.Random], int], seed: int = 6) -> List[List[bytes]]:
    """~TOTAL bytes of sessions, each a list of CHUNK-byte chunks, and the count of values."""
    rng = random.Random(seed)
    encode = websocket_py.encode_ws_frame
    out: List[List[bytes]] = []
    total = 0
    while total < TOTAL:
        session = bytearray()
        while len(session) < SESSION:
            key = rng.randbytes(4) if masked else None
            payload = rng.randbytes(sizes(rng))
            if rng.random() < 0.1:  # fragmented in two
                cut = len(payload) // 2
                session += encode(WebSocketFrame(2, payload[:cut], fin=False, mask_key=key))
                session += encode(WebSocketFrame(0, payload[cut:], mask_key=key))
            else:
                session += encode(WebSocketFrame(2, payload, mask_key=key))
            if rng.random() < 0.05:
                session += encode(WebSocketFrame(9, b"ping", mask_key=key))
        session += encode(WebSocketClose(1000, "session closed", key))
        out.append([bytes(session[i:i + CHUNK]) for i in range(0, len(session), CHUNK)])
        total += len(session)
    return out


def feed_all(factory: Callable[[], object], data: List[List[bytes]]) -> int:
    count = 0
    for chunks in data:
        stream = factory()
        feed = stream.feed
        for chunk in chunks:
            count += len(feed(chunk))
    return count


def wsproto_all(frame_protocol, client: bool, data: List[List[bytes]]) -> int:
    count = 0
    for chunks in data:
        parser = frame_protocol.FrameProtocol(client=client, extensions=[])
        for chunk in chunks:
            parser.receive_bytes(chunk)
            for _ in parser.received_frames():
                count += 1
    return count


def websockets_all(protocol, side, data: List[List[bytes]]) -> int:
    count = 0
    for chunks in data:
        peer = protocol.Protocol(side, state=protocol.State.OPEN, max_size=None)
        for chunk in chunks:
            peer.receive_data(chunk)
            count += len(peer.events_received())
            peer.data_to_send()
    return count


def peers() -> Dict[str, Optional[object]]:
    found: Dict[str, Optional[object]] = {}
    for name in ("wsproto.frame_protocol", "websockets.protocol"):
        try:
            found[name] = __import__(name, fromlist=["_"])
        except ImportError as error:
            print(f"note: {name} not installed ({error}); pip install '.[bench]'")
            found[name] = None
    return found


def cases() -> List[Case]:
    c, py = pair("websocket")
    found = peers()
    mixed = lambda rng: rng.randint(1024, 16 * 1024)  # noqa: E731
    kib = lambda rng: 1024  # noqa: E731
    result = []
    for title, masked, sizes in (
        ("client-to-server (masked), messages of 1-16 KiB", True, mixed),
        ("server-to-client (unmasked), messages of 1-16 KiB", False, mixed),
        ("client-to-server (masked), messages of exactly 1 KiB", True, kib),
    ):
        data = sessions(masked, sizes)
        nbytes = sum(len(chunk) for chunks in data for chunk in chunks)
        contenders: Dict[str, Callable[[], object]] = {}
        expected = feed_all(py.WebSocketStream, data)
        if c is not None:
            assert feed_all(c.WebSocketStream, data) == expected
            contenders["compiled"] = lambda data=data: feed_all(c.WebSocketStream, data)
        contenders["pure Python"] = lambda data=data: feed_all(py.WebSocketStream, data)
        if found["wsproto.frame_protocol"] is not None:
            contenders["wsproto FrameProtocol"] = lambda data=data, m=masked: wsproto_all(
                found["wsproto.frame_protocol"], not m, data)
        if found["websockets.protocol"] is not None:
            module = found["websockets.protocol"]
            side = module.Side.SERVER if masked else module.Side.CLIENT
            contenders["websockets Protocol"] = lambda data=data, side=side: websockets_all(module, side, data)
        result.append(Case(
            f"WebSocketStream: {nbytes / 1e6:.1f} MB in {CHUNK}-byte chunks, {title}, "
            f"{len(data)} sessions each ending in a close frame",
            contenders, unit="MB", units=max(1, nbytes // 1_000_000), nbytes=nbytes,
            targets=[("compiled", "pure Python", 20)],
            throughput_targets=[("compiled", 500)],
        ))
    return result
