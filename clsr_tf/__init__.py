"""clsr_tf: CLSR (Zheng et al., WWW 2022) in TensorFlow 2 / Keras, Recommenders style."""

__version__ = "0.1.0"
__all__ = ["CLSRModel", "CLSRSequentialModel", "load_hparams"]


def __getattr__(name):
    # Lazy so that light commands (``--help``, hparams checks) do not import TensorFlow.
    if name == "CLSRModel":
        from clsr_tf.models import CLSRModel

        return CLSRModel
    if name == "CLSRSequentialModel":
        from clsr_tf.sequential import CLSRSequentialModel

        return CLSRSequentialModel
    if name == "load_hparams":
        from clsr_tf.hparams import load_hparams

        return load_hparams
    raise AttributeError(f"module 'clsr_tf' has no attribute {name!r}")
