"""Users per second of top-K over the whole catalogue: ``recommend``'s path against the naive one.

A CLSR of the paper's sizes (hparams/movielens.yaml: 32 + 8 embeddings, hidden 40, attention
MLP [80, 40], tower [100, 64], time4lstm, L = 50) with random weights, random full histories,
catalogues of ``--items`` items. Three paths, each timed after a warm-up call:

- ``recommend``: ``clsr_tf.ranking.CatalogueRanker.top_k`` (history side once per user, the
  target side over chunks of ``--chunk-pairs`` pairs, top-K in the graph);
- ``keys per pair``: the same, but the short-term attention's key side (the keys'
  projection and their term of the scoring MLP's first layer) computed for every pair, not
  once per user (clsr_tf before it moved to the history side);
- ``per line (runs)``: the explicit (user, item) lines through ``inference_forward`` (what
  ``score`` runs: the history side once per run of equal rows), then top-K;
- ``naive``: the explicit lines through ``forward`` with every line in full (what Keras'
  ``predict`` does), then top-K.

The per-line paths are timed on ``--line-items`` items of the catalogue and scaled to the
whole catalogue (their cost is linear in the lines); the output says so.

    python benchmarks/recommend_speed.py --items 10000 100000 --users 64
"""

import argparse
import os
import sys
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from clsr_tf.data.contract import HISTORY_SIDE_KEYS, output_signature  # noqa: E402
from clsr_tf.hparams import as_dict, load_hparams  # noqa: E402
from clsr_tf.models import CLSRModel  # noqa: E402
from clsr_tf.ranking import Catalogue, CatalogueRanker  # noqa: E402

HPARAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hparams",
                       "movielens.yaml")


def histories(rng, users, n_items, n_cates, length):
    """Random full histories (batch arrays of ``HISTORY_SIDE_KEYS``)."""
    return {"users": rng.integers(1, 1000, users).astype(np.int32),
            "item_history": rng.integers(1, n_items, (users, length)).astype(np.int32),
            "item_cate_history": rng.integers(1, n_cates, (users, length)).astype(np.int32),
            "mask": np.ones((users, length), np.float32),
            "time_from_first_action": rng.random((users, length)).astype(np.float32) * 5,
            "time_to_now": rng.random((users, length)).astype(np.float32) * 5}


class KeysPerPair:
    """``model`` for ``CatalogueRanker``, with the short-term key side left to every pair."""

    def __init__(self, model):
        self.model = model
        self.hp, self.prediction_outputs = model.hp, model.prediction_outputs

    def history_side(self, batch):
        return {key: value for key, value in self.model.history_side(batch).items()
                if not key.startswith("short_keys_")}

    def target_side(self, history, targets):
        return self.model.target_side(history, targets)


def timed(fns, repeats):
    """Best wall time of each of ``fns`` over ``repeats`` rounds (taken in turn, so that a
    change of the machine's load falls on all of them), after a warm-up call of each."""
    best = {name: float("inf") for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def line_paths(model, batch, catalogue, k, chunk_lines):
    """The per-line paths: callables scoring every (user, item) line, then top-K."""
    specs = output_signature(model.hp["max_seq_length"])
    keys = HISTORY_SIDE_KEYS + ("items", "cates")
    signature = [{key: specs[key] for key in keys}]
    runs = tf.function(lambda b: model.inference_forward(b)["logit"], input_signature=signature)
    full = tf.function(lambda b: model.forward(b, training=False)["logit"],
                       input_signature=signature)
    users, n = len(batch["users"]), len(catalogue)

    def path(fn):
        def run():
            logits = []
            per_user = max(1, chunk_lines // n)
            for a in range(0, users, per_user):
                rows = np.repeat(np.arange(a, min(a + per_user, users)), n)
                lines = {key: batch[key][rows] for key in HISTORY_SIDE_KEYS}
                lines["items"] = np.tile(catalogue.items, len(rows) // n)
                lines["cates"] = np.tile(catalogue.cates, len(rows) // n)
                for b in range(0, len(rows), chunk_lines):
                    logits.append(fn({key: v[b:b + chunk_lines] for key, v in lines.items()}))
            scores = tf.reshape(tf.concat(logits, 0), [users, n])
            return tf.math.top_k(scores, k)
        return run

    return path(runs), path(full)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, nargs="+", default=[10000, 100000])
    p.add_argument("--users", type=int, default=64, help="users per recommend call")
    p.add_argument("--line-users", type=int, default=4, help="users of the per-line paths")
    p.add_argument("--line-items", type=int, default=2000,
                   help="catalogue items the per-line paths score (scaled to --items)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--chunk-pairs", type=int, default=8192)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"device: {device}; TF {tf.__version__}; threads: "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()}")
    print(f"{'items':>8} {'path':<18} {'users/s':>10} {'vs naive':>9}")
    for n_items in args.items:
        hp = as_dict(load_hparams(HPARAMS, user_vocab_size=1000, item_vocab_size=n_items + 1,
                                  cate_vocab_size=20, data_dir=""))
        rng = np.random.default_rng(0)
        model = CLSRModel(hp)
        model.build_from_shape(hp["max_seq_length"])
        items = np.arange(1, n_items + 1, dtype=np.int32)
        catalogue = Catalogue(items, rng.integers(1, 20, n_items))
        batch = histories(rng, args.users, n_items + 1, 20, hp["max_seq_length"])
        rankers = {"recommend": CatalogueRanker(model, args.chunk_pairs),
                   "keys per pair": CatalogueRanker(KeysPerPair(model), args.chunk_pairs)}
        seconds = timed({name: (lambda r=r: r.top_k(batch, catalogue, args.k))
                         for name, r in rankers.items()}, args.repeats)
        rates = {name: args.users / s for name, s in seconds.items()}
        line_items = min(args.line_items, n_items)
        part = catalogue.subset(list(range(1, line_items + 1)))
        few = {key: value[:args.line_users] for key, value in batch.items()}
        runs, full = line_paths(model, few, part, args.k, args.chunk_pairs)
        scale = n_items / line_items
        seconds = timed({"per line (runs)": runs, "naive": full}, args.repeats)
        rates.update({name: args.line_users / (s * scale) for name, s in seconds.items()})
        for name, rate in rates.items():
            note = f"  (timed on {line_items} items, scaled)" if name in ("per line (runs)",
                                                                          "naive") else ""
            print(f"{n_items:>8} {name:<18} {rate:>10.3g} {rate / rates['naive']:>8.1f}x{note}",
                  flush=True)


if __name__ == "__main__":
    main()
