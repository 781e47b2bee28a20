"""Reading instance tables (CSV, GeoPackage, (Geo)Parquet) safely and as text.

Every value is read as text first so that validation can name the exact row and
column of a bad cell, and ids keep their leading zeros (``01001``, ``2A004``).
"""

from __future__ import annotations

import csv
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

import numpy as np
import pandas as pd

from .errors import InputError

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
GEO_SUFFIXES = {".gpkg", ".geojson", ".shp", ".fgb"}
PARQUET_SUFFIXES = {".parquet", ".geoparquet"}

# CSV files at least this large are first parsed by pyarrow's reader (tens of times
# faster than the csv module on distanciers of millions of rows); any irregularity
# (blank lines, quoted line breaks, a line with the wrong number of fields, an odd
# header) sends the file to the careful reader, which names the exact line.
FAST_CSV_BYTES = 1_000_000

# The csv module's limit on one cell (131,072 characters); the fast reader has none, so it
# hands files with a longer cell to the careful reader, which refuses them the same way.
MAX_CELL_CHARS = csv.field_size_limit()


@dataclass(frozen=True)
class RawTable:
    """A table as read from disk: text cells, plus how to name its rows to a user."""

    frame: pd.DataFrame  # object columns; a GeoDataFrame keeps its geometry column
    label: str  # the file name as the user wrote it in the manifest
    first_row: int  # number shown to the user for frame row 0 (2 under a CSV header)
    lines: tuple[int, ...] | None = None  # file line of each frame row (CSV with skipped lines)

    def row(self, position: int) -> int:
        position = int(position)
        if self.lines is not None and 0 <= position < len(self.lines):
            return self.lines[position]
        return self.first_row + position


def resolve_inside(root: Path, relative: str, *, manifest: str, key: str) -> Path:
    """The path of a table named in a manifest, refused if it leaves the instance folder."""
    if not isinstance(relative, str) or not relative.strip():
        raise InputError("table path must be a non-empty text", file=manifest, column=key,
                         fix='write a path relative to the instance folder, e.g. "zones.csv"')
    if "\x00" in relative:
        raise InputError("table path contains a NUL byte", file=manifest, column=key,
                         fix="write a plain relative path")
    shown = relative if len(relative) <= 80 else relative[:77] + "..."
    if PureWindowsPath(relative).anchor or Path(relative).is_absolute():
        raise InputError(f"table path '{shown}' is absolute", file=manifest, column=key,
                         fix="write a path relative to the instance folder")
    # A manifest written on Windows may use backslashes; they separate folders here too.
    candidate = Path(relative.replace("\\", "/"))
    root_real = Path(os.path.realpath(root))
    try:
        target = Path(os.path.realpath(root_real / candidate))
        inside = target == root_real or root_real in target.parents
        mode = _mode(target) if inside else None
    except (OSError, ValueError) as exc:  # name too long, a loop of links, and the like
        raise InputError(f"table path '{shown}' cannot be used ({type(exc).__name__})", file=manifest,
                         column=key, fix="write a short relative path") from None
    if not inside:
        raise InputError(
            f"table path '{shown}' leads outside the instance folder",
            file=manifest, column=key,
            fix="copy the table into the instance folder and name it relative to it",
        )
    if mode is None:
        raise InputError(f"table file '{shown}' does not exist", file=manifest, column=key,
                         fix="check the file name in [tables]")
    if stat.S_ISDIR(mode):
        raise InputError(f"table path '{shown}' is a folder, not a file", file=manifest, column=key,
                         fix="name the table file inside it, e.g. \"" + (relative.rstrip("/\\") or "tables")
                         + "/zones.csv\"")
    if not stat.S_ISREG(mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) \
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
        raise InputError(f"table path '{shown}' is {kind}, not a regular file", file=manifest, column=key,
                         fix="copy the table into a regular file and name that file in [tables]")
    return target


