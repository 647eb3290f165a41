"""Diffusion primitives (docs/diffusion.md section 2), on each backend."""

from __future__ import annotations

import array
import mmap
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closecodec import CloseRequest, SessionId, encode_into
from closecodec.errors import DecodeError, EncodeError, IncompleteError, MalformedError

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
UINT64 = st.integers(0, 2**64 - 1)
PAIRS = st.lists(st.tuples(st.text(), st.text()), max_size=12).map(tuple)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- varints: every boundary the spec names ------------------------------------

INT32_CASES = [
    (0, "00"),
    (1, "01"),
    (127, "7f"),
    (128, "8001"),
    (16383, "ff7f"),
    (16384, "808001"),
    (268435455, "ffffff7f"),
    (268435456, "8080808001"),
    (2**31 - 1, "ffffffff07"),
    (-1, "ffffffff0f"),
    (-(2**31), "8080808008"),
]

INT64_CASES = [
    (0, "00"),
    (127, "7f"),
    (128, "8001"),
    (16383, "ff7f"),
    (16384, "808001"),
    (2**31 - 1, "ffffffff07"),
    (2**35 - 1, "ffffffff7f"),
    (2**35, "808080808001"),
    (2**63 - 1, "ffffffffffffffff7f"),
    (-1, "ffffffffffffffffff01"),
    (-(2**31), "80808080f8ffffffff01"),
    (-(2**63), "80808080808080808001"),
]


@pytest.mark.parametrize("value, hexed", INT32_CASES)
def test_int32_boundaries(diffusion, value, hexed):
    assert diffusion.encode_int32(value) == h(hexed)
    assert diffusion.decode_int32(h(hexed)) == (value, len(h(hexed)))


@pytest.mark.parametrize("value, hexed", INT64_CASES)
def test_int64_boundaries(diffusion, value, hexed):
    assert diffusion.encode_int64(value) == h(hexed)
    assert diffusion.decode_int64(h(hexed)) == (value, len(h(hexed)))


def test_non_shortest_varints_are_read(diffusion):
    assert diffusion.decode_int32(h("8000")) == (0, 2)
    assert diffusion.decode_int32(h("8080808000")) == (0, 5)
    assert diffusion.decode_int64(h("80808080808080808000")) == (0, 10)


@pytest.mark.parametrize(
    "decode, hexed, offset, problem",
    [
        # a 5th Int32 byte / 10th Int64 byte that says more follows
        ("decode_int32", "8080808080", 4, "Int32 is longer than 5 bytes"),
        ("decode_int32", "808080808000", 4, "Int32 is longer than 5 bytes"),
        ("decode_int64", "80" * 11 + "00", 9, "Int64 is longer than 10 bytes"),
        # bits beyond the width in the last byte
        ("decode_int32", "ffffffff1f", 4, "Int32 has bits beyond its width in byte 5"),
        ("decode_int32", "ffffffff7f", 4, "Int32 has bits beyond its width in byte 5"),
        ("decode_int64", "ff" * 9 + "7f", 9, "Int64 has bits beyond its width in byte 10"),
        ("decode_int64", "ff" * 9 + "02", 9, "Int64 has bits beyond its width in byte 10"),
    ],
)
def test_overlong_varints_are_malformed(diffusion, decode, hexed, offset, problem):
    with pytest.raises(MalformedError) as caught:
        getattr(diffusion, decode)(h(hexed))
    assert caught.value.offset == offset
    assert str(caught.value) == f"{problem} at byte {offset}"


@pytest.mark.parametrize("decode", ["decode_int32", "decode_int64"])
@pytest.mark.parametrize("hexed", ["", "80", "ff", "8080", "ffffffff"])
def test_truncated_varints_are_incomplete(diffusion, decode, hexed):
    data = b"\x00\x00" + h(hexed)
    with pytest.raises(IncompleteError) as caught:
        getattr(diffusion, decode)(data, 2)
    assert caught.value.offset == 2
    assert isinstance(caught.value, (ValueError, EOFError, DecodeError))


@given(INT32)
def test_int32_round_trip(diffusion, value):
    encoded = diffusion.encode_int32(value)
    assert len(encoded) <= 5
    assert diffusion.decode_int32(b"x" + encoded + b"y", 1) == (value, 1 + len(encoded))


@given(INT64)
def test_int64_round_trip(diffusion, value):
    encoded = diffusion.encode_int64(value)
    assert len(encoded) <= 10
    assert diffusion.decode_int64(b"x" + encoded + b"y", 1) == (value, 1 + len(encoded))


