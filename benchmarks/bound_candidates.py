r"""Candidate bound methods for the staffing model that did not win (issue 18 item 4),
kept here so that ``staffing_bounds.py --methods`` can measure them again.

*Deficit cuts.* For a set *K* of zones with neighbourhood *N(K)* (every source some
zone of *K* may use), the demand rows and the capacity rows give

.. math::

    \sum_{z \in K} u_z \;\ge\; D(K) - \sum_{s \in N(K)} \mathrm{cap}_s .

Write :math:`r_K = D(K) - k_L F \sum_{p \in N(K)} \Phi_p` (the deficit of *K* with the
existing supply alone). A day a practice of *N(K)* sends to a cabinet of *N(K)* moves
capacity inside *N(K)*; only days from outside, and centre FTE, add to it. So the
gain of site *i* for *K* is at most :math:`U_i z_i` (:math:`z_i` its opening), with
:math:`U_c = \min(k_L \min(M_c, \sum_{p \notin N(K)} G_p), D(K \cap R_c))` and
:math:`U_h = \min(k_S F N_h, D(K \cap R_h))`, and

.. math::

    \sum_{z \in K} u_z \;\ge\; r_K - \sum_{i \in N(K)} \min(U_i, r_K)\, z_i

is valid (if an open site has :math:`U_i \ge r_K` the right side is at most 0, else it
is the inequality above). The LP only implies it with :math:`U_i` in place of
:math:`\min(U_i, r_K)`: where a site could cover a small deficit many times over,
the LP opens a small fraction of it and pays a small fraction of its fixed cost; the
cut makes it pay the whole fixed cost to cover the whole deficit. The sets *K* are
the connected pieces of the zones left short by the existing supply alone, closed by
alternating paths (``deficit_sets``): every source of *N(K)* is saturated there.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DeficitCut:
    """``sum(u[z] for z in zones) >= rhs - sum(coef * opening[site])``."""

    zones: tuple
    rhs: float
    coefficients: dict  # site id -> coefficient (min(U_i, r_K)), cabinets and centres alike


def deficit_sets(data, baseline: pd.DataFrame | None) -> list[tuple]:
    """Zone sets short of supply with the existing practices alone: from each zone the
    status quo leaves short, the zones reachable by alternating paths (zone -> any
    source within the cutoff -> zones that source serves), split into connected pieces.
    Any zone set gives a valid cut; these are the ones whose deficit is tight."""
    if baseline is None or not len(baseline):
        return []
    dem = data.zones["demand"]
    served = baseline.groupby("zone_id")["consultations"].sum() / data.unit
    short = dem.index[(dem - served.reindex(dem.index).fillna(0.0)) > 1e-6 * np.maximum(1.0, dem)]
    sources_of = data.flows.groupby("zone_id")["source_id"].apply(list).to_dict()
    # Flows below a thousandth of an inhabitant are solver round-off: an alternating path
    # through them could carry nothing, and would join pieces that are apart.
    used = baseline[baseline["consultations"] > 1e-3 * data.unit]
    served_by = used.groupby("source_id")["zone_id"].apply(list).to_dict()
    seen_z, seen_s = set(short), set()
    todo = deque(short)
    while todo:
        z = todo.popleft()
        for s in sources_of.get(z, ()):
            if s in seen_s:
                continue
            seen_s.add(s)
            for z2 in served_by.get(s, ()):
                if z2 not in seen_z and z2 in dem.index:
                    seen_z.add(z2)
                    todo.append(z2)
    # Connected pieces of the zones found, two zones joined when they share a source.
    parent = {z: z for z in seen_z}

    def find(z):
        while parent[z] != z:
            parent[z] = parent[parent[z]]
            z = parent[z]
        return z

    pairs = data.flows[data.flows["zone_id"].isin(seen_z)]
    for _s, zs in pairs.groupby("source_id")["zone_id"]:
        zs = list(zs)
        for z in zs[1:]:
            a, b = find(zs[0]), find(z)
            if a != b:
                parent[b] = a
    pieces: dict = {}
    for z in sorted(seen_z, key=str):
        pieces.setdefault(find(z), []).append(z)
    return [tuple(v) for v in sorted(pieces.values(), key=lambda v: str(v[0]))]


def deficit_cut(data, zones) -> DeficitCut | None:
    """The deficit cut of one zone set (None when the existing supply covers it)."""
    zones = list(zones)
    zset = set(zones)
    dem = data.zones["demand"]
    pairs = data.flows[data.flows["zone_id"].isin(zset)]
    near = set(pairs["source_id"])
    prac = data.practices
    inside = [p for p in prac.index if p in near]
    r = float(dem.loc[zones].sum()) - data.per_day * data.days_per_fte * float(prac.loc[inside, "physicians"].sum())
    if r <= 1e-6:
        return None
    reach = pairs.merge(dem.rename("demand"), left_on="zone_id", right_index=True).groupby("source_id")["demand"].sum()
    coef = {}
    links = data.links[~data.links["practice_id"].isin(inside)]
    give = prac["give_cap"]
    outside = links.assign(g=give.reindex(links["practice_id"]).to_numpy()).groupby("site_id")["g"].sum()
    for c in data.cabinets.index:
        if c in near:
            days = min(float(data.cabinets.at[c, "max_days"]), float(outside.get(c, 0.0)))
            u = min(data.per_day * days, float(reach[c]), r)
            if u > 0:
                coef[c] = u
    for h in data.centres.index:
        if h in near:
            u = min(data.per_fte * float(data.centres.at[h, "max_fte"]), float(reach[h]), r)
            if u > 0:
                coef[h] = u
    return DeficitCut(zones=tuple(zones), rhs=r, coefficients=coef)


def deficit_cuts(data, baseline: pd.DataFrame | None) -> list[DeficitCut]:
    """The deficit cuts of :func:`deficit_sets`."""
    cuts = (deficit_cut(data, k) for k in deficit_sets(data, baseline))
    return [c for c in cuts if c is not None]



def add_deficit_cuts(m, cuts) -> None:
    """The cuts as rows of ``m`` (``m.deficit_cut``)."""
    import pyomo.environ as pyo

    m.deficit_cut = pyo.ConstraintList()
    for c in cuts:
        m.deficit_cut.add(sum(m.u[z] for z in c.zones)
                          + sum(v * (m.y[s] if s in m.C else m.o[s]) for s, v in c.coefficients.items()) >= c.rhs)


def add_pair_links(m, data) -> None:
    """Per-pair opening links ``d_pc <= min(G_p, M_c) y_c`` (``m.pair_link``)."""
    import pyomo.environ as pyo

    give, most = data.practices["give_cap"].to_dict(), data.cabinets["max_days"].to_dict()
    m.pair_link = pyo.Constraint(m.A, rule=lambda m, p, c: m.d[p, c] <= min(give[p], most[c]) * m.y[c])


def relax(m, *, openings: bool) -> None:
    """Days and FTE continuous; with ``openings`` also y, o in [0, 1] (the LP)."""
    import pyomo.environ as pyo

    for v in list(m.d.values()) + list(m.f.values()):
        v.domain = pyo.NonNegativeReals
    if openings:
        for v in list(m.y.values()) + list(m.o.values()):
            v.domain = pyo.UnitInterval


def add_levels(m, data, *, prune: bool) -> None:
    """Capacity levels: one binary per site and staffing level (``m.w[c, k]``: cabinet *c*
    open with *k* days; ``m.z[h, k]``: centre *h* with *k* FTE), at most one per site,
    tied to the model's openings, days and FTE. ``prune`` leaves out the levels a plan
    within the budget cannot hold (``staffing_bound.budget_caps``)."""
    import pyomo.environ as pyo
    from optisite.models.staffing_bound import budget_caps

    cab, cen = data.cabinets, data.centres
    days, fte = budget_caps(data) if prune else (cab["max_days"], cen["max_fte"])
    m.LC = pyo.Set(dimen=2, initialize=[(c, k) for c in m.C for k in range(max(int(cab.at[c, "min_days"]), 1),
                                                                           int(days[c]) + 1)], ordered=True)
    m.LH = pyo.Set(dimen=2, initialize=[(h, k) for h in m.H for k in range(max(int(cen.at[h, "min_fte"]), 1),
                                                                           int(fte[h]) + 1)], ordered=True)
    m.w = pyo.Var(m.LC, domain=pyo.Binary, initialize=0)
    m.z = pyo.Var(m.LH, domain=pyo.Binary, initialize=0)
    lc = pd.Series([k for _c, k in m.LC], index=[c for c, _k in m.LC], dtype=float)
    lh = pd.Series([k for _h, k in m.LH], index=[h for h, _k in m.LH], dtype=float)
    of_c = {c: [(c, k) for k in lc[[c]].astype(int)] if c in lc.index else [] for c in m.C}
    of_h = {h: [(h, k) for k in lh[[h]].astype(int)] if h in lh.index else [] for h in m.H}
    into = m._days_to
    m.level_cab_open = pyo.Constraint(m.C, rule=lambda m, c: m.y[c] == sum(m.w[i] for i in of_c[c]))
    m.level_cab_days = pyo.Constraint(m.C, rule=lambda m, c: sum(m.d[p, c] for p in into.get(c, ()))
                                      == sum(i[1] * m.w[i] for i in of_c[c]))
    m.level_cen_open = pyo.Constraint(m.H, rule=lambda m, h: m.o[h] == sum(m.z[i] for i in of_h[h]))
    m.level_cen_fte = pyo.Constraint(m.H, rule=lambda m, h: m.f[h] == sum(i[1] * m.z[i] for i in of_h[h]))


def relax_levels(m) -> None:
    for v in list(m.w.values()) + list(m.z.values()):
        v.domain = pyo_unit()


def pyo_unit():
    import pyomo.environ as pyo

    return pyo.UnitInterval


def apply(m, data, method: str, cuts) -> None:
    """Turn the model as built into candidate ``method`` (the names of
    ``staffing_bounds.py --methods``): deficit cuts, per-pair links, capacity levels,
    then a relaxation."""
    if "deficit" in method:
        add_deficit_cuts(m, cuts)
    if method == "lp_pairs":
        add_pair_links(m, data)
    if method in ("levels", "lp_levels", "lp_levels_all"):
        add_levels(m, data, prune=method != "lp_levels_all")
        if method.startswith("lp"):
            relax_levels(m)
    if method.startswith("lp"):
        relax(m, openings=True)
    if method == "relax_df":
        relax(m, openings=False)


def components(m) -> list[int]:
    """Sizes of the connected components of the zone-source-practice graph (pairs and links)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    idx: dict = {}

    def node(k):
        return idx.setdefault(k, len(idx))

    edges = [(node(("z", z)), node(("s", s))) for z, s in m.X] + [(node(("s", p)), node(("s", c))) for p, c in m.A]
    r, c = zip(*edges)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(len(idx), len(idx)))
    _n, label = connected_components(graph, directed=False)
    return sorted(np.bincount(label).tolist(), reverse=True)


