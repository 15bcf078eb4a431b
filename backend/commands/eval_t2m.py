"""Evaluate the text-to-motion generator on the held-out split, in a retrieval model's embedding space.

Rows: ``ground_truth`` (the test motions themselves), ``generated`` (the generator, one sample per test prompt, the
test clip's duration) and ``retrieval_baseline`` (the training clip whose caption is nearest to the prompt in MiniLM
space, cropped to the same duration). Metrics per row: FID against the ground truth, R-precision top-1/2/3 (batches
of 32), MM-Dist, Diversity, MultiModality (generated only), content accuracy (the judge's nearest content prototype
= the prompt's content), foot skate (cm/frame in contact), jitter (m/s²) and limb speed (m/s, joints relative to the
root: a motion that glides has a normal root speed and a low limb speed). Test prompts are held-out phrasings; the
test clips are the retrieval split's test clips, so a judge trained by ``baton train retrieval`` never saw them.
``prompt_following`` is judge-free: per action of :data:`models.instruct.rules.ACTIONS` (hand-written prompts, four
phrasings each), the share of 4 s samples that obey the action's physical rule (:func:`~models.instruct.rules.
prompt_following`).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from blender_addon.client import TEXT_GUIDANCE

log = logging.getLogger("baton.eval.t2m")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default=None, help="a `baton train t2m` run folder (default: shipped weights)")
    parser.add_argument("--judge", default=None,
                        help="retrieval model folder (default: models/retrieval/weights/default)")  # fmt: skip
    parser.add_argument("--dataset", type=Path, required=True,
                        help="HumanML3D-layout folder with the test split (e.g. RUN_DIR/dataset of `baton train t2m`)")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="held-out split to evaluate: test (report) or val (tune sampling settings on it)")
    parser.add_argument("--max-items", type=int, default=None,
                        help="prompts to evaluate (default: the whole split; fewer: a subset drawn with --seed)")
    parser.add_argument("--guidance", type=float, default=TEXT_GUIDANCE)
    parser.add_argument("--steps", type=int, default=10, help="masked-decoding iterations")
    parser.add_argument("--prior-weight", type=float, default=None,
                        help="weight of the bigram prior in masked decoding (default: the generator's; 0 = off)")
    parser.add_argument("--mm-prompts", type=int, default=16, help="prompts for MultiModality")
    parser.add_argument("--mm-samples", type=int, default=6, help="samples per MultiModality prompt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def default_judge() -> Path:
    """The shipped retrieval weights folder."""
    return Path(__file__).resolve().parents[2] / "models" / "retrieval" / "weights" / "default"


def _row(judge, text_emb, motions, gt_emb, prototypes, labels, fps, seed, gt=False) -> tuple[dict, np.ndarray]:
    from models.instruct import evaluation as ev

    emb = judge.embed_motion(motions)
    row = {
        "FID": 0.0 if gt else round(ev.fid(emb, gt_emb), 4),
        "R_precision": {k: round(v, 2) for k, v in ev.r_precision(text_emb, emb, seed=seed).items()},
        "MM_Dist": round(ev.mm_dist(text_emb, emb), 4),
        "Diversity": round(ev.diversity(emb, seed=seed), 4),
        "foot_skate_cm": round(float(np.mean([ev.foot_skate(m.positions, m.fps) for m in motions])), 4),
        "jitter_m_s2": round(float(np.mean([ev.motion_jitter(m.positions, m.fps) for m in motions])), 4),
        "limb_speed_m_s": round(float(np.mean([ev.limb_speed(m.positions, m.fps) for m in motions])), 4),
    }
    if prototypes is not None:
        row["content_accuracy"] = round(ev.content_accuracy(emb, prototypes, labels), 2)
    return row, emb


def run(args: argparse.Namespace) -> int:
    import torch

    from models.instruct import evaluation as ev
    from models.instruct import load_text_to_motion
    from models.instruct.data import load_dataset
    from models.instruct.generator import DEFAULT_PRIOR_WEIGHT
    from models.instruct.rules import prompt_following
    from models.motion.humanml3d import features_to_joints
    from models.motion.motion import Motion
    from models.motion.skeleton import get_skeleton
    from models.retrieval.captions import canonical_caption
    from models.retrieval.model import load_retrieval_model
    from models.retrieval.text import SentenceEncoder

    if args.max_items is not None and args.max_items < 2:
        raise ValueError(f"--max-items must be >= 2, got {args.max_items}")
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.prior_weight is not None and not args.prior_weight >= 0:  # also refuses NaN
        raise ValueError(f"--prior-weight must be a number >= 0, got {args.prior_weight}")
    torch.set_num_threads(max(1, args.threads))
    started = time.monotonic()
    data = load_dataset(args.dataset)
    test = sorted(data.splits[args.split])  # load_dataset always has train, val and test
    if len(test) < 2:
        raise ValueError(f"{args.dataset}: the {args.split} split has {len(test)} motions; need at least 2")
    rng = np.random.default_rng(args.seed)
    if args.max_items is not None and len(test) > args.max_items:
        test = sorted(rng.choice(test, args.max_items, replace=False).tolist())
    judge_dir = Path(args.judge) if args.judge else default_judge()
    judge = load_retrieval_model(judge_dir)
    generator = load_text_to_motion(args.weights)
    prior_weight = DEFAULT_PRIOR_WEIGHT if args.prior_weight is None else float(args.prior_weight)
    skeleton = get_skeleton("smpl22")
    fps = 20.0
    max_frames = int(generator.max_tokens * generator.frames_per_token)

    prompts, gt, frames_of = [], [], []
    for cid in test:
        captions = data.texts[cid]
        prompts.append(captions[int(rng.integers(len(captions)))])
        joints = features_to_joints(data.features[cid])[:max_frames]
        gt.append(Motion(skeleton, fps, joints))
        frames_of.append(len(joints))

    # nearest-training-clip baseline (MiniLM caption similarity)
    encoder = SentenceEncoder()
    train_ids = data.splits["train"]
    owners: dict[str, list[str]] = {}
    for cid in train_ids:
        for c in data.texts[cid]:
            owners.setdefault(c, []).append(cid)
    unique = sorted(owners)
    cap_emb = encoder.encode(unique)
    prompt_emb = encoder.encode(prompts)
    nearest = (prompt_emb @ cap_emb.T).argmax(1)
    baseline = []
    for i, k in enumerate(nearest):
        clips = owners[unique[k]]  # several clips share a caption: take one deterministically per item
        joints = features_to_joints(data.features[clips[int(rng.integers(len(clips)))]])[: frames_of[i]]
        baseline.append(Motion(skeleton, fps, joints))

    generated = []
    gen_started = time.monotonic()
    for i, prompt in enumerate(prompts):
        seconds = max(1.0, frames_of[i] / fps)
        generated.append(generator.generate(prompt, seconds=seconds, seed=args.seed + i, guidance=args.guidance,
                                             steps=args.steps, prior_weight=prior_weight)[0])
        if i % 25 == 0:
            log.info("generated %d/%d", i + 1, len(prompts))
    gen_seconds = time.monotonic() - gen_started

    contents = [data.index.get(cid, {}).get("content") for cid in test]
    prototypes, labels = None, None
    if all(contents):
        known = sorted(set(contents) | {m["content"] for m in data.index.values() if m.get("content")})
        prototypes = judge.embed_text([canonical_caption(c) for c in known])
        labels = [known.index(c) for c in contents]
    text_emb = judge.embed_text(prompts)
    gt_row, gt_emb = _row(judge, text_emb, gt, None, prototypes, labels, fps, args.seed, gt=True)
    gen_row, _ = _row(judge, text_emb, generated, gt_emb, prototypes, labels, fps, args.seed)
    base_row, _ = _row(judge, text_emb, baseline, gt_emb, prototypes, labels, fps, args.seed)

    # MultiModality: several samples of the same prompt
    groups = []
    for i in range(min(args.mm_prompts, len(prompts))):
        samples = generator.generate(prompts[i], seconds=max(1.0, frames_of[i] / fps), seed=args.seed + 1000 + i,
                                     samples=args.mm_samples, guidance=args.guidance, steps=args.steps,
                                     prior_weight=prior_weight)  # fmt: skip
        groups.append(judge.embed_motion(samples))
    gen_row["MultiModality"] = round(ev.multimodality(groups, seed=args.seed), 4)
    following = prompt_following(generator, seed=args.seed, guidance=args.guidance, steps=args.steps,
                                 prior_weight=prior_weight)
    base_row["MultiModality"] = 0.0  # a retrieval returns the same clip for a prompt

    report = {
        "items": len(test), "dataset": str(args.dataset), "judge": str(judge_dir),
        "weights": str(generator.run_dir), "split": args.split, "guidance": args.guidance, "steps": args.steps,
        "prior_weight": generator.effective_prior_weight(prior_weight),
        "seed": args.seed,
        "rows": {"ground_truth": gt_row, "generated": gen_row, "retrieval_baseline": base_row},
        "prompt_following": following,
        "ratios": {
            "R_precision_top3_vs_ground_truth": round(gen_row["R_precision"]["top3"]
                                                      / max(1e-9, gt_row["R_precision"]["top3"]), 4),
            "FID_vs_retrieval_baseline": round(gen_row["FID"] / max(1e-9, base_row["FID"]), 4),
            "limb_speed_vs_ground_truth": round(gen_row["limb_speed_m_s"] / max(1e-9, gt_row["limb_speed_m_s"]), 4),
        },
        "generation_s_per_item": round(gen_seconds / len(prompts), 4),
        "seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip
    if args.json:
        print(json.dumps(report))
    else:
        for name, row in report["rows"].items():
            print(f"{name:20s} FID {row['FID']:.3f}  R@3 {row['R_precision']['top3']:.1f}%  "
                  f"content {row.get('content_accuracy', float('nan')):.1f}%  skate {row['foot_skate_cm']:.2f} cm")
        print("prompt following " + "  ".join(f"{k} {v:.2f}" for k, v in following.items()))
    return 0
