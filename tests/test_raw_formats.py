"""The public Kuaishou formats (KuaiRand, KuaiRec), the user sample and the first-run guidance.

Every file here is written by the test in the documented layout of its source, a few hundred
rows, so the readers are checked against the columns the real downloads have.
"""

import csv
import json

import numpy as np
import pandas as pd
import pytest

from clsr_tf.data import raw, writers
from clsr_tf.data.errors import DataFormatError
from clsr_tf.data.registry import prepare_dataset

LOG_FIELDS = ["user_id", "video_id", "date", "hourmin", "time_ms", "is_click", "is_like",
              "is_follow", "is_comment", "is_forward", "is_hate", "long_view", "play_time_ms",
              "duration_ms", "profile_stay_time", "comment_stay_time", "is_profile_enter",
              "is_rand", "tab"]
FEATURE_FIELDS = ["video_id", "author_id", "video_type", "upload_dt", "upload_type",
                  "visible_status", "video_duration", "server_width", "server_height", "music_id",
                  "music_type", "tag"]
LOGS = ("log_standard_4_08_to_4_21_pure.csv", "log_standard_4_22_to_5_08_pure.csv")
FEATURES = "video_features_basic_pure.csv"
DAY_MS = 86_400_000
LAST_DAY = raw.local_day_start("2022-05-08", 1000)  # KuaiRand's last day, 00:00 UTC+8
SPLIT = dict(eval_sample_rate=1.0, valid_num_ngs=4, test_num_ngs=4)


