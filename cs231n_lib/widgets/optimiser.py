"""The optimiser explorer: update rules racing down a ravine, redrawn as the controls move.

The ravine is the ill-conditioned quadratic ``f(w) = 0.5 * (a * w0**2 + b * w1**2)`` with
``b / a`` the condition number: gently sloped along w0, steep along w1. Plain SGD must keep its
step small enough for the steep direction and so crawls along the shallow one; momentum and the
per-parameter rules (AdaGrad, RMSProp, Adam) are there to fix exactly that.

``optimiser_explorer`` returns an :class:`OptimiserExplorer`; in a notebook it displays itself,
and a test can drive it headless by setting ``explorer.controls[name].value`` and reading
``explorer.trajectories`` and ``explorer.figure``.
"""

from __future__ import annotations

import numpy as np

from cs231n_lib import optim
from cs231n_lib.optim import UPDATE_RULES as RULES
from cs231n_lib.widgets.explorer import Explorer

COLOURS = dict(zip(RULES, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")))


class Ravine:
    """``f(w) = 0.5 * sum(curvatures * w**2)`` for w of shape (2,): minimum 0 at the origin.

    The curvatures are (steepness / condition_number, steepness).
    """

    def __init__(self, condition_number: float = 50.0, steepness: float = 4.0):
        if condition_number < 1:
            raise ValueError(f"condition_number must be >= 1, got {condition_number}")
        if steepness <= 0:
            raise ValueError(f"steepness must be positive, got {steepness}")
        self.condition_number = float(condition_number)
        self.curvatures = np.array([steepness / condition_number, steepness])

    def loss(self, w):
        """w of shape (2,) or (..., 2) -> loss of shape () or (...)."""
        w = np.asarray(w, dtype=np.float64)
        return 0.5 * np.sum(self.curvatures * w**2, axis=-1)

    def grad(self, w):
        """w (2,) -> dloss/dw (2,)."""
        return self.curvatures * np.asarray(w, dtype=np.float64)


def trajectory(rule: str, ravine: Ravine, start=(-4.0, 1.0), steps: int = 60, config=None):
    """Positions visited by ``cs231n_lib.optim.<rule>`` from ``start``: array (steps + 1, 2).

    ``config`` is copied, so the caller's dict is not filled with the rule's state. A run that
    blows up stops early: the remaining rows repeat nothing and the array is shorter.
    """
    if rule not in RULES:
        raise ValueError(f"unknown update rule {rule!r}; choose from {RULES}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    update = getattr(optim, rule)
    config = dict(config or {})
    w = np.array(start, dtype=np.float64)
    if w.shape != (2,):
        raise ValueError(f"start must have shape (2,), got {w.shape}")
    path = [w.copy()]
    for _ in range(steps):
        w, config = update(w, ravine.grad(w), config)
        if not np.all(np.isfinite(w)) or np.max(np.abs(w)) > 1e6:
            break  # diverged: nothing more to draw
        path.append(np.array(w, dtype=np.float64))
    return np.array(path)


def rule_config(rule: str, learning_rate: float, momentum: float, beta1: float, beta2: float):
    """The config dict each rule understands, built from the explorer's shared controls."""
    config = {"learning_rate": learning_rate}
    if rule in ("sgd_momentum", "nesterov_momentum"):
        config["momentum"] = momentum
    elif rule == "rmsprop":
        config["decay_rate"] = beta2
    elif rule == "adam":
        config.update(beta1=beta1, beta2=beta2)
    return config


class OptimiserExplorer(Explorer):
    """Controls, a figure and the trajectories they produce; redraws in place on every change.

    Attributes
    ----------
    controls : dict of ipywidgets (``learning_rate``, ``momentum``, ``beta1``, ``beta2``,
        ``steps``, ``rules``)
    figure : matplotlib Figure with the ravine's contours (left) and loss vs step (right)
    trajectories : {rule: array (n_steps + 1, 2)} for the rules currently selected
    final_losses : {rule: loss at the last finite position}
    """

    def __init__(self, ravine: Ravine, start, learning_rate, momentum, beta1, beta2, steps, rules):
        import ipywidgets as widgets
        from matplotlib.figure import Figure

        self.ravine = ravine
        self.start = np.array(start, dtype=np.float64)
        unknown = [r for r in rules if r not in RULES]
        if unknown:
            raise ValueError(f"unknown update rule(s) {unknown}; choose from {RULES}")
        style = {"description_width": "110px"}
        self.controls = {
            "learning_rate": widgets.FloatLogSlider(
                value=learning_rate, base=10, min=-3, max=1, step=0.05,
                description="learning rate", style=style, readout_format=".3g"),
            "momentum": widgets.FloatSlider(
                value=momentum, min=0.0, max=0.99, step=0.01, description="momentum", style=style),
            "beta1": widgets.FloatSlider(
                value=beta1, min=0.0, max=0.99, step=0.01, description="beta1 (Adam)", style=style),
            "beta2": widgets.FloatSlider(
                value=beta2, min=0.5, max=0.9999, step=0.0001, readout_format=".4f",
                description="beta2 / decay", style=style),
            "steps": widgets.IntSlider(
                value=steps, min=1, max=300, step=1, description="steps", style=style),
            "rules": widgets.SelectMultiple(
                options=RULES, value=tuple(rules), rows=len(RULES), description="update rules",
                style=style),
        }
        self.figure = Figure(figsize=(11, 4.2))
        self._ax_path, self._ax_loss = self.figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
        self._draw_background()
        self._lines = {}
        for rule in RULES:
            (path_line,) = self._ax_path.plot([], [], "o-", ms=2.5, lw=1.2, color=COLOURS[rule], label=rule)
            (loss_line,) = self._ax_loss.semilogy([], [], lw=1.5, color=COLOURS[rule], label=rule)
            self._lines[rule] = (path_line, loss_line)
        self._ax_path.legend(loc="upper right", fontsize=8)
        # Fixed margins: tight_layout would cost a full layout pass (about a second) per explorer.
        self.figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.9, wspace=0.25)

        self.trajectories: dict[str, np.ndarray] = {}
        self.final_losses: dict[str, float] = {}
        self._start()

    def _draw_background(self):
        x = np.linspace(-5, 5, 200)
        y = np.linspace(-1.6, 1.6, 160)
        grid = np.stack(np.meshgrid(x, y), axis=-1)
        levels = np.geomspace(1e-3, self.ravine.loss([5.0, 1.6]), 14)
        self._ax_path.contour(x, y, self.ravine.loss(grid), levels=levels, colors="0.75", linewidths=0.8)
        self._ax_path.plot(0, 0, "k*", ms=10)
        self._ax_path.set(xlim=(-5, 5), ylim=(-1.6, 1.6), xlabel="w0 (shallow direction)",
                          ylabel="w1 (steep direction)",
                          title=f"Trajectories on the ravine (condition number {self.ravine.condition_number:g})")
        self._ax_loss.set(xlabel="step", ylabel="loss f(w) (log scale)", title="Loss per step")

    def _recompute(self, c):
        self.trajectories, self.final_losses = {}, {}
        for rule in RULES:
            path_line, loss_line = self._lines[rule]
            if rule not in c["rules"]:
                path_line.set_data([], [])
                loss_line.set_data([], [])
                continue
            config = rule_config(rule, c["learning_rate"], c["momentum"], c["beta1"], c["beta2"])
            path = trajectory(rule, self.ravine, self.start, c["steps"], config)
            self.trajectories[rule] = path
            losses = self.ravine.loss(path)
            self.final_losses[rule] = float(losses[-1])
            path_line.set_data(path[:, 0], path[:, 1])
            loss_line.set_data(np.arange(len(path)), np.maximum(losses, 1e-12))
        self._ax_loss.set_xlim(0, c["steps"])
        self._ax_loss.set_ylim(1e-12, 10 * float(self.ravine.loss(self.start)))


def optimiser_explorer(learning_rate: float = 0.3, momentum: float = 0.9, beta1: float = 0.9,
                       beta2: float = 0.99, steps: int = 60, rules=RULES,
                       condition_number: float = 50.0, start=(-4.0, 1.0)) -> OptimiserExplorer:
    """Six update rules on a ravine of the given condition number, live under the controls.

    All rules share ``learning_rate``; ``momentum`` drives SGD+momentum and Nesterov, ``beta1``
    and ``beta2`` drive Adam, and ``beta2`` is also RMSProp's decay rate. Returns the explorer
    (display it, or drive ``.controls`` / ``.update(...)`` headless and read ``.trajectories``).
    """
    return OptimiserExplorer(Ravine(condition_number), start, learning_rate, momentum, beta1,
                             beta2, steps, tuple(rules))
