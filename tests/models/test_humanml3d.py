"""HumanML3D 263-d features <-> joints against the released sample (humanml3d_sample/012314)."""

from __future__ import annotations

import numpy as np
import pytest

from models.motion import forward_kinematics, get_skeleton
from models.motion.humanml3d import (
    KIT,
    T2M,
    features_to_joints,
    joints_to_features,
    load_humanml3d,
)
from models.motion.io import load_motion
from models.motion.rotations import (
    cont6d_to_matrix,
    euler_to_quat,
    quat_between,
    quat_rotate,
    quat_to_cont6d,
    quat_to_matrix,
)


@pytest.fixture(scope="module")
def sample(shared_data):
    folder = shared_data / "humanml3d_sample"
    return np.load(folder / "new_joints" / "012314.npy"), np.load(folder / "new_joint_vecs" / "012314.npy")


def test_feature_layout():
    assert T2M.feature_dim == 263 and KIT.feature_dim == 251
    slices = T2M.slices()
    assert [slices[k].stop - slices[k].start for k in slices] == [1, 2, 1, 63, 126, 66, 4]
    assert slices["foot_contact"].stop == 263


def test_released_features_decode_to_released_joints(sample):
    joints, features = sample
    decoded = features_to_joints(features)
    assert decoded.shape == (170, 22, 3) and decoded.dtype == np.float32
    assert np.abs(decoded - joints).max() < 1e-5  # metres (the issue asks for 1e-4)


def test_batched_decode_matches_single(sample):
    _, features = sample
    batch = np.stack([features, features[::-1].copy()])
    decoded = features_to_joints(batch)
    assert decoded.shape == (2, 170, 22, 3)
    np.testing.assert_allclose(decoded[0], features_to_joints(features), atol=1e-6)


def test_encode_then_decode_reproduces_joints(sample):
    joints, _ = sample
    features = joints_to_features(joints)
    assert features.shape == (169, 263) and features.dtype == np.float32
    # the released joints are already canonical (t2m bones, on the floor, frame 0 at the origin facing +Z)
    assert np.abs(features_to_joints(features) - joints[:-1]).max() < 1e-5


def test_encode_reproduces_released_features(sample):
    """Every slice matches the released vectors away from the clip's end; near the end HumanML3D's heading smoothing
    (sigma 20, radius 80 frames) saw one more frame than the released joints contain (see the module docstring)."""
    joints, released = sample
    features = joints_to_features(joints)
    reference = released[:-1]
    away_from_end = slice(0, len(features) - 80)
    for name, columns in T2M.slices().items():
        error = np.abs(features[away_from_end, columns] - reference[away_from_end, columns]).max()
        assert error < 1e-4, f"{name}: max error {error:.2e} in rows 0..{away_from_end.stop - 1}"
    np.testing.assert_array_equal(features[:, T2M.slices()["foot_contact"]], reference[:, 259:263])
    np.testing.assert_allclose(features[:, 3], reference[:, 3], atol=1e-6)  # root height: no heading involved
    assert np.abs(features[:, T2M.slices()["ric"]] - reference[:, 4:67]).max() < 1e-2  # whole clip, metres


def test_features_are_invariant_to_placement(sample):
    """Floor, XZ origin and face-+Z canonicalisation: a moved, turned copy encodes to the same features."""
    joints, _ = sample
    turn = euler_to_quat(np.array([0.0, 63.0, 0.0]), "XYZ")
    moved = quat_rotate(turn, joints.astype(np.float64)) + np.array([3.0, 0.5, -2.0])
    np.testing.assert_allclose(joints_to_features(moved), joints_to_features(joints), atol=2e-5)


def test_encode_resamples_to_20_fps(sample):
    joints, _ = sample
    times_40 = np.arange(340) / 40.0
    times_20 = np.arange(170) / 20.0
    upsampled = np.stack(
        [np.interp(times_40, times_20, joints[:, j, k]) for j in range(22) for k in range(3)], axis=1
    ).reshape(340, 22, 3)
    np.testing.assert_allclose(joints_to_features(upsampled, fps=40.0), joints_to_features(joints), atol=1e-5)


def _synthetic_motion(skeleton_name: str, frames: int, seed: int) -> np.ndarray:
    """A smooth random motion: FK of the registry skeleton with slowly varying joint angles and a walking root."""
    skeleton = get_skeleton(skeleton_name)
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, frames)[:, None, None]
    shape = (1, skeleton.num_joints, 3)
    phase, amplitude = rng.uniform(0, 2 * np.pi, shape), rng.uniform(5, 25, shape)
    angles = amplitude * np.sin(2 * np.pi * t + phase)
    angles[:, 0, 1] = 140.0 * t[:, 0, 0]  # the body turns while it moves
    rotations = euler_to_quat(angles, "ZYX")
    root = np.stack([1.5 * t[:, 0, 0], np.full(frames, 0.95), 0.8 * t[:, 0, 0] ** 2], axis=1)
    positions, _ = forward_kinematics(skeleton, rotations, root)
    return positions.astype(np.float64)