def _mode(path: Path) -> int | None:
    """``st_mode`` of ``path``, None when nothing is there (other failures propagate)."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None


def read_table(path: Path, label: str, layer: str | None = None, *, manifest: str = "instance.toml",
               key: str | None = None) -> RawTable:
    """Read one table by its suffix; cells come back as text (geometry kept).

    ``layer`` names the layer of a multi-layer file (GeoPackage); a file of several
    layers without one is refused rather than read from its first layer.
    """
    suffix = path.suffix.lower()
    if layer is not None and suffix not in GEO_SUFFIXES:
        raise InputError(f"a layer is given but '{label}' is a {suffix.lstrip('.') or 'plain'} file with "
                         "no layers", file=manifest, column=f"{key}.layer" if key else "layer",
                         fix=f'write {key.split(".")[-1] if key else "the table"} = "{label}" without a layer')
    try:
        if suffix in CSV_SUFFIXES:
            frame, lines = _read_csv(path, label)
            return RawTable(frame, label, first_row=2, lines=lines)
        if suffix in GEO_SUFFIXES:
            chosen = _choose_layer(path, label, layer, manifest=manifest, key=key)
            return RawTable(_as_text(_read_geo(path, chosen), label), label, first_row=1)
        if suffix in PARQUET_SUFFIXES:
            return RawTable(_as_text(_read_parquet(path), label), label, first_row=1)
    except InputError:
        raise
    except Exception as exc:  # a corrupt file: say which, without a traceback
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise InputError(f"cannot read the file ({reason})", file=label,
                         fix="check that the file is a valid " + suffix.lstrip(".") + " table") from None
    raise InputError(f"unknown table format '{suffix or '(none)'}'", file=label,
                     fix="use .csv, .gpkg or .parquet")


def _decode(data: bytes, label: str) -> str:
    """Text of a CSV file: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError("the file starts like UTF-16 text but does not decode", file=label,
                             fix="save the table as CSV UTF-8") from None
    if b"\x00" in data:
        raise InputError("the file contains NUL bytes: it is not a text CSV", file=label,
                         fix="export the table as CSV UTF-8")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # every byte decodes; a wrong guess shows as odd letters


def _read_csv(path: Path, label: str) -> tuple[pd.DataFrame, tuple[int, ...]]:
    """Parse a CSV with the ``csv`` module so that every bad line can be named.

    The separator is the most frequent of ``,``, ``;`` and tab in the header line; a
    ``;`` file is taken to write decimals with a comma. Blank lines (or lines of
    separators only) are skipped; a line with more or fewer fields than the header is
    refused, except for empty trailing fields (spreadsheet exports add them).
    """
    data = path.read_bytes()
    text = _decode(data, label)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise InputError("the file is empty", file=label, fix="write a header line and rows")
    lines = text.splitlines()
    header_index = next(i for i, line in enumerate(lines) if line.strip())
    header_line = lines[header_index]
    sep = max([",", ";", "\t"], key=header_line.count)
    if header_line.count(sep) == 0:
        sep = ","
    if len(data) >= FAST_CSV_BYTES and header_index == 0:
        fast = _read_csv_fast(text, sep)
        if fast is not None:
            fast.attrs["decimal_comma"] = sep == ";"
            return fast, None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header: list[str] | None = None
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    try:
        while True:
            start_line = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip() for cell in record]
                header_line_no = start_line
                continue
            n = len(header)
            if len(record) > n:
                if any(cell.strip() for cell in record[n:]):
                    raise InputError(
                        f"the line has {len(record)} fields but the header has {n}", file=label,
                        row=start_line, fix=f"check for an extra '{_show(sep)}' or a missing quote",
                    )
                record = record[:n]
            elif len(record) < n:
                raise InputError(
                    f"the line has {len(record)} fields but the header has {n} (truncated line?)",
                    file=label, row=start_line,
                    fix=f"give every line {n} fields separated by '{_show(sep)}'",
                )
            rows.append(record)
            line_numbers.append(start_line)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise _long_cell(text, label, start_line, sep) from None
        raise InputError(f"cannot parse the line ({exc})", file=label, row=reader.line_num,
                         fix="check quotes and separators on that line") from None
    assert header is not None
    header = _name_columns(header, rows, label, header_line_no)
    _check_columns(header, label)
    frame = pd.DataFrame(rows, columns=header, dtype=object) if rows else \
        pd.DataFrame({c: pd.Series(dtype=object) for c in header})
    frame.attrs["decimal_comma"] = sep == ";"
    return frame, tuple(line_numbers)


def _long_cell(text: str, label: str, line: int, sep: str) -> InputError:
    """The error for a cell over MAX_CELL_CHARS: an opening quote never closed, or a long text."""
    physical = text.split("\n")[line - 1] if 0 < line <= text.count("\n") + 1 else ""
    if physical.count('"') % 2 == 1:
        return InputError(f"a quote opened on this line is not closed before {MAX_CELL_CHARS // 1024} KB of "
                          "text", file=label, row=line,
                          fix=f"close the quote or remove it (a '\"' inside a cell is written '\"\"')")
    return InputError(f"a cell is longer than {MAX_CELL_CHARS // 1024} KB", file=label, row=line,
                      fix="keep tables to ids, names and numbers: move long texts out of the table "
                          "(zone boundaries go in a GeoPackage)")


