"""Bone mapping for custom rigs: name alias tables, automatic mapping, translation and JSON presets (no bpy).

A *mapping* assigns each bone of the user's armature a **canonical joint**: one of the SMPL-24 joint names
(``pelvis``, ``left_hip``, ... ``right_hand``; ../shared/data/README.md) or a COCO face point (``nose``, eyes, ears).
Before a job is sent, the canonical names are translated to the joint names of the motion's source skeleton
(``smpl24``, ``smpl22``, ``kit21``, ``coco13``) with :func:`to_source_joints`.

Automatic mapping works in two passes:

1. The retargeting solver's own tables (:mod:`.mapping_tables`, a mirror of ``models.motion.joint_mapping``): the
   convention matching most bone names wins, names compared after :func:`normalize_name`. Bones found here get
   exactly the joint the backend would choose by itself.
2. For bones the tables do not know, a looser rule per naming family (:data:`FAMILIES`): side markers are normalised
   (``Left``/``Right`` prefixes, ``.L``/``_R`` suffixes, ``L``/``R`` before a capital), then the remaining word is
   looked up (Mixamo ``LeftShoulder`` is the clavicle, CMU's is the upper arm, so the family decides).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence

from .mapping_tables import CONVENTIONS

#: The canonical joints: SMPL-24 order, then the COCO face points.
CANONICAL_JOINTS: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
    "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
)  # fmt: skip

PRESET_FORMAT = "baton.bone_mapping.v1"

# Per family: normalised word -> canonical joint. A sided word maps to a "side-less" base name (``hip``) which
# becomes ``left_hip`` / ``right_hip``; an unsided word maps to a full canonical name (``pelvis``).
_SIDED: dict[str, dict[str, str]] = {
    "smpl": {"hip": "hip", "knee": "knee", "ankle": "ankle", "foot": "foot", "collar": "collar",
             "shoulder": "shoulder", "elbow": "elbow", "wrist": "wrist", "hand": "hand"},
    "mixamo": {"upleg": "hip", "leg": "knee", "foot": "ankle", "toebase": "foot", "shoulder": "collar",
               "arm": "shoulder", "forearm": "elbow", "hand": "wrist"},
    "rigify": {"thigh": "hip", "shin": "knee", "foot": "ankle", "toe": "foot", "shoulder": "collar",
               "upperarm": "shoulder", "forearm": "elbow", "hand": "wrist"},
    "bandai": {"upperleg": "hip", "lowerleg": "knee", "foot": "ankle", "toes": "foot", "shoulder": "collar",
               "upperarm": "shoulder", "lowerarm": "elbow", "hand": "wrist"},
    "cmu": {"hip": "hip", "knee": "knee", "ankle": "ankle", "toe": "foot", "collar": "collar",
            "shoulder": "shoulder", "elbow": "elbow", "wrist": "wrist"},
    "coco": {"hip": "hip", "shoulder": "shoulder", "elbow": "elbow", "wrist": "wrist"},
}  # fmt: skip
_UNSIDED: dict[str, dict[str, str]] = {
    "smpl": {"pelvis": "pelvis", "spine1": "spine1", "spine2": "spine2", "spine3": "spine3", "neck": "neck",
             "head": "head"},
    "mixamo": {"hips": "pelvis", "spine": "spine1", "spine1": "spine2", "spine2": "spine3", "neck": "neck",
               "head": "head"},
    "rigify": {"spine": "pelvis", "spine001": "spine1", "spine002": "spine2", "spine003": "spine3",
               "spine004": "neck", "spine006": "head"},
    "bandai": {"hips": "pelvis", "spine": "spine1", "chest": "spine3", "neck": "neck", "head": "head"},
    "cmu": {"hips": "pelvis", "lowerback": "spine1", "chest": "spine2", "chest2": "spine3", "neck": "neck",
            "head": "head", "lhand": "left_hand", "rhand": "right_hand"},
    "coco": {"nose": "head"},
}  # fmt: skip
#: KIT-ML / MMM joint names are abbreviations matched exactly (case-sensitive).
_KIT_EXACT = {
    "root": "pelvis", "BP": "spine1", "BT": "spine3", "BLN": "neck", "BUN": "head", "LS": "left_shoulder",
    "LE": "left_elbow", "LW": "left_wrist", "RS": "right_shoulder", "RE": "right_elbow", "RW": "right_wrist",
    "LH": "left_hip", "LK": "left_knee", "LA": "left_ankle", "LMrot": "left_foot", "RH": "right_hip",
    "RK": "right_knee", "RA": "right_ankle", "RMrot": "right_foot",
}  # fmt: skip
FAMILIES: tuple[str, ...] = ("smpl", "kit", "coco", "mixamo", "rigify", "bandai", "cmu")

#: Canonical joint -> joint of each built-in source skeleton (missing: that skeleton has no such joint).
_TO_SOURCE: dict[str, dict[str, str]] = {
    "smpl24": dict(CONVENTIONS["smpl"]),
    "smpl22": {c: n for c, n in CONVENTIONS["smpl"].items() if c not in ("left_hand", "right_hand")},
    "kit21": dict(CONVENTIONS["kit"]),
    "coco13": dict(CONVENTIONS["coco"]),
}

#: Source skeletons :func:`to_source_joints` can translate to.
SOURCE_SKELETONS: tuple[str, ...] = tuple(_TO_SOURCE)

_SIDE_SUFFIX = re.compile(r"(?:[._\- ](?P<s>[LlRr])|[._\- ]?(?P<w>[Ll]eft|[Rr]ight|LEFT|RIGHT))$")
_SIDE_PREFIX_WORD = re.compile(r"^(?P<w>[Ll]eft|[Rr]ight|LEFT|RIGHT)[._\- ]?")
_SIDE_PREFIX_LETTER = re.compile(r"^(?P<s>[LR])(?=[A-Z_.\- ])|^(?P<l>[lr])[_.\- ]")
_NAMESPACE_PREFIX = re.compile(r"^(?:DEF|ORG)[-_.]", re.IGNORECASE)


def normalize_name(name: str) -> str:
    """A name reduced for table matching, as the solver does it: namespace (``mixamorig:``) and ``DEF-`` removed,
    lower case, only letters and digits (``DEF-upper_arm.L`` -> ``upperarml``)."""
    text = str(name).strip()
    if ":" in text:
        text = text.rsplit(":", 1)[1]
    if text.lower().startswith("def-"):
        text = text[4:]
    return re.sub(r"[^a-z0-9]", "", text.lower())


def convention_joints(bone_names: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """Pass 1: ``(best convention or None, {bone name: canonical joint})`` from :data:`CONVENTIONS` (the convention
    matching most names wins; ties go to the earlier table), exactly as ``joint_mapping.canonical_names``."""
    normalized = {normalize_name(n): n for n in bone_names}
    best: tuple[int, str | None, dict[str, str]] = (0, None, {})
    for convention, table in CONVENTIONS.items():
        found = {normalized[normalize_name(n)]: c for c, n in table.items() if normalize_name(n) in normalized}
        if len(found) > best[0]:
            best = (len(found), convention, found)
    return best[1], best[2]


def split_side(bone_name: str) -> tuple[str, str]:
    """Split a bone name into ``(side, word)``.

    Args:
        bone_name: any bone or joint name, e.g. ``"mixamorig:LeftForeArm"``, ``"DEF-forearm.L"``, ``"LowerArm_L"``.

    Returns:
        ``side`` in ``{"left", "right", ""}`` and ``word``: the rest lower-cased with every non-alphanumeric
        character removed (``("left", "forearm")`` for all three examples).
    """
    name = str(bone_name).split(":")[-1].split("|")[-1].strip()
    name = _NAMESPACE_PREFIX.sub("", name)
    side = ""
    match = _SIDE_SUFFIX.search(name)
    if match:
        side = (match.group("s") or match.group("w"))[0].lower()
        name = name[: match.start()]
    else:
        match = _SIDE_PREFIX_WORD.match(name) or _SIDE_PREFIX_LETTER.match(name)
        if match:
            side = next(g for g in match.groups() if g)[0].lower()
            name = name[match.end() :]
    word = re.sub(r"[^a-z0-9]", "", name.lower())
    return {"l": "left", "r": "right", "": ""}[side], word


def canonical_joint(bone_name: str, family: str) -> str | None:
    """The canonical joint ``bone_name`` stands for in naming ``family``, or ``None``.

    Raises:
        ValueError: for an unknown family (the message lists :data:`FAMILIES`).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown naming family {family!r}; known: {', '.join(FAMILIES)}")
    if family == "kit":
        return _KIT_EXACT.get(str(bone_name).split(":")[-1])
    side, word = split_side(bone_name)
    if side:
        base = _SIDED[family].get(word)
        return f"{side}_{base}" if base else None
    return _UNSIDED[family].get(word)


