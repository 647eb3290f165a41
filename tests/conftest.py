"""One suite, two backends: the ``codec`` fixture runs a test once per backend."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Dict, Optional

import pytest
from hypothesis import HealthCheck, settings

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


def _load(name: str) -> "tuple[Optional[ModuleType], Optional[str]]":
    try:
        return importlib.import_module(f"closecodec.{name}"), None
    except ImportError as error:
        return None, f"{name} is not importable: {error}"


# Each compiled module and its pure twin: Diffusion (codec) and WebSocket/MQTT (transport).
BACKENDS: Dict[str, "tuple[Optional[ModuleType], Optional[str]]"] = {"c": _load("_codec_c"), "py": _load("_codec_py")}
TRANSPORTS: Dict[str, "tuple[Optional[ModuleType], Optional[str]]"] = {
    "c": _load("_transport_c"),
    "py": _load("_transport_py"),
}


def _or_skip(table: Dict[str, "tuple[Optional[ModuleType], Optional[str]]"], name: str) -> ModuleType:
    module, reason = table[name]
    if module is None:
        pytest.skip(reason or "backend missing")
    return module


@pytest.fixture(params=["c", "py"], scope="session")
def codec(request: pytest.FixtureRequest) -> ModuleType:
    """Each Diffusion backend in turn; ``c`` skips, with the import error, where it is not built."""
    return _or_skip(BACKENDS, request.param)


@pytest.fixture(scope="session")
def both() -> "tuple[ModuleType, ModuleType]":
    """The compiled and the pure Diffusion backend together, for differential tests."""
    return _or_skip(BACKENDS, "c"), _or_skip(BACKENDS, "py")


@pytest.fixture(params=["c", "py"], scope="session")
def transport(request: pytest.FixtureRequest) -> ModuleType:
    """Each WebSocket/MQTT backend in turn; ``c`` skips, with the import error, where it is not built."""
    return _or_skip(TRANSPORTS, request.param)


@pytest.fixture(scope="session")
def transport_both() -> "tuple[ModuleType, ModuleType]":
    """The compiled and the pure WebSocket/MQTT backend together, for differential tests."""
    return _or_skip(TRANSPORTS, "c"), _or_skip(TRANSPORTS, "py")
