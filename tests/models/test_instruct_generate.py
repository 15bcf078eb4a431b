"""The shipped text-to-motion weights make what the prompt says: physical rules on generated smpl22 motions for
prompts phrased unlike the training captions, and seams of long / timeline generation.

Coordinates: a generated motion starts at the origin facing +Z, +Y up, the figure's left on +X (HumanML3D).
"""

from __future__ import annotations

import numpy as np
import pytest

from models.instruct import TimelineSegment, load_text_to_motion
from models.instruct.data import mirror_joints
from models.instruct.evaluation import seam_ratio

PELVIS, HEAD, L_SHOULDER, R_SHOULDER, L_WRIST, R_WRIST = 0, 15, 16, 17, 20, 21
L_HIP, R_HIP, L_ANKLE, R_ANKLE = 1, 2, 7, 8


@pytest.fixture(scope="module")
def generator():
    return load_text_to_motion()


def facing_yaw(p: np.ndarray) -> np.ndarray:
    """Heading angle per frame (radians, + = turned towards the figure's left / +X) from hips and shoulders."""
    across = (p[:, R_HIP] - p[:, L_HIP]) + (p[:, R_SHOULDER] - p[:, L_SHOULDER])
    forward = np.cross([0.0, 1.0, 0.0], across)
    return np.unwrap(np.arctan2(forward[:, 0], forward[:, 2]))


def forward_dirs(p: np.ndarray) -> np.ndarray:
    yaw = facing_yaw(p)
    return np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], axis=1)


def travel(p: np.ndarray) -> float:
    return float(np.linalg.norm(p[-1, PELVIS, [0, 2]] - p[0, PELVIS, [0, 2]]))


def swings(signal: np.ndarray, min_range: float) -> int:
    """Direction changes of a smoothed 1-D signal, counted only between extremes ``min_range`` apart."""
    s = np.convolve(signal, np.ones(3) / 3, mode="valid")
    count, last_extreme, direction = 0, s[0], 0
    for v in s[1:]:
        if direction >= 0 and v < last_extreme - min_range:
            count += direction > 0
            direction, last_extreme = -1, v
        elif direction <= 0 and v > last_extreme + min_range:
            count += direction < 0
            direction, last_extreme = 1, v
        elif (direction > 0 and v > last_extreme) or (direction < 0 and v < last_extreme):
            last_extreme = v
    return count


def waves_right_hand(p: np.ndarray) -> bool:
    above = p[:, R_WRIST, 1] > p[:, R_SHOULDER, 1]
    lateral = p[above, R_WRIST, 0] - p[above, R_SHOULDER, 0] if above.sum() > 5 else np.zeros(2)
    return bool(above.mean() >= 0.25 and swings(lateral, 0.04) >= 2)


def walks(p: np.ndarray, fps: float, low: float, high: float) -> bool:
    speed = travel(p) / (len(p) / fps)
    return bool(low <= speed <= high)


def raises_right_arm_only(p: np.ndarray) -> bool:
    right_up = (p[:, R_WRIST, 1] > p[:, HEAD, 1]).mean()
    left_up = (p[:, L_WRIST, 1] > p[:, HEAD, 1]).mean()
    return bool(right_up >= 0.2 and left_up < 0.05)


def raises_both_arms(p: np.ndarray) -> bool:
    both = (p[:, R_WRIST, 1] > p[:, HEAD, 1]) & (p[:, L_WRIST, 1] > p[:, HEAD, 1])
    return bool(both.mean() >= 0.2)


def bows(p: np.ndarray) -> bool:
    drop = p[0, HEAD, 1] - p[:, HEAD, 1].min()
    return bool(drop >= 0.15 and travel(p) < 0.8)


def kicks(p: np.ndarray) -> bool:
    lift = p[:, [L_ANKLE, R_ANKLE], 1] - p[:, [L_ANKLE, R_ANKLE], 1].min(0)
    return bool(lift.max() >= 0.3)


def punches(p: np.ndarray) -> bool:
    forward = forward_dirs(p)
    reach = np.einsum("tjc,tc->tj", p[:, [L_WRIST, R_WRIST]] - p[:, [PELVIS]], forward)
    at_shoulder = np.abs(p[:, [L_WRIST, R_WRIST], 1] - p[:, [R_SHOULDER], 1]) < 0.3
    return bool((reach * at_shoulder).max() >= 0.4)


def mirrored(rule):
    """The rule for the other side: applied to the left-right mirrored motion (x negated, sides swapped)."""
    return lambda p: rule(mirror_joints(p))


def turns(p: np.ndarray, sign: float) -> bool:
    return bool(sign * (facing_yaw(p)[-1] - facing_yaw(p)[0]) > 0.5)


