"""``python -m fuzz``: build the instrumented extension, write the seeds, run every harness.

Examples (from the repository root, in a venv with the package installed
editable, Cython and atheris; clang on PATH)::

    python -m fuzz --seconds 5                  # CI: every harness for 5 s
    python -m fuzz --seconds 600 --jobs 2       # the long run, two harnesses at a time
    python -m fuzz --seconds 120 --only closes pcap
    python -m fuzz --asan --seconds 60          # with AddressSanitizer too
    python -m fuzz --reproduce fuzz/crashes/ws_stream-crash-0123abcd...

Harnesses run one at a time, or ``--jobs N`` at a time (one fuzzer process
each). Each prints its executions and duration; a crash, a hang (over
``--timeout`` s on one input) or running out of memory saves the input under
fuzz/crashes/ and makes the exit status 1.
The corpus each run grows is kept in fuzz/build/corpus/<harness>/ (ignored by
git) and reused by the next run; logs are in fuzz/build/logs/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Dict, List, Optional

from fuzz import MAX_LEN, NAMES

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = HERE / "build"
CRASHES = HERE / "crashes"



# The preloaded runtime is ASan's even without ASan instrumentation. Without a sanitizer build,
# its per-malloc stack traces and quarantine only cost time and memory (RSS grows by ~40 MB/s
# with Python coverage on): turn them off. With ASan, keep a small quarantine and short stacks.
ASAN_OPTIONS = {
    "coverage": "detect_leaks=0:malloc_context_size=0:quarantine_size_mb=0:poison_heap=0:max_free_fill_size=0:"
                "detect_stack_use_after_return=0",
    "asan": "detect_leaks=0:malloc_context_size=8:quarantine_size_mb=64:detect_stack_use_after_return=0:"
            "allocator_may_return_null=1",
}


def _preload() -> str:
    try:
        import atheris
    except ImportError:
        raise SystemExit("fuzz: atheris is not installed (pip install atheris)") from None
    path = Path(atheris.path()) / "asan_with_fuzzer.so"
    if not path.exists():
        raise SystemExit(f"fuzz: {path} is missing: atheris was installed without its sanitizer+libFuzzer "
                         "libraries (reinstall it from a wheel, or from source with clang on PATH)")
    return str(path)


def _stats(log: str) -> Dict[str, Optional[int]]:
    """Executions, new corpus units and peak RSS from libFuzzer's output."""
    def last(pattern: str) -> Optional[int]:
        found = re.findall(pattern, log, re.M)
        return int(found[-1]) if found else None

    executions = last(r"^stat::number_of_executed_units: (\d+)")
    if executions is None:  # a crash stops it before the final stats: the last status line
        executions = last(r"^#(\d+)\s")
    return {
        "executions": executions,
        "new_units": last(r"^stat::new_units_added: (\d+)"),
        "corpus": last(r"^#\d+\s.*\bcorp: (\d+)/"),
        "coverage": last(r"^#\d+\s.*\bcov: (\d+)"),
        "peak_rss_mb": last(r"^stat::peak_rss_mb: (\d+)"),
    }


def _finding(log: str) -> str:
    """The part of the log that says what went wrong."""
    for marker in ("=== Uncaught Python exception: ===", "==ERROR:", "ERROR: libFuzzer", "Traceback"):
        at = log.find(marker)
        if at >= 0:
            return log[at:at + 6000]
    return log[-3000:]


def _child_env(src: Path, preload: str, asan: bool, python_coverage: bool) -> Dict[str, str]:
    """The environment of a process that imports the instrumented build."""
    env = dict(os.environ)
    env.update({
        "LD_PRELOAD": preload,
        "ASAN_OPTIONS": ASAN_OPTIONS["asan" if asan else "coverage"],
        "PYTHONPATH": os.pathsep.join([str(src), str(ROOT)]),
        "FUZZ_BUILD": str(src),
        "FUZZ_PYTHON_COVERAGE": "1" if python_coverage else "0",
    })
    env.pop("CLOSECODEC_NO_EXTENSIONS", None)
    if asan:
        env["PYTHONMALLOC"] = "malloc"  # so ASan sees every Python allocation too
    return env