def detect_family(bone_names: Iterable[str]) -> str:
    """The naming family that recognises the most of ``bone_names`` (ties: the order of :data:`FAMILIES`)."""
    names = list(bone_names)
    scores = {family: sum(canonical_joint(n, family) is not None for n in names) for family in FAMILIES}
    return max(FAMILIES, key=lambda family: (scores[family], -FAMILIES.index(family)))


def auto_map(bone_names: Sequence[str], family: str | None = None) -> dict[str, str]:
    """Map each bone of a rig to a canonical joint by name (pass 1 tables, then pass 2 family rules).

    Args:
        bone_names: the armature's bone names, parents before children (Blender's ``armature.bones`` order).
        family: the naming family of pass 2 (:data:`FAMILIES`); ``None`` detects it with :func:`detect_family`.

    Returns:
        ``{bone name: canonical joint}`` for every bone, ``""`` where nothing matched. A joint is never given to two
        bones: pass 1 wins, then the bone closest to the root.
    """
    _, result = convention_joints(bone_names)
    taken = set(result.values())
    family = family or detect_family(bone_names)
    for name in bone_names:
        if name in result:
            continue
        joint = canonical_joint(name, family) or ""
        if joint in taken:
            joint = ""
        if joint:
            taken.add(joint)
        result[name] = joint
    return {name: result[name] for name in bone_names}


