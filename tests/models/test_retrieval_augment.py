"""Cross-skeleton training views (models/retrieval/augment.py): real clips retargeted onto SMPL-24, KIT-21, CMU-31 and
their own skeleton with jittered proportions keep their motion in the body-part features, clips retargeted together
do not leak into each other, and load_clips caches the views."""

from __future__ import annotations

import numpy as np
import pytest

from models.motion.bvh import load_bvh
from models.retrieval.augment import VIEW_SKELETONS, jitter_proportions, skeleton_views, view_skeletons
from models.retrieval.body_parts import body_parts
from models.retrieval.datasets import load_clips
from models.retrieval.features import canonical_points, tmr_frames

BANDAI = "bandai_namco_motion_dataset1/data/dataset-1_{}.bvh"


def _pose_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of the pelvis-relative body points (body heights) over the common frames."""
    n = min(len(a), len(b))
    return float(np.abs(tmr_frames(a[:n])[:, :240] - tmr_frames(b[:n])[:, :240]).mean())


def _motion_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of the frame-to-frame changes of the pelvis-relative body points (the movement,
    without the body's static shape) over the common frames."""
    n = min(len(a), len(b))
    return float(np.abs(np.diff(tmr_frames(a[:n])[:, :240] - tmr_frames(b[:n])[:, :240], axis=0)).mean())


def test_jittered_proportions_scale_each_region_by_one_factor(shared_data):
    skeleton = load_bvh(shared_data / BANDAI.format("walk_normal_001")).skeleton
    jittered = jitter_proportions(skeleton, np.random.default_rng(3), jitter=0.12)
    assert jittered.joint_names == skeleton.joint_names and jittered.parents == skeleton.parents
    parts = body_parts(skeleton)
    lengths, new = skeleton.bone_lengths(), jittered.bone_lengths()
    for chains in ((0, 1), (2,), (3, 4)):  # legs, spine, arms
        joints = [j for c in chains for j in parts.chains[c][1:] if lengths[j] > 1e-6]
        ratios = new[joints] / lengths[joints]
        assert np.allclose(ratios, ratios[0], atol=1e-5) and 0.88 - 1e-6 <= ratios[0] <= 1.12 + 1e-6
    assert not np.allclose(new, lengths)


def test_views_keep_the_motion_on_every_skeleton(shared_data):
    names = ("walk_normal_001", "bow_normal_001", "run_normal_001")
    motions = [load_bvh(shared_data / BANDAI.format(n)) for n in names]
    motions.append(load_bvh(shared_data / "cmu_mocap_subject131_bvh" / "131_01.bvh"))
    targets = view_skeletons(shared_data)
    assert list(targets) == list(VIEW_SKELETONS) and targets["cmu31"].num_joints == 31
    views = skeleton_views(motions, targets, 10.0, np.random.default_rng(0))
    bases = [canonical_points(m, 10.0) for m in motions]
    for i, (base, clip_views) in enumerate(zip(bases, views, strict=True)):
        assert len(clip_views) == len(VIEW_SKELETONS)
        others = min(_motion_difference(base, other) for j, other in enumerate(bases) if j != i)
        for view in clip_views:
            assert view.shape == base.shape and view.dtype == np.float32 and np.isfinite(view).all()
            assert _pose_difference(view, base) < 0.06  # the same body posture, within a few cm per body height
            assert _motion_difference(view, base) < 0.5 * others  # the same movement, unlike the other clips
    with pytest.raises(ValueError, match="unknown view skeleton"):
        view_skeletons(shared_data, ("smpl24", "robot"))


def test_clips_retargeted_together_do_not_leak_into_each_other(shared_data):
    """Retargeting joins a chunk's clips in time; each clip's views must match retargeting it alone."""
    motions = [load_bvh(shared_data / BANDAI.format(n)) for n in ("walk_normal_001", "bow_normal_001")]
    targets = view_skeletons(shared_data, ("kit21", "self"))
    together = skeleton_views(motions, targets, 10.0, np.random.default_rng(5))
    alone = skeleton_views(motions[:1], targets, 10.0, np.random.default_rng(5))  # the same jitter draws
    for joined, single in zip(together[0], alone[0], strict=True):
        assert np.abs(joined - single).max() < 0.02


def test_load_clips_computes_and_caches_views(shared_data, tmp_path):
    clips = load_clips(shared_data, sources=("cmu131",), cache_dir=tmp_path, views=("smpl24", "self"))
    assert len(clips) == 3 and all(len(c.views) == 2 for c in clips)
    assert all(v.shape == c.points.shape for c in clips for v in c.views)
    assert len(list(tmp_path.glob("views-cmu131-*.npz"))) == 1
    again = load_clips(shared_data, sources=("cmu131",), cache_dir=tmp_path, views=("smpl24", "self"))
    for a, b in zip(clips, again, strict=True):
        np.testing.assert_array_equal(np.stack([a.views[0][:10], a.views[1][:10]]),
                                      np.stack([b.views[0][:10], b.views[1][:10]]))  # fmt: skip
    assert all(c.views == [] for c in load_clips(shared_data, sources=("cmu131",), cache_dir=tmp_path))
