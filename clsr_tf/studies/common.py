"""What every study shares: training a model, scoring a file through any forward output."""

import os

import numpy as np
import tensorflow as tf

from clsr_tf.data.iterator import output_signature
from clsr_tf.evaluation import evaluate, mean_alpha


def data_file(hp, key):
    """Path of a data file of the prepared data set.

    Args:
        hp (dict): Validated hyper-parameters.
        key (str): ``train_file``, ``valid_file`` or ``test_file``.

    Returns:
        str: The path.
    """
    return os.path.join(hp["data_dir"], hp[key])


def train_model(hp, loader="fast", verbose=0):
    """Train CLSR on the data set of ``hp`` (early stopping on valid GAUC, in memory).

    Args:
        hp (dict): Validated hyper-parameters.
        loader (str): ``fast`` or ``recommenders``.
        verbose (int): Keras progress output.

    Returns:
        CLSRSequentialModel: The trained model (best epoch's weights).
    """
    from clsr_tf.sequential import CLSRSequentialModel

    model = CLSRSequentialModel(hp, loader=loader, verbose=verbose)
    return model.fit(data_file(hp, "train_file"), data_file(hp, "valid_file"),
                     hp["valid_num_ngs"])


class Scorer:
    """Run a ``CLSRModel`` over a file and keep chosen ``forward`` outputs of every line.

    Args:
        model (CLSRModel): The Keras model.
        batches (callable): ``(path, batch_num_ngs) -> batch dicts``, e.g. the ``batches``
            of a ``CLSRSequentialModel``.
        keys (tuple): ``forward`` outputs to keep (``pred`` and ``alpha`` by default).
    """

    def __init__(self, model, batches, keys=("pred", "alpha")):
        self.model = model
        self.batches = batches
        self.keys = tuple(keys)
        self._forward = tf.function(self._outputs, input_signature=[
            output_signature(model.hp["max_seq_length"])])

    def _outputs(self, batch):
        out = self.model.forward(batch, training=False, group_size="consecutive")
        return {key: out[key] for key in self.keys}

    def __call__(self, filename, transform=None):
        """Score every line of a file, in file order.

        Args:
            filename (str): A Recommenders sequential file.
            transform (callable): Batch dict -> batch dict applied before the model
                (e.g. a protocol of ``clsr_tf.studies.protocols``), or None.

        Returns:
            dict: ``users`` and ``labels`` [N], each kept output: [N] for one-column outputs
            (``pred``, ``alpha``), [N, D] otherwise.
        """
        parts = {key: [] for key in ("users", "labels") + self.keys}
        for batch in self.batches(filename, 0):
            if transform is not None:
                batch = transform(batch)
            parts["users"].append(np.asarray(batch["users"]).ravel())
            parts["labels"].append(np.asarray(batch["labels"]).ravel())
            for key, value in self._forward(batch).items():
                value = value.numpy()
                parts[key].append(value[:, 0] if value.ndim == 2 and value.shape[1] == 1
                                  else value)
        if not parts["labels"]:
            raise ValueError(f"{filename}: no lines to score")
        return {key: np.concatenate(value) for key, value in parts.items()}


def evaluate_scores(hp, scores, group_size):
    """The metrics of ``clsr_tf.evaluation.evaluate`` plus ``mean_alpha`` of scored lines.

    Args:
        hp (dict): Hyper-parameters (``metrics``, ``pairwise_metrics``).
        scores (dict): ``users``, ``labels``, ``pred``, ``alpha`` as from ``Scorer``.
        group_size (int): Lines per candidate group (1 + negatives).

    Returns:
        dict: Metric name -> value.
    """
    res = evaluate(scores["users"], scores["labels"], scores["pred"], group_size,
                   hp["metrics"], hp["pairwise_metrics"])
    res["mean_alpha"] = round(mean_alpha(scores["alpha"], scores["labels"]), 4)
    return res
