r"""Multi-year phasing of the staffing plan while the GP supply retires.

One staffing model (``staffing.py``: days :math:`d_{pct}`, openings :math:`y_{ct}`,
:math:`o_{ht}`, FTE :math:`f_{ht}`, flows :math:`x_{zst}`, unmet demand :math:`u_{zt}`)
per year *t* = 1..Y, as a Pyomo block ``year[t]`` built by staffing's own functions on
that year's practices (physicians :math:`\Phi_{pt}` from the retirement scenario,
``optisite/retirement.py``), each with its annual budget; linked across years by

.. math::

    \text{open}_{st} - \text{open}_{s,t-1} = \sigma_{st} - \kappa_{st}, \quad
    \sum_t \sigma_{st} \le 1, \quad \kappa_{st} = 0 \text{ unless closing is allowed}

    \eta_{ht} \ge f_{ht} - f_{h,t-1}, \quad \sum_h \eta_{ht} \le L

    \sum_z x_{zht} \le k_S F W \left(r_a f_{ht} + (1 - r_a) N_h (1 - \sigma_{h,t-a+1})\right)
    \quad (a = 1..A, r_a < 1)

    \min \sum_t \delta_t \sum_z \frac{w_z P_z}{D_z} u_{zt}
    \quad\text{then}\quad \min \sum_t \delta_t (\text{cost}_t + \chi \sum_s \kappa_{st})

Symbols, columns and defaults: ``models/phasing.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ..errors import InputError
from ..levers import to_units
from ..rules import give_cap, practice_capacity
from ..retirement import age_shares, horizon, physicians_by_year, year_instance
from ..years import discount, ramp
from . import staffing
from .base import Context, Decisions, Finish, Model, Objective, ResultMeaning, register
from .coverage import cost_scale


@dataclass(frozen=True)
class PhasingData:
    """The numbers of one phasing model, independent of Pyomo."""

    years: tuple[int, ...]
    base: staffing.StaffingData  # sets and sites, from the instance's own supply
    per_year: dict  # year -> StaffingData with that year's physicians and days a practice may give
    physicians: pd.DataFrame  # practice x year
    ramp: tuple[float, ...]  # r_1..r_A: capacity share of a centre in its a-th year (all < 1)
    discount: dict  # year -> delta_t
    max_new_fte: float  # L
    allow_closing: bool
    closing_cost: float  # chi
    retirement_source: str
    start_plan: dict = field(default_factory=dict)  # 'decisions': the start's plan, for the fallback


def prepare(ctx: Context) -> PhasingData:
    """Staffing's data for each year of the horizon; refuses a horizon that is not whole years."""
    inst, o = ctx.instance, ctx.options
    p = inst.parameters
    if abs(p.horizon_years - round(p.horizon_years)) > 1e-9:
        raise InputError(f"horizon_years {p.horizon_years:g} is not a whole number of years",
                         column="horizon_years", fix="give --years as a whole number")
    ramp_on = p.centre_ramp_up_first_year < 1.0
    # The caps on days and FTE by reachable demand (staffing 'tighten') hold for every year's
    # liberal supply but not for a centre serving a share of its FTE: off with the ramp-up.
    base = staffing.prepare(inst, ctx.pairs, ctx.links, o.force_open, o.force_closed, tighten=not ramp_on)
    shares = age_shares(inst)
    phys = physicians_by_year(inst, shares)
    per_year = {}
    for t in horizon(inst):
        pr = year_instance(inst, phys[t]).practices
        # The days a practice may give, as staffing.prepare computes them, on that year's physicians.
        # rules.give_cap (DREES-counted capacity) in the presence unit of the days variable;
        # the practice's capacity follows its physicians that year.
        give = pd.Series(to_units(give_cap(p, pr), p, up=False), index=pr.index)
        practices = base.practices.copy()
        practices["physicians"] = pr["physicians"].reindex(practices.index).to_numpy(float)
        practices["give_cap"] = give.reindex(practices.index).astype(int).to_numpy()
        practices["capacity"] = (practice_capacity(p, pr) / base.unit).reindex(practices.index).to_numpy(float)
        per_year[t] = replace(base, practices=practices)
    ages = []
    age = 1
    while ramp_on and ramp(p, age) < 1.0 and age <= len(per_year):
        ages.append(ramp(p, age))
        age += 1
    years = tuple(horizon(inst))
    return PhasingData(years=years, base=base, per_year=per_year, physicians=phys, ramp=tuple(ages),
                       discount={t: float(discount(p, t)) for t in years},
                       max_new_fte=float(p.max_new_salaried_fte_per_year), allow_closing=bool(p.allow_closing),
                       closing_cost=float(p.closing_cost), retirement_source=shares.source)


