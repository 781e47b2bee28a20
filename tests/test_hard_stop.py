"""The hard stop (optisite/hard_stop.py): a HiGHS stage with a time limit runs in a forked
child that the parent kills at the limit, keeping the last plan the child streamed.

No timed assertion: the child is made to stall (``hard_stop.child_hook``, as HiGHS does
in an uninterruptible presolve) and the tests check what was recorded (``stopped_by``,
``kept``, the cuts) and that the plan is valid, never how many seconds anything took.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pyomo.environ as pyo
import pytest

from optisite import hard_stop, load_instance
from optisite.deadline import Deadline
from optisite.models.base import Objective
from optisite.pipeline import SolveOptions, solve
from optisite.solver import HARD, StageSolver

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("solution.json", "sites.csv", "schedule.csv", "practices.csv", "assignment.csv", "zones.csv")

pytestmark = pytest.mark.skipif(not hard_stop.available(), reason="needs fork (Linux) and the main thread")


@pytest.fixture(autouse=True)
def every_model_in_a_child(monkeypatch):
    """The models here are small: run them in a child all the same."""
    monkeypatch.setattr(hard_stop, "MIN_SIZE", 0)


def stall_once(flag: Path, where: str, then=None):
    """A child hook: the first child to reach ``where`` stalls (runs ``then`` first)."""
    def hook(event: str) -> None:
        if event == where and not flag.exists():
            flag.touch()
            if then is not None:
                then()
            time.sleep(600)  # killed long before this ends

    return hook


def knapsack():
    """max sum v_i x_i, sum w_i x_i <= 60, x binary: optimum 87 found by enumeration below."""
    w = [12, 7, 11, 8, 9, 14, 6, 10, 13, 5, 15, 4]
    v = [24, 13, 23, 15, 16, 26, 11, 19, 25, 9, 27, 7]
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, len(w) - 1)
    m.x = pyo.Var(m.I, domain=pyo.Binary)
    m.cap = pyo.Constraint(expr=sum(w[i] * m.x[i] for i in m.I) <= 60)
    value = -sum(v[i] * m.x[i] for i in m.I)
    return m, w, v, value


def feasible(m, w) -> bool:
    xs = [pyo.value(m.x[i]) for i in m.I]
    return all(abs(x - round(x)) < 1e-6 for x in xs) and sum(wi * x for wi, x in zip(w, xs)) <= 60 + 1e-6


def test_enumerated_optimum_in_the_child_when_it_returns():
    from itertools import product

    m, w, v, value = knapsack()
    best = max(sum(vi for vi, b in zip(v, bits) if b) for bits in product((0, 1), repeat=len(w))
               if sum(wi for wi, b in zip(w, bits) if b) <= 60)
    r = StageSolver(SolveOptions(time_limit=60, threads=1), Deadline(60)).minimise(m, Objective("value", value))
    assert r.status == "optimal" and r.objective == pytest.approx(-best)
    assert "stopped_by" not in r.extra and feasible(m, w)
    assert pyo.value(value) == pytest.approx(-best)


def test_a_killed_stage_keeps_the_last_plan_it_streamed(tmp_path, monkeypatch):
    m, w, _, value = knapsack()
    monkeypatch.setattr(hard_stop, "child_hook", stall_once(tmp_path / "stalled", "plan"))
    deadline = Deadline(2.0)
    r = StageSolver(SolveOptions(time_limit=2.0, threads=1), deadline).minimise(m, Objective("value", value))
    assert (tmp_path / "stalled").exists()  # the child did stall after streaming a plan
    assert r.status == "time_limit" and r.extra["stopped_by"] == HARD
    assert r.extra["kept"] == "streamed plan" and r.has_solution
    assert feasible(m, w)  # the streamed plan, loaded into the model, column for column
    assert pyo.value(value) == pytest.approx(r.objective)
    assert any("hard stop" in c for c in deadline.cuts)


def test_a_stage_killed_before_any_plan_keeps_its_feasible_start(tmp_path, monkeypatch):
    m, w, _, value = knapsack()
    for i in m.I:  # a feasible start: the first items that fit
        m.x[i].set_value(1 if i < 4 else 0)
    start = pyo.value(value)
    monkeypatch.setattr(hard_stop, "child_hook", stall_once(tmp_path / "stalled", "start"))
    solver = StageSolver(SolveOptions(time_limit=2.0, threads=1), Deadline(2.0))
    r = solver.lexicographic(m, [Objective("value", value)], warm_start=True, canonical=False)[0]
    assert r.extra["stopped_by"] == HARD and r.extra["kept"] == "start"
    assert r.has_solution and r.objective == pytest.approx(start) and feasible(m, w)


def test_an_infeasible_start_is_not_kept(tmp_path, monkeypatch):
    m, _, _, value = knapsack()
    for i in m.I:
        m.x[i].set_value(1)  # every item: over the capacity
    monkeypatch.setattr(hard_stop, "child_hook", stall_once(tmp_path / "stalled", "start"))
    solver = StageSolver(SolveOptions(time_limit=2.0, threads=1), Deadline(2.0))
    r = solver.lexicographic(m, [Objective("value", value)], warm_start=True, canonical=False)[0]
    assert r.extra["stopped_by"] == HARD and r.extra["kept"] is None
    assert not r.has_solution and r.status == "time_limit"


def test_a_child_that_dies_without_a_result_is_said_so(monkeypatch):
    m, w, _, value = knapsack()
    for i in m.I:
        m.x[i].set_value(1 if i < 4 else 0)
    monkeypatch.setattr(hard_stop, "child_hook", lambda event: os._exit(3) if event == "start" else None)
    deadline = Deadline(30.0)
    r = StageSolver(SolveOptions(time_limit=30, threads=1), deadline).lexicographic(
        m, [Objective("value", value)], warm_start=True, canonical=False)[0]
    assert r.extra["stopped_by"] == HARD and r.extra["child_exit_code"] == 3
    assert r.extra["kept"] == "start" and r.has_solution and feasible(m, w)
    assert any("exit code 3" in c for c in deadline.cuts)


def test_a_killed_first_stage_still_gives_a_checked_plan(tmp_path, monkeypatch):
    """The whole pipeline on tiny, its first HiGHS stage killed: the plan is the one the child
    streamed (the start it was given), the later stages run, the checker passes, and the run
    says the clock cut it (not reproducible)."""
    monkeypatch.setattr(hard_stop, "child_hook", stall_once(tmp_path / "stalled", "plan"))
    sol = solve(load_instance(ROOT / "instances" / "tiny"), SolveOptions(model="staffing", time_limit=10, threads=1))
    S = sol.summary
    first = S["solver"]["stages"][0]
    assert first["extra"]["stopped_by"] == HARD and first["extra"]["kept"] == "streamed plan"
    assert first["has_solution"] and S["status"] == "time_limit"
    assert HARD in S["solver"]["stopped_by"] and S["solver"]["reproducible"] is False
    assert any("hard stop" in c for c in S["solver"]["wall_clock_cuts"])
    assert any("hard stop" in w for w in S["warnings"])
    assert S["check"]["ok"], S["check"]
    assert S["population_uncovered"] <= S["population_uncovered_before"] + 1e-6


def test_ctrl_c_during_a_child_stage_writes_a_complete_folder(tmp_path, monkeypatch):
    """SIGINT reaches the parent while the child is stuck (as in a presolve): the parent
    passes it on, kills the child after its grace, keeps the streamed plan and writes a
    complete, checked folder saying 'interrupted' (exit 130)."""
    from click.testing import CliRunner

    from optisite.cli import main

    parent = os.getpid()
    monkeypatch.setattr(hard_stop, "child_hook",
                        stall_once(tmp_path / "stalled", "plan", lambda: os.kill(parent, signal.SIGINT)))
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["solve", str(ROOT / "instances" / "tiny"), "--time-limit", "60", "--threads", "1",
                                  "--out", str(out), "--quiet"])
    assert (tmp_path / "stalled").exists()
    assert r.exit_code == 130, r.output
    for name in TABLES:
        assert (out / name).is_file(), name
    S = json.loads((out / "solution.json").read_text(encoding="utf-8"))
    assert S["status"] == "interrupted" and S["solver"]["interrupted_by"] == "SIGINT"
    first = S["solver"]["stages"][0]
    assert first["status"] == "interrupted" and first["has_solution"] and first["extra"]["stopped_by"] == HARD
    assert S["check"]["ok"], S["check"]
    for name in TABLES[1:]:
        pd.read_csv(out / name)


def test_the_child_gives_the_same_tables_as_highs_in_process(monkeypatch):
    """When the child returns, nothing differs from running HiGHS in the process itself."""
    inst = load_instance(ROOT / "instances" / "tiny")
    opts = SolveOptions(model="staffing", time_limit=60, threads=1)
    got = {}
    for enabled in (True, False):
        monkeypatch.setattr(hard_stop, "ENABLED", enabled)
        got[enabled] = solve(inst, opts, check=False)
    a, b = got[True], got[False]
    for table in ("sites", "zones", "practices", "assignment"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
    sa, sb = a.summary["solver"]["stages"], b.summary["solver"]["stages"]
    assert [(s["name"], s["status"], s["extra"].get("nodes")) for s in sa] == \
           [(s["name"], s["status"], s["extra"].get("nodes")) for s in sb]
    assert a.summary["solver"]["reproducible"] and b.summary["solver"]["reproducible"]


def test_the_live_display_follows_a_stage_run_in_a_child():
    from optisite.solver import Progress

    seen: list[Progress] = []
    sol = solve(load_instance(ROOT / "instances" / "tiny"), SolveOptions(model="staffing", time_limit=30, threads=1),
                watch=seen.append)
    first = [p for p in seen if p.stage == "uncovered"]
    assert first, seen
    stage = sol.summary["solver"]["stages"][0]
    assert "stopped_by" not in stage["extra"]  # the child returned
    assert first[-1].objective == pytest.approx(stage["objective"], rel=1e-9)
    assert first[0].objective <= sol.summary["population_uncovered_before"] + 1e-6
    assert all(p.left is None or p.left <= 30 for p in seen)
