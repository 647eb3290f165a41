# Types of the compiled transport backend: the same as its pure-Python twin.
from typing import Any, Optional, Tuple, Union

from .frames import MqttConnack, MqttDisconnect, MqttOtherPacket, WebSocketClose, WebSocketFrame, WebSocketHeader

DEFAULT_MAX_WS_PAYLOAD: int

def unmask_ws_payload(data: Any, mask_key: Any, phase: int = 0, /) -> bytes: ...
def decode_ws_header(
    buf: Any,
    offset: int = 0,
    /,
    *,
    expect_masked: Optional[bool] = None,
    rsv_allowed: int = 0,
    minimal_length: bool = True,
    max_payload: Optional[int] = None,
) -> Tuple[WebSocketHeader, int]: ...
def decode_ws_frame(
    buf: Any,
    offset: int = 0,
    /,
    *,
    expect_masked: Optional[bool] = None,
    rsv_allowed: int = 0,
    minimal_length: bool = True,
    max_payload: Optional[int] = ...,
) -> Tuple[Union[WebSocketFrame, WebSocketClose], int]: ...
def encode_ws_frame(frame: Union[WebSocketFrame, WebSocketClose], /) -> bytes: ...
def decode_mqtt_varint(buf: Any, offset: int = 0, /) -> Tuple[int, int]: ...
def encode_mqtt_varint(value: int, /) -> bytes: ...
def decode_mqtt_packet(
    buf: Any,
    offset: int = 0,
    /,
    *,
    version: Optional[int] = None,
    strict: bool = False,
    max_packet_size: Optional[int] = None,
) -> Tuple[Union[MqttDisconnect, MqttConnack, MqttOtherPacket], int]: ...
def encode_mqtt_packet(packet: Union[MqttDisconnect, MqttConnack, MqttOtherPacket], /) -> bytes: ...
