"""Recurrent layers of CLSR: the TF1-exact GRU/LSTM, their cuDNN variants and Time4LSTM."""

import tensorflow as tf

from clsr_tf.keras2 import keras
from clsr_tf.layers.time4lstm import Time4LSTMCell

KINDS = ("time4lstm", "gru", "lstm")
VARIANTS = ("tf1", "cudnn")


@keras.utils.register_keras_serializable(package="clsr_tf")
class GRUGateBias(keras.initializers.Initializer):
    """TF1 GRUCell's bias start: 1.0 for the update and reset gates, 0.0 for the candidate."""

    def __call__(self, shape, dtype=None, **kwargs):
        units = shape[-1] // 3
        row = tf.concat([tf.ones([2 * units], dtype), tf.zeros([units], dtype)], 0)
        return tf.broadcast_to(row, shape)

    def get_config(self):
        return {}


def make_rnn(kind, units, variant="tf1", return_sequences=True, return_state=False,
             name=None):
    """Build the recurrent layer that reads a history.

    ``variant='tf1'`` reproduces the original's TF1 cells exactly: a GRU with the reset
    gate applied before the recurrent matmul (Keras ``reset_after=False``), an LSTM whose
    forget gate starts at +1. ``variant='cudnn'`` uses ``reset_after=True`` (a different
    GRU that cuDNN runs); the LSTM is the same function either way. Time4LSTM has no
    cuDNN kernel.

    Args:
        kind (str): ``time4lstm``, ``gru`` or ``lstm``.
        units (int): Hidden size.
        variant (str): ``tf1`` or ``cudnn``.
        return_sequences (bool): Return every step's output.
        return_state (bool): Also return the final state(s).
        name (str): Layer name.

    Returns:
        keras.layers.Layer: A Keras recurrent layer.
    """
    if kind not in KINDS or variant not in VARIANTS:
        raise ValueError(f"unknown rnn {kind!r}/{variant!r}; kinds {KINDS}, variants {VARIANTS}")
    common = dict(return_sequences=return_sequences, return_state=return_state, name=name)
    if kind == "time4lstm":
        return keras.layers.RNN(Time4LSTMCell(units), **common)
    if kind == "gru":
        reset_after = variant == "cudnn"
        return keras.layers.GRU(units, reset_after=reset_after,
                                   recurrent_initializer="glorot_uniform",
                                   bias_initializer=GRUGateBias(), **common)
    return keras.layers.LSTM(units, unit_forget_bias=True,
                                recurrent_initializer="glorot_uniform", **common)
