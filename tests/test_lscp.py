"""The lscp model (location set covering) against independent solves.

* Small random instances and ``tiny``: brute-force enumeration of every subset of
  sites, with travel times recomputed from coordinates (no pairs, no Pyomo).
* Nièvre and the spopt San Francisco data: plain highspy on the textbook
  formulation (one row per zone, one column per site), built from its own coverage
  matrix, not from the model's reduced sets.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import highspy
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from optisite import instance_from_frames, load_instance
from optisite.checker import check_folder, check_solution
from optisite.cli import main
from optisite.errors import CheckError
from optisite.pipeline import SolveOptions, solve

from test_models import minutes_matrix, random_instance
from test_published_optima import _instances_module, _require_shared

ROOT = Path(__file__).resolve().parents[1]


def brute_force_lscp(inst) -> tuple[float, int]:
    """(cheapest cost, number of zones no site nor practice reaches) over every subset of sites."""
    T = minutes_matrix(inst)
    cut = inst.parameters.coverage_minutes
    pop = inst.zones["population"].to_numpy(float)
    base = np.zeros(len(T), dtype=bool)
    for zid in inst.practices["zone_id"]:
        base |= (T[zid] <= cut).to_numpy()
    reach = {sid: (T[inst.sites.at[sid, "zone_id"]] <= cut).to_numpy() for sid in inst.sites.index}
    coverable = base | np.logical_or.reduce(list(reach.values()))
    must = (pop > 0) & coverable
    best = np.inf
    sites = list(inst.sites.index)
    for r in range(len(sites) + 1):
        for subset in itertools.combinations(sites, r):
            cov = base.copy()
            for sid in subset:
                cov |= reach[sid]
            if (cov | ~must).all():
                best = min(best, float(inst.sites.loc[list(subset), "fixed_cost"].sum()))
    return best, int(((pop > 0) & ~coverable).sum())


@pytest.mark.parametrize("seed", range(8))
def test_lscp_equals_enumeration_on_random_instances(seed):
    z, s, p = random_instance(seed, n_zones=12, n_sites=8, n_practices=1)
    inst = instance_from_frames(z, s, p, parameters={"coverage_minutes": 12, "budget": 0})
    best, unreachable = brute_force_lscp(inst)
    sol = solve(inst, SolveOptions(model="lscp", time_limit=60, threads=1))
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(best, abs=1e-6)
    assert sol.summary["cost_total"] == pytest.approx(best, abs=1e-6)
    assert sol.summary["solver"]["reductions"]["zones_unreachable"] == unreachable
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]


def test_lscp_on_tiny_equals_enumeration_and_ignores_the_budget():
    inst = load_instance(ROOT / "instances" / "tiny").with_parameters({"budget": 1})
    best, _ = brute_force_lscp(inst)
    sol = solve(inst, SolveOptions(model="lscp", time_limit=60, threads=1))
    assert sol.objective == pytest.approx(best) and best > 1  # above the budget: not a constraint
    assert sol.summary["result"] == {"access": "reach", "objective": "cost_total", "capacities": False,
                                     "apl": False, "full_coverage": True, "budgeted": False, "years": False,
                                     "scenarios": False}
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]


def test_unreachable_zones_are_reported_not_infeasible():
    z, s, p = random_instance(3, n_zones=10, n_sites=4, n_practices=1)
    far = next(i for i in z.index if z.at[i, "zone_id"] not in set(s["zone_id"]) | set(p["zone_id"]))
    z.loc[far, ["lon", "lat"]] = [9.0, 42.5]  # far from everything, and hosting no site nor practice
    z.loc[far, "population"] = 500
    zid = z.at[far, "zone_id"]
    inst = instance_from_frames(z, s, p, parameters={"coverage_minutes": 15})
    sol = solve(inst, SolveOptions(model="lscp", time_limit=60, threads=1))
    assert sol.status == "optimal"
    assert sol.summary["solver"]["reductions"]["zones_unreachable"] >= 1
    assert any("no plan can give them access" in w for w in sol.summary["warnings"])
    zone = sol.zones.set_index("zone_id").loc[zid]
    assert zone["uncovered_after"] == pytest.approx(500)


def textbook_lscp(a, cost: np.ndarray, rows: np.ndarray) -> float:
    """min c'y s.t. A[rows] y >= 1, y binary, with plain highspy (no Pyomo, no reductions)."""
    import scipy.sparse as sp

    a = sp.csr_matrix(a)[rows]
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("mip_rel_gap", 0.0)
    n = a.shape[1]
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, a.shape[0]
    lp.col_cost_ = cost.astype(float)
    lp.col_lower_, lp.col_upper_ = np.zeros(n), np.ones(n)
    lp.row_lower_, lp.row_upper_ = np.ones(a.shape[0]), np.full(a.shape[0], highspy.kHighsInf)
    csc = a.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = csc.indptr, csc.indices, csc.data.astype(float)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    h.passModel(lp)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h.getInfo().objective_function_value


