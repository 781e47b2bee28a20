r"""Budgeted maximal covering (Church and ReVelle 1974, with a budget instead of p).

.. math::

    \min \; U_0 + \sum_{i \in I} w_i P_i (1 - z_i)
    \quad \text{s.t.} \quad
    z_i \le \sum_{j \in N_i} y_j \;\; \forall i \in I, \qquad
    \sum_{j \in J} c_j y_j \le B, \qquad
    y_j \in \{0, 1\}, \; 0 \le z_i \le 1

* :math:`I`: zones (classes of zones with the same candidates) with weighted population > 0 not already covered by an existing
  practice and within the cutoff of at least one candidate; :math:`U_0` is the
  weighted population of the other uncovered zones (no candidate can help them).
* :math:`N_i`: candidate sites within ``coverage_minutes`` of zone *i*.
* :math:`P_i` = ``zones.population``, :math:`w_i` = ``zones.weight``,
  :math:`c_j` = ``sites.fixed_cost``, :math:`B` = ``budget``.

:math:`z_i` may be continuous: at an optimum it is 1 whenever some open site covers
*i*. The Cour's levers (``optisite/levers.py``): ``zonage_restrict`` leaves the
candidates it forbids out of :math:`J`; ``funder_envelopes`` adds one row per funder,
:math:`\sum_{j \in J_f} c_j y_j \le E_f` over the sites whose ``funder_fixed`` is *f*;
the staffing levers have no effect here (a warning says so).
See ``models/coverage.md`` for the full document.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import scipy.sparse as sp

from .. import levers as lever
from ..instance import Instance
from .base import Context, Decisions, Model, Objective, ResultMeaning, check_budget, register


@dataclass(frozen=True)
class CoverageData:
    """The numbers of one coverage model, independent of Pyomo."""

    sites: pd.Series  # fixed cost by site id (the model's J)
    zones: pd.Series  # weighted population by zone id (the model's I)
    pairs: pd.DataFrame  # zone_id, site_id within the cutoff, restricted to I x J
    constant: float  # weighted population uncovered whatever is opened
    covered_by_practice: pd.Index  # zones covered by an existing practice
    budget: float
    force_open: tuple[str, ...]
    force_closed: tuple[str, ...]
    dominated: tuple[str, ...] = ()  # candidates left out: another covers a superset for no more
    levers: lever.Levers = lever.Levers()  # zonage (its sites are left out) and funders' envelopes
    excluded: tuple[str, ...] = ()  # candidates the zonage forbids, left out of J


def prepare(instance: Instance, pairs: pd.DataFrame, force_open=(), force_closed=()) -> CoverageData:
    """Reduce the instance to the model's sets (``pairs`` from ``reach.coverage_pairs``)."""
    z = instance.zones
    lv = lever.prepare_sites(instance, force_open)
    wp = z["weight"] * z["population"]
    by_practice = pd.Index(pairs.loc[pairs["source_kind"] == "practice", "zone_id"].unique())
    site_pairs = pairs.loc[(pairs["source_kind"] != "practice") & ~pairs["source_id"].isin(list(lv.excluded)),
                           ["zone_id", "source_id"]]
    site_pairs = site_pairs.rename(columns={"source_id": "site_id"})
    needy = wp[(wp > 0) & ~wp.index.isin(by_practice)]
    site_pairs = site_pairs[site_pairs["zone_id"].isin(needy.index)]
    reachable = needy[needy.index.isin(site_pairs["zone_id"])]
    constant = float(needy.drop(reachable.index).sum())
    useful = pd.Index(site_pairs["site_id"].unique()).union(pd.Index(list(force_open)))
    costs = instance.sites.loc[instance.sites.index.isin(useful), "fixed_cost"].sort_index()
    lever.check_forced_fixed(lv, costs, force_open)
    dominated = dominated_sites(site_pairs, costs, force_open, force_closed,
                                group=lever.dominance_groups(lv, costs.index))
    if len(dominated):
        costs = costs.drop(dominated)
        site_pairs = site_pairs[~site_pairs["site_id"].isin(dominated)]
    return CoverageData(
        sites=costs, zones=reachable.sort_index(),
        pairs=site_pairs.sort_values(["zone_id", "site_id"]).reset_index(drop=True),
        constant=constant, covered_by_practice=by_practice,
        budget=float(instance.parameters.budget),
        force_open=tuple(force_open), force_closed=tuple(force_closed),
        dominated=tuple(dominated), levers=lv, excluded=lv.excluded,
    )


def cover_matrix(pairs: pd.DataFrame, zones: pd.Index, sites: pd.Index) -> sp.csc_matrix:
    """Zones x sites 0/1 matrix of ``pairs`` (zone_id, site_id); pairs outside the two
    indexes are left out, repeated pairs count once."""
    rows = zones.get_indexer(pairs["zone_id"])
    cols = sites.get_indexer(pairs["site_id"])
    keep = (rows >= 0) & (cols >= 0)
    a = sp.csc_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(len(zones), len(sites)))
    a.sum_duplicates()
    a.data[:] = 1.0
    return a


