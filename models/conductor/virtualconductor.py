"""Official VirtualConductor checkpoints: recognise, convert, import, load; and the ``m2sgan`` generator.

The official files (``M2SNet_official_pretrained.pt``, ``M2SGAN_official_pretrained.pt``) are plain state dicts
with research-only terms: Baton never ships them. A user converts their copy once with
``baton models import-virtualconductor PATH`` into ``<user data dir>/models/{m2sgan,m2snet}.pt`` (a dict with
``format`` and our ``state_dict``); the loaders accept either form.

Official → ours key mapping for the generator (M2S-Net keys are identical):
``tcn.TCN.tcn.tcn.network.i.conv{1,2}.weight_g/_v`` → ``decoder.blocks.i.conv{1,2}.parametrizations.weight.
original0/1``; ``...bn{1,2}``/``downsample`` → ``decoder.blocks.i.*``; ``tcn.TCN.tcn.linear`` → ``decoder.linear``;
``tcn.fc`` → ``decoder.mlp``; ``noise_convTranspose`` → ``noise_upsampler``; ``noise_BN`` → ``noise_norm``. The
official ``network.i.net.*`` keys are the same tensors registered twice (checked equal, then dropped).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from models.atomic import atomic_write
from models.conductor.m2s import NOISE_DIM, M2SGenerator, M2SNet
from models.paths import user_data_dir
from models.progress import Progress

FORMATS = {"m2sgan": "baton-m2sgan-v1", "m2snet": "baton-m2snet-v1"}


def default_weights_path(kind: str) -> Path:
    """Where ``import-virtualconductor`` stores converted weights: ``<user data dir>/models/<kind>.pt``."""
    if kind not in FORMATS:
        raise ValueError(f"unknown VirtualConductor network {kind!r}; expected one of {sorted(FORMATS)}")
    return user_data_dir() / "models" / f"{kind}.pt"


def _read_state(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or corrupt files
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(data).__name__}")
    return data


def identify(state: dict) -> tuple[str, bool]:
    """``(kind, is_official)`` of a loaded checkpoint dict: kind ``m2sgan`` or ``m2snet``.

    Raises:
        ValueError: when the dict is neither network (in official or Baton form).
    """
    fmt = state.get("format") if isinstance(state.get("format"), str) else None
    for kind, name in FORMATS.items():
        if fmt == name:
            return kind, False
    keys = set(state)
    if any(k.startswith("tcn.TCN.") for k in keys) and any(k.startswith("noise_convTranspose.") for k in keys):
        return "m2sgan", True
    if any(k.startswith("fuse_layer.") for k in keys) and any(k.startswith("motion_encoder.st_gcn.") for k in keys):
        return "m2snet", True
    raise ValueError("not a VirtualConductor M2S-GAN generator or M2S-Net checkpoint (unrecognised keys)")


_BLOCK = re.compile(r"^tcn\.TCN\.tcn\.tcn\.network\.(\d+)\.(.+)$")


def convert_official_m2sgan(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official M2S-GAN generator state dict to :class:`M2SGenerator`'s keys (see module docstring).

    Raises:
        ValueError: when a duplicated ``net.*`` tensor differs from its named twin or a key is unknown.
    """
    twins = {"net.0.": "conv1.", "net.2.": "bn1.", "net.5.": "conv2.", "net.7.": "bn2."}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("music_encoder."):
            out[key] = value
            continue
        block = _BLOCK.match(key)
        if block:
            index, rest = block.groups()
            for dup, name in twins.items():
                if rest.startswith(dup):
                    twin = f"tcn.TCN.tcn.tcn.network.{index}.{name}{rest[len(dup):]}"
                    if twin not in state or not torch.equal(state[twin], value):
                        raise ValueError(f"official key {key} does not duplicate {twin}")
                    break
            else:
                rest = rest.replace("weight_g", "parametrizations.weight.original0")
                rest = rest.replace("weight_v", "parametrizations.weight.original1")
                out[f"decoder.blocks.{index}.{rest}"] = value
            continue
        for old, new in (("tcn.TCN.tcn.linear.", "decoder.linear."), ("tcn.fc.", "decoder.mlp."),
                         ("noise_convTranspose.", "noise_upsampler."), ("noise_BN.", "noise_norm.")):  # fmt: skip
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            raise ValueError(f"unexpected key in official M2S-GAN checkpoint: {key}")
    return out


def _model_state(path: str | os.PathLike, kind: str) -> dict[str, torch.Tensor]:
    state = _read_state(path)
    found, official = identify(state)
    if found != kind:
        raise ValueError(f"{path}: this is an {found} checkpoint, expected {kind}")
    if not official:
        return state["state_dict"]
    return convert_official_m2sgan(state) if kind == "m2sgan" else dict(state)


