"""One-side interests: a trained model scored with alpha forced to 1 or 0 (Figures 3, 5b).

No retraining: ``fixed_alpha_model`` builds a second ``CLSRModel`` with ``manual_alpha``
(whose fusion has no weights) and copies every other layer's weights from the trained one,
so u = u_l at alpha 1 (long-term interest only) and u = u_s at alpha 0 (short-term only).
"""

import pandas as pd

from clsr_tf.evaluation import evaluate_scores
from clsr_tf.models import CLSRModel
from clsr_tf.sequential import FileScorer

# (row name, forced alpha or None for the model's own fusion)
SIDES = (("adaptive", None), ("long only", 1.0), ("short only", 0.0))


def copy_weights(source, target):
    """Copy weights between two models layer by layer, matching layers by name.

    Layers of ``target`` without weights (e.g. a manual-alpha fusion) are skipped.

    Args:
        source (keras.Model): Model to copy from.
        target (keras.Model): Built model to copy into.
    """
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


def fixed_alpha_model(model, alpha):
    """A copy of a trained CLSR whose fusion weight is the constant ``alpha``.

    Args:
        model (CLSRModel): Trained (built) model.
        alpha (float): Weight of the long-term interest, in [0, 1].

    Returns:
        CLSRModel: The copy (manual_alpha=True, manual_alpha_value=alpha).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    clone = CLSRModel(dict(model.hp, manual_alpha=True, manual_alpha_value=float(alpha)))
    clone.build_from_shape(model.hp["max_seq_length"])
    copy_weights(model, clone)
    return clone


def one_side_study(model, batches, filename, num_ngs):
    """Metrics of the adaptive fusion next to the long-only and short-only models.

    Args:
        model (CLSRModel): Trained model with the adaptive fusion.
        batches (callable): Batch reader (``CLSRSequentialModel.batches``).
        filename (str): Test file.
        num_ngs (int): Negatives per positive in the file.

    Returns:
        pandas.DataFrame: Rows ``adaptive``, ``long only``, ``short only``: ``interest``,
        ``alpha`` (forced value, empty for adaptive) and the metrics.
    """
    if model.hp["manual_alpha"]:
        raise ValueError("one_side compares against the adaptive fusion; the model has "
                         "manual_alpha")
    rows = []
    for name, alpha in SIDES:
        scored = model if alpha is None else fixed_alpha_model(model, alpha)
        scores = FileScorer(scored, batches)(filename)
        rows.append({"interest": name, "alpha": alpha,
                     **evaluate_scores(model.hp, scores, num_ngs)})
    return pd.DataFrame(rows)
