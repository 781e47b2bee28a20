"""Scenarios side by side: headline indicators, sites in one and not the other, cost.

``compare(folders)`` reads solution folders (``models/outputs.md``) and returns
two tables: ``indicators`` (one row per scenario) and ``sites`` (one row per site
opened in any scenario, one column per scenario with its days/week or FTE, empty
when closed). ``write_compare`` writes ``compare.csv``, ``compare_sites.csv`` and
``compare.html`` into a folder. Only solution files are read; nothing is
re-solved, except under ``scenarios``: :func:`compare_scenarios` evaluates each plan's
fixed decisions under each retirement scenario (each scenario's flow LP re-solved with
the plan fixed, ``models/staffing.md`` "Robust plans") into ``compare_scenarios.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .solution import Solution, read_solution

COMPARE_FILES = ("compare.csv", "compare_sites.csv", "compare.html", "compare_scenarios.csv")
INDICATORS = [
    ("model", "model"), ("status", "status"), ("gap", "gap"),
    ("population_total", "population"),
    ("population_uncovered_before", "without access before"),
    ("population_uncovered", "without access after"),
    ("population_covered", "with access after"),
    ("cost_total", "cost EUR/year"), ("budget", "budget EUR/year"),
    ("sites_opened", "sites opened"), ("cabinets", "cabinets secondaires"), ("centres", "centres de santé"),
    ("physician_days_per_week", "physician-days/week moved"), ("salaried_fte", "salaried FTE"),
    ("check_ok", "checker passed"), ("fingerprint", "instance fingerprint"),
]


def _labels(folders: list[Path]) -> list[str]:
    names = [f.name or str(f) for f in folders]
    if len(set(names)) < len(names):
        names = [str(f) for f in folders]
    return names


def compare(folders: list[str | Path]) -> dict[str, pd.DataFrame]:
    """Indicators and site differences of the solution folders, in the order given."""
    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise InputError("compare needs at least two solution folders", column="DIRS",
                         fix="give two or more folders written by optisite solve")
    labels = _labels(folders)
    rows, site_cols, site_info, params = [], {}, {}, {}
    for label, folder in zip(labels, folders):
        sol = read_solution(folder)
        S = sol.summary
        params[label] = dict(S.get("parameters") or {})
        by_kind = S.get("sites_opened_by_kind", {})
        funders = {f"cost_{k}": v for k, v in (S.get("cost_by_funder") or {}).items()}
        rows.append({
            "scenario": label, "folder": str(folder), "model": S.get("model"), "status": S.get("status"),
            "gap": S.get("gap"), "population_total": S.get("population_total"),
            "population_uncovered_before": S.get("population_uncovered_before"),
            "population_uncovered": S.get("population_uncovered"),
            "population_covered": S.get("population_covered"),
            "cost_total": S.get("cost_total"), "budget": S.get("budget"),
            "sites_opened": len(S.get("open_sites", [])),
            "cabinets": by_kind.get("cabinet_secondaire"), "centres": by_kind.get("centre_de_sante"),
            "physician_days_per_week": S.get("physician_days_per_week"), "salaried_fte": S.get("salaried_fte"),
            "check_ok": (S.get("check") or {}).get("ok"),
            "fingerprint": (S.get("instance") or {}).get("fingerprint"),
            "data_fingerprint": (S.get("instance") or {}).get("data_fingerprint"),
            **funders,
        })
        s = sol.sites
        amount = np.where(s["kind"] == "centre_de_sante", s["fte"].astype(float), s["days_per_week"].astype(float))
        site_cols[label] = pd.Series(amount, index=s["site_id"].astype(str).to_numpy())
        for r in s.itertuples():
            site_info.setdefault(str(r.site_id), {"kind": r.kind, "zone_id": r.zone_id, "name": r.name})
    indicators = pd.DataFrame(rows)
    ids = sorted(site_info)
    sites = pd.DataFrame({"site_id": ids,
                          "kind": [site_info[i]["kind"] for i in ids],
                          "zone_id": [site_info[i]["zone_id"] for i in ids],
                          "name": [site_info[i]["name"] for i in ids]})
    for label in labels:
        sites[label] = site_cols[label].reindex(ids).to_numpy()
    opened = sites[labels].notna()
    sites["opened_in"] = opened.sum(axis=1).astype(int)
    sites["in_all"] = sites["opened_in"] == len(labels)
    amounts = sites[labels].astype(float)
    sites["differs"] = ~sites["in_all"] | (amounts.max(axis=1) - amounts.min(axis=1) > 1e-9)
    keys = sorted(set().union(*(p.keys() for p in params.values())))
    differing = pd.DataFrame([{"parameter": k, **{lab: params[lab].get(k) for lab in labels}} for k in keys
                              if len({repr(params[lab].get(k)) for lab in labels}) > 1],
                             columns=["parameter", *labels])
    return {"indicators": indicators, "sites": sites, "labels": labels, "parameters": differing}


def same_data(indicators: pd.DataFrame) -> bool:
    """Were the scenarios solved on the same data (tables and geometry)? Parameters may differ:
    that is what scenarios are for. Folders written before ``data_fingerprint`` fall back to
    the full fingerprint."""
    key = indicators["data_fingerprint"].where(indicators["data_fingerprint"].notna(), indicators["fingerprint"])
    return len(set(key.dropna())) <= 1


def compare_html(result: dict) -> str:
    from .report import TEMPLATES, environment

    env = environment()
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    ind, sites, labels = result["indicators"], result["sites"], result["labels"]
    by_label = {r["scenario"]: r for r in ind.to_dict("records")}
    funder_keys = sorted(c for c in ind.columns if c.startswith("cost_") and c != "cost_total")
    indicator_rows = [(key, title) for key, title in INDICATORS] + [(k, "paid by " + k[5:]) for k in funder_keys]
    diff = sites[sites["differs"]].to_dict("records")
    return env.get_template("compare.html").render(
        css=css, labels=labels, by_label=by_label, indicator_rows=indicator_rows, diff=diff,
        common=int(sites["in_all"].sum()), same=int((~sites["differs"]).sum()),
        same_instance=same_data(ind), sites=sites.to_dict("records"),
        parameters=result["parameters"].to_dict("records"))


def write_compare(result: dict, out: str | Path, *, force: bool = False, reads=()) -> Path:
    """Write compare.csv, compare_sites.csv and compare.html into ``out`` (optisite.outfolder)."""
    from .outfolder import write_files

    html = compare_html(result)
    files = {
        "compare.csv": result["indicators"].to_csv(index=False, lineterminator="\n", float_format="%.10g"),
        "compare_sites.csv": result["sites"].to_csv(index=False, lineterminator="\n", float_format="%.10g"),
        "compare.html": html,
    }
    if result.get("scenarios") is not None:
        files["compare_scenarios.csv"] = result["scenarios"].to_csv(index=False, lineterminator="\n",
                                                                    float_format="%.10g")
    reads = list(reads) or list(result["indicators"].get("folder", []))  # the compared folders
    return write_files(Path(out), files, kind="comparison", force=force, reads=reads)


def plan_decisions(sol) -> tuple[pd.DataFrame, pd.Series]:
    """A single-year plan's days (practice, cabinet, days a week) and FTE (centre -> FTE), from
    its sites and schedule tables; a multi-year plan is refused (exit 2)."""
    if "year" in sol.sites.columns or "year" in sol.schedule.columns:
        raise InputError("a multi-year plan cannot be evaluated under retirement scenarios as one plan",
                         column="--scenarios", fix="compare single-year plans (staffing, robust or not)")
    days = sol.schedule[["practice_id", "site_id", "days_per_week"]].astype({"days_per_week": float})
    s = sol.sites
    cds = s[s["kind"] == "centre_de_sante"]
    fte = pd.Series(cds["fte"].astype(float).to_numpy(), index=cds["site_id"].astype(str).to_numpy())
    return days.reset_index(drop=True), fte[fte > 0]


def evaluate_plan(instance, sol, scenarios: list[str], *, time_limit: float | None = None) -> pd.DataFrame:
    """How one plan (a :class:`~optisite.solution.Solution` or a folder) does under each
    retirement scenario: one row per scenario (``staffing_robust.evaluate``)."""
    from .models.staffing_robust import evaluate
    from .robust import parse_scenarios

    if not isinstance(sol, Solution):
        sol = read_solution(sol)
    names = [n for n, _ in parse_scenarios(",".join(scenarios), file="command line", column="--scenarios")]
    days, fte = plan_decisions(sol)
    return evaluate(instance, days, fte, names, time_limit=time_limit)


def compare_scenarios(folders: list[str | Path], instance, scenarios: list[str], *,
                      labels: list[str] | None = None) -> pd.DataFrame:
    """Plan x scenario: each folder's plan evaluated under each scenario, with its worst and
    (equal weights) expected weighted inhabitants without access over the scenarios."""
    folders = [Path(f) for f in folders]
    labels = labels or _labels(folders)
    rows = []
    for label, folder in zip(labels, folders):
        got = evaluate_plan(instance, folder, scenarios)
        got.insert(0, "plan", label)
        got["worst"] = float(got["uncovered"].max())
        got["expected"] = float(got["uncovered"].mean())
        rows.append(got)
    return pd.concat(rows, ignore_index=True)


__all__ = ["compare", "compare_html", "write_compare", "compare_scenarios", "evaluate_plan", "plan_decisions"]
