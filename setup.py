"""Build the optional compiled backend; all other metadata is in pyproject.toml.

The extensions are optional: without a working compiler, or with
CLOSECODEC_NO_EXTENSIONS=1, the package installs with the pure-Python backend.
CLOSECODEC_BUILD_EXTENSION=1 (set in CI and cibuildwheel) makes a failed build
fatal, so a broken compiled backend can never pass unnoticed.
"""

import os
import runpy
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
PACKAGE = HERE / "src" / "closecodec"
NO_EXTENSIONS = runpy.run_path(str(PACKAGE / "_extensions.py"))["NO_EXTENSIONS"]
REQUIRE_EXTENSIONS = os.environ.get("CLOSECODEC_BUILD_EXTENSION", "") not in ("", "0")

# Directives for every compiled module, in one place (STYLE.md).
COMPILER_DIRECTIVES = {
    "language_level": 3,
    "embedsignature": True,
    "freethreading_compatible": True,
}


def pure_mode_sources(package: Path) -> list:
    """The plain Python modules compiled in Cython's pure-Python mode: each .py with a .pxd beside it."""
    return sorted(path for path in package.rglob("*.py") if path.with_suffix(".pxd").is_file())


def module_name(source: str) -> str:
    """The dotted module name of a source file under src/."""
    return ".".join(Path(source).relative_to("src").with_suffix("").parts)


def say(message: str) -> None:
    print(f"closecodec: {message}", file=sys.stderr, flush=True)


class OptionalBuildExt(build_ext):
    """build_ext that falls back to pure Python unless extensions are required, and compiles the
    modules in parallel (one per CPU unless ``--parallel`` says otherwise)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # no compiler, missing headers, ...
            self._fallback(error)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            self._fallback(error)

    def _fallback(self, error: Exception) -> None:
        if REQUIRE_EXTENSIONS:
            raise
        say(f"building the compiled backend failed ({error}); installing the pure-Python backend only")


def extensions() -> list:
    if NO_EXTENSIONS:
        say("CLOSECODEC_NO_EXTENSIONS is set (or this is not CPython): pure-Python backend only")
        return []
    # The value modules and the capture orchestration are plain Python compiled in Cython's
    # pure-Python mode (each .py with a .pxd beside it); every other compiled module is a
    # _c.pyx beside its _py.py twin (docs/architecture.md).
    sources = [str(path.relative_to(HERE)) for path in pure_mode_sources(PACKAGE)] + sorted(
        str(path.relative_to(HERE)) for path in PACKAGE.rglob("*_c.pyx")
    )
    modules = [Extension(module_name(source), [source]) for source in sources]
    try:
        from Cython.Build import cythonize

        return cythonize(modules, compiler_directives=COMPILER_DIRECTIVES)
    except Exception as error:  # Cython missing, or a .pyx that does not translate
        if REQUIRE_EXTENSIONS:
            raise
        say(f"Cython could not translate the compiled backend ({error}); pure-Python backend only")
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
