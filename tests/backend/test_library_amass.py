"""AMASS .npz import through smplx with a SYNTHETIC SMPL+H model file (real model files are licensed to users and
never part of Baton). The synthetic model has the documented keys and shapes of an SMPL+H ``model.npz``:
``v_template (6890, 3)``, ``shapedirs (6890, 3, 10)``, ``posedirs (6890, 3, 459)`` (51 joints x 9),
``J_regressor (52, 6890)``, ``weights (6890, 52)``, ``kintree_table (2, 52)``, ``f (F, 3)``,
``hands_componentsl/r (45, 45)``, ``hands_meanl/r (45,)``. Its joints sit at the smpl22 rest pose (plus finger
joints), each regressed from one vertex, so the posed joints can be computed independently with scipy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.library import ImportOptions, open_library
from backend.library.amass import load_amass
from backend.library.importer import import_paths
from models.motion.skeleton import get_skeleton

VERTICES, JOINTS = 6890, 52
BODY_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]


def _smplh_parents() -> list[int]:
    parents = list(BODY_PARENTS)
    for wrist, first in ((20, 22), (21, 37)):
        for finger in range(5):
            base = first + 3 * finger
            parents += [wrist, base, base + 1]
    return parents


def to_amass(backend_xyz: np.ndarray) -> np.ndarray:
    """Backend (Y-up) -> AMASS (Z-up): inverse of (x, y, z) -> (-x, z, y)."""
    return np.stack([-backend_xyz[..., 0], backend_xyz[..., 2], backend_xyz[..., 1]], axis=-1)


def synthetic_smplh(path: Path) -> np.ndarray:
    """Write a synthetic SMPL+H model; returns its (52, 3) rest joints (Z-up)."""
    rest = np.zeros((JOINTS, 3), np.float64)
    rest[:22] = to_amass(get_skeleton("smpl22").rest_positions())
    parents = _smplh_parents()
    for j in range(22, JOINTS):
        rest[j] = rest[parents[j]] + np.array([0.02 if j < 37 else -0.02, 0.0, -0.01])
    v_template = np.zeros((VERTICES, 3))
    v_template[:JOINTS] = rest
    regressor = np.zeros((JOINTS, VERTICES))
    regressor[np.arange(JOINTS), np.arange(JOINTS)] = 1.0
    weights = np.zeros((VERTICES, JOINTS))
    weights[np.arange(JOINTS), np.arange(JOINTS)] = 1.0
    weights[JOINTS:, 0] = 1.0
    kintree = np.array([[2**32 - 1] + parents[1:], list(range(JOINTS))], dtype=np.int64)
    np.savez(path, v_template=v_template, shapedirs=np.zeros((VERTICES, 3, 10)),
             posedirs=np.zeros((VERTICES, 3, (JOINTS - 1) * 9), np.float32), J_regressor=regressor, weights=weights,
             kintree_table=kintree, f=np.array([[0, 1, 2]], np.int64), hands_componentsl=np.eye(45),
             hands_componentsr=np.eye(45), hands_meanl=np.zeros(45), hands_meanr=np.zeros(45))  # fmt: skip
    return rest


@pytest.fixture
def amass_files(tmp_path: Path):
    models = tmp_path / "body_models" / "smplh" / "neutral"
    models.mkdir(parents=True)
    rest = synthetic_smplh(models / "model.npz")
    frames = 48
    rng = np.random.default_rng(0)
    root_orient = np.zeros((frames, 3), np.float32)
    root_orient[:, 2] = np.linspace(0, np.pi / 2, frames)  # turn 90 degrees about the (Z) up axis
    pose_body = np.zeros((frames, 63), np.float32)
    pose_body[:, 15 * 3 : 15 * 3 + 3] = rng.normal(0, 0.3, (frames, 3))  # left shoulder (joint 16) moves
    trans = np.stack([np.zeros(frames), np.linspace(0, 1.2, frames), np.full(frames, 0.9)], axis=1).astype(np.float32)
    clip = tmp_path / "amass" / "walk_poses.npz"
    clip.parent.mkdir()
    np.savez(clip, trans=trans, gender=np.array("neutral"), mocap_framerate=np.array(120.0), betas=np.zeros(10),
             poses=np.concatenate([root_orient, pose_body, np.zeros((frames, 90), np.float32)], axis=1))  # fmt: skip
    return clip, tmp_path / "body_models", rest, (root_orient, pose_body, trans)


def test_amass_joints_match_an_independent_forward_kinematics(amass_files):
    clip, models, rest, (root_orient, pose_body, trans) = amass_files
    motion = load_amass(clip, models)
    assert motion.skeleton.name == "smpl22" and motion.fps == 120.0 and motion.positions.shape == (48, 22, 3)
    parents = BODY_PARENTS
    expected = np.zeros((48, 22, 3))
    for t in range(48):
        local = [Rotation.from_rotvec(root_orient[t])] + [Rotation.from_rotvec(pose_body[t, 3 * i : 3 * i + 3])
                                                          for i in range(21)]  # fmt: skip
        world = [local[0]]
        expected[t, 0] = rest[0]
        for j in range(1, 22):
            world.append(world[parents[j]] * local[j])
            expected[t, j] = expected[t, parents[j]] + world[parents[j]].apply(rest[j] - rest[parents[j]])
        expected[t] += trans[t]
    backend = np.stack([-expected[..., 0], expected[..., 2], expected[..., 1]], axis=-1)
    np.testing.assert_allclose(motion.positions, backend, atol=1e-4)
    assert motion.positions[:, 15, 1].min() > motion.positions[:, 0, 1].max()  # the head is above the pelvis: Y up


def test_amass_import_needs_the_model_and_then_imports(amass_files, tmp_path):
    clip, models, _, _ = amass_files
    with open_library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [clip.parent])
        assert report.imported == 0 and "--smpl-model" in report.failed[0]["error"]
        report = import_paths(library, [clip.parent], ImportOptions(smpl_model=models))
        assert report.imported == 1 and report.failed == []
        record = library.clips()[0]
        assert (record.skeleton, record.source_kind, record.fps, record.frames) == ("smpl22", "amass", 30.0, 12)
        assert "non-commercial" in record.license
        assert library.get_motion(record.clip_id).positions.shape == (12, 22, 3)
    with pytest.raises(FileNotFoundError, match="no SMPL\\+H model file"):
        load_amass(clip, tmp_path / "nowhere")