def _read_csv_fast(text: str, sep: str) -> pd.DataFrame | None:
    """A regular CSV (one record per line, header on line 1) as text cells, else None."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    header = next(csv.reader([text.split("\n", 1)[0].rstrip("\r")], delimiter=sep))
    names = [c.strip() for c in header]
    if not all(names) or len(set(names)) != len(names):
        return None
    try:
        table = pacsv.read_csv(
            pa.BufferReader(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=False,
                                             ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                quoted_strings_can_be_null=False, null_values=[]),
        )
    except (pa.ArrowInvalid, pa.ArrowException, ValueError):
        return None
    terminators = text.count("\n") + text.count("\r") - text.count("\r\n")
    lines = terminators + (0 if text.endswith(("\n", "\r")) else 1)
    if table.num_rows != lines - 1:  # a blank line was skipped: let the careful reader count
        return None
    if table.num_rows and any((pc.max(pc.utf8_length(table.column(n))).as_py() or 0) > MAX_CELL_CHARS
                              for n in names):
        return None  # the careful reader refuses the long cell and names its line
    frame = pd.DataFrame({n: pd.Series(table.column(n).to_numpy(zero_copy_only=False).astype(object),
                                       dtype=object) for n in names})
    blank = np.logical_and.reduce([(frame[n].str.strip() == "").to_numpy() for n in names])
    if blank.any():  # a line of separators only: the careful reader skips it
        return None
    return frame


def _show(sep: str) -> str:
    return "tab" if sep == "\t" else sep


def _name_columns(header: list[str], rows: list[list[str]], label: str, line: int) -> list:
    """Unnamed header cells: dropped when their column is empty, else refused."""
    out: list = []
    for i, name in enumerate(header):
        if name:
            out.append(name)
            continue
        if any(r[i].strip() for r in rows):
            raise InputError(f"column {i + 1} has values but no name in the header", file=label,
                             row=line, fix="write a column name in the header line")
        out.append(None)
    keep = [c for c in out if c is not None]
    if not keep:
        raise InputError("the header line has no column names", file=label, row=line,
                         fix="write the column names on the first line")
    # Drop the unnamed, empty columns from the rows too.
    if len(keep) != len(out):
        idx = [i for i, c in enumerate(out) if c is not None]
        for r in rows:
            r[:] = [r[i] for i in idx]
    return keep


def _choose_layer(path: Path, label: str, layer: str | None, *, manifest: str, key: str | None) -> str | None:
    """The layer to read: the one named, or the only one; several without a name are refused."""
    import pyogrio

    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception:  # not a readable geo file: read_table names the problem
        return layer
    table = key.split(".")[-1] if key else "zones"
    shown = ", ".join(f"'{n}'" for n in layers[:8]) + (", ..." if len(layers) > 8 else "")
    if layer is None:
        if len(layers) > 1:
            raise InputError(
                f"the file has {len(layers)} layers ({shown}) and the manifest names none", file=label,
                fix=f'name the layer in instance.toml: {table} = {{ path = "{label}", layer = "{layers[0]}" }}')
        return None
    if layer not in layers:
        raise InputError(f"no layer '{layer[:60]}' in '{label}' (its layers: {shown})", file=manifest,
                         column=f"{key}.layer" if key else "layer", fix="use one of the file's layer names")
    return layer


def _read_geo(path: Path, layer: str | None = None):
    import geopandas as gpd

    return gpd.read_file(path, layer=layer) if layer is not None else gpd.read_file(path)


def _read_parquet(path: Path):
    import geopandas as gpd
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path).metadata or {}
    if b"geo" in meta:
        return gpd.read_parquet(path)
    return pd.read_parquet(path)


def _as_text(frame: pd.DataFrame, label: str = "") -> pd.DataFrame:
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
    _check_columns(list(out.columns), label)
    return out


def _check_columns(columns: list[str], label: str) -> None:
    seen: set[str] = set()
    for col in columns:
        if col in seen:
            raise InputError("the column appears twice", file=label or None, column=col,
                             fix="rename or remove one of them")
        seen.add(col)
