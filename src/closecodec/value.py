"""The base of every value closecodec's decoders return and its encoders take.

Each protocol's values (``diffusion/values.py``, ``websocket/values.py``,
``mqtt/values.py``, ``capture/values.py``) derive from :class:`Value`. Both
backends build these same classes, so a value is identical whichever backend
produced it: immutable, hashable, equal by type and fields, with a readable repr.

These modules are plain Python; where a compiler is available they are also
compiled by Cython (pure-Python mode, with the attribute declarations in the
``.pxd`` beside each) so that the compiled backends can build values without
Python-level calls. The source is the same either way.
"""

from __future__ import annotations

from typing import Any, ClassVar, Tuple

try:
    import cython
except ImportError:  # Cython is needed only to build; interpreted, "compiled" is False

    class cython:  # type: ignore[no-redef]
        compiled = False

__all__ = ["Value"]


class Value:
    """Base of every value: immutability, equality, hashing and repr by fields."""

    _fields: ClassVar[Tuple[str, ...]] = ()

    def _astuple(self) -> tuple:
        return tuple([getattr(self, name) for name in self._fields])

    def __setattr__(self, name: str, value: Any) -> None:
        # Compiled, __init__ assigns typed attributes directly and never gets
        # here. Interpreted, __init__ assigns each field once through here.
        if cython.compiled or name not in self._fields or hasattr(self, name):
            raise AttributeError(f"{type(self).__name__} is immutable")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._astuple() == other._astuple()  # type: ignore[attr-defined]

    def __ne__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._astuple() != other._astuple()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._astuple()))

    def __repr__(self) -> str:
        fields = ", ".join([f"{name}={getattr(self, name)!r}" for name in self._fields])
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple:
        return (type(self), self._astuple())

