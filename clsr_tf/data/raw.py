"""Readers of raw data sets into the interactions DataFrame.

Every reader returns a DataFrame with the columns

- ``user``, ``item``, ``cate``: string ids (pandas categoricals of str) with a one-letter prefix
  naming the kind of id: ``u<user id>``, ``i<item id>``, ``c<category id>``, e.g. ``u12``,
  ``i345``, ``c7``; MovieLens categories are genre names (``cDrama``, ``cSci-Fi``), whitespace
  replaced by ``_`` (``c(no_genres_listed)``);
- ``time``: int64 timestamp in the data set's own unit (seconds for MovieLens and Taobao,
  milliseconds for Kuaishou);
- ``behavior``: the kind of interaction (str);
- optional extra columns, carried into the meta sidecars by the preparation (MovieLens:
  ``rating``; synthetic: ``source``).

Malformed rows raise :class:`~clsr_tf.data.errors.DataFormatError` naming the file, the 1-based
line number and the field; no row is dropped silently. Line numbers count physical lines, so
they assume no quoted field spans several lines (true of every format read here). A reader of
a new format builds on ``read_csv_checked``, ``check_header`` and ``prefixed``.
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
        kinds (dict): Fields to keep, name -> "int", "float" or "str" (non-empty).
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


def _read_movies(directory):
    """movies.csv as a Series movieId -> category id (its first genre)."""
    path = _find_file(directory, "movies.csv")
    columns = ["movieId", "title", "genres"]
    check_header(path, columns)
    movies = pd.concat(read_csv_checked(path, columns, {"movieId": "int", "genres": "str"},
                                        header=True))
    duplicated = movies["movieId"].duplicated().to_numpy()
    if duplicated.any():
        row = _first_row(duplicated)
        raise DataFormatError(path, row + 2, "movieId",
                              f"duplicate movie id {movies['movieId'].iloc[row]}")
    genre = (movies["genres"].str.split("|", n=1).str[0].str.strip()
             .str.replace(r"\s+", "_", regex=True))
    return pd.Series(("c" + genre).to_numpy(), index=movies["movieId"].to_numpy())


def _movie_categories(path, movie_ids, categories):
    """The category of every movie id; an id missing from movies.csv is an error."""
    position = categories.index.get_indexer(movie_ids)
    missing = position < 0
    if missing.any():
        row = _first_row(missing)
        raise DataFormatError(path, row + 2, "movieId",
                              f"movie {movie_ids[row]} is not in movies.csv")
    return pd.Categorical(categories.to_numpy()[position])


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
    categories = _read_movies(directory)
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
        "cate": _movie_categories(ratings_path, movie_ids, categories),
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


def read_taobao(path, *, behaviors=("pv",), start_date="2017-11-25", end_date="2017-12-03"):
    """Read Taobao's UserBehavior.csv (no header) as interactions.

    Fields: user_id, item_id, category_id, behavior_type (pv, buy, cart, fav), timestamp
    (seconds). Rows outside [start_date 00:00, end_date 24:00) in UTC+8 (the data set's
    documented period; the file holds a few stray timestamps outside it) and rows of behaviours
    not in ``behaviors`` are left out and counted in ``attrs["rows_read"]``.

    Args:
        path (str or Path): The csv file (possibly compressed).
        behaviors (tuple): Behaviour types kept; the original CLSR used clicks ("pv") only.
        start_date (str): First day kept (UTC+8).
        end_date (str): Last day kept (UTC+8).

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
        keep = (time >= start) & (time < end) & behavior.isin(behaviors).to_numpy()
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
