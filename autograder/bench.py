"""``python -m autograder bench``: how fast a class is graded, serially and on every core.

A class of K students (correct, blank and partly wrong submissions in turn, built from the source
notebooks) hands in the chosen assignments in a throw-away course. The class is graded twice
from the same starting point -- once serially, once with all workers (a local process pool, or a
Dask cluster with ``--scheduler``) -- and the two gradings must agree. Printed:

* throughput: submissions per minute, per minute per core, and the speed-up over serial, both
  for the grading itself (the part that runs in parallel) and end to end (with the feedback
  pages and the CSV export, which the single writer produces afterwards);
* for each notebook, where a submission's grading time goes (the submission's wall time inside
  ``grade_submission``, serial run), in three parts:
  - its own execution: the time its cells ran in the kernel, from the timing nbclient records in
    every executed cell's metadata;
  - start-up: the processes every submission starts, each timed on its own with nothing to
    grade -- the grading process (Python, nbgrader), the kernel (start, one empty cell, stop)
    and the outside-check process (Python, numpy) -- before and after the gradings;
  - the rest: the checks run outside the kernel, nbgrader's bookkeeping, the scratch course.

Timings depend on what else the machine is doing; the load average is printed with them.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat

from autograder.classroom import blank, correct, hand_in, partly_wrong, read_pair
from autograder.course import Course
from autograder.grading import (
    GradingOptions,
    Recorder,
    SubmissionResult,
    export_grades,
    grade_submission,
    submission_jobs,
    write_feedback,
)
from autograder.parallel import Executor, SerialExecutor, available_cores, make_executor, run_all

KINDS = (("correct", correct), ("blank", blank), ("partly_wrong", partly_wrong))
BLAS_SLOWDOWNS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def build_class(course: Course, assignments: list[str], students: int) -> dict[str, str]:
    """K students, the kinds in turn, each handing in every assignment: {student: kind}."""
    if students < 1:
        raise ValueError(f"--students must be at least 1, got {students}")
    kinds = {f"s{i + 1:03d}_{KINDS[i % len(KINDS)][0]}": KINDS[i % len(KINDS)] for i in range(students)}
    for assignment in assignments:
        source, release = read_pair(course, assignment)
        for student, (_, build) in kinds.items():
            hand_in(course, student, assignment, build(source, release))
    return {student: kind for student, (kind, _) in kinds.items()}


@dataclass
class Run:
    label: str
    cores: int
    grading: float       # seconds for grade_submission over the class, results merged
    total: float         # ... plus feedback pages and grades.csv
    results: list[SubmissionResult]
    cpu: float = 0.0     # CPU seconds the whole machine spent while grading (all processes)


def busy_cpu_seconds() -> float:
    """CPU seconds the machine has spent busy since boot (/proc/stat), every process counted:
    the sandboxed kernels and check children are not this process's children to account."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def grade_timed(course: Course, assignments: list[str], options: GradingOptions,
                executor: Executor, label: str, cores: int) -> Run:
    """The steps of ``grade_class``, with the parallel part timed on its own."""
    jobs = submission_jobs(course, assignments, options)
    start, cpu = time.monotonic(), busy_cpu_seconds()
    with Recorder(course) as recorder:
        run_all(grade_submission, jobs, recorder.merge, executor)
    grading, cpu = time.monotonic() - start, busy_cpu_seconds() - cpu
    problems = write_feedback(course, recorder.results, executor)
    export_grades(course)
    if problems:
        raise RuntimeError("feedback failed for:\n" + "\n".join(problems))
    return Run(label, cores, grading, time.monotonic() - start, recorder.results, cpu)


def execution_seconds(result: SubmissionResult) -> float:
    """Seconds the kernel spent running the submission's cells (nbclient's cell timings)."""
    total = 0.0
    for nb in result.notebooks.values():
        if not nb.get("autograded"):
            continue
        for cell in nbformat.reads(nb["autograded"], as_version=4).cells:
            timing = cell.get("metadata", {}).get("execution", {})
            began, ended = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
            if began and ended:
                total += (datetime.fromisoformat(ended) - datetime.fromisoformat(began)).total_seconds()
    return total


def scores(run: Run) -> dict[tuple[str, str], float]:
    return {(r.student, r.assignment): r.score for r in run.results}


def prestarted_line(runs: list[Run]) -> str:
    """How many submissions found their kernel and check child started ahead (autograder.spare)."""
    parts = []
    for run in runs:
        n = len(run.results)
        kernels = sum("kernel" in r.prestarted for r in run.results)
        children = sum("check child" in r.prestarted for r in run.results)
        parts.append(f"{run.label} {kernels}/{n} kernels, {children}/{n} check children")
    return "started ahead by a spare worker: " + "; ".join(parts)


