r"""Part-time staffing of cabinets secondaires and salaried centres de santé.

Decisions: integer physician-days per week :math:`d_{pc}` sent by practice *p* to
cabinet secondaire *c* (within the GP travel limit), opening :math:`y_c`, integer
salaried FTE :math:`f_h` and opening :math:`o_h` of centre de santé *h*, demand
flows :math:`x_{zs}` from zone *z* to any source *s* within the coverage cutoff,
unmet demand :math:`u_z`.

.. math::

    \min \sum_z \frac{w_z P_z}{D_z} u_z \quad\text{then}\quad \min \text{cost}

    \sum_c d_{pc} \le G_p, \quad
    m_c y_c \le \sum_p d_{pc} \le M_c y_c, \quad
    n_h o_h \le f_h \le N_h o_h

    \sum_z x_{zc} \le k_L W \sum_p d_{pc}, \quad
    \sum_z x_{zh} \le k_S F W f_h, \quad
    \sum_z x_{zp} \le K_p - k_L W \sum_c d_{pc}

    \sum_s x_{zs} + u_z = D_z, \qquad
    \sum_c a_c y_c + \sum_h a_h o_h + W \sum_{pc} e_c d_{pc} + \sum_h g_h f_h \le B

Symbols, columns and defaults are listed in ``models/staffing.md``. Flows are in
inhabitant-equivalents (consultations / consultations_per_inhabitant) so that
objective coefficients are about 1; cost rows are scaled by a power of ten.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from .. import levers as lever
from ..errors import InfeasibleError
from ..instance import Instance
from ..parameters import Parameters
from ..rules import give_cap, per_liberal_weekly_day, per_salaried_fte, practice_capacity, site_cost
from .base import Context, Decisions, Model, Objective, ResultMeaning, check_budget, register
from .coverage import cost_scale


@dataclass(frozen=True)
class StaffingData:
    """The numbers of one staffing model, independent of Pyomo."""

    practices: pd.DataFrame  # physicians, give_cap (int days/week), capacity (model units, rules.practice_capacity)
    cabinets: pd.DataFrame  # fixed_cost, cost_per_day, min_days, max_days (int)
    centres: pd.DataFrame  # fixed_cost, cost_per_fte, min_fte, max_fte (int)
    links: pd.DataFrame  # practice_id, site_id, minutes
    flows: pd.DataFrame  # zone_id, source_id, source_kind, minutes
    zones: pd.DataFrame  # demand (model units), penalty (objective coefficient per unit)
    unit: float  # consultations per model flow unit
    per_day: float  # model units of capacity per weekly liberal physician-day
    per_fte: float  # model units of capacity per salaried FTE
    days_per_fte: float  # units of d in one FTE's week or month (5, or 5 x 52/12 in months)
    weeks: float
    budget: float
    force_open: tuple[str, ...]
    force_closed: tuple[str, ...]
    parameters: Parameters
    levers: lever.Levers | None = None  # the Cour's levers (optisite/levers.py); None: all off
    presence_weeks: float = 1.0  # days a week per unit of d (presence_unit: 1, or 12/52 for a month)


def prepare(instance: Instance, flows: pd.DataFrame, links: pd.DataFrame,
            force_open=(), force_closed=(), *, tighten: bool = True) -> StaffingData:
    """Reduce the instance to the model's sets; refuse forced decisions that cannot hold."""
    p = instance.parameters
    unit = p.consultations_per_inhabitant
    z = instance.zones
    zones = pd.DataFrame({"demand": z["demand"] / unit, "population": z["population"], "weight": z["weight"]})
    zones = zones[(zones["demand"] > 0) & (zones["population"] * zones["weight"] > 0)]
    zones["penalty"] = zones["weight"] * zones["population"] / zones["demand"]

    pr = instance.practices
    lv = lever.prepare(instance, force_open)
    give = lever.to_units(give_cap(p, pr), p, up=False)
    practices = pd.DataFrame({"physicians": pr["physicians"], "give_cap": give.astype(int),
                              "capacity": practice_capacity(p, pr) / unit,
                              "zone_id": pr["zone_id"]})

    sites = instance.sites
    cab = sites[sites["kind"] == "cabinet_secondaire"]
    cds = sites[sites["kind"] == "centre_de_sante"]
    cabinets = pd.DataFrame({
        "fixed_cost": cab["fixed_cost"], "cost_per_day": cab["cost_per_day"],
        "min_days": lever.to_units(cab["min_days"], p, up=True),
        "max_days": lever.to_units(cab["max_days"], p, up=False),
    })
    centres = pd.DataFrame({
        "fixed_cost": cds["fixed_cost"], "cost_per_fte": cds["cost_per_fte"],
        "min_fte": np.ceil(cds["min_fte"] - 1e-9).astype(int),
        "max_fte": np.floor(cds["max_fte"] + 1e-9).astype(int),
    })

    forced_open, forced_closed = set(force_open), set(force_closed)
    links = links[links["practice_id"].isin(practices.index[practices["give_cap"] >= 1])]
    links = links[~links["site_id"].isin(forced_closed)]
    flows = flows[flows["zone_id"].isin(zones.index) & ~flows["source_id"].isin(forced_closed)]
    # A cabinet is usable if some practice can staff it at its minimum and some zone reaches it.
    reach_days = links.merge(practices["give_cap"], left_on="practice_id", right_index=True)
    reach_days = reach_days.groupby("site_id")["give_cap"].sum()
    staffable = cabinets.index[(cabinets["max_days"] >= np.maximum(cabinets["min_days"], 1))
                               & (reach_days.reindex(cabinets.index).fillna(0) >= np.maximum(cabinets["min_days"], 1))]
    for sid in sorted(forced_open & set(cabinets.index)):
        if sid not in staffable:
            raise InfeasibleError(
                f"forced-open cabinet secondaire '{sid}' cannot reach its minimum presence of "
                f"{cabinets.at[sid, 'min_days']} day(s)/week: the practices within "
                f"{p.max_travel_minutes:g} min can give {int(reach_days.get(sid, 0))} (constraint 'open_min')")
    for sid in sorted(forced_open & set(centres.index)):
        if centres.at[sid, "max_fte"] < max(centres.at[sid, "min_fte"], 1):
            raise InfeasibleError(f"forced-open centre de santé '{sid}' has max_fte below min_fte "
                                  "(constraint 'fte_min')")
    reached = set(flows["source_id"])
    cabinets = cabinets.loc[[c for c in staffable if c in reached or c in forced_open]]
    centres = centres.loc[[h for h in centres.index if h not in forced_closed
                           and centres.at[h, "max_fte"] >= max(centres.at[h, "min_fte"], 1)
                           and (h in reached or h in forced_open)]]
    links = links[links["site_id"].isin(cabinets.index)].reset_index(drop=True)
    keep = (flows["source_kind"] == "practice") | flows["source_id"].isin(cabinets.index) | flows["source_id"].isin(centres.index)
    flows = flows[keep].reset_index(drop=True)

    per_day = per_liberal_weekly_day(p) * lv.presence_weeks / unit  # per unit of d
    per_fte = per_salaried_fte(p) / unit
    if tighten:
        # Staffing beyond what the reachable demand can absorb covers nobody and only costs:
        # cap days and FTE at that (never below the minimum presence). This tightens the
        # opening links (issue 6) without changing the lexicographic optimum. Not valid for
        # the apl model, where supply counts whether or not demand absorbs it.
        reach = flows.merge(zones["demand"], left_on="zone_id", right_index=True).groupby("source_id")["demand"].sum()
        need_days = np.ceil(reach.reindex(cabinets.index).fillna(0.0) / per_day - 1e-9).astype(int)
        give_days = reach_days.reindex(cabinets.index).fillna(0).astype(int)
        cabinets["max_days"] = np.minimum(cabinets["max_days"],
                                          np.maximum(np.minimum(need_days, give_days), np.maximum(cabinets["min_days"], 1)))
        need_fte = np.ceil(reach.reindex(centres.index).fillna(0.0) / per_fte - 1e-9).astype(int)
        centres["max_fte"] = np.minimum(centres["max_fte"], np.maximum(need_fte, np.maximum(centres["min_fte"], 1)))
    data = StaffingData(
        practices=practices, cabinets=cabinets, centres=centres, links=links, flows=flows,
        zones=zones, unit=unit, per_day=per_day, per_fte=per_fte,
        days_per_fte=p.days_per_fte / lv.presence_weeks,  # in units of d: a practice's full time
        weeks=p.working_weeks * lv.presence_weeks, budget=float(p.budget),
        force_open=tuple(sorted(forced_open)), force_closed=tuple(sorted(forced_closed)), parameters=p,
        levers=lv, presence_weeks=lv.presence_weeks,
    )
    lever.check_forced(lv, data)
    check_budget(minimum_costs(data), list(data.force_open), data.budget,
                 unusable=_why_no_cabinet(p, len(cab), len(cabinets)))
    return data


