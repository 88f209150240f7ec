"""Ground truth on the synthetic data: is alpha high where the long-term interest acted, and
do u_l and u_s encode the true long- and short-term interests?

The generator (``clsr_tf.data.synthetic``) knows, for every interaction, whether it came
from the user's long-term preference or from a short burst (the ``source`` column of the
meta sidecars), each user's long-term category distribution and the burst active at each
step. Two measures per model:

- mean alpha and AUC / GAUC of the test lines whose positive came from each source
  (``clsr_tf.studies.fusion_weight``);
- linear probes: a ridge regression fitted on the training lines maps u_l (or u_s) to the
  user's true long-term category distribution (or to the one-hot category of the active
  burst, on lines whose target step is inside a burst); the reported number is the Pearson
  correlation between the probe's predictions and the truth over the test positives
  (flattened over lines and categories). Disentangled interests give a high
  ``long_from_u_l`` with a lower ``long_from_u_s``, and a high ``short_from_u_s`` with a lower
  ``short_from_u_l``.
"""

import json
import os

import numpy as np
import pandas as pd

from clsr_tf.data.registry import DATASET_DEFAULTS
from clsr_tf.data.synthetic import generate_synthetic
from clsr_tf.data.writers import INFO_FILE
from clsr_tf.datasets import data_path
from clsr_tf.sequential import FileScorer
from clsr_tf.studies.fusion_weight import fusion_weight_study, read_meta

INTERESTS = {"u_l": "att_fea_long", "u_s": "att_fea_short"}


def synthetic_truth(data_dir):
    """Regenerate the ground truth of a prepared synthetic data set.

    Args:
        data_dir (str): Folder prepared by ``prepare_dataset("synthetic", ...)``.

    Returns:
        tuple: (interactions DataFrame, truth dict) as ``generate_synthetic(...,
        return_truth=True)`` returns them with the options the data set was prepared with.
    """
    with open(os.path.join(data_dir, INFO_FILE)) as f:
        info = json.load(f)
    if info.get("name") != "synthetic":
        raise ValueError(f"{data_dir}: the ground truth study needs the synthetic data set, "
                         f"not {info.get('name')!r}")
    request = info["request"]
    options = {key: request[key] for key in DATASET_DEFAULTS["synthetic"]["reader"]}
    return generate_synthetic(seed=request["seed"], return_truth=True, **options)


def line_truth(filename, interactions, truth):
    """The true interests behind the positive lines of a data file.

    Args:
        filename (str): A data file of the synthetic data set.
        interactions (pandas.DataFrame): The generated interactions.
        truth (dict): The generator's ground truth.

    Returns:
        dict: ``positive`` (bool [N], per line of the file), and per positive line
        ``long_term`` [P, C] (the user's category distribution) and ``burst`` [P] (category
        number of the active burst, -1 outside bursts).
    """
    lines = pd.read_csv(filename, sep="\t", header=None, usecols=[0, 1, 2, 4],
                        names=["label", "user", "item", "time"],
                        dtype={"label": int, "user": str, "item": str, "time": np.int64})
    keys = interactions[["user", "item", "time"]].astype({"user": str, "item": str})
    keys = keys.assign(row=np.arange(len(keys))).drop_duplicates(["user", "item", "time"])
    positive = lines["label"].to_numpy() == 1
    found = lines[positive].merge(keys, how="left", on=["user", "item", "time"])
    if found["row"].isna().any():
        raise ValueError(f"{filename}: lines that the generator did not produce; was the "
                         "data set prepared with other options?")
    users = found["user"].str[1:].astype(int).to_numpy()
    return {"positive": positive, "long_term": truth["long_term"][users],
            "burst": truth["burst"][found["row"].to_numpy(int)]}


def _one_hot(categories, n):
    return np.eye(n)[categories]


def probe_correlation(train_x, train_y, test_x, test_y, ridge=1.0):
    """Held-out correlation of a linear probe.

    Features are standardised with the training statistics; the probe is a ridge regression
    with an intercept.

    Args:
        train_x (numpy.ndarray): [N, D] training features.
        train_y (numpy.ndarray): [N, C] training targets.
        test_x (numpy.ndarray): [M, D] test features.
        test_y (numpy.ndarray): [M, C] test targets.
        ridge (float): L2 penalty on the standardised weights.

    Returns:
        float: Pearson correlation between predicted and true test targets, flattened.
    """
    mean, std = train_x.mean(0), train_x.std(0) + 1e-8
    x = (train_x - mean) / std
    weights = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]),
                              x.T @ (train_y - train_y.mean(0)))
    predicted = (test_x - mean) / std @ weights + train_y.mean(0)
    return float(np.corrcoef(predicted.ravel(), test_y.ravel())[0, 1])


def ground_truth_study(models, batches, hp):
    """Alpha per source and the probe correlations of each model.

    Args:
        models (dict): Row name -> trained ``CLSRModel`` (e.g. CLSR and CLSR with beta 0).
        batches (callable): Batch reader.
        hp (dict): Hyper-parameters of the data set (``data_dir``, file names, metrics).

    Returns:
        pandas.DataFrame: One row per model: ``model``, ``beta``, overall ``auc`` / ``gauc``
        / ``mean_alpha``, per source ``mean_alpha_*``, ``auc_*``, ``gauc_*``,
        ``alpha_margin`` (long minus short), and the probe correlations ``long_from_u_l``,
        ``long_from_u_s``, ``short_from_u_l``, ``short_from_u_s``.
    """
    interactions, truth = synthetic_truth(hp["data_dir"])
    train_file, test_file = data_path(hp, "train_file"), data_path(hp, "test_file")
    train_truth = line_truth(train_file, interactions, truth)
    test_truth = line_truth(test_file, interactions, truth)
    meta = read_meta(test_file)
    n_cates = truth["long_term"].shape[1]
    rows = []
    for name, model in models.items():
        scorer = FileScorer(model, batches, ("pred", "alpha") + tuple(INTERESTS.values()))
        test = scorer(test_file)
        train = scorer(train_file)
        if len(train["labels"]) != len(train_truth["positive"]):
            raise ValueError(f"{train_file}: {len(train['labels'])} scored lines but "
                             f"{len(train_truth['positive'])} lines in the file")
        by_source = fusion_weight_study(model.hp, test, meta, "source",
                                        hp["test_num_ngs"]).set_index("source")
        row = {"model": name, "beta": model.hp["contrastive_loss_weight"]}
        row.update({key: by_source.loc["all", key] for key in ("auc", "gauc", "mean_alpha")})
        for source in ("long", "short"):
            for key in ("mean_alpha", "auc", "gauc"):
                row[f"{key}_{source}"] = by_source.loc[source, key]
        row["alpha_margin"] = row["mean_alpha_long"] - row["mean_alpha_short"]
        for interest, key in INTERESTS.items():
            train_x = train[key][train_truth["positive"]]
            test_x = test[key][test_truth["positive"]]
            row[f"long_from_{interest}"] = probe_correlation(
                train_x, train_truth["long_term"], test_x, test_truth["long_term"])
            in_train, in_test = train_truth["burst"] >= 0, test_truth["burst"] >= 0
            row[f"short_from_{interest}"] = probe_correlation(
                train_x[in_train], _one_hot(train_truth["burst"][in_train], n_cates),
                test_x[in_test], _one_hot(test_truth["burst"][in_test], n_cates))
        rows.append(row)
    return pd.DataFrame(rows)
