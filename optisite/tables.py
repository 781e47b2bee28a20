"""Reading instance tables (CSV, GeoPackage, (Geo)Parquet) safely and as text.

Every value is read as text first so that validation can name the exact row and
column of a bad cell, and ids keep their leading zeros (``01001``, ``2A004``).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import InputError

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
GEO_SUFFIXES = {".gpkg", ".geojson", ".shp", ".fgb"}
PARQUET_SUFFIXES = {".parquet", ".geoparquet"}


@dataclass(frozen=True)
class RawTable:
    """A table as read from disk: text cells, plus how to name its rows to a user."""

    frame: pd.DataFrame  # object columns; a GeoDataFrame keeps its geometry column
    label: str  # the file name as the user wrote it in the manifest
    first_row: int  # number shown to the user for frame row 0 (2 under a CSV header)

    def row(self, position: int) -> int:
        return self.first_row + int(position)


def resolve_inside(root: Path, relative: str, *, manifest: str, key: str) -> Path:
    """The path of a table named in a manifest, refused if it leaves the instance folder."""
    if not isinstance(relative, str) or not relative.strip():
        raise InputError("table path must be a non-empty text", file=manifest, column=key,
                         fix='write a path relative to the instance folder, e.g. "zones.csv"')
    if "\x00" in relative:
        raise InputError("table path contains a NUL byte", file=manifest, column=key,
                         fix="write a plain relative path")
    candidate = Path(relative)
    if candidate.is_absolute() or candidate.drive:
        raise InputError(f"table path '{relative}' is absolute", file=manifest, column=key,
                         fix="write a path relative to the instance folder")
    root_real = Path(os.path.realpath(root))
    target = Path(os.path.realpath(root_real / candidate))
    if target != root_real and root_real not in target.parents:
        raise InputError(
            f"table path '{relative}' leads outside the instance folder",
            file=manifest, column=key,
            fix="copy the table into the instance folder and name it relative to it",
        )
    if not target.is_file():
        raise InputError(f"table file '{relative}' does not exist", file=manifest, column=key,
                         fix="check the file name in [tables]")
    return target


def read_table(path: Path, label: str) -> RawTable:
    """Read one table by its suffix; cells come back as text (geometry kept)."""
    suffix = path.suffix.lower()
    try:
        if suffix in CSV_SUFFIXES:
            return RawTable(_read_csv(path, label), label, first_row=2)
        if suffix in GEO_SUFFIXES:
            return RawTable(_as_text(_read_geo(path)), label, first_row=1)
        if suffix in PARQUET_SUFFIXES:
            return RawTable(_as_text(_read_parquet(path)), label, first_row=1)
    except InputError:
        raise
    except Exception as exc:  # a corrupt file: say which, without a traceback
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise InputError(f"cannot read the file ({reason})", file=label,
                         fix="check that the file is a valid " + suffix.lstrip(".") + " table") from None
    raise InputError(f"unknown table format '{suffix or '(none)'}'", file=label,
                     fix="use .csv, .gpkg or .parquet")


def _read_csv(path: Path, label: str) -> pd.DataFrame:
    data = path.read_bytes()
    if not data.strip():
        raise InputError("the file is empty", file=label, fix="write a header line and rows")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    header = text.lstrip().splitlines()[0]
    sep = max([",", ";", "\t"], key=header.count)
    if header.count(sep) == 0:
        sep = ","
    frame = pd.read_csv(
        io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
        skipinitialspace=True, on_bad_lines="error", engine="python",
    )
    header_fields = [c.strip() for c in next(csv.reader([header], delimiter=sep))]
    _check_columns(header_fields, label)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.attrs["decimal_comma"] = sep == ";"
    return frame


def _read_geo(path: Path):
    import geopandas as gpd

    return gpd.read_file(path)


def _read_parquet(path: Path):
    import geopandas as gpd
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path).metadata or {}
    if b"geo" in meta:
        return gpd.read_parquet(path)
    return pd.read_parquet(path)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Non-geometry columns to text, with missing values as empty strings."""
    out = frame.copy()
    geometry_name = getattr(frame, "_geometry_column_name", None)
    for col in out.columns:
        if col == geometry_name:
            continue
        series = out[col]
        if pd.api.types.is_float_dtype(series):
            # 1001.0 from a float id column is written back as 1001.
            text = series.map(lambda v: "" if pd.isna(v) else (repr(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))))
        else:
            text = series.map(lambda v: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v))
        out[col] = text.astype(object)
    out.columns = [str(c).strip() for c in out.columns]
    _check_columns(list(out.columns), "")
    return out


def _check_columns(columns: list[str], label: str) -> None:
    seen: set[str] = set()
    for col in columns:
        if col in seen:
            raise InputError("the column appears twice", file=label or None, column=col,
                             fix="rename or remove one of them")
        seen.add(col)
