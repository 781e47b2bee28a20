"""The solution: plain tables and a summary, derived from decisions and the instance.

``derive`` turns a model's decisions (opened sites, days, FTE, demand flows) into
the tables of ``models/outputs.md``; ``Solution.write`` puts them in a folder
atomically; ``read_solution`` reads such a folder back (for the checker, reports
and comparisons). Nothing here touches Pyomo.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .errors import InputError
from .rules import capacities, practice_capacity, site_cost
from .instance import Instance

SOLUTION_FILES = ("solution.json", "sites.csv", "sites.gpkg", "schedule.csv", "practices.csv",
                  "assignment.csv", "zones.csv", "zones.gpkg", "report.html", "outputs.xlsx")

SITE_COLUMNS = ["site_id", "kind", "zone_id", "name", "lon", "lat", "days_per_week", "fte",
                "capacity", "cost_fixed", "cost_staff", "cost_total"]
SCHEDULE_COLUMNS = ["practice_id", "practice_zone_id", "site_id", "site_zone_id", "days_per_week", "minutes"]
PRACTICE_COLUMNS = ["practice_id", "zone_id", "physicians", "days_given", "capacity_before", "capacity_after"]
ASSIGNMENT_COLUMNS = ["zone_id", "source_id", "source_kind", "consultations", "minutes"]
ZONE_COLUMNS = ["zone_id", "name", "population", "demand", "weight", "covered_before", "covered_after",
                "uncovered_before", "uncovered_after", "main_source_after", "minutes_after"]


@dataclass
class Solution:
    """A solved (or stopped) plan: summary dict plus the output tables."""

    summary: dict[str, Any]
    sites: pd.DataFrame
    schedule: pd.DataFrame
    practices: pd.DataFrame
    assignment: pd.DataFrame
    zones: pd.DataFrame
    zone_geometry: Any = None  # GeoSeries indexed by zone_id, or None
    instance: Any = field(default=None, repr=False, compare=False)  # the Instance it was solved on, if known

    def __repr__(self) -> str:
        S = self.summary
        gap = "" if S.get("gap") is None else f", gap {100 * S['gap']:.2f} %"
        return (f"<Solution {S.get('model')} {S.get('status')}{gap}: {S.get('population_uncovered', 0):,.0f} "
                f"inhabitants without access ({S.get('population_uncovered_before', 0):,.0f} before), "
                f"{len(S.get('open_sites', []))} site(s) opened, cost {S.get('cost_total', 0):,.0f} of "
                f"{S.get('budget', 0):,.0f} EUR/year>")

    # Convenience accessors used by notebooks, tests and benchmarks.
    @property
    def status(self) -> str:
        return self.summary["status"]

    @property
    def objective(self) -> float | None:
        return self.summary["objective"]

    @property
    def bound(self) -> float | None:
        return self.summary["bound"]

    @property
    def open_sites(self) -> list[str]:
        return list(self.summary["open_sites"])

    @property
    def timings(self) -> dict[str, float]:
        return self.summary["timings"]

    def write(self, out: str | Path, *, force: bool = False, report: bool = True, csv: str = "plain",
              xlsx: bool = False) -> Path:
        """Write the folder atomically, with ``report.html`` when the instance is known
        (``report=False`` to leave it out); an existing folder needs ``force``. ``csv``:
        ``plain`` or ``excel-fr``; ``xlsx``: also ``outputs.xlsx`` (see :mod:`optisite.exports`)."""
        return write_folder(self, Path(out), force=force, report=report, csv=csv, xlsx=xlsx)


# ---------------------------------------------------------------------------------
# Deriving tables from decisions
# ---------------------------------------------------------------------------------

def derive(instance: Instance, result, decisions: dict, *, pairs: pd.DataFrame,
           before_flows: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """Tables of the outputs contract from a model's decisions.

    ``result`` is the model's :class:`~optisite.models.base.ResultMeaning`: whether
    access is by reach or by capacity-limited flows, whether the plan has capacities.
    ``pairs`` are the coverage pairs (zone, source within the cutoff); ``before_flows``
    the demand flows of the existing supply alone (access by flows).
    A result declaring ``years`` has long tables, one block per year (:mod:`optisite.years`).
    """
    if getattr(result, "years", False):
        from .years import derive_years

        return derive_years(instance, result, decisions, pairs=pairs, before_flows=before_flows)
    if getattr(result, "scenarios", False):  # a robust plan: one block per scenario (optisite/robust.py)
        from .robust import derive_scenarios

        return derive_scenarios(instance, result, decisions, pairs=pairs, before_flows=before_flows)
    caps = capacities(instance.parameters)
    W = instance.parameters.working_weeks
    sites = instance.sites
    opened = list(decisions["open_sites"])
    days = decisions.get("days")
    if days is None:
        days = pd.DataFrame(columns=["practice_id", "site_id", "days_per_week"])
    fte = decisions.get("fte", pd.Series(dtype=float))

    # -- sites ---------------------------------------------------------------------
    s = sites.loc[opened].copy()
    s["days_per_week"] = days.groupby("site_id")["days_per_week"].sum().reindex(s.index).fillna(0).astype(float)
    s["fte"] = fte.reindex(s.index).fillna(0).astype(float)
    if not result.capacities:
        s["capacity"] = np.nan
        s["cost_staff"] = 0.0
    else:
        s["capacity"] = s["days_per_week"] * caps["per_liberal_weekly_day"] + s["fte"] * caps["per_salaried_fte"]
        s["cost_staff"] = site_cost(instance.parameters, 0.0, s["cost_per_day"], s["days_per_week"],
                                    s["cost_per_fte"], s["fte"])
    s["cost_fixed"] = s["fixed_cost"]
    s["cost_total"] = s["cost_fixed"] + s["cost_staff"]
    s = s.reset_index().rename(columns={"index": "site_id"})
    s = s[SITE_COLUMNS].sort_values("site_id").reset_index(drop=True)

    # -- schedule ------------------------------------------------------------------
    pr = instance.practices
    sched = days.copy()
    sched["practice_zone_id"] = pr["zone_id"].reindex(sched["practice_id"]).to_numpy()
    sched["site_zone_id"] = sites["zone_id"].reindex(sched["site_id"]).to_numpy()
    sched["minutes"] = instance.travel.minutes(sched["practice_zone_id"], sched["site_zone_id"]) if len(sched) else []
    sched = sched[SCHEDULE_COLUMNS].sort_values(["practice_id", "site_id"]).reset_index(drop=True)

    # -- practices -----------------------------------------------------------------
    given = days.groupby("practice_id")["days_per_week"].sum()
    prac = pd.DataFrame({
        "practice_id": pr.index.to_numpy(), "zone_id": pr["zone_id"].to_numpy(),
        "physicians": pr["physicians"].to_numpy(),
        "days_given": given.reindex(pr.index).fillna(0).to_numpy(float),
    })
    prac["capacity_before"] = practice_capacity(instance.parameters, pr).to_numpy(float)
    prac["capacity_after"] = prac["capacity_before"] - prac["days_given"] * caps["per_liberal_weekly_day"]
    if not result.capacities:
        prac["capacity_before"] = np.nan
        prac["capacity_after"] = np.nan
    prac = prac[PRACTICE_COLUMNS].sort_values("practice_id").reset_index(drop=True)

    # -- zones and assignment ------------------------------------------------------
    z = instance.zones
    zones = pd.DataFrame({"zone_id": z.index.to_numpy(), "name": z["name"].to_numpy(),
                          "population": z["population"].to_numpy(), "demand": z["demand"].to_numpy(),
                          "weight": z["weight"].to_numpy()})
    available_after = pairs[(pairs["source_kind"] == "practice") | pairs["source_id"].isin(opened)]
    if result.access == "reach":
        before = pairs.loc[pairs["source_kind"] == "practice", "zone_id"].unique()
        zones["covered_before"] = zones["zone_id"].isin(before).astype(float)
        zones["covered_after"] = zones["zone_id"].isin(available_after["zone_id"].unique()).astype(float)
        nearest = available_after.sort_values(["zone_id", "minutes", "source_id"]).drop_duplicates("zone_id")
        main = nearest.set_index("zone_id")
        assignment = pd.DataFrame(columns=ASSIGNMENT_COLUMNS)
    else:
        flows = decisions["flows"]
        kinds = pairs.drop_duplicates("source_id").set_index("source_id")["source_kind"]
        assignment = flows.merge(pairs[["zone_id", "source_id", "minutes"]], on=["zone_id", "source_id"], how="left")
        assignment["source_kind"] = kinds.reindex(assignment["source_id"]).to_numpy()
        assignment = assignment[ASSIGNMENT_COLUMNS].sort_values(["zone_id", "source_id"]).reset_index(drop=True)
        zones["covered_before"] = _served_share(zones, before_flows)
        zones["covered_after"] = _served_share(zones, assignment)
        main = (assignment.sort_values(["zone_id", "consultations", "source_id"], ascending=[True, False, True])
                .drop_duplicates("zone_id").set_index("zone_id"))
    zones["uncovered_before"] = zones["population"] * (1 - zones["covered_before"])
    zones["uncovered_after"] = zones["population"] * (1 - zones["covered_after"])
    zones["main_source_after"] = main["source_id"].reindex(zones["zone_id"]).to_numpy()
    zones["minutes_after"] = main["minutes"].reindex(zones["zone_id"]).to_numpy()
    zones = zones[ZONE_COLUMNS].sort_values("zone_id").reset_index(drop=True)
    return {"sites": s, "schedule": sched, "practices": prac, "assignment": assignment, "zones": zones}


def _served_share(zones: pd.DataFrame, flows: pd.DataFrame | None) -> np.ndarray:
    """Served share of each zone's demand (1 for zones without demand)."""
    if flows is None or len(flows) == 0:
        served = pd.Series(0.0, index=zones["zone_id"])
    else:
        served = flows.groupby("zone_id")["consultations"].sum().reindex(zones["zone_id"]).fillna(0.0)
    demand = zones["demand"].to_numpy(float)
    share = np.where(demand > 0, served.to_numpy() / np.where(demand > 0, demand, 1.0), 1.0)
    # Flows are continuous: a share of 1 - 1e-12 is full coverage, not a rounding artefact to report.
    share = np.clip(share, 0.0, 1.0)
    return np.where(np.abs(share - 1.0) < 1e-9, 1.0, np.where(share < 1e-12, 0.0, share))


