"""Text-to-motion data: the HumanML3D-layout builder (real BVH clips retargeted onto smpl22) and loader (a real
HumanML3D motion from humanml3d_sample, a tiny folder written here)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from models.instruct.data import (
    FEATURE_DIM,
    HELD_OUT_PAIRS,
    SourceClip,
    build_dataset,
    caption_split,
    clip_split,
    is_held_out_phrasing,
    load_dataset,
    mean_std,
    mirror_joints,
    mirrored_entry,
    read_texts,
)
from models.motion.bvh import load_bvh
from models.motion.humanml3d import features_to_joints
from models.retrieval.captions import mirror_sides, mirrored_content


@pytest.fixture(scope="module")
def built(shared_data, tmp_path_factory):
    folder = shared_data / "bandai_namco_motion_dataset1" / "data"
    names = ["dataset-1_walk_normal_001", "dataset-1_bow_normal_001", "dataset-1_bow_proud_001",
             "dataset-1_walk-left_normal_001"]
    clips = [SourceClip(n, "bandai1", (lambda p=folder / f"{n}.bvh": load_bvh(p)), n.split("_")[1], n.split("_")[2])
             for n in names]  # fmt: skip
    clips[1].split = "test"
    cmu = shared_data / "cmu_mocap_subject131_bvh"
    first = sorted(cmu.glob("*.bvh"))[0]
    clips.append(SourceClip(first.stem, "cmu131", lambda: load_bvh(first), captions=["a person walks and stops"]))
    out = tmp_path_factory.mktemp("t2m") / "dataset"
    kit = shared_data / "tmr_text_motion_annotations" / "kitml" / "annotations.json"
    report = build_dataset(clips, out, captions_per_clip=8, kit_annotations=kit, mirror=True)
    report["source_frames"] = load_bvh(folder / f"{names[0]}.bvh").num_frames
    return out, report


def test_builder_writes_the_humanml3d_layout(built):
    out, report = built
    # 5 clips + the mirrors of the two Bandai train clips (the CMU clip's only caption is a held-out phrasing)
    assert report["clips"] == 7 and report["splits"] == {"train": 5, "val": 1, "test": 1}
    for sub in ("new_joints", "new_joint_vecs", "texts"):
        assert len(list((out / sub).glob("*"))) == 7
    vecs = np.load(out / "new_joint_vecs" / "bandai1_dataset-1_walk_normal_001.npy")
    joints = np.load(out / "new_joints" / "bandai1_dataset-1_walk_normal_001.npy")
    assert vecs.shape[1] == FEATURE_DIM and joints.shape == (vecs.shape[0], 22, 3)
    # 30 fps source -> 20 fps features (one row fewer than frames, as HumanML3D)
    assert abs(vecs.shape[0] - round(report["source_frames"] * 20 / 30)) <= 2
    # decoded joints stand on the floor and the walk travels forward (+Z after canonicalisation)
    assert joints[..., 1].min() > -0.05 and joints[-1, 0, 2] - joints[0, 0, 2] > 1.0
    assert np.load(out / "Mean.npy").shape == (FEATURE_DIM,) and (np.load(out / "Std.npy") > 0).all()
    assert (out / "test.txt").read_text().split() == ["bandai1_dataset-1_bow_normal_001"]


def test_held_out_pairs_and_phrasings(built):
    out, _ = built
    # bow/proud is a held-out pair: its (retrieval-train) clip goes to val, never to train
    assert ("bow", "proud") in HELD_OUT_PAIRS
    assert "bandai1_dataset-1_bow_proud_001" in (out / "val.txt").read_text().split()
    train_caps = read_texts(out / "texts" / "bandai1_dataset-1_walk_normal_001.txt")
    test_caps = read_texts(out / "texts" / "bandai1_dataset-1_bow_normal_001.txt")
    assert train_caps and test_caps
    assert not any(is_held_out_phrasing(c) for c in train_caps)
    assert all(is_held_out_phrasing(c) for c in test_caps)
    # the CMU clip keeps its own (explicit) captions
    cmu = next((out / "texts").glob("cmu131_*.txt"))
    assert read_texts(cmu) == ["a person walks and stops"]
    assert caption_split(["only one"], "test", 4) == ["only one"]  # falls back instead of leaving none
    assert clip_split(SourceClip("x", "bandai2", lambda: None, "walk", "elderly")) == "val"


def test_loader_reads_the_built_folder(built):
    out, _ = built
    data = load_dataset(out)
    assert set(data.splits) == {"train", "val", "test"} and len(data.splits["train"]) == 5
    assert data.index["bandai1_dataset-1_bow_normal_001"]["content"] == "bow"
    x = data.normalise(data.features[data.splits["train"][0]])
    assert x.dtype == np.float32 and np.isfinite(x).all()


def test_loader_reads_a_real_humanml3d_motion(shared_data, tmp_path):
    """humanml3d_sample has no texts/: the loader says so; with a caption file written here it trains the same way
    (its own Mean/Std, its train_val.txt split)."""
    sample = shared_data / "humanml3d_sample"
    with pytest.raises(ValueError, match="without texts"):
        load_dataset(sample)
    folder = tmp_path / "h3d"
    shutil.copytree(sample / "new_joint_vecs", folder / "new_joint_vecs")
    for name in ("Mean.npy", "Std.npy", "train_val.txt"):
        shutil.copy(sample / name, folder / name)
    (folder / "texts").mkdir()
    (folder / "texts" / "012314.txt").write_text("a man walks forward slowly.#a/DET man/NOUN#0.0#0.0\n")
    data = load_dataset(folder)
    assert data.splits["train"] == ["012314"] and data.texts["012314"] == ["a man walks forward slowly."]
    np.testing.assert_allclose(data.mean, np.load(sample / "Mean.npy"))
    released = np.load(sample / "new_joints" / "012314.npy")
    np.testing.assert_allclose(features_to_joints(data.features["012314"]), released[: len(data.features["012314"])],
                               atol=1e-4)  # fmt: skip


def test_loader_rejects_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="new_joint_vecs"):
        load_dataset(tmp_path)
    (tmp_path / "new_joint_vecs").mkdir()
    (tmp_path / "texts").mkdir()
    np.save(tmp_path / "new_joint_vecs" / "a.npy", np.zeros((30, 100), np.float32))
    (tmp_path / "texts" / "a.txt").write_text("a person jumps#x#0#0\n")
    with pytest.raises(ValueError, match="263"):
        load_dataset(tmp_path)


def test_mean_std_follows_the_humanml3d_recipe():
    rng = np.random.default_rng(0)
    features = [rng.normal(size=(50, FEATURE_DIM)) * np.linspace(0.5, 2, FEATURE_DIM) for _ in range(3)]
    mean, std = mean_std(features)
    stacked = np.concatenate(features)
    np.testing.assert_allclose(mean, stacked.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std[4:67], stacked.std(0)[4:67].mean(), rtol=1e-5)  # ric: group mean
    np.testing.assert_allclose(std[259:], stacked.std(0)[259:].mean() / 5.0, rtol=1e-5)  # contacts: / feat_bias


def test_train_clips_are_also_written_mirrored(built):
    """HumanML3D's mirror augmentation: M<id> is the train clip reflected left-right, with its sides swapped in the
    content label and the captions; test / val clips and the CMU clip (held-out phrasing only) get no mirror."""
    out, _ = built
    train = (out / "train.txt").read_text().split()
    assert "Mbandai1_dataset-1_walk_normal_001" in train and "Mbandai1_dataset-1_walk-left_normal_001" in train
    assert not list((out / "texts").glob("Mbandai1_dataset-1_bow*")) and not list((out / "texts").glob("Mcmu131*"))
    data = load_dataset(out)
    twin = data.index["Mbandai1_dataset-1_walk-left_normal_001"]
    assert twin["content"] == "walk-right" and twin["mirror_of"] == "bandai1_dataset-1_walk-left_normal_001"
    captions = data.texts["Mbandai1_dataset-1_walk-left_normal_001"]
    assert any("right" in c for c in captions) and not any("left" in c for c in captions)
    assert not any(is_held_out_phrasing(c) for c in captions)
    # the side-stepping walk travels to the subject's left (+X); its mirror travels as far to the right (-X)
    original = features_to_joints(data.features["bandai1_dataset-1_walk-left_normal_001"])
    mirrored = features_to_joints(data.features["Mbandai1_dataset-1_walk-left_normal_001"])
    assert len(mirrored) == len(original)
    shift, shift_m = original[-1, 0] - original[0, 0], mirrored[-1, 0] - mirrored[0, 0]
    assert shift[0] > 0.5 and shift_m[0] < -0.5 and abs(shift[0] + shift_m[0]) < 0.15 * abs(shift[0])
    # pose by pose it is the reflected original (root-relative, so the re-encoding's root drift does not count)
    expect = mirror_joints(original)
    error = np.linalg.norm((mirrored - mirrored[:, :1]) - (expect - expect[:, :1]), axis=-1)
    assert error.mean() < 0.01, error.mean()


def test_mirror_rules():
    assert mirror_sides("The Left hand up, then turns right") == "The Right hand up, then turns left"
    assert mirror_sides("walks leftwards, then rightward") == "walks rightwards, then leftward"
    assert mirror_sides("spins counter-clockwise, then clockwise") == "spins clockwise, then counterclockwise"
    assert mirror_sides("a person walks forward") is None and mirror_sides("he is outright bright") is None
    assert mirrored_content("walk-turn-left") == "walk-turn-right" and mirrored_content("bow") == "bow"
    joints = np.random.default_rng(0).normal(size=(5, 22, 3)).astype(np.float32)
    np.testing.assert_array_equal(mirror_joints(mirror_joints(joints)), joints)
    assert mirror_joints(joints)[2, 21, 0] == -joints[2, 20, 0]  # the left wrist lands on the right, x negated
    with pytest.raises(ValueError, match="22, 3"):
        mirror_joints(np.zeros((5, 24, 3)))
    features = np.zeros((30, FEATURE_DIM), np.float32)
    # a mirror that would fall into a held-out content x style pair is not written (wave-right-hand / exhausted)
    meta = {"content": "wave-left-hand", "style": "exhausted", "split": "train"}
    assert ("wave-right-hand", "exhausted") in HELD_OUT_PAIRS
    assert mirrored_entry("x", meta, features, ["a person waves the left hand"]) is None
    # nor one left with no train phrasing
    held = next(f"a person waves the right hand {i} times" for i in range(100)
                if is_held_out_phrasing(f"a person waves the right hand {i} times"))
    meta = {"content": "wave-left-hand", "style": "normal", "split": "train"}
    assert mirrored_entry("x", meta, features, [mirror_sides(held)]) is None
