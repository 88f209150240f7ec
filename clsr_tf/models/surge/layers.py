"""SURGE's layers: interest graph, graph attentive fusion, graph pooling, AUGRU (paper 3.2-3.4)."""

import numpy as np
import tensorflow as tf

from clsr_tf.keras2 import keras
from clsr_tf.layers.attention_pool import MASKED_SCORE
from clsr_tf.layers.mlp import MLP, tnormal


def masked_softmax(logits, mask, axis=-1):
    """Softmax over the positions where ``mask`` is nonzero (0 elsewhere and on empty rows).

    Args:
        logits (tf.Tensor): Scores.
        mask (tf.Tensor): Same shape (or broadcastable), nonzero where valid.
        axis (int): Softmax axis.

    Returns:
        tf.Tensor: Weights.
    """
    valid = tf.broadcast_to(tf.cast(mask, tf.bool), tf.shape(logits))
    weights = tf.nn.softmax(tf.where(valid, logits, MASKED_SCORE), axis=axis)
    return weights * tf.cast(valid, logits.dtype)


def relative_rank_edges(scores, pairs, fraction):
    """Keep the top ``fraction`` of the candidate pairs of each graph (relative ranking).

    Each graph keeps its ceil(fraction * candidates) highest-scoring candidate pairs; ties at
    the threshold are all kept.

    Args:
        scores (tf.Tensor): [B, L, L] pair scores.
        pairs (tf.Tensor): [B, L, L], 1 on the candidate pairs.
        fraction (float): epsilon in (0, 1].

    Returns:
        tf.Tensor: [B, L, L] float, 1 on the kept pairs.
    """
    candidates = pairs > 0
    flat = tf.reshape(tf.where(candidates, scores, -np.inf), [tf.shape(scores)[0], -1])
    ranked = tf.sort(tf.stop_gradient(flat), direction="DESCENDING")
    count = tf.reduce_sum(tf.cast(pairs, tf.float64), [1, 2])
    # Rounded first so that e.g. 0.3 * 90 keeps 27 pairs, not 28.
    keep = tf.cast(tf.math.ceil(tf.round(fraction * count * 1e6) / 1e6), tf.int32)
    threshold = tf.gather(ranked, tf.maximum(keep - 1, 0), batch_dims=1)
    threshold = tf.where(keep > 0, threshold, np.inf)
    return tf.cast((scores >= threshold[:, None, None]) & candidates, scores.dtype)


def normalized_adjacency(adjacency):
    """D^-1/2 (A + I) D^-1/2, the symmetric propagation matrix of a GCN.

    Args:
        adjacency (tf.Tensor): [B, L, L] nonnegative edge weights.

    Returns:
        tf.Tensor: [B, L, L].
    """
    length = tf.shape(adjacency)[-1]
    with_loops = adjacency + tf.eye(length, dtype=adjacency.dtype)
    scale = tf.math.rsqrt(tf.reduce_sum(with_loops, -1))
    return with_loops * scale[:, :, None] * scale[:, None, :]


