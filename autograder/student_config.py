"""The student side: what ``nbgrader validate`` and JupyterLab's Validate button say.

Validation runs the *release* notebook, whose hidden test cells hold only a comment, so "all
tests passed" there means "all visible checks passed" -- never full marks. nbgrader's own words
cannot say that: the CLI's success line is hard-coded in ``Validator._print_num_failed`` and the
JupyterLab dialog's in the lab extension. So:

* :func:`configure` (used by ``autograder/nbgrader_config.py``) rewrites the failure warning, and
  replaces the CLI's success line with one that says hidden checks run only at grading;
* ``python -m autograder validate NB`` prints the same, with the hidden points of the notebook;
* the release notebooks themselves say it in their first cell and in every hidden test cell.
"""

from __future__ import annotations

import json
from pathlib import Path

from traitlets.config import Config

from autograder.course import DEFAULT_ROOT

SUCCESS = ("All visible checks passed. That is not full marks: hidden checks run only when your "
           "notebook is graded, on other inputs.\n")
FAILED = ("VISIBLE CHECKS FAILED IN {num_failed} CELL(S)! Fix them before you submit. Hidden "
          "checks run only when your notebook is graded.\n")


def validator_config(config: Config | None = None) -> Config:
    c = config if config is not None else Config()
    c.Validator.failed_warning = FAILED
    c.Execute.timeout = 60
    return c


def _print_num_failed(self, num_failed: int) -> None:
    from textwrap import fill

    if num_failed == 0:
        self.stream.write(SUCCESS)
    else:
        self.stream.write(fill(self.failed_warning.format(num_failed=num_failed), width=self.width))


def configure(c: Config, root: Path | None = None) -> Config:
    """The course configuration for JupyterLab and ``nbgrader`` commands run by hand."""
    from nbgrader.validator import Validator

    root = Path(root or DEFAULT_ROOT)
    c.CourseDirectory.root = str(root)
    c.Exchange.root = str(root / ".exchange")
    validator_config(c)
    Validator._print_num_failed = _print_num_failed
    return c


def hidden_points(path) -> float:
    nb = json.loads(Path(path).read_text())
    total = 0.0
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if str(meta.get("grade_id", "")).endswith("-hidden"):
            total += float(meta.get("points", 0))
    return total
