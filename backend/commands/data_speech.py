"""``baton data speech build|encode|voices``: the spoken-instruction corpus (models/speech/corpus.py).

* ``build OUT`` synthesises oral rephrasings of training captions with every installed TTS voice (espeak-ng,
  flite, festival, Piper en_US-joe), 16 kHz, sox-augmented; the held-out voice and phrasing form the test splits.
* ``encode OUT`` stores the frozen Whisper tiny.en encoder states of every utterance (the end-to-end path's input).
* ``voices`` lists the voices, their engines and licences, and the engines that are missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("build", "encode", "voices"))
    parser.add_argument("output", nargs="?", help="corpus folder (build, encode)")
    parser.add_argument("--train", type=int, default=1600, help="training utterances (default 1600)")
    parser.add_argument("--test", type=int, default=150, help="utterances per test split (default 150)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--whisper-model", help="faster-whisper model folder (default: the bundled tiny.en)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    from models.progress import Progress

    log = Progress(callback=lambda fraction, stage: print(f"data speech: {fraction:5.1%} {stage}", file=sys.stderr))

    if args.action == "voices":
        from models.speech.voices import available_voices

        voices, missing = available_voices()
        result = {"voices": [asdict(v) for v in voices], "missing_engines": missing}
    else:
        if not args.output:
            raise ValueError(f"baton data speech {args.action} needs the corpus folder")
        if args.action == "build":
            from models.speech.corpus import build_corpus

            result = build_corpus(args.output, train=args.train, test=args.test, seed=args.seed, progress=log)
        else:
            from models.speech.corpus import encode_corpus
            from models.speech.whisper import WhisperModel

            result = encode_corpus(args.output, WhisperModel(args.whisper_model), progress=log)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps({k: v for k, v in result.items() if k != "voices"} | (
            {"voices": len(result["voices"])} if isinstance(result.get("voices"), list) else {}), indent=1))
    return 0
