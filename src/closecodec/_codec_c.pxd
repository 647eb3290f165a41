# C-level API of the compiled backend, for modules that cimport it.
# Every function checks bounds against Reader.size before reading a byte.

from libc.stdint cimport int32_t, uint64_t

from closecodec.frames cimport SessionId


cdef struct Reader:
    const unsigned char* data
    Py_ssize_t size
    Py_ssize_t pos


cdef struct Writer:
    char* data
    Py_ssize_t size
    Py_ssize_t capacity


cdef int open_reader(Reader* r, object buf, Py_ssize_t offset, Py_buffer* view) except -1
cdef int read_varint(Reader* r, int max_bytes, unsigned char excess, str what, uint64_t* out) except -1
cdef int read_int32(Reader* r, str what, int32_t* out) except -1
cdef int read_uint64(Reader* r, str what, uint64_t* out) except -1
cdef Py_ssize_t read_length(Reader* r, str what, str what_length, Py_ssize_t unit) except -1
cdef str read_utf8(Reader* r, Py_ssize_t length)
cdef str read_string(Reader* r)
cdef str read_key(Reader* r)
cdef tuple read_pairs(Reader* r)
cdef SessionId read_session_id(Reader* r)

cdef int writer_reserve(Writer* w, Py_ssize_t extra) except -1
cdef int write_raw(Writer* w, const char* data, Py_ssize_t length) except -1
cdef int write_varint(Writer* w, uint64_t value) except -1
cdef int write_length(Writer* w, Py_ssize_t length, str what) except -1
cdef int write_string(Writer* w, object value, str what) except -1
cdef int write_pairs(Writer* w, tuple pairs) except -1
cdef bytes writer_finish(Writer* w)
