"""report.html: one self-contained page a reviewer can open offline and trust.

``render_report(instance, solution)`` reads the :class:`~optisite.solution.Solution`
(summary and tables) and the :class:`~optisite.instance.Instance`, never solver
objects, and fills ``templates/report.html`` (Jinja2, autoescape on: commune
names and every other text from data are escaped). Images are PNG data URIs and
the stylesheet is inlined, so the file needs no network and no other file.

Every number on the page comes from the solution's summary or tables; the key
ones sit in elements with stable ids and a ``data-value`` holding the exact value
of ``solution.json`` (tests compare the two).

``write_report(folder, instance)`` re-renders ``report.html`` of an existing
solution folder (``optisite report DIR INSTANCE``), replacing that one file
atomically.
"""

from __future__ import annotations

import base64
import io
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .instance import Instance
from .levers import zonage
from .parameters import Parameters, parse_envelopes
from .solution import Solution, read_solution

TEMPLATES = Path(__file__).with_name("templates")
UNCOVERED_ROWS = 50  # communes listed in the "still uncovered" table (the rest are summed)
SCHEDULE_ROWS = 200

KIND_LABEL = {"cabinet_secondaire": "cabinet secondaire", "centre_de_sante": "centre de santé"}
ITEM_LABEL = {
    "fixed_cabinet": "cabinets secondaires: fixed annual cost (premises, equipment)",
    "physician_days": "cabinets secondaires: physician-days (CSTM-type incentive and travel)",
    "fixed_centre": "centres de santé: fixed annual cost",
    "salaried_fte": "centres de santé: salaried GPs (FTE)",
}
FUNDER_LABEL = {
    "assurance_maladie": "Assurance maladie",
    "collectivites": "Collectivités (communes, département)",
    "ars_hopital": "ARS / hospital (GHT)",
}


# ---------------------------------------------------------------------------------
# Jinja environment and filters
# ---------------------------------------------------------------------------------

def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt_num(x, digits: int = 0) -> str:
    """1234567.8 -> '1 234 568' (thin spaces, French grouping); '–' for missing."""
    if not _finite(x):
        return "–"
    v = round(float(x), digits) + 0.0  # + 0.0: a solver's -0.0 (or -0.3 shown whole) reads "0", not "-0"
    return f"{v:,.{digits}f}".replace(",", "\u202f")


def fmt_pct(x, digits: int = 1) -> str:
    if not _finite(x):
        return "–"
    return f"{100 * float(x):.{digits}f}\u202f%"


def fmt_eur(x) -> str:
    return "–" if not _finite(x) else f"{fmt_num(x)}\u202fEUR"


def fmt_sci(x) -> str:
    if not _finite(x):
        return "–"
    x = float(x)
    return "0" if x == 0 else f"{x:.3g}"


