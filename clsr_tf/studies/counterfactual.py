"""A trained model under the counterfactual protocols, next to the original test data.

Paper section 4.3: a model that relies on short-term interests loses accuracy when the
history is shuffled (Table 4); one that relies on long-term interests loses it when only the
most recent items are kept (Table 4, Figure 5a).
"""

import functools

import pandas as pd

from clsr_tf.evaluation import evaluate_scores
from clsr_tf.sequential import FileScorer
from clsr_tf.studies.protocols import shuffle_history, truncate_history


def protocol_table(model, batches, filename, num_ngs, protocols):
    """Metrics of a model on a file under each protocol.

    Args:
        model (CLSRModel): Trained Keras model.
        batches (callable): Batch reader (``CLSRSequentialModel.batches``).
        filename (str): Test file.
        num_ngs (int): Negatives per positive in the file.
        protocols (list): ``(name, k, transform)`` triples; ``k`` the kept length or None,
            ``transform`` a batch -> batch function or None (the original data).

    Returns:
        pandas.DataFrame: One row per protocol: ``protocol``, ``k`` (where some protocol
        has one) and the metrics.
    """
    scorer = FileScorer(model, batches)
    table = pd.DataFrame([
        {"protocol": name, "k": k,
         **evaluate_scores(model.hp, scorer(filename, transform), num_ngs)}
        for name, k, transform in protocols])
    if table["k"].isna().all():
        return table.drop(columns="k")
    table["k"] = table["k"].astype("Int64")
    return table


def shuffle_study(model, batches, filename, num_ngs, seed=0):
    """Original vs shuffled histories (paper Table 4).

    Args:
        model (CLSRModel): Trained Keras model.
        batches (callable): Batch reader.
        filename (str): Test file.
        num_ngs (int): Negatives per positive in the file.
        seed (int): Seed of the permutations.

    Returns:
        pandas.DataFrame: Rows ``original`` and ``shuffle``.
    """
    return protocol_table(model, batches, filename, num_ngs, [
        ("original", None, None),
        ("shuffle", None, functools.partial(shuffle_history, seed=seed))])


def truncate_study(model, batches, filename, num_ngs, ks):
    """Original vs histories truncated to their last k items, for each k (Figure 5a).

    Args:
        model (CLSRModel): Trained Keras model.
        batches (callable): Batch reader.
        filename (str): Test file.
        num_ngs (int): Negatives per positive in the file.
        ks (list): Kept lengths.

    Returns:
        pandas.DataFrame: Rows ``original`` and ``truncate`` (one per k).
    """
    return protocol_table(model, batches, filename, num_ngs, [("original", None, None)] + [
        ("truncate", k, functools.partial(truncate_history, k=k)) for k in ks])
