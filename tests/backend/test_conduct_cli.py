"""``baton conduct``, ``baton eval conductor``, ``baton models import-virtualconductor`` and ``baton demo``."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from backend.cli import main
from backend.conductor.synth import synthesize_demo_piece, write_demo_piece
from models.motion.io import load_motion

REPO = Path(__file__).resolve().parents[2]
BLENDER_PYTHON = REPO / ".venv-blender" / "bin" / "python"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 12 s synthesised waltz (3/4, 112 BPM) as WAV."""
    return write_demo_piece(tmp_path_factory.mktemp("audio") / "waltz.wav", seconds=12.0)


@pytest.fixture(scope="module")
def checkpoints(shared_data):
    folder = shared_data / "virtualconductor_checkpoints"
    return folder / "M2SNet_official_pretrained.pt", folder / "M2SGAN_official_pretrained.pt"


def _json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, f"expected exactly one JSON line on stdout, got {out}"
    return json.loads(out[0])


def test_conduct_writes_npz_and_bvh(clip, tmp_path, capsys):
    assert main(["conduct", str(clip), "--model", "procedural", "-o", str(tmp_path / "c.npz"), "--json"]) == 0
    report = _json(capsys)
    assert report["frames"] == 360 and report["rig"] == "coco13" and report["meter"] == 3
    motion = load_motion(tmp_path / "c.npz")
    assert motion.positions.shape == (360, 13, 2) and motion.fps == 30
    assert main(["conduct", str(clip), "--model", "procedural", "--rig", "kit21", "-o", str(tmp_path / "c.bvh")]) == 0
    bvh = load_motion(tmp_path / "c.bvh")
    assert bvh.num_frames == 360 and bvh.skeleton.num_joints == 21


def test_conduct_refuses_bad_input(clip, tmp_path, capsys):
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n" * 50)
    assert main(["conduct", str(text), "--model", "procedural", "-o", str(tmp_path / "x.npz")]) == 1
    assert "not a readable audio file" in capsys.readouterr().err
    assert main(["conduct", str(clip), "-o", str(tmp_path / "x.txt")]) == 1
    assert main(["conduct", str(clip), "--rig", "robot", "-o", str(tmp_path / "x.bvh")]) == 1
    assert main(["conduct", str(clip), "--model", "nonexistent", "-o", str(tmp_path / "x.npz")]) == 1
    assert not list(tmp_path.glob("x.*"))


@pytest.fixture
def spy_loader(monkeypatch):
    """``models.conductor.registry.load_generator`` (the loader the server's conductor specs call) recording what it
    receives and handing back the real procedural generator; returns the list of calls."""
    import models.conductor.registry as registry

    received: list[dict] = []
    real = registry.load_generator

    def load_generator(name, checkpoint=None, *, device="cpu", runtime="torch", style=None):
        received.append({"name": name, "checkpoint": checkpoint, "device": device, "runtime": runtime})
        return real("procedural")

    monkeypatch.setattr(registry, "load_generator", load_generator)
    return received


