"""BVH read/write/FK on every BVH under ../shared/data, plus malformed input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.motion import Motion, load_bvh, parse_bvh, read_bvh, save_bvh, write_bvh
from models.motion.bvh import BVHClip, format_bvh

TOLERANCE = 1e-4


def _bvh_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.bvh"))


def _assert_round_trip(files: list[Path]) -> int:
    """read -> format -> parse for every file; returns the number of frames checked."""
    failures, frames = [], 0
    for path in files:
        first = read_bvh(path)
        second = parse_bvh(format_bvh(first), source=f"{path.name} (rewritten)")
        frames += first.num_frames
        problems = []
        if first.joint_names != second.joint_names or first.parents != second.parents:
            problems.append("hierarchy")
        if first.channels != second.channels:
            problems.append("channels")
        if first.values.shape != second.values.shape or np.abs(first.values - second.values).max() > TOLERANCE:
            problems.append("motion values")
        if np.abs(first.offsets - second.offsets).max() > TOLERANCE:
            problems.append("offsets")
        sites_a = [(j, np.array(o)) for j, o in first.end_sites]
        sites_b = [(j, np.array(o)) for j, o in second.end_sites]
        if len(sites_a) != len(sites_b) or any(
            ja != jb or np.abs(oa - ob).max() > TOLERANCE for (ja, oa), (jb, ob) in zip(sites_a, sites_b, strict=True)
        ):
            problems.append("end sites")
        if abs(first.frame_time - second.frame_time) > 1e-8:
            problems.append("frame time")
        if problems:
            failures.append(f"{path.name}: {', '.join(problems)}")
    assert not failures, f"{len(failures)} of {len(files)} files differ after read -> write -> read: {failures[:10]}"
    return frames


def test_round_trip_cmu_131(shared_data):
    files = _bvh_files(shared_data / "cmu_mocap_subject131_bvh")
    assert len(files) == 3
    assert _assert_round_trip(files) > 0


def test_round_trip_bandai_dataset1(shared_data):
    files = _bvh_files(shared_data / "bandai_namco_motion_dataset1" / "data")
    assert len(files) == 174
    _assert_round_trip(files)


@pytest.mark.slow  # ~2.8k files, 470 MB of text: about 30-60 s
def test_round_trip_bandai_dataset2(bandai_dataset2_dir):
    files = sorted(bandai_dataset2_dir.rglob("*.bvh"))
    assert len(files) == 2762
    _assert_round_trip(files)


def test_write_bvh_file_round_trip(shared_data, tmp_path):
    source = shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh"
    clip = read_bvh(source)
    out = write_bvh(clip, tmp_path / "copy.bvh")
    again = read_bvh(out)
    assert again.num_frames == clip.num_frames > 0
    np.testing.assert_allclose(again.values, clip.values, atol=TOLERANCE)
    assert [p.name for p in tmp_path.iterdir()] == ["copy.bvh"]  # no temporary files left


def test_cmu_131_as_motion(shared_data):
    motion = load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh")
    assert motion.skeleton.num_joints == 31
    assert motion.fps == 120.0
    assert motion.metadata["unit_scale_m"] == pytest.approx(0.056444)
    height = motion.positions[0, :, 1].max() - motion.positions[0, :, 1].min()
    assert 1.2 < height < 2.0, f"a standing CMU subject should be 1.2-2 m tall, got {height:.2f} m"


# --- FK against an independent evaluation of the hierarchy -------------------------------------------------------


def _axis_matrix(axis: str, degrees: np.ndarray) -> np.ndarray:
    """(F, 4, 4) homogeneous rotations about one axis, written out by hand."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    m = np.zeros((len(a), 4, 4))
    m[:, 3, 3] = 1.0
    i, j = {"X": (1, 2), "Y": (2, 0), "Z": (0, 1)}[axis]
    k = 3 - i - j
    m[:, k, k] = 1.0
    m[:, i, i], m[:, i, j], m[:, j, i], m[:, j, j] = c, -s, s, c
    return m


