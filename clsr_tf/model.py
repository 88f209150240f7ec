"""CLSRModel: embeddings -> long/short encoders -> proxies -> adaptive fusion -> tower."""

import contextlib
import types

import tensorflow as tf

from clsr_tf.hparams import as_dict
from clsr_tf.keras2 import keras
from clsr_tf.layers import MLP, AdaptiveFusion, AttentionPool, make_rnn
from clsr_tf.layers.mlp import tnormal
from clsr_tf.losses import ContrastiveLoss, group_softmax_loss

# Inputs that the rows of a training group share (DESIGN.md section 3).
HISTORY_KEYS = ("users", "item_history", "item_cate_history", "mask", "time_from_first_action",
                "time_to_now")


def vocab_sizes(hp):
    """Vocabulary sizes from explicit ``*_vocab_size`` hparams or the vocab pickles.

    Args:
        hp (dict): Validated hyper-parameters.

    Returns:
        tuple: (users, items, cates).
    """
    kinds = ("user", "item", "cate")
    sizes = [hp[f"{kind}_vocab_size"] for kind in kinds]
    if all(sizes):
        return tuple(sizes)
    from recommenders.models.deeprec.deeprec_utils import load_dict

    from clsr_tf.data.iterator import vocab_paths

    paths = vocab_paths(hp)
    return tuple(size or len(load_dict(paths[f"{kind}_vocab"]))
                 for kind, size in zip(kinds, sizes))


def masked_mean(values, weights):
    """Weighted mean over axis 1 (0 where the weights sum to 0).

    Args:
        values (tf.Tensor): [B, L, D].
        weights (tf.Tensor): [B, L].

    Returns:
        tf.Tensor: [B, D].
    """
    total = tf.reduce_sum(values * weights[:, :, None], 1)
    return tf.math.divide_no_nan(total, tf.reduce_sum(weights, 1, keepdims=True))


def recent_mask(mask, k):
    """Mask of the last ``k`` valid positions of each left-aligned history.

    Args:
        mask (tf.Tensor): [B, L] float mask.
        k (int): Number of recent positions.

    Returns:
        tf.Tensor: [B, L] float mask.
    """
    position = tf.math.cumsum(mask, axis=1, reverse=True)
    return tf.cast((position >= 1) & (position <= k), mask.dtype)


def check_groups(batch, shared, group_size):
    """Fail unless every row of a group has its group's first row's user and history.

    Args:
        batch (dict): The batch.
        shared (dict): The first row of each group, for ``HISTORY_KEYS``.
        group_size (int): Rows per group.

    Raises:
        tf.errors.InvalidArgumentError: Naming the first key that differs.
    """
    for key in HISTORY_KEYS:
        tf.debugging.assert_equal(
            batch[key], tf.repeat(shared[key], group_size, axis=0),
            message=f"rows of a group of {group_size} differ in {key!r}: training batches "
                    f"must hold 1 + train_num_ngs rows per line that share the history")


def consecutive_runs(batch):
    """Runs of consecutive rows with the same user and history.

    Args:
        batch (dict): The batch.

    Returns:
        tuple: (index of each run's first row [R], run of each row [B]).
    """
    same = None
    for key in HISTORY_KEYS:
        value = tf.convert_to_tensor(batch[key])
        equal = tf.equal(value[1:], value[:-1])
        if equal.shape.rank > 1:
            equal = tf.reduce_all(equal, axis=1)
        same = equal if same is None else same & equal
    starts = tf.concat([tf.ones([1], tf.bool), tf.logical_not(same)], 0)
    first_rows = tf.reshape(tf.where(starts), [-1])
    return first_rows, tf.cumsum(tf.cast(starts, tf.int32)) - 1


