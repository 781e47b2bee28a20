"""Files people open in Excel and QGIS: the CSV dialects, the GeoPackage layers and their styles.

* ``plain`` CSVs (the default): ``,`` and ``.``, UTF-8 without BOM, full precision
  (the checker and ``read_solution`` read them).
* ``excel-fr`` CSVs: ``;``, decimal comma and a UTF-8 BOM, so a French Excel opens them
  as columns; full precision too (the checker reads them back), which Excel displays
  rounded to its column width.
* ``outputs.xlsx`` (``--xlsx``): every table in one workbook, one sheet each; the cells
  hold the exact values, displayed rounded (minutes to 0.1, consultations, inhabitants
  and EUR to 1, shares as percentages).
* ``sites.gpkg``: layers ``sites`` (points), ``practices`` (points) and ``schedule``
  (lines practice -> cabinet secondaire); ``zones.gpkg``: ``zones`` (polygons). Each
  GeoPackage carries a QGIS ``layer_styles`` table (QML, default style), so QGIS opens
  the layers coloured.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

CSV_DIALECTS = ("plain", "excel-fr")
BOM = "\ufeff"
XLSX = "outputs.xlsx"
STYLE_DATE = "2000-01-01T00:00:00.000Z"  # fixed, so that two runs write identical style rows


# ---------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------

def write_csv(frame: pd.DataFrame, path: Path, dialect: str = "plain") -> None:
    """One table in the CSV dialect asked for (full precision in both)."""
    if dialect == "plain":
        frame.to_csv(path, index=False, lineterminator="\n", float_format="%.10g")
    elif dialect == "excel-fr":
        text = frame.to_csv(index=False, sep=";", decimal=",", lineterminator="\r\n", float_format="%.10g")
        path.write_text(BOM + text, encoding="utf-8", newline="")
    else:
        raise ValueError(f"unknown CSV dialect '{dialect}' (use {', '.join(CSV_DIALECTS)})")


def csv_read_options(path: Path) -> dict:
    """``pandas.read_csv`` keywords for a table optisite wrote, in either dialect (a UTF-8 BOM
    marks ``excel-fr``)."""
    with open(path, "rb") as fh:
        head = fh.read(3)
    if head == BOM.encode("utf-8"):
        return {"sep": ";", "decimal": ",", "encoding": "utf-8-sig"}
    return {"sep": ",", "decimal": ".", "encoding": "utf-8"}


# ---------------------------------------------------------------------------------
# Workbook
# ---------------------------------------------------------------------------------

def _number_format(column: str) -> str | None:
    """How a person reads a column: minutes to 0.1, shares as %, the rest to whole units."""
    if column in ("lon", "lat"):
        return "0.000000"
    if column.startswith("minutes"):
        return "#,##0.0"
    if column.startswith("covered_"):
        return "0.0%"
    if column.startswith("apl_"):
        return "0.00"
    if column in ("days_per_week", "days_given", "fte", "physicians", "weight"):
        return "0.##"
    return "#,##0"


def write_xlsx(tables: dict[str, pd.DataFrame], path: Path) -> None:
    """One sheet per table, header row frozen; exact values, rounded display."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for name, frame in tables.items():
        ws = wb.create_sheet(title=name[:31])
        ws.append([str(c) for c in frame.columns])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
                   for c in frame.columns]
        for row in frame.itertuples(index=False):
            ws.append([None if (isinstance(v, float) and not np.isfinite(v)) else
                       (v.item() if isinstance(v, np.generic) else v) for v in row])
        for j, (col, is_num) in enumerate(zip(frame.columns, numeric), start=1):
            letter = ws.cell(row=1, column=j).column_letter
            ws.column_dimensions[letter].width = max(10, min(40, len(str(col)) + 2))
            fmt = _number_format(str(col)) if is_num else None
            if fmt:
                for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                    cell.number_format = fmt
        ws.freeze_panes = "A2"
    wb.save(path)


# ---------------------------------------------------------------------------------
# GeoPackages
# ---------------------------------------------------------------------------------

def _practice_points(solution) -> pd.DataFrame | None:
    """practices.csv with lon/lat: from the instance when known, else the zone's polygon."""
    pr = solution.practices.copy()
    inst = solution.instance
    if inst is not None and {"lon", "lat"} <= set(inst.practices.columns):
        xy = inst.practices[["lon", "lat"]].reindex(pr["practice_id"].astype(str))
    elif solution.zone_geometry is not None:
        pts = solution.zone_geometry.reindex(pr["zone_id"].astype(str))
        pts = pts[pts.notna()].representative_point().reindex(pr["zone_id"].astype(str))
        xy = pd.DataFrame({"lon": pts.x.to_numpy(), "lat": pts.y.to_numpy()})
    else:
        return None
    pr["lon"], pr["lat"] = xy["lon"].to_numpy(float), xy["lat"].to_numpy(float)
    return pr


