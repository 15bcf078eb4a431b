"""Spoken instructions -> motion (the audio-instruction paper, ../shared/DESIGN.md §6; docs/voice.md).

* :mod:`models.speech.audio` — reading and checking an instruction recording (16 kHz mono float32).
* :mod:`models.speech.oral` — conversational ("oral") rephrasings of training captions.
* :mod:`models.speech.voices` — the TTS voices of the spoken-instruction corpus, with their licences.
* :mod:`models.speech.corpus` — ``baton data speech``: the corpus (voices x phrasings x sox augmentation).
* :mod:`models.speech.whisper` — the frozen Whisper tiny.en encoder (CTranslate2) and the transcriber.
* :mod:`models.speech.sphinx` — the pocketsphinx fallback transcriber with a JSGF motion grammar.
* :mod:`models.speech.end2end` — memory-retrieval attention from encoder states to the generator's condition.
"""
