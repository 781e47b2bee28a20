"""The staffing model's primal engine (issue 18 item 3): exact plan values, feasible plans,
never worse than the status quo, the enumerated optimum on small instances, reproducible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest

from optisite.instance import load_instance
from optisite.models import get as get_model
from optisite.models import staffing
from optisite.models.staffing_search import Search, search, write_start
from optisite.pipeline import SolveOptions, build

from test_models import brute_force_staffing, small_staffing_instance

INSTANCES = Path(__file__).resolve().parents[1] / "instances"


def _pyomo_value(ctx, data, days: pd.DataFrame, fte: pd.Series) -> float:
    """Weighted uncovered demand of a plan by the Pyomo flow LP (``staffing.plan_flows``)."""
    flows, _ = staffing.plan_flows(ctx, data, days, fte)
    served = flows.groupby("zone_id")["consultations"].sum() / data.unit if len(flows) else pd.Series(dtype=float)
    z = data.zones
    return float((z["penalty"] * (z["demand"] - served.reindex(z.index).fillna(0.0))).sum())


def _days_fte(s: Search):
    lk = s.data.links
    on = np.flatnonzero(s.d > 0)
    days = pd.DataFrame({"practice_id": lk["practice_id"].to_numpy()[on], "site_id": lk["site_id"].to_numpy()[on],
                         "days_per_week": s.d[on].astype(int)})
    fte = pd.Series(s.f.astype(float), index=s.data.centres.index)
    return days, fte[fte > 0]


def _built(inst, **opts):
    b = build(inst, SolveOptions(model="staffing", threads=1, **opts))
    b.context.baseline = staffing.plan_flows(b.context, b.data, None, None)[0]
    return b


def _violations(m) -> list[str]:
    """Every constraint, bound and integrality of ``m`` at its variables' values."""
    bad = []
    for c in m.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(c.body)
        tol = 1e-6 * (1 + abs(body))
        if c.has_lb() and body < pyo.value(c.lower) - tol or c.has_ub() and body > pyo.value(c.upper) + tol:
            bad.append(f"{c.name}: {body} not in [{c.lower}, {c.upper}]")
    for v in m.component_data_objects(pyo.Var):
        x = v.value
        if x is None:
            bad.append(f"{v.name} has no value")
            continue
        if v.lb is not None and x < v.lb - 1e-7 or v.ub is not None and x > v.ub + 1e-7:
            bad.append(f"{v.name} = {x} outside [{v.lb}, {v.ub}]")
        if (v.is_integer() or v.is_binary()) and abs(x - round(x)) > 1e-9:
            bad.append(f"{v.name} = {x} not integral")
    return bad


CASES = [("tiny", {}), ("small0", {}), ("small3", {}), ("small4", {"force_open": ("S1",)}),
         ("small2", {"force_closed": ("S0",)})]


def _instance(name: str):
    if name == "tiny":
        return load_instance(INSTANCES / "tiny")
    seed = int(name[-1])
    return small_staffing_instance(seed, {0: 40000, 2: 90000, 3: 150000, 4: 250000}[seed])


@pytest.mark.parametrize("name,opts", CASES)
def test_the_evaluation_equals_the_pyomo_flow_lp(name, opts):
    b = _built(_instance(name), **opts)
    s = Search(b.data, effort=10**6)
    assert s.open_forced()
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(8):  # random feasible plans: random additions from the status quo
        ub, cost, makers = s.additions()
        if not len(makers):
            break
        days, ftes = s.move_of(makers[int(rng.integers(len(makers)))])
        s.commit(days, ftes)
        assert s.feasible()
        d, f = _days_fte(s)
        assert s.value == pytest.approx(_pyomo_value(b.context, b.data, d, f), rel=1e-7, abs=1e-5)
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize("name,opts", CASES)
def test_the_start_is_feasible_for_the_model_and_never_worse_than_the_status_quo(name, opts):
    b = _built(_instance(name), **opts)
    stages = get_model("staffing").start(b.context, b.data, b.pyomo)
    assert stages and all(s.has_solution for s in stages)
    assert _violations(b.pyomo) == []
    value = float(pyo.value(b.pyomo.uncovered))
    quo = [s for s in stages if s.name.startswith("start: status quo")]
    if quo:  # without forced openings the status quo is a plan: the start is never worse
        assert value <= quo[0].objective + 1e-6 * max(1.0, quo[0].objective)
    used = [s for s in stages if s.extra.get("used")]
    if used:  # the engine's value is the written plan's value
        assert value == pytest.approx(used[0].objective, rel=1e-7, abs=1e-5)


