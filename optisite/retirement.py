"""Ageing GP supply: who of each practice's activity comes from older GPs, and who stops when.

Each practice's share of activity from GPs aged 65 and over (``share_65_plus``) comes,
in this order, from the practices column ``share_65_plus``, from ``gp_over_65`` (FTE
aged over 65 among ``physicians``), or from the DREES APL 2023: the zones' official
``apl_official`` (all GPs, ``apl_mg``) and ``apl_official_lt65`` (GPs aged 65 or less,
``apl_mg_lt65``). Their difference is the APL that the GPs over 65 give; the APL is
linear in the supply, so the over-65 supply per practice zone that best reproduces
that difference, between 0 and the zone's whole supply, is a bounded least-squares
problem on the instance's own APL structure (:func:`optisite.apl.apl_inputs`): the
supply is calibrated on both indicators. The share over 60 comes from ``gp_over_60``,
or is ``over60_per_over65`` times the share over 65 (an assumption, capped at 1).

A retirement scenario (parameter ``retirement_scenario``) turns the shares into each
practice's physicians in each year of a horizon (:func:`physicians_by_year`); year 1 is
the first planned year, and retirements of a year happen before its plan:

* ``none``: nobody stops;
* ``over65_now``: GPs over 65 stop before year 1 (the supply of ``apl_mg_lt65``);
* ``over60_within_5``: GPs over 60 stop, a fifth of them each year, all gone in year 5;
* ``yearly_rate``: ``retirement_rate`` of the physicians stop each year.

Nobody replaces them (no new installation): the scenarios show what the plan must make
up for. Sources and assumptions: ``models/phasing.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .instance import Instance

SCENARIOS = {
    "none": "nobody stops",
    "over65_now": "GPs over 65 stop before year 1",
    "over60_within_5": "GPs over 60 stop, a fifth of them each year, all gone in year 5",
    "yearly_rate": "a fixed share of the physicians stops each year (retirement_rate)",
}
SPREAD_YEARS = 5  # over60_within_5: years over which the GPs over 60 stop
ROUND = 3  # physicians are given to 0.001 FTE, as in the calibrated practices


@dataclass(frozen=True)
class AgeShares:
    """Share of each practice's activity from GPs over 65 and over 60 (index practice_id),
    and where each share came from (a sentence for the report)."""

    over65: pd.Series
    over60: pd.Series
    source: str


def horizon(instance: Instance) -> list[int]:
    """The planned years, 1..horizon_years."""
    return list(range(1, int(round(instance.parameters.horizon_years)) + 1))


def age_shares(instance: Instance) -> AgeShares:
    """Share of each practice's activity from GPs over 65 and over 60 (see the module)."""
    pr = instance.practices
    phys = pr["physicians"].astype(float)
    p = instance.parameters
    if "share_65_plus" in pr.columns and pr["share_65_plus"].notna().any():
        s65 = pd.to_numeric(pr["share_65_plus"], errors="coerce").fillna(0.0)
        source = "practices column share_65_plus"
    elif "gp_over_65" in pr.columns and pr["gp_over_65"].notna().any():
        s65 = (pd.to_numeric(pr["gp_over_65"], errors="coerce").fillna(0.0) / phys.where(phys > 0)).fillna(0.0)
        source = "practices column gp_over_65"
    elif {"apl_official", "apl_official_lt65"} <= set(instance.zones.columns):
        s65 = drees_share_65_plus(instance)
        source = "DREES APL 2023: apl_mg against apl_mg_lt65 (supply calibrated on both)"
    else:
        s65 = pd.Series(0.0, index=pr.index)
        source = "none: no age data (no share_65_plus, gp_over_65 nor DREES APL columns): nobody is over 65"
    s65 = s65.clip(0.0, 1.0)
    if "gp_over_60" in pr.columns and pr["gp_over_60"].notna().any():
        s60 = (pd.to_numeric(pr["gp_over_60"], errors="coerce") / phys.where(phys > 0))
        s60 = s60.fillna(np.minimum(1.0, s65 * p.over60_per_over65))
        source += "; over 60: practices column gp_over_60"
    else:
        s60 = np.minimum(1.0, s65 * p.over60_per_over65)
        source += f"; over 60: {p.over60_per_over65:g} x the share over 65 (assumption, over60_per_over65)"
    s60 = np.maximum(pd.Series(s60, index=pr.index).clip(0.0, 1.0), s65)
    return AgeShares(over65=s65.rename("share_65_plus"), over60=s60.rename("share_60_plus"), source=source)


