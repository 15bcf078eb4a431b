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


def test_atomic_write_is_all_or_nothing(tmp_path, umask_022):
    from models.atomic import atomic_write

    target = tmp_path / "clip.txt"
    target.write_text("saved before")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(target) as tmp:
            with open(tmp, "w") as handle:
                handle.write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "saved before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.txt"]  # no temporary file left behind
    with atomic_write(target) as tmp:
        with open(tmp, "w") as handle:
            handle.write("new")
    assert target.read_text() == "new" and _mode(target) == 0o644
    with atomic_write(tmp_path / "secret") as tmp:
        pass
    with atomic_write(tmp_path / "secret", private=True) as tmp:
        assert _mode(tmp) == 0o600
    assert _mode(tmp_path / "secret") == 0o600
