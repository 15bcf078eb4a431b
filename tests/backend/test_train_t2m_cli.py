"""``baton train t2m --humanml3d DIR``: a real HumanML3D motion (humanml3d_sample) with captions written here trains
every stage through the command line, reports one JSON object, and resumes (skips finished stages)."""

from __future__ import annotations

import json
import shutil

from backend.cli import main


def test_train_t2m_on_a_humanml3d_folder(shared_data, tmp_path, capsys):
    sample = shared_data / "humanml3d_sample"
    folder = tmp_path / "h3d"
    shutil.copytree(sample / "new_joint_vecs", folder / "new_joint_vecs")
    for name in ("Mean.npy", "Std.npy"):
        shutil.copy(sample / name, folder / name)
    (folder / "texts").mkdir()
    (folder / "texts" / "012314.txt").write_text("a man walks forward.#a/DET man/NOUN#0.0#0.0\n"
                                                 "someone takes a few steps.##0.0#0.0\n")  # fmt: skip
    run = tmp_path / "run"
    argv = ["train", "t2m", "--humanml3d", str(folder), "-o", str(run), "--vq-steps", "4", "--mask-steps", "3",
            "--residual-steps", "3", "--length-steps", "3", "--batch-size", "2", "--vq-batch-size", "2", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out.strip())
    assert report["stages"] == {"vq": True, "mask": True, "residual": True, "length": True, "prior": True}
    assert report["train_clips"] == 1 and report["dataset"] == str(folder)
    stamps = {p.name: p.stat().st_mtime_ns for p in run.glob("*.pt")}
    assert set(stamps) == {"vq.pt", "mask.pt", "residual.pt", "length.pt", "prior.pt"}
    assert main(argv) == 0  # a second run finds every stage done and rewrites nothing
    capsys.readouterr()
    assert {p.name: p.stat().st_mtime_ns for p in run.glob("*.pt")} == stamps


def test_train_t2m_bad_arguments(tmp_path, capsys):
    assert main(["train", "t2m", "--humanml3d", str(tmp_path / "missing"), "-o", str(tmp_path / "r")]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["train", "t2m", "-o", str(tmp_path / "r"), "--stages", "vq,diffusion"]) == 1
    assert "diffusion" in capsys.readouterr().err
    assert main(["train", "t2m", "-o", str(tmp_path / "r"), "--vq-steps", "0"]) == 1
    assert "--vq-steps" in capsys.readouterr().err
    for bad in ("-1", "nan"):
        assert main(["train", "t2m", "-o", str(tmp_path / "r"), "--vq-heading-weight", bad]) == 1
        assert "--vq-heading-weight" in capsys.readouterr().err
    for bad in ("1.5", "nan"):
        assert main(["train", "t2m", "-o", str(tmp_path / "r"), "--content-balance", bad]) == 1
        assert "--content-balance" in capsys.readouterr().err
        assert main(["train", "t2m", "-o", str(tmp_path / "r"), "--vq-content-balance", bad]) == 1
        assert "--vq-content-balance" in capsys.readouterr().err
    for bad in ("0", "5"):
        assert main(["train", "t2m", "-o", str(tmp_path / "r"), "--token-phases", bad]) == 1
        assert "--token-phases" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_train_t2m_mirror_flag_is_checked(shared_data, tmp_path, capsys):
    """--mirror only applies to a dataset Baton builds; a run folder built one way is not silently reused the other."""
    assert main(["train", "t2m", "--humanml3d", str(shared_data / "humanml3d_sample"), "-o", str(tmp_path / "r"),
                 "--mirror"]) == 1  # fmt: skip
    assert "--mirror applies to the dataset Baton builds" in capsys.readouterr().err
    dataset = tmp_path / "run" / "dataset"
    dataset.mkdir(parents=True)
    (dataset / "all.txt").write_text("a\n")
    (dataset / "index.json").write_text(json.dumps({"a": {"split": "train"}}))
    assert main(["train", "t2m", "-o", str(tmp_path / "run"), "--mirror", "--stages", "mask"]) == 1
    assert "built without mirrored clips but --mirror was given" in capsys.readouterr().err
    assert not (tmp_path / "run" / "mask.pt").exists()
