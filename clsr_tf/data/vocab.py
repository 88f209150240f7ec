"""Exact lookup of byte tokens in a vocabulary pickle, vectorised.

Keys of up to 8 bytes are indexed by their bytes read as one uint64, longer ones by a 64-bit
hash of their bytes; every hit is checked against the key's length (and bytes, for long keys),
so the lookup is exact. The index is built once per vocabulary, which is what a library's set
lookup (``pyarrow.compute.index_in``) does not offer: it rebuilds its hash table on every call
(benchmarks/README.md, "Loader and writer: own code or a library").
"""

import os
import pickle

import numpy as np
import pandas as pd

from clsr_tf.data.errors import DataFormatError

# MASKS[i] keeps the low i bytes of a uint64.
MASKS = np.array([(1 << (8 * i)) - 1 for i in range(9)], dtype=np.uint64)


def token_words(padded, starts, lengths, n_words):
    """The bytes of each token as little-endian uint64 words, zeroed past its end.

    Args:
        padded (np.ndarray): uint8 buffer with at least ``8 * n_words`` spare bytes at the end.
        starts (np.ndarray): Token start offsets in ``padded``.
        lengths (np.ndarray): Token lengths in bytes, at most ``8 * n_words``.
        n_words (int): Words per token.

    Returns:
        np.ndarray: uint64 array [tokens, n_words].
    """
    view = np.ndarray((padded.size - 7,), dtype="<u8", buffer=padded, strides=(1,))
    out = np.empty((len(starts), n_words), dtype=np.uint64)
    out[:, 0] = view[starts] & MASKS[np.minimum(lengths, 8)]
    for j in range(1, n_words):
        out[:, j] = view[starts + 8 * j] & MASKS[np.clip(lengths - 8 * j, 0, 8)]
    return out


def _mix(keys):
    """A bijective scramble of uint64 keys (ASCII bytes hash poorly in pandas' table)."""
    keys = keys * np.uint64(0x9E3779B97F4A7C15)
    keys ^= keys >> np.uint64(29)
    return keys


def _hash(words, lengths, seed):
    """A 64-bit hash of (length, words) per token.

    Args:
        words (np.ndarray): uint64 [tokens, n_words] from ``token_words``.
        lengths (np.ndarray): Token lengths in bytes.
        seed (int): Hash family member.

    Returns:
        np.ndarray: uint64 hashes.
    """
    h = (lengths.astype(np.uint64) + np.uint64(seed)) * np.uint64(0xBF58476D1CE4E5B9)
    for j in range(words.shape[1]):
        h ^= words[:, j]
        h *= np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(29)
    return h


def _with_sentinel(words, lengths, values):
    """(words, lengths, values) of a table with a last row that matches no token."""
    return (np.concatenate([words, np.zeros((1, words.shape[1]), dtype=words.dtype)]),
            np.append(lengths, -1), np.append(values, 0).astype(np.int32))


def load_vocab(path):
    """A vocabulary pickle's dict (raw id -> index), checked.

    Args:
        path (str): A pickle written by ``clsr_tf.data.writers.write_vocab`` (or by
            Recommenders' data preparation).

    Returns:
        dict: The vocabulary.

    Raises:
        DataFormatError: The file is empty, truncated or not a pickle, or holds something
            other than a dict of integer indices.
    """
    try:
        with open(path, "rb") as f:
            vocab = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError) as err:
        what = "an empty file" if not os.path.getsize(path) else f"{type(err).__name__}: {err}"
        raise DataFormatError(path, None, None, f"not a vocabulary pickle ({what})") from None
    if not isinstance(vocab, dict):
        raise DataFormatError(path, None, None, f"the vocabulary pickle holds a "
                                                f"{type(vocab).__name__}, expected a dict of "
                                                "id -> index")
    bad = next((k for k, v in vocab.items() if not isinstance(v, (int, np.integer))
                or isinstance(v, bool) or v < 0), None)
    if bad is not None:
        raise DataFormatError(path, None, None, f"id {bad!r} has index {vocab[bad]!r}, "
                                                "expected a non-negative integer")
    return vocab


