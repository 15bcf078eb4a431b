"""One licence rule (models/licenses.py) on both stores: the ``commercial_only`` filter keeps exactly the clips
:func:`is_noncommercial` calls commercial, whether SQLite filters in Python or PostgreSQL in SQL."""

from __future__ import annotations

import numpy as np
import pytest

from backend.library import SearchFilters, open_library
from backend.library.types import NewClip
from models.licenses import is_noncommercial, sql_commercial_clause
from tests.backend.conftest_library import *  # noqa: F401,F403

LICENSES = ["CC BY-NC 4.0", "CC BY-NC-SA 4.0", "AMASS terms (non-commercial research)", "Noncommercial use only",
            "cc by-nc 3.0", "CC BY 4.0", "MIT", "CMU mocap terms (free for products, no resale)", "unknown"]


def test_the_rule():
    assert [is_noncommercial(name) for name in LICENSES] == [True] * 5 + [False] * 4
    assert sql_commercial_clause("c.license").count("NOT ILIKE") == 3
    with pytest.raises(ValueError, match="not an SQL column"):
        sql_commercial_clause("license; DROP TABLE clips")


def test_commercial_only_filter_agrees_on_both_stores(library_url):
    rng = np.random.default_rng(0)
    clips = []
    for i, name in enumerate(LICENSES):
        vector = rng.normal(size=8).astype(np.float32)
        clips.append(NewClip(content_hash=f"h{i}", name=f"clip{i}", source_path="/x", source_kind="bvh", skeleton="s",
                             fps=30.0, frames=3, license=name, captions=[], tags=[], motion_blob=b"x",
                             embeddings={"m@1": vector / np.linalg.norm(vector)}))  # fmt: skip
    with open_library(library_url) as library:
        library.store.add_clips(clips)
        query = np.ones(8, np.float32) / np.sqrt(8)
        for exact in (True, False):
            kept = library.store.search("m@1", query, k=20, filters=SearchFilters(commercial_only=True), exact=exact)
            names = {library.clip(clip_id).license for clip_id, _ in kept}
            assert names == {n for n in LICENSES if not is_noncommercial(n)}, (library_url, exact)
