"""The independent checker: re-derive a plan's facts from its tables and the instance.

It never imports Pyomo, the model builders, the pair builder nor the functions that
produced the values it checks: travel times are recomputed pointwise (haversine, or
the user's table read row by row through pandas), capacities and costs from the
parameters, the APL by its own small 2SFCA, the existing supply's served demand by its
own LP (scipy). What a plan means is read from its declaration (``result`` in
``solution.json``), never from the model's name. Any violation of a rule, and any
disagreement between ``solution.json`` and the tables, is reported; a malformed folder
is an :class:`InputError` (exit 2), one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import CheckError, InputError
from .instance import Instance
from .solution import Solution, read_solution
from .travel import EARTH_RADIUS_KM, great_circle_km

REL = 1e-6  # relative tolerance on continuous quantities (solver feasibility is 1e-7)

ACCESS = ("reach", "flows")
OBJECTIVES = ("weighted_uncovered", "population_under_apl", "cost_total")
RESULT_KEYS = ("access", "objective", "capacities", "apl", "full_coverage", "budgeted", "years", "scenarios")
OPTIONAL_RESULT_KEYS = ("years", "scenarios")  # absent in folders written before these plans: false
STATUSES = ("optimal", "time_limit", "infeasible", "interrupted", "error")


def _legacy_result(summary: dict) -> dict | None:
    """FALLBACK for folders written before ``solution.json`` had a ``result`` key: what
    the three original models declared. Every model now writes ``result``; keep this only
    so that older folders still check. None for a model it does not know."""
    legacy = {
        "coverage": {"access": "reach", "objective": "weighted_uncovered", "capacities": False,
                     "apl": False, "full_coverage": False, "budgeted": True},
        "staffing": {"access": "flows", "objective": "weighted_uncovered", "capacities": True,
                     "apl": True, "full_coverage": False, "budgeted": True},
        "apl": {"access": "flows", "objective": "population_under_apl", "capacities": True,
                "apl": True, "full_coverage": False, "budgeted": True},
    }
    model = summary.get("model")
    return dict(legacy[model]) if isinstance(model, str) and model in legacy else None


@dataclass
class CheckReport:
    ok: bool
    violations: list[str] = field(default_factory=list)
    recomputed: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "violations": list(self.violations), "recomputed": self.recomputed}


def _close(a: float, b: float, scale: float = 1.0) -> bool:
    return abs(float(a) - float(b)) <= REL * max(abs(float(a)), abs(float(b)), scale) + 1e-6


def _malformed(problem: str, *, file: str = "solution.json", row=None, column=None) -> InputError:
    return InputError(problem, file=file, row=row, column=column,
                      fix="give a folder written by 'optisite solve' (re-run it if the files were edited)")


# -------------------------------------------------------------------------------------
# Shape of the folder: types first, so that every later rule compares numbers
# -------------------------------------------------------------------------------------

def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _summary_shape(S) -> None:
    """The keys the checker reads have the types of models/outputs.md (else exit 2)."""
    if not isinstance(S, Mapping):
        raise _malformed(f"holds a JSON {type(S).__name__}, not an object")
    if not isinstance(S.get("model"), str) or not S.get("model"):
        raise _malformed("'model' must name the model that produced the plan", column="model")
    if not isinstance(S.get("status"), str):
        raise _malformed("'status' must be a text", column="status")
    for k in ("parameters", "options", "instance", "solver", "cost_by_item", "cost_by_funder",
              "sites_opened_by_kind", "apl", "result"):
        if k in S and not isinstance(S[k], dict) and not (k in ("instance", "solver", "apl") and S[k] is None):
            raise _malformed(f"'{k}' must be an object, not {type(S[k]).__name__}", column=k)
    for k in ("objective", "bound", "gap"):  # in memory a missing bound may be a non-finite float
        if S.get(k) is not None and not (isinstance(S[k], (int, float)) and not isinstance(S[k], bool)):
            raise _malformed(f"'{k}' must be a number or null", column=k)
    for k in ("population_total", "population_covered", "population_uncovered", "population_covered_before",
              "population_uncovered_before", "cost_total", "budget", "physician_days_per_week", "salaried_fte"):
        if k in S and not _is_number(S[k]):
            raise _malformed(f"'{k}' must be a number", column=k)
    for k in ("cost_by_item", "cost_by_funder", "sites_opened_by_kind"):
        for name, v in (S.get(k) or {}).items():
            if not _is_number(v):
                raise _malformed(f"'{k}.{name}' must be a number", column=k)
    for k in ("open_sites", "warnings"):
        if k in S and not (isinstance(S[k], list) and all(isinstance(x, str) for x in S[k])):
            raise _malformed(f"'{k}' must be a list of texts", column=k)
    options = S.get("options") or {}
    for k in ("force_open", "force_closed"):
        if k in options and not (isinstance(options[k], list) and all(isinstance(x, str) for x in options[k])):
            raise _malformed(f"'options.{k}' must be a list of site ids", column="options")
    if "gap" in options and options["gap"] is not None and not _is_number(options["gap"]):
        raise _malformed("'options.gap' must be a number", column="options")
    stages = (S.get("solver") or {}).get("stages")
    if stages is not None and not (isinstance(stages, list) and all(isinstance(s, dict) for s in stages)):
        raise _malformed("'solver.stages' must be a list of objects", column="solver")
    for s in stages or []:
        for k in ("objective", "bound", "gap"):
            if s.get(k) is not None and not (isinstance(s[k], (int, float)) and not isinstance(s[k], bool)):
                raise _malformed(f"a stage's '{k}' must be a number or null", column="solver")


def _result(S: dict) -> dict:
    """The plan's declaration: ``result`` if written, else the legacy fallback."""
    if "result" not in S:
        r = _legacy_result(S)
        if r is None:
            raise _malformed(f"no 'result' declaration, and model '{S.get('model')}' is not one "
                             "written before declarations existed", column="result")
        return {**r, "years": False, "scenarios": False}
    r = S["result"]
    if not isinstance(r, dict):
        raise _malformed("'result' must be an object", column="result")
    missing = [k for k in RESULT_KEYS if k not in r and k not in OPTIONAL_RESULT_KEYS]
    if missing:
        raise _malformed(f"'result' lacks '{missing[0]}'", column="result")
    extra = [k for k in r if k not in RESULT_KEYS]
    if extra:
        raise _malformed(f"'result' has an unknown key '{extra[0]}'", column="result")
    if r["access"] not in ACCESS:
        raise _malformed(f"'result.access' is '{r['access']}', not one of {', '.join(ACCESS)}", column="result")
    if r["objective"] not in OBJECTIVES:
        raise _malformed(f"'result.objective' is '{r['objective']}', not one of {', '.join(OBJECTIVES)}",
                         column="result")
    r = {"years": False, "scenarios": False, **r}
    for k in ("capacities", "apl", "full_coverage", "budgeted", "years", "scenarios"):
        if not isinstance(r[k], bool):
            raise _malformed(f"'result.{k}' must be true or false", column="result")
    return dict(r)


ID_COLUMNS = {"site_id", "zone_id", "practice_id", "practice_zone_id", "site_zone_id", "source_id",
              "main_source_after", "name", "kind", "source_kind", "scenario"}
# Numeric columns per table: (column, may be empty). Empty means "not computed" (NaN).
NUMERIC = {
    "sites.csv": [("lon", False), ("lat", False), ("days_per_week", False), ("fte", False), ("capacity", True),
                  ("cost_fixed", False), ("cost_staff", False), ("cost_total", False)],
    "schedule.csv": [("days_per_week", False), ("minutes", False)],
    "practices.csv": [("physicians", False), ("days_given", False), ("capacity_before", True),
                      ("capacity_after", True)],
    "assignment.csv": [("consultations", False), ("minutes", False)],
    "zones.csv": [("population", False), ("demand", False), ("weight", False), ("covered_before", False),
                  ("covered_after", False), ("uncovered_before", False), ("uncovered_after", False),
                  ("minutes_after", True), ("apl_before", False), ("apl_after", False)],
}


