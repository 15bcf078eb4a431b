"""Skeleton registry, Motion validation, forward kinematics, resampling and the Baton .npz format."""

from __future__ import annotations

import numpy as np
import pytest

from models.motion import Motion, Skeleton, forward_kinematics, get_skeleton, load_bvh, resample, skeleton_names
from models.motion.io import load_motion, load_npz, save_npz
from models.motion.rotations import euler_to_quat, quat_multiply, quat_rotate, quat_to_euler, quat_to_matrix
from models.motion.skeleton import COCO13_EDGES, SMPL22_PARENTS, T2M_BONE_LENGTHS

CMU = "cmu_mocap_subject131_bvh/131_01.bvh"


# --- skeletons -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "joints"), [("smpl24", 24), ("smpl22", 22), ("kit21", 21), ("coco13", 13)])
def test_registry_skeletons_are_valid(name, joints):
    skeleton = get_skeleton(name)
    assert skeleton.name == name and skeleton.num_joints == joints
    assert skeleton.parents[0] == -1 and all(0 <= p < j for j, p in enumerate(skeleton.parents) if j)
    rest = skeleton.rest_positions()
    height = rest[:, 1].max() - min(rest[:, 1].min(), 0.0)
    assert 1.3 < height < 2.0, f"{name}: rest pose is {height:.2f} m tall"
    covered = {j for chain in skeleton.chains for j in chain}
    assert covered == set(range(joints)) - ({22, 23} if name == "smpl24" else set())
    for chain in skeleton.chains:  # chains follow parent links
        assert all(skeleton.parents[b] == a for a, b in zip(chain[:-1], chain[1:], strict=True)) or name == "coco13"


def test_smpl_constants_match_humanml3d():
    smpl22 = get_skeleton("smpl22")
    assert smpl22.parents == SMPL22_PARENTS
    assert smpl22.joint_names[:3] == ("pelvis", "left_hip", "right_hip") and smpl22.joint_names[21] == "right_wrist"
    np.testing.assert_allclose(smpl22.bone_lengths(), T2M_BONE_LENGTHS, atol=1e-6)
    rest = smpl22.rest_positions()
    assert rest[1, 0] > 0 > rest[2, 0]  # +X is the subject's left
    assert rest[15, 1] >= rest[12, 1] > rest[0, 1] > rest[7, 1]  # head (forward of the neck) over pelvis over ankle
    assert get_skeleton("smpl24").joint_names[22:] == ("left_hand", "right_hand")


def test_coco13_tree_uses_stgcn_edges():
    coco = get_skeleton("coco13")
    edges = {tuple(sorted(e)) for e in COCO13_EDGES}
    assert all(tuple(sorted((p, j))) in edges for j, p in enumerate(coco.parents) if p >= 0)
    assert coco.joint_names[0] == "nose" and coco.joint_names[12] == "right_hip"


def test_unknown_skeleton_lists_known_names():
    with pytest.raises(ValueError) as info:
        get_skeleton("smplx55")
    for name in skeleton_names():
        assert name in str(info.value)
    assert "smplx55" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"parents": (-1, 0, 5)}, "precede"),
        ({"parents": (-1, -1, 0)}, "only root"),
        ({"joint_names": ("a", "a", "b")}, "duplicate"),
        ({"rest_offsets": np.zeros((2, 3))}, r"\(3, 3\)"),
        ({"rest_offsets": np.full((3, 3), np.nan)}, "NaN"),
        ({"chains": ((0, 1, 7),)}, "chain"),
        ({"parents": (-1, 0)}, "parents"),
    ],
)
def test_invalid_skeleton(kwargs, message):
    base = {"name": "t", "joint_names": ("a", "b", "c"), "parents": (-1, 0, 1), "rest_offsets": np.eye(3)}
    with pytest.raises(ValueError, match=message):
        Skeleton(**{**base, **kwargs})


# --- Motion --------------------------------------------------------------------------------------------------------


