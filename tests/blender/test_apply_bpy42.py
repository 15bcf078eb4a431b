"""The apply-layer tests again on Blender 4.2 LTS (legacy ``action.fcurves`` API), in its own environment.

``bpy`` 4.2 and 5.0 cannot share an environment. Point ``BATON_BPY42_PYTHON`` at a Python with ``bpy==4.2.*``
(default ``.venv-blender42/bin/python``; create it with ``python3.11 -m venv .venv-blender42 &&
.venv-blender42/bin/pip install bpy==4.2.23 pytest``); without one this test is skipped and says so.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.blender
REPO = Path(__file__).resolve().parents[2]


def test_apply_layer_on_bpy_4_2():
    python = Path(os.environ.get("BATON_BPY42_PYTHON", REPO / ".venv-blender42" / "bin" / "python"))
    if not python.exists():
        pytest.skip(f"no bpy 4.2 LTS environment at {python} (see this module's docstring)")
    version = subprocess.run([str(python), "-c", "import bpy; print(bpy.app.version_string)"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert version.startswith("4.2"), version
    tests = str(REPO / "tests" / "blender" / "test_apply.py")
    proc = subprocess.run(
        [str(python), "-m", "pytest", "-q", tests, "-p", "no:cacheprovider"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "failed" not in proc.stdout and "1 skipped" in proc.stdout  # the layered-action test is Blender 5 only