@keras.utils.register_keras_serializable(package="clsr_tf")
class InterestGraph(keras.layers.Layer):
    """Interest graph of a history by metric learning (paper 3.2).

    M_ij = mean_h cos(w_h * x_i, w_h * x_j); the top ``relative_threshold`` fraction of the
    node pairs {i, j} (i != j, both valid) become undirected edges weighted (M_ij + 1) / 2.

    Args:
        heads (int): Number of metric heads (weight vectors w_h).
        relative_threshold (float): epsilon, the fraction of pairs kept.
    """

    def __init__(self, heads=2, relative_threshold=0.5, **kwargs):
        super().__init__(**kwargs)
        self.heads = heads
        self.relative_threshold = relative_threshold

    def build(self, input_shape):
        self.metric_weights = self.add_weight(
            name="metric_weights", shape=(self.heads, int(input_shape[-1])),
            initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.1))
        super().build(input_shape)

    def call(self, nodes, mask=None):
        """Build the graph.

        Args:
            nodes (tf.Tensor): [B, L, D] history embeddings.
            mask (tf.Tensor): [B, L], nonzero on valid positions.

        Returns:
            tuple: ``(similarity [B, L, L], adjacency [B, L, L])``.
        """
        mask = tf.cast(mask, nodes.dtype)
        weighted = tf.math.l2_normalize(nodes[:, None] * self.metric_weights[None, :, None], -1)
        similarity = tf.reduce_mean(tf.matmul(weighted, weighted, transpose_b=True), 1)
        similarity = (similarity + tf.transpose(similarity, [0, 2, 1])) / 2  # exact symmetry
        length = tf.shape(nodes)[1]
        upper = tf.linalg.band_part(tf.ones([length, length], nodes.dtype), 0, -1)
        pairs = mask[:, :, None] * mask[:, None, :] * (upper - tf.eye(length, dtype=nodes.dtype))
        edges = relative_rank_edges(similarity, pairs, self.relative_threshold)
        edges += tf.transpose(edges, [0, 2, 1])
        return similarity, edges * (similarity + 1) / 2

    def get_config(self):
        config = super().get_config()
        config.update(heads=self.heads, relative_threshold=self.relative_threshold)
        return config


@keras.utils.register_keras_serializable(package="clsr_tf")
class NodeAttention(keras.layers.Layer):
    """Attention logits of keys against a query shared by the row or given per key.

    logit_j = MLP([k_j W, q_j, k_j W - q_j, k_j W * q_j]), the scoring of the original
    code's attention MLP; unlike ``clsr_tf.layers.AttentionPool`` the query may differ per
    position (a node's cluster centre) and the raw logits are returned.

    Args:
        layer_sizes (list): Hidden sizes of the scoring MLP.
        activations (list): Activations of the scoring MLP.
        enable_bn (bool): Batch norm in the scoring MLP.
        dropout (list): Dropout rates of the scoring MLP.
        init_value (float): Std of the truncated-normal initializers.
    """

    def __init__(self, layer_sizes=(80, 40), activations=("relu", "relu"), enable_bn=True,
                 dropout=None, init_value=0.01, **kwargs):
        super().__init__(**kwargs)
        self.layer_sizes = list(layer_sizes)
        self.activations = list(activations)
        self.enable_bn = enable_bn
        self.dropout = list(dropout) if dropout else None
        self.init_value = init_value
        self.mlp = MLP(self.layer_sizes, self.activations, enable_bn, self.dropout,
                       init_value=init_value, name="att_fcn")

    def build(self, input_shape):
        keys_shape, query_shape = input_shape
        self.attention_mat = self.add_weight(
            name="attention_mat", shape=(int(keys_shape[-1]), int(query_shape[-1])),
            initializer=tnormal(self.init_value))
        super().build(input_shape)

    def call(self, inputs, training=None):
        """Score the keys.

        Args:
            inputs (tuple): ``(keys [B, L, Dk], query [B, Dq] or [B, L, Dq])``.
            training (bool): Batch-norm mode.

        Returns:
            tf.Tensor: [B, L] logits.
        """
        keys, query = inputs
        projected = tf.tensordot(keys, self.attention_mat, axes=[[2], [0]])
        if query.shape.rank == 2:
            query = query[:, None, :]
        query = tf.broadcast_to(query, tf.shape(projected))
        features = tf.concat([projected, query, projected - query, projected * query], -1)
        return tf.squeeze(self.mlp(features, training=training), -1)

    def get_config(self):
        config = super().get_config()
        config.update(layer_sizes=self.layer_sizes, activations=self.activations,
                      enable_bn=self.enable_bn, dropout=self.dropout, init_value=self.init_value)
        return config


