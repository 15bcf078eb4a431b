"""ONNX export and onnxruntime inference for the text-to-motion networks (masked transformer, residual transformer,
RVQ-VAE decoder).

Export: ``torch.onnx.export(dynamo=True)`` (opset 18) with dynamic batch and token axes, so one graph serves every
window length and the classifier-free-guidance double batch. The graphs live in ``<Baton cache folder>/onnx/
t2m-<digest of the weights>/`` (:func:`default_export_dir`), exported on first use and checked against torch
(:func:`export_t2m` reports max |torch - ORT| per graph). The sentence encoder (MiniLM) and the length estimator stay
in torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

OPSET = 18
EXPORT_FILES = ("mask.onnx", "residual.onnx", "decoder.onnx")
EXPORT_TOLERANCE = 1e-3


class _Mask(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, ids: torch.Tensor, text: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        padding = torch.zeros_like(ids, dtype=torch.bool)
        return self.net(ids, text, padding, drop)


class _Residual(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, codes: torch.Tensor, layer: torch.Tensor, text: torch.Tensor,
                drop: torch.Tensor) -> torch.Tensor:  # fmt: skip
        padding = torch.zeros(codes.shape[:2], dtype=torch.bool, device=codes.device)
        return self.net(codes, layer, text, padding, drop)


class _Decoder(nn.Module):
    def __init__(self, vq):
        super().__init__()
        self.vq = vq

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.vq.decode(codes)


def _examples(generator, tokens: int = 12, batch: int = 2):
    torch.manual_seed(0)
    q, k = generator.num_quantizers, generator.codebook_size
    ids = torch.randint(0, k + 1, (batch, tokens))
    text = torch.randn(batch, generator.mask.config.text_dim)
    drop = torch.tensor([False, True][:batch] + [False] * max(0, batch - 2))
    codes = torch.randint(0, k, (batch, tokens, q))
    layer = torch.ones(batch, dtype=torch.long)
    return ids, text, drop, codes, layer


def weights_digest(run_dir: Path) -> str:
    """First 16 hex digits of the sha256 over the three exported networks' checkpoint files."""
    digest = hashlib.sha256()
    for name in ("vq.pt", "mask.pt", "residual.pt"):
        digest.update((Path(run_dir) / name).read_bytes())
    return digest.hexdigest()[:16]


def default_export_dir(run_dir: Path) -> Path:
    """``<Baton cache folder>/onnx/t2m-<weights digest>-opset18``."""
    from models.paths import user_cache_dir

    return user_cache_dir() / "onnx" / f"t2m-{weights_digest(run_dir)}-opset{OPSET}"


def export_t2m(generator, out_dir: str | os.PathLike) -> dict[str, float]:
    """Export the three graphs of a :class:`models.instruct.TextToMotion` into ``out_dir`` and compare them with
    torch on example inputs. Returns ``{graph: max |torch - ORT|}`` (also written to ``parity.json``).

    Raises:
        ImportError: without ``onnxscript`` / ``onnxruntime``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids, text, drop, codes, layer = _examples(generator)
    max_tokens = generator.max_tokens
    batch, tokens = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("tokens", min=2, max=max_tokens)
    graphs = {
        "mask.onnx": (_Mask(generator.mask).eval(), (ids, text, drop), ["ids", "text", "drop"],
                      {"ids": {0: batch, 1: tokens}, "text": {0: batch}, "drop": {0: batch}}),
        "residual.onnx": (_Residual(generator.residual).eval(), (codes, layer, text, drop),
                          ["codes", "layer", "text", "drop"],
                          {"codes": {0: batch, 1: tokens}, "layer": {0: batch}, "text": {0: batch},
                           "drop": {0: batch}}),
        "decoder.onnx": (_Decoder(generator.vq).eval(), (codes,), ["codes"],
                         {"codes": {0: batch, 1: torch.export.Dim("any_tokens", min=2, max=4096)}}),
    }  # fmt: skip
    parity = {}
    for name, (module, args, names, shapes) in graphs.items():
        program = torch.onnx.export(module, args, dynamic_shapes=shapes, input_names=names, output_names=["out"],
                                    opset_version=OPSET, dynamo=True, verbose=False)  # fmt: skip
        program.save(str(out / name), external_data=False)
        session = make_session(out / name)
        with torch.no_grad():
            expected = module(*args).numpy()
        got = session.run(None, {n: a.numpy() for n, a in zip(names, args, strict=True)})[0]
        parity[name] = float(np.abs(expected - got).max())
    (out / "parity.json").write_text(json.dumps(parity))
    return parity


def make_session(path: str | os.PathLike, threads: int = 0):
    """A CPU onnxruntime session for ``path`` (``threads`` intra-op threads, 0 = default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def ensure_exported(generator, out_dir: str | os.PathLike | None = None,
                    tolerance: float = EXPORT_TOLERANCE) -> Path:  # fmt: skip
    """The export folder of ``generator``'s weights, exporting into a temporary folder beside it first when missing
    (moved in only when every graph is within ``tolerance`` of torch).

    Raises:
        RuntimeError: when an exported graph differs from torch by more than ``tolerance``.
    """
    out = Path(out_dir) if out_dir is not None else default_export_dir(generator.run_dir)
    if all((out / f).is_file() for f in EXPORT_FILES):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        parity = export_t2m(generator, staging)
        worst = max(parity.values())
        if worst > tolerance:
            raise RuntimeError(f"ONNX export differs from torch by {worst:.3g} (> {tolerance:g}): {parity}")
        if not out.exists():
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


class OrtNetworks:
    """onnxruntime sessions with the torch networks' call signatures (tensors in, tensors out)."""

    def __init__(self, folder: Path, threads: int = 0):
        self.folder = Path(folder)
        self.mask_session = make_session(self.folder / "mask.onnx", threads)
        self.residual_session = make_session(self.folder / "residual.onnx", threads)
        self.decoder_session = make_session(self.folder / "decoder.onnx", threads)
        parity = self.folder / "parity.json"
        self.parity = json.loads(parity.read_text()) if parity.is_file() else {}

    @classmethod
    def for_generator(cls, generator, threads: int = 0) -> OrtNetworks:
        return cls(ensure_exported(generator), threads)

    def mask(self, ids, text, padding, drop) -> torch.Tensor:
        out = self.mask_session.run(None, {"ids": ids.cpu().numpy(), "text": text.cpu().float().numpy(),
                                           "drop": drop.cpu().numpy()})[0]  # fmt: skip
        return torch.from_numpy(out)

    def residual(self, codes, layers, text, padding, drop) -> torch.Tensor:
        out = self.residual_session.run(None, {"codes": codes.cpu().numpy(), "layer": layers.cpu().numpy(),
                                               "text": text.cpu().float().numpy(), "drop": drop.cpu().numpy()})[0]
        return torch.from_numpy(out)

    def decode(self, codes) -> np.ndarray:
        return self.decoder_session.run(None, {"codes": codes.cpu().numpy()})[0]
