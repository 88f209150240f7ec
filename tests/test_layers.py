"""Each layer against a small numpy reference of its equation, masks included."""

import numpy as np
import pytest
import tensorflow as tf

from clsr_tf.keras2 import keras
from clsr_tf.layers import MLP, AdaptiveFusion, AttentionPool, Time4LSTMCell, make_rnn
from clsr_tf.original import gru_from_tf1, lstm_from_tf1

from layer_test import layer_test


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def randomize(layer, rng):
    """Give every weight (batch-norm statistics too) a non-trivial random value."""
    for w in layer.weights:
        if "moving_variance" in w.name:
            w.assign(rng.uniform(0.5, 2.0, w.shape))
        else:
            w.assign(rng.normal(0, 0.5, w.shape))


def np_mlp(mlp, x, training=False):
    """numpy forward of MLP: matmul -> BN -> relu per hidden layer, linear output."""
    for i, dense in enumerate(mlp.hidden):
        x = x @ dense.kernel.numpy() + dense.bias.numpy()
        bn = mlp.norms[i]
        if training:
            axes = tuple(range(x.ndim - 1))
            mean, var = x.mean(axes), x.var(axes)
        else:
            mean, var = bn.moving_mean.numpy(), bn.moving_variance.numpy()
        x = (x - mean) / np.sqrt(var + 1e-4) * bn.gamma.numpy() + bn.beta.numpy()
        x = np.maximum(x, 0)
    return x @ mlp.out.kernel.numpy() + mlp.out.bias.numpy()


@pytest.mark.parametrize("training", [False, True])
def test_mlp_matches_numpy_on_3d_input(rng, training):
    mlp = MLP([6, 4], ["relu", "relu"])
    x = rng.normal(size=(3, 5, 7)).astype(np.float32)
    mlp(x)
    randomize(mlp, rng)
    bn = mlp.norms[0]
    before = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    want = np_mlp(mlp, x.astype(np.float64), training)
    got = mlp(x, training=training).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    # Moving statistics: momentum 0.95 towards the batch mean and the unbiased variance
    # (the fused kernel's; the original uses the population variance, n / (n - 1) apart).
    first = (x.reshape(-1, 7) @ mlp.hidden[0].kernel.numpy() + mlp.hidden[0].bias.numpy())
    if training:
        before = (0.95 * before[0] + 0.05 * first.mean(0),
                  0.95 * before[1] + 0.05 * first.var(0, ddof=1))
    np.testing.assert_allclose(bn.moving_mean.numpy(), before[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), before[1], rtol=1e-5, atol=1e-6)


def make_pool(rng, keys, query, attention_type="mlp"):
    pool = AttentionPool([6, 4], ["relu", "relu"], attention_type=attention_type)
    pool((keys, query))
    randomize(pool, rng)
    return pool


@pytest.mark.parametrize("attention_type", ["mlp", "inner_product"])
def test_attention_pool_matches_numpy_and_ignores_padding(rng, attention_type):
    keys = rng.normal(size=(3, 5, 4)).astype(np.float32)
    query = rng.normal(size=(3, 6)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], np.float32)
    pool = make_pool(rng, keys, query, attention_type)
    pooled, weights = (t.numpy() for t in pool((keys, query), mask=mask))

    v = keys @ pool.attention_mat.numpy()
    q = np.broadcast_to(query[:, None], v.shape)
    if attention_type == "mlp":
        scores = np_mlp(pool.mlp, np.concatenate([v, q, v - q, v * q], -1))[..., 0]
    else:
        scores = (v * q).sum(-1)
    scores = np.where(mask > 0, scores, -np.inf)
    ref_w = np.exp(scores - scores.max(1, keepdims=True))
    ref_w /= ref_w.sum(1, keepdims=True)
    np.testing.assert_allclose(weights, ref_w, atol=1e-5)
    np.testing.assert_allclose(pooled, (ref_w[..., None] * keys).sum(1), atol=1e-5)
    assert np.all(weights[mask == 0] == 0)

    # Changing padded keys changes nothing (inference-mode BN).
    noisy = keys + (1 - mask[..., None]) * rng.normal(size=keys.shape).astype(np.float32)
    np.testing.assert_allclose(pool((noisy, query), mask=mask)[0].numpy(), pooled, atol=1e-6)


