"""The pose front end of video search: video checks, MediaPipe Pose on real footage, landmarks -> 3D Motion."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from models.video.pose import (
    _WEIGHTS,
    POSE_JOINT_NAMES,
    VideoError,
    estimate_body_tilt,
    estimate_camera_pitch,
    extract_pose,
    pose_to_motion,
    pose_to_windows,
    probe_video,
)

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    out = {name: root / name for name in ("ok.mp4", "long.mp4", "audio.m4a", "unknown.avi", "zero.mp4",
                                           "corrupt.mp4", "blank.mp4")}  # fmt: skip
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-c:v", "libx264", str(out["ok.mp4"]))
    _ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=16x16:r=1:d=7200", "-c:v", "libx264", "-preset", "ultrafast",
            str(out["long.mp4"]))  # fmt: skip
    _ffmpeg("-f", "lavfi", "-i", "sine=d=1", str(out["audio.m4a"]))
    _ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=160x120:r=10:d=2", "-c:v", "libx264", str(out["blank.mp4"]))
    # An AVI whose fourcc no decoder knows.
    xvid = root / "xvid.avi"
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64:r=10:d=1", "-c:v", "mpeg4", "-vtag", "XVID", str(xvid))
    out["unknown.avi"].write_bytes(xvid.read_bytes().replace(b"XVID", b"QQQQ"))
    # An MP4 with a video track but no frame data: keep only ftyp + moov of a fast-start file.
    fast = root / "fast.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64:r=10:d=1", "-c:v", "libx264", "-movflags", "+faststart",
            str(fast))  # fmt: skip
    data, i = fast.read_bytes(), 0
    while data[i + 4 : i + 8] != b"moov":
        i += struct.unpack(">I", data[i : i + 4])[0]
    out["zero.mp4"].write_bytes(data[: i + struct.unpack(">I", data[i : i + 4])[0]])
    out["corrupt.mp4"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return out


def test_a_good_video_is_probed(videos):
    info = probe_video(videos["ok.mp4"])
    assert (info.codec, info.width, info.height) == ("h264", 64, 48)
    assert info.fps == pytest.approx(10.0) and info.duration_s == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize(("name", "message"), [
    ("corrupt.mp4", "not a readable video"),
    ("audio.m4a", "no video stream"),
    ("unknown.avi", "unknown video codec"),
    ("zero.mp4", "no video frames"),
    ("long.mp4", "lasts 120.0 min"),
])  # fmt: skip
def test_bad_videos_are_refused_with_the_reason(videos, name, message):
    with pytest.raises(VideoError, match=message):
        probe_video(videos[name])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        probe_video(tmp_path / "nope.mp4")


def _synthetic_pose(frames: int = 40, fps: float = 10.0, speed: float = 1.0) -> tuple[dict, np.ndarray]:
    """A standing person walking away from a pinhole camera (60° field of view) at ``speed`` m/s, as MediaPipe
    would report it: pelvis-centred metric landmarks and their projection."""
    world = np.zeros((33, 3))
    layout = {
        0: (0, -0.65, 0), 7: (0.08, -0.6, 0.05), 8: (-0.08, -0.6, 0.05), 11: (0.2, -0.45, 0), 12: (-0.2, -0.45, 0),
        13: (0.25, -0.2, 0), 14: (-0.25, -0.2, 0), 15: (0.27, 0.05, 0), 16: (-0.27, 0.05, 0), 19: (0.28, 0.12, 0),
        20: (-0.28, 0.12, 0), 23: (0.1, 0, 0), 24: (-0.1, 0, 0), 25: (0.1, 0.45, 0), 26: (-0.1, 0.45, 0),
        27: (0.1, 0.88, 0), 28: (-0.1, 0.88, 0), 31: (0.1, 0.93, -0.12), 32: (-0.1, 0.93, -0.12),
    }  # fmt: skip
    for index, point in layout.items():
        world[index] = point
    focal = 0.5 / np.tan(np.radians(30))
    depth = 3.0 + speed * np.arange(frames) / fps
    camera = world[None] + np.stack([np.zeros(frames), np.full(frames, 0.3), depth], 1)[:, None]
    image = camera[..., :2] / camera[..., 2:3] * focal
    image[..., 0] += 0.5
    image[..., 1] = image[..., 1] * (4 / 3) + 0.5  # 4:3 frame, y in image heights
    pose = {"world": np.repeat(world[None], frames, 0).astype(np.float32), "image": image.astype(np.float32),
            "visibility": np.ones((frames, 33), np.float32), "fps": np.float32(fps), "width": np.int32(640),
            "height": np.int32(480)}  # fmt: skip
    return pose, depth


def test_root_trajectory_is_recovered_from_the_image():
    pose, depth = _synthetic_pose(speed=1.0)
    motion = pose_to_motion(pose, window_s=4.0)
    pelvis = motion.positions[:, POSE_JOINT_NAMES.index("pelvis")]
    assert motion.num_frames == 40 and motion.skeleton.joint_names == POSE_JOINT_NAMES
    speed = np.diff(pelvis[5:-5, 2]).mean() * 10.0
    assert speed == pytest.approx(1.0, rel=0.15), "walking away at 1 m/s becomes +Z motion at about 1 m/s"
    head, toe = POSE_JOINT_NAMES.index("head"), POSE_JOINT_NAMES.index("left_toe")
    assert (motion.positions[:, head, 1] > motion.positions[:, toe, 1]).all(), "+Y is up"
    left, right = POSE_JOINT_NAMES.index("left_hip"), POSE_JOINT_NAMES.index("right_hip")
    # The synthetic person faces the camera, i.e. -Z in backend space; facing -Z, the subject's left is -X (a
    # rotation, not a mirror: a mirrored lift would put the left hip at +X).
    assert (motion.positions[:, left, 0] < motion.positions[:, right, 0]).all()
    assert _WEIGHTS.sum(1) == pytest.approx(np.ones(len(POSE_JOINT_NAMES)))


def _pitch_down(points: np.ndarray, angle: float) -> np.ndarray:
    """Points ``(..., 3)`` (x right, y down, z ahead) in the axes of a camera pitched down by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([points[..., 0], points[..., 1] * c - points[..., 2] * s, points[..., 1] * s + points[..., 2] * c],
                    -1)  # fmt: skip


