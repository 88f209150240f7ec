"""Dataset preparation: interactions -> Microsoft Recommenders sequential-format files.

The common protocol (DESIGN.md section 5), applied by `prepare_interactions`:

1. optional k-core filtering of users and items, iterated until stable;
2. one category per item (its most frequent one, ties to the smallest id);
3. each user's interactions sorted by time with a stable sort (ties keep the input order);
4. history expanding: every interaction that has an earlier one of the same user becomes a line
   whose history is all the earlier interactions, in any period; the line goes to train, valid
   or test by its own timestamp t: t < valid_start, valid_start <= t < test_start, t >= test_start;
5. each history keeps its first entry plus its last ``max_seq_length`` entries (whole when it has
   at most max_seq_length + 1): exact, since a model reads only the last max_seq_length entries
   and time_from_first_action is measured from the first;
6. train: positive lines only (label 1; the training loader samples in-batch negatives);
   valid/test: a seeded random fraction of the positive lines, each followed by ``num_ngs``
   negative lines (same user, history and timestamp, label 0) whose items are drawn by popularity
   over all interactions after filtering, never the positive and never twice in one group.

Files written into ``out_dir`` (atomically: built in a temporary directory beside it and renamed
into place):

- ``train_data``, ``valid_data``, ``test_data``: one tab-separated line per instance,
  ``label user item cate timestamp item_history cate_history time_history`` (histories comma
  separated, oldest first, timestamps as integers); lines ordered by user id (string order), then
  time, valid/test lines grouped as positive then its negatives;
- ``<file>.meta.tsv``: a header then one row per line of ``<file>`` with ``behavior`` and the
  extra columns of the interactions (e.g. rating, source), all describing the group's positive
  interaction (negative lines repeat it, so filtering on a column keeps whole groups);
- ``user_vocab.pkl``, ``item_vocab.pkl``, ``category_vocab.pkl``: pickled dicts id -> index,
  0 for "default_uid" / "default_mid" / "default_cat" (unknown ids), the others from 1 by
  descending number of interactions, ties by id; built from all interactions after filtering;
- ``dataset_info.json``: counts, boundaries, options, time unit.
"""

import datetime
import json
import logging
import os
import pickle
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from clsr_tf.data import raw
from clsr_tf.data.synthetic import generate_synthetic

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
DATA_FILES = {"train": "train_data", "valid": "valid_data", "test": "test_data"}
VOCAB_FILES = {"user": "user_vocab.pkl", "item": "item_vocab.pkl", "cate": "category_vocab.pkl"}
DEFAULT_IDS = {"user": "default_uid", "item": "default_mid", "cate": "default_cat"}
INFO_FILE = "dataset_info.json"
META_SUFFIX = ".meta.tsv"
REQUIRED_COLUMNS = ("user", "item", "cate", "time", "behavior")

_ID_COLUMNS = ("user", "item", "cate")
_CONST = np.frombuffer(b"01\t\n", dtype=np.uint8)
_TAB, _NEWLINE = 2, 3
_SEGMENTS = 19
_LINES_PER_BLOCK = 65_536
_BYTES_PER_GATHER = 1 << 20
_NEG_ROWS_PER_BLOCK = 65_536


def kcore_mask(users, items, min_user_count, min_item_count):
    """Finds the interactions that survive iterated k-core filtering.

    Each pass drops the interactions of items with fewer than `min_item_count` interactions,
    then those of users with fewer than `min_user_count`; passes repeat until nothing changes.
    On ml-latest-small with 10/10 the first pass is already stable (670 users, 2,245 items,
    81,906 ratings); filtering users first would give 671 / 2,245 / 81,915.

    Args:
        users (numpy.ndarray): Integer user code of each interaction.
        items (numpy.ndarray): Integer item code of each interaction.
        min_user_count (int): Least interactions a kept user has.
        min_item_count (int): Least interactions a kept item has.

    Returns:
        numpy.ndarray: Boolean mask of the kept interactions.
    """
    keep = np.ones(len(users), dtype=bool)
    while True:
        before = int(keep.sum())
        for codes, least in ((items, min_item_count), (users, min_user_count)):
            if least > 1:
                counts = np.bincount(codes[keep], minlength=int(codes.max(initial=-1)) + 1)
                keep &= counts[codes] >= least
        if int(keep.sum()) == before:
            return keep