@pytest.mark.parametrize("attention_type", ["mlp", "inner_product"])
def test_attention_pool_key_side_once_per_history_equals_per_row(rng, attention_type):
    """CLSR computes the keys' part once per history and reuses it for many queries."""
    keys = rng.normal(size=(2, 5, 4)).astype(np.float32)
    query = rng.normal(size=(6, 6)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.float32)
    fresh = AttentionPool([6, 4], ["relu", "relu"], attention_type=attention_type)
    side = fresh.key_side(keys, 6)  # builds the layer outside __call__
    pool = make_pool(rng, keys, query[:2], attention_type)
    names = [[w.name.replace(f"{layer.name}/", "LAYER/") for w in layer.weights]
             for layer in (fresh, pool)]
    assert names[0] == names[1] and names[0][0] == "LAYER/attention_mat:0"
    side = pool.key_side(keys, 6)
    assert sorted(side) == (["projected", "scored"] if attention_type == "mlp"
                            else ["projected"])
    rows = np.array([0, 0, 0, 1, 1, 1])
    expected = pool((keys[rows], query), mask=mask[rows])
    got = pool((keys[rows], query), mask=mask[rows],
               key_side={key: tf.gather(value, rows) for key, value in side.items()})
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_attention_pool_rejects_unknown_type():
    with pytest.raises(ValueError, match="attention_type"):
        AttentionPool(attention_type="dot")


def np_time4lstm(cell, inputs):
    """numpy Time4LSTM over [B, T, D+2] (no mask)."""
    w = {v.name.split("/")[-1].split(":")[0]: v.numpy() for v in cell.weights}
    b, t, _ = inputs.shape
    u = cell.units
    c = np.zeros((b, u))
    m = np.zeros((b, u))
    outs = []
    for s in range(t):
        x, tf_first, tt_now = inputs[:, s, :-2], inputs[:, s, -2:-1], inputs[:, s, -1:]
        t_now = np.tanh(tt_now * w["_time_input_w1"] + w["_time_input_bias1"])
        t_last = np.tanh(tf_first * w["_time_input_w2"] + w["_time_input_bias2"])
        g1 = sigmoid(x @ w["_time_kernel_w1"] + t_now @ w["_time_kernel_t1"] + w["_time_bias1"])
        g2 = sigmoid(x @ w["_time_kernel_w2"] + t_last @ w["_time_kernel_t2"] + w["_time_bias2"])
        z = np.concatenate([x, m], 1) @ w["kernel"] + w["bias"]
        i, j, f, o = np.split(z, 4, 1)
        o = o + t_now @ w["_o_kernel_t1"] + t_last @ w["_o_kernel_t2"]
        c = sigmoid(f + 1.0) * g2 * c + sigmoid(i) * g1 * np.tanh(j)
        m = sigmoid(o) * np.tanh(c)
        outs.append(m)
    return np.stack(outs, 1)


def test_time4lstm_matches_numpy_and_stops_at_the_mask(rng):
    inputs = rng.normal(size=(2, 4, 5 + 2)).astype(np.float32)
    rnn = make_rnn("time4lstm", 3)
    rnn(inputs)
    randomize(rnn, rng)
    ref = np_time4lstm(rnn.cell, inputs.astype(np.float64))
    np.testing.assert_allclose(rnn(inputs).numpy(), ref, atol=1e-5)
    # With a mask the state stops at the last valid step.
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    last = keras.layers.RNN(rnn.cell, return_sequences=False)(inputs, mask=mask).numpy()
    np.testing.assert_allclose(last[0], ref[0, 1], atol=1e-5)
    assert isinstance(rnn.cell, Time4LSTMCell)


def np_tf1_gru(x, gk, gb, ck, cb, h0):
    h = h0
    outs = []
    for s in range(x.shape[1]):
        xs = x[:, s]
        r, u = np.split(sigmoid(np.concatenate([xs, h], 1) @ gk + gb), 2, 1)
        cand = np.tanh(np.concatenate([xs, r * h], 1) @ ck + cb)
        h = u * h + (1 - u) * cand
        outs.append(h)
    return np.stack(outs, 1)


def test_tf1_gru_weights_map_exactly_onto_keras_gru(rng):
    d, h = 5, 3
    x = rng.normal(size=(2, 4, d))
    h0 = rng.normal(size=(2, h))
    gk, gb = rng.normal(size=(d + h, 2 * h)), rng.normal(size=2 * h)
    ck, cb = rng.normal(size=(d + h, h)), rng.normal(size=h)
    gru = make_rnn("gru", h, "tf1")
    x32, h32 = tf.constant(x, tf.float32), tf.constant(h0, tf.float32)
    gru(x32, initial_state=[h32])
    gru.set_weights(gru_from_tf1(gk, gb, ck, cb))
    got = gru(x32, initial_state=[h32]).numpy()
    np.testing.assert_allclose(got, np_tf1_gru(x, gk, gb, ck, cb, h0), atol=1e-5)


