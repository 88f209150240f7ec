"""Parsing cost of a Recommenders baseline's full ranking: every candidate line parsed by the
iterator (the file path the runner took before) against ``recommenders_runner.parsed_group``
(each positive's history parsed once, shared by its candidate lines).

Both read the same candidate groups of the first ``--positives`` test positives of a data set
(``clsr_tf.ranking.candidate_groups``, history items left out), alternating ``--repeats``
times so that a shared machine slows both alike; the parsed lines are checked equal. Prints
the median seconds of each and their ratio.

    python benchmarks/candidate_parsing.py --hparams hparams/movielens.yaml --positives 64
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from clsr_tf.baselines.recommenders_runner import parsed_group  # noqa: E402
from clsr_tf.data.contract import vocab_paths  # noqa: E402
from clsr_tf.hparams import as_dict, load_hparams  # noqa: E402
from clsr_tf.ranking import Catalogue, candidate_groups  # noqa: E402


def same(a, b):
    """Whether two parsed lines are equal (lists and arrays element-wise)."""
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def main(argv=None):
    """Run the benchmark and print its table.

    Args:
        argv (list): Arguments (default: sys.argv[1:]).
    """
    from recommenders.models.deeprec.deeprec_utils import HParams
    from recommenders.models.deeprec.io.sequential_iterator import SequentialIterator

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hparams", default="hparams/movielens.yaml")
    p.add_argument("--positives", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    hp = as_dict(load_hparams(args.hparams))
    catalogue = Catalogue.from_data(hp)
    groups = []
    test = os.path.join(hp["data_dir"], hp["test_file"])
    for group in candidate_groups(test, catalogue, exclude_history=True,
                                  max_seq_length=hp["max_seq_length"]):
        groups.append(group)
        if len(groups) == args.positives:
            break
    config = HParams(dict(vocab_paths(hp), batch_size=hp["batch_size"],
                          max_seq_length=hp["max_seq_length"]))
    iterator = SequentialIterator(config, tf.Graph())
    times = {"every line parsed": [], "parsed_group": []}
    with tempfile.TemporaryDirectory() as folder:
        lines = os.path.join(folder, "candidate_lines")
        with open(lines, "w") as f:
            f.writelines(groups)
        for _ in range(args.repeats):
            start = time.perf_counter()
            by_line = iterator.parse_file(lines)
            times["every line parsed"].append(time.perf_counter() - start)
            start = time.perf_counter()
            shared = [line for group in groups for line in parsed_group(iterator, group)]
            times["parsed_group"].append(time.perf_counter() - start)
            if len(by_line) != len(shared) or not all(map(same, by_line, shared)):
                raise SystemExit("parsed_group differs from the iterator's parse")
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.positives} positives, {len(by_line)} candidate lines, "
          f"{args.repeats} repeats (median seconds)")
    for name, seconds in medians.items():
        print(f"  {name:18s} {seconds:8.2f} s  {len(by_line) / seconds:10.0f} lines/s")
    print(f"  ratio {medians['every line parsed'] / medians['parsed_group']:.1f}x")


if __name__ == "__main__":
    main()
