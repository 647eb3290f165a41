"""WebSocket (RFC 6455), pure side: the frame codec, the stream decoder and the HTTP upgrade head.

Same names, results and errors as ``_c.pyx`` beside it. Decoders take any
C-contiguous buffer and a start offset and return ``(value, next_offset)``;
encoders return bytes. Wire facts: RFC 6455 and RFC 7692; the choices below are
documented in docs/transports.md and docs/streaming.md, and are identical in
``_c.pyx``:

- A frame's header is checked field by field as its bytes arrive, so a prefix
  that is already invalid is malformed, not incomplete. Incomplete errors point
  at the frame's first byte (where a streaming caller resumes).
- Lengths must be in their shortest form unless ``minimal_length=False``; the
  64-bit length's top bit must be clear. A length over ``max_payload`` fails
  with close code 1009 before anything is allocated.
- RSV bits must be allowed by ``rsv_allowed``; control frames never carry them.
- ``expect_masked`` states the decoder's side: True for a server (client frames
  are masked), False for a client, None (the default) accepts both, for readers
  of captures; the frame reports ``mask_key`` either way.
- The stream decoder follows the rules of every stream (``closecodec/buffer/_py.py``).
"""

from __future__ import annotations

from operator import index
from typing import Any, Dict, List, Optional, Tuple

from ..buffer import DEFAULT_MAX_MESSAGE_SIZE, byte_view, start_reading
from ..buffer._py import SHAPE_OFFSETS, SHAPE_VALUES, Stream, check_limit, shifted
from ..errors import DecodeError, EncodeError, IncompleteError, WebSocketFrameError
from ..reasons import websocket_close_code_allowed_on_wire
from .values import WebSocketClose, WebSocketFrame, WebSocketHeader, WebSocketMessage, WebSocketOpcode

__all__ = [
    "DEFAULT_MAX_WS_PAYLOAD",
    "WebSocketStream",
    "decode_ws_frame",
    "decode_ws_header",
    "encode_ws_frame",
    "parse_http_head",
    "unmask_ws_payload",
    "ws_tile",
]

#: Default ``max_payload`` of :func:`decode_ws_frame`: 16 MiB.
DEFAULT_MAX_WS_PAYLOAD = 16 * 1024 * 1024

_MAX_CONTROL_PAYLOAD = 125
_MAX_CLOSE_REASON = 123
_MAX_HEADER = 14  # RFC 6455 §5.2: 2 + 8 (64-bit length) + 4 (masking key)
_TEXT = WebSocketOpcode.TEXT
_CLOSE = WebSocketOpcode.CLOSE
_OPCODES = tuple(WebSocketOpcode(op) if op in (0, 1, 2, 8, 9, 10) else None for op in range(16))



def unmask_ws_payload(data: Any, mask_key: Any, phase: int = 0, /) -> bytes:
    """Unmask (or mask: the same XOR) a WebSocket payload (RFC 6455 §5.3).

    Args:
        data: the payload bytes, any C-contiguous buffer.
        mask_key: the frame's 4-byte masking key.
        phase: the payload position of ``data[0]`` modulo 4, for a payload
            unmasked in pieces.

    Returns:
        ``data[i] ^ mask_key[(phase + i) % 4]`` for every byte, as bytes.

    Raises:
        TypeError: ``mask_key`` is not 4 bytes.
        ValueError: ``phase`` is not 0..3.
    """
    key = bytes(byte_view(mask_key))
    if len(key) != 4:
        raise TypeError("a masking key is 4 bytes")
    phase = index(phase)
    if not 0 <= phase <= 3:
        raise ValueError(f"phase {phase} is not 0..3")
    return _xor(bytes(byte_view(data)), key[phase:] + key[:phase])


def _xor(data: bytes, key: bytes) -> bytes:
    size = len(data)
    if not size:
        return b""
    # One big-integer XOR: far faster in CPython than a loop over bytes.
    keys = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(keys, "little")).to_bytes(size, "little")


