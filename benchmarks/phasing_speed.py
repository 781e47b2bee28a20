"""Issue 15, last bullet: the phasing model on each shipped département at Y = 5 years.

    python benchmarks/phasing_speed.py [instances/nievre-58 ...] [--years 5] [--time-limit 60]
        [--out phasing_speed]

Each row is one full ``optisite.pipeline.solve`` of ``--model phasing --years 5
--time-limit 60`` (the limit for the whole solve), its folder written to a scratch
directory and checked again from the files alone (``checker.check_folder``). Per instance,
two variants in the same run:

* ``optisite``: the model as shipped (the better of the plan made year by year and the
  status quo as HiGHS's MIP start, and the year-by-year plan as the fallback);
* ``plain``: plain HiGHS on the same model, no start and no bound hook (HiGHS's own bound, all
  the time to its search).

Per row: wall time from loading the instance to the checked folder, person-years without
access (unweighted, summed over the years) doing nothing and with the plan, the objective
(weighted, discounted person-years) with HiGHS's proven bound and gap, the checker's
verdict, and ratios to ``plain``. The load average is recorded before and after each
row: the machine is shared, so every time is under load.
Writes benchmarks/results/<out>.csv and .md.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

import report  # noqa: E402
from optisite.checker import check_folder  # noqa: E402
from optisite.instance import load_instance  # noqa: E402
from optisite.models import get as get_model  # noqa: E402
from optisite.pipeline import solve  # noqa: E402
from optisite.scenario import apply  # noqa: E402

INSTANCES = ["instances/nievre-58", "instances/ille-et-vilaine-35", "instances/rhone-69"]


def _no_start(ctx, data, m):
    """Plain HiGHS: no MIP start at all."""
    return []


def _no_bound(ctx, data, m, stages):
    """Plain HiGHS: its own bound only."""
    return None


def run(folder: str, variant: str, years: int, limit: float, scratch: Path) -> dict:
    model = get_model("phasing")
    if variant == "plain":  # instance attributes: shadow the hooks for this run only
        model.start = _no_start
        model.bound = _no_bound
        model.bound_share = 0.0
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    try:
        inst, options = apply(load_instance(folder), None, {"model": "phasing", "horizon_years": years,
                                                             "time_limit": limit, "threads": 1})
        sol = solve(inst, options)
    finally:
        for hook in ("start", "bound", "bound_share"):
            model.__dict__.pop(hook, None)
    solve_s = time.perf_counter() - t
    out = scratch / f"{Path(folder).name}-{variant}"
    sol.write(out, force=True, report=False)
    checked = check_folder(out, inst)
    wall = time.perf_counter() - t
    S = sol.summary
    per_year = S.get("years") or []
    T = S.get("timings") or {}
    starts = (S.get("solver") or {}).get("start_stages") or []
    return {
        "instance": Path(folder).name, "variant": variant, "years": years, "limit_s": limit,
        "status": S["status"],
        "person_years_nothing": sum(y["population_uncovered_before"] for y in per_year),
        "person_years_plan": sum(y["population_uncovered"] for y in per_year),
        "objective": _num(S["objective"]),
        "bound": _num(S["bound"]),  # blank: HiGHS proved no bound
        "gap_pct": 100 * _num(S["gap"]),
        "cost_year_last": per_year[-1]["cost_total"] if per_year else math.nan,
        "checker_ok": bool(checked.ok), "solve_s": solve_s, "wall_s": wall,
        "stopped_by": ", ".join((S.get("solver") or {}).get("stopped_by") or []),
        "build_s": T.get("build", math.nan), "search_s": T.get("search", math.nan),
        "start": "; ".join(f"{st['name'].removeprefix('start: ')} {_num(st.get('objective')):,.0f}" for st in starts
                           if st.get("has_solution")) or "none",
        "load_before": load_before, "load_after": os.getloadavg()[0],
    }


def _num(x) -> float:
    """A figure of solution.json as a float; NaN (a blank cell) when absent or infinite."""
    return float(x) if x is not None and math.isfinite(float(x)) else math.nan


def _compare(mine: list[dict]) -> None:
    """Ratios of each row to the ``plain`` row of its instance (blank where the peer's
    figure is below 1 and a ratio means nothing)."""
    peer = [r for r in mine if r["variant"] == "plain"]
    for r in mine:
        p = peer[0] if peer else None
        r["wall_vs_plain"] = r["wall_s"] / p["wall_s"] if p else math.nan
        r["plan_vs_plain"] = (r["person_years_plan"] / p["person_years_plan"]
                              if p and p["person_years_plan"] >= 1 else math.nan)


def _write(rows: list[dict], args) -> None:
    df = pd.DataFrame(rows)
    for c in ("person_years_nothing", "person_years_plan", "objective", "bound", "cost_year_last"):
        df[c] = df[c].astype(float).round(1)
    for c in ("gap_pct", "solve_s", "wall_s", "build_s", "search_s", "load_before", "load_after", "wall_vs_plain", "plan_vs_plain"):
        df[c] = df[c].astype(float).round(3 if "vs_plain" in c else 2)
    header = (
        f"# Phasing at {args.years} years: a checked plan within the limit, against plain HiGHS\n\n"
        f"`python benchmarks/phasing_speed.py {' '.join(args.instances)} --years {args.years} "
        f"--time-limit {args.time_limit:g}`: one full solve per row (`--model phasing --years {args.years} "
        f"--time-limit {args.time_limit:g}`, one HiGHS thread), its folder written and checked again from the "
        "files (`checker.check_folder`). `optisite`: the model as shipped (the plan made year by year as the "
        "start); `plain`: plain HiGHS on the same model with no start, in the same run. person_years_nothing, "
        "person_years_plan: people without access summed over the years (unweighted), doing nothing and with "
        "the plan; objective and bound: weighted, discounted person-years (the model's objective) and HiGHS's "
        "proven bound (blank: none proven); gap_pct from both; start: the MIP starts the model wrote, with their "
        "objective; build_s, search_s: the pipeline's own timings (build includes the instance's pairs and the "
        "model; search: the start, HiGHS and the polish); cost_year_last: EUR/year in the last year; wall_s: from loading the "
        "instance to the checked folder (Python start and imports not counted); wall_vs_plain, plan_vs_plain: "
        "ratios to the `plain` row of the instance. load_before/after: 1-minute load average (2 cores shared "
        "by several sessions: every time is under load, figures are noisy).")
    csv_path, md_path = report.RESULTS / f"{args.out}.csv", report.RESULTS / f"{args.out}.md"
    df.to_csv(csv_path, index=False)
    md_path.write_text(header + "\n\n" + report.markdown(df.astype(object).where(df.notna(), "")) + "\n",
                       encoding="utf-8")
    print(f"written: {csv_path} and {md_path}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("instances", nargs="*", default=INSTANCES)
    ap.add_argument("--years", type=int, default=5)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--variants", default="optisite,plain")
    ap.add_argument("--out", default="phasing_speed")
    args = ap.parse_args(argv)
    report.RESULTS.mkdir(exist_ok=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="phasing_speed_") as tmp:
        for folder in args.instances:
            first = len(rows)
            for variant in args.variants.split(","):
                r = run(folder, variant, args.years, args.time_limit, Path(tmp))
                rows.append(r)
                print(f"{r['instance']:20s} {variant:8s} {r['status']:10s} person-years {r['person_years_nothing']:11,.0f}"
                      f" -> {r['person_years_plan']:11,.0f}  objective {r['objective']:11,.1f} bound {r['bound']:11,.1f}"
                      f" gap {r['gap_pct']:6.2f} %  checker {'ok' if r['checker_ok'] else 'FAILED'}  wall "
                      f"{r['wall_s']:.1f} s  load {r['load_before']:.1f}/{r['load_after']:.1f}", flush=True)
            _compare(rows[first:])
            _write(rows, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
