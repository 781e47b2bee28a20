"""The greedy + swap start of the coverage model: feasible, never better than the optimum."""

from __future__ import annotations

import pytest

from optisite import instance_from_frames
from optisite.heuristics import greedy_coverage
from optisite.models import coverage
from optisite.reach import coverage_pairs
from optisite.solve import SolveOptions, solve

from test_models import brute_force_coverage, random_instance


@pytest.mark.parametrize("seed", range(6))
def test_greedy_start_is_feasible_and_not_better_than_the_optimum(seed):
    zones, sites, practices = random_instance(seed, n_zones=14, n_sites=8)
    inst = instance_from_frames(zones, sites, practices, parameters={"budget": 70000, "coverage_minutes": 12})
    data = coverage.prepare(inst, coverage_pairs(inst), force_open=("S1",), force_closed=("S2",))
    plan = greedy_coverage(data)
    assert "S1" in plan and "S2" not in plan
    assert float(inst.sites.loc[plan, "fixed_cost"].sum()) <= 70000
    sol = solve(inst, SolveOptions(model="coverage", force_open=("S1",), force_closed=("S2",)))
    start = sol.summary["solver"]["start_stages"][0]
    assert start["objective"] >= sol.objective - 1e-6  # the MIP never ends worse than its start
    # and the start is a real plan: its value is attainable, so never below the enumerated optimum
    best_free = brute_force_coverage(inst)[0]
    assert start["objective"] >= best_free - 1e-6
