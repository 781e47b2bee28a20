"""APL (DREES 2SFCA): hand-computed values, PySAL ``access`` cross-check, linearity, CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from optisite import apl
from optisite.cli import main
from optisite.decay import decay_weight
from optisite.errors import InputError
from optisite.instance import instance_from_frames, load_instance

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ROOT / "instances"
REAL_DEPARTEMENT = "nievre-58"  # shipped by the instance builder; the cross-check must run on it

# Consultations/year of one physician-day a week with the default parameters:
# 24 consultations/day x 46 weeks.
DAY = 24 * 46  # 1104
FTE = 5 * DAY  # 5520


# ---------------------------------------------------------------------------------
# A three-zone example, computed by hand
# ---------------------------------------------------------------------------------

def three_zones(extra_zones: list[dict] | None = None, extra_sites: list[dict] | None = None):
    """A (1000 inh.), B (2000), C (800); A-B 10 min, B-C 15 min, A-C 20 min (both ways).

    drees2019 weights: A-B 10 min -> 2/3 (10 is NOT under 10), B-C 15 -> 1/3,
    A-C 20 -> 0 (20 is not under 20), same zone -> 1. Practice P-A in A with 2 GPs;
    a cabinet secondaire CS-C in C.
    """
    zones = pd.DataFrame([
        {"zone_id": "A", "population": 1000, "lon": 3.0, "lat": 47.0},
        {"zone_id": "B", "population": 2000, "lon": 3.1, "lat": 47.0},
        {"zone_id": "C", "population": 800, "lon": 3.2, "lat": 47.0},
    ] + (extra_zones or []))
    sites = pd.DataFrame([{"site_id": "CS-C", "kind": "cabinet_secondaire", "zone_id": "C"}]
                         + (extra_sites or []))
    practices = pd.DataFrame([{"practice_id": "P-A", "zone_id": "A", "physicians": 2}])
    rows = [("A", "B", 10), ("B", "C", 15), ("A", "C", 20)]
    travel = pd.DataFrame([{"from_id": f, "to_id": t, "minutes": m} for f, t, m in rows]
                          + [{"from_id": t, "to_id": f, "minutes": m} for f, t, m in rows])
    return instance_from_frames(zones, sites, practices, travel, name="three zones")


def test_decay_boundaries_follow_drees():
    # DREES: under 10 min weighs 1; 10 to under 15: 2/3; 15 to under 20: 1/3; 20 and more: 0.
    t = [0, 9.999, 10, 14.999, 15, 19.999, 20, 25]
    assert decay_weight(t, "drees2019").tolist() == [1, 1, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0, 0]
    assert decay_weight(t, "drees2012").tolist() == [1, 0.3, 0.1, 0.1, 0, 0, 0, 0]


def test_hand_computed_before():
    inst = three_zones()
    # Practice P-A: 2 GPs x 5 days x 24 consultations x 46 weeks = 11,040 consultations/year.
    assert apl.practice_capacity(inst)["P-A"] == 11040
    # Step 1, catchment of zone A: 1 x 1000 (A) + 2/3 x 2000 (B, 10 min) + 0 x 800 (C, 20 min)
    #   = 2333.33...;  R_A = 11040 / 2333.33... = 4.7314285714...
    r_a = 11040 / (7000 / 3)
    # Step 2: APL_A = 1 x R_A; APL_B = 2/3 x R_A = 3.1542857...; APL_C = 0 (A is 20 min away).
    before = apl.apl_before(inst)
    assert before["A"] == pytest.approx(4.731428571428571, rel=1e-12)
    assert before["B"] == pytest.approx(2 / 3 * r_a, rel=1e-12)
    assert before["B"] == pytest.approx(3.1542857142857143, rel=1e-12)
    assert before["C"] == 0.0
    s = apl.apl_summary(before, inst.zones["population"])
    assert s["under"] == {2.5: 800.0, 4.0: 2800.0}  # C; then B and C
    assert s["mean"] == pytest.approx((1000 * 4.731428571428571 + 2000 * 3.1542857142857143) / 3800)
    # Conservation: with plain population, sum_i P_i APL_i = sum_j S_j (every catchment non-empty).
    assert (before * inst.zones["population"]).sum() == pytest.approx(11040)


def test_hand_computed_after():
    inst = three_zones()
    # P-A gives one day a week to CS-C: P-A 11040 - 1104 = 9936; CS-C 1 day = 1104.
    practice = apl.practice_capacity(inst, days_given=pd.Series({"P-A": 1.0}))
    site = apl.site_capacity(inst, days_per_week=pd.Series({"CS-C": 1.0}))
    assert practice["P-A"] == 9936 and site["CS-C"] == 1104
    after = apl.apl_after(inst, site, practice)
    # Catchment of C: 1 x 800 (C) + 1/3 x 2000 (B, 15 min) + 0 x 1000 (A, 20 min) = 1466.66...
    # APL_A = 9936 / 2333.33... = 4.2582857...
    # APL_B = 2/3 x 9936 / 2333.33... + 1/3 x 1104 / 1466.66... = 2.8388571... + 0.2509090... = 3.0897662...
    # APL_C = 1104 / 1466.66... = 0.7527272...
    d_a, d_c = 7000 / 3, 4400 / 3
    assert after["A"] == pytest.approx(4.258285714285714, rel=1e-12)
    assert after["B"] == pytest.approx(2 / 3 * 9936 / d_a + 1 / 3 * 1104 / d_c, rel=1e-12)
    assert after["B"] == pytest.approx(3.0897662, rel=1e-7)
    assert after["C"] == pytest.approx(0.7527272727272727, rel=1e-12)
    # The linear coefficients give the same numbers: a_ij = w(t_ij) / D_j.
    coef = apl.apl_linear_coefficients(inst).set_index(["zone_id", "source_id"])["coefficient"]
    assert coef[("A", "P-A")] == pytest.approx(1 / d_a)
    assert coef[("B", "P-A")] == pytest.approx(2 / 3 / d_a)
    assert coef[("B", "CS-C")] == pytest.approx(1 / 3 / d_c)
    assert coef[("C", "CS-C")] == pytest.approx(1 / d_c)
    assert ("C", "P-A") not in coef.index and ("A", "CS-C") not in coef.index  # 20 min: weight 0


def test_drees2012_by_name():
    inst = three_zones()
    # drees2012: A-B 10 min -> 0.1 (10 to under 15); B-C 15 -> 0; A-C 20 -> 0.
    # Catchment of A: 1000 + 0.1 x 2000 = 1200; APL_A = 11040 / 1200 = 9.2; APL_B = 0.92.
    before = apl.apl_before(inst, "drees2012")
    assert before.to_dict() == pytest.approx({"A": 9.2, "B": 0.92, "C": 0.0})


def test_empty_catchment_contributes_nothing():
    # Zone D has no inhabitants and no road under 20 minutes: a centre there serves nobody.
    inst = three_zones(
        extra_zones=[{"zone_id": "D", "population": 0, "lon": 4.0, "lat": 47.0}],
        extra_sites=[{"site_id": "CDS-D", "kind": "centre_de_sante", "zone_id": "D"}],
    )
    x = apl.apl_inputs(inst)
    assert x.catchment[list(x.supply_zone_ids).index("D")] == 0.0
    after = apl.apl_after(inst, pd.Series({"CDS-D": 50000.0}), inputs=x)
    assert np.isfinite(after).all()
    assert after.to_dict() == pytest.approx(apl.apl_before(inst, inputs=x).to_dict())
    coef = apl.apl_linear_coefficients(inst, inputs=x)
    assert "CDS-D" not in set(coef["source_id"])


def test_age_standardised_demand():
    bands = {"pop_0_14": [200, 300], "pop_15_64": [600, 1400], "pop_65_plus": [200, 300]}
    zones = pd.DataFrame({"zone_id": ["A", "B"], "population": [1000, 2000], "lon": [3.0, 3.1],
                          "lat": [47.0, 47.0], **bands})
    inst = instance_from_frames(
        zones, pd.DataFrame([{"site_id": "S", "kind": "cabinet_secondaire", "zone_id": "B"}]),
        pd.DataFrame([{"practice_id": "P", "zone_id": "A", "physicians": 1}]),
        pd.DataFrame([{"from_id": "A", "to_id": "B", "minutes": 30}]))
    demand, basis = apl.demand_population(inst)
    assert basis.startswith("age-standardised")
    # Band weight = mean of the per-year DREES 2023 weights (five-year bands) over the band's ages.
    w014 = (1.12 + 0.58 + 0.51) / 3
    w1564 = (0.60 + 0.75 + 0.79 + 0.82 + 0.85 + 0.89 + 0.93 + 1.03 + 1.15 + 1.18) / 10
    w65 = (5 * (1.23 + 1.46 + 1.57 + 1.63 + 1.89) + 10 * 2.26) / 35  # 65..99
    assert demand["A"] == pytest.approx(200 * w014 + 600 * w1564 + 200 * w65)
    # APL of A = 5520 / standardised population of A (B is 30 min away).
    assert apl.apl_before(inst)["A"] == pytest.approx(FTE / demand["A"])
    # Bands that do not add up to the population are refused, naming the zone.
    bad = zones.assign(pop_65_plus=[200, 900])
    inst_bad = instance_from_frames(bad, pd.DataFrame([{"site_id": "S", "kind": "cabinet_secondaire",
                                                        "zone_id": "B"}]))
    with pytest.raises(InputError, match="zone 'B'.*add up"):
        apl.demand_population(inst_bad)
    gap = zones.drop(columns="pop_15_64")
    inst_gap = instance_from_frames(gap, pd.DataFrame([{"site_id": "S", "kind": "cabinet_secondaire",
                                                        "zone_id": "B"}]))
    with pytest.raises(InputError, match="starts at 65, expected 15"):
        apl.demand_population(inst_gap)


def test_plain_population_without_bands():
    _, basis = apl.demand_population(load_instance(INSTANCES / "tiny"))
    assert basis.startswith("population")


# ---------------------------------------------------------------------------------
# Cross-check with PySAL access (an independent 2SFCA implementation)
# ---------------------------------------------------------------------------------

def access_step_fn_drees2019():
    """DREES 2019+ steps for access.weights.step_fn, written from the DREES text.

    access's step function gives weight v to x <= k; DREES gives 1 to x < 10. So each
    bound is the largest float below it: x <= nextafter(10, -inf) is exactly x < 10
    for floats, so 10.0 minutes falls in the second step (2/3) in both codes.
    """
    from access import weights

    below = lambda b: float(np.nextafter(b, -np.inf))  # noqa: E731
    fn = weights.step_fn({below(10.0): 1.0, below(15.0): 2 / 3, below(20.0): 1 / 3})
    assert [fn(t) for t in (0.0, 9.999, 10.0, 15.0, 19.999, 20.0)] == [1.0, 1.0, 2 / 3, 1 / 3, 1 / 3, 0]
    return fn


def access_2sfca(inst, supply_by_point: pd.Series) -> pd.Series:
    """APL by PySAL access from the instance's zones, supply and travel times."""
    from access import Access

    x = apl.apl_inputs(inst)  # only for the demand population and the supply points' zones
    demand = pd.DataFrame({"pop": x.demand_population.reindex(inst.zones.index).to_numpy()},
                          index=pd.Index(inst.zones.index, name="geoid"))
    zone_of = x.points["zone_id"]
    supply = (supply_by_point.reindex(x.points.index).fillna(0.0)
              .groupby(zone_of.to_numpy()).sum().to_frame("supply"))
    supply.index.name = "geoid"
    # Pairs far beyond the decay's reach (45 min): access's weight function must zero them.
    cost = inst.travel.pairs(inst.zones.index, supply.index, 45.0).rename(
        columns={"from_id": "origin", "to_id": "dest", "minutes": "cost"})
    acc = Access(demand_df=demand, demand_index=True, demand_value="pop",
                 supply_df=supply, supply_index=True, supply_value="supply",
                 cost_df=cost, cost_origin="origin", cost_dest="dest", cost_name="cost")
    out = acc.two_stage_fca(name="apl", weight_fn=access_step_fn_drees2019())["apl_supply"]
    out = out.reindex(inst.zones.index)
    # access leaves NaN where a zone reaches no supply zone at all; check that is all it means.
    unreached = out.isna()
    if unreached.any():
        reach = inst.travel.pairs(inst.zones.index[unreached], supply.index, 20.0)
        assert (reach["minutes"] >= 20.0).all()
        out = out.fillna(0.0)
    assert np.isfinite(out).all(), "a supply zone with an empty catchment: compare by hand"
    return out


