"""The planning instance: manifest + tables -> one validated ``Instance``.

``load_instance(folder)`` reads ``instance.toml`` and its tables, checks every
cell a model will use (naming file, row and column on the first mistake), fills
each site's and practice's defaults from the parameters, and returns an
``Instance`` that models, the checker and the reports read. Treat it as
immutable: ``with_parameters`` returns a new one.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .errors import InputError
from .parameters import KINDS, MAX_COST, MAX_FTE, MAX_MINUTES, Parameters
from .tables import RawTable, read_table, resolve_inside
from .travel import TravelTimes

MANIFEST = "instance.toml"
TOP_LEVEL_KEYS = {"name", "description", "crs", "supply_source", "tables", "parameters", "provenance"}
TABLE_KEYS = {"zones", "sites", "practices", "travel"}
SUPPLY_SOURCES = {"user", "illustrative", "calibrated", "none"}

SITE_FUNDERS = ["funder_fixed", "funder_staff"]  # optional text columns, see Instance.sites
SITE_OVERRIDES = ["fixed_cost", "cost_per_day", "cost_per_fte", "min_days", "max_days", "min_fte", "max_fte"]

# Upper bounds of plausible values: beyond them a cell is a typing or export mistake,
# and letting it through would only break the models' scaling.
MAX_POPULATION = 1e9  # inhabitants of one zone
MAX_WEIGHT = 1e6  # priority weight
MAX_DEMAND = 1e11  # consultations per year in one zone
# MAX_FTE, MAX_COST and MAX_MINUTES come from parameters.py (the same bounds for parameters).
SITE_MAXIMA = {
    "fixed_cost": (MAX_COST, "a cost in EUR/year"),
    "cost_per_day": (MAX_COST, "a cost in EUR per physician-day"),
    "cost_per_fte": (MAX_COST, "a cost in EUR per FTE and year"),
    "min_days": (7.0, "days per week"),
    "max_days": (7.0, "days per week"),
    "min_fte": (MAX_FTE, "a number of FTE"),
    "max_fte": (MAX_FTE, "a number of FTE"),
}

# Optional numeric columns, parsed only when a table has them. Zones: the official DREES
# APL 2023 and standardised population that `optisite instance build` adds (NaN where the
# DREES has no value), and `planning` (1 for a zone of the planning territory, 0 for a
# neighbour across its border that serves and competes but is not counted; absent = 1);
# `access_minutes`: minutes added at this end of every trip to another zone when travel
# times are computed from coordinates (fitted to the DREES APL by the builder; ignored
# with a travel table).
OPTIONAL_ZONE_NUMBERS = {
    "apl_official": (1e4, "an APL in consultations/inhabitant/year"),
    "apl_official_lt65": (1e4, "an APL in consultations/inhabitant/year"),
    "population_standardised": (MAX_POPULATION, "a standardised population"),
    "planning": (1.0, "1 (planning territory) or 0 (neighbour)"),
    "access_minutes": (MAX_MINUTES, "minutes"),
}
# Practices: `activity` = consultations and visits a year per GP (counted for APL with
# the DREES caps, see apl.counted_activity); `share_65_plus` = share of the practice's
# GP time given by GPs aged 65 and over (left out of APL when apl_exclude_65_plus).
OPTIONAL_PRACTICE_NUMBERS = {
    "activity": (0.0, 1e6, "consultations and visits a year per GP"),
    "share_65_plus": (0.0, 1.0, "a share between 0 and 1"),
    # FTE of the practice's GPs aged over 60 / over 65 (optisite/retirement.py)
    "gp_over_60": (0.0, MAX_FTE, "a number of FTE"),
    "gp_over_65": (0.0, MAX_FTE, "a number of FTE"),
}


@dataclass(frozen=True)
class Inputs:
    """Validated tables before parameter defaults are applied (kept for re-resolution)."""

    zones: pd.DataFrame
    sites: pd.DataFrame
    practices: pd.DataFrame
    travel: pd.DataFrame | None
    geometry: Any  # GeoSeries of zone polygons (EPSG:4326) or None
    # table key -> (file label, first row number, line of each row or None): to locate errors
    sources: Mapping[str, Any] = field(default_factory=dict)

    def locate(self, table: str, position: int) -> tuple[str, int | None]:
        """File label and user-facing row number of row ``position`` of ``table``."""
        label, first_row, lines = self.sources.get(table, (table, None, None))
        if lines is not None and 0 <= position < len(lines):
            return label, lines[position]
        return label, None if first_row is None else first_row + int(position)


@dataclass(frozen=True)
class Instance:
    """A validated planning instance; frames are indexed by their string ids."""

    name: str
    inputs: Inputs
    parameters: Parameters = field(default_factory=Parameters)
    supply_source: str = "user"
    provenance: Mapping[str, Any] = field(default_factory=dict)
    folder: Path | None = None
    manifest_parameters: Mapping[str, Any] = field(default_factory=dict)

    # -- resolved tables ------------------------------------------------------------
    @cached_property
    def zones(self) -> pd.DataFrame:
        """Zones with ``demand`` (consultations/year) and ``weight`` resolved."""
        z = self.inputs.zones.copy()
        given = z["demand"].notna()
        z["demand_given"] = given
        z["demand"] = z["demand"].where(given, z["population"] * self.parameters.consultations_per_inhabitant)
        return z

    @cached_property
    def sites(self) -> pd.DataFrame:
        """Candidate sites with every kind default filled from the parameters."""
        p = self.parameters
        s = self.inputs.sites.copy()
        cab = s["kind"] == "cabinet_secondaire"
        defaults = {
            "fixed_cost": (p.cabinet_fixed_cost, p.centre_fixed_cost),
            "cost_per_day": (p.cabinet_cost_per_day, 0.0),
            "cost_per_fte": (0.0, p.centre_cost_per_fte),
            "min_days": (p.cabinet_min_days, 0.0),
            "max_days": (p.cabinet_max_days, 0.0),
            "min_fte": (0.0, p.centre_min_fte),
            "max_fte": (0.0, p.centre_max_fte),
        }
        for col, (for_cabinet, for_centre) in defaults.items():
            s[col] = s[col].where(s[col].notna(), np.where(cab, for_cabinet, for_centre)).astype(float)
        funders = {"funder_fixed": (p.funder_cabinet_fixed, p.funder_centre_fixed),
                   "funder_staff": (p.funder_cabinet_days, p.funder_centre_fte)}
        for col, (for_cabinet, for_centre) in funders.items():
            given = s[col] if col in s.columns else pd.Series(None, index=s.index, dtype=object)
            s[col] = given.where(given.notna(), pd.Series(np.where(cab, for_cabinet, for_centre), index=s.index))
        for lo, hi in (("min_days", "max_days"), ("min_fte", "max_fte")):
            bad = s[lo] > s[hi]
            if bad.any():
                pos = int(np.flatnonzero(bad.to_numpy())[0])
                sid = s.index[pos]
                label, row = self.inputs.locate("sites", pos)
                given = lo if pd.notna(self.inputs.sites[lo].iloc[pos]) else hi
                raise InputError(
                    f"site '{sid}' has {lo} {s.at[sid, lo]:g} above {hi} {s.at[sid, hi]:g} "
                    "(after kind defaults from the parameters)",
                    file=label, row=row, column=given,
                    fix=f"give {lo} at most {hi} for this site, or change the kind default "
                    f"in [parameters]",
                )
        return s

    @cached_property
    def practices(self) -> pd.DataFrame:
        """Existing practices with ``secondary_days`` and ``max_travel_minutes`` resolved."""
        p = self.parameters
        pr = self.inputs.practices.copy()
        pr["secondary_days"] = pr["secondary_days"].where(
            pr["secondary_days"].notna(), pr["physicians"] * p.max_secondary_days_per_gp
        )
        pr["max_travel_minutes"] = pr["max_travel_minutes"].where(
            pr["max_travel_minutes"].notna(), p.max_travel_minutes
        )
        # A practice cannot give away more days a week than its physicians work.
        worked = pr["physicians"] * p.days_per_fte
        bad = pr["secondary_days"] > worked + 1e-9
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            label, row = self.inputs.locate("practices", pos)
            raise InputError(
                f"practice '{pr.index[pos]}' gives {pr['secondary_days'].iloc[pos]:g} secondary days a "
                f"week but its {pr['physicians'].iloc[pos]:g} FTE work {worked.iloc[pos]:g} "
                f"(days_per_fte = {p.days_per_fte:g})",
                file=label, row=row, column="secondary_days",
                fix="lower secondary_days to at most physicians x days_per_fte",
            )
        return pr

    @property
    def geometry(self):
        return self.inputs.geometry

    @cached_property
    def travel(self) -> TravelTimes:
        p = self.parameters
        if self.inputs.travel is not None:
            return TravelTimes.from_table(self.zones.index, self.inputs.travel,
                                          symmetric=p.travel_symmetric, max_pairs=p.max_pairs)
        access = self.zones["access_minutes"].to_numpy(float) if "access_minutes" in self.zones else None
        return TravelTimes.from_coordinates(
            self.zones.index, self.zones["lon"].to_numpy(), self.zones["lat"].to_numpy(),
            detour_factor=p.detour_factor, speed_kmh=p.speed_kmh, max_pairs=p.max_pairs,
            access_minutes=access,
        )

    # -- derived facts ----------------------------------------------------------------
    @cached_property
    def data_fingerprint(self) -> str:
        """SHA-256 of the validated data (tables, geometry), without the parameters: two
        scenarios of one territory share it."""
        h = hashlib.sha256()
        for label, frame in (("zones", self.inputs.zones), ("sites", self.inputs.sites),
                             ("practices", self.inputs.practices), ("travel", self.inputs.travel)):
            h.update(label.encode())
            if frame is not None:
                h.update(frame.to_csv(lineterminator="\n", float_format="%.10g").encode())
        if self.inputs.geometry is not None:
            import shapely

            for wkb in shapely.to_wkb(np.asarray(self.inputs.geometry.values), output_dimension=2):
                h.update(wkb if wkb is not None else b"-")
        return h.hexdigest()

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the validated content (data and parameters), not of file bytes."""
        h = hashlib.sha256(self.data_fingerprint.encode())
        h.update(repr(sorted(self.parameters.to_dict().items())).encode())
        return h.hexdigest()

    def with_parameters(self, overrides: Mapping[str, Any] | None = None, *,
                        file: str = "parameters") -> "Instance":
        """A new instance with parameter overrides applied (defaults re-resolved)."""
        if not overrides:
            return self
        new = Instance(
            name=self.name, inputs=self.inputs,
            parameters=self.parameters.with_overrides(overrides, file=file),
            supply_source=self.supply_source, provenance=self.provenance, folder=self.folder,
            manifest_parameters=self.manifest_parameters,
        )
        new.sites  # per-site bounds against the new kind defaults fail here, not mid-solve
        new.practices
        return new

    def __repr__(self) -> str:
        kinds = self.sites["kind"].value_counts()
        return (f"<Instance {self.name!r}: {len(self.zones):,} zones, {self.zones['population'].sum():,.0f} "
                f"inhabitants, {kinds.get('cabinet_secondaire', 0)} cabinet and {kinds.get('centre_de_sante', 0)} "
                f"centre candidates, {len(self.practices):,} practices ({self.supply_source} supply), "
                f"budget {self.parameters.budget:,.0f} EUR/year>")

    def summary(self) -> dict[str, Any]:
        """Headline counts a planner checks before solving."""
        p = self.parameters
        sites = self.sites
        kinds = {k: int((sites["kind"] == k).sum()) for k in KINDS}
        reach = self.travel.pairs(self.zones.index, sites["zone_id"], p.coverage_minutes)
        return {
            "name": self.name,
            "zones": int(len(self.zones)),
            "population": float(self.zones["population"].sum()),
            "sites": int(len(sites)),
            "sites_by_kind": kinds,
            "practices": int(len(self.practices)),
            "physicians": float(self.practices["physicians"].sum()),
            "supply_source": self.supply_source,
            "travel": self.travel.describe(),
            "coverage_minutes": p.coverage_minutes,
            "reachable_zone_site_zone_pairs": int(len(reach)),
            "fingerprint": self.fingerprint,
        }