def _why_no_cabinet(p, candidates: int, usable: int) -> str | None:
    """Why no cabinet secondaire of the instance can be staffed, naming the parameter when
    one forbids it (None when some can, or there are none)."""
    if candidates == 0 or usable > 0:
        return None
    for name, why in (("max_travel_minutes", "no GP may travel to a cabinet secondaire"),
                      ("max_secondary_days_per_gp", "no GP may give a day away"),
                      ("cabinet_max_days", "a cabinet secondaire may open no day")):
        if getattr(p, name) == 0:
            return f"no cabinet secondaire can be staffed: {name} is 0 ({why})"
    return (f"no cabinet secondaire can be staffed: no practice within max_travel_minutes "
            f"({p.max_travel_minutes:g} min) of a candidate can give its minimum presence (cabinet_min_days)")


def minimum_costs(data: StaffingData) -> pd.Series:
    """Cheapest annual cost of opening each usable site (fixed + its minimum staffing)."""
    c, h = data.cabinets, data.centres
    cab = site_cost(data.parameters, c["fixed_cost"], c["cost_per_day"],
                    np.maximum(c["min_days"], 1) * data.presence_weeks, 0.0, 0.0)
    cds = site_cost(data.parameters, h["fixed_cost"], 0.0, 0.0, h["cost_per_fte"], np.maximum(h["min_fte"], 1))
    return pd.concat([cab, cds]).sort_index()