def _pitched_pose(pitch_deg: float, frames: int = 50, fps: float = 10.0, speed: float = 1.0, start: float = 2.0,
                  camera_height: float = 1.6, cut_legs_until: int = 0,
                  landmark_tilt_deg: float | None = None) -> dict:  # fmt: skip
    """The layout of :func:`_synthetic_pose` walking away along a level floor (pelvis ``camera_height`` m below the
    camera, from ``start`` m ahead at ``speed`` m/s) seen by a camera pitched down by ``pitch_deg``. MediaPipe's metric
    landmarks are in the camera's axes (google-ai-edge/mediapipe#4205), so they are tilted by the pitch like the
    image (by ``landmark_tilt_deg`` instead when given: the model's upright prior pulls them part of the way back).
    Until frame ``cut_legs_until`` the knees and feet are below the frame's bottom edge (a person walking in under the
    camera): MediaPipe still guesses them, at low visibility."""
    base, _ = _synthetic_pose(frames=1)
    world = base["world"][0].astype(np.float64)
    theta = np.radians(pitch_deg)
    focal = 0.5 / np.tan(np.radians(30))
    along = start + speed * np.arange(frames) / fps
    points = world[None] + np.stack([np.zeros(frames), np.full(frames, camera_height), along], 1)[:, None]  # y down
    camera = _pitch_down(points, theta)
    image = camera[..., :2] / camera[..., 2:3] * focal
    image[..., 0] += 0.5
    image[..., 1] = image[..., 1] * (4 / 3) + 0.5
    tilt = theta if landmark_tilt_deg is None else np.radians(landmark_tilt_deg)
    world = _pitch_down(world, tilt)  # camera axes
    visibility = np.ones((frames, 33))
    legs = [25, 26, 27, 28, 31, 32]
    for f in range(cut_legs_until):
        visibility[f, legs] = 0.1
        image[f, legs, 1] = np.maximum(image[f, legs, 1], 1.02)  # guessed below the frame
    return {"world": np.repeat(world[None], frames, 0).astype(np.float32), "image": image.astype(np.float32),
            "visibility": visibility.astype(np.float32), "fps": np.float32(fps), "width": np.int32(640),
            "height": np.int32(480)}  # fmt: skip