# ---------------------------------------------------------------------------------
# Candidates that solve more than once (staffing_bounds.py runs them through ITERATIVE)
# ---------------------------------------------------------------------------------

def lagrange(built, time_limit: float, start) -> dict:
    """The Lagrangian of the capacity rows (``optisite.models.staffing_bound``)."""
    from optisite.models.staffing_bound import lagrangian_bound

    r = lagrangian_bound(built.data, time_limit=time_limit)
    solved = r.bound >= r.master - 1e-7 * max(1.0, abs(r.master))
    return {"status": "optimal" if solved else "time_limit", "objective": r.master, "bound": r.bound,
            "note": f"{r.iterations} master round(s); LP {r.lp:,.1f}; at the LP's prices {r.history[0][1]:,.1f}"}


def cover_cuts(data, z: dict, budget: float, mins) -> list[tuple]:
    """Violated (extended) cover inequalities of the openings' knapsack
    sum(min cost_i z_i) <= B at the LP point ``z``: each as (sites, rhs)."""
    items = sorted((i for i in mins.index if mins[i] > 0), key=lambda i: ((1 - z.get(i, 0.0)) / mins[i], str(i)))
    cover, weight = [], 0.0
    for i in items:
        cover.append(i)
        weight += mins[i]
        if weight > budget + 1e-6:
            break
    if weight <= budget + 1e-6:
        return []
    for i in sorted(cover, key=lambda i: -z.get(i, 0.0)):  # make it minimal, dropping the smallest z first
        if weight - mins[i] > budget + 1e-6 and z.get(i, 0.0) < 1 - 1e-9:
            cover.remove(i)
            weight -= mins[i]
    rhs = len(cover) - 1
    heaviest = max(mins[i] for i in cover)
    extended = cover + [i for i in mins.index if i not in cover and mins[i] >= heaviest]
    if sum(z.get(i, 0.0) for i in extended) > rhs + 1e-6:
        return [(tuple(extended), rhs)]
    return []


