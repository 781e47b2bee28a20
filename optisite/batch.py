"""Independent jobs run as a batch on Dask (``dask.distributed``).

A :class:`Task` is one call ``fn(*args, **kwargs)`` of a picklable function (the frontier's
budget solve, or any other job). :func:`run_batch` submits the tasks to a
``distributed.Client``: a ``LocalCluster`` of worker processes started for the batch by
default, or an existing cluster when ``scheduler="tcp://host:port"`` is given (its workers
need optisite installed, and any file a task names by path). An argument object shared by
several tasks (the same object, such as a loaded instance) is sent once, not once per task.
Results arrive as they complete (for progress) and are returned in input order, so a batch
gives the same table as a serial loop. An exception in a task becomes a
failed :class:`TaskResult` carrying a one-line message; so does a task that was running on a
worker that is lost (killed, out of memory), and every task still waiting when no worker is
left for :data:`WORKER_WAIT` seconds. The other tasks are kept.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import traceback as tb
import uuid
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Callable, Iterable, Iterator

from .errors import InputError, OptisiteError

DEFAULT_WORKERS = 2  # this project's reference machine has 2 cores
EXIT_BUG = 1  # a failure that is not a user error (an exception type of ours would say so)
WORKER_WAIT = 5.0  # seconds a cluster may have no worker before its tasks fail
POLL = 0.25  # seconds between looks at the cluster's workers while tasks run
STARTED = "optisite-batch-started"  # event topic: a worker says it started a task
_PLAIN = (str, bytes, int, float, complex, bool, type(None), PurePath)  # small: sent with each task


@dataclass(frozen=True)
class Task:
    """One job: ``fn(*args, **kwargs)`` on a worker; ``label`` names it in messages."""

    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""

    def name(self) -> str:
        return self.label or getattr(self.fn, "__name__", "task")


@dataclass
class TaskResult:
    """What came back for one task: ``value`` (what ``fn`` returned) or a one-line ``error``."""

    index: int
    task: Task
    value: Any = None
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


def _call(fn: Callable[..., Any], args: list, kwargs: dict, batch: str = "") -> dict:
    """Runs on a worker: tells the client it started here (so a lost worker's tasks are known),
    then runs one task, its exception turned into plain data (always picklable)."""
    if batch:
        from distributed import get_worker

        with contextlib.suppress(ValueError):  # not on a worker: nobody to tell
            w = get_worker()
            w.log_event(STARTED, {"batch": batch, "key": w.get_current_task()})
    try:
        return {"value": fn(*args, **kwargs)}
    except Exception as exc:  # noqa: BLE001 - reported as a failed task, the batch goes on
        return {"error": one_line(exc), "exit_code": getattr(exc, "exit_code", EXIT_BUG),
                "traceback": tb.format_exc()}


_CANCELLED = {  # Dask's reasons for cancelling a task, for people
    "lost dependencies": "the data sent once to the workers was lost with the last worker holding it; "
                         "run it again",
    "scheduler-connection-lost": "the connection to the Dask scheduler was lost; run it again",
}


def _lost(worker: str) -> dict:
    return {"error": f"the Dask worker {worker} running it was lost (killed, or out of memory?); "
                     "run it again", "exit_code": EXIT_BUG}


def _no_worker_fix(address: str) -> str:
    return (f"start one with `dask worker {address}` on a machine with optisite installed "
            "(and any file its tasks read)")


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


def require_worker(client: Any) -> None:
    """Wait up to :data:`WORKER_WAIT` s for the cluster's first worker; without one, say how to start it."""
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT)
    except TimeoutError:
        address = client.scheduler.address
        raise InputError(f"the Dask scheduler '{address}' has no worker (none joined in {WORKER_WAIT:g} s)",
                         column="--scheduler", fix=_no_worker_fix(address)) from None


def _same(value: Any) -> Any:
    return value


def _submit(client: Any, tasks: list[Task], batch: str) -> tuple[dict, list]:
    """Submit every task. An argument object several tasks share is sent once, as a task of
    its own that returns it: if the worker holding it is lost, Dask computes it again (data
    given to ``scatter`` would be lost for good, and Dask keeps one copy of it, not one per
    worker). Returns {future: task index} and the shared objects' futures (keep them)."""
    seen: dict[int, int] = {}
    objects: dict[int, Any] = {}
    for t in tasks:
        for a in (*t.args, *t.kwargs.values()):
            if not isinstance(a, _PLAIN):
                seen[id(a)] = seen.get(id(a), 0) + 1
                objects[id(a)] = a
    shared_ids = [i for i, n in seen.items() if n > 1]
    shared = {i: client.submit(_same, objects[i], key=f"{type(objects[i]).__name__}-{uuid.uuid4().hex}",
                               pure=False) for i in shared_ids}
    futures = {}
    for index, t in enumerate(tasks):
        args = [shared.get(id(a), a) for a in t.args]
        kwargs = {k: shared.get(id(v), v) for k, v in t.kwargs.items()}
        key = f"{getattr(t.fn, '__name__', 'task')}-{uuid.uuid4().hex}"
        futures[client.submit(_call, t.fn, args, kwargs, batch, key=key, pure=False)] = index
    return futures, list(shared.values())


