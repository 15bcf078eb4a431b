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
from typing import NamedTuple

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
                 timeout_s: float = 900.0, silhouettes: bool = False) -> dict[str, np.ndarray]:
    """MediaPipe Pose landmarks of the first ``max_seconds`` of the video, sampled at ``fps``.

    Returns:
        ``{"world": (F, 33, 3) float32 metres (NaN: no person), "image": (F, 33, 2) float32 normalised,
        "visibility": (F, 33), "fps", "width", "height", "source_fps", "source_frames"}``; with ``silhouettes``
        also ``"silhouette": (F, 64, 48) uint8`` person masks cropped around the person and ``"box": (F, 4)``
        (:mod:`models.video.pose_script`).

    Raises:
        PoseUnavailableError: no pose environment; VideoError: the video cannot be read or the script fails.
    """
    python = pose_python()
    with tempfile.TemporaryDirectory(prefix="baton-pose-") as tmp:
        out = Path(tmp) / "pose.npz"
        env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run([str(python), str(SCRIPT), str(path), str(out), f"{fps:g}", f"{max_seconds:g}",
                               "1" if silhouettes else "0"],
                              capture_output=True, text=True, timeout=timeout_s, env=env, check=False)  # fmt: skip
        if done.returncode != 0 or not out.is_file():
            tail = (done.stderr or done.stdout or "").strip()[-800:]
            raise VideoError(f"pose estimation failed on {Path(path).name} (exit {done.returncode}): {tail}")
        with np.load(out) as data:
            return {k: data[k] for k in data.files}


def extract_poses(paths: list[str | os.PathLike], fps: float = 10.0, max_seconds: float = 180.0,
                  timeout_s: float = 3600.0, silhouettes: bool = False) -> list[dict[str, np.ndarray] | None]:
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
        jobs.write_text(json.dumps([[str(p), str(o), fps, max_seconds, int(silhouettes)]
                                     for p, o in zip(paths, outputs, strict=True)]))
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


#: Near-vertical body segments (MediaPipe landmark pairs: torso sides, thighs, shins) whose apparent length gives the
#: person's depth; only segments with both ends inside the frame and visible count (legs cut by the frame's bottom
#: edge must not make a person entering the shot look far away).
_DEPTH_SEGMENTS = np.array(((11, 23), (12, 24), (23, 25), (24, 26), (25, 27), (26, 28)))
#: Least visibility (MediaPipe's 0..1) of a landmark used for depth, and least usable segments in a frame.
_MIN_VISIBILITY, _MIN_SEGMENTS = 0.5, 2
#: Camera pitches (degrees, positive = looking down) searched by :func:`estimate_camera_pitch`.
PITCHES_DEG = np.arange(-30.0, 75.5, 1.0)


class _SegmentView(NamedTuple):
    """What the image says about one run's depth, for any camera pitch (:func:`_segment_view`)."""

    q: np.ndarray  # (T, 2) normalised image point of the pelvis, x/z and y/z, camera axes (+X left, +Y up)
    scale: np.ndarray  # (T,) depth = scale * foreshortening(pitch): focal * visible metric length / its image length
    good: np.ndarray  # (T,) bool: frames whose depth is measured (the rest are interpolated)
    fixed: np.ndarray | None  # (T,) depth to use whatever the pitch, when no whole segment is ever in view
    whole: np.ndarray  # (T,) bool: frames with every depth segment (torso sides, thighs, shins) usable


def _segment_view(world: np.ndarray, image: np.ndarray, visibility: np.ndarray | None, aspect: float,
                  focal: float) -> _SegmentView:  # fmt: skip
    """Measure one run's visible :data:`_DEPTH_SEGMENTS` once: their summed metric length (each segment's median
    over the run) against their summed length in the image, per frame (see :func:`_ground_frame_depth`)."""
    pairs = _DEPTH_SEGMENTS
    flat = image.copy()
    flat[..., 1] /= aspect
    metric = np.nanmedian(np.linalg.norm(world[:, pairs[:, 0]] - world[:, pairs[:, 1]], axis=-1), axis=0)
    apparent = np.linalg.norm(flat[:, pairs[:, 0]] - flat[:, pairs[:, 1]], axis=-1)
    inside = ((image >= 0.0) & (image <= 1.0)).all(-1)
    if visibility is not None:
        inside &= np.asarray(visibility) >= _MIN_VISIBILITY
    usable = inside[:, pairs[:, 0]] & inside[:, pairs[:, 1]]
    pelvis = image[:, [_MP["l_hip"], _MP["r_hip"]]].mean(1)
    # camera axes with +Y up (image y is down), +X to the camera's left (a rotation of MediaPipe's axes)
    q = np.stack([-(pelvis[:, 0] - 0.5) / focal, -(pelvis[:, 1] - 0.5) / aspect / focal], 1)  # x/z and y/z
    shown = (apparent * usable).sum(1)
    good = (usable.sum(1) >= _MIN_SEGMENTS) & (shown > 1e-3)
    if not good.any():  # never _MIN_SEGMENTS whole segments in view: whatever is shown
        good = shown > 1e-3
    scale = focal * (metric[None] * usable).sum(1) / np.maximum(shown, 1e-3)
    fixed = None
    if not good.any():  # no whole segment at all: the landmarks' extent as a body 1.7 m tall
        fixed = np.full(len(image), focal * 1.7 / max(float(np.ptp(image[..., 1])) / aspect, 1e-3))
        good = np.ones(len(image), bool)
    return _SegmentView(q, scale, good, fixed, usable.all(1))


