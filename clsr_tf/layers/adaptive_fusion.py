"""AdaptiveFusion: the attention-based fusion of long- and short-term interests (Eqn 26-28)."""

import tensorflow as tf

from clsr_tf.keras2 import keras
from clsr_tf.layers.mlp import MLP
from clsr_tf.layers.rnn import make_rnn


@keras.utils.register_keras_serializable(package="clsr_tf")
class AdaptiveFusion(keras.layers.Layer):
    """alpha = sigmoid(MLP([h_t, E(v), u_l, u_s, time_to_now])); u = alpha u_l + (1-alpha) u_s.

    ``h_t`` is the final state of a separate GRU over the history (the original's
    ``causal2``, on when ``predict_long_short``), computed by ``history_state`` so that
    rows sharing a history can share it. With ``manual_alpha`` the weight is the
    constant ``manual_alpha_value`` and no weights are created.

    Args:
        hidden_size (int): Size of the fusion GRU.
        layer_sizes (list): Hidden sizes of the fusion MLP.
        activations (list): Activations of the fusion MLP.
        enable_bn (bool): Batch norm in the fusion MLP.
        dropout (list): Dropout rates of the fusion MLP.
        predict_long_short (bool): Feed the fusion GRU's final state to the MLP.
        manual_alpha (bool): Use a fixed alpha.
        manual_alpha_value (float): The fixed alpha.
        rnn_variant (str): ``tf1`` or ``cudnn`` GRU (see ``make_rnn``).
        init_value (float): Std of the truncated-normal initializers.
    """

    def __init__(self, hidden_size=40, layer_sizes=(80, 40), activations=("relu", "relu"),
                 enable_bn=True, dropout=None, predict_long_short=True, manual_alpha=False,
                 manual_alpha_value=0.5, rnn_variant="tf1", init_value=0.01, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.layer_sizes = list(layer_sizes)
        self.activations = list(activations)
        self.enable_bn = enable_bn
        self.dropout = list(dropout) if dropout else None
        self.predict_long_short = predict_long_short
        self.manual_alpha = manual_alpha
        self.manual_alpha_value = manual_alpha_value
        self.rnn_variant = rnn_variant
        self.init_value = init_value
        self.gru = None
        self.mlp = None
        if not manual_alpha:
            if predict_long_short:
                self.gru = make_rnn("gru", hidden_size, rnn_variant, return_sequences=False,
                                    name="causal2")
            self.mlp = MLP(self.layer_sizes, self.activations, enable_bn, self.dropout,
                           init_value=init_value, name="fcn_alpha")

    def history_state(self, history, mask, training=None):
        """The fusion GRU's final state over the history (None without the GRU).

        Args:
            history (tf.Tensor): [B, L, D] history embeddings.
            mask (tf.Tensor): [B, L] history mask.
            training (bool): Training mode.

        Returns:
            tf.Tensor: [B, hidden_size] or None.
        """
        if self.gru is None:
            return None
        return self.gru(history, mask=tf.cast(mask, tf.bool), training=training)

    def call(self, inputs, training=None):
        """Fuse the two interests.

        Args:
            inputs (tuple): ``(state [B, S] or None (from ``history_state``), target [B, D],
                u_long [B, H], u_short [B, H], time_to_now [B])``.
            training (bool): Batch-norm mode.

        Returns:
            dict: ``alpha`` [B, 1], ``user`` [B, H]; without manual alpha also
            ``fusion_input`` and ``alpha_logit`` (the MLP's input and output).
        """
        state, target, u_long, u_short, time_to_now = inputs
        out = {}
        if self.manual_alpha:
            alpha = tf.fill([tf.shape(u_long)[0], 1],
                            tf.constant(self.manual_alpha_value, u_long.dtype))
        else:
            parts = [target, u_long, u_short, time_to_now[:, None]]
            if state is not None:
                parts.insert(0, state)
            out["fusion_input"] = tf.concat(parts, 1)
            out["alpha_logit"] = self.mlp(out["fusion_input"], training=training)
            alpha = tf.sigmoid(out["alpha_logit"])
        out["alpha"] = alpha
        out["user"] = alpha * u_long + (1.0 - alpha) * u_short
        return out

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, layer_sizes=self.layer_sizes,
                      activations=self.activations, enable_bn=self.enable_bn,
                      dropout=self.dropout, predict_long_short=self.predict_long_short,
                      manual_alpha=self.manual_alpha,
                      manual_alpha_value=self.manual_alpha_value,
                      rnn_variant=self.rnn_variant, init_value=self.init_value)
        return config
