r"""The DREES APL indicator (accessibilité potentielle localisée), before and after a plan.

APL is a two-step floating catchment (2SFCA) measure with a step distance decay
``w`` (:mod:`optisite.decay`). With :math:`P_i` the (age-standardised) population
of zone :math:`i`, :math:`S_j` the consultations per year offered at supply point
:math:`j` (a practice or a site) and :math:`t_{ij}` the minutes from zone
:math:`i` to the zone that hosts :math:`j` (0 within one zone):

.. math::

    D_j = \sum_k w(t_{kj}) P_k, \qquad R_j = S_j / D_j, \qquad
    \mathrm{APL}_i = \sum_j w(t_{ij}) R_j = \sum_j a_{ij} S_j,
    \quad a_{ij} = w(t_{ij}) / D_j .

APL is in consultations per (standardised) inhabitant per year. A supply point
whose catchment holds no population (:math:`D_j = 0`) serves nobody: it adds
nothing to any zone (every zone that could reach it has population 0 anyway), so
:math:`a_{ij} = 0` there instead of a division by zero.

The catchment demand :math:`D_j` depends only on populations and travel times,
never on decisions, so APL is linear in the supplies: this is what the apl model
uses (:func:`apl_linear_coefficients`). Everything is computed on the sparse set
of reachable pairs from :meth:`TravelTimes.pairs`, never on a dense matrix.

Demand is age-standardised when the zones carry age bands (columns
``pop_<lo>_<hi>`` and one ``pop_<lo>_plus``, see :func:`demand_population`),
plain population otherwise; :attr:`AplInputs.demand_basis` says which.
See ``models/apl.md`` for the mathematics and the sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .decay import DECAYS, decay_steps, decay_weight
from .errors import InputError
from . import rules
from .instance import Instance

DEFAULT_THRESHOLDS = (2.5, 4.0)

# --------------------------------------------------------------------------------------
# Age standardisation
# --------------------------------------------------------------------------------------

# Relative GP consumption by five-year age band (consultations and visits per
# inhabitant, divided by the national mean): the DREES 2023 table (workbook
# apl_generalistes.xlsx, sheet "Paramètres", the weights behind its pop_std; shipped as
# optisite/data/drees_age_weights_2023.csv, compared by tests/test_drees_parameters.py).
# A zone's standardised population is sum_b pop_b x weight_b; other band layouts take
# the mean of the per-year weights over their ages.
REFERENCE_AGE_WEIGHTS: tuple[tuple[int, int | None, float], ...] = (
    # (first age, last age or None for "and over", weight)
    (0, 4, 1.12), (5, 9, 0.58), (10, 14, 0.51), (15, 19, 0.60), (20, 24, 0.75),
    (25, 29, 0.79), (30, 34, 0.82), (35, 39, 0.85), (40, 44, 0.89), (45, 49, 0.93),
    (50, 54, 1.03), (55, 59, 1.15), (60, 64, 1.18), (65, 69, 1.23), (70, 74, 1.46),
    (75, 79, 1.57), (80, 84, 1.63), (85, 89, 1.89), (90, None, 2.26),
)
# The DREES 2023 activity caps live with the other capacity rules (:mod:`optisite.rules`).
ACTIVITY_ZERO_UP_TO, ACTIVITY_FLOOR, ACTIVITY_CAP = rules.ACTIVITY_ZERO_UP_TO, rules.ACTIVITY_FLOOR, rules.ACTIVITY_CAP
counted_activity = rules.counted_activity
OLDEST_AGE = 99  # "<lo>_plus" bands are averaged over lo..OLDEST_AGE

_BAND = re.compile(r"^pop_(\d+)_(\d+|plus)$")


def _per_year_weights(age_weights) -> np.ndarray:
    w = np.full(OLDEST_AGE + 1, np.nan)
    for lo, hi, weight in age_weights:
        w[lo:(OLDEST_AGE if hi is None else hi) + 1] = weight
    if np.isnan(w).any():
        raise ValueError("age_weights must cover every age from 0 to 99 without gaps")
    return w


def age_band_columns(zones: pd.DataFrame) -> list[tuple[str, int, int | None]]:
    """The zones' age-band columns as (column, first age, last age or None), sorted by age.

    The convention: ``pop_0_4``, ``pop_5_9``, ..., ``pop_90_plus`` (ages in whole
    years, both ends included). Any partition of 0..inf works (``pop_0_14``,
    ``pop_15_59``, ``pop_60_plus``...), as long as the bands are contiguous from
    0, do not overlap and end with exactly one ``_plus`` band. No band column at
    all means "no age structure": demand is plain population.
    """
    bands = []
    for col in zones.columns:
        m = _BAND.match(str(col))
        if m:
            lo = int(m.group(1))
            hi = None if m.group(2) == "plus" else int(m.group(2))
            bands.append((str(col), lo, hi))
    if not bands:
        return []
    bands.sort(key=lambda b: b[1])
    expected = 0
    for i, (col, lo, hi) in enumerate(bands):
        last = i == len(bands) - 1
        if lo != expected:
            raise InputError(
                f"age band '{col}' starts at {lo}, expected {expected}", file="zones", column=col,
                fix="use contiguous bands pop_0_4, pop_5_9, ... ending with one pop_<age>_plus")
        if (hi is None) != last:
            raise InputError(
                f"age band '{col}': exactly the last band must be open-ended (pop_<age>_plus)",
                file="zones", column=col,
                fix="use contiguous bands pop_0_4, pop_5_9, ... ending with one pop_<age>_plus")
        if hi is not None:
            if hi < lo:
                raise InputError(f"age band '{col}' ends before it starts", file="zones",
                                 column=col, fix="write pop_<first age>_<last age>")
            expected = hi + 1
    if bands[-1][1] > OLDEST_AGE:
        raise InputError(f"age band '{bands[-1][0]}' starts above {OLDEST_AGE}", file="zones",
                         column=bands[-1][0], fix=f"start the open band at {OLDEST_AGE} or below")
    return bands


def band_weights(bands, age_weights=REFERENCE_AGE_WEIGHTS) -> dict[str, float]:
    """Weight of each band: the mean of the per-year reference weights over its ages."""
    per_year = _per_year_weights(age_weights)
    return {col: float(per_year[lo:(OLDEST_AGE if hi is None else hi) + 1].mean())
            for col, lo, hi in bands}


STANDARDISED_COLUMN = "population_standardised"


def demand_population(instance: Instance, *, age_weights=REFERENCE_AGE_WEIGHTS,
                      tolerance: float = 0.01) -> tuple[pd.Series, str]:
    """(P_i per zone, basis): the age-standardised population when the zones say it.

    In order: age bands given by the user (P_i = sum_b pop_{i,b} x weight_b, DREES 2023
    weights); else the zones' ``population_standardised`` column (the DREES pop_std that
    ``optisite instance build`` ships; a zone left empty takes its plain population); else
    plain population. The bands of a zone must add up to its ``population`` within
    ``tolerance`` (relative, and at least one person): otherwise the zones table
    contradicts itself and we say where.
    """
    zones = instance.zones
    population = zones["population"].astype(float)
    bands = age_band_columns(zones)
    if not bands and STANDARDISED_COLUMN in zones.columns:
        given = pd.to_numeric(zones[STANDARDISED_COLUMN], errors="coerce").astype(float)
        if given.notna().any():
            missing = int(given.isna().sum())
            basis = "standardised population (DREES 2023 pop_std, zones column population_standardised)"
            if missing:
                basis += f"; plain population for the {missing} zones without it"
            return given.fillna(population).rename("demand_population"), basis
    if not bands:
        return population.rename("demand_population"), "population (no age bands in the zones table)"
    values = {}
    for col, _, _ in bands:
        text = zones[col].astype(str).str.strip().str.replace(",", ".", regex=False)
        v = pd.to_numeric(text, errors="coerce")
        bad = v.isna() | (v < 0) | ~np.isfinite(v)
        if bad.any():
            zid = zones.index[np.flatnonzero(bad.to_numpy())[0]]
            raise InputError(f"zone '{zid}': '{zones.at[zid, col]}' is not a non-negative number",
                             file="zones", column=col, fix="give every age band as a headcount")
        values[col] = v.astype(float)
    frame = pd.DataFrame(values, index=zones.index)
    total = frame.sum(axis=1)
    off = (total - population).abs() > np.maximum(tolerance * population, 1.0)
    if off.any():
        zid = zones.index[np.flatnonzero(off.to_numpy())[0]]
        raise InputError(
            f"zone '{zid}': age bands add up to {total[zid]:g}, population is {population[zid]:g}",
            file="zones", column=bands[0][0], fix="make the age bands add up to the population")
    weights = band_weights(bands, age_weights)
    standardised = frame.mul(pd.Series(weights)).sum(axis=1)
    basis = f"age-standardised population ({len(bands)} age bands, {bands[0][0]} ... {bands[-1][0]})"
    return standardised.rename("demand_population"), basis


# --------------------------------------------------------------------------------------
# Supply in activity (consultations/year)
# --------------------------------------------------------------------------------------

def practice_capacity(instance: Instance, days_given: pd.Series | None = None) -> pd.Series:
    """Consultations/year of each existing practice (index practice_id).

    :func:`optisite.rules.practice_capacity` (physicians x per-FTE capacity, or x the
    ``activity`` column counted with the DREES caps), less ``days_given``
    (physician-days/week given to cabinets secondaires, default none) x
    consultations_per_day_liberal x working_weeks.
    """
    p = instance.parameters
    full = rules.practice_capacity(p, instance.practices)
    if days_given is not None:
        full = full - days_given.reindex(full.index).fillna(0.0).astype(float) * rules.per_liberal_weekly_day(p)
    return full.rename("capacity")


def apl_practice_supply(instance: Instance, capacity: pd.Series) -> pd.Series:
    """The part of each practice's consultations that the APL counts: ``capacity`` (before
    or after the plan) less :func:`optisite.rules.apl_left_out` (with the parameter
    ``apl_exclude_65_plus``, the share of GPs aged 65 and over, as in the DREES
    ``apl_mg_lt65``; nothing otherwise)."""
    pr = instance.practices
    left_out = rules.apl_left_out(instance.parameters, pr, rules.practice_capacity(instance.parameters, pr))
    return capacity - left_out.reindex(capacity.index).fillna(0.0)


def site_capacity(instance: Instance, days_per_week: pd.Series | None = None,
                  fte: pd.Series | None = None) -> pd.Series:
    """Consultations/year of each candidate site for the given staffing (index site_id).

    Cabinet secondaire: days/week x consultations_per_day_liberal x working_weeks;
    centre de santé: FTE x days_per_fte x consultations_per_day_salaried x working_weeks.
    """
    p = instance.parameters
    s = instance.sites
    d = (days_per_week if days_per_week is not None else pd.Series(dtype=float)).reindex(s.index).fillna(0.0)
    f = (fte if fte is not None else pd.Series(dtype=float)).reindex(s.index).fillna(0.0)
    cab = d * p.consultations_per_day_liberal * p.working_weeks
    cds = f * p.days_per_fte * p.consultations_per_day_salaried * p.working_weeks
    return pd.Series(np.where(s["kind"] == "cabinet_secondaire", cab, cds), index=s.index,
                     name="capacity")


# --------------------------------------------------------------------------------------
# The decay-weighted catchment structure
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AplInputs:
    """Everything APL needs that does not depend on the supply.

    ``weights`` is the sparse matrix W (zones x supply zones), W[i, z] = w(t_iz),
    zeros not stored; ``catchment`` is D_z = sum_i W[i, z] P_i. Supply points
    standing in the same zone share a column: their catchment is the same.
    """

    decay: str
    zone_ids: pd.Index          # rows of W, in instance.zones order
    supply_zone_ids: pd.Index   # columns of W: zones hosting a practice or a site
    population: pd.Series       # inhabitants (for the summary)
    demand_population: pd.Series  # P_i used in step 1 (standardised or plain)
    demand_basis: str
    weights: sp.csr_matrix
    catchment: np.ndarray
    points: pd.DataFrame        # supply points: index source_id; source_kind, zone_id, column

    @property
    def inverse_catchment(self) -> np.ndarray:
        """1 / D_z, and 0 where the catchment is empty (such a point serves nobody)."""
        d = self.catchment
        out = np.zeros_like(d)
        np.divide(1.0, d, out=out, where=d > 0)
        return out

    def apl_from_zone_supply(self, supply_by_zone: np.ndarray) -> pd.Series:
        """APL_i = sum_z W[i, z] S_z / D_z for supply aggregated by supply zone."""
        ratio = np.asarray(supply_by_zone, dtype=float) * self.inverse_catchment
        return pd.Series(self.weights @ ratio, index=self.zone_ids, name="apl")

    def apl(self, supply: pd.Series) -> pd.Series:
        """APL per zone for consultations/year per supply point (index source_id)."""
        s = supply.reindex(self.points.index).fillna(0.0).to_numpy(float)
        by_zone = np.bincount(self.points["column"].to_numpy(), weights=s,
                              minlength=len(self.supply_zone_ids))
        return self.apl_from_zone_supply(by_zone)


def _points(instance: Instance) -> pd.DataFrame:
    pr = instance.practices
    si = instance.sites
    frames = [
        pd.DataFrame({"source_kind": "practice", "zone_id": pr["zone_id"].to_numpy()},
                     index=pd.Index(pr.index, dtype=object)),
        pd.DataFrame({"source_kind": si["kind"].to_numpy(), "zone_id": si["zone_id"].to_numpy()},
                     index=pd.Index(si.index, dtype=object)),
    ]
    points = pd.concat(frames)
    points.index.name = "source_id"
    clash = points.index.duplicated()
    if clash.any():
        sid = points.index[clash][0]
        raise InputError(f"id '{sid}' names both a practice and a site", file="sites",
                         column="site_id", fix="give practices and sites distinct ids")
    return points


def apl_inputs(instance: Instance, decay: str | None = None, *,
               age_weights=REFERENCE_AGE_WEIGHTS) -> AplInputs:
    """The decay-weighted sparse catchment structure of ``instance`` (see :class:`AplInputs`)."""
    decay = decay or instance.parameters.apl_decay
    if decay not in DECAYS:
        raise InputError(f"unknown decay '{decay}'", column="apl_decay",
                         fix="use one of: " + ", ".join(DECAYS))
    zone_ids = pd.Index(instance.zones.index, dtype=object)
    population = instance.zones["population"].astype(float)
    demand, basis = demand_population(instance, age_weights=age_weights)
    points = _points(instance)
    supply_zone_ids = pd.Index(pd.unique(points["zone_id"].to_numpy()), dtype=object)
    points["column"] = supply_zone_ids.get_indexer(points["zone_id"])
    cutoff = max(upper for upper, _ in decay_steps(decay))
    pairs = instance.travel.pairs(zone_ids, supply_zone_ids, cutoff)
    w = decay_weight(pairs["minutes"].to_numpy(float), decay)
    keep = w > 0
    rows = zone_ids.get_indexer(pairs["from_id"].to_numpy()[keep])
    cols = supply_zone_ids.get_indexer(pairs["to_id"].to_numpy()[keep])
    weights = sp.csr_matrix((w[keep], (rows, cols)), shape=(len(zone_ids), len(supply_zone_ids)))
    catchment = np.asarray(weights.T @ demand.reindex(zone_ids).to_numpy(float)).ravel()
    return AplInputs(decay=decay, zone_ids=zone_ids, supply_zone_ids=supply_zone_ids,
                     population=population, demand_population=demand, demand_basis=basis,
                     weights=weights, catchment=catchment, points=points)


def _inputs(instance: Instance, decay: str | None, inputs: AplInputs | None) -> AplInputs:
    if inputs is not None:
        if decay is not None and decay != inputs.decay:
            raise ValueError(f"inputs were built with decay '{inputs.decay}', not '{decay}'")
        return inputs
    return apl_inputs(instance, decay)


# --------------------------------------------------------------------------------------
# APL before and after
# --------------------------------------------------------------------------------------

def apl_before(instance: Instance, decay: str | None = None, *,
               inputs: AplInputs | None = None) -> pd.Series:
    """APL per zone with the existing practices only (full activity, no site open)."""
    x = _inputs(instance, decay, inputs)
    return x.apl(apl_practice_supply(instance, practice_capacity(instance))).rename("apl_before")


def _check_ids(values: pd.Series, known: pd.Index, what: str, file: str, column: str) -> pd.Series:
    values = pd.Series(values, dtype=float)
    values.index = pd.Index(values.index.astype(str), dtype=object)
    unknown = values.index.difference(known)
    if len(unknown):
        raise InputError(f"unknown {what} '{unknown[0]}'", file=file, column=column,
                         fix=f"use {what} ids of the instance")
    bad = ~np.isfinite(values.to_numpy()) | (values.to_numpy() < 0)
    if bad.any():
        raise InputError(f"{what} '{values.index[bad][0]}': capacity must be a non-negative number",
                         file=file, column="capacity", fix="give consultations per year")
    if values.index.duplicated().any():
        raise InputError(f"{what} '{values.index[values.index.duplicated()][0]}' is given twice",
                         file=file, column=column, fix="give one row per id")
    return values


def apl_after(instance: Instance, site_supply: pd.Series,
              practice_supply: pd.Series | None = None, decay: str | None = None, *,
              inputs: AplInputs | None = None) -> pd.Series:
    """APL per zone after a plan.

    ``site_supply``: consultations/year per site_id (absent sites are closed, 0);
    ``practice_supply``: consultations/year per practice_id after the days given
    away (every practice must be present; ``None`` keeps the existing capacity).
    """
    x = _inputs(instance, decay, inputs)
    sites = _check_ids(site_supply, instance.sites.index, "site", "sites.csv", "site_id")
    if practice_supply is None:
        practices = practice_capacity(instance)
    else:
        practices = _check_ids(practice_supply, instance.practices.index, "practice",
                               "practices.csv", "practice_id")
        missing = instance.practices.index.difference(practices.index)
        if len(missing):
            raise InputError(f"practice '{missing[0]}' has no capacity after the plan",
                             file="practices.csv", column="practice_id",
                             fix="give one row per existing practice")
    practices = apl_practice_supply(instance, practices)
    return x.apl(pd.concat([practices, sites])).rename("apl_after")


def apl_linear_coefficients(instance: Instance, decay: str | None = None, *,
                            inputs: AplInputs | None = None) -> pd.DataFrame:
    """a_ij for every zone i and supply point j with a_ij > 0, as a long sparse table.

    Columns ``zone_id, source_id, source_kind`` (``practice``, ``cabinet_secondaire``,
    ``centre_de_sante``), ``coefficient`` (APL of the zone per consultation/year at
    the point): APL_i = sum_j coefficient_ij x S_j exactly, for any supplies S.
    The apl model writes S_j from its staffing variables (site capacity; practice
    capacity less the days it gives) and needs nothing else from here.
    """
    x = _inputs(instance, decay, inputs)
    pts = x.points
    # Incidence of points in supply zones: M[z, j] = 1 when point j stands in zone z.
    incidence = sp.csr_matrix((np.ones(len(pts)), (pts["column"].to_numpy(), np.arange(len(pts)))),
                              shape=(len(x.supply_zone_ids), len(pts)))
    a = (x.weights @ sp.diags(x.inverse_catchment) @ incidence).tocoo()
    keep = a.data > 0
    out = pd.DataFrame({
        "zone_id": x.zone_ids.to_numpy()[a.row[keep]],
        "source_id": pts.index.to_numpy()[a.col[keep]],
        "source_kind": pts["source_kind"].to_numpy()[a.col[keep]],
        "coefficient": a.data[keep],
    })
    return out.sort_values(["zone_id", "source_id"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------

def apl_summary(apl: pd.Series, population: pd.Series,
                thresholds: Iterable[float] = DEFAULT_THRESHOLDS) -> dict:
    """Population under each threshold (strictly below) and population-weighted mean APL."""
    pop = population.reindex(apl.index).fillna(0.0).astype(float)
    values = apl.astype(float)
    total = float(pop.sum())
    under = {float(t): float(pop[values < t].sum()) for t in thresholds}
    return {
        "population": total,
        "under": under,
        "share_under": {t: (v / total if total > 0 else 0.0) for t, v in under.items()},
        "mean": float((values * pop).sum() / total) if total > 0 else float("nan"),
    }


def read_solution_supply(folder, instance: Instance) -> tuple[pd.Series, pd.Series]:
    """(site_supply, practice_supply) from a solution folder (models/outputs.md contract)."""
    from pathlib import Path

    folder = Path(folder)
    out = []
    for name, id_col, cap_col, required in (("sites.csv", "site_id", "capacity", True),
                                            ("practices.csv", "practice_id", "capacity_after",
                                             len(instance.practices) > 0)):
        path = folder / name
        if not path.is_file():
            if required:
                raise InputError(f"no {name} in '{folder}'", file=str(folder),
                                 fix="give a folder written by optisite solve")
            out.append(None)
            continue
        from .exports import csv_read_options

        opts = csv_read_options(path)  # plain or excel-fr (';', decimal comma, BOM)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, sep=opts["sep"], encoding=opts["encoding"])
        for col in (id_col, cap_col):
            if col not in frame.columns:
                raise InputError("required column is missing", file=name, column=col,
                                 fix="give a folder written by optisite solve")
        if opts["decimal"] != ".":
            frame[cap_col] = frame[cap_col].str.replace(opts["decimal"], ".", regex=False)
        values = pd.to_numeric(frame[cap_col].str.strip(), errors="coerce")
        if len(frame) and (frame[cap_col].str.strip() == "").all():
            raise InputError(f"the plan gives no {cap_col} (a coverage-model plan does not staff "
                             "its sites)", file=name, column=cap_col,
                             fix="run optisite apl --solution on a staffing or apl solution")
        if values.isna().any():
            pos = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise InputError(f"'{frame[cap_col].iloc[pos]}' is not a number", file=name,
                             row=pos + 2, column=cap_col, fix="give consultations per year")
        out.append(pd.Series(values.to_numpy(float), index=frame[id_col].str.strip().to_numpy()))
    return out[0], out[1]


def apl_table(instance: Instance, decay: str | None = None, *,
              site_supply: pd.Series | None = None,
              practice_supply: pd.Series | None = None,
              inputs: AplInputs | None = None) -> pd.DataFrame:
    """Per-zone table: name, population, demand_population, apl_before (, apl_after), and
    ``apl_official`` / ``planning`` when the zones carry them (built instances)."""
    from .official import apl_official

    x = _inputs(instance, decay, inputs)
    z = instance.zones
    table = pd.DataFrame({"name": z["name"], "population": x.population,
                          "demand_population": x.demand_population.reindex(z.index)})
    if "planning" in z:
        table["planning"] = z["planning"].astype(int)
    table["apl_before"] = apl_before(instance, inputs=x)
    if site_supply is not None:
        table["apl_after"] = apl_after(instance, site_supply, practice_supply, inputs=x)
    if "apl_official" in z:
        table["apl_official"] = apl_official(instance)
    table.index.name = "zone_id"
    return table.sort_index()
