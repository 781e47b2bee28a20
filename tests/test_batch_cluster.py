"""Batches on a Dask cluster of separate processes (``dask scheduler`` and ``dask worker`` on
127.0.0.1): a scheduler without workers, and workers killed in the middle of a batch.

One scheduler serves the module; each test starts its own workers (no nanny, so a killed
worker stays dead) and stops them at the end; everything listens on 127.0.0.1 only.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from optisite import batch
from optisite.batch import Task, run_batch
from optisite.cli import main
from optisite.frontier import parse_budgets, run_frontier
from optisite.solver import SolveOptions

ROOT = Path(__file__).resolve().parents[1]
NIEVRE = ROOT / "instances" / "nievre-58"
TINY = ROOT / "instances" / "tiny"
START = 30.0  # seconds for a scheduler or a worker process to come up on a loaded machine


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A ``dask scheduler`` process on 127.0.0.1 for the module; each test brings its workers."""
    folder = tmp_path_factory.mktemp("dask")
    info = folder / "scheduler.json"
    with open(folder / "scheduler.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(info)], stdout=log, stderr=log, env=_env())
        try:
            deadline = time.monotonic() + START
            while not (info.exists() and info.stat().st_size):
                assert time.monotonic() < deadline and proc.poll() is None, "the scheduler did not start"
                time.sleep(0.1)
            time.sleep(0.2)
            yield json.loads(info.read_text())["address"]
        finally:
            _stop([proc])


@contextlib.contextmanager
def dask_workers(address: str, tmp_path: Path, n: int):
    """``n`` one-thread ``dask worker`` processes (no nanny: a killed worker stays dead) on
    127.0.0.1, all registered; yields {worker address: process}, in start order; stops them on exit."""
    from distributed import Client

    procs = []
    with open(tmp_path / "workers.log", "ab") as log, Client(address, timeout="20s") as c:
        try:
            for i in range(n):
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "distributed.cli.dask_worker", address, "--no-nanny", "--nthreads",
                     "1", "--host", "127.0.0.1", "--no-dashboard", "--name", f"{tmp_path.name}-w{i}"],
                    stdout=log, stderr=log, env=_env()))
            if n:
                c.wait_for_workers(n, timeout=START)
            names = {w["name"]: a for a, w in c.scheduler_info(n_workers=-1)["workers"].items()}
            yield {names[f"{tmp_path.name}-w{i}"]: procs[i] for i in range(n)}
        finally:
            _stop(procs)
            deadline = time.monotonic() + START  # the next test starts from a cluster without workers
            while c.nthreads() and time.monotonic() < deadline:
                time.sleep(0.1)


def kill_when_busy(address: str, worker: str | dict, proc: subprocess.Popen | None, seen: dict,
                   after: float = 0.0):
    """Start a thread that SIGKILLs ``proc`` (the worker at ``worker``) ``after`` seconds after
    a batch task started on it (the batch's own "started" event); ``seen["keys"]`` gets the
    keys that started there. ``worker`` may be {address: process}: then the one killed is the
    first to start a task while holding the batch's shared instance (``seen["worker"]``)."""
    import queue

    from distributed import Client

    events = queue.SimpleQueue()

    def watch():
        nonlocal worker, proc
        with Client(address, timeout="20s") as c:
            c.subscribe_topic(batch.STARTED, events.put)
            deadline = time.monotonic() + START
            keys = []
            while time.monotonic() < deadline:
                try:
                    _, msg = events.get(timeout=0.05)
                except queue.Empty:
                    continue
                if isinstance(worker, dict):
                    holders = {w for k, ws in c.who_has().items() if str(k).startswith("Instance-") for w in ws}
                    if msg["worker"] not in holders:
                        continue
                    worker, proc = msg["worker"], worker[msg["worker"]]
                    seen["worker"] = worker
                if msg["worker"] == worker:
                    keys.append(msg["key"])
                    time.sleep(after)
                    proc.send_signal(signal.SIGKILL)
                    while not events.empty():
                        _, msg = events.get()
                        keys += [msg["key"]] if msg["worker"] == worker else []
                    seen["keys"] = keys
                    return

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    time.sleep(0.5)  # subscribed before the batch starts
    return t


