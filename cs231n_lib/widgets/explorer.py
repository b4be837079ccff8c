"""What every explorer shares: controls over one figure, recomputed and redrawn in place.

A subclass builds ``self.controls`` (name -> ipywidgets control) and ``self.figure`` (a
matplotlib Figure), calls ``self._start()``, and implements ``_recompute(values)``: rerun its
experiment from the controls' values and redraw the figure. Headless, ``update(name=value)``
sets controls from Python and the figure's data can be read back; in a notebook the explorer
displays itself, with the figure shown as a PNG that is replaced at each change.
"""

import io


def show_figure(output, figure, dpi=80):
    """Replace what ``output`` shows with a PNG of ``figure``; a no-op outside IPython.

    A PNG made here looks the same in JupyterLab, classic Jupyter and under any matplotlib
    backend: displaying the Figure object itself needs the inline backend to be active, and in a
    fresh kernel that has not plotted yet it shows as text.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return
    if get_ipython() is None:
        return  # headless: the figure is up to date, there is nowhere to show it
    from IPython.display import Image, clear_output, display

    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=dpi)
    with output:
        clear_output(wait=True)
        display(Image(data=png.getvalue(), format="png"))


def controls_above(controls, output):
    """The explorer's layout: its controls in a wrapping row over the figure.

    Above rather than beside, so a wide figure never squeezes the sliders' tracks and readouts.
    """
    import ipywidgets as widgets

    row = widgets.HBox(list(controls), layout=widgets.Layout(flex_flow="row wrap"))
    return widgets.VBox([row, output])


class Explorer:
    """Base of the explorers: wiring of the controls, one redraw per change, display."""

    def _start(self):
        import ipywidgets as widgets

        self.output = widgets.Output()
        self.redraws = 0
        self._holding = False
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.widget = controls_above(self.controls.values(), self.output)
        self.update()

    def _on_change(self, change):
        self.update()

    def update(self, **values):
        """Set controls by name (headless use), recompute and redraw once."""
        for name in values:
            if name not in self.controls:
                raise ValueError(f"unknown control {name!r}; controls are {sorted(self.controls)}")
        if values:
            # Setting a control fires _on_change; hold it so the redraw happens once at the end.
            self._holding = True
            try:
                for name, value in values.items():
                    self.controls[name].value = value
            finally:
                self._holding = False
        if self._holding:
            return
        self._recompute({name: control.value for name, control in self.controls.items()})
        self.redraws += 1
        show_figure(self.output, self.figure)

    def _recompute(self, values):
        raise NotImplementedError

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
