"""Train and evaluate one Recommenders sequential model, in a process of its own.

``python -m clsr_tf.baselines.recommenders_runner --config CONFIG.json --output RESULT.json``

Importing a Recommenders deeprec model turns eager execution off for the whole process
(shared/DESIGN.md section 6), so ``clsr_tf.compare`` runs each of them through this module in
a subprocess. This module imports no model at import time: the parent may import it for
``build_hparams``.

The model trains with its own graph, iterator and ``train`` step, one epoch at a time; after
each epoch the validation file is scored through the model's ``eval`` and
``clsr_tf.evaluation.evaluate``, and the best epoch by the paper's GAUC is kept (a TF1
checkpoint) and scores the test file. Valid and test lines are read with the data set's
``min_seq_length`` whatever the model trains with, so every model scores the same lines.
With ``"task": "full_ranking"`` the runner instead restores a finished run's best epoch and
ranks each test positive against the whole catalogue through the same ``eval``.
"""

import argparse
import importlib
import itertools
import json
import os
import random
import sys
import time
import traceback

import numpy as np

from clsr_tf.baselines import RECOMMENDERS_MODELS
from clsr_tf.files import write_atomic
from clsr_tf.significance import SCORES_FILE, save_scores

# Test positives whose candidate lines are scored together in full ranking (with MovieLens'
# 2,245 items about 72k lines): the unit of the iterator's cache entries and of progress.
FULL_RANKING_CHUNK = 32
# Keys of the shared hparams that every baseline takes over (same data, same protocol).
PROTOCOL_KEYS = ("max_seq_length", "batch_size", "train_num_ngs", "epochs", "EARLY_STOP",
                 "metrics", "pairwise_metrics")


def use_legacy_keras():
    """Make ``tf.keras`` Keras 2 for Recommenders' TF1-style models; call before TensorFlow loads.

    From TensorFlow 2.16 on, ``tf.keras`` is Keras 3 unless ``TF_USE_LEGACY_KERAS=1``; this sets
    it there (unless the caller set it). On 2.15 ``tf.keras`` is Keras 2 already, and the
    variable would switch it to the separate tf-keras package, so it is left unset. The version
    is read from the package metadata, without importing TensorFlow.
    """
    from importlib import metadata

    for package in ("tensorflow", "tensorflow-cpu"):
        try:
            version = tuple(int(p) for p in metadata.version(package).split(".")[:2])
        except (metadata.PackageNotFoundError, ValueError):
            continue
        if version >= (2, 16):
            os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        return


def build_hparams(model_hparams, shared, vocab_paths, model_dir):
    """Complete a baseline's Recommenders hparams from the compared data set.

    Args:
        model_hparams (dict): Flat keys of ``hparams/baselines/<model>.yaml`` (+ overrides).
        shared (dict): Validated shared hyper-parameters (``PROTOCOL_KEYS`` are taken).
        vocab_paths (dict): ``user_vocab``, ``item_vocab``, ``cate_vocab`` -> absolute path.
        model_dir (str): Folder for the model's checkpoints and summaries.

    Returns:
        dict: Flat Recommenders hyper-parameters.
    """
    hp = dict(model_hparams, **vocab_paths, **{k: shared[k] for k in PROTOCOL_KEYS})
    hp.update(need_sample=True, save_model=False, write_tfevents=False,
              MODEL_DIR=os.path.join(model_dir, "checkpoints", ""),
              SUMMARIES_DIR=os.path.join(model_dir, "summaries", ""))
    return hp


def load_classes(name):
    """Import a model class and its iterator class (installs the RNN shim where needed).

    Args:
        name (str): A key of ``clsr_tf.baselines.RECOMMENDERS_MODELS``.

    Returns:
        tuple: (model class, iterator class).
    """
    spec = RECOMMENDERS_MODELS[name]
    if spec.needs_shim:
        from clsr_tf.baselines.compat import install_legacy_rnn_shim

        install_legacy_rnn_shim()
    model_cls = getattr(importlib.import_module(spec.module), spec.cls)
    module, cls = spec.iterator.rsplit(".", 1)
    return model_cls, getattr(importlib.import_module(module), cls)


