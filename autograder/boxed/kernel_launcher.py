"""The grading kernel's entry point: ``ipykernel_launcher``, matplotlib deferred, no debugger.

Run inside the kernel's sandbox as ``python .../boxed/kernel_launcher.py -f CONNECTION``.

ipykernel imports debugpy at start-up, to offer a debugger to a front end: 0.2 s of CPU, a
third of what the kernel's start costs, for a feature a grading kernel never serves. With
debugpy unimportable ipykernel starts without it (its ``kernel_info`` then lists no debugger).
This saves time; it is no barrier: code that removes the ``None`` from ``sys.modules`` imports
debugpy as before, and gains nothing by it in a sandbox without a network.
"""

import sys

import deferred  # this file's folder, first on sys.path

deferred.defer_matplotlib()
del sys.path[0]  # nothing of the grader's folder stays importable for the student's code
sys.modules.pop("deferred", None)
sys.modules["debugpy"] = None  # makes ``import debugpy`` raise ImportError

from ipykernel import kernelapp  # noqa: E402

kernelapp.launch_new_instance()