def _ground_frame_depth(view: _SegmentView, pitch: float) -> np.ndarray:
    """The pelvis's optical depth over one run of frames (:func:`_segment_view`) seen by a pinhole camera pitched
    down by ``pitch`` (radians) over a level floor; :func:`_root_at` turns it into the pelvis trajectory.

    Depth comes from the visible :data:`_DEPTH_SEGMENTS`: an upright (vertical in the world) segment of metric length
    ``L`` (its median over the run) at depth ``z`` and normalised image point ``q = (x/z, y/z)`` projects
    ``focal * L * |u_xy - q u_z| / z`` long (pinhole camera), ``u`` the world's up in camera axes: a camera looking
    down sees a person below it foreshortened. Frames with fewer than :data:`_MIN_SEGMENTS` usable segments are
    interpolated from their neighbours.

    Returns:
        optical depth ``(T,)`` metres.
    """
    q = view.q
    up = np.array([0.0, np.cos(pitch), -np.sin(pitch)])
    # d(projection)/d(length) of a segment along `up` at normalised image point q and depth z: |up_xy - q up_z| / z
    across = np.maximum(np.linalg.norm(up[None, :2] - q * up[2], axis=1), 1e-2)
    depth = view.fixed if view.fixed is not None else view.scale * across
    return np.clip(_smooth(_fill(depth, view.good), 7), 0.5, 50.0)


def _root_at(q: np.ndarray, depth: np.ndarray, pitch: float) -> np.ndarray:
    """Pelvis positions ``(T, 3)`` metres in floor axes (+X the camera's left, +Y up, +Z along the floor away from
    the camera) from its normalised image points ``q (T, 2)`` and depths ``(T,)``."""
    return _camera_to_floor(np.stack([q[:, 0] * depth, q[:, 1] * depth, depth], axis=1), pitch)


#: Least camera pitch (degrees) at which frames with legs out of view are put on the floor by the pelvis's image
#: position (:func:`_level_cut_frames`); below it the pelvis's image height says too little about its depth.
MIN_LEVELLING_PITCH_DEG = 10.0


def _level_cut_frames(view: _SegmentView, depth: np.ndarray, pitch: float) -> np.ndarray:
    """``depth (T,)`` (:func:`_ground_frame_depth`) with the frames whose legs are cut by the frame's edge or hidden
    (not every depth segment usable) re-placed at the pelvis height of the run's whole-body frames (their median),
    on the ray through the pelvis's image point: a person on a level floor seen by a camera pitched down by
    ``pitch`` is at depth ``h / (q_y cos(pitch) - sin(pitch))``. Depth from a torso alone, seen from above at close
    range, overshoots: on the real walking video people walking in under the camera (legs below the frame for ~0.5
    s) started 0.9-2.6 m too low and walked backwards first. Unchanged when the camera is nearly level, or fewer than
    3 frames show the whole body."""
    cut = ~view.whole
    if pitch < np.radians(MIN_LEVELLING_PITCH_DEG) or view.whole.sum() < 3 or not cut.any():
        return depth
    slope = view.q[:, 1] * np.cos(pitch) - np.sin(pitch)  # height / depth along the ray through the pelvis
    height = float(np.median(depth[view.whole] * slope[view.whole]))
    usable = cut & (slope < -0.05) & (height < 0.0)  # the pelvis below the camera and below the horizon
    level = depth.copy()
    level[usable] = np.clip(height / slope[usable], 0.5, 50.0)
    return _smooth(level, 3)


def _camera_to_floor(points: np.ndarray, pitch: float) -> np.ndarray:
    """Points ``(..., 3)`` in camera axes (+X the camera's left, +Y up in the image, +Z along the optical axis) of a
    camera pitched down by ``pitch`` radians, in floor axes (+X the camera's left, +Y up, +Z along the floor away
    from the camera): a rotation about X by the pitch."""
    c, s = np.cos(pitch), np.sin(pitch)
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return np.stack([x, y * c - z * s, y * s + z * c], axis=-1)


