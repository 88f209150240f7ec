"""Drive Recommenders' ``SequentialIterator`` into named numpy batches and ``tf.data``.

The iterator builds TF1 placeholders in the graph it is given and yields feed dicts keyed
by them; here it gets a private ``tf.Graph`` (eager execution stays on in this process)
and each feed dict is mapped back to the batch names of shared/DESIGN.md section 3.
"""

import os
import random

import numpy as np
import tensorflow as tf

# name -> (dtype, rank) of each batch array (shared/DESIGN.md section 3).
BATCH_SPEC = {
    "labels": (tf.float32, 2), "users": (tf.int32, 1), "items": (tf.int32, 1),
    "cates": (tf.int32, 1), "item_history": (tf.int32, 2), "item_cate_history": (tf.int32, 2),
    "mask": (tf.float32, 2), "time": (tf.float32, 1), "time_diff": (tf.float32, 2),
    "time_from_first_action": (tf.float32, 2), "time_to_now": (tf.float32, 2),
}

# Seconds per "day" for each time_unit (shared/DESIGN.md section 3).
TIME_RANGE = {"recommenders": 86400.0, "s": 86.4, "ms": 86400000.0}


def output_signature(max_seq_length):
    """``tf.TensorSpec`` of each batch array.

    Args:
        max_seq_length (int): History length L.

    Returns:
        dict: name -> tf.TensorSpec.
    """
    return {name: tf.TensorSpec([None, max_seq_length] if rank == 2 and name != "labels"
                                else [None, 1] if name == "labels" else [None], dtype)
            for name, (dtype, rank) in BATCH_SPEC.items()}


def vocab_paths(hp):
    """Absolute vocab paths (relative ones resolve against ``data_dir``).

    Args:
        hp (dict): Validated hyper-parameters.

    Returns:
        dict: ``user_vocab``, ``item_vocab``, ``cate_vocab`` -> path.
    """
    out = {}
    for key in ("user_vocab", "item_vocab", "cate_vocab"):
        path = hp[key]
        if hp["data_dir"] and not os.path.isabs(path):
            path = os.path.join(hp["data_dir"], path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{key}: vocabulary file {path} not found")
        out[key] = path
    return out


class BatchReader:
    """Base of the batch readers: ``reader(path, batch_num_ngs, seed)`` yields batch dicts;
    ``dataset`` wraps the same batches in ``tf.data``.

    Subclasses set ``max_seq_length`` and ``prefetch`` and implement ``__call__``.
    """

    max_seq_length = 50
    prefetch = 2

    def __call__(self, path, batch_num_ngs=0, seed=None):
        raise NotImplementedError

    def dataset(self, path, batch_num_ngs=0, seed=None):
        """The same batches as a ``tf.data.Dataset`` (re-read on each iteration).

        Args:
            path (str): A Recommenders sequential file.
            batch_num_ngs (int): In-batch negatives per positive, or 0.
            seed (int): Seed of the pass (see ``__call__``).

        Returns:
            tf.data.Dataset: Dataset of batch dicts.
        """
        return tf.data.Dataset.from_generator(
            lambda: self(path, batch_num_ngs, seed),
            output_signature=output_signature(self.max_seq_length),
        ).prefetch(self.prefetch)


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
        config = dict(vocab_paths(hp), batch_size=hp["batch_size"],
                      max_seq_length=hp["max_seq_length"])
        self.iterator = SequentialIterator(HParams(config), tf.Graph())
        self.names = {getattr(self.iterator, name): name for name in BATCH_SPEC}
        self._file_order = {}

    def __call__(self, path, batch_num_ngs=0, seed=None):
        """Yield batches of one file.

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
