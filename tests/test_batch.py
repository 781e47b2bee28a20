"""Frontiers on Dask (optisite.batch): same table as serially, failures reported, CLI options.

One LocalCluster of 2 worker processes (processes=True, one thread each) is shared
by the module; the CLI test with ``--workers 2`` starts its own.
"""

import logging
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from optisite.batch import BatchError, run_batch
from optisite.cli import main
from optisite.frontier import budget_task, failures, parse_budgets, run_frontier, write_frontier
from optisite.instance import load_instance
from optisite.solver import SolveOptions

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "instances" / "tiny"
NIEVRE = ROOT / "instances" / "nievre-58"
SAME = ["budget", "status", "population_covered", "population_uncovered", "cost_total", "sites_opened",
        "open_sites", "check_ok", "knee", "inhabitants_per_100k_eur"]


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as c:
        yield c


def same_frontier(serial: pd.DataFrame, dask: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(serial[SAME], dask[SAME], check_exact=False, check_dtype=False,
                                  rtol=1e-9, atol=1e-6)


def test_tiny_frontier_on_dask_equals_serial(client):
    budgets = parse_budgets("0:120000:7")
    serial = run_frontier(TINY, budgets, SolveOptions(model="staffing"))
    seen = []
    dask = run_frontier(TINY, budgets, SolveOptions(model="staffing"), scheduler=client, on_point=seen.append)
    same_frontier(serial, dask)
    assert sorted(r["budget"] for r in seen) == budgets  # progress: one call per completed budget


def test_nievre_coverage_frontier_on_dask_equals_serial(client):
    budgets = parse_budgets("0:100000:4")
    serial = run_frontier(NIEVRE, budgets, SolveOptions(model="coverage"))
    dask = run_frontier(NIEVRE, budgets, SolveOptions(model="coverage"), scheduler=client)
    same_frontier(serial, dask)
    assert dask["check_ok"].all() and dask["population_covered"].iloc[-1] > dask["population_covered"].iloc[0]


def test_a_failed_task_is_reported_and_the_others_kept(client):
    opts = SolveOptions(model="staffing")
    tasks = [budget_task(str(TINY), 30000, opts), budget_task(str(ROOT / "instances" / "no-such-place"), 30000, opts),
             budget_task(load_instance(TINY), -5, opts), budget_task(TINY, 60000, opts, label="scenario b")]
    seen = []
    results = run_batch(tasks, scheduler=client, on_result=lambda r: seen.append(r.index))
    assert [r.index for r in results] == [0, 1, 2, 3] and sorted(seen) == [0, 1, 2, 3]
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[0].value["status"] == "optimal" and results[3].value["budget"] == 60000
    bad = results[1]
    assert "no-such-place" in bad.error and "is not a folder" in bad.error and "\n" not in bad.error
    assert bad.exit_code == 2 and "InputError" in bad.traceback
    assert "below the minimum 0" in results[2].error
    err = BatchError.of(results)
    assert str(err).startswith("2 of 4 solves failed: budget 30,000: ") and "(and 1 more)" in str(err)
    assert err.exit_code == 2 and "\n" not in str(err)


def test_a_failed_budget_is_a_failed_row_of_the_frontier(client, tmp_path):
    """Forcing a site open makes the cheap budgets infeasible: those rows fail, the others stay."""
    df = run_frontier(TINY, [0, 10000, 60000, 90000], SolveOptions(model="staffing", force_open=("CS-D",)),
                      scheduler=client)
    assert list(df["status"] == "failed") == [True, True, False, False]
    assert "above the budget of 10,000" in df.loc[1, "note"]
    assert df.loc[2:, "check_ok"].all() and (df.loc[2:, "open_sites"].str.contains("CS-D")).all()
    assert df.loc[3, "extra_covered"] == pytest.approx(df.loc[3, "population_covered"] - df.loc[2, "population_covered"])
    write_frontier(df, tmp_path / "f", instance=load_instance(TINY), options=SolveOptions())
    assert list(pd.read_csv(tmp_path / "f" / "frontier.csv")["status"]) == ["failed", "failed", "optimal", "optimal"]
    html = (tmp_path / "f" / "frontier.html").read_text(encoding="utf-8")
    assert "frontier-problems" in html and "budget 10,000: solve failed: the forced-open sites" in html
    assert failures(df)[0].startswith("budget 0: the forced-open sites CS-D cost")
    with pytest.raises(BatchError, match=r"^2 of 2 solves failed: budget 0: .*unknown site id 'ZZZ'") as info:
        run_frontier(TINY, [0, 10000], SolveOptions(force_open=("ZZZ",)), scheduler=client)
    assert info.value.exit_code == 2


def test_cli_frontier_with_workers(tmp_path):
    out = tmp_path / "front"
    r = CliRunner().invoke(main, ["frontier", str(TINY), "--budgets", "0,30000,60000,90000", "--workers", "2",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "check ok" in r.output and "solving budgets" in r.output
    serial = run_frontier(TINY, [0, 30000, 60000, 90000], SolveOptions(model="staffing"))
    same_frontier(serial.fillna({"open_sites": ""}), pd.read_csv(out / "frontier.csv").fillna({"open_sites": ""}))


def test_cli_frontier_on_a_running_scheduler(client, tmp_path):
    out = tmp_path / "front"
    args = ["frontier", str(TINY), "--budgets", "0,60000,90000", "--model", "coverage"]
    r = CliRunner().invoke(main, args + ["--scheduler", client.scheduler.address, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert list(pd.read_csv(out / "frontier.csv")["status"]) == ["optimal"] * 3
    r = CliRunner().invoke(main, args + ["--workers", "2", "--scheduler", "tcp://127.0.0.1:1", "--out",
                                         str(tmp_path / "x")])
    assert r.exit_code == 2 and "not both" in r.output and len(r.output.strip().splitlines()) == 1
