# The value base, compiled in Cython's pure-Python mode (value.py). Attributes of
# the values deriving from it are public only so that __init__ can set them with
# object.__setattr__ in both the compiled and the interpreted module; the
# __setattr__ of Value refuses every assignment from Python code.

cdef class Value:
    pass
