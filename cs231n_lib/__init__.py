"""cs231n_lib: the NumPy library behind the "Training Neural Networks" notebooks.

One module per idea (see ../shared/API.md for the contract):
layers, conv, gradcheck, init, optim, models, solver, data, widgets.
"""

__version__ = "0.1.0"
