"""The retrieval training data: labelled clips from ``../shared/data``, a deterministic held-out split, and a
feature cache.

Sources (licenses in ``../shared/data/README.md``):
- Bandai Namco Research Motiondataset-1 (``bandai1``, 174 BVH) and -2 (``bandai2``, 2,762 BVH, a ``.tar.xz``
  unpacked into a temporary folder at run time, never into the repository) — CC BY-NC 4.0, non-commercial;
  content x style labels from each clip's JSON and ``cfg/*_label.txt``.
- CMU subject 131 (``cmu131``, 31-joint BVH at 120 fps) with the CMU index descriptions and KIT-ML texts.

Held-out split (by clip, deterministic, no randomness involved): within each (source, content) group with at least
4 clips, clips are ordered by the SHA-1 of their file stem and the first ``round(0.15 * n)`` are ``test``; all other
clips (and groups smaller than 4, and CMU) are ``train``.

Cross-skeleton views (:mod:`models.retrieval.augment`): with ``views=(...)``, every clip also carries its canonical
points retargeted onto each named skeleton (computed once per source, in worker processes, then cached beside the
points).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.motion.bvh import load_bvh
from models.progress import Progress
from models.retrieval.features import canonical_points

log = logging.getLogger(__name__)

#: Bump when feature extraction changes (invalidates cached features).
FEATURE_VERSION = 1
#: Bump when the cross-skeleton views change (invalidates cached views).
VIEW_VERSION = 1
TEST_FRACTION = 0.15
MIN_GROUP_FOR_TEST = 4
BANDAI2_ARCHIVE = Path("bandai_namco_motion_dataset2") / "bandai_namco_motion_dataset2.tar.xz"


@dataclass
class Clip:
    """One labelled clip.

    Attributes:
        name: file stem (``dataset-2_walk_active_024``).
        source: ``bandai1`` | ``bandai2`` | ``cmu131``.
        content: content label (``walk``) or ``None``.
        style: style label (``tired``) or ``None``.
        captions: caption alternatives (used when there is no content label, e.g. CMU).
        split: ``train`` | ``test``.
        points: ``(T, 80, 3)`` canonical body-part points (:func:`canonical_points`), float16 in the cache.
        views: canonical points of the clip retargeted onto other skeletons (:mod:`models.retrieval.augment`), one
            array per view skeleton; empty unless asked for.
    """

    name: str
    source: str
    content: str | None
    style: str | None
    captions: list[str] = field(default_factory=list)
    split: str = "train"
    points: np.ndarray | None = None
    views: list[np.ndarray] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``content/style`` key (or the name for unlabelled clips)."""
        return f"{self.content}/{self.style}" if self.content else f"clip:{self.name}"


def default_cache_dir() -> Path:
    """``<Baton cache folder>/retrieval`` (:func:`models.paths.user_cache_dir`): derived features, never shipped."""
    from models.paths import user_cache_dir

    return user_cache_dir() / "retrieval"


def _labels(cfg_dir: Path) -> tuple[list[str], list[str]]:
    def read(name: str) -> list[str]:
        lines = (cfg_dir / name).read_text().split()
        return [line.split("_", 1)[1] for line in lines if line.strip()]

    return read("content_label.txt"), read("style_label.txt")


def bandai_labels(folder: Path) -> list[tuple[Path, str, str]]:
    """``(bvh path, content, style)`` for every labelled clip of an (unpacked) Bandai Namco dataset folder.

    Raises:
        FileNotFoundError: when ``data/`` or ``cfg/`` is missing.
    """
    data, cfg = folder / "data", folder / "cfg"
    if not data.is_dir() or not cfg.is_dir():
        raise FileNotFoundError(f"{folder}: expected data/ and cfg/ (a Bandai Namco motion dataset folder)")
    contents, styles = _labels(cfg)
    out = []
    for bvh in sorted(data.glob("*.bvh")):
        meta = bvh.with_suffix(".json")
        if not meta.is_file():
            continue
        label = json.loads(meta.read_text())
        out.append((bvh, contents[int(label["content"])], styles[int(label["style"])]))
    return out


def assign_split(clips: list[Clip]) -> None:
    """Set ``clip.split`` in place by the documented deterministic rule (module docstring)."""
    groups: dict[tuple[str, str | None], list[Clip]] = defaultdict(list)
    for clip in clips:
        clip.split = "train"
        if clip.content is not None:
            groups[(clip.source, clip.content)].append(clip)
    for members in groups.values():
        if len(members) < MIN_GROUP_FOR_TEST:
            continue
        ordered = sorted(members, key=lambda c: hashlib.sha1(c.name.encode()).hexdigest())
        for clip in ordered[: int(round(TEST_FRACTION * len(members)))]:
            clip.split = "test"


