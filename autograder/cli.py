"""``python -m autograder [--course DIR] {release,grade,feedback,export,demo,validate}``.

* ``release [A...]``  student versions of ``notebooks/<A>/`` into ``DIR/release/`` (nbgrader
  generate_assignment; every assignment with a notebook when none is named), and into the
  exchange when ``DIR/course.toml`` names one (a course on the hub);
* ``grade [A...]``    every submission under ``DIR/submitted/<student>/<A>/``: autograde, feedback
  into ``DIR/feedback/``, ``DIR/grades.csv`` (nbgrader export), and a per-student table;
* ``feedback [A...]`` / ``export``: those two steps on their own (``feedback --release`` also
  puts the feedback in the exchange; ``export`` also writes ``DIR/exports/``, exports.py);
* ``collect [A...]``  the submissions in nbgrader's exchange into ``DIR/submitted/`` (exchange.py);
* ``demo [A...]``     release, hand in a correct, a blank and a partly wrong student, grade;
* ``validate NB``     the student's check: nbgrader's Validator, with plain words about hidden checks.

``grade`` exits 0 when grading completed, whatever the students scored; non-zero only when
grading itself failed (for some submission the grader could not record a verdict of its own).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from pathlib import Path

from autograder.course import DEFAULT_ROOT, Course


def _options(args):
    from autograder.grading import GradingOptions

    return GradingOptions(cell_timeout=args.timeout, submission_timeout=args.submission_timeout,
                          memory_mb=args.memory_mb, allow_network=args.allow_network,
                          max_output_lines=args.max_output_lines, sandbox=not args.no_sandbox,
                          exercise_modules=tuple(str(Path(f).resolve()) for f in args.exercises),
                          pythonpath=tuple(str(Path(d).resolve()) for d in args.pythonpath),
                          run_experiments=args.run_experiments)


def _executor(args):
    from autograder.parallel import make_executor

    return make_executor(workers=args.workers, scheduler=getattr(args, "scheduler", None))


def _grade(course: Course, assignments, args) -> int:
    from autograder.grading import format_table, grade_class

    from autograder.isolation import NO_SANDBOX_WARNING

    if args.no_sandbox:
        print(f"WARNING: {NO_SANDBOX_WARNING}", file=sys.stderr)
    start = time.monotonic()
    with _executor(args) as executor:
        results = grade_class(course, assignments or None, _options(args), executor,
                              students=getattr(args, "student", None) or None)
    print(format_table(results))
    elapsed = time.monotonic() - start
    print(f"\n{len(results)} submission(s) graded in {elapsed:.1f} s; feedback in "
          f"{course.root / 'feedback'}; grades in {course.root / 'grades.csv'}")
    errors = [r for r in results if r.status == "error"]
    if errors:
        print(f"grading itself failed for {len(errors)} submission(s): see the reason column",
              file=sys.stderr)
        return 1
    return 0


def validate(path: str) -> int:
    """Run the visible checks of a student notebook, and say what they do not cover."""
    from nbgrader.validator import Validator

    from autograder.student_config import hidden_points, validator_config

    results = Validator(config=validator_config()).validate(path)
    hidden = hidden_points(path)
    if results.get("type_changed") or results.get("changed"):
        print("Some locked cells were changed or had their type changed; grading uses the "
              "original cells, so the results below may not be what grading sees.")
    failed = results.get("failed", [])
    for cell in failed:
        print("-" * 70)
        print(cell["source"])
        print(re.sub(r"\x1b\[[0-9;]*m", "", cell["raw_error"]))
    print("-" * 70)
    if failed:
        print(f"{len(failed)} cell(s) FAILED (visible checks, or written answers left empty): "
              "fix them before you submit.")
    else:
        print("All visible checks passed.")
    print(f"That is not full marks: hidden checks ({hidden:g} points) run only when your "
          "notebook is graded, on other inputs.")
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description="Release, grade and give feedback on the course's notebooks with nbgrader.")
    # The hub sets AUTOGRADER_COURSE in the instructor's server, so its terminals need no --course.
    parser.add_argument("--course", default=os.environ.get("AUTOGRADER_COURSE", str(DEFAULT_ROOT)),
                        help="course folder (default: $AUTOGRADER_COURSE, else %(default)s)")
    parser.add_argument("--notebooks", default=None, help="source notebooks folder (default: notebooks/)")
    parser.add_argument("--db-url", default=None, help="gradebook SQLAlchemy URL (default: SQLite in the course)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("release", "grade", "feedback", "demo"):
        p = sub.add_parser(name)
        p.add_argument("assignments", nargs="*")
        if name == "release":
            p.add_argument("--all-stubs", action="store_true",
                           help="every exercise of the library a stub in every edition "
                                "(default: only those of the assignment and later ones)")
        if name in ("grade", "feedback"):
            p.add_argument("--student", action="append", default=[], metavar="ID",
                           help="only this student (repeatable); the others' grades, reports "
                                "and feedback are left as they are")
        if name == "feedback":
            p.add_argument("--release", action="store_true",
                           help="also release the feedback to the students through nbgrader's "
                                "exchange (they fetch it in the Assignments tab)")
        if name in ("grade", "demo"):
            p.add_argument("--timeout", type=int, default=30, help="seconds per cell (default 30)")
            p.add_argument("--submission-timeout", type=float, default=900,
                           help="wall-clock seconds per submission (default 900)")
            p.add_argument("--memory-mb", type=int, default=3072, help="memory cap per submission")
            p.add_argument("--max-output-lines", type=int, default=1000)
            p.add_argument("--allow-network", action="store_true",
                           help="let student code reach the network (it stays in its sandbox)")
            p.add_argument("--no-sandbox", action="store_true",
                           help="grade without bubblewrap: student code runs with YOUR rights "
                                "(a warning is printed and recorded in every result)")
            p.add_argument("--run-experiments", action="store_true",
                           help="also run the notebooks' experiment cells (plots, training runs); "
                                "they earn no points, so by default the feedback says 'not run'")
            p.add_argument("--exercises", action="append", default=[], metavar="FILE",
                           help="an extra exercise module file (NOTEBOOK, EXERCISES); repeatable")
            p.add_argument("--pythonpath", action="append", default=[], metavar="DIR",
                           help="a folder added to the grading kernels' import path; repeatable")
            p.add_argument("--workers", type=int, default=None,
                           help="submissions graded at once (default: the number of cores)")
            p.add_argument("--scheduler", default=None,
                           help="Dask scheduler address or file ('local' for a local cluster)")
    sub.add_parser("export")
    p = sub.add_parser("collect", help="the latest submission of every student from the exchange "
                                       "into DIR/submitted/ (with its timestamp)")
    p.add_argument("assignments", nargs="*", help="default: every released assignment")
    # -- bench (engineer SCALE, autograder/bench.py) --------------------------------------------
    p = sub.add_parser("bench", help="grade a generated class serially and on all workers; "
                                     "print the throughput and where the time goes")
    p.add_argument("assignments", nargs="*", help="default: the first notebook")
    p.add_argument("--course", dest="whole_course", action="store_true",
                   help="every notebook, and the projected time for a class of 300")
    p.add_argument("--students", type=int, default=24, help="class size (default 24)")
    p.add_argument("--workers", type=int, default=None, help="default: the number of cores")
    p.add_argument("--scheduler", default=None, help="grade the parallel run on this Dask cluster")
    p.add_argument("--keep", default=None, metavar="DIR",
                   help="build the courses in DIR and keep them (default: a temporary folder)")
    # -----------------------------------------------------------------------------------------
    p = sub.add_parser("validate")
    p.add_argument("notebook")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    course = Course(args.course, args.notebooks, args.db_url)
    try:
        return _run(course, args)
    except Exception as exc:  # grading itself failed: say why in one line, exit non-zero
        if args.verbose:
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _run(course: Course, args) -> int:
    if args.command == "validate":
        return validate(args.notebook)
    if args.command == "release":
        released = course.release(args.assignments or None, all_stubs=args.all_stubs)
        for a in released:
            print(f"released {a} -> {course.root / 'release' / a} (library: {course.edition_path(a)})")
        from autograder.deadlines import load_settings

        settings = load_settings(course.root)
        if settings.exchange:
            from autograder.exchange import publish

            publish(course, released)
            print(f"published to the exchange {settings.exchange} (course {settings.course_id}): "
                  f"{', '.join(released)}")
        return 0
    if args.command == "collect":
        from autograder.checks import printable
        from autograder.exchange import collect

        found = collect(course, args.assignments or course.released())
        for student, assignment, stamp in found:
            print(printable(f"{assignment}  {student}  submitted {stamp}", 1000))
        print(f"{len(found)} submission(s) in {course.root / 'submitted'}")
        return 0
    if args.command == "grade":
        return _grade(course, args.assignments, args)
    if args.command == "feedback":
        from autograder.grading import load_results, write_feedback

        results = [r for r in load_results(course, args.assignments or None)
                   if not args.student or r.student in args.student]
        problems = write_feedback(course, results)
        print("\n".join(problems) or f"feedback in {course.root / 'feedback'}")
        if args.release and not problems:
            from autograder.exchange import release_feedback

            release_feedback(course, [(r.student, r.assignment) for r in results])
            print(f"feedback released to {len(results)} submission(s) through the exchange")
        return 1 if problems else 0
    if args.command == "export":
        from autograder.grading import export_grades, format_table, load_results

        print(format_table(load_results(course)))
        print(f"grades in {export_grades(course)}; per assignment and for Canvas in "
              f"{course.root / 'exports'}")
        return 0
    if args.command == "bench":
        from autograder.bench import run

        return run(course.notebooks, args.assignments or None, args.students, args.workers,
                   args.scheduler, args.keep, whole_course=args.whole_course)
    if args.command == "demo":
        from autograder.classroom import build_demo_class

        assignments = course.release(args.assignments or None)
        students = build_demo_class(course, assignments)
        print(f"class: {', '.join(students)} on {', '.join(assignments)}")
        return _grade(course, assignments, args)
    return 2
