"""Tests of the raw readers and the dataset preparation protocol."""

import gzip
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clsr_tf.data import writers
from clsr_tf.data.errors import DataFormatError
from clsr_tf.data.protocol import prepare_interactions, sample_negatives
from clsr_tf.data.raw import read_kuaishou, read_movielens, read_taobao
from clsr_tf.data.registry import prepare_dataset
from clsr_tf.data.synthetic import generate_synthetic

MOVIES = """movieId,title,genres
1,Toy Story (1995),Adventure|Animation
2,"Heat, The (1995)",Action|Crime
3,Up (2009),Animation
4,Alien (1979),Horror|Sci-Fi
5,Casablanca (1942),Drama|Romance
6,Nothing (2000),(no genres listed)
"""

# Rows deliberately out of order; u1's i2 and i3 share a second (file order must be kept).
RATINGS = """userId,movieId,rating,timestamp
2,6,1.0,350
1,5,4.5,400
1,2,3.0,200
2,2,4.0,150
1,3,5.0,200
1,1,4.0,100
3,5,5.0,50
1,4,2.0,300
2,1,3.5,250
"""

TINY_OPTIONS = dict(
    min_user_count=0,
    min_item_count=0,
    valid_start=300,
    test_start=400,
    eval_sample_rate=1.0,
    test_num_ngs=5,
)


def _write_movielens(directory, ratings=RATINGS, movies=MOVIES, compress=False):
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("ratings.csv", ratings), ("movies.csv", movies)):
        if compress:
            with gzip.open(directory / f"{name}.gz", "wt") as handle:
                handle.write(text)
        else:
            (directory / name).write_text(text)
    return directory


def _lines(path):
    return Path(path).read_text().splitlines()


def _groups(path, size):
    rows = [line.split("\t") for line in _lines(path)]
    assert len(rows) % size == 0
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def _prepare_tiny(tmp_path, max_seq_length=50, **options):
    raw_dir = _write_movielens(tmp_path / "raw")
    out = tmp_path / "out"
    info = prepare_dataset(
        "movielens", raw_dir, out, max_seq_length=max_seq_length, **{**TINY_OPTIONS, **options}
    )
    return out, info


def _check_eval_groups(path, num_ngs, item_cate):
    """Checks group layout and negatives of a valid/test file; returns the groups."""
    groups = _groups(path, num_ngs + 1)
    for group in groups:
        assert [row[0] for row in group] == ["1"] + ["0"] * num_ngs
        positive = group[0]
        negatives = [row[2] for row in group[1:]]
        assert positive[2] not in negatives
        assert len(set(negatives)) == num_ngs
        for row in group:
            assert row[1] == positive[1] and row[4:] == positive[4:]
            assert row[3] == item_cate[row[2]]
    return groups


