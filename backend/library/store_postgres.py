"""The shared studio store: PostgreSQL with the pgvector extension (same tables and guarantees as SQLite).

Embeddings of every model live in one ``vector`` column (no fixed size); each model gets a partial HNSW index on
``embedding::vector(D)`` restricted to its rows (pgvector's recipe for mixed sizes), built on first ANN use and
kept up to date by PostgreSQL afterwards. Exact search disables index scans for its transaction.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from backend.library.store import CLIP_COLUMNS, SQLStore, record_from_row
from backend.library.types import ClipRecord, NewClip, SearchFilters
from models.licenses import sql_commercial_clause

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clips (
    id BIGSERIAL PRIMARY KEY,
    content_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    source_path TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    skeleton TEXT NOT NULL,
    fps DOUBLE PRECISION NOT NULL,
    frames INTEGER NOT NULL,
    duration_s DOUBLE PRECISION NOT NULL,
    license TEXT NOT NULL,
    captions TEXT NOT NULL,
    tags TEXT NOT NULL,
    motion BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS clips_skeleton ON clips (skeleton);
CREATE TABLE IF NOT EXISTS thumbnails (clip_id BIGINT PRIMARY KEY REFERENCES clips (id) ON DELETE CASCADE,
                                       png BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS rendered_thumbnails (clip_id BIGINT PRIMARY KEY REFERENCES clips (id) ON DELETE CASCADE,
                                                png BYTEA NOT NULL, renderer TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (key TEXT PRIMARY KEY, dim INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL REFERENCES models (key),
    clip_id BIGINT NOT NULL REFERENCES clips (id) ON DELETE CASCADE,
    embedding vector NOT NULL,
    PRIMARY KEY (model, clip_id)
);
INSERT INTO meta (key, value) VALUES ('schema_version', '1'), ('generation', '0') ON CONFLICT DO NOTHING;
"""


