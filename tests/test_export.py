"""SavedModel export round trip and the batch-scoring CLI."""

import os

import numpy as np
import pytest
import tensorflow as tf

from clsr_tf import export, predict
from clsr_tf.hparams import load_hparams
from clsr_tf.sequential import CLSRSequentialModel

# End to end: every test trains a model first.
pytestmark = pytest.mark.slow

HPARAMS = os.path.join(os.path.dirname(__file__), "..", "hparams", "synthetic.yaml")
# A tiny model (as tests/test_train.py).
SMALL = dict(max_seq_length=10, item_embedding_dim=6, cate_embedding_dim=2,
             user_embedding_dim=8, hidden_size=8, att_fcn_layer_sizes=[8, 4],
             layer_sizes=[8, 4], batch_size=64)
SET = [a for key, value in SMALL.items() for a in ("--set", f"{key}={value}")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(data folder, facade with saved weights, weights folder, SavedModel folder)."""
    from clsr_tf.data.registry import prepare_dataset

    root = tmp_path_factory.mktemp("export")
    data_dir = str(root / "data")
    prepare_dataset("synthetic", None, data_dir, max_seq_length=10, n_users=60,
                    interactions_per_user=20)
    model = CLSRSequentialModel(load_hparams(HPARAMS, data_dir=data_dir, **SMALL), verbose=0)
    # Random weights and batch-norm statistics instead of training (seconds less of tracing).
    rng = np.random.default_rng(0)
    for var in model.model.variables:
        scale = rng.uniform(0.5, 1.5, var.shape)
        noise = 0 if "moving_variance" in var.name else rng.normal(0, 0.1, var.shape)
        var.assign(var.numpy() * scale + noise)
    weights = str(root / "best_model")
    model.save_model(weights)
    saved = root / "saved_model"
    saved.mkdir()
    (saved / "stale").write_text("replaced by the export")
    assert export.main(["--hparams", HPARAMS, "--data-dir", data_dir, "--weights", weights,
                        "--output", str(saved), *SET]) == 0
    return data_dir, model, weights, str(saved)


def test_saved_model_matches_the_keras_model(trained):
    data_dir, model, _, saved = trained
    scorer = export.load_scorer(saved)
    assert scorer.max_seq_length == 10
    batch = next(iter(model.batches(os.path.join(data_dir, "valid_data"), 0)))
    del batch["labels"]  # the signature does not need it
    out = model.model.forward(batch, training=False)
    got = scorer(batch)
    np.testing.assert_allclose(got["scores"], out["pred"].numpy()[:, 0], atol=1e-6)
    np.testing.assert_allclose(got["alpha"], out["alpha"].numpy()[:, 0], atol=1e-6)
    assert tf.executing_eagerly()


def test_export_replaces_the_folder_atomically(trained):
    saved = trained[3]
    assert not os.path.exists(os.path.join(saved, "stale"))
    assert os.path.exists(os.path.join(saved, "saved_model.pb"))
    assert sorted(os.listdir(os.path.dirname(saved))) == ["best_model", "data", "saved_model"]


@pytest.mark.parametrize("source", ["weights", "saved_model"])
def test_predict_cli_matches_score(trained, tmp_path, source):
    data_dir, model, weights, saved = trained
    infile = os.path.join(data_dir, "test_data")
    expected = model.score(infile)
    out = tmp_path / "scores.txt"
    flag = ["--weights", weights] if source == "weights" else ["--saved-model", saved]
    assert predict.main(["--hparams", HPARAMS, "--data-dir", data_dir, *flag, "--input", infile,
                         "--output", str(out), "--with-alpha", *SET]) == 0
    got = np.loadtxt(out, ndmin=2)
    with open(infile) as f:
        assert len(got) == sum(1 for _ in f)
    np.testing.assert_allclose(got[:, 0], expected["pred"], atol=1e-6)
    np.testing.assert_allclose(got[:, 1], expected["alpha"], atol=1e-6)


def test_predict_recommenders_loader_writes_scores_only(trained, tmp_path):
    data_dir, model, _, saved = trained
    infile = os.path.join(data_dir, "valid_data")
    out = tmp_path / "scores.txt"
    assert predict.main(["--hparams", HPARAMS, "--data-dir", data_dir, "--saved-model", saved,
                         "--input", infile, "--output", str(out), "--loader", "recommenders",
                         *SET]) == 0
    np.testing.assert_allclose(np.loadtxt(out), model.score(infile)["pred"], atol=1e-6)


def test_bad_input_exits_with_2(trained, tmp_path, capsys):
    data_dir, _, weights, saved = trained
    out = tmp_path / "scores.txt"

    def run(*args):
        return predict.main(["--hparams", HPARAMS, "--data-dir", data_dir, "--output",
                             str(out), *SET, *args])

    missing = str(tmp_path / "missing")
    assert run("--saved-model", saved, "--input", missing) == 2
    assert "missing" in capsys.readouterr().err
    with open(os.path.join(data_dir, "valid_data")) as f:
        lines = f.readlines()
    fields = lines[2].split("\t")
    fields[4] = "noon"
    bad = tmp_path / "bad_data"
    bad.write_text("".join(lines[:2] + ["\t".join(fields)] + lines[3:]))
    assert run("--saved-model", saved, "--input", str(bad)) == 2
    assert "line 3, field 'timestamp'" in capsys.readouterr().err
    assert not out.exists() and os.listdir(tmp_path) == ["bad_data"]
    assert run("--saved-model", str(tmp_path / "nothing"), "--input", str(bad)) == 2
    assert run("--weights", missing, "--input", str(bad)) == 2
    assert export.main(["--hparams", HPARAMS, "--data-dir", data_dir, "--weights", missing,
                        "--output", str(tmp_path / "sm"), *SET]) == 2
    assert "no weights" in capsys.readouterr().err
    assert export.main(["--hparams", HPARAMS, "--data-dir", data_dir, "--weights", weights,
                        "--output", str(tmp_path / "sm"), *SET, "--set", "layer_sizes=[6,4]"]) == 2
    assert "do not fit the hyper-parameters" in capsys.readouterr().err
    assert run("--saved-model", saved, "--input", str(bad), "--set", "max_seq_length=12") == 2
    assert "max_seq_length" in capsys.readouterr().err
