"""Raw recommendation requests -> batch arrays, in TensorFlow ops.

A request is a user id, the history's item ids and timestamps (oldest first) and the request
time. ``RawRequests`` maps them as the data readers map a Recommenders line (shared/DESIGN.md
section 3): vocabulary lookups (unknown ids -> 0), the item's category from the catalogue,
the last ``max_seq_length`` entries left-aligned and zero-padded, the mask, and the time
features ``log(max(gap / day, 0.5))`` with ``day = TIME_RANGE[time_unit]``, computed in
float64 from the whole history (``time_from_first_action`` reads the first entry even when it
is cut off) as ``clsr_tf.data.tsv.time_features`` does. Being TensorFlow ops with their
tables, it travels inside a SavedModel (``clsr_tf.export``'s ``recommend`` signature).
"""

import numpy as np
import tensorflow as tf


def _table(vocab):
    """A string -> int32 index table of a vocabulary pickle's ``str`` keys (unknown -> 0)."""
    keys = [key for key in vocab if isinstance(key, str)]
    values = np.array([vocab[key] for key in keys], np.int32)
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string),
                                            tf.constant(values, tf.int32)), default_value=0)


class RawRequests(tf.Module):
    """Batches of raw requests as the model reads them.

    Args:
        user_vocab (dict): User id -> index (the vocabulary pickle).
        item_vocab (dict): Item id -> index.
        item_cate (np.ndarray): Category index of every item index (0 where unknown).
        max_seq_length (int): History length L.
        day (float): Time units per "day" of the time features (``TIME_RANGE``).
    """

    def __init__(self, user_vocab, item_vocab, item_cate, max_seq_length, day, name=None):
        super().__init__(name=name)
        self.user_table = _table(user_vocab)
        self.item_table = _table(item_vocab)
        self.item_cate = tf.constant(np.asarray(item_cate, np.int32))
        self.max_seq_length = int(max_seq_length)
        self.day = float(day)

    def __call__(self, user, item_history, time_history, time):
        """Map a batch of requests.

        Args:
            user (tf.Tensor): string [B] user ids.
            item_history (tf.Tensor): string [B, H] item ids, oldest first; a row shorter
                than H is padded at its end with empty strings.
            time_history (tf.Tensor): float64 [B, H] timestamps of the history entries.
            time (tf.Tensor): float64 [B] request times (the "now" of ``time_to_now``).

        Returns:
            dict: The model's batch arrays (``users``, ``item_history``,
            ``item_cate_history``, ``mask``, ``time``, ``time_diff``,
            ``time_from_first_action``, ``time_to_now``) and ``history_items`` (int32
            [B, H], every history entry's index, 0 on padding: what ``exclude_history``
            removes).

        Raises:
            tf.errors.InvalidArgumentError: Empty history, padding before an entry, or
                histories and timestamps of different shapes.
        """
        width = self.max_seq_length
        time_history = tf.convert_to_tensor(time_history, tf.float64)
        now = tf.convert_to_tensor(time, tf.float64)
        present = tf.not_equal(item_history, "")
        length = tf.reduce_sum(tf.cast(present, tf.int32), 1)
        checks = [
            tf.debugging.assert_equal(tf.shape(item_history), tf.shape(time_history),
                                      message="item_history and time_history differ in shape"),
            tf.debugging.assert_equal(tf.shape(user)[0], tf.shape(item_history)[0],
                                      message="user and item_history differ in batch size"),
            tf.debugging.assert_equal(tf.shape(user), tf.shape(now),
                                      message="user and time differ in batch size"),
            tf.debugging.assert_positive(length, message="empty history: a request needs at "
                                                         "least one history item"),
            tf.debugging.assert_equal(
                present, tf.sequence_mask(length, tf.shape(item_history)[1]),
                message="item_history: empty strings pad the end of a row only"),
        ]
        with tf.control_dependencies(checks):  # everything below reads length: checked first
            length = tf.identity(length)
            ids = self.item_table.lookup(item_history) * tf.cast(present, tf.int32)
        kept = tf.minimum(length, width)
        position = tf.range(width)[None, :]
        valid = position < kept[:, None]
        # Absolute history index of each of the L positions (the last kept entries).
        source = tf.maximum(tf.minimum(length[:, None] - kept[:, None] + position,
                                       length[:, None] - 1), 0)
        last = source == length[:, None] - 1
        t = tf.gather(time_history, source, batch_dims=1)
        following = tf.where(last, now[:, None],
                             tf.gather(time_history, tf.minimum(source + 1, length[:, None] - 1),
                                       batch_dims=1))

        def feature(gap):
            value = tf.cast(tf.math.log(tf.maximum(gap / self.day, 0.5)), tf.float32)
            return tf.where(valid, value, 0.0)

        items = tf.where(valid, tf.gather(ids, source, batch_dims=1), 0)
        return {
            "users": self.user_table.lookup(user),
            "item_history": items,
            "item_cate_history": tf.gather(self.item_cate, items),
            "mask": tf.cast(valid, tf.float32),
            "time": tf.cast(now, tf.float32),
            "time_diff": feature(following - t),
            "time_from_first_action": feature(following - time_history[:, :1]),
            "time_to_now": feature(now[:, None] - t),
            "history_items": ids,
        }


def pad_requests(requests):
    """Numpy arrays of a list of raw requests, histories padded with empty strings.

    Args:
        requests (list): Dicts with ``user`` (str), ``item_history`` (item ids, oldest
            first), ``time_history`` (their timestamps: numbers or numeric strings) and
            ``time`` (the request time).

    Returns:
        dict: ``user`` [B], ``item_history`` [B, H] (object str), ``time_history`` [B, H]
        and ``time`` [B] (float64).

    Raises:
        ValueError: No requests, a missing key, an empty history, histories and timestamps
            of different lengths, or a timestamp that is not a number.
    """
    if not requests:
        raise ValueError("no requests")
    width = 0
    for i, request in enumerate(requests):
        missing = [k for k in ("user", "item_history", "time_history", "time") if k not in request]
        if missing:
            raise ValueError(f"request {i}: missing {missing}")
        n = len(request["item_history"])
        if n == 0:
            raise ValueError(f"request {i}: empty history (at least one item is needed)")
        if len(request["time_history"]) != n:
            raise ValueError(f"request {i}: {n} history items but "
                             f"{len(request['time_history'])} timestamps")
        width = max(width, n)
    items = np.full((len(requests), width), "", dtype=object)
    times = np.zeros((len(requests), width), np.float64)
    for i, request in enumerate(requests):
        n = len(request["item_history"])
        items[i, :n] = [str(item) for item in request["item_history"]]
        try:
            times[i, :n] = np.asarray(request["time_history"], np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"request {i}: time_history: {err}") from err
    try:
        now = np.asarray([r["time"] for r in requests], np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"time: {err}") from err
    return {"user": np.asarray([str(r["user"]) for r in requests], dtype=object),
            "item_history": items, "time_history": times, "time": now}