def _motion(frames: int = 4, **overrides) -> Motion:
    skeleton = get_skeleton("smpl22")
    args = {"skeleton": skeleton, "fps": 20.0, "positions": np.zeros((frames, 22, 3))}
    args.update(overrides)
    return Motion(**args)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fps": -20.0}, "fps"),
        ({"fps": 0}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"fps": "fast"}, "fps"),
        ({"positions": np.zeros((4, 21, 3))}, r"\(T, 22, 3\)"),
        ({"positions": np.zeros((0, 22, 3))}, "zero frames"),
        ({"positions": np.full((4, 22, 3), np.nan)}, "NaN"),
        ({"rotations": np.zeros((4, 22, 4))}, "unit quaternions"),
        ({"rotations": np.ones((4, 22, 3))}, r"\(4, 22, 4\)"),
        ({"root_translation": np.zeros((3, 3))}, r"\(4, 3\)"),
        ({"root_translation": np.full((4, 3), np.inf)}, "NaN"),
    ],
)
def test_motion_validation(overrides, message):
    with pytest.raises(ValueError, match=message):
        _motion(**overrides)


def test_motion_rejects_non_skeleton():
    with pytest.raises(TypeError, match="Skeleton"):
        Motion("smpl22", 20.0, np.zeros((1, 22, 3)))


def test_motion_info():
    info = _motion(frames=50).info()
    assert info["skeleton"] == "smpl22" and info["joints"] == 22 and info["frames"] == 50
    assert info["duration_s"] == pytest.approx(2.5) and info["dimensions"] == 3


# --- rotations and FK ----------------------------------------------------------------------------------------------


