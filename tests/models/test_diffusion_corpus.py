"""The synthetic-teacher corpus (ConductorMotion100 layout) and tiny end-to-end training runs on it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from models.conductor.corpus import build_synthetic_corpus, render_midi
from models.motion.conductor_dataset import iter_conductor_split

TRUMPET = "librosa_example_audio/sorohanro_-_solo-trumpet-06.ogg"  # 5.3 s, CC BY 3.0


@pytest.fixture(scope="module")
def trumpet_corpus(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    manifest = build_synthetic_corpus([shared_data / TRUMPET], out, styles_per_piece=2, val_fraction=0.0, seed=3)
    return out, manifest


def test_synthetic_corpus_pairs_real_music_with_the_teacher(trumpet_corpus):
    out, manifest = trumpet_corpus
    assert manifest["counts"] == {"train": 2, "val": 0}
    assert json.loads((out / "manifest.json").read_text())["counts"] == manifest["counts"]
    a, b = list(iter_conductor_split(out, "train"))
    assert a.mel.shape[0] == 3 * a.motion.shape[0] and 155 <= a.motion.shape[0] <= 165  # 5.3 s at 30 fps
    assert np.array_equal(a.mel, b.mel)  # same music ...
    assert not np.allclose(a.motion, b.motion)  # ... two random conducting styles
    assert a.motion.min() >= 0.0 and a.motion.max() <= 1.0
    assert a.motion[:, 10].std(axis=0).max() > 0.01  # the baton hand moves
    meta = json.loads((out / "train" / "0" / "meta.json").read_text())
    assert "style" in meta and meta["source"].endswith("trumpet-06.ogg")
    # The beats the teacher conducted to travel with the clip: the baton hand stops on them.
    from models.conductor.rhythm import read_sample_grid
    from models.metrics.beats import bc_seconds

    grid = read_sample_grid(out / "train" / "0")
    assert grid is not None and grid.meter in (2, 3, 4) and len(grid.beat_times) >= 5
    assert bc_seconds(grid.beat_times[grid.beat_times < a.duration_s], a.motion) > 0.6


def test_synthetic_corpus_refuses_bad_arguments(tmp_path, shared_data):
    with pytest.raises(ValueError):
        build_synthetic_corpus([], tmp_path)
    with pytest.raises(ValueError, match="stretch"):
        build_synthetic_corpus([shared_data / TRUMPET], tmp_path, stretch_rates=(10.0,))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="Debian fluidsynth not installed")
def test_render_midi_with_fluidsynth(shared_data, tmp_path):
    import soundfile

    wav = render_midi(shared_data / "music21_midi_k525" / "k525MIDIMvt1.mid", tmp_path / "k525.wav")
    info = soundfile.info(wav)
    assert info.samplerate == 22050 and 300 < info.duration < 360  # 326 s of music plus the release tail
    with pytest.raises(FileNotFoundError):
        render_midi(tmp_path / "missing.mid", tmp_path / "x.wav")


def test_train_command_on_a_cm100_layout_folder_writes_a_loadable_run(trumpet_corpus, tmp_path, capsys):
    from backend.cli import main
    from models.conductor.diffusion import DiffusionConductor

    out, _ = trumpet_corpus
    run_dir = tmp_path / "run"
    code = main(["train", "conductor", "--data", str(out), "-o", str(run_dir), "--latent-dim", "16", "--layers", "1",
                 "--heads", "2", "--ff-dim", "32", "--max-frames", "64", "--window", "60", "--overlap", "15",
                 "--stage1-window", "30", "--stage1-steps", "2", "--stage1-batch", "2", "--steps", "3",
                 "--batch-size", "2", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    config = json.loads((run_dir / "config.json").read_text())  # the resolved config sits next to the checkpoint
    assert config["train"]["window"] == 60 and config["train"]["denoiser"]["latent_dim"] == 16
    assert config["data"]["train_samples"] == 2 and report["checkpoint"] == str(run_dir / "diffusion.pt")
    assert (run_dir / "m2snet.pt").is_file()
    gen = DiffusionConductor(run_dir)
    assert not gen.music_encoder.training  # BatchNorm uses running statistics at inference
    assert gen.config.rhythm_dim == 9  # the rhythm condition is on by default
    # 130 frames: three overlapping windows
    positions = gen.sample(torch.randn(130, gen.config.condition_dim), seed=0, steps=3)
    assert positions.shape == (130, 13, 2) and np.isfinite(positions).all()


@pytest.mark.slow
def test_distributed_training_with_torchrun_on_cpu(trumpet_corpus, tmp_path):
    """Two Gloo processes (what `torchrun --nproc_per_node N` does on GPUs with NCCL): one run folder, one report."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out, _ = trumpet_corpus
    repo = Path(__file__).resolve().parents[2]
    run_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "backend.cli", "train",
           "conductor", "--data", str(out), "-o", str(run_dir), "--latent-dim", "16", "--layers", "1", "--heads",
           "2", "--ff-dim", "32", "--max-frames", "64", "--window", "60", "--overlap", "15", "--stage1-window", "30",
           "--stage1-steps", "2", "--stage1-batch", "2", "--steps", "3", "--batch-size", "2", "--json"]
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    reports = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1 and json.loads(reports[0])["checkpoint"] == str(run_dir / "diffusion.pt")
    from models.conductor.diffusion import DiffusionConductor

    gen = DiffusionConductor(run_dir)
    assert gen.sample(torch.randn(70, gen.config.condition_dim), steps=2).shape == (70, 13, 2)
