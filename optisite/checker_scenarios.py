"""The independent checker of a robust plan (a result declaring ``scenarios``).

One plan (``sites.csv``, ``schedule.csv``) is checked under each retirement scenario as
a single-year plan by :class:`optisite.checker._Checker`, on that scenario's instance
(the physicians it leaves in the plan's year, an input of the plan like the instance's
tables), with that scenario's rows of ``practices.csv``, ``assignment.csv`` and
``zones.csv`` and its block of ``solution.json``. Across scenarios: the long tables name
exactly the plan's scenarios; each scenario's weighted inhabitants without access,
recomputed from its re-derived served shares, equals its ``uncovered``; the worst and
expected values, the worst scenario, the top level (the worst scenario's figures) and the
objective follow from them; and the plan is never worse than doing nothing.
"""

from __future__ import annotations

import math

import pandas as pd

from .checker import _Checker, _close, _counted_population, _finite, _malformed, _summary_shape, \
    check_bound_and_gap, check_long_plan_status
from .instance import Instance

HOLD = 2e-6  # relative: the solver's hold on the first objective (1e-6) and the tables' rounding
HEADLINE = ("population_total", "population_covered", "population_uncovered", "population_covered_before",
            "population_uncovered_before", "cost_total", "budget", "physician_days_per_week", "salaried_fte")
NAN = {"cost_total": math.nan, "population_covered": math.nan, "population_covered_before": math.nan}


class _ScenarioChecker(_Checker):
    """One scenario of the plan: the single-year rules; the objective is checked once."""

    def check_objective_and_status(self) -> None:
        """Checked once for all scenarios (:func:`_objective_and_status`)."""


def _weighted(instance: Instance, share: pd.Series) -> float:
    pop = _counted_population(instance)
    return float((instance.zones["weight"].astype(float) * pop * (1 - share)).sum())


