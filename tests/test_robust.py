"""Robust single-year plans (issue 15, item 4): one staffing plan against several retirement
scenarios, against enumeration (worst and expected case), never worse in its worst scenario
than a single-scenario plan, its checker, the command line and `optisite compare --scenarios`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from optisite import instance_from_frames
from optisite.checker import check_folder
from optisite.cli import main
from optisite.errors import CheckError, InputError
from optisite.pipeline import SolveOptions, solve
from optisite.robust import physicians, spec

from test_models import flow_lp, minutes_matrix, random_instance, staffing_plans

ROOT = Path(__file__).resolve().parents[1]
NIEVRE = ROOT / "instances" / "nievre-58"
SCENARIOS = "over65_now,yearly_rate"  # not nested: over 65 hit the first practice, a 20 % rate both


def small_robust_instance(seed: int, budget: float, **params):
    """7 zones, 2 cabinets and a centre, 2 practices; half of the first practice's GPs are over
    65, none of the second's; in year 1 'yearly_rate' takes 20 % of both."""
    zones, sites, practices = random_instance(seed, n_zones=7, n_sites=3, n_practices=2,
                                              kinds=("cabinet_secondaire", "cabinet_secondaire", "centre_de_sante"))
    practices["physicians"] = [4, 3]
    practices["share_65_plus"] = [0.5, 0.0]
    base = {"budget": budget, "coverage_minutes": 12, "max_travel_minutes": 40, "cabinet_max_days": 3,
            "centre_min_fte": 1, "centre_max_fte": 2, "centre_fixed_cost": 50000, "retirement_rate": 0.2,
            "robust_scenarios": SCENARIOS, "robust_year": 1, **params}
    return instance_from_frames(zones, sites, practices, parameters=base)


def scenario_instances(inst):
    from optisite.retirement import year_instance

    s = spec(inst.parameters)
    phys = physicians(inst, s)
    floor = year_instance(inst, phys.min(axis=1))  # the days a practice may give in every scenario
    return s, {k: year_instance(inst, phys[k]) for k in s.names}, floor


def brute_force_robust(inst):
    """Best (worst or expected weighted uncovered, cost) over every integer plan whose days hold in
    every scenario, each plan's flows re-solved per scenario (no Pyomo)."""
    s, insts, floor = scenario_instances(inst)
    T = minutes_matrix(inst)
    best = (np.inf, np.inf)
    for days, _out, _cab, fte, cost in staffing_plans(floor):
        values = [flow_lp(insts[k], T, days, fte) for k in s.names]
        value = max(values) if s.mode == "worst" else float(np.dot(s.weights, values))
        if value < best[0] - 1e-6 or (abs(value - best[0]) <= 1e-6 and cost < best[1] - 1e-6):
            best = (value, cost)
    return best


@pytest.mark.parametrize("seed,budget,extra", [
    (0, 60000, {}),
    (1, 90000, {}),
    (3, 150000, {}),
    (0, 90000, {"robust_mode": "expected"}),
    (2, 150000, {"robust_mode": "expected", "robust_scenarios": "over65_now:3,yearly_rate:1,none:1"}),
])
def test_robust_optimum_equals_enumeration(seed, budget, extra):
    inst = small_robust_instance(seed, budget, **extra)
    sol = solve(inst, SolveOptions(time_limit=60, gap=0, threads=1))
    value, cost = brute_force_robust(inst)
    assert sol.status == "optimal"
    assert sol.summary["result"]["scenarios"] is True
    assert sol.objective == pytest.approx(value, rel=1e-6, abs=1e-4)
    assert sol.summary["cost_total"] == pytest.approx(cost, rel=1e-6, abs=1e-3)
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]
    r = sol.summary["robust"]
    assert r[r["mode"]] == pytest.approx(sol.objective, rel=1e-6, abs=1e-4)
    assert r[r["mode"]] <= r[f"{r['mode']}_before"] + 1e-6  # never worse than doing nothing


