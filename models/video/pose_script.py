"""MediaPipe Pose over video files (run by :mod:`models.video.pose` with ``.venv-pose``'s Python).

Usage: ``python pose_script.py VIDEO OUT.npz FPS MAX_SECONDS [SILHOUETTES]``, or ``python pose_script.py --batch
JOBS.json`` with a JSON list of ``[VIDEO, OUT.npz, FPS, MAX_SECONDS(, SILHOUETTES)]`` (one process for many videos:
mediapipe's import and model start-up are paid once; a video that cannot be opened gets no output file and the
others go on). ``SILHOUETTES`` 1 also stores the person's segmentation mask per frame (below).

Frames are read with OpenCV, sampled at ``FPS`` (nearest source frame) for at most ``MAX_SECONDS``, and passed to
MediaPipe's BlazePose GHUM 3D (legacy solution API ``mp.solutions.pose``, ``model_complexity=1``: the
``pose_landmark_full.tflite`` bundled in the mediapipe wheel; nothing is downloaded). ``OUT.npz`` holds, per sampled
frame, ``world (F, 33, 3)`` metric landmarks (metres, origin between the hips, MediaPipe axes: x right, y down, z
away from the camera), ``image (F, 33, 2)`` normalised image coordinates (y down), ``visibility (F, 33)``, NaN where
no person was found, plus ``fps``, ``width``, ``height``, ``source_fps`` and ``source_frames``. With silhouettes,
also ``silhouette (F, 64, 48)`` uint8 (0-255), BlazePose's segmentation mask cropped to a 4:3 (height:width) box
around the person (1.2x the mask's bounding box, centred on it) and resized to 64 x 48 (zeros where no person was
found), and ``box (F, 4)`` float32, that crop in normalised image coordinates ``(x0, y0, x1, y1)`` (NaN: no
person). Only cv2, mediapipe, numpy and the standard library are used.
"""

from __future__ import annotations

import sys

#: Silhouette crop size (height, width) in pixels.
SILHOUETTE_SHAPE = (64, 48)


def crop_silhouette(mask, shape=SILHOUETTE_SHAPE):
    """Person mask ``(H, W)`` float in [0, 1] -> ``(silhouette (h, w) uint8, box (4,) normalised)``, or ``None``
    when nothing is above 0.5 (see the module docstring for the crop)."""
    import cv2
    import numpy as np

    ys, xs = np.nonzero(mask > 0.5)
    if len(ys) < 4:
        return None
    height, width = mask.shape
    out_h, out_w = shape
    cy, cx = (ys.min() + ys.max() + 1) / 2.0, (xs.min() + xs.max() + 1) / 2.0
    box_h = 1.2 * max(ys.max() + 1 - ys.min(), (xs.max() + 1 - xs.min()) * out_h / out_w)
    box_w = box_h * out_w / out_h
    x0, y0 = cx - box_w / 2, cy - box_h / 2
    # affine map from the crop box to the output grid; outside the frame stays 0
    matrix = np.array([[out_w / box_w, 0.0, -x0 * out_w / box_w], [0.0, out_h / box_h, -y0 * out_h / box_h]])
    crop = cv2.warpAffine(mask.astype(np.float32), matrix, (out_w, out_h), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)  # fmt: skip
    box = np.array([x0 / width, y0 / height, (x0 + box_w) / width, (y0 + box_h) / height], np.float32)
    return np.clip(crop * 255.0 + 0.5, 0, 255).astype(np.uint8), box


def run(video: str, output: str, fps: float, max_seconds: float, silhouettes: bool = False) -> int:
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
    world, image, visibility, masks, boxes = [], [], [], [], []
    next_sample, index, read = 0.0, 0, 0
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True,
                                enable_segmentation=silhouettes, smooth_segmentation=silhouettes,
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
                if silhouettes:
                    found = None
                    if result.pose_landmarks is not None and result.segmentation_mask is not None:
                        found = crop_silhouette(np.asarray(result.segmentation_mask))
                    masks.append(found[0] if found is not None else np.zeros(SILHOUETTE_SHAPE, np.uint8))
                    boxes.append(found[1] if found is not None else np.full(4, np.nan, np.float32))
            index += 1
    capture.release()
    extra = {}
    if silhouettes:
        extra = {"silhouette": np.asarray(masks, np.uint8).reshape(-1, *SILHOUETTE_SHAPE),
                 "box": np.asarray(boxes, np.float32).reshape(-1, 4)}  # fmt: skip
    np.savez(output, world=np.asarray(world, np.float32).reshape(-1, 33, 3),
             image=np.asarray(image, np.float32).reshape(-1, 33, 2),
             visibility=np.asarray(visibility, np.float32).reshape(-1, 33), fps=np.float32(fps),
             width=np.int32(width), height=np.int32(height), source_fps=np.float32(source_fps),
             source_frames=np.int64(read), **extra)  # fmt: skip
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--batch":
        import json

        with open(sys.argv[2]) as handle:
            jobs = json.load(handle)
        for job in jobs:
            video, output, fps, max_seconds = job[:4]
            code = run(video, output, float(fps), float(max_seconds), bool(job[4]) if len(job) > 4 else False)
            print(f"{video}: exit {code}", flush=True)
        sys.exit(0)
    if len(sys.argv) not in (5, 6):
        sys.exit("usage: pose_script.py VIDEO OUT.npz FPS MAX_SECONDS [SILHOUETTES] | --batch JOBS.json")
    flag = len(sys.argv) == 6 and sys.argv[5] not in ("0", "")
    sys.exit(run(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), flag))
