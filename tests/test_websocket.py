"""WebSocket frames (RFC 6455 §5.2, §5.5.1, §7.4) and the HTTP upgrade head, run once per backend."""

from __future__ import annotations

import array
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closecodec import cli
from closecodec.errors import EncodeError, IncompleteError, WebSocketFrameError
from closecodec.frames import WebSocketClose, WebSocketFrame, WebSocketHeader, WebSocketOpcode
from closecodec.reasons import WebSocketCloseCode, websocket_close_code_allowed_on_wire

from helpers import capture_frames

KEY = b"\x11\x22\x33\x44"

WS_CAPTURE = capture_frames("websocket")


def test_spec_example(websocket):
    # RFC 6455 §5.2, §5.3, §5.5.1: close 1000 "bye", masked with 11 22 33 44, and unmasked.
    masked = bytes.fromhex("88851122334412ca513d74")
    assert websocket.decode_ws_frame(masked) == (WebSocketClose(1000, "bye", KEY), 11)
    assert websocket.encode_ws_frame(WebSocketClose(1000, "bye", KEY)) == masked
    assert websocket.encode_ws_frame(WebSocketClose(1000, "bye")).hex() == "880503e8627965"


@pytest.mark.parametrize("row", WS_CAPTURE, ids=lambda row: f"{row['capture']}:{row['frame']}")
def test_capture_close_frames_decode_as_tshark_did(websocket, row):
    data = bytes.fromhex(row["tcp_payload_hex"])
    close, end = websocket.decode_ws_frame(data)
    assert end == len(data)
    assert type(close) is WebSocketClose
    assert close.fin is row["ws_fin"] and close.opcode == row["ws_opcode"] == 8
    assert close.masked is row["ws_masked"]
    assert (close.mask_key.hex() if close.masked else None) == row["ws_masking_key"]
    assert close.length == row["ws_payload_length"]
    assert (None if close.code is None else int(close.code)) == row["ws_status_code"]
    # tshark shows no reason both for an empty body and for a bare code.
    assert (close.reason or None) == row["ws_reason"]
    assert websocket.encode_ws_frame(close) == data


def test_capture_covers_what_it_should():
    codes = {row["ws_status_code"] for row in WS_CAPTURE}
    assert {None, 1000, 1001, 1007, 1014, 3000, 4999} <= codes
    assert {row["ws_masked"] for row in WS_CAPTURE} == {True, False}
    assert max(row["ws_payload_length"] for row in WS_CAPTURE) == 125


def test_any_buffer_and_offset(websocket):
    frame = bytes.fromhex("88851122334412ca513d74")
    expected = WebSocketClose(1000, "bye", KEY)
    for buf in (bytearray(frame), memoryview(frame), array.array("B", frame)):
        assert websocket.decode_ws_frame(buf) == (expected, 11)
    assert websocket.decode_ws_frame(b"xyz" + frame + b"rest", 3) == (expected, 14)
    with pytest.raises(ValueError, match="outside the buffer"):
        websocket.decode_ws_frame(frame, 12)
    with pytest.raises(TypeError):
        websocket.decode_ws_frame("88")


def test_empty_close_means_no_status(websocket):
    close, _ = websocket.decode_ws_frame(b"\x88\x00")
    assert close.code is None and close.reason == "" and close.effective_code == 1005
    assert websocket.encode_ws_frame(WebSocketClose()) == b"\x88\x00"


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4321, 4999]
)
def test_codes_allowed_on_the_wire_round_trip(websocket, code):
    data = websocket.encode_ws_frame(WebSocketClose(code, "r"))
    close, _ = websocket.decode_ws_frame(data)
    assert close.code == code and type(close.code) is WebSocketCloseCode
    assert close.code.known == (code <= 1015)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_codes_never_on_the_wire(websocket, code):
    with pytest.raises(WebSocketFrameError) as caught:
        websocket.decode_ws_frame(b"\x88\x02" + code.to_bytes(2, "big"))
    assert caught.value.close_code == 1002 and caught.value.offset == 2
    with pytest.raises(EncodeError, match="may not be sent"):
        websocket.encode_ws_frame(WebSocketClose(code))