def test_the_scenarios_differ_on_the_small_instance():
    """The enumeration above means something only if the scenarios leave different supplies."""
    s, insts, _ = scenario_instances(small_robust_instance(0, 60000))
    a, b = (insts[k].practices["physicians"] for k in s.names)
    assert (a > b).any() and (a < b).any()


@pytest.mark.parametrize("seed,budget,mode", [(0, 60000, "worst"), (1, 90000, "worst"), (3, 150000, "expected")])
def test_robust_plan_is_never_worse_than_a_single_scenario_plan(seed, budget, mode):
    """Each single-scenario plan (the plan best for that scenario alone, same days rule),
    evaluated under every scenario, is never better in the robust objective than the robust plan."""
    from optisite.compare import evaluate_plan

    inst = small_robust_instance(seed, budget, robust_mode=mode)
    robust = solve(inst, SolveOptions(time_limit=60, gap=0, threads=1))
    s = spec(inst.parameters)
    robust_values = evaluate_plan(inst, robust, list(s.names))
    # The evaluation of a plan re-solves each scenario's flows: it reproduces the plan's own figures.
    for b in robust.summary["scenarios"]:
        row = robust_values[robust_values["scenario"] == b["scenario"]].iloc[0]
        assert row["uncovered"] == pytest.approx(b["uncovered"], rel=1e-6, abs=1e-4)
    robust_value = robust.objective
    for k in s.names:
        weights = ",".join(f"{n}:{1 if n == k else 0}" for n in s.names)
        single = solve(inst.with_parameters({"robust_scenarios": weights, "robust_mode": "expected"}),
                       SolveOptions(time_limit=60, gap=0, threads=1))
        got = evaluate_plan(inst, single, list(s.names)).set_index("scenario")["uncovered"]
        value = got.max() if mode == "worst" else float(np.dot(s.weights, got[list(s.names)]))
        assert robust_value <= value + 1e-6 * max(1.0, value), (k, robust_value, value)
        # and the single plan is the best for its own scenario
        assert got[k] <= robust_values.set_index("scenario").loc[k, "uncovered"] + 1e-6


def test_plain_staffing_plan_evaluated_under_the_scenarios():
    """A plan made for today's supply, evaluated under each scenario: days a practice promised
    beyond what its remaining GPs can give are lost; the robust plan's worst case is no worse."""
    from optisite.compare import evaluate_plan

    inst = small_robust_instance(1, 90000)
    plain = solve(inst.with_parameters({"robust_scenarios": "off"}), SolveOptions(time_limit=60, gap=0, threads=1))
    robust = solve(inst, SolveOptions(time_limit=60, gap=0, threads=1))
    got = evaluate_plan(inst, plain, SCENARIOS.split(","))
    assert set(got["scenario"]) == set(SCENARIOS.split(","))
    assert (got["uncovered"] >= got["uncovered_before"] * 0 - 1e-9).all()
    assert robust.objective <= got["uncovered"].max() + 1e-6


# ---------------------------------------------------------------------------------
# the checker
# ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_plan(tmp_path_factory):
    inst = small_robust_instance(3, 150000)
    sol = solve(inst, SolveOptions(time_limit=60, gap=0, threads=1))
    assert sol.summary["check"]["ok"], sol.summary["check"]["violations"]
    return inst, sol.write(tmp_path_factory.mktemp("robust") / "plan")


def _tampered(folder: Path, tmp_path: Path, edit) -> Path:
    out = tmp_path / "tampered"
    shutil.copytree(folder, out)
    edit(out)
    return out


