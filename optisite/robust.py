"""Robust single-year plans: the retirement scenarios one plan is judged under, and the
tables of such a plan (a result declaring ``scenarios``).

The parameters ``robust_scenarios`` (``"over65_now,over60_within_5"``, each name
optionally ``name:weight``), ``robust_mode`` (``worst`` or ``expected``) and
``robust_year`` (0: the last year of the horizon, ``horizon_years``) say which supplies
the plan must serve: each scenario of :mod:`optisite.retirement` leaves each practice
its physicians of that year. :func:`scenario_instance` is the instance with them (the
same function as a multi-year plan's years, ``retirement.year_instance``).

The tables of a robust plan: ``sites.csv`` and ``schedule.csv`` once (one plan), and
``practices.csv``, ``assignment.csv`` and ``zones.csv`` long, one block of rows per
scenario with a ``scenario`` column. ``solution.derive``, ``headline`` and
``plan_objective`` dispatch here on the result's ``scenarios`` field, never on a
model's name. The model is ``optisite/models/staffing_robust.py``; the maths
``models/staffing.md`` ("Robust plans").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from .errors import InputError
from .instance import Instance
from .parameters import Parameters

OFF = "off"
MODES = ("worst", "expected")
TABLES = ("sites", "schedule", "practices", "assignment", "zones")
LONG = ("practices", "assignment", "zones")  # the tables that differ by scenario


@dataclass(frozen=True)
class Spec:
    """The scenarios of a robust plan: names in the order given, their weights (summing to
    1), the mode and the year they are read in."""

    names: tuple[str, ...]
    weights: tuple[float, ...]
    mode: str
    year: int

    def weight(self) -> dict[str, float]:
        return dict(zip(self.names, self.weights))


def parse_scenarios(text: str, *, file: str = "parameters", column: str = "robust_scenarios") -> list[tuple[str, float]]:
    """``robust_scenarios`` as [(name, weight)]: 'off', or names of ``retirement.SCENARIOS``
    separated by ',' or ';', each optionally ``name:weight`` (weight >= 0, default 1)."""
    from .retirement import SCENARIOS

    text = str(text).strip()
    if text.lower() == OFF:
        return []
    out: list[tuple[str, float]] = []
    fix = "write scenario names separated by ',', e.g. over65_now,over60_within_5 (or name:weight); " \
          "known: " + ", ".join(SCENARIOS)
    for item in [i.strip() for i in re.split(r"[;,]", text) if i.strip()]:
        name, sep, raw = (s.strip() for s in item.partition(":"))
        if name not in SCENARIOS:
            raise InputError(f"unknown retirement scenario '{name[:40]}'", file=file, column=column, fix=fix)
        weight = 1.0
        if sep:
            try:
                weight = float(raw)
            except ValueError:
                raise InputError(f"weight '{raw[:40]}' of '{name}' is not a number", file=file, column=column,
                                 fix=fix) from None
            if not math.isfinite(weight) or not 0.0 <= weight <= 1e6:
                raise InputError(f"weight {raw[:40]} of '{name}' is outside 0 to 1,000,000", file=file,
                                 column=column, fix=fix)
        if name in [n for n, _ in out]:
            raise InputError(f"scenario '{name}' is given twice", file=file, column=column, fix="name each once")
        out.append((name, weight))
    if not out:
        raise InputError("no scenario named", file=file, column=column, fix=fix)
    if sum(w for _, w in out) <= 0:
        raise InputError("the scenarios' weights sum to 0", file=file, column=column,
                         fix="give at least one scenario a positive weight")
    return out


def format_scenarios(items: list[tuple[str, float]]) -> str:
    """The normal text of ``robust_scenarios`` ('off' when empty; weights only when not 1)."""
    if not items:
        return OFF
    return ",".join(n if w == 1.0 else f"{n}:{int(w) if float(w).is_integer() else repr(float(w))}"
                    for n, w in items)


def spec(p: Parameters) -> Spec | None:
    """The robust scenarios the parameters ask for, or None (``robust_scenarios`` 'off')."""
    items = parse_scenarios(p.robust_scenarios)
    if not items:
        return None
    if abs(p.robust_year - round(p.robust_year)) > 1e-9:
        raise InputError(f"robust_year {p.robust_year:g} is not a whole year", column="robust_year",
                         fix="give --robust-year as a whole number (0: the last year of the horizon)")
    year = int(round(p.robust_year)) or int(round(p.horizon_years))
    total = sum(w for _, w in items)
    return Spec(names=tuple(n for n, _ in items), weights=tuple(w / total for _, w in items),
                mode=p.robust_mode, year=year)


def describe(s: Spec) -> str:
    """One sentence for the warnings and the report."""
    weights = "" if s.mode == "worst" else " with weights " + ", ".join(
        f"{n} {w:.3g}" for n, w in zip(s.names, s.weights))
    return (f"robust plan ({s.mode} case{weights}) over the retirement scenarios {', '.join(s.names)}, "
            f"each read in year {s.year} (robust_year; 0 means the last year of the horizon, horizon_years)")


_SHARES: dict = {}  # instance data and parameters -> AgeShares (the DREES fit takes seconds; a solve reads it 3 times)


def shares_of(instance: Instance):
    """``retirement.age_shares`` of the instance, computed once for its data and parameters
    (the robust parameters aside: they do not change the ages)."""
    from .retirement import age_shares

    params = {k: v for k, v in instance.parameters.to_dict().items() if not k.startswith("robust_")}
    key = (instance.data_fingerprint, repr(sorted(params.items())))
    if key not in _SHARES:
        if len(_SHARES) >= 8:
            _SHARES.pop(next(iter(_SHARES)))
        _SHARES[key] = age_shares(instance)
    return _SHARES[key]


def physicians(instance: Instance, s: Spec, shares=None) -> pd.DataFrame:
    """Physicians (FTE) of each practice under each scenario in year ``s.year``: index
    practice_id, one column per scenario (``retirement.retired_share``)."""
    from .retirement import ROUND, retired_share

    p = instance.parameters
    shares = shares or shares_of(instance)
    phys = instance.practices["physicians"].astype(float)
    out = {k: (phys * (1.0 - retired_share(shares, k, s.year, p.retirement_rate))).round(ROUND).clip(lower=0.0)
           for k in s.names}
    return pd.DataFrame(out, index=phys.index)


def scenario_instances(instance: Instance, s: Spec) -> dict[str, Instance]:
    """Each scenario's instance: the practices with the physicians it leaves in year ``s.year``."""
    from .retirement import year_instance

    phys = physicians(instance, s)
    return {k: year_instance(instance, phys[k]) for k in s.names}


