"""Training rows/s of CLSR (Keras, fast loader) and of Recommenders' SLi-Rec on one file.

Generates a Recommenders sequential training file with ``loader_speed.generate`` (or reads
``--file`` with the vocab pickles of ``--data-dir``) and trains ``--epochs`` epochs of each
model on it with the same batch size and in-batch negatives, after a few warm-up steps
(tracing, graph optimisation):

- CLSR: ``CLSRModel`` (paper sizes, ``--sequential-model``) fed by ``FastBatches``, each epoch
  as ``CLSRSequentialModel.fit`` runs it: a fresh ``batches.dataset(path, num_ngs, seed)``
  seeded from (seed, epoch) and one ``model.fit(..., epochs=epoch, initial_epoch=epoch - 1)``
  (reading and parsing the file included, as every epoch does). Callbacks time the steps
  apart from the rest of ``fit`` (its set-up before the first step, its teardown after the
  last one), so a stall at the end of ``fit`` shows in its own column;
- SLi-Rec: Recommenders' ``SLI_RECModel`` with its ``SequentialIterator``, in a subprocess of
  its own (importing it turns eager execution off process-wide), each epoch timed as the
  training part of its ``fit``'s first epoch: parse the file, then ``train`` on every batch
  of ``load_data_from_file``.

Rows are lines x (1 + negatives). Prints each epoch, min/median/max over the epochs (per
epoch and per step), and the ratio of the two models' rows/s.

    python benchmarks/train_speed.py --lines 20000 --epochs 3
"""

import argparse
import gc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from loader_speed import generate  # noqa: E402

SEED = 0  # hp["seed"] of the benchmarked CLSR
# --data-autotune -> the tf.data autotuning of each epoch in turn (None: as built).
AUTOTUNE = {"as-built": (None,), "on": (True,), "off": (False,), "alternate": (True, False)}
VOCABS = dict(user_vocab="user_vocab.pkl", item_vocab="item_vocab.pkl",
              cate_vocab="category_vocab.pkl")
# Recommenders' config/sli_rec.yaml (1.2.1), less the reporting keys.
SLI_REC = dict(model_type="sli_rec", method="classification", layer_sizes=[100, 64],
               activation=["relu", "relu"], user_dropout=True, dropout=[0.3, 0.3],
               item_embedding_dim=32, cate_embedding_dim=8, user_embedding_dim=16,
               att_fcn_layer_sizes=[80, 40], attention_size=40, hidden_size=40,
               init_method="tnormal", init_value=0.01, embed_l2=0.0001, layer_l2=0.0001,
               learning_rate=0.001, loss="softmax", optimizer="adam", enable_BN=True,
               need_sample=True, epochs=1, save_model=False, write_tfevents=False,
               show_step=10**9)


def count_lines(path):
    """Lines of a text file."""
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))


def build_clsr(data_dir, max_seq_length, batch_size, num_ngs, sequential_model="time4lstm",
               jit_compile=False):
    """A compiled CLSR of the paper's sizes and a ``FastBatches`` reader.

    Args:
        data_dir (str): Folder of the vocab pickles (``VOCABS``).
        max_seq_length (int): History length L.
        batch_size (int): Lines per batch.
        num_ngs (int): In-batch negatives per line.
        sequential_model (str): Short-term encoder (time4lstm, gru).
        jit_compile (bool): Compile the train step with XLA.

    Returns:
        tuple: (CLSRModel, FastBatches).
    """
    from clsr_tf.data.loader import FastBatches
    from clsr_tf.hparams import as_dict
    from clsr_tf.keras2 import keras
    from clsr_tf.models import CLSRModel

    hp = as_dict(dict(VOCABS, data_dir=data_dir, max_seq_length=max_seq_length,
                      batch_size=batch_size, train_num_ngs=num_ngs,
                      sequential_model=sequential_model, seed=SEED))
    keras.utils.set_random_seed(SEED)
    model = CLSRModel(hp)
    model.build_from_shape(max_seq_length)
    model.compile(optimizer=keras.optimizers.Adam(hp["learning_rate"]),
                  jit_compile=jit_compile)
    return model, FastBatches(hp, seed=SEED)


