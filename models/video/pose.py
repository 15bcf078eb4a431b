"""Video -> 3D body keypoints -> :class:`~models.motion.motion.Motion`: the pose front end of video search.

1. :func:`probe_video` checks the file with PyAV before any model runs: it must exist, be a readable container with
   a video stream whose codec has a decoder, hold at least one frame, and last at most ``max_duration_s``.
2. :func:`extract_pose` runs MediaPipe Pose (BlazePose GHUM 3D, the ``pose_landmark_full`` model bundled in the
   ``mediapipe`` wheel, offline) in its own environment (``.venv-pose``: mediapipe's last release with the bundled
   models pins numpy<2, which the backend cannot share) through :mod:`models.video.pose_script`.
3. :func:`pose_to_windows` turns the landmarks of every run of frames with a person into Motions (windows of
   4.8 s, 1 s apart; :func:`pose_to_motion`: the most active one) on the ``mediapipe21`` skeleton
   (:data:`POSE_JOINT_NAMES`: pelvis, spine, chest, neck, head, arms to the hands, legs to the toes), in backend space
   (+Y up, +Z away from the camera; the retrieval features canonicalise the heading), with a root trajectory
   estimated from the image: depth from the apparent body size (pinhole camera, 60° horizontal field of view
   assumed), sideways and vertical motion from the hip midpoint's image position at that depth. MediaPipe's metric
   landmarks are pelvis-centred, so without this step every walk would look like walking on the spot.

The Motion then goes through the retrieval model's motion encoder like any library clip (the body-part
representation of :mod:`models.retrieval.body_parts` works across skeletons), so a video query needs no training
of its own.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.motion.motion import Motion
from models.motion.skeleton import Skeleton

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("pose_script.py")
#: Environment variable naming the Python that has mediapipe (default ``<repo>/.venv-pose/bin/python``).
POSE_PYTHON_ENV = "BATON_POSE_PYTHON"
#: Longest video accepted by default (seconds); longer files are refused before decoding.
MAX_DURATION_S = 600.0
#: Root speed (m/s) above which the estimated trajectory counts no more towards a window's activity.
MAX_ROOT_SPEED = 2.5


class VideoError(ValueError):
    """A video that cannot be searched with (corrupt, no video stream, unknown codec, no frames, too long, no
    person); the message says which."""


class PoseUnavailableError(RuntimeError):
    """The pose environment (mediapipe) is not installed."""


# MediaPipe landmark indices.
_MP = {"nose": 0, "l_ear": 7, "r_ear": 8, "l_shoulder": 11, "r_shoulder": 12, "l_elbow": 13, "r_elbow": 14,
       "l_wrist": 15, "r_wrist": 16, "l_index": 19, "r_index": 20, "l_hip": 23, "r_hip": 24, "l_knee": 25,
       "r_knee": 26, "l_ankle": 27, "r_ankle": 28, "l_foot": 31, "r_foot": 32}  # fmt: skip
#: Joints of the pose skeleton and how each is made from MediaPipe landmarks (a mean of these landmarks).
_JOINTS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("pelvis", None, ("l_hip", "r_hip")),
    ("spine", "pelvis", ("l_hip", "r_hip", "l_shoulder", "r_shoulder")),
    ("chest", "spine", ("l_shoulder", "r_shoulder")),
    ("neck", "chest", ("l_shoulder", "r_shoulder", "l_ear", "r_ear")),
    ("head", "neck", ("l_ear", "r_ear")),
    ("left_shoulder", "chest", ("l_shoulder",)), ("left_elbow", "left_shoulder", ("l_elbow",)),
    ("left_wrist", "left_elbow", ("l_wrist",)), ("left_hand", "left_wrist", ("l_index",)),
    ("right_shoulder", "chest", ("r_shoulder",)), ("right_elbow", "right_shoulder", ("r_elbow",)),
    ("right_wrist", "right_elbow", ("r_wrist",)), ("right_hand", "right_wrist", ("r_index",)),
    ("left_hip", "pelvis", ("l_hip",)), ("left_knee", "left_hip", ("l_knee",)),
    ("left_ankle", "left_knee", ("l_ankle",)), ("left_toe", "left_ankle", ("l_foot",)),
    ("right_hip", "pelvis", ("r_hip",)), ("right_knee", "right_hip", ("r_knee",)),
    ("right_ankle", "right_knee", ("r_ankle",)), ("right_toe", "right_ankle", ("r_foot",)),
)  # fmt: skip
POSE_JOINT_NAMES = tuple(name for name, _, _ in _JOINTS)
POSE_PARENTS = tuple(-1 if parent is None else POSE_JOINT_NAMES.index(parent) for _, parent, _ in _JOINTS)
_WEIGHTS = np.zeros((len(_JOINTS), 33), np.float64)
for _j, (_, _, _sources) in enumerate(_JOINTS):
    for _s in _sources:
        _WEIGHTS[_j, _MP[_s]] = 1.0 / len(_sources)


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` found: codec name, frame size, frame rate, duration (s), frame count (estimated
    from the duration when the container does not say)."""

    codec: str
    width: int
    height: int
    fps: float
    duration_s: float
    frames: int


