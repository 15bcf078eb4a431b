"""Blender tier: every BVH Baton writes opens in Blender's own BVH importer (``bpy.ops.import_anim.bvh``, the
``io_anim_bvh`` add-on bundled with bpy) at the joint positions Baton holds (issue 11, item 1).

The BVH files and the positions they must show are made in the backend environment (``.venv``: the retargeter
needs scipy) through the writers a user reaches: ``baton retarget`` onto smpl24, smpl22, kit21 and a Mixamo-named
BVH rig (``-o out.bvh``, and ``-o out.npz`` for the positions); :func:`models.motion.save_bvh` of the walk retargeted
onto the same Mixamo-named rig as the add-on describes it (declared in SMPL order, bone rolls); and the conductor's
writer (``backend.conductor.pipeline.save_motion``) for a 2D COCO-13 motion lifted onto the coco13 rig. Blender then
imports each file with its default axes (BVH +Y up, -Z forward, which is the add-on's backend -> Blender
conversion, ``blender_addon/space.py``) and ``global_scale=0.01`` (Baton writes centimetres), and every pose
bone's evaluated world head on every frame is compared with Baton's joint positions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402 - bpy puts addon_utils on sys.path

from blender_addon import space  # noqa: E402

pytestmark = pytest.mark.blender
REPO = Path(__file__).resolve().parents[2]
BACKEND_PYTHON = REPO / ".venv" / "bin" / "python"
WALK = "bandai_namco_motion_dataset1/data/dataset-1_walk_normal_001.bvh"
CASES = ("smpl24", "smpl22", "kit21", "coco13", "mixamo", "mixamo_rolls")
#: Largest allowed distance between a bone head in Blender and Baton's joint position (metres).
TOLERANCE_M = 1e-3

# Runs in .venv: writes <case>.bvh and <case>.npz (Baton .npz: positions, joint_names) for every case.
_PRODUCE = r"""
import sys
from pathlib import Path
import numpy as np
from backend.cli import main
from backend.conductor.pipeline import ConductResult, save_motion
from models.motion import Motion, get_skeleton, save_bvh
from models.motion.io import load_motion, save_npz
from models.motion.kinematics import identity_rotations
from models.motion.retarget import retarget as solve
from models.motion.skeleton import COCO13_NAMES

walk, out = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, sys.argv[3])
from retarget_rigs import mixamo_rig

def retarget(target, case):
    for suffix in (".bvh", ".npz"):
        code = main(["retarget", str(walk), "--to", str(target), "-o", str(out / f"{case}{suffix}")])
        assert code == 0, f"baton retarget --to {target} failed"

for name in ("smpl24", "smpl22", "kit21"):
    retarget(name, name)

# A Mixamo-named rig (A pose, other proportions) as a BVH rest pose, then used as the retarget target.
skeleton = mixamo_rig().to_skeleton()
rest = skeleton.rest_positions()[None]
save_bvh(Motion(skeleton, 30.0, rest, identity_rotations(1, skeleton.num_joints), rest[:, 0]), out / "mixamo_rig.bvh")
retarget(out / "mixamo_rig.bvh", "mixamo")

# The same Mixamo-named rig as the add-on describes it (declared in SMPL order, bone rolls), written with save_bvh.
source = load_motion(walk)
rolled = solve(source, mixamo_rig()).motion
save_bvh(rolled, out / "mixamo_rolls.bvh")
save_npz(rolled, out / "mixamo_rolls.npz")

# A 2D COCO-13 motion (the walk seen from the front, orthographic) through the conductor's writer: lifted to 3D and
# retargeted onto the coco13 rig, as `baton conduct --rig coco13 -o out.bvh` does.
pos = source.positions.astype(np.float64)
names = source.skeleton.joint_names
body = {"left_shoulder": "UpperArm_L", "right_shoulder": "UpperArm_R", "left_elbow": "LowerArm_L",
        "right_elbow": "LowerArm_R", "left_wrist": "Hand_L", "right_wrist": "Hand_R", "left_hip": "UpperLeg_L",
        "right_hip": "UpperLeg_R"}
