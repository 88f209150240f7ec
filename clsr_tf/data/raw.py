"""Readers of raw data sets into the interactions DataFrame.

Every reader returns a DataFrame with the columns

- ``user``, ``item``, ``cate``: string ids (pandas categoricals of str) with a one-letter prefix
  naming the kind of id: ``u<user id>``, ``i<item id>``, ``c<category id>``, e.g. ``u12``,
  ``i345``, ``c7``; MovieLens categories are genre names (``cDrama``, ``cSci-Fi``), whitespace
  replaced by ``_`` (``c(no_genres_listed)``);
- ``time``: int64 timestamp in the data set's own unit (seconds for MovieLens and Taobao,
  milliseconds for the Kuaishou formats: kuaishou csv, KuaiRand, KuaiRec);
- ``behavior``: the kind of interaction (str);
- optional extra columns, carried into the meta sidecars by the preparation (MovieLens:
  ``rating``; synthetic: ``source``).

Malformed rows raise :class:`~clsr_tf.data.errors.DataFormatError` naming the file, the 1-based
line number and the field; no row is dropped silently. Line numbers count physical lines, so
they assume no quoted field spans several lines (true of every format read here). Rows a reader
leaves out on purpose (other behaviours, outside the period, not in the user sample) are counted
in ``attrs["rows_read"]`` and, by reason, ``attrs["left_out"]``. A reader of a new format builds
on ``read_csv_checked``, ``check_header`` (or ``require_columns``) and ``prefixed``.
"""

import bz2
import csv
import datetime
import gzip
import io
import lzma
import re
from pathlib import Path

import numpy as np
import pandas as pd

from clsr_tf.data.errors import DataFormatError

EMBEDDED_MOVIELENS = Path(__file__).resolve().parent / "embedded" / "ml-latest-small"
"""Directory of the embedded MovieLens latest-small copy (gzipped csv files)."""

TAOBAO_BEHAVIORS = ("pv", "buy", "cart", "fav")
"""Behaviour types of Taobao's UserBehavior.csv (pv is a click)."""

NO_CATEGORY = "(no_tag)"
"""Category entry of an item whose category list is empty (KuaiRand, KuaiRec)."""

UTC8 = datetime.timezone(datetime.timedelta(hours=8))
"""Asia/Shanghai time (no daylight saving), the local time of Taobao and Kuaishou logs."""

KUAISHOU_COLUMNS = {
    "user": ("user_id",),
    "item": ("item_id", "video_id", "photo_id"),
    "cate": ("cate_id", "category", "tag"),
    "time": ("timestamp",),
    "behavior": ("behavior",),
}
"""Accepted Kuaishou header names per interactions column, first match wins."""

_CHUNK_ROWS = 1_000_000
_EXTRA = "__extra_field__"
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_PARSER_RE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_INT_RE = r"\s*[+-]?\d+\s*"


def _first_row(mask):
    """Index of the first True of a boolean array."""
    return int(np.argmax(mask))


def _open_text(path):
    """A possibly compressed text file, open for reading."""
    opener = _OPENERS.get(Path(path).suffix, open)
    return opener(path, "rt", encoding="utf-8", newline="")


def _raw_fields(path, line, sep):
    """The fields of one line of a file, as the csv module splits them."""
    with _open_text(path) as fh:
        for number, text in enumerate(fh, start=1):
            if number == line:
                return next(csv.reader(io.StringIO(text), delimiter=sep), [])
    return []


def _field_count_problem(path, line, sep, n_fields):
    """What is wrong with a line's field count, or None when the count is right."""
    found = len(_raw_fields(path, line, sep))
    if found == n_fields:
        return None
    return f"wrong number of fields (found {found}, expected {n_fields})"


def _bad_rows(column, kind):
    """Boolean mask of the values of a str column that do not parse as ``kind``."""
    if kind == "str":
        return (column == "").to_numpy()
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(numbers)
    if kind == "int":
        bad |= ~column.str.fullmatch(_INT_RE).to_numpy(dtype=bool) | (np.abs(numbers) >= 2.0**63)
    return bad


def _value_problem(value, kind):
    """Why ``value`` is not a valid ``kind``."""
    if kind == "str" or value == "":
        return "empty"
    number = pd.to_numeric(value, errors="coerce")
    if kind == "int" and np.isfinite(number):
        return (f"out of the int64 range ({value!r})" if abs(number) >= 2.0**63
                else f"not an integer ({value!r})")
    return f"not a number ({value!r})"


