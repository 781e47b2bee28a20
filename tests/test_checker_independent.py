"""The checker stays independent (issue 13): its own 2SFCA agrees with ``apl.apl_after``
(this test may import both; the checker may not), it never imports the models nor the
function that produced the APL, and it never branches on a model's name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optisite import apl, checker
from optisite.instance import instance_from_frames, load_instance

from conftest import INSTANCES
from test_apl import three_zones

CHECKER = Path(checker.__file__)


def _supply_zone(inst):
    return pd.concat([inst.practices["zone_id"], inst.sites["zone_id"]])


def test_hand_computed_three_zones():
    """A 1000 inh., B 2000, C 800; A-B 10 min (weight 2/3), B-C 15 (1/3), A-C 20 (0): the DREES
    2023 steps. P-A (in A) gives one day a week to CS-C (in C): P-A 9936, CS-C 1104
    consultations/year. D_A = 1000 + 2/3 x 2000; D_C = 800 + 1/3 x 2000;
    APL_A = 9936 / D_A; APL_B = 2/3 x 9936 / D_A + 1/3 x 1104 / D_C; APL_C = 1104 / D_C."""
    inst = three_zones()
    supply = pd.Series({"P-A": 9936.0, "CS-C": 1104.0})
    got = checker._apl_2sfca(inst, supply, _supply_zone(inst))
    d_a, d_c = 1000 + 2 / 3 * 2000, 800 + 1 / 3 * 2000
    assert got["A"] == pytest.approx(9936 / d_a, rel=1e-12)
    assert got["B"] == pytest.approx(2 / 3 * 9936 / d_a + 1 / 3 * 1104 / d_c, rel=1e-12)
    assert got["C"] == pytest.approx(1104 / d_c, rel=1e-12)
    # Before: P-A alone at full activity (11,040); C is 20 min from A, so 0.
    before = checker._apl_2sfca(inst, pd.Series({"P-A": 11040.0}), _supply_zone(inst))
    assert before.to_dict() == pytest.approx({"A": 11040 / d_a, "B": 2 / 3 * 11040 / d_a, "C": 0.0}, rel=1e-12)
    # drees2012 by the instance's parameter: A-B 10 min -> 0.1; APL_A = 11040 / 1200.
    old = inst.with_parameters({"apl_decay": "drees2012"})
    got = checker._apl_2sfca(old, pd.Series({"P-A": 11040.0}), _supply_zone(old))
    assert got.to_dict() == pytest.approx({"A": 9.2, "B": 0.92, "C": 0.0}, rel=1e-12)


def _random_plan(inst, seed):
    """Random supplies for every practice and about half the sites (the rest closed)."""
    rng = np.random.default_rng(seed)
    practices = apl.practice_capacity(inst) * rng.uniform(0.5, 1.0, len(inst.practices))
    open_ = inst.sites.index[rng.random(len(inst.sites)) < 0.5]
    sites = pd.Series(rng.uniform(0, 20000, len(open_)), index=open_)
    return sites, practices


def _agree(inst, seed):
    sites, practices = _random_plan(inst, seed)
    want = apl.apl_after(inst, sites, practices)
    got = checker._apl_2sfca(inst, pd.concat([practices, sites]), _supply_zone(inst))
    got = got.reindex(want.index)
    assert (want > 0).sum() > 0
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9, atol=1e-12)
    before = checker._apl_2sfca(inst, apl.practice_capacity(inst), _supply_zone(inst))
    np.testing.assert_allclose(before.reindex(want.index).to_numpy(), apl.apl_before(inst).to_numpy(),
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_apl_after_on_tiny(seed):
    _agree(load_instance(INSTANCES / "tiny"), seed)  # a travel table


@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_apl_after_on_nievre(seed):
    inst = load_instance(INSTANCES / "nievre-58")  # times from coordinates
    _agree(inst, seed)
    _agree(inst.with_parameters({"apl_decay": "drees2012"}), seed + 10)


def test_agrees_with_apl_after_with_age_bands_and_a_symmetric_table():
    zones = pd.DataFrame([
        {"zone_id": "A", "population": 1000, "pop_0_64": 700, "pop_65_plus": 300, "lon": 3.0, "lat": 47.0},
        {"zone_id": "B", "population": 2000, "pop_0_64": 1800, "pop_65_plus": 200, "lon": 3.1, "lat": 47.0},
        {"zone_id": "C", "population": 800, "pop_0_64": 400, "pop_65_plus": 400, "lon": 3.2, "lat": 47.0},
        {"zone_id": "D", "population": 0, "pop_0_64": 0, "pop_65_plus": 0, "lon": 3.3, "lat": 47.0},
    ])
    sites = pd.DataFrame([{"site_id": "CS-C", "kind": "cabinet_secondaire", "zone_id": "C"},
                          {"site_id": "CDS-D", "kind": "centre_de_sante", "zone_id": "D"}])
    practices = pd.DataFrame([{"practice_id": "P-A", "zone_id": "A", "physicians": 2},
                              {"practice_id": "P-B", "zone_id": "B", "physicians": 1}])
    # One way only, read both ways; B-A given both ways with its own time each way.
    travel = pd.DataFrame([("A", "B", 10), ("B", "A", 12), ("B", "C", 15), ("A", "C", 19.5), ("C", "D", 5)],
                          columns=["from_id", "to_id", "minutes"])
    inst = instance_from_frames(zones, sites, practices, travel, parameters={"travel_symmetric": True})
    assert "age-standardised" in apl.demand_population(inst)[1]
    for seed in range(3):
        _agree(inst, seed)


def test_the_checker_imports_neither_the_models_nor_the_apl_computation():
    tree = ast.parse(CHECKER.read_text(encoding="utf-8"))
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported += [(node.module or "", a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            imported += [(a.name, "") for a in node.names]
    assert not [m for m, _ in imported if "models" in m or "pyomo" in m or m.endswith("reach")], imported
    from_apl = {name for m, name in imported if m == "apl"}
    assert from_apl <= {"demand_population"}, from_apl  # the instance's P_i, not an APL
    assert not [n for m, n in imported if n in ("apl_after", "apl_before", "apl_inputs", "apl_summary",
                                                 "derive", "headline", "capacities", "baseline_flows")]


def test_no_model_name_is_compared_outside_the_legacy_fallback():
    text = CHECKER.read_text(encoding="utf-8")
    assert not re.search(r"""==\s*['"](coverage|staffing|apl|lscp)['"]""", text)
    assert not re.search(r"""!=\s*['"](coverage|staffing|apl|lscp)['"]""", text)
    assert not re.search(r"""in\s*\(\s*['"](coverage|staffing|apl|lscp)['"]""", text)
    # The model's name is read in one place: the fallback for folders without 'result'.
    tree = ast.parse(text)
    readers = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
               and any(isinstance(n, ast.Constant) and n.value == "model" for n in ast.walk(node))}
    assert readers <= {"_legacy_result", "_summary_shape", "_result", "check_objective_and_status"}, readers