def _sorted_categorical(values, column):
    """Turns an id column into a categorical whose categories are sorted strings, checking them."""
    categorical = pd.Categorical(values)
    if len(categorical.categories) and pd.api.types.infer_dtype(categorical.categories) != "string":
        raise ValueError(f"column {column!r}: ids must be strings")
    names = categorical.categories
    text = pd.Series(names)
    bad = text.str.contains(r"[\t\n\r,]") | (text.str.strip() != text) | (text == "")
    bad |= text == DEFAULT_IDS[column]
    if bad.any():
        raise ValueError(
            f"column {column!r}: id {text[bad].iloc[0]!r} is empty, has surrounding whitespace, "
            f"a tab, comma or newline, or is the reserved {DEFAULT_IDS[column]!r}"
        )
    return categorical.reorder_categories(np.sort(names.to_numpy(dtype=object)))


def _codes(categorical):
    """Drops unused categories; returns (int64 codes, category names)."""
    categorical = categorical.remove_unused_categories()
    return categorical.codes.astype(np.int64), categorical.categories.to_numpy(dtype=object)


def _item_categories(items, cates, n_items):
    """Gives each item its most frequent category (ties to the smallest category code)."""
    width = int(cates.max(initial=0)) + 1
    unique_pairs, counts = np.unique(items * width + cates, return_counts=True)
    pair_items, pair_cates = np.divmod(unique_pairs, width)
    order = np.lexsort((pair_cates, -counts, pair_items))
    first = np.unique(pair_items[order], return_index=True)[1]
    item_cate = np.empty(n_items, dtype=np.int64)
    item_cate[pair_items[order][first]] = pair_cates[order][first]
    return item_cate


class _Interactions:
    """Filtered, encoded interactions sorted by (user, time).

    Attributes:
        user, item, cate, time (numpy.ndarray): Per interaction; codes index the names below.
        names (dict): "user"/"item"/"cate" -> numpy array of id strings, sorted.
        item_cate (numpy.ndarray): Category code of each item code.
        first (numpy.ndarray): Row of each interaction's user's first interaction.
        meta (pandas.DataFrame): behavior and extra columns, in the same row order.
        recategorised (int): Interactions whose category was replaced by the item's category.
    """

    def __init__(self, frame, min_user_count, min_item_count):
        missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
        if missing:
            raise ValueError(f"interactions lack the columns {missing}")
        if not pd.api.types.is_integer_dtype(frame["time"]):
            raise ValueError(f"column 'time' must hold integers, not {frame['time'].dtype}")
        time = frame["time"].to_numpy(dtype=np.int64)
        if len(time) == 0 or time.min() < 0:
            raise ValueError("interactions are empty or have negative timestamps")
        ids = {column: _sorted_categorical(frame[column], column) for column in _ID_COLUMNS}
        user, _ = _codes(ids["user"])
        item, _ = _codes(ids["item"])
        keep = kcore_mask(user, item, min_user_count, min_item_count)
        if not keep.any():
            raise ValueError("no interaction survives the k-core filter")
        self.names = {}
        codes = {}
        for column in _ID_COLUMNS:
            codes[column], self.names[column] = _codes(ids[column][keep])
        time = time[keep]
        order = np.argsort(time, kind="stable")
        order = order[np.argsort(codes["user"][order], kind="stable")]
        self.user, self.item, cate = (codes[column][order] for column in _ID_COLUMNS)
        self.time = time[order]
        item_cate = _item_categories(self.item, cate, len(self.names["item"]))
        self.recategorised = int((item_cate[self.item] != cate).sum())
        used, self.item_cate = np.unique(item_cate, return_inverse=True)
        self.names["cate"] = self.names["cate"][used]
        self.cate = self.item_cate[self.item]
        extras = [column for column in frame.columns if column not in REQUIRED_COLUMNS]
        self.meta = frame.loc[keep, ["behavior"] + extras].iloc[order].reset_index(drop=True)
        starts = np.flatnonzero(np.r_[True, self.user[1:] != self.user[:-1]])
        self.first = np.repeat(starts, np.diff(np.r_[starts, len(self.user)]))

    def __len__(self):
        return len(self.user)

    def counts(self, column):
        """Number of interactions of each code of an id column."""
        codes = {"user": self.user, "item": self.item, "cate": self.cate}[column]
        return np.bincount(codes, minlength=len(self.names[column]))


