"""SURGE's hyper-parameters: its own keys, checked on top of clsr_tf's shared schema."""

from clsr_tf.hparams import HParamsError, validate

# SURGE's own keys: name -> (default, type or allowed values, source). Every other key is
# checked by clsr_tf.hparams (shared data/train keys, layer sizes, L2, ...).
SURGE_SCHEMA = {
    "model_type": ("surge", ("surge",), "clsr_tf"),
    "metric_heads": (2, int, "paper 3.2.1"),
    "relative_threshold": (0.5, float, "paper 3.2.2 (epsilon)"),
    "pool_length": (10, int, "paper 3.3.2 (clusters)"),
    "surge_rnn": ("augru", ("augru", "gru"), "paper 3.4"),
    "pool_link_loss_weight": (0.01, float, "paper 3.3.2 (same mapping)"),
    "pool_entropy_loss_weight": (0.01, float, "paper 3.3.2 (single affiliation)"),
    "pool_position_loss_weight": (0.01, float, "paper 3.3.2 (relative position)"),
}


def surge_hparams(hparams, where="hparams"):
    """Validate SURGE hyper-parameters.

    Args:
        hparams (HParams or dict): SURGE keys (``SURGE_SCHEMA``) plus clsr_tf keys.
        where (str): Source named in error messages.

    Returns:
        dict: Every key of both schemas with a checked value.

    Raises:
        HParamsError: On an unknown key or a bad value.
    """
    values = dict(hparams if isinstance(hparams, dict) else hparams.values())
    own = {k: values.pop(k) for k in list(values) if k in SURGE_SCHEMA}
    hp = validate(values, where)
    for key, (default, kind, _) in SURGE_SCHEMA.items():
        value = own.get(key, default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        ok = value in kind if isinstance(kind, tuple) else (
            isinstance(value, kind) and not isinstance(value, bool))
        if not ok:
            raise HParamsError(f"{where}: '{key}' must be "
                               + (f"one of {list(kind)}" if isinstance(kind, tuple)
                                  else f"of type {kind.__name__}") + f", got {value!r}")
        hp[key] = value
    if not 0 < hp["relative_threshold"] <= 1:
        raise HParamsError(f"{where}: 'relative_threshold' must be in (0, 1]")
    if hp["metric_heads"] < 1 or hp["pool_length"] < 1:
        raise HParamsError(f"{where}: 'metric_heads' and 'pool_length' must be >= 1")
    return hp
