"""Cross-skeleton training views: every training clip retargeted onto other skeletons (Motion Patches, Yu et al.
CVPR 2024, §3: the body-part representation is meant to make motions on different skeletons comparable; the
encoder only learns that when it sees the same motion on several skeletons).

A clip recorded on one skeleton (all Bandai Namco clips share one 21(+root)-joint rig) teaches the encoder that
skeleton's proportions, joint placement along the chains and rest posture; a walk on the CMU 31-joint skeleton then
looks foreign and lands near unrelated clips. :func:`skeleton_views` removes that shortcut: it retargets the clip
(:func:`models.motion.retarget.retarget`, positions only, at the feature frame rate) onto each skeleton of
:data:`VIEW_SKELETONS`, each with its body proportions jittered per region (legs, spine, arms: independent factors in
``[1 - jitter, 1 + jitter]``), and returns the canonical body-part points of every view. Training samples one view
per clip and step (:mod:`models.retrieval.training`).

View skeletons (names in :data:`VIEW_SKELETONS`):
- ``smpl24`` and ``kit21``: the registry skeletons;
- ``cmu31``: the CMU mocap 31-joint skeleton, read from the header of a CMU subject-131 BVH in the data folder;
- ``self``: the clip's own skeleton (proportion jitter only).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.motion.kinematics import resample
from models.motion.motion import Motion
from models.motion.skeleton import Skeleton, get_skeleton
from models.retrieval.body_parts import body_parts
from models.retrieval.features import canonical_points

#: Skeletons every training clip is retargeted onto, in this order.
VIEW_SKELETONS = ("smpl24", "kit21", "cmu31", "self")
#: Half-width of the uniform per-region proportion factor.
PROPORTION_JITTER = 0.12
CMU_SKELETON_BVH = Path("cmu_mocap_subject131_bvh") / "131_01.bvh"


def view_skeletons(data_dir: str | Path, names: Sequence[str] = VIEW_SKELETONS) -> dict[str, Skeleton | None]:
    """The skeletons named in ``names`` (``self`` maps to ``None``: the clip's own skeleton).

    Raises:
        ValueError: for an unknown name. FileNotFoundError: when ``cmu31`` is asked for and the CMU BVH is missing.
    """
    from models.motion.bvh import read_bvh

    out: dict[str, Skeleton | None] = {}
    for name in names:
        if name == "self":
            out[name] = None
        elif name == "cmu31":
            path = Path(data_dir) / CMU_SKELETON_BVH
            if not path.is_file():
                raise FileNotFoundError(f"cmu31 view skeleton: {path} not found")
            out[name] = read_bvh(path).to_motion().skeleton
        elif name in ("smpl24", "smpl22", "kit21"):
            out[name] = get_skeleton(name)
        else:
            raise ValueError(f"unknown view skeleton {name!r}; use smpl24, smpl22, kit21, cmu31 or self")
    return out


def jitter_proportions(skeleton: Skeleton, rng: np.random.Generator, jitter: float = PROPORTION_JITTER) -> Skeleton:
    """``skeleton`` with its leg, spine and arm bones scaled by three independent factors in ``[1 - jitter,
    1 + jitter]`` (both legs and both arms alike; joints off the five chains, e.g. fingers, follow the region of their
    nearest chain ancestor).

    Raises:
        ValueError: when the skeleton has no identifiable body parts (:func:`body_parts`).
    """
    parts = body_parts(skeleton)
    factors = rng.uniform(1.0 - jitter, 1.0 + jitter, size=3)  # legs, spine, arms
    region = np.full(skeleton.num_joints, -1)
    for part, chain in enumerate(parts.chains):
        for j in chain[1:]:  # the chain's first joint (pelvis / chest) belongs to the chain above it
            region[j] = (0, 0, 1, 2, 2)[part]
    scale = np.ones(skeleton.num_joints, np.float32)
    for j in range(skeleton.num_joints):
        r, k = region[j], j
        while r < 0 and skeleton.parents[k] >= 0:
            k = skeleton.parents[k]
            r = region[k]
        scale[j] = factors[r] if (r >= 0 and j > 0) else 1.0
    return Skeleton(name=f"{skeleton.name}~", joint_names=skeleton.joint_names, parents=skeleton.parents,
                    rest_offsets=skeleton.rest_offsets * scale[:, None], chains=skeleton.chains)  # fmt: skip


def _signature(skeleton: Skeleton) -> bytes:
    return repr((skeleton.joint_names, skeleton.parents)).encode() + skeleton.rest_offsets.tobytes()


def skeleton_views(
    motions: Sequence[Motion],
    targets: dict[str, Skeleton | None],
    fps: float,
    rng: np.random.Generator,
    jitter: float = PROPORTION_JITTER,
    chunk: int = 32,
) -> list[list[np.ndarray]]:
    """Canonical body-part points of every motion retargeted onto every target: ``views[i][t]`` is ``(T_i', 80, 3)``
    float32 for motion ``i`` on target ``t`` (in ``targets`` order; ``None`` = the motion's own skeleton).

    Each motion is resampled to ``fps`` (the feature rate) and retargeted from its positions (full root motion, feet
    pinned during contacts; :func:`models.motion.retarget.retarget`). Retargeting costs mostly per joint, not per
    frame, so motions on the same skeleton are retargeted ``chunk`` at a time, joined end to end in time (each
    clip's canonical points are then computed from its own frames, so the joins do not leak between clips); each
    chunk and target gets its own proportion jitter (:func:`jitter_proportions`).

    Raises:
        ValueError: for a 2D motion or a skeleton without identifiable limbs.
    """
    from models.motion.retarget import retarget

    if any(m.is_2d for m in motions):
        raise ValueError("skeleton views need 3D motions")
    views: list[list[np.ndarray]] = [[] for _ in motions]
    groups: dict[bytes, list[int]] = {}
    for i, motion in enumerate(motions):
        groups.setdefault(_signature(motion.skeleton), []).append(i)
    for members in groups.values():
        for begin in range(0, len(members), chunk):
            indices = members[begin : begin + chunk]
            skeleton = motions[indices[0]].skeleton
            pieces = [resample(Motion(skeleton=skeleton, fps=motions[i].fps, positions=motions[i].positions), fps)
                      for i in indices]  # fmt: skip
            bounds = np.cumsum([0] + [p.num_frames for p in pieces])
            joined = Motion(skeleton=skeleton, fps=fps, positions=np.concatenate([p.positions for p in pieces]))
            for target in targets.values():
                rig = jitter_proportions(target if target is not None else skeleton, rng, jitter)
                parts = body_parts(rig)
                result = retarget(joined, rig, use_source_rotations=False).motion
                for k, i in enumerate(indices):
                    piece = Motion(skeleton=rig, fps=fps, positions=result.positions[bounds[k] : bounds[k + 1]])
                    views[i].append(canonical_points(piece, fps, parts))
    return views