def test_tf1_lstm_weights_map_exactly_onto_keras_lstm(rng):
    d, h = 5, 3
    x = rng.normal(size=(2, 4, d))
    k, b = rng.normal(size=(d + h, 4 * h)), rng.normal(size=4 * h)
    c = m = np.zeros((2, h))
    ref = []
    for s in range(4):
        i, j, f, o = np.split(np.concatenate([x[:, s], m], 1) @ k + b, 4, 1)
        c = sigmoid(f + 1.0) * c + sigmoid(i) * np.tanh(j)
        m = sigmoid(o) * np.tanh(c)
        ref.append(m)
    lstm = make_rnn("lstm", h)
    lstm(x.astype(np.float32))
    lstm.set_weights(lstm_from_tf1(k, b))
    np.testing.assert_allclose(lstm(x.astype(np.float32)).numpy(), np.stack(ref, 1), atol=1e-5)


def test_gru_variants_and_initial_biases():
    tf1 = make_rnn("gru", 4, "tf1")
    cudnn = make_rnn("gru", 4, "cudnn")
    x = np.zeros((1, 2, 3), np.float32)
    tf1(x)
    cudnn(x)
    assert not tf1.cell.reset_after and cudnn.cell.reset_after
    # TF1 GRUCell starts its gates at bias 1.0, its candidate at 0.0.
    np.testing.assert_array_equal(tf1.cell.bias.numpy(), [1.0] * 8 + [0.0] * 4)
    with pytest.raises(ValueError):
        make_rnn("rnn", 4)


def test_adaptive_fusion_matches_numpy(rng):
    hist = rng.normal(size=(3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], np.float32)
    target, u_l, u_s = (rng.normal(size=(3, 4)).astype(np.float32) for _ in range(3))
    t_now = rng.normal(size=3).astype(np.float32)
    fusion = AdaptiveFusion(hidden_size=4, layer_sizes=[6, 4])

    def run():
        state = fusion.history_state(hist, mask)
        return state.numpy(), fusion((state, target, u_l, u_s, t_now))

    run()
    randomize(fusion, rng)
    state, out = run()
    alpha = sigmoid(np_mlp(fusion.mlp, np.concatenate([state, target, u_l, u_s,
                                                       t_now[:, None]], 1)))
    np.testing.assert_allclose(out["alpha"].numpy(), alpha, atol=1e-5)
    np.testing.assert_allclose(out["user"].numpy(), alpha * u_l + (1 - alpha) * u_s, atol=1e-5)
    # The GRU's state is taken at each row's last valid step.
    full = fusion.gru.__class__.from_config(dict(fusion.gru.get_config(), return_sequences=True))
    full(hist)
    full.set_weights(fusion.gru.get_weights())
    seq = full(hist).numpy()
    np.testing.assert_allclose(state[0], seq[0, 1], atol=1e-5)


def test_manual_alpha_fixes_the_fusion(rng):
    fusion = AdaptiveFusion(manual_alpha=True, manual_alpha_value=0.3)
    u_l, u_s = rng.normal(size=(2, 3, 4)).astype(np.float32)
    out = fusion((None, None, u_l, u_s, None))
    np.testing.assert_allclose(out["user"].numpy(), 0.3 * u_l + 0.7 * u_s, atol=1e-6)
    assert fusion.weights == []


def _inputs(seed, *shapes):
    rng = np.random.default_rng(seed)
    return tuple(rng.normal(size=shape).astype(np.float32) for shape in shapes)


_MASK = np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], np.float32)
# (make, inputs, call kwargs) of every layer of clsr_tf.layers.
LAYER_CASES = {
    "mlp": (lambda: MLP([4, 2], ["relu", "relu"]), _inputs(1, (3, 5, 7))[0], {}),
    "attention_mlp": (lambda: AttentionPool([4, 2], ["relu", "relu"]),
                      _inputs(2, (3, 5, 4), (3, 6)), {"mask": _MASK}),
    "attention_inner_product": (
        lambda: AttentionPool([4, 2], ["relu", "relu"], attention_type="inner_product"),
        _inputs(3, (3, 5, 4), (3, 6)), {"mask": _MASK}),
    "fusion": (lambda: AdaptiveFusion(hidden_size=3, layer_sizes=[4, 2]),
               _inputs(4, (3, 3), (3, 4), (3, 4), (3, 4), (3,)), {}),
    "fusion_manual_alpha": (
        lambda: AdaptiveFusion(hidden_size=3, layer_sizes=[4, 2], manual_alpha=True,
                               predict_long_short=False),
        (None, None) + _inputs(5, (3, 4), (3, 4)) + (None,), {}),
    "time4lstm": (lambda: keras.layers.RNN(Time4LSTMCell(3)), _inputs(6, (2, 4, 7))[0], {}),
    "gru_tf1": (lambda: make_rnn("gru", 3), _inputs(7, (2, 4, 5))[0], {}),
    "lstm": (lambda: make_rnn("lstm", 3), _inputs(8, (2, 4, 5))[0], {}),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layer_config_and_saved_model_round_trips(case, tmp_path):
    make, inputs, kwargs = LAYER_CASES[case]
    layer_test(make, inputs, tmp_path, **kwargs)
