"""The one place where physician time becomes consultations a year, and sites cost euros.

Models, tables and reports take their capacities and costs from here; only the
independent checker writes the formulas again, on purpose.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .parameters import Parameters


def per_liberal_weekly_day(p: Parameters) -> float:
    """Consultations a year from one weekly liberal physician-day."""
    return p.consultations_per_day_liberal * p.working_weeks


def per_salaried_fte(p: Parameters) -> float:
    """Consultations a year from one salaried FTE in a centre de santé."""
    return p.consultations_per_day_salaried * p.days_per_fte * p.working_weeks


def per_practice_fte(p: Parameters) -> float:
    """Consultations a year from one full-time liberal GP of an existing practice."""
    return per_liberal_weekly_day(p) * p.days_per_fte


def capacities(p: Parameters) -> dict[str, float]:
    return {"per_liberal_weekly_day": per_liberal_weekly_day(p), "per_salaried_fte": per_salaried_fte(p),
            "per_practice_fte": per_practice_fte(p)}


def site_cost(p: Parameters, fixed, cost_per_day, days_per_week, cost_per_fte, fte, opened=1.0):
    """Annual cost of a site (EUR/year): its fixed cost when open, its weekly physician-days
    over the working weeks at ``cost_per_day``, its salaried FTE at ``cost_per_fte``.
    Works on numbers, pandas columns and Pyomo variables alike."""
    return fixed * opened + p.working_weeks * cost_per_day * days_per_week + cost_per_fte * fte


# How the DREES counts a GP's yearly consultations and visits (2023 method, workbook
# apl_generalistes.xlsx, sheet "Paramètres"; shipped as optisite/data/drees_activity_caps_2023.csv
# and compared by tests/test_drees_parameters.py): up to 250 -> 0; above 250 up to
# 3,600 -> 3,600; above 3,600 up to 6,000 -> as given; above 6,000 -> 6,000.
ACTIVITY_ZERO_UP_TO = 250.0
ACTIVITY_FLOOR = 3600.0
ACTIVITY_CAP = 6000.0


def counted_activity(activity) -> np.ndarray:
    """A GP's yearly consultations and visits as the DREES counts them (2023 caps); NaN stays NaN."""
    a = np.asarray(activity, dtype=float)
    out = np.where(a <= ACTIVITY_ZERO_UP_TO, 0.0,
                   np.where(a <= ACTIVITY_FLOOR, ACTIVITY_FLOOR, np.minimum(a, ACTIVITY_CAP)))
    return np.where(np.isnan(a), np.nan, out)


def practice_capacity(p: Parameters, practices: pd.DataFrame) -> pd.Series:
    """Consultations a year of each existing practice before any plan.

    physicians x per_practice_fte, or, on a row with the optional ``activity`` column
    (consultations and visits a year per GP), physicians x that activity counted with
    the DREES caps. Every model, table and APL takes this figure."""
    full = practices["physicians"].astype(float) * per_practice_fte(p)
    if "activity" in practices.columns:
        counted = pd.Series(counted_activity(pd.to_numeric(practices["activity"], errors="coerce")),
                            index=practices.index)
        full = (practices["physicians"].astype(float) * counted).where(counted.notna(), full)
    return full.rename("capacity")


def apl_left_out(p: Parameters, practices: pd.DataFrame, capacity: pd.Series) -> pd.Series:
    """Consultations a year of each practice that the APL does not count.

    0 by default (the DREES headline ``apl_mg``); with ``apl_exclude_65_plus``, the
    share given by GPs aged 65 and over (column ``share_65_plus``, 0 where empty) of the
    practice's capacity before any plan, as in the DREES ``apl_mg_lt65``. The days a
    practice gives to cabinets secondaires come from the GPs the APL counts
    (:func:`give_cap`), so this figure does not change with the plan."""
    if not p.apl_exclude_65_plus or "share_65_plus" not in practices.columns:
        return pd.Series(0.0, index=practices.index, name="left_out")
    share = pd.to_numeric(practices["share_65_plus"], errors="coerce").fillna(0.0).clip(0.0, 1.0)
    return (share * capacity.reindex(practices.index).astype(float)).rename("left_out")


def give_cap(p: Parameters, practices: pd.DataFrame) -> pd.Series:
    """Weekly physician-days each practice can give to cabinets secondaires (integer).

    At most its ``secondary_days``, its physicians x days_per_fte, and the whole days its
    APL-counted capacity holds (capacity less :func:`apl_left_out`, over
    :func:`per_liberal_weekly_day`): a practice never gives more consultations than it has."""
    capacity = practice_capacity(p, practices)
    counted = capacity - apl_left_out(p, practices, capacity)
    days = np.minimum(np.floor(practices["secondary_days"].astype(float) + 1e-9),
                      np.floor(practices["physicians"].astype(float) * p.days_per_fte + 1e-9))
    days = np.minimum(days, np.floor(counted / per_liberal_weekly_day(p) + 1e-9))
    return days.clip(lower=0).astype(int).rename("give_cap")
