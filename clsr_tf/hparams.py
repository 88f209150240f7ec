"""Hyper-parameters: the Recommenders YAML layout (data/model/train/info), validated.

Every key that CLSR reads is declared in ``SCHEMA`` with its default, its type, where it
comes from (the paper, the original TF1 release, or this port) and the range of its values;
``CROSS_RULES`` relate keys to each other. ``load_hparams`` reads a YAML through Recommenders'
``create_hparams`` so the result is the same ``HParams`` object Recommenders models take, after
checking every key and value here. An error names the key and where its value came from: the
YAML file and line, ``--set KEY=VALUE``, or the override.
"""

import math
import os

import yaml

_P = "paper"
_O = "original code"
_R = "recommenders"
_T = "clsr_tf"


class Range:
    """The finite numbers between ``low`` and ``high`` (None: unbounded on that side).

    Args:
        low (float): Lower bound, or None.
        high (float): Upper bound, or None.
        low_open (bool): ``low`` itself is excluded.
        high_open (bool): ``high`` itself is excluded.
    """

    def __init__(self, low=None, high=None, low_open=False, high_open=False):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def __contains__(self, value):
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self):
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low}"
        return (f"in {'(' if self.low_open else '['}{self.low}, {self.high}"
                f"{')' if self.high_open else ']'}")


class ListOf:
    """A non-empty list whose entries have type ``kind`` (and lie in ``allowed``).

    Args:
        kind (type): Type of the entries (``int``, ``float`` or ``str``).
        allowed (Range): Range of numeric entries, or None.
    """

    def __init__(self, kind, allowed=None):
        self.kind, self.allowed = kind, allowed

    def __str__(self):
        return (f"a non-empty list of {self.kind.__name__}"
                + (f" values {self.allowed}" if self.allowed else ""))


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_1 = Range(1)
FRACTION = Range(0, 1, high_open=True)  # a dropout rate: 1 would drop everything
UNIT = Range(0, 1)