def _parser_error(path, err, n_fields):
    """A pandas tokenizer error as a DataFormatError (a ValueError if it names no line)."""
    match = _PARSER_RE.search(str(err))
    if not match:
        return ValueError(f"{path}: {err}")
    line, found = int(match.group(2)), int(match.group(3))
    return DataFormatError(path, line, f"#{n_fields + 1}",
                           f"wrong number of fields (found {found}, expected {n_fields})")


def _chunks(path, columns, dtype, header, sep, chunksize):
    """Raw pandas chunks of a file, tokenizer errors raised as DataFormatError."""
    try:
        yield from pd.read_csv(path, sep=sep, header=None, skiprows=1 if header else 0,
                               names=list(columns) + [_EXTRA], dtype=dtype,
                               keep_default_na=False, index_col=False, skip_blank_lines=False,
                               chunksize=chunksize, engine="c")
    except pd.errors.ParserError as err:
        raise _parser_error(path, err, len(columns)) from None


def _first_problem(chunk, n_fields, kinds, typed):
    """The first malformed row of a chunk.

    Args:
        chunk (pd.DataFrame): A parsed chunk, with the sentinel column of extra fields.
        n_fields (int): Number of fields a row must have.
        kinds (dict): Kept fields, name -> kind.
        typed (bool): Whether int and float fields were parsed already (else all are str).

    Returns:
        tuple: (row position in the chunk, field name, kind), or None when all rows are fine.
    """
    problems = []
    extra = (chunk[_EXTRA] != "").to_numpy()
    if extra.any():
        problems.append((_first_row(extra), f"#{n_fields + 1}", "extra"))
    for name, kind in kinds.items():
        if kind == "text":
            continue
        if not typed or kind == "str":
            bad = _bad_rows(chunk[name], kind)
        elif kind == "float":
            bad = ~np.isfinite(chunk[name].to_numpy())
        else:
            continue
        if bad.any():
            problems.append((_first_row(bad), name, kind))
    return min(problems, key=lambda problem: problem[0]) if problems else None


def _problem_error(path, chunk, problem, first_line, sep, n_fields):
    """The DataFormatError of a problem found by ``_first_problem``."""
    row, field, kind = problem
    line = first_line + int(chunk.index[row])
    message = _field_count_problem(path, line, sep, n_fields)
    if message is None:
        message = ("unexpected extra field" if kind == "extra"
                   else _value_problem(str(chunk[field].iloc[row]), kind))
    return DataFormatError(path, line, field, message)


def _locate_bad_value(path, columns, kinds, header, sep, first_line):
    """The DataFormatError of the first value that failed typed parsing, or None."""
    dtype = {name: str for name in list(columns) + [_EXTRA]}
    for chunk in _chunks(path, columns, dtype, header, sep, _CHUNK_ROWS):
        problem = _first_problem(chunk, len(columns), kinds, typed=False)
        if problem is not None:
            return _problem_error(path, chunk, problem, first_line, sep, len(columns))
    return None


def read_csv_checked(path, columns, kinds, *, header, sep=",", chunksize=_CHUNK_ROWS):
    """Read a delimited file in chunks, checking every row.

    Args:
        path (str or Path): The file; ``.gz``, ``.bz2`` and ``.xz`` are decompressed.
        columns (list): Names of all the file's fields, in order.
        kinds (dict): Fields to keep, name -> "int", "float", "str" (non-empty) or "text"
            (any string, possibly empty).
        header (bool): Whether line 1 is a header (skipped; check it with ``check_header``).
        sep (str): Field separator.
        chunksize (int): Rows per chunk.

    Yields:
        pd.DataFrame: The kept fields of each chunk (int64, float64 or object), indexed by
        the 0-based row number over the whole file.

    Raises:
        DataFormatError: On a row with a wrong number of fields or an unparsable value.
    """
    first_line = 2 if header else 1
    dtype = {name: str for name in list(columns) + [_EXTRA]}
    dtype.update({name: {"int": "int64", "float": "float64"}.get(kind, str)
                  for name, kind in kinds.items()})
    chunks = _chunks(path, columns, dtype, header, sep, chunksize)
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except DataFormatError:
            raise
        except ValueError as err:
            located = _locate_bad_value(path, columns, kinds, header, sep, first_line)
            raise (located or ValueError(f"{path}: {err}")) from err
        problem = _first_problem(chunk, len(columns), kinds, typed=True)
        if problem is not None:
            raise _problem_error(path, chunk, problem, first_line, sep, len(columns))
        yield chunk[list(kinds)]


