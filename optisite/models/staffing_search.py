"""A primal engine for the staffing model: a greedy plan plus local search over openings,
days and FTE, each candidate plan valued exactly by the flow LP for its staffing.

For fixed staffing the model is a transportation LP (sources: practices net of the days
they give, cabinets, centres; sinks: zones, each served unit worth the zone's penalty).
It is built once with ``highspy``; a candidate only changes source capacities (row upper
bounds), so each evaluation is a dual simplex warm-started from the last basis. The LP's
row duals price a unit of capacity at each source: since the LP's value is convex in its
right-hand sides, ``Σ_s π_s Δcap_s`` bounds what any change of capacities can gain, so
only candidates whose bound beats the best exact value so far are solved.

The search stops on a count of LP solves (its effort), fixed by the caller from the time
limit, never on the clock alone: the same inputs give the same plan. See
``models/staffing.md``, "The start".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import pandas as pd

INF = highspy.kHighsInf
GAIN_TOL = 1e-7  # relative: a change of the weighted uncovered below this is no change
LAZY_TRIES = 8  # exact evaluations per greedy step at most (then the best so far is taken)
KICK_PATIENCE = 8  # kicks in a row without a better plan end the search (none helped in the runs measured)
OPEN_SIZES = 10  # opening candidates at 1..OPEN_SIZES days (FTE) at once


@dataclass
class Plan:
    """A staffing plan as the search leaves it: days per link, FTE per centre, its value."""

    days: pd.DataFrame  # practice_id, site_id, days_per_week (int > 0)
    fte: pd.Series  # centre id -> FTE (int > 0)
    uncovered: float  # weighted uncovered demand (the model's first objective)
    cost: float  # EUR/year
    flows: np.ndarray  # x per row of data.flows (model units)
    evaluations: int = 0  # LP solves (the effort)
    stopped_by_clock: bool = False  # the deadline cut the search before its effort count
    phases: dict = field(default_factory=dict)  # value after each phase


LP_GRACE_S = 2.0  # a flow LP may run this far past the search's clock cap (see FlowLP.solve)


class ClockOut(RuntimeError):
    """A flow LP stopped at the deadline: the search has no exact value to go on."""


class FlowLP:
    """The flow LP for fixed staffing, built once; capacities change, the basis stays.
    With a ``deadline``, no solve runs past it (:class:`ClockOut`)."""

    def __init__(self, data, deadline=None):
        self.deadline = deadline
        z = data.zones
        self.zone_pos = {k: i for i, k in enumerate(z.index)}
        P, C, H = list(data.practices.index), list(data.cabinets.index), list(data.centres.index)
        self.np_, self.nc, self.nh = len(P), len(C), len(H)
        nz = len(z)
        self.row_p = nz + np.arange(self.np_)
        self.row_c = nz + self.np_ + np.arange(self.nc)
        self.row_h = nz + self.np_ + self.nc + np.arange(self.nh)
        src = {**{k: int(r) for k, r in zip(P, self.row_p)}, **{k: int(r) for k, r in zip(C, self.row_c)},
               **{k: int(r) for k, r in zip(H, self.row_h)}}
        fl = data.flows
        zi = fl["zone_id"].map(self.zone_pos).to_numpy(np.int64)
        si = fl["source_id"].map(src).to_numpy(np.int64)  # every kept source is a row
        pen = z["penalty"].to_numpy(float)
        dem = z["demand"].to_numpy(float)
        self.const = float(pen @ dem)
        n = len(fl)
        self.ncol = n
        nrow = nz + self.np_ + self.nc + self.nh
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("presolve", "off")  # keep the basis between solves
        # no "threads" option: HiGHS keeps one scheduler per process (see solver._use_threads);
        # the dual simplex runs on one thread anyway
        h.setOptionValue("random_seed", 0)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, nrow
        lp.col_cost_ = -pen[zi] if n else np.zeros(0)
        lp.col_lower_ = np.zeros(n)
        lp.col_upper_ = np.full(n, INF)
        self.base_p = data.per_day * data.days_per_fte * data.practices["physicians"].to_numpy(float)
        lp.row_lower_ = np.full(nrow, -INF)
        lp.row_upper_ = np.concatenate([dem, self.base_p, np.zeros(self.nc + self.nh)])
        # Column-wise: each flow is in its zone's row and its source's row.
        start = np.arange(0, 2 * n + 1, 2, dtype=np.int32)
        index = np.empty(2 * n, dtype=np.int32)
        index[0::2], index[1::2] = zi, si
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = start
        lp.a_matrix_.index_ = index
        lp.a_matrix_.value_ = np.ones(2 * n)
        h.passModel(lp)
        self.h = h
        self.solves = 0

    def set_caps(self, rows: np.ndarray, caps: np.ndarray) -> None:
        if len(rows):
            self.h.changeRowsBounds(len(rows), rows.astype(np.int32), np.full(len(rows), -INF), caps.astype(float))

    def solve(self) -> float:
        """Weighted uncovered demand at the current capacities."""
        self.solves += 1
        if self.ncol == 0:
            return self.const
        left = None if self.deadline is None else self.deadline.left()
        if left is not None:
            # One LP of a region takes tens of seconds: it must stop near the deadline too.
            # The grace lets a search of short LPs stop between two of them (``spent``),
            # keeping its plan, rather than lose it to an LP cut mid-solve.
            left += LP_GRACE_S
            if left <= 0:
                raise ClockOut("flow LP: no time left")
            self.h.setOptionValue("time_limit", float(left))
        self.h.run()
        if self.h.getModelStatus() == highspy.HighsModelStatus.kTimeLimit:
            raise ClockOut("flow LP: stopped at the deadline")
        if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            self.h.clearSolver()  # a lost basis: solve from scratch
            self.h.run()
            if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                raise RuntimeError(f"flow LP: {self.h.modelStatusToString(self.h.getModelStatus())}")
        return self.const + self.h.getInfo().objective_function_value

    def prices(self) -> np.ndarray:
        """Value of one more unit of capacity per row (>= 0), from the last solve."""
        if self.ncol == 0:
            return np.zeros(self.h.getNumRow())
        return np.maximum(0.0, -np.asarray(self.h.getSolution().row_dual, dtype=float))

    def flows(self) -> np.ndarray:
        if self.ncol == 0:
            return np.zeros(0)
        return np.maximum(0.0, np.asarray(self.h.getSolution().col_value, dtype=float))


class Search:
    """The staffing decisions as arrays, the moves on them and their exact values."""

    def __init__(self, data, *, effort: int, deadline=None, seed: int = 0):
        self.data = data
        self.lp = FlowLP(data, deadline)
        pr, cab, cds = data.practices, data.cabinets, data.centres
        self.kd, self.kf = data.per_day, data.per_fte
        self.G = pr["give_cap"].to_numpy(np.int64)
        ppos = {k: i for i, k in enumerate(pr.index)}
        cpos = {k: i for i, k in enumerate(cab.index)}
        self.lp_ = data.links["practice_id"].map(ppos).to_numpy(np.int64)
        self.lc = data.links["site_id"].map(cpos).to_numpy(np.int64)
        self.lo_c = np.maximum(cab["min_days"].to_numpy(np.int64), 1)
        # zonage_restrict: a site the zonage forbids gets no day and no FTE (levers.py)
        excluded = set(data.levers.excluded) if data.levers is not None else set()
        self.hi_c = np.where(cab.index.isin(list(excluded)), 0, cab["max_days"].to_numpy(np.int64))
        self.a_c = cab["fixed_cost"].to_numpy(float)
        self.e_c = data.weeks * cab["cost_per_day"].to_numpy(float)
        self.lo_h = np.maximum(cds["min_fte"].to_numpy(np.int64), 1)
        self.hi_h = np.where(cds.index.isin(list(excluded)), 0, cds["max_fte"].to_numpy(np.int64))
        self.a_h = cds["fixed_cost"].to_numpy(float)
        self.g_h = cds["cost_per_fte"].to_numpy(float)
        self.budget = float(data.budget)
        forced = set(data.force_open)
        self.forced_c = np.array([c in forced for c in cab.index], bool)
        self.forced_h = np.array([h in forced for h in cds.index], bool)
        # per-practice and per-cabinet link lists, in link order (deterministic)
        self.links_of_p = [np.flatnonzero(self.lp_ == p) for p in range(len(self.G))]
        self.links_of_c = [np.flatnonzero(self.lc == c) for c in range(len(self.lo_c))]
        self.d = np.zeros(len(self.lp_), np.int64)
        self.din = np.zeros(len(self.lo_c), np.int64)
        self.dout = np.zeros(len(self.G), np.int64)
        self.f = np.zeros(len(self.lo_h), np.int64)
        self.tabu_c = np.zeros(len(self.lo_c), bool)  # sites a refill may not add to (a swap's)
        self.tabu_h = np.zeros(len(self.lo_h), bool)
        self.cost = 0.0
        self.effort = int(effort)
        self.deadline = deadline
        self.rng = np.random.default_rng(seed)
        self.stopped_by_clock = False
        self.dirty = False  # the LP's last solve was not at the current plan
        self.value = self.lp.solve()

    # -- state ------------------------------------------------------------------------
    def tol(self) -> float:
        return GAIN_TOL * max(1.0, abs(self.value))

    def left(self) -> float:
        return self.budget - self.cost

    def spent(self) -> bool:
        if self.lp.solves >= self.effort:
            return True
        if self.deadline is not None and self.deadline.expired(0.0):
            self.stopped_by_clock = True
            return True
        return False

    def snapshot(self) -> tuple:
        return self.d.copy(), self.f.copy(), self.value

    def restore(self, snap: tuple) -> None:
        d, f, value = snap
        links = np.flatnonzero(d != self.d)
        cents = np.flatnonzero(f != self.f)
        self.apply([(int(l), int(d[l] - self.d[l])) for l in links], [(int(h), int(f[h] - self.f[h])) for h in cents])
        self.value = value
        self.dirty = True

    def apply(self, days: list, ftes: list) -> float:
        """Change days on links and FTE on centres by the given amounts; returns the cost change."""
        rows, caps = [], []
        before = self.cost
        touched_c, touched_p = set(), set()
        for l, k in days:
            p, c = self.lp_[l], self.lc[l]
            was_open = self.din[c] > 0
            self.d[l] += k
            self.din[c] += k
            self.dout[p] += k
            self.cost += k * self.e_c[c]
            if was_open != (self.din[c] > 0):
                self.cost += self.a_c[c] if self.din[c] > 0 else -self.a_c[c]
            touched_c.add(int(c))
            touched_p.add(int(p))
        for h, k in ftes:
            was_open = self.f[h] > 0
            self.f[h] += k
            self.cost += k * self.g_h[h]
            if was_open != (self.f[h] > 0):
                self.cost += self.a_h[h] if self.f[h] > 0 else -self.a_h[h]
            rows.append(self.lp.row_h[h])
            caps.append(self.kf * self.f[h])
        for c in sorted(touched_c):
            rows.append(self.lp.row_c[c])
            caps.append(self.kd * self.din[c])
        for p in sorted(touched_p):
            rows.append(self.lp.row_p[p])
            caps.append(self.lp.base_p[p] - self.kd * self.dout[p])
        self.lp.set_caps(np.asarray(rows, np.int64), np.asarray(caps, float))
        return self.cost - before

    def try_move(self, days: list, ftes: list) -> tuple[float, float]:
        """(value, cost) of the plan after a move, the plan left unchanged."""
        self.apply(days, ftes)
        value, cost = self.lp.solve(), self.cost
        self.apply([(l, -k) for l, k in days], [(h, -k) for h, k in ftes])
        self.dirty = True
        return value, cost

    def commit(self, days: list, ftes: list) -> None:
        self.apply(days, ftes)
        self.value = self.lp.solve()
        self.dirty = False

    def better(self, value: float, cost: float, than: tuple[float, float]) -> bool:
        """Lexicographic: fewer uncovered, then (same uncovered) cheaper."""
        v0, c0 = than
        if value < v0 - self.tol():
            return True
        return value <= v0 + self.tol() and cost < c0 - 1e-6

    def feasible(self) -> bool:
        ok = (self.dout <= self.G).all() and (self.cost <= self.budget + 1e-6)
        ok &= bool(((self.din == 0) | ((self.din >= self.lo_c) & (self.din <= self.hi_c))).all())
        ok &= bool(((self.f == 0) | ((self.f >= self.lo_h) & (self.f <= self.hi_h))).all())
        ok &= bool((self.din[self.forced_c] > 0).all() and (self.f[self.forced_h] > 0).all())
        return bool(ok)

    # -- candidates -------------------------------------------------------------------
    def _prices(self):
        if self.dirty:  # prices must be the current plan's: they bound the moves from it
            self.value = self.lp.solve()
            self.dirty = False
        pi = self.lp.prices()
        return pi[self.lp.row_p], pi[self.lp.row_c], pi[self.lp.row_h]

    def additions(self) -> tuple[np.ndarray, np.ndarray, list]:
        """Every move that adds staffing within the budget: gain bounds, costs, and a
        maker per candidate (``move_of(makers[i])`` -> (days, ftes)). Vectorised over links."""
        pp, pc, ph = self._prices()
        spare = self.G - self.dout
        left = self.left() + 1e-6
        lp_, lc = self.lp_, self.lc
        kd, kf = self.kd, self.kf
        ubs, costs, makers = [], [], []
        per_day = kd * (pc[lc] - pp[lp_])  # bound per day moved from p to c, per link
        per_day[self.tabu_c[lc]] = -np.inf
        # a day more on a link to an open cabinet
        ok = (self.din[lc] > 0) & (self.din[lc] < self.hi_c[lc]) & (spare[lp_] > 0) & (self.e_c[lc] <= left)
        idx = np.flatnonzero(ok & (per_day > 0))
        ubs.append(per_day[idx])
        costs.append(self.e_c[lc[idx]])
        makers += [(0, int(l), 1) for l in idx]
        # open a cabinet with k days from one practice
        closed = (self.din[lc] == 0) & (per_day > 0)
        for k in range(1, OPEN_SIZES + 1):
            cost = self.a_c[lc] + k * self.e_c[lc]
            ok = closed & (k >= self.lo_c[lc]) & (k <= self.hi_c[lc]) & (spare[lp_] >= k) & (cost <= left)
            idx = np.flatnonzero(ok)
            ubs.append(k * per_day[idx])
            costs.append(cost[idx])
            makers += [(0, int(l), k) for l in idx]
        # open a cabinet whose minimum needs several practices: the least valuable ones first
        for c in np.flatnonzero((self.din == 0) & (self.lo_c > 1) & ~self.tabu_c):
            links = self.links_of_c[c]
            cost = self.a_c[c] + self.lo_c[c] * self.e_c[c]
            if (spare[lp_[links]] >= self.lo_c[c]).any() or cost > left:
                continue
            move = self._gather(links, int(self.lo_c[c]), spare, pp)
            if move is not None:
                ubs.append(np.array([kd * sum(k * (pc[c] - pp[lp_[l]]) for l, k in move)]))
                costs.append(np.array([cost]))
                makers.append((1, move, None))
        # FTE: one more at an open centre, or open one with k FTE
        for h in range(len(self.f)):
            if ph[h] <= 0 or self.tabu_h[h]:
                continue
            if self.f[h] > 0:
                if self.f[h] < self.hi_h[h] and self.g_h[h] <= left:
                    ubs.append(np.array([kf * ph[h]]))
                    costs.append(np.array([self.g_h[h]]))
                    makers.append((2, h, 1))
            else:
                ks = np.arange(int(self.lo_h[h]), int(self.hi_h[h]) + 1)
                cost = self.a_h[h] + ks * self.g_h[h]
                ks, cost = ks[cost <= left], cost[cost <= left]
                ubs.append(ks * kf * ph[h])
                costs.append(cost)
                makers += [(2, h, int(k)) for k in ks]
        ub = np.concatenate(ubs) if ubs else np.zeros(0)
        cost = np.concatenate(costs) if costs else np.zeros(0)
        return ub, cost, makers

    @staticmethod
    def move_of(maker) -> tuple[list, list]:
        kind, a, k = maker
        if kind == 0:
            return [(a, k)], []
        if kind == 1:
            return list(a), []
        return [], [(a, k)]

    def _gather(self, links, need: int, spare, pp) -> list | None:
        """Days for ``need`` from the links' practices, least valuable practice first."""
        order = sorted(links, key=lambda l: (pp[self.lp_[l]], l))
        move, got = [], 0
        for l in order:
            k = int(min(spare[self.lp_[l]], need - got, self.hi_c[self.lc[l]]))
            if k > 0:
                move.append((int(l), k))
                got += k
            if got == need:
                return move
        return None

    def removals(self) -> list[tuple[float, list, list]]:
        """Every move that removes staffing and keeps the plan feasible: (loss bound, days, ftes)."""
        pp, pc, ph = self._prices()
        out = []
        kd, kf = self.kd, self.kf
        for c in np.flatnonzero((self.din > 0) & ~self.forced_c):
            links = self.links_of_c[c]
            move = [(int(l), -int(self.d[l])) for l in links if self.d[l] > 0]
            out.append((sum(-k * kd * (pc[c] - pp[self.lp_[l]]) for l, k in move), move, []))
        for l in np.flatnonzero(self.d > 0):
            c = self.lc[l]
            if self.din[c] - 1 >= self.lo_c[c]:
                out.append((kd * (pc[c] - pp[self.lp_[l]]), [(int(l), -1)], []))
        for h in np.flatnonzero(self.f > 0):
            if self.f[h] - 1 >= self.lo_h[h]:
                out.append((kf * ph[h], [], [(int(h), -1)]))
            if not self.forced_h[h]:
                out.append((kf * ph[h] * self.f[h], [], [(int(h), -int(self.f[h]))]))
        return out

    def shifts(self) -> list[tuple[float, float, list, list]]:
        """Moves of one day or one FTE between places: (gain bound, cost change, days, ftes)."""
        pp, pc, ph = self._prices()
        out = []
        kd, kf = self.kd, self.kf
        spare = self.G - self.dout
        for l in np.flatnonzero(self.d > 0):
            p, c = self.lp_[l], self.lc[l]
            closes = self.din[c] == 1
            if self.din[c] - 1 < self.lo_c[c] and not closes:
                continue
            if closes and self.forced_c[c]:
                continue
            saved = self.e_c[c] + (self.a_c[c] if closes else 0.0)
            # the same practice's day to another open cabinet
            for l2 in self.links_of_p[p]:
                c2 = self.lc[l2]
                if c2 == c or self.din[c2] == 0 or self.din[c2] >= self.hi_c[c2]:
                    continue
                out.append((kd * (pc[c2] - pc[c]), self.e_c[c2] - saved, [(int(l), -1), (int(l2), 1)], []))
            # the same cabinet's day from another practice
            if not closes:
                for l2 in self.links_of_c[c]:
                    p2 = self.lp_[l2]
                    if p2 == p or spare[p2] <= 0:
                        continue
                    out.append((kd * (pp[p] - pp[p2]), 0.0, [(int(l), -1), (int(l2), 1)], []))
        open_h = np.flatnonzero(self.f > 0)
        for h in open_h:
            if self.f[h] - 1 < self.lo_h[h]:
                continue
            for h2 in open_h:
                if h2 != h and self.f[h2] < self.hi_h[h2]:
                    out.append((kf * (ph[h2] - ph[h]), self.g_h[h2] - self.g_h[h], [], [(int(h), -1), (int(h2), 1)]))
        return out

    # -- phases -----------------------------------------------------------------------
    def fill(self) -> bool:
        """Greedy: add the move of best exact gain per euro while one gains (lazy: candidates
        in order of their gain bound per euro, solved until none can beat the best)."""
        improved = False
        while not self.spent():
            ub, cost, makers = self.additions()
            keep = ub > self.tol()
            if not keep.any():
                break
            ratio = np.where(keep, ub / np.maximum(cost, 1e-9), -np.inf)
            order = np.argsort(-ratio, kind="stable")
            best, best_ratio = None, 0.0
            for n, i in enumerate(order):
                if ratio[i] <= best_ratio or n >= LAZY_TRIES or self.spent():
                    break
                days, ftes = self.move_of(makers[i])
                value, _ = self.try_move(days, ftes)
                gain = self.value - value
                if gain > self.tol() and gain / max(cost[i], 1e-9) > best_ratio:
                    best, best_ratio = (days, ftes), gain / max(cost[i], 1e-9)
            if best is None:
                break
            self.commit(*best)
            improved = True
        return improved

    def shift_descent(self) -> bool:
        """Best-bound-first shifts, the first that improves taken, until none improves."""
        improved = True
        any_ = False
        while improved and not self.spent():
            improved = False
            cands = [c for c in self.shifts() if c[1] <= self.left() + 1e-6 and (c[0] > self.tol() or c[1] < -1e-6)]
            order = sorted(range(len(cands)), key=lambda i: (-cands[i][0], cands[i][1], i))
            for n, i in enumerate(order):
                if n >= LAZY_TRIES or self.spent():
                    break
                _, _, days, ftes = cands[i]
                value, cost = self.try_move(days, ftes)
                if self.better(value, cost, (self.value, self.cost)):
                    self.commit(days, ftes)
                    improved = any_ = True
                    break
        return any_

    def drop_and_fill(self) -> bool:
        """Each removal (a day, an FTE, a whole site) followed by a greedy refill with the
        budget it frees; kept when the plan is better. Removals whose loss bound is
        smallest per euro freed come first."""
        any_ = False
        tried: set = set()
        while not self.spent():
            improved = False
            cands = self.removals()
            keys = []
            for loss, days, ftes in cands:
                freed = -self._cost_change(days, ftes)
                keys.append(loss / max(freed, 1e-9))
            for i in np.argsort(np.asarray(keys), kind="stable"):
                if self.spent():
                    break
                _, days, ftes = cands[i]
                key = (tuple(days), tuple(ftes), self.d.tobytes(), self.f.tobytes())
                if key in tried:
                    continue
                tried.add(key)
                snap, before = self.snapshot(), (self.value, self.cost)
                self.commit(days, ftes)
                # a swap: the refill may not add back to the sites just reduced
                self.tabu_c[[int(self.lc[l]) for l, _ in days]] = True
                self.tabu_h[[h for h, _ in ftes]] = True
                self.fill()
                self.tabu_c[:] = False
                self.tabu_h[:] = False
                if self.better(self.value, self.cost, before):
                    improved = any_ = True
                    break
                self.restore(snap)
            if not improved:
                break
        return any_

    def _cost_change(self, days: list, ftes: list) -> float:
        d = 0.0
        din = {}
        for l, k in days:
            c = int(self.lc[l])
            din[c] = din.get(c, self.din[c]) + k
            d += k * self.e_c[c]
        for c, n in din.items():
            if (self.din[c] > 0) != (n > 0):
                d += self.a_c[c] if n > 0 else -self.a_c[c]
        for h, k in ftes:
            d += k * self.g_h[h]
            if (self.f[h] > 0) != (self.f[h] + k > 0):
                d += self.a_h[h] if self.f[h] + k > 0 else -self.a_h[h]
        return d

    def descend(self) -> None:
        while not self.spent():
            a = self.fill()
            b = self.shift_descent()
            c = self.drop_and_fill()
            if not (a or b or c):
                return

    def open_forced(self) -> bool:
        """Open the forced-open sites at their minimum (the least valuable practices' days)."""
        pp, _, _ = self._prices()
        for c in np.flatnonzero(self.forced_c & (self.din == 0)):
            move = self._gather(self.links_of_c[c], int(self.lo_c[c]), self.G - self.dout, pp)
            if move is None:
                return False
            self.apply(move, [])
        for h in np.flatnonzero(self.forced_h & (self.f == 0)):
            self.apply([], [(int(h), int(self.lo_h[h]))])
        self.value = self.lp.solve()
        return self.cost <= self.budget + 1e-6

    def kick(self, strength: int) -> None:
        """Close ``strength`` random open sites (not forced) and refill: a perturbation."""
        open_c = np.flatnonzero((self.din > 0) & ~self.forced_c)
        open_h = np.flatnonzero((self.f > 0) & ~self.forced_h)
        sites = [("c", int(c)) for c in open_c] + [("h", int(h)) for h in open_h]
        if not sites:
            return
        pick = self.rng.choice(len(sites), size=min(strength, len(sites)), replace=False)
        days, ftes = [], []
        for i in sorted(pick):
            kind, j = sites[i]
            if kind == "c":
                days += [(int(l), -int(self.d[l])) for l in self.links_of_c[j] if self.d[l] > 0]
            else:
                ftes.append((j, -int(self.f[j])))
        self.commit(days, ftes)

    def plan(self) -> Plan:
        self.lp.solve()  # the current plan's flows
        lk = self.data.links
        on = np.flatnonzero(self.d > 0)
        days = pd.DataFrame({"practice_id": lk["practice_id"].to_numpy()[on], "site_id": lk["site_id"].to_numpy()[on],
                             "days_per_week": self.d[on].astype(int)})
        fte = pd.Series(self.f.astype(float), index=self.data.centres.index)
        return Plan(days=days.reset_index(drop=True), fte=fte[fte > 0], uncovered=self.value, cost=self.cost,
                    flows=self.lp.flows(), evaluations=self.lp.solves, stopped_by_clock=self.stopped_by_clock)