def build(data: PhasingData) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel(name="phasing")
    b0 = data.base
    m.cost_scale = cost_scale(np.concatenate([
        b0.cabinets["fixed_cost"].to_numpy(), b0.centres["fixed_cost"].to_numpy(),
        b0.weeks * b0.cabinets["cost_per_day"].to_numpy(), b0.centres["cost_per_fte"].to_numpy(),
        [data.closing_cost] if data.allow_closing and data.closing_cost > 0 else []]))
    m.T = pyo.Set(initialize=list(data.years), ordered=True)
    m.year = pyo.Block(m.T)
    for t in data.years:
        b, dt = m.year[t], data.per_year[t]
        b.cost_scale = m.cost_scale
        staffing.add_sets(b, dt)
        staffing.add_variables(b, dt)
        staffing.add_constraints(b, dt)
        staffing.add_objectives(b, dt)
    add_links(m, data)
    add_objectives(m, data)
    return m


def _open(m, s, t):
    b = m.year[t]
    return b.y[s] if s in b.C else b.o[s]


def add_links(m, data: PhasingData) -> None:
    """Openings, closings, hiring and ramp-up across years."""
    years = list(data.years)
    cab, cds = list(data.base.cabinets.index), list(data.base.centres.index)
    m.S = pyo.Set(initialize=cab + cds, ordered=True)
    m.H = pyo.Set(initialize=cds, ordered=True)
    m.start = pyo.Var(m.S, m.T, domain=pyo.Binary)
    m.close = pyo.Var(m.S, m.T, domain=pyo.Binary)
    prev = {t: years[i - 1] if i else None for i, t in enumerate(years)}

    def opening(m, s, t):
        before = 0 if prev[t] is None else _open(m, s, prev[t])
        return _open(m, s, t) - before == m.start[s, t] - m.close[s, t]

    m.opening = pyo.Constraint(m.S, m.T, rule=opening)
    m.once = pyo.Constraint(m.S, rule=lambda m, s: sum(m.start[s, t] for t in m.T) <= 1)
    if not data.allow_closing:
        for v in m.close.values():
            v.fix(0)
    # Salaried FTE hired each year.
    m.hire = pyo.Var(m.H, m.T, domain=pyo.NonNegativeReals)
    m.hire_def = pyo.Constraint(m.H, m.T, rule=lambda m, h, t: m.hire[h, t] >= m.year[t].f[h] - (
        0 if prev[t] is None else m.year[prev[t]].f[h]))
    m.hiring = pyo.Constraint(m.T, rule=lambda m, t: sum(m.hire[h, t] for h in m.H) <= data.max_new_fte
                              if len(cds) else pyo.Constraint.Skip)
    # A new centre's capacity ramps up: in its a-th year it serves r_a of its FTE's capacity.
    kf = data.base.per_fte
    maxf = data.base.centres["max_fte"].to_dict()
    rows = [(h, t, tau) for h in cds for t in years for tau in years
            if tau <= t and t - tau + 1 <= len(data.ramp)]

    def ramp_rule(m, h, t, tau):
        b = m.year[t]
        zs = b._flows_to.get(h, ())
        if not zs:
            return pyo.Constraint.Skip
        r = data.ramp[t - tau]
        return sum(b.x[z, h] for z in zs) <= kf * (r * b.f[h] + (1 - r) * maxf[h] * (1 - m.start[h, tau]))

    m.ramp = pyo.Constraint(pyo.Set(dimen=3, initialize=rows, ordered=True), rule=ramp_rule)
    # Closing costs count in the year's budget.
    m.cost_closing = pyo.Expression(m.T, rule=lambda m, t: data.closing_cost * sum(m.close[s, t] for s in m.S))
    s = m.cost_scale
    closing = data.allow_closing and data.closing_cost > 0

    def budget(m, t):
        b = m.year[t]
        if not closing or not hasattr(b, "budget"):
            return pyo.Constraint.Skip
        b.budget.deactivate()  # replaced by the same row with the year's closings
        return (b.cost + m.cost_closing[t]) / s <= data.per_year[t].budget / s

    m.budget_closing = pyo.Constraint(m.T, rule=budget)


