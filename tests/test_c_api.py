"""The C-level API: another package's Cython module cimports closecodec, builds and runs.

A tiny module is written, cythonized against ``closecodec.get_include()`` and
compiled at test time, as a protocol stack's build would do; it calls the nogil
parsers and the Python-object variants on real frames. The nogil parsers' verdicts
are then checked against the Python-level decoders on arbitrary bytes.
"""

from __future__ import annotations

import importlib.util
import shutil
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import closecodec
from closecodec.websocket import _py as websocket_py
from closecodec.errors import IncompleteError, MalformedError, MqttPacketError, WebSocketFrameError
from closecodec.frames import CloseEvent, MqttDisconnect, MqttPropertyId, SessionId, WebSocketClose

from helpers import LOADED, compiled_missing

OK, INCOMPLETE, MALFORMED, WRONG_TYPE = 0, 1, 2, 3

PROBE = r'''
# cython: language_level=3
from closecodec.buffer._c cimport CLOSECODEC_INCOMPLETE, CLOSECODEC_MALFORMED, CLOSECODEC_OK, CLOSECODEC_WRONG_TYPE
from closecodec.diffusion._c cimport CloseEventResult, close_event_parse, event_from
from closecodec.mqtt._c cimport MqttDisconnectResult, mqtt_disconnect_parse, mqtt_packet_from
from closecodec.websocket._c cimport WebSocketStream, WsCloseResult, ws_close_parse, ws_frame_from

STATUSES = (CLOSECODEC_OK, CLOSECODEC_INCOMPLETE, CLOSECODEC_MALFORMED, CLOSECODEC_WRONG_TYPE)


def ws_close(bytes data, int expect_masked):
    cdef WsCloseResult r
    cdef const unsigned char* p = data
    cdef Py_ssize_t n = len(data)
    cdef int status
    with nogil:
        status = ws_close_parse(p, n, expect_masked, &r)
    return (status, r.size, r.error_offset, r.answer, r.code, r.reason[:r.reason_length],
            r.mask_key[:4] if r.masked else None)


def mqtt_disconnect(bytes data, int version, bint strict):
    cdef MqttDisconnectResult r
    cdef const unsigned char* p = data
    cdef Py_ssize_t n = len(data)
    cdef int status
    with nogil:
        status = mqtt_disconnect_parse(p, n, version, strict, &r)
    reason = data[r.reason_string_at:r.reason_string_at + r.reason_string_length] if r.reason_string_at >= 0 else None
    reference = (data[r.server_reference_at:r.server_reference_at + r.server_reference_length]
                 if r.server_reference_at >= 0 else None)
    expiry = r.session_expiry_interval if r.has_session_expiry else None
    return (status, r.size, r.error_offset, r.answer, r.reason_code, r.version, reason, reference, expiry,
            r.user_properties)


def close_event(bytes data):
    cdef CloseEventResult r
    cdef const unsigned char* p = data
    cdef Py_ssize_t n = len(data)
    cdef int status
    with nogil:
        status = close_event_parse(p, n, &r)
    return status, r.size, r.error_offset, r.server, r.value, r.reason, r.property_count


def frame_value(bytes data, int expect_masked):
    cdef Py_ssize_t end = -1
    value = ws_frame_from(data, len(data), expect_masked, &end)
    return value, end


def packet_value(bytes data, version, bint strict):
    cdef Py_ssize_t end = -1
    value = mqtt_packet_from(data, len(data), version, strict, &end)
    return value, end


def event_value(bytes data):
    cdef Py_ssize_t end = -1
    value = event_from(data, len(data), "wire", False, &end)
    return value, end


def stream_subclass_works(bytes data):
    cdef WebSocketStream stream = WebSocketStream()
    return stream.feed(data)
'''