def run_harness(name: str, seconds: int, *, src: Path, preload: str, seeds: Path, timeout: int,
                max_len: int, asan: bool, python_coverage: bool, extra: List[str]) -> Dict[str, object]:
    corpus = BUILD / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    CRASHES.mkdir(exist_ok=True)
    logs = BUILD / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "fuzz.run", name, str(corpus), str(seeds / name),
        f"-max_total_time={seconds}", f"-max_len={max_len}", f"-timeout={timeout}",
        f"-artifact_prefix={CRASHES}/{name}-", "-print_final_stats=1", "-detect_leaks=0",
        "-rss_limit_mb=3072", *extra,
    ]
    env = _child_env(src, preload, asan, python_coverage)
    log_path = logs / f"{name}.log"
    started = time.monotonic()
    with log_path.open("w") as log_file:
        try:
            result = subprocess.run(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                    timeout=seconds * 2 + 300)
            status = result.returncode
        except subprocess.TimeoutExpired:
            status = "runner timeout"
    elapsed = time.monotonic() - started
    log = log_path.read_text(errors="replace")
    stats = _stats(log)
    artifacts = re.findall(r"Test unit written to (\S+)", log)
    report: Dict[str, object] = {"harness": name, "seconds": round(elapsed, 1), "status": status, "log": str(log_path),
                                 **stats}
    if status != 0:
        report["artifact"] = artifacts[-1] if artifacts else None
        report["finding"] = _finding(log)
    return report


