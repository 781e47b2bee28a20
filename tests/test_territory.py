"""Built territories reproduce the official APL, count neighbours across the border without
planning for them, and keep the calibrated supply labelled as such (issue 16)."""

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from optisite.apl import apl_before
from optisite.calibrate import calibrate_supply
from optisite.instance import load_instance
from optisite.official import apl_official
from optisite.travel import TravelTimes

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {"58": "nievre-58", "35": "ille-et-vilaine-35", "69": "rhone-69"}


def _fit(inst):
    z = inst.zones
    m = (z["planning"] == 1) & apl_official(inst).notna()
    c, o, pop = apl_before(inst)[m], apl_official(inst)[m], z.loc[m, "population"]
    agree = float((pop * ((c < 2.5) == (o < 2.5))).sum() / pop.sum())
    return agree, float(np.median(np.abs(c - o))), int(((c <= 1e-9) & (o > 1)).sum())


@pytest.mark.parametrize("code", sorted(SHIPPED))
def test_shipped_instances_reproduce_the_official_apl(code):
    inst = load_instance(ROOT / "instances" / SHIPPED[code])
    assert inst.supply_source == "calibrated"
    agree, median_error, zeros = _fit(inst)
    assert agree >= 0.95 and median_error <= 0.10 and zeros == 0, (agree, median_error, zeros)


def test_nievre_bourgs_with_gps_are_not_deserts():
    inst = load_instance(ROOT / "instances" / "nievre-58")
    before = apl_before(inst)
    # Corbigny, Lormes, Châtillon-en-Bazois, Saint-Saulge, Montsauche-les-Settons: at 0 with the
    # illustrative rule, above 2.5 in the official APL 2023.
    for zid in ("58083", "58145", "58065", "58267", "58180"):
        assert inst.zones.at[zid, "apl_official"] > 2.5
        assert before[zid] > 2.5, (zid, before[zid])


def test_neighbours_serve_but_are_not_planned_for():
    inst = load_instance(ROOT / "instances" / "nievre-58")
    z = inst.zones
    inside, ring = z[z["planning"] == 1], z[z["planning"] == 0]
    assert inside.index.str.startswith("58").all() and len(inside) == 309
    assert len(ring) > 0 and not ring.index.str.startswith("58").any()
    assert (ring["weight"] == 0).all() and (inside["weight"] == 1).all()
    assert not inst.sites["zone_id"].isin(ring.index).any()  # no candidate across the border
    assert inst.practices["zone_id"].isin(ring.index).any()  # but their GPs count
    manifest = tomllib.loads((ROOT / "instances" / "nievre-58" / "instance.toml").read_text(encoding="utf-8"))
    assert "calibrated to the DREES APL 2023" in manifest["description"]
    assert "DREES" in manifest["provenance"]["official_apl"]["attribution"]
    assert set(manifest["provenance"]["rules"]["neighbours"]["departements"]) <= {"03", "18", "21", "45", "71", "89"}


def test_access_minutes_add_at_both_ends_of_a_trip():
    ids = ["A", "B", "C"]
    lon, lat = np.array([3.0, 3.1, 3.2]), np.array([47.0, 47.0, 47.0])
    plain = TravelTimes.from_coordinates(ids, lon, lat, detour_factor=1.3, speed_kmh=60)
    slow = TravelTimes.from_coordinates(ids, lon, lat, detour_factor=1.3, speed_kmh=60,
                                        access_minutes=[2.0, 0.0, 5.0])
    base = plain.minutes(["A", "A", "B", "A"], ["B", "C", "C", "A"])
    got = slow.minutes(["A", "A", "B", "A"], ["B", "C", "C", "A"])
    np.testing.assert_allclose(got, base + [2.0, 7.0, 5.0, 0.0])
    pairs = slow.pairs(ids, ids, base[0] + 2.5).set_index(["from_id", "to_id"])["minutes"]
    assert pairs[("A", "B")] == pytest.approx(base[0] + 2.0) and ("A", "C") not in pairs.index
    with pytest.raises(ValueError):
        TravelTimes.from_coordinates(ids, lon, lat, detour_factor=1.3, speed_kmh=60,
                                     access_minutes=[-1.0, 0.0, 0.0])


def test_calibration_recovers_a_supply_it_generated():
    # Ten villages on a line, 6 km apart; supply in two of them; the APL this gives is the target.
    n = 10
    zones = pd.DataFrame({"zone_id": [f"Z{k}" for k in range(n)], "name": [f"Z{k}" for k in range(n)],
                          "lon": 3.0 + 0.08 * np.arange(n), "lat": 47.0,
                          "population": [800, 300, 1200, 400, 500, 2000, 300, 600, 900, 200]})
    from optisite.instance import instance_from_frames

    practices = pd.DataFrame({"practice_id": ["P2", "P5"], "zone_id": ["Z2", "Z5"], "physicians": [1.0, 2.0]})
    sites = pd.DataFrame({"site_id": ["S"], "kind": ["cabinet_secondaire"], "zone_id": ["Z0"]})
    truth = apl_before(instance_from_frames(zones, sites, practices))
    cal = calibrate_supply(zones.assign(apl_official=truth.to_numpy()))
    fitted = cal.fitted_apl.to_numpy()
    assert np.median(np.abs(fitted - truth.to_numpy())) < 0.05
    assert ((fitted < 2.5) == (truth.to_numpy() < 2.5)).all()
    assert cal.supply.sum() == pytest.approx(3 * 5520, rel=0.05)  # conservation: the same total activity


def test_pruning_keeps_the_point_a_commune_draws_most_from():
    from optisite.calibrate import _keep

    # Zone 1 is reached by a large point 0 (APL 1.0 from it) and a small point 1 (APL 5.0):
    # point 1 is below the minimum but zone 1 draws most of its APL from it, so it stays,
    # unless the DREES gives zone 1 no APL at all.
    A = sp.csr_matrix(np.array([[1e-3, 0.0], [1e-4, 1e-2]]))
    supply = np.array([10000.0, 500.0])
    assert _keep(A, supply, 1380.0, np.array([3.0, 4.0])).tolist() == [True, True]
    assert _keep(A, supply, 1380.0, np.array([3.0, 0.0])).tolist() == [True, False]


def test_a_cut_off_commune_takes_the_largest_access_that_still_reaches_a_point():
    from optisite.calibrate import _reaching_access

    # Zone 0 (access 20) -> zone 1 (access 3, supplied) is 12 min in straight line: the trip
    # stays under 20 min with access up to 20 - 12 - 3 = 5, minus the 0.01 margin: 4.99.
    # Zone 2 has no supply: it does not count.
    got = _reaching_access(np.array([True, False, False]), np.array([0, 0]), np.array([1, 2]),
                           np.array([12.0, 5.0]), np.array([20.0, 3.0, 0.0]),
                           np.array([0.0, 100.0, 0.0]), 20.0)
    assert got.tolist() == [4.99]
    # Nothing reachable at any access: 0.
    assert _reaching_access(np.array([True, False, False]), np.array([0]), np.array([1]), np.array([25.0]),
                            np.array([20.0, 3.0, 0.0]), np.array([0.0, 100.0, 0.0]), 20.0).tolist() == [0.0]