def build(data: StaffingData, *, objectives: bool = True) -> pyo.ConcreteModel:
    """The staffing model; ``objectives=False`` leaves its objective to a model built on top (apl)."""
    m = pyo.ConcreteModel(name="staffing")
    m.cost_scale = cost_scale(np.concatenate([
        data.cabinets["fixed_cost"].to_numpy(), data.centres["fixed_cost"].to_numpy(),
        data.weeks * data.cabinets["cost_per_day"].to_numpy(), data.centres["cost_per_fte"].to_numpy()]))
    add_sets(m, data)
    add_variables(m, data)
    add_constraints(m, data)
    if objectives:
        add_objectives(m, data)
    return m


def add_sets(m, data: StaffingData) -> None:
    m.P = pyo.Set(initialize=list(data.practices.index), ordered=True)
    m.C = pyo.Set(initialize=list(data.cabinets.index), ordered=True)
    m.H = pyo.Set(initialize=list(data.centres.index), ordered=True)
    m.Z = pyo.Set(initialize=list(data.zones.index), ordered=True)
    m.A = pyo.Set(dimen=2, initialize=list(zip(data.links["practice_id"], data.links["site_id"])), ordered=True)
    m.X = pyo.Set(dimen=2, initialize=list(zip(data.flows["zone_id"], data.flows["source_id"])), ordered=True)
    # Sparse adjacency, built once with pandas (no double loops).
    m._days_from = data.links.groupby("practice_id")["site_id"].apply(list).to_dict()
    m._days_to = data.links.groupby("site_id")["practice_id"].apply(list).to_dict()
    m._flows_to = data.flows.groupby("source_id")["zone_id"].apply(list).to_dict()
    m._flows_from = data.flows.groupby("zone_id")["source_id"].apply(list).to_dict()


def add_variables(m, data: StaffingData) -> None:
    add_plan_variables(m, data)
    add_flow_variables(m, data, m)
    fix_forced(m, data)


def add_plan_variables(m, data: StaffingData) -> None:
    """The plan's decisions: days ``d``, cabinet openings ``y``, FTE ``f``, centre openings ``o``."""
    give = data.practices["give_cap"].to_dict()
    maxd = data.cabinets["max_days"].to_dict()
    maxf = data.centres["max_fte"].to_dict()
    m.d = pyo.Var(m.A, domain=pyo.NonNegativeIntegers, bounds=lambda m, p, c: (0, min(give[p], maxd[c])))
    m.y = pyo.Var(m.C, domain=pyo.Binary)
    m.f = pyo.Var(m.H, domain=pyo.NonNegativeIntegers, bounds=lambda m, h: (0, maxf[h]))
    m.o = pyo.Var(m.H, domain=pyo.Binary)


