"""The apl primal engine (``optisite/models/apl_search.py``, issue 18 item 6).

Its count is the indicator's (``apl_after``, no linear algebra of the engine's own), its
plan holds every row of the Pyomo apl model, it never ends worse than its seeds, it is
reproducible, and on the small enumerated instances of ``test_apl_model.py`` it finds
the enumerated optimum.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
from conftest import INSTANCES
from test_apl_model import brute_force_apl, small

from optisite import load_instance
from optisite.apl import apl_after, practice_capacity, site_capacity
from optisite.models import apl, staffing
from optisite.models.apl_search import Problem, Search, search
from optisite.pipeline import SolveOptions, build, solve
from optisite.solution import planning_zones

SMALL = [(0, 40000), (1, 60000), (2, 90000), (3, 150000), (4, 250000), (5, 120000)]


def prepared(inst):
    b = build(inst, SolveOptions(model="apl"))
    return b.data, b.pyomo


def indicator_under(inst, plan) -> float:
    """Population under T for the plan, by the 2SFCA indicator (``apl_after``)."""
    pw = 1.0 if inst.parameters.presence_unit == "week" else 12.0 / 52.0
    days = plan.days.assign(days=plan.days["days"] * pw)
    site = site_capacity(inst, days.groupby("site_id")["days"].sum(), plan.fte)
    prac = practice_capacity(inst, days.groupby("practice_id")["days"].sum())
    value = apl_after(inst, site, prac)
    pop = inst.zones["population"][planning_zones(inst)]
    pop = pop[pop > 0]
    return float(pop[value.reindex(pop.index) < inst.parameters.apl_threshold - 1e-9].sum())


def as_start(data, m, plan) -> float:
    """Write the plan into the apl model (through a staffing model and ``apl.set_start``),
    assert every active row and every variable bound and domain holds; returns the model's
    objective at that point."""
    sm = staffing.build(data.staffing)
    given = {(p, c): k for p, c, k in plan.days.itertuples(index=False)}
    din = plan.days.groupby("site_id")["days"].sum()
    for i, v in sm.d.items():
        v.set_value(given.get(i, 0))
    for c, v in sm.y.items():
        if not v.fixed:
            v.set_value(int(din.get(c, 0) > 0))
    for h, v in sm.f.items():
        v.set_value(int(plan.fte.get(h, 0)))
    for h, v in sm.o.items():
        if not v.fixed:
            v.set_value(int(plan.fte.get(h, 0) > 0))
    assert set(given) <= set(sm.d)
    apl.set_start(m, sm)
    for con in m.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(con.body)
        assert not con.has_lb() or body >= pyo.value(con.lower) - 1e-7, con.name
        assert not con.has_ub() or body <= pyo.value(con.upper) + 1e-7, con.name
    for v in m.component_data_objects(pyo.Var):
        if v.value is None or v.name.startswith(("x[", "u[")):
            continue  # the flows are off in the apl model
        assert v.lb is None or v.value >= v.lb - 1e-9, v.name
        assert v.ub is None or v.value <= v.ub + 1e-9, v.name
        if v.is_integer():
            assert v.value == round(v.value), v.name
    return float(pyo.value(m.uncovered))


def status_quo_under(data) -> float:
    s = Search(Problem(data), effort=0)
    return s.under


@pytest.mark.parametrize("seed,budget", SMALL)
def test_engine_finds_the_enumerated_optimum_and_counts_like_the_indicator(seed, budget):
    inst = small(seed, budget)
    data, m = prepared(inst)
    plan = search(data, effort=20_000)
    under, _cost = brute_force_apl(inst)
    assert plan.under == pytest.approx(indicator_under(inst, plan), abs=1e-6)
    assert as_start(data, m, plan) == pytest.approx(plan.under, abs=1e-6)
    assert plan.under == pytest.approx(under, abs=1e-6)  # all six measured: the enumerated optimum
    assert plan.under <= status_quo_under(data) + 1e-6


@pytest.fixture(scope="module")
def nievre():
    inst = load_instance(INSTANCES / "nievre-58")
    data, m = prepared(inst)
    return inst, data, m


def test_nievre_plan_is_exact_feasible_and_reproducible(nievre):
    inst, data, m = nievre
    first = search(data, effort=30_000)  # stops on its effort count, mid-search
    assert first.evaluations >= 30_000 and not first.stopped_by_clock
    assert first.under == pytest.approx(indicator_under(inst, first), abs=1e-6)
    assert first.under < status_quo_under(data) - 1.0
    assert as_start(data, m, first) == pytest.approx(first.under, abs=1e-6)
    again = search(data, effort=30_000)
    pd.testing.assert_frame_equal(first.days, again.days)
    pd.testing.assert_series_equal(first.fte, again.fte)
    assert (first.under, first.cost) == (again.under, again.cost)


def test_never_worse_than_the_staffing_seed(nievre):
    """From a seed (here a staffing plan solved by the staffing model) the engine ends
    no worse than the seed, whatever effort it has."""
    inst, data, _ = nievre
    st = solve(inst, SolveOptions(model="staffing", time_limit=20, threads=1), check=False)
    days = st.schedule.rename(columns={"days_per_week": "days"})[["practice_id", "site_id", "days"]]
    days = days.assign(days=days["days"].round().astype(int))
    fte = st.sites.set_index("site_id")["fte"]
    fte = fte[fte > 0]
    seeded = type("P", (), {"days": days, "fte": fte})
    seed_under = indicator_under(inst, seeded)
    for effort in (0, 2_000):
        plan = search(data, effort=effort, seeds={"staffing plan": (days, fte)})
        assert plan.under <= seed_under + 1e-6
        assert plan.under <= status_quo_under(data) + 1e-6
        assert plan.under == pytest.approx(indicator_under(inst, plan), abs=1e-6)


def test_levers_and_forced_sites_hold(nievre):
    """Forced openings, the recruitment limit and a funder's envelope: the engine's plan
    meets them (every row of the model holds at it)."""
    inst, _, _ = nievre
    cds = [s for s in inst.sites.index if inst.sites.at[s, "kind"] == "centre_de_sante"]
    cab = [s for s in inst.sites.index if inst.sites.at[s, "kind"] == "cabinet_secondaire"]
    inst = inst.with_parameters({"max_new_salaried_fte": 3, "funder_envelopes": "collectivites=300000"})
    b = build(inst, SolveOptions(model="apl", force_open=(cds[0], cab[5])))
    plan = search(b.data, effort=20_000)
    assert plan.fte.sum() <= 3
    assert cds[0] in plan.fte.index and cab[5] in set(plan.days["site_id"])
    assert as_start(b.data, b.pyomo, plan) == pytest.approx(plan.under, abs=1e-6)
    assert plan.under == pytest.approx(indicator_under(inst, plan), abs=1e-6)


def test_apl_solve_starts_from_the_engine(nievre):
    """The whole solve: the start stage says which engine made the start and its value,
    and the plan is never worse than the staffing plan nor the engine's."""
    inst, _, _ = nievre
    sol = solve(inst, SolveOptions(model="apl", time_limit=20, threads=1))
    starts = sol.summary["solver"]["start_stages"]
    engine = starts[0]
    assert engine["name"].startswith("start: apl greedy + local search")
    staffing_start = next(s for s in starts if s["name"].startswith("start: staffing"))
    assert engine["extra"]["used"]
    assert engine["objective"] <= staffing_start["extra"]["apl_objective"] + 1e-6
    T = inst.parameters.apl_threshold
    assert sol.summary["apl"]["after"]["under"][T] <= engine["objective"] + 1e-6
    assert sol.summary["check"]["ok"]


