"""The search job's motion queries go through the one wire decoder (blender_addon.wire): its dtype and size checks
hold there too, and a well-formed query decodes to the clip that was sent."""

from __future__ import annotations

import numpy as np
import pytest

from backend.library.jobs import motion_from_request
from blender_addon.wire import MAX_ELEMENTS, encode_array
from models.motion import load_bvh


@pytest.fixture(scope="module")
def clip(shared_data):
    return load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh")


def _request(clip, positions) -> dict:
    return {"skeleton": clip.skeleton.to_dict(), "fps": clip.fps, "positions": positions}


def test_wire_and_nested_list_queries_decode_to_the_clip(clip):
    wire = motion_from_request(_request(clip, encode_array(clip.positions.astype(np.float32))))
    nested = motion_from_request(_request(clip, clip.positions[:5].tolist()))
    assert wire.positions.shape == clip.positions.shape and wire.positions.dtype == np.float32
    assert np.array_equal(wire.positions, clip.positions.astype(np.float32))
    assert np.allclose(nested.positions, clip.positions[:5], atol=1e-6)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: {**p, "dtype": "object"}, "dtype 'object' is not allowed"),
        (lambda p: {**p, "dtype": "complex128"}, "dtype 'complex128' is not allowed"),
        (lambda p: {**p, "shape": [MAX_ELEMENTS, 2]}, "at most"),
        (lambda p: {**p, "shape": [p["shape"][0] + 1, *p["shape"][1:]]}, "needs"),
        (lambda p: {**p, "shape": [-1, 31, 3]}, "non-negative"),
        (lambda p: {**p, "data": "not base64!"}, "not valid base64"),
        (lambda p: {"dtype": p["dtype"], "shape": p["shape"]}, "needs 'dtype', 'shape' and 'data'"),
    ],
)
def test_malformed_wire_arrays_are_refused_with_the_reason(clip, mutate, message):
    payload = mutate(encode_array(clip.positions.astype(np.float32)))
    with pytest.raises(ValueError, match=message):
        motion_from_request(_request(clip, payload))

