"""cs231n_lib.stats: the deep-net statistics behind notebook 03 and the init explorer."""

import numpy as np
import pytest

from cs231n_lib import gradcheck, stats


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
@pytest.mark.parametrize("dims", [(5, 4, 3), (1, 7), (3, 3, 3, 2)])
def test_forward_stats_and_gradient_norms(activation, dims):
    rng = np.random.default_rng(len(dims))
    x = rng.standard_normal((6, dims[0]))
    weights = [rng.standard_normal((i, o)) for i, o in zip(dims[:-1], dims[1:])]
    means, stds, hs = stats.forward_stats(x, weights, activation)
    assert len(hs) == len(weights) and means.shape == stds.shape == (len(weights),)
    act = stats.ACTIVATIONS[activation][0]
    h = x
    for l, w in enumerate(weights):
        h = act(h @ w)
        np.testing.assert_allclose(hs[l], h)
        assert means[l] == pytest.approx(h.mean()) and stds[l] == pytest.approx(h.std())
    # each weight-gradient norm against a centred-difference gradient of sum(h_L * dout)
    dout = rng.standard_normal(hs[-1].shape)
    norms = stats.weight_grad_norms(x, weights, hs, dout, activation)
    for l in range(len(weights)):
        def loss(w_l, l=l):
            ws = list(weights)
            ws[l] = w_l
            return np.sum(stats.forward_stats(x, ws, activation)[2][-1] * dout)
        num = gradcheck.eval_numerical_gradient(loss, weights[l].copy())
        assert norms[l] == pytest.approx(np.linalg.norm(num), rel=1e-6)


def test_lecture_claims_hold():
    small = stats.deep_net_experiment(activation="tanh", scheme="small", num_examples=100)
    large = stats.deep_net_experiment(activation="tanh", scheme="large", num_examples=100)
    xavier = stats.deep_net_experiment(activation="tanh", scheme="xavier", num_examples=100)
    relu_x = stats.deep_net_experiment(activation="relu", scheme="xavier", num_examples=100)
    relu_he = stats.deep_net_experiment(activation="relu", scheme="he", num_examples=100)
    assert small["stds"][-1] < 1e-5
    assert np.mean([np.mean(np.abs(h) > 0.99) for h in large["hs"]]) > 0.85
    assert np.all((xavier["stds"] > 0.1) & (xavier["stds"] < 0.9))
    assert np.all(np.diff(relu_x["stds"]) < 0)
    assert 0.5 < relu_he["stds"][-1] / relu_he["stds"][0] < 2


def test_make_weights_schemes():
    ws = stats.make_weights(3, 40, "he", input_dim=10, rng=0)
    assert [w.shape for w in ws] == [(10, 40), (40, 40), (40, 40)]
    w = stats.make_weights(1, 2000, "std", std=0.3, rng=0)[0]
    assert w.std() == pytest.approx(0.3, rel=0.01)
    assert stats.make_weights(1, 2000, "small", rng=0)[0].std() == pytest.approx(0.01, rel=0.01)
    assert stats.make_weights(1, 2000, "large", rng=0)[0].std() == pytest.approx(1.0, rel=0.01)
    np.testing.assert_array_equal(stats.make_weights(2, 5, "xavier", rng=3)[1],
                                  stats.make_weights(2, 5, "xavier", rng=3)[1])


def test_bad_input():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        stats.forward_stats(x, [np.ones((3, 3))], "swish")
    with pytest.raises(ValueError, match=r"layer 2 gets inputs of width 4 but its weights have shape \(3, 1\)"):
        stats.forward_stats(x, [np.ones((3, 4)), np.ones((3, 1))])
    with pytest.raises(ValueError, match=r"x must have shape \(N, D\)"):
        stats.forward_stats(np.ones(3), [np.ones((3, 3))])
    with pytest.raises(ValueError, match="unknown scheme 'glorot'"):
        stats.make_weights(2, 3, "glorot")
    with pytest.raises(ValueError, match="needs a positive std"):
        stats.make_weights(2, 3, "std")
