"""Disentanglement studies: protocols, forced alpha, ablation grid, ground truth, CLI."""

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from clsr_tf import study
from clsr_tf.data.contract import POSITION_KEYS
from clsr_tf.hparams import as_dict, load_hparams
from clsr_tf.models import CLSRModel
from clsr_tf.studies import ablations
from clsr_tf.studies.one_side import fixed_alpha_model
from clsr_tf.studies.protocols import shuffle_history, truncate_history
from clsr_tf.studies.report import seed_summary

from conftest import random_batch, small_hparams

HPARAMS = os.path.join(os.path.dirname(__file__), "..", "hparams", "synthetic.yaml")
# A small model on a small synthetic data set: an epoch takes a few seconds on two cores.
SMALL = {"max_seq_length": 10, "item_embedding_dim": 12, "cate_embedding_dim": 4,
         "user_embedding_dim": 16, "hidden_size": 16, "att_fcn_layer_sizes": [16, 8],
         "layer_sizes": [16, 8], "batch_size": 100, "learning_rate": 0.005}
SMALL_ARGS = [arg for key, value in SMALL.items()
              for arg in ("--set", f"{key}={value}".replace(" ", ""))] + ["--quiet"]


def grouped_batch(rng, lengths=(1, 3, 6, 10), group=5):
    """A batch whose candidate groups share user, time and history, as in the files."""
    batch = random_batch(rng, n_groups=len(lengths), group=group, lengths=list(lengths))
    first = np.repeat(np.arange(0, len(lengths) * group, group), group)
    for key in POSITION_KEYS + ("time", "users"):
        batch[key] = batch[key][first]
    return batch


def triples(batch, row):
    """The (item, category, time features) of each valid position of a row."""
    valid = batch["mask"][row] > 0
    return sorted(zip(*(batch[key][row][valid].tolist() for key in POSITION_KEYS)))


# ---- protocols ---------------------------------------------------------------------------
def test_shuffle_permutes_valid_positions_only(rng):
    batch = grouped_batch(rng)
    out = shuffle_history(batch, seed=3)
    np.testing.assert_array_equal(out["mask"], batch["mask"])
    for key in ("labels", "users", "items", "cates", "time"):
        assert out[key] is batch[key]
    padded = batch["mask"] == 0
    for key in POSITION_KEYS:
        np.testing.assert_array_equal(out[key][padded], batch[key][padded])
    for row in range(len(batch["users"])):
        # The multiset of items is kept, and each item keeps its category and times.
        assert triples(out, row) == triples(batch, row)
    # Every row of a group gets the same permutation; the order does change.
    for key in POSITION_KEYS:
        groups = out[key].reshape(4, 5, -1)
        assert (groups == groups[:, :1]).all()
    assert not np.array_equal(out["item_history"][15], batch["item_history"][15])
    # Deterministic in the seed, and independent of how groups are split into batches.
    np.testing.assert_array_equal(shuffle_history(batch, 3)["item_history"],
                                  out["item_history"])
    assert not np.array_equal(shuffle_history(batch, 4)["item_history"], out["item_history"])
    half = shuffle_history({k: v[7:] for k, v in batch.items()}, seed=3)
    np.testing.assert_array_equal(half["time_to_now"], out["time_to_now"][7:])


def test_truncate_keeps_the_last_k_valid_positions(rng):
    batch = grouped_batch(rng)
    k = 4
    out = truncate_history(batch, k)
    for row in range(len(batch["users"])):
        n = int(batch["mask"][row].sum())
        kept = min(k, n)
        assert out["mask"][row].tolist() == [1.0] * kept + [0.0] * (10 - kept)
        for key in POSITION_KEYS:
            np.testing.assert_array_equal(out[key][row][:kept], batch[key][row][n - kept:n])
            assert not out[key][row][kept:].any()
    assert out["mask"].dtype == batch["mask"].dtype
    assert out["item_history"].dtype == batch["item_history"].dtype
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            truncate_history(batch, bad)


