"""``python -m clsr_tf.recommend``: the top-K items of the whole catalogue for user histories.

    python -m clsr_tf.recommend --hparams FILE (--weights DIR | --saved-model DIR)
                                (--requests FILE.jsonl | --input FILE) --output FILE.jsonl
                                [--k 10] [--candidates FILE] [--keep-history] [--model surge]

``--requests``: one JSON object a line, ``{"user": ..., "item_history": [...],
"time_history": [...], "time": ...}`` (raw ids and timestamps, oldest first). ``--input``: a
Recommenders sequential file, one request per run of lines with the same user, history and
time. Writes one JSON object per request, ``{"user", "items", "scores"[, "alpha"]}``, best
first, through a temporary file renamed at the end. ``--saved-model`` serves ``--requests``
through the SavedModel's ``recommend`` signature (whole catalogue, no clsr_tf model code).

Exit status: 0 on success, 2 on bad input (hyper-parameters, missing files, a bad request),
1 otherwise.
"""

import argparse
import json
import os
import sys

from clsr_tf.cli import add_hparams_arguments, hparams_from_args, make_main
from clsr_tf.files import atomic_file


def build_parser():
    """The command-line interface.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    p = argparse.ArgumentParser(
        prog="python -m clsr_tf.recommend",
        description="Recommend the top-K items of the catalogue for each user history, with "
                    "trained weights or an exported SavedModel.")
    add_hparams_arguments(p, trained=True)
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--weights", help="best_model folder written by training")
    model.add_argument("--saved-model", help="SavedModel folder written by clsr_tf.export "
                                             "(its recommend signature; --requests only)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--requests", help="JSON lines of raw requests (user, item_history, "
                                           "time_history, time)")
    source.add_argument("--input", help="a Recommenders sequential file")
    p.add_argument("--output", required=True, help="JSON lines to write, one per request")
    p.add_argument("--k", type=int, default=10, help="items per request (default: 10)")
    p.add_argument("--candidates", help="file of item ids, one a line, to rank instead of the "
                                        "whole catalogue (--weights only)")
    p.add_argument("--keep-history", action="store_true",
                   help="allow items of the history in the results (default: left out)")
    p.add_argument("--model", choices=("clsr", "surge"), default="clsr",
                   help="the model the weights belong to (default: clsr)")
    return p


class RequestError(ValueError):
    """A malformed request line or a bad option value (exit status 2)."""


def read_requests(path):
    """The requests of a JSON-lines file.

    Args:
        path (str): The file.

    Returns:
        list: Request dicts.

    Raises:
        FileNotFoundError: No such file.
        RequestError: A line that is not a JSON object.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: requests file not found")
    requests = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except json.JSONDecodeError as err:
                raise RequestError(f"{path}:{number}: not JSON ({err})") from err
            if not isinstance(request, dict):
                raise RequestError(f"{path}:{number}: not a JSON object")
            requests.append(request)
    if not requests:
        raise RequestError(f"{path}: no requests")
    return requests


def saved_model_recommend(path, requests, k, exclude_history):
    """Top-K through a SavedModel's ``recommend`` signature.

    Args:
        path (str): SavedModel folder.
        requests (list): Raw request dicts.
        k (int): K.
        exclude_history (bool): Leave out history items.

    Returns:
        dict: ``users``, ``items``, ``scores`` and ``alpha`` (numpy).
    """
    import numpy as np
    import tensorflow as tf

    from clsr_tf.requests import pad_requests

    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: SavedModel folder not found")
    loaded = tf.saved_model.load(path)
    if "recommend" not in loaded.signatures:
        raise RequestError(f"{path}: no recommend signature (exported with --no-recommend?)")
    fn = loaded.signatures["recommend"]
    padded = pad_requests(requests)
    try:
        out = fn(user=tf.constant(padded["user"].tolist()),
                 item_history=tf.constant(padded["item_history"].tolist()),
                 time_history=tf.constant(padded["time_history"]),
                 time=tf.constant(padded["time"]), k=tf.constant(k, tf.int32),
                 exclude_history=tf.constant(exclude_history))
    except tf.errors.InvalidArgumentError as err:
        raise RequestError(err.message.splitlines()[0]) from err
    out = {key: value.numpy() for key, value in out.items()}
    out["items"] = out["items"].astype(str).astype(object)
    out["users"] = np.asarray(padded["user"])
    return out


def write_results(out, path):
    """Write one JSON object per request, atomically.

    Args:
        out (dict): ``recommend`` results.
        path (str): Output file.

    Returns:
        int: Requests written.
    """
    with atomic_file(path) as f:
        for i, user in enumerate(out["users"]):
            row = {"user": user.item() if hasattr(user, "item") else user,
                   "items": [str(item) for item in out["items"][i]],
                   "scores": [round(float(s), 8) for s in out["scores"][i]]}
            if "alpha" in out:
                row["alpha"] = [round(float(a), 8) for a in out["alpha"][i]]
            f.write(json.dumps(row) + "\n")
    return len(out["users"])


def run(args):
    """Recommend for ``args.requests`` or ``args.input`` into ``args.output``.

    Args:
        args (argparse.Namespace): Parsed command line.
    """
    if args.k < 1:
        raise RequestError(f"--k {args.k}: must be at least 1")
    requests = read_requests(args.requests) if args.requests else None
    if args.input and not os.path.isfile(args.input):
        raise FileNotFoundError(f"{args.input}: input file not found")
    exclude = not args.keep_history
    if args.saved_model:
        if requests is None or args.candidates:
            raise RequestError("--saved-model serves --requests over the whole catalogue "
                               "(no --input, no --candidates)")
        out = saved_model_recommend(args.saved_model, requests, args.k, exclude)
    else:
        from clsr_tf.sequential import CLSRSequentialModel, SURGESequentialModel

        cls = SURGESequentialModel if args.model == "surge" else CLSRSequentialModel
        model = cls.from_weights(hparams_from_args(args, min_seq_length=1), args.weights)
        candidates = None
        if args.candidates:
            if not os.path.isfile(args.candidates):
                raise FileNotFoundError(f"{args.candidates}: candidates file not found")
            with open(args.candidates) as f:
                candidates = [line.strip() for line in f if line.strip()]
        out = model.recommend(requests=requests, filename=args.input, k=args.k,
                              candidates=candidates, exclude_history=exclude)
    print(f"wrote {write_results(out, args.output)} recommendations to {args.output}")


main = make_main(build_parser, run, bad_input=(RequestError, ValueError))

if __name__ == "__main__":
    sys.exit(main())
