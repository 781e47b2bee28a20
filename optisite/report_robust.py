"""The report of a robust plan (a result declaring ``scenarios``): how the one plan does under
each retirement scenario, against doing nothing, with the worst and expected values. The
rest of the report (figures, map, lists) shows the scenario where the plan does worst.
Read from the long tables and ``solution.json`` only.
"""

from __future__ import annotations

from typing import Any

from .solution import Solution


def worst_scenario(sol: Solution) -> Solution:
    """The plan under its worst scenario as a single-year solution (the map and lists show it)."""
    k = (sol.summary.get("robust") or {}).get("worst_scenario") or str(sol.zones["scenario"].iloc[0])
    tables = {name: getattr(sol, name) for name in ("sites", "schedule", "practices", "assignment", "zones")}
    one = {name: (f[f["scenario"] == k].drop(columns="scenario").reset_index(drop=True)
                  if "scenario" in f.columns else f) for name, f in tables.items()}
    return Solution(summary=sol.summary, zone_geometry=sol.zone_geometry, instance=sol.instance, **one)


def robust_context(sol: Solution) -> dict[str, Any]:
    """What the template's 'Under each retirement scenario' section shows."""
    S = sol.summary
    r = S.get("robust") or {}
    rows = [{"scenario": b["scenario"], "weight": b.get("weight"), "before": b["population_uncovered_before"],
             "after": b["population_uncovered"], "gained": b["population_uncovered_before"] - b["population_uncovered"],
             "uncovered": b["uncovered"], "uncovered_before": b["uncovered_before"],
             "worst": b["scenario"] == r.get("worst_scenario")}
            for b in S.get("scenarios") or []]
    return {"mode": r.get("mode"), "year": r.get("year"), "worst": r.get("worst"), "expected": r.get("expected"),
            "worst_before": r.get("worst_before"), "expected_before": r.get("expected_before"),
            "worst_scenario": r.get("worst_scenario"), "rows": rows}
