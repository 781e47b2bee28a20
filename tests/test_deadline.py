"""The deadline and the effort budget (optisite/deadline.py): pure functions of their
inputs, no timed assertions (a fake clock stands in for the wall clock)."""

from __future__ import annotations

from optisite.deadline import (Deadline, floor_warning, node_budget, post_solve_estimate, post_solve_reserve,
                               tolerance)


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_deadline_counts_from_the_given_start():
    clock = FakeClock(100.0)
    d = Deadline(10, clock=clock, start=97.0)  # the command started 3 s before the solve
    assert d.elapsed() == 3.0 and d.left() == 7.0
    clock.now = 108.0
    assert d.left() == 0.0 and d.expired()
    assert Deadline(None, clock=clock).left() is None


def test_cuts_are_recorded_once_and_split_by_what_they_change():
    d = Deadline(5, clock=FakeClock())
    d.cut("stage 'cost' skipped: no time left")
    d.cut("stage 'cost' skipped: no time left")
    d.cut("bound hook skipped: no time left", plan=False)
    assert d.cuts == ["stage 'cost' skipped: no time left"]
    assert d.bound_cuts == ["bound hook skipped: no time left"]


def test_node_budget_depends_only_on_limit_and_size():
    assert node_budget(None, 10_000) is None
    assert node_budget(60, 10_000) == node_budget(60, 10_000)
    assert node_budget(60, 10_000) > node_budget(5, 10_000) >= 1
    assert node_budget(60, 10_000_000) < node_budget(60, 10_000)  # bigger models: fewer nodes
    assert node_budget(0, 10_000) == 1  # always at least the root


def test_tolerance_and_post_solve_reserve():
    assert tolerance(None) is None
    assert tolerance(1) == 5.0 and tolerance(60) == 6.0 and tolerance(600) == 60.0
    assert post_solve_reserve(None, 1000) == 0.0
    assert post_solve_reserve(1, 1000) <= 0.3  # never most of a short limit
    assert post_solve_reserve(600, 5000) > post_solve_reserve(600, 300)


def test_floor_warning_gives_the_figures_only_below_the_fixed_minimum():
    assert floor_warning(None, 30.0, 500) is None
    post = post_solve_estimate(500)  # 4 s + 8 ms a zone
    assert post == 8.0
    assert floor_warning(20.0, 12.0, 500) is None  # 12 + 8 = 20: the limit can hold
    w = floor_warning(5.0, 4.6, 500)
    assert w is not None
    assert "5 s" in w and "about 13 s" in w and "4.6 s" in w and "about 8 s" in w


def test_a_run_whose_limit_is_below_its_fixed_minimum_says_so():
    """The limit counts from the command's start: a start 20 s ago puts the build past a 1 s limit."""
    import time
    from pathlib import Path

    from optisite import load_instance
    from optisite.pipeline import SolveOptions, solve

    inst = load_instance(Path(__file__).resolve().parents[1] / "instances" / "tiny")
    sol = solve(inst, SolveOptions(model="staffing", time_limit=1, threads=1), started=time.perf_counter() - 20)
    S = sol.summary
    hits = [w for w in S["warnings"] if "fixed minimum" in w]
    assert len(hits) == 1 and "time limit of 1 s" in hits[0]
    assert S["timings"]["build"] >= 20  # the figure the warning reports is the one recorded
    assert S["check"]["ok"]
    assert S["population_uncovered"] <= S["population_uncovered_before"] + 1e-6
    ok = solve(inst, SolveOptions(model="staffing", time_limit=60, threads=1))
    assert not any("fixed minimum" in w for w in ok.summary["warnings"])


def test_the_cost_stage_keeps_its_seconds_when_stage_one_overran(monkeypatch):
    """Issue 18 item 2: stage 1 running past its share (HiGHS stops late, or the hard stop
    fires a second after) must not skip the cost stage, or money is spent for nothing."""
    import pyomo.environ as pyo

    import optisite.solver as solver
    from optisite.models.base import Objective

    clock = FakeClock()
    deadline = Deadline(20, clock=clock)
    real = solver._run

    def overrunning(opt, m, name, left, *args, **kw):
        stage = real(opt, m, name, left, *args, **kw)
        if name == "covered":
            clock.now += 25.0  # stage 1 ends past the whole deadline
        return stage

    monkeypatch.setattr(solver, "_run", overrunning)
    m = pyo.ConcreteModel()
    m.y = pyo.Var([1, 2], domain=pyo.Binary)
    m.cover = pyo.Constraint(expr=m.y[1] + m.y[2] >= 1)  # one site of two; the cost stage picks site 2
    m.cost = pyo.Expression(expr=3 * m.y[1] + 1 * m.y[2])
    opts = solver.SolveOptions(time_limit=20, threads=1)
    stages = solver.StageSolver(opts, deadline).lexicographic(
        m, [Objective("covered", m.y[1] + m.y[2]), Objective("cost", m.cost)], canonical=False)
    assert [s.name for s in stages] == ["covered", "cost"]
    assert stages[1].status == "optimal" and abs(stages[1].objective - 1.0) < 1e-9
    assert round(pyo.value(m.y[2])) == 1 and round(pyo.value(m.y[1])) == 0
