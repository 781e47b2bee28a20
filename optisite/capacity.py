"""The one place where physician time becomes consultations a year.

Models, tables and reports take their capacities from here; only the independent
checker writes the formula again, on purpose.
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
