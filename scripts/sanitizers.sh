#!/usr/bin/env bash
# Build the compiled modules (every src/closecodec/**/_c.pyx, and each .py with a .pxd beside it) with
# AddressSanitizer and UndefinedBehaviorSanitizer in a temporary copy of this
# working tree, and run the whole test suite and the fuzz seeds (fuzz/) against
# that build. Any sanitizer report fails the run (exit status 1, reports printed
# at the end).
#
#   scripts/sanitizers.sh [PYTHON] [PYTEST ARGS...]
#   PYTHON=.venv/bin/python scripts/sanitizers.sh -x -q
#
# PYTHON (the first argument if it is an executable, else $PYTHON, else
# python3 on PATH) must have the test dependencies, Cython and setuptools:
# `pip install '.[test]'`. Needs gcc with libasan and libubsan. The source tree
# is never built in place: the copy lives in a temporary directory (KEEP=1
# keeps it and prints where). Set CI=1 for the suite's CI Hypothesis profile, or
# CLOSECODEC_HYPOTHESIS_PROFILE to any of tests/conftest.py's profiles (ci, dev, smoke).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -gt 0 ] && [ -x "$1" ] && [ ! -d "$1" ]; then
  PYTHON=$1
  shift
fi
PYTHON=$(command -v "${PYTHON:-python3}") || { echo "sanitizers: no python found" >&2; exit 2; }
# Absolute (not resolved: a venv's python is a symlink), since the script runs it from other directories.
[[ $PYTHON == /* ]] || PYTHON=$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")
CC=${CC:-gcc}
say() { printf '\n=== sanitizers: %s\n' "$*"; }

"$PYTHON" -c 'import Cython, hypothesis, pytest, setuptools' || {
  echo "sanitizers: $PYTHON lacks the test dependencies (pip install '.[test]')" >&2
  exit 2
}
libasan=$("$CC" -print-file-name=libasan.so)
libubsan=$("$CC" -print-file-name=libubsan.so)
libstdcxx=$("$CC" -print-file-name=libstdc++.so.6)
for lib in "$libasan" "$libubsan" "$libstdcxx"; do
  # -print-file-name echoes the bare name back when the library is not installed.
  [ -e "$lib" ] || { echo "sanitizers: $CC has no ${lib##*/} (install libasan/libubsan for $CC)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/closecodec-sanitizers.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
  trap 'echo "sanitizers: kept $work"' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
copy=$work/closecodec
logs=$work/logs
mkdir -p "$copy" "$logs"

say "copying $root to $copy"
# The working tree as it is (uncommitted changes included), without build
# products: the extension is cythonized and compiled afresh from the sources.
tar -C "$root" \
  --exclude=./.git --exclude='./.venv*' --exclude=./build --exclude=./dist --exclude='*.egg-info' \
  --exclude=.hypothesis --exclude=.pytest_cache --exclude=__pycache__ --exclude=./fuzz/build --exclude=./fuzz/crashes \
  --exclude='./src/closecodec/*.so' --exclude='./src/closecodec/*.c' --exclude='./src/closecodec/*.html' \
  --exclude='./src/closecodec/*/*.so' --exclude='./src/closecodec/*/*.c' --exclude='./src/closecodec/*/*.html' \
  -cf - . | tar -C "$copy" -xf -

say "building the extensions with ASan + UBSan ($CC)"
flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -O1 -g"
# setup.py builds every _c.pyx and each .py with a .pxd. It runs through pip, in an
# isolated environment with the build requirements pyproject.toml declares
# (setuptools>=77, Cython): not with whatever setuptools $PYTHON has (a venv
# of Python 3.11 comes with 65.x, which cannot read pyproject.toml's license).
# distutils appends CFLAGS/LDFLAGS after the interpreter's own flags, so -O1
# wins over its -O3. The wheel's compiled modules go beside the copy's
# sources, as `setup.py build_ext --inplace` would put them.
(cd "$copy" && env -u CLOSECODEC_NO_EXTENSIONS CLOSECODEC_BUILD_EXTENSION=1 CC="$CC" \
  CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
  "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$work/wheel" .)
"$PYTHON" - "$work"/wheel/closecodec-*.whl "$copy/src" <<'PY'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in wheel.namelist():
        if name.startswith("closecodec/") and name.endswith(".so"):
            wheel.extract(name, sys.argv[2])
PY
shopt -s nullglob
built=("$copy"/src/closecodec/*.so "$copy"/src/closecodec/*/*.so)
[ ${#built[@]} -gt 0 ] || { echo "sanitizers: no extension was built" >&2; exit 1; }
for so in "${built[@]}"; do
  # Instrumented, not just linked: the checks call into both runtimes.
  symbols=$(nm -D --undefined-only "$so")
  for check in __asan_report_ __ubsan_handle_; do
    grep -q "$check" <<<"$symbols" || { echo "sanitizers: ${so##*/} has no $check* calls" >&2; exit 1; }
  done
done
echo "built: ${built[*]##*/}"

# Run from the copy, with its src/ first on sys.path (an editable install of
# the real tree comes later on sys.path, through a .pth file). Only the Python
# process and its children get these: not the tools this script runs.
run_env=(
  PYTHONPATH="$copy/src${PYTHONPATH:+:$PYTHONPATH}"
  # Python itself is not built with ASan: its runtime must be loaded first.
  # libstdc++ right after it, so that ASan's __cxa_throw interceptor finds the
  # real one: else the first C++ exception in a C++ extension the tests load
  # (matplotlib's ft2font) stops the process with "CHECK failed ... __cxa_throw".
  LD_PRELOAD="$libasan:$libstdcxx${LD_PRELOAD:+:$LD_PRELOAD}"
  # detect_leaks=0: CPython keeps many allocations alive until exit (interned
  # strings, module state, caches) and frees others in ways LeakSanitizer
  # cannot follow, so leak reports would be noise that hides real errors.
  # ASan reports go to $logs, one file per process (the tests' subprocesses
  # too), so that any report fails the run, whatever exit status a test saw.
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$logs/asan"
  # UBSan (a separate runtime with GCC) ignores log_path and writes to stderr;
  # with -fno-sanitize-recover=undefined the first report also ends the process.
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  # Every Python object through malloc, so that ASan sees overflows of bytes
  # objects and other buffers too (pymalloc's pools would hide them).
  PYTHONMALLOC=malloc
)

say "running the suite against the sanitized build"
status=0
# --capture=sys: pytest captures Python's sys.stdout/stderr only, so that a
# report written to file descriptor 2 by a dying process is not swallowed with
# the test's captured output. Standard error is kept, to be searched for reports.
# -m "not processes": the tests that start a process pool or a Dask cluster are
# left out. A process forked under ASan with PYTHONMALLOC=malloc hung in the
# allocator (seen here), and spawned ones repeat the whole start-up under ASan.
# The readers those processes run are tested in this process too
# (tests/test_capture_parallel.py), and the fuzz harness chunk replays its seeds below.
# -m "not capture": the tests that capture on loopback run their command without the
# sanitizers (a capture tool with ASan's runtime preloaded may hang); in CI they would
# only capture beside the same tests of the main run, which overran tcpdump's buffer.
(cd "$copy" && env -u CLOSECODEC_NO_EXTENSIONS "${run_env[@]}" \
  "$PYTHON" - "$copy" -p no:cacheprovider --capture=sys -m "not processes and not capture" "$@" 2>"$work/stderr.txt" <<'PY'
import importlib
import sys
from pathlib import Path

import closecodec
import pytest

package = Path(sys.argv[1], "src", "closecodec")
assert Path(closecodec.__file__).parent == package, f"closecodec from {closecodec.__file__}, not {package}"
assert closecodec.BACKEND == "c", f"backend {closecodec.BACKEND!r}, not the compiled one"
pure_mode = [path for path in package.rglob("*.py") if path.with_suffix(".pxd").is_file()]
for source in sorted(pure_mode) + sorted(package.rglob("*_c.pyx")):
    module = importlib.import_module(".".join(("closecodec",) + source.relative_to(package).with_suffix("").parts))
    where = Path(module.__file__)
    assert where.parent == source.parent and where.suffix == ".so", f"{module.__name__} from {where}"
print(f"suite runs against {closecodec.__file__} (BACKEND {closecodec.BACKEND!r})", flush=True)
sys.exit(pytest.main(sys.argv[2:]))
PY
) || status=$?

say "replaying the fuzz seeds through every harness"
# The differential harnesses of fuzz/, once per seed (generated afresh: the copy
# has no fuzz/build/), against this same build. A kept corpus is replayed under
# ASan by `python -m fuzz --seeds --asan --instrumented`.
(cd "$copy" && env -u CLOSECODEC_NO_EXTENSIONS "${run_env[@]}" "$PYTHON" -m fuzz --seeds 2>>"$work/stderr.txt") || status=$?

reports=("$logs"/*)
if grep -qE 'runtime error:|ERROR: AddressSanitizer|UndefinedBehaviorSanitizer' "$work/stderr.txt"; then
  reports+=("$work/stderr.txt")
elif [ -s "$work/stderr.txt" ]; then
  say "standard error of the run"
  cat "$work/stderr.txt"
fi
if [ ${#reports[@]} -gt 0 ]; then
  say "sanitizer reports (${#reports[@]})"
  for report in "${reports[@]}"; do
    echo "--- ${report##*/}"
    cat "$report"
  done
  exit 1
fi
if [ "$status" -ne 0 ]; then
  say "the suite failed (exit status $status) without a sanitizer report"
  exit "$status"
fi
say "clean: the suite passed with no ASan or UBSan report"