def compiler_missing() -> str:
    """Why no C compiler can build an extension here, or an empty string."""
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    program = getattr(compiler, "compiler_so", None) or getattr(compiler, "cc", None)
    program = program[0] if isinstance(program, list) else program
    if program and shutil.which(program) is None:
        return f"no C compiler: {program} is not on PATH"
    if not Path(sysconfig.get_paths()["include"], "Python.h").is_file():
        return "no Python.h: the Python development headers are not installed"
    return ""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The cimporting module, built now (skipped only where it cannot be built at all)."""
    missing = compiled_missing()
    if missing:
        pytest.skip(f"the compiled backend is not installed: {missing}")
    try:
        from Cython.Build import cythonize
    except ImportError as error:
        pytest.skip(f"Cython is not installed ({error}); pip install '.[test]'")
    reason = compiler_missing()
    if reason:
        pytest.skip(reason)
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    root = tmp_path_factory.mktemp("cimport")
    source = root / "closecodec_probe.pyx"
    source.write_text(PROBE)
    modules = cythonize(
        [Extension("closecodec_probe", [str(source)])],
        include_path=[closecodec.get_include()],
        build_dir=str(root / "c"),
        quiet=True,
    )
    command = build_ext(Distribution({"ext_modules": modules, "script_name": "setup.py"}))
    command.build_lib = str(root / "lib")
    command.build_temp = str(root / "tmp")
    command.ensure_finalized()
    command.run()
    (built,) = (root / "lib").glob("closecodec_probe*")
    spec = importlib.util.spec_from_file_location("closecodec_probe", built)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_get_include_holds_the_pxd_files() -> None:
    include = Path(closecodec.get_include())
    for name in ("buffer/_c.pxd", "diffusion/_c.pxd", "websocket/_c.pxd", "mqtt/_c.pxd", "value.pxd",
                 "diffusion/values.pxd", "websocket/values.pxd", "mqtt/values.pxd", "capture/values.pxd"):
        assert (include / "closecodec" / name).is_file(), name


# -- real frames ------------------------------------------------------------------------------


def test_websocket_close_frame(probe: ModuleType) -> None:
    frame = bytes.fromhex("88851122334412ca513d74")  # close 1000 "bye", masked (RFC 6455 §5.2, §5.3, §5.5.1)
    assert probe.ws_close(frame, -1) == (OK, 11, 0, 0, 1000, b"bye", b"\x11\x22\x33\x44")
    assert probe.ws_close(frame, 0)[:4] == (MALFORMED, 0, 1, 1002)
    assert probe.ws_close(frame[:7], 1)[:2] == (INCOMPLETE, 11)
    assert probe.ws_close(bytes.fromhex("8800"), -1) == (OK, 2, 0, 0, -1, b"", None)
    assert probe.ws_close(bytes.fromhex("880403e8c328"), -1)[:4] == (MALFORMED, 6, 4, 1007)
    assert probe.ws_close(bytes.fromhex("8200"), -1)[0] == WRONG_TYPE
    assert probe.frame_value(frame, 1) == (WebSocketClose(1000, "bye", b"\x11\x22\x33\x44"), 11)
    with pytest.raises(WebSocketFrameError, match="invalid UTF-8 in the close reason at byte 4"):
        probe.frame_value(bytes.fromhex("880403e8c328"), -1)


def test_mqtt_disconnect(probe: ModuleType) -> None:
    packet = bytes.fromhex("e0178e151f0012") + b"Session taken over"  # MQTT 5.0 §3.14.2.1 (reason 0x8E) and §3.14.2.2.3 (Reason String 0x1F)
    assert probe.mqtt_disconnect(packet, 0, False) == (
        OK, 25, 0, 0, 0x8E, 5, b"Session taken over", None, None, 0
    )
    client = bytes.fromhex("e01d041b1f0011") + b"client going away" + bytes.fromhex("2600016b000176")
    assert probe.mqtt_disconnect(client, 5, True)[:6] == (OK, 31, 0, 0, 0x04, 5)
    assert probe.mqtt_disconnect(client, 5, True)[6:] == (b"client going away", None, None, 1)
    assert probe.mqtt_disconnect(b"\xe0\x00", 0, False)[:6] == (OK, 2, 0, 0, 0, 0)
    assert probe.mqtt_disconnect(b"\xe0\x01\x84", 5, True)[:4] == (MALFORMED, 3, 2, 0x82)
    assert probe.mqtt_disconnect(b"\x30\x00", 5, False)[0] == WRONG_TYPE
    assert probe.packet_value(packet, None, False) == (
        MqttDisconnect(0x8E, [(MqttPropertyId.REASON_STRING, "Session taken over")]), 25
    )


def test_close_event(probe: ModuleType) -> None:
    # The worked example's event (docs/diffusion.md §4): session 1/2, CLOSE, reason 11, $Principal=alice.
    event = bytes.fromhex("0102020b010a245072696e636970616c05616c696365")
    assert probe.close_event(event) == (OK, len(event), 0, 1, 2, 11, 1)
    assert probe.close_event(event[:-1])[0] == INCOMPLETE
    assert probe.close_event(bytes.fromhex("010200"))[0] == WRONG_TYPE
    assert probe.event_value(event) == (CloseEvent(SessionId(1, 2), 11, [("$Principal", "alice")]), len(event))


def test_cimported_stream_type(probe: ModuleType) -> None:
    data = websocket_py.encode_ws_frame(WebSocketClose(1000, "bye"))
    assert probe.stream_subclass_works(data) == [WebSocketClose(1000, "bye")]


# -- the nogil parsers agree with the Python-level decoders ---------------------------------------


def _decode(func: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except IncompleteError:
        return INCOMPLETE
    except (MalformedError, ValueError) as error:
        return error


@given(st.sampled_from([0x88, 0x08, 0xC8, 0x89, 0x83, 0x02]), st.binary(max_size=140), st.sampled_from([-1, 0, 1]))
def test_ws_close_parse_agrees(probe: ModuleType, first: int, rest: bytes, expect_masked: int) -> None:
    data = bytes([first]) + rest
    status, size, error_offset, answer, code, reason, mask_key = probe.ws_close(data, expect_masked)
    masked = None if expect_masked < 0 else bool(expect_masked)
    result = _decode(LOADED["websocket", "c"][0].decode_ws_frame, data, expect_masked=masked)
    if len(data) < 2:
        assert status == INCOMPLETE
    elif first & 0x0F in (0, 1, 2, 9, 10):
        assert status == WRONG_TYPE
    elif result == INCOMPLETE:
        assert status == INCOMPLETE
        assert status == INCOMPLETE
    elif isinstance(result, WebSocketFrameError):
        assert (status, error_offset, answer) == (MALFORMED, result.offset, result.close_code)
    else:
        frame, end = result
        assert status == OK and size == end
        assert (None if code == -1 else code, reason.decode(), mask_key) == (frame.code, frame.reason, frame.mask_key)


DISCONNECTS = st.sampled_from([
    bytes.fromhex("e0178e151f0012") + b"Session taken over",
    bytes.fromhex("e01d041b1f0011") + b"client going away" + bytes.fromhex("2600016b000176"),
    bytes.fromhex("e00a9c08110000003c1c0001") + b"h",
    b"\xe0\x00",
    b"\xe0\x01\x8e",
])


@given(st.one_of(DISCONNECTS, st.binary(max_size=40).map(lambda b: b"\xe0" + b)), st.data(),
       st.sampled_from([0, 4, 5]), st.booleans())
def test_mqtt_disconnect_parse_agrees(probe: ModuleType, packet: bytes, data: Any, version: int, strict: bool) -> None:
    damaged = bytearray(packet)
    for _ in range(data.draw(st.integers(0, 2))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    packet = bytes(damaged)
    status, size, error_offset, answer, code, got_version, reason, reference, expiry, users = probe.mqtt_disconnect(
        packet, version, strict
    )
    result = _decode(LOADED["mqtt", "c"][0].decode_mqtt_packet, packet, version=version or None, strict=strict)
    if packet[0] >> 4 not in (0, 14):
        assert status == WRONG_TYPE
    elif result == INCOMPLETE:
        assert status == INCOMPLETE
    elif isinstance(result, MqttPacketError):
        assert (status, error_offset, answer) == (MALFORMED, result.offset, result.reason_code)
    else:
        value, end = result
        assert status == OK and size == end
        assert (code, got_version or None) == (value.reason_code, value.version)
        assert (None if reason is None else reason.decode()) == value.reason_string
        assert (None if reference is None else reference.decode()) == value.server_reference
        assert (expiry, users) == (value.session_expiry_interval, len(value.user_properties))


CLOSE_EVENTS = st.sampled_from([
    bytes.fromhex("0102020b010a245072696e636970616c05616c696365"),
    bytes.fromhex("ffffffffffffffffff0105020000"),
    bytes.fromhex("01020001000000"),
    bytes.fromhex("0102020b01016102c3a9"),  # a non-ASCII value: "a" = "é"
])


@pytest.mark.parametrize("rest", ["056162", "80", "ffffffff0f", "8080808080"])
def test_close_event_parse_reports_the_first_bad_string(probe: ModuleType, rest: str) -> None:
    # A string that is not UTF-8 (0xff at byte 6), then a length that fails (cut short,
    # negative, too long): read_event meets the bad string first, and so must the parser.
    event = bytes.fromhex("0102020b01" + "02ff41" + rest)
    status, _, error_offset, *_ = probe.close_event(event)
    result = _decode(LOADED["diffusion", "c"][0].decode_event, event)
    assert isinstance(result, MalformedError) and result.offset == 6, result
    assert (status, error_offset) == (MALFORMED, 6)


@given(st.one_of(CLOSE_EVENTS, st.binary(max_size=30)), st.data())
def test_close_event_parse_agrees(probe: ModuleType, event: bytes, data: Any) -> None:
    damaged = bytearray(event)
    for _ in range(data.draw(st.integers(0, 2)) if damaged else 0):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    event = bytes(damaged)
    status, size, error_offset, server, value, reason, count = probe.close_event(event)
    result = _decode(LOADED["diffusion", "c"][0].decode_event, event)
    if status == WRONG_TYPE:  # OPEN or UPDATE: decode_event reads on, or fails past the type byte
        _, type_at = LOADED["diffusion", "c"][0].decode_session_id(event)
        assert event[type_at] in (0, 1)
        assert not isinstance(result, MalformedError) or result.offset > type_at
    elif result == INCOMPLETE:
        assert status == INCOMPLETE
    elif isinstance(result, MalformedError):
        assert (status, error_offset) == (MALFORMED, result.offset)
    else:
        decoded, end = result
        assert type(decoded) is CloseEvent and status == OK and size == end
        assert (SessionId(server, value), reason, count) == (decoded.session_id, int(decoded.reason), len(decoded.properties))
