"""ONNX export and onnxruntime inference for the Diffusion-Conductor (denoiser + music encoder).

Export: ``torch.onnx.export(dynamo=True)`` with dynamic batch and time axes, so one file serves every window length
and batch (the classifier-free-guidance batch is 2x). Opset 18.

Inference: :class:`OnnxConductorRuntime` runs the music encoder and the denoiser with onnxruntime and plugs into the
same DDIM sampler as torch (:func:`models.conductor.diffusion_sampling.generate_windowed`). It asks for the CUDA
execution provider when onnxruntime offers it and reports what the session really uses — ``session.get_providers()``
— because onnxruntime-gpu lists CUDA even on machines without a GPU (../shared/DESIGN.md §8).

``DiffusionConductor(runtime="onnx")`` (what ``baton serve --runtime onnx`` loads) finds its graphs with
:func:`ensure_exported`: ``<Baton cache folder>/onnx/diffusion-<checkpoint digest>/`` (:func:`default_export_dir`),
exported there and parity-checked against torch on first use when missing.

Dynamic int8 (:func:`quantize_int8`): onnxruntime's ``quantize_dynamic`` (weights int8, activations quantised on
the fly) — about half the CPU latency of fp32 for MatMul-heavy graphs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from models.atomic import atomic_write

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

OPSET = 18
DENOISER_INPUTS = ("x_t", "timesteps", "music", "music_keep")
MUSIC_INPUTS = ("mel",)
#: The graphs a diffusion runtime needs, as :func:`export_conductor` names them.
EXPORT_FILES = ("denoiser.onnx", "music_encoder.onnx")
#: Largest fp32 difference from torch (denoiser x0, music features) :func:`ensure_exported` accepts after an export.
EXPORT_TOLERANCE = 1e-3


def _atomic_export(write, path: Path) -> Path:
    with atomic_write(path, ".onnx.tmp") as tmp:
        try:
            write(tmp)
        finally:
            if os.path.exists(tmp + ".data"):  # an external-data side file the exporter may leave
                os.unlink(tmp + ".data")
    return path


def export_denoiser(denoiser: torch.nn.Module, path: str | os.PathLike, *, frames: int = 120) -> Path:
    """Export the x0 denoiser: inputs ``x_t (B,T,26) f32, timesteps (B,) i64, music (B,T,C) f32,
    music_keep (B,T) f32`` (C = the config's ``condition_dim``: 64 encoder features + rhythm channels) ->
    ``x0 (B,T,26) f32`` with dynamic B and T (T <= the model's ``max_frames``).

    Raises:
        ValueError: ``frames`` outside [2, max_frames].
    """
    cfg = denoiser.cfg
    if not 2 <= frames <= cfg.max_frames:
        raise ValueError(f"example frames must be in [2, {cfg.max_frames}], got {frames}")
    denoiser = denoiser.eval()
    args = (torch.randn(2, frames, cfg.motion_dim), torch.tensor([999, 10]), torch.randn(2, frames, cfg.condition_dim),
            torch.ones(2, frames))
    batch, time_ = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("frames", min=2, max=cfg.max_frames)
    shapes = {"x_t": {0: batch, 1: time_}, "timesteps": {0: batch}, "music": {0: batch, 1: time_},
              "music_keep": {0: batch, 1: time_}}

    def write(tmp: str) -> None:
        program = torch.onnx.export(denoiser, args, dynamic_shapes=shapes, input_names=list(DENOISER_INPUTS),
                                    output_names=["x0"], opset_version=OPSET, dynamo=True, verbose=False)
        program.save(tmp, external_data=False)

    return _atomic_export(write, Path(path))


def export_music_encoder(encoder: torch.nn.Module, path: str | os.PathLike, *, mel_frames: int = 540) -> Path:
    """Export the music encoder (eval mode): ``mel (1, T90, 128) f32`` -> ``music (1, ceil(T90/3), 64) f32``,
    dynamic T90."""
    encoder = encoder.eval()
    args = (torch.rand(1, mel_frames, 128),)
    shapes = {"mel": {1: torch.export.Dim("mel_frames", min=9, max=20 * 60 * 90)}}

    def write(tmp: str) -> None:
        program = torch.onnx.export(encoder, args, dynamic_shapes=shapes, input_names=list(MUSIC_INPUTS),
                                    output_names=["music"], opset_version=OPSET, dynamo=True, verbose=False)
        program.save(tmp, external_data=False)

    return _atomic_export(write, Path(path))


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike,
                  op_types: tuple[str, ...] = ("MatMul", "Gemm")) -> Path:
    """Dynamic int8 quantisation of an fp32 ONNX model (int8 weights, activations quantised at run time).

    ``op_types``: the operators to quantise (add ``"Conv"`` for the convolutional music encoder).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)

    def write(tmp: str) -> None:
        quantize_dynamic(str(src), tmp, weight_type=QuantType.QInt8, op_types_to_quantize=list(op_types))

    return _atomic_export(write, dst)


def _cuda_index(device: str) -> int | None:
    """``cuda`` -> 0, ``cuda:N`` -> N, anything else -> None."""
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    return None if match is None else int(match.group(1) or 0)


def make_session(path: str | os.PathLike, *, device: str = "auto", threads: int = 0):
    """An onnxruntime session on ``device``, checked after creation.

    Args:
        path: the ``.onnx`` file.
        device: ``cpu``; ``cuda`` / ``cuda:N`` (CUDA execution provider on GPU N first, CPU after it for the
            operators CUDA lacks); ``auto``: CUDA when onnxruntime offers it, else CPU.
        threads: intra-op threads (0 = onnxruntime's default, one per core).

    Returns:
        ``(session, providers)`` where ``providers`` is ``session.get_providers()`` — what the session really uses.

    Raises:
        FileNotFoundError: missing model file.
        ValueError: an unknown device, or ``cuda*`` requested but the session did not come up on the CUDA
            execution provider (onnxruntime without CUDA support, or no usable GPU): the message names the
            providers it got.
    """
    import onnxruntime as ort

    if not Path(path).is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    index = _cuda_index(device)
    if device not in ("auto", "cpu") and index is None:
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    wanted: list = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        wanted.insert(0, ("CUDAExecutionProvider", {"device_id": index or 0}))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
    providers = session.get_providers()
    if index is not None and providers[0] != "CUDAExecutionProvider":
        raise ValueError(f"CUDA requested ({device}) but onnxruntime runs {path} on {providers} (available: "
                         f"{ort.get_available_providers()}); install onnxruntime-gpu with a matching CUDA, "
                         "or serve with --device cpu")  # fmt: skip
    return session, providers


class OnnxConductorRuntime:
    """Music encoder + denoiser sessions with the torch sampler's ``denoise`` signature.

    Args:
        denoiser_path / music_path: ONNX files from :func:`export_denoiser` / :func:`export_music_encoder`.
        device: "auto" (CUDA if present), "cuda", "cuda:N" or "cpu" (:func:`make_session`); threads: intra-op
            threads (0 = onnxruntime default).

    Attributes:
        providers / music_providers: ``get_providers()`` of the denoiser / music-encoder session.
    """

    def __init__(self, denoiser_path: str | os.PathLike, music_path: str | os.PathLike, *, device: str = "auto",
                 threads: int = 0) -> None:
        self.denoiser, self.providers = make_session(denoiser_path, device=device, threads=threads)
        self.music, self.music_providers = make_session(music_path, device=device, threads=threads)
        # The denoiser's condition width is static in the graph: 64 encoder channels + the rhythm channels.
        width = self.denoiser.get_inputs()[DENOISER_INPUTS.index("music")].shape[-1]
        encoder_width = self.music.get_outputs()[0].shape[-1]
        if not isinstance(width, int) or not isinstance(encoder_width, int) or width < encoder_width:
            raise ValueError(f"{denoiser_path} and {music_path} do not fit together (condition {width}, "
                             f"music encoder output {encoder_width})")
        self.rhythm_dim = width - encoder_width

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, music: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        feeds = {"x_t": x_t.numpy().astype(np.float32), "timesteps": t.numpy().astype(np.int64),
                 "music": music.numpy().astype(np.float32), "music_keep": keep.numpy().astype(np.float32)}
        return torch.from_numpy(self.denoiser.run(["x0"], feeds)[0])

    def music_features(self, mel: np.ndarray, frames: int, grid=None) -> torch.Tensor:
        """(T90, 128) mel -> (frames, 64 + rhythm_dim): the encoder's features cropped / edge-padded as in
        ``encode_music``, then the rhythm features of the beat ``grid`` (``music_condition``, diffusion.py)."""
        from models.conductor.diffusion import music_condition

        mel = original = np.asarray(mel, np.float32)
        need = 3 * frames
        if mel.shape[0] < need:
            mel = np.concatenate([mel, np.repeat(mel[-1:], need - mel.shape[0], axis=0)])
        feats = torch.from_numpy(self.music.run(["music"], {"mel": mel[None, :need]})[0][0])
        if feats.shape[0] < frames:
            feats = torch.cat([feats, feats[-1:].expand(frames - feats.shape[0], -1)])
        return music_condition(feats[:frames], original, frames, self.rhythm_dim, grid)


def max_abs_diff(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """max |a - b| as a float (the parity number reported by ``baton export onnx``)."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def export_conductor(checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike, *, int8: bool = False,
                     device: str = "auto", seed: int = 0) -> dict:
    """Export a diffusion checkpoint's denoiser and music encoder, check parity with torch, optionally quantise.

    Returns:
        A report: file paths, providers (``session.get_providers()``), ``max_abs_diff_denoiser``,
        ``max_abs_diff_music_encoder`` (fp32 vs torch) and, with ``int8``, the int8 files and their differences.
    """
    from models.conductor.diffusion import DiffusionConductor

    gen = DiffusionConductor(checkpoint)
    out = Path(out_dir)
    den_path = export_denoiser(gen.denoiser, out / "denoiser.onnx", frames=min(120, gen.config.max_frames))
    mus_path = export_music_encoder(gen.music_encoder, out / "music_encoder.onnx")
    report: dict = {"checkpoint": str(gen.checkpoint_path), "denoiser": str(den_path), "music_encoder": str(mus_path)}
    rng = torch.Generator().manual_seed(seed)
    frames = min(gen.window, gen.config.max_frames)
    x_t = torch.randn(2, frames, gen.config.motion_dim, generator=rng)
    t = torch.tensor([999, 37])
    music = torch.randn(2, frames, gen.config.condition_dim, generator=rng)
    keep = (torch.rand(2, frames, generator=rng) > 0.1).float()
    mel = torch.rand(1, 3 * frames + 1, 128, generator=rng)
    ref_x0 = gen.denoise(x_t, t, music, keep)
    with torch.no_grad():
        ref_music = gen.music_encoder(mel)
    variants = [("", den_path, mus_path)]
    if int8:
        variants.append(("_int8", quantize_int8(den_path, out / "denoiser.int8.onnx"),
                         quantize_int8(mus_path, out / "music_encoder.int8.onnx", ("Conv", "MatMul", "Gemm"))))
    for suffix, den, mus in variants:
        runtime = OnnxConductorRuntime(den, mus, device=device)
        report[f"providers{suffix}"] = runtime.providers
        report[f"max_abs_diff_denoiser{suffix}"] = max_abs_diff(ref_x0, runtime.denoise(x_t, t, music, keep))
        got = runtime.music.run(["music"], {"mel": mel.numpy()})[0]
        report[f"max_abs_diff_music_encoder{suffix}"] = max_abs_diff(ref_music, got)
        if suffix:
            report["denoiser_int8"], report["music_encoder_int8"] = str(den), str(mus)
    return report


def checkpoint_file(checkpoint: str | os.PathLike | None) -> Path:
    """The checkpoint file a diffusion generator loads: ``checkpoint`` itself, ``<run folder>/diffusion.pt``, or the
    shipped default weights for ``None``."""
    from models.conductor.diffusion import DEFAULT_CHECKPOINT

    path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    return path / "diffusion.pt" if path.is_dir() else path


def default_export_dir(checkpoint: str | os.PathLike | None) -> Path:
    """Where ``runtime="onnx"`` keeps the graphs of ``checkpoint``: ``<Baton cache folder>/onnx/diffusion-<first 16
    hex digits of the checkpoint file's sha256>-opset<OPSET>`` (:func:`models.paths.user_cache_dir`), so other
    weights never reuse them.

    Raises:
        FileNotFoundError: the checkpoint file is missing.
    """
    from models.paths import user_cache_dir

    path = checkpoint_file(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"diffusion checkpoint not found: {path}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return user_cache_dir() / "onnx" / f"diffusion-{digest}-opset{OPSET}"


def ensure_exported(checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike | None = None,
                    *, tolerance: float = EXPORT_TOLERANCE) -> tuple[Path, Path]:
    """The exported denoiser and music encoder of ``checkpoint``, exporting them first when ``out_dir`` lacks them.

    An export (:func:`export_conductor`, about a minute on two CPU cores) goes to a temporary folder beside
    ``out_dir``, is checked against torch (fp32 differences below ``tolerance``) and only then moved in, so a
    failed or interrupted export leaves nothing behind and concurrent loaders never read a half-written graph.

    Args:
        checkpoint: diffusion checkpoint file or run folder (``None`` = the shipped weights).
        out_dir: folder of ``denoiser.onnx`` and ``music_encoder.onnx``; ``None`` = :func:`default_export_dir`.
        tolerance: largest accepted max-abs difference between the exported graphs and torch.

    Returns:
        ``(denoiser_path, music_encoder_path)``.

    Raises:
        FileNotFoundError / ValueError: an unreadable checkpoint; RuntimeError: the export differs from torch by more
        than ``tolerance``; ImportError: the exporter (``onnxscript``) is not installed.
    """
    out = Path(out_dir) if out_dir is not None else default_export_dir(checkpoint)
    paths = tuple(out / name for name in EXPORT_FILES)
    if all(p.is_file() for p in paths):
        return paths
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        report = export_conductor(checkpoint, tmp, device="cpu")
        worst = max(report["max_abs_diff_denoiser"], report["max_abs_diff_music_encoder"])
        if not worst < tolerance:
            raise RuntimeError(f"the ONNX export of {report['checkpoint']} differs from torch by {worst:.3g} "
                               f"(tolerance {tolerance:g}); not using it")  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        for name in EXPORT_FILES:
            os.replace(tmp / name, out / name)  # same folder tree: atomic; any mix comes from the same weights
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths
