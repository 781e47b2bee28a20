"""Issue 18 item 4: does the staffing bound hook prove a tighter bound than HiGHS?

    python benchmarks/staffing_bounds.py [instances/nievre-58 ...] [--time-limit 60]
        [--variants plain,after,share0.5] [--model staffing|apl] [--budget EUR]
    python benchmarks/staffing_bounds.py [instances ...] --methods plain,relax_df,deficit,lp,...
        [--time-limit 60] [--budget EUR] [--set NAME=VALUE ...]

``--methods`` measures candidate bound methods one by one on the model as
``pipeline.build`` makes it, each on a freshly built model, one HiGHS thread, the
time limit per method (``METHODS`` says what each is; the candidates that did not
win live in ``bound_candidates.py``). Ratios are to ``plain`` (HiGHS on the model as
built, from the status-quo start, as the pipeline runs it) on the same instance in
the same run. ``--budget`` overrides the instances' budget (the shipped staffing
instances are solved to 0 people without access at their own budget), ``--set`` any
other parameter (Ille-et-Vilaine binds only with more demand, e.g.
``consultations_per_inhabitant=4.5``).

The rest of this text is about ``--variants``.

Each run is one full ``optisite.pipeline.solve`` (staffing model, one HiGHS thread, the time
limit for the whole solve, the checker on). Variants:

* ``plain``: the bound hook off; HiGHS's dual bound on the model as built (the reference);
* ``after``: the hook (``Staffing.bound``: the days-and-FTE-continuous relaxation,
  warm-started from the plan) gets what the main stages leave;
* ``shareS``: the pipeline keeps a share S of the time for the hook up front
  (``Model.bound_share``, whatever the limit), the main stages get the rest;
* ``default``: the model as shipped (``Staffing.bound_share`` from
  ``Staffing.bound_share_from_s`` seconds left).

With ``--model apl`` the variants are ``plain`` (the links as they were before the
loss floor, ``Apl.tighten_links`` False, no bound hook) and ``default`` (as shipped).

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


def run(inst, variant: str, time_limit: float, model_name: str = "staffing") -> dict:
    model = get_model(model_name)
    if model_name == "apl":  # plain: the links as they were; default: as shipped (tightened)
        if variant not in ("plain", "default"):
            raise SystemExit(f"unknown apl variant '{variant}'")
        if variant == "plain":
            model.tighten_links = False
            model.bound = lambda *a, **k: None
            model.bound_share = 0.0
    elif variant == "plain":
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
        sol = solve(inst, SolveOptions(model=model_name, time_limit=time_limit, threads=1))
    finally:
        model.__dict__.pop("tighten_links", None)
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
        "method": "HiGHS" if S["bound_method"].startswith("HiGHS")
        else S["bound_method"].split(":")[0].split(" (")[0],
        "gap_before_pct": (max(0.0, 100 * (obj - highs) / obj) if obj and highs is not None and math.isfinite(highs)
                           else math.nan),
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
    ap.add_argument("--out", default=None, help="results file stem (default staffing_bounds[_methods])")
    ap.add_argument("--model", default="staffing", choices=["staffing", "apl"], help="--variants mode only")
    ap.add_argument("--budget", type=float, default=None, help="override the instances' budget (EUR/year)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override an instance parameter (repeatable), e.g. consultations_per_inhabitant=4.5")
    ap.add_argument("--methods", default=None, help="candidate methods, comma-separated: " + ", ".join(METHODS))
    args = ap.parse_args(argv)
    if args.methods:
        return main_methods(args)
    args.out = args.out or "staffing_bounds"
    variants = args.variants.split(",")
    rows = []
    for folder in args.instances:
        inst = load_instance(folder, overrides=_overrides(args))
        found = {}
        for variant in variants:
            r = run(inst, variant, args.time_limit, args.model)
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
    extra = (f" --model {args.model}" if args.model != "staffing" else "") + (
        f" --budget {args.budget:g}" if args.budget is not None else "") + "".join(f" --set {i}" for i in args.set)
    header = (f"# {args.model.capitalize()}: the bound hook against HiGHS's own bound\n\n"
              f"`python benchmarks/staffing_bounds.py {' '.join(args.instances)} --time-limit {args.time_limit:g} "
              f"--variants {args.variants}{extra}`: one full "
              "solve per row, one HiGHS thread, the time limit for the whole solve. plan and bounds: weighted "
              "people without access; gap_before: plan vs HiGHS's bound, gap_after: plan vs the best bound "
              "reported; gap_vs_plain, plan_vs_plain: ratios to the `plain` row of the same instance (hook off). "
              "load_1min: the machine's load average when the run started (2 cores shared by several "
              "sessions: times and bounds reached are noisy).")
    _write(df, header, args.out)
    return 0


# ---------------------------------------------------------------------------------
# --methods: candidate bound methods one by one
# ---------------------------------------------------------------------------------

METHODS = {
    "plain": "HiGHS on the model as built, from the status-quo start (the reference)",
    "relax_df": "days and FTE continuous, openings binary (Staffing.bound's relaxation), from the status-quo start",
    "deficit": "the model as built plus deficit cuts on the zone sets the status quo leaves short",
    "lp": "LP relaxation (days, FTE continuous; openings in [0, 1])",
    "lp_deficit": "LP relaxation plus the deficit cuts",
    "lp_pairs": "LP relaxation plus per-pair links d_pc <= min(G_p, M_c) y_c",
    "lp_levels_all": "LP of the capacity-level reformulation (one binary per site and level), every level kept",
    "lp_levels": "LP of the capacity-level reformulation, the levels a plan within the budget cannot hold left out",
    "levels": "HiGHS on the model plus the capacity levels (budget-pruned), from the status-quo start",
    "lagrange": "Lagrangian of the capacity (and give) rows: budget knapsack over site levels by DP, "
                "Dantzig-Wolfe multipliers from the LP's prices (optisite/models/staffing_bound.py)",
    "covers": "cut rounds: extended covers of the openings' budget knapsack (minimum costs) added to the LP "
              "until none is violated, then HiGHS on the model with them for the time left",
    "openings": "openings first: master with days and FTE continuous, each pattern's integer staffing solved, "
                "no-good cuts; bound min(master, patterns' bounds)",
    "components": "independent components of the zone-source-practice graph (no solve: their count)",
    "apl_lp_plain": "apl model: LP relaxation with the links as they were (C_i in the row)",
    "apl_lp": "apl model: LP relaxation with the links as shipped (loss floor L_i, capped coefficients)",
    "apl_lagrange": "apl model: Lagrangian of the threshold and give rows, budget knapsack over site levels by DP, "
                    "Dantzig-Wolfe multipliers (optisite/models/apl_bound.py), links as shipped",
    "apl_mip_plain": "apl model: HiGHS on the MIP with the links as they were (no start)",
    "apl_mip": "apl model: HiGHS on the MIP with the links as shipped (no start)",
    "apl_lp_sites": "apl model: LP relaxation with each zone's positive terms grouped by site and capped at "
                    "R_i times the site's opening (bound_candidates.add_apl_site_caps)",
    "apl_mip_sites": "apl model: HiGHS on the MIP with the site-capped links (no start)",
    "apl_b_only": "apl model: only the zones' b_i binary, days, FTE and openings continuous (a relaxation: "
                  "its bound is valid for the model, its incumbent is not a plan)",
}


def run_apl_method(inst, method: str, time_limit: float) -> dict:
    """One apl candidate: ``_plain`` builds the links as they were, else as shipped."""
    import bound_candidates as bc
    import pyomo.environ as pyo
    from optisite import pipeline
    from optisite.models import apl
    from optisite.models.base import Objective

    load = os.getloadavg()[0]
    built = pipeline.build(inst, SolveOptions(model="apl", time_limit=None, threads=1))
    m = apl.build(built.data, tighten_links=not method.endswith("_plain"))
    if method.startswith("apl_lagrange"):
        from optisite.models.apl_bound import apl_lagrangian_bound

        t = time.perf_counter()
        r = apl_lagrangian_bound(m, built.data, time_limit=time_limit)
        solved = r.bound >= r.master - 1e-7 * max(1.0, abs(r.master))
        return {"instance": Path(str(inst.folder)).name, "budget": built.data.staffing.budget, "method": method,
                "status": "optimal" if solved else "time_limit", "objective": r.master, "bound": r.bound,
                "note": f"{r.iterations} master round(s); objective: the master's value, not a plan",
                "load_1min": load, "seconds": time.perf_counter() - t}
    note = ""
    if method.endswith("_sites"):
        note = f"{bc.add_apl_site_caps(m, built.data)} site-capped term(s)"
    if method.startswith("apl_lp") or method == "apl_b_only":
        bc.relax(m, openings=True)
    if method.startswith("apl_lp"):
        for v in m.b.values():
            v.domain = pyo.UnitInterval
    t = time.perf_counter()
    st = built.context.solver.lexicographic(m, [Objective("under threshold", m.uncovered)], canonical=False,
                                            time_limit=time_limit, gap=1e-4, watch=False)[0]
    bound = st.bound if st.bound is not None and math.isfinite(st.bound) else math.nan
    return {"instance": Path(str(inst.folder)).name, "budget": built.data.staffing.budget, "method": method,
            "status": st.status, "objective": st.objective if st.objective is not None else math.nan,
            "bound": bound, "note": note, "load_1min": load, "seconds": time.perf_counter() - t}


def run_method(inst, method: str, time_limit: float) -> dict:
    """One candidate on a freshly built staffing model; bound and incumbent as HiGHS reports them."""
    import bound_candidates as bc
    from optisite import pipeline
    from optisite.models.base import Objective
    from optisite.models.staffing import status_quo_start

    if method not in METHODS:
        raise SystemExit(f"unknown method '{method}'")
    if method.startswith("apl_"):
        return run_apl_method(inst, method, time_limit)
    t0 = time.perf_counter()
    load = os.getloadavg()[0]
    built = pipeline.build(inst, SolveOptions(model="staffing", time_limit=None, threads=1))
    m, data, ctx = built.pyomo, built.data, built.context
    row = {"instance": Path(str(inst.folder)).name, "budget": data.budget, "method": method,
           "status": "", "objective": math.nan, "bound": math.nan, "note": "", "load_1min": load}
    if method == "components":
        sizes = bc.components(m)
        row.update(status="counted", note=f"{len(sizes)} component(s), largest {sizes[0]} nodes")
        row["seconds"] = time.perf_counter() - t0
        return row
    base = built.model.baseline_flows(ctx, data)
    if method in bc.ITERATIVE:
        t = time.perf_counter()
        got = bc.ITERATIVE[method](built, time_limit,
                                   lambda model: base is not None and status_quo_start(model, data, base))
        row.update({k: (math.nan if v is None else v) for k, v in got.items()}, seconds=time.perf_counter() - t)
        return row
    cuts = bc.deficit_cuts(data, base) if "deficit" in method else []
    if cuts:
        row["note"] = f"{len(cuts)} cut(s), deficits " + ", ".join(f"{c.rhs:,.0f}" for c in cuts[:5])
    bc.apply(m, data, method, cuts)
    start = not method.startswith("lp") and base is not None and status_quo_start(m, data, base)
    t = time.perf_counter()
    st = ctx.solver.lexicographic(m, [Objective("uncovered", m.uncovered)], warm_start=bool(start),
                                  canonical=False, time_limit=time_limit, gap=1e-4, watch=False)[0]
    row.update(status=st.status, objective=st.objective if st.objective is not None else math.nan,
               bound=st.bound if st.bound is not None else math.nan, seconds=time.perf_counter() - t)
    return row


def _overrides(args) -> dict | None:
    """--budget and --set as parameter overrides (None when there are none)."""
    out = {} if args.budget is None else {"budget": args.budget}
    for item in args.set:
        name, _, value = item.partition("=")
        out[name.strip()] = float(value)
    return out or None


def main_methods(args) -> int:
    methods = args.methods.split(",")
    rows = []
    for folder in args.instances:
        inst = load_instance(folder, overrides=_overrides(args))
        found = {}
        for method in methods:
            r = run_method(inst, method, args.time_limit)
            found[method] = r
            rows.append(r)
            print(f"{r['instance']:20s} budget {r['budget']:>10,.0f} {method:11s} {r['status']:10s} "
                  f"incumbent {r['objective']:12,.1f} bound {r['bound']:12,.1f} {r['seconds']:6.1f} s  "
                  f"load {r['load_1min']:.1f}  {r['note']}", flush=True)
        plain = found.get("plain") or found.get("apl_mip_plain")
        for r in rows[-len(methods):]:
            ok = plain is not None and math.isfinite(plain["bound"]) and plain["bound"] > 0
            r["bound_vs_plain"] = r["bound"] / plain["bound"] if ok else math.nan
            inc = plain["objective"] if plain is not None else math.nan
            r["gap_vs_plain_plan_pct"] = (100 * max(0.0, inc - r["bound"]) / inc
                                          if plain is not None and inc and math.isfinite(inc)
                                          and math.isfinite(r["bound"]) else math.nan)
    df = pd.DataFrame(rows)
    for c in ("objective", "bound"):
        df[c] = df[c].round(1)
    for c in ("seconds", "load_1min", "gap_vs_plain_plan_pct"):
        df[c] = df[c].round(2)
    df["bound_vs_plain"] = df["bound_vs_plain"].round(3)
    budget = (f" --budget {args.budget:g}" if args.budget is not None else "") + "".join(
        f" --set {item}" for item in args.set)
    header = ("# Staffing: candidate bound methods one by one\n\n`python benchmarks/staffing_bounds.py "
              f"{' '.join(args.instances)} --methods {args.methods} --time-limit {args.time_limit:g}{budget}`: "
              "each method on a freshly built staffing model (weighted people without access), one HiGHS "
              f"thread, at most {args.time_limit:g} s each. objective: the method's incumbent (a relaxation's "
              "is not a plan); bound: its proven lower bound; bound_vs_plain: ratio to `plain`'s bound; "
              "gap_vs_plain_plan_pct: the gap that bound proves for `plain`'s plan. Methods:\n\n"
              + "\n".join(f"* `{k}`: {v}" for k, v in METHODS.items() if k in methods)
              + "\n\nload_1min: the machine's load average when the method started (2 cores shared by several "
              "sessions: times and bounds reached are noisy).")
    out = args.out or "staffing_bounds_methods"
    _write(df, header, out)
    return 0


def _write(df: pd.DataFrame, header: str, stem: str) -> None:
    """The table as results/<stem>.csv (full precision) and .md (empty cells for NaN)."""
    report.RESULTS.mkdir(exist_ok=True)
    csv_path, md_path = report.RESULTS / f"{stem}.csv", report.RESULTS / f"{stem}.md"
    df.to_csv(csv_path, index=False)
    md_path.write_text(header + "\n\n" + report.markdown(df.astype(object).where(df.notna(), "")) + "\n",
                       encoding="utf-8")
    print(f"written: {csv_path} and {md_path}")


if __name__ == "__main__":
    raise SystemExit(main())
