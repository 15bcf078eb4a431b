"""BVH (Biovision Hierarchy) read and write.

:class:`BVHClip` (defined in :mod:`models.motion.bvh_clip`) holds a file exactly as written (joint hierarchy,
per-joint channel lists in any order and count, end sites, raw channel values in file units), so read -> write ->
read is lossless up to the printed precision (6 decimals).
:meth:`BVHClip.to_motion` turns it into a :class:`~models.motion.motion.Motion` in metres (Y-up backend space, as
BVH files are) and :meth:`BVHClip.from_motion` goes back. Joints are written depth-first, as BVH requires, and
read back in a registry skeleton's declared order when the hierarchy is one (:mod:`models.motion.bvh_clip`), so
:func:`save_bvh` -> :func:`load_bvh` returns the positions written, joint for joint; Blender's own BVH importer
(``bpy.ops.import_anim.bvh``) shows the same positions (tests/blender/test_bvh_blender_import.py).

Conventions: a joint's rotation channels, in the order listed, compose as intrinsic rotations (``Zrotation
Yrotation Xrotation`` means ``R = Rz @ Ry @ Rx``), angles in degrees. Position channels on the root give its world
position (its OFFSET is then ignored); position channels on any other joint replace its OFFSET for that frame.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from models.atomic import atomic_write
from models.motion.bvh_clip import (
    CHANNEL_LOOKUP,
    KNOWN_UNIT_SCALES,
    VALID_CHANNELS,
    BVHClip,
    depth_first_order,
    registry_order,
)
from models.motion.motion import Motion

__all__ = [
    "BVHClip", "KNOWN_UNIT_SCALES", "MAX_BVH_BYTES", "VALID_CHANNELS", "depth_first_order", "format_bvh", "load_bvh",
    "parse_bvh", "read_bvh", "registry_order", "save_bvh", "write_bvh",
]  # fmt: skip

#: Upper bound on the file size :func:`read_bvh` accepts (bytes).
MAX_BVH_BYTES = 512 * 1024 * 1024


class _Tokens:
    def __init__(self, text: str, source: str) -> None:
        self.items = text.split()
        self.pos = 0
        self.source = source

    def next(self, what: str) -> str:
        if self.pos >= len(self.items):
            raise ValueError(f"{self.source}: file ends early (truncated?) while reading {what}")
        token = self.items[self.pos]
        self.pos += 1
        return token

    def expect(self, word: str) -> None:
        token = self.next(repr(word))
        if token.upper() != word.upper():
            raise ValueError(f"{self.source}: expected {word!r}, found {token!r} (token {self.pos})")

    def number(self, what: str) -> float:
        token = self.next(what)
        try:
            value = float(token)
        except ValueError:
            raise ValueError(f"{self.source}: expected a number for {what}, found {token!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{self.source}: {what} is not finite ({token!r})")
        return value


def parse_bvh(text: str, source: str = "BVH") -> BVHClip:
    """Parse BVH text. ``source`` names the file in error messages.

    Raises:
        ValueError: on a malformed hierarchy, unknown channel names, a channel count that does not match the
            ``CHANNELS`` line, a frame count that does not match ``Frames:``, or non-numeric / non-finite values.
    """
    tok = _Tokens(text, source)
    tok.expect("HIERARCHY")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[tuple[float, float, float]] = []
    channels: list[tuple[str, ...]] = []
    end_sites: list[tuple[int, tuple[float, float, float]]] = []

    def read_offset(owner: str) -> tuple[float, float, float]:
        tok.expect("OFFSET")
        return tuple(tok.number(f"OFFSET of {owner}") for _ in range(3))  # type: ignore[return-value]

    def read_joint(parent: int) -> None:
        name = tok.next("joint name")
        tok.expect("{")
        index = len(names)
        names.append(name)
        parents.append(parent)
        offsets.append(read_offset(name))
        tok.expect("CHANNELS")
        count_token = tok.next(f"channel count of {name}")
        if not count_token.isdigit():
            raise ValueError(f"{source}: joint {name!r}: channel count must be a whole number, found {count_token!r}")
        count = int(count_token)
        chans = []
        for _ in range(count):
            token = tok.next(f"channels of {name}")
            canonical = CHANNEL_LOOKUP.get(token.lower())
            if canonical is None:
                raise ValueError(
                    f"{source}: joint {name!r} declares {count} channels but {token!r} is not a channel name "
                    f"(wrong channel count?); expected one of {', '.join(VALID_CHANNELS)}"
                )
            chans.append(canonical)
        channels.append(tuple(chans))
        while True:
            token = tok.next(f"children of {name}")
            upper = token.upper()
            if upper == "JOINT":
                read_joint(index)
            elif upper == "END":
                tok.expect("Site")
                tok.expect("{")
                end_sites.append((index, read_offset(f"end site of {name}")))
                tok.expect("}")
            elif token == "}":
                return
            elif token.lower() in CHANNEL_LOOKUP:
                raise ValueError(
                    f"{source}: joint {name!r} lists more channel names than its CHANNELS count {count} "
                    "(wrong channel count?)"
                )
            else:
                raise ValueError(f"{source}: unexpected {token!r} inside joint {name!r}")

    tok.expect("ROOT")
    read_joint(-1)
    token = tok.next("MOTION")
    if token.upper() == "ROOT":
        raise ValueError(f"{source}: several ROOT hierarchies are not supported")
    if token.upper() != "MOTION":
        raise ValueError(f"{source}: expected 'MOTION' after the hierarchy, found {token!r}")
    tok.expect("Frames:")
    frames_value = tok.number("Frames")
    if frames_value < 0 or frames_value != int(frames_value):
        raise ValueError(f"{source}: Frames must be a whole number >= 0, got {frames_value}")
    frames = int(frames_value)
    tok.expect("Frame")
    tok.expect("Time:")
    frame_time = tok.number("Frame Time")
    count = sum(len(c) for c in channels)
    remaining = tok.items[tok.pos :]
    expected = frames * count
    if len(remaining) < expected:
        raise ValueError(
            f"{source}: truncated motion data: header says {frames} frames x {count} channels = {expected} values, "
            f"found {len(remaining)}"
        )
    if len(remaining) > expected:
        raise ValueError(
            f"{source}: {len(remaining) - expected} values more than {frames} frames x {count} channels "
            "(channel counts in the hierarchy do not match the motion lines?)"
        )
    try:
        values = np.asarray(remaining, dtype=np.float64).reshape(frames, count)
    except ValueError:
        raise ValueError(f"{source}: motion data contains a value that is not a number") from None
    if not np.isfinite(values).all():
        raise ValueError(f"{source}: motion data contains NaN or infinity")
    return BVHClip(names, parents, np.asarray(offsets), channels, end_sites, frame_time, values)


def read_bvh(path: str | os.PathLike) -> BVHClip:
    """Read a BVH file (see :func:`parse_bvh`). Raises ``FileNotFoundError`` or ``ValueError``."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_BVH_BYTES:
        raise ValueError(f"{path}: {size / 1e6:.0f} MB is larger than the {MAX_BVH_BYTES / 1e6:.0f} MB BVH limit")
    text = path.read_text(encoding="utf-8", errors="replace")
    return parse_bvh(text, source=str(path))


