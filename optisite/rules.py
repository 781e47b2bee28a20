"""The one place where physician time becomes consultations a year, and sites cost euros.

Models, tables and reports take their capacities and costs from here; only the
independent checker writes the formulas again, on purpose.
"""

from __future__ import annotations

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
