"""Drive the installed Baton add-on inside the ``bpy`` module: Generate from music onto a new rig, timed.

Run by ``baton bench addon`` (and usable by hand) with the Blender environment's Python::

    PYTHONPATH=$PWD .venv-blender/bin/python scripts/addon_session_blender.py --zip dist/baton-0.1.0.zip \
        --url http://127.0.0.1:8765 --token TOKEN --audio music.ogg [--target SMPL24] [--snapshot panels.json]

It installs the zip with ``bpy.ops.extensions.package_install_files`` into a temporary extension folder, points the
preferences at the backend, invokes ``baton.generate`` and drives the add-on's timer (the ``bpy`` module has no event
loop) until the action is keyed. Prints one JSON object on stdout: the operator's invoke time, the time from invoke
to keyed action, the job's phase timings (upload, backend compute, retarget solve, transfer, keyframe write) and
facts about the action. ``--snapshot`` also records the panels mid-job and after (``scripts/panel_snapshot.py``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time

import bpy  # noqa: I001 - bpy first: it puts addon_utils on sys.path

ADDON_MODULE = "bl_ext.user_default.baton"


def install(zip_path: str, folder: str):
    """Install and enable the extension zip into ``folder`` (the user_default repository); returns its module."""
    prefs = bpy.context.preferences
    prefs.use_preferences_save = False
    repo = next(r for r in prefs.extensions.repos if r.module == "user_default")
    repo.use_custom_directory, repo.custom_directory = True, folder
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    return importlib.import_module(ADDON_MODULE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--audio", required=True)
    parser.add_argument("--target", default="SMPL24", choices=("SMPL24", "KIT21", "COCO13"))
    parser.add_argument("--model", default="procedural")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--snapshot", help="write the panel record (mid-job and finished) to this JSON file")
    args = parser.parse_args(argv)

    addon = install(os.path.abspath(args.zip), tempfile.mkdtemp(prefix="baton-bench-ext-"))
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.backend_url, prefs.token = args.url, args.token
    settings = bpy.context.scene.baton
    settings.audio_path, settings.target, settings.model = os.path.abspath(args.audio), args.target, args.model

    snapshots = []
    if args.snapshot:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
        import panel_snapshot
    # Like an animator who opened the Backend panel: one status check (health + capabilities) before timing, so
    # the server's first-request warm-up is not counted as upload time.
    addon.server.check()
    while addon.jobs.runner().busy():
        addon.jobs.poll()
        time.sleep(0.02)
    if addon.server.status().state != "online":
        print(json.dumps({"error": addon.server.status().detail}))
        return 1

    started = time.perf_counter()
    outcome = bpy.ops.baton.generate("INVOKE_DEFAULT")
    invoke_s = time.perf_counter() - started
    if outcome != {"FINISHED"}:
        print(json.dumps({"error": settings.last_message}))
        return 1
    job = addon.jobs.runner().latest("generate")
    deadline = started + args.timeout
    while job.active:
        addon.jobs.poll()  # what Blender's timer does every 0.1 s
        if args.snapshot and not snapshots and 0.1 < job.fraction < 0.8 and job.state == "running":
            snapshots.append(panel_snapshot.record_all())
        if time.perf_counter() > deadline:
            job.cancel()
            raise TimeoutError(f"generate still running after {args.timeout} s")
        time.sleep(0.005)
    keyed_s = job.finished_at - started
    if job.state != "done":
        print(json.dumps({"error": job.message, "state": job.state}))
        return 1
    obj = settings.pending_object
    action = settings.pending_action
    if args.snapshot:
        snapshots.append(panel_snapshot.record_all())
        with open(args.snapshot, "w", encoding="utf-8") as handle:
            json.dump({"blender": bpy.app.version_string, "states": snapshots}, handle, indent=1)
    frame_range = [float(v) for v in action.frame_range]
    report = {
        "blender": bpy.app.version_string,
        "target": args.target,
        "model": args.model,
        "bones": len(obj.data.bones),
        "frames": int(round(frame_range[1] - frame_range[0])) + 1,
        "action_frame_range": frame_range,
        "scene_fps": bpy.context.scene.render.fps,
        "invoke_ms": invoke_s * 1000.0,
        "invoke_to_keyed_s": keyed_s,
        **{key: float(value) for key, value in sorted(job.timings.items())},
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
