"""Shared fixtures: small hyper-parameters and random batches in the section-3 contract."""

import os

import numpy as np
import pytest

# Forward passes of the original TF1 release (tests/data/golden/README.md), shipped with the
# tests; CLSR_GOLDEN_DIR points the fidelity tests at other dumps of the same layout.
GOLDEN_DIR = os.environ.get("CLSR_GOLDEN_DIR",
                            os.path.join(os.path.dirname(__file__), "data", "golden"))


def small_hparams(**overrides):
    """Hyper-parameters of a small CLSR (fast on CPU)."""
    hp = dict(user_vocab_size=30, item_vocab_size=60, cate_vocab_size=8, max_seq_length=10,
              item_embedding_dim=6, cate_embedding_dim=2, user_embedding_dim=8, hidden_size=8,
              att_fcn_layer_sizes=[8, 4], layer_sizes=[8, 4], contrastive_length_threshold=3,
              contrastive_recent_k=2)
    hp.update(overrides)
    return hp


def surge_small(**overrides):
    """Hyper-parameters of a small SURGE (fast on CPU)."""
    hp = dict(small_hparams(), model_type="surge", pool_length=3, metric_heads=2,
              relative_threshold=0.3)
    hp.update(overrides)
    return hp


def random_batch(rng, n_groups=4, group=5, length=10, n_users=30, n_items=60, n_cates=8,
                 lengths=None):
    """A batch of ``n_groups`` groups (positive first) with left-aligned histories."""
    rows = n_groups * group
    lengths = np.asarray(lengths if lengths is not None
                         else rng.integers(1, length + 1, n_groups))
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.float32)
    hist = rng.integers(1, n_items, (n_groups, length)).astype(np.int32) * mask.astype(np.int32)
    labels = np.zeros((rows, 1), np.float32)
    labels[::group] = 1

    def shared(values, dtype=np.float32):  # the rows of a group share user and history
        return np.repeat(values, group, axis=0).astype(dtype)

    return {
        "labels": labels,
        "users": shared(rng.integers(1, n_users, n_groups), np.int32),
        "items": rng.integers(1, n_items, rows).astype(np.int32),
        "cates": rng.integers(1, n_cates, rows).astype(np.int32),
        "item_history": shared(hist, np.int32),
        "item_cate_history": shared(hist % n_cates, np.int32),
        "mask": shared(mask),
        "time": np.full(rows, 1.5e9, np.float32),
        "time_diff": shared(rng.random((n_groups, length)) * mask),
        "time_from_first_action": shared(rng.random((n_groups, length)) * 3 * mask),
        "time_to_now": shared(rng.random((n_groups, length)) * 3 * mask),
    }


def prepare_synthetic(tmp_path_factory, n_users, interactions_per_user):
    """A small synthetic data set (L = 10) in a fresh temporary folder; returns its path."""
    from clsr_tf.data.registry import prepare_dataset

    path = str(tmp_path_factory.mktemp("synthetic"))
    prepare_dataset("synthetic", None, path, max_seq_length=10, seed=42, n_users=n_users,
                    interactions_per_user=interactions_per_user)
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """150 users x 30 interactions, prepared once per test module."""
    return prepare_synthetic(tmp_path_factory, 150, 30)


@pytest.fixture
def rng():
    return np.random.default_rng(7)