def test_tiny_movielens_lines(tmp_path):
    out, info = _prepare_tiny(tmp_path)
    # Train lines come in a seeded random order (see prepare_interactions).
    assert sorted(_lines(out / "train_data")) == [
        "1\tu1\ti2\tcAction\t200\ti1\tcAdventure\t100",
        "1\tu1\ti3\tcAnimation\t200\ti1,i2\tcAdventure,cAction\t100,200",
        "1\tu2\ti1\tcAdventure\t250\ti2\tcAction\t150",
    ]
    item_cate = {
        "i1": "cAdventure",
        "i2": "cAction",
        "i3": "cAnimation",
        "i4": "cHorror",
        "i5": "cDrama",
    }
    item_cate["i6"] = "c(no_genres_listed)"
    valid = _check_eval_groups(out / "valid_data", 4, item_cate)
    assert [group[0] for group in valid] == [
        "1 u1 i4 cHorror 300 i1,i2,i3 cAdventure,cAction,cAnimation 100,200,200".split(" "),
        "1 u2 i6 c(no_genres_listed) 350 i2,i1 cAction,cAdventure 150,250".split(" "),
    ]
    (test_group,) = _check_eval_groups(out / "test_data", 5, item_cate)
    assert test_group[0] == ("1 u1 i5 cDrama 400 i1,i2,i3,i4 cAdventure,cAction,cAnimation,cHorror "
                             "100,200,200,300").split(" ")
    assert {row[2] for row in test_group[1:]} == {"i1", "i2", "i3", "i4", "i6"}

    assert _lines(out / "test_data.meta.tsv") == ["behavior\trating"] + ["like\t4.5"] * 6
    meta = _lines(out / "train_data.meta.tsv")
    assert meta[0] == "behavior\trating"
    assert sorted(meta[1:]) == ["like\t5.0", "rate\t3.0", "rate\t3.5"]
    with open(out / "item_vocab.pkl", "rb") as handle:
        assert pickle.load(handle) == {
            "default_mid": 0,
            "i1": 1,
            "i2": 2,
            "i5": 3,
            "i3": 4,
            "i4": 5,
            "i6": 6,
        }
    with open(out / "category_vocab.pkl", "rb") as handle:
        assert list(pickle.load(handle)) == [
            "default_cat",
            "cAction",
            "cAdventure",
            "cDrama",
            "c(no_genres_listed)",
            "cAnimation",
            "cHorror",
        ]
    with open(out / "user_vocab.pkl", "rb") as handle:
        assert pickle.load(handle) == {"default_uid": 0, "u1": 1, "u2": 2, "u3": 3}
    counts = info["counts"]
    assert (counts["users"], counts["items"], counts["cates"]) == (3, 6, 6)
    assert counts["lines"] == {"train": 3, "valid": 10, "test": 6}
    assert counts["positives"] == {"train": 3, "valid": 2, "test": 1}
    assert json.loads((out / "dataset_info.json").read_text())["time_unit"] == "s"


def test_gzipped_raw_files_give_the_same_data(tmp_path):
    plain = read_movielens(_write_movielens(tmp_path / "plain"))
    zipped = read_movielens(_write_movielens(tmp_path / "zipped", compress=True))
    pd.testing.assert_frame_equal(plain, zipped)


def test_history_keeps_first_and_last_max_seq_length(tmp_path):
    out, _ = _prepare_tiny(tmp_path, max_seq_length=2)
    valid_positive = _lines(out / "valid_data")[0].split("\t")
    assert valid_positive[5:] == ["i1,i2,i3", "cAdventure,cAction,cAnimation", "100,200,200"]
    test_positive = _lines(out / "test_data")[0].split("\t")
    assert test_positive[5:] == ["i1,i3,i4", "cAdventure,cAnimation,cHorror", "100,200,300"]


def _reference_lines(interactions, max_seq_length):
    """Builds every (split-less) line with plain Python, keyed by (user, time, item)."""
    frame = interactions.astype({"user": str, "item": str, "cate": str})
    frame = frame.sort_values("time", kind="stable").sort_values("user", kind="stable")
    lines = {}
    for user, events in frame.groupby("user", sort=True):
        rows = list(events[["item", "cate", "time"]].itertuples(index=False))
        for position in range(1, len(rows)):
            history = rows[:position]
            if len(history) > max_seq_length + 1:
                history = history[:1] + history[-max_seq_length:]
            item, cate, time = rows[position]
            fields = [user, item, cate, str(time)]
            fields += [",".join(str(entry[k]) for entry in history) for k in range(3)]
            lines.setdefault((user, time, item), []).append("\t".join(fields))
    return lines


def test_lines_match_a_plain_python_reference(tmp_path):
    interactions = generate_synthetic(
        n_users=40, n_items=60, n_cates=6, interactions_per_user=25, seed=3
    )
    info = prepare_interactions(
        interactions, tmp_path / "out", max_seq_length=7, eval_sample_rate=0.5, test_num_ngs=9
    )
    reference = _reference_lines(interactions, 7)
    by_split = {"train": [], "valid": [], "test": []}
    for key, texts in reference.items():
        (text,) = texts
        split = np.searchsorted([info["valid_start"], info["test_start"]], key[1], side="right")
        by_split[writers.SPLITS[split]].append(text)
    assert sorted(_lines(tmp_path / "out" / "train_data")) == sorted(
        "1\t" + text for text in by_split["train"])
    for split, num_ngs in (("valid", 4), ("test", 9)):
        positives = [
            line for line in _lines(tmp_path / "out" / f"{split}_data") if line.startswith("1\t")
        ]
        assert len(positives) == round(0.5 * len(by_split[split]))
        assert set(positives) <= {"1\t" + text for text in by_split[split]}
        assert info["counts"]["lines"][split] == len(positives) * (num_ngs + 1)


