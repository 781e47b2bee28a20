"""Issue 18 item 4: does the staffing bound hook prove a tighter bound than HiGHS?

    python benchmarks/staffing_bounds.py [instances/nievre-58 ...] [--time-limit 60]
        [--variants plain,after,share0.5]

Each run is one full ``optisite.pipeline.solve`` (staffing model, one HiGHS thread, the time
limit for the whole solve, the checker on). Variants:

* ``plain``: the bound hook off; HiGHS's dual bound on the model as built (the reference);
* ``after``: the hook (``Staffing.bound``: the days-and-FTE-continuous relaxation,
  warm-started from the plan) gets what the main stages leave;
* ``shareS``: the pipeline keeps a share S of the time for the hook up front
  (``Model.bound_share``, whatever the limit), the main stages get the rest;
* ``default``: the model as shipped (``Staffing.bound_share`` from
  ``Staffing.bound_share_from_s`` seconds left).

Per run: the plan, HiGHS's bound, the best bound and the method that proved it, the
gap before (plan vs HiGHS) and after (plan vs best), the hook's seconds, the total
seconds, and the ratios against ``plain`` in the same run (gap and plan). The load
average is printed: the machine is shared, figures are noisy. Writes
benchmarks/results/staffing_bounds.csv and .md.
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
from optisite.models import get as get_model  # noqa: E402
from optisite.instance import load_instance  # noqa: E402
from optisite.pipeline import SolveOptions, solve  # noqa: E402


def run(inst, variant: str, time_limit: float) -> dict:
    model = get_model("staffing")
    if variant == "plain":
        model.bound = lambda *a, **k: None  # instance attribute: shadows the hook for this run
        model.bound_share = 0.0
    elif variant == "after":
        model.bound_share = 0.0
    elif variant.startswith("share"):
        model.bound_share = float(variant[5:])
        model.bound_share_from_s = 0.0
    elif variant != "default":
        raise SystemExit(f"unknown variant '{variant}'")
    load = os.getloadavg()[0]
    t = time.perf_counter()
    try:
        sol = solve(inst, SolveOptions(model="staffing", time_limit=time_limit, threads=1))
    finally:
        model.__dict__.pop("bound", None)
        model.__dict__.pop("bound_share", None)
        model.__dict__.pop("bound_share_from_s", None)
    S = sol.summary
    stages = S["solver"]["stages"]
    first = stages[0]
    highs = first["extra"].get("highs_bound", first["bound"])
    hook = [s for s in stages if s["name"].startswith("bound:")]
    obj = S["objective"]
    return {
        "instance": Path(str(inst.folder)).name, "variant": variant, "status": S["status"],
        "plan": obj, "highs_bound": highs, "best_bound": S["bound"],
        "method": "HiGHS" if S["bound_method"].startswith("HiGHS") else "relaxation d,f continuous",
        "gap_before_pct": max(0.0, 100 * (obj - highs) / obj) if obj and highs is not None else math.nan,
        "gap_after_pct": 100 * S["gap"] if S["gap"] is not None else math.nan,
        "stage1_s": first["seconds"], "hook_s": hook[0]["seconds"] if hook else 0.0,
        "hook_status": hook[0]["status"] if hook else "not run",
        "hook_bound": hook[0]["bound"] if hook else math.nan,
        "total_s": time.perf_counter() - t, "checked": bool(S["check"]["ok"]), "load_1min": load,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("instances", nargs="*",
                    default=["instances/nievre-58", "instances/ille-et-vilaine-35", "instances/rhone-69"])
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per run, whole solve (default 60)")
    ap.add_argument("--variants", default="plain,after,share0.5")
    ap.add_argument("--out", default="staffing_bounds")
    args = ap.parse_args(argv)
    variants = args.variants.split(",")
    rows = []
    for folder in args.instances:
        inst = load_instance(folder)
        found = {}
        for variant in variants:
            r = run(inst, variant, args.time_limit)
            found[variant] = r
            rows.append(r)
            print(f"{r['instance']:24s} {variant:9s} plan {r['plan']:12,.1f} HiGHS bound {r['highs_bound']:12,.1f} "
                  f"best {r['best_bound']:12,.1f} ({r['method']}) gap {r['gap_before_pct']:.2f} % -> "
                  f"{r['gap_after_pct']:.2f} %  hook {r['hook_status']} {r['hook_s']:.1f} s  "
                  f"total {r['total_s']:.1f} s  load {r['load_1min']:.1f}", flush=True)
        base = found.get("plain")
        for r in rows[-len(variants):]:
            ok = base is not None and base["gap_after_pct"] > 0
            r["gap_vs_plain"] = r["gap_after_pct"] / base["gap_after_pct"] if ok else math.nan
            r["plan_vs_plain"] = r["plan"] / base["plan"] if base is not None and base["plan"] else math.nan
    df = pd.DataFrame(rows)
    for c in ("plan", "highs_bound", "best_bound", "hook_bound"):
        df[c] = df[c].round(1)
    for c in ("gap_before_pct", "gap_after_pct", "gap_vs_plain", "plan_vs_plain", "stage1_s", "hook_s", "total_s",
              "load_1min"):
        df[c] = df[c].round(3 if "vs" in c else 2)
    header = (f"# Staffing: the bound hook against HiGHS's own bound\n\n`python benchmarks/staffing_bounds.py "
              f"{' '.join(args.instances)} --time-limit {args.time_limit:g} --variants {args.variants}`: one full "
              "solve per row, one HiGHS thread, the time limit for the whole solve. plan and bounds: weighted "
              "people without access; gap_before: plan vs HiGHS's bound, gap_after: plan vs the best bound "
              "reported; gap_vs_plain, plan_vs_plain: ratios to the `plain` row of the same instance (hook off). "
              "load_1min: the machine's load average when the run started (2 cores shared by several "
              "sessions: times and bounds reached are noisy).")
    report.RESULTS.mkdir(exist_ok=True)
    csv_path, md_path = report.RESULTS / f"{args.out}.csv", report.RESULTS / f"{args.out}.md"
    df.to_csv(csv_path, index=False)
    md_path.write_text(header + "\n\n" + report.markdown(df.astype(object).where(df.notna(), "")) + "\n",
                       encoding="utf-8")
    print(f"written: {csv_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
