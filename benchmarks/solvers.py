"""The same maximal covering instance solved three ways, each answer re-checked.

* ``optisite``: ``optisite.pipeline.solve`` with the coverage model (Pyomo + HiGHS), coverage
  stage only (``optisite-lex``: with the cost and tie-break stages too),
  budget p on unit costs.
* ``highs``: the textbook formulation (Church and ReVelle 1974) passed to HiGHS
  directly through highspy, matrix built with numpy: max sum_i w_i x_i,
  x_i <= sum_{j in N_i} y_j, sum_j y_j = p, x and y binary.
* ``spopt-cbc`` / ``spopt-highs``: ``spopt.locate.MCLP.from_cost_matrix`` (dense
  cost matrix, PuLP model) solved by PuLP's bundled CBC or by PuLP's HiGHS API.

Every result carries ``covered`` recomputed by ``MCLPData.covered_demand`` from
the open site list alone (distances recomputed from raw data), never the
solver's own objective; ``reported`` is what the solver said, for comparison.
``bound`` is a proven upper bound on covered demand (NaN when unknown).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from instances import MCLPData

SOLVERS = ("optisite", "optisite-lex", "highs", "spopt-cbc", "spopt-highs")


@dataclass
class Result:
    instance: str
    solver: str
    status: str
    covered: float = math.nan  # recomputed from open sites
    reported: float = math.nan  # the solver's own covered value
    bound: float = math.nan  # proven upper bound on covered demand
    wall_s: float = math.nan  # the whole call, checker and imports included
    prep_s: float = math.nan  # turning the raw data into the solver's input (optisite Instance, dense matrix)
    build_s: float = math.nan
    solve_s: float = math.nan
    open_sites: list = field(default_factory=list)
    note: str = ""

    @property
    def total_s(self) -> float:
        return sum(v for v in (self.prep_s, self.build_s, self.solve_s) if not math.isnan(v))

    @property
    def gap(self) -> float:
        """(bound - covered) / covered, on covered demand, whatever the solver's own gap."""
        if math.isnan(self.bound) or math.isnan(self.covered) or self.covered <= 0:
            return math.nan
        return max(0.0, (self.bound - self.covered) / self.covered)


def _finish(res: Result, data: MCLPData, open_ids) -> Result:
    res.open_sites = sorted(str(s) for s in open_ids)
    if len(res.open_sites) > data.p:
        res.note = (res.note + f"; {len(res.open_sites)} sites open > p").strip("; ")
    res.covered = data.covered_demand(res.open_sites)
    if not math.isnan(res.reported) and abs(res.reported - res.covered) > 0.5:
        res.note = (res.note + f"; solver reported {res.reported:,.0f}").strip("; ")
    return res


# ---------------------------------------------------------------------------------
# optisite
# ---------------------------------------------------------------------------------

def solve_optisite(data: MCLPData, *, time_limit: float, threads: int, gap: float = 0.0,
                   lexicographic: bool = False) -> Result:
    """``lexicographic=False`` (solver name ``optisite``) runs the coverage stage only, the
    problem the other solvers solve; ``True`` (``optisite-lex``) adds the product's cost and
    tie-break stages, which on unit costs minimise the number of sites at that coverage."""
    from optisite.pipeline import SolveOptions, solve

    t0 = time.perf_counter()
    instance = data.to_instance()
    prep = time.perf_counter() - t0
    sol = solve(instance, SolveOptions(model="coverage", time_limit=time_limit, gap=gap, threads=threads,
                                       lexicographic=lexicographic))
    res = Result(data.name, "optisite-lex" if lexicographic else "optisite", str(sol.status), prep_s=prep,
                 build_s=float(sol.timings.get("build", math.nan)),
                 solve_s=float(sol.timings.get("solve", math.nan)))
    stages = sol.summary.get("solver", {}).get("stages", [])
    red = sol.summary.get("solver", {}).get("reductions", {})
    res.note = "; ".join(f"{s['name']} {s['status']} {s['seconds']:.1f}s" for s in stages)
    if red:
        res.note += (f"; {red['candidates_kept']} candidates kept, {red['candidates_dominated']} dominated, "
                     f"{red['zone_classes']} rows")
    total = data.total_demand
    res.reported = float(sol.summary["population_covered"])
    if sol.bound is not None and not (isinstance(sol.bound, float) and math.isnan(sol.bound)):
        res.bound = total - float(sol.bound)  # bound on uncovered -> bound on covered
    return _finish(res, data, list(sol.open_sites))


