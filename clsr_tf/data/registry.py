"""The named data sets: how each is read, split and prepared (``prepare_dataset``)."""

import logging
from pathlib import Path

from clsr_tf.data import raw
from clsr_tf.data.errors import DataFormatError
from clsr_tf.data.protocol import existing_info, jsonable, prepare_interactions
from clsr_tf.data.synthetic import generate_synthetic

logger = logging.getLogger(__name__)

DATASET_DEFAULTS = {
    "movielens": {
        "time_unit": "s",
        "reader": {"like_threshold": 4.0},
        "protocol": {"min_user_count": 10, "min_item_count": 10, "split_quantiles": (0.8, 0.9),
                     "valid_sample_rate": 0.5, "test_sample_rate": 0.1},
    },
    "taobao": {
        "time_unit": "s",
        "reader": {"behaviors": ("pv",), "start_date": "2017-11-25", "end_date": "2017-12-03",
                   "sample_users": 1.0},
        "protocol": {"min_user_count": 10, "min_item_count": 10, "eval_sample_rate": 0.2},
    },
    "kuaishou": {
        "time_unit": "ms",
        "reader": {"behaviors": None, "default_behavior": "play"},
        "protocol": {"min_user_count": 10, "min_item_count": 10, "eval_sample_rate": 0.1},
    },
    "synthetic": {
        "time_unit": "s",
        "reader": {"n_users": 500, "n_items": 1000, "n_cates": 20, "interactions_per_user": 60,
                   "n_favourites": 3, "burst_prob": 0.15, "burst_length": (3, 8),
                   "burst_focus": 0.9, "popularity_exponent": 1.0},
        "protocol": {"split_quantiles": (0.8, 0.9), "valid_sample_rate": 0.5,
                     "test_sample_rate": 0.1},
    },
}
"""Per data set: time unit, reader options and protocol options used unless overridden.

- movielens: the 10-core filter reproducing 670 users / 2,245 items / 81,906 ratings, global
  split at the 80% / 90% timestamp quantiles, half of the valid and a tenth of the test lines
  kept, so the embedded set prepares in seconds and its test file stays under ~100 MB with
  max_seq_length 50.
- taobao: clicks only, 2017-11-25 .. 2017-12-03 (UTC+8), 10-core, the day before the last day
  valid and the last day test, 20% of valid/test lines (the original CLSR setup);
  ``sample_users`` keeps a seeded fraction of the users, drawn before the 10-core filter.
- kuaishou: 10-core, 10% of valid/test lines (the original), and per raw format (``RAW_FORMATS``):
  kuaishou csv: all behaviours, first 6 days (UTC+8, from the first timestamp's day) train, the
  7th day until noon valid and from noon on test; kuairand / kuairec (``FORMAT_DEFAULTS``): the
  last day present (UTC+8) until noon valid and from noon on test, the ``train_days`` (6) days
  before it train, earlier days left out, which is the same rule on a 7-day log.
- synthetic: 500 users x 60 interactions, no filter, 80% / 90% quantile split, small enough to
  prepare and train in seconds in a CI test.
"""

RAW_FORMATS = {
    "movielens": ("movielens",),
    "taobao": ("taobao",),
    "kuaishou": ("kuaishou", "kuairand", "kuairec"),
    "synthetic": ("synthetic",),
}
"""The raw formats each data set reads (hparam ``raw_format``), its default first."""

FORMAT_DEFAULTS = {
    "kuairand": {"positive": "is_click", "train_days": 6, "sample_users": 1.0},
    "kuairec": {"min_watch_ratio": 1.0, "like_watch_ratio": 2.0, "train_days": 6,
                "sample_users": 1.0},
}
"""Reader options of the formats that are no data set's default (whose options are in
DATASET_DEFAULTS): click positives with like/follow/forward as behaviours (KuaiRand),
complete plays with likes above a watch ratio of 2 (KuaiRec), the paper's 7-day window."""

_READERS = {"movielens": raw.read_movielens, "taobao": raw.read_taobao,
            "kuaishou": raw.read_kuaishou, "kuairand": raw.read_kuairand,
            "kuairec": raw.read_kuairec}

