# Types of the compiled streaming decoders: the same as their pure-Python twin.
from typing import Any, List, Literal, Optional, Tuple, overload

from .errors import DecodeError
from .frames import ConnectionResponse
from .reasons import ReasonNumbering

DEFAULT_MAX_MESSAGE_SIZE: int

class _Stream:
    @property
    def position(self) -> int: ...
    @property
    def error(self) -> Optional[DecodeError]: ...
    @overload
    def feed(self, data: Any, /, *, offsets: Literal[False] = ..., spans: Literal[False] = ...) -> List[Any]: ...
    @overload
    def feed(self, data: Any, /, *, offsets: Literal[True], spans: Literal[False] = ...) -> List[Tuple[int, Any]]: ...
    @overload
    def feed(self, data: Any, /, *, offsets: Literal[False] = ..., spans: Literal[True]) -> List[Tuple[int, int, Any]]: ...
    @overload
    def feed(self, data: Any, /, *, offsets: bool = ..., spans: bool = ...) -> List[Any]: ...
    def reset(self, position: Optional[int] = None) -> None: ...

class WebSocketStream(_Stream):
    def __init__(
        self,
        *,
        expect_masked: Optional[bool] = None,
        rsv_allowed: int = 0,
        minimal_length: bool = True,
        max_message_size: int = ...,
        closes_only: bool = False,
    ) -> None: ...
    closes_only: bool
    @property
    def max_message_size(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    @property
    def in_message(self) -> bool: ...
    @property
    def buffered(self) -> int: ...

class DiffusionStream(WebSocketStream):
    def __init__(
        self,
        *,
        connection_response: bool = True,
        numbering: ReasonNumbering = ...,
        strict: bool = False,
        max_inflated: int = ...,
        expect_masked: Optional[bool] = None,
        minimal_length: bool = True,
        max_message_size: int = ...,
    ) -> None: ...
    @property
    def response(self) -> Optional[ConnectionResponse]: ...

class MqttStream(_Stream):
    def __init__(
        self,
        *,
        version: Optional[int] = None,
        strict: bool = False,
        max_packet_size: int = ...,
        keep_bodies: bool = False,
        closes_only: bool = False,
    ) -> None: ...
    closes_only: bool
    @property
    def max_packet_size(self) -> int: ...
    @property
    def buffered(self) -> int: ...