def search(data, *, effort: int, deadline=None, seed: int = 0, kicks: bool = True) -> Plan | None:
    """The best plan found from the status quo (or the forced openings) within ``effort`` LP
    solves: greedy fill, then descent (shifts, drop-and-refill), then seeded kicks. ``None``
    when forced openings cannot be staffed within the budget this way, or when the
    deadline cut a flow LP (on a region one LP takes tens of seconds)."""
    try:
        return _search(data, effort=effort, deadline=deadline, seed=seed, kicks=kicks)
    except ClockOut:
        return None  # the clock cut a flow LP: no plan with an exact value, the status quo stays


def _search(data, *, effort: int, deadline, seed: int, kicks: bool) -> Plan | None:
    t0 = time.perf_counter()
    s = Search(data, effort=effort, deadline=deadline, seed=seed)
    phases = {"status quo": s.value}
    if not s.open_forced():
        return None
    s.fill()
    phases["greedy"] = s.value
    s.descend()
    phases["descent"] = s.value
    best, best_key = s.snapshot(), (s.value, s.cost)
    if kicks:
        rounds = stale = 0
        while not s.spent() and stale < KICK_PATIENCE:
            n_open = int(((s.din > 0) & ~s.forced_c).sum() + ((s.f > 0) & ~s.forced_h).sum())
            if n_open == 0:
                break
            s.kick(int(np.clip(round(n_open / 6), 1, 5)))
            s.descend()
            rounds += 1
            if s.better(s.value, s.cost, best_key):
                best, best_key = s.snapshot(), (s.value, s.cost)
                stale = 0
            else:
                stale += 1
                s.restore(best)
                s.value = best_key[0]
        phases["kicks"] = rounds
    s.restore(best)
    s.value = s.lp.solve()
    out = s.plan()
    phases["seconds"] = time.perf_counter() - t0
    out.phases = phases
    assert s.feasible(), "the search left an infeasible plan"
    return out


