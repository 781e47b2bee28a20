"""Admissible pairs: who can reach whom, as sparse long tables.

These tables are the index sets of the models: demand zone -> supply source
within the coverage cutoff, and practice -> cabinet secondaire within the GP's
travel limit. They are built once from zone-to-zone times (sites and practices
take their zone's times) with pandas joins, never with Python double loops.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .instance import Instance


def sources(instance: Instance) -> pd.DataFrame:
    """Every supply point (existing practices and candidate sites) with its zone and kind."""
    s = instance.sites
    p = instance.practices
    out = pd.concat(
        [
            pd.DataFrame({"source_id": p.index.to_numpy(), "zone_id": p["zone_id"].to_numpy(),
                          "source_kind": "practice"}),
            pd.DataFrame({"source_id": s.index.to_numpy(), "zone_id": s["zone_id"].to_numpy(),
                          "source_kind": s["kind"].to_numpy()}),
        ],
        ignore_index=True,
    )
    return out


def coverage_pairs(instance: Instance, cutoff: float | None = None) -> pd.DataFrame:
    """(zone_id, source_id, source_kind, minutes) for every source within ``cutoff`` of a zone."""
    cutoff = instance.parameters.coverage_minutes if cutoff is None else cutoff
    src = sources(instance)
    zz = instance.travel.pairs(instance.zones.index, src["zone_id"], cutoff)
    out = zz.merge(src, left_on="to_id", right_on="zone_id", how="inner")
    out = out.rename(columns={"from_id": "zone_id_demand"})
    out = out[["zone_id_demand", "source_id", "source_kind", "minutes"]].rename(
        columns={"zone_id_demand": "zone_id"})
    return out.sort_values(["zone_id", "source_id"], kind="stable").reset_index(drop=True)


def staffing_pairs(instance: Instance) -> pd.DataFrame:
    """(practice_id, site_id, minutes) for every cabinet secondaire a practice's GPs may staff.

    The limit is the practice's own ``max_travel_minutes`` (default: the parameter);
    practices with no day to give are left out.
    """
    pr = instance.practices
    pr = pr[np.floor(pr["secondary_days"] + 1e-9) >= 1]
    cab = instance.sites[instance.sites["kind"] == "cabinet_secondaire"]
    if pr.empty or cab.empty:
        return pd.DataFrame({"practice_id": pd.Series(dtype=object), "site_id": pd.Series(dtype=object),
                             "minutes": pd.Series(dtype=float)})
    zz = instance.travel.pairs(pr["zone_id"], cab["zone_id"], float(pr["max_travel_minutes"].max()))
    left = pd.DataFrame({"practice_id": pr.index.to_numpy(), "from_id": pr["zone_id"].to_numpy(),
                         "limit": pr["max_travel_minutes"].to_numpy()})
    right = pd.DataFrame({"site_id": cab.index.to_numpy(), "to_id": cab["zone_id"].to_numpy()})
    out = left.merge(zz, on="from_id").merge(right, on="to_id")
    out = out[out["minutes"] <= out["limit"]]
    out = out[["practice_id", "site_id", "minutes"]]
    return out.sort_values(["practice_id", "site_id"], kind="stable").reset_index(drop=True)
