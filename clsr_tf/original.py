"""Bring weights of the original TF1 CLSR release (tsinghua-fib-lab/CLSR) onto CLSRModel.

The original names its variables by TF1 scope, e.g.
``sequential/clsr/long_term/attention_fcn/att_fcn/nn_part/w_nn_layer0``. ``load_original_weights``
reads such weights from a TF1 checkpoint, an ``.npz`` (keys optionally prefixed ``var/``, as in
shared/golden/) or a dict, and assigns each to the matching Keras variable, converting the
recurrent cells' layouts:

- TF1 ``GRUCell``: ``gates/kernel`` [D+H, 2H] (reset, update) and ``candidate/kernel`` [D+H, H]
  become Keras ``GRU(reset_after=False)`` ``kernel`` [D, 3H] and ``recurrent_kernel`` [H, 3H]
  in Keras' order (update, reset, candidate); biases likewise.
- TF1 ``LSTMCell``: ``kernel`` [D+H, 4H] in order (i, j, f, o) becomes Keras (i, f, j, o), and
  its run-time ``forget_bias`` 1.0 is folded into the forget-gate bias.
- Time4LSTM, attention matrices, MLPs and embeddings keep their shapes.

The base class's unused ``sequential/embedding/user_embedding`` table is ignored.
"""

import numpy as np

ROOT = "sequential/"
IGNORED = ("sequential/embedding/user_embedding",)


def _mlp_map(mlp, scope):
    pairs = {}
    for i, dense in enumerate(mlp.hidden):
        pairs[f"{scope}/w_nn_layer{i}"] = (dense.kernel, None)
        pairs[f"{scope}/b_nn_layer{i}"] = (dense.bias, None)
        if mlp.enable_bn:
            bn = mlp.norms[i]
            name = f"{scope}/batch_normalization" + (f"_{i}" if i else "")
            for attr in ("gamma", "beta", "moving_mean", "moving_variance"):
                pairs[f"{name}/{attr}"] = (getattr(bn, attr), None)
    pairs[f"{scope}/w_nn_output"] = (mlp.out.kernel, None)
    pairs[f"{scope}/b_nn_output"] = (mlp.out.bias, None)
    return pairs


def _attention_map(pool, scope):
    pairs = {f"{scope}/attention_mat": (pool.attention_mat, None)}
    if pool.mlp is not None:
        pairs.update(_mlp_map(pool.mlp, f"{scope}/att_fcn/nn_part"))
    return pairs


def gru_from_tf1(gates_kernel, gates_bias, candidate_kernel, candidate_bias):
    """Convert TF1 GRUCell weights to Keras ``GRU(reset_after=False)`` weights.

    Args:
        gates_kernel (np.ndarray): [D+H, 2H], columns (reset, update).
        gates_bias (np.ndarray): [2H].
        candidate_kernel (np.ndarray): [D+H, H].
        candidate_bias (np.ndarray): [H].

    Returns:
        tuple: (kernel [D, 3H], recurrent_kernel [H, 3H], bias [3H]), order (z, r, h).
    """
    h = candidate_bias.shape[0]
    d = gates_kernel.shape[0] - h
    reset, update = gates_kernel[:, :h], gates_kernel[:, h:]
    full = np.concatenate([update, reset, candidate_kernel], 1)
    bias = np.concatenate([gates_bias[h:], gates_bias[:h], candidate_bias])
    return full[:d], full[d:], bias


def lstm_from_tf1(kernel, bias, forget_bias=1.0):
    """Convert TF1 LSTMCell weights to Keras ``LSTM`` weights.

    Args:
        kernel (np.ndarray): [D+H, 4H], columns (i, j, f, o).
        bias (np.ndarray): [4H].
        forget_bias (float): The TF1 cell's run-time forget bias.

    Returns:
        tuple: (kernel [D, 4H], recurrent_kernel [H, 4H], bias [4H]), order (i, f, c, o).
    """
    h = bias.shape[0] // 4
    d = kernel.shape[0] - h
    order = lambda x: np.concatenate([x[..., :h], x[..., 2 * h:3 * h], x[..., h:2 * h],  # noqa
                                      x[..., 3 * h:]], -1)
    full = order(kernel)
    b = order(bias).copy()
    b[h:2 * h] += forget_bias
    return full[:d], full[d:], b


