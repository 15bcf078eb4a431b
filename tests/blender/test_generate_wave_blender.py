"""Blender tier: the issue's command ``baton generate "a person waves with their right hand" --seconds 4 --rig smpl24
-o wave.bvh`` (run in the backend environment with the shipped weights) writes a BVH that, read by Blender's own BVH
importer (default axes, ``global_scale=0.01``), shows the right wrist above the right shoulder and swinging."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402 - bpy puts addon_utils on sys.path

from blender_addon import space  # noqa: E402

pytestmark = pytest.mark.blender
REPO = Path(__file__).resolve().parents[2]
BACKEND_BATON = REPO / ".venv" / "bin" / "baton"


def test_generated_wave_in_blenders_importer(tmp_path: Path):
    if not BACKEND_BATON.exists():
        pytest.fail(f"the backend environment {BACKEND_BATON} is missing; run scripts/setup.sh")
    out = tmp_path / "wave.bvh"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NUMBA_CACHE_DIR": str(REPO / ".cache" / "numba")}
    done = subprocess.run([str(BACKEND_BATON), "generate", "a person waves with their right hand", "--seconds", "4",
                           "--rig", "smpl24", "-o", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("io_anim_bvh", default_set=True)
    assert bpy.ops.import_anim.bvh(filepath=str(out), global_scale=0.01) == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    first, last = (int(round(f)) for f in obj.animation_data.action.frame_range)
    assert last - first + 1 == 80  # 4 s at 20 fps
    wrist, shoulder = obj.pose.bones["right_wrist"], obj.pose.bones["right_shoulder"]
    heads = []
    for frame in range(first, last + 1):
        bpy.context.scene.frame_set(frame)
        heads.append([list(obj.matrix_world @ wrist.head), list(obj.matrix_world @ shoulder.head)])
    w, s = (space.points_to_backend(np.array(heads)[:, i]) for i in range(2))  # backend space: +Y up
    above = w[:, 1] > s[:, 1]
    assert above.mean() >= 0.25, f"the right wrist is above the shoulder in only {above.mean():.0%} of frames"
    lateral = w[above, 0] - s[above, 0]
    assert np.ptp(lateral) >= 0.08, "the raised right wrist does not swing side to side"
