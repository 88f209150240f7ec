"""SURGE's hyper-parameters: its own keys, checked on top of clsr_tf's shared schema."""

from clsr_tf.hparams import AT_LEAST_1, NON_NEGATIVE, Range, check_value, validate

# SURGE's own keys: name -> (default, type or allowed values, source, Range or None), as
# clsr_tf.hparams.SCHEMA. Every other key is checked by clsr_tf.hparams (shared data/train
# keys, layer sizes, L2, ...).
SURGE_SCHEMA = {
    "model_type": ("surge", ("surge",), "clsr_tf", None),
    "metric_heads": (2, int, "paper 3.2.1", AT_LEAST_1),
    "relative_threshold": (0.5, float, "paper 3.2.2 (epsilon)", Range(0, 1, low_open=True)),
    "pool_length": (10, int, "paper 3.3.2 (clusters)", AT_LEAST_1),
    "surge_rnn": ("augru", ("augru", "gru"), "paper 3.4", None),
    "pool_link_loss_weight": (0.01, float, "paper 3.3.2 (same mapping)", NON_NEGATIVE),
    "pool_entropy_loss_weight": (0.01, float, "paper 3.3.2 (single affiliation)",
                                 NON_NEGATIVE),
    "pool_position_loss_weight": (0.01, float, "paper 3.3.2 (relative position)",
                                  NON_NEGATIVE),
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
    hp = validate(values, where, model_rules=())
    for key, (default, *_) in SURGE_SCHEMA.items():
        hp[key] = check_value(key, own.get(key, default), where, SURGE_SCHEMA)
    return hp