def add_flow_variables(b, data: StaffingData, plan) -> None:
    """Demand flows ``x`` and unmet demand ``u`` on block ``b`` (the sets are ``plan``'s):
    the model's own, or one scenario's block of the robust model (``staffing_robust.py``)."""
    dem = data.zones["demand"].to_dict()
    b.x = pyo.Var(plan.X, domain=pyo.NonNegativeReals)
    b.u = pyo.Var(plan.Z, bounds=lambda _b, z: (0, dem[z]))


def fix_forced(m, data: StaffingData) -> None:
    for s in data.force_open:
        if s in m.C:
            m.y[s].fix(1)
        elif s in m.H:
            m.o[s].fix(1)


def add_constraints(m, data: StaffingData) -> None:
    add_plan_rows(m, data)
    add_flow_rows(m, data, m)
    add_cost_rows(m, data)


def _days_out(m, p):
    return sum(m.d[p, c] for c in m._days_from.get(p, ()))


def _days_in(m, c):
    return sum(m.d[p, c] for p in m._days_to.get(c, ()))


def add_plan_rows(m, data: StaffingData) -> None:
    """Days a practice may give, minimum and maximum presence, FTE bounds."""
    give = data.practices["give_cap"].to_dict()
    mind, maxd = data.cabinets["min_days"].to_dict(), data.cabinets["max_days"].to_dict()
    minf, maxf = data.centres["min_fte"].to_dict(), data.centres["max_fte"].to_dict()
    out_ = m._days_from
    m.give = pyo.Constraint([p for p in m.P if p in out_], rule=lambda m, p: _days_out(m, p) <= give[p])
    m.open_min = pyo.Constraint(m.C, rule=lambda m, c: _days_in(m, c) >= max(mind[c], 1) * m.y[c])
    m.open_max = pyo.Constraint(m.C, rule=lambda m, c: _days_in(m, c) <= maxd[c] * m.y[c])
    m.fte_min = pyo.Constraint(m.H, rule=lambda m, h: m.f[h] >= max(minf[h], 1) * m.o[h])
    m.fte_max = pyo.Constraint(m.H, rule=lambda m, h: m.f[h] <= maxf[h] * m.o[h])


def add_flow_rows(b, data: StaffingData, plan) -> None:
    """Capacities and demand on block ``b``'s flows ``x``, ``u``, with the days and FTE of
    ``plan`` (the model itself, or the robust model's shared plan) and ``data``'s practices."""
    cap = data.practices["capacity"].to_dict()
    dem = data.zones["demand"].to_dict()
    kd, kf = data.per_day, data.per_fte
    to_, from_ = plan._flows_to, plan._flows_from

    def served(b, s):
        return sum(b.x[z, s] for z in to_.get(s, ()))

    b.cap_cabinet = pyo.Constraint(plan.C, rule=lambda b, c: served(b, c) <= kd * _days_in(plan, c))
    b.cap_centre = pyo.Constraint(plan.H, rule=lambda b, h: served(b, h) <= kf * plan.f[h])
    b.cap_practice = pyo.Constraint(
        [p for p in plan.P if p in to_],
        rule=lambda b, p: served(b, p) + kd * _days_out(plan, p) <= cap[p])
    b.demand = pyo.Constraint(
        plan.Z, rule=lambda b, z: sum(b.x[z, s] for s in from_.get(z, ())) + b.u[z] == dem[z])


