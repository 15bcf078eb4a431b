"""Conductor generators load on the device and runtime they are given: ``load_generator`` passes both through, the
diffusion generator samples with onnxruntime sessions under ``runtime="onnx"`` (same motion as torch), exports its
graphs into the per-user cache when they are missing, and a CUDA request onnxruntime cannot honour is an error."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import models.conductor.registry as conductor_registry
from models.conductor import load_generator
from models.conductor.diffusion import DEFAULT_CHECKPOINT, DiffusionConductor
from models.export import conductor_onnx
from models.export.conductor_onnx import EXPORT_FILES, default_export_dir, ensure_exported, make_session


@pytest.fixture(scope="module")
def features():
    from backend.conductor.synth import synthesize_demo_piece
    from models.conductor.audio import analyze_signal

    return analyze_signal(synthesize_demo_piece(seconds=8.0, bpm=120.0, meter=3))


@pytest.fixture
def onnx_cache(diffusion_onnx_cache: Path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(diffusion_onnx_cache))
    return default_export_dir(None)


def test_load_generator_hands_device_and_runtime_to_the_generator(monkeypatch):
    received = []

    class Spy:
        RUNTIMES = ("torch", "onnx")

        @classmethod
        def availability(cls, checkpoint=None):
            return True, "spy"

        def __init__(self, checkpoint=None, *, device="cpu", runtime="torch"):
            received.append((checkpoint, device, runtime))

    monkeypatch.setattr(conductor_registry, "generator_class", lambda name: Spy)
    load_generator("diffusion", "/weights.pt", device="cuda:1", runtime="onnx")
    load_generator("diffusion")
    assert received == [("/weights.pt", "cuda:1", "onnx"), (None, "cpu", "torch")]


def test_a_runtime_the_generator_lacks_is_refused_before_loading():
    with pytest.raises(ValueError, match="'m2sgan' has no onnx runtime"):
        load_generator("m2sgan", "/nowhere/m2sgan.pt", runtime="onnx")
    with pytest.raises(ValueError, match="unknown runtime"):
        load_generator("procedural", runtime="tensorrt")
    procedural = load_generator("procedural", device="cuda", runtime="onnx")  # rule-based: runs numpy anyway
    assert procedural.runtime_info() == {"device": "cpu", "runtime": "numpy", "providers": []}


def test_torch_diffusion_lives_on_its_device():
    gen = load_generator("diffusion", device="cpu")
    assert gen.runtime_info() == {"device": "cpu", "runtime": "torch", "providers": []}
    assert {p.device.type for p in gen.denoiser.parameters()} == {"cpu"}
    assert {p.device.type for p in gen.music_encoder.parameters()} == {"cpu"}
    with pytest.raises(ValueError, match="runtime must be"):
        DiffusionConductor(runtime="tensorrt")


def test_onnx_diffusion_samples_with_onnxruntime_like_torch(onnx_cache: Path, features):
    gen = load_generator("diffusion", device="cpu", runtime="onnx")
    assert gen.runtime_info() == {"device": "cpu", "runtime": "onnx", "providers": ["CPUExecutionProvider"]}
    assert gen.denoiser is None and gen.music_encoder is None  # nothing of torch's is kept for inference
    assert gen.onnx_dir == onnx_cache  # the per-user cache, where the session fixture exported the graphs
    torch_gen = load_generator("diffusion", device="cpu", runtime="torch")
    for seed in (0, 7):
        ours = gen.generate(features, seed=seed, steps=8)
        reference = torch_gen.generate(features, seed=seed, steps=8)
        assert ours.positions.shape == reference.positions.shape == (features.num_motion_frames, 13, 2)
        assert np.abs(ours.positions - reference.positions).max() < 1e-3
        assert ours.metadata["runtime"] == "onnx" and reference.metadata["runtime"] == "torch"
    assert np.abs(np.diff(ours.positions[:, 10], axis=0)).sum() > 0.1  # the baton hand moves


def test_onnx_diffusion_exports_into_the_cache_once(tmp_path: Path, monkeypatch, onnx_cache: Path):
    """A missing export is made (from the checkpoint, parity-checked) where the loader looks; the next load reuses
    it. The export itself is replaced by a copy of the session's one so the test costs no second minute."""
    calls = []

    def fake_export(checkpoint, out_dir, *, device="auto", **_):
        calls.append(Path(out_dir))
        for name in EXPORT_FILES:
            Path(out_dir, name).write_bytes((onnx_cache / name).read_bytes())
        return {"checkpoint": str(checkpoint), "max_abs_diff_denoiser": 1e-6, "max_abs_diff_music_encoder": 1e-5}

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(conductor_onnx, "export_conductor", fake_export)
    target = default_export_dir(None)
    assert target.is_relative_to(tmp_path / "cache" / "baton" / "onnx") and not target.exists()
    gen = DiffusionConductor(runtime="onnx")
    assert sorted(p.name for p in target.iterdir()) == sorted(EXPORT_FILES) and len(calls) == 1
    assert calls[0].parent == target.parent and calls[0] != target  # exported beside, then moved in
    assert gen.runtime_info()["providers"] == ["CPUExecutionProvider"]
    DiffusionConductor(runtime="onnx")
    assert len(calls) == 1


