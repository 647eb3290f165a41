"""How often mid-stream recognition takes random traffic for WebSocket or MQTT (docs/capture.md).

Builds captures of TCP connections that carry random bytes, without handshakes (as a
capture that starts mid-stream sees them), reads them with the close-record reader
and counts the connections recognised and the records made. Every one is a false
positive. Run from the repository root:

    python scripts/false_positives.py [--connections N] [--seed S]

Each connection has 1 to 16 segments in random directions, of 1 to 1460 bytes
(log-uniform: short streams are where a chance tiling is likeliest), and ends with
FIN from both sides (a half), RST (a quarter) or not at all.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from closecodec import BACKEND  # noqa: E402
from closecodec.capture.records import CloseRecordReader  # noqa: E402
from tests.helpers import FIN, RST, Capture, Flow  # noqa: E402

BATCH = 2000  # connections per capture


def batch(rng: random.Random, count: int) -> Capture:
    capture = Capture()
    for n in range(count):
        flow = Flow(capture, handshake=False, client_port=20000 + n % 40000,
                    server_port=rng.choice([80, 443, 5432, 6379, 8080]) + n // 40000)
        for _ in range(rng.randint(1, 16)):
            size = int(math.exp(rng.uniform(0, math.log(1460))))
            flow.send(rng.randrange(2), rng.randbytes(size))
        end = rng.random()
        if end < 0.5:
            flow.flag(0, FIN)
            flow.flag(1, FIN)
        elif end < 0.75:
            flow.flag(rng.randrange(2), RST)
    return capture


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    recognised = records = done = 0
    started = time.perf_counter()
    while done < args.connections:
        count = min(BATCH, args.connections - done)
        reader = CloseRecordReader(batch(rng, count).file(), mqtt_ports=())
        records += sum(1 for _ in reader)
        stats = reader.stats
        recognised += stats["websocket"] + stats["mqtt"] + stats["diffusion"]
        done += count
    seconds = time.perf_counter() - started
    print(f"backend {BACKEND}, seed {args.seed}: {done} random connections, {recognised} recognised, "
          f"{records} records ({seconds:.0f} s)")
    bound = 3 / done  # the rule of three: the 95% upper bound when none was seen
    if recognised:
        print(f"false-positive rate: {recognised / done:.2e} per connection")
    else:
        print(f"false-positive rate: 0 seen; below {bound:.1e} per connection with 95% confidence")
    return 0


if __name__ == "__main__":
    sys.exit(main())
