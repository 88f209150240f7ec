"""The Keras 2 API that every clsr_tf module takes Keras from: ``from clsr_tf.keras2 import keras``.

TensorFlow 2.15 ships Keras 2 as ``tf.keras``. From TensorFlow 2.16 on, ``tf.keras`` is Keras 3
unless ``TF_USE_LEGACY_KERAS=1`` was set before TensorFlow was first imported, which a library
cannot rely on; Keras 2 then lives in the ``tf-keras`` package (``import tf_keras``). This module
picks the right one once, whatever the import order and whether or not the process already
imported Keras 3, so clsr_tf never mixes Keras 3 objects with Keras 2 ones.
"""

import tensorflow as tf

#: (major, minor) of the installed TensorFlow.
TF_VERSION = tuple(int(part) for part in tf.__version__.split(".")[:2])


def _keras2():
    """The Keras 2 module for the installed TensorFlow.

    Returns:
        module: ``tf.keras`` on TensorFlow 2.15, ``tf_keras`` on 2.16 and later.

    Raises:
        ImportError: On TensorFlow 2.16+ without the ``tf-keras`` package.
    """
    if TF_VERSION < (2, 16):
        return tf.keras
    try:
        import tf_keras
    except ImportError as err:
        major, minor = TF_VERSION
        raise ImportError(
            f"TensorFlow {tf.__version__} makes tf.keras Keras 3; clsr_tf uses the Keras 2 API "
            f"of the tf-keras package: pip install 'tf-keras=={major}.{minor}.*'") from err
    return tf_keras


keras = _keras2()