def test_lscp_on_nievre_equals_plain_highs_textbook():
    """Travel minutes from coordinates (great circle x detour / speed, plus each commune's
    access minutes at both ends, 0 within a commune); rows: the planning territory's
    populated communes that no practice reaches (practices across the border count)."""
    from optisite.travel import great_circle_km

    inst = load_instance(ROOT / "instances" / "nievre-58")
    z = inst.zones
    p = inst.parameters
    lon, lat = z["lon"].to_numpy(), z["lat"].to_numpy()
    acc = z["access_minutes"].to_numpy(float) if "access_minutes" in z else np.zeros(len(z))

    def within(cols):
        km = great_circle_km(lon[:, None], lat[:, None], lon[None, cols], lat[None, cols])
        minutes = km * p.detour_factor / p.speed_kmh * 60 + acc[:, None] + acc[None, cols]
        minutes[cols, np.arange(len(cols))] = 0.0
        return minutes <= p.coverage_minutes + 1e-9

    a = within(z.index.get_indexer(inst.sites["zone_id"])).astype(float)
    covered = within(z.index.get_indexer(inst.practices["zone_id"])).any(axis=1)
    planning = (z["planning"].to_numpy() == 1) if "planning" in z else np.ones(len(z), bool)
    rows = np.flatnonzero(planning & (z["population"].to_numpy() > 0) & ~covered & (a.sum(axis=1) > 0))
    assert len(rows) > 0  # something to cover: the test is not vacuous
    expected = textbook_lscp(a, inst.sites["fixed_cost"].to_numpy(float), rows)
    sol = solve(inst, SolveOptions(model="lscp", time_limit=120, threads=1))
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]


def test_lscp_on_spopt_san_francisco_equals_plain_highs_textbook():
    _require_shared("spopt-sf")
    data = _instances_module().spopt_sf()
    inst = data.to_instance()
    a = data.coverage_matrix("csr")  # clients x facilities within 5,000 m of network distance
    rows = np.flatnonzero((np.asarray(a.sum(axis=1)).ravel() > 0) & (data.demand > 0))
    expected = textbook_lscp(a, np.ones(a.shape[1]), rows)
    sol = solve(inst, SolveOptions(model="lscp", time_limit=120, threads=1))
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(expected * float(inst.sites["fixed_cost"].iloc[0]), abs=1e-6)
    assert len(sol.open_sites) == round(expected)
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]


def test_checker_refuses_a_plan_that_does_not_cover_everyone(tmp_path):
    inst = load_instance(ROOT / "instances" / "nievre-58")
    sol = solve(inst, SolveOptions(model="lscp", time_limit=60, threads=1))
    assert len(sol.open_sites) >= 2
    out = sol.write(tmp_path / "lscp")
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    sites = pd.read_csv(bad / "sites.csv", dtype={"site_id": str, "zone_id": str})
    sites = sites.iloc[1:]
    sites.to_csv(bad / "sites.csv", index=False)
    s = json.loads((bad / "solution.json").read_text())
    s["open_sites"] = sorted(sites["site_id"])
    s["cost_total"] = float(sites["cost_total"].sum())
    s["objective"] = s["cost_total"]
    (bad / "solution.json").write_text(json.dumps(s))
    with pytest.raises(CheckError):
        check_folder(bad, inst)
    from optisite.solution import read_solution

    report = check_solution(inst, read_solution(bad))
    assert any("full coverage" in v for v in report.violations), report.violations
    check_folder(out, inst)  # the untouched folder passes


@pytest.mark.parametrize("name", ["tiny", "nievre-58", "ille-et-vilaine-35", "rhone-69"])
def test_cli_solves_lscp_on_every_shipped_instance(tmp_path, name):
    out = tmp_path / name
    r = CliRunner().invoke(main, ["solve", str(ROOT / "instances" / name), "--model", "lscp", "--time-limit", "120",
                                  "--threads", "1", "--quiet", "--out", str(out)])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "solution.json").read_text())
    assert s["model"] == "lscp" and s["status"] == "optimal" and s["check"]["ok"]
    assert (out / "report.html").stat().st_size > 1000
    r = CliRunner().invoke(main, ["check", str(out), str(ROOT / "instances" / name)])
    assert r.exit_code == 0, r.output


def test_check_solution_sees_the_declared_meaning():
    inst = load_instance(ROOT / "instances" / "tiny")
    sol = solve(inst, SolveOptions(model="lscp", time_limit=60, threads=1), check=False)
    assert check_solution(inst, sol).ok
    sol.summary["objective"] = sol.summary["objective"] + 1000
    assert not check_solution(inst, sol).ok