# name: (default, type or tuple of allowed values, source, Range of a number or None)
SCHEMA = {
    # ---- data -------------------------------------------------------------------------
    "dataset": ("movielens", ("movielens", "taobao", "kuaishou", "synthetic"), _T, None),
    "raw_path": ("", str, _T, None),
    "raw_format": ("", ("", "movielens", "taobao", "kuaishou", "kuairand", "kuairec",
                        "synthetic"), _T, None),  # "": the data set's own (registry.RAW_FORMATS)
    "data_dir": ("", str, _T, None),
    "train_file": ("train_data", str, _R, None),
    "valid_file": ("valid_data", str, _R, None),
    "test_file": ("test_data", str, _R, None),
    "user_vocab": ("user_vocab.pkl", str, _R, None),
    "item_vocab": ("item_vocab.pkl", str, _R, None),
    "cate_vocab": ("category_vocab.pkl", str, _R, None),
    "user_vocab_size": (0, int, _T, NON_NEGATIVE),  # 0: read from the vocab file
    "item_vocab_size": (0, int, _T, NON_NEGATIVE),
    "cate_vocab_size": (0, int, _T, NON_NEGATIVE),
    "valid_num_ngs": (4, int, _P, AT_LEAST_1),
    "test_num_ngs": (99, int, _P, AT_LEAST_1),
    "time_unit": ("recommenders", ("recommenders", "s", "ms"), _O, None),
    "max_seq_length": (50, int, _P, AT_LEAST_1),
    "min_seq_length": (1, int, _R, NON_NEGATIVE),
    # ---- model ------------------------------------------------------------------------
    "model_type": ("clsr", ("clsr",), _R, None),
    "item_embedding_dim": (32, int, _O, AT_LEAST_1),
    "cate_embedding_dim": (8, int, _O, AT_LEAST_1),
    "user_embedding_dim": (40, int, _O, AT_LEAST_1),
    "hidden_size": (40, int, _O, AT_LEAST_1),
    "att_fcn_layer_sizes": ([80, 40], ListOf(int, AT_LEAST_1), _O, None),
    "layer_sizes": ([100, 64], ListOf(int, AT_LEAST_1), _P, None),
    "activation": (["relu", "relu"], ListOf(str), _R, None),
    "enable_BN": (True, bool, _P, None),
    "dropout": ([0.0, 0.0], ListOf(float, FRACTION), _R, None),
    "user_dropout": (False, bool, _R, None),
    "embedding_dropout": (0.0, float, _R, FRACTION),
    "init_method": ("tnormal", ("tnormal",), _R, None),
    "init_value": (0.01, float, _O, POSITIVE),
    "sequential_model": ("time4lstm", ("time4lstm", "gru", "lstm"), _P, None),
    "rnn_variant": ("tf1", ("tf1", "cudnn"), _T, None),
    "attention_type": ("mlp", ("mlp", "inner_product"), _P, None),
    "interest_evolve": (True, bool, _O, None),
    "predict_long_short": (True, bool, _O, None),
    "fusion_time_position": ("last_column", ("last_column", "last_valid"), _T, None),
    "manual_alpha": (False, bool, _O, None),
    "manual_alpha_value": (0.5, float, _O, UNIT),
    "contrastive_loss": ("triplet", ("bpr", "triplet"), _P, None),
    "contrastive_loss_weight": (0.1, float, _P, NON_NEGATIVE),
    "contrastive_length_threshold": (5, int, _P, NON_NEGATIVE),
    "contrastive_recent_k": (3, int, _P, AT_LEAST_1),
    "triplet_margin": (1.0, float, _O, NON_NEGATIVE),
    "discrepancy_loss_weight": (0.01, float, _O, NON_NEGATIVE),
    # ---- train ------------------------------------------------------------------------
    "loss": ("softmax", ("softmax",), _R, None),
    "optimizer": ("adam", ("adam",), _O, None),
    "learning_rate": (0.001, float, _P, POSITIVE),
    "embed_l2": (1e-6, float, _P, NON_NEGATIVE),
    "layer_l2": (1e-6, float, _P, NON_NEGATIVE),
    "is_clip_norm": (1, int, _O, UNIT),
    "max_grad_norm": (2.0, float, _O, POSITIVE),
    "epochs": (10, int, _R, AT_LEAST_1),
    "batch_size": (500, int, _P, Range(2)),  # in-batch negatives come from the other lines
    "train_num_ngs": (4, int, _P, AT_LEAST_1),
    "EARLY_STOP": (5, int, _O, NON_NEGATIVE),  # 0: no early stopping
    "seed": (42, int, _T, NON_NEGATIVE),
    "jit_compile": (False, bool, _T, None),
    "mixed_precision": ("", ("", "mixed_float16", "mixed_bfloat16"), _T, None),
    # ---- info -------------------------------------------------------------------------
    "write_tfevents": (True, bool, _R, None),
    "metrics": (["auc", "logloss"], ListOf(str), _R, None),
    "pairwise_metrics": (["mean_mrr", "ndcg@2;4;6", "hit@2;4;6", "group_auc"], ListOf(str), _R,
                         None),
}

# Epoch e is seeded with seed * SEED_STRIDE + e (CLSRSequentialModel.fit); numpy's seeds are
# below 2**32.
SEED_STRIDE = 1000


def _one_per_hidden_layer(hp):
    need = max(len(hp["layer_sizes"]), len(hp["att_fcn_layer_sizes"]))
    for key in ("activation", "dropout"):
        if len(hp[key]) < need:
            return (f"'{key}' needs one entry per hidden layer (layer_sizes {hp['layer_sizes']}, "
                    f"att_fcn_layer_sizes {hp['att_fcn_layer_sizes']}), got {hp[key]!r}")
    return None


def _recent_k_within_history(hp):
    if hp["contrastive_recent_k"] > hp["max_seq_length"]:
        return (f"'contrastive_recent_k' ({hp['contrastive_recent_k']}) must be <= "
                f"'max_seq_length' ({hp['max_seq_length']}): the short-term proxy averages the "
                "last k history items")
    return None