def _read_header(
    data: Any, start: int, size: int, expect_masked: Optional[bool], rsv_allowed: int, minimal_length: bool,
    max_payload: Optional[int],
) -> Tuple[bool, int, Any, Optional[bytes], int, int]:
    """Header fields and the payload's offset; the layout is RFC 6455 §5.2's."""
    if size - start < 2:
        raise IncompleteError("WebSocket frame header", start)
    byte0 = data[start]
    fin = byte0 & 0x80 != 0
    rsv = (byte0 >> 4) & 0x07
    opcode = _OPCODES[byte0 & 0x0F]
    if opcode is None:
        raise WebSocketFrameError(f"reserved opcode {byte0 & 0x0F}", start)
    control = opcode >= 8
    if rsv & ~(0 if control else rsv_allowed):
        what = "on a control frame" if control else "and no negotiated extension allows them"
        raise WebSocketFrameError(f"RSV bits {rsv:#x} are set {what}", start)
    if control and not fin:
        raise WebSocketFrameError(f"control frame (opcode {int(opcode)}) is fragmented (FIN clear)", start)
    byte1 = data[start + 1]
    masked = byte1 & 0x80 != 0
    if expect_masked is not None and masked != expect_masked:
        which = "unmasked frame where masking is required" if expect_masked else "masked frame where masking is forbidden"
        raise WebSocketFrameError(which, start + 1)
    length = byte1 & 0x7F
    if control and length > _MAX_CONTROL_PAYLOAD:
        raise WebSocketFrameError("control frame payload longer than 125 bytes", start + 1)
    pos = start + 2
    length_at = start + 1
    if length >= 126:
        width = 2 if length == 126 else 8
        length_at = pos
        if width == 8 and pos < size and data[pos] & 0x80:
            raise WebSocketFrameError("64-bit payload length has its most significant bit set", pos)
        if size - pos < width:
            raise IncompleteError("WebSocket frame header", start)
        length = int.from_bytes(data[pos:pos + width], "big")
        if minimal_length and length < (126 if width == 2 else 0x10000):
            raise WebSocketFrameError(f"payload length {length} is not in its shortest form", pos)
        pos += width
    if max_payload is not None and length > max_payload:
        raise WebSocketFrameError(f"payload of {length} bytes is over the {max_payload}-byte limit", length_at, 1009)
    mask_key = None
    if masked:
        if size - pos < 4:
            raise IncompleteError("WebSocket frame header", start)
        mask_key = bytes(data[pos:pos + 4])
        pos += 4
    return fin, rsv, opcode, mask_key, length, pos


def _options(max_payload: Any, rsv_allowed: Any) -> None:
    if max_payload is not None and (type(max_payload) is not int or max_payload < 0):
        raise ValueError(f"max_payload must be None or an int >= 0, not {max_payload!r}")
    _check_rsv(rsv_allowed)


def _check_rsv(rsv_allowed: Any) -> None:
    if type(rsv_allowed) is not int or not 0 <= rsv_allowed <= 7:
        raise ValueError(f"rsv_allowed must be 0..7 (RSV1 is 4), not {rsv_allowed!r}")


def decode_ws_header(
    buf: Any, offset: int = 0, /, *, expect_masked: Optional[bool] = None, rsv_allowed: int = 0,
    minimal_length: bool = True, max_payload: Optional[int] = None,
) -> Tuple[WebSocketHeader, int]:
    """Decode a WebSocket frame header; return ``(header, payload_offset)``.

    The payload itself is not needed (see :func:`decode_ws_frame` for whole
    frames); a streaming reader uses this for data frames too large to buffer.

    Args:
        expect_masked: True if this endpoint is a server (frames must be
            masked), False if a client (frames must not be), None to accept both.
        rsv_allowed: the RSV bits a negotiated extension allows on data frames
            (RSV1 is 4, RSV2 2, RSV3 1); control frames never carry any.
        minimal_length: refuse lengths not in their shortest form (RFC 6455
            §5.2 requires it); False accepts them, as some peers do.
        max_payload: refuse a longer payload with close code 1009; None: no limit.

    Raises:
        IncompleteError: the header ends early (offset: the frame's first byte).
        WebSocketFrameError: a header no further bytes can make valid; its
            ``close_code`` is 1002 (or 1009 over ``max_payload``).
    """
    data, start, size = start_reading(buf, offset)
    _options(max_payload, rsv_allowed)
    fin, rsv, opcode, mask_key, length, pos = _read_header(
        data, start, size, expect_masked, rsv_allowed, minimal_length, max_payload
    )
    return WebSocketHeader(fin, rsv, opcode, mask_key, length), pos


