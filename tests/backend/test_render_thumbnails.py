"""Result thumbnails: the neutral mannequin plan, the contact sheet, the library's rendered-thumbnail table (SQLite and
PostgreSQL) and real Blender renders that are made once per clip."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.library import open_library
from backend.library.importer import import_paths
from backend.render.mannequin import BACKEND_TO_BLENDER, NEUTRAL_LOOK, RenderSettings, plan_clip
from backend.render.thumbnails import RENDERER, contact_sheet, ensure_thumbnails, png_bytes, thumbnail_plan
from models.motion.io import load_motion
from models.motion.motion import Motion
from tests.backend.conftest_library import *  # noqa: F401,F403

CMU = "cmu_mocap_subject131_bvh"


@pytest.fixture(scope="module")
def walk(shared_data: Path):
    return load_motion(shared_data / CMU / "131_01.bvh")


def test_neutral_plan_is_the_same_look_for_every_clip_and_spans_the_clip(walk, shared_data):
    hop = load_motion(shared_data / CMU / "131_03.bvh")
    a, b = thumbnail_plan(walk), thumbnail_plan(hop)
    for key in ("background", "floor", "light", "light_rotation", "shadows", "lens_mm", "view_transform"):
        assert a[key] == b[key], key
    assert a["tracking"] and a["view_transform"] == "Standard"
    np.testing.assert_allclose(a["colors"][-1, :3], NEUTRAL_LOOK["body"], atol=1e-6)  # the head
    assert np.array_equal(thumbnail_plan(walk)["matrices"], a["matrices"]), "deterministic"
    # Four poses at 1/8, 3/8, 5/8 and 7/8 of the clip.
    settings = RenderSettings(size=128, frames=4, fps=4 / walk.duration_s)
    times = a["start_s"] + np.arange(4) / settings.fps
    np.testing.assert_allclose(times / walk.duration_s, [1 / 8, 3 / 8, 5 / 8, 7 / 8], atol=1e-9)
    # The camera follows the pelvis: its offset to the pelvis is the same in every frame although the subject walks.
    pelvis = a["positions"][:, 0] @ BACKEND_TO_BLENDER.T
    offsets = a["camera"][:, :2, 3] - pelvis[:, :2]
    assert np.linalg.norm(pelvis[-1, :2] - pelvis[0, :2]) > 0.5, "the subject walks (metres)"
    np.testing.assert_allclose(offsets, np.repeat(offsets[:1], 4, axis=0), atol=1e-4)
    random = plan_clip(walk, settings, seed=1)
    assert random["background"] != a["background"] and "view_transform" not in random


def test_contact_sheet_tiles_row_major_and_refuses_bad_shapes():
    frames = np.stack([np.full((2, 3, 3), 40 * (i + 1), np.uint8) for i in range(4)])
    sheet = contact_sheet(frames)
    assert sheet.shape == (4, 6, 3)
    assert [sheet[0, 0, 0], sheet[0, 3, 0], sheet[2, 0, 0], sheet[2, 3, 0]] == [40, 80, 120, 160]
    five = contact_sheet(np.concatenate([frames, frames[:1]]))
    assert five.shape == (4, 9, 3) and (five[2:, 6:] == 255).all(), "3 columns, the empty cell is white"
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(sheet))))
    assert np.array_equal(decoded, sheet)
    for bad in (np.zeros((0, 2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.uint8), np.zeros((1, 2, 2, 4), np.uint8)):
        with pytest.raises(ValueError, match="contact_sheet"):
            contact_sheet(bad)


def test_store_keeps_rendered_thumbnails_without_bumping_the_generation(library_url, shared_data):
    with open_library(library_url) as library:
        import_paths(library, [shared_data / CMU])
        ids = [record.clip_id for record in library.clips()]
        assert library.thumbnail(ids[0]).startswith(b"\x89PNG") and library.rendered_thumbnails(ids) == {}
        generation = library.store.generation()
        library.save_rendered_thumbnails({ids[0]: b"\x89PNG-a", ids[1]: b"\x89PNG-b"}, RENDERER)
        assert library.store.generation() == generation, "nothing cached depends on thumbnails"
        assert library.rendered_thumbnails(ids) == {ids[0]: b"\x89PNG-a", ids[1]: b"\x89PNG-b"}
        assert library.rendered_thumbnails(ids, "an older renderer") == {}
        assert library.thumbnail(ids[0]) == b"\x89PNG-a", "a render wins over the pose strip"
        assert library.thumbnail(ids[2]) == library.store.thumbnail(ids[2]), "no render: the pose strip"
        library.save_rendered_thumbnails({ids[0]: b"\x89PNG-c"}, RENDERER)  # replaced, not duplicated
        assert library.rendered_thumbnails([ids[0]]) == {ids[0]: b"\x89PNG-c"}
        with pytest.raises(KeyError, match="987654"):
            library.save_rendered_thumbnails({ids[2]: b"\x89PNG-d", 987654: b"x"}, RENDERER)
        assert ids[2] not in library.rendered_thumbnails(ids), "nothing written when an id is unknown"
        assert library.stats()["rendered_thumbnails"] == 2
        with pytest.raises(KeyError, match="987654"):
            ensure_thumbnails(library, [ids[0], 987654])


@pytest.mark.slow
def test_thumbnails_are_rendered_once_and_fall_back_to_pose_strips(tmp_path, shared_data, monkeypatch):
    url = f"sqlite:///{tmp_path / 'lib.sqlite'}"
    with open_library(url) as library:
        import_paths(library, [shared_data / CMU])
        ids = [record.clip_id for record in library.clips()]
        monkeypatch.setenv("BATON_BLENDER_PYTHON", str(tmp_path / "no-blender" / "python"))
        without = ensure_thumbnails(library, ids[:1])
        assert without["rendered_now"] == 0 and "rendering thumbnails needs" in without["note"]
        assert without["thumbnails"][0]["rendered"] is False
        assert without["thumbnails"][0]["png"] == library.store.thumbnail(ids[0]), "the pose strip"
        monkeypatch.delenv("BATON_BLENDER_PYTHON")
        first = ensure_thumbnails(library, [ids[1], ids[0], ids[1]], batch=1)
        assert first["rendered_now"] == 2 and [t["clip_id"] for t in first["thumbnails"]] == [ids[1], ids[0]]
        for thumbnail in first["thumbnails"]:
            image = np.asarray(Image.open(io.BytesIO(thumbnail["png"])).convert("RGB")).astype(float)
            assert thumbnail["rendered"] and image.shape == (256, 256, 3)
            mannequin = image[..., 2] - image[..., 0] > 20  # the blue-grey body; background and floor are grey
            cells = [mannequin[r : r + 128, c : c + 128].mean() for r in (0, 128) for c in (0, 128)]
            assert all(0.02 < cell < 0.4 for cell in cells), f"the mannequin is in every cell: {cells}"
        real_get_motion = library.get_motion

        def flat(clip_id):  # the third clip as 2D keypoints: the renderer cannot draw it, its pose strip stays
            motion = real_get_motion(clip_id)
            if clip_id != ids[2]:
                return motion
            return Motion(skeleton=motion.skeleton, fps=motion.fps, positions=motion.positions[..., :2])

        monkeypatch.setattr(library, "get_motion", flat)
        partial = ensure_thumbnails(library, ids)
        assert partial["rendered_now"] == 0 and partial["thumbnails"][2]["rendered"] is False
        monkeypatch.setattr(library, "get_motion", real_get_motion)
        again = ensure_thumbnails(library, ids)
        assert again["rendered_now"] == 1, "only the clip without a render is rendered"
        assert again["thumbnails"][0]["png"] == first["thumbnails"][1]["png"]
        assert ensure_thumbnails(library, ids, render=False)["rendered_now"] == 0
