"""The ``baton`` command line as a user runs it: a subprocess per call (../shared/DESIGN.md §3)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.cli import COMMANDS, GROUPS, _module_name
from models.motion import load_bvh
from models.motion.conductor_dataset import write_conductor_sample
from models.motion.io import save_npz

REPO = Path(__file__).resolve().parents[2]


def baton(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)  # fmt: skip


def one_json_object(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print exactly one JSON object on stdout, got {result.stdout!r}"
    info = json.loads(lines[0])
    assert isinstance(info, dict)
    return info


def test_motion_info_cmu_bvh(shared_data):
    info = one_json_object(baton("motion", "info", str(shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh"),
                                 "--json"))  # fmt: skip
    assert info["skeleton"] == "bvh:131_01"
    assert info["joints"] == 31 and len(info["joint_names"]) == 31
    assert info["fps"] == 120
    assert info["frames"] == 994
    assert info["duration_s"] == pytest.approx(994 / 120, abs=1e-5)


def test_motion_info_npz(shared_data, tmp_path):
    motion = load_bvh(shared_data / "bandai_namco_motion_dataset1" / "data" / "dataset-1_bow_active_001.bvh")
    path = save_npz(motion, tmp_path / "bow.npz")
    info = one_json_object(baton("motion", "info", str(path), "--json"))
    assert info["skeleton"] == motion.skeleton.name and info["joints"] == motion.skeleton.num_joints
    assert info["fps"] == 30 and info["frames"] == motion.num_frames == 128
    assert info["has_rotations"] is True


@pytest.mark.parametrize("folder", ["new_joints", "new_joint_vecs"])
def test_motion_info_humanml3d(shared_data, folder):
    info = one_json_object(baton("motion", "info", str(shared_data / "humanml3d_sample" / folder / "012314.npy"),
                                 "--json"))  # fmt: skip
    assert (info["skeleton"], info["joints"], info["fps"], info["frames"]) == ("smpl22", 22, 20.0, 170)
    assert info["duration_s"] == pytest.approx(8.5)


def test_motion_info_conductor_motion(tmp_path):
    motion = np.full((60, 13, 2), 0.5, np.float32)
    folder = write_conductor_sample(tmp_path, "test", 0, np.zeros((180, 128), np.float32), motion)
    info = one_json_object(baton("motion", "info", str(folder / "motion.npy"), "--json"))
    assert (info["skeleton"], info["joints"], info["fps"], info["frames"], info["dimensions"]) == ("coco13", 13, 30.0,
                                                                                                   60, 2)  # fmt: skip


def test_motion_info_text_output(shared_data):
    result = baton("motion", "info", str(shared_data / "cmu_mocap_subject131_bvh" / "131_02.bvh"))
    assert result.returncode == 0, result.stderr
    assert "joints: 31" in result.stdout and "fps: 120" in result.stdout


def test_bad_files_exit_1_with_a_message(tmp_path):
    missing = baton("motion", "info", str(tmp_path / "missing.bvh"), "--json")
    assert missing.returncode == 1 and "not found" in missing.stderr and missing.stdout == ""
    broken = tmp_path / "broken.bvh"
    broken.write_text("HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 3 Xrotation")
    result = baton("motion", "info", str(broken), "--json")
    assert result.returncode == 1 and "broken.bvh" in result.stderr and "Traceback" not in result.stderr
    odd = tmp_path / "odd.npy"
    np.save(odd, np.zeros((4, 7)))
    result = baton("motion", "info", str(odd))
    assert result.returncode == 1 and "263" in result.stderr


def test_command_not_built_yet_exits_2():
    missing = [(c, None) for c in COMMANDS] + [(g, t) for g, (_, targets) in GROUPS.items() for t in targets]
    missing = [(c, t) for c, t in missing if importlib.util.find_spec(_module_name(c, t)) is None]
    if not missing:
        pytest.skip("every command is built")
    command, target = missing[0]
    result = baton(command, *([target] if target else []))
    assert result.returncode == 2
    assert "not available yet" in result.stderr and "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error():
    result = baton("juggle")
    assert result.returncode == 2 and "invalid choice" in result.stderr