def _typed(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """A copy with ids as text and numbers as floats; a cell that is not a number is exit 2."""
    df = frame.reset_index(drop=True).copy()
    for col in df.columns:
        if col in ID_COLUMNS:
            df[col] = df[col].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v))
                                  else str(v)).astype(object)
    for col, nullable in NUMERIC[name]:
        if col not in df.columns:
            continue
        raw = df[col]
        values = pd.to_numeric(raw, errors="coerce").astype(float)
        blank = raw.isna() | raw.astype(str).str.strip().eq("")
        bad = values.isna() & ~blank if nullable else ~np.isfinite(values.to_numpy())
        if nullable:
            bad = bad | np.isinf(values.to_numpy())
        if bad.any():
            i = int(np.flatnonzero(np.asarray(bad))[0])
            raise _malformed(f"'{raw.iloc[i]}' is not a number", file=name, row=i + 2, column=col)
        df[col] = values
    return df


# -------------------------------------------------------------------------------------
# Travel times, recomputed pointwise (never through TravelTimes)
# -------------------------------------------------------------------------------------

def _minutes(instance: Instance, from_zone, to_zone) -> np.ndarray:
    """Travel minutes recomputed pointwise (not through TravelTimes.pairs); inf if unknown."""
    f = pd.Series(np.asarray(from_zone, dtype=object))
    t = pd.Series(np.asarray(to_zone, dtype=object))
    p = instance.parameters
    table = instance.inputs.travel
    if table is None:
        z = instance.zones
        km = great_circle_km(z["lon"].reindex(f).to_numpy(), z["lat"].reindex(f).to_numpy(),
                             z["lon"].reindex(t).to_numpy(), z["lat"].reindex(t).to_numpy())
        out = km * p.detour_factor / p.speed_kmh * 60.0
        if "access_minutes" in z:  # minutes added at each end of a trip (zones column, optional)
            acc = z["access_minutes"].astype(float).fillna(0.0)
            out = out + acc.reindex(f).to_numpy() + acc.reindex(t).to_numpy()
    else:
        given = _travel_table(instance).set_index(["from_id", "to_id"])["minutes"]
        key = pd.MultiIndex.from_arrays([f, t])
        out = given.reindex(key).to_numpy(float)
    out = np.where(np.isnan(out), np.inf, out)
    return np.where((f == t).to_numpy(), 0.0, out)


def _travel_table(instance: Instance) -> pd.DataFrame:
    """The user's table, reversed rows added when symmetric (a pair given both ways keeps
    its own direction's time), same-zone rows dropped (0 minutes)."""
    t = instance.inputs.travel[["from_id", "to_id", "minutes"]].copy()
    t["minutes"] = t["minutes"].astype(float)
    if instance.parameters.travel_symmetric:
        rev = t.rename(columns={"from_id": "to_id", "to_id": "from_id"})
        t = pd.concat([t, rev], ignore_index=True).drop_duplicates(["from_id", "to_id"], keep="first")
    return t[t["from_id"] != t["to_id"]]


def _pairs_within(instance: Instance, origins, destinations, cutoff: float) -> pd.DataFrame:
    """(from_id, to_id, minutes) for origin and destination zones within ``cutoff`` minutes.

    From coordinates: a k-d tree on unit vectors proposes the pairs whose chord is within
    the cutoff's distance (with a margin), each confirmed by the pointwise formula of
    ``_minutes``; linear in reachable pairs. From a travel table: its rows under the cutoff.
    Same-zone pairs are included at 0 minutes."""
    from scipy.spatial import cKDTree

    o = pd.Index(pd.unique(pd.Index(origins, dtype=object))).intersection(instance.zones.index)
    d = pd.Index(pd.unique(pd.Index(destinations, dtype=object))).intersection(instance.zones.index)
    empty = pd.DataFrame({"from_id": pd.Series(dtype=object), "to_id": pd.Series(dtype=object),
                          "minutes": pd.Series(dtype=float)})
    if len(o) == 0 or len(d) == 0 or cutoff < 0:
        return empty
    same = o.intersection(d)
    own = pd.DataFrame({"from_id": same.to_numpy(), "to_id": same.to_numpy(), "minutes": 0.0})
    p = instance.parameters
    if instance.inputs.travel is not None:
        t = _travel_table(instance)
        t = t[t["from_id"].isin(o) & t["to_id"].isin(d) & (t["minutes"] <= cutoff)]
        return pd.concat([own, t], ignore_index=True)
    z = instance.zones

    def xyz(lon, lat):
        lo, la = np.radians(np.asarray(lon, float)), np.radians(np.asarray(lat, float))
        return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])

    km_max = cutoff * p.speed_kmh / 60.0 / p.detour_factor
    angle = min(np.pi, km_max / EARTH_RADIUS_KM)
    chord = 2.0 * np.sin(angle / 2.0) * (1 + 1e-6) + 1e-9
    io_, id_ = z.index.get_indexer(o), z.index.get_indexer(d)
    lon, lat = z["lon"].to_numpy(float), z["lat"].to_numpy(float)
    near = cKDTree(xyz(lon[io_], lat[io_])).sparse_distance_matrix(
        cKDTree(xyz(lon[id_], lat[id_])), chord, output_type="ndarray")
    a, b = io_[near["i"].astype(np.int64)], id_[near["j"].astype(np.int64)]
    keep = a != b
    a, b = a[keep], b[keep]
    minutes = great_circle_km(lon[a], lat[a], lon[b], lat[b]) * p.detour_factor / p.speed_kmh * 60.0
    if "access_minutes" in z:  # minutes added at each end of a trip: they only lengthen it, the radius holds
        acc = z["access_minutes"].astype(float).fillna(0.0).to_numpy()
        minutes = minutes + acc[a] + acc[b]
    ok = minutes <= cutoff
    far = pd.DataFrame({"from_id": z.index.to_numpy()[a[ok]], "to_id": z.index.to_numpy()[b[ok]],
                        "minutes": minutes[ok]})
    return pd.concat([own, far], ignore_index=True).drop_duplicates(["from_id", "to_id"])


def _counted_population(instance: Instance) -> pd.Series:
    """Population of each zone counted in the headline figures: 0 for a neighbour across the
    planning territory's border (``planning`` 0), which serves and competes but is not counted."""
    z = instance.zones
    pop = z["population"].astype(float)
    return pop.where(z["planning"] == 1, 0.0) if "planning" in z.columns else pop


def _reach(instance: Instance, sources: pd.DataFrame, cutoff: float) -> pd.DataFrame:
    """(zone_id, source_id, minutes) for every source (source_id, zone_id) within ``cutoff``."""
    zz = _pairs_within(instance, instance.zones.index, sources["zone_id"], cutoff)
    out = zz.merge(sources[["source_id", "zone_id"]].rename(columns={"zone_id": "to_id"}), on="to_id")
    return out.rename(columns={"from_id": "zone_id"})[["zone_id", "source_id", "minutes"]]


# -------------------------------------------------------------------------------------
# Private re-derivations: APL (2SFCA) and the existing supply's served demand (an LP)
# -------------------------------------------------------------------------------------

def _full_capacity(instance: Instance) -> pd.Series:
    """Consultations a year of each existing practice before any plan, written again here:
    physicians x days_per_fte x consultations_per_day_liberal x working_weeks, or, where
    the optional ``activity`` is given, physicians x activity with the DREES 2023 caps
    (<= 250: 0; <= 3,600: 3,600; above 6,000: 6,000)."""
    p, pr = instance.parameters, instance.practices
    phys = pr["physicians"].astype(float)
    full = phys * p.days_per_fte * p.consultations_per_day_liberal * p.working_weeks
    if "activity" in pr.columns:
        a = pd.to_numeric(pr["activity"], errors="coerce").astype(float)
        capped = a.clip(upper=6000.0).where(a > 3600.0, 3600.0).where(a > 250.0, 0.0)
        full = (phys * capped).where(a.notna(), full)
    return full