def seeded(iterator_cls, seed):
    """An iterator creator that first sets the graph-level seed of the model's graph.

    Recommenders' ``BaseModel`` calls ``tf.compat.v1.set_random_seed`` on the default graph,
    not on the graph the model builds in, so its unseeded initializers and dropout differ
    from run to run. The iterator is created in the model's graph before any variable.

    Args:
        iterator_cls (type): The model's iterator class.
        seed (int): Graph-level seed.

    Returns:
        callable: ``(hparams, graph) -> iterator``, as the models call it.
    """
    def create(hparams, graph, *args, **kwargs):
        graph.seed = seed
        return iterator_cls(hparams, graph, *args, **kwargs)

    return create


def count_parameters(model):
    """Number of trainable parameters of a Recommenders model's graph.

    Args:
        model (SequentialBaseModel): A built model.

    Returns:
        int: Parameter count.
    """
    import tensorflow as tf

    variables = model.graph.get_collection(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES)
    return int(sum(np.prod(v.shape.as_list()) for v in variables))


def score_file(model, filename, min_seq_length, empty_ok=False):
    """Score every line of a file with the model's ``eval``.

    Args:
        model (SequentialBaseModel): A built model.
        filename (str): A Recommenders sequential file.
        min_seq_length (int): Lines with shorter histories are skipped.
        empty_ok (bool): Return empty arrays when no line is left (else ValueError).

    Returns:
        dict: ``users``, ``labels``, ``preds`` as 1-D numpy arrays.
    """
    parts = {"users": [], "labels": [], "preds": []}
    for feed in model.iterator.load_data_from_file(filename, min_seq_length=min_seq_length,
                                                   batch_num_ngs=0):
        if not feed:
            continue
        users = np.asarray(feed[model.iterator.users]).ravel()
        preds, labels = model.eval(model.sess, feed)
        for key, value in (("users", users), ("labels", labels), ("preds", preds)):
            parts[key].append(np.asarray(value).ravel())
    if not parts["preds"] and not empty_ok:
        raise ValueError(f"{filename}: no lines to score")
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}


def evaluate_file(model, config, split):
    """Metrics of one split (``valid`` or ``test``) through ``clsr_tf.evaluation``.

    Args:
        model (SequentialBaseModel): A built model.
        config (dict): The run configuration.
        split (str): ``valid`` or ``test``.

    Returns:
        tuple: (metrics dict, the scored lines of ``score_file``).
    """
    from clsr_tf.evaluation import evaluate

    s = score_file(model, config[f"{split}_file"], config["eval_min_seq_length"])
    hp = model.hparams
    return evaluate(s["users"], s["labels"], s["preds"], config[f"{split}_num_ngs"],
                    hp.metrics, hp.pairwise_metrics), s


def best_model_path(config):
    """The TF1 checkpoint prefix of a run's best epoch."""
    return os.path.join(config["model_dir"], "best_model", "model")


def parsed_group(iterator, group):
    """What the iterator's ``parser_one_line`` gives for each line of a candidate group.

    The lines of a group (``clsr_tf.ranking.candidate_groups``) differ in label, item and
    category only, so the positive line is parsed and its user, history and times are shared
    by the others (read-only in the iterator). Parsing every line was two thirds of
    a baseline's full ranking (benchmarks/candidate_parsing.py).

    Args:
        iterator (SequentialIterator): The model's iterator (its vocabularies).
        group (str): The newline-terminated lines of one group, the positive first.

    Returns:
        list: One parsed tuple per line, in the order of the lines.
    """
    lines = group.splitlines()
    first = iterator.parser_one_line(lines[0])
    user, shared = first[1], tuple(first[4:])
    items, cates = iterator.itemdict, iterator.catedict
    parsed = [first]
    for line in lines[1:]:
        label, _, item, cate, _ = line.split(iterator.col_spliter, 4)
        parsed.append((int(label), user, items.get(item, 0), cates.get(cate, 0)) + shared)
    return parsed


