r"""The apl model: minimise the population living under an APL threshold.

For fixed population the APL of zone *i* is linear in the supply :math:`S_j` at each
point (``models/apl.md`` proves it): :math:`APL_i = \sum_j a_{ij} S_j`. Supplies are
linear in the staffing decisions of the staffing model:

* practice *p*: :math:`S_p = K_p - k_L W \sum_c d_{pc}` (:math:`K_p` its APL-counted capacity, ``rules``),
* cabinet *c*: :math:`S_c = k_L W \sum_p d_{pc}`,
* centre *h*: :math:`S_h = k_S F W f_h`.

With a binary :math:`b_i` (1 when zone *i* is at or above the threshold *T*):

.. math::

    \min \sum_i P_i (1 - b_i) \quad \text{s.t.} \quad
    \sum_j a_{ij} S_j(d, f) \ge T b_i \;\; \forall i, \;\; \text{staffing constraints, budget.}

Then, at that value, the cost is minimised (stage 2), and finally, with every
staffing decision fixed, demand flows are assigned by an LP (``staffing.plan_flows``,
on a model of its own) so that the plan's coverage is reported on the same basis as
the staffing model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ..apl import apl_linear_coefficients
from ..instance import Instance
from ..rules import apl_left_out, per_liberal_weekly_day, per_salaried_fte, practice_capacity
from . import staffing
from .base import Context, Decisions, Finish, Model, Objective, ResultMeaning, register


@dataclass(frozen=True)
class AplData:
    staffing: staffing.StaffingData
    constant: pd.Series  # APL of each zone from full existing practices (before any day is given)
    days_terms: pd.DataFrame  # zone_id, practice_id, site_id, coefficient (APL per weekly day)
    fte_terms: pd.DataFrame  # zone_id, site_id, coefficient (APL per FTE)
    population: pd.Series  # zones with population > 0
    upper: pd.Series  # an upper bound of each zone's APL over all plans
    threshold: float


def prepare(instance: Instance, pairs: pd.DataFrame, links: pd.DataFrame,
            force_open=(), force_closed=()) -> AplData:
    p = instance.parameters
    st = staffing.prepare(instance, pairs, links, force_open, force_closed, tighten=False)
    coef = apl_linear_coefficients(instance)
    per_day = per_liberal_weekly_day(p) * st.presence_weeks  # consultations/year per unit of d (presence_unit)
    per_fte = per_salaried_fte(p)
    # What the APL counts of each practice before any day is given (rules: activity with
    # the DREES caps, GPs aged 65 and over left out when apl_exclude_65_plus).
    capacity = practice_capacity(p, instance.practices)
    full = capacity - apl_left_out(p, instance.practices, capacity)

    prac = coef[coef["source_kind"] == "practice"]
    constant = (prac["coefficient"] * full.reindex(prac["source_id"]).to_numpy()).groupby(prac["zone_id"]).sum()
    link = st.links[["practice_id", "site_id"]]
    gain = link.merge(coef[["zone_id", "source_id", "coefficient"]].rename(columns={"source_id": "site_id"}),
                      on="site_id")
    loss = link.merge(prac[["zone_id", "source_id", "coefficient"]].rename(columns={"source_id": "practice_id"}),
                      on="practice_id")
    loss["coefficient"] = -loss["coefficient"]
    days = pd.concat([gain, loss], ignore_index=True)
    days = days.groupby(["zone_id", "practice_id", "site_id"], as_index=False)["coefficient"].sum()
    days["coefficient"] *= per_day
    days = days[days["coefficient"].abs() > 1e-15]
    fte = coef[coef["source_id"].isin(st.centres.index)][["zone_id", "source_id", "coefficient"]]
    fte = fte.rename(columns={"source_id": "site_id"}).assign(coefficient=lambda d: d["coefficient"] * per_fte)

    from ..solution import planning_zones

    pop = instance.zones["population"][planning_zones(instance)]  # neighbours serve, are not counted
    pop = pop[pop > 0]
    # Upper bound: every reachable cabinet at its maximum days, every centre at its maximum FTE.
    cab_max = st.cabinets["max_days"] * per_day
    cds_max = st.centres["max_fte"] * per_fte
    site_max = pd.concat([cab_max, cds_max])
    sites_coef = coef[coef["source_id"].isin(site_max.index)]
    extra = (sites_coef["coefficient"] * site_max.reindex(sites_coef["source_id"]).to_numpy()).groupby(
        sites_coef["zone_id"]).sum()
    upper = constant.reindex(pop.index).fillna(0.0) + extra.reindex(pop.index).fillna(0.0)
    return AplData(staffing=st, constant=constant.reindex(pop.index).fillna(0.0), days_terms=days,
                   fte_terms=fte, population=pop, upper=upper, threshold=float(p.apl_threshold))


def loss_floor(data: AplData) -> pd.Series:
    """Per zone, ``L_i``: the most APL the plan's days can take from it. A practice *p*
    gives at most ``G_p`` days, each changing APL_i by the (gain - loss) coefficient of
    the cabinet it goes to; FTE only add. So ``sum(a * d) + sum(a * f) >= -L_i`` for
    every plan; capped at ``C_i`` (APL never falls below 0)."""
    dt = data.days_terms
    give = data.staffing.practices["give_cap"]
    neg = dt[dt["coefficient"] < 0]
    worst = (-neg["coefficient"]).groupby([neg["zone_id"], neg["practice_id"]]).max()
    loss = worst * give.reindex(worst.index.get_level_values("practice_id")).fillna(0).to_numpy()
    floor = loss.groupby(level="zone_id").sum().reindex(data.constant.index).fillna(0.0)
    return np.minimum(floor, data.constant.clip(lower=0.0))


def build(data: AplData, tighten_links: bool = True) -> pyo.ConcreteModel:
    """The apl model. ``tighten_links`` (the default) writes each zone's row with the
    floor ``L_i`` of :func:`loss_floor` in place of ``C_i`` (``models/apl.md``, "The
    bound"): the same integer plans, a tighter LP."""
    m = staffing.build(data.staffing, objectives=False)
    m.name = "apl"
    # The flow part of the staffing model is not part of the APL question: it is solved
    # afterwards with the staffing fixed (see ``decisions``).
    for c in (m.demand, m.cap_cabinet, m.cap_centre, m.cap_practice):
        c.deactivate()
    T = data.threshold
    can = data.upper.index[data.upper >= T - 1e-9]
    m.B = pyo.Set(initialize=list(can), ordered=True)
    m.b = pyo.Var(m.B, domain=pyo.Binary)
    dterms = data.days_terms[data.days_terms["zone_id"].isin(can)
                             & data.days_terms.set_index(["practice_id", "site_id"]).index.isin(list(m.A))]
    fterms = data.fte_terms[data.fte_terms["zone_id"].isin(can) & data.fte_terms["site_id"].isin(list(m.H))]
    dmap = {z: list(zip(g["practice_id"], g["site_id"], g["coefficient"])) for z, g in dterms.groupby("zone_id")}
    fmap = {z: list(zip(g["site_id"], g["coefficient"])) for z, g in fterms.groupby("zone_id")}
    const = data.constant.to_dict()
    floor = (loss_floor(data) if tighten_links else data.constant).to_dict()

    def link(m, i):
        c = const.get(i, 0.0)
        days, fte = dmap.get(i, ()), fmap.get(i, ())
        if not days and not fte:
            return pyo.Constraint.Feasible if c >= T - 1e-12 else m.b[i] <= c / T
        if not tighten_links:
            return c + sum(a * m.d[p, s] for p, s, a in days) + sum(a * m.f[h] for h, a in fte) >= T * m.b[i]
        # C_i + terms >= T b_i, written as terms + L >= R b_i with R = T - C_i + L, L <= C_i:
        # the same at b_i = 1; at b_i = 0 it asks terms >= -L, true of every plan. A
        # positive coefficient above R is cut to R: one unit of that (integer) decision
        # already lifts the row to R whatever the others take (they take at most L).
        lo = min(floor.get(i, c), c)
        R = T - c + lo
        if R <= 0:
            return pyo.Constraint.Feasible  # no plan takes zone i below T: b_i = 1 always holds
        return (sum(min(a, R) * m.d[p, s] for p, s, a in days) + sum(min(a, R) * m.f[h] for h, a in fte)
                + lo >= R * m.b[i])

    m.apl_link = pyo.Constraint(m.B, rule=link)
    pop = data.population.to_dict()
    never = float(data.population.drop(can, errors="ignore").sum())
    m.uncovered = pyo.Expression(expr=never + sum(pop[i] * (1 - m.b[i]) for i in m.B))
    return m


def set_start(m, staffing_model) -> int:
    """Copy a solved staffing model's days, openings and FTE into ``m`` and set each b_i
    to what that plan achieves: a feasible MIP start, so that the apl search begins no
    worse than the staffing plan. Returns the number of zones the start lifts to T."""
    for name in ("d", "y", "f", "o"):
        src, dst = getattr(staffing_model, name), getattr(m, name)
        for idx, v in dst.items():
            if not v.fixed:
                val = src[idx].value if idx in src else 0.0
                v.set_value(0 if val is None else round(val), skip_validation=True)
    lifted = 0
    for i in m.B:
        m.b[i].set_value(1)  # keep b_i = 1 where the plan's APL reaches T, else 0
        con = m.apl_link[i] if i in m.apl_link else None
        holds = con is None or not con.active or (
            (not con.has_lb() or pyo.value(con.body) >= pyo.value(con.lower) - 1e-9)
            and (not con.has_ub() or pyo.value(con.body) <= pyo.value(con.upper) + 1e-9))
        if not holds:
            m.b[i].set_value(0)
        lifted += int(holds)
    return lifted


def plan_in(model) -> tuple[pd.DataFrame, pd.Series]:
    """The days (practice_id, site_id, days in units of ``d``, > 0) and FTE (> 0) at a
    staffing or apl model's values: a seed for the apl engine."""
    days = pd.DataFrame([(p, c, round(v.value or 0)) for (p, c), v in model.d.items()],
                        columns=["practice_id", "site_id", "days"])
    fte = pd.Series({h: round(v.value or 0) for h, v in model.f.items()}, dtype=float)
    return days[days["days"] > 0], fte[fte > 0]


START_SHARE = 0.25  # share of the time left given to the staffing plan that starts the apl search


@register
class Apl(Model):
    """Fewest inhabitants under an APL threshold, with the staffing model's decisions."""

    name = "apl"
    title = "sites and part-time staffing: fewest inhabitants under the APL threshold (DREES 2SFCA)"
    objective_unit = "inhabitants under the APL threshold"
    result = ResultMeaning(access="flows", objective="population_under_apl", capacities=True, apl=True)
    document = "models/apl.md"

    def prepare(self, ctx: Context) -> AplData:
        o = ctx.options
        return prepare(ctx.instance, ctx.pairs, ctx.links, o.force_open, o.force_closed)

    #: Links written with the loss floor (``build``); False rebuilds the model as it was
    #: before (for the benchmark's peer).
    tighten_links = True

    def build(self, data: AplData):
        return build(data, tighten_links=self.tighten_links)

    def objectives(self, m) -> list[Objective]:
        return [Objective("under threshold", m.uncovered, floor=0.0),
                Objective("cost", m.cost / m.cost_scale, m.cost_scale, floor=0.0)]

    def highs_options(self, m) -> tuple[dict, str | None]:
        return staffing.Staffing.highs_options(self, m)

    def baseline_flows(self, ctx: Context, data: AplData) -> pd.DataFrame | None:
        return staffing.status_quo_flows(ctx, data.staffing)

    def start(self, ctx: Context, data: AplData, m) -> list:
        """The best of the staffing model's plan (solved briefly from the status quo) and
        the apl primal engine's (``apl_search``: greedy + local search on the APL count,
        from the status quo and from that plan) as HiGHS's MIP start. The apl model's LP
        bound is weak and HiGHS alone may stop on a plan worse than the existing supply;
        the start makes the apl plan never worse, on APL, than either, nor than the status
        quo. The first stage says which engine made the start and its value."""
        import time

        from ..deadline import Deadline
        from ..solver import WALL, StageResult
        from .apl_search import CLOCK_SHARE, Problem, effort_for, search

        st = data.staffing
        sm = staffing.build(st)
        started = ctx.baseline is not None and staffing.status_quo_start(sm, st, ctx.baseline)
        ctx.say("solving the staffing model to seed the apl search")
        seconds = ctx.deadline.part(START_SHARE, at_least=1.0)
        stages = ctx.solver.lexicographic(sm, [Objective("uncovered", sm.uncovered)], warm_start=started,
                                          canonical=False, time_limit=seconds, gap=max(ctx.options.gap, 1e-3),
                                          effort_s=None if ctx.options.time_limit is None
                                          else START_SHARE * ctx.options.time_limit,
                                          highs_options=self.highs_options(sm)[0])
        for s in stages:
            s.name = "start: staffing " + s.name
        seeds, quo = {}, None
        if stages and stages[0].has_solution:
            set_start(m, sm)
            quo = float(pyo.value(m.uncovered))
            stages[0].extra["apl_objective"] = quo
            seeds["staffing plan"] = plan_in(sm)
        t = time.perf_counter()
        pb = Problem(data)
        effort = effort_for(pb, ctx.deadline.seconds)
        plan = None if ctx.deadline.expired(0.0) else search(
            data, effort=effort, seeds=seeds, deadline=Deadline(ctx.deadline.part(CLOCK_SHARE)), problem=pb,
            seed=int(ctx.options.seed))
        if plan is None:
            return stages if quo is not None else []
        used = quo is None or plan.under <= quo + 1e-6  # from the staffing seed it is never worse, maybe cheaper
        if used:  # the engine's plan into the staffing model's variables, then as the apl start
            given = {(p, c): k for p, c, k in plan.days.itertuples(index=False)}
            din = plan.days.groupby("site_id")["days"].sum()
            for var, value in ((sm.d, lambda i: given.get(i, 0)), (sm.y, lambda c: int(din.get(c, 0) > 0)),
                               (sm.f, lambda h: int(plan.fte.get(h, 0))), (sm.o, lambda h: int(plan.fte.get(h, 0) > 0))):
                for i, v in var.items():
                    if not v.fixed:
                        v.set_value(value(i), skip_validation=True)
            set_start(m, sm)
        value = float(pyo.value(m.uncovered))
        opened = plan.days["site_id"].nunique() + len(plan.fte)
        engine = StageResult(
            name=f"start: apl greedy + local search ({opened} site(s), {plan.evaluations:,} move evaluations, "
                 f"best from the {plan.seed}" + (", stopped by the clock)" if plan.stopped_by_clock else ")")
                 + ("" if used else ": not better than the staffing plan, not used"),
            status="feasible", objective=float(plan.under), seconds=time.perf_counter() - t, has_solution=True,
            extra={"start_engine": "apl greedy + local search" if used else "staffing model",
                   "apl_objective": value, "used": bool(used), "cost": float(plan.cost),
                   "evaluations": int(plan.evaluations), "effort": int(effort), "seed": plan.seed,
                   "stopped_by": WALL if used and plan.stopped_by_clock else None,
                   "stopped_by_clock": bool(plan.stopped_by_clock),
                   "phases": {k: float(v) for k, v in plan.phases.items()}})
        if stages:
            stages[0].extra["used"] = not used
        ctx.say(f"apl start ({engine.extra['start_engine']}): {value:,.0f} inhabitants stay under the threshold "
                f"(greedy + local search: {plan.under:,.0f} after {plan.evaluations:,} move evaluations"
                + ("" if quo is None else f"; staffing plan: {quo:,.0f}") + ")")
        return [engine] + stages

    #: Share of the limit kept after HiGHS's stages for the local search from its plan
    #: (``decisions``), from limits of ``bound_share_from_s``; the apl model has no bound
    #: hook, so the share serves that search. At 60 s (load 1) it took HiGHS's seconds:
    #: Nievre 29,262 -> 28,957 under 2.5, but Rhone's proven bound fell from 47,450 to
    #: 8,121 (HiGHS 16 s instead of 25 s) and neither Rhone nor Ille-et-Vilaine improved.
    #: At longer limits HiGHS's bound stalls (Nievre: 14,005 at 60 s, 14,024 at 400 s),
    #: so a tenth there costs no bound.
    bound_share = 0.1
    bound_share_from_s = 120.0

    def decisions(self, ctx: Context, data: AplData, m) -> Decisions:
        """HiGHS's plan, improved by the apl engine's local search from it when that finds
        fewer inhabitants under the threshold (or as many at a lower cost): HiGHS rarely
        improves the engine's start, and the engine rarely builds HiGHS's plan shapes."""
        dec = staffing.decisions(m, data.staffing)
        better = self._search_after(ctx, data, m)
        if better is None:
            return dec
        st = data.staffing
        days = better.days.rename(columns={"days": "days_per_week"})
        if st.presence_weeks != 1.0:  # whole days a month, written in days a week (as staffing.decisions)
            days = days.assign(days_per_week=days["days_per_week"] * st.presence_weeks)
        fte = better.fte.astype(float)
        return Decisions(open_sites=sorted(set(days["site_id"]) | set(fte.index)), days=days.reset_index(drop=True),
                         fte=fte, flows=dec.flows)

    def _search_after(self, ctx: Context, data: AplData, m):
        """The engine from HiGHS's plan, on the share kept for it; the plan if it is better."""
        import time

        from ..deadline import Deadline
        from ..solver import WALL, StageResult
        from .apl_search import START_SHARE as ENGINE_SHARE
        from .apl_search import Problem, effort_for, search

        limit = ctx.options.time_limit
        kept = limit is None or limit >= self.bound_share_from_s
        if not kept or ctx.deadline.expired(0.0) or not (len(m.C) + len(m.H)):
            return None
        t = time.perf_counter()
        pb = Problem(data)
        # the same effort rule as the start, on this hook's share of the limit
        effort = max(1, int(effort_for(pb, limit) * self.bound_share / ENGINE_SHARE))
        plan = search(data, effort=effort, seeds={"HiGHS plan": plan_in(m)},
                      deadline=Deadline(ctx.deadline.part(0.5)), problem=pb, seed=int(ctx.options.seed),
                      greedy=False)
        if plan is None:
            return None
        before = plan.phases.get("HiGHS plan: start")
        used = before is not None and (plan.under < before - 1e-6
                                       or (plan.under <= before + 1e-6 and plan.cost < plan.phases.get(
                                           "HiGHS plan: start cost", float("inf")) - 1e-6))
        ctx.extra_stages.append(StageResult(
            name="polish: apl local search from HiGHS's plan"
                 + ("" if used else " (no better plan found)"),
            status="feasible", objective=float(plan.under), seconds=time.perf_counter() - t, has_solution=True,
            extra={"used": bool(used), "from": before, "cost": float(plan.cost), "evaluations": int(plan.evaluations),
                   "effort": int(effort), "stopped_by": WALL if used and plan.stopped_by_clock else None}))
        if used:
            ctx.say(f"local search after HiGHS: {before:,.0f} -> {plan.under:,.0f} inhabitants under the threshold")
        return plan if used else None

    def polish(self, ctx: Context, data: AplData, dec: Decisions) -> Decisions:
        """Demand flows for the plan's staffing (an LP): coverage on the staffing model's basis."""
        flows, stages = staffing.plan_flows(ctx, data.staffing, dec.days, dec.fte, name="flows for the plan")
        ctx.extra_stages.extend(stages)
        dec.flows = flows if flows is not None else dec.flows
        return dec

    def finish(self, ctx: Context, data: AplData, tables: dict, summary: dict) -> Finish:
        """The MIP only forces b_i <= [APL_i >= T]; a stopped search may leave b_i = 0 where
        the plan already lifts zone i. Setting those b_i to 1 is feasible, so the plan's
        true count is an objective value the model attains: report it."""
        apl = summary.get("apl")
        objective = summary.get("objective")
        if not apl or objective is None:
            return Finish()
        under = float(apl["after"]["under"][apl["threshold"]])
        searched = [s for s in ctx.extra_stages if s.name.startswith("polish: apl local search") and s.extra["used"]]
        if searched and under < objective - 1e-6:
            return Finish(objective=under, warnings=[
                f"the local search after HiGHS improved its plan from {searched[0].extra['from']:,.0f} to "
                f"{under:,.0f} inhabitants under the threshold (reported as the objective); its cost was not "
                "minimised again by the solver"])
        if under < objective - 1e-6:
            return Finish(objective=under, warnings=[
                f"the solver's incumbent counted {objective:,.0f} inhabitants under the threshold; "
                f"its plan leaves {under:,.0f}, reported as the objective"])
        return Finish()
