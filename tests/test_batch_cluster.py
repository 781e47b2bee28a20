"""Batches on a Dask cluster of separate processes (``dask scheduler`` and ``dask worker`` on
127.0.0.1): a scheduler without workers, and workers killed in the middle of a batch.

Each test starts its own scheduler and workers (no nanny, so a killed worker stays dead) and
stops them at the end; everything listens on 127.0.0.1 only.
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
START = 30.0  # seconds for a scheduler or a worker process to come up on a loaded machine


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


@contextlib.contextmanager
def dask_processes(tmp_path: Path, workers: int):
    """A ``dask scheduler`` and ``workers`` one-thread ``dask worker`` processes (no nanny) on
    127.0.0.1; yields (scheduler address, {worker address: process}); stops them all on exit."""
    from distributed import Client

    procs = []
    info = tmp_path / "scheduler.json"
    log = open(tmp_path / "dask.log", "ab")
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(info)], stdout=log, stderr=log, env=_env()))
        deadline = time.monotonic() + START
        while not (info.exists() and info.stat().st_size):
            assert time.monotonic() < deadline and procs[0].poll() is None, "the scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written in one go, but give it a moment
        address = json.loads(info.read_text())["address"]
        for i in range(workers):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--no-nanny", "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}"], stdout=log, stderr=log, env=_env()))
        by_address = {}
        if workers:
            with Client(address, timeout="20s") as c:
                c.wait_for_workers(workers, timeout=START)
                names = {w["name"]: a for a, w in c.scheduler_info(n_workers=-1)["workers"].items()}
            by_address = {names[f"w{i}"]: procs[1 + i] for i in range(workers)}
        yield address, by_address
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        log.close()


def kill_when_busy(address: str, worker: str, proc: subprocess.Popen, seen: dict, after: float = 0.0):
    """Start a thread that SIGKILLs ``proc`` (the worker at ``worker``) once the scheduler shows
    it processing a task (and ``after`` seconds more); ``seen["keys"]`` gets the keys it held."""
    from distributed import Client

    def watch():
        with Client(address, timeout="20s") as c:
            deadline = time.monotonic() + START
            while time.monotonic() < deadline:
                keys = c.processing(workers=[worker]).get(worker, ())
                if keys:
                    time.sleep(after)
                    seen["keys"] = c.processing(workers=[worker]).get(worker, ())
                    proc.send_signal(signal.SIGKILL)
                    seen["killed_at"] = time.monotonic()
                    return
                time.sleep(0.02)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_a_scheduler_without_workers_is_one_line_exit_2(tmp_path, monkeypatch):
    """Issue 17, item 12: it ended in ``TimeoutError: No valid workers found``."""
    monkeypatch.setattr(batch, "WORKER_WAIT", 2.0, raising=False)
    with dask_processes(tmp_path, workers=0) as (address, _):
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


def test_a_worker_killed_mid_batch_fails_its_tasks_and_keeps_the_others(tmp_path, monkeypatch):
    """Any job (here ``time.sleep``): the killed worker's tasks fail, the other worker's tasks are
    kept; once the last worker is killed too, the tasks still waiting fail rather than hang."""
    monkeypatch.setattr(batch, "WORKER_WAIT", 2.0, raising=False)
    with dask_processes(tmp_path, workers=2) as (address, workers):
        (w0, p0), (w1, p1) = sorted(workers.items(), key=lambda kv: kv[1].pid)
        seen0, seen1 = {}, {}
        killers = [kill_when_busy(address, w0, p0, seen0, after=0.3)]
        done = []

        def on_result(res):
            done.append(res)
            if len(done) == 1:  # the second worker dies once the first result is in
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
    assert len(lost0) == len(seen0["keys"]) >= 1 and len(lost1) == len(seen1["keys"]) >= 1
    assert all("was lost" in r.error and r.exit_code == 1 and "\n" not in r.error for r in lost0 + lost1)
    assert kept and all(r.value is None for r in kept)  # time.sleep returned
    assert left and all(f"dask worker {address}" in r.error for r in left)
    assert len(lost0) + len(lost1) + len(left) + len(kept) == 10
    assert took < 30


def test_a_worker_killed_mid_frontier_gives_failed_rows(tmp_path):
    """The frontier keeps the budgets solved elsewhere and marks the lost worker's ``failed``."""
    budgets = parse_budgets("0:140000:15")
    with dask_processes(tmp_path, workers=2) as (address, workers):
        (w0, p0), = [(a, p) for a, p in workers.items() if p.pid == min(q.pid for q in workers.values())]
        seen = {}
        killer = kill_when_busy(address, w0, p0, seen)
        df = run_frontier(NIEVRE, budgets, SolveOptions(model="coverage", time_limit=20), scheduler=address)
        killer.join(timeout=5)
    assert "keys" in seen, "the worker was not killed"
    failed = df[df["status"] == "failed"]
    assert len(failed) == len(seen["keys"]) >= 1, df[["budget", "status", "note"]]
    assert failed["note"].str.contains(f"the Dask worker {w0} .*was lost", regex=True).all()
    solved = df[df["status"] != "failed"]
    assert len(solved) == len(budgets) - len(failed) and solved["check_ok"].all()
    assert list(df["budget"]) == budgets
