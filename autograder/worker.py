"""``python -m autograder.worker JOB.json``: nbgrader autograde of ONE submission in a scratch course.

Started by :func:`autograder.grading.grade_submission` inside the limits it sets (memory cap,
private network namespace, process-group kill on timeout). The scratch course holds a copy of the
student-free template gradebook, the assignment's source, and the one restored submission; this
process writes only there, then reports the grades it recorded in ``result.json``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


def autograde_config(root: Path, options: dict):
    from autograder.course import base_config
    from autograder.preprocessors import autograde_preprocessors

    c = base_config(root, f"sqlite:///{root / 'gradebook.db'}")
    c.Autograde.autograde_preprocessors = autograde_preprocessors()
    for section in ("Execute", "GuardedExecute"):
        c[section].timeout = int(options["cell_timeout"])
        c[section].iopub_timeout = 5
        c[section].shutdown_kernel = "immediate"  # nothing to save: no graceful wait
        c[section].startup_timeout = 120
    c.LimitOutput.max_lines = int(options["max_output_lines"])
    c.LimitOutput.max_traceback = 100
    c.OutsideChecks.timeout = float(options["cell_timeout"])
    c.OutsideChecks.exercise_modules = list(options["exercise_modules"])
    c.OutsideChecks.report_dir = str(root)
    return c


def recorded_grades(db_url: str, assignment: str, student: str) -> dict:
    from nbgrader.api import Gradebook

    found = {}
    with Gradebook(db_url) as gb:
        submission = gb.find_submission(assignment, student)
        for nb in submission.notebooks:
            found[nb.name] = {
                "grades": {g.name: {"auto_score": g.auto_score, "max_score": g.max_score,
                                    "needs_manual_grade": bool(g.needs_manual_grade)}
                           for g in nb.grades},
                "comments": {c.name: c.auto_comment for c in nb.comments},
            }
        timestamp = submission.timestamp.isoformat() if submission.timestamp else None
    return {"notebooks": found, "timestamp": timestamp}


def main(job_path: str) -> int:
    from autograder.course import Course

    job = json.loads(Path(job_path).read_text())
    root = Path(job["root"])
    out = {"success": False}
    try:
        config = autograde_config(root, job["options"])
        api = Course(root).api(config)
        result = api.autograde(job["assignment"], job["student"], force=True, create=True)
        out["success"] = bool(result["success"])
        if not result["success"]:
            text = (result.get("error") or "") + "\n" + (result.get("log") or "")
            out["error"] = text[-4000:]
        out.update(recorded_grades(f"sqlite:///{root / 'gradebook.db'}", job["assignment"], job["student"]))
    except Exception:
        out["error"] = traceback.format_exc()[-4000:]
    tmp = root / "result.json.tmp"
    tmp.write_text(json.dumps(out))
    tmp.rename(root / "result.json")
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    code = main(sys.argv[1])
    sys.stdout.flush()
    os._exit(code)
