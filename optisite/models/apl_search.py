"""A primal engine for the apl model: greedy plus local search on the APL count itself.

APL is linear in the staffing decisions (``models/apl.md`` section 2): with the days on
every practice-cabinet link and the FTE of every centre as one integer vector ``x``,
``APL = C + A x`` for a sparse zones x decisions matrix ``A`` (from ``apl.prepare``).
A plan is valued exactly: the population of the zones whose APL stays under the
threshold (strictly below, with the model's 1e-9 tolerance on a zone reaching it), then
its cost. A move changes a few columns of ``x``, so only the rows of those columns are
recomputed, and a whole batch of candidate moves is valued in one numpy pass.

Phases: the forced openings, greedy fills (the addition lifting the most population per
euro, per root euro, in total) from the status quo and from any plan the caller passes
(e.g. the staffing model's), descents (source swaps, shifts, trims, drop-and-refill)
from the best greedy plans, then kicks (close random sites, descend again) and a final
descent on the best. The search stops on a count of move evaluations (its effort) fixed by the caller
from the time limit and the model's size, never on the clock alone (the clock is a
safety cap): the same inputs give the same plan. See ``models/apl.md``, "The start".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

LIFT_TOL = 1e-9  # a zone at APL >= T - LIFT_TOL is lifted (the model's rows hold to this)
MAX_STEP = 10  # units (days or FTE) one move adds to a site at most
DESCEND_WITHIN = 0.1  # greedy plans this much (relative) above the best greedy one get a descent too
PARTIAL_DROPS = False  # drop-and-refill tries an FTE less at a centre (final descent only: measured
# on Nièvre, in every descent it costs kicks, 32,080 against 31,030 mean over 4 seeds)
CENTRE_FOR_CABINETS = True  # the refill after dropping a centre adds cabinets first
KICK_DIVISOR = 6  # a kick closes this fraction (1 / KICK_DIVISOR) of the open sites, 1 to 5
FINAL_SHARE = 0.15  # of the effort left after the descents, kept for the final descent
KICK_PATIENCE = 100  # kicks in a row without a better plan end the search
# greedy starts from the status quo: (name, alpha), the fill ranking population lifted / cost ** alpha
# (name, alpha, cabinets first): the fill ranks additions by population lifted / cost ** alpha;
# "cabinets first" would fill with cabinets alone, then with centres too (measured on
# Nièvre: a worse greedy plan and descent, 42,797 and 38,820 against 36,225 and 32,206)
GREEDY_STARTS = (("status quo", 1.0, False), ("status quo, most lifted", 0.0, False),
                 ("status quo, per root euro", 0.5, False))


@dataclass
class AplPlan:
    """A plan as the search leaves it: days per link (in units of ``d``), FTE per centre."""

    days: pd.DataFrame  # practice_id, site_id, days (int > 0, units of the model's d)
    fte: pd.Series  # centre id -> FTE (int > 0)
    under: float  # population under the threshold (the apl model's objective)
    cost: float  # EUR/year
    evaluations: int = 0  # move evaluations (the effort)
    stopped_by_clock: bool = False
    seed: str = ""  # the seed the plan was reached from
    phases: dict = field(default_factory=dict)


def _either(is_c: np.ndarray, of_c: np.ndarray, of_h: np.ndarray, c: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Per candidate, ``of_c[c]`` for a cabinet and ``of_h[h]`` for a centre (either array
    may be empty: an instance without cabinets or without centres)."""
    out = np.zeros(len(is_c), dtype=np.result_type(of_c, of_h))
    out[is_c] = of_c[c[is_c]]
    out[~is_c] = of_h[h[~is_c]]
    return out


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for each (s, n), vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    offsets = np.repeat(starts - (ends - lengths), lengths)
    return offsets + np.arange(total, dtype=np.int64)


