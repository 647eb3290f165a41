"""Coverage-guided differential fuzzing of closecodec with atheris (issue 8).

``python -m fuzz --seconds 5`` builds the compiled backend with libFuzzer's
instrumentation in fuzz/build/, generates the seed corpus from tests/data and
runs every harness in :mod:`fuzz.harnesses` for that long (``--jobs`` at a time).
fuzz/README.md says more. Nothing here imports closecodec at package import:
the harness process must instrument it first (:mod:`fuzz.run`).
"""

#: The harnesses (functions of the same names in fuzz.harnesses), in the order they run.
NAMES = ("message", "event_batch", "connection_response", "ws_frame", "mqtt_packet", "tile", "ws_stream",
         "diffusion_stream", "mqtt_stream", "packet", "pcap", "merge", "closes", "chunk")

#: libFuzzer's -max_len for each: streams and captures need room for several frames or packets.
MAX_LEN = {name: 4096 for name in NAMES}
MAX_LEN.update({"ws_stream": 8192, "diffusion_stream": 8192, "mqtt_stream": 8192, "pcap": 16384, "merge": 16384,
                "closes": 16384, "chunk": 16384})

#: The link types parse_packet knows, and one it does not (the ``packet`` harness picks one).
LINK_TYPES = (1, 113, 276, 0, 108, 101, 12, 228, 229, 147)
