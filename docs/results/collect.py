"""Copy a comparison's tables and figures into ``docs/results/<name>/`` with their provenance.

Usage::

    python docs/results/collect.py RUNS_DIR NAME --command "python -m clsr_tf.compare ..."

``RUNS_DIR`` is the ``--output-dir`` of ``python -m clsr_tf.compare`` (with or without
``--seeds``). The tables (``comparison.md/csv``, ``runs.csv``, ``comparison_full.md/csv``) and
``valid_curves.png`` are copied as they are, and so are the tables and figures of the studies
in ``RUNS_DIR/studies/`` (``python -m clsr_tf.study ... --output-dir RUNS_DIR/studies``);
``provenance.json`` records the command, the code
version of the runs (from their ``result.json``), the package versions and the machine of this
interpreter, and the training time of every run.
"""

import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata

ARTEFACTS = ("comparison.md", "comparison.csv", "runs.csv", "comparison_full.md",
             "comparison_full.csv", "valid_curves.png")
STUDY_ARTEFACTS = (".md", ".csv", ".png")
PACKAGES = ("tensorflow", "tf-keras", "numpy", "pandas", "recommenders", "scipy")


def cpu_model():
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def run_times(runs_dir):
    """Training time and epochs of every finished run of a comparison folder.

    Args:
        runs_dir (str): The comparison's output folder.

    Returns:
        list: ``{"run", "train_seconds", "epochs_run", "best_epoch", "finished"}`` per
        ``result.json``, ``finished`` as its modification time (seconds since the epoch).
    """
    rows = []
    for path in sorted(glob.glob(os.path.join(runs_dir, "**", "result.json"), recursive=True)):
        with open(path) as f:
            result = json.load(f)
        rows.append({"run": os.path.relpath(os.path.dirname(path), runs_dir),
                     "train_seconds": result.get("train_seconds"),
                     "epochs_run": result.get("epochs_run"),
                     "best_epoch": result.get("best_epoch"),
                     "finished": round(os.path.getmtime(path))})
    return rows


def git_commit(folder):
    """The commit checked out in ``folder`` (None outside a repository)."""
    out = subprocess.run(["git", "-C", folder, "rev-parse", "HEAD"], capture_output=True,
                         text=True)
    return out.stdout.strip() or None


def main(argv=None):
    """Copy the artefacts and write ``provenance.json``; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs_dir", help="the comparison's --output-dir")
    p.add_argument("name", help="sub-folder of docs/results/ to write")
    p.add_argument("--command", required=True, help="the command that produced runs_dir")
    p.add_argument("--code-dir", default=".", help="checkout the runs were made from")
    args = p.parse_args(argv)
    if not os.path.isfile(os.path.join(args.runs_dir, "comparison.csv")):
        print(f"error: {args.runs_dir}: no comparison.csv (not a finished comparison)",
              file=sys.stderr)
        return 2
    dest = os.path.join(os.path.dirname(os.path.abspath(__file__)), args.name)
    os.makedirs(dest, exist_ok=True)
    copied = [a for a in ARTEFACTS if os.path.isfile(os.path.join(args.runs_dir, a))]
    studies = os.path.join(args.runs_dir, "studies")
    if os.path.isdir(studies):
        os.makedirs(os.path.join(dest, "studies"), exist_ok=True)
        copied += sorted(os.path.join("studies", n) for n in os.listdir(studies)
                         if n.endswith(STUDY_ARTEFACTS))
    for name in copied:
        shutil.copyfile(os.path.join(args.runs_dir, name), os.path.join(dest, name))
    times = run_times(args.runs_dir)
    provenance = {
        "command": args.command, "commit": git_commit(args.code_dir),
        "python": platform.python_version(),
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": None},
        "train_seconds_total": round(sum(r["train_seconds"] or 0 for r in times), 1),
        "runs": times, "files": copied}
    with open(os.path.join(dest, "provenance.json"), "w") as f:
        json.dump(provenance, f, indent=2)
    print(f"wrote {len(copied)} files and provenance.json to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
