"""models/parameters.md and the code agree: one row per parameter, same default, unit, source."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from optisite.errors import InputError
from optisite.instance import load_instance
from optisite.parameters import (TABLE_BEGIN, TABLE_END, Parameters, format_default,
                                 markdown_table)

DOC = Path(__file__).resolve().parents[1] / "models" / "parameters.md"


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def doc_rows() -> dict[str, list[str]]:
    """name -> [default, unit, source] parsed from the document's table."""
    rows = {}
    for line in doc_text().splitlines():
        m = re.match(r"^\| `([a-z_0-9]+)` \|(.*)\|\s*$", line)
        if m:
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", m.group(2))]
            assert m.group(1) not in rows, f"{m.group(1)} documented twice"
            rows[m.group(1)] = cells
    return rows


def test_document_table_is_the_generated_one():
    text = doc_text()
    assert text.count(TABLE_BEGIN) == 1 and text.count(TABLE_END) == 1
    section = text[text.index(TABLE_BEGIN): text.index(TABLE_END) + len(TABLE_END)]
    assert section == markdown_table(), (
        "models/parameters.md is out of date: regenerate its table with "
        "optisite.parameters.markdown_table()")


def test_one_row_per_parameter():
    assert list(doc_rows()) == Parameters.names()


@pytest.mark.parametrize("row", Parameters.describe(), ids=lambda r: r["name"])
def test_row_matches_code(row):
    default, unit, source, allowed = doc_rows()[row["name"]]
    assert default == format_default(row["default"])
    assert allowed == row["range"]
    assert unit == row["unit"]
    assert source == " ".join(row["source"].split())
    assert source, "every default needs a source"


def test_documented_defaults_are_the_dataclass_defaults():
    fields = {f.name: f.default for f in dataclasses.fields(Parameters)}
    for row in Parameters.describe():
        assert row["default"] == fields[row["name"]] == getattr(Parameters(), row["name"])


def test_documented_default_parses_back_as_a_manifest_value(tmp_path):
    # Each documented default, written as-is in [parameters], loads and gives the default.
    import shutil

    src = Path(__file__).resolve().parents[1] / "instances" / "tiny"
    dst = tmp_path / "tiny"
    shutil.copytree(src, dst)
    lines = "\n".join(f"{name} = {cells[0]}" for name, cells in doc_rows().items())
    manifest = dst / "instance.toml"
    text = manifest.read_text().split("[parameters]")[0]
    manifest.write_text(text + "[parameters]\n" + lines + "\n")
    assert load_instance(dst).parameters == Parameters()


def test_layering_order(tiny_copy):
    """defaults < manifest < scenario file < command line, as the document says."""
    assert "defaults" in doc_text() and "scenario file" in doc_text()
    manifest = tiny_copy / "instance.toml"
    manifest.write_text(manifest.read_text().replace("[parameters]\n", "[parameters]\nspeed_kmh = 50\n"))
    inst = load_instance(tiny_copy)
    assert inst.parameters.coverage_minutes == 15  # manifest over default (20)
    assert inst.parameters.speed_kmh == 50
    assert inst.parameters.detour_factor == Parameters().detour_factor  # default kept
    scenario = inst.with_parameters({"coverage_minutes": 25, "budget": 1e5}, file="scenario.toml")
    assert (scenario.parameters.coverage_minutes, scenario.parameters.budget) == (25, 1e5)
    assert scenario.parameters.speed_kmh == 50  # manifest kept under the scenario
    cli = scenario.with_parameters({"coverage_minutes": "30"}, file="options")
    assert cli.parameters.coverage_minutes == 30 and cli.parameters.budget == 1e5
    assert load_instance(tiny_copy, overrides={"coverage_minutes": 12}).parameters.coverage_minutes == 12
    with pytest.raises(InputError, match=r"^scenario\.toml, column 'cabinet_min_days'"):
        inst.with_parameters({"cabinet_min_days": 9}, file="scenario.toml")
