"""Peak memory (RSS) of CLSR training with the fast loader on a Kuaishou-size file.

Writes a Recommenders sequential training file of ``--lines`` lines (Kuaishou: 15M lines,
histories of up to 250 entries, about 60k users and 290k items) into a temporary folder,
rendered chunk by chunk with numpy in a subprocess, then trains CLSR (paper sizes,
max_seq_length 250, batch 500 lines + 4 in-batch negatives) with ``FastBatches``: one warm-up
step (tracing), then ``--steps`` timed steps or, with ``--full``, one epoch. Prints the peak
RSS of the training process (``getrusage``; the generator's is reported apart) and rows/s.
The file is removed at the end.

    python benchmarks/peak_memory.py --lines 2000000 --steps 10
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from clsr_tf.data.tsv import ranges as _ranges  # noqa: E402

from loader_speed import generate  # noqa: E402

_WIDTH = 12  # bytes per rendered token: prefix, 10 digits, separator
_POWERS = 10 ** np.arange(1, 11, dtype=np.int64)
_DIGITS5 = (np.arange(100000)[:, None] // 10 ** np.arange(4, -1, -1) % 10 + 48).astype(np.uint8)
_KEEP = np.arange(_WIDTH) >= np.arange(_WIDTH)[:, None]  # row k: cells k.. of a token
TAB, COMMA, NEWLINE = 9, 44, 10


def render(values, prefixes, separators):
    """Concatenated text of tokens: an optional prefix letter, decimal digits, a separator.

    Args:
        values (np.ndarray): Non-negative int64 values below 10**10.
        prefixes (np.ndarray): uint8 prefix letter of each token (0: none).
        separators (np.ndarray): uint8 byte after each token.

    Returns:
        np.ndarray: uint8 bytes.
    """
    cells = np.empty((len(values), _WIDTH), dtype=np.uint8)
    cells[:, 1:6] = _DIGITS5[values // 100000]
    cells[:, 6:11] = _DIGITS5[values % 100000]
    cells[:, 11] = separators
    digits = 1 + np.searchsorted(_POWERS, values, side="right")
    has = prefixes > 0
    cells[np.flatnonzero(has), 10 - digits[has]] = prefixes[has]
    return cells[_KEEP[_WIDTH - 1 - digits - has]]


def chunk_text(rng, lines, max_history, n_users, item_cate):
    """Text of ``lines`` random training lines (keys as ``loader_speed.generate`` names them).

    Args:
        rng (np.random.Generator): Source of randomness.
        lines (int): Lines to render.
        max_history (int): Longest history (lengths uniform in 1..max_history).
        n_users (int): Users ``U0``..; items ``I0``.. and categories ``C0``.. come from
            ``item_cate`` (item -> category).
        item_cate (np.ndarray): Category of each item.

    Returns:
        np.ndarray: uint8 bytes of whole lines.
    """
    n = rng.integers(1, max_history + 1, lines)
    tokens = 5 + 3 * n
    start = np.cumsum(tokens) - tokens
    total = int(tokens.sum())
    values = np.empty(total, dtype=np.int64)
    prefixes = np.zeros(total, dtype=np.uint8)
    separators = np.full(total, COMMA, dtype=np.uint8)
    items = rng.integers(0, len(item_cate), lines)
    history = rng.integers(0, len(item_cate), int(n.sum()))
    gaps = rng.integers(1, 3600, len(history))
    clock = np.cumsum(gaps)
    first = np.cumsum(n) - n
    times = (clock - np.repeat(clock[first] - gaps[first], n)
             + np.repeat(1500000000 + rng.integers(0, 7 * 86400, lines), n))
    head = (np.ones(lines, dtype=np.int64), rng.integers(0, n_users, lines), items,
            item_cate[items], times[first + n - 1] + rng.integers(1, 3600, lines))
    for k, (column, prefix) in enumerate(zip(head, (0, ord("U"), ord("I"), ord("C"), 0))):
        values[start + k] = column
        prefixes[start + k] = prefix
        separators[start + k] = TAB
    for k, (column, prefix) in enumerate(((history, ord("I")), (item_cate[history], ord("C")),
                                          (times, 0))):
        where = _ranges(start + 5 + k * n, n)
        values[where] = column
        prefixes[where] = prefix
        separators[start + 4 + (k + 1) * n] = NEWLINE if k == 2 else TAB
    return render(values, prefixes, separators)


def generate_file(folder, lines, max_history, seed=0, n_users=60000, n_items=290000,
                  n_cates=1000, tokens_per_chunk=2000000):
    """Write the vocab pickles and a ``train_data`` of ``lines`` lines, chunk by chunk.

    Args:
        folder (str): Output folder.
        lines (int): Lines of the file.
        max_history (int): Longest history.
        seed (int): Random seed.
        n_users (int): Users in the vocabulary.
        n_items (int): Items in the vocabulary.
        n_cates (int): Categories in the vocabulary.
        tokens_per_chunk (int): About how many tokens are rendered at a time.

    Returns:
        str: Path of the data file.
    """
    path = generate(folder, 0, max_history, seed, n_users, n_items, n_cates)  # vocabs only
    rng = np.random.default_rng(seed)
    item_cate = rng.integers(0, n_cates, n_items)
    per_chunk = max(1, tokens_per_chunk // (5 + 3 * (max_history + 1) // 2))
    with open(path, "wb") as f:
        for done in range(0, lines, per_chunk):
            chunk_text(rng, min(per_chunk, lines - done), max_history, n_users,
                       item_cate).tofile(f)
    return path


def peak_rss_gib(who):
    """Peak resident set size of this process or of its largest finished child, in GiB."""
    return resource.getrusage(who).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def train(path, data_dir, args):
    """Train CLSR on ``path`` after one warm-up step (tracing), and time it.

    Args:
        path (str): Training file.
        data_dir (str): Folder of its vocab pickles.
        args (argparse.Namespace): Benchmark options.

    Returns:
        dict: ``rows``, ``seconds`` (after the warm-up), ``rss_before_gib`` (after
        building the model).
    """
    from train_speed import build_clsr, count_lines

    model, batches = build_clsr(data_dir, args.max_seq_length, args.batch_size, args.num_ngs)
    rss_before = peak_rss_gib(resource.RUSAGE_SELF)
    model.fit(batches.dataset(path, args.num_ngs, seed=0).take(1), verbose=0)
    data = batches.dataset(path, args.num_ngs, seed=1)
    start = time.perf_counter()
    if args.full:
        model.fit(data, verbose=0)
        lines = count_lines(path)
    else:
        model.fit(data, steps_per_epoch=args.steps, verbose=0)
        lines = args.steps * args.batch_size
    return {"rows": lines * (1 + args.num_ngs), "seconds": time.perf_counter() - start,
            "rss_before_gib": rss_before}


def build_parser():
    """The command-line interface.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lines", type=int, default=15000000, help="lines of the generated file")
    p.add_argument("--max-history", type=int, default=250)
    p.add_argument("--max-seq-length", type=int, default=250)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--num-ngs", type=int, default=4)
    p.add_argument("--steps", type=int, default=10,
                   help="timed training steps after one warm-up step (without --full)")
    p.add_argument("--full", action="store_true", help="train one full epoch")
    p.add_argument("--tmp-dir", help="where the temporary file goes (default: the system's)")
    p.add_argument("--generate", metavar="DIR", help=argparse.SUPPRESS)
    return p


