"""Full-catalogue scoring: top-K recommendation and the full-ranking protocol.

The history side of a model (``SequentialModel.history_side``: for CLSR the embeddings, the
long-term attention, the recurrent networks and the fusion GRU) runs once per user; only the
target side (CLSR: the short-term attention whose query holds the item, the fusion MLP, the
tower) runs per (user, candidate) pair, over chunks of at most ``chunk_pairs`` pairs. For
SURGE the history side is its graph (nodes, adjacency, propagation) and its cluster logits;
from the query-aware fusion scores on, it runs per pair.

Full ranking (next to the paper's sampled protocol of ``clsr_tf.evaluation``): each positive
line of a file is ranked against every item of the catalogue, optionally leaving out the
items of its history (its own target excepted). Ties count against the positive (rank =
1 + candidates scoring at least as high), so a constant model ranks last, not first.
"""

import pickle
import time

import numpy as np
import tensorflow as tf

from clsr_tf.data.contract import HISTORY_SIDE_KEYS, TIME_RANGE, output_signature, vocab_paths

DEFAULT_KS = (5, 10, 20)
# (user, candidate) pairs per target-side call: bounded memory, large enough to be fast.
CHUNK_PAIRS = 8192
# Users whose [users, catalogue] logits are held at once.
USERS_PER_CALL = 64
NEG_INF = float("-inf")


class Catalogue:
    """The items to rank, with their categories and ids.

    Args:
        items (array-like): Item indices (distinct, nonzero).
        cates (array-like): Category index of each item.
        item_names (array-like): Id of every item index (index 0 included), or None.
        item_cate (array-like): Category of every item index, or None (from ``items``).
    """

    def __init__(self, items, cates, item_names=None, item_cate=None):
        self.items = np.asarray(items, np.int32)
        self.cates = np.asarray(cates, np.int32)
        if self.items.ndim != 1 or self.items.shape != self.cates.shape:
            raise ValueError("items and cates must be 1-D arrays of one length")
        if len(np.unique(self.items)) != len(self.items) or (self.items <= 0).any():
            raise ValueError("catalogue items must be distinct known (nonzero) indices")
        size = int(self.items.max(initial=0)) + 1
        if item_cate is None:
            item_cate = np.zeros(size, np.int32)
            item_cate[self.items] = self.cates
        self.item_cate = np.asarray(item_cate, np.int32)
        self.item_names = None if item_names is None else np.asarray(item_names, dtype=object)
        self._position = np.full(max(size, len(self.item_cate)), -1, np.int64)
        self._position[self.items] = np.arange(len(self.items))
        self.user_vocab = self.item_vocab = self.cate_names = None

    def __len__(self):
        return len(self.items)

    @property
    def ids(self):
        """Item ids of the catalogue's items (None without names)."""
        return None if self.item_names is None else self.item_names[self.items]

    @classmethod
    def from_data(cls, hp, files=("train_file", "valid_file", "test_file")):
        """Every item of the item vocabulary, each with the category the data files give it.

        The prepared data sets give each item one category; an item that no line of
        ``files`` names (as target or in a history) keeps category 0 (unknown).

        Args:
            hp (dict): Validated hyper-parameters (``data_dir``, vocabularies, files).
            files (tuple): Keys of the data files to read the categories from.

        Returns:
            Catalogue: Items 1 .. n_items - 1, with ``user_vocab`` and ``item_vocab``.
        """
        import os

        from clsr_tf.data.loader import FastBatches

        vocabs = {}
        for key, path in vocab_paths(hp).items():
            with open(path, "rb") as f:
                vocabs[key] = pickle.load(f)
        n_items = max(vocabs["item_vocab"].values()) + 1
        names = np.full(n_items, "", dtype=object)
        for name, index in vocabs["item_vocab"].items():
            names[index] = name
        names[0] = ""  # index 0 (unknown, padding) is never recommended: "" marks no item
        item_cate = np.zeros(n_items, np.int32)
        parser = FastBatches(dict(hp, min_seq_length=1)).parser
        for key in files:
            path = os.path.join(hp["data_dir"], hp[key])
            if not os.path.exists(path):
                continue
            for chunk in parser.parse_file(path, 1 << 22):
                item_cate[chunk["item_history"]] = chunk["item_cate_history"]
                item_cate[chunk["items"]] = chunk["cates"]
        item_cate[0] = 0
        items = np.arange(1, n_items, dtype=np.int32)
        catalogue = cls(items, item_cate[items], names, item_cate)
        catalogue.user_vocab, catalogue.item_vocab = vocabs["user_vocab"], vocabs["item_vocab"]
        cate_names = np.full(max(vocabs["cate_vocab"].values()) + 1, "", dtype=object)
        for name, index in vocabs["cate_vocab"].items():
            cate_names[index] = name
        catalogue.cate_names = cate_names
        return catalogue

    def positions(self, items):
        """Position in the catalogue of each item index (-1 where absent).

        Args:
            items (array-like): Item indices.

        Returns:
            np.ndarray: int64 positions.
        """
        items = np.asarray(items, np.int64)
        inside = (items >= 0) & (items < len(self._position))
        return np.where(inside, self._position[np.where(inside, items, 0)], -1)

    def subset(self, candidates):
        """The catalogue restricted to ``candidates``, in the order given.

        Args:
            candidates (array-like): Item ids (str) or item indices (int).

        Returns:
            Catalogue: The subset (same names and categories).

        Raises:
            ValueError: An empty set, repeated candidates, or a candidate outside the
                catalogue.
        """
        candidates = list(candidates)
        if not candidates:
            raise ValueError("empty candidate set")
        if isinstance(candidates[0], str):
            if self.item_vocab is None:
                raise ValueError("candidates by id need a catalogue with the item vocabulary")
            index = np.array([self.item_vocab.get(c, 0) for c in candidates], np.int64)
        else:
            index = np.asarray(candidates, np.int64)
        where = self.positions(index)
        if (where < 0).any():
            raise ValueError(f"candidate {candidates[int(np.argmax(where < 0))]!r} is not in "
                             "the catalogue")
        subset = Catalogue(self.items[where], self.cates[where], self.item_names, self.item_cate)
        subset.user_vocab, subset.item_vocab = self.user_vocab, self.item_vocab
        subset.cate_names = self.cate_names
        return subset