@given(st.integers(0, 65535))
def test_decode_and_encode_follow_the_registry(websocket, code):
    allowed = websocket_close_code_allowed_on_wire(code)
    data = b"\x88\x02" + code.to_bytes(2, "big")
    if allowed:
        assert websocket.decode_ws_frame(data)[0].code == code
        assert websocket.encode_ws_frame(WebSocketClose(code)) == data
    else:
        with pytest.raises(WebSocketFrameError):
            websocket.decode_ws_frame(data)


@pytest.mark.parametrize(
    "hex_frame, offset, close_code, text",
    [
        ("880103", 2, 1002, "close payload of 1 byte"),
        ("880403e8c328", 4, 1007, "invalid UTF-8"),
        ("880503e8eda080", 4, 1007, "invalid UTF-8"),  # an encoded surrogate
        ("087e", 0, 1002, "fragmented"),
        ("c800", 0, 1002, "control frame"),
        ("c100", 0, 1002, "no negotiated extension"),
        ("8300", 0, 1002, "reserved opcode 3"),
        ("8b00", 0, 1002, "reserved opcode 11"),
        ("887e", 1, 1002, "longer than 125"),
        ("897f", 1, 1002, "longer than 125"),
        ("827e007d", 2, 1002, "shortest form"),
        ("827f000000000000ffff", 2, 1002, "shortest form"),
        ("827f80", 2, 1002, "most significant bit"),
    ],
)
def test_invalid_frames_carry_the_answer_code(websocket, hex_frame, offset, close_code, text):
    with pytest.raises(WebSocketFrameError, match=text) as caught:
        websocket.decode_ws_frame(bytes.fromhex(hex_frame))
    assert (caught.value.offset, caught.value.close_code) == (offset, close_code)
    assert f"at byte {offset}" in str(caught.value)


def test_reason_length_limit(websocket):
    reason = "x" * 123
    data = websocket.encode_ws_frame(WebSocketClose(1000, reason, KEY))
    assert websocket.decode_ws_frame(data)[0].reason == reason
    with pytest.raises(EncodeError, match="123-byte limit"):
        websocket.encode_ws_frame(WebSocketClose(1000, "x" * 124))
    with pytest.raises(EncodeError, match="123-byte limit"):
        websocket.encode_ws_frame(WebSocketClose(1000, "é" * 62))
    with pytest.raises(EncodeError, match="lone surrogate"):
        websocket.encode_ws_frame(WebSocketClose(1000, "\udc80"))
    # 124 bytes of reason make a 126-byte control frame: refused by its length.
    with pytest.raises(WebSocketFrameError, match="longer than 125") as caught:
        websocket.decode_ws_frame(b"\x88\x7e\x00\x7e\x03\xe8" + b"x" * 124)
    assert caught.value.close_code == 1002


def test_every_prefix_is_incomplete_at_the_frame_start(websocket):
    data = b"\x00\x00" + websocket.encode_ws_frame(WebSocketFrame(WebSocketOpcode.BINARY, bytes(300), mask_key=KEY))
    for end in range(2, len(data)):
        with pytest.raises(IncompleteError) as caught:
            websocket.decode_ws_frame(data[:end], 2)
        assert caught.value.offset == 2
        assert isinstance(caught.value, EOFError)


def test_large_length_fails_at_once_without_allocating(websocket):
    huge = b"\x82\x7f" + (2**62).to_bytes(8, "big")
    with pytest.raises(WebSocketFrameError, match="over the 16777216-byte limit") as caught:
        websocket.decode_ws_frame(huge)
    assert (caught.value.close_code, caught.value.offset) == (1009, 2)
    with pytest.raises(IncompleteError):
        websocket.decode_ws_frame(huge, max_payload=None)
    with pytest.raises(WebSocketFrameError, match="over the 10-byte limit") as caught:
        websocket.decode_ws_frame(b"\x82\x0b" + bytes(11), max_payload=10)
    assert caught.value.offset == 1
    header, at = websocket.decode_ws_header(huge)
    assert (header.length, at) == (2**62, 10)


def test_expect_masked_states_the_side(websocket):
    masked = websocket.encode_ws_frame(WebSocketClose(1000, "", KEY))
    plain = websocket.encode_ws_frame(WebSocketClose(1000))
    assert websocket.decode_ws_frame(masked, expect_masked=True)[0].masked
    assert not websocket.decode_ws_frame(plain, expect_masked=False)[0].masked
    for data, side in ((plain, True), (masked, False)):
        with pytest.raises(WebSocketFrameError, match="mask") as caught:
            websocket.decode_ws_frame(data, expect_masked=side)
        assert (caught.value.offset, caught.value.close_code) == (1, 1002)


