r"""Bounds for the staffing model beyond HiGHS's own (issue 18 item 4).

*Budget caps.* A site open alone must fit the budget: a centre *h* takes at most
:math:`\lfloor (B - a_h)/g_h \rfloor` FTE, a cabinet *c* at most
:math:`\lfloor (B - a_c)/(W e_c) \rfloor` days (less the minimum cost of the other
forced-open sites). Every integer plan satisfies these caps, so lowering
:math:`N_h`, :math:`M_c` to them keeps the plans and tightens the opening links
:math:`f_h \le N_h o_h`, :math:`\sum_p d_{pc} \le M_c y_c`: the LP can no longer buy
an FTE at :math:`a_h/N_h + g_h` by opening a tenth of a centre whose full staffing the
budget could never pay. It is the LP of the capacity-level reformulation with the
levels over budget left out (``models/staffing.md``, "The bound").

*Lagrangian of the capacity rows* (:func:`lagrangian_bound`). With multipliers
:math:`\mu_s \ge 0` on the practice, cabinet and centre capacity rows the model falls
apart into the flows, where each zone's demand goes to its cheapest source
(:math:`D_z \min(\pi_z, \min_s \mu_s)`), and a budget knapsack over the staffing,
solved as a MIP; the sum is a lower bound for any :math:`\mu` when the knapsack's dual
bound is used. Multipliers come from a Dantzig-Wolfe master over the knapsack's
solutions (with Wentges smoothing), started from the LP's capacity prices, so the
first bound is already at least the LP's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import pandas as pd

INF = highspy.kHighsInf


def budget_caps(data) -> tuple[pd.Series, pd.Series]:
    """Most days of each cabinet and FTE of each centre that a plan within the budget can
    hold (with the other forced-open sites at their minimum); at most the model's max."""
    from .staffing import minimum_costs

    mins = minimum_costs(data)
    forced = [s for s in data.force_open if s in mins.index]
    forced_cost = float(mins.reindex(forced).sum())
    B = float(data.budget)
    cab, cen = data.cabinets, data.centres

    def left(i) -> float:
        return B - forced_cost + (float(mins[i]) if i in forced else 0.0)

    per_day = data.weeks * cab["cost_per_day"]
    days = pd.Series({c: _floor_div(left(c) - cab.at[c, "fixed_cost"], per_day[c]) for c in cab.index}, dtype=float)
    fte = pd.Series({h: _floor_div(left(h) - cen.at[h, "fixed_cost"], cen.at[h, "cost_per_fte"])
                     for h in cen.index}, dtype=float)
    days = np.minimum(cab["max_days"], days.reindex(cab.index).fillna(math.inf)).astype(int) if len(cab) \
        else cab["max_days"]
    fte = np.minimum(cen["max_fte"], fte.reindex(cen.index).fillna(math.inf)).astype(int) if len(cen) \
        else cen["max_fte"]
    return days, fte


def _floor_div(money: float, unit: float) -> float:
    if unit <= 0:
        return math.inf
    return max(0, math.floor(money / unit + 1e-9))  # 0: the site cannot open within the budget


def with_budget_caps(data):
    """``data`` with the budget caps as the sites' max days and FTE (the same integer plans)."""
    from dataclasses import replace

    days, fte = budget_caps(data)
    return replace(data, cabinets=data.cabinets.assign(max_days=days), centres=data.centres.assign(max_fte=fte))


# ---------------------------------------------------------------------------------
# The model as arrays: staffing block, flows, rows (for highspy)
# ---------------------------------------------------------------------------------

