"""The activation saturation explorer: where do the inputs of a unit fall on its activation?

A unit passes back ``dout * f'(x)``. When its inputs ``x`` land where the activation is flat
(|x| large for sigmoid and tanh, x < 0 for ReLU) the local gradient ``f'(x)`` is nearly zero
and the unit stops learning. The explorer draws the activation with the distribution of its
inputs laid over it, the histogram of local gradients, and the fraction of saturated (or dead)
units, for inputs ``x = shift + scale * z`` with z standard normal.

``saturation_explorer`` returns a :class:`SaturationExplorer`; in a notebook it displays itself,
and a test can drive it headless through ``explorer.update(input_scale=...)`` (or by setting
``explorer.controls[name].value``) and read ``explorer.saturated_fraction`` and
``explorer.figure``.
"""

from __future__ import annotations

import numpy as np

from cs231n_lib import layers
from cs231n_lib.widgets.explorer import Explorer

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu")
# The largest slope of each activation: a unit counts as saturated (or dead) where its local
# gradient is below SATURATION_LEVEL times this.
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
    largest slope: saturated units (sigmoid, tanh, ELU's left tail) or dead ones (ReLU, x < 0)."""
    _, grad = activation_and_gradient(activation, np.asarray(x, dtype=np.float64))
    return float(np.mean(grad < SATURATION_LEVEL * MAX_SLOPE[activation]))


class SaturationExplorer(Explorer):
    """Controls, a figure, and the statistics they show; redraws in place on every change.

    Attributes
    ----------
    controls : dict of ipywidgets: ``activation`` (Dropdown), ``input_scale`` (FloatLogSlider,
        the std of the inputs), ``input_shift`` (FloatSlider, their mean)
    figure : matplotlib Figure: the activation with the input histogram (left), the histogram of
        local gradients (middle), the saturated fraction as a bar (right)
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
        self._ax_curve, self._ax_grad, self._ax_frac = self.figure.subplots(
            1, 3, gridspec_kw={"width_ratios": [1.4, 1.2, 0.45]})
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
        self._ax_hist.set_ylabel("density of inputs x", color="tab:orange")
        self._ax_curve.plot(grid, curve, color="tab:blue", lw=2)
        self._ax_curve.set_zorder(self._ax_hist.get_zorder() + 1)
        self._ax_curve.patch.set_visible(False)
        self._ax_curve.set(xlim=(-reach, reach), xlabel="input x (pre-activation)",
                           ylabel=f"{act}(x)", title=f"{act} with its inputs (std {scale:.3g}, mean {shift:.3g})")
        top = MAX_SLOPE[act]
        counts, edges = np.histogram(self.local_gradients, bins=50, range=(0, 1.05 * top))
        self._ax_grad.stairs(counts, edges, fill=True, color="tab:green")
        self._ax_grad.axvline(SATURATION_LEVEL * top, color="k", ls="--", lw=1)
        self._ax_grad.set(xlabel="local gradient f'(x)", ylabel="number of units",
                          title=f"Local gradients of {len(self.inputs)} units")
        self._ax_frac.bar([0], [self.saturated_fraction], color="tab:red", width=0.6)
        self._ax_frac.set(xlim=(-0.6, 0.6), ylim=(0, 1), xticks=[], ylabel="fraction of units",
                          title=f"saturated/dead\n{100 * self.saturated_fraction:.1f}%")
        if self.redraws == 0:  # lay out once: tight_layout costs more than the whole redraw
            self.figure.tight_layout()


def saturation_explorer(activation: str = "sigmoid", input_scale: float = 1.0,
                        input_shift: float = 0.0, num_units: int = 20_000,
                        seed: int = 0) -> SaturationExplorer:
    """Explore how the spread of a unit's inputs saturates (or kills) it.

    Inputs ``x = input_shift + input_scale * z`` for ``num_units`` standard normal z (fixed by
    ``seed``). Returns the explorer: display it in a notebook, or drive ``.update(...)`` /
    ``.controls`` headless and read ``.saturated_fraction`` and ``.figure``.
    """
    return SaturationExplorer(activation, input_scale, input_shift, int(num_units), seed)
