"""``baton library import``: BVH folders, HumanML3D ``new_joints`` + texts, Baton ``.npz`` and AMASS ``.npz`` (through
smplx when the user has the SMPL model files) into a library.

Resumable and idempotent: every file is identified by the sha256 of its bytes (salted by its kind); files already
stored are skipped before they are parsed, and clips are written in batches of ``batch_size``, each batch in one
transaction together with its thumbnails and embeddings. Killed at any point, the library holds only complete
batches, and a re-run adds exactly the rest. A file that cannot be read is reported and skipped; it never aborts the
import. Per-clip work is kept cheap: parse, decimate to <= 30 fps, encode float16 positions, draw a thumbnail, and
embed in batches when a retrieval model is given.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from backend.library.codec import (
    clip_metadata,
    decimate,
    decode_motion,
    encode_motion,
    file_hash,
    pose_strip_png,
    skeleton_label,
)
from backend.library.embedding import Embedder, normalise
from backend.library.library import Library
from backend.library.sources import (
    AnnotationSources,
    default_annotation_sources,
    humanml3d_captions,
    labels_for_bvh,
    license_from_files,
)
from backend.library.types import NewClip
from models.motion.bvh import read_bvh
from models.motion.io import load_npz
from models.motion.motion import Motion
from models.motion.skeleton import get_skeleton
from models.progress import Progress

log = logging.getLogger(__name__)

HUMANML3D_FPS = 20.0
#: HumanML3D motions are AMASS / HumanAct12 captures: research use, non-commercial.
HUMANML3D_LICENSE = "AMASS/HumanAct12 terms (non-commercial research)"


@dataclass
class ImportReport:
    """What an import did."""

    files: int = 0
    imported: int = 0
    skipped_existing: int = 0
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    embedded_with: str | None = None

    def to_dict(self) -> dict:
        return {"files": self.files, "imported": self.imported, "skipped_existing": self.skipped_existing,
                "failed": self.failed, "seconds": round(self.seconds, 3), "embedded_with": self.embedded_with,
                "clips_per_second": round(self.imported / self.seconds, 2) if self.seconds > 0 else None}  # fmt: skip


@dataclass(frozen=True)
class ImportOptions:
    """Knobs of an import.

    Attributes:
        annotations: CMU index and KIT-ML texts used for CMU clips (``None``:
            :func:`~backend.library.sources.default_annotation_sources`).
        license: a license for every clip (overrides what the files say).
        tags: extra tags for every clip.
        thumbnails: draw a pose-strip PNG per clip.
        smpl_model: SMPL/SMPL-H model folder or file for AMASS ``.npz`` (``None``: AMASS files are reported and
            skipped).
        batch_size: clips per transaction.
        workers: processes parsing files in parallel (1: in this process).
    """

    annotations: AnnotationSources | None = None
    license: str | None = None
    tags: tuple[str, ...] = ()
    thumbnails: bool = True
    smpl_model: Path | None = None
    batch_size: int = 32
    workers: int = 1


def discover(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, str]]:
    """Motion files under ``paths`` (files or folders, recursively) as ``(path, kind)``, sorted, deduplicated.

    Kinds: ``bvh``; ``humanml3d`` (``.npy`` inside a ``new_joints`` folder); ``npz`` (Baton motion or AMASS, told
    apart when read). Other files are ignored.

    Raises:
        FileNotFoundError: when a path does not exist.
    """
    found: dict[Path, str] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"import path not found: {path}")
        files = [path] if path.is_file() else (p for p in path.rglob("*") if p.is_file())
        for file in files:
            suffix = file.suffix.lower()
            if suffix == ".bvh":
                found[file.resolve()] = "bvh"
            elif suffix == ".npy" and file.parent.name == "new_joints":
                found[file.resolve()] = "humanml3d"
            elif suffix == ".npz":
                found[file.resolve()] = "npz"
    return sorted(found.items())


def _bvh_clip(path: Path, options: ImportOptions) -> tuple[Motion, NewClip]:
    motion = read_bvh(path).to_motion()
    labels = labels_for_bvh(path, options.annotations)
    return motion, _new_clip(path, "bvh", motion, labels.captions, labels.tags, labels.license, options)


def _humanml3d_clip(path: Path, options: ImportOptions) -> tuple[Motion, NewClip]:
    joints = np.load(path, allow_pickle=False)
    if joints.ndim != 3 or joints.shape[1:] != (22, 3):
        raise ValueError(f"HumanML3D new_joints must be (T, 22, 3), got {joints.shape}")
    motion = Motion(skeleton=get_skeleton("smpl22"), fps=HUMANML3D_FPS, positions=joints)
    captions = humanml3d_captions(path)
    return motion, _new_clip(path, "humanml3d", motion, captions, ["humanml3d"], HUMANML3D_LICENSE, options,
                             name=f"humanml3d:{path.stem}")  # fmt: skip


def _npz_clip(path: Path, options: ImportOptions) -> tuple[Motion, NewClip]:
    with np.load(path, allow_pickle=False) as data:
        is_amass = "trans" in data.files and ("poses" in data.files or "pose_body" in data.files)
    if is_amass:
        from backend.library.amass import load_amass

        if options.smpl_model is None:
            raise ValueError("AMASS .npz needs SMPL model files: pass --smpl-model DIR (see docs/library.md)")
        motion = load_amass(path, options.smpl_model)
        license_name = license_from_files(path) or "AMASS terms (non-commercial research)"
        return motion, _new_clip(path, "amass", motion, [], ["amass"], license_name, options)
    motion = load_npz(path)
    captions = [str(c) for c in motion.metadata.get("captions", [])]
    license_name = str(motion.metadata.get("license") or license_from_files(path) or "unknown")
    return motion, _new_clip(path, "npz", motion, captions, [], license_name, options)


def _new_clip(
    path: Path, kind: str, motion: Motion, captions: list[str], tags: list[str], license_name: str,
    options: ImportOptions, name: str | None = None,
) -> NewClip:  # fmt: skip
    if motion.is_2d:
        raise ValueError("2D keypoint motions are not stored in the library (retarget onto a 3D rig first)")
    positions, fps = decimate(motion)
    label = skeleton_label(motion.skeleton)
    return NewClip(
        content_hash="",  # set by the caller (it hashed the file before parsing)
        name=name or path.stem,
        source_path=str(path),
        source_kind=kind,
        skeleton=label,
        fps=fps,
        frames=int(positions.shape[0]),
        license=options.license or license_name,
        captions=list(captions),
        tags=list(tags) + list(options.tags),
        motion_blob=encode_motion(positions, fps, motion.skeleton),
        thumbnail_png=pose_strip_png(positions, motion.skeleton.parents) if options.thumbnails else None,
    )


_READERS = {"bvh": _bvh_clip, "humanml3d": _humanml3d_clip, "npz": _npz_clip}


def _hash(path: Path, kind: str, options: ImportOptions) -> str:
    salt = kind
    if kind == "npz" and options.smpl_model is not None:
        salt += ":" + str(options.smpl_model.resolve())
    return file_hash(path, salt=salt + ":")


def import_paths(
    library: Library,
    paths: Sequence[str | os.PathLike],
    options: ImportOptions = ImportOptions(),
    embedder: Embedder | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import every motion file under ``paths`` into ``library`` (see the module docstring).

    Args:
        embedder: when given, clips are embedded in batches and stored with their embeddings.
        progress: receives ``update(fraction, stage)``; its ``Cancelled`` stops the import between batches (the
            finished batches stay).

    Raises:
        FileNotFoundError: for a path that does not exist.
    """
    started = time.perf_counter()
    if options.annotations is None:
        options = replace(options, annotations=default_annotation_sources())
    items = discover(paths)
    report = ImportReport(files=len(items), embedded_with=embedder.model_key if embedder else None)
    size = max(1, int(options.batch_size))
    workers = min(int(options.workers), max(1, len(items) // size))
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 1 else None
    try:
        _import_batches(library, items, size, options, embedder, progress, report, pool)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if progress is not None:
        progress.update(1.0, "import finished")
    report.seconds = time.perf_counter() - started
    return report


def _prepare(job: tuple[Path, str, ImportOptions]) -> tuple[NewClip | None, str | None]:
    """Parse one file into a :class:`NewClip` (runs in a worker process); ``(None, error)`` when it cannot be read."""
    path, kind, options = job
    try:
        return _READERS[kind](path, options)[1], None
    except (ValueError, OSError, KeyError, IndexError) as exc:
        return None, str(exc)


def _import_batches(library, items, size, options, embedder, progress, report, pool) -> None:
    for start in range(0, len(items), size):
        if progress is not None:
            progress.update(start / max(1, len(items)), "importing motion files")
        batch = items[start : start + size]
        hashes = []
        for path, kind in batch:
            try:
                hashes.append(_hash(path, kind, options))
            except OSError as exc:
                hashes.append(None)
                report.failed.append({"path": str(path), "error": f"cannot read: {exc}"})
        existing = library.store.existing_hashes([h for h in hashes if h])
        todo, seen = [], set(existing)
        for (path, kind), digest in zip(batch, hashes, strict=True):
            if digest is None:
                continue
            if digest in seen:
                report.skipped_existing += 1
                continue
            seen.add(digest)
            todo.append((path, kind, digest))
        jobs = [(path, kind, options) for path, kind, _ in todo]
        prepared = list(pool.map(_prepare, jobs, chunksize=4)) if pool is not None else [_prepare(j) for j in jobs]
        pending: list[NewClip] = []
        for (path, _, digest), (clip, error) in zip(todo, prepared, strict=True):
            if clip is None:
                log.warning("skipping %s: %s", path, error)
                report.failed.append({"path": str(path), "error": error})
                continue
            clip.content_hash = digest
            pending.append(clip)
        if pending and embedder is not None:
            # embed exactly what is stored (decimated, float16), so import-time and later embeddings agree
            stored = [decode_motion(c.motion_blob, c.skeleton, clip_metadata(c)) for c in pending]
            vectors = normalise(embedder.embed_motion(stored))
            for clip, vector in zip(pending, vectors, strict=True):
                clip.embeddings[embedder.model_key] = vector
        if pending:
            added = library.store.add_clips(pending)
            report.imported += len(added)
            report.skipped_existing += len(pending) - len(added)  # stored meanwhile by a concurrent import
