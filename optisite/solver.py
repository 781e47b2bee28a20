"""Solving a built model with HiGHS through Pyomo's persistent (APPSI) interface.

Two stages, lexicographic: minimise the uncovered population, then hold it at the
value found and minimise cost, so the reported plan spends nothing for nothing.
The stage-1 solution is the warm start of stage 2.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
import threading
import time
from dataclasses import asdict, dataclass, field

import highspy
import pyomo.environ as pyo
from pyomo.core.expr.visitor import identify_variables
from pyomo.common.timing import HierarchicalTimer
from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers.highs import Highs

MODELS = ("coverage", "staffing", "apl")
DEFAULT_TIME_LIMIT = 600.0  # seconds for the whole command, when not given


@dataclass(frozen=True)
class SolveOptions:
    """What the user may set for any model (CLI options map one to one)."""

    model: str = "staffing"
    time_limit: float | None = DEFAULT_TIME_LIMIT  # seconds for the whole solve, every step
    gap: float = 1e-4  # relative MIP gap of stage 1
    threads: int | None = None
    seed: int = 0
    force_open: tuple[str, ...] = ()
    force_closed: tuple[str, ...] = ()
    lexicographic: bool = True
    verbose: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["force_open"] = sorted(self.force_open)
        d["force_closed"] = sorted(self.force_closed)
        return d


@dataclass
class StageResult:
    """One HiGHS run, in plain numbers."""

    name: str
    status: str  # optimal, time_limit, infeasible, interrupted, error
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    seconds: float = 0.0
    handover_seconds: float = 0.0
    has_solution: bool = False
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


_STATUS = {
    TerminationCondition.optimal: "optimal",
    TerminationCondition.maxTimeLimit: "time_limit",
    TerminationCondition.infeasible: "infeasible",
    TerminationCondition.infeasibleOrUnbounded: "infeasible",
    TerminationCondition.interrupted: "interrupted",
    TerminationCondition.objectiveLimit: "time_limit",
    TerminationCondition.maxIterations: "time_limit",
}


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None:
        return None
    diff = max(0.0, objective - bound)
    if diff <= 1e-9:
        return 0.0
    return diff / max(abs(objective), 1e-9)


class _QuietInterrupt(logging.Filter):
    """Pyomo warns about HiGHS's kInterrupt status, which ``_run`` handles itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kInterrupt" not in record.getMessage()


logging.getLogger("pyomo.contrib.appsi.solvers.highs").addFilter(_QuietInterrupt())


class SolveInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped HiGHS before it had any plan to report."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name