def read_header(path, sep=","):
    """The field names on line 1 of a delimited file.

    Args:
        path (str or Path): The file (possibly compressed).
        sep (str): Field separator.

    Returns:
        list: The names, stripped.
    """
    return [name.strip() for name in _raw_fields(path, 1, sep)]


def check_header(path, expected, sep=","):
    """Check that line 1 of a delimited file holds exactly the expected field names.

    Args:
        path (str or Path): The file (possibly compressed).
        expected (list): The field names, in order.
        sep (str): Field separator.

    Raises:
        DataFormatError: Naming the first field that differs.
    """
    found = read_header(path, sep)
    if found == list(expected):
        return
    for position, name in enumerate(expected):
        if position >= len(found) or found[position] != name:
            got = found[position] if position < len(found) else "nothing"
            raise DataFormatError(path, 1, name, f"header expected {name!r}, found {got!r}")
    raise DataFormatError(path, 1, f"#{len(expected) + 1}",
                          f"unexpected header fields {found[len(expected):]}")


def prefixed(values, prefix):
    """Raw ids as a categorical of prefixed string ids.

    Args:
        values (array-like): Raw ids (ints or strings).
        prefix (str): Prefix of every id, e.g. "u".

    Returns:
        pd.Categorical: ``prefix + str(value)`` for every value.
    """
    codes, uniques = pd.factorize(np.asarray(values))
    names = pd.Index(uniques).astype(str)
    return pd.Categorical.from_codes(codes, categories=prefix + names)


def _find_file(directory, name):
    """``name`` or ``name.gz`` in a directory."""
    for candidate in (Path(directory) / name, Path(directory) / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"neither {name} nor {name}.gz in {directory}")


def require_columns(path, names, sep=","):
    """The header of a delimited file, checked to name every field a reader needs.

    Args:
        path (str or Path): The file (possibly compressed).
        names (iterable): Field names that must be present (in any order, among others).
        sep (str): Field separator.

    Returns:
        list: All the field names on line 1.

    Raises:
        DataFormatError: Naming the first missing field.
    """
    header = read_header(path, sep)
    for name in names:
        if name not in header:
            raise DataFormatError(path, 1, name,
                                  f"no column {name!r} in the header (found {', '.join(header)})")
    return header


def _category_table(path, columns, id_field, list_field, separator, allow_empty):
    """A file of items and their category lists as a Series item id -> category id.

    The category is ``c`` + the list's first entry (list brackets and spaces stripped, inner
    whitespace replaced by ``_``); an empty list gives ``NO_CATEGORY`` when ``allow_empty``.
    """
    kinds = {id_field: "int", list_field: "text" if allow_empty else "str"}
    table = pd.concat(read_csv_checked(path, columns, kinds, header=True))
    duplicated = table[id_field].duplicated().to_numpy()
    if duplicated.any():
        row = _first_row(duplicated)
        raise DataFormatError(path, row + 2, id_field,
                              f"duplicate id {table[id_field].iloc[row]}")
    first = (table[list_field].str.strip("[] ").str.split(separator, n=1).str[0].str.strip()
             .str.replace(r"\s+", "_", regex=True))
    first = first.where(first != "", NO_CATEGORY)
    return pd.Series(("c" + first).to_numpy(), index=table[id_field].to_numpy())


def _categories_of(path, ids, rows, categories, field, source):
    """The category of every item id of a file's rows; an id missing from ``source`` is an error.

    Args:
        path (str or Path): The file the ids come from (with a header).
        ids (np.ndarray): Item ids.
        rows (np.ndarray): 0-based row number of each id in the file (line = row + 2).
        categories (pd.Series): Item id -> category id (``_category_table``).
        field (str): The field holding the ids.
        source (str): Name of the file the categories come from.

    Returns:
        np.ndarray: Category ids (object).
    """
    position = categories.index.get_indexer(ids)
    missing = position < 0
    if missing.any():
        row = _first_row(missing)
        raise DataFormatError(path, int(rows[row]) + 2, field,
                              f"{field} {ids[row]} is not in {source}")
    return categories.to_numpy()[position]


