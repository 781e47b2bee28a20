"""Issue 6, target 3: where the staffing model's gap comes from.

    python benchmarks/staffing_relaxations.py [instances/nievre-58 ...] [--time-limit 90]

Solves stage 1 of the staffing model (people without access) four ways, one HiGHS
thread each: as built; with days and FTE continuous (openings stay binary); with
the openings in [0, 1] (days and FTE stay integer); and as its LP. Each relaxation
only removes constraints, so the bound each one proves is a valid lower bound on
the model's optimum: the best of them, against the plan of the model as built,
gives a gap that can be tighter than the one HiGHS reports. Writes
benchmarks/results/<out>.csv and .md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import pyomo.environ as pyo  # noqa: E402

import report  # noqa: E402
from optisite.instance import load_instance  # noqa: E402
from optisite.models import staffing  # noqa: E402
from optisite.reach import coverage_pairs, staffing_pairs  # noqa: E402
from optisite.deadline import Deadline  # noqa: E402
from optisite.models.base import Objective  # noqa: E402
from optisite.solver import SolveOptions, StageSolver  # noqa: E402

VARIANTS = {
    "as built": (),
    "days and FTE continuous": ("d", "f"),
    "openings in [0, 1]": ("y", "o"),
    "LP": ("d", "f", "y", "o"),
}


def solve_variant(data, relaxed: tuple[str, ...], time_limit: float) -> dict:
    m = staffing.build(data)
    for name in relaxed:
        domain = pyo.UnitInterval if name in ("y", "o") else pyo.NonNegativeReals
        for v in getattr(m, name).values():
            v.domain = domain
    t = time.perf_counter()
    options = SolveOptions(time_limit=time_limit, threads=1, lexicographic=False)
    first = StageSolver(options, Deadline(time_limit)).minimise(m, Objective("uncovered", m.uncovered))
    return {"status": first.status, "objective": first.objective, "bound": first.bound,
            "solve_s": time.perf_counter() - t}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("instances", nargs="*", default=["instances/nievre-58"])
    ap.add_argument("--time-limit", type=float, default=90.0, help="seconds per variant (default 90)")
    ap.add_argument("--out", default="staffing_relaxations")
    args = ap.parse_args(argv)
    rows = []
    for folder in args.instances:
        inst = load_instance(folder)
        data = staffing.prepare(inst, coverage_pairs(inst), staffing_pairs(inst))
        found = {}
        for variant, relaxed in VARIANTS.items():
            r = solve_variant(data, relaxed, args.time_limit)
            found[variant] = r
            print(f"{Path(folder).name:24s} {variant:26s} {r['status']:11s} objective {r['objective'] or math.nan:12,.1f} "
                  f"bound {r['bound'] or math.nan:12,.1f}  {r['solve_s']:6.1f} s", flush=True)
            rows.append({"instance": Path(folder).name, "variant": variant, **r})
        plan = found["as built"]["objective"]
        best_bound = max((r["bound"] for r in found.values() if r["bound"] is not None), default=math.nan)
        for row in rows[-len(VARIANTS):]:
            row["plan_vs_bound_pct"] = (100 * (plan - row["bound"]) / plan
                                        if plan and abs(plan) > 1e-6 and row["bound"] is not None
                                        else 0.0 if plan is not None and row["bound"] is not None
                                        and abs(plan - row["bound"]) < 1e-6 else math.nan)
        if plan and abs(plan) > 1e-6:
            print(f"{Path(folder).name}: plan {plan:,.1f}; best proven lower bound {best_bound:,.1f}; "
                  f"gap {100 * (plan - best_bound) / plan:.2f} % (HiGHS reports "
                  f"{100 * (plan - found['as built']['bound']) / plan:.2f} %)", flush=True)
        else:
            print(f"{Path(folder).name}: plan leaves nobody without access: optimal, no gap", flush=True)
    df = pd.DataFrame(rows)
    df["gap_pct"] = df["plan_vs_bound_pct"]
    df = df.drop(columns=["plan_vs_bound_pct"])
    df["objective"] = df["objective"].round(1) + 0.0  # no "-0.0"
    header = (f"# Staffing stage 1 and its relaxations\n\n`python benchmarks/staffing_relaxations.py "
              f"{' '.join(args.instances)} --time-limit {args.time_limit:g}`, one HiGHS thread.\n\n"
              "objective/bound: people without access (weighted); gap_pct: the plan of the model as "
              "built against the bound proven by that variant (each variant is a relaxation, so each "
              "bound is valid for the model).")
    csv_path, md_path = report.write(df, args.out, header)
    print(f"written: {csv_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
