"""The adapter over Recommenders' SequentialIterator: same arrays, names mapped, eager kept."""

import numpy as np
import pytest
import tensorflow as tf

from clsr_tf.data.contract import BATCH_SPEC
from clsr_tf.data.recommenders_adapter import RecommendersBatches


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from clsr_tf.data.registry import prepare_dataset

    path = tmp_path_factory.mktemp("syn")
    prepare_dataset("synthetic", None, path, max_seq_length=8, seed=3, n_users=60,
                    interactions_per_user=20)
    return path


def hp_for(path, **overrides):
    hp = dict(user_vocab="user_vocab.pkl", item_vocab="item_vocab.pkl",
              cate_vocab="category_vocab.pkl", data_dir=str(path), batch_size=50,
              max_seq_length=8, min_seq_length=1, time_unit="recommenders")
    hp.update(overrides)
    return hp


def test_adapter_batches_equal_the_iterators_feed(prepared):
    from recommenders.models.deeprec.deeprec_utils import HParams
    from recommenders.models.deeprec.io.sequential_iterator import SequentialIterator

    hp = hp_for(prepared)
    ours = list(RecommendersBatches(hp)(str(prepared / "valid_data")))
    paths = {k: str(prepared / hp[k]) for k in ("user_vocab", "item_vocab", "cate_vocab")}
    theirs = SequentialIterator(HParams(dict(paths, batch_size=50, max_seq_length=8)),
                                tf.Graph())
    feeds = [f for f in theirs.load_data_from_file(str(prepared / "valid_data")) if f]
    assert len(ours) == len(feeds) > 1
    for batch, feed in zip(ours, feeds):
        by_name = {ph.name.split(":")[0]: v for ph, v in feed.items()}
        by_name["labels"] = by_name.pop("label")
        assert set(batch) == set(BATCH_SPEC) == set(by_name)
        for name, value in batch.items():
            np.testing.assert_array_equal(value, by_name[name], err_msg=name)
            assert value.dtype == BATCH_SPEC[name][0].as_numpy_dtype
    assert tf.executing_eagerly()


def test_training_batches_group_positives_with_in_batch_negatives(prepared):
    batch = next(RecommendersBatches(hp_for(prepared))(str(prepared / "train_data"), 4))
    labels = batch["labels"].reshape(-1, 5)
    assert np.all(labels[:, 0] == 1) and np.all(labels[:, 1:] == 0)
    items = batch["items"].reshape(-1, 5)
    assert np.all(items[:, 1:] != items[:, :1])
    for key in ("users", "item_history", "mask", "time_to_now"):
        group = batch[key].reshape(len(labels), 5, -1)
        assert np.all(group == group[:, :1]), key


def test_dataset_and_time_unit_check(prepared):
    batches = RecommendersBatches(hp_for(prepared))
    first = next(iter(batches.dataset(str(prepared / "valid_data"))))
    assert first["item_history"].shape[1] == 8 and first["mask"].dtype == tf.float32
    with pytest.raises(ValueError, match="time_unit"):
        RecommendersBatches(hp_for(prepared, time_unit="ms"))
    with pytest.raises(FileNotFoundError, match="user_vocab"):
        RecommendersBatches(hp_for(prepared, user_vocab="missing.pkl"))
