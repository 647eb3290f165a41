"""The one switch that turns the compiled extensions off.

Read by the backend selector at import and by ``setup.py`` at build time, so
that both honour the same rule: ``CLOSECODEC_NO_EXTENSIONS`` set to anything but
an empty string or ``0`` forces pure Python, and so does any interpreter other
than CPython. This module must stay importable on its own (stdlib only).
"""

import os
import platform

NO_EXTENSIONS: bool = (
    os.environ.get("CLOSECODEC_NO_EXTENSIONS", "") not in ("", "0")
    or platform.python_implementation() != "CPython"
)