def test_non_minimal_length_on_request(websocket):
    data = b"\x82\x7e\x00\x03abc"
    frame, end = websocket.decode_ws_frame(data, minimal_length=False)
    assert (frame.payload, end) == (b"abc", 7)
    assert websocket.encode_ws_frame(frame) == b"\x82\x03abc"


def test_rsv_bits_on_request(websocket):
    frame, _ = websocket.decode_ws_frame(b"\xc1\x01x", rsv_allowed=4)
    assert (frame.rsv, frame.opcode, frame.payload) == (4, WebSocketOpcode.TEXT, b"x")
    assert websocket.encode_ws_frame(frame) == b"\xc1\x01x"
    with pytest.raises(WebSocketFrameError, match="control frame"):
        websocket.decode_ws_frame(b"\xc8\x00", rsv_allowed=4)
    with pytest.raises(ValueError):
        websocket.decode_ws_frame(b"\x88\x00", rsv_allowed=8)


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 70000])
def test_data_frames_round_trip_with_every_length_form(websocket, length):
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    for mask_key in (None, KEY):
        frame = WebSocketFrame(WebSocketOpcode.BINARY, payload, fin=False, mask_key=mask_key)
        data = websocket.encode_ws_frame(frame)
        assert websocket.decode_ws_frame(data) == (frame, len(data))
        header, at = websocket.decode_ws_header(data)
        assert header == WebSocketHeader(False, 0, 2, mask_key, length)
        assert at == len(data) - length


def test_control_frames_refused_by_the_encoder(websocket):
    with pytest.raises(EncodeError, match="fragmented"):
        websocket.encode_ws_frame(WebSocketFrame(WebSocketOpcode.PING, b"", fin=False))
    with pytest.raises(EncodeError, match="125-byte limit"):
        websocket.encode_ws_frame(WebSocketFrame(WebSocketOpcode.PONG, bytes(126)))
    with pytest.raises(EncodeError, match="RSV"):
        websocket.encode_ws_frame(WebSocketFrame(WebSocketOpcode.PING, b"", rsv=4))
    with pytest.raises(EncodeError, match="not str"):
        websocket.encode_ws_frame("close")


def test_unmask(websocket):
    data = bytes(range(256)) * 5
    once = websocket.unmask_ws_payload(data, KEY)
    assert once == bytes(b ^ KEY[i % 4] for i, b in enumerate(data))
    assert websocket.unmask_ws_payload(once, KEY) == data
    # In pieces, with the phase carried over.
    assert websocket.unmask_ws_payload(data[:7], KEY) + websocket.unmask_ws_payload(data[7:], KEY, 3) == once
    assert websocket.unmask_ws_payload(b"", KEY) == b""
    with pytest.raises(TypeError):
        websocket.unmask_ws_payload(data, b"abc")
    with pytest.raises(ValueError):
        websocket.unmask_ws_payload(data, KEY, 4)


def test_frame_values():
    close = WebSocketClose(1001, "going away", KEY)
    assert close == WebSocketClose(WebSocketCloseCode.GOING_AWAY, "going away", KEY)
    assert close != WebSocketClose(1001, "going away")
    assert hash(close) == hash(WebSocketClose(1001, "going away", KEY))
    assert "GOING_AWAY" in repr(close)
    assert (close.fin, close.rsv, close.opcode, close.length) == (True, 0, WebSocketOpcode.CLOSE, 12)
    with pytest.raises(AttributeError):
        close.code = 1000
    with pytest.raises(ValueError):
        WebSocketClose(None, "reason without a code")
    with pytest.raises(ValueError):
        WebSocketClose(70000)
    with pytest.raises(TypeError):
        WebSocketClose(1000, "", b"abc")
    with pytest.raises(ValueError):
        WebSocketFrame(8, b"\x03\xe8")
    with pytest.raises(ValueError):
        WebSocketFrame(3)


def run_cli(*argv):
    out = io.StringIO()
    status = cli.main(list(argv), out=out)
    return status, [json.loads(line) if line[0] == "{" else line for line in out.getvalue().splitlines()]


