"""The preparation protocol: interactions -> the lines of a Recommenders sequential data set.

``prepare_interactions`` applies the common protocol (shared/DESIGN.md section 5):

1. optional k-core filtering of users and items, iterated until stable;
2. one category per item (its most frequent one, ties to the smallest id);
3. each user's interactions sorted by time with a stable sort (ties keep the input order);
4. history expanding: every interaction that has an earlier one of the same user becomes a line
   whose history is all the earlier interactions, in any period; the line goes to train, valid
   or test by its own timestamp t: t < valid_start, valid_start <= t < test_start, t >= test_start;
5. each history keeps its first entry plus its last ``max_seq_length`` entries (whole when it has
   at most max_seq_length + 1): exact, since a model reads only the last max_seq_length entries
   and time_from_first_action is measured from the first;
6. train: positive lines only (label 1; the training loader samples in-batch negatives), in a
   seeded random order; valid/test: a seeded random fraction of the positive lines, each
   followed by ``num_ngs`` negative lines (same user, history and timestamp, label 0) whose
   items are drawn by popularity over all interactions after filtering, never the positive and
   never twice in one group.

The folder is written atomically (``clsr_tf.files.atomic_dir``) by ``clsr_tf.data.writers``:

- ``train_data``, ``valid_data``, ``test_data``: one tab-separated line per instance,
  ``label user item cate timestamp item_history cate_history time_history`` (histories comma
  separated, oldest first, timestamps as integers); valid/test lines ordered by user id (string
  order), then time, each group as positive then its negatives;
- ``<file>.meta.tsv``: a header then one row per line of ``<file>`` with ``behavior`` and the
  extra columns of the interactions (e.g. rating, source), all describing the group's positive
  interaction (negative lines repeat it, so filtering on a column keeps whole groups);
- ``user_vocab.pkl``, ``item_vocab.pkl``, ``category_vocab.pkl``: pickled dicts id -> index,
  0 for "default_uid" / "default_mid" / "default_cat" (unknown ids), the others from 1 by
  descending number of interactions, ties by id; built from all interactions after filtering;
- ``dataset_info.json``: counts, boundaries, options, time unit.
"""

import datetime
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from clsr_tf.data import writers
from clsr_tf.files import atomic_dir

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("user", "item", "cate", "time", "behavior")
DEFAULT_IDS = {"user": "default_uid", "item": "default_mid", "cate": "default_cat"}

_ID_COLUMNS = ("user", "item", "cate")
_NEG_ROWS_PER_BLOCK = 65_536


