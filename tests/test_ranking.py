"""Full-catalogue scoring: recommend, the full-ranking protocol, raw requests, the signature."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from clsr_tf import export, ranking
from clsr_tf import recommend as recommend_cli
from clsr_tf.data.contract import TIME_RANGE
from clsr_tf.data.loader import FastBatches
from clsr_tf.hparams import as_dict, load_hparams
from clsr_tf.sequential import CLSRSequentialModel, SURGESequentialModel

HPARAMS = os.path.join(os.path.dirname(__file__), "..", "hparams", "synthetic.yaml")
SMALL = dict(max_seq_length=10, item_embedding_dim=6, cate_embedding_dim=2,
             user_embedding_dim=8, hidden_size=8, att_fcn_layer_sizes=[8, 4],
             layer_sizes=[8, 4], batch_size=64)
SET = [a for key, value in SMALL.items() for a in ("--set", f"{key}={value}")]


def randomised(model, seed=0):
    """Random weights and batch-norm statistics instead of training (distinct scores)."""
    rng = np.random.default_rng(seed)
    for var in model.model.variables:
        noise = 0 if "moving_variance" in var.name else rng.normal(0, 0.3, var.shape)
        var.assign(var.numpy() * rng.uniform(0.5, 1.5, var.shape) + noise)
    return model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(data folder, CLSR facade with random weights)."""
    from clsr_tf.data.registry import prepare_dataset

    data = str(tmp_path_factory.mktemp("ranking") / "data")
    prepare_dataset("synthetic", None, data, max_seq_length=10, n_users=40,
                    interactions_per_user=20)
    model = CLSRSequentialModel(load_hparams(HPARAMS, data_dir=data, **SMALL), verbose=0)
    return data, randomised(model)


def lines_of(path, positives_only=True):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f
                if not positives_only or line.startswith("1\t")]


def request_of(fields):
    """A raw request from the fields of a Recommenders line."""
    return {"user": fields[1], "item_history": fields[5].split(","),
            "time_history": [float(t) for t in fields[7].split(",")], "time": float(fields[4])}


def expected_top_k(model, tmp_path, infile, catalogue, k, groups, exclude=False):
    """Top-K by scoring the explicit candidate lines with ``score``."""
    lines = str(tmp_path / "candidates")
    ranking.write_candidate_lines(infile, lines, catalogue, exclude_history=exclude,
                                  max_seq_length=model.hp["max_seq_length"], limit=groups)
    scores = model.score(lines)
    items = np.array([fields[2] for fields in lines_of(lines, False)], dtype=object)
    starts = np.flatnonzero(scores["labels"] > 0)
    out = []
    for a, b in zip(starts, list(starts[1:]) + [len(items)]):
        order = np.argsort(-scores["pred"][a:b], kind="stable")[:k]
        out.append((items[a:b][order], scores["pred"][a:b][order]))
    return out, scores


def test_recommend_equals_scoring_the_candidate_lines(setup, tmp_path):
    data, model = setup
    valid = os.path.join(data, "valid_data")
    got = model.recommend(filename=valid, k=10, exclude_history=False)
    expected, _ = expected_top_k(model, tmp_path, valid, model.catalogue, 10, groups=6)
    for row, (items, scores) in enumerate(expected):
        np.testing.assert_allclose(got["scores"][row], scores, atol=1e-5)
        assert list(got["items"][row]) == list(items)
    assert got["alpha"].shape == (len(got["users"]), 10)
    assert ((got["alpha"] > 0) & (got["alpha"] < 1)).all()


def test_excluded_items_never_appear(setup):
    data, model = setup
    valid = os.path.join(data, "valid_data")
    k = len(model.catalogue) - 5
    got = model.recommend(filename=valid, k=k, exclude_history=True)
    for row, fields in enumerate(lines_of(valid)):
        history = set(fields[5].split(",")[-model.hp["max_seq_length"]:])
        shown = set(got["items"][row][got["items"][row] != ""])
        assert not shown & history
        assert len(shown) == min(k, len(model.catalogue) - len(history))


