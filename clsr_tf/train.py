"""``python -m clsr_tf.train``: prepare data, train CLSR, evaluate, write metrics.json.

The output folder is held by one run at a time and records the run's hyper-parameters
(``clsr_tf.run_folder``): ``--resume`` continues it with the same values, ``--overwrite``
replaces it, and a fresh run refuses a folder that holds one.
Exit status: 0 on success, 2 on bad input (hyper-parameters, data files, the output folder),
130 on Ctrl-C (the last completed epoch's checkpoint is kept), 1 otherwise.
"""

import argparse
import os
import sys
import time

from clsr_tf.cli import add_hparams_arguments, hparams_from_args, make_main, verbosity
from clsr_tf.run_folder import TRAIN_OUTPUTS, RunFolder


def build_parser():
    """The command-line interface.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    p = argparse.ArgumentParser(
        prog="python -m clsr_tf.train",
        description="Train CLSR on a Recommenders sequential data set (prepared on first "
                    "use), early-stop on valid GAUC, evaluate test, write metrics.json.")
    add_hparams_arguments(p, training=True)
    p.add_argument("--output-dir", help="folder for metrics.json, checkpoints, best weights and "
                                        "TensorBoard logs (default: runs/<yaml name>)")
    p.add_argument("--strategy", choices=("none", "mirrored", "multiworker"), default="none",
                   help="data-parallel training: MirroredStrategy over the local GPUs (or "
                        "CPUs), or MultiWorkerMirroredStrategy across hosts (TF_CONFIG)")
    runs = p.add_mutually_exclusive_group()
    runs.add_argument("--resume", action="store_true",
                      help="continue the run in --output-dir from its last checkpoint (its "
                           "hyper-parameters must be the same; epochs, EARLY_STOP and "
                           "write_tfevents may change)")
    runs.add_argument("--overwrite", action="store_true",
                      help="clear the run in --output-dir first (without it, a folder that "
                           "holds a run is refused)")
    p.add_argument("--force-prepare", action="store_true",
                   help="prepare the data set again even if it exists")
    p.add_argument("--protocol", choices=("sampled", "full", "both"), default="sampled",
                   help="test protocol: the paper's sampled negatives (test_num_ngs per "
                        "positive), full ranking of each positive against the whole catalogue "
                        "(Recall/NDCG@5,10,20, MRR), or both (default: sampled)")
    return p


def make_strategy(name):
    """The ``tf.distribute`` strategy for ``--strategy``.

    Args:
        name (str): ``none``, ``mirrored`` or ``multiworker``.

    Returns:
        tf.distribute.Strategy: The strategy (None for ``none``).
    """
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return None


def format_table(metrics):
    """A plain-text table of metrics, one row per metric, one column per split.

    Args:
        metrics (dict): split -> {metric: value}.

    Returns:
        str: The table.
    """
    splits = list(metrics)
    names = []
    for split in splits:
        names += [k for k in metrics[split] if k not in names]
    lines = [f"{'metric':<12}" + "".join(f"{s:>10}" for s in splits)]
    for name in names:
        lines.append(f"{name:<12}" + "".join(
            f"{metrics[s][name]:>10.4f}" if name in metrics[s] else f"{'':>10}" for s in splits))
    return "\n".join(lines)


def run(args):
    """Hold the output folder (``clsr_tf.run_folder``) and run the job in it.

    Args:
        args (argparse.Namespace): Parsed command line.
    """
    hp = hparams_from_args(args, require_data_dir=True)
    output_dir = args.output_dir or os.path.join(
        "runs", os.path.splitext(os.path.basename(args.hparams))[0])
    with RunFolder(output_dir, TRAIN_OUTPUTS) as folder:
        folder.start(hp, resume=args.resume, overwrite=args.overwrite)
        train_and_evaluate(args, hp, output_dir)


def train_and_evaluate(args, hp, output_dir):
    """Prepare the data, train, evaluate the test file, write metrics.json.

    Args:
        args (argparse.Namespace): Parsed command line.
        hp (dict): Validated hyper-parameters.
        output_dir (str): The run folder (held).
    """
    from clsr_tf.datasets import data_path, prepare_data
    from clsr_tf.evaluation import metrics_json, train_seconds
    from clsr_tf.files import write_atomic
    from clsr_tf.sequential import CLSRSequentialModel

    prepare_data(hp, force=args.force_prepare)
    start = time.time()
    model = CLSRSequentialModel(hp, loader=args.loader, verbose=verbosity(args),
                                strategy=make_strategy(args.strategy))
    model.fit(data_path(hp, "train_file"), data_path(hp, "valid_file"), hp["valid_num_ngs"],
              output_dir=output_dir, resume=args.resume)
    elapsed = time.time() - start
    best = next(h for h in model.history if h["epoch"] == model.best_epoch)
    test = model.evaluate_protocols(data_path(hp, "test_file"), hp["test_num_ngs"],
                                    args.protocol)
    metrics = {"valid": best["valid"]}
    if "sampled" in test:
        metrics["test"] = test["sampled"]
    if "full" in test:
        metrics["test_full"] = test["full"]
    print(format_table(metrics))
    protocols = {"valid": f"sampled: 1 positive + {hp['valid_num_ngs']} negatives",
                 "test": f"sampled: 1 positive + {hp['test_num_ngs']} negatives",
                 "test_full": "full ranking: each positive against every catalogue item, "
                              "history items left out"}
    result = dict(metrics, protocols={k: v for k, v in protocols.items() if k in metrics},
                  best_epoch=model.best_epoch, epochs_run=len(model.history),
                  train_seconds=train_seconds(model.history, elapsed), hparams=dict(model.hp),
                  data=model.data_report)
    write_atomic(os.path.join(output_dir, "metrics.json"), metrics_json(result))
    print(f"wrote {os.path.join(output_dir, 'metrics.json')}")


main = make_main(build_parser, run, interrupted="interrupted; resume with --resume")

if __name__ == "__main__":
    sys.exit(main())
