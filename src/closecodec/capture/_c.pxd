# C-level API of the compiled capture backend, for modules that cimport it.
# parse_headers checks every read against ``size`` before making it.

from libc.stdint cimport uint32_t


# Where a packet's TCP segment is, as parse_headers finds it (offsets into the packet).
cdef struct Headers:
    Py_ssize_t addr_at  # the source address; the destination follows it
    int addr_len  # 4 (IPv4) or 16 (IPv6)
    uint32_t src_port
    uint32_t dst_port
    uint32_t seq
    uint32_t ack
    uint32_t flags
    Py_ssize_t payload_at
    Py_ssize_t payload_end  # captured payload: [payload_at, payload_end)
    Py_ssize_t missing  # payload bytes the IP header counts but the capture cut off

cdef int parse_headers(const unsigned char* v, Py_ssize_t size, long link, Headers* h) noexcept nogil
cdef object parse_tcp(const unsigned char* v, Py_ssize_t size, object link_object, object data)
