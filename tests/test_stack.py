"""The supported stack: Keras 2 from one place whatever was imported first, quiet commands."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from clsr_tf.keras2 import TF_VERSION, keras

ROOT = os.path.join(os.path.dirname(__file__), "..")
HPARAMS = os.path.join(ROOT, "hparams", "synthetic.yaml")


def run_python(code):
    """Run ``code`` in a fresh interpreter without TF_USE_LEGACY_KERAS; return it finished."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_keras2_matches_the_installed_tensorflow():
    if TF_VERSION < (2, 16):
        assert keras.Model is tf.keras.Model  # tf.keras is a lazy module on 2.15
    else:  # tf.keras is Keras 3 unless TF_USE_LEGACY_KERAS was set: never use it
        assert keras.__name__ == "tf_keras" and keras.__version__.startswith("2.")


@pytest.mark.slow
def test_a_process_that_imported_keras_3_first_still_trains_clsr():
    code = """
import keras as user_keras  # Keras 3 on TensorFlow >= 2.16, Keras 2 on 2.15
import numpy as np
from clsr_tf.keras2 import keras
from clsr_tf.models import CLSRModel
from clsr_tf.models.base import dummy_batch
model = CLSRModel(dict(user_vocab_size=5, item_vocab_size=9, cate_vocab_size=3, max_seq_length=4,
                       item_embedding_dim=4, cate_embedding_dim=2, user_embedding_dim=6,
                       hidden_size=6, att_fcn_layer_sizes=[4, 2], layer_sizes=[4, 2],
                       contrastive_recent_k=2, contrastive_length_threshold=3))
model.build_from_shape(4)
model.compile(optimizer=keras.optimizers.Adam(1e-3))
batch = {k: np.array(v) for k, v in dummy_batch(4, batch_size=5).items()}
batch["labels"][0] = 1
logs = model.train_on_batch(batch, return_dict=True)
assert isinstance(model, keras.Model) and np.isfinite(logs["loss"]), logs
print("ok", user_keras.__version__, keras.__name__)
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")


@pytest.mark.slow
def test_commands_start_without_tensorflow_noise():
    # Bad input: the command loads TensorFlow, then stops with exactly one line.
    done = subprocess.run(
        [sys.executable, "-m", "clsr_tf.train", "--hparams", HPARAMS, "--set", "no_such_key=1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "no_such_key" in lines[0], lines