@given(st.integers(0, 2**31 - 1))
def test_int32_is_shortest_form(diffusion, value):
    assert len(diffusion.encode_int32(value)) == max(1, -(-value.bit_length() // 7))


@pytest.mark.parametrize(
    "encode, value",
    [
        ("encode_int32", 2**31),
        ("encode_int32", -(2**31) - 1),
        ("encode_int64", 2**63),
        ("encode_int64", -(2**63) - 1),
        ("encode_byte", 128),
        ("encode_byte", -1),
    ],
)
def test_out_of_range_ints_are_refused(diffusion, encode, value):
    with pytest.raises(EncodeError, match="outside"):
        getattr(diffusion, encode)(value)


@pytest.mark.parametrize("encode", ["encode_int32", "encode_int64", "encode_byte"])
@pytest.mark.parametrize("value", ["1", 1.0, None, True])
def test_ints_of_the_wrong_type_are_refused(diffusion, encode, value):
    with pytest.raises(EncodeError, match="needs an int"):
        getattr(diffusion, encode)(value)


# -- Byte and Boolean -----------------------------------------------------------


def test_byte(diffusion):
    assert diffusion.decode_byte(b"\x00\x7f", 1) == (127, 2)
    assert diffusion.encode_byte(127) == b"\x7f"
    with pytest.raises(MalformedError) as caught:
        diffusion.decode_byte(b"\x00\x80", 1)
    assert (caught.value.offset, str(caught.value)) == (1, "Byte 0x80 is above 0x7f at byte 1")
    with pytest.raises(IncompleteError) as caught:
        diffusion.decode_byte(b"\x00", 1)
    assert caught.value.offset == 1


def test_boolean(diffusion):
    assert diffusion.decode_boolean(b"\x00\x01") == (False, 1)
    assert diffusion.decode_boolean(b"\x00\x01", 1) == (True, 2)
    assert diffusion.encode_boolean(True) == b"\x01"
    assert diffusion.encode_boolean(False) == b"\x00"
    with pytest.raises(MalformedError, match="neither 0 nor 1"):
        diffusion.decode_boolean(b"\x02")
    with pytest.raises(EncodeError, match="needs a bool"):
        diffusion.encode_boolean(1)


# -- Bytes, String, lengths ------------------------------------------------------


@given(st.binary(max_size=300))
def test_bytes_round_trip(diffusion, value):
    assert diffusion.decode_bytes(diffusion.encode_bytes(value)) == (value, len(diffusion.encode_bytes(value)))


@given(st.text())
def test_string_round_trip(diffusion, value):
    encoded = diffusion.encode_string(value)
    assert diffusion.decode_string(encoded) == (value, len(encoded))


def test_string_examples(diffusion):
    assert diffusion.encode_string("") == b"\x00"
    assert diffusion.encode_string("a") == b"\x01a"
    assert diffusion.encode_string("日本語") == h("09e697a5e69cace8aa9e")
    assert diffusion.decode_string(h("0a41c3a9e697a5f09f9880")) == ("Aé日😀", 11)


def test_length_prefix_larger_than_the_rest_is_incomplete(diffusion):
    with pytest.raises(IncompleteError) as caught:
        diffusion.decode_string(b"\x00\x05abc", 1)
    assert caught.value.offset == 1
    assert str(caught.value) == "incomplete String: the input ends before it does at byte 1"


def test_huge_length_prefix_fails_at_once_without_allocating(diffusion):
    # Int32 2**31-1 as a length, on a 10-byte buffer.
    data = h("ffffffff07") + b"abcde"
    tracemalloc.start()
    try:
        for decode in (diffusion.decode_string, diffusion.decode_bytes, diffusion.decode_string_dict):
            with pytest.raises(IncompleteError) as caught:
                decode(data)
            assert caught.value.offset == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_negative_length_is_malformed(diffusion):
    with pytest.raises(MalformedError) as caught:
        diffusion.decode_bytes(h("ffffffff0f") + b"abc")
    assert str(caught.value) == "negative Bytes length -1 at byte 0"


@pytest.mark.parametrize(
    "payload, bad_at",
    [
        ("ff", 0),  # never valid in UTF-8
        ("c0af", 0),  # overlong encoding of '/'
        ("e697", 0),  # a 3-byte sequence cut short by the length
        ("41c328", 1),  # bad continuation byte
        ("eda080", 0),  # an encoded surrogate
        ("f4908080", 0),  # above U+10FFFF
    ],
)
def test_invalid_utf8_is_malformed_at_the_bad_byte(diffusion, payload, bad_at):
    raw = h(payload)
    data = b"zz" + bytes((len(raw),)) + raw
    with pytest.raises(MalformedError) as caught:
        diffusion.decode_string(data, 2)
    assert caught.value.offset == 3 + bad_at
    assert str(caught.value).startswith("invalid UTF-8 in String")


def test_lone_surrogates_cannot_be_encoded(diffusion):
    with pytest.raises(EncodeError, match="surrogate"):
        diffusion.encode_string("a\ud800")
    with pytest.raises(EncodeError, match="needs a str"):
        diffusion.encode_string(b"a")


# -- Collection and Dictionary ------------------------------------------------------


@given(st.lists(INT64, max_size=20))
def test_collection_round_trip(diffusion, values):
    encoded = diffusion.encode_collection(values, diffusion.encode_int64)
    assert diffusion.decode_collection(encoded, 0, diffusion.decode_int64) == (tuple(values), len(encoded))


def test_collection_count_past_the_end_is_incomplete(diffusion):
    with pytest.raises(IncompleteError) as caught:
        diffusion.decode_collection(h("03") + b"\x01\x02", 0, diffusion.decode_int32)
    assert caught.value.offset == 0


def test_collection_item_errors_keep_their_offsets(diffusion):
    with pytest.raises(MalformedError) as caught:
        diffusion.decode_collection(h("02") + b"\x01\x80", 0, diffusion.decode_byte)
    assert caught.value.offset == 2


@given(PAIRS)
def test_string_dict_round_trip(diffusion, pairs):
    encoded = diffusion.encode_string_dict(pairs)
    assert diffusion.decode_string_dict(encoded) == (pairs, len(encoded))


def test_string_dict_keeps_wire_order_and_duplicates(diffusion):
    encoded = diffusion.encode_string_dict([("k", "first"), ("a", "x"), ("k", "second")])
    assert encoded == h("03016b05666972737401610178016b067365636f6e64")
    pairs, _ = diffusion.decode_string_dict(encoded)
    assert pairs == (("k", "first"), ("a", "x"), ("k", "second"))
    assert dict(pairs)["k"] == "second"


def test_string_dict_from_a_mapping(diffusion):
    assert diffusion.encode_string_dict({"$Principal": "alice"}) == h("010a245072696e636970616c05616c696365")


@pytest.mark.parametrize("value", [5, ["ab"], [("k", 1)], [("k",)]])
def test_string_dict_refuses_what_it_cannot_encode(diffusion, value):
    with pytest.raises(EncodeError):
        diffusion.encode_string_dict(value)


# -- SessionId --------------------------------------------------------------------


@given(UINT64, UINT64)
def test_session_id_round_trip(diffusion, server, value):
    session_id = SessionId(server, value)
    encoded = diffusion.encode_session_id(session_id)
    assert diffusion.decode_session_id(encoded) == (session_id, len(encoded))
    assert SessionId.parse(str(session_id)) == session_id


def test_session_id_text_and_wire_form(diffusion):
    session_id = SessionId(0x0123456789ABCDEF, 0xFEDCBA9876543210)
    assert str(session_id) == "0123456789abcdef-fedcba9876543210"
    assert repr(session_id) == "SessionId('0123456789abcdef-fedcba9876543210')"
    assert diffusion.encode_session_id(session_id) == h("ef9bafcdf8acd1910190e4d0b287d3aeeefe01")
    assert SessionId.parse("0123456789ABCDEF-FEDCBA9876543210") == session_id


def test_session_id_top_bit_parts_are_unsigned(diffusion):
    decoded, end = diffusion.decode_session_id(h("80808080808080808001") + h("ffffffffffffffffff01"))
    assert decoded == SessionId(2**63, 2**64 - 1)
    assert end == 20


@pytest.mark.parametrize(
    "text",
    ["", "0123456789abcdef", "0123456789abcdef_fedcba9876543210", "0123456789abcdeg-fedcba9876543210",
     "123456789abcdef-fedcba9876543210", " 0123456789abcdef-fedcba987654321", "+123456789abcdef-fedcba9876543210"],
)
def test_session_id_parse_refuses_other_text(text):
    with pytest.raises(ValueError):
        SessionId.parse(text)


@pytest.mark.parametrize("server, value, error", [
    (-1, 0, ValueError), (0, 2**64, ValueError), ("1", 0, TypeError),
    (1.5, 2, TypeError), (True, 1, TypeError),  # compiled, an `int` annotation once converted them
])
def test_session_id_parts_are_checked(server, value, error):
    with pytest.raises(error):
        SessionId(server, value)


def test_session_id_is_an_immutable_hashable_ordered_value():
    a, b = SessionId(1, 2), SessionId(1, 3)
    assert a == SessionId(1, 2) and a != b and a < b <= b and b > a >= a
    assert len({a, SessionId(1, 2), b}) == 2
    with pytest.raises(AttributeError):
        a.server = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del a.value  # type: ignore[misc]
    assert a.server == 1
    assert (a == (1, 2)) is False


def test_encode_session_id_needs_a_session_id(diffusion):
    with pytest.raises(EncodeError):
        diffusion.encode_session_id((1, 2))


# -- buffers and offsets ------------------------------------------------------------

SAMPLE = h("00") + h("ef9bafcdf8acd1910190e4d0b287d3aeeefe01")


@pytest.mark.parametrize(
    "make",
    [bytes, bytearray, memoryview, lambda b: array.array("B", b), lambda b: memoryview(bytearray(b))],
)
def test_any_contiguous_buffer_decodes_in_place(diffusion, make):
    assert diffusion.decode_session_id(make(SAMPLE), 1) == (
        SessionId(0x0123456789ABCDEF, 0xFEDCBA9876543210),
        len(SAMPLE),
    )


def test_mmap_decodes(diffusion, tmp_path):
    path = tmp_path / "data"
    path.write_bytes(SAMPLE)
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        value, end = diffusion.decode_session_id(mapped, 1)
    assert end == len(SAMPLE) and value.server == 0x0123456789ABCDEF


def test_wide_item_buffers_are_read_as_bytes(diffusion):
    words = array.array("H", [0x0201])  # little- or big-endian: the bytes as stored
    raw = words.tobytes()
    assert diffusion.decode_byte(words, 1) == (raw[1], 2)


def test_non_contiguous_buffers_are_refused(diffusion):
    with pytest.raises(TypeError, match="C-contiguous"):
        diffusion.decode_int32(memoryview(b"\x01\x02\x03\x04")[::2])


def test_non_buffers_are_refused(diffusion):
    with pytest.raises(TypeError, match="bytes-like"):
        diffusion.decode_int32("01")


@pytest.mark.parametrize("offset", [-1, 3])
def test_offsets_outside_the_buffer_are_refused(diffusion, offset):
    with pytest.raises(ValueError, match="outside the buffer") as caught:
        diffusion.decode_int32(b"\x01\x02", offset)
    assert not isinstance(caught.value, DecodeError)


def test_offsets_too_large_for_a_c_size_overflow(diffusion):
    # The compiled functions take offsets as Py_ssize_t; the pure twins check the same bound.
    with pytest.raises(OverflowError):
        diffusion.decode_int32(b"\x01\x02", 2**70)
    with pytest.raises(OverflowError):
        diffusion.close_event_columns(diffusion.encode_message(CloseRequest()))[2**70]


def test_offset_at_the_end_is_incomplete(diffusion):
    with pytest.raises(IncompleteError):
        diffusion.decode_int32(b"\x01", 1)


# -- encoding into a caller's buffer -------------------------------------------------


def test_encode_into_a_bytearray_grows_it(diffusion):
    target = bytearray(b"ab")
    assert encode_into(diffusion.encode_string, "xyz", target, 2) == 4
    assert target == b"ab\x03xyz"


def test_encode_into_a_memoryview_at_an_offset(diffusion):
    target = bytearray(12)
    written = encode_into(diffusion.encode_int64, -1, memoryview(target), 2)
    assert written == 10 and target == b"\x00\x00" + h("ffffffffffffffffff01")


def test_encode_into_writes_nothing_when_it_fails(diffusion):
    target = bytearray(b"keep")
    view = memoryview(target)
    with pytest.raises(EncodeError, match="too small"):
        encode_into(diffusion.encode_int64, -1, view, 0)
    with pytest.raises(EncodeError, match="outside"):
        encode_into(diffusion.encode_int64, 2**64, view, 0)
    with pytest.raises(EncodeError, match="outside the buffer"):
        encode_into(diffusion.encode_byte, 1, target, 5)
    assert target == b"keep"
    with pytest.raises(TypeError, match="read-only"):
        encode_into(diffusion.encode_byte, 1, memoryview(b"abcd"), 0)


def test_repeated_and_colliding_dictionary_keys_decode_exactly(diffusion):
    # The compiled backend interns short keys in a small cache: thousands of
    # distinct keys force slot reuse; every decode must still be exact.
    keys = [f"k{i}" for i in range(3000)] + [f"$Key{i:04d}-{'x' * (i % 30)}" for i in range(3000)]
    encoded = [diffusion.encode_string_dict([(key, "v"), ("é" + key, key)]) for key in keys]
    for _ in range(2):
        for key, data in zip(keys, encoded):
            assert diffusion.decode_string_dict(data)[0] == ((key, "v"), ("é" + key, key))