def _apl_not_counted(instance: Instance, full: pd.Series) -> pd.Series:
    """Consultations a year of each practice the APL leaves out: with apl_exclude_65_plus,
    share_65_plus (0 where empty) of its capacity before any plan; 0 otherwise."""
    pr = instance.practices
    if not instance.parameters.apl_exclude_65_plus or "share_65_plus" not in pr.columns:
        return pd.Series(0.0, index=pr.index)
    return pd.to_numeric(pr["share_65_plus"], errors="coerce").fillna(0.0).clip(0.0, 1.0) * full


def _apl_2sfca(instance: Instance, supply: pd.Series, supply_zone: pd.Series) -> pd.Series:
    """APL per zone: APL_i = sum_j w(t_ij) S_j / D_j, D_j = sum_k w(t_kj) P_k (0 if D_j = 0).

    ``supply``: consultations/year per point; ``supply_zone``: the zone of each point.
    The step weights are the instance's decay; P the instance's demand basis."""
    from .apl import demand_population  # the P_i of the instance (age bands), not an APL
    from .decay import decay_steps

    steps = decay_steps(instance.parameters.apl_decay)
    by_zone = supply.groupby(supply_zone.reindex(supply.index).to_numpy()).sum()
    by_zone = by_zone[by_zone != 0]
    zones = instance.zones.index
    pairs = _pairs_within(instance, zones, by_zone.index, max(u for u, _ in steps))
    t = pairs["minutes"].to_numpy(float)
    w = np.zeros(len(t))
    lower = -np.inf
    for upper, weight in steps:  # weight for lower <= t < upper
        w[(t >= lower) & (t < upper)] = weight
        lower = upper
    pairs = pairs.assign(w=w)[w > 0]
    P, _basis = demand_population(instance)
    D = (pairs["w"] * P.reindex(pairs["from_id"]).to_numpy(float)).groupby(pairs["to_id"].to_numpy()).sum()
    R = (by_zone.reindex(D.index).fillna(0.0) / D.where(D > 0)).fillna(0.0)
    apl = (pairs["w"] * R.reindex(pairs["to_id"]).fillna(0.0).to_numpy()).groupby(pairs["from_id"].to_numpy()).sum()
    return apl.reindex(zones).fillna(0.0).astype(float)


def _max_served(pairs: pd.DataFrame, gain: pd.Series, demand: pd.Series, capacity: pd.Series) -> float:
    """max sum gain_z x_zs  s.t.  sum_s x_zs <= demand_z, sum_z x_zs <= capacity_s, x >= 0
    (scipy's HiGHS on its own formulation; 0 when there is no pair)."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    pairs = pairs[pairs["zone_id"].isin(demand.index[demand > 0]) & pairs["source_id"].isin(capacity.index)]
    if pairs.empty:
        return 0.0
    zi = pd.Index(pd.unique(pairs["zone_id"]))
    si = pd.Index(pd.unique(pairs["source_id"]))
    n = len(pairs)
    r = np.concatenate([zi.get_indexer(pairs["zone_id"]), len(zi) + si.get_indexer(pairs["source_id"])])
    A = sp.csr_matrix((np.ones(2 * n), (r, np.concatenate([np.arange(n), np.arange(n)]))),
                      shape=(len(zi) + len(si), n))
    b = np.concatenate([demand.reindex(zi).to_numpy(float), np.maximum(capacity.reindex(si).to_numpy(float), 0.0)])
    c = -gain.reindex(pairs["zone_id"]).to_numpy(float)
    res = linprog(c, A_ub=A, b_ub=b, bounds=(0, None), method="highs")
    if res.status != 0:
        raise CheckError([f"the checker's own flow LP did not solve ({res.message})"])
    return float(-res.fun)


# -------------------------------------------------------------------------------------
# The check
# -------------------------------------------------------------------------------------

def well_formed(sol: Solution) -> Solution:
    """``sol`` with typed tables (ids as text, numbers as floats) once its summary and tables
    have the shapes of models/outputs.md; InputError (exit 2, one line) otherwise. For any
    reader of a folder (the report too) that must refuse a malformed one cleanly."""
    _summary_shape(sol.summary)
    _result(sol.summary)
    typed = {name: _typed(getattr(sol, name), f"{name}.csv")
             for name in ("sites", "schedule", "practices", "assignment", "zones")}
    if typed["zones"].empty:
        raise _malformed("has no zone (one row per zone of the instance)", file="zones.csv")
    return Solution(summary=sol.summary, zone_geometry=sol.zone_geometry, instance=sol.instance, **typed)


def check_solution(instance: Instance, sol: Solution, *, raise_on_violation: bool = False) -> CheckReport:
    """Check ``sol`` against ``instance``; return the report (or raise CheckError).

    A summary or table of the wrong shape raises InputError (a malformed folder)."""
    sol = well_formed(sol)
    S = sol.summary
    R = _result(S)
    tables = {f"{name}.csv": getattr(sol, name) for name in ("sites", "schedule", "practices", "assignment", "zones")}
    v: list[str] = []
    if R["years"]:  # a multi-year plan: every year re-derived (optisite/checker_years.py)
        from .checker_years import check_years

        rec = check_years(instance, S, R, tables, v)
    elif R["scenarios"]:  # a robust plan: every scenario re-derived (optisite/checker_scenarios.py)
        from .checker_scenarios import check_scenarios

        rec = check_scenarios(instance, S, R, tables, v)
    else:
        rec = _Checker(instance, S, R, tables, v).run()
    v[:] = [_one_line(x) for x in v]
    report = CheckReport(ok=not v, violations=v, recomputed=rec)
    if raise_on_violation and v:
        raise CheckError(v)
    return report


def check_bound_and_gap(v: list[str], obj, bound, gap) -> None:
    """A bound never above the objective, and the reported gap recomputed from both."""
    if bound is not None and obj is not None and bound > obj + REL * max(1.0, abs(obj)) + 1e-6:
        v.append(f"bound {bound} is above the objective {obj}")
    want_gap = None
    if obj is not None and bound is not None:
        diff = max(0.0, obj - bound)
        want_gap = 0.0 if diff <= 1e-9 else diff / max(abs(obj), 1e-9)
    if (gap is None) != (want_gap is None) or (gap is not None and abs(gap - want_gap) > 1e-9 * max(1.0, want_gap)):
        v.append(f"solution.json gap {gap} differs from {want_gap} recomputed from the objective and bound")


def check_long_plan_status(v: list[str], S: dict, obj, bound) -> None:
    """A multi-year or multi-scenario plan's status against its gap and its solver stages
    (``checker_years``, ``checker_scenarios``): optimal only within the requested gap, the
    status stage 1's, the objective never above stage 1's, the bound stage 1's."""
    status = S["status"]
    if status not in STATUSES:
        v.append(f"solution.json status '{status}' is not one of {', '.join(STATUSES)}")
    options = S.get("options") or {}
    if status == "optimal":
        requested = options.get("gap", 1e-4)
        requested = 1e-4 if requested is None else float(requested)
        if obj is None or bound is None:
            v.append("status optimal without an objective and a bound")
        elif obj - bound > max(requested * abs(obj), 1e-6) * 1.0001 + 1e-9:
            v.append(f"status optimal, but the bound {bound} is {obj - bound:.6g} below the objective")
    stages = (S.get("solver") or {}).get("stages")
    if stages:
        first = stages[0]
        stopped = [x for x in stages if x.get("status") == "interrupted"]
        expect = "interrupted" if stopped else first.get("status")
        if status != expect:
            v.append(f"solution.json status '{status}' disagrees with the solver stages")
        first_obj = _finite(first.get("objective"))
        if obj is not None and first_obj is not None and obj > first_obj + REL * max(1.0, abs(first_obj)):
            v.append(f"solution.json objective {obj} is above stage 1's {first_obj}")
        if not np.isclose(_finite(first.get("bound")) or 0.0, bound or 0.0, rtol=REL, atol=1e-6):
            v.append(f"solution.json bound {bound} differs from stage 1's {first.get('bound')}")