def reproduce(paths: List[str], only: Optional[List[str]], quiet: bool = False) -> int:
    """Run each saved input through its harness, in this process, against the installed closecodec."""
    import closecodec
    from fuzz.harnesses import HARNESSES

    print(f"closecodec {closecodec.__file__} (backend {closecodec.BACKEND})")
    failed = 0
    for path in paths:
        # The harness: --only, else the file's name (<harness>-crash-...), else its folder (corpus/<harness>/).
        name = only[0] if only else next((n for n in sorted(HARNESSES, key=len, reverse=True)
                                          if Path(path).name.startswith(n + "-")), None)
        if name is None and Path(path).parent.name in HARNESSES:
            name = Path(path).parent.name
        if name is None:
            raise SystemExit(f"fuzz: cannot tell the harness from {path!r}: give --only NAME")
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:  # a corpus input that a fuzzer running beside this has since removed
            print(f"== {name} {path}: gone, skipped")
            continue
        if not quiet:
            print(f"== {name} {path} ({len(data)} bytes): {data[:64].hex()}{'...' if len(data) > 64 else ''}")
        try:
            HARNESSES[name](data)
        except Exception:  # a finding: show it, go on with the next file
            failed += 1
            if quiet:
                print(f"== {name} {path} ({len(data)} bytes): {data[:64].hex()}{'...' if len(data) > 64 else ''}")
            traceback.print_exc()
        else:
            if not quiet:
                print("   passes (no disagreement, no unexpected exception)")
    print(f"fuzz: {len(paths)} input(s), {failed} failing")
    return 1 if failed else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="how long each harness runs (default 30)")
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME", help=f"harnesses to run: {', '.join(NAMES)}")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="harnesses run at once, one process each (default 1; the machine's cores at most)")
    parser.add_argument("--asan", action="store_true", help="build with AddressSanitizer as well as coverage")
    parser.add_argument("--no-build", action="store_true", help="use the instrumented build as it is")
    parser.add_argument("--no-python-coverage", action="store_true",
                        help="instrument only the compiled modules, not the pure-Python ones (several times faster)")
    parser.add_argument("--timeout", type=int, default=30, help="seconds one input may take (default 30)")
    parser.add_argument("--max-len", type=int, help="libFuzzer's -max_len (default: per harness)")
    parser.add_argument("--reproduce", nargs="+", metavar="FILE",
                        help="run saved inputs through their harness, against the installed closecodec")
    parser.add_argument("--seeds", action="store_true",
                        help="run every seed (and the kept corpus) once against the installed closecodec: "
                             "no clang or atheris needed")
    parser.add_argument("--instrumented", action="store_true",
                        help="with --reproduce or --seeds: against the instrumented build (--asan: the ASan one)")
    parser.add_argument("--libfuzzer", nargs=argparse.REMAINDER, default=[],
                        help="further libFuzzer flags (everything after it)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")

    if args.seeds and not args.instrumented:  # every seed and corpus input once, here: no clang, no atheris
        from fuzz import seeds

        seeds.write(BUILD / "seeds")
        names = args.only or NAMES
        paths = [str(path) for folder in ("seeds", "corpus") for name in names
                 for path in sorted((BUILD / folder / name).glob("*"))]
        return reproduce(paths, None, quiet=True)
    if args.reproduce and not args.instrumented:
        return reproduce(args.reproduce, args.only, quiet=len(args.reproduce) > 20)

    from fuzz import build, seeds

    variant = "asan" if args.asan else "coverage"
    src = build.build(variant) if not args.no_build else BUILD / variant / "src"
    preload = _preload()
    if args.reproduce or args.seeds:  # --instrumented: the same, in a child that imports the instrumented build
        command = [sys.executable, "-m", "fuzz", *(["--seeds"] if args.seeds else ["--reproduce", *args.reproduce]),
                   *(["--only", *args.only] if args.only else [])]
        return subprocess.run(command, cwd=ROOT, env=_child_env(src, preload, args.asan, True)).returncode
    seed_dir = BUILD / "seeds"
    counts = seeds.write(seed_dir)  # deterministic, from tests/data
    names = args.only or NAMES
    print(f"fuzz: {len(names)} harness(es), {args.seconds} s each, {args.jobs} at a time ({variant} build); "
          f"{sum(counts[n] for n in names)} seeds in {seed_dir}", flush=True)
    print(f"{'harness':<22}{'executions':>12}{'seconds':>9}{'exec/s':>9}{'corpus':>8}{'cov':>7}  result", flush=True)
    def run(name: str) -> Dict[str, object]:
        return run_harness(name, args.seconds, src=src, preload=preload, seeds=seed_dir, timeout=args.timeout,
                           max_len=args.max_len or MAX_LEN[name], asan=args.asan,
                           python_coverage=not args.no_python_coverage, extra=args.libfuzzer)

    reports = []
    # Each harness is its own process: threads only wait for them. Lines print as harnesses end.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for report in (future.result() for future in as_completed([pool.submit(run, name) for name in names])):
            reports.append(report)
            executions = report["executions"] or 0
            rate = executions / report["seconds"] if report["seconds"] else 0
            result = "ok" if report["status"] == 0 else f"FAILED ({report['status']})"
            print(f"{report['harness']:<22}{executions:>12}{report['seconds']:>9}{rate:>9.0f}"
                  f"{report['corpus'] or '-':>8}{report['coverage'] or '-':>7}  {result}", flush=True)
            if report["status"] != 0:
                print("-" * 78 + "\n" + str(report["finding"]).rstrip() + "\n" + "-" * 78)
                if report.get("artifact"):
                    print(f"saved: {report['artifact']}\nreproduce: python -m fuzz --reproduce {report['artifact']}")
                print(f"log: {report['log']}", flush=True)
    reports.sort(key=lambda report: names.index(report["harness"]))
    (BUILD / "last-run.json").write_text(json.dumps({"seconds": args.seconds, "variant": variant,
                                                     "reports": reports}, indent=1, default=str))
    failed = [r["harness"] for r in reports if r["status"] != 0]
    total = sum(r["executions"] or 0 for r in reports)
    print(f"fuzz: {total} executions in all; " + (f"FAILED: {', '.join(failed)}" if failed else "no findings"),
          flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
