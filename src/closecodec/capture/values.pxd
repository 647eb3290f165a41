# Attribute declarations that make values.py compile to extension types (see value.pxd).

from closecodec.value cimport Value


cdef class Packet(Value):
    cdef public object frame
    cdef public object timestamp_ns
    cdef public object link_type
    cdef public object data
    cdef public object original_length
    cdef public object interface

cdef class TcpSegment(Value):
    cdef public bytes src
    cdef public object src_port
    cdef public bytes dst
    cdef public object dst_port
    cdef public object seq
    cdef public object ack
    cdef public object flags
    cdef public object payload
    cdef public object missing
