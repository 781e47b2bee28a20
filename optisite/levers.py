r"""The Cour des comptes' levers on a staffing plan, each one parameter away.

* **zonage** (``zonage_restrict``): new sites of the chosen kinds only in communes
  classed ZIP or ZAC (``zones.zonage``): :math:`y_c = 0`, :math:`o_h = 0` elsewhere.
* **recruitment limit** (``max_new_salaried_fte``): :math:`\sum_h f_h \le L`.
* **funders' envelopes** (``funder_envelopes``): each site's fixed cost is paid by
  its ``funder_fixed`` and its staff cost by its ``funder_staff``; for each funder *f*
  with an envelope :math:`E_f`:
  :math:`\sum_{c \in C^{fix}_f} a_c y_c + \sum_{h \in H^{fix}_f} a_h o_h
  + W g \sum_{(p,c): c \in C^{staff}_f} e_c d_{pc} + \sum_{h \in H^{staff}_f} g_h f_h \le E_f`.
* **presence granularity** (``presence_unit``): the days variable counts whole days a
  week (``week``) or a month (``month``, a day a month being 12/52 of a day a week).

:func:`prepare` reads the instance once into a :class:`Levers` record; the single-year
model calls :func:`add_constraints`; a multi-year model calls the row builders
(:func:`add_zonage`, :func:`add_recruitment`, :func:`add_envelopes`) with its own
variables, or the plain data helpers (:func:`excluded_sites`, :func:`check_forced`).
The models that site without staffing (coverage, lscp) read only the site levers
(:func:`prepare_sites`: zonage and envelopes on fixed costs), keep dominance within a
funder (:func:`dominance_groups`) and name the staffing levers in a warning
(:func:`without_staffing`). The constraints are documented in ``models/staffing.md``,
``models/coverage.md`` and ``models/lscp.md``; the checker verifies them from the output
tables with its own code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from .errors import InfeasibleError, InputError
from .parameters import MAX_FTE, Parameters, parse_envelopes

ROWS = ("zonage", "new_fte", "envelope")  # the constraints the levers add to a staffing model
ELIGIBLE = ("ZIP", "ZAC")  # zonage classes where the zonage lever allows new sites
RESTRICTED_KINDS = {"none": (), "centre_de_sante": ("centre_de_sante",),
                    "cabinet_secondaire": ("cabinet_secondaire",), "all": ("cabinet_secondaire", "centre_de_sante")}
# Days a week that one unit of the days variable stands for.
PRESENCE_WEEKS = {"week": 1.0, "month": 12.0 / 52.0}
# A presence given in days a week becomes whole units: in weeks minima round up and caps
# down (with 1e-9 of float noise); in months both round to the nearest whole day a month,
# so that one day a week is 4 days a month as a minimum and as a cap alike (rounding 4.33
# up for the minimum and down for the cap would leave a one-GP cabinet unstaffable), and
# 0.46 day a week reads as 2 days a month.


def _whole(x: np.ndarray, unit: str, up: bool) -> np.ndarray:
    if unit == "month":
        return np.floor(x + 0.5)
    return np.ceil(x - 1e-9) if up else np.floor(x + 1e-9)


@dataclass(frozen=True)
class Levers:
    """The levers of one instance, read once: what the model rows need."""

    excluded: tuple[str, ...] = ()  # candidate sites the zonage forbids
    max_new_fte: float | None = None  # None: no limit
    envelopes: Mapping[str, float] = field(default_factory=dict)  # funder -> EUR/year
    funder_fixed: Mapping[str, str] = field(default_factory=dict)  # site -> funder of its fixed cost
    funder_staff: Mapping[str, str] = field(default_factory=dict)  # site -> funder of its staff cost
    presence_weeks: float = 1.0  # days a week per unit of the days variable


# -- presence granularity ------------------------------------------------------------------

def presence_weeks(p: Parameters) -> float:
    """Days a week that one unit of the days variable stands for (1, or 12/52 for a month)."""
    return PRESENCE_WEEKS[p.presence_unit]


def to_units(days_per_week, p: Parameters, *, up: bool) -> np.ndarray:
    """Days a week as whole units of presence: in weeks rounded up for a minimum (``up``),
    down for a cap; in months to the nearest whole day a month."""
    x = np.asarray(days_per_week, dtype=float) / presence_weeks(p)
    return _whole(x, p.presence_unit, up).astype(int)


# -- zonage --------------------------------------------------------------------------------

def zonage(instance) -> pd.Series:
    """Each zone's zonage (ZIP, ZAC or none); None when the zones table has no such column."""
    z = instance.zones
    return z["zonage"].astype(str) if "zonage" in z.columns else None