@pytest.mark.parametrize(("pitch_deg", "camera_height"), [(0.0, 0.3), (20.0, 1.2), (35.0, 1.6)])
def test_a_camera_looking_down_still_sees_a_level_walk(pitch_deg, camera_height):
    """Walking away from a camera that looks down moves a person up the image more than it shrinks them; the lift
    must still read a level walk forward at the true speed, not a person rising or walking backwards (issue 14)."""
    pose = _pitched_pose(pitch_deg, camera_height=camera_height)
    runs = [(pose["world"].astype(np.float64), pose["image"].astype(np.float64), pose["visibility"])]
    assert estimate_camera_pitch(runs, 640 / 480) == pytest.approx(pitch_deg, abs=4.0)
    motion = pose_to_windows(pose, window_s=5.0)[0]
    assert motion.metadata["camera_pitch_deg"] == pytest.approx(pitch_deg, abs=4.0)
    pelvis = motion.positions[:, POSE_JOINT_NAMES.index("pelvis")].astype(np.float64)
    assert np.ptp(pelvis[5:-5, 1]) < 0.1, "the pelvis stays at one height above the floor"
    speed = np.diff(pelvis[5:-5, 2]).mean() * 10.0
    assert speed == pytest.approx(1.0, rel=0.2), "walking away at 1 m/s is +Z motion at about 1 m/s"
    assert np.abs(pelvis[:, 0]).max() < 0.1


@pytest.mark.parametrize(("pitch_deg", "landmark_tilt_deg"), [(0.0, None), (20.0, None), (35.0, None), (35.0, 22.0)])
def test_the_body_stands_upright_under_a_camera_looking_down(pitch_deg, landmark_tilt_deg):
    """MediaPipe's world landmarks keep the camera's axes, in part: seen from above, a standing body leans with its
    feet away from the camera. Lifted as it comes, the standing people of the real walking video leaned 38 degrees
    and matched runs and dashes; the lift turns the body upright by the legs' median tilt (which is what it is,
    whether the landmarks lean by the whole pitch or less of it)."""
    pose = _pitched_pose(pitch_deg, camera_height=0.3 + pitch_deg / 25, landmark_tilt_deg=landmark_tilt_deg)
    motion = pose_to_windows(pose, window_s=5.0)[0]
    expected_tilt = pitch_deg if landmark_tilt_deg is None else landmark_tilt_deg
    assert motion.metadata["body_tilt_deg"] == pytest.approx(expected_tilt, abs=1.0)
    names = POSE_JOINT_NAMES
    pelvis, neck = motion.positions[:, names.index("pelvis")], motion.positions[:, names.index("neck")]
    ankles = motion.positions[:, [names.index("left_ankle"), names.index("right_ankle")]].mean(1)
    for top, bottom in ((neck, pelvis), (pelvis, ankles)):
        axis = top - bottom
        tilt = np.degrees(np.arccos(axis[:, 1] / np.linalg.norm(axis, axis=1)))
        assert tilt.max() < 5.0, f"body segment {tilt.max():.1f} degrees off the vertical"


def test_without_visible_legs_the_body_is_turned_by_the_camera_pitch():
    """An upper-body video (the legs below the frame throughout, guessed at low visibility) has no legs to measure:
    the body is turned by the camera pitch read from the image instead."""
    pose = _pitched_pose(30.0, camera_height=1.5, cut_legs_until=50)
    assert estimate_body_tilt(pose["world"].astype(np.float64), pose["visibility"]) is None
    motion = pose_to_windows(pose, window_s=5.0)[0]
    assert motion.metadata["body_tilt_deg"] == motion.metadata["camera_pitch_deg"]


def test_legs_cut_by_the_frame_do_not_make_a_walk_in_look_like_walking_back():
    """A person walking in under a camera that looks down has legs below the frame at first; depth from the cut-off
    legs would put them far away and then 'approaching' (the walk-back matches of the real walking video)."""
    pose = _pitched_pose(30.0, cut_legs_until=12)
    pelvis = pose_to_windows(pose, window_s=5.0)[0].positions[:, POSE_JOINT_NAMES.index("pelvis")]
    assert (np.diff(pelvis[:, 2]) > 0.0).all(), "the walk goes forward all the way"
    assert np.diff(pelvis[:, 2]).mean() * 10.0 == pytest.approx(1.0, rel=0.2)