def _reference_positions(clip: BVHClip, frames: np.ndarray) -> np.ndarray:
    """World joint positions (file units) by chaining 4x4 matrices per joint: translate (position channels or
    OFFSET), then each rotation channel in file order."""
    world = {}
    out = np.zeros((len(frames), len(clip.joint_names), 3))
    column = 0
    for j, chans in enumerate(clip.channels):
        values = clip.values[frames, column : column + len(chans)]
        column += len(chans)
        translation = np.tile(clip.offsets[j], (len(frames), 1))
        local = np.tile(np.eye(4), (len(frames), 1, 1))
        for k, name in enumerate(chans):
            if name.endswith("position"):
                translation[:, "XYZ".index(name[0])] = values[:, k]
        local[:, :3, 3] = translation
        for k, name in enumerate(chans):
            if name.endswith("rotation"):
                local = local @ _axis_matrix(name[0], values[:, k])
        parent = clip.parents[j]
        world[j] = local if parent < 0 else world[parent] @ local
        out[:, j] = world[j][:, :3, 3]
    return out


@pytest.mark.parametrize(
    "relative",
    [
        "cmu_mocap_subject131_bvh/131_01.bvh",
        "cmu_mocap_subject131_bvh/131_03.bvh",
        "bandai_namco_motion_dataset1/data/dataset-1_bow_active_001.bvh",
        "bandai_namco_motion_dataset1/data/dataset-1_walk_normal_001.bvh",
    ],
)
def test_forward_kinematics_matches_hierarchy(shared_data, relative):
    clip = read_bvh(shared_data / relative)
    motion = clip.to_motion(scale=1.0)
    frames = np.arange(0, clip.num_frames, max(1, clip.num_frames // 40))
    expected = _reference_positions(clip, frames)
    extent = np.ptp(expected.reshape(-1, 3), axis=0).max()
    assert extent > 1.0  # the figure really moves through space
    np.testing.assert_allclose(motion.positions[frames], expected, atol=1e-3 * max(1.0, extent / 100))


@pytest.mark.slow  # needs the dataset-2 archive unpacked
def test_forward_kinematics_dataset2_sample(bandai_dataset2_dir):
    path = sorted(bandai_dataset2_dir.rglob("*run*.bvh"))[0]
    clip = read_bvh(path)
    frames = np.arange(0, clip.num_frames, 7)
    np.testing.assert_allclose(clip.to_motion(scale=1.0).positions[frames], _reference_positions(clip, frames),
                               atol=1e-3)  # fmt: skip


def test_motion_to_bvh_and_back(shared_data, tmp_path):
    motion = load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_02.bvh")
    out = save_bvh(motion, tmp_path / "saved.bvh", rotation_order="XYZ", scale=0.01)
    again = load_bvh(out, scale=0.01)
    assert again.skeleton.joint_names == motion.skeleton.joint_names
    np.testing.assert_allclose(again.positions, motion.positions, atol=2e-4)  # metres


# --- malformed input -----------------------------------------------------------------------------------------------

_TINY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.033333
0 90 0 0 0 0 10 0 0
1 90 0 0 0 0 20 0 0
"""


def test_tiny_bvh_parses():
    clip = parse_bvh(_TINY)
    assert clip.joint_names == ["Hips", "Spine"]
    assert clip.num_frames == 2 and clip.num_channels == 9
    motion = clip.to_motion(scale=0.01)
    np.testing.assert_allclose(motion.root_translation, [[0.0, 0.9, 0.0], [0.01, 0.9, 0.0]], atol=1e-6)
    np.testing.assert_allclose(motion.positions[:, 1], [[0.0, 1.0, 0.0], [0.01, 1.0, 0.0]], atol=1e-6)
    assert motion.fps == pytest.approx(30.0, rel=1e-4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_TINY[: _TINY.index("1 90 0")] + "1 90 0\n", "truncated"),
        (_TINY[: _TINY.index("MOTION")], "ends early"),
        (_TINY.replace("CHANNELS 3 Zrotation", "CHANNELS 4 Zrotation"), "channel"),
        (_TINY.replace("CHANNELS 3 Zrotation Xrotation Yrotation", "CHANNELS 2 Zrotation Xrotation Yrotation"),
         "channel"),  # fmt: skip
        (_TINY.replace("Frames: 2", "Frames: 3"), "truncated"),
        (_TINY.replace("1 90 0 0 0 0 20 0 0", "1 90 0 0 nan 0 20 0 0"), "NaN"),
        (_TINY.replace("1 90 0 0 0 0 20 0 0", "1 90 0 0 abc 0 20 0 0"), "not a number"),
        (_TINY.replace("Frame Time: 0.033333", "Frame Time: 0"), "Frame Time"),
        (_TINY.replace("Zrotation Xrotation Yrotation\n    End", "Zrotation Xrotation Wrotation\n    End"), "channel"),
        ("", "ends early"),
        ("HELLO", "HIERARCHY"),
    ],
)
def test_malformed_bvh_raises_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_bvh(text)


def test_truncated_file_is_reported_with_its_path(shared_data, tmp_path):
    text = (shared_data / "cmu_mocap_subject131_bvh" / "131_03.bvh").read_text()
    broken = tmp_path / "broken.bvh"
    broken.write_text(text[: int(len(text) * 0.6)])
    with pytest.raises(ValueError, match=r"broken\.bvh.*(truncated|more than)"):
        read_bvh(broken)


def test_save_bvh_invalid_motion_keeps_existing_file(shared_data, tmp_path):
    target = tmp_path / "keep.bvh"
    target.write_text(_TINY)
    positions_only = Motion(load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh").skeleton, 30.0,
                            np.zeros((2, 31, 3), np.float32))  # fmt: skip
    with pytest.raises(ValueError, match="rotations"):
        save_bvh(positions_only, target)
    motion = parse_bvh(_TINY).to_motion()
    motion.rotations[1, 0, 0] = np.nan  # corrupted after construction
    with pytest.raises(ValueError, match="NaN"):
        save_bvh(motion, target)
    assert target.read_text() == _TINY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.bvh"]


def test_bvh_clip_rejects_inconsistent_values():
    clip = parse_bvh(_TINY)
    with pytest.raises(ValueError, match="9 channels"):
        BVHClip(clip.joint_names, clip.parents, clip.offsets, clip.channels, [], 0.1, np.zeros((2, 8)))
    with pytest.raises(ValueError, match="NaN"):
        BVHClip(clip.joint_names, clip.parents, clip.offsets, clip.channels, [], 0.1, np.full((2, 9), np.nan))
    with pytest.raises(ValueError, match="unit scale"):
        clip.to_motion(scale=-1.0)


# --- Motion -> BVH -> Motion on every registry skeleton (issue 11: SMPL's joint order is not depth-first) ----------


def _random_motion(skeleton_name: str, frames: int = 12, seed: int = 0) -> Motion:
    """A motion on a registry skeleton with random local rotations (up to ~70 degrees) and a moving root; positions
    by forward kinematics."""
    from scipy.spatial.transform import Rotation

    from models.motion import get_skeleton
    from models.motion.kinematics import forward_kinematics

    skeleton = get_skeleton(skeleton_name)
    rng = np.random.default_rng(seed)
    rotvec = rng.normal(scale=0.6, size=(frames * skeleton.num_joints, 3))
    xyzw = Rotation.from_rotvec(rotvec).as_quat().reshape(frames, skeleton.num_joints, 4)
    rotations = xyzw[..., [3, 0, 1, 2]]
    root = skeleton.rest_offsets[0] + np.cumsum(rng.normal(scale=0.02, size=(frames, 3)), axis=0)
    positions, _ = forward_kinematics(skeleton, rotations, root)
    return Motion(skeleton, 30.0, positions, rotations.astype(np.float32), root.astype(np.float32))


def test_depth_first_order_of_smpl24():
    from models.motion import get_skeleton
    from models.motion.bvh import depth_first_order

    order = depth_first_order(get_skeleton("smpl24").parents)
    names = [get_skeleton("smpl24").joint_names[j] for j in order]
    assert names[:6] == ["pelvis", "left_hip", "left_knee", "left_ankle", "left_foot", "right_hip"]
    assert names[9:12] == ["spine1", "spine2", "spine3"] and sorted(order) == list(range(24))
    assert depth_first_order(get_skeleton("kit21").parents) == list(range(21))  # KIT-21 is already depth-first
    with pytest.raises(ValueError, match="one tree"):
        depth_first_order([-1, 2, 0])


@pytest.mark.parametrize("name", ["smpl24", "smpl22", "kit21", "coco13"])
def test_registry_motion_survives_save_and_load(tmp_path, name):
    motion = _random_motion(name)
    out = save_bvh(motion, tmp_path / f"{name}.bvh")
    again = load_bvh(out, scale=0.01)
    assert again.skeleton.joint_names == motion.skeleton.joint_names  # the registry's declared order
    assert again.skeleton.parents == motion.skeleton.parents
    assert again.metadata["joint_order"] == name
    np.testing.assert_allclose(again.skeleton.rest_offsets, motion.skeleton.rest_offsets, atol=1e-6)
    np.testing.assert_allclose(again.positions, motion.positions, atol=1e-5)  # metres
    dots = np.abs((again.rotations.astype(np.float64) * motion.rotations).sum(-1))
    assert dots.min() > 1 - 1e-6  # the same rotations (q or -q)
    # The file read in its own (depth-first) order holds the same joints at the same places.
    in_file = load_bvh(out, scale=0.01, joint_order="file")
    assert in_file.metadata["joint_order"] == "file"
    index = [in_file.skeleton.joint_names.index(n) for n in motion.skeleton.joint_names]
    np.testing.assert_allclose(in_file.positions[:, index], motion.positions, atol=1e-5)


@pytest.mark.parametrize("name", ["smpl24", "kit21"])
def test_written_columns_belong_to_the_joints_they_follow(tmp_path, name):
    """The written file evaluated by the independent matrix chain above (file order, as any BVH reader does)."""
    motion = _random_motion(name, seed=3)
    clip = read_bvh(save_bvh(motion, tmp_path / "m.bvh"))
    expected = _reference_positions(clip, np.arange(clip.num_frames)) * 0.01
    index = [clip.joint_names.index(n) for n in motion.skeleton.joint_names]
    np.testing.assert_allclose(expected[:, index], motion.positions, atol=1e-5)


def test_retargeted_walk_survives_save_and_load(shared_data, tmp_path):
    """The issue's case: a Bandai walk retargeted onto SMPL-24, and onto a Mixamo-named rig with bone rolls."""
    from retarget_rigs import mixamo_rig  # tests/models is on sys.path (pytest rootdir import mode)

    from models.motion.retarget import retarget

    walk = load_bvh(shared_data / "bandai_namco_motion_dataset1" / "data" / "dataset-1_walk_normal_001.bvh")
    for target in ("smpl24", mixamo_rig()):
        motion = retarget(walk, target).motion
        again = load_bvh(save_bvh(motion, tmp_path / "walk.bvh"))
        index = [again.skeleton.joint_names.index(n) for n in motion.skeleton.joint_names]
        error = np.linalg.norm(again.positions[:, index] - motion.positions, axis=-1)
        assert error.max() < 1e-4, f"{motion.skeleton.name}: {error.max() * 100:.3f} cm after save -> load"


def test_clip_must_be_depth_first_and_motion_consistent(tmp_path):
    clip = parse_bvh(_TINY)
    three = BVHClip(["Hips", "A", "B"], [-1, 0, 1], np.zeros((3, 3)), [clip.channels[0], ("Zrotation",), ()],
                    [], 0.1, np.zeros((1, 7)))  # fmt: skip
    assert three.joint_names == ["Hips", "A", "B"]
    with pytest.raises(ValueError, match="depth-first"):  # B (child of Hips) listed between A and A's child
        BVHClip(["Hips", "A", "B", "C"], [-1, 0, 0, 1], np.zeros((4, 3)), [clip.channels[0], (), (), ()], [], 0.1,
                np.zeros((1, 6)))  # fmt: skip
    with pytest.raises(ValueError, match="single words"):
        BVHClip(["Hips", "Left Arm"], clip.parents, clip.offsets, clip.channels, [], 0.1, clip.values)
    with pytest.raises(ValueError, match="end sites"):
        BVHClip(clip.joint_names, clip.parents, clip.offsets, clip.channels, [(5, (0, 1, 0))], 0.1, clip.values)
    motion = _random_motion("smpl22")
    motion.positions[3, 7] += 0.05  # no longer the FK of the rotations
    target = tmp_path / "bad.bvh"
    with pytest.raises(ValueError, match="forward kinematics"):
        save_bvh(motion, target)
    assert not target.exists()
    with pytest.raises(ValueError, match="joint_order"):
        clip.to_motion(joint_order="alphabetical")
