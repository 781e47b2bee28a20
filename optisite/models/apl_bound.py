r"""A Lagrangian bound for the apl model (issue 18 item 4).

Each zone's threshold row :math:`\ell_i(d, f) + \beta_i b_i + \gamma_i \ge 0`
(``apl.build``'s ``apl_link``, read from the built model) is priced with
:math:`\lambda_i \ge 0` and the give rows with :math:`\nu_p \ge 0`. What is left falls
apart: each zone's indicator alone (:math:`P_i + \min(0, -P_i - \lambda_i \beta_i)`)
and the budget knapsack over the sites' staffing levels
(``staffing_bound.Knapsack``, exact). Every :math:`(\lambda, \nu) \ge 0` gives a valid
lower bound; the multipliers come from a Dantzig-Wolfe master over the knapsack's
plans with the indicators in [0, 1].
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import highspy
import numpy as np
from pyomo.repn import generate_standard_repn

from .staffing_bound import INF, Arrays, Knapsack, _highs, _levers_on, _set_matrix


@dataclass
class Rows:
    """The threshold rows as arrays over the staffing block's columns (d, y, f, o)."""

    alpha: np.ndarray  # (rows, staffing columns), dense: a few hundred zones
    beta: np.ndarray  # coefficient of the row's own b_i (< 0)
    gamma: np.ndarray  # constant minus the row's lower bound
    pop: np.ndarray  # P_i of each row's zone
    fixed: float  # population of zones whose b_i is fixed at 0 or free (never, no terms, ...)


def rows_of(m, data, a: Arrays) -> Rows:
    """Read the active ``apl_link`` rows and the objective's constant from the built model."""
    st = data.staffing
    col = {}
    for j, (p, c) in enumerate(zip(st.links["practice_id"], st.links["site_id"])):
        col[id(m.d[p, c])] = j
    for k, h in enumerate(st.centres.index):
        col[id(m.f[h])] = a.n_d + a.n_c + k
    pop = data.population.to_dict()
    alpha, beta, gamma, pops = [], [], [], []
    fixed = float(generate_standard_repn(m.uncovered.expr).constant)
    # m.uncovered = never + sum(P_i (1 - b_i)): the constant holds never + sum(P_i).
    for i in m.B:
        con = m.apl_link[i] if i in m.apl_link else None
        if con is None or not con.active:
            fixed -= pop[i]  # no row: b_i = 1 is free
            continue
        repn = generate_standard_repn(con.body)
        row = np.zeros(a.n_d + a.n_c + 2 * a.n_h)
        b = 0.0
        for v, coef in zip(repn.linear_vars, repn.linear_coefs):
            if v is m.b[i]:
                b += coef
            else:
                row[col[id(v)]] += coef
        sign, rhs = (1.0, con.lower) if con.has_lb() else (-1.0, con.upper)  # as a >= row
        if not row.any():  # a bound on b_i alone: b_i <= u (u < 1 forces 0 with b binary)
            ub = (pyoval(con.upper) - repn.constant) / b if con.has_ub() and b > 0 else 1.0
            if ub >= 1 - 1e-9:
                fixed -= pop[i]
            continue
        alpha.append(sign * row)
        beta.append(sign * b)
        gamma.append(sign * (repn.constant - pyoval(rhs)))
        pops.append(pop[i])
    return Rows(alpha=np.array(alpha).reshape(-1, a.n_d + a.n_c + 2 * a.n_h), beta=np.array(beta),
                gamma=np.array(gamma), pop=np.array(pops), fixed=fixed)


def pyoval(x) -> float:
    import pyomo.environ as pyo

    return float(pyo.value(x))


@dataclass
class AplLagrangian:
    bound: float
    iterations: int
    master: float
    seconds: float


