"""Hyper-parameters: every YAML loads, bad keys and values are named, the README lists all keys."""

import glob
import os

import pytest

from clsr_tf.hparams import SCHEMA, HParamsError, as_dict, load_hparams, parse_override

ROOT = os.path.join(os.path.dirname(__file__), "..")


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "hparams", "*.yaml"))))
def test_every_shipped_yaml_loads(path):
    hp = as_dict(load_hparams(path))
    assert os.path.isabs(hp["data_dir"])
    assert hp["model_type"] == "clsr"


def test_paper_settings_of_taobao_and_kuaishou():
    taobao = as_dict(load_hparams(os.path.join(ROOT, "hparams", "taobao.yaml")))
    kuaishou = as_dict(load_hparams(os.path.join(ROOT, "hparams", "kuaishou.yaml")))
    for hp in (taobao, kuaishou):
        assert hp["layer_sizes"] == [100, 64] and hp["learning_rate"] == 1e-3
        assert hp["batch_size"] == 500 and hp["embed_l2"] == hp["layer_l2"] == 1e-6
        assert hp["contrastive_loss_weight"] == 0.1 and hp["sequential_model"] == "time4lstm"
    assert (taobao["contrastive_loss"], taobao["contrastive_length_threshold"],
            taobao["contrastive_recent_k"], taobao["max_seq_length"]) == ("triplet", 5, 3, 50)
    assert (kuaishou["contrastive_loss"], kuaishou["contrastive_length_threshold"],
            kuaishou["contrastive_recent_k"], kuaishou["max_seq_length"]) == ("bpr", 10, 5, 250)


def test_errors_name_the_key_and_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  hiden_size: 3\n")
    with pytest.raises(HParamsError, match=r"bad.yaml:2: unknown hyper-parameter 'hiden_size'"):
        load_hparams(str(bad))
    bad.write_text("model:\n  hidden_size: forty\n")
    with pytest.raises(HParamsError, match=r"bad.yaml:2: 'hidden_size' must be of type int"):
        load_hparams(str(bad))
    bad.write_text("model:\n  contrastive_loss: hinge\n")
    with pytest.raises(HParamsError, match="'contrastive_loss' must be one of"):
        load_hparams(str(bad))
    bad.write_text("train:\n  epochs: 2\ninfo:\n  epochs: 3\n")
    with pytest.raises(HParamsError, match="two sections"):
        load_hparams(str(bad))
    with pytest.raises(HParamsError, match="activation"):
        as_dict({"layer_sizes": [3, 2, 1]})
    with pytest.raises(HParamsError, match="--set epochs: expected KEY=VALUE"):
        parse_override("epochs")


def test_overrides_are_yaml_typed():
    assert parse_override("layer_sizes=[64, 32]") == ("layer_sizes", [64, 32])
    key, value = parse_override("learning_rate=1e-4")  # YAML 1.1 reads a string here
    assert as_dict({key: value})["learning_rate"] == 1e-4
    assert as_dict({"learning_rate": 1})["learning_rate"] == 1.0


def test_readme_documents_every_key():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    missing = [key for key in SCHEMA if f"`{key}`" not in readme]
    assert not missing, missing