def catalogue_logits(model, batch, items, cates, exclude=None, chunk_pairs=CHUNK_PAIRS):
    """Logits of every (user, candidate) pair, the history side run once per user.

    TensorFlow code, for a ``tf.function`` (``CatalogueRanker``, the ``recommend`` signature).

    Args:
        model (SequentialModel): The model (``history_side``/``target_side``).
        batch (dict): ``HISTORY_SIDE_KEYS`` arrays of U users' histories.
        items (tf.Tensor): int32 [N] candidate item indices.
        cates (tf.Tensor): int32 [N] their categories.
        exclude (tf.Tensor): int32 [U, H] item indices whose logits become -inf per user
            (0 pads), or None.
        chunk_pairs (int): Pairs per target-side call.

    Returns:
        tuple: ``(logits [U, N] float32, alpha [U, N] float32 or None)``.
    """
    history = model.history_side({key: batch[key] for key in HISTORY_SIDE_KEYS})
    # The model's code has no tensor-dependent Python control flow: AutoGraph stays off it.
    target_side = tf.autograph.experimental.do_not_convert(model.target_side)
    n_users = tf.shape(batch["mask"])[0]
    n_items = tf.shape(items)[0]
    chunk = tf.maximum(1, chunk_pairs // tf.maximum(n_users, 1))
    steps = (n_items + chunk - 1) // chunk
    with_alpha = "alpha" in model.prediction_outputs
    logits = tf.TensorArray(tf.float32, size=steps, infer_shape=False)
    alphas = tf.TensorArray(tf.float32, size=steps, infer_shape=False)
    for step in tf.range(steps):
        chunk_items = items[step * chunk:(step + 1) * chunk]
        chunk_cates = cates[step * chunk:(step + 1) * chunk]
        size = tf.shape(chunk_items)[0]
        rows = tf.repeat(tf.range(n_users), size)
        out = target_side({key: tf.gather(value, rows) for key, value in history.items()},
                          {"items": tf.tile(chunk_items, [n_users]),
                           "cates": tf.tile(chunk_cates, [n_users])})
        logit = tf.reshape(tf.cast(out["logit"], tf.float32), [n_users, size])
        if exclude is not None:
            hit = tf.reduce_any(tf.equal(chunk_items[None, :, None], exclude[:, None, :]), -1)
            logit = tf.where(hit, tf.constant(NEG_INF), logit)
        logits = logits.write(step, tf.transpose(logit))
        if with_alpha:
            alpha = tf.reshape(tf.cast(out["alpha"], tf.float32), [n_users, size])
            alphas = alphas.write(step, tf.transpose(alpha))
        else:
            alphas = alphas.write(step, tf.zeros([0, n_users]))
    logits = tf.transpose(logits.concat())
    return logits, (tf.transpose(alphas.concat()) if with_alpha else None)


def top_k(logits, alpha, items, k):
    """The K best candidates per user.

    Args:
        logits (tf.Tensor): [U, N] (-inf: excluded).
        alpha (tf.Tensor): [U, N] fusion weights, or None.
        items (tf.Tensor): int32 [N] candidate item indices.
        k (int or tf.Tensor): K (at most N).

    Returns:
        dict: ``item_index`` [U, K] (0 past the candidates left after exclusion), ``scores``
        [U, K] sigmoid(logit) (0 there), ``alpha`` [U, K] when given; best first, ties in
        candidate order.
    """
    values, columns = tf.math.top_k(logits, k)
    valid = values > NEG_INF
    out = {"item_index": tf.where(valid, tf.gather(items, columns), 0),
           "scores": tf.where(valid, tf.sigmoid(values), 0.0)}
    if alpha is not None:
        out["alpha"] = tf.where(valid, tf.gather(alpha, columns, batch_dims=1), 0.0)
    return out


def check_k(k, n_candidates):
    """Fail unless 1 <= K <= the number of candidates.

    Args:
        k (int): K.
        n_candidates (int): Candidates.

    Raises:
        ValueError: Otherwise.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer, got {k!r}")
    if not 1 <= k <= n_candidates:
        raise ValueError(f"k={k}: must be between 1 and the {n_candidates} candidates")


def history_exclusion(batch, targets=None):
    """The history items of each row (0 on padding), optionally keeping each row's target.

    Args:
        batch (dict): ``item_history`` and ``mask`` [U, L].
        targets (np.ndarray): Item index per row that must stay rankable, or None.

    Returns:
        np.ndarray: int32 [U, L].
    """
    exclude = np.where(np.asarray(batch["mask"]) > 0, np.asarray(batch["item_history"]), 0)
    if targets is not None:
        exclude = np.where(exclude == np.asarray(targets)[:, None], 0, exclude)
    return exclude.astype(np.int32)


class CatalogueRanker:
    """Compiled ``catalogue_logits`` and ``top_k`` of one model over batch arrays.

    Args:
        model (SequentialModel): A built model.
        chunk_pairs (int): Pairs per target-side call.
    """

    def __init__(self, model, chunk_pairs=CHUNK_PAIRS):
        self.model = model
        self.chunk_pairs = int(chunk_pairs)
        specs = output_signature(model.hp["max_seq_length"])
        history = {key: specs[key] for key in HISTORY_SIDE_KEYS}
        vector = tf.TensorSpec([None], tf.int32)
        matrix = tf.TensorSpec([None, None], tf.int32)
        self._logits = tf.function(self._logits_fn,
                                   input_signature=[history, vector, vector, matrix])
        self._top_k = tf.function(self._top_k_fn, input_signature=[
            history, vector, vector, matrix, tf.TensorSpec([], tf.int32)])

    def _logits_fn(self, batch, items, cates, exclude):
        return catalogue_logits(self.model, batch, items, cates, exclude, self.chunk_pairs)

    def _top_k_fn(self, batch, items, cates, exclude, k):
        logits, alpha = catalogue_logits(self.model, batch, items, cates, exclude,
                                         self.chunk_pairs)
        return top_k(logits, alpha, items, k)

    @staticmethod
    def _inputs(batch, catalogue, exclude):
        batch = {key: np.asarray(batch[key]) for key in HISTORY_SIDE_KEYS}
        if exclude is None:
            exclude = np.zeros((len(batch["users"]), 0), np.int32)
        return batch, catalogue.items, catalogue.cates, np.asarray(exclude, np.int32)

    def logits(self, batch, catalogue, exclude=None):
        """Logits of every (row, catalogue item) pair.

        Args:
            batch (dict): ``HISTORY_SIDE_KEYS`` arrays, one row per user.
            catalogue (Catalogue): The candidates.
            exclude (np.ndarray): int32 [U, H] items to leave out per row (0 pads), or None.

        Returns:
            tuple: ``(logits [U, N], alpha [U, N] or None)``, numpy.
        """
        logits, alpha = self._logits(*self._inputs(batch, catalogue, exclude))
        return logits.numpy(), None if alpha is None else alpha.numpy()

    def top_k(self, batch, catalogue, k, exclude=None):
        """The K best catalogue items per row.

        Args:
            batch (dict): ``HISTORY_SIDE_KEYS`` arrays, one row per user.
            catalogue (Catalogue): The candidates.
            k (int): K (at most ``len(catalogue)``).
            exclude (np.ndarray): int32 [U, H] items to leave out per row, or None.

        Returns:
            dict: numpy ``item_index``, ``scores`` and (CLSR) ``alpha`` [U, K].
        """
        check_k(k, len(catalogue))
        out = self._top_k(*self._inputs(batch, catalogue, exclude), np.int32(k))
        return {key: value.numpy() for key, value in out.items()}


def request_runs(batches):
    """One row per run of consecutive rows with the same user, history and time.

    A valid/test file's positive and its negatives form one run: one request.

    Args:
        batches (iterable): Batch dicts (numpy).

    Yields:
        dict: The first row of each run, every key of the batch.
    """
    keys = HISTORY_SIDE_KEYS + ("time",)
    previous = None
    for batch in batches:
        batch = {key: np.asarray(value) for key, value in batch.items()}
        n = len(batch["users"])
        flat = np.concatenate([batch[key].reshape(n, -1).astype(np.float64) for key in keys], 1)
        new = np.ones(n, bool)
        new[1:] = (flat[1:] != flat[:-1]).any(1)
        if previous is not None:
            new[0] = bool((flat[0] != previous).any())
        previous = flat[-1]
        if new.any():
            yield {key: value[new] for key, value in batch.items()}


def regroup(rows, size):
    """Regroup row blocks into blocks of ``size`` rows (the last may be smaller).

    Args:
        rows (iterable): Dicts of arrays with equal first dimensions.
        size (int): Rows per block.

    Yields:
        dict: Blocks.
    """
    held, count = [], 0
    for block in rows:
        held.append(block)
        count += len(block["users"])
        while count >= size:
            joined = {key: np.concatenate([b[key] for b in held]) for key in held[0]}
            yield {key: value[:size] for key, value in joined.items()}
            rest = {key: value[size:] for key, value in joined.items()}
            count -= size
            held = [rest] if count else []
    if count:
        yield {key: np.concatenate([b[key] for b in held]) for key in held[0]}


def positive_ranks(logits, target_columns):
    """Rank of each row's target among its row's finite logits (ties count against it).

    Args:
        logits (np.ndarray): [U, N] (-inf: excluded).
        target_columns (np.ndarray): Column of each row's target.

    Returns:
        np.ndarray: int64 ranks, 1 = best.
    """
    rows = np.arange(len(logits))
    target = logits[rows, target_columns]
    at_least = (logits >= target[:, None]).sum(1)
    return at_least.astype(np.int64)


def full_ranking_metrics(ranks, n_candidates, ks=DEFAULT_KS):
    """Recall@K, NDCG@K and MRR of one positive per row.

    Args:
        ranks (array-like): Rank of each positive (1 = best).
        n_candidates (int): Catalogue size.
        ks (tuple): Cut-offs.

    Returns:
        dict: ``recall@K``, ``ndcg@K`` for each K, ``mrr``, ``positives``, ``candidates``.
    """
    ranks = np.asarray(ranks, np.float64)
    if not len(ranks):
        raise ValueError("no positives to rank")
    out = {}
    for k in ks:
        hit = ranks <= k
        out[f"recall@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0).mean())
    out["mrr"] = float((1.0 / ranks).mean())
    out["positives"] = int(len(ranks))
    out["candidates"] = int(n_candidates)
    return out


class PositivesProgress:
    """Prints ``full ranking: N of M positives (S s)`` each time another tenth of M is done.

    Args:
        filename (str): The ranked file; M counts its label-1 lines.
    """

    def __init__(self, filename):
        with open(filename) as f:
            self.total = sum(line.startswith("1\t") for line in f)
        self.start, self.tenths = time.time(), 0

    def __call__(self, done):
        """Report ``done`` positives (ranked or skipped) if another tenth is complete."""
        if self.total and done * 10 // self.total > self.tenths:
            self.tenths = done * 10 // self.total
            print(f"full ranking: {done} of {self.total} positives "
                  f"({time.time() - self.start:.0f} s)", flush=True)


def evaluate_full(ranker, batches, catalogue, exclude_history=True, ks=DEFAULT_KS,
                  users_per_call=USERS_PER_CALL, progress=None):
    """The full-ranking protocol over the positive lines of a file's batches.

    Args:
        ranker (CatalogueRanker): The model's ranker.
        batches (iterable): Batch dicts of a valid/test file (labels 1 mark positives).
        catalogue (Catalogue): The candidates (the whole item vocabulary by default).
        exclude_history (bool): Leave out the history items (each positive's own item stays).
        ks (tuple): Cut-offs.
        users_per_call (int): Positives ranked together.
        progress (callable): Called with the positives done (ranked or skipped) after each
            call, e.g. a ``PositivesProgress``; None: silent.

    Returns:
        dict: ``full_ranking_metrics`` plus ``skipped`` (positives whose item is not in the
        catalogue, e.g. unknown to the vocabulary).
    """
    ranks, skipped, done = [], 0, 0

    def positives():
        for batch in batches:
            keep = np.asarray(batch["labels"]).reshape(-1) > 0
            if keep.any():
                yield {key: np.asarray(value)[keep] for key, value in batch.items()}

    for block in regroup(positives(), users_per_call):
        columns = catalogue.positions(block["items"])
        inside = columns >= 0
        skipped += int((~inside).sum())
        done += len(columns)
        if inside.any():
            block = {key: value[inside] for key, value in block.items()}
            exclude = history_exclusion(block, block["items"]) if exclude_history else None
            logits, _ = ranker.logits(block, catalogue, exclude)
            ranks.append(positive_ranks(logits, columns[inside]))
        if progress:
            progress(done)
    out = full_ranking_metrics(np.concatenate(ranks) if ranks else [], len(catalogue), ks)
    out["skipped"] = skipped
    return out


def negative_candidates(names, fields, exclude_history=True, max_seq_length=None):
    """The catalogue items a positive line is ranked against, as ``evaluate_full`` ranks it.

    Args:
        names (np.ndarray): Item id of each catalogue item (``Catalogue.ids``).
        fields (list): The positive line's tab-separated fields (item id at 2, history at 5).
        exclude_history (bool): Leave out the history's items.
        max_seq_length (int): Leave out only the last ``max_seq_length`` history entries (the
            ones the model reads); None: the whole history.

    Returns:
        np.ndarray: bool mask over ``names``: every item but the line's own and, with
        ``exclude_history``, its history's.
    """
    keep = names != fields[2]
    if exclude_history:
        history = fields[5].split(",")
        keep &= ~np.isin(names, history[-max_seq_length:] if max_seq_length else history)
    return keep


def candidate_groups(infile, catalogue, exclude_history=True, max_seq_length=None):
    """The full-ranking protocol as explicit lines, one group per positive of a file.

    A group is the positive line itself (label 1) followed by one line (label 0) per other
    catalogue item, same user, time and history; with ``exclude_history`` the items of the
    line's history are left out. Scoring the groups and ``ranks_of_lines`` give the ranks
    ``evaluate_full`` computes.

    Args:
        infile (str): A Recommenders sequential file (its label-1 lines are used).
        catalogue (Catalogue): Candidates, with ``item_names`` and ``cate_names``.
        exclude_history (bool): Leave out history items.
        max_seq_length (int): Exclude only the last ``max_seq_length`` history entries (the
            ones the model reads, as ``evaluate_full`` does); None: the whole history.

    Yields:
        str: The lines of one group, newline-terminated.
    """
    if catalogue.item_names is None or catalogue.cate_names is None:
        raise ValueError("candidate lines need a catalogue with item and category names")
    names = catalogue.ids
    cate_names = catalogue.cate_names[catalogue.cates]
    with open(infile) as src:
        for line in src:
            fields = line.rstrip("\n").split("\t")
            if fields[0] != "1":
                continue
            keep = negative_candidates(names, fields, exclude_history, max_seq_length)
            tail = "\t".join(fields[4:])
            yield (line if line.endswith("\n") else line + "\n") + "".join(
                f"0\t{fields[1]}\t{item}\t{cate}\t{tail}\n"
                for item, cate in zip(names[keep], cate_names[keep]))


def write_candidate_lines(infile, outfile, catalogue, exclude_history=True, max_seq_length=None,
                          limit=None):
    """Write ``candidate_groups`` to a file, for models scored line by line.

    Args:
        infile (str): A Recommenders sequential file.
        outfile (str): Output file (written atomically).
        catalogue (Catalogue): Candidates, with ``item_names`` and ``cate_names``.
        exclude_history (bool): Leave out history items.
        max_seq_length (int): See ``candidate_groups``.
        limit (int): Most positives written (None: all).

    Returns:
        int: Positives written (groups).
    """
    from clsr_tf.files import atomic_file

    groups = 0
    with atomic_file(outfile) as dst:
        for group in candidate_groups(infile, catalogue, exclude_history, max_seq_length):
            if limit is not None and groups >= limit:
                break
            dst.write(group)
            groups += 1
    return groups


def ranks_of_lines(labels, scores):
    """Ranks of the positives of line scores grouped as ``write_candidate_lines`` writes them.

    Args:
        labels (array-like): 1 on the first line of each group, else 0.
        scores (array-like): Score of each line.

    Returns:
        np.ndarray: Rank of each group's positive (ties count against it).
    """
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, np.float64).ravel()
    starts = np.flatnonzero(labels > 0)
    group = np.cumsum(labels > 0) - 1
    target = scores[starts][group]
    return np.bincount(group, weights=scores >= target).astype(np.int64)


def raw_recommend(model, requests, items, cates, names, batch, k, exclude_history,
                  chunk_pairs=CHUNK_PAIRS):
    """Top-K item ids of raw requests: ``RawRequests``, ``catalogue_logits``, ``top_k``.

    TensorFlow code shared by ``CLSRSequentialModel.recommend`` and the SavedModel's
    ``recommend`` signature, so both give the same top-K.

    Args:
        model (SequentialModel): The model.
        requests (RawRequests): The raw input mapping.
        items (tf.Tensor): int32 [N] candidate indices.
        cates (tf.Tensor): int32 [N] their categories.
        names (tf.Tensor): string [n_items] id of every item index.
        batch (dict): ``user``, ``item_history``, ``time_history``, ``time`` tensors.
        k (tf.Tensor): int32 K.
        exclude_history (tf.Tensor): bool, leave out the request's history items.
        chunk_pairs (int): Pairs per target-side call.

    Returns:
        dict: ``items`` (string ids, "" past the candidates left), ``item_index``,
        ``scores`` and (CLSR) ``alpha``, all [B, K].
    """
    check = tf.debugging.assert_less_equal(
        k, tf.shape(items)[0], message="k is larger than the number of candidates")
    check_low = tf.debugging.assert_positive(k, message="k must be at least 1")
    features = requests(batch["user"], batch["item_history"], batch["time_history"],
                        batch["time"])
    exclude = features.pop("history_items")
    exclude = tf.where(exclude_history, exclude, tf.zeros_like(exclude))
    with tf.control_dependencies([check, check_low]):
        k = tf.identity(k)
    logits, alpha = catalogue_logits(model, features, items, cates, exclude, chunk_pairs)
    out = top_k(logits, alpha, items, k)
    out["items"] = tf.gather(names, out["item_index"])
    return out


def raw_signature():
    """The input signature of ``raw_recommend`` (the ``recommend`` SavedModel signature).

    Returns:
        dict: name -> tf.TensorSpec (named as the signature's inputs).
    """
    return {"user": tf.TensorSpec([None], tf.string, name="user"),
            "item_history": tf.TensorSpec([None, None], tf.string, name="item_history"),
            "time_history": tf.TensorSpec([None, None], tf.float64, name="time_history"),
            "time": tf.TensorSpec([None], tf.float64, name="time"),
            "k": tf.TensorSpec([], tf.int32, name="k"),
            "exclude_history": tf.TensorSpec([], tf.bool, name="exclude_history")}


def raw_requests_of(hp, catalogue):
    """The ``RawRequests`` of a model's hyper-parameters and catalogue.

    Args:
        hp (dict): Validated hyper-parameters (``max_seq_length``, ``time_unit``).
        catalogue (Catalogue): From ``Catalogue.from_data`` (vocabularies, categories).

    Returns:
        RawRequests: The mapping.
    """
    from clsr_tf.requests import RawRequests

    if catalogue.user_vocab is None or catalogue.item_vocab is None:
        raise ValueError("raw requests need a catalogue with the vocabularies "
                         "(Catalogue.from_data)")
    return RawRequests(catalogue.user_vocab, catalogue.item_vocab, catalogue.item_cate,
                       hp["max_seq_length"], TIME_RANGE[hp["time_unit"]])


class RawRecommender(tf.Module):
    """``raw_recommend`` of one model, catalogue and request mapping, as ``tf.function``s.

    It tracks the model's variables and the request tables, not the Keras model, so a
    SavedModel of it holds this inference graph only.

    Args:
        model (SequentialModel): A built model.
        requests (RawRequests): The raw input mapping.
        catalogue (Catalogue): The candidates (with ``item_names``).
        chunk_pairs (int): Pairs per target-side call.

    Attributes:
        recommend (tf.function): ``(user, item_history, time_history, time, k,
            exclude_history) -> dict`` over the whole catalogue (``raw_signature``).
        recommend_among (tf.function): ``(requests dict, items, cates, k,
            exclude_history) -> dict`` over given candidates.
    """

    def __init__(self, model, requests, catalogue, chunk_pairs=CHUNK_PAIRS):
        super().__init__(name="raw_recommender")
        self.model_variables = list(model.variables)
        self.requests = requests
        items = tf.constant(catalogue.items)
        cates = tf.constant(catalogue.cates)
        names = tf.constant(catalogue.item_names.astype(str).tolist(), tf.string)
        chunk_pairs = int(chunk_pairs)
        specs = raw_signature()
        request_keys = ("user", "item_history", "time_history", "time")

        # Closures over the model: an attribute would make the SavedModel track it.
        def recommend(user, item_history, time_history, time, k, exclude_history):
            batch = {"user": user, "item_history": item_history,
                     "time_history": time_history, "time": time}
            return raw_recommend(model, requests, items, cates, names, batch, k,
                                 exclude_history, chunk_pairs)

        def recommend_among(batch, candidate_items, candidate_cates, k, exclude_history):
            return raw_recommend(model, requests, candidate_items, candidate_cates, names,
                                 batch, k, exclude_history, chunk_pairs)

        self.recommend = tf.function(recommend, input_signature=[
            specs[key] for key in request_keys + ("k", "exclude_history")])
        self.recommend_among = tf.function(recommend_among, input_signature=[
            {key: specs[key] for key in request_keys}, tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.int32), specs["k"], specs["exclude_history"]])
