"""Close records from packet captures: now ``closecodec.capture.records``.

This module keeps the old import path working, with every name it offered.
"""

from .buffer import DEFAULT_MAX_INFLATED as MAX_INFLATED
from .buffer import DEFAULT_MAX_MESSAGE_SIZE
from .capture.reassembly import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_MAX_BUFFER_PER_DIRECTION,
    DEFAULT_MAX_BUFFER_TOTAL,
    DEFAULT_MAX_CLOSED,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RECORD,
    StreamData,
    StreamEnd,
    StreamGap,
    StreamStart,
    TcpConnection,
    TcpReassembler,
)
from .capture.records import (
    DECODE_AS_KINDS,
    MAX_HANDSHAKE,
    CloseRecord,
    CloseRecordReader,
    close_records,
    parse_decode_as,
)
from .diffusion.values import (
    AbortNotification,
    CloseClientRequest,
    CloseRequest,
    ConnectionResponse,
    EventBatch,
    ServiceRequest,
)
from .errors import DecodeError, IncompleteError
from .mqtt.values import MqttConnack, MqttDisconnect
from .websocket.values import WebSocketClose, WebSocketMessage

__all__ = ["DECODE_AS_KINDS", "MAX_HANDSHAKE", "CloseRecord", "CloseRecordReader", "close_records", "parse_decode_as"]