def estimate_camera_pitch(runs: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], aspect: float,
                          hfov_deg: float = 60.0) -> float:  # fmt: skip
    """The camera's pitch (degrees, positive = looking down) that keeps people's pelvises at one height above a
    level floor (:func:`_ground_frame_depth`), from every run of frames with a person in one video.

    For each run the pitch within :data:`PITCHES_DEG` minimising the pelvis height's variance (relative to the
    squared mean depth, so that no pitch wins by shrinking the scene) is found; runs whose best pitch lies on the
    searched range's edge (a degenerate fit: a person standing still, or an estimate that never settles) are
    dropped; the median of the rest is the video's pitch, 0 (a level camera) when none is left.

    Args:
        runs: ``(world (T, 33, 3), image (T, 33, 2), visibility (T, 33) or None)`` per run (MediaPipe landmarks,
            gaps already filled).
        aspect: frame width / height.

    Returns:
        the pitch in degrees.
    """
    focal = 0.5 / np.tan(np.radians(hfov_deg) / 2)
    angles = np.radians(PITCHES_DEG)
    fits = []
    for world, image, visibility in runs:
        if len(world) < 5:
            continue
        view = _segment_view(world, image, visibility, aspect, focal)  # the pitch changes only the foreshortening
        scores = []
        for pitch in angles:
            depth = _ground_frame_depth(view, float(pitch))
            root = _root_at(view.q, depth, float(pitch))
            scores.append(root[:, 1].var() / max(float(np.mean(depth)) ** 2, 1e-9))
        best = int(np.argmin(scores))
        if 0 < best < len(angles) - 1:
            fits.append(PITCHES_DEG[best])
    return float(np.median(fits)) if fits else 0.0


def estimate_body_tilt(world: np.ndarray, visibility: np.ndarray | None = None) -> float | None:
    """How far MediaPipe's world landmarks lean the legs away from the camera (degrees, positive = feet away from
    it, as under a camera looking down): the median over the frames of one run, with both hips and ankles
    visible, of the hip-midpoint-to-ankle-midpoint direction's angle to the image's vertical in MediaPipe's y-z plane.

    MediaPipe's world landmarks keep the camera's axes (google-ai-edge/mediapipe#4205), only partly pulled upright
    by the model's prior: on the real walking video (camera pitch 35 degrees from the image) the legs lean 38
    degrees and the trunk 17; on rendered mannequins the legs lean 12 degrees less than the camera's true elevation
    (median over 71 clips). Standing, walking, waving, bowing and kicking people keep their legs vertical most of
    the time, so the median leg tilt is what turns the body upright.

    Args:
        world: ``(T, 33, 3)`` MediaPipe world landmarks of one run of frames with a person.
        visibility: ``(T, 33)`` MediaPipe's landmark visibility, or ``None`` (every landmark counts).

    Returns:
        the tilt in degrees, or ``None`` when no frame shows both hips and both ankles (an upper-body video).
    """
    hips, ankles = [_MP["l_hip"], _MP["r_hip"]], [_MP["l_ankle"], _MP["r_ankle"]]
    legs = world[:, hips].mean(1) - world[:, ankles].mean(1)  # ankle -> hip: "up" in MediaPipe's axes
    ok = np.isfinite(legs).all(1)
    if visibility is not None:
        ok &= (np.asarray(visibility)[:, hips + ankles] >= _MIN_VISIBILITY).all(1)
    return float(np.median(np.degrees(np.arctan2(-legs[ok, 2], -legs[ok, 1])))) if ok.any() else None


def _camera_positions(world: np.ndarray, image: np.ndarray, aspect: float, hfov_deg: float,
                      visibility: np.ndarray | None = None, pitch_deg: float = 0.0,
                      tilt_deg: float | None = None) -> np.ndarray:  # fmt: skip
    """Pose-skeleton joints ``(T, 21, 3)`` in floor axes (+Y up) with the root trajectory estimated from the image
    (:func:`_ground_frame_depth`, camera pitched down by ``pitch_deg``).

    MediaPipe's world landmarks are metric and pelvis-centred but keep the camera's axes (x right, y down, z away
    from the camera): seen from above, a standing body comes out leaning, feet away from the camera. The body is
    turned upright about the camera's x axis by ``tilt_deg`` (:func:`estimate_body_tilt`; ``None``: by the camera
    pitch)."""
    joints = np.einsum("jm,tmc->tjc", _WEIGHTS, world)  # MediaPipe axes: x right, y down, z away, pelvis-centred
    focal = 0.5 / np.tan(np.radians(hfov_deg) / 2)
    pitch = float(np.radians(pitch_deg))
    view = _segment_view(world, image, visibility, aspect, focal)
    root = _root_at(view.q, _level_cut_frames(view, _ground_frame_depth(view, pitch), pitch), pitch)
    tilt = pitch if tilt_deg is None else float(np.radians(tilt_deg))
    # 180 degrees about the viewing axis (a rotation, so left stays left): x right, y down -> +X left, +Y up.
    return _camera_to_floor(joints * np.array([-1.0, -1.0, 1.0]), tilt) + root[:, None, :]


