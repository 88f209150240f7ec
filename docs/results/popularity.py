"""The most-popular reference of the results page: no model, each item scored by its training
positives, under both test protocols exactly as the models are scored.

``python docs/results/popularity.py --hparams hparams/movielens.yaml --output FILE.md``

Sampled: the test file's lines (1 positive + 99 negatives) through ``clsr_tf.evaluation``.
Full ranking: each test positive against every catalogue item, the last ``max_seq_length``
history items left out (``clsr_tf.ranking.negative_candidates``) and ties counted against the
positive, as ``run_eval_full``; the
first positives are also ranked through the explicit candidate lines
(``clsr_tf.ranking.candidate_groups`` and ``ranks_of_lines``) and must agree.
"""

import argparse
import collections
import os
import sys

import numpy as np

from clsr_tf.datasets import data_path, prepare_data
from clsr_tf.evaluation import evaluate
from clsr_tf.hparams import as_dict, load_hparams, parse_overrides
from clsr_tf.ranking import (
    DEFAULT_KS,
    Catalogue,
    candidate_groups,
    full_ranking_metrics,
    negative_candidates,
    ranks_of_lines,
)

CHECKED = 3  # positives also ranked through the candidate lines


def train_counts(train_file):
    """Training positives (label-1 lines) per item id."""
    counts = collections.Counter()
    with open(train_file) as f:
        for line in f:
            if line.startswith("1\t"):
                counts[line.split("\t", 3)[2]] += 1
    return counts


def sampled(hp, counts):
    """The sampled protocol's metrics of the popularity scores."""
    users, labels, preds = [], [], []
    top = max(counts.values())
    with open(data_path(hp, "test_file")) as f:
        for line in f:
            fields = line.split("\t", 3)
            labels.append(float(fields[0]))
            users.append(fields[1])
            preds.append(counts.get(fields[2], 0) / top)  # in [0, 1], as a probability
    return evaluate(np.array(users), labels, preds, hp["test_num_ngs"], hp["metrics"],
                    hp["pairwise_metrics"])


def full(hp, counts, catalogue):
    """The full-ranking metrics of the popularity scores (``run_eval_full``'s protocol)."""
    ids = catalogue.ids
    score = np.array([counts.get(i, 0) for i in ids], np.int64)
    ranks = []
    with open(data_path(hp, "test_file")) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if fields[0] != "1" or catalogue.item_vocab.get(fields[2], 0) <= 0:
                continue
            keep = negative_candidates(ids, fields, True, hp["max_seq_length"])
            # Ties count against the positive, which counts itself (rank 1 = best).
            ranks.append(1 + int((score[keep] >= counts.get(fields[2], 0)).sum()))
    groups = candidate_groups(data_path(hp, "test_file"), catalogue, True, hp["max_seq_length"])
    for expected, group in zip(ranks[:CHECKED], groups):
        lines = [g.split("\t", 3) for g in group.splitlines()]
        got = ranks_of_lines([float(g[0]) for g in lines], [counts.get(g[2], 0) for g in lines])
        assert got.tolist() == [expected], (got, expected)
    return full_ranking_metrics(ranks, len(catalogue), DEFAULT_KS)


def markdown(hp, sampled_metrics, full_metrics):
    """The reference as a Markdown page."""
    s_cols = ["auc", "gauc", "mean_mrr", "ndcg@2", "ndcg@4", "ndcg@6"]
    f_cols = [f"{m}@{k}" for m in ("recall", "ndcg") for k in DEFAULT_KS] + ["mrr"]
    return "\n".join([
        f"# Most popular (reference, no model): {hp['dataset']}", "",
        "Each item scored by its number of training positives; the same test lines and the "
        "same full-ranking protocol as the models (history items left out, ties against the "
        "positive). Written by `python docs/results/popularity.py`.", "",
        "| protocol | " + " | ".join(s_cols) + " |", "|---|" + "---|" * len(s_cols),
        "| sampled (1 + 99) | " + " | ".join(f"{sampled_metrics[c]:.4f}" for c in s_cols) + " |",
        "", "| protocol | " + " | ".join(f_cols) + " | positives |",
        "|---|" + "---|" * (len(f_cols) + 1),
        "| full ranking | " + " | ".join(f"{full_metrics[c]:.4f}" for c in f_cols)
        + f" | {full_metrics['positives']} |", ""])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hparams", required=True, help="the data set's YAML")
    p.add_argument("--data-dir", help="prepared data folder (default: the YAML's)")
    p.add_argument("--output", required=True, help="Markdown file to write")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a hyper-parameter of the YAML (repeatable)")
    args = p.parse_args(argv)
    values, _ = parse_overrides(args.set)
    if args.data_dir:
        values["data_dir"] = os.path.abspath(args.data_dir)
    hp = as_dict(load_hparams(args.hparams, **values))
    prepare_data(hp)
    counts = train_counts(data_path(hp, "train_file"))
    text = markdown(hp, sampled(hp, counts), full(hp, counts, Catalogue.from_data(hp)))
    with open(args.output, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
