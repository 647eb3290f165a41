"""Regressions found by the differential fuzzers (fuzz/, issue 8): one test per fix.

Each test names the harness that found the input and states the contract it
broke; the inputs are the minimal reproducers, so the tests need neither
atheris nor the fuzz/ directory.
"""

from __future__ import annotations

import io
from types import ModuleType
from typing import Any, Callable, Tuple

import pytest

from closecodec.capture.records import CloseRecordReader
from closecodec.errors import DecodeError, WebSocketFrameError

from helpers import A4, ACK, B4, PSH, SYN, ether, ipv4, pcap_file, tcp


def feed_all(make: Callable[[], Any], *chunks: bytes) -> Tuple[Any, Any]:
    """Feed the chunks until one raises; the stream and the error's (class, message, offset)."""
    target = make()
    for chunk in chunks:
        try:
            target.feed(chunk)
        except DecodeError as error:
            return target, (type(error), str(error), error.offset)
    return target, None


# -- ws_stream / diffusion_stream: `buffered` after a header that fails ----------------
# The compiled WebSocketStream counted the bytes of a header gathered across chunks as
# buffered even when that header was invalid; the pure one did not (it keeps what it
# held before the failing chunk). Fixed in websocket/_c.pyx (WebSocketStream.process).


@pytest.mark.parametrize(
    "chunks, message, offset, buffered",
    [
        # FIN+RSV1+TEXT, then its second byte: RSV1 without an extension (found by ws_stream).
        ((b"\xc1", b"\x1c"), "RSV bits 0x4 are set and no negotiated extension allows them", 0, 1),
        # A CLOSE whose 64-bit length is cut short: over 125 bytes for a control frame,
        # seen before the rest of the header arrives (found by diffusion_stream).
        ((b"\x88\xff\x4e\x91\x4b\xf3\x4d\x79",), "control frame payload longer than 125 bytes", 1, 0),
        ((b"\x82", b"\x01\x00\x88", b"\xff\x4e\x91"), "control frame payload longer than 125 bytes", 4, 1),
    ],
    ids=["rsv1-split", "close-length-cut", "close-length-split"],
)
def test_a_failing_header_leaves_buffered_as_it_was(websocket: ModuleType, chunks: Tuple[bytes, ...], message: str,
                                                    offset: int, buffered: int) -> None:
    target, error = feed_all(websocket.WebSocketStream, *chunks)
    assert error == (WebSocketFrameError, f"{message} at byte {offset}", offset)
    assert target.buffered == buffered


def test_a_failing_header_in_a_diffusion_stream(diffusion: ModuleType) -> None:
    # The diffusion_stream reproducer: a masked CLOSE_REQUEST message, then the cut CLOSE header.
    data = bytes.fromhex("82812b1d050436" "88ff4e914bf34d79")
    target = diffusion.DiffusionStream(connection_response=False)
    values = target.feed(data, offsets=True)
    assert [(end, type(value).__name__) for end, value in values] == [(7, "CloseRequest")]
    assert isinstance(target.error, WebSocketFrameError) and target.error.offset == 8
    assert target.buffered == 0


# -- closes: an HTTP status with a Latin-1 superscript digit -------------------------
# CloseRecordReader decodes HTTP heads as Latin-1 and took the status code when
# str.isdigit() said so, which is true for "¹²³" (bytes B9, B2, B3), and int() then
# raised ValueError out of the reader. Fixed in capture/records.py (CloseRecordReader._upgrade):
# such a status is an HTTP error, counted, and the connection is ignored.


def _upgrade_capture(status: bytes) -> bytes:
    request = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    response = b"HTTP/1.1 " + status + b" Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    packets = [
        ipv4(tcp(50000, 80, 0, flags=SYN), A4, B4),
        ipv4(tcp(80, 50000, 0, 1, flags=SYN | ACK), B4, A4),
        ipv4(tcp(50000, 80, 1, 1, flags=ACK | PSH, payload=request), A4, B4),
        ipv4(tcp(80, 50000, 1, 1 + len(request), flags=ACK | PSH, payload=response), B4, A4),
    ]
    return pcap_file([(i * 1000, ether(p), None) for i, p in enumerate(packets)])


@pytest.mark.parametrize("status", [b"10\xb9", b"\xb2\xb3\xb9", b"1O1"])
def test_a_non_ascii_digit_http_status_is_an_http_error(side: str, status: bytes) -> None:
    reader = CloseRecordReader(io.BytesIO(_upgrade_capture(status)))
    records = list(reader)
    assert reader.stats["http_errors"] == 1
    assert [record.kind for record in records] == []


def test_an_ascii_http_status_still_decodes(side: str) -> None:
    records = list(CloseRecordReader(io.BytesIO(_upgrade_capture(b"403"))))
    assert [(record.kind, record.code) for record in records] == [("ws_rejected", 403)]