def read_movielens(path=None, *, like_threshold=4.0):
    """Read MovieLens ratings (ml-latest-small layout) as interactions.

    Every rating is one interaction: behaviour "like" when rating >= like_threshold, else
    "rate"; the category is the movie's first genre; the rating is kept as an extra column.

    Args:
        path (str or Path): Directory with ratings.csv and movies.csv (each possibly .csv.gz);
            None reads the embedded copy of ml-latest-small.
        like_threshold (float): Smallest rating counted as a "like".

    Returns:
        pd.DataFrame: Interactions (user, item, cate, time [s], behavior, rating).
    """
    directory = EMBEDDED_MOVIELENS if path is None else Path(path)
    movies_path = _find_file(directory, "movies.csv")
    movies_columns = ["movieId", "title", "genres"]
    check_header(movies_path, movies_columns)
    categories = _category_table(movies_path, movies_columns, "movieId", "genres", "|",
                                 allow_empty=False)
    ratings_path = _find_file(directory, "ratings.csv")
    columns = ["userId", "movieId", "rating", "timestamp"]
    check_header(ratings_path, columns)
    kinds = {"userId": "int", "movieId": "int", "rating": "float", "timestamp": "int"}
    ratings = pd.concat(read_csv_checked(ratings_path, columns, kinds, header=True))
    movie_ids = ratings["movieId"].to_numpy()
    rating = ratings["rating"].to_numpy()
    return pd.DataFrame({
        "user": prefixed(ratings["userId"].to_numpy(), "u"),
        "item": prefixed(movie_ids, "i"),
        "cate": pd.Categorical(_categories_of(ratings_path, movie_ids, ratings.index.to_numpy(),
                                              categories, "movieId", movies_path.name)),
        "time": ratings["timestamp"].to_numpy(dtype=np.int64),
        "behavior": pd.Categorical(np.where(rating >= like_threshold, "like", "rate")),
        "rating": rating,
    })


def local_day_start(date, unit_per_second=1):
    """Timestamp of 00:00 of a calendar date in UTC+8.

    Args:
        date (str or datetime.date): ISO date, e.g. "2017-12-03".
        unit_per_second (int): 1 for seconds, 1000 for milliseconds.

    Returns:
        int: The timestamp.
    """
    day = datetime.date.fromisoformat(str(date))
    start = datetime.datetime(day.year, day.month, day.day, tzinfo=UTC8)
    return int(start.timestamp()) * unit_per_second


def read_taobao(path, *, behaviors=("pv",), start_date="2017-11-25", end_date="2017-12-03",
                sample_users=1.0, seed=0):
    """Read Taobao's UserBehavior.csv (no header) as interactions.

    Fields: user_id, item_id, category_id, behavior_type (pv, buy, cart, fav), timestamp
    (seconds). Rows outside [start_date 00:00, end_date 24:00) in UTC+8 (the data set's
    documented period; the file holds a few stray timestamps outside it), rows of behaviours
    not in ``behaviors`` and rows of users outside the sample are left out and counted in
    ``attrs["rows_read"]`` and ``attrs["left_out"]``.

    Args:
        path (str or Path): The csv file (possibly compressed).
        behaviors (tuple): Behaviour types kept; the original CLSR used clicks ("pv") only.
        start_date (str): First day kept (UTC+8).
        end_date (str): Last day kept (UTC+8).
        sample_users (float): Fraction of users kept (``sampled_users``), drawn while reading
            so that memory follows the sample.
        seed (int): Seed of the user sample.

    Returns:
        pd.DataFrame: Interactions (user, item, cate, time [s], behavior).
    """
    unknown = set(behaviors) - set(TAOBAO_BEHAVIORS)
    if unknown:
        raise ValueError(f"unknown Taobao behaviours {sorted(unknown)}; known: {TAOBAO_BEHAVIORS}")
    start = local_day_start(start_date)
    end = local_day_start(end_date) + 86_400
    columns = ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]
    kinds = {"user_id": "int", "item_id": "int", "category_id": "int", "behavior_type": "str",
             "timestamp": "int"}
    kept, rows_read = [], 0
    left_out = {"other behaviours": 0, "outside the period": 0, "not in the user sample": 0}
    for chunk in read_csv_checked(path, columns, kinds, header=False):
        rows_read += len(chunk)
        behavior = chunk["behavior_type"]
        invalid = (~behavior.isin(TAOBAO_BEHAVIORS)).to_numpy()
        if invalid.any():
            row = _first_row(invalid)
            raise DataFormatError(path, int(chunk.index[row]) + 1, "behavior_type",
                                  f"unknown behaviour {behavior.iloc[row]!r} "
                                  f"(expected one of {', '.join(TAOBAO_BEHAVIORS)})")
        time = chunk["timestamp"].to_numpy()
        wanted = behavior.isin(behaviors).to_numpy()
        timely = wanted & (time >= start) & (time < end)
        keep = timely & sampled_users(chunk["user_id"].to_numpy(), sample_users, seed)
        left_out["other behaviours"] += int((~wanted).sum())
        left_out["outside the period"] += int((wanted & ~timely).sum())
        left_out["not in the user sample"] += int((timely & ~keep).sum())
        chunk = chunk[keep]
        chunk["behavior_type"] = pd.Categorical(chunk["behavior_type"], categories=TAOBAO_BEHAVIORS)
        kept.append(chunk)
    table = pd.concat(kept, ignore_index=True)
    interactions = pd.DataFrame({
        "user": prefixed(table["user_id"].to_numpy(), "u"),
        "item": prefixed(table["item_id"].to_numpy(), "i"),
        "cate": prefixed(table["category_id"].to_numpy(), "c"),
        "time": table["timestamp"].to_numpy(dtype=np.int64),
        "behavior": table["behavior_type"].cat.remove_unused_categories(),
    })
    interactions.attrs["rows_read"] = rows_read
    interactions.attrs["left_out"] = {reason: n for reason, n in left_out.items() if n}
    return interactions