def cmu_descriptions(index_csv: Path) -> dict[str, str]:
    """``{"131_01": "Start Walk Stop", ...}`` from the CMU index CSV."""
    out = {}
    with open(index_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                out[f"{int(row['Subject']):02d}_{int(row['Trial #']):02d}"] = row["Motion Description"].strip()
            except (KeyError, ValueError):
                continue
    return out


def kit_texts_by_cmu_trial(annotations: Path) -> dict[str, list[str]]:
    """KIT-ML texts keyed by CMU trial (``131_02``) for KIT motions whose path is ``CMU/<subject>/<trial>_poses``."""
    out: dict[str, list[str]] = defaultdict(list)
    for value in json.loads(annotations.read_text()).values():
        match = re.match(r"CMU/\d+/(\d+_\d+)_poses", value.get("path", ""))
        if match:
            out[match.group(1)] += [a["text"] for a in value.get("annotations", [])]
    return dict(out)


def _source_clips(source: str, data_dir: Path, tmp: str, progress: Progress | None) -> list[tuple[Clip, Path]]:
    if source == "bandai1":
        return [(Clip(bvh.stem, "bandai1", c, s), bvh)
                for bvh, c, s in bandai_labels(data_dir / "bandai_namco_motion_dataset1")]  # fmt: skip
    if source == "bandai2":
        archive = data_dir / BANDAI2_ARCHIVE
        if progress:
            progress.update(0.0, "unpacking Bandai Namco dataset-2")
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        return [(Clip(bvh.stem, "bandai2", c, s), bvh) for bvh, c, s in bandai_labels(Path(tmp))]
    from models.retrieval.captions import cmu_captions

    descriptions = cmu_descriptions(data_dir / "cmu_mocap_index" / "cmu_mocap_clip_descriptions.csv")
    kit = kit_texts_by_cmu_trial(data_dir / "tmr_text_motion_annotations" / "kitml" / "annotations.json")
    return [(Clip(bvh.stem, "cmu131", None, None, cmu_captions(descriptions.get(bvh.stem, "a motion capture clip"),
                                                                kit.get(bvh.stem, []))), bvh)
            for bvh in sorted((data_dir / "cmu_mocap_subject131_bvh").glob("*.bvh"))]  # fmt: skip


_SOURCE_PATHS = {"bandai1": "bandai_namco_motion_dataset1", "bandai2": str(BANDAI2_ARCHIVE),
                 "cmu131": "cmu_mocap_subject131_bvh"}  # fmt: skip


def _source_stamp(path: Path) -> str:
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    digest = hashlib.sha1()
    for f in files:
        if f.is_file():
            digest.update(f"{f.relative_to(path.parent)}:{f.stat().st_size};".encode())
    return digest.hexdigest()[:12]


def _save_npz(path: Path, **arrays) -> None:
    """``np.savez`` to ``path`` all or nothing (:func:`models.atomic.atomic_write`)."""
    from models.atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, ".tmp.npz") as tmp:
        np.savez(tmp, **arrays)


def _views_job(job: tuple[list[str], str, float, tuple[str, ...], int]) -> list[list[np.ndarray]]:
    """Worker: cross-skeleton views (float16) of the BVH files ``job[0]`` (see :func:`load_source`)."""
    from models.retrieval.augment import skeleton_views, view_skeletons

    paths, data_dir, fps, names, seed = job
    views = skeleton_views([load_bvh(p) for p in paths], view_skeletons(data_dir, names), fps,
                           np.random.default_rng(seed))  # fmt: skip
    return [[v.astype(np.float16) for v in clip_views] for clip_views in views]


def _compute_views(
    entries: list[tuple[Clip, Path]], data_dir: Path, fps: float, views: tuple[str, ...], workers: int,
    progress: Progress | None,
) -> None:  # fmt: skip
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    chunk = 64
    jobs = [([str(bvh) for _, bvh in entries[i : i + chunk]], str(data_dir), fps, views,
             int(hashlib.sha1(entries[i][0].name.encode()).hexdigest()[:8], 16))
            for i in range(0, len(entries), chunk)]  # fmt: skip
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_views_job, jobs))
    else:
        results = []
        for k, job in enumerate(jobs):
            results.append(_views_job(job))
            if progress:
                progress.update(k / len(jobs), "cross-skeleton views")
    for k, result in enumerate(results):
        for (clip, _), clip_views in zip(entries[k * chunk : (k + 1) * chunk], result, strict=True):
            clip.views = clip_views


