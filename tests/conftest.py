"""One suite, two backends: Hypothesis profiles, and the fixtures that run a test once per backend.

For each room with a compiled module and its pure twin, ``<room>`` gives each
backend of the room in turn (``c`` skips, with the import error, where it is not
built) and ``<room>_both`` gives the compiled and the pure one together, for
differential tests. ``side`` runs a test once per side with the selector on that
side: the close-record readers the test makes run on that side's byte loops.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any, Iterator, Tuple

import pytest
from hypothesis import HealthCheck, settings

from helpers import SIDES, backend_module, use_backend

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
# CI's second looks at the same suite (the installed wheel, the pure sdist, other
# Pythons, the sanitized build): every test, fewer examples; the README's run has the depth.
settings.register_profile(
    "smoke", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("CLOSECODEC_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def _room_fixtures(room: str) -> Tuple[Any, Any]:
    """The ``<room>`` and ``<room>_both`` fixtures of one room."""

    @pytest.fixture(params=SIDES, scope="session", name=room)
    def each(request: pytest.FixtureRequest) -> ModuleType:
        return backend_module(room, request.param)

    @pytest.fixture(scope="session", name=f"{room}_both")
    def both() -> Tuple[ModuleType, ModuleType]:
        return backend_module(room, "c"), backend_module(room, "py")

    return each, both


diffusion_each, diffusion_both = _room_fixtures("diffusion")
websocket_each, websocket_both = _room_fixtures("websocket")
mqtt_each, mqtt_both = _room_fixtures("mqtt")
capture_each, capture_both = _room_fixtures("capture")


@pytest.fixture(params=SIDES)
def side(request: pytest.FixtureRequest) -> Iterator[str]:
    """``"c"`` then ``"py"``, with the selector on that side during the test (see ``helpers.use_backend``)."""
    with use_backend(request.param):
        yield request.param
