"""Conventions shared by clsr_tf's commands: bad input exits 2 with one line naming the problem."""

import sys

from clsr_tf.data.errors import DataFormatError
from clsr_tf.hparams import HParamsError

EXIT_BAD_INPUT = 2
# Errors that mean the user's input is wrong (a hyper-parameter, a data file, a path).
BAD_INPUT = (HParamsError, DataFormatError, FileNotFoundError)


def run_command(run, args):
    """Run a command's body with the shared exit-status convention.

    Args:
        run (callable): The command's body, called as ``run(args)``.
        args (argparse.Namespace): Parsed command line.

    Returns:
        int: 0 on success, 2 on bad input (the message goes to stderr).
    """
    try:
        run(args)
    except BAD_INPUT as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
