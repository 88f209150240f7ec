"""Temporary: the names moved to ``clsr_tf.data.contract`` and ``recommenders_adapter``."""

from clsr_tf.data.contract import BATCH_SPEC, TIME_RANGE, BatchReader, output_signature, vocab_paths  # noqa: F401
from clsr_tf.data.recommenders_adapter import RecommendersBatches  # noqa: F401
