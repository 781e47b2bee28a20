"""The Cour's levers (issue 15 item 5): each changes the staffing optimum as enumeration or
a hand computation says, and the checker catches a plan that breaks it.

The instances are small and isolated: each zone is served only from its own commune, so
an optimum is a short enumeration over the centres' FTE (or the cabinets' days)."""

from __future__ import annotations

import itertools
import math
import tomllib

import pandas as pd
import pytest

from optisite.checker import check_folder, check_solution
from optisite.errors import InfeasibleError, InputError
from optisite.instance import instance_from_frames
from optisite.levers import PRESENCE_WEEKS, to_units
from optisite.parameters import Parameters, parse_envelopes
from optisite.pipeline import SolveOptions, build, solve
from optisite.scenario import apply, documented_keys, parse_scenario

KAPPA = 3.4  # consultations_per_inhabitant (default)
PER_FTE = 12.7 * 5 * 46  # consultations a year of one salaried FTE (defaults)
PER_DAY = 24 * 46  # consultations a year of one weekly liberal day (defaults)


# -- instances ---------------------------------------------------------------------------

def centres_instance(params=None, *, zonage=("ZIP", "none"), funders=None):
    """Two isolated communes A (1,000 people) and B (2,000), a candidate centre in each, no
    practice: a centre serves its own commune only."""
    zones = pd.DataFrame({"zone_id": ["A", "B"], "population": [1000, 2000], "lon": [2.0, 3.0],
                          "lat": [47.0, 47.0]})
    if zonage is not None:
        zones["zonage"] = list(zonage)
    sites = pd.DataFrame({"site_id": ["CDS-A", "CDS-B"], "kind": "centre_de_sante", "zone_id": ["A", "B"]})
    for col, values in (funders or {}).items():
        sites[col] = values
    travel = pd.DataFrame({"from_id": ["A"], "to_id": ["A"], "minutes": [0.0]})
    base = {"budget": 1_000_000, "coverage_minutes": 10, "centre_min_fte": 1, "centre_max_fte": 5}
    return instance_from_frames(zones, sites, None, travel, parameters={**base, **(params or {})})


def enumerate_centres(inst, allowed=lambda plan: True):
    """(uncovered, cost) of the best plan by enumeration: FTE of each centre in 0..N."""
    p = inst.parameters
    s = inst.sites
    pop = inst.zones["population"].astype(float)
    best = (math.inf, math.inf)
    ranges = [range(0, int(s.at[h, "max_fte"]) + 1) for h in s.index]
    for ftes in itertools.product(*ranges):
        plan = dict(zip(s.index, ftes))
        if any(0 < f < s.at[h, "min_fte"] for h, f in plan.items()):
            continue
        cost = sum(s.at[h, "fixed_cost"] + f * s.at[h, "cost_per_fte"] for h, f in plan.items() if f)
        if cost > p.budget + 1e-6 or not allowed(plan):
            continue
        served = {s.at[h, "zone_id"]: min(pop[s.at[h, "zone_id"]], f * PER_FTE / KAPPA) for h, f in plan.items()}
        unc = float(sum(pop[z] - served.get(z, 0.0) for z in pop.index))
        if unc < best[0] - 1e-6 or (abs(unc - best[0]) <= 1e-6 and cost < best[1]):
            best = (unc, cost)
    return best


def cabinets_instance(params=None):
    """One practice (1 GP) in P and two isolated communes C1, C2 of 50 people, each with a
    candidate cabinet secondaire the GP can reach; P itself has no inhabitant."""
    zones = pd.DataFrame({"zone_id": ["P", "C1", "C2"], "population": [0, 50, 50], "lon": [2.0, 2.5, 3.0],
                          "lat": [47.0, 47.0, 47.0]})
    sites = pd.DataFrame({"site_id": ["CS-1", "CS-2"], "kind": "cabinet_secondaire", "zone_id": ["C1", "C2"]})
    practices = pd.DataFrame({"practice_id": ["GP"], "zone_id": ["P"], "physicians": [1.0]})
    travel = pd.DataFrame({"from_id": ["P", "P"], "to_id": ["C1", "C2"], "minutes": [30.0, 30.0]})
    base = {"budget": 36_000, "coverage_minutes": 10, "max_travel_minutes": 40, "cabinet_min_days": 0.23}
    return instance_from_frames(zones, sites, practices, travel, parameters={**base, **(params or {})})


def run(inst, **kw):
    sol = solve(inst, SolveOptions(model=kw.pop("model", "staffing"), time_limit=60, gap=0, threads=1, **kw))
    assert sol.status == "optimal"
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]
    return sol


