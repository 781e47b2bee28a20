"""The report of a multi-year plan over time (a result declaring ``years``): people without
access each year, doing nothing against the plan, as a chart; what opens when; spending
each year against the budget; the communes that lose access as their GPs retire and
whether the plan catches them. Read from the long tables and ``solution.json`` only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .instance import Instance
from .solution import Solution

LOSING_ROWS = 25  # communes listed as losing access; the rest counted


def last_year(sol: Solution) -> Solution:
    """The plan's last year as a single-year solution (the report's map and lists show where it ends)."""
    t = int(sol.zones["year"].max())
    tables = {name: getattr(sol, name) for name in ("sites", "schedule", "practices", "assignment", "zones")}
    one = {name: f[f["year"] == t].drop(columns="year").reset_index(drop=True) for name, f in tables.items()}
    return Solution(summary=sol.summary, zone_geometry=sol.zone_geometry, instance=sol.instance, **one)


def years_context(instance: Instance, sol: Solution, planning) -> dict[str, Any]:
    """What the template's 'Over the years' section shows; ``planning`` keeps the planning
    territory's rows of a zones table."""
    S = sol.summary
    years = S.get("years") or []
    sites = sol.sites
    first = sites.groupby("site_id")["year"].min() if len(sites) else pd.Series(dtype=int)
    rows = []
    for y in years:
        t = y["year"]
        opened = sites[(sites["year"] == t) & sites["site_id"].map(first).eq(t)]
        rows.append({"year": t, "before": y["population_uncovered_before"], "after": y["population_uncovered"],
                     "gained": y["population_uncovered_before"] - y["population_uncovered"],
                     "cost": y["cost_total"], "budget": y["budget"], "open": len(y["open_sites"]),
                     "fte": y["salaried_fte"], "days": y["physician_days_per_week"],
                     "opened": [{"site_id": r.site_id, "kind": r.kind, "name": r.name}
                                for r in opened.itertuples(index=False)]})
    z = planning(sol.zones)
    t0, t1 = int(z["year"].min()), int(z["year"].max())
    a = z[z["year"] == t0].set_index("zone_id")
    b = z[z["year"] == t1].set_index("zone_id").reindex(a.index)
    pop = a["population"].astype(float)
    lost = pd.DataFrame({"name": a["name"], "population": pop,
                         "covered_first": a["covered_before"].astype(float),
                         "covered_last_nothing": b["covered_before"].astype(float),
                         "covered_last_plan": b["covered_after"].astype(float)})
    lost["lost"] = pop * (lost["covered_first"] - lost["covered_last_nothing"])
    lost = lost[lost["lost"] > 0.5]
    lost["caught"] = lost["covered_last_plan"] >= lost["covered_first"] - 1e-9
    lost = lost.sort_values(["lost", "name"], ascending=[False, True]).reset_index()
    return {
        "rows": rows,
        "chart_uri": _chart(rows),
        "total_before": float(sum(r["before"] for r in rows)),
        "total_after": float(sum(r["after"] for r in rows)),
        "losing": lost.head(LOSING_ROWS).to_dict("records"),
        "losing_count": int(len(lost)),
        "losing_population": float(lost["lost"].sum()),
        "caught_count": int(lost["caught"].sum()),
        "caught_population": float(lost.loc[lost["caught"], "lost"].sum()),
        "scenario": (S.get("parameters") or {}).get("retirement_scenario"),
    }


def _chart(rows: list[dict], dpi: int = 110) -> str:
    """People without access each year, doing nothing against the plan (a PNG data URI)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .report import png_data_uri

    fig = Figure(figsize=(7.0, 3.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    t = np.array([r["year"] for r in rows])
    ax.plot(t, [r["before"] for r in rows], "o-", color="#b2182b", label="doing nothing (GPs retiring)")
    ax.plot(t, [r["after"] for r in rows], "s-", color="#2166ac", label="with the plan")
    ax.set_xticks(t)
    ax.set_xlabel("year")
    ax.set_ylabel("inhabitants without access")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", frameon=False)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return png_data_uri(buf.getvalue())
