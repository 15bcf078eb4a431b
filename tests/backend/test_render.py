"""The avatar renderer: mannequin plans (numpy), real Blender renders (.venv-blender subprocess), the dataset
builder's layout, licences and resume."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from backend.library import open_library
from backend.library.importer import ImportOptions, import_paths
from backend.render.dataset import build_dataset, choose_clips, clip_key, pending_items, split_of
from backend.render.mannequin import BACKEND_TO_BLENDER, RenderSettings, plan_clip, window_positions
from models.motion.io import load_motion
from models.retrieval.body_parts import body_parts

BANDAI = "bandai_namco_motion_dataset1/data"


@pytest.fixture(scope="module")
def walk(shared_data: Path):
    return load_motion(shared_data / BANDAI / "dataset-1_walk_normal_001.bvh")


@pytest.fixture(scope="module")
def library(shared_data: Path, tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("render_lib")
    data = root / "bandai1" / "data"
    data.mkdir(parents=True)
    bandai = shared_data / "bandai_namco_motion_dataset1"
    (root / "bandai1" / "LICENSE").symlink_to(bandai / "LICENSE")
    (root / "bandai1" / "cfg").symlink_to(bandai / "cfg")
    for name in ("dataset-1_walk_normal_001", "dataset-1_bow_normal_001", "dataset-1_byebye_normal_001"):
        for suffix in (".bvh", ".json"):
            if (bandai / "data" / (name + suffix)).exists():
                (data / (name + suffix)).symlink_to(bandai / "data" / (name + suffix))
    url = str(root / "lib.sqlite")
    with open_library(url) as lib:
        import_paths(lib, [root], ImportOptions(thumbnails=False))
        assert lib.stats()["clips"] == 3
    return url


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="size"):
        RenderSettings(size=8)
    with pytest.raises(ValueError, match="frames"):
        RenderSettings(frames=0)
    with pytest.raises(ValueError, match="fps"):
        RenderSettings(fps=float("nan"))


def test_segments_follow_the_bones(walk):
    settings = RenderSettings(frames=6, fps=5.0)
    plan = plan_clip(walk, settings, seed=3, start_s=0.5)
    world = window_positions(walk, settings, 0.5) @ BACKEND_TO_BLENDER.T
    matrices = plan["matrices"].astype(np.float64)
    assert matrices.shape[0] == 6 and plan["colors"].shape == (matrices.shape[1], 4)
    parts = body_parts(walk.skeleton)
    chain = parts.chains[0]  # right leg: every bone's ellipsoid is centred between its two joints, along the bone
    for a, b in zip(chain[:-1], chain[1:], strict=True):
        centre = (world[:, a] + world[:, b]) / 2
        s = int(np.argmin(np.linalg.norm(matrices[0, :, :3, 3] - centre[0], axis=1)))
        np.testing.assert_allclose(matrices[:, s, :3, 3], centre, atol=1e-4)
        axis = matrices[:, s, :3, 2] / np.linalg.norm(matrices[:, s, :3, 2], axis=1, keepdims=True)
        bone = (world[:, b] - world[:, a]) / np.linalg.norm(world[:, b] - world[:, a], axis=1, keepdims=True)
        np.testing.assert_allclose(np.abs((axis * bone).sum(1)), 1.0, atol=1e-4)


def test_camera_sees_the_subject_and_seeds_vary(walk):
    settings = RenderSettings()
    plans = [plan_clip(walk, settings, seed=s) for s in range(6)]
    for plan in plans:
        assert plan["camera"].shape == (settings.frames, 4, 4)
        for frame in range(settings.frames):
            camera = plan["camera"][frame].astype(np.float64)
            centres = plan["matrices"][frame, :, :3, 3]
            local = (centres - camera[:3, 3]) @ camera[:3, :3]  # camera coordinates; the camera looks down -Z
            assert (local[:, 2] < 0).all()
            focal = plan["lens_mm"] / 36.0
            image = local[:, :2] / -local[:, 2:3] * focal  # in image widths around the centre
            assert (np.abs(image) < 0.5).all(), "every body part is inside the frame"
        if not plan["tracking"]:
            assert (plan["camera"] == plan["camera"][:1]).all(), "a static camera does not move"
    assert {p["tracking"] for p in plans} == {True, False}
    assert len({tuple(np.round(p["colors"][0], 3)) for p in plans}) == 6
    assert len({round(p["lens_mm"], 3) for p in plans}) == 6
    again = plan_clip(walk, settings, seed=2)
    np.testing.assert_array_equal(again["matrices"], plans[2]["matrices"])


def test_two_dimensional_motion_is_refused(walk):
    from models.motion.motion import Motion

    flat = Motion(skeleton=walk.skeleton, fps=walk.fps, positions=walk.positions[..., :2])
    with pytest.raises(ValueError, match="3D"):
        plan_clip(flat, RenderSettings(), seed=0)


def test_split_is_stable_and_keys_pending(tmp_path):
    assert [split_of(i) for i in range(200)] == [split_of(i) for i in range(200)]
    assert {split_of(i) for i in range(200)} == {"train", "val", "test"}
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / f"{clip_key(2, 0)}.json").write_text("{}")
    assert pending_items(tmp_path, [1, 2], 2) == [(1, 0), (1, 1), (2, 1)]


def test_choose_clips_samples_every_part_of_the_library():
    ids = list(range(1, 1001))
    assert choose_clips(ids) == ids and choose_clips(ids, limit=5) == [1, 2, 3, 4, 5]
    small, large = choose_clips(ids, sample=50, seed=1), choose_clips(ids, sample=200, seed=1)
    assert len(set(small)) == 50 and small == sorted(small) and set(small) <= set(large)  # grows, keeps the first
    assert max(small) > 500, "a sample is drawn from the whole library, not its first clips"
    assert choose_clips(ids, sample=50, seed=2) != small and choose_clips(ids, sample=5000) == ids
    with pytest.raises(ValueError, match="not both"):
        choose_clips(ids, limit=3, sample=3)
    with pytest.raises(ValueError, match="at least 1"):
        choose_clips(ids, sample=0)


@pytest.mark.slow
def test_dataset_renders_real_frames_and_resumes(library, tmp_path):
    settings = RenderSettings(size=64, frames=4, fps=4.0)
    out = tmp_path / "ds"
    first = build_dataset(library, out, settings=settings, scheduler="inline", batch_clips=3)
    assert first["rendered"] == 3 and first["clips"] == 3 and first["licenses"] == {"CC BY-NC 4.0": 3}
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [m["key"] for m in manifest] == sorted(m["key"] for m in manifest)
    for entry in manifest:
        with av.open(str(out / entry["video"])) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(frames) == 4 and frames[0].shape == (64, 64, 3)
        assert np.std(frames[0].reshape(-1, 3), axis=0).max() > 5, "the mannequin is visible, not a flat background"
        assert (out / entry["text"]).read_text().strip().splitlines() == entry["captions"]
        with np.load(out / entry["motion"]) as motion:
            assert motion["positions"].shape[0] == 4
    splits = sum(len((out / "splits" / f"{s}.txt").read_text().split()) for s in ("train", "val", "test"))
    assert splits == 3
    # A killed run leaves clips without meta: only those are rendered again.
    victim = manifest[1]["key"]
    (out / "meta" / f"{victim}.json").unlink()
    (out / "videos" / f"{victim}.mp4").unlink()
    again = build_dataset(library, out, settings=settings, scheduler="inline", batch_clips=3)
    assert again["rendered"] == 1 and again["skipped"] == 2 and again["clips"] == 3
    assert (out / "videos" / f"{victim}.mp4").is_file()
    done = build_dataset(library, out, settings=settings, scheduler="inline")
    assert done["rendered"] == 0 and done["skipped"] == 3


def test_unknown_scheduler_and_missing_library(tmp_path):
    with pytest.raises(ValueError, match="scheduler"):
        build_dataset(str(tmp_path / "x.sqlite"), tmp_path / "ds", scheduler="slurm")
    with pytest.raises(FileNotFoundError):
        build_dataset(str(tmp_path / "missing.sqlite"), tmp_path / "ds", scheduler="inline")


def test_recall_at_counts_ranks_of_the_diagonal():
    from backend.render.evaluate import recall_at

    similarity = np.array([[0.9, 0.1, 0.2], [0.8, 0.5, 0.1], [0.3, 0.6, 0.2]])  # ranks 1, 2, 3
    result = recall_at(similarity, ks=(1, 2))
    assert result == {"R@1": pytest.approx(100 / 3, abs=0.01), "R@2": pytest.approx(200 / 3, abs=0.01), "MedR": 2.0}
    tied = recall_at(np.ones((4, 4)), ks=(1,))
    assert tied["R@1"] == 0.0 and tied["MedR"] == 4.0, "ties count against the match"
    with pytest.raises(ValueError, match="square"):
        recall_at(np.ones((2, 3)))


def test_camera_pitch_range_sets_the_elevation(walk):
    with pytest.raises(ValueError, match="camera pitch"):
        RenderSettings(camera_pitch_deg=(30.0, 10.0))
    with pytest.raises(ValueError, match="camera pitch"):
        RenderSettings(camera_pitch_deg=(0.0, float("nan")))
    settings = RenderSettings(frames=4, fps=4.0, camera_pitch_deg=(35.0, 45.0))
    for seed in range(6):
        plan = plan_clip(walk, settings, seed=seed, start_s=0.5)
        pelvis = plan["positions"][:, 0] @ BACKEND_TO_BLENDER.T
        camera = plan["camera"][0, :3, 3]
        looking = -plan["camera"][0, :3, 2]  # a Blender camera looks down its -Z
        down = np.degrees(np.arcsin(-looking[2] / np.linalg.norm(looking)))
        assert 35.0 - 1e-3 <= down <= 45.0 + 1e-3, (seed, down)
        assert camera[2] > pelvis[0, 2], "the camera is above the subject"
