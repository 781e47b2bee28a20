"""The model pipeline: models are registered objects, nothing outside optisite/models/
branches on a model's name, one deadline, no Pyomo warning, never worse than doing nothing."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd
import pytest

from optisite import load_instance
from optisite import models
from optisite.deadline import Deadline
from optisite.errors import InputError
from optisite.pipeline import SolveOptions, solve

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "optisite"


def test_registry_lists_every_model_with_its_document():
    assert set(models.names()) >= {"coverage", "staffing", "apl", "lscp"}
    for name in models.names():
        m = models.get(name)
        assert m.name == name and m.title and m.objective_unit
        assert (ROOT / m.document).is_file(), m.document
    with pytest.raises(InputError, match="unknown model 'nope'"):
        models.get("nope")


def test_no_model_name_is_compared_outside_the_models_package():
    pattern = re.compile(r"""==\s*['"](%s)['"]""" % "|".join(models.names()))
    found = []
    for path in PACKAGE.rglob("*"):
        if path.suffix not in (".py", ".html") or "models" in path.relative_to(PACKAGE).parts[:1]:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_cli_model_choices_come_from_the_registry():
    from optisite.cli import solve as solve_cmd

    choice = next(p for p in solve_cmd.params if p.name == "model").type
    assert tuple(choice.choices) == models.names()


def test_deadline_parts_never_exceed_what_is_left():
    clock = iter([0.0, 4.0, 4.0, 4.0, 9.5, 9.5]).__next__
    d = Deadline(10.0, clock=clock)  # started at 0
    assert d.left() == pytest.approx(6.0)
    assert d.part(0.25, at_least=0.2) == pytest.approx(1.5)
    assert d.part(0.25, at_most=1.0) == pytest.approx(1.0)
    assert d.part(0.25, at_least=2.0) == pytest.approx(0.5)  # only 0.5 s left
    assert Deadline(None).left() is None and Deadline(None).part(0.5, at_most=3) == 3


@pytest.mark.parametrize("model", ["coverage", "staffing", "apl", "lscp"])
def test_no_pyomo_warning_on_any_solve(model, caplog):
    inst = load_instance(ROOT / "instances" / "tiny")
    with caplog.at_level(logging.WARNING):
        sol = solve(inst, SolveOptions(model=model, time_limit=30, threads=1))
    pyomo = [r.getMessage() for r in caplog.records if r.name.startswith("pyomo")]
    assert not pyomo, pyomo
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]
    # every stage that ran ended with a plan: no unbounded or infeasible flows stage
    assert all(s["status"] in ("optimal", "time_limit") for s in sol.summary["solver"]["stages"]), \
        sol.summary["solver"]["stages"]


def test_apl_last_stage_solves_on_nievre():
    inst = load_instance(ROOT / "instances" / "nievre-58")
    sol = solve(inst, SolveOptions(model="apl", time_limit=40, threads=1))
    stages = sol.summary["solver"]["stages"]
    flows = [s for s in stages if "flows" in s["name"]]
    assert flows and all(s["status"] == "optimal" for s in flows), stages
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]
    assert len(sol.assignment) > 0


@pytest.mark.parametrize("limit", [0.1, 1.0, 5.0])
@pytest.mark.parametrize("name", ["nievre-58", "ille-et-vilaine-35"])
def test_staffing_plan_is_never_worse_than_the_status_quo(name, limit):
    inst = load_instance(ROOT / "instances" / name)
    sol = solve(inst, SolveOptions(model="staffing", time_limit=limit, threads=1))
    S = sol.summary
    assert S["population_uncovered"] <= S["population_uncovered_before"] + 1e-6
    z = sol.zones
    w = z["weight"] * z["population"]
    assert (w * (1 - z["covered_after"])).sum() <= (w * (1 - z["covered_before"])).sum() + 1e-6
    assert S["check"]["ok"], S["check"]["violations"]


