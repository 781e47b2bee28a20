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
       maximum: float | None = None, check: str | None = None):
    """A parameter field: default, unit, source and the range a value must lie in.

    A parameter that divides (consultations per day or per inhabitant, weeks, days a week)
    has a minimum above zero; ``maximum`` is where larger values stop meaning anything.
    ``check`` names a text parameter's own parser in ``TEXT_CHECKS`` (a table of values).
    """
    return field(
        default=default,
        metadata={"unit": unit, "source": source, "minimum": minimum, "maximum": maximum,
                  "choices": choices, "check": check},
    )


@dataclass(frozen=True)
class Parameters:
    """Every number the models use that is not read from an instance table."""

    # --- access ---------------------------------------------------------
    coverage_minutes: float = _p(
        20.0, "min",
        "DREES APL 2023: the distance decay reaches 0 at 20 minutes by car (workbook "
        "apl_generalistes.xlsx, sheet 'Paramètres'); Cour des comptes 2024, annex 1, note "
        "187: the DREES and the Irdes work with twenty minutes for general practice",
        maximum=MAX_MINUTES,
    )
    # --- demand ---------------------------------------------------------
    consultations_per_inhabitant: float = _p(
        3.4, "consultations/inhabitant/year",
        "assumption: yearly GP need per inhabitant set near the national mean supply (DREES "
        "APL 2023: 3.74 consultations per standardised inhabitant, weighted mean of apl_mg); "
        "APL measures accessible supply, not need, so this reads 'today's national average is "
        "enough'; set it for the territory",
        minimum=0.1, maximum=100.0,
    )
    # --- supply -----------------------------------------------------------
    consultations_per_day_liberal: float = _p(
        24.0, "consultations/physician-day",
        "Cour des comptes 2024, chapter III (centres de santé hospitaliers): liberal "
        "practices average more than 3 consultations per opening hour; times an 8-hour day "
        "(assumption); 24 x 5 x 46 = 5,520 a year, near the 5,400 the DREES APL 2023 imputes "
        "to a GP without past activity",
        minimum=1.0, maximum=200.0,
    )
    consultations_per_day_salaried: float = _p(
        12.7, "consultations/physician-day",
        "Cour des comptes 2024, chapter III (centres de santé hospitaliers): 12.7 "
        "consultations per day in the centres de santé of the CH d'Issoudun, a case the Cour "
        "cites as low productivity (1.6 per opening hour against more than 3 in liberal "
        "practice): a prudent figure for a new salaried centre, not a typical one",
        minimum=1.0, maximum=200.0,
    )
    working_weeks: float = _p(
        46.0, "weeks/year",
        "Cour des comptes 2024, annex 2 (DREES panel 2019): liberal GPs take 5.7 weeks of "
        "holidays a year; 52 - 5.7 = 46.3, rounded down to 46",
        minimum=1.0, maximum=53.0,
    )
    days_per_fte: float = _p(
        5.0, "days/week",
        "Cour des comptes 2024, annex 2 (DREES panel 2019): liberal GPs work 54 hours a week "
        "over 9.5 half-days, about 5 days",
        minimum=1.0, maximum=7.0,
    )
    max_secondary_days_per_gp: float = _p(
        1.0, "days/week per FTE",
        "assumption: a GP gives at most one day a week to cabinets secondaires; the Cour des "
        "comptes 2024 (chapter III, note 154) gives one day a week as the MINIMUM presence of "
        "a GP in a cabinet secondaire, not a cap, so raise it to study heavier commitments",
        maximum=7.0,
    )
    max_travel_minutes: float = _p(
        60.0, "min",
        "Cour des comptes 2024, annex 3 (APL): dense and under-dense zones are often less "
        "than one hour apart, making practice in both possible (its examples: 21 to 53 "
        "minutes)",
        maximum=MAX_MINUTES,
    )
    # --- cabinets secondaires ----------------------------------------------
    cabinet_min_days: float = _p(
        1.0, "days/week",
        "Cour des comptes 2024, chapter III, note 154: a minimum presence equivalent to one "
        "day a week (40 days a year) in a cabinet secondaire",
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
        "assumption: 25 % of a day's fees (24 consultations x EUR 30 = EUR 720, so EUR 180) "
        "plus travel (about 100 km at EUR 0.60/km, EUR 60), rounded; the Assurance maladie "
        "would pay the travel (Cour des comptes 2024, chapter III, note 155) and its CSTM "
        "contract tops up fees earned in the zone (rate not in the shipped sources)",
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
        "assumption: a centre de santé employs at most ten salaried GP FTE (no published "
        "figure in the shipped sources; set it for the territory)",
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
        "assumption: 30 % of an employer cost of about EUR 130,000 per salaried GP (that cost "
        "is itself an assumption), the deficit a funder covers; Hubert 2010 (Mission médecine "
        "de proximité, section 2.2.2) reports structural deficits of 10 to 50 % in centres de "
        "santé",
        maximum=MAX_COST,
    )
    # --- budget and objective -------------------------------------------------
    budget: float = _p(
        1_000_000.0, "EUR/year",
        "setting: each instance's manifest sets the budget its planners study (this default "
        "is a placeholder)",
        maximum=MAX_COST,
    )
    apl_threshold: float = _p(
        2.5, "consultations/inhabitant/year",
        "DGOS GP zoning (arrêté of 1 Oct 2021 and its method): communes under 2.5 "
        "consultations a year per standardised inhabitant are zones d'intervention "
        "prioritaire (the arrêté is not in the shipped sources); under 2 is 'very "
        "under-served' (Legendre 2021, cited by the Cour des comptes 2024, annex 3, note 213)",
        maximum=100.0,
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
    # --- ageing supply and multi-year phasing (optisite/retirement.py, models/phasing.md) ---
    retirement_scenario: str = _p(
        "over60_within_5", "name",
        "setting: which GPs stop, when (optisite/retirement.py): 'none'; 'over65_now' (GPs over 65 "
        "stop before year 1: the DREES apl_mg_lt65 supply); 'over60_within_5' (GPs over 60 stop, a "
        "fifth of them each year, all gone in year 5); 'yearly_rate' (retirement_rate of the "
        "physicians stop each year)",
        minimum=None,
        choices=("none", "over65_now", "over60_within_5", "yearly_rate"),
    )
    retirement_rate: float = _p(
        0.03, "share/year",
        "assumption: share of a practice's physicians that stop each year in the 'yearly_rate' "
        "scenario (no age pyramid in the shipped sources; set it for the territory)",
        maximum=1.0,
    )
    over60_per_over65: float = _p(
        2.0, "ratio",
        "assumption: activity of GPs over 60 as a multiple of that of GPs over 65, used when a "
        "practice carries no gp_over_60 column (the DREES APL 2023 only separates 65 and over; "
        "no age pyramid in the shipped sources): the 60-64 cohort taken as large as all those "
        "over 65",
        minimum=1.0, maximum=100.0,
    )
    horizon_years: float = _p(
        5.0, "years",
        "setting: years planned by the phasing model; Cour des comptes 2024, general conclusion (after chapter III): "
        "a 'trajectoire pluriannuelle de correction des inégalités' (a multi-year correction path)",
        minimum=1.0, maximum=30.0,
    )
    max_new_salaried_fte_per_year: float = _p(
        6.0, "FTE/year",
        "assumption: salaried GP FTE the territory's centres de santé can recruit in one year "
        "(Cour des comptes 2024, chapter III: centres de santé struggle to recruit; no figure in "
        "the shipped sources); used by the phasing model",
        maximum=MAX_FTE,
    )
    centre_ramp_up_first_year: float = _p(
        0.5, "share of capacity",
        "assumption: a new centre de santé serves this share of its salaried capacity in its "
        "first year, rising linearly to all of it after centre_ramp_up_years (patient lists take "
        "years to fill; no figure in the shipped sources); 1 switches the ramp-up off",
        maximum=1.0,
    )
    centre_ramp_up_years: float = _p(
        2.0, "years",
        "assumption: years a new centre de santé takes to reach its full capacity (see "
        "centre_ramp_up_first_year)",
        maximum=30.0,
    )
    allow_closing: bool = _p(
        False, "flag",
        "setting: whether the phasing model may close a site it opened in an earlier year (a site "
        "never reopens); off: a site opened stays open to the horizon",
        minimum=None,
    )
    closing_cost: float = _p(
        50000.0, "EUR",
        "assumption: one-off cost of closing a site (lease, staff), counted in the year it closes "
        "when allow_closing is true",
        maximum=MAX_COST,
    )
    discount_rate: float = _p(
        0.0, "share/year",
        "setting: the phasing model weighs year t by (1 + discount_rate)^-(t - 1), both people "
        "without access and cost; 0: every year counts the same",
        maximum=1.0,
    )
    # --- robust single-year plans (optisite/robust.py, models/staffing.md "Robust plans") ---
    robust_scenarios: str = _p(
        "off", "scenario names",
        "setting: the retirement scenarios (optisite/retirement.py) one staffing plan must serve "
        "at once, as 'over65_now,over60_within_5' (each optionally name:weight, weights for the "
        "expected case); 'off': the plan serves the instance's own supply",
        minimum=None,
        check="robust",
    )
    robust_mode: str = _p(
        "worst", "name",
        "setting: 'worst' minimises the largest weighted uncovered population over the scenarios "
        "(the absolute robust, min-max, criterion of Kouvelis and Yu 1997, Robust Discrete Optimization, "
        "not in the shipped sources): no probabilities are needed, and none are published for these "
        "scenarios; 'expected' minimises their weighted mean",
        minimum=None,
        choices=("worst", "expected"),
    )
    robust_year: float = _p(
        0.0, "year",
        "setting: the year in which each retirement scenario's supply is read for a robust plan; "
        "0: the last year of the horizon (horizon_years)",
        maximum=30.0,
    )
    # --- travel times -----------------------------------------------------------
    detour_factor: float = _p(
        1.3, "ratio",
        "road circuity factor: Ballou, Rahardja and Sakai (2002), Transportation Research A "
        "36(9), report factors of about 1.2 to 1.4 for European road networks (not in the "
        "shipped sources); built instances keep it and add per-commune access minutes fitted "
        "to the DREES APL (zones column access_minutes, models/instances.md)",
        minimum=1.0, maximum=10.0,
    )
    speed_kmh: float = _p(
        60.0, "km/h",
        "assumption: mean door-to-door car speed on French secondary roads; built instances "
        "keep it and add per-commune access minutes fitted to the DREES APL (zones column "
        "access_minutes, models/instances.md)",
        minimum=1.0, maximum=300.0,
    )
    travel_symmetric: bool = _p(
        False, "flag",
        "setting: a travel row A->B also gives B->A when true; off by default so that a "
        "one-way distancier stays one-way",
        minimum=None,
    )
    max_pairs: float = _p(
        50_000_000, "pairs",
        "setting: safety limit on reachable (origin, destination) pairs kept in memory: "
        "measured (tracemalloc, `tests/test_travel.py`) at about 35 bytes a pair kept and "
        "110-135 bytes a pair at the peak of the computation, so 50 million pairs is about "
        "6-7 GB at the peak; the loader refuses more with a one-line error instead of "
        "swapping",
        minimum=1.0, maximum=1e12,
    )
    # --- who pays ---------------------------------------------------------------
    funder_cabinet_fixed: str = _p(
        "collectivites", "funder",
        "Cour des comptes 2024, chapter III, note 155: the financial courts recommend "
        "focusing local authorities' aid on premises, with a departmental plan for cabinets "
        "secondaires",
        minimum=None,
    )
    funder_cabinet_days: str = _p(
        "assurance_maladie", "funder",
        "Cour des comptes 2024, chapter III, note 155: the Assurance maladie would pay the "
        "travel costs; its CSTM contract pays GPs who practise part-time in an under-served "
        "zone",
        minimum=None,
    )
    funder_centre_fixed: str = _p(
        "collectivites", "funder",
        "Hubert 2010, section 2.1.1: centres de santé are run by non-profit bodies or local "
        "authorities; assumption: here the collectivités pay the premises",
        minimum=None,
    )
    funder_centre_fte: str = _p(
        "ars_hopital", "funder",
        "Cour des comptes 2024, chapter III, part B: hospitals (groupements hospitaliers de "
        "territoire) should open centres de santé where liberal operators are lacking; "
        "assumption: the ARS (FIR) or the hospital operator covers the deficit",
        minimum=None,
    )

    # --- the Cour des comptes' levers (optisite/levers.py) ---------------------------
    zonage_restrict: str = _p(
        "none", "kinds",
        "Cour des comptes 2024, chapter III, part B: centres de santé of the groupements "
        "hospitaliers de territoire 'dans les territoires carencés'; chapter II, note 105: "
        "communes classed ZIP (zones d'intervention prioritaire) or ZAC (zones d'action "
        "complémentaire) open the right to installation aids; setting: the kinds of new site "
        "allowed only in a ZIP or ZAC commune (zones.zonage), none by default",
        minimum=None,
        choices=("none", "centre_de_sante", "cabinet_secondaire", "all"),
    )
    max_new_salaried_fte: float = _p(
        MAX_FTE, "FTE",
        "Cour des comptes 2024, annex 1 (RPPS 2022): 2,671 salaried GPs work in centres de "
        "santé in all France, so a plan cannot hire salaried GPs at will; setting: the total "
        "salaried FTE of new centres de santé, no limit by default (100,000)",
        maximum=MAX_FTE,
    )
    funder_envelopes: str = _p(
        "none", "EUR/year per funder",
        "Cour des comptes 2024, chapter III, note 155: the Assurance maladie would pay the "
        "travel costs, the collectivités' aid would go to premises under a departmental plan: "
        "each funder pays its own items; setting: the annual envelope of each funder "
        "named by the funder_* parameters or the sites' funder_fixed/funder_staff columns, as "
        "'funder=EUR; funder=EUR' or a TOML table; none by default",
        minimum=None,
        check="envelopes",
    )
    presence_unit: str = _p(
        "week", "period",
        "Cour des comptes 2024, chapter III, note 154: one day a week is the minimum presence "
        "in a cabinet secondaire; the 2025 'médecins solidaires' scheme asks GPs for up to two "
        "days a month in red zones (not in the shipped sources); the days variable counts days "
        "per week or per month (a day a month is 12/52 of a day a week)",
        minimum=None,
        choices=("week", "month"),
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

    def cutoff_for_apl(self) -> float:
        """The travel time beyond which the APL decay is 0 (neighbours within it count)."""
        from .decay import decay_steps

        return max(upper for upper, _ in decay_steps(self.apl_decay))


def accepted(f: dataclasses.Field) -> str:
    """The values a parameter accepts, as the documentation writes them."""
    meta = f.metadata
    if f.type in ("bool", bool):
        return "true or false"
    if f.type in ("str", str):
        if meta.get("check") == "envelopes":
            return "none, or funder=EUR items separated by ';' (0 to 1e12 each), or a TOML table"
        if meta.get("check") == "robust":
            return "off, or retirement scenario names separated by ',' (each optionally name:weight)"
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
    if isinstance(raw, dict) and meta.get("check") == "envelopes":
        raw = "; ".join(f"{k}={v}" for k, v in raw.items())  # a TOML table of funder = EUR
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
        if meta.get("check") == "envelopes":
            return format_envelopes(parse_envelopes(value, file=file, column=column))
        if meta.get("check") == "robust":
            from .robust import format_scenarios, parse_scenarios

            return format_scenarios(parse_scenarios(value, file=file, column=column))
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


FUNDER_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def parse_envelopes(text: str, *, file: str = "parameters", column: str = "funder_envelopes") -> dict[str, float]:
    """``funder_envelopes`` as {funder: EUR/year}: 'none', or 'name=EUR' items separated by ';'
    or ',' (a decimal comma would be ambiguous here: write 1500.5)."""
    import re

    text = str(text).strip()
    if text.lower() == "none":
        return {}
    out: dict[str, float] = {}
    for item in [i.strip() for i in re.split(r"[;,]", text) if i.strip()]:
        name, sep, amount = (s.strip() for s in item.partition("="))
        fix = "write funder=EUR items separated by ';', e.g. ars_hopital=300000; collectivites=150000"
        if not sep or not re.fullmatch(FUNDER_NAME, name):
            raise InputError(f"'{item[:40]}' is not funder=EUR", file=file, column=column, fix=fix)
        try:
            value = float(amount.replace("_", ""))
        except ValueError:
            raise InputError(f"'{amount[:40]}' is not a number of EUR", file=file, column=column, fix=fix) from None
        if not math.isfinite(value) or not 0 <= value <= MAX_COST:
            raise InputError(f"envelope {value:g} of '{name}' is outside 0 to {_num(MAX_COST)} EUR/year",
                             file=file, column=column, fix=fix)
        if name in out:
            raise InputError(f"funder '{name}' is given twice", file=file, column=column, fix="name each funder once")
        out[name] = value
    return out


def format_envelopes(envelopes: Mapping[str, float]) -> str:
    """The normal text of ``funder_envelopes`` (sorted by funder; 'none' when empty)."""
    if not envelopes:
        return "none"
    return "; ".join(f"{k}={int(v) if float(v).is_integer() else repr(float(v))}"
                     for k, v in sorted(envelopes.items()))


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

