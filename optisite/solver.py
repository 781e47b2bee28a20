"""Solving a built model with HiGHS through Pyomo's persistent (APPSI) interface.

:class:`StageSolver` runs a model's declared objectives lexicographically (each held
at its value while the next is minimised: for the access models, the uncovered
population, then the cost, so the plan spends nothing for nothing), then two
tie-break stages that make the plan canonical (``_canonical``). Every stage draws on
the solve's one :class:`~optisite.deadline.Deadline`. See ``models/solver.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import highspy
import pyomo.environ as pyo
from pyomo.core.expr.visitor import identify_variables
from pyomo.common.timing import HierarchicalTimer
from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers.highs import Highs

from . import hard_stop
from .deadline import Deadline, node_budget
from .signals import Interrupted, handling
from .models.base import Objective

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


@contextlib.contextmanager
def _quiet_interrupt():
    """The filter above, on Pyomo's HiGHS logger only while a stage runs."""
    log, f = logging.getLogger("pyomo.contrib.appsi.solvers.highs"), _QuietInterrupt()
    log.addFilter(f)
    try:
        yield
    finally:
        log.removeFilter(f)


def _cancel_on_signal(opt: Highs, caught: list[str]):
    """While HiGHS runs, SIGINT/SIGTERM ask it to stop (keeping its incumbent) instead of
    raising: a KeyboardInterrupt raised inside a HiGHS callback makes HiGHS drop its
    incumbent and report a solve error."""
    def cancel(name: str) -> None:
        caught.append(name)
        highs = getattr(opt, "_solver_model", None)
        if highs is not None:
            highs.cancelSolve()

    return handling(cancel)


@dataclass(frozen=True)
class Progress:
    """Where a running stage stands (from HiGHS's MIP callbacks), for a live display."""

    stage: str
    objective: float | None  # best plan so far, in the stage's reported unit
    bound: float | None
    gap: float | None
    seconds: float  # since the stage started
    left: float | None  # seconds left of the stage's limit


Watch = Callable[[Progress], None]
WATCH_EVERY_S = 1.0  # at most one progress event a second between improvements