def data_value(x) -> str:
    """Exact value for a data-value attribute: the JSON spelling of the number."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if _finite(x):
        return repr(float(x))
    return "" if x is None else str(x)


def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=fmt_num, pct=fmt_pct, eur=fmt_eur, sci=fmt_sci, dv=data_value, num_any=_shown)
    return env


# ---------------------------------------------------------------------------------
# The map
# ---------------------------------------------------------------------------------

def _zone_points(instance: Instance) -> pd.DataFrame:
    return instance.zones[["lon", "lat"]]


def _polygons(instance: Instance, zone_ids: pd.Series):
    """GeoSeries of zone polygons in the order of ``zone_ids``, or None when the instance has none."""
    g = instance.geometry
    if g is None:
        return None
    g = g.reindex(pd.Index(zone_ids, dtype=object))
    if g.isna().all():
        return None
    kinds = set(g.dropna().geom_type)
    if not kinds & {"Polygon", "MultiPolygon"}:
        return None
    return g


def map_png(instance: Instance, sol: Solution, *, dpi: int = 110) -> bytes:
    """Two panels, before and after: zones coloured by the served share of their demand.

    Drawn from the commune polygons when the instance has them, as points sized by
    population otherwise. Existing practices are black dots; opened sites are
    triangles (cabinets secondaires) and squares (centres de santé); a line joins a
    practice to each cabinet secondaire it staffs. When the zones carry a ``zonage``
    column, communes classed ZIP or ZAC are hatched on both panels (:func:`_zonage_overlay`).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    z = sol.zones.copy()
    z["zone_id"] = z["zone_id"].astype(str)
    moves = access_changes(z)
    pts = _zone_points(instance).reindex(z["zone_id"])
    poly = _polygons(instance, z["zone_id"])
    from .solution import planning_zones

    counted = planning_zones(instance).reindex(z["zone_id"]).fillna(True).to_numpy(bool)
    lat0 = float(np.nanmean(pts["lat"])) if len(pts) else 46.0
    aspect = 1.0 / max(math.cos(math.radians(lat0)), 0.1)

    fig = Figure(figsize=(13, 6.6), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    cmap = "RdYlGn"
    norm = Normalize(0, 1)
    S = sol.summary
    practice_xy = _zone_points(instance).reindex(instance.practices["zone_id"].astype(str))
    classes = zonage(instance)
    classes = None if classes is None else classes.reindex(z["zone_id"]).fillna("none")
    sites = sol.sites.copy()
    titles = (f"Before: {fmt_num(S.get('population_uncovered_before'))} inhabitants without access",
              f"After: {fmt_num(S.get('population_uncovered'))} inhabitants without access")
    for ax, col, title in zip(axes, ("covered_before", "covered_after"), titles):
        values = z[col].astype(float).to_numpy()
        if poly is not None:
            import geopandas as gpd

            gdf = gpd.GeoDataFrame({"v": values, "counted": counted}, geometry=poly.to_numpy(), crs="EPSG:4326")
            gdf = gdf[gdf.geometry.notna()]
            # Neighbours across the border serve and compete but are not planned for: grey.
            if (~gdf["counted"]).any():  # geopandas warns on stderr when asked to draw nothing
                gdf[~gdf["counted"]].plot(ax=ax, color="#e4e4e4", edgecolor="#ffffff", linewidth=0.15)
            gdf[gdf["counted"]].plot(ax=ax, column="v", cmap=cmap, vmin=0, vmax=1, edgecolor="#ffffff",
                                     linewidth=0.15)
        else:
            size = 30 + 400 * np.sqrt(z["population"].astype(float).to_numpy()
                                      / max(float(z["population"].max()), 1.0))
            ax.scatter(pts["lon"], pts["lat"], c=values, cmap=cmap, norm=norm, s=size,
                       edgecolors="#555555", linewidths=0.5, zorder=2)
        ax.scatter(practice_xy["lon"], practice_xy["lat"], s=14, c="#111111", marker="o", zorder=4,
                   label="existing practice")
        if col == "covered_after":
            sched = sol.schedule
            if len(sched):
                zl = _zone_points(instance)
                a = zl.reindex(sched["practice_zone_id"].astype(str)).to_numpy()
                b = zl.reindex(sched["site_zone_id"].astype(str)).to_numpy()
                for (x0, y0), (x1, y1) in zip(a, b):
                    ax.plot([x0, x1], [y0, y1], color="#0b2a66", linewidth=1.6, alpha=0.9, zorder=3)
            for kind, marker, color in (("cabinet_secondaire", "^", "#1f4e9c"),
                                        ("centre_de_sante", "s", "#7b2d8e")):
                k = sites[sites["kind"] == kind]
                if len(k):
                    ax.scatter(k["lon"], k["lat"], marker=marker, s=90, c=color, edgecolors="white",
                               linewidths=0.8, zorder=5)
        if classes is not None:
            _zonage_overlay(ax, classes, pts, poly)
        if col == "covered_after":
            _mark_changes(ax, z, pts, poly, moves)
        _label_towns(ax, z, pts)
        ax.set_title(title, fontsize=11)
        ax.set_aspect(aspect)
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
    # same extent on both panels, never flatter than 1:2 (a line of villages stays readable)
    if poly is not None:
        xlo, ylo, xhi, yhi = (float(v) for v in poly.dropna().total_bounds)
    else:
        xlo, xhi = float(np.nanmin(pts["lon"])), float(np.nanmax(pts["lon"]))
        ylo, yhi = float(np.nanmin(pts["lat"])), float(np.nanmax(pts["lat"]))
    width = max(xhi - xlo, (yhi - ylo) * aspect * 0.6, 0.02)
    height = max(yhi - ylo, width / aspect * 0.5)
    cx, cy = (xlo + xhi) / 2, (ylo + yhi) / 2
    pad = 0.08 if poly is not None else 0.15
    xlo, xhi = cx - width * (0.5 + pad), cx + width * (0.5 + pad)
    ylo, yhi = cy - height * (0.5 + pad), cy + height * (0.5 + pad)
    for ax in axes:
        ax.set_xlim(xlo, xhi)
        ax.set_ylim(ylo, yhi)
        ax.set_xlabel("")
        ax.set_ylabel("")
        _scale_bar(ax, xlo, xhi, ylo, yhi, lat0)
    handles = [
        Line2D([], [], marker="o", linestyle="", color="#111111", markersize=5, label="existing practice"),
        Line2D([], [], marker="^", linestyle="", color="#1f4e9c", markersize=9, label="cabinet secondaire opened"),
        Line2D([], [], marker="s", linestyle="", color="#7b2d8e", markersize=8, label="centre de santé opened"),
        Line2D([], [], color="#1f4e9c", linewidth=1.2, label="practice staffing a cabinet"),
    ]
    if moves["lost_communes"]:
        handles.append(Line2D([], [], marker="X", linestyle="", color="#b3261e", markeredgecolor="white",
                              markersize=9, label=f"loses access ({moves['lost_communes']})"))
    if moves["gained_communes"]:
        handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="none", color="#0a5c2b",
                              markeredgewidth=1.6, markersize=8,
                              label=f"gains access ({moves['gained_communes']})"))
    handles += _zonage_handles(classes)
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), frameon=False, fontsize=9)
    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), orientation="vertical",
                        fraction=0.025, pad=0.02)
    minutes = S.get("parameters", {}).get("coverage_minutes")
    cbar.set_label(f"share of the zone's demand served within {fmt_num(minutes, 0)} min", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


TOWN_LABELS = 6  # the largest communes by population get their name on the map
# Zonage overlay: hatch (polygons) or outline marker (points) per class, in a dark grey that
# stays readable over the red-to-green shares and apart from the red crosses and green rings.
ZONAGE_STYLE = {"ZIP": {"hatch": "///", "marker": "s", "label": "ZIP commune (zonage)"},
                "ZAC": {"hatch": "---", "marker": "D", "label": "ZAC commune (zonage)"}}
ZONAGE_INK = "#2b2b2b"


def _zonage_overlay(ax, classes: pd.Series, pts: pd.DataFrame, poly) -> None:
    """Hatch the communes classed ZIP or ZAC (``classes``: aligned with ``pts``), or ring
    their points with an outline marker when the instance has no polygons."""
    import matplotlib as mpl

    for cls, style in ZONAGE_STYLE.items():
        mine = (classes == cls).to_numpy()
        if not mine.any():
            continue
        if poly is not None:
            import geopandas as gpd

            g = gpd.GeoSeries(poly.to_numpy()[mine], crs="EPSG:4326").dropna()
            if len(g):  # the hatch twice, white under dark: readable over dark green and pale yellow alike
                for ink, width, z in (("white", 1.6, 2.4), (ZONAGE_INK, 0.7, 2.5)):
                    with mpl.rc_context({"hatch.linewidth": width, "hatch.color": ink}):
                        g.plot(ax=ax, facecolor="none", edgecolor=ink, hatch=style["hatch"], linewidth=0,
                               zorder=z)
                g.plot(ax=ax, facecolor="none", edgecolor=ZONAGE_INK, linewidth=0.6, zorder=2.5)
        else:
            ax.scatter(pts["lon"].to_numpy()[mine], pts["lat"].to_numpy()[mine], s=150, marker=style["marker"],
                       facecolors="none", edgecolors=ZONAGE_INK, linewidths=1.0, zorder=2.5)


def _zonage_handles(classes: pd.Series | None) -> list:
    """Legend entries of the zonage overlay, with each class's count of communes; none
    when the instance has no zonage column."""
    from matplotlib.patches import Patch

    if classes is None:
        return []
    out = []
    for cls, style in ZONAGE_STYLE.items():
        n = int((classes == cls).sum())
        if n:
            out.append(Patch(facecolor="white", edgecolor=ZONAGE_INK, hatch=style["hatch"],
                             label=f"{style['label']} ({n})"))
    return out


def _mark_changes(ax, z: pd.DataFrame, pts: pd.DataFrame, poly, moves: dict) -> None:
    """On the 'after' panel: a red cross on each commune that loses access (with its outline
    when polygons exist), a green ring on each commune that gains access."""
    lost = z["zone_id"].isin(moves["lost_ids"]).to_numpy()
    gained = z["zone_id"].isin(moves["gained_ids"]).to_numpy()
    if poly is not None and lost.any():
        import geopandas as gpd

        g = gpd.GeoSeries(poly.to_numpy()[lost], crs="EPSG:4326").dropna()
        if len(g):
            g.plot(ax=ax, facecolor="none", edgecolor="#b3261e", linewidth=1.4, zorder=6)
    if gained.any():
        ax.scatter(pts["lon"].to_numpy()[gained], pts["lat"].to_numpy()[gained], s=46, facecolors="none",
                   edgecolors="#0a5c2b", linewidths=1.4, zorder=6)
    if lost.any():
        ax.scatter(pts["lon"].to_numpy()[lost], pts["lat"].to_numpy()[lost], s=70, marker="X", c="#b3261e",
                   edgecolors="white", linewidths=0.7, zorder=7)


def _label_towns(ax, z: pd.DataFrame, pts: pd.DataFrame) -> None:
    """Names of the largest communes by population, so the map has a sense of place."""
    import matplotlib.patheffects as pe

    top = z.assign(_p=z["population"].astype(float)).sort_values(["_p", "zone_id"], ascending=[False, True])
    span = max(float(np.nanmax(pts["lat"]) - np.nanmin(pts["lat"])), 1e-3) if len(pts) else 1.0
    placed: list[tuple[float, float]] = []
    for _, r in top.head(3 * TOWN_LABELS).iterrows():
        x, y = pts.loc[r["zone_id"], "lon"], pts.loc[r["zone_id"], "lat"]
        if len(placed) >= TOWN_LABELS or not (_finite(x) and _finite(y)):
            continue
        if any(abs(y - py) < 0.06 * span and abs(x - px) < 0.25 * span for px, py in placed):
            continue  # a larger neighbour's label is already there: no overprint
        placed.append((x, y))
        ax.annotate(str(r["name"]), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8.5,
                    fontweight="bold", color="#1d2430", zorder=8,
                    path_effects=[pe.withStroke(linewidth=2.5, foreground="white")])


def _scale_bar(ax, xlo, xhi, ylo, yhi, lat0: float) -> None:
    """A scale bar of a round length (about a fifth of the panel width), bottom left."""
    km_per_deg = 111.32 * max(math.cos(math.radians(lat0)), 0.1)
    target = (xhi - xlo) * km_per_deg / 5
    km = max((n for n in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500) if n <= max(target, 1)), default=1)
    length = km / km_per_deg
    x0, y0 = xlo + 0.04 * (xhi - xlo), ylo + 0.04 * (yhi - ylo)
    ax.plot([x0, x0 + length], [y0, y0], color="#1d2430", linewidth=3, solid_capstyle="butt", zorder=9)
    ax.text(x0 + length / 2, y0 + 0.012 * (yhi - ylo), f"{km} km", ha="center", va="bottom", fontsize=8.5,
            color="#1d2430", zorder=9)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# ---------------------------------------------------------------------------------
