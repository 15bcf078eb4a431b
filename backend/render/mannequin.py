"""Plan a rendered avatar clip in numpy: mannequin segments, their per-frame matrices, camera, lights, colours.

The avatar is a mannequin Baton builds from the clip's own skeleton (no SMPL files): every bone (joint -> parent)
becomes one ellipsoid whose long axis runs from the parent joint to the joint, plus a head sphere at the end of the
spine chain. Each ellipsoid follows its bone rigidly (rigid skinning: one bone per mesh), so the avatar moves exactly
as the stored joint positions do. Girth comes from the body part (:mod:`models.retrieval.body_parts` chains: legs,
spine, arms) times random per-part factors, which is how proportions vary between renders (bone lengths are the
clip's own and are never changed).

Everything here is numpy so it is tested without Blender; :mod:`backend.render.render_script` only copies the
planned matrices into bpy objects and renders. Matrices are in Blender space (+Z up, -Y forward), converted with the
rotation ``(x, y, z)_backend -> (x, -z, y)_blender`` (the same change of basis as ``blender_addon/space.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.motion.motion import Motion
from models.retrieval.body_parts import body_parts

BACKEND_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

#: Workbench studio lights that ship with Blender (the render script falls back to the first available one).
STUDIO_LIGHTS = ("Default", "basic.sl", "outdoor.sl", "paint.sl", "rim.sl", "studio.sl")


@dataclass(frozen=True)
class RenderSettings:
    """How one clip is rendered.

    Attributes:
        size: square image size in pixels (224 as in LAVIMO / ViT inputs).
        frames: number of rendered frames (LAVIMO uses 8).
        fps: frame rate of the rendered frames; the clip window is ``frames / fps`` seconds.
        camera_pitch_deg: ``(low, high)`` range of the camera's elevation above the subject in degrees (drawn
            uniformly per render; 0 = eye level, 45 = a camera looking down like a surveillance or phone shot).
    """

    size: int = 224
    frames: int = 16
    fps: float = 8.0
    camera_pitch_deg: tuple[float, float] = (0.0, 25.0)

    def __post_init__(self) -> None:
        if not 32 <= int(self.size) <= 2048:
            raise ValueError(f"render size must be 32..2048 pixels, got {self.size}")
        if int(self.frames) < 1:
            raise ValueError(f"render frames must be at least 1, got {self.frames}")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"render fps must be positive, got {self.fps}")
        low, high = (float(v) for v in self.camera_pitch_deg)
        if not (np.isfinite(low) and np.isfinite(high) and -10.0 <= low <= high <= 80.0):
            raise ValueError(f"camera pitch range must satisfy -10 <= low <= high <= 80 degrees, got {low}, {high}")
        object.__setattr__(self, "camera_pitch_deg", (low, high))

    @property
    def window_s(self) -> float:
        return self.frames / self.fps


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """4x4 camera-to-world matrix of a Blender camera at ``eye`` looking at ``target`` (camera looks down -Z, +Y up)."""
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(np.array([0.0, 0.0, 1.0]), back)
    if np.linalg.norm(right) < 1e-6:
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    matrix = np.eye(4)
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2], matrix[:3, 3] = right, up, back, eye
    return matrix


def _body_height(pose: np.ndarray, chains) -> float:
    """Body height in the motion's units from one pose ``(J, 3)``: spine arc + mean leg arc (1.7 if degenerate)."""

    def arc(chain) -> float:
        return float(np.linalg.norm(np.diff(pose[list(chain)], axis=0), axis=1).sum())

    height = arc(chains[2]) + (arc(chains[0]) + arc(chains[1])) / 2
    return height if np.isfinite(height) and height > 1e-6 else 1.7


def window_positions(motion: Motion, settings: RenderSettings, start_s: float) -> np.ndarray:
    """Joint positions ``(frames, J, 3)`` float64 (backend space, metres) sampled at ``settings.fps`` from
    ``start_s`` (linear interpolation; the last frame is held past the clip's end).

    Raises:
        ValueError: for a 2D motion.
    """
    if motion.is_2d:
        raise ValueError("rendering needs a 3D motion (positions (T, J, 3))")
    source = np.asarray(motion.positions, np.float64)
    times = start_s + np.arange(settings.frames) / settings.fps
    index = np.clip(times * motion.fps, 0, motion.num_frames - 1)
    low = np.floor(index).astype(int)
    high = np.minimum(low + 1, motion.num_frames - 1)
    t = (index - low)[:, None, None]
    return (1 - t) * source[low] + t * source[high]


