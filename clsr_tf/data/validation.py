"""The validation pass: every data file is checked before the first epoch.

Each file streams once through the loader's own ``LineParser`` (what is checked is what the
loader reads: 8 fields, numbers that are finite, labels 0/1, histories of equal length), and
then by its role:

- ``train``: every line a positive (label 1; its negatives are drawn in batch), and enough
  lines with ``min_seq_length`` history entries for a training batch;
- ``eval`` (valid, test): groups of one positive followed by ``num_ngs`` negatives that share
  its user, timestamp and history, and only whole groups;
- ``lines`` (a file to score): parsing alone.

``check_info`` compares a prepared folder's ``dataset_info.json`` with the hyper-parameters
(max_seq_length, time unit, negatives per positive). Every failure is a ``DataFormatError``
naming file, line and field. A verdict is kept in memory under the file's (path, size,
mtime_ns) and the check's settings, so a file is read once per process however often it is
checked. Each check returns legal counts worth knowing: lines, ids missing from the
vocabularies (read as index 0) and histories longer than max_seq_length.
"""

import json
import os

import numpy as np

from clsr_tf.data import batching
from clsr_tf.data.contract import TIME_RANGE, vocab_paths
from clsr_tf.data.errors import DataFormatError
from clsr_tf.data.writers import INFO_FILE

ROLES = ("train", "eval", "lines")
# Time unit of the hyper-parameters -> unit of the timestamps in the files.
TIMESTAMP_UNIT = {"recommenders": "s", "s": "s", "ms": "ms"}
# What the rows of a group share, and the line field each key comes from.
GROUP_FIELDS = {"users": "user", "time": "timestamp", "length": "item_history",
                "item_history": "item_history", "item_cate_history": "category_history",
                "time_diff": "time_history", "time_from_first_action": "time_history",
                "time_to_now": "time_history"}
_CHUNK_BYTES = 1 << 22
_VERDICTS = {}


def fingerprint(path):
    """(absolute path, size, mtime_ns) of a file: a changed file gets a new verdict."""
    stat = os.stat(path)
    return os.path.abspath(path), stat.st_size, stat.st_mtime_ns


def check_info(hp):
    """Fail unless the prepared folder's ``dataset_info.json`` fits the hyper-parameters.

    Args:
        hp (dict): Validated hyper-parameters (``data_dir``, ``max_seq_length``,
            ``time_unit``, ``valid_num_ngs``, ``test_num_ngs``).

    Returns:
        dict: The info (None when ``data_dir`` holds no ``dataset_info.json``).

    Raises:
        DataFormatError: Naming ``dataset_info.json`` and the key that does not fit.
    """
    path = os.path.join(hp["data_dir"] or "", INFO_FILE)
    if not hp["data_dir"] or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        info = json.load(f)
    options = info.get("options", {})
    again = "prepare it again (--force-prepare, or prepare_data(hp, force=True)) or set"
    length = options.get("max_seq_length")
    if length is not None and length != hp["max_seq_length"]:
        raise DataFormatError(path, None, "max_seq_length", (
            f"the data set was prepared with max_seq_length {length} (a history keeps its "
            f"first entry and its last {length}), but the hyper-parameters have "
            f"{hp['max_seq_length']}; {again} max_seq_length: {length}"))
    unit = info.get("time_unit")
    if unit is not None and TIMESTAMP_UNIT[hp["time_unit"]] != unit:
        fits = [k for k, v in TIMESTAMP_UNIT.items() if v == unit]
        raise DataFormatError(path, None, "time_unit", (
            f"the timestamps are in {unit!r}, but the hyper-parameters have time_unit "
            f"{hp['time_unit']!r}; set time_unit to {' or '.join(map(repr, fits))}"))
    for key in ("valid_num_ngs", "test_num_ngs"):
        if options.get(key) is not None and options[key] != hp[key]:
            raise DataFormatError(path, None, key, (
                f"the data set was prepared with {key} {options[key]} (groups of 1 + "
                f"{options[key]} lines), but the hyper-parameters have {hp[key]}; {again} "
                f"{key}: {options[key]}"))
    return info


