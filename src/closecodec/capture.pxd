# Attribute declarations that make capture.py compile to extension types where a
# compiler is available (Cython's pure-Python mode, as frames.py): the reassembler and
# its per-connection state, on the path every new connection, FIN and out-of-order
# segment takes. The source, and so the behaviour, is the same compiled or not.
# Attributes are public so that the interpreted module's code works unchanged.

from closecodec.frames cimport TcpSegment

cdef class _SourceReader:
    cdef public object _file
    cdef public object _owned

cdef class _Half:
    cdef public object base
    cdef public object next
    cdef public list starts
    cdef public list pieces
    cdef public object buffered
    cdef public object fin_at
    cdef public object ended

cdef class _Connection:
    cdef public object value
    cdef public tuple halves
    cdef public tuple key
    cdef public object lane
    cdef public object active

cdef class TcpReassembler:
    cdef public object max_connections
    cdef public object max_buffer_per_direction
    cdef public object max_buffer_total
    cdef public object max_closed
    cdef public dict _open
    cdef public list _ages
    cdef public object _clock
    cdef public dict _lookup
    cdef public object _closed
    cdef public object _buffered
    cdef public object _holding
    cdef public object _streams
    cdef public object _frame
    cdef public object _time
    cdef public object stats
    cdef public object _loop
