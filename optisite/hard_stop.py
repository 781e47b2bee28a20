"""One HiGHS run in a forked child that the parent kills at its deadline.

HiGHS 1.16 cannot be stopped inside its presolve or a MIP's root LP: its time limit,
``cancelSolve`` and the interrupt callbacks are all checked only between those steps
(Kings p = 70: presolve 41 s on a 45 s limit). So a stage with a time limit runs in a
child process forked once the model has been handed to HiGHS: the child holds the same
HiGHS model, column for column, runs it and streams each improving plan (objective,
bound, column values) back through a pipe. The parent kills it at the stage's limit +
:data:`GRACE_S` if it has not returned, and keeps the last plan streamed, or else the
MIP start it handed to HiGHS when that start is feasible (``models/solving.md``,
"The hard stop"). A child that returns in time gives exactly what the same HiGHS run
in the parent would: the effort budget and reproducibility are unchanged.

Linux ``fork`` only, from the main thread of a process allowed children (a Dask
worker's task thread keeps HiGHS in-process): :func:`available`.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

GRACE_S = 1.0  # seconds past a stage's limit before its child is killed
SIGNAL_GRACE_S = 2.0  # seconds a child gets to stop on SIGINT/SIGTERM before it is killed
POLL_S = 0.2  # seconds between the parent's looks at signals while it waits
PROGRESS_EVERY_S = 1.0  # at most one bound/progress message a second between improvements
FEASIBILITY_TOL = 1e-6  # of a MIP start kept in place of a killed stage's plan

#: Test hook, called in the child with "start" (before HiGHS runs) and "plan" (after each
#: improving plan is sent): a test makes the child stall there, as HiGHS does in an
#: uninterruptible presolve, to force a kill without timing anything.
child_hook: Callable[[str], None] | None = None

#: False (or the environment variable OPTISITE_HARD_STOP=0): every stage runs HiGHS in the
#: process itself, as before the hard stop (for measuring it, or where fork misbehaves).
ENABLED = os.environ.get("OPTISITE_HARD_STOP", "1") != "0"


#: Models smaller than this (nonzeros + rows + columns) run HiGHS in-process: their presolve
#: and root take milliseconds, less than the fork (0.05-0.2 s a stage under load).
MIN_SIZE = 10_000


def available(size: int | None = None) -> bool:
    """True where a stage (of ``size`` matrix entries) runs in a killable child: Linux fork,
    main thread, a process allowed to have children (a daemonic one, e.g. a Dask worker,
    is not) and a model of at least :data:`MIN_SIZE` entries."""
    return (ENABLED and (size is None or size >= MIN_SIZE) and sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()
            and threading.current_thread() is threading.main_thread()
            and not mp.current_process().daemon)


@dataclass
class Outcome:
    """What one HiGHS run gave, in plain data (the same whether it ran here or in a child)."""

    termination: str  # pyomo TerminationCondition name
    interrupted: bool  # HiGHS's model status is kInterrupt
    objective: float | None  # Pyomo's best_feasible_objective
    bound: float | None  # Pyomo's best_objective_bound
    info_objective: float | None = None  # HiGHS's info (read when Pyomo drops an interrupted incumbent)
    info_bound: float | None = None
    nodes: int = -1  # mip_node_count; -1 for an LP
    x: np.ndarray | None = None  # column values of the plan, when valid
    reason: str | None = None  # what our MIP callback stopped it for (effort budget, wall clock)
    caught: list[str] = field(default_factory=list)  # signals received while it ran
    killed: bool = False  # the parent killed the child at the deadline
    kept: str | None = None  # killed: "streamed plan" or "start" (which plan x is)
    exit_code: int | None = None  # the child ended on its own without a result (a crash), with this code
    logs: list[tuple[str, int, str]] = field(default_factory=list)  # Pyomo log records of the child


def outcome_of(opt, res, stopper, caught: list[str]) -> Outcome:
    """The :class:`Outcome` of an APPSI ``Highs`` that has just run (``res``: its results)."""
    import highspy

    highs = opt._solver_model
    info = highs.getInfo()
    sol = getattr(opt, "_sol", None)
    valid = sol is not None and sol.value_valid
    return Outcome(
        termination=res.termination_condition.name,
        interrupted=highs.getModelStatus() == highspy.HighsModelStatus.kInterrupt,
        objective=res.best_feasible_objective, bound=res.best_objective_bound,
        info_objective=info.objective_function_value, info_bound=info.mip_dual_bound,
        nodes=int(info.mip_node_count), x=np.asarray(sol.col_value, dtype=float) if valid else None,
        reason=stopper.reason, caught=list(caught))


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) and abs(v) < 1e50 else None


class _Records(logging.Handler):
    """The child's Pyomo warnings, sent to the parent with the outcome (tests read them there)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _child(conn, opt, stopper, caught: list[str]) -> None:
    """In the forked child: run HiGHS, stream plans and progress, send the outcome."""
    try:  # die with the parent (a SIGKILLed optisite leaves no HiGHS running)
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:
            os._exit(1)
    except Exception:  # noqa: BLE001 - best effort
        pass
    import highspy
    from pyomo.common.timing import HierarchicalTimer

    # The parent's HiGHS thread pool did not survive the fork: without a new one HiGHS waits
    # forever on workers that do not exist (checked: a MIP in a forked child hangs).
    highspy.Highs.resetGlobalScheduler(True)
    highs = opt._solver_model
    last = [-math.inf]

    def plan(e) -> None:
        o = e.data_out
        conn.send(("plan", _finite(o.objective_function_value), _finite(o.mip_dual_bound),
                   int(o.mip_node_count), np.asarray(o.mip_solution, dtype=float)))
        last[0] = time.perf_counter()
        if child_hook is not None:
            child_hook("plan")

    def progress(e) -> None:
        now = time.perf_counter()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            o = e.data_out
            conn.send(("progress", _finite(o.objective_function_value), _finite(o.mip_dual_bound),
                       int(o.mip_node_count), None))

    records = _Records()
    logging.getLogger("pyomo").addHandler(records)
    try:
        highs.cbMipImprovingSolution.subscribe(plan)
        highs.cbMipInterrupt.subscribe(progress)
        highs.cbMipInterrupt.subscribe(stopper)
        if child_hook is not None:
            child_hook("start")
        res = opt._solve(HierarchicalTimer())  # the parent has handed the model over already
        out = outcome_of(opt, res, stopper, caught)
        out.logs = records.records
        conn.send(("done", out))
    except BaseException as exc:  # noqa: BLE001 - the parent raises it, as an in-process run would
        conn.send(("error", f"{type(exc).__name__}: {exc}", None, -1, None))
    conn.close()