def test_negatives_follow_popularity():
    rng = np.random.default_rng(0)
    probabilities = np.array([0.7, 0.1, 0.1, 0.1])
    negatives = sample_negatives(rng, np.full(20_000, 3), probabilities, 1)
    share = np.bincount(negatives.ravel(), minlength=4) / negatives.size
    assert share[3] == 0
    np.testing.assert_allclose(share[:3], [0.7 / 0.9, 0.1 / 0.9, 0.1 / 0.9], atol=0.02)
    groups = sample_negatives(rng, np.arange(500) % 4, probabilities, 3)
    assert all(
        sorted(row) == sorted(set(range(4)) - {k % 4}) for k, row in enumerate(groups.tolist())
    )


def test_sequential_iterator_reads_the_output(tmp_path):
    import tensorflow as tf
    from recommenders.models.deeprec.deeprec_utils import HParams
    from recommenders.models.deeprec.io.sequential_iterator import SequentialIterator

    out, _ = _prepare_tiny(tmp_path, max_seq_length=3)
    hparams = HParams(
        {
            "user_vocab": str(out / "user_vocab.pkl"),
            "item_vocab": str(out / "item_vocab.pkl"),
            "cate_vocab": str(out / "category_vocab.pkl"),
            "max_seq_length": 3,
            "batch_size": 6,
        }
    )
    iterator = SequentialIterator(hparams, tf.Graph())
    feed = next(iterator.load_data_from_file(str(out / "test_data"), batch_num_ngs=0))
    names = ("labels", "users", "items", "cates", "item_history", "item_cate_history", "mask")
    batch = {name: feed[getattr(iterator, name)] for name in names}
    assert batch["labels"].ravel().tolist() == [1, 0, 0, 0, 0, 0]
    assert batch["item_history"][0].tolist() == [2, 4, 5]  # i2, i3, i4 by vocab index
    assert batch["mask"].tolist() == [[1, 1, 1]] * 6
    assert (batch["items"] > 0).all() and (batch["cates"] > 0).all()
    assert tf.executing_eagerly()


def test_wrong_field_count_names_file_line_and_field(tmp_path):
    ratings = RATINGS.replace("1,3,5.0,200\n", "1,3,5.0,200,7\n")
    raw_dir = _write_movielens(tmp_path / "raw", ratings=ratings)
    with pytest.raises(DataFormatError) as caught:
        read_movielens(raw_dir)
    assert (Path(caught.value.path).name, caught.value.line, caught.value.field) == (
        "ratings.csv",
        6,
        "#5",
    )
    assert "ratings.csv, line 6, field '#5': wrong number of fields (found 5, expected 4)" in str(
        caught.value
    )


def test_missing_field_names_file_line_and_field(tmp_path):
    raw_dir = _write_movielens(
        tmp_path / "raw", ratings=RATINGS.replace("1,4,2.0,300\n", "1,4,2.0\n")
    )
    with pytest.raises(
        DataFormatError, match=r"ratings\.csv, line 9, field 'timestamp': wrong number of fields"
    ):
        read_movielens(raw_dir)


def test_non_numeric_timestamp_names_file_line_and_field(tmp_path):
    raw_dir = _write_movielens(
        tmp_path / "raw", ratings=RATINGS.replace("1,2,3.0,200\n", "1,2,3.0,abc\n")
    )
    with pytest.raises(DataFormatError) as caught:
        read_movielens(raw_dir)
    assert str(caught.value).endswith(
        "ratings.csv, line 4, field 'timestamp': not a number ('abc')"
    )
    assert caught.value.line == 4


def test_non_numeric_id_in_gzipped_file(tmp_path):
    raw_dir = _write_movielens(
        tmp_path / "raw", ratings=RATINGS.replace("2,1,3.5,250", "2,x1,3.5,250"), compress=True
    )
    with pytest.raises(
        DataFormatError, match=r"ratings\.csv\.gz, line 10, field 'movieId': not a number \('x1'\)"
    ):
        read_movielens(raw_dir)


