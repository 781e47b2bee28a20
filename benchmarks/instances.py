"""Published maximal-covering instances, read from ``../shared/benchmarks``.

Each reader returns an :class:`MCLPData`: the raw pieces other solvers need
(demand vector, sparse coverage pairs, p, radius) plus the means to turn it into
an optisite :class:`~optisite.instance.Instance` (``to_instance``) and to
recompute, independently of every model, the demand covered by a list of sites
(``covered_demand``: distances are recomputed from the raw coordinates or the
published distance table, not read from the pair set).

Instances (read in place, never copied into the repository):

* ``maximo(name, p, radius)``: Máximo, Nascimento and Carvalho (2017), New York
  boroughs and San Francisco census blocks; every node is both demand and
  candidate; great-circle metres by the spherical law of cosines, R = 6,378,100 m.
* ``spopt_sf()``: PySAL spopt's San Francisco test case: 205 tracts, 16 stores,
  network metres, radius 5,000 m, p = 4, optimum 875,247 covered of 955,113.
* ``bds(n, radius, p)``: Cordeau, Furini and Ljubić (2019) synthetic instances,
  Euclidean distance in the plane, unit costs.

In an optisite instance, distances go in the travel table's ``minutes`` column
and ``coverage_minutes`` is the radius in the same unit: the coverage model only
compares numbers with the cutoff. Candidates that do not stand on a demand
point (spopt-sf stores, BDS facilities) get their own zone with population 0.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.spatial import cKDTree

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "benchmarks"
MAXIMO_DIR = SHARED / "mclp-maximo"
SPOPT_SF_DIR = SHARED / "spopt-sf"
BDS_DIR = SHARED / "mclp-bds"

MAXIMO_EARTH_RADIUS_M = 6_378_100.0
MAXIMO_FILES = {
    "Bronx": "Bronx3839.txt",
    "Kings": "Kings7730.txt",
    "NewYork": "Manhattan2713.txt",
    "SanFrancisco": "SanFrancisco5137.txt",
}
SPOPT_SF_OPTIMUM = 875_247
SPOPT_SF_TOTAL = 955_113


class MissingBenchmark(FileNotFoundError):
    """The shared benchmark folder (or one of its files) is not where it should be."""


def _require(path: Path) -> Path:
    if not path.exists():
        raise MissingBenchmark(
            f"benchmark file not found: {path} (the published instances are read from "
            f"{SHARED}; they are not copied into the repository)")
    return path


# ---------------------------------------------------------------------------------
# The raw instance
# ---------------------------------------------------------------------------------

@dataclass
class MCLPData:
    """A maximal covering instance as plain arrays.

    ``client_ids`` / ``facility_ids`` are strings; ``demand`` is aligned with
    ``client_ids``; ``pair_client`` / ``pair_facility`` / ``pair_dist`` list every
    (client, facility) pair with distance <= ``radius`` (positions, not ids).
    """

    name: str
    client_ids: np.ndarray
    facility_ids: np.ndarray
    demand: np.ndarray
    pair_client: np.ndarray
    pair_facility: np.ndarray
    pair_dist: np.ndarray
    radius: float
    p: int
    known_optimum: float | None = None  # best known / published covered demand
    unit: str = "m"
    client_lon: np.ndarray | None = None
    client_lat: np.ndarray | None = None
    facility_lon: np.ndarray | None = None
    facility_lat: np.ndarray | None = None
    facility_zone: np.ndarray | None = None  # zone id each facility stands in (None: own zone)
    _recompute: object = field(default=None, repr=False)  # f(facility positions) -> (clients, facilities) distances

    @property
    def n_clients(self) -> int:
        return len(self.client_ids)

    @property
    def n_facilities(self) -> int:
        return len(self.facility_ids)

    @property
    def total_demand(self) -> float:
        return float(self.demand.sum())

    @property
    def n_pairs(self) -> int:
        return len(self.pair_client)

    def coverage_matrix(self, fmt: str = "csr") -> sparse.spmatrix:
        """Clients x facilities 0/1 matrix (a_ij = 1 when d_ij <= radius)."""
        a = sparse.coo_matrix(
            (np.ones(self.n_pairs), (self.pair_client, self.pair_facility)),
            shape=(self.n_clients, self.n_facilities))
        return a.asformat(fmt)

    def dense_cost(self, dtype=np.float64) -> np.ndarray:
        """Clients x facilities matrix for solvers that want one (spopt): the distance
        of each pair within the radius, ``2 * radius + 1`` elsewhere. Dense: only for
        small instances (NewYork 2,713^2 is 59 MB)."""
        out = np.full((self.n_clients, self.n_facilities), 2.0 * self.radius + 1.0, dtype=dtype)
        out[self.pair_client, self.pair_facility] = self.pair_dist
        return out

    def with_case(self, p: int, radius: float | None = None, known_optimum=None) -> "MCLPData":
        """Same data with another p (and radius: pairs are then recomputed by the reader)."""
        if radius is not None and radius != self.radius:
            raise ValueError("a new radius needs the reader: call it again with radius=")
        import dataclasses

        return dataclasses.replace(self, p=int(p), known_optimum=known_optimum)

    # -- independent check -----------------------------------------------------------
    def covered_demand(self, open_facilities) -> float:
        """Demand within ``radius`` of the given facility ids, with distances recomputed
        from the raw data (coordinates or the published distance table)."""
        ids = pd.Index(self.facility_ids)
        wanted = pd.Index(pd.unique(pd.Index([str(f) for f in open_facilities], dtype=object)))
        pos = ids.get_indexer(wanted)
        if (pos < 0).any():
            raise KeyError(f"unknown facility ids: {list(wanted[pos < 0][:5])}")
        if len(pos) == 0:
            return 0.0
        d = self._recompute(pos)  # (n_clients, len(pos))
        covered = (d <= self.radius).any(axis=1)
        return float(self.demand[covered].sum())

    # -- optisite --------------------------------------------------------------------
    def to_frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """zones, sites, travel frames for ``instance_from_frames`` (unit fixed costs).

        Travel rows go from the client's zone to the zone the facility stands in,
        with the distance in the ``minutes`` column (pairs within the radius only).
        """
        zones = pd.DataFrame({
            "zone_id": self.client_ids.astype(object),
            "population": self.demand.astype(float),
            "lon": self.client_lon, "lat": self.client_lat,
        })
        if self.facility_zone is None:
            fzone = self.facility_ids.astype(object)
            extra = pd.DataFrame({"zone_id": fzone, "population": 0.0,
                                  "lon": self.facility_lon, "lat": self.facility_lat})
            zones = pd.concat([zones, extra], ignore_index=True)
        else:
            fzone = self.facility_zone.astype(object)
        sites = pd.DataFrame({
            "site_id": self.facility_ids.astype(object),
            "kind": "cabinet_secondaire",
            "zone_id": fzone,
            "fixed_cost": 1.0,
        })
        travel = pd.DataFrame({
            "from_id": self.client_ids[self.pair_client].astype(object),
            "to_id": fzone[self.pair_facility],
            "minutes": self.pair_dist.astype(float),
        })
        travel = travel[travel["from_id"] != travel["to_id"]]  # same zone: 0 by definition
        return zones, sites, travel.reset_index(drop=True)

    def to_instance(self, p: int | None = None):
        from optisite.instance import instance_from_frames

        zones, sites, travel = self.to_frames()
        return instance_from_frames(
            zones, sites, None, travel, name=self.name,
            parameters={"coverage_minutes": self.radius, "budget": float(self.p if p is None else p)},
            provenance={"benchmark": self.name, "unit_in_minutes_column": self.unit},
        )


# ---------------------------------------------------------------------------------
# Máximo et al.
# ---------------------------------------------------------------------------------

def maximo_cases() -> pd.DataFrame:
    """best_known.csv: instance, file, nodes, p, radius_m, best_known_covered, total_demand."""
    bk = pd.read_csv(_require(MAXIMO_DIR / "best_known.csv"))
    return bk.sort_values(["instance", "p"]).reset_index(drop=True)


def read_maximo_nodes(name: str) -> pd.DataFrame:
    path = _require(MAXIMO_DIR / MAXIMO_FILES[name])
    with open(path, newline="") as fh:
        lines = fh.read().splitlines()
    n = int(lines[0].split()[0])
    rows = [ln.split() for ln in lines[1:] if ln.strip()]
    if len(rows) != n:
        raise ValueError(f"{path}: header says {n} nodes, found {len(rows)}")
    arr = np.array(rows, dtype=float)
    return pd.DataFrame({"lat": arr[:, 0], "lon": arr[:, 1], "demand": arr[:, 2]})


def law_of_cosines_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle metres, spherical law of cosines, R = 6,378,100 m (the README's formula)."""
    la1, lo1, la2, lo2 = (np.radians(np.asarray(a, dtype=float)) for a in (lat1, lon1, lat2, lon2))
    c = np.cos(la1) * np.cos(la2) * np.cos(lo2 - lo1) + np.sin(la1) * np.sin(la2)
    return MAXIMO_EARTH_RADIUS_M * np.arccos(np.clip(c, -1.0, 1.0))