_EXPECTED = {
    "movielens": "a folder with ratings.csv (userId,movieId,rating,timestamp in s) and "
                 "movies.csv (movieId,title,genres), each possibly .gz;\n"
                 "    an empty raw_path reads the embedded ml-latest-small",
    "taobao": "UserBehavior.csv, no header: user_id,item_id,category_id,behavior_type "
              "(pv, buy, cart, fav),timestamp (Unix time in s)",
    "kuaishou": "one csv with a header: user_id, item_id (or video_id, photo_id),\n"
                "    cate_id (or category, tag), timestamp (Unix time in integer ms), optional "
                "behavior",
    "kuairand": "a KuaiRand data folder (or one log in it): log_standard_*.csv with\n"
                "    user_id, video_id, time_ms (Unix time in ms), is_click, is_like, is_follow, "
                "is_forward,\n    and video_features_basic_<v>.csv with video_id, tag",
    "kuairec": "big_matrix.csv or small_matrix.csv (user_id, video_id, timestamp in s, "
               "watch_ratio)\n    with item_categories.csv (video_id, feat) beside it",
}
_TRAIN = "python -m clsr_tf.train --hparams hparams/{yaml}.yaml {sets}"
_SOURCES = {
    "taobao": [("Taobao UserBehavior (Alibaba Tianchi, data set 649; research use under "
                "Tianchi's terms)", "taobao", "--set raw_path=/path/to/UserBehavior.csv")],
    "kuaishou": [
        ("KuaiRand-Pure, -1K or -27K (kuairand.com, CC BY-SA 4.0): its data folder with\n"
         "    log_standard_4_08_to_4_21_<v>.csv, log_standard_4_22_to_5_08_<v>.csv, "
         "video_features_basic_<v>.csv", "kuaishou",
         "--set raw_format=kuairand --set raw_path=/path/to/KuaiRand-Pure/data"),
        ("KuaiRec 2.0 (kuairec.com; licence: its repository's LICENSE): big_matrix.csv or "
         "small_matrix.csv,\n    item_categories.csv beside it", "kuaishou",
         "--set raw_format=kuairec --set raw_path=/path/to/KuaiRec/data/big_matrix.csv"),
    ],
}


def raw_guidance(name, raw_format):
    """What a data set's raw files must hold and where public ones come from.

    Args:
        name (str): The data set.
        raw_format (str): Its raw format.

    Returns:
        str: Indented lines, to follow a one-line error message.
    """
    lines = [f"  raw_format={raw_format} reads {_EXPECTED[raw_format]}"]
    sources = _SOURCES.get(name, [])
    if name == "kuaishou":
        lines.append("  The paper's Kuaishou log was never released; Kuaishou published logs "
                     "of the same kind:")
    elif sources:
        lines.append("  Public source:")
    for source, yaml, sets in sources:
        lines += [f"  - {source}", "      " + _TRAIN.format(yaml=yaml, sets=sets)]
    if sources:
        lines.append("  (every command takes the same --set; see the README's Data section)")
    return "\n".join(lines)


def _with_guidance(err, name, raw_format):
    """A missing-file or header error of a reader, with ``raw_guidance`` (None: other errors)."""
    if isinstance(err, FileNotFoundError):
        what = f"{err.filename}: no such file" if err.filename else str(err)
        return FileNotFoundError(f"{what}\n{raw_guidance(name, raw_format)}")
    if err.line != 1:
        return None
    guess = raw.guess_format(err.path)
    hint = ""
    if guess in RAW_FORMATS[name] and guess != raw_format:
        hint = f"\n  The header is {guess}'s: add --set raw_format={guess}"
    return DataFormatError(err.path, err.line, err.field,
                           f"{err.message}{hint}\n{raw_guidance(name, raw_format)}")


_PROTOCOL_OPTIONS = ("valid_start", "test_start", "split_quantiles", "min_user_count",
                     "min_item_count", "eval_sample_rate", "valid_sample_rate",
                     "test_sample_rate", "valid_num_ngs", "test_num_ngs")


def _read_raw(name, raw_format, raw_path, seed, reader_options):
    """The interactions of a data set's raw files (or the generated synthetic set)."""
    if name == "synthetic":
        if raw_path is not None:
            raise ValueError("the synthetic data set has no raw_path")
        return generate_synthetic(seed=seed, **reader_options)
    if raw_path is None and name != "movielens":
        raise FileNotFoundError(f"{name}: no raw_path (its raw files cannot be downloaded here)"
                                f"\n{raw_guidance(name, raw_format)}")
    seeded = {"seed": seed} if "sample_users" in reader_options else {}
    try:
        return _READERS[raw_format](raw_path, **reader_options, **seeded)
    except (FileNotFoundError, DataFormatError) as err:
        guided = _with_guidance(err, name, raw_format)
        if guided is None:
            raise
        raise guided from err


