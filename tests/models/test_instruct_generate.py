"""The shipped text-to-motion weights make what the prompt says: physical rules on generated smpl22 motions for
prompts phrased unlike the training captions, and seams of long / timeline generation.

Coordinates: a generated motion starts at the origin facing +Z, +Y up, the figure's left on +X (HumanML3D).
"""

from __future__ import annotations

import numpy as np
import pytest

from models.instruct import TimelineSegment, load_text_to_motion
from models.instruct.evaluation import seam_ratio
from models.instruct.rules import ACTIONS, bows, follow_rate, raises_both_arms, travel, waves_right_hand


@pytest.fixture(scope="module")
def generator():
    return load_text_to_motion()


#: Known gaps of the shipped CPU-trained weights (see the model card): kick has 1 training clip (bows, 13 clips, follow
#: since the bigram prior). Strict: when better weights ship it XPASSes, and the mark must go (issue 12 is reported
#: blocked on it: no more kick data here).
_GAPS = {"kick": "1 training clip"}


@pytest.mark.parametrize("action", [
    pytest.param(a, marks=pytest.mark.xfail(reason=f"shipped weights: {_GAPS[a]}", strict=True)) if a in _GAPS else a
    for a in ACTIONS])  # fmt: skip
def test_prompts_obey_their_physical_rule(generator, action):
    """Most samples (at least half of 4 phrasings x 3 variations) of each action obey its rule."""
    prompts, rule = ACTIONS[action]
    rate = follow_rate(generator, prompts, rule)
    assert rate >= 0.5, f"{action}: {rate:.0%} of the samples obey the rule"


def test_rules_reject_the_wrong_motion(generator):
    """The rules discriminate: a walk does not pass as a wave, a bow or both arms raised."""
    walk = generator.generate("a man strolls ahead at a relaxed pace", seconds=4.0, seed=0)[0].positions
    assert not waves_right_hand(walk) and not bows(walk) and not raises_both_arms(walk)


def test_long_motion_and_timeline_have_no_seams(generator):
    long = generator.generate("a person walks forward", seconds=20.0, seed=0)[0]
    assert long.num_frames == 400
    windows = generator._windows(np.ones(100, bool), np.zeros(100, dtype=np.int64))
    joins = [start * generator.frames_per_token for _, start, _, _ in windows[1:]]
    assert joins and seam_ratio(long.positions, joins) <= 1.0
    timeline = [TimelineSegment("a person walks forward", 0, 4), TimelineSegment("a person raises both arms", 4, 8),
                TimelineSegment("a person waves the right hand", 8, 12)]  # fmt: skip
    motions = generator.generate(timeline, seed=0, samples=3)
    assert all(m.num_frames == 240 for m in motions)
    for m in motions:
        assert seam_ratio(m.positions, [80, 160]) <= 1.0  # prompt changes are no faster than the clip itself
        assert travel(m.positions[:80]) > 0.8  # every sample walks first
    # the later prompts take over: the walk stops in every sample (under 0.5 m in 4-8 s) and the wave comes in some.
    # Raising both arms right after a walk is a known gap (1 of 16 samples over seeds 0-3 without the bigram prior,
    # 0 of 16 with it; on its own the prompt is followed, test_prompts_obey_their_physical_rule).
    assert all(travel(m.positions[90:160]) < 0.5 for m in motions)
    assert any(waves_right_hand(m.positions[170:]) for m in motions)


def test_a_new_timeline_prompt_is_guided_away_from_the_previous_one(generator, monkeypatch):
    """The uncond branch of each window's guidance: the null condition for the first prompt, the previous prompt for
    the first window of the next (its context tokens are the previous prompt's), the side-mirrored prompt for one
    that names a side."""
    import torch

    from models.instruct.generator import mirror_sides

    seen = []
    original = type(generator)._fill_base

    def spy(self, known, text, guidance, steps, rng, negative=None, prior_weight=0.0, prior_visible=None):
        seen.append((text[0].clone(), None if negative is None else negative[0].clone()))
        return original(self, known, text, guidance, steps, rng, negative, prior_weight, prior_visible)

    monkeypatch.setattr(type(generator), "_fill_base", spy)
    prompts = ["a person walks forward", "a person raises both arms", "a person waves the right hand"]
    generator.generate([TimelineSegment(p, 2 * i, 2 * i + 2) for i, p in enumerate(prompts)], seed=0)
    walk, arms, wave, mirrored = generator.embed(prompts + [mirror_sides(prompts[2])])
    assert len(seen) == 3 and seen[0][1] is None
    assert torch.equal(seen[1][0], arms) and torch.allclose(seen[1][1], walk)
    assert torch.equal(seen[2][0], wave) and torch.allclose(seen[2][1], mirrored)


def test_limb_speed_ignores_travel_and_measures_the_limbs():
    """limb_speed: a body carried along rigidly has none; a hand circling the root at radius r, angular speed w
    moves at r*w (the mean over the non-root joints, one of which stays still, is half of that)."""
    from models.instruct.evaluation import limb_speed

    t = np.arange(41) / 20.0
    body = np.zeros((41, 3, 3))
    body[:, 1] = [0.0, 0.5, 0.0]
    body[:, 2, 0], body[:, 2, 2] = 0.3 * np.cos(2.0 * t), 0.3 * np.sin(2.0 * t)
    carried = body + np.stack([1.4 * t, 0 * t, 0 * t], 1)[:, None]  # walking speed of travel adds nothing
    assert limb_speed(carried, 20.0) == pytest.approx(0.5 * 0.3 * 2.0, rel=1e-3)
    still = np.repeat(body[:1], 41, axis=0) + np.stack([1.4 * t, 0 * t, 0 * t], 1)[:, None]
    assert limb_speed(still, 20.0) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="T>=2"):
        limb_speed(body[:1], 20.0)


def test_generated_runs_swing_the_limbs_like_the_data(generator, shared_data):
    """A generated jog travels at a running speed; its limbs (joints relative to the root) must move at least 60 %
    as fast as in the Bandai Namco runs it was trained on (retargeted onto smpl22 at 20 fps, as for training), not
    glide. Without the bigram prior (``prior_weight=0``) the shipped weights glide: limbs at about half the data's
    speed (docs/text-to-motion.md, *Why generated runs glided, and the bigram prior*)."""
    from models.instruct.evaluation import limb_speed
    from models.motion.bvh import load_bvh
    from models.motion.kinematics import resample
    from models.motion.retarget import retarget
    from models.motion.skeleton import get_skeleton

    folder = shared_data / "bandai_namco_motion_dataset1" / "data"
    runs = [resample(retarget(load_bvh(folder / f"dataset-1_run_{s}_001.bvh"), get_skeleton("smpl22")).motion, 20.0)
            for s in ("active", "childish", "normal")]  # fmt: skip
    data = float(np.median([limb_speed(m.positions, m.fps) for m in runs]))
    limbs = {}
    for weight in (0.0, None):  # without the prior, and at the default weight
        jogs = generator.generate("a person runs forward", seconds=4.0, seed=0, samples=3,
                                  **({} if weight is None else {"prior_weight": weight}))  # fmt: skip
        assert min(travel(m.positions) for m in jogs) / 4.0 > 2.0  # it does travel at a running speed
        limbs[weight] = float(np.median([limb_speed(m.positions, m.fps) for m in jogs]))
    assert limbs[None] >= 0.6 * data, f"limbs {limbs[None]:.2f} m/s against the data's {data:.2f} m/s"
    assert limbs[0.0] < 0.6 * data  # the glide the prior removes
