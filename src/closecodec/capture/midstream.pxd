# Declarations that make midstream.py compile to extension types where a compiler is available
# (Cython's pure-Python mode, as records.py): it runs once per segment of every connection that is
# being recognised mid-stream. The source, and so the behaviour, is the same compiled or not.

cimport cython


cdef class Candidates:
    cdef public bytearray data
    cdef public tuple alive
    cdef public Py_ssize_t searched
    cdef public set segments
    cdef public list fresh
    cdef public Py_ssize_t walked

    @cython.locals(start=Py_ssize_t)
    cpdef add(self, piece)
    @cython.locals(size=Py_ssize_t, protocol=int, alive=dict, fresh=list, starts=list, grew=bint)
    cpdef update(self, tuple tiles, max_message, bint window)
    @cython.locals(kept=dict)
    cdef _merge(self, dict alive)
    cdef tuple _rank(self, start, tuple result)
    cpdef bint alive_any(self)
    @cython.locals(alive=dict, chosen=Py_ssize_t)
    cpdef best(self, int protocol)


cdef class Verdict:
    cdef public str kind
    cdef public int client
    cdef public tuple starts
    cdef public int version


@cython.locals(protocol=int, best=tuple, found=tuple)
cpdef Verdict recognise(tuple sizes, tuple candidates, bint ended, bint to_lower_port)
@cython.locals(closed_at=int, d=int, units=Py_ssize_t, client=int, version=int, picks=list, client_side=list,
               closing=bint, silent=bint)
cdef tuple _judge(int protocol, tuple sizes, tuple candidates, bint ended, bint to_lower_port)