def add_cost_rows(m, data: StaffingData) -> None:
    """The cost expressions, the Cour's levers and the budget row."""
    cab, cds = data.cabinets, data.centres
    W = data.weeks
    fixed_c, per_day_c = cab["fixed_cost"].to_dict(), cab["cost_per_day"].to_dict()
    fixed_h, per_fte_h = cds["fixed_cost"].to_dict(), cds["cost_per_fte"].to_dict()
    m.cost_fixed_cabinet = pyo.Expression(expr=sum(fixed_c[c] * m.y[c] for c in m.C))
    m.cost_fixed_centre = pyo.Expression(expr=sum(fixed_h[h] * m.o[h] for h in m.H))
    m.cost_days = pyo.Expression(expr=sum(W * per_day_c[c] * m.d[p, c] for p, c in m.A))
    m.cost_fte = pyo.Expression(expr=sum(per_fte_h[h] * m.f[h] for h in m.H))
    m.cost = pyo.Expression(expr=m.cost_fixed_cabinet + m.cost_fixed_centre + m.cost_days + m.cost_fte)
    s = m.cost_scale
    lever.add_constraints(m, data)  # zonage, new_fte, envelope (optisite/levers.py)
    if len(m.C) + len(m.H) == 0:
        return  # nothing can be opened: no budget row
    m.budget = pyo.Constraint(expr=(
        sum((fixed_c[c] / s) * m.y[c] for c in m.C) + sum((fixed_h[h] / s) * m.o[h] for h in m.H)
        + sum((W * per_day_c[c] / s) * m.d[p, c] for p, c in m.A)
        + sum((per_fte_h[h] / s) * m.f[h] for h in m.H)) <= data.budget / s)


def add_objectives(m, data: StaffingData, plan=None) -> None:
    """``uncovered``: weighted unmet demand of block ``m`` (its flows; sets of ``plan``, default ``m``)."""
    pen = data.zones["penalty"].to_dict()
    plan = m if plan is None else plan
    m.uncovered = pyo.Expression(expr=sum(pen[z] * m.u[z] for z in plan.Z))


def decisions(m, data: StaffingData) -> Decisions:
    """Days, FTE, openings and flows read back from the solved model as plain tables."""
    def val(v):
        return 0.0 if v.value is None else float(v.value)

    days = pd.DataFrame(
        [(p, c, int(round(val(m.d[p, c])))) for p, c in m.A], columns=["practice_id", "site_id", "days_per_week"])
    if data.presence_weeks != 1.0:  # whole days a month, written in days a week (presence_unit)
        days["days_per_week"] = days["days_per_week"] * data.presence_weeks
    days = days[days["days_per_week"] > 0].reset_index(drop=True)
    fte = pd.Series({h: int(round(val(m.f[h]))) for h in m.H}, dtype=float)
    fte = fte[fte > 0]
    opened_cab = [c for c in m.C if val(m.y[c]) > 0.5]
    flows = pd.DataFrame(
        [(z, s, val(m.x[z, s]) * data.unit) for z, s in m.X], columns=["zone_id", "source_id", "consultations"])
    # Solver round-off leaves flows of 1e-9 to sites that are closed or staffed at zero:
    # drop them so that the tables only send demand to sources that exist.
    staffed = set(days["site_id"]) | set(fte.index) | set(data.practices.index)
    flows = flows[(flows["consultations"] > 1e-6) & flows["source_id"].isin(staffed)].reset_index(drop=True)
    opened_cab = [c for c in opened_cab if c in set(days["site_id"])]
    return Decisions(open_sites=sorted(opened_cab + list(fte.index)), days=days, fte=fte, flows=flows)


def for_plan(data: StaffingData, days: pd.DataFrame | None, fte: pd.Series | None) -> StaffingData:
    """The data restricted to one plan's staffed sites and links (for its flow LP)."""
    days = days if days is not None else pd.DataFrame(columns=["practice_id", "site_id", "days_per_week"])
    fte = fte if fte is not None else pd.Series(dtype=float)
    cabs = [c for c in data.cabinets.index if c in set(days["site_id"])]
    cds = [h for h in data.centres.index if h in set(fte.index)]
    used = pd.MultiIndex.from_frame(days[["practice_id", "site_id"]].astype(str))
    links = data.links[pd.MultiIndex.from_frame(data.links[["practice_id", "site_id"]].astype(str)).isin(used)]
    keep = (data.flows["source_kind"] == "practice") | data.flows["source_id"].isin(cabs + cds)
    return replace(data, cabinets=data.cabinets.loc[cabs], centres=data.centres.loc[cds],
                   links=links.reset_index(drop=True), flows=data.flows[keep].reset_index(drop=True),
                   force_open=(), force_closed=())


