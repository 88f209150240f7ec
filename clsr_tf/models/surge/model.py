"""SURGE (Chang et al., SIGIR 2021, "Sequential Recommendation with Graph Neural Networks").

A Keras port on clsr_tf's batch contract (shared/DESIGN.md section 3), trained with the
same group softmax loss as CLSR:

1. Interest graph (paper 3.2): weighted cosine similarity of the history embeddings,
   averaged over ``metric_heads`` heads; relative-rank sparsification keeps the top
   ``relative_threshold`` fraction of the node pairs of each graph as undirected edges
   (``InterestGraph``).
2. Interest fusion (3.3.1): graph attentive convolution whose weights combine a
   cluster-aware score (a node against the centre of its 2-hop neighbourhood) and a
   query-aware score (a node against the target item) (``InterestFusion``).
3. Interest extraction (3.3.2): graph pooling by a soft assignment of the nodes to
   ``pool_length`` clusters; the clusters are ordered by their mean position in the
   history so the pooled sequence keeps the original order (``GraphPooling``).
4. Prediction (3.4): an AUGRU (or GRU) over the pooled sequence, with attention scores
   from the target item, then an MLP over [final state, graph readout, target,
   readout * target].

Choices where the paper leaves room (documented, not the public code's exact graph):
kept edges carry the similarity rescaled to [0, 1] (so the metric weights get gradients;
a 0/1 adjacency would cut them off); the neighbour weights are
softmax_j(LeakyReLU(alpha_j + beta_j)) over i's neighbours j and i itself; a history
shorter than ``pool_length`` is pooled into as many clusters as it has items.
"""

import tensorflow as tf

from clsr_tf.keras2 import keras
from clsr_tf.layers.mlp import MLP
from clsr_tf.models.base import SequentialModel
from clsr_tf.models.surge.hparams import surge_hparams
from clsr_tf.models.surge.layers import (
    AUGRUCell,
    GraphPooling,
    InterestFusion,
    InterestGraph,
    NodeAttention,
    masked_softmax,
)


@keras.utils.register_keras_serializable(package="clsr_tf")
class SURGEModel(SequentialModel):
    """SURGE as a Keras model on clsr_tf's batch contract.

    ``model(batch)`` returns sigmoid(logit) [B, 1]; ``forward`` returns ``nodes``,
    ``similarity``, ``adjacency``, ``propagation``, ``cluster_logit`` (what reads only the
    history, run once per history where rows share one), ``fused``, ``cluster_score``,
    ``neighbour_weights``, ``pooled``, ``pooled_mask``, ``assignment``,
    ``cluster_position``, ``sequence_attention``, ``final_state``, ``readout``,
    ``target_item_embedding``, the pooling losses, ``logit`` and ``pred``. Training, L2 and
    clipping are ``SequentialModel``'s; SURGE adds its pooling regularisers. From the
    query-aware fusion scores on, everything reads the target item.

    Args:
        hparams (HParams or dict): ``SURGE_SCHEMA`` keys plus clsr_tf keys (embedding
            sizes, ``hidden_size``, ``att_fcn_layer_sizes``, ``layer_sizes``, L2, ...).
    """

    # The float16 casts of CLSR's forward pass are not written for SURGE's graph.
    supports_mixed_precision = False
    history_outputs = ("nodes", "adjacency", "propagation", "cluster_logit")

    @staticmethod
    def check_hparams(hparams):
        """SURGE's keys (``SURGE_SCHEMA``) and clsr_tf's, checked."""
        return surge_hparams(hparams)

    def build_layers(self, hp):
        self.item_embedding = self.embedding(hp["item_vocab_size"], hp["item_embedding_dim"],
                                             "item_embedding")
        self.cate_embedding = self.embedding(hp["cate_vocab_size"], hp["cate_embedding_dim"],
                                             "cate_embedding")
        self.embedding_dropout = keras.layers.Dropout(hp["embedding_dropout"])
        mlp = self.mlp_options()
        self.interest_graph = InterestGraph(hp["metric_heads"], hp["relative_threshold"],
                                            name="interest_graph")
        self.fusion = InterestFusion(hp["att_fcn_layer_sizes"], name="interest_fusion",
                                     units=hp["item_embedding_dim"] + hp["cate_embedding_dim"],
                                     **mlp)
        self.pooling = GraphPooling(hp["pool_length"], hp["init_value"], name="graph_pooling")
        self.sequence_attention = None
        if hp["surge_rnn"] == "augru":
            self.sequence_attention = NodeAttention(hp["att_fcn_layer_sizes"],
                                                    name="augru_attention", **mlp)
        self.rnn = keras.layers.RNN(AUGRUCell(hp["hidden_size"]), name=hp["surge_rnn"])
        self.tower = MLP(hp["layer_sizes"], name="logit_fcn", **mlp)

    def _history_side(self, batch, training):
        """The interest graph and the cluster-aware logits (they do not read the target)."""
        mask = tf.cast(batch["mask"], tf.float32)
        nodes = self.embedding_dropout(
            tf.concat([self.item_embedding(batch["item_history"]),
                       self.cate_embedding(batch["item_cate_history"])], -1), training=training)
        out = {"nodes": nodes}
        out["similarity"], out["adjacency"] = self.interest_graph(nodes, mask=mask)
        out.update(self.fusion.history_side(nodes, out["adjacency"], training=training))
        return out

    def _target_side(self, out, batch, training):
        """Fusion with the target's query-aware scores, pooling, AUGRU and tower."""
        mask = tf.cast(batch["mask"], tf.float32)
        target = self.embedding_dropout(
            tf.concat([self.item_embedding(batch["items"]),
                       self.cate_embedding(batch["cates"])], -1), training=training)
        out["target_item_embedding"] = target
        out.update(self.fusion.target_side(out["nodes"], out["adjacency"], out, target,
                                           mask=mask, training=training))
        out["readout"] = tf.reduce_sum(out["fused"] * out["cluster_score"][:, :, None], 1)
        out.update(self.pooling((out["fused"], out["propagation"], out["adjacency"]),
                                mask=mask))
        pooled, pooled_mask = out["pooled"], out["pooled_mask"]
        if self.sequence_attention is not None:
            scores = masked_softmax(self.sequence_attention((pooled, target), training=training),
                                    pooled_mask)
        else:
            scores = pooled_mask
        out["sequence_attention"] = scores
        out["final_state"] = self.rnn(tf.concat([pooled, scores[:, :, None]], -1),
                                      mask=pooled_mask > 0, training=training)
        readout = out["readout"]
        tower_input = tf.concat([out["final_state"], readout, target, readout * target], -1)
        out["logit"] = self.tower(tower_input, training=training)
        out["pred"] = tf.sigmoid(out["logit"])
        return out

    def embedding_tables(self):
        return {"item": (self.item_embedding, ("item_history", "items")),
                "cate": (self.cate_embedding, ("item_cate_history", "cates"))}

    def model_losses(self, batch, out, rows):
        """The three pooling regularisers of paper 3.3.2, weighted.

        Args:
            batch (dict): The batch.
            out (dict): ``forward`` outputs.
            rows (dict): ``touched_rows(batch)`` (unused).

        Returns:
            dict: ``pooling_loss``.
        """
        return {"pooling_loss": tf.add_n([self.hp[f"pool_{k}_loss_weight"] * out[f"{k}_loss"]
                                          for k in ("link", "entropy", "position")])}
