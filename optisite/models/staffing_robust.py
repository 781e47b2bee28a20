r"""The staffing model's robust form: one plan against several retirement scenarios at once.

One set of staffing decisions (``staffing.py``: days :math:`d_{pc}`, openings
:math:`y_c`, :math:`o_h`, FTE :math:`f_h`) shared by one block of demand flows per
scenario *k* (``scenario[k]``: flows :math:`x_{zsk}`, unmet demand :math:`u_{zk}`, the
capacity and demand rows of ``staffing.add_flow_rows`` on the practices that scenario
leaves in year :math:`N`, ``optisite/robust.py``). The days a practice promises must hold
in every scenario: :math:`\sum_c d_{pc} \le \min_k G_{pk}`.

.. math::

    U_k = \sum_z \frac{w_z P_z}{D_z} u_{zk}, \qquad
    \text{worst: } \min \theta \ \text{ s.t. } \theta \ge U_k \ \forall k; \qquad
    \text{expected: } \min \sum_k \pi_k U_k; \qquad \text{then } \min \text{cost}

Symbols and sources: ``models/staffing.md``, section "Robust plans". The staffing model
returns this object from :meth:`~optisite.models.base.Model.variant` when the parameter
``robust_scenarios`` names scenarios; it is not registered under a name of its own
(``solution.json`` says ``staffing``, with ``result.scenarios`` true).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from .. import robust as rb
from ..levers import to_units
from ..rules import give_cap, practice_capacity
from . import staffing
from .base import Context, Decisions, Finish, Model, Objective, ResultMeaning
from .coverage import cost_scale


@dataclass(frozen=True)
class RobustData:
    """The numbers of one robust staffing model, independent of Pyomo."""

    spec: rb.Spec
    base: staffing.StaffingData  # sets, sites and the days every scenario allows (give_cap = min over k)
    per_scenario: dict  # name -> StaffingData with that scenario's practices (physicians, capacity)
    physicians: pd.DataFrame  # practice x scenario
    start_plan: dict = field(default_factory=dict)  # 'decisions': the start's plan, for the fallback


def scenario_data(instance, spec: rb.Spec, force_open=(), force_closed=(), *, pairs, links) -> RobustData:
    """Staffing's data for each scenario; the plan's days capped at what every scenario allows."""
    from ..retirement import year_instance

    p = instance.parameters
    phys = rb.physicians(instance, spec)
    gives, practices = {}, {}
    for k in spec.names:
        pr = year_instance(instance, phys[k]).practices
        gives[k] = pd.Series(to_units(give_cap(p, pr), p, up=False), index=pr.index).astype(int)
        practices[k] = pr
    floor_give = pd.concat(gives, axis=1).min(axis=1)
    # The plan's sets from the instance whose practices have, each, the fewest physicians of
    # any scenario: links, usable cabinets and the budget rule as staffing prepares them.
    floor = year_instance(instance, phys.min(axis=1))
    base = staffing.prepare(floor, pairs, links, force_open, force_closed)
    base = replace(base, practices=base.practices.assign(
        give_cap=floor_give.reindex(base.practices.index).fillna(0).astype(int).to_numpy()))
    per = {}
    for k in spec.names:
        pr = practices[k]
        frame = base.practices.copy()
        frame["physicians"] = pr["physicians"].reindex(frame.index).to_numpy(float)
        frame["capacity"] = (practice_capacity(p, pr) / base.unit).reindex(frame.index).to_numpy(float)
        per[k] = replace(base, practices=frame)
    return RobustData(spec=spec, base=base, per_scenario=per, physicians=phys)


def build(data: RobustData) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel(name="staffing_robust")
    b0 = data.base
    m.cost_scale = cost_scale(np.concatenate([
        b0.cabinets["fixed_cost"].to_numpy(), b0.centres["fixed_cost"].to_numpy(),
        b0.weeks * b0.cabinets["cost_per_day"].to_numpy(), b0.centres["cost_per_fte"].to_numpy()]))
    staffing.add_sets(m, b0)
    staffing.add_plan_variables(m, b0)
    staffing.fix_forced(m, b0)
    staffing.add_plan_rows(m, b0)
    m.K = pyo.Set(initialize=list(data.spec.names), ordered=True)
    m.scenario = pyo.Block(m.K)
    for k in data.spec.names:
        b, dk = m.scenario[k], data.per_scenario[k]
        staffing.add_flow_variables(b, dk, m)
        staffing.add_flow_rows(b, dk, m)
        staffing.add_objectives(b, dk, m)
    staffing.add_cost_rows(m, b0)
    add_objective(m, data)
    return m


def add_objective(m, data: RobustData) -> None:
    """``uncovered``: the worst scenario's weighted unmet demand (epigraph variable ``worst``)
    or the weighted mean over the scenarios."""
    if data.spec.mode == "worst":
        m.worst = pyo.Var(domain=pyo.NonNegativeReals)
        m.epigraph = pyo.Constraint(m.K, rule=lambda m, k: m.worst >= m.scenario[k].uncovered)
        m.uncovered = pyo.Expression(expr=m.worst)
    else:
        # The mean is a variable, as the worst case's epigraph: the objective is one column in both modes.
        w = data.spec.weight()
        m.mean = pyo.Var(domain=pyo.NonNegativeReals)
        m.mean_row = pyo.Constraint(expr=m.mean >= sum(w[k] * m.scenario[k].uncovered for k in m.K))
        m.uncovered = pyo.Expression(expr=m.mean)


def _set_worst(m, data: RobustData) -> None:
    """The objective's variable at the value of the scenarios' flows written in ``m``."""
    values = [float(pyo.value(m.scenario[k].uncovered)) for k in m.K]
    if data.spec.mode == "worst":
        m.worst.set_value(max(values), skip_validation=True)
    else:
        m.mean.set_value(float(np.dot(data.spec.weights, values)), skip_validation=True)


def write_flows(b, data: staffing.StaffingData, flows: pd.DataFrame) -> None:
    """One scenario's flows (consultations) into its block, and the unmet demand they leave."""
    served = {(z, s): c / data.unit for z, s, c in flows[["zone_id", "source_id", "consultations"]]
              .itertuples(index=False)}
    for key, v in b.x.items():
        v.set_value(served.get(key, 0.0), skip_validation=True)
    got = flows.groupby("zone_id")["consultations"].sum() / data.unit if len(flows) else pd.Series(dtype=float)
    for z, v in b.u.items():
        v.set_value(max(0.0, float(data.zones.at[z, "demand"]) - float(got.get(z, 0.0))), skip_validation=True)