def throughput_table(runs: list[Run]) -> str:
    serial = runs[0]
    # "machine busy": the CPU time of every process while grading, against all the machine's
    # cores. A serial run uses more than one: its worker's spare (autograder.spare) starts the
    # next submission's sandboxes beside it.
    rows = [("run", "cores", "submissions", "grading s", "subs/min", "subs/min/core", "speed-up",
             "CPU s/sub", "machine busy", "end-to-end s", "speed-up")]
    for run in runs:
        n = len(run.results)
        per_min = 60 * n / run.grading
        busy = run.cpu / (run.grading * available_cores())
        rows.append((run.label, str(run.cores), str(n), f"{run.grading:.1f}", f"{per_min:.2f}",
                     f"{per_min / run.cores:.2f}", f"{serial.grading / run.grading:.2f}x",
                     f"{run.cpu / n:.2f}", f"{100 * busy:.0f}%", f"{run.total:.1f}",
                     f"{serial.total / run.total:.2f}x"))
    return _table(rows)


# Each probe starts one of the processes grading a submission starts, with nothing to grade,
# and prints how long that took (the kernel probe times only the kernel, not its own start).
KERNEL_PROBE = """
import time
from jupyter_client.manager import start_new_kernel
start = time.monotonic()
km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120)
kc.execute_interactive("pass", timeout=120)
kc.stop_channels()
km.shutdown_kernel()
print(time.monotonic() - start)
"""
# The same kernel, started the way grading starts it: in a sandbox, over IPC sockets.
SANDBOXED_KERNEL_PROBE = """
import asyncio, tempfile, time
from autograder.kernel import SandboxedKernelManager
from traitlets.config import Config

async def probe():
    config = Config()
    config.SandboxedKernelManager.sandbox = {"workdir": tempfile.mkdtemp(prefix="probe-") + "/box"}
    start = time.monotonic()
    km = SandboxedKernelManager(kernel_name="python3", config=config)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=120)
    await kc.execute_interactive("pass", timeout=120)
    kc.stop_channels()
    await km.shutdown_kernel(now=True)
    return time.monotonic() - start

print(asyncio.run(probe()))
"""
# The check child's start: Python and NumPy, in a sandbox.
SANDBOXED_CHILD_PROBE = """
import tempfile, time
from autograder.isolation import Sandbox
box = Sandbox(tempfile.mkdtemp(prefix="probe-"))
start = time.monotonic()
box.popen([box.python, "-c", "import numpy"]).wait()
print(time.monotonic() - start)
"""
# Paid once per grading process, not per submission: its warm server (autograder.warm) imports
# nbgrader and the grader once and forks a worker for each submission.
ONCE_PROBES = (
    ("warm server: Python, nbgrader (once per grading process)",
     "import autograder.worker, nbgrader.apps, nbgrader.api"),
)
STARTUP_PROBES = (
    ("kernel in its sandbox: start, one empty cell, stop", SANDBOXED_KERNEL_PROBE),
    ("check child in its sandbox: Python, numpy", SANDBOXED_CHILD_PROBE),
)
# What the sandbox adds, measured beside the same processes started without it.
UNSANDBOXED_PROBES = (
    ("kernel without a sandbox", KERNEL_PROBE),
    ("check child without a sandbox", "import numpy"),
)


def measure_startup(repeats: int = 3) -> dict[str, float]:
    """Median seconds of each start-up probe, each run in a fresh process like the real thing."""
    env = {**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"}
    found = {}
    for label, code in ONCE_PROBES + STARTUP_PROBES + UNSANDBOXED_PROBES:
        times = []
        for _ in range(repeats):
            start = time.monotonic()
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  env=env, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"start-up probe {label!r} failed: {done.stderr[-800:]}")
            inner = done.stdout.strip().splitlines()
            timed_inside = code in (KERNEL_PROBE, SANDBOXED_KERNEL_PROBE, SANDBOXED_CHILD_PROBE)
            times.append(float(inner[-1]) if timed_inside else time.monotonic() - start)
        found[label] = statistics.median(times)
    return found


def startup_seconds(startup: dict[str, float]) -> float:
    """The start-up one submission pays (the sandboxed processes; not the comparison probes)."""
    return sum(startup[label] for label, _ in STARTUP_PROBES)


def startup_table(startup: dict[str, float]) -> str:
    rows = [("start-up, each process timed on its own (median of 3, before and after)", "s")]
    rows += [(label, f"{startup[label]:.2f}") for label, _ in ONCE_PROBES]
    rows += [(label, f"{startup[label]:.2f}") for label, _ in STARTUP_PROBES]
    rows.append(("total per submission", f"{startup_seconds(startup):.2f}"))
    added = sum(startup[a] for a, _ in STARTUP_PROBES) - sum(startup[u] for u, _ in UNSANDBOXED_PROBES)
    rows += [(label, f"{startup[label]:.2f}") for label, _ in UNSANDBOXED_PROBES]
    rows.append(("added by the sandboxes (kernel + check child)", f"{added:.2f}"))
    return _table(rows)