def _unit_xyz(lat, lon) -> np.ndarray:
    la, lo = np.radians(lat), np.radians(lon)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def sphere_pairs(lat_a, lon_a, lat_b, lon_b, radius_m: float):
    """(i, j, d) for all pairs with law-of-cosines distance <= radius (k-d tree on the
    unit sphere with a generous chord, then the exact formula as the filter)."""
    chord = 2.0 * np.sin(radius_m / MAXIMO_EARTH_RADIUS_M / 2.0) * 1.001 + 1e-9
    ta, tb = cKDTree(_unit_xyz(lat_a, lon_a)), cKDTree(_unit_xyz(lat_b, lon_b))
    m = ta.sparse_distance_matrix(tb, chord, output_type="ndarray")  # keeps zero distances
    i, j = m["i"].astype(np.int64), m["j"].astype(np.int64)
    d = law_of_cosines_m(lat_a[i], lon_a[i], lat_b[j], lon_b[j])
    keep = d <= radius_m
    i, j, d = i[keep], j[keep], d[keep]
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


def maximo(name: str, p: int, radius: float, known_optimum: float | None = None) -> MCLPData:
    nodes = read_maximo_nodes(name)
    lat, lon = nodes["lat"].to_numpy(), nodes["lon"].to_numpy()
    i, j, d = sphere_pairs(lat, lon, lat, lon, radius)
    ids = np.array([str(k) for k in range(len(nodes))], dtype=object)
    if known_optimum is None:
        bk = maximo_cases()
        hit = bk[(bk["instance"] == name) & (bk["p"] == p) & (bk["radius_m"] == radius)]
        known_optimum = float(hit["best_known_covered"].iloc[0]) if len(hit) else None

    def recompute(pos):
        return law_of_cosines_m(lat[:, None], lon[:, None], lat[pos][None, :], lon[pos][None, :])

    return MCLPData(
        name=f"{name}-p{p}-r{radius:g}", client_ids=ids, facility_ids=ids.copy(),
        demand=nodes["demand"].to_numpy(float), pair_client=i, pair_facility=j, pair_dist=d,
        radius=float(radius), p=int(p), known_optimum=known_optimum, unit="m",
        client_lon=lon, client_lat=lat, facility_lon=lon, facility_lat=lat,
        facility_zone=ids.copy(), _recompute=recompute,
    )


