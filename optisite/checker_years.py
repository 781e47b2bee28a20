"""The independent checker of a multi-year plan (a result declaring ``years``).

Each year's rows of the long tables are checked as a single-year plan by
:class:`optisite.checker._Checker`, on that year's instance (the physicians the
retirement scenario leaves, an input of the plan like the instance's tables), against
that year's block of ``solution.json``; a new centre de santé's capacity is checked
ramped up by its age, recomputed here from the tables (the first year it appears) and
the parameters. Across years: a site opened stays open (or, when closing is allowed,
never reopens), salaried FTE hired each year within the limit, each year's cost with
its closings within the budget, the top level equal to the last year, and the
objective equal to the discounted weighted inhabitants without access summed over the
years, recomputed from each year's re-derived served shares.
"""

from __future__ import annotations

import math

import pandas as pd

from .checker import (_Checker, _close, _counted_population, _finite, _malformed, _summary_shape,
                      check_bound_and_gap, check_long_plan_status)
from .instance import Instance

HOLD = 2e-6  # relative: the solver's hold on the first objective (1e-6) and the tables' rounding

HEADLINE = ("population_total", "population_covered", "population_uncovered", "population_covered_before",
            "population_uncovered_before", "cost_total", "budget", "physician_days_per_week", "salaried_fte")


def _ramp(p, age: int) -> float:
    """Capacity share of a centre in its ``age``-th year open (own formula, models/phasing.md)."""
    first, years = float(p.centre_ramp_up_first_year), float(p.centre_ramp_up_years)
    if first >= 1.0 or years <= 0:
        return 1.0
    return min(1.0, first + (1.0 - first) * (age - 1) / years)


class _YearChecker(_Checker):
    """One year of the plan: the single-year rules, a centre's capacity ramped up by its age."""

    def __init__(self, *args, ramp: pd.Series, **kw):
        super().__init__(*args, **kw)
        self.ramp = ramp  # site_id -> capacity share this year

    def check_objective_and_status(self) -> None:
        """Checked once for the whole horizon (:func:`_objective_and_status`)."""

    def check_staffing(self) -> None:
        full = self.per_fte
        self.per_fte = full * self.ramp.reindex(self.cds.index).fillna(1.0)
        try:
            super().check_staffing()
        finally:
            self.per_fte = full


