"""The budget frontier: monotone, every point checked, knee and marginal value reported."""

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from optisite.cli import main
from optisite.errors import InputError
from optisite.frontier import (analyse, monotonicity, parse_budgets, run_frontier, solve_budget,
                               write_frontier)
from optisite.instance import load_instance
from optisite.solver import SolveOptions

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "instances" / "tiny"
SHIPPED = ROOT / "instances" / "nievre-58"


def assert_monotone_and_checked(df: pd.DataFrame) -> None:
    assert df["check_ok"].all(), df.loc[~df["check_ok"], ["budget", "violations"]]
    assert (df["status"] == "optimal").all(), df[["budget", "status", "gap"]]
    covered = df["population_covered"].to_numpy(float)
    assert np.all(np.diff(covered) >= -1e-6), covered
    assert monotonicity(df) == []
    assert (df["cost_total"] <= df["budget"] + 1e-6).all()


def test_parse_budgets():
    assert parse_budgets("0:100:5") == [0, 25, 50, 75, 100]
    assert parse_budgets("30000, 0,10000") == [0, 10000, 30000]
    for bad in ("", "a,b", "0:10", "10:0:3", "0:10:1", "-5,10", "nan"):
        with pytest.raises(InputError):
            parse_budgets(bad)


def test_solve_budget_is_a_plain_row_from_a_folder_path():
    row = solve_budget(str(TINY), 60000, SolveOptions(model="staffing"))
    assert row["budget"] == 60000 and row["check_ok"] and row["status"] == "optimal"
    assert row["cost_total"] <= 60000
    # same numbers as a direct solve at that budget
    from optisite.pipeline import solve

    sol = solve(load_instance(TINY).with_parameters({"budget": 60000}), SolveOptions(model="staffing"))
    assert row["population_covered"] == pytest.approx(sol.summary["population_covered"], rel=1e-9)


@pytest.mark.parametrize("model", ["staffing", "coverage"])
def test_tiny_frontier_is_monotone_and_checked(model, tmp_path):
    budgets = parse_budgets("0:120000:7")
    df = run_frontier(TINY, budgets, SolveOptions(model=model))
    assert list(df["budget"]) == budgets
    assert_monotone_and_checked(df)
    assert df["population_covered"].iloc[-1] > df["population_covered"].iloc[0]
    # marginal value: extra inhabitants per EUR 100,000 of each step
    step = df.iloc[3]
    expected = (df["population_covered"].iloc[3] - df["population_covered"].iloc[2]) / 20000 * 100000
    assert step["inhabitants_per_100k_eur"] == pytest.approx(expected)
    assert df["knee"].sum() <= 1
    out = write_frontier(df, tmp_path / "f", instance=load_instance(TINY), options=SolveOptions(model=model))
    for name in ("frontier.csv", "frontier.png", "frontier.html"):
        assert (out / name).stat().st_size > 0
    back = pd.read_csv(out / "frontier.csv")
    assert np.allclose(back["population_covered"], df["population_covered"])
    html = (out / "frontier.html").read_text(encoding="utf-8")
    assert 'id="frontier-ok"' in html and "<script" not in html


def test_shipped_departement_frontier_is_monotone_and_checked():
    """A budget grid on the shipped Nièvre (309 communes, commune polygons), coverage model."""
    t0 = time.perf_counter()
    df = run_frontier(SHIPPED, parse_budgets("0:100000:6"), SolveOptions(model="coverage"))
    assert time.perf_counter() - t0 < 60
    assert_monotone_and_checked(df)
    assert df["population_covered"].iloc[-1] > df["population_covered"].iloc[0]
    assert df["knee"].sum() == 1


def test_cli_frontier_writes_files_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "front"
    args = ["frontier", str(TINY), "--budgets", "0,30000,60000,90000", "--out", str(out)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "check ok" in r.output and "per EUR 100k" in r.output
    assert sorted(p.name for p in out.iterdir()) == [".optisite", "frontier.csv", "frontier.html", "frontier.png"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and "--force" in r.output
    assert CliRunner().invoke(main, [*args, "--force"]).exit_code == 0
    r = CliRunner().invoke(main, ["frontier", str(TINY), "--budgets", "lots", "--out", str(out)])
    assert r.exit_code == 2 and "--budgets" in r.output


def _row(budget, covered, objective, bound):
    return {"budget": budget, "population_total": 100.0, "population_covered": covered,
            "objective": objective, "bound": bound}


def test_a_non_monotone_frontier_is_reported_loudly():
    """The detector itself, on hand-made rows (solver output never looks like this, we hope)."""
    within_gap = pd.DataFrame([_row(0, 50, 50, 50), _row(10, 60, 40, 40), _row(20, 55, 45, 38)])
    msgs = monotonicity(within_gap)
    assert len(msgs) == 1 and "fewer" in msgs[0] and "gap" in msgs[0]
    contradiction = pd.DataFrame([_row(0, 50, 50, 50), _row(10, 60, 40, 40), _row(20, 55, 45, 45)])
    msgs = monotonicity(contradiction)
    assert len(msgs) == 1 and "BUG" in msgs[0]
    assert monotonicity(pd.DataFrame([_row(0, 50, 50, 50), _row(10, 50, 50, 50)])) == []


def test_knee_is_where_returns_start_to_diminish():
    df = pd.DataFrame({"budget": [0, 10, 20, 30, 40], "population_covered": [0, 80, 90, 95, 100]})
    assert analyse(df)["knee"].tolist() == [False, True, False, False, False]
    straight = pd.DataFrame({"budget": [0, 10, 20, 30], "population_covered": [0, 10.1, 20.1, 30]})
    assert not analyse(straight)["knee"].any()
