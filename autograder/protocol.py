"""What the grader and its worker say to each other about one submission.

:func:`autograder.grading.grade_submission` (the grader) starts ``python -m autograder.worker``
(the worker) on a scratch course. Both are trusted code, and neither folder they exchange
through is visible inside a sandbox: the grader writes the job as ``job.json``, the worker writes
its report as ``result.json`` in the scratch course's root, which no sandbox mounts (the kernel's
and the check child's writable folders are subfolders of their own, ``box-*``).

The report is still parsed strictly (:func:`read_report`): a worker that crashed half-way, or a
bug that writes the wrong shape of data, must end as an ``error`` record with a reason, never as
a grade.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

JOB_FILE = "job.json"
REPORT_FILE = "result.json"
MAX_REPORT_BYTES = 16 * 1024 * 1024
PRESTARTED = ("kernel", "check child")   # what a worker may adopt from its spare (autograder.spare)


class BadReport(ValueError):
    """The worker's report is missing or malformed."""


@dataclass(frozen=True)
class WorkerJob:
    root: str                 # the scratch course
    student: str
    assignment: str
    options: dict             # GradingOptions as a dict
    sandbox: dict             # settings shared by the submission's sandboxes (readable, limits...)
    env: dict = field(default_factory=dict)   # variables the worker sets for itself (data caches)

    def write(self, folder: Path) -> Path:
        path = folder / JOB_FILE
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def read(cls, path: str | os.PathLike) -> "WorkerJob":
        return cls(**json.loads(Path(path).read_text()))


def write_report(folder: Path, report: dict) -> None:
    """Atomically: the grader never sees half a report."""
    tmp = folder / (REPORT_FILE + ".tmp")
    tmp.write_text(json.dumps(report))
    os.replace(tmp, folder / REPORT_FILE)


def _score(value, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadReport(f"{where}: not a number: {value!r:.80}")
    return float(value)


def read_report(folder: Path) -> dict:
    """The worker's report, checked field by field: {success, error, timestamp, notebooks}."""
    path = folder / REPORT_FILE
    if not path.is_file():
        raise BadReport("the worker wrote no report")
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise BadReport("the worker's report is too large")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadReport(f"the worker's report is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("success"), bool):
        raise BadReport("the worker's report has no success flag")
    report = {"success": data["success"], "error": str(data.get("error") or "")[-4000:],
              "memory": data.get("memory") is True,
              "timestamp": None, "notebooks": {}}
    if isinstance(data.get("timestamp"), str):
        report["timestamp"] = data["timestamp"][:40]
    notebooks = data.get("notebooks", {})
    if not isinstance(notebooks, dict):
        raise BadReport("notebooks: not a mapping")
    for name, nb in notebooks.items():
        if not isinstance(nb, dict) or not isinstance(nb.get("grades"), dict) \
                or not isinstance(nb.get("comments", {}), dict):
            raise BadReport(f"notebook {name!r:.80}: malformed")
        grades = {}
        for gid, g in nb["grades"].items():
            if not isinstance(g, dict):
                raise BadReport(f"grade {gid!r:.80}: malformed")
            grades[str(gid)] = {"auto_score": _score(g.get("auto_score"), gid),
                                "max_score": _score(g.get("max_score"), gid) or 0.0,
                                "needs_manual_grade": bool(g.get("needs_manual_grade"))}
        comments = {str(k): (None if v is None else str(v)[:4000]) for k, v in nb.get("comments", {}).items()}
        report["notebooks"][str(name)] = {"grades": grades, "comments": comments}
    report["outside"] = _outside(data.get("outside", {}))
    prestarted = data.get("prestarted", [])
    report["prestarted"] = [p for p in PRESTARTED if isinstance(prestarted, list) and p in prestarted]
    return report


def _strings(value, where: str, cap: int = 2000) -> list[str]:
    if not isinstance(value, list):
        raise BadReport(f"{where}: not a list")
    return [str(v)[:cap] for v in value[:200]]


def _outside(data) -> dict:
    """Per notebook: notes, and per exercise the hints, why it earned nothing, a summary."""
    if not isinstance(data, dict):
        raise BadReport("outside: not a mapping")
    found = {}
    for name, nb in data.items():
        if not isinstance(nb, dict) or not isinstance(nb.get("exercises", {}), dict):
            raise BadReport(f"outside {name!r:.80}: malformed")
        exercises = {}
        for ex, v in nb.get("exercises", {}).items():
            if not isinstance(v, dict):
                raise BadReport(f"outside {ex!r:.80}: malformed")
            exercises[str(ex)] = {"hints": _strings(v.get("hints", []), ex),
                                  "zero_reason": str(v.get("zero_reason") or "")[:2000],
                                  "summary": str(v.get("summary") or "")[:2000]}
        found[str(name)] = {"notes": _strings(nb.get("notes", []), name), "exercises": exercises}
    return found