def plan_objective(result, instance: Instance, tables: dict[str, pd.DataFrame], apl: dict | None, *,
                   before: bool = False) -> float:
    """The value of the objective ``result.objective`` for the plan in ``tables`` (or for the
    existing supply alone, ``before``), computed from the tables."""
    z = tables["zones"]
    if "scenario" in z.columns and result.objective == "weighted_uncovered":  # a robust plan
        from .robust import plan_objective as robust_objective

        return robust_objective(instance, z, before=before)
    if "year" in z.columns and result.objective == "weighted_uncovered":  # a multi-year plan
        from .years import weighted_uncovered

        return weighted_uncovered(instance, z, "covered_before" if before else "covered_after")
    if result.objective == "weighted_uncovered":
        col = "covered_before" if before else "covered_after"
        return float((z["weight"].astype(float) * z["population"].astype(float) * (1 - z[col].astype(float))).sum())
    if result.objective == "population_under_apl":
        return float(apl["before" if before else "after"]["under"][apl["threshold"]])
    return 0.0 if before else float(tables["sites"]["cost_total"].sum())


def planning_zones(instance: Instance) -> pd.Series:
    """Zones counted in the headline figures: the planning territory (``planning`` 1), not the
    neighbours across its border that serve and compete (all zones when the column is absent)."""
    z = instance.zones
    if "planning" in z.columns:
        return z["planning"] == 1
    return pd.Series(True, index=z.index)


