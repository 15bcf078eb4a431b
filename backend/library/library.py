"""The motion library: clips, captions and embeddings in a store, searched by text or by motion.

Search ranks clips by cosine similarity between the query embedding and each clip's embedding in the joint
text-motion space of one retrieval model (TMR, Petrovich et al. 2023; Motion Patches, Yu et al. 2024). The store
ranks (:meth:`Store.search <backend.library.store.Store.search>`): exact search is a matrix product over all
candidate embeddings (SQLite: numpy; PostgreSQL: pgvector sequential scan); ANN search uses HNSW (hnswlib beside the
SQLite file; pgvector ``hnsw`` on PostgreSQL). Clips imported before a model was
available are embedded on first search with that model (:meth:`Library.update_embeddings`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np

from backend.library.codec import clip_metadata, decode_motion
from backend.library.embedding import Embedder, normalise
from backend.library.store import Store
from backend.library.types import ClipRecord, SearchFilters, SearchHit
from models.motion.motion import Motion
from models.progress import Progress


class Library:
    """A motion library over a :class:`~backend.library.store.Store`.

    Args:
        store: where clips live (:class:`SQLiteStore` or :class:`PostgresStore`).
        embedder: the retrieval model used by searches and imports (``None``: set later with :meth:`set_embedder`
            or load one lazily on first search, see :attr:`embedder`).
        embedder_path: the retrieval model's run folder that the lazy load uses (``None``: the installed default,
            see :func:`backend.library.embedding.load_embedder`); only without ``embedder``.
        device: torch device the lazily loaded model runs on (``cpu``, ``cuda``, ``cuda:N``, ``mps``; the server
            passes its resolved ``--device``).

    Raises:
        ValueError: both ``embedder`` and ``embedder_path``.
    """

    def __init__(self, store: Store, embedder: Embedder | None = None, *,
                 embedder_path: str | os.PathLike | None = None, device: str = "cpu") -> None:
        if embedder is not None and embedder_path is not None:
            raise ValueError("give the library an embedder or an embedder_path to load one from, not both")
        self.store = store
        self._embedder = embedder
        self.embedder_path, self.device = embedder_path, device
        self._lock = threading.RLock()
        self._embedded_at: dict[str, int] = {}  # model key -> store generation when every clip had an embedding

    # --- basics ----------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.store.url

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_embedder(self, embedder: Embedder | None) -> None:
        """Use ``embedder`` for searches and imports from now on."""
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        """The retrieval model; on first use loads ``load_embedder(embedder_path, device=device)``
        (:func:`backend.library.embedding.load_embedder`), once even when searches race, so opening a library (e.g.
        to retarget a clip) never loads the encoders.

        Raises:
            backend.errors.NotAvailableError: when no model is available.
        """
        with self._lock:
            if self._embedder is None:
                from backend.library.embedding import load_embedder

                self._embedder = load_embedder(self.embedder_path, device=self.device)
            return self._embedder

    @property
    def has_embedder(self) -> bool:
        return self._embedder is not None

    def stats(self) -> dict:
        """Counts (see :meth:`Store.stats`)."""
        return self.store.stats()

    def clip(self, clip_id: int) -> ClipRecord:
        """The record of ``clip_id``. Raises ``KeyError`` for an unknown id."""
        found = self.store.clips([clip_id])
        if not found:
            raise KeyError(f"no clip with id {clip_id} in {self.url}")
        return found[0]

    def clips(self) -> list[ClipRecord]:
        """Every clip's record, by id."""
        return self.store.clips()

    def get_motion(self, clip_id: int) -> Motion:
        """The stored motion of ``clip_id`` (positions ``(T, J, 3)`` float32 metres at the stored fps; metadata has
        the clip's name, source path, license and captions). Raises ``KeyError`` for an unknown id."""
        record = self.clip(clip_id)
        return decode_motion(self.store.motion_blob(clip_id), record.skeleton, clip_metadata(record, record.clip_id))

    def thumbnail(self, clip_id: int) -> bytes | None:
        """The clip's PNG thumbnail: the renderer's mannequin image when one was rendered
        (:func:`backend.render.thumbnails.ensure_thumbnails`), else the pose strip drawn at import, else ``None``."""
        return self.store.rendered_thumbnails([clip_id]).get(int(clip_id)) or self.store.thumbnail(clip_id)

    def rendered_thumbnails(self, ids: Sequence[int], renderer: str | None = None) -> dict[int, bytes]:
        """``{clip id: PNG}`` for those of ``ids`` with a rendered thumbnail (made with ``renderer``, if given)."""
        return self.store.rendered_thumbnails(ids, renderer)

    def save_rendered_thumbnails(self, pngs: dict[int, bytes], renderer: str) -> None:
        """Store rendered thumbnails in one transaction (replacing older ones). Raises ``KeyError`` for an unknown
        clip id (nothing is written then)."""
        self.store.put_rendered_thumbnails(pngs, renderer)

    # --- embeddings ------------------------------------------------------------------------------------------
    def update_embeddings(
        self, embedder: Embedder | None = None, batch_size: int = 64, progress: Progress | None = None
    ) -> int:
        """Embed every clip that has no embedding for the model yet, in batches of ``batch_size`` (one transaction
        each, so an interrupted run keeps its finished batches). Returns the number of clips embedded."""
        embedder = embedder or self.embedder
        missing = self.store.ids_missing_embedding(embedder.model_key)
        for start in range(0, len(missing), batch_size):
            if progress is not None:
                progress.update(start / len(missing), "embedding clips")
            ids = missing[start : start + batch_size]
            vectors = normalise(embedder.embed_motion([self.get_motion(i) for i in ids]))
            self.store.put_embeddings(embedder.model_key, ids, vectors)
        self._embedded_at[embedder.model_key] = self.store.generation()
        return len(missing)

    def _ensure_embedded(self, embedder: Embedder) -> None:
        with self._lock:  # concurrent searches must not embed the same clips twice
            if self._embedded_at.get(embedder.model_key) != self.store.generation():
                self.update_embeddings(embedder)

    # --- search ----------------------------------------------------------------------------------------------
    def search_embedding(
        self,
        query: np.ndarray,
        k: int = 10,
        filters: SearchFilters | None = None,
        *,
        model_key: str,
        exact: bool = False,
        exclude: Sequence[int] = (),
    ) -> list[SearchHit]:
        """The ``k`` clips closest to the unit vector ``query (D,)`` in ``model_key``'s space, best first.

        Args:
            exact: exhaustive search instead of the HNSW index.
            exclude: clip ids never returned (the query clip itself in motion-to-motion search).

        Raises:
            ValueError: for ``k < 1`` or a query of the wrong size.
        """
        if int(k) < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        query = normalise(np.asarray(query, np.float32).reshape(1, -1))[0]
        want = int(k) + len(exclude)
        pairs = self.store.search(model_key, query, want, filters, exact)
        pairs = [(i, s) for i, s in pairs if i not in set(exclude)][: int(k)]
        records = {r.clip_id: r for r in self.store.clips([i for i, _ in pairs])}
        return [
            SearchHit(clip_id=i, name=records[i].name, score=float(s), duration_s=records[i].duration_s,
                      skeleton=records[i].skeleton, license=records[i].license,
                      caption=records[i].captions[0] if records[i].captions else "")
            for i, s in pairs if i in records
        ]  # fmt: skip

    def search_text(
        self, text: str, k: int = 10, filters: SearchFilters | None = None, *, exact: bool = False
    ) -> list[SearchHit]:
        """Clips best matching the description ``text`` (text -> motion retrieval).

        Raises:
            ValueError: for empty text or ``k < 1``.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("search text must be a non-empty string")
        embedder = self.embedder
        self._ensure_embedded(embedder)
        query = embedder.embed_text([text.strip()])[0]
        return self.search_embedding(query, k, filters, model_key=embedder.model_key, exact=exact)

    def search_motion(
        self,
        motion: Motion | int,
        k: int = 10,
        filters: SearchFilters | None = None,
        *,
        exact: bool = False,
    ) -> list[SearchHit]:
        """Clips most similar to ``motion`` (a :class:`Motion` on any skeleton the model supports, or a clip id of
        this library, which is then left out of the results).

        Raises:
            TypeError: when ``motion`` is neither a Motion nor an int; ``KeyError`` for an unknown clip id.
        """
        embedder = self.embedder
        self._ensure_embedded(embedder)
        exclude: tuple[int, ...] = ()
        if isinstance(motion, int | np.integer):
            exclude = (int(motion),)
            motion = self.get_motion(int(motion))
        if not isinstance(motion, Motion):
            raise TypeError(f"search_motion needs a Motion or a clip id, got {type(motion).__name__}")
        if motion.is_2d:
            raise ValueError("search_motion needs a 3D motion (positions (T, J, 3)); retarget 2D keypoints first")
        query = embedder.embed_motion([motion])[0]
        return self.search_embedding(query, k, filters, model_key=embedder.model_key, exact=exact, exclude=exclude)

    def describe_motion(self, motion: Motion, k: int = 5) -> list[tuple[str, float]]:
        """Motion -> text: the ``k`` library captions closest to ``motion``, as ``(caption, cosine)`` best first."""
        embedder = self.embedder
        captions = sorted({c for record in self.store.clips() for c in record.captions})
        if not captions:
            return []
        text_vectors = normalise(embedder.embed_text(captions))
        scores = text_vectors @ embedder.embed_motion([motion])[0]
        order = np.argsort(-scores)[: int(k)]
        return [(captions[i], float(scores[i])) for i in order]
