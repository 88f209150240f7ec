"""Hyper-parameters: the Recommenders YAML layout (data/model/train/info), validated.

Every key that CLSR reads is declared in ``SCHEMA`` with its default, its type and where
it comes from (the paper, the original TF1 release, or this port). ``load_hparams`` reads a
YAML through Recommenders' ``prepare_hparams`` so the result is the same ``HParams`` object
Recommenders models take, after checking every key and value here.
"""

import os

import yaml

_P = "paper"
_O = "original code"
_R = "recommenders"
_T = "clsr_tf"

# name: (default, type or tuple of allowed values, source)
SCHEMA = {
    # ---- data -------------------------------------------------------------------------
    "dataset": ("movielens", ("movielens", "taobao", "kuaishou", "synthetic"), _T),
    "raw_path": ("", str, _T),
    "raw_format": ("", ("", "movielens", "taobao", "kuaishou", "kuairand", "kuairec",
                        "synthetic"), _T),  # "": the data set's own (registry.RAW_FORMATS)
    "data_dir": ("", str, _T),
    "train_file": ("train_data", str, _R),
    "valid_file": ("valid_data", str, _R),
    "test_file": ("test_data", str, _R),
    "user_vocab": ("user_vocab.pkl", str, _R),
    "item_vocab": ("item_vocab.pkl", str, _R),
    "cate_vocab": ("category_vocab.pkl", str, _R),
    "user_vocab_size": (0, int, _T),
    "item_vocab_size": (0, int, _T),
    "cate_vocab_size": (0, int, _T),
    "valid_num_ngs": (4, int, _P),
    "test_num_ngs": (99, int, _P),
    "time_unit": ("recommenders", ("recommenders", "s", "ms"), _O),
    "max_seq_length": (50, int, _P),
    "min_seq_length": (1, int, _R),
    # ---- model ------------------------------------------------------------------------
    "model_type": ("clsr", ("clsr",), _R),
    "item_embedding_dim": (32, int, _O),
    "cate_embedding_dim": (8, int, _O),
    "user_embedding_dim": (40, int, _O),
    "hidden_size": (40, int, _O),
    "att_fcn_layer_sizes": ([80, 40], list, _O),
    "layer_sizes": ([100, 64], list, _P),
    "activation": (["relu", "relu"], list, _R),
    "enable_BN": (True, bool, _P),
    "dropout": ([0.0, 0.0], list, _R),
    "user_dropout": (False, bool, _R),
    "embedding_dropout": (0.0, float, _R),
    "init_method": ("tnormal", ("tnormal",), _R),
    "init_value": (0.01, float, _O),
    "sequential_model": ("time4lstm", ("time4lstm", "gru", "lstm"), _P),
    "rnn_variant": ("tf1", ("tf1", "cudnn"), _T),
    "attention_type": ("mlp", ("mlp", "inner_product"), _P),
    "interest_evolve": (True, bool, _O),
    "predict_long_short": (True, bool, _O),
    "fusion_time_position": ("last_column", ("last_column", "last_valid"), _T),
    "manual_alpha": (False, bool, _O),
    "manual_alpha_value": (0.5, float, _O),
    "contrastive_loss": ("triplet", ("bpr", "triplet"), _P),
    "contrastive_loss_weight": (0.1, float, _P),
    "contrastive_length_threshold": (5, int, _P),
    "contrastive_recent_k": (3, int, _P),
    "triplet_margin": (1.0, float, _O),
    "discrepancy_loss_weight": (0.01, float, _O),
    # ---- train ------------------------------------------------------------------------
    "loss": ("softmax", ("softmax",), _R),
    "optimizer": ("adam", ("adam",), _O),
    "learning_rate": (0.001, float, _P),
    "embed_l2": (1e-6, float, _P),
    "layer_l2": (1e-6, float, _P),
    "is_clip_norm": (1, int, _O),
    "max_grad_norm": (2.0, float, _O),
    "epochs": (10, int, _R),
    "batch_size": (500, int, _P),
    "train_num_ngs": (4, int, _P),
    "EARLY_STOP": (5, int, _O),
    "seed": (42, int, _T),
    "jit_compile": (False, bool, _T),
    "mixed_precision": ("", ("", "mixed_float16", "mixed_bfloat16"), _T),
    # ---- info -------------------------------------------------------------------------
    "write_tfevents": (True, bool, _R),
    "metrics": (["auc", "logloss"], list, _R),
    "pairwise_metrics": (["mean_mrr", "ndcg@2;4;6", "hit@2;4;6", "group_auc"], list, _R),
}

# Keys of Recommenders' defaults and YAMLs (and of the original CLSR runner) that CLSR does not
# read: accepted so those YAMLs load, and ignored.
_RECOMMENDERS_EXTRAS = {
    "use_entity", "use_context", "cross_activation", "attention_dropout", "load_saved_model",
    "fast_CIN_d", "use_Linear_part", "use_FM_part", "use_CIN_part", "use_DNN_part",
    "embed_l1", "layer_l1", "cross_l2", "cross_l1", "reg_kg", "lr_rs", "lr_kg",
    "kg_training_interval", "dtype", "slots", "cell", "method", "counterfactual_recent_k",
    "vector_alpha", "attn_loss_weight", "attention_size", "need_sample", "show_step",
    "save_model", "save_epoch", "weighted_metrics", "MODEL_DIR", "SUMMARIES_DIR",
}

