"""The APL method's parameters equal the DREES 2023 tables (read from ../shared, else the shipped copy)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optisite import apl
from optisite.decay import decay_steps, decay_weight
from optisite.instance import instance_from_frames
from optisite.official import drees_parameters

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "drees-apl"


def _table(name: str, key: str) -> pd.DataFrame:
    path = SHARED / name
    return pd.read_csv(path) if path.is_file() else drees_parameters()[key]


def test_decay_equals_drees():
    t = _table("decay_2023.csv", "decay")
    steps = decay_steps("drees2019")
    assert len(steps) == len(t) - 1  # the last row is "20 and beyond: 0"
    for (upper, weight), row in zip(steps, t.itertuples()):
        assert upper == row.to_minutes and weight == pytest.approx(row.weight, rel=1e-12)
    assert t.iloc[-1]["weight"] == 0 and decay_weight([t.iloc[-1]["from_minutes"]], "drees2019")[0] == 0
    # Each row's own bounds: from_minutes is in the step, to_minutes is not.
    for row in t.iloc[:-1].itertuples():
        w = decay_weight([row.from_minutes, row.to_minutes - 1e-9], "drees2019")
        assert w.tolist() == pytest.approx([row.weight, row.weight], rel=1e-12)


def test_age_weights_equal_drees():
    t = _table("age_weights_2023.csv", "age_weights")
    ours = [(lo, hi, w) for lo, hi, w in apl.REFERENCE_AGE_WEIGHTS]
    theirs = [(int(r.age_from), None if pd.isna(r.age_to) else int(r.age_to), float(r.weight_2023))
              for r in t.itertuples()]
    assert ours == theirs


def test_activity_caps_equal_drees():
    t = _table("activity_caps_2023.csv", "activity_caps")
    for r in t.itertuples():
        lo = float(r.activity_from)
        hi = None if pd.isna(r.activity_to) else float(r.activity_to)
        probe = [lo, hi] if hi is not None else [lo, lo + 10_000]
        got = apl.counted_activity(probe)
        if r.counted == "actual":
            expected = probe
        else:
            expected = [float(r.counted)] * 2
        assert got.tolist() == expected, (r, got)
    assert np.isnan(apl.counted_activity([np.nan])[0])


def _one_zone(practices: list[dict], **params):
    zones = pd.DataFrame([{"zone_id": "A", "population": 1000, "lon": 3.0, "lat": 47.0}])
    sites = pd.DataFrame([{"site_id": "S", "kind": "cabinet_secondaire", "zone_id": "A"}])
    return instance_from_frames(zones, sites, pd.DataFrame(practices), parameters=params)


def test_activity_column_is_counted_with_the_caps():
    inst = _one_zone([{"practice_id": "P1", "zone_id": "A", "physicians": 2, "activity": 7000},
                      {"practice_id": "P2", "zone_id": "A", "physicians": 1, "activity": 200},
                      {"practice_id": "P3", "zone_id": "A", "physicians": 1, "activity": 1000},
                      {"practice_id": "P4", "zone_id": "A", "physicians": 1, "activity": ""}])
    cap = apl.practice_capacity(inst)
    assert cap.to_dict() == {"P1": 12000.0, "P2": 0.0, "P3": 3600.0, "P4": 5520.0}
    assert apl.apl_before(inst)["A"] == pytest.approx((12000 + 3600 + 5520) / 1000)


def test_gps_aged_65_and_over_can_be_left_out():
    rows = [{"practice_id": "P1", "zone_id": "A", "physicians": 2, "share_65_plus": 0.25}]
    assert apl.apl_before(_one_zone(rows))["A"] == pytest.approx(11040 / 1000)
    assert apl.apl_before(_one_zone(rows, apl_exclude_65_plus=True))["A"] == pytest.approx(0.75 * 11040 / 1000)


def test_standardised_population_column_is_the_demand():
    zones = pd.DataFrame([{"zone_id": "A", "population": 1000, "lon": 3.0, "lat": 47.0,
                           "population_standardised": 1250},
                          {"zone_id": "B", "population": 500, "lon": 5.0, "lat": 47.0,
                           "population_standardised": ""}])
    sites = pd.DataFrame([{"site_id": "S", "kind": "cabinet_secondaire", "zone_id": "B"}])
    inst = instance_from_frames(zones, sites, pd.DataFrame([{"practice_id": "P", "zone_id": "A",
                                                             "physicians": 1}]))
    demand, basis = apl.demand_population(inst)
    assert demand.to_dict() == {"A": 1250.0, "B": 500.0}
    assert "standardised" in basis and "1 zones without it" in basis
    assert apl.apl_before(inst)["A"] == pytest.approx(5520 / 1250)