def test_a_scheduler_without_workers_is_one_line_exit_2(scheduler, tmp_path, monkeypatch):
    """Issue 17, item 12: it ended in ``TimeoutError: No valid workers found``."""
    monkeypatch.setattr(batch, "WORKER_WAIT", 2.0, raising=False)
    address = scheduler
    with dask_workers(address, tmp_path, 0):
        t0 = time.monotonic()
        r = CliRunner().invoke(main, ["frontier", str(NIEVRE), "--model", "coverage", "--budgets", "0:100000:3",
                                      "--scheduler", address, "--out", str(tmp_path / "f")])
        took = time.monotonic() - t0
    assert r.exit_code == 2, (r.output, r.exception)
    lines = r.output.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in r.output
    assert [ln for ln in lines if ln.startswith("error")] == lines[-1:]
    assert address in lines[-1] and "no worker" in lines[-1] and f"dask worker {address}" in lines[-1]
    assert took < 20 and not (tmp_path / "f").exists()


def test_a_worker_killed_mid_batch_fails_its_tasks_and_keeps_the_others(scheduler, tmp_path, monkeypatch):
    """Any job (here ``time.sleep``): the task running on the killed worker fails, the others are
    kept (those only queued there run on the other worker); once the last worker is killed too,
    the tasks still waiting fail rather than hang."""
    monkeypatch.setattr(batch, "WORKER_WAIT", 2.0, raising=False)
    address = scheduler
    with dask_workers(address, tmp_path, 2) as workers:
        (w0, p0), (w1, p1) = workers.items()
        seen0, seen1 = {}, {}
        killers = [kill_when_busy(address, w0, p0, seen0, after=0.3)]
        done = []

        def on_result(res):
            done.append(res)
            if res.ok and len(killers) == 1:  # the second worker dies once a task has succeeded
                killers.append(kill_when_busy(address, w1, p1, seen1, after=0.3))

        t0 = time.monotonic()
        results = run_batch([Task(time.sleep, (1.5,), label=f"nap {i}") for i in range(10)],
                            scheduler=address, on_result=on_result)
        took = time.monotonic() - t0
        for k in killers:
            k.join(timeout=5)
    assert "keys" in seen0 and "keys" in seen1, "a worker was not killed"
    assert [r.index for r in results] == list(range(10)) and len(done) == 10
    lost0 = [r for r in results if not r.ok and w0 in r.error]
    lost1 = [r for r in results if not r.ok and w1 in r.error]
    left = [r for r in results if not r.ok and "no Dask worker left" in r.error]
    kept = [r for r in results if r.ok]
    assert len(seen0["keys"]) == len(seen1["keys"]) == 1  # one thread: one task at a time
    assert len(lost0) == 1 and len(lost1) == 1
    assert all("was lost" in r.error and r.exit_code == 1 and "\n" not in r.error for r in lost0 + lost1)
    assert kept and all(r.value is None for r in kept)  # time.sleep returned
    assert left and all(f"dask worker {address}" in r.error for r in left)
    assert len(lost0) + len(lost1) + len(left) + len(kept) == 10
    assert took < 30


def test_a_worker_killed_mid_frontier_gives_failed_rows(scheduler, tmp_path):
    """The frontier keeps the budgets solved elsewhere and marks the lost worker's ``failed``,
    even when that worker held the instance all tasks share (Dask computes it again)."""
    budgets = parse_budgets("0:120000:13")
    address = scheduler
    with dask_workers(address, tmp_path, 2) as workers:
        seen = {}
        killer = kill_when_busy(address, workers, None, seen)
        df = run_frontier(TINY, budgets, SolveOptions(model="coverage", time_limit=20), scheduler=address)
        killer.join(timeout=5)
    assert "keys" in seen, "the worker was not killed"
    w0 = seen["worker"]
    failed = df[df["status"] == "failed"]
    assert len(seen["keys"]) == 1 and len(failed) == 1, df[["budget", "status", "note"]]
    assert failed["note"].str.contains(f"the Dask worker {w0} .*was lost", regex=True).all()
    solved = df[df["status"] != "failed"]
    assert len(solved) == len(budgets) - len(failed) and solved["check_ok"].all()
    assert list(df["budget"]) == budgets
