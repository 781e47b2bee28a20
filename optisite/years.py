"""Rules and tables of a multi-year plan (a result declaring ``years``): discount and
ramp-up factors, and the long tables (one block of rows per year, a ``year`` column).

Each year's tables are those of a single-year plan (:func:`optisite.solution.derive`) on
that year's instance (the physicians left by the retirement scenario,
:mod:`optisite.retirement`), with a new centre de santé's capacity ramped up by its
age. ``solution.derive``, ``headline`` and ``plan_objective`` dispatch here on the
result's ``years`` field, never on a model's name.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from .instance import Instance
from .parameters import Parameters

TABLES = ("sites", "schedule", "practices", "assignment", "zones")


def discount(p: Parameters, year) -> Any:
    """Weight of year ``year`` (1 = first) in the objective: (1 + discount_rate)^-(year - 1)."""
    return (1.0 + p.discount_rate) ** -(np.asarray(year, dtype=float) - 1.0)


def ramp(p: Parameters, age: int) -> float:
    """Share of its salaried capacity a centre de santé serves in its ``age``-th year open
    (1 = the year it opens): linear from centre_ramp_up_first_year to 1 after
    centre_ramp_up_years years."""
    first, years = float(p.centre_ramp_up_first_year), float(p.centre_ramp_up_years)
    if age < 1 or years <= 0 or first >= 1.0:
        return 1.0
    return float(min(1.0, first + (1.0 - first) * (age - 1) / years))


def opening_years(sites_long: pd.DataFrame) -> pd.Series:
    """First year each site appears open in a long sites table (site_id -> year)."""
    if sites_long.empty:
        return pd.Series(dtype=int)
    return sites_long.groupby("site_id")["year"].min()


def derive_years(instance: Instance, result, decisions: dict, *, pairs: pd.DataFrame,
                 before_flows: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """The long tables of a multi-year plan: decisions carry a ``year`` column (days, flows)
    or level (FTE: index (site_id, year)); ``before_flows`` the do-nothing flows per year."""
    from .retirement import horizon, physicians_by_year, year_instance
    from .solution import derive

    single = replace(result, years=False)
    p = instance.parameters
    physicians = physicians_by_year(instance)
    days = decisions.get("days")
    if days is None or "year" not in days.columns:
        days = pd.DataFrame(columns=["practice_id", "site_id", "days_per_week", "year"])
    fte = decisions.get("fte")
    if fte is None or not isinstance(fte.index, pd.MultiIndex):
        fte = pd.Series(dtype=float, index=pd.MultiIndex.from_arrays([[], []], names=["site_id", "year"]))
    flows, before = decisions.get("flows"), before_flows
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in TABLES}
    first_open: dict[str, int] = {}
    for t in horizon(instance):
        inst_t = year_instance(instance, physicians[t])
        d_t = days[days["year"] == t].drop(columns="year").reset_index(drop=True)
        f_t = fte[fte.index.get_level_values("year") == t].droplevel("year")
        f_t = f_t[f_t > 0]
        open_t = sorted(set(d_t["site_id"]) | set(f_t.index))
        for s in open_t:
            first_open.setdefault(s, t)
        tables = derive(inst_t, single, {"open_sites": open_t, "days": d_t, "fte": f_t,
                                         "flows": _year(flows, t)},
                        pairs=pairs, before_flows=_year(before, t))
        s = tables["sites"]
        centre = s["kind"] == "centre_de_sante"
        factor = np.array([ramp(p, t - first_open[sid] + 1) for sid in s["site_id"]])
        s.loc[centre, "capacity"] = s.loc[centre, "capacity"].to_numpy() * factor[centre.to_numpy()]
        for name, frame in tables.items():
            frame = frame.copy()
            frame.insert(0, "year", t)
            parts[name].append(frame)
    return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}


def _year(flows: pd.DataFrame | None, t: int) -> pd.DataFrame | None:
    if flows is None:
        return None
    return flows[flows["year"] == t].drop(columns="year").reset_index(drop=True)


def headline_years(instance: Instance, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The summary's figures: those of the last year at the top level (where the plan ends),
    and every year's under ``years``."""
    from .solution import headline

    years = []
    for t in sorted(pd.unique(tables["zones"]["year"])):
        one = {name: frame[frame["year"] == t].drop(columns="year") for name, frame in tables.items()}
        years.append({"year": int(t), **headline(instance, one)})
    last = {k: v for k, v in years[-1].items() if k != "year"}
    return {**last, "years": years}


def weighted_uncovered(instance: Instance, zones: pd.DataFrame, column: str) -> float:
    """Discounted weighted inhabitants without access summed over the years of a long zones table."""
    z = zones
    d = discount(instance.parameters, z["year"].to_numpy(float))
    return float((d * z["weight"].astype(float) * z["population"].astype(float)
                  * (1 - z[column].astype(float))).sum())