# Tables for the template
# ---------------------------------------------------------------------------------

def _names(instance: Instance) -> pd.Series:
    return instance.zones["name"].astype(str)


def result_meaning(summary) -> dict:
    """How to read the plan (``result`` in solution.json; from the model's declaration for
    folders written before that key existed)."""
    if summary.get("result"):
        return dict(summary["result"])
    from .models import get

    return get(summary.get("model")).result.to_dict()


def _planning(instance: Instance, zones: pd.DataFrame) -> pd.DataFrame:
    """The rows of the planning territory (neighbours across its border serve but are not
    counted, so the report's lists and figures leave them out)."""
    from .solution import planning_zones

    keep = planning_zones(instance).reindex(zones["zone_id"].astype(str)).fillna(True).to_numpy(bool)
    return zones[keep].copy()


def _apl(instance: Instance, sol: Solution) -> dict | None:
    """APL before and after (DREES 2SFCA), read from zones.csv (the checker recomputed it
    from the plan's capacities); ``None`` when the model computes no APL."""
    if not result_meaning(sol.summary).get("apl") or len(instance.practices) == 0:
        return None
    from .apl import apl_summary

    z = _planning(instance, sol.zones)
    if not {"apl_before", "apl_after"} <= set(z.columns):
        return {"error": "zones.csv has no apl_before/apl_after columns: re-run optisite solve"}
    pop = z["population"].astype(float)
    before = apl_summary(z["apl_before"].astype(float), pop)
    after = apl_summary(z["apl_after"].astype(float), pop)
    rows = [{"threshold": t, "before": before["under"][t], "after": after["under"][t],
             "share_before": before["share_under"][t], "share_after": after["share_under"][t]}
            for t in before["under"]]
    return {"mean_before": before["mean"], "mean_after": after["mean"], "rows": rows,
            "threshold": sol.summary.get("parameters", {}).get("apl_threshold")}


