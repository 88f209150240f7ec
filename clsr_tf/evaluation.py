"""Metrics of the paper's protocol through Recommenders' ``cal_metric``, plus GAUC.

The paper's "GAUC" is the per-user AUC weighted by the user's number of scored lines (the
original code's ``wauc``); Recommenders' ``group_auc`` averages the AUC of each candidate
group (1 positive + its negatives). Both are reported, under those two names.
"""

import json
import math

import numpy as np
import pandas as pd
from recommenders.models.deeprec.deeprec_utils import cal_metric


def user_weighted_auc(users, labels, preds):
    """GAUC: per-user AUC weighted by the user's number of lines.

    Users whose lines are all of one label have no AUC and are left out (the weights are
    renormalised over the rest; the original assumes every user has both labels).
    Ties count half, as in ``sklearn.metrics.roc_auc_score``.

    Args:
        users (array-like): User of each line.
        labels (array-like): 0/1 label of each line.
        preds (array-like): Score of each line.

    Returns:
        float: GAUC (nan when no user has both labels).
    """
    df = pd.DataFrame({"u": np.asarray(users).ravel(), "y": np.asarray(labels).ravel(),
                       "p": np.asarray(preds).ravel()})
    df["rank_pos"] = df.groupby("u")["p"].rank(method="average") * (df["y"] > 0)
    g = df.groupby("u").agg(n=("y", "size"), pos=("y", "sum"), rank_pos=("rank_pos", "sum"))
    g["neg"] = g["n"] - g["pos"]
    g = g[(g["pos"] > 0) & (g["neg"] > 0)]
    if g.empty:
        return float("nan")
    auc = (g["rank_pos"] - g["pos"] * (g["pos"] + 1) / 2) / (g["pos"] * g["neg"])
    return float((auc * g["n"]).sum() / g["n"].sum())


def evaluate(users, labels, preds, num_ngs, metrics=("auc", "logloss"),
             pairwise_metrics=("mean_mrr", "ndcg@2;4;6", "hit@2;4;6", "group_auc")):
    """All metrics of one scored file.

    Args:
        users (array-like): User of each line.
        labels (array-like): 0/1 label of each line, in groups of 1 + ``num_ngs``
            (positive first, as in the Recommenders files).
        preds (array-like): Score of each line.
        num_ngs (int): Negatives per positive.
        metrics (list): Recommenders line-level metrics (auc, logloss, ...).
        pairwise_metrics (list): Recommenders group-level metrics (mean_mrr, ndcg@k, ...).

    Returns:
        dict: Metric name -> value, with ``gauc`` (user-weighted) always included.
    """
    labels = np.asarray(labels, np.float64).ravel()
    preds = np.asarray(preds, np.float64).ravel()
    group_size = num_ngs + 1
    if len(labels) % group_size:
        raise ValueError(f"{len(labels)} scored lines do not form groups of {group_size}; "
                         "check valid_num_ngs/test_num_ngs against the file")
    res = cal_metric(labels, preds, list(metrics))
    res.update(cal_metric(labels.reshape(-1, group_size), preds.reshape(-1, group_size),
                          list(pairwise_metrics)))
    res["gauc"] = round(user_weighted_auc(users, labels, preds), 4)
    return {k: float(v) for k, v in res.items()}


# Why a metric can come out undefined (NaN); any other: the scores are not finite.
UNDEFINED = {"gauc": "no user has both a positive and a negative line",
             "mean_alpha": "no positive line"}


def metrics_json(result):
    """Strict JSON text of a metrics result: an undefined (NaN or infinite) value is null.

    Each null gets its reason under ``undefined``, keyed by its path (e.g. ``valid.gauc``).

    Args:
        result (dict): Metrics and other JSON-able values, nested in dicts and lists.

    Returns:
        str: Indented JSON without NaN or Infinity.
    """
    undefined = {}

    def clean(value, path):
        if isinstance(value, dict):
            return {k: clean(v, path + [str(k)]) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v, path + [str(i)]) for i, v in enumerate(value)]
        if isinstance(value, (float, np.floating)) and not math.isfinite(value):
            undefined[".".join(path)] = UNDEFINED.get(
                path[-1], f"not a finite number ({float(value)}): the scores are not finite")
            return None
        return value

    out = clean(result, [])
    if undefined:
        out["undefined"] = dict(out.get("undefined") or {}, **undefined)
    return json.dumps(out, indent=2, allow_nan=False)


def mean_alpha(alphas, labels):
    """Mean fusion weight over the positive lines (the original's ``mean_alpha``).

    Args:
        alphas (array-like): alpha of each line.
        labels (array-like): 0/1 label of each line.

    Returns:
        float: Mean alpha of the positives.
    """
    alphas = np.asarray(alphas, np.float64).ravel()
    labels = np.asarray(labels, np.float64).ravel()
    return float((alphas * labels).sum() / labels.sum())


def evaluate_scores(hp, scores, num_ngs):
    """The metrics of ``evaluate`` plus, when alpha was scored, ``mean_alpha``.

    Args:
        hp (dict): Hyper-parameters (``metrics``, ``pairwise_metrics``).
        scores (dict): ``users``, ``labels``, ``pred`` and optionally ``alpha`` [N], as
            from ``clsr_tf.sequential.FileScorer``.
        num_ngs (int): Negatives per positive.

    Returns:
        dict: Metric name -> value.
    """
    res = evaluate(scores["users"], scores["labels"], scores["pred"], num_ngs,
                   hp["metrics"], hp["pairwise_metrics"])
    if "alpha" in scores:
        res["mean_alpha"] = round(mean_alpha(scores["alpha"], scores["labels"]), 4)
    return res


def train_seconds(history, elapsed):
    """Training time of a run over all its processes (a resumed run's earlier epochs too).

    Args:
        history (list): Per-epoch entries, each with ``seconds`` (training and validation)
            when the epoch ran under a clsr_tf that records it.
        elapsed (float): This process's training time, the answer when an epoch lacks
            ``seconds`` (a run resumed from a checkpoint of an older clsr_tf).

    Returns:
        float: Seconds, rounded to 0.1.
    """
    if history and all("seconds" in h for h in history):
        return round(sum(h["seconds"] for h in history), 1)
    return round(elapsed, 1)