class Problem:
    """The apl model as arrays: the APL matrix, site bounds, costs and levers."""

    def __init__(self, data):
        st = data.staffing
        T = self.T = float(data.threshold)
        B = data.upper.index[data.upper >= T - 1e-9]  # the zones the model gives a binary (apl.build)
        self.zones = B
        self.pop = data.population.reindex(B).to_numpy(float)
        self.never = float(data.population.drop(B, errors="ignore").sum())
        self.const = data.constant.reindex(B).fillna(0.0).to_numpy(float)
        zpos = pd.Series(np.arange(len(B)), index=B)

        pr, cab, cds, links = st.practices, st.cabinets, st.centres, st.links
        self.links = links[["practice_id", "site_id"]].reset_index(drop=True)
        self.centre_ids = list(cds.index)
        L, H = len(links), len(cds)
        self.L, self.H = L, H
        ppos = pd.Series(np.arange(len(pr)), index=pr.index)
        cpos = pd.Series(np.arange(len(cab)), index=cab.index)
        self.lp = ppos.reindex(links["practice_id"]).to_numpy(np.int64)
        self.lc = cpos.reindex(links["site_id"]).to_numpy(np.int64)
        self.G = pr["give_cap"].to_numpy(np.int64)

        dt = data.days_terms
        dt = dt[dt["zone_id"].isin(B)]
        lpos = pd.Series(np.arange(L), index=pd.MultiIndex.from_frame(self.links))
        col = lpos.reindex(pd.MultiIndex.from_frame(dt[["practice_id", "site_id"]])).to_numpy()
        keep = ~np.isnan(col)
        ft = data.fte_terms
        ft = ft[ft["zone_id"].isin(B) & ft["site_id"].isin(cds.index)]
        hpos = pd.Series(np.arange(H), index=cds.index)
        rows = np.concatenate([zpos.reindex(dt["zone_id"]).to_numpy()[keep], zpos.reindex(ft["zone_id"]).to_numpy()])
        cols = np.concatenate([col[keep], L + hpos.reindex(ft["site_id"]).to_numpy()])
        vals = np.concatenate([dt["coefficient"].to_numpy(float)[keep], ft["coefficient"].to_numpy(float)])
        self.A = sp.csc_matrix((vals, (rows.astype(np.int64), cols.astype(np.int64))), shape=(len(B), L + H))
        self.A.sum_duplicates()
        self.A.sort_indices()

        lv = st.levers
        excluded = set(lv.excluded) if lv is not None else set()
        forced = set(st.force_open)
        self.lo_c = np.maximum(cab["min_days"].to_numpy(np.int64), 1)
        self.hi_c = np.where([c in excluded for c in cab.index], 0, cab["max_days"].to_numpy(np.int64))
        self.lo_h = np.maximum(cds["min_fte"].to_numpy(np.int64), 1)
        self.hi_h = np.where([h in excluded for h in cds.index], 0, cds["max_fte"].to_numpy(np.int64))
        self.a_c = cab["fixed_cost"].to_numpy(float)
        self.e_c = st.weeks * cab["cost_per_day"].to_numpy(float)
        self.a_h = cds["fixed_cost"].to_numpy(float)
        self.g_h = cds["cost_per_fte"].to_numpy(float)
        self.forced_c = np.array([c in forced for c in cab.index], bool)
        self.forced_h = np.array([h in forced for h in cds.index], bool)
        self.budget = float(st.budget)
        self.max_fte = np.inf if lv is None or lv.max_new_fte is None else float(lv.max_new_fte)
        # funders' envelopes: who pays each site's fixed and staff cost (-1: no envelope)
        env = dict(lv.envelopes) if lv is not None else {}
        self.funders = sorted(env)
        self.env_cap = np.array([env[f] for f in self.funders], float)
        code = {f: i for i, f in enumerate(self.funders)}

        def payer(mapping, ids):
            return np.array([code.get(mapping.get(s), -1) if lv is not None else -1 for s in ids], np.int64)

        self.fix_c = payer(lv.funder_fixed if lv else {}, cab.index)
        self.staff_c = payer(lv.funder_staff if lv else {}, cab.index)
        self.fix_h = payer(lv.funder_fixed if lv else {}, cds.index)
        self.staff_h = payer(lv.funder_staff if lv else {}, cds.index)
        self.links_of_c = [np.flatnonzero(self.lc == c) for c in range(len(cab))]
        self.links_of_p = [np.flatnonzero(self.lp == p) for p in range(len(pr))]
        self.nnz_per_col = self.A.nnz / max(1, L + H)
        self.colidx = np.repeat(np.arange(L + H), np.diff(self.A.indptr))  # column of each nonzero
        # What a day from practice p takes, per zone: the negative entries of its link with
        # the most of them (the loss part of that link; used to order practices, not to value)
        neg = self.A.data < 0
        nneg = np.bincount(self.colidx[neg], minlength=L + H)[:L]
        rep = np.full(len(pr), -1, np.int64)
        for p in range(len(pr)):
            ls = np.flatnonzero(self.lp == p)
            if len(ls):
                rep[p] = ls[np.lexsort((ls, -nneg[ls]))[0]]
        has = rep >= 0
        starts, ends = self.A.indptr[rep[has]], self.A.indptr[rep[has] + 1]
        idx = _ranges(starts, ends - starts)
        owner = np.repeat(np.flatnonzero(has), ends - starts)
        keep = self.A.data[idx] < 0
        self.loss_rows, self.loss_vals, self.loss_owner = self.A.indices[idx][keep], self.A.data[idx][keep], owner[keep]


