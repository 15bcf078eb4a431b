"""Approximate nearest-neighbour search for SQLite libraries: an hnswlib HNSW graph (Malkov & Yashunin, 2018)
persisted beside the database file as ``<library file>.<model slug>.hnsw`` and synchronised with the stored
embeddings (new clips are added incrementally; an index that disagrees with the database is rebuilt).

Query effort (``ef``, the HNSW candidate list) grows with the index: :func:`adaptive_ef`. Clip libraries are
clustered (takes, trims and variants of one motion lie close together) and text queries lie far from every clip, so
the search has to look at a good part of the best clusters, and clusters grow with the library. ``baton bench
search`` at 100,000 clips (M 32, ef_construction 200; docs/library.md): on its default library (variants of real
clips along the real clips' own neighbour differences) recall@10 against exact search is >= 0.999 from ef 200 with
a trained encoder and 0.90 / 0.98 / 0.99 at ef 200 / 600 / 1,000 with an untrained one (the benchmark's fallback,
whose clip embeddings are nearly parallel). On its isotropic-noise stress library it is 0.84 / 0.95 / 0.98 at ef
600 / 2,000 / 3,000 with the untrained encoder and stays at 0.92 up to ef 4,000 with a trained one (far-apart
clusters, queries far from all of them: the greedy descent ends in the wrong cluster, which a longer candidate list
does not fix). hnswlib scores candidates with the exact float32 cosine, so re-ranking its hits on the stored vectors
would change nothing.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import hnswlib
import numpy as np

from models.atomic import atomic_write

#: :func:`adaptive_ef`: the share of the index a query's candidate list covers, and its bounds.
EF_FRACTION, EF_MIN, EF_MAX = 0.01, 200, 4000


def adaptive_ef(k: int, size: int) -> int:
    """The HNSW query candidate-list size for ``k`` hits from an index of ``size`` items.

    ``clip(ceil(EF_FRACTION * size), EF_MIN, EF_MAX)``, never below ``k``: 200 up to 20,000 items, 1,000 at
    100,000, 4,000 from 400,000 (module docstring for the measurements behind it).
    """
    return max(int(k), min(EF_MAX, max(EF_MIN, math.ceil(EF_FRACTION * int(size)))))


def index_path(database: Path, model_key: str) -> Path:
    """Where the HNSW index of ``model_key`` for the library file ``database`` lives."""
    slug = "".join(c if c.isalnum() else "-" for c in model_key)[:40]
    digest = hashlib.sha1(model_key.encode()).hexdigest()[:8]
    return database.with_name(f"{database.name}.{slug}-{digest}.hnsw")


class HnswIndex:
    """A cosine HNSW index over clip embeddings labelled by clip id.

    Args:
        path: the persisted index file (loaded when present and valid).
        dim: embedding size ``D``.
        m / ef_construction: HNSW graph parameters.
        ef_search: a fixed query-time candidate list size (``max(ef_search, k)`` is used); ``None`` (default): grows
            with the index, :func:`adaptive_ef`.
    """

    def __init__(
        self, path: Path, dim: int, m: int = 32, ef_construction: int = 200, ef_search: int | None = None
    ) -> None:
        self.path, self.dim, self.m = path, int(dim), m
        self.ef_construction, self.ef_search = ef_construction, ef_search
        self._index: hnswlib.Index | None = None
        self._ids: set[int] = set()

    def _new(self, capacity: int) -> hnswlib.Index:
        index = hnswlib.Index(space="cosine", dim=self.dim)
        index.init_index(max_elements=max(capacity, 16), ef_construction=self.ef_construction, M=self.m,
                         random_seed=0, allow_replace_deleted=False)  # fmt: skip
        return index

    def _load(self) -> None:
        if self._index is not None or not self.path.is_file():
            return
        index = hnswlib.Index(space="cosine", dim=self.dim)
        try:
            index.load_index(str(self.path))
        except RuntimeError:
            return  # unreadable or another size: rebuilt by sync()
        self._index, self._ids = index, {int(i) for i in index.get_ids_list()}

    def sync(self, ids: np.ndarray, vectors: np.ndarray) -> int:
        """Make the index hold exactly ``ids`` -> ``vectors``; returns how many items were added. Saves when changed.

        An index holding ids that are no longer stored is rebuilt from scratch.
        """
        self._load()
        wanted = {int(i) for i in ids}
        if self._index is None or not self._ids <= wanted:
            self._index, self._ids = self._new(len(ids)), set()
        missing = np.array([i not in self._ids for i in ids.tolist()], dtype=bool)
        if not missing.any():
            return 0
        index = self._index
        needed = len(self._ids) + int(missing.sum())
        if needed > index.get_max_elements():
            index.resize_index(max(needed, int(index.get_max_elements() * 1.5)))
        index.add_items(vectors[missing], ids[missing], num_threads=-1)
        self._ids |= {int(i) for i in ids[missing]}
        self._save()
        return int(missing.sum())

    def _save(self) -> None:
        with atomic_write(self.path) as tmp:
            self._index.save_index(tmp)

    def __len__(self) -> int:
        return len(self._ids)

    def ef(self, k: int) -> int:
        """The candidate-list size a ``k``-nearest query uses now (``ef_search`` or :func:`adaptive_ef`)."""
        return max(int(k), self.ef_search) if self.ef_search is not None else adaptive_ef(k, len(self._ids))

    def query(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest ids and their cosine similarities, best first.

        Args:
            vector: ``(D,)`` float32 unit query.
            allowed: optional ``(M,)`` ids a hit must be among (hnswlib's filtered search).
        """
        if self._index is None or not self._ids:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        k = min(int(k), len(self._ids) if allowed is None else min(len(self._ids), len(allowed)))
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        self._index.set_ef(self.ef(k))
        if allowed is None:
            labels, distances = self._index.knn_query(vector[None], k=k, num_threads=1)
        else:
            allowed_set = {int(i) for i in allowed}
            labels, distances = self._index.knn_query(
                vector[None], k=k, num_threads=1, filter=lambda label: label in allowed_set
            )
        return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)
