"""Drive the installed Baton add-on inside the ``bpy`` module: Generate from Text onto a new rig, panels recorded.

Run with the Blender environment's Python against a running backend that serves the text-to-motion model::

    PYTHONPATH=$PWD .venv-blender/bin/python scripts/addon_text_session_blender.py --zip dist/baton-0.1.0.zip \\
        --url http://127.0.0.1:8765 --token TOKEN --snapshot states.json [--prompt TEXT] [--variations 3]

It installs the zip (``scripts/addon_session_blender.install``), sets the Generate-from-Text panel, invokes
``baton.generate_text`` and drives the add-on's timer (the ``bpy`` module has no event loop) until the variations
land. ``--snapshot`` writes the Backend, Generate from Text and Result panels mid-job and after
(``scripts/panel_snapshot.py``) for ``scripts/render_panel_png.py``. Prints one JSON object on stdout: the job's
message and phase timings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import bpy  # noqa: F401, I001 - bpy first: it puts addon_utils on sys.path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import addon_session_blender as session  # noqa: E402
import panel_snapshot  # noqa: E402

PANELS = ("Backend", "Generate from Text", "Result")


def _record() -> dict:
    record = panel_snapshot.record_all()
    return {"panels": [panel for panel in record["panels"] if panel["text"] in PANELS]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--prompt", default="a tired person waves with the left hand")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--variations", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--target", default="SMPL24", choices=("SMPL24", "KIT21", "COCO13"))
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--snapshot", help="write the panel record (mid-job and finished) to this JSON file")
    args = parser.parse_args(argv)

    addon = session.install(os.path.abspath(args.zip), tempfile.mkdtemp(prefix="baton-text-ext-"))
    prefs = bpy.context.preferences.addons[session.ADDON_MODULE].preferences
    prefs.backend_url, prefs.token = args.url, args.token
    settings = bpy.context.scene.baton
    settings.text_prompt, settings.text_seconds = args.prompt, args.seconds
    settings.text_samples, settings.text_seed, settings.target = args.variations, args.seed, args.target
    addon.server.check()  # the Backend panel's status, as an animator who opened it would see
    while addon.jobs.runner().busy():
        addon.jobs.poll()
        time.sleep(0.02)
    if bpy.ops.baton.generate_text() != {"FINISHED"}:
        print(json.dumps({"error": settings.last_message}))
        return 1
    job = addon.jobs.runner().latest("generate_text")
    deadline = time.monotonic() + args.timeout
    snapshots = []
    while job.active:
        addon.jobs.poll()  # what Blender's timer does every 0.1 s
        if args.snapshot and not snapshots and 0.2 < job.fraction < 0.8 and job.state == "running":
            snapshots.append(_record())
        if time.monotonic() > deadline:
            job.cancel()
            raise TimeoutError(f"generate from text still running after {args.timeout} s")
        time.sleep(0.005)
    if job.state != "done":
        print(json.dumps({"error": job.message, "state": job.state}))
        return 1
    if args.snapshot:
        snapshots.append(_record())
        with open(args.snapshot, "w", encoding="utf-8") as handle:
            json.dump({"blender": bpy.app.version_string, "states": snapshots}, handle, indent=1)
    print(json.dumps({"message": job.message, **{key: float(value) for key, value in sorted(job.timings.items())}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
