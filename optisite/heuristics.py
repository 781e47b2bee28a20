"""A greedy plus local-search plan for the coverage model, handed to HiGHS as a MIP start.

On large maximal-covering instances HiGHS can spend minutes before its own heuristics
match what a ratio greedy finds in milliseconds (issue 6); a good incumbent from the
start also makes a time-limited run return a good plan. The heuristic only proposes:
HiGHS still proves (or not) optimality, and the checker still checks the result.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from .models.coverage import CoverageData, cover_matrix


def incidence(data: CoverageData) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray]:
    """(zones x sites 0/1 matrix, weighted population per zone, cost per site)."""
    a = cover_matrix(data.pairs, data.zones.index, data.sites.index)
    return a, data.zones.to_numpy(float), data.sites.to_numpy(float)


SWAP_BLOCK = 4_000_000  # swap values computed at once (32 MB of float64)


class _Plan:
    """Open sites and, per zone, how many open sites cover it; the moves' values come
    from these counts without re-solving anything."""

    def __init__(self, a: sp.csc_matrix, w: np.ndarray, c: np.ndarray, is_open: np.ndarray, budget: float):
        self.a, self.at, self.ar, self.w, self.c = a, a.T.tocsr(), a.tocsr(), w, c
        self.is_open = is_open.copy()
        self.count = np.asarray(a[:, is_open].sum(axis=1)).ravel()
        self.left = budget - float(c[is_open].sum())

    def state(self) -> tuple:
        return self.is_open.copy(), self.count.copy(), self.left

    def restore(self, state: tuple) -> None:
        is_open, count, left = state
        self.is_open, self.count, self.left = is_open.copy(), count.copy(), left

    def covered(self) -> float:
        return float(self.w[self.count > 0].sum())

    def flip(self, j: int, opening: bool) -> None:
        lo, hi = self.a.indptr[j], self.a.indptr[j + 1]
        self.count[self.a.indices[lo:hi]] += 1 if opening else -1
        self.is_open[j] = opening
        self.left += -self.c[j] if opening else self.c[j]

    def gain(self) -> np.ndarray:
        """Population each site would add if opened now."""
        return self.at @ (self.w * (self.count == 0))

    def best_swap(self, movable: np.ndarray, allowed: np.ndarray):
        """(value, j out, k in) of the best one-for-one swap within the budget.

        Closing j loses the zones only j covers (loss_j); opening k gains the zones no
        one covers (gain_k) and those of loss_j that k covers too (overlap_jk): so
        value = gain_k + overlap_jk - loss_j. All open sites at once: the overlaps are one
        sparse product over the zones covered exactly once."""
        outs = np.flatnonzero(self.is_open & movable)
        if not len(outs):
            return (0.0, -1, -1)
        gain = self.gain()
        only = self.w * (self.count == 1)
        closed = allowed & ~self.is_open
        best = (0.0, -1, -1)
        rows = max(1, SWAP_BLOCK // len(self.c))  # open sites per dense block (bounded memory)
        for lo in range(0, len(outs), rows):
            block = outs[lo:lo + rows]
            mine = self.at[block].multiply(only[None, :]).tocsr()  # open site j x zones only j covers
            mine.eliminate_zeros()
            loss = np.asarray(mine.sum(axis=1)).ravel()
            value = (mine @ self.ar).toarray() + gain[None, :] - loss[:, None]
            ok = closed[None, :] & (self.c[None, :] <= self.left + self.c[block][:, None] + 1e-9)
            value[~ok] = -np.inf
            ks = np.argmax(value, axis=1)
            for row, j in enumerate(block):  # ascending j, first k on ties: the same choice as a scan
                v = value[row, ks[row]]
                if v > best[0] + 1e-9:
                    best = (float(v), int(j), int(ks[row]))
        return best

    def fill(self, allowed: np.ndarray) -> None:
        """Open sites by covered population per euro while the budget allows."""
        while True:
            gain = self.gain()
            ok = allowed & ~self.is_open & (self.c <= self.left + 1e-9) & (gain > 0)
            if not ok.any():
                return
            self.flip(int(np.argmax(np.where(ok, gain / np.maximum(self.c, 1e-9), -np.inf))), True)

    def descend(self, movable, allowed, deadline: float) -> None:
        """Fill, then best swaps until none improves (or the deadline)."""
        self.fill(allowed)
        while time.perf_counter() < deadline:
            value, j, k = self.best_swap(movable, allowed)
            if j < 0:
                return
            self.flip(j, False)
            self.flip(k, True)
            self.fill(allowed)


def greedy_coverage(data: CoverageData, *, seconds: float = 2.0, kicks: int = 200, strength: int | None = None,
                    seed: int = 0) -> list[str]:
    """A plan within the budget: ratio greedy, best-swap descent, then an iterated local
    search. Each of the ``kicks`` rounds closes ``strength`` random open sites (by default
    an eighth of the plan, 1 to 10), opens random useful ones in their place, descends
    again, and keeps the result when it covers more. The kicks are seeded and counted,
    not timed, so the plan is the same on every run unless the ``seconds`` safety cap
    cuts it short. Returns site ids."""
    a, w, c = incidence(data)
    n = a.shape[1]
    if n == 0:
        return []
    ids = list(data.sites.index)
    pos = {s: k for k, s in enumerate(ids)}
    allowed = np.ones(n, bool)
    allowed[[pos[s] for s in data.force_closed if s in pos]] = False
    forced = np.zeros(n, bool)
    forced[[pos[s] for s in data.force_open if s in pos]] = True
    deadline = time.perf_counter() + seconds
    plan = _Plan(a, w, c, forced, data.budget)
    plan.descend(~forced, allowed, deadline)
    best, best_value = plan.state(), plan.covered()
    if strength is None:
        strength = int(np.clip(round((plan.is_open & ~forced).sum() / 8), 1, 10))
    rng = np.random.default_rng(seed)
    for _ in range(kicks):
        if time.perf_counter() >= deadline:
            break
        out = np.flatnonzero(plan.is_open & ~forced)
        if not len(out):
            break
        closed = rng.choice(out, size=min(strength, len(out)), replace=False)
        for j in closed:
            plan.flip(int(j), False)
        for _ in range(len(closed)):
            ok = allowed & ~plan.is_open & (c <= plan.left + 1e-9) & (plan.gain() > 0)
            ok[closed] = False
            if not ok.any():
                break
            plan.flip(int(rng.choice(np.flatnonzero(ok))), True)
        plan.descend(~forced, allowed, deadline)
        value = plan.covered()
        if value > best_value + 1e-9:
            best, best_value = plan.state(), value
        else:  # back to the best plan
            plan.restore(best)
    return [ids[j] for j in np.flatnonzero(best[0])]


def set_coverage_start(m, open_sites: list[str]) -> None:
    """Write a plan into the coverage model's variables (a feasible MIP start)."""
    chosen = set(open_sites)
    for j in m.J:
        if not m.y[j].fixed:
            m.y[j].set_value(1 if j in chosen else 0)
    for i in m.I:
        m.z[i].set_value(1.0 if any(j in chosen or m.y[j].value == 1 for j in m._neighbours[i]) else 0.0)