def load_source(
    source: str, data_dir: Path, fps: float, cache_dir: Path, progress: Progress | None = None,
    views: tuple[str, ...] = (), workers: int = 1,
) -> list[Clip]:  # fmt: skip
    """Clips of one source with canonical points (and, when ``views`` names view skeletons, cross-skeleton views),
    from the feature cache when present (else computed and cached).

    Raises:
        FileNotFoundError: when the source is missing from ``data_dir``.
    """
    path = data_dir / _SOURCE_PATHS[source]
    if not path.exists():
        raise FileNotFoundError(f"{source}: not found at {path}")
    stamp = f"{fps:g}fps-{_source_stamp(path)}"
    cache = cache_dir / f"points-{source}-v{FEATURE_VERSION}-{stamp}.npz"
    view_key = hashlib.sha1(",".join(views).encode()).hexdigest()[:8]
    view_cache = cache_dir / f"views-{source}-v{FEATURE_VERSION}.{VIEW_VERSION}-{stamp}-{view_key}.npz"
    clips: list[Clip] = []
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            offsets, flat = data["offsets"], data["points"]
        clips = [Clip(m["name"], source, m["content"], m["style"], m["captions"]) for m in meta]
        for i, clip in enumerate(clips):
            clip.points = flat[offsets[i] : offsets[i + 1]]
        log.info("%s: %d clips from the feature cache %s", source, len(clips), cache)
        if not views:
            return clips
        if view_cache.is_file():
            with np.load(view_cache, allow_pickle=False) as data:
                offsets, flat = data["offsets"], data["points"]
            for i, clip in enumerate(clips):
                rows = range(i * len(views), (i + 1) * len(views))
                clip.views = [flat[offsets[r] : offsets[r + 1]] for r in rows]
            return clips
    with tempfile.TemporaryDirectory(prefix="baton-retrieval-") as tmp:
        entries = _source_clips(source, data_dir, tmp, progress)
        if clips:  # points were cached; only the views are missing
            by_name = {c.name: c for c in clips}
            entries = [(by_name[clip.name], bvh) for clip, bvh in entries]
        else:
            for i, (clip, bvh) in enumerate(entries):
                clip.points = canonical_points(load_bvh(bvh), fps).astype(np.float16)
                if progress and i % 50 == 0:
                    progress.update(i / max(1, len(entries)), f"motion features ({source})")
            clips = [clip for clip, _ in entries]
            offsets = np.concatenate([[0], np.cumsum([len(c.points) for c in clips])]).astype(np.int64)
            meta = [{"name": c.name, "content": c.content, "style": c.style, "captions": c.captions} for c in clips]
            _save_npz(cache, points=np.concatenate([c.points for c in clips]), offsets=offsets,
                      meta=np.str_(json.dumps(meta)))  # fmt: skip
        if views:
            _compute_views(entries, data_dir, fps, views, workers, progress)
            flat_views = [v for c in clips for v in c.views]
            offsets = np.concatenate([[0], np.cumsum([len(v) for v in flat_views])]).astype(np.int64)
            _save_npz(view_cache, points=np.concatenate(flat_views), offsets=offsets)
    return clips


def load_clips(
    data_dir: Path,
    *,
    sources: tuple[str, ...] = ("bandai1", "bandai2", "cmu131"),
    fps: float = 10.0,
    cache_dir: Path | None = None,
    limit_per_group: int | None = None,
    progress: Progress | None = None,
    views: tuple[str, ...] = (),
    workers: int = 1,
) -> list[Clip]:
    """All clips of ``sources`` with labels, split and canonical points (computed once per source, then cached).

    Args:
        data_dir: the shared data folder (``../shared/data``).
        sources: any of ``bandai1``, ``bandai2``, ``cmu131``.
        fps: feature frame rate.
        cache_dir: where derived features are cached (default :func:`default_cache_dir`).
        limit_per_group: keep at most this many clips per (source, content, style) — small subsets for tests.
        progress: optional progress sink.
        views: view skeletons for cross-skeleton views (:data:`models.retrieval.augment.VIEW_SKELETONS`); empty:
            none.
        workers: processes computing views the first time.

    Raises:
        FileNotFoundError: when a requested source is missing from ``data_dir``.
        ValueError: for an unknown source name.
    """
    unknown = set(sources) - set(_SOURCE_PATHS)
    if unknown:
        raise ValueError(f"unknown data sources {sorted(unknown)}; use {', '.join(_SOURCE_PATHS)}")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    clips: list[Clip] = []
    for source in sources:
        clips += load_source(source, Path(data_dir), fps, cache_dir, progress, tuple(views), workers)
    assign_split(clips)  # the split is decided on the full set, before any subsetting
    if limit_per_group is not None:
        counts: dict[str, int] = defaultdict(int)
        kept = []
        for clip in clips:
            key = f"{clip.source}:{clip.label}:{clip.split}"
            counts[key] += 1
            if counts[key] <= limit_per_group:
                kept.append(clip)
        clips = kept
    return clips