def decode_ws_frame(
    buf: Any, offset: int = 0, /, *, expect_masked: Optional[bool] = None, rsv_allowed: int = 0,
    minimal_length: bool = True, max_payload: Optional[int] = DEFAULT_MAX_WS_PAYLOAD,
) -> Tuple[Any, int]:
    """Decode one whole WebSocket frame, payload unmasked; return ``(frame, next_offset)``.

    A close frame becomes a :class:`WebSocketClose` whose body is checked (RFC
    6455 §5.5.1, §7.4); any other frame a :class:`WebSocketFrame`.

    Args:
        expect_masked, rsv_allowed, minimal_length: as for :func:`decode_ws_header`.
        max_payload: the longest payload accepted (default
            :data:`DEFAULT_MAX_WS_PAYLOAD`); longer fails at once, with close
            code 1009, before anything is allocated. None: no limit.

    Raises:
        IncompleteError: the frame ends early (offset: the frame's first byte).
        WebSocketFrameError: the frame can never be valid; ``close_code`` is
            what to answer: 1002 for a bad header, code or close length, 1007
            for a close reason that is not UTF-8, 1009 over ``max_payload``.
    """
    data, start, size = start_reading(buf, offset)
    _options(max_payload, rsv_allowed)
    fin, rsv, opcode, mask_key, length, pos = _read_header(
        data, start, size, expect_masked, rsv_allowed, minimal_length, max_payload
    )
    if size - pos < length:
        raise IncompleteError("WebSocket frame payload", start)
    end = pos + length
    payload = bytes(data[pos:end])
    if mask_key is not None:
        payload = _xor(payload, mask_key)
    if opcode != 8:
        return WebSocketFrame(opcode, payload, fin, rsv, mask_key), end
    return _close(payload, pos, mask_key), end


def _close(payload: bytes, pos: int, mask_key: Optional[bytes]) -> WebSocketClose:
    """A close body (RFC 6455 §5.5.1): empty, or a 2-byte code and a UTF-8 reason."""
    length = len(payload)
    if length == 0:
        return WebSocketClose(None, "", mask_key)
    if length == 1:
        raise WebSocketFrameError("close payload of 1 byte (a status code takes 2)", pos)
    code = payload[0] << 8 | payload[1]
    if not websocket_close_code_allowed_on_wire(code):
        raise WebSocketFrameError(f"close code {code} may not be sent in a close frame", pos)
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise WebSocketFrameError("invalid UTF-8 in the close reason", pos + 2 + error.start, 1007) from None
    return WebSocketClose(code, reason, mask_key)


def _ws_header_bytes(first: int, masked: bool, length: int) -> bytes:
    mask_bit = 0x80 if masked else 0
    if length < 126:
        return bytes((first, mask_bit | length))
    if length < 0x10000:
        return bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
    return bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")


def encode_ws_frame(frame: Any, /) -> bytes:
    """Encode a WebSocket frame: header (shortest length form), masking key, masked payload.

    Args:
        frame: a :class:`WebSocketClose` or :class:`WebSocketFrame`; it is
            masked with its ``mask_key`` if it has one.

    Raises:
        EncodeError: not a frame; a close code that may not be sent (1004-1006,
            1015, below 1000, 1016-2999, 5000 and up); a close reason over 123
            UTF-8 bytes or not encodable; a control frame that is fragmented,
            carries RSV bits or has a payload over 125 bytes.
    """
    kind = type(frame)
    if kind is WebSocketClose:
        code = frame.code
        if code is None:
            payload = b""
        else:
            if not websocket_close_code_allowed_on_wire(code):
                raise EncodeError(f"close code {int(code)} may not be sent in a close frame")
            try:
                reason = frame.reason.encode("utf-8")
            except UnicodeEncodeError:
                raise EncodeError("the close reason is not encodable as UTF-8 (lone surrogate)") from None
            if len(reason) > _MAX_CLOSE_REASON:
                raise EncodeError(f"close reason of {len(reason)} UTF-8 bytes is over the 123-byte limit")
            payload = int(code).to_bytes(2, "big") + reason
        first = 0x88
    elif kind is WebSocketFrame:
        payload = frame.payload
        opcode = frame.opcode
        if opcode >= 8:
            if not frame.fin:
                raise EncodeError(f"a control frame ({opcode.name}) cannot be fragmented")
            if frame.rsv:
                raise EncodeError(f"a control frame ({opcode.name}) carries no RSV bits")
            if len(payload) > _MAX_CONTROL_PAYLOAD:
                raise EncodeError(f"control frame payload of {len(payload)} bytes is over the 125-byte limit")
        first = (0x80 if frame.fin else 0) | frame.rsv << 4 | int(opcode)
    else:
        raise EncodeError(f"a WebSocket frame is a WebSocketFrame or WebSocketClose, not {kind.__name__}")
    mask_key = frame.mask_key
    header = _ws_header_bytes(first, mask_key is not None, len(payload))
    if mask_key is None:
        return header + payload
    return header + mask_key + _xor(payload, mask_key)