class _Watch:
    """Where each task started and which workers are alive: fails the tasks a lost worker was
    running (Dask would run them again: one may be what killed it), and every task left once
    no worker has been there for :data:`WORKER_WAIT` s."""

    def __init__(self, client: Any):
        self.client = client
        self.ran_on: dict[str, list[str]] = {}
        self.looked = 0.0
        self.alone_since: float | None = None

    def started(self, key: str, worker: str) -> None:
        self.ran_on.setdefault(key, []).append(worker)

    def failed(self, pending: dict) -> list[tuple[Any, dict]]:
        """(future, failure) for the pending tasks to give up, looking at most every POLL s."""
        now = time.monotonic()
        if not pending or now - self.looked < POLL:
            return []
        self.looked = now
        try:
            alive = set(self.client.nthreads())
        except (OSError, TimeoutError):  # the scheduler is gone: Dask cancels the futures
            return []
        by_key = {fut.key: fut for fut in pending}
        out = [(by_key[key], _lost(where[0])) for key, where in self.ran_on.items()
               if key in by_key and (len(where) > 1 or where[0] not in alive)]
        self.alone_since = None if alive else (self.alone_since or now)
        if self.alone_since is not None and now - self.alone_since >= WORKER_WAIT:
            address = self.client.scheduler.address
            left = {"error": f"no Dask worker left to run it (none for {WORKER_WAIT:g} s); "
                             f"{_no_worker_fix(address)}", "exit_code": EXIT_BUG}
            gone = {fut for fut, _ in out}
            out += [(fut, left) for fut in pending if fut not in gone]
        return out


def _outcome(fut: Any) -> dict:
    """What a finished future brought back, as :func:`_call`'s plain dict."""
    try:
        return fut.result()
    except CancelledError as exc:  # by Dask: data or scheduler lost
        reason = getattr(exc, "reason", "no reason given")
        return {"error": _CANCELLED.get(reason, f"Dask cancelled it ({reason}); run it again"),
                "exit_code": EXIT_BUG}
    except Exception as exc:  # noqa: BLE001 - an unpicklable result...
        return {"error": one_line(exc), "exit_code": EXIT_BUG, "traceback": tb.format_exc()}


def run_batch(tasks: Iterable[Task], *, scheduler: Any = None, workers: int | None = None,
              on_result: Callable[[TaskResult], None] | None = None,
              processes: bool = True) -> list[TaskResult]:
    """Run ``tasks`` on Dask; return one :class:`TaskResult` per task, in input order.

    ``scheduler``: None (a LocalCluster of ``workers`` processes, default 2), an address
    ``tcp://host:port`` of a running scheduler, or a ``distributed.Client`` (the batch
    subscribes it to the :data:`STARTED` events). A cluster without a worker is an
    :class:`InputError` saying how to start one. A task that started on a worker which is
    then lost fails; one only queued there runs elsewhere. ``on_result`` is called in the
    calling thread as each task completes (progress). ``processes=False`` runs the
    LocalCluster's workers as threads of this process.
    """
    tasks = list(tasks)
    if not tasks:
        return []
    results: list[TaskResult | None] = [None] * len(tasks)

    def finish(index: int, out: dict) -> None:
        res = TaskResult(index=index, task=tasks[index], value=out.get("value"), error=out.get("error"),
                         exit_code=out.get("exit_code"), traceback=out.get("traceback", ""))
        results[index] = res
        if on_result is not None:
            on_result(res)

    batch = uuid.uuid4().hex
    with client_for(scheduler, workers, processes=processes) as client:
        require_worker(client)
        wake = threading.Event()  # a task finished, or one started somewhere
        started: queue.SimpleQueue = queue.SimpleQueue()

        def on_started(event) -> None:  # in Dask's event loop: hand over, never block it
            msg = event[1]
            if isinstance(msg, dict) and msg.get("batch") == batch:
                started.put((msg.get("key"), msg.get("worker")))
                wake.set()

        client.subscribe_topic(STARTED, on_started)
        try:
            pending, _shared = _submit(client, tasks, batch)
            for fut in pending:
                fut.add_done_callback(lambda _f: wake.set())
            watch = _Watch(client)
            while pending:
                wake.wait(POLL)
                wake.clear()
                while not started.empty():
                    watch.started(*started.get())
                for fut in sorted((f for f in pending if f.done()), key=pending.get):
                    finish(pending.pop(fut), _outcome(fut))
                for fut, out in sorted(watch.failed(pending), key=lambda fo: pending[fo[0]]):
                    fut.cancel()  # or the scheduler runs it again
                    finish(pending.pop(fut), out)
        finally:
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(STARTED)
    return [r for r in results if r is not None]


__all__ = ["Task", "TaskResult", "BatchError", "run_batch", "client_for", "check_target", "require_worker",
           "one_line", "DEFAULT_WORKERS", "WORKER_WAIT"]