def _start_point(opt) -> tuple[np.ndarray, float] | None:
    """The MIP start the parent handed to HiGHS (the variables' current values), with its
    objective, when it satisfies every bound, row and integrality of the HiGHS model."""
    if not opt.config.warmstart:
        return None
    from scipy import sparse

    highs = opt._solver_model
    lp = highs.getLp()
    n = int(lp.num_col_)
    x = np.zeros(n)
    for var_id, col in opt._pyomo_var_to_solver_var_map.items():
        v = opt._vars[var_id][0]
        if v.value is None:
            return None
        x[col] = v.value
    tol = FEASIBILITY_TOL
    lo, up = np.asarray(lp.col_lower_), np.asarray(lp.col_upper_)
    if np.any(x < lo - tol * (1 + np.abs(lo))) or np.any(x > up + tol * (1 + np.abs(up))):
        return None
    integ = np.asarray(lp.integrality_, dtype=int) if len(lp.integrality_) else np.zeros(n, int)
    if np.any(np.abs(x[integ != 0] - np.round(x[integ != 0])) > tol):
        return None
    a = lp.a_matrix_
    shape = (int(lp.num_row_), n)
    parts = (np.asarray(a.value_), np.asarray(a.index_), np.asarray(a.start_))
    cols = a.format_ == a.format_.__class__.kColwise
    mat = sparse.csc_matrix(parts, shape=shape) if cols else sparse.csr_matrix(parts, shape=shape)
    act = mat @ x
    rlo, rup = np.asarray(lp.row_lower_), np.asarray(lp.row_upper_)
    if np.any(act < rlo - tol * (1 + np.abs(rlo))) or np.any(act > rup + tol * (1 + np.abs(rup))):
        return None
    return x, float(np.dot(np.asarray(lp.col_cost_), x) + lp.offset_)


