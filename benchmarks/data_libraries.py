"""Own byte-level data code against library kernels, on the same files in one invocation.

Each measurement runs both sides on the same input and checks that they give the same
arrays (or bytes), then prints the best of ``--repeats`` timings:

1. reading a Recommenders sequential file (``loader_speed.generate``) into the parsed arrays:
   ``clsr_tf.data.tsv.LineParser`` against pyarrow (CSV reader, ``split_pattern``,
   ``index_in``, ``cast``) and against TensorFlow's string ops (``TextLineDataset``,
   ``tf.strings.split``, ``StaticHashTable``, ``tf.strings.to_number``);
2. per 1 MiB chunk: the vocabulary lookup (``ByteVocab`` against ``pyarrow.compute.index_in``,
   with the file's 50,000-item vocabulary and with a Kuaishou-size one) and the number parsing
   (SWAR against ``pyarrow.compute.cast``, plain digit strings checked first, since pyarrow also
   accepts strings that Python's ``float``/``int`` reject, e.g. "nan(1)", "0x10");
3. writing the prepared files of a data set: ``clsr_tf.data.writers.LineWriter`` (pyarrow
   string kernels) against the byte-gather writer it replaced (kept below for this purpose).

    python benchmarks/data_libraries.py --lines 50000
"""

import argparse
import hashlib
import os
import pickle
import shutil
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from clsr_tf.data import protocol, registry, tsv  # noqa: E402
from clsr_tf.data.contract import POSITION_KEYS, TIME_RANGE  # noqa: E402
from clsr_tf.data.vocab import ByteVocab  # noqa: E402

from loader_speed import generate  # noqa: E402

VOCABS = ("user_vocab.pkl", "item_vocab.pkl", "category_vocab.pkl")


def best(function, repeats):
    """(result, best wall seconds) of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, min(times)


def report(what, ours, library, name):
    """Print one comparison line."""
    print(f"{what:<50} ours {ours * 1e3:9.1f} ms   {name:<10} {library * 1e3:9.1f} ms   "
          f"library / ours {library / ours:5.2f}x", flush=True)


def concat(chunks, keys):
    return {k: np.concatenate([c[k] for c in chunks]) for k in keys}


# ---- 1. reading a file ---------------------------------------------------------------------

def arrow_parse(path, vocabs, width, day):
    """The parsed arrays of a file through pyarrow's CSV reader and compute kernels."""
    keys = [(pa.array(list(v), pa.string()), np.array(list(v.values()), np.int32))
            for v in vocabs]

    def lookup(column, vocab):
        position = pc.index_in(column, value_set=vocab[0]).fill_null(-1).to_numpy()
        return np.where(position >= 0, vocab[1][position], 0).astype(np.int32)

    reader = pcsv.open_csv(
        path, read_options=pcsv.ReadOptions(column_names=list(tsv.FIELDS), block_size=1 << 20),
        parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False,
                                        ignore_empty_lines=False),
        convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(tsv.FIELDS, pa.string())))
    out = []
    for batch in reader:
        col = dict(zip(tsv.FIELDS, batch.columns))
        items, cates, times = (pc.split_pattern(col[f], ",") for f in tsv.FIELDS[5:])
        offsets = items.offsets.to_numpy()
        length = np.diff(offsets)
        kept = np.minimum(length, width)
        last = pa.array(tsv.ranges(offsets[1:] - kept, kept))
        now = pc.cast(col["timestamp"], pa.float64()).to_numpy()
        chunk = {"labels": pc.cast(col["label"], pa.int64()).to_numpy().astype(np.float32),
                 "users": lookup(col["user"], keys[0]), "items": lookup(col["item"], keys[1]),
                 "cates": lookup(col["category"], keys[2]), "time": now.astype(np.float32),
                 "length": length.astype(np.int32),
                 "item_history": lookup(items.values.take(last), keys[1]),
                 "item_cate_history": lookup(cates.values.take(last), keys[2])}
        chunk.update(tsv.time_features(pc.cast(times.values, pa.float64()).to_numpy(), now,
                                       length, kept, day))
        out.append(chunk)
    return out


