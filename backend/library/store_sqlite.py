"""The embedded default store: one SQLite file per library (WAL journal, one transaction per imported batch).

Search keeps an in-memory copy of one model's embeddings (refreshed when the store's generation changes): exact
search is a matrix-vector product over the clips passing the filters, approximate search an HNSW index (hnswlib,
:mod:`backend.library.ann`) saved beside the SQLite file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.library.ann import HnswIndex, index_path
from backend.library.store import CLIP_COLUMNS, FilterColumns, SQLStore, record_from_row
from backend.library.types import ClipRecord, NewClip, SearchFilters

#: Below this fraction of clips passing the filters, ANN queries switch to exact search over the survivors.
EXACT_BELOW_FRACTION = 0.05

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clips (
    id INTEGER PRIMARY KEY,
    content_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    source_path TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    skeleton TEXT NOT NULL,
    fps REAL NOT NULL,
    frames INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    license TEXT NOT NULL,
    captions TEXT NOT NULL,
    tags TEXT NOT NULL,
    motion BLOB NOT NULL,
    created_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);
CREATE INDEX IF NOT EXISTS clips_skeleton ON clips (skeleton);
CREATE TABLE IF NOT EXISTS thumbnails (clip_id INTEGER PRIMARY KEY REFERENCES clips (id) ON DELETE CASCADE,
                                       png BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS rendered_thumbnails (clip_id INTEGER PRIMARY KEY REFERENCES clips (id) ON DELETE CASCADE,
                                                png BLOB NOT NULL, renderer TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (key TEXT PRIMARY KEY, dim INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL REFERENCES models (key),
    clip_id INTEGER NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, clip_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1'), ('generation', '0');
"""


@dataclass
class _Vectors:
    """In-memory copy of one model's embeddings, valid for one store generation."""

    generation: int
    ids: np.ndarray  # (N,) int64, ascending
    matrix: np.ndarray  # (N, D) float32 unit rows
    columns: FilterColumns  # aligned with ``ids``
    ann: HnswIndex | None = None