def validate_mapping(mapping: Mapping[str, str], bone_names: Iterable[str]) -> None:
    """Check a ``{bone: canonical joint}`` mapping against a rig.

    Raises:
        ValueError: naming bones the rig lacks, joints outside :data:`CANONICAL_JOINTS`, or a joint used twice.
    """
    bones = set(bone_names)
    missing = sorted(b for b in mapping if b not in bones)
    if missing:
        raise ValueError(f"the mapping names bones the armature does not have: {missing}")
    unknown = sorted({j for j in mapping.values() if j and j not in CANONICAL_JOINTS})
    if unknown:
        raise ValueError(f"unknown joints {unknown}; expected canonical joint names such as 'left_elbow'")
    used = [j for j in mapping.values() if j]
    twice = sorted({j for j in used if used.count(j) > 1})
    if twice:
        raise ValueError(f"joints mapped from more than one bone: {twice}")


def to_source_joints(mapping: Mapping[str, str], source_skeleton: str) -> dict[str, str]:
    """Translate ``{bone: canonical joint}`` into ``{bone: source joint}`` for a built-in source skeleton.

    Bones whose canonical joint the source skeleton lacks (e.g. ``spine2`` for ``coco13``) and unmapped bones are
    left out: the solver keeps them at rest.

    Raises:
        ValueError: for a source skeleton other than ``smpl24``, ``smpl22``, ``kit21``, ``coco13``.
    """
    try:
        table = _TO_SOURCE[source_skeleton]
    except KeyError:
        raise ValueError(f"unknown source skeleton {source_skeleton!r}; known: {', '.join(_TO_SOURCE)}") from None
    return {bone: table[joint] for bone, joint in mapping.items() if joint in table}


def preset_to_json(mapping: Mapping[str, str], rig_name: str = "") -> str:
    """Serialise a mapping as a preset document (``{"format", "rig", "mapping"}``, keys sorted)."""
    payload = {"format": PRESET_FORMAT, "rig": rig_name, "mapping": {k: mapping[k] for k in mapping}}
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def preset_from_json(text: str) -> dict[str, str]:
    """Parse a preset written by :func:`preset_to_json`.

    Raises:
        ValueError: for invalid JSON, another format tag, or a mapping that is not ``{str: str}`` with canonical
            joint names.
    """
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"bone-mapping preset is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != PRESET_FORMAT:
        raise ValueError(f"not a Baton bone-mapping preset (expected format {PRESET_FORMAT!r})")
    mapping = payload.get("mapping")
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ValueError("bone-mapping preset: 'mapping' must be an object of bone name -> joint name strings")
    unknown = sorted({j for j in mapping.values() if j and j not in CANONICAL_JOINTS})
    if unknown:
        raise ValueError(f"bone-mapping preset uses unknown joints {unknown}")
    return dict(mapping)


def save_preset(path: str, mapping: Mapping[str, str], rig_name: str = "") -> None:
    """Write a preset atomically (temporary file in the same folder, then ``os.replace``)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".baton-preset-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(preset_to_json(mapping, rig_name))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_preset(path: str) -> dict[str, str]:
    """Read a preset file. Raises ``FileNotFoundError`` or ``ValueError`` (see :func:`preset_from_json`)."""
    with open(path, encoding="utf-8") as handle:
        return preset_from_json(handle.read())