def covers(built, time_limit: float, start) -> dict:
    """Cut rounds: the LP, violated extended covers of the openings' budget knapsack
    (minimum costs) added, re-solved, until none is violated; then HiGHS on the model
    with the cuts for the time left (its bound, or the last LP's, whichever is higher)."""
    import time

    import pyomo.environ as pyo
    from optisite.models.base import Objective
    from optisite.models.staffing import minimum_costs

    t0 = time.perf_counter()
    data, ctx = built.data, built.context
    mins = minimum_costs(data)
    lp = built.model.build(data)
    relax(lp, openings=True)
    lp.cover = pyo.ConstraintList()
    found, lp_bound, rounds = [], None, 0
    for rounds in range(1, 21):
        st = ctx.solver.lexicographic(lp, [Objective("uncovered", lp.uncovered)], canonical=False,
                                      time_limit=max(1.0, time_limit - (time.perf_counter() - t0)), watch=False)[0]
        lp_bound = st.objective
        z = {c: float(lp.y[c].value or 0) for c in lp.C} | {h: float(lp.o[h].value or 0) for h in lp.H}
        new = cover_cuts(data, z, data.budget, mins)
        if not new:
            break
        for sites, rhs in new:
            lp.cover.add(sum(lp.y[i] if i in lp.C else lp.o[i] for i in sites) <= rhs)
        found += new
    m = built.model.build(data)
    m.cover = pyo.ConstraintList()
    for sites, rhs in found:
        m.cover.add(sum(m.y[i] if i in m.C else m.o[i] for i in sites) <= rhs)
    ok = start(m)
    left = time_limit - (time.perf_counter() - t0)
    st = ctx.solver.lexicographic(m, [Objective("uncovered", m.uncovered)], warm_start=bool(ok), canonical=False,
                                  time_limit=max(1.0, left), gap=1e-4, watch=False)[0]
    bound = max(b for b in (st.bound, lp_bound) if b is not None)
    return {"status": st.status, "objective": st.objective, "bound": bound,
            "note": f"{len(found)} cover cut(s) in {rounds} LP round(s); LP with them {lp_bound:,.1f}"}