def context(instance: Instance, sol: Solution, *, generated: str | None = None) -> dict[str, Any]:
    """Everything the template shows, read from the solution and the instance."""
    years = None
    if "year" in sol.zones.columns:  # a multi-year plan: its course over time, then its last year
        from .report_years import last_year, years_context

        years = years_context(instance, sol, lambda zones: _planning(instance, zones))
        sol = last_year(sol)
    robust = None
    if "scenario" in sol.zones.columns:  # a robust plan: each scenario, then its worst scenario
        from .report_robust import robust_context, worst_scenario

        robust = robust_context(sol)
        sol = worst_scenario(sol)
    S = sol.summary
    names = _names(instance)
    total = float(S.get("population_total") or 0.0)

    sites = sol.sites.copy()
    sites["commune"] = names.reindex(sites["zone_id"].astype(str)).to_numpy()
    sites["kind_label"] = sites["kind"].map(KIND_LABEL).fillna(sites["kind"])

    sched = sol.schedule.copy()
    sched["practice_commune"] = names.reindex(sched["practice_zone_id"].astype(str)).to_numpy()
    sched["site_commune"] = names.reindex(sched["site_zone_id"].astype(str)).to_numpy()

    z = _planning(instance, sol.zones)
    worse = z[z["uncovered_after"].astype(float) > z["uncovered_before"].astype(float) + 0.5]
    moves = access_changes(z)
    unc = z[z["uncovered_after"].astype(float) > 0.5].sort_values(
        ["uncovered_after", "zone_id"], ascending=[False, True])
    rest = unc.iloc[UNCOVERED_ROWS:]

    p = S.get("parameters", {})
    described = {d["name"]: d for d in Parameters.describe()}
    params = [{"name": k, "value": v, "unit": described.get(k, {}).get("unit", ""),
               "source": described.get(k, {}).get("source", ""),
               "default": described.get(k, {}).get("default"),
               "changed": k in described and described[k]["default"] != v}
              for k, v in sorted(p.items())]
    funder_of = {"fixed_cabinet": p.get("funder_cabinet_fixed"), "physician_days": p.get("funder_cabinet_days"),
                 "fixed_centre": p.get("funder_centre_fixed"), "salaried_fte": p.get("funder_centre_fte")}
    items = [{"key": k, "label": ITEM_LABEL.get(k, k), "value": v, "funder": funder_of.get(k),
              "funder_label": FUNDER_LABEL.get(funder_of.get(k), funder_of.get(k))}
             for k, v in S.get("cost_by_item", {}).items()]
    envelopes = parse_envelopes(p.get("funder_envelopes", "none"))
    funders = [{"key": k, "label": FUNDER_LABEL.get(k, k), "value": v, "envelope": envelopes.get(k)}
               for k, v in S.get("cost_by_funder", {}).items()]
    classes = zonage(instance)  # the zonage lever's ZIP/ZAC classes, shown beside communes when given
    if classes is not None:
        sites["zonage"] = classes.reindex(sites["zone_id"].astype(str)).to_numpy()
        unc = unc.assign(zonage=classes.reindex(unc["zone_id"].astype(str)).to_numpy())

    inst = S.get("instance", {})
    png = map_png(instance, sol)
    check = S.get("check") or {}
    budget = S.get("budget")
    return {
        "S": S,
        "years": years,
        "robust": robust,
        "result": result_meaning(S),
        "title": f"optisite plan: {inst.get('name', instance.name)}",
        "generated": generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "share_uncovered_before": (S.get("population_uncovered_before", 0.0) / total) if total else None,
        "share_uncovered_after": (S.get("population_uncovered", 0.0) / total) if total else None,
        "gained": (S.get("population_covered", 0.0) or 0.0) - (S.get("population_covered_before", 0.0) or 0.0),
        "budget_share": (S.get("cost_total", 0.0) / budget) if budget else None,
        "zones_count": int(len(z)),
        "map_uri": png_data_uri(png),
        "map_has_polygons": _polygons(instance, z["zone_id"].astype(str)) is not None,
        "sites": sites.to_dict("records"),
        "schedule": sched.head(SCHEDULE_ROWS).to_dict("records"),
        "schedule_more": max(0, len(sched) - SCHEDULE_ROWS),
        "uncovered": unc.head(UNCOVERED_ROWS).to_dict("records"),
        "uncovered_count": int(len(unc)),
        "worse_count": int(len(worse)),
        "worse_population": float((worse["uncovered_after"] - worse["uncovered_before"]).sum()),
        "moves": moves,
        "status_words": STATUS_WORDS.get(S.get("status"), (str(S.get("status")), "")),
        "gap_words": gap_words(S),
        "cost_words": cost_words(S),
        "params_shown": [dict(r, shown=_shown(r["value"])) for r in params],
        "uncovered_rest_count": int(len(rest)),
        "uncovered_rest_population": float(rest["uncovered_after"].sum()),
        "items": items,
        "funders": funders,
        "has_envelopes": bool(envelopes),
        "has_zonage": classes is not None,
        "days_per_month": p.get("presence_unit") == "month",  # presence granularity: show days a month
        "params": params,
        "warnings": [w for w in S.get("warnings", [])
                     if not (w.startswith("the existing GP supply") and "ILLUSTRATIVE" in w)],
        "illustrative": (inst.get("supply_source") or instance.supply_source) == "illustrative",
        "supply_source": inst.get("supply_source") or instance.supply_source,
        "provenance": _flatten(inst.get("provenance") or dict(instance.provenance)),
        "travel": inst.get("travel", ""),
        "stages": (S.get("solver") or {}).get("stages", []),
        **_reproducible(S.get("solver") or {}),
        "check": check,
        "checked": bool(check),
        "apl": _apl(instance, sol),
        "fingerprint_matches": inst.get("fingerprint") in (None, instance.fingerprint),
        "instance_fingerprint": instance.fingerprint,
    }


