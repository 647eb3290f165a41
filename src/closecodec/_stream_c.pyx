# Compiled streaming decoders: same names, results and errors as _stream_py.py,
# whose module docstring records the rules both follow (docs/streaming.md).
#
# Headers are parsed in C by _transport_c's cimported functions, payloads are
# unmasked straight from the caller's buffer into their bytes object (or into
# the message buffer when they span chunks), and values are built with
# __new__ and direct field writes. Every read of a chunk is preceded by a
# comparison with its size, so boundscheck/wraparound are off for that reason
# only.
# cython: boundscheck=False, wraparound=False

from cpython.buffer cimport PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

from closecodec.buffer._c cimport Reader, open_reader
from closecodec._transport_c cimport WsHeader, mqtt_packet_from, read_close, read_vbi, read_ws_header, xor_mask
from closecodec.mqtt.values cimport MqttOtherPacket
from closecodec.websocket.values cimport WebSocketFrame, WebSocketMessage

import sys

from closecodec import _codec_c
from closecodec.buffer import DEFAULT_MAX_INFLATED
from closecodec.errors import DecodeError, IncompleteError, MalformedError, MqttPacketError, WebSocketFrameError
from closecodec.frames import MqttPacketType, WebSocketOpcode
from closecodec.reasons import ReasonNumbering

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "DiffusionStream", "MqttStream", "WebSocketStream"]

#: Default ``max_message_size`` / ``max_packet_size`` of the streams: 16 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024

cdef enum:
    MAX_HEADER = 14  # RFC 6455 §5.2: 2 + 8 (64-bit length) + 4 (masking key)
    MAX_MQTT_HEADER = 5  # type byte + a 4-byte Remaining Length (MQTT 5 §2.1.4)
    OPCODE_TEXT = 1
    OPCODE_CLOSE = 8
    # A message buffer larger than this is freed once its message is out.
    KEEP_BUFFER = 65536

cdef tuple OPCODES = tuple([WebSocketOpcode(op) if op in (0, 1, 2, 8, 9, 10) else None for op in range(16)])
cdef tuple PACKET_TYPES = tuple([None] + [MqttPacketType(n) for n in range(1, 16)])
cdef tuple RSV_VALUES = tuple(range(8))
cdef object decode_message = _codec_c.decode_message
cdef object decode_connection_response = _codec_c.decode_connection_response


cdef Py_ssize_t check_limit(object value, str name) except -1:
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} must be an int >= 0, not {value!r}")
    if value > sys.maxsize:
        raise ValueError(f"{name} must be at most {sys.maxsize}, not {value!r}")
    return value


cdef object shifted(object error, int64_t delta):
    """``error`` with its offset moved by ``delta`` (from a buffer's to the stream's)."""
    error.offset += delta
    error.args = (error.args[0], error.offset) + error.args[2:]
    return error


cdef object in_message(object error, str what, int64_t start):
    """An error inside a whole message, restated at the message's stream offset."""
    kind = MalformedError if isinstance(error, IncompleteError) else type(error)
    return kind(f"{what}: {error.args[0]} (byte {error.offset} of the message)", start)


cdef inline Py_ssize_t ws_header_size(unsigned char byte1) noexcept nogil:
    """The header's size from its second byte (RFC 6455 §5.2)."""
    cdef Py_ssize_t size = 6 if byte1 & 0x80 else 2
    byte1 &= 0x7F
    if byte1 == 126:
        size += 2
    elif byte1 == 127:
        size += 8
    return size


cdef inline void unmask_from(const unsigned char* src, unsigned char* dst, Py_ssize_t n, const unsigned char* key,
                             uint64_t phase) noexcept nogil:
    """xor_mask for bytes that start ``phase`` bytes into the payload (RFC 6455 §5.3)."""
    cdef unsigned char rotated[4]
    cdef int j
    for j in range(4):
        rotated[j] = key[(phase + j) & 3]
    xor_mask(src, dst, n, rotated)