#: The look of :func:`plan_clip` with ``neutral=True`` (thumbnails): blue-grey body, light grey studio.
NEUTRAL_LOOK = {"body": (0.42, 0.52, 0.68), "limbs": (0.30, 0.38, 0.52), "background": (0.93, 0.93, 0.95),
                "floor": (0.78, 0.78, 0.80), "light": "Default", "yaw_deg": 35.0, "pitch_deg": 12.0,
                "lens_mm": 40.0}  # fmt: skip


def plan_clip(motion: Motion, settings: RenderSettings, seed: int, start_s: float | None = None, *,
              neutral: bool = False) -> dict:  # fmt: skip
    """Everything the render script needs for one clip, randomised by ``seed`` (or, with ``neutral``, the same look
    for every clip: :data:`NEUTRAL_LOOK`, average girth, a camera following the pelvis from 35 degrees to the
    subject's front-left at 12 degrees elevation; what result thumbnails use so that clips compare at a glance).

    Args:
        motion: a 3D motion (any skeleton with legs, spine and arms; :func:`models.retrieval.body_parts.body_parts`).
        settings: size, frames, fps.
        seed: randomises girth, colours, camera, light, background and (when ``start_s`` is None) the window start.
        start_s: window start in seconds (``None``: random within the clip).

    Returns:
        ``{"matrices": (frames, S, 4, 4) float32 segment world matrices (unit sphere -> ellipsoid),
        "colors": (S, 4) float32 RGBA, "camera": (frames, 4, 4) float32 camera-to-world per frame, "tracking"
        (a camera following the pelvis at a fixed offset, else static), "lens_mm", "background": RGB, "floor": RGB,
        "floor_z", "light", "light_rotation", "shadows", "start_s", "positions": (frames, J, 3) float32 backend}``
        and, when ``neutral``, ``"view_transform": "Standard"`` (Blender's colour management for the render).

    Raises:
        ValueError: for a 2D motion or a skeleton whose limbs cannot be identified.
    """
    rng = np.random.default_rng(seed)
    if start_s is None:
        room = max(0.0, motion.duration_s - settings.window_s)
        start_s = float(rng.uniform(0.0, room)) if room > 0 else 0.0
    positions = window_positions(motion, settings, start_s)
    world = positions @ BACKEND_TO_BLENDER.T  # (F, J, 3) Blender space
    skeleton = motion.skeleton
    parts = body_parts(skeleton)
    height = _body_height(world[0], parts.chains)
    scale = height / 1.7  # girths below are for a 1.7 m adult in the skeleton's units
    part_factor = np.ones(5) if neutral else rng.uniform(0.75, 1.3, size=5)
    base = {0: (0.085, 0.05), 1: (0.085, 0.05), 2: (0.14, 0.09), 3: (0.055, 0.035), 4: (0.055, 0.035)}
    radius = np.full(skeleton.num_joints, 0.03 * scale)
    for part, chain in enumerate(parts.chains):
        lo, hi = base[part]
        for k, joint in enumerate(chain):
            along = k / max(len(chain) - 1, 1)
            radius[joint] = (lo + (hi - lo) * along) * part_factor[part] * scale
    body_rgb = rng.uniform(0.15, 0.95, size=3)
    limb_rgb = np.clip(body_rgb + rng.normal(0, 0.15, size=3), 0.05, 1.0)
    if neutral:
        body_rgb, limb_rgb = np.array(NEUTRAL_LOOK["body"]), np.array(NEUTRAL_LOOK["limbs"])
    segments, colors = [], []
    chain_joints = {j for chain in parts.chains for j in chain}  # bones hanging off other joints are not drawn
    for joint, parent in enumerate(skeleton.parents):
        if parent < 0:
            continue
        length = np.linalg.norm(world[0, joint] - world[0, parent])
        if length < 1e-4 * height or parent not in chain_joints:  # e.g. a floor-level root -> pelvis bone
            continue
        segments.append((parent, joint, radius[joint] if joint in parts.chains[2] else radius[parent]))
        colors.append(body_rgb if joint in parts.chains[2] else limb_rgb)
    head = parts.chains[2][-1]
    matrices = np.zeros((settings.frames, len(segments) + 1, 4, 4))
    for s, (a, b, r) in enumerate(segments):
        pa, pb = world[:, a], world[:, b]
        axis = pb - pa
        length = np.linalg.norm(axis, axis=1, keepdims=True)
        z = axis / np.maximum(length, 1e-9)
        helper = np.where(np.abs(z[:, 2:3]) < 0.9, np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 0.0, 0.0]]))
        x = np.cross(helper, z)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        y = np.cross(z, x)
        half = length[:, 0] / 2 + 0.35 * r
        matrices[:, s, :3, 0] = x * r
        matrices[:, s, :3, 1] = y * r
        matrices[:, s, :3, 2] = z * half[:, None]
        matrices[:, s, :3, 3] = (pa + pb) / 2
        matrices[:, s, 3, 3] = 1.0
    head_r = 0.11 * scale * (1.0 if neutral else rng.uniform(0.85, 1.15))
    matrices[:, -1, :3, :3] = np.eye(3) * head_r
    matrices[:, -1, :3, 3] = world[:, head] + np.array([0.0, 0.0, 0.3 * head_r])
    matrices[:, -1, 3, 3] = 1.0
    colors.append(np.clip(body_rgb * (1.0 if neutral else rng.uniform(0.8, 1.2)), 0.05, 1.0))
    # Camera: around the subject (half the renders within 45 degrees of its initial facing); half of the cameras
    # frame the whole window from one place, half follow the pelvis at a fixed offset (a dolly shot).
    across = world[0, parts.chains[1][1]] - world[0, parts.chains[0][1]]  # right hip -> left hip
    facing = np.cross(across, np.array([0.0, 0.0, 1.0]))  # the subject's forward (left x up), Blender space
    yaw0 = np.arctan2(facing[1], facing[0])
    offset = rng.uniform(-np.pi / 4, np.pi / 4) if rng.random() < 0.5 else rng.uniform(-np.pi, np.pi)
    yaw = yaw0 + offset
    pitch = np.radians(rng.uniform(*settings.camera_pitch_deg))
    lens = float(rng.uniform(30.0, 60.0))
    if neutral:
        yaw, pitch = yaw0 + np.radians(NEUTRAL_LOOK["yaw_deg"]), np.radians(NEUTRAL_LOOK["pitch_deg"])
        lens = float(NEUTRAL_LOOK["lens_mm"])
    flat = world.reshape(-1, 3)
    lo, hi = flat.min(0), flat.max(0)
    centre = (lo + hi) / 2
    span = max(float(np.linalg.norm(hi - lo)) / 2, 0.55 * height)
    half_fov = np.arctan(18.0 / lens)  # 36 mm sensor width
    distance = span / np.sin(half_fov) * (1.1 if neutral else rng.uniform(1.0, 1.25))
    direction = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), np.sin(pitch)])
    tracking = True if neutral else bool(rng.random() < 0.5)
    if tracking:  # a following camera: a dolly keeping its offset to the (smoothed) pelvis, so the subject stays large
        pelvis = world[:, parts.chains[2][0]]
        kernel = 1 if neutral else min(5, len(pelvis))  # thumbnail frames are far apart in time: no smoothing
        padded = np.pad(pelvis, ((kernel // 2, kernel - 1 - kernel // 2), (0, 0)), mode="edge")
        target = np.stack([np.convolve(padded[:, c], np.ones(kernel) / kernel, "valid") for c in range(3)], 1)
        target[:, 2] = centre[2]
        body = (0.58 if neutral else 0.6 * rng.uniform(1.0, 1.25)) * height / np.sin(half_fov)
        camera = np.stack([_look_at(t + body * direction, t) for t in target])
    else:  # a static camera framing the whole window
        camera = np.repeat(_look_at(centre + distance * direction, centre)[None], settings.frames, axis=0)
    floor_z = float(lo[2])
    look = {
        "background": [float(v) for v in rng.uniform(0.0, 1.0, size=3)],
        "floor": [float(v) for v in rng.uniform(0.1, 0.9, size=3)],
        "light": STUDIO_LIGHTS[int(rng.integers(len(STUDIO_LIGHTS)))],
        "light_rotation": float(rng.uniform(-np.pi, np.pi)),
        "shadows": bool(rng.random() < 0.6),
    }
    if neutral:
        look = {"background": list(NEUTRAL_LOOK["background"]), "floor": list(NEUTRAL_LOOK["floor"]),
                "light": NEUTRAL_LOOK["light"], "light_rotation": 0.0, "shadows": True,
                "view_transform": "Standard"}  # fmt: skip
    return {
        "matrices": matrices.astype(np.float32),
        "colors": np.concatenate([np.array(colors), np.ones((len(colors), 1))], axis=1).astype(np.float32),
        "camera": camera.astype(np.float32),
        "tracking": tracking,
        "lens_mm": lens,
        "floor_z": floor_z,
        **look,
        "start_s": float(start_s),
        "positions": positions.astype(np.float32),
    }