# -- effort and the MIP start --------------------------------------------------------------

START_SHARE = 0.3  # of the time limit, turned into an effort count (LP solves)
CLOCK_SHARE = 0.45  # of the time left: the clock's safety cap (the run is then not reproducible)
# At short limits HiGHS has a few seconds only and rarely improves the start, so the
# engine gets more. Measured at 10 s (one thread, load 1): 0.3 -> 0.6 took Nievre 180 -> 0
# (proven), Ain (01) 7,314 -> 685, Puy-de-Dome (63) 761 -> 0 (proven), Isere (38) 1,536
# -> 817, Cotes-d'Armor (22) unchanged, Corse-du-Sud (2A) 3,880 -> 3,961 (the one loss).
SHORT_LIMIT_S, SHORT_START_SHARE, SHORT_CLOCK_SHARE = 15.0, 0.6, 0.75


def shares(time_limit: float | None) -> tuple[float, float]:
    """(share of the limit turned into effort, share of the time left as the clock cap)."""
    if time_limit is not None and time_limit <= SHORT_LIMIT_S:
        return SHORT_START_SHARE, SHORT_CLOCK_SHARE
    return START_SHARE, CLOCK_SHARE
SOLVE_S = (2e-3, 4e-6)  # an LP solve's assumed seconds: a + b x columns (one core, measured under load)
NO_LIMIT_S = 600.0  # the time limit assumed without one
MIN_EFFORT, MAX_EFFORT = 20, 50_000