def aggregate(s: Spec, uncovered: dict[str, float]) -> dict[str, Any]:
    """The worst and expected weighted uncovered over the scenarios, and which is worst."""
    worst = max(s.names, key=lambda k: (uncovered[k], -s.names.index(k)))
    expected = float(sum(w * uncovered[k] for k, w in zip(s.names, s.weights)))
    return {"worst": float(uncovered[worst]), "expected": expected, "worst_scenario": worst}


# ---------------------------------------------------------------------------------
# Tables, headline and objective of a robust plan (solution.py dispatches here)
# ---------------------------------------------------------------------------------

def _scenario(frame: pd.DataFrame | None, k: str) -> pd.DataFrame | None:
    if frame is None:
        return None
    return frame[frame["scenario"] == k].drop(columns="scenario").reset_index(drop=True)


def derive_scenarios(instance: Instance, result, decisions: dict, *, pairs: pd.DataFrame,
                     before_flows: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """The tables of a robust plan: each scenario's single-year tables on its instance;
    sites and schedule once, practices, assignment and zones long (a ``scenario`` column)."""
    from .solution import derive

    s = spec(instance.parameters)
    single = replace(result, scenarios=False)
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in LONG}
    out: dict[str, pd.DataFrame] = {}
    for k, inst_k in scenario_instances(instance, s).items():
        tables = derive(inst_k, single, {**decisions, "flows": _scenario(decisions.get("flows"), k)},
                        pairs=pairs, before_flows=_scenario(before_flows, k))
        for name in ("sites", "schedule"):
            out.setdefault(name, tables[name])
        for name in LONG:
            frame = tables[name].copy()
            frame.insert(0, "scenario", k)
            parts[name].append(frame)
    out.update({name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()})
    return {name: out[name] for name in TABLES}


def split(tables: dict[str, pd.DataFrame], k: str) -> dict[str, pd.DataFrame]:
    """Scenario ``k``'s single-year tables out of a robust plan's tables."""
    return {name: (_scenario(frame, k) if "scenario" in frame.columns else frame) for name, frame in tables.items()}


def weighted_uncovered(zones: pd.DataFrame, column: str = "covered_after") -> float:
    """Weighted inhabitants without access of one scenario's zones table."""
    return float((zones["weight"].astype(float) * zones["population"].astype(float)
                  * (1 - zones[column].astype(float))).sum())


def headline_scenarios(instance: Instance, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The summary's figures: at the top level those of the scenario where the plan does
    worst; every scenario's under ``scenarios``; the worst and expected values under ``robust``."""
    from .solution import headline

    s = spec(instance.parameters)
    blocks, after, before = [], {}, {}
    for k, w in zip(s.names, s.weights):
        one = split(tables, k)
        after[k] = weighted_uncovered(one["zones"])
        before[k] = weighted_uncovered(one["zones"], "covered_before")
        blocks.append({"scenario": k, "weight": float(w), "uncovered": after[k], "uncovered_before": before[k],
                       **headline(instance, one)})
    plan, nothing = aggregate(s, after), aggregate(s, before)
    top = next(b for b in blocks if b["scenario"] == plan["worst_scenario"])
    robust = {"mode": s.mode, "year": s.year, **plan,
              "worst_before": nothing["worst"], "expected_before": nothing["expected"]}
    return {**{k: v for k, v in top.items() if k not in ("scenario", "weight", "uncovered", "uncovered_before")},
            "scenarios": blocks, "robust": robust}


def plan_objective(instance: Instance, zones: pd.DataFrame, *, before: bool = False) -> float:
    """The robust objective (worst or expected weighted uncovered) of a long zones table."""
    s = spec(instance.parameters)
    col = "covered_before" if before else "covered_after"
    values = {k: weighted_uncovered(zones[zones["scenario"] == k], col) for k in s.names}
    return aggregate(s, values)[s.mode]


def is_long(frame: pd.DataFrame) -> bool:
    return "scenario" in frame.columns


__all__ = ["Spec", "spec", "parse_scenarios", "format_scenarios", "describe", "physicians", "scenario_instances",
           "aggregate", "derive_scenarios", "headline_scenarios", "plan_objective", "split", "weighted_uncovered"]
