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
