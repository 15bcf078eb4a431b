"""The add-on's bpy-free pieces of the retarget apply layer: built-in rig tables and space conversions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from blender_addon import rigs, space
from models.motion import get_skeleton
from models.motion.retarget import TargetRig
from models.motion.rotations import quat_to_matrix


@pytest.mark.parametrize("name", ["smpl24", "kit21", "coco13"])
def test_builtin_rigs_equal_the_registry(name):
    skeleton = get_skeleton(name)
    rig = rigs.builtin_rig(name)
    assert rig["joint_names"] == list(skeleton.joint_names) and rig["parents"] == list(skeleton.parents)
    np.testing.assert_allclose(rig["rest_offsets"], skeleton.rest_offsets, atol=1e-6)
    assert TargetRig.from_dict(rig).num_joints == skeleton.num_joints
    with pytest.raises(ValueError, match="unknown built-in rig"):
        rigs.builtin_rig("smpl99")


def test_space_conversion_is_the_documented_basis_change():
    # Backend +Y up, +Z forward, +X left -> Blender +Z up, -Y forward, +X left.
    np.testing.assert_allclose(space.points_to_blender([[0, 1, 0], [0, 0, 1], [1, 0, 0]]),
                               [[0, 0, 1], [0, -1, 0], [1, 0, 0]])  # fmt: skip
    points = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(space.points_to_backend(space.points_to_blender(points)), points)
    assert np.linalg.det(space.BACKEND_TO_BLENDER) == pytest.approx(1.0)


def test_quaternion_helpers_agree_with_scipy():
    rotations = Rotation.random(200, random_state=1)
    wxyz = rotations.as_quat()[:, [3, 0, 1, 2]]
    np.testing.assert_allclose(space.quat_to_matrix(wxyz), rotations.as_matrix(), atol=1e-12)
    back = space.matrix_to_quat(rotations.as_matrix())
    np.testing.assert_allclose(np.abs((back * wxyz).sum(-1)), 1.0, atol=1e-12)
    product = space.quat_multiply(wxyz[:100], wxyz[100:])
    np.testing.assert_allclose(quat_to_matrix(product), (rotations[:100] * rotations[100:]).as_matrix(), atol=1e-12)
    for order in ("XYZ", "ZYX", "YZX", "XZY", "YXZ", "ZXY"):
        angles = space.quat_to_euler(wxyz, order)
        # Blender's "XYZ" rotates about X, then Y, then Z: scipy's extrinsic "xyz".
        rebuilt = Rotation.from_euler(order.lower(), angles[:, ["XYZ".index(a) for a in order]])
        np.testing.assert_allclose(rebuilt.as_matrix(), rotations.as_matrix(), atol=1e-9)


def test_pose_space_inverts_blender_pose_evaluation():
    """to_pose_space gives values that, evaluated Blender's way, return the Skeleton-convention world pose."""
    rng = np.random.default_rng(2)
    frames, joints = 4, 3
    local = Rotation.random(frames * joints, random_state=3).as_quat()[:, [3, 0, 1, 2]].reshape(frames, joints, 4)
    rest = np.tile(np.eye(4), (joints, 1, 1))
    rest[:, :3, :3] = Rotation.random(joints, random_state=4).as_matrix()
    rest[:, :3, 3] = rng.normal(size=(joints, 3))
    root = rng.normal(size=(frames, 3))
    pose, location = space.to_pose_space(local, root, rest)
    c = space.BACKEND_TO_BLENDER
    for j in range(joints):
        basis = rest[j, :3, :3]
        np.testing.assert_allclose(basis @ quat_to_matrix(pose[:, j]) @ basis.T,
                                   c @ quat_to_matrix(local[:, j]) @ c.T, atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(rest[0, :3, 3] + location @ rest[0, :3, :3].T, space.points_to_blender(root))
