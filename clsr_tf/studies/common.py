"""What every study shares: the data files and a trained model. Scoring a file through any
``forward`` output is ``clsr_tf.sequential.Scorer``; its metrics ``evaluate_scores``."""

import os


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