def _length_threshold_below_history(hp):
    if hp["contrastive_loss_weight"] > 0 and \
            hp["contrastive_length_threshold"] >= hp["max_seq_length"]:
        return (f"'contrastive_length_threshold' ({hp['contrastive_length_threshold']}) must be "
                f"< 'max_seq_length' ({hp['max_seq_length']}) while 'contrastive_loss_weight' "
                "> 0: no history would be longer, and the contrastive loss would be 0")
    return None


def _min_within_max_length(hp):
    if hp["min_seq_length"] > hp["max_seq_length"]:
        return (f"'min_seq_length' ({hp['min_seq_length']}) must be <= 'max_seq_length' "
                f"({hp['max_seq_length']}): every line would be skipped")
    return None


def _epoch_seeds_fit(hp):
    if hp["seed"] * SEED_STRIDE + hp["epochs"] >= 2 ** 32:
        return (f"'seed' * {SEED_STRIDE} + 'epochs' must be below 2**32 (epoch e is seeded with "
                f"seed * {SEED_STRIDE} + e), got seed {hp['seed']}, epochs {hp['epochs']}")
    return None


def _one_interest_size(hp):
    sizes = (hp["item_embedding_dim"] + hp["cate_embedding_dim"], hp["user_embedding_dim"],
             hp["hidden_size"])
    if len(set(sizes)) > 1:
        return (f"'item_embedding_dim' + 'cate_embedding_dim' ({sizes[0]}), "
                f"'user_embedding_dim' ({sizes[1]}) and 'hidden_size' ({sizes[2]}) must be "
                "equal: the user embeddings query the history embeddings and the RNN states, "
                "and the fusion mixes the two interests")
    return None


# Rules between keys: (keys involved, check(hp) -> the problem or None).
CROSS_RULES = (
    (("activation", "dropout", "layer_sizes", "att_fcn_layer_sizes"), _one_per_hidden_layer),
    (("contrastive_recent_k", "max_seq_length"), _recent_k_within_history),
    (("contrastive_length_threshold", "max_seq_length", "contrastive_loss_weight"),
     _length_threshold_below_history),
    (("min_seq_length", "max_seq_length"), _min_within_max_length),
    (("seed", "epochs"), _epoch_seeds_fit),
)
# CLSR's own rules (other models validate the shared keys without them).
CLSR_RULES = (
    (("item_embedding_dim", "cate_embedding_dim", "user_embedding_dim", "hidden_size"),
     _one_interest_size),
)

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

# Keys that may differ between a run and its resumption (``clsr_tf.run_folder``): the length
# of training and the logs; and the keys CLSR ignores. Every other key must stay the same.
RESUMABLE_KEYS = frozenset({"epochs", "EARLY_STOP", "write_tfevents"})
IGNORED_KEYS = frozenset(_RECOMMENDERS_EXTRAS)

SECTIONS = ("data", "model", "train", "info")

# Keys ``prepare_<option>`` pass ``<option>`` to ``clsr_tf.data.registry.prepare_dataset``.
PREPARE_PREFIX = "prepare_"


class HParamsError(ValueError):
    """An unknown hyper-parameter, a value of the wrong type or out of range, or a bad YAML."""


def check_value(key, value, where, schema=SCHEMA):
    """Check one value against its schema entry (type, allowed values, range).

    Args:
        key (str): A key of ``schema``.
        value: The value.
        where (str): Where the value came from (named in the error).
        schema (dict): ``SCHEMA`` or a model's own schema of the same layout.

    Returns:
        The value, converted where the type allows it (int -> float, YAML 1.1 strings such
        as ``1e-4`` -> float, 0/1 -> bool).

    Raises:
        HParamsError: On a bad value.
    """
    _, kind, _, allowed = schema[key]
    if isinstance(kind, tuple):
        if value not in kind:
            raise HParamsError(f"{where}: '{key}' must be one of {list(kind)}, got {value!r}")
        return value
    if isinstance(kind, ListOf):
        try:
            if isinstance(value, list) and value:
                return [_typed(key, v, kind.kind, kind.allowed, where) for v in value]
        except HParamsError:
            pass
        raise HParamsError(f"{where}: '{key}' must be {kind}, got {value!r}")
    if kind is int and isinstance(value, bool) and key == "is_clip_norm":
        value = int(value)
    if kind is bool and value in (0, 1) and not isinstance(value, bool):
        return bool(value)
    return _typed(key, value, kind, allowed, where)


