"""The README's Python examples run and print what the README shows."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import closecodec

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text: str) -> "list[tuple[int, str]]":
    """The ```python fenced blocks of ``text`` with their first line numbers."""
    return [
        (text.count("\n", 0, match.start(1)) + 1, match.group(1))
        for match in re.finditer(r"^```python\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    ]


def test_readme_examples_run_as_shown() -> None:
    if not README.exists():
        pytest.skip(f"{README} is not beside the tests (a copy of the suite without it)")
    text = README.read_text(encoding="utf-8")
    # The README shows the compiled backend; a pure-Python install answers "py" there.
    shown = re.compile(r"^(>>> closecodec\.BACKEND .*\n)'c'$", re.MULTILINE)
    assert shown.search(text), "the README no longer shows closecodec.BACKEND"
    text = shown.sub(rf"\g<1>{closecodec.BACKEND!r}", text)
    blocks = python_blocks(text)
    assert len(blocks) >= 5, "the README's examples were not found"
    globs: dict = {}  # shared, as a reader runs the README top to bottom
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    parser = doctest.DocTestParser()
    for line, code in blocks:
        test = parser.get_doctest(code, globs, f"README.md:{line}", str(README), line)
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.attempted >= 20
    assert results.failed == 0, f"{results.failed} README example(s) failed (printed above)"