def add_objectives(m, data: PhasingData) -> None:
    d = data.discount
    m.uncovered = pyo.Expression(expr=sum(d[t] * m.year[t].uncovered for t in m.T))
    m.cost = pyo.Expression(expr=sum(d[t] * (m.year[t].cost + m.cost_closing[t]) for t in m.T))


def decisions(m, data: PhasingData) -> Decisions:
    """Each year's days, FTE and flows as long tables (a ``year`` column; FTE indexed (site, year))."""
    days, fte, flows = [], [], []
    for t in data.years:
        dec = staffing.decisions(m.year[t], data.per_year[t])
        days.append(dec.days.assign(year=t))
        f = dec.fte.copy()
        f.index = pd.MultiIndex.from_arrays([f.index, [t] * len(f)], names=["site_id", "year"])
        fte.append(f)
        flows.append(dec.flows.assign(year=t))
    days_l = pd.concat(days, ignore_index=True)
    fte_l = pd.concat(fte) if fte else pd.Series(dtype=float)
    opened = sorted(set(days_l["site_id"]) | set(fte_l.index.get_level_values("site_id")))
    return Decisions(open_sites=opened, days=days_l, fte=fte_l.astype(float), flows=pd.concat(flows, ignore_index=True))


START_SHARE = 0.7  # of the time left after the do-nothing LPs, given to the year-by-year start
LINKS = ("opening", "hire_def", "hiring", "ramp", "budget_closing")  # rows indexed by year (position YEAR_AT)
YEAR_AT = {"opening": 1, "hire_def": 1, "hiring": 0, "ramp": 1, "budget_closing": 0}


def _row_year(name: str, index) -> int:
    return index if not isinstance(index, tuple) else index[YEAR_AT[name]]


def forward_start(ctx: Context, data: PhasingData, m) -> list:
    """A MIP start planned year by year (a rolling horizon): year 1's staffing model alone,
    its decisions fixed, then year 2's with the sites already open, the FTE already hired
    and the centres' ages, and so on; each year within START_SHARE / Y of the time left.
    A year that finds no plan in time keeps the feasible start written for it. ``m`` holds the
    plan; the model is left as built. Empty without the do-nothing flows or with sites forced open."""
    left = ctx.deadline.left()
    until = None if left is None else ctx.deadline.elapsed() + left * START_SHARE
    base = ctx.baseline
    if base is None:
        return []
    # Each year's MIP start: its status quo, then the year before's decisions (feasible points).
    for t in data.years:
        if not staffing.status_quo_start(m.year[t], data.per_year[t], base[base["year"] == t].drop(columns="year")):
            return []  # sites forced open: no status quo
    for var in (m.start, m.close, m.hire):
        for v in var.values():
            if not v.fixed:
                v.set_value(0, skip_validation=True)
    rows = {name: getattr(m, name) for name in LINKS}
    off = [c for name, comp in rows.items() for i, c in comp.items() if c.active and _row_year(name, i) > 1]
    for c in off:
        c.deactivate()
    for t in data.years:
        m.year[t].deactivate()
    fixed: list = []
    stages: list = []
    try:
        for t in data.years:
            b = m.year[t]
            b.activate()
            for c in off:
                if c.active is False and _row_year(*_name_index(c)) == t:
                    c.activate()
            ctx.say(f"start: planning year {t} given the years before")
            if t > data.years[0]:
                _carry(m, data, t)
            per_year = None if until is None else max(0.05, (until - ctx.deadline.elapsed()) / (data.years[-1] - t + 1))
            _future_rows(m, data, t)
            got = ctx.solver.lexicographic(
                m, [Objective(f"start: year {t}", b.uncovered), Objective(f"start: year {t} cost", b.cost / m.cost_scale,
                                                                            m.cost_scale)],
                canonical=False, time_limit=per_year, watch=False, warm_start=True)
            stages.extend(got)
            future = {k: int(round(v.value or 0.0)) for k, v in m._future.e.items()}
            m.del_component(m._future)
            if not got[0].has_solution:  # the start written for the year is feasible: keep it
                ctx.say(f"start: no plan for year {t} in time, it keeps the year before's sites")
            m._carry_days = future
            for v in list(b.d.values()) + list(b.y.values()) + list(b.f.values()) + list(b.o.values()) \
                    + [m.start[s, t] for s in m.S] + [m.close[s, t] for s in m.S]:
                if not v.fixed:
                    v.fix(round(v.value or 0.0))
                    fixed.append(v)
            for h in m.H:
                m.hire[h, t].fix(m.hire[h, t].value or 0.0)
                fixed.append(m.hire[h, t])
            b.deactivate()
    finally:
        for v in fixed:
            v.unfix()
        for t in data.years:
            m.year[t].activate()
        for c in off:
            c.activate()
    return stages


