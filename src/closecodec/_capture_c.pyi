# Types of the compiled capture backend: the same as its pure-Python twin.
from typing import Any, Iterator, Optional, Union

from .errors import IncompleteError
from .frames import Packet, TcpSegment

DEFAULT_BLOCK_SIZE: int
DEFAULT_MAX_RECORD: int

class PacketReader(Iterator[Packet]):
    format: Optional[str]
    frames: int
    error: Optional[IncompleteError]
    def __init__(self, file: Any, /, *, block_size: int = ..., max_record: int = ...) -> None: ...
    @property
    def offset(self) -> int: ...
    def __iter__(self) -> "PacketReader": ...
    def __next__(self) -> Packet: ...

def parse_packet(data: Any, link_type: int, /) -> Union[TcpSegment, str]: ...