# ---------------------------------------------------------------------------------
# plain HiGHS on the textbook formulation
# ---------------------------------------------------------------------------------

def textbook_lp(data: MCLPData):
    """highspy.HighsLp of the textbook model: columns y (facilities) then x (clients)."""
    import highspy

    nf, nc = data.n_facilities, data.n_clients
    order = np.lexsort((data.pair_facility, data.pair_client))
    pc, pf = data.pair_client[order], data.pair_facility[order]
    counts = np.bincount(pc, minlength=nc)  # facilities per client row
    # row i: y_j for j in N_i (coef 1), then x_i (coef -1); last row: sum y = p
    row_len = counts + 1
    start = np.zeros(nc + 2, dtype=np.int32)
    start[1:nc + 1] = np.cumsum(row_len)
    start[nc + 1] = start[nc] + nf
    index = np.empty(start[-1], dtype=np.int32)
    value = np.empty(start[-1], dtype=np.float64)
    before = np.repeat(np.cumsum(np.r_[0, counts[:-1]]), counts)  # pairs of earlier clients
    pos_in_row = start[pc] + (np.arange(len(pc)) - before)
    index[pos_in_row] = pf
    value[pos_in_row] = 1.0
    last = start[1:nc + 1] - 1
    index[last] = nf + np.arange(nc)
    value[last] = -1.0
    index[start[nc]:] = np.arange(nf)
    value[start[nc]:] = 1.0

    lp = highspy.HighsLp()
    lp.num_col_ = nf + nc
    lp.num_row_ = nc + 1
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = np.r_[np.zeros(nf), data.demand.astype(float)]
    lp.col_lower_ = np.zeros(nf + nc)
    lp.col_upper_ = np.ones(nf + nc)
    lp.row_lower_ = np.r_[np.zeros(nc), float(data.p)]
    lp.row_upper_ = np.r_[np.full(nc, highspy.kHighsInf), float(data.p)]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_ = nf + nc
    lp.a_matrix_.num_row_ = nc + 1
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    lp.integrality_ = [highspy.HighsVarType.kInteger] * (nf + nc)
    return lp


def solve_highs(data: MCLPData, *, time_limit: float, threads: int, gap: float = 0.0) -> Result:
    import highspy

    t0 = time.perf_counter()
    lp = textbook_lp(data)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", float(gap))
    h.passModel(lp)
    t1 = time.perf_counter()
    h.run()
    t2 = time.perf_counter()
    status = h.getModelStatus()
    info = h.getInfo()
    st = {highspy.HighsModelStatus.kOptimal: "optimal",
          highspy.HighsModelStatus.kTimeLimit: "time_limit"}.get(status, h.modelStatusToString(status))
    res = Result(data.name, "highs", st, prep_s=0.0, build_s=t1 - t0, solve_s=t2 - t1)
    if info.primal_solution_status == 2:  # feasible
        y = np.asarray(h.getSolution().col_value[:data.n_facilities])
        res.reported = float(info.objective_function_value)
        res.bound = float(info.mip_dual_bound)
        return _finish(res, data, data.facility_ids[y > 0.5])
    res.note = "no feasible solution"
    return res


# ---------------------------------------------------------------------------------
# PySAL spopt (PuLP)
# ---------------------------------------------------------------------------------

def cbc_available() -> bool:
    import pulp

    return "PULP_CBC_CMD" in pulp.listSolvers(onlyAvailable=True)