def _vocab(names, counts, default):
    """Builds id -> index: default -> 0, then by descending count, ties by id."""
    order = np.lexsort((np.arange(len(names)), -counts))
    vocab = {default: 0}
    vocab.update(zip(names[order].tolist(), range(1, len(names) + 1)))
    return vocab


def _sample_negatives(rng, positives, probabilities, num_ngs):
    """Draws `num_ngs` distinct items per positive, by popularity, never the positive itself.

    Oversamples a matrix of draws, keeps the first occurrence of each item in a row that is not
    the positive, and redraws (with twice the width) the few rows left short.

    Args:
        rng (numpy.random.Generator): Random source.
        positives (numpy.ndarray): Positive item code of each group.
        probabilities (numpy.ndarray): Sampling probability of each item code.
        num_ngs (int): Negatives per group.

    Returns:
        numpy.ndarray: int64 [len(positives), num_ngs] item codes.
    """
    if num_ngs > len(probabilities) - 1:
        raise ValueError(f"{num_ngs} negatives need more than {len(probabilities)} items")
    negatives = np.empty((len(positives), num_ngs), dtype=np.int64)
    if num_ngs == 0:
        return negatives
    cumulative = np.cumsum(probabilities)
    cumulative /= cumulative[-1]
    for block in range(0, len(positives), _NEG_ROWS_PER_BLOCK):
        todo = np.arange(block, min(block + _NEG_ROWS_PER_BLOCK, len(positives)))
        width = 2 * num_ngs + 8
        while todo.size:
            draws = np.searchsorted(cumulative, rng.random((todo.size, width)), side="right")
            draws = np.minimum(draws, len(probabilities) - 1)
            order = np.argsort(draws, axis=1, kind="stable")
            ranked = np.take_along_axis(draws, order, axis=1)
            first = np.ones_like(ranked, dtype=bool)
            first[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
            valid = np.empty_like(first)
            np.put_along_axis(valid, order, first, axis=1)
            valid &= draws != positives[todo, None]
            valid &= np.cumsum(valid, axis=1) <= num_ngs
            complete = valid.sum(axis=1) == num_ngs
            negatives[todo[complete]] = draws[complete][valid[complete]].reshape(-1, num_ngs)
            todo = todo[~complete]
            width *= 2
    return negatives


def _token_table(names):
    """Encodes ids as one buffer of ``id,`` tokens.

    Returns:
        tuple: (uint8 buffer, int64 start of each token, int64 byte length without the comma).
    """
    encoded = [name.encode("utf-8") for name in names]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    starts = np.cumsum(lengths + 1) - (lengths + 1)
    return np.frombuffer(b",".join(encoded) + b",", dtype=np.uint8), starts, lengths


def _gather(pool, starts, lengths):
    """Concatenates the byte segments pool[start:start + length], in order."""
    ends = np.cumsum(lengths)
    index = np.repeat(starts - (ends - lengths), lengths) + np.arange(ends[-1] if len(ends) else 0)
    return pool[index]


def _gather_rows(pool, starts, lengths):
    """Like `_gather` for a [rows, segments] layout, bounding the temporary index size."""
    row_bytes = lengths.sum(axis=1)
    bounds = np.searchsorted(
        np.cumsum(row_bytes), np.arange(_BYTES_PER_GATHER, row_bytes.sum(), _BYTES_PER_GATHER)
    )
    for rows in np.split(np.arange(len(row_bytes)), np.unique(bounds)):
        if rows.size:
            yield _gather(pool, starts[rows].ravel(), lengths[rows].ravel())


def _history_buffer(pool, starts, lengths):
    """Builds a buffer of comma-terminated tokens, one per interaction, with their offsets.

    Args:
        pool (numpy.ndarray): uint8 buffer the tokens are read from.
        starts (numpy.ndarray): [n, k] segment starts making each token (comma included).
        lengths (numpy.ndarray): [n, k] segment lengths.

    Returns:
        tuple: (uint8 buffer, int64 offsets [n + 1]: token j is buffer[off[j]:off[j + 1]]).
    """
    offsets = np.concatenate([[0], np.cumsum(lengths.sum(axis=1))])
    return np.concatenate(list(_gather_rows(pool, starts, lengths))), offsets


def _time_tokens(times):
    """Decimal text of non-negative integer timestamps as a comma-terminated token buffer."""
    digits = np.ones(len(times), dtype=np.int64)
    for power in 10 ** np.arange(1, 19, dtype=np.int64):
        digits += times >= power
    text = np.frombuffer(times.astype("S19").tobytes() + b",", dtype=np.uint8)
    rows = np.arange(len(times), dtype=np.int64)
    starts = np.stack([rows * 19, np.full_like(rows, len(text) - 1)], axis=1)
    lengths = np.stack([digits, np.ones_like(digits)], axis=1)
    return _history_buffer(text, starts, lengths)


class _LineWriter:
    """Assembles Recommenders sequential-format lines from token buffers."""

    def __init__(self, data, max_seq_length):
        self.data = data
        self.max_seq_length = max_seq_length
        tables = {column: _token_table(data.names[column]) for column in _ID_COLUMNS}
        item_hist = _history_buffer(
            tables["item"][0],
            tables["item"][1][data.item, None],
            tables["item"][2][data.item, None] + 1,
        )
        cate_hist = _history_buffer(
            tables["cate"][0],
            tables["cate"][1][data.cate, None],
            tables["cate"][2][data.cate, None] + 1,
        )
        time_hist = _time_tokens(data.time)
        parts = [_CONST] + [tables[column][0] for column in _ID_COLUMNS]
        parts += [item_hist[0], cate_hist[0], time_hist[0]]
        bases = np.cumsum([0] + [len(part) for part in parts[:-1]])
        self.pool = np.concatenate(parts)
        self.tokens = {
            column: (bases[1 + k] + tables[column][1], tables[column][2])
            for k, column in enumerate(_ID_COLUMNS)
        }
        self.histories = [
            (bases[4] + item_hist[1], item_hist[1]),
            (bases[5] + cate_hist[1], cate_hist[1]),
            (bases[6] + time_hist[1], time_hist[1]),
        ]

    def _segments(self, labels, rows, items):
        """Segment starts and lengths [n, 19] of the lines (label, target row, target item)."""
        data = self.data
        starts = np.full((len(rows), _SEGMENTS), _TAB, dtype=np.int64)
        lengths = np.ones((len(rows), _SEGMENTS), dtype=np.int64)
        starts[:, 0] = labels
        starts[:, 18] = _NEWLINE
        for column, codes, position in (
            ("user", data.user[rows], 2),
            ("item", items, 4),
            ("cate", data.item_cate[items], 6),
        ):
            starts[:, position] = self.tokens[column][0][codes]
            lengths[:, position] = self.tokens[column][1][codes]
        first = data.first[rows]
        truncated = rows - first > self.max_seq_length + 1
        recent = np.where(truncated, rows - self.max_seq_length, first)
        time_pool, time_offsets = self.histories[2]
        starts[:, 8] = time_pool[rows]
        lengths[:, 8] = time_offsets[rows + 1] - time_offsets[rows] - 1
        for position, (pool_offsets, offsets) in zip((10, 13, 16), self.histories):
            starts[:, position] = pool_offsets[first]
            lengths[:, position] = np.where(truncated, offsets[first + 1] - offsets[first], 0)
            starts[:, position + 1] = pool_offsets[recent]
            lengths[:, position + 1] = offsets[rows] - offsets[recent] - 1
        return starts, lengths

    def write(self, path, labels, rows, items):
        """Writes one line per (label, target row, target item) to `path`.

        Args:
            path (Path): Output file.
            labels (numpy.ndarray): 1 or 0 per line.
            rows (numpy.ndarray): Row of the target interaction (gives user, time and history).
            items (numpy.ndarray): Item code of each line's target.
        """
        with open(path, "wb") as handle:
            for block in range(0, len(rows), _LINES_PER_BLOCK):
                part = slice(block, block + _LINES_PER_BLOCK)
                starts, lengths = self._segments(labels[part], rows[part], items[part])
                for chunk in _gather_rows(self.pool, starts, lengths):
                    handle.write(memoryview(chunk))


def _existing_info(out_dir, force):
    """Returns the info of a complete data set in out_dir (unless force), else None.

    Raises:
        FileExistsError: out_dir holds other files but no complete data set, and not force.
    """
    info_path = out_dir / INFO_FILE
    if info_path.is_file() and not force:
        with open(info_path, encoding="utf-8") as handle:
            return json.load(handle)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise FileExistsError(
            f"{out_dir} is not empty and holds no {INFO_FILE}; use force=True to replace it"
        )
    return None


def _replace_dir(tmp, out_dir):
    """Moves a finished temporary directory into place, replacing out_dir if present."""
    if out_dir.exists():
        trash = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex}"
        os.replace(out_dir, trash)
        os.replace(tmp, out_dir)
        shutil.rmtree(trash)
    else:
        os.replace(tmp, out_dir)


