"""Counterfactual protocols on batches (paper section 4.3, Table 4, Figure 5a).

Pure numpy functions of a batch dict (shared/DESIGN.md section 3), so they apply to the
batches of any loader:

- ``shuffle_history`` randomises the order of the valid history positions of each line; the
  item, its category and its time features move together and the mask is unchanged. The set
  of items (the long-term signal) stays, their order (the short-term signal) goes.
- ``truncate_history`` keeps only the last ``k`` valid positions, moved to the front (left
  aligned) with their time features; the mask shrinks to them. Recent items (the short-term
  signal) stay, the rest of the history (the long-term signal) goes.
"""

import numpy as np

from clsr_tf.data.contract import POSITION_KEYS

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _mix(x):
    """The splitmix64 finaliser, element-wise on a uint64 array (wraps modulo 2**64)."""
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def _row_keys(batch, seed):
    """A 64-bit hash of each row's user, target time and item history (and the seed).

    The rows of one candidate group share all three, so they get the same key even when a
    group is split over two batches.
    """
    users = np.asarray(batch["users"]).astype(np.uint64)
    time = np.ascontiguousarray(batch["time"], np.float32).view(np.uint32).astype(np.uint64)
    key = np.full(len(users), np.uint64(seed % 2**64), np.uint64)
    for column in (users, time, *np.asarray(batch["item_history"]).T.astype(np.uint64)):
        key = _mix(key ^ column)
    return key


def _move(batch, order, keep):
    """Gather the history arrays along ``order`` and zero the positions outside ``keep``."""
    out = dict(batch)
    for key in POSITION_KEYS:
        moved = np.take_along_axis(np.asarray(batch[key]), order, 1)
        out[key] = np.where(keep, moved, 0).astype(moved.dtype)
    return out


def shuffle_history(batch, seed=0):
    """Randomly permute the valid history positions of each line.

    The permutation is a deterministic function of ``seed`` and of the row's user, target
    time and item history, so every row of a candidate group (which share them) is permuted
    alike, whatever the batching. Items, categories and time features of a position stay
    together; padded positions and the mask are unchanged.

    Args:
        batch (dict): Arrays of shared/DESIGN.md section 3 (numpy).
        seed (int): Seed of the permutations.

    Returns:
        dict: A new batch with permuted history arrays (the other arrays are shared).
    """
    valid = np.asarray(batch["mask"]) > 0
    length = valid.shape[1]
    positions = _GOLDEN * np.arange(1, length + 1, dtype=np.uint64)
    noise = np.where(valid, _mix(_row_keys(batch, seed)[:, None] ^ positions), 0)
    source = np.lexsort((noise, ~valid), axis=1)  # valid positions in random order first
    target = np.argsort(~valid, axis=1, kind="stable")  # valid positions in order first
    inverse = np.argsort(target, axis=1)
    order = np.take_along_axis(source, inverse, 1)
    return _move(batch, order, np.ones_like(valid))


def truncate_history(batch, k):
    """Keep the last ``k`` valid history positions of each line, left aligned.

    Args:
        batch (dict): Arrays of shared/DESIGN.md section 3 (numpy).
        k (int): Number of most recent positions kept (lines with fewer keep all).

    Returns:
        dict: A new batch whose history arrays hold the kept positions first, zeros after,
        and whose mask marks the kept positions.

    Raises:
        ValueError: If ``k`` is not a positive integer.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    mask = np.asarray(batch["mask"])
    valid = mask > 0
    from_end = np.cumsum(valid[:, ::-1], axis=1)[:, ::-1]
    keep = valid & (from_end <= k)
    order = np.argsort(~keep, axis=1, kind="stable")
    kept = np.take_along_axis(keep, order, 1)
    out = _move(batch, order, kept)
    out["mask"] = kept.astype(mask.dtype)
    return out
