"""ConductorMotion100 folder format: write a tiny dataset, read it back, reject bad samples."""

from __future__ import annotations

import numpy as np
import pytest

from models.motion.conductor_dataset import (
    ConductorWindowSampler,
    cut_window,
    iter_conductor_split,
    list_conductor_samples,
    read_conductor_sample,
    write_conductor_sample,
)
from models.motion.io import load_motion


def _pair(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = int(seconds * 30)
    mel = rng.random((frames * 3, 128), dtype=np.float32)
    motion = np.clip(0.5 + 0.1 * rng.standard_normal((frames, 13, 2)), 0, 1).astype(np.float32)
    return mel, motion


@pytest.fixture
def tiny_root(tmp_path):
    """train: clips 0, 1, 2, 10 (numeric order matters); val: 0; test: 0 — a few seconds each."""
    written = {}
    for split, index, seconds in (("train", 0, 4), ("train", 1, 3), ("train", 2, 6), ("train", 10, 2),
                                  ("val", 0, 3), ("test", 0, 5)):  # fmt: skip
        pair = _pair(seconds, seed=index + 100 * len(split))
        write_conductor_sample(tmp_path, split, index, *pair)
        written[(split, index)] = pair
    return tmp_path, written


def test_written_folder_reads_back_identically(tiny_root):
    root, written = tiny_root
    assert (root / "train" / "2" / "mel.npy").is_file() and (root / "train" / "2" / "motion.npy").is_file()
    for split in ("train", "val", "test"):
        samples = list(iter_conductor_split(root, split))
        expected = sorted(k[1] for k in written if k[0] == split)
        assert [s.index for s in samples] == expected
        for sample in samples:
            mel, motion = written[(split, sample.index)]
            np.testing.assert_array_equal(sample.mel, mel)
            np.testing.assert_array_equal(sample.motion, motion)
            assert sample.split == split
            assert sample.mel.shape[0] == 3 * sample.motion.shape[0]


def test_sample_as_motion(tiny_root):
    root, written = tiny_root
    sample = read_conductor_sample(root / "test" / "0")
    motion = sample.to_motion()
    assert motion.skeleton.name == "coco13" and motion.fps == 30.0 and motion.is_2d
    assert motion.num_frames == 150 and motion.duration_s == pytest.approx(5.0) == sample.duration_s
    np.testing.assert_array_equal(motion.positions, written[("test", 0)][1])


def test_lone_motion_npy_loads_as_coco13(tiny_root):
    root, written = tiny_root
    motion = load_motion(root / "val" / "0" / "motion.npy")
    assert motion.skeleton.name == "coco13" and motion.fps == 30.0 and motion.num_frames == 90
    np.testing.assert_array_equal(motion.positions, written[("val", 0)][1])
    np.save(root / "far.npy", written[("val", 0)][1] + 2.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_motion(root / "far.npy")


def test_windows_are_aligned(tiny_root):
    root, written = tiny_root
    sample = read_conductor_sample(root / "train" / "2")
    mel, motion = cut_window(sample, 30, 60)
    np.testing.assert_array_equal(motion, written[("train", 2)][1][30:90])
    np.testing.assert_array_equal(mel, written[("train", 2)][0][90:270])
    with pytest.raises(ValueError, match="does not fit"):
        cut_window(sample, 150, 60)


def test_window_sampler(tiny_root):
    root, _ = tiny_root
    grid = ConductorWindowSampler(root, "train", window_s=3.0, hop_s=1.0)
    windows = list(grid)
    # clips of 4, 3, 6 s give 2 + 1 + 4 windows of 3 s every 1 s; the 2 s clip is too short
    assert len(windows) == len(grid) == 7
    assert all(m.shape == (270, 128) and k.shape == (90, 13, 2) for m, k in windows)
    random = ConductorWindowSampler(root, "train", window_s=3.0, seed=7)
    first, second = list(random), list(random)
    assert len(first) == len(random) == 3
    again = list(ConductorWindowSampler(root, "train", window_s=3.0, seed=7))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again, strict=True))  # seeded
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, second, strict=True))  # new epoch, new draw
    with pytest.raises(ValueError, match="at least 30"):
        ConductorWindowSampler(root, "train", window_s=30.0)


@pytest.mark.parametrize(
    ("mel_shape", "motion_shape", "message"),
    [
        ((300, 128), (100, 13, 3), r"\(T30, 13, 2\)"),
        ((300, 64), (100, 13, 2), r"\(T90, 128\)"),
        ((299, 128), (100, 13, 2), "3:1"),
        ((600, 128), (100, 13, 2), "3:1"),
        ((0, 128), (0, 13, 2), "zero frames"),
        ((300,), (100, 13, 2), r"\(T90, 128\)"),
    ],
)
def test_bad_shapes_rejected(tmp_path, mel_shape, motion_shape, message):
    with pytest.raises(ValueError, match=message):
        write_conductor_sample(tmp_path, "train", 0, np.zeros(mel_shape), np.zeros(motion_shape))
    assert not (tmp_path / "train" / "0").exists()


def test_bad_values_rejected(tmp_path):
    mel, motion = _pair(2, seed=0)
    bad = motion.copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_conductor_sample(tmp_path, "val", 0, mel, bad)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_conductor_sample(tmp_path, "val", 0, mel * 2.0, motion)
    with pytest.raises(TypeError, match="numeric"):
        write_conductor_sample(tmp_path, "val", 0, mel.astype(str), motion)
    with pytest.raises(ValueError, match="split"):
        write_conductor_sample(tmp_path, "training", 0, mel, motion)
    with pytest.raises(ValueError, match="index"):
        write_conductor_sample(tmp_path, "val", -1, mel, motion)
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "val"]) and not (tmp_path / "val" / "0").exists()


def test_existing_sample_is_kept_unless_overwrite(tmp_path):
    first, second = _pair(2, seed=1), _pair(2, seed=2)
    target = write_conductor_sample(tmp_path, "test", 3, *first)
    with pytest.raises(ValueError, match="already exists"):
        write_conductor_sample(tmp_path, "test", 3, *second)
    with pytest.raises(ValueError, match="3:1"):
        write_conductor_sample(tmp_path, "test", 3, second[0][:-1], second[1], overwrite=True)
    np.testing.assert_array_equal(read_conductor_sample(target).motion, first[1])
    write_conductor_sample(tmp_path, "test", 3, *second, overwrite=True)
    np.testing.assert_array_equal(read_conductor_sample(target).motion, second[1])
    assert sorted(p.name for p in (tmp_path / "test").iterdir()) == ["3"]  # no staging folders left


def test_reader_reports_the_bad_file(tmp_path):
    mel, motion = _pair(2, seed=3)
    folder = write_conductor_sample(tmp_path, "train", 0, mel, motion)
    np.save(folder / "motion.npy", motion[:, :, :1])
    with pytest.raises(ValueError, match=r"train/0: motion must be"):
        read_conductor_sample(folder)
    with pytest.raises(ValueError, match="motion must be"):
        list(iter_conductor_split(tmp_path, "train"))
    (folder / "mel.npy").unlink()
    with pytest.raises(FileNotFoundError, match="mel.npy"):
        read_conductor_sample(folder)
    with pytest.raises(FileNotFoundError, match="split folder"):
        list_conductor_samples(tmp_path, "val")
