"""SURGE (Chang et al., SIGIR 2021) in Keras on clsr_tf's batch contract (see ``model``)."""

from clsr_tf.models.surge.hparams import SURGE_SCHEMA, surge_hparams
from clsr_tf.models.surge.model import SURGEModel

__all__ = ["SURGEModel", "SURGE_SCHEMA", "surge_hparams"]
