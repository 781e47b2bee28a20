"""Bound methods (issue 18 item 4): every bound a model's ``bound`` hook proves is valid
(never above the optimum found by enumeration), and the pipeline reports the best one
with the method that proved it."""

from __future__ import annotations

import math

import pytest
import pyomo.environ as pyo

from optisite import load_instance
from optisite import pipeline
from optisite.models.base import Model
from optisite.models.staffing import RELAXATION_METHOD, relaxation_bound
from optisite.models.staffing_bound import LAGRANGIAN_METHOD
from optisite.pipeline import HIGHS_BOUND, SolveOptions, solve
from optisite.solver import StageResult, StageSolver

from test_models import brute_force_staffing, small_staffing_instance

CASES = [(0, 40000), (1, 60000), (2, 90000), (3, 150000), (4, 250000), (5, 120000)]


@pytest.mark.parametrize("seed,budget", CASES)
def test_relaxation_bound_is_below_the_enumerated_optimum(seed, budget):
    inst = small_staffing_instance(seed, budget)
    unc, _cost = brute_force_staffing(inst)
    built = pipeline.build(inst, SolveOptions(model="staffing", time_limit=60, gap=0, threads=1))
    m = built.pyomo
    stage = relaxation_bound(built.context, m)
    assert stage.status == "optimal"
    assert stage.bound <= unc + 1e-6 * max(1.0, unc)
    # It is a relaxation: its optimum is at most the model's, and at least the LP's.
    lp = pipeline.build(inst, SolveOptions(model="staffing")).pyomo
    for var in (lp.d, lp.f, lp.y, lp.o):
        for v in var.values():
            v.domain = pyo.Reals
    lp_stage = StageSolver(SolveOptions(lexicographic=False), built.context.deadline).minimise(
        lp, built.model.objectives(lp)[0])
    assert lp_stage.objective <= stage.bound + 1e-6 * max(1.0, unc)
    # The model is left as built: integer days and FTE.
    assert all(v.domain is pyo.NonNegativeIntegers for v in list(m.d.values()) + list(m.f.values()))


@pytest.mark.parametrize("seed,budget", CASES[:3])
def test_highs_bound_is_exact_when_optimal(seed, budget):
    """The reference method: HiGHS's bound of an optimal stage 1 (gap 0) is the optimum."""
    inst = small_staffing_instance(seed, budget)
    unc, _cost = brute_force_staffing(inst)
    sol = solve(inst, SolveOptions(model="staffing", time_limit=60, gap=0, threads=1))
    assert sol.summary["bound_method"] == HIGHS_BOUND
    assert sol.summary["bound"] == pytest.approx(unc, rel=1e-6, abs=1e-4)


class _Hook(Model):
    def __init__(self, value):
        self.value, self.calls = value, 0

    def bound(self, ctx, data, m, stages):
        self.calls += 1
        return None if self.value is None else (self.value, "test method")


def _stages(status="time_limit", objective=100.0, bound=80.0):
    return [StageResult(name="uncovered", status=status, objective=objective, bound=bound, gap=0.2,
                        has_solution=True)]


def _ctx():
    return pipeline.build(load_instance("instances/tiny"), SolveOptions(time_limit=60)).context


@pytest.mark.parametrize("value,want,method", [
    (90.0, 90.0, "test method"),  # tighter: kept, and named
    (70.0, 80.0, HIGHS_BOUND),  # weaker: HiGHS's stays
    (None, 80.0, HIGHS_BOUND),  # no bound
    (100.0 + 1e-9, 100.0, "test method"),  # round-off above the plan: at most the plan's value
])
def test_pipeline_keeps_the_best_bound_and_names_its_method(value, want, method):
    stages = _stages()
    hook = _Hook(value)
    got = pipeline._bound(hook, _ctx(), None, None, stages)
    assert got == (pytest.approx(want), method)
    assert stages[0].bound == pytest.approx(want)  # the checker reads the bound from stage 1
    if method != HIGHS_BOUND:
        assert stages[0].extra == {"highs_bound": 80.0, "bound_method": "test method"}
        assert stages[0].gap == pytest.approx((100.0 - want) / 100.0)


@pytest.mark.parametrize("status", ["optimal", "interrupted"])
def test_hook_is_not_called_when_stage_one_is_optimal_or_interrupted(status):
    hook = _Hook(90.0)
    assert pipeline._bound(hook, _ctx(), None, None, _stages(status=status)) == (80.0, HIGHS_BOUND)
    assert hook.calls == 0