def _kuaishou_columns(path, header):
    """The header name of each interactions column in a Kuaishou-style file."""
    chosen = {}
    for column, aliases in KUAISHOU_COLUMNS.items():
        name = next((alias for alias in aliases if alias in header), None)
        if name is None and column != "behavior":
            raise DataFormatError(path, 1, aliases[0],
                                  f"no column named any of {', '.join(aliases)} in the header")
        if name is not None:
            chosen[column] = name
    return chosen


def read_kuaishou(path, *, behaviors=None, default_behavior="play"):
    """Read a Kuaishou-style interaction log (csv with a header) as interactions.

    Accepted columns (first present alias wins, other columns are ignored):
    ``user_id``; ``item_id`` or ``video_id`` or ``photo_id``; ``cate_id`` or ``category`` or
    ``tag``; ``timestamp`` (integer milliseconds); optionally ``behavior``. Ids may be any
    non-empty strings without tab or comma.

    Args:
        path (str or Path): The csv file (possibly compressed).
        behaviors (tuple): Behaviours kept; None keeps all.
        default_behavior (str): Behaviour of every row when the file has no behavior column.

    Returns:
        pd.DataFrame: Interactions (user, item, cate, time [ms], behavior).
    """
    header = read_header(path)
    chosen = _kuaishou_columns(path, header)
    kinds = {name: "str" for name in chosen.values()}
    kinds[chosen["time"]] = "int"
    parts, rows_read = [], 0
    for chunk in read_csv_checked(path, header, kinds, header=True):
        rows_read += len(chunk)
        if "behavior" in chosen:
            behavior = chunk[chosen["behavior"]]
        else:
            behavior = pd.Series(default_behavior, index=chunk.index)
        if behaviors is not None:
            keep = behavior.isin(behaviors).to_numpy()
            chunk, behavior = chunk[keep], behavior[keep]
        parts.append(pd.DataFrame({
            "user": chunk[chosen["user"]].to_numpy(),
            "item": chunk[chosen["item"]].to_numpy(),
            "cate": chunk[chosen["cate"]].to_numpy(),
            "time": chunk[chosen["time"]].to_numpy(dtype=np.int64),
            "behavior": behavior.to_numpy(),
        }))
    table = pd.concat(parts, ignore_index=True)
    interactions = pd.DataFrame({
        "user": prefixed(table["user"].to_numpy(), "u"),
        "item": prefixed(table["item"].to_numpy(), "i"),
        "cate": prefixed(table["cate"].to_numpy(), "c"),
        "time": table["time"].to_numpy(dtype=np.int64),
        "behavior": pd.Categorical(table["behavior"].astype(str)),
    })
    interactions.attrs["rows_read"] = rows_read
    return interactions


