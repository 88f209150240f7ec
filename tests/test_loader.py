"""FastBatches: the same arrays as Recommenders' iterator, errors, time units."""

import math
import os
import pickle
import random

import numpy as np
import pytest
import tensorflow as tf

from clsr_tf.data.contract import BATCH_SPEC, GROUP_KEYS
from clsr_tf.data.errors import DataFormatError
from clsr_tf.data.loader import FastBatches
from clsr_tf.data.recommenders_adapter import RecommendersBatches

USERS = [f"u{i}" for i in range(30)] + ["u,30", "usager_long_31", "ü32"]
ITEMS = [f"i{i}" for i in range(60)] + ["item_long_identifier_60", "é61"]
CATES = [f"c{i}" for i in range(8)] + ["category_long_8"]
NON_RANDOM = GROUP_KEYS  # users, time, mask and the history arrays


def write_vocabs(folder):
    """Vocab pickles (raw id -> index, 0 reserved for the default id)."""
    for name, keys, default in (("user_vocab.pkl", USERS, "default_uid"),
                                ("item_vocab.pkl", ITEMS, "default_mid"),
                                ("category_vocab.pkl", CATES, "default_cat")):
        vocab = {default: 0}
        vocab.update({key: i + 1 for i, key in enumerate(keys)})
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(vocab, f)


def make_lines(n_lines, max_history, seed=0, unknown=True):
    """Lines of the Recommenders sequential format with random users, items and times.

    Some ids are not in the vocabularies (when ``unknown``), gaps between actions range from
    zero (below the half-day floor) to days, and some histories go back in time.
    """
    rng = random.Random(seed)
    users = USERS + (["u_unknown", "v7"] if unknown else [])
    items = ITEMS + (["i_unknown", "j3"] if unknown else [])
    cate_of = {item: CATES[i % len(CATES)] for i, item in enumerate(items)}
    lines = []
    for _ in range(n_lines):
        length = rng.randint(1, max_history)
        history = [rng.choice(items) for _ in range(length)]
        t = 1_500_000_000 + rng.randint(0, 10**6)
        times = []
        for _ in range(length):
            t += rng.choice([0, 60, 3600, 40000, 86400 * rng.randint(1, 9), -7200])
            times.append(t)
        target = rng.choice(items)
        now = times[-1] + rng.choice([0, 100, 50000, 86400 * 3, -100])
        lines.append("\t".join([
            str(rng.randint(0, 1)), rng.choice(users), target, cate_of[target], str(now),
            ",".join(history), ",".join(cate_of[i] for i in history),
            ",".join(map(str, times))]))
    return lines


def write_file(path, lines, newline="\n"):
    with open(path, "w", newline="") as f:
        f.write("".join(line + newline for line in lines))
    return str(path)


def hparams(folder, **overrides):
    hp = dict(user_vocab="user_vocab.pkl", item_vocab="item_vocab.pkl",
              cate_vocab="category_vocab.pkl", data_dir=str(folder), batch_size=32,
              max_seq_length=8, min_seq_length=1, time_unit="recommenders", seed=5)
    hp.update(overrides)
    return hp


@pytest.fixture
def folder(tmp_path):
    write_vocabs(tmp_path)
    return tmp_path


def assert_batches_equal(ours, theirs, keys=tuple(BATCH_SPEC)):
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        assert set(a) == set(BATCH_SPEC)
        for key in keys:
            assert a[key].dtype == BATCH_SPEC[key][0].as_numpy_dtype, key
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("n_lines, max_history, overrides, chunk_bytes", [
    (137, 14, dict(), 1 << 20),  # histories longer and shorter than max_seq_length
    (137, 14, dict(), 300),  # many chunks, lines cut at chunk ends
    (64, 3, dict(batch_size=16), 1 << 20),  # all histories short
    (90, 30, dict(batch_size=7, max_seq_length=5), 500),
    (120, 12, dict(min_seq_length=6, batch_size=20), 700),  # some lines filtered out
])
def test_eval_batches_equal_the_iterator(folder, n_lines, max_history, overrides, chunk_bytes):
    path = write_file(folder / "data", make_lines(n_lines, max_history, seed=n_lines))
    hp = hparams(folder, **overrides)
    ours = list(FastBatches(hp, chunk_bytes=chunk_bytes)(path))
    assert_batches_equal(ours, list(RecommendersBatches(hp)(path)))
    lengths = np.concatenate([b["mask"].sum(1) for b in ours])
    assert lengths.min() < hp["max_seq_length"]
    assert lengths.max() == min(max_history, hp["max_seq_length"])


