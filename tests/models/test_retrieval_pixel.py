"""The silhouette pixel encoder: shapes, windows, save/load, and training that really moves into the frozen space."""

import numpy as np
import pytest
import torch

from models.retrieval.pixel import (
    PixelConfig,
    PixelItem,
    SilhouetteEncoder,
    embed_silhouettes,
    fit_silhouettes,
    fuse,
    load_pixel_encoder,
    person_windows,
    save_pixel_encoder,
    train_pixel_encoder,
)


def _sequence(kind: int, frames: int = 24) -> np.ndarray:
    """A bar moving left-right (kind 0) or up-down (kind 1) on a 64 x 48 frame."""
    out = np.zeros((frames, 64, 48), np.uint8)
    for t in range(frames):
        shift = int(10 * np.sin(t / 3))
        if kind == 0:
            out[t, 10:54, 20 + shift : 28 + shift] = 255
        else:
            out[t, 20 + shift : 44 + shift, 10:38] = 255
    return out


def test_windows_and_fit():
    seq = np.concatenate([_sequence(0, 20), np.zeros((5, 64, 48), np.uint8), _sequence(0, 6)])
    windows = person_windows(seq, frames=16, hop=4, min_frames=8)
    assert [len(w) for w in windows] == [16, 16]  # the 6-frame run is too short
    frames, mask = fit_silhouettes(seq[:10], 16)
    assert frames.shape == (16, 64, 48) and mask.tolist() == [True] * 10 + [False] * 6
    with pytest.raises(ValueError):
        fuse(np.ones((1, 4)), np.ones((1, 4)), 1.5)


def test_forward_rejects_wrong_shape():
    encoder = SilhouetteEncoder(PixelConfig(frames=16, width=8, d_model=32, layers=1, embed_dim=16))
    with pytest.raises(ValueError, match="silhouettes"):
        encoder(torch.zeros(1, 16, 32, 32), torch.ones(1, 16, dtype=torch.bool))


def test_training_moves_silhouettes_to_their_motion_and_round_trips(tmp_path):
    torch.manual_seed(0)
    config = PixelConfig(frames=16, width=8, d_model=32, layers=1, embed_dim=16)
    encoder = SilhouetteEncoder(config)
    targets = np.eye(16, dtype=np.float32)[:2]

    class Frozen:  # the retrieval model's text side, as train_pixel_encoder uses it
        def encode_text_features(self, sentence):
            return torch.nn.functional.normalize(sentence[:, :16], dim=-1)

    sentences = [np.eye(384, dtype=np.float32)[[k]] for k in range(2)]
    items = [PixelItem(_sequence(k), targets[k], targets[k], sentences[k], sentences[k]) for k in (0, 1)] * 4
    queries = [_sequence(0), _sequence(1)]
    before = embed_silhouettes(encoder, queries) @ targets.T
    train_pixel_encoder(encoder, Frozen(), items, steps=60, batch_size=8, learning_rate=3e-3)
    after = embed_silhouettes(encoder, queries) @ targets.T
    assert after[0, 0] > after[0, 1] and after[1, 1] > after[1, 0], (before, after)
    save_pixel_encoder(encoder, tmp_path)
    loaded = load_pixel_encoder(tmp_path)
    np.testing.assert_allclose(embed_silhouettes(loaded, queries) @ targets.T, after, atol=1e-5)
    assert load_pixel_encoder(tmp_path / "none") is None
