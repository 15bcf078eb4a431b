"""The motion library (INTERFACES.md "Library"): clips with captions, licenses and embeddings, searched by text or by
motion. Embedded SQLite by default (a file per library), PostgreSQL + pgvector for shared studio libraries.

>>> library = open_library("/tmp/demo.sqlite")                   # doctest: +SKIP
>>> import_paths(library, ["../shared/data/cmu_mocap_subject131_bvh"])  # doctest: +SKIP
>>> library.search_text("a person hops", k=3)                      # doctest: +SKIP
"""

from __future__ import annotations

import os

from backend.library.embedding import Embedder, load_embedder
from backend.library.importer import ImportOptions, ImportReport, import_paths
from backend.library.library import Library
from backend.library.sources import AnnotationSources
from backend.library.types import ClipRecord, SearchFilters, SearchHit
from models.paths import user_data_dir

#: Environment variable naming the default library (a path or URL); see :func:`default_library_url`.
LIBRARY_ENV = "BATON_LIBRARY"


def default_library_url() -> str:
    """``$BATON_LIBRARY`` when set, else ``sqlite:///<Baton data folder>/library.sqlite`` (:func:`user_data_dir`)."""
    return os.environ.get(LIBRARY_ENV) or f"sqlite:///{user_data_dir() / 'library.sqlite'}"


def open_library(
    url: str | os.PathLike | None = None, embedder: Embedder | None = None, *, create: bool = True,
    embedder_path: str | os.PathLike | None = None, device: str = "cpu",
) -> Library:
    """Open the library at ``url``, creating it when missing unless ``create`` is false.

    Args:
        url: ``None`` (:func:`default_library_url`); ``sqlite:///PATH`` (SQLAlchemy style: ``sqlite:///lib.sqlite`` is
            relative, ``sqlite:////abs/lib.sqlite`` absolute) or a plain file path (SQLite); or
            ``postgresql://user@host:port/db`` (PostgreSQL + pgvector).
        embedder: the retrieval model for searches (default: ``load_embedder(embedder_path, device=device)`` on the
            first search, see :attr:`Library.embedder`).
        create: create a missing library (imports); ``False`` for readers (search, stats), which must say that the
            library is missing rather than answer from a new, empty one.
        embedder_path: the retrieval model's run folder for that first-search load (``None``: the installed default);
            only without ``embedder``.
        device: torch device that model runs on (``cpu``, ``cuda``, ``cuda:N``, ``mps``).

    Raises:
        ValueError: for an unknown URL scheme, an unreachable PostgreSQL server, or both ``embedder`` and
            ``embedder_path``.
        FileNotFoundError: with ``create=False``, when there is no library at ``url`` (no SQLite file; a PostgreSQL
            database without Baton's tables).
    """
    if embedder is not None and embedder_path is not None:
        raise ValueError("give open_library an embedder or an embedder_path to load one from, not both")
    lazy = {"embedder_path": embedder_path, "device": device}
    text = str(url) if url is not None else default_library_url()
    if text.startswith(("postgresql://", "postgres://")):
        from backend.library.store_postgres import PostgresStore

        return Library(PostgresStore(text, create=create), embedder, **lazy)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    elif text.startswith("sqlite:"):
        text = text[len("sqlite:") :]
    elif "://" in text:
        raise ValueError(f"unknown library URL {text!r}; use sqlite:///PATH, a file path or postgresql://...")
    from backend.library.store_sqlite import SQLiteStore

    return Library(SQLiteStore(text, create=create), embedder, **lazy)


__all__ = [
    "AnnotationSources", "ClipRecord", "Embedder", "ImportOptions", "ImportReport", "Library", "SearchFilters",
    "SearchHit", "default_library_url", "import_paths", "load_embedder", "open_library", "user_data_dir",
]  # fmt: skip
