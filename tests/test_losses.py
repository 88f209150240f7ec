"""Contrastive and group softmax losses against hand-computed values."""

import numpy as np
import pytest

from clsr_tf.losses import TERMS, ContrastiveLoss, group_softmax_loss


def softplus(x):
    return np.log1p(np.exp(x))


def test_bpr_terms_by_hand():
    u_l, u_s = np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]])
    p_l, p_s = np.array([[0.5, 0.5]]), np.array([[1.0, -1.0]])
    terms = ContrastiveLoss("bpr", length_threshold=0).terms(u_l, u_s, p_l, p_s, [3])
    # f(a, pos, neg) = softplus(<a, neg> - <a, pos>)
    expected = {
        "long_mean_recent": softplus(1.0 - 0.5),       # <u_l,p_s>=1, <u_l,p_l>=0.5
        "short_recent_mean": softplus(1.0 - (-2.0)),   # <u_s,p_l>=1, <u_s,p_s>=-2
        "mean_long_short": softplus(1.0 - 0.5),        # <p_l,u_s>=1, <p_l,u_l>=0.5
        "recent_short_long": softplus(1.0 - (-2.0)),   # <p_s,u_l>=1, <p_s,u_s>=-2
    }
    for name in TERMS:
        np.testing.assert_allclose(float(terms[name]), expected[name], rtol=1e-6)


def test_triplet_terms_by_hand():
    u_l, u_s = np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]])
    p_l, p_s = np.array([[0.5, 0.5]]), np.array([[1.0, -1.0]])
    loss = ContrastiveLoss("triplet", margin=1.0, length_threshold=0)
    terms = loss.terms(u_l, u_s, p_l, p_s, [3])

    def f(a, pos, neg):  # per-dimension hinge, summed
        return np.maximum(0, (a - pos) ** 2 - (a - neg) ** 2 + 1.0).sum()

    expected = {"long_mean_recent": f(u_l, p_l, p_s), "short_recent_mean": f(u_s, p_s, p_l),
                "mean_long_short": f(p_l, u_l, u_s), "recent_short_long": f(p_s, u_s, u_l)}
    for name in TERMS:
        np.testing.assert_allclose(float(terms[name]), expected[name], rtol=1e-6)
    np.testing.assert_allclose(float(loss(u_l, u_s, p_l, p_s, [3])), sum(expected.values()),
                               rtol=1e-6)


def test_untrained_triplet_sits_at_four_margins_per_dimension():
    z = np.zeros((3, 40))
    assert float(ContrastiveLoss("triplet", length_threshold=0)(z, z, z, z, [9, 9, 9])) == 160.0


@pytest.mark.parametrize("kind", ["bpr", "triplet"])
def test_rows_at_or_below_the_threshold_contribute_nothing(rng, kind):
    reps = [rng.normal(size=(4, 3)) for _ in range(4)]
    loss = ContrastiveLoss(kind, length_threshold=5)
    full = float(loss(*reps, lengths=[6, 5, 2, 9]))
    kept = float(loss(*[r[[0, 3]] for r in reps], lengths=[6, 9]))
    np.testing.assert_allclose(full, kept, rtol=1e-6)
    # Changing the short rows changes nothing.
    other = [r.copy() for r in reps]
    for r in other:
        r[[1, 2]] = rng.normal(size=(2, 3))
    np.testing.assert_allclose(float(loss(*other, lengths=[6, 5, 2, 9])), full, rtol=1e-6)
    # No row long enough: zero, where the original divides by zero.
    assert float(loss(*reps, lengths=[1, 5, 2, 3])) == 0.0


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="contrastive_loss"):
        ContrastiveLoss("hinge")


def test_group_softmax_loss_matches_numpy(rng):
    logits = rng.normal(size=(15, 1)).astype(np.float32)
    labels = np.zeros((15, 1), np.float32)
    labels[[0, 5, 10]] = 1
    g = logits.reshape(3, 5)
    ref = -np.mean(g[:, 0] - np.log(np.exp(g).sum(1)))
    np.testing.assert_allclose(float(group_softmax_loss(logits, labels, 4)), ref, rtol=1e-5)
