"""Fallback transcriber when no Whisper model is installed: pocketsphinx (PyPI, bundled ``en-us`` acoustic model)
decoding against a JSGF grammar of motion instructions.

Open-vocabulary pocketsphinx decodes synthetic speech poorly; a command grammar decodes it well
(../shared/DESIGN.md §8). The grammar (:func:`motion_grammar`) is built from the motion vocabulary: optional filler
and lead-in ("could you make her", "I'd like him to", ...), one content verb phrase
(:data:`models.retrieval.captions.CONTENT_PHRASES`, "the" also as his / her / their / its), an optional style
phrase (:data:`models.retrieval.captions.STYLE_PHRASES`) and optionally a second action ("... and wave her right
hand"). Alternatives with words outside the bundled dictionary are left out. Digital silence gets ~1e-3 dither
(pocketsphinx misbehaves on exact zeros).

Confidence: a grammar forces every sound into some instruction, so the acoustic fit is checked against an
unconstrained phone loop on the same audio: ``log(grammar path score / phone-loop path score)`` (pocketsphinx's
per-utterance path scores) is reported as the transcript's ``avg_logprob``; :data:`MIN_LOG_RATIO` (ratio 0.7)
separates in-grammar instructions (ratio ~1.0 on TTS speech) from other speech (LibriSpeech sentences: 0.5-0.65).
"""

from __future__ import annotations

import math
import re

import numpy as np

from models.speech.whisper import Transcript, count_motion_words

_LEADS = ("could you make {w}", "can you make {w}", "can you have {w}", "would you make {w}", "please make {w}",
          "make {w}", "i'd like {w} to", "i want {w} to", "i need {w} to", "can {s}", "could {s}",
          "{s} should", "{s} will", "{s} has to", "now", "okay")  # fmt: skip
_WHO = (("him", "he"), ("her", "she"), ("the character", "the character"), ("the rig", "the rig"),
        ("the actor", "the actor"), ("them", "they"))  # fmt: skip
#: Least log(grammar / phone-loop score) accepted as an instruction (module docstring).
MIN_LOG_RATIO = math.log(0.7)
_FILLERS = ("um", "uh", "okay", "so", "right", "hmm", "alright", "well")


def _dictionary() -> set[str]:
    import os

    from pocketsphinx import get_model_path

    words = set()
    with open(os.path.join(get_model_path(), "en-us", "cmudict-en-us.dict"), encoding="utf-8") as f:
        for line in f:
            words.add(line.split(" ", 1)[0].split("(", 1)[0])
    return words


def motion_grammar(dictionary: set[str] | None = None) -> str:
    """The JSGF grammar of motion instructions (module docstring)."""
    from models.retrieval.captions import CONTENT_PHRASES, STYLE_PHRASES

    words = dictionary if dictionary is not None else _dictionary()

    def ok(text: str) -> bool:
        return all(w in words for w in re.findall(r"[a-z']+", text))

    actions = sorted({p for phrases in CONTENT_PHRASES.values() for p in phrases if ok(p)})
    actions = [re.sub(r"\bthe\b", "(the | his | her | their | its)", a) for a in actions]
    styles = sorted({s for adv, adj in STYLE_PHRASES.values() for s in adv if ok(s)})
    leads = sorted({lead.format(w=w, s=s) for lead in _LEADS for w, s in _WHO if ok(lead.format(w=w, s=s))})
    return ("#JSGF V1.0;\ngrammar motion;\n"
            "public <command> = [<filler>] [<lead>] <action> [<style>] [and [then] <action> [<style>]] "
            "[please | go | for me];\n"
            f"<filler> = {' | '.join(f for f in _FILLERS if ok(f))};\n"
            f"<lead> = {' | '.join(leads)};\n"
            f"<action> = {' | '.join(actions)};\n"
            f"<style> = {' | '.join(styles)};\n")  # fmt: skip


class SphinxTranscriber:
    """pocketsphinx with the motion grammar (module docstring).

    Raises:
        ImportError: when pocketsphinx is not installed.
    """

    def __init__(self):
        import os

        from pocketsphinx import Config, Decoder, get_model_path

        self._grammar = Decoder(Config(lm=None, loglevel="FATAL"))
        self._grammar.set_jsgf_string("motion", motion_grammar())
        self._grammar.activate_search("motion")
        self._loop = Decoder(Config(lm=None, allphone=os.path.join(get_model_path(), "en-us", "en-us-phone.lm.bin"),
                                    loglevel="FATAL"))  # fmt: skip

    @staticmethod
    def _pcm(audio: np.ndarray) -> bytes:
        audio = np.asarray(audio, np.float32) + np.random.default_rng(0).normal(0, 1e-3, len(audio)).astype(
            np.float32)
        return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()

    def _decode(self, decoder, pcm: bytes) -> tuple[str, float, int]:
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return (hyp.hypstr if hyp else ""), (float(hyp.score) if hyp else 0.0), decoder.n_frames()

    def transcribe(self, audio: np.ndarray, *, vocabulary: list[str] | None = None) -> Transcript:
        """Decode a 16 kHz clip. ``avg_logprob`` is ``log(grammar score / phone-loop score)`` (module docstring;
        compare with :data:`MIN_LOG_RATIO`); ``no_speech_prob`` is 1 when nothing matched, else 0."""
        pcm = self._pcm(audio)
        text, score, _ = self._decode(self._grammar, pcm)
        _, loop_score, _ = self._decode(self._loop, pcm)
        gap = math.log(score / loop_score) if text and score > 0 and loop_score > 0 else -10.0
        from models.speech.oral import motion_vocabulary

        words = set(vocabulary or motion_vocabulary())
        return Transcript(text, float(gap), 0.0 if text else 1.0, count_motion_words(text, words), "pocketsphinx")
