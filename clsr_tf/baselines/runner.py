"""In-process runs of the Keras models (CLSR and SURGE) for ``clsr_tf.compare``.

Both train through ``CLSRSequentialModel``'s loop (early stopping on valid GAUC, the best
epoch's weights kept) and score through ``clsr_tf.evaluation.evaluate``, exactly as
``python -m clsr_tf.train`` does for CLSR.
"""

import os
import time

import numpy as np

from clsr_tf.datasets import data_path
from clsr_tf.evaluation import evaluate, train_seconds
from clsr_tf.sequential import CLSRSequentialModel, SURGESequentialModel
from clsr_tf.significance import SCORES_FILE, save_scores

FACADES = {"clsr": CLSRSequentialModel, "surge": SURGESequentialModel}


def count_parameters(model):
    """Number of trainable parameters of a Keras model.

    Args:
        model (keras.Model): A built model.

    Returns:
        int: Parameter count.
    """
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def run_in_process(name, hp, output_dir, loader="fast", verbose=0, resume=False,
                   protocol="sampled"):
    """Train, select the best epoch on valid GAUC and evaluate the test file.

    Args:
        name (str): ``clsr`` or ``surge``.
        hp (dict): The model's hyper-parameters (with ``data_dir`` and the file names).
        output_dir (str): Checkpoints, best weights and TensorBoard logs.
        loader (str): ``fast`` or ``recommenders``.
        verbose (int): Keras progress output.
        resume (bool): Continue a killed run from its last checkpoint in ``output_dir``.
        protocol (str): ``sampled`` (``test``), ``full`` or ``both`` (``test`` and
            ``test_full``, ``run_eval_full``'s full-ranking metrics).

    Returns:
        dict: ``status`` ``ok``, ``valid``/``test`` metrics, ``test_lines``, ``best_epoch``,
        ``epochs_run``, ``train_seconds``, ``params``, ``history`` and ``hparams``.
    """
    start = time.time()
    runner = FACADES[name](hp, loader=loader, verbose=verbose)
    runner.fit(data_path(hp, "train_file"), data_path(hp, "valid_file"), hp["valid_num_ngs"],
               output_dir=output_dir, resume=resume)
    elapsed = time.time() - start
    scores = runner.score(data_path(hp, "test_file"))
    save_scores(os.path.join(output_dir, SCORES_FILE), scores["users"], scores["labels"],
                scores["pred"])
    test = evaluate(scores["users"], scores["labels"], scores["pred"],
                    runner.hp["test_num_ngs"], runner.hp["metrics"],
                    runner.hp["pairwise_metrics"])
    best = next(h for h in runner.history if h["epoch"] == runner.best_epoch)
    extra = {}
    if protocol in ("full", "both"):
        extra["test_full"] = full_ranking(runner, hp)
    return {"model": name, "status": "ok", "valid": best["valid"], "test": test, **extra,
            "test_lines": len(scores["pred"]), "best_epoch": runner.best_epoch,
            "epochs_run": len(runner.history),
            "train_seconds": train_seconds(runner.history, elapsed),
            "params": count_parameters(runner.model), "history": runner.history,
            "hparams": dict(runner.hp)}


def full_ranking(runner, hp):
    """The full-ranking metrics of a trained model on the test file, with their cost.

    Args:
        runner (CLSRSequentialModel): A trained facade (CLSR or SURGE).
        hp (dict): Its hyper-parameters (the data set's files).

    Returns:
        dict: ``run_eval_full``'s metrics and ``seconds``.
    """
    start = time.time()
    metrics = runner.run_eval_full(data_path(hp, "test_file"))
    return dict(metrics, seconds=round(time.time() - start, 1))


def full_ranking_of_run(name, hp, output_dir):
    """The full-ranking metrics of a finished run, from its best weights (no training).

    Args:
        name (str): ``clsr`` or ``surge``.
        hp (dict): The run's hyper-parameters.
        output_dir (str): The run's folder (with ``best_model/``).

    Returns:
        dict: See ``full_ranking``.
    """
    runner = FACADES[name].from_weights(hp, os.path.join(output_dir, "best_model"))
    return full_ranking(runner, hp)
