"""The wire format and the client import and work inside Blender's Python (numpy 1.x, no Baton backend modules)."""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from blender_addon.client import BackendUnavailable, BatonClient, default_token_path
from blender_addon.wire import WireMotion, decode_array, decode_motion, encode_array, encode_motion


def test_client_and_wire_import_nothing_of_the_backend():
    code = ("import sys, blender_addon.client, blender_addon.wire; "
            "print(sorted(m for m in ('torch', 'backend', 'models', 'scipy', 'bpy') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_decodes_little_endian_bytes_written_by_any_numpy():
    payload = {"dtype": "float32", "shape": [2, 2], "data": base64.b64encode(struct.pack("<4f", 1, 2, 3, 4.5)).decode()}
    assert np.array_equal(decode_array(payload), np.array([[1, 2], [3, 4.5]], dtype=np.float32))
    assert encode_array(np.array([[1, 2], [3, 4.5]], dtype=np.float32)) == payload


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "uint8", "bool"])
def test_round_trip(dtype):
    array = (np.arange(60).reshape(3, 4, 5) % 7).astype(dtype)
    assert np.array_equal(decode_array(encode_array(array)), array)


def test_motion_payload_round_trip():
    rng = np.random.default_rng(0)
    quats = rng.normal(size=(8, 3, 4)).astype(np.float32)
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    motion = WireMotion("tiny", ["hips", "spine", "head"], [-1, 0, 1], rng.normal(size=(3, 3)).astype(np.float32),
                        30.0, rng.normal(size=(8, 3, 3)).astype(np.float32), quats,
                        rng.normal(size=(8, 3)).astype(np.float32), {"source": "test"})  # fmt: skip
    back = decode_motion(encode_motion(motion))
    assert back.joint_names == motion.joint_names and back.fps == 30.0 and back.metadata == {"source": "test"}
    for name in ("rest_offsets", "positions", "rotations", "root_translation"):
        assert np.array_equal(getattr(back, name), getattr(motion, name))


def test_client_reports_a_missing_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_token_path() == tmp_path / "baton" / "token"
    client = BatonClient("http://127.0.0.1:9", timeout=2)  # port 9 (discard): nothing listens
    assert client.token is None
    with pytest.raises(BackendUnavailable) as info:
        client.health()
    assert info.value.status == 0 and "baton serve" in info.value.hint
