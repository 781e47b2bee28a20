"""Inputs that used to be read silently wrong, or refused with a misleading message
(issue 17 items 5 and 11): each is now read as meant or refused in one located line, exit 2."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from optisite.cli import main
from optisite.errors import InputError
from optisite.instance import MAX_POINT_TO_POLYGON_KM, load_instance

gpd = pytest.importorskip("geopandas")
ROOT = Path(__file__).resolve().parents[1]
NIEVRE = ROOT / "instances" / "nievre-58"


def refused(folder: Path, *, file: str, column: str | None = None, row: int | None = None) -> str:
    """load_instance raises a located InputError; `optisite validate` prints that one line, exit 2."""
    with pytest.raises(InputError) as info:
        load_instance(folder)
    err = info.value
    msg = str(err)
    assert err.file == file, msg
    if column is not None:
        assert err.column == column, msg
    if row is not None:
        assert err.row == row, msg
    assert "\n" not in msg and "Fix:" in msg
    result = CliRunner().invoke(main, ["validate", str(folder)])
    assert result.exit_code == 2, result.output
    assert [line for line in result.output.splitlines() if line.strip()] == [f"error: {msg}"]
    return msg


def set_zones(folder: Path, entry: str) -> None:
    manifest = folder / "instance.toml"
    manifest.write_text(manifest.read_text().replace('zones = "zones.csv"', f"zones = {entry}"))


def tiny_zones(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "zones.csv", dtype={"zone_id": str})


def squares(z: pd.DataFrame, half: float = 0.04):
    return gpd.GeoSeries.from_xy(z["lon"], z["lat"]).buffer(half, cap_style="square")


# ---------------------------------------------------------------------------------
# a GeoPackage of several layers
# ---------------------------------------------------------------------------------

@pytest.fixture
def two_layers(tiny_copy):
    """zones.gpkg with a layer 'x10' (population times ten) written first, then 'zones'."""
    z = tiny_zones(tiny_copy)
    wrong = z.assign(population=z["population"] * 10)
    gpd.GeoDataFrame(wrong, geometry=squares(z), crs="EPSG:4326").to_file(
        tiny_copy / "zones.gpkg", layer="x10", driver="GPKG")
    gpd.GeoDataFrame(z, geometry=squares(z), crs="EPSG:4326").to_file(
        tiny_copy / "zones.gpkg", layer="zones", driver="GPKG", mode="a")
    return tiny_copy


def test_several_layers_without_a_name_are_refused(two_layers):
    set_zones(two_layers, '"zones.gpkg"')
    msg = refused(two_layers, file="zones.gpkg")
    assert "2 layers ('x10', 'zones')" in msg
    assert 'zones = { path = "zones.gpkg", layer = "x10" }' in msg


def test_the_named_layer_is_read(two_layers):
    reference = load_instance(two_layers).zones["population"]  # the CSV still named
    set_zones(two_layers, '{ path = "zones.gpkg", layer = "zones" }')
    inst = load_instance(two_layers)
    assert (inst.zones["population"] == reference).all()
    set_zones_again = (two_layers / "instance.toml").read_text().replace('layer = "zones"', 'layer = "x10"')
    (two_layers / "instance.toml").write_text(set_zones_again)
    assert (load_instance(two_layers).zones["population"] == reference * 10).all()


@pytest.mark.parametrize("entry, column, contains", [
    ('{ path = "zones.gpkg", layer = "communes" }', "tables.zones.layer", "no layer 'communes'"),
    ('{ path = "zones.gpkg", layer = "" }', "tables.zones.layer", "non-empty"),
    ('{ path = "zones.gpkg", layr = "zones" }', "tables.zones.layr", "unknown key"),
    ('{ layer = "zones" }', "tables.zones", "no path"),
    ('{ path = "zones.csv", layer = "zones" }', "tables.zones.layer", "no layers"),
])
def test_bad_layer_entries(two_layers, entry, column, contains):
    set_zones(two_layers, entry)
    assert contains in refused(two_layers, file="instance.toml", column=column)


def test_single_layer_needs_no_name(tiny_copy):
    z = tiny_zones(tiny_copy)
    gpd.GeoDataFrame(z, geometry=squares(z), crs="EPSG:4326").to_file(tiny_copy / "zones.gpkg", driver="GPKG")
    set_zones(tiny_copy, '"zones.gpkg"')
    assert len(load_instance(tiny_copy).zones) == 6


# ---------------------------------------------------------------------------------
# points that disagree with their polygons
# ---------------------------------------------------------------------------------

@pytest.fixture
def nievre_copy(tmp_path):
    dst = tmp_path / "nievre"
    shutil.copytree(NIEVRE, dst)
    return dst


def test_swapped_lon_lat_beside_polygons_are_refused(nievre_copy):
    z = gpd.read_file(nievre_copy / "zones.gpkg")
    z["lon"], z["lat"] = z["lat"].copy(), z["lon"].copy()  # points in the Indian Ocean
    z.to_file(nievre_copy / "zones.gpkg", layer="zones", driver="GPKG")
    msg = refused(nievre_copy, file="zones.gpkg", column="lon", row=1)
    assert "lon and lat look swapped" in msg and "km from its own polygon" in msg


def test_point_far_from_its_polygon_is_refused(nievre_copy):
    z = gpd.read_file(nievre_copy / "zones.gpkg")
    z.loc[4, "lon"] = z.loc[4, "lon"] + 60  # 6,000 km east, not a swap
    z.to_file(nievre_copy / "zones.gpkg", layer="zones", driver="GPKG")
    msg = refused(nievre_copy, file="zones.gpkg", column="lon", row=5)
    assert f"within {MAX_POINT_TO_POLYGON_KM:g} km" in msg and "swapped" not in msg


def test_point_near_its_polygon_is_accepted(tiny_copy):
    """A point off its polygon by less than the limit (a generalised boundary) loads."""
    z = tiny_zones(tiny_copy)
    geoms = squares(z, half=0.01).translate(xoff=0.3)  # about 20 km east of the points at 46° N
    gpd.GeoDataFrame(z, geometry=geoms, crs="EPSG:4326").to_file(tiny_copy / "zones.gpkg", driver="GPKG")
    set_zones(tiny_copy, '"zones.gpkg"')
    assert len(load_instance(tiny_copy).zones) == 6
    geoms = squares(z, half=0.01).translate(xoff=0.9)  # about 68 km
    gpd.GeoDataFrame(z, geometry=geoms, crs="EPSG:4326").to_file(tiny_copy / "zones.gpkg", driver="GPKG")
    assert "km from its own polygon" in refused(tiny_copy, file="zones.gpkg", column="lon", row=1)


def test_site_far_from_its_zone_polygon_is_refused(tiny_copy):
    z = tiny_zones(tiny_copy)
    gpd.GeoDataFrame(z, geometry=squares(z), crs="EPSG:4326").to_file(tiny_copy / "zones.gpkg", driver="GPKG")
    set_zones(tiny_copy, '"zones.gpkg"')
    (tiny_copy / "sites.csv").write_text(
        "site_id,kind,zone_id,lon,lat\nCS-B,cabinet_secondaire,01002,4.1,46.0\n"
        "CS-D,cabinet_secondaire,01004,46.0,4.3\n")
    msg = refused(tiny_copy, file="sites.csv", column="lon", row=3)
    assert "site 'CS-D'" in msg and "its zone '01004'" in msg and "swapped" in msg


# ---------------------------------------------------------------------------------
# French spreadsheets: ';' with decimal comma and '.' thousands
# ---------------------------------------------------------------------------------

ZONES_SC = "zone_id;name;population;lon;lat\n"
TAIL = ("01002;B;800;4,1;46\n01003;C;1500;4,2;46\n01004;D;300;4,3;46\n"
        "2A004;E;2000;4,4;46\n2A005;F;600;4,5;46\n")


def test_dot_in_a_semicolon_file_is_not_silently_a_decimal_point(tiny_copy):
    (tiny_copy / "zones.csv").write_text(ZONES_SC + "01001;A;1.200;4,0;46\n" + TAIL)
    msg = refused(tiny_copy, file="zones.csv", column="population", row=2)
    assert "'1.200' is ambiguous" in msg and "write 1200" in msg and "1,200" in msg


def test_dot_thousands_beside_a_decimal_comma_is_read_as_french(tiny_copy):
    (tiny_copy / "zones.csv").write_text(ZONES_SC + "01001;A;1.200,5;4,0;46\n" + TAIL)
    assert load_instance(tiny_copy).zones.loc["01001", "population"] == 1200.5
    (tiny_copy / "zones.csv").write_text(ZONES_SC + "01001;A;12.345.678;4,0;46\n"
                                         + TAIL.replace("800", "800,5"))
    zones = load_instance(tiny_copy).zones
    assert zones.loc["01001", "population"] == 12_345_678 and zones.loc["01002", "population"] == 800.5


def test_dot_that_is_no_thousands_separator_beside_a_comma_is_refused(tiny_copy):
    (tiny_copy / "zones.csv").write_text(ZONES_SC + "01001;A;1.2;4,0;46\n" + TAIL.replace("800", "800,5"))
    msg = refused(tiny_copy, file="zones.csv", column="population", row=2)
    assert "not a thousands separator" in msg and "row 3 writes a decimal comma" in msg


def test_semicolon_file_with_decimal_points_is_read(tiny_copy):
    """A program's ';' export with decimal points ('4.1', '46.05') reads as written."""
    text = (tiny_copy / "zones.csv").read_text().replace(",", ";").replace("46.00", "46.05")
    (tiny_copy / "zones.csv").write_text(text)
    zones = load_instance(tiny_copy).zones
    assert zones.loc["01002", "lon"] == pytest.approx(4.1) and zones.loc["01002", "lat"] == pytest.approx(46.05)


