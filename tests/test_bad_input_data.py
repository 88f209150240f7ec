"""Bad data never yields a wrong number: each case exits 2 with one line naming file, line and
field, before any training, and leaves no metrics.json or score file behind.

One row per case: a crafted data folder (a copy of a small prepared synthetic set, edited) or
setting, the command run in-process through its ``main(argv)``, the exit status and a regex
the one-line message must match.
"""

import json
import os
import pickle
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from clsr_tf import compare, predict, study, train
from clsr_tf.data.contract import BatchReader
from clsr_tf.data.errors import DataFormatError
from clsr_tf.data.loader import FastBatches
from clsr_tf.data.validation import DataChecker
from clsr_tf.datasets import check_data
from clsr_tf.evaluation import metrics_json
from clsr_tf.hparams import as_dict, load_hparams

from conftest import prepare_synthetic

HPARAMS = os.path.join(os.path.dirname(__file__), "..", "hparams", "synthetic.yaml")
# The smallest model; the data set is prepared with max_seq_length 10.
SMALL = {"max_seq_length": 10, "item_embedding_dim": 4, "cate_embedding_dim": 2,
         "user_embedding_dim": 6, "hidden_size": 6, "att_fcn_layer_sizes": [4, 2],
         "layer_sizes": [4, 2], "batch_size": 100, "contrastive_length_threshold": 3,
         "contrastive_recent_k": 2}


def sets(**overrides):
    """``--set`` arguments of the small model (each key once)."""
    return [a for k, v in dict(SMALL, **overrides).items() for a in ("--set", f"{k}={v}")]


TRAIN, VALID, TEST = "train_data", "valid_data", "test_data"


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """60 users x 20 interactions: 900 train lines, 60 valid groups of 5, 12 test of 100."""
    return prepare_synthetic(tmp_path_factory, 60, 20)


@pytest.fixture(scope="module")
def weights(clean, tmp_path_factory):
    """A best_model folder of the small model (untrained: predict only reads it)."""
    from clsr_tf.sequential import CLSRSequentialModel

    folder = str(tmp_path_factory.mktemp("weights") / "best_model")
    CLSRSequentialModel(hparams(clean), verbose=0).save_model(folder)
    return folder


def hparams(data_dir, **overrides):
    return as_dict(load_hparams(HPARAMS, data_dir=str(data_dir), **dict(SMALL, **overrides)))