@keras.utils.register_keras_serializable(package="clsr_tf")
class InterestFusion(keras.layers.Layer):
    """Interest fusion by graph attentive convolution (paper 3.3.1).

    alpha_j: cluster-aware logit of node j against its 2-hop centre (A_hat^2 X)_j;
    beta_j: query-aware logit of node j against the target item;
    E_ij = softmax over j in N(i) + {i} of LeakyReLU(alpha_j + beta_j);
    h'_i = LeakyReLU(W (E X)_i + x_i). The cluster fitness score, softmax over the valid
    nodes of alpha'_i + beta'_i recomputed on h', weights the graph readout.
    ``history_side`` is the part that does not read the target (the propagation matrix and
    alpha), ``target_side`` the rest; ``call`` runs both.

    Args:
        layer_sizes, activations, enable_bn, dropout, init_value: Of both scoring MLPs
            (see ``NodeAttention``).
        units (int): Node size D (None: from the input when the layer is built; give it to
            call ``history_side``/``target_side`` on an unbuilt layer).
    """

    def __init__(self, layer_sizes=(80, 40), activations=("relu", "relu"), enable_bn=True,
                 dropout=None, init_value=0.01, units=None, **kwargs):
        super().__init__(**kwargs)
        self.layer_sizes = list(layer_sizes)
        self.activations = list(activations)
        self.enable_bn = enable_bn
        self.dropout = list(dropout) if dropout else None
        self.init_value = init_value
        self.units = units
        att = dict(layer_sizes=self.layer_sizes, activations=self.activations,
                   enable_bn=enable_bn, dropout=self.dropout, init_value=init_value)
        self.cluster_attention = NodeAttention(name="cluster_attention", **att)
        self.query_attention = NodeAttention(name="query_attention", **att)
        self.aggregate = None if units is None else self._aggregate(units)

    def _aggregate(self, units):
        return keras.layers.Dense(units, use_bias=False,
                                  kernel_initializer=tnormal(self.init_value), name="aggregate")

    def build(self, input_shape):
        if self.aggregate is None:
            self.aggregate = self._aggregate(int(input_shape[0][-1]))
        super().build(input_shape)

    def _cluster_logit(self, nodes, propagation, training):
        centres = tf.matmul(propagation, tf.matmul(propagation, nodes))
        return self.cluster_attention((nodes, centres), training=training)

    def history_side(self, nodes, adjacency, training=None):
        """What does not read the target item.

        Args:
            nodes (tf.Tensor): [B, L, D] history embeddings.
            adjacency (tf.Tensor): [B, L, L] edge weights.
            training (bool): Batch-norm mode.

        Returns:
            dict: ``propagation`` [B, L, L] (the normalised adjacency) and
            ``cluster_logit`` [B, L] (alpha of the nodes).
        """
        propagation = normalized_adjacency(adjacency)
        return {"propagation": propagation,
                "cluster_logit": self._cluster_logit(nodes, propagation, training)}

    def target_side(self, nodes, adjacency, shared, target, mask=None, training=None):
        """Fuse the nodes' interests for a target item.

        Args:
            nodes (tf.Tensor): [B, L, D] history embeddings.
            adjacency (tf.Tensor): [B, L, L] edge weights.
            shared (dict): ``history_side`` outputs of the rows.
            target (tf.Tensor): [B, D] target item embeddings.
            mask (tf.Tensor): [B, L], nonzero on valid positions.
            training (bool): Batch-norm mode.

        Returns:
            dict: ``fused`` [B, L, D], ``cluster_score`` [B, L], ``neighbour_weights``
            [B, L, L] and ``propagation`` [B, L, L].
        """
        mask = tf.cast(mask, nodes.dtype)
        propagation = shared["propagation"]
        length = tf.shape(nodes)[1]
        neighbours = (adjacency > 0) | (tf.eye(length, dtype=adjacency.dtype)[None] > 0)
        logits = tf.nn.leaky_relu(shared["cluster_logit"]
                                  + self.query_attention((nodes, target), training=training))
        weights = masked_softmax(tf.broadcast_to(logits[:, None, :], tf.shape(adjacency)),
                                 neighbours)
        fused = tf.nn.leaky_relu(self.aggregate(tf.matmul(weights, nodes)) + nodes)
        score = masked_softmax(self._cluster_logit(fused, propagation, training)
                               + self.query_attention((fused, target), training=training), mask)
        return {"fused": fused, "cluster_score": score, "neighbour_weights": weights,
                "propagation": propagation}

    def call(self, inputs, mask=None, training=None):
        """Fuse the nodes' interests (``history_side`` then ``target_side``).

        Args:
            inputs (tuple): ``(nodes [B, L, D], adjacency [B, L, L], target [B, D])``.
            mask (tf.Tensor): [B, L], nonzero on valid positions.
            training (bool): Batch-norm mode.

        Returns:
            dict: As ``target_side``.
        """
        nodes, adjacency, target = inputs
        return self.target_side(nodes, adjacency, self.history_side(nodes, adjacency, training),
                                target, mask, training)

    def get_config(self):
        config = super().get_config()
        config.update(layer_sizes=self.layer_sizes, activations=self.activations,
                      enable_bn=self.enable_bn, dropout=self.dropout, init_value=self.init_value,
                      units=self.units)
        return config


