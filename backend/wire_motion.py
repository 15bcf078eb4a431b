"""``Motion`` <-> the JSON wire payload (../shared/DESIGN.md §2; format in :mod:`blender_addon.wire`)."""

from __future__ import annotations

import json

import numpy as np

from blender_addon.wire import WireMotion, decode_motion, encode_motion
from models.motion import Motion, Skeleton, get_skeleton, skeleton_names


def json_safe(metadata: dict) -> dict:
    """Metadata reduced to what JSON can carry (numpy scalars and paths become numbers and strings)."""
    return json.loads(json.dumps(metadata, default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))


def motion_to_payload(motion: Motion) -> dict:
    """The wire payload of ``motion``: skeleton, fps, positions, rotations and root translation when present."""
    skel = motion.skeleton
    return encode_motion(
        WireMotion(
            skeleton_name=skel.name,
            joint_names=list(skel.joint_names),
            parents=list(skel.parents),
            rest_offsets=skel.rest_offsets,
            fps=motion.fps,
            positions=motion.positions,
            rotations=motion.rotations,
            root_translation=motion.root_translation,
            metadata=json_safe(motion.metadata),
        )
    )


def motion_from_payload(payload: dict) -> Motion:
    """A validated :class:`Motion` from a wire payload. A built-in skeleton name with matching joints maps to the
    registry skeleton (so ``coco13`` keeps its chains).

    Raises:
        ValueError: for malformed payloads, bad shapes, non-finite values or non-unit quaternions.
    """
    wire = decode_motion(payload)
    skeleton = Skeleton(
        name=wire.skeleton_name,
        joint_names=tuple(wire.joint_names),
        parents=tuple(wire.parents),
        rest_offsets=wire.rest_offsets,
    )
    if wire.skeleton_name in skeleton_names():
        builtin = get_skeleton(wire.skeleton_name)
        if builtin.joint_names == skeleton.joint_names and builtin.parents == skeleton.parents:
            skeleton = Skeleton(
                builtin.name, builtin.joint_names, builtin.parents, wire.rest_offsets, builtin.chains, builtin.end_sites
            )
    return Motion(
        skeleton=skeleton,
        fps=wire.fps,
        positions=wire.positions,
        rotations=wire.rotations,
        root_translation=wire.root_translation,
        metadata=wire.metadata,
    )