def max_relative_difference(ours: pd.Series, theirs: pd.Series) -> float:
    ours, theirs = ours.align(theirs)
    scale = np.maximum(np.abs(theirs.to_numpy()), 1e-300)
    diff = np.abs(ours.to_numpy() - theirs.to_numpy())
    return float(np.max(np.where(diff == 0, 0.0, diff / scale)))


def random_plan(inst, seed: int) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    sites = inst.sites
    opened = rng.random(len(sites)) < 0.5
    days = pd.Series(rng.integers(1, 4, len(sites)) * opened, index=sites.index, dtype=float)
    fte = pd.Series(rng.integers(2, 5, len(sites)) * opened, index=sites.index, dtype=float)
    site = apl.site_capacity(inst, days_per_week=days, fte=fte)
    given = inst.practices["physicians"] * rng.uniform(0, 1, len(inst.practices))
    practice = apl.practice_capacity(inst, days_given=given)
    return site, practice


def _crosscheck(inst):
    ours = apl.apl_before(inst)
    theirs = access_2sfca(inst, apl.practice_capacity(inst))
    before = max_relative_difference(ours, theirs)
    np.testing.assert_allclose(ours.to_numpy(), theirs.reindex(ours.index).to_numpy(), rtol=1e-9, atol=0)
    site, practice = random_plan(inst, 7)
    ours_after = apl.apl_after(inst, site, practice)
    theirs_after = access_2sfca(inst, pd.concat([practice, site]))
    np.testing.assert_allclose(ours_after.to_numpy(), theirs_after.reindex(ours_after.index).to_numpy(),
                               rtol=1e-9, atol=0)
    assert (ours > 0).any()
    return before, max_relative_difference(ours_after, theirs_after)


