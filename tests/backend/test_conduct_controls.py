"""The procedural conductor's named controls (energy, size, legato; issue 15) end to end: the generator registry,
``baton conduct``, and the server's conduct request."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from backend.cli import main
from backend.conductor.synth import synthesize_demo_piece, write_demo_piece
from backend.schemas import ConductRequest
from blender_addon.client import CONDUCTOR_CONTROLS
from models.conductor import ProceduralStyle, analyze_signal, generate
from models.conductor.audio import SAMPLE_RATE
from models.conductor.registry import load_generator, style_from_controls
from models.motion.io import load_motion

RIGHT_WRIST = 10  # coco13: the baton hand


def _wrist_range(positions: np.ndarray) -> float:
    """The baton wrist's larger extent (x or y) over the piece, image units."""
    wrist = positions[:, RIGHT_WRIST]
    return float(np.max(wrist.max(axis=0) - wrist.min(axis=0)))


@pytest.fixture(scope="module")
def piece():
    return analyze_signal(synthesize_demo_piece(seconds=8.0, bpm=100.0, meter=4), SAMPLE_RATE)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_demo_piece(tmp_path_factory.mktemp("audio") / "piece.wav", seconds=8.0, bpm=100.0, meter=4)


def test_the_addon_and_server_ranges_are_the_procedural_styles():
    assert {k: (low, high) for k, (low, high, _) in CONDUCTOR_CONTROLS.items()} == ProceduralStyle.CONTROLS
    defaults = ProceduralStyle()
    expected = {k: getattr(defaults, k) for k in CONDUCTOR_CONTROLS}
    assert {k: d for k, (_, _, d) in CONDUCTOR_CONTROLS.items()} == expected


def test_generate_size_energy_legato_change_the_motion(piece):
    small = generate(piece, "procedural", size=0.5).positions
    large = generate(piece, "procedural", size=1.5).positions
    assert _wrist_range(large) > 1.5 * _wrist_range(small)
    default = generate(piece, "procedural").positions
    np.testing.assert_array_equal(default, generate(piece, "procedural", energy=0.5, size=1.0, legato=0.5).positions)
    assert not np.allclose(default, generate(piece, "procedural", energy=1.0).positions)
    assert not np.allclose(default, generate(piece, "procedural", legato=0.0).positions)
    motion = generate(piece, "procedural", energy=0.9, legato=0.1)
    assert motion.metadata["style"]["energy"] == 0.9 and motion.metadata["style"]["legato"] == 0.1


@pytest.mark.parametrize("model", ["diffusion", "m2sgan"])
def test_controls_for_a_learned_model_are_a_clear_error(piece, model):
    with pytest.raises(ValueError, match=rf"size.*procedural conductor only.*{model}"):
        generate(piece, model, size=1.5)
    with pytest.raises(ValueError, match="procedural conductor only"):
        load_generator(model, style=ProceduralStyle(size=1.5))
    assert style_from_controls(model, energy=0.5, size=1.0, legato=0.5) is None  # the defaults change nothing


@pytest.mark.parametrize(("control", "value"), [("energy", 1.5), ("size", 0.1), ("legato", -0.2)])
def test_out_of_range_controls_name_the_control(piece, control, value):
    with pytest.raises(ValueError, match=rf"^{control} must be a number in \["):
        generate(piece, "procedural", **{control: value})


def test_baton_conduct_size_option(clip, tmp_path, capsys):
    extents = {}
    for size in (0.5, 1.5):
        out = tmp_path / f"s{size}.npz"
        assert main(["conduct", str(clip), "--model", "procedural", "--size", str(size), "--energy", "0.7",
                     "--legato", "0.2", "-o", str(out), "--json"]) == 0  # fmt: skip
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert report["style"]["size"] == size and report["style"]["energy"] == 0.7
        extents[size] = _wrist_range(load_motion(out).positions)
    assert extents[1.5] > 1.5 * extents[0.5]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "diffusion", "--energy", "0.9"], "energy shape(s) the procedural conductor only"),
        (["--model", "procedural", "--size", "3"], "--size must be a number in [0.25, 2]"),
    ],
)
def test_baton_conduct_bad_controls_fail_before_any_work(clip, tmp_path, capsys, args, message):
    out = tmp_path / "x.npz"
    assert main(["conduct", str(clip), *args, "-o", str(out)]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(("control", "value"), [("energy", 1.01), ("size", 0.2), ("size", 2.5), ("legato", -0.1)])
def test_conduct_request_bad_control_is_a_validation_error_naming_it(control, value):
    with pytest.raises(ValidationError) as info:
        ConductRequest(audio_path="a.ogg", **{control: value})
    assert [e["loc"] for e in info.value.errors()] == [(control,)]


def test_conduct_request_controls_for_a_learned_model_are_refused():
    with pytest.raises(ValidationError, match=r"legato shape\(s\) the procedural conductor only"):
        ConductRequest(audio_path="a.ogg", model="diffusion", legato=0.1)
    assert ConductRequest(audio_path="a.ogg", model="diffusion", legato=0.5).controls() == {"legato": 0.5}
    assert ConductRequest(audio_path="a.ogg", size=1.5).controls() == {"size": 1.5}


def test_server_answers_422_naming_the_control(tmp_path: Path):
    from fastapi.testclient import TestClient

    from backend.app import create_app
    from backend.settings import Settings

    token = "c" * 32
    with TestClient(create_app(Settings(token=token, work_dir=tmp_path))) as http:
        headers = {"Authorization": f"Bearer {token}"}
        answer = http.post("/jobs/conduct", headers=headers, json={"audio_path": "a.ogg", "size": 5.0})
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert body["error"] == "invalid_request" and "size" in body["detail"], body
        answer = http.post("/jobs/conduct", headers=headers,
                           json={"audio_path": "a.ogg", "model": "m2sgan", "energy": 0.9})  # fmt: skip
        assert answer.status_code == 422 and "procedural conductor only" in answer.json()["detail"], answer.text


def test_server_conduct_job_uses_the_requests_controls(clip, tmp_path: Path):
    from backend.jobs import JobContext
    from backend.model_registry import ModelRegistry
    from backend.pipelines import default_model_specs, prepare_conduct, run_conduct
    from backend.settings import Settings
    from backend.wire_motion import motion_from_payload
    from models.progress import Progress

    settings = Settings(token="c" * 32, work_dir=tmp_path)
    context = JobContext("j", Progress(), settings, ModelRegistry(settings, default_model_specs()))
    extents, styles = {}, {}
    for size in (0.5, 1.5, None):
        request = ConductRequest(audio_path=str(clip), **({} if size is None else {"size": size, "legato": 0.2}))
        result = run_conduct(prepare_conduct(request, settings, clip), context)
        motion = motion_from_payload(result["motion"])
        extents[size], styles[size] = _wrist_range(motion.positions), motion.metadata.get("style")
    assert extents[1.5] > 1.5 * extents[0.5]
    assert styles[1.5]["size"] == 1.5 and styles[1.5]["legato"] == 0.2
    assert styles[None] == ProceduralStyle().to_dict()  # the server's cached default conductor is unchanged