def fte(sol) -> dict[str, float]:
    s = sol.sites
    return dict(zip(s["site_id"], s["fte"].astype(float)))


def violations(inst, sol) -> str:
    report = check_solution(inst, sol)
    assert not report.ok
    return " | ".join(report.violations)


# -- zonage --------------------------------------------------------------------------------

def test_zonage_moves_the_centre_to_the_zip_commune():
    """Budget for one centre with 2 FTE: B (2,000 people) gains more, but B is not ZIP/ZAC."""
    budget = {"budget": 180_000}
    free = run(centres_instance(budget))
    assert fte(free) == {"CDS-B": 2.0}
    assert free.objective == pytest.approx(enumerate_centres(centres_instance(budget))[0])
    assert free.objective == pytest.approx(1000 + 2000 - 2 * PER_FTE / KAPPA)

    inst = centres_instance({**budget, "zonage_restrict": "centre_de_sante"})
    zoned = run(inst)
    assert fte(zoned) == {"CDS-A": 2.0}
    want = enumerate_centres(inst, allowed=lambda plan: plan["CDS-B"] == 0)
    assert zoned.objective == pytest.approx(want[0]) == pytest.approx(2000.0)
    assert zoned.summary["cost_total"] == pytest.approx(want[1])
    # A restriction on the other kind leaves centres free.
    assert fte(run(centres_instance({**budget, "zonage_restrict": "cabinet_secondaire"}))) == {"CDS-B": 2.0}
    # ZAC counts as eligible, like ZIP.
    assert fte(run(centres_instance({**budget, "zonage_restrict": "all"}, zonage=("none", "zac")))) == {"CDS-B": 2.0}


def test_checker_catches_a_centre_outside_zip_zac():
    budget = {"budget": 180_000}
    free = run(centres_instance(budget))
    text = violations(centres_instance({**budget, "zonage_restrict": "centre_de_sante"}), free)
    assert "CDS-B" in text and "zonage_restrict" in text


def test_zonage_refusals():
    with pytest.raises(InputError, match="no zonage column"):
        build(centres_instance({"zonage_restrict": "all"}, zonage=None), SolveOptions())
    with pytest.raises(InfeasibleError, match="zonage"):
        build(centres_instance({"zonage_restrict": "all"}), SolveOptions(force_open=("CDS-B",)))


def test_zonage_column_is_validated_with_its_row():
    with pytest.raises(InputError) as err:
        centres_instance(zonage=("ZIP", "ZRR"))
    assert err.value.column == "zonage" and err.value.row == 2  # in-memory rows count from 1 and "ZRR" in str(err.value)
    inst = centres_instance(zonage=("zip", ""))
    assert list(inst.zones["zonage"]) == ["ZIP", "none"]


# -- recruitment limit ---------------------------------------------------------------------

def test_recruitment_limit_changes_the_plan_as_enumeration_says():
    free_inst = centres_instance()
    free = run(free_inst)
    assert sum(fte(free).values()) == 5  # A needs 2 FTE, B 3: everyone covered
    assert free.objective == pytest.approx(0.0, abs=1e-6)
    inst = centres_instance({"max_new_salaried_fte": 3})
    capped = run(inst)
    want = enumerate_centres(inst, allowed=lambda plan: sum(plan.values()) <= 3)
    assert sum(fte(capped).values()) == 3
    assert capped.objective == pytest.approx(want[0])
    # By hand: one FTE in A and two in B leave (1,000 - 859.1) + (2,000 - 1,718.2).
    assert want[0] == pytest.approx(3000 - 3 * PER_FTE / KAPPA)
    assert fte(capped) == {"CDS-A": 1.0, "CDS-B": 2.0}
    text = violations(inst, free)
    assert "max_new_salaried_fte" in text


def test_recruitment_limit_below_a_forced_centre_is_refused():
    with pytest.raises(InfeasibleError, match="new_fte"):
        build(centres_instance({"max_new_salaried_fte": 0, "centre_min_fte": 2}), SolveOptions(force_open=("CDS-A",)))


# -- funders' envelopes --------------------------------------------------------------------

FUNDERS = {"funder_fixed": ["commune_a", "commune_b"]}  # staff: ars_hopital (funder_centre_fte)