def test_a_forced_opening_is_staffed_and_kept():
    b = _built(_instance("small4"), force_open=("S1",))
    plan = search(b.data, effort=500)
    assert "S1" in set(plan.days["site_id"]) | set(plan.fte.index)


@pytest.mark.parametrize("name", ["tiny", "small0", "small1", "small2", "small3", "small4"])
def test_the_search_finds_the_enumerated_optimum(name):
    inst = load_instance(INSTANCES / "tiny") if name == "tiny" else \
        small_staffing_instance(int(name[-1]), {0: 40000, 1: 60000, 2: 90000, 3: 150000, 4: 250000}[int(name[-1])])
    b = _built(inst)
    plan = search(b.data, effort=2000)
    unc, cost = brute_force_staffing(inst)  # every integer plan, each valued by scipy's LP
    assert plan.uncovered == pytest.approx(unc, rel=1e-7, abs=1e-5)
    assert plan.cost == pytest.approx(cost, abs=1e-3)


def test_the_search_plan_written_into_a_real_departement_model_is_feasible():
    b = _built(load_instance(INSTANCES / "nievre-58"))
    plan = search(b.data, effort=40)
    assert plan.uncovered < float((b.data.zones["penalty"] * b.data.zones["demand"]).sum())
    write_start(b.pyomo, b.data, plan)
    assert _violations(b.pyomo) == []
    assert float(pyo.value(b.pyomo.uncovered)) == pytest.approx(plan.uncovered, rel=1e-7, abs=1e-4)
    assert plan.cost <= b.data.budget


@pytest.mark.parametrize("name", ["tiny", "small3"])
def test_the_same_inputs_give_the_same_plan(name):
    b = _built(_instance(name))
    one, two = search(b.data, effort=300, seed=3), search(b.data, effort=300, seed=3)
    pd.testing.assert_frame_equal(one.days, two.days)
    pd.testing.assert_series_equal(one.fte, two.fte)
    assert (one.uncovered, one.cost, one.evaluations) == (two.uncovered, two.cost, two.evaluations)


class _Clock:
    """A deadline whose seconds left are set by hand (the flow LP reads ``left``)."""

    def __init__(self, left: float):
        self.seconds_left = left

    def left(self) -> float:
        return self.seconds_left

    def expired(self, margin: float = 0.0) -> bool:
        return self.seconds_left <= margin


def test_a_flow_lp_never_runs_past_the_deadline():
    """On a region one flow LP takes tens of seconds: with no time left the search stops
    before solving and gives no plan (the status quo stays the start), instead of running on."""
    from optisite.models.staffing_search import ClockOut, FlowLP

    b = _built(load_instance(INSTANCES / "nievre-58"))
    from optisite.models.staffing_search import LP_GRACE_S

    lp = FlowLP(b.data, _Clock(-LP_GRACE_S))
    with pytest.raises(ClockOut):
        lp.solve()
    assert search(b.data, effort=40, deadline=_Clock(-LP_GRACE_S)) is None
    # Out of time but within the grace: the search stops between LPs and keeps a plan.
    cut = search(b.data, effort=40, deadline=_Clock(0.0))
    assert cut is not None and cut.stopped_by_clock
    roomy = search(b.data, effort=40, deadline=_Clock(1e6))
    assert roomy is not None and roomy.evaluations <= 40 + 2