@pytest.mark.parametrize("what,message", [
    ("a scenario's uncovered figure", "uncovered"),
    ("the worst value", "robust.worst"),
    ("a scenario's covered_after", "covered_after"),
    ("the objective", "objective"),
    ("a scenario dropped from zones.csv", "zones.csv has no row"),
])
def test_checker_catches_a_tampered_scenario_figure(small_plan, tmp_path, what, message):
    inst, folder = small_plan
    assert check_folder(folder, inst).ok

    def edit(out):
        S = json.loads((out / "solution.json").read_text())
        zones = pd.read_csv(out / "zones.csv", dtype={"zone_id": str, "main_source_after": str})
        if what == "a scenario's uncovered figure":
            S["scenarios"][1]["uncovered"] *= 0.8
        elif what == "the worst value":
            S["robust"]["worst"] *= 0.9
        elif what == "a scenario's covered_after":
            k = S["scenarios"][1]["scenario"]
            row = zones.index[(zones["scenario"] == k) & (zones["covered_after"] < 1)][0]
            zones.loc[row, "covered_after"] = 1.0
            zones.loc[row, "uncovered_after"] = 0.0
        elif what == "the objective":
            S["objective"] *= 0.9
        else:
            k = S["scenarios"][0]["scenario"]
            zones = zones[~((zones["scenario"] == k) & (zones.index == zones.index[zones["scenario"] == k][0]))]
        zones.to_csv(out / "zones.csv", index=False)
        (out / "solution.json").write_text(json.dumps(S))

    with pytest.raises(CheckError) as caught:
        check_folder(_tampered(folder, tmp_path, edit), inst)
    assert any(message in v for v in caught.value.violations), caught.value.violations


# ---------------------------------------------------------------------------------
# parameters, the command line and compare
# ---------------------------------------------------------------------------------