def kcore_mask(users, items, min_user_count, min_item_count):
    """The interactions that survive iterated k-core filtering.

    Each pass drops the interactions of items with fewer than ``min_item_count``
    interactions, then those of users with fewer than ``min_user_count``; passes repeat until
    nothing changes. On ml-latest-small with 10/10 the first pass is already stable (670 users,
    2,245 items, 81,906 ratings); filtering users first would give 671 / 2,245 / 81,915.

    Args:
        users (np.ndarray): Integer user code of each interaction.
        items (np.ndarray): Integer item code of each interaction.
        min_user_count (int): Least interactions a kept user has.
        min_item_count (int): Least interactions a kept item has.

    Returns:
        np.ndarray: Boolean mask of the kept interactions.
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
    """An id column as a categorical of sorted string categories, each checked.

    Args:
        values (array-like): The ids.
        column (str): ``user``, ``item`` or ``cate``.

    Returns:
        pd.Categorical: The ids, categories in string order.

    Raises:
        ValueError: An id is not a string, is empty, reserved, has surrounding whitespace,
            a tab, a comma or a line break.
    """
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
            f"a tab, comma or newline, or is the reserved {DEFAULT_IDS[column]!r}")
    return categorical.reorder_categories(np.sort(names.to_numpy(dtype=object)))


def _codes(categorical):
    """(int64 codes, category names) of a categorical, unused categories dropped."""
    categorical = categorical.remove_unused_categories()
    return categorical.codes.astype(np.int64), categorical.categories.to_numpy(dtype=object)


def _item_categories(items, cates, n_items):
    """The most frequent category code of each item code (ties to the smallest code)."""
    width = int(cates.max(initial=0)) + 1
    unique_pairs, counts = np.unique(items * width + cates, return_counts=True)
    pair_items, pair_cates = np.divmod(unique_pairs, width)
    order = np.lexsort((pair_cates, -counts, pair_items))
    first = np.unique(pair_items[order], return_index=True)[1]
    item_cate = np.empty(n_items, dtype=np.int64)
    item_cate[pair_items[order][first]] = pair_cates[order][first]
    return item_cate


class Interactions:
    """Filtered, encoded interactions sorted by (user, time).

    Args:
        frame (pd.DataFrame): ``REQUIRED_COLUMNS`` plus extra columns for the sidecars.
        min_user_count (int): k-core threshold for users.
        min_item_count (int): k-core threshold for items.

    Attributes:
        user, item, cate, time (np.ndarray): Per interaction; codes index ``names``.
        names (dict): ``user``/``item``/``cate`` -> np.ndarray of id strings, sorted.
        item_cate (np.ndarray): Category code of each item code.
        first (np.ndarray): Row of each interaction's user's first interaction.
        meta (pd.DataFrame): behavior and extra columns, in the same row order.
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

    def vocab(self, column):
        """The vocabulary of an id column: default id -> 0, then by descending count, ties by id.

        Args:
            column (str): ``user``, ``item`` or ``cate``.

        Returns:
            dict: id -> index.
        """
        names = self.names[column]
        order = np.lexsort((np.arange(len(names)), -self.counts(column)))
        vocab = {DEFAULT_IDS[column]: 0}
        vocab.update(zip(names[order].tolist(), range(1, len(names) + 1)))
        return vocab

    def line_writer(self, max_seq_length):
        """A ``writers.LineWriter`` of these interactions.

        Args:
            max_seq_length (int): History entries kept besides the first one.

        Returns:
            writers.LineWriter: The writer.
        """
        return writers.LineWriter(self.names, self.user, self.item, self.cate, self.time,
                                  self.first, self.item_cate, max_seq_length)


