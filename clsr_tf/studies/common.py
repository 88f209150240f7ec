"""What every study shares: a trained model. Scoring a file through any ``forward`` output is
``clsr_tf.sequential.FileScorer``; its metrics ``evaluate_scores``; the data files
``clsr_tf.datasets.data_path``."""

from clsr_tf.datasets import data_path


def train_model(hp, loader="fast", verbose=0, output_dir=None, resume=False):
    """Train CLSR on the data set of ``hp`` (early stopping on valid GAUC).

    Args:
        hp (dict): Validated hyper-parameters.
        loader (str): ``fast`` or ``recommenders``.
        verbose (int): Keras progress output.
        output_dir (str): Checkpoints and best weights (None: in memory only).
        resume (bool): Continue from the last checkpoint in ``output_dir``.

    Returns:
        CLSRSequentialModel: The trained model (best epoch's weights).
    """
    from clsr_tf.sequential import CLSRSequentialModel

    model = CLSRSequentialModel(hp, loader=loader, verbose=verbose)
    return model.fit(data_path(hp, "train_file"), data_path(hp, "valid_file"),
                     hp["valid_num_ngs"], output_dir=output_dir, resume=resume)