def test_odd_lines_equal_the_iterator(folder):
    """CR LF, surrounding whitespace, commas in ids, long and non-ASCII ids, float times."""
    lines = make_lines(40, 10, seed=1)
    lines[3] = ("1\tu,30\titem_long_identifier_60\tcategory_long_8\t1500000100.5\t"
                "é61,i1,item_long_identifier_60\tc1,category_long_8,c2\t"
                "1500000000,1.5e9,1500000050")
    lines[4] = "  0\tusager_long_31\té61\tc3\t1500090000\t i2,i3 ,,i4 \t c2,c3,,c4\t " \
               "1500000000, 1500000001 ,1500000002,1500000003 \t"
    lines[5] = "\t1\tü32\ti5\tc5\t1500090000\ti5\tc5\t1500000000\u3000"
    lines[6] = "1\tu1\ti1\tc1\t1500090000\ti1,i2\tc1,c2\t+1500000000,1500000001.000"
    lines[7] = "0\tu2\ti1\x00\tc1\t1500090000\ti2\x00,i2\tc1,\x00\t1500000000,1500000001"
    hp = hparams(folder, batch_size=9)
    for newline in ("\n", "\r\n"):
        path = write_file(folder / "data", lines, newline)
        assert_batches_equal(list(FastBatches(hp, chunk_bytes=256)(path)),
                             list(RecommendersBatches(hp)(path)))


def check_training_batch(batch, group):
    """Group layout: positive first, negatives from the batch's other lines' items."""
    labels = batch["labels"].reshape(-1, group)
    assert np.all(labels[:, 0] == 1) and np.all(labels[:, 1:] == 0)
    items, cates = batch["items"].reshape(-1, group), batch["cates"].reshape(-1, group)
    assert np.all(items[:, 1:] != items[:, :1])
    pairs = set(zip(items[:, 0], cates[:, 0]))
    assert set(zip(items[:, 1:].ravel(), cates[:, 1:].ravel())) <= pairs
    for key in NON_RANDOM:
        rows = batch[key].reshape(len(labels), group, -1)
        assert np.all(rows == rows[:, :1]), key


def test_training_batches_match_the_iterator_in_file_order(folder, monkeypatch):
    from recommenders.models.deeprec.io import sequential_iterator

    # 5 batches of 32 lines and a last one of 3, which both readers drop.
    path = write_file(folder / "train", make_lines(163, 14, seed=3))
    hp = hparams(folder)
    monkeypatch.setattr(sequential_iterator.random, "shuffle", lambda lines: None)
    random.seed(0)
    theirs = list(RecommendersBatches(hp)(path, 4))
    ours = list(FastBatches(hp, shuffle_buffer=0)(path, 4))
    assert len(ours) == 5
    assert_batches_equal(ours, theirs, NON_RANDOM + ("labels",))
    for a, b in zip(ours, theirs):
        check_training_batch(a, 5)
        np.testing.assert_array_equal(a["items"][::5], b["items"][::5])
        np.testing.assert_array_equal(a["cates"][::5], b["cates"][::5])