def _boundaries(time, valid_start, test_start, split_quantiles):
    """Resolves the split boundaries, from quantiles of the timestamps where not given."""
    if valid_start is None:
        valid_start = int(np.quantile(time, split_quantiles[0], method="higher"))
    if test_start is None:
        test_start = int(np.quantile(time, split_quantiles[1], method="higher"))
    if valid_start > test_start:
        raise ValueError(f"valid_start {valid_start} is after test_start {test_start}")
    return int(valid_start), int(test_start)


def _write_meta(path, meta, rows):
    """Writes the meta sidecar: a header, then the meta row of each line's positive."""
    meta.iloc[rows].to_csv(path, sep="\t", index=False, lineterminator="\n")


def _utc(timestamp, time_unit):
    """ISO 8601 UTC text of a timestamp in seconds ("s") or milliseconds ("ms")."""
    seconds = timestamp / (1000 if time_unit == "ms" else 1)
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat()


def _jsonable(value):
    """Turns tuples and numpy scalars into JSON types."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def prepare_interactions(
    interactions,
    out_dir,
    *,
    max_seq_length,
    seed=42,
    force=False,
    valid_start=None,
    test_start=None,
    split_quantiles=(0.8, 0.9),
    min_user_count=0,
    min_item_count=0,
    eval_sample_rate=1.0,
    valid_sample_rate=None,
    test_sample_rate=None,
    valid_num_ngs=4,
    test_num_ngs=99,
    time_unit="s",
    name="custom",
    extra_info=None,
):
    """Applies the common protocol to an interactions DataFrame and writes the data set.

    Args:
        interactions (pandas.DataFrame): user, item, cate (str ids without tab, comma or
            surrounding whitespace), time (int), behavior, plus extra columns for the sidecars.
        out_dir (str or Path): Output directory.
        max_seq_length (int): History entries kept besides the first one.
        seed (int): Seed of line sampling and negative sampling.
        force (bool): Rebuild even if out_dir holds a complete data set.
        valid_start (int): First timestamp of the valid period; None: the split_quantiles[0]
            quantile of the timestamps after filtering (an observed timestamp).
        test_start (int): First timestamp of the test period; None: split_quantiles[1] quantile.
        split_quantiles (tuple): Quantiles used for missing boundaries.
        min_user_count (int): k-core threshold for users (0 or 1: no filter).
        min_item_count (int): k-core threshold for items (0 or 1: no filter).
        eval_sample_rate (float): Fraction of valid and test positive lines kept.
        valid_sample_rate (float): Overrides eval_sample_rate for valid.
        test_sample_rate (float): Overrides eval_sample_rate for test.
        valid_num_ngs (int): Negatives per valid positive.
        test_num_ngs (int): Negatives per test positive.
        time_unit (str): Unit of the timestamps ("s" or "ms"), recorded in the info.
        name (str): Data set name, recorded in the info.
        extra_info (dict): More entries for dataset_info.json.

    Returns:
        dict: The content of dataset_info.json.
    """
    out_dir = Path(out_dir)
    existing = _existing_info(out_dir, force)
    if existing is not None:
        logger.info("%s already holds a prepared data set; skipping (force=True rebuilds)", out_dir)
        return existing
    options = {
        "max_seq_length": max_seq_length,
        "seed": seed,
        "split_quantiles": split_quantiles,
        "min_user_count": min_user_count,
        "min_item_count": min_item_count,
        "valid_sample_rate": eval_sample_rate if valid_sample_rate is None else valid_sample_rate,
        "test_sample_rate": eval_sample_rate if test_sample_rate is None else test_sample_rate,
        "valid_num_ngs": valid_num_ngs,
        "test_num_ngs": test_num_ngs,
    }
    data = _Interactions(interactions, min_user_count, min_item_count)
    valid_start, test_start = _boundaries(data.time, valid_start, test_start, split_quantiles)
    has_history = np.arange(len(data)) > data.first
    period = np.searchsorted([valid_start, test_start], data.time, side="right")
    seeds = np.random.SeedSequence(seed).spawn(5)
    popularity = data.counts("item") / len(data)
    lines = {}
    # Train lines in a seeded random order, so that a loader's bounded shuffle buffer mixes
    # users (Recommenders' iterator shuffles whole files; a streaming loader cannot).
    rows = np.random.default_rng(seeds[4]).permutation(np.flatnonzero(has_history & (period == 0)))
    lines["train"] = (np.ones(len(rows), dtype=np.int64), rows, data.item[rows])
    for k, split in enumerate(("valid", "test"), start=1):
        rows = np.flatnonzero(has_history & (period == k))
        rate, num_ngs = options[f"{split}_sample_rate"], options[f"{split}_num_ngs"]
        if rate < 1.0:
            sampler = np.random.default_rng(seeds[2 * k - 2])
            rows = np.sort(sampler.choice(rows, size=int(round(rate * len(rows))), replace=False))
        negatives = _sample_negatives(
            np.random.default_rng(seeds[2 * k - 1]), data.item[rows], popularity, num_ngs
        )
        items = np.concatenate([data.item[rows, None], negatives], axis=1).ravel()
        labels = np.tile(np.r_[1, np.zeros(num_ngs, dtype=np.int64)], len(rows))
        lines[split] = (labels, np.repeat(rows, num_ngs + 1), items)

    writer = _LineWriter(data, max_seq_length)
    info = {
        "name": name,
        "format": "recommenders sequential: label, user, item, cate, timestamp, item_history, "
        "cate_history, time_history (tab separated; histories comma separated)",
        "time_unit": time_unit,
        "valid_start": valid_start,
        "test_start": test_start,
        "boundaries_utc": [_utc(value, time_unit) for value in (valid_start, test_start)],
        "split_rule": "train: t < valid_start; valid: valid_start <= t < test_start; "
        "test: t >= test_start (t: the line's target timestamp)",
        "history": "first entry + last max_seq_length entries",
        "counts": {
            "interactions": len(data),
            "users": len(data.names["user"]),
            "items": len(data.names["item"]),
            "cates": len(data.names["cate"]),
            "recategorised_interactions": data.recategorised,
            "lines": {split: int(len(lines[split][0])) for split in SPLITS},
            "positives": {split: int(lines[split][0].sum()) for split in SPLITS},
        },
        "options": options,
        "meta_columns": list(data.meta.columns),
        "files": {
            **DATA_FILES,
            **{f"{column}_vocab": VOCAB_FILES[column] for column in _ID_COLUMNS},
        },
        **(extra_info or {}),
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        for split in SPLITS:
            labels, rows, items = lines[split]
            writer.write(tmp / DATA_FILES[split], labels, rows, items)
            _write_meta(tmp / (DATA_FILES[split] + META_SUFFIX), data.meta, rows)
        for column in _ID_COLUMNS:
            vocab = _vocab(data.names[column], data.counts(column), DEFAULT_IDS[column])
            with open(tmp / VOCAB_FILES[column], "wb") as handle:
                pickle.dump(vocab, handle, protocol=4)
        with open(tmp / INFO_FILE, "w", encoding="utf-8") as handle:
            json.dump(_jsonable(info), handle, indent=2, sort_keys=True)
            handle.write("\n")
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("prepared %s in %s: %s", name, out_dir, info["counts"])
    return _jsonable(info)


DATASET_DEFAULTS = {
    "movielens": {
        "time_unit": "s",
        "reader": {"like_threshold": 4.0},
        "protocol": {
            "min_user_count": 10,
            "min_item_count": 10,
            "split_quantiles": (0.8, 0.9),
            "valid_sample_rate": 0.5,
            "test_sample_rate": 0.1,
        },
    },
    "taobao": {
        "time_unit": "s",
        "reader": {"behaviors": ("pv",), "start_date": "2017-11-25", "end_date": "2017-12-03"},
        "protocol": {"min_user_count": 10, "min_item_count": 10, "eval_sample_rate": 0.2},
    },
    "kuaishou": {
        "time_unit": "ms",
        "reader": {"behaviors": None, "default_behavior": "play"},
        "protocol": {"min_user_count": 10, "min_item_count": 10, "eval_sample_rate": 0.1},
    },
    "synthetic": {
        "time_unit": "s",
        "reader": {
            "n_users": 500,
            "n_items": 1000,
            "n_cates": 20,
            "interactions_per_user": 60,
            "n_favourites": 3,
            "burst_prob": 0.15,
            "burst_length": (3, 8),
            "burst_focus": 0.9,
            "popularity_exponent": 1.0,
        },
        "protocol": {
            "split_quantiles": (0.8, 0.9),
            "valid_sample_rate": 0.5,
            "test_sample_rate": 0.1,
        },
    },
}
"""Per data set: time unit, reader options and protocol options used unless overridden.

