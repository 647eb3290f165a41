"""Which backends this run can measure."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Optional, Tuple


def pair(room: str) -> Tuple[Optional[ModuleType], ModuleType]:
    """The compiled module of ``room`` (None, with a note, where it is not built) and its pure twin."""
    try:
        compiled: Optional[ModuleType] = importlib.import_module(f"closecodec.{room}._c")
    except ImportError:
        print(f"note: the compiled {room} module is not built; measuring pure Python only")
        compiled = None
    return compiled, importlib.import_module(f"closecodec.{room}._py")
