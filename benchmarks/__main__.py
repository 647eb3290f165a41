"""Run the benchmark suites and print medians and ratios.

    python -m benchmarks            # every suite
    python -m benchmarks primitives # one suite
    python -m benchmarks --quick    # fewer repeats, for a smoke run
"""

from __future__ import annotations

import argparse
import importlib
import platform

import closecodec

from .harness import run_case

SUITES = ["primitives", "diffusion", "transport", "stream", "capture", "connections", "parallel"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("suites", nargs="*", choices=SUITES + [[]], help="suites to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="3 repeats of 0.05 s instead of 7 of 0.2 s")
    args = parser.parse_args()
    repeat, min_time = (3, 0.05) if args.quick else (7, 0.2)
    print(
        f"closecodec {closecodec.__version__}, package backend {closecodec.BACKEND}, "
        f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}; "
        f"median of {repeat} repeats of >= {min_time} s each"
    )
    for suite in args.suites or SUITES:
        module = importlib.import_module(f"benchmarks.{suite}")
        for case in module.cases():
            run_case(case, repeat, min_time)


if __name__ == "__main__":
    main()
