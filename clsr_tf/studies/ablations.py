"""Ablations as one grid (paper Figures 6-7, Tables 6-10).

Each row retrains CLSR with a few hyper-parameters changed and evaluates it on the test
file. A row whose hyper-parameters equal an earlier row's (e.g. ``beta_0.1`` when the YAML's
beta is 0.1) reuses that row's metrics and names it in ``same_as``; a row that fails is
recorded with its error and the grid goes on.

With ``runs_dir`` every row trains in its own folder (``<runs_dir>/<row>/``: checkpoints,
best weights, ``hparams.json`` and, once tested, ``result.json``), so a grid that was
stopped continues where it stopped: a finished row with the same hyper-parameters is read
back, a killed one resumes from its last epoch's checkpoint, and a row folder recorded with
other hyper-parameters is refused (the row's error says which), never overwritten.
"""

import json
import os
import time

import pandas as pd

from clsr_tf.datasets import data_path
from clsr_tf.evaluation import metrics_json
from clsr_tf.files import write_atomic
from clsr_tf.hparams import as_dict
from clsr_tf.run_folder import check_continuation, record_hparams
from clsr_tf.studies.common import train_model

BETAS = (0.01, 0.05, 0.1, 0.5, 1.0)
FIXED_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
RECENT_KS = (1, 3, 5, 10)
HEAD = ("name", "group", "setting", "status", "error", "same_as", "best_epoch", "epochs",
        "seconds")
RESULT_FILE = "result.json"


def _grid():
    rows = [("clsr", "base", {}),
            ("no_contrastive", "contrastive", {"contrastive_loss_weight": 0.0})]
    rows += [(f"beta_{b:g}", "beta", {"contrastive_loss_weight": b}) for b in BETAS]
    rows += [(f"alpha_{a:g}", "fixed_alpha", {"manual_alpha": True, "manual_alpha_value": a})
             for a in FIXED_ALPHAS]
    rows += [(f"recent_k_{k}", "recent_k", {"contrastive_recent_k": k}) for k in RECENT_KS]
    rows += [("no_interest_evolve", "interest_evolve", {"interest_evolve": False}),
             ("no_predict_long_short", "predict_long_short", {"predict_long_short": False})]
    rows += [(f"rnn_{m}", "sequential_model", {"sequential_model": m})
             for m in ("gru", "lstm", "time4lstm")]
    rows += [(f"loss_{k}", "contrastive_loss", {"contrastive_loss": k})
             for k in ("bpr", "triplet")]
    rows += [(f"attention_{t}", "attention_type", {"attention_type": t})
             for t in ("mlp", "inner_product")]
    return tuple(rows)


# (name, group, hyper-parameter overrides), in the order the grid runs.
GRID = _grid()


def select(only=None):
    """Rows of the grid chosen by row or group names.

    Args:
        only (list): Row names (``beta_0.5``) or group names (``beta``); None: all rows.

    Returns:
        list: ``(name, group, overrides)`` rows in grid order.

    Raises:
        ValueError: On a name that is neither a row nor a group.
    """
    if not only:
        return list(GRID)
    known = {name for name, _, _ in GRID} | {group for _, group, _ in GRID}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ValueError(f"unknown ablations {unknown}; rows and groups: "
                         f"{', '.join(name for name, _, _ in GRID)}; "
                         f"{', '.join(dict.fromkeys(group for _, group, _ in GRID))}")
    return [row for row in GRID if row[0] in only or row[1] in only]


def setting(overrides):
    """Text of a row's overrides, e.g. ``contrastive_loss_weight=0.5``.

    Args:
        overrides (dict): Hyper-parameter overrides.

    Returns:
        str: ``key=value`` pairs separated by spaces, or ``-`` for none.
    """
    return " ".join(f"{key}={value}" for key, value in overrides.items()) or "-"


def _row_result(row_hp, loader, verbose, row_dir):
    """Train and test one row, in ``row_dir`` when given (read back or resumed from there).

    Returns:
        dict: ``test`` metrics, ``best_epoch``, ``epochs`` and ``train_seconds`` (every
        epoch's, resumed ones included; missing from results written before it was kept).

    Raises:
        RunFolderError: ``row_dir`` holds the row trained with other hyper-parameters.
    """
    path = os.path.join(row_dir, RESULT_FILE) if row_dir else None
    resume = bool(row_dir) and os.path.isdir(row_dir)
    if resume:  # read back when finished, else continued (killed before its test)
        finished = os.path.exists(path)
        check_continuation(row_dir, row_hp, "remove it or pick another --output-dir", finished)
        if finished:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
    if row_dir:
        os.makedirs(row_dir, exist_ok=True)
        record_hparams(row_dir, row_hp)
    model = train_model(row_hp, loader, verbose, output_dir=row_dir, resume=resume)
    result = {"test": model.run_eval(data_path(row_hp, "test_file"), row_hp["test_num_ngs"]),
              "best_epoch": model.best_epoch, "epochs": len(model.history),
              "train_seconds": round(sum(h.get("seconds", 0) for h in model.history), 1)}
    if path:
        write_atomic(path, metrics_json(result))
    return result


def run_ablations(hp, rows, loader="fast", verbose=0, on_row=None, runs_dir=None):
    """Train and test one model per row.

    Args:
        hp (dict): Validated hyper-parameters every row starts from.
        rows (list): ``(name, group, overrides)`` rows (see ``select``).
        loader (str): ``fast`` or ``recommenders``.
        verbose (int): Keras progress output.
        on_row (callable): Called with the table so far after each row (e.g. to save it).
        runs_dir (str): Folder of the rows' runs, which makes the grid resumable (see the
            module docstring); None trains in memory.

    Returns:
        pandas.DataFrame: One row per grid row: ``HEAD`` columns then the test metrics
        (empty for failed rows). ``seconds`` is the row's training time, every epoch
        counted, also for a row read back or resumed (empty where its result did not keep
        it); a failed row gives the seconds until it failed.
    """
    done = {}
    table = []
    for name, group, overrides in rows:
        start = time.time()
        row = dict.fromkeys(HEAD, "")
        row.update(name=name, group=group, setting=setting(overrides), status="ok")
        try:
            row_hp = as_dict(dict(hp, **overrides))
            key = json.dumps(row_hp, sort_keys=True, default=str)
            if key not in done:
                done[key] = (name, _row_result(
                    row_hp, loader, verbose, runs_dir and os.path.join(runs_dir, name)))
            first, result = done[key]
            row.update(result["test"], best_epoch=result["best_epoch"],
                       epochs=result["epochs"], same_as="" if first == name else first,
                       seconds=result.get("train_seconds", ""))
        except Exception as err:  # recorded in the table; the grid goes on
            row.update(status="error", error=f"{type(err).__name__}: {err}",
                       seconds=round(time.time() - start, 1))
        table.append(row)
        if on_row is not None:
            on_row(pd.DataFrame(table))
    return pd.DataFrame(table)
