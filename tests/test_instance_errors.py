"""Every bad input of DESIGN section 7 gives one located line and exit code 2.

Each case corrupts a copy of ``instances/tiny`` in one way, then checks that
``load_instance`` raises :class:`InputError` whose message names the file and the
row or column, fits on one line, and that ``optisite validate`` exits with 2 and
prints that line without a traceback. The second half checks that harmless
variations of the same instance (BOM, ``;`` and decimal commas, CRLF, extra
columns, GeoPackage/GeoParquet zones, a projected crs) load to the same content.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from optisite.cli import main
from optisite.errors import InputError
from optisite.instance import load_instance


# ---------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------

def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> None:
    (folder / name).write_bytes(text.encode(encoding))


def replace_in(folder: Path, name: str, old: str, new: str) -> None:
    text = (folder / name).read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    (folder / name).write_text(text.replace(old, new, 1), encoding="utf-8")


def set_parameters(folder: Path, lines: str) -> None:
    replace_in(folder, "instance.toml", "[parameters]\n", "[parameters]\n" + lines + "\n")


def cli_validate(folder: Path):
    return CliRunner().invoke(main, ["validate", str(folder)])


def assert_refused(folder: Path, *, file: str, row: int | None = None, column: str | None = None,
                   contains: str | None = None) -> str:
    """Loading fails with a located one-line InputError; the CLI exits 2 without traceback."""
    with pytest.raises(InputError) as info:
        load_instance(folder)
    err = info.value
    msg = err.message()
    assert "\n" not in msg and "\r" not in msg, msg
    assert msg == str(err)
    assert msg.startswith(file), msg
    assert err.file == file
    assert row is not None or column is not None, "a test must say which row or column to expect"
    if row is not None:
        assert err.row == row, msg
        assert f"row {row}" in msg
    if column is not None:
        assert err.column == column, msg
        assert f"column '{column}'" in msg
    if contains is not None:
        assert contains.lower() in msg.lower(), msg
    assert "Fix:" in msg, msg
    result = cli_validate(folder)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"error: {msg}"], result.output
    return msg


# ---------------------------------------------------------------------------------
# missing files, formats, manifest
# ---------------------------------------------------------------------------------

def test_missing_table_file(tiny_copy):
    (tiny_copy / "zones.csv").unlink()
    assert_refused(tiny_copy, file="instance.toml", column="tables.zones", contains="does not exist")


def test_missing_manifest(tmp_path):
    (tmp_path / "zones.csv").write_text("zone_id\n")
    with pytest.raises(InputError) as info:
        load_instance(tmp_path)
    assert "instance.toml" in str(info.value)
    result = cli_validate(tmp_path)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_manifest_without_zones_table(tiny_copy):
    replace_in(tiny_copy, "instance.toml", 'zones = "zones.csv"\n', "")
    assert_refused(tiny_copy, file="instance.toml", column="tables.zones")


def test_empty_file(tiny_copy):
    write(tiny_copy, "zones.csv", "")
    with pytest.raises(InputError) as info:
        load_instance(tiny_copy)
    assert str(info.value).startswith("zones.csv: the file is empty")
    assert cli_validate(tiny_copy).exit_code == 2


def test_file_of_blank_lines_is_empty(tiny_copy):
    write(tiny_copy, "sites.csv", "\n \r\n\n")
    with pytest.raises(InputError, match=r"^sites\.csv: the file is empty"):
        load_instance(tiny_copy)


def test_header_without_rows(tiny_copy):
    write(tiny_copy, "zones.csv", "zone_id,name,population,lon,lat\n")
    with pytest.raises(InputError, match=r"^zones\.csv: the table has no rows"):
        load_instance(tiny_copy)


def test_wrong_format_suffix(tiny_copy):
    (tiny_copy / "zones.csv").rename(tiny_copy / "zones.xlsx")
    replace_in(tiny_copy, "instance.toml", '"zones.csv"', '"zones.xlsx"')
    with pytest.raises(InputError, match=r"^zones\.xlsx: unknown table format '\.xlsx'"):
        load_instance(tiny_copy)
    assert cli_validate(tiny_copy).exit_code == 2


def test_wrong_format_content(tiny_copy):
    # A CSV renamed .gpkg: the reader fails, the user gets one line naming the file.
    (tiny_copy / "zones.csv").rename(tiny_copy / "zones.gpkg")
    replace_in(tiny_copy, "instance.toml", '"zones.csv"', '"zones.gpkg"')
    with pytest.raises(InputError) as info:
        load_instance(tiny_copy)
    msg = str(info.value)
    assert msg.startswith("zones.gpkg: cannot read the file") and "\n" not in msg
    result = cli_validate(tiny_copy)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_binary_file_named_csv(tiny_copy):
    (tiny_copy / "zones.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    with pytest.raises(InputError, match=r"^zones\.csv: the file contains NUL bytes"):
        load_instance(tiny_copy)


def test_bad_toml(tiny_copy):
    replace_in(tiny_copy, "instance.toml", "budget = 60000", "budget = = 60000")
    assert_refused(tiny_copy, file="instance.toml", row=13, contains="not valid TOML")


def test_unknown_manifest_key(tiny_copy):
    replace_in(tiny_copy, "instance.toml", 'supply_source = "user"', 'supply_source = "user"\nbugdet = 5')
    assert_refused(tiny_copy, file="instance.toml", column="bugdet", contains="unknown key")


def test_unknown_table_key(tiny_copy):
    replace_in(tiny_copy, "instance.toml", 'travel = "travel.csv"', 'travel = "travel.csv"\nroads = "x.csv"')
    assert_refused(tiny_copy, file="instance.toml", column="tables.roads")


def test_supply_source_of_wrong_type(tiny_copy):
    replace_in(tiny_copy, "instance.toml", 'supply_source = "user"', 'supply_source = ["user"]')
    assert_refused(tiny_copy, file="instance.toml", column="supply_source")


def test_unknown_crs(tiny_copy):
    replace_in(tiny_copy, "instance.toml", 'supply_source = "user"', 'supply_source = "user"\ncrs = "EPSG:999999"')
    assert_refused(tiny_copy, file="instance.toml", column="crs", contains="unknown crs")


# ---------------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------------

def test_unknown_parameter(tiny_copy):
    set_parameters(tiny_copy, "coverage_minute = 30")
    msg = assert_refused(tiny_copy, file="instance.toml", column="coverage_minute",
                         contains="unknown parameter")
    assert "coverage_minutes" in msg  # the fix lists the real names


@pytest.mark.parametrize("line, column, contains", [
    ('speed_kmh = "fast"', "speed_kmh", "not a number"),
    ("coverage_minutes = -5", "coverage_minutes", "below the minimum"),
    ("budget = inf", "budget", "not a finite number"),
    ("budget = nan", "budget", "not a finite number"),
    ("travel_symmetric = 3", "travel_symmetric", "not true or false"),
    ('apl_decay = "drees2099"', "apl_decay", "not a known value"),
    ("detour_factor = [1, 2]", "detour_factor", "not a number"),
])
def test_bad_parameter_value(tiny_copy, line, column, contains):
    replace_in(tiny_copy, "instance.toml", "coverage_minutes = 15\n", "")
    replace_in(tiny_copy, "instance.toml", "budget = 60000\n", "")
    set_parameters(tiny_copy, line)
    assert_refused(tiny_copy, file="instance.toml", column=column, contains=contains)


def test_parameter_min_above_max(tiny_copy):
    set_parameters(tiny_copy, "centre_min_fte = 12\ncentre_max_fte = 4")
    assert_refused(tiny_copy, file="instance.toml", column="centre_min_fte", contains="larger than")


def test_cli_style_override_is_checked(tiny_copy):
    with pytest.raises(InputError) as info:
        load_instance(tiny_copy, overrides={"budget": "lots"})
    assert str(info.value).startswith("options, column 'budget': 'lots' is not a number")


# ---------------------------------------------------------------------------------
# path confinement
# ---------------------------------------------------------------------------------

def test_path_leaving_folder(tiny_copy):
    replace_in(tiny_copy, "instance.toml", '"zones.csv"', '"../../etc/passwd"')
    assert_refused(tiny_copy, file="instance.toml", column="tables.zones", contains="outside the instance folder")


def test_absolute_path(tiny_copy):
    replace_in(tiny_copy, "instance.toml", '"sites.csv"', '"/etc/passwd"')
    assert_refused(tiny_copy, file="instance.toml", column="tables.sites", contains="absolute")


def test_symlink_escaping_folder(tiny_copy, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text((tiny_copy / "zones.csv").read_text())
    (tiny_copy / "zones.csv").unlink()
    os.symlink(outside, tiny_copy / "zones.csv")
    assert_refused(tiny_copy, file="instance.toml", column="tables.zones", contains="outside the instance folder")


def test_symlinked_folder_escaping(tiny_copy, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "z.csv").write_text((tiny_copy / "zones.csv").read_text())
    os.symlink(tmp_path / "elsewhere", tiny_copy / "data")
    replace_in(tiny_copy, "instance.toml", '"zones.csv"', '"data/z.csv"')
    assert_refused(tiny_copy, file="instance.toml", column="tables.zones", contains="outside")


def test_symlink_inside_folder_is_accepted(tiny_copy):
    (tiny_copy / "tables").mkdir()
    (tiny_copy / "zones.csv").rename(tiny_copy / "tables" / "zones.csv")
    os.symlink(tiny_copy / "tables" / "zones.csv", tiny_copy / "zones.csv")
    assert len(load_instance(tiny_copy).zones) == 6


# ---------------------------------------------------------------------------------
# zones
# ---------------------------------------------------------------------------------

def test_missing_required_column(tiny_copy):
    write(tiny_copy, "zones.csv", "zone_id,name,lon,lat\n01001,A,4.0,46.0\n")
    msg = assert_refused(tiny_copy, file="zones.csv", column="population", contains="required column")
    assert "columns found: zone_id, name, lon, lat" in msg


def test_missing_lat_column(tiny_copy):
    replace_in(tiny_copy, "zones.csv", ",lat\n", ",latitude\n")
    assert_refused(tiny_copy, file="zones.csv", column="lat", contains="required column")


def test_empty_id(tiny_copy):
    replace_in(tiny_copy, "zones.csv", "01002,Village B", ",Village B")
    assert_refused(tiny_copy, file="zones.csv", row=3, column="zone_id", contains="empty value")


def test_duplicate_zone_id(tiny_copy):
    replace_in(tiny_copy, "zones.csv", "01004,Village D", "01002,Village D")
    msg = assert_refused(tiny_copy, file="zones.csv", row=5, column="zone_id", contains="duplicate id '01002'")
    assert "first seen at row 3" in msg


def test_duplicate_site_id(tiny_copy):
    replace_in(tiny_copy, "sites.csv", "CS-F,", "CS-B,")
    assert_refused(tiny_copy, file="sites.csv", row=4, column="site_id", contains="duplicate")


def test_duplicate_practice_id(tiny_copy):
    replace_in(tiny_copy, "practices.csv", "P-C,", "P-A,")
    assert_refused(tiny_copy, file="practices.csv", row=3, column="practice_id", contains="duplicate")


def test_duplicate_column(tiny_copy):
    replace_in(tiny_copy, "zones.csv", "zone_id,name,", "zone_id,population,")
    assert_refused(tiny_copy, file="zones.csv", column="population", contains="appears twice")


def test_id_with_control_character(tiny_copy):
    replace_in(tiny_copy, "sites.csv", "CS-B,", '"CS\x07B",')
    assert_refused(tiny_copy, file="sites.csv", row=2, column="site_id", contains="control character")


@pytest.mark.parametrize("value, contains", [
    ("-800", "below 0"),
    ("huit cents", "is not a population"),
    ("nan", "is not a population"),
    ("inf", "not a finite number"),
    ("-inf", "not a finite number"),
    ("1e400", "not a finite number"),
    ("", "empty value"),
    ("5e12", "above"),
])
def test_bad_population(tiny_copy, value, contains):
    replace_in(tiny_copy, "zones.csv", "Village B,800,", f"Village B,{value},")
    assert_refused(tiny_copy, file="zones.csv", row=3, column="population", contains=contains)


@pytest.mark.parametrize("old, new, column", [
    ("4.10,46.00", "200,46.00", "lon"),
    ("4.10,46.00", "4.10,-95", "lat"),
    ("4.10,46.00", "4.10,abc", "lat"),
    ("4.10,46.00", "4.10,", "lat"),
    ("4.10,46.00", "nan,46", "lon"),
])
def test_bad_coordinates(tiny_copy, old, new, column):
    replace_in(tiny_copy, "zones.csv", old, new)
    assert_refused(tiny_copy, file="zones.csv", row=3, column=column)


def test_negative_weight(tiny_copy):
    replace_in(tiny_copy, "zones.csv", "lat\n", "lat,weight\n")
    text = (tiny_copy / "zones.csv").read_text().splitlines()
    text = [text[0]] + [line + (",-1" if i == 3 else ",1") for i, line in enumerate(text[1:], start=1)]
    write(tiny_copy, "zones.csv", "\n".join(text) + "\n")
    assert_refused(tiny_copy, file="zones.csv", row=4, column="weight", contains="below 0")


def test_truncated_row(tiny_copy):
    replace_in(tiny_copy, "zones.csv", "01003,Village C,1500,4.20,46.00", "01003,Village C,1500")
    assert_refused(tiny_copy, file="zones.csv", row=4, contains="truncated")


def test_too_many_fields(tiny_copy):
    replace_in(tiny_copy, "zones.csv", "01003,Village C,1500,4.20,46.00", "01003,Village C,1,500,4.20,46.00")
    assert_refused(tiny_copy, file="zones.csv", row=4, contains="6 fields but the header has 5")


def test_row_numbers_count_blank_lines(tiny_copy):
    replace_in(tiny_copy, "zones.csv", "01002,Village B,800,", "\n\n01002,Village B,-8,")
    assert_refused(tiny_copy, file="zones.csv", row=5, column="population")


def test_unclosed_quote(tiny_copy):
    replace_in(tiny_copy, "zones.csv", "Village B", '"Village B')
    with pytest.raises(InputError) as info:
        load_instance(tiny_copy)
    assert str(info.value).startswith("zones.csv, row ")
    assert cli_validate(tiny_copy).exit_code == 2


# ---------------------------------------------------------------------------------
# sites and practices
# ---------------------------------------------------------------------------------

def test_unknown_site_kind(tiny_copy):
    replace_in(tiny_copy, "sites.csv", "CS-D,cabinet_secondaire", "CS-D,maison_de_sante")
    assert_refused(tiny_copy, file="sites.csv", row=3, column="kind", contains="unknown kind 'maison_de_sante'")


def test_site_in_unknown_zone(tiny_copy):
    # A commune code that lost its leading zero is the classic spreadsheet accident.
    replace_in(tiny_copy, "sites.csv", "cabinet_secondaire,01004", "cabinet_secondaire,1004")
    assert_refused(tiny_copy, file="sites.csv", row=3, column="zone_id", contains="'1004' is not a zone_id")


def test_practice_in_unknown_zone(tiny_copy):
    replace_in(tiny_copy, "practices.csv", "P-C,01003", "P-C,99999")
    assert_refused(tiny_copy, file="practices.csv", row=3, column="zone_id")


@pytest.mark.parametrize("value, contains", [("-2", "below 0"), ("deux", "not a number of FTE"), ("", "empty")])
def test_bad_physicians(tiny_copy, value, contains):
    replace_in(tiny_copy, "practices.csv", "P-C,01003,2", f"P-C,01003,{value}")
    assert_refused(tiny_copy, file="practices.csv", row=3, column="physicians", contains=contains)


def test_negative_site_cost(tiny_copy):
    replace_in(tiny_copy, "sites.csv", "CS-D,cabinet_secondaire,01004,10000", "CS-D,cabinet_secondaire,01004,-1")
    assert_refused(tiny_copy, file="sites.csv", row=3, column="fixed_cost")


def test_site_min_days_above_max_days(tiny_copy):
    write(tiny_copy, "sites.csv",
          "site_id,kind,zone_id,min_days,max_days\nCS-B,cabinet_secondaire,01002,3,2\n")
    assert_refused(tiny_copy, file="sites.csv", row=2, column="min_days", contains="above max_days")


def test_site_min_days_above_kind_default(tiny_copy):
    # The cell is fine alone; it conflicts with the manifest's kind default.
    write(tiny_copy, "sites.csv",
          "site_id,kind,zone_id,min_days\nCS-B,cabinet_secondaire,01002,1\nCS-D,cabinet_secondaire,01004,4\n")
    set_parameters(tiny_copy, "cabinet_max_days = 3")
    assert_refused(tiny_copy, file="sites.csv", row=3, column="min_days", contains="after kind defaults")


def test_site_days_beyond_a_week(tiny_copy):
    write(tiny_copy, "sites.csv", "site_id,kind,zone_id,max_days\nCS-B,cabinet_secondaire,01002,40\n")
    assert_refused(tiny_copy, file="sites.csv", row=2, column="max_days", contains="above 7")


def test_site_lon_without_lat(tiny_copy):
    write(tiny_copy, "sites.csv", "site_id,kind,zone_id,lon,lat\nCS-B,cabinet_secondaire,01002,4.1,\n")
    assert_refused(tiny_copy, file="sites.csv", row=2, column="lat", contains="other coordinate")


def test_missing_practice_column(tiny_copy):
    write(tiny_copy, "practices.csv", "practice_id,zone_id,doctors\nP-A,01001,3\n")
    assert_refused(tiny_copy, file="practices.csv", column="physicians", contains="required column")


# ---------------------------------------------------------------------------------
# travel
# ---------------------------------------------------------------------------------

def test_travel_from_unknown_zone(tiny_copy):
    replace_in(tiny_copy, "travel.csv", "01002,01003,10", "01002,58001,10")
    assert_refused(tiny_copy, file="travel.csv", row=8, column="to_id", contains="'58001' is not a zone_id")


def test_travel_to_unknown_zone(tiny_copy):
    replace_in(tiny_copy, "travel.csv", "2A005,01001,50", "2B005,01001,50")
    assert_refused(tiny_copy, file="travel.csv", row=27, column="from_id")


def test_duplicate_travel_pair(tiny_copy):
    replace_in(tiny_copy, "travel.csv", "01001,01003,20", "01001,01002,12")
    assert_refused(tiny_copy, file="travel.csv", row=3, column="to_id", contains="given twice")


@pytest.mark.parametrize("value, contains", [("-10", "below 0"), ("dix", "not a travel time"), ("", "empty")])
def test_bad_travel_minutes(tiny_copy, value, contains):
    replace_in(tiny_copy, "travel.csv", "01002,01003,10", f"01002,01003,{value}")
    assert_refused(tiny_copy, file="travel.csv", row=8, column="minutes", contains=contains)


def test_travel_missing_column(tiny_copy):
    replace_in(tiny_copy, "travel.csv", "from_id,to_id,minutes", "from_id,to_id,min")
    assert_refused(tiny_copy, file="travel.csv", column="minutes", contains="required column")


# ---------------------------------------------------------------------------------
# valid variations load to the same content
# ---------------------------------------------------------------------------------

@pytest.fixture
def reference(tiny_copy):
    return load_instance(tiny_copy)


def assert_same_tables(a, b):
    pd.testing.assert_frame_equal(a.zones[["name", "population", "lon", "lat", "weight", "demand"]],
                                  b.zones[["name", "population", "lon", "lat", "weight", "demand"]])
    pd.testing.assert_frame_equal(a.sites, b.sites)
    pd.testing.assert_frame_equal(a.practices, b.practices)


def test_ids_stay_text(reference):
    assert list(reference.zones.index) == ["01001", "01002", "01003", "01004", "2A004", "2A005"]
    assert reference.sites.loc["CS-B", "zone_id"] == "01002"
    assert reference.zones.index.dtype == object
    assert reference.travel.minutes(["01001"], ["01002"])[0] == 10.0


def test_practice_name_falls_back_to_id(reference):
    assert list(reference.practices["name"]) == ["P-A", "P-C"]


def test_site_name_falls_back_to_zone_name(reference):
    assert reference.sites.loc["CS-B", "name"] == "Village B"


def test_bom(tiny_copy, reference):
    for name in ("zones.csv", "sites.csv", "practices.csv", "travel.csv"):
        (tiny_copy / name).write_bytes(b"\xef\xbb\xbf" + (tiny_copy / name).read_bytes())
    inst = load_instance(tiny_copy)
    assert_same_tables(inst, reference)
    assert inst.fingerprint == reference.fingerprint


def test_bom_in_manifest(tiny_copy, reference):
    path = tiny_copy / "instance.toml"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_instance(tiny_copy).fingerprint == reference.fingerprint


def test_semicolon_and_decimal_comma(tiny_copy, reference):
    text = (tiny_copy / "zones.csv").read_text()
    text = re.sub(r"(\d)\.(\d)", r"\1,\2", text.replace(",", ";"))
    assert "4,10;46,00" in text
    write(tiny_copy, "zones.csv", text)
    inst = load_instance(tiny_copy)
    assert_same_tables(inst, reference)
    assert inst.fingerprint == reference.fingerprint


def test_semicolon_with_thousands_nbsp(tiny_copy):
    write(tiny_copy, "zones.csv", "zone_id;population;lon;lat\n01001;1\u00a0500;4,0;46,0\n"
          "01002;2;4,1;46\n01003;3;4,2;46\n01004;4;4,3;46\n2A004;5;4,4;46\n2A005;6;4,5;46\n")
    assert load_instance(tiny_copy).zones.loc["01001", "population"] == 1500


def test_tab_separated(tiny_copy, reference):
    write(tiny_copy, "travel.csv", (tiny_copy / "travel.csv").read_text().replace(",", "\t"))
    assert load_instance(tiny_copy).fingerprint == reference.fingerprint


def test_crlf(tiny_copy, reference):
    for name in ("zones.csv", "sites.csv", "practices.csv", "travel.csv", "instance.toml"):
        (tiny_copy / name).write_bytes((tiny_copy / name).read_bytes().replace(b"\n", b"\r\n"))
    assert load_instance(tiny_copy).fingerprint == reference.fingerprint


def test_windows_1252_names(tiny_copy):
    replace_in(tiny_copy, "zones.csv", "Village B", "Saint-Léger-de-Fougeret")
    data = (tiny_copy / "zones.csv").read_text(encoding="utf-8").encode("cp1252")
    (tiny_copy / "zones.csv").write_bytes(data)
    assert load_instance(tiny_copy).zones.loc["01002", "name"] == "Saint-Léger-de-Fougeret"


def test_utf16_export(tiny_copy, reference):
    text = (tiny_copy / "zones.csv").read_text(encoding="utf-8")
    (tiny_copy / "zones.csv").write_bytes(text.encode("utf-16"))
    assert load_instance(tiny_copy).fingerprint == reference.fingerprint


def test_trailing_separators_and_blank_lines(tiny_copy, reference):
    lines = (tiny_copy / "sites.csv").read_text().splitlines()
    write(tiny_copy, "sites.csv", "\n".join(line + ",," for line in lines) + "\n,,,,,,\n\n")
    assert load_instance(tiny_copy).fingerprint == reference.fingerprint


def test_extra_columns_kept(tiny_copy, reference):
    lines = (tiny_copy / "zones.csv").read_text().splitlines()
    extra = [lines[0] + ",departement,note"] + [line + ",01,libre" for line in lines[1:]]
    write(tiny_copy, "zones.csv", "\n".join(extra) + "\n")
    inst = load_instance(tiny_copy)
    assert list(inst.zones["departement"]) == ["01"] * 6
    assert list(inst.zones["note"]) == ["libre"] * 6
    assert_same_tables(inst, reference)


def test_leading_zero_and_letter_ids(tiny_copy):
    inst = load_instance(tiny_copy)
    assert "01001" in inst.zones.index and "2A004" in inst.zones.index
    assert inst.sites.loc["CDS-E", "zone_id"] == "2A004"
    assert 1001 not in inst.zones.index


def test_practices_header_only_means_no_practice(tiny_copy):
    write(tiny_copy, "practices.csv", "practice_id,zone_id,physicians\n")
    assert len(load_instance(tiny_copy).practices) == 0


def test_geopackage_zones(tiny_copy, reference):
    gpd = pytest.importorskip("geopandas")
    z = pd.read_csv(tiny_copy / "zones.csv", dtype={"zone_id": str})
    squares = gpd.GeoSeries.from_xy(z["lon"], z["lat"]).buffer(0.02, cap_style="square")
    gdf = gpd.GeoDataFrame(z.drop(columns=["lon", "lat"]), geometry=squares, crs="EPSG:4326")
    gdf.to_file(tiny_copy / "zones.gpkg", driver="GPKG")
    replace_in(tiny_copy, "instance.toml", '"zones.csv"', '"zones.gpkg"')
    inst = load_instance(tiny_copy)
    assert list(inst.zones.index) == list(reference.zones.index)
    np.testing.assert_allclose(inst.zones["lon"], reference.zones["lon"], atol=1e-9)
    np.testing.assert_allclose(inst.zones["lat"], reference.zones["lat"], atol=1e-9)
    assert inst.geometry is not None and len(inst.geometry) == 6
    assert (inst.zones["population"] == reference.zones["population"]).all()
    assert CliRunner().invoke(main, ["validate", str(tiny_copy)]).exit_code == 0


def test_geoparquet_zones_projected(tiny_copy, reference):
    gpd = pytest.importorskip("geopandas")
    z = pd.read_csv(tiny_copy / "zones.csv", dtype={"zone_id": str})
    gdf = gpd.GeoDataFrame(z.drop(columns=["lon", "lat"]),
                           geometry=gpd.points_from_xy(z["lon"], z["lat"]), crs="EPSG:4326").to_crs("EPSG:2154")
    gdf.to_parquet(tiny_copy / "zones.parquet")
    replace_in(tiny_copy, "instance.toml", '"zones.csv"', '"zones.parquet"')
    inst = load_instance(tiny_copy)
    np.testing.assert_allclose(inst.zones["lon"], reference.zones["lon"], atol=1e-7)
    np.testing.assert_allclose(inst.zones["lat"], reference.zones["lat"], atol=1e-7)
    assert inst.zones.index[0] == "01001"


def test_geopackage_with_empty_geometry_is_refused(tiny_copy):
    gpd = pytest.importorskip("geopandas")
    from shapely.geometry import Point

    z = pd.read_csv(tiny_copy / "zones.csv", dtype={"zone_id": str})
    geoms = [Point(x, y) for x, y in zip(z["lon"], z["lat"])]
    geoms[2] = None
    gpd.GeoDataFrame(z.drop(columns=["lon", "lat"]), geometry=geoms, crs="EPSG:4326").to_file(
        tiny_copy / "zones.gpkg", driver="GPKG")
    replace_in(tiny_copy, "instance.toml", '"zones.csv"', '"zones.gpkg"')
    with pytest.raises(InputError) as info:
        load_instance(tiny_copy)
    assert str(info.value).startswith("zones.gpkg, row 3, column 'geom")
    assert cli_validate(tiny_copy).exit_code == 2


def test_projected_crs_in_manifest(tiny_copy, reference):
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
    z = pd.read_csv(tiny_copy / "zones.csv", dtype=str)
    x, y = tr.transform(z["lon"].astype(float).to_numpy(), z["lat"].astype(float).to_numpy())
    z["lon"], z["lat"] = np.round(x, 3), np.round(y, 3)
    assert (z["lon"] > 180).all()  # really projected metres
    z.to_csv(tiny_copy / "zones.csv", index=False)
    # A site with its own x/y and one without (it takes its zone's point).
    sx, sy = tr.transform(4.15, 46.01)
    write(tiny_copy, "sites.csv", "site_id,kind,zone_id,lon,lat\n"
          f"CS-B,cabinet_secondaire,01002,{sx:.3f},{sy:.3f}\nCS-D,cabinet_secondaire,01004,,\n")
    replace_in(tiny_copy, "instance.toml", 'supply_source = "user"', 'supply_source = "user"\ncrs = "EPSG:2154"')
    inst = load_instance(tiny_copy)
    np.testing.assert_allclose(inst.zones["lon"], reference.zones["lon"], atol=1e-6)
    np.testing.assert_allclose(inst.zones["lat"], reference.zones["lat"], atol=1e-6)
    assert inst.sites.loc["CS-B", "lon"] == pytest.approx(4.15, abs=1e-6)
    assert inst.sites.loc["CS-D", "lon"] == pytest.approx(4.30, abs=1e-6)
    assert inst.sites.loc["CS-D", "lat"] == pytest.approx(46.0, abs=1e-6)


def test_projected_values_without_crs_are_refused(tiny_copy):
    replace_in(tiny_copy, "zones.csv", "4.10,46.00", "797000.5,6546000.2")
    msg = assert_refused(tiny_copy, file="zones.csv", row=3, column="lon", contains="out of range")
    assert "set crs in instance.toml" in msg


# ---------------------------------------------------------------------------------
# the fast CSV path gives the same results as the careful one
# ---------------------------------------------------------------------------------

@pytest.fixture(params=["careful", "fast"], autouse=True)
def csv_reader_path(request, monkeypatch):
    """Run every test of this module through both CSV readers (fast: pyarrow, any size)."""
    import optisite.tables as tables

    if request.param == "fast":
        monkeypatch.setattr(tables, "FAST_CSV_BYTES", 0)
    return request.param


def test_fast_path_is_taken_for_large_regular_files(tiny_copy, csv_reader_path, monkeypatch):
    import optisite.tables as tables

    calls = []
    original = tables._read_csv_fast
    monkeypatch.setattr(tables, "_read_csv_fast", lambda *a: calls.append(1) or original(*a))
    inst = load_instance(tiny_copy)
    assert (len(calls) == 4) == (csv_reader_path == "fast")
    assert inst.travel.minutes(["01001"], ["2A005"])[0] == 50.0


def test_large_travel_table_row_numbers(tiny_copy, csv_reader_path):
    # A distancier above the fast-path size with one bad cell deep inside.
    ids = [f"{i:05d}" for i in range(1, 1201)]
    zones = ["zone_id,population,lon,lat"] + [f"{z},10,{4 + i * 1e-3:.4f},46" for i, z in enumerate(ids)]
    write(tiny_copy, "zones.csv", "\n".join(zones) + "\n")
    write(tiny_copy, "sites.csv", "site_id,kind,zone_id\nS1,cabinet_secondaire,00001\n")
    write(tiny_copy, "practices.csv", "practice_id,zone_id,physicians\n")
    rows = [f"{a},{b},{(i % 97) + 0.5}" for i, (a, b) in enumerate((a, b) for a in ids[:300] for b in ids[:200])]
    rows[45_678] = rows[45_678].rsplit(",", 1)[0] + ",-3"
    (tiny_copy / "travel.csv").write_text("from_id,to_id,minutes\n" + "\n".join(rows) + "\n")
    assert (tiny_copy / "travel.csv").stat().st_size > 1_000_000
    assert_refused(tiny_copy, file="travel.csv", row=45_680, column="minutes", contains="below 0")


# ---------------------------------------------------------------------------------
# hostile text
# ---------------------------------------------------------------------------------

def test_terminal_escape_in_a_cell_is_not_printed(tiny_copy):
    replace_in(tiny_copy, "sites.csv", "CS-D,cabinet_secondaire", "CS-D,\x1b[2J\x1b[31mevil")
    msg = assert_refused(tiny_copy, file="sites.csv", row=3, column="kind", contains="unknown kind")
    assert "\x1b" not in msg and "\\x1b[2J" in msg


def test_manifest_name_with_control_character(tiny_copy):
    replace_in(tiny_copy, "instance.toml", 'name = "Tiny', 'name = "\\u001b[2JTiny')
    assert_refused(tiny_copy, file="instance.toml", column="name", contains="control character")


def test_manifest_linked_from_outside(tiny_copy, tmp_path):
    outside = tmp_path / "elsewhere.toml"
    outside.write_text((tiny_copy / "instance.toml").read_text())
    (tiny_copy / "instance.toml").unlink()
    os.symlink(outside, tiny_copy / "instance.toml")
    with pytest.raises(InputError, match=r"^instance\.toml: instance\.toml is a link to a file outside"):
        load_instance(tiny_copy)
    assert cli_validate(tiny_copy).exit_code == 2


def test_huge_toml_integer_parameter(tiny_copy):
    replace_in(tiny_copy, "instance.toml", "budget = 60000", "budget = 1" + "0" * 400)
    assert_refused(tiny_copy, file="instance.toml", column="budget", contains="not a number")


def test_unicode_ids_are_normalised(tiny_copy):
    # The zone id typed with a composed "é", the site's with "e" + combining accent.
    replace_in(tiny_copy, "zones.csv", "01004,Village D", "Zé4,Village D")
    replace_in(tiny_copy, "travel.csv", "01003,01004,10", "01003,Zé4,10")
    text = (tiny_copy / "travel.csv").read_text().replace("01004", "Ze\u03014")
    write(tiny_copy, "travel.csv", text)
    replace_in(tiny_copy, "sites.csv", "01004", "Ze\u03014")
    inst = load_instance(tiny_copy)
    assert inst.sites.loc["CS-D", "zone_id"] == "Z\u00e94"
    assert inst.travel.minutes(["01003"], ["Z\u00e94"])[0] == 10.0


@pytest.mark.parametrize("invisible", ["\ufeff", "\u202e", "\u200b", "\x7f"])
def test_invisible_characters_in_ids(tiny_copy, invisible):
    replace_in(tiny_copy, "zones.csv", "01003,Village C", f"01{invisible}003,Village C")
    assert_refused(tiny_copy, file="zones.csv", row=4, column="zone_id", contains="control character")


def test_degrees_with_projected_crs_are_refused(tiny_copy):
    # lon/lat left in degrees while the manifest says Lambert 93 (metres).
    replace_in(tiny_copy, "instance.toml", 'supply_source = "user"', 'supply_source = "user"\ncrs = "EPSG:2154"')
    msg = assert_refused(tiny_copy, file="zones.csv", row=2, column="lon", contains="outside the area of EPSG:2154")
    assert "RGF93" in msg or "France" in msg


@pytest.mark.parametrize("path, contains", [
    ("C:/data/zones.csv", "absolute"),
    ("C:\\\\data\\\\zones.csv", "absolute"),
    ("\\\\\\\\server\\\\share\\\\zones.csv", "absolute"),
    ("..\\\\..\\\\etc\\\\passwd", "outside the instance folder"),
    ("a" * 5000 + ".csv", "cannot be used"),
    ("sub/../../zones.csv", "outside the instance folder"),
    (".", "is a folder, not a file"),  # was "does not exist" (issue 17 item 11)
])
def test_odd_table_paths(tiny_copy, path, contains):
    replace_in(tiny_copy, "instance.toml", '"zones.csv"', f'"{path}"')
    msg = assert_refused(tiny_copy, file="instance.toml", column="tables.zones", contains=contains)
    assert len(msg) < 400


def test_backslash_relative_path_inside(tiny_copy):
    (tiny_copy / "data").mkdir()
    (tiny_copy / "zones.csv").rename(tiny_copy / "data" / "zones.csv")
    replace_in(tiny_copy, "instance.toml", '"zones.csv"', '"data\\\\zones.csv"')
    assert len(load_instance(tiny_copy).zones) == 6


def test_practice_gives_more_days_than_it_works(tiny_copy):
    write(tiny_copy, "practices.csv", "practice_id,zone_id,physicians,secondary_days\n"
          "P-A,01001,3,2\nP-C,01003,1,6\n")
    assert_refused(tiny_copy, file="practices.csv", row=3, column="secondary_days",
                   contains="gives 6 secondary days a week but its 1 FTE work 5")


def test_practice_days_checked_against_layered_parameters(tiny_copy):
    write(tiny_copy, "practices.csv", "practice_id,zone_id,physicians,secondary_days\nP-A,01001,1,4\n")
    inst = load_instance(tiny_copy)
    assert inst.practices.loc["P-A", "secondary_days"] == 4
    with pytest.raises(InputError, match=r"^practices\.csv, row 2, column 'secondary_days'"):
        inst.with_parameters({"days_per_fte": 3}, file="options")


def test_secondary_days_per_gp_above_days_worked(tiny_copy):
    set_parameters(tiny_copy, "max_secondary_days_per_gp = 6")
    assert_refused(tiny_copy, file="instance.toml", column="max_secondary_days_per_gp", contains="larger than days_per_fte")


def test_a_head_count_that_is_not_a_number_gets_an_example_of_its_size(tiny_copy):
    """The fix's example fits the column: a number of GPs is 2.5, not 1200."""
    replace_in(tiny_copy, "practices.csv", "P-C,01003,2", "P-C,01003,deux")
    msg = assert_refused(tiny_copy, file="practices.csv", row=3, column="physicians", contains="'deux'")
    assert msg.endswith("e.g. 2.5"), msg