def _epoch_clock(keras):
    """A Keras callback recording when ``fit``'s steps begin and end.

    Args:
        keras (module): The Keras 2 module (``clsr_tf.keras2.keras``).

    Returns:
        keras.callbacks.Callback: ``.first_begin``, ``.ends`` (perf_counter of each
        on_train_batch_end) and ``.train_end`` are filled by one ``fit``.
    """

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.first_begin, self.ends, self.train_end = None, [], None

        def on_train_batch_begin(self, batch, logs=None):
            if self.first_begin is None:
                self.first_begin = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

        def on_train_end(self, logs=None):
            self.train_end = time.perf_counter()

    return EpochClock()


def clsr_epoch(model, batches, path, num_ngs, epoch, autotune=None):
    """Train one epoch as ``CLSRSequentialModel.fit`` does, timing its parts.

    Args:
        model (CLSRModel): A compiled model.
        batches (BatchReader): Its reader.
        path (str): Training file.
        num_ngs (int): In-batch negatives per line.
        epoch (int): 1-based epoch (seeds the epoch's batches).
        autotune (bool): None trains on ``batches.dataset`` as it is built; True / False
            switch tf.data's autotuning on / off over it (``tf.data.Options``; the batches
            are the same).

    Returns:
        dict: ``seconds`` (the epoch: building the dataset, ``fit``, collecting its garbage),
        ``setup`` (to the first step), ``steps`` (first step's start to last step's end),
        ``teardown`` (last step's end to ``fit``'s return), ``after_train_end``
        (``on_train_end`` to the return), ``collect`` (a ``gc.collect()`` after ``fit``: on
        TensorFlow 2.16+ the epoch's tf.data iterator sits in a reference cycle, so it is
        deleted there rather than when ``fit`` returns) and ``step_seconds`` (each step,
        its batch's read included).
    """
    from clsr_tf.keras2 import keras

    seed = SEED * 1000 + epoch  # as CLSRSequentialModel.fit seeds each epoch
    keras.utils.set_random_seed(seed)
    clock = _epoch_clock(keras)
    start = time.perf_counter()
    train_data = batches.dataset(path, num_ngs, seed=seed)
    if autotune is not None:
        import tensorflow as tf

        options = tf.data.Options()
        options.autotune.enabled = autotune
        train_data = train_data.with_options(options)
    model.fit(train_data, epochs=epoch, initial_epoch=epoch - 1, verbose=0, callbacks=[clock])
    done = time.perf_counter()
    del train_data
    gc.collect()
    collected = time.perf_counter()
    ends = [clock.first_begin] + clock.ends
    return {"epoch": epoch, "autotune": autotune, "seconds": collected - start,
            "collect": collected - done, "setup": clock.first_begin - start,
            "steps": ends[-1] - ends[0], "teardown": done - ends[-1],
            "after_train_end": done - clock.train_end,
            "step_seconds": [b - a for a, b in zip(ends, ends[1:])]}


def clsr_speed(path, data_dir, args):
    """Train CLSR ``args.epochs`` epochs on ``path`` after ``args.warmup_steps`` steps.

    Args:
        path (str): Training file.
        data_dir (str): Folder of its vocab pickles.
        args (argparse.Namespace): Benchmark options.

    Returns:
        list: ``clsr_epoch``'s dict for each epoch (``args.data_autotune`` chooses its
        ``autotune``: ``alternate`` switches it on in odd epochs, off in even ones).
    """
    model, batches = build_clsr(data_dir, args.max_seq_length, args.batch_size, args.num_ngs,
                                args.sequential_model, args.jit_compile)
    model.fit(batches.dataset(path, args.num_ngs, seed=0).take(args.warmup_steps), verbose=0)
    settings = AUTOTUNE[args.data_autotune]
    return [clsr_epoch(model, batches, path, args.num_ngs, epoch,
                       settings[(epoch - 1) % len(settings)])
            for epoch in range(1, args.epochs + 1)]


