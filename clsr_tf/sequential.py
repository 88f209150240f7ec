"""A Recommenders-style facade: ``fit``/``run_eval``/``predict``/``load_model`` on files.

``CLSRSequentialModel`` mirrors the methods of Recommenders' ``SequentialBaseModel`` so a
Recommenders notebook can swap CLSR in; underneath, ``.model`` is a plain Keras model.
"""

import json
import os
import time

import numpy as np
import tensorflow as tf

from clsr_tf.data.contract import output_signature
from clsr_tf.data.recommenders_adapter import RecommendersBatches
from clsr_tf.data.validation import DataChecker
from clsr_tf.evaluation import evaluate_scores
from clsr_tf.files import atomic_dir, write_atomic
from clsr_tf.hparams import HParamsError
from clsr_tf.keras2 import keras
from clsr_tf.models import CLSRModel, SURGEModel

LOADERS = ("fast", "recommenders")
# Evaluation protocols: the paper's sampled negatives, the whole catalogue, or both.
PROTOCOLS = ("sampled", "full", "both")


def make_batches(hp, loader="fast"):
    """The batch reader for ``loader``.

    Args:
        hp (dict): Validated hyper-parameters.
        loader (str): ``fast`` (clsr_tf's streaming loader) or ``recommenders``
            (Recommenders' SequentialIterator).

    Returns:
        object: Callable ``(path, batch_num_ngs) -> iterator of batch dicts`` with a
        ``dataset(path, batch_num_ngs)`` method.
    """
    if loader == "recommenders":
        return RecommendersBatches(hp)
    if loader == "fast":
        from clsr_tf.data.loader import FastBatches

        return FastBatches(hp, seed=hp["seed"])
    raise ValueError(f"loader must be one of {LOADERS}, got {loader!r}")


class FileScorer:
    """Run a sequential model over a file and keep chosen ``forward`` outputs of every line.

    Args:
        model (SequentialModel): The Keras model (its ``inference_forward`` runs).
        batches (callable): ``(path, batch_num_ngs) -> batch dicts``, e.g. the ``batches``
            of a ``CLSRSequentialModel``.
        keys (tuple): ``forward`` outputs to keep (``pred`` and ``alpha`` by default).
    """

    def __init__(self, model, batches, keys=("pred", "alpha")):
        self.model = model
        self.batches = batches
        self.keys = tuple(keys)
        self._forward = tf.function(self._outputs, input_signature=[
            output_signature(model.hp["max_seq_length"])])

    def _outputs(self, batch):
        out = self.model.inference_forward(batch)
        return {key: out[key] for key in self.keys}

    def __call__(self, filename, transform=None):
        """Score every line of a file, in file order.

        Args:
            filename (str): A Recommenders sequential file.
            transform (callable): Batch dict -> batch dict applied before the model
                (e.g. a protocol of ``clsr_tf.studies.protocols``), or None.

        Returns:
            dict: ``users`` and ``labels`` [N], each kept output: [N] for one-column outputs
            (``pred``, ``alpha``), [N, D] otherwise.
        """
        parts = {key: [] for key in ("users", "labels") + self.keys}
        for batch in self.batches(filename, 0):
            if transform is not None:
                batch = transform(batch)
            parts["users"].append(np.asarray(batch["users"]).ravel())
            parts["labels"].append(np.asarray(batch["labels"]).ravel())
            for key, value in self._forward(batch).items():
                value = value.numpy()
                parts[key].append(value[:, 0] if value.ndim == 2 and value.shape[1] == 1
                                  else value)
        if not parts["labels"]:
            raise ValueError(f"{filename}: no lines to score")
        return {key: np.concatenate(value) for key, value in parts.items()}


class StepProgress(keras.callbacks.Callback):
    """A progress bar over the steps of one epoch, with the running training losses."""

    def on_epoch_begin(self, epoch, logs=None):
        self.bar, self.steps = keras.utils.Progbar(None), 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps = batch + 1
        self.bar.update(self.steps, [(k, float(v)) for k, v in (logs or {}).items()])

    def on_epoch_end(self, epoch, logs=None):
        self.bar.update(self.steps, finalize=True)


