"""Run one harness under atheris: ``python -m fuzz.run NAME [libFuzzer flags and corpus dirs]``.

Started by ``python -m fuzz`` with the instrumented build first on
PYTHONPATH, ``FUZZ_BUILD`` naming it and atheris's ``asan_with_fuzzer.so``
preloaded (it supplies the coverage callbacks the compiled modules call).
The pure-Python modules are instrumented by atheris as they are imported.
"""

from __future__ import annotations

import contextlib
import os
import sys

import atheris


def main() -> None:
    name, libfuzzer_args = sys.argv[1], sys.argv[2:]
    python_coverage = os.environ.get("FUZZ_PYTHON_COVERAGE", "1") != "0"
    with atheris.instrument_imports(include=["closecodec"]) if python_coverage else contextlib.nullcontext():
        import importlib

        import closecodec
        from closecodec import _backend, jsonform, reasons  # noqa: F401 (instrumented)
        from closecodec.capture import midstream, reassembly, records  # noqa: F401 (instrumented)

        # Every pure twin (Python code, instrumented) and every compiled module.
        modules = [importlib.import_module(f"closecodec.{room}._{side}") for room in _backend.PAIRS for side in ("py", "c")]
    build = os.environ.get("FUZZ_BUILD")
    if build:
        for module in [closecodec] + [module for module in modules if module.__name__.endswith("._c")]:
            if not os.path.realpath(module.__file__).startswith(os.path.realpath(build)):
                raise SystemExit(f"fuzz.run: {module.__name__} came from {module.__file__}, not the build in {build}")
    from fuzz.harnesses import HARNESSES

    atheris.Setup([sys.argv[0], *libfuzzer_args], HARNESSES[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
