"""``python -m clsr_tf.compare`` on a small synthetic data set, and the GRU/SUM import shim."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from clsr_tf import compare
from clsr_tf.cli import EXIT_BAD_INPUT
from clsr_tf.hparams import HParamsError

HPARAMS = os.path.join(os.path.dirname(__file__), "..", "hparams", "synthetic.yaml")
# Tiny models: one epoch of each takes seconds on two cores (most of it graph tracing).
SMALL = ["max_seq_length=10", "item_embedding_dim=12", "cate_embedding_dim=4",
         "user_embedding_dim=16", "hidden_size=16", "att_fcn_layer_sizes=[16,8]",
         "layer_sizes=[16,8]", "attention_size=16", "batch_size=100", "learning_rate=0.005",
         "write_tfevents=false", "surge.pool_length=4"]
COLUMNS = ["model", "auc", "gauc", "mean_mrr", "ndcg@2", "ndcg@4", "ndcg@6", "train_seconds",
           "epochs_run", "params", "status"]
OK = ["clsr", "sli_rec", "surge"]
IN_PROCESS = ["clsr", "surge"]


def run_cli(data_dir, out, models, *extra):
    sets = [a for s in SMALL for a in ("--set", s)]
    return compare.main(["--hparams", HPARAMS, "--data-dir", data_dir, "--output-dir", str(out),
                         "--models", ",".join(models), "--epochs", "1", "--quiet", *sets,
                         *extra])


@pytest.fixture(scope="module")
def first_run(data_dir, tmp_path_factory):
    """clsr, sli_rec and surge succeed; caser's runner fails on a bad value; foo is unknown.

    The baselines run through ``--baselines-python``: a wrapper that logs its arguments.
    """
    out = tmp_path_factory.mktemp("compare")
    wrapper = out / "python-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{out}/wrapper.log"\n'
                       f'exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    status = run_cli(data_dir, out, OK + ["caser", "foo"], "--set", "caser.n_v=many",
                     "--baselines-python", str(wrapper))
    return status, out


@pytest.mark.slow
def test_comparison_writes_both_tables_and_error_rows(first_run, capsys):
    status, out = first_run
    assert status == compare.EXIT_MODEL_FAILED
    table = pd.read_csv(out / "comparison.csv")
    assert list(table.columns) == COLUMNS
    assert list(table["model"]) == OK + ["caser", "foo"]
    ok = table.set_index("model").loc[OK]
    assert (ok["status"] == "ok").all()
    assert ok[COLUMNS[1:7]].ge(0).all().all() and ok[COLUMNS[1:7]].le(1).all().all()
    assert (ok["epochs_run"] == 1).all() and ok["params"].gt(1000).all()
    # One epoch on this data (seeded, so repeatable): test AUC clsr 0.63, sli_rec 0.55,
    # surge 0.61 (random: 0.5).
    assert ok["auc"].gt(0.52).all()
    caser, foo = table.set_index("model").loc[["caser", "foo"], "status"]
    assert "runner.log" in caser and os.path.exists(out / "caser" / "runner.log")
    assert "unknown model 'foo'" in foo
    for name in OK:
        result = json.loads((out / name / "result.json").read_text())
        assert result["status"] == "ok" and result["best_epoch"] == 1
        assert {"auc", "gauc", "group_auc", "mean_mrr", "ndcg@2"} <= set(result["test"])
    assert len({json.loads((out / n / "result.json").read_text())["test_lines"]
                for n in OK}) == 1  # the same test lines for every model
    assert not (out / "caser" / "result.json").exists()  # failures are retried on a rerun
    markdown = (out / "comparison.md").read_text()
    for column in ("auc", "gauc", "mean_mrr", "ndcg@2", "params", "status"):
        assert f" {column} |" in markdown
    best = table[COLUMNS[1:7]].max()
    assert f"**{best['gauc']:.4f}**" in markdown and f"**{best['ndcg@2']:.4f}**" in markdown
    assert markdown.count("**") >= 2 * 6  # at least one bold value per metric column


@pytest.mark.slow
def test_baselines_ran_in_subprocesses_so_eager_is_still_on(first_run):
    assert tf.executing_eagerly()
    assert "recommenders.models.deeprec.models.base_model" not in sys.modules


@pytest.mark.slow
def test_baselines_ran_with_the_given_interpreter(first_run, data_dir, tmp_path, capsys):
    _, out = first_run
    calls = (out / "wrapper.log").read_text().splitlines()
    assert len(calls) == 2 and all("clsr_tf.baselines.recommenders_runner" in c for c in calls)
    assert [c.split("--config ")[1].split("/")[-2] for c in calls] == ["sli_rec", "caser"]
    assert run_cli(data_dir, tmp_path, ["sli_rec"], "--baselines-python",
                   str(tmp_path / "nope")) == EXIT_BAD_INPUT
    assert "not an executable file" in capsys.readouterr().err


@pytest.mark.slow
def test_rerun_skips_existing_results(first_run, data_dir, capsys):
    _, out = first_run
    stamps = {n: os.stat(out / n / "result.json").st_mtime_ns for n in OK}
    before = pd.read_csv(out / "comparison.csv").set_index("model").loc[OK]
    assert run_cli(data_dir, out, OK) == 0
    text = capsys.readouterr().out
    assert all(f"== {n} " in text and "skipped" in text for n in OK)
    assert {n: os.stat(out / n / "result.json").st_mtime_ns for n in OK} == stamps
    after = pd.read_csv(out / "comparison.csv").set_index("model")
    pd.testing.assert_frame_equal(after, before, check_dtype=False)
    assert "*" in text.split("== surge")[-1]  # the terminal table marks the best values


@pytest.mark.slow
def test_force_reruns_models_with_results(first_run, data_dir, tmp_path, monkeypatch):
    _, out = first_run
    for name in OK:
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text((out / name / "result.json").read_text())
    calls = []

    def fake_run_model(self, name, seed=None, resume=False):
        calls.append(name)
        return dict(json.loads((out / name / "result.json").read_text()), train_seconds=0.5)

    monkeypatch.setattr(compare.Comparison, "run_model", fake_run_model)
    assert run_cli(data_dir, tmp_path, OK) == 0
    assert calls == []
    assert run_cli(data_dir, tmp_path, OK, "--force") == 0
    assert calls == OK
    assert (pd.read_csv(tmp_path / "comparison.csv")["train_seconds"] == 0.5).all()


@pytest.mark.slow
def test_full_protocol_scores_finished_runs_from_their_best_weights(first_run, data_dir,
                                                                     tmp_path, capsys):
    _, out = first_run
    for name in OK:
        shutil.copytree(out / name, tmp_path / name)
    # SLi-Rec's best epoch missing: its scoring fails, is reported, and is tried again later.
    best = tmp_path / "sli_rec" / "best_model"
    best.rename(tmp_path / "moved")
    capsys.readouterr()
    assert run_cli(data_dir, tmp_path, OK, "--protocol", "both") == 0
    text = capsys.readouterr().out
    assert "resuming" not in text and "training" not in text
    assert all(f"== {n}: full ranking scored from its best weights" in text for n in IN_PROCESS)
    assert "== sli_rec: full ranking OSError: Failed to find any matching files" in text
    status = pd.read_csv(tmp_path / "comparison_full.csv").set_index("model")["status"]
    assert status["sli_rec"].startswith(f"full ranking OSError: Failed to find any matching "
                                        f"files for {best}")
    assert "full_ranking.log" in status["sli_rec"] and status["clsr"] == "ok"
    (tmp_path / "moved").rename(best)
    assert run_cli(data_dir, tmp_path, OK, "--protocol", "both") == 0
    text = capsys.readouterr().out
    assert "== sli_rec: full ranking scored from its best weights" in text
    assert "== clsr: full ranking scored" not in text  # stored by the first run
    full = pd.read_csv(tmp_path / "comparison_full.csv").set_index("model")
    test_lines = json.loads((out / "clsr" / "result.json").read_text())["test_lines"]
    for name in OK:  # SLi-Rec through its own eval in a subprocess, on the same positives
        row = full.loc[name]
        assert row["runs"] == 1 and row["status"] == "ok"
        assert row["positives"] == test_lines // (1 + 99)  # synthetic: 1 + 99 test negatives
        assert 0 <= row["recall@5"] <= row["recall@10"] <= row["recall@20"] <= 1
        assert 0 < row["mrr"] <= 1 and np.isnan(row["mrr_std"])
        stored = json.loads((tmp_path / name / "result.json").read_text())["test_full"]
        assert stored["recall@10"] == pytest.approx(row["recall@10"])
        assert stored["mrr"] == pytest.approx(row["mrr"])
    assert "[sli_rec] full ranking: " in text  # its progress lines
    assert not [f for f in os.listdir(tmp_path / "sli_rec") if f.endswith(".lines")]
    assert "| clsr | 1 |" in (tmp_path / "comparison_full.md").read_text()
    # Stored: a second run reuses test_full instead of scoring again.
    assert run_cli(data_dir, tmp_path, OK, "--protocol", "both") == 0
    assert "full ranking scored" not in capsys.readouterr().out


def test_first_seed_only_models_run_once_and_pair_with_that_seed(data_dir, tmp_path,
                                                                  monkeypatch):
    from clsr_tf.significance import SCORES_FILE, save_scores

    rng = np.random.default_rng(0)
    users, labels = np.repeat(np.arange(40), 5), np.tile([1, 0, 0, 0, 0], 40)
    calls = []

    partial = []  # the tables as each run starts

    def fake_run_model(self, name, seed=None, resume=False):
        calls.append((name, seed))
        table = tmp_path / "comparison.csv"
        partial.append(((tmp_path / "comparison.md").read_text(),
                         pd.read_csv(table).set_index("model")) if table.exists() else None)
        preds = labels * (0.9 if name == "clsr" else 0.0) + rng.random(len(labels))
        os.makedirs(self.run_dir(name, seed), exist_ok=True)
        save_scores(os.path.join(self.run_dir(name, seed), SCORES_FILE), users, labels, preds)
        test = {c: float(rng.random()) for c in self.columns}
        return {"status": "ok", "test": test, "test_lines": len(labels), "train_seconds": 1.0,
                "epochs_run": 2, "best_epoch": 1, "params": 10,
                "history": [{"epoch": 1, "valid": {"gauc": 0.5}}]}

    monkeypatch.setattr(compare.Comparison, "run_model", fake_run_model)
    assert run_cli(data_dir, tmp_path, ["clsr", "sli_rec", "caser"], "--seeds", "1,2,3",
                   "--first-seed-only", "caser") == 0
    assert calls == [("clsr", 1), ("sli_rec", 1), ("caser", 1), ("clsr", 2), ("sli_rec", 2),
                     ("clsr", 3), ("sli_rec", 3)]
    # Tables after every run, marked in progress, the models not yet run named as such.
    assert partial[0] is None
    text, table = partial[2]
    assert "**In progress**: 2 of 7 runs have finished" in text
    assert list(table["seeds"]) == [1, 1, 0] and table.loc["caser", "status"] == "not run yet"
    assert "In progress" not in (tmp_path / "comparison.md").read_text()
    runs = pd.read_csv(tmp_path / "runs.csv").set_index(["model", "seed"])
    summary = pd.read_csv(tmp_path / "comparison.csv").set_index("model")
    assert summary.loc["caser", "seeds"] == 1 and np.isnan(summary.loc["caser", "gauc_std"])
    assert np.isnan(summary.loc["caser", "p_seeds"]) and summary.loc["sli_rec", "p_seeds"] >= 0
    assert summary.loc["caser", "gauc_lead"] == pytest.approx(
        runs.loc[("clsr", 1), "gauc"] - runs.loc[("caser", 1), "gauc"])
    assert summary.loc["caser", "p_users"] < 0.05  # CLSR's seed-1 scores separate better
    # --tables-only: the finished runs' tables, nothing trained, the missing run left out.
    (tmp_path / "sli_rec" / "seed_3" / "result.json").unlink()
    assert run_cli(data_dir, tmp_path, ["clsr", "sli_rec", "caser"], "--seeds", "1,2,3",
                   "--first-seed-only", "caser", "--tables-only") == 0
    assert len(calls) == 7
    assert "**In progress**: 6 of 7 runs" in (tmp_path / "comparison.md").read_text()
    summary = pd.read_csv(tmp_path / "comparison.csv").set_index("model")
    assert list(summary["seeds"]) == [3, 2, 1]
    with pytest.raises(SystemExit):
        run_cli(data_dir, tmp_path, ["clsr"], "--tables-only", "--force")
    for argv in (["--first-seed-only", "sli_rec"], ["--seeds", "1,2", "--first-seed-only", "sum"]):
        assert run_cli(data_dir, tmp_path, ["clsr", "sli_rec"], *argv) == EXIT_BAD_INPUT


def test_bad_shared_input_exits_with_2(data_dir, tmp_path, capsys):
    assert run_cli(data_dir, tmp_path, OK, "--set", "no_such_key=1") == EXIT_BAD_INPUT
    assert "no_such_key" in capsys.readouterr().err
    assert run_cli(data_dir, tmp_path, ["clsr"], "--set", "gruu.hidden_size=8") == 2
    assert "gruu" in capsys.readouterr().err
    assert run_cli(data_dir, tmp_path, OK, "--set", "max_seq_length=ten") == 2
    assert not (tmp_path / "comparison.csv").exists()


def test_overrides_reach_the_models_that_have_the_key(data_dir, tmp_path):
    comparison = compare.Comparison(
        HPARAMS, ["clsr", "sli_rec", "caser", "surge"], data_dir=data_dir, output_dir=tmp_path,
        epochs=3, overrides={"hidden_size": 16, "n_v": 4, "sli_rec.attention_size": 8,
                             "surge.pool_length": 2, "batch_size": 50})
    clsr, sli_rec, caser, surge = (comparison.model_hparams(n)
                                   for n in ("clsr", "sli_rec", "caser", "surge"))
    assert clsr["hidden_size"] == sli_rec["hidden_size"] == surge["hidden_size"] == 16
    assert "hidden_size" not in caser and caser["n_v"] == 4 and "n_v" not in sli_rec
    assert sli_rec["attention_size"] == 8 and surge["pool_length"] == 2
    for hp in (clsr, sli_rec, caser, surge):  # the shared protocol
        assert hp["epochs"] == 3 and hp["batch_size"] == 50 and hp["max_seq_length"] == 20
    assert os.path.isabs(sli_rec["item_vocab"]) and sli_rec["item_vocab"].startswith(data_dir)
    assert compare.split_overrides({"surge.pool_length": 2}, ["clsr"]) == ({}, {"clsr": {}})
    with pytest.raises(HParamsError, match="sruge"):
        compare.split_overrides({"sruge.pool_length": 2}, ["surge"])


def test_every_model_has_a_runner_and_a_yaml():
    from clsr_tf.baselines import RECOMMENDERS_MODELS
    from clsr_tf.hparams import read_yaml

    assert set(compare.MODELS) == set(compare.IN_PROCESS) | set(RECOMMENDERS_MODELS)
    folder = os.path.join(os.path.dirname(HPARAMS), "baselines")
    for name in set(compare.MODELS) - {"clsr"}:
        assert read_yaml(os.path.join(folder, f"{name}.yaml")), name


def test_metric_columns_follow_the_configured_ks():
    assert compare.metric_columns(["mean_mrr", "ndcg@2;10", "hit@2"]) == [
        "auc", "gauc", "mean_mrr", "ndcg@2", "ndcg@10"]


@pytest.mark.slow
def test_legacy_rnn_shim_lets_gru_and_sum_import():
    code = (
        "from clsr_tf.baselines.recommenders_runner import use_legacy_keras\n"
        "use_legacy_keras()\n"
        "import importlib\n"
        "seq = 'recommenders.models.deeprec.models.sequential.'\n"
        "try:\n"
        "    importlib.import_module(seq + 'gru')\n"
        "    raise SystemExit('GRUModel imported without the shim: is the shim still needed?')\n"
        "except ModuleNotFoundError as err:\n"
        "    assert 'legacy_rnn' in str(err), err\n"
        "from clsr_tf.baselines.compat import install_legacy_rnn_shim\n"
        "install_legacy_rnn_shim()\n"
        "from recommenders.models.deeprec.models.sequential.gru import GRUModel\n"
        "from recommenders.models.deeprec.models.sequential.sum import SUMModel\n"
        "print('imported', GRUModel.__name__, SUMModel.__name__)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=compare.baseline_environment(), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "imported GRUModel SUMModel" in proc.stdout


@pytest.mark.slow
def test_seeds_give_mean_std_paired_tests_and_resume(data_dir, tmp_path, capsys):
    models, seeds = ["clsr", "sli_rec"], "1,2"
    assert run_cli(data_dir, tmp_path, models, "--seeds", seeds) == 0
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs[["model", "seed"]].itertuples(index=False, name=None)) == [
        ("clsr", 1), ("clsr", 2), ("sli_rec", 1), ("sli_rec", 2)]
    assert runs.groupby("model")["gauc"].nunique().eq(2).all()  # the seeds differ
    summary = pd.read_csv(tmp_path / "comparison.csv").set_index("model")
    for column in ("auc", "gauc", "mean_mrr"):
        mean = runs.groupby("model")[column].mean()
        std = runs.groupby("model")[column].std(ddof=1)
        np.testing.assert_allclose(summary.loc[models, column], mean[models], rtol=1e-9)
        np.testing.assert_allclose(summary.loc[models, f"{column}_std"], std[models],
                                   rtol=1e-9)
    lead = runs.set_index(["model", "seed"])["gauc"]
    assert summary.loc["sli_rec", "gauc_lead"] == pytest.approx(
        (lead["clsr"] - lead["sli_rec"]).mean(), abs=1e-9)
    assert 0 <= summary.loc["sli_rec", "p_seeds"] <= 1
    assert 0 <= summary.loc["sli_rec", "p_users"] <= 1 and summary.loc["sli_rec", "users"] >= 20
    assert np.isnan(summary.loc["clsr", "p_users"])  # no test of CLSR against itself
    markdown = (tmp_path / "comparison.md").read_text()
    assert " +- " in markdown and "p (users)" in markdown
    assert (tmp_path / "valid_curves.png").stat().st_size > 1000
    # A run killed before its result was written resumes from its checkpoints and reaches
    # the same numbers; finished runs are kept.
    for name in models:
        (tmp_path / name / "seed_2" / "result.json").unlink()
    capsys.readouterr()
    assert run_cli(data_dir, tmp_path, models, "--seeds", seeds) == 0
    out = capsys.readouterr().out
    assert "== clsr seed 1 (1/4): " in out and "== sli_rec seed 1 (2/4): " in out
    assert "skipped" in out
    assert "== clsr seed 2 (3/4) resuming" in out and "== sli_rec seed 2 (4/4) resuming" in out
    again = pd.read_csv(tmp_path / "runs.csv")
    pd.testing.assert_frame_equal(again.drop(columns="train_seconds"),
                                  runs.drop(columns="train_seconds"))
