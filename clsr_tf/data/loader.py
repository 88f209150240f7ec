"""Fast streaming reader of Recommenders sequential files into named numpy batches.

``FastBatches`` yields the same batches as Recommenders' ``SequentialIterator`` (through
``RecommendersBatches``) without per-line Python: each text chunk is split into tokens on
its raw bytes with numpy, ids are looked up through a hash index of the vocabulary's
UTF-8 keys (verified byte for byte, so the lookup is exact), plain-digit numbers are parsed
arithmetically, and the time features are computed on the flat history arrays. Files are
read in bounded chunks, so memory does not grow with the file; the training order comes
from a bounded, seeded shuffle buffer instead of a whole-file shuffle.

Line format: ``label<TAB>user<TAB>item<TAB>cate<TAB>timestamp<TAB>item_hist<TAB>cate_hist
<TAB>time_hist``, the three histories comma-separated and of equal length.
"""

import glob
import hashlib
import json
import os
import pickle
import shutil
import uuid
import warnings

import numpy as np
import pandas as pd

from clsr_tf.data.errors import DataFormatError
from clsr_tf.data.iterator import TIME_RANGE, BatchReader, vocab_paths

# Tab-separated fields of a line, in order (names used in DataFormatError).
FIELDS = ("label", "user", "item", "category", "timestamp", "item_history",
          "category_history", "time_history")

# Per-line arrays and flat (history) arrays of a parsed chunk.
_LINE_KEYS = ("labels", "users", "items", "cates", "time", "length")
_FLAT_KEYS = ("item_history", "item_cate_history", "time_diff", "time_from_first_action",
              "time_to_now")

_CACHE_VERSION = 1
_FRONT = 24  # bytes before a chunk, so 16-byte reads ending at a token stay in bounds
_MASKS = np.array([(1 << (8 * i)) - 1 for i in range(9)], dtype=np.uint64)
_ZEROS = np.uint64(0x3030303030303030)  # "00000000"
_KEEP, _FILL = ~_MASKS, _MASKS & _ZEROS  # keep the top bytes, fill the low ones with "0"
_SIXES = np.uint64(0x0606060606060606)
# What str.strip() removes: ASCII whitespace bytes and the UTF-8 of the other spaces.
_ASCII_SPACE = np.array([chr(c).isspace() for c in range(256)]) & (np.arange(256) < 128)
_EDGE = _ASCII_SPACE | (np.arange(256) >= 128)
_SPACES = [np.frombuffer(chr(c).encode("utf-8"), dtype=np.uint8)
           for c in range(128, 0x3001) if chr(c).isspace()]


def _ranges(starts, counts):
    """Concatenation of ``arange(s, s + c)`` over the pairs, vectorised.

    Args:
        starts (np.ndarray): First value of each range.
        counts (np.ndarray): Length of each range.

    Returns:
        np.ndarray: int64 array of ``counts.sum()`` values.
    """
    ends = np.cumsum(counts)
    return np.arange(ends[-1] if len(ends) else 0) + np.repeat(starts - (ends - counts), counts)


def _words(padded, starts, lengths, n_words):
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
    out[:, 0] = view[starts] & _MASKS[np.minimum(lengths, 8)]
    for j in range(1, n_words):
        out[:, j] = view[starts + 8 * j] & _MASKS[np.clip(lengths - 8 * j, 0, 8)]
    return out


def _mix(keys):
    """A bijective scramble of uint64 keys (ASCII bytes hash poorly in pandas' table)."""
    keys = keys * np.uint64(0x9E3779B97F4A7C15)
    keys ^= keys >> np.uint64(29)
    return keys


