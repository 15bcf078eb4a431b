"""R@k / MedR and the TMR protocols on hand-made similarity matrices; InfoNCE with negative filtering."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.retrieval import protocols
from models.retrieval.evaluation import hit_rates
from models.retrieval.losses import info_nce, negative_filter_mask


def test_ranks_and_recall_on_a_hand_made_matrix():
    # rows = texts, columns = motions; the pair of row i is column i.
    similarity = np.array(
        [
            [0.9, 0.1, 0.2, 0.0],  # rank 1
            [0.8, 0.5, 0.6, 0.7],  # 0.5 is beaten by 0.8, 0.6, 0.7 -> rank 4
            [0.1, 0.9, 0.3, 0.2],  # rank 2
            [0.0, 0.1, 0.2, 0.3],  # rank 1
        ]
    )
    ranks = protocols.ranks(similarity, np.eye(4, dtype=bool))
    np.testing.assert_array_equal(ranks, [1, 4, 2, 1])
    metrics = protocols.recall_metrics(ranks)
    assert metrics == {"R@1": 50.0, "R@2": 75.0, "R@3": 75.0, "R@5": 100.0, "R@10": 100.0, "MedR": 1.5}
    both = protocols.protocol_all(similarity)
    # motion -> text uses the columns: column 1 has 0.9 (row 2) above its own 0.5 -> rank 2; column 3 has 0.7
    # (row 1) above its own 0.3 -> rank 2.
    np.testing.assert_array_equal(protocols.ranks(similarity.T, np.eye(4, dtype=bool)), [1, 2, 2, 2])
    assert both["motion_to_text"]["R@1"] == 25.0 and both["motion_to_text"]["MedR"] == 2.0


def test_ties_are_broken_by_index_and_missing_relevance_is_an_error():
    similarity = np.array([[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_array_equal(protocols.ranks(similarity, np.eye(2, dtype=bool)), [1, 2])
    with pytest.raises(ValueError, match="no relevant item"):
        protocols.ranks(similarity, np.zeros((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="equal 2D shapes"):
        protocols.ranks(similarity, np.eye(3, dtype=bool))


def test_threshold_protocol_counts_near_duplicate_captions():
    similarity = np.array([[0.2, 0.9, 0.1], [0.1, 0.3, 0.8], [0.1, 0.2, 0.9]])
    captions = np.array([[1.0, 0.97, 0.1], [0.97, 1.0, 0.1], [0.1, 0.1, 1.0]])
    strict = protocols.protocol_all(similarity)["text_to_motion"]
    assert strict["R@1"] == pytest.approx(100 / 3)
    lenient = protocols.protocol_threshold(similarity, captions, threshold=0.95)["text_to_motion"]
    # text 0 retrieves motion 1 whose caption is a near duplicate -> now a hit; text 1 still misses (rank 2).
    assert lenient["R@1"] == pytest.approx(200 / 3)
    assert lenient["MedR"] == 1.0


def test_dissimilar_subset_picks_far_apart_captions():
    rng = np.random.default_rng(0)
    centres = np.eye(8)
    embeddings = np.concatenate([centres + 0.01 * rng.normal(size=(8, 8)) for _ in range(5)])  # 5 copies each
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    subset = protocols.dissimilar_subset(embeddings, size=8, seed=0)
    assert len(subset) == 8
    assert sorted(np.argmax(embeddings[subset], axis=1).tolist()) == list(range(8))  # one per cluster
    np.testing.assert_array_equal(subset, protocols.dissimilar_subset(embeddings, size=8, seed=0))


def test_batch_protocol_averages_over_seeded_batches():
    n = 70
    similarity = np.eye(n) + 0.01 * np.random.default_rng(1).random((n, n))
    result = protocols.protocol_batches(similarity, batch_size=32)
    assert result["batches"] == 2
    assert result["text_to_motion"]["R@1"] == 100.0 and result["motion_to_text"]["MedR"] == 1.0
    shuffled = protocols.protocol_batches(np.random.default_rng(2).random((n, n)), batch_size=32)
    assert shuffled["text_to_motion"]["R@1"] < 30.0
    with pytest.raises(ValueError, match="at least 32"):
        protocols.protocol_batches(np.eye(10), 32)


def test_hit_rates_use_any_relevant_item_in_the_top_k():
    similarity = np.array([[0.9, 0.8, 0.1, 0.0], [0.9, 0.8, 0.7, 0.1]])
    relevant = np.array([[False, True, False, False], [False, False, False, True]])
    assert hit_rates(similarity, relevant, ks=(1, 2, 4)) == {"R@1": 0.0, "R@2": 50.0, "R@4": 100.0}


def test_negative_filter_masks_similar_captions_and_shared_labels():
    sentences = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), dim=1
    )
    groups = torch.tensor([0, 1, 2, 2])
    mask = negative_filter_mask(sentences, threshold=0.6, groups=groups)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[0, 1] = expected[1, 0] = True  # cosine 0.95 > 0.6
    expected[2, 3] = expected[3, 2] = True  # same content x style label
    assert torch.equal(mask, expected)
    assert not negative_filter_mask(sentences, threshold=0.99).any()


def test_info_nce_ignores_masked_pairs():
    torch.manual_seed(0)
    text = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    motion = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0, 1] = mask[1, 0] = True
    loss = info_nce(text, motion, 0.1, mask)
    logits = text @ motion.T / 0.1
    manual_t2m = [torch.logsumexp(logits[i][~mask[i]], 0) - logits[i, i] for i in range(4)]
    manual_m2t = [torch.logsumexp(logits[:, i][~mask[:, i]], 0) - logits[i, i] for i in range(4)]
    expected = 0.5 * (torch.stack(manual_t2m).mean() + torch.stack(manual_m2t).mean())
    torch.testing.assert_close(loss, expected)
    # Moving motion 1 onto text 0 (a masked pair) leaves text 0's term unchanged; unmasked it would hurt.
    moved = motion.clone()
    moved[1] = text[0]
    logits_moved = text @ moved.T / 0.1
    row0 = torch.logsumexp(logits_moved[0][~mask[0]], 0) - logits_moved[0, 0]
    torch.testing.assert_close(row0, manual_t2m[0])
    assert info_nce(text, moved, 0.1, None) > info_nce(text, moved, 0.1, mask)
    with pytest.raises(ValueError, match="temperature"):
        info_nce(text, motion, 0.0)
    with pytest.raises(ValueError, match="both be"):
        info_nce(text, motion[:3])