def breakdown_table(run: Run, kinds: dict[str, str], startup: float) -> str:
    rows = [("notebook", "kind", "n", "per submission s", "own execution s", "start-up s",
             "rest s", "largest part")]
    groups: dict[tuple[str, str], list[SubmissionResult]] = {}
    for r in run.results:
        groups.setdefault((r.assignment, kinds[r.student]), []).append(r)
        groups.setdefault((r.assignment, "all"), []).append(r)
    for (assignment, kind), results in sorted(groups.items()):
        total = statistics.mean(r.seconds for r in results)
        own = statistics.mean(execution_seconds(r) for r in results)
        rest = total - own - startup
        parts = {"its own execution": own, "start-up": startup, "the rest": rest}
        rows.append((assignment, kind, str(len(results)), f"{total:.2f}", f"{own:.2f}",
                     f"{startup:.2f}", f"{rest:.2f}", max(parts, key=parts.get)))
    return _table(rows)


def _table(rows) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def blas_report() -> str:
    """The BLAS settings this run grades under; the two slow-down variables are unset here."""
    found = [f"{var}={os.environ.pop(var)} (unset for this run)" for var in BLAS_SLOWDOWNS
             if var in os.environ]
    try:
        from threadpoolctl import threadpool_info

        import numpy  # noqa: F401  (loads the BLAS threadpoolctl reports on)

        libs = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
                for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        libs = ["threadpoolctl not installed"]
    return "BLAS: " + ", ".join(libs + found) + "; one BLAS thread per grading kernel"


CLASS_SIZE = 300   # the class --course projects to


def projection(run: Run, assignments: list[str], once: float = 0.0,
               class_size: int = CLASS_SIZE) -> str:
    """The wall time of grading ``class_size`` students on every assignment, as ``run`` graded
    its class (each student handed in every assignment): both scale with the number of students,
    except ``once``, the start-up each grading process pays once (its warm server, timed on its
    own; the processes start side by side), which a class of any size pays once."""
    scale = class_size / (len(run.results) / max(len(assignments), 1))
    grading = once + max(run.grading - once, 0.0) * scale
    total = once + max(run.total - once, 0.0) * scale
    return (f"projected for {class_size} students x {len(assignments)} notebooks = "
            f"{class_size * len(assignments)} submissions on {run.cores} core(s): "
            f"{grading / 60:.1f} min grading, {total / 60:.1f} min with feedback and export "
            f"(the {once:.1f} s each grading process takes to start counted once)")


def run(notebooks: str | os.PathLike | None = None, assignments: list[str] | None = None,
        students: int = 24, workers: int | None = None, scheduler: str | None = None,
        keep: str | None = None, options: GradingOptions = GradingOptions(),
        whole_course: bool = False) -> int:
    print(blas_report())
    folder = Path(keep).resolve() if keep else Path(tempfile.mkdtemp(prefix="bench-grade-"))
    try:
        course = Course(folder / "prepared", notebooks)
        if whole_course:
            assignments = course.available_assignments()
        assignments = assignments or course.available_assignments()[:1]
        if not assignments:
            raise ValueError(f"no assignment notebooks found under {course.notebooks}")
        start = time.monotonic()
        course.release(assignments)
        kinds = build_class(course, assignments, students)
        print(f"released {', '.join(assignments)} and handed in {students} students "
              f"({', '.join(k for k, _ in KINDS)} in turn) in {time.monotonic() - start:.1f} s")

        # Start-up is timed before and after the gradings, so that its conditions (the load of
        # the machine) bracket theirs; the breakdown uses the mean of the two.
        before = measure_startup()
        runs = []
        for label, executor, cores in _executors(workers, scheduler):
            with executor:
                graded = Course(folder / label.split()[0], course.notebooks)
                shutil.copytree(course.root, graded.root)
                load = os.getloadavg()[0]
                print(f"grading with {executor.describe()} (load average {load:.1f}) ...", flush=True)
                runs.append(grade_timed(graded, assignments, options, executor, label, cores))
        same = scores(runs[0]) == scores(runs[-1])
        print()
        print(throughput_table(runs))
        print(f"\nsame scores in every run: {'yes' if same else 'NO'}; "
              f"load average now {os.getloadavg()[0]:.1f} on {available_cores()} cores")
        print(prestarted_line(runs))
        if whole_course:
            print(projection(runs[-1], assignments, once=before[ONCE_PROBES[0][0]]))
        after = measure_startup()
        startup = {label: (before[label] + after[label]) / 2 for label in before}
        print()
        print(startup_table(startup))
        print("\nwhere the time of one submission goes (serial run):")
        table = breakdown_table(runs[0], kinds, startup_seconds(startup))
        print(table)
        if " -" in table:
            print("(a negative rest: start-up timed on its own took longer than it did inside the "
                  "serial run, as the machine's load changed; the difference is timing noise)")
        return 0 if same else 1
    finally:
        if keep:
            print(f"courses kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _executors(workers: int | None, scheduler: str | None):
    """(label, executor, cores) for the serial yardstick, then for all workers."""
    yield "serial", SerialExecutor(), 1
    if scheduler:
        executor = make_executor(workers, scheduler)
        yield f"dask ({executor.workers} workers)", executor, executor.workers
    else:
        n = workers or available_cores()
        if n > 1:
            yield f"pool ({n} workers)", make_executor(n), min(n, available_cores())
