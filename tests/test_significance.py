"""Paired tests of a model's lead: per-user AUC, t-test over seeds, Wilcoxon over users."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from clsr_tf.significance import (
    load_scores,
    mean_user_auc,
    per_user_auc,
    save_scores,
    seed_test,
    user_test,
)


def test_per_user_auc_matches_sklearn_and_skips_one_label_users(rng):
    users = np.repeat(np.arange(6), 7)
    labels = rng.integers(0, 2, users.size)
    labels[users == 5] = 1  # one label only: no AUC
    preds = np.round(rng.random(users.size), 1)  # ties count one half
    got = per_user_auc(users, labels, preds)
    want = {u: roc_auc_score(labels[users == u], preds[users == u]) for u in range(6)
            if 0 < labels[users == u].sum() < 7}
    assert sorted(got.index) == sorted(want)
    np.testing.assert_allclose([got[u] for u in want], list(want.values()), rtol=1e-12)


def test_seed_test_is_scipys_paired_t_test_on_the_common_seeds():
    a, b = {1: 0.80, 2: 0.82, 3: 0.81, 4: 0.9}, {1: 0.78, 2: 0.81, 3: 0.77}
    got = seed_test(a, b)
    want = stats.ttest_rel([0.80, 0.82, 0.81], [0.78, 0.81, 0.77]).pvalue
    assert got["seeds"] == 3 and got["diff"] == pytest.approx(0.07 / 3)
    assert got["p"] == pytest.approx(want)
    assert np.isnan(seed_test({1: 0.5}, {1: 0.4})["p"])  # one seed: no test


def test_user_test_pairs_users_and_detects_a_consistent_lead(rng):
    better = pd.Series(0.7 + 0.01 * rng.random(40), index=range(40))
    worse = pd.Series(better.to_numpy()[5:] - 0.05, index=range(5, 40))
    got = user_test(better, worse)
    assert got["users"] == 35 and got["diff"] == pytest.approx(0.05)
    assert got["p"] < 1e-6
    assert np.isnan(user_test(better, better)["p"])  # no difference at all


def test_scores_round_trip_and_average_over_seeds(tmp_path, rng):
    users = np.repeat(np.arange(4), 5)
    labels = np.tile([1, 0, 0, 0, 0], 4)
    runs = []
    for seed in range(2):
        preds = rng.random(users.size)
        save_scores(tmp_path / f"s{seed}.npz", users, labels, preds)
        runs.append(load_scores(tmp_path / f"s{seed}.npz"))
        np.testing.assert_array_equal(runs[-1]["preds"], preds)
    want = (per_user_auc(**_args(runs[0])) + per_user_auc(**_args(runs[1]))) / 2
    pd.testing.assert_series_equal(mean_user_auc(runs), want, check_names=False)


def _args(scores):
    return dict(users=scores["users"], labels=scores["labels"], preds=scores["preds"])
