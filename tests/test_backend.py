"""The backend the package picked is the one this install should have, for every room."""

import importlib
import os
import subprocess
import sys

import pytest

import closecodec
from closecodec import _backend

from helpers import LOADED, ROOMS

SWITCH_SET = os.environ.get("CLOSECODEC_NO_EXTENSIONS", "") not in ("", "0")
#: The values and the capture orchestration: plain Python, compiled in Cython's pure-Python mode.
PURE_MODE = ("value", "diffusion.values", "websocket.values", "mqtt.values", "capture.values", "capture.reassembly",
             "capture.records")


def test_the_selector_names_every_room_and_picked_one_side():
    assert _backend.PAIRS == ROOMS
    assert closecodec.BACKEND in ("c", "py")
    assert _backend.MODULES == {room: f"closecodec.{room}._{closecodec.BACKEND}" for room in ROOMS}
    assert closecodec.BACKEND_MODULES is _backend.MODULES
    with pytest.raises(TypeError):
        closecodec.BACKEND_MODULES["capture"] = "closecodec.capture._py"  # type: ignore[index]
    for room in ROOMS:
        assert getattr(_backend, room).__name__ == _backend.MODULES[room]


def test_compiled_backend_really_loaded_unless_switched_off():
    # A silent fallback to pure Python must not pass: without the switch, this
    # install is expected to have built every extension.
    if SWITCH_SET:
        assert closecodec.BACKEND == "py"
        return
    for (room, side), (module, reason) in LOADED.items():
        assert module is not None, reason
    assert closecodec.BACKEND == "c"
    for name in PURE_MODE:
        module = importlib.import_module(f"closecodec.{name}")
        assert module.__file__.endswith((".so", ".pyd")), module.__file__


def test_switch_forces_pure_python_at_import():
    env = dict(os.environ, CLOSECODEC_NO_EXTENSIONS="1")
    out = subprocess.run(
        [sys.executable, "-c", "import closecodec, closecodec._backend as b; print(closecodec.BACKEND, *b.MODULES.values())"],
        env=env, capture_output=True, text=True, check=True,
    )
    assert out.stdout.split() == ["py"] + [f"closecodec.{room}._py" for room in ROOMS]


@pytest.mark.parametrize("room", ROOMS)
def test_a_compiled_module_and_its_twin_have_the_same_names(room):
    pure, _ = LOADED[room, "py"]
    compiled, reason = LOADED[room, "c"]
    if compiled is None:
        pytest.skip(reason)
    assert set(compiled.__all__) == set(pure.__all__)
    for name in pure.__all__:
        assert hasattr(compiled, name), name


def test_the_package_exports_the_selected_side():
    for room in ("diffusion", "websocket", "mqtt"):
        module = getattr(_backend, room)
        for name in module.__all__:
            # parse_http_head, parse_mqtt_connect, ws_tile and mqtt_tile serve the capture reader.
            if not name.startswith("parse_") and not name.endswith("_tile"):
                assert getattr(closecodec, name) is getattr(module, name), name
                assert name in closecodec.__all__


def test_version_names_the_backend_of_every_room():
    out = subprocess.run(
        [sys.executable, "-m", "closecodec", "--version"], capture_output=True, text=True, check=True
    )
    text = " ".join(out.stdout.split())  # argparse wraps the line to the terminal's width
    assert closecodec.__version__ in text
    assert f"backend {closecodec.BACKEND}" in text
    for room in ROOMS:
        assert f"{room} _{closecodec.BACKEND}" in text
