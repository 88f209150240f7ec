"""The disentanglement notebook runs end to end on tiny synthetic data (notebook_utils)."""

import os

import pytest

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

ROOT = os.path.join(os.path.dirname(__file__), "..")


def test_disentanglement_notebook(tmp_path):
    from recommenders.utils.notebook_utils import execute_notebook, read_notebook

    synthetic = os.path.abspath(os.path.join(ROOT, "hparams", "synthetic.yaml"))
    tiny = {"prepare_n_users": 100, "prepare_interactions_per_user": 30, "max_seq_length": 10,
            "item_embedding_dim": 12, "cate_embedding_dim": 4, "user_embedding_dim": 16,
            "hidden_size": 16, "att_fcn_layer_sizes": [16, 8], "layer_sizes": [16, 8],
            "batch_size": 100, "learning_rate": 0.005}
    output = str(tmp_path / "out.ipynb")
    execute_notebook(
        os.path.join(ROOT, "notebooks", "01_disentanglement.ipynb"), output,
        parameters={"HPARAMS": synthetic, "DATA_DIR": str(tmp_path / "data"), "OVERRIDES": tiny,
                    "GT_HPARAMS": synthetic, "GT_DATA_DIR": str(tmp_path / "data"),
                    "GT_OVERRIDES": tiny, "EPOCHS": 1, "KS": [1, 5],
                    "ABLATIONS": ["no_contrastive"]},
        timeout=600)
    results = read_notebook(output)
    assert set(results) == {"auc", "gauc", "shuffle_gauc", "truncate_gauc_min_k",
                            "long_only_gauc", "short_only_gauc", "mean_alpha", "alpha_margin",
                            "ablation_rows_ok"}
    for key in ("auc", "gauc", "shuffle_gauc", "truncate_gauc_min_k", "long_only_gauc",
                "short_only_gauc", "mean_alpha"):
        assert 0 < results[key] < 1, key
    assert -1 < results["alpha_margin"] < 1
    assert results["ablation_rows_ok"] == 1
