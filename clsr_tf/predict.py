"""``python -m clsr_tf.predict``: score a Recommenders sequential file, batch by batch.

    python -m clsr_tf.predict --hparams FILE (--weights DIR | --saved-model DIR)
                              --input FILE --output FILE [--loader fast|recommenders]
                              [--with-alpha]

Writes one score per input line, in input order (``score<TAB>alpha`` with ``--with-alpha``),
through a temporary file renamed at the end. With the fast loader the file is read in
bounded chunks and a malformed line is reported by file, line and field; Recommenders'
iterator reads the file whole and raises its own errors.

Exit status: 0 on success, 2 on bad input (hyper-parameters, missing files, a malformed
line), 1 otherwise.
"""

import argparse
import os
import sys

from clsr_tf.cli import add_hparams_arguments, hparams_from_args, make_main
from clsr_tf.files import atomic_file
from clsr_tf.hparams import HParamsError


def build_parser():
    """The command-line interface.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    p = argparse.ArgumentParser(
        prog="python -m clsr_tf.predict",
        description="Score every line of a Recommenders sequential file with trained CLSR "
                    "weights or an exported SavedModel; one score per line, in input order.")
    add_hparams_arguments(p, trained=True)
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--weights", help="best_model folder written by training")
    model.add_argument("--saved-model", help="SavedModel folder written by clsr_tf.export")
    p.add_argument("--input", required=True, help="a Recommenders sequential file")
    p.add_argument("--output", required=True, help="score file to write (one line per input "
                                                   "line)")
    p.add_argument("--loader", choices=("fast", "recommenders"), default="fast",
                   help="batch reader: clsr_tf's streaming loader or Recommenders' "
                        "SequentialIterator, which reads the whole file (default: fast)")
    p.add_argument("--with-alpha", action="store_true",
                   help="write 'score<TAB>alpha' (alpha: the long-term fusion weight)")
    return p


def write_scores(scorer, batches, path, with_alpha=False):
    """Score batches and write one line per row to ``path``, atomically.

    Args:
        scorer (ServingScorer): batch -> {"scores": [B], "alpha": [B]} (``clsr_tf.export``).
        batches (iterable): Batch dicts (shared/DESIGN.md section 3).
        path (str): Output file (written to a temporary file beside it, then renamed).
        with_alpha (bool): Write ``score<TAB>alpha``.

    Returns:
        int: Rows written.
    """
    rows = 0
    with atomic_file(path) as f:
        for batch in batches:
            out = scorer(batch)
            if with_alpha:
                f.write("".join(f"{s:.8g}\t{a:.8g}\n"
                                for s, a in zip(out["scores"], out["alpha"])))
            else:
                f.write("".join(f"{s:.8g}\n" for s in out["scores"]))
            rows += len(out["scores"])
    return rows


def run(args):
    """Score ``args.input`` into ``args.output``.

    Args:
        args (argparse.Namespace): Parsed command line.
    """
    from clsr_tf.data.validation import DataChecker
    from clsr_tf.export import keras_scorer, load_scorer
    from clsr_tf.sequential import CLSRSequentialModel, make_batches

    if not os.path.isfile(args.input):
        raise FileNotFoundError(f"{args.input}: input file not found")
    # min_seq_length 1: no line is skipped (a history has at least one entry).
    hp = hparams_from_args(args, min_seq_length=1)
    if args.saved_model:
        scorer = load_scorer(args.saved_model)
        if scorer.max_seq_length != hp["max_seq_length"]:
            raise HParamsError(f"{args.saved_model}: exported with max_seq_length "
                               f"{scorer.max_seq_length}, but the hparams have "
                               f"{hp['max_seq_length']}")
    else:
        model = CLSRSequentialModel.from_weights(hp, args.weights, args.loader)
        scorer = keras_scorer(model.model)
    reader = make_batches(hp, args.loader)
    # The whole input is checked before the first score, so a bad line writes no score file.
    DataChecker(hp, getattr(reader, "parser", None)).check_files(
        {args.input: (args.input, "lines")})
    rows = write_scores(scorer, reader(args.input, 0), args.output, args.with_alpha)
    print(f"wrote {rows} scores to {args.output}")


main = make_main(build_parser, run)

if __name__ == "__main__":
    sys.exit(main())
