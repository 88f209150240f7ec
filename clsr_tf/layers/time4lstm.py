"""Time4LSTMCell: SLi-Rec's time-aware LSTM cell (Yu et al., IJCAI 2019) as a Keras RNN cell."""

import tensorflow as tf

from clsr_tf.keras2 import keras

# Names of the time-gate variables, as in the original cell.
TIME_VECTORS = ("_time_input_w1", "_time_input_bias1", "_time_input_w2", "_time_input_bias2",
                "_time_bias1", "_time_bias2")
TIME_MATRICES = ("_time_kernel_t1", "_time_kernel_t2", "_o_kernel_t1", "_o_kernel_t2")


@keras.utils.register_keras_serializable(package="clsr_tf")
class Time4LSTMCell(keras.layers.Layer):
    """LSTM cell with two time gates, driven by the last two input columns.

    Each step's input is ``[x (D), time_from_first_action, time_to_now]``. With
    ``t_now = tanh(time_to_now * w1 + b1)`` and ``t_last = tanh(time_from_first_action * w2
    + b2)`` (elementwise), the time gates are ``T1 = sigmoid(x Wx1 + t_now Wt1 + bt1)`` and
    ``T2 = sigmoid(x Wx2 + t_last Wt2 + bt2)``; with LSTM pre-activations
    ``[i, j, f, o] = [x, m] K + b`` and ``o += t_now Wo1 + t_last Wo2``:
    ``c = sigmoid(f + forget_bias) * T2 * c_prev + sigmoid(i) * T1 * tanh(j)``,
    ``m = sigmoid(o) * tanh(c)``. The state is ``[c, m]``; the output is ``m``.

    Args:
        units (int): Hidden size.
        forget_bias (float): Constant added to the forget gate (1.0 in the original).
    """

    def __init__(self, units, forget_bias=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.forget_bias = forget_bias
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape):
        depth = int(input_shape[-1]) - 2
        u = self.units
        glorot = "glorot_uniform"  # a fresh initializer per weight
        for name in TIME_VECTORS:
            setattr(self, name, self.add_weight(name=name, shape=(u,), initializer=glorot))
        self._time_kernel_w1 = self.add_weight(name="_time_kernel_w1", shape=(depth, u),
                                               initializer=glorot)
        self._time_kernel_w2 = self.add_weight(name="_time_kernel_w2", shape=(depth, u),
                                               initializer=glorot)
        for name in TIME_MATRICES:
            setattr(self, name, self.add_weight(name=name, shape=(u, u), initializer=glorot))
        self.kernel = self.add_weight(name="kernel", shape=(depth + u, 4 * u),
                                      initializer=glorot)
        self.bias = self.add_weight(name="bias", shape=(4 * u,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs, states):
        c_prev, m_prev = states
        time_to_now = inputs[:, -1:]
        time_from_first = inputs[:, -2:-1]
        x = inputs[:, :-2]
        t_now = tf.tanh(time_to_now * self._time_input_w1 + self._time_input_bias1)
        t_last = tf.tanh(time_from_first * self._time_input_w2 + self._time_input_bias2)
        gate_now = tf.sigmoid(tf.matmul(x, self._time_kernel_w1)
                              + tf.matmul(t_now, self._time_kernel_t1) + self._time_bias1)
        gate_last = tf.sigmoid(tf.matmul(x, self._time_kernel_w2)
                               + tf.matmul(t_last, self._time_kernel_t2) + self._time_bias2)
        z = tf.matmul(tf.concat([x, m_prev], 1), self.kernel) + self.bias
        i, j, f, o = tf.split(z, 4, axis=1)
        o = o + tf.matmul(t_now, self._o_kernel_t1) + tf.matmul(t_last, self._o_kernel_t2)
        c = (tf.sigmoid(f + self.forget_bias) * gate_last * c_prev
             + tf.sigmoid(i) * gate_now * tf.tanh(j))
        m = tf.sigmoid(o) * tf.tanh(c)
        return m, [c, m]

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, forget_bias=self.forget_bias)
        return config