def _gpus(monkeypatch, count: int) -> None:
    """Pretend torch sees ``count`` GPUs and onnxruntime offers CUDA."""
    import backend.model_registry as model_registry

    monkeypatch.setattr(model_registry, "cuda_device_count", lambda: count)
    monkeypatch.setattr(model_registry, "available_onnx_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])  # fmt: skip


def test_conduct_passes_device_and_runtime_to_the_loader(clip, tmp_path, spy_loader, monkeypatch, capsys):
    out = str(tmp_path / "c.npz")
    assert main(["conduct", str(clip), "--model", "diffusion", "-o", out, "--json"]) == 0
    assert spy_loader[-1] == {"name": "diffusion", "checkpoint": None, "device": "cpu", "runtime": "torch"}
    report = _json(capsys)
    assert (report["device"], report["runtime"]) == ("cpu", "torch")
    assert report["ran_on"] == {"device": "cpu", "runtime": "numpy", "providers": []}  # what the spy handed back
    _gpus(monkeypatch, 2)
    for device, resolved in (("auto", "cuda"), ("cuda:1", "cuda:1")):
        assert main(["conduct", str(clip), "--model", "diffusion", "--device", device, "--runtime", "onnx",
                     "--checkpoint", "/weights/d.pt", "-o", out, "--json"]) == 0  # fmt: skip
        assert spy_loader[-1] == {"name": "diffusion", "checkpoint": "/weights/d.pt", "device": resolved,
                                  "runtime": "onnx"}  # fmt: skip
        assert _json(capsys)["device"] == resolved


def test_conduct_refuses_a_device_or_runtime_it_cannot_use(clip, tmp_path, spy_loader, monkeypatch, capsys):
    import backend.model_registry as model_registry

    out = tmp_path / "x.npz"
    monkeypatch.setattr(model_registry, "cuda_device_count", lambda: 0)
    assert main(["conduct", str(clip), "--model", "diffusion", "--device", "cuda", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error: device 'cuda' requested but CUDA is not available here: torch" in err, err
    assert "use --device cpu" in err and "Traceback" not in err
    _gpus(monkeypatch, 1)
    assert main(["conduct", str(clip), "--model", "diffusion", "--device", "cuda:1", "-o", str(out)]) == 1
    assert "'cuda:1' requested but torch sees 1 GPU(s): cuda:0" in capsys.readouterr().err
    assert main(["conduct", str(clip), "--model", "m2sgan", "--runtime", "onnx", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "conductor model 'm2sgan' has no onnx runtime (it runs on torch); use --runtime torch" in err, err
    assert main(["conduct", str(clip), "--device", "tpu", "-o", str(out)]) == 1
    assert "unknown device 'tpu'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not one of the runtimes
        main(["conduct", str(clip), "--runtime", "tensorrt", "-o", str(out)])
    assert spy_loader == [] and not out.exists()  # refused before any model loads or file is written


def test_conduct_runtime_onnx_runs_the_exported_diffusion_graphs(clip, tmp_path, monkeypatch, capsys,
                                                                 diffusion_onnx_cache):  # fmt: skip
    """The real loader: ``--runtime onnx`` runs diffusion through onnxruntime sessions of the session's export."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(diffusion_onnx_cache))
    out = tmp_path / "d.npz"
    assert main(["conduct", str(clip), "--model", "diffusion", "--runtime", "onnx", "--steps", "4", "--seed", "3",
                 "-o", str(out), "--json"]) == 0  # fmt: skip
    report = _json(capsys)
    assert report["ran_on"] == {"device": "cpu", "runtime": "onnx", "providers": ["CPUExecutionProvider"]}
    motion = load_motion(out)
    assert motion.positions.shape == (360, 13, 2)
    assert np.abs(np.diff(motion.positions[:, 10], axis=0)).sum() > 0.1  # the baton hand moves


def test_eval_conductor_json(clip, tmp_path, checkpoints, capsys):
    long_clip = tmp_path / "long.wav"
    soundfile.write(long_clip, synthesize_demo_piece(seconds=21.0, bpm=96.0, meter=4), 22050)
    net, gan = checkpoints
    argv = ["eval", "conductor", str(clip), str(long_clip), "--model", "procedural", "--m2snet", str(net),
            "--m2sgan", str(gan), "--json"]  # fmt: skip
    assert main(argv) == 0
    report = _json(capsys)
    keys = {"bc_seconds", "bc_seed", "fgd", "diversity", "mse", "sce", "rde", "jitter", "sync", "sync_control",
            "sync_gain"}
    assert report["model"] == "procedural" and report["reference"].startswith("m2sgan")
    assert len(report["files"]) == 2 and set(report["mean"]) == keys
    for entry in report["files"]:
        assert keys <= set(entry)
        assert 0.0 <= entry["bc_seconds"] <= 1.0 and entry["fgd"] >= 0.0 and entry["jitter"] > 0.0
    assert report["files"][0]["meter"] == 3 and report["files"][0]["tempo_bpm"] == pytest.approx(112, rel=0.03)
    assert report["files"][0]["diversity"] is None  # 12 s: fewer than two 10 s windows
    assert report["files"][1]["diversity"] > 0.0
    assert report["mean"]["bc_seconds"] == pytest.approx(np.mean([f["bc_seconds"] for f in report["files"]]))
    # The procedural conductor beats M2S-GAN on beat consistency.
    assert main(["eval", "conductor", str(clip), "--model", "m2sgan", "--checkpoint", str(gan), "--reference", "none",
                 "--json"]) == 0  # fmt: skip
    gan_report = _json(capsys)
    assert gan_report["files"][0]["mse"] is None
    assert report["files"][0]["bc_seconds"] >= gan_report["files"][0]["bc_seconds"]


def test_import_virtualconductor(checkpoints, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATON_DATA_DIR", str(tmp_path / "data"))
    assert main(["models", "import-virtualconductor", str(checkpoints[1]), "--json"]) == 0
    report = _json(capsys)
    assert report["kind"] == "m2sgan"
    assert Path(report["output"]) == tmp_path / "data" / "models" / "m2sgan.pt"
    from models.conductor import available_models

    assert available_models()["m2sgan"]["available"] is True
    assert main(["models", "import-virtualconductor", str(checkpoints[0]), "-o", str(tmp_path / "n.pt")]) == 0
    assert (tmp_path / "n.pt").is_file()


_CHECK_BLEND = """
import bpy, json, sys
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
scene = bpy.context.scene
editor = scene.sequence_editor
strips = editor.strips if hasattr(editor, "strips") else editor.sequences
print(json.dumps({
    "fps": scene.render.fps, "start": scene.frame_start, "end": scene.frame_end,
    "sounds": [[s.type, s.frame_start, s.sound.packed_file is not None] for s in strips],
    "armatures": {o.name: list(o.animation_data.action.frame_range) for o in bpy.data.objects
                  if o.type == "ARMATURE" and o.animation_data and o.animation_data.action},
}))
"""


@pytest.mark.slow
def test_demo_without_audio_writes_blend_mp4_png(tmp_path):
    import imageio_ffmpeg

    from backend.commands import demo

    parser = argparse.ArgumentParser()
    demo.configure(parser)
    out = tmp_path / "out"
    assert demo.run(parser.parse_args(["-o", str(out), "--model", "procedural"])) == 0
    blend, mp4, png = out / "baton_demo_piece.blend", out / "baton_demo_piece.mp4", out / "baton_demo_piece_beats.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frames = 16 * 30
    done = subprocess.run([str(BLENDER_PYTHON), "-c", _CHECK_BLEND, str(blend)], capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert (info["fps"], info["start"], info["end"]) == (30, 1, frames)
    assert info["sounds"] == [["SOUND", 1.0, True]]
    assert info["armatures"] == {"smpl24": [1.0, float(frames)], "coco13": [1.0, float(frames)]}
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(mp4)], capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert "Video: h264" in probe.stderr and "Audio: aac" in probe.stderr
    assert "Duration: 00:00:16" in probe.stderr


def test_eval_against_a_reference_motion_file(clip, tmp_path, checkpoints, capsys):
    reference = tmp_path / "reference.npz"
    assert main(["conduct", str(clip), "--model", "procedural", "--seed", "5", "-o", str(reference)]) == 0
    capsys.readouterr()
    argv = ["eval", "conductor", str(clip), "--model", "procedural", "--seed", "5", "--reference", str(reference),
            "--m2snet", str(checkpoints[0]), "--json"]  # fmt: skip
    assert main(argv) == 0
    entry = _json(capsys)["files"][0]
    assert entry["mse"] == 0.0 and entry["sce"] == pytest.approx(0.0) and entry["rde"] == pytest.approx(0.0)
    assert entry["fgd"] == pytest.approx(0.0, abs=1e-3)
    argv[argv.index("5")] = "6"  # another seed: a different performance of the same music
    assert main(argv) == 0
    assert _json(capsys)["files"][0]["mse"] > 0.0
    assert main(["eval", "conductor", str(clip), str(clip), "--reference", str(reference), "--json"]) == 1
