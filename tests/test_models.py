"""Models against optima found by brute-force enumeration (no Pyomo in the reference)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from optisite import instance_from_frames
from optisite.checker import check_solution
from optisite.errors import InfeasibleError, InputError
from optisite.pipeline import SolveOptions, solve
from optisite.travel import great_circle_km


def random_instance(seed: int, n_zones=9, n_sites=6, n_practices=2, kinds=("cabinet_secondaire",)):
    rng = np.random.default_rng(seed)
    lon = 4.0 + rng.uniform(0, 0.5, n_zones)
    lat = 46.0 + rng.uniform(0, 0.3, n_zones)
    zones = pd.DataFrame({"zone_id": [f"Z{i:02d}" for i in range(n_zones)],
                          "population": rng.integers(0, 3000, n_zones),
                          "lon": lon, "lat": lat,
                          "weight": rng.choice([1.0, 1.0, 2.0], n_zones)})
    site_zone = rng.choice(n_zones, n_sites, replace=False)
    sites = pd.DataFrame({"site_id": [f"S{j}" for j in range(n_sites)],
                          "kind": [kinds[j % len(kinds)] for j in range(n_sites)],
                          "zone_id": zones["zone_id"].to_numpy()[site_zone],
                          "fixed_cost": rng.integers(1, 6, n_sites) * 10000})
    pz = rng.choice(n_zones, n_practices, replace=False)
    practices = pd.DataFrame({"practice_id": [f"P{k}" for k in range(n_practices)],
                              "zone_id": zones["zone_id"].to_numpy()[pz],
                              "physicians": rng.integers(1, 4, n_practices)})
    return zones, sites, practices


def minutes_matrix(inst):
    z = inst.zones
    km = great_circle_km(z["lon"].to_numpy()[:, None], z["lat"].to_numpy()[:, None],
                         z["lon"].to_numpy()[None, :], z["lat"].to_numpy()[None, :])
    m = km * inst.parameters.detour_factor / inst.parameters.speed_kmh * 60
    np.fill_diagonal(m, 0.0)
    return pd.DataFrame(m, index=z.index, columns=z.index)


def brute_force_coverage(inst):
    """Best (weighted uncovered, cost) over every affordable subset of sites."""
    T = minutes_matrix(inst)
    cut = inst.parameters.coverage_minutes
    z = inst.zones
    wp = z["weight"] * z["population"]
    base = np.zeros(len(z), dtype=bool)
    for zid in inst.practices["zone_id"]:
        base |= (T[zid] <= cut).to_numpy()
    best = (np.inf, np.inf)
    sites = list(inst.sites.index)
    for r in range(len(sites) + 1):
        for subset in itertools.combinations(sites, r):
            cost = float(inst.sites.loc[list(subset), "fixed_cost"].sum())
            if cost > inst.parameters.budget + 1e-9:
                continue
            cov = base.copy()
            for s in subset:
                cov |= (T[inst.sites.at[s, "zone_id"]] <= cut).to_numpy()
            unc = float(wp[~cov].sum())
            best = min(best, (unc, cost))
    return best


@pytest.mark.parametrize("seed", range(8))
def test_coverage_matches_enumeration(seed):
    zones, sites, practices = random_instance(seed)
    budget = [20000, 40000, 60000, 90000][seed % 4]
    inst = instance_from_frames(zones, sites, practices, parameters={"budget": budget, "coverage_minutes": 12})
    sol = solve(inst, SolveOptions(model="coverage", time_limit=60))
    unc, cost = brute_force_coverage(inst)
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(unc, abs=1e-6)
    # Lexicographic: at that coverage, the cheapest plan.
    assert sol.summary["cost_total"] == pytest.approx(cost, abs=1e-6)
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]


def test_coverage_forced_decisions_are_respected():
    zones, sites, practices = random_instance(3)
    inst = instance_from_frames(zones, sites, practices, parameters={"budget": 60000, "coverage_minutes": 12})
    free = solve(inst, SolveOptions(model="coverage"))
    target = free.open_sites[0] if free.open_sites else "S0"
    closed = solve(inst, SolveOptions(model="coverage", force_closed=(target,)))
    assert target not in closed.open_sites
    assert closed.objective >= free.objective - 1e-9
    other = next(s for s in inst.sites.index if s not in free.open_sites)
    opened = solve(inst, SolveOptions(model="coverage", force_open=(other,)))
    assert other in opened.open_sites
    assert opened.summary["check"]["ok"]


def test_forced_site_beyond_budget_names_the_constraint():
    zones, sites, practices = random_instance(1)
    inst = instance_from_frames(zones, sites, practices, parameters={"budget": 10000})
    expensive = inst.sites["fixed_cost"].idxmax()
    with pytest.raises(InfeasibleError, match="budget"):
        solve(inst, SolveOptions(model="coverage", force_open=(expensive,)))


def test_budget_below_cheapest_option_is_refused_but_zero_is_the_status_quo():
    zones, sites, practices = random_instance(2)
    inst = instance_from_frames(zones, sites, practices, parameters={"budget": 5})
    with pytest.raises(InputError, match="cheapest"):
        solve(inst, SolveOptions(model="coverage"))
    zero = solve(inst.with_parameters({"budget": 0}), SolveOptions(model="coverage"))
    assert zero.status == "optimal" and zero.open_sites == []
    assert zero.summary["population_covered"] == pytest.approx(zero.summary["population_covered_before"])


# ---------------------------------------------------------------------------------
# staffing: enumerate integer decisions, solve the flow LP with scipy for each
# ---------------------------------------------------------------------------------

def flow_lp(inst, T, days: dict, fte: dict):
    """Min weighted uncovered inhabitants for fixed staffing (scipy LP, independent of Pyomo)."""
    p = inst.parameters
    z = inst.zones
    per_day = p.consultations_per_day_liberal * p.working_weeks
    per_fte = p.consultations_per_day_salaried * p.days_per_fte * p.working_weeks
    cap = {}
    for pid, row in inst.practices.iterrows():
        given = sum(d for (pp, _), d in days.items() if pp == pid)
        cap[(pid, row["zone_id"])] = row["physicians"] * p.days_per_fte * per_day - given * per_day
    for sid, row in inst.sites.iterrows():
        if row["kind"] == "cabinet_secondaire":
            c = sum(d for (_, ss), d in days.items() if ss == sid) * per_day
        else:
            c = fte.get(sid, 0) * per_fte
        if c > 0:
            cap[(sid, row["zone_id"])] = c
    srcs = list(cap)
    pairs = [(i, k) for i, zid in enumerate(z.index) for k, (_, szid) in enumerate(srcs)
             if T.at[zid, szid] <= p.coverage_minutes and z["demand"].iloc[i] > 0]
    if not pairs:
        return float((z["weight"] * z["population"] * (z["demand"] > 0)).sum())
    pen = (z["weight"] * z["population"] / z["demand"].where(z["demand"] > 0, 1)).to_numpy()
    c = np.array([-pen[i] for i, _ in pairs])
    A, b = [], []
    for k in range(len(srcs)):
        A.append([1.0 if kk == k else 0.0 for _, kk in pairs]); b.append(cap[srcs[k]])
    for i in range(len(z)):
        A.append([1.0 if ii == i else 0.0 for ii, _ in pairs]); b.append(z["demand"].iloc[i])
    res = linprog(c, A_ub=np.array(A), b_ub=np.array(b), bounds=(0, None), method="highs")
    assert res.status == 0
    total = float((z["weight"] * z["population"] * (z["demand"] > 0)).sum())
    return total + res.fun


def staffing_plans(inst):
    """Every integer staffing plan within the budget, by enumeration (no Pyomo).

    Yields (days by (practice, cabinet), days given by practice, days by cabinet,
    FTE by centre, cost)."""
    p = inst.parameters
    T = minutes_matrix(inst)
    pr, st = inst.practices, inst.sites
    cab = [s for s in st.index if st.at[s, "kind"] == "cabinet_secondaire"]
    cds = [s for s in st.index if st.at[s, "kind"] == "centre_de_sante"]
    links = [(pid, c) for pid in pr.index for c in cab
             if T.at[pr.at[pid, "zone_id"], st.at[c, "zone_id"]] <= pr.at[pid, "max_travel_minutes"]]
    give = {pid: int(np.floor(pr.at[pid, "secondary_days"] + 1e-9)) for pid in pr.index}
    ranges = [range(0, min(give[pid], int(st.at[c, "max_days"])) + 1) for pid, c in links]
    fte_ranges = [[0] + list(range(int(np.ceil(st.at[h, "min_fte"])), int(st.at[h, "max_fte"]) + 1)) for h in cds]
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
            if cost <= p.budget + 1e-6:
                yield days, out, cab_days, fte, cost


def brute_force_staffing(inst):
    T = minutes_matrix(inst)
    best = (np.inf, np.inf)
    for days, _out, _cab_days, fte, cost in staffing_plans(inst):
        unc = flow_lp(inst, T, days, fte)
        if unc < best[0] - 1e-6 or (abs(unc - best[0]) <= 1e-6 and cost < best[1]):
            best = (unc, cost)
    return best


def small_staffing_instance(seed: int, budget: float):
    """7 zones, 2 cabinets and a centre, 2 practices: small enough to enumerate every plan."""
    zones, sites, practices = random_instance(seed, n_zones=7, n_sites=3, n_practices=2,
                                              kinds=("cabinet_secondaire", "cabinet_secondaire", "centre_de_sante"))
    practices["physicians"] = [2, 1]
    params = {"budget": budget, "coverage_minutes": 12, "max_travel_minutes": 40, "cabinet_max_days": 3,
              "centre_min_fte": 1, "centre_max_fte": 2, "centre_fixed_cost": 50000}
    return instance_from_frames(zones, sites, practices, parameters=params)


@pytest.mark.parametrize("seed,budget", [(0, 40000), (1, 60000), (2, 90000), (3, 150000), (4, 250000)])
def test_staffing_matches_enumeration(seed, budget):
    inst = small_staffing_instance(seed, budget)
    sol = solve(inst, SolveOptions(model="staffing", time_limit=60, gap=0))
    unc, cost = brute_force_staffing(inst)
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(unc, rel=1e-6, abs=1e-4)
    assert sol.summary["cost_total"] == pytest.approx(cost, rel=1e-6, abs=1e-3)
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]


def test_tiny_staffing_plan_is_checked_and_transfers_days(tmp_path):
    from optisite import load_instance
    from optisite.checker import check_folder

    inst = load_instance("instances/tiny")
    sol = solve(inst, SolveOptions())
    assert sol.summary["check"]["ok"]
    given = sol.practices["days_given"].sum()
    assert given == sol.schedule["days_per_week"].sum() == sol.sites["days_per_week"].sum()
    # Days given away are taken from the home practice: a transfer, not new supply.
    lost = (sol.practices["capacity_before"] - sol.practices["capacity_after"]).sum()
    assert lost == pytest.approx(sol.sites.loc[sol.sites["kind"] == "cabinet_secondaire", "capacity"].sum())
    out = sol.write(tmp_path / "out")
    assert check_folder(out, inst).ok


def test_checker_catches_tampering(tmp_path):
    from optisite import load_instance
    from optisite.checker import check_folder
    from optisite.errors import CheckError

    inst = load_instance("instances/tiny")
    out = solve(inst, SolveOptions()).write(tmp_path / "out")
    tampered = {
        "sites.csv": lambda df: df.assign(cost_total=df["cost_total"] - 1),
        "schedule.csv": lambda df: df.assign(days_per_week=df["days_per_week"] + 1),
        "assignment.csv": lambda df: df.assign(consultations=df["consultations"] * 1.5),
        "zones.csv": lambda df: df.assign(covered_after=1.0),
    }
    for name, change in tampered.items():
        path = out / name
        original = path.read_text()
        df = pd.read_csv(path, dtype={c: str for c in ("site_id", "zone_id", "practice_id", "source_id",
                                                         "practice_zone_id", "site_zone_id")})
        change(df).to_csv(path, index=False)
        with pytest.raises(CheckError):
            check_folder(out, inst)
        path.write_text(original)
    assert check_folder(out, inst).ok


def test_checker_catches_travel_and_budget_violations():
    from optisite import load_instance

    inst = load_instance("instances/tiny")
    sol = solve(inst, SolveOptions())
    strict = inst.with_parameters({"max_travel_minutes": 20, "budget": 50000})
    report = check_solution(strict, sol)
    text = " ".join(report.violations)
    assert not report.ok
    assert "above its limit" in text and "exceeds the budget" in text