def plan_flows(ctx: Context, data: StaffingData, days: pd.DataFrame | None, fte: pd.Series | None,
               name: str = "flows for the plan", floor: float | None = None) -> tuple[pd.DataFrame | None, object]:
    """Demand flows that serve the most weighted demand with one plan's staffing fixed
    (an LP, canonical among its optima). ``days``/``fte`` None: the existing supply alone.
    Returns (flows or None when the LP did not finish, its StageResult). ``floor``: seconds
    the LP may take past the deadline (default ``FLOW_LP_FLOOR_S``)."""
    sub = for_plan(data, days, fte)
    m = build(sub)
    given = {} if days is None else {(p, c): int(round(d / data.presence_weeks))
                                     for p, c, d in days[["practice_id", "site_id", "days_per_week"]]
                                     .itertuples(index=False)}
    for (p, c), v in m.d.items():
        v.fix(given.get((p, c), 0))
    for c in m.C:
        m.y[c].fix(1)
    for h in m.H:
        m.f[h].fix(int(round(float(fte[h]))))
        m.o[h].fix(1)
    for row in ("budget",) + lever.ROWS:
        if hasattr(m, row):
            getattr(m, row).deactivate()  # the plan's cost is already fixed and checked; only flows are free here
    stages = ctx.solver.lexicographic(m, [Objective(name, m.uncovered)], canonical=True,
                                      floor=FLOW_LP_FLOOR_S if floor is None else floor,
                                      watch=False)
    done = stages[0].has_solution and all(s.status == "optimal" for s in stages)
    return (decisions(m, sub).flows if done else None), stages


BASELINE_FLOOR_S = 3600.0  # seconds the existing supply's LP may run past the limit on its second try


def status_quo_flows(ctx: Context, data: StaffingData, name: str = "existing supply alone") -> pd.DataFrame:
    """The existing supply's flows. Every table and the never-worse rule compare with them,
    so when the LP's floor past the deadline was not enough (a large instance on a busy
    machine) it is re-run to its end, and the run says the limit was overrun."""
    flows, _ = plan_flows(ctx, data, None, None, name=name)
    if flows is None:
        ctx.deadline.cut(f"stage '{name}' ran past the time limit to its end (every table needs it)")
        flows, _ = plan_flows(ctx, data, None, None, name=name, floor=BASELINE_FLOOR_S)
    if flows is None:
        raise InfeasibleError(f"HiGHS did not finish the existing supply's flow LP ('{name}') in "
                              f"{BASELINE_FLOOR_S:g} s past the time limit; re-run with --verbose")
    return flows


RELAXATION_METHOD = ("relaxation: the model with days and FTE continuous (openings binary), "
                     "HiGHS's dual bound on it")
BOUND_MIN_S = 1.0  # seconds left below which the bound hook does not start


def relaxation_bound(ctx: Context, m, name: str = "bound: days and FTE continuous"):
    """HiGHS on ``m`` with the days ``d`` and FTE ``f`` continuous (openings stay binary),
    warm-started from the plan held in ``m``: it only drops integrality, so its dual bound
    is a valid lower bound on the model's optimum. ``m`` is left as it was (domains and
    values). Returns the StageResult."""
    relaxed = [v for v in list(m.d.values()) + list(m.f.values()) if not v.fixed]
    saved = {id(v): v.value for v in m.component_data_objects(pyo.Var)}
    for v in relaxed:
        v.domain = pyo.NonNegativeReals  # the explicit bounds (0, max) stay
    try:
        return ctx.solver.lexicographic(m, [Objective(name, m.uncovered)], warm_start=True, canonical=False,
                                        watch=False)[0]
    finally:
        for v in relaxed:
            v.domain = pyo.NonNegativeIntegers
        for v in m.component_data_objects(pyo.Var):
            v.set_value(saved[id(v)], skip_validation=True)


FLOW_LP_FLOOR_S = 5.0  # seconds a flow LP may take even when the deadline has passed (tables need it)
PRESOLVE_OFF_ABOVE = 300_000  # columns; see Staffing.highs_options


