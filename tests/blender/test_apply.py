"""Blender tier: rigs built from the registry, a retargeted Bandai Namco clip written through the apply layer and
read back from the evaluated pose (real ``bpy``)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from blender_addon import apply, rigs, space  # noqa: E402

pytestmark = pytest.mark.blender
REPO = Path(__file__).resolve().parents[2]
BACKEND_PYTHON = REPO / ".venv" / "bin" / "python"
CLIP = "bandai_namco_motion_dataset1/data/dataset-1_walk_normal_001.bvh"
_SOLVE = """
import json, sys, numpy as np
from models.motion import load_bvh
from models.motion.retarget import TargetRig, retarget
target = TargetRig.from_dict(json.loads(open(sys.argv[3]).read())) if len(sys.argv) > 3 else "smpl24"
result = retarget(load_bvh(sys.argv[1]), target)
motion = result.motion
np.savez(sys.argv[2], rotations=motion.rotations, root=motion.root_translation, positions=motion.positions,
         fps=motion.fps, names=np.array(motion.skeleton.joint_names))
"""


def _solve(bvh: Path, folder: Path, rig: dict | None = None) -> dict:
    """Run the solver in the backend environment (scipy lives there) and load its output."""
    if not BACKEND_PYTHON.exists():
        pytest.fail(f"the backend environment {BACKEND_PYTHON} is missing; run scripts/setup.sh")
    out = folder / "solution.npz"
    args = [str(BACKEND_PYTHON), "-c", _SOLVE, str(bvh), str(out)]
    if rig is not None:
        (folder / "rig.json").write_text(json.dumps(rig))
        args.append(str(folder / "rig.json"))
    subprocess.run(args, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def solution(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The solver's output for a Bandai walk on SMPL-24."""
    return _solve(shared_data / CLIP, tmp_path_factory.mktemp("solve"))


@pytest.fixture()
def fresh_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy.context.scene


def _heads(obj, names, frames) -> np.ndarray:
    """Evaluated world heads of pose bones ``(len(frames), J, 3)`` in backend space."""
    out = np.empty((len(frames), len(names), 3))
    scene = bpy.context.scene
    for t, frame in enumerate(frames):
        scene.frame_set(int(frame))
        world = obj.matrix_world
        out[t] = [list(world @ obj.pose.bones[n].head) for n in names]
    return space.points_to_backend(out)


def _mpjpe_mm(obj, solution, frame_start=1, step=7) -> float:
    names = [str(n) for n in solution["names"]]
    picks = np.arange(0, solution["rotations"].shape[0], step)
    heads = _heads(obj, names, frame_start + picks)
    return float(np.linalg.norm(heads - solution["positions"][picks], axis=-1).mean() * 1000)


def test_smpl24_rig_rest_pose_matches_registry(fresh_scene):
    rig = rigs.builtin_rig("smpl24")
    obj = rigs.build_armature(rig, "SMPL24")
    back = rigs.armature_rig_dict(obj)
    assert back["joint_names"] == rig["joint_names"] and back["parents"] == rig["parents"]
    _, _, expected = rigs.rest_frames(rig)
    got = np.asarray(back["rest_world"])
    assert np.abs(got[:, :3, 3] - expected[:, :3, 3]).max() < 1e-6
    # Rest frames are rigid and the bone Y axis points along each bone (Blender's convention).
    rot = got[:, :3, :3]
    assert np.abs(np.einsum("jki,jkl->jil", rot, rot) - np.eye(3)).max() < 1e-5


@pytest.mark.parametrize("name", ["kit21", "coco13"])
def test_other_builtin_rigs_build(fresh_scene, name):
    rig = rigs.builtin_rig(name)
    obj = rigs.build_armature(rig, name)
    assert rigs.armature_rig_dict(obj)["joint_names"] == rig["joint_names"]
    heads = space.points_to_backend(np.array([list(obj.data.bones[n].head_local) for n in rig["joint_names"]]))
    assert np.abs(heads - rigs.rest_frames(rig)[2][:, :3, 3]).max() < 1e-6


def test_applied_bandai_clip_reproduces_solver_positions(fresh_scene, solution):
    obj = rigs.build_armature(rigs.builtin_rig("smpl24"), "SMPL24")
    names = [str(n) for n in solution["names"]]
    frames = solution["rotations"].shape[0]
    action = apply.apply_motion(obj, names, solution["rotations"], solution["root"], float(solution["fps"]))
    assert obj.animation_data.action == action
    curves = apply.fcurves_of(action, obj)
    assert len(curves) == 4 * len(names) + 3  # quaternion per bone + root location
    assert all(len(c.keyframe_points) == frames for c in curves)
    assert tuple(action.frame_range) == (1.0, float(frames))
    error = _mpjpe_mm(obj, solution)
    print(f"Blender evaluated vs solver MPJPE {error:.4f} mm", file=sys.stderr)
    assert error < 1.0


def test_rolls_and_rotation_modes_are_respected(fresh_scene, solution):
    """Bone rolls and Euler / axis-angle modes change the keyed values, never the evaluated pose."""
    obj = rigs.build_armature(rigs.builtin_rig("smpl24"), "SMPL24")
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for k, bone in enumerate(obj.data.edit_bones):
        bone.roll = 0.37 * k - 2.0
    bpy.ops.object.mode_set(mode="OBJECT")
    modes = ["QUATERNION", "XYZ", "ZXY", "YZX", "AXIS_ANGLE", "ZYX", "XZY", "YXZ"]
    for k, pose_bone in enumerate(obj.pose.bones):
        pose_bone.rotation_mode = modes[k % len(modes)]
    names = [str(n) for n in solution["names"]]
    apply.apply_motion(obj, names, solution["rotations"], solution["root"], float(solution["fps"]), frame_start=11)
    assert _mpjpe_mm(obj, solution, frame_start=11) < 1.0