def test_candidate_subset_is_honoured(setup, tmp_path):
    data, model = setup
    valid = os.path.join(data, "valid_data")
    candidates = list(model.catalogue.ids[::7][:30])
    got = model.recommend(filename=valid, k=5, candidates=candidates, exclude_history=False)
    assert set(got["items"].ravel()) <= set(candidates)
    subset = model.catalogue.subset(candidates)
    expected, _ = expected_top_k(model, tmp_path, valid, subset, 5, groups=3)
    for row, (items, scores) in enumerate(expected):
        # the candidate lines put the line's own item first: it may be outside the subset
        inside = np.isin(items, candidates)
        assert list(got["items"][row][:inside.sum()]) == list(items[inside])[:5]
    with pytest.raises(ValueError, match="not in the catalogue"):
        model.catalogue.subset(["no_such_item"])


def test_full_ranking_metrics_by_hand():
    logits = np.array([[3.0, 1.0, 2.0, 0.5],    # target col 2: rank 2
                       [1.0, 1.0, 1.0, 1.0],    # ties count against: rank 4
                       [0.0, -np.inf, 5.0, 1.0]])  # target col 2, exclusion: rank 1
    ranks = ranking.positive_ranks(logits, np.array([2, 0, 2]))
    assert ranks.tolist() == [2, 4, 1]
    got = ranking.full_ranking_metrics(ranks, 4, ks=(1, 2))
    assert got["recall@1"] == pytest.approx(1 / 3)
    assert got["recall@2"] == pytest.approx(2 / 3)
    assert got["ndcg@2"] == pytest.approx((1 / np.log2(3) + 1) / 3)
    assert got["mrr"] == pytest.approx((1 / 2 + 1 / 4 + 1) / 3)
    assert got["positives"] == 3 and got["candidates"] == 4
    assert ranking.ranks_of_lines([1, 0, 0, 1, 0], [0.5, 0.7, 0.1, 0.2, 0.2]).tolist() == [2, 2]


def test_run_eval_full_matches_the_scored_candidate_lines(setup, tmp_path):
    data, model = setup
    test = os.path.join(data, "test_data")
    got = model.run_eval_full(test, exclude_history=True)
    lines = str(tmp_path / "lines")
    ranking.write_candidate_lines(test, lines, model.catalogue, exclude_history=True,
                                  max_seq_length=model.hp["max_seq_length"])
    scores = model.score(lines)
    ranks = ranking.ranks_of_lines(scores["labels"], scores["pred"])
    expected = ranking.full_ranking_metrics(ranks, len(model.catalogue))
    for key in ("recall@5", "ndcg@10", "recall@20", "mrr", "positives"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6)
    protocols = model.evaluate_protocols(test, 99, "both")
    assert set(protocols) == {"sampled", "full"} and "gauc" in protocols["sampled"]


