"""What every harness shares: comparable outcomes, the differential check, option bytes, buffers.

A harness runs one input through the compiled module and its pure-Python twin
and raises :class:`Disagreement` unless both give equal values, or the same
documented error (a :class:`~closecodec.errors.DecodeError`) with the same
class, message, offset and answer code. Any other exception propagates: for
the fuzzer it is a finding like a disagreement.
"""

from __future__ import annotations

import array
import enum
import random
from typing import Any, Callable, List, Sequence, Tuple

from closecodec.errors import DecodeError

#: How many option bytes lead every decoder harness's input (see :func:`decoder_input`).
OPTION_BYTES = 2


class Disagreement(AssertionError):
    """The two backends (or two ways of feeding one backend) gave different results."""


def canon(value: Any) -> Any:
    """A plain, comparable, type-exact form of a decoded value.

    Frames compare by their fields, memoryviews by their bytes (a memoryview
    into a reader's block may not outlive it), and every node keeps its type's
    name, so a ``bool`` is not an ``int`` and ``bytes`` is not a ``memoryview``.
    """
    kind = type(value)
    if value is None or kind in (bool, int, str, float):
        return (kind.__name__, value)
    if kind in (bytes, bytearray, memoryview):
        return (kind.__name__, bytes(value))
    if isinstance(value, enum.Enum):
        return (kind.__name__, value.value, value.name, repr(value))
    if isinstance(value, BaseException):
        return canon_error(value)
    fields = getattr(kind, "_fields", None)
    if isinstance(fields, tuple) and not isinstance(value, tuple):  # a frames value
        return (kind.__name__,) + tuple(canon(getattr(value, name)) for name in fields)
    if isinstance(value, (tuple, list)):  # tuples, lists and the capture's tuple values
        return (kind.__name__,) + tuple(canon(item) for item in value)
    if isinstance(value, dict):
        return (kind.__name__,) + tuple(sorted((canon(k), canon(v)) for k, v in value.items()))
    raise TypeError(f"fuzz.common.canon does not know {kind.__name__}: add it")


def canon_error(error: BaseException) -> Tuple[Any, ...]:
    """An error as the contract compares it: class, message, offset and answer code."""
    return (
        "error", type(error).__name__, error.args, str(error), getattr(error, "offset", None),
        getattr(error, "close_code", None), getattr(error, "reason_code", None),
    )


def outcome(call: Callable[[], Any]) -> Any:
    """What ``call`` did: ``("ok", canon(value))``, or the canonical form of its DecodeError."""
    try:
        return ("ok", canon(call()))
    except DecodeError as error:
        return canon_error(error)


def short(value: Any, limit: int = 2000) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def agree(what: str, compiled: Any, pure: Any, *, left: str = "c", right: str = "py") -> Any:
    """Raise :class:`Disagreement` unless the two outcomes are equal; return the first."""
    if compiled != pure:
        raise Disagreement(f"{what}: the backends disagree\n  {left}:  {short(compiled)}\n  {right}: {short(pure)}")
    return compiled


def both(pair: Tuple[Any, Any], name: str, *args: Any, **options: Any) -> Any:
    """Call ``name`` on the compiled and the pure module of ``pair`` and check they agree."""
    compiled, pure = pair
    result_c = outcome(lambda: getattr(compiled, name)(*args, **options))
    result_py = outcome(lambda: getattr(pure, name)(*args, **options))
    if result_c != result_py:
        agree(f"{name}(*{short(args, 300)}, **{options})", result_c, result_py)
    return result_c


class Options:
    """Choices read from an integer in mixed radix: option 0 always picks each first (default) choice."""

    def __init__(self, value: int) -> None:
        self.value = value

    def pick(self, choices: Sequence[Any]) -> Any:
        self.value, index = divmod(self.value, len(choices))
        return choices[index]

    def flag(self) -> bool:
        return self.pick((False, True))


def as_buffer(data: bytes, kind: int) -> Any:
    """``data`` as one of the buffer types the decoders take (bytes, bytearray, memoryview, array)."""
    if kind == 0:
        return data
    if kind == 1:
        return bytearray(data)
    if kind == 2:
        return memoryview(data)
    return array.array("B", data)


def decoder_input(data: bytes) -> Tuple[Options, Any, int]:
    """Split a decoder harness's input: option bytes, then the bytes to decode.

    The first :data:`OPTION_BYTES` bytes pick the buffer type (2 bits), whether
    the decoder reads the whole input at offset 2 or a copy of the rest at
    offset 0 (1 bit), and then the harness's own options (:class:`Options`).
    Returns the options, the buffer and the offset to decode at.
    """
    head = int.from_bytes(data[:OPTION_BYTES], "little")
    options = Options(head)
    kind = options.pick((0, 1, 2, 3))
    if options.flag():
        buf, offset = data, min(OPTION_BYTES, len(data))
    else:
        buf, offset = data[OPTION_BYTES:], 0
    return options, as_buffer(buf, kind), offset


#: At most this many chunks; the rest of the stream is the last one (each feed costs time).
MAX_CHUNKS = 200


def chunks(data: bytes, seed: int, largest: int) -> List[bytes]:
    """Cut ``data`` into chunks of 0..``largest`` bytes (empty ones too), the cuts drawn from ``seed``."""
    rng = random.Random(seed)
    out = []
    pos = 0
    while pos < len(data):
        size = rng.randint(0, largest) if len(out) < MAX_CHUNKS - 1 else len(data) - pos
        out.append(data[pos:pos + size])
        pos += size
    return out


def fields(obj: Any, names: Sequence[str]) -> Tuple[Any, ...]:
    """The named attributes of ``obj`` that it has, in canonical form (the state to compare)."""
    return tuple((name, canon(getattr(obj, name))) for name in names if hasattr(obj, name))

