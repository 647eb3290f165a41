# Attribute declarations that make values.py compile to extension types (see value.pxd).

from closecodec.value cimport Value


cdef class _MqttWithProperties(Value):
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

cdef class MqttOtherPacket(Value):
    cdef public object packet_type
    cdef public object flags
    cdef public bytes body
