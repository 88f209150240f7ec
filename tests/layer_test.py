"""The checks every custom layer gets (after keras-rs' and DeepCTR's layer-test helpers).

``layer_test(make, inputs, tmp_path, **call_kwargs)``:
1. config round trip: ``from_config(get_config())`` gives the same config and, with the same
   weights, the same outputs;
2. SavedModel round trip: the layer traced in a ``tf.function``, saved with
   ``tf.saved_model.save`` and loaded back, gives the same outputs;
3. the outputs are finite.
"""

import numpy as np
import tensorflow as tf


def _assert_same(got, want, what):
    for g, w in zip(tf.nest.flatten(got), tf.nest.flatten(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6,
                                   err_msg=what)


def layer_test(make, inputs, tmp_path, **call_kwargs):
    """Run the shared layer checks.

    Args:
        make (callable): Returns a fresh layer.
        inputs (np.ndarray or tuple): What the layer is called on.
        tmp_path (pathlib.Path): Folder for the SavedModel.
        **call_kwargs: Further call arguments (``mask=...``, ``training=False``).

    Returns:
        keras.layers.Layer: The built layer.
    """
    layer = make()
    want = layer(inputs, **call_kwargs)
    for value in tf.nest.flatten(want):
        assert np.isfinite(np.asarray(value)).all(), f"{layer.name}: non-finite output"

    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(inputs, **call_kwargs)
    clone.set_weights(layer.get_weights())
    _assert_same(clone(inputs, **call_kwargs), want, "config round trip")

    module = tf.Module()
    module.layer = layer
    module.call = tf.function(lambda x: layer(x, **call_kwargs))
    module.call(inputs)  # traced on these inputs (None entries are unused inputs)
    path = str(tmp_path / f"saved_{layer.name}")
    tf.saved_model.save(module, path)
    loaded = tf.saved_model.load(path)  # held: the function reads its variables
    _assert_same(loaded.call(inputs), want, "SavedModel round trip")
    return layer
