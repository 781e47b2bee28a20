"""Practice capacity with the optional ``activity`` and ``share_65_plus`` columns (issue 16, item 4).

One rule (``optisite.rules``) for every consumer: the 2SFCA (``apl.apl_before``,
``apl.apl_after``), the apl model's constant, the staffing model's practice rows, the
solution's ``capacity_before`` and the independent checker. Values computed by hand.
"""

from __future__ import annotations

import pandas as pd
import pytest

from optisite import apl, rules
from optisite.checker import check_solution
from optisite.instance import instance_from_frames
from optisite.models import apl as apl_model
from optisite.models import staffing
from optisite.pipeline import SolveOptions, solve
from optisite.reach import coverage_pairs, staffing_pairs

DAY = 24 * 46  # consultations/year of one weekly liberal day (1,104)


def two_zones(activity=None, share=None, secondary_days=None, **params):
    """A (1,000 inh.) with practice P-A (2 GPs); B (500 inh.) 10 min away with a cabinet CS-B.

    drees2019 weight A-B: 10 min -> 2/3. Catchment of A: 1,000 + 2/3 x 500 = 4,000/3;
    catchment of B: 500 + 2/3 x 1,000 = 3,500/3.
    """
    zones = pd.DataFrame([{"zone_id": "A", "population": 1000, "lon": 3.0, "lat": 47.0},
                          {"zone_id": "B", "population": 500, "lon": 3.1, "lat": 47.0}])
    sites = pd.DataFrame([{"site_id": "CS-B", "kind": "cabinet_secondaire", "zone_id": "B"}])
    row = {"practice_id": "P-A", "zone_id": "A", "physicians": 2}
    if activity is not None:
        row["activity"] = activity
    if share is not None:
        row["share_65_plus"] = share
    if secondary_days is not None:
        row["secondary_days"] = secondary_days
    travel = pd.DataFrame([{"from_id": "A", "to_id": "B", "minutes": 10},
                           {"from_id": "B", "to_id": "A", "minutes": 10}])
    return instance_from_frames(zones, sites, pd.DataFrame([row]), travel, parameters=params or None)


D_A, D_B = 4000 / 3, 3500 / 3


def test_activity_sets_the_capacity_everywhere():
    inst = two_zones(activity=4000)  # 4,000 a year per GP: between the caps, counted as given
    p = inst.parameters
    assert rules.practice_capacity(p, inst.practices)["P-A"] == 8000.0
    assert apl.practice_capacity(inst)["P-A"] == 8000.0
    before = apl.apl_before(inst)
    assert before["A"] == pytest.approx(8000 / D_A)          # 6.0
    assert before["B"] == pytest.approx(2 / 3 * 8000 / D_A)  # 4.0
    # The staffing model's practice row offers the same consultations (in inhabitant units).
    pairs = coverage_pairs(inst)
    data = staffing.prepare(inst, pairs, staffing_pairs(inst), tighten=False)
    assert data.practices.at["P-A", "capacity"] * data.unit == pytest.approx(8000.0)
    # The apl model's constant is the APL before any plan.
    a = apl_model.prepare(inst, pairs, staffing_pairs(inst))
    assert a.constant["A"] == pytest.approx(6.0) and a.constant["B"] == pytest.approx(4.0)


def test_gps_aged_65_and_over_leave_the_apl_not_the_practice():
    inst = two_zones(share=0.25, apl_exclude_65_plus=True)
    p = inst.parameters
    full = rules.practice_capacity(p, inst.practices)
    assert full["P-A"] == 11040.0  # they still work: the practice's capacity is whole
    assert rules.apl_left_out(p, inst.practices, full)["P-A"] == pytest.approx(2760.0)
    assert apl.apl_before(inst)["A"] == pytest.approx(8280 / D_A)
    # One day given to CS-B comes from the GPs the APL counts: the practice's APL supply is
    # 11,040 - 1,104 - 2,760 = 7,176; the cabinet's 1,104.
    after = apl.apl_after(inst, pd.Series({"CS-B": 1.0 * DAY}),
                          apl.practice_capacity(inst, days_given=pd.Series({"P-A": 1.0})))
    assert after["A"] == pytest.approx(7176 / D_A + 2 / 3 * DAY / D_B)
    assert after["B"] == pytest.approx(2 / 3 * 7176 / D_A + DAY / D_B)
    a = apl_model.prepare(inst, coverage_pairs(inst), staffing_pairs(inst))
    assert a.constant["A"] == pytest.approx(8280 / D_A)
    # Without the parameter the share changes nothing.
    assert apl.apl_before(two_zones(share=0.25))["A"] == pytest.approx(11040 / D_A)


def test_a_practice_never_gives_more_days_than_its_counted_activity_holds():
    p = two_zones().parameters
    # 1 GP-equivalent of counted activity 3,600 x 2 = 7,200: 6 whole days of 1,104 ...
    low = two_zones(activity=1000, secondary_days=10).practices
    assert rules.give_cap(p, low)["P-A"] == 6
    # ... and 10 days (2 GPs x 5) without activity; secondary_days caps first otherwise.
    assert rules.give_cap(p, two_zones(secondary_days=10).practices)["P-A"] == 10
    assert rules.give_cap(p, two_zones(secondary_days=3).practices)["P-A"] == 3
    # With the 65-and-over exclusion, the days come from the counted part: 11,040 x 0.5 / 1,104 = 5.
    excl = two_zones(share=0.5, secondary_days=10, apl_exclude_65_plus=True)
    assert rules.give_cap(excl.parameters, excl.practices)["P-A"] == 5


@pytest.mark.parametrize("model", ["staffing", "apl"])
def test_solved_plan_honours_the_columns_and_passes_the_checker(model):
    inst = two_zones(activity=3000, share=0.5, secondary_days=2, apl_exclude_65_plus=True,
                     apl_threshold=4.0, budget=200000)
    sol = solve(inst, SolveOptions(model=model, time_limit=30, gap=0))
    prac = sol.practices.set_index("practice_id")
    # 2 GPs x 3,600 (3,000 is under the DREES floor) = 7,200 consultations a year.
    assert prac.at["P-A", "capacity_before"] == pytest.approx(7200.0)
    given = float(prac.at["P-A", "days_given"])
    assert prac.at["P-A", "capacity_after"] == pytest.approx(7200.0 - given * DAY)
    zones = sol.zones.set_index("zone_id")
    # Before: the APL counts half of 7,200 (share 0.5 aged 65 and over).
    assert zones.at["A", "apl_before"] == pytest.approx(3600 / D_A)
    report = check_solution(inst, sol)
    assert report.ok, report.violations
    # The checker is not fooled by a plan that ignores the activity column.
    wrong = sol.practices.copy()
    wrong["capacity_before"] = 11040.0
    from dataclasses import replace
    assert not check_solution(inst, replace(sol, practices=wrong)).ok