@contextlib.contextmanager
def _cancel_on_signal(opt: Highs, caught: list[str]):
    """While HiGHS runs, SIGINT/SIGTERM ask it to stop (keeping its incumbent) instead of
    raising: a KeyboardInterrupt raised inside a HiGHS callback makes HiGHS drop its
    incumbent and report a solve error. Only the main thread may install handlers; in
    other threads the caller's handling applies unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        caught.append(signal.Signals(signum).name)
        highs = getattr(opt, "_solver_model", None)
        if highs is not None:
            highs.cancelSolve()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


def _run(opt: Highs, m, name: str, time_left: float | None) -> StageResult:
    if not any(not v.fixed for v in m.component_data_objects(pyo.Var, descend_into=True)):
        # Nothing left to decide (no reachable candidate, everyone already covered, or all
        # decisions forced): HiGHS refuses an empty model, and the answer is the constant.
        obj = next(m.component_data_objects(pyo.Objective, active=True))
        value = float(pyo.value(obj.expr))
        return StageResult(name=name, status="optimal", objective=value, bound=value, gap=0.0,
                           has_solution=True, extra={"empty_model": True})
    timer = HierarchicalTimer()
    caught: list[str] = []
    t0 = time.perf_counter()
    with _cancel_on_signal(opt, caught):
        if time_left is not None:
            # Hand the model to HiGHS first and give HiGHS what is left of the limit: at a
            # million nonzeros the hand-over alone takes several seconds.
            _hand_over(opt, m, timer)
            opt.config.time_limit = max(time_left - (time.perf_counter() - t0), 0.01)
        res = opt.solve(m, timer=timer)
    seconds = time.perf_counter() - t0
    status = _STATUS.get(res.termination_condition, "error")
    obj = res.best_feasible_objective
    bound = res.best_objective_bound
    highs = getattr(opt, "_solver_model", None)
    if caught or (highs is not None and highs.getModelStatus() == highspy.HighsModelStatus.kInterrupt):
        # Pyomo (6.10) maps HiGHS's kInterrupt to 'unknown' and drops the incumbent: read it here.
        status = "interrupted"
        sol = getattr(opt, "_sol", None)
        if obj is None and sol is not None and sol.value_valid:
            info = highs.getInfo()
            obj = info.objective_function_value
            bound = info.mip_dual_bound if info.mip_node_count >= 0 else None
    has = obj is not None
    if status == "optimal" and bound is None:
        bound = obj
    if has:
        res.solution_loader.load_vars()
    handover = 0.0
    try:
        handover = timer.get_total_time("set_instance") if "set_instance" in timer.timers else 0.0
        if "update" in timer.timers:
            handover += timer.get_total_time("update")
    except Exception:  # timer layout differs across Pyomo versions; timings are informative only
        handover = 0.0
    return StageResult(
        name=name, status=status, objective=None if obj is None else float(obj),
        bound=None if bound is None else float(bound), gap=relative_gap(obj, bound),
        seconds=seconds, handover_seconds=handover, has_solution=has,
        extra={"signal": caught[0]} if caught else {},
    )


def _hand_over(opt: Highs, m, timer: HierarchicalTimer) -> None:
    """What ``opt.solve`` does before running HiGHS (load the model, or pass on its changes)."""
    if getattr(opt, "_model", None) is not m:
        timer.start("set_instance")
        opt.set_instance(m)
        timer.stop("set_instance")
    else:
        timer.start("update")
        opt.update(timer=timer)
        timer.stop("update")


_THREADS: list[int] = []  # thread count of HiGHS's process-wide scheduler, once started


def _use_threads(threads: int) -> None:
    """HiGHS keeps one thread scheduler per process and refuses another thread count
    ("scheduler has already been initialized"): restart it when the count changes."""
    if _THREADS and _THREADS[0] != threads:
        import highspy

        highspy.Highs.resetGlobalScheduler(True)
        _THREADS.clear()
    if not _THREADS:
        _THREADS.append(threads)


def solve_lexicographic(m, options: SolveOptions, *, warm_start: bool = False,
                        highs_options: dict | None = None) -> list[StageResult]:
    """Stage 1 (uncovered population), then stage 2 (cost at that coverage), then the
    canonical tie-break (stages 3 and 4, see ``_canonical``).

    ``highs_options`` adds model-specific HiGHS options to every stage.
    A stage interrupted by SIGINT/SIGTERM ends the sequence: the model keeps the best
    plan found so far; if there is none, :class:`SolveInterrupted` is raised.
    """
    opt = Highs()
    opt.config.load_solution = False
    opt.config.mip_gap = options.gap
    opt.config.stream_solver = options.verbose
    highs_options = {"random_seed": int(options.seed), "mip_abs_gap": 1e-6,
                     "threads": int(options.threads or 0), **(highs_options or {})}
    _use_threads(int(options.threads or 0))
    opt.highs_options = highs_options
    opt.config.warmstart = warm_start  # the variables' current values are a MIP start
    start = time.perf_counter()
    first = _run(opt, m, "uncovered", options.time_limit)
    stages = [first]
    if first.status == "interrupted" and not first.has_solution:
        raise SolveInterrupted(first.extra.get("signal", "SIGINT"))
    if not (options.lexicographic and first.has_solution and first.status in ("optimal", "time_limit")):
        return stages

    def time_left() -> float | None:
        return None if options.time_limit is None else options.time_limit - (time.perf_counter() - start)

    left = time_left()
    if left is not None and left <= 0.05:
        return stages
    saved = _values(m)
    held = first.objective
    m.hold_coverage = pyo.Constraint(expr=m.uncovered <= held + 1e-6 * max(1.0, abs(held)) + 1e-6)
    m.obj_uncovered.deactivate()
    m.obj_cost.activate()
    opt.config.warmstart = True
    opt.config.mip_gap = 1e-6
    second = _run(opt, m, "cost", left)
    if second.has_solution:
        second.objective = second.objective * m.cost_scale
        second.bound = None if second.bound is None else second.bound * m.cost_scale
    else:  # keep the stage-1 plan
        _restore(m, saved)
    stages.append(second)
    if first.status == "optimal" and second.status == "optimal":
        stages.extend(_canonical(opt, m, second.objective / m.cost_scale, time_left))
    return stages


def _values(m) -> dict:
    return {id(v): v.value for v in m.component_data_objects(pyo.Var)}


def _restore(m, saved: dict) -> None:
    for v in m.component_data_objects(pyo.Var):
        v.set_value(saved[id(v)], skip_validation=True)


def tie_weight(name: str) -> float:
    """A pseudo-random weight in [1, 2) that depends only on a variable's name (ids)."""
    h = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return 1.0 + int.from_bytes(h, "big") / 2.0 ** 64