class _Checker:
    """One pass over a plan; each method appends plain-language violations to ``v``."""

    def __init__(self, instance: Instance, S: dict, R: dict, tables: dict, v: list[str]):
        self.instance, self.S, self.R, self.v = instance, S, R, v
        self.p = instance.parameters
        self.sites, self.sched = tables["sites.csv"], tables["schedule.csv"]
        self.prac, self.assign, self.zones = tables["practices.csv"], tables["assignment.csv"], tables["zones.csv"]
        p = self.p
        self.per_day = p.consultations_per_day_liberal * p.working_weeks
        self.per_fte = p.consultations_per_day_salaried * p.days_per_fte * p.working_weeks
        # Presence granularity: days a week of one whole unit of presence (models/staffing.md,
        # the Cour's levers).
        self.grid = 12.0 / 52.0 if p.presence_unit == "month" else 1.0

    def whole(self, days_per_week, *, up: bool):
        """A days-a-week bound in whole units of presence, back in days a week: in weeks up
        for a minimum and down for a cap, in months to the nearest day a month."""
        x = pd.Series(days_per_week, dtype=float) / self.grid  # a Series keeps its ids
        if self.grid != 1.0:
            return np.floor(x + 0.5) * self.grid
        return (np.ceil(x - 1e-9) if up else np.floor(x + 1e-9)) * self.grid

    def run(self) -> dict:
        self.check_sites()
        self.check_schedule()
        self.check_practices()
        self.check_staffing()
        self.check_costs()
        self.check_levers()
        self.check_zones()
        self.check_objective_and_status()
        self.check_apl()
        self.check_record()
        return {"cost_total": self.cost, "population_covered": self.covered,
                "population_covered_before": self.covered_before}

    # -- helpers ----------------------------------------------------------------------
    def differ(self, what: str, ids: pd.Index, got, want, *, rtol=1e-9, atol=1e-6, fmt="g") -> None:
        """Report the first id where ``got`` and ``want`` (aligned arrays) differ."""
        got = np.asarray(got, float)
        want = np.asarray(want, float)
        same = np.isclose(got, want, rtol=rtol, atol=atol) | (np.isnan(got) & np.isnan(want))
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            self.v.append(f"{what} of '{ids[i]}' is {got[i]:{fmt}}, {want[i]:{fmt}} recomputed")

    def text_differ(self, what: str, ids: pd.Index, got: pd.Series, want: pd.Series) -> None:
        g = got.fillna("").astype(str).to_numpy()
        w = want.fillna("").astype(str).to_numpy()
        bad = g != w
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            self.v.append(f"{what} of '{ids[i]}' is '{g[i]}', '{w[i]}' in the instance")

    def rows_match(self, name: str, ids: pd.Series, known: pd.Index, what: str) -> None:
        """``ids`` lists exactly the ``known`` ids, once each."""
        if ids.isna().any():
            self.v.append(f"{name} has a row without {what} id")
        dup = ids[ids.duplicated()]
        if len(dup):
            self.v.append(f"{name} lists {what} '{dup.iloc[0]}' twice")
        missing = known.difference(pd.Index(ids.dropna()))
        if len(missing):
            self.v.append(f"{name} has no row for {what} '{missing[0]}'")
        unknown = pd.Index(ids.dropna()).difference(known)
        if len(unknown):
            self.v.append(f"{name} names unknown {what} '{unknown[0]}'")

    # -- opened sites -----------------------------------------------------------------
    def check_sites(self) -> None:
        S, v = self.S, self.v
        sites_in = self.instance.sites
        s = self.sites.dropna(subset=["site_id"])
        unknown = s.loc[~s["site_id"].isin(sites_in.index), "site_id"]
        if len(unknown):
            v.append(f"sites.csv names unknown site '{unknown.iloc[0]}'")
        if s["site_id"].duplicated().any():
            v.append(f"sites.csv lists site '{s.loc[s['site_id'].duplicated(), 'site_id'].iloc[0]}' twice")
        s = s[s["site_id"].isin(sites_in.index)].drop_duplicates("site_id").set_index("site_id")
        self.s = s
        ids = s.index
        inst = sites_in.loc[ids]
        for col in ("kind", "zone_id", "name"):
            self.text_differ(f"sites.csv {col}", ids, s[col], inst[col])
        for col in ("lon", "lat"):
            self.differ(f"sites.csv {col}", ids, s[col], inst[col], rtol=1e-9, atol=1e-7)
        if "open_sites" in S and sorted(S["open_sites"]) != sorted(self.sites["site_id"].dropna()):
            v.append("solution.json open_sites differ from the rows of sites.csv")
        options = S.get("options") or {}
        for sid in options.get("force_open", []):
            if sid not in ids:
                v.append(f"forced-open site '{sid}' is not open")
        for sid in options.get("force_closed", []):
            if sid in ids:
                v.append(f"forced-closed site '{sid}' is open")
        kinds = inst["kind"].astype(str)
        self.cab = s[kinds == "cabinet_secondaire"]
        self.cds = s[kinds == "centre_de_sante"]
        by_kind = {"cabinet_secondaire": len(self.cab), "centre_de_sante": len(self.cds)}
        if "sites_opened_by_kind" in S and S["sites_opened_by_kind"] != by_kind:
            v.append(f"solution.json sites_opened_by_kind {S['sites_opened_by_kind']} differs from {by_kind} "
                     "counted in sites.csv")

    # -- schedule: travel limits and per-practice caps --------------------------------
    def check_schedule(self) -> None:
        v, sched = self.v, self.sched
        pr, sites_in = self.instance.practices, self.instance.sites
        D = self.p.days_per_fte
        self.days_in = pd.Series(0.0, index=self.cab.index)
        self.days_out = pd.Series(0.0, index=pr.index)
        if not len(sched):
            return
        if not self.R["capacities"]:
            v.append("schedule.csv sends physician-days, but the plan declares no staffing (capacities false)")
        bad_p = ~sched["practice_id"].isin(pr.index)
        if bad_p.any():
            v.append(f"schedule.csv names unknown practice '{sched.loc[bad_p, 'practice_id'].iloc[0]}'")
        bad_s = ~sched["site_id"].isin(self.cab.index)
        if bad_s.any():
            v.append(f"schedule.csv sends days to '{sched.loc[bad_s, 'site_id'].iloc[0]}', which is not an "
                     "opened cabinet secondaire")
        sched = sched[~bad_p & sched["site_id"].isin(sites_in.index)]
        if sched.duplicated(["practice_id", "site_id"]).any():
            v.append("schedule.csv lists a (practice, site) pair twice")
        key = sched["practice_id"] + " -> " + sched["site_id"]
        self.text_differ("schedule.csv practice_zone_id", pd.Index(key), sched["practice_zone_id"],
                         pr["zone_id"].reindex(sched["practice_id"]))
        self.text_differ("schedule.csv site_zone_id", pd.Index(key), sched["site_zone_id"],
                         sites_in["zone_id"].reindex(sched["site_id"]))
        d = sched["days_per_week"] / self.grid
        if ((d - d.round()).abs() > (1e-9 if self.grid == 1 else 1e-6)).any() or (d <= 0).any():
            v.append(f"schedule.csv has a number of days that is not a positive whole number of days a "
                     f"{self.p.presence_unit}")
        mins = _minutes(self.instance, pr.loc[sched["practice_id"], "zone_id"].to_numpy(),
                        sites_in.loc[sched["site_id"], "zone_id"].to_numpy())
        limit = pr.loc[sched["practice_id"], "max_travel_minutes"].to_numpy(float)
        over = mins > limit + 1e-9
        if over.any():
            i = int(np.flatnonzero(over)[0])
            v.append(f"practice '{sched['practice_id'].iloc[i]}' travels {mins[i]:.1f} min to "
                     f"'{sched['site_id'].iloc[i]}', above its limit of {limit[i]:g} min")
        self.differ("schedule.csv minutes", pd.Index(key), sched["minutes"], np.where(np.isfinite(mins), mins, -1),
                    rtol=1e-6, atol=1e-6)
        self.days_in = sched.groupby("site_id")["days_per_week"].sum().reindex(self.cab.index).fillna(0.0)
        self.days_out = sched.groupby("practice_id")["days_per_week"].sum().reindex(pr.index).fillna(0.0)
        cap_give = np.minimum(np.floor(pr["secondary_days"] + 1e-9), np.floor(pr["physicians"] * D + 1e-9))
        full = _full_capacity(self.instance)  # days come from the GPs the APL counts
        cap_give = np.minimum(cap_give, np.floor((full - _apl_not_counted(self.instance, full)) / self.per_day + 1e-9))
        cap_give = self.whole(cap_give, up=False)  # in whole units of presence (weeks or months)
        over = self.days_out > cap_give + 1e-9
        if over.any():
            pid = over.index[over][0]
            v.append(f"practice '{pid}' gives {self.days_out[pid]:g} days/week, above its cap of {cap_give[pid]:g}")

    # -- practices ----------------------------------------------------------------------
    def check_practices(self) -> None:
        pr = self.instance.practices
        prac = self.prac
        self.rows_match("practices.csv", prac["practice_id"], pr.index, "practice")
        prac = prac.dropna(subset=["practice_id"]).drop_duplicates("practice_id").set_index("practice_id")
        prac = prac[prac.index.isin(pr.index)]
        ids = prac.index
        self.text_differ("practices.csv zone_id", ids, prac["zone_id"], pr.loc[ids, "zone_id"])
        self.differ("practices.csv physicians", ids, prac["physicians"], pr.loc[ids, "physicians"])
        self.differ("practices.csv days_given", ids, prac["days_given"], self.days_out.reindex(ids))
        full = _full_capacity(self.instance)
        self.capacity_after = full - self.days_out * self.per_day
        if self.R["capacities"]:
            self.differ("practices.csv capacity_before", ids, prac["capacity_before"], full.reindex(ids))
            self.differ("practices.csv capacity_after", ids, prac["capacity_after"], self.capacity_after.reindex(ids))
        else:
            for col in ("capacity_before", "capacity_after"):
                if prac[col].notna().any():
                    self.v.append(f"practices.csv {col} is given, but the plan declares no capacities")
        self.prac_t = prac

    # -- presence, staffing and capacities -----------------------------------------------
    def check_staffing(self) -> None:
        v, s, cab, cds = self.v, self.s, self.cab, self.cds
        sites_in = self.instance.sites
        self.differ("sites.csv days_per_week", cab.index, cab["days_per_week"], self.days_in.reindex(cab.index))
        if (cds["days_per_week"] != 0).any():
            v.append(f"centre '{cds.index[cds['days_per_week'] != 0][0]}' has physician-days in sites.csv")
        if (cab["fte"] != 0).any():
            v.append(f"cabinet '{cab.index[cab['fte'] != 0][0]}' has salaried FTE in sites.csv")
        if not self.R["capacities"]:
            staffed = s.index[(s["days_per_week"] != 0) | (s["fte"] != 0)]
            if len(staffed):
                v.append(f"site '{staffed[0]}' is staffed in sites.csv, but the plan declares no capacities")
            if s["capacity"].notna().any():
                v.append("sites.csv capacity is given, but the plan declares no capacities")
            return
        lo, hi = sites_in.loc[cab.index, "min_days"], sites_in.loc[cab.index, "max_days"]
        days = self.days_in.reindex(cab.index)
        bad = (days < np.maximum(self.whole(lo, up=True), self.grid) - 1e-9) | (days > self.whole(hi, up=False) + 1e-9)
        if bad.any():
            sid = bad.index[bad][0]
            v.append(f"cabinet '{sid}' has {days[sid]:g} days/week, outside [{lo[sid]:g}, {hi[sid]:g}]")
        fte = cds["fte"]
        lo, hi = sites_in.loc[cds.index, "min_fte"], sites_in.loc[cds.index, "max_fte"]
        bad = (fte < np.maximum(np.ceil(lo - 1e-9), 1) - 1e-9) | (fte > hi + 1e-9) | ((fte - fte.round()).abs() > 1e-9)
        if bad.any():
            sid = bad.index[bad][0]
            v.append(f"centre '{sid}' has {fte[sid]:g} FTE, outside [{lo[sid]:g}, {hi[sid]:g}] or not whole")
        cap = pd.concat([days * self.per_day, fte * self.per_fte]).reindex(s.index)
        self.differ("sites.csv capacity", s.index, s["capacity"], cap)

    # -- costs -----------------------------------------------------------------------------
    def check_costs(self) -> None:
        S, v, s, p = self.S, self.v, self.s, self.p
        sites_in = self.instance.sites
        fixed = sites_in.loc[s.index, "fixed_cost"].astype(float)
        staff = pd.Series(0.0, index=s.index)
        if self.R["capacities"]:
            staff = (self.days_in.reindex(s.index).fillna(0.0) * p.working_weeks * sites_in.loc[s.index, "cost_per_day"]
                     + self.cds["fte"].reindex(s.index).fillna(0.0) * sites_in.loc[s.index, "cost_per_fte"])
        self.differ("sites.csv cost_fixed", s.index, s["cost_fixed"], fixed, fmt=",.2f")
        self.differ("sites.csv cost_staff", s.index, s["cost_staff"], staff, fmt=",.2f")
        self.differ("sites.csv cost_total", s.index, s["cost_total"], fixed + staff, fmt=",.2f")
        self.cost = cost = float((fixed + staff).sum())
        if "cost_total" in S and not _close(S["cost_total"], cost):
            v.append(f"solution.json cost_total {S['cost_total']} differs from {cost:.2f} recomputed")
        kind = sites_in.loc[s.index, "kind"].astype(str)
        items = {"fixed_cabinet": float(fixed[kind == "cabinet_secondaire"].sum()),
                 "fixed_centre": float(fixed[kind == "centre_de_sante"].sum()),
                 "physician_days": float(staff[kind == "cabinet_secondaire"].sum()),
                 "salaried_fte": float(staff[kind == "centre_de_sante"].sum())}
        # Each site's fixed cost goes to its funder_fixed, its staff cost to its funder_staff
        # (columns of the sites table; the funder_* parameters by kind where not given).
        funders = self.funder_costs(sites_in, fixed, staff)
        self.spent_by_funder = dict(funders)
        for key, want in (("cost_by_item", items), ("cost_by_funder", funders)):
            if key not in S:
                v.append(f"solution.json has no {key}")
                continue
            got = S[key]
            if sorted(got) != sorted(want):
                v.append(f"solution.json {key} names {sorted(got)}, not {sorted(want)}")
            for name in want:
                if name in got and not _close(got[name], want[name]):
                    v.append(f"solution.json {key}.{name} {got[name]} differs from {want[name]:.2f} recomputed")
        for key, want in (("physician_days_per_week", float(self.days_in.sum())),
                          ("salaried_fte", float(self.cds["fte"].sum()))):
            if key in S and not _close(S[key], want):
                v.append(f"solution.json {key} {S[key]} differs from {want:g} recomputed")
        if "budget" in S and not _close(S["budget"], p.budget):
            v.append(f"solution.json budget {S['budget']} differs from the parameter {p.budget:g}")
        # A set-covering plan answers what full coverage costs: it declares the budget does not bind it.
        if self.R["budgeted"] and cost > p.budget * (1 + 1e-9) + 1e-6:
            v.append(f"cost {cost:,.2f} EUR/year exceeds the budget of {p.budget:,.2f}")

    def funder_costs(self, sites_in: pd.DataFrame, fixed: pd.Series, staff: pd.Series) -> dict[str, float]:
        """EUR/year each funder pays: a site's fixed cost to its funder_fixed, its staff cost
        to its funder_staff; funders of the parameters appear even at 0 (as in solution.json)."""
        p = self.p
        cab = (sites_in["kind"] == "cabinet_secondaire").to_numpy()
        out = {f: 0.0 for f in (p.funder_cabinet_fixed, p.funder_cabinet_days, p.funder_centre_fixed,
                                p.funder_centre_fte)}
        for col, cost, (for_cab, for_cds) in (("funder_fixed", fixed, (p.funder_cabinet_fixed, p.funder_centre_fixed)),
                                              ("funder_staff", staff, (p.funder_cabinet_days, p.funder_centre_fte))):
            given = self.instance.inputs.sites[col] if col in self.instance.inputs.sites.columns else None
            who = pd.Series(np.where(cab, for_cab, for_cds), index=sites_in.index, dtype=object)
            if given is not None:
                who = given.reindex(sites_in.index).where(lambda s: s.notna(), who)
            for f, amount in cost.groupby(who.reindex(cost.index).to_numpy()).sum().items():
                out[str(f)] = out.get(str(f), 0.0) + float(amount)
        return out

    # -- the Cour's levers, from the tables alone -------------------------------------------
    def zonage_kinds(self) -> tuple[str, ...]:
        """The kinds of site that zonage_restrict allows only in ZIP or ZAC communes."""
        return {"none": (), "centre_de_sante": ("centre_de_sante",), "cabinet_secondaire": ("cabinet_secondaire",),
                "all": ("cabinet_secondaire", "centre_de_sante")}[self.p.zonage_restrict]

    def zonage_allowed(self, ids: pd.Index) -> pd.Index:
        """The sites of ``ids`` that the zonage lets open (all of them when it is off or the
        zones carry no zonage column; the latter is reported by :meth:`check_levers`)."""
        kinds, zin, sites_in = self.zonage_kinds(), self.instance.zones, self.instance.sites
        if not kinds or "zonage" not in zin.columns:
            return ids
        cls = zin["zonage"].astype(str).reindex(sites_in.loc[ids, "zone_id"]).to_numpy()
        return ids[~(sites_in.loc[ids, "kind"].isin(kinds).to_numpy() & ~np.isin(cls, ["ZIP", "ZAC"]))]

    def check_levers(self) -> None:
        """Zonage, recruitment limit and funders' envelopes (presence granularity is checked
        with the schedule): each lever's rule on the plan in sites.csv and schedule.csv."""
        v, p, s = self.v, self.p, self.s
        sites_in, zin = self.instance.sites, self.instance.zones
        kinds = self.zonage_kinds()
        if kinds:
            if "zonage" not in zin.columns:
                v.append(f"zonage_restrict is '{p.zonage_restrict}' but the zones table has no zonage column")
            else:
                zone = sites_in.loc[s.index, "zone_id"]
                cls = zin["zonage"].astype(str).reindex(zone).to_numpy()
                bad = sites_in.loc[s.index, "kind"].isin(kinds).to_numpy() & ~np.isin(cls, ["ZIP", "ZAC"])
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    v.append(f"site '{s.index[i]}' opens in zone '{zone.iloc[i]}' classed '{cls[i]}', but "
                             f"zonage_restrict '{p.zonage_restrict}' allows it only in ZIP or ZAC communes")
        hired = float(self.cds["fte"].sum())
        if p.max_new_salaried_fte < 1e5 and hired > p.max_new_salaried_fte + 1e-9:
            v.append(f"the plan hires {hired:g} salaried FTE, above max_new_salaried_fte = {p.max_new_salaried_fte:g}")
        from .parameters import parse_envelopes

        for funder, cap in sorted(parse_envelopes(p.funder_envelopes).items()):
            spent = self.spent_by_funder.get(funder, 0.0)
            if spent > cap * (1 + 1e-9) + 1e-6:
                v.append(f"{funder} pays {spent:,.2f} EUR/year, above its envelope of {cap:,.2f}")

    # -- zones: access before and after ----------------------------------------------------
    def check_zones(self) -> None:
        S, v, p = self.S, self.v, self.p
        zin, pr, sites_in = self.instance.zones, self.instance.practices, self.instance.sites
        self.rows_match("zones.csv", self.zones["zone_id"], zin.index, "zone")
        z = self.zones.dropna(subset=["zone_id"]).drop_duplicates("zone_id").set_index("zone_id").reindex(zin.index)
        self.z = z
        ids = zin.index
        self.text_differ("zones.csv name", ids, z["name"], zin["name"])
        for col in ("population", "demand", "weight"):
            self.differ(f"zones.csv {col}", ids, z[col], zin[col])
        pop = zin["population"].astype(float)
        for col in ("covered_before", "covered_after"):
            out = (z[col] < -1e-9) | (z[col] > 1 + 1e-9)
            if out.any():
                v.append(f"zones.csv {col} of '{out.index[out][0]}' is {z[col][out].iloc[0]:g}, outside 0..1")
        for when in ("before", "after"):
            # The shares are written to ten digits: allow that rounding times the population.
            self.differ(f"zones.csv uncovered_{when}", ids, z[f"uncovered_{when}"],
                        pop * (1 - z[f"covered_{when}"]), rtol=1e-8, atol=1e-5 + 1e-9 * pop.to_numpy())
        practices = pd.DataFrame({"source_id": pr.index.to_numpy(), "zone_id": pr["zone_id"].to_numpy()})
        opened = pd.DataFrame({"source_id": self.s.index.to_numpy(),
                               "zone_id": sites_in.loc[self.s.index, "zone_id"].to_numpy()})
        if self.R["access"] == "reach":
            share_before, share_after, main = self.reach(practices, opened)
            self.differ("zones.csv covered_before", ids, z["covered_before"], share_before)
        else:
            share_after, main = self.flows(practices, opened)
            share_before = z["covered_before"].clip(0, 1)
            self.before_flows(practices)
        self.share_after = share_after
        self.differ("zones.csv covered_after", ids, z["covered_after"], share_after, fmt=".6f")
        self.text_differ("zones.csv main_source_after", ids, z["main_source_after"], main["source_id"])
        self.differ("zones.csv minutes_after", ids, z["minutes_after"], main["minutes"], rtol=1e-6, atol=1e-6)
        # Headline figures count the planning territory only (neighbours across its border,
        # `planning` 0, serve and compete but are not counted).
        counted = (zin["planning"] == 1) if "planning" in zin.columns else pd.Series(True, index=ids)
        self.covered = covered = float((pop * share_after)[counted].sum())
        self.covered_before = covered_before = float((pop * share_before)[counted].sum())
        total = float(pop[counted].sum())
        for key, value in (("population_total", total), ("population_covered", covered),
                           ("population_uncovered", total - covered),
                           ("population_covered_before", covered_before),
                           ("population_uncovered_before", total - covered_before)):
            if key not in S:
                v.append(f"solution.json has no {key}")
            elif not _close(S[key], value, scale=total * 1e-3 if key != "population_total" else 1.0):
                v.append(f"solution.json {key} {S[key]} differs from {value:.3f} recomputed")
        if self.R["full_coverage"]:
            usable = sites_in.index.difference(pd.Index((S.get("options") or {}).get("force_closed", [])))
            usable = self.zonage_allowed(usable)  # a site the zonage forbids gives no one access
            candidates = pd.DataFrame({"source_id": usable.to_numpy(),
                                       "zone_id": sites_in.loc[usable, "zone_id"].to_numpy()})
            reachable = set(_reach(self.instance, pd.concat([practices, candidates]), p.coverage_minutes)["zone_id"])
            must = pd.Series(ids.isin(list(reachable)), index=ids) & (pop > 0) & counted
            short = must & (share_after < 1 - 1e-9)
            if short.any():
                zid = short.index[short][0]
                v.append(f"zone '{zid}' can be reached within {p.coverage_minutes:g} min but the plan leaves it "
                         "without access (the plan declares full coverage)")

    def reach(self, practices, opened):
        """Access within the cutoff of a practice (before) or of a practice or an opened site
        (after); the nearest such source per zone (ties: smallest id)."""
        v, p = self.v, self.p
        ids = self.instance.zones.index
        if len(self.assign):
            v.append("assignment.csv has flows, but the plan declares access by reach")
        before = _reach(self.instance, practices, p.coverage_minutes)
        after = _reach(self.instance, pd.concat([practices, opened]), p.coverage_minutes)
        share_before = pd.Series(ids.isin(before["zone_id"]).astype(float), index=ids)
        share_after = pd.Series(ids.isin(after["zone_id"]).astype(float), index=ids)
        best = after.groupby("zone_id")["minutes"].transform("min")
        near = after[after["minutes"] <= best + 1e-9 * np.maximum(best, 1.0)]
        main = near.sort_values(["zone_id", "source_id"]).drop_duplicates("zone_id").set_index("zone_id")
        return share_before, share_after, main[["source_id", "minutes"]].reindex(ids)

    def flows(self, practices, opened):
        """Served share from assignment.csv's demand flows (within the cutoff, capacities,
        demand); the main source is a largest flow of the zone."""
        v, p = self.v, self.p
        zin, pr, sites_in = self.instance.zones, self.instance.practices, self.instance.sites
        a = self.assign
        for col, known in (("zone_id", zin.index), ("source_id", pd.Index(practices["source_id"]).append(
                pd.Index(opened["source_id"])))):
            bad = ~a[col].isin(known)
            if bad.any():
                v.append(f"assignment.csv names '{a.loc[bad, col].iloc[0]}' in {col}, "
                         + ("not a zone" if col == "zone_id" else "neither a practice nor an opened site"))
                a = a[~bad]
        if a.duplicated(["zone_id", "source_id"]).any():
            v.append("assignment.csv lists a (zone, source) pair twice")
        kind = pd.concat([pd.Series("practice", index=pr.index), sites_in["kind"].astype(str)])
        key = pd.Index(a["zone_id"] + " <- " + a["source_id"])
        self.text_differ("assignment.csv source_kind", key, a["source_kind"], kind.reindex(a["source_id"]))
        src_zone = pd.concat([practices, opened]).set_index("source_id")["zone_id"]
        mins = _minutes(self.instance, a["zone_id"].to_numpy(), src_zone.reindex(a["source_id"]).to_numpy())
        far = mins > p.coverage_minutes + 1e-9
        if far.any():
            i = int(np.flatnonzero(far)[0])
            v.append(f"zone '{a['zone_id'].iloc[i]}' is served by '{a['source_id'].iloc[i]}' "
                     f"{mins[i]:.1f} min away, beyond the {p.coverage_minutes:g}-min cutoff")
        self.differ("assignment.csv minutes", key, a["minutes"], np.where(np.isfinite(mins), mins, -1),
                    rtol=1e-6, atol=1e-6)
        if (a["consultations"] < -1e-9).any():
            v.append("assignment.csv has a negative flow")
        load = a.groupby("source_id")["consultations"].sum()
        if self.R["capacities"]:
            capacity = pd.concat([self.capacity_after, self.s["capacity"]])
        else:  # flows without declared capacities: nothing bounds a source
            capacity = pd.Series(np.inf, index=load.index)
        over = load > capacity.reindex(load.index).fillna(0.0) * (1 + REL) + 1e-6
        if over.any():
            sid = over.index[over][0]
            v.append(f"source '{sid}' serves {load[sid]:,.1f} consultations/year, above its capacity "
                     f"{capacity.get(sid, 0.0):,.1f}")
        served = a.groupby("zone_id")["consultations"].sum().reindex(zin.index).fillna(0.0)
        demand = zin["demand"].astype(float)
        over = served > demand * (1 + REL) + 1e-6
        if over.any():
            v.append(f"zone '{over.index[over][0]}' receives more consultations than its demand")
        share = pd.Series(np.where(demand > 0, np.minimum(served / demand.where(demand > 0, 1.0), 1.0), 1.0),
                          index=zin.index)
        # The main source: the zone's largest flow (flows are written to 10 digits: near-ties pass).
        a = a.assign(minutes=np.where(np.isfinite(mins), mins, np.nan))
        largest = a.groupby("zone_id")["consultations"].transform("max")
        a = a.assign(top=a["consultations"] >= largest - 1e-9 * np.maximum(largest, 1.0) - 1e-9)
        claimed = self.zones.dropna(subset=["zone_id"]).drop_duplicates("zone_id").set_index("zone_id")[
            "main_source_after"].reindex(zin.index)
        tops = a[a["top"]]
        ok = tops.merge(claimed.rename("source_id").reset_index(), on=["zone_id", "source_id"])
        first = tops.sort_values(["zone_id", "source_id"]).drop_duplicates("zone_id")
        main = pd.concat([ok, first]).drop_duplicates("zone_id").set_index("zone_id")
        return share, main[["source_id", "minutes"]].reindex(zin.index)

    def before_flows(self, practices) -> None:
        """covered_before of a flows plan: the existing practices alone, at full activity,
        serve the zones within the cutoff as well as possible (weighted uncovered population
        minimal). The claimed shares must be servable and optimal; two LPs of the checker's own."""
        v, p = self.v, self.p
        zin = self.instance.zones
        z = self.z
        pop, weight, demand = (zin[c].astype(float) for c in ("population", "weight", "demand"))
        claimed = z["covered_before"].clip(0, 1).where(demand > 0, 1.0)
        if ((demand <= 0) & (z["covered_before"] < 1 - 1e-9)).any():
            zid = zin.index[(demand <= 0) & (z["covered_before"] < 1 - 1e-9)][0]
            v.append(f"zone '{zid}' has no demand, so covered_before must be 1")
        pairs = _reach(self.instance, practices, p.coverage_minutes)
        capacity = _full_capacity(self.instance)
        gain = (weight * pop / demand.where(demand > 0)).fillna(0.0)
        best = _max_served(pairs, gain, demand, capacity)
        weighted_pop = float((weight * pop)[demand > 0].sum())
        claimed_uncovered = float((weight * pop * (1 - claimed)).sum())
        scale = max(1.0, weighted_pop) * REL
        if claimed_uncovered < weighted_pop - best - scale:
            pass  # fewer than possible: not servable, reported below
        elif claimed_uncovered > weighted_pop - best + scale:
            v.append(f"zones.csv covered_before leaves {claimed_uncovered:,.1f} weighted inhabitants without "
                     f"access; the existing practices can serve all but {weighted_pop - best:,.1f}")
        want = claimed * demand
        servable = _max_served(pairs, pd.Series(1.0, index=zin.index), want.where(demand > 0, 0.0), capacity)
        if servable < float(want[demand > 0].sum()) * (1 - REL) - 1e-6:
            v.append(f"zones.csv covered_before claims {float(want[demand > 0].sum()):,.1f} consultations served "
                     f"by the existing practices; within the cutoff they can serve at most {servable:,.1f} "
                     "of those zones' demand")

    # -- objective, bound, status and the stage list -------------------------------------
    def check_objective_and_status(self) -> None:
        S, v, R = self.S, self.v, self.R
        pop = _counted_population(self.instance)
        weight = self.instance.zones["weight"].astype(float)
        obj, bound, gap = (_finite(S.get(k)) for k in ("objective", "bound", "gap"))
        status = S["status"]
        if status not in STATUSES:
            v.append(f"solution.json status '{status}' is not one of {', '.join(STATUSES)}")
        options = S.get("options") or {}
        if isinstance(options.get("model"), str) and options["model"] != S["model"]:
            v.append(f"solution.json model '{S['model']}' differs from options.model '{options['model']}'")
        if obj is not None:
            if R["objective"] == "weighted_uncovered":
                want = float((weight * pop * (1 - self.share_after)).sum())
                if not _close(obj, want, scale=max(1.0, float(pop.sum()) * 1e-6)):
                    v.append(f"objective {obj} differs from the weighted uncovered population {want:.3f} recomputed")
            elif R["objective"] == "cost_total":
                if not _close(obj, self.cost):
                    v.append(f"objective {obj} differs from the plan's cost {self.cost:.2f} recomputed")
            # population_under_apl: in check_apl, with the APL recomputed
        check_bound_and_gap(v, obj, bound, gap)
        if status == "optimal":
            if obj is None or bound is None:
                v.append("status optimal without an objective and a bound")
            else:
                requested = options.get("gap", 1e-4)
                requested = 1e-4 if requested is None else float(requested)
                allowed = max(requested * abs(obj), 1e-6) * 1.0001 + 1e-9
                if obj - bound > allowed:
                    v.append(f"status optimal, but the bound {bound} is {obj - bound:.6g} below the objective "
                             f"(the requested gap {requested:g} allows {allowed:.6g})")
        stages = (S.get("solver") or {}).get("stages")
        if stages is None:
            return
        if not stages:
            v.append("solution.json lists no solver stage")
            return
        first = stages[0]
        stopped = [s for s in stages if s.get("status") == "interrupted"]
        expect = "interrupted" if stopped else first.get("status")
        if status != expect:
            v.append(f"solution.json status '{status}' disagrees with the solver stages (stage 1 "
                     f"'{first.get('status')}'{', then interrupted' if stopped else ''})")
        # A cost objective may be solved in scaled units: its stage figures are not compared.
        if R["objective"] != "cost_total" and not _same(first.get("bound"), bound):
            v.append(f"solution.json bound {bound} differs from stage 1's {first.get('bound')}")
        # The reported objective is the plan's own value: the later stages, the polish of the
        # flows and the never-worse fallback can only lower stage 1's incumbent, never raise it.
        first_obj = _finite(first.get("objective"))
        if R["objective"] in ("weighted_uncovered", "population_under_apl") and obj is not None \
                and first_obj is not None and obj > first_obj + REL * max(1.0, abs(first_obj)):
            v.append(f"solution.json objective {obj} is above stage 1's {first_obj}")
        warnings = " ".join(S.get("warnings", []))
        if self.instance.supply_source == "illustrative" and "illustrative" not in warnings.lower():
            v.append("solution.json warnings do not say that the instance's GP supply is illustrative")
        if status == "interrupted" and "interrupted" not in warnings:
            v.append("solution.json warnings do not say that the solve was interrupted")

    def check_record(self) -> None:
        """What the report prints about the instance and the recorded verdict."""
        import json

        S, v, inst = self.S, self.v, self.instance
        block = S.get("instance") or {}
        norm = lambda x: json.loads(json.dumps(x, sort_keys=True, default=str))  # noqa: E731
        for key, want in (("name", inst.name), ("supply_source", inst.supply_source),
                          ("provenance", dict(inst.provenance))):
            if key in block and norm(block[key]) != norm(want):
                v.append(f"solution.json instance.{key} {block[key]!r} differs from the instance's {want!r}")
        record = S.get("check")
        if record is not None and not (isinstance(record, dict) and isinstance(record.get("ok"), bool)
                                       and isinstance(record.get("violations", []), list)):
            v.append("solution.json check is not the checker's verdict (ok, violations)")
        elif record is not None and record["ok"] == bool(record.get("violations")):
            v.append("solution.json check says ok while listing violations, or failed without one")

    # -- APL, recomputed by the checker's own 2SFCA ---------------------------------------
    def check_apl(self) -> None:
        S, v, R, p = self.S, self.v, self.R, self.p
        z = self.z
        has_cols = [c for c in ("apl_before", "apl_after") if c in self.zones.columns]
        if not R["apl"]:
            if S.get("apl") or has_cols:
                v.append("the plan declares no APL, yet solution.json or zones.csv carries one")
            return
        if not S.get("apl") or len(has_cols) < 2:
            v.append("the plan declares the APL, but solution.json has no apl block or zones.csv no "
                     "apl_before/apl_after")
            return
        block = S["apl"]
        pr, sites_in = self.instance.practices, self.instance.sites
        zone_of = pd.concat([pr["zone_id"], sites_in["zone_id"]])
        full = _full_capacity(self.instance)
        left_out = _apl_not_counted(self.instance, full)
        before = _apl_2sfca(self.instance, full - left_out, zone_of)
        after_supply = pd.concat([self.prac_t["capacity_after"] - left_out.reindex(self.prac_t.index).fillna(0.0),
                                  self.s["capacity"]]).fillna(0.0) if R["capacities"] else full - left_out
        after = _apl_2sfca(self.instance, after_supply, zone_of)
        ids = self.instance.zones.index
        self.differ("zones.csv apl_before", ids, z["apl_before"], before, rtol=1e-6, atol=1e-9)
        self.differ("zones.csv apl_after", ids, z["apl_after"], after, rtol=1e-6, atol=1e-9)
        from .apl import demand_population

        basis = demand_population(self.instance)[1]
        T = float(p.apl_threshold)
        for key, want in (("threshold", T), ("decay", p.apl_decay), ("demand_basis", basis)):
            got = block.get(key)
            if (got != want) if isinstance(want, str) else not (_is_number(got) and _close(got, want)):
                v.append(f"solution.json apl.{key} is {got!r}, not {want!r}")
        pop = _counted_population(self.instance)
        for when, apl in (("before", before), ("after", after)):
            part = block.get(when)
            if not isinstance(part, dict) or not isinstance(part.get("under"), dict):
                v.append(f"solution.json apl.{when} has no 'under' table")
                continue
            total = float(pop.sum())
            under = {str(float(t)): (float(t), u) for t, u in part["under"].items() if _float(t) is not None}
            if str(T) not in under:
                v.append(f"solution.json apl.{when}.under lacks the threshold {T:g}")
            for t_text, (t, got) in under.items():
                want = float(pop[apl < t].sum())
                lenient = float(pop[apl < t - 1e-6 * max(1.0, t)].sum())
                if not (_is_number(got) and lenient - 1e-6 <= got <= want + 1e-6):
                    v.append(f"solution.json apl.{when}.under[{t_text}] {got} is not the population under "
                             f"{t:g} ({want:,.1f} recomputed)")
                share = (part.get("share_under") or {}).get(t_text, (part.get("share_under") or {}).get(t))
                if share is not None and total > 0 and not (_is_number(share) and _is_number(got) and _close(share * total, got)):
                    v.append(f"solution.json apl.{when}.share_under[{t_text}] disagrees with its 'under'")
            shares = part.get("share_under")
            if not isinstance(shares, dict) or sorted(map(str, shares)) != sorted(map(str, part["under"])):
                v.append(f"solution.json apl.{when}.share_under does not list the thresholds of its 'under'")
            if not (_is_number(part.get("population")) and _close(part["population"], total)):
                v.append(f"solution.json apl.{when}.population {part.get('population')} differs from {total:g}")
            mean = float((apl * pop).sum() / total) if total > 0 else None
            if mean is not None and not (_is_number(part.get("mean")) and _close(part["mean"], mean)):
                v.append(f"solution.json apl.{when}.mean {part.get('mean')} differs from {mean:.6f} recomputed")
        if R["objective"] == "population_under_apl" and _finite(S.get("objective")) is not None:
            # b_i = 1 allows APL_i = T within the solver's tolerance: count those as at threshold.
            under = float(pop[after < T].sum())
            lenient = float(pop[after < T - 1e-6 * max(1.0, T)].sum())
            if not (lenient - 1e-6 <= S["objective"] <= under + 1e-6):
                v.append(f"apl objective {S['objective']} is not the population under {T:g} "
                         f"({lenient:.1f} to {under:.1f} recomputed)")