KUAIRAND_POSITIVES = ("is_click", "long_view", "is_like", "is_follow", "is_comment",
                      "is_forward", "is_profile_enter")
"""KuaiRand feedback flags that may serve as the positive signal (``is_click`` by default)."""

KUAIRAND_BEHAVIORS = {"is_follow": "follow", "is_forward": "forward", "is_like": "like"}
"""KuaiRand flags kept as the behaviour of a positive, strongest first: a positive's behaviour is
the first of these set on its row, else the positive signal's name (``click``)."""

FORMAT_SIGNATURES = {
    "kuairand": ("user_id", "video_id", "time_ms", "is_click"),
    "kuairec": ("user_id", "video_id", "timestamp", "watch_ratio"),
}
"""Header fields that identify a raw format (see ``guess_format``)."""

_DAY_SECONDS = 86_400
_UTC8_SECONDS = 8 * 3_600


def local_day_of(timestamp, unit_per_second=1):
    """Timestamp of 00:00 (UTC+8) of the day holding a timestamp.

    Args:
        timestamp (int or np.ndarray): Timestamp(s).
        unit_per_second (int): 1 for seconds, 1000 for milliseconds.

    Returns:
        int or np.ndarray: The day's start, in the same unit.
    """
    day = _DAY_SECONDS * unit_per_second
    offset = _UTC8_SECONDS * unit_per_second
    return (timestamp + offset) // day * day - offset


