"""MLP of the original code: matmul -> batch norm -> activation per hidden layer, linear output."""

import tensorflow as tf

from clsr_tf.keras2 import keras


def tnormal(stddev):
    """Truncated-normal initializer of the original release (``init_method: tnormal``).

    Call once per weight: Keras gives an unseeded initializer instance the same values on
    every call.

    Args:
        stddev (float): Standard deviation (``init_value``).

    Returns:
        keras.initializers.Initializer: The initializer.
    """
    return keras.initializers.TruncatedNormal(stddev=stddev)


@keras.utils.register_keras_serializable(package="clsr_tf")
class MLP(keras.layers.Layer):
    """Fully connected tower with batch normalisation, as the original ``_fcn_net``.

    Each hidden layer is ``activation(BN(x W + b))`` (dropout before the activation when
    rates are given); the output layer is linear. On a 3-D input the batch statistics are
    taken over every leading position, as in the original (computed by the fused batch-norm
    kernel, about 3x faster on CPU than Keras' n-D path).

    Args:
        layer_sizes (list): Hidden layer sizes.
        activations (list): Activation name per hidden layer.
        enable_bn (bool): Batch norm after each hidden matmul.
        dropout (list): Dropout rate per hidden layer (0 disables).
        output_size (int): Width of the linear output (1 for a logit).
        init_value (float): Std of the truncated-normal kernel initializer.
    """

    def __init__(self, layer_sizes, activations, enable_bn=True, dropout=None, output_size=1,
                 init_value=0.01, **kwargs):
        super().__init__(**kwargs)
        self.layer_sizes = list(layer_sizes)
        self.activations = list(activations)[: len(self.layer_sizes)]
        self.enable_bn = enable_bn
        self.dropout = list(dropout or [0.0] * len(self.layer_sizes))[: len(self.layer_sizes)]
        self.output_size = output_size
        self.init_value = init_value
        self.hidden = [keras.layers.Dense(n, name=f"hidden_{i}",
                                             kernel_initializer=tnormal(init_value))
                       for i, n in enumerate(self.layer_sizes)]
        self.norms = [keras.layers.BatchNormalization(momentum=0.95, epsilon=1e-4,
                                                         fused=True, name=f"bn_{i}")
                      for i in range(len(self.layer_sizes))] if enable_bn else []
        self.drops = [keras.layers.Dropout(r) for r in self.dropout]
        self.acts = [keras.layers.Activation(a) for a in self.activations]
        self.out = keras.layers.Dense(output_size, name="output",
                                         kernel_initializer=tnormal(init_value))

    @property
    def first_dense(self):
        """The first dense layer (the output layer when there are no hidden layers)."""
        return (self.hidden or [self.out])[0]

    def build(self, input_shape):
        shape = tf.TensorShape(input_shape)
        for i, dense in enumerate(self.hidden + [self.out]):
            with tf.name_scope(dense.name):
                dense.build(shape)
            shape = shape[:-1].concatenate([dense.units])
            if self.enable_bn and i < len(self.hidden):
                with tf.name_scope(self.norms[i].name):
                    self.norms[i].build(tf.TensorShape([None, 1, 1, dense.units]))
        super().build(input_shape)

    def call(self, inputs, training=None):
        return self.tail(self.first_dense(inputs), training=training)

    def tail(self, first, training=None):
        """Run the tower on from the first dense layer's output.

        Lets a caller compute ``x W_0 + b_0`` its own (cheaper) way, as ``AttentionPool``
        does; ``call(x)`` is ``tail(first_dense(x))``.

        Args:
            first (tf.Tensor): ``x W_0 + b_0`` [..., first layer size].
            training (bool): Batch-norm and dropout mode.

        Returns:
            tf.Tensor: [..., output_size].
        """
        if not self.hidden:
            return first
        x = first
        for i in range(len(self.hidden)):
            if i:
                x = self.hidden[i](x)
            if self.enable_bn:
                x = self._normalize(self.norms[i], x, training)
            if self.dropout[i]:
                x = self.drops[i](x, training=training)
            x = self.acts[i](x)
        return self.out(x)

    @staticmethod
    def _normalize(norm, x, training):
        """Batch norm over every leading position, on TF's fused kernel (4-D input only)."""
        y = norm(tf.reshape(x, [-1, 1, 1, x.shape[-1]]), training=training)
        return tf.reshape(y, tf.shape(x))

    def get_config(self):
        config = super().get_config()
        config.update(layer_sizes=self.layer_sizes, activations=self.activations,
                      enable_bn=self.enable_bn, dropout=self.dropout,
                      output_size=self.output_size, init_value=self.init_value)
        return config