STATUS_WORDS = {
    "optimal": ("Optimal",
                "the solver finished its search: no plan within the rules and the budget does better."),
    "time_limit": ("Stopped at the time limit",
                   "this is the best plan found before the time ran out; a better one may exist "
                   "(the gap below says how much better at most). Raise --time-limit to search longer."),
    "interrupted": ("Interrupted",
                    "the run was stopped by the user (Ctrl-C or a signal); this is the best plan found "
                    "so far and a better one may exist (the gap below says how much better at most)."),
}


def gap_words(S: dict) -> str:
    """The proven gap as a sentence a planner reads (objective against the proven bound)."""
    gap, obj, bound = S.get("gap"), S.get("objective"), S.get("bound")
    unit = S.get("objective_unit") or ""
    if not _finite(gap) or not _finite(bound):
        return "No bound was proven: how far this plan is from the best possible is unknown."
    if float(gap) <= 0:
        return f"Proven optimal: the plan's objective ({fmt_num(obj)} {unit}) equals the proven bound."
    return (f"Proven within {fmt_pct(gap, 2)} of the best possible: the plan's objective is {fmt_num(obj)} "
            f"{unit}, and no plan can do better than {fmt_num(bound)}.")


def cost_words(S: dict) -> str | None:
    """How sure the cost is, for a model that minimises cost after its first objective: the
    cost stage holds the plan's value and minimises the cost; a stage stopped by its limit
    says how much cheaper a plan of the same value could be (its proven bound)."""
    stages = (S.get("solver") or {}).get("stages") or []
    # A later stage only: where cost is the first objective (lscp), the gap sentence says it.
    cost = next((s for s in stages[1:] if s.get("name") == "cost"), None)
    if cost is None or not cost.get("has_solution", True):
        return None
    if cost.get("status") == "optimal":
        return "Least cost proven: no plan of the same value costs less."
    plan, bound = cost.get("objective"), cost.get("bound")  # as the stages table shows them
    if not _finite(plan) or not _finite(bound) or float(bound) <= 0:
        return ("The cost is not proven the least for this plan's value: no lower bound on the cost "
                "was proven. A longer --time-limit searches further.")
    below = max(0.0, (float(plan) - float(bound)) / max(float(plan), 1e-9))
    return (f"The cost is not proven the least for this plan's value: no plan of the same value costs less "
            f"than {fmt_eur(bound)}, at most {fmt_pct(below, 1)} below this plan's {fmt_eur(plan)}. "
            "A longer --time-limit narrows it.")


