"""End to end: the CLI and the Recommenders-style facade on a small synthetic data set."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from clsr_tf import train
from clsr_tf.hparams import load_hparams

from conftest import prepare_synthetic

# End to end: every test trains a model first.
pytestmark = pytest.mark.slow

HPARAMS = os.path.join(os.path.dirname(__file__), "..", "hparams", "synthetic.yaml")
# A small model and data set: two epochs take seconds on two cores.
SMALL = ["--set", "prepare_n_users=300", "--set", "prepare_interactions_per_user=40",
         "--set", "max_seq_length=10", "--set", "item_embedding_dim=12",
         "--set", "cate_embedding_dim=4", "--set", "user_embedding_dim=16",
         "--set", "hidden_size=16", "--set", "att_fcn_layer_sizes=[16,8]",
         "--set", "layer_sizes=[16,8]", "--set", "batch_size=100",
         "--set", "learning_rate=0.005", "--quiet"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):  # 300 users x 40 interactions, larger than conftest's
    return prepare_synthetic(tmp_path_factory, 300, 40)


def run_cli(data_dir, out, *extra):
    return train.main(["--hparams", HPARAMS, "--data-dir", data_dir, "--output-dir", str(out),
                       *SMALL, *extra])


def test_cli_trains_and_writes_metrics(data_dir, tmp_path):
    assert run_cli(data_dir, tmp_path, "--epochs", "2") == 0
    with open(tmp_path / "metrics.json") as f:
        result = json.load(f)
    for split in ("valid", "test"):
        for key in ("auc", "gauc", "group_auc", "mean_mrr", "ndcg@2"):
            assert key in result[split]
    # Observed on this data: test AUC ~0.80 and GAUC ~0.80 after 2 epochs (random: 0.5).
    assert result["test"]["auc"] > 0.65
    assert result["test"]["gauc"] > 0.65
    assert os.path.isdir(tmp_path / "best_model")
    assert os.listdir(tmp_path / "logs")
    assert tf.executing_eagerly()


def test_resume_reaches_the_result_of_an_unbroken_run(data_dir, tmp_path):
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert run_cli(data_dir, straight, "--epochs", "2") == 0
    assert run_cli(data_dir, broken, "--epochs", "1") == 0
    assert run_cli(data_dir, broken, "--epochs", "2", "--resume") == 0
    a, b = (json.load(open(p / "metrics.json")) for p in (straight, broken))
    assert b["epochs_run"] == 2
    for split in ("valid", "test"):
        for key, value in a[split].items():
            assert b[split][key] == pytest.approx(value, abs=2e-4), (split, key)


def test_bad_input_exits_with_2_and_names_the_problem(data_dir, tmp_path, capsys):
    assert run_cli(data_dir, tmp_path, "--set", "contrastive_los=bpr") == 2
    assert "contrastive_los" in capsys.readouterr().err
    assert run_cli(data_dir, tmp_path, "--set", "sequential_model=rnn") == 2
    assert "sequential_model" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  dataset: synthetic\nmodell:\n  hidden_size: 3\n")
    assert train.main(["--hparams", str(bad), "--data-dir", data_dir]) == 2
    assert "modell" in capsys.readouterr().err


def test_cli_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--hparams", "--data-dir", "--output-dir", "--epochs", "--set", "--resume",
                 "--loader"):
        assert flag in text


def test_facade_mirrors_recommenders_methods(data_dir, tmp_path):
    from clsr_tf.sequential import CLSRSequentialModel

    overrides = dict(a.split("=", 1) for a in SMALL[1::2] if "=" in a)
    hp = load_hparams(HPARAMS, data_dir=data_dir, epochs=1,
                      **{k: __import__("yaml").safe_load(v) for k, v in overrides.items()})
    path = lambda name: os.path.join(data_dir, name)  # noqa: E731
    model = CLSRSequentialModel(hp, loader="recommenders", verbose=0)
    model.fit(path("train_data"), path("valid_data"), valid_num_ngs=4)
    res = model.run_eval(path("valid_data"), num_ngs=4)
    assert 0.5 < res["gauc"] <= 1 and 0 < res["mean_alpha"] < 1
    out = tmp_path / "scores.txt"
    model.predict(path("valid_data"), str(out))
    scores = np.loadtxt(out)
    with open(path("valid_data")) as f:
        lines = sum(1 for _ in f)
    assert len(scores) == lines
    model.save_model(str(tmp_path / "saved"))
    other = CLSRSequentialModel(hp, loader="recommenders", verbose=0)
    other.load_model(str(tmp_path / "saved"))
    assert other.run_eval(path("valid_data"), num_ngs=4) == res
    # Weights without the interest-evolution GRU cannot silently fill a model that has one.
    without = CLSRSequentialModel(dict(other.hp, interest_evolve=False), loader="recommenders",
                                  verbose=0)
    without.save_model(str(tmp_path / "without"))
    with pytest.raises(ValueError, match="do not cover"):
        other.load_model(str(tmp_path / "without"))
    group = next(g for g in range(2, 20) if lines % g)
    with pytest.raises(ValueError, match=f"groups of {group}"):
        other.run_eval(path("valid_data"), num_ngs=group - 1)


def test_train_seconds_sum_the_epochs_of_every_process():
    from clsr_tf.evaluation import train_seconds

    # A run resumed after epoch 1: its epochs were timed in two processes.
    assert train_seconds([{"seconds": 2.0}, {"seconds": 3.5}], elapsed=3.6) == 5.5
    # Epochs from a checkpoint of a clsr_tf that did not time them: this process's time.
    assert train_seconds([{}, {"seconds": 3.5}], elapsed=3.6) == 3.6
