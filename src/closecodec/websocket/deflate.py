"""permessage-deflate (RFC 7692): what a reader of WebSocket traffic needs to read compressed messages.

Plain Python over zlib, for both backends: a message is inflated whole, once its
frames are reassembled, so there is no byte loop here.
"""

from __future__ import annotations

import zlib
from typing import Mapping

__all__ = ["MessageInflater", "negotiated"]

#: The bytes a sender removes from the end of each compressed message (RFC 7692 §7.2.1), put back to inflate it.
DEFLATE_TAIL = b"\x00\x00\xff\xff"


def negotiated(headers: Mapping[str, str]) -> bool:
    """Whether an HTTP 101 response's headers (lower-case names) accept permessage-deflate (RFC 7692 §5)."""
    return "permessage-deflate" in headers.get("sec-websocket-extensions", "").lower()


class MessageInflater:
    """One direction's compressed messages, inflated in order (RFC 7692 §7.2.2).

    One inflater is kept across messages: right with context takeover, and
    without it too (a sender that resets its window still emits valid data for
    a reader that keeps one).

    Args:
        max_size: the largest inflated message, in bytes.
    """

    __slots__ = ("_inflater", "_max_size")

    def __init__(self, max_size: int) -> None:
        self._inflater = zlib.decompressobj(-15)  # raw deflate: no zlib header (§7.2.1)
        self._max_size = max_size

    def inflate(self, payload: bytes) -> bytes:
        """The message whose compressed payload (RSV1 set on its first frame) is ``payload``.

        Raises:
            zlib.error: the payload is not deflate data that follows the messages before it, or it
                inflates past ``max_size``; the inflater is of no further use then.
        """
        data = self._inflater.decompress(payload + DEFLATE_TAIL, self._max_size)
        if self._inflater.unconsumed_tail:
            raise zlib.error(f"inflates to more than {self._max_size} bytes")
        return data