def access_changes(zones: pd.DataFrame, *, tolerance: float = 0.5) -> dict[str, Any]:
    """Communes that gain and that lose access (inhabitants without access change by more than
    ``tolerance``), with the inhabitants concerned; the largest losers first, by name."""
    before = zones["uncovered_before"].astype(float)
    after = zones["uncovered_after"].astype(float)
    delta = before - after
    gain, lose = zones[delta > tolerance], zones[delta < -tolerance]
    lose_sorted = lose.assign(lost=-delta[delta < -tolerance]).sort_values(["lost", "zone_id"],
                                                                          ascending=[False, True])
    return {
        "gained_communes": int(len(gain)),
        "gained_population": float(delta[delta > tolerance].sum()),
        "lost_communes": int(len(lose)),
        "lost_population": float(-delta[delta < -tolerance].sum()),
        "lost_top": [{"name": str(r.name_), "zone_id": str(r.zone_id), "lost": float(r.lost)}
                     for r in lose_sorted.rename(columns={"name": "name_"}).head(5).itertuples()],
        "gained_ids": set(gain["zone_id"].astype(str)),
        "lost_ids": set(lose["zone_id"].astype(str)),
    }


def _shown(v) -> str:
    """A parameter value as a person reads it: numbers grouped, integers without '.0'."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        return str(v)
    v = float(v)
    if not math.isfinite(v):
        return "–"
    if v == int(v):
        return fmt_num(v)
    return f"{v:.4g}" if abs(v) < 1000 else fmt_num(v, 1)


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out.append((key, "; ".join(str(x) for x in v)))
        else:
            out.append((key, str(v)))
    return out


def _reproducible(solver: dict) -> dict:
    """Whether re-running gives the same tables, and why: every stage optimal, or a search
    stopped by its effort budget (not the clock); folders written before the record of
    what stopped the search fall back to "every stage optimal"."""
    stages = solver.get("stages", [])
    optimal = all(st.get("status") == "optimal" for st in stages)
    repro = bool(solver.get("reproducible", optimal))
    return {"reproducible": repro, "repro_by": "none" if not repro else ("optimal" if optimal else "effort"),
            "wall_clock_cuts": solver.get("wall_clock_cuts", [])}


def render_report(instance: Instance, solution: Solution, *, generated: str | None = None) -> str:
    """The report page as one HTML string (styles and images inlined)."""
    env = environment()
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return env.get_template("report.html").render(css=css, **context(instance, solution, generated=generated))


# ---------------------------------------------------------------------------------
# Re-rendering an existing folder
# ---------------------------------------------------------------------------------

def instance_for(folder_summary: dict, instance: Instance) -> Instance:
    """The instance with the solution's parameters applied; refuse another instance."""
    from .errors import InputError

    params = folder_summary.get("parameters") or {}
    inst = instance.with_parameters({k: v for k, v in params.items()
                                     if getattr(instance.parameters, k, None) != v}, file="solution.json")
    fp = folder_summary.get("instance", {}).get("fingerprint")
    if fp not in (None, inst.fingerprint):
        raise InputError("the solution was computed on another instance (fingerprint differs)",
                         file="solution.json", column="instance.fingerprint",
                         fix="give the instance folder the solution was solved on")
    return inst


def write_report(folder: str | Path, instance: Instance) -> Path:
    """Re-render ``folder/report.html`` from the folder's tables; replace only that file, atomically."""
    folder = Path(folder)
    sol = read_solution(folder)
    inst = instance_for(sol.summary, instance)
    sol.zone_geometry = inst.geometry
    html = render_report(inst, sol)
    return write_text_atomic(folder / "report.html", html)


def write_text_atomic(path: Path, text: str) -> Path:
    """Replace one file atomically, with the umask's mode (see :mod:`optisite.outfolder`)."""
    from .outfolder import write_file

    return write_file(path, text, force=True)


__all__ = ["render_report", "write_report", "map_png", "context", "write_text_atomic"]
