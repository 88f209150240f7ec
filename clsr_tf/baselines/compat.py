"""Compatibility shim for Recommenders 1.2.1's GRU and SUM models under Keras 2.15.

``recommenders.models.deeprec.models.sequential.gru`` imports ``GRUCell``/``LSTMCell`` and
``sum_cells`` imports ``LayerRNNCell`` from ``keras.layers.legacy_rnn.rnn_cell_impl``, a
module Keras 2.15 no longer has. The same TF1 cells still ship with Keras: they are what
``tf.compat.v1.nn.rnn_cell`` exports. ``install_legacy_rnn_shim`` registers that module
under the old name in ``sys.modules`` so the two imports resolve; nothing else changes.

Install it only in a baseline subprocess: the models it unlocks import Recommenders'
``base_model``, which turns eager execution off for the whole process.
"""

import importlib
import sys
import types

LEGACY_PACKAGE = "keras.layers.legacy_rnn"
LEGACY_MODULE = LEGACY_PACKAGE + ".rnn_cell_impl"
# Names the two Recommenders modules import from LEGACY_MODULE.
NEEDED = ("GRUCell", "LSTMCell", "LayerRNNCell")


def install_legacy_rnn_shim():
    """Make ``keras.layers.legacy_rnn.rnn_cell_impl`` importable (idempotent).

    Returns:
        module: The module now registered under that name.

    Raises:
        ImportError: If the legacy cells lack one of the names the models import.
    """
    try:
        return importlib.import_module(LEGACY_MODULE)
    except ImportError:
        pass
    import tensorflow as tf

    cells = importlib.import_module(tf.compat.v1.nn.rnn_cell.GRUCell.__module__)
    missing = [name for name in NEEDED if not hasattr(cells, name)]
    if missing:
        raise ImportError(f"{cells.__name__} lacks {missing}; cannot stand in for "
                          f"{LEGACY_MODULE}")
    package = types.ModuleType(LEGACY_PACKAGE)
    package.__path__ = []
    package.rnn_cell_impl = cells
    sys.modules[LEGACY_PACKAGE] = package
    sys.modules[LEGACY_MODULE] = cells
    return cells