def sampled_users(user_ids, rate, seed):
    """Whether each user is in a seeded sample of about ``rate`` of the users.

    A user's draw depends only on its id and the seed (a keyed hash, not a random stream), so a
    file sampled chunk by chunk keeps the same users whatever the chunking.

    Args:
        user_ids (np.ndarray): Raw user ids (ints or strings).
        rate (float): Expected fraction of users kept, in (0, 1]; 1 keeps all.
        seed (int): Seed of the sample.

    Returns:
        np.ndarray: bool per id.
    """
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"sample_users must be in (0, 1], got {rate}")
    if rate == 1.0:
        return np.ones(len(user_ids), dtype=bool)
    values = np.asarray(user_ids)
    if values.dtype.kind in "US":
        values = values.astype(object)
    hashes = pd.util.hash_array(values, categorize=False)
    with np.errstate(over="ignore"):  # splitmix64 finaliser, modulo 2**64
        mixed = hashes ^ np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
        mixed = (mixed ^ (mixed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        mixed = (mixed ^ (mixed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        mixed ^= mixed >> np.uint64(31)
    return (mixed >> np.uint64(11)) < np.uint64(round(rate * 2**53))


def guess_format(path):
    """The raw format whose fields a file's header holds (see ``FORMAT_SIGNATURES``), or None.

    Args:
        path (str or Path): A file (possibly compressed); a folder or a missing file gives None.

    Returns:
        str: ``kuairand``, ``kuairec`` or None.
    """
    if not Path(path).is_file():
        return None
    header = set(read_header(path))
    return next((name for name, fields in FORMAT_SIGNATURES.items()
                 if header.issuperset(fields)), None)


def _interactions(table, rows_read, left_out):
    """The interactions of a table of raw ids (user, item), category ids (cate), time, behavior."""
    interactions = pd.DataFrame({
        "user": prefixed(table["user"].to_numpy(), "u"),
        "item": prefixed(table["item"].to_numpy(), "i"),
        "cate": pd.Categorical(table["cate"].to_numpy()),
        "time": table["time"].to_numpy(dtype=np.int64),
        "behavior": pd.Categorical(table["behavior"].to_numpy()),
    })
    interactions.attrs["rows_read"] = rows_read
    interactions.attrs["left_out"] = {reason: int(n) for reason, n in left_out.items() if n}
    return interactions


def _last_days(parts, train_days, unit_per_second, left_out):
    """The rows of the last local day present and the ``train_days`` days before it.

    Args:
        parts (list): DataFrames with a ``time`` column.
        train_days (int): Days kept before the last one; None keeps every earlier day.
        unit_per_second (int): 1000 for milliseconds.
        left_out (dict): Counts by reason, updated with the rows before the window.

    Returns:
        pd.DataFrame: The kept rows.
    """
    if not parts:
        return pd.DataFrame({"user": [], "item": [], "cate": [], "time": [], "behavior": []})
    table = pd.concat(parts, ignore_index=True)
    if train_days is None or table.empty:
        return table
    last_day = local_day_of(int(table["time"].max()), unit_per_second)
    first = last_day - int(train_days) * _DAY_SECONDS * unit_per_second
    before = (table["time"] < first).to_numpy()
    left_out["before the last train_days + 1 days"] = int(before.sum())
    return table[~before]


def kuairand_files(path):
    """KuaiRand's standard logs and basic video features.

    Args:
        path (str or Path): A KuaiRand ``data`` folder (KuaiRand-Pure, -1K or -27K), read as
            all its ``log_standard_*.csv`` files, or one of those log files.

    Returns:
        tuple: (list of log paths, sorted; path of ``video_features_basic_*.csv`` beside them).

    Raises:
        FileNotFoundError: No such path, no standard log, or not exactly one features file.
    """
    path = Path(path)
    if path.is_dir():
        folder, logs = path, sorted(path.glob("log_standard_*.csv*"))
    elif path.is_file():
        folder, logs = path.parent, [path]
    else:
        raise FileNotFoundError(f"{path}: no such file or folder")
    if not logs:
        raise FileNotFoundError(f"{folder}: no log_standard_*.csv (KuaiRand's standard logs)")
    features = sorted(folder.glob("video_features_basic_*.csv*"))
    if len(features) != 1:
        found = f"found {', '.join(f.name for f in features)}" if features else "found none"
        raise FileNotFoundError(f"{folder}: expected one video_features_basic_*.csv beside the "
                                f"logs, {found}")
    return logs, features[0]


def _check_flags(path, chunk, flags):
    """Raise a DataFormatError on the first flag value of a chunk other than 0 or 1."""
    for flag in flags:
        bad = ~chunk[flag].isin((0, 1)).to_numpy()
        if bad.any():
            row = _first_row(bad)
            raise DataFormatError(path, int(chunk.index[row]) + 2, flag,
                                  f"expected 0 or 1, found {chunk[flag].iloc[row]}")


def read_kuairand(path, *, positive="is_click", train_days=6, sample_users=1.0, seed=0):
    """Read KuaiRand's standard logs as interactions (https://kuairand.com, CC BY-SA 4.0).

    Log fields used (others are ignored): ``user_id``, ``video_id``, ``time_ms`` (Unix time in
    milliseconds), the positive flag and ``is_like``, ``is_follow``, ``is_forward``. Every row
    whose positive flag is 1 is an interaction; its behaviour is ``follow``, ``forward`` or
    ``like`` where that flag is set (in this order, see ``KUAIRAND_BEHAVIORS``), else the
    positive's name (``click``). The category is the first entry of ``tag`` ("a list of key
    categories of this video") in ``video_features_basic_<version>.csv``; an empty tag gives
    ``NO_CATEGORY``. The random-exposure logs (``log_random_*``) are not read. Only the last
    local (UTC+8) day present and the ``train_days`` days before it are kept, the paper's
    7-day Kuaishou window.

    Args:
        path (str or Path): See ``kuairand_files``.
        positive (str): The flag that makes a row a positive (``KUAIRAND_POSITIVES``).
        train_days (int): Days kept before the last day; None keeps all of them.
        sample_users (float): Fraction of users kept (``sampled_users``).
        seed (int): Seed of the user sample.

    Returns:
        pd.DataFrame: Interactions (user, item, cate, time [ms], behavior).
    """
    if positive not in KUAIRAND_POSITIVES:
        raise ValueError(f"unknown KuaiRand positive {positive!r}; known: {KUAIRAND_POSITIVES}")
    logs, features = kuairand_files(path)
    categories = _category_table(features, require_columns(features, ("video_id", "tag")),
                                 "video_id", "tag", ",", allow_empty=True)
    behaviors = {flag: name for flag, name in KUAIRAND_BEHAVIORS.items() if flag != positive}
    flags = [positive, *behaviors]
    kinds = {"user_id": "int", "video_id": "int", "time_ms": "int", **dict.fromkeys(flags, "int")}
    parts, rows_read = [], 0
    left_out = {"not positive": 0, "not in the user sample": 0}
    for log in logs:
        header = require_columns(log, kinds)
        for chunk in read_csv_checked(log, header, kinds, header=True):
            _check_flags(log, chunk, flags)
            rows_read += len(chunk)
            hit = chunk[positive].to_numpy() == 1
            sampled = sampled_users(chunk["user_id"].to_numpy(), sample_users, seed)
            left_out["not positive"] += int((~hit).sum())
            left_out["not in the user sample"] += int((hit & ~sampled).sum())
            chunk = chunk[hit & sampled]
            videos = chunk["video_id"].to_numpy()
            behavior = np.select([chunk[flag].to_numpy() == 1 for flag in behaviors],
                                 list(behaviors.values()), default=positive.removeprefix("is_"))
            parts.append(pd.DataFrame({
                "user": chunk["user_id"].to_numpy(),
                "item": videos,
                "cate": _categories_of(log, videos, chunk.index.to_numpy(), categories,
                                       "video_id", features.name),
                "time": chunk["time_ms"].to_numpy(),
                "behavior": behavior,
            }))
    table = _last_days(parts, train_days, 1000, left_out)
    return _interactions(table, rows_read, left_out)


def read_kuairec(path, *, min_watch_ratio=1.0, like_watch_ratio=2.0, train_days=6,
                 sample_users=1.0, seed=0):
    """Read a KuaiRec 2.0 interaction matrix as interactions (https://kuairec.com).

    Fields used (others are ignored): ``user_id``, ``video_id``, ``timestamp`` (Unix time in
    seconds, with a fraction; read as milliseconds) and ``watch_ratio`` (play duration over
    video duration). KuaiRec has no click: a row is a positive when ``watch_ratio >=
    min_watch_ratio`` (1: the video was played to its end); its behaviour is ``like`` when
    ``watch_ratio > like_watch_ratio`` (KuaiRec's own suggestion for a like), else ``play``.
    Rows with an empty or negative timestamp (the matrices hold a few) are left out and
    counted. The category is the first entry of ``feat`` in ``item_categories.csv`` beside the
    matrix. Only the last local (UTC+8) day present and the ``train_days`` days before it are
    kept.

    Args:
        path (str or Path): ``big_matrix.csv`` or ``small_matrix.csv`` (possibly compressed).
        min_watch_ratio (float): Smallest watch ratio of a positive.
        like_watch_ratio (float): Watch ratio above which a positive is a ``like``.
        train_days (int): Days kept before the last day; None keeps all of them.
        sample_users (float): Fraction of users kept (``sampled_users``).
        seed (int): Seed of the user sample.

    Returns:
        pd.DataFrame: Interactions (user, item, cate, time [ms], behavior).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (KuaiRec's big_matrix.csv or "
                                "small_matrix.csv)")
    features = _find_file(path.parent, "item_categories.csv")
    categories = _category_table(features, require_columns(features, ("video_id", "feat")),
                                 "video_id", "feat", ",", allow_empty=True)
    kinds = {"user_id": "int", "video_id": "int", "timestamp": "text", "watch_ratio": "float"}
    header = require_columns(path, kinds)
    parts, rows_read = [], 0
    left_out = {"no timestamp or a negative one": 0, "not positive": 0,
                "not in the user sample": 0}
    for chunk in read_csv_checked(path, header, kinds, header=True):
        rows_read += len(chunk)
        text = chunk["timestamp"].str.strip()
        seconds = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        unparsable = np.isnan(seconds) & (text != "").to_numpy()
        if unparsable.any():
            row = _first_row(unparsable)
            raise DataFormatError(path, int(chunk.index[row]) + 2, "timestamp",
                                  _value_problem(text.iloc[row], "float"))
        timed = seconds >= 0  # False for NaN
        ratio = chunk["watch_ratio"].to_numpy()
        hit = timed & (ratio >= min_watch_ratio)
        sampled = sampled_users(chunk["user_id"].to_numpy(), sample_users, seed)
        left_out["no timestamp or a negative one"] += int((~timed).sum())
        left_out["not positive"] += int((timed & ~hit).sum())
        left_out["not in the user sample"] += int((hit & ~sampled).sum())
        keep = hit & sampled
        videos = chunk["video_id"].to_numpy()[keep]
        parts.append(pd.DataFrame({
            "user": chunk["user_id"].to_numpy()[keep],
            "item": videos,
            "cate": _categories_of(path, videos, chunk.index.to_numpy()[keep], categories,
                                   "video_id", features.name),
            "time": np.rint(seconds[keep] * 1000).astype(np.int64),
            "behavior": np.where(ratio[keep] > like_watch_ratio, "like", "play"),
        }))
    table = _last_days(parts, train_days, 1000, left_out)
    return _interactions(table, rows_read, left_out)
