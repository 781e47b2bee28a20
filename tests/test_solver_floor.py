"""A stage whose objective declares a floor is proven without HiGHS only when the point held
in the model is feasible and at that floor (optisite/solver.py, ``start_reaches``)."""

from __future__ import annotations

import pyomo.environ as pyo

from optisite import solver
from optisite.deadline import Deadline
from optisite.models.base import Objective


def _model(y1: float, y2: float):
    m = pyo.ConcreteModel()
    m.y = pyo.Var([1, 2], domain=pyo.Binary)
    m.u = pyo.Var(domain=pyo.NonNegativeReals)
    m.cover = pyo.Constraint(expr=m.u + m.y[1] + m.y[2] >= 1)  # u: demand left without access
    m.budget = pyo.Constraint(expr=3 * m.y[1] + m.y[2] <= 3)
    m.y[1].set_value(y1)
    m.y[2].set_value(y2)
    m.u.set_value(max(0.0, 1 - y1 - y2))
    return m


def _solve(m, runs: list):
    real = solver._run

    def counting(opt, mm, name, *a, **kw):
        runs.append(name)
        return real(opt, mm, name, *a, **kw)

    objs = [Objective("uncovered", m.u, floor=0.0), Objective("cost", 3 * m.y[1] + m.y[2], floor=0.0)]
    return counting, objs


def test_a_feasible_start_at_the_floor_is_proven_without_highs(monkeypatch):
    m, runs = _model(0, 1), []
    counting, objs = _solve(m, runs)
    monkeypatch.setattr(solver, "_run", counting)
    stages = solver.StageSolver(solver.SolveOptions(time_limit=None, threads=1), Deadline(None)).lexicographic(
        m, objs, warm_start=True, canonical=False)
    assert stages[0].status == "optimal" and stages[0].bound == 0.0
    assert stages[0].extra["bound_method"] == solver.LOWER_BOUND_METHOD
    assert runs == ["cost"]  # the cost (1) is above its floor: HiGHS runs it
    assert stages[1].objective == 1.0


def test_a_start_that_breaks_a_row_goes_to_highs(monkeypatch):
    m, runs = _model(1, 1), []  # u = 0, but the budget row is broken (cost 4 > 3)
    counting, objs = _solve(m, runs)
    monkeypatch.setattr(solver, "_run", counting)
    stages = solver.StageSolver(solver.SolveOptions(time_limit=None, threads=1), Deadline(None)).lexicographic(
        m, objs, warm_start=True, canonical=False)
    assert runs[0] == "uncovered"
    assert "bound_method" not in stages[0].extra
    assert stages[0].objective == 0.0 and stages[1].objective == 1.0


def test_a_fractional_start_is_not_taken_as_proven():
    m = _model(0, 1)
    m.y[2].set_value(0.5)
    m.u.set_value(0.5)
    assert solver.start_reaches(m, m.u, 0.0) is None
    m.u.set_value(0.0)
    m.y[1].set_value(0.5)  # the row holds, but y is not integral
    assert solver.start_reaches(m, m.u, 0.0) is None