def test_an_export_that_disagrees_with_torch_is_not_used(tmp_path: Path, monkeypatch):
    def bad_export(checkpoint, out_dir, *, device="auto", **_):
        for name in EXPORT_FILES:
            Path(out_dir, name).write_bytes(b"graph")
        return {"checkpoint": str(checkpoint), "max_abs_diff_denoiser": 0.5, "max_abs_diff_music_encoder": 0.0}

    monkeypatch.setattr(conductor_onnx, "export_conductor", bad_export)
    with pytest.raises(RuntimeError, match="differs from torch by 0.5"):
        ensure_exported(DEFAULT_CHECKPOINT, tmp_path / "onnx" / "diffusion")
    assert list((tmp_path / "onnx").iterdir()) == []  # nothing left behind


class _FakeSession:
    """Stands in for ``onnxruntime.InferenceSession``: records what it was asked for, comes up on ``gets``."""

    asked: list = []
    gets = ["CPUExecutionProvider"]

    def __init__(self, path, sess_options=None, providers=None):
        type(self).asked.append(providers)

    def get_providers(self):
        return list(type(self).gets)


def test_cuda_sessions_ask_for_cuda_first_and_refuse_a_cpu_fallback(onnx_cache: Path, monkeypatch):
    import onnxruntime as ort

    model = onnx_cache / "denoiser.onnx"
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", _FakeSession)
    _FakeSession.asked = []
    _FakeSession.gets = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    _, providers = make_session(model, device="cuda:1")
    assert providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert _FakeSession.asked[-1] == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    _FakeSession.gets = ["CPUExecutionProvider"]  # onnxruntime-gpu listed CUDA, but the session fell back
    with pytest.raises(ValueError, match=r"CUDA requested \(cuda\) but onnxruntime runs .* on \['CPUExecution"):
        make_session(model, device="cuda")
    _, providers = make_session(model, device="cpu")
    assert providers == ["CPUExecutionProvider"] and _FakeSession.asked[-1] == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="device must be"):
        make_session(model, device="gpu")


def test_cuda_without_a_cuda_onnxruntime_is_a_clear_error(onnx_cache: Path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the mocked test above covers the refusal")
    with pytest.raises(ValueError, match="CUDA requested"):
        DiffusionConductor(device="cuda", runtime="onnx")


def test_m2sgan_runs_on_the_device_it_is_given(tmp_path: Path):
    from models.conductor.m2s import M2SGenerator
    from models.conductor.virtualconductor import FORMATS, M2SGANConductor

    torch.manual_seed(0)
    path = tmp_path / "m2sgan.pt"
    torch.save({"format": FORMATS["m2sgan"], "state_dict": M2SGenerator().state_dict()}, path)
    gen = load_generator("m2sgan", path, device="cpu")
    assert isinstance(gen, M2SGANConductor) and gen.runtime_info() == {"device": "cpu", "runtime": "torch",
                                                                       "providers": []}  # fmt: skip
    assert os.fspath(gen.checkpoint_path) == os.fspath(path)
