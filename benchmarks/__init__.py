"""closecodec's speed table: ``python -m benchmarks [--quick] [SUITE ...]``."""
