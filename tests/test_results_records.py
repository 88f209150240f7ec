"""docs/results/records.py: the campaign's finished runs kept in, and restored from, the
repository (what lets a campaign continue on a new machine)."""

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "docs", "results"))
try:
    import records
finally:
    sys.path.pop(0)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def campaign(tmp_path):
    """A RUNS_ROOT with a finished run, a killed one and a side folder linking to the first."""
    root = tmp_path / "runs"
    done = root / "movielens" / "clsr" / "seed_1"
    write(str(done / "result.json"), json.dumps({"status": "ok", "test": {"gauc": 0.7}}))
    write(str(done / "hparams.json"), "{}")
    write(str(done / "test_scores.npz"), "scores")
    write(str(done / "checkpoints" / "ckpt-1.index"), "weights")
    write(str(done / "best_model" / "weights.index"), "best")
    write(str(root / "movielens" / "gru" / "seed_1" / "result.json"), '{"status": "ok"}')
    write(str(root / "movielens" / "gru" / "seed_1" / "best_model" / "weights"), "best")
    os.utime(done / "result.json", (1_700_000_000, 1_700_000_000))
    write(str(root / "movielens" / "sum" / "seed_1" / "hparams.json"), "{}")  # killed
    (root / "movielens_surge").mkdir()
    os.symlink("../movielens/clsr", root / "movielens_surge" / "clsr")
    return root


def test_save_keeps_finished_runs_only_and_restore_gives_them_back(campaign, tmp_path):
    kept = tmp_path / "records"
    assert records.save(str(campaign), str(kept), str(tmp_path / "killed")) == [
        "movielens/clsr/seed_1", "movielens/gru/seed_1"]
    assert not (tmp_path / "killed").exists()
    run = kept / "movielens" / "clsr" / "seed_1"  # the studies' weights kept, no checkpoints
    assert sorted(os.listdir(run)) == ["best_model", "hparams.json", "result.json",
                                       "test_scores.npz"]
    assert os.listdir(kept / "movielens" / "gru" / "seed_1") == ["result.json"]
    assert not (kept / "movielens" / "sum").exists() and not (kept / "movielens_surge").exists()
    assert json.loads((kept / "finished.json").read_text())[
        "movielens/clsr/seed_1"] == 1_700_000_000

    fresh = tmp_path / "new_machine"
    assert records.restore(str(fresh), str(kept), str(tmp_path / "killed")) == [
        "movielens/clsr/seed_1", "movielens/gru/seed_1"]
    assert (fresh / "movielens" / "clsr" / "seed_1" / "best_model" / "weights.index").exists()
    result = fresh / "movielens" / "clsr" / "seed_1" / "result.json"
    assert json.loads(result.read_text())["test"] == {"gauc": 0.7}
    assert os.path.getmtime(result) == 1_700_000_000  # git keeps no times; finished.json does
    assert records.restore(str(fresh), str(kept), str(tmp_path / "killed")) == []


def test_restore_finishes_a_killed_run_and_keeps_a_local_result(campaign, tmp_path):
    kept = tmp_path / "records"
    write(str(kept / "movielens" / "sum" / "seed_1" / "result.json"), '{"status": "ok"}')
    write(str(kept / "movielens" / "clsr" / "seed_1" / "result.json"), '{"status": "other"}')
    assert records.restore(str(campaign), str(kept), str(tmp_path / "killed")) == [
        "movielens/sum/seed_1"]
    local = json.loads((campaign / "movielens" / "clsr" / "seed_1" / "result.json").read_text())
    assert local["status"] == "ok"
    assert (campaign / "movielens" / "sum" / "seed_1" / "result.json").exists()


def test_a_result_that_is_not_json_is_named(campaign, tmp_path):
    bad = campaign / "movielens" / "gru" / "seed_1" / "result.json"
    write(str(bad), "{truncated")
    with pytest.raises(ValueError, match=f"{bad}: not JSON"):
        records.save(str(campaign), str(tmp_path / "records"), str(tmp_path / "killed"))
    assert records.main(["save", str(campaign), "--records", str(tmp_path / "r"),
                         "--in-progress-dir", str(tmp_path / "killed")]) == 2
    assert not (tmp_path / "r").exists()


