"""The exceptions every closecodec backend raises.

Defined once here and imported by both backends, so that a decode error is the
same class, with the same message and offset, whichever backend found it.

- :class:`DecodeError` (a :class:`ValueError`) is the base of every decode error
  and carries :attr:`~DecodeError.offset`, the byte where the problem is.
- :class:`IncompleteError` (also an :class:`EOFError`): the input is a valid
  prefix; more bytes could make it decode. Streaming callers wait for more.
- :class:`MalformedError`: no further bytes can make the input valid.
- :class:`EncodeError` (a :class:`ValueError`): a value cannot be encoded; raised
  before anything is written.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "EncodeError",
    "IncompleteError",
    "MalformedError",
    "MqttPacketError",
    "UnknownValueError",
    "WebSocketFrameError",
]


class DecodeError(ValueError):
    """Input bytes could not be decoded.

    Attributes:
        offset: absolute byte offset in the caller's buffer where decoding failed.
    """

    offset: int

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message, offset)
        self.offset = offset

    def __str__(self) -> str:
        return f"{self.args[0]} at byte {self.offset}"


class IncompleteError(DecodeError, EOFError):
    """The input ends before the value does: a valid prefix, so more bytes may help.

    ``offset`` is where the value that runs past the end of the input starts.
    """

    def __init__(self, what: str, offset: int) -> None:
        super().__init__(f"incomplete {what}: the input ends before it does", offset)


class MalformedError(DecodeError):
    """The input can never decode, whatever follows; the message says what is wrong.

    ``offset`` is the first byte that makes the input invalid.
    """


class EncodeError(ValueError):
    """A value cannot be encoded (wrong type, out of range, not allowed on the wire)."""


class UnknownValueError(MalformedError):
    """Strict mode only: a well-formed frame carries a value this version does not know.

    By default such values decode (as an ``UNKNOWN`` enum value keeping the raw
    number); callers who prefer an error ask for ``strict=True``.
    """


class WebSocketFrameError(MalformedError):
    """A WebSocket frame that breaks RFC 6455, with the close code to answer it with.

    Attributes:
        close_code: what an RFC-compliant endpoint sends back before it closes:
            1002 (protocol error: a bad code, length, opcode, RSV bit or
            masking), 1007 (a close reason that is not UTF-8) or 1009 (a
            payload over the decoder's ``max_payload``).
    """

    close_code: int

    def __init__(self, message: str, offset: int, close_code: int = 1002) -> None:
        super().__init__(message, offset)
        self.args = (message, offset, close_code)
        self.close_code = close_code


class MqttPacketError(MalformedError):
    """An MQTT packet that breaks the standard, with the reason code a server would use.

    Attributes:
        reason_code: 0x81 (Malformed Packet: it cannot be parsed), 0x82
            (Protocol Error: it parses but is not allowed) or 0x95 (Packet too
            large: over the decoder's ``max_packet_size``), per MQTT 5 §4.13.
    """

    reason_code: int

    def __init__(self, message: str, offset: int, reason_code: int = 0x81) -> None:
        super().__init__(message, offset)
        self.args = (message, offset, reason_code)
        self.reason_code = reason_code