def write_plan(m, data: RobustData, days: pd.DataFrame, fte: pd.Series) -> None:
    """A plan's days (days a week) and FTE into the shared decisions (fixed ones left alone)."""
    pw = data.base.presence_weeks
    given = {(p, c): int(round(d / pw)) for p, c, d in days[["practice_id", "site_id", "days_per_week"]]
             .itertuples(index=False)}
    din = days.groupby("site_id")["days_per_week"].sum().to_dict() if len(days) else {}
    for var, value in ((m.d, lambda k: given.get(k, 0)), (m.y, lambda c: 1 if din.get(c, 0) > 0 else 0),
                       (m.f, lambda h: int(round(float(fte.get(h, 0))))),
                       (m.o, lambda h: 1 if float(fte.get(h, 0)) > 0 else 0)):
        for key, v in var.items():
            if not v.fixed:
                v.set_value(value(key), skip_validation=True)


def evaluate_plan(ctx: Context, data: RobustData, days: pd.DataFrame | None, fte: pd.Series | None,
                  name: str = "flows", floor: float | None = None) -> dict | None:
    """Each scenario's best flows for one plan (its LP, ``staffing.plan_flows``): {scenario:
    flows}, or None when an LP did not finish (``floor``: seconds past the deadline)."""
    out = {}
    for k in data.spec.names:
        flows, stages = staffing.plan_flows(ctx, data.per_scenario[k], days, fte, name=f"{name}, {k}", floor=floor)
        ctx.extra_stages.extend(s for s in stages if s.status != "optimal")
        if flows is None:
            return None
        out[k] = flows
    return out


def _long(flows: dict) -> pd.DataFrame:
    return pd.concat([f.assign(scenario=k) for k, f in flows.items()], ignore_index=True)


PRESOLVE_RULE_OFF = 1 << 9  # see StaffingRobust.highs_options