@pytest.mark.parametrize(("dataset", "skeleton"), [("t2m", "smpl22"), ("kit", "kit21")])
def test_round_trip_of_synthetic_motion(dataset, skeleton):
    joints = _synthetic_motion(skeleton, 60, seed=3)
    features = joints_to_features(joints, fps=20.0 if dataset == "t2m" else 12.5, dataset=dataset, bone_lengths=None)
    assert features.shape == (59, 263 if dataset == "t2m" else 251)
    decoded = features_to_joints(features, dataset).astype(np.float64)
    expected = joints[:-1].copy()
    expected[..., 1] -= joints[..., 1].min()  # on the floor
    np.testing.assert_allclose(decoded[..., 1], expected[..., 1], atol=1e-5)
    # the rest is a rotation about +Y and a horizontal shift: all pairwise joint distances per frame are kept
    def pairwise(x):
        return np.linalg.norm(x[:, :, None] - x[:, None], axis=-1)

    np.testing.assert_allclose(pairwise(decoded), pairwise(expected), atol=1e-5)
    # and frame 0 faces +Z (hips + shoulders across direction is -X)
    right_hip, left_hip, right_shoulder, left_shoulder = (KIT if dataset == "kit" else T2M).face_joints
    across = decoded[0, right_hip] - decoded[0, left_hip] + decoded[0, right_shoulder] - decoded[0, left_shoulder]
    assert across[0] < 0 and abs(across[2]) < 1e-5


def test_uniform_skeleton_sets_t2m_bone_lengths():
    joints = _synthetic_motion("smpl22", 30, seed=5) * 1.2  # a taller person
    decoded = features_to_joints(joints_to_features(joints))
    parents = list(get_skeleton("smpl22").parents)
    lengths = np.linalg.norm(decoded[:, 1:] - decoded[:, parents[1:]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(T2M.bone_lengths[1:], lengths.shape), atol=1e-5)


def test_rotation_helpers():
    v0 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # the first pair is opposite
    v1 = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
    q = quat_between(v0, v1)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0)
    np.testing.assert_allclose(quat_rotate(q, v0), v1 / np.linalg.norm(v1, axis=-1, keepdims=True), atol=1e-12)
    np.testing.assert_allclose(quat_to_cont6d(np.array([1.0, 0, 0, 0])), [1, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(cont6d_to_matrix(quat_to_cont6d(q)), quat_to_matrix(q), atol=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: features_to_joints(np.zeros((10, 262))), "263"),
        (lambda: features_to_joints(np.full((10, 263), np.nan)), "NaN"),
        (lambda: features_to_joints(np.zeros((10, 263)), "smplx"), "unknown"),
        (lambda: joints_to_features(np.zeros((1, 22, 3))), "at least 2 frames"),
        (lambda: joints_to_features(np.zeros((5, 21, 3))), r"\(T, 22, 3\)"),
        (lambda: joints_to_features(np.full((5, 22, 3), np.inf)), "NaN"),
        (lambda: joints_to_features(np.ones((5, 22, 3)), fps=-20.0), "fps"),
        (lambda: joints_to_features(np.ones((5, 22, 3))), "zero length"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_load_humanml3d_files(shared_data, sample):
    joints, _ = sample
    folder = shared_data / "humanml3d_sample"
    for path, representation in ((folder / "new_joints" / "012314.npy", "joints"),
                                 (folder / "new_joint_vecs" / "012314.npy", "features263")):  # fmt: skip
        motion = load_motion(path)
        assert motion.skeleton.name == "smpl22" and motion.fps == 20.0 and motion.num_frames == 170
        assert motion.metadata["representation"] == representation
        assert np.abs(motion.positions - joints).max() < 1e-5


def test_load_humanml3d_kit_millimetres_and_bad_files(tmp_path):
    kit = _synthetic_motion("kit21", 25, seed=1) * 1000.0
    np.save(tmp_path / "kit.npy", kit.astype(np.float32))
    motion = load_humanml3d(tmp_path / "kit.npy")
    assert motion.skeleton.name == "kit21" and motion.fps == 12.5 and motion.metadata["unit_scale_m"] == 0.001
    np.testing.assert_allclose(motion.positions, kit / 1000.0, atol=1e-5)
    np.save(tmp_path / "odd.npy", np.zeros((10, 5)))
    with pytest.raises(ValueError, match=r"\(T, 263\)"):
        load_humanml3d(tmp_path / "odd.npy")
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(ValueError, match="not a readable"):
        load_humanml3d(tmp_path / "text.npy")
