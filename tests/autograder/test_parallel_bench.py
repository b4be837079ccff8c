"""The arithmetic of ``python -m autograder bench`` (the benchmark itself is run by hand)."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder import bench
from autograder.bench import (
    ONCE_PROBES,
    STARTUP_PROBES,
    UNSANDBOXED_PROBES,
    Run,
    breakdown_table,
    build_class,
    execution_seconds,
    measure_startup,
    startup_table,
    throughput_table,
)
from autograder.grading import SubmissionResult


def timed_cell(began, ended):
    cell = new_code_cell("x = 1")
    cell.metadata["execution"] = {"iopub.execute_input": began, "shell.execute_reply": ended}
    return cell


def result(student, seconds, cells):
    nb = new_notebook(cells=cells)
    return SubmissionResult(student, "nb", "graded", score=1.0, max_score=2.0, seconds=seconds,
                            notebooks={"nb": {"grades": {}, "autograded": nbformat.writes(nb)}})


def test_execution_is_the_sum_of_cell_times_from_nbclient_metadata():
    r = result("s", 10.0, [
        timed_cell("2026-11-21T10:00:00.000000Z", "2026-11-21T10:00:01.500000Z"),
        new_markdown_cell("prose takes no kernel time"),
        new_code_cell("never run: no timing recorded"),
        timed_cell("2026-11-21T10:00:05.000000Z", "2026-11-21T10:00:05.250000Z"),
    ])
    assert execution_seconds(r) == pytest.approx(1.75)
    # A submission that was never executed (not a notebook at all) has no execution time.
    unreadable = SubmissionResult("t", "nb", "failed", notebooks={"nb": {"autograded": None}})
    assert execution_seconds(unreadable) == 0


def test_tables_report_throughput_per_core_and_what_dominates(monkeypatch):
    monkeypatch.setattr(bench, "available_cores", lambda: 2)
    quick = [timed_cell("2026-11-21T10:00:00Z", "2026-11-21T10:00:01Z")]   # 1 s of 4 s
    slow = [timed_cell("2026-11-21T10:00:00Z", "2026-11-21T10:00:03Z")]    # 3 s of 4 s
    results = [result("a", 4.0, quick), result("b", 4.0, slow)]
    serial = Run("serial", 1, grading=60.0, total=70.0, results=results, cpu=50.0)
    pool = Run("pool (2 workers)", 2, grading=40.0, total=50.0, results=results, cpu=70.0)
    table = throughput_table([serial, pool]).splitlines()
    # machine busy: 50 CPU s in 60 s on 2 cores is 42 %; 70 in 40 s is 88 %.
    assert table[2].split() == ["serial", "1", "2", "60.0", "2.00", "2.00", "1.00x", "25.00", "42%",
                                "70.0", "1.00x"]
    assert table[3].split()[3:] == ["2", "2", "40.0", "3.00", "1.50", "1.50x", "35.00", "88%", "50.0",
                                    "1.40x"]
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in breakdown_table(
        serial, {"a": "blank", "b": "correct"}, startup=0.5).splitlines()[2:]}
    # n, per submission, own execution, start-up, rest, largest part
    assert rows[("nb", "blank")] == ["1", "4.00", "1.00", "0.50", "2.50", "the", "rest"]
    assert rows[("nb", "correct")] == ["1", "4.00", "3.00", "0.50", "0.50", "its", "own", "execution"]
    assert rows[("nb", "all")][:5] == ["2", "4.00", "2.00", "0.50", "1.50"]


@pytest.mark.slow
def test_startup_probes_time_real_processes():
    startup = measure_startup(repeats=1)
    assert list(startup) == [label for label, _ in ONCE_PROBES + STARTUP_PROBES + UNSANDBOXED_PROBES]
    assert all(seconds > 0 for seconds in startup.values())
    rows = {line.rsplit(None, 1)[0].strip(): line.split()[-1] for line in startup_table(startup).splitlines()[2:]}
    assert rows["total per submission"] == f"{sum(startup[label] for label, _ in STARTUP_PROBES):.2f}"
    sandboxed = startup["kernel in its sandbox: start, one empty cell, stop"] + \
        startup["check child in its sandbox: Python, numpy"]
    plain = startup["kernel without a sandbox"] + startup["check child without a sandbox"]
    assert rows["added by the sandboxes (kernel + check child)"] == f"{sandboxed - plain:.2f}"


def test_busy_cpu_seconds_counts_other_processes_too():
    import subprocess
    import sys

    from autograder.bench import busy_cpu_seconds

    before = busy_cpu_seconds()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    assert busy_cpu_seconds() - before >= 0.1   # a child's CPU time, seen machine-wide


def test_a_class_needs_a_student():
    with pytest.raises(ValueError, match="--students must be at least 1, got 0"):
        build_class(None, ["nb"], 0)


def test_projection_scales_the_class_to_300_students():
    from autograder.bench import projection

    def sub(student, assignment, seconds):
        return SubmissionResult(student, assignment, "graded", seconds=seconds)

    # 2 students x 2 notebooks in 30 s of wall time (36 s with feedback and export).
    results = [sub("a", "bp", 5.0), sub("b", "bp", 5.0), sub("a", "conv", 15.0), sub("b", "conv", 15.0)]
    line = projection(Run("pool", 2, grading=30.0, total=36.0, results=results), ["bp", "conv"],
                      class_size=300)
    # 300 students = 150x the class: 30 s x 150 = 75 min; 36 s x 150 = 90 min.
    assert "600 submissions on 2 core(s): 75.0 min grading, 90.0 min with feedback and export" in line
    # The grading processes' own start (6 s, paid once) is not scaled: 6 + 24 x 150 s = 60.1 min.
    line = projection(Run("pool", 2, grading=30.0, total=36.0, results=results), ["bp", "conv"],
                      once=6.0, class_size=300)
    assert "60.1 min grading, 75.1 min with feedback and export" in line
