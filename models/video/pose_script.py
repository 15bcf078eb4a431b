"""MediaPipe Pose over video files (run by :mod:`models.video.pose` with ``.venv-pose``'s Python).

Usage: ``python pose_script.py VIDEO OUT.npz FPS MAX_SECONDS``, or ``python pose_script.py --batch JOBS.json`` with
a JSON list of ``[VIDEO, OUT.npz, FPS, MAX_SECONDS]`` (one process for many videos: mediapipe's import and model
start-up are paid once; a video that cannot be opened gets no output file and the others go on).

Frames are read with OpenCV, sampled at ``FPS`` (nearest source frame) for at most ``MAX_SECONDS``, and passed to
MediaPipe's BlazePose GHUM 3D (legacy solution API ``mp.solutions.pose``, ``model_complexity=1``: the
``pose_landmark_full.tflite`` bundled in the mediapipe wheel; nothing is downloaded). ``OUT.npz`` holds, per sampled
frame, ``world (F, 33, 3)`` metric landmarks (metres, origin between the hips, MediaPipe axes: x right, y down, z
away from the camera), ``image (F, 33, 2)`` normalised image coordinates (y down), ``visibility (F, 33)``, NaN where
no person was found, plus ``fps``, ``width``, ``height``, ``source_fps`` and ``source_frames``. Only cv2, mediapipe,
numpy and the standard library are used.
"""

from __future__ import annotations

import sys


def run(video: str, output: str, fps: float, max_seconds: float) -> int:
    import cv2
    import mediapipe as mp
    import numpy as np

    capture = cv2.VideoCapture(video)
    if not capture.isOpened():
        print(f"cannot open {video}", file=sys.stderr)
        return 3
    source_fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    step = source_fps / fps
    world, image, visibility = [], [], []
    next_sample, index, read = 0.0, 0, 0
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True,
                                min_detection_confidence=0.5, min_tracking_confidence=0.5) as pose:  # fmt: skip
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            read += 1
            if index / source_fps > max_seconds:
                break
            if index + 1e-6 >= next_sample:
                next_sample += step
                result = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                if result.pose_world_landmarks is None or result.pose_landmarks is None:
                    world.append(np.full((33, 3), np.nan))
                    image.append(np.full((33, 2), np.nan))
                    visibility.append(np.zeros(33))
                else:
                    world.append([(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark])
                    image.append([(p.x, p.y) for p in result.pose_landmarks.landmark])
                    visibility.append([p.visibility for p in result.pose_landmarks.landmark])
            index += 1
    capture.release()
    np.savez(output, world=np.asarray(world, np.float32).reshape(-1, 33, 3),
             image=np.asarray(image, np.float32).reshape(-1, 33, 2),
             visibility=np.asarray(visibility, np.float32).reshape(-1, 33), fps=np.float32(fps),
             width=np.int32(width), height=np.int32(height), source_fps=np.float32(source_fps),
             source_frames=np.int64(read))  # fmt: skip
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--batch":
        import json

        with open(sys.argv[2]) as handle:
            jobs = json.load(handle)
        for video, output, fps, max_seconds in jobs:
            print(f"{video}: exit {run(video, output, float(fps), float(max_seconds))}", flush=True)
        sys.exit(0)
    if len(sys.argv) != 5:
        sys.exit("usage: pose_script.py VIDEO OUT.npz FPS MAX_SECONDS | --batch JOBS.json")
    sys.exit(run(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])))