def write_geopackages(solution, folder: Path) -> None:
    """``sites.gpkg`` (sites, practices, schedule) and ``zones.gpkg`` (when the zones have
    polygons), each with its QGIS styles."""
    import geopandas as gpd
    from shapely.geometry import LineString

    s = solution.sites
    target = folder / "sites.gpkg"
    pts = gpd.GeoDataFrame(s.copy(), geometry=gpd.points_from_xy(s["lon"], s["lat"]), crs="EPSG:4326")
    pts.to_file(target, layer="sites", driver="GPKG")
    styled = {"sites": SITES_QML}
    pr = _practice_points(solution)
    if pr is not None:
        ok = pr["lon"].notna() & pr["lat"].notna()
        gpd.GeoDataFrame(pr[ok], geometry=gpd.points_from_xy(pr.loc[ok, "lon"], pr.loc[ok, "lat"]),
                         crs="EPSG:4326").to_file(target, layer="practices", driver="GPKG")
        styled["practices"] = PRACTICES_QML
        sched = solution.schedule.copy()
        # Coordinates by id (a multi-year plan lists an id once a year).
        a = pr.drop_duplicates("practice_id").set_index(pr["practice_id"].drop_duplicates().astype(str))[
            ["lon", "lat"]].reindex(sched["practice_id"].astype(str))
        b = s.drop_duplicates("site_id").set_index(s["site_id"].drop_duplicates().astype(str))[
            ["lon", "lat"]].reindex(sched["site_id"].astype(str))
        lines = [LineString([(x0, y0), (x1, y1)]) for x0, y0, x1, y1 in
                 zip(a["lon"], a["lat"], b["lon"], b["lat"])]
        gpd.GeoDataFrame(sched, geometry=gpd.GeoSeries(lines, crs="EPSG:4326") if lines else
                         gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326").to_file(
            target, layer="schedule", driver="GPKG", geometry_type="LineString")
        styled["schedule"] = SCHEDULE_QML
    write_styles(target, styled)
    if solution.zone_geometry is not None:
        z = solution.zones
        geom = solution.zone_geometry.reindex(z["zone_id"]).to_numpy()
        gpd.GeoDataFrame(z.copy(), geometry=geom, crs="EPSG:4326").to_file(
            folder / "zones.gpkg", layer="zones", driver="GPKG")
        write_styles(folder / "zones.gpkg", {"zones": ZONES_QML})


def write_styles(gpkg: Path, styles: dict[str, str]) -> None:
    """Write QGIS's ``layer_styles`` table (one default QML style per layer), registered in
    ``gpkg_contents`` as an attribute table, the way QGIS itself saves styles."""
    db = sqlite3.connect(Path(gpkg).resolve())  # SQLite resolves ".." lexically: "/sys/../.." fails
    try:
        with db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256), "
                "f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT, "
                "useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), update_time DATETIME)")
            db.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, "
                       "last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', "
                       "'QGIS styles written by optisite', ?)", (STYLE_DATE,))
            geom = dict(db.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall())
            for layer, qml in styles.items():
                db.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                           "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
                           "owner, ui, update_time) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '', ?)",
                           (layer, geom.get(layer, "geom"), f"optisite {layer}", qml,
                            f"optisite default style of {layer}", STYLE_DATE))
    finally:
        db.close()


# ---------------------------------------------------------------------------------
# QML styles (QGIS 3)
# ---------------------------------------------------------------------------------

def _layer(cls: str, **options: str) -> str:
    opts = "".join(f'<Option type="QString" name={quoteattr(k)} value={quoteattr(v)}/>' for k, v in options.items())
    return f'<layer class="{cls}" enabled="1" locked="0" pass="0"><Option type="Map">{opts}</Option></layer>'


def _symbol(name: str, kind: str, layer: str) -> str:
    return (f'<symbol type="{kind}" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
            f'{layer}</symbol>')


def _marker(name: str, shape: str, rgb: str, size: str) -> str:
    return _symbol(name, "marker", _layer("SimpleMarker", name=shape, color=f"{rgb},255",
                                          outline_color="255,255,255,255", outline_width="0.3", size=size))


def _qml(renderer: str, labels: str = "") -> str:
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis version="3.28.0" styleCategories="Symbology|Labeling">{renderer}{labels}</qgis>\n')


def _single(symbol: str) -> str:
    return _qml(f'<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0">'
                f"<symbols>{symbol}</symbols><rotation/><sizescale/></renderer-v2>")


SITES_QML = _qml(
    '<renderer-v2 type="categorizedSymbol" attr="kind" symbollevels="0" enableorderby="0" forceraster="0">'
    '<categories><category symbol="0" value="cabinet_secondaire" label="cabinet secondaire" render="true"/>'
    '<category symbol="1" value="centre_de_sante" label="centre de santé" render="true"/></categories>'
    "<symbols>" + _marker("0", "triangle", "31,78,156", "4.5") + _marker("1", "square", "123,45,142", "4")
    + "</symbols><rotation/><sizescale/></renderer-v2>")
PRACTICES_QML = _single(_marker("0", "circle", "17,17,17", "2"))
SCHEDULE_QML = _single(_symbol("0", "line", _layer("SimpleLine", line_color="11,42,102,255", line_width="0.6")))

_BANDS = ((0.0, 0.25, "179,38,30"), (0.25, 0.5, "240,140,60"), (0.5, 0.75, "250,220,110"),
          (0.75, 0.999999, "150,205,110"), (0.999999, 1.0, "27,122,61"))
ZONES_QML = _qml(
    '<renderer-v2 type="graduatedSymbol" attr="covered_after" graduatedMethod="GraduatedColor" '
    'symbollevels="0" enableorderby="0" forceraster="0"><ranges>'
    + "".join(f'<range symbol="{i}" lower="{lo:g}" upper="{hi:g}" label="{100 * lo:.0f}–{100 * hi:.0f} % served" '
              'render="true"/>' for i, (lo, hi, _) in enumerate(_BANDS))
    + "</ranges><symbols>"
    + "".join(_symbol(str(i), "fill", _layer("SimpleFill", color=f"{rgb},255", outline_color="255,255,255,255",
                                              outline_width="0.1", style="solid"))
              for i, (_, _, rgb) in enumerate(_BANDS))
    + "</symbols><rotation/><sizescale/></renderer-v2>")
