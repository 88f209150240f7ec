"""Shared fixtures: small hyper-parameters and random batches in the section-3 contract."""

import os

import numpy as np
import pytest

GOLDEN_DIR = os.environ.get(
    "CLSR_GOLDEN_DIR",
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "golden"))


def small_hparams(**overrides):
    """Hyper-parameters of a small CLSR (fast on CPU)."""
    hp = dict(user_vocab_size=30, item_vocab_size=60, cate_vocab_size=8, max_seq_length=10,
              item_embedding_dim=6, cate_embedding_dim=2, user_embedding_dim=8, hidden_size=8,
              att_fcn_layer_sizes=[8, 4], layer_sizes=[8, 4], contrastive_length_threshold=3,
              contrastive_recent_k=2)
    hp.update(overrides)
    return hp


def random_batch(rng, n_groups=4, group=5, length=10, n_users=30, n_items=60, n_cates=8,
                 lengths=None):
    """A batch of ``n_groups`` groups (positive first) with left-aligned histories."""
    rows = n_groups * group
    lengths = np.asarray(lengths if lengths is not None
                         else rng.integers(1, length + 1, n_groups))
    lengths = np.repeat(lengths, group)
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.float32)
    hist = rng.integers(1, n_items, (rows, length)).astype(np.int32) * mask.astype(np.int32)
    labels = np.zeros((rows, 1), np.float32)
    labels[::group] = 1
    return {
        "labels": labels,
        "users": np.repeat(rng.integers(1, n_users, n_groups), group).astype(np.int32),
        "items": rng.integers(1, n_items, rows).astype(np.int32),
        "cates": rng.integers(1, n_cates, rows).astype(np.int32),
        "item_history": hist,
        "item_cate_history": (hist % n_cates).astype(np.int32),
        "mask": mask,
        "time": np.full(rows, 1.5e9, np.float32),
        "time_diff": (rng.random((rows, length)) * mask).astype(np.float32),
        "time_from_first_action": (rng.random((rows, length)) * 3 * mask).astype(np.float32),
        "time_to_now": (rng.random((rows, length)) * 3 * mask).astype(np.float32),
    }


@pytest.fixture
def rng():
    return np.random.default_rng(7)