def openings_first(built, time_limit: float, start) -> dict:
    """A master over the openings (days and FTE continuous, a valid relaxation), its
    openings fixed and the integer staffing solved for them, a no-good cut on the
    pattern, repeat. Bound: min(the master's bound with every evaluated pattern
    excluded, the proven bounds of the evaluated patterns)."""
    import time

    import pyomo.environ as pyo
    from optisite.models.base import Objective

    t0 = time.perf_counter()
    data, ctx = built.data, built.context
    left = lambda: time_limit - (time.perf_counter() - t0)  # noqa: E731
    master = built.model.build(data)
    relax(master, openings=False)
    master.nogood = pyo.ConstraintList()
    start(master)
    subs, best, master_bound, patterns, status = [], None, None, 0, "time_limit"
    while left() > 1.0:
        st = ctx.solver.lexicographic(master, [Objective("uncovered", master.uncovered)], warm_start=patterns == 0,
                                      canonical=False, time_limit=left(), gap=1e-6, watch=False)[0]
        master_bound = st.bound
        if st.status == "infeasible":
            master_bound, status = float("inf"), "optimal"
            break
        if st.status != "optimal" or left() <= 1.0:
            break
        opened_c = [c for c in master.C if (master.y[c].value or 0) > 0.5]
        opened_h = [h for h in master.H if (master.o[h].value or 0) > 0.5]
        sub = built.model.build(data)
        for c in sub.C:
            sub.y[c].fix(1 if c in opened_c else 0)
        for h in sub.H:
            sub.o[h].fix(1 if h in opened_h else 0)
        s2 = ctx.solver.lexicographic(sub, [Objective("uncovered", sub.uncovered)], canonical=False,
                                      time_limit=max(1.0, left()), gap=1e-6, watch=False)[0]
        patterns += 1
        if s2.status != "infeasible":
            subs.append(s2.bound if s2.bound is not None else float("-inf"))
            if s2.objective is not None and (best is None or s2.objective < best):
                best = s2.objective
        master.nogood.add(sum(1 - master.y[c] for c in opened_c) + sum(master.y[c] for c in master.C if c not in opened_c)
                          + sum(1 - master.o[h] for h in opened_h) + sum(master.o[h] for h in master.H if h not in opened_h)
                          >= 1)
    bounds = [b for b in [master_bound] + subs if b is not None]
    bound = min(bounds) if bounds else float("nan")
    if best is not None and bound >= best - 1e-6 * max(1.0, best):
        status = "optimal"
    return {"status": status, "objective": best if best is not None else float("nan"), "bound": bound,
            "note": f"{patterns} pattern(s) evaluated; last master bound "
                    f"{master_bound if master_bound is not None else float('nan'):,.1f}"}


