"""``python -m clsr_tf.study NAME``: the disentanglement studies of CLSR (paper 4.2, 4.3).

Studies (a model is trained first unless ``--weights`` names a ``best_model`` folder written
by ``python -m clsr_tf.train`` with the same hyper-parameters):

- ``shuffle``: test metrics on the original and on shuffled histories (Table 4);
- ``truncate``: ... on histories truncated to their last k items (``--k``, or a curve over
  ``--ks``; Table 4, Figure 5a);
- ``one_side``: the adaptive fusion next to alpha forced to 1 and 0 (Figures 3, 5b);
- ``fusion_weight``: mean alpha and metrics per behaviour type of the test positives, from
  the ``.meta.tsv`` sidecar (``--column``; Table 3);
- ``ground_truth``: synthetic data only: alpha and metrics per true source, and linear probes
  of the true interests from u_l and u_s, for CLSR and CLSR with beta 0 (always trained);
- ``ablations``: one retrained model per grid row (``--only`` for a subset; Figures 6-7,
  Tables 6-10). Each row trains in ``OUTPUT_DIR/ablations_runs/seed_<s>/<row>/``, so a grid
  run again continues where it stopped (finished rows are read back, a killed one resumes).

Each writes ``OUTPUT_DIR/<study>.csv``, ``.md`` and ``.png`` (atomically) and prints the table.
``--seeds 1,2,3`` runs the study once per seed (a ``seed`` column tells the runs apart) and
adds ``<study>_summary.csv``/``.md``/``.png``: mean and standard deviation over the seeds.
Exit status: 0 on success, 2 on bad input (arguments, hyper-parameters, data), 1 otherwise.
"""

import argparse
import os
import sys

from clsr_tf.cli import add_hparams_arguments, hparams_from_args, make_main, verbosity
from clsr_tf.run_folder import RunFolder

STUDIES = ("shuffle", "truncate", "one_side", "fusion_weight", "ground_truth", "ablations")
DEFAULT_KS = (1, 3, 5, 10, 20)


class StudyError(ValueError):
    """Arguments that do not fit the study."""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_ints(text):
    return [_positive_int(part) for part in text.split(",")]


def _seeds(text):
    seeds = []
    for part in text.split(","):
        try:
            seeds.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected integers like 1,2,3, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"repeated seed in {text!r}")
    return seeds


