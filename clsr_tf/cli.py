"""What clsr_tf's commands share: the hyper-parameter arguments, progress verbosity, quiet
TensorFlow start-up, and the exit status (0 success, 1 failure, 2 bad input with one line
naming the problem, or its traceback with ``--debug``; 130 on Ctrl-C). A full disk is a
failure (1) told in one line, not a traceback."""

import contextlib
import errno
import os
import sys

from clsr_tf.data.errors import DataFormatError
from clsr_tf.hparams import HParamsError
from clsr_tf.run_folder import RunFolderError

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
# Errors that mean the user's input is wrong (a hyper-parameter, a data file, a path or an
# output folder).
BAD_INPUT = (HParamsError, DataFormatError, RunFolderError, FileNotFoundError,
             NotADirectoryError, IsADirectoryError, PermissionError)
# The OS's words for a full disk or quota, which TensorFlow's own errors carry too.
DISK_FULL = "No space left on device"


def disk_full(err):
    """Whether an exception says the disk (or the user's quota) is full.

    Args:
        err (BaseException): The exception.

    Returns:
        bool: True for ``OSError`` ENOSPC/EDQUOT and for errors (TensorFlow's) whose message
        holds the OS's "No space left on device".
    """
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return DISK_FULL in str(err)


def add_hparams_arguments(parser, training=False, trained=False, set_help=None):
    """Add ``--hparams``, ``--data-dir``, ``--set`` and, for commands that train,
    ``--epochs``, ``--loader`` and ``--quiet``.

    Args:
        parser (argparse.ArgumentParser): The parser to extend.
        training (bool): Also add the training arguments.
        trained (bool): The command reads a trained model (the helps say so).
        set_help (str): Help of ``--set`` (default: a generic one).
    """
    parser.add_argument("--hparams", required=True, help=(
        "the YAML the model was trained with" if trained else
        "YAML in the Recommenders data/model/train/info layout") + ", e.g. hparams/movielens.yaml")
    parser.add_argument("--data-dir", help="folder of the prepared data set (default: the "
                                           "YAML's data_dir, relative to the YAML)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=set_help or "override one hyper-parameter, YAML-typed; repeatable" + (
                            " (use the training run's overrides)" if trained else
                            " (e.g. --set contrastive_loss=bpr --set layer_sizes=[64,32])"))
    if training:
        parser.add_argument("--epochs", type=int, help="number of epochs (overrides the YAML)")
        parser.add_argument("--loader", choices=("fast", "recommenders"), default="fast",
                            help="batch reader: clsr_tf's streaming loader or Recommenders' "
                                 "SequentialIterator (default: fast)")
        parser.add_argument("--quiet", action="store_true", help="no per-step progress bar")


def hparams_from_args(args, require_data_dir=False, **overrides):
    """Validated hyper-parameters from ``--hparams``, ``--set``, ``--data-dir``, ``--epochs``.

    Args:
        args (argparse.Namespace): Parsed command line (see ``add_hparams_arguments``).
        require_data_dir (bool): Fail unless a data folder is known.
        **overrides: Further values that win over the command line.

    Returns:
        dict: Validated hyper-parameters.

    Raises:
        HParamsError: On a bad value, or no data folder when required.
    """
    from clsr_tf.hparams import as_dict, load_hparams, parse_overrides

    values, origins = parse_overrides(args.set)
    if getattr(args, "epochs", None) is not None:
        values["epochs"], origins["epochs"] = args.epochs, f"--epochs {args.epochs}"
    if args.data_dir:
        values["data_dir"] = os.path.abspath(args.data_dir)
        origins["data_dir"] = f"--data-dir {args.data_dir}"
    values.update(overrides)
    hp = as_dict(load_hparams(args.hparams, origins=origins, **values))
    if require_data_dir and not hp["data_dir"]:
        raise HParamsError(f"{args.hparams}: no data_dir; set it in the YAML or pass --data-dir")
    return hp


def verbosity(args):
    """Keras progress output: none with ``--quiet``, a bar on a terminal, else a line an epoch.

    Args:
        args (argparse.Namespace): Parsed command line with ``quiet``.

    Returns:
        int: 0, 1 or 2.
    """
    return 0 if args.quiet else 1 if sys.stdout.isatty() else 2


def run_command(run, args, bad_input=(), interrupted="interrupted"):
    """Run a command's body with the shared exit-status convention.

    Args:
        run (callable): The command's body, called as ``run(args)``; returns None or an
            exit status.
        args (argparse.Namespace): Parsed command line (``debug``: re-raise instead).
        bad_input (tuple): The command's own bad-input exception types.
        interrupted (str): The line shown on Ctrl-C.

    Returns:
        int: ``run``'s status (0 for None), 2 on bad input (the message goes to stderr), 1
        on a full disk (one line), or 130 on Ctrl-C.
    """
    try:
        return run(args) or 0
    except BAD_INPUT + tuple(bad_input) as err:
        if getattr(args, "debug", False):
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        if getattr(args, "debug", False):
            raise
        print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if getattr(args, "debug", False) or not disk_full(err):
            raise
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        print(f"error: {where}no space left on device; the files written before are whole "
              "(every output is written to a temporary and renamed), the temporaries are "
              f"swept at the next start; free some space and run the command again "
              f"({type(err).__name__})", file=sys.stderr)
        return EXIT_FAILED


@contextlib.contextmanager
def _stderr_to_devnull():
    """Send file descriptor 2 to /dev/null for the block (C++ code writes there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet_tensorflow():
    """Import TensorFlow without its C++ start-up noise and keep its logging to errors.

    TensorFlow prints CUDA/cuDNN/cuFFT/cuBLAS factory registration, driver probing, oneDNN
    and CPU-feature notices from C++ while it loads, before any log level applies; they go
    to /dev/null here. ``TF_CPP_MIN_LOG_LEVEL=3`` (unless set by the user) then keeps later
    C++ logging off; Python exceptions are unaffected. Commands call this unless ``-v``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    with _stderr_to_devnull():
        import tensorflow as tf
    tf.get_logger().setLevel("ERROR")


def make_main(build_parser, run, bad_input=(), interrupted="interrupted"):
    """A command's entry point: ``main(argv=None) -> exit status`` (see ``run_command``).

    Args:
        build_parser (callable): Returns the command's ``argparse.ArgumentParser``.
        run (callable): The command's body.
        bad_input (tuple): The command's own bad-input exception types.
        interrupted (str): The line shown on Ctrl-C (e.g. how to resume).

    Returns:
        callable: ``main(argv=None)``; ``argv`` defaults to sys.argv[1:].
    """
    def main(argv=None):
        parser = build_parser()
        parser.add_argument("-v", "--verbose", action="store_true",
                            help="show TensorFlow's start-up and C++ log messages")
        parser.add_argument("--debug", action="store_true",
                            help="show the full traceback of bad input and of Ctrl-C instead "
                                 "of one line")
        args = parser.parse_args(argv)
        if not args.verbose:
            quiet_tensorflow()
        return run_command(run, args, bad_input, interrupted)

    return main