def status_quo_start(m, data: StaffingData, flows: pd.DataFrame) -> bool:
    """Write 'open nothing' with the existing supply's flows into ``m`` as its MIP start,
    so that HiGHS's incumbent is never worse than the status quo. False when forced-open
    sites make it infeasible."""
    if data.force_open:
        return False
    for var in (m.d, m.y, m.f, m.o):
        for v in var.values():
            if not v.fixed:
                v.set_value(0, skip_validation=True)
    served = {(z, s): c / data.unit for z, s, c in flows[["zone_id", "source_id", "consultations"]].itertuples(index=False)}
    for (z, s), v in m.x.items():
        v.set_value(served.get((z, s), 0.0), skip_validation=True)
    got = flows.groupby("zone_id")["consultations"].sum() / data.unit if len(flows) else pd.Series(dtype=float)
    for z, v in m.u.items():
        v.set_value(max(0.0, float(data.zones.at[z, "demand"]) - float(got.get(z, 0.0))), skip_validation=True)
    return True


@register
class Staffing(Model):
    """Part-time staffing of cabinets secondaires and salaried centres de santé."""

    name = "staffing"
    title = "sites and part-time staffing: fewest inhabitants whose demand no GP within the cutoff can serve"
    objective_unit = "weighted inhabitants without access"
    result = ResultMeaning(access="flows", objective="weighted_uncovered", capacities=True, apl=True)
    document = "models/staffing.md"

    def variant(self, parameters) -> Model:
        """The robust form (``staffing_robust.py``) when ``robust_scenarios`` names scenarios."""
        if parameters.robust_scenarios != "off":
            from .staffing_robust import ROBUST

            return ROBUST
        return self

    def prepare(self, ctx: Context) -> StaffingData:
        o = ctx.options
        return prepare(ctx.instance, ctx.pairs, ctx.links, o.force_open, o.force_closed)

    def build(self, data: StaffingData):
        return build(data)

    def describe(self, data: StaffingData) -> str:
        return (f"building staffing model ({len(data.cabinets)} cabinets, {len(data.centres)} centres, "
                f"{len(data.links)} practice-cabinet links, {len(data.flows)} demand pairs)")

    def objectives(self, m) -> list[Objective]:
        return [Objective("uncovered", m.uncovered, floor=0.0),
                Objective("cost", m.cost / m.cost_scale, m.cost_scale, floor=0.0)]

    def highs_options(self, m) -> tuple[dict, str | None]:
        """Above ``PRESOLVE_OFF_ABOVE`` columns HiGHS's MIP presolve ignores the time limit
        and Ctrl-C (a 5,115-commune model, 654k columns: 486 s on a 60 s limit, no plan);
        with presolve off it stops at its limit with a plan, and the report says so."""
        n = m.nvariables()
        if n > PRESOLVE_OFF_ABOVE:
            return {"presolve": "off"}, (
                f"HiGHS presolve switched off: the model has {n:,} columns, and above {PRESOLVE_OFF_ABOVE:,} "
                "HiGHS's presolve does not stop at the time limit; the bound may be weaker")
        return {}, None

    def baseline_flows(self, ctx: Context, data: StaffingData) -> pd.DataFrame | None:
        return status_quo_flows(ctx, data)

    def start(self, ctx: Context, data: StaffingData, m) -> list:
        """The better of the status quo and the primal engine's plan (greedy + local search,
        ``staffing_search``) as HiGHS's MIP start: never worse than opening nothing."""
        import time

        from ..deadline import Deadline
        from ..solver import WALL, StageResult
        from .staffing_search import effort_for, shares, search, write_start

        out = []
        base = ctx.baseline
        quo = None
        if base is not None and status_quo_start(m, data, base):
            quo = float(pyo.value(m.uncovered))
            out.append(StageResult(name="start: status quo (open nothing)", status="feasible", objective=quo,
                                   has_solution=True))
        if len(data.cabinets) + len(data.centres) == 0 or ctx.deadline.expired(0.0):
            return out
        effort = effort_for(data, ctx.deadline.seconds)
        t = time.perf_counter()
        clock = Deadline(ctx.deadline.part(shares(ctx.deadline.seconds)[1]))
        try:
            plan = search(data, effort=effort, deadline=clock, seed=int(ctx.options.seed))
        except RuntimeError as e:  # a flow LP HiGHS could not solve: the status quo stays the start
            out.append(StageResult(name="start: greedy + local search failed, not used", status="error",
                                   seconds=time.perf_counter() - t, extra={"error": str(e)}))
            return out
        if plan is None:
            if clock.expired(0.0):  # a flow LP was cut at the clock's cap (a region): say so
                out.append(StageResult(
                    name="start: greedy + local search stopped by the clock before a plan, not used",
                    status="time_limit", seconds=time.perf_counter() - t,
                    extra={"used": False, "stopped_by": WALL, "effort": int(effort)}))
            return out
        tol = 1e-7 * max(1.0, abs(plan.uncovered))
        used = quo is None or plan.uncovered < quo - tol  # on a tie the status quo costs nothing
        # The engine knows the zonage but not the recruitment limit nor the envelopes:
        # a plan that breaks one is not a start (HiGHS would reject or mis-handle it).
        breaks = lever.plan_breaks(data.levers, data, plan.days, plan.fte)
        used = used and breaks is None
        if used:
            write_start(m, data, plan)
        ctx.say(f"primal search: {plan.uncovered:,.0f} uncovered at EUR {plan.cost:,.0f} after "
                f"{plan.evaluations} flow LPs" + ("" if used else " (the status quo is kept)"))
        opened = plan.days["site_id"].nunique() + len(plan.fte)
        out.append(StageResult(
            name=f"start: greedy + local search ({opened} site(s), {plan.evaluations} flow LPs"
                 + (", stopped by the clock)" if plan.stopped_by_clock else ")")
                 + ("" if used else f": breaks the lever {breaks}, not used" if breaks
                    else ": not better than the status quo, not used"),
            status="feasible", objective=float(plan.uncovered), seconds=time.perf_counter() - t,
            has_solution=True,
            extra={"used": bool(used), "cost": float(plan.cost), "evaluations": int(plan.evaluations),
                   # the pipeline's reproducibility record: a start cut by the clock may differ next run
                   "stopped_by": WALL if used and plan.stopped_by_clock else None, "breaks": breaks,
                   "effort": int(effort), "stopped_by_clock": bool(plan.stopped_by_clock),
                   "phases": {k: float(v) for k, v in plan.phases.items()}}))
        return out

    def decisions(self, ctx: Context, data: StaffingData, m) -> Decisions:
        return decisions(m, data)

    # A tenth of the time is kept for the hook at any limit: the Lagrangian needs seconds
    # (at 60 s, whole solves: Nièvre at EUR 300,000 gap 3.06 % -> 0.00 %, Ille-et-Vilaine
    # 0.51 % -> 0.00 %, plans unchanged; benchmarks/results/staffing_bounds_candidates2.md).
    # Half, as before for the relaxation alone, cost the plans at 60 s (staffing_bounds.md).
    bound_share = 0.1
    bound_share_from_s = 0.0

    def bound(self, ctx: Context, data: StaffingData, m, stages: list) -> tuple[float, str] | None:
        """The Lagrangian of the capacity rows (``staffing_bound``), then, unless it proved
        the plan, the days-and-FTE-continuous relaxation (issue 18): the better bound."""
        from .staffing_bound import LAGRANGIAN_METHOD, lagrangian_stage

        lag, best = lagrangian_stage(ctx, data), None  # first: seconds where the relaxation takes minutes
        if lag is not None:
            ctx.extra_stages.append(lag)
            best = None if lag.bound is None else (lag.bound, LAGRANGIAN_METHOD)
        left = ctx.deadline.left()
        plan = stages[0].objective if stages else None
        closed = best and plan is not None and best[0] >= plan - ctx.options.gap * max(1.0, abs(plan))
        if closed or (left is not None and left < BOUND_MIN_S):
            return best
        stage = relaxation_bound(ctx, m)
        ctx.extra_stages.append(stage)
        if stage.bound is None or not np.isfinite(stage.bound) or (best and best[0] >= stage.bound):
            return best
        return float(stage.bound), RELAXATION_METHOD

    def polish(self, ctx: Context, data: StaffingData, dec: Decisions) -> Decisions:
        """Flows optimal for the plan's integer decisions when the search stopped before
        its own flows stage (a time-limited incumbent's flows need not be)."""
        if ctx.flows_final:
            return dec
        # No floor: the incumbent's own flows are valid, so the polish never runs past the limit.
        flows, stages = plan_flows(ctx, data, dec.days, dec.fte, name="polish: flows for the plan", floor=0.0)
        ctx.extra_stages.extend(stages)
        if flows is not None:
            dec.flows = flows
        return dec
