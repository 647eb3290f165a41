# Attribute declarations that make values.py compile to extension types (see value.pxd).

from closecodec.value cimport Value


cdef class SessionId(Value):
    # C integers: a decoder builds a session id without making its two ints,
    # and without the garbage collector tracking it (the ints are made when read).
    cdef public unsigned long long server
    cdef public unsigned long long value

cdef class OpenEvent(Value):
    cdef public object session_id
    cdef public tuple properties

cdef class CloseEvent(Value):
    cdef public object session_id
    cdef public object reason
    cdef public tuple properties

cdef class PropertyChange(Value):
    cdef public str key
    cdef public object entry_type
    cdef public tuple values

cdef class UpdateEvent(Value):
    cdef public object session_id
    cdef public object update_type
    cdef public tuple changes

cdef class EventBatch(Value):
    cdef public object conversation_id
    cdef public tuple events

cdef class CloseClientRequest(Value):
    cdef public object session_id

cdef class ServiceRequest(Value):
    cdef public object service_id
    cdef public object conversation_id
    cdef public object payload
    cdef public bint compressed

cdef class AbortNotification(Value):
    pass

cdef class CloseRequest(Value):
    pass

cdef class OtherMessage(Value):
    cdef public object message_type
    cdef public bytes body
    cdef public bint compressed

cdef class ConnectionResponse(Value):
    cdef public object version
    cdef public object code
    cdef public object session_id
    cdef public object token
    cdef public object ping_period
    cdef public object max_message_size
    cdef public object recovery_sequence