# ---------------------------------------------------------------------------------
# Loading from a folder
# ---------------------------------------------------------------------------------

def load_instance(folder: str | Path, overrides: Mapping[str, Any] | None = None) -> Instance:
    """Read and validate the instance in ``folder`` (its ``instance.toml`` and tables)."""
    root = Path(folder)
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise InputError(f"'{root}' is not a folder", fix="give the folder holding instance.toml")
    if not manifest_path.is_file():
        raise InputError(f"no {MANIFEST} in '{root}'", file=str(root),
                         fix=f"give the folder holding {MANIFEST}")
    real_root = Path(os.path.realpath(root))
    if real_root not in Path(os.path.realpath(manifest_path)).parents:
        raise InputError(f"{MANIFEST} is a link to a file outside the instance folder", file=MANIFEST,
                         fix=f"copy the manifest into the folder instead of linking it")
    try:
        manifest = tomllib.loads(manifest_path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        reason = getattr(exc, "msg", None) or re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        where = f" at column {found.group(2)}" if found else ""
        raise InputError(f"not valid TOML ({reason}{where})", file=MANIFEST, row=line,
                         fix="check quotes, brackets and '=' signs") from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", file=MANIFEST, fix="save the manifest as UTF-8") from None
    except OSError as exc:
        raise InputError(f"cannot read the manifest ({exc.strerror or exc})", file=MANIFEST,
                         fix="check the file's permissions") from None

    unknown = set(manifest) - TOP_LEVEL_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise InputError(f"unknown key '{key}'", file=MANIFEST, column=key,
                         fix="use only: " + ", ".join(sorted(TOP_LEVEL_KEYS)))
    tables = manifest.get("tables")
    if not isinstance(tables, dict):
        raise InputError("missing [tables] section", file=MANIFEST, column="tables",
                         fix='add [tables] with zones = "..." and sites = "..."')
    for key in tables:
        if key not in TABLE_KEYS:
            raise InputError(f"unknown table '{key}'", file=MANIFEST, column=f"tables.{key}",
                             fix="use only: " + ", ".join(sorted(TABLE_KEYS)))
    for key in ("zones", "sites"):
        if key not in tables:
            raise InputError(f"the [tables] section does not name '{key}'", file=MANIFEST,
                             column=f"tables.{key}", fix=f'add {key} = "{key}.csv"')
    params = manifest.get("parameters", {})
    if not isinstance(params, dict):
        raise InputError("[parameters] must be a table of name = value", file=MANIFEST,
                         column="parameters")
    parameters = Parameters().with_overrides(params, file=MANIFEST)
    if overrides:
        parameters = parameters.with_overrides(overrides, file="options")

    raw = {}
    for key in [k for k in ("zones", "sites", "practices", "travel") if k in tables]:
        path, layer = _table_entry(tables[key], key)
        raw[key] = read_table(resolve_inside(root, path, manifest=MANIFEST, key=f"tables.{key}"), path,
                              layer, manifest=MANIFEST, key=f"tables.{key}")
    crs = _check_crs(manifest.get("crs"))
    supply_source = manifest.get("supply_source", "user" if "practices" in tables else "none")
    if not isinstance(supply_source, str) or supply_source not in SUPPLY_SOURCES:
        raise InputError(f"unknown supply_source '{supply_source}'", file=MANIFEST,
                         column="supply_source", fix="use " + ", ".join(sorted(SUPPLY_SOURCES)))
    name = manifest.get("name", root.name)
    if not isinstance(name, str) or not name.strip():
        raise InputError("name must be a non-empty text", file=MANIFEST, column="name",
                         fix='write name = "Territory (code)"')
    if not name.isprintable():
        raise InputError("name contains a control character or a line break", file=MANIFEST,
                         column="name", fix="write the name on one line, letters and signs only")
    description = manifest.get("description", "")
    if not isinstance(description, str):
        raise InputError("description must be a text", file=MANIFEST, column="description",
                         fix='write description = "..."')
    provenance = manifest.get("provenance", {})
    if not isinstance(provenance, dict):
        raise InputError("[provenance] must be a table", file=MANIFEST, column="provenance")
    inputs = validate_tables(raw["zones"], raw["sites"], raw.get("practices"), raw.get("travel"), crs=crs)
    instance = Instance(name=str(name), inputs=inputs, parameters=parameters,
                        supply_source=supply_source, provenance=dict(provenance), folder=root,
                        manifest_parameters=dict(params))
    instance.sites  # resolve now so that per-site inconsistencies surface at load time
    instance.practices
    return instance


def _table_entry(value: Any, key: str) -> tuple[Any, str | None]:
    """A [tables] entry: "file" or { path = "file", layer = "name" } (a layer of a GeoPackage)."""
    if not isinstance(value, dict):
        return value, None
    unknown = set(value) - {"path", "layer"}
    if unknown:
        name = sorted(map(str, unknown))[0]
        raise InputError(f"unknown key '{name}'", file=MANIFEST, column=f"tables.{key}.{name}",
                         fix=f'write {key} = {{ path = "{key}.gpkg", layer = "{key}" }}')
    if "path" not in value:
        raise InputError("the table has no path", file=MANIFEST, column=f"tables.{key}",
                         fix=f'write {key} = {{ path = "{key}.gpkg", layer = "{key}" }}')
    layer = value.get("layer")
    if layer is not None and (not isinstance(layer, str) or not layer.strip()):
        raise InputError("layer must be a non-empty text", file=MANIFEST, column=f"tables.{key}.layer",
                         fix=f'write layer = "{key}"')
    return value["path"], layer


def instance_from_frames(zones: pd.DataFrame, sites: pd.DataFrame,
                         practices: pd.DataFrame | None = None, travel: pd.DataFrame | None = None,
                         *, name: str = "in-memory", parameters: Mapping[str, Any] | None = None,
                         supply_source: str = "user", provenance: Mapping[str, Any] | None = None) -> Instance:
    """Build an instance from pandas frames (a notebook's way in), with the same validation."""
    def as_raw(frame, label):
        if frame is None:
            return None
        from .tables import _as_text

        return RawTable(_as_text(frame.reset_index(drop=frame.index.name is None), label), label,
                        first_row=1)

    inputs = validate_tables(as_raw(zones, "zones"), as_raw(sites, "sites"),
                             as_raw(practices, "practices"), as_raw(travel, "travel"))
    inst = Instance(name=name, inputs=inputs,
                    parameters=Parameters().with_overrides(parameters or {}),
                    supply_source=supply_source, provenance=dict(provenance or {}))
    inst.sites
    inst.practices
    return inst


# ---------------------------------------------------------------------------------
# Cell-level validation
# ---------------------------------------------------------------------------------

def _example(what: str, decimal_comma: bool) -> str:
    """An example value for an error's fix: a head count of GPs is small, euros are not."""
    if "FTE" in what:
        return "2,5" if decimal_comma else "2.5"
    return "1200,5" if decimal_comma else "1200"


class _Columns:
    """Typed access to a RawTable's columns, raising located errors."""

    def __init__(self, raw: RawTable):
        self.raw = raw
        self.frame = raw.frame
        self.decimal_comma = bool(raw.frame.attrs.get("decimal_comma", False))

    def has(self, col: str) -> bool:
        return col in self.frame.columns

    def _fail(self, problem, position, col, fix):
        raise InputError(problem, file=self.raw.label,
                         row=None if position is None else self.raw.row(position), column=col, fix=fix)

    def require(self, *cols: str, allow_empty: bool = False) -> None:
        for col in cols:
            if not self.has(col):
                found = ", ".join(str(c)[:40] for c in self.frame.columns[:12]) or "none"
                self._fail("required column is missing", None, col,
                           f"add a column named '{col}' (columns found: {found})")
        if len(self.frame) == 0 and not allow_empty:
            self._fail("the table has no rows", None, None, "add at least one row")

    def text(self, col: str, *, required: bool = True) -> pd.Series:
        if not self.has(col):
            return pd.Series([None] * len(self.frame), index=self.frame.index, dtype=object)
        s = self.frame[col].astype(str).str.strip()
        if not s.str.isascii().all():
            # One spelling per id and name: "é" typed as one character or as "e" + accent.
            s = s.map(lambda v: unicodedata.normalize("NFC", v))
        if required:
            empty = s == ""
            if empty.any():
                self._fail("empty value", int(np.flatnonzero(empty.to_numpy())[0]), col,
                           "fill in every row")
        return s.astype(object)

    def ids(self, col: str) -> pd.Series:
        s = self.text(col)
        bad = ~s.map(str.isprintable)
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            char = next(ch for ch in s.iloc[pos] if not ch.isprintable())
            self._fail(f"id contains a control character ({ascii(char)})", pos, col,
                       "remove tabs, line breaks and invisible characters from ids")
        dup = s.duplicated(keep="first")
        if dup.any():
            pos = int(np.flatnonzero(dup.to_numpy())[0])
            first = int(np.flatnonzero((s == s.iloc[pos]).to_numpy())[0])
            self._fail(f"duplicate id '{s.iloc[pos]}' (first seen at row {self.raw.row(first)})",
                       pos, col, "give every row its own id")
        return s

    def number(self, col: str, *, required: bool = False, minimum: float | None = None,
               maximum: float | None = None, what: str = "a number") -> pd.Series:
        if not self.has(col):
            if required:
                self.require(col)
            return pd.Series(np.nan, index=self.frame.index, dtype=float)
        text = self.frame[col].astype(str).str.strip()
        cleaned = text.str.replace("\u00a0", "", regex=False).str.replace("\u202f", "", regex=False)
        if self.decimal_comma:
            cleaned = self._french_decimals(cleaned, text, col, what)
        values = pd.to_numeric(cleaned.where(cleaned != "", None), errors="coerce").astype(float)
        not_number = values.isna() & (cleaned != "")
        if not_number.any():
            pos = int(np.flatnonzero(not_number.to_numpy())[0])
            self._fail(f"'{text.iloc[pos][:40]}' is not {what}", pos, col,
                       f"write {what} in digits, e.g. " + _example(what, self.decimal_comma))
        if required and values.isna().any():
            pos = int(np.flatnonzero(values.isna().to_numpy())[0])
            self._fail("empty value", pos, col, f"write {what}")
        infinite = ~np.isfinite(values.fillna(0.0))
        if infinite.any():
            pos = int(np.flatnonzero(infinite.to_numpy())[0])
            self._fail(f"'{text.iloc[pos][:40]}' is not a finite number", pos, col, f"write {what}")
        if minimum is not None and (values < minimum).any():
            pos = int(np.flatnonzero((values < minimum).to_numpy())[0])
            self._fail(f"{values.iloc[pos]:g} is below {minimum:g}", pos, col,
                       f"write {what} of at least {minimum:g}")
        if maximum is not None and (values > maximum).any():
            pos = int(np.flatnonzero((values > maximum).to_numpy())[0])
            self._fail(f"{values.iloc[pos]:g} is above {maximum:g}", pos, col,
                       f"write {what} of at most {maximum:g}")
        return values

    def _french_decimals(self, cleaned: pd.Series, text: pd.Series, col: str, what: str) -> pd.Series:
        """Numbers of a ';' file as a French spreadsheet writes them, decided per column.

        A column with a decimal comma ("1,5") may group thousands with dots ("1.200,5");
        a column whose dots cannot be thousands groups ("4.1", "1200.5") writes decimal
        points; a column whose only dots look like groups ("1.200") could mean 1200 or
        1.2 and is refused rather than guessed.
        """
        has_comma = cleaned.str.contains(",", regex=False)
        has_dot = cleaned.str.contains(".", regex=False)
        if has_dot.any():
            grouped = cleaned.str.fullmatch(r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d*)?")
            if has_comma.any():
                bad = has_dot & ~grouped
                if bad.any():
                    pos = int(np.flatnonzero(bad.to_numpy())[0])
                    first = int(np.flatnonzero(has_comma.to_numpy())[0])
                    self._fail(f"'{text.iloc[pos][:40]}' has a '.' that is not a thousands separator, while "
                               f"row {self.raw.row(first)} writes a decimal comma ('{text.iloc[first][:20]}')",
                               pos, col, f"write {what} with a decimal comma, e.g. 1200,5")
                cleaned = cleaned.where(~has_dot, cleaned.str.replace(".", "", regex=False))
            elif not (has_dot & ~grouped).any():
                pos = int(np.flatnonzero(has_dot.to_numpy())[0])
                value = text.iloc[pos][:40]
                self._fail(f"'{value}' is ambiguous in a ';' file: {value.replace('.', '')} with a French "
                           f"thousands separator, or {float(value):g} with a decimal point", pos, col,
                           f"write {value.replace('.', '')} (no thousands separator) or "
                           f"{value.replace('.', ',')} (decimal comma)")
        return cleaned.str.replace(",", ".", regex=False)

    def foreign(self, col: str, known: pd.Index, table: str) -> pd.Series:
        s = self.text(col)
        unknown = ~s.isin(known)
        if unknown.any():
            pos = int(np.flatnonzero(unknown.to_numpy())[0])
            self._fail(f"'{s.iloc[pos]}' is not a zone_id of the {table} table", pos, col,
                       f"use a zone_id listed in {table} (ids are text: keep leading zeros)")
        return s


def _check_crs(crs: Any) -> str | None:
    """The manifest's crs as text (None for WGS84 lon/lat), refused when pyproj does not know it."""
    if crs is None:
        return None
    if isinstance(crs, bool) or not isinstance(crs, (str, int)) or not str(crs).strip():
        raise InputError("crs must be a text such as \"EPSG:2154\"", file=MANIFEST, column="crs",
                         fix='write crs = "EPSG:2154" (or leave it out for WGS84 lon/lat)')
    crs = str(crs).strip()
    from pyproj import CRS

    try:
        parsed = CRS.from_user_input(crs)
    except Exception:
        raise InputError(f"unknown crs '{crs[:60]}'", file=MANIFEST, column="crs",
                         fix='use an EPSG code such as "EPSG:2154"') from None
    if parsed.equals("EPSG:4326", ignore_axis_order=True):
        return None
    return crs


def _to_wgs84(x: np.ndarray, y: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    from pyproj import Transformer

    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    with np.errstate(all="ignore"):
        lon, lat = tr.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _check_area_of_use(cols: "_Columns", crs: str, lon: pd.Series, lat: pd.Series) -> None:
    """Refuse converted points far outside the crs's area of use (degrees typed as metres...)."""
    from pyproj import CRS

    area = CRS.from_user_input(crs).area_of_use
    if area is None:
        return
    margin = 2.0  # degrees: generous, this only catches a wrong crs or swapped columns
    west, east = area.west - margin, area.east + margin
    inside_lon = (lon >= west) & (lon <= east) if west <= east else (lon >= west) | (lon <= east)
    outside = lon.notna() & ~(inside_lon & (lat >= area.south - margin) & (lat <= area.north + margin))
    if outside.any():
        pos = int(np.flatnonzero(outside.to_numpy())[0])
        cols._fail(f"the point converts to lon {lon.iloc[pos]:.4f}, lat {lat.iloc[pos]:.4f}, outside the "
                   f"area of {crs} ({area.name})", pos, "lon",
                   "check the crs in instance.toml and that lon/lat hold that crs's x/y "
                   "(remove crs for WGS84 degrees)")


def _geometry_wgs84(frame, crs: str | None):
    """The frame's geometry in EPSG:4326 (a geometry without crs takes the manifest's)."""
    g = frame.geometry
    if g.crs is None:
        if crs is None:
            return g.set_crs("EPSG:4326", allow_override=True)
        g = g.set_crs(crs, allow_override=True)
    if not g.crs.equals("EPSG:4326"):
        g = g.to_crs("EPSG:4326")
    return g


def _coordinates(cols: _Columns, crs: str | None, *, required: bool) -> tuple[pd.Series, pd.Series]:
    """lon/lat in WGS84 from columns, or from point/polygon geometry when columns are absent.

    Missing values stay NaN (the caller falls back to the zone's point) unless
    ``required``; a row giving one coordinate without the other is refused.
    """
    frame = cols.frame
    geom_name = getattr(frame, "_geometry_column_name", None)
    nan = pd.Series(np.nan, index=frame.index, dtype=float)
    if cols.has("lon") or cols.has("lat"):
        cols.require("lon", "lat", allow_empty=True)
        what_x, what_y = ("an x coordinate", "a y coordinate") if crs else ("a longitude", "a latitude")
        lon = cols.number("lon", required=required, what=what_x)
        lat = cols.number("lat", required=required, what=what_y)
        half = lon.isna() != lat.isna()
        if half.any():
            pos = int(np.flatnonzero(half.to_numpy())[0])
            missing = "lat" if pd.isna(lat.iloc[pos]) else "lon"
            cols._fail("empty value while the other coordinate is given", pos, missing,
                       "give both lon and lat, or leave both empty")
        if crs:
            given = lon.notna().to_numpy()
            x, y = lon.to_numpy(copy=True), lat.to_numpy(copy=True)
            if given.any():
                x[given], y[given] = _to_wgs84(x[given], y[given], crs)
            bad = given & ~(np.isfinite(x) & np.isfinite(y))
            if bad.any():
                pos = int(np.flatnonzero(bad)[0])
                cols._fail(f"coordinates do not convert from {crs}", pos, "lon",
                           "check the crs in instance.toml and the x/y columns")
            lon, lat = pd.Series(x, index=frame.index), pd.Series(y, index=frame.index)
            _check_area_of_use(cols, crs, lon, lat)
    elif geom_name is not None:
        g = _geometry_wgs84(frame, crs)
        empty = (g.isna() | g.is_empty).to_numpy()
        if required and empty.any():
            pos = int(np.flatnonzero(empty)[0])
            cols._fail("empty geometry and no lon/lat columns", pos, str(geom_name),
                       "give every row a geometry, or add lon and lat columns")
        lon, lat = nan.copy(), nan.copy()
        ok = ~empty
        if ok.any():
            sub = g[ok]
            pts = sub.where(sub.geom_type == "Point", sub.representative_point())
            lon[ok], lat[ok] = pts.x.to_numpy(), pts.y.to_numpy()
    elif required:
        cols.require("lon", "lat")
        raise AssertionError("unreachable")
    else:
        return nan.copy(), nan.copy()
    for col, series, limit in (("lon", lon, 180.0), ("lat", lat, 90.0)):
        out = series.abs() > limit
        if out.any():
            pos = int(np.flatnonzero(out.to_numpy())[0])
            cols._fail(f"{series.iloc[pos]:g} is out of range (-{limit:g} to {limit:g})", pos, col,
                       "give WGS84 degrees, or set crs in instance.toml for projected x/y")
        if required and series.isna().any():
            pos = int(np.flatnonzero(series.isna().to_numpy())[0])
            cols._fail("no coordinate", pos, col, "give every row a lon and a lat")
    return lon, lat


# A point given beside polygons farther than this from its zone's polygon is a mistake
# (lon and lat swapped, another zone's coordinates, a wrong crs), not a generalised boundary:
# the builder's town-hall repair already treats 1 km off the boundary as an error.
MAX_POINT_TO_POLYGON_KM = 50.0
KM_PER_DEGREE = 111.32  # along a meridian, and along the equator


def _km_to_geometries(lon: np.ndarray, lat: np.ndarray, geoms: np.ndarray) -> np.ndarray:
    """Approximate distance in km from each point to its geometry (0 inside), locally equirectangular.

    The distance in degrees bounds the distance in km from above (degrees x 111.32 km), so
    only the points beyond the limit by that bound are measured with the cosine of their
    latitude; the error of the local projection is far below the 50 km limit.
    """
    import shapely

    km = np.zeros(len(lon))
    pts = shapely.points(lon, lat)
    deg = shapely.distance(pts, geoms)
    far = np.flatnonzero(np.nan_to_num(deg, nan=0.0) * KM_PER_DEGREE > MAX_POINT_TO_POLYGON_KM)
    for i in far:
        k = math.cos(math.radians(min(abs(lat[i]), 89.0)))
        scale = lambda xy, k=k: xy * np.array([k * KM_PER_DEGREE, KM_PER_DEGREE])  # noqa: E731
        km[i] = shapely.distance(shapely.transform(pts[i], scale), shapely.transform(geoms[i], scale))
    return km


def _check_near_polygons(cols: "_Columns", lon: np.ndarray, lat: np.ndarray, geoms: np.ndarray, what: str,
                         ids: np.ndarray, zone_ids: np.ndarray | None = None) -> None:
    """Refuse a point given beside zone polygons that lies far from its own zone's polygon."""
    import shapely

    given = np.isfinite(lon) & np.isfinite(lat) & ~shapely.is_missing(geoms)
    given &= ~shapely.is_empty(np.where(given, geoms, None))
    if not given.any():
        return
    idx = np.flatnonzero(given)
    km = _km_to_geometries(lon[idx], lat[idx], geoms[idx])
    bad = np.flatnonzero(km > MAX_POINT_TO_POLYGON_KM)
    if not len(bad):
        return
    j = int(bad[0])
    pos = int(idx[j])
    swapped = _km_to_geometries(lat[pos:pos + 1], lon[pos:pos + 1], geoms[pos:pos + 1])[0] \
        if abs(lon[pos]) <= 90 else math.inf
    own = f"its zone '{zone_ids[pos]}'" if zone_ids is not None else "its own"
    problem = (f"{what} '{ids[pos]}' at lon {lon[pos]:.4f}, lat {lat[pos]:.4f} is {km[j]:,.0f} km from "
               f"{own} polygon")
    if swapped <= MAX_POINT_TO_POLYGON_KM:
        cols._fail(problem + " (lon and lat look swapped)", pos, "lon",
                   "swap the lon and lat columns: lon is the east-west coordinate (about -5 to 10 in "
                   "metropolitan France), lat the north-south one (about 41 to 51)")
    cols._fail(problem, pos, "lon",
               f"check this row's lon/lat (WGS84 degrees, or the crs of instance.toml): a point must lie "
               f"within {MAX_POINT_TO_POLYGON_KM:g} km of its zone's polygon")


ZONAGES = ("ZIP", "ZAC", "none")  # DGOS GP zoning: zones d'intervention prioritaire, d'action complémentaire


def _zonage(cols: "_Columns") -> pd.Series:
    """The zones' ``zonage`` column: ZIP, ZAC or none (any case; empty is none)."""
    s = cols.text("zonage", required=False).fillna("")
    norm = s.map(lambda v: {"zip": "ZIP", "zac": "ZAC", "none": "none", "": "none"}.get(v.lower()))
    if norm.isna().any():
        pos = int(np.flatnonzero(norm.isna().to_numpy())[0])
        cols._fail(f"'{s.iloc[pos][:40]}' is not a zonage", pos, "zonage",
                   "write ZIP, ZAC or none (or leave the cell empty for none)")
    return norm


def _funders(cols: "_Columns", col: str) -> pd.Series:
    """A sites' funder column: a funder name (letters, digits, '_') or empty for the parameter's."""
    from .parameters import FUNDER_NAME

    s = cols.text(col, required=False).fillna("")
    bad = (s != "") & ~s.str.fullmatch(FUNDER_NAME)
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        cols._fail(f"'{s.iloc[pos][:40]}' is not a funder name", pos, col,
                   "write a name of letters, digits and '_' (e.g. ars_hopital), or leave it empty for the "
                   "funder_* parameter of the site's kind")
    return s.where(s != "", None)


def validate_tables(zones: RawTable, sites: RawTable, practices: RawTable | None,
                    travel: RawTable | None, *, crs: str | None = None) -> Inputs:
    """Check every cell the models use; return typed frames indexed by id."""
    # -- zones -------------------------------------------------------------------------
    zc = _Columns(zones)
    zc.require("zone_id", "population")
    zone_id = zc.ids("zone_id")
    lon, lat = _coordinates(zc, crs, required=True)
    z = pd.DataFrame(index=pd.Index(zone_id.to_numpy(), name="zone_id", dtype=object))
    z["name"] = (zc.text("name", required=False).where(lambda s: s.notna() & (s != ""), zone_id)).to_numpy()
    z["population"] = zc.number("population", required=True, minimum=0.0, maximum=MAX_POPULATION,
                                what="a population").to_numpy()
    z["lon"], z["lat"] = lon.to_numpy(), lat.to_numpy()
    z["weight"] = zc.number("weight", minimum=0.0, maximum=MAX_WEIGHT,
                            what="a priority weight").fillna(1.0).to_numpy()
    z["demand"] = zc.number("demand", minimum=0.0, maximum=MAX_DEMAND,
                            what="a demand in consultations/year").to_numpy()
    known_cols = {"zone_id", "name", "population", "lon", "lat", "weight", "demand"}
    for col, (maximum, what) in OPTIONAL_ZONE_NUMBERS.items():
        if zc.has(col):  # optional: present only in instances that give it (fingerprints unchanged)
            z[col] = zc.number(col, minimum=0.0, maximum=maximum, what=what).to_numpy()
            known_cols.add(col)
    if zc.has("zonage"):  # optional: ZIP / ZAC / none, for the zonage lever (optisite/levers.py)
        z["zonage"] = _zonage(zc).to_numpy()
        known_cols.add("zonage")
    if "planning" in z.columns:
        bad = ~z["planning"].isin([0.0, 1.0])
        if bad.any():
            zc._fail(f"'{zones.frame['planning'].iloc[int(np.flatnonzero(bad.to_numpy())[0])]}' is not 0 or 1",
                     int(np.flatnonzero(bad.to_numpy())[0]), "planning",
                     "write 1 for a zone of the planning territory, 0 for a neighbour")
    geom_name = getattr(zones.frame, "_geometry_column_name", None)
    for col in zones.frame.columns:
        if col not in known_cols and col != geom_name:
            z[col] = zones.frame[col].to_numpy()  # extra columns are kept as text
    geometry = None
    if geom_name is not None:
        import geopandas as gpd

        g = _geometry_wgs84(zones.frame, crs)
        geometry = gpd.GeoSeries(g.to_numpy(), index=z.index, crs="EPSG:4326")
        if zc.has("lon"):  # the points were given beside the geometry: they must agree
            _check_near_polygons(zc, z["lon"].to_numpy(), z["lat"].to_numpy(), geometry.to_numpy(), "zone",
                                 z.index.to_numpy())

    # -- sites -------------------------------------------------------------------------
    sc = _Columns(sites)
    sc.require("site_id", "kind", "zone_id")
    site_id = sc.ids("site_id")
    kind = sc.text("kind")
    bad_kind = ~kind.isin(KINDS)
    if bad_kind.any():
        pos = int(np.flatnonzero(bad_kind.to_numpy())[0])
        sc._fail(f"unknown kind '{kind.iloc[pos][:40]}'", pos, "kind", "use " + " or ".join(KINDS))
    s = pd.DataFrame(index=pd.Index(site_id.to_numpy(), name="site_id", dtype=object))
    s["kind"] = kind.to_numpy()
    s["zone_id"] = sc.foreign("zone_id", z.index, "zones").to_numpy()
    s["name"] = sc.text("name", required=False).to_numpy()
    slon, slat = _coordinates(sc, crs, required=False)
    if geometry is not None and sc.has("lon"):
        _check_near_polygons(sc, slon.to_numpy(), slat.to_numpy(), geometry.loc[s["zone_id"]].to_numpy(),
                             "site", s.index.to_numpy(), s["zone_id"].to_numpy())
    s["lon"] = np.where(slon.isna(), z.loc[s["zone_id"], "lon"].to_numpy(), slon.to_numpy())
    s["lat"] = np.where(slat.isna(), z.loc[s["zone_id"], "lat"].to_numpy(), slat.to_numpy())
    for col in SITE_OVERRIDES:
        s[col] = sc.number(col, minimum=0.0, maximum=SITE_MAXIMA[col][0],
                           what=SITE_MAXIMA[col][1]).to_numpy()
    for lo, hi in (("min_days", "max_days"), ("min_fte", "max_fte")):
        bad = s[lo] > s[hi]
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            sc._fail(f"{lo} {s[lo].iloc[pos]:g} is above {hi} {s[hi].iloc[pos]:g}", pos, lo,
                     f"make {lo} at most {hi}")
    s["name"] = s["name"].where(s["name"].notna() & (s["name"] != ""), z.loc[s["zone_id"], "name"].to_numpy())
    for col in SITE_FUNDERS:  # optional: who pays this site's fixed / staff cost (default: parameters)
        if sc.has(col):
            s[col] = _funders(sc, col).to_numpy()

    # -- practices ---------------------------------------------------------------------
    pr = pd.DataFrame(
        {"zone_id": pd.Series(dtype=object), "name": pd.Series(dtype=object),
         "physicians": pd.Series(dtype=float), "lon": pd.Series(dtype=float),
         "lat": pd.Series(dtype=float), "secondary_days": pd.Series(dtype=float),
         "max_travel_minutes": pd.Series(dtype=float)},
        index=pd.Index([], name="practice_id", dtype=object),
    )
    if practices is not None:
        pc = _Columns(practices)
        if len(practices.frame.columns) or len(practices.frame):
            # A header without rows is an instance with no existing practice.
            pc.require("practice_id", "zone_id", "physicians", allow_empty=True)
            pid = pc.ids("practice_id")
            pr = pd.DataFrame(index=pd.Index(pid.to_numpy(), name="practice_id", dtype=object))
            pr["zone_id"] = pc.foreign("zone_id", z.index, "zones").to_numpy()
            pname = pc.text("name", required=False)
            pr["name"] = pname.where(pname.notna() & (pname != ""), pid).to_numpy()
            pr["physicians"] = pc.number("physicians", required=True, minimum=0.0, maximum=MAX_FTE,
                                         what="a number of FTE").to_numpy()
            plon, plat = _coordinates(pc, crs, required=False)
            if geometry is not None and pc.has("lon"):
                _check_near_polygons(pc, plon.to_numpy(), plat.to_numpy(),
                                     geometry.loc[pr["zone_id"]].to_numpy(), "practice", pr.index.to_numpy(),
                                     pr["zone_id"].to_numpy())
            pr["lon"] = np.where(plon.isna(), z.loc[pr["zone_id"], "lon"].to_numpy(), plon.to_numpy())
            pr["lat"] = np.where(plat.isna(), z.loc[pr["zone_id"], "lat"].to_numpy(), plat.to_numpy())
            pr["secondary_days"] = pc.number("secondary_days", minimum=0.0, maximum=7.0 * MAX_FTE,
                                             what="days per week").to_numpy()
            pr["max_travel_minutes"] = pc.number("max_travel_minutes", minimum=0.0,
                                                 maximum=MAX_MINUTES, what="minutes").to_numpy()
            for col, (lo, hi, what) in OPTIONAL_PRACTICE_NUMBERS.items():
                if pc.has(col):  # optional, see OPTIONAL_PRACTICE_NUMBERS
                    pr[col] = pc.number(col, minimum=lo, maximum=hi, what=what).to_numpy()

    # -- travel ------------------------------------------------------------------------
    tr = None
    if travel is not None:
        tc = _Columns(travel)
        tc.require("from_id", "to_id", "minutes")
        f = tc.foreign("from_id", z.index, "zones")
        t = tc.foreign("to_id", z.index, "zones")
        m = tc.number("minutes", required=True, minimum=0.0, what="a travel time in minutes")
        tr = pd.DataFrame({"from_id": f.to_numpy(), "to_id": t.to_numpy(), "minutes": m.to_numpy()})
        dup = tr.duplicated(["from_id", "to_id"], keep="first")
        if dup.any():
            pos = int(np.flatnonzero(dup.to_numpy())[0])
            tc._fail(f"pair {tr.at[pos, 'from_id']} -> {tr.at[pos, 'to_id']} is given twice", pos, "to_id",
                     "keep one row per (from_id, to_id)")
    sources = {key: (raw.label, raw.first_row, raw.lines)
               for key, raw in (("zones", zones), ("sites", sites), ("practices", practices),
                                ("travel", travel)) if raw is not None}
    return Inputs(zones=z, sites=s, practices=pr, travel=tr, geometry=geometry, sources=sources)