def sli_rec_speed(path, data_dir, args):
    """Train Recommenders' SLi-Rec ``args.epochs`` epochs on ``path`` (in a process of its own).

    Args:
        path (str): Training file.
        data_dir (str): Folder of its vocab pickles.
        args (argparse.Namespace): Benchmark options.

    Returns:
        list: One dict per epoch: ``seconds``, of which ``parse_seconds`` parsing the file,
        and ``step_seconds`` (each ``train`` call).
    """
    from recommenders.models.deeprec.deeprec_utils import prepare_hparams
    from recommenders.models.deeprec.io.sequential_iterator import SequentialIterator
    from recommenders.models.deeprec.models.sequential.sli_rec import SLI_RECModel

    with tempfile.TemporaryDirectory() as model_dir:
        hparams = prepare_hparams(
            **SLI_REC, **{k: os.path.join(data_dir, v) for k, v in VOCABS.items()},
            max_seq_length=args.max_seq_length, batch_size=args.batch_size,
            train_num_ngs=args.num_ngs, MODEL_DIR=os.path.join(model_dir, ""),
            SUMMARIES_DIR=os.path.join(model_dir, ""))
        model = SLI_RECModel(hparams, SequentialIterator, seed=0)
        iterator = model.iterator
        feeds = iterator.load_data_from_file(path, batch_num_ngs=args.num_ngs)
        for _, feed in zip(range(args.warmup_steps), feeds):
            model.train(model.sess, feed)
        epochs = []
        for _ in range(args.epochs):
            iterator.iter_data.clear()  # each timed epoch parses the file, as fit's first does
            start = time.perf_counter()
            iterator.iter_data[path] = iterator.parse_file(path)
            parse = time.perf_counter() - start
            steps, last = [], time.perf_counter()
            for feed in iterator.load_data_from_file(path, batch_num_ngs=args.num_ngs):
                if feed:
                    model.train(model.sess, feed)
                    now = time.perf_counter()
                    steps.append(now - last)
                    last = now
            epochs.append({"seconds": time.perf_counter() - start, "parse_seconds": parse,
                           "step_seconds": steps})
        return epochs