def test_solve_reports_the_relaxation_bound_and_the_checker_accepts_it(monkeypatch, tmp_path):
    """End to end on tiny: stage 1 is made to look stopped with a weaker (still valid) bound,
    so the staffing hook runs for real; solution.json, the checker and the report agree."""
    real = StageSolver.lexicographic

    def stopped_early(self, m, objectives, **kw):
        stages = real(self, m, objectives, **kw)
        if objectives[0].name == "uncovered" and len(objectives) > 1:
            first = stages[0]
            first.status, first.bound = "time_limit", first.bound * 0.5
        return stages

    monkeypatch.setattr(StageSolver, "lexicographic", stopped_early)
    inst = load_instance("instances/tiny")
    sol = solve(inst, SolveOptions(model="staffing", time_limit=60, threads=1))
    S = sol.summary
    first = S["solver"]["stages"][0]
    # The Lagrangian comes first and proves tiny's plan, so the relaxation is not run.
    assert S["bound_method"] == LAGRANGIAN_METHOD
    assert first["extra"]["highs_bound"] < S["bound"] <= S["objective"] + 1e-6
    assert S["bound"] == pytest.approx(S["objective"], rel=1e-6)
    assert S["bound"] == first["bound"]
    names = [s["name"] for s in S["solver"]["stages"]]
    assert "bound: Lagrangian of the capacity rows" in names and not any("continuous" in n for n in names)
    assert S["check"]["ok"], S["check"]["violations"]
    out = sol.write(tmp_path / "out")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "How the bound was proven: a Lagrangian relaxation" in html


def test_relaxation_runs_when_the_lagrangian_leaves_a_gap(monkeypatch):
    """When the Lagrangian does not prove the plan, the relaxation runs and the better
    of the two is reported with its method."""
    from optisite.models import staffing_bound

    real = staffing_bound.lagrangian_stage

    def weak(ctx, data):
        stage = real(ctx, data)
        stage.bound = 0.5 * stage.bound  # still valid, below the relaxation's
        return stage

    monkeypatch.setattr(staffing_bound, "lagrangian_stage", weak)
    built = pipeline.build(load_instance("instances/tiny"), SolveOptions(model="staffing", time_limit=60, threads=1))
    ctx, m = built.context, built.pyomo
    st = ctx.solver.lexicographic(m, built.model.objectives(m)[:1], canonical=False)
    got = built.model.bound(ctx, built.data, m, st)
    lag, relaxed = ctx.extra_stages[-2:]
    assert got == (relaxed.bound, RELAXATION_METHOD) and lag.bound < relaxed.bound <= st[0].objective + 1e-6
    assert [s.name for s in ctx.extra_stages][-2:] == ["bound: Lagrangian of the capacity rows",
                                                       "bound: days and FTE continuous"]


@pytest.mark.parametrize("limit", [60, 400])
def test_staffing_keeps_a_tenth_of_the_time_for_its_bound(monkeypatch, limit):
    """Staffing.bound_share (a tenth, at any limit: benchmarks/results/staffing_bounds_candidates2.md):
    the main stages are capped at the rest."""
    from optisite.models import get

    model = get("staffing")
    assert model.bound_share == 0.1 and model.bound_share_from_s == 0.0
    real, caps = StageSolver.lexicographic, []

    def spy(self, m, objectives, **kw):
        if objectives[0].name == "uncovered" and len(objectives) > 1:
            caps.append(kw.get("time_limit"))
        return real(self, m, objectives, **kw)

    monkeypatch.setattr(StageSolver, "lexicographic", spy)
    solve(load_instance("instances/tiny"), SolveOptions(model="staffing", time_limit=limit, threads=1), check=False)
    assert len(caps) == 1
    # The search is capped below the limit by the post-solve reserve in any case
    # (deadline.post_solve_reserve); the bound share takes a tenth of the rest.
    from optisite.deadline import post_solve_reserve

    rest = limit - post_solve_reserve(limit, 6)  # tiny has 6 zones
    assert rest * 0.9 * 0.9 <= caps[0] <= rest * 0.9


# ---------------------------------------------------------------------------------
# The apl model's links, written with the loss floor (models/apl.md, "The bound")
# ---------------------------------------------------------------------------------

