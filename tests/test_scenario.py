"""Scenario files and command-line overrides (issue 17 item 6): every mistake is one located
line with exit 2, the documented keys are the accepted ones, and scenario < command line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from optisite.cli import main
from optisite.errors import InputError
from optisite.instance import load_instance
from optisite.parameters import Parameters
from optisite.scenario import (OPTION_KEYS, Scenario, apply, documented_keys, models, option_defaults,
                               parse_scenario, parse_sets, read_scenario)
from optisite.solver import SolveOptions

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "instances" / "tiny"
DOC = ROOT / "models" / "scenarios.md"


@pytest.fixture(scope="module")
def tiny():
    return load_instance(TINY)


def write_scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sc.toml"
    path.write_text(text, encoding="utf-8")
    return path


def cli_solve(*args: str):
    return CliRunner().invoke(main, ["solve", str(TINY), "--quiet", *args])


def assert_cli_refuses(result, msg: str | None = None) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    if msg is not None:
        assert lines[0] == f"error: {msg}"


# ---------------------------------------------------------------------------------
# every mistake of the probe, and their neighbours, is refused when the file is read
# ---------------------------------------------------------------------------------

BAD = [
    # (scenario text, key named, text the message or fix must contain)
    ('[options]\ntime_limit = "ten"\n', "options.time_limit", "not a number"),
    ('[options]\nseed = "x"\n', "options.seed", "not a whole number"),
    ('[options]\nthreads = "many"\n', "options.threads", "not a whole number"),
    ("[options]\ngap = -1\n", "options.gap", "from 0 to 1"),
    ("[options]\ntime_limit = -5\n", "options.time_limit", "out of range"),
    ("[options]\ngap = 50\n", "options.gap", "0.01 for 1 %"),
    ("[options]\nthreads = 0\n", "options.threads", "out of range"),
    ("parameters = [1, 2]\n", "parameters", "table"),
    ('options = "fast"\n', "options", "table"),
    ("timelimit = 5\n", "timelimit", "did you mean 'time_limit'"),
    ("[options]\ntime_limt = 5\n", "options.time_limt", "did you mean 'time_limit'"),
    ("[options]\nthreads = 2.5\n", "options.threads", "whole number"),
    ("[options]\nthreads = true\n", "options.threads", "whole number"),
    ("[options]\nseed = -1\n", "options.seed", "out of range"),
    ("[options]\ntime_limit = inf\n", "options.time_limit", "finite"),
    ("[options]\ntime_limit = nan\n", "options.time_limit", "finite"),
    ("[options]\ntime_limit = 99999999999999999999999999999\n", "options.time_limit", "out of range"),
    ("[options]\ngap = true\n", "options.gap", "not a number"),
    ('[options]\nmodel = "coverag"\n', "options.model", "did you mean 'coverage'"),
    ("[options]\nmodel = 3\n", "options.model", "unknown model"),
    ("[options]\nopen = [1]\n", "options.open", "quoted text"),
    ("[options]\nopen = 5\n", "options.open", "list of site ids"),
    ('[options]\nclose = ["CS-B", "CS-B"]\n', "options.close", "twice"),
    ("[options]\nbudget = 5\n", "options.budget", "under [parameters]"),
    ("[parameters]\ntime_limit = 5\n", "parameters.time_limit", "under [options]"),
    ("[parameters]\nbudgte = 5\n", "parameters.budgte", "did you mean 'budget'"),
    ("[parameters]\nbudget = [5]\n", "parameters.budget", "list"),
    ("[parameters]\nbudget = -1\n", "parameters.budget", "below the minimum"),
    ("[parameters]\ndays_per_fte = 1e308\n", "parameters.days_per_fte", "above the maximum"),
    ("[parameters]\nconsultations_per_inhabitant = 0\n", "parameters.consultations_per_inhabitant", "divides"),
    ("budget = 5\n", "budget", "under [parameters]"),
    ("name = 3\n", "name", "non-empty text"),
    ("description = [1]\n", "description", "text"),
    ('model = "apl"\n[options]\nmodel = "coverage"\n', "model", "given twice"),
    ("surprise = 1\n", "surprise", "models/scenarios.md"),
]


@pytest.mark.parametrize("text, key, contains", BAD, ids=[b[1] + ":" + b[0].split("\n")[-2][:20] for b in BAD])
def test_bad_scenario_is_refused_with_file_and_key(tmp_path, text, key, contains):
    path = write_scenario(tmp_path, text)
    with pytest.raises(InputError) as info:
        read_scenario(path)
    err = info.value
    msg = str(err)
    assert err.file == str(path) and err.column == key, msg
    assert msg.startswith(f"{path}, column '{key}': "), msg
    assert contains.lower() in msg.lower(), msg
    assert "Fix:" in msg and "\n" not in msg
    assert_cli_refuses(cli_solve("--scenario", str(path), "--out", str(tmp_path / "o")), msg)
    assert not (tmp_path / "o").exists()


def test_invalid_toml_and_unreadable_file(tmp_path):
    path = write_scenario(tmp_path, "[options\ntime_limit = 5\n")
    with pytest.raises(InputError, match=r"not valid TOML"):
        read_scenario(path)
    assert_cli_refuses(cli_solve("--scenario", str(path), "--out", str(tmp_path / "o")))
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match=r"not UTF-8"):
        read_scenario(path)


def test_scenario_that_is_no_regular_file(tmp_path):
    with pytest.raises(InputError, match="not a regular file"):
        read_scenario(tmp_path)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.toml")
        with pytest.raises(InputError, match="not a regular file"):  # and does not block
            read_scenario(tmp_path / "pipe.toml")
        assert_cli_refuses(cli_solve("--scenario", str(tmp_path / "pipe.toml"), "--out", str(tmp_path / "o")))


@pytest.mark.parametrize("text, key, contains", [
    ('[options]\nopen = ["CS-Z"]\n', "options.open", "unknown site id 'CS-Z'"),
    ('[options]\nclose = "CS-BB"\n', "options.close", "did you mean 'CS-B'"),
    ('[options]\nopen = "CS-B"\nclose = ["CS-B"]\n', "open/close", "both forced open and forced closed"),
    ("[parameters]\ncabinet_min_days = 6\n", "cabinet_min_days", "larger than cabinet_max_days"),
])
def test_mistakes_found_against_the_instance(tmp_path, tiny, text, key, contains):
    path = write_scenario(tmp_path, text)
    sc = read_scenario(path)
    with pytest.raises(InputError) as info:
        apply(tiny, sc)
    assert info.value.file == str(path) and info.value.column == key, str(info.value)
    assert contains in str(info.value)
    assert_cli_refuses(cli_solve("--scenario", str(path), "--out", str(tmp_path / "o")), str(info.value))


# ---------------------------------------------------------------------------------
# what a scenario means
# ---------------------------------------------------------------------------------

def test_open_as_one_text_is_one_site_not_its_letters(tiny):
    _, options = apply(tiny, parse_scenario('[options]\nopen = "CS-B"\n'))
    assert options.force_open == ("CS-B",)


def test_model_in_options_is_used(tiny):
    _, options = apply(tiny, parse_scenario('[options]\nmodel = "coverage"\n'))
    assert options.model == "coverage"
    _, options = apply(tiny, parse_scenario('model = "apl"\n'))  # the older top-level spelling
    assert options.model == "apl"
    _, options = apply(tiny, parse_scenario('model = "apl"\n[options]\nmodel = "apl"\n'))
    assert options.model == "apl"


def test_every_option_read(tiny):
    sc = parse_scenario('name = "s"\n[parameters]\nbudget = 70_000\ncoverage_minutes = "12,5"\n'
                        '[options]\ntime_limit = 7\ngap = 0.01\nthreads = 1\nseed = 3\n'
                        'open = ["CS-B"]\nclose = ["CS-D", "CDS-E"]\n')
    inst, options = apply(tiny, sc)
    assert (inst.parameters.budget, inst.parameters.coverage_minutes) == (70_000, 12.5)
    assert options == SolveOptions(model="staffing", time_limit=7.0, gap=0.01, threads=1, seed=3,
                                   force_open=("CS-B",), force_closed=("CS-D", "CDS-E"))


def test_empty_scenario_gives_the_solver_defaults(tiny):
    inst, options = apply(tiny, parse_scenario(""))
    assert options == SolveOptions()
    assert inst.parameters == tiny.parameters
    assert apply(tiny, None)[1] == SolveOptions()


def test_option_defaults_are_the_solver_defaults():
    defaults = SolveOptions()
    for key, field in {"model": "model", "time_limit": "time_limit", "gap": "gap", "threads": "threads",
                       "seed": "seed", "open": "force_open", "close": "force_closed"}.items():
        assert option_defaults()[key] == getattr(defaults, field), key
    assert tuple(option_defaults()) == OPTION_KEYS


def test_options_and_parameters_do_not_share_a_name():
    assert not set(OPTION_KEYS) & set(Parameters.names())


def test_model_names_are_those_of_the_command_line(tiny):
    """One list of models: a scenario accepts exactly what `optisite solve --model` accepts."""
    import click

    from optisite.cli import solve as solve_command

    choice = next(p.type for p in solve_command.params if p.name == "model")
    assert isinstance(choice, click.Choice)
    assert set(models()) == set(choice.choices)
    for name in choice.choices:
        assert apply(tiny, parse_scenario(f'[options]\nmodel = "{name}"\n'))[1].model == name
    with pytest.raises(InputError, match="unknown model 'future'"):
        parse_scenario('[options]\nmodel = "future"\n')


def test_command_line_over_scenario(tiny):
    sc = parse_scenario('[parameters]\nbudget = 70_000\nspeed_kmh = 50\n'
                        '[options]\ntime_limit = 7\nseed = 3\nopen = ["CS-B"]\nmodel = "coverage"\n')
    inst, options = apply(tiny, sc, {"budget": 80_000, "time_limit": 9.0, "open": ("CS-D",),
                                     "seed": None, "model": None, "close": ()})
    assert inst.parameters.budget == 80_000 and inst.parameters.speed_kmh == 50
    assert options.time_limit == 9.0 and options.seed == 3 and options.model == "coverage"
    assert options.force_open == ("CS-D",)  # replaced, not merged


def test_command_line_values_are_checked_too(tiny):
    with pytest.raises(InputError, match=r"^command line, column '--gap': 50 is out of range"):
        apply(tiny, None, {"gap": 50})
    with pytest.raises(InputError, match=r"^command line, column '--open': unknown site id 'C'"):
        apply(tiny, None, {"open": "C"})
    with pytest.raises(InputError, match=r"did you mean 'budget'"):
        apply(tiny, None, {"budgett": 4})


def test_cli_scenario_and_command_line_layering(tmp_path):
    """Through `optisite solve`: the scenario's model and budget, the command line's budget wins."""
    import json

    path = write_scenario(tmp_path, '[parameters]\nbudget = 30_000\n[options]\nmodel = "coverage"\n'
                                    "time_limit = 20\nthreads = 1\n")
    r = cli_solve("--scenario", str(path), "--out", str(tmp_path / "a"))
    assert r.exit_code == 0, r.output
    S = json.loads((tmp_path / "a" / "solution.json").read_text(encoding="utf-8"))
    assert S["model"] == "coverage" and S["budget"] == 30_000
    r = cli_solve("--scenario", str(path), "--budget", "40000", "--out", str(tmp_path / "b"))
    assert r.exit_code == 0, r.output
    S = json.loads((tmp_path / "b" / "solution.json").read_text(encoding="utf-8"))
    assert S["model"] == "coverage" and S["budget"] == 40_000


# ---------------------------------------------------------------------------------
# --set
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, contains", [
    (["--set", "budget"], "is not NAME=VALUE"),
    (["--set", "=5"], "no name"),
    (["--set", "time_limit=5"], "give --time-limit"),
    (["--set", "budget=1", "--set", "budget=2"], "given twice"),
    (["--set", "budget=1", "--budget", "2"], "both given"),
    (["--set", "budgett=1"], "did you mean 'budget'"),
    (["--set", "days_per_fte=1e308"], "above the maximum"),
    (["--set", "consultations_per_day_liberal=0"], "below the minimum"),
])
def test_bad_set_is_refused(tmp_path, args, contains):
    r = cli_solve(*args, "--out", str(tmp_path / "o"))
    assert_cli_refuses(r)
    assert contains in r.output


def test_parse_sets_keeps_text_values():
    assert parse_sets(["budget = 5", "apl_decay=drees2012"]) == {"budget": "5", "apl_decay": "drees2012"}
    assert parse_sets(["budget=5", "budget=5"]) == {"budget": "5"}


# ---------------------------------------------------------------------------------
# the document lists exactly the accepted keys
# ---------------------------------------------------------------------------------

def documented() -> dict[str, set[str]]:
    rows = re.findall(r"^\| `(\[options\] )?(\[?[a-z_]+\]?)` \|", DOC.read_text(encoding="utf-8"), flags=re.M)
    out = {"top": set(), "options": set()}
    for options, key in rows:
        out["options" if options else "top"].add(key.strip("[]"))
    return out


def test_documented_keys_are_the_accepted_keys():
    keys = documented_keys()
    doc = documented()
    assert doc["top"] == set(keys["top"])
    assert doc["options"] == set(keys["options"])
    for key in keys["top"]:
        if key in ("parameters", "options"):
            continue
        parse_scenario(f'{key} = "apl"\n')  # each documented top-level key is accepted as such


def test_documented_example_is_valid(tmp_path):
    text = DOC.read_text(encoding="utf-8")
    example = re.search(r"## Example\n\n```toml\n(.*?)```", text, flags=re.S).group(1)
    sc = parse_scenario(example, file="example")
    assert isinstance(sc, Scenario) and sc.options["time_limit"] == 120
    assert set(sc.options) == set(OPTION_KEYS)  # the example shows every option


def test_documented_option_defaults_are_the_solver_defaults():
    cells = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `\[options\] ([a-z_]+)` \|(.*)\|\s*$", line)
        if m:
            cells[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    defaults = option_defaults()
    for key in ("time_limit", "gap", "seed"):
        assert float(cells[key][2].replace(",", "")) == defaults[key], key
    assert cells["model"][2] == f"`{defaults['model']}`"
    assert defaults["threads"] is None and "HiGHS" in cells["threads"][2]
    assert defaults["open"] == defaults["close"] == () and cells["open"][2] == cells["close"][2] == "none"