def check_scenarios(instance: Instance, S: dict, R: dict, tables: dict, v: list[str]) -> dict:
    from .retirement import year_instance
    from .robust import aggregate, physicians, spec

    s = spec(instance.parameters)
    if s is None:
        v.append("the plan declares scenarios, but the parameters name none (robust_scenarios 'off')")
        return dict(NAN)
    blocks, robust = S.get("scenarios"), S.get("robust")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks) or not isinstance(robust, dict):
        v.append("solution.json has no 'scenarios' list and 'robust' object, though the plan declares scenarios")
        return dict(NAN)
    for b in blocks:
        if not isinstance(b.get("scenario"), str):
            raise _malformed("each entry of 'scenarios' needs a 'scenario' name", column="scenarios")
        for key in ("weight", "uncovered", "uncovered_before"):
            if key in b and not (isinstance(b[key], (int, float)) and not isinstance(b[key], bool)):
                raise _malformed(f"'scenarios' entry '{b['scenario']}': '{key}' must be a number", column="scenarios")
        _summary_shape({"model": S.get("model"), "status": S.get("status"),
                        **{k: x for k, x in b.items() if k not in ("scenario", "weight", "uncovered",
                                                                    "uncovered_before")}})
    listed = [b["scenario"] for b in blocks]
    if listed != list(s.names):
        v.append(f"solution.json scenarios lists {listed}, not the plan's {list(s.names)}")
    for name in ("practices.csv", "assignment.csv", "zones.csv"):
        frame = tables[name]
        if "scenario" not in frame.columns:
            v.append(f"{name} has no scenario column, though the plan declares scenarios")
            return dict(NAN)
        bad = ~frame["scenario"].isin(s.names)
        if bad.any():
            v.append(f"{name} has scenario '{frame['scenario'][bad].iloc[0]}', not one of the plan's")
    for name in ("sites.csv", "schedule.csv"):
        if "scenario" in tables[name].columns:
            v.append(f"{name} has a scenario column: a robust plan has one set of sites and days")
    by_name = {b["scenario"]: b for b in blocks}
    phys = physicians(instance, s)
    shared = {k: S[k] for k in ("model", "status", "options", "parameters", "instance") if k in S}
    R1 = {**R, "scenarios": False}
    after, before, recs = {}, {}, []
    for k, w in zip(s.names, s.weights):
        one = {name: (frame[frame["scenario"] == k].drop(columns="scenario").reset_index(drop=True)
                      if "scenario" in frame.columns else frame) for name, frame in tables.items()}
        block = by_name.get(k) or {}
        S_k = {**shared, **{key: x for key, x in block.items()
                            if key not in ("scenario", "weight", "uncovered", "uncovered_before")}, "result": R1}
        inst_k = year_instance(instance, phys[k])
        found: list[str] = []
        chk = _ScenarioChecker(inst_k, S_k, R1, one, found)
        rec = chk.run()
        v.extend(f"scenario {k}: {x}" for x in found)
        after[k] = _weighted(inst_k, chk.share_after)
        before[k] = _weighted(inst_k, chk.z["covered_before"].clip(0, 1).astype(float))
        recs.append({"scenario": k, **rec, "uncovered": after[k], "uncovered_before": before[k]})
        scale = max(1.0, float(_counted_population(inst_k).sum()) * 1e-6)
        for key, want in (("uncovered", after[k]), ("uncovered_before", before[k]), ("weight", w)):
            got = block.get(key)
            if got is None or not _close(got, want, scale=scale):
                v.append(f"solution.json scenario {k} {key} {got} differs from {want:.6g} recomputed")
    plan, nothing = aggregate(s, after), aggregate(s, before)
    for key, want in (("mode", s.mode), ("year", s.year), ("worst_scenario", plan["worst_scenario"])):
        if robust.get(key) != want:
            v.append(f"solution.json robust.{key} is {robust.get(key)!r}, not {want!r}")
    for key, want in (("worst", plan["worst"]), ("expected", plan["expected"]),
                      ("worst_before", nothing["worst"]), ("expected_before", nothing["expected"])):
        got = robust.get(key)
        if not (isinstance(got, (int, float)) and _close(got, want, scale=max(1.0, abs(want)) * 1e-6)):
            v.append(f"solution.json robust.{key} {got} differs from {want:.6g} recomputed")
    # -- the top level: the worst scenario's figures ----------------------------------------
    top = by_name.get(plan["worst_scenario"]) or {}
    for key in HEADLINE + ("open_sites", "cost_by_item", "cost_by_funder", "sites_opened_by_kind"):
        if key in S and key in top and S[key] != top[key]:
            if all(isinstance(x, (int, float)) for x in (S[key], top[key])) and _close(S[key], top[key]):
                continue
            v.append(f"solution.json {key} differs from the worst scenario's")
    want = plan[s.mode]
    _objective_and_status(S, want, nothing[s.mode], v)
    worst_rec = next(r for r in recs if r["scenario"] == plan["worst_scenario"])
    return {**{k: x for k, x in worst_rec.items() if k != "scenario"}, "scenarios": recs,
            "objective": want, "worst": plan["worst"], "expected": plan["expected"]}


def _objective_and_status(S: dict, want: float, nothing: float, v: list[str]) -> None:
    obj, bound, gap = (_finite(S.get(k)) for k in ("objective", "bound", "gap"))
    if obj is not None and abs(obj - want) > HOLD * max(1.0, abs(want)) + 1e-5:
        v.append(f"objective {obj} differs from the robust weighted inhabitants without access {want:.3f} "
                 "recomputed")
    if want > nothing + HOLD * max(1.0, abs(nothing)) + 1e-5:
        v.append(f"the plan leaves {want:,.3f} weighted inhabitants without access (robust objective), more than "
                 f"doing nothing ({nothing:,.3f})")
    check_bound_and_gap(v, obj, bound, gap)
    check_long_plan_status(v, S, obj, bound)
