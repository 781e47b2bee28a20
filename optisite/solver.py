"""Solving a built model with HiGHS through Pyomo's persistent (APPSI) interface.

Two stages, lexicographic: minimise the uncovered population, then hold it at the
value found and minimise cost, so the reported plan spends nothing for nothing.
The stage-1 solution is the warm start of stage 2.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import pyomo.environ as pyo
from pyomo.common.timing import HierarchicalTimer
from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers.highs import Highs

MODELS = ("coverage", "staffing", "apl")


@dataclass(frozen=True)
class SolveOptions:
    """What the user may set for any model (CLI options map one to one)."""

    model: str = "staffing"
    time_limit: float | None = 600.0  # seconds for the whole solve, both stages
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


def _run(opt: Highs, m, name: str, time_left: float | None) -> StageResult:
    timer = HierarchicalTimer()
    if time_left is not None:
        opt.config.time_limit = max(time_left, 0.01)
    t0 = time.perf_counter()
    res = opt.solve(m, timer=timer)
    seconds = time.perf_counter() - t0
    status = _STATUS.get(res.termination_condition, "error")
    obj = res.best_feasible_objective
    bound = res.best_objective_bound
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
    )


def solve_lexicographic(m, options: SolveOptions) -> list[StageResult]:
    """Stage 1 (uncovered population), then stage 2 (cost at that coverage)."""
    opt = Highs()
    opt.config.load_solution = False
    opt.config.mip_gap = options.gap
    opt.config.stream_solver = options.verbose
    highs_options = {"random_seed": int(options.seed), "mip_abs_gap": 1e-6}
    if options.threads:
        highs_options["threads"] = int(options.threads)
    opt.highs_options = highs_options
    start = time.perf_counter()
    first = _run(opt, m, "uncovered", options.time_limit)
    stages = [first]
    if not (options.lexicographic and first.has_solution and first.status in ("optimal", "time_limit")):
        return stages
    if options.time_limit is not None:
        left = options.time_limit - (time.perf_counter() - start)
        if left <= 0.05:
            return stages
    else:
        left = None
    saved = {id(v): v.value for v in m.component_data_objects(pyo.Var)}
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
        for v in m.component_data_objects(pyo.Var):
            v.set_value(saved[id(v)], skip_validation=True)
    stages.append(second)
    return stages
