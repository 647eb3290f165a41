"""Pure-Python streaming decoders: feed bytes in chunks of any size, get frames out.

Same names, results and errors as ``_stream_c``; docs/streaming.md is the
user's guide. The rules both backends follow:

- **Chunking never shows.** For any split of a stream into chunks, the values
  (and their end offsets) are exactly those of feeding it whole, and so is the
  error, if any: a header is checked as its bytes arrive, as
  ``decode_ws_header`` does, so an invalid prefix fails at the same byte
  whatever the chunking.
- **Offsets are stream offsets.** ``position`` counts every byte fed so far;
  ``feed(data, offsets=True)`` pairs each value with the stream offset one past
  its last byte; every error's ``offset`` is a stream offset.
- **Errors are final.** The first error fails the stream: ``feed()`` raises it
  at once if it has no value to return, else returns the values decoded before
  it and raises the error on the next call. ``error`` holds it; every later
  ``feed()`` raises it again until ``reset()``.
- **Bounded.** A stream holds at most one frame header (14 bytes; an MQTT fixed
  header is 5) plus the payload of the message being reassembled, and refuses
  a message, frame or packet over its limit from its header, before buffering
  any of it: WebSocket close code 1009, MQTT reason code 0x95.
"""

from __future__ import annotations

import sys
from typing import Any, List, Optional

from . import _codec_py, _transport_py
from .buffer import DEFAULT_MAX_INFLATED, byte_view
from ._transport_py import _close, _read_header, _read_vbi, _xor
from .errors import DecodeError, IncompleteError, MalformedError, MqttPacketError, WebSocketFrameError
from .frames import MqttOtherPacket, MqttPacketType, WebSocketFrame, WebSocketMessage, WebSocketOpcode
from .reasons import ReasonNumbering

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "DiffusionStream", "MqttStream", "WebSocketStream"]

# What feed_into appends: bare values, (end, value) or (start, end, value).
SHAPE_VALUES, SHAPE_OFFSETS, SHAPE_SPANS = 0, 1, 2

#: Default ``max_message_size`` / ``max_packet_size`` of the streams: 16 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024

_MAX_HEADER = 14  # RFC 6455 §5.2: 2 + 8 (64-bit length) + 4 (masking key)
_MAX_MQTT_HEADER = 5  # type byte + a 4-byte Remaining Length (MQTT 5 §2.1.4)
_TEXT = WebSocketOpcode.TEXT
_CLOSE = WebSocketOpcode.CLOSE
_OPCODES = tuple(WebSocketOpcode(op) if op in (0, 1, 2, 8, 9, 10) else None for op in range(16))
_PACKET_TYPES = tuple([None] + [MqttPacketType(n) for n in range(1, 16)])


def _check_limit(value: Any, name: str) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} must be an int >= 0, not {value!r}")
    if value > sys.maxsize:
        raise ValueError(f"{name} must be at most {sys.maxsize}, not {value!r}")
    return value


def _shifted(error: DecodeError, delta: int) -> DecodeError:
    """``error`` with its offset moved by ``delta`` (from a buffer's to the stream's)."""
    error.offset += delta
    error.args = (error.args[0], error.offset) + error.args[2:]
    return error


class _Stream:
    """What every stream shares: the position, the error state and ``feed``."""

    def __init__(self) -> None:
        self._position = 0
        self._error: Optional[DecodeError] = None

    @property
    def position(self) -> int:
        """The stream offset of the next byte: how many bytes were fed so far."""
        return self._position

    @property
    def error(self) -> Optional[DecodeError]:
        """The error that failed the stream, or None; cleared by :meth:`reset`."""
        return self._error

    def feed(self, data: Any, /, *, offsets: bool = False, spans: bool = False) -> List[Any]:
        """Decode the next bytes of the stream; return the values they complete.

        Args:
            data: the next bytes, any C-contiguous buffer, of any size (empty
                is allowed). Bytes of an unfinished value are kept (copied)
                until the rest arrives; ``data`` may be reused once this returns.
            offsets: return ``(end, value)`` pairs, ``end`` being the stream
                offset one past the value's last byte, instead of bare values.
            spans: return ``(start, end, value)`` triples, ``start`` being the
                stream offset of the value's first byte (its first frame
                header, or the packet's fixed header).

        Returns:
            The values completed by ``data``, in stream order (maybe none).

        Raises:
            DecodeError: the stream is invalid (see the class for which
                subclass); the stream has failed. If values precede the error
                in ``data``, they are returned and the error is raised by the
                next call instead. A failed stream raises its error again on
                every call until :meth:`reset`.
            TypeError: ``data`` is not a C-contiguous buffer.
            ValueError: both ``offsets`` and ``spans``.
        """
        if offsets and spans:
            raise ValueError("offsets and spans are exclusive: spans include the end offsets")
        if self._error is not None:
            raise self._error
        out: List[Any] = []
        self.feed_into(byte_view(data), out, SHAPE_SPANS if spans else SHAPE_OFFSETS if offsets else SHAPE_VALUES)
        if self._error is not None and not out:
            raise self._error
        return out

    def feed_into(self, view: Any, out: List[Any], shape: int) -> None:
        """``feed`` for the capture loop: appends to ``out``; a decode error is kept in ``_error``, not raised.

        ``view`` is a byte memoryview; the stream must not have failed already.
        """
        base = self._position
        self._position = base + len(view)
        try:
            self._process(view, base, out, shape)
        except DecodeError as error:
            self._error = error

    def reset(self, position: Optional[int] = None) -> None:
        """Forget any unfinished frame and the error: decoding starts afresh at a frame boundary.

        For a stream that lost bytes (a capture with a gap): the next byte fed
        must start a frame (or packet).

        Args:
            position: the stream offset of that next byte (e.g. past the gap);
                None keeps :attr:`position` as it is.
        """
        if position is not None:
            if type(position) is not int or position < 0:
                raise ValueError(f"position must be an int >= 0, not {position!r}")
            self._position = position
        self._error = None
        self._clear()

    def _process(self, view: Any, base: int, out: List[Any], shape: int) -> None:  # pragma: no cover
        raise NotImplementedError

    def _clear(self) -> None:  # pragma: no cover
        raise NotImplementedError


