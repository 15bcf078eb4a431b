"""The demo MP4 preview: beat counts in the bar, and a baton trail one bar long (issue 15: a recognisable pattern
per meter in the demo video)."""

from __future__ import annotations

import numpy as np
import pytest

from backend.conductor.preview import (
    DEFAULT_VIEW,
    SIZE,
    VIEW_MARGIN,
    bar_numbers,
    preview_pixels,
    preview_view,
    render_preview_mp4,
    trail_frames,
)
from models.motion import Motion, get_skeleton

RIGHT_WRIST = 10


def test_bar_numbers_count_from_each_downbeat():
    beats = np.arange(10) * 0.5
    # the front end's downbeats are beats of the grid; 20 ms of disagreement still matches
    counts = bar_numbers(beats, beats[[1, 4, 7]] + np.array([0.0, 0.02, -0.02]))
    assert counts.tolist() == [0, 1, 2, 3, 1, 2, 3, 1, 2, 3]
    assert bar_numbers(beats, None).tolist() == [0] * 10
    assert bar_numbers(beats, np.array([0.25])).tolist() == [0] * 10  # between beats: no bar starts there


@pytest.mark.parametrize(("downbeat_every", "beat_s", "expected_s"), [(3, 0.5, 1.5), (2, 0.4, 0.8), (4, 0.25, 1.0)])
def test_trail_is_one_bar(downbeat_every, beat_s, expected_s):
    beats = np.arange(24) * beat_s
    assert trail_frames(beats, beats[::downbeat_every], 30.0) == round(expected_s * 30)
    assert trail_frames(beats, None, 30.0) == round(min(4 * beat_s, 4.0) * 30)  # four beats without downbeats
    assert trail_frames(None, None, 30.0) == 20
    assert trail_frames(np.arange(10) * 2.0, np.arange(0, 10, 4) * 2.0, 30.0) == 120  # capped at 4 s


def test_preview_frame_shows_the_whole_bar_of_the_baton_hand(tmp_path):
    """A wrist sweeping left to right over 4 s (bars of 2 s): the last frame still shows where the hand was 1.6 s
    earlier (48 frames, more than the old fixed 20-frame trail) and not where it was 2.5 s earlier (before the bar)."""
    import imageio_ffmpeg

    fps, frames = 30.0, 120
    positions = np.tile(np.array([0.5, 0.55], dtype=np.float32), (frames, 13, 1))
    positions[:, RIGHT_WRIST, 0] = np.linspace(0.2, 0.8, frames)
    positions[:, RIGHT_WRIST, 1] = 0.35  # above the (collapsed) body, so the arm never covers the path
    motion = Motion(get_skeleton("coco13"), fps, positions)
    beats = np.arange(0.0, 4.0, 0.5)
    out = render_preview_mp4(tmp_path / "circle.mp4", motion, None, beat_times=beats, downbeat_times=beats[::4])
    reader = imageio_ffmpeg.read_frames(str(out))
    width, height = next(reader)["size"]
    last = None
    for frame in reader:
        last = frame
    image = np.frombuffer(last, dtype=np.uint8).reshape(height, width, 3).astype(int)

    def pixel(frame: int) -> np.ndarray:
        x, y = preview_pixels(positions[frame, RIGHT_WRIST], preview_view(positions))
        return image[int(round(y)) - 1 : int(round(y)) + 2, int(round(x)) - 1 : int(round(x)) + 2].reshape(-1, 3)

    background = np.array([250, 250, 248])
    reddish = lambda px: bool(np.any((px[:, 0] - px[:, 2] > 15) & (np.abs(px - background).sum(1) > 30)))  # noqa: E731
    assert reddish(pixel(frames - 1 - 48)), "the trail should reach back 1.6 s (within the 2 s bar)"
    assert reddish(pixel(frames - 1 - 10))
    assert not reddish(pixel(frames - 1 - 75)), "the trail should stop at one bar"


def test_preview_view_keeps_the_whole_performance_inside_the_panel():
    """The default 1.6x upper-body zoom where the motion fits; a baton pattern reaching far to one side (a waltz
    trail at x = 0.12) moves the centre, a wider one gets less zoom, so that no keypoint comes closer than the margin
    to an edge."""
    body = np.tile(np.array([0.5, 0.55]), (30, 13, 1))
    body += np.random.default_rng(0).uniform(-0.1, 0.1, body.shape)
    assert preview_view(body) == DEFAULT_VIEW
    wide = body.copy()
    wide[:, RIGHT_WRIST, 0] = np.linspace(0.12, 0.62, 30)
    wide[:, RIGHT_WRIST, 1] = np.linspace(0.15, 0.5, 30)
    margin = VIEW_MARGIN * SIZE - 1e-6
    view = preview_view(wide)
    assert view[2] == DEFAULT_VIEW[2] and view[0] < DEFAULT_VIEW[0], "it fits at 1.6x once the centre moves left"
    pixels = preview_pixels(wide, view)
    assert pixels.min() >= margin and pixels.max() <= SIZE - margin
    assert preview_pixels(wide, DEFAULT_VIEW).min() < 0, "the fixed view would cut the pattern off"
    wide[:, RIGHT_WRIST, 0] = np.linspace(0.02, 0.95, 30)  # wider than the panel at 1.6x: less zoom
    view = preview_view(wide)
    assert view[2] < DEFAULT_VIEW[2]
    pixels = preview_pixels(wide, view)
    assert pixels.min() >= margin and pixels.max() <= SIZE - margin
    nan = np.full((5, 13, 2), np.nan)
    assert preview_view(nan) == DEFAULT_VIEW
