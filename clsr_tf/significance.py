"""Is a lead real? Mean and spread over seeds, and paired tests of a reference model's lead.

Two tests of the difference between the reference (CLSR) and each other model, both paired:
- over seeds: a paired t-test of a test metric across the seeds both models ran with (model
  initialisation and in-batch negatives differ by seed; the data set does not);
- over users: a Wilcoxon signed-rank test of the users' test AUCs (each user's AUC over its
  scored lines, averaged over the seeds), on the users whose AUC both models define.
"""

import numpy as np
import pandas as pd
from scipy import stats

from clsr_tf.files import atomic_file

#: The file of a run's folder that keeps its test scores for the per-user test.
SCORES_FILE = "test_scores.npz"


def save_scores(path, users, labels, preds):
    """Keep scored lines (atomically) for the per-user paired tests.

    Args:
        path (str): Destination ``.npz``.
        users, labels, preds (array-like): One entry per scored line.
    """
    with atomic_file(path, "wb") as handle:
        np.savez_compressed(handle, users=np.asarray(users), labels=np.asarray(labels),
                            preds=np.asarray(preds))


def load_scores(path):
    """Scored lines written by ``save_scores``.

    Args:
        path (str): The ``.npz``.

    Returns:
        dict: ``users``, ``labels``, ``preds`` arrays.
    """
    with np.load(path) as data:
        return {key: data[key] for key in ("users", "labels", "preds")}


def per_user_auc(users, labels, preds):
    """The AUC of each user over its scored lines (users with one label only are left out).

    Args:
        users (array-like): User of each line.
        labels (array-like): 0/1 label of each line.
        preds (array-like): Score of each line.

    Returns:
        pandas.Series: user -> AUC (ties count one half).
    """
    frame = pd.DataFrame({"user": np.asarray(users).ravel(),
                          "label": np.asarray(labels, np.float64).ravel(),
                          "pred": np.asarray(preds, np.float64).ravel()})
    frame["rank"] = frame.groupby("user")["pred"].rank(method="average")
    g = frame.assign(pos_rank=frame["rank"] * frame["label"]).groupby("user").agg(
        pos=("label", "sum"), n=("label", "size"), rank_pos=("pos_rank", "sum"))
    g = g[(g["pos"] > 0) & (g["pos"] < g["n"])]
    neg = g["n"] - g["pos"]
    return (g["rank_pos"] - g["pos"] * (g["pos"] + 1) / 2) / (g["pos"] * neg)


def seed_test(reference, other):
    """Paired t-test over seeds of two models' metric values.

    Args:
        reference (dict): seed -> value of the reference model.
        other (dict): seed -> value of the other model.

    Returns:
        dict: ``seeds`` (paired count), ``diff`` (mean reference - other) and ``p`` (two-sided;
        NaN with fewer than two paired seeds or no variation).
    """
    seeds = sorted(set(reference) & set(other))
    a = np.array([reference[s] for s in seeds], float)
    b = np.array([other[s] for s in seeds], float)
    diff = float(np.mean(a - b)) if seeds else float("nan")
    p = float("nan")
    if len(seeds) >= 2 and np.std(a - b) > 0:
        p = float(stats.ttest_rel(a, b).pvalue)
    return {"seeds": len(seeds), "diff": diff, "p": p}


def user_test(reference, other):
    """Wilcoxon signed-rank test over users of two models' per-user AUCs.

    Args:
        reference (pandas.Series): user -> AUC of the reference model.
        other (pandas.Series): user -> AUC of the other model.

    Returns:
        dict: ``users`` (paired count), ``diff`` (mean reference - other) and ``p``
        (two-sided; NaN when every paired difference is 0 or there are none).
    """
    both = pd.concat([reference, other], axis=1, join="inner").dropna()
    d = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy()
    p = float("nan")
    if len(d) and np.any(d != 0):
        p = float(stats.wilcoxon(d, zero_method="wilcox").pvalue)
    return {"users": len(d), "diff": float(d.mean()) if len(d) else float("nan"), "p": p}


def mean_user_auc(score_sets):
    """Per-user AUC averaged over a model's seeds.

    Args:
        score_sets (list): One dict per seed with ``users``, ``labels``, ``preds``.

    Returns:
        pandas.Series: user -> mean AUC over the seeds that define it.
    """
    aucs = [per_user_auc(s["users"], s["labels"], s["preds"]) for s in score_sets]
    return pd.concat(aucs, axis=1).mean(axis=1)
