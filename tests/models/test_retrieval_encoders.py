"""Motion encoders' shapes and masking, the model's embedding API, save / load round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.motion import load_bvh
from models.retrieval.encoders import PatchConfig, PatchMotionEncoder, TMRConfig, TMRMotionEncoder
from models.retrieval.features import TMR_FEATURE_DIM
from models.retrieval.model import RetrievalConfig, RetrievalModel, load_retrieval_model

TINY_TMR = TMRConfig(d_model=32, layers=1, heads=2, feedforward=64, dropout=0.0, max_frames=24)
TINY_PATCHES = PatchConfig(frames=32, hidden_size=32, layers=1, heads=2, intermediate_size=64, dropout=0.0)


def test_tmr_encoder_shapes_and_padding_mask():
    torch.manual_seed(0)
    encoder = TMRMotionEncoder(TINY_TMR, embed_dim=16).eval()
    frames = torch.randn(3, 20, TMR_FEATURE_DIM)
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[1, 12:] = False
    out = encoder(frames, mask)
    assert out.shape == (3, 16) and out.dtype == torch.float32
    changed = frames.clone()
    changed[1, 12:] = 100.0  # padded frames must not matter
    torch.testing.assert_close(encoder(changed, mask)[1], out[1])
    changed[1, 5] = 100.0  # real frames do
    assert not torch.allclose(encoder(changed, mask)[1], out[1])
    with pytest.raises(ValueError, match="TMR encoder expects"):
        encoder(torch.randn(1, 30, TMR_FEATURE_DIM), torch.ones(1, 30, dtype=torch.bool))


def test_patch_encoder_shapes():
    torch.manual_seed(0)
    encoder = PatchMotionEncoder(TINY_PATCHES, embed_dim=16).eval()
    assert encoder.vit.config.image_size == (32, 80) and encoder.vit.config.patch_size == 16
    out = encoder(torch.randn(2, 3, 32, 80))
    assert out.shape == (2, 16)
    with pytest.raises(ValueError, match="patch encoder expects"):
        encoder(torch.randn(2, 3, 48, 80))
    with pytest.raises(ValueError, match="multiples of the patch size"):
        PatchMotionEncoder(PatchConfig(frames=40))


@pytest.mark.parametrize("encoder", ["tmr", "patches"])
def test_model_embeds_text_and_motions_on_different_skeletons(shared_data, tmp_path, encoder):
    torch.manual_seed(0)
    config = RetrievalConfig(encoder=encoder, embed_dim=16, tmr=TINY_TMR, patches=TINY_PATCHES)
    model = RetrievalModel(config).eval()
    motions = [load_bvh(shared_data / "cmu_mocap_subject131_bvh/131_01.bvh"),
               load_bvh(shared_data / "bandai_namco_motion_dataset1/data/dataset-1_bye_normal_001.bvh")]  # fmt: skip
    assert motions[0].skeleton.num_joints == 31 and motions[1].skeleton.num_joints == 22
    motion_embeddings = model.embed_motion(motions)
    text_embeddings = model.embed_text(["a person walks", "someone waves goodbye"])
    for array in (motion_embeddings, text_embeddings):
        assert array.shape == (2, 16) and array.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, atol=1e-5)
    assert model.embed_text([]).shape == (0, 16)
    with pytest.raises(TypeError):
        model.embed_text("a single string")
    with pytest.raises(TypeError):
        model.embed_motion(motions[0])

    model.save(tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["encoder"] == encoder and saved["embed_dim"] == 16
    loaded = load_retrieval_model(tmp_path / "run")
    np.testing.assert_allclose(loaded.embed_motion(motions), motion_embeddings, atol=1e-5)
    np.testing.assert_allclose(loaded.embed_text(["a person walks"]), text_embeddings[:1], atol=1e-5)


def test_loading_reports_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="baton train retrieval"):
        load_retrieval_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"encoder": "lstm"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="encoder must be one of"):
        load_retrieval_model(tmp_path)


def test_local_pretrained_weights_load_from_folders(tmp_path):
    from transformers import ViTConfig, ViTModel

    from models.retrieval.text import SentenceEncoder, resolve_text_encoder_path

    torch.manual_seed(0)
    vit = ViTModel(ViTConfig(image_size=32, patch_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=64), add_pooling_layer=False)  # fmt: skip
    vit.save_pretrained(tmp_path / "vit")
    encoder = PatchMotionEncoder(PatchConfig(frames=32, pretrained=str(tmp_path / "vit")), embed_dim=8).eval()
    torch.testing.assert_close(encoder.vit.embeddings.patch_embeddings.projection.weight,
                               vit.embeddings.patch_embeddings.projection.weight)  # fmt: skip
    assert encoder(torch.randn(2, 3, 32, 80)).shape == (2, 8)  # 2 x 5 patches; positions interpolated

    folder = resolve_text_encoder_path("all-MiniLM-L6-v2")
    by_path = SentenceEncoder(str(folder))
    embeddings = by_path.encode(["a person walks", "someone strolls forward", "a person bows"])
    assert embeddings.shape == (3, 384) and by_path.dim == 384
    assert embeddings[0] @ embeddings[1] > embeddings[0] @ embeddings[2]  # a real sentence encoder
    with pytest.raises(FileNotFoundError, match="config.json"):
        resolve_text_encoder_path(str(tmp_path))
    with pytest.raises(TypeError):
        by_path.encode("not a list")