def full_ranking(model, config, chunk=FULL_RANKING_CHUNK):
    """The full-ranking protocol through the model's ``eval``, as CLSR's ``run_eval_full``.

    Each test positive is scored against every other catalogue item, its history's items
    left out (``clsr_tf.ranking.candidate_groups``), ``chunk`` positives at a time: a chunk's
    lines are parsed by ``parsed_group`` into the iterator's cache of parsed files, under a
    name of their own that is dropped once scored, so memory stays bounded and no candidate
    file is written.

    Args:
        model (SequentialBaseModel): A trained model.
        config (dict): The run configuration, with ``data_hparams`` (the data set's
            validated clsr_tf hyper-parameters: vocabularies, files, ``max_seq_length``).
        chunk (int): Positives scored together.

    Returns:
        dict: ``full_ranking_metrics`` plus ``skipped`` (positives whose item the vocabulary
        does not know) and ``seconds``.
    """
    from clsr_tf.ranking import (
        Catalogue,
        PositivesProgress,
        candidate_groups,
        full_ranking_metrics,
        ranks_of_lines,
    )

    start = time.time()
    data_hp = config["data_hparams"]
    catalogue = Catalogue.from_data(data_hp)
    progress = PositivesProgress(config["test_file"])
    skipped = 0

    def known_groups():
        nonlocal skipped
        for group in candidate_groups(config["test_file"], catalogue, exclude_history=True,
                                      max_seq_length=data_hp["max_seq_length"]):
            if catalogue.item_vocab.get(group.split("\t", 3)[2], 0) > 0:
                yield group
            else:  # evaluate_full skips these too
                skipped += 1

    groups, ranks, done = known_groups(), [], 0
    # Lists of `chunk` groups until the generator is exhausted (then [] ends the loop).
    for part, batch in enumerate(iter(lambda: list(itertools.islice(groups, chunk)), [])):
        name = f"full ranking chunk {part}"  # a cache key, never a file
        model.iterator.iter_data[name] = [line for group in batch
                                          for line in parsed_group(model.iterator, group)]
        try:
            scores = score_file(model, name, config["eval_min_seq_length"], empty_ok=True)
        finally:
            model.iterator.iter_data.pop(name)
        ranks.append(ranks_of_lines(scores["labels"], scores["preds"]))
        done += len(batch)
        progress(done + skipped)
    out = full_ranking_metrics(np.concatenate(ranks) if ranks else [], len(catalogue))
    return dict(out, skipped=skipped, seconds=round(time.time() - start, 1))