def sample_negatives(rng, positives, probabilities, num_ngs):
    """Draw ``num_ngs`` distinct items per positive, by popularity, never the positive itself.

    Oversamples a matrix of draws, keeps the first occurrence of each item in a row that is not
    the positive, and redraws (with twice the width) the few rows left short.

    Args:
        rng (np.random.Generator): Random source.
        positives (np.ndarray): Positive item code of each group.
        probabilities (np.ndarray): Sampling probability of each item code.
        num_ngs (int): Negatives per group.

    Returns:
        np.ndarray: int64 [len(positives), num_ngs] item codes.
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


# Why a folder is not prepared into unasked, and how to ask.
NOT_A_DATA_SET = (f"holds other files but no {writers.INFO_FILE}, so it is no data set prepared "
                  "by clsr_tf; to prepare one there, replacing them, pass --force-prepare "
                  "(python -m clsr_tf.train) or force=True (clsr_tf.datasets.prepare_data, "
                  "clsr_tf.data.registry.prepare_dataset)")


def existing_info(out_dir, force):
    """The info of a complete data set in ``out_dir`` (unless ``force``), else None.

    Args:
        out_dir (Path): The output folder.
        force (bool): Ignore a complete data set there.

    Returns:
        dict: Its ``dataset_info.json``, or None.

    Raises:
        FileExistsError: ``out_dir`` holds other files but no complete data set, and not
            ``force``.
    """
    if (out_dir / writers.INFO_FILE).is_file() and not force:
        return writers.read_info(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise FileExistsError(f"{out_dir} {NOT_A_DATA_SET}")
    return None


def _boundaries(time, valid_start, test_start, split_quantiles):
    """The split boundaries, from quantiles of the timestamps where not given."""
    if valid_start is None:
        valid_start = int(np.quantile(time, split_quantiles[0], method="higher"))
    if test_start is None:
        test_start = int(np.quantile(time, split_quantiles[1], method="higher"))
    if valid_start > test_start:
        raise ValueError(f"valid_start {valid_start} is after test_start {test_start}")
    return int(valid_start), int(test_start)


def _utc(timestamp, time_unit):
    """ISO 8601 UTC text of a timestamp in seconds ("s") or milliseconds ("ms")."""
    seconds = timestamp / (1000 if time_unit == "ms" else 1)
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat()


def jsonable(value):
    """``value`` with tuples turned into lists and numpy scalars into Python ones.

    Args:
        value (object): Nested dicts, lists, tuples and scalars.

    Returns:
        object: The same structure in JSON types.
    """
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _split_lines(data, options, valid_start, test_start, seed):
    """(labels, target rows, target items) of the lines of each split.

    Args:
        data (Interactions): The interactions.
        options (dict): ``{split}_sample_rate`` and ``{split}_num_ngs`` of valid and test.
        valid_start (int): First timestamp of the valid period.
        test_start (int): First timestamp of the test period.
        seed (int): Seed of the line order, line sampling and negative sampling.

    Returns:
        dict: split -> (labels, rows, items), int64 arrays of one entry per line.
    """
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
        negatives = sample_negatives(np.random.default_rng(seeds[2 * k - 1]), data.item[rows],
                                     popularity, num_ngs)
        items = np.concatenate([data.item[rows, None], negatives], axis=1).ravel()
        labels = np.tile(np.r_[1, np.zeros(num_ngs, dtype=np.int64)], len(rows))
        lines[split] = (labels, np.repeat(rows, num_ngs + 1), items)
    return lines


def prepare_interactions(interactions, out_dir, *, max_seq_length, seed=42, force=False,
                         valid_start=None, test_start=None, split_quantiles=(0.8, 0.9),
                         min_user_count=0, min_item_count=0, eval_sample_rate=1.0,
                         valid_sample_rate=None, test_sample_rate=None, valid_num_ngs=4,
                         test_num_ngs=99, time_unit="s", name="custom", extra_info=None):
    """Apply the common protocol to an interactions DataFrame and write the data set.

    Args:
        interactions (pd.DataFrame): user, item, cate (str ids without tab, comma or
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
    existing = existing_info(out_dir, force)
    if existing is not None:
        logger.info("%s already holds a prepared data set; skipping (--force-prepare or "
                    "force=True rebuilds)", out_dir)
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
    data = Interactions(interactions, min_user_count, min_item_count)
    valid_start, test_start = _boundaries(data.time, valid_start, test_start, split_quantiles)
    lines = _split_lines(data, options, valid_start, test_start, seed)
    info = jsonable({
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
            "lines": {split: int(len(lines[split][0])) for split in writers.SPLITS},
            "positives": {split: int(lines[split][0].sum()) for split in writers.SPLITS},
        },
        "options": options,
        "meta_columns": list(data.meta.columns),
        "files": {
            **writers.DATA_FILES,
            **{f"{column}_vocab": writers.VOCAB_FILES[column] for column in _ID_COLUMNS},
        },
        **(extra_info or {}),
    })
    line_writer = data.line_writer(max_seq_length)
    with atomic_dir(out_dir) as tmp:
        tmp = Path(tmp)
        for split in writers.SPLITS:
            labels, rows, items = lines[split]
            line_writer.write(tmp / writers.DATA_FILES[split], labels, rows, items)
            writers.write_meta(tmp / (writers.DATA_FILES[split] + writers.META_SUFFIX),
                               data.meta, rows)
        for column in _ID_COLUMNS:
            writers.write_vocab(tmp / writers.VOCAB_FILES[column], data.vocab(column))
        writers.write_info(tmp / writers.INFO_FILE, info)
    logger.info("prepared %s in %s: %s", name, out_dir, info["counts"])
    return info
