"""Build the compiled backend with libFuzzer's coverage instrumentation, in a copy of the sources.

atheris's recipe for native extensions (its native_extension_fuzzing.md):
compile with clang and ``-fsanitize=fuzzer-no-link`` (plus ``address`` for
AddressSanitizer), then run Python with atheris's ``asan_with_fuzzer.so``
preloaded, which supplies the coverage callbacks (and the ASan runtime).

The copy lives in ``fuzz/build/<variant>/`` (git-ignored) and is built there
in place; ``src/`` (and any in-place build in it) is never touched.
It is rebuilt only when a source file, the flags or the compiler change.
setup.py's module list and Cython directives are reused, but not its
pyproject-driven metadata: the copy is built by a small setup() of its own, so
any setuptools with Cython will do.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(__file__).resolve().parent / "build"

CFLAGS = {
    "coverage": "-fsanitize=fuzzer-no-link",
    "asan": "-fsanitize=address,fuzzer-no-link -fno-omit-frame-pointer",
}

# Run in the build copy: cythonize every _c.pyx and the value modules (value.py, */values.py) as
# setup.py does, in place. Not capture/reassembly.py, records.py and midstream.py, which setup.py also
# compiles: they are Python-level logic, the same compiled or interpreted, and the harnesses
# test the backends beneath them.
_SETUP = """
import sys
from pathlib import Path
from setuptools import Extension, setup
from Cython.Build import cythonize
package = Path("src/closecodec")
sources = sorted(str(path) for path in package.rglob("value*.py")) + sorted(str(path) for path in package.rglob("*_c.pyx"))
modules = [Extension(".".join(Path(source).relative_to("src").with_suffix("").parts), [source]) for source in sources]
packages = ["closecodec"] + ["closecodec." + p.parent.name for p in package.glob("*/__init__.py")]
setup(name="closecodec-fuzz-build", package_dir={"": "src"}, packages=packages,
      ext_modules=cythonize(modules, compiler_directives=DIRECTIVES, quiet=True),
      script_args=["build_ext", "--inplace", "-q"])
"""


def compiler_directives() -> Dict[str, object]:
    """setup.py's COMPILER_DIRECTIVES, read without running setup.py."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "COMPILER_DIRECTIVES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError("setup.py has no COMPILER_DIRECTIVES")


def _sources() -> List[Path]:
    """The package's files, less what a build makes (C sources, modules, caches)."""
    package = ROOT / "src" / "closecodec"
    return sorted(p for p in package.rglob("*")
                  if p.is_file() and p.suffix not in (".c", ".so", ".pyd", ".html", ".pyc") and "__pycache__" not in p.parts)


def _fingerprint(variant: str, cc: str) -> str:
    digest = hashlib.sha256()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    digest.update(f"{variant}\n{CFLAGS[variant]}\n{version}\n{sys.version}\n".encode())
    digest.update(repr(compiler_directives()).encode())
    for path in _sources():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def find_clang() -> str:
    cc = os.environ.get("FUZZ_CC") or shutil.which("clang")
    if not cc:
        raise SystemExit(
            "fuzz: clang is needed to build the instrumented extension "
            "(Debian/Ubuntu: apt-get install clang, which brings libclang-rt-*-dev)"
        )
    return cc


def build(variant: str = "coverage", *, force: bool = False, quiet: bool = False) -> Path:
    """Build (if needed) and return ``fuzz/build/<variant>/src``, to put first on ``sys.path``."""
    cc = find_clang()
    target = BUILD / variant
    src = target / "src"
    stamp = target / "fingerprint"
    fingerprint = _fingerprint(variant, cc)
    if not force and stamp.exists() and stamp.read_text() == fingerprint:
        if not quiet:
            print(f"fuzz: instrumented build ({variant}) is up to date: {src}", flush=True)
        return src
    if target.exists():
        shutil.rmtree(target)
    (src / "closecodec").mkdir(parents=True)
    for path in _sources():
        copy = target / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
    flags = CFLAGS[variant]
    env = dict(os.environ, CC=cc, LDSHARED=f"{cc} -shared", CFLAGS=flags, LDFLAGS=flags)
    env.pop("CLOSECODEC_NO_EXTENSIONS", None)
    cxx = shutil.which("clang++")
    if cxx:
        env["CXX"] = cxx
    print(f"fuzz: building the instrumented extension ({variant}: CC={cc} CFLAGS={flags!r}) in {target}", flush=True)
    code = f"DIRECTIVES = {compiler_directives()!r}\n" + _SETUP
    result = subprocess.run([sys.executable, "-c", code], cwd=target, env=env, capture_output=True, text=True)
    (target / "build.log").write_text(result.stdout + result.stderr)
    built = sorted(str(p.relative_to(src / "closecodec")) for p in (src / "closecodec").rglob("*.so"))
    # The value modules and every _c.pyx.
    expected = len(list((src / "closecodec").rglob("value*.py"))) + len(list((src / "closecodec").rglob("*_c.pyx")))
    if result.returncode != 0 or len(built) != expected:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"fuzz: the instrumented build failed (log: {target / 'build.log'})")
    stamp.write_text(fingerprint)
    print(f"fuzz: built {', '.join(built)}", flush=True)
    return src


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(CFLAGS), default="coverage")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    print(build(args.variant, force=args.force))
