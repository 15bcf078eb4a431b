"""AMASS ``.npz`` motions -> SMPL-22 joint positions through the SMPL+H body model (PyPI ``smplx``).

AMASS stores SMPL+H parameters per frame: ``poses (T, 156)`` axis-angle (root 3 + body 63 + hands 90) or the split
``root_orient (T, 3)`` / ``pose_body (T, 63)`` / ``pose_hand (T, 90)``, ``trans (T, 3)`` metres, ``betas`` (shape,
16 or 10), ``gender`` and ``mocap_framerate`` (or ``mocap_frame_rate``). The body model files are NOT part of
Baton (users obtain them from the SMPL+H / AMASS sites under their licenses). Joints come out Z-up; they are turned
into backend space (+Y up) the way HumanML3D does (``(x, y, z) -> (-x, z, y)``, a proper rotation), and the first 22
joints are kept (``smpl22`` order).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from models.motion.motion import Motion
from models.motion.skeleton import get_skeleton

#: Where a body-model folder may hold the SMPL+H file for a gender (AMASS layout first, then smplx's own).
MODEL_FILE_PATTERNS = (
    "{gender}/model.npz", "smplh/{gender}/model.npz", "SMPLH_{GENDER}.npz", "smplh/SMPLH_{GENDER}.npz",
)  # fmt: skip


def find_model_file(model_path: str | os.PathLike, gender: str) -> Path:
    """The SMPL+H ``.npz`` for ``gender`` in ``model_path`` (a file is returned as is).

    Raises:
        FileNotFoundError: naming every place looked at.
    """
    root = Path(model_path).expanduser()
    if root.is_file():
        return root
    tried = []
    for pattern in MODEL_FILE_PATTERNS:
        for name in (gender, "neutral"):
            candidate = root / pattern.format(gender=name, GENDER=name.upper())
            tried.append(str(candidate))
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"no SMPL+H model file for gender {gender!r} in {root}; looked for {', '.join(tried)}")


def _text(value) -> str:
    value = np.asarray(value)
    item = value.item() if value.shape == () else value.reshape(-1)[0]
    return item.decode() if isinstance(item, bytes) else str(item)


def load_amass(path: str | os.PathLike, model_path: str | os.PathLike, chunk: int = 512) -> Motion:
    """Read an AMASS ``.npz`` as an ``smpl22`` :class:`Motion` (module docstring).

    Args:
        path: the AMASS file.
        model_path: an SMPL+H ``.npz`` model file or a folder holding one per gender (:data:`MODEL_FILE_PATTERNS`).
        chunk: frames per body-model evaluation.

    Raises:
        ValueError: when arrays are missing or mis-shaped; FileNotFoundError: when no model file is found.
    """
    import smplx
    import torch

    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        files = set(data.files)
        if "poses" in files:
            poses = np.asarray(data["poses"], np.float32)
        elif {"root_orient", "pose_body"} <= files:
            hands = data["pose_hand"] if "pose_hand" in files else np.zeros((len(data["pose_body"]), 90))
            poses = np.concatenate([data["root_orient"], data["pose_body"], hands], axis=1).astype(np.float32)
        else:
            raise ValueError(f"{path}: an AMASS file needs poses (T, 156) or root_orient + pose_body")
        if "trans" not in files:
            raise ValueError(f"{path}: an AMASS file needs trans (T, 3)")
        trans = np.asarray(data["trans"], np.float32)
        betas = np.asarray(data["betas"], np.float32).reshape(-1) if "betas" in files else np.zeros(10, np.float32)
        gender = _text(data["gender"]).lower() if "gender" in files else "neutral"
        rate_key = next((k for k in ("mocap_framerate", "mocap_frame_rate") if k in files), None)
        if rate_key is None:
            raise ValueError(f"{path}: an AMASS file needs mocap_framerate")
        fps = float(data[rate_key])
    frames = poses.shape[0]
    if poses.ndim != 2 or poses.shape[1] < 66 or trans.shape != (frames, 3) or frames == 0:
        raise ValueError(f"{path}: poses must be (T, >=66) and trans (T, 3), got {poses.shape} and {trans.shape}")
    if poses.shape[1] < 156:
        poses = np.concatenate([poses, np.zeros((frames, 156 - poses.shape[1]), np.float32)], axis=1)
    model_file = find_model_file(model_path, gender)
    model = smplx.SMPLH(model_path=str(model_file), gender=gender, num_betas=len(betas), use_pca=False,
                        flat_hand_mean=True, ext="npz", batch_size=1)  # fmt: skip
    joints = np.zeros((frames, 22, 3), np.float32)
    with torch.no_grad():
        for start in range(0, frames, chunk):
            stop = min(frames, start + chunk)
            size = stop - start
            pose = torch.from_numpy(poses[start:stop, :156])
            output = model(
                betas=torch.from_numpy(betas).expand(size, -1),
                global_orient=pose[:, :3], body_pose=pose[:, 3:66], left_hand_pose=pose[:, 66:111],
                right_hand_pose=pose[:, 111:156], transl=torch.from_numpy(trans[start:stop]),
            )  # fmt: skip
            joints[start:stop] = output.joints[:, :22].numpy()
    positions = np.stack([-joints[..., 0], joints[..., 2], joints[..., 1]], axis=-1)  # Z-up -> Y-up (HumanML3D)
    return Motion(skeleton=get_skeleton("smpl22"), fps=fps, positions=positions,
                  metadata={"format": "amass", "gender": gender, "body_model": str(model_file)})  # fmt: skip
