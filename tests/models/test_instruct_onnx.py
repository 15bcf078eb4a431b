"""ONNX export of the text-to-motion networks: parity with torch and generation through onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from models.instruct import load_text_to_motion
from models.instruct.onnx_runtime import EXPORT_FILES, ensure_exported
from tests.models.test_instruct_model import tiny_run  # noqa: F401 (fixture)


def test_export_matches_torch_and_generates(tiny_run, tmp_path):  # noqa: F811
    run, _, _ = tiny_run
    torch_gen = load_text_to_motion(run)
    folder = ensure_exported(torch_gen, tmp_path / "onnx")
    assert all((folder / name).is_file() for name in EXPORT_FILES)
    from models.instruct.onnx_runtime import OrtNetworks

    ort = OrtNetworks(folder)
    assert set(ort.parity) == set(EXPORT_FILES) and max(ort.parity.values()) < 1e-3
    torch_gen._ort = ort  # the same generator, networks run by onnxruntime
    motions = torch_gen.generate("a person walks", seconds=3.0, samples=2, seed=0)
    assert len(motions) == 2 and motions[0].positions.shape == (60, 22, 3)
    assert np.isfinite(motions[0].positions).all()
    # ten windows' worth of tokens: the graphs accept any window length and the decoder any length
    assert torch_gen.generate("a person walks", seconds=30.0)[0].num_frames == 600


def test_unknown_runtime_is_refused(tiny_run):  # noqa: F811
    run, _, _ = tiny_run
    with pytest.raises(ValueError, match="runtime"):
        load_text_to_motion(run, runtime="tensorrt")
