"""``baton retarget`` and ``baton bench retarget`` through the command line entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.cli import main
from models.motion import get_skeleton, load_bvh

CMU = "cmu_mocap_subject131_bvh/131_02.bvh"


def test_retarget_to_registry_and_bvh_targets(shared_data: Path, tmp_path: Path, capsys):
    out = tmp_path / "smpl.bvh"
    assert main(["retarget", str(shared_data / CMU), "--to", "smpl24", "-o", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["mapping"]["left_elbow"] == "LeftElbow" and report["output"] == str(out)
    assert report["foot_skate_after_cm"] <= report["foot_skate_before_cm"] + 0.2
    assert "left_elbow" in captured.err and "foot skate" in captured.err
    motion = load_bvh(out)
    assert motion.skeleton.joint_names == get_skeleton("smpl24").joint_names  # read back in the declared order
    assert motion.num_frames == report["frames"]
    # A BVH file as the target rig, with an explicit mapping file and another root mode.
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"spine2": None}))
    again = tmp_path / "again.npz"
    code = main(["retarget", str(out), "--to", str(out), "--mapping", str(mapping), "--root", "inplace",
                 "--no-foot-lock", "-o", str(again), "--json"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert "spine2" not in report["mapping"] and report["root_mode"] == "inplace" and not report["foot_lock"]
    assert again.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--to", "smpl99"], "unknown target"),
        (["--to", "smpl24", "--mapping", "MAPPING"], "missing bones"),
        (["--to", "missing.bvh"], "not found"),
    ],
)
def test_bad_input_exits_1_and_writes_nothing(shared_data: Path, tmp_path: Path, capsys, extra, message):
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"left_elbow": "NoSuchJoint"}))
    out = tmp_path / "out.bvh"
    out_args = [a.replace("MAPPING", str(mapping)).replace("missing.bvh", str(tmp_path / "missing.bvh")) for a in extra]
    assert main(["retarget", str(shared_data / CMU), *out_args, "-o", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == [mapping]


def test_nan_source_and_bad_output_suffix(tmp_path: Path, capsys):
    bvh = tmp_path / "nan.bvh"
    bvh.write_text(
        "HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 3 Xposition Yposition Zposition\n"
        " End Site\n {\n OFFSET 0 10 0\n }\n}\nMOTION\nFrames: 2\nFrame Time: 0.033333\n0 90 0\nnan 90 0\n"
    )
    out = tmp_path / "out.bvh"
    assert main(["retarget", str(bvh), "--to", "smpl24", "-o", str(out)]) == 1
    assert "NaN" in capsys.readouterr().err and not out.exists()
    assert main(["retarget", str(bvh), "--to", "smpl24", "-o", str(tmp_path / "out.txt")]) == 1
    assert "output must end in" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_retarget_json(capsys):
    assert main(["bench", "retarget", "--repeat", "1", "--frames", "120", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["solver"]["frames_per_s"] > 0 and report["solver"]["frames"] > 0
    blender = report["blender"]
    assert blender["available"], blender
    assert blender["bulk_s"] > 0 and blender["per_key_s"] > blender["bulk_s"]
    assert blender["keys_per_method"] == 120 * (24 * 4 + 3)
