r"""The apl model: minimise the population living under an APL threshold.

For fixed population the APL of zone *i* is linear in the supply :math:`S_j` at each
point (``models/apl.md`` proves it): :math:`APL_i = \sum_j a_{ij} S_j`. Supplies are
linear in the staffing decisions of the staffing model:

* practice *p*: :math:`S_p = k_L W (F \Phi_p - \sum_c d_{pc})`,
* cabinet *c*: :math:`S_c = k_L W \sum_p d_{pc}`,
* centre *h*: :math:`S_h = k_S F W f_h`.

With a binary :math:`b_i` (1 when zone *i* is at or above the threshold *T*):

.. math::

    \min \sum_i P_i (1 - b_i) \quad \text{s.t.} \quad
    \sum_j a_{ij} S_j(d, f) \ge T b_i \;\; \forall i, \;\; \text{staffing constraints, budget.}

Then, at that value, the cost is minimised (stage 2), and finally, with every
staffing decision fixed, demand flows are assigned by an LP so that the plan's
coverage is reported on the same basis as the staffing model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyomo.environ as pyo
from pyomo.contrib.appsi.solvers.highs import Highs

from ..apl import apl_linear_coefficients
from ..instance import Instance
from . import staffing


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
    per_day = p.consultations_per_day_liberal * p.working_weeks  # consultations/year per weekly day
    per_fte = p.consultations_per_day_salaried * p.days_per_fte * p.working_weeks
    full = instance.practices["physicians"] * p.days_per_fte * per_day

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

    pop = instance.zones["population"]
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


def build(data: AplData) -> pyo.ConcreteModel:
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

    def link(m, i):
        expr = const.get(i, 0.0) + sum(a * m.d[p, c] for p, c, a in dmap.get(i, ())) \
            + sum(a * m.f[h] for h, a in fmap.get(i, ()))
        if isinstance(expr, (int, float)):
            return pyo.Constraint.Feasible if expr >= T - 1e-12 else m.b[i] <= expr / T
        return expr >= T * m.b[i]

    m.apl_link = pyo.Constraint(m.B, rule=link)
    pop = data.population.to_dict()
    never = float(data.population.drop(can, errors="ignore").sum())
    m.uncovered = pyo.Expression(expr=never + sum(pop[i] * (1 - m.b[i]) for i in m.B))
    m.obj_uncovered = pyo.Objective(expr=m.uncovered, sense=pyo.minimize)
    m.obj_cost = pyo.Objective(expr=m.cost / m.cost_scale, sense=pyo.minimize)
    m.obj_cost.deactivate()
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


def decisions(m, data: AplData) -> dict:
    """Staffing read back, then demand flows assigned by an LP with that staffing fixed."""
    st = data.staffing
    for var in (m.d, m.y, m.f, m.o, m.b):
        for v in var.values():
            v.fix(0 if v.value is None else round(v.value))
    for c in (m.demand, m.cap_cabinet, m.cap_centre, m.cap_practice):
        c.activate()
    for name in ("hold_coverage", "budget", "apl_link"):
        if hasattr(m, name):
            getattr(m, name).deactivate()  # all their variables are fixed now
    for o in (m.obj_uncovered, m.obj_cost):
        o.deactivate()
    pen = st.zones["penalty"].to_dict()
    m.obj_flows = pyo.Objective(expr=sum(pen[z] * m.u[z] for z in m.Z), sense=pyo.minimize)
    opt = Highs()
    opt.config.load_solution = True
    opt.highs_options = {"random_seed": 0}
    opt.solve(m)
    out = staffing.decisions(m, st)
    out["summary"] = {"apl_threshold": data.threshold}
    return out