# ---- forced alpha --------------------------------------------------------------------------
def test_forced_alpha_fuses_one_side_and_equals_a_manual_alpha_model(rng, tmp_path):
    hp = small_hparams()
    model = CLSRModel(hp)
    model.build_from_shape(hp["max_seq_length"])
    for var in model.weights:  # move every weight (batch-norm statistics too) off its init
        var.assign(var + rng.normal(0, 0.05, var.shape).astype(np.float32))
    batch = random_batch(rng)
    out = model.forward(batch)
    u_l, u_s = out["att_fea_long"].numpy(), out["att_fea_short"].numpy()
    assert np.abs(out["user_embedding"].numpy() - u_l).max() > 1e-4  # adaptive: a mix
    model.save_weights(str(tmp_path / "weights"))
    for alpha, expected in ((1.0, u_l), (0.0, u_s), (0.3, 0.3 * u_l + 0.7 * u_s)):
        forced = fixed_alpha_model(model, alpha).forward(batch)
        np.testing.assert_allclose(forced["alpha"].numpy(), alpha)
        np.testing.assert_allclose(forced["user_embedding"].numpy(), expected, atol=1e-6)
        manual = CLSRModel(dict(hp, manual_alpha=True, manual_alpha_value=alpha))
        manual.build_from_shape(hp["max_seq_length"])
        manual.load_weights(str(tmp_path / "weights")).expect_partial()
        np.testing.assert_allclose(forced["pred"].numpy(), manual(batch).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        fixed_alpha_model(model, 1.5)


# ---- end to end on a small synthetic data set ----------------------------------------------
@pytest.fixture(scope="module")
def weights(data_dir, tmp_path_factory):
    from clsr_tf import train

    out = tmp_path_factory.mktemp("run")
    assert train.main(["--hparams", HPARAMS, "--data-dir", data_dir, "--output-dir", str(out),
                       "--epochs", "1", *SMALL_ARGS]) == 0
    return str(out / "best_model")


def run_study(data_dir, out, *args):
    return study.main([*args, "--hparams", HPARAMS, "--data-dir", data_dir, "--output-dir",
                       str(out), *SMALL_ARGS])


@pytest.mark.slow
@pytest.mark.parametrize("args, first_column, rows", [
    (["shuffle"], "protocol", ["original", "shuffle"]),
    (["truncate", "--ks", "1,3"], "protocol", ["original", "truncate", "truncate"]),
    (["one_side"], "interest", ["adaptive", "long only", "short only"]),
    (["fusion_weight"], "source", ["long", "short", "all"]),
])
def test_study_cli_writes_table_markdown_and_plot(data_dir, weights, tmp_path, args,
                                                   first_column, rows):
    assert run_study(data_dir, tmp_path, *args, "--weights", weights) == 0
    name = args[0]
    table = pd.read_csv(tmp_path / f"{name}.csv")
    assert table.columns[0] == first_column
    assert sorted(table[first_column]) == sorted(rows)
    for key in ("auc", "gauc", "mean_mrr", "mean_alpha"):
        assert table[key].between(0, 1).all(), key
    assert (tmp_path / f"{name}.md").read_text().count("\n") == len(rows) + 2
    assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
    if name == "one_side":  # forcing alpha changes the scores
        assert table["auc"].nunique() > 1


@pytest.mark.slow
def test_study_over_seeds_of_trained_models(data_dir, weights, tmp_path, capsys):
    for seed in (1, 2):  # a campaign's layout: one best_model per seed (here the same one)
        shutil.copytree(weights, tmp_path / f"seed_{seed}" / "best_model")
    template = str(tmp_path / "seed_{seed}" / "best_model")
    out = tmp_path / "out"
    assert run_study(data_dir, out, "shuffle", "--seeds", "1,2", "--weights", template) == 0
    runs = pd.read_csv(out / "shuffle.csv")
    original = runs[runs["protocol"] == "original"]
    assert list(original["seed"]) == [1, 2]
    assert original["auc"].nunique() == 1  # loaded, not trained: the same model twice
    summary = pd.read_csv(out / "shuffle_summary.csv").set_index("protocol")
    assert summary.loc["original", "seeds"] == 2 and summary.loc["original", "gauc_std"] == 0
    assert run_study(data_dir, out, "shuffle", "--weights", template) == 2
    assert "needs --seeds" in capsys.readouterr().err
    assert run_study(data_dir, out, "shuffle", "--seeds", "1,2", "--weights", weights) == 2
    assert "a path with {seed}" in capsys.readouterr().err
    assert run_study(data_dir, out, "shuffle", "--seeds", "1,3", "--weights", template) == 2
    assert "seed_3" in capsys.readouterr().err


def test_seed_summary_averages_what_varies():
    table = pd.DataFrame({"seed": [1, 1, 2, 2], "name": ["a", "b", "a", "b"],
                          "k": [3, 5, 3, 5], "auc": [0.6, 0.7, 0.8, 0.7],
                          "error": ["", "", "boom", ""]})
    summary = seed_summary(table)
    assert list(summary.columns) == ["seeds", "name", "k", "auc", "auc_std", "error"]
    assert list(summary["name"]) == ["a", "b"] and list(summary["k"]) == [3, 5]
    np.testing.assert_allclose(summary["auc"], [0.7, 0.7])
    np.testing.assert_allclose(summary["auc_std"], [np.sqrt(0.02), 0.0], atol=1e-12)
    assert list(summary["error"]) == ["boom", ""]
    with pytest.raises(ValueError, match="different rows"):
        seed_summary(table.iloc[:3])


@pytest.mark.slow
def test_ablations_over_seeds_write_runs_and_summary(data_dir, tmp_path):
    assert run_study(data_dir, tmp_path, "ablations", "--only", "rnn_gru", "--epochs", "1",
                     "--seeds", "3,4") == 0
    runs = pd.read_csv(tmp_path / "ablations.csv", keep_default_na=False)
    assert list(runs["seed"]) == [3, 4] and list(runs["name"]) == ["rnn_gru"] * 2
    assert runs["auc"].nunique() == 2  # the seeds train different models
    summary = pd.read_csv(tmp_path / "ablations_summary.csv", keep_default_na=False)
    assert list(summary["name"]) == ["rnn_gru"] and summary["seeds"][0] == 2
    np.testing.assert_allclose(summary["auc"][0], runs["auc"].mean())
    np.testing.assert_allclose(summary["auc_std"][0], runs["auc"].std())
    assert (tmp_path / "ablations_summary.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_ablation_subset_writes_every_column(data_dir, tmp_path):
    assert run_study(data_dir, tmp_path, "ablations", "--only", "rnn_gru,rnn_lstm",
                     "--epochs", "1") == 0
    table = pd.read_csv(tmp_path / "ablations.csv", keep_default_na=False)
    assert list(table["name"]) == ["rnn_gru", "rnn_lstm"]
    assert list(table.columns[:len(ablations.HEAD)]) == list(ablations.HEAD)
    for key in ("auc", "logloss", "mean_mrr", "ndcg@2", "hit@2", "group_auc", "gauc",
                "mean_alpha"):
        assert key in table.columns
    assert list(table["status"]) == ["ok", "ok"]
    assert list(table["setting"]) == ["sequential_model=gru", "sequential_model=lstm"]
    assert (tmp_path / "ablations.png").exists() and (tmp_path / "ablations.md").exists()


def test_ablation_row_that_fails_is_recorded_and_the_grid_goes_on(data_dir):
    hp = as_dict(load_hparams(HPARAMS, data_dir=data_dir, **SMALL))
    seen = []
    table = ablations.run_ablations(
        hp, [("bad_rnn", "x", {"sequential_model": "rnn"}),
             ("bad_k", "x", {"contrastive_recent_k": 0})], on_row=seen.append)
    assert list(table["status"]) == ["error", "error"]
    assert "sequential_model" in table["error"][0] and "contrastive_recent_k" in table["error"][1]
    assert [len(t) for t in seen] == [1, 2]


def test_ablation_grid_covers_the_paper():
    groups = {group for _, group, _ in ablations.GRID}
    assert {"contrastive", "beta", "fixed_alpha", "recent_k", "interest_evolve",
            "predict_long_short", "sequential_model", "contrastive_loss",
            "attention_type"} <= groups
    for _, _, overrides in ablations.GRID:  # every row is a valid configuration
        as_dict(small_hparams(**overrides))
    assert [r[0] for r in ablations.select(["beta", "clsr"])][:2] == ["clsr", "beta_0.01"]


def test_study_cli_errors_exit_2(data_dir, tmp_path, capsys):
    for argv in (["nonsense"], ["truncate", "--k", "0"], ["truncate", "--ks", "1,x"]):
        with pytest.raises(SystemExit) as exc:
            run_study(data_dir, tmp_path, *argv)
        assert exc.value.code == 2
    assert run_study(data_dir, tmp_path, "shuffle", "--k", "3") == 2
    assert "--k applies to the truncate study" in capsys.readouterr().err
    assert run_study(data_dir, tmp_path, "ablations", "--only", "bogus") == 2
    assert "bogus" in capsys.readouterr().err
    assert run_study(data_dir, tmp_path, "fusion_weight", "--column", "rating") == 2
    assert "rating" in capsys.readouterr().err
    assert run_study(data_dir, tmp_path, "shuffle", "--weights", str(tmp_path / "no")) == 2
    assert not os.listdir(tmp_path)
    assert tf.executing_eagerly()


@pytest.mark.slow
def test_ground_truth_long_term_positives_get_more_alpha(tmp_path):
    from clsr_tf.data.registry import prepare_dataset
    from clsr_tf.studies.common import train_model
    from clsr_tf.studies.ground_truth import ground_truth_study

    prepare_dataset("synthetic", None, tmp_path, max_seq_length=10, seed=1, n_users=200,
                    interactions_per_user=40, test_sample_rate=1.0, test_num_ngs=9)
    # A strong contrastive weight and second-scaled time features (the fusion then sees the
    # ~10-minute gaps of bursts), read at the last valid position.
    hp = as_dict(load_hparams(
        HPARAMS, data_dir=str(tmp_path), epochs=2, seed=1, test_num_ngs=9, time_unit="s",
        contrastive_loss_weight=1.0, fusion_time_position="last_valid",
        **dict(SMALL, learning_rate=0.01)))
    seq = train_model(hp)
    row = ground_truth_study({"clsr": seq.model}, seq.batches, hp).iloc[0]
    # Observed alpha_margin (mean alpha of long-term minus short-term positives) after 2
    # epochs: 0.127 / 0.089 / 0.034 for seeds 1 / 2 / 3 (0.120 / 0.044 / 0.213 / 0.030 for
    # seeds 1-4 with 300 users); with beta = 0 it is -0.05 (seeds 1, 2).
    assert row["alpha_margin"] > 0.02
    assert row["mean_alpha_long"] > row["mean_alpha_short"]
    for probe in ("long_from_u_l", "long_from_u_s", "short_from_u_l", "short_from_u_s"):
        assert -1 <= row[probe] <= 1
    # u_l carries the user's long-term category distribution (observed 0.32-0.46 vs
    # 0.19-0.23 from u_s).
    assert row["long_from_u_l"] > row["long_from_u_s"]


def test_the_ablation_plot_leaves_failed_rows_out_and_survives_none_finished():
    from clsr_tf.studies import plots

    failed = pd.DataFrame({"name": ["a", "b"], "status": ["error", "error"],
                           "error": ["RunFolderError: x", "ValueError: y"]})
    fig = plots.plot_ablations(failed)  # no metric columns at all
    assert "no ablation row finished" in fig.axes[0].texts[0].get_text()
    mixed = pd.concat([failed, pd.DataFrame({"name": ["c"], "status": ["ok"], "auc": [0.7],
                                             "gauc": [0.71]})], ignore_index=True)
    labels = [t.get_text() for t in plots.plot_ablations(mixed).axes[0].get_yticklabels()]
    assert labels == ["c"]


def test_ablation_rows_in_a_runs_dir_are_kept_resumed_and_refused(data_dir, tmp_path,
                                                                   monkeypatch):
    hp = as_dict(load_hparams(HPARAMS, data_dir=data_dir, epochs=1, **SMALL))
    rows = [("rnn_gru", "sequential_model", {"sequential_model": "gru"})]
    runs = tmp_path / "runs"
    first = ablations.run_ablations(hp, rows, runs_dir=str(runs))
    row_dir = runs / "rnn_gru"
    assert (row_dir / "result.json").exists() and (row_dir / "best_model").is_dir()
    assert first["status"][0] == "ok" and first["epochs"][0] == 1

    calls = []
    real_train = ablations.train_model

    def spy(row_hp, loader, verbose, output_dir=None, resume=False):
        calls.append((row_hp["epochs"], resume))
        return real_train(row_hp, loader, verbose, output_dir=output_dir, resume=resume)

    monkeypatch.setattr(ablations, "train_model", spy)
    again = ablations.run_ablations(hp, rows, runs_dir=str(runs))  # finished: read back
    assert calls == []
    pd.testing.assert_frame_equal(again, first)  # its training seconds too, not the read's
    assert first["seconds"][0] > 0
    # A row killed after its first epoch (no result.json) continues from its checkpoint.
    (row_dir / "result.json").unlink()
    longer = ablations.run_ablations(dict(hp, epochs=2, EARLY_STOP=0), rows, runs_dir=str(runs))
    assert calls == [(2, True)] and longer["epochs"][0] == 2
    assert longer["seconds"][0] > first["seconds"][0]  # the first epoch's seconds kept
    # Other hyper-parameters: refused in the row's error, the folder left as it was.
    for changed in ({"epochs": 3}, {"embed_l2": 1e-5}):
        other = ablations.run_ablations(dict(dict(hp, epochs=2, EARLY_STOP=0), **changed),
                                        rows, runs_dir=str(runs))
        assert other["status"][0] == "error" and list(changed)[0] in other["error"][0]
    (row_dir / "result.json").unlink()  # killed: other epochs continue, other values refuse
    other = ablations.run_ablations(dict(hp, epochs=2, EARLY_STOP=0, embed_l2=1e-5), rows,
                                    runs_dir=str(runs))
    assert "embed_l2" in other["error"][0] and len(calls) == 1
    assert json.loads((row_dir / "hparams.json").read_text())["embed_l2"] == hp["embed_l2"]
