"""How an explorer puts its figure on screen: one PNG in an ipywidgets Output, replaced in place."""

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