def group_signatures(batches, group):
    """Sorted non-random content of every row group (one per line)."""
    out = []
    for batch in batches:
        for g in range(len(batch["labels"]) // group):
            row = g * group
            out.append((int(batch["items"][row]), int(batch["cates"][row]))
                       + tuple(batch[key][row].tobytes() for key in NON_RANDOM))
    return sorted(out)


def test_shuffled_training_holds_the_iterators_groups(folder):
    path = write_file(folder / "train", make_lines(160, 14, seed=4))
    hp = hparams(folder)
    random.seed(1)
    theirs = list(RecommendersBatches(hp)(path, 3))
    reader = FastBatches(hp, shuffle_buffer=40, chunk_bytes=1000)
    ours = list(reader(path, 3))
    for batch in ours:
        check_training_batch(batch, 4)
    assert group_signatures(ours, 4) == group_signatures(theirs, 4)
    in_order = list(FastBatches(hp, shuffle_buffer=0)(path, 3))
    assert group_signatures(in_order, 4) == group_signatures(ours, 4)
    assert not np.array_equal(ours[0]["users"], in_order[0]["users"])
    again = list(FastBatches(hp, shuffle_buffer=40, chunk_bytes=1000)(path, 3))
    assert_batches_equal(again, ours)
    other_epoch = list(reader(path, 3))
    assert not np.array_equal(other_epoch[0]["users"], ours[0]["users"])
    assert_batches_equal(list(reader(path, 3, seed=9)), list(reader(path, 3, seed=9)))


def test_negatives_are_drawn_uniformly_from_other_items(folder):
    lines = [line.split("\t") for line in make_lines(10, 4, seed=6, unknown=False)]
    for i, words in enumerate(lines):  # items i1 (twice), i2 (three times), i3 (five times)
        words[2] = "i1" if i < 2 else "i2" if i < 5 else "i3"
    path = write_file(folder / "train", ["\t".join(w) for w in lines])
    batch = next(FastBatches(hparams(folder, batch_size=10), shuffle_buffer=0)(path, 2000))
    items = batch["items"].reshape(10, -1)
    for positive, others in ((2, {3: 3, 4: 5}), (3, {2: 2, 4: 5}), (4, {2: 2, 3: 3})):
        drawn = items[items[:, 0] == positive, 1:].ravel()
        total = sum(others.values())
        for item, count in others.items():
            assert abs(np.mean(drawn == item) - count / total) < 0.05
        assert not np.any(drawn == positive)


def test_a_batch_without_negatives_is_skipped(folder):
    lines = [line.split("\t") for line in make_lines(12, 4, seed=7, unknown=False)]
    for words in lines[:6]:
        words[2] = "i9"
    path = write_file(folder / "train", ["\t".join(w) for w in lines])
    reader = FastBatches(hparams(folder, batch_size=6), shuffle_buffer=0)
    with pytest.warns(UserWarning, match="no in-batch negative"):
        batches = list(reader(path, 4))
    assert len(batches) == 1 and len(batches[0]["labels"]) == 30


def reference_features(line, day, width):
    """Time features of one line, written out as parser_one_line computes them."""
    words = line.split("\t")
    now, times = float(words[4]), [float(t) for t in words[7].split(",")]
    following = times[1:] + [now]
    diff = [math.log(max((b - a) / day, 0.5)) for a, b in zip(times, following)]
    first = [math.log(max((b - times[0]) / day, 0.5)) for b in following]
    to_now = [math.log(max((now - t) / day, 0.5)) for t in times]
    out = np.zeros((3, width), np.float32)
    for row, values in enumerate((diff, first, to_now)):
        kept = values[-width:]
        out[row, :len(kept)] = kept
    return out


def rescale(line, factor):
    """The line with its timestamps multiplied by ``factor`` (1000: s -> ms)."""
    words = line.split("\t")
    scale = (lambda t: str(int(t) * factor)) if factor >= 1 else (lambda t: repr(int(t) * factor))
    words[4] = scale(words[4])
    words[7] = ",".join(scale(t) for t in words[7].split(","))
    return "\t".join(words)


@pytest.mark.parametrize("unit, day, factor", [
    ("recommenders", 86400, 1), ("s", 86.4, 0.001), ("ms", 86400000, 1000)])
def test_time_units_scale_the_day(folder, unit, day, factor):
    """A file in unit u read with time_unit u gives the features of the file in seconds."""
    lines = make_lines(50, 12, seed=8)
    path = write_file(folder / "data", [rescale(line, factor) for line in lines])
    hp = hparams(folder, time_unit=unit, batch_size=50)
    batch = next(FastBatches(hp)(path))
    expected = np.stack([reference_features(rescale(line, factor), day, 8) for line in lines],
                        axis=1)
    seconds = next(FastBatches(hparams(folder, batch_size=50))(
        write_file(folder / "seconds", lines)))
    for row, key in enumerate(("time_diff", "time_from_first_action", "time_to_now")):
        np.testing.assert_allclose(batch[key], expected[row], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(batch[key], seconds[key], rtol=1e-5, atol=1e-5)
        assert np.ptp(batch[key]) > 1
    if unit == "recommenders":
        assert_batches_equal([batch], [next(RecommendersBatches(hp)(path))])
    else:
        with pytest.raises(ValueError, match="time_unit"):
            RecommendersBatches(hp)


@pytest.mark.parametrize("bad, field, message", [
    ("x\tu1\ti1\tc1\t1500000000\ti1\tc1\t1500000000", "label", "not an integer ('x')"),
    ("1.0\tu1\ti1\tc1\t1500000000\ti1\tc1\t1500000000", "label", "not an integer ('1.0')"),
    ("1\tu1\ti1\tc1\tabc\ti1\tc1\t1500000000", "timestamp", "not a number ('abc')"),
    ("1\tu1\ti1\tc1\t1500000000\ti1,i2\tc1,c2\t1500000000,12:30", "time_history",
     "not a number ('12:30')"),
    ("1\tu1\ti1\tc1\t1500000000\ti1,i2\tc1,c2\t1500000000,", "time_history",
     "not a number ('')"),
    ("1\tu1\ti1\tc1\t1500000000\ti1,i2\tc1,c2\t", "time_history",  # stripped to 7 fields
     "time_history is empty"),
    ("1\tu1\ti1\tc1\t1500000000\t\t\t", "item_history",  # stripped to 5 fields
     "item_history, category_history and time_history are empty: every line needs a history "
     "of at least one entry"),
    ("2\tu1\ti1\tc1\t1500000000\ti1\tc1\t1500000000", "label", "not 0 or 1 (2)"),
    ("1\tu1\ti1\tc1\tnan\ti1\tc1\t1500000000", "timestamp", "not a finite number ('nan')"),
    ("1\tu1\ti1\tc1\t1500000000\ti1,i2\tc1,c2\t1,inf", "time_history",
     "not a finite number ('inf')"),
    ("1\tu1\ti1\tc1\t1500000000\ti1,i2\tc1\t1500000000,1500000001", "category_history",
     "1 entries, but item_history has 2"),
    ("1\tu1\ti1\tc1\t1500000000\ti1,i2\tc1,c2\t1500000000", "time_history",
     "1 entries, but item_history has 2"),
    ("1\tu1\ti1\tc1\t1500000000\ti1\tc1", "time_history",
     "7 tab-separated fields, expected 8"),
    ("1\tu1\ti1\tc1\t1500000000\ti1\tc1\t1500000000\t7\t8", "time_history",
     "10 tab-separated fields, expected 8"),
    ("1 u1 i1 c1 1500000000 i1 c1 1500000000", "user", "1 tab-separated fields, expected 8"),
])
@pytest.mark.parametrize("chunk_bytes", [1 << 20, 200])
def test_malformed_lines_name_the_line_and_field(folder, bad, field, message, chunk_bytes):
    lines = make_lines(20, 5, seed=9)
    lines[13] = bad
    path = write_file(folder / "data", lines)
    with pytest.raises(DataFormatError) as error:
        list(FastBatches(hparams(folder), chunk_bytes=chunk_bytes)(path))
    assert (error.value.path, error.value.line, error.value.field) == (path, 14, field)
    assert error.value.message == message
    assert str(error.value) == f"{path}, line 14, field '{field}': {message}"


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 200])
def test_an_empty_line_names_no_field(folder, chunk_bytes):
    lines = make_lines(20, 5, seed=9)
    lines[13] = ""
    path = write_file(folder / "data", lines)
    with pytest.raises(DataFormatError, match=f"^{path}, line 14: an empty line$"):
        list(FastBatches(hparams(folder), chunk_bytes=chunk_bytes)(path))


