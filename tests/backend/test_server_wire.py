"""The DESIGN §2 wire format: arrays and motions survive the trip; malformed payloads are refused clearly."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from backend.wire_motion import motion_from_payload, motion_to_payload
from blender_addon.wire import WIRE_DTYPES, decode_array, decode_motion, encode_array
from models.motion import load_bvh


@pytest.mark.parametrize("dtype", WIRE_DTYPES)
def test_array_round_trip_every_dtype(dtype: str):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 2)) * 50).astype(dtype)
    payload = encode_array(array)
    assert payload["dtype"] == dtype and payload["shape"] == [3, 4, 2]
    back = decode_array(payload)
    assert back.dtype == array.dtype and np.array_equal(back, array) and back.flags.writeable


def test_big_endian_and_non_contiguous_inputs_travel_as_little_endian():
    array = np.arange(12, dtype=">f4").reshape(3, 4).T
    payload = encode_array(array)
    assert base64.b64decode(payload["data"])[:4] == np.float32(0).tobytes()
    assert np.array_equal(decode_array(payload), array.astype(np.float32))
    assert np.frombuffer(base64.b64decode(payload["data"]), "<f4")[1] == 4.0  # C order of the transposed view


@pytest.mark.parametrize(
    "payload,message",
    [
        ({"dtype": "object", "shape": [1], "data": ""}, "not allowed"),
        ({"dtype": "float32", "shape": [2], "data": "AAAA"}, "needs 8"),
        ({"dtype": "float32", "shape": [-1], "data": ""}, "non-negative"),
        ({"dtype": "float32", "shape": [1], "data": "***"}, "base64"),
        ({"dtype": "float32", "shape": [1 << 20, 1 << 20], "data": ""}, "at most"),
        ({"dtype": "float32", "shape": [1]}, "needs"),
    ],
)
def test_malformed_arrays_are_refused(payload, message):
    with pytest.raises(ValueError, match=message):
        decode_array(payload)


def test_encode_refuses_object_arrays():
    with pytest.raises(TypeError, match="object"):
        encode_array(np.array([{"a": 1}], dtype=object))


def test_bvh_motion_round_trip(shared_data: Path):
    motion = load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh")
    payload = motion_to_payload(motion)
    wire = decode_motion(payload)  # what the add-on sees
    assert wire.joint_names == list(motion.skeleton.joint_names) and wire.num_frames == motion.num_frames
    back = motion_from_payload(payload)
    assert back.fps == motion.fps and back.skeleton.parents == motion.skeleton.parents
    for name in ("positions", "rotations", "root_translation"):
        assert np.array_equal(getattr(back, name), getattr(motion, name))
    assert np.array_equal(back.skeleton.rest_offsets, motion.skeleton.rest_offsets)


def test_inconsistent_motion_payloads_are_refused(shared_data: Path):
    motion = load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh")
    payload = motion_to_payload(motion)
    payload["rotations"] = encode_array(motion.rotations[:10])
    with pytest.raises(ValueError, match="rotations must be"):
        decode_motion(payload)
    payload = motion_to_payload(motion)
    payload["positions"] = encode_array(np.full_like(motion.positions, np.nan))
    with pytest.raises(ValueError, match="NaN"):
        motion_from_payload(payload)
    with pytest.raises(ValueError, match="not a motion payload"):
        decode_motion({"fps": 30})
