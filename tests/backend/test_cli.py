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


def test_every_listed_command_has_a_module():
    """`baton --help` lists no command that would fail to load: each has a module with configure() and run()."""
    listed = [(c, None) for c in COMMANDS] + [(g, t) for g, (_, targets) in GROUPS.items() for t in targets]
    for command, target in listed:
        module = importlib.import_module(_module_name(command, target))
        assert callable(module.configure) and callable(module.run), (command, target)


def test_unknown_command_is_a_usage_error():
    result = baton("juggle")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_options_right_after_a_plain_command_reach_the_command(capsys):
    """`baton retarget -h` / `baton demo -o DIR` style calls: leading options belong to the command, not to baton."""
    from backend.cli import _split, main

    assert _split(["-v", "demo", "-o", "out/"]) == (["-v", "demo"], ["-o", "out/"])
    assert _split(["bench", "retarget", "--json"]) == (["bench", "retarget"], ["--json"])
    with pytest.raises(SystemExit) as exc:
        main(["motion", "info", "--help"])
    assert exc.value.code == 0
    assert "usage: baton motion info" in capsys.readouterr().out