# ---------------------------------------------------------------------------------
# PySAL spopt San Francisco
# ---------------------------------------------------------------------------------

def spopt_sf(radius: float = 5000.0, p: int = 4) -> MCLPData:
    tracts = pd.read_csv(_require(SPOPT_SF_DIR / "SF_demand_205_centroid_uniform_weight.csv"),
                         dtype={"NAME": str})
    stores = pd.read_csv(_require(SPOPT_SF_DIR / "SF_store_site_16_longlat.csv"), dtype={"NAME": str})
    dist = pd.read_csv(_require(SPOPT_SF_DIR / "SF_network_distance_candidateStore_16_censusTract_205_new.csv"),
                       dtype={"name": str, "DestinationName": str})
    client_ids = tracts["NAME"].to_numpy(object)
    facility_ids = stores["NAME"].to_numpy(object)
    full = dist.pivot(index="DestinationName", columns="name", values="distance")
    full = full.reindex(index=client_ids, columns=facility_ids)
    if full.isna().any().any():
        raise ValueError("spopt-sf: the distance table misses some tract-store pairs")
    d = full.to_numpy(float)
    i, j = np.nonzero(d <= radius)
    known = SPOPT_SF_OPTIMUM if (radius == 5000.0 and p == 4) else None
    return MCLPData(
        name=f"spopt-sf-p{p}-r{radius:g}", client_ids=client_ids, facility_ids=facility_ids,
        demand=tracts["POP2000"].to_numpy(float), pair_client=i.astype(np.int64),
        pair_facility=j.astype(np.int64), pair_dist=d[i, j], radius=float(radius), p=int(p),
        known_optimum=known, unit="m",
        client_lon=tracts["long"].to_numpy(float), client_lat=tracts["lat"].to_numpy(float),
        facility_lon=stores["long"].to_numpy(float), facility_lat=stores["lat"].to_numpy(float),
        facility_zone=None, _recompute=lambda pos: d[:, pos],
    )