def test_a_communes_envelope_keeps_its_centre_closed():
    inst = centres_instance({"funder_envelopes": "commune_b=50000"}, funders=FUNDERS)
    sol = run(inst)
    assert fte(sol) == {"CDS-A": 2.0}
    assert sol.objective == pytest.approx(enumerate_centres(inst, allowed=lambda plan: plan["CDS-B"] == 0)[0])
    # Costs go to each site's own funder, in solution.json as in the checker.
    assert sol.summary["cost_by_funder"]["commune_a"] == pytest.approx(100_000)
    assert sol.summary["cost_by_funder"].get("commune_b", 0.0) == 0.0
    assert sol.summary["cost_by_funder"]["ars_hopital"] == pytest.approx(80_000)


def test_the_ars_envelope_on_salaried_fte_binds_like_a_hiring_cap():
    inst = centres_instance({"funder_envelopes": {"ars_hopital": 120_000}}, funders=FUNDERS)
    sol = run(inst)
    ars = lambda plan: 40_000 * sum(plan.values()) <= 120_000  # noqa: E731
    assert sol.objective == pytest.approx(enumerate_centres(inst, allowed=ars)[0])
    assert fte(sol) == {"CDS-A": 1.0, "CDS-B": 2.0}
    assert sol.summary["cost_by_funder"]["ars_hopital"] <= 120_000 + 1e-6


def test_checker_catches_an_envelope_overrun_and_a_misassigned_funder(tmp_path):
    free_inst = centres_instance(funders=FUNDERS)
    free = run(free_inst)
    text = violations(centres_instance({"funder_envelopes": "ars_hopital=120000"}, funders=FUNDERS), free)
    assert "ars_hopital pays 200,000.00 EUR/year, above its envelope of 120,000.00" in text
    out = free.write(tmp_path / "out")
    assert check_folder(out, free_inst).ok
    # The same plan read with other payers: cost_by_funder no longer matches.
    other = centres_instance(funders={"funder_fixed": ["commune_a", "departement"]})
    assert "cost_by_funder" in violations(other, free)


def test_envelope_refusals():
    with pytest.raises(InputError, match="pays no cost"):
        build(centres_instance({"funder_envelopes": "comune_a=1"}, funders=FUNDERS), SolveOptions())
    with pytest.raises(InfeasibleError, match="envelope"):
        build(centres_instance({"funder_envelopes": "commune_a=10000"}, funders=FUNDERS),
              SolveOptions(force_open=("CDS-A",)))
    for bad in ("ars", "ars=ten", "ars=-1", "a=1; a=2", "1ars=3"):
        with pytest.raises(InputError):
            Parameters().with_overrides({"funder_envelopes": bad})
    with pytest.raises(InputError) as err:
        centres_instance(funders={"funder_staff": ["ars hopital", ""]})
    assert err.value.column == "funder_staff" and err.value.row == 1


def test_envelopes_text_and_table_are_one_value():
    a = Parameters().with_overrides({"funder_envelopes": {"ars_hopital": 300_000, "collectivites": 1.5e5}})
    b = Parameters().with_overrides({"funder_envelopes": "collectivites = 150_000, ars_hopital=300000"})
    assert a.funder_envelopes == b.funder_envelopes == "ars_hopital=300000; collectivites=150000"
    assert parse_envelopes(a.funder_envelopes) == {"ars_hopital": 300_000.0, "collectivites": 150_000.0}
    assert parse_envelopes("none") == {}


# -- presence granularity ------------------------------------------------------------------

def test_days_a_month_open_two_cabinets_where_days_a_week_afford_one():
    """A weekly day costs 15,000 + 46 x 250 = 26,500; a monthly day 15,000 + 46 x 12/52 x 250
    = 17,653.85 and still serves 50 people (1,104 x 12/52 = 254.8 consultations >= 170)."""
    weekly = run(cabinets_instance())
    assert len(weekly.sites) == 1 and weekly.objective == pytest.approx(50.0)
    assert weekly.summary["cost_total"] == pytest.approx(26_500)
    monthly = run(cabinets_instance({"presence_unit": "month"}))
    assert len(monthly.sites) == 2 and monthly.objective == pytest.approx(0.0, abs=1e-6)
    assert monthly.summary["cost_total"] == pytest.approx(2 * (15_000 + 46 * 12 / 52 * 250))
    assert list(monthly.schedule["days_per_week"]) == pytest.approx([12 / 52, 12 / 52])
    # Capacity of a monthly day, as the tables write it.
    assert monthly.sites["capacity"].iloc[0] == pytest.approx(PER_DAY * 12 / 52)


