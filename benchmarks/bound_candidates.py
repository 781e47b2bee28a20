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


def apply(m, data, method: str, cuts) -> None:
    """Turn the model as built into candidate ``method`` (the names of
    ``staffing_bounds.py --methods``): deficit cuts, per-pair links, then a relaxation."""
    if "deficit" in method:
        add_deficit_cuts(m, cuts)
    if method == "lp_pairs":
        add_pair_links(m, data)
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