def test_full_ranking_reports_each_tenth_of_the_positives(setup, capsys, monkeypatch):
    """``PositivesProgress``: one line per tenth of the file's positives, in order, the last
    at all of them; ``run_eval_full`` prints them with ``verbose`` only."""
    data, model = setup
    test = os.path.join(data, "test_data")
    progress = ranking.PositivesProgress(test)
    got = ranking.evaluate_full(model.ranker, model.batches(test, 0), model.catalogue,
                                users_per_call=1, progress=progress)
    total = got["positives"] + got["skipped"]
    assert progress.total == total > 5
    lines = capsys.readouterr().out.splitlines()
    tenths = sorted({-(-t * total // 10) for t in range(1, 11)})  # first count reaching t/10
    assert [int(line.split()[2]) for line in lines] == tenths
    assert all(line.startswith("full ranking: ") and f" of {total} positives (" in line
               for line in lines)
    model.run_eval_full(test)
    assert "full ranking" not in capsys.readouterr().out
    monkeypatch.setattr(model, "verbose", 1)
    model.run_eval_full(test)
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"full ranking: {total} of {total}")


@pytest.mark.parametrize("chunk", [1, 7, 100_000])
def test_the_baselines_chunked_full_ranking_equals_run_eval_full(setup, tmp_path, chunk):
    """A Recommenders baseline's full ranking (``recommenders_runner.full_ranking``) feeds its
    ``eval`` through Recommenders' own iterator, a chunk of positives at a time, each group's
    history parsed once. The feeds equal those of the explicit candidate lines parsed line by
    line, in their order; with CLSR's scores of those lines standing in for the baseline's,
    the metrics are ``run_eval_full``'s whatever the chunk; no cache entry and no file are
    left behind."""
    from recommenders.models.deeprec.deeprec_utils import HParams
    from recommenders.models.deeprec.io.sequential_iterator import SequentialIterator

    from clsr_tf.baselines import recommenders_runner as runner
    from clsr_tf.data.contract import vocab_paths

    data, model = setup
    test, explicit = os.path.join(data, "test_data"), str(tmp_path / "candidate_lines")
    ranking.write_candidate_lines(test, explicit, model.catalogue, exclude_history=True,
                                  max_seq_length=model.hp["max_seq_length"])
    iterator = SequentialIterator(HParams(dict(vocab_paths(model.hp), batch_size=50,
                                               max_seq_length=model.hp["max_seq_length"])),
                                  tf.Graph())
    lines = [line for line in iterator.parse_file(explicit)
             if len(line[4]) >= model.hp["min_seq_length"]]

    class Cache(dict):  # the iterator's cache of parsed files, recording the names it gets
        names = []

        def __setitem__(self, name, parsed):
            self.names.append(name)
            super().__setitem__(name, parsed)

    iterator.iter_data = Cache()
    preds = model.score(explicit)["pred"]
    assert len(preds) == len(lines)
    done = []

    def eval_(sess, feed):  # the explicit lines' feed and CLSR's scores of them, in order
        n = len(feed[iterator.labels])
        iterator.iter_data["expected"] = lines[len(done):len(done) + n]
        expected = next(iterator.load_data_from_file("expected"))
        del iterator.iter_data["expected"]
        for placeholder, value in expected.items():
            np.testing.assert_array_equal(feed[placeholder], value, err_msg=placeholder.name)
        done.extend(preds[len(done):len(done) + n])
        return np.asarray(done[-n:]), feed[iterator.labels]

    baseline = types.SimpleNamespace(iterator=iterator, eval=eval_, sess=None)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # The configuration as the comparison passes it: through JSON.
    config = json.loads(json.dumps({"test_file": test, "model_dir": str(run_dir),
                                    "eval_min_seq_length": model.hp["min_seq_length"],
                                    "data_hparams": as_dict(model.hp)}))
    got = runner.full_ranking(baseline, config, chunk=chunk)
    expected = model.run_eval_full(test, exclude_history=True)
    for key in ("recall@5", "ndcg@10", "recall@20", "mrr", "positives", "candidates",
                "skipped"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key
    assert expected["positives"] > 7 and len(done) == len(lines)
    chunks = [name for name in Cache.names if name != "expected"]
    assert len(set(chunks)) == len(chunks) == -(-expected["positives"] // chunk)
    assert iterator.iter_data == {} and os.listdir(run_dir) == []


def test_the_popularity_reference_agrees_with_the_candidate_lines(setup, tmp_path):
    """docs/results/popularity.py: both protocols of the most-popular scores; its full
    ranking is checked against the explicit candidate lines inside the script."""
    sys.path.insert(0, os.path.join(os.path.dirname(HPARAMS), "..", "docs", "results"))
    try:
        import popularity
    finally:
        sys.path.pop(0)
    data, model = setup
    out = tmp_path / "popularity.md"
    assert popularity.main(["--hparams", HPARAMS, "--data-dir", data, "--output", str(out),
                            *SET]) == 0
    counts = popularity.train_counts(os.path.join(data, "train_data"))
    full = popularity.full(model.hp, counts, model.catalogue)
    assert full["positives"] == model.run_eval_full(os.path.join(data, "test_data"))["positives"]
    assert 0 < full["recall@5"] <= full["recall@20"] <= 1
    assert "| full ranking | " in out.read_text()


def test_raw_requests_reproduce_the_loader(setup, tmp_path):
    """Unknown users/items and histories longer than max_seq_length included."""
    data, model = setup
    fields = lines_of(os.path.join(data, "test_data"))[:4]
    long = list(fields[0])
    long[5] = ",".join(fields[0][5].split(",") * 3)  # 3x the history: longer than L
    long[6] = ",".join(fields[0][6].split(",") * 3)
    times = sorted(float(t) for t in fields[0][7].split(",") * 3)
    long[7] = ",".join(f"{t:.0f}" for t in times)
    unknown = list(fields[1])
    unknown[1] = "nobody"
    items, cates = unknown[5].split(","), unknown[6].split(",")
    items[-1], cates[-1] = "no_such_item", "no_such_cate"
    unknown[5], unknown[6] = ",".join(items), ",".join(cates)
    rows = fields + [long, unknown]
    path = tmp_path / "lines"
    path.write_text("".join("\t".join(r) + "\n" for r in rows))
    hp = dict(model.hp, min_seq_length=1)
    batch = next(iter(FastBatches(hp)(str(path), 0)))
    raw = ranking.raw_requests_of(hp, model.catalogue)
    from clsr_tf.requests import pad_requests

    padded = pad_requests([request_of(r) for r in rows])
    got = raw(tf.constant(padded["user"].tolist()), tf.constant(padded["item_history"].tolist()),
              padded["time_history"], padded["time"])
    assert TIME_RANGE[hp["time_unit"]] == raw.day
    for key in ("users", "item_history", "item_cate_history", "mask", "time", "time_diff",
                "time_from_first_action", "time_to_now"):
        np.testing.assert_array_equal(got[key].numpy(), batch[key], err_msg=key)
    assert got["users"].numpy()[-1] == 0 and got["item_history"].numpy()[-1].min() == 0


def test_raw_recommend_matches_the_file_path(setup):
    data, model = setup
    valid = os.path.join(data, "valid_data")
    requests = [request_of(f) for f in lines_of(valid)]
    from_file = model.recommend(filename=valid, k=8, exclude_history=False)
    raw = model.recommend(requests=requests, k=8, exclude_history=False)
    assert (raw["items"] == from_file["items"]).all()
    np.testing.assert_allclose(raw["scores"], from_file["scores"], atol=1e-6)
    np.testing.assert_allclose(raw["alpha"], from_file["alpha"], atol=1e-6)
    subset = list(model.catalogue.ids[:40])
    among = model.recommend(requests=requests[:3], k=4, candidates=subset)
    assert set(among["items"].ravel()) <= set(subset)


def test_bad_requests_give_clear_errors(setup):
    _, model = setup
    good = {"user": "u1", "item_history": ["i1", "i2"], "time_history": [1, 2], "time": 3}
    with pytest.raises(ValueError, match="empty history"):
        model.recommend(requests=[dict(good, item_history=[], time_history=[])])
    with pytest.raises(ValueError, match="timestamps"):
        model.recommend(requests=[dict(good, time_history=[1])])
    with pytest.raises(ValueError, match="time_history"):
        model.recommend(requests=[dict(good, time_history=["x", "y"])])
    with pytest.raises(ValueError, match="between 1 and"):
        model.recommend(requests=[good], k=len(model.catalogue) + 1)
    with pytest.raises(ValueError, match="integer"):
        model.recommend(requests=[good], k=2.5)
    raw = model.raw_recommender()
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty history"):
        raw.recommend(tf.constant(["u1"]), tf.constant([[""]]), tf.constant([[0.0]], tf.float64),
                      tf.constant([1.0], tf.float64), tf.constant(3), tf.constant(True))
    with pytest.raises(tf.errors.InvalidArgumentError, match="larger than"):
        raw.recommend(tf.constant(["u1"]), tf.constant([["i1"]]), tf.constant([[0.0]], tf.float64),
                      tf.constant([1.0], tf.float64), tf.constant(10 ** 6), tf.constant(True))
    with pytest.raises((TypeError, ValueError)):  # wrong dtype: int timestamps
        raw.recommend(tf.constant(["u1"]), tf.constant([["i1"]]), tf.constant([[0]]),
                      tf.constant([1]), tf.constant(3), tf.constant(True))


FRESH = """
import json, sys
import numpy as np
import tensorflow as tf
assert not any(name.startswith("clsr_tf") for name in sys.modules)
loaded = tf.saved_model.load(sys.argv[1])
requests = json.load(open(sys.argv[2]))
width = max(len(r["item_history"]) for r in requests)
items = [r["item_history"] + [""] * (width - len(r["item_history"])) for r in requests]
times = [r["time_history"] + [0.0] * (width - len(r["time_history"])) for r in requests]
out = loaded.signatures["recommend"](
    user=tf.constant([r["user"] for r in requests]), item_history=tf.constant(items),
    time_history=tf.constant(times, tf.float64),
    time=tf.constant([r["time"] for r in requests], tf.float64), k=tf.constant(5),
    exclude_history=tf.constant(True))
print(json.dumps({"items": out["items"].numpy().astype(str).tolist(),
                  "scores": out["scores"].numpy().tolist(),
                  "signatures": sorted(loaded.signatures),
                  "clsr_tf": any(name.startswith("clsr_tf") for name in sys.modules)}))
"""


@pytest.mark.slow
def test_saved_model_recommend_in_a_fresh_process(setup, tmp_path):
    data, model = setup
    weights = str(tmp_path / "best_model")
    model.save_model(weights)
    saved = str(tmp_path / "saved_model")
    assert export.main(["--hparams", HPARAMS, "--data-dir", data, "--weights", weights,
                        "--output", saved, *SET]) == 0
    requests = [request_of(f) for f in lines_of(os.path.join(data, "test_data"))]
    requests[0]["user"] = "nobody"
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", FRESH, saved, str(tmp_path / "requests.json")],
                            capture_output=True, text=True, env=env, cwd=str(tmp_path),
                            check=True)
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["signatures"] == ["recommend", "serving_default"] and not got["clsr_tf"]
    expected = model.recommend(requests=requests, k=5)
    assert got["items"] == expected["items"].tolist()
    np.testing.assert_allclose(got["scores"], expected["scores"], atol=1e-6)
    # The command line serves the same requests through the SavedModel and the weights.
    jsonl = tmp_path / "requests.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in requests))
    for flag in (["--saved-model", saved], ["--weights", weights]):
        out = tmp_path / "out.jsonl"
        assert recommend_cli.main(["--hparams", HPARAMS, "--data-dir", data, *flag,
                                   "--requests", str(jsonl), "--output", str(out), "--k", "5",
                                   *SET]) == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["items"] for r in rows] == got["items"]
    assert recommend_cli.main(["--hparams", HPARAMS, "--data-dir", data, "--weights", weights,
                               "--requests", str(jsonl), "--output", str(out), "--k", "0",
                               *SET]) == 2


def test_surge_recommend_equals_scoring_the_candidate_lines(setup, tmp_path):
    data, _ = setup
    hp = dict(as_dict(load_hparams(HPARAMS, data_dir=data, **SMALL)), model_type="surge",
              pool_length=3, metric_heads=2, relative_threshold=0.3)
    model = randomised(SURGESequentialModel(hp, verbose=0), seed=1)
    model.catalogue = model.catalogue.subset(list(range(1, 80)))
    valid = os.path.join(data, "valid_data")
    got = model.recommend(filename=valid, k=6, exclude_history=False)
    assert "alpha" not in got
    expected, _ = expected_top_k(model, tmp_path, valid, model.catalogue, 6, groups=3)
    for row, (items, scores) in enumerate(expected):
        inside = np.isin(items, model.catalogue.ids)
        np.testing.assert_allclose(got["scores"][row][:inside.sum()], scores[inside], atol=1e-5)