@contextlib.contextmanager
def _watching(opt: Highs, name: str, scale: float, time_left: float | None, watch: Watch | None):
    """Report the incumbent, the bound and the gap while HiGHS runs (improvements at once,
    otherwise at most every WATCH_EVERY_S). A failing display never stops the solve."""
    highs = getattr(opt, "_solver_model", None)
    if watch is None or highs is None or not hasattr(highs, "cbMipImprovingSolution"):
        yield
        return
    t0 = time.perf_counter()
    last = [-math.inf]

    def event(e, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - last[0] < WATCH_EVERY_S:
            return
        last[0] = now
        try:
            o = e.data_out
            obj = o.objective_function_value if abs(o.objective_function_value) < 1e50 else None
            bound = o.mip_dual_bound if abs(o.mip_dual_bound) < 1e50 else None
            watch(Progress(stage=name, objective=None if obj is None else obj * scale,
                           bound=None if bound is None else bound * scale,
                           gap=relative_gap(obj, bound), seconds=now - t0,
                           left=None if time_left is None else max(0.0, time_left - (now - t0))))
        except Exception:  # noqa: BLE001 - a display must not break the solve
            pass

    improving = lambda e: event(e, force=True)  # noqa: E731
    highs.cbMipImprovingSolution.subscribe(improving)
    highs.cbMipInterrupt.subscribe(event)
    try:
        yield
    finally:
        highs.cbMipImprovingSolution.unsubscribe(improving)
        highs.cbMipInterrupt.unsubscribe(event)


EFFORT = "effort budget"  # extra.stopped_by: HiGHS stopped at its node budget (reproducible)
WALL = "wall clock"  # extra.stopped_by: stopped by the time limit (may differ from run to run)
HARD = "hard stop"  # extra.stopped_by: HiGHS did not stop at its limit; its child process was killed


class _Stopper:
    """HiGHS's MIP callback that stops the search at a node budget (a function of the
    limit and the model, so the stop is reproducible) or, as a safety net beside
    HiGHS's own time limit, at a wall-clock end. It records which came first."""

    def __init__(self, nodes: int | None, wall_end: float | None, caught: list[str] | None = None):
        self.nodes, self.wall_end = nodes, wall_end
        self.caught = caught if caught is not None else []  # signals received (SIGINT/SIGTERM)
        self.reason: str | None = None

    def __call__(self, e) -> None:
        # HiGHS keeps the flag between runs of one Highs object: set it on every call (and
        # keep it set for a signal, which highspy's own interrupt handler may have raised).
        e.data_in.user_interrupt = bool(self.caught)
        if self.caught:
            return
        if self.reason is not None:
            e.data_in.user_interrupt = True
        elif self.nodes is not None and e.data_out.mip_node_count >= self.nodes:
            self.reason = EFFORT
            e.data_in.user_interrupt = True
        elif self.wall_end is not None and time.perf_counter() >= self.wall_end:
            self.reason = WALL
            e.data_in.user_interrupt = True


@contextlib.contextmanager
def _stopping(opt: Highs, stopper: _Stopper):
    highs = getattr(opt, "_solver_model", None)
    if highs is None or not hasattr(highs, "cbMipInterrupt"):
        yield
        return
    highs.cbMipInterrupt.subscribe(stopper)
    try:
        yield
    finally:
        highs.cbMipInterrupt.unsubscribe(stopper)


def _run(opt: Highs, m, name: str, time_left: float | None, watch: Watch | None = None,
         scale: float = 1.0, effort_s: float | None = None) -> StageResult:
    """One HiGHS run of at most ``time_left`` seconds (wall clock, the hand-over
    included) and, for a MIP, at most :func:`~optisite.deadline.node_budget` nodes for
    ``effort_s`` nominal seconds; ``extra.stopped_by`` says which stopped it. With a time
    limit HiGHS runs in a child process killed at the limit (:mod:`optisite.hard_stop`)."""
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
    stopper = _Stopper(None, None)
    with _cancel_on_signal(opt, caught), _quiet_interrupt():
        if time_left is not None or watch is not None or effort_s is not None:
            # Hand the model to HiGHS first and give HiGHS what is left of the limit: at a
            # million nonzeros the hand-over alone takes several seconds.
            _hand_over(opt, m, timer)
        if time_left is not None:
            time_left = max(time_left - (time.perf_counter() - t0), 0.01)
            opt.config.time_limit = time_left
        highs = getattr(opt, "_solver_model", None)
        size = 0 if highs is None else int(highs.getNumNz() + highs.getNumRow() + highs.getNumCol())
        stopper = _Stopper(node_budget(effort_s, size),
                           None if time_left is None else time.perf_counter() + time_left, caught)
        if time_left is not None and highs is not None and hard_stop.available(size):
            out = hard_stop.run(opt, stopper, time_left, caught, _relay(name, scale, time_left, watch))
        else:
            _use_threads(int(opt.highs_options.get("threads", 0)))
            with _watching(opt, name, scale, time_left, watch), _stopping(opt, stopper):
                res = opt.solve(m, timer=timer)
            out = hard_stop.outcome_of(opt, res, stopper, caught)
    return _result(opt, out, name, time.perf_counter() - t0, _handover_seconds(timer), stopper.nodes)


def _result(opt: Highs, out: hard_stop.Outcome, name: str, seconds: float, handover: float,
            node_budget_: int | None) -> StageResult:
    """A run's :class:`~optisite.hard_stop.Outcome` as a StageResult; its plan, if any, is
    loaded into the model's variables."""
    term = TerminationCondition[out.termination]
    status = _STATUS.get(term, "error")
    obj, bound, x = out.objective, out.bound, out.x
    extra: dict = {}
    if status == "time_limit" and term == TerminationCondition.maxTimeLimit:
        extra["stopped_by"] = WALL
    if out.killed:  # HiGHS did not return by its limit (+ grace): the parent stopped it
        status = "interrupted" if out.caught else "time_limit"
        extra["stopped_by"] = HARD
        extra["kept"] = out.kept
        if out.exit_code is not None:
            extra["child_exit_code"] = out.exit_code
    elif out.caught or out.interrupted:
        # Pyomo (6.10) maps HiGHS's kInterrupt to 'unknown' and drops the incumbent: read it here.
        # Our own stopper's interrupt is a limit, not a signal.
        status = "time_limit" if out.reason and not out.caught else "interrupted"
        if status == "time_limit":
            extra["stopped_by"] = out.reason
        if obj is None and x is not None:
            obj = out.info_objective
            bound = out.info_bound if out.nodes >= 0 else None
    has = obj is not None and x is not None
    if status == "optimal" and bound is None:
        bound = obj
    if status == "time_limit" and has and bound is not None and \
            abs(obj - bound) <= max(float(opt.config.mip_gap or 0.0), 1e-9) * max(1.0, abs(obj)):
        # Stopped at its limit on a plan its bound already proves (HiGHS had not yet
        # checked): optimal, so the later stages run; the stop stays in ``stopped_by``.
        status, extra["proven_at_stop"] = "optimal", True
    if has:
        _load(opt, x)
    if out.caught:
        extra["signal"] = out.caught[0]
    if node_budget_ is not None and out.nodes >= 0:  # a MIP: its effort, against its budget
        extra["nodes"], extra["node_budget"] = int(out.nodes), node_budget_
    return StageResult(
        name=name, status=status, objective=None if obj is None else float(obj),
        bound=None if bound is None else float(bound), gap=relative_gap(obj, bound),
        seconds=seconds, handover_seconds=handover, has_solution=has, extra=extra,
    )


def _load(opt: Highs, x) -> None:
    """Column values ``x`` of the model HiGHS holds into the Pyomo variables (APPSI's map)."""
    sol = highspy.HighsSolution()
    sol.col_value = x
    sol.value_valid = True
    opt._sol = sol
    opt.load_vars()


def _handover_seconds(timer: HierarchicalTimer) -> float:
    try:
        handover = timer.get_total_time("set_instance") if "set_instance" in timer.timers else 0.0
        if "update" in timer.timers:
            handover += timer.get_total_time("update")
    except Exception:  # timer layout differs across Pyomo versions; timings are informative only
        handover = 0.0
    return handover


def _relay(name: str, scale: float, time_left: float, watch: Watch | None):
    """The live display's callback for a stage run in a child (it streams its progress)."""
    if watch is None:
        return None
    t0 = time.perf_counter()

    def relay(obj: float | None, bound: float | None, _improving: bool) -> None:
        now = time.perf_counter() - t0
        try:
            watch(Progress(stage=name, objective=None if obj is None else obj * scale,
                           bound=None if bound is None else bound * scale, gap=relative_gap(obj, bound),
                           seconds=now, left=max(0.0, time_left - now)))
        except Exception:  # noqa: BLE001 - a display must not break the solve
            pass

    return relay


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


_THREADS: list[int] = []  # thread count our in-process runs started HiGHS's scheduler with


def _use_threads(threads: int) -> None:
    """HiGHS keeps one thread scheduler per process and refuses another thread count
    ("scheduler has already been initialized"): restart it when the count changes, and
    before our first in-process run (stages in a child leave the process's scheduler to
    whoever runs HiGHS here first, e.g. the staffing start at HiGHS's default count)."""
    if not _THREADS or _THREADS[0] != threads:
        highspy.Highs.resetGlobalScheduler(True)
        _THREADS[:] = [threads]


class StageSolver:
    """Runs HiGHS on Pyomo models under the one deadline of a solve, with the solve's
    threads, seed, gap, verbosity and signal handling. Every solver call of a solve
    goes through one of these, so no step runs HiGHS outside the limit."""

    def __init__(self, options: SolveOptions, deadline: Deadline, watch: Watch | None = None):
        self.options = options
        self.deadline = deadline
        self.watch = watch  # called with Progress while a MIP stage runs

    def _highs(self, highs_options: dict | None, *, gap: float) -> Highs:
        opt = Highs()
        opt.config.load_solution = False
        opt.config.mip_gap = gap
        opt.config.stream_solver = self.options.verbose
        threads = int(self.options.threads or 0)
        opt.highs_options = {"random_seed": int(self.options.seed), "mip_abs_gap": 1e-6, "threads": threads,
                             **(highs_options or {})}
        return opt

    def lexicographic(self, m, objectives: list[Objective], *, warm_start: bool = False,
                      highs_options: dict | None = None, canonical: bool = True,
                      time_limit: float | None = None, gap: float | None = None,
                      floor: float = 0.0, watch: bool = True, effort_s: float | None = None) -> list[StageResult]:
        """Minimise ``objectives[0]``, then each next one with the previous held at its
        value, then (``canonical``) the tie-break stages of :func:`_canonical`.
        A stage whose objective declares a ``floor`` is proven without HiGHS when the point
        held in the model (the start, or the previous stage's plan) is feasible and already
        at that floor (:func:`start_reaches`).

        The solver's objectives and holding rows live in a private block removed before
        returning: the model is left as built, with the plan in its variables' values.
        ``time_limit`` caps this call below the deadline (a start's share). A stage
        interrupted by SIGINT/SIGTERM ends the sequence: the model keeps the best plan
        found so far; if there is none, :class:`~optisite.signals.Interrupted` is raised. ``floor``:
        seconds each stage may take even past the deadline (an LP the tables need).
        ``watch``: report progress to the solver's watcher (off for auxiliary LPs).
        ``effort_s``: nominal seconds for this call's effort budget (stage 1 gets
        ``1 - LATER_STAGES_SHARE`` of it in branch-and-bound nodes, each later MIP stage
        half the rest); it must not depend on the clock. Default: the whole ``--time-limit``.
        """
        cap = None if time_limit is None else self.deadline.elapsed() + time_limit
        if effort_s is None:
            effort_s = self.options.time_limit

        def time_left() -> float | None:
            left = self.deadline.left()
            if cap is not None:
                rest = cap - self.deadline.elapsed()
                left = rest if left is None else min(left, rest)
            return None if left is None else max(floor, left)

        opt = self._highs(highs_options, gap=self.options.gap if gap is None else gap)
        opt.config.warmstart = warm_start  # the variables' current values are a MIP start
        blk = pyo.Block(concrete=True)
        m.add_component(_PRIVATE, blk)
        try:
            return self._stages(opt, m, blk, objectives, canonical, time_left, self.watch if watch else None,
                                effort_s)
        finally:
            m.del_component(blk)

    def _run(self, opt, m, name: str, left: float | None, watch=None, scale: float = 1.0,
             effort_s: float | None = None) -> StageResult:
        """:func:`_run`, noting on the deadline a stage the wall clock stopped."""
        stage = _run(opt, m, name, left, watch, scale, effort_s)
        plan = not name.startswith("bound:")  # a bound hook's runs ('bound: ...') leave the plan alone
        if stage.extra.get("stopped_by") == WALL:
            self.deadline.cut(f"stage '{name}' stopped by the wall clock", plan=plan)
        elif stage.extra.get("stopped_by") == HARD:
            kept = {"streamed plan": "it kept the last plan HiGHS had found",
                    "start": "it kept the start HiGHS was given"}.get(stage.extra.get("kept"), "no plan had been found")
            why = (f"HiGHS's process ended without a result (exit code {stage.extra['child_exit_code']})"
                   if "child_exit_code" in stage.extra else
                   f"HiGHS had not stopped {hard_stop.GRACE_S:g} s after its limit, so its process was ended")
            self.deadline.cut(f"stage '{name}' stopped by a hard stop after {stage.seconds:.1f} s: {why}; {kept}",
                              plan=plan)
        return stage

    def _skip(self, name: str, left: float | None) -> bool:
        """True (and noted) when the wall clock leaves no time for stage ``name``."""
        if left is not None and left <= 0.05:
            self.deadline.cut(f"stage '{name}' skipped: no time left")
            return True
        return False

    def _stages(self, opt, m, blk, objectives, canonical, time_left, watch, effort_s) -> list[StageResult]:
        first_obj = objectives[0]
        blk.obj0 = pyo.Objective(expr=first_obj.expr, sense=pyo.minimize)
        left = time_left()
        later = (len(objectives) > 1 or canonical) and self.options.lexicographic
        # The second stage's seconds are kept even when stage 1 overran its share (HiGHS
        # stops a little late, or a hard stop fires 1 s after): a time-limited plan must
        # still get its cost minimised at its coverage, so that no euro is spent for nothing.
        second_floor = 0.0 if left is None or not later else left * LATER_STAGES_SHARE / 2
        if left is not None and later:
            # Keep a share of the time for the later stages, so that a time-limited plan
            # still gets its cost minimised at its coverage and its ties broken.
            left = max(left * (1.0 - LATER_STAGES_SHARE), min(left, 0.05))
        later_effort = None if effort_s is None else effort_s * LATER_STAGES_SHARE / 2
        if effort_s is not None and later:
            effort_s *= 1.0 - LATER_STAGES_SHARE
        first = _at_floor(m, first_obj) if opt.config.warmstart else None
        if first is None:
            first = self._run(opt, m, first_obj.name, left, watch, first_obj.scale, effort_s)
        _scale(first, first_obj.scale)
        stages = [first]
        if first.status == "interrupted" and not first.has_solution:
            raise Interrupted(first.extra.get("signal", "SIGINT"))
        if not (self.options.lexicographic and first.has_solution and first.status in ("optimal", "time_limit")):
            return stages
        held = [(blk.obj0, first.objective / first_obj.scale)]
        for k, obj in enumerate(objectives[1:], start=1):
            left = time_left()
            if k == 1 and left is not None:
                left = max(left, second_floor)
            if self._skip(obj.name, left):
                return stages
            saved = _values(m)
            prev, value = held[-1]
            blk.add_component(f"hold{k - 1}", pyo.Constraint(
                expr=prev.expr <= value + 1e-6 * max(1.0, abs(value)) + 1e-6))
            prev.deactivate()
            new = pyo.Objective(expr=obj.expr, sense=pyo.minimize)
            blk.add_component(f"obj{k}", new)
            opt.config.warmstart = True
            opt.config.mip_gap = 1e-6
            stage = _at_floor(m, obj) or self._run(opt, m, obj.name, left, watch, obj.scale, later_effort)
            _scale(stage, obj.scale)
            stages.append(stage)
            if not stage.has_solution:  # keep the previous stage's plan
                _restore(m, saved)
                return stages
            held.append((new, stage.objective / obj.scale))
            if stage.status != "optimal":
                return stages
        # The first stage may have stopped at its limit: holding its incumbent's value, the
        # later stages still make the plan canonical among plans of that value and cost.
        if canonical and all(s.status == "optimal" for s in stages[1:]):
            last, value = held[-1]
            stages.extend(_canonical(opt, m, blk, last, value, first_obj.expr, time_left,
                                     lambda *a: self._run(*a, effort_s=later_effort), self._skip))
        return stages

    def minimise(self, m, objective: Objective, *, highs_options: dict | None = None) -> StageResult:
        """One stage, no tie-break (an LP, or a MIP solved to the options' gap)."""
        return self.lexicographic(m, [objective], highs_options=highs_options, canonical=False)[0]


LOWER_BOUND_METHOD = ("the plan reaches the objective's floor (no fewer than 0 people without access, "
                      "no cost below 0): proven without a search")
START_TOLERANCE = 1e-6  # absolute and relative, on rows, bounds and integrality


def _at_floor(m, obj: Objective) -> StageResult | None:
    """Stage ``obj`` proven without HiGHS when the point held in ``m`` reaches its floor."""
    value = None if obj.floor is None else start_reaches(m, obj.expr, obj.floor)
    if value is None:
        return None
    return StageResult(name=obj.name, status="optimal", objective=value, bound=obj.floor, gap=0.0,
                       has_solution=True, extra={"bound_method": LOWER_BOUND_METHOD})


def start_reaches(m, expr, lower_bound: float) -> float | None:
    """The value of ``expr`` at the values held in ``m`` when they are a feasible point (every
    variable set, within its bounds and integral where it must be, every active row met)
    at which ``expr`` is at ``lower_bound`` (within tolerance); None otherwise."""
    value = pyo.value(expr, exception=False)
    if value is None or value > lower_bound + START_TOLERANCE * max(1.0, abs(lower_bound)):
        return None
    for v in m.component_data_objects(pyo.Var, active=True, descend_into=True):
        x = v.value
        if x is None:
            if v.fixed or v.lb is None or v.lb > 0:
                return None
            continue  # an unused variable left unset reads as 0 below
        tol = START_TOLERANCE * max(1.0, abs(x))
        if (v.lb is not None and x < v.lb - tol) or (v.ub is not None and x > v.ub + tol):
            return None
        if v.is_integer() and abs(x - round(x)) > START_TOLERANCE:
            return None
    for c in m.component_data_objects(pyo.Constraint, active=True, descend_into=True):
        body = pyo.value(c.body, exception=False)
        if body is None:
            return None
        tol = START_TOLERANCE * max(1.0, abs(body))
        lo, up = c.lower, c.upper
        if (lo is not None and body < pyo.value(lo) - tol) or (up is not None and body > pyo.value(up) + tol):
            return None
    return float(value)


LATER_STAGES_SHARE = 0.15  # of the time left, kept for the cost and tie-break stages
_PRIVATE = "_optisite_solver"  # the solver's own block; removed after each call


def _scale(stage: StageResult, scale: float) -> None:
    if scale != 1.0 and stage.objective is not None:
        stage.objective *= scale
        stage.bound = None if stage.bound is None else stage.bound * scale


def _values(m) -> dict:
    return {id(v): v.value for v in m.component_data_objects(pyo.Var)}


def _restore(m, saved: dict) -> None:
    for v in m.component_data_objects(pyo.Var):
        v.set_value(saved[id(v)], skip_validation=True)


def tie_weight(name: str) -> float:
    """A pseudo-random weight in [1, 2) that depends only on a variable's name (ids)."""
    h = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return 1.0 + int.from_bytes(h, "big") / 2.0 ** 64


def _canonical(opt: Highs, m, blk, last, held: float, primary, time_left, run=_run,
               skip=lambda _name, left: left is not None and left <= 0.05) -> list[StageResult]:
    """Make the reported plan a function of the instance, not of the solver's path.

    The lexicographic stages may end on any of several plans of equal value (which
    practice sends the days, how flows split between equidistant sources), and
    HiGHS's parallel search picks among them differently with the thread count.
    Holding every objective at its optimum, the tie-break stage minimises a fixed
    pseudo-random linear function of the integer decisions (weights hashed from
    variable names, in [1, 2)): with generic weights the minimiser over a finite set is
    unique, so every run that proves it optimal returns the same integer plan. The
    flows stage fixes the integer decisions and maximises the same kind of function of
    the continuous variables outside the first objective (an LP, unique vertex). If a
    stage does not finish optimal (time limit, interrupt), the plan before it is kept.
    ``run`` runs one stage, ``skip`` says whether there is no time for one.
    """
    out: list[StageResult] = []
    saved = _values(m)
    ints = [v for v in m.component_data_objects(pyo.Var) if not v.fixed and (v.is_integer() or v.is_binary())]
    left = time_left()
    if skip("tie-break", left):
        return out
    blk.hold_last = pyo.Constraint(expr=last.expr <= held + 1e-9 * max(1.0, abs(held)) + 1e-7)
    last.deactivate()
    if ints:
        blk.obj_canonical = pyo.Objective(expr=sum(tie_weight(v.name) * v for v in ints), sense=pyo.minimize)
        opt.config.mip_gap = 0.0
        opt.highs_options = {**opt.highs_options, "mip_abs_gap": 1e-9}
        third = run(opt, m, "tie-break", left)
        out.append(third)
        blk.obj_canonical.deactivate()
        if third.status != "optimal":
            _restore(m, saved)
            return out
        saved = _values(m)
    in_primary = {id(v) for v in identify_variables(primary)}
    # Only variables that some active constraint bounds: a model may carry others unused
    # (the apl model keeps the staffing flows for its polish, with their rows off).
    constrained = {id(v) for c in m.component_data_objects(pyo.Constraint, active=True)
                   for v in identify_variables(c.body)}
    flows = [v for v in m.component_data_objects(pyo.Var)
             if not v.fixed and not (v.is_integer() or v.is_binary()) and id(v) not in in_primary
             and id(v) in constrained]
    if not flows:
        return out
    left = time_left()
    if skip("flows", left):
        return out
    # The integer decisions are held by equal bounds, not fixed: Pyomo's persistent HiGHS
    # interface rewrites every row of a fixed variable, which took 443 s of hand-over for
    # the 5-year phasing model on Ille-et-Vilaine; a bound change is one call per column.
    held_bounds = [(v, v.lb, v.ub) for v in ints if not v.fixed]
    for v, _, _ in held_bounds:
        x = float(round(v.value or 0.0))
        v.setlb(x)
        v.setub(x)
    blk.obj_flows = pyo.Objective(expr=sum(tie_weight(v.name) * v for v in flows), sense=pyo.maximize)
    try:
        fourth = run(opt, m, "flows", left)
    finally:
        for v, lb, ub in held_bounds:
            v.setlb(lb)
            v.setub(ub)
    out.append(fourth)
    if fourth.status != "optimal":
        _restore(m, saved)
    return out