def format_bvh(clip: BVHClip, precision: int = 6) -> str:
    """BVH text for ``clip``: tab-indented hierarchy (offsets without trailing zeros), then one line per frame with
    every channel value in fixed point with ``precision`` decimals.

    The hierarchy is written in the clip's joint order, which :class:`BVHClip` guarantees is depth-first, so the
    motion columns (in that same order) belong to the joints they follow in the hierarchy."""
    lines = ["HIERARCHY"]
    children: dict[int, list[int]] = {j: [] for j in range(len(clip.joint_names))}
    for j, p in enumerate(clip.parents):
        if p >= 0:
            children[p].append(j)
    sites: dict[int, list[tuple[float, float, float]]] = {}
    for j, off in clip.end_sites:
        sites.setdefault(j, []).append(off)

    def num(v: float) -> str:
        text = f"{v:.{precision}f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        keyword = "ROOT" if clip.parents[j] < 0 else "JOINT"
        lines.append(f"{pad}{keyword} {clip.joint_names[j]}")
        lines.append(pad + "{")
        lines.append(f"{pad}\tOFFSET " + " ".join(num(v) for v in clip.offsets[j]))
        lines.append(f"{pad}\tCHANNELS {len(clip.channels[j])} " + " ".join(clip.channels[j]))
        for c in children[j]:
            emit(c, depth + 1)
        for off in sites.get(j, []):
            lines.append(f"{pad}\tEnd Site")
            lines.append(pad + "\t{")
            lines.append(f"{pad}\t\tOFFSET " + " ".join(num(v) for v in off))
            lines.append(pad + "\t}")
        lines.append(pad + "}")

    emit(0, 0)
    lines.append("MOTION")
    lines.append(f"Frames: {clip.num_frames}")
    lines.append(f"Frame Time: {clip.frame_time:.8f}")
    if clip.num_channels:  # fixed-point motion lines, as Blender's exporter writes them (fast: one % per row)
        row_format = " ".join([f"%.{precision}f"] * clip.num_channels)
        lines.extend(row_format % tuple(row) for row in clip.values.tolist())
    else:
        lines.extend("" for _ in range(clip.num_frames))
    return "\n".join(lines) + "\n"


def write_bvh(clip: BVHClip, path: str | os.PathLike, precision: int = 6) -> Path:
    """Write ``clip`` to ``path`` atomically (a temporary file renamed into place): a failure leaves any existing
    file untouched. Returns the path."""
    path = Path(path)
    text = format_bvh(clip, precision)
    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def load_bvh(path: str | os.PathLike, scale: float | None = None, joint_order: str = "registry") -> Motion:
    """Read a BVH file as a :class:`Motion` in metres (``scale`` metres per file unit; ``None`` guesses).

    ``joint_order``: ``"registry"`` puts the joints of a registry skeleton's hierarchy (``smpl24``, ...) in that
    skeleton's declared order, any other hierarchy stays in file (depth-first) order; ``"file"`` always keeps the
    file's order (see :meth:`BVHClip.to_motion`). Raises ``FileNotFoundError`` or ``ValueError``.
    """
    path = Path(path)
    motion = read_bvh(path).to_motion(scale=scale, name=f"bvh:{path.stem}", joint_order=joint_order)
    motion.metadata["source_path"] = str(path)
    return motion


def save_bvh(motion: Motion, path: str | os.PathLike, rotation_order: str = "ZYX", scale: float = 0.01) -> Path:
    """Write a motion with rotations as BVH (see :meth:`BVHClip.from_motion`); atomic. Returns the path."""
    return write_bvh(BVHClip.from_motion(motion, rotation_order, scale), path)