@contextlib.contextmanager
def dtype_policy(name):
    """Use a Keras mixed precision policy while layers are created.

    Args:
        name (str): ``mixed_float16``, ``mixed_bfloat16``, or empty for float32.
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name or "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@keras.utils.register_keras_serializable(package="clsr_tf")
class CLSRModel(keras.Model):
    """CLSR (Zheng et al., WWW 2022) as a Keras model.

    ``model(batch)`` returns the scores sigmoid(logit) [B, 1]; ``model.forward(batch)``
    returns every intermediate tensor (alpha, u_l, u_s, proxies, attention weights, ...).
    ``fit`` trains with the group softmax loss + contrastive loss + discrepancy + L2.

    Args:
        hparams (HParams or dict): Hyper-parameters (``clsr_tf.hparams.SCHEMA``); vocab
            sizes come from ``*_vocab_size`` or the vocab files.
    """

    def __init__(self, hparams, **kwargs):
        hp = as_dict(hparams)
        with dtype_policy(hp["mixed_precision"]):
            super().__init__(**kwargs)
            self._build_layers(hp)

    def _build_layers(self, hp):
        """Create the layers (under the model's dtype policy)."""
        n_users, n_items, n_cates = vocab_sizes(hp)
        hp.update(user_vocab_size=n_users, item_vocab_size=n_items, cate_vocab_size=n_cates)
        # Read-only and invisible to Keras' tracking (a dict would be checkpointed).
        self.hp = types.MappingProxyType(hp)

        def table(size, dim, name):
            return keras.layers.Embedding(
                size, dim, embeddings_initializer=tnormal(hp["init_value"]), name=name)

        self.item_embedding = table(n_items, hp["item_embedding_dim"], "item_embedding")
        self.cate_embedding = table(n_cates, hp["cate_embedding_dim"], "cate_embedding")
        self.user_long_embedding = table(n_users, hp["user_embedding_dim"],
                                         "user_long_embedding")
        self.user_short_embedding = table(n_users, hp["user_embedding_dim"],
                                          "user_short_embedding")
        self.embedding_dropout = keras.layers.Dropout(hp["embedding_dropout"])
        dropout = hp["dropout"] if hp["user_dropout"] else None
        mlp = dict(activations=hp["activation"], enable_bn=hp["enable_BN"], dropout=dropout,
                   init_value=hp["init_value"])
        self.long_attention = AttentionPool(hp["att_fcn_layer_sizes"],
                                            attention_type=hp["attention_type"],
                                            name="long_term_attention", **mlp)
        self.short_attention = AttentionPool(hp["att_fcn_layer_sizes"],
                                             attention_type=hp["attention_type"],
                                             name="short_term_attention", **mlp)
        self.interest_evolution = None
        if hp["interest_evolve"]:
            self.interest_evolution = make_rnn("gru", hp["user_embedding_dim"],
                                               hp["rnn_variant"], return_sequences=False,
                                               name="short_term_intention")
        self.sequence_encoder = make_rnn(hp["sequential_model"], hp["hidden_size"],
                                         hp["rnn_variant"], name=hp["sequential_model"])
        self.fusion = AdaptiveFusion(hp["hidden_size"], hp["att_fcn_layer_sizes"],
                                     predict_long_short=hp["predict_long_short"],
                                     manual_alpha=hp["manual_alpha"],
                                     manual_alpha_value=hp["manual_alpha_value"],
                                     rnn_variant=hp["rnn_variant"], name="fusion", **mlp)
        self.tower = MLP(hp["layer_sizes"], name="logit_fcn", **mlp)
        self.contrastive = ContrastiveLoss(hp["contrastive_loss"], hp["triplet_margin"],
                                           hp["contrastive_length_threshold"])

    # ---- forward ---------------------------------------------------------------------
    def _history_side(self, batch, training):
        """Everything that reads only the user and the history (not the target item)."""
        hp = self.hp
        history = tf.concat([self.item_embedding(batch["item_history"]),
                             self.cate_embedding(batch["item_cate_history"])], -1)
        user_long, user_short = (
            self.embedding_dropout(table(batch["users"]), training=training)
            for table in (self.user_long_embedding, self.user_short_embedding))
        history = self.embedding_dropout(history, training=training)
        dtype = history.dtype  # float16/bfloat16 under a mixed precision policy
        mask = tf.cast(batch["mask"], dtype)
        bool_mask = mask > 0
        out = {"user_long_embedding": user_long, "user_short_embedding": user_short}

        # Long-term interest (Eqn 10-13) and its proxy (Eqn 17).
        out["att_fea_long"], out["att_weights_long"] = self.long_attention(
            (history, user_long), mask=mask, training=training)
        out["hist_mean"] = masked_mean(history, mask)

        # Short-term query (Eqn 7), the RNN outputs (Eqn 14) and the proxy (Eqn 18).
        if self.interest_evolution is not None:
            out["short_term_intention"] = self.interest_evolution(
                history, mask=bool_mask, initial_state=[user_short], training=training)
        else:
            out["short_term_intention"] = user_short
        out["hist_recent"] = masked_mean(history, recent_mask(mask, hp["contrastive_recent_k"]))
        rnn_input = history
        if hp["sequential_model"] == "time4lstm":
            rnn_input = tf.concat([history,
                                   tf.cast(batch["time_from_first_action"], dtype)[:, :, None],
                                   tf.cast(batch["time_to_now"], dtype)[:, :, None]], -1)
        rnn_outputs = self.sequence_encoder(rnn_input, mask=bool_mask, training=training)
        out["rnn_outputs"] = rnn_outputs * mask[:, :, None]
        state = self.fusion.history_state(history, mask, training=training)
        if state is not None:
            out["fusion_state"] = state
        return out

    def forward(self, batch, training=False, group_size=1):
        """Run the model and return every named intermediate tensor.

        Args:
            batch (dict): Arrays of shared/DESIGN.md section 3.
            training (bool): Training mode (batch statistics, dropout).
            group_size (int or str): Rows come in groups of this many consecutive rows that
                share user and history (training batches: 1 + train_num_ngs). Everything
                that reads only the history then runs once per group; the results are the
                same as with 1 (batch-norm statistics too, as every history appears equally
                often), except that dropout draws one mask per group. ``'consecutive'``
                (inference only): find runs of rows with equal user and history (a
                positive and its negatives in valid/test files) and run the history side
                once per run; any batch gives the same results as with 1. Its shapes
                depend on the data, so XLA (``jit_compile``) cannot compile it; the
                scoring paths of ``CLSRSequentialModel``, the studies and the exported
                SavedModel use it, Keras' ``predict``/``evaluate`` do not.

        Returns:
            dict: ``logit``, ``pred``, ``alpha``, ``att_fea_long`` (u_l), ``att_fea_short``
            (u_s), ``hist_mean`` (p_l), ``hist_recent`` (p_s), ``att_weights_long``,
            ``att_weights_short``, ``rnn_outputs``, ``short_term_intention``,
            ``user_embedding`` (the fused u), ``target_item_embedding``,
            ``sequence_length``, ``tower_input`` and, when used, ``fusion_state``,
            ``fusion_input`` and ``alpha_logit``.

        Raises:
            tf.errors.InvalidArgumentError: With ``group_size`` > 1, when the rows of a
                group differ in user or history.
            ValueError: ``'consecutive'`` in training mode.
        """
        hp = self.hp
        if group_size == "consecutive":
            if training:
                raise ValueError("group_size='consecutive' is for inference: in training, "
                                 "batch statistics need every history equally often")
            first_rows, run = consecutive_runs(batch)
            shared = {key: tf.gather(batch[key], first_rows) for key in HISTORY_KEYS}
            out = {key: tf.gather(value, run)
                   for key, value in self._history_side(shared, training).items()}
        elif group_size > 1:
            shared = {key: batch[key][::group_size] for key in HISTORY_KEYS}
            check_groups(batch, shared, group_size)
            out = {key: tf.repeat(value, group_size, axis=0)
                   for key, value in self._history_side(shared, training).items()}
        else:
            out = self._history_side(batch, training)
        target = self.embedding_dropout(
            tf.concat([self.item_embedding(batch["items"]),
                       self.cate_embedding(batch["cates"])], -1), training=training)
        dtype = target.dtype
        mask = tf.cast(batch["mask"], dtype)
        out["target_item_embedding"] = target
        out["sequence_length"] = lengths = tf.reduce_sum(tf.cast(batch["mask"], tf.float32), 1)

        # Short-term interest (Eqn 15-16): the query is [intention, target].
        out["att_fea_short"], out["att_weights_short"] = self.short_attention(
            (out["rnn_outputs"], tf.concat([out["short_term_intention"], target], -1)),
            mask=mask, training=training)

        # Adaptive fusion (Eqn 26-28) and prediction (Eqn 29).
        time_to_now = tf.cast(batch["time_to_now"], dtype)
        if hp["fusion_time_position"] == "last_column":
            last_time = time_to_now[:, -1]
        else:
            last = tf.maximum(tf.cast(lengths, tf.int32) - 1, 0)
            last_time = tf.gather(time_to_now, last, batch_dims=1)
        fused = self.fusion((out.get("fusion_state"), target, out["att_fea_long"],
                             out["att_fea_short"], last_time), training=training)
        out.update(fused)
        out["user_embedding"] = fused["user"]
        out["tower_input"] = tf.concat([fused["user"], target], -1)
        # The logit, and everything computed from it, stays float32 under mixed precision.
        out["logit"] = tf.cast(self.tower(out["tower_input"], training=training), tf.float32)
        out["pred"] = tf.sigmoid(out["logit"])
        out["alpha"] = tf.cast(out["alpha"], tf.float32)
        return out

    def call(self, batch, training=False):
        """Scores sigmoid(logit) [B, 1] for a batch dict."""
        return self.forward(batch, training=training)["pred"]

    # ---- losses ----------------------------------------------------------------------
    def _touched_rows(self, batch):
        """Embedding rows the batch reads, one entry per distinct row and table."""
        items = tf.concat([tf.reshape(batch["item_history"], [-1]),
                           tf.reshape(batch["items"], [-1])], 0)
        cates = tf.concat([tf.reshape(batch["item_cate_history"], [-1]),
                           tf.reshape(batch["cates"], [-1])], 0)
        users = tf.unique(tf.reshape(batch["users"], [-1]))[0]
        rows = {
            "item": self.item_embedding(tf.unique(items)[0]),
            "cate": self.cate_embedding(tf.unique(cates)[0]),
            "user_long": self.user_long_embedding(users),
            "user_short": self.user_short_embedding(users),
        }
        return {k: tf.cast(v, tf.float32) for k, v in rows.items()}

    def _embedding_variables(self):
        return [layer.embeddings for layer in (self.item_embedding, self.cate_embedding,
                                               self.user_long_embedding,
                                               self.user_short_embedding)]

    def compute_losses(self, batch, out, group_size=None):
        """Every loss term of the original objective.

        Args:
            batch (dict): The batch (needs ``labels``).
            out (dict): ``forward`` outputs for the batch.
            group_size (int): Rows per softmax group (default 1 + train_num_ngs).

        Returns:
            dict: ``data_loss``, ``contrastive_loss`` (weighted), ``discrepancy_loss``
            (weighted, negative), ``regular_loss`` and their sum ``loss``.
        """
        hp = self.hp
        group_size = group_size or hp["train_num_ngs"] + 1
        losses = {"data_loss": group_softmax_loss(out["logit"], batch["labels"], group_size)}
        reps = [tf.cast(out[key], tf.float32)
                for key in ("att_fea_long", "att_fea_short", "hist_mean", "hist_recent")]
        con = self.contrastive(*reps, out["sequence_length"])
        losses["contrastive_loss"] = hp["contrastive_loss_weight"] * con
        rows = self._touched_rows(batch)
        losses["discrepancy_loss"] = -hp["discrepancy_loss_weight"] * tf.reduce_mean(
            tf.math.squared_difference(rows["user_long"], rows["user_short"]))
        embed_l2 = tf.add_n([tf.nn.l2_loss(r) for r in rows.values()])
        embedding_ids = {id(v) for v in self._embedding_variables()}
        layer_l2 = tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32))
                             for v in self.trainable_variables if id(v) not in embedding_ids])
        losses["regular_loss"] = hp["embed_l2"] * embed_l2 + hp["layer_l2"] * layer_l2
        losses["loss"] = tf.add_n(list(losses.values()))
        return losses

    # ---- Keras training hooks --------------------------------------------------------
    def train_step(self, data):
        batch = data[0] if isinstance(data, tuple) else data
        scaled = isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            out = self.forward(batch, training=True, group_size=self.hp["train_num_ngs"] + 1)
            losses = self.compute_losses(batch, out)
            # Gradients are summed over replicas: each replica takes its share of the mean.
            loss = losses["loss"] / replicas
            if scaled:
                loss = self.optimizer.get_scaled_loss(loss)
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        if scaled:
            grads = self.optimizer.get_unscaled_gradients(grads)
        if self.hp["is_clip_norm"]:
            grads = [None if g is None else tf.clip_by_norm(g, self.hp["max_grad_norm"])
                     for g in grads]
        self.optimizer.apply_gradients(zip(grads, variables))
        return losses

    def test_step(self, data):
        batch = data[0] if isinstance(data, tuple) else data
        return self.compute_losses(batch, self.forward(batch, training=False))

    def predict_step(self, data):
        batch = data[0] if isinstance(data, tuple) else data
        out = self.forward(batch, training=False)
        return {"pred": out["pred"], "alpha": out["alpha"], "users": batch["users"],
                "labels": batch["labels"]}

    def build_from_shape(self, max_seq_length):
        """Create every variable by running one dummy batch.

        Args:
            max_seq_length (int): History length L.
        """
        self(dummy_batch(max_seq_length), training=False)

    def get_config(self):
        return {"hparams": dict(self.hp)}

    @classmethod
    def from_config(cls, config):
        return cls(config["hparams"])


def dummy_batch(max_seq_length, batch_size=2):
    """A valid all-padding-but-one batch, for building variables.

    Args:
        max_seq_length (int): History length L.
        batch_size (int): Rows.

    Returns:
        dict: Batch arrays of shared/DESIGN.md section 3.
    """
    shape = [batch_size, max_seq_length]
    mask = tf.concat([tf.ones([batch_size, 1]), tf.zeros([batch_size, max_seq_length - 1])], 1)
    zeros_i = tf.zeros(shape, tf.int32)
    zeros_f = tf.zeros(shape, tf.float32)
    return {"labels": tf.zeros([batch_size, 1]), "users": tf.zeros([batch_size], tf.int32),
            "items": tf.zeros([batch_size], tf.int32), "cates": tf.zeros([batch_size], tf.int32),
            "item_history": zeros_i, "item_cate_history": zeros_i, "mask": mask,
            "time": tf.zeros([batch_size]), "time_diff": zeros_f,
            "time_from_first_action": zeros_f, "time_to_now": zeros_f}
