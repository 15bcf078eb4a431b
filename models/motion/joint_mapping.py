"""Joint mapping for retargeting: alias tables from rig naming conventions to canonical joint names.

Every skeleton's joints are first named in a *canonical* vocabulary (the SMPL-24 body joints plus the COCO face
points). A target joint then maps to the source joint with the same canonical name. The tables below cover the
naming conventions Baton meets: SMPL (HumanML3D and the SMPL Blender add-on), KIT-ML / MMM, COCO keypoints, Mixamo
(``mixamorig:``), Rigify deform bones (``DEF-``), Bandai Namco motion dataset, CMU mocap (original ASF-derived BVH),
the common BVH / Unity humanoid names and 3ds Max Biped. Names are compared after :func:`normalize_name`, so
``mixamorig:LeftArm``, ``mixamorig1:LeftArm`` and ``LeftArm`` are the same joint.

An explicit mapping (``{target joint: source joint}``, e.g. from a JSON file, see :func:`load_mapping_file`)
overrides the automatic one entry by entry; a ``null`` value unmaps a target joint. Unmapped target joints keep
their rest pose relative to their parent.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from models.motion.skeleton import COCO13_NAMES, SMPL24_NAMES

#: The canonical vocabulary: SMPL-24 joints plus COCO face points.
CANONICAL_JOINTS: tuple[str, ...] = SMPL24_NAMES + ("nose", "left_eye", "right_eye", "left_ear", "right_ear")

#: Canonical joints of the legs and pelvis (held at rest when a 2D upper-body source drives a rig).
LOWER_BODY_JOINTS = frozenset(
    {"pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_foot",
     "right_foot"}
)  # fmt: skip


def _sided(table: dict[str, str], pattern: dict[str, str], left: str, right: str) -> dict[str, str]:
    """Expand ``{"{s}_hip": "Hip{S}"}``-style patterns for both sides."""
    out = dict(table)
    for canonical, name in pattern.items():
        out[canonical.replace("{s}", "left")] = name.replace("{S}", left)
        out[canonical.replace("{s}", "right")] = name.replace("{S}", right)
    return out


_LIMBS = ("collar", "shoulder", "elbow", "wrist", "hand", "hip", "knee", "ankle", "foot")

#: Convention name -> {canonical joint: joint name in that convention}.
CONVENTIONS: dict[str, dict[str, str]] = {
    "smpl": {name: name for name in SMPL24_NAMES},
    "smpl_blender": _sided(
        {"pelvis": "Pelvis", "spine1": "Spine1", "spine2": "Spine2", "spine3": "Spine3", "neck": "Neck",
         "head": "Head"},
        {f"{{s}}_{limb}": f"{{S}}_{limb.capitalize()}" for limb in _LIMBS},
        "L", "R",
    ),
    "kit": {
        "pelvis": "root", "spine1": "BP", "spine3": "BT", "neck": "BLN", "head": "BUN",
        "left_shoulder": "LS", "left_elbow": "LE", "left_wrist": "LW", "right_shoulder": "RS", "right_elbow": "RE",
        "right_wrist": "RW", "left_hip": "LH", "left_knee": "LK", "left_ankle": "LA", "left_foot": "LF",
        "right_hip": "RH", "right_knee": "RK", "right_ankle": "RA", "right_foot": "RF",
    },
    "coco": {name: name for name in COCO13_NAMES},
    "coco_lifted": {name: name for name in COCO13_NAMES + ("pelvis", "spine3", "head")},
    "mixamo": _sided(
        {"pelvis": "Hips", "spine1": "Spine", "spine2": "Spine1", "spine3": "Spine2", "neck": "Neck", "head": "Head"},
        {"{s}_collar": "{S}Shoulder", "{s}_shoulder": "{S}Arm", "{s}_elbow": "{S}ForeArm", "{s}_wrist": "{S}Hand",
         "{s}_hip": "{S}UpLeg", "{s}_knee": "{S}Leg", "{s}_ankle": "{S}Foot", "{s}_foot": "{S}ToeBase"},
        "Left", "Right",
    ),
    "unity": _sided(
        {"pelvis": "Hips", "spine1": "Spine", "spine2": "Chest", "spine3": "UpperChest", "neck": "Neck",
         "head": "Head"},
        {"{s}_collar": "{S}Shoulder", "{s}_shoulder": "{S}UpperArm", "{s}_elbow": "{S}LowerArm",
         "{s}_wrist": "{S}Hand", "{s}_hip": "{S}UpperLeg", "{s}_knee": "{S}LowerLeg", "{s}_ankle": "{S}Foot",
         "{s}_foot": "{S}Toes"},
        "Left", "Right",
    ),
    "rigify": _sided(
        {"pelvis": "spine", "spine1": "spine.001", "spine2": "spine.002", "spine3": "spine.003",
         "neck": "spine.004", "head": "spine.006"},
        {"{s}_collar": "shoulder.{S}", "{s}_shoulder": "upper_arm.{S}", "{s}_elbow": "forearm.{S}",
         "{s}_wrist": "hand.{S}", "{s}_hip": "thigh.{S}", "{s}_knee": "shin.{S}", "{s}_ankle": "foot.{S}",
         "{s}_foot": "toe.{S}"},
        "L", "R",
    ),
    "bandai": _sided(
        {"pelvis": "Hips", "spine1": "Spine", "spine3": "Chest", "neck": "Neck", "head": "Head"},
        {"{s}_collar": "Shoulder_{S}", "{s}_shoulder": "UpperArm_{S}", "{s}_elbow": "LowerArm_{S}",
         "{s}_wrist": "Hand_{S}", "{s}_hip": "UpperLeg_{S}", "{s}_knee": "LowerLeg_{S}", "{s}_ankle": "Foot_{S}",
         "{s}_foot": "Toes_{S}"},
        "L", "R",
    ),
    # CMU's collar joints sit at the chest centre (zero-length bones), so they are left unmapped: the chest then
    # aims at the shoulder joints, which carry the shoulder line.
    "cmu": _sided(
        {"pelvis": "Hips", "spine1": "Chest", "spine3": "Chest2", "neck": "Neck", "head": "Head"},
        {"{s}_shoulder": "{S}Shoulder", "{s}_elbow": "{S}Elbow", "{s}_wrist": "{S}Wrist", "{s}_hand": "{S}Fingers",
         "{s}_hip": "{S}Hip", "{s}_knee": "{S}Knee", "{s}_ankle": "{S}Ankle", "{s}_foot": "{S}Toe"},
        "Left", "Right",
    ),
    "biped": _sided(
        {"pelvis": "Bip01 Pelvis", "spine1": "Bip01 Spine", "spine2": "Bip01 Spine1", "spine3": "Bip01 Spine2",
         "neck": "Bip01 Neck", "head": "Bip01 Head"},
        {"{s}_collar": "Bip01 {S} Clavicle", "{s}_shoulder": "Bip01 {S} UpperArm", "{s}_elbow": "Bip01 {S} Forearm",
         "{s}_wrist": "Bip01 {S} Hand", "{s}_hip": "Bip01 {S} Thigh", "{s}_knee": "Bip01 {S} Calf",
         "{s}_ankle": "Bip01 {S} Foot", "{s}_foot": "Bip01 {S} Toe0"},
        "L", "R",
    ),
}  # fmt: skip
# CMU writes the fingers joint as LFingers / RFingers.
CONVENTIONS["cmu"]["left_hand"] = "LFingers"
CONVENTIONS["cmu"]["right_hand"] = "RFingers"

def normalize_name(name: str) -> str:
    """A joint name reduced for matching: namespace (``mixamorig:``) and Rigify ``DEF-`` prefixes removed,
    lower case, only letters and digits kept (``DEF-upper_arm.L`` -> ``upperarml``)."""
    text = str(name).strip()
    if ":" in text:
        text = text.rsplit(":", 1)[1]
    if text.lower().startswith("def-"):
        text = text[4:]
    return re.sub(r"[^a-z0-9]", "", text.lower())


def canonical_names(joint_names: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """Name a skeleton's joints canonically.

    The convention whose table matches most of ``joint_names`` wins (ties go to the earlier table in
    :data:`CONVENTIONS`).

    Returns:
        ``(convention name or None when nothing matched, {canonical joint: joint name})``.
    """
    normalized: dict[str, str] = {}
    for name in joint_names:  # on a name clash (Rigify's control "shoulder.L" vs "DEF-shoulder.L") deform bones win
        key = normalize_name(name)
        deform = str(name).upper().startswith("DEF-")
        if key not in normalized or (deform and not normalized[key].upper().startswith("DEF-")):
            normalized[key] = name
    best: tuple[int, str | None, dict[str, str]] = (0, None, {})
    for convention, table in CONVENTIONS.items():
        found = {c: normalized[normalize_name(n)] for c, n in table.items() if normalize_name(n) in normalized}
        if len(found) > best[0]:
            best = (len(found), convention, found)
    return best[1], best[2]


def auto_mapping(source_names: Sequence[str], target_names: Sequence[str]) -> dict[str, str]:
    """The automatic ``{target joint: source joint}`` mapping through canonical names.

    Joints sharing their exact name in both skeletons (self-retargeting, same-convention rigs) map directly even
    when no table knows them.
    """
    _, source = canonical_names(source_names)
    _, target = canonical_names(target_names)
    mapping = {target[c]: source[c] for c in target if c in source}
    # Same-name fallback only between joints no table gives a role (``LeftShoulder`` is a collar in Mixamo but an
    # upper arm in CMU, so named roles never match by spelling alone).
    source_free = set(source_names) - set(source.values())
    target_roled = set(target.values())
    for name in target_names:
        if name not in mapping and name not in target_roled and name in source_free:
            mapping[name] = name
    return {name: mapping[name] for name in target_names if name in mapping}


def resolve_mapping(
    source_names: Sequence[str],
    target_names: Sequence[str],
    explicit: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """The automatic mapping with ``explicit`` entries applied on top (``None`` unmaps a target joint).

    Raises:
        ValueError: when ``explicit`` names a target joint the target lacks or a source joint the source lacks
            (all offending names are listed), or when the result maps no joint at all.
        TypeError: when ``explicit`` is not a mapping of strings.
    """
    mapping = auto_mapping(source_names, target_names)
    if explicit is not None:
        if not isinstance(explicit, Mapping):
            raise TypeError(f"mapping must be a dict {{target joint: source joint}}, got {type(explicit).__name__}")
        target_set, source_set = set(target_names), set(source_names)
        missing_target = [t for t in explicit if t not in target_set]
        missing_source = [s for s in explicit.values() if s is not None and s not in source_set]
        bad_types = [k for k, v in explicit.items() if not isinstance(k, str) or not (v is None or isinstance(v, str))]
        if bad_types:
            raise TypeError(f"mapping entries must be strings (or null to unmap), bad entries: {bad_types}")
        problems = []
        if missing_target:
            problems.append(f"target joints not in the target rig: {missing_target}")
        if missing_source:
            problems.append(f"source joints not in the source skeleton: {missing_source}")
        if problems:
            raise ValueError("mapping names missing bones: " + "; ".join(problems))
        for target, source in explicit.items():
            if source is None:
                mapping.pop(target, None)
            else:
                mapping[target] = source
        mapping = {name: mapping[name] for name in target_names if name in mapping}
    if not mapping:
        raise ValueError(
            "no joint of the target maps to the source: names match no known convention "
            f"(source joints {list(source_names)[:8]}..., target joints {list(target_names)[:8]}...); "
            "pass an explicit mapping {target joint: source joint}"
        )
    return mapping


def load_mapping_file(path: str | os.PathLike) -> dict[str, str | None]:
    """Read an explicit mapping from JSON: ``{"target joint": "source joint" | null, ...}`` or the same object
    under a ``"mapping"`` key.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when it is not JSON or not an object of strings.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mapping file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON mapping file ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("mapping"), dict):
        data = data["mapping"]
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in data.items()
    ):
        raise ValueError(f'{path}: expected a JSON object {{"target joint": "source joint" or null}}')
    return data


def canonical_role(joint_name: str, joint_names: Sequence[str]) -> str | None:
    """The canonical name of one joint of a skeleton (``None`` when it has none)."""
    _, table = canonical_names(joint_names)
    for canonical, name in table.items():
        if name == joint_name:
            return canonical
    return None
