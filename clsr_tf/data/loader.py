"""``FastBatches``: the streaming, vectorised reader of Recommenders sequential files.

It yields the same batches as Recommenders' ``SequentialIterator`` (``RecommendersBatches``)
without per-line Python: ``clsr_tf.data.tsv`` parses bounded chunks of the file through the
vocabularies' ``ByteVocab`` index, ``clsr_tf.data.batching`` pads, shuffles and draws the
in-batch negatives. Memory does not grow with the file.
"""

import numpy as np

from clsr_tf.data import batching
from clsr_tf.data.contract import TIME_RANGE, BatchReader, vocab_paths
from clsr_tf.data.tsv import LineParser
from clsr_tf.data.vocab import ByteVocab, load_vocab

# Padded arrays per block, in bytes (about 20 bytes per history position).
_BLOCK_BYTES = 1 << 25


def line_parser(hp):
    """The ``LineParser`` of the hyper-parameters' vocabularies, L and time unit.

    Args:
        hp (dict): Validated hyper-parameters (vocab paths, ``data_dir``,
            ``max_seq_length``, ``time_unit``).

    Returns:
        LineParser: The parser.

    Raises:
        FileNotFoundError: A vocabulary file does not exist.
        DataFormatError: A vocabulary file is not a vocabulary pickle.
    """
    vocabs = [ByteVocab(load_vocab(path)) for path in vocab_paths(hp).values()]
    return LineParser(*vocabs, hp["max_seq_length"], TIME_RANGE[hp["time_unit"]])


class FastBatches(BatchReader):
    """Batches of a Recommenders sequential file, parsed with vectorised numpy.

    Args:
        hp (dict): Validated hyper-parameters (vocab paths, ``data_dir``, ``batch_size``,
            ``max_seq_length``, ``min_seq_length``, ``time_unit``; ``seed`` if ``seed`` is None).
        shuffle_buffer (int): Lines in the training shuffle buffer; 0 keeps file order.
        seed (int): Seed of the shuffle and the negative sampling; None takes ``hp["seed"]``.
        chunk_bytes (int): Bytes of text parsed at a time.
        prefetch (int): Batches that ``dataset`` prefetches.
    """

    def __init__(self, hp, shuffle_buffer=20000, seed=None, chunk_bytes=1 << 20, prefetch=2):
        if hp["time_unit"] not in TIME_RANGE:
            raise ValueError(f"time_unit must be one of {list(TIME_RANGE)}, "
                             f"got {hp['time_unit']!r}")
        self.paths = vocab_paths(hp)
        self.max_seq_length = int(hp["max_seq_length"])
        self.batch_size = int(hp["batch_size"])
        self.min_seq_length = int(hp["min_seq_length"])
        self.shuffle_buffer = int(shuffle_buffer)
        self.seed = int(seed if seed is not None else hp["seed"] if "seed" in hp else 0)
        self.chunk_bytes = int(chunk_bytes)
        self.prefetch = prefetch
        self.passes = 0
        self.parser = line_parser(hp)

    def __call__(self, path, batch_num_ngs=0, seed=None):
        """Yield the batches of one file.

        Args:
            path (str): A Recommenders sequential file.
            batch_num_ngs (int): In-batch negatives per positive (training, shuffled) or 0
                (file order, labels as in the file).
            seed (int): Seed of this pass's shuffle and negatives; None derives one from the
                constructor's seed and the number of passes so far.

        Yields:
            dict: name -> np.ndarray, dtypes as ``BATCH_SPEC``.

        Raises:
            DataFormatError: On the first malformed line.
        """
        rng = np.random.default_rng([self.seed, self.passes] if seed is None else seed)
        self.passes += 1
        blocks = self._blocks(path)
        if batch_num_ngs > 0 and self.shuffle_buffer > 0:
            blocks = batching.shuffled(blocks, rng, self.shuffle_buffer)
        for block in batching.rebatched(blocks, self.batch_size):
            if batch_num_ngs <= 0:
                yield batching.eval_batch(block)
            elif batching.size(block) >= batching.MIN_TRAIN_LINES:
                batch = batching.train_batch(block, batch_num_ngs, rng)
                if batch is not None:
                    yield batch

    def _blocks(self, path):
        """Padded blocks of the lines that pass ``min_seq_length``, in file order."""
        width = self.max_seq_length
        lines = max(256, _BLOCK_BYTES // (20 * width))
        for ragged in self.parser.parse_file(path, self.chunk_bytes):
            for part in batching.split(ragged, lines, width):
                block = batching.pad(part, width)
                if self.min_seq_length > 1:
                    block = batching.take(block, block["length"] >= self.min_seq_length)
                if batching.size(block):
                    yield block