QUO_ZERO = 1e-6  # person-years: below this, opening nothing leaves nobody out (flows round off at 1e-10)

YEAR_BY_YEAR_METHOD = ("year by year: the discounted sum of each year's staffing bound (the Lagrangian "
                       "of the capacity rows), each year's plan being a staffing plan of that year")


def year_by_year_bound(ctx: Context, data: PhasingData) -> tuple[float, str] | None:
    """Σ_t δ_t LB_t, LB_t the Lagrangian bound of year t's staffing model (any multipliers
    give a valid one, so a clock stop only weakens it); None when a year has no bound
    (levers on, or no time)."""
    from ..solver import StageResult
    from .staffing_bound import lagrangian_bound

    total = 0.0
    years = list(data.years)
    for k, t in enumerate(years):
        left = ctx.deadline.left()
        if left is not None and left < 0.5:
            return None
        dt = data.per_year[t]
        t0 = time.perf_counter()
        try:
            share = None if left is None else 0.5 * left / (len(years) - k)
            r = lagrangian_bound(dt, time_limit=60.0 if share is None else share)
        except ValueError:  # levers it does not model
            return None
        ctx.extra_stages.append(StageResult(name=f"bound: year {t}, Lagrangian of the capacity rows",
                                            status="time_limit" if r.stopped_by_clock else "optimal",
                                            bound=float(r.bound), seconds=time.perf_counter() - t0,
                                            extra={"master_rounds": r.iterations}))
        if not np.isfinite(r.bound):
            return None
        total += data.discount[t] * max(0.0, float(r.bound))
    return total, YEAR_BY_YEAR_METHOD


def _status_quo(ctx: Context, data: PhasingData, m) -> float | None:
    """Writes "open nothing in any year" (each year's existing-supply flows) into ``m`` and
    returns its objective; None without the do-nothing flows or with sites forced open."""
    base = ctx.baseline
    if base is None or not all(staffing.status_quo_start(m.year[t], data.per_year[t],
                                                         base[base["year"] == t].drop(columns="year"))
                               for t in data.years):
        return None
    for var in (m.start, m.close, m.hire):
        for v in var.values():
            if not v.fixed:
                v.set_value(0, skip_validation=True)
    return float(pyo.value(m.uncovered))


def _future_rows(m, data: PhasingData, t: int) -> None:
    """Rows that keep every later year feasible while year ``t`` is planned alone: the
    cabinets open in year ``t`` can get exactly their minimum presence from the days the practices
    may still give in the last year (the fewest: physicians only decrease). A transportation
    problem with integer data: its continuous solution can be taken whole (Decisions
    staying open then fit every later year's budget at no more cost)."""
    b = m.year[t]
    give = data.per_year[data.years[-1]].practices["give_cap"].to_dict()
    mind = data.base.cabinets["min_days"].to_dict()
    blk = pyo.Block(concrete=True)
    m.add_component("_future", blk)
    carried = getattr(m, "_carry_days", {}) if t > data.years[0] else {}
    blk.e = pyo.Var(list(b.A), domain=pyo.NonNegativeReals, initialize=lambda k, p, c: carried.get((p, c), 0))
    blk.give = pyo.Constraint([p for p in b.P if p in b._days_from],
                              rule=lambda k, p: sum(blk.e[p, c] for c in b._days_from[p]) <= give[p])
    blk.staff = pyo.Constraint(list(b.C), rule=lambda k, c: sum(blk.e[p, c] for p in b._days_to.get(c, ()))
                               == max(mind[c], 1) * b.y[c])


