"""Check what the built wheel and sdist hold, and the wheel's metadata (issue: wheels).

Usage: python .ci/check_artifacts.py DIST_DIR [--pure]

DIST_DIR holds one closecodec wheel and one sdist. --pure: the wheel was built with
CLOSECODEC_NO_EXTENSIONS=1 and must hold no compiled module.

The sdist is the reference for the wheel: every file of the package in the sdist
is in the wheel (except the Cython sources), and nothing else is, apart from one
compiled module per Cython source. So a new data file (a sample capture) or a new
*_c.pyx that the packaging forgets fails here rather than in a user's install.
The git checkout, when there is one, is the reference for the sdist.
Standard library only: runs on any CPython the project supports.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "closecodec"
# Compiled in the wheel, source only in the sdist.
CYTHON_SOURCES = ("*_c.pyx",)
NEVER_IN_SDIST = ("*.c", "*.so", "*.pyd", "*.html", "*.pyc", "*.pyo", "*/__pycache__/*")
NEVER_IN_WHEEL = NEVER_IN_SDIST[:1] + ("*.pyx",) + NEVER_IN_SDIST[3:]
# Tracked files that are for this repository's CI, not for anyone building from the sdist.
REPO_ONLY = (".ci/*", ".github/*", ".gitignore", ".gitattributes")
# URL text that means "fill me in later".
PLACEHOLDER = re.compile(
    r"example\.(com|org|net)|localhost|\bTODO\b|\bTBD\b|changeme|your[-_ ]?(org|name|user)|"
    r"\bOWNER\b|\bUSERNAME\b|<[^>]+>|xxx",
    re.IGNORECASE,
)

dist = Path(sys.argv[1])
pure = "--pure" in sys.argv
(wheel,) = dist.glob(f"{PACKAGE}-*.whl")
(sdist,) = dist.glob(f"{PACKAGE}-*.tar.gz")
problems: list[str] = []


def problem(text: str) -> None:
    problems.append(text)


def matches(name: str, patterns) -> bool:
    return any(fnmatch(name, pattern) or fnmatch(PurePosixPath(name).name, pattern) for pattern in patterns)


# --- sdist --------------------------------------------------------------------

with tarfile.open(sdist) as archive:
    top = archive.getnames()[0].split("/", 1)[0]
    members = sorted(m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile() and "/" in m.name)
    sdist_text = {
        name: archive.extractfile(f"{top}/{name}").read().decode()
        for name in ("PKG-INFO", f"src/{PACKAGE}/_version.py")
        if f"{top}/{name}" in archive.getnames()
    }

for needed in ["pyproject.toml", "setup.py", "README.md", "LICENSE", "MANIFEST.in", "PKG-INFO",
               f"src/{PACKAGE}/_version.py", f"src/{PACKAGE}/_extensions.py",
               f"src/{PACKAGE}/diffusion/_c.pyx", f"src/{PACKAGE}/diffusion/_c.pxd", f"src/{PACKAGE}/value.pxd",
               f"src/{PACKAGE}/value.py", f"src/{PACKAGE}/buffer/_c.pxd", f"src/{PACKAGE}/py.typed", "tests/conftest.py"]:
    if needed not in members:
        problem(f"sdist lacks {needed}")
for member in members:
    if matches(member, NEVER_IN_SDIST):
        problem(f"sdist should not hold generated {member}")

# Everything tracked in git (but the repository's own CI) reaches the sdist: MANIFEST.in
# patterns are easy to outgrow (a new tests/data/*.pcap, a new docs page).
try:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, check=True, capture_output=True, text=True).stdout.split()
except (OSError, subprocess.CalledProcessError) as error:
    print(f"note: not comparing the sdist with git ({error})")
    tracked = []
for name in tracked:
    if not matches(name, REPO_ONLY) and name not in members:
        problem(f"sdist lacks tracked file {name} (MANIFEST.in?)")

# The Cython sources decide which compiled modules the wheel must have.
package_in_sdist = {m[len(f"src/{PACKAGE}/"):] for m in members if m.startswith(f"src/{PACKAGE}/")}
# A .py with a .pxd beside it is compiled in Cython's pure-Python mode: shipped as .py AND compiled.
compiled_sources = sorted(
    name for name in package_in_sdist
    if matches(name, CYTHON_SOURCES) or (name.endswith(".py") and name[:-3] + ".pxd" in package_in_sdist)
)
# Modules as paths inside the package, without suffixes: "diffusion/_c", "diffusion/values".
expected_modules = {str(PurePosixPath(name).with_suffix("")) for name in compiled_sources}

# --- wheel files --------------------------------------------------------------

with zipfile.ZipFile(wheel) as archive:
    names = [n for n in archive.namelist() if not n.endswith("/")]  # auditwheel adds directory entries
    dist_info = next((n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")), None)
    read = lambda name: archive.read(f"{dist_info}/{name}").decode() if f"{dist_info}/{name}" in names else ""
    metadata_text, wheel_text, entry_points = read("METADATA"), read("WHEEL"), read("entry_points.txt")

for name in names:
    root = name.split("/", 1)[0]
    if root not in (PACKAGE, dist_info):
        problem(f"wheel should not hold {name} (only {PACKAGE}/ and its .dist-info)")
    elif matches(name, NEVER_IN_WHEEL):
        problem(f"wheel should not hold {name}")

package_in_wheel = {n[len(PACKAGE) + 1:] for n in names if n.startswith(PACKAGE + "/")}
binaries = {n for n in package_in_wheel if n.endswith((".so", ".pyd"))}
for name in sorted(package_in_sdist - package_in_wheel):
    if not matches(name, CYTHON_SOURCES):
        problem(f"wheel lacks {PACKAGE}/{name}, which the sdist has (package-data?)")
for name in sorted(package_in_wheel - package_in_sdist - binaries):
    problem(f"wheel holds {PACKAGE}/{name}, which is not in the sdist")
for name in ["py.typed", "diffusion/_py.py", "diffusion/_c.pxd", "value.pxd", "buffer/_c.pxd"]:
    if name not in package_in_wheel:
        problem(f"wheel lacks {PACKAGE}/{name}")

built = {"/".join(name.split("/")[:-1] + [name.split("/")[-1].split(".", 1)[0]]) for name in binaries}
tags = re.findall(r"^Tag: (\S+)$", wheel_text, re.MULTILINE)
if pure:
    if binaries:
        problem(f"pure wheel holds compiled modules {sorted(binaries)}")
    if tags != ["py3-none-any"]:
        problem(f"pure wheel is tagged {tags}, not py3-none-any")
else:
    for module in sorted(expected_modules - built):
        problem(f"wheel lacks the compiled {PACKAGE}/{module} (from its source in the sdist)")
    for module in sorted(built - expected_modules):
        problem(f"wheel holds compiled {PACKAGE}/{module} with no source in the sdist")
    if any(tag.endswith("-any") for tag in tags) or not tags:
        problem(f"wheel with compiled modules is tagged {tags}")
    # An abi3 wheel must hold only stable-ABI modules, and a version-specific one none.
    abi3_tagged = all(tag.split("-")[1] == "abi3" for tag in tags)
    for name in sorted(binaries):
        abi3_file = ".abi3." in name or (name.endswith(".pyd") and name.count(".") == 1)
        if abi3_file != abi3_tagged:
            problem(f"{name} does not match the wheel tag {tags}")

# --- metadata -----------------------------------------------------------------

metadata = HeaderParser().parsestr(metadata_text)
version_source = sdist_text.get(f"src/{PACKAGE}/_version.py", "")
version = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", version_source)
if metadata["Name"] != PACKAGE:
    problem(f"wheel metadata Name is {metadata['Name']!r}")
if not version or metadata["Version"] != version.group(1):
    problem(f"wheel Version {metadata['Version']!r} is not _version.__version__ ({version and version.group(1)!r})")
if not wheel.name.startswith(f"{PACKAGE}-{metadata['Version']}-") or not sdist.name == f"{PACKAGE}-{metadata['Version']}.tar.gz":
    problem(f"artefact names {wheel.name}, {sdist.name} do not carry version {metadata['Version']}")
sdist_metadata = HeaderParser().parsestr(sdist_text.get("PKG-INFO", ""))
for field in ("Name", "Version", "Summary", "Requires-Python", "License-Expression"):
    if not metadata[field]:
        problem(f"wheel metadata lacks {field}")
    elif sdist_metadata[field] != metadata[field]:
        problem(f"{field} differs: wheel {metadata[field]!r}, sdist {sdist_metadata[field]!r}")
if metadata["Description-Content-Type"] != "text/markdown" or len(metadata.get_payload() or "") < 200:
    problem("wheel metadata lacks the README as a markdown long description")
if not metadata.get_all("License-File"):
    problem("wheel metadata names no License-File")
if not any(n == f"{dist_info}/licenses/LICENSE" for n in names):
    problem("wheel lacks the LICENSE file in its .dist-info")

classifiers = metadata.get_all("Classifier") or []
for needed in ["Programming Language :: Cython", "Typing :: Typed",
               "Programming Language :: Python :: Implementation :: CPython"]:
    if needed not in classifiers:
        problem(f"classifiers lack {needed!r}")
minors = sorted(int(c.rsplit(".", 1)[1]) for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
floor = re.fullmatch(r">=\s*3\.(\d+)", metadata["Requires-Python"] or "")
if not minors or not floor:
    problem(f"classifiers name no Python 3.x versions ({minors}) or Requires-Python is not >=3.x")
else:
    if minors[0] != int(floor.group(1)):
        problem(f"Requires-Python {metadata['Requires-Python']} but the oldest classifier is 3.{minors[0]}")
    if minors != list(range(minors[0], minors[-1] + 1)):
        problem(f"Python classifiers skip a version: {minors}")

extras = set(metadata.get_all("Provides-Extra") or [])
for extra in ("capture", "test", "bench", "fuzz"):
    if extra not in extras:
        problem(f"wheel metadata lacks the {extra!r} extra")
for url in metadata.get_all("Project-URL") or []:
    label, _, address = url.partition(", ")
    if not address.startswith("https://") or PLACEHOLDER.search(address):
        problem(f"Project-URL {label!r} looks like a placeholder: {address!r}")
if not re.search(r"^\[console_scripts\]\s*\n(?:.*\n)*?closecodec\s*=\s*closecodec\.cli:main\s*$", entry_points, re.MULTILINE):
    problem("wheel lacks the console script closecodec = closecodec.cli:main")

print(f"{wheel.name}: {len(names)} files, compiled {sorted(built) or 'none'}; {sdist.name}: {len(members)} files")
for text in problems:
    print("  PROBLEM:", text)
sys.exit(1 if problems else 0)
