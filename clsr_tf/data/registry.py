"""The named data sets: how each is read, split and prepared (``prepare_dataset``)."""

import logging
from pathlib import Path

from clsr_tf.data import raw
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
  valid and the last day test, 20% of valid/test lines (the original CLSR setup).
- kuaishou: all behaviours, 10-core, first 6 days (UTC+8, from the first timestamp's day) train,
  the 7th day until noon valid and from noon on test, 10% of valid/test lines (the original).
- synthetic: 500 users x 60 interactions, no filter, 80% / 90% quantile split, small enough to
  prepare and train in seconds in a CI test.
"""

_PROTOCOL_OPTIONS = ("valid_start", "test_start", "split_quantiles", "min_user_count",
                     "min_item_count", "eval_sample_rate", "valid_sample_rate",
                     "test_sample_rate", "valid_num_ngs", "test_num_ngs")


def _read_raw(name, raw_path, seed, reader_options):
    """The interactions of a named data set's raw files (or the generated synthetic set)."""
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
    """Day-based boundaries of Taobao and Kuaishou; none (quantiles) for the others."""
    if name == "taobao":
        test_start = raw.local_day_start(reader_options["end_date"])
        return {"valid_start": test_start - 86_400, "test_start": test_start}
    if name == "kuaishou":
        day_ms = 86_400_000
        offset_ms = 8 * 3_600_000
        first_day = (int(interactions["time"].min()) + offset_ms) // day_ms * day_ms - offset_ms
        return {"valid_start": first_day + 6 * day_ms,
                "test_start": first_day + 6 * day_ms + day_ms // 2}
    return {}


def prepare_dataset(name, raw_path, out_dir, *, max_seq_length, seed=42, force=False, **options):
    """Read a named data set and prepare it with the common protocol.

    Args:
        name (str): "movielens", "taobao", "kuaishou" or "synthetic".
        raw_path (str or Path): MovieLens: directory of ratings.csv and movies.csv (None: the
            embedded ml-latest-small); Taobao: UserBehavior.csv; Kuaishou: the log csv;
            synthetic: None.
        out_dir (str or Path): Output directory.
        max_seq_length (int): History entries kept besides the first one.
        seed (int): Seed of the generator (synthetic), line and negative sampling.
        force (bool): Rebuild even if out_dir holds a complete data set.
        **options: Reader options (see the reader of the data set in ``clsr_tf.data.raw`` or
            ``generate_synthetic``) and protocol options (see ``prepare_interactions``)
            overriding DATASET_DEFAULTS; an ``eval_sample_rate`` also replaces default
            per-split rates.

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
        {key: value for key, value in options.items() if key in _PROTOCOL_OPTIONS})
    request = jsonable({"name": name, "max_seq_length": max_seq_length, "seed": seed,
                        **reader_options, **protocol_options})

    out_dir = Path(out_dir)
    existing = existing_info(out_dir, force)
    if existing is not None:
        if existing.get("request") != request:
            logger.warning("%s was prepared with %s, not %s; pass --force-prepare "
                           "(python -m clsr_tf.train) or force=True to rebuild",
                           out_dir, existing.get("request"), request)
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
    return prepare_interactions(interactions, out_dir, max_seq_length=max_seq_length, seed=seed,
                                force=force, time_unit=defaults["time_unit"], name=name,
                                extra_info=raw_info, **protocol_options)
