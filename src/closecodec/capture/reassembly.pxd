# Declarations that make reassembly.py compile to extension types where a compiler is
# available (Cython's pure-Python mode, as the value modules): the reassembler and its
# per-connection state, on the path every new connection, FIN and out-of-order segment
# takes. The source, and so the behaviour, is the same compiled or not.
# Attributes are public so that the interpreted module's code works unchanged. The
# reassembler's internal methods are C methods (called directly, not looked up); all C
# types are here, since reassembly.py's annotations are for type checkers only.

cimport cython

from closecodec.capture.values cimport TcpSegment

cdef int _FIN, _SYN, _RST, _ACK

@cython.locals(packed=bytes, text=str)
cdef str _endpoint(address, port)

cdef class SourceReader:
    cdef public object _file
    cdef public object _owned

cdef class _DirectionState:
    cdef public object base
    cdef public object next
    cdef public list starts
    cdef public list pieces
    cdef public object buffered
    cdef public object fin_at
    cdef public object fin_frame
    cdef public object fin_time
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
    cdef public object relieved
    cdef public object _loop

    @cython.locals(conn=_Connection)
    cpdef lane_of(self, connection)
    @cython.locals(conn=_Connection, half=_DirectionState, direction=int, flags=int)
    cpdef list add(self, frame, timestamp_ns, TcpSegment segment)
    cdef _data(self, _Connection conn, int direction, _DirectionState half, offset, payload, missing, list out)
    cdef _hold(self, _DirectionState half, start, end, data, frame, time)
    cdef _drain(self, _Connection conn, int direction, _DirectionState half, list out, bint completed=*)
    cdef _skip(self, _Connection conn, int direction, _DirectionState half, list out)
    cdef _gap(self, _Connection conn, int direction, offset, length, list out)
    @cython.locals(conn=_Connection)
    cdef _evict(self, list out)
    @cython.locals(conn=_Connection, half=_DirectionState, direction=int)
    cdef _relieve(self, list out)
    @cython.locals(half=_DirectionState, direction=int)
    cdef _reclaim(self, _Connection conn, list out)
    @cython.locals(half=_DirectionState, direction=int)
    cdef _offer(self, _Connection conn)
    @cython.locals(half=_DirectionState, direction=int)
    cdef _close(self, _Connection conn, reason, list out)
    cdef _retire(self, _Connection conn)