def _typed(key, value, kind, allowed, where):
    """``value`` as ``kind`` (int -> float, YAML 1.1 strings -> float) within ``allowed``."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        raise HParamsError(f"{where}: '{key}' must be of type {kind.__name__}, got {value!r} "
                           f"({type(value).__name__})")
    if allowed is not None and value not in allowed:
        raise HParamsError(f"{where}: '{key}' must be {allowed}, got {value!r}")
    return value


def _source(origins, where, keys):
    """Where the values of ``keys`` came from, each source once."""
    return ", ".join(dict.fromkeys(origins.get(k, where) for k in keys))


def validate(values, where="hparams", origins=None, model_rules=CLSR_RULES):
    """Check keys, types, ranges and the rules between keys, and fill in defaults.

    Args:
        values (dict): Flat hyper-parameters (unknown Recommenders extras are allowed).
        where (str): Name of the source, used in error messages (e.g. the YAML path).
        origins (dict): key -> its own source (e.g. ``--set KEY=VALUE`` or ``FILE:LINE``),
            named instead of ``where``.
        model_rules (tuple): The model's own rules, checked after ``CROSS_RULES`` (default:
            CLSR's).

    Returns:
        dict: Every key of SCHEMA with a checked value, plus the accepted extras.

    Raises:
        HParamsError: On an unknown key, a value of the wrong type or out of range, or
            values that break a rule of ``CROSS_RULES`` or ``model_rules``.
    """
    origins = origins or {}
    out = {k: (list(v[0]) if isinstance(v[0], list) else v[0]) for k, v in SCHEMA.items()}
    for key, value in values.items():
        if key in SCHEMA:
            out[key] = check_value(key, value, origins.get(key, where))
        elif key in _RECOMMENDERS_EXTRAS or (isinstance(key, str)
                                             and key.startswith(PREPARE_PREFIX)):
            out[key] = value
        else:
            raise HParamsError(f"{origins.get(key, where)}: unknown hyper-parameter '{key}'")
    for keys, rule in CROSS_RULES + tuple(model_rules):
        problem = rule(out)
        if problem:
            raise HParamsError(f"{_source(origins, where, keys)}: {problem}")
    return out


def prepare_options(hp):
    """Data-preparation options given as ``prepare_<option>`` keys.

    Args:
        hp (dict): Validated hyper-parameters.

    Returns:
        dict: option -> value.
    """
    return {k[len(PREPARE_PREFIX):]: v for k, v in hp.items() if k.startswith(PREPARE_PREFIX)}


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (instead of the last
    winning)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: the base class says so
                break
            if first != key_node.start_mark.line + 1:
                raise HParamsError(f"{key_node.start_mark.name}:{key_node.start_mark.line + 1}:"
                                   f" '{key}' is given twice (first on line {first})")
        return super().construct_mapping(node, deep)


def _load_yaml(text, name, lines=True):
    """Parse YAML text; returns (value, top node). Errors name ``name`` (and the line)."""
    loader = _UniqueKeyLoader(text)
    loader.name = name
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark and lines else ""
        raise HParamsError(f"{name}{line}: not valid YAML: {err.problem or err.context}") \
            from None
    except yaml.YAMLError as err:
        raise HParamsError(f"{name}: not valid YAML: {err}") from None
    finally:
        loader.dispose()


def read_yaml_lines(path):
    """Read a Recommenders-layout YAML into a flat dict and the line of each key.

    Args:
        path (str): YAML file.

    Returns:
        tuple: (flat key -> value, key -> ``FILE:LINE``).

    Raises:
        HParamsError: Not UTF-8 text, not valid YAML, not a mapping of sections, an unknown
            section, or a key given twice.
    """
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except UnicodeDecodeError as err:
        raise HParamsError(f"{path}: not UTF-8 text (byte {err.start})") from None
    config, node = _load_yaml(text, path)
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise HParamsError(f"{path}: expected a mapping of the sections {list(SECTIONS)} "
                           f"(got {type(config).__name__})")
    flat, lines = {}, {}
    for section_node, entries_node in node.value if config else ():
        section, where = section_node.value, f"{path}:{section_node.start_mark.line + 1}"
        if section not in SECTIONS:
            raise HParamsError(f"{where}: unknown section '{section}' (expected {SECTIONS})")
        entries = config[section]
        if entries is not None and not isinstance(entries, dict):
            raise HParamsError(f"{where}: section '{section}' must be a mapping of key: value "
                               f"(got {type(entries).__name__})")
        line_of = {k.value: k.start_mark.line + 1 for k, _ in entries_node.value} \
            if entries else {}
        for key, value in (entries or {}).items():
            here = f"{path}:{line_of.get(str(key), section_node.start_mark.line + 1)}"
            if key in flat:
                raise HParamsError(f"{here}: '{key}' is set in two sections (also {lines[key]})")
            flat[key], lines[key] = value, here
    return flat, lines


def read_yaml(path):
    """Read a Recommenders-layout YAML into a flat dict, checking its sections.

    Args:
        path (str): YAML file.

    Returns:
        dict: Flat key -> value.

    Raises:
        HParamsError: See ``read_yaml_lines``.
    """
    return read_yaml_lines(path)[0]


def parse_override(text):
    """Parse one ``key=value`` command-line override with YAML typing.

    Args:
        text (str): e.g. ``"contrastive_loss=bpr"`` or ``"layer_sizes=[64, 32]"``.

    Returns:
        tuple: (key, value).

    Raises:
        HParamsError: No ``=``, an empty key, or a value that is not YAML.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise HParamsError(f"--set {text}: expected KEY=VALUE")
    return key.strip(), _load_yaml(raw, f"--set {text}", lines=False)[0]


