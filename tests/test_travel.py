"""Travel times: hand-computed values, table semantics, sparse pairs vs brute force, limits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from optisite.cli import main
from optisite.errors import InputError
from optisite.instance import instance_from_frames, load_instance
from optisite.travel import EARTH_RADIUS_KM, TravelTimes, great_circle_km

# Town halls (hôtels de ville), WGS84 degrees.
PARIS = (2.352222, 48.856613)
LYON = (4.835659, 45.767500)


def haversine_by_hand(lon1, lat1, lon2, lat2, radius=6371.0088):
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = math.radians(lat2 - lat1)
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * radius * math.asin(math.sqrt(a))


# ---------------------------------------------------------------------------------
# computed from coordinates
# ---------------------------------------------------------------------------------

def test_paris_lyon_distance_by_hand():
    km = haversine_by_hand(*PARIS, *LYON)
    assert 390 < km < 394  # the well-known ~392 km as the crow flies
    assert great_circle_km(*PARIS, *LYON) == pytest.approx(km, rel=1e-12)
    assert EARTH_RADIUS_KM == 6371.0088


@pytest.mark.parametrize("detour, speed", [(1.3, 60.0), (1.0, 90.0), (1.45, 72.5)])
def test_paris_lyon_minutes(detour, speed):
    tt = TravelTimes.from_coordinates(pd.Index(["75056", "69123"]), [PARIS[0], LYON[0]],
                                      [PARIS[1], LYON[1]], detour_factor=detour, speed_kmh=speed)
    expected = haversine_by_hand(*PARIS, *LYON) * detour / speed * 60.0
    got = tt.minutes(["75056", "69123", "75056"], ["69123", "75056", "75056"])
    assert got[0] == pytest.approx(expected, rel=1e-12)
    assert got[1] == pytest.approx(expected, rel=1e-12)  # symmetric
    assert got[2] == 0.0
    # Just under and just over the cutoff.
    assert len(tt.pairs(["75056"], ["69123"], expected * 0.999)) == 0
    p = tt.pairs(["75056"], ["69123"], expected * 1.001)
    assert list(p["to_id"]) == ["69123"] and p["minutes"].iloc[0] == pytest.approx(expected)


def test_default_parameters_used_by_instance():
    zones = pd.DataFrame({"zone_id": ["75056", "69123"], "population": [2_100_000, 520_000],
                          "lon": [PARIS[0], LYON[0]], "lat": [PARIS[1], LYON[1]]})
    sites = pd.DataFrame({"site_id": ["S"], "kind": ["cabinet_secondaire"], "zone_id": ["69123"]})
    inst = instance_from_frames(zones, sites)
    expected = haversine_by_hand(*PARIS, *LYON) * 1.3 / 60.0 * 60.0
    assert inst.travel.kind == "computed"
    assert inst.travel.minutes(["75056"], ["69123"])[0] == pytest.approx(expected, rel=1e-12)
    inst2 = inst.with_parameters({"speed_kmh": 120, "detour_factor": 1.2})
    assert inst2.travel.minutes(["75056"], ["69123"])[0] == pytest.approx(
        haversine_by_hand(*PARIS, *LYON) * 1.2 / 120.0 * 60.0, rel=1e-12)


def test_tiny_villages_spacing_by_hand():
    # 0.1 degree of longitude at 46 N: R * cos(46) * 0.1 rad-degree, a small-angle check.
    ids = pd.Index(["a", "b"])
    tt = TravelTimes.from_coordinates(ids, [4.0, 4.1], [46.0, 46.0], detour_factor=1.0, speed_kmh=60.0)
    approx_km = 6371.0088 * math.cos(math.radians(46.0)) * math.radians(0.1)
    assert tt.minutes(["a"], ["b"])[0] == pytest.approx(approx_km, rel=1e-6)


def test_two_zones_on_one_point_are_paired():
    ids = pd.Index(["a", "b", "c"])
    tt = TravelTimes.from_coordinates(ids, [4.0, 4.0, 9.0], [46.0, 46.0, 40.0],
                                      detour_factor=1.3, speed_kmh=60)
    p = tt.pairs(ids, ids, 5.0)
    assert set(zip(p["from_id"], p["to_id"])) == {("a", "a"), ("a", "b"), ("b", "a"), ("b", "b"), ("c", "c")}
    assert (p["minutes"] == 0).all()


def brute_force(ids, lon, lat, origins, dests, cutoff, detour, speed):
    pos = {z: i for i, z in enumerate(ids)}
    rows = []
    for o in dict.fromkeys(origins):
        for d in dict.fromkeys(dests):
            i, j = pos[o], pos[d]
            m = 0.0 if o == d else haversine_by_hand(lon[i], lat[i], lon[j], lat[j]) * detour / speed * 60
            if m <= cutoff:
                rows.append((o, d, m))
    return pd.DataFrame(rows, columns=["from_id", "to_id", "minutes"]).sort_values(
        ["from_id", "to_id"]).reset_index(drop=True)


@pytest.mark.parametrize("seed, n, cutoff", [(0, 300, 20.0), (1, 400, 45.0), (2, 250, 90.0), (3, 300, 1.0)])
def test_sparse_pairs_equal_brute_force(seed, n, cutoff):
    rng = np.random.default_rng(seed)
    # A département-sized box, so that cutoffs select a real subset.
    lon = rng.uniform(2.8, 4.3, n)
    lat = rng.uniform(46.6, 47.6, n)
    ids = pd.Index([f"{58000 + i:05d}" for i in range(n)])
    detour, speed = 1.3, 60.0
    tt = TravelTimes.from_coordinates(ids, lon, lat, detour_factor=detour, speed_kmh=speed)
    origins = list(ids)
    dests = list(rng.choice(ids, size=n // 3, replace=True))  # with duplicates, like site zones
    got = tt.pairs(origins, dests, cutoff)
    want = brute_force(list(ids), lon, lat, origins, dests, cutoff, detour, speed)
    assert 0 < len(want) < len(origins) * len(set(dests)) or cutoff == 1.0
    assert list(zip(got["from_id"], got["to_id"])) == list(zip(want["from_id"], want["to_id"]))
    np.testing.assert_allclose(got["minutes"].to_numpy(), want["minutes"].to_numpy(), rtol=1e-9, atol=1e-9)
    assert got["minutes"].max() <= cutoff
    # Pointwise minutes agree with the pairs.
    np.testing.assert_allclose(tt.minutes(got["from_id"], got["to_id"]), got["minutes"], rtol=1e-12)


def test_sparse_pairs_across_the_antimeridian_and_poles():
    ids = pd.Index(["w", "e", "n1", "n2"])
    lon = [179.95, -179.95, 0.0, 180.0]
    lat = [0.0, 0.0, 89.99, 89.99]
    tt = TravelTimes.from_coordinates(ids, lon, lat, detour_factor=1.0, speed_kmh=60)
    p = tt.pairs(ids, ids, 15.0)
    pairs = set(zip(p["from_id"], p["to_id"]))
    assert ("w", "e") in pairs and ("n1", "n2") in pairs
    assert ("w", "n1") not in pairs


def test_nan_coordinates_are_refused():
    with pytest.raises(ValueError):
        TravelTimes.from_coordinates(pd.Index(["a", "b"]), [4.0, np.nan], [46.0, 46.0],
                                     detour_factor=1.3, speed_kmh=60)


def test_unknown_zone_ids_are_a_key_error():
    tt = TravelTimes.from_coordinates(pd.Index(["a", "b"]), [4.0, 4.1], [46.0, 46.0],
                                      detour_factor=1.3, speed_kmh=60)
    with pytest.raises(KeyError):
        tt.minutes(["a"], ["zz"])
    with pytest.raises(KeyError):
        tt.pairs(["a"], ["zz"], 30)


# ---------------------------------------------------------------------------------
# table mode
# ---------------------------------------------------------------------------------

IDS = pd.Index(["01001", "01002", "01003", "2A004"])
TABLE = pd.DataFrame({"from_id": ["01001", "01002", "01001", "01003"],
                      "to_id": ["01002", "01003", "01003", "01001"],
                      "minutes": [12.0, 7.0, 25.0, 31.0]})


def test_table_absent_pair_unreachable_and_same_zone_zero():
    tt = TravelTimes.from_table(IDS, TABLE)
    got = tt.minutes(["01001", "01002", "01002", "2A004", "01003"], ["01002", "01001", "01002", "01001", "01001"])
    assert got[0] == 12.0
    assert np.isinf(got[1])  # one-way table: 01002 -> 01001 is absent
    assert got[2] == 0.0
    assert np.isinf(got[3])
    assert got[4] == 31.0
    p = tt.pairs(IDS, IDS, 30.0)
    assert list(zip(p["from_id"], p["to_id"], p["minutes"])) == [
        ("01001", "01001", 0.0), ("01001", "01002", 12.0), ("01001", "01003", 25.0),
        ("01002", "01002", 0.0), ("01002", "01003", 7.0),
        ("01003", "01003", 0.0), ("2A004", "2A004", 0.0),
    ]


def test_table_cutoff_is_inclusive():
    tt = TravelTimes.from_table(IDS, TABLE)
    assert ("01001", "01002") in set(zip(*tt.pairs(["01001"], ["01002"], 12.0)[["from_id", "to_id"]].T.values))
    assert len(tt.pairs(["01001"], ["01002"], 11.99)) == 0


def test_table_symmetric_option():
    tt = TravelTimes.from_table(IDS, TABLE, symmetric=True)
    got = tt.minutes(["01002", "01003", "01001", "01003"], ["01001", "01002", "01003", "01001"])
    assert list(got) == [12.0, 7.0, 25.0, 31.0]  # a pair given both ways keeps its own direction
    p = tt.pairs(["01002"], IDS, 60.0)
    assert list(p["to_id"]) == ["01001", "01002", "01003"]


def test_table_self_rows_are_zero():
    t = pd.concat([TABLE, pd.DataFrame({"from_id": ["01001"], "to_id": ["01001"], "minutes": [9.0]})])
    tt = TravelTimes.from_table(IDS, t)
    assert tt.minutes(["01001"], ["01001"])[0] == 0.0
    p = tt.pairs(["01001"], ["01001"], 60)
    assert list(p["minutes"]) == [0.0]


def test_symmetric_parameter_from_manifest(tiny_copy):
    lines = (tiny_copy / "travel.csv").read_text().splitlines()
    keep = [lines[0]] + [line for line in lines[1:] if line.split(",")[0] < line.split(",")[1]]
    (tiny_copy / "travel.csv").write_text("\n".join(keep) + "\n")
    one_way = load_instance(tiny_copy)
    assert np.isinf(one_way.travel.minutes(["01002"], ["01001"])[0])
    both = load_instance(tiny_copy, overrides={"travel_symmetric": True})
    assert both.travel.minutes(["01002"], ["01001"])[0] == 10.0
    assert both.travel.minutes(["2A005"], ["01001"])[0] == 50.0


# ---------------------------------------------------------------------------------
# pair limit
# ---------------------------------------------------------------------------------

def test_pair_limit_computed():
    rng = np.random.default_rng(7)
    n = 200
    ids = pd.Index([f"z{i}" for i in range(n)])
    tt = TravelTimes.from_coordinates(ids, rng.uniform(3, 3.5, n), rng.uniform(46, 46.5, n),
                                      detour_factor=1.3, speed_kmh=60, max_pairs=1000)
    with pytest.raises(InputError) as info:
        tt.pairs(ids, ids, 60.0)
    msg = str(info.value)
    assert msg.startswith("instance.toml, column 'max_pairs':") and "exceed the limit of 1,000" in msg
    assert "\n" not in msg and "Fix:" in msg
    # Under the limit the same object answers.
    assert len(tt.pairs(ids[:10], ids[:10], 1.0)) <= 1000


def test_pair_limit_table():
    tt = TravelTimes.from_table(IDS, TABLE, max_pairs=5)
    assert len(tt.pairs(IDS, IDS, 10.0)) == 5
    with pytest.raises(InputError, match="7 reachable pairs under 30 minutes exceed the limit of 5"):
        tt.pairs(IDS, IDS, 30.0)


def test_pair_limit_from_manifest_reaches_cli(tiny_copy):
    (tiny_copy / "instance.toml").write_text(
        (tiny_copy / "instance.toml").read_text().replace("[parameters]\n", "[parameters]\nmax_pairs = 3\n"))
    inst = load_instance(tiny_copy)
    with pytest.raises(InputError, match="exceed the limit of 3"):
        inst.summary()
    result = CliRunner().invoke(main, ["validate", str(tiny_copy)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output.startswith("error: instance.toml, column 'max_pairs':")


@pytest.mark.parametrize("n", [2000, 8000])
def test_memory_grows_with_pairs_not_zones_squared(n):
    """Issue 7: memory of the travel computation is linear in reachable pairs (measured
    with tracemalloc: about 110-135 bytes a pair at the peak, 35 kept), never n^2."""
    import tracemalloc

    rng = np.random.default_rng(0)
    ids = pd.Index([f"z{i}" for i in range(n)])
    tt = TravelTimes.from_coordinates(ids, rng.uniform(2, 6, n), rng.uniform(45, 48, n),
                                      detour_factor=1.3, speed_kmh=60, max_pairs=5e7)
    tracemalloc.start()
    try:
        pairs = tt.pairs(ids, ids, 20.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 0 < len(pairs) < n * n / 20  # sparse: a dense matrix would hold n^2 cells
    assert peak / len(pairs) < 300, f"{peak / len(pairs):.0f} bytes per pair"
    assert peak < 8 * n * n / 4  # a quarter of a dense float64 (zone, zone) matrix at most