@pytest.mark.parametrize("bad, field", [
    ({7: "1\tu1\ti1\tc1\t1500000000\ti1,i2\tc1\t1,2", 19: "1\tu1\ti1\tc1\t1\ti1\tc1\tx"},
     "category_history"),
    ({7: "1\tu1\ti1\tc1\t1500000000\ti1\tc1\tx", 19: "x\tu1\ti1\tc1\t1\ti1\tc1\t1"},
     "time_history"),
    ({7: "1\tu1\ti1\tc1\t1500000000\ti1\tc1\tx", 9: "1\tu1"}, "time_history"),
    ({7: "x\tu1\ti1\tc1\tx\ti1\tc1\tx", 25: "1"}, "label"),
])
@pytest.mark.parametrize("chunk_bytes", [1 << 20, 150])
def test_the_first_malformed_line_is_reported(folder, bad, field, chunk_bytes):
    lines = make_lines(30, 5, seed=10)
    for index, line in bad.items():
        lines[index] = line
    path = write_file(folder / "data", lines)
    with pytest.raises(DataFormatError) as error:
        list(FastBatches(hparams(folder), chunk_bytes=chunk_bytes)(path))
    assert (error.value.line, error.value.field) == (8, field)


def test_dataset_matches_and_keeps_eager_execution(folder):
    path = write_file(folder / "data", make_lines(70, 12, seed=15))
    reader = FastBatches(hparams(folder))
    from_dataset = [{k: v.numpy() for k, v in batch.items()} for batch in reader.dataset(path)]
    assert_batches_equal(from_dataset, list(reader(path)))
    for batch in reader.dataset(path, 4, seed=2):
        check_training_batch({k: v.numpy() for k, v in batch.items()}, 5)
    assert tf.executing_eagerly()
    # Autotuning off: its thread makes deleting an iterator wait up to 60 s (the stall).
    assert reader.dataset(path).options().autotune.enabled is False