def parse_overrides(texts):
    """Parse ``--set`` overrides; each key remembers the text it came from.

    Args:
        texts (list): ``key=value`` strings (a later one wins).

    Returns:
        tuple: (key -> value, key -> ``--set key=value``).
    """
    values, origins = {}, {}
    for text in texts:
        key, values[key] = parse_override(text)
        origins[key] = f"--set {text}"
    return values, origins


def load_hparams(yaml_file=None, origins=None, model_rules=CLSR_RULES, **overrides):
    """Load, validate and complete hyper-parameters into a Recommenders ``HParams``.

    Relative ``data_dir`` and ``raw_path`` resolve against the YAML's folder. The vocab
    paths resolve against ``data_dir``.

    Args:
        yaml_file (str): A YAML in the Recommenders data/model/train/info layout, or None.
        origins (dict): key of ``overrides`` -> where it came from (e.g. ``--set k=v``),
            named in errors (default: ``override key=value``).
        model_rules (tuple): The model's own rules (see ``validate``).
        **overrides: Values that replace the YAML's.

    Returns:
        HParams: Recommenders' HParams object holding every key of SCHEMA.

    Raises:
        HParamsError: See ``read_yaml_lines`` and ``validate``.
    """
    from recommenders.models.deeprec.deeprec_utils import create_hparams

    where = yaml_file or "hparams"
    flat, lines = read_yaml_lines(yaml_file) if yaml_file else ({}, {})
    flat.update(overrides)
    lines.update({k: (origins or {}).get(k, f"override {k}={v!r}") for k, v in overrides.items()})
    values = validate(flat, where, lines, model_rules)
    base = os.path.dirname(os.path.abspath(yaml_file)) if yaml_file else os.getcwd()
    for key in ("data_dir", "raw_path"):
        if values[key] and not os.path.isabs(values[key]) and key not in overrides:
            values[key] = os.path.normpath(os.path.join(base, values[key]))
    return create_hparams(values)


def as_dict(hparams, model_rules=CLSR_RULES):
    """Return hyper-parameters as a validated plain dict.

    Args:
        hparams (HParams or dict): Recommenders HParams (from ``prepare_hparams`` or
            ``load_hparams``) or a dict.
        model_rules (tuple): The model's own rules (see ``validate``).

    Returns:
        dict: Validated values (see ``validate``).
    """
    values = hparams if isinstance(hparams, dict) else dict(hparams.values())
    return validate(values, model_rules=model_rules)
