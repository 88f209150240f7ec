"""Rows per second of Recommenders' SequentialIterator and of clsr_tf's FastBatches.

Generates a Recommenders sequential file (or reads ``--file`` with the vocab pickles of
``--data-dir``) and reads it in evaluation mode (no negatives, file order) and training mode
(``--num-ngs`` in-batch negatives, shuffled) with the Recommenders iterator (first pass,
parsing included, fresh iterator) and with FastBatches (every pass parses the file). Prints
wall-clock and CPU rows/s and the ratios to the iterator.

    python benchmarks/loader_speed.py --lines 50000 --max-history 50
"""

import argparse
import os
import pickle
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from clsr_tf.data.loader import FastBatches  # noqa: E402
from clsr_tf.data.recommenders_adapter import RecommendersBatches  # noqa: E402


def generate(folder, lines, max_history, seed=0, n_users=5000, n_items=50000, n_cates=500):
    """Write ``train_data`` and the three vocab pickles of a random sequential data set.

    Args:
        folder (str): Output folder.
        lines (int): Lines of the file.
        max_history (int): Longest history (lengths are uniform in 1..max_history).
        seed (int): Random seed.
        n_users (int): Users in the vocabulary.
        n_items (int): Items in the vocabulary.
        n_cates (int): Categories in the vocabulary.

    Returns:
        str: Path of the data file.
    """
    rng = np.random.default_rng(seed)
    users = np.array([f"U{i}" for i in range(n_users)])
    items = np.array([f"I{i}" for i in range(n_items)])
    cates = np.array([f"C{i}" for i in range(n_cates)])
    item_cate = rng.integers(0, n_cates, n_items)
    for name, keys, default in (("user_vocab.pkl", users, "default_uid"),
                                ("item_vocab.pkl", items, "default_mid"),
                                ("category_vocab.pkl", cates, "default_cat")):
        vocab = {default: 0}
        vocab.update({key: i + 1 for i, key in enumerate(keys)})
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(vocab, f)
    path = os.path.join(folder, "train_data")
    with open(path, "w") as f:
        for _ in range(lines):
            length = int(rng.integers(1, max_history + 1))
            history = rng.integers(0, n_items, length)
            times = np.sort(1500000000 + rng.integers(0, 30 * 86400, length))
            target = int(rng.integers(n_items))
            f.write("\t".join([
                str(int(rng.integers(2))), users[rng.integers(n_users)], items[target],
                cates[item_cate[target]], str(int(times[-1] + rng.integers(0, 86400))),
                ",".join(items[history]), ",".join(cates[item_cate[history]]),
                ",".join(map(str, times))]) + "\n")
    return path


def measure(make_batches, path, num_ngs):
    """(rows, wall seconds, CPU seconds) of one pass."""
    batches = make_batches()
    wall, cpu = time.perf_counter(), time.process_time()
    rows = sum(len(b["labels"]) for b in batches(path, num_ngs))
    return rows, time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", help="a Recommenders sequential file (default: generate one)")
    parser.add_argument("--data-dir", help="folder of the vocab pickles of --file")
    parser.add_argument("--lines", type=int, default=50000)
    parser.add_argument("--max-history", type=int, default=50)
    parser.add_argument("--max-seq-length", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--num-ngs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3,
                        help="passes per FastBatches measurement (the best one is reported)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.file:
            path, data_dir = args.file, args.data_dir or os.path.dirname(args.file)
        else:
            path, data_dir = generate(tmp, args.lines, args.max_history), tmp
        hp = dict(user_vocab="user_vocab.pkl", item_vocab="item_vocab.pkl",
                  cate_vocab="category_vocab.pkl", data_dir=data_dir,
                  batch_size=args.batch_size, max_seq_length=args.max_seq_length,
                  min_seq_length=1, time_unit="recommenders", seed=0)
        print(f"file {path}: {os.path.getsize(path) / 2**20:.1f} MiB, "
              f"max_seq_length {args.max_seq_length}, batch_size {args.batch_size}")
        print(f"{'mode':<6} {'reader':<26} {'rows':>9} {'rows/s':>11} {'x iter':>7} "
              f"{'CPU rows/s':>11} {'x iter':>7}")
        for mode, num_ngs in (("eval", 0), ("train", args.num_ngs)):
            rows, wall, cpu = measure(lambda: RecommendersBatches(hp), path, num_ngs)
            base = (rows / wall, rows / cpu)
            results = [("recommenders iterator", rows, wall, cpu)]
            fast = FastBatches(hp)
            results.append(("FastBatches", *min(
                (measure(lambda: fast, path, num_ngs) for _ in range(args.repeats)),
                key=lambda r: r[1])))
            for name, rows, wall, cpu in results:
                print(f"{mode:<6} {name:<26} {rows:>9} {rows / wall:>11,.0f} "
                      f"{rows / wall / base[0]:>6.1f}x {rows / cpu:>11,.0f} "
                      f"{rows / cpu / base[1]:>6.1f}x")


if __name__ == "__main__":
    main()