def test_presence_minimum_is_read_in_the_unit():
    """cabinet_min_days 1 (a day a week) is 4 days a month (4.33 to the nearest day), the
    most one GP gives (max_secondary_days_per_gp 1): a monthly cabinet then costs
    15,000 + 46 x 48/52 x 250 = 25,615.38 and the budget of 36,000 affords one."""
    monthly = run(cabinets_instance({"presence_unit": "month", "cabinet_min_days": 1}))
    assert len(monthly.sites) == 1 and monthly.objective == pytest.approx(50.0)
    assert monthly.schedule["days_per_week"].iloc[0] * 52 / 12 == pytest.approx(4)
    assert monthly.summary["cost_total"] == pytest.approx(15_000 + 46 * 48 / 52 * 250)
    p = Parameters().with_overrides({"presence_unit": "month"})
    for up in (True, False):
        assert list(to_units([0.46, 0.45, 1.0, 5.0], p, up=up)) == [2, 2, 4, 22]
    week = Parameters()
    assert list(to_units([0.46, 1.0, 1.5], week, up=True)) == [1, 1, 2]
    assert list(to_units([0.46, 1.0, 1.5], week, up=False)) == [0, 1, 1]
    assert PRESENCE_WEEKS["month"] == pytest.approx(12 / 52)


def test_existing_supply_does_not_depend_on_the_presence_unit():
    """On tiny, the practices' own capacity is the same in either unit: the status quo
    (budget 0) covers the same people, and the checker's LP agrees."""
    from optisite import load_instance

    inst = load_instance("instances/tiny")
    week = run(inst.with_parameters({"budget": 0}))
    month = run(inst.with_parameters({"budget": 0, "presence_unit": "month"}))
    assert month.summary["population_covered_before"] == pytest.approx(week.summary["population_covered_before"])
    assert month.objective == pytest.approx(week.objective)


def test_checker_catches_days_off_the_presence_grid(tmp_path):
    monthly_inst = cabinets_instance({"presence_unit": "month"})
    monthly = run(monthly_inst)
    # Read with weekly presence, 12/52 of a day a week is not a whole day.
    assert "whole number of days a week" in violations(cabinets_instance(), monthly)
    out = monthly.write(tmp_path / "out")
    assert check_folder(out, monthly_inst).ok
    # A schedule row of 0.3 day a week is 1.3 days a month.
    path = out / "schedule.csv"
    df = pd.read_csv(path, dtype=str)
    df.loc[0, "days_per_week"] = "0.3"
    df.to_csv(path, index=False)
    from optisite.errors import CheckError

    with pytest.raises(CheckError, match="whole number of days a month"):
        check_folder(out, monthly_inst)


# -- through a scenario and the apl model ---------------------------------------------------

def test_levers_are_scenario_fields():
    sc = parse_scenario(
        'name = "levers"\n[parameters]\nzonage_restrict = "centre_de_sante"\nmax_new_salaried_fte = 3\n'
        'funder_envelopes = { ars_hopital = 120_000 }\npresence_unit = "month"\n')
    inst, _ = apply(centres_instance(funders=FUNDERS), sc)
    p = inst.parameters
    assert (p.zonage_restrict, p.max_new_salaried_fte, p.funder_envelopes, p.presence_unit) == (
        "centre_de_sante", 3.0, "ars_hopital=120000", "month")


def test_scenarios_md_lists_every_lever_parameter():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "models" / "scenarios.md").read_text(encoding="utf-8")
    section = text[text.index("## The Cour's levers"):text.index("## Keys")]
    toml = section[section.index("```toml") + 7:section.index("```", section.index("```toml") + 7)]
    listed = set(tomllib.loads(toml)["parameters"])
    levers = documented_keys()["levers"]
    assert set(levers) <= set(Parameters.names())
    for name in levers:
        assert f"`{name}`" in section and name in listed


def test_apl_model_keeps_the_zonage():
    """The apl model builds on staffing: its plan respects the lever too."""
    inst = centres_instance({"budget": 180_000, "zonage_restrict": "centre_de_sante", "apl_threshold": 0.5})
    sol = run(inst, model="apl")
    assert "CDS-B" not in set(sol.sites["site_id"])
    m = build(inst, SolveOptions(model="apl")).pyomo
    assert list(m.zonage) == ["CDS-B"]


# -- the report -----------------------------------------------------------------------------

