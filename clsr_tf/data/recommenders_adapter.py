"""Recommenders' ``SequentialIterator`` as a batch reader of the batch contract.

The iterator builds TF1 placeholders in the graph it is given and yields feed dicts keyed by
them; here it gets a private ``tf.Graph`` (eager execution stays on in this process) and each
feed dict is mapped back to the batch names of ``clsr_tf.data.contract``.
"""

import random

import numpy as np
import tensorflow as tf

from clsr_tf.data.contract import BATCH_SPEC, BatchReader, vocab_paths
from clsr_tf.data.vocab import load_vocab


class RecommendersBatches(BatchReader):
    """Batches of a Recommenders sequential file, read by Recommenders' own iterator.

    Args:
        hp (dict): Validated hyper-parameters (vocab paths, ``batch_size``,
            ``max_seq_length``, ``min_seq_length``, ``time_unit``).
    """

    def __init__(self, hp):
        from recommenders.models.deeprec.deeprec_utils import HParams
        from recommenders.models.deeprec.io.sequential_iterator import SequentialIterator

        if hp["time_unit"] != "recommenders":
            raise ValueError(
                f"time_unit {hp['time_unit']!r}: Recommenders' SequentialIterator scales time "
                "by a fixed 86400-second day; use time_unit 'recommenders' with this loader")
        self.hp = hp
        self.max_seq_length = hp["max_seq_length"]
        for path in vocab_paths(hp).values():  # the iterator's own loading names no file
            load_vocab(path)
        config = dict(vocab_paths(hp), batch_size=hp["batch_size"],
                      max_seq_length=hp["max_seq_length"])
        self.iterator = SequentialIterator(HParams(config), tf.Graph())
        self.names = {getattr(self.iterator, name): name for name in BATCH_SPEC}
        self._file_order = {}

    def __call__(self, path, batch_num_ngs=0, seed=None):
        """Yield the batches of one file.

        Args:
            path (str): A Recommenders sequential file.
            batch_num_ngs (int): In-batch negatives per positive (training) or 0.
            seed (int): Seed of the shuffle and the negatives (the iterator draws them from
                Python's ``random``); None leaves ``random`` as it is.

        Yields:
            dict: name -> np.ndarray, dtypes as ``BATCH_SPEC``.
        """
        if seed is not None:
            random.seed(seed)
        # The iterator caches parsed files and shuffles the cache in place; start each pass
        # from file order so that a pass depends on its seed alone.
        if path not in self._file_order:
            self._file_order[path] = self.iterator.parse_file(path)
        self.iterator.iter_data[path] = list(self._file_order[path])
        for feed in self.iterator.load_data_from_file(
                path, batch_num_ngs=batch_num_ngs, min_seq_length=self.hp["min_seq_length"]):
            if not feed:
                continue
            yield {self.names[ph]: np.asarray(v, BATCH_SPEC[self.names[ph]][0].as_numpy_dtype)
                   for ph, v in feed.items()}
