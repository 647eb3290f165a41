"""closecodec: encode and decode the frames that say why a connection or session closed.

Diffusion session-close events and the messages that end a Diffusion session,
WebSocket close frames and MQTT DISCONNECTs, in byte buffers, with a compiled
backend and a pure-Python twin that behaves identically. ``BACKEND`` says which
one is in use (``"c"`` or ``"py"``).
"""

from ._codec import (
    BACKEND,
    decode_boolean,
    decode_byte,
    decode_bytes,
    decode_collection,
    decode_int32,
    decode_int64,
    decode_session_id,
    decode_string,
    decode_string_dict,
    encode_boolean,
    encode_byte,
    encode_bytes,
    encode_collection,
    encode_int32,
    encode_int64,
    encode_session_id,
    encode_string,
    encode_string_dict,
)
from ._common import encode_into
from ._version import __version__
from .errors import DecodeError, EncodeError, IncompleteError, MalformedError
from .frames import SessionId

__all__ = [
    "BACKEND",
    "DecodeError",
    "EncodeError",
    "IncompleteError",
    "MalformedError",
    "SessionId",
    "__version__",
    "decode_boolean",
    "decode_byte",
    "decode_bytes",
    "decode_collection",
    "decode_int32",
    "decode_int64",
    "decode_session_id",
    "decode_string",
    "decode_string_dict",
    "encode_boolean",
    "encode_byte",
    "encode_bytes",
    "encode_collection",
    "encode_into",
    "encode_int32",
    "encode_int64",
    "encode_session_id",
    "encode_string",
    "encode_string_dict",
]
