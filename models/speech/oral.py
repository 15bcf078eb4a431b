"""Conversational ("oral") rephrasings of training captions, as an animator would *say* them.

The audio-instruction paper builds its spoken corpus by rephrasing each written caption conversationally
("could you make him ...", "I'd like her to ...", fillers) before synthesising it. Here a caption is built from a
(content, style) label with :mod:`models.retrieval.captions`' vocabulary (the written caption the text generator
is trained on, e.g. ``"a person waves the right hand sadly"``) and its oral form from the same verb phrase and
style words in one of the :data:`PHRASINGS` (``"um, could you make her wave her right hand, sadly?"``).

:data:`HELD_OUT_PHRASING` is never used for training utterances (the corpus's test split uses it alone).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from models.retrieval.captions import CONTENT_PHRASES, STYLE_PHRASES, third_person

#: Who the oral forms talk about: (object form, subject form, possessive).
_PEOPLE = (("him", "he", "his"), ("her", "she", "her"), ("the character", "the character", "their"),
           ("the rig", "the rig", "its"), ("the actor", "the actor", "their"))
_FILLERS = ("", "", "um, ", "uh, ", "okay, ", "so, ", "right, ", "hmm, ", "alright, ", "well, ")

#: Phrasing styles: name -> templates; ``{who}`` object form, ``{subj}`` subject form, ``{vp}`` base verb phrase
#: (possessives filled in),
#: ``{style}`` the style phrase with a leading space or empty.
PHRASINGS: dict[str, tuple[str, ...]] = {
    "request": ("could you make {who} {vp}{style}", "can you have {who} {vp}{style}", "would you make {who} "
                "{vp}{style}, please", "please make {who} {vp}{style}", "can you get {who} to {vp}{style}"),
    "desire": ("I'd like {who} to {vp}{style}", "I want {who} to {vp}{style}", "I need {who} to {vp}{style}",
               "what I want is for {who} to {vp}{style}"),
    "command": ("{vp}{style}", "now {vp}{style}", "{vp}{style}, go", "okay {vp}{style}"),
    "question": ("can {subj} {vp}{style}", "could {subj} {vp}{style} for me", "is it possible to make {who} "
                 "{vp}{style}"),
    "narrative": ("let's see, {subj} should {vp}{style}", "in this shot {subj} is going to {vp}{style}",
                  "for the next bit {subj} will {vp}{style}", "and then {subj} has to {vp}{style}"),
}  # fmt: skip
#: The phrasing style held out for evaluation (never in a training utterance).
HELD_OUT_PHRASING = "narrative"


@dataclass(frozen=True)
class Instruction:
    """One instruction: its label, the written caption and the oral text that is spoken.

    Attributes:
        content / style: the (content, style) label (``style`` may be ``"normal"``).
        caption: the written caption (third person, the text generator's training form).
        oral: the conversational sentence that is synthesised.
        phrasing: a key of :data:`PHRASINGS`.
    """

    content: str
    style: str
    caption: str
    oral: str
    phrasing: str


def _possessive(phrase: str, possessive: str) -> str:
    return re.sub(r"\bthe (right|left|both) (hand|hands|arm|arms)\b", lambda m: f"{possessive} {m.group(1)} "
                  f"{m.group(2)}", phrase).replace(" the hands", f" {possessive} hands")  # fmt: skip


def make_instruction(content: str, style: str, phrasing: str, rng: random.Random) -> Instruction:
    """One random :class:`Instruction` for a label in a phrasing style.

    Args:
        content: a key of :data:`models.retrieval.captions.CONTENT_PHRASES`.
        style: a key of :data:`models.retrieval.captions.STYLE_PHRASES`.
        phrasing: a key of :data:`PHRASINGS`.
        rng: the random source (the corpus seeds one per utterance).

    Raises:
        ValueError: for an unknown content, style or phrasing.
    """
    if content not in CONTENT_PHRASES:
        raise ValueError(f"unknown content label {content!r}")
    if style not in STYLE_PHRASES:
        raise ValueError(f"unknown style label {style!r}")
    if phrasing not in PHRASINGS:
        raise ValueError(f"unknown phrasing {phrasing!r}; known: {', '.join(PHRASINGS)}")
    phrase = rng.choice(CONTENT_PHRASES[content])
    adverbs, _ = STYLE_PHRASES[style]
    adverb = "" if style == "normal" else rng.choice(adverbs)
    caption = f"a person {third_person(phrase)}" + (f" {adverb}" if adverb else "")
    who, subj, possessive = rng.choice(_PEOPLE)
    vp = _possessive(phrase, possessive)
    style_text = f" {adverb}" if adverb else ""
    if style_text and rng.random() < 0.3:
        style_text = "," + style_text
    oral = rng.choice(PHRASINGS[phrasing]).format(who=who, subj=subj, vp=vp, style=style_text)
    oral = rng.choice(_FILLERS) + oral
    return Instruction(content, style, caption, oral[0].upper() + oral[1:], phrasing)


def motion_vocabulary() -> list[str]:
    """Every word of the content and style phrases, sorted (the cascaded recogniser's prompt and grammar)."""
    words = set()
    for phrases in CONTENT_PHRASES.values():
        for p in phrases:
            words.update(p.split())
    for adverbs, adjectives in STYLE_PHRASES.values():
        for p in adverbs + adjectives:
            words.update(p.split())
    return sorted(w for w in words if w.isalpha())
