"""The independent checker: re-derive a plan's facts from its tables and the instance.

It never imports Pyomo, the model builders or the pair builder: travel times are
recomputed pointwise (haversine, or the user's table read row by row through
pandas), capacities and costs from the parameters. Any violation of a rule, and
any disagreement between ``solution.json`` and the tables, is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import CheckError
from .instance import Instance
from .solution import Solution, read_solution
from .travel import EARTH_RADIUS_KM, great_circle_km

REL = 1e-6  # relative tolerance on continuous quantities (solver feasibility is 1e-7)


@dataclass
class CheckReport:
    ok: bool
    violations: list[str] = field(default_factory=list)
    recomputed: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "violations": list(self.violations), "recomputed": self.recomputed}


def _close(a: float, b: float, scale: float = 1.0) -> bool:
    return abs(float(a) - float(b)) <= REL * max(abs(float(a)), abs(float(b)), scale) + 1e-6


def _minutes(instance: Instance, from_zone, to_zone) -> np.ndarray:
    """Travel minutes recomputed pointwise (not through TravelTimes.pairs)."""
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
        given = table.set_index(["from_id", "to_id"])["minutes"]
        if p.travel_symmetric:
            rev = table.set_index(["to_id", "from_id"])["minutes"]
            rev.index.names = ["from_id", "to_id"]
            given = given.combine_first(rev)
        key = pd.MultiIndex.from_arrays([f, t])
        out = given.reindex(key).to_numpy(float)
        out = np.where(np.isnan(out), np.inf, out)
    return np.where((f == t).to_numpy(), 0.0, out)


def _zones_within(instance: Instance, source_zones, cutoff: float) -> set:
    """Zones within ``cutoff`` minutes of any of ``source_zones``.

    From coordinates: a k-d tree on unit vectors proposes the (zone, source) pairs whose
    chord is within the cutoff's distance (with a margin), and each is then confirmed by
    the pointwise formula of ``_minutes``; linear in reachable pairs, so a national
    instance checks in seconds. From a travel table: its rows under the cutoff."""
    from scipy.spatial import cKDTree

    srcs = pd.Index(pd.unique(pd.Index(source_zones, dtype=object)))
    zones = instance.zones.index
    if len(srcs) == 0 or cutoff < 0:
        return set()
    covered = set(srcs.intersection(zones))  # same zone: 0 minutes
    p = instance.parameters
    table = instance.inputs.travel
    if table is not None:
        t = table[table["minutes"].astype(float) <= cutoff]
        covered.update(t.loc[t["to_id"].isin(srcs), "from_id"])
        if p.travel_symmetric:
            covered.update(t.loc[t["from_id"].isin(srcs), "to_id"])
        return covered & set(zones)
    z = instance.zones

    def xyz(lon, lat):
        lo, la = np.radians(np.asarray(lon, float)), np.radians(np.asarray(lat, float))
        return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])

    km_max = cutoff * p.speed_kmh / 60.0 / p.detour_factor
    angle = min(np.pi, km_max / EARTH_RADIUS_KM)
    chord = 2.0 * np.sin(angle / 2.0) * (1 + 1e-6) + 1e-9
    src_pos = z.index.get_indexer(srcs)
    tz = cKDTree(xyz(z["lon"], z["lat"]))
    ts = cKDTree(xyz(z["lon"].to_numpy()[src_pos], z["lat"].to_numpy()[src_pos]))
    near = tz.sparse_distance_matrix(ts, chord, output_type="coo_matrix")
    rows, cols = near.row, near.col
    km = great_circle_km(z["lon"].to_numpy()[rows], z["lat"].to_numpy()[rows],
                         z["lon"].to_numpy()[src_pos[cols]], z["lat"].to_numpy()[src_pos[cols]])
    minutes = km * p.detour_factor / p.speed_kmh * 60.0
    if "access_minutes" in z:  # access minutes only lengthen trips: the k-d radius still holds
        acc = z["access_minutes"].astype(float).fillna(0.0).to_numpy()
        minutes = minutes + acc[rows] + acc[src_pos[cols]]
    ok = (minutes <= cutoff) | (rows == src_pos[cols])
    covered.update(z.index[rows[ok]])
    return covered


def check_solution(instance: Instance, sol: Solution, *, raise_on_violation: bool = False) -> CheckReport:
    """Check ``sol`` against ``instance``; return the report (or raise CheckError)."""
    v: list[str] = []
    p = instance.parameters
    S = sol.summary
    model = S.get("model")
    sites_in = instance.sites
    W, D = p.working_weeks, p.days_per_fte
    per_day = p.consultations_per_day_liberal * W
    per_fte = p.consultations_per_day_salaried * D * W

    # -- opened sites -------------------------------------------------------------------
    s = sol.sites.set_index("site_id")
    unknown = [x for x in s.index if x not in sites_in.index]
    if unknown:
        v.append(f"sites.csv names unknown site '{unknown[0]}'")
        s = s.drop(unknown)
    if s.index.duplicated().any():
        v.append("sites.csv lists a site twice")
    for col in ("kind", "zone_id"):
        bad = s[col].astype(str) != sites_in.loc[s.index, col].astype(str)
        if bad.any():
            v.append(f"site '{s.index[bad][0]}' has {col} '{s.loc[bad, col].iloc[0]}' in sites.csv, "
                     f"'{sites_in.loc[s.index[bad][0], col]}' in the instance")
    if sorted(S.get("open_sites", [])) != sorted(s.index):
        v.append("solution.json open_sites differ from the rows of sites.csv")
    options = S.get("options", {})
    for sid in options.get("force_open", []):
        if sid not in s.index:
            v.append(f"forced-open site '{sid}' is not open")
    for sid in options.get("force_closed", []):
        if sid in s.index:
            v.append(f"forced-closed site '{sid}' is open")

    # -- schedule: travel limits and per-practice caps -----------------------------------------
    sched = sol.schedule
    pr = instance.practices
    cab = s[s["kind"] == "cabinet_secondaire"]
    cds = s[s["kind"] == "centre_de_sante"]
    days_in = pd.Series(0.0, index=cab.index)
    days_out = pd.Series(0.0, index=pr.index)
    if len(sched):
        bad_p = ~sched["practice_id"].isin(pr.index)
        if bad_p.any():
            v.append(f"schedule.csv names unknown practice '{sched.loc[bad_p, 'practice_id'].iloc[0]}'")
        sched = sched[~bad_p]
        bad_s = ~sched["site_id"].isin(cab.index)
        if bad_s.any():
            v.append(f"schedule.csv sends days to '{sched.loc[bad_s, 'site_id'].iloc[0]}', which is not an "
                     "opened cabinet secondaire")
        d = sched["days_per_week"].astype(float)
        if ((d - d.round()).abs() > 1e-9).any() or (d <= 0).any():
            v.append("schedule.csv has a non-integer or non-positive number of days")
        mins = _minutes(instance, pr.loc[sched["practice_id"], "zone_id"].to_numpy(),
                        sites_in.loc[sched["site_id"], "zone_id"].to_numpy())
        limit = pr.loc[sched["practice_id"], "max_travel_minutes"].to_numpy(float)
        over = mins > limit + 1e-9
        if over.any():
            i = int(np.flatnonzero(over)[0])
            v.append(f"practice '{sched['practice_id'].iloc[i]}' travels {mins[i]:.1f} min to "
                     f"'{sched['site_id'].iloc[i]}', above its limit of {limit[i]:g} min")
        if not np.allclose(np.where(np.isfinite(mins), mins, -1), sched["minutes"].astype(float), rtol=1e-6, atol=1e-6):
            v.append("schedule.csv minutes differ from the recomputed travel times")
        days_in = sched.groupby("site_id")["days_per_week"].sum().reindex(cab.index).fillna(0.0)
        days_out = sched.groupby("practice_id")["days_per_week"].sum().reindex(pr.index).fillna(0.0)
        cap_give = np.minimum(np.floor(pr["secondary_days"] + 1e-9), np.floor(pr["physicians"] * D + 1e-9))
        over = days_out > cap_give + 1e-9
        if over.any():
            pid = over.index[over][0]
            v.append(f"practice '{pid}' gives {days_out[pid]:g} days/week, above its cap of {cap_give[pid]:g}")

    # -- presence, staffing and capacities -------------------------------------------------------
    if model != "coverage":
        if not np.allclose(cab["days_per_week"].astype(float), days_in.to_numpy(), atol=1e-9):
            v.append("sites.csv days_per_week differ from the schedule's totals")
        lo, hi = sites_in.loc[cab.index, "min_days"], sites_in.loc[cab.index, "max_days"]
        bad = (days_in < np.maximum(np.ceil(lo - 1e-9), 1) - 1e-9) | (days_in > hi + 1e-9)
        if bad.any():
            sid = bad.index[bad][0]
            v.append(f"cabinet '{sid}' has {days_in[sid]:g} days/week, outside [{lo[sid]:g}, {hi[sid]:g}]")
        fte = cds["fte"].astype(float)
        lo, hi = sites_in.loc[cds.index, "min_fte"], sites_in.loc[cds.index, "max_fte"]
        bad = (fte < np.maximum(np.ceil(lo - 1e-9), 1) - 1e-9) | (fte > hi + 1e-9) | ((fte - fte.round()).abs() > 1e-9)
        if bad.any():
            sid = bad.index[bad][0]
            v.append(f"centre '{sid}' has {fte[sid]:g} FTE, outside [{lo[sid]:g}, {hi[sid]:g}] or not whole")
        cap = pd.concat([days_in * per_day, fte * per_fte]).reindex(s.index)
        bad = ~np.isclose(s["capacity"].astype(float), cap.to_numpy(), rtol=1e-9, atol=1e-6)
        if bad.any():
            v.append(f"site '{s.index[bad][0]}' capacity {s['capacity'][bad].iloc[0]:g} differs from "
                     f"{cap[bad].iloc[0]:g} recomputed")

    # -- costs ---------------------------------------------------------------------------------
    fixed = sites_in.loc[s.index, "fixed_cost"].astype(float)
    staff = pd.Series(0.0, index=s.index)
    if model != "coverage":
        staff = (days_in.reindex(s.index).fillna(0.0) * W * sites_in.loc[s.index, "cost_per_day"]
                 + cds["fte"].astype(float).reindex(s.index).fillna(0.0) * sites_in.loc[s.index, "cost_per_fte"])
    cost = float((fixed + staff).sum())
    if not np.allclose(s["cost_total"].astype(float), (fixed + staff).to_numpy(), rtol=1e-9, atol=1e-6):
        v.append("sites.csv cost_total differs from the recomputed cost per site")
    if not _close(S.get("cost_total", np.nan), cost):
        v.append(f"solution.json cost_total {S.get('cost_total')} differs from {cost:.2f} recomputed")
    if cost > p.budget * (1 + 1e-9) + 1e-6:
        v.append(f"cost {cost:,.2f} EUR/year exceeds the budget of {p.budget:,.2f}")

    # -- coverage ------------------------------------------------------------------------------
    z = sol.zones.set_index("zone_id")
    zin = instance.zones
    if sorted(z.index) != sorted(zin.index):
        v.append("zones.csv does not list exactly the instance's zones")
    z = z.reindex(zin.index)  # compare zone by zone, whatever the row order of zones.csv
    pop = zin["population"]
    practice_zones = pr["zone_id"]
    if model == "coverage":
        before = _zones_within(instance, practice_zones, p.coverage_minutes)
        after = _zones_within(instance, pd.concat([practice_zones, sites_in.loc[s.index, "zone_id"]]), p.coverage_minutes)
        share_before = pd.Series(zin.index.isin(list(before)), index=zin.index).astype(float)
        share_after = pd.Series(zin.index.isin(list(after)), index=zin.index).astype(float)
    else:
        a = sol.assignment
        open_or_practice = set(pr.index) | set(s.index)
        bad = ~a["source_id"].isin(open_or_practice)
        if bad.any():
            v.append(f"assignment.csv sends demand to '{a.loc[bad, 'source_id'].iloc[0]}', neither a practice "
                     "nor an opened site")
        a = a[~bad]
        src_zone = pd.concat([pr["zone_id"], sites_in["zone_id"]])
        mins = _minutes(instance, a["zone_id"].to_numpy(), src_zone.reindex(a["source_id"]).to_numpy())
        far = mins > p.coverage_minutes + 1e-9
        if far.any():
            i = int(np.flatnonzero(far)[0])
            v.append(f"zone '{a['zone_id'].iloc[i]}' is served by '{a['source_id'].iloc[i]}' "
                     f"{mins[i]:.1f} min away, beyond the {p.coverage_minutes:g}-min cutoff")
        if (a["consultations"].astype(float) < -1e-9).any():
            v.append("assignment.csv has a negative flow")
        load = a.groupby("source_id")["consultations"].sum().astype(float)
        capacity = pd.concat([
            pd.Series(pr["physicians"] * D * per_day - days_out * per_day, index=pr.index),
            pd.Series(s["capacity"].astype(float).to_numpy(), index=s.index)])
        over = load > capacity.reindex(load.index).fillna(0.0) * (1 + REL) + 1e-6
        if over.any():
            sid = over.index[over][0]
            v.append(f"source '{sid}' serves {load[sid]:,.1f} consultations/year, above its capacity "
                     f"{capacity.get(sid, 0.0):,.1f}")
        prac = sol.practices.set_index("practice_id").reindex(pr.index)
        if not np.allclose(prac["capacity_after"].astype(float), capacity.reindex(pr.index).to_numpy(), rtol=1e-9, atol=1e-6):
            v.append("practices.csv capacity_after differs from physicians x days x productivity minus days given")
        served = a.groupby("zone_id")["consultations"].sum().reindex(zin.index).fillna(0.0).astype(float)
        demand = zin["demand"]
        over = served > demand * (1 + REL) + 1e-6
        if over.any():
            v.append(f"zone '{over.index[over][0]}' receives more consultations than its demand")
        share_after = pd.Series(np.where(demand > 0, np.minimum(served / demand.where(demand > 0, 1.0), 1.0), 1.0),
                                index=zin.index)
        share_before = z["covered_before"].astype(float)  # checked below for consistency only
    if not np.allclose(z["covered_after"].astype(float).to_numpy(), share_after.to_numpy(), rtol=0, atol=1e-6):
        zid = zin.index[~np.isclose(z["covered_after"].astype(float), share_after, atol=1e-6)][0]
        v.append(f"zone '{zid}' covered_after {z.at[zid, 'covered_after']} differs from "
                 f"{share_after[zid]:.6f} recomputed")
    if model == "coverage" and not np.allclose(z["covered_before"].astype(float), share_before, atol=1e-9):
        v.append("zones.csv covered_before differs from the zones within reach of a practice")
    covered = float((pop * share_after).sum())
    covered_before = float((pop * share_before).sum())
    for key, value in (("population_total", float(pop.sum())), ("population_covered", covered),
                       ("population_uncovered", float(pop.sum()) - covered),
                       ("population_covered_before", covered_before)):
        if key in S and not _close(S[key], value, scale=float(pop.sum()) * 1e-3 if key != "population_total" else 1.0):
            v.append(f"solution.json {key} {S[key]} differs from {value:.3f} recomputed")

    # -- objective and bound --------------------------------------------------------------------
    if model in ("coverage", "staffing") and S.get("objective") is not None:
        weighted = float((zin["weight"] * pop * (1 - share_after)).sum())
        if not _close(S["objective"], weighted, scale=max(1.0, float(pop.sum()) * 1e-6)):
            v.append(f"objective {S['objective']} differs from the weighted uncovered population "
                     f"{weighted:.3f} recomputed")
    if S.get("bound") is not None and S.get("objective") is not None:
        if S["bound"] > S["objective"] + REL * max(1.0, abs(S["objective"])) + 1e-6:
            v.append(f"bound {S['bound']} is above the objective {S['objective']}")
    if S.get("status") == "optimal" and S.get("gap") not in (None,) and S["gap"] > max(
            S.get("options", {}).get("gap", 1e-4), 1e-9) * 1.0001:
        v.append(f"status optimal with gap {S['gap']} above the requested gap")

    # -- APL after the plan (2SFCA recomputed from the tables' capacities) ---------------------
    if S.get("apl") and model != "coverage":
        from .apl import apl_after, apl_summary

        after = apl_after(instance, pd.Series(s["capacity"].astype(float).to_numpy(), index=s.index),
                          pd.Series(sol.practices["capacity_after"].astype(float).to_numpy(),
                                    index=sol.practices["practice_id"]))
        if "apl_after" in z.columns and not np.allclose(z["apl_after"].astype(float).reindex(after.index),
                                                        after.to_numpy(), rtol=1e-6, atol=1e-9):
            v.append("zones.csv apl_after differs from the APL recomputed from the plan's capacities")
        T = float(S["apl"]["threshold"])
        under = apl_summary(after, pop, [T])["under"][T]
        if not _close(S["apl"]["after"]["under"].get(str(T), S["apl"]["after"]["under"].get(T, np.nan)), under):
            v.append("solution.json APL population under the threshold differs from the recomputed one")
        if model == "apl" and S.get("objective") is not None:
            # b_i = 1 allows APL_i = T within the solver's tolerance: count those as at threshold.
            lenient = float(pop[after.reindex(pop.index) < T - 1e-6 * max(1.0, T)].sum())
            if not (lenient - 1e-6 <= S["objective"] <= under + 1e-6):
                v.append(f"apl objective {S['objective']} is not the population under {T:g} "
                         f"({lenient:.1f} to {under:.1f} recomputed)")

    report = CheckReport(ok=not v, violations=v, recomputed={
        "cost_total": cost, "population_covered": covered, "population_covered_before": covered_before})
    if raise_on_violation and v:
        raise CheckError(v)
    return report


def check_folder(folder: str | Path, instance: Instance) -> CheckReport:
    """Check a written solution folder; raise CheckError on any violation."""
    sol = read_solution(folder)
    params = sol.summary.get("parameters") or {}
    inst = instance.with_parameters({k: v for k, v in params.items()
                                     if getattr(instance.parameters, k, None) != v}, file="solution.json")
    if sol.summary.get("instance", {}).get("fingerprint") not in (None, inst.fingerprint):
        raise CheckError(["the solution was computed on another instance (fingerprint differs)"])
    return check_solution(inst, sol, raise_on_violation=True)