def probe_video(path: str | os.PathLike, max_duration_s: float = MAX_DURATION_S) -> VideoInfo:
    """Check that ``path`` is a searchable video, without running any model.

    Raises:
        FileNotFoundError: no such file.
        VideoError: not a readable container (corrupt or not a video), no video stream, a codec without a decoder,
            no decodable frame, or longer than ``max_duration_s`` seconds.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no video file {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise VideoError(f"{path.name} is not a readable video (corrupt or not a video file): {exc}") from None
    with container:
        streams = container.streams.video
        if not streams:
            raise VideoError(f"{path.name} has no video stream")
        stream = streams[0]
        codec = stream.codec_context.name if stream.codec_context else None
        if not codec or codec == "none":
            raise VideoError(f"{path.name}: unknown video codec (no decoder for it in this build); convert the "
                             "video to H.264 MP4")  # fmt: skip
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6
        if duration is not None and duration > max_duration_s:
            raise VideoError(f"{path.name} lasts {duration / 60:.1f} min; video search takes at most "
                             f"{max_duration_s / 60:.0f} min (cut the part to search for)")  # fmt: skip
        try:
            first = next(container.decode(stream), None)
        except (av.error.FFmpegError, ValueError) as exc:
            raise VideoError(f"{path.name}: its video stream cannot be decoded ({exc}); the file is corrupt or "
                             "uses a codec this build cannot read") from None  # fmt: skip
        if first is None:
            raise VideoError(f"{path.name} has no video frames")
        frames = int(stream.frames) if stream.frames else int(round((duration or 0.0) * fps))
        return VideoInfo(codec=codec, width=int(first.width), height=int(first.height), fps=fps,
                         duration_s=float(duration if duration is not None else frames / fps), frames=max(frames, 1))


def pose_python() -> Path:
    """The Python with mediapipe: ``$BATON_POSE_PYTHON`` or ``<repo>/.venv-pose/bin/python``.

    Raises:
        PoseUnavailableError: when it does not exist (the message says how to create it).
    """
    configured = os.environ.get(POSE_PYTHON_ENV)
    path = Path(configured) if configured else REPO / ".venv-pose" / "bin" / "python"
    if not path.exists():
        raise PoseUnavailableError(f"video search needs the pose environment (mediapipe) at {path}; run "
                                   f"scripts/setup.sh or set {POSE_PYTHON_ENV}")  # fmt: skip
    return path


def extract_pose(path: str | os.PathLike, fps: float = 10.0, max_seconds: float = 180.0,
                 timeout_s: float = 900.0) -> dict[str, np.ndarray]:
    """MediaPipe Pose landmarks of the first ``max_seconds`` of the video, sampled at ``fps``.

    Returns:
        ``{"world": (F, 33, 3) float32 metres (NaN: no person), "image": (F, 33, 2) float32 normalised,
        "visibility": (F, 33), "fps", "width", "height", "source_fps", "source_frames"}``.

    Raises:
        PoseUnavailableError: no pose environment; VideoError: the video cannot be read or the script fails.
    """
    python = pose_python()
    with tempfile.TemporaryDirectory(prefix="baton-pose-") as tmp:
        out = Path(tmp) / "pose.npz"
        env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run([str(python), str(SCRIPT), str(path), str(out), f"{fps:g}", f"{max_seconds:g}"],
                              capture_output=True, text=True, timeout=timeout_s, env=env, check=False)  # fmt: skip
        if done.returncode != 0 or not out.is_file():
            tail = (done.stderr or done.stdout or "").strip()[-800:]
            raise VideoError(f"pose estimation failed on {Path(path).name} (exit {done.returncode}): {tail}")
        with np.load(out) as data:
            return {k: data[k] for k in data.files}


def extract_poses(paths: list[str | os.PathLike], fps: float = 10.0, max_seconds: float = 180.0,
                  timeout_s: float = 3600.0) -> list[dict[str, np.ndarray] | None]:
    """:func:`extract_pose` for many videos in one MediaPipe process (start-up paid once); ``None`` for a video that
    could not be opened.

    Raises:
        PoseUnavailableError: no pose environment; VideoError: the pose process failed as a whole.
    """
    import json

    python = pose_python()
    with tempfile.TemporaryDirectory(prefix="baton-pose-") as tmp:
        outputs = [Path(tmp) / f"pose{i}.npz" for i in range(len(paths))]
        jobs = Path(tmp) / "jobs.json"
        jobs.write_text(json.dumps([[str(p), str(o), fps, max_seconds] for p, o in zip(paths, outputs, strict=True)]))
        env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run([str(python), str(SCRIPT), "--batch", str(jobs)], capture_output=True, text=True,
                              timeout=timeout_s, env=env, check=False)  # fmt: skip
        if done.returncode != 0:
            raise VideoError(f"pose estimation failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
        results: list[dict[str, np.ndarray] | None] = []
        for output in outputs:
            if output.is_file():
                with np.load(output) as data:
                    results.append({k: data[k] for k in data.files})
            else:
                results.append(None)
        return results


def _runs(found: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of every stretch of ``found`` frames, bridging gaps of up to ``max_gap`` frames."""
    runs: list[tuple[int, int]] = []
    start = last = None
    for i in np.flatnonzero(found):
        if start is None or i - last > max_gap + 1:
            if start is not None:
                runs.append((int(start), int(last + 1)))
            start = i
        last = i
    if start is not None:
        runs.append((int(start), int(last + 1)))
    return runs


