"""The budget frontier: how many inhabitants each budget gives access to.

``solve_budget(instance_or_folder, budget, options)`` is one honest solve (to the
requested gap) at one budget, checked by the independent checker, returned as a
plain dict: a pure function of its arguments, so a batch runner (Dask) can map it
over budgets. ``run_frontier`` maps it serially, or on Dask through :mod:`optisite.batch`
(one :func:`budget_task` per budget) when given workers or a scheduler; ``analyse`` adds
what each step buys (inhabitants per EUR 100,000), marks the knee and checks monotonicity:
more budget must never cover fewer people, and a point that does is reported loudly
(it would be a solver tolerance at best, a bug at worst), never hidden by
keeping the previous plan. ``write_frontier`` writes frontier.csv, frontier.png
and frontier.html atomically.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from .batch import BatchError, Task, run_batch
from .errors import InputError
from .instance import Instance, load_instance
from .solver import SolveOptions

PER = 100_000.0  # "inhabitants per EUR 100,000"
KNEE_MIN = 0.02  # least height of the knee above the chord, as a share of the normalised curve
FRONTIER_FILES = ("frontier.csv", "frontier.png", "frontier.html")
COLUMNS = ["budget", "status", "objective", "bound", "gap", "population_total", "population_covered",
           "population_uncovered", "population_covered_before", "cost_total", "sites_opened",
           "open_sites", "check_ok", "violations", "seconds", "note"]


def parse_budgets(spec: str) -> list[float]:
    """'0,50000,1e5' or 'START:STOP:N' (N evenly spaced budgets, both ends included)."""
    text = spec.strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, n = float(parts[0]), float(parts[1]), int(parts[2])
            if n < 2 or stop <= start:
                raise InputError(f"--budgets '{spec}': START:STOP:N needs STOP > START and N >= 2",
                                 column="--budgets", fix="write for example 0:200000:9")
            values = list(np.linspace(start, stop, n))
        else:
            values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--budgets '{spec}' is neither a comma-separated list nor START:STOP:N",
                         column="--budgets", fix="write for example 0,50000,100000 or 0:200000:9") from None
    if not values:
        raise InputError("--budgets is empty", column="--budgets", fix="give at least one budget")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise InputError(f"--budgets '{spec}': budgets must be finite and >= 0 (EUR/year)", column="--budgets")
    return sorted(set(float(round(v, 6)) for v in values))


def solve_budget(instance: Instance | str | Path, budget: float, options: SolveOptions,
                 overrides: dict | None = None) -> dict[str, Any]:
    """Solve at ``budget`` (EUR/year) and return the frontier row; the checker runs on the plan.

    ``instance`` may be a loaded Instance or an instance folder (loaded here, so a
    worker process needs only the path). For the coverage model, a budget below
    the cheapest site can open nothing: the point is solved at budget 0, which is
    the same problem, and the row's ``note`` says so.
    """
    from .pipeline import solve

    inst = load_instance(instance) if isinstance(instance, (str, Path)) else instance
    if overrides:
        inst = inst.with_parameters(overrides, file="frontier")
    note = ""
    t0 = time.perf_counter()
    run = inst.with_parameters({"budget": float(budget)}, file="--budgets")
    try:
        sol = solve(run, options, command=f"optisite frontier (budget {budget:g})")
    except InputError as exc:
        if exc.column != "budget" or budget == 0:
            raise
        note = "below the cheapest site: nothing can be opened, solved as budget 0"
        sol = solve(inst.with_parameters({"budget": 0.0}, file="--budgets"), options,
                    command=f"optisite frontier (budget {budget:g})")
    S = sol.summary
    check = S.get("check", {})
    return {
        "budget": float(budget),
        "status": S["status"],
        "objective": S["objective"],
        "bound": S["bound"],
        "gap": S["gap"],
        "population_total": S["population_total"],
        "population_covered": S["population_covered"],
        "population_uncovered": S["population_uncovered"],
        "population_covered_before": S["population_covered_before"],
        "cost_total": S["cost_total"],
        "sites_opened": len(S["open_sites"]),
        "open_sites": " ".join(S["open_sites"]),
        "check_ok": bool(check.get("ok", False)),
        "violations": "; ".join(check.get("violations", [])),
        "seconds": time.perf_counter() - t0,
        "note": note,
    }


def run_frontier(instance: Instance | str | Path, budgets: Iterable[float], options: SolveOptions,
                 *, on_point: Callable[[dict], None] | None = None, workers: int | None = None,
                 scheduler: Any = None) -> pd.DataFrame:
    """Solve every budget and return the analysed frontier table.

    Serially in this process by default (the first failure raises). With ``workers``
    (a LocalCluster of that many processes) or ``scheduler`` (a Dask address or
    ``distributed.Client``) the budgets are solved on Dask, one HiGHS thread each
    (see :mod:`optisite.batch`): the rows are the same as serially, and a budget
    whose solve fails becomes a row with status ``failed`` and the message in
    ``note`` (if every budget fails, :class:`~optisite.batch.BatchError` is raised).
    ``on_point`` gets each row as it completes.
    """
    inst = load_instance(instance) if isinstance(instance, (str, Path)) else instance
    rows = []
    if workers is None and scheduler is None:
        for b in sorted(budgets):
            row = solve_budget(inst, b, options)
            rows.append(row)
            if on_point is not None:
                on_point(row)
        return analyse(pd.DataFrame(rows, columns=COLUMNS))
    values = sorted(budgets)

    def done(res) -> None:
        row = res.value if res.ok else failed_row(values[res.index], res.error)
        rows.append(row)
        if on_point is not None:
            on_point(row)

    results = run_batch([budget_task(inst, b, options) for b in values], scheduler=scheduler,
                        workers=workers, on_result=done)
    if results and not any(r.ok for r in results):
        raise BatchError.of(results)
    return analyse(pd.DataFrame(rows, columns=COLUMNS))


def budget_task(instance: Instance | str | Path, budget: float, options: SolveOptions,
                overrides: dict | None = None, label: str = "") -> Task:
    """The batch task of :func:`solve_budget` at ``budget``, with one HiGHS thread (a batch is
    parallel across tasks, not inside HiGHS); a folder path travels as text."""
    if isinstance(instance, Path):
        instance = str(instance)
    return Task(solve_budget, (instance, float(budget), replace(options, threads=1), overrides),
                label=label or f"budget {budget:,.0f}")


def failed_row(budget: float, message: str) -> dict[str, Any]:
    """The frontier row of a budget whose solve failed: no numbers, the one-line error in ``note``."""
    row: dict[str, Any] = {c: np.nan for c in COLUMNS}
    row.update(budget=float(budget), status="failed", sites_opened=0, open_sites="", check_ok=False,
               violations="", note=message)
    return row


def failures(df: pd.DataFrame) -> list[str]:
    """``"budget B: <error>"`` for every failed point."""
    return [f"budget {r['budget']:,.0f}: {r['note']}" for _, r in df.iterrows() if r["status"] == "failed"]


def problems(df: pd.DataFrame) -> list[str]:
    """Everything that makes a frontier unfit for use: non-monotone points, checker failures,
    failed solves."""
    out = monotonicity(df)
    for _, r in df.iterrows():
        if r["status"] == "failed":
            out.append(f"budget {r['budget']:,.0f}: solve failed: {r['note']}")
        elif not r["check_ok"]:
            out.append(f"budget {r['budget']:,.0f}: checker: {r['violations']}")
    return out


def knee_index(budget: np.ndarray, covered: np.ndarray) -> int | None:
    """Kneedle: the point farthest above the chord from the first to the last point (normalised)."""
    if len(budget) < 3:
        return None
    bx = (budget - budget[0]) / max(budget[-1] - budget[0], 1e-12)
    span = covered[-1] - covered[0]
    if span <= 0:
        return None
    cy = (covered - covered[0]) / span
    d = cy - bx
    i = int(np.argmax(d))
    # a nearly straight curve has no knee: ask for 2 % of the normalised range above the chord
    return i if d[i] >= KNEE_MIN and 0 < i < len(budget) - 1 else None


def monotonicity(df: pd.DataFrame) -> list[str]:
    """Messages for every point covering fewer people than a cheaper point (should be none)."""
    out = []
    best_cov, best_b, best_obj = -np.inf, None, None
    tol = 1e-6 * max(float(df["population_total"].max()) if len(df) else 1.0, 1.0) + 1e-6
    for _, r in df.iterrows():
        cov = float(r["population_covered"])
        if cov < best_cov - tol:
            proven = r["bound"] is not None and not pd.isna(r["bound"]) and best_obj is not None \
                and float(r["bound"]) > best_obj + tol
            why = ("its proven bound excludes the cheaper plan, which is feasible here too: a BUG"
                   if proven else "within the solver's gap at this point (tolerance), yet a cheaper "
                   "plan is feasible here: tighten --gap or give more --time-limit")
            out.append(f"budget {r['budget']:,.0f} covers {cov:,.1f} inhabitants, fewer than "
                       f"{best_cov:,.1f} at budget {best_b:,.0f}: {why}")
        if cov > best_cov:
            best_cov, best_b = cov, float(r["budget"])
            best_obj = None if r["objective"] is None or pd.isna(r["objective"]) else float(r["objective"])
    return out


def analyse(df: pd.DataFrame) -> pd.DataFrame:
    """Add the marginal value of each step and the knee mark (failed points are skipped)."""
    df = df.sort_values("budget").reset_index(drop=True)
    ok = df["population_covered"].notna()
    solved = df[ok]
    db = solved["budget"].diff()
    dc = solved["population_covered"].diff()
    df["extra_budget"] = db
    df["extra_covered"] = dc
    df["inhabitants_per_100k_eur"] = pd.Series(np.where(db > 0, dc / db * PER, np.nan), index=solved.index)
    k = knee_index(solved["budget"].to_numpy(float), solved["population_covered"].to_numpy(float))
    df["knee"] = False
    if k is not None:
        df.loc[solved.index[k], "knee"] = True
    return df


# ---------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------

def frontier_png(df: pd.DataFrame, title: str, *, dpi: int = 110) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(9, 5.2), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    b = df["budget"].to_numpy(float) / 1000.0
    c = df["population_covered"].to_numpy(float)
    total = float(df["population_total"].max())
    # steps: between two solved budgets only the cheaper plan is known to be affordable
    ax.plot(b, c, "o", color="#1f4e9c", markersize=5, drawstyle="steps-post", linestyle="-",
            label="inhabitants with access (solved budgets)")
    ax.axhline(total, color="#777777", linestyle=":", linewidth=1, label=f"population {total:,.0f}")
    known = df["population_covered_before"].dropna()  # failed points have no numbers
    if len(known):
        before = float(known.iloc[0])
        ax.axhline(before, color="#b3261e", linestyle="--", linewidth=1, label=f"existing supply only {before:,.0f}")
    bad = ~df["check_ok"].to_numpy(bool)
    if bad.any():
        ax.plot(b[bad], c[bad], "x", color="#b3261e", markersize=12, label="checker FAILED")
    notopt = (df["status"] != "optimal").to_numpy()
    if notopt.any():
        ax.plot(b[notopt], c[notopt], "o", mfc="none", mec="#d08c00", markersize=10, label="not proven optimal")
    if df["knee"].any():
        k = int(np.flatnonzero(df["knee"].to_numpy())[0])
        ax.plot([b[k]], [c[k]], "o", color="#1b7a3d", markersize=12, mfc="none", mew=2.5)
        ax.annotate(f"knee: EUR {df['budget'].iloc[k]:,.0f}\n{c[k]:,.0f} inhabitants", (b[k], c[k]),
                    xytext=(18, -34), textcoords="offset points", fontsize=9, color="#1b7a3d",
                    arrowprops={"arrowstyle": "-", "color": "#1b7a3d"})
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}"))
    ax.set_xlabel("annual budget (thousand EUR/year)")
    ax.set_ylabel("inhabitants with access")
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="center right", fontsize=8.5, frameon=True, framealpha=0.9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def frontier_html(df: pd.DataFrame, *, instance: Instance, options: SolveOptions, png: bytes,
                  problems: list[str], command: str = "") -> str:
    from .report import TEMPLATES, environment, png_data_uri
    from .pipeline import versions

    env = environment()
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    rows = df.to_dict("records")
    return env.get_template("frontier.html").render(
        css=css, rows=rows, instance=instance, name=instance.name, options=options.to_dict(),
        png_uri=png_data_uri(png), problems=problems, command=command, versions=versions(),
        fingerprint=instance.fingerprint, illustrative=instance.supply_source == "illustrative",
        knee=next((r for r in rows if r["knee"]), None), total=float(df["population_total"].max()),
        coverage_minutes=instance.parameters.coverage_minutes)


def write_frontier(df: pd.DataFrame, out: str | Path, *, instance: Instance, options: SolveOptions,
                   force: bool = False, command: str = "") -> Path:
    """Write frontier.csv, frontier.png and frontier.html into ``out`` (optisite.outfolder)."""
    from .outfolder import write_files

    found = problems(df)
    png = frontier_png(df, f"{instance.name}: budget frontier ({options.model} model)")
    html = frontier_html(df, instance=instance, options=options, png=png, problems=found, command=command)
    files = {"frontier.csv": df.to_csv(index=False, lineterminator="\n", float_format="%.10g"),
             "frontier.png": png, "frontier.html": html}
    reads = [instance.folder] if instance.folder is not None else []
    return write_files(Path(out), files, kind="frontier", force=force, reads=reads)


__all__ = ["parse_budgets", "solve_budget", "budget_task", "run_frontier", "analyse", "monotonicity", "knee_index",
           "problems", "failures", "failed_row", "write_frontier", "frontier_png"]