def _carry(m, data: PhasingData, t: int) -> None:
    """Year ``t``'s MIP start: the sites and FTE of the year before, each open cabinet at the
    minimum presence found by :func:`_future_rows`, the practices' flows of the year's status
    quo cut to what their days left can serve, the rest unmet (a feasible point)."""
    b, a = m.year[t], m.year[t - 1]
    days = getattr(m, "_carry_days", {})
    for (p, c), v in b.d.items():
        v.set_value(days.get((p, c), 0), skip_validation=True)
    out = {}
    for (p, c), d in days.items():
        out[p] = out.get(p, 0) + d
    dt = data.per_year[t]
    kd, F = dt.per_day, dt.days_per_fte
    phys = dt.practices["physicians"].to_dict()
    for p, zs in b._flows_to.items():
        if p not in phys:
            continue
        served = sum(b.x[z, p].value or 0.0 for z in zs)
        room = kd * (F * phys[p] - out.get(p, 0))
        k = 1.0 if served <= room else max(0.0, room) / served
        for z in zs:
            b.x[z, p].set_value((b.x[z, p].value or 0.0) * k * (1 - 1e-9), skip_validation=True)
    # The open sites keep the year before's flows, cut to this year's capacity (ramp-up included).
    cab_days = {}
    for (p, c), d in days.items():
        cab_days[c] = cab_days.get(c, 0) + d
    for s, zs in b._flows_to.items():
        if s in b.C and round(a.y[s].value or 0):
            cap = kd * cab_days.get(s, 0)
        elif s in b.H and round(a.o[s].value or 0):
            opened = min(u for u in data.years if u < t and round(m.year[u].o[s].value or 0))
            age = t - opened + 1
            r = data.ramp[age - 1] if age <= len(data.ramp) else 1.0
            cap = dt.per_fte * r * round(a.f[s].value or 0)
        else:
            continue
        flows = {z: a.x[z, s].value or 0.0 for z in zs}
        total = sum(flows.values())
        k = 1.0 if total <= cap else max(0.0, cap) / total
        for z in zs:
            b.x[z, s].set_value(flows[z] * k * (1 - 1e-9), skip_validation=True)
    for z, v in b.u.items():
        srcs = b._flows_from.get(z, ())
        got = sum(b.x[z, s].value or 0.0 for s in srcs)
        dem = float(dt.zones.at[z, "demand"])
        if got > dem:  # practices and sites both serve the zone: cut to its demand
            for s in srcs:
                b.x[z, s].set_value((b.x[z, s].value or 0.0) * dem / got * (1 - 1e-9), skip_validation=True)
            got = sum(b.x[z, s].value or 0.0 for s in srcs)
        v.set_value(max(0.0, dem - got), skip_validation=True)
    for c, v in b.y.items():
        v.set_value(round(a.y[c].value or 0), skip_validation=True)
    for h, v in b.f.items():
        v.set_value(round(a.f[h].value or 0), skip_validation=True)
        b.o[h].set_value(round(a.o[h].value or 0), skip_validation=True)
    for s in m.S:
        m.start[s, t].set_value(0, skip_validation=True)
        m.close[s, t].set_value(0, skip_validation=True)
    for h in m.H:
        m.hire[h, t].set_value(0, skip_validation=True)


def _name_index(c) -> tuple[str, object]:
    return c.parent_component().local_name, c.index()


