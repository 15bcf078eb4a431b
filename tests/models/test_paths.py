"""One rule for Baton's per-user folders (models/paths.py), on every platform, and the add-on's client agrees."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from backend import auth
from backend.library import default_library_url
from blender_addon import client
from models import paths
from models.retrieval.datasets import default_cache_dir
from models.retrieval.model import default_model_dir

XDG = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "BATON_DATA_DIR", "BATON_LIBRARY", "APPDATA",
       "LOCALAPPDATA")


@pytest.fixture
def bare_env(monkeypatch, tmp_path):
    for name in XDG:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize(
    ("platform", "config", "data", "cache"),
    [
        ("linux", ".config/baton", ".local/share/baton", ".cache/baton"),
        ("darwin", "Library/Application Support/baton", "Library/Application Support/baton", "Library/Caches/baton"),
        ("win32", "AppData/Roaming/baton", "AppData/Local/baton", "AppData/Local/cache/baton"),
    ],
)
def test_platform_defaults(bare_env, monkeypatch, platform, config, data, cache):
    monkeypatch.setattr(sys, "platform", platform)
    assert paths.user_config_dir() == bare_env / config
    assert paths.user_data_dir() == bare_env / data
    assert paths.user_cache_dir() == bare_env / cache


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_xdg_and_baton_data_dir_win_everywhere(bare_env, monkeypatch, tmp_path, platform):
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert paths.user_config_dir() == tmp_path / "cfg" / "baton"
    assert paths.user_data_dir() == tmp_path / "data" / "baton"
    assert paths.user_cache_dir() == tmp_path / "cache" / "baton"
    monkeypatch.setenv("BATON_DATA_DIR", str(tmp_path / "mine"))
    assert paths.user_data_dir() == tmp_path / "mine"


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_every_part_uses_the_one_rule(bare_env, monkeypatch, platform):
    """The token (server and add-on client), the default library, retrieval model and feature cache all live in the
    folders models.paths names: a second, diverging rule anywhere would fail here."""
    monkeypatch.setattr(sys, "platform", platform)
    assert auth.token_path() == paths.user_config_dir() / "token"
    assert client.default_token_path() == auth.token_path()
    assert default_library_url() == f"sqlite:///{paths.user_data_dir() / 'library.sqlite'}"
    assert default_model_dir() == paths.user_data_dir() / "models" / "retrieval" / "default"
    assert default_cache_dir() == paths.user_cache_dir() / "retrieval"
