"""``python -m autograder.worker JOB.json``: nbgrader autograde of ONE submission in a scratch course.

Started by :func:`autograder.grading.grade_submission`. The worker is the grader's own code and
runs no student code itself: nbgrader's pipeline runs here, but the student's notebook executes
in a sandboxed kernel (:mod:`autograder.kernel`) and the student's functions are called by the
checks in a sandboxed child (:mod:`autograder.checks`), each in a writable folder of its own
under the scratch course (``box-kernel``, ``box-checks``). The scratch course itself -- the
gradebook copy, the autograded notebook, this worker's report -- is never mounted in a sandbox.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback
from pathlib import Path

from autograder.protocol import WorkerJob, write_report


def autograde_config(job: WorkerJob):
    from autograder.course import base_config
    from autograder.preprocessors import autograde_preprocessors

    root, options = Path(job.root), job.options
    c = base_config(root, f"sqlite:///{root / 'gradebook.db'}")
    c.Autograde.autograde_preprocessors = autograde_preprocessors()
    # nbconvert validates the whole notebook after each of the dozen preprocessors; once, after
    # the last, is enough (the graded notebook is still validated whole before it is written).
    c.NotebookExporter.optimistic_validation = True
    for section in ("Execute", "GuardedExecute"):
        c[section].timeout = int(options["cell_timeout"])
        c[section].iopub_timeout = 5
        c[section].shutdown_kernel = "immediate"  # nothing to save: no graceful wait
        c[section].startup_timeout = 120
        c[section].kernel_manager_class = "autograder.kernel.SandboxedKernelManager"
    c.GuardedExecute.run_experiments = bool(options.get("run_experiments", False))
    c.SandboxedKernelManager.sandbox = {**job.sandbox, "workdir": str(root / "box-kernel")}
    c.LimitOutput.max_lines = int(options["max_output_lines"])
    c.LimitOutput.max_traceback = 100
    c.OutsideChecks.timeout = float(options["cell_timeout"])
    c.OutsideChecks.exercise_modules = list(options["exercise_modules"])
    c.OutsideChecks.sandbox = {**job.sandbox, "workdir": str(root / "box-checks"),
                               "pythonpath": job.sandbox.get("checks_pythonpath", job.sandbox["pythonpath"])}
    c.SaveReport.report_dir = str(root)
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


def warm_up() -> None:
    """Import what every submission needs, once (autograder.warm forks a worker from here)."""
    import nbclient  # noqa: F401
    import nbconvert  # noqa: F401
    import nbgrader.api  # noqa: F401
    import nbgrader.apps  # noqa: F401
    import nbgrader.converters  # noqa: F401

    import autograder.checks  # noqa: F401
    import autograder.kernel  # noqa: F401
    import autograder.preprocessors  # noqa: F401
    from autograder.exercises import catalogue

    catalogue()
    # Caches every worker would otherwise fill again: nbformat's compiled schema (each output a
    # kernel sends is validated), the kernel spec lookup, and the gradebook's database mappings.
    import numpy.random  # noqa: F401  (the checks draw their inputs)
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager

    with throwaway_gradebook() as gradebook:
        gradebook.students

    nbformat.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="")])]))
    # nbconvert validates each converted notebook with extra properties allowed: another schema.
    nbformat.validator.get_validator(relax_add_props=True)
    KernelSpecManager().get_kernel_spec("python3")
    validate_metadata_with_built_validators()


def throwaway_gradebook():
    """An empty gradebook in memory, to build the database mappings once.

    A new database makes nbgrader ask for the schema's version by running ``alembic heads`` in a
    subprocess: 3 s of CPU, more than the rest of the warm-up, for a label nothing reads here
    (this database is thrown away; the gradebooks graded into are copies, and carry theirs).
    """
    from unittest import mock

    import nbgrader.api

    with mock.patch.object(nbgrader.api, "get_alembic_version", return_value="throwaway"):
        return nbgrader.api.Gradebook("sqlite://")


def quick_scratch_gradebook() -> None:
    """The scratch course's gradebook, opened once and written without waiting for the disk.

    The worker's only database is the scratch course's copy of the gradebook, thrown away once
    the report is written. nbgrader opens it anew in each of its steps, ten times a submission,
    and every new SQLAlchemy engine compiles each query afresh: here the steps share one engine
    per database. And a crash of the worker loses nothing that matters, while each of the ~40
    commits of an autograde would otherwise wait for the disk (and create and delete a journal
    file): every SQLite connection this process opens skips both.
    """
    import nbgrader.api
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import Engine

    engines = {}

    def shared_engine(url, **options):
        key = (str(url), tuple(sorted(options.items())))
        if key not in engines:  # Gradebook.close disposes of the connections, not the engine
            engines[key] = create_engine(url, **options)
        return engines[key]

    nbgrader.api.create_engine = shared_engine

    @event.listens_for(Engine, "connect")
    def no_sync(connection, _record):
        if type(connection).__module__.startswith("sqlite3"):
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute("PRAGMA journal_mode=MEMORY")


def validate_metadata_with_built_validators() -> None:
    """nbgrader checks the metadata of every graded cell with ``jsonschema.validate``, which
    first checks the schema itself against JSON Schema's meta-schema: 9 ms a cell, a seventh of a
    worker's CPU time on notebook 00. Here each schema is checked and its validator built once,
    and a cell's metadata is validated exactly as before (the same error, jsonschema's best match).
    """
    import json
    from types import SimpleNamespace

    import jsonschema
    from nbgrader.nbgraderformat import common

    built = {}

    def validate(instance, schema):
        key = json.dumps(schema, sort_keys=True)
        if key not in built:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            built[key] = cls(schema)
        error = jsonschema.exceptions.best_match(built[key].iter_errors(instance))
        if error is not None:
            raise error

    common.jsonschema = SimpleNamespace(validate=validate)


def main(job_path: str, started=None) -> int:
    """Grade the job's submission; ``started``: what this worker's spare started for it
    (:mod:`autograder.spare`), adopted where it was started alike."""
    from autograder import spare
    from autograder.course import Course
    from autograder.isolation import private_mounts

    private_mounts()  # first, while this process has one thread: each sandbox's folder a tmpfs

    quick_scratch_gradebook()
    job = WorkerJob.read(job_path)
    os.environ.update(job.env)  # this worker's own process only: it grades one submission
    root = Path(job.root)
    out = {"success": False}
    # The worker decodes what the sandboxes send: cap it too, above a sandbox's own cap.
    cap = (int(job.options["memory_mb"]) + 2048) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        config = autograde_config(job)
        spare.adopt(config, started)
        api = Course(root).api(config)
        result = api.autograde(job.assignment, job.student, force=True, create=True)
        out["success"] = bool(result["success"])
        if not result["success"]:
            text = (result.get("error") or "") + "\n" + (result.get("log") or "")
            out["error"] = text[-4000:]
        out.update(recorded_grades(f"sqlite:///{root / 'gradebook.db'}", job.assignment, job.student))
        out["prestarted"] = list(spare.adopted)
        out["outside"] = {p.name[:-len(".outside.json")]: json.loads(p.read_text())
                          for p in root.glob("*.outside.json")}
    except MemoryError:
        out["memory"] = True
        out["error"] = "grading this submission ran out of memory"
    except Exception:
        out["error"] = traceback.format_exc()[-4000:]
    finally:
        from autograder.isolation import release_groups

        spare.release()
        release_groups(os.getpid())  # the sandboxes' control groups, and anything left in them
    write_report(root, out)
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    code = main(sys.argv[1])
    sys.stdout.flush()
    os._exit(code)