def _write_csv(path, fields, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        writer.writerows(rows)


def _tag(video):
    """Video 0 has no tag; the others one or two (quoted: "3,7")."""
    return "" if video == 0 else f"{video % 4},{video % 3}" if video % 2 else str(video % 4)


def _kuairand(folder, seed=0, n_users=12, n_videos=10, rows_per_user=80):
    """A KuaiRand-Pure data folder over 2022-04-20 .. 2022-05-08 (UTC+8); the rows as a frame."""
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    start = raw.local_day_start("2022-04-20", 1000)
    frames = []
    for user in range(n_users):
        times = start + np.sort(rng.choice(19 * DAY_MS, rows_per_user, replace=False))
        frames.append(pd.DataFrame({
            "user_id": 1000 + user, "video_id": rng.integers(0, n_videos, rows_per_user),
            "time_ms": times, "is_click": (rng.random(rows_per_user) < 0.8).astype(int),
            "is_like": (rng.random(rows_per_user) < 0.3).astype(int),
            "is_follow": (rng.random(rows_per_user) < 0.1).astype(int),
            "is_forward": (rng.random(rows_per_user) < 0.1).astype(int)}))
    log = pd.concat(frames, ignore_index=True)
    local = pd.to_datetime(log["time_ms"], unit="ms", utc=True).dt.tz_convert("Asia/Shanghai")
    rows = [[r.user_id, r.video_id, day.strftime("%Y%m%d"), day.hour * 100, r.time_ms,
             r.is_click, r.is_like, r.is_follow, 0, r.is_forward, 0, r.is_click, 5000, 20000, 0,
             0, 0, 0, 1] for r, day in zip(log.itertuples(), local)]
    second = (log["time_ms"] >= raw.local_day_start("2022-04-22", 1000)).to_numpy()
    _write_csv(folder / LOGS[0], LOG_FIELDS, [row for row, s in zip(rows, second) if not s])
    _write_csv(folder / LOGS[1], LOG_FIELDS, [row for row, s in zip(rows, second) if s])
    _write_csv(folder / FEATURES, FEATURE_FIELDS,
               [[v, 7, "NORMAL", "2021-01-01", "ShortImport", 1, "", 720, 1280, 9, 4, _tag(v)]
                for v in range(n_videos)])
    return log


def _expected_interactions(log):
    """Clicks of the last day and the 6 days before it, with their behaviour and category."""
    clicks = log[(log["is_click"] == 1) & (log["time_ms"] >= LAST_DAY - 6 * DAY_MS)]
    behavior = np.select([clicks["is_follow"] == 1, clicks["is_forward"] == 1,
                          clicks["is_like"] == 1], ["follow", "forward", "like"], "click")
    first_tag = [_tag(v).split(",")[0] or raw.NO_CATEGORY for v in clicks["video_id"]]
    return clicks.assign(behavior=behavior, cate=["c" + tag for tag in first_tag])


def test_kuairand_clicks_of_the_last_seven_days_with_behaviours_and_first_tag(tmp_path):
    log = _kuairand(tmp_path / "data")
    frame = raw.read_kuairand(tmp_path / "data")
    expected = _expected_interactions(log).sort_values(["user_id", "time_ms"])
    got = frame.assign(user=frame["user"].astype(str)).sort_values(["user", "time"])
    assert got["user"].tolist() == [f"u{u}" for u in expected["user_id"]]
    assert got["item"].astype(str).tolist() == [f"i{v}" for v in expected["video_id"]]
    assert got["time"].tolist() == expected["time_ms"].tolist()
    assert got["cate"].astype(str).tolist() == expected["cate"].tolist()
    assert got["behavior"].astype(str).tolist() == expected["behavior"].tolist()
    assert set(expected["behavior"]) == {"click", "like", "follow", "forward"}
    assert "c(no_tag)" in set(expected["cate"])
    assert frame.attrs["rows_read"] == len(log)
    left_out = frame.attrs["left_out"]
    assert left_out["not positive"] == int((log["is_click"] == 0).sum())
    assert sum(left_out.values()) == len(log) - len(frame)
    # one log file reads that file only; another positive picks other rows
    one = raw.read_kuairand(tmp_path / "data" / LOGS[1], train_days=None)
    assert one.attrs["rows_read"] == int((log["time_ms"] >= LAST_DAY - 16 * DAY_MS).sum())
    likes = raw.read_kuairand(tmp_path / "data", positive="is_like")
    assert set(likes["behavior"].astype(str)) <= {"like", "follow", "forward"}


def test_kuairand_prepares_with_the_papers_split(tmp_path):
    log = _kuairand(tmp_path / "data")
    expected = _expected_interactions(log)
    assert expected["user_id"].value_counts().min() >= 10  # the 10-core keeps everything
    assert expected["video_id"].value_counts().min() >= 10
    info = prepare_dataset("kuaishou", tmp_path / "data", tmp_path / "out", max_seq_length=250,
                           raw_format="kuairand", **SPLIT)
    assert (info["valid_start"], info["test_start"]) == (LAST_DAY, LAST_DAY + DAY_MS // 2)
    assert info["boundaries_utc"] == ["2022-05-07T16:00:00+00:00", "2022-05-08T04:00:00+00:00"]
    assert (info["options"]["min_user_count"], info["options"]["min_item_count"]) == (10, 10)
    assert info["raw_format"] == "kuairand" and info["request"]["raw_format"] == "kuairand"
    assert info["counts"]["interactions"] == len(expected)
    # every click but a user's first is a line, in the period of its own timestamp
    later = expected.sort_values("time_ms").groupby("user_id").cumcount() > 0
    period = np.searchsorted([LAST_DAY, LAST_DAY + DAY_MS // 2], expected["time_ms"], "right")
    want = {split: int((later & (period == k)).sum())
            for k, split in enumerate(("train", "valid", "test"))}
    assert info["counts"]["positives"] == want and min(want.values()) > 0
    for split in ("train", "valid", "test"):
        lines = pd.read_csv(tmp_path / "out" / f"{split}_data", sep="\t", header=None)
        meta = pd.read_csv(tmp_path / "out" / f"{split}_data.meta.tsv", sep="\t")
        positives = lines[lines[0] == 1]
        assert positives[4].between(LAST_DAY - 6 * DAY_MS, LAST_DAY + DAY_MS - 1).all()
        low, high = {"train": (0, LAST_DAY), "valid": (LAST_DAY, LAST_DAY + DAY_MS // 2),
                     "test": (LAST_DAY + DAY_MS // 2, 2**62)}[split]
        assert ((positives[4] >= low) & (positives[4] < high)).all()
        assert set(meta["behavior"]) <= {"click", "like", "follow", "forward"}
    with open(tmp_path / "out" / "dataset_info.json") as f:
        assert json.load(f)["raw_rows"] == len(log)


@pytest.mark.parametrize("line, column, value, message", [
    (5, "time_ms", "16504x", r"field 'time_ms': not a number \('16504x'\)"),
    (7, "is_click", "2", r"field 'is_click': expected 0 or 1, found 2"),
    (9, "video_id", "99", r"field 'video_id': video_id 99 is not in video_features_basic_pure"),
    (4, "tab", "1,2", r"field '#20': wrong number of fields \(found 20, expected 19\)"),
])
def test_kuairand_malformed_rows_name_file_line_and_field(tmp_path, line, column, value,
                                                          message):
    _kuairand(tmp_path / "data")
    path = tmp_path / "data" / LOGS[1]
    text = path.read_text().splitlines()
    fields = text[line - 1].split(",")
    fields[LOG_FIELDS.index(column)] = value
    fields[LOG_FIELDS.index("is_click")] = "1" if column != "is_click" else value
    text[line - 1] = ",".join(fields)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataFormatError, match=rf"{LOGS[1]}, line {line}, {message}"):
        raw.read_kuairand(tmp_path / "data")


def test_kuairand_duplicate_video_in_features(tmp_path):
    _kuairand(tmp_path / "data")
    path = tmp_path / "data" / FEATURES
    path.write_text(path.read_text() + "3,7,NORMAL,2021-01-01,ShortImport,1,,720,1280,9,4,5\n")
    with pytest.raises(DataFormatError, match=rf"{FEATURES}, line 12, field 'video_id': "
                                              r"duplicate id 3"):
        raw.read_kuairand(tmp_path / "data")


def _kuairec(folder, seed=0, n_users=15, n_videos=12, rows_per_user=30):
    """small_matrix.csv and item_categories.csv of KuaiRec 2.0; the matrix rows as a frame."""
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    start = raw.local_day_start("2020-08-25", 1)
    n = n_users * rows_per_user
    matrix = pd.DataFrame({
        "user_id": np.repeat(np.arange(n_users), rows_per_user),
        "video_id": rng.integers(0, n_videos, n),
        "play_duration": 1000, "video_duration": 1000,
        "timestamp": (start + rng.random(n) * 12 * 86_400).round(3),
        "watch_ratio": rng.random(n) * 3})
    matrix.loc[::37, "timestamp"] = np.nan  # KuaiRec holds rows without a time
    local = pd.to_datetime(matrix["timestamp"], unit="s", utc=True).dt.tz_convert("Asia/Shanghai")
    matrix.insert(4, "time", local.dt.strftime("%Y-%m-%d %H:%M:%S.%f").fillna(""))
    matrix.insert(5, "date", local.dt.strftime("%Y%m%d").fillna(""))
    matrix.to_csv(folder / "small_matrix.csv", index=False, float_format="%.3f")
    _write_csv(folder / "item_categories.csv", ["video_id", "feat"],
               [[v, f"[{v % 5}, {v % 2}]" if v else "[]"] for v in range(n_videos)])
    return matrix


def test_kuairec_complete_plays_in_ms_with_likes_and_first_feat(tmp_path):
    matrix = _kuairec(tmp_path / "data")
    frame = raw.read_kuairec(tmp_path / "data" / "small_matrix.csv")
    ms = np.rint(matrix["timestamp"] * 1000)
    last_day = raw.local_day_of(int(ms.max()), 1000)
    keep = (matrix["watch_ratio"] >= 1.0) & (ms >= last_day - 6 * DAY_MS)
    assert sorted(frame["time"]) == sorted(ms[keep].astype(np.int64))
    untimed = frame.attrs["left_out"]["no timestamp or a negative one"]
    assert untimed == matrix["timestamp"].isna().sum() > 0
    assert frame.attrs["rows_read"] == len(matrix)
    by_time = frame.set_index("time")
    row = matrix[keep].iloc[0]
    got = by_time.loc[int(np.rint(row["timestamp"] * 1000))]
    assert str(got["cate"]) == (f"c{row['video_id'] % 5}" if row["video_id"] else "c(no_tag)")
    assert str(got["behavior"]) == ("like" if row["watch_ratio"] > 2.0 else "play")
    assert set(frame["behavior"].astype(str)) == {"like", "play"}
    info = prepare_dataset("kuaishou", tmp_path / "data" / "small_matrix.csv", tmp_path / "out",
                           max_seq_length=50, raw_format="kuairec", min_user_count=0,
                           min_item_count=0, **SPLIT)
    assert (info["valid_start"], info["test_start"]) == (last_day, last_day + DAY_MS // 2)


def test_kuairec_unparsable_timestamp(tmp_path):
    _kuairec(tmp_path / "data")
    path = tmp_path / "data" / "small_matrix.csv"
    lines = path.read_text().splitlines()
    fields = lines[5].split(",")
    fields[6] = "soon"
    lines[5] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError,
                       match=r"small_matrix\.csv, line 6, field 'timestamp': not a number"):
        raw.read_kuairec(path)


def test_user_sample_is_seeded_and_independent_of_chunks(tmp_path):
    ids = np.arange(20_000)
    kept = raw.sampled_users(ids, 0.1, seed=3)
    assert 0.09 < kept.mean() < 0.11
    assert (raw.sampled_users(ids[::-1], 0.1, seed=3) == kept[::-1]).all()
    assert (raw.sampled_users(ids, 0.1, seed=4) != kept).any()
    assert raw.sampled_users(ids.astype(str), 0.5, seed=3).mean() == pytest.approx(0.5, abs=0.02)
    path = tmp_path / "UserBehavior.csv"
    users = np.repeat(np.arange(200), 3)
    rows = [f"{u},{i},7,pv,{1511600000 + i}" for i, u in enumerate(users)]
    path.write_text("\n".join(rows) + "\n")
    whole = raw.read_taobao(path, sample_users=0.3, seed=1)
    expected = {f"u{u}" for u in np.unique(users)[raw.sampled_users(np.unique(users), 0.3, 1)]}
    assert set(whole["user"].astype(str)) == expected
    assert whole.attrs["left_out"]["not in the user sample"] == len(users) - len(whole)


def _error(capsys, argv):
    """The stderr of a train command that must exit 2 (its run folder in a temporary one)."""
    import tempfile

    from clsr_tf.train import main

    with tempfile.TemporaryDirectory() as out:
        assert main([*argv, "--output-dir", out]) == 2
    return capsys.readouterr().err


def test_missing_kuaishou_log_says_what_to_supply(tmp_path, capsys):
    err = _error(capsys, ["--hparams", "hparams/kuaishou.yaml", "--data-dir", str(tmp_path / "d"),
                          "--set", f"raw_path={tmp_path / 'kuaishou.csv'}", "--quiet"])
    first, *block = err.strip().splitlines()
    assert first == f"error: {tmp_path / 'kuaishou.csv'}: no such file"
    assert all(line.startswith("  ") for line in block)
    for needed in ("user_id", "timestamp (Unix time in integer ms)", "CC BY-SA 4.0",
                   "log_standard_4_08_to_4_21_<v>.csv", "video_features_basic_<v>.csv",
                   "--set raw_format=kuairand --set raw_path=/path/to/KuaiRand-Pure/data",
                   "--set raw_format=kuairec", "big_matrix.csv"):
        assert needed in err
    err = _error(capsys, ["--hparams", "hparams/kuaishou.yaml", "--data-dir", str(tmp_path / "d"),
                          "--set", "raw_format=kuairand", "--set", f"raw_path={tmp_path}"])
    assert err.startswith(f"error: {tmp_path}: no log_standard_*.csv")
    assert "raw_format=kuairand reads a KuaiRand data folder" in err


def test_log_with_other_columns_names_them_and_the_format(tmp_path, capsys):
    _kuairand(tmp_path / "data")
    err = _error(capsys, ["--hparams", "hparams/kuaishou.yaml", "--data-dir", str(tmp_path / "d"),
                          "--set", f"raw_path={tmp_path / 'data' / LOGS[1]}"])
    assert err.startswith(f"error: {tmp_path / 'data' / LOGS[1]}, line 1, field 'cate_id': no "
                          "column named any of cate_id, category, tag")
    assert "The header is kuairand's: add --set raw_format=kuairand" in err
    (tmp_path / "data" / FEATURES).write_text("video_id,category\n1,5\n")
    with pytest.raises(DataFormatError, match=r"line 1, field 'tag': no column 'tag' in the "
                                              r"header \(found video_id, category\)\n  raw_form"):
        prepare_dataset("kuaishou", tmp_path / "data", tmp_path / "out", max_seq_length=5,
                        raw_format="kuairand")
    err = _error(capsys, ["--hparams", "hparams/movielens.yaml", "--set", "raw_format=kuairand"])
    assert err == "error: raw_format=kuairand: the movielens data set reads movielens\n"


def _scale_benchmark():
    """benchmarks/prepare_scale.py as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare_scale", "benchmarks/prepare_scale.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_scale_benchmark_writes_user_behavior_in_chunks(tmp_path):
    bench = _scale_benchmark()
    path = tmp_path / "UserBehavior.csv"
    shape = bench.write_user_behavior(str(path), 5_000, seed=1, chunk_rows=1_500)
    frame = raw.read_taobao(path, behaviors=raw.TAOBAO_BEHAVIORS)
    assert frame.attrs["rows_read"] == len(frame) == 5_000  # all in the 9 days, all parsed
    assert frame["user"].nunique() == shape["users"] == 50
    assert frame["cate"].nunique() <= bench.N_CATES
    assert (frame.groupby("item", observed=True)["cate"].nunique() == 1).all()
    users = frame["user"].astype(str).str[1:].astype(int).to_numpy()
    assert (np.diff(users) >= 0).all()  # a user's rows together, as in the real file


def test_scale_benchmark_sinks_count_the_written_bytes_and_sample_counts_match(tmp_path,
                                                                               monkeypatch):
    bench = _scale_benchmark()
    path = str(tmp_path / "UserBehavior.csv")
    bench.write_user_behavior(path, 30_000, seed=1)
    written = bench.prepare(path, str(tmp_path / "written"), 0.5)
    sizes = {name: (tmp_path / "written" / name).stat().st_size
             for name in writers.DATA_FILES.values()}
    monkeypatch.setattr(writers.LineWriter, "write", writers.LineWriter.write)  # restored after
    sunk = bench.prepare(path, str(tmp_path / "sunk"), 0.5, sink_every=1)
    assert sunk["sunk"] == sizes and sunk["counts"] == written["counts"]
    assert not (tmp_path / "sunk" / "test_data").exists()
    assert (tmp_path / "sunk" / "test_data.meta.tsv").exists()
    counts = written["counts"]
    assert 0 < counts["users"] < 300  # the sample kept about half the 300 users
    assert bench.sample_counts(path, [0.5]) == {"0.5": {
        "users": counts["users"], "items": counts["items"],
        "interactions": counts["interactions"]}}
