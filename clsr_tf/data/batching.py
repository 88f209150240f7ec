"""From parsed chunks to batches: padding, a bounded shuffle, in-batch negatives.

The batches are those of Recommenders' ``SequentialIterator``: evaluation batches hold one
row per line with the file's labels; a training batch holds, for every line, its positive
row then ``num_ngs`` rows whose items are drawn from the other lines of the batch (as
``_convert_data`` does). The training order comes from a bounded, seeded shuffle buffer
instead of a whole-file shuffle, so memory does not grow with the file.
"""

import warnings

import numpy as np

from clsr_tf.data.contract import POSITION_KEYS
from clsr_tf.data.tsv import LINE_KEYS, ranges

# Recommenders' ``_convert_data`` drops training batches of fewer lines.
MIN_TRAIN_LINES = 5


def size(block):
    """Lines of a block (or of a parsed chunk)."""
    return len(block["labels"])


def take(block, index):
    """The lines ``index`` (indices or a boolean mask) of a block."""
    return {k: v[index] for k, v in block.items()}


def _slice(block, start, stop):
    return {k: v[start:stop] for k, v in block.items()}


def _concat(blocks):
    return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}


def split(ragged, lines, width):
    """Split a parsed chunk into parts of at most ``lines`` lines.

    Args:
        ragged (dict): Per-line and flat arrays of a parsed chunk.
        lines (int): Most lines per part.
        width (int): max_seq_length (entries kept per line).

    Yields:
        dict: Parts of the chunk, in order.
    """
    n = size(ragged)
    if n <= lines:
        yield ragged
        return
    offsets = np.concatenate([[0], np.cumsum(np.minimum(ragged["length"], width))])
    for a in range(0, n, lines):
        b = min(a + lines, n)
        part = {k: ragged[k][a:b] for k in LINE_KEYS}
        part.update({k: ragged[k][offsets[a]:offsets[b]] for k in POSITION_KEYS})
        yield part


def pad(ragged, width):
    """A block: left-aligned, zero-padded [lines, L] histories from the flat arrays.

    Args:
        ragged (dict): Per-line and flat arrays of a parsed chunk.
        width (int): History length L.

    Returns:
        dict: ``LINE_KEYS`` arrays [lines] and ``POSITION_KEYS`` arrays [lines, L].
    """
    n = size(ragged)
    kept = np.minimum(ragged["length"], width).astype(np.int64)
    cells = ranges(np.arange(n) * width, kept)
    block = {k: ragged[k] for k in LINE_KEYS}
    for key in POSITION_KEYS:
        out = np.zeros(n * width, dtype=ragged[key].dtype)
        out[cells] = ragged[key]
        block[key] = out.reshape(n, width)
    return block


def history_mask(length, width):
    """1.0 on the valid (left-aligned) history positions.

    Args:
        length (np.ndarray): Full history length per line.
        width (int): History length L.

    Returns:
        np.ndarray: float32 [lines, L].
    """
    kept = np.minimum(length, width)
    return (np.arange(width) < kept[:, None]).astype(np.float32)


def eval_batch(block):
    """One row per line, labels from the file.

    Args:
        block (dict): One batch of padded lines.

    Returns:
        dict: The batch (``clsr_tf.data.contract.BATCH_SPEC``).
    """
    batch = {k: block[k] for k in ("users", "items", "cates", "time") + POSITION_KEYS}
    batch["labels"] = block["labels"].reshape(-1, 1)
    batch["mask"] = history_mask(block["length"], block["item_history"].shape[1])
    return batch


def train_batch(block, num_ngs, rng):
    """Positive + ``num_ngs`` in-batch negatives per line, as ``_convert_data`` does.

    Each negative's item (and its category) is drawn uniformly from the other lines of the
    batch whose item differs from the positive's.

    Args:
        block (dict): One batch of padded lines.
        num_ngs (int): Negatives per positive.
        rng (np.random.Generator): Source of the negatives.

    Returns:
        dict: The batch, or None when every line has the same item (no negative exists;
        Recommenders' rejection sampling would loop forever there).
    """
    n, group = size(block), 1 + num_ngs
    items = block["items"]
    order = np.argsort(items, kind="stable")
    ranked = items[order]
    low = np.searchsorted(ranked, items, "left")
    same = np.searchsorted(ranked, items, "right") - low
    if (same == n).any():
        warnings.warn(f"skipping a training batch of {n} lines that all hold item "
                      f"{items[0]}: no in-batch negative exists")
        return None
    draw = rng.integers(0, (n - same)[:, None], size=(n, num_ngs))
    negatives = order[draw + np.where(draw >= low[:, None], same[:, None], 0)]
    candidates = np.concatenate([np.arange(n)[:, None], negatives], axis=1).ravel()
    rows = np.repeat(np.arange(n), group)
    batch = {k: block[k][rows] for k in ("users", "time") + POSITION_KEYS}
    batch["items"] = items[candidates]
    batch["cates"] = block["cates"][candidates]
    batch["labels"] = np.tile(np.eye(1, group, dtype=np.float32)[0], n).reshape(-1, 1)
    batch["mask"] = history_mask(block["length"], block["item_history"].shape[1])[rows]
    return batch


def rebatched(blocks, batch_size):
    """Regroup blocks into ``batch_size`` lines (the last batch may be smaller).

    Args:
        blocks (iterable): Blocks of padded lines.
        batch_size (int): Lines per batch.

    Yields:
        dict: Blocks of ``batch_size`` lines, in order.
    """
    carry = None
    for block in blocks:
        n, start = size(block), 0
        if carry is not None:
            start = min(n, batch_size - size(carry))
            carry = _concat([carry, _slice(block, 0, start)])
            if size(carry) < batch_size:
                continue
            yield carry
            carry = None
        full = start + (n - start) // batch_size * batch_size
        for a in range(start, full, batch_size):
            yield _slice(block, a, a + batch_size)
        if full < n:
            carry = _slice(block, full, n)
    if carry is not None:
        yield carry


def shuffled(blocks, rng, buffer_lines):
    """Shuffle lines through a bounded pool.

    Once the pool holds twice ``buffer_lines`` lines, all but a random ``buffer_lines`` of
    them leave in random order, so each line is copied a few times rather than once per block.

    Args:
        blocks (iterable): Blocks of padded lines.
        rng (np.random.Generator): Source of the order.
        buffer_lines (int): Lines kept back in the pool.

    Yields:
        dict: Blocks of shuffled lines.
    """
    pool, held = [], 0
    for block in blocks:
        pool.append(block)
        held += size(block)
        if held >= 2 * buffer_lines:
            lines, perm = _concat(pool), rng.permutation(held)
            yield take(lines, perm[buffer_lines:])
            pool, held = [take(lines, perm[:buffer_lines])], buffer_lines
    if held:
        yield take(_concat(pool), rng.permutation(held))