def _apl_small(seed, budget):
    from test_apl_model import small

    return small(seed, budget)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_apl_loss_floor_holds_for_every_enumerated_plan(seed):
    """L_i bounds what any plan's days take from zone i's APL: APL_after >= C_i - L_i for
    every integer plan (enumerated, whatever its cost), the APL computed by the indicator."""
    import pandas as pd

    from optisite.apl import apl_after
    from optisite.models import apl
    from test_models import staffing_plans

    inst = _apl_small(seed, 10_000_000)
    data = pipeline.build(inst, SolveOptions(model="apl")).data
    floor = apl.loss_floor(data)
    assert (floor >= -1e-12).all() and (floor <= data.constant + 1e-12).all()
    p = inst.parameters
    per_day = p.consultations_per_day_liberal * p.working_weeks
    per_fte = p.consultations_per_day_salaried * p.days_per_fte * p.working_weeks
    full = inst.practices["physicians"] * p.days_per_fte * per_day
    plans = 0
    for _days, out, cab_days, fte, _cost in staffing_plans(inst):
        supply = pd.Series({**{c: d * per_day for c, d in cab_days.items()},
                            **{h: f * per_fte for h, f in fte.items()}}, dtype=float)
        after = apl_after(inst, supply, full - pd.Series(out) * per_day).reindex(data.constant.index)
        assert (after >= data.constant - floor - 1e-9).all()
        plans += 1
    assert plans > 1


def _apl_lp(data, tighten):
    from optisite.models import apl

    m = apl.build(data, tighten_links=tighten)
    for v in list(m.d.values()) + list(m.f.values()):
        v.domain = pyo.NonNegativeReals
    for v in list(m.y.values()) + list(m.o.values()) + list(m.b.values()):
        v.domain = pyo.UnitInterval
    return m


@pytest.mark.parametrize("seed,budget", [(0, 40000), (1, 60000), (2, 90000), (3, 150000), (4, 250000), (5, 120000)])
def test_apl_tightened_links_lp_is_a_valid_and_tighter_bound(seed, budget):
    """LP of the model as it was <= LP with the tightened links <= the enumerated optimum;
    and the MIP with tightened links still finds that optimum."""
    from optisite.models import apl
    from test_apl_model import brute_force_apl

    inst = _apl_small(seed, budget)
    under, _cost = brute_force_apl(inst)
    built = pipeline.build(inst, SolveOptions(model="apl", time_limit=60, gap=0, threads=1))
    solver = StageSolver(SolveOptions(lexicographic=False), built.context.deadline)
    lps = []
    for tighten in (False, True):
        m = _apl_lp(built.data, tighten)
        lps.append(solver.minimise(m, built.model.objectives(m)[0]).objective)
    tol = 1e-6 * max(1.0, under)
    assert lps[0] <= lps[1] + tol
    assert lps[1] <= under + tol
    m = apl.build(built.data, tighten_links=True)
    stage = built.context.solver.lexicographic(m, built.model.objectives(m)[:1], canonical=False)[0]
    assert stage.status == "optimal"
    assert stage.objective == pytest.approx(under, abs=1e-6)



# ---------------------------------------------------------------------------------
# Staffing candidates that did not win (benchmarks/bound_candidates.py), still valid
# ---------------------------------------------------------------------------------

def _candidates():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bound_candidates.py"
    spec = importlib.util.spec_from_file_location("optisite_bound_candidates", path)
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[spec.name] = module  # its dataclass looks its module up while being built
    spec.loader.exec_module(module)
    return module


def _staffing_case(case):
    seed, budget = case
    return load_instance("instances/tiny") if seed == "tiny" else small_staffing_instance(seed, budget)