class DataChecker:
    """The checks of one set of hyper-parameters (vocabularies, L, time unit).

    Args:
        hp (dict): Validated hyper-parameters.
        parser (LineParser): The loader's parser (default: one built from ``hp``).
    """

    def __init__(self, hp, parser=None):
        self.hp = hp
        self._parser = parser
        self.max_seq_length = int(hp["max_seq_length"])
        self.min_seq_length = int(hp["min_seq_length"])
        self.settings = (self.max_seq_length, TIME_RANGE.get(hp["time_unit"]),
                         tuple(fingerprint(p) for p in vocab_paths(hp).values()))

    @property
    def parser(self):
        """The ``LineParser`` (built on first use)."""
        if self._parser is None:
            from clsr_tf.data.loader import line_parser

            self._parser = line_parser(self.hp)
        return self._parser

    def check(self, path, role="lines", num_ngs=0, ngs_key="num_ngs"):
        """Check one file (once per process and version of the file).

        Args:
            path (str): A Recommenders sequential file.
            role (str): ``train``, ``eval`` or ``lines`` (see the module docstring).
            num_ngs (int): Negatives per positive of an ``eval`` file.
            ngs_key (str): The hyper-parameter ``num_ngs`` comes from (for messages).

        Returns:
            tuple: (counts dict: ``lines``, ``unknown_users``, ``unknown_items``,
            ``unknown_categories``, ``long_histories``; whether the file was read now).

        Raises:
            FileNotFoundError: The file does not exist.
            DataFormatError: The first problem, naming file, line and field.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: data file not found")
        version = (fingerprint(path), self.settings)
        key = version + (role, num_ngs if role == "eval" else 0,
                         self.min_seq_length if role == "train" else 0)
        if key in _VERDICTS:
            return dict(_VERDICTS[key]), False
        if not os.path.getsize(path):
            raise DataFormatError(path, None, None, "an empty file (no lines)")
        counts = dict(lines=0, unknown_users=0, unknown_items=0, unknown_categories=0,
                      long_histories=0)
        groups = _Groups(path, num_ngs, ngs_key) if role == "eval" else None
        usable = 0
        for ragged in self.parser.parse_file(path, _CHUNK_BYTES):
            first = counts["lines"] + 1
            if role == "train":
                _all_positive(path, ragged["labels"], first)
                usable += int((ragged["length"] >= self.min_seq_length).sum())
            if groups is not None:
                groups.feed(batching.pad(ragged, self.max_seq_length), first)
            counts["lines"] += batching.size(ragged)
            counts["unknown_users"] += int((ragged["users"] == 0).sum())
            counts["unknown_items"] += int((ragged["items"] == 0).sum()
                                           + (ragged["item_history"] == 0).sum())
            counts["unknown_categories"] += int((ragged["cates"] == 0).sum()
                                                + (ragged["item_cate_history"] == 0).sum())
            counts["long_histories"] += int((ragged["length"] > self.max_seq_length).sum())
        if groups is not None:
            groups.finish(counts["lines"])
        if role == "train" and usable < batching.MIN_TRAIN_LINES:
            raise DataFormatError(path, None, "item_history", (
                f"{usable} of {counts['lines']} lines have at least min_seq_length "
                f"{self.min_seq_length} history entries; a training batch needs "
                f"{batching.MIN_TRAIN_LINES}"))
        _VERDICTS[key] = _VERDICTS[version + ("lines", 0, 0)] = dict(counts)  # it parsed
        return counts, True

    def check_files(self, files):
        """Check several files and print one line of counts if any was read now.

        Args:
            files (dict): name -> (path, role) or (path, role, num_ngs, ngs_key); the
                names key the report.

        Returns:
            dict: name -> counts (see ``check``).
        """
        report, fresh = {}, False
        for name, spec in files.items():
            report[name], read = self.check(*spec)
            fresh |= read
        if fresh and report:
            print(summary(report, self.max_seq_length), flush=True)
        return report


def summary(report, max_seq_length):
    """One line of a report: lines checked, unknown ids, long histories.

    Args:
        report (dict): name (or path) -> counts (``DataChecker.check``).
        max_seq_length (int): History entries the model reads.

    Returns:
        str: The line.
    """
    files = ", ".join(f"{os.path.basename(name)} ({c['lines']} lines)"
                      for name, c in report.items())
    total = {k: sum(c[k] for c in report.values()) for k in next(iter(report.values()))}
    return (f"data checked: {files}; ids not in the vocabularies (read as 0): "
            f"{total['unknown_users']} users, {total['unknown_items']} items, "
            f"{total['unknown_categories']} categories; {total['long_histories']} histories "
            f"longer than max_seq_length {max_seq_length} (their last {max_seq_length} "
            "entries are read)")


def _all_positive(path, labels, first_line):
    """Fail at the first train line whose label is not 1."""
    off = np.flatnonzero(labels != 1)
    if off.size:
        raise DataFormatError(path, first_line + int(off[0]), "label", (
            f"{int(labels[off[0]])} in a train file: every train line is a positive (label "
            "1), its negatives are drawn in batch from the other lines (train_num_ngs)"))


class _Groups:
    """The group check of an ``eval`` file, chunk after chunk.

    Args:
        path (str): The file.
        num_ngs (int): Negatives per positive.
        ngs_key (str): The hyper-parameter of ``num_ngs`` (for messages).
    """

    def __init__(self, path, num_ngs, ngs_key):
        if num_ngs < 1:
            raise ValueError(f"{ngs_key} must be a positive number of negatives, got {num_ngs}")
        self.path, self.num_ngs, self.ngs_key = path, int(num_ngs), ngs_key
        self.size = self.num_ngs + 1
        self.head = None  # the last group's positive: key -> its row

    def _error(self, line, field, message):
        return DataFormatError(self.path, line, field, message + (
            f"; the file holds groups of {self.size} lines: 1 positive + {self.ngs_key} "
            f"{self.num_ngs} negatives of the same user and history"))

    def feed(self, block, first_line):
        """Check one block of padded lines that starts at line ``first_line``."""
        n = batching.size(block)
        rows = np.arange(n)
        position = (first_line - 1 + rows) % self.size
        heads = np.maximum.accumulate(np.where(position == 0, rows, -1))
        problems = []  # (row, order, field, message)
        wrong = np.flatnonzero(block["labels"] != (position == 0))
        if wrong.size:
            r = int(wrong[0])
            line, start = first_line + r, first_line + r - int(position[r])
            problems.append((r, 0, "label", (
                f"0, but line {line} starts a group (groups out of line: a line missing "
                "or extra above it, or the wrong number of negatives)") if position[r] == 0
                else (f"1 at row {int(position[r]) + 1} of the group that starts at line "
                      f"{start}")))
        for order, (key, field) in enumerate(GROUP_FIELDS.items(), 1):
            values = block[key]
            own = heads >= 0
            same = np.ones(n, dtype=bool)
            if own.any():
                same[own] = _rows_equal(values[own], values[heads[own]])
            if not own.all() and self.head is not None:
                same[~own] = _rows_equal(values[~own], self.head[key][None])
            differ = np.flatnonzero(~same)
            if differ.size:
                r = int(differ[0])
                start = first_line + r - int(position[r])
                problems.append((r, order, field,
                                 f"differs from the group's positive (line {start})"))
        if problems:
            r, _, field, message = min(problems)
            raise self._error(first_line + r, field, message)
        if heads[-1] >= 0:
            self.head = {key: block[key][heads[-1]] for key in GROUP_FIELDS}

    def finish(self, lines):
        """Fail unless ``lines`` lines are whole groups."""
        rest = lines % self.size
        if rest:
            raise self._error(lines - rest + 1, "label", (
                f"the last group has {rest} of its {self.size} lines ({lines} lines are not "
                "whole groups)"))


def _rows_equal(a, b):
    """Whether each row of ``a`` equals the row of ``b`` (broadcast)."""
    equal = a == b
    return equal.reshape(len(a), -1).all(axis=1) if equal.ndim > 1 else equal

