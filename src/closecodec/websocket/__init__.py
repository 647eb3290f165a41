"""WebSocket (RFC 6455): close frames, the frames around them and the upgrade that starts them.

- ``values.py``: opcodes, frame headers, frames, close frames and messages.
- ``_c.pyx`` / ``_py.py``: the frame codec, the stream decoder and the HTTP
  upgrade head, a compiled module and its pure twin.
- ``deflate.py``: permessage-deflate (RFC 7692), for compressed messages.

The public API is re-exported by ``closecodec`` itself.
"""