@register
class Phasing(Model):
    """Staffing over several years while GPs retire: what to open when."""

    name = "phasing"
    title = ("multi-year staffing plan while GPs retire: fewest inhabitants without access summed "
             "over the years, decisions per year")
    objective_unit = "weighted inhabitant-years without access"
    result = ResultMeaning(access="flows", objective="weighted_uncovered", capacities=True, apl=False,
                           years=True)
    document = "models/phasing.md"

    def prepare(self, ctx: Context) -> PhasingData:
        return prepare(ctx)

    def build(self, data: PhasingData):
        return build(data)

    def describe(self, data: PhasingData) -> str:
        b = data.base
        return (f"building phasing model ({len(data.years)} years, {len(b.cabinets)} cabinets, "
                f"{len(b.centres)} centres, {len(b.links)} practice-cabinet links, {len(b.flows)} demand pairs a year)")

    def objectives(self, m) -> list[Objective]:
        return [Objective("uncovered", m.uncovered, floor=0.0),
                Objective("cost", m.cost / m.cost_scale, m.cost_scale, floor=0.0)]

    # A fifth of the search's seconds is kept for the bound: on Nièvre at 5 years HiGHS
    # proved no bound on the whole horizon in 60 s (benchmarks/results/phasing_speed.md).
    bound_share = 0.2
    bound_share_from_s = 0.0

    def bound(self, ctx: Context, data: PhasingData, m, stages: list) -> tuple[float, str] | None:
        """Year by year: each year's block is the staffing model of that year's supply and
        budget with more rows (sites kept, hires capped, centres ramping up), so the
        discounted sum of the years' staffing bounds is a bound on the whole horizon."""
        return year_by_year_bound(ctx, data)

    def highs_options(self, m) -> tuple[dict, str | None]:
        return staffing.Staffing.highs_options(self, m)

    def baseline_flows(self, ctx: Context, data: PhasingData) -> pd.DataFrame | None:
        out = []
        for t in data.years:
            flows = staffing.status_quo_flows(ctx, data.per_year[t], name=f"existing supply alone, year {t}")
            out.append(flows.assign(year=t))
        return pd.concat(out, ignore_index=True)

    def start(self, ctx: Context, data: PhasingData, m) -> list:
        """The better of two starts: the plan made year by year (:func:`forward_start`) and
        opening nothing in any year, with the existing supply's flows of each year. When
        opening nothing already leaves nobody without access in any year, that is stage 1's
        optimum and the year-by-year plan is not searched (it took 45 s on Ille-et-Vilaine)."""
        from ..solver import StageResult

        quo = _status_quo(ctx, data, m)
        if quo is not None and quo <= QUO_ZERO:
            return [StageResult(name="start: status quo (open nothing, every year)", status="feasible",
                                objective=quo, has_solution=True)]
        forward = forward_start(ctx, data, m)
        if forward:
            planned = float(pyo.value(m.uncovered))
            saved = {id(v): v.value for v in m.component_data_objects(pyo.Var)}
            quo = _status_quo(ctx, data, m)
        if forward and (quo is None or planned <= quo):
            for v in m.component_data_objects(pyo.Var):
                v.set_value(saved[id(v)], skip_validation=True)
            data.start_plan["decisions"] = decisions(m, data)
            return forward + [StageResult(name="start: planned year by year", status="feasible",
                                          objective=planned, has_solution=True)]
        if quo is None:
            return []
        return [StageResult(name="start: status quo (open nothing, every year)", status="feasible",
                            objective=quo, has_solution=True)]

    def decisions(self, ctx: Context, data: PhasingData, m) -> Decisions:
        return decisions(m, data)

    def fallback(self, ctx: Context, data: PhasingData) -> tuple[Decisions, str]:
        """The plan made year by year when HiGHS found none on the whole horizon in time
        (a feasible plan, never worse than doing nothing: else it was not kept as the start)."""
        if "decisions" in data.start_plan:
            return data.start_plan["decisions"], ("the one made year by year, given to HiGHS as its start: "
                                                  "feasible, but not optimised over the whole horizon")
        return super().fallback(ctx, data)

    def finish(self, ctx: Context, data: PhasingData, tables: dict, summary: dict) -> Finish:
        fin = super().finish(ctx, data, tables, summary)
        p = ctx.instance.parameters
        fin.warnings.append(
            f"retirement scenario '{p.retirement_scenario}' over {len(data.years)} years; ages of the GPs: "
            f"{data.retirement_source}; physicians {data.physicians.iloc[:, 0].sum():,.1f} FTE in year 1, "
            f"{data.physicians.iloc[:, -1].sum():,.1f} in year {data.years[-1]} (nobody replaces them)")
        return fin