cdef class _Stream:
    """What every stream shares: the position, the error state and ``feed``."""

    @property
    def position(self):
        """The stream offset of the next byte: how many bytes were fed so far."""
        return self._position

    @property
    def error(self):
        """The error that failed the stream, or None; cleared by :meth:`reset`."""
        return self._error

    def feed(self, data, /, *, bint offsets=False, bint spans=False):
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
        cdef Py_buffer view
        cdef Reader r
        cdef list out = []
        if offsets and spans:
            raise ValueError("offsets and spans are exclusive: spans include the end offsets")
        if self._error is not None:
            raise self._error
        open_reader(&r, data, 0, &view)
        try:
            self.feed_into(r.data, r.size, out, SHAPE_SPANS if spans else SHAPE_OFFSETS if offsets else SHAPE_VALUES)
            if self._error is not None and not out:
                raise self._error
            return out
        finally:
            PyBuffer_Release(&view)

    cdef int feed_into(self, const unsigned char* data, Py_ssize_t n, list out, int shape) except -1:
        """``feed`` for C callers: appends to ``out``; a decode error is kept in ``_error``, not raised.

        The stream must not have failed already (``_error`` is None).
        """
        cdef int64_t base = self._position
        self._position = base + n
        try:
            self.process(data, n, base, out, shape)
        except DecodeError as error:
            self._error = error
        return 0

    def reset(self, position=None):
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
        self.clear()

    cdef int process(self, const unsigned char* data, Py_ssize_t n, int64_t base, list out, int shape) except -1:
        return 0

    cdef void clear(self) noexcept:
        pass


