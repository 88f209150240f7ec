"""Baselines run next to CLSR by ``python -m clsr_tf.compare``.

- ``surge``: SURGE (Chang et al., SIGIR 2021) ported to Keras on clsr_tf's batch contract.
- ``runner``: in-process training of the Keras models (CLSR, SURGE) through
  ``CLSRSequentialModel``'s loop.
- ``recommenders_runner``: one Recommenders sequential model (SLi-Rec, GRU, Caser, A2SVD,
  NextItNet, SUM) per subprocess, since importing them turns eager execution off.
- ``compat``: the import shim that lets Recommenders 1.2.1's GRU and SUM load under Keras 2.15.
"""

import collections

Spec = collections.namedtuple("Spec", "module cls iterator needs_shim")
_SEQ = "recommenders.models.deeprec.models.sequential."
_ITERATOR = "recommenders.models.deeprec.io.sequential_iterator.SequentialIterator"
# Recommenders' models: compared name -> their module, class, iterator, and whether they need
# the ``compat`` import shim.
RECOMMENDERS_MODELS = {
    "sli_rec": Spec(_SEQ + "sli_rec", "SLI_RECModel", _ITERATOR, False),
    "gru": Spec(_SEQ + "gru", "GRUModel", _ITERATOR, True),
    "caser": Spec(_SEQ + "caser", "CaserModel", _ITERATOR, False),
    "a2svd": Spec(_SEQ + "asvd", "A2SVDModel", _ITERATOR, False),
    "nextitnet": Spec(_SEQ + "nextitnet", "NextItNetModel",
                      "recommenders.models.deeprec.io.nextitnet_iterator.NextItNetIterator",
                      False),
    "sum": Spec(_SEQ + "sum", "SUMModel", _ITERATOR, True),
}
