"""Time, peak memory and output size of preparing a Taobao UserBehavior.csv of any size.

Writes a UserBehavior-format file (no header; user_id,item_id,category_id,behavior_type,
timestamp in seconds; behaviours pv/cart/fav/buy at the real file's shares 89.5/5.5/3.0/2.0%)
of ``--rows`` rows: about rows/100 users with their rows together (as in the real file), about
rows/25 items drawn with a power-law popularity, each in one of about 9,000 categories, times
uniform over the 9 days 2017-11-25 .. 2017-12-03 (UTC+8). The generator is seeded and writes
``--chunk-rows`` rows at a time, so it needs little memory at any size. Then it prepares the
file with ``hparams/taobao.yaml`` (clicks, 10-core, last day test, the day before valid, 20%
of valid/test lines, 4 / 99 negatives, L = 50), optionally on a seeded user sample
(``--sample-users``, the hparam ``prepare_sample_users``). Generation and preparation each run
in a child process (the preparation imports no TensorFlow); the script prints the rows, the
wall time and peak RSS of each child (its own ``ru_maxrss``, from ``os.wait4``), the counts
after the 10-core filter and the size of the prepared folder. The temporary folder is removed
at the end unless ``--keep`` names one.

    python benchmarks/prepare_scale.py --rows 1000000
    python benchmarks/prepare_scale.py --rows 100000000 --sample-users 0.05 --keep /data/tb
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

SHARES = {"pv": 0.895, "cart": 0.055, "fav": 0.030, "buy": 0.020}
N_CATES = 9_000
DAYS = 9
POPULARITY_EXPONENT = 3.0  # item = n_items * u**3: the most popular 1% of items get ~20% of rows


def write_user_behavior(path, rows, seed=0, chunk_rows=1_000_000):
    """Write a UserBehavior.csv of ``rows`` rows, chunk by chunk.

    Args:
        path (str): Output file.
        rows (int): Number of rows.
        seed (int): Seed of the generator.
        chunk_rows (int): Rows rendered at a time.

    Returns:
        dict: users, items and categories the file can hold.
    """
    import numpy as np
    import pandas as pd

    from clsr_tf.data.raw import TAOBAO_BEHAVIORS, local_day_start

    rng = np.random.default_rng(seed)
    n_users, n_items = max(1, rows // 100), max(1, rows // 25)
    start = local_day_start("2017-11-25")
    behaviors = np.array(TAOBAO_BEHAVIORS)
    shares = np.array([SHARES[name] for name in TAOBAO_BEHAVIORS])
    per_user = rows / n_users  # row r belongs to user r // per_user: a user's rows together
    written = 0
    with open(path, "w") as f:
        while written < rows:
            size = min(chunk_rows, rows - written)
            items = 1 + (n_items * rng.random(size) ** POPULARITY_EXPONENT).astype(np.int64)
            pd.DataFrame({
                "user_id": 1 + np.minimum((written + np.arange(size)) // per_user, n_users - 1)
                .astype(np.int64),
                "item_id": items,
                "category_id": 1 + (items * 2_654_435_761) % N_CATES,
                "behavior_type": behaviors[rng.choice(len(shares), size, p=shares)],
                "timestamp": start + rng.integers(0, DAYS * 86_400, size),
            }).to_csv(f, header=False, index=False)
            written += size
    return {"users": n_users, "items": n_items, "categories": N_CATES}


def prepare(raw_path, data_dir, sample_users):
    """Prepare ``raw_path`` with hparams/taobao.yaml into ``data_dir`` (no TensorFlow import).

    Returns:
        dict: Counts, rows read and rows left out of the prepared data set.
    """
    from clsr_tf.datasets import prepare_data
    from clsr_tf.hparams import read_yaml, validate

    values = read_yaml(os.path.join(ROOT, "hparams", "taobao.yaml"))
    values.update(raw_path=raw_path, data_dir=data_dir)
    if sample_users < 1.0:
        values["prepare_sample_users"] = sample_users
    info = prepare_data(validate(values, "hparams/taobao.yaml"))
    return {"counts": info["counts"], "raw_rows": info["raw_rows"],
            "left_out": info["raw_rows_left_out"]}


def run_child(*argv):
    """Run this script as a child; its last stdout line (JSON), wall time and peak RSS (MiB).

    The peak is the child's own ``ru_maxrss`` (``os.wait4``); it includes the few tens of MiB
    the parent (no numpy, no pandas) had when the child was forked.
    """
    begin = time.time()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), *argv],
                                 stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.time() - begin
        out.seek(0)
        err.seek(0)
        if child.returncode:
            sys.exit(f"{argv[0]} failed ({child.returncode}):\n{err.read()}")
        result = json.loads(out.read().strip().splitlines()[-1])
    return result, wall, usage.ru_maxrss / 2**10


def folder_bytes(folder):
    """Total size of the files in a folder."""
    return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.is_file())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample-users", type=float, default=1.0,
                        help="fraction of users kept before the 10-core filter (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--keep", help="folder to write into and keep (default: a temporary one)")
    parser.add_argument("--generate", metavar="RAW", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", nargs=2, metavar=("RAW", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate or args.prepare:
        result = (write_user_behavior(args.generate, args.rows, args.seed, args.chunk_rows)
                  if args.generate else prepare(*args.prepare, args.sample_users))
        print(json.dumps(result))
        return
    folder = args.keep or tempfile.mkdtemp(prefix="prepare_scale_")
    os.makedirs(folder, exist_ok=True)
    raw_path, data_dir = os.path.join(folder, "UserBehavior.csv"), os.path.join(folder, "taobao")
    try:
        shape, wall, peak = run_child("--generate", raw_path, "--rows", str(args.rows),
                                      "--seed", str(args.seed),
                                      "--chunk-rows", str(args.chunk_rows))
        print(f"generated {args.rows:,} rows ({shape['users']:,} users, {shape['items']:,} items"
              f", {shape['categories']:,} categories; {os.path.getsize(raw_path) / 2**20:.0f} MiB)"
              f" in {wall:.1f}s, peak RSS {peak:.0f} MiB", flush=True)
        result, wall, peak = run_child("--prepare", raw_path, data_dir,
                                       "--sample-users", str(args.sample_users))
        counts = result["counts"]
        print(f"prepared (hparams/taobao.yaml, sample_users {args.sample_users}) in {wall:.1f}s, "
              f"peak RSS {peak:.0f} MiB, output {folder_bytes(data_dir) / 2**20:.0f} MiB")
        print(f"  raw rows {result['raw_rows']:,}, left out {result['left_out']}")
        print(f"  after 10-core: {counts['users']:,} users, {counts['items']:,} items, "
              f"{counts['interactions']:,} interactions; lines {counts['lines']}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
