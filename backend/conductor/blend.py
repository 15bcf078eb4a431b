"""Write retargeted motions into a ``.blend`` by running :mod:`backend.conductor.blend_script` under bpy.

Torch never loads inside Blender, and bpy (numpy < 2) lives in its own environment (``.venv-blender``), so the
backend writes a job file (``.npz``: rig dicts, rotations, root translations as arrays + JSON) and runs the
script in a subprocess with that environment's Python. The script uses the add-on's rig builder and bulk F-curve
writer (``blender_addon/rigs.py``, ``blender_addon/apply.py``), so the result is what the add-on would produce.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from backend.errors import BatonError
from models.progress import Progress

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("blend_script.py")


def blender_python() -> Path:
    """The Python with ``bpy``: ``$BATON_BLENDER_PYTHON`` or ``<repo>/.venv-blender/bin/python``.

    Raises:
        BatonError: when it does not exist (the message says how to create it).
    """
    configured = os.environ.get("BATON_BLENDER_PYTHON")
    path = Path(configured) if configured else REPO / ".venv-blender" / "bin" / "python"
    if not path.exists():
        raise BatonError(f".blend output needs the Blender environment (bpy) at {path}; run scripts/setup.sh "
                         "or set BATON_BLENDER_PYTHON")  # fmt: skip
    return path


def write_blend(output: str | os.PathLike, motions: dict, *, audio: str | os.PathLike | None, frames: int,
                fps: float = 30.0, timeout_s: float = 900.0, progress: Progress | None = None) -> Path:
    """Write ``motions`` ({armature name: retargeted Motion with rotations}) into ``output`` (.blend) atomically.

    The scene runs at ``fps`` from frame 1 to ``frames``; ``audio`` (if given) is packed into the file as a sound
    strip starting at frame 1. Each armature gets one Action keyed on every frame.

    Raises:
        ValueError: a motion without rotations; BatonError: no Blender environment or the script failed (its
            stderr tail is in the message; nothing is left at ``output``).
    """
    output = Path(output).resolve()
    meta = {"output": str(output), "fps": float(fps), "frames": int(frames),
            "audio": str(Path(audio).resolve()) if audio else None, "rigs": []}  # fmt: skip
    arrays: dict[str, np.ndarray] = {}
    for index, (name, motion) in enumerate(motions.items()):
        if motion.rotations is None:
            raise ValueError(f"motion for {name!r} has no rotations; retarget it before writing a .blend")
        from models.motion.retarget_rig import TargetRig

        rig = TargetRig.from_skeleton(motion.skeleton).to_dict()
        rig["name"] = name
        meta["rigs"].append({"name": name, "rig": rig, "offset_x": 0.8 * (index - (len(motions) - 1) / 2)})
        arrays[f"rotations_{index}"] = motion.rotations.astype(np.float32)
        root = motion.root_translation
        arrays[f"root_{index}"] = (root if root is not None else np.zeros((motion.num_frames, 3))).astype(np.float32)
    output.parent.mkdir(parents=True, exist_ok=True)
    python = blender_python()
    if progress:
        progress.update(0.0, "writing .blend (Blender)")
    with tempfile.TemporaryDirectory(prefix="baton-blend-") as tmp:
        job = Path(tmp) / "job.npz"
        np.savez(job, meta=np.str_(json.dumps(meta)), **arrays)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run([str(python), str(SCRIPT), str(job)], env=env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)  # fmt: skip
    if done.returncode != 0 or not output.is_file():
        tail = (done.stderr or done.stdout or "").strip()[-1500:]
        raise BatonError(f"writing {output} with Blender failed (exit {done.returncode}): {tail}")
    if progress:
        progress.update(1.0, "wrote .blend")
    return output
