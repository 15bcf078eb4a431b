"""``baton generate``: the issue's command writes a BVH whose right wrist is above the shoulder and swinging; bad
input exits 1 with a clear message and writes nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backend.cli import main
from models.motion.bvh import load_bvh
from models.motion.io import load_npz


def _json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, f"expected exactly one JSON line on stdout, got {out}"
    return json.loads(out[0])


def test_generate_wave_bvh_on_smpl24(tmp_path, capsys):
    out = tmp_path / "wave.bvh"
    code = main(["generate", "a person waves with their right hand", "--seconds", "4", "--rig", "smpl24", "-o",
                 str(out), "--json"])  # fmt: skip
    assert code == 0
    report = _json(capsys)
    assert report["outputs"] == [str(out)] and report["frames"] == 80 and report["fps"] == 20.0
    motion = load_bvh(out)
    names = motion.skeleton.joint_names
    p = motion.positions
    wrist, shoulder = p[:, names.index("right_wrist")], p[:, names.index("right_shoulder")]
    above = wrist[:, 1] > shoulder[:, 1]
    assert above.mean() >= 0.25
    lateral = wrist[above, 0] - shoulder[above, 0]
    assert np.ptp(lateral) >= 0.08  # swinging side to side while up
    assert report["foot_skate_cm"][0]["after"] <= report["foot_skate_cm"][0]["before"] + 1e-6


def test_generate_variations_npz_and_timeline(tmp_path, capsys):
    out = tmp_path / "walk.npz"
    assert main(["generate", "a person walks forward", "--seconds", "3", "--samples", "2", "--rig", "kit21", "-o",
                 str(out), "--json"]) == 0  # fmt: skip
    report = _json(capsys)
    assert report["outputs"] == [str(tmp_path / "walk_1.npz"), str(tmp_path / "walk_2.npz")]
    a, b = (load_npz(p) for p in report["outputs"])
    assert a.skeleton.name == "kit21" and a.rotations is not None and a.num_frames == 60
    assert not np.allclose(a.positions, b.positions)  # two different variations
    out = tmp_path / "timeline.bvh"
    assert main(["generate", "--timeline", "walk forward@0", "wave the right hand@3", "--seconds", "6", "-o",
                 str(out), "--json"]) == 0  # fmt: skip
    assert _json(capsys)["prompt"] == ["walk forward", "wave the right hand"]
    assert load_bvh(out).num_frames == 120


@pytest.mark.parametrize("argv, message", [
    (["", "--seconds", "4"], "empty"),
    (["x" * 10_000, "--seconds", "4"], "1000"),
    (["a person walks", "--seconds", "0"], "between 1 and 300"),
    (["a person walks", "--seconds", "3600"], "between 1 and 300"),
    (["a person walks", "--guidance", "nan"], "guidance"),
    (["a person walks", "--samples", "40"], "samples"),
    (["a person walks", "--rig", "nosuchrig"], "unknown rig"),
    (["--timeline", "walk@0", "wave@x", "--seconds", "4"], "not a number"),
])  # fmt: skip
def test_bad_input_exits_1_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out.bvh"
    assert main(["generate", *argv, "-o", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_bad_output_type(tmp_path, capsys):
    assert main(["generate", "a person walks", "-o", str(tmp_path / "x.txt")]) == 1
    assert ".bvh" in capsys.readouterr().err
