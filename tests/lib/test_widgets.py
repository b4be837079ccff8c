"""The saturation and initialisation explorers, driven headless.

Each test builds an explorer, moves its controls from Python and checks that the statistics and
the data drawn in its single, persistent figure change the way the lectures say they should.
"""

import numpy as np
import pytest

import ipywidgets  # noqa: E402

from cs231n_lib.widgets import init_explorer, saturation_explorer  # noqa: E402
from cs231n_lib.widgets.saturation import activation_and_gradient, saturated_fraction  # noqa: E402


def bar_height(explorer):
    return explorer.figure.axes[2].patches[0].get_height()


# --- saturation explorer ---------------------------------------------------------------------

def test_saturation_controls_for_the_browser():
    e = saturation_explorer(num_units=2000)
    scale = e.controls["input_scale"]
    assert isinstance(scale, (ipywidgets.FloatLogSlider, ipywidgets.FloatSlider))
    assert "scale" in scale.description
    assert isinstance(e.controls["activation"], ipywidgets.Dropdown)
    assert set(e.controls["activation"].options) == {"sigmoid", "tanh", "relu", "leaky_relu", "elu"}
    assert isinstance(e.widget, ipywidgets.Widget)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "elu"])
def test_saturated_fraction_rises_with_input_scale(activation):
    e = saturation_explorer(activation=activation, num_units=5000)
    shown = []
    for scale in (0.1, 1.0, 5.0, 30.0):
        e.controls["input_scale"].value = scale  # as a user dragging the slider
        assert bar_height(e) == pytest.approx(e.saturated_fraction)
        shown.append(bar_height(e))
    assert shown[0] == 0.0, "small inputs stay in the linear range"
    assert all(a <= b for a, b in zip(shown, shown[1:])) and shown[-1] > 0.4 + shown[1]
    assert shown[-1] == pytest.approx(saturated_fraction(activation, e.inputs))


def test_figure_is_redrawn_in_place():
    e = saturation_explorer(num_units=2000)
    figure, n_axes, redraws = e.figure, len(e.figure.axes), e.redraws
    line_before = e.figure.axes[0].lines[0].get_xydata().copy()
    e.update(input_scale=20.0, activation="tanh")
    assert e.figure is figure and len(e.figure.axes) == n_axes, "no new figure, no new axes"
    assert e.redraws == redraws + 1, "several controls set at once redraw once"
    line_after = e.figure.axes[0].lines[0].get_xydata()
    assert not np.array_equal(line_before, line_after), "the curve shows the new activation"
    # the input histogram (twin axes) follows the new spread of the inputs
    density, edges, _ = e.figure.axes[3].patches[0].get_data()
    assert np.sum(density * np.diff(edges)) == pytest.approx(1.0)
    assert edges[0] <= -3 * 20.0 and edges[-1] >= 3 * 20.0, "the x range follows the inputs"
    assert e.inputs.std() == pytest.approx(20.0, rel=0.05)


def test_relu_dead_fraction_follows_the_shift():
    e = saturation_explorer(activation="relu", num_units=4000)
    assert bar_height(e) == pytest.approx(0.5, abs=0.03), "half of centred inputs are negative"
    e.update(input_shift=-3.0)
    assert bar_height(e) > 0.99
    e.update(input_shift=3.0)
    assert bar_height(e) < 0.01
    # the local-gradient histogram shows the same split: only gradients 0 and 1
    counts, _, _ = e.figure.axes[1].patches[0].get_data()
    assert counts.sum() == e.local_gradients.size
    assert counts[0] == np.sum(e.local_gradients == 0) == round(bar_height(e) * counts.sum())
    assert set(np.unique(e.local_gradients)) <= {0.0, 1.0}


def test_local_gradients_come_from_the_library_layers():
    x = np.array([-10.0, 0.0, 10.0])
    _, g = activation_and_gradient("sigmoid", x)
    np.testing.assert_allclose(g, [4.5396e-05, 0.25, 4.5396e-05], rtol=1e-4)
    _, g = activation_and_gradient("relu", x)
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])


def test_saturation_bad_input():
    with pytest.raises(ValueError, match="unknown activation 'softplus'"):
        saturation_explorer(activation="softplus")
    with pytest.raises(ValueError, match="input_scale must be positive"):
        saturation_explorer(input_scale=0.0)
    e = saturation_explorer(num_units=100)
    with pytest.raises(ValueError, match="unknown control 'colour'"):
        e.update(colour="red")


# --- initialisation explorer -----------------------------------------------------------------

def test_init_layer_stds_change_with_the_scheme():
    e = init_explorer(depth=6, width=100, num_examples=100, activation="tanh", scheme="small")
    small = e.layer_stds.copy()
    assert small[-1] < 1e-3 * small[0], "std 0.01 collapses layer by layer"
    e.controls["scheme"].value = "large"
    assert np.all(e.layer_stds > 0.9), "std 1 saturates tanh at +-1"
    e.controls["scheme"].value = "xavier"
    assert np.all((e.layer_stds > 0.1) & (e.layer_stds < 0.9))
    # the figure's left panel shows exactly these numbers
    shown = e.figure.axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(shown, e.layer_stds)


def test_init_relu_xavier_shrinks_and_he_stays_flat():
    e = init_explorer(depth=8, width=200, num_examples=100, activation="relu", scheme="xavier")
    xavier = e.layer_stds.copy()
    assert np.all(np.diff(xavier) < 0)
    e.update(scheme="he")
    he = e.layer_stds
    assert 0.5 < he[-1] / he[0] < 2 and he[-1] / he[0] > 4 * xavier[-1] / xavier[0]


def test_init_depth_width_and_custom_std_reach_the_figure():
    e = init_explorer(depth=4, width=50, num_examples=50)
    assert e.histograms.shape[0] == 4 and len(e.grad_norms) == 4
    n_axes = len(e.figure.axes)
    e.update(depth=9)
    assert e.histograms.shape[0] == 9 and len(e.figure.axes[2].lines[0].get_ydata()) == 9
    assert len(e.figure.axes) == n_axes, "the colour bar is reused, not stacked"
    # histogram rows are fractions of each layer's units
    np.testing.assert_allclose(e.histograms.sum(axis=1), 1.0, atol=1e-9)
    e.update(scheme="std", std=0.05)
    low = e.grad_norms.copy()
    e.update(std=0.5)
    assert np.all(e.grad_norms > low), "larger weights give larger weight gradients"
    shown = e.figure.axes[2].lines[0].get_ydata()
    np.testing.assert_allclose(shown, e.grad_norms)


def test_init_bad_input():
    with pytest.raises(ValueError, match="unknown scheme 'glorot'"):
        init_explorer(scheme="glorot", depth=2, width=10, num_examples=5)
    with pytest.raises(ValueError, match="unknown activation 'elu'"):
        init_explorer(activation="elu", depth=2, width=10, num_examples=5)
