"""Render a motion library into a text-video-motion dataset (LAVIMO, Yin et al.: videos of rendered avatars).

Layout of a dataset folder::

    DATASET/
      dataset.json        render settings, source library, counts, licences (rewritten at the end of every run)
      manifest.jsonl      one JSON object per rendered clip: key, clip_id, name, licence, captions, split, files
      splits/{train,val,test}.txt   keys, one per line (split by source clip: every render of a clip shares one)
      videos/KEY.mp4      rendered avatar clip (H.264, ``size``² pixels, ``frames`` frames at ``fps``)
      motions/KEY.npz     the rendered window: positions (F, J, 3) float32 metres (backend space), joint_names,
                          parents, fps, start_s
      texts/KEY.txt       the clip's captions, one per line
      meta/KEY.json       written last for each clip: the clip is done (resume skips it)

``KEY`` is ``<clip id, 6 digits>_<render index>``. Work is split into batches of clips; each batch is one Blender
process (:func:`backend.render.blender.render_plans`). Batches run as Ray tasks (local Ray by default, ``address``
for a cluster whose nodes see the same library and dataset folder) or, with ``scheduler="process"``, in a local
process pool. A killed run resumes: clips whose ``meta/KEY.json`` exists are skipped, and every file is written
atomically, so a half-rendered clip is simply rendered again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from backend.render.mannequin import RenderSettings, plan_clip
from models.atomic import atomic_write
from models.progress import Progress

log = logging.getLogger(__name__)
SCHEDULERS = ("ray", "process", "inline")


def clip_key(clip_id: int, render: int) -> str:
    """The dataset key of render ``render`` of library clip ``clip_id``."""
    return f"{int(clip_id):06d}_{int(render)}"


def split_of(clip_id: int, val: float = 0.1, test: float = 0.1) -> str:
    """``train`` / ``val`` / ``test`` for a source clip, from a hash of its id (stable across runs and machines)."""
    u = int(hashlib.sha256(str(int(clip_id)).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if u < test else "val" if u < test + val else "train"


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path) as tmp:
        Path(tmp).write_text(text)


def render_batch(library_url: str, items: list[tuple[int, int]], output: str, settings: dict, seed: int,
                 engine: str = "BLENDER_WORKBENCH") -> list[dict]:
    """Render ``items`` (``(clip_id, render index)`` pairs) of the library at ``library_url`` into ``output``.

    Runs in a worker (Ray task or pool process). Returns the manifest entries of the rendered clips.
    """
    from backend.library import open_library
    from backend.render.blender import render_plans

    settings_obj = RenderSettings(**settings)
    root = Path(output)
    plans, outputs, entries, motions = [], [], [], []
    with open_library(library_url, create=False) as library:
        for clip_id, render in items:
            record = library.clip(int(clip_id))
            motion = library.get_motion(int(clip_id))
            key = clip_key(clip_id, render)
            rng_seed = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16)
            plans.append(plan_clip(motion, settings_obj, rng_seed))
            outputs.append(root / "videos" / f"{key}.mp4")
            motions.append(motion)
            entries.append({"key": key, "clip_id": int(clip_id), "render": int(render), "name": record.name,
                            "license": record.license, "skeleton": record.skeleton, "captions": list(record.captions),
                            "split": split_of(clip_id), "source_path": record.source_path})  # fmt: skip
    started = time.perf_counter()
    render_plans(plans, outputs, size=settings_obj.size, fps=settings_obj.fps, engine=engine)
    seconds = time.perf_counter() - started
    for plan, motion, entry in zip(plans, motions, entries, strict=True):
        key = entry["key"]
        with atomic_write(root / "motions" / f"{key}.npz", ".tmp.npz") as tmp:
            np.savez(tmp, positions=plan["positions"], joint_names=np.array(motion.skeleton.joint_names),
                     parents=np.array(motion.skeleton.parents, np.int32), fps=np.float32(settings_obj.fps),
                     start_s=np.float32(plan["start_s"]))  # fmt: skip
        _write_text(root / "texts" / f"{key}.txt", "\n".join(entry["captions"]) + "\n")
        entry.update({"video": f"videos/{key}.mp4", "motion": f"motions/{key}.npz", "text": f"texts/{key}.txt",
                      "start_s": plan["start_s"], "camera": plan["camera"][0].tolist(), "tracking": plan["tracking"],
                      "lens_mm": plan["lens_mm"],
                      "render_seconds": seconds / len(entries)})  # fmt: skip
        _write_text(root / "meta" / f"{key}.json", json.dumps(entry))
    return entries


def pending_items(output: str | os.PathLike, clip_ids: list[int], renders: int) -> list[tuple[int, int]]:
    """The ``(clip_id, render)`` pairs whose ``meta/KEY.json`` is not in ``output`` yet (what a resumed run does)."""
    meta = Path(output) / "meta"
    return [(c, r) for c in clip_ids for r in range(renders) if not (meta / f"{clip_key(c, r)}.json").is_file()]


def write_index(output: str | os.PathLike, info: dict) -> dict:
    """(Re)write ``manifest.jsonl``, ``splits/*.txt`` and ``dataset.json`` from ``meta/*.json``. Returns the summary."""
    root = Path(output)
    entries = [json.loads(p.read_text()) for p in sorted((root / "meta").glob("*.json"))]
    with atomic_write(root / "manifest.jsonl") as tmp:
        Path(tmp).write_text("".join(json.dumps(e) + "\n" for e in entries))
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for entry in entries:
        splits[entry["split"]].append(entry["key"])
    for name, keys in splits.items():
        _write_text(root / "splits" / f"{name}.txt", "".join(k + "\n" for k in keys))
    licences: dict[str, int] = {}
    for entry in entries:
        licences[entry["license"]] = licences.get(entry["license"], 0) + 1
    summary = {**info, "clips": len(entries), "splits": {k: len(v) for k, v in splits.items()}, "licenses": licences}
    _write_text(root / "dataset.json", json.dumps(summary, indent=2))
    return summary


def choose_clips(clip_ids: list[int], *, limit: int | None = None, sample: int | None = None,
                 seed: int = 0) -> list[int]:  # fmt: skip
    """The clips a render covers: all of them, the first ``limit`` by id, or ``sample`` drawn without replacement
    with ``seed`` (every source and content, not only the first imported). The sample is a prefix of one
    permutation per seed, so a larger ``sample`` later keeps the clips of a smaller one (resume, then grow).

    Raises:
        ValueError: when both or a count below 1 are given.
    """
    if limit is not None and sample is not None:
        raise ValueError("give limit or sample, not both")
    if (limit is not None and limit < 1) or (sample is not None and sample < 1):
        raise ValueError("limit and sample must be at least 1")
    ids = sorted(int(i) for i in clip_ids)
    if limit is not None:
        return ids[:limit]
    if sample is not None:
        order = np.random.default_rng(seed).permutation(len(ids))
        return sorted(ids[i] for i in order[:sample])
    return ids


def build_dataset(library_url: str, output: str | os.PathLike, *, settings: RenderSettings | None = None,
                  limit: int | None = None, sample: int | None = None, renders_per_clip: int = 1,
                  batch_clips: int = 8, workers: int = 2,
                  scheduler: str = "ray", address: str | None = None, seed: int = 0,
                  engine: str = "BLENDER_WORKBENCH", progress: Progress | None = None) -> dict:
    """Render the library's clips (the first ``limit`` by id, or ``sample`` of them drawn at random) into the
    dataset folder ``output`` (layout above).

    Args:
        library_url: a library URL or SQLite path (:func:`backend.library.open_library`).
        settings: image size, frames, fps (default 224², 16 frames at 8 fps).
        limit: only the first ``limit`` clips by id.
        sample: ``sample`` clips drawn without replacement with ``seed`` (all contents and sources, not just the
            first ones imported); a later run with a larger ``sample`` and the same seed keeps the earlier clips.
        renders_per_clip: renders of each clip (different avatar, camera, light, window).
        batch_clips: clips per Blender process.
        workers: parallel Blender processes (local Ray ``num_cpus`` or pool size).
        scheduler: ``ray`` (``address``: a running cluster, else local), ``process`` or ``inline`` (no parallelism).
        seed: randomisation seed; with the same seed a clip renders the same way on any machine.
        progress: ``update(fraction, stage)`` after every finished batch (raises ``Cancelled`` to stop; finished
            clips are kept).

    Returns:
        The dataset summary (``dataset.json``) plus ``rendered`` (clips rendered by this run), ``skipped`` (already
        done), ``seconds`` and ``frames_per_s`` (rendered frames per wall-clock second of this run).

    Raises:
        ValueError: for an unknown scheduler, bad counts or an empty library; FileNotFoundError: no library.
    """
    from backend.library import open_library

    settings = settings or RenderSettings()
    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; use one of {SCHEDULERS}")
    if renders_per_clip < 1 or batch_clips < 1 or workers < 1:
        raise ValueError("renders_per_clip, batch_clips and workers must be at least 1")
    with open_library(library_url, create=False) as library:
        clip_ids = [r.clip_id for r in library.clips()]
        library_name = library.url
    if not clip_ids:
        raise ValueError(f"library {library_url} has no clips; import some with `baton library import`")
    clip_ids = choose_clips(clip_ids, limit=limit, sample=sample, seed=seed)
    root = Path(output)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    todo = pending_items(root, clip_ids, renders_per_clip)
    total = len(clip_ids) * renders_per_clip
    skipped = total - len(todo)
    batches = [todo[i : i + batch_clips] for i in range(0, len(todo), batch_clips)]
    log.info("rendering %d clips (%d already done) in %d batches with %s", len(todo), skipped, len(batches),
             scheduler)  # fmt: skip
    args = (str(library_url), str(root), asdict(settings), int(seed), engine)
    started = time.perf_counter()
    rendered = 0

    def finished(entries: list[dict]) -> None:
        nonlocal rendered
        rendered += len(entries)
        log.info("rendered %d/%d clips (%.1f s)", skipped + rendered, total, time.perf_counter() - started)
        if progress is not None:
            progress.update((skipped + rendered) / total, "rendering clips")

    if scheduler == "inline" or not batches:
        for batch in batches:
            finished(render_batch(args[0], batch, *args[1:]))
    elif scheduler == "process":
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(render_batch, args[0], batch, *args[1:]) for batch in batches]
            try:
                for future in as_completed(futures):
                    finished(future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    else:
        _run_ray(batches, args, workers, address, finished)
    seconds = time.perf_counter() - started
    info = {"library": library_name, "settings": asdict(settings), "renders_per_clip": renders_per_clip,
            "seed": seed, "engine": engine}  # fmt: skip
    summary = write_index(root, info)
    frames = rendered * settings.frames
    return {**summary, "rendered": rendered, "skipped": skipped, "seconds": round(seconds, 3),
            "frames_per_s": round(frames / seconds, 3) if rendered and seconds > 0 else None}  # fmt: skip


def _run_ray(batches: list, args: tuple, workers: int, address: str | None, finished) -> None:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a dependency
        raise ValueError(f"scheduler 'ray' needs the ray package ({exc}); use --scheduler process") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})  # fmt: skip
    try:
        task = ray.remote(num_cpus=1, max_retries=1)(render_batch)
        pending = [task.remote(args[0], batch, *args[1:]) for batch in batches]
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                finished(ray.get(ready[0]))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started_here:
            ray.shutdown()
