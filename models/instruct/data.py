"""Text-to-motion training data in the HumanML3D layout (../shared/DESIGN.md §6).

A dataset folder holds::

    new_joints/<id>.npy        (T + 1, 22, 3) float32 canonical joints (smpl22, metres, 20 fps, +Y up, floor y=0)
    new_joint_vecs/<id>.npy    (T, 263) float32 HumanML3D features (models.motion.humanml3d)
    texts/<id>.txt             one caption a line, HumanML3D style ``caption#tokens#start#end`` (tokens may be empty)
    Mean.npy, Std.npy          (263,) feature statistics of the train split (HumanML3D's grouped recipe)
    train.txt, val.txt, test.txt, all.txt      ids, one a line
    index.json                 per id: source, name, content, style, split (Baton-built folders only)

:func:`build_dataset` writes such a folder from labelled clips: every clip is retargeted onto the t2m SMPL-22
skeleton with the Baton retarget solver (foot lock on), resampled to 20 fps and encoded with
:func:`models.motion.humanml3d.joints_to_features`. :func:`load_dataset` reads a Baton-built folder or a real
HumanML3D folder (``texts/`` captions, split files; ``Mean.npy`` / ``Std.npy`` computed when absent).

Splits (deterministic, no randomness): the clip split of :func:`models.retrieval.datasets.assign_split` (15 % of
each (source, content) group by SHA-1 of the file stem), so a retrieval judge trained on its train split has never
seen a test clip. On top of it, *held-out content x style pairs* (:data:`HELD_OUT_PAIRS`) never train the
generator: their test clips stay ``test``, their other clips go to ``val`` (unused in training). *Held-out
phrasings*: a caption whose SHA-1 is 0 mod 4 is only ever given to test / val clips, the others only to train
clips, so test prompts are phrasings the generator never saw.

*Mirroring* (HumanML3D's augmentation, ``M<id>`` files; opt-in, ``mirror=True``): every train clip is also written
left-right mirrored (:func:`mirror_joints`: x negated, left and right joints swapped) with its captions' sides swapped
(:func:`mirror_sides`) and its content label mirrored (``walk-turn-left`` -> ``walk-turn-right``), doubling the
train split. A mirror that would land in a held-out content x style pair, or whose caption would be a held-out
phrasing, is not written. Test and val clips are never mirrored, so the evaluation split is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.motion.humanml3d import T2M, features_to_joints, joints_to_features
from models.motion.motion import Motion
from models.progress import Progress
from models.retrieval.captions import mirror_sides, mirrored_content

log = logging.getLogger(__name__)

FEATURE_DIM = T2M.feature_dim
FPS = T2M.fps
#: Content x style pairs whose clips never train the generator (their test clips are evaluated).
HELD_OUT_PAIRS = frozenset({
    ("walk", "elderly"), ("wave-right-hand", "exhausted"), ("raise-up-both-hands", "feminine"), ("run", "youthful"),
    ("walk-turn-left", "masculine"),  # dataset-2 (about 40 clips each)
    ("bow", "proud"),  # dataset-1 (one clip)
})  # fmt: skip
#: smpl22 joint each joint becomes under a left-right mirror (HumanML3D's ``l_idx1``/``r_idx1`` swaps, all chains).
SMPL22_MIRROR = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20)
#: HumanML3D's ``feat_bias``: the root and foot-contact groups' std is divided by it (weights them up 5x).
FEAT_BIAS = 5.0
MIN_FRAMES = 24  # 1.2 s at 20 fps: shorter clips are skipped


@dataclass
class SourceClip:
    """One clip to put into a dataset.

    Attributes:
        name: unique name (file stem); the dataset id is derived from it.
        source: ``bandai1`` | ``bandai2`` | ``cmu131`` | ``library`` | ``bvh``.
        load: returns the clip as a :class:`Motion` (any skeleton the retarget solver maps).
        content / style: labels (captions come from :func:`models.retrieval.captions.caption_pool`), or ``None``.
        captions: explicit captions (used when there is no content label).
    """

    name: str
    source: str
    load: Callable[[], Motion]
    content: str | None = None
    style: str | None = None
    captions: list[str] = field(default_factory=list)
    split: str = "train"


def is_held_out_phrasing(text: str) -> bool:
    """True for captions reserved for test / val clips (SHA-1 of the lower-cased text is 0 mod 4)."""
    return int(hashlib.sha1(text.strip().lower().encode()).hexdigest(), 16) % 4 == 0


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """Left-right mirror of ``(T, 22, 3)`` smpl22 positions (+X is the subject's left): x negated, left and right
    joints swapped (:data:`SMPL22_MIRROR`). Returns a new float32 array. Raises ``ValueError`` for another shape."""
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[1:] != (len(SMPL22_MIRROR), 3):
        raise ValueError(f"mirror_joints needs (T, 22, 3) smpl22 positions, got {joints.shape}")
    out = joints[:, SMPL22_MIRROR].astype(np.float32)
    out[..., 0] *= -1.0
    return out


def mirror_features(features: np.ndarray) -> np.ndarray:
    """``(T, 263)`` t2m features of the left-right mirrored motion (decoded to joints, mirrored, re-encoded; the
    joints get one linearly extrapolated frame so the encoding, which drops one frame, keeps ``T``)."""
    joints = mirror_joints(features_to_joints(features))
    joints = np.concatenate([joints, 2.0 * joints[-1:] - joints[-2:-1]], axis=0)
    return joints_to_features(joints, FPS)


def mirrored_entry(cid: str, meta: dict, features: np.ndarray, captions: Sequence[str]):
    """``(id, meta, features, captions)`` of the mirror of train clip ``cid``, or ``None`` when it must not be
    written: its content x style pair is held out, or none of its captions is a train phrasing."""
    content = mirrored_content(meta.get("content"))
    if (content, meta.get("style")) in HELD_OUT_PAIRS:
        return None
    mirrored = [mirror_sides(c) or c for c in captions]
    mirrored = [c for c in dict.fromkeys(mirrored) if not is_held_out_phrasing(c)]
    if not mirrored:
        return None
    new = {**meta, "content": content, "split": "train", "mirror_of": cid}
    mirrored_features = mirror_features(features)
    new["frames"] = int(mirrored_features.shape[0])
    return f"M{cid}", new, mirrored_features, mirrored


def caption_split(captions: Sequence[str], split: str, keep: int) -> list[str]:
    """The captions of ``captions`` a clip of ``split`` may use (held-out phrasings for test / val), at most
    ``keep``; falls back to all when the filter leaves none."""
    wanted = split != "train"
    chosen = [c for c in captions if is_held_out_phrasing(c) == wanted]
    return (chosen or list(captions))[:keep]


def shared_clips(data_dir: Path, tmp: str, sources: Sequence[str] = ("bandai1", "bandai2", "cmu131"),
                 progress: Progress | None = None) -> list[SourceClip]:  # fmt: skip
    """The labelled clips of the shared data folder (Bandai Namco 1 + 2, CMU 131) with the retrieval split.

    Dataset-2 is unpacked into ``tmp`` (the caller removes it). Raises ``FileNotFoundError`` for a missing source.
    """
    from models.motion.bvh import load_bvh
    from models.retrieval.captions import cmu_captions
    from models.retrieval.datasets import (
        BANDAI2_ARCHIVE,
        Clip,
        assign_split,
        bandai_labels,
        cmu_descriptions,
        kit_texts_by_cmu_trial,
    )

    entries: list[tuple[Clip, Path]] = []
    for source in sources:
        if source == "bandai1":
            folder = data_dir / "bandai_namco_motion_dataset1"
            entries += [(Clip(b.stem, source, c, s), b) for b, c, s in bandai_labels(folder)]
        elif source == "bandai2":
            archive = data_dir / BANDAI2_ARCHIVE
            if not archive.is_file():
                raise FileNotFoundError(f"bandai2: archive not found at {archive}")
            if progress:
                progress.update(0.0, "unpacking Bandai Namco dataset-2")
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
            entries += [(Clip(b.stem, source, c, s), b) for b, c, s in bandai_labels(Path(tmp))]
        elif source == "cmu131":
            descriptions = cmu_descriptions(data_dir / "cmu_mocap_index" / "cmu_mocap_clip_descriptions.csv")
            kit = kit_texts_by_cmu_trial(data_dir / "tmr_text_motion_annotations" / "kitml" / "annotations.json")
            for bvh in sorted((data_dir / "cmu_mocap_subject131_bvh").glob("*.bvh")):
                caps = cmu_captions(descriptions.get(bvh.stem, "a motion capture clip"), kit.get(bvh.stem, []))
                entries.append((Clip(bvh.stem, source, None, None, caps), bvh))
        else:
            raise ValueError(f"unknown source {source!r}; use bandai1, bandai2, cmu131")
    assign_split([clip for clip, _ in entries])
    out = []
    for clip, path in entries:
        out.append(SourceClip(clip.name, clip.source, (lambda p=path: load_bvh(p)), clip.content, clip.style,
                              list(clip.captions), split=clip.split))  # fmt: skip
    return out


def clip_split(clip: SourceClip) -> str:
    """The generator's split of a clip: the retrieval split, with held-out pairs' train clips moved to ``val``."""
    if (clip.content, clip.style) in HELD_OUT_PAIRS and clip.split == "train":
        return "val"
    return clip.split


def mean_std(features: Iterable[np.ndarray], spec=T2M) -> tuple[np.ndarray, np.ndarray]:
    """HumanML3D's ``Mean.npy`` / ``Std.npy`` recipe: per-dimension mean; std averaged within each feature group,
    the root and foot-contact groups divided by :data:`FEAT_BIAS`. Returns float32 ``(D,)`` arrays."""
    stacked = np.concatenate([np.asarray(f, np.float64) for f in features], axis=0)
    mean, std = stacked.mean(0), stacked.std(0)
    out = std.copy()
    for key, sl in spec.slices().items():
        bias = FEAT_BIAS if key in ("root_rot_velocity", "root_linear_velocity", "root_y", "foot_contact") else 1.0
        out[sl] = std[sl].mean() / bias
    return mean.astype(np.float32), np.maximum(out, 1e-4).astype(np.float32)


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def clip_features(motion: Motion) -> np.ndarray:
    """``(T, 263)`` t2m features of any motion: retarget onto smpl22 (foot lock on), then HumanML3D encoding at
    20 fps. Raises ``ValueError`` when the solver maps nothing or the clip is degenerate."""
    from models.motion.retarget import retarget

    if motion.skeleton.name == "smpl22":
        positions = motion.positions
    else:
        positions = retarget(motion, "smpl22", foot_lock=True).motion.positions
    return joints_to_features(positions, motion.fps)


def _write_clip(output: Path, cid: str, features: np.ndarray, captions: Sequence[str]) -> None:
    _atomic_save(output / "new_joint_vecs" / f"{cid}.npy", features)
    _atomic_save(output / "new_joints" / f"{cid}.npy", features_to_joints(features))
    _atomic_text(output / "texts" / f"{cid}.txt", "".join(f"{c}##0.0#0.0\n" for c in captions))


def build_dataset(
    clips: Sequence[SourceClip],
    output: Path,
    *,
    captions_per_clip: int = 12,
    kit_annotations: Path | None = None,
    reuse_existing: bool = False,
    mirror: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Write a HumanML3D-layout folder from ``clips`` (module docstring). Existing files of the same id are
    replaced; the split files, ``Mean.npy`` / ``Std.npy`` and ``index.json`` are written last.

    Args:
        clips: the clips (their ``split`` set, e.g. by :func:`shared_clips`).
        output: the dataset folder (created).
        captions_per_clip: captions written per clip.
        kit_annotations: TMR's KIT-ML ``annotations.json`` for human-written caption variety (optional).
        reuse_existing: reuse a clip's ``new_joint_vecs`` file already in ``output`` instead of retargeting it
            again (resuming an interrupted build, or several builders filling one folder from both ends).
        mirror: also write each train clip left-right mirrored (module docstring; :func:`mirrored_entry`).
        progress: optional progress sink (raises ``Cancelled`` between clips).

    Returns:
        ``{"clips": n, "skipped": [...], "splits": {split: count}, "frames": total}``.

    Raises:
        ValueError: when no clip could be converted.
    """
    from models.retrieval.captions import caption_pool, mine_kit_texts

    output = Path(output)
    for sub in ("new_joints", "new_joint_vecs", "texts"):
        (output / sub).mkdir(parents=True, exist_ok=True)
    kit = mine_kit_texts(kit_annotations) if kit_annotations is not None and Path(kit_annotations).is_file() else None
    index, skipped, train_features = {}, [], []
    for i, clip in enumerate(clips):
        if progress is not None and i % 20 == 0:
            progress.update(i / max(1, len(clips)), f"retargeting clips onto smpl22 ({i}/{len(clips)})")
        cid = f"{clip.source}_{clip.name}".replace("/", "_")
        existing = output / "new_joint_vecs" / f"{cid}.npy"
        try:
            features = np.load(existing) if reuse_existing and existing.is_file() else clip_features(clip.load())
        except (ValueError, OSError) as exc:
            skipped.append(f"{clip.name}: {exc}")
            continue
        if features.shape[0] < MIN_FRAMES:
            skipped.append(f"{clip.name}: only {features.shape[0]} frames at 20 fps")
            continue
        split = clip_split(clip)
        if clip.content is not None:
            pool = caption_pool(clip.content, clip.style, count=64, seed=0, kit_texts=kit)
        else:
            pool = list(dict.fromkeys(clip.captions)) or ["a person moves"]
        captions = caption_split(pool, split, captions_per_clip)
        index[cid] = {"source": clip.source, "name": clip.name, "content": clip.content, "style": clip.style,
                      "split": split, "frames": int(features.shape[0])}  # fmt: skip
        entries = [(cid, index[cid], features, captions)]
        if mirror and split == "train":
            twin = mirrored_entry(cid, index[cid], features, captions)
            if twin is not None:
                entries.append(twin)
                index[twin[0]] = twin[1]
        for eid, meta, array, texts in entries:
            _write_clip(output, eid, array, texts)
            if meta["split"] == "train":
                train_features.append(array)
    if not index:
        raise ValueError(f"no clip could be converted ({len(skipped)} skipped: {skipped[:3]})")
    if not train_features:
        train_features = [np.load(output / "new_joint_vecs" / f"{cid}.npy") for cid in index]
    mean, std = mean_std(train_features)
    _atomic_save(output / "Mean.npy", mean)
    _atomic_save(output / "Std.npy", std)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    index = dict(sorted(index.items()))
    for cid, meta in index.items():
        splits[meta["split"]].append(cid)
    for name, ids in splits.items():
        _atomic_text(output / f"{name}.txt", "".join(f"{cid}\n" for cid in ids))
    _atomic_text(output / "all.txt", "".join(f"{cid}\n" for cid in index))
    _atomic_text(output / "index.json", json.dumps(index, indent=1))
    if progress is not None:
        progress.update(1.0, "dataset written")
    return {"clips": len(index), "skipped": skipped, "splits": {k: len(v) for k, v in splits.items()},
            "frames": int(sum(m["frames"] for m in index.values()))}  # fmt: skip


def build_shared_dataset(data_dir: Path, output: Path, *, sources: Sequence[str] = ("bandai1", "bandai2", "cmu131"),
                         captions_per_clip: int = 12, mirror: bool = False,
                         progress: Progress | None = None) -> dict:  # fmt: skip
    """:func:`build_dataset` over the shared data (Bandai Namco 1 + 2, CMU 131; KIT-ML texts for variety)."""
    data_dir = Path(data_dir)
    with tempfile.TemporaryDirectory(prefix="baton-t2m-") as tmp:
        clips = shared_clips(data_dir, tmp, sources, progress)
        kit = data_dir / "tmr_text_motion_annotations" / "kitml" / "annotations.json"
        return build_dataset(clips, output, captions_per_clip=captions_per_clip, kit_annotations=kit, mirror=mirror,
                             progress=progress)  # fmt: skip


@dataclass
class T2MData:
    """A loaded HumanML3D-layout dataset.

    Attributes:
        root: the folder.
        features: ``{id: (T, 263) float32}`` unnormalised features.
        texts: ``{id: [caption, ...]}``.
        splits: ``{"train" | "val" | "test": [id, ...]}`` (ids with features and texts only).
        mean / std: ``(263,)`` float32 normalisation statistics.
        index: ``{id: {"source", "content", "style", ...}}`` (empty for plain HumanML3D folders).
    """

    root: Path
    features: dict[str, np.ndarray]
    texts: dict[str, list[str]]
    splits: dict[str, list[str]]
    mean: np.ndarray
    std: np.ndarray
    index: dict[str, dict] = field(default_factory=dict)

    def normalise(self, features: np.ndarray) -> np.ndarray:
        """``(features - mean) / std`` as float32."""
        return ((features - self.mean) / self.std).astype(np.float32)


def read_texts(path: Path) -> list[str]:
    """Captions of a HumanML3D ``texts/<id>.txt`` (the part before the first ``#`` on each line)."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        caption = line.split("#", 1)[0].strip()
        if caption:
            out.append(caption)
    return out


def _read_ids(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def load_dataset(root: str | os.PathLike, *, min_frames: int = 8) -> T2MData:
    """Read a HumanML3D-layout folder (Baton-built or a real HumanML3D / HumanML3D-style folder).

    Splits come from ``train.txt`` / ``val.txt`` / ``test.txt`` (``train_val.txt`` counts as train when
    ``train.txt`` is absent); ids listed in no split file are train. Motions without captions, shorter than
    ``min_frames`` or with NaN are skipped (logged). ``Mean.npy`` / ``Std.npy`` are computed from the train split
    when absent.

    Raises:
        FileNotFoundError: when ``new_joint_vecs/`` is missing.
        ValueError: when no motion with captions and 263-d features remains (the message says what was missing).
    """
    root = Path(root)
    vec_dir, text_dir = root / "new_joint_vecs", root / "texts"
    if not vec_dir.is_dir():
        raise FileNotFoundError(f"{root}: no new_joint_vecs/ folder (a HumanML3D-layout dataset)")
    features, texts, missing_text, bad = {}, {}, 0, 0
    for path in sorted(vec_dir.glob("*.npy")):
        cid = path.stem
        text_path = text_dir / f"{cid}.txt"
        captions = read_texts(text_path) if text_path.is_file() else []
        if not captions:
            missing_text += 1
            continue
        array = np.load(path, allow_pickle=False)
        if array.ndim != 2 or array.shape[1] != FEATURE_DIM or array.shape[0] < min_frames or not np.isfinite(
                array).all():  # fmt: skip
            bad += 1
            continue
        features[cid], texts[cid] = array.astype(np.float32), captions
    if not features:
        raise ValueError(f"{root}: no usable motion ({missing_text} without texts/<id>.txt captions, {bad} not "
                         f"(T>={min_frames}, {FEATURE_DIM}) finite features)")  # fmt: skip
    if missing_text or bad:
        log.warning("%s: skipped %d motions without captions and %d with unusable features", root, missing_text, bad)
    train = _read_ids(root / "train.txt") or _read_ids(root / "train_val.txt")
    val, test = _read_ids(root / "val.txt"), _read_ids(root / "test.txt")
    listed = set(train) | set(val) | set(test)
    splits = {"train": [i for i in train if i in features] + sorted(i for i in features if i not in listed),
              "val": [i for i in val if i in features], "test": [i for i in test if i in features]}  # fmt: skip
    if not splits["train"]:
        raise ValueError(f"{root}: the train split has no usable motion")
    if (root / "Mean.npy").is_file() and (root / "Std.npy").is_file():
        mean, std = np.load(root / "Mean.npy").astype(np.float32), np.load(root / "Std.npy").astype(np.float32)
        if mean.shape != (FEATURE_DIM,) or std.shape != (FEATURE_DIM,):
            raise ValueError(f"{root}: Mean.npy / Std.npy must be ({FEATURE_DIM},), got {mean.shape} / {std.shape}")
    else:
        mean, std = mean_std(features[i] for i in splits["train"])
    std = np.maximum(std, 1e-4).astype(np.float32)
    index = json.loads((root / "index.json").read_text()) if (root / "index.json").is_file() else {}
    return T2MData(root, features, texts, splits, mean, std, index)