def _hash(words, lengths, seed):
    """A 64-bit hash of (length, words) per token.

    Args:
        words (np.ndarray): uint64 [tokens, n_words] from ``_words``.
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


class _Vocab:
    """Exact lookup of byte tokens in one vocabulary (raw id -> index, unknown -> 0).

    Keys of up to 8 bytes are indexed by their bytes as one uint64, longer ones by a hash of
    their bytes; every hit is checked against the key's length (and bytes, for long keys).

    Args:
        mapping (dict): The vocabulary pickle's dict; only ``str`` keys can match text.
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
        words = _words(padded, np.cumsum(lengths) - lengths, lengths, self.n_words)
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
        """
        if not len(starts) or not len(index):
            return np.zeros(len(starts), dtype=np.int32)
        if key_words is None:
            words = _words(padded, starts, lengths, 1)
            pos = index.get_indexer(_mix(words[:, 0]))  # -1 (absent) reads the sentinel
            if not verify:
                return key_values[pos]
        else:
            words = _words(padded, starts, np.minimum(lengths, 8 * self.n_words), self.n_words)
            pos = index.get_indexer(_hash(words, lengths, self.seed))
        same = key_lengths[pos] == lengths
        if key_words is not None:
            same &= (key_words[pos] == words).all(axis=1)
        return np.where(same, key_values[pos], 0).astype(np.int32, copy=False)


def _with_sentinel(words, lengths, values):
    """(words, lengths, values) of a table with a last row that matches no token."""
    return (np.concatenate([words, np.zeros((1, words.shape[1]), dtype=words.dtype)]),
            np.append(lengths, -1), np.append(values, 0).astype(np.int32))


def _normalize(data):
    """Apply the iterator's ``str.strip`` calls (line, and the three history fields).

    Args:
        data (bytes): Chunk of whole lines, each ending in a newline.

    Returns:
        bytes: The same lines, stripped.
    """
    out = []
    for line in data.decode("utf-8").split("\n")[:-1]:
        words = line.strip().split("\t")
        if len(words) == len(FIELDS):
            words[5:] = [w.strip() for w in words[5:]]
        out.append("\t".join(words))
    return ("\n".join(out) + "\n").encode("utf-8")


def _slice(block, start, stop):
    return {k: v[start:stop] for k, v in block.items()}


def _take(block, index):
    return {k: v[index] for k, v in block.items()}


def _concat(blocks):
    return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}


def _size(block):
    return len(block["labels"])


class FastBatches(BatchReader):
    """Batches of a Recommenders sequential file, parsed with vectorised numpy.

    Args:
        hp (dict): Validated hyper-parameters (vocab paths, ``data_dir``, ``batch_size``,
            ``max_seq_length``, ``min_seq_length``, ``time_unit``; ``seed`` if ``seed`` is None).
        shuffle_buffer (int): Lines in the training shuffle buffer; 0 keeps file order.
        cache_dir (str): Where parsed arrays are cached as .npy shards; None disables it.
        seed (int): Seed of the shuffle and the negative sampling; None takes ``hp["seed"]``.
        chunk_bytes (int): Bytes of text parsed at a time.
        shard_bytes (int): Approximate size of one cache shard.
        prefetch (int): Batches that ``dataset`` prefetches.
    """

    def __init__(self, hp, shuffle_buffer=20000, cache_dir=None, seed=None,
                 chunk_bytes=1 << 20, shard_bytes=1 << 26, prefetch=2):
        if hp["time_unit"] not in TIME_RANGE:
            raise ValueError(f"time_unit must be one of {list(TIME_RANGE)}, "
                             f"got {hp['time_unit']!r}")
        self.paths = vocab_paths(hp)
        self.max_seq_length = int(hp["max_seq_length"])
        self.batch_size = int(hp["batch_size"])
        self.min_seq_length = int(hp["min_seq_length"])
        self.time_range = TIME_RANGE[hp["time_unit"]]
        self.shuffle_buffer = int(shuffle_buffer)
        self.cache_dir = cache_dir
        self.seed = int(seed if seed is not None else hp["seed"] if "seed" in hp else 0)
        self.chunk_bytes = int(chunk_bytes)
        self.shard_bytes = int(shard_bytes)
        self.prefetch = prefetch
        self.passes = 0
        vocabs = []
        for key in ("user_vocab", "item_vocab", "cate_vocab"):
            with open(self.paths[key], "rb") as f:
                vocabs.append(_Vocab(pickle.load(f)))
        self.users, self.items, self.cates = vocabs
        self.back = 8 * max(v.n_words for v in vocabs) + 8

    # ---- public API ------------------------------------------------------------------

    def __call__(self, path, batch_num_ngs=0, seed=None):
        """Yield batches of one file.

        Args:
            path (str): A Recommenders sequential file.
            batch_num_ngs (int): In-batch negatives per positive (training, shuffled) or 0
                (file order, labels as in the file).
            seed (int): Seed of this pass's shuffle and negatives; None derives one from the
                constructor's seed and the number of passes so far.

        Yields:
            dict: name -> np.ndarray, dtypes as ``BATCH_SPEC``.
        """
        rng = np.random.default_rng([self.seed, self.passes] if seed is None else seed)
        self.passes += 1
        blocks = self._blocks(path)
        if batch_num_ngs > 0 and self.shuffle_buffer > 0:
            blocks = self._shuffled(blocks, rng)
        for block in self._rebatched(blocks):
            if batch_num_ngs <= 0:
                yield self._eval_batch(block)
            elif _size(block) >= 5:
                batch = self._train_batch(block, batch_num_ngs, rng)
                if batch is not None:
                    yield batch

    # ---- batches ---------------------------------------------------------------------

    def _mask(self, length):
        """1.0 on the valid (left-aligned) history positions."""
        kept = np.minimum(length, self.max_seq_length)
        return (np.arange(self.max_seq_length) < kept[:, None]).astype(np.float32)

    def _eval_batch(self, block):
        """One row per line, labels from the file."""
        batch = {k: block[k] for k in ("users", "items", "cates", "time") + _FLAT_KEYS}
        batch["labels"] = block["labels"].reshape(-1, 1)
        batch["mask"] = self._mask(block["length"])
        return batch

    def _train_batch(self, block, num_ngs, rng):
        """Positive + ``num_ngs`` in-batch negatives per line, as ``_convert_data`` does.

        Args:
            block (dict): One batch of lines.
            num_ngs (int): Negatives per positive.
            rng (np.random.Generator): Source of the negatives.

        Returns:
            dict: The batch, or None when every line has the same item (no negative exists;
            Recommenders' rejection sampling would loop forever there).
        """
        n, group = _size(block), 1 + num_ngs
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
        batch = {k: block[k][rows] for k in ("users", "time") + _FLAT_KEYS}
        batch["items"] = items[candidates]
        batch["cates"] = block["cates"][candidates]
        batch["labels"] = np.tile(np.eye(1, group, dtype=np.float32)[0], n).reshape(-1, 1)
        batch["mask"] = self._mask(block["length"])[rows]
        return batch

    def _rebatched(self, blocks):
        """Regroup blocks into ``batch_size`` lines (the last batch may be smaller)."""
        size, carry = self.batch_size, None
        for block in blocks:
            n, start = _size(block), 0
            if carry is not None:
                start = min(n, size - _size(carry))
                carry = _concat([carry, _slice(block, 0, start)])
                if _size(carry) < size:
                    continue
                yield carry
                carry = None
            full = start + (n - start) // size * size
            for a in range(start, full, size):
                yield _slice(block, a, a + size)
            if full < n:
                carry = _slice(block, full, n)
        if carry is not None:
            yield carry

    def _shuffled(self, blocks, rng):
        """Shuffle lines through a bounded pool.

        Once the pool holds twice ``shuffle_buffer`` lines, all but a random
        ``shuffle_buffer`` of them leave in random order, so each line is copied a few times
        rather than once per block.
        """
        pool, size = [], 0
        for block in blocks:
            pool.append(block)
            size += _size(block)
            if size >= 2 * self.shuffle_buffer:
                lines, perm = _concat(pool), rng.permutation(size)
                yield _take(lines, perm[self.shuffle_buffer:])
                pool, size = [_take(lines, perm[:self.shuffle_buffer])], self.shuffle_buffer
        if size:
            yield _take(_concat(pool), rng.permutation(size))

    # ---- blocks (padded, filtered lines) ---------------------------------------------

    def _blocks(self, path):
        """Padded blocks of the lines that pass ``min_seq_length``, in file order."""
        width = self.max_seq_length
        lines = max(256, (1 << 25) // (20 * width))  # about 32 MB of padded arrays
        for ragged in self._ragged(path):
            for part in _split(ragged, lines, width):
                block = self._pad(part)
                if self.min_seq_length > 1:
                    block = _take(block, block["length"] >= self.min_seq_length)
                if _size(block):
                    yield block

    def _pad(self, ragged):
        """A block: left-aligned, zero-padded [lines, L] histories from the flat arrays."""
        n, width = len(ragged["labels"]), self.max_seq_length
        kept = np.minimum(ragged["length"], width).astype(np.int64)
        cells = _ranges(np.arange(n) * width, kept)
        block = {k: np.array(ragged[k]) for k in _LINE_KEYS}
        for key in _FLAT_KEYS:
            out = np.zeros(n * width, dtype=ragged[key].dtype)
            out[cells] = ragged[key]
            block[key] = out.reshape(n, width)
        return block

    # ---- parsing ---------------------------------------------------------------------

    def _chunks(self, path):
        """Yield UTF-8 bytes of whole lines, each ending in a newline.

        Line ends are read as text mode reads them: CR LF and a lone CR become LF.
        """
        with open(path, "rb") as f:
            while True:
                data = f.read(self.chunk_bytes)
                if not data:
                    return
                if not data.endswith(b"\n"):
                    data += f.readline()
                if b"\r" in data:
                    data = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
                    data = data.encode("utf-8")
                elif not data.isascii():
                    data.decode("utf-8")  # raises on bytes that are not UTF-8
                if not data.endswith(b"\n"):
                    data += b"\n"
                yield data

    def _parse_chunk(self, path, data, first_line, normalized=False):
        """Parse whole lines into per-line and flat (truncated) history arrays.

        Args:
            path (str): File name, for errors.
            data (bytes): Lines, each ending in a newline.
            first_line (int): 1-based line number of the first line.
            normalized (bool): Whether ``_normalize`` has already been applied.

        Returns:
            dict: ``_LINE_KEYS`` arrays per line and ``_FLAT_KEYS`` arrays of the last
            ``max_seq_length`` history entries of each line, line after line.

        Raises:
            DataFormatError: On the first malformed line.
        """
        # Positions are offsets in ``padded``: the chunk after _FRONT bytes whose last one is a
        # comma, so that token k starts after separator k - 1 (token 0 after that comma).
        padded = np.empty(_FRONT + len(data) + self.back, dtype=np.uint8)
        padded[:_FRONT] = 0
        padded[_FRONT - 1] = 44
        padded[_FRONT:_FRONT + len(data)] = np.frombuffer(data, dtype=np.uint8)
        padded[_FRONT + len(data):] = 0
        region = padded[_FRONT - 1:_FRONT + len(data)]
        is_sep = region == 9
        is_sep |= region == 10
        is_sep |= region == 44
        bounds = np.flatnonzero(is_sep) + (_FRONT - 1)  # bounds[k + 1] ends token k
        sep = bounds[1:]
        kind = padded[sep]
        nl_tok = np.flatnonzero(kind == 10)
        newlines = sep[nl_tok]
        n = len(newlines)
        line_starts = np.concatenate([[_FRONT], newlines[:-1] + 1])
        if not normalized and _has_edge_space(padded, line_starts, newlines):
            return self._parse_chunk(path, _normalize(data), first_line, True)
        tab_tok = np.flatnonzero(kind == 9)
        n_fields = np.diff(np.searchsorted(tab_tok, nl_tok), prepend=0) + 1
        bad = np.flatnonzero(n_fields != len(FIELDS))
        if bad.size:
            r = int(bad[0])
            if r:
                self._parse_chunk(path, data[:line_starts[r] - _FRONT], first_line, normalized)
            found = int(n_fields[r])
            what = ("an empty line" if newlines[r] == line_starts[r]
                    else f"{found} tab-separated fields")
            raise DataFormatError(path, first_line + r, FIELDS[min(found, len(FIELDS) - 1)],
                                  f"{what}, expected {len(FIELDS)}")
        tabs = tab_tok.reshape(n, len(FIELDS) - 1)
        history_starts = sep[tabs[:, 4:]] + 1
        history_ends = np.stack([sep[tabs[:, 5]], sep[tabs[:, 6]], newlines], axis=1)
        if not normalized and _has_edge_space(padded, history_starts.ravel(),
                                              history_ends.ravel()):
            return self._parse_chunk(path, _normalize(data), first_line, True)
        # A comma before the fifth tab is part of a label/user/item/category/timestamp token.
        if (tabs[:, 4] - np.concatenate([[0], nl_tok[:-1] + 1]) != 4).any():
            commas = np.flatnonzero(kind == 44)
            sep = np.delete(sep, commas[commas < tabs[np.searchsorted(nl_tok, commas), 4]])
            bounds = np.concatenate([[_FRONT - 1], sep])
            kind = padded[sep]
            nl_tok = np.flatnonzero(kind == 10)
            tabs = np.flatnonzero(kind == 9).reshape(n, len(FIELDS) - 1)

        def span(tok):
            first = bounds[tok] + 1
            return first, sep[tok] - first

        errors = []
        counts = (tabs[:, 5] - tabs[:, 4], tabs[:, 6] - tabs[:, 5], nl_tok - tabs[:, 6])
        for rank, count in ((6, counts[1]), (7, counts[2])):
            wrong = np.flatnonzero(count != counts[0])
            if wrong.size:
                r = int(wrong[0])
                errors.append((r, rank, f"{int(count[r])} entries, but item_history has "
                                        f"{int(counts[0][r])}"))

        def numbers(tok, rank, integer=False):
            values, k, text = _numbers(data, padded, *span(tok), integer)
            if k is not None:
                errors.append((int(np.searchsorted(nl_tok, tok[k])), rank,
                               f"not {'an integer' if integer else 'a number'} ({text!r})"))
            return values

        labels = numbers(tabs[:, 0], 0, integer=True)
        now = numbers(tabs[:, 4], 4)
        times = numbers(_ranges(tabs[:, 6] + 1, counts[2]), 7)
        if errors:
            r, rank, message = min(errors)
            raise DataFormatError(path, first_line + r, FIELDS[rank], message)

        length = counts[0]
        kept = np.minimum(length, self.max_seq_length)
        nul = b"\0" in data

        def ids(vocab, tok):
            return vocab.lookup(padded, *span(tok), nul)

        out = {
            "labels": labels.astype(np.float32),
            "users": ids(self.users, tabs[:, 1]),
            "items": ids(self.items, tabs[:, 2]),
            "cates": ids(self.cates, tabs[:, 3]),
            "time": now.astype(np.float32),
            "length": length.astype(np.int32),
            "item_history": ids(self.items, _ranges(tabs[:, 5] + 1 - kept, kept)),
            "item_cate_history": ids(self.cates, _ranges(tabs[:, 6] + 1 - kept, kept)),
        }
        out.update(self._time_features(times, now, length, kept))
        return out

    def _time_features(self, times, now, length, kept):
        """Log day-scaled gaps of the kept (last L) history entries, as ``parser_one_line``.

        Args:
            times (np.ndarray): float64 time history of all lines, flat.
            now (np.ndarray): float64 target timestamp per line.
            length (np.ndarray): Full history length per line.
            kept (np.ndarray): Entries kept per line (``min(length, L)``).

        Returns:
            dict: ``time_diff``, ``time_from_first_action``, ``time_to_now`` (flat float32).
        """
        first = np.cumsum(length) - length
        idx = _ranges(first + length - kept, kept)
        line = np.repeat(np.arange(len(length)), kept)
        t = times[idx]
        current = now[line]
        following = np.where(idx == (first + length - 1)[line], current,
                             times[np.minimum(idx + 1, len(times) - 1)])
        day = self.time_range
        return {
            "time_diff": np.log(np.maximum((following - t) / day, 0.5)).astype(np.float32),
            "time_from_first_action": np.log(np.maximum(
                (following - times[first][line]) / day, 0.5)).astype(np.float32),
            "time_to_now": np.log(np.maximum((current - t) / day, 0.5)).astype(np.float32),
        }

    # ---- parsed chunks, from the text or the cache -------------------------------------

    def _parse(self, path):
        """Parsed chunks of a file, in order."""
        line = 1
        for data in self._chunks(path):
            ragged = self._parse_chunk(path, data, line)
            line += len(ragged["labels"])
            yield ragged

    def _ragged(self, path):
        """Parsed chunks from the cache if it is complete, else parsed (and cached)."""
        chunks = self._parse(path)
        if self.cache_dir is None:
            yield from chunks
            return
        final, prefix = self._cache_paths(path)
        manifest = _read_manifest(final)
        if manifest is not None:
            yield from _read_shards(final, manifest)
            return
        shutil.rmtree(final, ignore_errors=True)  # damaged: rebuilt below
        writer = _CacheWriter(final, prefix, self.shard_bytes)
        try:
            for ragged in chunks:
                writer.add(ragged)
                yield ragged
            writer.commit()
        finally:
            writer.close()

    def _cache_paths(self, path):
        """(cache folder of this file and hparams, prefix shared by all its versions)."""
        source = os.path.abspath(path)
        key = {"version": _CACHE_VERSION, "source": _fingerprint(source),
               "max_seq_length": self.max_seq_length, "time_range": self.time_range,
               "vocabs": [_fingerprint(os.path.abspath(self.paths[k]))
                          for k in ("user_vocab", "item_vocab", "cate_vocab")]}
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        prefix = os.path.join(
            self.cache_dir,
            f"{os.path.basename(source)}-{hashlib.sha1(source.encode()).hexdigest()[:8]}-")
        return prefix + digest, prefix


def _has_edge_space(padded, starts, ends):
    """Whether any non-empty span [start, end) of the chunk begins or ends with whitespace.

    Args:
        padded (np.ndarray): The chunk, after ``_FRONT`` bytes.
        starts (np.ndarray): Span starts (offsets in ``padded``).
        ends (np.ndarray): Span ends (offsets in ``padded``).

    Returns:
        bool: True where ``str.strip`` would change a span.
    """
    full = ends > starts
    first, last = starts[full], ends[full]
    head, tail = padded[first], padded[last - 1]
    if not (_EDGE[head].any() or _EDGE[tail].any()):
        return False
    if _ASCII_SPACE[head].any() or _ASCII_SPACE[tail].any():
        return True
    lead, trail = first[head >= 0xC2], last[tail >= 0x80]
    for space in _SPACES:
        k = len(space)
        if ((padded[lead[:, None] + np.arange(k)] == space).all(axis=1).any()
                or (padded[trail[:, None] - k + np.arange(k)] == space).all(axis=1).any()):
            return True
    return False


def _digits8(words):
    """Values of 8 ASCII digits per uint64 word (first digit in the lowest byte), by SWAR.

    Args:
        words (np.ndarray): uint64 words.

    Returns:
        tuple: (int64 values, bool array: every byte is a digit).
    """
    high = words & np.uint64(0xF0F0F0F0F0F0F0F0)
    ok = (high == _ZEROS) & (((words + _SIXES) & np.uint64(0xF0F0F0F0F0F0F0F0)) == _ZEROS)
    v = words - _ZEROS
    v = (v * np.uint64(10) + (v >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    v = (v * np.uint64(100) + (v >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    v = (v * np.uint64(10000) + (v >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
    return v.astype(np.int64), ok


def _numbers(data, padded, starts, lengths, integer):
    """Parse tokens as Python's ``float`` (or ``int``) does.

    Digit strings of up to 16 digits are parsed with SWAR arithmetic (exact in int64, then
    rounded to float64 like ``float``); anything else goes through Python.

    Args:
        data (bytes): The chunk.
        padded (np.ndarray): The chunk, after ``_FRONT`` bytes.
        starts (np.ndarray): Token starts (offsets in ``padded``).
        lengths (np.ndarray): Token lengths.
        integer (bool): Parse as ``int`` instead of ``float``.

    Returns:
        tuple: (float64 values, index of the first unparsable token or None, its text).
    """
    view = np.ndarray((padded.size - 7,), dtype="<u8", buffer=padded, strides=(1,))
    ends = starts + lengths
    # Last 8 and previous 8 characters of each token, bytes before its start set to "0".
    low_pad = np.minimum(np.maximum(8 - lengths, 0), 8)
    high_pad = np.minimum(np.maximum(16 - lengths, 0), 8)
    low = (view[ends - 8] & _KEEP[low_pad]) | _FILL[low_pad]
    high = (view[ends - 16] & _KEEP[high_pad]) | _FILL[high_pad]
    low, low_ok = _digits8(low)
    high, high_ok = _digits8(high)
    values = (high * 100000000 + low).astype(np.float64)
    fast = low_ok & high_ok & (lengths >= 1) & (lengths <= 16)
    parse = int if integer else float
    for k in np.flatnonzero(~fast):
        text = data[starts[k] - _FRONT:starts[k] - _FRONT + lengths[k]].decode("utf-8")
        try:
            values[k] = parse(text)
        except (ValueError, OverflowError):
            return values, k, text
    return values, None, None


def _split(ragged, lines, width):
    """Split a parsed chunk into parts of at most ``lines`` lines.

    Args:
        ragged (dict): Per-line and flat arrays of a parsed chunk.
        lines (int): Most lines per part.
        width (int): max_seq_length (entries kept per line).

    Yields:
        dict: Parts of the chunk, in order.
    """
    n = len(ragged["labels"])
    if n <= lines:
        yield ragged
        return
    offsets = np.concatenate([[0], np.cumsum(np.minimum(ragged["length"], width))])
    for a in range(0, n, lines):
        b = min(a + lines, n)
        part = {k: ragged[k][a:b] for k in _LINE_KEYS}
        part.update({k: ragged[k][offsets[a]:offsets[b]] for k in _FLAT_KEYS})
        yield part


def _fingerprint(path):
    """Path, size, mtime and a hash of the head and tail of a file."""
    stat = os.stat(path)
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        digest.update(f.read(1 << 16))
        f.seek(max(0, stat.st_size - (1 << 16)))
        digest.update(f.read(1 << 16))
    return [path, stat.st_size, stat.st_mtime_ns, digest.hexdigest()]


def _read_manifest(folder):
    """The manifest of a complete cache folder whose shards all check out, else None."""
    try:
        with open(os.path.join(folder, "manifest.json")) as f:
            manifest = json.load(f)
        for i, shard in enumerate(manifest["shards"]):
            for key in _LINE_KEYS + _FLAT_KEYS:
                rows = shard["lines"] if key in _LINE_KEYS else shard["entries"]
                array = np.load(_shard_file(folder, i, key), mmap_mode="r")
                if array.shape != (rows,):
                    return None
        return manifest
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _shard_file(folder, index, key):
    return os.path.join(folder, f"{index:05d}.{key}.npy")


def _read_shards(folder, manifest):
    """Yield the cached chunks, memory-mapped."""
    for i in range(len(manifest["shards"])):
        yield {k: np.load(_shard_file(folder, i, k), mmap_mode="r")
               for k in _LINE_KEYS + _FLAT_KEYS}


class _CacheWriter:
    """Writes parsed chunks as .npy shards into a temporary folder, renamed on commit.

    Args:
        final (str): Cache folder to create.
        prefix (str): Name prefix of older versions of the same file's cache, removed on commit.
        shard_bytes (int): Bytes gathered before a shard is written.
    """

    def __init__(self, final, prefix, shard_bytes):
        self.final, self.prefix, self.shard_bytes = final, prefix, shard_bytes
        self.tmp = f"{final}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.makedirs(self.tmp)
        self.parts, self.bytes, self.shards = [], 0, []

    def add(self, ragged):
        """Queue one parsed chunk, writing a shard once enough bytes are queued."""
        self.parts.append(ragged)
        self.bytes += sum(v.nbytes for v in ragged.values())
        if self.bytes >= self.shard_bytes:
            self._flush()

    def _flush(self):
        if not self.parts:
            return
        index = len(self.shards)
        merged = {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}
        for key, array in merged.items():
            np.save(_shard_file(self.tmp, index, key), array)
        self.shards.append({"lines": len(merged["labels"]),
                            "entries": len(merged["item_history"])})
        self.parts, self.bytes = [], 0

    def commit(self):
        """Write the last shard and the manifest, then move the folder into place."""
        self._flush()
        with open(os.path.join(self.tmp, "manifest.json"), "w") as f:
            json.dump({"version": _CACHE_VERSION, "shards": self.shards}, f)
        try:
            os.rename(self.tmp, self.final)
        except OSError:  # another process finished the same cache first
            return
        for old in glob.glob(glob.escape(self.prefix) + "*"):
            if old != self.final and ".tmp-" not in old:
                shutil.rmtree(old, ignore_errors=True)

    def close(self):
        """Remove the temporary folder if it was not committed."""
        shutil.rmtree(self.tmp, ignore_errors=True)
