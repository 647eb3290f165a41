"""The immutable values closecodec's decoders return and its encoders take.

Both backends build these same classes, so a value is identical whichever
backend produced it. Values are immutable, hashable, compare equal by type and
fields, and have readable reprs (reason names, session ids as text).

This module is plain Python; where a compiler is available it is also compiled
by Cython (pure-Python mode, with the attribute declarations in ``frames.pxd``)
so that the compiled backend can build values without Python-level calls. The
source is the same either way.
"""

from __future__ import annotations

from typing import Any, ClassVar, Tuple

try:
    import cython
except ImportError:  # Cython is needed only to build; interpreted, "compiled" is False

    class cython:  # type: ignore[no-redef]
        compiled = False

__all__ = ["SessionId"]

_UINT64_MAX = (1 << 64) - 1
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class _Frame:
    """Base of every value: immutability, equality, hashing and repr by fields."""

    _fields: ClassVar[Tuple[str, ...]] = ()

    def _astuple(self) -> tuple:
        return tuple([getattr(self, name) for name in self._fields])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

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


class SessionId(_Frame):
    """A Diffusion session id: two unsigned 64-bit numbers, ``server`` and ``value``.

    Its text form is ``%016x-%016x`` (lower-case hex), as Diffusion prints it.
    Session ids order by ``(server, value)``.

    Args:
        server: the server part, 0 to 2**64 - 1.
        value: the session's own part, 0 to 2**64 - 1.

    Raises:
        TypeError: a part is not an int.
        ValueError: a part is out of range.
    """

    _fields = ("server", "value")

    def __init__(self, server: int, value: int) -> None:
        for part in (server, value):
            if type(part) is not int:
                raise TypeError(f"session id parts must be int, not {type(part).__name__}")
            if not 0 <= part <= _UINT64_MAX:
                raise ValueError(f"session id part {part} is outside 0..2**64-1")
        if cython.compiled:  # typed attributes: direct writes
            self.server = server
            self.value = value
        else:  # _Frame.__setattr__ refuses plain assignment
            object.__setattr__(self, "server", server)
            object.__setattr__(self, "value", value)

    @classmethod
    def parse(cls, text: str) -> "SessionId":
        """Parse the ``%016x-%016x`` text form (either case of hex digits).

        Raises:
            ValueError: ``text`` is not two 16-digit hex numbers joined by ``-``.
        """
        if (
            not isinstance(text, str)
            or len(text) != 33
            or text[16] != "-"
            or not _HEX_DIGITS.issuperset(text[:16] + text[17:])
        ):
            raise ValueError(f"not a session id (want %016x-%016x): {text!r}")
        return cls(int(text[:16], 16), int(text[17:], 16))

    def __str__(self) -> str:
        return f"{self.server:016x}-{self.value:016x}"

    def __repr__(self) -> str:
        return f"SessionId('{self}')"

    # Defining an ordering replaces the inherited comparison, so equality and
    # hashing are restated here (a compiled type would otherwise be unhashable).
    def __eq__(self, other: object) -> bool:
        if type(other) is not SessionId:
            return NotImplemented
        return self.server == other.server and self.value == other.value  # type: ignore[attr-defined]

    def __ne__(self, other: object) -> bool:
        if type(other) is not SessionId:
            return NotImplemented
        return self.server != other.server or self.value != other.value  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(("SessionId", self.server, self.value))

    def __lt__(self, other: "SessionId") -> bool:
        if type(other) is not SessionId:
            return NotImplemented
        return (self.server, self.value) < (other.server, other.value)

    def __le__(self, other: "SessionId") -> bool:
        if type(other) is not SessionId:
            return NotImplemented
        return (self.server, self.value) <= (other.server, other.value)

    def __gt__(self, other: "SessionId") -> bool:
        if type(other) is not SessionId:
            return NotImplemented
        return (self.server, self.value) > (other.server, other.value)

    def __ge__(self, other: "SessionId") -> bool:
        if type(other) is not SessionId:
            return NotImplemented
        return (self.server, self.value) >= (other.server, other.value)
