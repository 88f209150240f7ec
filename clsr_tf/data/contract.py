"""The batch contract between the data readers and the models (shared/DESIGN.md section 3).

A batch is a dict of arrays named as Recommenders' ``SequentialIterator._convert_data`` names
them. A training batch holds groups of ``1 + train_num_ngs`` rows: a positive, then in-batch
negatives that share its user and history. Every reader derives from ``BatchReader``.
"""

import contextlib
import os

import tensorflow as tf

# name -> (dtype, rank) of each batch array.
BATCH_SPEC = {
    "labels": (tf.float32, 2), "users": (tf.int32, 1), "items": (tf.int32, 1),
    "cates": (tf.int32, 1), "item_history": (tf.int32, 2), "item_cate_history": (tf.int32, 2),
    "mask": (tf.float32, 2), "time": (tf.float32, 1), "time_diff": (tf.float32, 2),
    "time_from_first_action": (tf.float32, 2), "time_to_now": (tf.float32, 2),
}

# The [B, L] arrays of one value per history position: they move together when a history is
# reordered or cut (``clsr_tf.studies.protocols``); the mask marks their valid positions.
POSITION_KEYS = ("item_history", "item_cate_history", "time_diff", "time_from_first_action",
                 "time_to_now")

# The keys that every row of a group shares with its positive (user, target time, history);
# the others (labels, items, cates) are the row's candidate.
GROUP_KEYS = ("users", "time", "mask") + POSITION_KEYS

# The shared keys that a model's history side reads, so it can run once per group.
HISTORY_SIDE_KEYS = ("users", "item_history", "item_cate_history", "mask",
                     "time_from_first_action", "time_to_now")

# Seconds per "day" of the time features, for each ``time_unit``.
TIME_RANGE = {"recommenders": 86400.0, "s": 86.4, "ms": 86400000.0}

VOCAB_KEYS = ("user_vocab", "item_vocab", "cate_vocab")


def output_signature(max_seq_length):
    """The ``tf.TensorSpec`` of each batch array.

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

    Raises:
        FileNotFoundError: A vocabulary file does not exist.
    """
    out = {}
    for key in VOCAB_KEYS:
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
    failure = None  # the exception a ``dataset`` pass raised (see ``original_errors``)

    def __call__(self, path, batch_num_ngs=0, seed=None):
        """Yield the batches of one file.

        Args:
            path (str): A Recommenders sequential file.
            batch_num_ngs (int): In-batch negatives per positive (training), or 0.
            seed (int): Seed of the pass's shuffle and negatives.

        Yields:
            dict: name -> np.ndarray, dtypes as ``BATCH_SPEC``.
        """
        raise NotImplementedError

    def dataset(self, path, batch_num_ngs=0, seed=None):
        """The same batches as a ``tf.data.Dataset`` (re-read on each iteration).

        tf.data's autotuning is off: this pipeline has nothing to tune (a Python generator
        and a fixed prefetch), and with it on, deleting an iterator (at the end of each
        ``fit``, or at a later garbage collection on TensorFlow 2.16+) often waits until the
        autotuning thread's next scheduled wake-up, up to 60 s later: the cancellation wakes
        that thread before marking itself done, so the thread goes back to sleep
        (benchmarks/README.md, "The end-of-epoch stall").

        Args:
            path (str): A Recommenders sequential file.
            batch_num_ngs (int): In-batch negatives per positive, or 0.
            seed (int): Seed of the pass (see ``__call__``).

        Returns:
            tf.data.Dataset: Dataset of batch dicts.
        """
        def batches():
            try:
                yield from self(path, batch_num_ngs, seed)
            except Exception as err:  # tf.data reraises it inside an error of its own
                self.failure = err
                raise

        options = tf.data.Options()
        options.autotune.enabled = False
        return tf.data.Dataset.from_generator(
            batches, output_signature=output_signature(self.max_seq_length),
        ).prefetch(self.prefetch).with_options(options)

    @contextlib.contextmanager
    def original_errors(self):
        """Let an error of this reader inside ``tf.data`` (a ``dataset`` pass) surface as
        the reader raised it (e.g. a ``DataFormatError`` naming file, line and field), not
        wrapped in TensorFlow's error and traceback.

        Raises:
            Exception: The reader's own exception, in place of the error that carried it.
        """
        self.failure = None
        try:
            yield
        except Exception:
            failure, self.failure = self.failure, None
            if failure is None:
                raise
            raise failure from None