def excluded_sites(instance) -> list[str]:
    """Candidate sites that ``zonage_restrict`` forbids: of a restricted kind, outside ZIP/ZAC."""
    kinds = RESTRICTED_KINDS[instance.parameters.zonage_restrict]
    if not kinds:
        return []
    classes = zonage(instance)
    if classes is None:
        raise InputError(f"zonage_restrict is '{instance.parameters.zonage_restrict}' but the zones table "
                         "has no zonage column", file="zones", column="zonage",
                         fix="add a zonage column (ZIP, ZAC or none), or set zonage_restrict = \"none\"")
    s = instance.sites
    outside = ~classes.reindex(s["zone_id"]).isin(ELIGIBLE).to_numpy()
    return sorted(s.index[s["kind"].isin(kinds).to_numpy() & outside])


# -- funders -------------------------------------------------------------------------------

def funders_paying(sites: pd.DataFrame) -> set[str]:
    return set(sites["funder_fixed"].dropna()) | set(sites["funder_staff"].dropna())


# -- reading the instance ------------------------------------------------------------------

def prepare_sites(instance, force_open=()) -> Levers:
    """The levers on which sites open and what their fixed costs cost each funder (zonage,
    envelopes): all that a model siting without staffing (coverage, lscp) applies."""
    p = instance.parameters
    s = instance.sites
    excluded = excluded_sites(instance)
    forced = [sid for sid in sorted(force_open) if sid in set(excluded)]
    if forced:
        z = s.at[forced[0], "zone_id"]
        raise InfeasibleError(f"forced-open site '{forced[0]}' is in zone '{z}', not classed ZIP or ZAC, "
                              f"and zonage_restrict is '{p.zonage_restrict}' (constraint 'zonage')")
    envelopes = parse_envelopes(p.funder_envelopes)
    unknown = sorted(set(envelopes) - funders_paying(s))
    if unknown:
        raise InputError(f"funder_envelopes names '{unknown[0]}', which pays no cost of any site",
                         column="funder_envelopes",
                         fix="use a funder of the funder_* parameters or of the sites' funder_fixed/funder_staff "
                             f"columns: {', '.join(sorted(funders_paying(s)))}")
    return Levers(excluded=tuple(excluded), envelopes=envelopes,
                  funder_fixed=s["funder_fixed"].to_dict(), funder_staff=s["funder_staff"].to_dict())


def check_forced_fixed(lv: Levers, fixed_cost: pd.Series, force_open) -> None:
    """Refuse forced-open sites whose fixed costs alone overrun a funder's envelope."""
    spent: dict[str, float] = {}
    for sid in force_open:
        who = lv.funder_fixed[sid]
        spent[who] = spent.get(who, 0.0) + float(fixed_cost[sid])
    over = first_overrun(lv, spent)
    if over:
        who, cap = over
        raise InfeasibleError(f"the forced-open sites cost {who} {spent[who]:,.0f} EUR/year in fixed costs, "
                              f"above its envelope of {cap:,.0f} (constraint 'envelope')")


def dominance_groups(lv: Levers, sites: pd.Index) -> np.ndarray | None:
    """Who may stand in for whom under the envelopes: site k may replace site j only if
    both fixed costs go to the same funder or k's funder has no envelope. Returns one code
    per site (-1: a funder without envelope, who may replace anyone), or None when no
    envelope is set (any site may replace any other)."""
    if not lv.envelopes:
        return None
    names = sorted(lv.envelopes)
    return np.array([names.index(lv.funder_fixed[sid]) if lv.funder_fixed[sid] in lv.envelopes else -1
                     for sid in sites], dtype=int)


