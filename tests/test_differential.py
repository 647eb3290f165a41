"""The two backends agree: same value and offset, or same error, on any input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closecodec import SessionId

from helpers import outcome

PRIMITIVE_DECODERS = [
    "decode_int32",
    "decode_int64",
    "decode_byte",
    "decode_boolean",
    "decode_bytes",
    "decode_string",
    "decode_string_dict",
    "decode_session_id",
]


def assert_agree(diffusion_both, name: str, *args: Any) -> Any:
    compiled, pure = diffusion_both
    result_c = outcome(lambda: getattr(compiled, name)(*args))
    result_py = outcome(lambda: getattr(pure, name)(*args))
    assert result_c == result_py
    return result_c


# Bytes biased towards varint edges: continuation bits, small lengths, UTF-8 lead bytes.
EDGY_BYTES = st.lists(
    st.one_of(st.integers(0, 255), st.sampled_from([0x00, 0x01, 0x02, 0x7F, 0x80, 0xFF, 0xC3, 0xE6, 0xED])),
    max_size=40,
).map(bytes)


@pytest.mark.parametrize("name", PRIMITIVE_DECODERS)
@given(data=st.one_of(st.binary(max_size=40), EDGY_BYTES), offset=st.integers(0, 4))
def test_decoders_agree_on_arbitrary_bytes(diffusion_both, name, data, offset):
    if offset > len(data):
        offset = len(data)
    assert_agree(diffusion_both, name, data, offset)


@given(data=EDGY_BYTES)
def test_collection_decoders_agree(diffusion_both, data):
    compiled, pure = diffusion_both
    result_c = outcome(lambda: compiled.decode_collection(data, 0, compiled.decode_string))
    result_py = outcome(lambda: pure.decode_collection(data, 0, pure.decode_string))
    assert result_c == result_py


ANY_VALUE = st.one_of(
    st.integers(-(2**70), 2**70),
    st.text(max_size=10),
    st.binary(max_size=10),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5)), max_size=4),
    st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=5), st.integers()), max_size=4),
    st.builds(SessionId, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
)


@pytest.mark.parametrize(
    "name",
    [
        "encode_int32",
        "encode_int64",
        "encode_byte",
        "encode_boolean",
        "encode_bytes",
        "encode_string",
        "encode_string_dict",
        "encode_session_id",
    ],
)
@given(value=ANY_VALUE)
def test_encoders_agree_byte_for_byte(diffusion_both, name, value):
    assert_agree(diffusion_both, name, value)


@given(st.text())
def test_lone_surrogate_text_agrees(diffusion_both, text):
    assert_agree(diffusion_both, "encode_string", text + "\udc80")


@given(st.lists(st.tuples(st.text(), st.text()), max_size=6))
def test_cross_backend_round_trips(diffusion_both, pairs):
    compiled, pure = diffusion_both
    assert pure.decode_string_dict(compiled.encode_string_dict(pairs))[0] == tuple(pairs)
    assert compiled.decode_string_dict(pure.encode_string_dict(pairs))[0] == tuple(pairs)