# -- the stream decoder (docs/streaming.md) --------------------------------------------


class WebSocketStream(Stream):
    """An incremental decoder of one direction of a WebSocket connection (RFC 6455 §5).

    Feed it the bytes after the HTTP upgrade, in chunks of any size; it returns
    a :class:`WebSocketMessage` for each whole data message (its fragments
    reassembled, control frames allowed between them), a
    :class:`WebSocketFrame` for each PING and PONG and a
    :class:`WebSocketClose` for the close frame.

    States: between frames; inside a frame header (:attr:`buffered` bytes
    held); inside a payload; inside a fragmented message (:attr:`in_message`);
    closed (:attr:`closed`: a close frame was read; any byte after it is a
    protocol error, RFC 6455 §5.5.1 and §1.4); failed (:attr:`error`).

    Args:
        expect_masked: True for a server's view (client frames must be
            masked), False for a client's, None (default) to accept both.
        rsv_allowed: RSV bits a negotiated extension allows on data frames
            (RSV1 is 4); the payload is returned as it is, not inflated.
        minimal_length: refuse lengths not in their shortest form (RFC 6455 §5.2).
        max_message_size: the longest message payload (all its fragments) or
            control payload, in bytes (default 16 MiB); longer fails with close
            code 1009 as soon as the header of the frame that crosses it is read.
        closes_only: return only the close frame: data messages, pings and
            pongs are checked and delimited as usual (the same errors) but not
            returned, and their payloads are not copied. Also an attribute; a
            change applies from the next message.

    Raises (from :meth:`feed`):
        WebSocketFrameError: close code 1002 for a bad header, a continuation
            with no message to continue, a new data message before the last
            ended, a bad close body or bytes after the close frame; 1007 for a
            close reason that is not UTF-8; 1009 over ``max_message_size``.
    """

    def __init__(
        self, *, expect_masked: Optional[bool] = None, rsv_allowed: int = 0, minimal_length: bool = True,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, closes_only: bool = False,
    ) -> None:
        super().__init__()
        _check_rsv(rsv_allowed)
        self._expect_masked = None if expect_masked is None else bool(expect_masked)
        self._rsv_allowed = rsv_allowed
        self._minimal_length = bool(minimal_length)
        self._max = check_limit(max_message_size, "max_message_size")
        self.closes_only = bool(closes_only)
        self._clear()

    @property
    def max_message_size(self) -> int:
        """The longest message or control payload accepted, in bytes."""
        return self._max

    @property
    def closed(self) -> bool:
        """Whether the close frame was read."""
        return self._closed

    @property
    def in_message(self) -> bool:
        """Whether a fragmented data message is unfinished."""
        return self._message is not None

    @property
    def buffered(self) -> int:
        """How many bytes the stream holds for unfinished frames and messages."""
        held = len(self._header)
        if self._message is not None:
            held += len(self._message)
        if self._control is not None:
            held += len(self._control)
        return held

    def _clear(self) -> None:
        self._header = bytearray()
        self._remaining = -1  # payload bytes still to come; -1 between frames
        self._fin = True
        self._opcode = 0
        self._mask_key: Optional[bytes] = None
        self._length = 0
        self._payload_at = 0
        self._control: Optional[bytearray] = None
        self._message: Optional[bytearray] = None
        self._message_opcode = 0
        self._message_rsv = 0
        self._message_masked = False
        self._message_at = 0
        self._skip_message = False  # closes_only as it was when the current message started
        self._skipped_len = 0  # payload bytes of that message counted past (for max_message_size)
        self._frame_at = 0
        self._closed = False

    def _process(self, view: Any, base: int, out: List[Any], shape: int) -> None:
        n = len(view)
        pos = 0
        while True:
            if self._remaining < 0:
                if pos >= n:
                    return
                if self._closed:
                    raise WebSocketFrameError("bytes after the close frame", base + pos)
                held = len(self._header)
                avail = bytes(self._header) + bytes(view[pos:pos + _MAX_HEADER - held])
                start = base + pos - held
                try:
                    fin, rsv, opcode, mask_key, length, header_size = _read_header(
                        avail, 0, len(avail), self._expect_masked, self._rsv_allowed, self._minimal_length, None
                    )
                except IncompleteError:
                    self._header = bytearray(avail)
                    return
                except DecodeError as error:
                    raise shifted(error, start) from None
                pos += header_size - held
                self._header = bytearray()
                self._start_frame(fin, rsv, opcode, mask_key, length, start, header_size)
            if self._remaining:
                take = min(self._remaining, n - pos)
                if not take:
                    return
                if self._opcode < 8 and self._skip_message:
                    self._skipped_len += take  # a data frame nobody asked for: counted past, not copied
                else:
                    chunk = bytes(view[pos:pos + take])
                    if self._mask_key is not None:
                        phase = (self._length - self._remaining) & 3
                        chunk = _xor(chunk, self._mask_key[phase:] + self._mask_key[:phase])
                    (self._message if self._opcode < 8 else self._control).extend(chunk)  # type: ignore[union-attr]
                pos += take
                self._remaining -= take
                if self._remaining:
                    return
            self._remaining = -1
            value = self._end_frame(base + pos)
            if value is not None:
                if shape == SHAPE_VALUES:
                    out.append(value)
                elif shape == SHAPE_OFFSETS:
                    out.append((base + pos, value))
                else:
                    out.append((self._message_at if self._opcode < 8 else self._frame_at, base + pos, value))

    def _start_frame(self, fin: bool, rsv: int, opcode: Any, mask_key: Optional[bytes], length: int, start: int,
                     header_size: int) -> None:
        """The checks that need the stream's state (RFC 6455 §5.4), then the limit."""
        total = length
        if opcode < 8:
            if opcode == 0:
                if self._message is None:
                    raise WebSocketFrameError("continuation frame with no message to continue", start)
                total += len(self._message) + self._skipped_len
            elif self._message is not None:
                raise WebSocketFrameError(f"new {opcode.name} message before the fragmented message ended", start)
        if total > self._max:
            length_at = start + (1 if header_size - (4 if mask_key is not None else 0) == 2 else 2)
            raise WebSocketFrameError(f"payload reaches {total} bytes, over the {self._max}-byte limit", length_at, 1009)
        self._frame_at = start
        if opcode >= 8:
            self._control = bytearray()
        elif opcode != 0:
            self._skip_message = self.closes_only
            self._skipped_len = 0
            self._message = bytearray()
            self._message_opcode = int(opcode)
            self._message_rsv = rsv
            self._message_masked = mask_key is not None
            self._message_at = start
        self._fin = fin
        self._opcode = int(opcode)
        self._mask_key = mask_key
        self._length = length
        self._remaining = length
        self._payload_at = start + header_size

    def _end_frame(self, end: int) -> Any:
        if self._opcode >= 8:
            payload = bytes(self._control)  # type: ignore[arg-type]
            self._control = None
            if self._opcode == _CLOSE:
                close = _close(payload, self._payload_at, self._mask_key)
                self._closed = True
                return close
            if self.closes_only:
                return None
            return WebSocketFrame(_OPCODES[self._opcode], payload, True, 0, self._mask_key)
        if not self._fin:
            return None
        if self._skip_message:
            self._message = None
            return None
        payload = bytes(self._message)  # type: ignore[arg-type]
        self._message = None
        return self._on_message(self._message_opcode, payload, self._message_rsv, self._message_masked,
                                self._message_at)

    def _on_message(self, opcode: int, payload: bytes, rsv: int, masked: bool, start: int) -> Any:
        return WebSocketMessage(opcode, payload, rsv, masked)


