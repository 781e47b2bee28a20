"""Issue 18 item 3: the staffing model's primal engine against plain HiGHS.

    python benchmarks/staffing_primal.py [instances/nievre-58 ...] [--limits 10,60]
        [--out staffing_primal]

Each run is one full ``optisite.pipeline.solve`` (staffing model, one HiGHS thread, the
limit for the whole solve, the checker on). Per instance and limit, two variants:

* ``engine``: the model as shipped (``Staffing.start``: the better of the status quo
  and the greedy + local search plan as HiGHS's MIP start);
* ``plain``: the start hook writes the status quo only (open nothing), as before.

Per run: the plan (weighted people without access), its cost, the best bound, the gap,
the engine's own plan and seconds and flow LPs, and ratios against ``plain`` in the same
run; ``vs_best_pct``: the plan above the best plan any run found for the instance
(the best known), in percent. The load average is printed: the machine is shared.
Writes benchmarks/results/<out>.csv and .md.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

import report  # noqa: E402
from optisite.instance import load_instance  # noqa: E402
from optisite.models import get as get_model  # noqa: E402
from optisite.models import staffing  # noqa: E402
from optisite.pipeline import SolveOptions, solve  # noqa: E402


def _status_quo_only(ctx, data, m):
    """The start hook as it was before the engine: the status quo, nothing else."""
    from optisite.solver import StageResult
    import pyomo.environ as pyo

    if ctx.baseline is None or not staffing.status_quo_start(m, data, ctx.baseline):
        return []
    return [StageResult(name="start: status quo (open nothing)", status="feasible",
                        objective=float(pyo.value(m.uncovered)), has_solution=True)]


def run(inst, variant: str, limit: float) -> dict:
    model = get_model("staffing")
    if variant == "plain":
        model.start = _status_quo_only  # instance attribute: shadows the hook for this run
    load = os.getloadavg()[0]
    t = time.perf_counter()
    try:
        sol = solve(inst, SolveOptions(model="staffing", time_limit=limit, threads=1))
    finally:
        model.__dict__.pop("start", None)
    S = sol.summary
    eng = [s for s in S["solver"]["start_stages"] if s["name"].startswith("start: greedy")]
    e = eng[0] if eng else None
    return {
        "instance": Path(str(inst.folder)).name, "limit_s": limit, "variant": variant, "status": S["status"],
        "plan": S["objective"], "cost": S["cost_total"], "bound": S["bound"],
        "gap_pct": 100 * S["gap"] if S["gap"] is not None else math.nan,
        "before": S.get("population_uncovered_before", math.nan),
        "engine_plan": e["objective"] if e else math.nan, "engine_used": bool(e and e["extra"].get("used")),
        "engine_s": e["seconds"] if e else 0.0, "engine_lps": e["extra"].get("evaluations", 0) if e else 0,
        "engine_clock_stop": bool(e and e["extra"].get("stopped_by_clock")),
        "total_s": time.perf_counter() - t, "checked": bool(S["check"]["ok"]), "load_1min": load,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("instances", nargs="*",
                    default=["instances/nievre-58", "instances/ille-et-vilaine-35", "instances/rhone-69"])
    ap.add_argument("--limits", default="10,60", help="seconds per run, whole solve, comma-separated")
    ap.add_argument("--variants", default="engine,plain")
    ap.add_argument("--out", default="staffing_primal")
    ap.add_argument("--recompare", action="store_true",
                    help="recompute the comparison columns of benchmarks/results/<out>.csv, no solve")
    args = ap.parse_args(argv)
    if args.recompare:
        old = pd.read_csv(report.RESULTS / f"{args.out}.csv")
        rows = old.drop(columns=[c for c in old if c.startswith("vs_") or c.endswith("_vs_plain")]).to_dict("records")
        for name in dict.fromkeys(r["instance"] for r in rows):
            _compare([r for r in rows if r["instance"] == name])
        args.instances = [f"instances/{n}" if (Path("instances") / n).is_dir() else f"<built>/{n}"
                          for n in dict.fromkeys(r["instance"] for r in rows)]
        _write(rows, args)
        return 0
    limits = [float(x) for x in args.limits.split(",")]
    variants = args.variants.split(",")
    rows = []
    report.RESULTS.mkdir(exist_ok=True)
    for folder in args.instances:
        inst = load_instance(folder)
        first = len(rows)
        for limit in limits:
            for variant in variants:
                r = run(inst, variant, limit)
                rows.append(r)
                print(f"{r['instance']:22s} {limit:4.0f}s {variant:6s} plan {r['plan']:11,.1f} cost {r['cost']:11,.0f} "
                      f"bound {r['bound'] if r['bound'] is not None else math.nan:11,.1f} gap {r['gap_pct']:6.2f} % "
                      f"engine {r['engine_plan']:11,.1f} ({r['engine_lps']} LPs, {r['engine_s']:.1f} s) "
                      f"total {r['total_s']:.1f} s load {r['load_1min']:.1f}", flush=True)
        _compare(rows[first:])
        _write(rows, args)
    return 0


def _compare(mine: list[dict]) -> None:
    """Per run of one instance: the plan above the best known, and ratios to ``plain`` at the
    same limit (blank where ``plain``'s figure is below 1, where a ratio means nothing)."""
    best = min(r["plan"] for r in mine)
    for r in mine:
        r["vs_best"] = r["plan"] - best
        r["vs_best_pct"] = 100 * (r["plan"] - best) / max(abs(best), 1.0)
        peer = [q for q in mine if q["variant"] == "plain" and q["limit_s"] == r["limit_s"]]
        r["plan_vs_plain"] = r["plan"] / peer[0]["plan"] if peer and peer[0]["plan"] >= 1 else math.nan
        r["cost_vs_plain"] = r["cost"] / peer[0]["cost"] if peer and peer[0]["cost"] >= 1 else math.nan


def _write(rows: list[dict], args) -> None:
    df = pd.DataFrame(rows)
    for c in ("plan", "bound", "engine_plan", "before", "vs_best"):
        df[c] = df[c].astype(float).round(1)
    for c in ("gap_pct", "vs_best_pct", "engine_s", "total_s", "load_1min", "plan_vs_plain", "cost_vs_plain"):
        df[c] = df[c].astype(float).round(3 if "vs_plain" in c else 2)
    header = (f"# Staffing: the primal engine against plain HiGHS\n\n`python benchmarks/staffing_primal.py "
              f"{' '.join(args.instances)} --limits {args.limits}`: one full solve per row, one HiGHS thread, the "
              "limit for the whole solve (build, status quo, start, stages, polish, checker). `<built>/ill-D`: "
              "`python -m optisite instance build --departement D --supply illustrative --no-neighbours --out "
              "<built>/ill-D` (the national batch's instances). `engine`: "
              "`Staffing.start` as shipped; `plain`: the status quo as the only start. plan, bound, engine_plan, "
              "before: people without access (the plan, HiGHS's or the hook's bound, the engine's own "
              "plan before HiGHS, the existing supply alone); cost in EUR/year; vs_best_pct: the plan above the "
              "best plan of any row of its instance (vs_best: the difference; the percentage is of max(best, 1)); plan_vs_plain, cost_vs_plain: ratios to the `plain` row at "
              "the same limit; engine_lps: flow LPs the engine solved (its effort); engine_clock_stop: the clock "
              "cut the engine before its effort count. load_1min: load average when the run started (2 cores "
              "shared by several sessions: every time is under load, figures are noisy).")
    csv_path, md_path = report.RESULTS / f"{args.out}.csv", report.RESULTS / f"{args.out}.md"
    df.to_csv(csv_path, index=False)
    md_path.write_text(header + "\n\n" + report.markdown(df.astype(object).where(df.notna(), "")) + "\n",
                       encoding="utf-8")
    print(f"written: {csv_path} and {md_path}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
