"""Planning parameters: one typed record, every default with its unit and source.

The same table is rendered in ``models/parameters.md``; a test keeps both in step.
Values come, in increasing priority, from these defaults, the instance manifest's
``[parameters]``, a scenario file, then command-line options.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import InputError

KINDS = ("cabinet_secondaire", "centre_de_sante")

# Upper bounds of plausible values, shared with the instance tables' checks: beyond them a
# value is a typing or unit mistake, and letting it through would only break the models'
# scaling (a cost of 1e308 EUR reaches HiGHS as infinity).
MAX_COST = 1e12  # EUR: above the whole French health budget
MAX_FTE = 1e5  # physicians of one practice or site
MAX_MINUTES = 1e6  # minutes of one travel-table row, and of any cutoff compared with them

# Parameters that divide somewhere: zero would be a division by zero, not a scenario.
DIVISORS = {"consultations_per_inhabitant", "consultations_per_day_liberal",
            "consultations_per_day_salaried", "working_weeks", "days_per_fte", "speed_kmh",
            "detour_factor"}


def _p(default, unit: str, source: str, minimum: float | None = 0.0, choices=None,
       maximum: float | None = None):
    """A parameter field: default, unit, source and the range a value must lie in.

    A parameter that divides (consultations per day or per inhabitant, weeks, days a week)
    has a minimum above zero; ``maximum`` is where larger values stop meaning anything.
    """
    return field(
        default=default,
        metadata={"unit": unit, "source": source, "minimum": minimum, "maximum": maximum,
                  "choices": choices},
    )


@dataclass(frozen=True)
class Parameters:
    """Every number the models use that is not read from an instance table."""

    # --- access ---------------------------------------------------------
    coverage_minutes: float = _p(
        20.0, "min",
        "DREES APL: the distance decay reaches 0 at 20 minutes by car "
        "(Barlet et al., DREES Études et Résultats 2012; DREES 2023 method note)",
        maximum=MAX_MINUTES,
    )
    # --- demand ---------------------------------------------------------
    consultations_per_inhabitant: float = _p(
        3.4, "consultations/inhabitant/year",
        "national mean APL for GPs, about 3.3-3.4 consultations per inhabitant per year "
        "(DREES, APL 2022); used as demand so that the national supply meets the mean need",
        minimum=0.1, maximum=100.0,
    )
    # --- supply -----------------------------------------------------------
    consultations_per_day_liberal: float = _p(
        24.0, "consultations/physician-day",
        "Cour des comptes 2024: more than 3 consultations per opening hour in liberal "
        "practice, times an 8-hour day",
        minimum=1.0, maximum=200.0,
    )
    consultations_per_day_salaried: float = _p(
        11.2, "consultations/physician-day",
        "Cour des comptes 2024: 1.6 consultations per opening hour observed in a hospital "
        "centre de santé, times a 7-hour salaried day",
        minimum=1.0, maximum=200.0,
    )
    working_weeks: float = _p(
        46.0, "weeks/year",
        "assumption: 52 weeks less 5 weeks of leave and about 1 week of public holidays",
        minimum=1.0, maximum=53.0,
    )
    days_per_fte: float = _p(
        5.0, "days/week",
        "assumption: a full-time GP works 5 days a week (DREES 2019 reports about 54 hours "
        "a week for liberal GPs)",
        minimum=1.0, maximum=7.0,
    )
    max_secondary_days_per_gp: float = _p(
        1.0, "days/week per FTE",
        "Cour des comptes 2024: the reference secondary activity is one day a week "
        "(about 40 days a year)",
        maximum=7.0,
    )
    max_travel_minutes: float = _p(
        60.0, "min",
        "Cour des comptes 2024: main and secondary sites are typically less than one hour "
        "apart (its examples: 21 to 53 minutes)",
        maximum=MAX_MINUTES,
    )
    # --- cabinets secondaires ----------------------------------------------
    cabinet_min_days: float = _p(
        1.0, "days/week",
        "Cour des comptes 2024 reference presence of one day a week",
        maximum=7.0,
    )
    cabinet_max_days: float = _p(
        5.0, "days/week",
        "assumption: one consulting room open on working days",
        maximum=7.0,
    )
    cabinet_fixed_cost: float = _p(
        15000.0, "EUR/year",
        "assumption: rent, equipment and running costs of one consulting room lent by a "
        "commune (order of magnitude from municipal calls for GP premises)",
        maximum=MAX_COST,
    )
    cabinet_cost_per_day: float = _p(
        250.0, "EUR/physician-day",
        "CSTM contract: 25 % of fees earned in the zone (24 consultations x EUR 30 = EUR 720 "
        "a day, so EUR 180) plus travel (about 100 km at EUR 0.60/km, EUR 60), rounded",
        maximum=MAX_COST,
    )
    # --- centres de santé ---------------------------------------------------
    centre_min_fte: float = _p(
        2.0, "FTE",
        "assumption: two salaried GPs for continuity of care (leave, absences)",
        maximum=MAX_FTE,
    )
    centre_max_fte: float = _p(
        10.0, "FTE",
        "assumption: largest centres de santé observed by the Cour des comptes 2024 employ "
        "about ten GPs",
        maximum=MAX_FTE,
    )
    centre_fixed_cost: float = _p(
        100000.0, "EUR/year",
        "assumption: premises, reception staff and management of a centre, annualised "
        "opening cost included",
        maximum=MAX_COST,
    )
    centre_cost_per_fte: float = _p(
        40000.0, "EUR/FTE/year",
        "Cour des comptes 2024: centres run structural deficits of 10 to 50 %; 30 % of an "
        "employer cost of about EUR 130,000 per salaried GP",
        maximum=MAX_COST,
    )
    # --- budget and objective -------------------------------------------------
    budget: float = _p(
        1_000_000.0, "EUR/year",
        "placeholder: each instance's manifest sets the budget its planners study",
        maximum=MAX_COST,
    )
    apl_threshold: float = _p(
        2.5, "consultations/inhabitant/year",
        "ZIP zoning: territories under 2.5 are zones d'intervention prioritaire "
        "(arrêté of 1 Oct 2021, DGOS zoning method)",
        maximum=100.0,
    )
    apl_decay: str = _p(
        "drees2019", "name",
        "DREES 2019+ steps: <10 min 1, 10-15 0.66, 15-20 0.33, >=20 0; 'drees2012': "
        "<5 1, 5-10 0.3, 10-15 0.1",
        minimum=None,
        choices=("drees2019", "drees2012"),
    )
    # --- travel times -----------------------------------------------------------
    detour_factor: float = _p(
        1.3, "ratio",
        "road circuity factor: Ballou, Rahardja and Sakai (2002), Transportation Research "
        "A 36(9), report factors of about 1.2 to 1.4 for European road networks",
        minimum=1.0, maximum=10.0,
    )
    speed_kmh: float = _p(
        60.0, "km/h",
        "assumption: mean door-to-door car speed on French secondary roads",
        minimum=1.0, maximum=300.0,
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
        minimum=1.0, maximum=1e12,
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
        """One row per parameter: name, default, unit, source, accepted values."""
        return [
            {
                "name": f.name,
                "default": f.default,
                "unit": f.metadata["unit"],
                "source": f.metadata["source"],
                "range": accepted(f),
            }
            for f in dataclasses.fields(cls)
        ]

    @classmethod
    def check_value(cls, name: str, raw: Any, *, file: str = "parameters", column: str | None = None):
        """``raw`` checked as a value of parameter ``name`` (known name, type, range); the clean value."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if name not in fields:
            guess = difflib.get_close_matches(str(name).lower(), list(fields), n=1, cutoff=0.75)
            raise InputError(
                f"unknown parameter '{str(name)[:60]}'",
                file=file,
                column=column or str(name),
                fix=(f"did you mean '{guess[0]}'? " if guess else "")
                + "the parameters are listed in models/parameters.md",
            )
        return _coerce(fields[name], raw, file, column or name)

    def with_overrides(self, values: Mapping[str, Any], *, file: str = "parameters") -> "Parameters":
        """Return a copy with ``values`` applied, each checked for name, type and range."""
        clean: dict[str, Any] = {}
        for key, raw in values.items():
            if raw is None:
                continue
            clean[key] = self.check_value(key, raw, file=file)
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