# -- mid-stream recognition (docs/capture.md, "Mid-stream recognition") -------------

#: The longest whole, unfragmented, uncompressed text frame whose payload ws_tile checks as UTF-8.
TILE_TEXT_CHECKED = 1024


def ws_tile(data: Any, start: int, max_payload: int, /) -> Optional[Tuple[int, int, int, bool, bool]]:
    """Whether WebSocket frames tile ``data`` from ``start``: the test of a stream seen mid-way.

    Walks the frames that are whole in ``data`` by RFC 6455 (§5.2, §5.4, §5.5)
    and RFC 7692 (§6): defined opcodes; RSV2 and RSV3 clear; RSV1 only on the
    first frame of a data message; control frames final, at most 125 bytes;
    lengths in their shortest form and at most ``max_payload``; every frame
    masked alike; a continuation only inside a fragmented message (or first),
    a new data message only outside one; no empty non-final fragment; a close
    body empty or a code allowed on the wire with a UTF-8 reason; nothing
    after a close; a whole unfragmented uncompressed text frame of at most
    ``TILE_TEXT_CHECKED`` bytes valid UTF-8.

    Raises:
        TypeError: ``data`` is not a bytes-like object.
        ValueError: ``start`` is outside it, or ``max_payload`` is not an int >= 0.

    Returns:
        None when a rule is broken, else ``(end, frames, masked, closed,
        compressed, fragmented)``: where the first frame not whole in
        ``data`` starts (``len(data)`` when there is none), how many frames
        are whole, their masking (1, 0, or -1 before the first header),
        whether the last of them is a close, whether a data frame had RSV1
        set, whether a fragmented message is open. From ``end`` on, two walks
        that give the same result but for ``frames`` go on alike.
    """
    view, pos, size = start_reading(data, start)
    if type(max_payload) is not int or max_payload < 0:
        raise ValueError(f"max_payload must be an int >= 0, not {max_payload!r}")
    start = pos
    frames = 0
    masked = -1
    fragmented = False
    closed = compressed = False
    while True:
        try:
            fin, rsv, opcode, mask_key, length, payload_at = _read_header(view, pos, size, None, 4, True, max_payload)
        except IncompleteError:
            return pos, frames, masked, closed, compressed, fragmented
        except WebSocketFrameError:
            return None
        side = 0 if mask_key is None else 1
        if closed or masked not in (-1, side):
            return None
        masked = side
        if opcode < 8:
            # A continuation outside a message is let pass first: the stream may start inside one.
            if (opcode == 0) != fragmented and (opcode != 0 or pos != start) or rsv and opcode == 0:
                return None
            if not fin and length == 0:
                return None
            fragmented = not fin
            compressed = compressed or rsv != 0
        if size - payload_at < length:
            return pos, frames, masked, closed, compressed, fragmented
        end = payload_at + length
        if opcode == 8 or opcode == 1 and fin and not rsv and length <= TILE_TEXT_CHECKED:
            payload = bytes(view[payload_at:end])
            if mask_key is not None:
                payload = _xor(payload, mask_key)
            if opcode == 8:
                try:
                    _close(payload, payload_at, mask_key)
                except WebSocketFrameError:
                    return None
                closed = True
            else:
                try:
                    payload.decode("utf-8")
                except UnicodeDecodeError:
                    return None
        frames += 1
        pos = end


# -- HTTP heads (WebSocket upgrades) -------------------------------------------------


def parse_http_head(data: Any, /, names: Optional[Tuple[bytes, ...]] = None,
                    ) -> Optional[Tuple[str, Dict[str, str], int]]:
    """A complete HTTP head at the start of ``data``: ``(first line, headers, size)``, else None.

    The head ends at the first empty line (``\\r\\n\\r\\n``; ``size`` counts
    it), is decoded as Latin-1 and split into lines at ``\\r\\n``. Headers maps
    each name (stripped, lowercased) to its value (stripped); repeated names
    are joined with ``", "``; lines without a colon are left out. ``names``, a
    tuple of lowercase names as bytes, keeps only those headers.

    Raises:
        TypeError: ``data`` is not a bytes-like object, or ``names`` not a
            tuple of bytes.
    """
    if names is not None and (type(names) is not tuple or any(type(name) is not bytes for name in names)):
        raise TypeError("names must be a tuple of bytes")
    data = bytes(byte_view(data))
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            if names is not None and key.encode("latin-1") not in names:
                continue
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return lines[0], headers, end + 4