def dominated_sites(pairs: pd.DataFrame, costs: pd.Series, force_open=(), force_closed=(),
                    chunk_entries: float = 2e7, group: np.ndarray | None = None) -> list[str]:
    """Candidates that some other candidate makes useless: k dominates j when k covers
    every zone j covers (``pairs``: zone_id, site_id) and costs no more. Any plan opening
    j can open k instead (or drop j when k is open) for no more money and no less
    coverage, so both stages keep their optimum without j.

    The relation is strict and transitive (set inclusion, then cost, then position in
    ``costs``, whose order is the sorted ids), so the candidates kept are its maximal
    elements and every one left out has a kept dominator. A forced-closed candidate
    dominates nothing; a forced-open one is never left out. Overlaps come from the
    sparse product zones-by-sites transposed by itself, a slice of columns at a time
    so that memory stays near ``chunk_entries`` overlap entries. Under funders' envelopes
    (``group``, from ``levers.dominance_groups``) k dominates j only if it is paid by the
    same funder or by one without envelope: only then does the swap keep every envelope.
    """
    n = len(costs)
    if n < 2 or pairs.empty:
        return []
    a = cover_matrix(pairs, pd.Index(pairs["zone_id"].unique()), costs.index)
    size = np.asarray(a.sum(axis=0)).ravel()
    cost = costs.to_numpy(float)
    can_dominate = ~costs.index.isin(list(force_closed))
    may_go = ~costs.index.isin(list(force_open)) & (size > 0)
    at = a.T.tocsr()
    per_row = np.asarray(a.sum(axis=1)).ravel()  # candidates per zone
    # overlap entries created by one column j: sum over its zones of their candidate counts
    work = np.asarray(at @ per_row).ravel()
    out = np.zeros(n, dtype=bool)
    start = 0
    while start < n:
        stop = start + 1
        acc = work[start]
        while stop < n and acc + work[stop] <= chunk_entries:
            acc += work[stop]
            stop += 1
        o = (at[start:stop] @ a).tocoo()  # rows: j in the slice, cols: k, data: |N_j & N_k|
        j = o.row + start
        k = o.col
        contains = (o.data == size[j]) & (j != k) & may_go[j] & can_dominate[k]
        if group is not None:
            contains &= (group[k] == group[j]) | (group[k] < 0)
        j, k = j[contains], k[contains]
        better = (size[k] > size[j]) & (cost[k] <= cost[j])
        better |= (size[k] == size[j]) & ((cost[k] < cost[j]) | ((cost[k] == cost[j]) & (k < j)))
        out[j[better]] = True
        start = stop
    return list(costs.index[out])


def cost_scale(costs: np.ndarray) -> float:
    """A power of ten bringing the largest cost coefficient into [1, 1000) EUR-units."""
    top = float(np.max(costs)) if len(costs) else 0.0
    return 10.0 ** max(0, int(np.floor(np.log10(top))) - 2) if top >= 1 else 1.0


def build(data: CoverageData) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel(name="coverage")
    m.cost_scale = cost_scale(data.sites.to_numpy())
    add_sets(m, data)
    add_variables(m, data)
    add_constraints(m, data)
    add_objectives(m, data)
    return m


def zone_classes(data: CoverageData) -> tuple[dict, dict]:
    """Zones reached by exactly the same candidates are covered together or not at all:
    one row and one variable per class (key: its first zone id), weight summed.
    Returns (key -> candidate list, key -> weighted population)."""
    neighbours = data.pairs.groupby("zone_id", sort=True)["site_id"].apply(tuple)
    by_set: dict[tuple, str] = {}
    nb: dict[str, list] = {}
    weight: dict[str, float] = {}
    w = data.zones
    for zid, sites in neighbours.items():
        key = by_set.setdefault(sites, zid)
        if key == zid:
            nb[key] = list(sites)
            weight[key] = 0.0
        weight[key] += float(w[zid])
    return nb, weight


def add_sets(m, data: CoverageData) -> None:
    m.J = pyo.Set(initialize=list(data.sites.index), ordered=True)
    m._neighbours, m._class_weight = zone_classes(data)
    m.I = pyo.Set(initialize=list(m._neighbours), ordered=True)


def add_variables(m, data: CoverageData) -> None:
    m.y = pyo.Var(m.J, domain=pyo.Binary)
    m.z = pyo.Var(m.I, bounds=(0.0, 1.0))
    for j in data.force_open:
        if j in m.J:
            m.y[j].fix(1)
    for j in data.force_closed:
        if j in m.J:
            m.y[j].fix(0)