def test_report_shows_zonage_envelopes_and_days_a_month():
    from optisite.report import render_report

    inst = centres_instance({"budget": 180_000, "zonage_restrict": "centre_de_sante",
                             "funder_envelopes": "ars_hopital=90000"}, funders=FUNDERS)
    html = render_report(inst, run(inst))
    assert '<td class="zonage-ZIP">ZIP</td>' in html  # the opened centre's commune
    assert '<td class="zonage-none">none</td>' in html  # commune B, still without access
    assert 'data-envelope="ars_hopital">90,000' in html.replace("\u202f", ",").replace("\xa0", ",")
    monthly = cabinets_instance({"presence_unit": "month"})
    html = render_report(monthly, run(monthly))
    assert html.count('<th class="n">days/month</th>') == 2 and '<th class="n">days/week</th>' not in html
    assert "zonage-" not in html.split("</style>")[1]  # no zonage column without the zones' column


def test_levers_from_the_command_line(tmp_path):
    """`--set` reaches each lever; the written plan passes `optisite check`."""
    import json

    from click.testing import CliRunner

    from optisite.cli import main

    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "solve", "instances/tiny", "--quiet", "--time-limit", "60", "--threads", "1", "--out", str(out),
        "--set", "presence_unit=month", "--set", "max_new_salaried_fte=2",
        "--set", "funder_envelopes=collectivites=60000; ars_hopital=80000"])
    assert result.exit_code == 0, result.output
    S = json.loads((out / "solution.json").read_text())
    assert S["parameters"]["funder_envelopes"] == "ars_hopital=80000; collectivites=60000"
    assert S["check"]["ok"] and S["salaried_fte"] <= 2
    assert S["cost_by_funder"]["collectivites"] <= 60000 and S["cost_by_funder"]["ars_hopital"] <= 80000
    checked = CliRunner().invoke(main, ["check", str(out), "instances/tiny"])
    assert checked.exit_code == 0, checked.output


# -- the staffing engine's start and the levers -------------------------------------------

def _start_record(inst):
    """The staffing engine's start record of a solve (its plan, and whether it was used)."""
    sol = solve(inst, SolveOptions(model="staffing", time_limit=60, gap=0, threads=1))
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]
    starts = [s for s in sol.summary["solver"]["start_stages"] if "greedy" in s["name"]]
    return sol, starts[0]


def test_engine_never_stages_a_centre_the_zonage_forbids():
    from optisite.models.staffing_search import search

    inst = centres_instance({"budget": 180_000, "zonage_restrict": "centre_de_sante"})
    data = build(inst, SolveOptions(model="staffing")).data
    plan = search(data, effort=200)
    assert plan is not None and "CDS-B" not in set(plan.fte.index)  # B is the bigger gain, but not ZIP/ZAC
    assert plan.fte.get("CDS-A", 0) > 0


@pytest.mark.parametrize("params, funders, lever", [
    ({"max_new_salaried_fte": 3}, None, "new_fte"),
    ({"funder_envelopes": "ars_hopital=120000"}, FUNDERS, "envelope"),
])
def test_engine_plan_breaking_a_lever_is_not_the_start(params, funders, lever):
    """The engine does not know these two levers: its plan (5 FTE, everyone covered) breaks
    them, so it must not be handed to HiGHS; the solve still finds the enumerated optimum."""
    from optisite.levers import plan_breaks
    from optisite.models.staffing_search import search

    inst = centres_instance(params, funders=funders)
    data = build(inst, SolveOptions(model="staffing")).data
    plan = search(data, effort=200)
    assert plan_breaks(data.levers, data, plan.days, plan.fte).startswith(lever)
    sol, start = _start_record(inst)
    assert start["extra"]["used"] is False and start["extra"]["breaks"].startswith(lever)
    assert "breaks the lever" in start["name"]
    want = enumerate_centres(inst, allowed=lambda p: sum(p.values()) <= 3)  # both levers: at most 3 FTE
    assert sol.status == "optimal" and sol.objective == pytest.approx(want[0])


def test_plan_breaks_reads_each_lever():
    from optisite.levers import plan_breaks

    none = pd.DataFrame(columns=["practice_id", "site_id", "days_per_week"])
    data = build(centres_instance({"zonage_restrict": "centre_de_sante"}), SolveOptions(model="staffing")).data
    assert plan_breaks(data.levers, data, none, pd.Series({"CDS-A": 2.0})) is None
    assert plan_breaks(data.levers, data, none, pd.Series({"CDS-B": 2.0})).startswith("zonage")
    data = build(centres_instance(funders=FUNDERS), SolveOptions(model="staffing")).data
    assert plan_breaks(data.levers, data, none, pd.Series({"CDS-A": 5.0, "CDS-B": 5.0})) is None
