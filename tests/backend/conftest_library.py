"""Fixtures for the motion-library tests (import them with ``from tests.backend.conftest_library import *``).

- ``postgres_server``: the project's throwaway PostgreSQL + pgvector cluster, started by ``scripts/postgres.sh``
  (installs PostgreSQL / builds pgvector when missing) and stopped at the end of the session if this session
  started it.
- ``library_url``: parametrised over ``sqlite`` (a fresh file) and ``postgresql`` (a fresh database on that
  cluster, dropped afterwards), so every library test runs on both stores.
- ``FeatureEmbedder``: a deterministic, model-free :class:`~backend.library.embedding.Embedder` test double. Text ->
  hashed bag of words; motion -> the bag of words of its stored caption plus skeleton-independent motion statistics
  (root speed and height profile, joint-speed distribution), so text and motion queries rank real clips without a
  trained network. The retrieval model itself is tested with ``models.retrieval`` encoders in
  test_library_search.py.
"""

from __future__ import annotations

import re
import subprocess
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
POSTGRES_SCRIPT = REPO / "scripts" / "postgres.sh"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """URL of the project's PostgreSQL cluster (database ``baton``)."""
    was_running = subprocess.run(["bash", str(POSTGRES_SCRIPT), "url"], capture_output=True, text=True).returncode == 0
    done = subprocess.run(["bash", str(POSTGRES_SCRIPT), "start"], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"scripts/postgres.sh start failed:\n{done.stderr}")
    yield done.stdout.strip().splitlines()[-1]
    if not was_running:
        subprocess.run(["bash", str(POSTGRES_SCRIPT), "stop"], capture_output=True, timeout=120)


def fresh_postgres_database(server_url: str) -> tuple[str, callable]:
    """Create an empty database on the cluster; returns ``(url, drop)``."""
    import psycopg

    name = "baton_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = server_url.rsplit("/", 1)[0] + "/" + name

    def drop() -> None:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    return url, drop


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def library_url(request, tmp_path: Path) -> str:
    """An empty library URL on each store."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'library.sqlite'}"
        return
    url, drop = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    yield url
    drop()


@pytest.fixture(scope="session")
def small_bvh_tree(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of symlinks: 24 Bandai dataset-1 clips (with their JSON and cfg labels) + the 3 CMU 131 clips."""
    root = tmp_path_factory.mktemp("small_bvh")
    bandai = shared_data / "bandai_namco_motion_dataset1"
    (root / "bandai1" / "data").mkdir(parents=True)
    (root / "bandai1" / "cfg").symlink_to(bandai / "cfg")
    (root / "bandai1" / "LICENSE").symlink_to(bandai / "LICENSE")
    picks = sorted(bandai.glob("data/dataset-1_bye_*.bvh"))[:10] + sorted(bandai.glob("data/dataset-1_walk_*.bvh"))[:10]
    picks += sorted(bandai.glob("data/dataset-1_bow_*.bvh"))[:4]
    for bvh in picks:
        for file in (bvh, bvh.with_suffix(".json")):
            if file.exists():
                (root / "bandai1" / "data" / file.name).symlink_to(file)
    (root / "cmu").mkdir()
    for bvh in sorted((shared_data / "cmu_mocap_subject131_bvh").glob("*.bvh")):
        (root / "cmu" / bvh.name).symlink_to(bvh)
    return root


def _bag_of_words(text: str, dim: int) -> np.ndarray:
    vector = np.zeros(dim, np.float32)
    for word in re.findall(r"[a-z]+", text.lower()):
        if word not in {"a", "the", "person", "in", "way", "their", "is", "and", "with"}:
            vector[zlib.crc32(word.encode()) % dim] += 1.0
    return vector


def _motion_statistics(motion, dim: int) -> np.ndarray:
    positions = motion.positions.astype(np.float64)
    times = np.linspace(0.0, motion.duration_s, 12, endpoint=False)
    frame = np.minimum((times * motion.fps).astype(int), motion.num_frames - 1)
    root = positions[:, 0]
    speed = np.r_[0.0, np.linalg.norm(np.diff(root[:, [0, 2]], axis=0), axis=1) * motion.fps]
    joint_speed = np.linalg.norm(np.diff(positions, axis=0), axis=2).mean(1) * motion.fps if len(root) > 1 else [0.0]
    features = np.concatenate([
        speed[frame], root[frame, 1] - root[:, 1].mean(), np.percentile(joint_speed, [10, 50, 90]),
        [motion.duration_s / 10.0],
    ])  # fmt: skip
    out = np.zeros(dim, np.float32)
    out[: len(features)] = features
    return out


class FeatureEmbedder:
    """Deterministic test :class:`Embedder` (module docstring). ``dim = 96``: 64 word buckets + 32 motion features."""

    model_key = "test-features@1"
    dim = 96

    def embed_text(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            out[i, :64] = _bag_of_words(text, 64)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def embed_motion(self, motions: list) -> np.ndarray:
        out = np.zeros((len(motions), self.dim), np.float32)
        for i, motion in enumerate(motions):
            captions = motion.metadata.get("captions") or []
            words = _bag_of_words(captions[0], 64) if captions else np.zeros(64, np.float32)
            stats = _motion_statistics(motion, 32)
            words = words / max(np.linalg.norm(words), 1e-12)
            out[i] = np.concatenate([words, 0.3 * stats / max(np.linalg.norm(stats), 1e-12)])
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@pytest.fixture(scope="session")
def feature_embedder() -> FeatureEmbedder:
    return FeatureEmbedder()


__all__ = ["FeatureEmbedder", "feature_embedder", "fresh_postgres_database", "library_url", "postgres_server",
           "small_bvh_tree"]  # fmt: skip
