"""The model documents and the code agree, by test (issue 13).

Format of the Pyomo component tables (models/coverage.md, staffing.md, apl.md; a new
model's document, e.g. models/lscp.md, is written the same way):

* one level-2 section whose heading contains "Pyomo components" (e.g.
  "## Pyomo components", "## 4. Pyomo components of the `apl` model");
* inside it, two level-3 subsections, "### Variables" and "### Constraints", each
  holding one markdown table whose header row is exactly
  ``| Pyomo | symbol | meaning | data |``;
* one row per top-level Var (resp. Constraint) that the model's ``build`` creates; the
  first cell is the Pyomo component name alone, in backticks (`y`, `covering`), then
  the symbol of the maths, what it means, and the columns/parameters it comes from.
  Components the solver adds at solve time (hold_coverage, hold_cost, obj_canonical,
  obj_flows) are not rows.

The `solution.json` table of models/outputs.md: header ``| key | type | meaning |``,
one row per top-level key (name in backticks); a key whose type cell says
"optional" is written only under a condition, every other key always.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import pyomo.environ as pyo
import pytest
from click.testing import CliRunner

from optisite.cli import main
from optisite.instance import Instance, load_instance
from optisite.models import names as model_names

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "models"
INSTANCES = ROOT / "instances"


# -- The one place this test knows the models: the registry (document models/<name>.md).

def _built(name: str) -> Callable[[Instance], pyo.ConcreteModel]:
    from optisite.pipeline import SolveOptions, build

    return lambda instance: build(instance, SolveOptions(model=name)).pyomo


BUILD: dict[str, Callable[[Instance], pyo.ConcreteModel]] = {name: _built(name) for name in model_names()}

# Instances each model is built on: the documented components must all appear in the
# union of these builds. `tiny` builds every component of the three models today; add a
# second instance here if a model leaves a component out on `tiny`.
BUILD_ON = ("tiny",)

# Keys of the solution.json table in models/outputs.md that the code does not write yet.
# `result` lands with the lead's typed solution contract (issue 13): remove it then (the
# test below fails as soon as the key is written, as a reminder).
KNOWN_PENDING: set[str] = set()
RESULT_KEYS = {"access", "objective", "capacities", "apl", "full_coverage", "budgeted", "years", "scenarios"}

COMPONENT_HEADER = "| Pyomo | symbol | meaning | data |"
KEY_HEADER = "| key | type | meaning |"
SOLVE_TIME = {"hold_coverage", "hold_cost", "obj_canonical", "obj_flows"}


# -- Parsing -------------------------------------------------------------------------------

def _section(lines: list[str], start: int, level: int) -> list[str]:
    """The lines after heading ``start`` up to the next heading of ``level`` or above."""
    out = []
    for line in lines[start + 1:]:
        m = re.match(r"^(#+) ", line)
        if m and len(m.group(1)) <= level:
            break
        out.append(line)
    return out


def _table(lines: list[str], header: str, where: str) -> list[list[str]]:
    """Rows (cells stripped) of the one table with ``header`` in ``lines``."""
    starts = [i for i, line in enumerate(lines) if line.strip() == header]
    assert len(starts) == 1, f"{where}: expected one table with header {header!r}, found {len(starts)}"
    i = starts[0] + 1
    assert re.match(r"^\|(\s*-+\s*\|)+\s*$", lines[i]), f"{where}: no separator row under the header"
    rows = []
    for line in lines[i + 1:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def _names(rows: list[list[str]], where: str) -> list[str]:
    out = []
    for row in rows:
        m = re.fullmatch(r"`([A-Za-z_][A-Za-z0-9_]*)`", row[0])
        assert m, f"{where}: first cell {row[0]!r} is not one name in backticks"
        out.append(m.group(1))
    dup = {n for n in out if out.count(n) > 1}
    assert not dup, f"{where}: documented twice: {sorted(dup)}"
    return out


def doc_components(path: Path) -> dict[str, list[str]]:
    """{'Variables': [...], 'Constraints': [...]} from a model document."""
    lines = path.read_text(encoding="utf-8").splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("## ") and "Pyomo components" in line]
    assert len(heads) == 1, f"{path.name}: expected one '## ... Pyomo components' section, found {len(heads)}"
    body = _section(lines, heads[0], 2)
    out = {}
    for kind in ("Variables", "Constraints"):
        subs = [i for i, line in enumerate(body) if line.strip() == f"### {kind}"]
        assert len(subs) == 1, f"{path.name}: expected one '### {kind}' subsection, found {len(subs)}"
        where = f"{path.name} {kind}"
        out[kind] = _names(_table(_section(body, subs[0], 3), COMPONENT_HEADER, where), where)
    return out


def doc_solution_keys() -> dict[str, bool]:
    """solution.json key -> optional, from models/outputs.md."""
    lines = (MODELS_DIR / "outputs.md").read_text(encoding="utf-8").splitlines()
    heads = [i for i, line in enumerate(lines) if line.strip() == "## `solution.json`"]
    assert len(heads) == 1, "outputs.md: expected one '## `solution.json`' section"
    rows = _table(_section(lines, heads[0], 2), KEY_HEADER, "outputs.md solution.json")
    names = _names(rows, "outputs.md solution.json")
    return {n: "optional" in row[1] for n, row in zip(names, rows)}


def built_components(m: pyo.Block) -> dict[str, set[str]]:
    return {"Variables": {c.local_name for c in m.component_objects(pyo.Var, descend_into=False)},
            "Constraints": {c.local_name for c in m.component_objects(pyo.Constraint, descend_into=False)}}


# -- Pyomo components ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def builds() -> dict[str, list[dict[str, set[str]]]]:
    instances = [load_instance(INSTANCES / name) for name in BUILD_ON]
    return {doc: [built_components(build(inst)) for inst in instances] for doc, build in BUILD.items()}


@pytest.mark.parametrize("doc", list(BUILD))
def test_documented_components_exist_in_the_built_model(doc, builds):
    documented = doc_components(MODELS_DIR / f"{doc}.md")
    for kind, names in documented.items():
        assert names, f"models/{doc}.md documents no {kind.lower()}"
        built = set().union(*(b[kind] for b in builds[doc]))
        missing = sorted(set(names) - built)
        assert not missing, (f"models/{doc}.md lists {kind.lower()} {missing} that {doc}'s build does not "
                             f"create on {', '.join(BUILD_ON)}")


@pytest.mark.parametrize("doc", list(BUILD))
def test_built_components_are_documented(doc, builds):
    documented = doc_components(MODELS_DIR / f"{doc}.md")
    for kind in ("Variables", "Constraints"):
        for name, built in zip(BUILD_ON, builds[doc]):
            undocumented = sorted(built[kind] - set(documented[kind]))
            assert not undocumented, (f"{doc} built on {name} has {kind.lower()} {undocumented} "
                                      f"missing from the {kind} table of models/{doc}.md")


@pytest.mark.parametrize("doc", list(BUILD))
def test_solve_time_components_are_not_documented_as_model_components(doc):
    documented = doc_components(MODELS_DIR / f"{doc}.md")
    listed = SOLVE_TIME & (set(documented["Variables"]) | set(documented["Constraints"]))
    assert not listed, f"models/{doc}.md lists solver components {sorted(listed)} (models/solving.md)"


def test_the_parser_refuses_a_malformed_table(tmp_path):
    """The checks above rely on the parser: it must refuse a table it cannot read, not
    read it as empty."""
    good = ("# m\n\n## Pyomo components\n\n### Variables\n\n| Pyomo | symbol | meaning | data |\n"
            "|---|---|---|---|\n| `y` | `y_j` | open | sites |\n\n### Constraints\n\n"
            "| Pyomo | symbol | meaning | data |\n|---|---|---|---|\n| `c` | - | - | - |\n\n## Next\n")
    path = tmp_path / "m.md"
    path.write_text(good, encoding="utf-8")
    assert doc_components(path) == {"Variables": ["y"], "Constraints": ["c"]}
    for broken, message in ((good.replace("| `y` |", "| y |"), "not one name in backticks"),
                            (good.replace("### Constraints", "### Rows"), "'### Constraints'"),
                            (good.replace("| Pyomo | symbol | meaning | data |\n|---|---|---|---|\n| `c`",
                                          "| name | symbol | meaning | data |\n|---|---|---|---|\n| `c`"),
                             "expected one table"),
                            (good.replace("| `c` |", "| `y` |\n| `y` |"), "documented twice")):
        path.write_text(broken, encoding="utf-8")
        with pytest.raises(AssertionError, match=message):
            doc_components(path)


# -- solution.json keys --------------------------------------------------------------------

@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, dict]:
    """solution.json of `optisite solve instances/tiny --model M` for every model."""
    out = {}
    for model in BUILD:
        folder = tmp_path_factory.mktemp("docs") / model
        r = CliRunner().invoke(main, ["solve", str(INSTANCES / "tiny"), "--model", model, "--time-limit", "20",
                                      "--threads", "1", "--out", str(folder), "--quiet"])
        assert r.exit_code == 0, f"{model}: {r.output}"
        out[model] = json.loads((folder / "solution.json").read_text(encoding="utf-8"))
    # The staffing model's robust form (models/staffing.md, "Robust plans") writes its own blocks.
    folder = tmp_path_factory.mktemp("docs") / "staffing-robust"
    r = CliRunner().invoke(main, ["solve", str(INSTANCES / "tiny"), "--robust", "over65_now,none", "--time-limit", "20",
                                  "--threads", "1", "--out", str(folder), "--quiet"])
    assert r.exit_code == 0, f"staffing --robust: {r.output}"
    out["staffing-robust"] = json.loads((folder / "solution.json").read_text(encoding="utf-8"))
    return out


def test_pending_keys_are_documented():
    assert KNOWN_PENDING <= set(doc_solution_keys())


@pytest.mark.parametrize("model", list(BUILD) + ["staffing-robust"])
def test_solution_json_keys_match_outputs_md(model, written):
    doc = doc_solution_keys()
    keys = set(written[model])
    landed = sorted(KNOWN_PENDING & keys)
    assert not landed, f"solution.json now writes {landed}: remove it from KNOWN_PENDING"
    required = {k for k, optional in doc.items() if not optional}
    missing = sorted(required - keys - KNOWN_PENDING)
    undocumented = sorted(keys - set(doc))
    assert not missing and not undocumented, (
        f"{model}: models/outputs.md lists {missing}, not written in solution.json; "
        f"solution.json writes {undocumented}, not in models/outputs.md")
    if "result" not in KNOWN_PENDING:  # active once the lead's `result` object lands
        assert set(written[model]["result"]) == RESULT_KEYS
        assert ("apl" in keys) == bool(written[model]["result"]["apl"])


def test_every_optional_key_is_written_by_some_model(written):
    optional = {k for k, opt in doc_solution_keys().items() if opt}
    assert optional, "outputs.md marks no key optional (the `apl` block is)"
    seen = set().union(*(set(w) for w in written.values()))
    assert not sorted(optional - seen), f"optional keys no model writes on tiny: {sorted(optional - seen)}"