cdef class WebSocketStream(_Stream):
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

    def __init__(self, *, expect_masked=None, rsv_allowed=0, minimal_length=True,
                 max_message_size=DEFAULT_MAX_MESSAGE_SIZE, closes_only=False):
        if type(rsv_allowed) is not int or not 0 <= rsv_allowed <= 7:
            raise ValueError(f"rsv_allowed must be 0..7 (RSV1 is 4), not {rsv_allowed!r}")
        self._expect_masked = -1 if expect_masked is None else (1 if expect_masked else 0)
        self._rsv_allowed = rsv_allowed
        self._minimal_length = bool(minimal_length)
        self._max = check_limit(max_message_size, "max_message_size")
        self.closes_only = closes_only
        self.clear()

    def __dealloc__(self):
        PyMem_Free(self._message)

    @property
    def max_message_size(self):
        """The longest message or control payload accepted, in bytes."""
        return self._max

    @property
    def closed(self):
        """Whether the close frame was read."""
        return self._closed

    @property
    def in_message(self):
        """Whether a fragmented data message is unfinished."""
        return self._in_message

    @property
    def buffered(self):
        """How many bytes the stream holds for unfinished frames and messages."""
        return self._header_len + self._message_len + self._control_len

    cdef void clear(self) noexcept:
        self._header_len = 0
        self._remaining = -1
        self._control_len = 0
        self._message_len = 0
        self._in_message = False
        self._closed = False
        if self._message_cap > KEEP_BUFFER:
            PyMem_Free(self._message)
            self._message = NULL
            self._message_cap = 0

    cdef int process(self, const unsigned char* data, Py_ssize_t n, int64_t base, list out, int shape) except -1:
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t held, need, take
        cdef int64_t start
        cdef const unsigned char* whole
        while True:
            if self._remaining < 0:
                if pos >= n:
                    return 0
                if self._closed:
                    raise WebSocketFrameError("bytes after the close frame", base + pos)
                held = self._header_len
                start = base + pos - held
                if held == 0 and n - pos >= 2 and n - pos >= ws_header_size(data[pos + 1]):
                    need = ws_header_size(data[pos + 1])  # the usual case: parsed in place
                    self.read_header(data + pos, need, start)
                    pos += need
                else:
                    # A header split across chunks: gathered, and checked as its bytes arrive.
                    need = 2 if held < 2 else ws_header_size(self._header[1])
                    take = min(need - held, n - pos)
                    memcpy(self._header + held, data + pos, take)
                    held += take
                    pos += take
                    if held >= 2 and held < ws_header_size(self._header[1]):
                        need = ws_header_size(self._header[1])
                        take = min(need - held, n - pos)
                        memcpy(self._header + held, data + pos, take)
                        held += take
                        pos += take
                    # The gathered bytes count as held only while the header is incomplete: a
                    # header that fails leaves `buffered` as it was, as in the pure twin.
                    if held < 2:
                        self._header_len = held
                        return 0
                    if held < ws_header_size(self._header[1]):
                        try:
                            read_ws_header(self._header, 0, held, self._expect_masked, self._rsv_allowed,
                                           self._minimal_length, -1, start, &self._h)
                        except IncompleteError:
                            self._header_len = held
                            return 0
                    self.read_header(self._header, held, start)
                    self._header_len = 0
                self.start_frame(start, <Py_ssize_t>(self._payload_at - start))
            whole = NULL
            if self._remaining:
                take = <Py_ssize_t>min(<uint64_t>self._remaining, <uint64_t>(n - pos))
                if take == 0:
                    return 0
                if self._h.opcode < 8 and self._skip_message:
                    self._skipped_len += take  # a data frame nobody asked for: counted past, not copied
                elif take == self._remaining and <uint64_t>self._remaining == self._h.length and (
                    self._h.opcode >= 8 or (self._h.fin and self._h.opcode != 0)
                ):
                    whole = data + pos  # the whole payload is here: no buffering
                else:
                    self.append(data + pos, take)
                pos += take
                self._remaining -= take
                if self._remaining:
                    return 0
            self._remaining = -1
            if self._h.opcode < 8 and self._skip_message:
                if self._h.fin:  # the end of a message nobody asked for: nothing to return
                    self._in_message = False
                    self._message_len = 0
                continue
            value = self.finish_frame(whole)
            if value is not None:
                if shape == SHAPE_VALUES:
                    out.append(value)
                elif shape == SHAPE_OFFSETS:
                    out.append((base + pos, value))
                else:
                    out.append((self._message_at if self._h.opcode < 8 else self._frame_at, base + pos, value))

    cdef int read_header(self, const unsigned char* data, Py_ssize_t size, int64_t start) except -1:
        # Its errors are at their stream offsets already (``start`` is where ``data`` starts).
        read_ws_header(data, 0, size, self._expect_masked, self._rsv_allowed, self._minimal_length, -1, start, &self._h)
        self._payload_at = start + self._h.payload_at
        return 0

    cdef int start_frame(self, int64_t start, Py_ssize_t header_size) except -1:
        """The checks that need the stream's state (RFC 6455 §5.4), then the limit."""
        cdef WsHeader* h = &self._h
        cdef uint64_t total = h.length
        if h.opcode < 8:
            if h.opcode == 0:
                if not self._in_message:
                    raise WebSocketFrameError("continuation frame with no message to continue", start)
                total += <uint64_t>(self._message_len + self._skipped_len)
            elif self._in_message:
                raise WebSocketFrameError(f"new {OPCODES[h.opcode].name} message before the fragmented message ended",
                                          start)
        if total > <uint64_t>self._max:
            length_at = start + (1 if header_size - (4 if h.masked else 0) == 2 else 2)
            raise WebSocketFrameError(f"payload reaches {total} bytes, over the {self._max}-byte limit", length_at, 1009)
        self._frame_at = start
        if h.opcode >= 8:
            self._control_len = 0
        elif h.opcode != 0:
            self._skip_message = self.closes_only
            self._skipped_len = 0
            self._in_message = True
            self._message_len = 0
            self._message_opcode = h.opcode
            self._message_rsv = h.rsv
            self._message_masked = h.masked
            self._message_at = start
        self._remaining = <int64_t>h.length
        return 0

    cdef int append(self, const unsigned char* data, Py_ssize_t n) except -1:
        """Payload bytes of a frame that spans chunks (or of a fragment): into the buffers."""
        cdef Py_ssize_t needed, capacity
        cdef unsigned char* grown
        cdef uint64_t phase = self._h.length - <uint64_t>self._remaining
        if self._h.opcode >= 8:  # kept as on the wire: read_close unmasks it
            memcpy(self._control + self._control_len, data, n)
            self._control_len += n
            return 0
        needed = self._message_len + n  # at most max_message_size: start_frame checked it
        if needed > self._message_cap:
            # Grown as bytes arrive, never from the length a header claims.
            capacity = max(needed, min(2 * self._message_cap, self._max), 256)
            grown = <unsigned char*>PyMem_Realloc(self._message, capacity)
            if grown is NULL:
                raise MemoryError()
            self._message = grown
            self._message_cap = capacity
        if self._h.masked:
            unmask_from(data, self._message + self._message_len, n, self._h.key, phase)
        else:
            memcpy(self._message + self._message_len, data, n)
        self._message_len = needed
        return 0

    cdef object finish_frame(self, const unsigned char* payload):
        """The value a complete frame makes, if any; ``payload`` is NULL when it was buffered. (The frames
        of a message skipped by ``closes_only`` end in :meth:`process`.)"""
        cdef WsHeader* h = &self._h
        cdef Py_ssize_t length = <Py_ssize_t>h.length
        cdef bytes data
        cdef WebSocketFrame frame
        if h.opcode >= 8:
            if payload is NULL:
                payload = self._control
            self._control_len = 0
            if h.opcode == OPCODE_CLOSE:
                try:
                    close = read_close(payload, length, 0, h)
                except DecodeError as error:
                    raise shifted(error, self._payload_at)
                self._closed = True
                return close
            if self.closes_only:
                return None
            frame = WebSocketFrame.__new__(WebSocketFrame)
            frame.opcode = OPCODES[h.opcode]
            frame.fin = True
            frame.rsv = 0
            frame.payload = PyBytes_FromStringAndSize(NULL, length)
            if h.masked:
                xor_mask(payload, <unsigned char*>PyBytes_AS_STRING(frame.payload), length, h.key)
                frame.mask_key = PyBytes_FromStringAndSize(<char*>h.key, 4)
            else:
                memcpy(PyBytes_AS_STRING(frame.payload), payload, length)
                frame.mask_key = None
            return frame
        if not h.fin:
            return None
        if payload is not NULL:
            data = PyBytes_FromStringAndSize(NULL, length)
            if h.masked:
                xor_mask(payload, <unsigned char*>PyBytes_AS_STRING(data), length, h.key)
            else:
                memcpy(PyBytes_AS_STRING(data), payload, length)
        else:
            data = PyBytes_FromStringAndSize(<char*>self._message, self._message_len)
            self._message_len = 0
            if self._message_cap > KEEP_BUFFER:
                PyMem_Free(self._message)
                self._message = NULL
                self._message_cap = 0
        self._in_message = False
        return self.on_message(self._message_opcode, data, self._message_rsv, self._message_masked, self._message_at)

    cdef object on_message(self, int opcode, bytes payload, int rsv, bint masked, int64_t start):
        cdef WebSocketMessage message = WebSocketMessage.__new__(WebSocketMessage)
        message.opcode = OPCODES[opcode]
        message.payload = payload
        message.rsv = RSV_VALUES[rsv]
        message.masked = masked
        return message