class WebSocketStream(_Stream):
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
        if type(rsv_allowed) is not int or not 0 <= rsv_allowed <= 7:
            raise ValueError(f"rsv_allowed must be 0..7 (RSV1 is 4), not {rsv_allowed!r}")
        self._expect_masked = None if expect_masked is None else bool(expect_masked)
        self._rsv_allowed = rsv_allowed
        self._minimal_length = bool(minimal_length)
        self._max = _check_limit(max_message_size, "max_message_size")
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
                    raise _shifted(error, start) from None
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


class DiffusionStream(WebSocketStream):
    """An incremental decoder of Diffusion over WebSocket, one direction (docs/diffusion.md §3, §5).

    A :class:`WebSocketStream` whose binary messages are decoded: the first
    one as the :class:`ConnectionResponse` (server to client; pass
    ``connection_response=False`` for the client's direction, or for a stream
    joined after the handshake), every later one with :func:`decode_message`
    (:class:`ServiceRequest`, :class:`AbortNotification`,
    :class:`CloseRequest`, :class:`OtherMessage`). PING and PONG frames come
    out as :class:`WebSocketFrame`, the close frame as :class:`WebSocketClose`.

    Args:
        connection_response: the first binary message is the connection response.
        numbering, strict, max_inflated: as for :func:`decode_message`.
        expect_masked, minimal_length, max_message_size: as for
            :class:`WebSocketStream` (no RSV bits are allowed).

    Raises (from :meth:`feed`):
        WebSocketFrameError: as for :class:`WebSocketStream`, and close code
            1003 for a TEXT message (Diffusion sends binary messages only).
        MalformedError, UnknownValueError: a binary message that is not a
            valid Diffusion message (or connection response). The message says
            what is wrong and where in the message; ``offset`` is the stream
            offset of the message's first byte. A message that ends early is
            malformed: a WebSocket message is whole. The stream fails, as for
            any error; to skip bad messages and go on, use a
            :class:`WebSocketStream` and decode each message yourself.
    """

    def __init__(
        self, *, connection_response: bool = True, numbering: Any = ReasonNumbering.WIRE, strict: bool = False,
        max_inflated: int = DEFAULT_MAX_INFLATED, expect_masked: Optional[bool] = None, minimal_length: bool = True,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        super().__init__(expect_masked=expect_masked, minimal_length=minimal_length, max_message_size=max_message_size)
        self._numbering = ReasonNumbering(numbering)
        self._strict = bool(strict)
        self._max_inflated = max_inflated
        self._awaiting_response = bool(connection_response)
        self._response: Any = None

    @property
    def response(self) -> Any:
        """The :class:`ConnectionResponse` once read, else None (kept by :meth:`reset`)."""
        return self._response

    def _on_message(self, opcode: int, payload: bytes, rsv: int, masked: bool, start: int) -> Any:
        if opcode == _TEXT:
            raise WebSocketFrameError("TEXT message in a Diffusion stream (Diffusion sends binary messages only)",
                                      start, 1003)
        if self._awaiting_response:
            what = "connection response"
            try:
                response, end = _codec_py.decode_connection_response(payload, strict=self._strict)
                if end != len(payload):
                    raise MalformedError(f"{len(payload) - end} bytes after the end of the connection response", end)
            except DecodeError as error:
                raise _in_message(error, what, start) from None
            self._awaiting_response = False
            self._response = response
            return response
        try:
            return _codec_py.decode_message(payload, numbering=self._numbering, strict=self._strict,
                                            max_inflated=self._max_inflated)
        except DecodeError as error:
            raise _in_message(error, "Diffusion message", start) from None


def _in_message(error: DecodeError, what: str, start: int) -> DecodeError:
    """An error inside a whole message, restated at the message's stream offset."""
    kind = MalformedError if isinstance(error, IncompleteError) else type(error)
    return kind(f"{what}: {error.args[0]} (byte {error.offset} of the message)", start)


class MqttStream(_Stream):
    """An incremental decoder of one direction of an MQTT connection (MQTT 5.0 §2, 3.1.1 §2).

    Packets are delimited by their Remaining Length. DISCONNECT and CONNACK
    come out decoded (:class:`MqttDisconnect`, :class:`MqttConnack`); any other
    packet as an :class:`MqttOtherPacket` whose body is skipped, not buffered
    (``body`` is empty) unless ``keep_bodies`` is set.

    States: between packets; inside a fixed header (:attr:`buffered` bytes
    held); inside a body; failed (:attr:`error`).

    Args:
        version, strict: as for :func:`decode_mqtt_packet`.
        max_packet_size: the longest packet, fixed header included (default
            16 MiB); longer fails with reason code 0x95 once its fixed header
            is read, skipped packets included.
        keep_bodies: keep the bodies of the other packets (buffered, up to
            ``max_packet_size``), as :func:`decode_mqtt_packet` returns them.
        closes_only: return only DISCONNECT and CONNACK; the other packets
            are delimited and checked as usual but not returned. Also an
            attribute.

    Raises (from :meth:`feed`):
        MqttPacketError: as :func:`decode_mqtt_packet` raises it, at the
            stream offset of the offending byte.
    """

    def __init__(
        self, *, version: Optional[int] = None, strict: bool = False,
        max_packet_size: int = DEFAULT_MAX_MESSAGE_SIZE, keep_bodies: bool = False, closes_only: bool = False,
    ) -> None:
        super().__init__()
        if version is not None and version not in (4, 5):
            raise ValueError(f"version must be 4, 5 or None, not {version!r}")
        self._version = version
        self._strict = bool(strict)
        self._max = _check_limit(max_packet_size, "max_packet_size")
        self._keep_bodies = bool(keep_bodies)
        self.closes_only = bool(closes_only)
        self._clear()

    @property
    def max_packet_size(self) -> int:
        """The longest packet accepted, fixed header included, in bytes."""
        return self._max

    @property
    def buffered(self) -> int:
        """How many bytes the stream holds for an unfinished packet."""
        return len(self._header) + (len(self._body) if self._body is not None else 0)

    def _clear(self) -> None:
        self._header = bytearray()
        self._remaining = -1  # body bytes still to come; -1 between packets
        self._body: Optional[bytearray] = None  # the packet so far, when it is kept
        self._first = 0
        self._start = 0

    def _read_fixed_header(self, avail: bytes, start: int) -> int:
        """Checks in :func:`decode_mqtt_packet`'s order; the header's size, or 0 if incomplete."""
        number, flags = avail[0] >> 4, avail[0] & 0x0F
        if number == 0:
            raise MqttPacketError("reserved packet type 0", start)
        if flags and number in (2, 14):
            raise MqttPacketError(f"{_PACKET_TYPES[number].name} flags 0x{flags:X} are not 0", start)
        try:
            remaining, header_size = _read_vbi(avail, 1, len(avail), "Remaining Length")
        except DecodeError as error:
            raise _shifted(error, start) from None
        if remaining < 0:
            return 0
        if header_size + remaining > self._max:
            raise MqttPacketError(
                f"packet of {header_size + remaining} bytes is over the {self._max}-byte limit", start, 0x95
            )
        self._remaining = remaining
        return header_size

    def _process(self, view: Any, base: int, out: List[Any], shape: int) -> None:
        n = len(view)
        pos = 0
        while True:
            if self._remaining < 0:
                if pos >= n:
                    return
                held = len(self._header)
                avail = bytes(self._header) + bytes(view[pos:pos + _MAX_MQTT_HEADER - held])
                start = base + pos - held
                header_size = self._read_fixed_header(avail, start)
                if not header_size:
                    self._header = bytearray(avail)
                    return
                pos += header_size - held
                self._header = bytearray()
                self._first = avail[0]
                self._start = start
                number = avail[0] >> 4
                keep = (self._keep_bodies and not self.closes_only) or number in (2, 14)
                self._body = bytearray(avail[:header_size]) if keep else None
            if self._remaining:
                take = min(self._remaining, n - pos)
                if not take:
                    return
                if self._body is not None:
                    self._body += view[pos:pos + take]
                pos += take
                self._remaining -= take
                if self._remaining:
                    return
            self._remaining = -1
            if self._body is None:
                if self.closes_only:
                    continue
                value = MqttOtherPacket(_PACKET_TYPES[self._first >> 4], self._first & 0x0F, b"")
            else:
                packet = bytes(self._body)
                self._body = None
                try:
                    value, _ = _transport_py.decode_mqtt_packet(packet, version=self._version, strict=self._strict)
                except DecodeError as error:
                    raise _shifted(error, self._start) from None
            if shape == SHAPE_VALUES:
                out.append(value)
            elif shape == SHAPE_OFFSETS:
                out.append((base + pos, value))
            else:
                out.append((self._start, base + pos, value))