def _one_line(text: str) -> str:
    """One printable line, whatever a tampered cell held (no newline or escape reaches a terminal)."""
    text = " ".join(str(text).split())
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _finite(x) -> float | None:
    """A number, or None for null and for a non-finite value (which JSON writes as null)."""
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _same(a, b) -> bool:
    """Equal numbers, or both absent."""
    a, b = _finite(a), _finite(b)
    if a is None or b is None:
        return a is None and b is None
    return _close(a, b)


def _float(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _read(folder: Path) -> Solution:
    """``read_solution``; what pandas still cannot parse becomes one line (exit 2)."""
    try:
        return read_solution(folder)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise _malformed(f"a table cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
                         file=str(folder)) from None


def check_folder(folder: str | Path, instance: Instance) -> CheckReport:
    """Check a written solution folder; raise CheckError on any violation (InputError if malformed)."""
    sol = _read(Path(folder))
    _summary_shape(sol.summary)
    params = sol.summary.get("parameters") or {}
    inst = instance.with_parameters({k: v for k, v in params.items()
                                     if getattr(instance.parameters, k, None) != v}, file="solution.json")
    fingerprint = (sol.summary.get("instance") or {}).get("fingerprint")
    if fingerprint not in (None, inst.fingerprint):
        raise CheckError(["the solution was computed on another instance (fingerprint differs)"])
    return check_solution(inst, sol, raise_on_violation=True)
