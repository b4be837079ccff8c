"""The executors of autograder.parallel on cheap jobs: every result merged once, here, in any order.

The grading pipeline itself, on a process pool and on a Dask cluster, is exercised by
tests/autograder/test_parallel_grading.py.
"""

import math
import os
from pathlib import Path

import pytest

from autograder.parallel import (
    DaskExecutor,
    GradingError,
    PoolExecutor,
    SerialExecutor,
    available_cores,
    make_executor,
    run_all,
)


def die_once(job):
    """sqrt of job[0], but kill the process on the first call for a job whose marker file is
    missing (a worker killed by the OOM killer: no exception, no clean-up), or on every call for
    a job marked "always"."""
    value, marker = job
    if marker == "always":
        os._exit(3)
    if marker is not None and not Path(marker).exists():
        Path(marker).touch()
        os._exit(3)
    return math.sqrt(value), os.getpid()


def collect(executor, fn, jobs):
    merged = []
    with executor:
        run_all(fn, jobs, lambda job, result: merged.append((job, result, os.getpid())), executor)
    return merged


@pytest.mark.parametrize("executor", [SerialExecutor, lambda: PoolExecutor(2)], ids=["serial", "pool"])
def test_every_result_is_merged_once_in_the_coordinating_process(executor):
    jobs = [float(k * k) for k in range(7)]
    merged = collect(executor(), math.sqrt, jobs)
    assert sorted(job for job, _, _ in merged) == sorted(jobs)
    assert all(result == math.sqrt(job) for job, result, _ in merged)
    assert {pid for _, _, pid in merged} == {os.getpid()}


def test_pool_runs_jobs_in_other_processes():
    merged = collect(PoolExecutor(2), die_once, [(float(k), None) for k in range(4)])
    worker_pids = {result[1] for _, result, _ in merged}
    assert os.getpid() not in worker_pids


def test_a_failing_job_does_not_stop_the_others():
    merged = []
    with pytest.raises(GradingError, match=r"(?s)1 job\(s\) failed.*-1.0: ValueError") as caught:
        run_all(math.sqrt, [4.0, -1.0, 9.0], lambda j, r: merged.append((j, r)), PoolExecutor(2))
    assert sorted(merged) == [(4.0, 2.0), (9.0, 3.0)]
    assert [o.job for o in caught.value.failed] == [-1.0]


def test_pool_rebuilt_when_a_worker_process_dies(tmp_path):
    jobs = [(float(k), None) for k in range(5)] + [(49.0, str(tmp_path / "died"))]
    merged = collect(PoolExecutor(2), die_once, jobs)
    assert (tmp_path / "died").exists()  # the worker really died once
    assert sorted(result[0] for _, result, _ in merged) == sorted(math.sqrt(j[0]) for j in jobs)


def test_pool_gives_up_on_a_job_that_always_kills_its_worker(tmp_path):
    class Pool(PoolExecutor):
        max_restarts = 1

    merged = []
    with pytest.raises(GradingError, match=r"(?s)1 job\(s\) failed.*'always'.*died 2 times"):
        # One worker, so the good jobs finish before the bad one kills it (no race).
        run_all(die_once, [(1.0, None), (4.0, None), (9.0, "always")],
                lambda j, r: merged.append(j), Pool(1))
    assert sorted(j[0] for j in merged) == [1.0, 4.0]


def test_make_executor_follows_the_options():
    assert isinstance(make_executor(workers=1), SerialExecutor)
    pool = make_executor(workers=3)
    assert isinstance(pool, PoolExecutor) and pool.workers == 3
    assert make_executor().workers == available_cores()
    with pytest.raises(ValueError, match="--workers must be at least 1, got 0"):
        make_executor(workers=0)
    with pytest.raises(ValueError, match="expected tcp://HOST:PORT"):
        DaskExecutor("no-such-scheduler")


def test_dask_local_cluster_merges_here_and_reports_a_failing_job():
    merged = []
    executor = make_executor(workers=2, scheduler="local")
    assert isinstance(executor, DaskExecutor) and executor.workers == 2
    with executor, pytest.raises(GradingError, match=r"(?s)1 job\(s\) failed.*-1.0: ValueError"):
        run_all(math.sqrt, [4.0, -1.0, 9.0, 4.0],
                lambda job, result: merged.append((job, result, os.getpid())), executor)
    assert sorted(m[:2] for m in merged) == [(4.0, 2.0), (4.0, 2.0), (9.0, 3.0)]
    assert {m[2] for m in merged} == {os.getpid()}


def test_on_error_turns_a_failed_job_into_a_merged_record():
    merged = []
    outcomes = run_all(math.sqrt, [4.0, -1.0], lambda job, result: merged.append((job, result)),
                       SerialExecutor(), on_error=lambda job, exc: f"failed: {type(exc).__name__}")
    assert merged == [(4.0, 2.0), (-1.0, "failed: ValueError")]
    assert isinstance(outcomes[1].error, ValueError)