def _redact(url: str) -> str:
    """``url`` without its password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return url
    host, port, db, user = info.get("host", ""), info.get("port", ""), info.get("dbname", ""), info.get("user", "")
    return f"postgresql://{user + '@' if user else ''}{host}{':' + str(port) if port else ''}/{db}"


class PostgresStore(SQLStore):
    """A library in a PostgreSQL database with pgvector.

    Args:
        url: ``postgresql://user[:password]@host:port/dbname`` (any libpq connection string).
        create: create Baton's tables when the database has none; with ``False`` such a database raises
            ``FileNotFoundError`` (no library there).

    Raises:
        ValueError: when the server cannot be reached or lacks the ``vector`` extension (the message says how to
            start the project's own cluster: ``scripts/postgres.sh``).
    """

    PARAM = "%s"

    kind = "postgresql"

    def __init__(self, url: str, create: bool = True) -> None:
        self.url = _redact(url)
        self._lock = threading.RLock()
        self._hnsw_ready: set[str] = set()
        try:
            self._db = psycopg.connect(url, autocommit=True)
            if not create and self._db.execute("SELECT to_regclass('clips')").fetchone()[0] is None:
                self._db.close()
                raise FileNotFoundError(f"no motion library at {self.url}: the database has no Baton tables (import "
                                        f"clips into it with `baton library import PATH --db URL`)")  # fmt: skip
            self._db.execute(SCHEMA)
        except psycopg.Error as exc:
            raise ValueError(
                f"cannot open the PostgreSQL library {self.url}: {exc}. Start the project's cluster with "
                "`bash scripts/postgres.sh start` (it prints a URL) or check the URL."
            ) from None
        register_vector(self._db)

    def _transaction(self, bump: bool = True):
        store = self

        class _Tx:
            def __enter__(self):
                store._lock.acquire()
                self._tx = store._db.transaction()
                self._tx.__enter__()
                return store._db

            def __exit__(self, exc_type, exc, tb):
                try:
                    if exc_type is None and bump:
                        store._db.execute("UPDATE meta SET value = (value::bigint + 1)::text WHERE key='generation'")
                    return self._tx.__exit__(exc_type, exc, tb)
                finally:
                    store._lock.release()

        return _Tx()

    def _query(self, sql: str, params: Sequence | dict = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def existing_hashes(self, hashes: Sequence[str]) -> set[str]:
        rows = self._query("SELECT content_hash FROM clips WHERE content_hash = ANY(%s)", (list(hashes),))
        return {r[0] for r in rows}

    def add_clips(self, clips: Sequence[NewClip]) -> list[int]:
        ids: list[int] = []
        with self._transaction() as db:
            for clip in clips:
                row = db.execute(
                    "INSERT INTO clips (content_hash, name, source_path, source_kind, skeleton, fps, frames,"
                    " duration_s, license, captions, tags, motion) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                    " ON CONFLICT (content_hash) DO NOTHING RETURNING id",
                    (clip.content_hash, clip.name, clip.source_path, clip.source_kind, clip.skeleton, clip.fps,
                     clip.frames, clip.duration_s, clip.license, json.dumps(clip.captions), json.dumps(clip.tags),
                     clip.motion_blob),
                ).fetchone()  # fmt: skip
                if row is None:
                    continue
                clip_id = int(row[0])
                ids.append(clip_id)
                if clip.thumbnail_png is not None:
                    db.execute("INSERT INTO thumbnails (clip_id, png) VALUES (%s, %s)", (clip_id, clip.thumbnail_png))
                for key, vector in clip.embeddings.items():
                    self._check_model(db, key, vector.shape[-1])
                    db.execute(
                        "INSERT INTO embeddings (model, clip_id, embedding) VALUES (%s,%s,%s)"
                        " ON CONFLICT (model, clip_id) DO UPDATE SET embedding = EXCLUDED.embedding",
                        (key, clip_id, np.asarray(vector, dtype=np.float32)),
                    )
        return ids

    def clips(self, ids: Sequence[int] | None = None) -> list[ClipRecord]:
        cols = ", ".join(CLIP_COLUMNS)
        if ids is None:
            return [record_from_row(r) for r in self._query(f"SELECT {cols} FROM clips ORDER BY id")]
        ids = [int(i) for i in ids]
        rows = self._query(f"SELECT {cols} FROM clips WHERE id = ANY(%s)", (ids,))
        by_id = {int(r[0]): record_from_row(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def ids_missing_embedding(self, model_key: str) -> list[int]:
        rows = self._query(
            "SELECT c.id FROM clips c WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model = %s AND"
            " e.clip_id = c.id) ORDER BY c.id",
            (model_key,),
        )
        return [int(r[0]) for r in rows]

    def put_embeddings(self, model_key: str, ids: Sequence[int], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(ids):
            raise ValueError(f"embeddings must be ({len(ids)}, D), got {vectors.shape}")
        with self._transaction() as db:
            self._check_model(db, model_key, vectors.shape[1])
            db.execute(
                "DELETE FROM embeddings WHERE model = %s AND clip_id = ANY(%s)", (model_key, [int(i) for i in ids])
            )
            copy_sql = "COPY embeddings (model, clip_id, embedding) FROM STDIN WITH (FORMAT BINARY)"
            with db.cursor().copy(copy_sql) as copy:
                copy.set_types(["text", "int8", "vector"])
                for clip_id, vector in zip(ids, vectors, strict=True):
                    copy.write_row((model_key, int(clip_id), vector))

    def embeddings(self, model_key: str, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        if ids is None:
            rows = self._query("SELECT clip_id, embedding FROM embeddings WHERE model = %s ORDER BY clip_id",
                               (model_key,))  # fmt: skip
        else:
            rows = self._query("SELECT clip_id, embedding FROM embeddings WHERE model = %s AND clip_id = ANY(%s) "
                               "ORDER BY clip_id", (model_key, [int(i) for i in ids]))  # fmt: skip
        dim = self.model_dim(model_key) or 0
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.array([np.asarray(r[1].to_numpy() if hasattr(r[1], "to_numpy") else r[1]) for r in rows],
                           dtype=np.float32).reshape(len(rows), dim)  # fmt: skip
        return ids, vectors

    # --- pgvector search ---------------------------------------------------------------------------------------
    @staticmethod
    def _index_name(model_key: str) -> str:
        return "embeddings_hnsw_" + hashlib.sha1(model_key.encode()).hexdigest()[:12]

    def ensure_hnsw(self, model_key: str, m: int = 16, ef_construction: int = 64) -> None:
        """Build the partial HNSW index (cosine) for ``model_key`` when it does not exist yet."""
        if model_key in self._hnsw_ready:
            return
        dim = self.model_dim(model_key)
        if dim is None:
            raise ValueError(f"no embeddings for model {model_key!r} in {self.url}")
        literal = model_key.replace("'", "''")
        with self._lock:
            self._db.execute(
                f"CREATE INDEX IF NOT EXISTS {self._index_name(model_key)} ON embeddings USING hnsw "
                f"((embedding::vector({dim})) vector_cosine_ops) WITH (m = {int(m)}, ef_construction = "
                f"{int(ef_construction)}) WHERE model = '{literal}'"
            )
        self._hnsw_ready.add(model_key)

    def search(
        self,
        model_key: str,
        query: np.ndarray,
        k: int,
        filters: SearchFilters | None,
        exact: bool,
        ef_search: int = 200,
    ) -> list[tuple[int, float]]:
        """:meth:`Store.search` with pgvector: exact (sequential scan) or through the model's HNSW index
        (``hnsw.ef_search = max(ef_search, k)``, iterative scans so filters still fill k)."""
        dim = self._check_query(model_key, query)
        if dim is None:
            return []
        if not exact:
            self.ensure_hnsw(model_key)
        where, params = ["e.model = %(model)s"], {"model": model_key, "q": np.asarray(query, np.float32), "k": int(k)}
        if filters is not None:
            if filters.skeleton is not None:
                where.append("c.skeleton = %(skeleton)s")
                params["skeleton"] = filters.skeleton
            if filters.min_duration_s is not None:
                where.append("c.duration_s >= %(lo)s")
                params["lo"] = float(filters.min_duration_s)
            if filters.max_duration_s is not None:
                where.append("c.duration_s <= %(hi)s")
                params["hi"] = float(filters.max_duration_s)
            if filters.license is not None:
                where.append("c.license = %(license)s")
                params["license"] = filters.license
            if filters.commercial_only:
                where.append(sql_commercial_clause("c.license"))
        sql = (
            f"SELECT e.clip_id, 1 - (e.embedding::vector({dim}) <=> %(q)s::vector({dim})) FROM embeddings e "
            f"JOIN clips c ON c.id = e.clip_id WHERE {' AND '.join(where)} "
            f"ORDER BY e.embedding::vector({dim}) <=> %(q)s::vector({dim}) LIMIT %(k)s"
        )
        with self._transaction(bump=False) as db:
            if exact:
                db.execute("SET LOCAL enable_indexscan = off")
            else:
                db.execute(f"SET LOCAL hnsw.ef_search = {max(int(ef_search), int(k))}")
                db.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            rows = db.execute(sql, params).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def stats(self) -> dict:
        total = self._query("SELECT COUNT(*), COALESCE(SUM(frames), 0), COALESCE(SUM(duration_s), 0) FROM clips")[0]
        captioned = self._query("SELECT COUNT(*) FROM clips WHERE captions <> '[]'")[0][0]

        def grouped(column: str) -> dict[str, int]:
            return {k: int(v) for k, v in self._query(f"SELECT {column}, COUNT(*) FROM clips GROUP BY 1 ORDER BY 1")}

        models = self._query(
            "SELECT m.key, m.dim, COUNT(e.clip_id) FROM models m LEFT JOIN embeddings e ON e.model = m.key"
            " GROUP BY 1, 2"
        )
        size = self._query("SELECT pg_database_size(current_database())")[0][0]
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