def solve_spopt(data: MCLPData, backend: str, *, time_limit: float, threads: int,
                gap: float = 0.0) -> Result:
    import pulp
    from spopt.locate import MCLP

    name = f"spopt-{backend}"
    t0 = time.perf_counter()
    cost = data.dense_cost()
    t1 = time.perf_counter()
    model = MCLP.from_cost_matrix(cost, data.demand, service_radius=data.radius,
                                  p_facilities=data.p, name="mclp")
    t2 = time.perf_counter()
    log = None
    if backend == "cbc":
        fd, log = tempfile.mkstemp(suffix=".log")
        os.close(fd)
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, threads=threads, gapRel=gap,
                                   logPath=log)
    elif backend == "highs":
        solver = pulp.HiGHS(msg=False, timeLimit=time_limit, threads=threads, gapRel=gap)
    else:
        raise ValueError(backend)
    try:
        model.solve(solver, results=False)
        err = ""
    except RuntimeError as exc:  # spopt raises when PuLP's status is not "Optimal"
        err = str(exc)
    t3 = time.perf_counter()
    res = Result(data.name, name, "error", prep_s=t1 - t0, build_s=t2 - t1, solve_s=t3 - t2)
    prob = model.problem
    # PuLP maps HiGHS/CBC time limits with a solution to status 1 and sol_status 2.
    res.status = {1: "optimal", 2: "time_limit"}.get(prob.sol_status, pulp.LpStatus[prob.status].lower())
    if err:
        res.note = err
    y = np.array([v.value() or 0.0 for v in model.fac_vars])
    if prob.sol_status in (1, 2):
        res.reported = float(pulp.value(prob.objective))
    if backend == "highs":
        info = prob.solverModel.getInfo()
        res.bound = -float(info.mip_dual_bound)  # PuLP hands HiGHS the negated (min) objective
        if prob.solverModel.getModelStatus() == __import__("highspy").HighsModelStatus.kTimeLimit:
            res.status = "time_limit"
    elif log:
        res.bound, cbc_status = _cbc_bound(log, res.reported)
        if cbc_status:
            res.status = cbc_status
        os.unlink(log)
    if prob.sol_status not in (1, 2):
        return res
    return _finish(res, data, data.facility_ids[y > 0.5])


def _cbc_bound(log: str, objective: float) -> tuple[float, str]:
    """Proven bound and status from CBC's log (PuLP does not expose them)."""
    try:
        text = open(log, errors="replace").read()
    except OSError:
        return math.nan, ""
    if "Optimal solution found" in text:
        return objective, "optimal"
    status = "time_limit" if "Stopped on time" in text else ""
    m = re.search(r"Lower bound:\s*([-+0-9.eE]+)", text)
    if m:
        return abs(float(m.group(1))), status  # CBC minimises -objective for a max problem
    return math.nan, status


def run(data: MCLPData, solver: str, *, time_limit: float, threads: int, gap: float = 0.0) -> Result:
    """One solver on one instance; failures become a row, never a crash."""
    t0 = time.perf_counter()
    res = _run(data, solver, time_limit=time_limit, threads=threads, gap=gap)
    res.wall_s = time.perf_counter() - t0
    return res


def _run(data: MCLPData, solver: str, *, time_limit: float, threads: int, gap: float) -> Result:
    try:
        if solver in ("optisite", "optisite-lex"):
            return solve_optisite(data, time_limit=time_limit, threads=threads, gap=gap,
                                  lexicographic=solver == "optisite-lex")
        if solver == "highs":
            return solve_highs(data, time_limit=time_limit, threads=threads, gap=gap)
        if solver.startswith("spopt-"):
            backend = solver.split("-", 1)[1]
            if backend == "cbc" and not cbc_available():
                return Result(data.name, solver, "unavailable", note="PuLP has no CBC here")
            return solve_spopt(data, backend, time_limit=time_limit, threads=threads, gap=gap)
    except ImportError as exc:
        return Result(data.name, solver, "unavailable", note=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # report and carry on with the other solvers
        return Result(data.name, solver, "error", note=f"{type(exc).__name__}: {str(exc)[:200]}")
    raise ValueError(f"unknown solver {solver}")
