"""The apl model (issue 4) against enumeration, and its plan against the indicator.

The reference enumerates every staffing plan within the budget and evaluates the APL
with ``optisite.apl.apl_after`` (the 2SFCA indicator, no MIP, cross-checked against
PySAL ``access`` in test_apl.py): the model must find the least population under the
threshold, then the least cost.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from optisite.apl import apl_after, apl_before
from optisite.checker import check_solution
from optisite.cli import main
from optisite.pipeline import SolveOptions, solve

from conftest import INSTANCES
from test_models import small_staffing_instance, staffing_plans


def brute_force_apl(inst):
    """(population under T, cost) of the best plan, by enumerating days and FTE."""
    p = inst.parameters
    T = p.apl_threshold
    per_day = p.consultations_per_day_liberal * p.working_weeks
    per_fte = p.consultations_per_day_salaried * p.days_per_fte * p.working_weeks
    pop = inst.zones["population"].astype(float)
    full = inst.practices["physicians"] * p.days_per_fte * per_day
    best = (np.inf, np.inf)
    for _days, out, cab_days, fte, cost in staffing_plans(inst):
        supply = pd.Series({**{c: d * per_day for c, d in cab_days.items()},
                            **{h: f * per_fte for h, f in fte.items()}}, dtype=float)
        apl = apl_after(inst, supply, full - pd.Series(out) * per_day)
        under = float(pop[apl < T - 1e-9].sum())
        if under < best[0] - 1e-6 or (abs(under - best[0]) <= 1e-6 and cost < best[1] - 1e-6):
            best = (under, cost)
    return best


def small(seed, budget):
    inst = small_staffing_instance(seed, budget)
    # A threshold in the middle of the zones' APL before, so that the plan matters.
    before = apl_before(inst)
    positive = before[inst.zones["population"] > 0]
    T = float(np.round(np.quantile(positive, 0.6), 3)) or 1.0
    return inst.with_parameters({"apl_threshold": T})


@pytest.mark.parametrize("seed,budget", [(0, 40000), (1, 60000), (2, 90000), (3, 150000), (4, 250000), (5, 120000)])
def test_apl_model_matches_enumeration(seed, budget):
    inst = small(seed, budget)
    sol = solve(inst, SolveOptions(model="apl", time_limit=60, gap=0))
    under, cost = brute_force_apl(inst)
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(under, abs=1e-6)
    assert sol.summary["apl"]["after"]["under"][inst.parameters.apl_threshold] == pytest.approx(under, abs=1e-6)
    assert sol.summary["cost_total"] == pytest.approx(cost, rel=1e-9, abs=1e-3)
    assert check_solution(inst, sol).ok


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_apl_plan_never_worse_on_apl_than_the_staffing_plan(seed):
    inst = small(seed, 150000)
    T = inst.parameters.apl_threshold
    st = solve(inst, SolveOptions(model="staffing", time_limit=60))
    ap = solve(inst, SolveOptions(model="apl", time_limit=60))
    assert ap.summary["apl"]["after"]["under"][T] <= st.summary["apl"]["after"]["under"][T] + 1e-6


def test_apl_cli_recomputes_what_the_model_reports(tmp_path):
    """`optisite solve --model apl` then `optisite apl --solution`: same APL after, and
    the checker (which recomputes the APL itself) passes on the folder."""
    out = tmp_path / "apl"
    r = CliRunner().invoke(main, ["solve", str(INSTANCES / "tiny"), "--model", "apl", "--apl-threshold", "3.5",
                                  "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "solution.json").read_text())
    assert summary["model"] == "apl" and summary["check"]["ok"]
    zones = pd.read_csv(out / "zones.csv", dtype={"zone_id": str}).set_index("zone_id")
    table = tmp_path / "apl.csv"
    r = CliRunner().invoke(main, ["apl", str(INSTANCES / "tiny"), "--solution", str(out), "--out", str(table)])
    assert r.exit_code == 0, r.output
    again = pd.read_csv(table, dtype={"zone_id": str}).set_index("zone_id")
    np.testing.assert_allclose(again.loc[zones.index, "apl_after"], zones["apl_after"], rtol=1e-9)
    under = float(zones.loc[zones["apl_after"] < 3.5, "population"].sum())
    assert summary["objective"] == pytest.approx(under, abs=1e-6)
    r = CliRunner().invoke(main, ["check", str(out), str(INSTANCES / "tiny")])
    assert r.exit_code == 0, r.output
