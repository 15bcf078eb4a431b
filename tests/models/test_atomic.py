"""Files Baton writes for the user get ordinary permissions (umask applied), not mkstemp's owner-only 0600."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from backend.conductor.synth import write_demo_piece
from models.atomic import current_umask, temp_beside
from models.motion import Motion, get_skeleton
from models.motion.io import save_npz


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_follow_the_umask(tmp_path, umask_022):
    assert current_umask() == 0o022
    tmp = temp_beside(tmp_path / "sub" / "x.bin")
    assert _mode(tmp) == 0o644 and os.path.dirname(tmp) == str(tmp_path / "sub")
    motion = Motion(get_skeleton("coco13"), 30, np.full((4, 13, 2), 0.5, np.float32))
    assert _mode(save_npz(motion, tmp_path / "m.npz")) == 0o644
    assert _mode(write_demo_piece(tmp_path / "piece.wav", seconds=6.0)) == 0o644
    os.umask(0o077)
    assert _mode(save_npz(motion, tmp_path / "private.npz")) == 0o600
