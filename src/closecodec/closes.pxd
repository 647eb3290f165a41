# Attribute declarations that make closes.py compile to extension types where a
# compiler is available (Cython's pure-Python mode, as frames.py): the close-record
# reader and its per-connection state, on the path every connection's set-up, close
# frames and end take. The source, and so the behaviour, is the same compiled or not.
# Attributes are public so that the interpreted module's code works unchanged.

from closecodec.capture cimport TcpReassembler, _SourceReader

cdef class _Head:
    cdef public object held
    cdef public bytes data
    cdef public object kind
    cdef public object connect
    cdef public object _http

cdef class _Half:
    cdef public list pending
    cdef public object held
    cdef public _Head head
    cdef public object ws
    cdef public object mqtt
    cdef public object inflater
    cdef public object done
    cdef public object ended
    cdef public object messages

cdef class _Conn:
    cdef public object value
    cdef public object app
    cdef public object client
    cdef public tuple halves
    cdef public object records
    cdef public object first_end
    cdef public object session_id
    cdef public object client_id
    cdef public object mqtt_version
    cdef public object lost
    cdef public object port_kind
    cdef public object port_client
    cdef public object deflate
    cdef public object maybe_diffusion
    cdef public object lane
    cdef public object endpoints

cdef class CloseRecordReader(_SourceReader):
    cdef public object _ports
    cdef public object _capture
    cdef public object _stream
    cdef public object _codec
    cdef public object _max_message
    cdef public object _progress
    cdef public TcpReassembler reassembler
    cdef public object packets
    cdef public object stats
    cdef public object skipped
    cdef public list errors
    cdef public dict _conns
    cdef public list _out
    cdef public object _lanes