def apl_lagrangian_bound(m, data, *, time_limit: float = 60.0, alpha: float = 0.5) -> AplLagrangian:
    """Best Lagrangian bound on ``under threshold`` within ``time_limit`` seconds."""
    st = data.staffing
    if st.levers is not None and _levers_on(st.levers):
        raise ValueError("the Lagrangian bound does not model the levers' rows")
    t0 = time.perf_counter()
    a = Arrays.of(st)
    R = rows_of(m, data, a)
    knap = Knapsack(a)
    give_p = np.unique(a.links[:, 0]) if a.n_d else np.zeros(0, int)
    G = a.give[give_p]
    n_r, n_g, n_s = len(R.beta), len(give_p), a.n_d + a.n_c + 2 * a.n_h

    def price(lam: np.ndarray, nu: np.ndarray):
        reward = lam @ R.alpha if n_r else np.zeros(n_s)
        nu_p = np.zeros(a.n_p)
        nu_p[give_p] = nu
        day = reward[:a.n_d] - nu_p[a.links[:, 0]] if a.n_d else np.zeros(0)
        top, v = knap.solve(day, reward[a.n_d + a.n_c:a.n_d + a.n_c + a.n_h])
        if v is None:
            return -math.inf, None
        zones = float(np.minimum(0.0, -R.pop - lam * R.beta).sum())
        # uncovered = fixed - sum P_i b_i over the rows' zones
        return R.fixed + zones - float(lam @ R.gamma) - float(nu @ G) - top, v

    # Master: b_i in [0, 1] (cost -P_i), plan weights; rows: threshold (>= -gamma), give, convexity.
    mlp = highspy.HighsLp()
    mlp.num_col_, mlp.num_row_ = n_r, n_r + n_g + 1
    mlp.col_cost_ = -R.pop
    mlp.col_lower_, mlp.col_upper_ = np.zeros(n_r), np.ones(n_r)
    mlp.row_lower_ = np.concatenate([-R.gamma, np.full(n_g, -INF), [1.0]])
    mlp.row_upper_ = np.concatenate([np.full(n_r, INF), G, [1.0]])
    _set_matrix(mlp, list(range(n_r)), list(range(n_r)), list(R.beta), mlp.num_row_, n_r)
    master = _highs()
    master.passModel(mlp)
    seen = set()
    conv = n_r + n_g

    def add(v: np.ndarray) -> bool:
        key = np.round(v).tobytes()
        if key in seen:
            return False
        seen.add(key)
        out, _into, _f = a.supplies(v)
        coef = np.concatenate([R.alpha @ v if n_r else np.zeros(0), out[give_p]])
        idx = np.flatnonzero(np.abs(coef) > 1e-12)
        master.addCol(0.0, 0.0, INF, len(idx) + 1, np.append(idx, conv).astype(np.int32), np.append(coef[idx], 1.0))
        return True

    best, y_best, it, mval = -math.inf, None, 0, math.inf
    if not st.force_open:
        add(np.zeros(n_s))
    # A first plan: the knapsack priced with each zone's most useful multiplier P_i / R_i.
    lam0 = np.where(R.beta < 0, R.pop / np.maximum(-R.beta, 1e-12), 0.0)
    value, sol = price(lam0, np.zeros(n_g))
    if sol is not None:
        add(sol)
        best, y_best = value, np.concatenate([lam0, np.zeros(n_g)])
    while time.perf_counter() - t0 < time_limit:
        it += 1
        master.run()
        if master.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        mval = R.fixed + master.getInfo().objective_function_value
        if best >= mval - 1e-7 * max(1.0, abs(mval)):
            break
        dual = np.asarray(master.getSolution().row_dual)
        y_m = np.concatenate([np.maximum(0.0, dual[:n_r]), np.maximum(0.0, -dual[n_r:n_r + n_g])])
        y = y_m if y_best is None else alpha * y_best + (1 - alpha) * y_m
        value, sol = price(y[:n_r], y[n_r:])
        added = sol is not None and add(sol)
        if value > best:
            best, y_best = value, y
        if not added:
            value, sol = price(y_m[:n_r], y_m[n_r:])
            if value > best:
                best, y_best = value, y_m
            if sol is None or not add(sol):
                break
    return AplLagrangian(bound=best, iterations=it, master=mval, seconds=time.perf_counter() - t0)
