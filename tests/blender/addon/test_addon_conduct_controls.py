"""Generate from Music's conductor controls (energy, size, legato; issue 15): the scene properties, the panel's
sliders (procedural only), and the values the conduct request carries (captured at the client, no backend)."""

from __future__ import annotations

import sys

import bpy
import pytest
from panel_snapshot import record_panel

CONTROLS = {"energy": (0.0, 1.0, 0.5), "size": (0.25, 2.0, 1.0), "legato": (0.0, 1.0, 0.5)}


def _drawn_props(panel) -> dict[str, dict]:
    return {n.text: n.extra for n in record_panel(panel).walk() if n.kind == "prop"}


def test_properties_have_the_servers_ranges_and_defaults(addon, clean_scene):
    rna = clean_scene.baton.bl_rna.properties
    for name, (low, high, default) in CONTROLS.items():
        prop = rna[name]
        assert prop.type == "FLOAT" and (prop.hard_min, prop.hard_max) == (low, high), name
        assert getattr(clean_scene.baton, name) == pytest.approx(default), name
    assert addon.client.CONDUCTOR_CONTROLS == CONTROLS  # what the backend's schema checks against
    with pytest.raises(TypeError):
        clean_scene.baton.size = "big"
    clean_scene.baton.size = 5.0  # Blender clamps a slider to its range
    assert clean_scene.baton.size == pytest.approx(2.0)


def test_sliders_are_drawn_for_the_procedural_model_only(addon, clean_scene):
    settings = clean_scene.baton
    settings.model = "procedural"
    drawn = _drawn_props(bpy.types.BATON_PT_generate)
    assert {"Energy", "Size", "Legato"} <= set(drawn), sorted(drawn)
    assert drawn["Size"]["type"] == "FLOAT"
    settings.model = "diffusion"
    drawn = _drawn_props(bpy.types.BATON_PT_generate)
    assert not {"Energy", "Size", "Legato"} & set(drawn), sorted(drawn)


class _Captured(Exception):
    pass


def _capture_conduct(addon, monkeypatch) -> list[dict]:
    """Make the generate job's client record its ``POST /jobs/conduct`` body and stop there."""
    bodies: list[dict] = []

    def fake_request(self, method, path, payload=None, **_):
        if path == "/uploads/audio":
            return {"upload_id": "0" * 32}
        if path == "/capabilities":
            return {"limits": {}}
        if path == "/jobs/conduct":
            bodies.append(dict(payload))
            raise _Captured("captured the conduct request")
        raise AssertionError(f"unexpected request {method} {path}")

    def fake_connect(job, **_):
        client = addon.server.make_client("http://127.0.0.1:9", "t" * 32)
        monkeypatch.setattr(type(client), "_request", fake_request)
        return client

    monkeypatch.setattr(addon.remote, "connect", fake_connect)
    return bodies


@pytest.mark.parametrize(("model", "sent"), [("procedural", {"energy": 0.8, "size": 1.5, "legato": 0.1}),
                                             ("diffusion", {})])  # fmt: skip
def test_the_conduct_request_carries_the_sliders(addon, clean_scene, wait_jobs, shared_audio, monkeypatch, model, sent):
    bodies = _capture_conduct(addon, monkeypatch)
    settings = clean_scene.baton
    settings.audio_path, settings.target, settings.model = str(shared_audio), "SMPL24", model
    settings.energy, settings.size, settings.legato = 0.8, 1.5, 0.1
    assert bpy.ops.baton.generate() == {"FINISHED"}
    wait_jobs(60)
    assert len(bodies) == 1, addon.jobs.runner().latest("generate").message
    body = bodies[0]
    assert body["model"] == model
    assert {k: body[k] for k in CONTROLS if k in body} == pytest.approx(sent)
    assert "torch" not in sys.modules and "onnxruntime" not in sys.modules
