"""The apl model (issue 4) against enumeration, and its plan against the indicator.

The reference enumerates every staffing plan within the budget and evaluates the APL
with ``optisite.apl.apl_after`` (the 2SFCA indicator, no MIP, cross-checked against
PySAL ``access`` in test_apl.py): the model must find the least population under the
threshold, then the least cost.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from optisite import instance_from_frames
from optisite.apl import apl_after, apl_before
from optisite.checker import check_solution
from optisite.cli import main
from optisite.solve import SolveOptions, solve

from conftest import INSTANCES
from test_models import minutes_matrix, random_instance


def brute_force_apl(inst):
    """(population under T, cost) of the best plan, by enumerating days and FTE."""
    p = inst.parameters
    T = p.apl_threshold
    tt = minutes_matrix(inst)
    pr, st = inst.practices, inst.sites
    per_day = p.consultations_per_day_liberal * p.working_weeks
    per_fte = p.consultations_per_day_salaried * p.days_per_fte * p.working_weeks
    cab = [s for s in st.index if st.at[s, "kind"] == "cabinet_secondaire"]
    cds = [s for s in st.index if st.at[s, "kind"] == "centre_de_sante"]
    links = [(pid, c) for pid in pr.index for c in cab
             if tt.at[pr.at[pid, "zone_id"], st.at[c, "zone_id"]] <= pr.at[pid, "max_travel_minutes"]]
    give = {pid: int(np.floor(pr.at[pid, "secondary_days"] + 1e-9)) for pid in pr.index}
    ranges = [range(0, min(give[pid], int(st.at[c, "max_days"])) + 1) for pid, c in links]
    fte_ranges = [[0] + list(range(int(np.ceil(st.at[h, "min_fte"])), int(st.at[h, "max_fte"]) + 1)) for h in cds]
    pop = inst.zones["population"].astype(float)
    full = pr["physicians"] * p.days_per_fte * per_day
    best = (np.inf, np.inf)
    for combo in itertools.product(*ranges):
        days = {l: d for l, d in zip(links, combo) if d > 0}
        out = {pid: sum(d for (pp, _), d in days.items() if pp == pid) for pid in pr.index}
        if any(out[pid] > give[pid] for pid in pr.index):
            continue
        cab_days = {c: sum(d for (_, cc), d in days.items() if cc == c) for c in cab}
        if any(0 < cab_days[c] < max(st.at[c, "min_days"], 1) or cab_days[c] > st.at[c, "max_days"] for c in cab):
            continue
        for ftes in itertools.product(*fte_ranges):
            fte = dict(zip(cds, ftes))
            cost = sum(st.at[c, "fixed_cost"] + p.working_weeks * st.at[c, "cost_per_day"] * cab_days[c]
                       for c in cab if cab_days[c] > 0)
            cost += sum(st.at[h, "fixed_cost"] + st.at[h, "cost_per_fte"] * f for h, f in fte.items() if f > 0)
            if cost > p.budget + 1e-6:
                continue
            supply = pd.Series({**{c: cab_days[c] * per_day for c in cab}, **{h: fte[h] * per_fte for h in cds}},
                               dtype=float)
            practice = full - pd.Series(out) * per_day
            apl = apl_after(inst, supply, practice)
            under = float(pop[apl < T - 1e-9].sum())
            if under < best[0] - 1e-6 or (abs(under - best[0]) <= 1e-6 and cost < best[1] - 1e-6):
                best = (under, cost)
    return best


def small(seed, budget):
    zones, sites, practices = random_instance(seed, n_zones=7, n_sites=3, n_practices=2,
                                              kinds=("cabinet_secondaire", "cabinet_secondaire", "centre_de_sante"))
    practices["physicians"] = [2, 1]
    params = {"budget": budget, "coverage_minutes": 12, "max_travel_minutes": 40, "cabinet_max_days": 3,
              "centre_min_fte": 1, "centre_max_fte": 2, "centre_fixed_cost": 50000}
    inst = instance_from_frames(zones, sites, practices, parameters=params)
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
