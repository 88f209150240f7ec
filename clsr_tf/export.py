"""Export CLSR as a TensorFlow SavedModel with a serving signature, and load it back.

The signature ``serving_default`` takes the batch arrays the model reads (``SERVING_KEYS``:
users, items, cates [B]; item_history, item_cate_history, mask, time_from_first_action,
time_to_now [B, L]) and returns ``{"scores": [B], "alpha": [B]}``
(sigmoid(logit) and the fusion weight). The SavedModel holds the variables and the traced
inference graph only, so serving it needs neither clsr_tf nor the hyper-parameters.

The signature ``recommend`` takes raw requests (``clsr_tf.ranking.raw_signature``): ``user``
[B] string, ``item_history`` [B, H] string (oldest first, rows padded at the end with ""),
``time_history`` [B, H] float64, ``time`` [B] float64 (the request time), ``k`` int32 and
``exclude_history`` bool; it returns the top-K ``items`` (string ids), ``item_index``,
``scores`` and ``alpha`` [B, K] over the whole catalogue. The vocabulary lookups, the item
categories, padding, masking and the time features (with the hparams' ``time_unit``) are in
the graph (``clsr_tf.requests``), so a client needs neither clsr_tf nor the vocab pickles.

    python -m clsr_tf.export --hparams FILE --weights RUN/best_model --output DIR

Exit status: 0 on success, 2 on bad input (hyper-parameters, missing files), 1 otherwise.
"""

import argparse
import os
import sys

from clsr_tf.cli import add_hparams_arguments, hparams_from_args, make_main
from clsr_tf.files import atomic_dir

SIGNATURE = "serving_default"
RECOMMEND_SIGNATURE = "recommend"
# Batch arrays CLSRModel.forward reads (shared/DESIGN.md section 3), the signature's inputs.
SERVING_KEYS = ("users", "items", "cates", "item_history", "item_cate_history", "mask",
                "time_from_first_action", "time_to_now")


def serving_function(model, max_seq_length=None):
    """A ``tf.function`` batch -> {"scores": [B], "alpha": [B]} of a built Keras CLSR.

    Args:
        model (CLSRModel): The model (inference mode: batch-norm moving statistics).
        max_seq_length (int): History length L of the input signature (default: the
            model's ``max_seq_length``).

    Returns:
        tf.types.experimental.GenericFunction: Takes a dict of ``SERVING_KEYS`` arrays.
    """
    import tensorflow as tf

    from clsr_tf.data.contract import output_signature

    specs = output_signature(max_seq_length or model.hp["max_seq_length"])
    # Named specs: the signature's inputs are then named as the batch keys.
    signature = {key: tf.TensorSpec(specs[key].shape, specs[key].dtype, name=key)
                 for key in SERVING_KEYS}

    @tf.function(input_signature=[signature])
    def serve(batch):
        out = model.inference_forward(batch)
        return {"scores": out["pred"][:, 0], "alpha": out["alpha"][:, 0]}

    return serve


def export_saved_model(model, path, max_seq_length=None, recommender=None):
    """Write ``model`` as a SavedModel with the ``serving_default`` signature, atomically.

    Args:
        model (CLSRModel): A built model (``build_from_shape`` or trained).
        path (str): Destination folder (replaced as a whole; written to a temporary
            folder beside it first).
        max_seq_length (int): History length L (default: the model's ``max_seq_length``).
        recommender (clsr_tf.ranking.RawRecommender): Also write its ``recommend`` as the
            raw-input ``recommend`` signature (None: ``serving_default`` only).

    Returns:
        str: ``path``.
    """
    import tensorflow as tf

    serve = serving_function(model, max_seq_length)
    # Track the variables, not the Keras model: Keras would trace and save its own
    # functions (training ones included) next to the signature.
    module = tf.Module()
    module.model_variables = list(model.variables)
    module.serve = serve
    signatures = {SIGNATURE: serve.get_concrete_function()}
    if recommender is not None:
        module.recommender = recommender
        signatures[RECOMMEND_SIGNATURE] = recommender.recommend.get_concrete_function()
    path = os.path.abspath(path)
    with atomic_dir(path) as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
    return path


class ServingScorer:
    """``scorer(batch) -> {"scores": [B], "alpha": [B]}`` (numpy) over a serving function.

    Args:
        fn (callable): Takes the ``SERVING_KEYS`` tensors as keyword arguments and returns
            ``scores`` and ``alpha`` tensors.
        specs (dict): name -> tf.TensorSpec of ``fn``'s inputs.
        owner (object): Object that must outlive ``fn`` (a loaded SavedModel holds the
            variables of its signatures).

    Attributes:
        max_seq_length (int): History length L the inputs have.
    """

    def __init__(self, fn, specs, owner=None):
        self._fn, self._specs, self._owner = fn, specs, owner
        self.max_seq_length = int(specs["item_history"].shape[1])

    def __call__(self, batch):
        """Score a batch.

        Args:
            batch (dict): Arrays named as shared/DESIGN.md section 3; keys the model does not
                read (labels, time, ...) are ignored.

        Returns:
            dict: ``scores`` and ``alpha``, 1-D numpy arrays.
        """
        import tensorflow as tf

        args = {k: tf.convert_to_tensor(batch[k], spec.dtype) for k, spec in self._specs.items()}
        return {k: v.numpy() for k, v in self._fn(**args).items()}


def keras_scorer(model, max_seq_length=None):
    """A ``ServingScorer`` of a Keras CLSR (the function that ``export_saved_model`` saves).

    Args:
        model (CLSRModel): A built model.
        max_seq_length (int): History length L (default: the model's ``max_seq_length``).

    Returns:
        ServingScorer: The scorer.
    """
    serve = serving_function(model, max_seq_length)
    return ServingScorer(lambda **batch: serve(batch), serve.input_signature[0])


def load_scorer(path):
    """Load the ``serving_default`` signature of a SavedModel written by ``export_saved_model``.

    Args:
        path (str): The SavedModel folder.

    Returns:
        ServingScorer: ``scorer(batch) -> {"scores": [B], "alpha": [B]}`` (numpy).
    """
    import tensorflow as tf

    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: SavedModel folder not found")
    loaded = tf.saved_model.load(path)
    fn = loaded.signatures[SIGNATURE]
    return ServingScorer(fn, fn.structured_input_signature[1], owner=loaded)


def build_parser():
    """The command-line interface.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    p = argparse.ArgumentParser(
        prog="python -m clsr_tf.export",
        description="Export trained CLSR weights as a SavedModel whose serving_default "
                    "signature maps a batch to {scores, alpha} and whose recommend signature "
                    "maps raw requests (user, history ids and times, time) to the top-K items.")
    add_hparams_arguments(p, trained=True)
    p.add_argument("--weights", required=True,
                   help="best_model folder written by training (CLSRSequentialModel.save_model)")
    p.add_argument("--output", required=True, help="SavedModel folder to write (replaced)")
    p.add_argument("--no-recommend", action="store_true",
                   help="leave out the raw-input recommend signature (it needs the data "
                        "folder's vocabularies and files for the catalogue)")
    return p


def run(args):
    """Export the weights of ``args.weights`` to ``args.output``.

    Args:
        args (argparse.Namespace): Parsed command line.
    """
    from clsr_tf.sequential import CLSRSequentialModel

    model = CLSRSequentialModel.from_weights(hparams_from_args(args), args.weights)
    recommender = None if args.no_recommend else model.raw_recommender()
    print(f"wrote {export_saved_model(model.model, args.output, recommender=recommender)}")


main = make_main(build_parser, run)

if __name__ == "__main__":
    sys.exit(main())
