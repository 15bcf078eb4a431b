"""Evaluate voice commands on the spoken-instruction corpus's held-out splits: content accuracy of the motions
generated from the *text* of the instruction, from its audio by the *end-to-end* path and by the *cascaded* path,
side by side (the text-to-motion judge of ``baton eval t2m``: the retrieval model's nearest content prototype).

Per split (default ``test_voice``: the held-out voice, clean, and ``test_voice_snr10``: the same at 10 dB SNR):
``content_accuracy`` per condition (%, a refused instruction counts as wrong), ``refused`` (%), the cascaded
transcripts' WER against the spoken text, and the end-to-end nearest caption's content top-1 (judge-free). Items
are the split's utterances whose content the generator's dataset has (``--dataset``), a deterministic subset of
``--max-items``; each motion is ``--seconds`` long, seed = item index, the same for every condition.

``--conditions-only`` skips generation and the judge: it scores the three *conditions* themselves — the content of
the caption nearest (cosine, MiniLM space, among every caption of the corpus) to the text's embedding, to the
end-to-end condition and to the cascaded transcript's embedding — the part that differs between the conditions
(the generator after it is the same).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from pathlib import Path

import numpy as np

from blender_addon.client import TEXT_GUIDANCE

log = logging.getLogger("baton.eval.voice")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", help="a spoken-instruction corpus folder (baton data speech build)")
    parser.add_argument("--dataset", type=Path, default=None, help="the generator's HumanML3D-layout dataset "
                        "(index.json: which contents it knows); required unless --conditions-only")  # fmt: skip
    parser.add_argument("--conditions-only", action="store_true", help="score the conditions, no generation")
    parser.add_argument("--splits", default="test_voice,test_voice_snr10")
    parser.add_argument("--max-items", type=int, default=60, help="items per split")
    parser.add_argument("--min-clips", type=int, default=50, help="contents with fewer dataset clips are skipped")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--guidance", type=float, default=TEXT_GUIDANCE)
    parser.add_argument("--weights", default=None, help="text-to-motion run folder (default: shipped)")
    parser.add_argument("--judge", default=None, help="retrieval model folder (default: shipped)")
    parser.add_argument("--whisper-model", default=None)
    parser.add_argument("--speech-weights", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def word_error_rate(reference: str, hypothesis: str) -> tuple[int, int]:
    """``(edits, reference words)`` of a transcript: Levenshtein distance over lower-cased words (letters and
    apostrophes only)."""
    ref = re.findall(r"[a-z']+", reference.lower())
    hyp = re.findall(r"[a-z']+", hypothesis.lower())
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d = d, np.empty_like(d)
        d[0] = i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return int(d[-1]), len(ref)


def run(args: argparse.Namespace) -> int:
    import torch

    from backend.commands.eval_t2m import default_judge
    from backend.instruct.speech import SpeechInstructor, SpeechNotUnderstood
    from models.instruct import evaluation as ev
    from models.instruct import load_text_to_motion
    from models.retrieval.captions import canonical_caption
    from models.retrieval.model import load_retrieval_model
    from models.speech.audio import load_instruction
    from models.speech.corpus import read_manifest

    torch.set_num_threads(max(1, args.threads))
    if args.conditions_only:
        return _conditions_only(args)
    if args.dataset is None:
        raise ValueError("--dataset is required (or use --conditions-only)")
    started = time.monotonic()
    index = json.loads((args.dataset / "index.json").read_text())
    counts: dict[str, int] = {}
    for meta in index.values():
        if meta.get("content"):
            counts[meta["content"]] = counts.get(meta["content"], 0) + 1
    known = sorted(counts)
    usable = {c for c, n in counts.items() if n >= args.min_clips}
    judge = load_retrieval_model(Path(args.judge) if args.judge else default_judge())
    prototypes = judge.embed_text([canonical_caption(c) for c in known])
    generator = load_text_to_motion(args.weights)
    instructor = SpeechInstructor(generator, whisper_model=args.whisper_model, speech_weights=args.speech_weights,
                                  threads=args.threads)  # fmt: skip
    corpus_rows = read_manifest(args.corpus)
    caption_content = {r["caption"]: r["content"] for r in corpus_rows}
    result: dict = {"corpus": str(args.corpus), "contents": sorted(usable), "seconds": args.seconds, "splits": {}}
    for split in [s.strip() for s in args.splits.split(",") if s.strip()]:
        rows = [r for r in corpus_rows if r["split"] == split and r["content"] in usable]
        if not rows:
            raise ValueError(f"{args.corpus}: split {split!r} has no utterance with a content the dataset knows")
        rows = [rows[i] for i in sorted(np.random.default_rng(0).permutation(len(rows))[: args.max_items])]
        labels = [known.index(r["content"]) for r in rows]
        motions: dict[str, list] = {"text": [], "end2end": [], "cascaded": []}
        refused = {"end2end": 0, "cascaded": 0}
        edits = words = nearest_hits = 0
        for i, row in enumerate(rows):
            clip = load_instruction(Path(args.corpus) / row["wav"])
            motions["text"].append(generator.generate(row["oral"], seconds=args.seconds, seed=i,
                                                      guidance=args.guidance)[0])  # fmt: skip
            for path in ("end2end", "cascaded"):
                try:
                    u = instructor.prompt_for(clip, path)
                except SpeechNotUnderstood:
                    refused[path] += 1
                    motions[path].append(None)
                    if path == "cascaded":
                        words += len(row["oral"].split())
                        edits += len(row["oral"].split())
                    continue
                motions[path].append(generator.generate(u.prompt, seconds=args.seconds, seed=i,
                                                        guidance=args.guidance)[0])  # fmt: skip
                instructor.release(u)
                if path == "cascaded":
                    e, n = word_error_rate(row["oral"], u.transcript or "")
                    edits, words = edits + e, words + n
                else:
                    nearest_hits += caption_content.get(u.nearest_caption) == row["content"]
            if i % 10 == 0:
                log.info("%s: %d/%d", split, i + 1, len(rows))
        out = {"items": len(rows)}
        for cond, ms in motions.items():
            ok = [k for k, m in enumerate(ms) if m is not None]
            acc = 0.0
            if ok:
                emb = judge.embed_motion([ms[k] for k in ok])
                acc = ev.content_accuracy(emb, prototypes, [labels[k] for k in ok]) * len(ok) / len(rows)
            out[cond] = {"content_accuracy": round(acc, 2)}
            if cond in refused:
                out[cond]["refused"] = round(100.0 * refused[cond] / len(rows), 2)
        out["cascaded"]["wer"] = round(100.0 * edits / max(1, words), 2)
        out["end2end"]["nearest_caption_content_top1"] = round(100.0 * nearest_hits / len(rows), 2)
        result["splits"][split] = out
    result["seconds_total"] = round(time.monotonic() - started, 1)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0


def _conditions_only(args: argparse.Namespace) -> int:
    """``--conditions-only`` (module docstring)."""
    from backend.instruct.speech import SpeechInstructor, SpeechNotUnderstood
    from models.speech.audio import load_instruction
    from models.speech.corpus import read_manifest

    started = time.monotonic()
    instructor = SpeechInstructor(None, whisper_model=args.whisper_model, speech_weights=args.speech_weights,
                                  threads=args.threads)  # fmt: skip
    rows_all = read_manifest(args.corpus)
    vocab = sorted({r["caption"] for r in rows_all})
    content_of = {r["caption"]: r["content"] for r in rows_all}
    vocab_emb = instructor.embed(vocab)

    def nearest_content(emb) -> str:
        return content_of[vocab[int((emb @ vocab_emb.T).argmax())]]

    result: dict = {"corpus": str(args.corpus), "mode": "conditions-only", "vocabulary": len(vocab), "splits": {}}
    for split in [s.strip() for s in args.splits.split(",") if s.strip()]:
        rows = [r for r in rows_all if r["split"] == split]
        rows = [rows[i] for i in sorted(np.random.default_rng(0).permutation(len(rows))[: args.max_items])]
        if not rows:
            raise ValueError(f"{args.corpus}: split {split!r} is empty")
        hits = {"text": 0, "end2end": 0, "cascaded": 0}
        refused = {"end2end": 0, "cascaded": 0}
        timing = {"end2end": 0.0, "cascaded": 0.0}
        edits = words = 0
        text_emb = instructor.embed([r["oral"] for r in rows])
        for i, row in enumerate(rows):
            hits["text"] += nearest_content(text_emb[i]) == row["content"]
            clip = load_instruction(Path(args.corpus) / row["wav"])
            for path in ("end2end", "cascaded"):
                t0 = time.perf_counter()
                try:
                    u = instructor.prompt_for(clip, path)
                except SpeechNotUnderstood:
                    refused[path] += 1
                    timing[path] += time.perf_counter() - t0
                    if path == "cascaded":
                        n = len(row["oral"].split())
                        edits, words = edits + n, words + n
                    continue
                emb = u.condition if path == "end2end" else instructor.embed([u.transcript])[0]
                timing[path] += time.perf_counter() - t0
                hits[path] += nearest_content(emb) == row["content"]
                if path == "cascaded":
                    e, n = word_error_rate(row["oral"], u.transcript or "")
                    edits, words = edits + e, words + n
            if i % 20 == 0:
                log.info("%s: %d/%d", split, i + 1, len(rows))
        n = len(rows)
        out = {"items": n, **{c: {"content_top1": round(100.0 * h / n, 2)} for c, h in hits.items()}}
        for path in refused:
            out[path]["refused"] = round(100.0 * refused[path] / n, 2)
            out[path]["understand_ms"] = round(1000 * timing[path] / n, 1)
        out["cascaded"]["wer"] = round(100.0 * edits / max(1, words), 2)
        result["splits"][split] = out
    result["seconds_total"] = round(time.monotonic() - started, 1)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0
