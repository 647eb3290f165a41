# Attribute declarations that make values.py compile to extension types (see value.pxd).

from closecodec.value cimport Value


cdef class WebSocketHeader(Value):
    cdef public bint fin
    cdef public object rsv
    cdef public object opcode
    cdef public object mask_key
    cdef public object length

cdef class WebSocketFrame(Value):
    cdef public object opcode
    cdef public bytes payload
    cdef public bint fin
    cdef public object rsv
    cdef public object mask_key

cdef class WebSocketClose(Value):
    cdef public object code
    cdef public str reason
    cdef public object mask_key

cdef class WebSocketMessage(Value):
    cdef public object opcode
    cdef public bytes payload
    cdef public object rsv
    cdef public bint masked
