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
    with pytest.raises(ValueError, match="compose"):
        build_synthetic_corpus([], tmp_path)
    with pytest.raises(ValueError, match="stretch"):
        build_synthetic_corpus([shared_data / TRUMPET], tmp_path, stretch_rates=(10.0,))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="Debian fluidsynth not installed")
def test_composed_pieces_cover_the_meters_and_augmented_performances_follow_their_grid(tmp_path):
    """``compose`` adds rendered MIDI pieces in every time signature; ``meter_augment`` conducts a share of the
    performances in another meter, whose grid (beats.json) the teacher's pattern then follows."""
    from models.conductor.procedural import PATTERNS
    from models.conductor.rhythm import read_sample_grid

    manifest = build_synthetic_corpus([], tmp_path, compose=4, styles_per_piece=3, val_fraction=0.0,
                                      meter_augment=0.5, seed=1)
    sources = manifest["sources"]
    assert sorted(s["time_signature"] for s in sources) == ["2/4", "3/4", "4/4", "6/8"]
    assert all(s["path"].endswith(".mid") and (tmp_path / "composed").is_dir() for s in sources)
    assert manifest["counts"]["train"] == 12 and sum(manifest["meters"].values()) == 12
    augmented = 0
    for sample in sorted((tmp_path / "train").iterdir()):
        meta = json.loads((sample / "meta.json").read_text())
        grid = read_sample_grid(sample)
        assert grid.meter == meta["meter"] and grid.meter in PATTERNS
        augmented += meta["meter"] != meta["meter_estimated"]
        # Beat 1 of the bar the teacher was given is the lowest point of the baton hand (image y is down).
        motion = np.load(sample / "motion.npy")
        downs = (grid.downbeat_times * 30).round().astype(int)
        others = np.setdiff1d((grid.beat_times * 30).round().astype(int), downs)
        downs, others = downs[(downs > 30) & (downs < len(motion))], others[(others > 30) & (others < len(motion))]
        assert motion[downs, 10, 1].mean() > motion[others, 10, 1].mean()
    assert 1 <= augmented <= 11  # about half, never all
    with pytest.raises(ValueError, match="meter_augment"):
        build_synthetic_corpus([], tmp_path, compose=1, meter_augment=1.5)


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


def test_fine_tuning_starts_from_the_checkpoint_and_keeps_its_provenance(trumpet_corpus, tmp_path, capsys):
    from backend.cli import main
    from models.conductor.diffusion import load_checkpoint
    from models.conductor.diffusion_train import TrainConfig, train_conductor
    from models.motion.conductor_dataset import iter_conductor_split

    out, _ = trumpet_corpus
    tiny = ["--latent-dim", "16", "--layers", "1", "--heads", "2", "--ff-dim", "32", "--max-frames", "64",
            "--window", "60", "--overlap", "15", "--batch-size", "2"]
    base = tmp_path / "base"
    assert main(["train", "conductor", "--data", str(out), "-o", str(base), *tiny, "--stage1-window", "30",
                 "--stage1-steps", "2", "--stage1-batch", "2", "--steps", "3", "--json"]) == 0
    capsys.readouterr()
    # Zero fine-tuning steps reproduce the checkpoint exactly; the model flags come from it, not the defaults.
    same = tmp_path / "same"
    assert main(["train", "conductor", "--data", str(out), "-o", str(same), "--init", str(base), "--window", "60",
                 "--overlap", "15", "--steps", "0", "--json"]) == 0
    a, b = load_checkpoint(base), load_checkpoint(same)
    assert a["denoiser_config"] == b["denoiser_config"]
    for key in ("denoiser", "music_encoder"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    assert torch.equal(a["normalizer"]["mean"], b["normalizer"]["mean"])
    assert b["data"]["init_from"]["checkpoint"] == str(base) and "manifest" in b["data"]
    # A few steps move the denoiser but not the frozen music encoder.
    moved = tmp_path / "moved"
    assert main(["train", "conductor", "--data", str(out), "-o", str(moved), "--init", str(base / "diffusion.pt"),
                 "--window", "60", "--overlap", "15", "--steps", "3", "--batch-size", "2", "--json"]) == 0
    c = load_checkpoint(moved)
    assert any(not torch.equal(a["denoiser"][k], c["denoiser"][k]) for k in a["denoiser"])
    assert all(torch.equal(a["music_encoder"][k], c["music_encoder"][k]) for k in a["music_encoder"])
    train = list(iter_conductor_split(out, "train"))
    with pytest.raises(ValueError, match="denoiser config"):
        train_conductor(train, tmp_path / "bad", TrainConfig(window=60, overlap=15, steps=1), init_from=base)


def test_save_every_hands_out_intermediate_checkpoints(trumpet_corpus):
    from models.conductor.diffusion_losses import LossWeights
    from models.conductor.diffusion_model import DenoiserConfig
    from models.conductor.diffusion_train import TrainConfig, train_diffusion
    from models.conductor.m2s import M2SNet
    from models.motion.conductor_dataset import iter_conductor_split

    out, _ = trumpet_corpus
    cfg = TrainConfig(denoiser=DenoiserConfig(latent_dim=16, num_layers=1, num_heads=2, ff_dim=32, max_frames=64,
                                              rhythm_dim=9),
                      window=60, overlap=15, steps=5, batch_size=2, save_every=2, loss=LossWeights(perceptual=0))
    saved = []
    denoiser, _, metrics = train_diffusion(list(iter_conductor_split(out, "train")), cfg, M2SNet(),
                                           on_save=lambda d, n, m: saved.append((m["stage2_steps_done"], d.training)))
    assert saved == [(2, False), (4, False)]  # every 2 steps, in eval mode, not again at the end
    assert not denoiser.training and metrics["stage2_mse_last"] is not None


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