def test_bad_scenario_name_is_one_line_and_exit_2(tmp_path):
    r = CliRunner().invoke(main, ["solve", str(ROOT / "instances" / "tiny"), "--robust", "over65_now,over70_now",
                                  "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "over70_now" in lines[0] and "robust_scenarios" in lines[0]


@pytest.mark.parametrize("text,message", [("over65_now,over65_now", "twice"), ("over65_now:-1", "outside"),
                                          ("over65_now:0", "sum to 0"), ("", "empty")])
def test_robust_scenarios_parameter_is_validated(text, message):
    from optisite.parameters import Parameters

    with pytest.raises(InputError, match=message):
        Parameters().with_overrides({"robust_scenarios": text})


def test_scenario_file_carries_the_robust_fields(tmp_path):
    from optisite.scenario import parse_scenario

    sc = parse_scenario('[parameters]\nrobust_scenarios = "over65_now, over60_within_5:2"\nrobust_mode = "expected"\n'
                        "robust_year = 3\n")
    p = __import__("optisite.parameters", fromlist=["Parameters"]).Parameters().with_overrides(sc.parameters)
    s = spec(p)
    assert s.names == ("over65_now", "over60_within_5") and s.weights == pytest.approx((1 / 3, 2 / 3))
    assert s.mode == "expected" and s.year == 3
    with pytest.raises(InputError, match="robust_scenarios"):
        parse_scenario('[parameters]\nrobust_scenarios = "sometimes"\n')


def test_a_model_without_robust_form_refuses_scenarios(tmp_path):
    r = CliRunner().invoke(main, ["solve", str(ROOT / "instances" / "tiny"), "--model", "coverage", "--robust",
                                  "over65_now", "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 2 and "no robust form" in r.output


@pytest.fixture(scope="module")
def nievre_robust(tmp_path_factory):
    base = tmp_path_factory.mktemp("nievre")
    robust, plain = base / "robust", base / "plain"
    for out, extra in ((robust, ["--robust", "over65_now,over60_within_5"]), (plain, [])):
        r = CliRunner().invoke(main, ["solve", str(NIEVRE), "--out", str(out), "--time-limit", "20", "--quiet",
                                      "--threads", "1", *extra])
        assert r.exit_code == 0, r.output
    return robust, plain


def test_nievre_robust_round_trip_and_check(nievre_robust):
    robust, _ = nievre_robust
    r = CliRunner().invoke(main, ["check", str(robust), str(NIEVRE)])
    assert r.exit_code == 0, r.output
    S = json.loads((robust / "solution.json").read_text())
    assert S["model"] == "staffing" and S["result"]["scenarios"] is True
    assert [b["scenario"] for b in S["scenarios"]] == ["over65_now", "over60_within_5"]
    assert S["robust"]["year"] == 5 and S["robust"]["mode"] == "worst"
    for name in ("practices", "assignment", "zones"):
        assert pd.read_csv(robust / f"{name}.csv").columns[0] == "scenario"
    for name in ("sites", "schedule"):
        assert "scenario" not in pd.read_csv(robust / f"{name}.csv").columns
    # The scenarios differ on Nièvre (DREES ages), and doing nothing leaves more people without access.
    before = [b["uncovered_before"] for b in S["scenarios"]]
    assert before[0] != pytest.approx(before[1])
    assert S["robust"]["worst"] <= S["robust"]["worst_before"] + 1e-6
    assert "under each retirement scenario" in (robust / "report.html").read_text(encoding="utf-8")


def test_compare_shows_each_plan_under_each_scenario(nievre_robust, tmp_path):
    robust, plain = nievre_robust
    r = CliRunner().invoke(main, ["compare", str(robust), str(plain), "--out", str(tmp_path / "cmp"),
                                  "--scenarios", "over65_now,over60_within_5", "--instance", str(NIEVRE)])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "cmp" / "compare_scenarios.csv")
    assert set(table["plan"]) == {"robust", "plain"}
    assert set(table["scenario"]) == {"over65_now", "over60_within_5"}
    S = json.loads((robust / "solution.json").read_text())
    mine = table[table["plan"] == "robust"].set_index("scenario")["uncovered"]
    for b in S["scenarios"]:  # re-evaluating the robust plan gives its own figures
        assert mine[b["scenario"]] == pytest.approx(b["uncovered"], rel=1e-6, abs=1e-3)
    assert "over65_now" in r.output and "worst" in r.output
    r = CliRunner().invoke(main, ["compare", str(robust), str(plain), "--out", str(tmp_path / "c2"),
                                  "--scenarios", "over65_now"])
    assert r.exit_code == 2 and "--instance" in r.output


@pytest.mark.parametrize("mode", ["worst", "expected"])
def test_documented_robust_components_exist(mode):
    """The robust form's table in models/staffing.md names components the build creates."""
    import re

    import pyomo.environ as pyo

    from optisite.pipeline import build

    lines = (ROOT / "models" / "staffing.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Pyomo (robust form) |"))
    names = set()
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        names |= set(re.findall(r"`([A-Za-z_]+)`", line.split("|")[1]))
    m = build(small_robust_instance(0, 60000, robust_mode=mode), SolveOptions(time_limit=30)).pyomo
    built = {c.local_name for c in m.component_objects((pyo.Var, pyo.Constraint, pyo.Block), descend_into=False)}
    only = {"worst": {"mean", "mean_row"}, "expected": {"worst", "epigraph"}}[mode]
    assert names - only <= built, sorted(names - only - built)
    assert not (only & built)
    block = {c.local_name for c in m.scenario[m.K.first()].component_objects((pyo.Var, pyo.Constraint))}
    assert {"x", "u", "cap_cabinet", "cap_centre", "cap_practice", "demand"} <= block


@pytest.mark.parametrize("seed,budget", [(0, 60000), (3, 150000)])
def test_robust_plan_for_today_alone_is_the_staffing_plan(seed, budget):
    """With the one scenario 'none' (nobody stops), the robust form is the staffing model."""
    inst = small_robust_instance(seed, budget, robust_scenarios="none")
    robust = solve(inst, SolveOptions(time_limit=60, gap=0, threads=1))
    plain = solve(inst.with_parameters({"robust_scenarios": "off"}), SolveOptions(time_limit=60, gap=0, threads=1))
    assert robust.summary["result"]["scenarios"] and not plain.summary["result"]["scenarios"]
    assert robust.objective == pytest.approx(plain.objective, rel=1e-6, abs=1e-4)
    assert robust.summary["cost_total"] == pytest.approx(plain.summary["cost_total"], rel=1e-9, abs=1e-3)