# ---------------------------------------------------------------------------------
# item 11: table paths that are no files, cells too long
# ---------------------------------------------------------------------------------

def test_table_path_that_is_a_folder(tiny_copy):
    (tiny_copy / "data").mkdir()
    set_zones(tiny_copy, '"data"')
    msg = refused(tiny_copy, file="instance.toml", column="tables.zones")
    assert "'data' is a folder, not a file" in msg and "does not exist" not in msg


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_table_path_that_is_a_fifo(tiny_copy):
    os.mkfifo(tiny_copy / "zones.fifo.csv")
    set_zones(tiny_copy, '"zones.fifo.csv"')
    msg = refused(tiny_copy, file="instance.toml", column="tables.zones")  # and does not block
    assert "named pipe (FIFO)" in msg and "does not exist" not in msg


@pytest.mark.parametrize("fast", [False, True])
def test_cell_over_128_kb_is_named_as_such(tiny_copy, monkeypatch, fast):
    import optisite.tables

    monkeypatch.setattr(optisite.tables, "FAST_CSV_BYTES", 0 if fast else 10**12)
    lines = (tiny_copy / "zones.csv").read_text().splitlines()
    lines[0] += ",note"
    lines[1:] = [line + ",short" for line in lines[1:]]
    lines[3] = lines[3][:-len("short")] + "x" * 200_000
    (tiny_copy / "zones.csv").write_text("\n".join(lines) + "\n")
    msg = refused(tiny_copy, file="zones.csv", row=4)
    assert "a cell is longer than 128 KB" in msg and "quote" not in msg


def test_unclosed_quote_before_128_kb_names_the_quote(tiny_copy):
    lines = (tiny_copy / "zones.csv").read_text().splitlines()
    lines[2] = lines[2].replace("Village B", '"Village B')
    (tiny_copy / "zones.csv").write_text("\n".join(lines + ["01009,Z,1,4,46"] * 12000) + "\n")
    msg = refused(tiny_copy, file="zones.csv", row=3)
    assert "quote" in msg and "not closed" in msg


def test_shipped_instances_still_load():
    for name in ("nievre-58", "ille-et-vilaine-35", "rhone-69", "tiny"):
        inst = load_instance(ROOT / "instances" / name)
        assert len(inst.zones) > 0 and np.isfinite(inst.zones["lon"]).all()