def test_a_killed_run_is_kept_whole_resumed_elsewhere_and_dropped_once_finished(campaign,
                                                                              tmp_path):
    killed = campaign / "movielens" / "sum" / "seed_1"
    write(str(killed / "last" / "model.index"), "epoch 3")
    write(str(killed / "last" / "model.tmp-123-abcd"), "half written")
    write(str(killed / "best_model" / "weights"), "epoch 2")
    write(str(killed / "runner.log"), "epoch 3 done")
    write(str(killed / "logs" / "events"), "tensorboard")
    kept, held = tmp_path / "records", tmp_path / "killed"
    args = ["save", str(campaign), "--records", str(kept), "--in-progress-dir", str(held)]
    assert records.main(args) == 0 and not held.exists()  # killed runs only when asked
    assert records.main(args + ["--in-progress"]) == 0
    copy = held / "movielens" / "sum" / "seed_1"
    assert sorted(os.listdir(copy)) == ["best_model", "hparams.json", "last", "runner.log"]
    assert os.listdir(copy / "last") == ["model.index"]
    assert (held / "movielens" / "clsr").exists() is False  # finished: a record, not a copy

    fresh = tmp_path / "new_machine"
    assert records.restore(str(fresh), str(kept), str(held)) == [
        "movielens/clsr/seed_1", "movielens/gru/seed_1", "movielens/sum/seed_1"]
    assert (fresh / "movielens" / "sum" / "seed_1" / "last" / "model.index").read_text() \
        == "epoch 3"
    write(str(fresh / "movielens" / "sum" / "seed_1" / "last" / "model.index"), "epoch 4")
    assert records.restore(str(fresh), str(kept), str(held)) == []  # its own copy is newer
    assert (fresh / "movielens" / "sum" / "seed_1" / "last" / "model.index").read_text() \
        == "epoch 4"

    write(str(fresh / "movielens" / "sum" / "seed_1" / "result.json"), '{"status": "ok"}')
    assert records.save(str(fresh), str(kept), str(held), keep_killed=True) == [
        "movielens/clsr/seed_1", "movielens/gru/seed_1", "movielens/sum/seed_1"]
    assert not copy.exists() and (kept / "movielens" / "sum" / "seed_1" / "result.json").exists()


def test_published_studies_are_restored_where_missing_and_a_published_study_is_skipped(
        campaign, tmp_path):
    published = tmp_path / "docs_results"
    write(str(published / "movielens" / "studies" / "shuffle_summary.csv"), "published")
    write(str(published / "movielens" / "studies" / "one_side_summary.csv"), "published")
    write(str(published / "movielens" / "comparison.md"), "not a study")
    write(str(campaign / "movielens" / "studies" / "one_side_summary.csv"), "local")
    kept = published / "runs"  # the records' parent folder publishes the tables
    kept.mkdir()
    assert records.main(["restore", str(campaign), "--records", str(kept),
                         "--in-progress-dir", str(tmp_path / "killed")]) == 0
    studies = campaign / "movielens" / "studies"
    assert sorted(os.listdir(studies)) == ["one_side_summary.csv", "shuffle_summary.csv"]
    assert (studies / "shuffle_summary.csv").read_text() == "published"
    assert (studies / "one_side_summary.csv").read_text() == "local"  # never overwritten
    assert not (campaign / "movielens" / "comparison.md").exists()
    assert records.restore(str(tmp_path / "fresh"), str(kept), str(tmp_path / "killed")) == [] \
        and not (tmp_path / "fresh" / "movielens").exists()  # the API restores no studies

    # campaign.sh's study loop skips a study whose summary is there.
    script = open(os.path.join(os.path.dirname(__file__), "..", "docs", "results",
                               "campaign.sh")).read()
    loop = script[script.index("for STUDY in"):script.index("done", script.index("for STUDY"))]
    ran = subprocess.run(["sh", "-c", f"ROOT={campaign}; SEEDS=; python() {{ echo \"$STUDY\"; }}"
                          f"\n{loop}done"], capture_output=True, text=True, check=True)
    assert ran.stdout.split() == ["truncate", "fusion_weight"]


def test_git_keeps_the_records():
    """The repository's ``runs/`` ignore rule once swallowed the records: none may be ignored."""
    root = os.path.join(os.path.dirname(__file__), "..")
    if not os.path.exists(os.path.join(root, ".git")):
        pytest.skip("not a git checkout")
    paths = [os.path.relpath(os.path.join(folder, "movielens", "clsr", "seed_1", name), root)
             for folder in (records.RECORDS, records.IN_PROGRESS)
             for name in records.RECORD_FILES + ("best_model/weights.index", "last/model.index")]
    done = subprocess.run(["git", "-C", root, "check-ignore", *paths], capture_output=True,
                          text=True)
    if done.returncode == 128:  # e.g. a checkout owned by another user
        pytest.skip(f"git cannot read the checkout: {done.stderr.strip()}")
    assert done.returncode == 1 and done.stdout == "", done.stdout
