"""Solve one instance with one model, under one deadline:
prepare -> build -> status quo -> start -> HiGHS stages -> decisions -> polish ->
bound -> tables -> APL -> summary -> checker.

``solve(instance, SolveOptions(...))`` is what the CLI, the frontier, the benchmarks
and a notebook call; it returns a :class:`~optisite.solution.Solution` whose tables
the independent checker has already verified. Every model-specific step is a hook of
the model object (``optisite/models/base.py``): nothing here knows a model's name.
"""

from __future__ import annotations

import math
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Callable

from . import __version__
from . import models as registry
from .deadline import Deadline, floor_warning, post_solve_reserve
from .errors import InfeasibleError, InputError
from .instance import Instance
from .models.base import Context, Decisions, Model
from .solution import Solution, derive, headline, plan_objective, planning_zones
from .solver import WALL, SolveOptions, StageResult, StageSolver, Watch, relative_gap
from .summary import Summary

Progress = Callable[[str], None]


def versions() -> dict[str, str]:
    out = {"optisite": __version__, "python": platform.python_version()}
    for pkg in ("pyomo", "highspy", "pandas", "numpy", "geopandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def _check_forced(instance: Instance, options: SolveOptions) -> None:
    both = set(options.force_open) & set(options.force_closed)
    if both:
        raise InputError(f"site '{sorted(both)[0]}' is both forced open and forced closed",
                         column="--open/--close", fix="name each site once")
    for flag, ids in (("--open", options.force_open), ("--close", options.force_closed)):
        for sid in ids:
            if sid not in instance.sites.index:
                raise InputError(f"unknown site id '{sid}' in {flag}", column=flag,
                                 fix="use a site_id of the instance's sites table")


@dataclass
class Built:
    """A model built for an instance, not solved: its declarations, data and Pyomo model."""

    model: Model
    data: object
    pyomo: object
    context: Context


def build(instance: Instance, options: SolveOptions | None = None) -> Built:
    """Prepare and build ``options.model`` on ``instance`` without solving (for inspection,
    tests and benchmarks that solve the model their own way)."""
    options = options or SolveOptions()
    model = registry.get(options.model).variant(instance.parameters)
    _check_forced(instance, options)
    deadline = Deadline(options.time_limit)
    ctx = Context(instance=instance, options=options, deadline=deadline, solver=StageSolver(options, deadline))
    data = model.prepare(ctx)
    return Built(model=model, data=data, pyomo=model.build(data), context=ctx)


def solve(instance: Instance, options: SolveOptions | None = None, *, check: bool = True,
          command: str | None = None, progress: Progress | None = None, watch: Watch | None = None,
          started: float | None = None) -> Solution:
    """Solve ``instance`` with the model ``options.model``; the result is checked unless ``check=False``.

    ``progress`` receives a line per step; ``watch`` receives the incumbent, bound and
    gap while HiGHS searches (:class:`~optisite.solver.Progress`). ``started``: the
    ``perf_counter`` reading the time limit counts from (the command's start; default now)."""
    options = options or SolveOptions()
    model = registry.get(options.model).variant(instance.parameters)
    _check_forced(instance, options)
    deadline = Deadline(options.time_limit, start=started)
    ctx = Context(instance=instance, options=options, deadline=deadline,
                  solver=StageSolver(options, deadline, watch), say=progress or (lambda _msg: None))
    timings: dict[str, float] = {}

    # -- data and model ------------------------------------------------------------
    ctx.say("finding reachable pairs")
    data = model.prepare(ctx)
    ctx.say(model.describe(data))
    m = model.build(data)
    timings["build"] = deadline.elapsed()
    below_floor = floor_warning(options.time_limit, timings["build"], len(instance.zones))

    # -- the status quo, the start and the search ---------------------------------------
    if model.result.access == "flows":
        ctx.say("computing the existing supply's coverage (before)")
        ctx.baseline = model.baseline_flows(ctx, data)
    start_stages = model.start(ctx, data, m)
    ctx.say("solving with HiGHS")
    highs_options, highs_warning = model.highs_options(m)
    # The steps after the search (tables, APL, checker, writing) keep their estimated
    # seconds; a model with a bound hook may keep a declared share of the rest for it.
    # The effort budget follows the same shares of the limit itself, never of the clock.
    reserve = post_solve_reserve(options.time_limit, len(instance.zones))
    left = deadline.left()
    keep = model.bound_share if left is not None and left >= model.bound_share_from_s else 0.0
    cap = None if left is None else max(0.0, left - reserve) * (1.0 - keep)
    limit = options.time_limit
    effort = None if limit is None else max(0.0, limit - reserve) * (
        1.0 - (model.bound_share if limit >= model.bound_share_from_s else 0.0))
    stages = ctx.solver.lexicographic(m, model.objectives(m), warm_start=bool(start_stages),
                                      highs_options=highs_options, time_limit=cap, effort_s=effort)
    first = stages[0]
    if first.status == "infeasible":
        raise InfeasibleError(
            "HiGHS proved the settings infeasible: check forced-open sites (--open) against the budget and the "
            "funders' envelopes (funder_envelopes), "
            "their minimum presence (cabinet_min_days, centre_min_fte) and the practices able to staff them")
    if first.status == "error":
        raise InfeasibleError("HiGHS stopped with an error before finding a plan; re-run with --verbose")
    timings["solve"] = deadline.elapsed() - timings["build"]

    # -- the plan --------------------------------------------------------------------
    warnings: list[str] = [w for w in (below_floor, highs_warning) if w]
    ctx.flows_final = any(s.name == "flows" and s.status == "optimal" for s in stages)
    if first.has_solution:
        dec = model.polish(ctx, data, model.decisions(ctx, data, m))
    else:
        dec, what = _fallback(model, ctx, data)
        warnings.append(f"HiGHS returned no plan before the time limit, so the plan is {what}")
    bound, bound_method = _bound(model, ctx, data, m, stages)
    timings["search"] = deadline.elapsed() - timings["build"]
    tables, apl_info = _tables(instance, model, ctx, dec)
    objective, gap = first.objective, relative_gap(first.objective, bound)
    if first.has_solution and model.result.objective != "cost_total":
        after = plan_objective(model.result, instance, tables, apl_info)
        before = plan_objective(model.result, instance, tables, apl_info, before=True)
        if after > before + 1e-6 * max(1.0, before):
            # A plan is never worse than doing nothing: a stopped search can hold one that is.
            warnings.append(f"the best plan found before the time limit leaves {after:,.0f} {model.objective_unit}, "
                            f"more than the existing supply alone ({before:,.0f}): the plan opens nothing")
            dec, _ = _fallback(model, ctx, data)
            tables, apl_info = _tables(instance, model, ctx, dec)
            objective = None
    if instance.supply_source == "calibrated":
        warnings.append("the existing GP supply of this instance is calibrated to the DREES APL 2023: estimated "
                        "so that the computed APL matches the official one, not observed practice by practice")
    if instance.supply_source == "illustrative":
        warnings.append("the existing GP supply of this instance is ILLUSTRATIVE: generated by a documented "
                        "rule, not observed; results show the method, not the real territory")
    if instance.parameters.budget == 0 and model.result.budgeted:
        warnings.append("budget 0: the plan evaluates the existing supply only")

    status = first.status
    stopped = [s for s in stages + ctx.extra_stages if s.status == "interrupted"]
    if stopped:  # SIGINT/SIGTERM: the best plan found so far, said so
        status = "interrupted"
        warnings.append(f"the solve was interrupted ({stopped[0].extra.get('signal', 'signal')}) during stage "
                        f"'{stopped[0].name}': the plan is the best found so far, not proven optimal")
    stop = _stop(deadline, start_stages, stages + ctx.extra_stages)
    cut = None if stop["reproducible"] else _cut_warning(deadline)
    if cut:
        warnings.append(cut)
    if objective is None or not first.has_solution:
        # The plan is the status quo: its value is what the tables say (the checker recomputes it).
        objective = plan_objective(model.result, instance, tables, apl_info)
        gap = relative_gap(objective, bound)
    summary = Summary(
        model=model.name, status=status, objective=objective, bound=bound, gap=gap,
        objective_unit=model.objective_unit, result=model.result.to_dict(),
        bound_method=bound_method,
        **headline(instance, tables),
        parameters=instance.parameters.to_dict(), options=options.to_dict(),
        instance={"name": instance.name, "fingerprint": instance.fingerprint,
                  "data_fingerprint": instance.data_fingerprint,
                  "folder": None if instance.folder is None else str(instance.folder),
                  "supply_source": instance.supply_source, "provenance": dict(instance.provenance),
                  "travel": instance.travel.describe()},
        solver={"name": "HiGHS via Pyomo APPSI", "stages": [s.to_dict() for s in stages + ctx.extra_stages],
                "start_stages": [s.to_dict() for s in start_stages],
                "reductions": model.reductions(data, m),
                "interrupted_by": stopped[0].extra.get("signal") if stopped else None,
                **stop},
        timings=timings, versions=versions(), warnings=warnings,
        command=command or shlex.join(["optisite", *sys.argv[1:]]), apl=apl_info,
    )
    fin = model.finish(ctx, data, tables, summary)
    if fin.objective is not None:
        summary.objective = fin.objective
        summary.gap = relative_gap(fin.objective, summary.bound)
    summary.warnings.extend(fin.warnings + ctx.warnings)
    sol = Solution(summary=summary, zone_geometry=instance.geometry, instance=instance, **tables)
    if check:
        from .checker import check_solution

        ctx.say("checking the plan independently")
        t1 = time.perf_counter()
        summary.check = check_solution(instance, sol).to_dict()
        timings["check"] = time.perf_counter() - t1
    timings["total"] = deadline.elapsed()
    return sol


_CUT_COST = {  # what a wall-clock cut of a step costs the plan, for the warning
    "'cost'": "its cost may not be the least for its coverage",
    "'tie-break'": "another run may return another plan of the same value",
    "'flows'": "another run may split the demand flows differently",
    "polish": "its demand flows are the search's, not re-optimised for its staffing",
    "start": "the start HiGHS began from may differ from run to run",
}


def _cut_warning(deadline: Deadline) -> str | None:
    """One sentence saying what the time limit cost the plan (``None``: nothing cut)."""
    if not deadline.cuts:
        return None
    costs = [c for key, c in _CUT_COST.items() if any(key in cut for cut in deadline.cuts)]
    return (f"the time limit cut {'; '.join(deadline.cuts)}"
            + (f": {'; '.join(costs)}" if costs else "")
            + "; the search did not stop on its effort budget, so re-running may give another plan")


def _stop(deadline: Deadline, start: list[StageResult], stages: list[StageResult]) -> dict:
    """What stopped the search and whether the run can be reproduced: its tables are when
    the wall clock cut no stage of the search (stopped or skipped it) and either cut
    nothing else or every stage proved its optimum (the canonical plan is then unique,
    whatever the start) (``models/solving.md``, "Reproducibility").
    Cuts of the bound hook change only the reported bound and are listed apart."""
    stopped = sorted({s.extra["stopped_by"] for s in start + stages if s.extra.get("stopped_by")})
    for s in start + stages:  # stages run outside the StageSolver (a heuristic start) report here
        if s.extra.get("stopped_by") == WALL:
            deadline.cut(f"stage '{s.name}' stopped by the wall clock", plan=not s.name.startswith("bound:"))
    interrupted = any(s.status == "interrupted" for s in start + stages)
    optimal = all(s.status == "optimal" for s in stages if not s.name.startswith("bound:"))
    search_cuts = [c for c in deadline.cuts if not c.startswith("stage 'start")]  # a skipped stage counts
    start_cut = len(search_cuts) < len(deadline.cuts)
    return {"stopped_by": stopped, "wall_clock_cuts": list(deadline.cuts),
            "bound_wall_clock_cuts": list(deadline.bound_cuts),
            "reproducible": not interrupted and not search_cuts and (optimal or not start_cut)}


HIGHS_BOUND = "HiGHS branch and bound (dual bound of the first stage)"


def _bound(model: Model, ctx: Context, data, m, stages: list[StageResult]) -> tuple[float | None, str]:
    """The best valid bound on the first objective and the method that proved it: HiGHS's
    dual bound of stage 1, or the model's :meth:`~optisite.models.base.Model.bound` hook
    when stage 1 stopped before optimality, time is left, and the hook proves more.

    When the hook wins, stage 1's entry carries the best bound (its HiGHS figure moves to
    ``extra.highs_bound``), since the checker reads the bound from stage 1."""
    first = stages[0]
    if first.extra.get("bound_method"):  # stage 1 proven by the objective's floor, not by HiGHS
        return first.bound, first.extra["bound_method"]
    if first.status in ("optimal", "interrupted", "infeasible", "error") \
            or any(s.status == "interrupted" for s in stages):
        return first.bound, HIGHS_BOUND
    if ctx.deadline.expired(0.0):
        ctx.deadline.cut("bound hook skipped: no time left", plan=False)
        return first.bound, HIGHS_BOUND
    got = model.bound(ctx, data, m, stages)
    if got is None or got[0] is None or not math.isfinite(got[0]):
        return first.bound, HIGHS_BOUND
    value, method = got
    if first.bound is not None and value <= first.bound:
        return first.bound, HIGHS_BOUND
    if first.objective is not None and value > first.objective:
        # A valid bound cannot exceed a plan's value: only round-off can put it there.
        value = first.objective
    first.extra["highs_bound"] = first.bound
    first.extra["bound_method"] = method
    first.bound = value
    first.gap = relative_gap(first.objective, value)
    return value, method


def _fallback(model: Model, ctx: Context, data) -> tuple[Decisions, str]:
    dec, what = model.fallback(ctx, data)
    if model.result.access == "flows" and dec.flows is None:
        dec.flows = ctx.baseline
    return dec, what


def _as_dict(dec: Decisions) -> dict:
    return {"open_sites": dec.open_sites, "days": dec.days, "fte": dec.fte, "flows": dec.flows}


def _tables(instance: Instance, model: Model, ctx: Context, dec: Decisions) -> tuple[dict, dict | None]:
    tables = derive(instance, model.result, _as_dict(dec), pairs=ctx.pairs, before_flows=ctx.baseline)
    return tables, (_add_apl(instance, model, tables) if model.result.apl else None)


def _add_apl(instance: Instance, model: Model, tables: dict) -> dict:
    """APL before and after in zones.csv, and its summary (models whose result has capacities)."""
    import pandas as pd

    from .apl import apl_after, apl_before, apl_inputs, apl_summary
    from .official import apl_official

    p = instance.parameters
    inputs = apl_inputs(instance)
    sites, prac = tables["sites"], tables["practices"]
    before = apl_before(instance, inputs=inputs)
    after = apl_after(instance, pd.Series(sites["capacity"].to_numpy(float), index=sites["site_id"]),
                      pd.Series(prac["capacity_after"].to_numpy(float), index=prac["practice_id"]),
                      inputs=inputs)
    z = tables["zones"]
    z["apl_before"] = before.reindex(z["zone_id"]).to_numpy()
    z["apl_after"] = after.reindex(z["zone_id"]).to_numpy()
    z["apl_official"] = apl_official(instance).reindex(z["zone_id"]).to_numpy()  # DREES 2023, NaN if absent
    pop = instance.zones["population"][planning_zones(instance)]  # the planning territory only
    thresholds = sorted({2.5, 4.0, float(p.apl_threshold)})
    return {
        "threshold": float(p.apl_threshold), "decay": inputs.decay, "demand_basis": inputs.demand_basis,
        "before": apl_summary(before, pop, thresholds), "after": apl_summary(after, pop, thresholds),
    }


__all__ = ["build", "solve", "Built", "SolveOptions", "StageResult", "versions"]