- movielens: the 10-core filter reproducing 670 users / 2,245 items / 81,906 ratings, global
  split at the 80% / 90% timestamp quantiles, half of the valid and a tenth of the test lines
  kept, so the embedded set prepares in seconds and its test file stays under ~100 MB with
  max_seq_length 50.
- taobao: clicks only, 2017-11-25 .. 2017-12-03 (UTC+8), 10-core, the day before the last day
  valid and the last day test, 20% of valid/test lines (the original CLSR setup).
- kuaishou: all behaviours, 10-core, first 6 days (UTC+8, from the first timestamp's day) train,
  the 7th day until noon valid and from noon on test, 10% of valid/test lines (the original).
- synthetic: 500 users x 60 interactions, no filter, 80% / 90% quantile split, small enough to
  prepare and train in seconds in a CI test.
"""

_PROTOCOL_OPTIONS = (
    "valid_start",
    "test_start",
    "split_quantiles",
    "min_user_count",
    "min_item_count",
    "eval_sample_rate",
    "valid_sample_rate",
    "test_sample_rate",
    "valid_num_ngs",
    "test_num_ngs",
)


def _read_raw(name, raw_path, seed, reader_options):
    """Reads a named data set's raw files (or generates the synthetic one)."""
    if name == "synthetic":
        if raw_path is not None:
            raise ValueError("the synthetic data set has no raw_path")
        return generate_synthetic(seed=seed, **reader_options)
    if name == "movielens":
        return raw.read_movielens(raw_path, **reader_options)
    if raw_path is None:
        raise ValueError(f"{name} needs raw_path (its raw files cannot be downloaded here)")
    if name == "taobao":
        return raw.read_taobao(raw_path, **reader_options)
    return raw.read_kuaishou(raw_path, **reader_options)


def _dataset_boundaries(name, interactions, reader_options):
    """Day-based boundaries of Taobao and Kuaishou; quantiles (None) for the others."""
    if name == "taobao":
        test_start = raw.local_day_start(reader_options["end_date"])
        return {"valid_start": test_start - 86_400, "test_start": test_start}
    if name == "kuaishou":
        day_ms = 86_400_000
        offset_ms = 8 * 3_600_000
        first_day = (int(interactions["time"].min()) + offset_ms) // day_ms * day_ms - offset_ms
        return {
            "valid_start": first_day + 6 * day_ms,
            "test_start": first_day + 6 * day_ms + day_ms // 2,
        }
    return {}


def prepare_dataset(name, raw_path, out_dir, *, max_seq_length, seed=42, force=False, **options):
    """Reads a named data set and prepares it with the common protocol.

    Args:
        name (str): "movielens", "taobao", "kuaishou" or "synthetic".
        raw_path (str or Path): MovieLens: directory of ratings.csv and movies.csv (None: the
            embedded ml-latest-small); Taobao: UserBehavior.csv; Kuaishou: the log csv;
            synthetic: None.
        out_dir (str or Path): Output directory.
        max_seq_length (int): History entries kept besides the first one.
        seed (int): Seed of the generator (synthetic), line and negative sampling.
        force (bool): Rebuild even if out_dir holds a complete data set.
        **options: Reader options (see the reader of the data set in `clsr_tf.data.raw` or
            `generate_synthetic`) and protocol options (see `prepare_interactions`) overriding
            DATASET_DEFAULTS; an `eval_sample_rate` also replaces default per-split rates.

    Returns:
        dict: The content of dataset_info.json.
    """
    if name not in DATASET_DEFAULTS:
        raise ValueError(f"unknown data set {name!r}; known: {sorted(DATASET_DEFAULTS)}")
    defaults = DATASET_DEFAULTS[name]
    unknown = set(options) - set(defaults["reader"]) - set(_PROTOCOL_OPTIONS)
    if unknown:
        raise TypeError(f"unknown options for {name}: {sorted(unknown)}")
    reader_options = {key: options.get(key, value) for key, value in defaults["reader"].items()}
    protocol_options = dict(defaults["protocol"])
    if "eval_sample_rate" in options:
        protocol_options.pop("valid_sample_rate", None)
        protocol_options.pop("test_sample_rate", None)
    protocol_options.update(
        {key: value for key, value in options.items() if key in _PROTOCOL_OPTIONS}
    )
    request = _jsonable(
        {
            "name": name,
            "max_seq_length": max_seq_length,
            "seed": seed,
            **reader_options,
            **protocol_options,
        }
    )

    out_dir = Path(out_dir)
    existing = _existing_info(out_dir, force)
    if existing is not None:
        if existing.get("request") != request:
            logger.warning(
                "%s was prepared with %s, not %s; pass force=True to rebuild",
                out_dir,
                existing.get("request"),
                request,
            )
        return existing
    interactions = _read_raw(name, raw_path, seed, reader_options)
    for key, value in _dataset_boundaries(name, interactions, reader_options).items():
        protocol_options.setdefault(key, value)
    if raw_path is None:
        raw_path = "embedded ml-latest-small" if name == "movielens" else None
    raw_info = {
        "raw_path": None if raw_path is None else str(raw_path),
        "raw_rows": interactions.attrs.get("rows_read", len(interactions)),
        "reader_options": reader_options,
        "request": request,
    }
    return prepare_interactions(
        interactions,
        out_dir,
        max_seq_length=max_seq_length,
        seed=seed,
        force=force,
        time_unit=defaults["time_unit"],
        name=name,
        extra_info=raw_info,
        **protocol_options,
    )
