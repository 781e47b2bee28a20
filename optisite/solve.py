"""Solve one instance with one model: pairs -> model -> HiGHS -> tables -> checker.

``solve(instance, SolveOptions(...))`` is what the CLI, the frontier, the
benchmarks and a notebook call; it returns a :class:`~optisite.solution.Solution`
whose tables the independent checker has already verified.
"""

from __future__ import annotations

import platform
import shlex
import sys
import time
from dataclasses import replace
from importlib import metadata
from typing import Callable

import pandas as pd
import pyomo.environ as pyo

from . import __version__
from .errors import InfeasibleError, InputError
from .instance import Instance
from .models import coverage, staffing
from .reach import coverage_pairs, staffing_pairs
from .solution import Solution, derive, headline
from .solver import MODELS, SolveOptions, StageResult, relative_gap, solve_lexicographic

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


def _coverage_budget_checks(data: coverage.CoverageData) -> None:
    forced = [s for s in data.force_open if s in data.sites.index]
    need = float(data.sites.loc[forced].sum()) if forced else 0.0
    if need > data.budget * (1 + 1e-9) + 1e-6:
        raise InfeasibleError(
            f"the forced-open sites {', '.join(forced)} cost {need:,.0f}, above the budget of "
            f"{data.budget:,.0f} (constraint 'budget'): raise --budget or open fewer sites")
    positive = data.sites[data.sites > 0]
    if len(positive) and 0 < data.budget < float(positive.min()) - 1e-9 and len(positive) == len(data.sites):
        raise InputError(
            f"budget {data.budget:,.0f} is below the cheapest site ({positive.idxmin()}: "
            f"{positive.min():,.0f}), so nothing could be opened", column="budget",
            fix="raise the budget (is it in EUR/year, not thousands?) or give --budget 0 to evaluate "
                "the existing supply alone")


def baseline_flows(instance: Instance, pairs: pd.DataFrame) -> pd.DataFrame:
    """Demand served by the existing practices alone (an LP: the 'before' state)."""
    closed = tuple(instance.sites.index)
    base = instance.with_parameters({"budget": 0})
    data = staffing.prepare(base, pairs, staffing_pairs(base).iloc[0:0], force_closed=closed)
    m = staffing.build(data)
    solve_lexicographic(m, SolveOptions(time_limit=None, lexicographic=False))
    return staffing.decisions(m, data)["flows"]


def add_apl(instance: Instance, model: str, tables: dict) -> dict | None:
    """APL before and after in zones.csv, and its summary (staffing and apl plans only)."""
    from .apl import apl_after, apl_before, apl_inputs, apl_summary

    if model == "coverage":
        return None
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
    pop = instance.zones["population"]
    thresholds = sorted({2.5, 4.0, float(p.apl_threshold)})
    return {
        "threshold": float(p.apl_threshold), "decay": inputs.decay, "demand_basis": inputs.demand_basis,
        "before": apl_summary(before, pop, thresholds), "after": apl_summary(after, pop, thresholds),
    }


APL_START_SHARE = 0.25  # share of the time limit given to the staffing plan that starts the apl search


def _apl_start(instance: Instance, pairs, links, options: SolveOptions, m, say):
    """Solve the staffing model briefly and hand its plan to the apl model as a MIP start.

    The apl model's LP bound is weak (a zone's binary needs the whole threshold) and
    HiGHS alone may stop on a plan worse than the existing supply; starting from the
    staffing plan means the apl plan is never worse, on APL, than that plan.
    """
    from .models import apl as apl_model

    total = options.time_limit
    share = None if total is None else max(1.0, APL_START_SHARE * total)
    say("solving the staffing model to start the apl search")
    data = staffing.prepare(instance, pairs, links, options.force_open, options.force_closed)
    sm = staffing.build(data)
    t = time.perf_counter()
    stages = solve_lexicographic(sm, replace(options, time_limit=share, gap=max(options.gap, 1e-3),
                                              lexicographic=False),
                                 highs_options=highs_options_for("staffing", sm)[0])
    if not stages or not stages[0].has_solution:
        return options, []
    lifted = apl_model.set_start(m, sm)
    stages[0].extra["apl_objective"] = float(pyo.value(m.uncovered))
    say(f"staffing start lifts {lifted} zone(s) to the threshold; "
        f"{stages[0].extra['apl_objective']:,.0f} inhabitants stay under it")
    if total is not None:
        options = replace(options, time_limit=max(0.1, total - (time.perf_counter() - t)))
    for s in stages:
        s.name = "start: " + s.name
    return options, stages


