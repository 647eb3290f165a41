# Attribute declarations that make frames.py compile to extension types.
# Attributes are public only so that __init__ can set them with
# object.__setattr__ in both the compiled and the interpreted module; the
# __setattr__ of _Frame refuses every assignment from Python code.

cdef class _Frame:
    pass

cdef class SessionId(_Frame):
    cdef public object server
    cdef public object value
