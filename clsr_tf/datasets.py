"""The prepared data set of a run's hyper-parameters: its file paths, its preparation and
its validation.

Library code for the commands, the facade's users and the notebooks: ``data_path(hp, key)``
names a file of the prepared folder, ``prepare_data(hp)`` prepares it on first use and checks
it against the hyper-parameters before anything trains (``check_data``).
"""

import json
import os
import time

from clsr_tf.data.errors import DataFormatError
from clsr_tf.data.protocol import NOT_A_DATA_SET
from clsr_tf.data.writers import INFO_FILE
from clsr_tf.hparams import HParamsError, prepare_options

# The files of a data set: name -> (hyper-parameter of the file, role, of its negatives).
SPLITS = {"train": ("train_file", "train", None), "valid": ("valid_file", "eval", "valid_num_ngs"),
          "test": ("test_file", "eval", "test_num_ngs")}


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


def check_data(hp, checker=None):
    """The validation pass over the train, valid and test files (``clsr_tf.data.validation``).

    Args:
        hp (dict): Validated hyper-parameters.
        checker (DataChecker): The checker to use (default: one of ``hp``).

    Returns:
        dict: ``train``/``valid``/``test`` -> counts (lines, unknown ids, long histories).

    Raises:
        FileNotFoundError: A file is missing.
        DataFormatError: The first problem, naming file, line and field.
    """
    from clsr_tf.data.validation import DataChecker, check_info

    check_info(hp)
    checker = checker or DataChecker(hp)
    return checker.check_files({
        name: (data_path(hp, key), role) + ((hp[ngs], ngs) if ngs else ())
        for name, (key, role, ngs) in SPLITS.items()})


def prepare_data(hp, force=False, check=True):
    """Prepare the data set into ``hp['data_dir']`` unless it is already there, and check it.

    Args:
        hp (dict): Validated hyper-parameters (``dataset``, ``raw_path``, ``data_dir``, the
            protocol and the ``prepare_<option>`` keys).
        force (bool): Prepare again even if present.
        check (bool): Run ``check_data`` on the prepared files (off: only the preparation,
            as ``benchmarks/prepare_scale.py`` times it).

    Returns:
        dict: The data set's ``dataset_info.json``, with the counts of ``check_data`` under
        ``checked``.

    Raises:
        HParamsError: An unknown ``prepare_<option>`` or a ``raw_format`` the data set does
            not read.
        FileNotFoundError, DataFormatError: A missing raw file or one with other columns, the
            message followed by what the raw files must hold and the public sources that fit.
        DataFormatError: The folder holds other files but no data set (not replaced unless
            ``force``), or a file does not pass ``check_data``.
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
        except FileExistsError:  # a folder of other files: not replaced unasked
            raise DataFormatError(hp["data_dir"], None, None, NOT_A_DATA_SET) from None
        print(f"prepared in {time.time() - start:.1f}s", flush=True)
    with open(info, encoding="utf-8") as f:
        prepared = json.load(f)
    return dict(prepared, checked=check_data(hp)) if check else prepared
