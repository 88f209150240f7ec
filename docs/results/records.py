"""The campaign's finished runs, kept in the repository so that they survive their machine.

Usage::

    python docs/results/records.py save RUNS_ROOT      # finished runs -> docs/results/runs/
    python docs/results/records.py save RUNS_ROOT --in-progress   # and the killed ones
    python docs/results/records.py restore RUNS_ROOT   # both -> RUNS_ROOT

A run has finished when its folder holds ``result.json`` (a comparison's (model, seed) run, an
ablation row). Its record is that file with ``hparams.json`` and ``test_scores.npz`` beside it:
what ``compare --tables-only`` needs for the tables, the curves and the paired tests.
Checkpoints and weights stay behind, but for the best weights of the MovieLens CLSR runs (3 MB
each), which the disentanglement studies read. ``save`` copies the record of every finished
run under ``RUNS_ROOT`` to the same relative folder of ``docs/results/runs/``; ``restore``
copies every kept record into ``RUNS_ROOT`` where that run has not finished there, so a
campaign started on a new machine skips the runs an earlier machine finished. Links are not
followed (the campaign's side folders link to the runs they share). Git keeps no modification
times, so ``finished.json`` keeps each run's (when its ``result.json`` was written), which
``restore`` gives back: ``collect.py`` reports it.

A run that has trained an epoch but not finished (a ``checkpoints/`` or, for a Recommenders
baseline, a ``last/`` folder, and no ``result.json``) is lost with its machine unless
``save --in-progress`` keeps its whole folder (TensorBoard logs left out) in
``docs/results/runs_in_progress/``, for the end of a session that cannot finish it; ``restore``
gives it back where RUNS_ROOT has no such folder, and the campaign continues it from its last
epoch. Its copy is dropped once the run has finished.

The disentanglement studies keep no runs of their own: their published tables
(``docs/results/<data>/studies/``, by ``collect.py``) are their record, and ``restore`` copies
them into ``RUNS_ROOT/<data>/studies/`` where that folder lacks them, so that ``campaign.sh``
does not run a published study again.
"""

import argparse
import fnmatch
import json
import os
import shutil
import sys

RECORDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs")
RESULT = "result.json"
RECORD_FILES = (RESULT, "hparams.json", "test_scores.npz")
BEST_WEIGHTS = "best_model"
WEIGHTS_KEPT = ("movielens/clsr/seed_*",)  # campaign.sh's studies read their best weights
FINISHED = "finished.json"  # run -> modification time of its result.json (seconds)
IN_PROGRESS = os.path.join(os.path.dirname(RECORDS), "runs_in_progress")
CHECKPOINT_FOLDERS = ("checkpoints", "last")  # CLSR's and SURGE's; the Recommenders runner's
LEFT_OUT = ("logs",)
STUDIES = "studies"  # collect.py publishes a campaign's RUNS_ROOT/<data>/studies/ here


def finished_runs(root):
    """Folders under ``root`` that hold a ``result.json``, relative to ``root``.

    Args:
        root (str): A campaign's RUNS_ROOT, or a records folder.

    Returns:
        list: Relative folder paths, sorted.

    Raises:
        ValueError: A ``result.json`` is not a JSON object (named with its path).
    """
    runs = []
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        if RESULT in files:
            path = os.path.join(folder, RESULT)
            try:
                with open(path, encoding="utf-8") as f:
                    ok = isinstance(json.load(f), dict)
            except ValueError as err:
                raise ValueError(f"{path}: not JSON ({err})") from None
            if not ok:
                raise ValueError(f"{path}: expected a JSON object")
            runs.append(os.path.relpath(folder, root))
    return sorted(runs)


def killed_runs(root):
    """Folders under ``root`` of runs that have trained an epoch and not finished.

    Args:
        root (str): A campaign's RUNS_ROOT, or an in-progress records folder.

    Returns:
        list: Relative folder paths, sorted.
    """
    runs = []
    for folder, subfolders, files in os.walk(root):
        if RESULT not in files and any(c in subfolders for c in CHECKPOINT_FOLDERS):
            runs.append(os.path.relpath(folder, root))
            subfolders.clear()
        subfolders.sort()
    return sorted(runs)


def _temporary(name):
    """A checkpoint or file still being written (TensorFlow's, clsr_tf.files', this module's)."""
    return name.endswith(("_temp", ".part")) or ".tmp-" in name


def _copy_folder(source, dest):
    """Replace folder ``dest`` by a copy of ``source`` (no logs, no hidden files, no links)."""
    def ignored(folder, names):
        return [n for n in names if n in LEFT_OUT or n.startswith(".") or _temporary(n)
                or os.path.islink(os.path.join(folder, n))]

    temp = f"{dest}.part"
    shutil.rmtree(temp, ignore_errors=True)
    shutil.copytree(source, temp, ignore=ignored)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(temp, dest)


def _weights_kept(run):
    return any(fnmatch.fnmatch(run.replace(os.sep, "/"), p) for p in WEIGHTS_KEPT)