def add_constraints(m, data: CoverageData) -> None:
    nb = m._neighbours
    m.covering = pyo.Constraint(m.I, rule=lambda m, i: m.z[i] <= sum(m.y[j] for j in nb[i]))
    c = data.sites.to_dict()
    s = m.cost_scale
    m.cost = pyo.Expression(expr=sum(c[j] * m.y[j] for j in m.J))
    if len(m.J):
        m.budget = pyo.Constraint(expr=sum((c[j] / s) * m.y[j] for j in m.J) <= data.budget / s)
    # funders' envelopes on the fixed costs (no staff here): one row per funder that pays a site of J
    lever.add_envelopes(m, data.levers, [(j, c[j], m.y[j]) for j in m.J], [], scale=s)


def add_objectives(m, data: CoverageData) -> None:
    w = m._class_weight
    m.uncovered = pyo.Expression(expr=data.constant + sum(w[i] * (1 - m.z[i]) for i in m.I))


def opened(m) -> list[str]:
    """Opened site ids, read back from the solved model."""
    return sorted(j for j in m.J if m.y[j].value is not None and m.y[j].value > 0.5)


START_SHARE = 0.25  # at most this share of the time left goes to the greedy + local search start
START_MAX_S = 60.0  # and at most this many seconds (also the cap without a time limit)
HIGHS = {"mip_lp_solver": "ipm"}  # see models/coverage.md: the root LP by interior point


@register
class Coverage(Model):
    """Budgeted maximal covering: the fewest people beyond the cutoff of any GP."""

    name = "coverage"
    title = "budgeted maximal covering: fewest inhabitants beyond the cutoff of a GP (sites only, no staffing)"
    objective_unit = "weighted inhabitants without access"
    result = ResultMeaning(access="reach", objective="weighted_uncovered", capacities=False, apl=False)
    document = "models/coverage.md"

    def prepare(self, ctx: Context) -> CoverageData:
        o = ctx.options
        data = prepare(ctx.instance, ctx.pairs, o.force_open, o.force_closed)
        check_budget(data.sites, list(data.force_open), data.budget, what="cheapest site")
        ctx.warnings.extend(lever.without_staffing(ctx.instance.parameters, self.name))
        return data

    def build(self, data: CoverageData):
        return build(data)

    def describe(self, data: CoverageData) -> str:
        return (f"building coverage model ({len(data.sites)} candidate sites, {len(data.dominated)} left out as "
                f"dominated, {len(data.zones)} zones to cover)")

    def reductions(self, data: CoverageData, m) -> dict:
        return {"candidates_kept": len(data.sites), "candidates_dominated": len(data.dominated),
                "zones": len(data.zones), "zone_classes": len(m.I)}

    def objectives(self, m) -> list[Objective]:
        return [Objective("uncovered", m.uncovered, floor=0.0),
                Objective("cost", m.cost / m.cost_scale, m.cost_scale, floor=0.0)]

    def highs_options(self, m) -> tuple[dict, str | None]:
        return dict(HIGHS), None

    def start(self, ctx: Context, data: CoverageData, m) -> list:
        """The greedy + local-search plan as the MIP start; its seconds come out of the deadline."""
        from ..heuristics import greedy_coverage, set_coverage_start
        from ..solver import StageResult

        if not len(data.sites):
            return []
        seconds = ctx.deadline.part(START_SHARE, at_most=START_MAX_S, at_least=0.2)
        t = time.perf_counter()
        plan = within_envelopes(data, greedy_coverage(data, seconds=seconds, seed=ctx.options.seed))
        set_coverage_start(m, plan)
        value = float(pyo.value(m.uncovered))
        ctx.say(f"greedy start opens {len(plan)} site(s), {value:,.0f} uncovered")
        took = time.perf_counter() - t
        # Its kicks are counted; only its seconds' end makes it differ from run to run.
        cut = seconds is not None and took >= 0.98 * seconds
        return [StageResult(name="start: greedy + local search", status="feasible", objective=value,
                            seconds=took, has_solution=True, extra={"stopped_by": "wall clock"} if cut else {})]

    def decisions(self, ctx: Context, data: CoverageData, m) -> Decisions:
        return Decisions(open_sites=opened(m))


def within_envelopes(data: CoverageData, plan: list[str]) -> list[str]:
    """``plan`` with, for each funder over its envelope, its dearest sites not forced open
    closed until it fits (the greedy plan knows the budget only): a feasible MIP start.
    The forced-open sites fit (``levers.check_forced_fixed``)."""
    lv = data.levers
    keep = list(plan)
    for who, cap in sorted(lv.envelopes.items()):
        mine = [j for j in keep if lv.funder_fixed[j] == who]
        spent = float(data.sites[mine].sum()) if mine else 0.0
        for j in sorted((j for j in mine if j not in data.force_open), key=lambda j: (-data.sites[j], j)):
            if spent <= cap * (1 + 1e-9) + 1e-6:
                break
            keep.remove(j)
            spent -= float(data.sites[j])
    return keep