def main():
    args = build_parser().parse_args()
    if args.generate:
        generate_file(args.generate, args.lines, args.max_history)
        return
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, os.path.abspath(__file__), "--generate", tmp,
                        "--lines", str(args.lines), "--max-history", str(args.max_history)],
                       check=True)
        generation = time.perf_counter() - start
        path = os.path.join(tmp, "train_data")
        print(f"generated {args.lines} lines (histories 1..{args.max_history}), "
              f"{os.path.getsize(path) / 2**30:.2f} GiB in {generation:.0f}s, "
              f"peak RSS {peak_rss_gib(resource.RUSAGE_CHILDREN):.2f} GiB", flush=True)
        result = train(path, tmp, args)
    peak = peak_rss_gib(resource.RUSAGE_SELF)
    what = "one epoch" if args.full else f"{args.steps} steps"
    print(f"trained {what}: {result['rows']} rows in {result['seconds']:.0f}s, "
          f"{result['rows'] / result['seconds']:,.0f} rows/s")
    print(f"peak RSS of training: {peak:.2f} GiB ({result['rss_before_gib']:.2f} GiB after "
          f"building the model); target < 6 GB: {'met' if peak * 2**30 < 6e9 else 'MISSED'}")
    print(json.dumps({"lines": args.lines, "generate_seconds": round(generation, 1),
                      "train_rows": result["rows"], "train_seconds": round(result["seconds"], 1),
                      "peak_rss_gib": round(peak, 3)}))


if __name__ == "__main__":
    main()