def accepted(f: dataclasses.Field) -> str:
    """The values a parameter accepts, as the documentation writes them."""
    meta = f.metadata
    if f.type in ("bool", bool):
        return "true or false"
    if f.type in ("str", str):
        return " or ".join(meta["choices"]) if meta.get("choices") else "text"
    lo, hi = meta.get("minimum"), meta.get("maximum")
    return f"{_num(lo)} to {_num(hi)}" if hi is not None else f"at least {_num(lo)}"


def _num(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e7:
        return f"{int(value):,}"
    return f"{value:g}".replace("e+", "e")


def _coerce(f: dataclasses.Field, raw: Any, file: str, column: str | None = None):
    meta = f.metadata
    column = column or f.name
    if isinstance(raw, (dict, list, tuple)):
        kind = "table" if isinstance(raw, dict) else "list"
        expected = "true or false" if f.type in ("bool", bool) else "a text" if f.type in ("str", str) \
            else "a number"
        raise InputError(f"a {kind} is not {expected}", file=file, column=column,
                         fix=f"give one value: {accepted(f)}")
    if f.type in ("bool", bool):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
            return raw.strip().lower() in {"true", "1", "yes"}
        raise InputError(f"'{str(raw)[:40]}' is not true or false", file=file, column=column,
                         fix="write true or false")
    if f.type in ("str", str):
        value = str(raw).strip()
        if meta.get("choices") and value not in meta["choices"]:
            raise InputError(
                f"'{value[:40]}' is not a known value", file=file, column=column,
                fix="use one of: " + ", ".join(meta["choices"]),
            )
        if not value:
            raise InputError("empty value", file=file, column=column, fix="give a name")
        return value
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise InputError(f"'{str(raw)[:40]}' is not a number", file=file, column=column,
                         fix=f"give a number in {meta['unit']} ({accepted(f)})")
    try:
        value = float(str(raw).replace(",", ".").replace("_", "")) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"'{str(raw)[:40]}' is not a number", file=file, column=column,
                         fix=f"give a number in {meta['unit']} ({accepted(f)})") from None
    if not math.isfinite(value):
        raise InputError(f"'{str(raw)[:40]}' is not a finite number", file=file, column=column,
                         fix=f"give a number in {meta['unit']} ({accepted(f)})")
    if meta.get("minimum") is not None and value < meta["minimum"]:
        why = " (it divides)" if meta["minimum"] > 0 and value >= 0 and f.name in DIVISORS else ""
        raise InputError(
            f"{value:g} is below the minimum {_num(meta['minimum'])} {meta['unit']}{why}",
            file=file, column=column, fix=f"give a value from {accepted(f)}",
        )
    if meta.get("maximum") is not None and value > meta["maximum"]:
        raise InputError(
            f"{value:g} is above the maximum {_num(meta['maximum'])} {meta['unit']}",
            file=file, column=column,
            fix=f"give a value from {accepted(f)} (check the unit: {meta['unit']})",
        )
    return value


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

    lines = [TABLE_BEGIN, "", "| name | default | unit | source | accepted |", "|---|---|---|---|---|"]
    for row in Parameters.describe():
        lines.append(f"| `{row['name']}` | {cell(format_default(row['default']))} | {cell(row['unit'])} "
                     f"| {cell(row['source'])} | {cell(row['range'])} |")
    lines += ["", TABLE_END]
    return "\n".join(lines)

