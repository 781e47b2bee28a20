"""Result rows -> a printed table, a CSV and a Markdown file (small tables only)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from solvers import Result

RESULTS = Path(__file__).resolve().parent / "results"


def rows(results: list[Result], reference: str = "optisite", known: dict | None = None) -> pd.DataFrame:
    """One row per (instance, solver) with times and ratios to ``reference``'s times."""
    out = []
    ref = {r.instance: r for r in results if r.solver == reference}
    for r in results:
        base = ref.get(r.instance)
        ok_base = base is not None and base.status not in ("error", "unavailable") and base.total_s > 0
        row = {
            "instance": r.instance, "solver": r.solver, "status": r.status,
            "covered": r.covered, "bound": r.bound, "gap_pct": 100 * r.gap,
            "prep_s": r.prep_s, "build_s": r.build_s, "solve_s": r.solve_s, "total_s": r.total_s, "wall_s": r.wall_s,
            f"time_vs_{reference}": (r.total_s / base.total_s) if ok_base and r.status not in ("error", "unavailable") else math.nan,
            f"same_as_{reference}": (abs(r.covered - base.covered) < 0.5) if ok_base and not math.isnan(r.covered) else None,
        }
        if known is not None:
            k = known.get(r.instance)
            row["best_known"] = k
            row["reached"] = (None if k is None or math.isnan(r.covered) else bool(r.covered >= k - 0.5))
            row["proved_better_impossible"] = (None if k is None or math.isnan(r.bound)
                                                else bool(r.bound <= k + 0.5))
        row["note"] = r.note
        out.append(row)
    return pd.DataFrame(out)


def fmt(df: pd.DataFrame) -> pd.DataFrame:
    d = df.copy()
    for c in ("covered", "bound", "best_known"):
        if c in d:
            d[c] = d[c].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.0f}")
    for c in ("gap_pct",):
        d[c] = d[c].map(lambda v: "" if math.isnan(v) else f"{v:.3f}")
    for c in [c for c in d.columns if c.endswith("_s") or "time_vs" in c]:
        d[c] = d[c].map(lambda v: "" if v is None or math.isnan(v) else f"{v:.2f}")
    return d.fillna("")


def markdown(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(str(v).replace("|", "/") for v in r.to_numpy()) + " |")
    return "\n".join(lines)


def text(df: pd.DataFrame) -> str:
    return fmt(df).to_string(index=False)


def write(df: pd.DataFrame, stem: str, header: str = "") -> tuple[Path, Path]:
    RESULTS.mkdir(exist_ok=True)
    csv_path, md_path = RESULTS / f"{stem}.csv", RESULTS / f"{stem}.md"
    df.to_csv(csv_path, index=False, float_format="%.4f")
    md = markdown(fmt(df))
    md_path.write_text((header.strip() + "\n\n" if header else "") + md + "\n", encoding="utf-8")
    return csv_path, md_path
