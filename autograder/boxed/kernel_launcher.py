"""The grading kernel's entry point: ``ipykernel_launcher``, with pyplot deferred first.

Run inside the kernel's sandbox as ``python .../boxed/kernel_launcher.py -f CONNECTION``.
"""

import sys

import deferred  # this file's folder, first on sys.path

deferred.defer_pyplot()
del sys.path[0]  # nothing of the grader's folder stays importable for the student's code
sys.modules.pop("deferred", None)

from ipykernel import kernelapp  # noqa: E402

kernelapp.launch_new_instance()