def test_days_a_month_and_the_zonage(nievre):
    """Days counted a month (``presence_unit``) and the zonage lever: the engine's plan is
    still the indicator's count and holds every row; no site outside ZIP/ZAC opens."""
    inst, _, _ = nievre
    zones = inst.inputs.zones.copy()
    zones["zonage"] = np.where(np.arange(len(zones)) % 3 == 0, "ZIP", "none")
    inst = replace(inst, inputs=replace(inst.inputs, zones=zones)).with_parameters({"presence_unit": "month", "zonage_restrict": "all"})
    b = build(inst, SolveOptions(model="apl"))
    plan = search(b.data, effort=20_000)
    assert plan.under < status_quo_under(b.data) - 1.0
    allowed = set(zones.index[zones["zonage"] == "ZIP"])
    opened = set(plan.days["site_id"]) | set(plan.fte.index)
    assert all(inst.sites.at[s, "zone_id"] in allowed for s in opened)
    assert as_start(b.data, b.pyomo, plan) == pytest.approx(plan.under, abs=1e-6)
    assert plan.under == pytest.approx(indicator_under(inst, plan), abs=1e-6)


@pytest.mark.parametrize("seed,budget", [(1, 60000), (3, 150000)])
def test_the_search_after_highs_reaches_the_optimum_from_doing_nothing(seed, budget):
    """``Apl.decisions`` runs the engine from HiGHS's plan: from the worst plan HiGHS could
    hand over (open nothing), it ends at the enumerated optimum (no limit here: below
    ``bound_share_from_s`` it does not run), and the solve's plan is checked."""
    from optisite.models import get as get_model

    inst = small(seed, budget)
    b = build(inst, SolveOptions(model="apl", time_limit=None, threads=1))
    for v in list(b.pyomo.d.values()) + list(b.pyomo.f.values()):
        v.set_value(0)
    model = get_model("apl")
    dec = model.decisions(b.context, b.data, b.pyomo)
    under, _cost = brute_force_apl(inst)
    record = b.context.extra_stages[-1]
    assert record.name.startswith("polish: apl local search")
    quo = status_quo_under(b.data)
    if quo > under + 1e-6:  # doing nothing is not optimal here: the search must have moved
        assert record.extra["used"] and record.objective == pytest.approx(under, abs=1e-6)
        plan = type("P", (), {"days": dec.days.rename(columns={"days_per_week": "days"}), "fte": dec.fte})
        assert indicator_under(inst, plan) == pytest.approx(under, abs=1e-6)
    sol = solve(inst, SolveOptions(model="apl", time_limit=30, threads=1))
    assert sol.summary["check"]["ok"] and sol.objective == pytest.approx(under, abs=1e-6)
