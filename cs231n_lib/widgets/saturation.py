"""The activation saturation explorer: where do the inputs of a unit fall on its activation?

A unit passes back ``dout * f'(x)``. When an input ``x`` lands where the activation is flat
(|x| large for sigmoid and tanh, x <= 0 for ReLU) the local gradient ``f'(x)`` is nearly zero
and the unit learns (almost) nothing from that input. The explorer draws the activation with the
distribution of the inputs ``x = shift + scale * z`` (z standard normal) laid over it, the
histogram of their local gradients, and the fraction of inputs at which the local gradient is
below 1% of the activation's largest slope.

Read the inputs as those of one unit over a data set. For sigmoid and tanh the fraction is the
share of examples on which the unit is saturated. For ReLU it is the share on which the unit is
inactive, which is half of them for centred inputs at any scale and is normal: the unit still
learns from the other half. A ReLU is *dead* only when it is inactive on every example, i.e. when
the fraction reaches 100% (a large negative shift).

``saturation_explorer`` returns a :class:`SaturationExplorer`; in a notebook it displays itself,
and a test can drive it headless through ``explorer.update(input_scale=...)`` (or by setting
``explorer.controls[name].value``) and read ``explorer.saturated_fraction`` and
``explorer.figure``.
"""

from __future__ import annotations

import numpy as np

from cs231n_lib import layers
from cs231n_lib.widgets.explorer import Explorer

ACTIVATIONS = layers.ACTIVATIONS
# The largest slope of each activation: an input counts as saturated (or, for ReLU, inactive)
# where its local gradient is below SATURATION_LEVEL times this. Leaky ReLU's left slope is
# exactly 1% (alpha = 0.01), so it is never counted.
MAX_SLOPE = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0, "leaky_relu": 1.0, "elu": 1.0}
SATURATION_LEVEL = 0.01


