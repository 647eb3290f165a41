"""MQTT (3.1.1 and 5.0): DISCONNECT and CONNACK, the packets around them and the CONNECT.

- ``values.py``: packet types, property identifiers and packets.
- ``_c.pyx`` / ``_py.py``: the packet codec, the stream decoder and the CONNECT
  that identifies MQTT on any port, a compiled module and its pure twin.

The public API is re-exported by ``closecodec`` itself.
"""