class Search:
    """One plan, the moves on it, and their exact values."""

    def __init__(self, pb: Problem, *, effort: int, deadline=None):
        self.pb = pb
        self.effort = int(effort)
        self.deadline = deadline
        self.evaluations = 0
        self.stopped_by_clock = False
        self.alpha = 1.0  # the greedy ranks additions by population lifted / cost ** alpha
        self.partial = PARTIAL_DROPS  # drop-and-refill also tries an FTE less at a centre
        self.partial_days = False  # and a day less at a cabinet
        self.reset()

    # -- state ------------------------------------------------------------------------
    def reset(self) -> None:
        pb = self.pb
        self.x = np.zeros(pb.L + pb.H, np.int64)
        self.din = np.zeros(len(pb.lo_c), np.int64)
        self.dout = np.zeros(len(pb.G), np.int64)
        self.apl = pb.const.copy()
        self.cost = 0.0
        self.spend = np.zeros(len(pb.funders))
        self._relift()

    def _relift(self) -> None:
        self.lifted = self.apl >= self.pb.T - LIFT_TOL
        self.under = self.pb.never + float(self.pb.pop[~self.lifted].sum())

    @property
    def f(self) -> np.ndarray:
        return self.x[self.pb.L:]

    def key(self) -> tuple[float, float]:
        return self.under, self.cost

    def snapshot(self):
        return self.x.copy()

    def restore(self, x: np.ndarray) -> None:
        diff = np.flatnonzero(x != self.x)
        self.apply(list(zip(diff.tolist(), (x[diff] - self.x[diff]).tolist())))

    def spent(self) -> bool:
        if self.evaluations >= self.effort:
            return True
        if self.deadline is not None and self.deadline.expired(0.0):
            self.stopped_by_clock = True
            return True
        return False

    # -- costs and feasibility ----------------------------------------------------------
    def _site_changes(self, move):
        """Per cabinet and centre touched: units before and after (dicts)."""
        pb = self.pb
        cab, cen = {}, {}
        for j, k in move:
            if j < pb.L:
                c = int(pb.lc[j])
                cab[c] = cab.get(c, int(self.din[c])) + k
            else:
                h = j - pb.L
                cen[h] = cen.get(h, int(self.x[j])) + k
        return cab, cen

    def delta(self, move) -> tuple[float, np.ndarray, int, bool]:
        """(cost change, envelope spend change, FTE change, feasible) of a move."""
        pb = self.pb
        cab, cen = self._site_changes(move)
        dcost, dspend, dfte = 0.0, np.zeros(len(pb.funders)), 0
        ok = True
        for c, n in cab.items():
            before = int(self.din[c])
            if n != 0 and not (pb.lo_c[c] <= n <= pb.hi_c[c]):
                ok = False
            if n == 0 and pb.forced_c[c]:
                ok = False
            staff = (n - before) * pb.e_c[c]
            fixed = pb.a_c[c] * ((n > 0) - (before > 0))
            dcost += staff + fixed
            if pb.staff_c[c] >= 0:
                dspend[pb.staff_c[c]] += staff
            if pb.fix_c[c] >= 0:
                dspend[pb.fix_c[c]] += fixed
        for h, n in cen.items():
            before = int(self.x[pb.L + h])
            if n != 0 and not (pb.lo_h[h] <= n <= pb.hi_h[h]):
                ok = False
            if n == 0 and pb.forced_h[h]:
                ok = False
            staff = (n - before) * pb.g_h[h]
            fixed = pb.a_h[h] * ((n > 0) - (before > 0))
            dcost += staff + fixed
            dfte += n - before
            if pb.staff_h[h] >= 0:
                dspend[pb.staff_h[h]] += staff
            if pb.fix_h[h] >= 0:
                dspend[pb.fix_h[h]] += fixed
        out = {}
        for j, k in move:
            if j < pb.L:
                p = int(pb.lp[j])
                out[p] = out.get(p, int(self.dout[p])) + k
                if self.x[j] + k < 0:
                    ok = False
        if any(v > pb.G[p] or v < 0 for p, v in out.items()):
            ok = False
        return dcost, dspend, dfte, ok

    def fits(self, dcost: float, dspend: np.ndarray, dfte: int) -> bool:
        pb = self.pb
        if self.cost + dcost > pb.budget + 1e-6:
            return False
        if dfte > 0 and int(self.f.sum()) + dfte > pb.max_fte + 1e-9:
            return False
        return not (len(dspend) and (self.spend + dspend > pb.env_cap * (1 + 1e-9) + 1e-6)[dspend > 0].any())

    def feasible(self) -> bool:
        pb = self.pb
        f = self.f
        ok = bool((self.dout <= pb.G).all() and (self.x >= 0).all() and self.cost <= pb.budget + 1e-6)
        ok &= bool(((self.din == 0) | ((self.din >= pb.lo_c) & (self.din <= pb.hi_c))).all())
        ok &= bool(((f == 0) | ((f >= pb.lo_h) & (f <= pb.hi_h))).all())
        ok &= bool((self.din[pb.forced_c] > 0).all() and (f[pb.forced_h] > 0).all())
        ok &= bool(f.sum() <= pb.max_fte + 1e-9)
        ok &= bool((self.spend <= pb.env_cap * (1 + 1e-9) + 1e-6).all())
        return ok

    # -- exact values -------------------------------------------------------------------
    def gains(self, cand: np.ndarray, cols: np.ndarray, steps: np.ndarray, ncand: int,
              one_col: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """For each candidate move (entries ``cand[i]`` adds ``steps[i]`` to column
        ``cols[i]``): the population it lifts above the threshold less the population it
        drops under, and its progress (population-weighted APL gained below T, a tie-break)."""
        self.evaluations += ncand
        if ncand == 0:
            return np.zeros(0), np.zeros(0)
        A, pb = self.pb.A, self.pb
        starts = A.indptr[cols]
        n = A.indptr[cols + 1] - starts
        idx = _ranges(starts, n)
        rows = A.indices[idx]
        dv = A.data[idx] * np.repeat(steps, n)
        cid = np.repeat(cand, n)
        if not one_col:  # several columns of one move may share a row: sum first
            R = len(pb.pop)
            key = cid * R + rows
            if ncand * R <= 8 * len(key) + 100_000:  # dense scratch: cheaper than sorting
                dv = np.bincount(key, weights=dv, minlength=ncand * R)
                uk = np.flatnonzero(np.bincount(key, minlength=ncand * R))
                dv = dv[uk]
            else:
                uk, inv = np.unique(key, return_inverse=True)
                dv = np.bincount(inv, weights=dv)
            cid, rows = uk // R, uk % R
        old = self.apl[rows]
        new = old + dv
        lifted = new >= pb.T - LIFT_TOL
        w = pb.pop[rows]
        gain = np.bincount(cid, weights=w * (lifted.astype(float) - self.lifted[rows]), minlength=ncand)
        prog = np.bincount(cid, weights=w * (np.minimum(new, pb.T) - np.minimum(old, pb.T)), minlength=ncand)
        return gain, prog

    def apply(self, move) -> None:
        """Make a move (a list of (column, units)); no check."""
        pb = self.pb
        if not move:
            return
        dcost, dspend, _, _ = self.delta(move)
        self.cost += dcost
        self.spend += dspend
        for j, k in move:
            self.x[j] += k
            if j < pb.L:
                self.din[pb.lc[j]] += k
                self.dout[pb.lp[j]] += k
        cols = np.array([j for j, _ in move], np.int64)
        steps = np.array([k for _, k in move], float)
        A = pb.A
        starts = A.indptr[cols]
        n = A.indptr[cols + 1] - starts
        idx = _ranges(starts, n)
        np.add.at(self.apl, A.indices[idx], A.data[idx] * np.repeat(steps, n))
        rows = np.unique(A.indices[idx])
        was = self.lifted[rows]
        now = self.apl[rows] >= pb.T - LIFT_TOL
        self.lifted[rows] = now
        self.under -= float((pb.pop[rows] * (now.astype(float) - was)).sum())

    # -- candidate moves ----------------------------------------------------------------
    def _harms(self) -> tuple[np.ndarray, np.ndarray]:
        """Per link, what one day from its practice takes from the zones it lowers: the
        population it drops under T, and the APL it takes from lifted zones (weighted)."""
        pb = self.pb
        r, v = pb.loss_rows, pb.loss_vals
        lift = self.lifted[r]
        w = pb.pop[r]
        n = len(pb.G)
        harm = np.bincount(pb.loss_owner, weights=w * (lift & (self.apl[r] + v < pb.T - LIFT_TOL)), minlength=n)
        slack = np.bincount(pb.loss_owner, weights=w * -v * lift, minlength=n)
        return harm[pb.lp], slack[pb.lp]

    def _gather(self, links: np.ndarray, need: int, spare: np.ndarray, harms) -> list | None:
        """``need`` days for one cabinet from its ``links``, the practice that loses least first."""
        pb = self.pb
        links = links[spare[pb.lp[links]] > 0]
        harm, slack = harms
        move, got = [], 0
        for l in links[np.lexsort((links, slack[links], harm[links]))]:
            t = int(min(spare[pb.lp[l]], need - got))
            if t > 0:
                move.append((int(l), t))
                got += t
            if got == need:
                return move
        return None

    def additions(self, tabu_c=None, tabu_h=None):
        """Every addition to one site, as a batch: k days to a cabinet (opening it with k at
        least its minimum), taken from the practices that lose least, or k FTE to a centre.
        Returns (cand, cols, steps) entries and, per candidate, its site (cabinet index, or
        -1 - centre index), units and cost, within the budget, FTE limit and envelopes."""
        pb = self.pb
        spare = pb.G - self.dout
        # cabinets: links with spare in harm order within each cabinet
        lk = np.flatnonzero(spare[pb.lp] > 0)
        if tabu_c is not None:
            lk = lk[~tabu_c[pb.lc[lk]]]
        harm, slack = self._harms()
        lk = lk[np.lexsort((lk, slack[lk], harm[lk], pb.lc[lk]))]
        cab = pb.lc[lk]
        s = spare[pb.lp[lk]]
        cum = np.cumsum(s)
        first = np.r_[True, cab[1:] != cab[:-1]] if len(cab) else np.zeros(0, bool)
        group_start = np.maximum.accumulate(np.where(first, np.arange(len(cab)), 0)) if len(cab) else lk
        before = cum - s - (cum - s)[group_start]  # spare of the earlier links of the same cabinet
        avail = np.bincount(cab, weights=s, minlength=len(pb.lo_c)).astype(np.int64)
        kmin = np.where(self.din == 0, pb.lo_c, 1)
        kmax = np.minimum(np.minimum(pb.hi_c - self.din, avail), MAX_STEP)
        cand, cols, steps, site, units = [], [], [], [], []
        n = 0
        for k in range(1, MAX_STEP + 1):
            okc = (kmin <= k) & (k <= kmax)
            if tabu_c is not None:
                okc &= ~tabu_c
            if not okc.any():
                continue
            e = np.flatnonzero(okc[cab] & (before < k))
            cs = np.flatnonzero(okc)
            ids = np.full(len(pb.lo_c), -1, np.int64)
            ids[cs] = n + np.arange(len(cs))
            cand.append(ids[cab[e]])
            cols.append(lk[e])
            steps.append(np.minimum(s[e], k - before[e]))
            site.append(cs)
            units.append(np.full(len(cs), k))
            n += len(cs)
        # centres
        f = self.f
        hmin = np.where(f == 0, pb.lo_h, 1)
        hmax = np.minimum(pb.hi_h - f, MAX_STEP)
        for k in range(1, MAX_STEP + 1):
            okh = (hmin <= k) & (k <= hmax)
            if tabu_h is not None:
                okh &= ~tabu_h
            hs = np.flatnonzero(okh)
            if not len(hs):
                continue
            cand.append(n + np.arange(len(hs)))
            cols.append(pb.L + hs)
            steps.append(np.full(len(hs), k))
            site.append(-1 - hs)
            units.append(np.full(len(hs), k))
            n += len(hs)
        if n == 0:
            return None
        cand, cols, steps = np.concatenate(cand), np.concatenate(cols), np.concatenate(steps).astype(float)
        site, units = np.concatenate(site), np.concatenate(units).astype(float)
        is_c = site >= 0
        c, h = np.where(is_c, site, 0), np.where(is_c, 0, -1 - site)
        fixed = _either(is_c, pb.a_c * (self.din == 0), pb.a_h * (f == 0), c, h)
        staff = units * _either(is_c, pb.e_c, pb.g_h, c, h)
        cost = fixed + staff
        ok = self.cost + cost <= pb.budget + 1e-6
        ok &= is_c | (f.sum() + units <= pb.max_fte + 1e-9)
        for i in range(len(pb.funders)):
            pay = (_either(is_c, pb.fix_c, pb.fix_h, c, h) == i) * fixed
            pay = pay + (_either(is_c, pb.staff_c, pb.staff_h, c, h) == i) * staff
            ok &= (pay <= 0) | (self.spend[i] + pay <= pb.env_cap[i] * (1 + 1e-9) + 1e-6)
        return cand, cols, steps, cost, ok

    @staticmethod
    def batch(moves: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A list of moves (lists of (column, units)) as (cand, cols, steps) entries."""
        lens = [len(mv) for mv in moves]
        cand = np.repeat(np.arange(len(moves)), lens)
        cols = np.fromiter((j for mv in moves for j, _ in mv), np.int64, count=sum(lens))
        steps = np.fromiter((k for mv in moves for _, k in mv), float, count=sum(lens))
        return cand, cols, steps

    def value_moves(self, moves: list) -> tuple[np.ndarray, np.ndarray]:
        if not moves:
            return np.zeros(0), np.zeros(0)
        cand, cols, steps = self.batch(moves)
        return self.gains(cand, cols, steps, len(moves), one_col=all(len(mv) == 1 for mv in moves))

    # -- phases -------------------------------------------------------------------------
    def fill(self, tabu_c=None, tabu_h=None) -> bool:
        """Greedy: the feasible addition lifting the most population per euro, while one lifts."""
        improved = False
        while not self.spent():
            got = self.additions(tabu_c, tabu_h)
            if got is None:
                break
            cand, cols, steps, cost, ok = got
            if not ok.any():
                break
            sel = ok[cand]
            keep = np.flatnonzero(ok)
            renum = np.cumsum(ok) - 1
            gain, prog = self.gains(renum[cand[sel]], cols[sel], steps[sel], len(keep))
            costs = np.maximum(cost[keep], 1.0) ** self.alpha
            best = int(np.lexsort((np.arange(len(keep)), -prog / costs, -gain / costs))[0])
            if gain[best] <= 1e-9:
                break
            e = np.flatnonzero(cand == keep[best])
            self.apply(list(zip(cols[e].tolist(), steps[e].astype(np.int64).tolist())))
            improved = True
        return improved

    def trim(self) -> bool:
        """Remove a unit (a day from a link, an FTE) or close a site when the population
        under T does not grow: money freed for the next fill."""
        pb = self.pb
        any_ = False
        changed = True
        while changed and not self.spent():
            changed = False
            moves = []
            for j in np.flatnonzero(self.x > 0):
                moves.append([(int(j), -1)])
                if j >= pb.L:
                    moves.append([(int(j), -int(self.x[j]))])
            for c in np.flatnonzero(self.din > 0):
                ls = pb.links_of_c[c]
                moves.append([(int(l), -int(self.x[l])) for l in ls if self.x[l] > 0])
            cands = []
            for mv in moves:
                dc, _, _, ok = self.delta(mv)
                if ok and dc < -1e-6:
                    cands.append((mv, dc))
            if not cands:
                break
            gain, _ = self.value_moves([mv for mv, _ in cands])
            saving = np.array([-dc for _, dc in cands])
            okk = gain >= -1e-9
            if not okk.any():
                break
            i = int(np.lexsort((np.arange(len(cands)), -saving, ~okk))[0])
            self.apply(cands[i][0])
            changed = any_ = True
        return any_

    def swaps(self) -> bool:
        """Move days of a cabinet from one practice to another (same cost), or an FTE
        from one open centre to another; the best gain taken while one gains."""
        pb = self.pb
        any_ = False
        while not self.spent():
            spare = pb.G - self.dout
            moves = []
            for l in np.flatnonzero(self.x[:pb.L] > 0):
                c = pb.lc[l]
                for l2 in pb.links_of_c[c]:
                    if l2 != l and spare[pb.lp[l2]] > 0:
                        for t in range(1, int(min(self.x[l], spare[pb.lp[l2]])) + 1):
                            moves.append([(int(l), -t), (int(l2), t)])
                # the practice's day to another open cabinet it reaches
                for l2 in pb.links_of_p[pb.lp[l]]:
                    if l2 != l and self.din[pb.lc[l2]] > 0:
                        moves.append([(int(l), -1), (int(l2), 1)])
            open_h = np.flatnonzero(self.f > 0)
            for h in open_h:
                for h2 in open_h:
                    if h2 != h:
                        moves.append([(pb.L + int(h), -1), (pb.L + int(h2), 1)])
            feas = []
            for mv in moves:
                dc, ds, df, ok = self.delta(mv)
                if ok and self.fits(dc, ds, df):
                    feas.append((mv, dc))
            if not feas:
                return any_
            gain, _ = self.value_moves([mv for mv, _ in feas])
            dcost = np.array([dc for _, dc in feas])
            good = (gain > 1e-9) | ((gain > -1e-9) & (dcost < -1e-6))
            if not good.any():
                return any_
            i = int(np.lexsort((np.arange(len(feas)), dcost, -gain))[0])
            self.apply(feas[i][0])
            any_ = True
        return any_

    def _closing(self, kind: str, j: int) -> list:
        """The move closing cabinet (``kind`` "c") or centre ("h") ``j``."""
        if kind == "c":
            return [(int(l), -int(self.x[l])) for l in self.pb.links_of_c[j] if self.x[l] > 0]
        return [(self.pb.L + j, -int(self.x[self.pb.L + j]))]

    def drop_and_fill(self) -> bool:
        """Close each open site (not forced) in turn and refill greedily with the money
        freed, the closed site tabu; keep the first that gives a better plan."""
        pb = self.pb
        any_ = False
        tried = set()
        while not self.spent():
            sites = [("c", int(c)) for c in np.flatnonzero((self.din > 0) & ~pb.forced_c)]
            sites += [("h", int(h)) for h in np.flatnonzero((self.f > 0) & ~pb.forced_h)]
            moves = [self._closing(kind, j) for kind, j in sites]
            if self.partial:  # also an FTE less at a centre, a day less at a cabinet
                for h in np.flatnonzero(self.f > pb.lo_h):
                    sites.append(("h", int(h)))
                    moves.append([(pb.L + int(h), -1)])
                if self.partial_days:
                    for l in np.flatnonzero(self.x[:pb.L] > 0):
                        c = int(pb.lc[l])
                        if self.din[c] > pb.lo_c[c]:
                            sites.append(("c", c))
                            moves.append([(int(l), -1)])
            if not moves:
                return any_
            gain, _ = self.value_moves(moves)  # <= 0: the population the closing drops
            freed = np.array([-self.delta(mv)[0] for mv in moves])
            order = np.lexsort((np.arange(len(moves)), -gain / np.maximum(freed, 1.0)))  # least lost per euro
            improved = False
            for i in order:
                if self.spent():
                    break
                k = (tuple(moves[i]), self.x.tobytes())
                if k in tried:
                    continue
                tried.add(k)
                snap, before = self.snapshot(), self.key()
                self.apply(moves[i])
                tabu_c = np.zeros(len(pb.lo_c), bool)
                tabu_h = np.zeros(pb.H, bool)
                (tabu_c if sites[i][0] == "c" else tabu_h)[sites[i][1]] = True
                if sites[i][0] == "h" and CENTRE_FOR_CABINETS:
                    self.fill(tabu_c, np.ones(pb.H, bool))  # a centre swapped for cabinets first
                self.fill(tabu_c, tabu_h)
                if better(self.key(), before):
                    improved = any_ = True
                    break
                self.restore(snap)
            if not improved:
                return any_
        return any_

    def descend(self, drop: bool = True) -> None:
        """Fill, swaps, trims and (``drop``) drop-and-refill until none improves."""
        while not self.spent():
            a = self.fill()
            b = self.swaps()
            c = self.trim()
            d = drop and self.drop_and_fill()
            if not (a or b or c or d):
                return

    def kick(self, rng, strength: int) -> None:
        """Close ``strength`` random open sites (not forced): a perturbation before a descent."""
        pb = self.pb
        sites = [("c", int(c)) for c in np.flatnonzero((self.din > 0) & ~pb.forced_c)]
        sites += [("h", int(h)) for h in np.flatnonzero((self.f > 0) & ~pb.forced_h)]
        if not sites:
            return
        for i in sorted(rng.choice(len(sites), size=min(strength, len(sites)), replace=False)):
            self.apply(self._closing(*sites[i]))

    def open_forced(self) -> bool:
        """Open the forced-open sites at their minimum (days from the practices that lose least)."""
        pb = self.pb
        for c in np.flatnonzero(pb.forced_c & (self.din == 0)):
            move = self._gather(pb.links_of_c[c], int(pb.lo_c[c]), pb.G - self.dout, self._harms())
            if move is None:
                return False
            self.apply(move)
        for h in np.flatnonzero(pb.forced_h & (self.f == 0)):
            self.apply([(pb.L + int(h), int(pb.lo_h[h]))])
        return self.feasible()

    def plan(self, seed: str) -> AplPlan:
        pb = self.pb
        on = np.flatnonzero(self.x[:pb.L] > 0)
        days = pd.DataFrame({"practice_id": pb.links["practice_id"].to_numpy()[on],
                             "site_id": pb.links["site_id"].to_numpy()[on], "days": self.x[on].astype(int)})
        fte = pd.Series(self.f.astype(float), index=pb.centre_ids)
        return AplPlan(days=days.reset_index(drop=True), fte=fte[fte > 0], under=self.under, cost=self.cost,
                       evaluations=self.evaluations, stopped_by_clock=self.stopped_by_clock, seed=seed)


def better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Lexicographic: fewer people under T, then (same) cheaper."""
    if a[0] < b[0] - 1e-6:
        return True
    return a[0] <= b[0] + 1e-6 and a[1] < b[1] - 1e-6


def plan_vector(pb: Problem, days: pd.DataFrame | None, fte: pd.Series | None) -> np.ndarray:
    """A plan (days per practice-cabinet link in units of ``d``, FTE per centre) as ``x``."""
    x = np.zeros(pb.L + pb.H, np.int64)
    if days is not None and len(days):
        lpos = pd.Series(np.arange(pb.L), index=pd.MultiIndex.from_frame(pb.links))
        at = lpos.reindex(pd.MultiIndex.from_frame(days[["practice_id", "site_id"]])).to_numpy()
        if np.isnan(at).any():
            raise ValueError("a day on a link the model does not have")
        np.add.at(x, at.astype(np.int64), days["days"].to_numpy(np.int64))
    if fte is not None and len(fte):
        hpos = {h: i for i, h in enumerate(pb.centre_ids)}
        for h, v in fte.items():
            x[pb.L + hpos[h]] = round(float(v))
    return x


def search(data, *, effort: int, seeds: dict | None = None, deadline=None, problem: Problem | None = None,
           seed: int = 0, greedy: bool = True) -> AplPlan | None:
    """The best plan within ``effort`` move evaluations. A greedy fill from the status quo
    (with the forced openings) under each ranking of ``GREEDY_STARTS`` and from each of
    ``seeds`` (name -> (days, fte); days with columns practice_id, site_id, days in units
    of ``d``); the greedy plans within ``DESCEND_WITHIN`` of the best get a descent on
    shares of half the effort; the best then gets kicks (``seed``) and a final descent
    with the rest. A seed that breaks a rule of the model is skipped. ``None`` when no
    start gives a feasible plan."""
    t0 = time.perf_counter()
    pb = problem or Problem(data)
    s = Search(pb, effort=effort, deadline=deadline)
    best, best_key, best_seed, phases = None, None, "", {}
    # ``greedy=False``: only the seeds (the local search after HiGHS, from its plan)
    starts = list(GREEDY_STARTS if greedy else ()) + [(k, 1.0, False, v) for k, v in (seeds or {}).items()]
    greedy = []  # (key, name, plan) after each start's greedy fill, distinct plans only
    for name, alpha, cabinets_first, *given in starts:
        plan = given[0] if given else None
        s.reset()
        s.alpha = alpha
        if plan is None:
            if not s.open_forced():
                continue
        else:
            try:
                s.restore(plan_vector(pb, *plan))
            except (ValueError, KeyError):
                continue
            if not s.feasible():
                continue
        phases[f"{name}: start"] = s.under
        phases[f"{name}: start cost"] = s.cost
        if cabinets_first:
            s.fill(tabu_h=np.ones(pb.H, bool))
        s.fill()
        phases[f"{name}: greedy"] = s.under
        if not any((s.x == x).all() for _, _, x in greedy):
            greedy.append((s.key(), name, s.snapshot()))
    if not greedy:
        return None
    # descents from the greedy plans within DESCEND_WITHIN of the best, best first, on
    # equal shares of half the effort (what one leaves goes to the next)
    greedy.sort(key=lambda g: g[0])
    chosen = [g for g in greedy if g[0][0] <= greedy[0][0][0] * (1 + DESCEND_WITHIN) + 1e-6]
    s.alpha = 1.0
    for n, (_, name, x) in enumerate(chosen):
        s.reset()
        s.restore(x)
        full, s.effort = s.effort, s.evaluations + max(0, (effort // 2 - s.evaluations) // (len(chosen) - n))
        s.descend()
        s.effort = full
        phases[f"{name}: descent"] = s.under
        assert s.feasible(), "the apl search left an infeasible plan"
        if best is None or better(s.key(), best_key):
            best, best_key, best_seed = s.snapshot(), s.key(), name
    # iterated local search from the best: kicks (seeded, so reproducible) while effort lasts
    s.restore(best)
    rng = np.random.default_rng(seed)
    stale = kicks = 0
    full, s.effort = s.effort, s.evaluations + int((1.0 - FINAL_SHARE) * max(0, s.effort - s.evaluations))
    while not s.spent() and stale < KICK_PATIENCE:
        n_open = int(((s.din > 0) & ~pb.forced_c).sum() + ((s.f > 0) & ~pb.forced_h).sum())
        if n_open == 0:
            break
        s.kick(rng, int(np.clip(round(n_open / KICK_DIVISOR), 1, 5)))
        s.descend(drop=False)  # light: many kicks; drop-and-refill once a kick improved
        kicks += 1
        if better(s.key(), best_key):
            s.descend()
            best, best_key, stale = s.snapshot(), s.key(), 0
        else:
            stale += 1
            s.restore(best)
    s.restore(best)
    phases["kicks"] = kicks
    phases["after kicks"] = s.under
    # a last descent whose drop-and-refill also takes an FTE off a centre
    s.effort, s.partial = full, True
    s.descend()
    s.partial = False
    phases["final descent"] = s.under
    assert s.feasible(), "the apl search left an infeasible plan"
    out = s.plan(best_seed)
    phases["seconds"] = time.perf_counter() - t0
    out.phases = phases
    return out


# -- effort --------------------------------------------------------------------------------

START_SHARE = 0.2  # of the time limit, turned into an effort count (move evaluations)
CLOCK_SHARE = 0.5  # of the time left: the clock's safety cap (the run is then not reproducible)
# A move evaluation's assumed seconds per nonzero of a column (measured on the shipped
# départements at load 3: 15 to 35 microseconds at 40 to 61 nonzeros a column)
EVAL_S = 6e-7
NO_LIMIT_S = 600.0
MIN_EFFORT, MAX_EFFORT = 5_000, 20_000_000


def effort_for(pb: Problem, time_limit: float | None) -> int:
    """Move evaluations the search may make: a function of the time limit and the model's
    size only, so that the same command makes the same search on any machine."""
    seconds = START_SHARE * (NO_LIMIT_S if time_limit is None else float(time_limit))
    per = EVAL_S * max(pb.nnz_per_col, 1.0)
    return int(np.clip(seconds / per, MIN_EFFORT, MAX_EFFORT))
