"""Grading many submissions at once: serially, on a local process pool, or on a Dask cluster.

nbgrader grades one submission after another (its issue #174). Grading one submission is
independent of every other one, so it parallelises perfectly -- *except* for the gradebook, a
single SQLite file that concurrent writers corrupt or lock. The design here therefore splits the
work in two:

* ``grade_one(job) -> result`` runs anywhere (another process, another machine). It must be
  idempotent and must not touch the shared gradebook: Dask re-runs a task whose worker died, and
  even recomputes a result that finished on a worker that has since died.
* ``merge(job, result)`` runs only in the coordinating process, in the order results arrive.
  It is the gradebook's single writer, so many workers never mean many writers.

An :class:`Executor` turns a list of jobs into ``(job, result)`` pairs as they finish:

* :class:`SerialExecutor`: one after another in this process (the yardstick);
* :class:`PoolExecutor`: a local pool of ``workers`` processes, no set-up needed; a pool
  broken by a dying process is rebuilt and the unfinished jobs are submitted again;
* :class:`DaskExecutor`: an existing Dask cluster (``tcp://HOST:PORT``, or a scheduler file),
  so a course can grade on many machines with Dask's own deployments (dask-jobqueue for
  Slurm/PBS, dask-kubernetes). ``"local"`` starts a throw-away ``LocalCluster`` instead. Worker
  deaths are handled by Dask itself: the scheduler re-runs a lost task elsewhere, up to
  ``distributed.scheduler.allowed-failures`` deaths per task.

Jobs and results travel between processes, so both must pickle (plain dataclasses of strings and
numbers do). ``grade_one`` must be a module-level function that the workers can import: on a
cluster, every worker runs in an environment with this package installed, and sees the course
folder at the same path (a shared filesystem), since a job names its course by path. Results
come back by value, so workers never write into the course.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from cs231n_lib.conv.blocks import available_cores  # noqa: F401  (defined once, there)

Job = Any
Result = Any




@dataclass
class Outcome:
    """What became of one job: its result, or the error that stopped it (never both)."""

    job: Job
    result: Result = None
    error: BaseException | None = None


class GradingError(RuntimeError):
    """Some jobs could not be run at all (the others were merged before this was raised)."""

    def __init__(self, failed: Sequence[Outcome]):
        self.failed = list(failed)
        lines = [f"{o.job}: {type(o.error).__name__}: {o.error}" for o in self.failed[:10]]
        more = f"\n... and {len(self.failed) - 10} more" if len(self.failed) > 10 else ""
        super().__init__(f"{len(self.failed)} job(s) failed:\n" + "\n".join(lines) + more)


class Executor:
    """Runs ``fn`` on every job and yields an :class:`Outcome` per job as each one finishes."""

    name = "executor"
    workers = 1

    def outcomes(self, fn: Callable[[Job], Result], jobs: Sequence[Job]) -> Iterator[Outcome]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def describe(self) -> str:
        return f"{self.name} ({self.workers} worker{'s' if self.workers != 1 else ''})"


class SerialExecutor(Executor):
    """One job after another, in this process."""

    name = "serial"

    def outcomes(self, fn, jobs):
        for job in jobs:
            try:
                yield Outcome(job, result=fn(job))
            except Exception as exc:
                yield Outcome(job, error=exc)


class PoolExecutor(Executor):
    """A pool of ``workers`` local processes (default: one per available core)."""

    name = "process pool"
    # How many times a pool broken by a dying worker process is rebuilt before giving up.
    max_restarts = 3

    def __init__(self, workers: int | None = None):
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers or available_cores()

    def _pool(self) -> ProcessPoolExecutor:
        # "spawn": a fresh interpreter per worker. Forking the coordinator would copy its open
        # gradebook connection and any threads' locks into every worker.
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def outcomes(self, fn, jobs):
        pending = list(jobs)
        restarts = 0
        while pending:
            pool = self._pool()
            try:
                futures = {pool.submit(fn, job): job for job in pending}
                broken = False
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        job = futures.pop(future)
                        try:
                            result = future.result()
                        except BrokenProcessPool:
                            broken = True  # this job is submitted again on a new pool
                            continue
                        except Exception as exc:
                            pending.remove(job)
                            yield Outcome(job, error=exc)
                            continue
                        pending.remove(job)
                        yield Outcome(job, result=result)
                if broken:
                    restarts += 1
                    if restarts > self.max_restarts:
                        for job in pending:
                            yield Outcome(job, error=BrokenProcessPool(
                                f"worker processes died {restarts} times; gave up"))
                        return
            finally:
                pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """Jobs as tasks on a Dask cluster.

    ``scheduler`` is a scheduler address (``tcp://HOST:PORT``), the path of a scheduler file
    written by ``dask scheduler --scheduler-file``, or ``"local"`` for a ``LocalCluster`` of
    ``workers`` single-threaded processes that lives as long as this executor.
    """

    name = "dask"

    def __init__(self, scheduler: str, workers: int | None = None, timeout: float = 30):
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler == "local":
            self.cluster = LocalCluster(
                n_workers=workers or available_cores(), threads_per_worker=1,
                processes=True, dashboard_address=None,
            )
            self.client = Client(self.cluster, timeout=timeout)
        elif os.path.isfile(scheduler):
            self.client = Client(scheduler_file=scheduler, timeout=timeout)
        elif "://" in scheduler or ":" in scheduler:
            self.client = Client(scheduler, timeout=timeout)
        else:
            raise ValueError(
                f"--scheduler {scheduler!r}: expected tcp://HOST:PORT, a scheduler file, or 'local'"
            )
        self.address = self.client.scheduler.address
        self.workers = sum(self.client.nthreads().values())

    def describe(self) -> str:
        return f"dask at {self.address} ({self.workers} worker thread{'s' if self.workers != 1 else ''})"

    def outcomes(self, fn, jobs):
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]
        # pure=False and a fresh key per run: a re-grade must run again, never reuse a result
        # the cluster still remembers from an earlier run.
        futures = {
            self.client.submit(fn, job, key=f"grade-{run}-{i}", pure=False): job
            for i, job in enumerate(jobs)
        }
        try:
            for future in as_completed(futures):
                job = futures[future]
                try:
                    yield Outcome(job, result=future.result())
                except Exception as exc:  # e.g. KilledWorker after too many worker deaths
                    yield Outcome(job, error=exc)
                future.release()
        finally:
            self.client.cancel(list(futures))

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """The executor the command line asks for: Dask with ``scheduler``, else serial or a pool."""
    if scheduler:
        return DaskExecutor(scheduler, workers)
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    workers = workers or available_cores()
    return SerialExecutor() if workers == 1 else PoolExecutor(workers)


def run_all(
    fn: Callable[[Job], Result],
    jobs: Iterable[Job],
    merge: Callable[[Job, Result], None],
    executor: Executor | None = None,
    on_error: Callable[[Job, BaseException], Result] | None = None,
) -> list[Outcome]:
    """Run ``fn`` on every job and ``merge`` each result here, as it arrives.

    ``merge`` is the single writer: it runs only in this process, one result at a time. A job
    that could not run at all (its worker died too often, its function raised) does not stop
    the others. With ``on_error``, the result it makes of the job and the error is merged in
    its place, so every job ends with a record; without, once every other result is merged, a
    :class:`GradingError` lists the failures.
    """
    jobs = list(jobs)
    executor = executor or SerialExecutor()
    outcomes, failed = [], []
    for outcome in executor.outcomes(fn, jobs):
        if outcome.error is None:
            merge(outcome.job, outcome.result)
        elif on_error is not None:
            merge(outcome.job, on_error(outcome.job, outcome.error))
        else:
            failed.append(outcome)
        outcomes.append(outcome)
    if failed:
        raise GradingError(failed)
    return outcomes
