r"""Location set covering (Toregas, Swain, ReVelle and Bergman 1971): what full coverage costs.

.. math::

    \min \sum_{j \in J} c_j y_j
    \quad \text{s.t.} \quad
    \sum_{j \in N_i} y_j \ge 1 \;\; \forall i \in I, \qquad
    y_j \in \{0, 1\}

* :math:`I`: classes of zones with population > 0, not within ``coverage_minutes`` of an
  existing practice, that some candidate site reaches (zones reached by exactly the
  same candidates form one class: one row each). Zones no candidate reaches are
  reported, not made infeasible.
* :math:`N_i`: candidate sites within ``coverage_minutes`` of class *i*.
* :math:`c_j` = ``sites.fixed_cost`` (as in the coverage model). The budget is not a
  constraint: the answer is the cost of covering everyone who can be covered.

Candidates dominated by a cheaper one covering a superset are left out
(``coverage.dominated_sites``, valid here too). The Cour's levers
(``optisite/levers.py``): ``zonage_restrict`` leaves the candidates it forbids out of
:math:`J` (zones only they reach are reported as unreachable); ``funder_envelopes`` adds
one row per funder, :math:`\sum_{j \in J_f} c_j y_j \le E_f` (full coverage within each
funder's envelope, or no plan); the staffing levers have no effect (a warning says so).
See ``models/lscp.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyomo.environ as pyo

from .. import levers as lever
from ..errors import InfeasibleError
from .base import Context, Decisions, Model, Objective, ResultMeaning, register
from .coverage import cost_scale, dominated_sites, zone_classes


@dataclass(frozen=True)
class LscpData:
    """The numbers of one set-covering model, independent of Pyomo."""

    sites: pd.Series  # fixed cost by candidate site id (J)
    zones: pd.Series  # population of each zone to cover (I, before grouping into classes)
    pairs: pd.DataFrame  # zone_id, site_id within the cutoff, restricted to I x J
    unreachable: pd.Series  # population of zones without access that no candidate reaches
    force_open: tuple[str, ...]
    dominated: tuple[str, ...] = ()
    levers: lever.Levers = lever.Levers()  # zonage (its sites are left out) and funders' envelopes


def prepare(instance, pairs: pd.DataFrame, force_open=(), force_closed=()) -> LscpData:
    """Zones to cover and the candidates that reach them (``pairs`` from ``reach.coverage_pairs``)."""
    from ..solution import planning_zones

    lv = lever.prepare_sites(instance, force_open)
    pop = instance.zones["population"].astype(float)
    pop = pop[planning_zones(instance)]  # neighbours across the border are not planned for
    by_practice = set(pairs.loc[pairs["source_kind"] == "practice", "zone_id"])
    need = pop[(pop > 0) & ~pop.index.isin(list(by_practice))]
    shut = list(force_closed) + list(lv.excluded)  # forced closed, or forbidden by the zonage
    site_pairs = pairs.loc[(pairs["source_kind"] != "practice") & ~pairs["source_id"].isin(shut),
                           ["zone_id", "source_id"]].rename(columns={"source_id": "site_id"})
    site_pairs = site_pairs[site_pairs["zone_id"].isin(need.index)]
    reached = need[need.index.isin(site_pairs["zone_id"])]
    useful = pd.Index(site_pairs["site_id"].unique()).union(pd.Index(list(force_open)))
    costs = instance.sites.loc[instance.sites.index.isin(useful), "fixed_cost"].astype(float).sort_index()
    lever.check_forced_fixed(lv, costs, force_open)
    dominated = dominated_sites(site_pairs, costs, force_open, force_closed,
                                group=lever.dominance_groups(lv, costs.index))
    if len(dominated):
        costs = costs.drop(dominated)
        site_pairs = site_pairs[~site_pairs["site_id"].isin(dominated)]
    return LscpData(sites=costs, zones=reached.sort_index(),
                    pairs=site_pairs.sort_values(["zone_id", "site_id"]).reset_index(drop=True),
                    unreachable=need.drop(reached.index).sort_index(), force_open=tuple(force_open),
                    dominated=tuple(dominated), levers=lv)


def build(data: LscpData) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel(name="lscp")
    m.cost_scale = cost_scale(data.sites.to_numpy())
    # zone_classes reads data.pairs and data.zones (a weight per zone): the population here.
    m._neighbours, _ = zone_classes(data)
    m.J = pyo.Set(initialize=list(data.sites.index), ordered=True)
    m.I = pyo.Set(initialize=list(m._neighbours), ordered=True)
    m.y = pyo.Var(m.J, domain=pyo.Binary)
    for j in data.force_open:
        if j in m.J:
            m.y[j].fix(1)
    nb = m._neighbours
    m.cover = pyo.Constraint(m.I, rule=lambda m, i: sum(m.y[j] for j in nb[i]) >= 1)
    c = data.sites.to_dict()
    m.cost = pyo.Expression(expr=sum(c[j] * m.y[j] for j in m.J))
    # funders' envelopes on the fixed costs: one row per funder that pays a site of J
    lever.add_envelopes(m, data.levers, [(j, c[j], m.y[j]) for j in m.J], [], scale=m.cost_scale)
    return m


@register
class Lscp(Model):
    """Location set covering: the cheapest set of sites that gives everyone reachable access."""

    name = "lscp"
    title = "location set covering: the cheapest set of sites putting every reachable inhabitant within the cutoff"
    objective_unit = "EUR/year (fixed cost of the sites opened)"
    result = ResultMeaning(access="reach", objective="cost_total", capacities=False, apl=False,
                           full_coverage=True, budgeted=False)
    document = "models/lscp.md"

    def prepare(self, ctx: Context) -> LscpData:
        o = ctx.options
        data = prepare(ctx.instance, ctx.pairs, o.force_open, o.force_closed)
        p = ctx.instance.parameters
        if len(data.unreachable):
            allowed = f" the zonage allows (zonage_restrict = {p.zonage_restrict})" if data.levers.excluded else ""
            ctx.warnings.append(
                f"{len(data.unreachable):,} zone(s) ({data.unreachable.sum():,.0f} inhabitants) are beyond "
                f"{p.coverage_minutes:g} min of every candidate site{allowed} and practice: "
                "no plan can give them access; they are left out of the covering constraints")
        ctx.warnings.extend(lever.without_staffing(p, self.name))
        return data

    def build(self, data: LscpData):
        return build(data)

    def describe(self, data: LscpData) -> str:
        return (f"building lscp model ({len(data.sites)} candidate sites, {len(data.dominated)} left out as "
                f"dominated, {len(data.zones)} zones to cover, {len(data.unreachable)} unreachable)")

    def reductions(self, data: LscpData, m) -> dict:
        return {"candidates_kept": len(data.sites), "candidates_dominated": len(data.dominated),
                "zones": len(data.zones), "zone_classes": len(m.I),
                "zones_unreachable": len(data.unreachable),
                "population_unreachable": float(data.unreachable.sum())}

    def objectives(self, m) -> list[Objective]:
        return [Objective("cost", m.cost / m.cost_scale, m.cost_scale)]

    def start(self, ctx: Context, data: LscpData, m) -> list:
        """Greedy set cover (cheapest cost per newly covered class) as the MIP start."""
        from ..solver import StageResult

        plan = greedy_cover(m, data)
        if plan is None:
            ctx.say("the greedy set cover cannot cover every zone within the funders' envelopes: no start")
            return []
        for j in m.J:
            if not m.y[j].fixed:
                m.y[j].set_value(1 if j in plan else 0)
        value = float(pyo.value(m.cost))
        ctx.say(f"greedy start opens {len(plan)} site(s) for {value:,.0f} EUR/year")
        return [StageResult(name="start: greedy set cover", status="feasible", objective=value, has_solution=True)]

    def fallback(self, ctx: Context, data: LscpData) -> tuple[Decisions, str]:
        """Without a proven plan, the greedy cover: feasible, so everyone reachable is covered."""
        m = build(data)
        plan = greedy_cover(m, data)
        if plan is None:
            raise InfeasibleError("HiGHS found no plan covering every reachable zone within the funders' envelopes "
                                  "(constraint 'envelope') before the time limit, nor did the greedy set cover; "
                                  "raise funder_envelopes or the time limit")
        return Decisions(open_sites=sorted(plan)), "the greedy set cover (feasible, not optimised)"

    def decisions(self, ctx: Context, data: LscpData, m) -> Decisions:
        return Decisions(open_sites=sorted(j for j in m.J if m.y[j].value is not None and m.y[j].value > 0.5))


def greedy_cover(m, data: LscpData) -> set[str] | None:
    """Forced-open sites, then repeatedly the site with the lowest cost per class it newly
    covers (ties by id), among those whose funder's envelope still has room, until every
    class is covered; None when the envelopes stop it first."""
    cost = data.sites.to_dict()
    lv = data.levers
    room = dict(lv.envelopes)
    for j in data.force_open:
        if lv.funder_fixed.get(j) in room:
            room[lv.funder_fixed[j]] -= cost.get(j, 0.0)

    def fits(j):
        who = lv.funder_fixed.get(j)
        return who not in room or cost[j] <= room[who] * (1 + 1e-9) + 1e-6

    covers: dict[str, set] = {}
    for i, sites in m._neighbours.items():
        for j in sites:
            covers.setdefault(j, set()).add(i)
    plan = {j for j in data.force_open if j in cost}
    left = set(m._neighbours) - set().union(*(covers.get(j, set()) for j in plan))
    while left:
        able = [j for j in covers if j not in plan and covers[j] & left and fits(j)]
        if not able:
            return None
        best = min(able, key=lambda j: (cost[j] / len(covers[j] & left), j))
        plan.add(best)
        left -= covers[best]
        if lv.funder_fixed.get(best) in room:
            room[lv.funder_fixed[best]] -= cost[best]
    return plan