def _fill(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Linear interpolation over frames where ``found`` is false (values ``(F, ...)``)."""
    frames = np.arange(len(values))
    flat = values.reshape(len(values), -1).copy()
    for c in range(flat.shape[1]):
        flat[~found, c] = np.interp(frames[~found], frames[found], flat[found, c])
    return flat.reshape(values.shape)


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(values) < 3:
        return values
    kernel = np.ones(width) / width
    padded = np.pad(values, [(width // 2, width - 1 - width // 2)] + [(0, 0)] * (values.ndim - 1), mode="edge")
    return np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), 0, padded)


POSE_SKELETON_NAME = "mediapipe21"


def _camera_positions(world: np.ndarray, image: np.ndarray, aspect: float, hfov_deg: float) -> np.ndarray:
    """Pose-skeleton joints ``(T, 21, 3)`` in backend axes with the root trajectory estimated from the image."""
    joints = np.einsum("jm,tmc->tjc", _WEIGHTS, world)  # MediaPipe axes: x right, y down, z away, pelvis-centred
    pixels = np.einsum("jm,tmc->tjc", _WEIGHTS, image)
    chest, pelvis = POSE_JOINT_NAMES.index("chest"), POSE_JOINT_NAMES.index("pelvis")
    ankles = [POSE_JOINT_NAMES.index("left_ankle"), POSE_JOINT_NAMES.index("right_ankle")]
    # Depth from apparent size: the metric chest-to-ankles extent against its extent in the image (image widths).
    metric = np.linalg.norm(joints[:, chest] - joints[:, ankles].mean(1), axis=1)
    flat = pixels.copy()
    flat[..., 1] /= aspect
    apparent = np.linalg.norm(flat[:, chest] - flat[:, ankles].mean(1), axis=1)
    focal = 0.5 / np.tan(np.radians(hfov_deg) / 2)  # pinhole focal length in image widths
    depth = np.clip(focal * np.median(metric) / np.maximum(_smooth(apparent, 5), 1e-3), 0.5, 50.0)
    depth = _smooth(depth, 7)
    x = (pixels[:, pelvis, 0] - 0.5) * depth / focal
    y = (pixels[:, pelvis, 1] - 0.5) / aspect * depth / focal
    camera = joints + np.stack([x, y, depth], axis=1)[:, None, :]
    # 180 degrees about the viewing axis (a rotation, so left stays left): x right, y down -> +X, +Y up.
    return camera * np.array([-1.0, -1.0, 1.0])


def pose_to_windows(pose: dict[str, np.ndarray], window_s: float = 4.8, min_seconds: float = 1.0,
                    hfov_deg: float = 60.0, max_gap: int = 3, min_extent: float = 0.25) -> list[Motion]:
    """Every ``window_s`` window (1 s apart) of the people in ``pose`` (:func:`extract_pose`) as 3D Motions.

    Runs of frames with a person (gaps of up to ``max_gap`` frames interpolated) of at least ``min_seconds`` are
    cut into windows of ``window_s`` (a shorter run is one window). Each window's activity is its mean
    pelvis-relative joint speed plus its root speed capped at :data:`MAX_ROOT_SPEED` (so depth glitches do not
    dominate).

    Args:
        window_s: query length in seconds (the retrieval encoder's window: 48 frames at 10 fps).
        min_seconds: shortest usable run.
        hfov_deg: assumed horizontal field of view of the camera (depth / root trajectory estimate).
        min_extent: a detection counts as the person only when its landmarks span at least this fraction of the
            image height (MediaPipe also "finds" people in furniture, small and far away).

    Returns:
        Motions on the :data:`POSE_JOINT_NAMES` skeleton (``mediapipe21``), positions ``(T, 21, 3)`` metres in
        backend space (+Y up; the camera looks along +Z), at ``pose["fps"]``, in video order; metadata has each
        window's start time in the video (``start_s``) and its activity (``activity_m_per_s``).

    Raises:
        VideoError: when no person is found in at least ``min_seconds`` of consecutive frames.
    """
    world = np.asarray(pose["world"], np.float64)
    image = np.asarray(pose["image"], np.float64)
    fps = float(pose["fps"])
    aspect = float(pose["width"]) / max(float(pose["height"]), 1.0)
    found = np.isfinite(world).all(axis=(1, 2)) if len(world) else np.zeros(0, bool)
    if found.any():
        extent = np.zeros(len(found))
        extent[found] = np.nanmax(image[found, :, 1], axis=1) - np.nanmin(image[found, :, 1], axis=1)
        found &= extent >= min_extent  # small detections are objects (a bar stool) or people far away
    if not found.any():
        raise VideoError(f"no person found in the video (MediaPipe Pose detected nobody at least {min_extent:.0%} "
                         "of the frame tall)")  # fmt: skip
    runs = [(a, b) for a, b in _runs(found, max_gap) if (b - a) / fps >= min_seconds]
    if not runs:
        longest = max(b - a for a, b in _runs(found, max_gap)) / fps
        raise VideoError(f"a person is visible for only {longest:.1f} s in a row; video search needs at least "
                         f"{min_seconds:g} s of one person")  # fmt: skip
    length, stride = max(2, int(round(window_s * fps))), max(1, int(round(fps)))
    windows: list[Motion] = []
    for a, b in runs:
        seen = found[a:b]
        positions = _camera_positions(_fill(world[a:b], seen), _fill(image[a:b], seen), aspect, hfov_deg)
        for start in range(0, max(1, len(positions) - length + 1), stride):
            window = positions[start : start + length]
            relative = window - window[:, :1]
            body = float(np.linalg.norm(np.diff(relative, axis=0), axis=2).mean() * fps)
            root = min(float(np.linalg.norm(np.diff(window[:, 0], axis=0), axis=1).mean() * fps), MAX_ROOT_SPEED)
            windows.append(_window_motion(window, fps, (a + start) / fps, body + root))
    return windows


def _window_motion(positions: np.ndarray, fps: float, start_s: float, activity: float) -> Motion:
    offsets = np.zeros((len(_JOINTS), 3), np.float32)
    median = np.median(positions, axis=0)
    for j, parent in enumerate(POSE_PARENTS):
        if parent >= 0:
            offsets[j] = median[j] - median[parent]
    skeleton = Skeleton(name=POSE_SKELETON_NAME, joint_names=POSE_JOINT_NAMES, parents=POSE_PARENTS,
                        rest_offsets=offsets)  # fmt: skip
    return Motion(skeleton=skeleton, fps=fps, positions=positions.astype(np.float32),
                  metadata={"start_s": round(start_s, 3), "activity_m_per_s": round(activity, 4),
                            "source": "mediapipe-pose"})  # fmt: skip


def pose_to_motion(pose: dict[str, np.ndarray], window_s: float = 4.8, **options) -> Motion:
    """The most active window of :func:`pose_to_windows` (full-length windows first): for a clip of someone walking
    in and then standing still, the walk. ``options`` are those of :func:`pose_to_windows`; raises what it raises."""
    windows = pose_to_windows(pose, window_s=window_s, **options)
    length = max(w.num_frames for w in windows)
    return max(windows, key=lambda w: (w.num_frames == length, w.metadata["activity_m_per_s"]))


def video_to_motion(path: str | os.PathLike, fps: float = 10.0, max_seconds: float = 180.0,
                    max_duration_s: float = MAX_DURATION_S) -> tuple[Motion, VideoInfo]:
    """:func:`probe_video` + :func:`extract_pose` + :func:`pose_to_motion`. Raises what those raise."""
    info = probe_video(path, max_duration_s)
    return pose_to_motion(extract_pose(path, fps=fps, max_seconds=max_seconds)), info
