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


# --- every default is sourced or called an assumption (issue 16, item 5) -------------

CITED = ("Cour des comptes 2024", "DREES", "Hubert 2010", "DGOS", "Ballou", "Barlet")


@pytest.mark.parametrize("row", Parameters.describe(), ids=lambda r: r["name"])
def test_every_parameter_has_a_source_line(row):
    source = " ".join(row["source"].split())
    kinds = [source.startswith("assumption:"), source.startswith("setting:"),
             any(c in source for c in CITED)]
    assert any(kinds), (f"{row['name']}: the source must cite a document ({', '.join(CITED)}) or "
                        "start with 'assumption:' or 'setting:'")
    if "Cour des comptes 2024" in source:  # locatable: a chapter, part, annex or note
        assert re.search(r"chapter|annex|note \d+", source), row["name"]


SOURCES = Path(__file__).resolve().parents[1].parent / "shared" / "sources"
# What each Cour/Hubert citation says, as the French text of the report has it.
QUOTED = {
    "consultations_per_day_salaried": ("cour-des-comptes-2024-soins-de-premier-recours.txt",
                                       "12,7 consultations par jour"),
    "consultations_per_day_liberal": ("cour-des-comptes-2024-soins-de-premier-recours.txt",
                                      "la moyenne des cabinets libéraux est supérieure à 3"),
    "working_weeks": ("cour-des-comptes-2024-soins-de-premier-recours.txt", "5,7 semaines"),
    "days_per_fte": ("cour-des-comptes-2024-soins-de-premier-recours.txt", "54 heures sur 9,5 demi-journées"),
    "cabinet_min_days": ("cour-des-comptes-2024-soins-de-premier-recours.txt",
                         "une présence minimale équivalant à une journée par semaine"),
    "max_travel_minutes": ("cour-des-comptes-2024-soins-de-premier-recours.txt", "distantes de moins d’une heure"),
    "coverage_minutes": ("cour-des-comptes-2024-soins-de-premier-recours.txt", "distance de vingt minutes"),
    "centre_cost_per_fte": ("hubert-2010-medecine-de-proximite.txt", "déficit « structurel » de 10% à 50%"),
}


@pytest.mark.parametrize("name", sorted(QUOTED))
def test_cited_figures_are_in_the_source_reports(name):
    file, phrase = QUOTED[name]
    path = SOURCES / file
    if not path.is_file():
        pytest.fail(f"source report {path} is missing")
    text = " ".join(path.read_text(encoding="utf-8").split())
    assert phrase in text, f"{name}: '{phrase}' not found in {file}"


def test_misattributions_of_issue_16_are_gone():
    src = {r["name"]: r["source"] for r in Parameters.describe()}
    assert src["centre_cost_per_fte"].startswith("assumption:")  # the Cour gives no such figure
    assert src["centre_max_fte"].startswith("assumption:") and "Cour" not in src["centre_max_fte"]
    assert "Barlet" not in src["coverage_minutes"]  # the 2012 APL stopped at 15 minutes
    assert Parameters().consultations_per_day_salaried == 12.7  # the Cour's own per-day figure
    assert src["max_secondary_days_per_gp"].startswith("assumption:")  # a minimum, not a cap
    assert src["consultations_per_inhabitant"].startswith("assumption:")  # supply used as need
