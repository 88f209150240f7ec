"""``python -m clsr_tf.compare``: CLSR and the baselines side by side on one data set.

The data set is prepared once (the shared ``--hparams``, as ``clsr_tf.train`` does); every
model trains on the same train file with early stopping on the valid GAUC and scores the same
test lines (1 positive + ``test_num_ngs`` sampled negatives) through
``clsr_tf.evaluation.evaluate``. CLSR and SURGE run in this process; Recommenders' models each
run in a subprocess (``clsr_tf.baselines.recommenders_runner``), since importing them turns
eager execution off for the whole process.

Outputs in ``--output-dir``: ``<model>/result.json`` per model (a rerun skips the models that
have one unless ``--force``; a run killed before it resumes from its last epoch's
checkpoint), ``comparison.csv`` and ``comparison.md``. With ``--seeds 1,2,3`` every model runs
once per seed (``<model>/seed_<s>/``); ``runs.csv`` then holds every run, ``comparison.*``
the mean and standard deviation over seeds and the paired tests of CLSR's lead
(``clsr_tf.significance``), and ``valid_curves.png`` the validation GAUC per epoch.
One comparison writes into a folder at a time (``clsr_tf.run_folder``); each run's folder
records its hyper-parameters (``hparams.json``), and a run kept or continued with other ones
is refused before anything trains (``--force`` reruns).
Exit status: 0 when every model ran, 1 when one or more failed (their rows say why), 2 on bad
input (shared hyper-parameters, data files, the output folder), 130 on Ctrl-C.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd

from clsr_tf.baselines import RECOMMENDERS_MODELS
from clsr_tf.cli import add_hparams_arguments, make_main, verbosity
from clsr_tf.evaluation import metrics_json
from clsr_tf.files import write_atomic
from clsr_tf.hparams import PREPARE_PREFIX, SCHEMA, HParamsError, parse_overrides, read_yaml
from clsr_tf.run_folder import RunFolder, check_continuation, record_hparams

IN_PROCESS = ("clsr", "surge")
MODELS = ("clsr", "sli_rec", "surge", "gru", "caser", "a2svd", "nextitnet", "sum")
EXIT_MODEL_FAILED = 1
NOT_RUN = "not run yet"  # status of a model none of whose runs has finished
# Runner output lines echoed while a subprocess trains.
_ECHO = ("epoch", "early stop", "best epoch", "full ranking")


def build_parser():
    """The command-line interface.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    p = argparse.ArgumentParser(
        prog="python -m clsr_tf.compare",
        description="Train CLSR and baselines on the same prepared data set, early-stop each "
                    "on valid GAUC, score the same test lines, write comparison.csv/.md.")
    add_hparams_arguments(
        p, training=True,
        set_help="override a hyper-parameter, YAML-typed; repeatable. KEY applies to every "
                 "model that has it (CLSR's keys also set the shared data and protocol); "
                 "MODEL.KEY to one model (e.g. --set sli_rec.hidden_size=16)")
    p.add_argument("--models", default=",".join(MODELS),
                   help=f"comma-separated models (default: {','.join(MODELS)})")
    p.add_argument("--output-dir", help="folder of the results (default: runs/compare_<yaml "
                                        "name>)")
    p.add_argument("--baseline-hparams",
                   help="folder of the baselines' YAMLs (default: baselines/ next to --hparams)")
    rerun = p.add_mutually_exclusive_group()
    rerun.add_argument("--force", action="store_true",
                       help="rerun the models whose result.json exists")
    rerun.add_argument("--tables-only", action="store_true",
                       help="train and score nothing: write the tables of the runs that "
                            "have finished in --output-dir (marked in progress if some have "
                            "not)")
    p.add_argument("--protocol", choices=("sampled", "full", "both"), default="sampled",
                   help="test protocol: sampled negatives (comparison.md), or also full "
                        "ranking against the whole catalogue (every model, "
                        "comparison_full.md; a finished run is scored from its best weights "
                        "without training again); full and both give both (default: sampled)")
    p.add_argument("--seeds", type=seed_list, metavar="S1,S2,...",
                   help="run every model once per seed; report mean +- std and paired tests "
                        "of CLSR's lead over seeds and over users")
    p.add_argument("--first-seed-only", metavar="M1,M2,...", default="",
                   help="with --seeds: these models run with the first seed only (a cheaper "
                        "campaign; their rows have no std and no test over seeds)")
    p.add_argument("--baselines-python", metavar="PATH",
                   help="Python interpreter of Recommenders' baselines (e.g. a TensorFlow 2.15 "
                        "environment's bin/python; it needs recommenders and tensorflow); CLSR "
                        "and SURGE run in this one (default: this interpreter)")
    return p


