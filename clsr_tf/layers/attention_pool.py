"""AttentionPool: the attentive encoders of CLSR (paper Eqn 10-16)."""

import tensorflow as tf

from clsr_tf.keras2 import keras
from clsr_tf.layers.mlp import MLP, tnormal

# Score given to padded positions before the softmax (the original's -2^32 + 1).
MASKED_SCORE = -(2.0 ** 32) + 1


@keras.utils.register_keras_serializable(package="clsr_tf")
class AttentionPool(keras.layers.Layer):
    """Masked attention pooling of a sequence of keys by a query.

    Keys are projected to the query size by ``attention_mat`` (no bias) for scoring only;
    the pooled output is the softmax-weighted sum of the unprojected keys.

    ``attention_type='mlp'``: score_j = MLP([v_j, q, v_j - q, v_j * q]) with v_j = k_j W.
    ``attention_type='inner_product'``: score_j = <v_j, q> (paper Table 10 ablation).

    Args:
        layer_sizes (list): Hidden sizes of the scoring MLP.
        activations (list): Activations of the scoring MLP.
        enable_bn (bool): Batch norm in the scoring MLP.
        dropout (list): Dropout rates of the scoring MLP.
        attention_type (str): ``mlp`` or ``inner_product``.
        init_value (float): Std of the truncated-normal initializers.
    """

    def __init__(self, layer_sizes=(80, 40), activations=("relu", "relu"), enable_bn=True,
                 dropout=None, attention_type="mlp", init_value=0.01, **kwargs):
        super().__init__(**kwargs)
        if attention_type not in ("mlp", "inner_product"):
            raise ValueError(f"attention_type must be 'mlp' or 'inner_product', got "
                             f"{attention_type!r}")
        self.layer_sizes = list(layer_sizes)
        self.activations = list(activations)
        self.enable_bn = enable_bn
        self.dropout = list(dropout) if dropout else None
        self.attention_type = attention_type
        self.init_value = init_value
        self.mlp = None
        if attention_type == "mlp":
            self.mlp = MLP(self.layer_sizes, self.activations, enable_bn, self.dropout,
                           init_value=init_value, name="att_fcn")

    def build(self, input_shape):
        keys_shape, query_shape = input_shape[0], input_shape[1]
        query_size = int(query_shape[-1])
        self.attention_mat = self.add_weight(
            name="attention_mat", shape=(int(keys_shape[-1]), query_size),
            initializer=tnormal(self.init_value))
        if self.mlp is not None:
            with tf.name_scope(self.mlp.name):
                self.mlp.build(tf.TensorShape([None, None, 4 * query_size]))
        super().build(input_shape)

    def key_side(self, keys, query_size):
        """What the scores take from the keys alone, to compute once for many queries.

        A model whose queries change per target (CLSR's short-term query holds the target
        item) computes this once per history and passes it to ``call`` as ``key_side``.
        Builds the layer on first use (it runs outside ``__call__``).

        Args:
            keys (tf.Tensor): [B, L, Dk].
            query_size (int): Dq, the size of the queries to come.

        Returns:
            dict: ``projected`` (v = k W, [B, L, Dq]) and, for ``mlp``, ``scored`` (v's term
            of the scoring MLP's first layer, [B, L, first layer size]).
        """
        if not self.built:
            with tf.name_scope(self.name):  # the weights' names, as __call__ would build them
                self.build([keys.shape, tf.TensorShape([None, query_size])])
        projected = tf.tensordot(keys, tf.cast(self.attention_mat, keys.dtype), axes=[[2], [0]])
        side = {"projected": projected}
        if self.mlp is not None:
            w_v, _, w_d, _ = tf.split(tf.cast(self.mlp.first_dense.kernel, keys.dtype), 4, axis=0)
            side["scored"] = tf.tensordot(projected, w_v + w_d, axes=1)
        return side

    def call(self, inputs, mask=None, training=None, key_side=None):
        """Pool the keys.

        Args:
            inputs (tuple): ``(keys [B, L, Dk], query [B, Dq])``.
            mask (tf.Tensor): [B, L], nonzero on valid positions.
            training (bool): Batch-norm mode of the scoring MLP.
            key_side (dict): ``key_side(keys)``, row for row; None: computed here.

        Returns:
            tuple: ``(pooled [B, Dk], weights [B, L])``.
        """
        keys, query = inputs
        side = key_side or self.key_side(keys, query.shape[-1])
        if self.mlp is not None:
            first = self._first_layer(side["projected"], side["scored"], query)
            scores = tf.squeeze(self.mlp.tail(first, training=training), -1)
        else:
            scores = tf.reduce_sum(side["projected"] * query[:, None, :], -1)
        scores = tf.cast(scores, tf.float32)  # masking and softmax in float32 (mixed precision)
        if mask is not None:
            scores = tf.where(tf.cast(mask, tf.bool), scores,
                              tf.fill(tf.shape(scores), MASKED_SCORE))
        weights = tf.nn.softmax(scores)
        pooled = tf.reduce_sum(keys * tf.cast(weights, keys.dtype)[:, :, None], 1)
        return pooled, weights

    def _first_layer(self, projected, scored, query):
        """The scoring MLP's first layer on [v, q, v - q, v * q], without building it.

        With W = [W_v; W_q; W_d; W_p]: v (W_v + W_d) + q (W_q - W_d) + (v * q) W_p + b,
        the same value as the concatenation's matmul at a quarter of its per-position
        input width, and without the [B, L, 4 Dq] tensor; ``scored`` is the first term.
        """
        dense = self.mlp.first_dense
        _, w_q, w_d, w_p = tf.split(dense.kernel, 4, axis=0)
        per_query = tf.matmul(query, w_q - w_d) + dense.bias
        return (scored + tf.tensordot(projected * query[:, None, :], w_p, axes=1)
                + per_query[:, None, :])

    def get_config(self):
        config = super().get_config()
        config.update(layer_sizes=self.layer_sizes, activations=self.activations,
                      enable_bn=self.enable_bn, dropout=self.dropout,
                      attention_type=self.attention_type, init_value=self.init_value)
        return config
