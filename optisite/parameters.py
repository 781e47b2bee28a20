"""Planning parameters: one typed record, every default with its unit and source.

The same table is rendered in ``models/parameters.md``; a test keeps both in step.
Values come, in increasing priority, from these defaults, the instance manifest's
``[parameters]``, a scenario file, then command-line options.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import InputError

KINDS = ("cabinet_secondaire", "centre_de_sante")


def _p(default, unit: str, source: str, minimum: float | None = 0.0, choices=None):
    return field(
        default=default,
        metadata={"unit": unit, "source": source, "minimum": minimum, "choices": choices},
    )


@dataclass(frozen=True)
class Parameters:
    """Every number the models use that is not read from an instance table."""

    # --- access ---------------------------------------------------------
    coverage_minutes: float = _p(
        20.0, "min",
        "DREES APL: the distance decay reaches 0 at 20 minutes by car "
        "(Barlet et al., DREES Études et Résultats 2012; DREES 2023 method note)",
    )
    # --- demand ---------------------------------------------------------
    consultations_per_inhabitant: float = _p(
        3.4, "consultations/inhabitant/year",
        "national mean APL for GPs, about 3.3-3.4 consultations per inhabitant per year "
        "(DREES, APL 2022); used as demand so that the national supply meets the mean need",
    )
    # --- supply -----------------------------------------------------------
    consultations_per_day_liberal: float = _p(
        24.0, "consultations/physician-day",
        "Cour des comptes 2024: more than 3 consultations per opening hour in liberal "
        "practice, times an 8-hour day",
    )
    consultations_per_day_salaried: float = _p(
        11.2, "consultations/physician-day",
        "Cour des comptes 2024: 1.6 consultations per opening hour observed in a hospital "
        "centre de santé, times a 7-hour salaried day",
    )
    working_weeks: float = _p(
        46.0, "weeks/year",
        "assumption: 52 weeks less 5 weeks of leave and about 1 week of public holidays",
        minimum=1.0,
    )
    days_per_fte: float = _p(
        5.0, "days/week",
        "assumption: a full-time GP works 5 days a week (DREES 2019 reports about 54 hours "
        "a week for liberal GPs)",
        minimum=1.0,
    )
    max_secondary_days_per_gp: float = _p(
        1.0, "days/week per FTE",
        "Cour des comptes 2024: the reference secondary activity is one day a week "
        "(about 40 days a year)",
    )
    max_travel_minutes: float = _p(
        60.0, "min",
        "Cour des comptes 2024: main and secondary sites are typically less than one hour "
        "apart (its examples: 21 to 53 minutes)",
    )
    # --- cabinets secondaires ----------------------------------------------
    cabinet_min_days: float = _p(
        1.0, "days/week",
        "Cour des comptes 2024 reference presence of one day a week",
    )
    cabinet_max_days: float = _p(
        5.0, "days/week",
        "assumption: one consulting room open on working days",
    )
    cabinet_fixed_cost: float = _p(
        15000.0, "EUR/year",
        "assumption: rent, equipment and running costs of one consulting room lent by a "
        "commune (order of magnitude from municipal calls for GP premises)",
    )
    cabinet_cost_per_day: float = _p(
        250.0, "EUR/physician-day",
        "CSTM contract: 25 % of fees earned in the zone (24 consultations x EUR 30 = EUR 720 "
        "a day, so EUR 180) plus travel (about 100 km at EUR 0.60/km, EUR 60), rounded",
    )
    # --- centres de santé ---------------------------------------------------
    centre_min_fte: float = _p(
        2.0, "FTE",
        "assumption: two salaried GPs for continuity of care (leave, absences)",
    )
    centre_max_fte: float = _p(
        10.0, "FTE",
        "assumption: largest centres de santé observed by the Cour des comptes 2024 employ "
        "about ten GPs",
    )
    centre_fixed_cost: float = _p(
        100000.0, "EUR/year",
        "assumption: premises, reception staff and management of a centre, annualised "
        "opening cost included",
    )
    centre_cost_per_fte: float = _p(
        40000.0, "EUR/FTE/year",
        "Cour des comptes 2024: centres run structural deficits of 10 to 50 %; 30 % of an "
        "employer cost of about EUR 130,000 per salaried GP",
    )
    # --- budget and objective -------------------------------------------------
    budget: float = _p(
        1_000_000.0, "EUR/year",
        "placeholder: each instance's manifest sets the budget its planners study",
    )
    apl_threshold: float = _p(
        2.5, "consultations/inhabitant/year",
        "ZIP zoning: territories under 2.5 are zones d'intervention prioritaire "
        "(arrêté of 1 Oct 2021, DGOS zoning method)",
    )
    apl_decay: str = _p(
        "drees2019", "name",
        "DREES APL 2019 to 2023 steps (workbook apl_generalistes.xlsx, sheet 'Paramètres'): "
        "<10 min 1, 10-15 2/3, 15-20 1/3, >=20 0; 'drees2012' (Barlet et al. 2012): "
        "<5 1, 5-10 0.3, 10-15 0.1",
        minimum=None,
        choices=("drees2019", "drees2012"),
    )
    apl_exclude_65_plus: bool = _p(
        False, "flag",
        "DREES APL 2023 publishes apl_mg (all GPs, the headline indicator used here by "
        "default) and apl_mg_lt65 (GPs aged 65 and over left out); true leaves out each "
        "practice's share_65_plus",
        minimum=None,
    )
    # --- travel times -----------------------------------------------------------
    detour_factor: float = _p(
        1.3, "ratio",
        "road circuity factor: Ballou, Rahardja and Sakai (2002), Transportation Research "
        "A 36(9), report factors of about 1.2 to 1.4 for European road networks",
        minimum=1.0,
    )
    speed_kmh: float = _p(
        60.0, "km/h",
        "assumption: mean door-to-door car speed on French secondary roads",
        minimum=1.0,
    )
    travel_symmetric: bool = _p(
        False, "flag",
        "a travel row A->B also gives B->A when true; off by default so that a one-way "
        "distancier stays one-way",
        minimum=None,
    )
    max_pairs: float = _p(
        50_000_000, "pairs",
        "safety limit on reachable (origin, destination) pairs kept in memory: measured "
        "(tracemalloc, `tests/test_travel.py`) at about 35 bytes a pair kept and 110-135 bytes "
        "a pair at the peak of the computation, so 50 million pairs is about 6-7 GB at the "
        "peak; the loader refuses more with a one-line error instead of swapping",
        minimum=1.0,
    )
    # --- who pays ---------------------------------------------------------------
    funder_cabinet_fixed: str = _p(
        "collectivites", "funder", "communes usually provide secondary premises", minimum=None
    )
    funder_cabinet_days: str = _p(
        "assurance_maladie", "funder", "CSTM contract of the Assurance maladie", minimum=None
    )
    funder_centre_fixed: str = _p(
        "collectivites", "funder", "centres de santé run by communes or départements",
        minimum=None,
    )
    funder_centre_fte: str = _p(
        "ars_hopital", "funder", "deficit covered by the ARS (FIR) or the hospital operator",
        minimum=None,
    )

    # ------------------------------------------------------------------------
    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """One row per parameter: name, default, unit, source."""
        return [
            {
                "name": f.name,
                "default": f.default,
                "unit": f.metadata["unit"],
                "source": f.metadata["source"],
            }
            for f in dataclasses.fields(cls)
        ]

    def with_overrides(self, values: Mapping[str, Any], *, file: str = "parameters") -> "Parameters":
        """Return a copy with ``values`` applied, each checked for name, type and range."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for key, raw in values.items():
            if raw is None:
                continue
            if key not in fields:
                raise InputError(
                    f"unknown parameter '{key}'",
                    file=file,
                    column=key,
                    fix="use one of: " + ", ".join(sorted(fields)),
                )
            clean[key] = _coerce(fields[key], raw, file)
        new = dataclasses.replace(self, **clean)
        new._check_consistency(file)
        return new

    def _check_consistency(self, file: str) -> None:
        pairs = [
            ("cabinet_min_days", "cabinet_max_days"),
            ("centre_min_fte", "centre_max_fte"),
            ("max_secondary_days_per_gp", "days_per_fte"),
        ]
        for lo, hi in pairs:
            if getattr(self, lo) > getattr(self, hi):
                raise InputError(
                    f"{lo} = {getattr(self, lo)} is larger than {hi} = {getattr(self, hi)}",
                    file=file,
                    column=lo,
                    fix=f"make {lo} at most {hi}",
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def cutoff_for_apl(self) -> float:
        from .decay import decay_steps

        return max(upper for upper, _ in decay_steps(self.apl_decay))

    def largest_cutoff(self) -> float:
        """The longest travel time any model or indicator can look at."""
        return max(self.coverage_minutes, self.max_travel_minutes, self.cutoff_for_apl())


def _coerce(f: dataclasses.Field, raw: Any, file: str):
    meta = f.metadata
    if f.type in ("bool", bool):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
            return raw.strip().lower() in {"true", "1", "yes"}
        raise InputError(f"'{raw}' is not true or false", file=file, column=f.name,
                         fix="write true or false")
    if f.type in ("str", str):
        value = str(raw).strip()
        if meta.get("choices") and value not in meta["choices"]:
            raise InputError(
                f"'{value}' is not a known value", file=file, column=f.name,
                fix="use one of: " + ", ".join(meta["choices"]),
            )
        if not value:
            raise InputError("empty value", file=file, column=f.name, fix="give a name")
        return value
    if isinstance(raw, bool):
        raise InputError(f"'{raw}' is not a number", file=file, column=f.name,
                         fix=f"give a number in {meta['unit']}")
    try:
        value = float(str(raw).replace(",", ".").replace("_", "")) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"'{str(raw)[:40]}' is not a number", file=file, column=f.name,
                         fix=f"give a number in {meta['unit']}") from None
    if not math.isfinite(value):
        raise InputError(f"'{str(raw)[:40]}' is not a finite number", file=file, column=f.name,
                         fix=f"give a number in {meta['unit']}")
    if meta.get("minimum") is not None and value < meta["minimum"]:
        raise InputError(
            f"{value:g} is below the minimum {meta['minimum']:g} {meta['unit']}",
            file=file, column=f.name, fix=f"give a value of at least {meta['minimum']:g}",
        )
    return value


DEFAULTS = Parameters()

TABLE_BEGIN = ("<!-- parameters table: generated from Parameters.describe() by "
               "optisite.parameters.markdown_table(); do not edit by hand -->")
TABLE_END = "<!-- end of parameters table -->"


def format_default(value: Any) -> str:
    """A default as one would write it in ``[parameters]`` of an instance.toml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (int, float)) and float(value).is_integer():
        return f"{int(value):_}" if abs(value) >= 10_000 else str(int(value))
    return f"{value:g}"


def markdown_table() -> str:
    """The table of ``models/parameters.md``: one row per parameter, from :meth:`Parameters.describe`."""
    def cell(text: str) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")

    lines = [TABLE_BEGIN, "", "| name | default | unit | source |", "|---|---|---|---|"]
    for row in Parameters.describe():
        lines.append(f"| `{row['name']}` | {cell(format_default(row['default']))} | {cell(row['unit'])} "
                     f"| {cell(row['source'])} |")
    lines += ["", TABLE_END]
    return "\n".join(lines)

