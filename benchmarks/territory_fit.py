"""How well built instances reproduce the official DREES APL 2023 (issue 16).

For each département: build it (or load a given instance folder), compute optisite's
APL before any plan (``optisite.apl.apl_before``: the loader's travel times, the DREES
decay and standardised population) and compare it with the zones' ``apl_official`` on
the communes of the planning territory (neighbours across the border excluded):

* ``agreement``: share of the population whose sous-dense classification (APL < 2.5)
  matches the official one (target >= 95 %);
* ``median_abs_error``: median over communes of |computed - official| (target <= 0.10);
* ``zeros_above_1``: communes at APL 0 where the official value is above 1 (target 0).

Source: DREES, APL aux médecins généralistes 2023 (Licence Ouverte / Open Licence 2.0).

    python benchmarks/territory_fit.py                      # shipped three + ten fresh builds
    python benchmarks/territory_fit.py 58 instances/rhone-69 --supply illustrative

Writes ``benchmarks/results/territory_fit.{csv,md}`` (with ``--write``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from optisite.apl import apl_before
from optisite.build import BuildOptions, build_instance
from optisite.instance import load_instance
from optisite.official import ATTRIBUTION, apl_official

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ["instances/nievre-58", "instances/ille-et-vilaine-35", "instances/rhone-69"]
FRESH = ["01", "14", "22", "23", "33", "38", "59", "63", "67", "2A"]
THRESHOLD = 2.5


def fit(instance) -> dict:
    """Agreement figures of ``instance``'s computed APL against the official one (planning zones)."""
    z = instance.zones
    planning = (z["planning"] == 1) if "planning" in z else pd.Series(True, index=z.index)
    computed = apl_before(instance)
    official = apl_official(instance)
    m = planning & official.notna()
    c, o, pop = computed[m], official[m], z.loc[m, "population"].astype(float)
    agree = (c < THRESHOLD) == (o < THRESHOLD)
    return {
        "communes": int(planning.sum()),
        "neighbours": int((~planning).sum()),
        "with_official": int(m.sum()),
        "population": float(z.loc[planning, "population"].sum()),
        "agreement": float((pop * agree).sum() / pop.sum()),
        "median_abs_error": float(np.median(np.abs(c - o))),
        "p90_abs_error": float(np.quantile(np.abs(c - o), 0.9)),
        "zeros_above_1": int(((c <= 1e-9) & (o > 1)).sum()),
        "pop_under_2_5_computed": float(pop[c < THRESHOLD].sum()),
        "pop_under_2_5_official": float(pop[o < THRESHOLD].sum()),
        "supply_source": instance.supply_source,
        "practices": int(len(instance.practices)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", help="département codes (built fresh) or instance folders")
    ap.add_argument("--supply", choices=["calibrated", "illustrative"], default="calibrated")
    ap.add_argument("--write", action="store_true", help="write benchmarks/results/territory_fit.*")
    args = ap.parse_args()
    targets = args.targets or SHIPPED + FRESH
    rows = []
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for t in targets:
            t0 = time.perf_counter()
            folder = REPO / t if (REPO / t).is_dir() else Path(t)
            if folder.is_dir():
                label = folder.name
            else:
                label = t
                folder = build_instance(t, Path(tmp) / t, options=BuildOptions(supply=args.supply))
            row = {"instance": label, **fit(load_instance(folder)),
                   "seconds": round(time.perf_counter() - t0, 1)}
            rows.append(row)
            loads.append(os.getloadavg()[0])
            print(f"{label:<22} agreement {row['agreement']:6.1%}  median |err| {row['median_abs_error']:.3f}  "
                  f"p90 {row['p90_abs_error']:.3f}  zeros>1 {row['zeros_above_1']}  "
                  f"({row['communes']} communes + {row['neighbours']} neighbours, {row['practices']} practices, "
                  f"{row['seconds']} s)", flush=True)
    frame = pd.DataFrame(rows)
    ok = (frame["agreement"] >= 0.95) & (frame["median_abs_error"] <= 0.10) & (frame["zeros_above_1"] == 0)
    print(f"targets met (>= 95 %, <= 0.10, no zero above 1): {int(ok.sum())} of {len(frame)}")
    print(ATTRIBUTION)
    if args.write:
        out = REPO / "benchmarks" / "results"
        frame.to_csv(out / "territory_fit.csv", index=False, float_format="%.4f", lineterminator="\n")
        lines = ["# Computed APL before any plan against the official DREES APL 2023", "",
                 f"`python benchmarks/territory_fit.py --write` (supply: {args.supply}). Planning territory "
                 "only (neighbours excluded). " + ATTRIBUTION + ".", "",
                 "| instance | communes | neighbours | agreement (pop., APL < 2.5) | median abs error | p90 abs error "
                 "| zeros where official > 1 | practices | s |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['instance']} | {r['communes']} | {r['neighbours']} | {r['agreement']:.1%} | "
                         f"{r['median_abs_error']:.3f} | {r['p90_abs_error']:.3f} | {r['zeros_above_1']} | "
                         f"{r['practices']} | {r['seconds']} |")
        lines += ["", f"Targets met (>= 95 %, <= 0.10, no zero above 1): {int(ok.sum())} of {len(frame)}.", "",
                  f"s: seconds to build (or load, for a folder) and compare, on a shared machine: 1-minute "
                  f"load average {min(loads):.1f} to {max(loads):.1f} during the run.", ""]
        (out / "territory_fit.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
