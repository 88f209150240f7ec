"""Data-parallel training with tf.distribute on two logical CPU devices (in a subprocess,
since logical devices must be set before TensorFlow starts)."""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf

from clsr_tf.keras2 import keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
from conftest import random_batch, small_hparams
from clsr_tf.models import CLSRModel

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
# Only the group softmax loss, no batch norm: one SGD step must then equal the single-device
# step exactly when each replica's loss is scaled by 1 / replicas.
hp = small_hparams(enable_BN=False, contrastive_loss_weight=0.0, discrepancy_loss_weight=0.0,
                   embed_l2=0.0, layer_l2=0.0, is_clip_norm=0)
batch = random_batch(np.random.default_rng(0), n_groups=8)
weights = {}
for name, scope in (("single", tf.distribute.get_strategy()), ("mirrored", strategy)):
    keras.utils.set_random_seed(1)
    with scope.scope():
        model = CLSRModel(hp)
        model.build_from_shape(10)
        model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.fit(tf.data.Dataset.from_tensors(batch), verbose=0)
    weights[name] = [w.numpy() for w in model.weights]
diff = max(float(np.abs(a - b).max()) for a, b in zip(weights["single"], weights["mirrored"]))
moved = max(float(np.abs(a).max()) for a in weights["single"])
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "diff": diff, "moved": moved}))
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_cpus_matches_a_single_device_step():
    tests = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, tests], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["diff"] < 1e-5, result
