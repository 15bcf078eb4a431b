"""BVH (Biovision Hierarchy) read and write.

:class:`BVHClip` holds a file exactly as written (joint hierarchy, per-joint channel lists in any order and count,
end sites, raw channel values in file units), so read -> write -> read is lossless up to the printed precision.
:meth:`BVHClip.to_motion` turns it into a :class:`~models.motion.motion.Motion` in metres (Y-up backend space, as
BVH files are) and :meth:`BVHClip.from_motion` goes back.

Conventions: a joint's rotation channels, in the order listed, compose as intrinsic rotations (``Zrotation
Yrotation Xrotation`` means ``R = Rz @ Ry @ Rx``), angles in degrees. Position channels on the root give its world
position (its OFFSET is then ignored); position channels on any other joint replace its OFFSET for that frame.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.motion.kinematics import forward_kinematics
from models.motion.motion import Motion
from models.motion.rotations import euler_to_quat, quat_to_euler
from models.motion.skeleton import Skeleton

VALID_CHANNELS = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
_CHANNEL_LOOKUP = {c.lower(): c for c in VALID_CHANNELS}
#: Metres per file unit for the units BVH files are commonly written in.
KNOWN_UNIT_SCALES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": 0.056444}
#: Upper bound on the file size :func:`read_bvh` accepts (bytes).
MAX_BVH_BYTES = 512 * 1024 * 1024


@dataclass(eq=False)
class BVHClip:
    """A BVH file's content in file units.

    Attributes:
        joint_names: ``J`` names in file (depth-first) order.
        parents: ``J`` parent indices (``-1`` for the root).
        offsets: ``(J, 3)`` float64 OFFSETs in file units.
        channels: per joint, its channel names in file order (e.g. ``("Zrotation", "Yrotation", "Xrotation")``).
        end_sites: ``(joint index, (x, y, z))`` for each End Site, file units.
        frame_time: seconds per frame (``1 / fps``).
        values: ``(F, C)`` float64 channel values, ``C = sum(len(c) for c in channels)``.
    """

    joint_names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[tuple[str, ...]]
    end_sites: list[tuple[int, tuple[float, float, float]]] = field(default_factory=list)
    frame_time: float = 1.0 / 30.0
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def __post_init__(self) -> None:
        self.offsets = np.asarray(self.offsets, dtype=np.float64).reshape(-1, 3)
        self.values = np.asarray(self.values, dtype=np.float64)
        num = len(self.joint_names)
        if not (len(self.parents) == len(self.channels) == self.offsets.shape[0] == num):
            raise ValueError(
                f"BVH: {num} joints but {len(self.parents)} parents, {len(self.channels)} channel lists, "
                f"{self.offsets.shape[0]} offsets"
            )
        count = self.num_channels
        if self.values.ndim != 2 or self.values.shape[1] != count:
            raise ValueError(
                f"BVH: motion values must be (frames, {count}) for {count} channels, got {self.values.shape}"
            )
        if not np.isfinite(self.values).all() or not np.isfinite(self.offsets).all():
            raise ValueError("BVH: values or offsets contain NaN or infinity")
        if not (math.isfinite(self.frame_time) and self.frame_time > 0):
            raise ValueError(f"BVH: Frame Time must be a positive number of seconds, got {self.frame_time!r}")
        for j, chans in enumerate(self.channels):
            for c in chans:
                if c not in VALID_CHANNELS:
                    raise ValueError(f"BVH: joint {self.joint_names[j]!r} has unknown channel {c!r}")

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    @property
    def num_frames(self) -> int:
        return int(self.values.shape[0])

    @property
    def fps(self) -> float:
        """Frames per second, ``1 / frame_time`` snapped to the nearest whole number when within 0.01 % of it.

        Files print Frame Time to a few decimals (``0.008333`` for 120 fps gives 120.0048); the snap restores the
        intended rate while leaving real fractional rates such as 29.97 alone.
        """
        rate = 1.0 / self.frame_time
        nearest = round(rate)
        return float(nearest) if nearest >= 1 and abs(nearest * self.frame_time - 1.0) < 1e-4 else rate

    def channel_slices(self) -> list[slice]:
        """Per joint, the slice of ``values`` columns holding its channels."""
        slices, start = [], 0
        for chans in self.channels:
            slices.append(slice(start, start + len(chans)))
            start += len(chans)
        return slices

    def rest_positions(self) -> np.ndarray:
        """``(J, 3)`` rest positions in file units (offsets accumulated)."""
        pos = np.zeros_like(self.offsets)
        for j, p in enumerate(self.parents):
            pos[j] = self.offsets[j] + (pos[p] if p >= 0 else 0.0)
        return pos

    def guess_unit_scale(self) -> float:
        """Metres per file unit, chosen from :data:`KNOWN_UNIT_SCALES` so the figure is closest to 1.7 m tall.

        The figure's size is the largest extent of its rest pose (end sites included), or of frame 0 when the rest
        pose is degenerate.
        """
        rest = self.rest_positions()
        tips = [rest[j] + np.asarray(off) for j, off in self.end_sites]
        points = np.vstack([rest, *tips]) if tips else rest
        extent = float((points.max(0) - points.min(0)).max())
        if extent <= 1e-9:
            return 1.0
        return min(KNOWN_UNIT_SCALES.values(), key=lambda s: abs(math.log(extent * s / 1.7)))

    def to_motion(self, scale: float | None = None, name: str | None = None) -> Motion:
        """The clip as a :class:`Motion` in metres with local rotations, root translation and FK positions.

        Args:
            scale: metres per file unit; ``None`` guesses it (:meth:`guess_unit_scale`).
            name: the skeleton name (default ``"bvh"``).

        Raises:
            ValueError: for a clip with no frames or a non-positive scale.
        """
        if self.num_frames == 0:
            raise ValueError("BVH: the file has no motion frames")
        scale = self.guess_unit_scale() if scale is None else float(scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"BVH: unit scale must be a positive number, got {scale!r}")
        frames, num = self.num_frames, len(self.joint_names)
        rotations = np.zeros((frames, num, 4))
        rotations[..., 0] = 1.0
        translations = np.broadcast_to(self.offsets, (frames, num, 3)).copy()
        has_local_translation = False
        for j, sl in enumerate(self.channel_slices()):
            chans, vals = self.channels[j], self.values[:, sl]
            rot_idx = [k for k, c in enumerate(chans) if c.endswith("rotation")]
            if rot_idx:
                order = "".join(chans[k][0] for k in rot_idx)
                if len(rot_idx) == 3:
                    rotations[:, j] = euler_to_quat(vals[:, rot_idx], order)
                else:  # one or two rotation channels: the rest are zero
                    full_order = order + "".join(a for a in "XYZ" if a not in order)
                    angles = np.zeros((frames, 3))
                    angles[:, : len(rot_idx)] = vals[:, rot_idx]
                    rotations[:, j] = euler_to_quat(angles, full_order)
            for k, c in enumerate(chans):
                if c.endswith("position"):
                    translations[:, j, "XYZ".index(c[0])] = vals[:, k]
                    has_local_translation = has_local_translation or j > 0
        root_translation = translations[:, 0] * scale
        skeleton = Skeleton(
            name=name or "bvh",
            joint_names=tuple(self.joint_names),
            parents=tuple(self.parents),
            rest_offsets=self.offsets * scale,
            end_sites=tuple((j, tuple(float(v) * scale for v in off)) for j, off in self.end_sites),
        )
        positions, _ = forward_kinematics(
            skeleton, rotations, root_translation, translations * scale if has_local_translation else None
        )
        return Motion(
            skeleton=skeleton,
            fps=self.fps,
            positions=positions,
            rotations=rotations.astype(np.float32),
            root_translation=root_translation.astype(np.float32),
            metadata={"format": "bvh", "unit_scale_m": scale, "frame_time": self.frame_time},
        )

    @classmethod
    def from_motion(cls, motion: Motion, rotation_order: str = "ZYX", scale: float = 0.01) -> BVHClip:
        """A BVH clip (root: 6 channels, other joints: 3 rotation channels) from a motion with rotations.

        Args:
            motion: a 3D motion with ``rotations``; its root translation (or root positions) drives the root.
            rotation_order: Euler order for every joint's rotation channels (``"ZYX"`` writes ``Zrotation
                Yrotation Xrotation``).
            scale: metres per file unit (0.01 writes centimetres).

        Raises:
            ValueError: when the motion has no rotations or is 2D (retarget it onto a rig first), holds NaN /
                infinity, or ``rotation_order`` / ``scale`` are invalid.
        """
        if motion.is_2d or motion.rotations is None:
            raise ValueError(
                "BVH needs local joint rotations; this motion has positions only "
                f"(skeleton {motion.skeleton.name!r}). Retarget it onto a rig first (baton retarget)."
            )
        order = rotation_order.upper()
        if len(order) != 3 or set(order) != set("XYZ"):
            raise ValueError(f"rotation_order must be a permutation of XYZ, got {rotation_order!r}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"BVH: unit scale must be a positive number, got {scale!r}")
        root = motion.root_translation if motion.root_translation is not None else motion.positions[:, 0]
        for label, array in (("rotations", motion.rotations), ("root translation", root)):
            if not np.isfinite(array).all():
                raise ValueError(f"BVH: the motion's {label} contain NaN or infinity; nothing was written")
        skel = motion.skeleton
        rot_channels = tuple(f"{axis}rotation" for axis in order)
        channels = [("Xposition", "Yposition", "Zposition") + rot_channels] + [rot_channels] * (skel.num_joints - 1)
        euler = quat_to_euler(motion.rotations, order)  # (T, J, 3)
        values = np.concatenate([np.asarray(root, np.float64)[:, None, :] / scale, euler], axis=1)
        values = values.reshape(motion.num_frames, -1)
        end_sites = list(skel.end_sites)
        if not end_sites:  # give leaf joints a short tip so viewers draw their bones
            for j in range(skel.num_joints):
                if not skel.children(j) and skel.parents[j] >= 0:
                    end_sites.append((j, tuple(float(v) * 0.25 for v in skel.rest_offsets[j])))
        return cls(
            joint_names=list(skel.joint_names),
            parents=list(skel.parents),
            offsets=skel.rest_offsets.astype(np.float64) / scale,
            channels=channels,
            end_sites=[(j, tuple(float(v) / scale for v in off)) for j, off in end_sites],
            frame_time=1.0 / motion.fps,
            values=values,
        )


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
            canonical = _CHANNEL_LOOKUP.get(token.lower())
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
            elif token.lower() in _CHANNEL_LOOKUP:
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
    every channel value in fixed point with ``precision`` decimals."""
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_bvh(path: str | os.PathLike, scale: float | None = None) -> Motion:
    """Read a BVH file as a :class:`Motion` in metres (``scale`` metres per file unit; ``None`` guesses)."""
    path = Path(path)
    motion = read_bvh(path).to_motion(scale=scale, name=f"bvh:{path.stem}")
    motion.metadata["source_path"] = str(path)
    return motion


def save_bvh(motion: Motion, path: str | os.PathLike, rotation_order: str = "ZYX", scale: float = 0.01) -> Path:
    """Write a motion with rotations as BVH (see :meth:`BVHClip.from_motion`); atomic. Returns the path."""
    return write_bvh(BVHClip.from_motion(motion, rotation_order, scale), path)
