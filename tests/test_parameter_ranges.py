"""Zero or extreme parameters (issue 17 items 7 and 11): refused with one line naming the
parameter, or solved; never a traceback, never solver noise on stdout under --quiet."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from optisite.cli import main
from optisite.errors import InputError
from optisite.instance import load_instance
from optisite.parameters import DIVISORS, Parameters

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "instances" / "tiny"

NUMERIC = [f for f in dataclasses.fields(Parameters) if f.metadata.get("maximum") is not None]


def solve(tmp_path, *args):
    return CliRunner().invoke(main, ["solve", str(TINY), "--quiet", "--time-limit", "5", "--threads", "1",
                                     "--out", str(tmp_path / "out"), *args])


def one_error_line(result) -> str:
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize("name, value, contains", [
    ("consultations_per_inhabitant", "0", "below the minimum 0.1"),  # was ZeroDivisionError
    ("consultations_per_day_liberal", "0", "below the minimum 1"),  # was IntCastingNaNError
    ("consultations_per_day_salaried", "0", "below the minimum 1"),  # was IntCastingNaNError
    ("days_per_fte", "1e308", "above the maximum 7"),  # was a message about a missing column
    ("working_weeks", "0", "below the minimum 1"),
    ("speed_kmh", "0", "below the minimum 1"),
    ("coverage_minutes", "1e9", "above the maximum 1,000,000"),
    ("budget", "1e300", "above the maximum"),
])
def test_probe_values_are_refused_naming_the_parameter(tmp_path, tiny_copy, capfd, name, value, contains):
    result = solve(tmp_path, "--set", f"{name}={value}")
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line.startswith(f"error: command line, column '{name}': ") and contains in line, line
    assert "Fix: give a value from" in line
    assert "ERROR" not in capfd.readouterr().out  # no solver was started
    assert not (tmp_path / "out").exists()
    # the same value in the manifest is refused by the loader, naming instance.toml
    manifest = tiny_copy / "instance.toml"
    kept = [line for line in manifest.read_text().splitlines() if not line.startswith(f"{name} =")]
    manifest.write_text("\n".join(kept).replace("[parameters]", f"[parameters]\n{name} = {value}") + "\n")
    with pytest.raises(InputError) as info:
        load_instance(tiny_copy)
    assert info.value.file == "instance.toml" and info.value.column == name


def test_divisors_have_a_minimum_above_zero():
    fields = {f.name: f for f in dataclasses.fields(Parameters)}
    for name in DIVISORS:
        assert fields[name].metadata["minimum"] > 0, name


def test_every_number_has_a_range():
    for f in dataclasses.fields(Parameters):
        if f.type in ("float", float):
            assert f.metadata["maximum"] is not None and f.metadata["minimum"] is not None, f.name
            assert f.metadata["minimum"] <= f.default <= f.metadata["maximum"], f.name


@pytest.mark.parametrize("name, value", [(f.name, v) for f in NUMERIC
                                         for v in (f.metadata["minimum"], f.metadata["maximum"])])
def test_each_end_of_each_range_solves_or_is_refused_cleanly(tmp_path, capfd, name, value):
    """Every accepted extreme either solves (0), is refused in one line (2) or is infeasible (3)."""
    result = solve(tmp_path, "--set", f"{name}={value!r}")
    assert result.exit_code in (0, 2, 3), (result.exit_code, result.output, result.exception)
    if result.exit_code == 0:
        assert (tmp_path / "out" / "solution.json").is_file()
        assert "Traceback" not in result.output
    else:
        one_error_line(result)
    assert "ERROR" not in capfd.readouterr().out


# ---------------------------------------------------------------------------------
# item 11: when no cabinet can be staffed, the message must say so (owned by the lead)
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("sets", [
    ["max_travel_minutes=0"],
    ["max_secondary_days_per_gp=0"],
    ["cabinet_min_days=0", "cabinet_max_days=0"],
], ids=["max_travel_minutes", "max_secondary_days_per_gp", "cabinet_max_days"])
def test_no_staffable_cabinet_is_named_as_such(tmp_path, sets):
    args = [a for s in sets for a in ("--set", s)]
    result = solve(tmp_path, *args)
    line = one_error_line(result)
    assert "thousands" not in line and "below the cheapest option" not in line, line
    assert "no cabinet secondaire can be staffed" in line, line
    assert sets[-1].split("=")[0] in line, line  # names the parameter that forbids it