def test_cli_decode_and_encode():
    status, lines = run_cli("decode", "--as", "ws-frame", "88851122334412ca513d74", "880303e8ff", "8802")
    assert status == 1
    assert lines[0] == {
        "fin": True, "rsv": 0, "opcode": 8, "opcode_name": "CLOSE", "masked": True, "mask_key": "11223344",
        "length": 5, "code": 1000, "name": "NORMAL_CLOSURE", "reason": "bye",
    }
    assert lines[1] == {
        "class": "WebSocketFrameError", "message": "invalid UTF-8 in the close reason", "offset": 4, "close_code": 1007,
    }
    assert lines[2]["class"] == "IncompleteError" and lines[2]["close_code"] is None
    status, lines = run_cli("encode", "--as", "ws-frame", json.dumps(run_cli("decode", "--as", "ws-frame", "8800")[1][0]))
    assert (status, lines) == (0, ["8800"])
    status, lines = run_cli("encode", "--as", "ws-frame", '{"code": 1005}')
    assert status == 1 and lines[0]["class"] == "EncodeError"


# -- HTTP heads (WebSocket upgrades) ------------------------------------------------------


def test_http_head_fields(websocket):
    head = (b"GET /a?b HTTP/1.1\r\nHost: x\r\n  Sec-WebSocket-Protocol :  mqtt \r\nno colon here\r\n"
            b"SEC-WEBSOCKET-PROTOCOL:\x85v2\xa0\r\nX-\xc0\xd7\xde: \xc0 \r\nUpgrade: a\rb\r\n\r\nafter")
    line, headers, size = websocket.parse_http_head(head)
    assert line == "GET /a?b HTTP/1.1" and size == head.index(b"\r\n\r\n") + 4
    assert headers == {"host": "x", "sec-websocket-protocol": "mqtt, v2", "x-\xe0\xd7\xfe": "\xc0", "upgrade": "a\rb"}
    assert websocket.parse_http_head(bytearray(head)) == websocket.parse_http_head(memoryview(head)) == (line, headers, size)


@pytest.mark.parametrize("data", [b"", b"GET / HTTP/1.1\r\nHost: x\r\n", b"GET / HTTP/1.1\r\n\r", b"\r\n\r"])
def test_http_head_incomplete(websocket, data):
    assert websocket.parse_http_head(data) is None


def test_http_head_needs_bytes(websocket):
    with pytest.raises(TypeError):
        websocket.parse_http_head("GET / HTTP/1.1\r\n\r\n")


HEAD_BYTES = st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b":", b" ", b"\t", b"\x85", b"\xa0", b"\x1c", b"A",
                                       b"a", b"\xc0", b"\xd7", b"\xe0", b"Upgrade", b"x"]), max_size=40).map(b"".join)


def test_http_head_keeps_only_the_names_asked_for(websocket):
    head = b"HTTP/1.1 101 x\r\nUpgrade: websocket\r\n \xc0B : 1\r\nX: 2\r\n\xe0b: 3\r\nUPGRADE : again\r\n\r\n"
    line, headers, size = websocket.parse_http_head(head)
    assert websocket.parse_http_head(head, (b"upgrade", b"\xe0b", b"none")) == (
        line, {"upgrade": "websocket, again", "\xe0b": "1, 3"}, size)
    assert websocket.parse_http_head(head, ()) == (line, {}, size)
    assert websocket.parse_http_head(head[:-2], (b"upgrade",)) is None


@pytest.mark.parametrize("names", [[b"upgrade"], ("upgrade",), b"upgrade"])
def test_http_head_names_are_a_tuple_of_bytes(websocket, names):
    with pytest.raises(TypeError):
        websocket.parse_http_head(b"GET / HTTP/1.1\r\n\r\n", names)


@given(data=st.one_of(st.binary(max_size=80), HEAD_BYTES),
       names=st.none() | st.lists(st.sampled_from([b"upgrade", b"a", b"x", b"\xe0", b"", b"upgradex"]),
                                  max_size=3).map(tuple))
def test_backends_agree_on_http_heads(websocket_both, data, names):
    compiled, pure = websocket_both
    assert compiled.parse_http_head(data, names) == pure.parse_http_head(data, names)
