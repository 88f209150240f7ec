"""The batch contract: the key groups partition the batch, the signature matches the spec."""

import tensorflow as tf

from clsr_tf.data import contract
from clsr_tf.data.contract import BATCH_SPEC, GROUP_KEYS, POSITION_KEYS


def test_key_groups():
    assert set(GROUP_KEYS) | {"labels", "items", "cates"} == set(BATCH_SPEC)
    assert not set(GROUP_KEYS) & {"labels", "items", "cates"}
    assert set(POSITION_KEYS) <= set(GROUP_KEYS)
    assert set(contract.HISTORY_SIDE_KEYS) <= set(GROUP_KEYS)
    assert all(BATCH_SPEC[key][1] == 2 for key in POSITION_KEYS + ("mask",))


def test_output_signature():
    signature = contract.output_signature(7)
    assert set(signature) == set(BATCH_SPEC)
    assert signature["labels"].shape.as_list() == [None, 1]
    assert signature["item_history"].shape.as_list() == [None, 7]
    assert signature["users"].shape.as_list() == [None]
    assert signature["mask"].dtype == tf.float32 and signature["items"].dtype == tf.int32
