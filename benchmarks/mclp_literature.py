"""Issue 6, target 1: the 24 Máximo et al. maximal covering cases against their
best known values; optisite's coverage model beside plain HiGHS on the textbook
formulation (highspy, no modelling layer) and PySAL spopt (PuLP + HiGHS, PuLP + CBC).

    python benchmarks/mclp_literature.py [--time-limit 60] [--threads 1]
        [--cases NewYork:50,Bronx,spopt-sf] [--solvers optisite,highs,spopt-highs,spopt-cbc]
        [--spopt-max-cells 8e6] [--out mclp_literature]

``--cases``: comma list of ``Instance`` (all its p) or ``Instance:p`` from
best_known.csv, plus ``spopt-sf`` (spopt's San Francisco test, optimum 875,247).
spopt builds a dense cost matrix and a PuLP expression over every
(client, candidate) cell, so it only runs where clients x candidates <=
``--spopt-max-cells`` (default 8 million: New York and spopt-sf; Bronx has 14.7
million cells, Kings 60 million); its model building is not time-limited, only
its solve.

Columns: covered (recomputed from the open sites, great-circle distances
recomputed from the coordinates), bound (proven upper bound on covered demand),
gap_pct (on covered demand), reached (covered >= best known), proved (bound <=
best known: the best known value is optimal, or the solver found it too),
times in seconds, time_vs_optisite (total / optisite's total). Writes
benchmarks/results/<out>.csv and .md.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import instances as I  # noqa: E402
import report  # noqa: E402
import solvers as S  # noqa: E402


def select_cases(spec: str | None) -> list[str]:
    bk = I.maximo_cases()
    allc = [f"{r.instance}:{r.p}" for r in bk.itertuples()]
    if not spec:
        return allc
    out = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        if item == "spopt-sf":
            out.append(item)
        elif ":" in item:
            if item not in allc:
                raise SystemExit(f"unknown case {item}; known: {', '.join(allc)}")
            out.append(item)
        else:
            hits = [c for c in allc if c.split(":")[0] == item]
            if not hits:
                raise SystemExit(f"unknown instance {item}; known: {', '.join(sorted(set(bk['instance'])))}")
            out.extend(hits)
    return out


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for solver, g in df.groupby("solver", sort=False):
        ran = g[~g["status"].isin(["skipped", "unavailable", "error"])]
        rows.append({
            "solver": solver, "cases_run": len(ran), "of": len(g),
            "reached_best_known": int(ran["reached"].fillna(False).astype(bool).sum()),
            "proved_optimal": int((ran["status"] == "optimal").sum()),
            "median_total_s": float(np.median(ran["total_s"])) if len(ran) else math.nan,
            "max_total_s": float(ran["total_s"].max()) if len(ran) else math.nan,
            "median_time_vs_optisite": float(np.nanmedian(ran["time_vs_optisite"])) if len(ran) and
            ran["time_vs_optisite"].notna().any() else math.nan,
        })
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per solver per case (default 60)")
    ap.add_argument("--threads", type=int, default=1, choices=[1, 2])
    ap.add_argument("--cases", default=None, help="e.g. NewYork:50 or NewYork,spopt-sf (default: all 24)")
    ap.add_argument("--solvers", default="optisite,highs,spopt-highs,spopt-cbc")
    ap.add_argument("--spopt-max-cells", type=float, default=8e6)
    ap.add_argument("--out", default="mclp_literature", help="file stem under benchmarks/results/")
    args = ap.parse_args(argv)

    cases = select_cases(args.cases)
    solvers = [s for s in args.solvers.split(",") if s]
    results, known = [], {}
    loaded: dict[str, I.MCLPData] = {}
    for spec in cases:
        key = spec.split(":")[0]
        if spec == "spopt-sf":
            data = I.spopt_sf()
        else:
            if key not in loaded:  # pairs depend on the radius only: reuse across p
                loaded[key] = I.case(spec)
            bk = I.maximo_cases()
            row = bk[(bk["instance"] == key) & (bk["p"] == int(spec.split(":")[1]))].iloc[0]
            base = loaded[key]
            if float(row["radius_m"]) != base.radius:
                base = loaded[key] = I.case(spec)
            data = base.with_case(int(row["p"]), known_optimum=float(row["best_known_covered"]))
            data.name = f"{key}-p{int(row['p'])}-r{row['radius_m']:g}"
        known[data.name] = data.known_optimum
        print(f"\n{data.name}: {data.n_clients} nodes, {data.n_pairs:,} pairs, best known "
              f"{data.known_optimum:,.0f} of {data.total_demand:,.0f}", flush=True)
        for solver in solvers:
            cells = data.n_clients * data.n_facilities
            if solver.startswith("spopt") and cells > args.spopt_max_cells:
                r = S.Result(data.name, solver, "skipped",
                             note=f"{cells / 1e6:.1f}M dense cells > --spopt-max-cells")
            else:
                r = S.run(data, solver, time_limit=args.time_limit, threads=args.threads)
            tag = "" if math.isnan(r.covered) or data.known_optimum is None else \
                ("  = best known" if abs(r.covered - data.known_optimum) < 0.5 else
                 ("  > best known!" if r.covered > data.known_optimum else
                  f"  {100 * (data.known_optimum - r.covered) / data.known_optimum:.2f}% below best known"))
            print(f"  {solver:12s} {r.status:11s} covered {r.covered:>12,.0f}  bound {r.bound:>12,.0f}  "
                  f"{r.total_s:7.2f} s{tag}  {r.note}", flush=True)
            results.append(r)

    df = report.rows(results, reference="optisite", known=known)
    df = df.rename(columns={"proved_better_impossible": "proved"})
    summary = summarise(df)
    header = (f"# Máximo et al. MCLP cases: optisite vs plain HiGHS vs spopt\n\n"
              f"time limit {args.time_limit:g} s per solver per case, {args.threads} thread(s), "
              f"cases: {args.cases or 'all 24'}.\n\n"
              "covered = demand recomputed from the open sites; bound = proven upper bound on covered "
              "demand; reached = covered >= best known; proved = bound <= best known; times in seconds; "
              "time_vs_optisite = total / optisite's total.\n\n## Summary\n\n" + report.markdown(report.fmt(
                  summary.assign(gap_pct=math.nan, **{"best_known": None})).drop(columns=["gap_pct", "best_known"]))
              + "\n\n## Cases")
    csv_path, md_path = report.write(df, args.out, header)
    print("\n" + report.text(df))
    print("\n" + summary.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\nwritten: {csv_path} and {md_path}")
    wrong = df[(df["covered"] > df["bound"] + 0.5) | (df["covered"] > df["best_known"].astype(float) + 0.5)]
    if len(wrong):
        print("\nSUSPICIOUS (covered above a bound or above best known):")
        print(report.text(wrong))
    return 0


if __name__ == "__main__":
    sys.exit(main())