def load_m2snet(path: str | os.PathLike | None = None) -> M2SNet:
    """An :class:`M2SNet` in eval mode from an official or imported checkpoint (default: the imported one).

    Raises:
        FileNotFoundError: no checkpoint at ``path`` (or nothing imported yet).
        ValueError: not an M2S-Net checkpoint; RuntimeError from ``load_state_dict(strict=True)`` on mismatch.
    """
    net = M2SNet()
    net.load_state_dict(_model_state(path or default_weights_path("m2snet"), "m2snet"), strict=True)
    return net.eval()


def load_m2sgan(path: str | os.PathLike | None = None) -> M2SGenerator:
    """An :class:`M2SGenerator` in eval mode from an official or imported checkpoint (default: the imported one).

    Raises: as :func:`load_m2snet`.
    """
    net = M2SGenerator()
    net.load_state_dict(_model_state(path or default_weights_path("m2sgan"), "m2sgan"), strict=True)
    return net.eval()


def import_virtualconductor(path: str | os.PathLike, output: str | os.PathLike | None = None) -> tuple[str, Path]:
    """Convert an official checkpoint (either network) into Baton's format and save it atomically.

    Args:
        path: the official ``.pt`` file.
        output: target file; default ``<user data dir>/models/<kind>.pt``.

    Returns:
        ``(kind, saved path)``.

    Raises:
        FileNotFoundError, ValueError: unreadable or unrecognised input (nothing is written).
    """
    state = _read_state(path)
    kind, official = identify(state)
    model = M2SGenerator() if kind == "m2sgan" else M2SNet()
    converted = _model_state(path, kind)
    model.load_state_dict(converted, strict=True)  # proves the conversion before anything is written
    target = Path(output) if output else default_weights_path(kind)
    with atomic_write(target) as tmp:
        torch.save({"format": FORMATS[kind], "source": str(path), "license": "VirtualConductor: research use only",
                    "state_dict": model.state_dict()}, tmp)  # fmt: skip
    return kind, target


class M2SGANConductor:
    """The ``m2sgan`` generator: VirtualConductor's M2S-GAN on our modules (weights supplied by the user).

    Args:
        checkpoint: official or imported M2S-GAN file; default the imported ``<user data dir>/models/m2sgan.pt``.
        device: torch device the generator runs on (``cpu``, ``cuda``, ``cuda:N``).
        runtime: ``torch`` only (there is no ONNX export of M2S-GAN; see ``RUNTIMES``).

    Raises:
        ValueError: a runtime other than ``torch``; see :func:`load_m2sgan` for the weights.
    """

    name = "m2sgan"
    RUNTIMES = ("torch",)

    def __init__(self, checkpoint: str | os.PathLike | None = None, *, device: str | torch.device = "cpu",
                 runtime: str = "torch") -> None:
        if runtime not in self.RUNTIMES:
            raise ValueError(f"M2S-GAN has no {runtime} runtime; it runs on torch")
        self.checkpoint_path = Path(checkpoint) if checkpoint else default_weights_path("m2sgan")
        self.device = torch.device(device)
        self.generator = load_m2sgan(self.checkpoint_path).to(self.device)

    def runtime_info(self) -> dict:
        """``{"device": <the generator's parameters' device>, "runtime": "torch", "providers": []}``."""
        return {"device": str(next(self.generator.parameters()).device), "runtime": "torch", "providers": []}

    @classmethod
    def availability(cls, checkpoint: str | os.PathLike | None = None) -> tuple[bool, str]:
        path = Path(checkpoint) if checkpoint else default_weights_path("m2sgan")
        if not path.is_file():
            return False, (f"no M2S-GAN weights at {path}; import the official checkpoint with "
                           "`baton models import-virtualconductor PATH` (research use only)")  # fmt: skip
        return True, f"VirtualConductor M2S-GAN weights at {path}"

    def generate(self, features, *, seed: int = 0, steps: int = 20, guidance: float | None = None,
                 progress: Progress | None = None):
        """Generate COCO-13 motion for analysed music (``steps``/``guidance`` do not apply to a GAN).

        Returns:
            :class:`models.motion.Motion` on ``coco13`` at 30 fps, ``T = features.num_motion_frames``.
        """
        from models.motion import Motion, get_skeleton

        frames = features.num_motion_frames
        if progress:
            progress.update(0.1, "M2S-GAN")
        generator = torch.Generator().manual_seed(int(seed))
        # the noise comes from a CPU generator, so a seed gives the same motion on every device
        noise = torch.randn(1, M2SGenerator.noise_steps(frames), NOISE_DIM, generator=generator)
        mel = torch.from_numpy(np.ascontiguousarray(features.mel[: 3 * frames], dtype=np.float32))[None]
        with torch.no_grad():
            positions = self.generator(mel.to(self.device), noise.to(self.device))[0].cpu().numpy()
        if progress:
            progress.update(1.0, "M2S-GAN done")
        return Motion(
            skeleton=get_skeleton("coco13"), fps=30.0, positions=np.clip(positions, 0.0, 1.0),
            metadata={"generator": "m2sgan", "seed": int(seed), "checkpoint": str(self.checkpoint_path),
                      "license": "VirtualConductor weights: research use only"},
        )  # fmt: skip
