"""The Keras sequential models: a shared base (training, L2, clipping) and CLSR, SURGE on it."""

from clsr_tf.models.base import SequentialModel
from clsr_tf.models.clsr import CLSRModel
from clsr_tf.models.surge import SURGEModel

__all__ = ["CLSRModel", "SURGEModel", "SequentialModel"]