def pooling_losses(assignment, adjacency, mask, cluster_mask):
    """The three pooling regularisers of paper 3.3.2, each a mean over the valid entries.

    Args:
        assignment (tf.Tensor): [B, L, m] soft assignment (rows of padded nodes are 0),
            clusters in index order.
        adjacency (tf.Tensor): [B, L, L] edge weights.
        mask (tf.Tensor): [B, L] float node mask.
        cluster_mask (tf.Tensor): [B, m] float, 1 on the clusters a row may use.

    Returns:
        dict: ``link`` (||A + I - S S^T||^2, same mapping), ``entropy`` (of each node's
        assignment, single affiliation) and ``position`` (squared gap between each
        cluster's mean relative position and its index's, relative position).
    """
    pairs = mask[:, :, None] * mask[:, None, :]
    target = adjacency + pairs * tf.eye(tf.shape(mask)[1], dtype=mask.dtype)
    gap = (target - tf.matmul(assignment, assignment, transpose_b=True)) * pairs
    link = tf.math.divide_no_nan(tf.reduce_sum(tf.square(gap)), tf.reduce_sum(pairs))
    entropy = tf.math.divide_no_nan(-tf.reduce_sum(tf.math.xlogy(assignment, assignment)),
                                    tf.reduce_sum(mask))
    lengths = tf.reduce_sum(mask, 1, keepdims=True)
    node_position = tf.math.divide_no_nan(tf.math.cumsum(mask, 1), lengths) * mask
    centre = tf.math.divide_no_nan(tf.einsum("blm,bl->bm", assignment, node_position),
                                   tf.reduce_sum(assignment, 1))
    clusters = tf.reduce_sum(cluster_mask, 1, keepdims=True)
    cluster_position = tf.math.divide_no_nan(tf.math.cumsum(cluster_mask, 1), clusters)
    position = tf.math.divide_no_nan(
        tf.reduce_sum(tf.square(centre - cluster_position) * cluster_mask),
        tf.reduce_sum(cluster_mask))
    return {"link": link, "entropy": entropy, "position": position}


