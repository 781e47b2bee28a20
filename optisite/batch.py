"""Independent solves run as a batch on Dask (``dask.distributed``).

A :class:`Task` is one call of :func:`optisite.frontier.solve_budget`: an instance
(a folder path, or a loaded :class:`~optisite.instance.Instance`, which is pickled
and sent to each worker once), a budget, the solve options and optional parameter
overrides (a scenario). :func:`run_batch` submits the tasks to a
``distributed.Client``: a ``LocalCluster`` of worker processes started for the
batch by default, or an existing cluster when ``scheduler="tcp://host:port"`` is
given (its workers need optisite installed, and the instance folder if tasks name
one by path). Results arrive as they complete (for progress) and are returned in
input order, so a batch gives the same table as a serial loop. An exception in a
task becomes a failed :class:`TaskResult` carrying a one-line message; the other
tasks are kept. HiGHS runs with one thread per task: the parallelism is across
tasks.
"""

from __future__ import annotations

import contextlib
import logging
import traceback as tb
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import InputError, OptisiteError
from .instance import Instance
from .solver import SolveOptions

DEFAULT_WORKERS = 2  # this project's reference machine has 2 cores
EXIT_BUG = 1  # a failure that is not a user error (an exception type of ours would say so)


@dataclass(frozen=True)
class Task:
    """One solve: ``solve_budget(instance, budget, options, overrides)``."""

    instance: Instance | str | Path
    budget: float
    options: SolveOptions
    overrides: dict | None = None
    label: str = ""

    def name(self) -> str:
        return self.label or f"budget {self.budget:,.0f}"


@dataclass
class TaskResult:
    """What came back for one task: ``value`` (the frontier row) or a one-line ``error``."""

    index: int
    task: Task
    value: dict | None = None
    error: str | None = None
    exit_code: int | None = None  # that of the error: 2 input, 3 infeasible, 4 check, 1 other
    traceback: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None


class BatchError(OptisiteError):
    """Some solves of a batch failed: one line naming the first (``messages`` are
    ``"<task>: <error>"``); the exit code is the first failure's own, or 1."""

    def __init__(self, messages: list[str], total: int, exit_code: int | None = None):
        self.messages = list(messages)
        self.exit_code = exit_code or EXIT_BUG
        more = f" (and {len(self.messages) - 1} more)" if len(self.messages) > 1 else ""
        super().__init__(f"{len(self.messages)} of {total} solves failed: {self.messages[0]}{more}")

    @classmethod
    def of(cls, results: list[TaskResult]) -> "BatchError":
        failed = [r for r in results if not r.ok]
        return cls([f"{r.task.name()}: {r.error}" for r in failed], len(results), failed[0].exit_code)


def one_line(exc: BaseException) -> str:
    """The user-facing message of ``exc`` on one line; other than our errors, its type is named."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, OptisiteError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text


def _solve_task(instance, budget: float, options: SolveOptions, overrides: dict | None) -> dict:
    """Runs on a worker: one solve, its exception turned into plain data (always picklable)."""
    from .frontier import solve_budget

    try:
        return {"value": solve_budget(instance, budget, options, overrides)}
    except Exception as exc:  # noqa: BLE001 - reported as a failed row, the batch goes on
        return {"error": one_line(exc), "exit_code": getattr(exc, "exit_code", EXIT_BUG),
                "traceback": tb.format_exc()}


def check_target(workers: int | None, scheduler: Any) -> None:
    """Refuse a worker count with a scheduler (its cluster has its own workers), or fewer than 1."""
    if workers is not None and scheduler is not None:
        raise InputError("give --workers or --scheduler, not both (the cluster at --scheduler "
                         "has its own workers)", column="--workers")
    if workers is not None and int(workers) < 1:
        raise InputError(f"--workers {workers}: give at least 1 worker", column="--workers")


@contextlib.contextmanager
def client_for(scheduler: Any = None, workers: int | None = None, *,
               processes: bool = True) -> Iterator[Any]:
    """A ``distributed.Client``: the given one, one connected to ``scheduler`` (an address),
    or one on a new ``LocalCluster`` (``workers`` processes, one thread each, no dashboard),
    closed on exit (a given client is left open)."""
    from distributed import Client, LocalCluster

    check_target(workers, scheduler)
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is not None:
        try:
            client = Client(str(scheduler), timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"cannot connect to the Dask scheduler '{scheduler}' ({one_line(exc)})",
                             column="--scheduler",
                             fix="start one with `dask scheduler` and give its tcp://host:port") from None
        with client:
            yield client
        return
    n = DEFAULT_WORKERS if workers is None else int(workers)
    # No dashboard; the scheduler's small HTTP server (health, metrics) takes any free port,
    # so two batches at once do not fight over 8787.
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=processes, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def run_batch(tasks: Iterable[Task], *, scheduler: Any = None, workers: int | None = None,
              on_result: Callable[[TaskResult], None] | None = None,
              processes: bool = True) -> list[TaskResult]:
    """Run ``tasks`` on Dask; return one :class:`TaskResult` per task, in input order.

    ``scheduler``: None (a LocalCluster of ``workers`` processes, default 2), an address
    ``tcp://host:port`` of a running scheduler, or a ``distributed.Client``.
    ``on_result`` is called in the calling thread as each task completes (progress).
    ``processes=False`` runs the LocalCluster's workers as threads of this process.
    """
    from distributed import as_completed

    tasks = list(tasks)
    if not tasks:
        return []
    results: list[TaskResult | None] = [None] * len(tasks)
    with client_for(scheduler, workers, processes=processes) as client:
        # A loaded instance travels once to every worker, not once per task.
        shared: dict[int, Any] = {}
        for t in tasks:
            if isinstance(t.instance, Instance) and id(t.instance) not in shared:
                shared[id(t.instance)] = client.scatter(t.instance, broadcast=True, hash=False)
        futures = {}
        for i, t in enumerate(tasks):
            inst = shared.get(id(t.instance), t.instance)
            if isinstance(inst, Path):
                inst = str(inst)
            options = replace(t.options, threads=1)  # parallel across tasks, not inside HiGHS
            fut = client.submit(_solve_task, inst, float(t.budget), options, t.overrides, pure=False)
            futures[fut] = i
        for fut in as_completed(list(futures)):
            i = futures[fut]
            try:
                out = fut.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker, an unpicklable result...
                out = {"error": one_line(exc), "exit_code": EXIT_BUG, "traceback": tb.format_exc()}
            res = TaskResult(index=i, task=tasks[i], value=out.get("value"), error=out.get("error"),
                             exit_code=out.get("exit_code"), traceback=out.get("traceback", ""))
            results[i] = res
            if on_result is not None:
                on_result(res)
    return [r for r in results if r is not None]


__all__ = ["Task", "TaskResult", "BatchError", "run_batch", "client_for", "check_target", "one_line", "DEFAULT_WORKERS"]
