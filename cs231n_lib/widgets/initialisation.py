"""The initialisation explorer: activations and gradients of a deep net at its first step.

Unit-Gaussian data go through ``depth`` bias-free layers of ``width`` units,
``h_l = act(h_{l-1} @ W_l)``, with weights drawn by the chosen scheme; a random upstream gradient
then comes back down. The view shows each layer's activation mean and std, the histograms of
every layer's activations (one row per layer), and the norm of each weight gradient. A good
scheme keeps all three roughly level with depth.

``init_explorer`` returns an :class:`InitExplorer`; in a notebook it displays itself, and a test
can drive it headless through ``explorer.update(scheme=...)`` (or ``explorer.controls``) and read
``explorer.layer_stds``, ``explorer.grad_norms`` and ``explorer.figure``.
"""

from __future__ import annotations

import numpy as np

from cs231n_lib import stats
from cs231n_lib.widgets.explorer import Explorer

SCHEMES = (("std 0.01", "small"), ("std 1", "large"), ("Xavier", "xavier"), ("He", "he"),
           ("custom std", "std"))
ACTIVATIONS = ("tanh", "relu")
BINS = 41
# The gradient panel keeps these limits whatever the controls, so that a change of scheme moves
# the curve instead of the axis. They hold every preset scheme at the default depth and width;
# a norm beyond them is drawn as a triangle on the border.
GRAD_LIMITS = (1e-10, 1e10)


class InitExplorer(Explorer):
    """Controls, a figure, and the per-layer statistics they show; redraws in place.

    Attributes
    ----------
    controls : dict of ipywidgets: ``depth``, ``width`` (IntSliders), ``activation``,
        ``scheme`` (Dropdowns), ``std`` (FloatLogSlider, used by the 'custom std' scheme)
    figure : matplotlib Figure: mean and std per layer (left), activation histograms, one row
        per layer (middle), weight-gradient norm per layer on the fixed scale GRAD_LIMITS (right)
    layer_means, layer_stds, grad_norms : arrays (depth,) behind the left and right panels
    histograms : array (depth, BINS), the fraction of each layer's units in each bin
    hist_range : (low, high) of the histogram bins
    """

    def __init__(self, depth, width, activation, scheme, std, num_examples, seed):
        import ipywidgets as widgets
        from matplotlib.figure import Figure

        schemes = [value for _, value in SCHEMES]
        if scheme not in schemes:
            raise ValueError(f"unknown scheme {scheme!r}; choose from {schemes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {ACTIVATIONS}")
        self.num_examples, self.seed = num_examples, seed
        style = {"description_width": "80px"}
        self.controls = {
            "depth": widgets.IntSlider(value=depth, min=1, max=20, description="depth", style=style),
            "width": widgets.IntSlider(value=width, min=10, max=1000, step=10, description="width",
                                       style=style),
            "activation": widgets.Dropdown(options=ACTIVATIONS, value=activation,
                                           description="activation", style=style),
            "scheme": widgets.Dropdown(options=SCHEMES, value=scheme, description="init",
                                       style=style),
            "std": widgets.FloatLogSlider(value=std, base=10, min=-3, max=1, step=0.05,
                                          readout_format=".3g", description="custom std",
                                          style=style),
        }
        self.figure = Figure(figsize=(13, 4))
        self._ax_stats, self._ax_hist, self._ax_grad = self.figure.subplots(1, 3)
        self._colorbar = None
        self._start()

    def _recompute(self, c):
        result = stats.deep_net_experiment(c["depth"], c["width"], c["activation"], c["scheme"],
                                           std=c["std"], num_examples=self.num_examples,
                                           seed=self.seed)
        self.layer_means, self.layer_stds = result["means"], result["stds"]
        self.grad_norms = result["grad_norms"]
        if c["activation"] == "tanh":
            self.hist_range = (-1.0, 1.0)
        else:
            self.hist_range = (0.0, 4.0 * float(max(self.layer_stds.max(), 1e-12)))
        self.histograms = np.array([
            np.histogram(h, bins=BINS, range=self.hist_range)[0] / h.size for h in result["hs"]])
        self._draw(c)

    def _draw(self, c):
        for ax in (self._ax_stats, self._ax_hist, self._ax_grad):
            ax.clear()
        layers_ = np.arange(1, c["depth"] + 1)
        label = dict((v, k) for k, v in SCHEMES)[c["scheme"]]
        if c["scheme"] == "std":
            label = f"std {c['std']:.3g}"
        self._ax_stats.plot(layers_, self.layer_stds, "o-", label="std")
        self._ax_stats.plot(layers_, np.abs(self.layer_means), "s--", label="|mean|")
        self._ax_stats.set_yscale("symlog", linthresh=1e-6)
        self._ax_stats.set(xlabel="layer", ylabel="activation statistic",
                           title=f"{c['activation']}, {label}: per-layer mean and std")
        self._ax_stats.legend(fontsize=8)
        image = self._ax_hist.imshow(
            self.histograms, aspect="auto", origin="lower", cmap="viridis",
            extent=(*self.hist_range, 0.5, c["depth"] + 0.5))
        if self._colorbar is None:
            self._colorbar = self.figure.colorbar(image, ax=self._ax_hist)
        else:
            self._colorbar.update_normal(image)
        self._colorbar.set_label("fraction of the layer's units")
        self._ax_hist.set(xlabel="activation value", ylabel="layer",
                          title="Activation histogram of each layer")
        low, high = GRAD_LIMITS
        self._ax_grad.semilogy(layers_, np.maximum(self.grad_norms, 1e-300), "o-", color="tab:red")
        off = ""
        for outside, edge, marker in ((self.grad_norms < low, low, "v"),
                                      (self.grad_norms > high, high, "^")):
            if outside.any():  # (an empty unclipped line would upset the layout)
                self._ax_grad.plot(layers_[outside], np.full(outside.sum(), edge), marker,
                                   color="tab:red", mfc="none", ms=9, clip_on=False)
                off = ", triangles: off the scale"
        self._ax_grad.set(xlabel="layer", ylabel="||dL/dW|| (Frobenius)", ylim=GRAD_LIMITS,
                          xlim=(0.5, c["depth"] + 0.5),
                          title=f"Weight-gradient norm per layer{off}")
        if self.redraws == 0:  # lay out once: tight_layout costs more than the whole redraw
            self.figure.tight_layout()


def init_explorer(depth: int = 10, width: int = 500, activation: str = "tanh",
                  scheme: str = "xavier", std: float = 0.01, num_examples: int = 200,
                  seed: int = 0) -> InitExplorer:
    """Explore how the initial weights shape a deep net's activations and gradients.

    ``scheme`` is 'small' (std 0.01), 'large' (std 1), 'xavier', 'he', or 'std' (the ``std``
    control). Returns the explorer: display it, or drive ``.update(...)`` / ``.controls``
    headless and read ``.layer_stds``, ``.grad_norms``, ``.histograms`` and ``.figure``.
    """
    return InitExplorer(int(depth), int(width), activation, scheme, float(std), int(num_examples),
                        seed)
