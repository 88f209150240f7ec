"""Disentanglement studies of CLSR (paper sections 4.2 and 4.3).

- ``protocols``: counterfactual batch transforms (``shuffle_history``, ``truncate_history``);
- ``counterfactual``: a trained model under them (``shuffle_study``, ``truncate_study``);
- ``one_side``: alpha forced to 1 / 0 without retraining (``fixed_alpha_model``,
  ``one_side_study``);
- ``fusion_weight``: alpha and accuracy per behaviour type (``fusion_weight_study``);
- ``ablations``: the retraining grid (``GRID``, ``select``, ``run_ablations``);
- ``ground_truth``: alpha per true source and linear probes on the synthetic data
  (``ground_truth_study``);
- ``plots`` and ``report``: figures and the CSV / Markdown / PNG outputs;
- ``common``: ``train_model``; scoring is ``clsr_tf.sequential.FileScorer`` (any
  ``forward`` output of every line of a file) and ``clsr_tf.evaluation.evaluate_scores``.

``python -m clsr_tf.study`` runs them from the command line.
"""
