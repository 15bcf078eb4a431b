"""``MODEL_CARD.md`` for a trained retrieval run: data, license, split, metrics, how it was made."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from models.licenses import is_noncommercial
from models.retrieval.datasets import MIN_GROUP_FOR_TEST, TEST_FRACTION, Clip
from models.retrieval.model import RetrievalConfig, _atomic

_LICENSES = {
    "bandai1": "Bandai Namco Research Motiondataset-1 — CC BY-NC 4.0 (non-commercial), (c) 2022 Bandai Namco Research",
    "bandai2": "Bandai Namco Research Motiondataset-2 — CC BY-NC 4.0 (non-commercial), (c) 2022 Bandai Namco Research",
    "cmu131": "CMU Graphics Lab Motion Capture Database, subject 131 — free for research and products, no resale "
    "(mocap.cs.cmu.edu; funded by NSF EIA-0196217)",
}


def _metric_rows(metrics: dict) -> list[str]:
    rows = ["| protocol | direction | R@1 | R@2 | R@3 | R@5 | R@10 | MedR |", "|---|---|---|---|---|---|---|---|"]
    for name, result in metrics.get("protocols", {}).items():
        for direction in ("text_to_motion", "motion_to_text"):
            m = result[direction]
            rows.append(f"| {name} | {direction.replace('_', ' ')} | " + " | ".join(
                f"{m[k]:.1f}" for k in ("R@1", "R@2", "R@3", "R@5", "R@10")) + f" | {m['MedR']:.1f} |")  # fmt: skip
    return rows


def _video_section(video: dict | None) -> list[str]:
    """The tri-modal part of the card (``baton train retrieval --video``), empty without it."""
    if not video:
        return []
    lines = [
        "## Video encoder (tri-modal training, LAVIMO)",
        "",
        f"Trained {video['steps']} steps on {video['train_items']} rendered mannequin clips of `{video['dataset']}` "
        f"(video terms weight {video['video_weight']:g}; the video enters as MediaPipe Pose keypoints lifted to the "
        "`mediapipe21` skeleton, `models/retrieval/trimodal.py`). Rendered clips of Bandai Namco motions are "
        "CC BY-NC 4.0 like the motions.",
        "",
    ]
    test = video.get("test")
    if test:
        lines += [f"Held-out rendered clips ({test['items']}, a person found in {test['video_found']}; chance R@10 "
                  f"{min(100.0, 1000.0 / test['items']):.1f}%):", "",
                  "| direction | R@1 | R@5 | R@10 | MedR |", "|---|---|---|---|---|"]  # fmt: skip
        for direction in ("video_to_motion", "motion_to_video", "text_to_motion"):
            m = test[direction]
            lines.append(f"| {direction.replace('_', ' ')} | {m['R@1']:.1f} | {m['R@5']:.1f} | {m['R@10']:.1f} | "
                         f"{m['MedR']:.1f} |")  # fmt: skip
        lines.append("")
    return lines


def write_model_card(run_dir: Path, config: RetrievalConfig, clips: list[Clip], metrics: dict, train_info: dict):
    """Write ``run_dir/MODEL_CARD.md`` (atomically). ``train_info`` has ``seconds``, ``final_loss``, ``command``."""
    counts = Counter((c.source, c.split) for c in clips)
    sources = sorted({c.source for c in clips})
    non_commercial = any(is_noncommercial(_LICENSES[s]) for s in sources)
    free = metrics.get("freeform", {})
    lines = [
        f"# Baton retrieval model ({config.encoder})",
        "",
        "Text <-> motion retrieval: frozen sentence encoder "
        f"`{config.text_encoder}` + trainable projection; motion encoder `{config.encoder}` on skeleton-normalised "
        f"body-part features ({config.fps:g} fps); joint space {config.embed_dim}-d, cosine similarity.",
        "",
        "## License of these weights",
        "",
        (
            "**Non-commercial use only (CC BY-NC 4.0).** These weights were trained on the Bandai Namco Research "
            "motion datasets (CC BY-NC 4.0, (c) 2022 Bandai Namco Research Inc.) and carry that license: they may "
            "be shared and adapted with attribution, not used commercially. Where Baton ships them "
            "(`models/retrieval/weights/default/`), they sit in their own folder with the license text (`LICENSE`); "
            "Baton's code stays Apache-2.0. Retrain without `bandai1`/`bandai2` (`--sources cmu131` plus your own "
            "data) for other uses."
            if non_commercial
            else "Trained only on data whose terms allow commercial use (see below)."
        ),
        "",
        "## Data",
        "",
        *[f"- `{s}`: {counts[(s, 'train')]} train / {counts[(s, 'test')]} held-out clips. {_LICENSES[s]}"
          for s in sources],  # fmt: skip
        "- Caption variety: templates, synonyms and word order over the content x style labels, plus KIT-ML "
        "sentences (MIT annotations via TMR) about the same actions.",
        f"- Held-out split: per (source, content) group with >= {MIN_GROUP_FOR_TEST} clips, the first "
        f"{TEST_FRACTION:.0%} of clips ordered by SHA-1 of the file stem (deterministic). The model is trained on "
        "the training clips only: held-out clips (and their captions as pairs) were never seen, so the metrics "
        "below, and evaluations that use this model as a judge on held-out clips, are not contaminated.",
        *([f"- Cross-skeleton views: every clip also retargeted onto {', '.join(config.training.views)} "
           "(`self` = its own skeleton) with leg / spine / arm proportions jittered by up to ±12%; a training "
           f"sample uses one of its views with probability {config.training.view_probability:g} "
           "(`models/retrieval/augment.py`)."] if config.training.views else []),  # fmt: skip
        "",
        "## Metrics (held-out split)",
        "",
        f"{metrics.get('test_pairs', 0)} test pairs, {metrics.get('distinct_captions', 0)} distinct captions "
        "(content x style labels repeat, so the whole-set protocol is pessimistic; see threshold).",
        "",
        *_metric_rows(metrics),
        "",
        "Free-form queries (hand-written, unlike the training captions), text -> motion on the held-out clips:",
        "",
        f"- content-level hit: R@1 {free.get('content', {}).get('R@1', float('nan')):.1f}%, "
        f"R@5 {free.get('content', {}).get('R@5', float('nan')):.1f}%, "
        f"R@10 {free.get('content', {}).get('R@10', float('nan')):.1f}% "
        f"({free.get('content', {}).get('queries', 0)} queries)",
        f"- style-level hit: R@1 {free.get('style', {}).get('R@1', float('nan')):.1f}%, "
        f"R@5 {free.get('style', {}).get('R@5', float('nan')):.1f}% "
        f"({free.get('style', {}).get('queries', 0)} queries; chance R@1 "
        f"{free.get('style', {}).get('chance', {}).get('R@1', float('nan')):.1f}%)",
        "",
        "## Training",
        "",
        f"- command: `{train_info.get('command', 'baton train retrieval')}`",
        f"- {config.training.steps} steps, batch {config.training.batch_size}, "
        f"AdamW lr {config.training.learning_rate}, "
        f"InfoNCE tau {config.training.temperature}, negative filtering at sentence cosine > "
        f"{config.training.filter_threshold}; {train_info.get('seconds', 0):.0f} s on CPU; final loss "
        f"{train_info.get('final_loss', float('nan')):.3f}.",
        "- full resolved config: `config.json`; all metrics: `metrics.json`.",
        "",
        *_video_section(metrics.get("video")),
    ]
    text = "\n".join(lines)
    _atomic(run_dir / "MODEL_CARD.md", lambda tmp: Path(tmp).write_text(text))
    _atomic(run_dir / "metrics.json", lambda tmp: Path(tmp).write_text(json.dumps(metrics, indent=2)))