PRESOLVE_OFF_ABOVE = 300_000  # columns; see highs_options_for


def highs_options_for(model: str, m) -> tuple[dict, str | None]:
    """Model-specific HiGHS options, and a warning for the report when one matters.

    The coverage model's root LP is solved by interior point (simplex took 43 s on
    San Francisco p = 50, IPM 3 s). Above ``PRESOLVE_OFF_ABOVE`` columns HiGHS's MIP
    presolve ignores the time limit and Ctrl-C (a 5,115-commune staffing model,
    654k columns: 486 s on a 60 s limit, no plan); with presolve off it stops at its
    limit with a plan, so presolve is switched off there and the report says so.
    """
    if model == "coverage":
        return dict(COVERAGE_HIGHS), None
    n = m.nvariables()
    if n > PRESOLVE_OFF_ABOVE:
        return {"presolve": "off"}, (
            f"HiGHS presolve switched off: the model has {n:,} columns, and above {PRESOLVE_OFF_ABOVE:,} "
            "HiGHS's presolve does not stop at the time limit; the bound may be weaker")
    return {}, None


COVERAGE_START_SHARE = 0.25  # at most this share of the time limit goes to the greedy + local search start
COVERAGE_START_MAX_S = 60.0  # and at most this many seconds (also the cap without a time limit)
COVERAGE_HIGHS = {"mip_lp_solver": "ipm"}  # see models/coverage.md: the root LP by interior point


def _coverage_start(data, m, options: SolveOptions, say):
    """Write the greedy + local-search plan into the coverage model as its MIP start;
    the seconds it takes come out of the time limit."""
    from .heuristics import greedy_coverage, set_coverage_start

    total = options.time_limit
    seconds = COVERAGE_START_MAX_S if total is None else min(COVERAGE_START_MAX_S, max(0.2, COVERAGE_START_SHARE * total))
    t = time.perf_counter()
    plan = greedy_coverage(data, seconds=seconds, seed=options.seed)
    set_coverage_start(m, plan)
    value = float(pyo.value(m.uncovered))
    used = time.perf_counter() - t
    say(f"greedy start opens {len(plan)} site(s), {value:,.0f} uncovered")
    if total is not None:
        options = replace(options, time_limit=max(0.1, total - used))
    return options, [StageResult(name="start: greedy + local search", status="feasible", objective=value,
                                 seconds=used, has_solution=True)]


