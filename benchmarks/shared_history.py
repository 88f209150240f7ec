"""Train-step time of CLSR and SURGE with the history side run once per group of 1 +
``train_num_ngs`` rows (``SequentialModel.training_forward``) against every row in full.

Both variants train the same model on the same generated batches, compiled as ``fit``
compiles its step, and alternate step by step so that a shared machine slows both alike.
Prints the median step time of each and their ratio.

    python benchmarks/shared_history.py --lines 500 --steps 8
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from clsr_tf.keras2 import keras  # noqa: E402
from clsr_tf.models import CLSRModel  # noqa: E402
from clsr_tf.models.surge import SURGEModel  # noqa: E402

# The sizes of hparams/movielens.yaml and hparams/baselines/surge.yaml.
SIZES = dict(user_vocab_size=611, item_vocab_size=9000, cate_vocab_size=21, max_seq_length=50,
             item_embedding_dim=32, cate_embedding_dim=8, user_embedding_dim=40,
             hidden_size=40, att_fcn_layer_sizes=[80, 40], layer_sizes=[100, 64],
             train_num_ngs=4)
MODELS = {"clsr": (CLSRModel, {}),
          "surge": (SURGEModel, dict(model_type="surge", pool_length=10, metric_heads=2,
                                     relative_threshold=0.5))}


def make_batch(rng, lines, group, length, hp):
    """A training batch: ``lines`` groups of ``group`` rows sharing a full history."""
    rows = lines * group

    def shared(values):
        return np.repeat(values, group, axis=0)

    hist = rng.integers(1, hp["item_vocab_size"], (lines, length)).astype(np.int32)
    labels = np.zeros((rows, 1), np.float32)
    labels[::group] = 1
    times = np.sort(rng.random((lines, length)).astype(np.float32), 1)
    return {k: tf.constant(v) for k, v in {
        "labels": labels, "users": shared(rng.integers(1, hp["user_vocab_size"], lines)),
        "items": rng.integers(1, hp["item_vocab_size"], rows).astype(np.int32),
        "cates": rng.integers(1, hp["cate_vocab_size"], rows).astype(np.int32),
        "item_history": shared(hist), "item_cate_history": shared(hist % hp["cate_vocab_size"]),
        "mask": np.ones((rows, length), np.float32), "time": np.ones(rows, np.float32),
        "time_diff": shared(times), "time_from_first_action": shared(times),
        "time_to_now": shared(1 - times)}.items()}


def step_times(name, lines, steps, seed=0):
    """Median seconds per train step, shared and in full."""
    cls, extra = MODELS[name]
    hp = dict(SIZES, **extra)
    model = cls(hp)
    model.build_from_shape(hp["max_seq_length"])
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    shared_step = tf.function(model.train_step)
    full_forward = lambda batch: model.forward(batch, training=True)  # noqa: E731

    def full_step(batch):
        original, model.training_forward = model.training_forward, full_forward
        try:
            return model.train_step(batch)
        finally:
            model.training_forward = original

    full_step = tf.function(full_step)
    rng = np.random.default_rng(seed)
    batch = make_batch(rng, lines, hp["train_num_ngs"] + 1, hp["max_seq_length"], hp)
    times = {"shared": [], "full": []}
    for step in (shared_step, full_step):  # trace and warm up
        step(batch)
    for _ in range(steps):
        for label, step in (("shared", shared_step), ("full", full_step)):
            start = time.perf_counter()
            tf.nest.map_structure(lambda t: t.numpy(), step(batch))
            times[label].append(time.perf_counter() - start)
    return {label: statistics.median(t) for label, t in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=500, help="lines per batch (x 5 rows)")
    p.add_argument("--steps", type=int, default=8, help="timed steps of each variant")
    p.add_argument("--models", default="clsr,surge")
    args = p.parse_args(argv)
    for name in args.models.split(","):
        t = step_times(name, args.lines, args.steps)
        print(f"{name}: shared {t['shared']:.2f} s/step, full {t['full']:.2f} s/step, "
              f"full / shared {t['full'] / t['shared']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
