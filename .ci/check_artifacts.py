"""Check what the built wheel and sdist hold (issue: wheels).

Usage: python .ci/check_artifacts.py DIST_DIR [--pure]
"""

import sys
import tarfile
import zipfile
from fnmatch import fnmatch
from pathlib import Path

dist = Path(sys.argv[1])
pure = "--pure" in sys.argv
(wheel,) = dist.glob("closecodec-*.whl")
(sdist,) = dist.glob("closecodec-*.tar.gz")
problems = []

names = zipfile.ZipFile(wheel).namelist()
required = [
    "closecodec/__init__.py",
    "closecodec/_codec_py.py",
    "closecodec/_codec_c.pyi",
    "closecodec/_codec_c.pxd",
    "closecodec/frames.pxd",
    "closecodec/frames.py",
    "closecodec/py.typed",
    "closecodec-*.dist-info/entry_points.txt",
]
if not pure:
    required += ["closecodec/_codec_c.*.so", "closecodec/frames.*.so"]
for pattern in required:
    if not any(fnmatch(name, pattern) for name in names):
        problems.append(f"wheel lacks {pattern}")
for name in names:
    if name.startswith(("tests/", "benchmarks/", "docs/")) or name.endswith((".c", ".pyx", ".html")):
        problems.append(f"wheel should not hold {name}")

members = [m.split("/", 1)[1] for m in tarfile.open(sdist).getnames() if "/" in m]
for needed in ["pyproject.toml", "setup.py", "README.md", "LICENSE", "MANIFEST.in",
               "src/closecodec/_codec_c.pyx", "src/closecodec/_codec_c.pxd", "src/closecodec/frames.pxd",
               "tests/conftest.py"]:
    if needed not in members:
        problems.append(f"sdist lacks {needed}")
for member in members:
    if member.endswith((".c", ".so")):
        problems.append(f"sdist should not hold generated {member}")

print(f"{wheel.name}: {len(names)} files; {sdist.name}: {len(members)} files")
for problem in problems:
    print("  PROBLEM:", problem)
sys.exit(1 if problems else 0)