def drees_share_65_plus(instance: Instance) -> pd.Series:
    """Each practice's share of activity from GPs over 65, fitted to the DREES APL 2023.

    With A the instance's APL matrix (zone i, practice zone z: w(t_iz) / D_z), the
    over-65 supply S65 minimises ``|| r * (A S65 - (apl_mg - apl_mg_lt65)) ||`` subject to
    0 <= S65_z <= S_z (the zone's practice supply), with r = 1 on the planning territory,
    the calibration's neighbour weight elsewhere, 0 where the DREES has no value. A zone's
    share S65_z / S_z is given to each of its practices."""
    from scipy.optimize import lsq_linear

    from .apl import apl_inputs, practice_capacity
    from .calibrate import NEIGHBOUR_ROW_WEIGHT

    pr = instance.practices
    z = instance.zones
    x = apl_inputs(instance)
    supply = practice_capacity(instance).groupby(pr["zone_id"]).sum()
    cols = x.supply_zone_ids.get_indexer(supply.index)
    keep = (cols >= 0) & (supply.to_numpy() > 0)
    supply, cols = supply[keep], cols[keep]
    if not len(supply):
        return pd.Series(0.0, index=pr.index)
    A = x.weights[:, cols].multiply(x.inverse_catchment[cols][None, :]).tocsr()
    diff = (pd.to_numeric(z["apl_official"], errors="coerce")
            - pd.to_numeric(z["apl_official_lt65"], errors="coerce")).reindex(x.zone_ids).to_numpy(float)
    planning = (z["planning"] == 1).reindex(x.zone_ids).to_numpy() if "planning" in z.columns \
        else np.ones(len(x.zone_ids), dtype=bool)
    r = np.where(np.isnan(diff), 0.0, np.where(planning, 1.0, NEIGHBOUR_ROW_WEIGHT))
    target = r * np.nan_to_num(np.maximum(diff, 0.0))
    import scipy.sparse as sp

    Aw = (sp.diags(r) @ A).tocsr()
    upper = supply.to_numpy(float)
    # Scale columns to the unit interval so that the solver sees well-conditioned bounds.
    fit = lsq_linear(Aw @ sp.diags(upper), target, bounds=(0.0, 1.0), lsmr_tol="auto", max_iter=2000,
                     method="trf")
    share = pd.Series(np.clip(fit.x, 0.0, 1.0), index=supply.index)
    return share.reindex(pr["zone_id"]).fillna(0.0).set_axis(pr.index).round(6)


def retired_share(shares: AgeShares, scenario: str, year: int, rate: float) -> pd.Series:
    """Share of each practice's physicians of the base year who have stopped by ``year``."""
    if scenario == "none":
        return shares.over65 * 0.0
    if scenario == "over65_now":
        return shares.over65.copy()
    if scenario == "over60_within_5":
        return shares.over60 * min(year, SPREAD_YEARS) / SPREAD_YEARS
    if scenario == "yearly_rate":
        return shares.over65 * 0.0 + (1.0 - (1.0 - rate) ** year)
    raise ValueError(f"unknown retirement scenario '{scenario}'")


def physicians_by_year(instance: Instance, shares: AgeShares | None = None) -> pd.DataFrame:
    """Physicians (FTE) of each practice in each planned year: index practice_id, one column per year."""
    p = instance.parameters
    shares = shares or age_shares(instance)
    phys = instance.practices["physicians"].astype(float)
    out = {t: (phys * (1.0 - retired_share(shares, p.retirement_scenario, t, p.retirement_rate))).round(ROUND)
           for t in horizon(instance)}
    return pd.DataFrame(out, index=phys.index).clip(lower=0.0)


def year_instance(instance: Instance, physicians: pd.Series) -> Instance:
    """The instance with each practice's physicians of one year; a given ``secondary_days``
    shrinks in proportion (the default, physicians x max_secondary_days_per_gp, follows)."""
    raw = instance.inputs.practices.copy()
    before = raw["physicians"].astype(float)
    after = physicians.reindex(raw.index).astype(float)
    ratio = (after / before.where(before > 0)).fillna(0.0)
    raw["physicians"] = after
    if "secondary_days" in raw.columns:
        raw["secondary_days"] = raw["secondary_days"] * ratio
    return Instance(name=instance.name, inputs=replace(instance.inputs, practices=raw),
                    parameters=instance.parameters, supply_source=instance.supply_source,
                    provenance=instance.provenance, folder=instance.folder,
                    manifest_parameters=instance.manifest_parameters)

