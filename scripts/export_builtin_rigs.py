"""Write blender_addon/builtin_rigs.json: the registry skeletons the add-on's rig builders use (no models/ in Blender).

Usage (backend environment): ``PYTHONPATH=$PWD .venv/bin/python scripts/export_builtin_rigs.py``. A test checks the
file equals ``get_skeleton(name).to_dict()`` for every name, so it cannot drift from the registry.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from models.motion import get_skeleton

NAMES = ("smpl24", "kit21", "coco13")
TARGET = Path(__file__).resolve().parents[1] / "blender_addon" / "builtin_rigs.json"


def document() -> str:
    """The file's exact text (sorted keys, 2-space indent, trailing newline)."""
    return json.dumps({name: get_skeleton(name).to_dict() for name in NAMES}, indent=1, sort_keys=True) + "\n"


def main() -> int:
    fd, tmp = tempfile.mkstemp(dir=TARGET.parent, suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(document())
    os.replace(tmp, TARGET)
    print(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
