"""Models built from the layers: a fully connected net of any depth and a small convnet."""

import importlib

_MODELS = {
    "FullyConnectedNet": "cs231n_lib.models.fc_net",
    "ThreeLayerConvNet": "cs231n_lib.models.cnn",
}

__all__ = list(_MODELS)


def __getattr__(name):
    # Imported on first use, so each model's module stands on its own.
    if name in _MODELS:
        return getattr(importlib.import_module(_MODELS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
