"""Per-user folders for Baton's conductor (caches, imported weights); never inside the repository."""

from __future__ import annotations

import os
from pathlib import Path


def _base(env: str, fallback: str) -> Path:
    value = os.environ.get(env)
    return Path(value) if value else Path.home() / fallback


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/baton`` (default ``~/.cache/baton``): numba's compiled beat tracker and other caches."""
    return _base("XDG_CACHE_HOME", ".cache") / "baton"


def user_data_dir() -> Path:
    """``$BATON_DATA_DIR`` if set, else ``$XDG_DATA_HOME/baton`` (default ``~/.local/share/baton``): converted
    third-party weights (``models/m2sgan.pt``, ``models/m2snet.pt``) live here, never in the repository."""
    value = os.environ.get("BATON_DATA_DIR")
    return Path(value) if value else _base("XDG_DATA_HOME", ".local/share") / "baton"