# ---------------------------------------------------------------------------------
# Cordeau, Furini and Ljubić BDS
# ---------------------------------------------------------------------------------

def read_bds(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(facilities, customers) with columns index, x, y, and cost / demand."""
    path = _require(BDS_DIR / f"BDS{n}.txt")
    fac, cus = [], []
    with open(path, newline="") as fh:
        header = fh.readline().split()
        m_fac, n_cus = int(header[0]), int(header[1])
        for row in csv.reader(fh, delimiter="\t"):
            row = [c.strip() for c in row if c.strip()]
            if not row:
                continue
            (fac if row[0] == "F" else cus).append(row[1:5])
    f = pd.DataFrame(np.array(fac, dtype=float), columns=["index", "x", "y", "cost"])
    c = pd.DataFrame(np.array(cus, dtype=float), columns=["index", "x", "y", "demand"])
    if len(f) != m_fac or len(c) != n_cus:
        raise ValueError(f"{path}: header says {m_fac} x {n_cus}, read {len(f)} x {len(c)}")
    return f, c


def bds(n: int = 1000, radius: float = 3.0, p: int = 10) -> MCLPData:
    f, c = read_bds(n)
    if not (f["cost"] == 1).all():
        raise ValueError(f"BDS{n}: costs are not all 1; budget is then not p")
    fx, fy = f["x"].to_numpy(), f["y"].to_numpy()
    cx, cy = c["x"].to_numpy(), c["y"].to_numpy()
    tc, tf = cKDTree(np.column_stack([cx, cy])), cKDTree(np.column_stack([fx, fy]))
    m = tc.sparse_distance_matrix(tf, radius * 1.001 + 1e-9, output_type="ndarray")
    i, j = m["i"].astype(np.int64), m["j"].astype(np.int64)
    d = np.hypot(cx[i] - fx[j], cy[i] - fy[j])
    keep = d <= radius
    i, j, d = i[keep], j[keep], d[keep]
    order = np.lexsort((j, i))

    def recompute(pos):
        return np.hypot(cx[:, None] - fx[pos][None, :], cy[:, None] - fy[pos][None, :])

    return MCLPData(
        name=f"BDS{n}-p{p}-r{radius:g}",
        client_ids=np.array([f"C{int(k)}" for k in c["index"]], dtype=object),
        facility_ids=np.array([f"F{int(k)}" for k in f["index"]], dtype=object),
        demand=c["demand"].to_numpy(float), pair_client=i[order], pair_facility=j[order],
        pair_dist=d[order], radius=float(radius), p=int(p), known_optimum=None, unit="plane units",
        # planar coordinates stored as lon/lat for display only (all lie in [0, 30]);
        # coverage reads the travel table, never these.
        client_lon=cx, client_lat=cy, facility_lon=fx, facility_lat=fy,
        facility_zone=None, _recompute=recompute,
    )


def case(spec: str) -> MCLPData:
    """'NewYork:50' (radius from best_known.csv), 'spopt-sf', 'BDS1000:10:3.0'."""
    parts = spec.split(":")
    if parts[0] == "spopt-sf":
        return spopt_sf()
    if parts[0].startswith("BDS"):
        n = int(parts[0][3:])
        p = int(parts[1]) if len(parts) > 1 else 10
        r = float(parts[2]) if len(parts) > 2 else 3.0
        return bds(n, r, p)
    bk = maximo_cases()
    hit = bk[(bk["instance"] == parts[0]) & (bk["p"] == int(parts[1]))]
    if hit.empty:
        raise KeyError(f"no Máximo case {spec}")
    row = hit.iloc[0]
    return maximo(parts[0], int(row["p"]), float(row["radius_m"]), float(row["best_known_covered"]))
