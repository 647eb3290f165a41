"""Which backends and peers this run can measure."""

from __future__ import annotations

from types import ModuleType
from typing import Optional


def compiled_or_none() -> Optional[ModuleType]:
    try:
        from closecodec import _codec_c
    except ImportError:
        print("note: the compiled backend is not built; measuring pure Python only")
        return None
    return _codec_c
