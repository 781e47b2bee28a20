"""The phasing model (multi-year plan while GPs retire) and the ageing supply: against
enumeration, against the staffing model, on Nièvre through the command line, and the
checker of multi-year folders."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from optisite import instance_from_frames, load_instance
from optisite.checker import check_folder
from optisite.cli import main
from optisite.errors import CheckError
from optisite.pipeline import SolveOptions, solve
from optisite.retirement import age_shares, physicians_by_year, year_instance

from test_models import flow_lp, minutes_matrix, random_instance, small_staffing_instance, staffing_plans

ROOT = Path(__file__).resolve().parents[1]
NIEVRE = ROOT / "instances" / "nievre-58"


# ---------------------------------------------------------------------------------
# enumeration of multi-year plans (no Pyomo): every year's integer plan, every sequence
# ---------------------------------------------------------------------------------

def ramp_share(p, age):
    """Capacity share of a centre in its age-th year (models/phasing.md, written out again)."""
    if p.centre_ramp_up_first_year >= 1:
        return 1.0
    return min(1.0, p.centre_ramp_up_first_year + (1 - p.centre_ramp_up_first_year) * (age - 1)
               / p.centre_ramp_up_years)


def brute_force_phasing(inst):
    """Best (discounted weighted uncovered, discounted cost) over every sequence of yearly
    plans: sites stay open, hires per year within the limit, centres ramp up."""
    p = inst.parameters
    years = list(range(1, int(p.horizon_years) + 1))
    phys = physicians_by_year(inst)
    T = minutes_matrix(inst)
    year_inst = {t: year_instance(inst, phys[t]) for t in years}
    plans = {t: list(staffing_plans(year_inst[t])) for t in years}
    lp_cache: dict = {}

    def uncovered(t, days, fte_eff):
        key = (t, tuple(sorted(days.items())), tuple(sorted(fte_eff.items())))
        if key not in lp_cache:
            lp_cache[key] = flow_lp(year_inst[t], T, days, fte_eff)
        return lp_cache[key]

    def open_set(plan):
        days, _out, cab_days, fte, _cost = plan
        return {c for c, d in cab_days.items() if d > 0} | {h for h, f in fte.items() if f > 0}

    best = (np.inf, np.inf)
    for seq in itertools.product(*(plans[t] for t in years)):
        ok, prev_fte, prev_open = True, {}, set()
        for t, plan in zip(years, seq):
            now = open_set(plan)
            if not prev_open <= now:
                ok = False
                break
            fte = plan[3]
            hired = sum(max(0, f - prev_fte.get(h, 0)) for h, f in fte.items())
            if hired > p.max_new_salaried_fte_per_year + 1e-9:
                ok = False
                break
            prev_fte, prev_open = fte, now
        if not ok:
            continue
        unc = cost = 0.0
        first = {}
        for t, plan in zip(years, seq):
            days, _out, _cab, fte, c = plan
            for s in open_set(plan):
                first.setdefault(s, t)
            eff = {h: f * ramp_share(p, t - first[h] + 1) for h, f in fte.items() if f > 0}
            delta = (1 + p.discount_rate) ** -(t - 1)
            unc += delta * uncovered(t, days, eff)
            cost += delta * c
        if unc < best[0] - 1e-6 or (abs(unc - best[0]) <= 1e-6 and cost < best[1] - 1e-6):
            best = (unc, cost)
    return best


def small_phasing_instance(seed: int, budget: float, **params):
    """7 zones, 2 cabinets and a centre, 2 practices, 2 years of a 20 %-a-year retirement."""
    zones, sites, practices = random_instance(seed, n_zones=7, n_sites=3, n_practices=2,
                                              kinds=("cabinet_secondaire", "cabinet_secondaire", "centre_de_sante"))
    practices["physicians"] = [3, 2]
    base = {"budget": budget, "coverage_minutes": 16, "max_travel_minutes": 40, "cabinet_max_days": 2,
            "centre_min_fte": 1, "centre_max_fte": 2, "centre_fixed_cost": 50000, "horizon_years": 2,
            "retirement_scenario": "yearly_rate", "retirement_rate": 0.2, "max_new_salaried_fte_per_year": 1,
            **params}
    return instance_from_frames(zones, sites, practices, parameters=base)


@pytest.mark.parametrize("seed,budget,extra", [
    (0, 130000, {}),  # two cabinets, fewer days as GPs retire
    (7, 130000, {}),  # a centre opened in year 2 only
    (1, 130000, {"discount_rate": 0.1}),
    (3, 130000, {}),  # a cabinet and a centre
    (6, 130000, {"centre_ramp_up_first_year": 1.0}),
])
def test_phasing_matches_enumeration(seed, budget, extra):
    inst = small_phasing_instance(seed, budget, **extra)
    sol = solve(inst, SolveOptions(model="phasing", time_limit=60, gap=0))
    unc, cost = brute_force_phasing(inst)
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(unc, rel=1e-6, abs=1e-4)
    d = {t: (1 + inst.parameters.discount_rate) ** -(t - 1) for t in (1, 2)}
    spent = sum(d[y["year"]] * y["cost_total"] for y in sol.summary["years"])
    assert spent == pytest.approx(cost, rel=1e-6, abs=1e-3)
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]


def test_hiring_limit_and_ramp_up_bind():
    """One FTE a year holds the centre at one FTE in year 1 (it would take two), and its
    first year serves half its capacity."""
    inst = small_phasing_instance(6, 130000, max_new_salaried_fte_per_year=1)
    free = solve(inst.with_parameters({"max_new_salaried_fte_per_year": 10}), SolveOptions(model="phasing", gap=0))
    sol = solve(inst, SolveOptions(model="phasing", time_limit=60, gap=0))
    assert sol.objective > free.objective + 1.0
    for plan, limit in ((sol, 1), (free, 10)):
        fte = plan.sites[plan.sites["kind"] == "centre_de_sante"].pivot(index="site_id", columns="year", values="fte")
        hired = fte.fillna(0).diff(axis=1).fillna(fte.fillna(0)).clip(lower=0).sum()
        assert (hired <= limit + 1e-9).all()
    assert free.sites.loc[free.sites["year"] == 1, "fte"].sum() > 1
    p = inst.parameters
    full = p.consultations_per_day_salaried * p.days_per_fte * p.working_weeks
    cds = sol.sites[sol.sites["kind"] == "centre_de_sante"]
    first = cds.sort_values("year").drop_duplicates("site_id")
    assert len(first) and np.allclose(first["capacity"], first["fte"] * full * p.centre_ramp_up_first_year)


@pytest.mark.parametrize("seed,budget", [(0, 40000), (1, 60000), (2, 90000), (4, 250000)])
def test_one_year_without_retirement_equals_staffing(seed, budget):
    inst = small_staffing_instance(seed, budget).with_parameters(
        {"horizon_years": 1, "retirement_scenario": "none", "centre_ramp_up_first_year": 1.0,
         "max_new_salaried_fte_per_year": 1000})
    staff = solve(inst, SolveOptions(model="staffing", time_limit=60, gap=0))
    phase = solve(inst, SolveOptions(model="phasing", time_limit=60, gap=0))
    assert phase.status == staff.status == "optimal"
    assert phase.objective == pytest.approx(staff.objective, rel=1e-6, abs=1e-4)
    assert phase.summary["cost_total"] == pytest.approx(staff.summary["cost_total"], rel=1e-6, abs=1e-3)
    assert phase.summary["check"]["ok"], phase.summary["check"]["violations"]


# ---------------------------------------------------------------------------------
# the ageing supply
# ---------------------------------------------------------------------------------

def test_scenarios_give_physicians_per_year():
    zones, sites, practices = random_instance(5, n_practices=3)
    practices["physicians"] = [2.0, 4.0, 1.0]
    practices["share_65_plus"] = [0.5, 0.25, 0.0]
    practices["gp_over_60"] = [1.0, 2.0, 1.0]
    inst = instance_from_frames(zones, sites, practices, parameters={"horizon_years": 5})
    shares = age_shares(inst)
    assert list(shares.over65) == [0.5, 0.25, 0.0] and list(shares.over60) == [0.5, 0.5, 1.0]
    now = physicians_by_year(inst.with_parameters({"retirement_scenario": "over65_now"}))
    assert np.allclose(now[1], [1.0, 3.0, 1.0]) and np.allclose(now[5], now[1])
    five = physicians_by_year(inst.with_parameters({"retirement_scenario": "over60_within_5"}))
    assert np.allclose(five[1], [1.8, 3.6, 0.8]) and np.allclose(five[5], [1.0, 2.0, 0.0])
    rate = physicians_by_year(inst.with_parameters({"retirement_scenario": "yearly_rate", "retirement_rate": 0.1}))
    assert np.allclose(rate[2], np.round(np.array([2.0, 4.0, 1.0]) * 0.81, 3))
    none = physicians_by_year(inst.with_parameters({"retirement_scenario": "none"}))
    assert np.allclose(none[5], [2.0, 4.0, 1.0])


def test_drees_shares_reproduce_the_apl_without_gps_over_65():
    """Nièvre's calibrated supply less its fitted over-65 share gives an APL close to the
    DREES apl_mg_lt65, much closer than the whole supply does."""
    from optisite.apl import apl_before

    inst = load_instance(NIEVRE)
    shares = age_shares(inst)
    assert "apl_mg_lt65" in shares.source
    lt65 = year_instance(inst, inst.practices["physicians"] * (1 - shares.over65))
    z = inst.zones
    counted = (z["planning"] == 1) & z["apl_official_lt65"].notna()
    pop = z["population"][counted]

    def error(apl):
        return float((pop * (apl[counted] - z["apl_official_lt65"][counted]).abs()).sum() / pop.sum())

    assert error(apl_before(lt65)) < 0.5 * error(apl_before(inst))
    w = inst.practices["physicians"]
    drop = 1 - (z["apl_official_lt65"] * z["population"])[counted].sum() / (z["apl_official"] * z["population"])[counted].sum()
    assert float((shares.over65 * w).sum() / w.sum()) == pytest.approx(drop, abs=0.05)


# ---------------------------------------------------------------------------------
# the command line on Nièvre, and the checker of multi-year folders
# ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nievre_plan(tmp_path_factory):
    out = tmp_path_factory.mktemp("phasing") / "out"
    r = CliRunner().invoke(main, ["solve", str(NIEVRE), "--model", "phasing", "--years", "5", "--out", str(out),
                                  "--time-limit", "20", "--quiet", "--threads", "1"])
    assert r.exit_code == 0, r.output
    return out


def test_nievre_phasing_is_written_per_year_and_checks(nievre_plan):
    r = CliRunner().invoke(main, ["check", str(nievre_plan), str(NIEVRE)])
    assert r.exit_code == 0, r.output
    S = json.loads((nievre_plan / "solution.json").read_text())
    assert S["result"]["years"] is True and [y["year"] for y in S["years"]] == [1, 2, 3, 4, 5]
    for name in ("sites", "schedule", "zones", "practices", "assignment"):
        assert pd.read_csv(nievre_plan / f"{name}.csv").columns[0] == "year"
    zones = pd.read_csv(nievre_plan / "zones.csv", dtype={"zone_id": str})
    assert sorted(zones["year"].unique()) == [1, 2, 3, 4, 5]
    # GPs retire: doing nothing, more people lack access in year 5 than in year 1.
    before = [y["population_uncovered_before"] for y in S["years"]]
    assert before[-1] > before[0]
    # Never worse than doing nothing over the horizon.
    after = sum(y["population_uncovered"] for y in S["years"])
    assert after <= sum(before) + 1e-6


@pytest.fixture(scope="module")
def small_plan(tmp_path_factory):
    """A two-year plan with a centre from year 1 and a cabinet, written to a folder."""
    inst = small_phasing_instance(3, 130000)
    sol = solve(inst, SolveOptions(model="phasing", gap=0))
    assert sol.summary["check"]["ok"]
    assert set(sol.sites.loc[sol.sites["year"] == 1, "kind"]) == {"cabinet_secondaire", "centre_de_sante"}
    return inst, sol.write(tmp_path_factory.mktemp("small") / "plan")


def _tampered(folder: Path, tmp_path: Path, edit) -> Path:
    import shutil

    out = tmp_path / "tampered"
    shutil.copytree(folder, out)
    edit(out)
    return out


@pytest.mark.parametrize("what,message", [
    ("close a site in year 2", "closed"),
    ("hire above the limit", "hired"),
    ("objective of one year", "objective"),
    ("centre at full capacity in its first year", "capacity"),
])
def test_checker_catches_multi_year_tampering(small_plan, tmp_path, what, message):
    inst, folder = small_plan
    assert check_folder(folder, inst).ok

    def edit(out):
        sites = pd.read_csv(out / "sites.csv", dtype={"site_id": str, "zone_id": str})
        S = json.loads((out / "solution.json").read_text())
        if what == "close a site in year 2":
            sites = sites.drop(sites.index[(sites["year"] == 2) & (sites["kind"] == "cabinet_secondaire")])
            sched = pd.read_csv(out / "schedule.csv", dtype=str)
            sched[~((sched["year"] == "2"))].to_csv(out / "schedule.csv", index=False)
        elif what == "hire above the limit":  # one FTE a year at most: two in year 1
            sites.loc[(sites["year"] == 1) & (sites["kind"] == "centre_de_sante"), "fte"] = 2.0
        elif what == "objective of one year":
            S["objective"] = S["objective"] * 0.9
        else:
            centre = (sites["year"] == 1) & (sites["kind"] == "centre_de_sante")
            sites.loc[centre, "capacity"] = sites.loc[centre, "capacity"] * 2
        sites.to_csv(out / "sites.csv", index=False)
        (out / "solution.json").write_text(json.dumps(S))

    with pytest.raises(CheckError) as caught:
        check_folder(_tampered(folder, tmp_path, edit), inst)
    assert any(message in v for v in caught.value.violations), caught.value.violations


def test_report_shows_the_plan_over_the_years(small_plan):
    """report.html of a multi-year plan: one row a year (doing nothing, the plan, spending
    against the budget, what opens when), the chart, and the communes losing access."""
    import re

    inst, folder = small_plan
    html = (folder / "report.html").read_text(encoding="utf-8")
    S = json.loads((folder / "solution.json").read_text())
    assert 'id="years-chart"' in html and "data:image/png;base64," in html
    rows = re.findall(r'<tr data-year="(\d+)">(.*?)</tr>', html, flags=re.S)
    assert [int(y) for y, _ in rows] == [1, 2]
    sites = pd.read_csv(folder / "sites.csv", dtype={"site_id": str})
    first_year = sites.groupby("site_id")["year"].min()
    names = sites.drop_duplicates("site_id").set_index("site_id")["name"]
    for y, cells in rows:
        for sid, t in first_year.items():
            assert (names[sid] in cells) == (t == int(y))
    total = re.search(r'id="years-total-before" data-value="([^"]+)"', html).group(1)
    assert float(total) == pytest.approx(sum(y["population_uncovered_before"] for y in S["years"]))
    losing = int(re.search(r'id="years-losing" data-value="(\d+)"', html).group(1))
    zones = pd.read_csv(folder / "zones.csv", dtype={"zone_id": str})
    a, b = (zones[zones["year"] == t].set_index("zone_id") for t in (1, 2))
    assert losing == int(((a["covered_before"] - b["covered_before"]) * a["population"] > 0.5).sum())


def test_closing_allowed_at_a_cost_is_used_and_checked():
    """With closing allowed, a site opened in year 1 may close (never reopen); the plan is
    never worse than without closing, and the checker passes it."""
    params = dict(horizon_years=3, retirement_rate=0.4)
    shut = small_phasing_instance(0, 130000, allow_closing=True, closing_cost=1000, **params)
    kept = small_phasing_instance(0, 130000, **params)
    a = solve(shut, SolveOptions(model="phasing", gap=0))
    b = solve(kept, SolveOptions(model="phasing", gap=0))
    assert a.summary["check"]["ok"] and b.summary["check"]["ok"]
    assert a.objective <= b.objective + 1e-6
    opened = [set(y["open_sites"]) for y in a.summary["years"]]
    assert any(opened[i] - opened[i + 1] for i in range(len(opened) - 1))  # something closes
    for i in range(len(opened) - 1):  # nothing reopens
        assert not ((set().union(*opened[:i + 1]) - opened[i]) & opened[i + 1])
    for i in range(len(opened) - 1):  # without closing, sites stay
        keep = [set(y["open_sites"]) for y in b.summary["years"]]
        assert keep[i] <= keep[i + 1]


@pytest.mark.parametrize("seed,budget,extra", [(0, 130000, {}), (3, 130000, {}), (1, 130000, {"discount_rate": 0.1})])
def test_year_by_year_bound_is_below_the_enumerated_optimum(seed, budget, extra):
    """Each year's block is a staffing model with more rows: the discounted sum of the
    years' staffing bounds never exceeds the multi-year optimum."""
    from optisite.models.phasing import year_by_year_bound
    from optisite.pipeline import build

    inst = small_phasing_instance(seed, budget, **extra)
    built = build(inst, SolveOptions(model="phasing", time_limit=None))
    value, method = year_by_year_bound(built.context, built.data)
    unc, _ = brute_force_phasing(inst)
    assert value <= unc + 1e-6 * max(1.0, unc)
    assert value > 0.0 or unc == 0.0  # it says something on these instances
    assert method.startswith("year by year")
