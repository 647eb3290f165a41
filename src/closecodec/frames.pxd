# Attribute declarations that make frames.py compile to extension types.
# Attributes are public only so that __init__ can set them with
# object.__setattr__ in both the compiled and the interpreted module; the
# __setattr__ of _Frame refuses every assignment from Python code.

cdef class _Frame:
    pass

cdef class SessionId(_Frame):
    cdef public object server
    cdef public object value

cdef class OpenEvent(_Frame):
    cdef public object session_id
    cdef public tuple properties

cdef class CloseEvent(_Frame):
    cdef public object session_id
    cdef public object reason
    cdef public tuple properties

cdef class PropertyChange(_Frame):
    cdef public str key
    cdef public object entry_type
    cdef public tuple values

cdef class UpdateEvent(_Frame):
    cdef public object session_id
    cdef public object update_type
    cdef public tuple changes

cdef class EventBatch(_Frame):
    cdef public object conversation_id
    cdef public tuple events

cdef class CloseClientRequest(_Frame):
    cdef public object session_id

cdef class ServiceRequest(_Frame):
    cdef public object service_id
    cdef public object conversation_id
    cdef public object payload
    cdef public bint compressed

cdef class AbortNotification(_Frame):
    pass

cdef class CloseRequest(_Frame):
    pass

cdef class OtherMessage(_Frame):
    cdef public object message_type
    cdef public bytes body
    cdef public bint compressed

cdef class ConnectionResponse(_Frame):
    cdef public object version
    cdef public object code
    cdef public object session_id
    cdef public object token
    cdef public object ping_period
    cdef public object max_message_size
    cdef public object recovery_sequence

cdef class WebSocketHeader(_Frame):
    cdef public bint fin
    cdef public object rsv
    cdef public object opcode
    cdef public object mask_key
    cdef public object length

cdef class WebSocketFrame(_Frame):
    cdef public object opcode
    cdef public bytes payload
    cdef public bint fin
    cdef public object rsv
    cdef public object mask_key

cdef class WebSocketClose(_Frame):
    cdef public object code
    cdef public str reason
    cdef public object mask_key

cdef class _MqttWithProperties(_Frame):
    pass

cdef class MqttDisconnect(_MqttWithProperties):
    cdef public object reason_code
    cdef public tuple properties
    cdef public object version

cdef class MqttConnack(_MqttWithProperties):
    cdef public object reason_code
    cdef public bint session_present
    cdef public tuple properties
    cdef public object version

cdef class MqttOtherPacket(_Frame):
    cdef public object packet_type
    cdef public object flags
    cdef public bytes body

cdef class WebSocketMessage(_Frame):
    cdef public object opcode
    cdef public bytes payload
    cdef public object rsv
    cdef public bint masked

cdef class Packet(_Frame):
    cdef public object frame
    cdef public object timestamp_ns
    cdef public object link_type
    cdef public object data
    cdef public object original_length
    cdef public object interface

cdef class TcpSegment(_Frame):
    cdef public bytes src
    cdef public object src_port
    cdef public bytes dst
    cdef public object dst_port
    cdef public object seq
    cdef public object ack
    cdef public object flags
    cdef public object payload
    cdef public object missing
