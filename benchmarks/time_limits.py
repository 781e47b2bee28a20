"""Issue 17 item 10: does ``--time-limit`` bound the whole command's wall time?

    python benchmarks/time_limits.py [--cases tiny,nievre-58,rhone-69,Kings:70,DIR]
        [--limits 1,5,20,60] [--model staffing] [--threads 1] [--hard-stop on,off] [--no-peer]
        [--out time_limits]

For each case and limit, ``optisite solve CASE --time-limit L --threads 1`` runs in a
child process (shipped and built instance folders through the real command line; a
Máximo case, which has no instance folder, through a child that does what the command
does: mark its start, load, ``pipeline.solve(started=...)``, write the folder and its
report). Columns:

* ``wall_s``: the child process, Python start, imports and writing included;
  ``wall_per_limit`` = wall_s / L; ``within`` = wall_s <= L + max(5 s, 10 % of L), the
  tolerance stated in ``models/solving.md``;
* ``to_model_s``: from the command's start to the built model (imports, reading, pairs,
  build: steps that cannot be stopped midway), ``timings.build`` in solution.json;
  ``search_end_s`` and ``solve_end_s``: from the command's start to the end of the
  search (stages, polish, bound) and of ``solve()`` (tables, APL, checker: ``check_s``);
  what follows is writing the folder and its report;
* ``hard_stop``: ``on``, HiGHS stages run in a child process killed at their limit
  (``optisite/hard_stop.py``); ``off``, HiGHS in the process itself (``OPTISITE_HARD_STOP=0``,
  the behaviour before it): both in the same run, one after the other, so the pair
  shares the machine's load; ``killed``: stages the hard stop ended, and what each kept;
* ``status``, ``stopped_by`` (effort budget / wall clock / hard stop), ``reproducible``, ``objective``,
  ``uncovered_before`` and ``uncovered_after`` (inhabitants without access with the existing
  supply alone and with the plan: a plan is never worse); ``nodes`` and ``node_budget`` of
  stage 1 (HiGHS's branch and bound against its effort budget); ``cuts``: what the wall
  clock cut; ``floor_warning``: the run said its limit is below its fixed minimum;
* peer, plain HiGHS on the same model (``pipeline.build``, the first objective, APPSI,
  HiGHS's own ``time_limit`` = L, one thread), timed from ``solve`` call to return:
  ``peer_s``, ``peer_per_limit``; the build before it is not counted for the peer, so
  the peer only shows how far HiGHS's own limit holds.

Times are wall-clock on a shared 2-core machine: the load average is recorded beside
every row. Writes ``benchmarks/results/<out>.csv`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))


def load(case: str):
    """An Instance for a case name: a folder (shipped or built) or a Máximo ``Name:p``."""
    if ":" in case:
        import instances as I

        return I.case(case).to_instance()
    from optisite import load_instance

    path = Path(case) if Path(case).is_dir() else ROOT / "instances" / case
    return load_instance(path)


def model_for(case: str, model: str) -> str:
    return "coverage" if ":" in case else model  # the Máximo cases are maximal covering


def child(case: str, limit: float, out: str, model: str, threads: int) -> None:
    """What ``optisite solve`` does, for a case that has no instance folder."""
    from optisite.deadline import mark_command_start

    mark_command_start()
    from optisite.deadline import COMMAND_START
    from optisite.pipeline import SolveOptions, solve

    inst = load(case)
    sol = solve(inst, SolveOptions(model=model, time_limit=limit, threads=threads), started=COMMAND_START)
    sol.write(Path(out), force=True)


def peer(case: str, limit: float, model: str, threads: int) -> None:
    """Plain HiGHS on the same model, its own time limit only; prints seconds as JSON."""
    import pyomo.environ as pyo
    from pyomo.contrib.appsi.solvers.highs import Highs

    from optisite.pipeline import SolveOptions, build

    b = build(load(case), SolveOptions(model=model, threads=threads))
    m = b.pyomo
    m._peer_obj = pyo.Objective(expr=b.model.objectives(m)[0].expr)
    opt = Highs()
    opt.config.load_solution = False
    opt.config.time_limit = limit
    opt.highs_options = {"threads": threads, **b.model.highs_options(m)[0]}
    t = time.perf_counter()
    res = opt.solve(m)
    print(json.dumps({"peer_s": time.perf_counter() - t, "peer_status": str(res.termination_condition).split(".")[-1],
                      "peer_objective": res.best_feasible_objective}))


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def run_case(case: str, limit: float, model: str, threads: int, with_peer: bool, work: Path,
             hard_stop: str = "on") -> dict:
    out = work / f"{Path(case).name.replace(':', '-')}-{limit:g}-{hard_stop}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPTISITE_HARD_STOP": "1" if hard_stop == "on" else "0"}
    m = model_for(case, model)
    if ":" in case:
        cmd = [sys.executable, __file__, "--child", case, str(limit), str(out), m, str(threads)]
    else:
        path = Path(case) if Path(case).is_dir() else ROOT / "instances" / case
        cmd = [sys.executable, "-m", "optisite", "solve", str(path), "--model", m, "--time-limit", f"{limit:g}",
               "--threads", str(threads), "--out", str(out), "--force", "--quiet"]
    row = {"case": case, "model": m, "limit_s": limit, "hard_stop": hard_stop, "load": loadavg()}
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    row["wall_s"] = round(time.perf_counter() - t, 2)
    row["wall_per_limit"] = round(row["wall_s"] / limit, 2)
    row["within"] = row["wall_s"] <= limit + max(5.0, 0.1 * limit)
    if proc.returncode != 0:
        row["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1][:200]
    else:
        S = json.loads((out / "solution.json").read_text())
        sv = S["solver"]
        row.update(zones=len(__import__("pandas").read_csv(out / "zones.csv")), to_model_s=round(S["timings"]["build"], 2),
                   status=S["status"], stopped_by="+".join(sv.get("stopped_by") or []) or "-",
                   reproducible=sv.get("reproducible"), objective=S["objective"],
                   uncovered_before=S["population_uncovered_before"], uncovered_after=S["population_uncovered"])
        T = S["timings"]  # seconds from the command's start: the search's end, solve()'s end
        row["search_end_s"] = round(T["build"] + T.get("search", T.get("solve", 0.0)), 2)
        row["solve_end_s"], row["check_s"] = round(T["total"], 2), round(T.get("check", 0.0), 2)
        first = sv["stages"][0]
        row["nodes"], row["node_budget"] = first["extra"].get("nodes"), first["extra"].get("node_budget")
        row["cuts"] = "; ".join(sv.get("wall_clock_cuts") or [])
        killed = [s for s in sv["stages"] + sv["start_stages"] if s["extra"].get("stopped_by") == "hard stop"]
        row["killed"] = "; ".join(f"{s['name']} ({s['seconds']:.1f} s, kept {s['extra'].get('kept') or 'nothing'})"
                                  for s in killed) or "-"
        row["floor_warning"] = any("fixed minimum" in w for w in S["warnings"])
        row["slowest_stage"] = max(((s["seconds"], s["name"]) for s in sv["stages"]), default=(0.0, "-"))
        row["slowest_stage"] = f"{row['slowest_stage'][1]} {row['slowest_stage'][0]:.1f} s"
    if with_peer:
        p = subprocess.run([sys.executable, __file__, "--peer", case, str(limit), m, str(threads)], env=env,
                           capture_output=True, text=True)
        try:
            got = json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])
            row["peer_s"] = round(got["peer_s"], 2)
            row["peer_per_limit"] = round(got["peer_s"] / limit, 2)
            row["peer_status"] = got["peer_status"]
        except (IndexError, ValueError):
            row["peer_s"] = None
    return row


COMPACT = ["case", "limit_s", "hard_stop", "load", "load_after", "wall_s", "wall_per_limit", "within", "to_model_s",
           "search_end_s", "status", "stopped_by", "killed", "slowest_stage", "objective", "uncovered_after",
           "floor_warning", "peer_s", "error"]  # the Markdown table's columns


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="tiny,nievre-58,rhone-69,Kings:70")
    ap.add_argument("--limits", default="1,5,20,60")
    ap.add_argument("--model", default="staffing")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hard-stop", default="on,off", help="on, off or both (on,off): HiGHS in a killable child")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--out", default="time_limits")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--peer", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        case, limit, out, model, threads = a.child
        child(case, float(limit), out, model, int(threads))
        return 0
    if a.peer:
        case, limit, model, threads = a.peer
        peer(case, float(limit), model, int(threads))
        return 0
    import pandas as pd
    from report import markdown

    rows = []
    with tempfile.TemporaryDirectory(prefix="optisite-time-limits-") as work:
        for case in [c for c in a.cases.split(",") if c]:
            for limit in [float(x) for x in a.limits.split(",") if x]:
                for k, hs in enumerate(x for x in a.hard_stop.split(",") if x):
                    row = run_case(case, limit, a.model, a.threads, not a.no_peer and k == 0, Path(work), hs)
                    row["load_after"] = loadavg()
                    print(row, flush=True)
                    rows.append(row)
                df = pd.DataFrame(rows)
                RESULTS.mkdir(exist_ok=True)
                df.to_csv(RESULTS / f"{a.out}.csv", index=False)
                (RESULTS / f"{a.out}.md").write_text(
                    f"# --time-limit against the command's wall time\n\n`python benchmarks/time_limits.py "
                    f"{' '.join(argv if argv is not None else sys.argv[1:])}`, {a.threads} thread(s), shared 2-core "
                    f"machine (load average per row). Tolerance: limit + max(5 s, 10 %).\n\n"
                    + markdown(df[[c for c in COMPACT if c in df]].astype(object).fillna("")) + "\n\nEvery column: "
                    f"`benchmarks/results/{a.out}.csv`.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