def check_years(instance: Instance, S: dict, R: dict, tables: dict, v: list[str]) -> dict:
    from .retirement import horizon, physicians_by_year, year_instance

    p = instance.parameters
    years = horizon(instance)
    blocks = S.get("years")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        v.append("solution.json has no 'years' list, though the plan declares years")
        return {"cost_total": math.nan, "population_covered": math.nan, "population_covered_before": math.nan}
    for b in blocks:
        if not isinstance(b.get("year"), int) or isinstance(b.get("year"), bool):
            raise _malformed("each entry of 'years' needs a whole 'year'", column="years")
        _summary_shape({"model": S.get("model"), "status": S.get("status"), **b})
    listed = [b.get("year") for b in blocks]
    if listed != years:
        v.append(f"solution.json years lists {listed}, not the horizon {years}")
    for name, frame in tables.items():
        if "year" not in frame.columns:
            v.append(f"{name} has no year column, though the plan declares years")
            return {"cost_total": math.nan, "population_covered": math.nan, "population_covered_before": math.nan}
        bad = ~pd.to_numeric(frame["year"], errors="coerce").isin(years)
        if bad.any():
            v.append(f"{name} has year '{frame['year'][bad].iloc[0]}', outside the horizon 1..{years[-1]}")
    by_year = {b.get("year"): b for b in blocks}
    physicians = physicians_by_year(instance)
    sites = tables["sites.csv"]
    first_open = sites.groupby("site_id")["year"].min() if len(sites) else pd.Series(dtype=float)
    R1 = {**R, "years": False}
    shared = {k: S[k] for k in ("model", "status", "options", "parameters", "instance") if k in S}
    want_obj = 0.0
    rec_years = []
    fte_prev = pd.Series(dtype=float)
    open_prev: set = set()
    for t in years:
        one = {name: frame[pd.to_numeric(frame["year"], errors="coerce") == t].drop(columns="year")
               .reset_index(drop=True) for name, frame in tables.items()}
        block = by_year.get(t) or {}
        S_t = {**shared, **{k: val for k, val in block.items() if k != "year"}, "result": R1}
        inst_t = year_instance(instance, physicians[t])
        ramp = pd.Series({sid: _ramp(p, int(t - first_open[sid] + 1)) for sid in one["sites.csv"]["site_id"]},
                         dtype=float)
        found: list[str] = []
        chk = _YearChecker(inst_t, S_t, R1, one, found, ramp=ramp)
        rec = chk.run()
        v.extend(f"year {t}: {x}" for x in found)
        pop = _counted_population(inst_t)
        weight = inst_t.zones["weight"].astype(float)
        want_obj += (1.0 + p.discount_rate) ** -(t - 1) * float((weight * pop * (1 - chk.share_after)).sum())
        rec_years.append({"year": t, **rec})
        # -- across years ----------------------------------------------------------------
        open_now = set(chk.s.index)
        closed = open_prev - open_now
        if closed and not p.allow_closing:
            v.append(f"year {t}: site '{sorted(closed)[0]}' opened in an earlier year is closed (allow_closing false)")
        reopened = {s for s in open_now - open_prev if s in first_open.index and first_open[s] < t}
        if reopened:
            v.append(f"year {t}: site '{sorted(reopened)[0]}' reopens after closing")
        closing = len(closed) * p.closing_cost if p.allow_closing else 0.0
        if p.allow_closing and rec["cost_total"] + closing > p.budget * (1 + 1e-9) + 1e-6:
            v.append(f"year {t}: cost {rec['cost_total']:,.2f} and closings {closing:,.2f} EUR exceed the "
                     f"budget of {p.budget:,.2f}")
        if "cost_closing" in block and not _close(block["cost_closing"], closing):
            v.append(f"year {t}: solution.json cost_closing {block['cost_closing']} differs from {closing:.2f}")
        fte_now = chk.cds["fte"].astype(float)
        hired = float((fte_now - fte_prev.reindex(fte_now.index).fillna(0.0)).clip(lower=0.0).sum())
        limit = float(p.max_new_salaried_fte_per_year)
        if hired > limit + 1e-9:
            v.append(f"year {t}: {hired:g} salaried FTE hired, above max_new_salaried_fte_per_year {limit:g}")
        fte_prev, open_prev = fte_now, open_now
    # -- the top level: the last year, the objective and the status ----------------------------
    last = by_year.get(years[-1]) or {}
    for key in HEADLINE + ("open_sites", "cost_by_item", "cost_by_funder", "sites_opened_by_kind"):
        if key in S and key in last and S[key] != last[key]:
            if all(isinstance(x, (int, float)) for x in (S[key], last[key])) and _close(S[key], last[key]):
                continue
            v.append(f"solution.json {key} differs from the last year's")
    _objective_and_status(S, want_obj, v)
    return {**rec_years[-1], "years": rec_years, "objective": want_obj}


def _objective_and_status(S: dict, want: float, v: list[str]) -> None:
    obj, bound, gap = (_finite(S.get(k)) for k in ("objective", "bound", "gap"))
    # The later stages hold the first objective within 1e-6 relative (solver.lexicographic), and
    # the tables are written to 10 digits: the plan's value may exceed the solver's by that much.
    if obj is not None and abs(obj - want) > HOLD * max(1.0, abs(want)) + 1e-5:
        v.append(f"objective {obj} differs from the discounted weighted inhabitant-years without access "
                 f"{want:.3f} recomputed")
    check_bound_and_gap(v, obj, bound, gap)
    check_long_plan_status(v, S, obj, bound)
