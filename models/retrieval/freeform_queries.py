"""Free-form evaluation queries, written by hand unlike the training captions (no shared template; everyday,
animator-style wording), for the content-level and style-level hit rates of ``baton eval retrieval``.

A content query is a hit at k when any of the top-k retrieved held-out clips has a content in the query class's
accepted set (classes merge labels the two Bandai datasets name differently: dataset-1 ``bye`` is a right-hand
goodbye wave, ``byebye`` waves both hands, ``walk-left`` walks off to the left). A style query is a hit when a
retrieved clip has the query's style group (``models.retrieval.captions.STYLE_GROUPS``).
"""

from __future__ import annotations

#: query class -> (accepted content labels, queries)
CONTENT_QUERIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "walk": (("walk",), (
        "someone strolls forward", "a guy ambling along at an easy pace", "character takes a leisurely stroll",
        "just an ordinary walk cycle", "she heads straight on by foot", "man strolling down the street",
        "regular walking pace, going straight", "walk cycle moving ahead", "he treks forward on foot",
        "a pedestrian crossing the room", "footsteps forward at normal speed", "steady walk in one direction",
        "animation: go straight on foot", "casual stroll ahead", "a woman marches along",
        "the hero walks towards the camera", "a few paces forward", "an npc wandering forwards",
        "locomotion, walking straight", "calmly heading forward step after step", "a person ambles ahead",
        "walking down a corridor", "a stroll in a straight line", "somebody paces ahead slowly",
    )),
    "walk-back": (("walk-back",), (
        "someone retreats, stepping back", "moving in reverse on foot", "a guy backs away",
        "character backpedals", "steps backwards away from something", "she backs off slowly",
        "reversing a few steps", "walking backward away from the camera", "backing up carefully",
        "retreat while facing forward", "he moves back step by step", "walk cycle in reverse direction",
        "back away from danger", "a woman retreating backwards", "stepping back several paces",
        "moonwalk-like backing away", "recoil and walk back", "going backwards on foot",
        "pulling back with backward steps", "npc retreats backwards", "backs away from the table",
    )),
    "turn-left": (("walk-left", "walk-turn-left"), (
        "someone veers to the left while walking", "a walk that curves left", "taking a left turn on foot",
        "he heads off leftwards", "character turns left and keeps going", "she goes around a corner to the left",
        "strolling then bearing left", "walking and hanging a left", "a left-hand turn during a walk",
        "changes direction to the left", "walking around to her left", "pivot left and walk away",
        "a guy walks, then swings left", "curving path to the left", "walk, then turn toward the left side",
        "going left on foot", "wheels around to the left and walks", "veer left mid-stride",
        "walking path bending left", "turning leftward while strolling",
    )),
    "turn-right": (("walk-right", "walk-turn-right"), (
        "someone veers to the right while walking", "a walk that curves right", "taking a right turn on foot",
        "he heads off rightwards", "character turns right and keeps going", "she goes around a corner to the right",
        "strolling then bearing right", "walking and hanging a right", "a right-hand turn during a walk",
        "changes direction to the right", "walking around to his right", "pivot right and walk away",
        "a guy walks, then swings right", "curving path to the right", "walk, then turn toward the right side",
        "going right on foot", "wheels around to the right and walks", "veer right mid-stride",
        "walking path bending right", "turning rightward while strolling",
    )),
    "run": (("run", "dash"), (
        "someone jogging", "a sprinter racing ahead", "man running as fast as he can", "character runs off",
        "a quick jog forward", "she hurries at a run", "fast running cycle", "an athlete sprinting",
        "rushing forward at speed", "dashing across the field", "running to catch a bus", "a brisk run",
        "jogger moving along", "bolting forward", "he races ahead on foot", "running loop animation",
        "hurrying, almost sprinting", "a runner in motion", "runs quickly away", "speedy run forward",
        "chasing something at full tilt", "a woman jogs ahead",
    )),
    "bow": (("bow",), (
        "a polite little bow to a guest", "a respectful bow", "bending at the waist to greet", "a japanese style bow",
        "character takes a bow after the show", "he bows his head and torso", "polite greeting by bending forward",
        "a formal bow", "she bows in apology", "bowing to the audience", "leaning forward out of respect",
        "a deep bow", "butler bowing", "a quick courteous bow", "bend over in a bow and stand back up",
        "showing respect with a bow", "an actor bowing at curtain call", "a humble bow",
        "greeting with a bow", "bows down and rises again",
    )),
    "wave-right": (("wave-right-hand", "bye"), (
        "a quick hello, right hand waving", "saying hi with the right hand", "right-handed wave",
        "waving hello using the right arm", "he waves his right hand at a friend", "a goodbye wave with the right hand",
        "she greets someone with her right hand", "right arm waving in the air", "hello gesture, right hand",
        "waves at the camera with the right hand", "a friendly right-hand wave", "flapping the right hand to say hi",
        "right hand up, waving", "signalling with the right hand", "a character waving her right hand",
        "waving bye with the right palm", "hailing someone with the right arm", "a cheerful wave of the right hand",
        "greets a neighbour with the right hand", "wave using only the right arm",
    )),
    "wave-left": (("wave-left-hand",), (
        "a quick hello, left hand waving", "saying hi with the left hand", "left-handed wave",
        "waving hello using the left arm", "he waves his left hand at a friend", "a goodbye wave with the left hand",
        "she greets someone with her left hand", "left arm waving in the air", "hello gesture, left hand",
        "waves at the camera with the left hand", "a friendly left-hand wave", "flapping the left hand to say hi",
        "left hand up, waving", "signalling with the left hand", "a character waving her left hand",
        "waving bye with the left palm", "hailing someone with the left arm", "a cheerful wave of the left hand",
        "greets a neighbour with the left hand", "wave using only the left arm",
    )),
    "wave-both": (("wave-both-hands", "byebye"), (
        "a quick hello, both hands waving", "waving both arms at a friend", "two-handed wave",
        "both hands waving hello", "he waves both arms over his head", "an enthusiastic wave with two hands",
        "she waves goodbye with both arms", "flailing both arms to get attention", "double-handed greeting",
        "waving two hands at the crowd", "both arms swinging side to side in greeting", "a big wave using both hands",
        "signalling with both arms", "hello with both palms waving", "a fan waving both hands",
        "both hands up, waving excitedly", "greets everyone with two waving hands", "waving farewell with two arms",
        "arms waving to flag someone down", "two-armed goodbye wave",
    )),
    "raise-right": (("raise-up-right-hand",), (
        "the right hand shoots up", "right arm goes up", "he puts his right hand in the air",
        "a student raising the right hand to ask a question", "lift the right arm overhead", "right hand held high",
        "she reaches up with her right arm", "raising the right hand like taking an oath",
        "volunteer lifting right hand",
        "right arm lifted straight up", "hand up: the right one", "stretching the right arm upwards",
        "a raised right hand", "pointing the right arm at the sky", "lifts her right hand above her head",
        "right hand up to answer", "hoisting the right arm", "elevates the right hand",
        "right-handed raise", "puts up the right arm",
    )),
    "raise-left": (("raise-up-left-hand",), (
        "the left hand shoots up", "left arm goes up", "he puts his left hand in the air",
        "a student raising the left hand to ask a question", "lift the left arm overhead", "left hand held high",
        "she reaches up with her left arm", "raising the left hand like taking an oath",
        "volunteer lifting left hand",
        "left arm lifted straight up", "hand up: the left one", "stretching the left arm upwards",
        "a raised left hand", "pointing the left arm at the sky", "lifts her left hand above her head",
        "left hand up to answer", "hoisting the left arm", "elevates the left hand",
        "left-handed raise", "puts up the left arm",
    )),
    "raise-both": (("raise-up-both-hands",), (
        "both hands shoot up", "both arms go up", "hands up in the air", "he throws both arms up",
        "a hands-up gesture", "surrender pose with both hands raised", "she lifts both arms overhead",
        "both hands held high", "celebrating with arms raised", "reaching for the sky with both arms",
        "arms stretched up over the head", "raising both arms in victory", "two hands lifted upward",
        "a cheer with both arms up", "hoisting both arms", "elevates both hands", "both arms straight up",
        "both hands go up toward the ceiling", "stretching upward with two arms", "lifting two hands above the head",
    )),
    "guide": (("guide",), (
        "someone shows the way with a hand gesture", "an usher directing guests", "this way please gesture",
        "pointing out the direction with an open palm", "a guide indicating where to go", "she gestures to the side",
        "a receptionist showing visitors the way", "directing traffic with one arm",
        "waiter gesturing toward the table", "an open-handed pointing gesture", "sweeping arm to show a path",
        "he motions someone to follow", "presenting something with the right hand",
        "indicating the exit with an arm", "a polite directing gesture", "gesture inviting someone in",
        "the host points the way", "showing where to sit", "a tour guide pointing",
        "extending an arm to guide someone",
    )),
}  # fmt: skip

