"""Synthetic interactions with known long- and short-term interests.

Each user has a stable long-term preference over a few favourite categories and, now and then,
a short burst of interest in a random category. Every interaction records which of the two
produced it (``source`` = "long" or "short"), so disentanglement studies have a ground truth.
"""

import numpy as np
import pandas as pd


def _sample_items(rng, cates, cate_of_item_sorted, cumulative, cate_bounds):
    """Draw one item per entry of ``cates``, by popularity within the category.

    Args:
        rng (np.random.Generator): Random source.
        cates (np.ndarray): Category of each draw.
        cate_of_item_sorted (np.ndarray): Item ids ordered by (category, popularity rank).
        cumulative (np.ndarray): Cumulative popularity weights in that order.
        cate_bounds (np.ndarray): Cumulative weight before each category, plus the total.

    Returns:
        np.ndarray: Item ids.
    """
    low, high = cate_bounds[cates], cate_bounds[cates + 1]
    target = low + rng.random(len(cates)) * (high - low)
    position = np.searchsorted(cumulative, target, side="right")
    return cate_of_item_sorted[np.minimum(position, len(cumulative) - 1)]


def generate_synthetic(*, n_users=500, n_items=1000, n_cates=20, interactions_per_user=60,
                       n_favourites=3, burst_prob=0.15, burst_length=(3, 8), burst_focus=0.9,
                       popularity_exponent=1.0, start_time=1_600_000_000,
                       start_spread=7 * 86_400, long_gap=86_400, short_gap=600, seed=42,
                       return_truth=False):
    """Generate interactions driven by long-term preferences and short-term bursts.

    Items are spread round-robin over the categories; within a category the item of popularity
    rank r is drawn with weight (r + 1) ** -popularity_exponent. At each step a user not in a
    burst starts one with probability ``burst_prob`` on a uniformly drawn category, lasting a
    uniform number of steps in ``burst_length``; during a burst each interaction comes from the
    burst category with probability ``burst_focus`` (source "short"), otherwise (and outside
    bursts) from the user's long-term distribution over ``n_favourites`` categories with
    Dirichlet(1) weights (source "long"). Gaps between interactions are exponential with mean
    ``long_gap`` seconds, or ``short_gap`` for "short" ones; each user starts at a uniform time in
    [start_time, start_time + start_spread).

    Args:
        n_users (int): Number of users.
        n_items (int): Number of items (at least n_cates).
        n_cates (int): Number of categories.
        interactions_per_user (int): Interactions of every user.
        n_favourites (int): Long-term favourite categories per user.
        burst_prob (float): Chance per step of starting a burst.
        burst_length (tuple): Inclusive (min, max) number of steps of a burst.
        burst_focus (float): Chance that an interaction during a burst comes from the burst.
        popularity_exponent (float): Zipf exponent of item popularity within a category.
        start_time (int): Earliest first timestamp (seconds).
        start_spread (int): Range of first timestamps (seconds).
        long_gap (float): Mean gap before a long-term interaction (seconds).
        short_gap (float): Mean gap before a short-term interaction (seconds).
        seed (int): Random seed.
        return_truth (bool): Also return the ground truth of the simulation (it draws
            nothing more, so the interactions are the same either way).

    Returns:
        pd.DataFrame: Interactions (user, item, cate, time [s], behavior "click", source),
        ordered by user and time; ids ``u<k>``, ``i<k>``, ``c<k>``. With ``return_truth``, a
        tuple (interactions, truth), truth a dict of ``long_term`` (float array [n_users,
        n_cates]: row k is the long-term category distribution of user ``u<k>``, the
        Dirichlet weights on its favourite categories) and ``burst`` (int array, one entry per
        interaction row: the category of the burst the user is in at that step, -1 outside
        bursts; every "short" interaction is in a burst, of that burst's category).
    """
    if n_items < n_cates or not 1 <= n_favourites <= n_cates:
        raise ValueError("need n_items >= n_cates and 1 <= n_favourites <= n_cates")
    rng = np.random.default_rng(seed)
    item_cate = np.arange(n_items) % n_cates
    rank = np.arange(n_items) // n_cates
    by_cate = np.lexsort((rank, item_cate))
    weights = (rank[by_cate] + 1.0) ** -popularity_exponent
    cumulative = np.cumsum(weights)
    cate_bounds = np.concatenate(
        [[0.0], cumulative[np.cumsum(np.bincount(item_cate, minlength=n_cates)) - 1]])

    favourites = np.argsort(rng.random((n_users, n_cates)), axis=1)[:, :n_favourites]
    favourite_weights = rng.dirichlet(np.ones(n_favourites), size=n_users)
    favourite_cdf = np.cumsum(favourite_weights, axis=1)
    burst_left = np.zeros(n_users, dtype=np.int64)
    burst_cate = np.zeros(n_users, dtype=np.int64)
    users = np.arange(n_users)
    cates = np.empty((n_users, interactions_per_user), dtype=np.int64)
    short = np.empty((n_users, interactions_per_user), dtype=bool)
    burst = np.empty((n_users, interactions_per_user), dtype=np.int64)
    for step in range(interactions_per_user):
        start = (burst_left == 0) & (rng.random(n_users) < burst_prob)
        burst_cate[start] = rng.integers(0, n_cates, size=int(start.sum()))
        burst_left[start] = rng.integers(burst_length[0], burst_length[1] + 1,
                                         size=int(start.sum()))
        in_burst = burst_left > 0
        burst[:, step] = np.where(in_burst, burst_cate, -1)
        short[:, step] = in_burst & (rng.random(n_users) < burst_focus)
        pick = np.minimum((rng.random(n_users)[:, None] > favourite_cdf).sum(axis=1),
                          n_favourites - 1)
        cates[:, step] = np.where(short[:, step], burst_cate, favourites[users, pick])
        burst_left[in_burst] -= 1

    items = _sample_items(rng, cates.ravel(), by_cate, cumulative, cate_bounds)
    gaps = rng.exponential(1.0, size=short.shape) * np.where(short, short_gap, long_gap)
    first = start_time + rng.integers(0, start_spread, size=n_users)
    times = first[:, None] + np.cumsum(gaps, axis=1).astype(np.int64)
    user_names = np.char.add("u", np.repeat(users, interactions_per_user).astype(str))
    interactions = pd.DataFrame({
        "user": pd.Categorical(user_names),
        "item": pd.Categorical(np.char.add("i", items.astype(str))),
        "cate": pd.Categorical(np.char.add("c", cates.ravel().astype(str))),
        "time": times.ravel(),
        "behavior": pd.Categorical(np.full(short.size, "click")),
        "source": pd.Categorical(np.where(short.ravel(), "short", "long")),
    })
    if not return_truth:
        return interactions
    long_term = np.zeros((n_users, n_cates))
    long_term[users[:, None], favourites] = favourite_weights
    return interactions, {"long_term": long_term, "burst": burst.ravel()}
