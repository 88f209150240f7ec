"""SequentialModel: what every sequential model of clsr_tf shares.

A model writes its layers (``build_layers``), its forward pass (``forward``), the embedding
tables a batch reads (``embedding_tables``) and its own loss terms (``model_losses``). This
base owns the rest, as the original TF1 CLSR training does it (shared/DESIGN.md section 4):
the group softmax loss, the L2 on the embedding rows a batch touches plus the other weights,
Adam steps with per-variable norm clipping, loss scaling under ``mixed_float16``, the share
of each replica under ``tf.distribute``, building, config and the mixed precision policy.
"""

import contextlib
import types

import tensorflow as tf

from clsr_tf.data.contract import HISTORY_SIDE_KEYS
from clsr_tf.hparams import HParamsError, as_dict
from clsr_tf.keras2 import keras
from clsr_tf.layers.mlp import tnormal
from clsr_tf.losses import group_softmax_loss


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

    from clsr_tf.data.contract import vocab_paths

    paths = vocab_paths(hp)
    return tuple(size or len(load_dict(paths[f"{kind}_vocab"]))
                 for kind, size in zip(kinds, sizes))


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


def _batch_of(data):
    return data[0] if isinstance(data, tuple) else data


def check_groups(batch, shared, group_size):
    """Fail unless every row of a group has its group's first row's user and history.

    Args:
        batch (dict): The batch.
        shared (dict): The first row of each group, for ``HISTORY_SIDE_KEYS``.
        group_size (int): Rows per group.

    Raises:
        tf.errors.InvalidArgumentError: Naming the first key that differs.
    """
    for key in HISTORY_SIDE_KEYS:
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
    for key in HISTORY_SIDE_KEYS:
        value = tf.convert_to_tensor(batch[key])
        equal = tf.equal(value[1:], value[:-1])
        if equal.shape.rank > 1:
            equal = tf.reduce_all(equal, axis=1)
        same = equal if same is None else same & equal
    starts = tf.concat([tf.ones([1], tf.bool), tf.logical_not(same)], 0)
    first_rows = tf.reshape(tf.where(starts), [-1])
    return first_rows, tf.cumsum(tf.cast(starts, tf.int32)) - 1