class StaffingRobust(Model):
    """The staffing model against several retirement scenarios: one plan, worst or expected case."""

    name = "staffing"
    title = ("one staffing plan against several retirement scenarios: fewest inhabitants without access "
             "in the worst (or expected) scenario")
    objective_unit = "weighted inhabitants without access (worst or expected over the scenarios)"
    result = ResultMeaning(access="flows", objective="weighted_uncovered", capacities=True, apl=False,
                           scenarios=True)
    document = "models/staffing.md"
    bound_share = staffing.Staffing.bound_share
    bound_share_from_s = staffing.Staffing.bound_share_from_s

    def variant(self, parameters) -> Model:
        return self

    def prepare(self, ctx: Context) -> RobustData:
        o = ctx.options
        return scenario_data(ctx.instance, rb.spec(ctx.instance.parameters), o.force_open, o.force_closed,
                             pairs=ctx.pairs, links=ctx.links)

    def build(self, data: RobustData):
        return build(data)

    def describe(self, data: RobustData) -> str:
        b = data.base
        return (f"building robust staffing model ({len(data.spec.names)} scenarios, {data.spec.mode} case, "
                f"year {data.spec.year}; {len(b.cabinets)} cabinets, {len(b.centres)} centres, "
                f"{len(b.links)} practice-cabinet links, {len(b.flows)} demand pairs a scenario)")

    def objectives(self, m) -> list[Objective]:
        return [Objective("uncovered", m.uncovered, floor=0.0),
                Objective("cost", m.cost / m.cost_scale, m.cost_scale, floor=0.0)]

    def highs_options(self, m) -> tuple[dict, str | None]:
        """Staffing's, and one HiGHS presolve rule off (bit 9 of ``presolve_rule_off``): with it,
        HiGHS 1.16 given this model's MIP start reported as optimal a value below the plan's own
        (6,096.9 for a plan worth 6,168.2, found by enumeration; tests/test_robust.py)."""
        options, warning = staffing.Staffing.highs_options(self, m)
        return {**options, "presolve_rule_off": PRESOLVE_RULE_OFF}, warning

    def baseline_flows(self, ctx: Context, data: RobustData) -> pd.DataFrame | None:
        return _long({k: staffing.status_quo_flows(ctx, data.per_scenario[k], name=f"existing supply alone, {k}")
                      for k in data.spec.names})

    def start(self, ctx: Context, data: RobustData, m) -> list:
        """The better of the status quo and the primal search's plan for the scenario that
        leaves the fewest physicians (every scenario's flows re-solved for it): never worse
        than opening nothing in the robust objective."""
        from ..deadline import Deadline
        from ..solver import WALL, StageResult
        from .staffing_search import effort_for, shares, search

        out, quo = [], None
        base = ctx.baseline
        if base is not None and not data.base.force_open:
            write_plan(m, data, Decisions.nothing().days, pd.Series(dtype=float))
            for k in data.spec.names:
                write_flows(m.scenario[k], data.per_scenario[k], base[base["scenario"] == k])
            _set_worst(m, data)
            quo = float(pyo.value(m.uncovered))
            out.append(StageResult(name="start: status quo (open nothing)", status="feasible", objective=quo,
                                   has_solution=True))
        b0 = data.base
        if len(b0.cabinets) + len(b0.centres) == 0 or ctx.deadline.expired(0.0):
            return out
        least = data.physicians.sum().idxmin()
        dk = data.per_scenario[least]
        t = time.perf_counter()
        try:
            clock = Deadline(ctx.deadline.part(shares(ctx.deadline.seconds)[1]))
            plan = search(dk, effort=effort_for(dk, ctx.deadline.seconds), deadline=clock, seed=int(ctx.options.seed))
        except RuntimeError as e:
            out.append(StageResult(name="start: greedy + local search failed, not used", status="error",
                                   seconds=time.perf_counter() - t, extra={"error": str(e)}))
            return out
        if plan is None:
            return out
        days = plan.days.assign(days_per_week=plan.days["days_per_week"] * b0.presence_weeks)
        flows = evaluate_plan(ctx, data, days, plan.fte, name="start: flows of the search's plan")
        if flows is None:
            return out
        saved = {id(v): v.value for v in m.component_data_objects(pyo.Var)}
        write_plan(m, data, days, plan.fte)
        for k in data.spec.names:
            write_flows(m.scenario[k], data.per_scenario[k], flows[k])
        _set_worst(m, data)
        value = float(pyo.value(m.uncovered))
        used = quo is None or value < quo - 1e-7 * max(1.0, abs(value))
        if used:
            data.start_plan["decisions"] = Decisions(
                open_sites=sorted(set(days["site_id"]) | set(plan.fte.index)), days=days,
                fte=plan.fte.astype(float), flows=_long(flows))
        else:
            for v in m.component_data_objects(pyo.Var):
                v.set_value(saved[id(v)], skip_validation=True)
        ctx.say(f"primal search on scenario {least}: {value:,.0f} robust uncovered"
                + ("" if used else " (the status quo is kept)"))
        out.append(StageResult(
            name=f"start: greedy + local search on scenario '{least}', every scenario's flows"
                 + ("" if used else ": not better than the status quo, not used"),
            status="feasible", objective=value, seconds=time.perf_counter() - t, has_solution=True,
            extra={"used": bool(used), "stopped_by": WALL if used and plan.stopped_by_clock else None,
                   "evaluations": int(plan.evaluations)}))
        return out

    def decisions(self, ctx: Context, data: RobustData, m) -> Decisions:
        flows = {}
        for k in data.spec.names:
            b = m.scenario[k]
            # staffing.decisions reads d, y, f, o and x from one block: give it the plan's and this scenario's
            view = _View(m, b)
            one = staffing.decisions(view, data.per_scenario[k])
            flows[k] = one.flows
        return Decisions(open_sites=one.open_sites, days=one.days, fte=one.fte, flows=_long(flows))

    def bound(self, ctx: Context, data: RobustData, m, stages: list):
        """The days-and-FTE-continuous relaxation only: the staffing model's Lagrangian prices
        one scenario's capacity rows and has no robust form here."""
        left = ctx.deadline.left()
        if left is not None and left < staffing.BOUND_MIN_S:
            return None
        stage = staffing.relaxation_bound(ctx, m)
        ctx.extra_stages.append(stage)
        if stage.bound is None or not np.isfinite(stage.bound):
            return None
        return float(stage.bound), staffing.RELAXATION_METHOD

    def polish(self, ctx: Context, data: RobustData, dec: Decisions) -> Decisions:
        """Each scenario's flows re-solved for the plan: in the worst case the search only holds
        the scenarios below the worst one under it, so their own flows may serve more."""
        # No floor: the search's own flows are valid, so the polish never runs past the limit.
        flows = evaluate_plan(ctx, data, dec.days, dec.fte, name="polish: flows for the plan", floor=0.0)
        if flows is not None:
            dec.flows = _long(flows)
        return dec

    def fallback(self, ctx: Context, data: RobustData) -> tuple[Decisions, str]:
        if "decisions" in data.start_plan:
            return data.start_plan["decisions"], "the primal search's plan (the MIP start)"
        return super().fallback(ctx, data)

    def finish(self, ctx: Context, data: RobustData, tables: dict, summary: dict) -> Finish:
        fin = super().finish(ctx, data, tables, summary)
        fin.warnings.append(rb.describe(data.spec) + "; nobody replaces the GPs who stop; the days a practice "
                            "gives hold in every scenario")
        return fin


