"""Captions for labelled motion clips, rephrased many ways so free-form queries work.

Bandai Namco clips carry a content label (walk, wave-right-hand, ...) and a style label (tired, feminine, ...).
:func:`canonical_caption` gives one plain sentence per (content, style) ("a person waves their right hand in a tired
way"); :func:`caption_pool` gives many rephrasings: subject and sentence templates, verb-phrase synonyms, style
adverbs / adjectives / comparisons, word order (style first or last, gerund fragments), and — for language variety —
real human-written KIT-ML sentences about the same action (mined with include / exclude patterns), with a style
sentence appended. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from pathlib import Path

#: content label -> verb phrases in base form (first is canonical). Bandai dataset-1 and -2 content names.
CONTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "walk": ("walk forward", "walk", "walk straight ahead", "take a few steps forward", "walk in a straight line",
             "go for a walk", "walk along", "pace forward", "move forward on foot"),
    "walk-back": ("walk backwards", "walk backward", "step backwards", "back up", "move backwards step by step",
                  "retreat by walking backwards", "walk in reverse"),
    "walk-left": ("walk to the left", "walk towards the left", "turn left and walk", "walk off to the left",
                  "head to the left on foot", "walk leftwards"),
    "walk-right": ("walk to the right", "walk towards the right", "turn right and walk", "walk off to the right",
                   "head to the right on foot", "walk rightwards"),
    "walk-turn-left": ("walk and turn left", "walk while turning to the left", "walk in a curve to the left",
                       "make a left turn while walking", "walk then turn to the left", "turn left while walking"),
    "walk-turn-right": ("walk and turn right", "walk while turning to the right", "walk in a curve to the right",
                        "make a right turn while walking", "walk then turn to the right", "turn right while walking"),
    "run": ("run forward", "run", "jog forward", "run ahead", "go for a run", "jog", "run straight ahead"),
    "dash": ("dash forward", "sprint", "run fast", "dash", "run at full speed", "sprint ahead", "rush forward"),
    "bow": ("bow", "take a bow", "bow politely", "bend forward in a bow", "bow from the waist", "give a bow"),
    "bye": ("wave goodbye with the right hand", "say goodbye waving one hand", "wave farewell with one hand",
            "wave bye with the right hand", "wave the right hand to say goodbye"),
    "byebye": ("wave goodbye with both hands", "wave farewell with both arms", "say bye bye with both hands",
               "wave both hands to say goodbye", "wave both arms goodbye"),
    "guide": ("gesture to show the way", "point the way with an arm", "guide someone with a hand gesture",
              "show the direction with an open hand", "usher someone along with the right arm"),
    "respond": ("raise a hand to respond", "answer by raising the left hand", "respond with a raised hand"),
    "call": ("call out to someone", "call someone over", "cup the hands and call out"),
    "punch": ("punch", "throw punches", "punch forward", "box with the fists"),
    "kick": ("kick", "kick with a leg", "do a kick", "kick forward"),
    "slash": ("slash with a sword", "swing a sword", "slash", "cut with a blade"),
    "dance-long": ("dance", "dance for a long time", "perform a dance"),
    "dance-short": ("dance", "do a short dance", "perform a short dance"),
    "wave-both-hands": ("wave both hands", "wave with both arms", "wave both arms", "wave with both hands",
                        "wave both hands in the air", "greet by waving both hands"),
    "wave-left-hand": ("wave the left hand", "wave with the left hand", "wave the left arm", "wave hello with the "
                       "left hand", "greet by waving the left hand", "lift the left hand to wave"),
    "wave-right-hand": ("wave the right hand", "wave with the right hand", "wave the right arm", "wave hello with "
                        "the right hand", "greet by waving the right hand", "lift the right hand to wave"),
    "raise-up-both-hands": ("raise both hands", "raise both arms", "lift both hands up", "put both hands up",
                            "raise both arms above the head", "hold both hands up high"),
    "raise-up-left-hand": ("raise the left hand", "raise the left arm", "lift the left hand up", "put the left hand "
                           "up", "hold the left arm up high", "raise the left hand above the head"),
    "raise-up-right-hand": ("raise the right hand", "raise the right arm", "lift the right hand up", "put the right "
                            "hand up", "hold the right arm up high", "raise the right hand above the head"),
}  # fmt: skip

#: style label -> (adverbial phrases, adjectives describing the person). Dataset-1 and -2 style names.
STYLE_PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "normal": (("normally", "in a normal way", "casually", "in a neutral manner"), ("calm", "ordinary")),
    "happy": (("happily", "cheerfully", "joyfully", "in a happy mood"), ("happy", "cheerful", "joyful")),
    "sad": (("sadly", "gloomily", "in a sad way", "sorrowfully"), ("sad", "gloomy", "unhappy")),
    "angry": (("angrily", "furiously", "in an angry way", "with rage"), ("angry", "furious", "annoyed")),
    "proud": (("proudly", "arrogantly", "in a proud manner", "haughtily"), ("proud", "arrogant", "self-assured")),
    "not-confident": (("timidly", "shyly", "without confidence", "hesitantly"), ("shy", "insecure", "timid")),
    "masculinity": (("in a masculine way", "in a manly way", "in a macho way"), ("masculine", "manly", "macho")),
    "masculine": (("in a masculine way", "in a manly way", "in a macho way"), ("masculine", "manly", "macho")),
    "feminine": (("in a feminine way", "daintily", "in a ladylike way", "gracefully"), ("feminine", "ladylike")),
    "childish": (("childishly", "like a child", "in a childish way", "like a kid"), ("childish", "childlike")),
    "old": (("like an old person", "like an elderly person", "in an elderly way", "feebly"), ("old", "elderly")),
    "elderly": (("like an elderly person", "like an old person", "in an elderly way", "feebly"), ("elderly", "old")),
    "tired": (("tiredly", "wearily", "in a tired way", "sluggishly"), ("tired", "exhausted", "weary")),
    "exhausted": (("wearily", "in an exhausted way", "tiredly", "sluggishly"), ("exhausted", "tired", "worn out")),
    "active": (("energetically", "actively", "vigorously", "in a lively way"), ("energetic", "lively", "active")),
    "musical": (("theatrically", "like in a musical", "with musical flair", "showily"), ("theatrical", "showy")),
    "giant": (("like a giant", "heavily like a giant", "lumbering like a giant"), ("giant", "huge", "hulking")),
    "chimpira": (("like a thug", "like a street punk", "like a delinquent", "in a thuggish way"), ("thuggish",)),
    "youthful": (("youthfully", "in a youthful way", "like a young person", "with youthful energy"),
                 ("youthful", "young", "sprightly")),
}  # fmt: skip

#: Style groups treated as the same style in style-level evaluation (dataset-1 and -2 name them differently).
STYLE_GROUPS = {"masculinity": "masculine", "old": "elderly", "tired": "exhausted"}

#: KIT-ML mining rules: content -> (include pattern, exclude pattern), matched on lower-case sentences of <= 10 words.
_KIT_RULES: dict[str, tuple[str, str]] = {
    "walk": (r"\bwalk(s|ing)?\b.*\b(forward|straight|ahead)|^(a |the )?(person|human|man|someone|somebody) "
             r"(is )?walk(s|ing)?\.?$", r"back|turn|left|right|circle|stair|run|jog|slow|fast|carr|hold|step over"),
    "walk-back": (r"\bwalk(s|ing)? backwards?\b", r"forward|turn|run|circle|carr|hold|and"),
    "walk-turn-left": (r"\bwalk.*turn(s|ing)? (to the )?left\b", r"right|back|run|circle|around|carr"),
    "walk-turn-right": (r"\bwalk.*turn(s|ing)? (to the )?right\b", r"left|back|run|circle|around|carr"),
    "run": (r"\b(run(s|ning)?|jog(s|ging)?)\b", r"walk|back|turn|circle|left|right|stop|start|place|slow|stair"),
    "bow": (r"\bbow(s|ing)?\b|takes? a bow", r"walk|run|sit|kneel|elbow|rainbow|wave"),
    "wave-right-hand": (r"\bwav(e|es|ing)\b.*\bright (hand|arm)", r"left|both|walk|run"),
    "wave-left-hand": (r"\bwav(e|es|ing)\b.*\bleft (hand|arm)", r"right|both|walk|run"),
    "wave-both-hands": (r"\bwav(e|es|ing)\b.*\b(both|two) (hands|arms)", r"walk|run|chicken|bird|fly|flap"),
    "raise-up-right-hand": (r"\b(raises?|lifts?|raising|lifting)\b.*\bright (hand|arm)\b", r"left|both|leg|walk|run"),
    "raise-up-left-hand": (r"\b(raises?|lifts?|raising|lifting)\b.*\bleft (hand|arm)\b", r"right|both|leg|walk|run"),
    "raise-up-both-hands": (r"\b(raises?|lifts?|raising|lifting)\b.*\b(both|two) (hands|arms)\b",
                            r"jack|circle|punch|leg|walk|run|chest|lower|duck"),
    "kick": (r"\bkick(s|ing)?\b", r"walk|run|ball|jump|punch|back"),
    "punch": (r"\bpunch(es|ing)?\b", r"walk|run|kick|jump"),
}  # fmt: skip
# Contents that share KIT-ML sentences with another content.
_KIT_ALIASES = {"walk-left": "walk-turn-left", "walk-right": "walk-turn-right", "dash": "run", "bye": "wave-right-hand",
                "byebye": "wave-both-hands"}  # fmt: skip

_SUBJECTS = ("a person", "someone", "a man", "a woman", "the character", "a figure", "the actor", "somebody",
             "a human", "the person")  # fmt: skip
_NOUNS = ("person", "man", "woman", "character", "figure", "performer")
_IRREGULAR_THIRD = {"go": "goes", "do": "does", "have": "has"}
_DOUBLE_FINAL = {"run", "jog", "step", "stop", "hop", "put", "cut", "get"}


_SIDE_WORDS = {"left": "right", "right": "left", "clockwise": "counterclockwise", "counterclockwise": "clockwise",
               "anticlockwise": "clockwise", "counter-clockwise": "clockwise", "anti-clockwise": "clockwise"}
_SIDES = re.compile(r"\b(counter-?clockwise|anti-?clockwise|clockwise|left|right)(wards?|most)?\b", re.IGNORECASE)


def mirror_sides(text: str) -> str | None:
    """``text`` with left / right (also leftwards, rightmost, ...) and clockwise / counterclockwise swapped, keeping
    capitals, or ``None`` when it names no side.

    Used for the captions of mirrored clips and, by the generator, as the negative branch of classifier-free guidance
    for base tokens (``logits = mirrored + g (cond - mirrored)``): MiniLM embeddings of "... the right hand" and
    "... the left hand" are nearly identical (cosine ~0.97), and guiding away from the mirrored prompt makes the side
    explicit.
    """
    if not _SIDES.search(text):
        return None

    def swap(match: re.Match) -> str:
        word = match.group(1)
        new = _SIDE_WORDS[word.lower()]
        return (new.capitalize() if word[0].isupper() else new) + (match.group(2) or "")

    return _SIDES.sub(swap, text)


def mirrored_content(content: str | None) -> str | None:
    """The content label of the left/right mirror image (``wave-left-hand`` <-> ``wave-right-hand``)."""
    return None if content is None else (mirror_sides(content) or content)


def third_person(phrase: str) -> str:
    """``"walk forward"`` -> ``"walks forward"`` (first word conjugated; ``their`` kept)."""
    verb, _, rest = phrase.partition(" ")
    if verb in _IRREGULAR_THIRD:
        conj = _IRREGULAR_THIRD[verb]
    elif re.search(r"(s|sh|ch|x|z)$", verb):
        conj = verb + "es"
    elif re.search(r"[^aeiou]y$", verb):
        conj = verb[:-1] + "ies"
    else:
        conj = verb + "s"
    return (conj + " " + rest).strip()


def gerund(phrase: str) -> str:
    """``"wave the right hand"`` -> ``"waving the right hand"``."""
    verb, _, rest = phrase.partition(" ")
    if verb in _DOUBLE_FINAL:
        conj = verb + verb[-1] + "ing"
    elif verb.endswith("e") and not verb.endswith("ee"):
        conj = verb[:-1] + "ing"
    else:
        conj = verb + "ing"
    return (conj + " " + rest).strip()


def _possessive(phrase: str, subject: str) -> str:
    pronoun = {"a man": "his", "a woman": "her"}.get(subject, "their")
    return re.sub(r"\bthe (right|left) (hand|arm)\b|\bthe hands\b", lambda m: m.group(0).replace("the", pronoun, 1),
                  phrase)  # fmt: skip


def canonical_caption(content: str, style: str | None = None) -> str:
    """One plain sentence for a (content, style) label, e.g. ``"a person waves the right hand in a tired way"``.

    Raises:
        ValueError: for an unknown content or style label.
    """
    if content not in CONTENT_PHRASES:
        raise ValueError(f"unknown content label {content!r}; known: {', '.join(CONTENT_PHRASES)}")
    sentence = "a person " + third_person(CONTENT_PHRASES[content][0])
    if style is None or style == "normal":
        return sentence
    if style not in STYLE_PHRASES:
        raise ValueError(f"unknown style label {style!r}; known: {', '.join(STYLE_PHRASES)}")
    return f"{sentence} {_style_adverb(style)}"


def _style_adverb(style: str) -> str:
    adverbs = STYLE_PHRASES[style][0]
    return next((a for a in adverbs if a.startswith("in a")), adverbs[0])


def caption_pool(content: str, style: str | None, count: int = 48, seed: int = 0,
                 kit_texts: dict[str, list[str]] | None = None) -> list[str]:  # fmt: skip
    """``count`` distinct rephrasings of a (content, style) label, the canonical caption first.

    Args:
        content: a key of :data:`CONTENT_PHRASES`.
        style: a key of :data:`STYLE_PHRASES` or ``None``.
        count: how many captions.
        seed: random seed (the pool is deterministic for a seed).
        kit_texts: KIT-ML sentences per content (:func:`mine_kit_texts`); ``None`` for templates only.

    Raises:
        ValueError: for unknown labels.
    """
    first = canonical_caption(content, style)
    rng = random.Random(f"{seed}:{content}:{style}")
    phrases = CONTENT_PHRASES[content]
    adverbs, adjectives = STYLE_PHRASES.get(style or "normal", STYLE_PHRASES["normal"])
    styled = style not in (None, "normal")
    kit = (kit_texts or {}).get(content) or (kit_texts or {}).get(_KIT_ALIASES.get(content, ""), [])
    pool, seen = [first], {first}
    for _ in range(count * 20):
        if len(pool) >= count:
            break
        subject = rng.choice(_SUBJECTS)
        phrase = _possessive(rng.choice(phrases), subject)
        adverb, adjective = rng.choice(adverbs), rng.choice(adjectives)
        article = "an" if adjective[0] in "aeiou" else "a"
        form = rng.randrange(9 if kit else 8)
        if form == 0:
            text = f"{subject} {third_person(phrase)}"
        elif form == 1:
            text = f"{gerund(phrase)}"
        elif form == 2:
            text = f"{subject} is {gerund(phrase)}"
        elif form == 3:
            text = f"{subject} {third_person(phrase)} {adverb}" if styled else f"{subject} {third_person(phrase)}."
        elif form == 4:
            noun = rng.choice(_NOUNS)
            text = f"{article} {adjective} {noun} {third_person(phrase)}" if styled else gerund(phrase)
        elif form == 5:
            text = f"{adverb}, {subject} {third_person(phrase)}" if styled else f"{subject} just {third_person(phrase)}"
        elif form == 6:
            text = f"{gerund(phrase)} {adverb}" if styled else f"{subject} {third_person(phrase)} once"
        elif form == 7:
            text = (f"{subject} {third_person(phrase)}, looking {adjective}" if styled
                    else f"{subject} who {third_person(phrase)}")  # fmt: skip
        else:
            sentence = rng.choice(kit).rstrip(". ")
            text = f"{sentence}. they look {adjective}" if styled and rng.random() < 0.7 else sentence
        text = text[0].lower() + text[1:]
        if text not in seen:
            seen.add(text)
            pool.append(text)
    return pool


@lru_cache(maxsize=4)
def _kit_sentences(path: str) -> tuple[str, ...]:
    data = json.loads(Path(path).read_text())
    return tuple(a["text"].strip() for v in data.values() for a in v.get("annotations", []) if a.get("text"))


def mine_kit_texts(annotations_path: str | Path, max_words: int = 10, per_content: int = 60) -> dict[str, list[str]]:
    """Human-written KIT-ML sentences per content label (TMR's ``kitml/annotations.json``).

    A sentence is kept for a content when it matches the content's include pattern, not its exclude pattern, and
    has at most ``max_words`` words; at most ``per_content`` distinct sentences per content (sorted, deterministic).

    Raises:
        FileNotFoundError: when the annotations file is missing.
    """
    path = Path(annotations_path)
    if not path.is_file():
        raise FileNotFoundError(f"KIT-ML annotations not found: {path}")
    sentences = _kit_sentences(str(path))
    mined: dict[str, list[str]] = {}
    for content, (include, exclude) in _KIT_RULES.items():
        found = sorted({s for s in sentences if len(s.split()) <= max_words and re.search(include, s.lower())
                        and not re.search(exclude, s.lower())})  # fmt: skip
        random.Random(content).shuffle(found)
        mined[content] = found[:per_content]
    return mined


def cmu_captions(description: str, kit_texts: list[str] = ()) -> list[str]:
    """Captions for a CMU trial from its index description (``"Start Walk Stop"``) and matching KIT-ML texts."""
    words = description.strip().lower()
    captions = [description.strip(), f"a person: {words}", f"motion capture of someone doing {words}"]
    return list(dict.fromkeys(captions + [t.strip() for t in kit_texts]))