def test_well_formed_types_the_tables_and_refuses_a_malformed_folder(tmp_path):
    """The shape validation the checker runs first, usable by any reader of a folder."""
    import json
    import shutil

    from optisite.errors import InputError
    from optisite.solution import read_solution
    from optisite.pipeline import SolveOptions, solve

    inst = load_instance(INSTANCES / "tiny")
    out = solve(inst, SolveOptions(model="staffing", time_limit=10, threads=1)).write(tmp_path / "plan")
    sol = checker.well_formed(read_solution(out))
    assert sol.zones["population"].dtype == float and sol.zones["zone_id"].map(type).eq(str).all()
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    text = (bad / "schedule.csv").read_text().splitlines()
    col = text[0].split(",").index("days_per_week")
    cells = text[1].split(",")
    cells[col] = "abc"  # the first row's days, whatever the plan gives there
    (bad / "schedule.csv").write_text("\n".join([text[0], ",".join(cells)] + text[2:]) + "\n")
    with pytest.raises(InputError, match=r"schedule.csv, row 2, column 'days_per_week': 'abc' is not a number"):
        checker.well_formed(read_solution(bad))
    shutil.copy(out / "schedule.csv", bad / "schedule.csv")
    S = json.loads((bad / "solution.json").read_text())
    S["result"] = {"access": "flows"}
    (bad / "solution.json").write_text(json.dumps(S))
    with pytest.raises(InputError, match="'result' lacks 'objective'"):
        checker.well_formed(read_solution(bad))