def tf_parse(path, vocabs, width, day):
    """The parsed arrays of a file through tf.data and TensorFlow's string ops."""
    import tensorflow as tf

    tables = [tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(v)), tf.constant(list(v.values()), tf.int32)), 0) for v in vocabs]

    def parse(lines):
        fields = tf.strings.split(lines, "\t").to_tensor()
        items, cates, times = (tf.strings.split(fields[:, k], ",") for k in (5, 6, 7))
        return {"labels": tf.strings.to_number(fields[:, 0], tf.int64),
                "users": tables[0].lookup(fields[:, 1]), "items": tables[1].lookup(fields[:, 2]),
                "cates": tables[2].lookup(fields[:, 3]),
                "now": tf.strings.to_number(fields[:, 4], tf.float64),
                "length": items.row_lengths(), "item_history": tables[1].lookup(items.values),
                "item_cate_history": tables[2].lookup(cates.values),
                "times": tf.strings.to_number(times.values, tf.float64)}

    out = []
    for batch in tf.data.TextLineDataset(path).batch(20000).map(parse):
        b = {k: v.numpy() for k, v in batch.items()}
        length = b["length"]
        kept = np.minimum(length, width)
        last = tsv.ranges(np.cumsum(length) - kept, kept)
        chunk = {"labels": b["labels"].astype(np.float32), "users": b["users"],
                 "items": b["items"], "cates": b["cates"], "time": b["now"].astype(np.float32),
                 "length": length.astype(np.int32), "item_history": b["item_history"][last],
                 "item_cate_history": b["item_cate_history"][last]}
        chunk.update(tsv.time_features(b["times"], b["now"], length, kept, day))
        out.append(chunk)
    return out


def compare_readers(path, folder, width, repeats):
    vocab_dicts = []
    for name in VOCABS:
        with open(os.path.join(folder, name), "rb") as f:
            vocab_dicts.append(pickle.load(f))
    day = TIME_RANGE["recommenders"]
    parser = tsv.LineParser(*(ByteVocab(v) for v in vocab_dicts), width, day)
    keys = tsv.LINE_KEYS + POSITION_KEYS
    ours, ours_s = best(lambda: list(parser.parse_file(path, 1 << 20)), repeats)
    ours = concat(ours, keys)
    for name, reader in (("pyarrow", arrow_parse), ("tf.strings", tf_parse)):
        theirs, theirs_s = best(lambda: reader(path, vocab_dicts, width, day), repeats)
        theirs = concat(theirs, keys)
        for key in keys:
            np.testing.assert_allclose(theirs[key], ours[key], rtol=1e-6, err_msg=key)
        report(f"read {os.path.getsize(path) / 2**20:.1f} MiB into arrays", ours_s, theirs_s,
               name)


# ---- 2. per chunk: vocabulary lookup, numbers ---------------------------------------------

def compare_chunk_kernels(path, folder, repeats, big_vocab):
    with open(os.path.join(folder, "item_vocab.pkl"), "rb") as f:
        items = pickle.load(f)
    data = next(tsv.read_chunks(path, 1 << 20))
    front = tsv._FRONT
    padded = np.zeros(front + len(data) + 64, dtype=np.uint8)
    padded[front - 1] = ord(",")
    padded[front:front + len(data)] = np.frombuffer(data, dtype=np.uint8)
    region = padded[front - 1:front + len(data)]
    is_sep = (region == 9) | (region == 10) | (region == 44)
    bounds = np.flatnonzero(is_sep) + (front - 1)
    sep = bounds[1:]
    kind = padded[sep]
    newline = np.flatnonzero(kind == 10)
    tabs = np.flatnonzero(kind == 9).reshape(len(newline), 7)
    # With every separator byte set to 0xFF, token k plus its separator is padded[b_k + 1:
    # b_(k+1) + 1]: a zero-copy pyarrow binary array whose keys end in 0xFF.
    marked = padded.copy()
    marked[front - 1:front + len(data)][is_sep] = 0xFF
    tokens = pa.Array.from_buffers(pa.binary(), len(sep), [
        None, pa.py_buffer((bounds + 1).astype(np.int32)), pa.py_buffer(marked)])

    history = tsv.ranges(tabs[:, 4] + 1, tabs[:, 5] - tabs[:, 4])
    starts = bounds[history] + 1
    lengths = sep[history] - starts
    for label, vocab in (("file's", items), ("Kuaishou-size", big_vocab)):
        ours = ByteVocab(vocab)
        keys = pa.array([k.encode() + b"\xff" for k in vocab], pa.binary())
        values = np.array(list(vocab.values()), np.int32)

        def arrow_lookup():
            position = pc.index_in(tokens.take(pa.array(history)), value_set=keys)
            position = position.fill_null(-1).to_numpy()
            return np.where(position >= 0, values[position], 0)

        a, a_s = best(lambda: ours.lookup(padded, starts, lengths, False), repeats)
        b, b_s = best(arrow_lookup, repeats)
        np.testing.assert_array_equal(a, b)
        report(f"lookup {len(history):,} tokens, {label} {len(vocab):,} keys", a_s, b_s,
               "index_in")

    times = tsv.ranges(tabs[:, 6] + 1, newline - tabs[:, 6])
    starts = bounds[times] + 1
    lengths = sep[times] - starts
    text = pa.Array.from_buffers(pa.binary(), len(sep), [
        None, pa.py_buffer((bounds + 1).astype(np.int32)), pa.py_buffer(padded)])

    def arrow_numbers():
        values = pc.binary_slice(text.take(pa.array(times)), 0, -1).cast(pa.string())
        if not pc.all(pc.ascii_is_decimal(values)).as_py():
            raise ValueError("not all plain digits")
        return pc.cast(values, pa.float64()).to_numpy()

    a, a_s = best(lambda: tsv._numbers(data, padded, starts, lengths, False)[0], repeats)
    b, b_s = best(arrow_numbers, repeats)
    np.testing.assert_array_equal(a, b)
    report(f"parse {len(times):,} timestamps", a_s, b_s, "cast")