#: Per action: prompts phrased unlike the training captions (the first one is the single prompt this test used before
#: 2026-12-06) and the physical rule a generated motion must obey.
ACTIONS = {
    "wave right hand": (["someone greets a friend by waving the right hand overhead", "a person waves the right hand",
                         "someone waves hello with the right hand", "a man waves his right arm"], waves_right_hand),
    "wave left hand": (["someone greets a friend by waving the left hand overhead", "a person waves the left hand",
                        "someone waves hello with the left hand", "a man waves his left arm"],
                       mirrored(waves_right_hand)),
    "walk": (["a man strolls ahead at a relaxed pace", "a person walks forward", "someone walks straight ahead",
              "a woman walks at a normal pace"], lambda p: walks(p, 20.0, 0.4, 2.2)),
    "jog": (["a woman jogs ahead quickly", "a person runs forward", "someone is jogging", "the figure jogs forward"],
            lambda p: walks(p, 20.0, 2.2, 6.0)),
    "turn left": (["the figure walks while curving round to its left", "a person walks and turns to the left",
                   "someone walks forward then turns left", "a woman walks while turning left"],
                  lambda p: turns(p, 1.0)),
    "turn right": (["the figure walks while curving round to its right", "a person walks and turns to the right",
                    "someone walks forward then turns right", "a woman walks while turning right"],
                   lambda p: turns(p, -1.0)),
    "raise right arm only": (["somebody puts the right arm straight up in the air", "a person raises the right arm",
                              "someone lifts their right hand up high", "the man puts his right arm up"],
                             raises_right_arm_only),
    "raise left arm only": (["somebody puts the left arm straight up in the air", "a person raises the left arm",
                             "someone lifts their left hand up high", "the man puts his left arm up"],
                            mirrored(raises_right_arm_only)),
    "raise both arms": (["somebody holds both arms high above the head", "a person raises both arms",
                         "someone lifts both hands above the head", "the man throws both arms up in the air"],
                        raises_both_arms),
    "bow": (["the actor bends at the waist in a respectful bow", "a person bows", "someone bows politely",
             "the man bows deeply"], bows),
    "kick": (["a fighter kicks his leg out", "a person kicks", "a man does a high kick",
              "a soccer player kicks a ball"], kicks),
    "punch": (["a boxer throws a punch with the fist", "a person punches", "someone throws a punch",
               "a man punches forward with his fist"], punches),
}  # fmt: skip

#: Known gaps of the shipped CPU-trained weights (see the model card): kick has 1 training clip and bow 13. Strict:
#: when better weights ship these XPASS, and the marks must go (issue 12 stays open until they do).
_GAPS = {"kick": "1 training clip", "bow": "13 training clips"}


def follow_rate(generator, prompts: list[str], rule) -> float:
    """Fraction of samples obeying ``rule``: three variations (seed 0, default guidance, 4 s) of every prompt."""
    results = [rule(m.positions) for prompt in prompts for m in generator.generate(prompt, seconds=4.0, seed=0,
                                                                                    samples=3)]  # fmt: skip
    return sum(results) / len(results)


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
    # the later prompts take over (after a walk the shipped weights follow them in some samples, not all)
    assert any(raises_both_arms(m.positions[90:160]) for m in motions)
    assert any(waves_right_hand(m.positions[170:]) for m in motions)


def test_a_new_timeline_prompt_is_guided_away_from_the_previous_one(generator, monkeypatch):
    """The uncond branch of each window's guidance: the null condition for the first prompt, the previous prompt for
    the first window of the next (its context tokens are the previous prompt's), the side-mirrored prompt for one
    that names a side."""
    import torch

    from models.instruct.generator import mirror_sides

    seen = []
    original = type(generator)._fill_base

    def spy(self, known, text, guidance, steps, rng, negative=None):
        seen.append((text[0].clone(), None if negative is None else negative[0].clone()))
        return original(self, known, text, guidance, steps, rng, negative)

    monkeypatch.setattr(type(generator), "_fill_base", spy)
    prompts = ["a person walks forward", "a person raises both arms", "a person waves the right hand"]
    generator.generate([TimelineSegment(p, 2 * i, 2 * i + 2) for i, p in enumerate(prompts)], seed=0)
    walk, arms, wave, mirrored = generator.embed(prompts + [mirror_sides(prompts[2])])
    assert len(seen) == 3 and seen[0][1] is None
    assert torch.equal(seen[1][0], arms) and torch.allclose(seen[1][1], walk)
    assert torch.equal(seen[2][0], wave) and torch.allclose(seen[2][1], mirrored)