class CLSRSequentialModel:
    """Train, evaluate and score CLSR (or another ``model_class``) on Recommenders files.

    Args:
        hparams (HParams or dict): Hyper-parameters (``clsr_tf.hparams``).
        loader (str): ``fast`` or ``recommenders`` (see ``make_batches``).
        verbose (int): Keras progress output during ``fit`` (0, 1 bar, 2 one line).
        strategy (tf.distribute.Strategy): Data-parallel training (e.g. MirroredStrategy);
            batches are split across replicas, so ``batch_size`` should keep whole groups of
            1 + train_num_ngs rows on each (a multiple of the number of replicas).
    """

    # The Keras model (a subclass may run another SequentialModel).
    model_class = CLSRModel

    def __init__(self, hparams, loader="fast", verbose=1, strategy=None):
        hp = self.model_class.check_hparams(hparams)
        keras.utils.set_random_seed(hp["seed"])
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.model = self.model_class(hp)
            self.model.build_from_shape(hp["max_seq_length"])
            optimizer = keras.optimizers.Adam(hp["learning_rate"])
            if hp["mixed_precision"] == "mixed_float16":
                optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
            self.model.compile(optimizer=optimizer, jit_compile=hp["jit_compile"])
        self.hp = dict(self.model.hp)
        self.batches = make_batches(self.hp, loader)
        self.checker = DataChecker(self.hp, getattr(self.batches, "parser", None))
        # Counts of the validation pass per file checked (lines, unknown ids, long histories).
        self.data_report = {}
        self.verbose = verbose
        self.best_epoch = 0
        self.history = []
        self.scorer = FileScorer(self.model, self.batches, self.model_class.prediction_outputs)
        self._catalogue = self._ranker = self._raw = None

    # ---- checking and scoring ----------------------------------------------------------
    def check_data(self, files):
        """The validation pass over files not yet checked (``clsr_tf.data.validation``).

        Args:
            files (dict): path -> role (``train``, ``lines``) or (``eval``, num_ngs,
                hyper-parameter name).

        Returns:
            dict: path -> counts, also kept in ``data_report``.

        Raises:
            FileNotFoundError: A file is missing.
            DataFormatError: The first problem, naming file, line and field.
        """
        report = self.checker.check_files({
            path: (path,) + (spec if isinstance(spec, tuple) else (spec,))
            for path, spec in files.items()})
        self.data_report.update(report)
        return report

    def score(self, filename):
        """Score every line of a file.

        Args:
            filename (str): A Recommenders sequential file.

        Returns:
            dict: ``users``, ``labels`` and the model's ``prediction_outputs`` (``pred``,
            and ``alpha`` for CLSR) as 1-D numpy arrays, in file order.

        Raises:
            DataFormatError: A malformed line (before any line is scored).
        """
        self.check_data({filename: "lines"})
        return self.scorer(filename)

    def run_eval(self, filename, num_ngs):
        """Evaluate a file of groups (1 positive + ``num_ngs`` negatives).

        Args:
            filename (str): A Recommenders sequential file.
            num_ngs (int): Negatives per positive in the file.

        Returns:
            dict: Metrics (``clsr_tf.evaluation.evaluate``) plus ``mean_alpha``.

        Raises:
            DataFormatError: A malformed line or group (before any line is scored).
        """
        self.check_data({filename: ("eval", num_ngs, "num_ngs")})
        return evaluate_scores(self.hp, self.score(filename), num_ngs)

    def predict(self, infile_name, outfile_name):
        """Write one score per line of ``infile_name`` to ``outfile_name`` (atomically).

        Args:
            infile_name (str): Input file.
            outfile_name (str): Output file.

        Returns:
            CLSRSequentialModel: self.
        """
        preds = self.score(infile_name)["pred"]
        write_atomic(outfile_name, "".join(f"{p:.8g}\n" for p in preds))
        return self

    # ---- the whole catalogue -----------------------------------------------------------
    @property
    def catalogue(self):
        """The items ``recommend`` and ``run_eval_full`` rank (``clsr_tf.ranking.Catalogue``).

        By default every item of the item vocabulary, with the category the data files give
        it (read on first use); assign another ``Catalogue`` to change it.
        """
        if self._catalogue is None:
            from clsr_tf.ranking import Catalogue

            self._catalogue = Catalogue.from_data(self.hp)
        return self._catalogue

    @catalogue.setter
    def catalogue(self, value):
        self._catalogue, self._raw = value, None

    @property
    def ranker(self):
        """The model's ``clsr_tf.ranking.CatalogueRanker`` (built on first use)."""
        if self._ranker is None:
            from clsr_tf.ranking import CatalogueRanker

            self._ranker = CatalogueRanker(self.model)
        return self._ranker

    def raw_recommender(self):
        """The ``clsr_tf.ranking.RawRecommender`` of the raw-input path (and SavedModel)."""
        if self._raw is None:
            from clsr_tf.ranking import RawRecommender, raw_requests_of

            self._raw = RawRecommender(self.model, raw_requests_of(self.hp, self.catalogue),
                                       self.catalogue)
        return self._raw

    def recommend(self, requests=None, filename=None, k=10, candidates=None,
                  exclude_history=True, users_per_call=None):
        """The top-K items of the catalogue (or of ``candidates``) for each user history.

        The history side runs once per user; only the target side runs per candidate, in
        chunks of bounded size (``clsr_tf.ranking``).

        Args:
            requests (list): Raw requests: dicts with ``user`` (id), ``item_history`` (item
                ids, oldest first), ``time_history`` (their timestamps: numbers or numeric
                strings) and ``time`` (the request time), mapped as the data readers map a
                line (unknown ids -> 0, the last ``max_seq_length`` entries, time features
                with ``time_unit``).
            filename (str): Or a Recommenders sequential file: one request per run of
                consecutive lines with the same user, history and time (a valid/test
                positive and its negatives), its target ignored.
            k (int): Items per user (at most the number of candidates).
            candidates (list): Item ids (str) or indices to rank instead of the whole
                catalogue.
            exclude_history (bool): Leave out the items of the history (raw requests: the
                whole history given; files: the ``max_seq_length`` entries the model reads).
            users_per_call (int): Users ranked together (memory: users x candidates logits).

        Returns:
            dict: numpy arrays: ``users`` [U] (ids for raw requests, indices for a file),
            ``items`` [U, K] (item ids; "" past the candidates left after exclusion),
            ``item_index``, ``scores`` (sigmoid(logit), 0 past the candidates) and, for CLSR,
            ``alpha``, best first.

        Raises:
            ValueError: Neither or both of ``requests`` and ``filename``, a bad request
                (empty history, non-numeric times), an unknown candidate, or a bad ``k``.
            DataFormatError: A malformed line of ``filename`` (before any is ranked).
        """
        from clsr_tf.ranking import USERS_PER_CALL, check_k, history_exclusion, request_runs
        from clsr_tf.ranking import regroup as regroup_rows
        from clsr_tf.requests import pad_requests

        if (requests is None) == (filename is None):
            raise ValueError("give either requests or filename")
        catalogue = self.catalogue if candidates is None else self.catalogue.subset(candidates)
        check_k(k, len(catalogue))
        users_per_call = users_per_call or USERS_PER_CALL
        parts = []
        if filename is not None:
            self.check_data({filename: "lines"})
            for block in regroup_rows(request_runs(self.batches(filename, 0)), users_per_call):
                exclude = history_exclusion(block) if exclude_history else None
                out = self.ranker.top_k(block, catalogue, k, exclude)
                out["users"] = block["users"]
                if catalogue.item_names is not None:
                    out["items"] = catalogue.item_names[out["item_index"]]
                parts.append(out)
        else:
            raw = self.raw_recommender()
            padded = pad_requests(list(requests))
            for start in range(0, len(padded["user"]), users_per_call):
                batch = {key: tf.constant(value[start:start + users_per_call].tolist()
                                          if value.dtype == object else
                                          value[start:start + users_per_call])
                         for key, value in padded.items()}
                flags = (np.int32(k), tf.constant(bool(exclude_history)))
                if candidates is None:
                    out = raw.recommend(**batch, k=flags[0], exclude_history=flags[1])
                else:
                    out = raw.recommend_among(batch, catalogue.items, catalogue.cates, *flags)
                out = {key: value.numpy() for key, value in out.items()}
                out["items"] = out["items"].astype(str).astype(object)
                out["users"] = padded["user"][start:start + users_per_call]
                parts.append(out)
        if not parts:
            raise ValueError(f"{filename}: no lines")
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def run_eval_full(self, filename, ks=None, exclude_history=True):
        """The full-ranking protocol: each positive of a file against the whole catalogue.

        With ``verbose``, a line is printed at every tenth of the positives.

        Args:
            filename (str): A Recommenders sequential file (its label-1 lines are ranked;
                the negatives are ignored).
            ks (tuple): Cut-offs (default 5, 10, 20).
            exclude_history (bool): Leave out each positive's history items (its own item
                stays).

        Returns:
            dict: ``recall@K``, ``ndcg@K``, ``mrr``, ``positives`` (ranked), ``skipped``
            (items outside the catalogue) and ``candidates`` (catalogue size).

        Raises:
            DataFormatError: A malformed line (before any is ranked).
        """
        from clsr_tf.ranking import DEFAULT_KS, PositivesProgress, evaluate_full

        self.check_data({filename: "lines"})
        progress = PositivesProgress(filename) if self.verbose else None
        return evaluate_full(self.ranker, self.batches(filename, 0), self.catalogue,
                             exclude_history, ks or DEFAULT_KS, progress=progress)

    def evaluate_protocols(self, filename, num_ngs, protocol="sampled"):
        """The metrics of one or both protocols, keyed by protocol.

        Args:
            filename (str): A valid/test file (1 positive + ``num_ngs`` negatives a group).
            num_ngs (int): Negatives per positive (the sampled protocol).
            protocol (str): ``sampled``, ``full`` or ``both``.

        Returns:
            dict: ``sampled`` -> ``run_eval`` metrics and/or ``full`` -> ``run_eval_full``.
        """
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        out = {}
        if protocol in ("sampled", "both"):
            out["sampled"] = self.run_eval(filename, num_ngs)
        if protocol in ("full", "both"):
            out["full"] = self.run_eval_full(filename)
        return out

    # ---- training ----------------------------------------------------------------------
    def fit(self, train_file, valid_file, valid_num_ngs=None, eval_metric="gauc",
            output_dir=None, resume=False):
        """Train with early stopping on ``eval_metric`` of the validation file.

        Each epoch is seeded from (seed, epoch), so a run resumed from its last checkpoint
        (``resume=True``; model, optimizer and history are restored) reaches the same
        result as an unbroken one. The best epoch's weights are kept and restored at the end.

        Args:
            train_file (str): Training file (positives; negatives are sampled in batch).
            valid_file (str): Validation file.
            valid_num_ngs (int): Negatives per positive in the validation file.
            eval_metric (str): Metric for early stopping and model selection.
            output_dir (str): Where checkpoints, best weights and TensorBoard logs go
                (None: in memory only, no resume).
            resume (bool): Continue from the last checkpoint in ``output_dir``.

        Returns:
            CLSRSequentialModel: self.

        Raises:
            FileNotFoundError: A file is missing.
            DataFormatError: A malformed line or valid group (``check_data``, before the first
                epoch; or, from ``tf.data``, a train file that changed since).
        """
        hp = self.hp
        valid_num_ngs = hp["valid_num_ngs"] if valid_num_ngs is None else valid_num_ngs
        if valid_num_ngs < 1:
            raise ValueError("valid_num_ngs must be a positive number of negatives")
        self.check_data({train_file: "train",
                         valid_file: ("eval", valid_num_ngs, "valid_num_ngs")})
        state = {"epoch": tf.Variable(0, dtype=tf.int64),
                 "history": tf.Variable("[]", dtype=tf.string)}
        ckpt = tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer, **state)
        manager = best_dir = None
        callbacks = []
        if output_dir:
            manager = tf.train.CheckpointManager(ckpt, os.path.join(output_dir, "checkpoints"),
                                                 max_to_keep=2)
            best_dir = os.path.join(output_dir, "best_model")
            if resume and manager.latest_checkpoint:
                ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
                print(f"resumed from {manager.latest_checkpoint} (epoch "
                      f"{int(state['epoch'].numpy())})")
            if hp["write_tfevents"]:
                callbacks.append(keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")))
        self.history = json.loads(state["history"].numpy().decode())
        best = max([h["valid"][eval_metric] for h in self.history], default=-np.inf)
        self.best_epoch = next((h["epoch"] for h in self.history
                                if h["valid"][eval_metric] == best), 0)
        best_weights = [v.numpy() for v in self.model.weights]
        for epoch in range(int(state["epoch"].numpy()) + 1, hp["epochs"] + 1):
            if hp["EARLY_STOP"] > 0 and epoch - 1 - self.best_epoch >= hp["EARLY_STOP"]:
                print(f"early stop at epoch {epoch - 1}")
                break
            seed = hp["seed"] * 1000 + epoch
            started = time.time()
            keras.utils.set_random_seed(seed)
            if self.verbose:
                print(f"epoch {epoch}/{hp['epochs']}")
            train_data = self.batches.dataset(train_file, hp["train_num_ngs"], seed=seed)
            # Keras' own progress output would add its "Epoch 2/2" (one fit call per epoch);
            # a step bar on a terminal, and the line printed below, replace it.
            progress = [StepProgress()] if self.verbose == 1 else []
            with self.batches.original_errors():
                logs = self.model.fit(train_data, epochs=epoch, initial_epoch=epoch - 1,
                                      verbose=0, callbacks=callbacks + progress).history
            valid = self.run_eval(valid_file, valid_num_ngs)
            train = {k: float(v[-1]) for k, v in logs.items()}
            self.history.append({"epoch": epoch, "train": train, "valid": valid,
                                 "seconds": round(time.time() - started, 1)})
            print(f"epoch {epoch}: loss {train.get('loss', float('nan')):.4f}  valid "
                  + "  ".join(f"{k} {v:.4f}" for k, v in valid.items()))
            if valid[eval_metric] > best:
                best, self.best_epoch = valid[eval_metric], epoch
                best_weights = [v.numpy() for v in self.model.weights]
                if best_dir:
                    self.save_model(best_dir)
            state["epoch"].assign(epoch)
            state["history"].assign(json.dumps(self.history))
            if manager:
                manager.save(checkpoint_number=epoch)
        if best_dir and os.path.isdir(best_dir):
            self.load_model(best_dir)
        elif self.best_epoch:
            for var, value in zip(self.model.weights, best_weights):
                var.assign(value)
        print(f"best epoch: {self.best_epoch}")
        return self

    # ---- persistence -------------------------------------------------------------------
    def save_model(self, path):
        """Save the weights (Keras format) into the folder ``path``, atomically.

        Args:
            path (str): Destination folder (replaced as a whole).
        """
        with atomic_dir(path) as tmp:
            self.model.save_weights(os.path.join(tmp, "weights"))

    def load_model(self, path):
        """Load weights saved by ``save_model`` (a folder) or ``model.save_weights``.

        Args:
            path (str): Folder written by ``save_model`` or a Keras weights path.

        Returns:
            CLSRSequentialModel: self.

        Raises:
            ValueError: When a weight of this model is missing from the file or has another
                shape (weights of other hyper-parameters).
        """
        if os.path.isdir(path):
            path = os.path.join(path, "weights")
        status = self.model.load_weights(path)
        try:  # every weight of this model must come from the file
            status.assert_existing_objects_matched()
        except AssertionError as err:
            raise ValueError(f"{path}: the weights do not cover this model "
                             f"({str(err).splitlines()[0][:300]})") from err
        status.expect_partial()  # the file's optimizer slots are not needed to score
        return self

    @classmethod
    def from_weights(cls, hparams, weights, loader="fast", verbose=0):
        """A model with the weights of a ``best_model`` folder (``save_model``).

        Args:
            hparams (HParams or dict): Hyper-parameters of the trained model.
            weights (str): Folder written by ``save_model``.
            loader (str): Batch reader (``fast`` or ``recommenders``).
            verbose (int): Keras progress output of a later ``fit``.

        Returns:
            CLSRSequentialModel: The model.

        Raises:
            FileNotFoundError: No weights in ``weights``.
            HParamsError: The weights do not fit the hyper-parameters.
        """
        if not os.path.isfile(os.path.join(weights, "weights.index")):
            raise FileNotFoundError(f"{weights}: no weights (expected a best_model folder "
                                    "written by CLSRSequentialModel.save_model)")
        model = cls(hparams, loader=loader, verbose=verbose)
        try:
            return model.load_model(weights)
        except (ValueError, tf.errors.OpError) as err:  # other shapes: other hyper-parameters
            raise HParamsError(f"{weights}: the weights do not fit the hyper-parameters "
                               f"(give the training run's --hparams and --set): {err}") from err


class SURGESequentialModel(CLSRSequentialModel):
    """``CLSRSequentialModel``'s fit/run_eval/score/predict for SURGE (no fusion weight alpha)."""

    model_class = SURGEModel