def solve(instance: Instance, options: SolveOptions | None = None, *, check: bool = True,
          command: str | None = None, progress: Progress | None = None) -> Solution:
    """Solve ``instance`` with ``options.model``; the result is checked unless ``check=False``."""
    options = options or SolveOptions()
    say = progress or (lambda _msg: None)
    if options.model not in MODELS:
        raise InputError(f"unknown model '{options.model}'", column="--model", fix="use " + ", ".join(MODELS))
    _check_forced(instance, options)
    t0 = time.perf_counter()
    say("finding reachable pairs")
    pairs = coverage_pairs(instance)
    before_flows = None
    reductions: dict = {}
    if options.model == "coverage":
        data = coverage.prepare(instance, pairs, options.force_open, options.force_closed)
        _coverage_budget_checks(data)
        say(f"building coverage model ({len(data.sites)} candidate sites, {len(data.dominated)} left out as "
            f"dominated, {len(data.zones)} zones to cover)")
        m = coverage.build(data)
        read = lambda: coverage.decisions(m)  # noqa: E731
        reductions = {"candidates_kept": len(data.sites), "candidates_dominated": len(data.dominated),
                      "zones": len(data.zones), "zone_classes": len(m.I)}
    elif options.model == "staffing":
        links = staffing_pairs(instance)
        data = staffing.prepare(instance, pairs, links, options.force_open, options.force_closed)
        say(f"building staffing model ({len(data.cabinets)} cabinets, {len(data.centres)} centres, "
            f"{len(data.links)} practice-cabinet links, {len(data.flows)} demand pairs)")
        m = staffing.build(data)
        read = lambda: staffing.decisions(m, data)  # noqa: E731
    else:
        from .models import apl as apl_model

        links = staffing_pairs(instance)
        data = apl_model.prepare(instance, pairs, links, options.force_open, options.force_closed)
        say("building apl model")
        m = apl_model.build(data)
        read = lambda: apl_model.decisions(m, data)  # noqa: E731
    t_build = time.perf_counter() - t0

    start_stages: list[StageResult] = []
    run_options = options
    warm = False
    if options.model == "apl":
        run_options, start_stages = _apl_start(instance, pairs, links, options, m, say)
        warm = bool(start_stages)
    elif options.model == "coverage" and len(data.sites):
        run_options, start_stages = _coverage_start(data, m, options, say)
        warm = True
    say("solving with HiGHS")
    extra_highs, highs_warning = highs_options_for(options.model, m)
    stages = solve_lexicographic(m, run_options, warm_start=warm, highs_options=extra_highs)
    first = stages[0]
    if first.status == "infeasible":
        raise InfeasibleError(
            "HiGHS proved the settings infeasible: check forced-open sites (--open) against the budget, "
            "their minimum presence (cabinet_min_days, centre_min_fte) and the practices able to staff them")
    if first.status == "error":
        raise InfeasibleError("HiGHS stopped with an error before finding a plan; re-run with --verbose")
    t_solve = time.perf_counter() - t0 - t_build

    warnings: list[str] = [highs_warning] if highs_warning else []
    if first.has_solution:
        dec = read()
    else:
        dec = {"open_sites": [], "days": None, "fte": pd.Series(dtype=float),
               "flows": pd.DataFrame(columns=["zone_id", "source_id", "consultations"])}
        warnings.append("no feasible plan was found before the time limit: the tables show no opened site")
    if options.model != "coverage":
        say("computing the existing supply's coverage (before)")
        before_flows = baseline_flows(instance, pairs)
        if not first.has_solution:
            dec["flows"] = before_flows
    tables = derive(instance, options.model, dec, pairs=pairs, before_flows=before_flows)
    apl_info = add_apl(instance, options.model, tables)
    if instance.supply_source == "illustrative":
        warnings.append("the existing GP supply of this instance is ILLUSTRATIVE: generated by a documented "
                        "rule, not observed; results show the method, not the real territory")
    if instance.parameters.budget == 0:
        warnings.append("budget 0: the plan evaluates the existing supply only")

    status = first.status
    stopped = [s for s in stages if s.status == "interrupted"]
    if stopped:  # SIGINT/SIGTERM: the best plan found so far, said so
        status = "interrupted"
        warnings.append(f"the solve was interrupted ({stopped[0].extra.get('signal', 'signal')}) during stage "
                        f"'{stopped[0].name}': the plan is the best found so far, not proven optimal")
    objective, gap = first.objective, first.gap
    if options.model == "apl" and first.has_solution and apl_info:
        # The MIP only forces b_i <= [APL_i >= T]; a stopped search may leave b_i = 0 where the
        # plan already lifts zone i. Setting those b_i to 1 is feasible, so the plan's true
        # count is an objective value the model attains: report it.
        under = float(apl_info["after"]["under"][apl_info["threshold"]])
        if objective is not None and under < objective - 1e-6:
            warnings.append(f"the solver's incumbent counted {objective:,.0f} inhabitants under the threshold; "
                            f"its plan leaves {under:,.0f}, reported as the objective")
            objective = under
            gap = relative_gap(objective, first.bound)
    summary = {
        "model": options.model,
        "status": status,
        "objective": objective,
        "bound": first.bound,
        "gap": gap,
        **headline(instance, tables),
        "objective_unit": "weighted inhabitants without access" if options.model != "apl"
        else "inhabitants under the APL threshold",
        "parameters": instance.parameters.to_dict(),
        "options": options.to_dict(),
        "instance": {
            "name": instance.name, "fingerprint": instance.fingerprint,
            "folder": None if instance.folder is None else str(instance.folder),
            "supply_source": instance.supply_source, "provenance": dict(instance.provenance),
            "travel": instance.travel.describe(),
        },
        "solver": {"name": "HiGHS via Pyomo APPSI", "stages": [s.to_dict() for s in stages],
                   "start_stages": [s.to_dict() for s in start_stages], "reductions": reductions,
                   "interrupted_by": stopped[0].extra.get("signal") if stopped else None},
        "timings": {"build": t_build, "solve": t_solve},
        "versions": versions(),
        "warnings": warnings,
        "command": command or shlex.join(["optisite", *sys.argv[1:]]),
    }
    if apl_info:
        summary["apl"] = apl_info
    sol = Solution(summary=summary, zone_geometry=instance.geometry, **tables)
    if check:
        from .checker import check_solution

        say("checking the plan independently")
        t1 = time.perf_counter()
        report = check_solution(instance, sol)
        summary["check"] = report.to_dict()
        summary["timings"]["check"] = time.perf_counter() - t1
    summary["timings"]["total"] = time.perf_counter() - t0
    return sol


__all__ = ["solve", "SolveOptions", "StageResult", "baseline_flows", "versions"]
