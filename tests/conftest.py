"""Fixtures shared by every test tier: the shared data folder and unpacked archives."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (read-only; never copied into the repository)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"../shared/data not found at {SHARED_DATA}; clone Baton beside the shared folder")
    return SHARED_DATA


@pytest.fixture(scope="session")
def bandai_dataset2_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bandai Namco dataset-2 unpacked once per session into a temporary folder (the archive stays in shared/)."""
    archive = shared_data / "bandai_namco_motion_dataset2" / "bandai_namco_motion_dataset2.tar.xz"
    target = tmp_path_factory.mktemp("bandai2")
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.fixture(scope="session")
def diffusion_onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``XDG_CACHE_HOME`` folder holding the ONNX export of the shipped diffusion weights where
    ``runtime="onnx"`` looks for it (``models.export.conductor_onnx.default_export_dir``); exported once per session
    (about a minute), shared by the models and backend tiers and handed to servers through ``XDG_CACHE_HOME``."""
    import os

    from models.export.conductor_onnx import default_export_dir, ensure_exported

    cache = tmp_path_factory.mktemp("xdg-cache")
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    try:
        ensure_exported(None, default_export_dir(None))
    finally:
        if previous is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = previous
    return cache