#: (query, style group) — style-level queries; the style group names follow ``captions.STYLE_GROUPS``.
STYLE_QUERIES: tuple[tuple[str, str], ...] = (
    ("an old man shuffling along", "elderly"), ("a frail grandma waving", "elderly"),
    ("a senior citizen moving slowly with a bent back", "elderly"), ("granddad lifts his arm feebly", "elderly"),
    ("motion of an aged, stiff person", "elderly"), ("a weary person dragging their feet", "exhausted"),
    ("someone completely worn out", "exhausted"), ("drained of energy, barely moving", "exhausted"),
    ("a sleepy, fatigued character", "exhausted"), ("moving like after running a marathon", "exhausted"),
    ("a bubbly, energetic character", "active"), ("full of pep and vigour", "active"),
    ("someone bursting with energy", "active"), ("a lively, dynamic motion", "active"),
    ("springy, enthusiastic movement", "active"), ("a graceful, girly motion", "feminine"),
    ("elegant and dainty, like a lady", "feminine"), ("soft, womanly movement", "feminine"),
    ("a delicate, feminine gesture", "feminine"), ("moving with a feminine sway", "feminine"),
    ("a tough, manly gesture", "masculine"), ("a macho guy moving with broad shoulders", "masculine"),
    ("strong, masculine body language", "masculine"), ("a burly man's motion", "masculine"),
    ("moving like a bodybuilder", "masculine"), ("a young, sprightly motion", "youthful"),
    ("a teenager full of youth", "youthful"), ("fresh and young movement", "youthful"),
    ("someone in their twenties moving lightly", "youthful"), ("a spry young adult", "youthful"),
    ("plain, neutral movement", "normal"), ("an ordinary motion with no particular mood", "normal"),
    ("a standard, default motion", "normal"), ("nothing special, just a regular motion", "normal"),
    ("an everyday, unremarkable motion", "normal"),
)  # fmt: skip


def content_query_count() -> int:
    """Number of content queries."""
    return sum(len(q) for _, q in CONTENT_QUERIES.values())