cdef class DiffusionStream(WebSocketStream):
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

    def __init__(self, *, connection_response=True, numbering=ReasonNumbering.WIRE, strict=False,
                 max_inflated=DEFAULT_MAX_INFLATED, expect_masked=None, minimal_length=True,
                 max_message_size=DEFAULT_MAX_MESSAGE_SIZE):
        super().__init__(expect_masked=expect_masked, minimal_length=minimal_length, max_message_size=max_message_size)
        self._numbering = ReasonNumbering(numbering)
        self._strict = bool(strict)
        self._max_inflated = max_inflated
        self._awaiting_response = bool(connection_response)
        self._response = None

    @property
    def response(self):
        """The :class:`ConnectionResponse` once read, else None (kept by :meth:`reset`)."""
        return self._response

    cdef object on_message(self, int opcode, bytes payload, int rsv, bint masked, int64_t start):
        cdef Py_ssize_t end
        if opcode == OPCODE_TEXT:
            raise WebSocketFrameError("TEXT message in a Diffusion stream (Diffusion sends binary messages only)",
                                      start, 1003)
        if self._awaiting_response:
            try:
                response, end = decode_connection_response(payload, strict=self._strict)
                if end != len(payload):
                    raise MalformedError(f"{len(payload) - end} bytes after the end of the connection response", end)
            except DecodeError as error:
                raise in_message(error, "connection response", start) from None
            self._awaiting_response = False
            self._response = response
            return response
        try:
            return decode_message(payload, numbering=self._numbering, strict=self._strict,
                                  max_inflated=self._max_inflated)
        except DecodeError as error:
            raise in_message(error, "Diffusion message", start) from None