def test_euler_conversion_round_trip():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-80, 80, (50, 3))
    for order in ("ZYX", "XYZ", "ZXY", "YXZ"):
        q = euler_to_quat(angles, order)
        np.testing.assert_allclose(quat_to_euler(q, order), angles, atol=1e-8)
    # intrinsic ZYX is Rz @ Ry @ Rx (matrices written out by hand)
    def axis(name, degrees):
        c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
        return {"X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]), "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
                "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[name]  # fmt: skip

    q = euler_to_quat(np.array([30.0, 20.0, 10.0]), "ZYX")
    np.testing.assert_allclose(quat_to_matrix(q), axis("Z", 30) @ axis("Y", 20) @ axis("X", 10), atol=1e-12)
    q = euler_to_quat(np.array([30.0, 20.0, 10.0]), "XZY")
    np.testing.assert_allclose(quat_to_matrix(q), axis("X", 30) @ axis("Z", 20) @ axis("Y", 10), atol=1e-12)
    np.testing.assert_allclose(quat_to_matrix(quat_multiply(q, q)), quat_to_matrix(q) @ quat_to_matrix(q), atol=1e-12)


def test_forward_kinematics_identity_is_rest_pose():
    skeleton = get_skeleton("kit21")
    rotations = np.zeros((3, 21, 4))
    rotations[..., 0] = 1
    positions, world = forward_kinematics(skeleton, rotations)
    np.testing.assert_allclose(positions, np.broadcast_to(skeleton.rest_positions(), (3, 21, 3)), atol=1e-6)
    np.testing.assert_allclose(world, np.broadcast_to(np.eye(3), (3, 21, 3, 3)), atol=1e-12)


def test_forward_kinematics_bends_a_chain():
    skeleton = Skeleton("arm", ("shoulder", "elbow", "wrist"), (-1, 0, 1), [[0, 1, 0], [1, 0, 0], [1, 0, 0]])
    rotations = np.zeros((1, 3, 4))
    rotations[..., 0] = 1
    rotations[0, 1] = euler_to_quat(np.array([90.0, 0, 0]), "ZYX")  # elbow bends 90 degrees about +Z
    positions, _ = forward_kinematics(skeleton, rotations)
    np.testing.assert_allclose(positions[0], [[0, 1, 0], [1, 1, 0], [1, 2, 0]], atol=1e-6)
    with pytest.raises(ValueError, match=r"\(T, 3, 4\)"):
        forward_kinematics(skeleton, np.zeros((1, 2, 4)))


# --- resampling ----------------------------------------------------------------------------------------------------


def test_resample_cmu_120_to_30(shared_data):
    motion = load_bvh(shared_data / CMU)
    assert motion.fps == 120.0  # Frame Time 0.008333 s is 120.0048 fps; the reader snaps it to 120
    low = resample(motion, 30.0)
    assert low.fps == 30.0 and low.num_frames == round(motion.num_frames / 4)
    assert low.duration_s == pytest.approx(motion.duration_s, abs=1 / 30)
    # every 4th source frame lands exactly on a target frame
    np.testing.assert_allclose(low.positions, motion.positions[::4][: low.num_frames], atol=1e-6)
    np.testing.assert_allclose(np.abs((low.rotations * motion.rotations[::4][: low.num_frames]).sum(-1)), 1, atol=1e-5)
    assert low.metadata["resampled_from_fps"] == 120.0


def test_resample_slerps_rotations_halfway():
    skeleton = get_skeleton("coco13")
    q = np.zeros((2, 13, 4))
    q[..., 0] = 1
    q[1, :] = euler_to_quat(np.array([0.0, 80.0, 0.0]), "XYZ")
    motion = Motion(skeleton, 1.0, np.zeros((2, 13, 3)), rotations=q)
    up = resample(motion, 4.0)  # times 0, .25, ... 1.75 (held at the last frame after 1 s)
    assert up.num_frames == 8
    halfway = quat_rotate(up.rotations[2, 0], np.array([1.0, 0, 0]))
    np.testing.assert_allclose(halfway, quat_rotate(euler_to_quat(np.array([0.0, 40.0, 0]), "XYZ"), [1.0, 0, 0]),
                               atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(np.linalg.norm(up.rotations, axis=-1), 1, atol=1e-6)
    with pytest.raises(ValueError, match="fps"):
        resample(motion, -5)


# --- npz -----------------------------------------------------------------------------------------------------------


def test_npz_round_trip(shared_data, tmp_path):
    motion = load_bvh(shared_data / CMU)
    path = save_npz(motion, tmp_path / "clip.npz")
    again = load_motion(path)
    assert again.skeleton.joint_names == motion.skeleton.joint_names
    assert again.skeleton.parents == motion.skeleton.parents
    np.testing.assert_array_equal(again.skeleton.rest_offsets, motion.skeleton.rest_offsets)
    np.testing.assert_array_equal(again.positions, motion.positions)
    np.testing.assert_array_equal(again.rotations, motion.rotations)
    np.testing.assert_array_equal(again.root_translation, motion.root_translation)
    assert again.fps == motion.fps and again.metadata["unit_scale_m"] == motion.metadata["unit_scale_m"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.npz"]


def test_npz_registry_skeleton_and_2d(tmp_path):
    coco = Motion(get_skeleton("coco13"), 30.0, np.full((5, 13, 2), 0.5))
    again = load_npz(save_npz(coco, tmp_path / "coco.npz"))
    assert again.skeleton.name == "coco13" and again.is_2d and again.num_frames == 5


def test_bad_npz(tmp_path):
    np.savez(tmp_path / "no_fps.npz", positions=np.zeros((2, 22, 3)))
    with pytest.raises(ValueError, match="fps"):
        load_npz(tmp_path / "no_fps.npz")
    np.savez(tmp_path / "neg.npz", positions=np.zeros((2, 22, 3)), fps=-1.0, skeleton_name="smpl22")
    with pytest.raises(ValueError, match="fps"):
        load_npz(tmp_path / "neg.npz")
    np.savez(tmp_path / "who.npz", positions=np.zeros((2, 22, 3)), fps=20.0, skeleton_name="robot")
    with pytest.raises(ValueError, match="unknown skeleton 'robot'"):
        load_npz(tmp_path / "who.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    (tmp_path / "plain.npz").write_bytes((tmp_path / "plain.npy").read_bytes())
    with pytest.raises(ValueError, match="npz"):
        load_npz(tmp_path / "plain.npz")
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(ValueError, match="npz"):
        load_npz(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="unknown motion file type"):
        load_motion((tmp_path / "junk.npz").rename(tmp_path / "junk.txt"))
    with pytest.raises(FileNotFoundError):
        load_motion(tmp_path / "missing.bvh")


def test_npz_save_is_atomic(tmp_path):
    target = tmp_path / "keep.npz"
    target.write_bytes(b"old")
    motion = _motion()
    motion.positions[0, 0, 0] = np.nan  # corrupted after construction
    with pytest.raises(ValueError, match="NaN"):
        save_npz(motion, target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.npz"]
