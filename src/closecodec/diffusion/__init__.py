"""Diffusion: the session-close events and the messages that end a Diffusion session.

- ``protocol.py``: message, event, update and entry types (docs/diffusion.md).
- ``values.py``: session ids, events, messages and the connection response.
- ``_c.pyx`` / ``_py.py``: the wire codec and the stream decoder of Diffusion
  over WebSocket, a compiled module and its pure twin.

The public API is re-exported by ``closecodec`` itself.
"""