def test_transformed_armature_reads_upright_and_plays_from_its_origin(fresh_scene, shared_data, tmp_path):
    """An FBX-style armature (lying in armature space, object rotated +90 deg about X, scale 0.01, moved) reads as
    the upright metre rig, and a motion solved for that rig dict lands exactly, offset by the object's location."""
    rig = rigs.builtin_rig("smpl24")
    heads = space.points_to_blender(rigs.rest_frames(rig)[2][:, :3, 3])
    turn = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # +90 deg about X
    armature_heads = heads @ turn / 0.01  # = turn^T heads / 0.01
    lying = dict(rig, rest_offsets=None)
    backend = space.points_to_backend(armature_heads)
    lying["rest_offsets"] = [list(backend[j] - (backend[p] if p >= 0 else 0.0)) for j, p in enumerate(rig["parents"])]
    obj = rigs.build_armature(lying, "FBX")
    obj.rotation_euler = (math.pi / 2, 0.0, 0.0)
    obj.scale = (0.01, 0.01, 0.01)
    obj.location = (1.0, 2.0, 0.0)
    bpy.context.view_layer.update()
    read = rigs.armature_rig_dict(obj)
    np.testing.assert_allclose(np.asarray(read["rest_world"])[:, :3, 3], rigs.rest_frames(rig)[2][:, :3, 3], atol=1e-5)
    solved = _solve(shared_data / CLIP, tmp_path, read)
    names = [str(n) for n in solved["names"]]
    apply.apply_motion(obj, names, solved["rotations"], solved["root"], float(solved["fps"]))
    picks = np.arange(0, solved["rotations"].shape[0], 9)
    heads = _heads(obj, names, 1 + picks) - space.points_to_backend(np.array([1.0, 2.0, 0.0]))
    assert np.linalg.norm(heads - solved["positions"][picks], axis=-1).mean() * 1000 < 1.0


def test_one_undo_step_removes_the_whole_write(fresh_scene, solution):
    obj = rigs.build_armature(rigs.builtin_rig("smpl24"), "SMPL24")
    bpy.ops.ed.undo_push(message="rig built")
    names = [str(n) for n in solution["names"]]
    apply.apply_motion(obj, names, solution["rotations"], solution["root"], float(solution["fps"]), push_undo=True)
    assert len(bpy.data.actions) == 1
    bpy.ops.ed.undo()
    obj = bpy.data.objects["SMPL24"]
    assert len(bpy.data.actions) == 0 and (obj.animation_data is None or obj.animation_data.action is None)
    bpy.ops.ed.redo()
    obj = bpy.data.objects["SMPL24"]
    assert obj.animation_data.action is not None and len(apply.fcurves_of(obj.animation_data.action, obj)) == 99


def _bad_inputs(solution):
    names = [str(n) for n in solution["names"]]
    rot, root, fps = solution["rotations"], solution["root"], float(solution["fps"])
    nan = rot.copy()
    nan[3, 2, 1] = np.nan
    return [
        (names[:-1] + ["no_such_bone"], rot, root, fps, "no bones named"),
        (names, nan, root, fps, "NaN"),
        (names, rot[:0], root[:0], fps, "zero frames"),
        (names, rot, root[:-1], fps, "root_translation"),
        (names, rot, root, 0.0, "fps"),
    ]


def test_bad_input_raises_and_writes_nothing(fresh_scene, solution):
    obj = rigs.build_armature(rigs.builtin_rig("smpl24"), "SMPL24")
    for names, rot, root, fps, message in _bad_inputs(solution):
        with pytest.raises(ValueError, match=message):
            apply.apply_motion(obj, names, rot, root, fps)
        assert len(bpy.data.actions) == 0
        assert obj.animation_data is None or obj.animation_data.action is None
    mesh = bpy.data.objects.new("not a rig", None)
    with pytest.raises(ValueError, match="not an armature"):
        apply.apply_motion(mesh, [], np.zeros((1, 0, 4)), None, 30.0)
    with pytest.raises(ValueError, match="rest_offsets"):
        rigs.build_armature({"joint_names": ["a"], "parents": [-1], "rest_offsets": [[0.0, 0.0]]})
    assert len(bpy.data.armatures) == 1


def test_bulk_write_uses_layered_action_on_blender5(fresh_scene, solution):
    if bpy.app.version < (5, 0, 0):
        pytest.skip("layered-only actions start with Blender 5.0")
    obj = rigs.build_armature(rigs.builtin_rig("smpl24"), "SMPL24")
    names = [str(n) for n in solution["names"]]
    action = apply.apply_motion(obj, names, solution["rotations"], None, float(solution["fps"]))
    assert not hasattr(action, "fcurves") and action.is_action_layered
    slot = obj.animation_data.action_slot
    assert slot is not None and slot.target_id_type == "OBJECT"
    bag = action.layers[0].strips[0].channelbag(slot)
    assert len(bag.fcurves) == 4 * len(names)
    print(f"bpy {bpy.app.version_string}", file=sys.stderr)
