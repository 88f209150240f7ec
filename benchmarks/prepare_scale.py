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

At Taobao's full size the data files outgrow most disks (about 2.7 GiB per million raw rows,
mostly the 1 + 99 test lines): ``--sink EVERY`` assembles their lines without writing them, one
block of 65,536 lines in EVERY (1: all), and reports their size (assembled bytes scaled by the
lines; the meta sidecars, vocabularies and info are written). ``--raw`` prepares an existing
file instead of generating one; ``--max-rss-gib`` kills a child whose resident memory grows
past it (the run then reports that it does not fit); ``--sample-counts`` only prints the users,
items and interactions after the 10-core filter of each user sample (one read, no
preparation), to find the fraction of a target size.

    python benchmarks/prepare_scale.py --rows 1000000
    python benchmarks/prepare_scale.py --rows 100000000 --keep /data/tb --sink 10 --max-rss-gib 19
    python benchmarks/prepare_scale.py --raw /data/tb/UserBehavior.csv --sample-counts 0.03 0.04
    python benchmarks/prepare_scale.py --raw /data/tb/UserBehavior.csv --sample-users 0.038
"""

import argparse
import json
import os
import shutil
import signal
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
    import pyarrow as pa
    from pyarrow import csv

    from clsr_tf.data.raw import TAOBAO_BEHAVIORS, local_day_start

    rng = np.random.default_rng(seed)
    n_users, n_items = max(1, rows // 100), max(1, rows // 25)
    start = local_day_start("2017-11-25")
    behaviors = pa.array(TAOBAO_BEHAVIORS)
    shares = np.array([SHARES[name] for name in TAOBAO_BEHAVIORS])
    per_user = rows / n_users  # row r belongs to user r // per_user: a user's rows together
    options = csv.WriteOptions(include_header=False, quoting_style="none")  # as pandas writes
    written = 0
    with open(path, "wb") as f:
        while written < rows:
            size = min(chunk_rows, rows - written)
            items = 1 + (n_items * rng.random(size) ** POPULARITY_EXPONENT).astype(np.int64)
            csv.write_csv(pa.table({
                "user_id": 1 + np.minimum((written + np.arange(size)) // per_user, n_users - 1)
                .astype(np.int64),
                "item_id": items,
                "category_id": 1 + (items * 2_654_435_761) % N_CATES,
                "behavior_type": behaviors.take(rng.choice(len(shares), size, p=shares)),
                "timestamp": start + rng.integers(0, DAYS * 86_400, size),
            }), f, options)
            written += size
    return {"users": n_users, "items": n_items, "categories": N_CATES}


def sink_data_files(every):
    """Assemble the data files' lines (train_data, valid_data, test_data) without writing them.

    Replaces ``LineWriter.write`` in this process: it assembles one block of lines in
    ``every`` (all of them when 1) and records the file's size, the bytes assembled scaled by
    lines in the file / lines assembled (exact when ``every`` is 1).

    Args:
        every (int): Assemble every ``every``-th block of ``writers._LINES_PER_BLOCK`` lines.

    Returns:
        dict: File name -> its (estimated) size in bytes, filled as the files are "written".
    """
    from clsr_tf.data import writers

    sizes = {}

    def write(self, path, labels, rows, items):
        assembled = lines = 0
        for start in range(0, len(rows), every * writers._LINES_PER_BLOCK):
            part = slice(start, start + writers._LINES_PER_BLOCK)
            assembled += self._lines(labels[part], rows[part], items[part]).size
            lines += len(rows[part])
        sizes[os.path.basename(path)] = round(assembled * len(rows) / max(lines, 1))

    writers.LineWriter.write = write
    return sizes


def prepare(raw_path, data_dir, sample_users, sink_every=0):
    """Prepare ``raw_path`` with hparams/taobao.yaml into ``data_dir`` (no TensorFlow import).

    Args:
        raw_path (str): The UserBehavior.csv.
        data_dir (str): The prepared folder.
        sample_users (float): ``prepare_sample_users`` (1: all users).
        sink_every (int): 0: write the data files; else assemble one block of their lines in
            ``sink_every`` and only count the bytes (``sink_data_files``).

    Returns:
        dict: Counts, rows read and rows left out of the prepared data set, and the sizes of
        the data files not written.
    """
    from clsr_tf.datasets import prepare_data
    from clsr_tf.hparams import read_yaml, validate

    sunk = sink_data_files(sink_every) if sink_every else {}

    values = read_yaml(os.path.join(ROOT, "hparams", "taobao.yaml"))
    values.update(raw_path=raw_path, data_dir=data_dir)
    if sample_users < 1.0:
        values["prepare_sample_users"] = sample_users
    # The preparation alone: the validation pass that commands run next is not timed (and
    # a sink leaves no data files to check).
    info = prepare_data(validate(values, "hparams/taobao.yaml"), check=False)
    return {"counts": info["counts"], "raw_rows": info["raw_rows"],
            "left_out": info["raw_rows_left_out"],
            "sunk": sunk}


def sample_counts(raw_path, rates, seed=42):
    """Users, items and interactions after the 10-core filter of seeded user samples of a file.

    Reads the clicks of the 9 days once (pyarrow's csv reader, no checks: the file is this
    script's), then applies the reader's ``sampled_users`` and the protocol's ``kcore_mask``
    for each rate, as the preparation with ``prepare_sample_users`` would, without the rest.

    Args:
        raw_path (str): A UserBehavior.csv.
        rates (list): Fractions of users to try.
        seed (int): Seed of the sample (the hparam ``seed``, 42 in hparams/taobao.yaml).

    Returns:
        dict: Rate (str) -> users, items, interactions after the 10-core.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv

    from clsr_tf.data.protocol import kcore_mask
    from clsr_tf.data.raw import local_day_start, sampled_users

    table = csv.read_csv(raw_path, read_options=csv.ReadOptions(
        column_names=["user", "item", "cate", "behavior", "time"]),
        convert_options=csv.ConvertOptions(
            include_columns=["user", "item", "behavior", "time"],
            column_types={"user": pa.int64(), "item": pa.int64(), "time": pa.int64()}))
    start = local_day_start("2017-11-25")
    table = table.filter(pc.and_(pc.equal(table["behavior"], "pv"), pc.and_(
        pc.greater_equal(table["time"], start), pc.less(table["time"], start + DAYS * 86_400))))
    user, item = table["user"].to_numpy(), table["item"].to_numpy()
    del table
    counts = {}
    for rate in rates:
        chosen = sampled_users(np.arange(user.max() + 1), rate, seed)[user]
        users, items = user[chosen], item[chosen]
        keep = kcore_mask(users, items, 10, 10)
        counts[str(rate)] = {"users": len(np.unique(users[keep])),
                             "items": len(np.unique(items[keep])),
                             "interactions": int(keep.sum())}
    return counts


def resident_mib(pid):
    """Resident memory of a live process (MiB, from /proc), 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as status:
            line = next(line for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0.0
    return int(line.split()[1]) / 2**10


def run_child(*argv, max_rss_mib=None):
    """Run this script as a child; its last stdout line (JSON), wall time and peak RSS (MiB).

    The peak is the child's own ``ru_maxrss`` (``os.wait4``); it includes the few tens of MiB
    the parent (no numpy, no pandas) had when the child was forked. With ``max_rss_mib`` the
    child's resident memory is read every 0.2 s and the child is killed above it; the script
    then exits with "does not fit".
    """
    begin = time.time()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), *argv],
                                 stdout=out, stderr=err, cwd=ROOT)
        killed = False
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG if max_rss_mib else 0)
            if pid:
                break
            if resident_mib(child.pid) > max_rss_mib:
                child.send_signal(signal.SIGKILL)
                killed = True
            time.sleep(0.2)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.time() - begin
        out.seek(0)
        err.seek(0)
        if killed:
            sys.exit(f"{argv[0]} does not fit: killed after {wall:.1f}s above {max_rss_mib:.0f} "
                     f"MiB RSS (peak {usage.ru_maxrss / 2**10:.0f} MiB)")
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
    parser.add_argument("--raw", help="prepare this UserBehavior.csv instead of generating one")
    parser.add_argument("--sink", type=int, default=0, metavar="EVERY",
                        help="assemble one block of train/valid/test_data lines in EVERY and "
                             "count their bytes instead of writing them (default 0: write)")
    parser.add_argument("--sample-counts", nargs="+", type=float, metavar="F",
                        help="only print the counts after 10-core of these user samples of "
                             "--raw (finds the fraction that gives a target size)")
    parser.add_argument("--max-rss-gib", type=float,
                        help="kill a child whose RSS grows past this (default: no limit)")
    parser.add_argument("--generate", metavar="RAW", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", nargs=2, metavar=("RAW", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate or args.prepare:
        result = (write_user_behavior(args.generate, args.rows, args.seed, args.chunk_rows)
                  if args.generate else prepare(*args.prepare, args.sample_users, args.sink))
        print(json.dumps(result))
        return
    if args.sample_counts:
        if not args.raw:
            parser.error("--sample-counts needs --raw")
        for rate, counts in sample_counts(args.raw, args.sample_counts).items():
            print(f"sample_users {rate}: after 10-core {counts['users']:,} users, "
                  f"{counts['items']:,} items, {counts['interactions']:,} interactions")
        return
    folder = args.keep or tempfile.mkdtemp(prefix="prepare_scale_")
    os.makedirs(folder, exist_ok=True)
    raw_path = args.raw or os.path.join(folder, "UserBehavior.csv")
    data_dir = os.path.join(folder, "taobao")
    limit = {"max_rss_mib": args.max_rss_gib * 2**10 if args.max_rss_gib else None}
    try:
        if not args.raw:
            shape, wall, peak = run_child("--generate", raw_path, "--rows", str(args.rows),
                                          "--seed", str(args.seed),
                                          "--chunk-rows", str(args.chunk_rows), **limit)
            print(f"generated {args.rows:,} rows ({shape['users']:,} users, "
                  f"{shape['items']:,} items, {shape['categories']:,} categories; "
                  f"{os.path.getsize(raw_path) / 2**20:.0f} MiB) in {wall:.1f}s, "
                  f"peak RSS {peak:.0f} MiB", flush=True)
        result, wall, peak = run_child("--prepare", raw_path, data_dir,
                                       "--sample-users", str(args.sample_users),
                                       "--sink", str(args.sink), **limit)
        counts, sunk = result["counts"], sum(result["sunk"].values())
        print(f"prepared (hparams/taobao.yaml, sample_users {args.sample_users}) in {wall:.1f}s, "
              f"peak RSS {peak:.0f} MiB, output {(folder_bytes(data_dir) + sunk) / 2**20:.0f} MiB"
              + (f" ({sunk / 2**20:.0f} MiB of data files counted, not written; one block in "
                 f"{args.sink} assembled)" if args.sink else ""))
        print(f"  raw rows {result['raw_rows']:,}, left out {result['left_out']}")
        print(f"  after 10-core: {counts['users']:,} users, {counts['items']:,} items, "
              f"{counts['interactions']:,} interactions; lines {counts['lines']}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