class _View:
    """The shared plan's variables with one scenario's flows, as ``staffing.decisions`` reads them."""

    def __init__(self, plan, block):
        self.d, self.y, self.f, self.o = plan.d, plan.y, plan.f, plan.o
        self.A, self.C, self.H, self.X = plan.A, plan.C, plan.H, plan.X
        self.x = block.x


ROBUST = StaffingRobust()


# ---------------------------------------------------------------------------------
# A fixed plan under each scenario (``optisite compare --scenarios``)
# ---------------------------------------------------------------------------------

BIG_DAYS = 10**6  # no cap on a fixed plan's days in its evaluation LP (its rows are off)


def evaluate(instance, days: pd.DataFrame, fte: pd.Series, names, *, time_limit: float | None = None) -> pd.DataFrame:
    """A fixed plan (days a week per practice and cabinet, FTE per centre) under each retirement
    scenario in ``names`` (read in the instance's ``robust_year``): each scenario's flow LP with
    the plan fixed, as for the plan's own tables. Days a practice promised beyond what the GPs
    it keeps in a scenario may give are lost, in proportion across its cabinets (``days_lost``).
    One row per scenario: weighted inhabitants without access with the plan (``uncovered``) and
    doing nothing (``uncovered_before``), inhabitants of the planning territory without access
    (``population_uncovered``, ``population_uncovered_before``), ``days_lost``."""
    from ..deadline import Deadline
    from ..retirement import year_instance
    from ..solver import SolveOptions, StageSolver

    inst = instance.with_parameters({"robust_scenarios": ",".join(names), "robust_mode": "worst", "budget": 0})
    s = rb.spec(inst.parameters)
    options = SolveOptions(time_limit=time_limit, threads=1)
    deadline = Deadline(time_limit)
    ctx = Context(instance=inst, options=options, deadline=deadline, solver=StageSolver(options, deadline))
    phys = rb.physicians(inst, s)
    p = inst.parameters
    sites = inst.sites
    days = days if days is not None else pd.DataFrame(columns=["practice_id", "site_id", "days_per_week"])
    fte = (fte if fte is not None else pd.Series(dtype=float)).astype(float)
    fte = fte[fte > 0]
    cab_ids = sorted(set(days["site_id"]))
    cds_ids = sorted(fte.index)
    rows = []
    for k in s.names:
        inst_k = year_instance(inst, phys[k])
        base = staffing.prepare(inst_k, ctx.pairs, ctx.links, tighten=False)
        pw = base.presence_weeks
        give = pd.Series(to_units(give_cap(p, inst_k.practices), p, up=False), index=inst_k.practices.index)
        d = days.assign(units=days["days_per_week"].astype(float) / pw)
        out = d.groupby("practice_id")["units"].sum()
        ratio = np.minimum(1.0, give.reindex(out.index).fillna(0.0) / out.where(out > 0, 1.0))
        d["kept"] = d["units"] * ratio.reindex(d["practice_id"]).to_numpy()
        lost = float(((d["units"] - d["kept"]) * pw).sum())
        plan_data = replace(
            base,
            practices=base.practices.assign(give_cap=BIG_DAYS),
            cabinets=pd.DataFrame({"fixed_cost": sites.loc[cab_ids, "fixed_cost"].astype(float),
                                   "cost_per_day": sites.loc[cab_ids, "cost_per_day"].astype(float),
                                   "min_days": 0, "max_days": BIG_DAYS}, index=pd.Index(cab_ids)),
            centres=pd.DataFrame({"fixed_cost": sites.loc[cds_ids, "fixed_cost"].astype(float),
                                  "cost_per_fte": sites.loc[cds_ids, "cost_per_fte"].astype(float),
                                  "min_fte": 0, "max_fte": fte.reindex(cds_ids).round().astype(int)},
                                 index=pd.Index(cds_ids)),
            links=d[["practice_id", "site_id"]].assign(minutes=0.0).reset_index(drop=True),
            flows=ctx.pairs[ctx.pairs["zone_id"].isin(base.zones.index)
                            & ((ctx.pairs["source_kind"] == "practice")
                               | ctx.pairs["source_id"].isin(cab_ids + cds_ids))].reset_index(drop=True),
            force_open=(), force_closed=(), levers=None)
        values = {}
        for when, kept in (("after", d), ("before", None)):
            m = staffing.build(plan_data if kept is not None else replace(
                plan_data, cabinets=plan_data.cabinets.iloc[:0], centres=plan_data.centres.iloc[:0],
                links=plan_data.links.iloc[:0],
                flows=plan_data.flows[plan_data.flows["source_kind"] == "practice"].reset_index(drop=True)))
            given = {} if kept is None else dict(zip(zip(kept["practice_id"], kept["site_id"]), kept["kept"]))
            for key, v in m.d.items():
                v.domain = pyo.NonNegativeReals
                v.fix(float(given.get(key, 0.0)))
            for c in m.C:
                m.y[c].fix(1)
            for h in m.H:
                m.f[h].fix(int(round(float(fte[h]))))
                m.o[h].fix(1)
            for comp in m.component_objects(pyo.Constraint, descend_into=False):
                if comp.local_name not in ("cap_cabinet", "cap_centre", "cap_practice", "demand"):
                    comp.deactivate()
            stage = ctx.solver.lexicographic(m, [Objective(f"evaluate: {k}, {when}", m.uncovered)],
                                             canonical=False, watch=False, floor=staffing.FLOW_LP_FLOOR_S)[0]
            if stage.status != "optimal":
                from ..errors import InfeasibleError

                raise InfeasibleError(f"the flow LP of scenario '{k}' did not solve ({stage.status})")
            z = plan_data.zones
            u = pd.Series({zid: float(m.u[zid].value or 0.0) for zid in m.Z})
            planning = inst.zones["planning"] == 1 if "planning" in inst.zones.columns \
                else pd.Series(True, index=inst.zones.index)
            keep = planning.reindex(u.index).fillna(True).to_numpy(bool)
            values[when] = (float(pyo.value(m.uncovered)),
                            float((z.loc[u.index, "population"] * u / z.loc[u.index, "demand"])[keep].sum()))
        rows.append({"scenario": k, "year": s.year, "uncovered": values["after"][0],
                     "uncovered_before": values["before"][0], "population_uncovered": values["after"][1],
                     "population_uncovered_before": values["before"][1], "days_lost": lost})
    return pd.DataFrame(rows)
