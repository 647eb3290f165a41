# Declarations that make records.py compile to extension types where a compiler is
# available (Cython's pure-Python mode, as the value modules): the close-record reader and its
# per-connection state, on the path every connection's set-up, close frames and end
# take. The source, and so the behaviour, is the same compiled or not.
# Attributes are public so that the interpreted module's code works unchanged. The
# reader's internal methods are C methods (called directly, not looked up); all C
# types are here, since records.py's annotations are for type checkers only.

cimport cython

from closecodec.capture.midstream cimport Candidates, Verdict, recognise
from closecodec.capture.reassembly cimport SourceReader, TcpReassembler
from closecodec.mqtt.values cimport MqttDisconnect
from closecodec.websocket.values cimport WebSocketClose, WebSocketMessage

cdef class _Head:
    cdef public object held
    cdef public bytes data
    cdef public object kind
    cdef public object connect
    cdef public object _http

    cdef http(self, parse)

cdef class _DirectionDecoder:
    cdef public list pending
    cdef public object held
    cdef public _Head head
    cdef public object ws
    cdef public object mqtt
    cdef public object inflater
    cdef public object done
    cdef public object ended
    cdef public object messages
    cdef public Candidates candidates

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
    cdef public object port_detection
    cdef public object detection
    cdef public object deflate
    cdef public object maybe_diffusion
    cdef public object probation
    cdef public object lane
    cdef public object endpoints

cdef _Head _head_of(_DirectionDecoder half, parse_connect)
cdef tuple _frame_of(list pending, size)
cdef bint _came_first(tuple first, tuple second)
@cython.locals(half=_DirectionDecoder)
cdef _sink(_Conn conn, int d)
@cython.locals(half=_DirectionDecoder)
cdef _plain_websocket(_Conn conn)

cdef class CloseRecordReader(SourceReader):
    cdef public object _ports
    cdef public object _heuristics
    cdef public object _mqtt_version
    cdef public object _tiles
    cdef public object _capture
    cdef public object _websocket
    cdef public object _mqtt
    cdef public object _diffusion
    cdef public object _max_message
    cdef public object _progress
    cdef public TcpReassembler reassembler
    cdef public object packets
    cdef public dict _counts
    cdef public object skipped
    cdef public list errors
    cdef public dict _conns
    cdef public dict _by_lane
    cdef public list _out
    cdef public list files
    cdef public list problems
    cdef public tuple partition
    cdef public object chunk
    cdef public object chunk_report
    cdef public object _clock
    cdef public list starts
    cdef public list order
    cdef public list error_order
    cdef public object peak_open
    cdef public object peak_buffered
    cdef public object _following
    cdef public dict _seen
    cdef public object _on_problem
    cdef public Py_ssize_t _failures_named
    cdef public object _listed
    cdef public object _followed

    cdef _open_set(self, paths, block_size, max_record)
    cdef _set_failures(self)

    @cython.locals(conn=_Conn)
    cdef _event(self, event, segment)
    @cython.locals(conn=_Conn)
    cdef _start(self, event)
    @cython.locals(conn=_Conn, half=_DirectionDecoder)
    cdef _gap(self, event)
    @cython.locals(conn=_Conn)
    cdef _end(self, event, segment)
    @cython.locals(half=_DirectionDecoder)
    cdef _ignore(self, _Conn conn)
    @cython.locals(half=_DirectionDecoder)
    cdef _hold(self, _Conn conn, int d, offset, bytes data, frame, time)
    @cython.locals(head=_Head, other=_Head, d=int)
    cdef _recognise(self, _Conn conn)
    cdef _fallback(self, _Conn conn)
    @cython.locals(half=_DirectionDecoder, window=bint, verdict=Verdict)
    cdef _guess(self, _Conn conn, bint ended)
    cdef _setup_by_port(self, _Conn conn)
    cdef _upgrade(self, _Conn conn, int d, line, dict headers, size, tuple answer)
    @cython.locals(half=_DirectionDecoder, d=int, held=list, starts=list, i=Py_ssize_t, j=Py_ssize_t)
    cdef _setup(self, _Conn conn, kind, ws=*, rsv=*, skip=*)
    @cython.locals(half=_DirectionDecoder)
    cdef _feed(self, _Conn conn, int d, data, offset, frame, time)
    @cython.locals(half=_DirectionDecoder)
    cdef _decoded(self, _Conn conn, int d, list spans, frame, time)
    @cython.locals(counts=dict)
    cdef _tally(self, key, by=*)
    cdef _count(self, what, frame, _Conn conn, error)
    @cython.locals(half=_DirectionDecoder, close=WebSocketClose, message=WebSocketMessage)
    cdef _on_websocket(self, _Conn conn, int d, value, frame, time)
    @cython.locals(half=_DirectionDecoder, probation=list)
    cdef _on_probation(self, _Conn conn, int d, message, frame, time)
    cdef _inflate(self, _Conn conn, _DirectionDecoder half, payload, frame)
    @cython.locals(half=_DirectionDecoder)
    cdef _on_diffusion_bytes(self, _Conn conn, int d, payload, frame, time)
    cdef _on_diffusion(self, _Conn conn, int d, value, frame, time)
    @cython.locals(half=_DirectionDecoder)
    cdef _on_mqtt_bytes(self, _Conn conn, int d, payload, frame, time)
    @cython.locals(disconnect=MqttDisconnect)
    cdef _on_mqtt(self, _Conn conn, int d, size, value, frame, time)
    cdef _record(self, _Conn conn, int d, frame, time, protocol, kind, code, name, reason, value=*, close_reason=*,
                 session_id=*, properties=*, mqtt_version=*)