class ByteVocab:
    """Exact lookup of byte tokens in one vocabulary (raw id -> index, unknown -> 0).

    Args:
        mapping (dict): The vocabulary pickle's dict; only ``str`` keys can match text.

    Attributes:
        n_words (int): uint64 words of the longest key; a token buffer needs
            ``8 * n_words + 8`` spare bytes at its end.
    """

    def __init__(self, mapping):
        keys, values = [], []
        for key, value in mapping.items():
            if isinstance(key, str):
                try:
                    keys.append(key.encode("utf-8"))
                except UnicodeEncodeError:
                    continue
                values.append(value)
        lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
        values = np.asarray(values, dtype=np.int64).astype(np.int32)
        self.n_words = max(1, -(-int(lengths.max(initial=0)) // 8))
        total = int(lengths.sum())
        padded = np.zeros(total + 8 * self.n_words + 8, dtype=np.uint8)
        padded[:total] = np.frombuffer(b"".join(keys), dtype=np.uint8)
        words = token_words(padded, np.cumsum(lengths) - lengths, lengths, self.n_words)
        short = lengths <= 8
        self.short_nul = any(b"\0" in key for key in keys if len(key) <= 8)
        index = pd.Index(_mix(words[short, 0]))
        if not index.is_unique:  # keys that differ only in trailing NUL bytes
            short[:] = False
            index = pd.Index(_mix(words[short, 0]))
        _, short_lengths, short_values = _with_sentinel(words[short], lengths[short],
                                                        values[short])
        self.short = (index, None, short_lengths, short_values)
        long = ~short
        for seed in range(16):
            index = pd.Index(_hash(words[long], lengths[long], seed))
            if index.is_unique:
                break
        else:
            raise RuntimeError("vocabulary hash collisions under every seed")
        self.seed = seed
        self.long = (index,) + _with_sentinel(words[long], lengths[long], values[long])

    def lookup(self, padded, starts, lengths, nul):
        """Indices of tokens (0 where unknown).

        Args:
            padded (np.ndarray): uint8 buffer, ``8 * n_words + 8`` spare bytes at the end.
            starts (np.ndarray): Token start offsets in ``padded``.
            lengths (np.ndarray): Token lengths in bytes.
            nul (bool): Whether the tokens may hold NUL bytes.

        Returns:
            np.ndarray: int32 indices.
        """
        long = lengths > 8
        verify = nul or self.short_nul
        if not long.any():
            return self._find(padded, starts, lengths, verify, *self.short)
        out = np.empty(len(starts), dtype=np.int32)
        for tok, table in ((np.flatnonzero(long), self.long),
                           (np.flatnonzero(~long), self.short)):
            out[tok] = self._find(padded, starts[tok], lengths[tok], verify, *table)
        return out

    def _find(self, padded, starts, lengths, verify, index, key_words, key_lengths,
              key_values):
        """Look tokens up in one table (short keys if ``key_words`` is None, else long).

        Without NUL bytes a short token's masked word determines its length, so the length
        check is needed only when ``verify`` is set.

        Args:
            padded (np.ndarray): uint8 token buffer.
            starts (np.ndarray): Token start offsets in ``padded``.
            lengths (np.ndarray): Token lengths in bytes.
            verify (bool): Check lengths of short tokens too.
            index (pd.Index): The table's keys (mixed words or hashes).
            key_words (np.ndarray): Words of the long keys (None for the short table).
            key_lengths (np.ndarray): Key lengths, a sentinel -1 last.
            key_values (np.ndarray): Key indices, a sentinel 0 last.

        Returns:
            np.ndarray: int32 indices.
        """
        if not len(starts) or not len(index):
            return np.zeros(len(starts), dtype=np.int32)
        if key_words is None:
            words = token_words(padded, starts, lengths, 1)
            pos = index.get_indexer(_mix(words[:, 0]))  # -1 (absent) reads the sentinel
            if not verify:
                return key_values[pos]
        else:
            words = token_words(padded, starts, np.minimum(lengths, 8 * self.n_words),
                                self.n_words)
            pos = index.get_indexer(_hash(words, lengths, self.seed))
        same = key_lengths[pos] == lengths
        if key_words is not None:
            same &= (key_words[pos] == words).all(axis=1)
        return np.where(same, key_values[pos], 0).astype(np.int32, copy=False)