def test_a_person_entering_under_the_camera_walks_level():
    """Walking in under a camera that looks down, the legs and then the torso enter the frame; frames without the
    whole body have no trustworthy depth. They are put on the floor at the run's pelvis height along the ray through
    the pelvis's image point: a level walk at a steady 1 m/s, not a pelvis rising 0.3 m while speeding up from 0.4
    (on the real walking video the walk-ins rose 0.9-2.6 m and matched dashes)."""
    pose = _pitched_pose(35.0, camera_height=1.6, cut_legs_until=12)
    pose["visibility"][:6, [11, 12, 23, 24]] = 0.1  # the torso is not in view at first either
    pelvis = pose_to_windows(pose, window_s=5.0)[0].positions[:, POSE_JOINT_NAMES.index("pelvis")]
    assert np.ptp(pelvis[:, 1]) < 0.1
    speed = np.diff(pelvis[1:12, 2]) * 10.0  # the frames without the whole body
    assert speed.min() > 0.8 and speed.max() < 1.2, speed


def test_a_person_standing_still_keeps_a_level_camera():
    pose = _pitched_pose(0.0, speed=0.0)
    runs = [(pose["world"].astype(np.float64), pose["image"].astype(np.float64), pose["visibility"])]
    assert estimate_camera_pitch(runs, 640 / 480) == 0.0  # nothing moves: no pitch to read, none assumed


def test_the_most_active_window_is_searched():
    still, _ = _synthetic_pose(frames=60, speed=0.0)
    moving, _ = _synthetic_pose(frames=60, speed=0.5)  # slow enough to stay > 25 % of the frame tall
    pose = {k: np.concatenate([still[k], moving[k]]) if np.ndim(still[k]) else still[k] for k in still}
    motion = pose_to_motion(pose, window_s=4.0)
    assert motion.metadata["start_s"] >= 6.0 - 1e-6


def test_no_person_or_too_short():
    pose, _ = _synthetic_pose(frames=30)
    nobody = {**pose, "world": np.full_like(pose["world"], np.nan), "image": np.full_like(pose["image"], np.nan)}
    with pytest.raises(VideoError, match="no person"):
        pose_to_motion(nobody)
    short = {**pose, "world": pose["world"].copy()}
    short["world"][5:] = np.nan
    with pytest.raises(VideoError, match="only 0.5 s"):
        pose_to_motion(short)
    tiny = {**pose, "image": (pose["image"] - 0.5) * 0.1 + 0.5}  # a 'person' a tenth of the frame tall
    with pytest.raises(VideoError, match="no person"):
        pose_to_motion(tiny)


@pytest.mark.slow
def test_mediapipe_finds_the_signer_in_real_footage(shared_data):
    clip = shared_data / "intel_sample_videos" / "asl_gestures" / "walk.mkv"
    pose = extract_pose(clip, fps=10.0, max_seconds=10.0)
    found = np.isfinite(pose["world"]).all(axis=(1, 2))
    assert len(found) >= 20 and found.mean() > 0.8
    assert pose["world"].shape[1:] == (33, 3) and np.nanmax(np.abs(pose["world"])) < 2.0, "metres around the hips"


@pytest.mark.slow
def test_a_video_without_a_person(videos):
    pose = extract_pose(videos["blank.mp4"], fps=10.0)
    assert len(pose["world"]) == 20 and np.isnan(pose["world"]).all()
    with pytest.raises(VideoError, match="no person"):
        pose_to_motion(pose)


@pytest.mark.slow
def test_batch_extraction_matches_single_and_skips_unreadable(videos, shared_data):
    from models.video.pose import extract_poses

    clip = shared_data / "intel_sample_videos" / "asl_gestures" / "walk.mkv"
    single = extract_pose(clip, fps=5.0, max_seconds=2.0)
    batch = extract_poses([clip, videos["corrupt.mp4"], videos["blank.mp4"]], fps=5.0, max_seconds=2.0)
    assert batch[1] is None and np.isnan(batch[2]["world"]).all()
    np.testing.assert_allclose(batch[0]["world"], single["world"], atol=1e-5)