def test_access_crosscheck_tiny():
    # tiny has travel times of exactly 10 and 20 minutes: the step boundaries are exercised.
    _crosscheck(load_instance(INSTANCES / "tiny"))


def test_real_departement_is_shipped():
    assert (INSTANCES / REAL_DEPARTEMENT / "instance.toml").is_file(), (
        f"the shipped real département {REAL_DEPARTEMENT} is missing: the APL cross-check must run on it")


SHIPPED_REAL = sorted({REAL_DEPARTEMENT} | {p.parent.name for p in INSTANCES.glob("*/instance.toml")
                                            if p.parent.name != "tiny"})


@pytest.mark.parametrize("name", SHIPPED_REAL)
def test_access_crosscheck_real_departement(name):
    folder = INSTANCES / name
    assert (folder / "instance.toml").is_file(), f"shipped instance {folder} is missing"
    inst = load_instance(folder)
    assert len(inst.zones) >= 100
    before, after = _crosscheck(inst)
    print(f"{name}: max relative difference with access: before {before:.2e}, after {after:.2e}")


# ---------------------------------------------------------------------------------
# Linearity: what the apl model relies on
# ---------------------------------------------------------------------------------

def _linear_apl(inst, coef: pd.DataFrame, supply: pd.Series) -> pd.Series:
    s = supply.reindex(coef["source_id"]).fillna(0.0).to_numpy()
    return (pd.Series(coef["coefficient"].to_numpy() * s)
            .groupby(coef["zone_id"].to_numpy()).sum()
            .reindex(inst.zones.index, fill_value=0.0))


