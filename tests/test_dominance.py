"""Dominated candidates: left out of the coverage model without changing either optimum."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optisite import instance_from_frames
from optisite.models.coverage import dominated_sites
from optisite.pipeline import SolveOptions, solve

from test_models import brute_force_coverage, random_instance


def _pairs(cover: dict) -> pd.DataFrame:
    return pd.DataFrame([(z, s) for s, zs in cover.items() for z in zs], columns=["zone_id", "site_id"])


def test_subset_and_cost_decide_dominance():
    cover = {"A": ["z1", "z2", "z3"], "B": ["z1", "z2"], "C": ["z1", "z2"], "D": ["z3", "z4"], "E": ["z4"]}
    costs = pd.Series({"A": 10.0, "B": 10.0, "C": 5.0, "D": 1.0, "E": 2.0})
    # B is inside A at the same cost; C is inside A but cheaper, so it stays;
    # E is inside D and dearer.
    assert sorted(dominated_sites(_pairs(cover), costs)) == ["B", "E"]


def test_identical_candidates_keep_the_first_id_and_forced_sites_are_respected():
    cover = {"A": ["z1", "z2"], "B": ["z1", "z2"], "C": ["z1"]}
    costs = pd.Series({"A": 1.0, "B": 1.0, "C": 1.0})
    assert sorted(dominated_sites(_pairs(cover), costs)) == ["B", "C"]
    # a forced-closed site dominates nothing; a forced-open one is never left out
    assert sorted(dominated_sites(_pairs(cover), costs, force_closed=("A",))) == ["C"]
    assert sorted(dominated_sites(_pairs(cover), costs, force_open=("C",))) == ["B"]


def test_slicing_gives_the_same_answer():
    rng = np.random.default_rng(3)
    cover = {f"S{j:03d}": sorted(set(rng.choice([f"z{i}" for i in range(40)], rng.integers(1, 8))))
             for j in range(120)}
    costs = pd.Series({s: float(rng.integers(1, 4)) for s in cover}).sort_index()
    whole = dominated_sites(_pairs(cover), costs)
    assert whole  # the instance has some
    assert dominated_sites(_pairs(cover), costs, chunk_entries=5) == whole
    # every candidate left out has a kept one covering a superset for no more
    kept = [s for s in costs.index if s not in whole]
    for j in whole:
        assert any(set(cover[j]) <= set(cover[k]) and costs[k] <= costs[j] for k in kept), j


@pytest.mark.parametrize("seed", range(6))
def test_optimum_unchanged_on_instances_with_many_dominated_sites(seed):
    # many candidates in few zones, equal costs: most are dominated
    zones, sites, practices = random_instance(seed, n_zones=10, n_sites=9)
    sites["fixed_cost"] = 20000
    inst = instance_from_frames(zones, sites, practices, parameters={"budget": 40000, "coverage_minutes": 15})
    sol = solve(inst, SolveOptions(model="coverage"))
    unc, cost = brute_force_coverage(inst)
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(unc, abs=1e-6)
    assert sol.summary["cost_total"] == pytest.approx(cost, abs=1e-6)
    assert sol.summary["check"]["ok"]
    red = sol.summary["solver"]["reductions"]
    assert red["candidates_kept"] + red["candidates_dominated"] <= len(inst.sites)