def _canonical(opt: Highs, m, cost_held: float, time_left) -> list[StageResult]:
    """Make the reported plan a function of the instance, not of the solver's path.

    Stages 1 and 2 may end on any of several plans of equal coverage and equal cost
    (which practice sends the days, how flows split between equidistant sources), and
    HiGHS's parallel search picks among them differently with the thread count.
    Holding both optima, stage 3 minimises a fixed pseudo-random linear function of the
    integer decisions (weights hashed from variable names, in [1, 2)): with generic
    weights the minimiser over a finite set is unique, so every run that proves it
    optimal returns the same integer plan. Stage 4 fixes the integer decisions and
    maximises the same kind of function of the flows (an LP, unique vertex), so flows
    only grow: coverage can never get worse than stage 1. If a stage does not finish
    optimal (time limit, interrupt), the plan before it is kept.
    """
    out: list[StageResult] = []
    saved = _values(m)
    ints = [v for v in m.component_data_objects(pyo.Var) if not v.fixed and (v.is_integer() or v.is_binary())]
    left = time_left()
    if left is not None and left <= 0.05:
        return out
    if ints:
        m.hold_cost = pyo.Constraint(expr=m.obj_cost.expr <= cost_held + 1e-9 * max(1.0, abs(cost_held)) + 1e-7)
        m.obj_canonical = pyo.Objective(expr=sum(tie_weight(v.name) * v for v in ints), sense=pyo.minimize)
        m.obj_cost.deactivate()
        opt.config.mip_gap = 0.0
        opt.highs_options = {**opt.highs_options, "mip_abs_gap": 1e-9}
        third = _run(opt, m, "tie-break", left)
        out.append(third)
        m.obj_canonical.deactivate()
        if third.status != "optimal":
            _restore(m, saved)
            return out
        saved = _values(m)
    in_uncovered = {id(v) for v in identify_variables(m.uncovered.expr)}
    flows = [v for v in m.component_data_objects(pyo.Var)
             if not v.fixed and not (v.is_integer() or v.is_binary()) and id(v) not in in_uncovered]
    left = time_left()
    if not flows or (left is not None and left <= 0.05):
        return out
    fixed = [v for v in ints if not v.fixed]
    for v in fixed:
        v.fix(round(v.value or 0.0))
    for o in list(m.component_data_objects(pyo.Objective, active=True)):
        o.deactivate()  # stage 3 may have been skipped (no integer decision left)
    m.obj_flows = pyo.Objective(expr=sum(tie_weight(v.name) * v for v in flows), sense=pyo.maximize)
    fourth = _run(opt, m, "flows", left)
    out.append(fourth)
    m.obj_flows.deactivate()
    for v in fixed:
        v.unfix()
    if fourth.status != "optimal":
        _restore(m, saved)
    return out