@pytest.mark.parametrize("folder", ["tiny", REAL_DEPARTEMENT])
def test_linear_coefficients_reproduce_apl_after(folder):
    assert (INSTANCES / folder / "instance.toml").is_file(), f"instance {folder} is missing"
    inst = load_instance(INSTANCES / folder)
    x = apl.apl_inputs(inst)
    coef = apl.apl_linear_coefficients(inst, inputs=x)
    assert (coef["coefficient"] > 0).all()
    assert not coef.duplicated(["zone_id", "source_id"]).any()
    for seed in range(5):
        site, practice = random_plan(inst, seed)
        direct = apl.apl_after(inst, site, practice, inputs=x)
        linear = _linear_apl(inst, coef, pd.concat([practice, site]))
        np.testing.assert_allclose(linear.to_numpy(), direct.to_numpy(), rtol=1e-12, atol=1e-15)
    # Before = the same coefficients with the existing capacities.
    np.testing.assert_allclose(_linear_apl(inst, coef, apl.practice_capacity(inst)).to_numpy(),
                               apl.apl_before(inst, inputs=x).to_numpy(), rtol=1e-12, atol=1e-15)


def test_apl_after_refuses_unknown_and_missing_ids():
    inst = three_zones()
    with pytest.raises(InputError, match="unknown site 'NOPE'"):
        apl.apl_after(inst, pd.Series({"NOPE": 1.0}))
    with pytest.raises(InputError, match="practice 'P-A' has no capacity"):
        apl.apl_after(inst, pd.Series({"CS-C": 1.0}), pd.Series(dtype=float))