@pytest.mark.parametrize("case", CASES + [("tiny", None)])
def test_candidate_bounds_are_below_the_enumerated_optimum(case):
    """Every candidate measured by ``staffing_bounds.py --methods`` proves at most the
    enumerated optimum; the model with the deficit cuts keeps that optimum."""
    from optisite.models.base import Objective

    bc = _candidates()
    inst = _staffing_case(case)
    unc, _cost = brute_force_staffing(inst)
    built = pipeline.build(inst, SolveOptions(model="staffing", time_limit=60, gap=0, threads=1))
    data, ctx = built.data, built.context
    cuts = bc.deficit_cuts(data, built.model.baseline_flows(ctx, data))
    tol = 1e-6 * max(1.0, unc)
    got = {}
    for method in ("lp", "lp_deficit", "lp_pairs", "relax_df", "deficit", "lp_levels_all", "lp_levels", "levels"):
        m = built.model.build(data)
        bc.apply(m, data, method, cuts)
        stage = ctx.solver.lexicographic(m, [Objective("uncovered", m.uncovered)], canonical=False)[0]
        assert stage.status == "optimal", method
        assert stage.bound <= unc + tol, method
        got[method] = stage.bound
        if method in ("deficit", "levels"):
            assert stage.objective == pytest.approx(unc, rel=1e-6, abs=1e-4)
    # Every level kept, the levels' LP is the model's: each site's fixed charge with a
    # cost linear in its staffing already has the opening links as its convex hull.
    assert got["lp_levels_all"] == pytest.approx(got["lp"], rel=1e-7, abs=1e-6)
    assert got["lp_levels"] >= got["lp"] - tol
    base = built.model.baseline_flows(ctx, data)
    for method, run in bc.ITERATIVE.items():
        res = run(built, 60, lambda m: base is not None and status_quo_on(m, data, base))
        assert res["bound"] <= unc + tol, method
        if method != "lagrange":  # the others end with plans; the Lagrangian's objective is its master's
            assert res["objective"] == pytest.approx(unc, rel=1e-6, abs=1e-4), method


def status_quo_on(m, data, base):
    from optisite.models.staffing import status_quo_start

    return status_quo_start(m, data, base)


def test_deficit_cuts_hold_on_the_zone_sets_left_short():
    """On the small instances the status quo leaves zones short: the cuts exist, their
    right side is the set's deficit with the existing supply, and each coefficient is
    at most that deficit (the strengthening)."""
    bc = _candidates()
    found = 0
    for case in CASES + [("tiny", None)]:
        inst = _staffing_case(case)
        built = pipeline.build(inst, SolveOptions(model="staffing", time_limit=60, threads=1))
        data = built.data
        for cut in bc.deficit_cuts(data, built.model.baseline_flows(built.context, data)):
            found += 1
            near = set(data.flows[data.flows["zone_id"].isin(cut.zones)]["source_id"])
            supply = data.per_day * data.days_per_fte * data.practices.loc[
                [p for p in data.practices.index if p in near], "physicians"].sum()
            assert cut.rhs == pytest.approx(data.zones.loc[list(cut.zones), "demand"].sum() - supply)
            assert all(0 < v <= cut.rhs + 1e-9 for v in cut.coefficients.values())
            assert set(cut.coefficients) <= near
    assert found > 0


# ---------------------------------------------------------------------------------
# The Lagrangian of the capacity rows (optisite/models/staffing_bound.py)
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES + [("tiny", None)])
def test_lagrangian_bound_lies_between_the_lp_and_the_enumerated_optimum(case):
    from optisite.models import staffing_bound as sb

    inst = _staffing_case(case)
    unc, _cost = brute_force_staffing(inst)
    data = pipeline.build(inst, SolveOptions(model="staffing", threads=1)).data
    tol = 1e-6 * max(1.0, unc)
    for caps in (False, True):
        got = sb.lagrangian_bound(data, time_limit=60, caps=caps)
        assert got.bound <= unc + tol
        assert got.bound >= got.lp - tol  # priced first at the LP's multipliers
        assert got.bound >= got.master - 1e-6 * max(1.0, got.master)  # the dual was solved


