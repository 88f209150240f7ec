"""Fusion weight analysis: alpha and accuracy per behaviour type of the positives (Table 3).

The type of each line comes from the data file's ``.meta.tsv`` sidecar (one row per line,
describing the group's positive, so a filter keeps whole candidate groups): MovieLens
``behavior`` like / rate, Taobao ``behavior`` buy / pv, synthetic ``source`` long / short.
"""

import pandas as pd

from clsr_tf.data.writers import META_SUFFIX
from clsr_tf.evaluation import evaluate_scores

ALL = "all"


def read_meta(filename):
    """The meta sidecar of a data file.

    Args:
        filename (str): A data file written by ``clsr_tf.data.registry.prepare_dataset``.

    Returns:
        pandas.DataFrame: One row per line of the file.
    """
    path = filename + META_SUFFIX
    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no meta sidecar (prepare the data set with "
                                "clsr_tf.data.registry.prepare_dataset)") from None


def default_column(meta):
    """The sidecar column that tells behaviour types apart.

    Args:
        meta (pandas.DataFrame): A meta sidecar.

    Returns:
        str: ``source`` where present (synthetic data), else ``behavior``.
    """
    return "source" if "source" in meta else "behavior"


def fusion_weight_study(hp, scores, meta, column, num_ngs):
    """Mean alpha of the positives and the metrics of each type of line.

    Args:
        hp (dict): Hyper-parameters (metric names).
        scores (dict): ``FileScorer`` output for the file (``users``, ``labels``, ``pred``,
            ``alpha``), in file order.
        meta (pandas.DataFrame): The file's sidecar.
        column (str): Sidecar column holding the type.
        num_ngs (int): Negatives per positive.

    Returns:
        pandas.DataFrame: One row per type and one for all lines: the type (named
        ``column``), ``positives`` and the metrics (``mean_alpha`` among them).
    """
    if column not in meta:
        raise ValueError(f"the meta sidecar has no column {column!r}; it has "
                         f"{list(meta.columns)}")
    if len(meta) != len(scores["labels"]):
        raise ValueError(f"{len(scores['labels'])} scored lines but {len(meta)} meta rows")
    types = meta[column].to_numpy()
    rows = []
    for value in list(pd.unique(types)) + [ALL]:
        keep = (types == value) if value != ALL else slice(None)
        part = {key: array[keep] for key, array in scores.items()}
        rows.append({column: value, "positives": int(part["labels"].sum()),
                     **evaluate_scores(hp, part, num_ngs)})
    return pd.DataFrame(rows)