def lines_of(folder, name):
    with open(os.path.join(folder, name), encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def write(folder, name, lines):
    with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


def with_field(line, index, value):
    fields = line.split("\t")
    fields[index] = value
    return "\t".join(fields)


# ---- the edits: folder -> None (each row runs on its own copy) ---------------------------
def edit_lines(name, change):
    def edit(folder):
        write(folder, name, change(lines_of(folder, name)))
    return edit


def set_field(name, line, index, value):
    def change(lines):
        lines[line - 1] = with_field(lines[line - 1], index, value)
        return lines
    return edit_lines(name, change)


def delete_line(name, line):
    return edit_lines(name, lambda lines: lines[:line - 1] + lines[line:])


def swap_positive(lines):  # group 2 (lines 6-10) gets two positives, group 2's head none
    lines[5], lines[6] = with_field(lines[5], 0, "0"), with_field(lines[6], 0, "1")
    return lines


def file_bytes(name, content):
    def edit(folder):
        with open(os.path.join(folder, name), "wb") as f:
            f.write(content)
    return edit


def remove(name):
    return lambda folder: os.remove(os.path.join(folder, name))


def non_utf8(folder):
    lines = lines_of(folder, TRAIN)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    at = data.index(b"\t", len(lines[0]) + 1 + len(lines[1]) + 1) + 1  # line 3, field 'user'
    file_bytes(TRAIN, data[:at] + b"\xff" + data[at:])(folder)


def non_dict_vocab(folder):
    with open(os.path.join(folder, "item_vocab.pkl"), "wb") as f:
        pickle.dump(["i1", "i2"], f)


def truncated_vocab(folder):
    path = os.path.join(folder, "item_vocab.pkl")
    with open(path, "rb") as f:
        data = f.read()
    file_bytes("item_vocab.pkl", data[:len(data) // 2])(folder)


def no_info(folder):
    os.remove(os.path.join(folder, "dataset_info.json"))


EMPTY_HISTORY = "1\tu1\ti1\tc1\t1601000000\t\t\t"
BAD_CASES = [  # (case, edit, --set overrides, regex of the message)
    ("1 valid line deleted", delete_line(VALID, 3), {},
     rf"{VALID}, line 5, field 'label': 1 at row 5 of the group that starts at line 1"),
    ("1 two positives, one group without", edit_lines(VALID, swap_positive), {},
     rf"{VALID}, line 6, field 'label': 0, but line 6 starts a group"),
    ("1 valid_num_ngs not the file's", None, {"valid_num_ngs": 9},
     r"dataset_info.json, field 'valid_num_ngs': the data set was prepared with "
     r"valid_num_ngs 4"),
    ("1 a negative of another user", set_field(VALID, 9, 1, "u59"), {},
     rf"{VALID}, line 9, field 'user': differs from the group's positive \(line 6\)"),
    ("2 malformed train line", set_field(TRAIN, 5, 4, "12:30"), {},
     rf"{TRAIN}, line 5, field 'timestamp': not a number \('12:30'\)"),
    ("2 empty train file", file_bytes(TRAIN, b""), {}, rf"{TRAIN}: an empty file"),
    ("2 missing train file", remove(TRAIN), {}, rf"{TRAIN}: data file not found"),
    ("4 nan timestamp in train", set_field(TRAIN, 7, 4, "nan"), {},
     rf"{TRAIN}, line 7, field 'timestamp': not a finite number \('nan'\)"),
    ("4 inf in a valid time history", edit_lines(VALID, lambda ls: [
        with_field(ln, 7, "inf," + ln.split("\t")[7].split(",", 1)[1]) for ln in ls]), {},
     rf"{VALID}, line 1, field 'time_history': not a finite number \('inf'\)"),
    ("4 nan timestamp in test", set_field(TEST, 150, 4, "nan"), {},
     rf"{TEST}, line 150, field 'timestamp': not a finite number"),
    ("5 label 2 in valid", set_field(VALID, 11, 0, "2"), {},
     rf"{VALID}, line 11, field 'label': not 0 or 1 \(2\)"),
    ("5 empty test file", file_bytes(TEST, b""), {}, rf"{TEST}: an empty file"),
    ("5 missing test file", remove(TEST), {}, rf"{TEST}: data file not found"),
    ("5 test lines not whole groups", edit_lines(TEST, lambda ls: ls[:-1]), {},
     rf"{TEST}, line 1101, field 'label': the last group has 99 of its 100 lines"),
    ("7 truncated vocab pickle", truncated_vocab, {},
     r"item_vocab.pkl: not a vocabulary pickle"),
    ("7 empty vocab pickle", file_bytes("item_vocab.pkl", b""), {},
     r"item_vocab.pkl: not a vocabulary pickle \(an empty file\)"),
    ("7 vocab pickle of a list", non_dict_vocab, {},
     r"item_vocab.pkl: the vocabulary pickle holds a list, expected a dict"),
    ("7 invalid UTF-8", non_utf8, {}, rf"{TRAIN}, line 3, field 'user': not UTF-8"),
    ("9 empty history", edit_lines(TRAIN, lambda ls: ls[:3] + [EMPTY_HISTORY] + ls[4:]), {},
     rf"{TRAIN}, line 4, field 'item_history': item_history, category_history and "
     r"time_history are empty"),
    ("9 blank line", edit_lines(TRAIN, lambda ls: ls[:3] + [""] + ls[4:]), {},
     rf"{TRAIN}, line 4: an empty line$"),
    ("9 folder without dataset_info.json", no_info, {},
     r"holds other files but no dataset_info.json.*--force-prepare.*force=True"),
    ("9 max_seq_length not the data set's", None, {"max_seq_length": 12},
     r"dataset_info.json, field 'max_seq_length': the data set was prepared with "
     r"max_seq_length 10 .* but the hyper-parameters have 12"),
    ("9 time unit not the data set's", None, {"time_unit": "ms"},
     r"dataset_info.json, field 'time_unit': the timestamps are in 's'"),
    ("9 train label 0", set_field(TRAIN, 8, 0, "0"), {},
     rf"{TRAIN}, line 8, field 'label': 0 in a train file: every train line is a positive"),
]


def crafted(clean, tmp_path, edit):
    folder = str(tmp_path / "data")
    shutil.copytree(clean, folder)
    if edit is not None:
        edit(folder)
    return folder


def one_error_line(capsys, pattern):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and re.search(pattern, err), err
    return err


def assert_nothing_written(folder):
    for root, _, files in os.walk(folder):
        assert not [f for f in files if f.endswith((".json", ".csv", ".md", ".tmp"))
                    or ".tmp" in f], (root, files)


@pytest.mark.parametrize("case, edit, overrides, pattern", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_train_exits_2_before_training(clean, tmp_path, capsys, case, edit, overrides,
                                       pattern):
    folder = crafted(clean, tmp_path, edit)
    out = tmp_path / "run"
    argv = ["--hparams", HPARAMS, "--data-dir", folder, "--output-dir", str(out), "--epochs",
            "1", "--quiet", *sets(**overrides)]
    assert train.main(argv) == 2
    one_error_line(capsys, pattern)
    assert not (out / "metrics.json").exists()
    assert not (out / "best_model").exists() and not (out / "checkpoints").exists()


@pytest.mark.parametrize("command", ["compare", "study"])
def test_compare_and_study_exit_2_before_training(clean, tmp_path, capsys, command):
    folder = crafted(clean, tmp_path, set_field(TEST, 150, 4, "inf"))
    out = tmp_path / "out"
    common = ["--hparams", HPARAMS, "--data-dir", folder, "--output-dir", str(out), "--quiet",
              *sets()]
    if command == "compare":
        assert compare.main(common + ["--models", "clsr"]) == 2
    else:
        assert study.main(["shuffle"] + common) == 2
    one_error_line(capsys, rf"{TEST}, line 150, field 'timestamp': not a finite number")
    assert not out.exists() or not os.listdir(out)


PREDICT_CASES = [  # (case, edit of the input's lines, loader, regex after the input's path)
    ("4 nan timestamp", lambda ls: ls[:9] + [with_field(ls[9], 4, "nan")] + ls[10:], "fast",
     r", line 10, field 'timestamp': not a finite number \('nan'\)"),
    ("9 unequal histories, recommenders loader", lambda ls: ls[:4] + [with_field(
        ls[4], 6, ls[4].split("\t")[6].rsplit(",", 1)[0])] + ls[5:], "recommenders",
     r", line 5, field 'category_history': \d+ entries, but item_history has \d+"),
    ("2 empty input", lambda ls: [], "fast", r": an empty file"),
]


@pytest.mark.parametrize("case, change, loader, pattern", PREDICT_CASES,
                         ids=[c[0] for c in PREDICT_CASES])
def test_predict_exits_2_and_writes_no_scores(clean, weights, tmp_path, capsys, case, change,
                                              loader, pattern):
    source = os.path.join(clean, TEST)
    with open(source, encoding="utf-8") as f:
        lines = f.read().split("\n")[:-1]
    path = tmp_path / "input"
    path.write_text("".join(line + "\n" for line in change(lines)), encoding="utf-8")
    out = tmp_path / "scores" / "pred.txt"
    out.parent.mkdir()
    argv = ["--hparams", HPARAMS, "--data-dir", clean, "--weights", weights, "--input",
            str(path), "--output", str(out), "--loader", loader, *sets()]
    assert predict.main(argv) == 2
    one_error_line(capsys, re.escape(str(path)) + pattern)
    assert os.listdir(out.parent) == []


def test_the_facade_raises_before_any_epoch(clean, tmp_path):
    from clsr_tf.sequential import CLSRSequentialModel

    folder = crafted(clean, tmp_path, None)
    model = CLSRSequentialModel(hparams(folder), verbose=0)
    train_file, valid_file = (os.path.join(folder, n) for n in (TRAIN, VALID))
    # No dataset_info.json is consulted here: the group check sees 1 + 4 groups, not 1 + 9.
    with pytest.raises(DataFormatError, match=rf"{VALID}, line 6, field 'label': 1 at row 6"):
        model.fit(train_file, valid_file, valid_num_ngs=9)
    assert model.history == []
    set_field(TEST, 20, 0, "7")(folder)
    with pytest.raises(DataFormatError, match=rf"{TEST}, line 20, field 'label': not 0 or 1"):
        model.score(os.path.join(folder, TEST))
    with pytest.raises(DataFormatError, match=rf"{TEST}, line 20"):
        model.run_eval(os.path.join(folder, TEST), 99)


def test_errors_inside_tf_data_surface_as_the_readers_own(clean, tmp_path):
    folder = crafted(clean, tmp_path, set_field(TRAIN, 600, 4, "x"))
    reader = FastBatches(dict(hparams(folder), min_seq_length=1), chunk_bytes=1 << 12)
    with pytest.raises(DataFormatError, match=rf"{TRAIN}, line 600, field 'timestamp'") as caught:
        with reader.original_errors():
            for _ in reader.dataset(os.path.join(folder, TRAIN), 4, seed=1):
                pass
    assert "Traceback" not in str(caught.value)
    # Without the context tf.data wraps it; errors of other origins pass unchanged.
    with pytest.raises(tf.errors.OpError):
        for _ in reader.dataset(os.path.join(folder, TRAIN), 4, seed=1):
            pass
    with pytest.raises(KeyError):
        with BatchReader().original_errors():
            raise KeyError("not the reader's")


def test_compare_status_is_one_line():
    err = tf.errors.InvalidArgumentError(None, None, "bad value\nTraceback (most recent ...)\n"
                                                     "  File ...")
    assert compare.failure_status(err) == "InvalidArgumentError: bad value"


def test_legal_counts_are_reported_once(clean, tmp_path, capsys):
    def unknown(lines):
        lines[0] = with_field(lines[0], 1, "nobody")
        history = lines[1].split("\t")[5].split(",")  # its last entry is read
        lines[1] = with_field(lines[1], 5, ",".join(history[:-1] + ["i_gone"]))
        return lines

    folder = crafted(clean, tmp_path, edit_lines(TRAIN, unknown))
    hp = hparams(folder)
    report = check_data(hp)
    assert report["train"]["unknown_users"] == 1 and report["train"]["unknown_items"] == 1
    assert report["train"]["lines"] == 900 and report["test"]["lines"] == 1200
    assert report["valid"]["long_histories"] > 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "1 users, 1 items" in printed[0], printed
    assert check_data(hp) == report  # the verdict is cached: nothing read, nothing printed
    # A file that passed a group check needs no second pass to be scored.
    assert DataChecker(hp).check(os.path.join(folder, VALID)) == (report["valid"], False)
    assert capsys.readouterr().out == ""


def test_metrics_json_is_strict_with_reasons():
    text = metrics_json({"valid": {"auc": 0.5, "gauc": float("nan")},
                         "test": {"auc": np.float64("inf")}, "epochs_run": 1})
    result = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in metrics JSON"))
    assert result["valid"] == {"auc": 0.5, "gauc": None}
    assert result["undefined"]["valid.gauc"] == "no user has both a positive and a negative line"
    assert "not finite" in result["undefined"]["test.auc"]


@pytest.mark.slow  # one epoch of the smallest model (about 10 s)
def test_train_writes_the_counts_into_strict_metrics_json(clean, tmp_path):
    out = tmp_path / "run"
    argv = ["--hparams", HPARAMS, "--data-dir", clean, "--output-dir", str(out), "--epochs",
            "1", "--quiet", *sets()]
    assert train.main(argv) == 0
    text = (out / "metrics.json").read_text()
    result = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))
    counts = {os.path.basename(path): c for path, c in result["data"].items()}
    assert counts[TRAIN]["lines"] == 900 and counts[TEST]["lines"] == 1200
    assert set(counts[VALID]) == {"lines", "unknown_users", "unknown_items",
                                  "unknown_categories", "long_histories"}