SECTIONS = ("data", "model", "train", "info")

# Keys ``prepare_<option>`` pass ``<option>`` to ``clsr_tf.data.registry.prepare_dataset``.
PREPARE_PREFIX = "prepare_"


class HParamsError(ValueError):
    """An unknown hyper-parameter or a value of the wrong type."""


def _check_value(key, value, where):
    default, kind, _ = SCHEMA[key]
    if isinstance(kind, tuple):
        if value not in kind:
            raise HParamsError(f"{where}: '{key}' must be one of {list(kind)}, got {value!r}")
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            return float(value)
        except ValueError:
            pass
    if kind is int and isinstance(value, bool) and key == "is_clip_norm":
        return int(value)
    if kind is bool and value in (0, 1) and not isinstance(value, bool):
        return bool(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise HParamsError(
            f"{where}: '{key}' must be of type {kind.__name__}, got {value!r} "
            f"({type(value).__name__})"
        )
    if key in ("att_fcn_layer_sizes", "layer_sizes") and not all(
        isinstance(v, int) and v > 0 for v in value
    ):
        raise HParamsError(f"{where}: '{key}' must be a list of positive integers, got {value!r}")
    return value


def validate(values, where="hparams"):
    """Check keys and types and fill in defaults.

    Args:
        values (dict): Flat hyper-parameters (unknown Recommenders extras are allowed).
        where (str): Name of the source, used in error messages (e.g. the YAML path).

    Returns:
        dict: Every key of SCHEMA with a checked value, plus the accepted extras.

    Raises:
        HParamsError: On an unknown key or a value of the wrong type.
    """
    out = {k: (list(v[0]) if isinstance(v[0], list) else v[0]) for k, v in SCHEMA.items()}
    for key, value in values.items():
        if key in SCHEMA:
            out[key] = _check_value(key, value, where)
        elif key in _RECOMMENDERS_EXTRAS or key.startswith(PREPARE_PREFIX):
            out[key] = value
        else:
            raise HParamsError(f"{where}: unknown hyper-parameter '{key}'")
    n_layers = len(out["layer_sizes"])
    for key in ("activation", "dropout"):
        if len(out[key]) < max(n_layers, len(out["att_fcn_layer_sizes"])):
            raise HParamsError(
                f"{where}: '{key}' needs one entry per hidden layer "
                f"(layer_sizes {out['layer_sizes']}, att_fcn_layer_sizes "
                f"{out['att_fcn_layer_sizes']}), got {out[key]!r}"
            )
    if out["contrastive_recent_k"] < 1:
        raise HParamsError(f"{where}: 'contrastive_recent_k' must be >= 1")
    return out


def prepare_options(hp):
    """Data-preparation options given as ``prepare_<option>`` keys.

    Args:
        hp (dict): Validated hyper-parameters.

    Returns:
        dict: option -> value.
    """
    return {k[len(PREPARE_PREFIX):]: v for k, v in hp.items() if k.startswith(PREPARE_PREFIX)}


def read_yaml(path):
    """Read a Recommenders-layout YAML into a flat dict, checking its sections.

    Args:
        path (str): YAML file.

    Returns:
        dict: Flat key -> value.
    """
    with open(path) as f:
        config = yaml.safe_load(f) or {}
    flat = {}
    for section, entries in config.items():
        if section not in SECTIONS:
            raise HParamsError(f"{path}: unknown section '{section}' (expected {SECTIONS})")
        for key, value in (entries or {}).items():
            if key in flat:
                raise HParamsError(f"{path}: '{key}' is set in two sections")
            flat[key] = value
    return flat


def parse_override(text):
    """Parse one ``key=value`` command-line override with YAML typing.

    Args:
        text (str): e.g. ``"contrastive_loss=bpr"`` or ``"layer_sizes=[64, 32]"``.

    Returns:
        tuple: (key, value).
    """
    if "=" not in text:
        raise HParamsError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw)


def load_hparams(yaml_file=None, **overrides):
    """Load, validate and complete hyper-parameters into a Recommenders ``HParams``.

    Relative ``data_dir`` and ``raw_path`` resolve against the YAML's folder. The vocab
    paths resolve against ``data_dir``.

    Args:
        yaml_file (str): A YAML in the Recommenders data/model/train/info layout, or None.
        **overrides: Values that replace the YAML's.

    Returns:
        HParams: Recommenders' HParams object holding every key of SCHEMA.
    """
    from recommenders.models.deeprec.deeprec_utils import create_hparams

    where = yaml_file or "hparams"
    flat = read_yaml(yaml_file) if yaml_file else {}
    flat.update(overrides)
    values = validate(flat, where)
    base = os.path.dirname(os.path.abspath(yaml_file)) if yaml_file else os.getcwd()
    for key in ("data_dir", "raw_path"):
        if values[key] and not os.path.isabs(values[key]) and key not in overrides:
            values[key] = os.path.normpath(os.path.join(base, values[key]))
    return create_hparams(values)


def as_dict(hparams):
    """Return hyper-parameters as a validated plain dict.

    Args:
        hparams (HParams or dict): Recommenders HParams (from ``prepare_hparams`` or
            ``load_hparams``) or a dict.

    Returns:
        dict: Validated values (see ``validate``).
    """
    values = hparams if isinstance(hparams, dict) else dict(hparams.values())
    return validate(values)
