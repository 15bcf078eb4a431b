"""The ConductorMotion100 folder format (../shared/DESIGN.md §4; VirtualConductor / Diffusion-Conductor).

Layout::

    ROOT/{train,val,test}/<i>/mel.npy      (T90, 128) float, 90 Hz log-mel spectrogram scaled to [0, 1]
    ROOT/{train,val,test}/<i>/motion.npy   (T30, 13, 2) float, 30 fps COCO-13 keypoints, image coords in [0, 1], y down

``<i>`` is a whole number (train 0-5268, val 0-290, test 0-293 in the released set). The music:motion frame ratio is
exactly 3:1 (``T90 == 3 * T30``); released clips are 60 s (5400 and 1800 frames), other lengths are accepted.
Readers validate shapes, the ratio and the value ranges and raise ``ValueError`` naming the file; the writer is
atomic (a sample folder appears complete or not at all).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.motion.motion import Motion
from models.motion.skeleton import get_skeleton

SPLITS = ("train", "val", "test")
MUSIC_FPS = 90
MOTION_FPS = 30
MEL_BINS = 128
NUM_KEYPOINTS = 13
#: Music frames per motion frame.
FRAME_RATIO = MUSIC_FPS // MOTION_FPS
#: Values may exceed [0, 1] by this much (float round-off) before a sample is rejected.
RANGE_TOLERANCE = 1e-5


@dataclass(frozen=True, eq=False)
class ConductorSample:
    """One ConductorMotion100 clip.

    Attributes:
        mel: ``(T90, 128)`` float32 mel spectrogram in [0, 1] at 90 Hz (frequency axis flipped, as released).
        motion: ``(T30, 13, 2)`` float32 COCO-13 keypoints at 30 fps, normalised image coordinates (y down).
        split: ``train`` / ``val`` / ``test`` (or ``""`` when read from a loose folder).
        index: the sample number ``<i>`` (``-1`` when the folder name is not a number).
        path: the sample folder, when read from disk.
    """

    mel: np.ndarray
    motion: np.ndarray
    split: str = ""
    index: int = -1
    path: Path | None = None

    @property
    def num_motion_frames(self) -> int:
        """``T30``, the number of 30 fps motion frames (the mel has three times as many)."""
        return int(self.motion.shape[0])

    @property
    def duration_s(self) -> float:
        """Clip length in seconds (``T30 / 30``)."""
        return self.num_motion_frames / MOTION_FPS

    def to_motion(self) -> Motion:
        """The keypoints as a 2D :class:`Motion` on ``coco13`` at 30 fps."""
        metadata = {"format": "conductormotion100", "split": self.split, "index": self.index}
        if self.path is not None:
            metadata["source_path"] = str(self.path)
        return Motion(get_skeleton("coco13"), MOTION_FPS, self.motion, metadata=metadata)


def validate_conductor_arrays(
    mel: np.ndarray, motion: np.ndarray, source: str = "sample"
) -> tuple[np.ndarray, np.ndarray]:
    """Check a (mel, motion) pair against the format and return them as float32.

    Raises:
        ValueError: naming ``source`` when ``mel`` is not ``(T90, 128)``, ``motion`` is not ``(T30, 13, 2)``,
            ``T30`` is 0, ``T90 != 3 * T30``, a value is NaN / infinite, or a value lies outside [0, 1].
        TypeError: when an array is not numeric.
    """
    arrays = {}
    for name, value in (("mel", mel), ("motion", motion)):
        array = np.asarray(value)
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise TypeError(f"{source}: {name} must be a numeric array, got dtype {array.dtype}")
        arrays[name] = array.astype(np.float32, copy=False)
    mel, motion = arrays["mel"], arrays["motion"]
    if mel.ndim != 2 or mel.shape[1] != MEL_BINS:
        raise ValueError(f"{source}: mel must be (T90, {MEL_BINS}) at {MUSIC_FPS} Hz, got shape {mel.shape}")
    if motion.ndim != 3 or motion.shape[1:] != (NUM_KEYPOINTS, 2):
        raise ValueError(
            f"{source}: motion must be (T30, {NUM_KEYPOINTS}, 2) COCO-13 keypoints at {MOTION_FPS} fps, "
            f"got shape {motion.shape}"
        )
    if motion.shape[0] == 0:
        raise ValueError(f"{source}: motion has zero frames")
    if mel.shape[0] != FRAME_RATIO * motion.shape[0]:
        raise ValueError(
            f"{source}: mel has {mel.shape[0]} frames but motion has {motion.shape[0]}; the music:motion frame "
            f"ratio must be exactly {FRAME_RATIO}:1 (expected {FRAME_RATIO * motion.shape[0]} mel frames)"
        )
    for name, array in (("mel", mel), ("motion", motion)):
        if not np.isfinite(array).all():
            raise ValueError(f"{source}: {name} contains NaN or infinity")
        low, high = float(array.min()), float(array.max())
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            raise ValueError(f"{source}: {name} values must lie in [0, 1], found {low:.4g}..{high:.4g}")
    return mel, motion


def _load_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (a ConductorMotion100 sample folder holds mel.npy and motion.npy)")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({exc})") from None


def read_conductor_sample(sample_dir: str | os.PathLike) -> ConductorSample:
    """Read and validate one sample folder ``ROOT/<split>/<i>/``.

    Raises:
        FileNotFoundError: when the folder or one of its two files is missing.
        ValueError / TypeError: see :func:`validate_conductor_arrays`.
    """
    sample_dir = Path(sample_dir)
    if not sample_dir.is_dir():
        raise FileNotFoundError(f"ConductorMotion100 sample folder not found: {sample_dir}")
    mel, motion = validate_conductor_arrays(
        _load_array(sample_dir / "mel.npy"), _load_array(sample_dir / "motion.npy"), str(sample_dir)
    )
    split = sample_dir.parent.name if sample_dir.parent.name in SPLITS else ""
    index = int(sample_dir.name) if sample_dir.name.isdigit() else -1
    return ConductorSample(mel, motion, split, index, sample_dir)


def load_conductor_motion(path: str | os.PathLike) -> Motion:
    """A lone ``motion.npy`` ``(T30, 13, 2)`` as a 2D :class:`Motion` on ``coco13`` at 30 fps (no mel needed).

    Raises:
        FileNotFoundError: when the file is missing.
        ValueError: when the array is not ``(T30, 13, 2)`` with values in [0, 1].
    """
    path = Path(path)
    motion = _load_array(path)
    _, motion = validate_conductor_arrays(np.zeros((3 * len(motion), MEL_BINS), np.float32), motion, str(path))
    metadata = {"format": "conductormotion100", "source_path": str(path)}
    return Motion(get_skeleton("coco13"), MOTION_FPS, motion, metadata=metadata)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown ConductorMotion100 split {split!r}; expected one of {', '.join(SPLITS)}")


def write_conductor_sample(
    root: str | os.PathLike, split: str, index: int, mel: np.ndarray, motion: np.ndarray, *, overwrite: bool = False
) -> Path:
    """Write ``ROOT/<split>/<index>/{mel,motion}.npy`` (float32) atomically and return the sample folder.

    The arrays are validated first; both files are written into a temporary folder beside the target, which is
    then renamed into place, so a failure leaves no partial sample and an existing sample untouched.

    Raises:
        ValueError: for an unknown split, a negative index, invalid arrays, or an existing sample without
            ``overwrite``.
    """
    _check_split(split)
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or index < 0:
        raise ValueError(f"sample index must be a whole number >= 0, got {index!r}")
    target = Path(root) / split / str(int(index))
    mel, motion = validate_conductor_arrays(mel, motion, str(target))
    if target.exists() and not overwrite:
        raise ValueError(f"{target} already exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old = None
    try:
        np.save(staging / "mel.npy", mel)
        np.save(staging / "motion.npy", motion)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(staging, target)
    except BaseException:
        if old is not None and old.exists() and not target.exists():
            os.replace(old, target)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def list_conductor_samples(root: str | os.PathLike, split: str) -> list[Path]:
    """Sample folders of ``split`` in numeric order (names that are not whole numbers are ignored).

    Raises:
        ValueError: for an unknown split.
        FileNotFoundError: when ``ROOT/<split>`` does not exist.
    """
    _check_split(split)
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"ConductorMotion100 split folder not found: {split_dir}")
    return sorted((p for p in split_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def iter_conductor_split(root: str | os.PathLike, split: str) -> Iterator[ConductorSample]:
    """Read every sample of ``split`` in numeric order (each validated; a bad one raises naming its folder)."""
    for sample_dir in list_conductor_samples(root, split):
        yield read_conductor_sample(sample_dir)


def window_starts(num_motion_frames: int, window_frames: int, hop_frames: int) -> list[int]:
    """Motion-frame starts of the windows of ``window_frames`` every ``hop_frames`` that fit in the clip."""
    if window_frames <= 0 or hop_frames <= 0:
        raise ValueError(f"window and hop must be positive frame counts, got {window_frames} and {hop_frames}")
    return list(range(0, num_motion_frames - window_frames + 1, hop_frames))


def cut_window(sample: ConductorSample, start: int, window_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mel (3*W, 128), motion (W, 13, 2))`` of the window starting at motion frame ``start`` (aligned 3:1).

    Raises:
        ValueError: when the window does not fit inside the clip.
    """
    if start < 0 or window_frames <= 0 or start + window_frames > sample.num_motion_frames:
        raise ValueError(
            f"window [{start}, {start + window_frames}) does not fit a clip of {sample.num_motion_frames} frames"
        )
    m0 = start * FRAME_RATIO
    return sample.mel[m0 : m0 + window_frames * FRAME_RATIO], sample.motion[start : start + window_frames]