def _names(text):
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser():
    """The command-line interface.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    p = argparse.ArgumentParser(
        prog="python -m clsr_tf.study",
        description="Disentanglement studies of CLSR: counterfactual protocols (shuffle, "
                    "truncate), one-side interests, fusion weight per behaviour, ground truth "
                    "on synthetic data, ablations.")
    p.add_argument("study", choices=STUDIES, help="the study to run")
    add_hparams_arguments(p, training=True)
    p.add_argument("--output-dir", help="where <study>.csv/.md/.png go "
                                        "(default: runs/<yaml name>/studies)")
    p.add_argument("--weights", help="best_model folder of python -m clsr_tf.train: use it "
                                     "instead of training (not for ablations); with --seeds, "
                                     "a path with {seed}, e.g. a compare --seeds campaign's "
                                     "runs/compare_movielens/clsr/seed_{seed}/best_model")
    p.add_argument("--k", type=_positive_int, help="truncate: keep the last K history items")
    p.add_argument("--ks", type=_positive_ints,
                   help="truncate: a curve over several K, e.g. 1,3,5,10,20 (the default)")
    p.add_argument("--only", type=_names, help="ablations: rows or groups to run, e.g. "
                                               "no_contrastive,beta")
    p.add_argument("--column", help="fusion_weight: meta sidecar column of the behaviour type "
                                    "(default: source if present, else behavior)")
    p.add_argument("--seeds", type=_seeds,
                   help="run once per seed and summarise (mean, std), e.g. 1,2,3 "
                        "(default: the YAML's seed, once)")
    return p


def _check_args(args):
    """Reject options that the chosen study does not take."""
    own = {"k": "truncate", "ks": "truncate", "only": "ablations", "column": "fusion_weight"}
    for option, study in own.items():
        if getattr(args, option) is not None and args.study != study:
            raise StudyError(f"--{option} applies to the {study} study only")
    if args.k is not None and args.ks is not None:
        raise StudyError("give either --k or --ks")
    if args.weights and args.study == "ablations":
        raise StudyError("--weights does not apply to ablations (every row is retrained)")
    if args.weights and args.seeds and "{seed}" not in args.weights:
        raise StudyError("--seeds with --weights needs a path with {seed} (one trained model "
                         "per seed)")
    if args.weights and "{seed}" in args.weights and not args.seeds:
        raise StudyError(f"--weights {args.weights}: a path with {{seed}} needs --seeds")
    if args.only:
        from clsr_tf.studies.ablations import select

        try:
            select(args.only)
        except ValueError as err:
            raise StudyError(str(err)) from err


def _preflight(args, hp):
    """Study-specific checks on the prepared data, before any training."""
    from clsr_tf.datasets import data_path
    from clsr_tf.studies.fusion_weight import read_meta

    if args.study == "fusion_weight" and args.column:
        meta = read_meta(data_path(hp, "test_file"))
        if args.column not in meta:
            raise StudyError(f"--column {args.column}: the meta sidecar has "
                             f"{list(meta.columns)}")
    if args.study == "ground_truth" and hp["dataset"] != "synthetic":
        raise StudyError(f"ground_truth needs the synthetic data set, not {hp['dataset']!r}")
    if args.study == "one_side" and hp["manual_alpha"]:
        raise StudyError("one_side needs the adaptive fusion; unset manual_alpha")


def trained_model(hp, args, verbose):
    """The model to study: loaded from ``--weights`` or trained.

    Args:
        hp (dict): Validated hyper-parameters.
        args (argparse.Namespace): Parsed command line.
        verbose (int): Keras progress output.

    Returns:
        CLSRSequentialModel: The model.
    """
    from clsr_tf.sequential import CLSRSequentialModel
    from clsr_tf.studies.common import train_model

    if not args.weights:
        return train_model(hp, args.loader, verbose)
    weights = args.weights.replace("{seed}", str(hp["seed"]))
    if not os.path.isdir(weights):
        raise FileNotFoundError(f"--weights {weights}: no such folder")
    return CLSRSequentialModel.from_weights(hp, weights, args.loader, verbose)


def _run_once(args, hp, verbose, on_partial, runs_dir):
    """One run of the study (one seed; ablations: its rows' runs in ``runs_dir``); returns
    its table."""
    from clsr_tf.datasets import data_path
    from clsr_tf.sequential import FileScorer
    from clsr_tf.studies import ablations, counterfactual, one_side
    from clsr_tf.studies.common import train_model
    from clsr_tf.studies.fusion_weight import default_column, fusion_weight_study, read_meta
    from clsr_tf.studies.ground_truth import ground_truth_study

    name = args.study
    if name == "ablations":
        return ablations.run_ablations(hp, ablations.select(args.only), args.loader, verbose,
                                       on_row=on_partial, runs_dir=runs_dir)
    seq = trained_model(hp, args, verbose)
    model, batches = seq.model, seq.batches
    test, num_ngs = data_path(hp, "test_file"), hp["test_num_ngs"]
    if name == "shuffle":
        return counterfactual.shuffle_study(model, batches, test, num_ngs, hp["seed"])
    if name == "truncate":
        ks = [args.k] if args.k else args.ks or list(DEFAULT_KS)
        return counterfactual.truncate_study(model, batches, test, num_ngs, ks)
    if name == "one_side":
        return one_side.one_side_study(model, batches, test, num_ngs)
    if name == "fusion_weight":
        meta = read_meta(test)
        return fusion_weight_study(hp, FileScorer(model, batches)(test), meta,
                                   args.column or default_column(meta), num_ngs)
    beta0 = train_model(dict(hp, contrastive_loss_weight=0.0), args.loader, verbose)
    return ground_truth_study({"clsr": model, "clsr_beta0": beta0.model}, batches, hp)


def run_study(args, hp, output_dir, verbose):
    """Run one study (once per seed of ``--seeds``) and write its outputs.

    Args:
        args (argparse.Namespace): Parsed command line.
        hp (dict): Validated hyper-parameters (data prepared).
        output_dir (str): Destination folder.
        verbose (int): Keras progress output.

    Returns:
        tuple: (the table to show: the summary over seeds, or the single run's table, as a
        pandas.DataFrame; dict of the written paths).
    """
    import pandas as pd

    from clsr_tf.studies.plots import PLOTS
    from clsr_tf.studies.report import seed_summary, write_outputs

    name = args.study
    seeds = args.seeds or [hp["seed"]]
    runs = []

    def with_seed(table, seed):  # a seed column only when there are several runs
        if len(seeds) > 1:
            table = table.copy()
            table.insert(0, "seed", seed)
        return table

    def write_partial(partial):  # ablations: the table so far after each row
        write_outputs(pd.concat(runs + [with_seed(partial, seed)]), output_dir, name)

    for seed in seeds:
        runs_dir = os.path.join(output_dir, "ablations_runs", f"seed_{seed}")
        runs.append(with_seed(_run_once(args, dict(hp, seed=seed), verbose, write_partial,
                                        runs_dir), seed))
    table = pd.concat(runs, ignore_index=True)
    if len(runs) == 1:
        return table, write_outputs(table, output_dir, name, PLOTS[name](table))
    paths = write_outputs(table, output_dir, name)
    summary = seed_summary(table)
    paths.update({f"summary_{k}": v for k, v in write_outputs(
        summary, output_dir, f"{name}_summary", PLOTS[name](summary)).items()})
    return summary, paths


def run(args):
    """Check the arguments, prepare the data, run the study, print its table.

    Args:
        args (argparse.Namespace): Parsed command line.
    """
    from clsr_tf.datasets import prepare_data
    from clsr_tf.studies.report import markdown_table

    _check_args(args)
    hp = hparams_from_args(args, require_data_dir=True)
    prepare_data(hp)
    _preflight(args, hp)
    output_dir = args.output_dir or os.path.join(
        "runs", os.path.splitext(os.path.basename(args.hparams))[0], "studies")
    with RunFolder(output_dir):  # one study writing there at a time, no leftovers
        table, paths = run_study(args, hp, output_dir, verbosity(args))
    print(markdown_table(table))
    print("wrote " + ", ".join(paths.values()))


main = make_main(build_parser, run, bad_input=(StudyError,))

if __name__ == "__main__":
    sys.exit(main())