# ---- 3. writing a data set -----------------------------------------------------------------

class ByteGatherWriter:
    """The hand-written writer that ``writers.LineWriter`` replaced: each line is gathered
    byte by byte from one pool of comma-terminated tokens (19 segments a line)."""

    def __init__(self, data, max_seq_length):
        self.data, self.max_seq_length = data, max_seq_length
        tables = {c: self._token_table(data.names[c]) for c in ("user", "item", "cate")}
        item_hist = self._buffer(tables["item"][0], tables["item"][1][data.item, None],
                                 tables["item"][2][data.item, None] + 1)
        cate_hist = self._buffer(tables["cate"][0], tables["cate"][1][data.cate, None],
                                 tables["cate"][2][data.cate, None] + 1)
        digits = np.ones(len(data.time), dtype=np.int64)
        for power in 10 ** np.arange(1, 19, dtype=np.int64):
            digits += data.time >= power
        text = np.frombuffer(data.time.astype("S19").tobytes() + b",", dtype=np.uint8)
        rows = np.arange(len(data.time), dtype=np.int64)
        time_hist = self._buffer(text, np.stack([rows * 19, np.full_like(rows, len(text) - 1)], 1),
                                 np.stack([digits, np.ones_like(digits)], 1))
        parts = [np.frombuffer(b"01\t\n", dtype=np.uint8)]
        parts += [tables[c][0] for c in ("user", "item", "cate")]
        parts += [item_hist[0], cate_hist[0], time_hist[0]]
        bases = np.cumsum([0] + [len(part) for part in parts[:-1]])
        self.pool = np.concatenate(parts)
        self.tokens = {c: (bases[1 + k] + tables[c][1], tables[c][2])
                       for k, c in enumerate(("user", "item", "cate"))}
        self.histories = [(bases[4 + k] + h[1], h[1])
                          for k, h in enumerate((item_hist, cate_hist, time_hist))]

    @staticmethod
    def _token_table(names):
        encoded = [name.encode("utf-8") for name in names]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        starts = np.cumsum(lengths + 1) - (lengths + 1)
        return np.frombuffer(b",".join(encoded) + b",", dtype=np.uint8), starts, lengths

    @staticmethod
    def _gather_rows(pool, starts, lengths):
        row_bytes = lengths.sum(axis=1)
        bounds = np.searchsorted(np.cumsum(row_bytes),
                                 np.arange(1 << 20, row_bytes.sum(), 1 << 20))
        for rows in np.split(np.arange(len(row_bytes)), np.unique(bounds)):
            if rows.size:
                s, n = starts[rows].ravel(), lengths[rows].ravel()
                ends = np.cumsum(n)
                yield pool[np.repeat(s - (ends - n), n) + np.arange(ends[-1])]

    def _buffer(self, pool, starts, lengths):
        offsets = np.concatenate([[0], np.cumsum(lengths.sum(axis=1))])
        return np.concatenate(list(self._gather_rows(pool, starts, lengths))), offsets

    def _segments(self, labels, rows, items):
        data = self.data
        starts = np.full((len(rows), 19), 2, dtype=np.int64)  # pool[2] is a tab
        lengths = np.ones((len(rows), 19), dtype=np.int64)
        starts[:, 0], starts[:, 18] = labels, 3  # "0"/"1", then a newline
        for column, codes, position in (("user", data.user[rows], 2), ("item", items, 4),
                                        ("cate", data.item_cate[items], 6)):
            starts[:, position] = self.tokens[column][0][codes]
            lengths[:, position] = self.tokens[column][1][codes]
        first = data.first[rows]
        truncated = rows - first > self.max_seq_length + 1
        recent = np.where(truncated, rows - self.max_seq_length, first)
        time_pool, time_offsets = self.histories[2]
        starts[:, 8] = time_pool[rows]
        lengths[:, 8] = time_offsets[rows + 1] - time_offsets[rows] - 1
        for position, (pool_offsets, offsets) in zip((10, 13, 16), self.histories):
            starts[:, position] = pool_offsets[first]
            lengths[:, position] = np.where(truncated, offsets[first + 1] - offsets[first], 0)
            starts[:, position + 1] = pool_offsets[recent]
            lengths[:, position + 1] = offsets[rows] - offsets[recent] - 1
        return starts, lengths

    def write(self, path, labels, rows, items):
        with open(path, "wb") as handle:
            for block in range(0, len(rows), 65_536):
                part = slice(block, block + 65_536)
                starts, lengths = self._segments(labels[part], rows[part], items[part])
                for chunk in self._gather_rows(self.pool, starts, lengths):
                    handle.write(memoryview(chunk))