class ConductorWindowSampler:
    """Aligned (mel, motion) training windows from one split (Diffusion-Conductor trains on 30 s windows).

    Iterating yields ``(mel (W*3, 128), motion (W, 13, 2))`` float32 pairs, ``W = window_s * 30``: with ``hop_s``
    every window on that grid (deterministic order), otherwise one window per clip at a random start per epoch,
    clips shuffled, drawn from ``numpy.random.default_rng(seed + epoch)``. Clips shorter than a window are skipped.
    Samples are read once and kept in memory.

    Raises:
        ValueError: for a non-positive window or hop, or a split with no clip at least one window long.
    """

    def __init__(
        self, root: str | os.PathLike, split: str = "train", window_s: float = 30.0, hop_s: float | None = None,
        seed: int = 0,
    ) -> None:  # fmt: skip
        self.window_frames = int(round(window_s * MOTION_FPS))
        if self.window_frames <= 0:
            raise ValueError(f"window_s must be positive, got {window_s!r}")
        self.hop_frames = None if hop_s is None else int(round(hop_s * MOTION_FPS))
        if self.hop_frames is not None and self.hop_frames <= 0:
            raise ValueError(f"hop_s must be positive, got {hop_s!r}")
        self.seed = seed
        self.epoch = 0
        self.samples = [s for s in iter_conductor_split(root, split) if s.num_motion_frames >= self.window_frames]
        if not self.samples:
            raise ValueError(f"{Path(root) / split}: no clip is at least {window_s} s long")

    def __len__(self) -> int:
        if self.hop_frames is None:
            return len(self.samples)
        return sum(len(window_starts(s.num_motion_frames, self.window_frames, self.hop_frames)) for s in self.samples)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self.hop_frames is not None:
            for sample in self.samples:
                for start in window_starts(sample.num_motion_frames, self.window_frames, self.hop_frames):
                    yield cut_window(sample, start, self.window_frames)
            return
        rng = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1
        for k in rng.permutation(len(self.samples)):
            sample = self.samples[k]
            start = int(rng.integers(0, sample.num_motion_frames - self.window_frames + 1))
            yield cut_window(sample, start, self.window_frames)
