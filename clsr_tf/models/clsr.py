"""CLSRModel: embeddings -> long/short encoders -> proxies -> adaptive fusion -> tower."""

import tensorflow as tf

from clsr_tf.keras2 import keras
from clsr_tf.layers import MLP, AdaptiveFusion, AttentionPool, make_rnn
from clsr_tf.losses import ContrastiveLoss
from clsr_tf.models.base import SequentialModel


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


@keras.utils.register_keras_serializable(package="clsr_tf")
class CLSRModel(SequentialModel):
    """CLSR (Zheng et al., WWW 2022) as a Keras model.

    ``model(batch)`` returns the scores sigmoid(logit) [B, 1]; ``model.forward(batch)``
    returns every intermediate tensor: ``logit``, ``pred``, ``alpha``, ``att_fea_long``
    (u_l), ``att_fea_short`` (u_s), ``hist_mean`` (p_l), ``hist_recent`` (p_s),
    ``att_weights_long``, ``att_weights_short``, ``rnn_outputs``, ``short_term_intention``,
    ``user_embedding`` (the fused u), ``target_item_embedding``, ``sequence_length``,
    ``tower_input``, ``short_keys_projected`` and ``short_keys_scored`` (the short-term
    attention's key side, ``AttentionPool.key_side``, computed with the history side) and,
    when used, ``fusion_state``, ``fusion_input`` and ``alpha_logit``.
    ``fit`` trains with the group softmax loss + contrastive loss + discrepancy + L2
    (``SequentialModel``).

    Args:
        hparams (HParams or dict): Hyper-parameters (``clsr_tf.hparams.SCHEMA``); vocab
            sizes come from ``*_vocab_size`` or the vocab files.
    """

    prediction_outputs = ("pred", "alpha")
    history_outputs = ("att_fea_long", "short_term_intention", "rnn_outputs", "fusion_state",
                       "short_keys_projected", "short_keys_scored")

    def build_layers(self, hp):
        self.item_embedding = self.embedding(hp["item_vocab_size"], hp["item_embedding_dim"],
                                             "item_embedding")
        self.cate_embedding = self.embedding(hp["cate_vocab_size"], hp["cate_embedding_dim"],
                                             "cate_embedding")
        self.user_long_embedding = self.embedding(hp["user_vocab_size"],
                                                  hp["user_embedding_dim"], "user_long_embedding")
        self.user_short_embedding = self.embedding(hp["user_vocab_size"],
                                                   hp["user_embedding_dim"],
                                                   "user_short_embedding")
        self.embedding_dropout = keras.layers.Dropout(hp["embedding_dropout"])
        mlp = self.mlp_options()
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
        # What the short-term attention takes from its keys alone, once per history.
        query_size = (out["short_term_intention"].shape[-1] + hp["item_embedding_dim"]
                      + hp["cate_embedding_dim"])
        side = self.short_attention.key_side(out["rnn_outputs"], query_size)
        out.update({f"short_keys_{key}": value for key, value in side.items()})
        state = self.fusion.history_state(history, mask, training=training)
        if state is not None:
            out["fusion_state"] = state
        return out

    def _target_side(self, out, batch, training):
        """Short-term attention, fusion and tower (``SequentialModel._target_side``)."""
        hp = self.hp
        target = self.embedding_dropout(
            tf.concat([self.item_embedding(batch["items"]),
                       self.cate_embedding(batch["cates"])], -1), training=training)
        dtype = target.dtype
        mask = tf.cast(batch["mask"], dtype)
        out["target_item_embedding"] = target
        out["sequence_length"] = lengths = tf.reduce_sum(tf.cast(batch["mask"], tf.float32), 1)

        # Short-term interest (Eqn 15-16): the query is [intention, target].
        key_side = {key: out[f"short_keys_{key}"] for key in ("projected", "scored")
                    if f"short_keys_{key}" in out}
        out["att_fea_short"], out["att_weights_short"] = self.short_attention(
            (out["rnn_outputs"], tf.concat([out["short_term_intention"], target], -1)),
            mask=mask, training=training, key_side=key_side)

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

    # ---- losses ----------------------------------------------------------------------
    def embedding_tables(self):
        return {"item": (self.item_embedding, ("item_history", "items")),
                "cate": (self.cate_embedding, ("item_cate_history", "cates")),
                "user_long": (self.user_long_embedding, ("users",)),
                "user_short": (self.user_short_embedding, ("users",))}

    def model_losses(self, batch, out, rows):
        """The contrastive tasks (weighted by beta) and the original's discrepancy term.

        Args:
            batch (dict): The batch.
            out (dict): ``forward`` outputs.
            rows (dict): ``touched_rows(batch)``.

        Returns:
            dict: ``contrastive_loss`` (weighted) and ``discrepancy_loss`` (weighted,
            negative).
        """
        hp = self.hp
        reps = [tf.cast(out[key], tf.float32)
                for key in ("att_fea_long", "att_fea_short", "hist_mean", "hist_recent")]
        con = self.contrastive(*reps, out["sequence_length"])
        discrepancy = tf.reduce_mean(tf.math.squared_difference(rows["user_long"],
                                                                rows["user_short"]))
        return {"contrastive_loss": hp["contrastive_loss_weight"] * con,
                "discrepancy_loss": -hp["discrepancy_loss_weight"] * discrepancy}

    def l2_offsets(self):
        """The LSTM's forget-gate 1.0: TF1 adds it at run time and never regularises it."""
        if self.hp["sequential_model"] != "lstm":
            return {}
        bias = self.sequence_encoder.cell.bias
        units = bias.shape[0] // 4
        return {bias.ref(): tf.concat([tf.zeros([units]), tf.ones([units]),
                                       tf.zeros([2 * units])], 0)}