def _rnn_targets(layer, scope, kind):
    """(names, converter, targets) for one recurrent layer."""
    cell = layer.cell
    if kind == "time4lstm":
        names = [f"{scope}/time4lstm_cell/{w.name.split('/')[-1].split(':')[0]}"
                 for w in cell.weights]
        return [(name, None, w) for name, w in zip(names, cell.weights)]
    targets = (cell.kernel, cell.recurrent_kernel, cell.bias)
    if kind == "gru":
        if getattr(cell, "reset_after", False):
            raise ValueError("TF1 GRU weights map only onto rnn_variant='tf1' (reset_after=False)")
        names = tuple(f"{scope}/gru_cell/{p}" for p in
                      ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"))
        return [(names, gru_from_tf1, targets)]
    names = (f"{scope}/lstm_cell/kernel", f"{scope}/lstm_cell/bias")
    return [(names, lstm_from_tf1, targets)]


def original_variable_map(model):
    """List how each original variable reaches the model.

    Args:
        model (CLSRModel): A built model.

    Returns:
        list: Entries ``(names, converter, targets)``: ``names`` is one original name (and
        ``converter`` None, ``targets`` one variable) or a tuple of names that ``converter``
        turns into the tuple ``targets``.
    """
    hp = model.hp
    clsr = ROOT + "clsr"
    entries = []
    simple = {
        ROOT + "embedding/item_embedding": (model.item_embedding.embeddings, None),
        ROOT + "embedding/cate_embedding": (model.cate_embedding.embeddings, None),
        ROOT + "embedding/user_long_embedding": (model.user_long_embedding.embeddings, None),
        ROOT + "embedding/user_short_embedding": (model.user_short_embedding.embeddings, None),
    }
    simple.update(_attention_map(model.long_attention, f"{clsr}/long_term/attention_fcn"))
    simple.update(_attention_map(model.short_attention, f"{clsr}/short_term/attention_fcn"))
    simple.update(_mlp_map(model.tower, ROOT + "logit_fcn/nn_part"))
    if model.fusion.mlp is not None:
        simple.update(_mlp_map(model.fusion.mlp, f"{clsr}/fcn_alpha/nn_part"))
    entries.extend((name, None, var) for name, (var, _) in simple.items())
    if model.interest_evolution is not None:
        entries += _rnn_targets(model.interest_evolution,
                                f"{clsr}/short_term/short_term_intention", "gru")
    kind = hp["sequential_model"]
    scope = {"time4lstm": "time4lstm", "gru": "simple_gru", "lstm": "simple_lstm"}[kind]
    entries += _rnn_targets(model.sequence_encoder, f"{clsr}/short_term/{scope}", kind)
    if model.fusion.gru is not None:
        entries += _rnn_targets(model.fusion.gru, f"{clsr}/causal2/causal2", "gru")
    return entries


def read_original_weights(source):
    """Read original weights into a dict name -> array.

    Args:
        source (str or dict): A TF1 checkpoint prefix, an ``.npz`` file, or a dict.

    Returns:
        dict: Original variable name (no ``var/`` prefix, no ``:0``) -> np.ndarray.
    """
    if isinstance(source, dict):
        return {k.split(":")[0]: np.asarray(v) for k, v in source.items()}
    if str(source).endswith(".npz"):
        with np.load(source) as data:
            return {k[len("var/"):] if k.startswith("var/") else k: data[k]
                    for k in data.files if not k.startswith(("input/", "out/", "train_mode/"))}
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(source))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def load_original_weights(model, source, strict=True):
    """Assign original TF1 weights to a built CLSRModel.

    Args:
        model (CLSRModel): The model; call ``model.build_from_shape(L)`` first.
        source (str or dict): See ``read_original_weights``.
        strict (bool): Fail when a model variable has no source or a source variable of
            the model's scopes is left unused (optimizer slots and ``global_step`` aside).

    Returns:
        list: Names of the source variables that were not used.
    """
    weights = read_original_weights(source)
    used = set()
    for names, convert, targets in original_variable_map(model):
        group = (names,) if isinstance(names, str) else names
        missing = [n for n in group if n not in weights]
        if missing:
            raise KeyError(f"original weights lack {missing[0]!r}")
        arrays = [weights[n] for n in group]
        values = convert(*arrays) if convert else arrays
        variables = targets if isinstance(targets, tuple) else (targets,)
        for var, value in zip(variables, values):
            if tuple(var.shape) != tuple(value.shape):
                raise ValueError(f"{group[0]}: shape {tuple(value.shape)} does not fit "
                                 f"{var.name} {tuple(var.shape)}")
            var.assign(value.astype(var.dtype.as_numpy_dtype))
        used.update(group)
    unused = sorted(n for n in weights
                    if n not in used and n not in IGNORED and n.startswith(ROOT)
                    and "/Adam" not in n)
    if strict and unused:
        raise ValueError(f"original weights not used by this configuration: {unused}")
    return unused