def headline(instance: Instance, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Population and cost figures of the summary, computed from the tables."""
    if "year" in tables["zones"].columns:  # a multi-year plan: the last year, and every year
        from .years import headline_years

        return headline_years(instance, tables)
    if "scenario" in tables["zones"].columns:  # a robust plan: the worst scenario, and every scenario
        from .robust import headline_scenarios

        return headline_scenarios(instance, tables)
    p = instance.parameters
    z, s = tables["zones"], tables["sites"]
    z = z[planning_zones(instance).reindex(z["zone_id"]).fillna(True).to_numpy(bool)]
    pop = float(z["population"].sum())
    covered = float((z["population"] * z["covered_after"]).sum())
    covered_before = float((z["population"] * z["covered_before"]).sum())
    cab, cds = s[s["kind"] == "cabinet_secondaire"], s[s["kind"] == "centre_de_sante"]
    items = {
        "fixed_cabinet": float(cab["cost_fixed"].sum()),
        "fixed_centre": float(cds["cost_fixed"].sum()),
        "physician_days": float(cab["cost_staff"].sum()),
        "salaried_fte": float(cds["cost_staff"].sum()),
    }
    # Each site's fixed cost to its funder_fixed, its staff cost to its funder_staff (the sites
    # table's columns, the funder_* parameters by default); the parameters' funders always listed.
    funders = {f: 0.0 for f in (p.funder_cabinet_fixed, p.funder_cabinet_days, p.funder_centre_fixed,
                                p.funder_centre_fte)}
    who = instance.sites.reindex(s["site_id"])
    for col, cost in (("funder_fixed", "cost_fixed"), ("funder_staff", "cost_staff")):
        for f, amount in s[cost].groupby(who[col].to_numpy()).sum().items():
            funders[str(f)] = funders.get(str(f), 0.0) + float(amount)
    return {
        "population_total": pop,
        "population_covered": covered,
        "population_uncovered": pop - covered,
        "population_covered_before": covered_before,
        "population_uncovered_before": pop - covered_before,
        "cost_total": float(s["cost_total"].sum()),
        "cost_by_item": items,
        "cost_by_funder": dict(sorted(funders.items())),
        "budget": float(p.budget),
        "open_sites": sorted(s["site_id"].tolist()),
        "sites_opened_by_kind": {"cabinet_secondaire": int(len(cab)), "centre_de_sante": int(len(cds))},
        "physician_days_per_week": float(cab["days_per_week"].sum()),
        "salaried_fte": float(cds["fte"].sum()),
    }


# ---------------------------------------------------------------------------------
# Folder I/O
# ---------------------------------------------------------------------------------

def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _clean(obj):
    """NaN/inf to None, recursively, so that solution.json is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n", float_format="%.10g")


def write_folder(solution: Solution, out: Path, *, force: bool = False, report: bool = True,
                 csv: str = "plain", xlsx: bool = False) -> Path:
    """Write the solution folder atomically through :mod:`optisite.outfolder` (an existing
    folder needs ``force`` and must be one optisite wrote; the user's files in it stay).
    ``csv`` is the CSV dialect (``plain``, ``excel-fr``); ``xlsx`` adds ``outputs.xlsx``."""
    from . import exports, outfolder

    if csv not in exports.CSV_DIALECTS:
        raise InputError(f"unknown CSV format '{csv}'", column="--csv", fix="use " + " or ".join(exports.CSV_DIALECTS))

    html = None
    if report and solution.instance is not None:
        from .report import render_report

        html = render_report(solution.instance, solution)

    def fill(tmp: Path) -> None:
        tables = {"sites": solution.sites, "schedule": solution.schedule, "practices": solution.practices,
                  "assignment": solution.assignment, "zones": solution.zones}
        for name, frame in tables.items():
            exports.write_csv(frame, tmp / f"{name}.csv", csv)
        if xlsx:
            exports.write_xlsx(tables, tmp / exports.XLSX)
        _write_geo(solution, tmp)
        if html is not None:
            (tmp / "report.html").write_text(html, encoding="utf-8")
        summary = json.dumps(_clean(solution.summary), indent=2, sort_keys=True, default=_json_default,
                             ensure_ascii=False)
        (tmp / "solution.json").write_text(summary + "\n", encoding="utf-8")

    return outfolder.write_folder(Path(out), fill, kind="solution", own=SOLUTION_FILES, force=force)


def _write_geo(solution: Solution, folder: Path) -> None:
    """sites.gpkg and zones.gpkg, with their QGIS styles (:mod:`optisite.exports`)."""
    from .exports import write_geopackages

    write_geopackages(solution, folder)


def read_solution(folder: str | Path) -> Solution:
    """Read a solution folder written by ``write_folder`` (ids stay text; CSVs in either
    dialect, ``plain`` or ``excel-fr``)."""
    from .exports import csv_read_options

    folder = Path(folder)
    path = folder / "solution.json"
    if not path.is_file():
        raise InputError("no solution.json in the folder", file=str(folder),
                         fix="give a folder written by 'optisite solve'")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"solution.json is not valid JSON ({exc})", file=str(path)) from None
    if not isinstance(summary, dict):
        raise InputError(f"holds a JSON {type(summary).__name__}, not an object", file=str(path),
                         fix="give a folder written by 'optisite solve'")
    ids = {c: str for c in ("site_id", "zone_id", "practice_id", "practice_zone_id", "site_zone_id",
                            "source_id", "main_source_after", "name", "kind", "source_kind")}

    def table(name, columns):
        f = folder / name
        if not f.is_file():
            raise InputError(f"missing table {name}", file=str(folder), fix="re-run 'optisite solve'")
        try:
            df = pd.read_csv(f, dtype=ids, keep_default_na=False, na_values=[""], **csv_read_options(f))
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot be read as a table ({type(exc).__name__})", file=str(f),
                             fix="re-run 'optisite solve'") from None
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise InputError("required column is missing", file=str(f), column=missing[0])
        return df

    return Solution(
        summary=summary,
        sites=table("sites.csv", SITE_COLUMNS),
        schedule=table("schedule.csv", SCHEDULE_COLUMNS),
        practices=table("practices.csv", PRACTICE_COLUMNS),
        assignment=table("assignment.csv", ASSIGNMENT_COLUMNS),
        zones=table("zones.csv", ZONE_COLUMNS),
    )
