"""cs231n_lib: the NumPy library behind the "Training Neural Networks" notebooks.

One module per idea: layers, conv, gradcheck, init, optim, models, solver, data, widgets.
`use(...)` (from registry) hands a notebook's own functions to the library's models, Solver
and widgets.
"""

from cs231n_lib.registry import reset, use

__version__ = "0.1.0"
