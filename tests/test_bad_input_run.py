"""Bad input never yields a wrong number, the run side: hyper-parameters out of range, bad
YAML and ``--set`` values, misused output folders (resume with other values, a fresh run
into a used folder, a second run at once), Ctrl-C and leftovers of killed runs.

Each row gives a setting or a crafted state, the exit status, a regex for the one message a
user sees, and checks that nothing was half-written or left behind. The hyper-parameter and
folder rows fail before any training; the others share one 1-epoch run.
"""

import argparse
import contextlib
import errno
import io
import json
import os
import re
import shutil
import signal
import time

import pytest
import tensorflow as tf

from clsr_tf import cli, compare, study, train
from clsr_tf.files import TMP_PATTERN, write_atomic
from clsr_tf.hparams import SCHEMA, HParamsError, ListOf, parse_overrides
from clsr_tf.models.surge import SURGE_SCHEMA, surge_hparams
from clsr_tf.run_folder import LOCK_FILE, RunFolder, record_hparams

from conftest import prepare_synthetic

HPARAMS = os.path.join(os.path.dirname(__file__), "..", "hparams", "synthetic.yaml")
# The smallest model on conftest's data set (L = 10): one epoch takes a few seconds.
SETS = ["max_seq_length=10", "item_embedding_dim=4", "cate_embedding_dim=4",
        "user_embedding_dim=8", "hidden_size=8", "att_fcn_layer_sizes=[8,4]",
        "layer_sizes=[8,4]", "batch_size=100", "learning_rate=0.005", "write_tfevents=false"]
SMALL = [a for s in SETS for a in ("--set", s)] + ["--quiet"]
DEAD_PID = 999_999_999  # past any pid limit: no such process


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """60 users x 20 interactions: the smallest data set that trains."""
    return prepare_synthetic(tmp_path_factory, 60, 20)


def train_argv(data_dir, out, *extra):
    return ["--hparams", HPARAMS, "--data-dir", data_dir, "--output-dir", str(out), *SMALL,
            *extra]


def leftovers(folder):
    """Temporaries, TensorFlow checkpoint temporaries and lock files under ``folder``."""
    found = []
    for root, dirs, files in os.walk(folder):
        found += [os.path.join(root, n) for n in dirs + files
                  if TMP_PATTERN.match(n) or n.endswith("_temp") or n == LOCK_FILE]
    return found


def snapshot(folder):
    """Every file under ``folder`` with its size and modification time."""
    return {os.path.relpath(os.path.join(root, n), folder):
            (os.stat(os.path.join(root, n)).st_size, os.stat(os.path.join(root, n)).st_mtime_ns)
            for root, _, files in os.walk(folder) for n in files}


