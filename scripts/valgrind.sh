#!/usr/bin/env bash
# Run the suite's compiled-backend tests under valgrind memcheck: every test
# parametrised with the compiled backend (fixture id `c` of a room's fixture:
# diffusion, websocket, mqtt, capture, or of side) and every differential test
# that uses both backends (a <room>_both fixture). A
# memcheck error in closecodec's compiled modules, or a failed test, fails the
# run (errors printed at the end; CPython's own are counted apart, see below).
#
#   scripts/valgrind.sh [PYTHON] [PYTEST ARGS...]
#   PYTHON=.venv/bin/python scripts/valgrind.sh -x
#
# PYTHON (the first argument if it is an executable, else $PYTHON, else
# python3 on PATH) must have the test dependencies (`pip install '.[test]'`)
# and import the compiled backend: the tests run against the closecodec it
# imports (an install, or an in-place build), which is checked and printed.
# Needs valgrind. EXAMPLES (default 10) sets Hypothesis' max_examples for
# tests that do not set their own: memcheck runs Python ~50x slower.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -gt 0 ] && [ -x "$1" ] && [ ! -d "$1" ]; then
  PYTHON=$1
  shift
fi
PYTHON=$(command -v "${PYTHON:-python3}") || { echo "valgrind: no python found" >&2; exit 2; }
# Absolute (not resolved: a venv's python is a symlink), since the script runs it from the repository root.
[[ $PYTHON == /* ]] || PYTHON=$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")
command -v valgrind >/dev/null || { echo "valgrind: valgrind is not installed" >&2; exit 2; }
say() { printf '\n=== valgrind: %s\n' "$*"; }

(cd "$root" && env -u CLOSECODEC_NO_EXTENSIONS "$PYTHON" -c '
import closecodec, sys
sys.exit(closecodec.BACKEND != "c")') || { echo "valgrind: $PYTHON does not import the compiled backend" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/closecodec-valgrind.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A pytest plugin (loaded with -p) that keeps the compiled-backend tests and
# adds a Hypothesis profile with few examples.
cat >"$work/closecodec_valgrind_plugin.py" <<'PY'
import os

from hypothesis import HealthCheck, settings

# Registered at import, before conftest.py; --hypothesis-profile loads it after
# conftest.py has loaded its own, and before the test modules are imported.
settings.register_profile(
    "valgrind", max_examples=int(os.environ.get("EXAMPLES", "10")), deadline=None,
    suppress_health_check=list(HealthCheck), database=None,
)

# tests/conftest.py's fixtures: params "c" and "py", and both backends at once.
BACKEND_FIXTURES = ("diffusion", "websocket", "mqtt", "capture", "side")
BOTH_FIXTURES = ("diffusion_both", "websocket_both", "mqtt_both", "capture_both")


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        backends = {params[name] for name in BACKEND_FIXTURES if name in params}
        uses_both = any(name in getattr(item, "fixturenames", ()) for name in BOTH_FIXTURES)
        (keep if backends == {"c"} or (not backends and uses_both) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
PY
# The process under valgrind: says what it tests, runs pytest and writes its
# exit status to a file (valgrind's own exit status is --error-exitcode's).
cat >"$work/run_tests.py" <<'PY'
import sys

import closecodec
import pytest

print(f"tests run against {closecodec.__file__} (BACKEND {closecodec.BACKEND!r})", flush=True)
status = 3 if closecodec.BACKEND != "c" else int(pytest.main(sys.argv[2:]))
with open(sys.argv[1], "w") as out:
    out.write(str(status))
sys.exit(status)
PY

supp=()
# CPython's suppressions (Misc/valgrind-python.supp; Debian's python3-dev has a
# copy): for pymalloc's address_in_range and a few others. PYTHONMALLOC=malloc
# below already keeps pymalloc out of the way, so this is belt and braces.
for candidate in "${VALGRIND_PYTHON_SUPP:-}" /usr/lib/valgrind/python3.supp /usr/lib/valgrind/python.supp; do
  if [ -n "$candidate" ] && [ -f "$candidate" ]; then
    supp=(--suppressions="$candidate")
    break
  fi
done

say "running the compiled-backend tests under memcheck${supp:+ (${supp[0]#--suppressions=})}"
# PYTHONMALLOC=malloc: every Python allocation through malloc, where memcheck
# sees it. --leak-check=no: CPython does not free everything at exit, so leak
# reports would be noise (and leaks are not what this run looks for).
# --track-origins=yes: an uninitialised value's report names where it was
# allocated, which is how the filter below tells our errors from CPython's.
start=$SECONDS
(cd "$root" && env -u CLOSECODEC_NO_EXTENSIONS PYTHONMALLOC=malloc PYTHONPATH="$work${PYTHONPATH:+:$PYTHONPATH}" \
  valgrind --tool=memcheck --error-exitcode=1 --leak-check=no --errors-for-leak-kinds=none \
  --track-origins=yes --error-limit=no --num-callers=40 --log-file="$work/memcheck.%p.log" "${supp[@]}" \
  "$PYTHON" "$work/run_tests.py" "$work/pytest-status" \
  -p closecodec_valgrind_plugin --hypothesis-profile=valgrind -p no:cacheprovider "$@") || true
elapsed=$((SECONDS - start))
status=$(cat "$work/pytest-status" 2>/dev/null || echo "none: the process died")

# With PYTHONMALLOC=malloc, CPython 3.11 itself has memcheck errors from the
# first import on (int.from_bytes reads the uninitialised digit of a zero it
# builds, longobject.c maybe_small_long, and the small-int pointer it derives
# taints every later use; glibc's AVX2 wmemcmp reads past a string's end, a
# known false positive). They are not ours: an error counts when a frame of
# its stack, or of its origin's, is in closecodec's compiled modules.
errors=0
"$PYTHON" - "$work" <<'PY' || errors=1
import re
import sys
from pathlib import Path

ours = re.compile(r"closecodec|\b(\w*_c|values?|reassembly|records)\.c\b")
counted, other = [], 0
for log in sorted(Path(sys.argv[1]).glob("memcheck.*.log")):
    # An error is a block of lines between "==PID== " blank lines that starts with its kind.
    for block in re.split(r"^==\d+== \n", log.read_text(errors="replace"), flags=re.M):
        lines = [line for line in block.splitlines() if line.startswith("==")]
        if not lines or not re.match(r"==\d+== (Invalid|Conditional|Use of|Syscall|Source and|Mismatched|Argument|Jump|Process terminating)", lines[0]):
            continue
        if ours.search(block):
            counted.append(block)
        else:
            other += 1
print(f"memcheck: {len(counted)} errors in closecodec's modules, {other} elsewhere (CPython, libc; not counted)")
for block in counted:
    print(block)
sys.exit(1 if counted else 0)
PY

if [ "$errors" -ne 0 ]; then
  say "memcheck errors in closecodec (above; ${elapsed}s)"
  exit 1
fi
if [ "$status" != 0 ]; then
  say "the tests failed (pytest exit status $status; ${elapsed}s)"
  exit 1
fi
say "clean: the tests passed with no memcheck error in closecodec's modules (${elapsed}s)"
