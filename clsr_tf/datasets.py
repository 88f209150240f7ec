"""The prepared data set of a run's hyper-parameters: its file paths and its preparation.

Library code for the commands, the facade's users and the notebooks: ``data_path(hp, key)``
names a file of the prepared folder, ``prepare_data(hp)`` prepares it on first use.
"""

import json
import os
import time

from clsr_tf.data.writers import INFO_FILE
from clsr_tf.hparams import HParamsError, prepare_options


def data_path(hp, key):
    """Path of a file of the prepared data set.

    Args:
        hp (dict): Validated hyper-parameters (``data_dir``).
        key (str): A file key: ``train_file``, ``valid_file``, ``test_file`` (or any key
            whose value is a file name inside ``data_dir``).

    Returns:
        str: ``data_dir/<hp[key]>``.
    """
    return os.path.join(hp["data_dir"], hp[key])


def prepare_data(hp, force=False):
    """Prepare the data set into ``hp['data_dir']`` unless it is already there.

    Args:
        hp (dict): Validated hyper-parameters (``dataset``, ``raw_path``, ``data_dir``, the
            protocol and the ``prepare_<option>`` keys).
        force (bool): Prepare again even if present.

    Returns:
        dict: The data set's ``dataset_info.json``.

    Raises:
        HParamsError: An unknown ``prepare_<option>`` or a ``raw_format`` the data set does
            not read.
        FileNotFoundError, DataFormatError: A missing raw file or one with other columns, the
            message followed by what the raw files must hold and the public sources that fit.
    """
    from clsr_tf.data.registry import RAW_FORMATS, prepare_dataset

    info = os.path.join(hp["data_dir"], INFO_FILE)
    raw_format = hp["raw_format"]
    if raw_format and raw_format not in RAW_FORMATS[hp["dataset"]]:
        raise HParamsError(f"raw_format={raw_format}: the {hp['dataset']} data set reads "
                           f"{', '.join(RAW_FORMATS[hp['dataset']])}")
    if force or not os.path.exists(info):
        print(f"preparing {hp['dataset']} into {hp['data_dir']} ...", flush=True)
        start = time.time()
        try:
            prepare_dataset(hp["dataset"], hp["raw_path"] or None, hp["data_dir"],
                            max_seq_length=hp["max_seq_length"], seed=hp["seed"], force=force,
                            raw_format=raw_format,
                            valid_num_ngs=hp["valid_num_ngs"], test_num_ngs=hp["test_num_ngs"],
                            **prepare_options(hp))
        except TypeError as err:  # an unknown prepare_<option>
            raise HParamsError(f"{hp['dataset']}: {err} (set as prepare_<option>)") from err
        print(f"prepared in {time.time() - start:.1f}s", flush=True)
    with open(info) as f:
        return json.load(f)
