"""Execute a notebook of ``notebooks/`` in place, so that it is committed with its outputs.

Usage (from the repository root)::

    python docs/results/execute_notebook.py notebooks/00_quick_start.ipynb
    python docs/results/execute_notebook.py notebooks/01_disentanglement.ipynb \\
        'WEIGHTS="../runs/campaign/movielens/clsr/seed_1/best_model"'

Each ``KEY=VALUE`` replaces a parameter of the notebook's parameters cell (VALUE as Python
source, as it will read in the cell). The notebook runs in its own folder through
Recommenders' ``notebook_utils.execute_notebook`` (as the notebook tests do) and is written
back only when every cell has run, its parameters cell as it was (the defaults a reader
starts from, and what the notebook tests override; each notebook's first cell names the
parameters its outputs were rendered with). TensorFlow's C++ start-up lines on stderr (no
CUDA driver, absl's "before InitializeLog" notice) are machine noise and are left out of the
saved outputs; every other output is kept as it came.
"""

import argparse
import ast
import os
import re
import sys
import tempfile
import time

# A line of TensorFlow's C++ logging (glog/absl format, with the second line of its CPU
# notice) or absl's pre-init notice.
NATIVE_LOG = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl"
                        r"|To enable the following instructions: )")


def _parameters_cell(notebook):
    return next((cell for cell in notebook.cells
                 if "parameters" in cell.get("metadata", {}).get("tags", [])), None)


def as_committed(path, source):
    """Drop TensorFlow's C++ log lines from the stderr outputs of an executed notebook file
    and give its parameters cell back the source of the notebook it was executed from."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    executed, original = _parameters_cell(notebook), _parameters_cell(source)
    if executed is not None and original is not None:
        executed.source = original.source
    for cell in notebook.cells:
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines = output["text"].splitlines(keepends=True)
                output["text"] = "".join(line for line in lines if not NATIVE_LOG.match(line))
                if not output["text"].strip():
                    continue
            outputs.append(output)
        if cell.cell_type == "code":
            cell.outputs = outputs
    nbformat.write(notebook, path)


def parameter(text):
    """``KEY=VALUE`` -> (KEY, the value of the Python literal VALUE)."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"{text!r}: VALUE is not a Python literal") from None


def main(argv=None):
    """Execute the notebook; returns the exit status."""
    from recommenders.utils.notebook_utils import execute_notebook

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebook", help="path of the notebook")
    p.add_argument("parameters", nargs="*", type=parameter, help="KEY=VALUE")
    p.add_argument("--timeout", type=int, default=7200, help="seconds per cell")
    args = p.parse_args(argv)
    notebook = os.path.abspath(args.notebook)
    folder = os.path.dirname(notebook)
    start = time.time()
    os.chdir(folder)  # the notebooks read ../hparams and ../data
    import nbformat

    source = nbformat.read(notebook, as_version=4)
    fd, output = tempfile.mkstemp(suffix=".ipynb", dir=folder, prefix=".executing-")
    os.close(fd)
    try:
        execute_notebook(notebook, output, parameters=dict(args.parameters),
                         timeout=args.timeout)
        as_committed(output, source)
        os.chmod(output, 0o644)  # mkstemp's file is private
        os.replace(output, notebook)
    finally:
        if os.path.exists(output):
            os.remove(output)
    print(f"{args.notebook}: executed in {time.time() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