def run_worker(path, data_dir, args):
    """Run ``sli_rec_speed`` in a subprocess.

    Args:
        path (str): Training file.
        data_dir (str): Folder of its vocab pickles.
        args (argparse.Namespace): Benchmark options (passed on).

    Returns:
        list: The subprocess's result (one dict per epoch).
    """
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--file", path,
               "--data-dir", data_dir, "--max-seq-length", str(args.max_seq_length),
               "--batch-size", str(args.batch_size), "--num-ngs", str(args.num_ngs),
               "--warmup-steps", str(args.warmup_steps), "--epochs", str(args.epochs)]
    env = dict(os.environ)
    if importlib.util.find_spec("tf_keras"):
        # Recommenders' TF1-style graph needs Keras 2 behind tf.keras (TensorFlow 2.16+); on
        # 2.15, without tf-keras installed, the variable would make tf.keras unimportable.
        env["TF_USE_LEGACY_KERAS"] = "1"
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_parser():
    """The command-line interface.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--file", help="a Recommenders sequential file (default: generate one)")
    p.add_argument("--data-dir", help="folder of the vocab pickles of --file")
    p.add_argument("--lines", type=int, default=20000, help="lines of the generated file")
    p.add_argument("--max-history", type=int, default=50,
                   help="longest generated history (lengths uniform in 1..max)")
    p.add_argument("--n-items", type=int, default=10000, help="items of the generated vocab")
    p.add_argument("--max-seq-length", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--num-ngs", type=int, default=4, help="in-batch negatives per line")
    p.add_argument("--warmup-steps", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs of each model")
    p.add_argument("--data-autotune", choices=tuple(AUTOTUNE), default="as-built",
                   help="CLSR's tf.data autotuning: as BatchReader.dataset builds it (the "
                        "code path of CLSRSequentialModel.fit), forced on or off, or on and "
                        "off in alternate epochs (compared in one invocation)")
    p.add_argument("--no-sli-rec", action="store_true",
                   help="time CLSR alone (no Recommenders subprocess)")
    p.add_argument("--sequential-model", choices=("time4lstm", "gru"), default="time4lstm",
                   help="CLSR's short-term encoder")
    p.add_argument("--jit-compile", action="store_true",
                   help="compile CLSR's train step with XLA (model.compile(jit_compile=True))")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p


def spread(values):
    """min / median / max of a list of numbers.

    Args:
        values (list): Numbers.

    Returns:
        tuple: (min, median, max).
    """
    return min(values), statistics.median(values), max(values)


def report(name, epochs, rows, batch_rows, columns):
    """Print one model's epochs and their min/median/max.

    Args:
        name (str): The model's label.
        epochs (list): Per-epoch dicts (``seconds``, ``step_seconds`` and ``columns``' keys).
        rows (int): Rows of one epoch.
        batch_rows (int): Rows of a full batch (per-step rows/s of the full steps).
        columns (tuple): (key, header) of the extra seconds columns.

    Returns:
        list: rows/s of each epoch.
    """
    print(f"\n{name}")
    head = "".join(f" {h:>9}" for _, h in columns)
    print(f"{'epoch':>5} {'epoch s':>7}{head} {'rows/s':>8} {'step rows/s min/med/max':>24}")
    rates = []
    for i, e in enumerate(epochs, 1):
        rates.append(rows / e["seconds"])
        full = e["step_seconds"][:rows // batch_rows] or e["step_seconds"]
        lo, mid, hi = spread([batch_rows / t for t in full])
        extra = "".join(f" {e[k]:>9.2f}" for k, _ in columns)
        print(f"{e.get('epoch', i):>5} {e['seconds']:>7.2f}{extra} {rates[-1]:>8,.0f} "
              f"{lo:>8,.0f}/{mid:,.0f}/{hi:,.0f}")
    for label, values in (("epoch s", [e["seconds"] for e in epochs]),) + tuple(
            (h, [e[k] for e in epochs]) for k, h in columns):
        print(f"  {label:<10} min/median/max {'/'.join(f'{v:.2f}' for v in spread(values))}")
    print(f"  {'rows/s':<10} min/median/max {'/'.join(f'{v:,.0f}' for v in spread(rates))}")
    return rates


def main():
    args = build_parser().parse_args()
    if args.worker:
        print(json.dumps(sli_rec_speed(args.file, args.data_dir, args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.file:
            path, data_dir = args.file, args.data_dir or os.path.dirname(args.file)
        else:
            path, data_dir = generate(tmp, args.lines, args.max_history,
                                      n_items=args.n_items), tmp
        rows = count_lines(path) * (1 + args.num_ngs)
        print(f"file {path}: {os.path.getsize(path) / 2**20:.1f} MiB, {rows} rows, "
              f"max_seq_length {args.max_seq_length}, batch_size {args.batch_size}, "
              f"{args.num_ngs} negatives, {args.warmup_steps} warm-up steps, "
              f"{args.epochs} timed epochs")
        clsr = clsr_speed(path, data_dir, args)
        batch_rows = args.batch_size * (1 + args.num_ngs)
        name = (f"CLSR ({args.sequential_model}{', XLA' if args.jit_compile else ''}, "
                "fast loader)")
        rates = {}
        for setting in AUTOTUNE[args.data_autotune]:
            epochs = [e for e in clsr if e["autotune"] == setting]
            label = name if setting is None else f"{name}, autotune {'on' if setting else 'off'}"
            rates[label] = report(label, epochs, rows, batch_rows,
                                  (("setup", "setup s"), ("steps", "steps s"),
                                   ("teardown", "teardown s"), ("after_train_end", "after end"),
                                   ("collect", "collect s")))
            steps_rates = spread([rows / e["steps"] for e in epochs])
            print(f"  {'rows/s of the steps alone':<10} min/median/max "
                  f"{'/'.join(f'{v:,.0f}' for v in steps_rates)}", flush=True)
        if args.no_sli_rec:
            return
        sli_rec = run_worker(path, data_dir, args)
    for e in sli_rec:
        e["train"] = e["seconds"] - e["parse_seconds"]
    s_lo, s_mid, s_hi = spread(report("SLi-Rec (Recommenders)", sli_rec, rows, batch_rows,
                                      (("parse_seconds", "parse s"), ("train", "steps s"))))
    steps = statistics.median([rows / e["train"] for e in sli_rec])
    print()
    for label, clsr_rates in rates.items():
        lo, mid, hi = spread(clsr_rates)
        print(f"{label} / SLi-Rec rows/s (medians over the epochs): {mid / s_mid:.2f}x "
              f"(range {lo / s_hi:.2f}x-{hi / s_lo:.2f}x; vs SLi-Rec's train steps alone: "
              f"{mid / steps:.2f}x)")


if __name__ == "__main__":
    main()