ITERATIVE = {"lagrange": lagrange, "covers": covers, "openings": openings_first}


def add_apl_site_caps(m, data) -> int:
    r"""apl model: each zone's row with its positive terms grouped by site and capped at
    :math:`R_i` times the site's opening, :math:`g_{is} \le \min(\sum_p \min(\alpha_{ipc}, R_i) d_{pc},
    R_i y_s)`, in place of ``apl_link`` (the same integer plans: one open site lifting
    zone *i* to :math:`R_i` already meets the row, as in ``models/apl.md``). Where the LP
    opens a cabinet at a fifth to send one day, it now credits a fifth of :math:`R_i`.
    Returns the number of new variables."""
    import pyomo.environ as pyo
    from optisite.models.apl import loss_floor

    T, const = data.threshold, data.constant
    lo = pd.Series(loss_floor(data)).combine(const, min)
    R = (T - const + lo).reindex(list(m.B))
    keep = [i for i in m.B if R[i] > 0 and i in m.apl_link and m.apl_link[i].active]
    on_a, on_h = set(m.A), set(m.H)
    dt = data.days_terms[data.days_terms["zone_id"].isin(keep)]
    dt = dt[[(p, s) in on_a for p, s in zip(dt["practice_id"], dt["site_id"])]]
    ft = data.fte_terms[data.fte_terms["zone_id"].isin(keep) & data.fte_terms["site_id"].isin(on_h)]
    pos, neg, fpos = {}, {}, {}
    for z, p, s, a in dt.itertuples(index=False):
        if a > 0:
            pos.setdefault((z, s), []).append((p, min(a, R[z])))
        else:
            neg.setdefault(z, []).append((p, s, a))
    for z, h, a in ft.itertuples(index=False):
        if a > 0:
            fpos[(z, h)] = min(a, R[z])
    keys = sorted(set(pos) | set(fpos))
    by_zone: dict = {}
    for z, s in keys:
        by_zone.setdefault(z, []).append(s)
    for i in keep:
        m.apl_link[i].deactivate()
    m.G = pyo.Set(dimen=2, initialize=keys, ordered=True)
    m.g = pyo.Var(m.G, bounds=lambda m, z, s: (0, R[z]))
    m.g_terms = pyo.Constraint(m.G, rule=lambda m, z, s: m.g[z, s] <= (
        fpos[(z, s)] * m.f[s] if (z, s) in fpos else sum(a * m.d[p, s] for p, a in pos[(z, s)])))
    m.g_open = pyo.Constraint(m.G, rule=lambda m, z, s: m.g[z, s] <= R[z] * (m.o[s] if s in on_h else m.y[s]))
    m.K = pyo.Set(initialize=keep, ordered=True)
    m.apl_link_sites = pyo.Constraint(m.K, rule=lambda m, i: (
        sum(m.g[i, s] for s in by_zone.get(i, ())) + sum(a * m.d[p, s] for p, s, a in neg.get(i, ()))
        + float(lo[i]) >= R[i] * m.b[i]))
    return len(keys)
