"""The storage interface behind :class:`backend.library.Library`, shared by the SQLite and PostgreSQL stores.

A store keeps clips (metadata, captions, tags, license, the encoded positions blob), optional thumbnails and, per
retrieval model (``model key = "<name>@<version>"``), one unit-length float32 embedding per clip. Writes of a batch of
clips happen in one transaction: a batch is either fully stored or absent, so an import killed at any moment leaves a
consistent library that a re-run completes. Every write of clips or embeddings bumps a ``generation`` counter that
readers use to invalidate in-memory caches (rendered thumbnails, which nothing caches, do not).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backend.library.types import ClipRecord, NewClip, SearchFilters
from models.licenses import is_noncommercial

#: Columns of the ``clips`` table in the order :meth:`Store.clips` reads them.
CLIP_COLUMNS = (
    "id", "content_hash", "name", "source_path", "source_kind", "skeleton", "fps", "frames", "duration_s", "license",
    "captions", "tags",
)  # fmt: skip


def record_from_row(row: Sequence) -> ClipRecord:
    """A :class:`ClipRecord` from a row in :data:`CLIP_COLUMNS` order (captions/tags as JSON text)."""
    values = dict(zip(CLIP_COLUMNS, row, strict=True))
    return ClipRecord(
        clip_id=int(values["id"]),
        content_hash=values["content_hash"],
        name=values["name"],
        source_path=values["source_path"],
        source_kind=values["source_kind"],
        skeleton=values["skeleton"],
        fps=float(values["fps"]),
        frames=int(values["frames"]),
        duration_s=float(values["duration_s"]),
        license=values["license"],
        captions=tuple(json.loads(values["captions"])),
        tags=tuple(json.loads(values["tags"])),
    )


@dataclass(frozen=True)
class FilterColumns:
    """Per-clip columns used to apply :class:`SearchFilters` with numpy (aligned arrays of length ``N``)."""

    ids: np.ndarray  # (N,) int64
    skeleton: np.ndarray  # (N,) object (str)
    duration_s: np.ndarray  # (N,) float64
    license: np.ndarray  # (N,) object (str)

    def mask(self, filters: SearchFilters | None) -> np.ndarray | None:
        """``(N,) bool`` of clips passing ``filters``; ``None`` when nothing is filtered."""
        if filters is None or not filters.active:
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        if filters.skeleton is not None:
            keep &= self.skeleton == filters.skeleton
        if filters.min_duration_s is not None:
            keep &= self.duration_s >= filters.min_duration_s
        if filters.max_duration_s is not None:
            keep &= self.duration_s <= filters.max_duration_s
        if filters.license is not None:
            keep &= self.license == filters.license
        if filters.commercial_only:
            keep &= ~np.array([is_noncommercial(str(name)) for name in self.license], dtype=bool)
        return keep


class Store(ABC):
    """Abstract storage; see the module docstring for the guarantees every implementation keeps."""

    #: ``sqlite`` or ``postgresql``.
    kind: str
    #: The URL the store was opened with (no password).
    url: str

    @abstractmethod
    def generation(self) -> int:
        """A counter that changes whenever anything is written."""

    @abstractmethod
    def existing_hashes(self, hashes: Sequence[str]) -> set[str]:
        """The subset of ``hashes`` already stored."""

    @abstractmethod
    def add_clips(self, clips: Sequence[NewClip]) -> list[int]:
        """Store ``clips`` (and their thumbnails and embeddings) in ONE transaction; returns their new ids.

        A clip whose content hash is already stored is skipped (its id is not returned).
        """

    @abstractmethod
    def clips(self, ids: Sequence[int] | None = None) -> list[ClipRecord]:
        """Records of ``ids`` (in that order; unknown ids are left out) or of every clip by id."""

    @abstractmethod
    def motion_blob(self, clip_id: int) -> bytes:
        """The encoded positions of ``clip_id``. Raises ``KeyError`` for an unknown id."""

    @abstractmethod
    def thumbnail(self, clip_id: int) -> bytes | None:
        """The clip's PNG thumbnail, or ``None``."""

    @abstractmethod
    def rendered_thumbnails(self, ids: Sequence[int], renderer: str | None = None) -> dict[int, bytes]:
        """The renderer's PNG thumbnails (:mod:`backend.render.thumbnails`) of those of ``ids`` that have one (made
        with ``renderer``'s settings string when it is given)."""

    @abstractmethod
    def put_rendered_thumbnails(self, pngs: dict[int, bytes], renderer: str) -> None:
        """Store (or replace) rendered PNG thumbnails ``{clip id: png}`` made with ``renderer`` (a settings string)
        in one transaction. This write does not bump :meth:`generation`: nothing cached depends on thumbnails.

        Raises:
            KeyError: when an id is not a clip of this store (nothing is written then).
        """

    @abstractmethod
    def filter_columns(self) -> FilterColumns:
        """Per-clip filter columns, ordered by id."""

    @abstractmethod
    def register_model(self, model_key: str, dim: int) -> None:
        """Record a retrieval model's key and embedding size. Raises ``ValueError`` when the key exists with
        another size."""

    @abstractmethod
    def ids_missing_embedding(self, model_key: str) -> list[int]:
        """Ids of clips with no embedding for ``model_key``, ascending."""

    @abstractmethod
    def put_embeddings(self, model_key: str, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Store ``vectors (N, D) float32`` (unit length) for clips ``ids`` in one transaction (replacing old ones)."""

    @abstractmethod
    def embeddings(self, model_key: str, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(ids (N,) int64, vectors (N, D) float32)`` of every clip embedded with ``model_key`` (only those of
        ``ids`` when given), by id."""

    @abstractmethod
    def search(
        self, model_key: str, query: np.ndarray, k: int, filters: SearchFilters | None, exact: bool
    ) -> list[tuple[int, float]]:
        """The ``k`` clips nearest to the unit vector ``query (D,)`` float32 in ``model_key``'s embedding space, among
        those passing ``filters``, as ``(clip id, cosine similarity)`` best first (fewer when fewer clips qualify;
        none when nothing is embedded with ``model_key``).

        ``exact``: exhaustive search; otherwise the store's approximate nearest-neighbour index (HNSW).

        Raises:
            ValueError: when ``query``'s size differs from the model's embedding size in this store.
        """

    @abstractmethod
    def stats(self) -> dict:
        """Counts: clips, frames, duration, per skeleton / license / source kind, captioned clips, embeddings per
        model, thumbnails, rendered thumbnails, storage bytes."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SQLStore(Store):
    """What the SQL stores (SQLite, PostgreSQL) share: the queries that differ only in their parameter marker.

    Subclasses set :attr:`PARAM` (``"?"`` or ``"%s"``) and provide ``_query(sql, params) -> list[tuple]`` and a
    ``_transaction()`` context manager yielding a connection.
    """

    PARAM = "?"

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.PARAM)

    def generation(self) -> int:
        return int(self._query("SELECT value FROM meta WHERE key='generation'")[0][0])

    def motion_blob(self, clip_id: int) -> bytes:
        rows = self._query(self._sql("SELECT motion FROM clips WHERE id = ?"), (int(clip_id),))
        if not rows:
            raise KeyError(f"no clip with id {clip_id} in {self.url}")
        return bytes(rows[0][0])

    def thumbnail(self, clip_id: int) -> bytes | None:
        rows = self._query(self._sql("SELECT png FROM thumbnails WHERE clip_id = ?"), (int(clip_id),))
        return bytes(rows[0][0]) if rows else None

    def rendered_thumbnails(self, ids: Sequence[int], renderer: str | None = None) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join([self.PARAM] * len(chunk))
            rows = self._query(f"SELECT clip_id, png, renderer FROM rendered_thumbnails WHERE clip_id IN ({marks})",
                               chunk)  # fmt: skip
            found.update({int(r[0]): bytes(r[1]) for r in rows if renderer is None or r[2] == renderer})
        return found

    def put_rendered_thumbnails(self, pngs: dict[int, bytes], renderer: str) -> None:
        if not pngs:
            return
        ids = [int(i) for i in pngs]
        missing = set(ids) - {record.clip_id for record in self.clips(ids)}
        if missing:
            raise KeyError(f"no clip with id(s) {sorted(missing)} in {self.url}")
        with self._transaction(bump=False) as db:
            for clip_id in ids:
                db.execute(self._sql(
                    "INSERT INTO rendered_thumbnails (clip_id, png, renderer) VALUES (?, ?, ?) ON CONFLICT (clip_id)"
                    " DO UPDATE SET png = excluded.png, renderer = excluded.renderer"),
                    (clip_id, bytes(pngs[clip_id]), str(renderer)))  # fmt: skip

    def filter_columns(self) -> FilterColumns:
        rows = self._query("SELECT id, skeleton, duration_s, license FROM clips ORDER BY id")
        return FilterColumns(
            ids=np.array([r[0] for r in rows], dtype=np.int64),
            skeleton=np.array([r[1] for r in rows], dtype=object),
            duration_s=np.array([r[2] for r in rows], dtype=np.float64),
            license=np.array([r[3] for r in rows], dtype=object),
        )

    def _check_model(self, db, model_key: str, dim: int) -> None:
        """Record ``model_key``'s embedding size, or raise ``ValueError`` if the library holds another size."""
        row = db.execute(self._sql("SELECT dim FROM models WHERE key = ?"), (model_key,)).fetchone()
        if row is None:
            db.execute(self._sql("INSERT INTO models (key, dim) VALUES (?, ?)"), (model_key, int(dim)))
        elif int(row[0]) != int(dim):
            raise ValueError(f"model {model_key!r} has {row[0]}-d embeddings in this library, got {dim}-d")

    def register_model(self, model_key: str, dim: int) -> None:
        with self._transaction() as db:
            self._check_model(db, model_key, dim)

    def model_dim(self, model_key: str) -> int | None:
        """The embedding size recorded for ``model_key``, or ``None`` when the model is not registered."""
        rows = self._query(self._sql("SELECT dim FROM models WHERE key = ?"), (model_key,))
        return int(rows[0][0]) if rows else None

    def _check_query(self, model_key: str, query: np.ndarray) -> int | None:
        """``model_key``'s embedding size (``None``: not registered); ``ValueError`` when ``query`` does not fit."""
        dim = self.model_dim(model_key)
        if dim is not None and np.asarray(query).shape != (dim,):
            raise ValueError(f"query has shape {np.asarray(query).shape}; model {model_key!r} has {dim}-d embeddings")
        return dim
