"""``matplotlib.pyplot``, imported only when something of it is used.

Every notebook's setup cell imports pyplot, which costs about a third of a second of CPU -- in
the grading kernel and again in the check child, for each of a class's submissions -- while at
grading time the experiments that plot are not run (:mod:`autograder.experiments`) and the
checks never plot. :func:`defer_pyplot` puts a stand-in module in its place: ``rcParams`` is
matplotlib's own (pyplot's is the same object), and touching anything else imports the real
pyplot and hands over to it, so a cell that does plot behaves exactly as before.

Standard library only: this runs inside the sandboxes, before the student's code.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

NAME = "matplotlib.pyplot"


class DeferredPyplot(types.ModuleType):
    def _target(self):
        """The real pyplot, imported (and put in sys.modules in place of this) on first use."""
        real = self.__dict__.get("_module")
        if real is None:
            if sys.modules.get(NAME) is self:
                del sys.modules[NAME]
            real = importlib.import_module(NAME)
            object.__setattr__(self, "_module", real)
        return real

    def __getattr__(self, name):
        if name == "rcParams":
            import matplotlib

            return matplotlib.rcParams
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(self._target(), name)

    def __setattr__(self, name, value):
        setattr(self._target(), name, value)

    def __dir__(self):
        return dir(self._target())


def defer_pyplot() -> None:
    """Install the stand-in, unless pyplot is already imported or matplotlib is missing."""
    if NAME in sys.modules or importlib.util.find_spec("matplotlib") is None:
        return
    sys.modules[NAME] = DeferredPyplot(NAME)
