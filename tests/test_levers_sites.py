"""The Cour's levers in the siting models without staffing (coverage, lscp): zonage and
funders' envelopes bind as enumeration of every set of open sites says, the checker
catches a plan that breaks them, and the staffing levers are named in a warning.

The instances are small (6 zones, 5 candidates, no practice) with a full travel matrix, so
the optimum is a plain enumeration of the 2^5 sets of open sites."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from optisite.checker import check_solution
from optisite.errors import InfeasibleError
from optisite.instance import instance_from_frames
from optisite.pipeline import SolveOptions, build, solve

CUTOFF = 10.0
FUNDERS = ("ars_hopital", "commune_x")


def sites_instance(seed: int, params=None):
    """6 zones on a line, 5 candidates in zones 0..4 with costs and payers drawn from
    ``seed``; zone i reaches site j within the cutoff when they are at most one step apart
    (two for some pairs), so the candidates overlap."""
    rng = np.random.default_rng(seed)
    n = 6
    zones = pd.DataFrame({"zone_id": [f"Z{i}" for i in range(n)],
                          "population": rng.integers(100, 1000, n),
                          "lon": np.linspace(2.0, 3.0, n), "lat": 47.0,
                          "zonage": rng.choice(["ZIP", "ZAC", "none"], n)})
    zones.loc[0, "zonage"] = "none"  # at least one commune outside ZIP/ZAC
    sites = pd.DataFrame({"site_id": [f"S{j}" for j in range(5)],
                          "kind": rng.choice(["cabinet_secondaire", "centre_de_sante"], 5),
                          "zone_id": [f"Z{j}" for j in range(5)],
                          "fixed_cost": rng.integers(10, 60, 5) * 1000,
                          "funder_fixed": rng.choice(FUNDERS, 5)})
    step = rng.integers(4, 14, (n, n))
    minutes = [(f"Z{a}", f"Z{b}", 0.0 if a == b else float(abs(a - b) * step[min(a, b), max(a, b)]))
               for a in range(n) for b in range(n)]
    travel = pd.DataFrame(minutes, columns=["from_id", "to_id", "minutes"])
    base = {"budget": 80_000, "coverage_minutes": CUTOFF}
    return instance_from_frames(zones, sites, None, travel, parameters={**base, **(params or {})})


def reach(inst) -> dict[str, set[str]]:
    """Zones within the cutoff of each site, from the travel table written above."""
    frame = inst.inputs.travel  # symmetric, so either direction
    out: dict[str, set[str]] = {}
    for sid, z in inst.sites["zone_id"].items():
        near = frame[(frame["to_id"] == z) & (frame["minutes"].astype(float) <= CUTOFF)]["from_id"]
        out[sid] = set(near.astype(str))
    return out


def allowed_sites(inst, kinds) -> set[str]:
    s, cls = inst.sites, inst.zones["zonage"]
    return {sid for sid in s.index if s.at[sid, "kind"] not in kinds or cls[s.at[sid, "zone_id"]] in ("ZIP", "ZAC")}


def plans(inst, kinds=(), envelopes=None):
    """Every set of open sites that the zonage (``kinds``) and ``envelopes`` allow, with
    (uncovered population, cost)."""
    s = inst.sites
    ok_sites = allowed_sites(inst, kinds)
    near = reach(inst)
    pop = inst.zones["population"].astype(float)
    for r in range(len(s) + 1):
        for plan in itertools.combinations(sorted(s.index), r):
            if not set(plan) <= ok_sites:
                continue
            cost = float(s.loc[list(plan), "fixed_cost"].sum())
            spent = s.loc[list(plan)].groupby("funder_fixed")["fixed_cost"].sum()
            if any(spent.get(f, 0.0) > cap + 1e-6 for f, cap in (envelopes or {}).items()):
                continue
            covered = set().union(*(near[j] for j in plan)) if plan else set()
            yield plan, float(pop[~pop.index.isin(list(covered))].sum()), cost


def best_coverage(inst, **kw) -> tuple[float, float]:
    b = inst.parameters.budget
    return min((u, c) for _, u, c in plans(inst, **kw) if c <= b + 1e-6)


def best_cover(inst, **kw) -> float | None:
    """Least cost covering every zone any allowed candidate reaches (None: none does)."""
    reachable = min(u for _, u, _ in plans(inst, kinds=kw.get("kinds", ())))
    costs = [c for _, u, c in plans(inst, **kw) if u <= reachable + 1e-9]
    return min(costs) if costs else None


def run(inst, model):
    sol = solve(inst, SolveOptions(model=model, time_limit=60, gap=0, threads=1))
    assert sol.status == "optimal"
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]
    return sol


@functools.lru_cache(maxsize=None)
def solved(seed: int, model: str, **params):
    """``run`` on ``sites_instance(seed, params)``, once per test session (tests only read it)."""
    return run(sites_instance(seed, params), model)


SEEDS = range(4)


def paid(inst, plan, payer) -> float:
    """Fixed costs of ``plan`` that ``payer`` pays."""
    s = inst.sites.loc[list(plan)]
    return float(s.loc[s["funder_fixed"] == payer, "fixed_cost"].sum())


# -- coverage ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_coverage_zonage_matches_enumeration(seed):
    free_inst = sites_instance(seed)
    free = solved(seed, "coverage")
    assert (free.objective, free.summary["cost_total"]) == pytest.approx(best_coverage(free_inst))
    inst = sites_instance(seed, {"zonage_restrict": "all"})
    zoned = solved(seed, "coverage", zonage_restrict="all")
    want = best_coverage(inst, kinds=("cabinet_secondaire", "centre_de_sante"))
    assert (zoned.objective, zoned.summary["cost_total"]) == pytest.approx(want)
    assert set(zoned.summary["open_sites"]) <= allowed_sites(inst, ("cabinet_secondaire", "centre_de_sante"))


def test_coverage_zonage_binds():
    """On some seed the zonage changes the plan (else the lever would bind nowhere here)."""
    changed = [s for s in SEEDS if set(solved(s, "coverage").summary["open_sites"])
               != set(solved(s, "coverage", zonage_restrict="all").summary["open_sites"])]
    assert changed


@pytest.mark.parametrize("seed", SEEDS)
def test_coverage_envelope_matches_enumeration(seed):
    inst0 = sites_instance(seed)
    free = solved(seed, "coverage")
    spent = free.summary["cost_by_funder"]
    payer = max(FUNDERS, key=lambda f: spent.get(f, 0.0))  # the envelope bites the funder paying most
    cap = 0.5 * spent[payer]
    inst = sites_instance(seed, {"funder_envelopes": f"{payer}={cap:g}"})
    sol = run(inst, "coverage")
    want = best_coverage(inst, envelopes={payer: cap})
    assert (sol.objective, sol.summary["cost_total"]) == pytest.approx(want)
    assert sol.summary["cost_by_funder"][payer] <= cap + 1e-6
    if free.objective < want[0] - 1e-6:
        assert set(sol.summary["open_sites"]) != set(free.summary["open_sites"])


def test_coverage_envelope_keeps_a_dominated_site():
    """S1 covers all that S0 covers for less, but S1's funder has an envelope of 0: the
    model must not leave S0 out as dominated."""
    zones = pd.DataFrame({"zone_id": ["A", "B"], "population": [500, 300], "lon": [2.0, 2.1], "lat": 47.0})
    sites = pd.DataFrame({"site_id": ["S0", "S1"], "kind": "cabinet_secondaire", "zone_id": ["A", "A"],
                          "fixed_cost": [30_000, 20_000], "funder_fixed": ["commune_x", "ars_hopital"]})
    travel = pd.DataFrame({"from_id": ["A", "B", "A", "B"], "to_id": ["A", "A", "B", "B"],
                           "minutes": [0.0, 5.0, 5.0, 0.0]})
    p = {"budget": 50_000, "coverage_minutes": CUTOFF}
    free = run(instance_from_frames(zones, sites, None, travel, parameters=p), "coverage")
    assert free.summary["open_sites"] == ["S1"]
    capped = run(instance_from_frames(zones, sites, None, travel, parameters={**p, "funder_envelopes": "ars_hopital=0"}),
                 "coverage")
    assert capped.summary["open_sites"] == ["S0"] and capped.objective == pytest.approx(0.0)


def test_checker_catches_a_coverage_plan_breaking_the_levers():
    seed = next(s for s in SEEDS if set(solved(s, "coverage").summary["open_sites"])
                - allowed_sites(sites_instance(s), ("cabinet_secondaire", "centre_de_sante")))
    free = solved(seed, "coverage")
    text = " | ".join(check_solution(sites_instance(seed, {"zonage_restrict": "all"}), free).violations)
    assert "zonage_restrict 'all' allows it only in ZIP or ZAC" in text
    spent = free.summary["cost_by_funder"]
    payer = max(FUNDERS, key=lambda f: spent.get(f, 0.0))
    text = " | ".join(check_solution(sites_instance(seed, {"funder_envelopes": f"{payer}=1"}), free).violations)
    assert f"{payer} pays" in text and "above its envelope of 1.00" in text


def test_coverage_refuses_a_forced_site_over_its_envelope():
    inst = sites_instance(0, {"funder_envelopes": "ars_hopital=1; commune_x=1"})
    with pytest.raises(InfeasibleError, match="envelope"):
        build(inst, SolveOptions(model="coverage", force_open=("S0",)))


# -- lscp --------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_lscp_zonage_matches_enumeration(seed):
    free_inst = sites_instance(seed)
    free = solved(seed, "lscp")
    assert free.objective == pytest.approx(best_cover(free_inst))
    kinds = ("cabinet_secondaire", "centre_de_sante")
    inst = sites_instance(seed, {"zonage_restrict": "all"})
    zoned = solved(seed, "lscp", zonage_restrict="all")
    assert zoned.objective == pytest.approx(best_cover(inst, kinds=kinds))
    assert set(zoned.summary["open_sites"]) <= allowed_sites(inst, kinds)


def test_lscp_zonage_binds_and_says_which_zones_it_leaves_out():
    kinds = ("cabinet_secondaire", "centre_de_sante")
    seed = next(s for s in SEEDS if best_cover(sites_instance(s)) != best_cover(sites_instance(s), kinds=kinds))
    zoned = solved(seed, "lscp", zonage_restrict="all")
    assert zoned.objective != pytest.approx(solved(seed, "lscp").objective)
    unreachable = min(u for _, u, _ in plans(sites_instance(seed), kinds=kinds))
    assert unreachable > 0  # zones only forbidden sites reach: the checker must not ask for them
    assert any("the zonage allows (zonage_restrict = all)" in w for w in zoned.summary["warnings"])
    # Read without the zonage, the same plan leaves reachable zones out: the checker says so.
    text = " | ".join(check_solution(sites_instance(seed), zoned).violations)
    assert "can be reached within" in text and "declares full coverage" in text


@pytest.mark.parametrize("seed", SEEDS)
def test_lscp_envelope_matches_enumeration(seed):
    inst0 = sites_instance(seed)
    free = solved(seed, "lscp")
    spent = free.summary["cost_by_funder"]
    payer = max(FUNDERS, key=lambda f: spent.get(f, 0.0))
    # The tightest envelope of that funder that still leaves a full cover, if it is lower.
    covers = [(plan, c) for plan, u, c in plans(inst0) if u <= min(u2 for _, u2, _ in plans(inst0)) + 1e-9]
    caps = sorted({paid(inst0, p, payer)
                   for p, _ in covers})
    cap = caps[0]
    inst = sites_instance(seed, {"funder_envelopes": f"{payer}={cap:g}"})
    sol = solved(seed, "lscp", funder_envelopes=f"{payer}={cap:g}")
    assert sol.objective == pytest.approx(best_cover(inst, envelopes={payer: cap}))
    assert sol.summary["cost_by_funder"][payer] <= cap + 1e-6
    if cap < spent[payer] - 1e-6:
        assert set(sol.summary["open_sites"]) != set(free.summary["open_sites"])


def test_lscp_envelope_binds_somewhere():
    """On some seed the envelope forces a dearer cover (the lever binds)."""
    moved = []
    for seed in SEEDS:
        inst0 = sites_instance(seed)
        full = min(u for _, u, _ in plans(inst0))
        covers = [(p, c) for p, u, c in plans(inst0) if u <= full + 1e-9]
        for payer in FUNDERS:
            cap = min(paid(inst0, p, payer)
                      for p, _ in covers)
            if best_cover(inst0, envelopes={payer: cap}) > best_cover(inst0) + 1e-6:
                sol = solved(seed, "lscp", funder_envelopes=f"{payer}={cap:g}")
                moved.append(sol.objective > solved(seed, "lscp").objective + 1e-6)
    assert moved and all(moved)


def test_lscp_without_a_cover_inside_the_envelopes_is_infeasible():
    inst = sites_instance(0, {"funder_envelopes": "ars_hopital=0; commune_x=0"})
    with pytest.raises(InfeasibleError, match="funder_envelopes"):
        solve(inst, SolveOptions(model="lscp", time_limit=60, threads=1))


# -- levers with no meaning here -----------------------------------------------------------

@pytest.mark.parametrize("model", ["coverage", "lscp"])
def test_staffing_levers_are_named_in_a_warning(model):
    quiet = solved(1, model)
    assert not any("has no effect" in w for w in quiet.summary["warnings"])
    sol = run(sites_instance(1, {"max_new_salaried_fte": 3, "presence_unit": "month"}), model)
    said = [w for w in sol.summary["warnings"] if "has no effect" in w]
    assert len(said) == 2
    assert said[0].startswith("max_new_salaried_fte = 3 has no effect in the " + model)
    assert said[1].startswith("presence_unit = month has no effect in the " + model)
    assert sol.summary["open_sites"] == quiet.summary["open_sites"]  # and the plan is the same
    assert math.isclose(sol.summary["salaried_fte"], 0.0)
