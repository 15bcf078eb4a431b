"""Atomic file writes: a temporary file beside the target, renamed into place with ``os.replace``.

``tempfile.mkstemp`` creates files readable by their owner only (0600); a file a user asked for (a motion, a BVH,
a preview) should get the permissions a plain ``open`` would give, so :func:`temp_beside` applies the umask.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


def temp_beside(path: str | os.PathLike, suffix: str = ".tmp", *, private: bool = False) -> str:
    """Create (closed, empty) a temporary file in ``path``'s folder with ``0666 & ~umask`` permissions (``0600``
    when ``private``, for secrets such as the server token).

    The caller writes it and ``os.replace``-s it onto ``path`` (and unlinks it on failure); :func:`atomic_write`
    does both. Creates the folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    os.chmod(tmp, 0o600 if private else 0o666 & ~current_umask())
    return tmp


@contextmanager
def atomic_write(path: str | os.PathLike, suffix: str = ".tmp", *, private: bool = False) -> Iterator[str]:
    """Write ``path`` all or nothing: yields a temporary file name beside it (see :func:`temp_beside`) for the
    caller to write; on a clean exit it is renamed onto ``path`` with ``os.replace``, on an exception it is deleted
    and ``path`` (if it existed) is left as it was.

    >>> with atomic_write("out.npz", ".tmp.npz") as tmp:   # doctest: +SKIP
    ...     np.savez(tmp, positions=positions)

    ``suffix`` matters to writers that pick a format from the name (``np.savez``, ffmpeg, ``torch.save`` does not).
    """
    tmp = temp_beside(path, suffix, private=private)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