def activation_and_gradient(activation: str, x):
    """f(x) and the local gradient f'(x), elementwise, from the library's layer pair."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {ACTIVATIONS}")
    out, cache = getattr(layers, f"{activation}_forward")(x)
    grad = getattr(layers, f"{activation}_backward")(np.ones_like(out), cache)
    return out, grad


def saturated_fraction(activation: str, x) -> float:
    """Fraction of the inputs x at which the local gradient is below 1% of the activation's
    largest slope: saturated (sigmoid, tanh, ELU's left tail) or inactive (ReLU, x <= 0).

    Over one unit's inputs on a data set, a ReLU is dead when this is 1: inactive everywhere."""
    _, grad = activation_and_gradient(activation, np.asarray(x, dtype=np.float64))
    return float(np.mean(grad < SATURATION_LEVEL * MAX_SLOPE[activation]))


class SaturationExplorer(Explorer):
    """Controls, a figure, and the statistics they show; redraws in place on every change.

    Attributes
    ----------
    controls : dict of ipywidgets: ``activation`` (Dropdown), ``input_scale`` (FloatLogSlider,
        the std of the inputs), ``input_shift`` (FloatSlider, their mean)
    figure : matplotlib Figure: the activation with the input histogram (left), the histogram of
        local gradients (middle), the fraction of inputs with f'(x) < 1% of the largest slope as a
        bar (right)
    inputs, local_gradients : the arrays behind the histograms
    saturated_fraction : the height of the bar
    """

    def __init__(self, activation, input_scale, input_shift, num_units, seed):
        import ipywidgets as widgets
        from matplotlib.figure import Figure

        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {ACTIVATIONS}")
        if input_scale <= 0:
            raise ValueError(f"input_scale must be positive, got {input_scale}")
        self._z = np.random.default_rng(seed).standard_normal(num_units)
        style = {"description_width": "90px"}
        self.controls = {
            "activation": widgets.Dropdown(options=ACTIVATIONS, value=activation,
                                           description="activation", style=style),
            "input_scale": widgets.FloatLogSlider(
                value=input_scale, base=10, min=-2, max=2, step=0.05, readout_format=".3g",
                description="input scale", style=style),
            "input_shift": widgets.FloatSlider(
                value=input_shift, min=-10.0, max=10.0, step=0.1, description="input shift",
                style=style),
        }
        self.figure = Figure(figsize=(12, 3.8))
        # A fixed layout with room between the panels: the density axis on the right of the
        # first panel has a label but no tick labels, so nothing reaches the middle panel.
        self._ax_curve, self._ax_grad, self._ax_frac = self.figure.subplots(
            1, 3, gridspec_kw={"width_ratios": [1.4, 1.2, 0.45], "wspace": 0.4,
                               "left": 0.06, "right": 0.97, "bottom": 0.15, "top": 0.8})
        self._ax_hist = self._ax_curve.twinx()
        self._start()

    def _recompute(self, c):
        act, scale, shift = c["activation"], c["input_scale"], c["input_shift"]
        self.inputs = shift + scale * self._z
        _, self.local_gradients = activation_and_gradient(act, self.inputs)
        self.saturated_fraction = saturated_fraction(act, self.inputs)
        self._draw(act, scale, shift)

    def _draw(self, act, scale, shift):
        for ax in (self._ax_curve, self._ax_hist, self._ax_grad, self._ax_frac):
            ax.clear()
        reach = max(6.0, abs(shift) + 3.5 * scale)
        grid = np.linspace(-reach, reach, 400)
        curve, _ = activation_and_gradient(act, grid)
        # One StepPatch per histogram (stairs), not one bar per bin: redraws stay cheap.
        density, edges = np.histogram(self.inputs, bins=60, range=(-reach, reach), density=True)
        self._ax_hist.stairs(density, edges, fill=True, color="tab:orange", alpha=0.35)
        self._ax_hist.set_yticks([])
        self._ax_hist.yaxis.set_label_position("right")  # clear() puts it back on the left
        self._ax_hist.set_ylabel("density of the inputs x", color="tab:orange")
        self._ax_curve.plot(grid, curve, color="tab:blue", lw=2)
        self._ax_curve.set_zorder(self._ax_hist.get_zorder() + 1)
        self._ax_curve.patch.set_visible(False)
        self._ax_curve.set(xlim=(-reach, reach), xlabel="input x (pre-activation)",
                           ylabel=f"{act}(x)", title=f"{act} with its inputs (std {scale:.3g}, mean {shift:.3g})")
        top = MAX_SLOPE[act]
        counts, edges = np.histogram(self.local_gradients, bins=50, range=(0, 1.05 * top))
        self._ax_grad.stairs(counts, edges, fill=True, color="tab:green")
        self._ax_grad.axvline(SATURATION_LEVEL * top, color="k", ls="--", lw=1)
        self._ax_grad.set(xlabel="local gradient f'(x)", ylabel="number of inputs",
                          title=f"Local gradients at {len(self.inputs)} inputs")
        self._ax_frac.bar([0], [self.saturated_fraction], color="tab:red", width=0.6)
        state = "saturated" if act in ("sigmoid", "tanh", "elu") else "inactive"
        if act == "relu" and self.saturated_fraction == 1.0:
            state += "\n(a dead unit)"  # inactive on every input
        self._ax_frac.set(xlim=(-0.6, 0.6), ylim=(0, 1), xticks=[], ylabel="fraction of inputs",
                          title=f"f' < 1% of max:\n{100 * self.saturated_fraction:.1f}% {state}")


def saturation_explorer(activation: str = "sigmoid", input_scale: float = 1.0,
                        input_shift: float = 0.0, num_units: int = 20_000,
                        seed: int = 0) -> SaturationExplorer:
    """Explore how the spread of a unit's inputs saturates it (or, for ReLU, switches it off).

    Inputs ``x = input_shift + input_scale * z`` for ``num_units`` standard normal z (fixed by
    ``seed``). Returns the explorer: display it in a notebook, or drive ``.update(...)`` /
    ``.controls`` headless and read ``.saturated_fraction`` and ``.figure``.
    """
    return SaturationExplorer(activation, input_scale, input_shift, int(num_units), seed)
