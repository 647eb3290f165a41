"""The backend the package picked is the one this install should have."""

import importlib
import os
import subprocess
import sys

import closecodec
from closecodec import _codec, _codec_py

from conftest import BACKENDS, TRANSPORTS

SWITCH_SET = os.environ.get("CLOSECODEC_NO_EXTENSIONS", "") not in ("", "0")


def test_backend_is_visible_and_consistent():
    assert closecodec.BACKEND in ("c", "py")
    assert _codec.backend.__name__ == f"closecodec._codec_{closecodec.BACKEND}"


def test_compiled_backend_really_loaded_unless_switched_off():
    # A silent fallback to pure Python must not pass: without the switch, this
    # install is expected to have built the extension.
    if SWITCH_SET:
        assert closecodec.BACKEND == "py"
    else:
        assert BACKENDS["c"][0] is not None, BACKENDS["c"][1]
        assert closecodec.BACKEND == "c"
        for name in ("value", "diffusion.values", "websocket.values", "mqtt.values", "capture.values"):
            values = importlib.import_module(f"closecodec.{name}")
            assert values.__file__.endswith((".so", ".pyd")), values.__file__


def test_switch_forces_pure_python_at_import():
    env = dict(os.environ, CLOSECODEC_NO_EXTENSIONS="1")
    out = subprocess.run(
        [sys.executable, "-c", "import closecodec; print(closecodec.BACKEND)"],
        env=env, capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "py"


def test_both_backends_expose_the_same_public_names():
    public_py = {name for name in dir(_codec_py) if name.startswith(("decode_", "encode_"))}
    module_c = BACKENDS["c"][0]
    if module_c is not None:
        public_c = {name for name in dir(module_c) if name.startswith(("decode_", "encode_"))}
        assert public_c == public_py
    for name in public_py:
        assert getattr(_codec, name) is getattr(_codec.backend, name)
    assert public_py <= set(closecodec.__all__)


def test_transport_backends_expose_the_same_public_names():
    from closecodec import _transport_py

    public_py = set(_transport_py.__all__)
    assert public_py == {name for name in dir(_transport_py) if name.startswith(("decode_", "encode_", "unmask_"))} | {
        "DEFAULT_MAX_WS_PAYLOAD"
    }
    module_c = TRANSPORTS["c"][0]
    if module_c is not None:
        assert set(module_c.__all__) == public_py
        assert {name for name in dir(module_c) if name.startswith(("decode_", "encode_", "unmask_"))} | {
            "DEFAULT_MAX_WS_PAYLOAD"
        } == public_py
        assert module_c.DEFAULT_MAX_WS_PAYLOAD == _transport_py.DEFAULT_MAX_WS_PAYLOAD
    for name in public_py:
        assert getattr(_codec, name) is getattr(_codec.transport, name)
    assert public_py <= set(closecodec.__all__)


def test_one_backend_for_every_codec():
    # The selector loads the compiled pair together or the pure pair together.
    assert _codec.transport.__name__ == f"closecodec._transport_{closecodec.BACKEND}"
    if not SWITCH_SET:
        assert TRANSPORTS["c"][0] is not None, TRANSPORTS["c"][1]


def test_version_names_the_backend():
    out = subprocess.run(
        [sys.executable, "-m", "closecodec", "--version"], capture_output=True, text=True, check=True
    )
    assert closecodec.__version__ in out.stdout
    assert f"backend {closecodec.BACKEND}" in out.stdout