def without_staffing(p: Parameters, model: str) -> list[str]:
    """One warning per staffing lever set on a model that staffs nothing: its plan hires
    no salaried FTE and schedules no days, so it meets these levers trivially (the checker
    verifies the zero hires); the warning says the lever did not shape the plan."""
    out = []
    if p.max_new_salaried_fte < MAX_FTE:
        out.append(f"max_new_salaried_fte = {p.max_new_salaried_fte:g} has no effect in the {model} model: it "
                   "opens sites without staffing them (the staffing and apl models apply it)")
    if p.presence_unit != "week":
        out.append(f"presence_unit = {p.presence_unit} has no effect in the {model} model: it schedules no "
                   "physician-days (the staffing and apl models apply it)")
    return out


def prepare(instance, force_open=()) -> Levers:
    """The levers of ``instance``; refuses settings no plan can meet, naming the lever."""
    p = instance.parameters
    s = instance.sites
    sites = prepare_sites(instance, force_open)
    limit = None if p.max_new_salaried_fte >= MAX_FTE else float(p.max_new_salaried_fte)
    if limit is not None:
        cds = s.loc[[sid for sid in force_open if s.at[sid, "kind"] == "centre_de_sante"]]
        need = float(np.maximum(np.ceil(cds["min_fte"] - 1e-9), 1).sum())
        if need > limit + 1e-9:
            raise InfeasibleError(f"the forced-open centres de santé need {need:g} salaried FTE, above "
                                  f"max_new_salaried_fte = {limit:g} (constraint 'new_fte')")
    return replace(sites, max_new_fte=limit, presence_weeks=presence_weeks(p))


def check_forced(lv: Levers, data) -> None:
    """Refuse forced-open sites whose minimum staffing alone overruns a funder's envelope
    (``data``: a StaffingData, presence in its units)."""
    cab, cen = data.cabinets, data.centres
    spent = funder_spend(lv, data, {c: max(cab.at[c, "min_days"], 1) for c in data.force_open if c in cab.index},
                         {h: max(cen.at[h, "min_fte"], 1) for h in data.force_open if h in cen.index})
    over = first_overrun(lv, spent)
    if over:
        who, cap = over
        raise InfeasibleError(f"the forced-open sites cost {who} at least {spent[who]:,.0f} EUR/year, above "
                              f"its envelope of {cap:,.0f} (constraint 'envelope')")


def first_overrun(lv: Levers, spent: Mapping[str, float]) -> tuple[str, float] | None:
    """The first funder (by name) whose spending passes its envelope, with the envelope."""
    for who, cap in sorted(lv.envelopes.items()):
        if spent.get(who, 0.0) > cap * (1 + 1e-9) + 1e-6:
            return who, cap
    return None


def funder_spend(lv: Levers, data, days: Mapping[str, float], fte: Mapping[str, float]) -> dict[str, float]:
    """EUR/year each funder pays for cabinets open with ``days`` (site -> days, in the
    model's units) and centres with ``fte`` (site -> FTE): fixed cost to the site's
    ``funder_fixed``, staff cost to its ``funder_staff`` (a StaffingData's costs)."""
    spent: dict[str, float] = {}
    cab, cen = data.cabinets, data.centres
    items = [(sid, cab.at[sid, "fixed_cost"], data.weeks * cab.at[sid, "cost_per_day"] * n) for sid, n in days.items()]
    items += [(sid, cen.at[sid, "fixed_cost"], cen.at[sid, "cost_per_fte"] * n) for sid, n in fte.items()]
    for sid, fixed, staff in items:
        for who, amount in ((lv.funder_fixed.get(sid), fixed), (lv.funder_staff.get(sid), staff)):
            spent[who] = spent.get(who, 0.0) + float(amount)
    return spent


