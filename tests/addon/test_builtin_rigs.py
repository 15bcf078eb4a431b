"""The rig dicts shipped in the add-on equal the skeleton registry (the add-on cannot import models/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.motion import get_skeleton

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["smpl24", "kit21", "coco13"])
def test_shipped_rig_equals_the_registry(name):
    shipped = json.loads((REPO / "blender_addon" / "builtin_rigs.json").read_text())
    assert shipped[name] == json.loads(json.dumps(get_skeleton(name).to_dict()))


def test_export_script_reproduces_the_file_exactly():
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    import export_builtin_rigs

    assert export_builtin_rigs.document() == (REPO / "blender_addon" / "builtin_rigs.json").read_text()