def pose_to_windows(pose: dict[str, np.ndarray], window_s: float = 4.8, min_seconds: float = 1.0,
                    hfov_deg: float = 60.0, max_gap: int = 3, min_extent: float = 0.25,
                    pitch_deg: float | None = None) -> list[Motion]:  # fmt: skip
    """Every ``window_s`` window (1 s apart) of the people in ``pose`` (:func:`extract_pose`) as 3D Motions.

    Runs of frames with a person (gaps of up to ``max_gap`` frames interpolated) of at least ``min_seconds`` are
    cut into windows of ``window_s`` (a shorter run is one window). The body is turned upright by its run's median
    leg tilt (:func:`estimate_body_tilt`, per run because MediaPipe's lean differs by person: on the real walking
    video 34-42 degrees for five people and -3 for one whose long coat hides her legs; the camera pitch when no frame
    shows the legs), the root placed by the camera pitch. Each window's activity is its mean pelvis-relative joint
    speed plus its root speed capped at :data:`MAX_ROOT_SPEED` (so depth glitches do not dominate).

    Args:
        window_s: query length in seconds (the retrieval encoder's window: 48 frames at 10 fps).
        min_seconds: shortest usable run.
        hfov_deg: assumed horizontal field of view of the camera (depth / root trajectory estimate).
        min_extent: a detection counts as the person only when its landmarks span at least this fraction of the
            image height (MediaPipe also "finds" people in furniture, small and far away).
        pitch_deg: the camera's downward pitch in degrees; ``None`` estimates it from the video
            (:func:`estimate_camera_pitch`: people's pelvises stay at one height above a level floor).

    Returns:
        Motions on the :data:`POSE_JOINT_NAMES` skeleton (``mediapipe21``), positions ``(T, 21, 3)`` metres in
        backend space (+Y up; +Z along the floor away from the camera), at ``pose["fps"]``, in video order; metadata
        has each window's start time in the video (``start_s``), its activity (``activity_m_per_s``), the camera
        pitch used (``camera_pitch_deg``) and the body tilt undone (``body_tilt_deg``).

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
    visibility = np.asarray(pose["visibility"], np.float64) if "visibility" in pose else None
    filled = [(_fill(world[a:b], found[a:b]), _fill(image[a:b], found[a:b]),
               None if visibility is None else np.where(found[a:b, None], visibility[a:b], 0.0)) for a, b in runs]
    if pitch_deg is None:
        pitch_deg = estimate_camera_pitch(filled, aspect, hfov_deg)
    windows: list[Motion] = []
    for (a, _), (run_world, run_image, run_visibility) in zip(runs, filled, strict=True):
        tilt_deg = estimate_body_tilt(run_world, run_visibility)  # per run: MediaPipe's lean differs by person
        tilt_deg = float(pitch_deg) if tilt_deg is None else float(np.clip(tilt_deg, PITCHES_DEG[0], PITCHES_DEG[-1]))
        positions = _camera_positions(run_world, run_image, aspect, hfov_deg, run_visibility, pitch_deg, tilt_deg)
        for start in range(0, max(1, len(positions) - length + 1), stride):
            window = positions[start : start + length]
            relative = window - window[:, :1]
            body = float(np.linalg.norm(np.diff(relative, axis=0), axis=2).mean() * fps)
            root = min(float(np.linalg.norm(np.diff(window[:, 0], axis=0), axis=1).mean() * fps), MAX_ROOT_SPEED)
            windows.append(_window_motion(window, fps, (a + start) / fps, body + root, pitch_deg, tilt_deg))
    return windows


def _window_motion(positions: np.ndarray, fps: float, start_s: float, activity: float, pitch_deg: float,
                   tilt_deg: float) -> Motion:  # fmt: skip
    offsets = np.zeros((len(_JOINTS), 3), np.float32)
    median = np.median(positions, axis=0)
    for j, parent in enumerate(POSE_PARENTS):
        if parent >= 0:
            offsets[j] = median[j] - median[parent]
    skeleton = Skeleton(name=POSE_SKELETON_NAME, joint_names=POSE_JOINT_NAMES, parents=POSE_PARENTS,
                        rest_offsets=offsets)  # fmt: skip
    return Motion(skeleton=skeleton, fps=fps, positions=positions.astype(np.float32),
                  metadata={"start_s": round(start_s, 3), "activity_m_per_s": round(activity, 4),
                            "camera_pitch_deg": round(float(pitch_deg), 1), "body_tilt_deg": round(tilt_deg, 1),
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