@dataclass
class Arrays:
    """Index maps of one staffing model, the same sets and rows as ``staffing.build``."""

    data: object
    links: np.ndarray  # (n_d, 2) practice index, cabinet index
    give: np.ndarray  # per practice
    n_p: int
    n_c: int
    n_h: int
    kd: float
    kf: float
    cap_rows: np.ndarray = field(default=None)  # practice indices with a capacity row

    @classmethod
    def of(cls, data) -> "Arrays":
        pr, cab, cen = data.practices, data.cabinets, data.centres
        pi = {p: i for i, p in enumerate(pr.index)}
        ci = {c: i for i, c in enumerate(cab.index)}
        links = np.array([(pi[p], ci[c]) for p, c in zip(data.links["practice_id"], data.links["site_id"])],
                         dtype=int).reshape(-1, 2)
        fl = data.flows
        served = set(fl.loc[fl["source_id"].isin(pr.index), "source_id"])
        cap_rows = np.array([pi[p] for p in pr.index if p in served], dtype=int)
        return cls(data=data, links=links, give=pr["give_cap"].to_numpy(float), n_p=len(pr), n_c=len(cab),
                   n_h=len(cen), kd=float(data.per_day), kf=float(data.per_fte), cap_rows=cap_rows)

    @property
    def n_d(self) -> int:
        return len(self.links)

    # column order of the staffing block: d (links), y (cabinets), f (centres), o (centres)
    def staffing_lp(self, *, integer: bool) -> highspy.HighsLp:
        """The staffing rows alone (give, open_min/max, fte_min/max, budget), objective 0."""
        data = self.data
        cab, cen = data.cabinets, data.centres
        nd, nc, nh = self.n_d, self.n_c, self.n_h
        n = nd + nc + 2 * nh
        lo = np.zeros(n)
        hi = np.concatenate([np.minimum(self.give[self.links[:, 0]], cab["max_days"].to_numpy(float)[self.links[:, 1]]),
                             np.ones(nc), cen["max_fte"].to_numpy(float), np.ones(nh)])
        for s in data.force_open:
            if s in cab.index:
                lo[nd + cab.index.get_loc(s)] = 1
            elif s in cen.index:
                lo[nd + nc + nh + cen.index.get_loc(s)] = 1
        rows, cols, vals, rlo, rhi = [], [], [], [], []
        r = 0
        by_p = pd.Series(np.arange(nd)).groupby(self.links[:, 0]) if nd else {}
        for p, idx in (by_p if nd else []):
            rows += [r] * len(idx); cols += list(idx); vals += [1.0] * len(idx)
            rlo.append(-INF); rhi.append(self.give[p]); r += 1
        by_c = dict(tuple(pd.Series(np.arange(nd)).groupby(self.links[:, 1]))) if nd else {}
        mind = np.maximum(cab["min_days"].to_numpy(float), 1)
        maxd = cab["max_days"].to_numpy(float)
        for c in range(nc):
            idx = list(by_c.get(c, []))
            for bound, lo_, hi_ in ((mind[c], 0.0, INF), (maxd[c], -INF, 0.0)):
                rows += [r] * (len(idx) + 1); cols += idx + [nd + c]; vals += [1.0] * len(idx) + [-bound]
                rlo.append(lo_); rhi.append(hi_); r += 1
        minf = np.maximum(cen["min_fte"].to_numpy(float), 1)
        maxf = cen["max_fte"].to_numpy(float)
        for h in range(nh):
            for bound, lo_, hi_ in ((minf[h], 0.0, INF), (maxf[h], -INF, 0.0)):
                rows += [r, r]; cols += [nd + nc + h, nd + nc + nh + h]; vals += [1.0, -bound]
                rlo.append(lo_); rhi.append(hi_); r += 1
        scale = 1e-4  # EUR -> 10 kEUR: coefficients near 1
        W = data.weeks
        budget = np.concatenate([W * cab["cost_per_day"].to_numpy(float)[self.links[:, 1]],
                                 cab["fixed_cost"].to_numpy(float), cen["cost_per_fte"].to_numpy(float),
                                 cen["fixed_cost"].to_numpy(float)]) * scale
        nz = np.flatnonzero(budget)
        rows += [r] * len(nz); cols += list(nz); vals += list(budget[nz])
        rlo.append(-INF); rhi.append(data.budget * scale); r += 1
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, r
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = np.zeros(n), lo, hi
        lp.row_lower_, lp.row_upper_ = np.array(rlo, float), np.array(rhi, float)
        _set_matrix(lp, rows, cols, vals, r, n)
        if integer:
            lp.integrality_ = [highspy.HighsVarType.kInteger] * n
        return lp

    def supplies(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(days out of each practice, days in at each cabinet, FTE of each centre) of a staffing vector."""
        nd, nc, nh = self.n_d, self.n_c, self.n_h
        d = v[:nd]
        out = np.bincount(self.links[:, 0], weights=d, minlength=self.n_p) if nd else np.zeros(self.n_p)
        into = np.bincount(self.links[:, 1], weights=d, minlength=nc) if nd else np.zeros(nc)
        return out, into, v[nd + nc:nd + nc + nh].copy()


def _set_matrix(lp, rows, cols, vals, nrow, ncol) -> None:
    from scipy.sparse import csc_matrix

    a = csc_matrix((np.array(vals, float), (np.array(rows, int), np.array(cols, int))), shape=(nrow, ncol))
    a.sum_duplicates()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr
    lp.a_matrix_.index_ = a.indices
    lp.a_matrix_.value_ = a.data
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = ncol, nrow


def _highs(threads: int = 1) -> highspy.Highs:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", threads)
    return h


@dataclass
class Flows:
    """The flow side: zones, sources (practices with a row, cabinets, centres) and pairs."""

    zone_of: np.ndarray  # per pair
    src_row: np.ndarray  # per pair: its source's capacity-row index
    demand: np.ndarray
    penalty: np.ndarray
    n_src: int  # capacity rows: cap_rows practices, then cabinets, then centres

    @classmethod
    def of(cls, a: Arrays) -> "Flows":
        data = a.data
        zi = {z: i for i, z in enumerate(data.zones.index)}
        row = {}
        for k, p in enumerate(a.cap_rows):
            row[data.practices.index[p]] = k
        base = len(a.cap_rows)
        for k, c in enumerate(data.cabinets.index):
            row[c] = base + k
        for k, h in enumerate(data.centres.index):
            row[h] = base + a.n_c + k
        fl = data.flows[data.flows["source_id"].isin(row.keys()) & data.flows["zone_id"].isin(zi.keys())]
        return cls(zone_of=fl["zone_id"].map(zi).to_numpy(int), src_row=fl["source_id"].map(row).to_numpy(int),
                   demand=data.zones["demand"].to_numpy(float), penalty=data.zones["penalty"].to_numpy(float),
                   n_src=base + a.n_c + a.n_h)

    def value(self, mu: np.ndarray) -> float:
        """min over flows of sum(pi u) + sum(mu * served): each zone at its cheapest source."""
        best = self.penalty.copy()
        np.minimum.at(best, self.zone_of, mu[self.src_row])
        return float(best @ self.demand)


def _capacity_coefficients(a: Arrays, v: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right side of each capacity row for staffing ``v``: b_s (served_s <= b_s)."""
    out, into, fte = a.supplies(v)
    return np.concatenate([cap - a.kd * out[a.cap_rows], a.kd * into, a.kf * fte])


@dataclass
class LagrangianResult:
    bound: float
    lp: float
    iterations: int
    master: float
    seconds: float
    history: list
    stopped_by_clock: bool = False


def full_lp(a: Arrays, fl: Flows, caps_lp: highspy.HighsLp) -> tuple[highspy.Highs, int]:
    """The LP relaxation of the whole model (staffing block, then flows, then unmet demand);
    returns the solver and the first capacity row's index (the give rows come first)."""
    data = a.data
    n_s = caps_lp.num_col_
    n_x, n_z = len(fl.zone_of), len(fl.demand)
    r0 = caps_lp.num_row_
    st = caps_lp.a_matrix_
    starts = np.asarray(st.start_)
    cols = list(np.repeat(np.arange(n_s), np.diff(starts)))
    rows, vals = list(np.asarray(st.index_)), list(np.asarray(st.value_))
    cap = data.practices["capacity"].to_numpy(float)[a.cap_rows]
    nd, nc, nh = a.n_d, a.n_c, a.n_h
    prow = {p: k for k, p in enumerate(a.cap_rows)}
    for j, (p, c) in enumerate(a.links):
        if p in prow:
            rows.append(r0 + prow[p]); cols.append(j); vals.append(a.kd)
        rows.append(r0 + len(a.cap_rows) + c); cols.append(j); vals.append(-a.kd)
    for h in range(nh):
        rows.append(r0 + len(a.cap_rows) + nc + h); cols.append(nd + nc + h); vals.append(-a.kf)
    rows += list(r0 + fl.src_row); cols += list(n_s + np.arange(n_x)); vals += [1.0] * n_x
    d0 = r0 + fl.n_src
    rows += list(d0 + fl.zone_of); cols += list(n_s + np.arange(n_x)); vals += [1.0] * n_x
    rows += list(d0 + np.arange(n_z)); cols += list(n_s + n_x + np.arange(n_z)); vals += [1.0] * n_z
    lp = highspy.HighsLp()
    n = n_s + n_x + n_z
    nrow = d0 + n_z
    lp.num_col_, lp.num_row_ = n, nrow
    lp.col_cost_ = np.concatenate([np.zeros(n_s + n_x), fl.penalty])
    lp.col_lower_ = np.concatenate([np.asarray(caps_lp.col_lower_), np.zeros(n_x + n_z)])
    lp.col_upper_ = np.concatenate([np.asarray(caps_lp.col_upper_), np.full(n_x, INF), fl.demand])
    cap_hi = np.concatenate([cap, np.zeros(nc + nh)])
    lp.row_lower_ = np.concatenate([np.asarray(caps_lp.row_lower_), np.full(fl.n_src, -INF), fl.demand])
    lp.row_upper_ = np.concatenate([np.asarray(caps_lp.row_upper_), cap_hi, fl.demand])
    _set_matrix(lp, rows, cols, vals, nrow, n)
    h = _highs()
    h.passModel(lp)
    return h, r0


class Knapsack:
    """The staffing block with the give rows dualised: per site a choice of level (days or
    FTE, or closed) under the budget, solved exactly by dynamic programming over the
    budget in whole cost units (costs rounded down to a unit: a relaxation, so the
    maximum it returns is never below the true one)."""

    MAX_STATES = 20_000

    def __init__(self, a: Arrays):
        data = a.data
        self.a = a
        cab, cen = data.cabinets, data.centres
        costs = np.concatenate([cab["fixed_cost"].to_numpy(float), data.weeks * cab["cost_per_day"].to_numpy(float),
                                cen["fixed_cost"].to_numpy(float), cen["cost_per_fte"].to_numpy(float)])
        ints = np.floor(costs + 1e-6).astype(np.int64)
        unit = int(np.gcd.reduce(ints[ints > 0])) if (ints > 0).any() and np.allclose(ints, costs, atol=1e-6) else 0
        exact = unit > 0 and data.budget / unit <= self.MAX_STATES
        if not exact:
            unit = max(data.budget / self.MAX_STATES, 1e-9)
        self.unit = unit
        self.states = int(math.floor(data.budget / unit + 1e-6))  # rounded up at round-off: still a relaxation
        eps = 1e-9 if exact else 0.0  # exact multiples stay whole; other costs are rounded down
        fl = lambda v: np.floor(np.asarray(v, float) / unit + eps).astype(np.int64)  # noqa: E731
        self.cab_fixed, self.cab_day = fl(cab["fixed_cost"]), fl(data.weeks * cab["cost_per_day"])
        self.cen_fixed, self.cen_fte = fl(cen["fixed_cost"]), fl(cen["cost_per_fte"])
        self.mind = np.maximum(cab["min_days"].to_numpy(int), 1)
        self.maxd = cab["max_days"].to_numpy(int)
        self.minf = np.maximum(cen["min_fte"].to_numpy(int), 1)
        self.maxf = cen["max_fte"].to_numpy(int)
        self.link_cap = np.minimum(a.give[a.links[:, 0]], self.maxd[a.links[:, 1]]).astype(int) if a.n_d \
            else np.zeros(0, int)
        self.links_of = [np.flatnonzero(a.links[:, 1] == c) for c in range(a.n_c)]
        forced = set(data.force_open)
        self.forced = [c in forced for c in cab.index] + [h in forced for h in cen.index]

    def solve(self, day_reward: np.ndarray, fte_reward: np.ndarray) -> tuple[float, np.ndarray]:
        """max sum of rewards over plans within the budget; (value, staffing vector)."""
        a, S = self.a, self.states
        best = np.zeros(S + 1)
        choices = []  # per site: (levels, chosen level per budget state)
        items = []
        for c in range(a.n_c):
            idx = self.links_of[c]
            per = np.repeat(day_reward[idx], self.link_cap[idx])
            order = np.argsort(-per, kind="stable")
            prefix = np.concatenate([[0.0], np.cumsum(per[order])])
            top = min(self.maxd[c], len(per))
            levels = [(k, self.cab_fixed[c] + k * self.cab_day[c], prefix[k]) for k in range(self.mind[c], top + 1)]
            items.append(("c", c, levels))
        for h in range(a.n_h):
            levels = [(k, self.cen_fixed[h] + k * self.cen_fte[h], fte_reward[h] * k)
                      for k in range(self.minf[h], self.maxf[h] + 1)]
            items.append(("h", h, levels))
        for i, (_kind, _j, levels) in enumerate(items):
            new = np.full(S + 1, -np.inf) if self.forced[i] else best.copy()
            pick = np.full(S + 1, -1, dtype=np.int32)
            for li, (_k, cost, reward) in enumerate(levels):
                if cost > S:
                    continue
                cand = np.full(S + 1, -np.inf)
                cand[cost:] = best[:S + 1 - cost] + reward
                better = cand > new
                new[better] = cand[better]
                pick[better] = li
            best = new
            choices.append(pick)
        value = float(best[S])
        if not math.isfinite(value):
            return -math.inf, None
        # Read the plan back.
        v = np.zeros(a.n_d + a.n_c + 2 * a.n_h)
        b = S
        for i in range(len(items) - 1, -1, -1):
            kind, j, levels = items[i]
            li = choices[i][b]
            if li < 0:
                continue
            k, cost, _r = levels[li]
            b -= cost
            if kind == "h":
                v[a.n_d + a.n_c + j] = k
                v[a.n_d + a.n_c + a.n_h + j] = 1
            else:
                idx = self.links_of[j]
                per = np.repeat(np.arange(len(idx)), self.link_cap[idx])
                order = np.argsort(-np.repeat(day_reward[idx], self.link_cap[idx]), kind="stable")[:k]
                np.add.at(v, idx[per[order]], 1.0)
                v[a.n_d + j] = 1
        return value, v


MAX_ROUNDS = 200  # master rounds: the loop ends on this count (reproducible), the clock is a safety net


def lagrangian_bound(data, *, time_limit: float = 60.0, alpha: float = 0.5, caps: bool = True,
                     max_rounds: int = MAX_ROUNDS, say=None) -> LagrangianResult:
    """Best Lagrangian bound on ``uncovered`` found within ``time_limit`` seconds: the
    capacity and give rows relaxed, the budget knapsack over the sites' levels solved
    exactly (:class:`Knapsack`), multipliers from a Dantzig-Wolfe master started at the
    LP's prices (so the first bound is at least the LP's). Refuses a model with levers on."""
    if data.levers is not None and _levers_on(data.levers):
        raise ValueError("the Lagrangian bound does not model the levers' rows")
    t0 = time.perf_counter()
    if caps:
        data = with_budget_caps(data)
    a = Arrays.of(data)
    fl = Flows.of(a)
    cap = data.practices["capacity"].to_numpy(float)[a.cap_rows]
    give_p = np.unique(a.links[:, 0]) if a.n_d else np.zeros(0, int)
    G = a.give[give_p]
    n_g = len(give_p)
    knap = Knapsack(a)
    lp_h, r0 = full_lp(a, fl, a.staffing_lp(integer=False))
    lp_h.setOptionValue("time_limit", max(0.1, 0.8 * time_limit - (time.perf_counter() - t0)))
    lp_h.run()  # any multipliers give a valid bound: an LP stopped at its limit still lends its prices
    lp_value = lp_h.getInfo().objective_function_value
    if lp_h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        lp_value = math.nan
    duals = -np.asarray(lp_h.getSolution().row_dual)
    if len(duals) != lp_h.getNumRow():
        duals = np.zeros(lp_h.getNumRow())
    mu_lp = np.maximum(0.0, duals[r0:r0 + fl.n_src])
    nu_lp = np.maximum(0.0, duals[:n_g])  # the give rows come first in staffing_lp
    n_cap = len(a.cap_rows)

    def price(mu: np.ndarray, nu: np.ndarray) -> tuple[float, np.ndarray | None]:
        mu_p = np.zeros(a.n_p)
        mu_p[a.cap_rows] = mu[:n_cap]
        nu_p = np.zeros(a.n_p)
        nu_p[give_p] = nu
        mu_c, mu_h = mu[n_cap:n_cap + a.n_c], mu[n_cap + a.n_c:]
        day = a.kd * (mu_c[a.links[:, 1]] - mu_p[a.links[:, 0]]) - nu_p[a.links[:, 0]] if a.n_d else np.zeros(0)
        top, v = knap.solve(day, a.kf * mu_h)
        if v is None:
            return -math.inf, None
        return fl.value(mu) - float(mu[:n_cap] @ cap) - float(nu @ G) - top, v

    # Dantzig-Wolfe master: flows x, unmet u, plan weights; rows: capacity, give, demand, convexity.
    n_x, n_z = len(fl.zone_of), len(fl.demand)
    mlp = highspy.HighsLp()
    g0, d0 = fl.n_src, fl.n_src + n_g
    rows = list(fl.src_row) + list(d0 + fl.zone_of) + list(d0 + np.arange(n_z))
    cols = list(np.arange(n_x)) * 2 + list(n_x + np.arange(n_z))
    mlp.num_col_, mlp.num_row_ = n_x + n_z, d0 + n_z + 1
    mlp.col_cost_ = np.concatenate([np.zeros(n_x), fl.penalty])
    mlp.col_lower_ = np.zeros(n_x + n_z)
    mlp.col_upper_ = np.concatenate([np.full(n_x, INF), fl.demand])
    const = np.concatenate([cap, np.zeros(a.n_c + a.n_h)])
    mlp.row_lower_ = np.concatenate([np.full(fl.n_src + n_g, -INF), fl.demand, [1.0]])
    mlp.row_upper_ = np.concatenate([const, G, fl.demand, [1.0]])
    _set_matrix(mlp, rows, cols, [1.0] * (2 * n_x + n_z), mlp.num_row_, mlp.num_col_)
    master = _highs()
    master.passModel(mlp)
    conv = d0 + n_z
    seen = set()

    def add(v: np.ndarray) -> bool:
        key = np.round(v).tobytes()
        if key in seen:
            return False
        seen.add(key)
        b = _capacity_coefficients(a, v, cap)
        out, _into, _f = a.supplies(v)
        coef = np.concatenate([-(b - const), out[give_p]])
        idx = np.flatnonzero(np.abs(coef) > 1e-12)
        master.addCol(0.0, 0.0, INF, len(idx) + 1, np.append(idx, conv).astype(np.int32),
                      np.append(coef[idx], 1.0))
        return True

    value, sol = price(mu_lp, nu_lp)
    best, history = value, [("LP prices", value)]
    if sol is not None:
        add(sol)
    if not data.force_open:
        add(np.zeros(a.n_d + a.n_c + 2 * a.n_h))
    y_best = np.concatenate([mu_lp, nu_lp])
    it, mval, clock = 0, math.inf, False
    while it < max_rounds:
        if time.perf_counter() - t0 >= time_limit:
            clock = True
            break
        it += 1
        master.run()
        if master.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        mval = master.getInfo().objective_function_value
        if best >= mval - 1e-7 * max(1.0, abs(mval)):
            break  # the Lagrangian dual is solved: no multipliers prove more
        y_m = np.maximum(0.0, -np.asarray(master.getSolution().row_dual)[:fl.n_src + n_g])
        y = alpha * y_best + (1 - alpha) * y_m
        value, sol = price(y[:fl.n_src], y[fl.n_src:])
        added = sol is not None and add(sol)
        if value > best:
            best, y_best = value, y
        if not added:  # mispricing at the smoothed point: price at the master's own multipliers
            value, sol = price(y_m[:fl.n_src], y_m[fl.n_src:])
            if value > best:
                best, y_best = value, y_m
            if sol is None or not add(sol):
                break
        history.append((it, best, mval))
        if say:
            say(f"lagrangian {it}: bound {best:,.2f} master {mval:,.2f} ({time.perf_counter() - t0:.1f} s)")
    return LagrangianResult(bound=best, lp=lp_value, iterations=it, master=mval,
                            seconds=time.perf_counter() - t0, history=history, stopped_by_clock=clock)


def _levers_on(lv) -> bool:
    """True when a lever adds rows to the model (zonage exclusions, an FTE limit, envelopes)."""
    return bool(lv.excluded) or lv.max_new_fte is not None or bool(lv.envelopes)


LAGRANGIAN_METHOD = ("a Lagrangian relaxation (the capacity rows priced, the budget shared out exactly "
                     "between the sites' staffing levels, multipliers from a Dantzig-Wolfe master)")


LAGRANGIAN_SHARE = 0.5  # of the seconds left when the hook starts


def lagrangian_stage(ctx, data):
    """The Lagrangian bound as a pipeline stage within the time left (None when the levers
    add rows it does not model, or when less than a second is left)."""
    from ..solver import StageResult

    left = ctx.deadline.left()
    if (data.levers is not None and _levers_on(data.levers)) or (left is not None and left < 1.0):
        return None
    t = time.perf_counter()
    # Half of what is left: the rest stays for the tables, the checker and the writing.
    r = lagrangian_bound(data, time_limit=600.0 if left is None else ctx.deadline.part(LAGRANGIAN_SHARE))
    solved = r.bound >= r.master - 1e-7 * max(1.0, abs(r.master))
    if r.stopped_by_clock and not solved:
        ctx.deadline.cut("bound hook: the Lagrangian's master rounds, stopped by the clock", plan=False)

    def num(x):
        return float(x) if x is not None and math.isfinite(x) else None

    return StageResult(name="bound: Lagrangian of the capacity rows", status="optimal" if solved else "time_limit",
                       bound=num(r.bound), seconds=time.perf_counter() - t,
                       extra={"lp": num(r.lp), "master_rounds": r.iterations, "master": num(r.master),
                              "stopped_by_clock": bool(r.stopped_by_clock)})
