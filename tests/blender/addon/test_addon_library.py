"""Library search and Apply / Preview through a real backend whose library holds the CMU subject-131 clips."""

from __future__ import annotations

import subprocess

import bpy
import numpy as np
import pytest
from conftest import ADDON_MODULE, REPO, backend_env, free_port, start_backend, stop

VIDEOS = "intel_sample_videos/asl_gestures"  # real footage; the backend may read this folder (--root)


def _baton(home, *args: str) -> None:
    done = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-m", "backend.cli", *args],
                          env={**backend_env(home), "XDG_CACHE_HOME": str(home / "cache")}, capture_output=True,
                          text=True, timeout=900, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def library_backend(tmp_path_factory, shared_data):
    """A backend serving a fresh SQLite library with the three CMU 131 clips (permissive license) and a tiny
    retrieval model trained on them (20 steps, 1 layer: it exercises search, it is not meant to rank well)."""
    home = tmp_path_factory.mktemp("library-backend")
    url = f"sqlite:///{home / 'library.sqlite'}"
    _baton(home, "library", "import", str(shared_data / "cmu_mocap_subject131_bvh"), "--db", url, "--json")
    model = home / "retrieval-model"
    _baton(home, "train", "retrieval", "-o", str(model), "--sources", "cmu131", "--steps", "20", "--layers", "1",
           "--d-model", "32", "--threads", "1", "--no-eval", "--json")  # fmt: skip
    port = free_port()
    process = start_backend(home, port, "--library", url, "--root", str(shared_data / VIDEOS),
                            env={"BATON_RETRIEVAL_MODEL": str(model)})  # fmt: skip
    yield process.url, process.token
    stop(process)


@pytest.fixture
def library_prefs(addon, library_backend):
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.backend_url, prefs.token = library_backend
    yield prefs
    prefs.property_unset("backend_url")
    prefs.property_unset("token")


def _hit(settings, clip_id: str, name: str) -> None:
    item = settings.search_results.add()
    item.clip_id, item.name = clip_id, name
    settings.search_index = len(settings.search_results) - 1


def _moving(obj, bone: str, frames) -> float:
    scene = bpy.context.scene
    heads = []
    for frame in frames:
        scene.frame_set(frame)
        heads.append(np.array(obj.matrix_world @ obj.pose.bones[bone].head))
    heads = np.array(heads)
    return float(np.linalg.norm(heads - heads.mean(0), axis=1).max())


def test_apply_a_library_clip_onto_a_new_rig(addon, clean_scene, library_prefs, wait_jobs):
    settings = clean_scene.baton
    settings.target = "KIT21"
    _hit(settings, "1", "131_01")
    assert bpy.ops.baton.apply_hit(preview=False) == {"FINISHED"}
    wait_jobs(120)
    job = addon.jobs.runner().latest("apply_hit")
    assert job.state == "done", job.message
    rig = bpy.context.view_layer.objects.active
    assert rig.name.startswith("KIT21") and rig.animation_data.action is not None
    start, end = rig.animation_data.action.frame_range
    assert start == 1 and end > 100  # 131_01 lasts 8.3 s
    assert settings.pending_action is None, "Apply accepts at once"
    assert _moving(rig, "LF", range(1, int(end), 10)) > 0.1, "the walk moves the feet"


def test_preview_keeps_the_scene_fps_then_reject(addon, clean_scene, library_prefs, wait_jobs):
    settings = clean_scene.baton
    settings.target, settings.set_scene_range = "SMPL24", False
    _hit(settings, "1", "131_01")
    assert bpy.ops.baton.apply_hit(preview=True) == {"FINISHED"}
    wait_jobs(120)
    assert addon.jobs.runner().latest("apply_hit").state == "done"
    assert settings.pending_action is not None
    # 249 frames at 30 fps keep their 8.3 s on the scene's own 24 fps: keys end at 1 + 248 * 24 / 30.
    assert clean_scene.render.fps == 24 and (clean_scene.frame_start, clean_scene.frame_end) == (1, 250)
    assert settings.pending_action.frame_range[1] == pytest.approx(1 + 248 * 24 / 30, abs=0.01)
    rig = settings.pending_object
    assert bpy.ops.baton.result(action="REJECT") == {"FINISHED"}
    assert rig.animation_data.action is None and len(bpy.data.actions) == 0


def test_unknown_clip_reports_the_backend_error(addon, clean_scene, library_prefs, wait_jobs):
    settings = clean_scene.baton
    settings.target = "SMPL24"
    _hit(settings, "999999", "ghost")
    bpy.ops.baton.apply_hit(preview=False)
    wait_jobs(60)
    job = addon.jobs.runner().latest("apply_hit")
    assert job.state == "failed" and "could not finish retargeting" in job.message
    assert settings.last_message_is_error


def _search(addon, settings, wait_jobs):
    assert bpy.ops.baton.search() == {"FINISHED"}
    wait_jobs(300)
    job = addon.jobs.runner().latest("search")
    assert job.state == "done", job.message
    return job


def test_text_search_then_apply_the_best_hit_then_search_by_its_action(addon, clean_scene, library_prefs, wait_jobs):
    settings = clean_scene.baton
    settings.search_query, settings.search_k = "a person walks", 3
    _search(addon, settings, wait_jobs)
    hits = list(settings.search_results)
    assert 1 <= len(hits) <= 3 and hits[0].clip_id and hits[0].license
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].duration_s > 1.0 and hits[0].skeleton

    settings.target, settings.search_index = "SMPL24", 0
    assert bpy.ops.baton.apply_hit(preview=False) == {"FINISHED"}
    wait_jobs(120)
    assert addon.jobs.runner().latest("apply_hit").state == "done"
    rig = bpy.context.view_layer.objects.active
    assert rig.animation_data.action is not None

    settings.search_mode = "ACTION"  # search with the evaluated joints of the rig that now carries the clip
    _search(addon, settings, wait_jobs)
    assert len(settings.search_results) >= 1