def seed_list(text):
    """``--seeds`` as a list of distinct non-negative integers.

    Args:
        text (str): Comma-separated integers.

    Returns:
        list: The seeds, in order.

    Raises:
        argparse.ArgumentTypeError: On anything else.
    """
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: give distinct non-negative integers, "
                                         "e.g. 1,2,3")
    return seeds


def split_overrides(overrides, models):
    """Separate ``key`` overrides from ``model.key`` ones.

    ``model.key`` of a known model that is not compared is dropped; of an unknown model it
    is an error.

    Args:
        overrides (dict): key or ``model.key`` -> value.
        models (list): Compared model names.

    Returns:
        tuple: (plain dict, {model: dict}).
    """
    plain, per_model = {}, {name: {} for name in models}
    for key, value in overrides.items():
        name, _, sub = key.rpartition(".")
        if not name:
            plain[key] = value
        elif name in per_model:
            per_model[name][sub] = value
        elif name not in MODELS:  # a known model that is not compared is ignored
            raise HParamsError(f"--set {key}: unknown model '{name}' (known: "
                               f"{', '.join(MODELS)})")
    return plain, per_model


def baseline_environment():
    """The environment of a Recommenders baseline's subprocess.

    clsr_tf is put on ``PYTHONPATH`` so another interpreter (``--baselines-python``) finds the
    runner, which makes ``tf.keras`` Keras 2 for its own TensorFlow (``use_legacy_keras``);
    TensorFlow's C++ logging stays quiet unless the caller chose a level.

    Returns:
        dict: Environment variables.
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def failure_status(err):
    """The status cell of a failed run: the error's type and the first line of its message
    (TensorFlow's errors go on with a traceback).

    Args:
        err (Exception): What the run raised.

    Returns:
        str: One line.
    """
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".strip()


def metric_columns(pairwise_metrics):
    """Table metric columns: AUC, GAUC, MRR and NDCG at the configured ks.

    Args:
        pairwise_metrics (list): The shared ``pairwise_metrics``.

    Returns:
        list: Metric names as ``clsr_tf.evaluation.evaluate`` returns them.
    """
    ks = [k for m in pairwise_metrics if m.startswith("ndcg@") for k in m[5:].split(";")]
    return ["auc", "gauc", "mean_mrr"] + [f"ndcg@{k}" for k in ks]


def _full_ranking_problem(result):
    """Why a run has no full-ranking metrics (its failure or its scoring's), or None."""
    if result["status"] != "ok":
        return result["status"]
    full = result.get("test_full", {})
    return None if "mrr" in full else f"full ranking {full.get('status', 'not run')}"


def full_ranking_columns(ks):
    """The metric columns of the full-ranking table.

    Args:
        ks (tuple): Cut-offs.

    Returns:
        list: ``recall@K`` for each K, ``ndcg@K`` for each K, ``mrr``.
    """
    return [f"recall@{k}" for k in ks] + [f"ndcg@{k}" for k in ks] + ["mrr"]


def mean_and_std(values):
    """Mean and sample standard deviation of a metric over runs.

    Args:
        values (list): One value per run.

    Returns:
        tuple: (mean, std); NaN for the mean of no run and the std of fewer than two.
    """
    mean = float(np.mean(values)) if values else np.nan
    return mean, float(np.std(values, ddof=1)) if len(values) > 1 else np.nan


def _number(value, digits=4):
    return "" if pd.isna(value) else f"{value:.{digits}f}"


def _mean_std_cell(row, column):
    """``mean +- std`` of a summary row's column (the mean alone for one run)."""
    std = row[f"{column}_std"]
    return _number(row[column]) + ("" if pd.isna(std) else f" +- {std:.4f}")


def _progress_lines(progress):
    """The in-progress note of a partial table (none for a finished comparison)."""
    if progress is None:
        return []
    return [f"**In progress**: {progress[0]} of {progress[1]} runs have finished; the rows "
            "hold the finished runs only.", ""]


def _names(text):
    return [part.strip() for part in text.split(",") if part.strip()]


class Comparison:
    """Side-by-side runs of CLSR and the baselines on one prepared data set.

    Args:
        hparams_file (str): Shared YAML (data set, protocol, CLSR's hyper-parameters).
        models (list): Model names (``MODELS``; an unknown one gets an error row).
        data_dir (str): Prepared data folder (default: the YAML's ``data_dir``).
        output_dir (str): Results folder (default: ``runs/compare_<yaml name>``).
        epochs (int): Epochs of every model (default: the YAML's).
        overrides (dict): ``key`` (every model that has it) or ``model.key`` -> value.
        baseline_dir (str): Folder of ``<model>.yaml`` for the baselines (default:
            ``baselines/`` next to ``hparams_file``).
        loader (str): Batch reader of CLSR and SURGE.
        verbose (int): Keras progress output (0, 1 bar, 2 one line per epoch).
        baselines_python (str): Interpreter of the Recommenders baselines' subprocesses
            (default: ``sys.executable``).
        seeds (list): Run every model once per seed (None: once, with the YAML's seed).
        first_seed_only (list): Models that run with the first seed only.
        protocol (str): ``sampled``, ``full`` or ``both``: with full ranking, each result
            holds ``test_full`` (the full-ranking metrics, or why scoring failed).
        origins (dict): key of ``overrides`` (or ``epochs``, ``data_dir``) -> where it came
            from (e.g. ``--set k=v``), named in errors.

    Raises:
        FileNotFoundError: ``baselines_python`` is not an executable file.
    """

    def __init__(self, hparams_file, models=MODELS, data_dir=None, output_dir=None, epochs=None,
                 overrides=None, baseline_dir=None, loader="fast", verbose=0,
                 baselines_python=None, seeds=None, protocol="sampled", first_seed_only=(),
                 origins=None):
        from clsr_tf.hparams import as_dict, load_hparams

        if baselines_python and not (os.path.isfile(baselines_python)
                                     and os.access(baselines_python, os.X_OK)):
            raise FileNotFoundError(f"--baselines-python {baselines_python}: not an executable "
                                    "file")
        self.baselines_python = baselines_python or sys.executable
        self.protocol = protocol
        self.seeds = list(seeds) if seeds else None
        self.models = list(dict.fromkeys(models))
        self.first_seed_only = list(first_seed_only)
        stray = [m for m in self.first_seed_only if m not in self.models]
        if stray or (self.first_seed_only and not self.seeds):
            raise HParamsError(f"--first-seed-only {','.join(self.first_seed_only)}: "
                               + (f"{stray[0]} is not among --models" if stray
                                  else "needs --seeds"))
        self.plain, self.per_model = split_overrides(overrides or {}, self.models)
        self.baseline_dir = baseline_dir or os.path.join(
            os.path.dirname(os.path.abspath(hparams_file)), "baselines")
        self.loader, self.verbose = loader, verbose
        shared = {k: v for k, v in self.plain.items()
                  if k in SCHEMA or k.startswith(PREPARE_PREFIX)}
        if epochs is not None:
            shared["epochs"] = epochs
        if data_dir:
            shared["data_dir"] = os.path.abspath(data_dir)
        # The shared keys; CLSR's own rules are CLSR's (a breach is its error row).
        self.hp = as_dict(load_hparams(hparams_file, origins=origins, model_rules=(), **shared),
                          model_rules=())
        if not self.hp["data_dir"]:
            raise HParamsError(f"{hparams_file}: no data_dir; set it in the YAML or pass "
                               "--data-dir")
        self.output_dir = output_dir or os.path.join(
            "runs", "compare_" + os.path.splitext(os.path.basename(hparams_file))[0])
        self._check_plain_keys()
        self.columns = metric_columns(self.hp["pairwise_metrics"])

    def _baseline_yaml(self, name):
        return read_yaml(os.path.join(self.baseline_dir, f"{name}.yaml"))

    def _check_plain_keys(self):
        from clsr_tf.models.surge import SURGE_SCHEMA

        known = set(SCHEMA) | (set(SURGE_SCHEMA) if "surge" in self.models else set())
        for name in set(self.models) & set(RECOMMENDERS_MODELS):
            try:
                known |= set(self._baseline_yaml(name))
            except (OSError, HParamsError):
                pass  # reported in that model's row
        unknown = [k for k in self.plain if k not in known and not k.startswith(PREPARE_PREFIX)]
        if unknown:
            raise HParamsError(f"--set {unknown[0]}: no compared model has this "
                               "hyper-parameter")

    # ---- one model ---------------------------------------------------------------------
    def model_hparams(self, name):
        """The hyper-parameters a model runs with.

        Args:
            name (str): A key of ``MODELS``.

        Returns:
            dict: CLSR and SURGE: validated clsr_tf hparams; Recommenders models: flat
            Recommenders hparams (their YAML, the data set and the shared protocol).
        """
        from clsr_tf.baselines.recommenders_runner import PROTOCOL_KEYS, build_hparams
        from clsr_tf.data.contract import vocab_paths
        from clsr_tf.hparams import as_dict
        from clsr_tf.models.surge import SURGE_SCHEMA, surge_hparams

        own = self.per_model[name]
        if name == "clsr":
            return as_dict(dict(self.hp, **own), model_rules=())
        yaml_values = self._baseline_yaml(name)
        if name == "surge":
            values = dict(self.hp, **yaml_values)
            values.update({k: self.hp[k] for k in PROTOCOL_KEYS})
            values.update({k: v for k, v in self.plain.items()
                           if k in SCHEMA or k in SURGE_SCHEMA}, **own)
            return surge_hparams(values, f"{self.baseline_dir}/surge.yaml")
        values = dict(yaml_values, **{k: v for k, v in self.plain.items() if k in yaml_values})
        hp = build_hparams(values, self.hp, vocab_paths(self.hp),
                           os.path.join(self.output_dir, name))
        hp.update(own)
        return hp

    def _run_subprocess(self, name, hp, model_dir, seed, resume, task="train"):
        from clsr_tf.datasets import data_path

        path = lambda key: data_path(self.hp, key)  # noqa: E731
        config = {"model": name, "hparams": hp, "seed": seed, "resume": resume,
                  "train_file": path("train_file"), "valid_file": path("valid_file"),
                  "test_file": path("test_file"), "valid_num_ngs": self.hp["valid_num_ngs"],
                  "test_num_ngs": self.hp["test_num_ngs"],
                  "eval_min_seq_length": self.hp["min_seq_length"], "eval_metric": "gauc",
                  "model_dir": os.path.abspath(model_dir), "task": task}
        stem = "runner"
        if task == "full_ranking":
            config["data_hparams"], stem = dict(self.hp), "full_ranking"
        config_path = os.path.join(model_dir, f"{stem}_config.json")
        out_path = os.path.join(model_dir, f"{stem}_result.json")
        log_path = os.path.join(model_dir, f"{stem}.log")
        write_atomic(config_path, json.dumps(config, indent=2))
        env = baseline_environment()
        command = [self.baselines_python, "-m", "clsr_tf.baselines.recommenders_runner",
                   "--config", config_path, "--output", out_path]
        tail = []
        # Line-buffered, so the log is current while the runner trains; a resumed run's
        # lines follow the killed one's.
        with open(log_path, "a" if resume else "w", buffering=1) as log, subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env=env) as proc:
            for line in proc.stdout:
                log.write(line)
                tail = (tail + [line.strip()])[-5:]
                if line.startswith(_ECHO):
                    print(f"[{name}] {line}", end="", flush=True)
        if os.path.exists(out_path):
            with open(out_path) as f:
                result = json.load(f)
        else:
            how = (f"killed by signal {-proc.returncode} (out of memory?)"
                   if proc.returncode < 0 else f"exited with status {proc.returncode}")
            result = {"status": f"runner {how}: {' | '.join(t for t in tail if t)}"}
        if result["status"] != "ok":
            result["status"] += f" (log: {log_path})"
        return result

    def pair_hparams(self, name, seed=None):
        """The hyper-parameters of one run, as its folder records them (``hparams.json``).

        Args:
            name (str): Model name.
            seed (int): The run's seed (None: the YAML's).

        Returns:
            dict: ``model_hparams`` with the seed.
        """
        return dict(self.model_hparams(name), seed=self.hp["seed"] if seed is None else seed)

    def run_dir(self, name, seed=None):
        """The folder of one run: ``<model>/`` or, with seeds, ``<model>/seed_<s>/``."""
        folder = os.path.join(self.output_dir, name)
        return folder if seed is None else os.path.join(folder, f"seed_{seed}")

    def run_model(self, name, seed=None, resume=False):
        """Train and evaluate one model.

        Args:
            name (str): Model name.
            seed (int): The run's seed (None: the YAML's).
            resume (bool): Continue a killed run from its last checkpoint in its folder
                (else the folder is replaced).

        Returns:
            dict: The result (``status`` ``ok`` or the error).
        """
        from clsr_tf.baselines.runner import run_in_process

        if name not in MODELS:
            raise ValueError(f"unknown model '{name}' (known: {', '.join(MODELS)})")
        model_dir = self.run_dir(name, seed)
        if not resume:
            shutil.rmtree(model_dir, ignore_errors=True)
        os.makedirs(model_dir, exist_ok=True)
        record_hparams(model_dir, self.pair_hparams(name, seed))
        hp = self.model_hparams(name)
        seed = self.hp["seed"] if seed is None else seed
        if name in IN_PROCESS:
            return run_in_process(name, dict(hp, seed=seed), model_dir, self.loader,
                                  self.verbose, resume=resume, protocol=self.protocol)
        result = self._run_subprocess(name, hp, model_dir, seed, resume)
        self._add_full_ranking(name, seed, result)
        return result

    def _add_full_ranking(self, name, seed, result):
        """Give a successful result without full-ranking metrics its ``test_full``.

        Every model is scored from the run's best weights (no training, so a finished
        sampled-only campaign gains the second protocol): CLSR and SURGE through
        ``run_eval_full``, a Recommenders baseline through its own ``eval`` on the explicit
        candidate lines, in a subprocess (``recommenders_runner.full_ranking``). A failed
        scoring is recorded in ``test_full["status"]`` and tried again by the next run.

        Args:
            name (str): Model name.
            seed (int): The run's seed (None: the YAML's).
            result (dict): The run's result, updated in place.

        Returns:
            bool: Whether ``result`` changed.
        """
        from clsr_tf.baselines.runner import full_ranking_of_run

        if (self.protocol == "sampled" or result["status"] != "ok"
                or "mrr" in result.get("test_full", {})):
            return False
        folder = self.run_dir(name, seed)
        seed = self.hp["seed"] if seed is None else seed
        if name in IN_PROCESS:
            hp = dict(self.model_hparams(name), seed=seed)
            result["test_full"] = full_ranking_of_run(name, hp, folder)
        else:
            out = self._run_subprocess(name, self.model_hparams(name), folder, seed, False,
                                       task="full_ranking")
            result["test_full"] = out.get("test_full") or {"status": out["status"]}
        return True

    # ---- all models --------------------------------------------------------------------
    def run(self, force=False, tables_only=False):
        """Prepare the data, run every model (or reuse its result), write the tables.

        The output folder is held (``clsr_tf.run_folder.RunFolder``: one comparison at a
        time, leftovers removed); a run kept or continued must have been trained with the
        hyper-parameters it would get now (its ``hparams.json``), else nothing runs.

        Args:
            force (bool): Rerun models whose ``result.json`` exists.
            tables_only (bool): Train and score nothing: write the tables of the finished
                runs (marked in progress when some are missing).

        Returns:
            pandas.DataFrame: One row per model (see ``table``).

        Raises:
            RunFolderError: The folder is in use, or a run there has other hyper-parameters.
        """
        from clsr_tf.datasets import prepare_data

        if not tables_only:
            prepare_data(self.hp)
        # Seed by seed: an interrupted campaign has whole comparisons of its first seeds.
        seeds = self.seeds or [None]
        runs = [(name, seed) for seed in seeds for name in self.models
                if seed == seeds[0] or name not in self.first_seed_only]
        with RunFolder(self.output_dir):
            if not force:
                self._check_kept_runs(runs)
            if tables_only:
                return self._write_finished_tables(runs)
            return self._run_all(runs, force)

    def _check_kept_runs(self, runs):
        """Refuse runs that would be kept or continued with other hyper-parameters."""
        for name, seed in runs:
            folder = self.run_dir(name, seed)
            if not os.path.isdir(folder):
                continue
            try:
                hp = self.pair_hparams(name, seed)
            except (ValueError, OSError):  # reported in the model's row
                continue
            check_continuation(folder, hp, "pass --force to rerun it, or another --output-dir")

    def _result_path(self, name, seed):
        return os.path.join(self.run_dir(name, seed), "result.json")

    def _read_result(self, name, seed):
        """A finished run's ``result.json``, with its model and seed."""
        with open(self._result_path(name, seed)) as f:
            return dict(json.load(f), model=name, seed=seed)

    def _write_finished_tables(self, runs):
        """Write the tables of the runs of ``runs`` that have a ``result.json``."""
        results = [self._read_result(name, seed) for name, seed in runs
                   if os.path.exists(self._result_path(name, seed))]
        print(f"== tables of the {len(results)} finished runs of {len(runs)}", flush=True)
        return self._write_tables(results, None if len(results) == len(runs)
                                  else (len(results), len(runs)))

    def _run_all(self, runs, force):
        """Run (or reuse) every (model, seed) of ``runs``; write the tables after each new run
        (marked in progress until the last) and at the end."""
        results = []
        for i, (name, seed) in enumerate(runs, 1):
            label = name if seed is None else f"{name} seed {seed}"
            folder = self.run_dir(name, seed)
            path = self._result_path(name, seed)
            if os.path.exists(path) and not force:
                print(f"== {label} ({i}/{len(runs)}): {path} exists, skipped "
                      "(--force reruns it)", flush=True)
                result = self._read_result(name, seed)
                if self._add_full_ranking(name, seed, result):
                    problem = _full_ranking_problem(result)
                    print(f"== {label}: " + (problem or "full ranking scored from its best "
                                             "weights"), flush=True)
                    write_atomic(path, metrics_json(result))
                results.append(result)
                continue
            # A folder without result.json is a killed run: continue it (unless --force).
            resume = not force and name in MODELS and os.path.isdir(folder)
            print(f"== {label} ({i}/{len(runs)})" + (" resuming" if resume else ""), flush=True)
            try:
                result = self.run_model(name, seed, resume=resume)
            except Exception as err:  # one model's failure must not lose the others
                result = {"status": failure_status(err)}
            result.update(model=name, seed=seed)
            result["status"] = " ".join(str(result["status"]).split())
            if result["status"] == "ok":
                write_atomic(path, metrics_json(result))
            print(f"== {label}: {result['status']}", flush=True)
            results.append(result)
            if i < len(runs):
                self._write_tables(results, (len(results), len(runs)))
        return self._write_tables(results)

    def _write_tables(self, results, progress=None):
        """Write the tables of ``results``; ``progress`` (finished, planned) marks them as
        partial. Returns the seed summary (with ``--seeds``) or the table."""
        if self.protocol != "sampled":
            self._write_full_tables(results, progress)
        if self.seeds:
            return self._write_seed_tables(results, progress)
        table = self.table(results)
        write_atomic(os.path.join(self.output_dir, "comparison.csv"), table.to_csv(index=False))
        write_atomic(os.path.join(self.output_dir, "comparison.md"),
                     self.markdown(table, progress))
        lines = {r["test_lines"] for r in results if r["status"] == "ok"}
        if progress is None and len(lines) > 1:
            print(f"warning: the models scored different numbers of test lines {sorted(lines)}")
        return table

    # ---- several seeds -----------------------------------------------------------------
    def _test_scores(self, result):
        from clsr_tf.significance import SCORES_FILE, load_scores

        return load_scores(os.path.join(self.run_dir(result["model"], result["seed"]),
                                        SCORES_FILE))

    def seed_table(self, results):
        """One row per model: mean and std over seeds, and the paired tests against CLSR.

        Args:
            results (list): Result dicts of every (model, seed) run.

        Returns:
            pandas.DataFrame: ``model``, ``seeds`` (successful runs), each metric and its
            ``<metric>_std``, ``epochs_run``, ``best_epoch``, ``train_seconds`` (means),
            ``params``, CLSR's lead in GAUC (``gauc_lead``) with ``p_seeds`` (paired t-test
            over seeds) and ``p_users`` (Wilcoxon over users' AUCs, ``users`` paired), and
            ``status``.
        """
        from clsr_tf.significance import mean_user_auc, seed_test, user_test

        good = {name: [r for r in results if r["model"] == name and r["status"] == "ok"]
                for name in self.models}
        reference = good.get("clsr", [])
        rows = []
        for name in self.models:
            runs, ok = [r for r in results if r["model"] == name], good[name]
            row = {"model": name, "seeds": len(ok)}
            for column in self.columns:
                row[column], row[f"{column}_std"] = mean_and_std([r["test"][column] for r in ok])
            for key in ("epochs_run", "best_epoch", "train_seconds"):
                row[key] = float(np.mean([r[key] for r in ok])) if ok else np.nan
            row["params"] = ok[0]["params"] if ok else np.nan
            row.update(gauc_lead=np.nan, p_seeds=np.nan, p_users=np.nan, users=np.nan)
            if reference and ok and name != "clsr":
                by_seed = lambda rs: {r["seed"]: r["test"]["gauc"] for r in rs}  # noqa: E731
                seeds = seed_test(by_seed(reference), by_seed(ok))
                paired = [r for r in reference if r["seed"] in by_seed(ok)]
                users = user_test(mean_user_auc([self._test_scores(r) for r in paired]),
                                  mean_user_auc([self._test_scores(r) for r in ok]))
                row.update(gauc_lead=seeds["diff"], p_seeds=seeds["p"], p_users=users["p"],
                           users=users["users"])
            failed = [f"seed {r['seed']}: {r['status']}" for r in runs if r["status"] != "ok"]
            row["status"] = "; ".join(failed) or ("ok" if runs else NOT_RUN)
            rows.append(row)
        return pd.DataFrame(rows)

    def seed_markdown(self, summary, progress=None):
        """The seed summary as Markdown: mean +- std per metric, the tests, the protocol.

        Args:
            summary (pandas.DataFrame): From ``seed_table``.
            progress (tuple): (finished, planned) runs of a comparison still running.

        Returns:
            str: Markdown text.
        """
        hp = self.hp
        header = ["model", "seeds", *self.columns, "epochs", "best epoch", "train_s",
                  "GAUC lead of CLSR", "p (seeds)", "p (users)", "status"]
        lines = [f"# Side by side over seeds {self.seeds}: {hp['dataset']} ({hp['data_dir']})",
                 "", f"Test: 1 positive + {hp['test_num_ngs']} sampled negatives per line. "
                 f"Every model trains until early stopping on valid GAUC (patience "
                 f"{hp['EARLY_STOP']} epochs, at most {hp['epochs']}), once per seed; cells "
                 "are mean +- sample std over seeds. `GAUC lead of CLSR`: mean difference of "
                 "test GAUC over the seeds both models ran; `p (seeds)`: paired t-test of it "
                 "(needs two seeds); `p (users)`: Wilcoxon signed-rank test of the users' test "
                 "AUCs (mean over those seeds), both of CLSR against the row's model.", "",
                 *_progress_lines(progress),
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in summary.to_dict("records"):
            cells = [row["model"], str(row["seeds"])]
            cells += [_mean_std_cell(row, c) for c in self.columns]
            cells += [_number(row["epochs_run"], 1), _number(row["best_epoch"], 1),
                      _number(row["train_seconds"], 0), _number(row["gauc_lead"]),
                      _number(row["p_seeds"], 3), _number(row["p_users"], 3), row["status"]]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def _write_seed_tables(self, results, progress=None):
        from clsr_tf.files import atomic_file
        from clsr_tf.studies.plots import plot_valid_curves

        results = sorted(results, key=lambda r: (self.models.index(r["model"]), r["seed"]))
        runs = self.table(results)
        runs.insert(1, "seed", [r["seed"] for r in results])
        summary = self.seed_table(results)
        write_atomic(os.path.join(self.output_dir, "runs.csv"), runs.to_csv(index=False))
        write_atomic(os.path.join(self.output_dir, "comparison.csv"),
                     summary.to_csv(index=False))
        write_atomic(os.path.join(self.output_dir, "comparison.md"),
                     self.seed_markdown(summary, progress))
        curves = {name: [r["history"] for r in results
                         if r["model"] == name and r["status"] == "ok"] for name in self.models}
        with atomic_file(os.path.join(self.output_dir, "valid_curves.png"), "wb") as handle:
            plot_valid_curves(curves).savefig(handle, format="png", dpi=110)
        return summary

    # ---- the full-ranking protocol ------------------------------------------------------
    def full_table(self, results):
        """One row per model: its full-ranking metrics, mean and std over its runs.

        Args:
            results (list): Result dicts (with ``test_full`` where it was computed).

        Returns:
            pandas.DataFrame: ``model``, ``runs`` (with full-ranking metrics), each metric
            (``recall@K``, ``ndcg@K``, ``mrr``) and its ``<metric>_std`` (sample std, NaN
            for one run), ``positives``, ``candidates``, ``seconds`` (mean scoring time)
            and ``status`` (``ok``, or the failed runs and scorings).
        """
        from clsr_tf.ranking import DEFAULT_KS

        columns = full_ranking_columns(DEFAULT_KS)
        rows = []
        for name in self.models:
            runs = [r for r in results if r["model"] == name]
            scored = [r["test_full"] for r in runs if "mrr" in r.get("test_full", {})]
            row = {"model": name, "runs": len(scored)}
            for column in columns:
                row[column], row[f"{column}_std"] = mean_and_std([m[column] for m in scored])
            for key in ("positives", "candidates", "seconds"):
                row[key] = float(np.mean([m[key] for m in scored])) if scored else np.nan
            failed = [(f"seed {r['seed']}: " if r.get("seed") is not None else "") + problem
                      for r in runs if (problem := _full_ranking_problem(r))]
            row["status"] = "; ".join(failed) or ("ok" if runs else NOT_RUN)
            rows.append(row)
        return pd.DataFrame(rows)

    def full_markdown(self, summary, progress=None):
        """The full-ranking table as Markdown.

        Args:
            summary (pandas.DataFrame): From ``full_table``.
            progress (tuple): (finished, planned) runs of a comparison still running.

        Returns:
            str: Markdown text.
        """
        from clsr_tf.ranking import DEFAULT_KS

        columns = full_ranking_columns(DEFAULT_KS)
        header = ["model", "runs", *columns, "positives", "candidates", "scoring_s", "status"]
        lines = [f"# Full ranking: {self.hp['dataset']} ({self.hp['data_dir']})", "",
                 "Each test positive ranked against every item of the catalogue, its history's "
                 "items left out (ties count against the positive). Cells are mean +- sample std "
                 "over the model's runs (seeds); `positives`: ranked test positives; "
                 "`scoring_s`: seconds to score them all.", "", *_progress_lines(progress),
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in summary.to_dict("records"):
            cells = [row["model"], str(row["runs"])]
            cells += [_mean_std_cell(row, c) for c in columns]
            cells += [_number(row[c], 0) for c in ("positives", "candidates")]
            cells += [_number(row["seconds"], 1), row["status"]]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def _write_full_tables(self, results, progress=None):
        summary = self.full_table(results)
        write_atomic(os.path.join(self.output_dir, "comparison_full.csv"),
                     summary.to_csv(index=False))
        write_atomic(os.path.join(self.output_dir, "comparison_full.md"),
                     self.full_markdown(summary, progress))
        return summary

    def table(self, results):
        """One row per model: test metrics, training time, epochs, parameters, status.

        Args:
            results (list): Result dicts.

        Returns:
            pandas.DataFrame: Columns ``model``, the metric columns, ``train_seconds``,
            ``epochs_run``, ``params``, ``status``.
        """
        rows = [dict({"model": r["model"]},
                     **{c: r.get("test", {}).get(c, np.nan) for c in self.columns},
                     train_seconds=r.get("train_seconds", np.nan),
                     epochs_run=r.get("epochs_run", np.nan), params=r.get("params", np.nan),
                     status=r["status"]) for r in results]
        table = pd.DataFrame(rows, columns=["model", *self.columns, "train_seconds",
                                            "epochs_run", "params", "status"])
        return table.astype({"epochs_run": "Int64", "params": "Int64"})

    def _cells(self, table, mark):
        """Formatted cells; the best value of each metric column goes through ``mark``."""
        rounded = table[self.columns].astype(float).round(4)
        is_best = rounded.eq(rounded.max())
        cells = []
        for i, row in table.iterrows():
            line = [row["model"]]
            for c in self.columns:
                text = "" if pd.isna(row[c]) else f"{rounded.at[i, c]:.4f}"
                line.append(mark(text) if is_best.at[i, c] else text)
            line += ["" if pd.isna(row[c]) else fmt.format(row[c]) for c, fmt in
                     (("train_seconds", "{:.1f}"), ("epochs_run", "{:.0f}"), ("params", "{:,.0f}"))]
            cells.append(line + [row["status"]])
        return ["model", *self.columns, "train_s", "epochs", "params", "status"], cells

    def markdown(self, table, progress=None):
        """The table as Markdown (best value per metric column in bold).

        Args:
            table (pandas.DataFrame): From ``table``.
            progress (tuple): (finished, planned) runs of a comparison still running.

        Returns:
            str: Markdown text.
        """
        header, cells = self._cells(table, lambda t: f"**{t}**")
        hp = self.hp
        lines = [f"# Side by side: {hp['dataset']} ({hp['data_dir']})", "",
                 f"Test: 1 positive + {hp['test_num_ngs']} sampled negatives per line; early "
                 f"stopping on valid GAUC (epochs <= {hp['epochs']}, patience "
                 f"{hp['EARLY_STOP']}); best value per metric in bold. `gauc` is the paper's "
                 "GAUC (per-user AUC weighted by lines).", "", *_progress_lines(progress),
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines) + "\n"

    def text(self, table):
        """The table for a terminal (best value per metric column marked ``*``).

        Args:
            table (pandas.DataFrame): From ``table``.

        Returns:
            str: Fixed-width text.
        """
        header, cells = self._cells(table, lambda t: f"{t}*")
        rows = [header] + [[c if len(c) <= 60 else c[:57] + "..." for c in row] for row in cells]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        out = ["  ".join(c.ljust(w) if i in (0, len(header) - 1) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
        return "\n".join(out) + "\n* best value of the column"


def compare(hparams_file, models=MODELS, force=False, **kwargs):
    """Run a comparison and return its table (see ``Comparison``).

    Args:
        hparams_file (str): Shared YAML.
        models (list): Model names.
        force (bool): Rerun models whose result exists.
        **kwargs: Other ``Comparison`` arguments.

    Returns:
        pandas.DataFrame: One row per model.
    """
    return Comparison(hparams_file, models, **kwargs).run(force=force)


def run(args):
    """Run the comparison of the command line and print its table.

    Args:
        args (argparse.Namespace): Parsed command line.

    Returns:
        int: 0 when every model ran, 1 otherwise.
    """
    overrides, origins = parse_overrides(args.set)
    origins.update(epochs=f"--epochs {args.epochs}", data_dir=f"--data-dir {args.data_dir}")
    comparison = Comparison(
        args.hparams, _names(args.models),
        data_dir=args.data_dir, output_dir=args.output_dir, epochs=args.epochs,
        overrides=overrides, baseline_dir=args.baseline_hparams, loader=args.loader,
        verbose=verbosity(args), baselines_python=args.baselines_python, seeds=args.seeds,
        protocol=args.protocol, first_seed_only=_names(args.first_seed_only),
        origins=origins)
    table = comparison.run(force=args.force, tables_only=args.tables_only)
    if comparison.protocol != "sampled":
        with open(os.path.join(comparison.output_dir, "comparison_full.md")) as f:
            print(f.read())
    if comparison.seeds:
        with open(os.path.join(comparison.output_dir, "comparison.md")) as f:
            print(f.read())
        return 0 if (table["status"] == "ok").all() else EXIT_MODEL_FAILED
    print(comparison.text(table))
    print(f"wrote {os.path.join(comparison.output_dir, 'comparison.md')} and comparison.csv")
    return 0 if (table["status"] == "ok").all() else EXIT_MODEL_FAILED


main = make_main(build_parser, run,
                 interrupted="interrupted; run the same command again to continue")

if __name__ == "__main__":
    sys.exit(main())
