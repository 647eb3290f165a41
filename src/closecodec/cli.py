"""The ``closecodec`` command."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import BACKEND, __version__

BACKEND_NAMES = {"c": "compiled (Cython)", "py": "pure Python"}


def version_line() -> str:
    return f"closecodec {__version__} (backend {BACKEND}: {BACKEND_NAMES[BACKEND]})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="closecodec",
        description="Decode and encode the frames that say why a connection or session closed.",
    )
    parser.add_argument("--version", action="version", version=version_line())
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    parser.parse_args(argv)
    print(version_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
