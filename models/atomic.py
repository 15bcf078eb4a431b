"""Atomic file writes: a temporary file beside the target, renamed into place with ``os.replace``.

``tempfile.mkstemp`` creates files readable by their owner only (0600); a file a user asked for (a motion, a BVH,
a preview) should get the permissions a plain ``open`` would give, so :func:`temp_beside` applies the umask.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``), else by the
    set-and-restore idiom."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_beside(path: str | os.PathLike, suffix: str = ".tmp") -> str:
    """Create (closed, empty) a temporary file in ``path``'s folder with ``0666 & ~umask`` permissions.

    The caller writes it and ``os.replace``-s it onto ``path`` (and unlinks it on failure). Creates the folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())
    return tmp
