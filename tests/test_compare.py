"""optisite compare: indicators equal each solution.json, differing sites listed, names escaped."""

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from optisite.cli import main
from optisite.compare import compare
from optisite.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "instances" / "tiny"


def _solve(instance, out, *extra):
    r = CliRunner().invoke(main, ["solve", str(instance), "--out", str(out), "--quiet", *extra])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    base = tmp_path_factory.mktemp("cmp")
    return [_solve(TINY, base / "low", "--budget", "30000"),
            _solve(TINY, base / "high", "--budget", "90000"),
            _solve(TINY, base / "cov", "--model", "coverage", "--budget", "30000")]


def test_indicators_equal_solution_json(scenarios, tmp_path):
    out = tmp_path / "c"
    r = CliRunner().invoke(main, ["compare", *map(str, scenarios), "--out", str(out)])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out / "compare.csv", dtype={"scenario": str})
    assert list(table["scenario"]) == ["low", "high", "cov"]
    for folder, row in zip(scenarios, table.to_dict("records")):
        S = json.loads((folder / "solution.json").read_text(encoding="utf-8"))
        for key in ("population_uncovered", "population_covered", "cost_total", "budget"):
            assert row[key] == pytest.approx(S[key], rel=1e-9)
        assert row["sites_opened"] == len(S["open_sites"])
        for funder, value in S["cost_by_funder"].items():
            assert row[f"cost_{funder}"] == pytest.approx(value)
    html = (out / "compare.html").read_text(encoding="utf-8")
    assert 'id="indicators"' in html and "<script" not in html


def test_sites_in_one_and_not_the_other(scenarios):
    result = compare(scenarios)
    sites = result["sites"].set_index("site_id")
    opened = {}
    for folder in scenarios:
        opened[folder.name] = set(json.loads((folder / "solution.json").read_text())["open_sites"])
    assert set(sites.index) == set().union(*opened.values())
    for sid, row in sites.iterrows():
        for label, ids in opened.items():
            assert pd.notna(row[label]) == (sid in ids)
        assert row["in_all"] == all(sid in ids for ids in opened.values())
    assert not sites["in_all"].all()  # the low and high budgets open different sites


def test_compare_needs_two_folders_and_refuses_to_overwrite(scenarios, tmp_path):
    with pytest.raises(InputError):
        compare(scenarios[:1])
    out = tmp_path / "c"
    args = ["compare", str(scenarios[0]), str(scenarios[1]), "--out", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and "--force" in r.output


def test_site_names_are_escaped(tiny_copy, tmp_path):
    sites = tiny_copy / "sites.csv"
    text = sites.read_text(encoding="utf-8")
    lines = text.strip().splitlines()
    named = [lines[0] + ",name"] + [line + ",<b>x</b>" for line in lines[1:]]
    sites.write_text("\n".join(named) + "\n", encoding="utf-8")
    a = _solve(tiny_copy, tmp_path / "a", "--budget", "30000")
    b = _solve(tiny_copy, tmp_path / "b", "--budget", "90000")
    from optisite.compare import compare_html

    html = compare_html(compare([a, b]))
    assert "<b>x</b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html


def test_two_budgets_of_one_instance_are_the_same_data_and_the_budget_is_named(scenarios, tmp_path):
    from optisite.compare import compare_html

    result = compare(scenarios[:2])
    assert set(result["parameters"]["parameter"]) == {"budget"}
    row = result["parameters"].iloc[0]
    assert (row["low"], row["high"]) == (30000.0, 90000.0)
    html = compare_html(result)
    assert 'id="different-instances"' not in html and 'id="parameters"' in html


def test_other_data_is_flagged(scenarios, tmp_path):
    import shutil

    from optisite.compare import compare_html

    other = tmp_path / "inst"
    shutil.copytree(TINY, other)
    zones = (other / "zones.csv").read_text(encoding="utf-8").splitlines()
    header, first = zones[0].split(","), zones[1].split(",")
    col = header.index("population")
    first[col] = str(int(float(first[col])) + 1)
    zones[1] = ",".join(first)
    (other / "zones.csv").write_text("\n".join(zones) + "\n", encoding="utf-8")
    moved = _solve(other, tmp_path / "moved", "--budget", "30000")
    html = compare_html(compare([scenarios[0], moved]))
    assert 'id="different-instances"' in html