def copy_record(source, dest, weights=False):
    """Copy one run's record files from folder ``source`` to folder ``dest`` (created).

    ``result.json`` goes last, so an interrupted copy never looks finished.

    Args:
        source (str): A finished run's folder.
        dest (str): Its copy.
        weights (bool): Copy its best weights too.
    """
    os.makedirs(dest, exist_ok=True)
    if weights and os.path.isdir(os.path.join(source, BEST_WEIGHTS)):
        _copy_folder(os.path.join(source, BEST_WEIGHTS), os.path.join(dest, BEST_WEIGHTS))
    for name in RECORD_FILES[1:] + RECORD_FILES[:1]:
        if os.path.isfile(os.path.join(source, name)):
            temp = os.path.join(dest, f".{name}.part")
            shutil.copy2(os.path.join(source, name), temp)
            os.replace(temp, os.path.join(dest, name))


def _finished_times(records):
    path = os.path.join(records, FINISHED)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save(root, records=RECORDS, in_progress=IN_PROGRESS, keep_killed=False):
    """Keep the record of every run finished under ``root`` (and, ``keep_killed``, the folder
    of every killed one: run it once the campaign has stopped).

    Args:
        root (str): The campaign's RUNS_ROOT.
        records (str): The records folder.
        in_progress (str): The folder of the kept killed runs; the copy of a run that has
            finished is removed from it.
        keep_killed (bool): Copy the killed runs' folders there.

    Returns:
        list: The runs saved (relative paths), finished then killed.
    """
    runs = finished_runs(root)
    killed = killed_runs(root) if keep_killed else []
    for run in killed:
        os.makedirs(os.path.dirname(os.path.join(in_progress, run)), exist_ok=True)
        _copy_folder(os.path.join(root, run), os.path.join(in_progress, run))
    for run in set(runs) & set(killed_runs(in_progress) if os.path.isdir(in_progress) else []):
        shutil.rmtree(os.path.join(in_progress, run))
    times = _finished_times(records)
    for run in runs:
        copy_record(os.path.join(root, run), os.path.join(records, run), _weights_kept(run))
        times[run] = round(os.path.getmtime(os.path.join(root, run, RESULT)))
    if runs:
        temp = os.path.join(records, f".{FINISHED}.part")
        with open(temp, "w", encoding="utf-8") as f:
            json.dump(dict(sorted(times.items())), f, indent=1)
            f.write("\n")
        os.replace(temp, os.path.join(records, FINISHED))
    return runs + killed


def restore_studies(root, published):
    """Copy the published studies' tables into ``root`` where it lacks them.

    Args:
        root (str): The campaign's RUNS_ROOT.
        published (str): The folder whose ``<data>/studies/`` hold the published tables.

    Returns:
        list: The files copied (relative paths).
    """
    copied = []
    for data in sorted(os.listdir(published)) if os.path.isdir(published) else []:
        studies = os.path.join(published, data, STUDIES)
        if not os.path.isdir(studies):
            continue
        for name in sorted(os.listdir(studies)):
            dest = os.path.join(root, data, STUDIES, name)
            if os.path.isfile(os.path.join(studies, name)) and not os.path.exists(dest):
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copy2(os.path.join(studies, name), dest)
                copied.append(os.path.relpath(dest, root))
    return copied


def restore(root, records=RECORDS, in_progress=IN_PROGRESS, published=None):
    """Copy every kept record into ``root`` where its run has not finished, every kept
    killed run where ``root`` has no folder for it, and the published studies' tables.

    Args:
        root (str): The campaign's RUNS_ROOT (created).
        records (str): The records folder.
        in_progress (str): The folder of the kept killed runs.
        published (str): The folder of the published tables (``<data>/studies/``); None:
            restore no studies.

    Returns:
        list: The runs restored (relative paths), finished then killed.
    """
    done = set(finished_runs(root)) if os.path.isdir(root) else set()
    runs = [run for run in finished_runs(records) if run not in done] \
        if os.path.isdir(records) else []
    killed = [run for run in killed_runs(in_progress) if run not in done | set(runs)
              and not os.path.exists(os.path.join(root, run))] \
        if os.path.isdir(in_progress) else []
    for run in killed:
        os.makedirs(os.path.dirname(os.path.join(root, run)), exist_ok=True)
        _copy_folder(os.path.join(in_progress, run), os.path.join(root, run))
    times = _finished_times(records) if runs else {}
    for run in runs:
        copy_record(os.path.join(records, run), os.path.join(root, run), _weights_kept(run))
        if run in times:
            os.utime(os.path.join(root, run, RESULT), (times[run], times[run]))
    if published:
        restore_studies(root, published)
    return runs + killed


def main(argv=None):
    """Run ``save`` or ``restore``; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("save", "restore"))
    p.add_argument("runs_root", help="the campaign's RUNS_ROOT")
    p.add_argument("--records", default=RECORDS, help="the records folder (default: %(default)s)")
    p.add_argument("--in-progress", action="store_true",
                   help="save: also keep the killed runs' folders, in --in-progress-dir")
    p.add_argument("--in-progress-dir", default=IN_PROGRESS,
                   help="the kept killed runs (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        if args.action == "save":
            runs = save(args.runs_root, args.records, args.in_progress_dir, args.in_progress)
        else:
            runs = restore(args.runs_root, args.records, args.in_progress_dir,
                           os.path.dirname(os.path.abspath(args.records)))
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    where = f"to {args.records}" if args.action == "save" else f"into {args.runs_root}"
    print(f"records: {args.action}d {len(runs)} runs {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
