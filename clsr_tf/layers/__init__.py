"""Custom Keras layers of CLSR, named after the paper's parts."""

from clsr_tf.layers.adaptive_fusion import AdaptiveFusion
from clsr_tf.layers.attention_pool import AttentionPool
from clsr_tf.layers.mlp import MLP
from clsr_tf.layers.rnn import make_rnn
from clsr_tf.layers.time4lstm import Time4LSTMCell

__all__ = ["AdaptiveFusion", "AttentionPool", "MLP", "Time4LSTMCell", "make_rnn"]