def test_polished_flows_are_optimal_for_the_plan():
    """A time-limited staffing plan's flows serve as much weighted demand as an LP re-solve
    of the flows with the plan's days and FTE fixed (computed here with scipy, not Pyomo)."""
    import numpy as np
    from scipy.optimize import linprog

    inst = load_instance(ROOT / "instances" / "tiny")
    sol = solve(inst, SolveOptions(model="staffing", time_limit=2, threads=1))
    p = inst.parameters
    per_day = p.consultations_per_day_liberal * p.working_weeks
    cap = pd.concat([
        pd.Series(sol.practices["capacity_after"].to_numpy(float), index=sol.practices["practice_id"]),
        pd.Series(sol.sites["capacity"].to_numpy(float), index=sol.sites["site_id"])])
    assert per_day > 0
    from optisite.reach import coverage_pairs

    pairs = coverage_pairs(inst)
    pairs = pairs[pairs["source_id"].isin(cap.index)].reset_index(drop=True)
    z = inst.zones
    pen = (z["weight"] * z["population"] / z["demand"]).where(z["demand"] > 0, 0.0)
    n = len(pairs)
    # maximise sum pen_z x_zs  s.t. sum_s x_zs <= D_z, sum_z x_zs <= cap_s
    c = -pen.reindex(pairs["zone_id"]).to_numpy(float)
    rows, rhs = [], []
    for zid, g in pairs.groupby("zone_id"):
        r = np.zeros(n); r[g.index] = 1; rows.append(r); rhs.append(float(z.at[zid, "demand"]))
    for sid, g in pairs.groupby("source_id"):
        r = np.zeros(n); r[g.index] = 1; rows.append(r); rhs.append(float(cap[sid]))
    res = linprog(c, A_ub=np.array(rows), b_ub=np.array(rhs), bounds=(0, None), method="highs")
    best_served = -res.fun
    served = (sol.assignment.merge(pen.rename("pen"), left_on="zone_id", right_index=True)
              .eval("pen * consultations").sum())
    assert served == pytest.approx(best_served, rel=1e-7, abs=1e-6)


def test_progress_reports_plan_bound_and_gap_while_solving():
    from optisite.solver import Progress

    inst = load_instance(ROOT / "instances" / "tiny")
    seen: list[Progress] = []
    sol = solve(inst, SolveOptions(model="staffing", time_limit=30, threads=1), watch=seen.append)
    first = [p for p in seen if p.stage == "uncovered"]
    assert first, seen
    assert first[-1].objective == pytest.approx(sol.summary["solver"]["stages"][0]["objective"], rel=1e-9)
    assert all(p.left is None or p.left <= 30 for p in seen)
    # the first plan HiGHS holds is the start it was given: the primal engine's plan when
    # it beats the status quo, else the status quo; never worse than the status quo
    starts = sol.summary["solver"]["start_stages"]
    used = [s for s in starts if s.get("extra", {}).get("used")] or starts[:1]
    assert first[0].objective == pytest.approx(used[-1]["objective"], rel=1e-6)
    assert first[0].objective <= sol.summary["population_uncovered_before"] + 1e-6


@pytest.mark.parametrize("quiet", [False, True])
def test_cli_shows_progress_lines_unless_quiet(tmp_path, quiet):
    from click.testing import CliRunner

    from optisite.cli import main

    args = ["solve", str(ROOT / "instances" / "tiny"), "--time-limit", "30", "--threads", "1",
            "--out", str(tmp_path / "o")] + (["--quiet"] if quiet else [])
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert ("uncovered: plan" in r.output) is (not quiet)


def test_status_quo_flows_run_to_their_end_when_the_limit_cut_them(monkeypatch):
    """The existing supply's flows are what every table and the never-worse rule compare
    with: when the time limit stopped their LP (the national batch's 'no flows' failure,
    a large département on a busy machine), it is re-run to its end, and the run records
    that the limit was overrun."""
    from optisite.models import staffing
    from optisite.pipeline import build

    inst = load_instance(ROOT / "instances" / "tiny")
    built = build(inst, SolveOptions(model="staffing", time_limit=30, threads=1))
    expected, _ = staffing.plan_flows(built.context, built.data, None, None)
    real, floors = staffing.plan_flows, []

    def cut_first(ctx, data, days, fte, name="flows for the plan", floor=None):
        floors.append(floor)
        if len(floors) == 1:
            return None, []  # as when the LP did not finish within its floor
        return real(ctx, data, days, fte, name=name, floor=floor)

    monkeypatch.setattr(staffing, "plan_flows", cut_first)
    flows = staffing.status_quo_flows(built.context, built.data)
    assert floors == [None, staffing.BASELINE_FLOOR_S]
    assert any("ran past the time limit" in c for c in built.context.deadline.cuts)
    got = flows.groupby("zone_id")["consultations"].sum()
    want = expected.groupby("zone_id")["consultations"].sum()
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_exact=False, rtol=1e-9)
