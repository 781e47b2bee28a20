"""Files Excel and QGIS open well: excel-fr CSVs, outputs.xlsx, GeoPackage layers with QGIS styles."""

import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner

from optisite.cli import main
from optisite.solution import SCHEDULE_COLUMNS, ZONE_COLUMNS, read_solution

TABLES = ("sites", "schedule", "practices", "assignment", "zones")
IDS = {c: str for c in ("zone_id", "site_id", "practice_id", "practice_zone_id", "site_zone_id", "source_id",
                        "main_source_after", "name", "kind", "source_kind")}


def _solve(instance: Path, out: Path, *args: str) -> Path:
    r = CliRunner().invoke(main, ["solve", str(instance), "--out", str(out), "--quiet", "--threads", "1", *args])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The tiny instance solved twice (staffing: flows with fractional consultations): plain and excel-fr."""
    root = tmp_path_factory.mktemp("exports")
    tiny = Path(__file__).resolve().parents[1] / "instances" / "tiny"
    return {"plain": _solve(tiny, root / "plain"),
            "excel-fr": _solve(tiny, root / "fr", "--csv", "excel-fr", "--xlsx"),
            "instance": tiny}


def test_excel_fr_csvs_open_as_columns_with_semicolon_and_decimal_comma(folders):
    for name in TABLES:
        raw = (folders["excel-fr"] / f"{name}.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), name  # UTF-8 BOM: Excel reads the accents right
        fr = pd.read_csv(folders["excel-fr"] / f"{name}.csv", sep=";", decimal=",", encoding="utf-8-sig",
                         dtype=IDS)
        plain = pd.read_csv(folders["plain"] / f"{name}.csv", dtype=IDS)
        assert list(fr.columns) == list(plain.columns) and len(fr.columns) > 1
        assert len(fr) == len(plain)
        for c in plain.columns:  # same values, full precision
            if pd.api.types.is_numeric_dtype(plain[c]):
                assert pd.api.types.is_numeric_dtype(fr[c]), (name, c)
                np.testing.assert_allclose(fr[c].to_numpy(float), plain[c].to_numpy(float), rtol=1e-9)
            else:
                assert fr[c].fillna("").tolist() == plain[c].fillna("").tolist(), (name, c)
    # some number has a fractional part, written with a decimal comma
    text = (folders["excel-fr"] / "zones.csv").read_text(encoding="utf-8-sig")
    assert any("," in cell for line in text.splitlines()[1:] for cell in line.split(";"))
    # the default stays ',' and '.', no BOM
    assert not (folders["plain"] / "zones.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert (folders["plain"] / "zones.csv").read_text(encoding="utf-8").splitlines()[0].startswith(",".join(ZONE_COLUMNS))


def test_read_solution_and_the_checker_read_both_dialects(folders):
    a, b = read_solution(folders["plain"]), read_solution(folders["excel-fr"])
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=False, rtol=1e-9)
    for key in ("plain", "excel-fr"):
        r = CliRunner().invoke(main, ["check", str(folders[key]), str(folders["instance"])])
        assert r.exit_code == 0, (key, r.output)


def test_workbook_holds_every_table_exact_and_displayed_rounded(folders):
    from openpyxl import load_workbook

    assert not (folders["plain"] / "outputs.xlsx").exists()  # only on request
    wb = load_workbook(folders["excel-fr"] / "outputs.xlsx")
    assert wb.sheetnames == list(TABLES)
    sol = read_solution(folders["plain"])
    for name in TABLES:
        ws = wb[name]
        frame = getattr(sol, name)
        rows = list(ws.iter_rows(values_only=True))
        assert list(rows[0]) == list(frame.columns)
        assert len(rows) - 1 == len(frame)
        for j, c in enumerate(frame.columns):
            if pd.api.types.is_numeric_dtype(frame[c]):
                got = np.array([np.nan if r[j] is None else r[j] for r in rows[1:]], float)
                np.testing.assert_allclose(got, frame[c].to_numpy(float), rtol=1e-9, equal_nan=True)  # CSV: 10 digits
    ws = wb["schedule"]
    col = SCHEDULE_COLUMNS.index("minutes") + 1
    assert ws.cell(row=2, column=col).number_format == "#,##0.0"
    col = list(sol.assignment.columns).index("consultations") + 1
    assert wb["assignment"].cell(row=2, column=col).number_format == "#,##0"


def _styles(gpkg: Path) -> dict[str, tuple[str, str, int]]:
    db = sqlite3.connect(gpkg)
    try:
        rows = db.execute("SELECT f_table_name, f_geometry_column, styleQML, useAsDefault FROM layer_styles").fetchall()
    finally:
        db.close()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _check_styles(gpkg: Path, layers: list[str]) -> None:
    styles = _styles(gpkg)
    assert sorted(styles) == sorted(layers)
    for layer in layers:
        geom_col, qml, default = styles[layer]
        assert default == 1
        assert geom_col == pyogrio.read_info(gpkg, layer=layer)["geometry_name"]
        root = ET.fromstring(qml.split("\n", 1)[1])  # after the DOCTYPE line
        assert root.tag == "qgis"
        renderer = root.find("renderer-v2")
        assert renderer is not None and renderer.find("symbols/symbol") is not None
        if renderer.get("attr"):  # a categorised/graduated style reads an existing field
            assert renderer.get("attr") in pyogrio.read_info(gpkg, layer=layer)["fields"]


def test_sites_geopackage_has_practices_schedule_lines_and_qgis_styles(folders):
    gpkg = folders["excel-fr"] / "sites.gpkg"
    layers = dict(pyogrio.list_layers(gpkg))
    assert layers["sites"] == "Point" and layers["practices"] == "Point" and layers["schedule"] == "LineString"
    sol = read_solution(folders["plain"])
    sites = pyogrio.read_dataframe(gpkg, layer="sites")
    practices = pyogrio.read_dataframe(gpkg, layer="practices")
    schedule = pyogrio.read_dataframe(gpkg, layer="schedule")
    assert sorted(sites["site_id"]) == sorted(sol.sites["site_id"])
    assert sorted(practices["practice_id"]) == sorted(sol.practices["practice_id"])
    assert len(schedule) == len(sol.schedule) > 0
    # each line runs from the practice's point to the cabinet's point
    p = practices.set_index("practice_id").geometry
    s = sites.set_index("site_id").geometry
    for _, r in schedule.iterrows():
        (x0, y0), (x1, y1) = r.geometry.coords[0], r.geometry.coords[-1]
        assert (x0, y0) == (p[r["practice_id"]].x, p[r["practice_id"]].y)
        assert (x1, y1) == (s[r["site_id"]].x, s[r["site_id"]].y)
    _check_styles(gpkg, ["sites", "practices", "schedule"])
    # the plain folder gets the same layers (the GeoPackages do not depend on --csv)
    assert dict(pyogrio.list_layers(folders["plain"] / "sites.gpkg")) == layers


def test_zones_geopackage_is_styled_by_served_share(tiny_copy, tmp_path):
    """Zones with polygons (squares around the tiny instance's points) are written with a
    graduated style on covered_after."""
    import geopandas as gpd

    from optisite.instance import load_instance
    from optisite.pipeline import solve
    from optisite.solver import SolveOptions

    inst = load_instance(tiny_copy)
    sol = solve(inst, SolveOptions(model="staffing", threads=1))
    from shapely.geometry import box

    z = inst.zones
    sol.zone_geometry = gpd.GeoSeries([box(x - 0.01, y - 0.01, x + 0.01, y + 0.01) for x, y in zip(z["lon"], z["lat"])],
                                      index=z.index, crs="EPSG:4326")
    out = sol.write(tmp_path / "sol", report=False)
    gpkg = out / "zones.gpkg"
    assert dict(pyogrio.list_layers(gpkg))["zones"] == "Polygon"
    zones = pyogrio.read_dataframe(gpkg, layer="zones")
    assert len(zones) == len(sol.zones)
    _check_styles(gpkg, ["zones"])
    assert 'attr="covered_after"' in _styles(gpkg)["zones"][1]


def test_apl_reads_an_excel_fr_solution_like_a_plain_one(folders):
    """``optisite apl --solution`` reads the plan's capacities from either CSV dialect."""
    outputs = {}
    for key in ("plain", "excel-fr"):
        r = CliRunner().invoke(main, ["apl", str(folders["instance"]), "--solution", str(folders[key])])
        assert r.exit_code == 0, (key, r.output)
        outputs[key] = [line for line in r.output.splitlines() if line.startswith(("before", "after"))]
    assert len(outputs["plain"]) == 2 and outputs["plain"] == outputs["excel-fr"]


def test_apl_supply_reads_a_decimal_comma(folders, tmp_path):
    """A fractional capacity written with a decimal comma reads back as the same number."""
    import shutil

    from optisite.apl import read_solution_supply
    from optisite.exports import write_csv
    from optisite.instance import load_instance

    inst = load_instance(folders["instance"])
    supplies = {}
    for dialect in ("plain", "excel-fr"):
        folder = tmp_path / dialect
        shutil.copytree(folders["plain"], folder)
        pr = read_solution(folder).practices
        pr["capacity_after"] = pr["capacity_after"].astype(float) + 0.25
        write_csv(pr, folder / "practices.csv", dialect)
        supplies[dialect] = read_solution_supply(folder, inst)[1]
    assert (supplies["plain"] % 1 == 0.25).all()
    pd.testing.assert_series_equal(supplies["plain"], supplies["excel-fr"])
