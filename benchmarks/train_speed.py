"""Training rows/s of CLSR (Keras, fast loader) and of Recommenders' SLi-Rec on one file.

Generates a Recommenders sequential training file with ``loader_speed.generate`` (or reads
``--file`` with the vocab pickles of ``--data-dir``) and trains one epoch of each model on it
with the same batch size and in-batch negatives, after a few warm-up steps (tracing, graph
optimisation):

- CLSR: ``CLSRModel`` (paper sizes, ``--sequential-model``) fed by ``FastBatches``, one Keras
  ``fit`` epoch (reading and parsing the file included, as every epoch does);
- SLi-Rec: Recommenders' ``SLI_RECModel`` with its ``SequentialIterator``, in a subprocess of
  its own (importing it turns eager execution off process-wide), timed as the training part
  of its ``fit``: parse the file, then ``train`` on every batch of ``load_data_from_file``.

Rows are lines x (1 + negatives). Prints rows/s of both and their ratio.

    python benchmarks/train_speed.py --lines 20000
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from loader_speed import generate  # noqa: E402

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
                      sequential_model=sequential_model, seed=0))
    keras.utils.set_random_seed(0)
    model = CLSRModel(hp)
    model.build_from_shape(max_seq_length)
    model.compile(optimizer=keras.optimizers.Adam(hp["learning_rate"]),
                  jit_compile=jit_compile)
    return model, FastBatches(hp, seed=0)


def clsr_speed(path, data_dir, args):
    """Train CLSR one epoch on ``path``.

    Args:
        path (str): Training file.
        data_dir (str): Folder of its vocab pickles.
        args (argparse.Namespace): Benchmark options.

    Returns:
        dict: ``seconds`` of the timed epoch.
    """
    model, batches = build_clsr(data_dir, args.max_seq_length, args.batch_size, args.num_ngs,
                                args.sequential_model, args.jit_compile)
    model.fit(batches.dataset(path, args.num_ngs, seed=0).take(args.warmup_steps), verbose=0)
    start = time.perf_counter()
    model.fit(batches.dataset(path, args.num_ngs, seed=1), verbose=0)
    return {"seconds": time.perf_counter() - start}


def sli_rec_speed(path, data_dir, args):
    """Train Recommenders' SLi-Rec one epoch on ``path`` (call in a process of its own).

    Args:
        path (str): Training file.
        data_dir (str): Folder of its vocab pickles.
        args (argparse.Namespace): Benchmark options.

    Returns:
        dict: ``seconds`` of the timed epoch, of which ``parse_seconds`` parsing the file.
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
        iterator.iter_data.clear()  # the timed epoch parses the file, as fit's first does
        start = time.perf_counter()
        iterator.iter_data[path] = iterator.parse_file(path)
        parse = time.perf_counter() - start
        for feed in iterator.load_data_from_file(path, batch_num_ngs=args.num_ngs):
            if feed:
                model.train(model.sess, feed)
        return {"seconds": time.perf_counter() - start, "parse_seconds": parse}


def run_worker(path, data_dir, args):
    """Run ``sli_rec_speed`` in a subprocess.

    Args:
        path (str): Training file.
        data_dir (str): Folder of its vocab pickles.
        args (argparse.Namespace): Benchmark options (passed on).

    Returns:
        dict: The subprocess's result.
    """
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--file", path,
               "--data-dir", data_dir, "--max-seq-length", str(args.max_seq_length),
               "--batch-size", str(args.batch_size), "--num-ngs", str(args.num_ngs),
               "--warmup-steps", str(args.warmup_steps)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
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
    p.add_argument("--sequential-model", choices=("time4lstm", "gru"), default="time4lstm",
                   help="CLSR's short-term encoder")
    p.add_argument("--jit-compile", action="store_true",
                   help="compile CLSR's train step with XLA (model.compile(jit_compile=True))")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p


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
              f"{args.num_ngs} negatives, {args.warmup_steps} warm-up steps")
        clsr = clsr_speed(path, data_dir, args)
        sli_rec = run_worker(path, data_dir, args)
    name = f"CLSR ({args.sequential_model}{', XLA' if args.jit_compile else ''}, fast loader)"
    steps = sli_rec["seconds"] - sli_rec["parse_seconds"]
    print(f"{'model':<36} {'seconds':>8} {'rows/s':>9}")
    for label, seconds in ((name, clsr["seconds"]), ("SLi-Rec (Recommenders)", sli_rec["seconds"]),
                           ("  of which train steps (no parsing)", steps)):
        print(f"{label:<36} {seconds:>8.1f} {rows / seconds:>9,.0f}")
    print(f"CLSR / SLi-Rec rows/s: {sli_rec['seconds'] / clsr['seconds']:.2f}x "
          f"(vs SLi-Rec's train steps alone: {steps / clsr['seconds']:.2f}x)")


if __name__ == "__main__":
    main()
