"""WebSocket's values: opcodes, frame headers, frames, close frames and whole messages.

See ``closecodec/value.py`` for what every value guarantees.
"""

from __future__ import annotations

import enum
from typing import Any

from ..reasons import WebSocketCloseCode
from ..value import Value

__all__ = [
    "WebSocketClose",
    "WebSocketFrame",
    "WebSocketHeader",
    "WebSocketMessage",
    "WebSocketOpcode",
]


# -- WebSocket frames (RFC 6455 §5.2, §5.3, §5.5.1, §7.4) ------------


class WebSocketOpcode(enum.IntEnum):
    """A WebSocket frame's opcode (RFC 6455 §5.2); 3-7 and 11-15 are reserved."""

    CONTINUATION = 0
    TEXT = 1
    BINARY = 2
    CLOSE = 8
    PING = 9
    PONG = 10

    @property
    def is_control(self) -> bool:
        """True for CLOSE, PING and PONG (opcodes 8 and up)."""
        return self >= 8


def _mask_key(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is not bytes or len(value) != 4:
        raise TypeError("a masking key is 4 bytes (or None for an unmasked frame)")
    return value


class WebSocketHeader(Value):
    """A WebSocket frame header (RFC 6455 §5.2), as :func:`~closecodec.decode_ws_header` reads it.

    Args:
        fin: the FIN bit (the last frame of a message).
        rsv: the RSV1-3 bits as a number 0..7 (RSV1 is 4, RSV2 2, RSV3 1).
        opcode: a :class:`WebSocketOpcode`.
        mask_key: the 4-byte masking key, or None for an unmasked frame.
        length: the payload length in bytes, 0 to 2**63 - 1.

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range.
    """

    _fields = ("fin", "rsv", "opcode", "mask_key", "length")

    def __init__(self, fin: Any, rsv: Any, opcode: Any, mask_key: Any, length: Any) -> None:
        if type(rsv) is not int or not 0 <= rsv <= 7:
            raise ValueError(f"rsv is a number 0..7, not {rsv!r}")
        if type(length) is not int or not 0 <= length < 1 << 63:
            raise ValueError(f"a payload length is 0..2**63-1, not {length!r}")
        self.fin = bool(fin)
        self.rsv = rsv
        self.opcode = WebSocketOpcode(opcode)
        self.mask_key = _mask_key(mask_key)
        self.length = length

    @property
    def masked(self) -> bool:
        """Whether the payload is masked (client-to-server frames always are)."""
        return self.mask_key is not None


class WebSocketFrame(Value):
    """Any WebSocket frame but a close (see :class:`WebSocketClose`), payload unmasked.

    Args:
        opcode: a :class:`WebSocketOpcode` other than CLOSE.
        payload: the application data (unmasked), bytes.
        fin: the FIN bit; control frames (PING, PONG) always have it set.
        rsv: the RSV1-3 bits, 0..7 (RSV1 is 4), for a negotiated extension.
        mask_key: the 4-byte masking key the frame is (or was) sent with, or
            None for an unmasked (server-to-client) frame.

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range.
    """

    _fields = ("opcode", "payload", "fin", "rsv", "mask_key")

    def __init__(self, opcode: Any, payload: Any = b"", fin: Any = True, rsv: Any = 0, mask_key: Any = None) -> None:
        opcode = WebSocketOpcode(opcode)
        if opcode == WebSocketOpcode.CLOSE:
            raise ValueError("a close frame is a WebSocketClose")
        if type(rsv) is not int or not 0 <= rsv <= 7:
            raise ValueError(f"rsv is a number 0..7, not {rsv!r}")
        self.opcode = opcode
        self.payload = bytes(payload)
        self.fin = bool(fin)
        self.rsv = rsv
        self.mask_key = _mask_key(mask_key)

    @property
    def masked(self) -> bool:
        """Whether the frame is masked on the wire."""
        return self.mask_key is not None

    @property
    def length(self) -> int:
        """The payload length in bytes."""
        return len(self.payload)


class WebSocketClose(Value):
    """A WebSocket close frame (opcode 8): a status code and a reason, or neither.

    ``code`` None is an empty close body, which the receiver reports as 1005
    (no status received); the reason is then empty too. A close frame always
    has FIN set and no RSV bits.

    Args:
        code: a :class:`~closecodec.reasons.WebSocketCloseCode` (an int
            0..65535 is converted, unregistered ones included), or None.
        reason: the reason text; empty when ``code`` is None.
        mask_key: the 4-byte masking key, or None for an unmasked frame.

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range.
            Whether a code or reason may be *sent* is the encoder's check.
    """

    _fields = ("code", "reason", "mask_key")

    def __init__(self, code: Any = None, reason: Any = "", mask_key: Any = None) -> None:
        if type(reason) is not str:
            raise TypeError(f"a close reason is a str, not {type(reason).__name__}")
        if code is None:
            if reason:
                raise ValueError("a close frame without a status code has no reason")
        else:
            code = WebSocketCloseCode(code)
        self.code = code
        self.reason = reason
        self.mask_key = _mask_key(mask_key)

    fin = True
    rsv = 0
    opcode = WebSocketOpcode.CLOSE

    @property
    def masked(self) -> bool:
        """Whether the frame is masked on the wire."""
        return self.mask_key is not None

    @property
    def effective_code(self) -> Any:
        """``code``, or 1005 (NO_STATUS_RECEIVED) for an empty body (RFC 6455 §7.1.5)."""
        return WebSocketCloseCode.NO_STATUS_RECEIVED if self.code is None else self.code

    @property
    def payload(self) -> bytes:
        """The close body as sent: the code (2 bytes, big-endian) and the reason in UTF-8."""
        if self.code is None:
            return b""
        return int(self.code).to_bytes(2, "big") + self.reason.encode("utf-8")

    @property
    def length(self) -> int:
        """The payload length in bytes."""
        return len(self.payload)



class WebSocketMessage(Value):
    """A whole WebSocket data message, reassembled from its frames (RFC 6455 §5.4).

    What :class:`~closecodec.WebSocketStream` returns for a TEXT or BINARY message,
    however many frames carried it; a text payload is kept as bytes (``text``
    decodes it).

    Args:
        opcode: :attr:`WebSocketOpcode.TEXT` or :attr:`WebSocketOpcode.BINARY`.
        payload: the message's application data (unmasked), bytes.
        rsv: the RSV bits of its first frame, 0..7 (RSV1 is 4: compressed by
            permessage-deflate, RFC 7692, which the stream does not inflate).
        masked: whether its frames were masked (sent by a client).

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range.
    """

    _fields = ("opcode", "payload", "rsv", "masked")

    def __init__(self, opcode: Any, payload: Any = b"", rsv: Any = 0, masked: Any = False) -> None:
        opcode = WebSocketOpcode(opcode)
        if opcode not in (WebSocketOpcode.TEXT, WebSocketOpcode.BINARY):
            raise ValueError(f"a message is TEXT or BINARY, not {opcode.name}")
        if type(rsv) is not int or not 0 <= rsv <= 7:
            raise ValueError(f"rsv is a number 0..7, not {rsv!r}")
        self.opcode = opcode
        self.payload = bytes(payload)
        self.rsv = rsv
        self.masked = bool(masked)

    @property
    def length(self) -> int:
        """The payload length in bytes."""
        return len(self.payload)

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (RFC 6455 §5.6 requires it of a TEXT message).

        Raises:
            UnicodeDecodeError: the payload is not UTF-8.
        """
        return self.payload.decode("utf-8")