cdef class MqttStream(_Stream):
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

    def __init__(self, *, version=None, strict=False, max_packet_size=DEFAULT_MAX_MESSAGE_SIZE, keep_bodies=False,
                 closes_only=False):
        if version is not None and version not in (4, 5):
            raise ValueError(f"version must be 4, 5 or None, not {version!r}")
        self._version = version
        self._strict = bool(strict)
        self._max = check_limit(max_packet_size, "max_packet_size")
        self._keep_bodies = bool(keep_bodies)
        self.closes_only = closes_only
        self.clear()

    def __dealloc__(self):
        PyMem_Free(self._body)

    @property
    def max_packet_size(self):
        """The longest packet accepted, fixed header included, in bytes."""
        return self._max

    @property
    def buffered(self):
        """How many bytes the stream holds for an unfinished packet."""
        return self._header_len + self._body_len

    cdef void clear(self) noexcept:
        self._header_len = 0
        self._remaining = -1
        self._body_len = 0
        self._keep = False
        if self._body_cap > KEEP_BUFFER:
            PyMem_Free(self._body)
            self._body = NULL
            self._body_cap = 0

    cdef Py_ssize_t read_fixed_header(self, const unsigned char* data, Py_ssize_t size, int64_t start) except -1:
        """Checks in decode_mqtt_packet's order; the header's size, or 0 if incomplete."""
        cdef int number = data[0] >> 4
        cdef int flags = data[0] & 0x0F
        cdef uint64_t remaining
        cdef Py_ssize_t header_size
        if number == 0:
            raise MqttPacketError("reserved packet type 0", start)
        if flags and (number == 2 or number == 14):
            raise MqttPacketError(f"{PACKET_TYPES[number].name} flags 0x{flags:X} are not 0", start)
        try:
            header_size = read_vbi(data, 1, size, "Remaining Length", &remaining)
        except DecodeError as error:
            raise shifted(error, start)
        if header_size < 0:
            return 0
        if <uint64_t>header_size + remaining > <uint64_t>self._max:
            raise MqttPacketError(
                f"packet of {header_size + remaining} bytes is over the {self._max}-byte limit", start, 0x95
            )
        self._remaining = <int64_t>remaining
        self._first = data[0]
        self._start = start
        self._keep = (self._keep_bodies and not self.closes_only) or number == 2 or number == 14
        return header_size

    cdef int append(self, const unsigned char* data, Py_ssize_t n) except -1:
        cdef Py_ssize_t needed = self._body_len + n  # at most max_packet_size
        cdef Py_ssize_t capacity
        cdef unsigned char* grown
        if needed > self._body_cap:
            capacity = max(needed, min(2 * self._body_cap, self._max), 64)
            grown = <unsigned char*>PyMem_Realloc(self._body, capacity)
            if grown is NULL:
                raise MemoryError()
            self._body = grown
            self._body_cap = capacity
        memcpy(self._body + self._body_len, data, n)
        self._body_len = needed
        return 0

    cdef int process(self, const unsigned char* data, Py_ssize_t n, int64_t base, list out, int shape) except -1:
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t held, take, header_size, end
        cdef const unsigned char* packet
        cdef Py_ssize_t packet_size
        cdef MqttOtherPacket other
        while True:
            packet = NULL
            if self._remaining < 0:
                if pos >= n:
                    return 0
                held = self._header_len
                if held == 0:
                    header_size = self.read_fixed_header(data + pos, min(<Py_ssize_t>MAX_MQTT_HEADER, n - pos), base + pos)
                    if not header_size:
                        memcpy(self._header, data + pos, n - pos)
                        self._header_len = n - pos
                        return 0
                    if self._keep and <uint64_t>(n - pos - header_size) >= <uint64_t>self._remaining:
                        packet = data + pos  # the whole packet is here: decoded in place
                        packet_size = header_size + <Py_ssize_t>self._remaining
                    elif self._keep:
                        self.append(data + pos, header_size)
                    pos += header_size
                else:
                    take = min(MAX_MQTT_HEADER - held, n - pos)
                    memcpy(self._header + held, data + pos, take)
                    header_size = self.read_fixed_header(self._header, held + take, base + pos - held)
                    if not header_size:
                        self._header_len = held + take
                        return 0
                    self._header_len = 0
                    if self._keep:
                        self.append(self._header, header_size)
                    pos += header_size - held
            if packet is not NULL:
                pos += <Py_ssize_t>self._remaining
                self._remaining = 0
            elif self._remaining:
                take = <Py_ssize_t>min(<uint64_t>self._remaining, <uint64_t>(n - pos))
                if take == 0:
                    return 0
                if self._keep:
                    self.append(data + pos, take)
                pos += take
                self._remaining -= take
                if self._remaining:
                    return 0
            self._remaining = -1
            if self._keep:
                if packet is NULL:
                    packet = self._body
                    packet_size = self._body_len
                    self._body_len = 0
                try:
                    value = mqtt_packet_from(packet, packet_size, self._version, self._strict, &end)
                except DecodeError as error:
                    raise shifted(error, self._start)
                if self._body_cap > KEEP_BUFFER:
                    PyMem_Free(self._body)
                    self._body = NULL
                    self._body_cap = 0
            elif self.closes_only:
                continue
            else:
                other = MqttOtherPacket.__new__(MqttOtherPacket)
                other.packet_type = PACKET_TYPES[self._first >> 4]
                other.flags = self._first & 0x0F
                other.body = b""
                value = other
            if shape == SHAPE_VALUES:
                out.append(value)
            elif shape == SHAPE_OFFSETS:
                out.append((base + pos, value))
            else:
                out.append((self._start, base + pos, value))