def test_taobao_reader_checks_rows_and_keeps_the_window(tmp_path):
    path = tmp_path / "UserBehavior.csv"
    rows = [
        "1,10,100,pv,1511539200",  # 2017-11-25 00:00 UTC+8: kept
        "1,11,100,buy,1511600000",  # not a click: left out by default
        "2,10,100,pv,1511539199",  # before the window
        "2,12,101,pv,1512316799",  # 2017-12-03 23:59:59 UTC+8: kept
    ]
    path.write_text("\n".join(rows) + "\n")
    frame = read_taobao(path)
    assert frame[["user", "item", "cate", "behavior"]].astype(str).values.tolist() == [
        ["u1", "i10", "c100", "pv"],
        ["u2", "i12", "c101", "pv"],
    ]
    assert frame.attrs["rows_read"] == 4
    path.write_text("\n".join(rows + ["3,10,100,like,1511600000"]) + "\n")
    with pytest.raises(
        DataFormatError, match=r"line 5, field 'behavior_type': unknown behaviour 'like'"
    ):
        read_taobao(path)
    path.write_text("\n".join(rows[:2] + ["3,10,100,pv"]) + "\n")
    with pytest.raises(DataFormatError, match=r"line 3, field 'timestamp': wrong number of fields"):
        read_taobao(path)


