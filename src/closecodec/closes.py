"""Close records from packet captures: now ``closecodec.capture.records``.

This module keeps the old import path working.
"""

from .capture.records import (
    DECODE_AS_KINDS,
    MAX_HANDSHAKE,
    CloseRecord,
    CloseRecordReader,
    close_records,
    parse_decode_as,
)

__all__ = ["DECODE_AS_KINDS", "MAX_HANDSHAKE", "CloseRecord", "CloseRecordReader", "close_records", "parse_decode_as"]
