# C-level API of the compiled transport backend, for modules that cimport it
# (the streaming and capture readers). Every function checks bounds against
# the size it is given before reading a byte.

from libc.stdint cimport int64_t, uint64_t


cdef struct WsHeader:
    bint fin
    int rsv
    int opcode
    bint masked
    unsigned char key[4]
    uint64_t length
    Py_ssize_t payload_at  # offset of the payload's first byte


cdef void xor_mask(const unsigned char* src, unsigned char* dst, Py_ssize_t n, const unsigned char* key) noexcept nogil
cdef int read_ws_header(
    const unsigned char* data, Py_ssize_t start, Py_ssize_t size, int expect_masked, int rsv_allowed,
    bint minimal_length, int64_t max_payload, WsHeader* h,
) except -1
cdef Py_ssize_t read_vbi(const unsigned char* data, Py_ssize_t pos, Py_ssize_t end, str what, uint64_t* out) except -2