def test_kuaishou_reader_accepts_aliases(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(
        "video_id,user_id,tag,timestamp,watch_ratio\n7,1,a,1593878400000,0.5\n8,1,b,1593878401000,1.2\n"
    )
    frame = read_kuaishou(path)
    assert frame[["user", "item", "cate", "behavior"]].astype(str).values.tolist() == [
        ["u1", "i7", "ca", "play"],
        ["u1", "i8", "cb", "play"],
    ]
    assert frame["time"].tolist() == [1593878400000, 1593878401000]
    path.write_text("video_id,user_id,tag,timestamp\n7,1,a,1593878400000.5\n")
    with pytest.raises(DataFormatError, match=r"line 2, field 'timestamp': not an integer"):
        read_kuaishou(path)


def test_same_seed_gives_identical_files(tmp_path):
    outputs = []
    for name in ("first", "second"):
        prepare_dataset("synthetic", None, tmp_path / name, max_seq_length=10, seed=7, n_users=60)
        outputs.append(
            {path.name: path.read_bytes() for path in sorted((tmp_path / name).iterdir())}
        )
    assert outputs[0] == outputs[1]
    other = tmp_path / "other"
    prepare_dataset("synthetic", None, other, max_seq_length=10, seed=8, n_users=60)
    assert (other / "test_data").read_bytes() != outputs[0]["test_data"]


def test_failure_leaves_no_partial_output(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writers, "write_meta", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        _prepare_tiny(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["raw"]


def test_complete_output_is_skipped_unless_forced(tmp_path, monkeypatch):
    out, info = _prepare_tiny(tmp_path)
    (out / "train_data").write_text("edited\n")
    assert _prepare_tiny(tmp_path)[1] == info
    assert _lines(out / "train_data") == ["edited"]
    _prepare_tiny(tmp_path, force=True)
    assert len(_lines(out / "train_data")) == 3
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "raw"]
    (out / "dataset_info.json").unlink()
    with pytest.raises(FileExistsError):
        _prepare_tiny(tmp_path)


def test_embedded_movielens_defaults(tmp_path):
    info = prepare_dataset("movielens", None, tmp_path / "ml", max_seq_length=50)
    counts = info["counts"]
    assert (counts["users"], counts["items"], counts["interactions"]) == (670, 2245, 81906)
    assert info["time_unit"] == "s" and info["valid_start"] < info["test_start"]
    assert (tmp_path / "ml" / "test_data").stat().st_size < 100 * 2**20
    assert counts["lines"]["test"] == 100 * counts["positives"]["test"]


def _auc(labels, scores):
    ranks = pd.Series(scores).rank().to_numpy()
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return (ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def test_synthetic_has_sources_and_is_learnable(tmp_path):
    info = prepare_dataset("synthetic", None, tmp_path / "syn", max_seq_length=20)
    for split in writers.SPLITS:
        meta = pd.read_csv(tmp_path / "syn" / f"{split}_data.meta.tsv", sep="\t")
        assert list(meta.columns) == ["behavior", "source"]
        assert set(meta["source"]) == {"long", "short"}
        assert len(meta) == info["counts"]["lines"][split]
    rows = [line.split("\t") for line in _lines(tmp_path / "syn" / "test_data")]
    labels = np.array([int(row[0]) for row in rows])
    share = np.array([row[6].split(",").count(row[3]) / len(row[6].split(",")) for row in rows])
    assert _auc(labels, share) > 0.75


def test_taobao_split_is_by_local_day(tmp_path):
    path = tmp_path / "UserBehavior.csv"
    rows = [
        "1,10,100,pv,1512000000",
        "1,11,100,pv,1512100000",
        "1,12,101,pv,1512144000",  # 2017-12-02 00:00 UTC+8: first valid second
        "1,13,101,pv,1512230399",
        "1,14,102,pv,1512230400",  # 2017-12-03 00:00 UTC+8: first test second
        "2,10,100,pv,1512000000",
    ]
    path.write_text("\n".join(rows) + "\n")
    options = dict(
        min_user_count=0, min_item_count=0, eval_sample_rate=1.0, valid_num_ngs=3, test_num_ngs=3
    )
    info = prepare_dataset("taobao", path, tmp_path / "out", max_seq_length=5, **options)
    assert (info["valid_start"], info["test_start"]) == (1512144000, 1512230400)
    assert info["counts"]["positives"] == {"train": 1, "valid": 2, "test": 1}
    assert _lines(tmp_path / "out" / "test_data")[
        0
    ] == "1\tu1\ti14\tc102\t1512230400\ti10,i11,i12,i13\tc100,c100,c101,c101\t" + ",".join(
        ["1512000000", "1512100000", "1512144000", "1512230399"]
    )


def test_kuaishou_split_at_noon_of_the_seventh_day(tmp_path):
    path = tmp_path / "log.csv"
    times = [1593880200000, 1594000000000, 1594396800000, 1594439999999, 1594440000000]
    rows = [f"1,{item},c{item % 2},{time}" for item, time in zip(range(5), times)] + [
        "2,0,c0,1594000000000"
    ]
    path.write_text("user_id,photo_id,category,timestamp\n" + "\n".join(rows) + "\n")
    options = dict(
        min_user_count=0, min_item_count=0, eval_sample_rate=1.0, valid_num_ngs=3, test_num_ngs=3
    )
    info = prepare_dataset("kuaishou", path, tmp_path / "out", max_seq_length=5, **options)
    assert (info["valid_start"], info["test_start"]) == (1594396800000, 1594440000000)
    assert info["time_unit"] == "ms"
    assert info["counts"]["positives"] == {"train": 1, "valid": 2, "test": 1}


def test_each_item_gets_its_most_frequent_category(tmp_path):
    interactions = pd.DataFrame(
        {
            "user": ["u1", "u1", "u1", "u2", "u2"],
            "item": ["i1", "i2", "i1", "i1", "i3"],
            "cate": ["ca", "cb", "cz", "ca", "cb"],
            "time": [1, 2, 3, 4, 5],
            "behavior": "click",
        }
    )
    options = dict(valid_num_ngs=1, test_num_ngs=1)
    info = prepare_interactions(interactions, tmp_path / "out", max_seq_length=5, **options)
    assert info["counts"]["cates"] == 2 and info["counts"]["recategorised_interactions"] == 1
    assert sorted(_lines(tmp_path / "out" / "train_data")) == [
        "1\tu1\ti1\tca\t3\ti1,i2\tca,cb\t1,2",
        "1\tu1\ti2\tcb\t2\ti1\tca\t1",
    ]
    with open(tmp_path / "out" / "category_vocab.pkl", "rb") as handle:
        assert pickle.load(handle) == {"default_cat": 0, "ca": 1, "cb": 2}
