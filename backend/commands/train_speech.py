"""Train the end-to-end speech condition (memory-retrieval attention over frozen Whisper encoder states -> the text
generator's condition) on a corpus built and encoded by ``baton data speech`` (models/speech/end2end.py).

``--t2m-run RUN --t2m-data DATA`` adds the generation loss (the frozen masked transformer's token cross entropy on
clips of each utterance's label, condition drop 0.2); without them only the alignment loss trains.
"""

from __future__ import annotations

import argparse
import json
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", help="an encoded spoken-instruction corpus folder")
    parser.add_argument("-o", "--output", required=True, help="run folder (speech.pt, speech.json, log.jsonl)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--t2m-run", default=None, help="text-to-motion run folder (vq.pt, mask.pt)")
    parser.add_argument("--t2m-data", default=None, help="its HumanML3D-layout dataset folder (index.json)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    import torch

    from models.progress import Progress
    from models.speech.end2end import SpeechTrainConfig, train_speech_condition

    if args.steps < 1 or args.batch < 2:
        raise ValueError("--steps must be >= 1 and --batch >= 2")
    if (args.t2m_run is None) != (args.t2m_data is None):
        raise ValueError("--t2m-run and --t2m-data go together")
    torch.set_num_threads(max(1, args.threads))
    progress = Progress(callback=lambda f, s: print(f"train speech: {f:5.1%} {s}", file=sys.stderr)
                        if s.endswith("0/" + str(args.steps)) or f == 0 else None)  # fmt: skip
    result = train_speech_condition(args.corpus, args.output, t2m_run=args.t2m_run, t2m_data=args.t2m_data,
                                    train=SpeechTrainConfig(steps=args.steps, batch=args.batch, lr=args.lr,
                                                            seed=args.seed), progress=progress)  # fmt: skip
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0