face = {"nose": (0.0, 0.0), "left_eye": (0.03, 0.03), "right_eye": (-0.03, 0.03), "left_ear": (0.07, 0.0),
        "right_ear": (-0.07, 0.0)}
head = pos[:, names.index("Head")]
points = np.stack([pos[:, names.index(body[n])] if n in body else head + [*face[n], 0.0] for n in COCO13_NAMES], 1)
hips = 0.5 * (points[:, 11] + points[:, 12])
image = np.stack([0.5 + 0.5 * (points[..., 0] - hips[:, None, 0]), 0.75 - 0.5 * (points[..., 1] - hips[:, None, 1])],
                 axis=-1).astype(np.float32)
result = ConductResult(features=None, motion=Motion(get_skeleton("coco13"), source.fps, image))
save_motion(result, "coco13", out / "coco13.bvh", audio=None)
save_npz(result.rigs["coco13"], out / "coco13.npz")
"""


@pytest.fixture(scope="module")
def written(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``<case>.bvh`` (what Baton wrote) and ``<case>.npz`` (what Baton holds) for every case."""
    if not BACKEND_PYTHON.exists():
        pytest.fail(f"the backend environment {BACKEND_PYTHON} is missing; run scripts/setup.sh")
    out = tmp_path_factory.mktemp("bvh_export")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(REPO / ".cache" / "numba")}
    done = subprocess.run(
        [str(BACKEND_PYTHON), "-c", _PRODUCE, str(shared_data / WALK), str(out), str(REPO / "tests" / "models")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def blender_import_positions(path: Path, names: list[str]) -> np.ndarray:
    """Import ``path`` with Blender's BVH importer (default axes, ``global_scale=0.01``) into an empty scene and
    return the evaluated world heads of the pose bones ``names`` on every frame, ``(F, J, 3)`` metres, backend
    space."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("io_anim_bvh", default_set=True)
    assert bpy.ops.import_anim.bvh(filepath=str(path), global_scale=0.01) == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    assert obj is not None and obj.type == "ARMATURE"
    assert sorted(b.name for b in obj.pose.bones) == sorted(names), "the importer built other bones"
    action = obj.animation_data.action
    first, last = (int(round(f)) for f in action.frame_range)
    scene = bpy.context.scene
    heads = np.empty((last - first + 1, len(names), 3))
    bones = [obj.pose.bones[n] for n in names]
    for t, frame in enumerate(range(first, last + 1)):
        scene.frame_set(frame)
        world = obj.matrix_world
        heads[t] = [list(world @ b.head) for b in bones]
    return space.points_to_backend(heads)


@pytest.mark.parametrize("case", CASES)
def test_blender_importer_shows_the_written_positions(written: Path, case: str):
    with np.load(written / f"{case}.npz") as data:
        expected = data["positions"].astype(np.float64)
        names = [str(n) for n in data["joint_names"]]
    got = blender_import_positions(written / f"{case}.bvh", names)
    assert got.shape == expected.shape, f"Blender imported {got.shape[0]} frames, Baton wrote {expected.shape[0]}"
    error = np.linalg.norm(got - expected, axis=-1)
    print(f"{case}: Blender importer vs Baton, mean {error.mean() * 1000:.4f} mm, max {error.max() * 1000:.4f} mm "
          f"over {error.shape[0]} frames x {error.shape[1]} joints", file=sys.stderr)  # fmt: skip
    assert np.ptp(expected, axis=0).max() > 0.1, "some joint should move by more than 10 cm"
    worst = np.unravel_index(int(error.argmax()), error.shape)
    assert error.max() < TOLERANCE_M, (
        f"{case}: joint {names[worst[1]]!r} frame {worst[0]} is {error.max() * 100:.2f} cm from where Baton put it"
    )
