"""Live explorers for the notebooks (ipywidgets controls over a matplotlib view).

Each explorer lives in its own module and is imported on first use, so the library itself needs
ipywidgets only when a widget is shown.
"""

import importlib

_EXPLORERS = {
    "saturation_explorer": "cs231n_lib.widgets.saturation",
    "init_explorer": "cs231n_lib.widgets.initialisation",
    "optimiser_explorer": "cs231n_lib.widgets.optimiser",
}

__all__ = list(_EXPLORERS)


def __getattr__(name):
    if name in _EXPLORERS:
        return getattr(importlib.import_module(_EXPLORERS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
