"""``matplotlib`` and ``matplotlib.pyplot``, imported only when something of them is used.

Every notebook's setup cell imports pyplot, which costs about a third of a second of CPU, and
matplotlib itself, which ``import matplotlib.pyplot`` loads first, a tenth more -- in the grading
kernel and again in the check child, for each of a class's submissions -- while at grading time
the experiments that plot are not run (:mod:`autograder.experiments`) and the checks never plot.
:func:`defer_matplotlib` puts a stand-in module in the place of each. Touching anything of a
stand-in imports the real module and hands over to it, so a cell that does plot, or sets
``rcParams``, behaves exactly as before:

* ``pyplot.rcParams`` is matplotlib's own (pyplot's is the same object): it imports matplotlib,
  not pyplot;
* ``matplotlib.pyplot`` is pyplot's stand-in, so ``import matplotlib.pyplot as plt`` touches
  neither;
* importing a submodule (``import matplotlib.image``) reads the package's ``__path__``, which
  imports the real package first.

Standard library only: this runs inside the sandboxes, before the student's code.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

PACKAGE, NAME = "matplotlib", "matplotlib.pyplot"

# The dunder names of a real module that hand over to it; any other dunder name is looked up on
# the stand-in only, so that introspection imports nothing (ipykernel reads every module's
# ``__file__`` as it starts: the stand-ins carry the real ones).
REAL_DUNDERS = {"__path__", "__version__", "__all__"}


class Deferred(types.ModuleType):
    """A module's stand-in in ``sys.modules``, until something of it is used."""

    def _target(self):
        """The real module, imported (and put in sys.modules in place of this) on first use."""
        real = self.__dict__.get("_module")
        if real is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            object.__setattr__(self, "_module", real)
        return real

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__") and name not in REAL_DUNDERS:
            raise AttributeError(name)
        return getattr(self._target(), name)

    def __setattr__(self, name, value):
        setattr(self._target(), name, value)

    def __dir__(self):
        return dir(self._target())


class DeferredPyplot(Deferred):
    def __getattr__(self, name):
        if name == "rcParams":
            return getattr(sys.modules.get(PACKAGE) or importlib.import_module(PACKAGE), name)
        return super().__getattr__(name)


def defer_matplotlib() -> None:
    """Install the stand-ins, unless matplotlib is already imported or missing."""
    spec = None if PACKAGE in sys.modules else importlib.util.find_spec(PACKAGE)
    if spec is None or NAME in sys.modules:
        return
    package, pyplot = Deferred(PACKAGE), DeferredPyplot(NAME)
    package.__dict__["__file__"] = spec.origin
    pyplot.__dict__["__file__"] = os.path.join(os.path.dirname(spec.origin), "pyplot.py")
    package.__dict__["pyplot"] = pyplot  # as the import system would set it, without handing over
    sys.modules[PACKAGE], sys.modules[NAME] = package, pyplot
