"""How a clip's motion is stored: content hashes, skeleton labels, the positions blob and the pose-strip thumbnail.

The blob is an uncompressed ``.npz`` (``numpy.savez``) holding the root trajectory ``root (T, 3) float32`` (metres),
joint positions relative to it ``local (T, J, 3) float16`` (sub-millimetre precision within a body's 2 m extent, half
the bytes of float32), ``fps``, and the skeleton (``joint_names``, ``parents``, ``rest_offsets``). Clips above
:data:`MAX_STORED_FPS` are decimated by an integer stride on import (CMU 120 fps -> 30 fps): search features need no
more, and the original file stays the lossless source (``source_path``).
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from models.motion.motion import Motion
from models.motion.skeleton import Skeleton, get_skeleton

#: Stored clips run at no more than this frame rate (integer-stride decimation).
MAX_STORED_FPS = 30.0

#: Joint-name families recognised by :func:`skeleton_label` (first joint names -> label).
_KNOWN_FAMILIES = {
    ("joint_Root", "Hips", "Spine", "Chest"): "bandai",  # Bandai Namco Research motion datasets 1 and 2
    ("Hips", "LHipJoint", "LeftHip", "LeftKnee"): "cmu",  # CMU mocap (Hahne's 3dsMax-friendly BVH release)
}


def file_hash(path: str | Path, salt: str = "") -> str:
    """sha256 hex digest of ``salt`` followed by the file's bytes (the import idempotency key)."""
    digest = hashlib.sha256(salt.encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _registry_names() -> dict[str, tuple[str, ...]]:
    return {name: get_skeleton(name).joint_names for name in ("smpl22", "smpl24", "kit21", "coco13")}


def skeleton_label(skeleton: Skeleton) -> str:
    """A stable, human-readable label for filtering by skeleton.

    Built-in registry skeletons keep their names (``smpl22``, ``smpl24``, ``kit21``, ``coco13``); known BVH families
    get ``<family><J>`` (``bandai22``, ``cmu31``); any other hierarchy gets ``bvh<J>-<6 hex digits>`` from a hash of
    its joint names and parents, so every clip on the same rig shares one label.
    """
    names = skeleton.joint_names
    for registry, registry_names in _registry_names().items():
        if names == registry_names:
            return registry
    for prefix, family in _KNOWN_FAMILIES.items():
        if names[: len(prefix)] == prefix:
            return f"{family}{len(names)}"
    digest = hashlib.sha1(("|".join(names) + repr(skeleton.parents)).encode()).hexdigest()[:6]
    return f"bvh{len(names)}-{digest}"


def decimate(motion: Motion, max_fps: float = MAX_STORED_FPS) -> tuple[np.ndarray, float]:
    """Positions at no more than ``max_fps`` by an integer frame stride (``round(fps / max_fps)``).

    Returns ``(positions (T', J, 3) float32, fps')``.
    """
    stride = max(1, int(round(motion.fps / max_fps)))
    fps = motion.fps / stride
    if abs(fps - round(fps)) < 1e-3 * fps:  # "Frame Time: 0.0333333" means 30 fps
        fps = float(round(fps))
    return motion.positions[::stride], fps


def encode_motion(positions: np.ndarray, fps: float, skeleton: Skeleton) -> bytes:
    """Encode ``positions (T, J, 3)`` metres at ``fps`` on ``skeleton`` as the library blob (module docstring).

    Raises:
        ValueError: when the shape does not match the skeleton or values are not finite.
    """
    positions = np.asarray(positions, dtype=np.float32)
    if positions.ndim != 3 or positions.shape[1:] != (skeleton.num_joints, 3) or positions.shape[0] == 0:
        raise ValueError(f"positions must be (T>0, {skeleton.num_joints}, 3), got {positions.shape}")
    if not np.isfinite(positions).all():
        raise ValueError("positions contain NaN or infinity")
    root = positions[:, 0].copy()
    buffer = io.BytesIO()
    np.savez(
        buffer,
        root=root,
        local=(positions - root[:, None]).astype(np.float16),
        fps=np.float64(fps),
        joint_names=np.array(skeleton.joint_names),
        parents=np.array(skeleton.parents, dtype=np.int16),
        rest_offsets=skeleton.rest_offsets.astype(np.float32),
    )
    return buffer.getvalue()


def decode_motion(blob: bytes, skeleton_name: str, metadata: dict | None = None) -> Motion:
    """The :class:`Motion` (positions only) stored by :func:`encode_motion`; its skeleton is named ``skeleton_name``."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        skeleton = Skeleton(
            name=skeleton_name,
            joint_names=tuple(str(n) for n in data["joint_names"]),
            parents=tuple(int(p) for p in data["parents"]),
            rest_offsets=data["rest_offsets"],
        )
        positions = data["root"][:, None, :] + data["local"].astype(np.float32)
        return Motion(skeleton=skeleton, fps=float(data["fps"]), positions=positions, metadata=dict(metadata or {}))


def clip_metadata(clip, clip_id: int | None = None) -> dict:
    """The metadata a stored clip's :class:`Motion` carries (a ``NewClip`` or ``ClipRecord``): name, source path,
    license, captions, tags and, once stored, the clip id."""
    metadata = {"name": clip.name, "source_path": clip.source_path, "license": clip.license,
                "captions": list(clip.captions), "tags": list(clip.tags)}  # fmt: skip
    if clip_id is not None:
        metadata["clip_id"] = int(clip_id)
    return metadata


# --- thumbnails --------------------------------------------------------------------------------------------------


def _png(gray: np.ndarray) -> bytes:
    """Encode a ``(H, W) uint8`` grey image as PNG (zlib + struct: no imaging library needed)."""
    height, width = gray.shape
    raw = b"".join(b"\x00" + gray[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def pose_strip_png(positions: np.ndarray, parents: tuple[int, ...], poses: int = 6, cell: int = 48) -> bytes:
    """A small grey PNG: ``poses`` evenly spaced frames drawn side by side as stick figures (front view, x/y).

    Args:
        positions: ``(T, J, 3)`` metres, +Y up.
        parents: parent index per joint.
        poses: number of frames drawn.
        cell: pixel size of each square pose cell; the image is ``cell x (poses * cell)``.
    """
    positions = np.asarray(positions, dtype=np.float32)
    image = np.full((cell, cell * poses), 255, dtype=np.uint8)
    frames = np.linspace(0, positions.shape[0] - 1, poses).round().astype(int)
    samples = np.linspace(0.0, 1.0, cell)[None, :, None]  # (1, S, 1)
    children = np.array([j for j, p in enumerate(parents) if p >= 0], dtype=int)
    bone_parents = np.array([parents[j] for j in children], dtype=int)
    for slot, frame in enumerate(frames):
        pose = positions[frame, :, :2] - positions[frame, 0, :2]
        extent = max(float(np.abs(pose).max()), 1e-3)
        pixels = (pose / (2.2 * extent) * np.array([1.0, -1.0]) + 0.5) * (cell - 1)  # (J, 2)
        lines = pixels[bone_parents, None] + samples * (pixels[children] - pixels[bone_parents])[:, None]  # (B, S, 2)
        points = np.clip(lines.reshape(-1, 2).round().astype(int), 0, cell - 1)
        image[points[:, 1], points[:, 0] + slot * cell] = 0
    return _png(image)
