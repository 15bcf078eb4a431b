"""Baton's per-user folders, one rule for every part of the backend: config (the server token), data (the default
library, imported and trained weights) and cache (derived features, numba's compiled beat tracker, ONNX exports).

Each folder is Baton's own sub-folder ``baton`` of the platform's user folder of that kind:

==========  ==============================  ==================================  ===============================
kind        Linux and other Unix            macOS                               Windows
==========  ==============================  ==================================  ===============================
config      ``$XDG_CONFIG_HOME`` or         ``~/Library/Application Support``   ``%APPDATA%``
            ``~/.config``
data        ``$XDG_DATA_HOME`` or           ``~/Library/Application Support``   ``%LOCALAPPDATA%``
            ``~/.local/share``
cache       ``$XDG_CACHE_HOME`` or          ``~/Library/Caches``                ``%LOCALAPPDATA%\\cache``
            ``~/.cache``
==========  ==============================  ==================================  ===============================

An ``XDG_*`` variable that is set wins on every platform (tests and the server launcher rely on that to give a
process folders of its own), and ``BATON_DATA_DIR`` replaces the whole data folder. The add-on cannot import this
module (it runs inside Blender with the standard library only); ``blender_addon/client.py`` finds the token by the
same rule for config, and a test checks that the two agree.

Nothing here creates a folder: callers create what they write into.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The name of Baton's sub-folder in each per-user folder.
APP = "baton"


def _platform_base(kind: str) -> Path:
    home = Path.home()
    if sys.platform == "win32":
        roaming = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
        local = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return {"config": roaming, "data": local, "cache": local / "cache"}[kind]
    if sys.platform == "darwin":
        support = home / "Library" / "Application Support"
        return {"config": support, "data": support, "cache": home / "Library" / "Caches"}[kind]
    return {"config": home / ".config", "data": home / ".local" / "share", "cache": home / ".cache"}[kind]


def _user_dir(kind: str) -> Path:
    xdg = os.environ.get(f"XDG_{kind.upper()}_HOME")
    return (Path(xdg) if xdg else _platform_base(kind)) / APP


def user_config_dir() -> Path:
    """Baton's config folder (``~/.config/baton`` on Linux; see the module table). The server token lives here."""
    return _user_dir("config")


def user_data_dir() -> Path:
    """Baton's data folder: ``$BATON_DATA_DIR`` when set, else ``~/.local/share/baton`` on Linux (module table).

    The default motion library (``library.sqlite``), imported third-party weights (``models/``) and locally trained
    models (``models/retrieval/default``) live here, never in the repository.
    """
    value = os.environ.get("BATON_DATA_DIR")
    return Path(value) if value else _user_dir("data")


def user_cache_dir() -> Path:
    """Baton's cache folder (``~/.cache/baton`` on Linux; module table): anything here can be deleted and is rebuilt."""
    return _user_dir("cache")
