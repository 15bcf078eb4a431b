"""Import robustness: SIGKILL mid-import then re-run gives the counts of a clean import (both stores), the whole
shared BVH collection (~2,900 files) imports and re-imports idempotently, and the import command's JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backend.library import open_library
from backend.library.importer import import_paths
from tests.backend.conftest_library import *  # noqa: F401,F403

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bandai2_subset(bandai_dataset2_dir: Path, tmp_path_factory) -> Path:
    """240 Bandai Namco dataset-2 clips (symlinks, with their JSON labels and cfg/) from the unpacked archive."""
    root = tmp_path_factory.mktemp("bandai2_subset")
    (root / "data").mkdir()
    (root / "cfg").symlink_to(bandai_dataset2_dir / "cfg")
    for bvh in sorted((bandai_dataset2_dir / "data").glob("*.bvh"))[::11][:240]:
        for file in (bvh, bvh.with_suffix(".json")):
            (root / "data" / file.name).symlink_to(file)
    return root


def _count(url: str) -> int:
    with open_library(url) as library:
        return library.stats()["clips"]


def test_killed_import_resumes_to_clean_counts(library_url, bandai2_subset, tmp_path):
    with open_library(tmp_path / "clean.sqlite") as clean:
        clean_report = import_paths(clean, [bandai2_subset])
        clean_hashes = {c.content_hash for c in clean.clips()}
        clean_stats = clean.stats()
    assert clean_report.imported == 240 and clean_report.failed == []
    assert clean_stats["by_skeleton"] == {"bandai22": 240} and clean_stats["captioned_clips"] == 240

    open_library(library_url).close()  # create the schema before the importer and this test race for it
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "backend.cli", "library", "import", str(bandai2_subset), "--db", library_url,
               "--batch-size", "8"]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _count(library_url) < 40 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    at_kill = _count(library_url)
    assert 40 <= at_kill < 240, f"the import was not killed midway ({at_kill} clips stored)"

    with open_library(library_url) as library:
        stats = library.stats()
        assert stats["thumbnails"] == stats["clips"] == at_kill  # no clip without its thumbnail: whole batches only
        for record in library.clips():
            motion = library.get_motion(record.clip_id)  # every stored blob decodes to its recorded size
            assert motion.num_frames == record.frames and np.isfinite(motion.positions).all()
        resumed = import_paths(library, [bandai2_subset])
        assert resumed.imported == 240 - at_kill and resumed.skipped_existing == at_kill
        assert {c.content_hash for c in library.clips()} == clean_hashes
        final = library.stats()
    for key in ("clips", "frames", "duration_s", "captioned_clips", "by_skeleton", "by_license", "thumbnails"):
        assert final[key] == clean_stats[key], key


@pytest.mark.slow
def test_all_shared_bvh_import_and_reimport(shared_data, bandai_dataset2_dir, tmp_path):
    folders = [shared_data / "bandai_namco_motion_dataset1", bandai_dataset2_dir]
    folders.append(shared_data / "cmu_mocap_subject131_bvh")
    expected = sum(len(list(Path(f).rglob("*.bvh"))) for f in folders)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "backend.cli", "library", "import", *map(str, folders), "--db",
               str(tmp_path / "all.sqlite"), "--json"]  # fmt: skip
    first = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    print(f"imported {report['imported']} BVH files in {report['seconds']:.1f} s")
    assert expected > 2900 and report["files"] == expected
    assert report["imported"] == expected and report["failed"] == []
    again = json.loads(subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600).stdout)
    assert again["imported"] == 0 and again["skipped_existing"] == expected and again["total_clips"] == expected
    with open_library(tmp_path / "all.sqlite") as library:
        stats = library.stats()
    assert stats["by_skeleton"] == {"bandai22": expected - 3, "cmu31": 3}
    assert stats["by_license"]["CC BY-NC 4.0"] == expected - 3 and stats["captioned_clips"] == expected