class SequentialModel(keras.Model):
    """Base of the Keras sequential models (CLSR, SURGE) on the batch contract.

    ``model(batch)`` returns the scores sigmoid(logit) [B, 1]; ``fit`` trains on batches of
    groups of 1 positive + ``train_num_ngs`` negatives with ``compute_losses``.

    Subclasses implement ``build_layers``, the forward pass in two parts (``_history_side``:
    everything that reads only the user and the history; ``_target_side``: the rest),
    ``embedding_tables`` and, if they have loss terms of their own, ``model_losses``; they
    may override ``check_hparams``, ``history_outputs`` and ``l2_offsets``. ``forward``
    runs the history side once per history where rows share one (the group of a training
    line, the runs of a valid/test group, the candidates of a ranked user).

    Args:
        hparams (HParams or dict): Hyper-parameters (``check_hparams``); vocab sizes come
            from ``*_vocab_size`` or the vocab files.
    """

    #: forward outputs that scoring keeps for every line (``predict_step``, the facade).
    prediction_outputs = ("pred",)
    #: whether the model computes in float16/bfloat16 under ``mixed_precision``.
    supports_mixed_precision = True
    #: ``_history_side`` outputs that ``_target_side`` reads (None: all of them); the rest
    #: are not gathered per candidate when ranking.
    history_outputs = None

    def __init__(self, hparams, **kwargs):
        hp = self.check_hparams(hparams)
        if hp["mixed_precision"] and not self.supports_mixed_precision:
            raise HParamsError(f"mixed_precision: {type(self).__name__} runs in float32 only; "
                               f"got {hp['mixed_precision']!r}")
        with dtype_policy(hp["mixed_precision"]):
            super().__init__(**kwargs)
            n_users, n_items, n_cates = vocab_sizes(hp)
            hp.update(user_vocab_size=n_users, item_vocab_size=n_items, cate_vocab_size=n_cates)
            # Read-only and invisible to Keras' tracking (a dict would be checkpointed).
            self.hp = types.MappingProxyType(hp)
            self.build_layers(hp)

    # ---- what a model writes -----------------------------------------------------------
    @staticmethod
    def check_hparams(hparams):
        """Validated hyper-parameters as a dict (``clsr_tf.hparams.as_dict``)."""
        return as_dict(hparams)

    def build_layers(self, hp):
        """Create the layers (called under the model's dtype policy).

        Args:
            hp (dict): Validated hyper-parameters with the vocab sizes.
        """
        raise NotImplementedError

    def _history_side(self, batch, training):
        """Everything that reads only the user and the history (not the target item).

        Args:
            batch (dict): ``HISTORY_SIDE_KEYS`` arrays.
            training (bool): Training mode.

        Returns:
            dict: Named tensors, one row per row of ``batch``.
        """
        raise NotImplementedError

    def _target_side(self, out, batch, training):
        """Everything that reads the target item, from the history side's outputs.

        Args:
            out (dict): ``_history_side`` outputs, one row per row of ``batch`` (updated).
            batch (dict): ``items``, ``cates``, ``mask`` and ``time_to_now`` of the rows.
            training (bool): Training mode.

        Returns:
            dict: ``out`` with the outputs of ``forward``.
        """
        raise NotImplementedError

    def forward(self, batch, training=False, num_ngs=None):
        """Run the model and return its named tensors, ``logit`` and ``pred`` [B, 1] among them.

        Args:
            batch (dict): Arrays of shared/DESIGN.md section 3.
            training (bool): Training mode (batch statistics, dropout).
            num_ngs (int or str): Rows come in groups of 1 + ``num_ngs`` consecutive rows
                that share user and history (training batches: ``train_num_ngs``).
                Everything that reads only the history then runs once per group; the
                results are the same as with None (every row alone; batch-norm statistics
                too, as every history appears equally often), except that dropout draws
                one mask per group. ``'consecutive'``
                (inference only): find runs of rows with equal user and history (a
                positive and its negatives in valid/test files) and run the history side
                once per run; any batch gives the same results as with 1. Its shapes
                depend on the data, so XLA (``jit_compile``) cannot compile it; the
                scoring paths of ``CLSRSequentialModel``, the studies and the exported
                SavedModel use it, Keras' ``predict``/``evaluate`` do not.

        Returns:
            dict: Named tensors (the model's class docstring lists them).

        Raises:
            tf.errors.InvalidArgumentError: With ``num_ngs`` > 0, when the rows of a
                group differ in user or history.
            ValueError: ``'consecutive'`` in training mode.
        """
        if num_ngs == "consecutive":
            if training:
                raise ValueError("num_ngs='consecutive' is for inference: in training, "
                                 "batch statistics need every history equally often")
            first_rows, run = consecutive_runs(batch)
            shared = {key: tf.gather(batch[key], first_rows) for key in HISTORY_SIDE_KEYS}
            out = {key: tf.gather(value, run)
                   for key, value in self._history_side(shared, training).items()}
        elif num_ngs:
            group_size = num_ngs + 1
            shared = {key: batch[key][::group_size] for key in HISTORY_SIDE_KEYS}
            check_groups(batch, shared, group_size)
            out = {key: tf.repeat(value, group_size, axis=0)
                   for key, value in self._history_side(shared, training).items()}
        else:
            out = self._history_side(batch, training)
        return self._target_side(out, batch, training)

    def embedding_tables(self):
        """The embedding tables and the batch keys whose ids they look up.

        Returns:
            dict: name -> (``keras.layers.Embedding``, tuple of batch keys).
        """
        raise NotImplementedError

    def model_losses(self, batch, out, rows):
        """The model's own weighted loss terms (besides the data loss and L2).

        Args:
            batch (dict): The batch.
            out (dict): ``forward`` outputs.
            rows (dict): ``touched_rows(batch)``.

        Returns:
            dict: name -> scalar tensor.
        """
        return {}

    def l2_offsets(self):
        """Constants folded into weights that the L2 term must not see.

        Returns:
            dict: ``variable.ref()`` -> the constant part of that variable (L2 is taken on
            ``variable - constant``).
        """
        return {}

    def training_forward(self, batch):
        """Training runs the history side once per group of 1 + train_num_ngs rows."""
        return self.forward(batch, training=True, num_ngs=self.hp["train_num_ngs"])

    def inference_forward(self, batch):
        """Scoring runs the history side once per run of rows with equal history."""
        return self.forward(batch, training=False, num_ngs="consecutive")

    def history_side(self, batch):
        """The history side in inference mode, one row per history, for ``target_side``.

        Args:
            batch (dict): ``HISTORY_SIDE_KEYS`` arrays (no target needed).

        Returns:
            dict: The ``history_outputs`` of ``_history_side``, ``mask`` and
            ``time_to_now``.
        """
        full = self._history_side(batch, training=False)
        keep = self.history_outputs or tuple(full)
        out = {key: full[key] for key in keep if key in full}
        out.update(mask=batch["mask"], time_to_now=batch["time_to_now"])
        return out

    def target_side(self, history, targets):
        """``forward``'s outputs in inference mode from ``history_side`` rows and targets.

        Args:
            history (dict): ``history_side`` outputs gathered to one row per target.
            targets (dict): ``items`` and ``cates`` [P].

        Returns:
            dict: As ``forward`` (``logit`` and ``pred`` [P, 1] among them).
        """
        batch = {"items": targets["items"], "cates": targets["cates"],
                 "mask": history["mask"], "time_to_now": history["time_to_now"]}
        return self._target_side(dict(history), batch, training=False)

    # ---- building blocks ---------------------------------------------------------------
    def embedding(self, size, dim, name):
        """An embedding table with the original's truncated-normal initialisation.

        Args:
            size (int): Rows.
            dim (int): Columns.
            name (str): Layer name.

        Returns:
            keras.layers.Embedding: The table.
        """
        return keras.layers.Embedding(size, dim, name=name,
                                      embeddings_initializer=tnormal(self.hp["init_value"]))

    def mlp_options(self):
        """Keyword arguments every MLP of the model shares (activations, BN, dropout, init).

        Returns:
            dict: For ``clsr_tf.layers.MLP`` and the layers built on it.
        """
        hp = self.hp
        return dict(activations=hp["activation"], enable_bn=hp["enable_BN"],
                    dropout=hp["dropout"] if hp["user_dropout"] else None,
                    init_value=hp["init_value"])

    # ---- losses ------------------------------------------------------------------------
    def touched_rows(self, batch):
        """The embedding rows the batch reads, one per distinct id and table (float32).

        Args:
            batch (dict): The batch.

        Returns:
            dict: table name -> [rows, D].
        """
        rows, unique = {}, {}
        for name, (table, keys) in self.embedding_tables().items():
            # One unique op per key set: tables read with the same ids (user_long and
            # user_short) then get rows XLA can prove to have the same length.
            if keys not in unique:
                ids = tf.concat([tf.reshape(batch[key], [-1]) for key in keys], 0)
                unique[keys] = tf.unique(ids)[0]
            rows[name] = tf.cast(table(unique[keys]), tf.float32)
        return rows

    def regular_loss(self, rows):
        """The original's L2: ``embed_l2`` on the touched rows, ``layer_l2`` on the rest.

        Args:
            rows (dict): ``touched_rows(batch)``.

        Returns:
            tf.Tensor: Scalar.
        """
        tables = {id(table.embeddings) for table, _ in self.embedding_tables().values()}
        offsets = self.l2_offsets()
        layer_l2 = tf.add_n([
            tf.nn.l2_loss(tf.cast(v, tf.float32) - offsets.get(v.ref(), 0.0))
            for v in self.trainable_variables if id(v) not in tables])
        embed_l2 = tf.add_n([tf.nn.l2_loss(r) for r in rows.values()])
        return self.hp["embed_l2"] * embed_l2 + self.hp["layer_l2"] * layer_l2

    def compute_losses(self, batch, out, num_ngs=None):
        """Every loss term: group softmax, the model's own terms, L2, and their sum.

        Args:
            batch (dict): The batch (needs ``labels``).
            out (dict): ``forward`` outputs for the batch.
            num_ngs (int): Negatives per positive of the softmax groups (default
                ``train_num_ngs``).

        Returns:
            dict: ``data_loss``, the ``model_losses``, ``regular_loss`` and ``loss``.
        """
        num_ngs = self.hp["train_num_ngs"] if num_ngs is None else num_ngs
        losses = {"data_loss": group_softmax_loss(out["logit"], batch["labels"], num_ngs)}
        rows = self.touched_rows(batch)
        losses.update(self.model_losses(batch, out, rows))
        losses["regular_loss"] = self.regular_loss(rows)
        losses["loss"] = tf.add_n(list(losses.values()))
        return losses

    # ---- Keras hooks -------------------------------------------------------------------
    def call(self, batch, training=False):
        """Scores sigmoid(logit) [B, 1] for a batch dict."""
        return self.forward(batch, training=training)["pred"]

    def train_step(self, data):
        batch = _batch_of(data)
        scaled = isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            losses = self.compute_losses(batch, self.training_forward(batch))
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
        batch = _batch_of(data)
        return self.compute_losses(batch, self.forward(batch, training=False))

    def predict_step(self, data):
        batch = _batch_of(data)
        out = self.forward(batch, training=False)
        return dict({key: out[key] for key in self.prediction_outputs},
                    users=batch["users"], labels=batch["labels"])

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