def test_search_results_get_rendered_thumbnails(addon, clean_scene, library_prefs, wait_jobs):
    """After a search the thumbnails job fetches each hit's mannequin contact sheet (rendered by the backend's
    Blender on first request) and loads it as a preview; the panel shows the selected hit's one. Unregistering
    frees them."""
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    from panel_snapshot import record_panel

    settings = clean_scene.baton
    settings.search_query, settings.search_k = "a person walks", 3
    _search(addon, settings, wait_jobs)  # waits for the thumbnails job too
    job = addon.jobs.runner().latest("thumbnails")
    assert job is not None and job.state == "done", job and job.message
    assert job.message == "3 thumbnails"
    for hit in settings.search_results:
        preview = addon.thumbnails.preview(hit.clip_id)
        assert preview is not None and tuple(preview.image_size) == (256, 256)
        pixels = np.array(preview.image_pixels_float[:]).reshape(256, 256, 4)[..., :3]
        assert pixels.std(axis=(0, 1)).max() > 0.05, "a picture, not a flat colour"
    drawn = record_panel(bpy.types.BATON_PT_search)
    icons = [node for node in drawn.walk() if node.kind == "icon"]
    assert len(icons) == (1 if addon.thumbnails.icon_id(settings.search_results[0].clip_id) else 0)
    settings.search_thumbnails = False  # off: the next search fetches none
    before = job
    _search(addon, settings, wait_jobs)
    assert addon.jobs.runner().latest("thumbnails") is before


@pytest.mark.slow
def test_search_by_video_file_and_movie_strip(addon, clean_scene, library_prefs, wait_jobs, shared_data):
    settings = clean_scene.baton
    walk = shared_data / VIDEOS / "walk.mkv"
    settings.search_mode, settings.video_path, settings.search_k = "VIDEO", str(walk), 2
    _search(addon, settings, wait_jobs)
    by_file = [(hit.clip_id, round(hit.score, 4)) for hit in settings.search_results]
    assert len(by_file) == 2 and all(hit.skeleton == "cmu31" for hit in settings.search_results)

    settings.search_results.clear()
    strips = clean_scene.sequence_editor_create().strips
    movie = strips.new_movie("walk", str(walk), 1, 1)
    settings.video_source = "STRIP"
    try:
        _search(addon, settings, wait_jobs)
    finally:
        strips.remove(movie)
    assert [(hit.clip_id, round(hit.score, 4)) for hit in settings.search_results] == by_file, "same video, same hits"


def test_video_outside_the_backends_roots_is_refused_with_what_to_do(addon, clean_scene, library_prefs, wait_jobs,
                                                                    shared_data):  # fmt: skip
    settings = clean_scene.baton
    outside = next((shared_data / "intel_sample_videos").glob("*.mp4"))  # not under the backend's --root
    settings.search_mode, settings.video_path = "VIDEO", str(outside)
    assert bpy.ops.baton.search() == {"FINISHED"}
    wait_jobs(60)
    job = addon.jobs.runner().latest("search")
    assert job.state == "failed" and "outside the server's allowed roots" in job.message, job.message
    assert "--root" in job.message and len(settings.search_results) == 0


def test_selected_action_is_sent_as_evaluated_joint_positions(addon, clean_scene, library_prefs, wait_jobs):
    import importlib

    settings = clean_scene.baton
    settings.target = "SMPL24"
    _hit(settings, "1", "131_01")
    bpy.ops.baton.apply_hit(preview=False)
    wait_jobs(120)
    rig = bpy.context.view_layer.objects.active
    remote = importlib.import_module(ADDON_MODULE + ".remote")
    wire = importlib.import_module(ADDON_MODULE + ".wire")
    clean_scene.frame_set(7)
    motion = wire.decode_motion(remote.evaluated_motion(bpy.context, rig, max_frames=100))
    assert clean_scene.frame_current == 7, "the current frame is restored"
    start, end = (int(v) for v in rig.animation_data.action.frame_range)
    step = int(np.ceil((end - start + 1) / 100))
    assert motion.positions.shape == (len(range(start, end + 1, step)), 24, 3)
    assert motion.fps == pytest.approx(30.0 / step)
    assert motion.joint_names[0] == "pelvis" and motion.parents[0] == -1
    # Backend space is +Y up: the head is above the pelvis, and the walk travels.
    head = motion.joint_names.index("head")
    assert (motion.positions[:, head, 1] > motion.positions[:, 0, 1] + 0.2).all()
    assert np.linalg.norm(motion.positions[-1, 0] - motion.positions[0, 0]) > 0.5


def test_target_deleted_while_the_job_runs(addon, clean_scene, library_prefs, wait_jobs):
    settings = clean_scene.baton
    settings.target = "SMPL24"
    _hit(settings, "1", "131_01")
    assert bpy.ops.baton.apply_hit(preview=False) == {"FINISHED"}
    rig = bpy.context.view_layer.objects.active
    bpy.data.objects.remove(rig)  # before the result lands
    bpy.ops.object.armature_add()
    bpy.context.active_object.name = "SMPL24"  # a different object with the same name must not receive it
    wait_jobs(120)
    job = addon.jobs.runner().latest("apply_hit")
    assert job.state == "failed" and "is gone" in job.message, job.message
    assert len(bpy.data.actions) == 0 and bpy.data.objects["SMPL24"].animation_data is None
