# C-level API of the compiled capture backend, for modules that cimport it
# (a compiled reassembler or protocol layer later). parse_tcp checks every
# read against ``size`` before making it.

cdef object parse_tcp(const unsigned char* v, Py_ssize_t size, object link_object, object data)