def effort_for(data, time_limit: float | None) -> int:
    """LP solves the search may make: a function of the time limit and the model's size only,
    so that the same command makes the same search on any machine."""
    seconds = shares(time_limit)[0] * (NO_LIMIT_S if time_limit is None else float(time_limit))
    per = SOLVE_S[0] + SOLVE_S[1] * len(data.flows)
    return int(np.clip(seconds / per, MIN_EFFORT, MAX_EFFORT))


def write_start(m, data, plan: Plan) -> None:
    """Write a plan (staffing, openings, its LP flows and unmet demand) into the model's
    variables, as HiGHS's MIP start; fixed variables are left alone."""
    days = {(p, c): int(k) for p, c, k in plan.days[["practice_id", "site_id", "days_per_week"]]
            .itertuples(index=False)}
    din = plan.days.groupby("site_id")["days_per_week"].sum().to_dict() if len(plan.days) else {}

    def put(v, value):
        if not v.fixed:
            v.set_value(value, skip_validation=True)

    for key, v in m.d.items():
        put(v, days.get(key, 0))
    for c, v in m.y.items():
        put(v, 1 if din.get(c, 0) > 0 else 0)
    for h, v in m.f.items():
        put(v, int(plan.fte.get(h, 0)))
    for h, v in m.o.items():
        put(v, 1 if plan.fte.get(h, 0) > 0 else 0)
    x = dict(zip(zip(data.flows["zone_id"], data.flows["source_id"]), plan.flows))
    for key, v in m.x.items():
        put(v, float(x.get(key, 0.0)))
    served = pd.Series(plan.flows, index=data.flows.index).groupby(data.flows["zone_id"].to_numpy()).sum()
    for z, v in m.u.items():
        put(v, max(0.0, float(data.zones.at[z, "demand"]) - float(served.get(z, 0.0))))