def train(model, config):
    """Train epoch by epoch with early stopping on valid GAUC; restore the best epoch.

    Each epoch is seeded from (seed, epoch) and shuffles the training lines from file order
    (Recommenders' own loop reshuffles the previous epoch's order: another random order of
    the same kind), and ends with a checkpoint of the variables (optimizer slots included)
    and the history in ``last/``, so that ``config["resume"]`` continues a killed run and
    reaches the unbroken run's result.

    Args:
        model (SequentialBaseModel): A built model.
        config (dict): The run configuration.

    Returns:
        tuple: (history list of {epoch, loss, valid}, best epoch).
    """
    hp, seed = model.hparams, config["seed"]
    best, best_epoch, history = -np.inf, 0, []
    best_path = best_model_path(config)
    last_path = os.path.join(config["model_dir"], "last", "model")
    state_path = os.path.join(config["model_dir"], "last", "state.json")
    for path in (best_path, last_path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    import tensorflow as tf

    # A saver of its own: the model's deletes its older checkpoints (best_model's among
    # them) beyond max_to_keep = epochs.
    with model.graph.as_default():
        last_saver = tf.compat.v1.train.Saver(max_to_keep=1)
    if config.get("resume") and os.path.exists(state_path):
        with open(state_path) as f:
            state = json.load(f)
        last_saver.restore(model.sess, last_path)
        history, best_epoch, best = state["history"], state["best_epoch"], state["best"]
        print(f"resumed after epoch {len(history)}", flush=True)
    file_order = model.iterator.parse_file(config["train_file"])
    for epoch in range(len(history) + 1, hp.epochs + 1):
        if hp.EARLY_STOP > 0 and epoch - 1 - best_epoch >= hp.EARLY_STOP:
            print(f"early stop at epoch {epoch - 1}", flush=True)
            break
        started = time.time()
        random.seed(seed * 1000 + epoch)  # in-batch negatives are drawn with `random`
        np.random.seed(seed * 1000 + epoch)
        model.iterator.iter_data[config["train_file"]] = list(file_order)
        losses = [model.train(model.sess, feed)[2] for feed in model.iterator.load_data_from_file(
            config["train_file"], min_seq_length=model.min_seq_length,
            batch_num_ngs=model.train_num_ngs) if feed]
        valid, _ = evaluate_file(model, config, "valid")
        loss = float(np.mean(losses)) if losses else float("nan")
        history.append({"epoch": epoch, "loss": loss, "valid": valid,
                        "seconds": round(time.time() - started, 1)})
        print(f"epoch {epoch}: loss {loss:.4f}  valid "
              + "  ".join(f"{k} {v:.4f}" for k, v in valid.items()), flush=True)
        if valid[config["eval_metric"]] > best:
            best, best_epoch = valid[config["eval_metric"]], epoch
            model.saver.save(model.sess, best_path)
        last_saver.save(model.sess, last_path)
        write_atomic(state_path, json.dumps({"history": history, "best_epoch": best_epoch,
                                             "best": best}))
    if not best_epoch:
        raise ValueError(f"valid {config['eval_metric']} never improved (nan scores?)")
    model.load_model(best_path)
    print(f"best epoch: {best_epoch}", flush=True)
    return history, best_epoch


def run(config):
    """Build, train and evaluate the configured model.

    Args:
        config (dict): ``model``, ``hparams`` (flat Recommenders hparams), ``seed``,
            ``train_file``/``valid_file``/``test_file``, ``valid_num_ngs``/``test_num_ngs``,
            ``eval_min_seq_length``, ``eval_metric`` and ``model_dir``; with ``task``
            ``full_ranking`` (and ``data_hparams``), the finished run's best epoch is ranked
            against the catalogue instead (``full_ranking``).

    Returns:
        dict: The result (status, valid and test metrics, timings, parameter count), or
        ``status`` and ``test_full`` for ``full_ranking``.
    """
    from recommenders.models.deeprec.deeprec_utils import prepare_hparams

    from clsr_tf.evaluation import train_seconds

    hparams = prepare_hparams(**config["hparams"])  # checks the values before the imports
    model_cls, iterator_cls = load_classes(config["model"])
    start = time.time()
    model = model_cls(hparams, seeded(iterator_cls, config["seed"]), seed=config["seed"])
    if config.get("task") == "full_ranking":
        model.load_model(best_model_path(config))
        return {"model": config["model"], "status": "ok",
                "test_full": full_ranking(model, config)}
    history, best_epoch = train(model, config)
    elapsed = time.time() - start
    test, scores = evaluate_file(model, config, "test")
    save_scores(os.path.join(config["model_dir"], SCORES_FILE), scores["users"],
                scores["labels"], scores["preds"])
    valid = next(h["valid"] for h in history if h["epoch"] == best_epoch)
    return {"model": config["model"], "status": "ok", "valid": valid, "test": test,
            "test_lines": len(scores["preds"]), "best_epoch": best_epoch,
            "epochs_run": len(history), "train_seconds": train_seconds(history, elapsed),
            "params": count_parameters(model), "history": history,
            "hparams": config["hparams"]}


def main(argv=None):
    """Entry point: read the configuration, run, write the result JSON.

    Args:
        argv (list): Arguments (default: sys.argv[1:]).

    Returns:
        int: 0 on success, 1 on failure (the result JSON then holds the error).
    """
    p = argparse.ArgumentParser(prog="python -m clsr_tf.baselines.recommenders_runner",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="run configuration (JSON, see run())")
    p.add_argument("--output", required=True, help="where the result JSON goes")
    args = p.parse_args(argv)
    use_legacy_keras()
    with open(args.config) as f:
        config = json.load(f)
    try:
        result, status = run(config), 0
    except Exception as err:  # reported to the parent in the result file
        traceback.print_exc()
        result = {"model": config.get("model"), "status": f"{type(err).__name__}: {err}"}
        status = 1
    from clsr_tf.evaluation import metrics_json

    write_atomic(args.output, metrics_json(result))
    return status


if __name__ == "__main__":
    sys.exit(main())