def _dataset_boundaries(name, raw_format, interactions, reader_options):
    """Day-based boundaries of Taobao and Kuaishou; none (quantiles) for the others."""
    if name == "taobao":
        test_start = raw.local_day_start(reader_options["end_date"])
        return {"valid_start": test_start - 86_400, "test_start": test_start}
    if name != "kuaishou":
        return {}
    day_ms = 86_400_000
    if raw_format == "kuaishou":  # the 7th day from the first one
        valid_start = raw.local_day_of(int(interactions["time"].min()), 1000) + 6 * day_ms
    else:  # the last day present
        valid_start = raw.local_day_of(int(interactions["time"].max()), 1000)
    return {"valid_start": valid_start, "test_start": valid_start + day_ms // 2}


def prepare_dataset(name, raw_path, out_dir, *, max_seq_length, seed=42, force=False,
                    raw_format=None, **options):
    """Read a named data set and prepare it with the common protocol.

    Args:
        name (str): "movielens", "taobao", "kuaishou" or "synthetic".
        raw_path (str or Path): MovieLens: directory of ratings.csv and movies.csv (None: the
            embedded ml-latest-small); Taobao: UserBehavior.csv; Kuaishou: the log csv, a
            KuaiRand data folder or a KuaiRec matrix (see ``raw_format``); synthetic: None.
        out_dir (str or Path): Output directory.
        max_seq_length (int): History entries kept besides the first one.
        seed (int): Seed of the generator (synthetic), line and negative sampling.
        force (bool): Rebuild even if out_dir holds a complete data set.
        raw_format (str): One of ``RAW_FORMATS[name]``; None or "" is the data set's default.
        **options: Reader options (see the reader of the data set in ``clsr_tf.data.raw`` or
            ``generate_synthetic``) and protocol options (see ``prepare_interactions``)
            overriding DATASET_DEFAULTS; an ``eval_sample_rate`` also replaces default
            per-split rates.

    Returns:
        dict: The content of dataset_info.json.

    Raises:
        FileNotFoundError, DataFormatError: A missing raw file or one with other columns; the
            message ends with ``raw_guidance``.
    """
    if name not in DATASET_DEFAULTS:
        raise ValueError(f"unknown data set {name!r}; known: {sorted(DATASET_DEFAULTS)}")
    raw_format = raw_format or RAW_FORMATS[name][0]
    if raw_format not in RAW_FORMATS[name]:
        raise ValueError(f"{name} reads the raw formats {list(RAW_FORMATS[name])}, "
                         f"not {raw_format!r}")
    defaults = DATASET_DEFAULTS[name]
    reader_defaults = FORMAT_DEFAULTS.get(raw_format, defaults["reader"])
    unknown = set(options) - set(reader_defaults) - set(_PROTOCOL_OPTIONS)
    if unknown:
        raise TypeError(f"unknown options for {name} ({raw_format}): {sorted(unknown)}")
    reader_options = {key: options.get(key, value) for key, value in reader_defaults.items()}
    protocol_options = dict(defaults["protocol"])
    if "eval_sample_rate" in options:
        protocol_options.pop("valid_sample_rate", None)
        protocol_options.pop("test_sample_rate", None)
    protocol_options.update(
        {key: value for key, value in options.items() if key in _PROTOCOL_OPTIONS})
    formats = {} if raw_format == RAW_FORMATS[name][0] else {"raw_format": raw_format}
    request = jsonable({"name": name, **formats, "max_seq_length": max_seq_length, "seed": seed,
                        **reader_options, **protocol_options})

    out_dir = Path(out_dir)
    existing = existing_info(out_dir, force)
    if existing is not None:
        if existing.get("request") != request:
            logger.warning("%s was prepared with %s, not %s; pass --force-prepare "
                           "(python -m clsr_tf.train) or force=True to rebuild",
                           out_dir, existing.get("request"), request)
        return existing
    interactions = _read_raw(name, raw_format, raw_path, seed, reader_options)
    if interactions.empty:
        raise ValueError(f"{raw_path}: no interaction kept ({raw_format}; rows read: "
                         f"{interactions.attrs.get('rows_read')}, left out: "
                         f"{interactions.attrs.get('left_out')})")
    boundaries = _dataset_boundaries(name, raw_format, interactions, reader_options)
    for key, value in boundaries.items():
        protocol_options.setdefault(key, value)
    if raw_path is None:
        raw_path = "embedded ml-latest-small" if name == "movielens" else None
    raw_info = {
        "raw_path": None if raw_path is None else str(raw_path),
        "raw_format": raw_format,
        "raw_rows": interactions.attrs.get("rows_read", len(interactions)),
        "raw_rows_left_out": interactions.attrs.get("left_out", {}),
        "reader_options": reader_options,
        "request": request,
    }
    return prepare_interactions(interactions, out_dir, max_seq_length=max_seq_length, seed=seed,
                                force=force, time_unit=defaults["time_unit"], name=name,
                                extra_info=raw_info, **protocol_options)