class SQLiteStore(SQLStore):
    """A library in one SQLite file.

    Args:
        path: the database file.
        create: create the file (and its parent folder) when missing; with ``False`` a missing file raises
            ``FileNotFoundError`` (searching a library that is not there must say so, not answer from an empty one).

    The connection is shared by threads behind a lock (the server runs search jobs off the event loop).
    """

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike, create: bool = True) -> None:
        self.path = Path(path).expanduser().resolve()
        self.url = f"sqlite:///{self.path}"
        if not create and not self.path.is_file():
            raise FileNotFoundError(f"no motion library at {self.url}: the file does not exist (import clips into it "
                                    f"with `baton library import PATH --db {self.path}`)")  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._vectors: dict[str, _Vectors] = {}
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._db.executescript(SCHEMA)

    # --- helpers -------------------------------------------------------------------------------------------------
    def _transaction(self, bump: bool = True):
        store = self

        class _Tx:
            def __enter__(self):
                store._lock.acquire()
                store._db.execute("BEGIN IMMEDIATE")
                return store._db

            def __exit__(self, exc_type, exc, tb):
                try:
                    if exc_type is None:
                        if bump:
                            store._db.execute(
                                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'"
                            )
                        store._db.execute("COMMIT")
                    else:
                        store._db.execute("ROLLBACK")
                finally:
                    store._lock.release()

        return _Tx()

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # --- Store ---------------------------------------------------------------------------------------------------
    def existing_hashes(self, hashes: Sequence[str]) -> set[str]:
        found: set[str] = set()
        hashes = list(hashes)
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._query(f"SELECT content_hash FROM clips WHERE content_hash IN ({marks})", chunk)
            found |= {r[0] for r in rows}
        return found

    def add_clips(self, clips: Sequence[NewClip]) -> list[int]:
        ids: list[int] = []
        with self._transaction() as db:
            for clip in clips:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO clips (content_hash, name, source_path, source_kind, skeleton, fps, frames,"
                    " duration_s, license, captions, tags, motion) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (clip.content_hash, clip.name, clip.source_path, clip.source_kind, clip.skeleton, clip.fps,
                     clip.frames, clip.duration_s, clip.license, json.dumps(clip.captions), json.dumps(clip.tags),
                     clip.motion_blob),
                )  # fmt: skip
                if cursor.rowcount == 0:
                    continue
                clip_id = int(cursor.lastrowid)
                ids.append(clip_id)
                if clip.thumbnail_png is not None:
                    db.execute("INSERT INTO thumbnails (clip_id, png) VALUES (?, ?)", (clip_id, clip.thumbnail_png))
                for key, vector in clip.embeddings.items():
                    self._check_model(db, key, vector.shape[-1])
                    db.execute(
                        "INSERT OR REPLACE INTO embeddings (model, clip_id, vector) VALUES (?,?,?)",
                        (key, clip_id, np.asarray(vector, dtype="<f4").tobytes()),
                    )
        return ids

    def clips(self, ids: Sequence[int] | None = None) -> list[ClipRecord]:
        cols = ", ".join(CLIP_COLUMNS)
        if ids is None:
            return [record_from_row(r) for r in self._query(f"SELECT {cols} FROM clips ORDER BY id")]
        ids = [int(i) for i in ids]
        by_id: dict[int, ClipRecord] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._query(f"SELECT {cols} FROM clips WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            by_id.update({int(r[0]): record_from_row(r) for r in rows})
        return [by_id[i] for i in ids if i in by_id]

    def ids_missing_embedding(self, model_key: str) -> list[int]:
        rows = self._query(
            "SELECT id FROM clips WHERE id NOT IN (SELECT clip_id FROM embeddings WHERE model = ?) ORDER BY id",
            (model_key,),
        )
        return [int(r[0]) for r in rows]

    def put_embeddings(self, model_key: str, ids: Sequence[int], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype="<f4")
        if vectors.ndim != 2 or vectors.shape[0] != len(ids):
            raise ValueError(f"embeddings must be ({len(ids)}, D), got {vectors.shape}")
        with self._transaction() as db:
            self._check_model(db, model_key, vectors.shape[1])
            db.executemany(
                "INSERT OR REPLACE INTO embeddings (model, clip_id, vector) VALUES (?,?,?)",
                [(model_key, int(i), v.tobytes()) for i, v in zip(ids, vectors, strict=True)],
            )

    def embeddings(self, model_key: str, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        only = "" if ids is None else f" AND clip_id IN ({', '.join(str(int(i)) for i in ids) or 'NULL'})"
        rows = self._query(f"SELECT clip_id, vector FROM embeddings WHERE model = ?{only} ORDER BY clip_id",
                           (model_key,))  # fmt: skip
        dim_rows = self._query("SELECT dim FROM models WHERE key = ?", (model_key,))
        dim = int(dim_rows[0][0]) if dim_rows else 0
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
        return ids, vectors.astype(np.float32, copy=True)

    # --- search ----------------------------------------------------------------------------------------------------
    def _cached_vectors(self, model_key: str) -> _Vectors:
        generation = self.generation()
        cached = self._vectors.get(model_key)
        if cached is not None and cached.generation == generation:
            return cached
        ids, matrix = self.embeddings(model_key)
        columns = self.filter_columns()
        rows = np.searchsorted(columns.ids, ids)
        aligned = FilterColumns(ids=ids, skeleton=columns.skeleton[rows], duration_s=columns.duration_s[rows],
                                license=columns.license[rows])  # fmt: skip
        ann = cached.ann if cached is not None else None
        if ann is not None:
            ann.sync(ids, matrix)
        entry = _Vectors(generation, ids, matrix, aligned, ann)
        self._vectors[model_key] = entry
        return entry

    def _ann(self, model_key: str, entry: _Vectors) -> HnswIndex:
        if entry.ann is None:
            entry.ann = HnswIndex(index_path(self.path, model_key), entry.matrix.shape[1])
            entry.ann.sync(entry.ids, entry.matrix)
        return entry.ann

    def search(
        self, model_key: str, query: np.ndarray, k: int, filters: SearchFilters | None, exact: bool
    ) -> list[tuple[int, float]]:
        """:meth:`Store.search` over the in-memory embeddings: numpy for exact search (and for ANN queries whose
        filters leave fewer than :data:`EXACT_BELOW_FRACTION` of the clips), the hnswlib index otherwise."""
        query = np.asarray(query, np.float32)
        with self._lock:
            if self._check_query(model_key, query) is None:
                return []
            entry = self._cached_vectors(model_key)
            if len(entry.ids) == 0:
                return []
            mask = entry.columns.mask(filters)
            if not exact and (mask is None or mask.mean() >= EXACT_BELOW_FRACTION):
                allowed = None if mask is None else entry.ids[mask]
                ids, scores = self._ann(model_key, entry).query(query, k, allowed)
                return list(zip(ids.tolist(), scores.tolist(), strict=True))
        ids, matrix = (entry.ids, entry.matrix) if mask is None else (entry.ids[mask], entry.matrix[mask])
        if len(ids) == 0:
            return []
        scores = np.einsum("nd,d->n", matrix, query)  # SIMD, single-threaded: BLAS threads stall on busy CPUs
        k = min(k, len(ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return list(zip(ids[top].tolist(), scores[top].tolist(), strict=True))

    def stats(self) -> dict:
        total = self._query("SELECT COUNT(*), COALESCE(SUM(frames), 0), COALESCE(SUM(duration_s), 0) FROM clips")[0]
        captioned = self._query("SELECT COUNT(*) FROM clips WHERE captions != '[]'")[0][0]

        def grouped(column: str) -> dict[str, int]:
            return {k: int(v) for k, v in self._query(f"SELECT {column}, COUNT(*) FROM clips GROUP BY 1 ORDER BY 1")}

        models = self._query(
            "SELECT m.key, m.dim, COUNT(e.clip_id) FROM models m LEFT JOIN embeddings e ON e.model = m.key GROUP BY 1"
        )
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {
            "backend": self.kind,
            "url": self.url,
            "clips": int(total[0]),
            "frames": int(total[1]),
            "duration_s": round(float(total[2]), 3),
            "captioned_clips": int(captioned),
            "by_skeleton": grouped("skeleton"),
            "by_license": grouped("license"),
            "by_source_kind": grouped("source_kind"),
            "thumbnails": int(self._query("SELECT COUNT(*) FROM thumbnails")[0][0]),
            "rendered_thumbnails": int(self._query("SELECT COUNT(*) FROM rendered_thumbnails")[0][0]),
            "embeddings": {k: {"dim": int(d), "clips": int(n)} for k, d, n in models},
            "storage_bytes": int(size),
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()
