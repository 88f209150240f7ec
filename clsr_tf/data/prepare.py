"""Temporary: the names moved to ``protocol``, ``writers`` and ``registry``."""

from clsr_tf.data.protocol import prepare_interactions  # noqa: F401
from clsr_tf.data.registry import DATASET_DEFAULTS, prepare_dataset  # noqa: F401
from clsr_tf.data.writers import INFO_FILE, META_SUFFIX, SPLITS  # noqa: F401