# ---------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------

def test_cli_before_and_after(tmp_path):
    inst = load_instance(INSTANCES / "tiny")
    sol = tmp_path / "solution"
    sol.mkdir()
    # A plan in the solution-folder format of models/outputs.md: P-C gives one day to CS-D.
    pd.DataFrame({"site_id": ["CS-D"], "kind": ["cabinet_secondaire"], "zone_id": ["01004"],
                  "days_per_week": [1.0], "fte": [0.0], "capacity": [float(DAY)]}).to_csv(
        sol / "sites.csv", index=False)
    pd.DataFrame({"practice_id": ["P-A", "P-C"], "zone_id": ["01001", "01003"],
                  "physicians": [3.0, 2.0], "days_given": [0.0, 1.0],
                  "capacity_before": [3 * FTE, 2 * FTE],
                  "capacity_after": [3 * FTE, 2 * FTE - DAY]}).to_csv(sol / "practices.csv", index=False)
    out = tmp_path / "apl.csv"
    r = CliRunner().invoke(main, ["apl", str(INSTANCES / "tiny"), "--solution", str(sol),
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "population (no age bands" in r.output
    assert "before" in r.output and "after" in r.output and "under 2.5" in r.output
    table = pd.read_csv(out, dtype={"zone_id": str}).set_index("zone_id")
    expected = apl.apl_after(inst, pd.Series({"CS-D": float(DAY)}),
                             pd.Series({"P-A": 3.0 * FTE, "P-C": 2.0 * FTE - DAY}))
    np.testing.assert_allclose(table["apl_after"].to_numpy(), expected.reindex(table.index).to_numpy(),
                               rtol=1e-9)
    np.testing.assert_allclose(table["apl_before"].to_numpy(),
                               apl.apl_before(inst).reindex(table.index).to_numpy(), rtol=1e-9)
    # Nothing is overwritten without --force.
    again = CliRunner().invoke(main, ["apl", str(INSTANCES / "tiny"), "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
    # A solution naming an unknown site is a one-line input error.
    pd.DataFrame({"site_id": ["ZZ"], "capacity": [1.0]}).to_csv(sol / "sites.csv", index=False)
    bad = CliRunner().invoke(main, ["apl", str(INSTANCES / "tiny"), "--solution", str(sol)])
    assert bad.exit_code == 2 and "unknown site 'ZZ'" in bad.output


def test_cli_after_a_real_staffing_solution(tmp_path):
    """`optisite apl --solution` on a folder written by `optisite solve --model staffing`."""
    sol = tmp_path / "staffing"
    r = CliRunner().invoke(main, ["solve", str(INSTANCES / "tiny"), "--model", "staffing",
                                  "--out", str(sol)])
    assert r.exit_code == 0, r.output
    inst = load_instance(INSTANCES / "tiny")
    sites = pd.read_csv(sol / "sites.csv", dtype={"site_id": str, "zone_id": str})
    schedule = pd.read_csv(sol / "schedule.csv", dtype={"practice_id": str, "site_id": str})
    # Supplies re-derived from the staffing decisions, not from the capacity columns.
    days = schedule.groupby("site_id")["days_per_week"].sum()
    fte = sites.set_index("site_id")["fte"]
    given = schedule.groupby("practice_id")["days_per_week"].sum()
    expected = apl.apl_after(inst, apl.site_capacity(inst, days_per_week=days, fte=fte)[sites["site_id"]],
                             apl.practice_capacity(inst, days_given=given))
    out = tmp_path / "apl.csv"
    r = CliRunner().invoke(main, ["apl", str(INSTANCES / "tiny"), "--solution", str(sol), "--out", str(out)])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out, dtype={"zone_id": str}).set_index("zone_id")
    np.testing.assert_allclose(table["apl_after"].to_numpy(), expected.reindex(table.index).to_numpy(),
                               rtol=1e-9)