@pytest.mark.parametrize("case", CASES + [("tiny", None)])
def test_budget_caps_keep_every_plan_and_the_optimum(case):
    """The caps only cut staffing no plan within the budget can hold: the model built
    with them has the enumerated optimum."""
    from optisite.models import staffing, staffing_bound as sb
    from optisite.models.base import Objective

    inst = _staffing_case(case)
    unc, _cost = brute_force_staffing(inst)
    built = pipeline.build(inst, SolveOptions(model="staffing", time_limit=60, gap=0, threads=1))
    data = sb.with_budget_caps(built.data)
    days, fte = sb.budget_caps(built.data)
    assert (days <= built.data.cabinets["max_days"]).all() and (fte <= built.data.centres["max_fte"]).all()
    m = staffing.build(data)
    stage = built.context.solver.lexicographic(m, [Objective("uncovered", m.uncovered)], canonical=False)[0]
    assert stage.objective == pytest.approx(unc, rel=1e-6, abs=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knapsack_dp_is_a_relaxation_of_the_staffing_block(seed):
    """The dynamic programme's maximum is at least the staffing block's (give rows kept,
    solved by HiGHS), and the plan it returns fits the budget and earns that maximum."""
    import highspy
    import numpy as np

    from optisite.models import staffing_bound as sb

    data = pipeline.build(small_staffing_instance(seed, 120000), SolveOptions(model="staffing")).data
    a = sb.Arrays.of(data)
    rng = np.random.default_rng(seed)
    day, fte = rng.normal(0, 1000, a.n_d), rng.normal(500, 1000, a.n_h)
    top, v = sb.Knapsack(a).solve(day, fte)
    h = sb._highs()
    h.passModel(a.staffing_lp(integer=True))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    cost = np.zeros(a.n_d + a.n_c + 2 * a.n_h)
    cost[:a.n_d], cost[a.n_d + a.n_c:a.n_d + a.n_c + a.n_h] = day, fte
    h.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
    h.run()
    assert top >= h.getInfo().objective_function_value - 1e-6
    assert float(cost @ v) == pytest.approx(top)
    W = data.weeks
    spend = (W * data.cabinets["cost_per_day"].to_numpy()[a.links[:, 1]] @ v[:a.n_d]
             + data.cabinets["fixed_cost"].to_numpy() @ v[a.n_d:a.n_d + a.n_c]
             + data.centres["cost_per_fte"].to_numpy() @ v[a.n_d + a.n_c:a.n_d + a.n_c + a.n_h]
             + data.centres["fixed_cost"].to_numpy() @ v[a.n_d + a.n_c + a.n_h:])
    assert spend <= data.budget + 1e-6


@pytest.mark.parametrize("seed,budget", [(0, 40000), (1, 60000), (2, 90000), (3, 150000), (4, 250000), (5, 120000)])
def test_apl_lagrangian_bound_is_below_the_enumerated_optimum(seed, budget):
    """The apl model's Lagrangian (optisite/models/apl_bound.py), on its links as shipped
    and as they were: never above the enumerated optimum."""
    from optisite.models import apl, apl_bound
    from test_apl_model import brute_force_apl

    inst = _apl_small(seed, budget)
    under, _cost = brute_force_apl(inst)
    data = pipeline.build(inst, SolveOptions(model="apl")).data
    for tighten in (True, False):
        got = apl_bound.apl_lagrangian_bound(apl.build(data, tighten_links=tighten), data, time_limit=60)
        assert math.isfinite(got.bound)
        assert got.bound <= under + 1e-6 * max(1.0, under)


@pytest.mark.parametrize("seed,budget,kind", [(3, 150000, "centre_de_sante"), (4, 250000, "centre_de_sante"),
                                              (0, 60000, "cabinet_secondaire"), (2, 150000, "cabinet_secondaire")])
def test_lagrangian_bound_with_a_forced_opening(seed, budget, kind):
    """With a site forced open the knapsack must open it: the bound stays at most the
    optimum of the model with that opening (HiGHS to a zero gap on the small instance)."""
    from optisite.models import staffing_bound as sb
    from optisite.models.base import Objective

    inst = small_staffing_instance(seed, budget)
    site = inst.sites.index[inst.sites["kind"] == kind][0]
    built = pipeline.build(inst, SolveOptions(model="staffing", time_limit=60, gap=0, threads=1,
                                              force_open=(site,)))
    m = built.pyomo
    exact = built.context.solver.lexicographic(m, [Objective("uncovered", m.uncovered)], canonical=False)[0]
    assert exact.status == "optimal"
    got = sb.lagrangian_bound(built.data, time_limit=60)
    assert got.lp - 1e-6 <= got.bound <= exact.objective + 1e-6 * max(1.0, exact.objective)


def test_knapsack_rounds_costs_down_when_no_whole_unit_fits(monkeypatch):
    """With fewer budget states than a whole cost unit needs, costs are rounded down to a
    coarser unit: the plan the DP returns may then overspend a little, never the bound
    above the enumerated optimum."""
    from optisite.models import staffing_bound as sb

    monkeypatch.setattr(sb.Knapsack, "MAX_STATES", 7)
    for case in CASES[:3]:
        inst = _staffing_case(case)
        unc, _cost = brute_force_staffing(inst)
        data = pipeline.build(inst, SolveOptions(model="staffing")).data
        assert sb.Knapsack(sb.Arrays.of(data)).unit == pytest.approx(data.budget / 7)
        got = sb.lagrangian_bound(data, time_limit=60)
        assert got.bound <= unc + 1e-6 * max(1.0, unc)
