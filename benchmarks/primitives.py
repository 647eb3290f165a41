"""Diffusion primitives: compiled vs pure Python (issue: foundation)."""

from __future__ import annotations

from functools import partial
from typing import List


from .harness import Case
from .backends import pair


def cases() -> List[Case]:
    c, py = pair("diffusion")
    pairs = tuple((f"$Key{i}", f"value number {i}") for i in range(8))
    dict_bytes = py.encode_string_dict(pairs)
    int64_bytes = py.encode_int64(-1)
    small = py.encode_int64(300)

    def both(function: str, *args):
        # partial, not lambda: no extra Python frame inside the timed call
        contenders = {}
        if c is not None:
            contenders["compiled"] = partial(getattr(c, function), *args)
        contenders["pure Python"] = partial(getattr(py, function), *args)
        return contenders

    return [
        Case(
            "decode a string Dictionary of 8 pairs from bytes",
            both("decode_string_dict", dict_bytes),
            baseline="pure Python",
            targets=[("compiled", "pure Python", 10)],
        ),
        Case(
            "decode one Int64 (10 bytes, -1)",
            both("decode_int64", int64_bytes),
            baseline="pure Python",
            targets=[("compiled", "pure Python", 4)],
        ),
        Case(
            "decode one Int64 (2 bytes, 300)",
            both("decode_int64", small),
            baseline="pure Python",
            targets=[("compiled", "pure Python", 4)],
        ),
        Case(
            "encode a string Dictionary of 8 pairs",
            both("encode_string_dict", pairs),
            baseline="pure Python",
        ),
        Case(
            "encode one Int64 (-1)",
            both("encode_int64", -1),
            baseline="pure Python",
        ),
    ]