def one_error(capsys, pattern):
    """The command printed one ``error:`` line matching ``pattern``, and no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(pattern, lines[0]), lines[0]
    return err


# ---- hyper-parameters: refused before the output folder exists ------------------------------
HPARAM_ROWS = [
    (["--set", "learning_rate=-0.001"],
     r"^error: --set learning_rate=-0\.001: 'learning_rate' must be > 0, got -0\.001$"),
    (["--set", "learning_rate=.nan"], r"--set learning_rate=\.nan: 'learning_rate' must be > 0"),
    (["--set", "train_num_ngs=0"], r"--set train_num_ngs=0: 'train_num_ngs' must be >= 1"),
    (["--set", "max_grad_norm=-1"], r"--set max_grad_norm=-1: 'max_grad_norm' must be > 0"),
    (["--set", "contrastive_recent_k=11"],
     r"--set contrastive_recent_k=11, --set max_seq_length=10: 'contrastive_recent_k' \(11\) "
     r"must be <= 'max_seq_length' \(10\)"),
    (["--set", "contrastive_length_threshold=10"],
     r"'contrastive_length_threshold' \(10\) must be < 'max_seq_length' \(10\)"),
    (["--set", "min_seq_length=11"], r"'min_seq_length' \(11\) must be <= 'max_seq_length'"),
    (["--set", "hidden_size=12"],
     r"--set item_embedding_dim=4, --set cate_embedding_dim=4, --set user_embedding_dim=8, "
     r"--set hidden_size=12: 'item_embedding_dim' \+ 'cate_embedding_dim' \(8\), "
     r"'user_embedding_dim' \(8\) and 'hidden_size' \(12\) must be equal"),
    (["--set", "layer_sizes=[]"], r"--set layer_sizes=\[\]: 'layer_sizes' must be a non-empty "
                                  r"list of int values >= 1"),
    (["--set", "att_fcn_layer_sizes=[8,0]"], r"'att_fcn_layer_sizes' must be a non-empty list"),
    (["--set", "batch_size=0"], r"--set batch_size=0: 'batch_size' must be >= 2, got 0"),
    (["--set", "max_seq_length=0"], r"--set max_seq_length=0: 'max_seq_length' must be >= 1"),
    (["--set", "hidden_size=0"], r"--set hidden_size=0: 'hidden_size' must be >= 1"),
    (["--set", "embedding_dropout=1.5"],
     r"--set embedding_dropout=1\.5: 'embedding_dropout' must be in \[0, 1\), got 1\.5"),
    (["--set", "dropout=[0.1,1.0]"], r"'dropout' must be a non-empty list of float values in "
                                     r"\[0, 1\)"),
    (["--set", "manual_alpha_value=2"], r"'manual_alpha_value' must be in \[0, 1\]"),
    (["--set", "seed=5000000"], r"'seed' \* 1000 \+ 'epochs' must be below 2\*\*32"),
    (["--epochs", "0"], r"^error: --epochs 0: 'epochs' must be >= 1, got 0$"),
    (["--set", "layer_sizes=[64,"], r"^error: --set layer_sizes=\[64,: not valid YAML"),
    (["--set", "=3"], r"^error: --set =3: expected KEY=VALUE$"),
    (["--set", "hidden_size"], r"^error: --set hidden_size: expected KEY=VALUE$"),
]


@pytest.mark.parametrize("extra, pattern", HPARAM_ROWS, ids=[r[0][-1] for r in HPARAM_ROWS])
def test_bad_hyper_parameter_exits_2_naming_key_and_source(data_dir, tmp_path, capsys, extra,
                                                          pattern):
    out = tmp_path / "run"
    assert train.main(train_argv(data_dir, out, *extra)) == 2
    one_error(capsys, pattern)
    assert not out.exists()


YAML_ROWS = [
    ("data:\n  dataset: synthetic\n  max_seq_length: [1\n", r"bad\.yaml:\d+: not valid YAML"),
    ("- data\n- model\n", r"bad\.yaml: expected a mapping of the sections"),
    ("data: 3\n", r"bad\.yaml:1: section 'data' must be a mapping of key: value"),
    ("model:\n  hidden_size: 4\n  hidden_size: 8\n",
     r"bad\.yaml:3: 'hidden_size' is given twice \(first on line 2\)"),
    ("model:\n  hidden_size: 4\nmodel:\n  layer_sizes: [4]\n",
     r"bad\.yaml:3: 'model' is given twice \(first on line 1\)"),
    ("data:\n  dataset: synthetic\ntrain:\n  learning_rate: -1\n",
     r"bad\.yaml:4: 'learning_rate' must be > 0, got -1\.0"),
]


@pytest.mark.parametrize("text, pattern", YAML_ROWS,
                         ids=["syntax", "list", "section", "duplicate", "section_twice", "range"])
def test_bad_yaml_exits_2_naming_file_and_line(data_dir, tmp_path, capsys, text, pattern):
    bad, out = tmp_path / "bad.yaml", tmp_path / "run"
    bad.write_text(text)
    assert train.main(["--hparams", str(bad), "--data-dir", data_dir, "--output-dir",
                       str(out)]) == 2
    one_error(capsys, pattern)
    assert not out.exists()


def test_debug_shows_the_traceback(data_dir, tmp_path):
    with pytest.raises(HParamsError, match="'hidden_size' must be >= 1"):
        train.main(train_argv(data_dir, tmp_path / "run", "--set", "hidden_size=0", "--debug"))


def test_every_numeric_key_has_a_range():
    for schema in (SCHEMA, SURGE_SCHEMA):
        for key, (default, kind, _, allowed) in schema.items():
            if kind in (int, float):
                assert allowed is not None and default in allowed, key
            if isinstance(kind, ListOf) and kind.kind in (int, float):
                assert kind.allowed is not None and all(v in kind.allowed for v in default), key


@pytest.mark.parametrize("key, value", [("metric_heads", 0), ("relative_threshold", 0.0),
                                        ("pool_length", 0), ("pool_link_loss_weight", -0.1)])
def test_surge_keys_have_ranges(key, value):
    with pytest.raises(HParamsError, match=f"surge.yaml: '{key}' must be"):
        surge_hparams({key: value}, "surge.yaml")


# ---- output folders that cannot be used: refused before training ----------------------------
def _a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    return tmp_path / "file"


def _read_only(tmp_path):
    if os.geteuid() == 0:  # root writes into any folder; sysfs refuses even root
        return "/sys/clsr_tf_read_only/run"
    folder = tmp_path / "read_only"
    folder.mkdir(mode=0o555)
    return folder / "run"


FOLDER_ROWS = [
    (_a_file, r"--output-dir .*file: is a file, not a folder"),
    (lambda tmp_path: _a_file(tmp_path) / "run", r"--output-dir .*run: cannot write there"),
    (_read_only, r"--output-dir .*run: cannot write there"),
]


@pytest.mark.parametrize("make, pattern", FOLDER_ROWS, ids=["file", "under_a_file", "read_only"])
def test_unusable_output_folder_exits_2(data_dir, tmp_path, capsys, make, pattern):
    assert train.main(train_argv(data_dir, make(tmp_path))) == 2
    one_error(capsys, pattern)


def test_resume_and_overwrite_exclude_each_other(data_dir, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        train.main(train_argv(data_dir, tmp_path, "--resume", "--overwrite"))
    assert exit_.value.code == 2


def test_a_run_that_failed_on_its_input_does_not_hold_the_folder(data_dir, tmp_path, capsys):
    bad = tmp_path / "bad_data"
    shutil.copytree(data_dir, bad)
    (bad / "train_data").write_text("")
    out = tmp_path / "run"
    for _ in range(2):  # the second attempt meets the data's error again, not the folder's
        assert train.main(train_argv(str(bad), out)) == 2
        one_error(capsys, r"train_data: an empty file")
    assert sorted(os.listdir(out)) == ["hparams.json"]


def test_second_run_into_a_held_folder_is_refused(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    with RunFolder(out):
        argv = ["--hparams", HPARAMS, "--data-dir", data_dir, "--output-dir", str(out), *SMALL]
        assert train.main(argv) == 2
        one_error(capsys, rf"in use by another run \(process {os.getpid()} ")
        assert compare.main(argv + ["--models", "clsr", "--epochs", "1"]) == 2
        one_error(capsys, r"in use by another run")
        assert study.main(["shuffle"] + argv) == 2
        one_error(capsys, r"in use by another run")
        assert os.listdir(out) == [LOCK_FILE]
    assert os.listdir(out) == []  # the lock goes with its holder


# ---- Ctrl-C and --resume: the one run the module trains --------------------------------------
def _interrupt_at_save(real_save, number):
    """``CheckpointManager.save`` that gets Ctrl-C while checkpoint ``number`` is written."""
    def save(self, checkpoint_number=None, **kwargs):
        if checkpoint_number == number:
            os.makedirs(os.path.join(self.directory, f"ckpt-{number}_temp"))  # as TF leaves it
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        return real_save(self, checkpoint_number=checkpoint_number, **kwargs)

    return save


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
    """A 2-epoch run interrupted by Ctrl-C at epoch 2's checkpoint, then resumed to its end.

    Returns:
        tuple: (the run folder, {"interrupted"/"resumed": (status, stdout, stderr), "state":
        what the folder held after the interrupt}).
    """
    out = tmp_path_factory.mktemp("finished") / "run"
    seen = {}

    def run(name, *extra):
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = train.main(train_argv(data_dir, out, "--epochs", "2", *extra))
        seen[name] = (status, stdout.getvalue(), stderr.getvalue())

    # Python's own Ctrl-C handler, whatever this process inherited: a shell without job
    # control starts background jobs with SIGINT ignored, and Python then keeps it ignored.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tf.train.CheckpointManager, "save",
                          _interrupt_at_save(tf.train.CheckpointManager.save, 2))
            run("interrupted")
    finally:
        signal.signal(signal.SIGINT, inherited)
    seen["state"] = dict(leftovers=leftovers(out), metrics=(out / "metrics.json").exists(),
                         latest=tf.train.latest_checkpoint(str(out / "checkpoints")),
                         hparams=json.loads((out / "hparams.json").read_text()))
    run("resumed", "--resume", "--set", "EARLY_STOP=3")
    return out, seen


def test_ctrl_c_keeps_the_last_epoch(finished):
    status, _, err = finished[1]["interrupted"]
    assert status == 130 and err.strip().splitlines()[-1] == "interrupted; resume with --resume"
    assert "Traceback" not in err
    state = finished[1]["state"]
    assert state["leftovers"] == [] and not state["metrics"]
    assert state["latest"].endswith("ckpt-1") and state["hparams"]["epochs"] == 2


def test_resume_finishes_with_a_changed_patience(finished):
    out, seen = finished
    status, stdout, _ = seen["resumed"]
    assert status == 0 and "(epoch 1)" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["hparams"]["EARLY_STOP"] == 3
    assert json.loads((out / "hparams.json").read_text())["EARLY_STOP"] == 3
    assert not leftovers(out)


@pytest.fixture
def used(finished, tmp_path):
    """A copy of the finished run to misuse."""
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    return out


RUN_ROWS = [
    ([], r"--output-dir .*run: holds a run \(metrics\.json, hparams\.json, checkpoints, "
         r"best_model\); pass --resume to continue it or --overwrite to replace it"),
    (["--resume", "--set", "EARLY_STOP=3", "--set", "max_seq_length=8"],
     r"run: the run there was trained with other hyper-parameters: max_seq_length 10 "
     r"\(now 8\); only EARLY_STOP, epochs, write_tfevents may change"),
    (["--resume", "--set", "learning_rate=0.01", "--set", "layer_sizes=[4,2]"],
     r"layer_sizes \[8, 4\] \(now \[4, 2\]\), learning_rate 0\.005 \(now 0\.01\)"),
]


@pytest.mark.parametrize("extra, pattern", RUN_ROWS, ids=["fresh", "resume_L", "resume_lr"])
def test_used_folder_refuses_and_is_kept(data_dir, used, capsys, extra, pattern):
    before = snapshot(used)
    assert train.main(train_argv(data_dir, used, "--epochs", "1", *extra)) == 2
    one_error(capsys, pattern)
    assert snapshot(used) == before and not leftovers(used)


def test_resume_of_checkpoints_without_their_hparams_is_refused(data_dir, used, capsys):
    (used / "hparams.json").unlink()
    assert train.main(train_argv(data_dir, used, "--resume")) == 2
    one_error(capsys, r"checkpoints without hparams\.json")


def test_leftovers_and_a_stale_lock_are_swept_at_the_next_start(data_dir, used, capsys):
    before = snapshot(used)
    dead = [used / f"best_model.tmp-{DEAD_PID}-0123abcd", used / "checkpoints" / "ckpt-2_temp"]
    for folder in dead:
        folder.mkdir()
        (folder / "part").write_text("half")
    (used / f"metrics.json.tmp-{DEAD_PID}-89abcdef").write_text("{")
    alive = used / f"metrics.json.tmp-{os.getppid()}-0a1b2c3d"  # a live writer's: kept
    alive.write_text("{")
    (used / LOCK_FILE).write_text(f"{DEAD_PID} otherhost\n")
    assert train.main(train_argv(data_dir, used)) == 2  # swept, then refused (holds a run)
    err = one_error(capsys, r"holds a run")
    assert f"took over the lock of process {DEAD_PID} otherhost" in err
    assert leftovers(used) == [str(alive)]
    alive.unlink()
    assert snapshot(used) == before


# ---- --overwrite -------------------------------------------------------------------
def test_overwrite_clears_only_the_run(data_dir, used, capsys, monkeypatch):
    (used / "notes.txt").write_text("not ours")
    seen = {}

    def interrupted(args, hp, output_dir):  # Ctrl-C before the first epoch
        seen.update(names=sorted(os.listdir(output_dir)), hp=hp)
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_and_evaluate", interrupted)
    assert train.main(train_argv(data_dir, used, "--overwrite", "--set", "hidden_size=4",
                                 "--set", "user_embedding_dim=4", "--set",
                                 "cate_embedding_dim=0")) == 2  # checked before clearing
    one_error(capsys, "'cate_embedding_dim' must be >= 1")
    assert (used / "metrics.json").exists()
    assert train.main(train_argv(data_dir, used, "--overwrite")) == 130
    assert capsys.readouterr().err.strip() == "interrupted; resume with --resume"
    assert seen["names"] == [LOCK_FILE, "hparams.json", "notes.txt"]
    assert json.loads((used / "hparams.json").read_text())["hidden_size"] == seen["hp"][
        "hidden_size"] == 8
    assert sorted(os.listdir(used)) == ["hparams.json", "notes.txt"]


def test_a_writer_removes_what_a_killed_writer_of_its_target_left(tmp_path):
    target = tmp_path / "scores.txt"
    dead = tmp_path / f"scores.txt.tmp-{DEAD_PID}-0123abcd"
    alive = tmp_path / f"scores.txt.tmp-{os.getppid()}-0123abcd"
    other = tmp_path / f"other.txt.tmp-{DEAD_PID}-0123abcd"
    for path in (dead, alive, other):
        path.write_text("half")
    write_atomic(target, "1\n")
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in (target, alive, other))


# ---- compare: its kept and continued runs must match ------------------------------------------
def test_compare_refuses_kept_runs_of_other_hyper_parameters(data_dir, tmp_path, capsys):
    out = tmp_path / "compare"
    argv = ["--hparams", HPARAMS, "--data-dir", data_dir, "--output-dir", str(out),
            "--models", "clsr", "--epochs", "1", *SMALL]
    assert compare.main(argv + ["--set", "learning_rate=-1"]) == 2
    one_error(capsys, r"^error: --set learning_rate=-1: 'learning_rate' must be > 0")
    overrides, _ = parse_overrides(SETS)
    kept = compare.Comparison(HPARAMS, ["clsr"], data_dir=data_dir, output_dir=str(out),
                              epochs=1, overrides=overrides).pair_hparams("clsr")
    (out / "clsr").mkdir(parents=True)
    record_hparams(out / "clsr", dict(kept, hidden_size=16))
    (out / "clsr" / "result.json").write_text('{"status": "ok"}')
    before = snapshot(out)
    assert compare.main(argv) == 2
    one_error(capsys, r"clsr: the run there was trained with other hyper-parameters: "
                      r"hidden_size 16 \(now 8\); .*pass --force to rerun it")
    assert snapshot(out) == before and not leftovers(out)


def test_compare_gives_clsr_an_error_row_when_only_its_own_rules_break(data_dir, tmp_path):
    import pandas as pd

    out = tmp_path / "compare"
    assert compare.main(["--hparams", HPARAMS, "--data-dir", data_dir, "--output-dir", str(out),
                         "--models", "clsr", "--epochs", "1", *SMALL,
                         "--set", "hidden_size=4"]) == compare.EXIT_MODEL_FAILED
    status = pd.read_csv(out / "comparison.csv")["status"][0]
    assert "HParamsError" in status and "'hidden_size' (4) must be equal" in status
    assert not leftovers(out)


@pytest.mark.parametrize("error, where", [
    (OSError(errno.ENOSPC, "No space left on device", "/out/metrics.json"),
     "/out/metrics.json: "),
    (tf.errors.ResourceExhaustedError(None, None, "/out/ckpt-3_temp; No space left on device"),
     ""),
])
def test_a_full_disk_exits_1_in_one_line(error, where, capsys):
    def run(args):
        raise error

    args = argparse.Namespace(debug=False)
    assert cli.run_command(run, args) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith(f"error: {where}no space left on device; the files written before "
                          "are whole") and err.count("\n") == 1
    with pytest.raises(type(error)):
        cli.run_command(run, argparse.Namespace(debug=True))
    other = OSError(errno.EIO, "Input/output error")
    with pytest.raises(OSError, match="Input/output"):  # other failures keep their traceback
        cli.run_command(lambda args: (_ for _ in ()).throw(other), args)
