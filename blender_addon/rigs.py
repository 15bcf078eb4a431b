"""Rig builders and readers: armatures from rig dicts, and an armature's rest pose as a rig dict.

A *rig dict* is what the backend understands as a target (``Skeleton.to_dict()`` / ``TargetRig.to_dict()``):
``{"name", "joint_names", "parents", "rest_world": (J, 4, 4)}`` or ``{..., "rest_offsets": (J, 3)}``, metres,
backend space. Conversion to Blender space happens only through :mod:`.space`.

``bpy`` is imported inside the functions that need it, so the built-in rig tables can be checked against the
backend's skeleton registry without Blender.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import space

#: Built-in rigs (``smpl24``, ``kit21``, ``coco13``): the backend registry's skeletons (models/motion/skeleton.py),
#: copied because the add-on cannot import the backend; tests/models/test_retarget_blender_tables.py keeps them equal.
BUILTIN_RIGS: dict[str, dict[str, Any]] = {
    "smpl24": {
        "joint_names": [
            "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
            "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
            "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand",
            "right_hand",
        ],
        "parents": [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21],
        "rest_offsets": [
            (0.0, 0.91662, 0.0), (0.103074, 0.0, 0.0), (-0.109883, 0.0, 0.0), (0.0, 0.131568, 0.0),
            (0.0, -0.393623, 0.0), (0.0, -0.390188, 0.0), (0.0, 0.14319, 0.0), (0.0, -0.432433, 0.0),
            (0.0, -0.425643, 0.0), (0.0, 0.057365, 0.0), (0.0, 0.0, 0.143382), (0.0, 0.0, 0.149419),
            (0.0, 0.21936, 0.0), (0.137487, 0.0, 0.0), (-0.143383, 0.0, 0.0), (0.0, 0.103039, 0.0),
            (0.131614, 0.0, 0.0), (-0.122984, 0.0, 0.0), (0.25684, 0.0, 0.0), (-0.263092, 0.0, 0.0),
            (0.266012, 0.0, 0.0), (-0.269876, 0.0, 0.0), (0.085, 0.0, 0.0), (-0.085, 0.0, 0.0),
        ],
    },
    "kit21": {
        "joint_names": [
            "root", "BP", "BT", "BLN", "BUN", "LS", "LE", "LW", "RS", "RE", "RW", "LH", "LK", "LA", "LMrot", "LF", "RH",
            "RK", "RA", "RMrot", "RF",
        ],
        "parents": [-1, 0, 1, 2, 3, 3, 5, 6, 3, 8, 9, 0, 11, 12, 13, 14, 0, 16, 17, 18, 19],
        "rest_offsets": [
            (0.0, 0.89, 0.0), (0.0, 0.1, 0.0), (0.0, 0.15, 0.0), (0.0, 0.2, 0.0), (0.0, 0.15, 0.0), (0.18, 0.0, 0.0),
            (0.0, -0.28, 0.0), (0.0, -0.26, 0.0), (-0.18, 0.0, 0.0), (0.0, -0.28, 0.0), (0.0, -0.26, 0.0),
            (0.09, 0.0, 0.0), (0.0, -0.42, 0.0), (0.0, -0.41, 0.0), (0.0, 0.0, 0.06), (0.0, 0.0, 0.12),
            (-0.09, 0.0, 0.0), (0.0, -0.42, 0.0), (0.0, -0.41, 0.0), (0.0, 0.0, 0.06), (0.0, 0.0, 0.12),
        ],
    },
    "coco13": {
        "joint_names": [
            "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
            "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
        ],
        "parents": [-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6],
        "rest_offsets": [
            (0.0, 1.56, 0.09), (0.033, 0.03, -0.02), (-0.033, 0.03, -0.02), (0.042, -0.02, -0.07),
            (-0.042, -0.02, -0.07), (0.19, -0.14, -0.09), (-0.19, -0.14, -0.09), (0.26, 0.0, 0.0), (-0.26, 0.0, 0.0),
            (0.25, 0.0, 0.0), (-0.25, 0.0, 0.0), (-0.09, -0.47, 0.0), (0.09, -0.47, 0.0),
        ],
    },
}  # fmt: skip

#: Shortest bone Blender keeps (it deletes zero-length bones), metres.
MIN_BONE_LENGTH = 0.02


def builtin_rig(name: str) -> dict[str, Any]:
    """The rig dict of a built-in skeleton (``smpl24``, ``kit21``, ``coco13``). Raises ``ValueError`` otherwise."""
    try:
        table = BUILTIN_RIGS[name]
    except KeyError:
        raise ValueError(f"unknown built-in rig {name!r}; expected one of {', '.join(BUILTIN_RIGS)}") from None
    return {"name": name, **{k: list(v) for k, v in table.items()}}


def rest_frames(rig: dict[str, Any]) -> tuple[list[str], list[int], np.ndarray]:
    """``(joint names, parents, rest world matrices (J, 4, 4) in backend space)`` of a rig dict.

    Raises:
        ValueError: when keys are missing, lengths disagree or a parent does not precede its child.
    """
    try:
        names = [str(n) for n in rig["joint_names"]]
        parents = [int(p) for p in rig["parents"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"rig dict needs joint_names and parents ({exc})") from None
    num = len(names)
    if len(parents) != num or not num:
        raise ValueError(f"rig dict: {num} joint names but {len(parents)} parents")
    if any(not (-1 <= p < j) or (p == -1) != (j == 0) for j, p in enumerate(parents)):
        raise ValueError("rig dict: joint 0 must be the only root and parents must precede children")
    if "rest_world" in rig:
        frames = np.asarray(rig["rest_world"], dtype=np.float64)
        if frames.shape != (num, 4, 4):
            raise ValueError(f"rig dict: rest_world must be ({num}, 4, 4), got {frames.shape}")
    elif "rest_offsets" in rig:
        offsets = np.asarray(rig["rest_offsets"], dtype=np.float64)
        if offsets.shape != (num, 3):
            raise ValueError(f"rig dict: rest_offsets must be ({num}, 3), got {offsets.shape}")
        frames = np.tile(np.eye(4), (num, 1, 1))
        for j, p in enumerate(parents):
            frames[j, :3, 3] = offsets[j] + (frames[p, :3, 3] if p >= 0 else 0.0)
    else:
        raise ValueError("rig dict needs rest_world (J, 4, 4) or rest_offsets (J, 3)")
    if not np.isfinite(frames).all():
        raise ValueError("rig dict: rest pose contains NaN or infinity")
    return names, parents, frames


def bone_tails(heads: np.ndarray, parents: list[int]) -> np.ndarray:
    """Tail positions ``(J, 3)`` for bones with heads ``(J, 3)`` (any space).

    A bone points at its child; with several children at the one continuing its parent's direction (the root: the
    child with the largest subtree); a leaf or zero-length bone continues its parent's direction at half the parent's
    length (at least :data:`MIN_BONE_LENGTH`).
    """
    num = len(parents)
    children = [[c for c in range(num) if parents[c] == j] for j in range(num)]
    size = np.ones(num)
    for j in range(num - 1, 0, -1):
        size[parents[j]] += size[j]
    tails = heads.copy()
    for j in range(num):
        kids = [c for c in children[j] if np.linalg.norm(heads[c] - heads[j]) > MIN_BONE_LENGTH]
        if kids:
            if parents[j] >= 0 and len(kids) > 1:
                incoming = heads[j] - heads[parents[j]]
                score = [np.dot(incoming, heads[c] - heads[j]) / np.linalg.norm(heads[c] - heads[j]) for c in kids]
                tails[j] = heads[kids[int(np.argmax(score))]]
            else:
                tails[j] = heads[max(kids, key=lambda c: size[c])]
            continue
        p = parents[j]
        direction = heads[j] - heads[p] if p >= 0 else np.array([0.0, 0.0, 1.0])
        length = np.linalg.norm(direction)
        if length < 1e-9:
            direction, length = np.array([0.0, 0.0, 1.0]), 0.0
        tails[j] = heads[j] + direction / max(length, 1e-9) * max(0.5 * length, MIN_BONE_LENGTH)
    return tails


def build_armature(rig: dict[str, Any], name: str = "Baton Rig", collection=None):
    """A new armature object for a rig dict (rest pose as given), linked into ``collection`` (default: the scene's).

    Bone heads sit at the joints; tails follow :func:`bone_tails`. When the rig dict carries rest frames whose Y
    axis runs along the bone (a rig read back with :func:`armature_rig_dict`), the bone roll is restored from them.
    Pose bones use quaternion rotation.

    Returns:
        the armature ``bpy.types.Object``.

    Raises:
        ValueError: for a malformed rig dict (nothing is created).
    """
    import bpy
    from mathutils import Matrix, Vector

    names, parents, frames = rest_frames(rig)
    blender_frames = space.frames_to_blender(frames)
    heads = blender_frames[:, :3, 3]
    tails = bone_tails(heads, parents)
    armature = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, armature)
    (collection or bpy.context.scene.collection).objects.link(obj)
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        edit_bones = []
        for j, joint in enumerate(names):
            bone = armature.edit_bones.new(joint)
            bone.head = Vector(heads[j])
            bone.tail = Vector(tails[j])
            axis = blender_frames[j, :3, 1]
            along = (tails[j] - heads[j]) / np.linalg.norm(tails[j] - heads[j])
            if float(np.dot(axis, along)) > 0.999:  # the rig knows this bone's frame: keep its roll
                matrix = Matrix([list(row) for row in blender_frames[j]])
                length = bone.length
                bone.matrix = matrix
                bone.length = length
            if parents[j] >= 0:
                bone.parent = edit_bones[parents[j]]
                bone.use_connect = False
            edit_bones.append(bone)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous if previous is not None else obj
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
    obj["baton_rig"] = str(rig.get("name") or name)
    armature["baton_joint_order"] = names  # Blender stores bones depth-first; keep the rig's joint order
    return obj


def armature_rig_dict(obj) -> dict[str, Any]:
    """The rest pose of an armature object as a rig dict in backend space (``TargetRig.from_dict`` reads it).

    Bones are listed parents first. Rest frames are the bones' ``matrix_local`` (bone roll included) turned and
    scaled by the object's rotation and scale (:func:`rest_frames_of`), then converted by :mod:`.space`: an FBX
    import lying on its back in armature space with a 0.01 object scale reads as an upright rig in metres. The
    object's location is not included, so a motion plays from wherever the object stands. With several root bones
    only the largest hierarchy is kept.

    Raises:
        ValueError: when ``obj`` is not an armature or has no bones.
    """
    if getattr(obj, "type", None) != "ARMATURE":
        raise ValueError(f"{getattr(obj, 'name', obj)!r} is not an armature")
    bones = list(obj.data.bones)
    if not bones:
        raise ValueError(f"armature {obj.name!r} has no bones")
    roots = [b for b in bones if b.parent is None]

    def tree(root) -> set[str]:
        names, stack = set(), [root]
        while stack:
            bone = stack.pop()
            names.add(bone.name)
            stack.extend(bone.children)
        return names

    keep = max((tree(r) for r in roots), key=len)
    # The rig's joint order when this armature was built by build_armature, else Blender's (depth-first) order;
    # either way made parents-first by a stable topological pass.
    stored = [str(n) for n in obj.data.get("baton_joint_order", [])]
    by_name = {b.name: b for b in bones}
    if set(stored) == keep:
        bones = [by_name[n] for n in stored]
    ordered, emitted, pending = [], set(), [b for b in bones if b.name in keep]
    while pending:
        rest = []
        for bone in pending:
            if bone.parent is None or bone.parent.name in emitted:
                ordered.append(bone)
                emitted.add(bone.name)
            else:
                rest.append(bone)
        pending = rest
    index = {b.name: i for i, b in enumerate(ordered)}
    frames, _ = rest_frames_of(obj, [b.name for b in ordered])
    return {
        "name": obj.name,
        "joint_names": [b.name for b in ordered],
        "parents": [index[b.parent.name] if b.parent is not None else -1 for b in ordered],
        "rest_world": space.frames_to_backend(frames).tolist(),
    }


def rest_frames_of(obj, bone_names) -> tuple[np.ndarray, float]:
    """Rest frames ``(J, 4, 4)`` (Blender axes) of the named bones with the object's rotation and uniform scale
    applied (not its location), and that scale.

    ``frame = [R_obj B | s R_obj head]`` for a bone with rest matrix ``[B | head]`` (``matrix_local``), object
    rotation ``R_obj`` and scale ``s`` (the mean of the object's axis scales).
    """
    linear = np.array([list(row) for row in obj.matrix_world.to_3x3()], dtype=np.float64)
    axis_scales = np.linalg.norm(linear, axis=0)
    scale = float(axis_scales.mean())
    if scale <= 0 or not np.isfinite(scale):
        raise ValueError(f"armature {obj.name!r} has a zero or invalid object scale")
    rotation = linear / axis_scales
    local = np.array([[list(row) for row in obj.data.bones[n].matrix_local] for n in bone_names], dtype=np.float64)
    frames = np.tile(np.eye(4), (len(bone_names), 1, 1))
    basis = local[:, :3, :3] / np.linalg.norm(local[:, :3, :3], axis=1, keepdims=True)  # drop any bone scale
    frames[:, :3, :3] = rotation @ basis
    frames[:, :3, 3] = scale * local[:, :3, 3] @ rotation.T
    return frames, scale
