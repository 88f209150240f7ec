"""Notebooks run end to end through Recommenders' notebook_utils (small parameters)."""

import os

import pytest

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

ROOT = os.path.join(os.path.dirname(__file__), "..")


def test_quick_start_notebook(tmp_path):
    from recommenders.utils.notebook_utils import execute_notebook, read_notebook

    output = str(tmp_path / "out.ipynb")
    small = {"prepare_n_users": 300, "prepare_interactions_per_user": 40,
             "max_seq_length": 10, "batch_size": 100, "learning_rate": 0.005,
             "layer_sizes": [16, 8], "att_fcn_layer_sizes": [16, 8]}
    execute_notebook(
        os.path.join(ROOT, "notebooks", "00_quick_start.ipynb"), output,
        parameters={"HPARAMS": os.path.abspath(os.path.join(ROOT, "hparams", "synthetic.yaml")),
                    "DATA_DIR": str(tmp_path / "data"), "EPOCHS": 3, "OVERRIDES": small},
        timeout=600)
    results = read_notebook(output)
    assert set(results) == {"auc", "gauc", "mean_mrr", "ndcg@2", "mean_alpha"}
    # Test AUC at the best of three epochs, seed 1: 0.750 (TF 2.15), 0.716 (TF 2.21); random:
    # 0.5. One epoch is on the edge of learning (0.59 to 0.68 by seed and stack) and two
    # epochs still gave 0.664 (TF 2.15, seed 1), too close to any floor.
    assert results["auc"] > 0.65
    assert 0 < results["mean_alpha"] < 1
