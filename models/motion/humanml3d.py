"""HumanML3D motion features <-> joint positions (../shared/DESIGN.md §6), in numpy.

The HumanML3D representation (Guo et al., "Generating Diverse and Natural 3D Human Motions from Text", CVPR 2022;
``EricGuo5513/HumanML3D`` ``motion_representation.py``) describes a ``T + 1`` frame joint sequence by ``T`` rows of

================  ===========  ======================================================================================
slice (t2m)       width        meaning
================  ===========  ======================================================================================
``[0]``           1            root angular velocity about +Y (arcsin of the y part of the per-frame heading quaternion
                               change, i.e. *half* the heading angle change, radians per frame)
``[1:3]``         2            root linear velocity on XZ, in the frame of the *next* heading (metres per frame)
``[3]``           1            root height (metres)
``[4:67]``        (J-1)*3      "ric": joints 1..J-1 relative to the root's XZ, rotated to face +Z (metres)
``[67:193]``      (J-1)*6      "rot6d": local joint rotations from HumanML3D's IK, first two matrix columns
``[193:259]``     J*3          joint velocities in the current heading frame (metres per frame)
``[259:263]``     4            foot contacts (left ankle, left toe, right ankle, right toe), 0/1
================  ===========  ======================================================================================

``t2m`` (HumanML3D, SMPL 22 joints, metres, 20 fps, 263-d) and ``kit`` (KIT-ML, MMM 21 joints, 12.5 fps, 251-d) are
supported. :func:`features_to_joints` is HumanML3D's ``recover_root_rot_pos`` + ``recover_from_ric``;
:func:`joints_to_features` is its ``process_file`` (uniform skeleton, floor, XZ origin, face +Z, IK, features).
Encoding canonicalises the input (target bone lengths, floor at y=0, frame-0 root over the origin, frame 0 facing +Z)
and fixes frame 0's heading to identity, so ``features_to_joints(joints_to_features(j))`` is that canonical ``j``
without its last frame. Measured on ``humanml3d_sample/012314``: the released 263-d vectors decode to the released
``new_joints`` within 3e-7 m; re-encoding those joints reproduces the released vectors within 1e-5 except in the last
80 rows, where HumanML3D's heading smoothing (Gaussian, sigma 20 frames, radius 80) saw one more frame (the frame
that encoding consumes) than the released joints contain: there ric differs by up to 7e-3 m, rot6d by 1.3e-2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from models.motion.motion import Motion
from models.motion.rotations import quat_between, quat_inverse, quat_multiply, quat_rotate, quat_to_cont6d
from models.motion.skeleton import (
    KIT_CHAINS,
    KIT_RAW_OFFSETS,
    SMPL_CHAINS,
    T2M_BONE_LENGTHS,
    T2M_RAW_OFFSETS,
    get_skeleton,
)

_UP = np.array([0.0, 1.0, 0.0])
_FORWARD = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class FeatureSpec:
    """Constants of one HumanML3D-style dataset (values of ``motion_representation.py``).

    Attributes:
        name: ``"t2m"`` or ``"kit"``.
        skeleton: Baton registry name of the joint order.
        num_joints: ``J``.
        fps: frame rate of the features.
        raw_offsets: ``(J, 3)`` unit rest directions of each bone (IK reference).
        chains: kinematic chains (IK and FK traverse them in this order).
        leg_joints: the two lower-leg joints whose bone lengths set the uniform-skeleton scale ratio.
        feet_left / feet_right: (ankle, toe) joints for foot contacts.
        face_joints: (right hip, left hip, right shoulder, left shoulder) as HumanML3D lists them.
        feet_threshold: squared displacement per frame below which a foot joint is in contact.
        bone_lengths: target skeleton bone lengths per joint (root 0), or ``None`` to keep the input's.
    """

    name: str
    skeleton: str
    num_joints: int
    fps: float
    raw_offsets: tuple[tuple[int, int, int], ...]
    chains: tuple[tuple[int, ...], ...]
    leg_joints: tuple[int, int]
    feet_left: tuple[int, int]
    feet_right: tuple[int, int]
    face_joints: tuple[int, int, int, int]
    feet_threshold: float
    bone_lengths: tuple[float, ...] | None

    @property
    def feature_dim(self) -> int:
        """Feature width: ``4 + (J-1)*3 + (J-1)*6 + J*3 + 4`` (263 for t2m, 251 for kit)."""
        return 4 + (self.num_joints - 1) * 9 + self.num_joints * 3 + 4

    @property
    def parents(self) -> tuple[int, ...]:
        """Parent index per joint, read off the kinematic chains (``-1`` for the root)."""
        parents = [-1] * self.num_joints
        for chain in self.chains:
            for a, b in zip(chain[:-1], chain[1:], strict=True):
                parents[b] = a
        return tuple(parents)

    def slices(self) -> dict[str, slice]:
        """Named slices of a feature row (``root_rot_velocity``, ``root_linear_velocity``, ``root_y``, ``ric``,
        ``rot6d``, ``local_velocity``, ``foot_contact``)."""
        j = self.num_joints
        bounds = {"root_rot_velocity": 1, "root_linear_velocity": 2, "root_y": 1, "ric": (j - 1) * 3,
                  "rot6d": (j - 1) * 6, "local_velocity": j * 3, "foot_contact": 4}  # fmt: skip
        out, start = {}, 0
        for key, width in bounds.items():
            out[key] = slice(start, start + width)
            start += width
        return out


T2M = FeatureSpec(
    name="t2m", skeleton="smpl22", num_joints=22, fps=20.0, raw_offsets=T2M_RAW_OFFSETS, chains=SMPL_CHAINS,
    leg_joints=(5, 8), feet_left=(7, 10), feet_right=(8, 11), face_joints=(2, 1, 17, 16), feet_threshold=0.002,
    bone_lengths=T2M_BONE_LENGTHS,
)  # fmt: skip
#: KIT-ML: the target skeleton (KIT id 03950) is not available offline, so by default bone lengths are kept. Joint
#: choices and column order follow the reference code verbatim; its KIT "left"/"right" labels are mirrored relative to
#: the MMM names (``feet_left`` = RMrot, RF; the facing step uses LH - RH + LS - RS), so KIT-ML figures encoded here
#: end up facing -Z in a +X-is-left frame, exactly as the reference processing does.
KIT = FeatureSpec(
    name="kit", skeleton="kit21", num_joints=21, fps=12.5, raw_offsets=KIT_RAW_OFFSETS, chains=KIT_CHAINS,
    leg_joints=(17, 18), feet_left=(19, 20), feet_right=(14, 15), face_joints=(11, 16, 5, 8), feet_threshold=0.05,
    bone_lengths=None,
)  # fmt: skip
SPECS = {"t2m": T2M, "kit": KIT}


def get_spec(dataset: str | FeatureSpec) -> FeatureSpec:
    """The :class:`FeatureSpec` for ``"t2m"`` / ``"kit"`` (or a spec itself). Raises ``ValueError`` otherwise."""
    if isinstance(dataset, FeatureSpec):
        return dataset
    if dataset not in SPECS:
        raise ValueError(f"unknown HumanML3D-style dataset {dataset!r}; known: {', '.join(SPECS)}")
    return SPECS[dataset]


def _check_features(features: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim < 2 or f.shape[-1] != spec.feature_dim:
        raise ValueError(
            f"{spec.name} features must be (T, {spec.feature_dim}) (optionally batched), got shape {f.shape}"
        )
    if f.shape[-2] == 0:
        raise ValueError("features have zero frames")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or infinity")
    return f


def recover_root_rot_pos(features: np.ndarray, dataset: str | FeatureSpec = "t2m") -> tuple[np.ndarray, np.ndarray]:
    """Root heading quaternions and root positions from features (HumanML3D ``recover_root_rot_pos``).

    The heading angle (half-angle, as encoded) is the running sum of ``features[..., :-1, 0]`` starting at 0; the
    root's XZ is the running sum of the linear velocities rotated back by the inverse heading; Y is ``root_y``.

    Args:
        features: ``(..., T, D)`` float features.

    Returns:
        ``(heading (..., T, 4) float64 (w, x, y, z) about +Y, root positions (..., T, 3) float64 metres)``.
    """
    f = _check_features(features, get_spec(dataset))
    angle = np.zeros(f.shape[:-1])
    angle[..., 1:] = f[..., :-1, 0]
    angle = np.cumsum(angle, axis=-1)
    heading = np.zeros(f.shape[:-1] + (4,))
    heading[..., 0] = np.cos(angle)
    heading[..., 2] = np.sin(angle)
    root = np.zeros(f.shape[:-1] + (3,))
    root[..., 1:, 0] = f[..., :-1, 1]
    root[..., 1:, 2] = f[..., :-1, 2]
    root = np.cumsum(quat_rotate(quat_inverse(heading), root), axis=-2)
    root[..., 1] = f[..., 3]
    return heading, root


def features_to_joints(features: np.ndarray, dataset: str | FeatureSpec = "t2m") -> np.ndarray:
    """Joint positions from HumanML3D features (``recover_from_ric``: ric positions turned back by the heading and
    moved to the root's XZ).

    Args:
        features: ``(T, 263)`` t2m or ``(T, 251)`` kit features (leading batch dimensions allowed), unnormalised.
        dataset: ``"t2m"`` (HumanML3D) or ``"kit"``.

    Returns:
        ``(..., T, J, 3)`` float32 joint positions (metres for t2m), +Y up.

    Raises:
        ValueError: on a wrong feature width, zero frames, or NaN / infinity.
    """
    spec = get_spec(dataset)
    f = _check_features(features, spec)
    heading, root = recover_root_rot_pos(f, spec)
    ric = f[..., spec.slices()["ric"]].reshape(f.shape[:-1] + (spec.num_joints - 1, 3))
    joints = quat_rotate(quat_inverse(heading)[..., None, :], ric)
    joints[..., 0] += root[..., None, 0]
    joints[..., 2] += root[..., None, 2]
    return np.concatenate([root[..., None, :], joints], axis=-2).astype(np.float32)


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def uniform_skeleton(positions: np.ndarray, spec: FeatureSpec, bone_lengths: np.ndarray) -> np.ndarray:
    """Re-target joint positions onto bones of ``bone_lengths`` (HumanML3D ``uniform_skeleton``).

    HumanML3D runs its IK and then FK with the target offsets; as every chain link's global rotation is the
    shortest arc from the raw offset to the bone, that equals keeping each bone's direction and setting its length.
    The root is scaled by the ratio of the lower-leg lengths (target / frame 0 of the input).
    """
    parents = spec.parents
    lengths0 = np.linalg.norm(positions[0, 1:] - positions[0, list(parents[1:])], axis=-1)
    lengths0 = np.concatenate([[0.0], lengths0])
    a, b = spec.leg_joints
    source_leg = lengths0[a] + lengths0[b]
    if source_leg <= 1e-9:
        raise ValueError("joints: the lower legs have zero length in frame 0; cannot scale to the target skeleton")
    scale = (bone_lengths[a] + bone_lengths[b]) / source_leg
    out = np.empty_like(positions)
    out[:, 0] = positions[:, 0] * scale
    for chain in spec.chains:
        for parent, child in zip(chain[:-1], chain[1:], strict=True):
            direction = _normalise(positions[:, child] - positions[:, parent])
            out[:, child] = out[:, parent] + bone_lengths[child] * direction
    return out


def _facing(positions: np.ndarray, face_joints: tuple[int, int, int, int], hips_swapped: bool) -> np.ndarray:
    """Horizontal forward directions ``(..., 3)`` from the hip and shoulder lines (unnormalised)."""
    right_hip, left_hip, right_shoulder, left_shoulder = face_joints
    hips = positions[..., right_hip, :] - positions[..., left_hip, :]
    if hips_swapped:
        hips = -hips
    across = hips + positions[..., right_shoulder, :] - positions[..., left_shoulder, :]
    across = _normalise(across)
    return np.cross(_UP, across)


def inverse_kinematics(
    positions: np.ndarray, spec: FeatureSpec, smooth_forward: bool = True
) -> np.ndarray:
    """HumanML3D's IK (``Skeleton.inverse_kinematics_np``): local rotations ``(T, J, 4)`` (w, x, y, z).

    Joint 0 gets the heading (forward direction onto +Z, Gaussian-smoothed over time with sigma 20 frames when
    ``smooth_forward``), identity on frame 0 as in HumanML3D's released code and data. Every other joint gets the
    rotation that, composed down its chain, turns its raw offset onto the bone direction. Like HumanML3D, the hip
    term of the heading is taken left-minus-right here (the shoulder term dominates, so the forward direction still
    points the way the body faces).
    """
    forward = _facing(positions, spec.face_joints, hips_swapped=True)
    if smooth_forward:
        forward = gaussian_filter1d(forward, 20, axis=0, mode="nearest")
    root = quat_between(_normalise(forward), _FORWARD)
    root[0] = (1.0, 0.0, 0.0, 0.0)  # as in HumanML3D: frame 0 already faces +Z
    quats = np.zeros(positions.shape[:-1] + (4,))
    quats[:, 0] = root
    raw = np.asarray(spec.raw_offsets, dtype=np.float64)
    for chain in spec.chains:
        global_rotation = root
        for parent, child in zip(chain[:-1], chain[1:], strict=True):
            bone = _normalise(positions[:, child] - positions[:, parent])
            arc = quat_between(raw[child], bone)
            local = quat_multiply(quat_inverse(global_rotation), arc)
            quats[:, child] = local
            global_rotation = quat_multiply(global_rotation, local)
    return quats


def _validate_joints(joints: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[1:] != (spec.num_joints, 3):
        raise ValueError(f"{spec.name} joints must be (T, {spec.num_joints}, 3), got shape {j.shape}")
    if j.shape[0] < 2:
        raise ValueError(f"joints need at least 2 frames to compute velocities, got {j.shape[0]}")
    if not np.isfinite(j).all():
        raise ValueError("joints contain NaN or infinity")
    return j


def _resample_positions(positions: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    frames = positions.shape[0]
    duration = frames / fps
    count = max(1, int(round(duration * target_fps)))
    src = np.arange(frames) / fps
    dst = np.minimum(np.arange(count) / target_fps, src[-1])
    flat = positions.reshape(frames, -1)
    out = np.stack([np.interp(dst, src, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape((count,) + positions.shape[1:])


def joints_to_features(
    joints: np.ndarray,
    fps: float = 20.0,
    *,
    dataset: str | FeatureSpec = "t2m",
    bone_lengths: np.ndarray | None | str = "default",
) -> np.ndarray:
    """HumanML3D features from joint positions (``process_file`` of ``motion_representation.py``).

    Steps: resample to the dataset's fps (20 for t2m) when ``fps`` differs; uniform skeleton (bones set to the
    target lengths, root scaled by the lower-leg ratio); floor at the lowest joint; frame-0 root XZ at the origin;
    rotate so frame 0 faces +Z (hips + shoulders); foot contacts (squared displacement < 0.002 m² per frame for
    t2m); IK with a smoothed heading; then root angular velocity, root linear velocity, root height, ric, rot6d,
    local velocity and contacts.

    Args:
        joints: ``(T, J, 3)`` positions (metres for t2m; +Y up, the subject's left on +X in its rest frame), ``T >= 2``
            after resampling. Joint order of ``smpl22`` (t2m) or ``kit21`` (kit).
        fps: frame rate of ``joints``.
        dataset: ``"t2m"`` or ``"kit"``.
        bone_lengths: ``(J,)`` target bone lengths; ``"default"`` uses the dataset's target skeleton (t2m 000021;
            kit keeps the input's), ``None`` keeps the input's lengths.

    Returns:
        ``(T' - 1, D)`` float32 features, ``T'`` frames after resampling (``D`` = 263 t2m, 251 kit).

    Raises:
        ValueError: on a wrong shape, fewer than 2 frames, NaN / infinity, non-positive fps or degenerate legs.
    """
    spec = get_spec(dataset)
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    positions = _validate_joints(joints, spec)
    if abs(fps - spec.fps) > 1e-9:
        positions = _validate_joints(_resample_positions(positions, fps, spec.fps), spec)
    lengths = spec.bone_lengths if isinstance(bone_lengths, str) and bone_lengths == "default" else bone_lengths
    if lengths is not None:
        lengths = np.asarray(lengths, dtype=np.float64)
        if lengths.shape != (spec.num_joints,):
            raise ValueError(f"bone_lengths must be ({spec.num_joints},), got {lengths.shape}")
        positions = uniform_skeleton(positions, spec, lengths)
    positions = positions.copy()
    positions[..., 1] -= positions[..., 1].min()
    positions -= positions[0, 0] * np.array([1.0, 0.0, 1.0])
    forward0 = _normalise(_facing(positions[0], spec.face_joints, hips_swapped=False))
    positions = quat_rotate(quat_between(forward0, _FORWARD), positions)
    global_positions = positions

    def contacts(feet: tuple[int, int]) -> np.ndarray:
        step = ((positions[1:, list(feet)] - positions[:-1, list(feet)]) ** 2).sum(-1)
        return (step < spec.feet_threshold).astype(np.float64)

    feet_left, feet_right = contacts(spec.feet_left), contacts(spec.feet_right)

    quats = inverse_kinematics(positions, spec, smooth_forward=True)
    cont6d = quat_to_cont6d(quats)
    heading = quats[:, 0]
    root_velocity = quat_rotate(heading[1:], positions[1:, 0] - positions[:-1, 0])
    heading_change = quat_multiply(heading[1:], quat_inverse(heading[:-1]))

    local = positions.copy()
    local[..., 0] -= local[:, :1, 0]
    local[..., 2] -= local[:, :1, 2]
    local = quat_rotate(heading[:, None], local)

    frames = positions.shape[0]
    root_data = np.concatenate(
        [np.arcsin(np.clip(heading_change[:, 2:3], -1.0, 1.0)), root_velocity[:, [0, 2]], local[:-1, 0, 1:2]],
        axis=-1,
    )
    ric = local[:, 1:].reshape(frames, -1)
    rot6d = cont6d[:, 1:].reshape(frames, -1)
    local_velocity = quat_rotate(heading[:-1, None], global_positions[1:] - global_positions[:-1])
    features = np.concatenate(
        [root_data, ric[:-1], rot6d[:-1], local_velocity.reshape(frames - 1, -1), feet_left, feet_right], axis=-1
    )
    return features.astype(np.float32)


def load_humanml3d(path: str | os.PathLike, dataset: str | None = None) -> Motion:
    """A HumanML3D-style ``.npy`` as a :class:`Motion` (positions only).

    Accepts ``new_joints`` ``(T, 22, 3)`` / ``(T, 21, 3)`` or ``new_joint_vecs`` ``(T, 263)`` / ``(T, 251)``;
    the width picks t2m (``smpl22``, 20 fps) or kit (``kit21``, 12.5 fps) unless ``dataset`` is given. KIT data in
    millimetres (a figure taller than 10 units) is scaled to metres (``metadata["unit_scale_m"]``).

    Raises:
        FileNotFoundError: when the file is missing.
        ValueError: when it is not a numeric ``.npy`` of one of those shapes, or holds NaN / infinity.
    """
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable numeric .npy file ({exc})") from None
    if not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"{path}: expected a numeric array, got dtype {data.dtype}")
    by_shape = {(2, 263): "t2m", (2, 251): "kit", (3, 22): "t2m", (3, 21): "kit"}
    key = (data.ndim, data.shape[-2] if data.ndim == 3 else data.shape[-1]) if data.ndim in (2, 3) else None
    if key not in by_shape or (data.ndim == 3 and data.shape[-1] != 3):
        raise ValueError(
            f"{path}: expected HumanML3D new_joints (T, 22, 3) / KIT (T, 21, 3) or features (T, 263) / (T, 251), "
            f"got shape {data.shape}"
        )
    spec = get_spec(dataset or by_shape[key])
    if data.ndim == 2:
        positions, representation = features_to_joints(data, spec), f"features{spec.feature_dim}"
    else:
        if not np.isfinite(data).all():
            raise ValueError(f"{path}: joint positions contain NaN or infinity")
        positions, representation = data.astype(np.float32), "joints"
    scale = 1.0
    if spec.name == "kit" and float(np.ptp(positions[..., 1])) > 10.0:
        scale = 0.001
        positions = positions * np.float32(scale)
    metadata = {"format": "humanml3d", "dataset": spec.name, "representation": representation,
                "unit_scale_m": scale, "source_path": str(path)}  # fmt: skip
    return Motion(get_skeleton(spec.skeleton), spec.fps, positions, metadata=metadata)
