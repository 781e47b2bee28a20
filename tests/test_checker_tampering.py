"""Tampering with a written solution folder: ``optisite check`` must notice every change.

Tiny is solved once per model (short limits, one thread) and written; each case copies
a folder, changes one cell (or one key of ``solution.json``), and runs ``optisite check``
in-process. A changed number must give exit 4, a malformed folder exit 2; both with one
line and no traceback. ``STATS`` counts tried, caught and tracebacks; ``test_zz_report``
prints them (issue 17 item 4).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from click.testing import CliRunner

from optisite.cli import main
from optisite.instance import load_instance
from optisite.pipeline import SolveOptions, solve

from conftest import INSTANCES

TINY = INSTANCES / "tiny"
STATS: Counter = Counter()


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """One written folder per model, plus variants that declare their ``result``."""
    base = tmp_path_factory.mktemp("plans")
    inst = load_instance(TINY)
    out = {}
    for model in ("coverage", "staffing", "apl"):
        sol = solve(inst, SolveOptions(model=model, time_limit=10, threads=1))
        out[model] = sol.write(base / model)
    declared = {
        "coverage": {"access": "reach", "objective": "weighted_uncovered", "capacities": False,
                     "apl": False, "full_coverage": False, "budgeted": True},
        "staffing": {"access": "flows", "objective": "weighted_uncovered", "capacities": True,
                     "apl": True, "full_coverage": False, "budgeted": True},
        "apl": {"access": "flows", "objective": "population_under_apl", "capacities": True,
                "apl": True, "full_coverage": False, "budgeted": True},
    }
    for model, result in declared.items():
        dst = base / f"{model}-declared"
        shutil.copytree(out[model], dst)
        _edit_json(dst, lambda S, r=result: S.update(result=r))
        out[f"{model}-declared"] = dst
    # A set-covering plan (objective: cost; every reachable zone covered): the coverage plan
    # on tiny covers everyone with one cabinet, so relabelled it is a valid lscp folder.
    dst = base / "lscp"
    shutil.copytree(out["coverage"], dst)

    def as_lscp(S):
        S.update(model="lscp", objective=S["cost_total"], bound=S["cost_total"], gap=0.0,
                 result={"access": "reach", "objective": "cost_total", "capacities": False,
                         "apl": False, "full_coverage": True, "budgeted": False})
        S["solver"]["stages"][0].update(objective=S["cost_total"], bound=S["cost_total"], gap=0.0)
        S["options"]["model"] = "lscp"
    _edit_json(dst, as_lscp)
    out["lscp"] = dst
    # An honest time-limited staffing plan: stage 1 stopped with a gap, no later stage.
    dst = base / "staffing-timelimit"
    shutil.copytree(out["staffing"], dst)

    def stopped(S):
        b = S["objective"] * 0.9
        S.update(status="time_limit", bound=b, gap=(S["objective"] - b) / S["objective"])
        first = dict(S["solver"]["stages"][0], status="time_limit", bound=b, gap=S["gap"])
        S["solver"]["stages"] = [first]
    _edit_json(dst, stopped)
    out["staffing-timelimit"] = dst
    return out


@pytest.fixture(autouse=True, scope="module")
def _tiny_loaded_once():
    """`optisite check` loads the instance on every call (half a second): load tiny once."""
    import optisite.instance as module

    real, cache = module.load_instance, {}

    def cached(folder, overrides=None):
        key = (str(Path(folder).resolve()), repr(overrides))
        if key not in cache:
            cache[key] = real(folder, overrides)
        return cache[key]
    patch = pytest.MonkeyPatch()
    patch.setattr(module, "load_instance", cached)
    yield
    patch.undo()


def _edit_json(folder: Path, change: Callable[[dict], object]) -> None:
    path = folder / "solution.json"
    S = json.loads(path.read_text(encoding="utf-8"))
    replaced = change(S)
    path.write_text(json.dumps(S if replaced is None else replaced, indent=2), encoding="utf-8")


def _edit_csv(folder: Path, name: str, change: Callable[[pd.DataFrame], pd.DataFrame | None]) -> None:
    path = folder / name
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    new = change(df)
    (df if new is None else new).to_csv(path, index=False)


def run_check(folder: Path):
    result = CliRunner().invoke(main, ["check", str(folder), str(TINY)])
    return result


@pytest.mark.parametrize("name", ["coverage", "staffing", "apl", "coverage-declared", "staffing-declared",
                                  "apl-declared", "lscp", "staffing-timelimit"])
def test_untouched_folders_pass(folders, name):
    result = run_check(folders[name])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: "), result.output


# ---------------------------------------------------------------------------------
# the tamperings
# ---------------------------------------------------------------------------------

@dataclass
class Tamper:
    folder: str
    file: str
    what: str
    change: Callable
    code: int = 4


def cell(row, col, value):
    """Set one cell (row by position) of a CSV frame."""
    def f(df):
        df.loc[df.index[row], col] = value
    return f


def num(row, col, fn):
    def f(df):
        df.loc[df.index[row], col] = repr(fn(float(df.loc[df.index[row], col] or "nan")))
    return f


def where(col, value, target, new):
    """Set ``target`` to ``new`` on the first row whose ``col`` is ``value``."""
    def f(df):
        i = df.index[df[col] == value][0]
        df.loc[i, target] = new
    return f


def key(path, value):
    """Set a (possibly nested, dot-separated; "under.2.5" is the threshold 2.5) key of solution.json."""
    def f(S):
        parts = path.replace(".2.5", ".2\u00b75").split(".")
        parts = [q.replace("\u00b7", ".") for q in parts]
        d = S
        for p in parts[:-1]:
            d = d[int(p)] if isinstance(d, list) else d[p]
        d[parts[-1]] = value(d[parts[-1]]) if callable(value) else value
    return f


def both(*changes):
    def f(S):
        for change in changes:
            change(S)
    return f


def drop_key(path):
    def f(S):
        parts = path.split(".")
        d = S
        for p in parts[:-1]:
            d = d[p]
        del d[parts[-1]]
    return f


def raw(text: str):
    return text


T = Tamper
CASES: list[Tamper] = []
for m in ("staffing", "coverage", "staffing-declared", "coverage-declared"):
    CASES += [
        # zones.csv: every number the report reads
        T(m, "zones.csv", "population +1", num(0, "population", lambda v: v + 1)),
        T(m, "zones.csv", "demand x2", num(0, "demand", lambda v: v * 2)),
        T(m, "zones.csv", "weight 2", cell(0, "weight", "2")),
        T(m, "zones.csv", "name", cell(0, "name", "Ailleurs")),
        T(m, "zones.csv", "uncovered_before of a covered zone", num(0, "uncovered_before", lambda v: v + 100)),
        T(m, "zones.csv", "uncovered_before of an uncovered zone 0", where("zone_id", "2A005", "uncovered_before", "0")),
        T(m, "zones.csv", "covered_before", where("zone_id", "2A005", "covered_before", "1")),
        T(m, "zones.csv", "covered_after", num(0, "covered_after", lambda v: v * 0.5)),
        T(m, "zones.csv", "minutes_after", num(1, "minutes_after", lambda v: v + 5)),
        T(m, "zones.csv", "main_source_after", where("zone_id", "01002", "main_source_after", "P-A" if m.startswith("staffing") else "P-C")),
        T(m, "zones.csv", "main_source_after unknown", cell(0, "main_source_after", "NOPE")),
        T(m, "zones.csv", "row dropped", lambda df: df.iloc[1:]),
        T(m, "zones.csv", "population abc", cell(0, "population", "abc"), 2),
        T(m, "zones.csv", "covered_after nan", cell(0, "covered_after", "nan"), 2),
        # practices.csv
        T(m, "practices.csv", "physicians +1", num(0, "physicians", lambda v: v + 1)),
        T(m, "practices.csv", "days_given +1", num(0, "days_given", lambda v: v + 1)),
        T(m, "practices.csv", "zone_id", cell(0, "zone_id", "01002")),
        T(m, "practices.csv", "row dropped", lambda df: df.iloc[1:]),
        T(m, "practices.csv", "days_given abc", cell(0, "days_given", "abc"), 2),
        # sites.csv
        T(m, "sites.csv", "lon", num(0, "lon", lambda v: v + 0.1)),
        T(m, "sites.csv", "lat", num(0, "lat", lambda v: v - 0.1)),
        T(m, "sites.csv", "name", cell(0, "name", "Ailleurs")),
        T(m, "sites.csv", "fte 1", cell(0, "fte", "1")),
        T(m, "sites.csv", "cost_fixed", num(0, "cost_fixed", lambda v: v - 1)),
        T(m, "sites.csv", "cost_staff", num(0, "cost_staff", lambda v: v + 1)),
        T(m, "sites.csv", "cost_total", num(0, "cost_total", lambda v: v - 1)),
        T(m, "sites.csv", "kind", cell(0, "kind", "centre_de_sante")),
        T(m, "sites.csv", "zone_id", cell(0, "zone_id", "01001")),
        T(m, "sites.csv", "row dropped", lambda df: df.iloc[1:]),
        T(m, "sites.csv", "site_id unknown", cell(0, "site_id", "CS-Z")),
        T(m, "sites.csv", "days_per_week abc", cell(0, "days_per_week", "abc"), 2),
        # solution.json
        T(m, "solution.json", "cost_total", key("cost_total", lambda v: v + 1)),
        T(m, "solution.json", "cost_by_item", key("cost_by_item.fixed_cabinet", lambda v: v + 1)),
        T(m, "solution.json", "cost_by_funder", key("cost_by_funder.collectivites", lambda v: v - 1)),
        T(m, "solution.json", "cost_by_funder renamed", lambda S: S.update(
            cost_by_funder={"etat": sum(S["cost_by_funder"].values())})),
        T(m, "solution.json", "population_total", key("population_total", lambda v: v + 10)),
        T(m, "solution.json", "population_covered", key("population_covered", lambda v: v + 10)),
        T(m, "solution.json", "population_uncovered", key("population_uncovered", lambda v: v - 10)),
        T(m, "solution.json", "population_covered_before", key("population_covered_before", lambda v: v + 10)),
        T(m, "solution.json", "population_uncovered_before", key("population_uncovered_before", lambda v: v - 10)),
        T(m, "solution.json", "objective", key("objective", lambda v: v - 1)),
        T(m, "solution.json", "bound above objective", key("bound", lambda v: v + 100)),
        T(m, "solution.json", "gap", key("gap", 0.5)),
        T(m, "solution.json", "status time_limit", key("status", "time_limit")),
        T(m, "solution.json", "open_sites", key("open_sites", ["CS-B"])),
        T(m, "solution.json", "budget below the cost", key("parameters.budget", 1.0)),
        T(m, "solution.json", "budget key", key("budget", lambda v: v * 2)),
        T(m, "solution.json", "sites_opened_by_kind", key("sites_opened_by_kind.cabinet_secondaire", 3)),
        T(m, "solution.json", "forced closed is open", lambda S: S["options"].update(force_closed=S["open_sites"])),
        T(m, "solution.json", "fingerprint", key("instance.fingerprint", "0" * 64)),
        T(m, "solution.json", "stage 1 status", key("solver.stages.0.status", "time_limit")),
        T(m, "solution.json", "model null", key("model", None), 2),
        T(m, "solution.json", "holds []", lambda S: [], 2),
        T(m, "solution.json", "parameters x", key("parameters", "x"), 2),
        T(m, "solution.json", "options x", key("options", "x"), 2),
        T(m, "solution.json", "cost_total text", key("cost_total", "abc"), 2),
        T(m, "solution.json", "not JSON", raw("{"), 2),
        T(m, "schedule.csv", "empty file", raw(""), 2),
        T(m, "zones.csv", "empty file", raw(""), 2),
        T(m, "assignment.csv", "binary garbage", raw("\x00\xff\x00,\n\x01"), 2),
    ]

for m in ("staffing", "staffing-declared"):
    CASES += [
        T(m, "zones.csv", "uncovered_after 0 (issue 17)", where("zone_id", "2A005", "uncovered_after", "0")),
        T(m, "zones.csv", "uncovered_after of a partly served zone", where("zone_id", "2A004", "uncovered_after", "0")),
        T(m, "zones.csv", "covered_before of a served zone", where("zone_id", "01004", "covered_before", "0.5")),
        T(m, "zones.csv", "apl_after", num(0, "apl_after", lambda v: v + 0.1)),
        T(m, "zones.csv", "apl_before", num(0, "apl_before", lambda v: v + 0.1)),
        T(m, "zones.csv", "apl_after abc", cell(0, "apl_after", "abc"), 2),
        T(m, "practices.csv", "capacity_before x2", num(0, "capacity_before", lambda v: v * 2)),
        T(m, "practices.csv", "capacity_after -1", num(0, "capacity_after", lambda v: v - 1)),
        T(m, "sites.csv", "capacity", num(0, "capacity", lambda v: v + 1)),
        T(m, "sites.csv", "days_per_week +1", num(0, "days_per_week", lambda v: v + 1)),
        T(m, "schedule.csv", "days +1", num(0, "days_per_week", lambda v: v + 1)),
        T(m, "schedule.csv", "days abc", cell(0, "days_per_week", "abc"), 2),
        T(m, "schedule.csv", "days nan", cell(0, "days_per_week", "nan"), 2),
        T(m, "schedule.csv", "minutes", num(0, "minutes", lambda v: v + 1)),
        T(m, "schedule.csv", "practice_zone_id", cell(0, "practice_zone_id", "01002")),
        T(m, "schedule.csv", "site_zone_id", cell(0, "site_zone_id", "01002")),
        T(m, "schedule.csv", "unknown practice", cell(0, "practice_id", "P-Z")),
        T(m, "schedule.csv", "row dropped", lambda df: df.iloc[1:]),
        T(m, "assignment.csv", "minutes", num(1, "minutes", lambda v: v + 1)),
        T(m, "assignment.csv", "source_kind", cell(0, "source_kind", "centre_de_sante")),
        T(m, "assignment.csv", "consultations x1.5", num(0, "consultations", lambda v: v * 1.5)),
        T(m, "assignment.csv", "consultations moved between zones", lambda df: df.assign(zone_id=df["zone_id"].replace(
            {"01004": "2A005"}))),
        T(m, "assignment.csv", "unknown source", cell(0, "source_id", "P-Z")),
        T(m, "assignment.csv", "row dropped", lambda df: df.iloc[1:]),
        T(m, "assignment.csv", "consultations nan", cell(0, "consultations", "nan"), 2),
        T(m, "solution.json", "apl under", key("apl.after.under.2.5", lambda v: v - 100)),
        T(m, "solution.json", "apl mean", key("apl.after.mean", lambda v: v + 1)),
        T(m, "solution.json", "apl before under", key("apl.before.under.2.5", lambda v: v + 100)),
        T(m, "solution.json", "apl threshold", key("apl.threshold", 4.0)),
        T(m, "solution.json", "apl decay", key("apl.decay", "drees2012")),
        T(m, "solution.json", "apl block removed", drop_key("apl")),
        T(m, "solution.json", "physician_days_per_week", key("physician_days_per_week", lambda v: v + 1)),
        T(m, "solution.json", "parameters working_weeks", key("parameters.working_weeks", 40.0)),
    ]

for m in ("coverage", "coverage-declared"):
    CASES += [
        T(m, "zones.csv", "everyone covered before", lambda df: df.assign(covered_before="1", uncovered_before="0")),
        T(m, "sites.csv", "days_per_week 2", cell(0, "days_per_week", "2")),
        T(m, "sites.csv", "capacity given", cell(0, "capacity", "1000")),
        T(m, "practices.csv", "capacity_before given", cell(0, "capacity_before", "1000")),
        T(m, "assignment.csv", "a flow in a reach plan", lambda df: pd.DataFrame(
            [["01001", "P-A", "practice", "10", "0"]], columns=df.columns)),
        T(m, "schedule.csv", "a day in a reach plan", lambda df: pd.DataFrame(
            [["P-A", "01001", "CS-F", "2A005", "1", "40"]], columns=df.columns)),
        # stage 1 below the reported plan: later stages and the polish only ever lower it
        T(m, "solution.json", "stage 1 objective", key("solver.stages.0.objective", lambda v: v - 5)),
    ]

CASES += [
    # The time-limited plan relabelled optimal (issue 17), with and without its gap.
    T("staffing-timelimit", "solution.json", "relabelled optimal", key("status", "optimal")),
    T("staffing-timelimit", "solution.json", "relabelled optimal, stage too", both(
        key("status", "optimal"), key("solver.stages.0.status", "optimal"))),
    T("staffing-timelimit", "solution.json", "relabelled optimal, gap 0", lambda S: S.update(status="optimal", gap=0.0)),
    T("staffing-timelimit", "solution.json", "gap understated", key("gap", 0.01)),
    T("staffing-timelimit", "solution.json", "bound raised", key("bound", lambda v: v * 1.05)),
    # apl plans: the objective is the population under the threshold
    T("apl", "solution.json", "objective", key("objective", lambda v: v - 500)),
    T("apl", "solution.json", "apl under", key("apl.after.under.2.5", lambda v: v - 500)),
    T("apl", "zones.csv", "apl_after", num(0, "apl_after", lambda v: v * 2)),
    T("apl", "zones.csv", "uncovered_after", where("zone_id", "2A005", "uncovered_after", "0")),
    T("apl", "solution.json", "model staffing", key("model", "staffing")),
    T("apl-declared", "solution.json", "objective", key("objective", lambda v: v - 500)),
    T("apl-declared", "solution.json", "declared cost_total", key("result.objective", "cost_total")),
    T("lscp", "solution.json", "declared weighted_uncovered", key("result.objective", "weighted_uncovered")),
    # declarations themselves
    T("staffing-declared", "solution.json", "declared reach", key("result.access", "reach")),
    T("staffing-declared", "solution.json", "declared no apl", key("result.apl", False)),
    T("coverage-declared", "solution.json", "declared capacities", key("result.capacities", True)),
    T("coverage-declared", "solution.json", "declared apl", key("result.apl", True)),
    T("staffing-declared", "solution.json", "result x", key("result", "x"), 2),
    T("staffing-declared", "solution.json", "result access unknown", key("result.access", "teleport"), 2),
    T("staffing-declared", "solution.json", "result apl text", key("result.apl", "yes"), 2),
    T("staffing-declared", "solution.json", "result key missing", drop_key("result.full_coverage"), 2),
    T("staffing", "solution.json", "model unknown, no result",
      lambda S: (S.pop("result", None), S.update(model="teleport")), 2),
    # set covering: every reachable zone covered, objective = cost
    T("lscp", "sites.csv", "no site open, tables consistent", lambda df: df.iloc[0:0]),
    T("lscp", "solution.json", "objective", key("objective", lambda v: v - 1)),
    T("lscp", "solution.json", "cost_total", key("cost_total", lambda v: v - 1)),
    T("lscp", "zones.csv", "uncovered_after", where("zone_id", "2A005", "uncovered_after", "700")),
]


def _close_everything(folder: Path) -> None:
    """Make the lscp folder a consistent plan that opens nothing (zones 2A004 and 2A005,
    reachable only from the candidates, lose access): only the full-coverage rule objects."""
    lost = {"2A004": "2500", "2A005": "700"}

    def zones(df):
        on = df["zone_id"].isin(list(lost))
        df.loc[on, "covered_after"] = "0"
        df.loc[on, "uncovered_after"] = df.loc[on, "zone_id"].map(lost)
        df.loc[on, "main_source_after"] = ""
        df.loc[on, "minutes_after"] = ""
    _edit_csv(folder, "zones.csv", zones)

    def summary(S):
        S.update(open_sites=[], cost_total=0.0, objective=0.0, bound=0.0, gap=0.0,
                 population_covered=S["population_covered"] - 3200, population_uncovered=3200.0,
                 cost_by_item={k: 0.0 for k in S["cost_by_item"]},
                 cost_by_funder={k: 0.0 for k in S["cost_by_funder"]},
                 physician_days_per_week=0.0,
                 sites_opened_by_kind={k: 0 for k in S["sites_opened_by_kind"]})
        S["solver"]["stages"][0].update(objective=0.0, bound=0.0, gap=0.0)
    _edit_json(folder, summary)


def _apply(folder: Path, case: Tamper) -> None:
    path = folder / case.file
    if isinstance(case.change, str):
        path.write_bytes(case.change.encode("latin-1"))
    elif case.file == "solution.json":
        _edit_json(folder, case.change)
    else:
        _edit_csv(folder, case.file, case.change)


def _id(case: Tamper) -> str:
    return f"{case.folder}:{case.file}:{case.what}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_tampering_is_caught(folders, tmp_path, case):
    folder = tmp_path / "plan"
    shutil.copytree(folders[case.folder], folder)
    if case.folder == "lscp" and case.what.startswith("no site open"):
        _close_everything(folder)
    _apply(folder, case)
    STATS["tried"] += 1
    result = run_check(folder)
    trace = "Traceback" in result.output or (result.exception is not None
                                             and not isinstance(result.exception, SystemExit))
    STATS["tracebacks"] += trace
    lines = [line for line in result.output.splitlines() if line.strip()]
    caught = result.exit_code == case.code and len(lines) == 1 and lines[0].startswith("error: ")
    STATS["caught"] += caught
    STATS[f"exit {result.exit_code}"] += 1
    assert not trace, result.output
    assert result.exit_code == case.code, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output


def test_zz_report(request):
    """Print the counts (tried, caught, tracebacks); run with -s or -rP to see them."""
    if not STATS["tried"]:
        pytest.skip("no tampering case ran in this session")
    line = (f"checker tampering: tried {STATS['tried']}, caught {STATS['caught']}, "
            f"tracebacks {STATS['tracebacks']}; " + ", ".join(f"{k} {v}" for k, v in sorted(STATS.items())
                                                          if k.startswith("exit")))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print("\n" + line)
    assert STATS["tracebacks"] == 0


# ---------------------------------------------------------------------------------
# random corruptions (hypothesis, in the style of test_fuzz_loader)
# ---------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from test_fuzz_loader import OPS, apply_op, serialise  # noqa: E402

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
FUZZ_STATS: Counter = Counter()
JSON_VALUES = st.one_of(
    st.sampled_from([None, "x", "", [], {}, -1, 0, 1e308, -1e308, True, False, [1, 2], {"a": 1}, "optimal",
                     "nan", "reach", float("nan"), float("inf")]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-10**6, 10**6),
    st.text(max_size=8),
)


def _paths(obj, prefix=(), depth=0):
    """Every key path of a JSON document, up to four levels deep."""
    out = [prefix] if prefix else []
    if depth < 4 and isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,), depth + 1)
    elif depth < 4 and isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            out += _paths(v, prefix + (i,), depth + 1)
    return out


def corrupt_json(text: str, data) -> bytes:
    S = json.loads(text)
    kind = data.draw(st.sampled_from(["set", "set", "set", "delete", "root", "cut", "bytes"]))
    if kind in ("set", "delete"):
        path = data.draw(st.sampled_from(_paths(S)))
        parent = S
        for p in path[:-1]:
            parent = parent[p]
        if kind == "set":
            parent[path[-1]] = data.draw(JSON_VALUES)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    elif kind == "root":
        S = data.draw(JSON_VALUES)
    raw = json.dumps(S, indent=1).encode("utf-8")
    if kind == "cut":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif kind == "bytes":
        raw = data.draw(st.binary(max_size=80))
    return raw


@settings(FUZZ, max_examples=100)
@given(data=st.data(), plan=st.sampled_from(["coverage", "staffing", "apl", "staffing-declared", "lscp"]),
       target=st.sampled_from(["solution.json", "solution.json", "zones.csv", "sites.csv", "schedule.csv",
                               "practices.csv", "assignment.csv"]))
def test_fuzzed_folders_exit_cleanly(folders, tmp_path_factory, data, plan, target):
    """A randomly corrupted folder: `optisite check` exits 0, 2 or 4, one line, never a traceback."""
    folder = tmp_path_factory.mktemp("fuzz") / "plan"
    shutil.copytree(folders[plan], folder)
    path = folder / target
    if target == "solution.json":
        raw = corrupt_json(path.read_text(encoding="utf-8"), data)
    else:
        import csv
        import io

        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        for op in data.draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=2)):
            rows = apply_op(rows, op, data)
        raw = serialise(rows, data) if data.draw(st.integers(0, 3)) == 0 else \
            ("\n".join(",".join(r) for r in rows) + "\n").encode("utf-8")
    path.write_bytes(raw)
    result = run_check(folder)
    FUZZ_STATS["tried"] += 1
    FUZZ_STATS[f"exit {result.exit_code}"] += 1
    trace = "Traceback" in result.output or (result.exception is not None
                                             and not isinstance(result.exception, SystemExit))
    FUZZ_STATS["tracebacks"] += trace
    assert not trace, (result.output, repr(result.exception))
    assert result.exit_code in (0, 2, 4), result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("ok: " if result.exit_code == 0 else "error: "), result.output
    assert lines[0].isprintable(), repr(lines[0])


def test_zz_fuzz_report(request):
    """Print the fuzz counts (tried, exits, tracebacks)."""
    if not FUZZ_STATS["tried"]:
        pytest.skip("the fuzz test did not run in this session")
    line = (f"checker fuzz: tried {FUZZ_STATS['tried']}, tracebacks {FUZZ_STATS['tracebacks']}; "
            + ", ".join(f"{k} {v}" for k, v in sorted(FUZZ_STATS.items()) if k.startswith("exit")))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print("\n" + line)
    assert FUZZ_STATS["tracebacks"] == 0
    assert FUZZ_STATS["exit 2"] > 0 and FUZZ_STATS["exit 4"] > 0