def write_files(folder, name, options, writer_class):
    """((sha1s, MiB) of the three data files, seconds in the writer) of one preparation.

    ``writer_class`` None is ``writers.LineWriter``; the time covers building the writer and
    its writes.
    """
    spent = [0.0]
    original = protocol.Interactions.line_writer

    def line_writer(data, max_seq_length):
        start = time.perf_counter()
        writer = (writer_class(data, max_seq_length) if writer_class
                  else original(data, max_seq_length))
        spent[0] += time.perf_counter() - start
        write = writer.write

        def timed(*args):
            start = time.perf_counter()
            write(*args)
            spent[0] += time.perf_counter() - start
        writer.write = timed
        return writer

    protocol.Interactions.line_writer = line_writer
    try:
        out = os.path.join(folder, "prepared")
        registry.prepare_dataset(name, None, out, force=True, **options)
    finally:
        protocol.Interactions.line_writer = original
    files = [os.path.join(out, f) for f in ("train_data", "valid_data", "test_data")]
    digest = [hashlib.sha1(open(f, "rb").read()).hexdigest() for f in files]
    mib = sum(os.path.getsize(f) for f in files) / 2**20
    shutil.rmtree(out)
    return (digest, mib), spent[0]


def compare_writers(folder, repeats, synthetic_users):
    for name, options in (("movielens", {"max_seq_length": 50}),
                          ("synthetic", {"max_seq_length": 50, "n_users": synthetic_users,
                                         "interactions_per_user": 100})):
        runs = {side: [write_files(folder, name, options, writer) for _ in range(repeats)]
                for side, writer in (("ours", ByteGatherWriter), ("library", None))}
        (ours, mib), (theirs, _) = runs["ours"][0][0], runs["library"][0][0]
        assert ours == theirs, "the writers' files differ"
        ours_s, theirs_s = (min(run[1] for run in runs[side]) for side in ("ours", "library"))
        report(f"write {name} ({mib:,.0f} MiB, identical bytes)", ours_s, theirs_s, "pyarrow")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=50000)
    parser.add_argument("--max-history", type=int, default=50)
    parser.add_argument("--max-seq-length", type=int, default=50)
    parser.add_argument("--kuaishou-items", type=int, default=290000)
    parser.add_argument("--synthetic-users", type=int, default=20000,
                        help="users x 100 interactions of the synthetic set written")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = generate(tmp, args.lines, args.max_history)
        print(f"pyarrow {pa.__version__}, numpy {np.__version__}; "
              f"best of {args.repeats}, wall clock", flush=True)
        compare_readers(path, tmp, args.max_seq_length, args.repeats)
        big = {"default_mid": 0, **{f"I{i}": i + 1 for i in range(args.kuaishou_items)}}
        compare_chunk_kernels(path, tmp, 20 * args.repeats, big)
        compare_writers(tmp, max(1, args.repeats // 2), args.synthetic_users)


if __name__ == "__main__":
    main()