def plan_breaks(lv: Levers | None, data, days: pd.DataFrame, fte: pd.Series) -> str | None:
    """The first lever a staffing plan breaks (zonage, recruitment limit, a funder's
    envelope), or None: a start handed to HiGHS must meet every row. ``days``: practice_id,
    site_id, days_per_week in the model's units; ``fte``: centre -> FTE."""
    if lv is None:
        return None
    used = set(days.loc[days["days_per_week"] > 0, "site_id"]) | set(fte[fte > 0].index)
    bad = sorted(used & set(lv.excluded))
    if bad:
        return f"zonage: site {bad[0]} is outside ZIP/ZAC"
    if lv.max_new_fte is not None and float(fte.sum()) > lv.max_new_fte + 1e-9:
        return f"new_fte: {float(fte.sum()):g} new salaried FTE, above {lv.max_new_fte:g}"
    per_site = days.groupby("site_id")["days_per_week"].sum()
    spent = funder_spend(lv, data, per_site[per_site > 0].to_dict(), fte[fte > 0].to_dict())
    over = first_overrun(lv, spent)
    return None if over is None else f"envelope: {over[0]} pays {spent[over[0]]:,.0f} EUR/year, above {over[1]:,.0f}"


# -- rows of the single-year staffing model ------------------------------------------------

def add_constraints(m, data) -> None:
    """All levers on a staffing model built from ``data`` (a StaffingData): always the
    three components, empty when their lever is off (the documents list them)."""
    lv: Levers = data.levers or Levers()
    add_zonage(m, lv, {c: m.y[c] for c in m.C} | {h: m.o[h] for h in m.H})
    add_recruitment(m, lv.max_new_fte, [m.f[h] for h in m.H])
    fixed = data.cabinets["fixed_cost"].to_dict() | data.centres["fixed_cost"].to_dict()
    per_day, per_fte = data.cabinets["cost_per_day"].to_dict(), data.centres["cost_per_fte"].to_dict()
    openings = [(sid, fixed[sid], var) for sid, var in
                [(c, m.y[c]) for c in m.C] + [(h, m.o[h]) for h in m.H]]
    staff = [(c, data.weeks * per_day[c], m.d[p, c]) for p, c in m.A] + [(h, per_fte[h], m.f[h]) for h in m.H]
    add_envelopes(m, lv, openings, staff, scale=m.cost_scale)


def add_zonage(m, lv: Levers, opening: Mapping[str, object], name: str = "zonage") -> None:
    """``opening[site] <= 0`` for every site the zonage excludes (``opening``: site -> its
    opening variable, or any expression of it)."""
    rows = [sid for sid in lv.excluded if sid in opening]
    m.add_component(name, pyo.Constraint(rows, rule=lambda m, sid: opening[sid] <= 0))


def add_recruitment(m, limit: float | None, fte, name: str = "new_fte", row="total") -> None:
    """``sum(fte) <= limit``: one row named ``row``, or none when ``limit`` is None (a
    multi-year model passes each year's hires and its per-year limit, with its own names)."""
    fte = list(fte)
    rows = [row] if limit is not None and fte else []
    m.add_component(name, pyo.Constraint(rows, rule=lambda m, _: sum(fte) <= limit))


def add_envelopes(m, lv: Levers, openings, staff, *, scale: float = 1.0, name: str = "envelope") -> None:
    """One row per funder with an envelope: the fixed costs of the sites whose
    ``funder_fixed`` it is plus the staff costs of those whose ``funder_staff`` it is.
    ``openings``/``staff``: (site, EUR/year per unit, variable) triples; rows scaled by ``scale``."""
    def rule(m, f):
        terms = [(a / scale) * v for sid, a, v in openings if lv.funder_fixed.get(sid) == f]
        terms += [(a / scale) * v for sid, a, v in staff if lv.funder_staff.get(sid) == f]
        return sum(terms) <= lv.envelopes[f] / scale if terms else pyo.Constraint.Skip

    m.add_component(name, pyo.Constraint(sorted(lv.envelopes), rule=rule))