@dataclass
class _Stream:
    """What the parent has received from the child so far."""

    x: np.ndarray | None = None
    objective: float | None = None
    bound: float | None = None
    nodes: int = -1


def run(opt, stopper, time_left: float, caught: list[str],
        on_progress: Callable[[float | None, float | None, bool], None] | None = None) -> Outcome:
    """Run ``opt`` (an APPSI ``Highs`` holding the model, options not yet applied) in a forked
    child for at most ``time_left`` + :data:`GRACE_S` seconds. ``caught``: the list the
    parent's signal handler appends to; a signal is passed on to the child, which then has
    :data:`SIGNAL_GRACE_S` to stop. ``on_progress(objective, bound, improving)``: each plan
    and progress message, for the live display."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    t0 = time.perf_counter()
    proc = ctx.Process(target=_child, args=(send, opt, stopper, caught), daemon=True)
    proc.start()
    send.close()
    end = t0 + time_left + GRACE_S
    got, done, passed_on, crashed = _Stream(), None, 0, None
    try:
        while done is None:
            now = time.perf_counter()
            if len(caught) > passed_on:  # SIGINT/SIGTERM reached the parent: tell the child
                for name in caught[passed_on:]:
                    _signal(proc, name)
                passed_on = len(caught)
                end = min(end, now + SIGNAL_GRACE_S)
            if now >= end:
                break
            if not recv.poll(min(POLL_S, end - now)):
                if not proc.is_alive() and not recv.poll(0):
                    crashed = proc.exitcode  # died without a word (out of memory, killed from outside)
                    break
                continue
            try:
                msg = recv.recv()
            except (EOFError, OSError):  # the child ended without a result
                proc.join(POLL_S)
                crashed = proc.exitcode
                break
            if msg[0] == "done":
                done = msg[1]
                break
            kind, obj, bound, nodes, x = msg  # plan, progress or error
            if kind == "error":
                raise RuntimeError(f"HiGHS failed in its child process: {obj}")
            got.bound = bound if bound is not None else got.bound
            got.nodes = max(got.nodes, nodes)
            if kind == "plan" and obj is not None:
                got.x, got.objective = x, obj
            if on_progress is not None:
                on_progress(obj, got.bound, kind == "plan")
    finally:
        if done is None:
            proc.kill()
            proc.join()
        # A child that returned is exiting (unmapping its copy of our memory takes 10-30 ms):
        # multiprocessing reaps it at the next start, without waiting here.
        recv.close()
    if done is not None:
        for name, level, text in done.logs:
            logging.getLogger(name).log(level, text)
        done.caught = list(caught) or done.caught  # the parent's own signal first
        return done
    out = _killed(opt, got, caught)
    out.exit_code = crashed
    return out


def _signal(proc, name: str) -> None:
    try:
        os.kill(proc.pid, getattr(signal, name, signal.SIGINT))
    except (ProcessLookupError, OSError):
        pass


def _killed(opt, got: _Stream, caught: list[str]) -> Outcome:
    """The outcome of a child killed before it returned: the last plan it streamed, else the
    start it was given when that is feasible, else no plan."""
    out = Outcome(termination="maxTimeLimit", interrupted=bool(caught), objective=None, bound=got.bound,
                  nodes=got.nodes, caught=list(caught), killed=True)
    if got.x is not None:
        out.x, out.objective, out.kept = got.x, got.objective, "streamed plan"
    else:
        start = _start_point(opt)
        if start is not None:
            out.x, out.objective = start
            out.kept = "start"
    return out