@keras.utils.register_keras_serializable(package="clsr_tf")
class GraphPooling(keras.layers.Layer):
    """Interest extraction by soft graph pooling (paper 3.3.2).

    S = softmax over clusters of (A_hat H) W_p, restricted to the first min(m, n) clusters
    of a row with n valid nodes (padded nodes get zero rows); pooled = S^T H. The clusters
    are then sorted by their mean position in the history (padding clusters last), so the
    pooled sequence is left-aligned and keeps the original order.

    Args:
        clusters (int): m, the pooled sequence length.
        init_value (float): Std of the truncated-normal kernel initializer.
    """

    def __init__(self, clusters=10, init_value=0.01, **kwargs):
        super().__init__(**kwargs)
        self.clusters = clusters
        self.init_value = init_value
        self.assign = keras.layers.Dense(clusters, kernel_initializer=tnormal(init_value),
                                            name="assign")

    def call(self, inputs, mask=None):
        """Pool the graph.

        Args:
            inputs (tuple): ``(nodes [B, L, D], propagation [B, L, L], adjacency [B, L, L])``.
            mask (tf.Tensor): [B, L], nonzero on valid positions.

        Returns:
            dict: ``pooled`` [B, m, D], ``pooled_mask`` [B, m], ``assignment`` [B, L, m]
            (columns in the pooled order), ``cluster_position`` [B, m] (mean position of
            each pooled cluster, in history steps) and the ``pooling_losses``.
        """
        nodes, propagation, adjacency = inputs
        mask = tf.cast(mask, nodes.dtype)
        lengths = tf.reduce_sum(mask, 1)
        cluster_mask = tf.cast(tf.range(self.clusters, dtype=mask.dtype)[None]
                               < tf.minimum(lengths, self.clusters)[:, None], mask.dtype)
        logits = self.assign(tf.matmul(propagation, nodes))
        assignment = masked_softmax(logits, cluster_mask[:, None, :]) * mask[:, :, None]
        losses = pooling_losses(assignment, adjacency, mask, cluster_mask)
        steps = tf.range(tf.shape(mask)[1], dtype=mask.dtype)
        position = tf.math.divide_no_nan(tf.einsum("blm,l->bm", assignment, steps),
                                         tf.reduce_sum(assignment, 1))
        order = tf.argsort(tf.where(cluster_mask > 0, position, np.inf), stable=True)
        pooled = tf.matmul(assignment, nodes, transpose_a=True)
        out = {"pooled": tf.gather(pooled, order, batch_dims=1),
               "pooled_mask": tf.gather(cluster_mask, order, batch_dims=1),
               "assignment": tf.gather(assignment, order, axis=2, batch_dims=1),
               "cluster_position": tf.gather(position, order, batch_dims=1)}
        out.update({f"{k}_loss": v for k, v in losses.items()})
        return out

    def get_config(self):
        config = super().get_config()
        config.update(clusters=self.clusters, init_value=self.init_value)
        return config


@keras.utils.register_keras_serializable(package="clsr_tf")
class AUGRUCell(keras.layers.Layer):
    """GRU cell with an attentional update gate (DIEN's AUGRU), TF1 GRU gate layout.

    The input's last channel is the step's attention score a_t: z' = a_t z and
    h_t = (1 - z') h_{t-1} + z' c_t, with c_t = tanh(W [x_t, r * h_{t-1}] + b). With
    a_t = 1 this is a plain GRU.

    Args:
        units (int): Hidden size.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        size = int(input_shape[-1]) - 1 + self.units
        self.gate_kernel = self.add_weight(name="gate_kernel", shape=(size, 2 * self.units),
                                           initializer="glorot_uniform")
        self.gate_bias = self.add_weight(name="gate_bias", shape=(2 * self.units,),
                                         initializer="ones")
        self.candidate_kernel = self.add_weight(name="candidate_kernel",
                                                shape=(size, self.units),
                                                initializer="glorot_uniform")
        self.candidate_bias = self.add_weight(name="candidate_bias", shape=(self.units,),
                                              initializer="zeros")
        super().build(input_shape)

    def call(self, inputs, states):
        x, attention = inputs[:, :-1], inputs[:, -1:]
        state = states[0]
        gates = tf.sigmoid(tf.matmul(tf.concat([x, state], 1), self.gate_kernel)
                           + self.gate_bias)
        reset, update = tf.split(gates, 2, axis=1)
        candidate = tf.tanh(tf.matmul(tf.concat([x, reset * state], 1), self.candidate_kernel)
                            + self.candidate_bias)
        update = attention * update
        new_state = (1 - update) * state + update * candidate
        return new_state, [new_state]

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config
