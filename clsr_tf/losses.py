"""Losses of CLSR: the contrastive tasks (Eqn 19-25) and the group softmax loss (Eqn 30)."""

import tensorflow as tf

TERMS = ("long_mean_recent", "short_recent_mean", "mean_long_short", "recent_short_long")


class ContrastiveLoss:
    """Self-supervision between interest representations and their proxies.

    With f(a, pos, neg) the loss of an anchor that should be closer to ``pos`` than to
    ``neg``, the four terms are f(u_l, p_l, p_s), f(u_s, p_s, p_l), f(p_l, u_l, u_s) and
    f(p_s, u_s, u_l). ``bpr``: f = softplus(<a, neg> - <a, pos>). ``triplet``: f = sum_d
    max(0, (a - pos)_d^2 - (a - neg)_d^2 + margin), per dimension as in the original.
    Only rows whose history length exceeds ``length_threshold`` count; each term is the
    mean over those rows (0 when there are none, where the original divides by zero).

    Args:
        kind (str): ``bpr`` or ``triplet``.
        margin (float): Triplet margin.
        length_threshold (int): l_t; rows with length <= l_t are left out.
    """

    def __init__(self, kind="triplet", margin=1.0, length_threshold=5):
        if kind not in ("bpr", "triplet"):
            raise ValueError(f"contrastive_loss must be 'bpr' or 'triplet', got {kind!r}")
        self.kind = kind
        self.margin = margin
        self.length_threshold = length_threshold

    def _f(self, anchor, pos, neg):
        if self.kind == "bpr":
            return tf.math.softplus(tf.reduce_sum(anchor * (neg - pos), -1))
        gap = tf.square(anchor - pos) - tf.square(anchor - neg) + self.margin
        return tf.reduce_sum(tf.maximum(0.0, gap), -1)

    def terms(self, u_long, u_short, p_long, p_short, lengths):
        """The four terms, each averaged over the rows longer than the threshold.

        Args:
            u_long, u_short (tf.Tensor): Interest representations [B, D].
            p_long, p_short (tf.Tensor): Proxies [B, D].
            lengths (tf.Tensor): History lengths [B].

        Returns:
            dict: Term name -> scalar.
        """
        keep = tf.cast(tf.cast(lengths, tf.float32) > self.length_threshold, u_long.dtype)
        count = tf.reduce_sum(keep)
        rows = {
            "long_mean_recent": self._f(u_long, p_long, p_short),
            "short_recent_mean": self._f(u_short, p_short, p_long),
            "mean_long_short": self._f(p_long, u_long, u_short),
            "recent_short_long": self._f(p_short, u_short, u_long),
        }
        return {k: tf.math.divide_no_nan(tf.reduce_sum(keep * v), count) for k, v in rows.items()}

    def __call__(self, u_long, u_short, p_long, p_short, lengths):
        """Sum of the four terms (unweighted).

        Returns:
            tf.Tensor: Scalar loss.
        """
        return tf.add_n(list(self.terms(u_long, u_short, p_long, p_short, lengths).values()))


def group_softmax_loss(logits, labels, num_ngs):
    """Mean over groups of -log softmax(group logits)[positive] (Recommenders' ``softmax``).

    Args:
        logits (tf.Tensor): [B, 1] or [B]; rows come in groups of 1 + ``num_ngs``.
        labels (tf.Tensor): Same shape; exactly one 1 per group.
        num_ngs (int): Negatives per positive.

    Returns:
        tf.Tensor: Scalar loss.
    """
    logits = tf.reshape(logits, [-1, num_ngs + 1])
    labels = tf.reshape(tf.cast(labels, logits.dtype), [-1, num_ngs + 1])
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    return -tf.reduce_mean(tf.reduce_sum(labels * log_probs, -1))
