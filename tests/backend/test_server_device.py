"""``--device`` and ``--runtime`` are real: the loaders receive them, a device this machine lacks stops the server at
start with a clear message, ``/capabilities`` reports what the loaded models really run on (torch device, ORT
providers of live sessions), and ``--runtime onnx`` serves the diffusion conductor through onnxruntime with the
motion torch makes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backend.model_registry as model_registry
import models.conductor
from backend.app import create_app
from backend.errors import BatonError, NotAvailableError
from backend.model_registry import ModelRegistry, ModelSpec, check_runtime, resolve_device
from backend.pipelines import default_model_specs
from backend.server_process import REPO, serve_command, server_env, start_server
from backend.settings import Settings

TRUMPET = "sorohanro_-_solo-trumpet-06.ogg"  # 5.3 s of real music
TOKEN = "d" * 32


class _Loaded:
    """What the spied loader hands back."""

    def __init__(self, **received):
        self.received = received

    def runtime_info(self) -> dict:
        return {"device": self.received["device"], "runtime": self.received["runtime"], "providers": []}


@pytest.fixture
def spy_loader(monkeypatch):
    """``models.conductor.load_generator`` replaced by a spy; returns the list of what it received."""
    received: list[dict] = []

    def load_generator(name, checkpoint=None, *, device="cpu", runtime="torch"):
        received.append({"name": name, "checkpoint": checkpoint, "device": device, "runtime": runtime})
        return _Loaded(**received[-1])

    monkeypatch.setattr(models.conductor, "load_generator", load_generator)
    return received


def _gpus(monkeypatch, count: int, cuda_onnx: bool = True) -> None:
    """Pretend torch sees ``count`` GPUs (and onnxruntime offers CUDA when ``cuda_onnx``)."""
    monkeypatch.setattr(model_registry, "cuda_device_count", lambda: count)
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda_onnx else ["CPUExecutionProvider"]
    monkeypatch.setattr(model_registry, "available_onnx_providers", lambda: list(providers))


def test_conductor_loaders_receive_the_device_and_runtime(spy_loader, monkeypatch, tmp_path: Path):
    settings = Settings(token=TOKEN, work_dir=tmp_path, checkpoints={"diffusion": "/weights/d.pt"})
    registry = ModelRegistry(settings, default_model_specs())
    registry.get("conductor:diffusion")
    assert spy_loader[-1] == {"name": "diffusion", "checkpoint": "/weights/d.pt", "device": "cpu", "runtime": "torch"}

    _gpus(monkeypatch, 2)
    for device, resolved in (("cuda:1", "cuda:1"), ("auto", "cuda"), ("cuda", "cuda")):
        registry = ModelRegistry(Settings(token=TOKEN, work_dir=tmp_path, device=device, runtime="onnx"),
                                 default_model_specs())  # fmt: skip
        assert registry.device == resolved
        registry.get("conductor:diffusion")
        assert spy_loader[-1] == {"name": "diffusion", "checkpoint": None, "device": resolved, "runtime": "onnx"}
        assert registry.describe()["conductor:diffusion"]["device"] == resolved
    _gpus(monkeypatch, 0)
    assert ModelRegistry(Settings(token=TOKEN, work_dir=tmp_path, device="auto"), []).device == "cpu"


def test_a_generator_without_the_runtime_is_not_available(tmp_path: Path):
    weights = tmp_path / "m2sgan.pt"
    weights.write_bytes(b"present")  # availability only looks for the file
    settings = Settings(token=TOKEN, work_dir=tmp_path, runtime="onnx", checkpoints={"m2sgan": str(weights)})
    registry = ModelRegistry(settings, default_model_specs())
    info = registry.describe()["conductor:m2sgan"]
    assert info["available"] is False and "--runtime torch" in info["detail"], info
    with pytest.raises(NotAvailableError, match="'m2sgan' has no onnx runtime"):
        registry.get("conductor:m2sgan")
    assert registry.describe()["conductor:procedural"]["available"] is True  # no network: any runtime


def test_a_device_this_machine_lacks_is_refused_before_anything_is_written(monkeypatch, tmp_path: Path):
    _gpus(monkeypatch, 0)
    settings = Settings(device="cuda", work_dir=tmp_path, config_dir=tmp_path / "config")
    with pytest.raises(BatonError, match=r"device 'cuda' requested but CUDA is not available here: torch"):
        create_app(settings)
    assert not (tmp_path / "config").exists()  # no token file for a server that never started
    _gpus(monkeypatch, 2)
    with pytest.raises(BatonError, match=r"'cuda:2' requested but torch sees 2 GPU\(s\): cuda:0, cuda:1"):
        resolve_device("cuda:2")
    _gpus(monkeypatch, 1, cuda_onnx=False)
    with pytest.raises(BatonError, match="needs onnxruntime's CUDAExecutionProvider"):
        check_runtime("onnx", resolve_device("cuda"))
    check_runtime("torch", "cuda")  # torch runs wherever torch sees the GPU


def test_mps_where_torch_has_none_is_refused():
    import torch

    if torch.backends.mps.is_available():
        assert resolve_device("mps") == "mps"
    else:
        with pytest.raises(BatonError, match="no MPS backend"):
            resolve_device("mps")


@pytest.mark.parametrize("command", [serve_command(None, "--device", "cuda:99", "--port", "0"),
                                     [sys.executable, "-m", "backend.cli", "serve", "--device", "cuda:99"]])
def test_serve_with_a_missing_gpu_exits_with_the_reason(command, tmp_path: Path):
    """``python -m backend.commands.serve`` and ``baton serve`` alike (no machine has 100 GPUs)."""
    env = server_env(tmp_path / "config", tmp_path / "work")
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "error: device 'cuda:99' requested but" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "config" / "baton" / "token").exists()


def test_capabilities_report_what_the_loaded_models_run_on(tmp_path: Path, monkeypatch, diffusion_onnx_cache):
    from fastapi.testclient import TestClient

    monkeypatch.setenv("XDG_CACHE_HOME", str(diffusion_onnx_cache))  # the session's export of the shipped weights
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for runtime, providers in (("torch", []), ("onnx", ["CPUExecutionProvider"])):
        app = create_app(Settings(token=TOKEN, work_dir=tmp_path / runtime, runtime=runtime))
        with TestClient(app) as http:
            caps = http.get("/capabilities", headers=headers).json()
            assert caps["device"] == "cpu" and caps["runtime"] == runtime
            assert caps["onnx_providers"]["in_use"] == []  # nothing loaded, nothing in use
            assert "CPUExecutionProvider" in caps["onnx_providers"]["available"]
            assert all(m["device"] is None and m["providers"] == [] for m in caps["models"].values())
            app.state.models.get("conductor:diffusion")
            caps = http.get("/capabilities", headers=headers).json()
            diffusion = caps["models"]["conductor:diffusion"]
            assert diffusion["loaded"] and diffusion["device"] == "cpu" and diffusion["runtime"] == runtime
            assert diffusion["providers"] == providers and caps["onnx_providers"]["in_use"] == providers
            assert caps["models"]["conductor:procedural"]["device"] is None  # not loaded: not reported
            released = http.post("/models/release", headers=headers, json={"names": ["conductor:diffusion"]})
            assert released.json()["released"] == ["conductor:diffusion"], released.text
            assert http.get("/capabilities", headers=headers).json()["onnx_providers"]["in_use"] == []


def test_instance_runtime_reads_a_bare_torch_module(tmp_path: Path):
    import torch

    registry = ModelRegistry(Settings(token=TOKEN, work_dir=tmp_path),
                             [ModelSpec("toy", "test", lambda settings, device: torch.nn.Linear(2, 2).to(device))])
    registry.get("toy")
    assert registry.describe()["toy"] | {"detail": ""} == {
        "kind": "test", "available": True, "detail": "", "loaded": True, "device": "cpu", "runtime": None,
        "providers": []}  # fmt: skip


@pytest.fixture(scope="module")
def onnx_server(tmp_path_factory, shared_data: Path, diffusion_onnx_cache: Path):
    live = start_server(tmp_path_factory.mktemp("onnx-server"), "--runtime", "onnx", "--device", "cpu", "--root",
                        str(shared_data / "librosa_example_audio"), env={"XDG_CACHE_HOME": str(diffusion_onnx_cache)})
    yield live
    live.stop()


def test_runtime_onnx_serves_diffusion_through_onnxruntime(onnx_server, shared_data: Path):
    from backend.wire_motion import motion_from_payload
    from blender_addon.client import BatonClient
    from models.conductor import analyze_audio
    from models.conductor.diffusion import DiffusionConductor

    client = BatonClient(onnx_server.url, token=onnx_server.token, timeout=120)
    caps = client.capabilities()
    assert caps["runtime"] == "onnx" and caps["device"] == "cpu" and caps["onnx_providers"]["in_use"] == []
    assert caps["models"]["conductor:diffusion"]["available"] is True
    result = client.wait(client.submit_conduct(audio_path=TRUMPET, model="diffusion", seed=4, steps=8), timeout=600)
    served = motion_from_payload(result["motion"])
    caps = client.capabilities()
    diffusion = caps["models"]["conductor:diffusion"]
    assert diffusion["loaded"] and diffusion["runtime"] == "onnx" and diffusion["device"] == "cpu"
    assert diffusion["providers"] == ["CPUExecutionProvider"] == caps["onnx_providers"]["in_use"]
    features = analyze_audio(shared_data / "librosa_example_audio" / TRUMPET)
    reference = DiffusionConductor(runtime="torch").generate(features, seed=4, steps=8)
    assert served.positions.shape == reference.positions.shape == (features.num_motion_frames, 13, 2)
    assert np.abs(served.positions - reference.positions).max() < 1e-3
    assert np.abs(np.diff(served.positions[:, 10], axis=0)).sum() > 0.1  # the baton hand moves


def test_the_library_embedder_loads_on_the_server_device(monkeypatch, tmp_path: Path):
    """The retrieval model is built by ``load_retrieval_model(run_dir, device=<the server's device>)`` on the first
    search (not when the library opens), and ``/capabilities`` reports its parameters' device once loaded."""
    import torch

    import models.retrieval.model as retrieval_model
    from backend.library import open_library
    from models.retrieval.model import RetrievalConfig, RetrievalModel

    torch.manual_seed(0)
    model_dir = RetrievalModel(RetrievalConfig()).save(tmp_path / "retrieval")
    url = f"sqlite:///{tmp_path / 'library.sqlite'}"
    open_library(url).close()  # an empty library that exists
    received = []
    real = retrieval_model.load_retrieval_model

    def spy(run_dir, device="cpu"):
        received.append((Path(run_dir), device))
        return real(run_dir, device="cpu") if device == "cpu" else _FakeRetrieval()

    monkeypatch.setattr(retrieval_model, "load_retrieval_model", spy)
    settings = Settings(token=TOKEN, work_dir=tmp_path, library_url=url, retrieval_model=str(model_dir))
    registry = ModelRegistry(settings, default_model_specs())
    library = registry.get("library")
    assert received == [] and registry.describe()["library"]["device"] is None  # opening loads no encoder
    assert library.search_text("a person walks", k=3) == []  # an empty library: no hits, but the model ran
    assert received == [(model_dir, "cpu")]
    info = registry.describe()["library"]
    assert (info["device"], info["runtime"], info["providers"]) == ("cpu", "torch", [])

    _gpus(monkeypatch, 2)
    registry = ModelRegistry(Settings(token=TOKEN, work_dir=tmp_path, library_url=url, device="cuda:1",
                                      retrieval_model=str(model_dir)), default_model_specs())  # fmt: skip
    assert registry.get("library").embedder.model_key == "fake@1"
    assert received[-1] == (model_dir, "cuda:1")


class _FakeRetrieval:
    """Stands in for a retrieval model on a GPU this machine does not have (only its key is read)."""

    model_key, dim = "fake@1", 4

    def embed_text(self, texts):
        return np.ones((len(texts), 4), np.float32)

    def embed_motion(self, motions):
        return np.ones((len(motions), 4), np.float32)


def test_open_library_loads_the_named_embedder_on_its_device_once(monkeypatch, tmp_path: Path):
    """``open_library(url, embedder_path=..., device=...)``: nothing loads on open; the first use of
    ``Library.embedder`` calls ``load_embedder(path, device=device)`` once; an embedder and a path together are
    refused before any file is made."""
    import backend.library.embedding as embedding
    from backend.library import open_library

    received = []

    def spy(path=None, device="cpu"):
        received.append((path, device))
        return embedding.RetrievalModelEmbedder(_FakeRetrieval())

    monkeypatch.setattr(embedding, "load_embedder", spy)
    url = f"sqlite:///{tmp_path / 'library.sqlite'}"
    with open_library(url, embedder_path=tmp_path / "run", device="cuda:1") as library:
        assert received == [] and not library.has_embedder
        assert library.embedder.model_key == "fake@1" and library.embedder is library.embedder
        assert received == [(tmp_path / "run", "cuda:1")]
        assert library.embedder.runtime_info() == {"device": None, "runtime": None, "providers": []}
    with pytest.raises(ValueError, match="an embedder or an embedder_path"):
        open_library(tmp_path / "other.sqlite", _FakeRetrieval(), embedder_path=tmp_path / "run")
    assert not (tmp_path / "other.sqlite").exists()
