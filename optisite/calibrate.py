"""A GP supply CALIBRATED TO THE DREES APL 2023: what reproduces the official indicator.

No public file of GP locations is available offline, but the DREES publishes the APL
of every commune (``optisite/data``, ``models/drees-apl.md``). The APL is linear in the
supply: APL_i = sum_j w(t_ij) S_j / D_j (:mod:`optisite.apl`). Given the instance's
travel times, the non-negative supplies S_j (consultations a year, per commune) that
best reproduce the official APL are a non-negative least-squares problem.

Straight-line travel times are the main error (a commune the road network isolates is
not isolated as the crow flies), so travel times are calibrated too: each commune gets
``access_minutes`` added at its end of every trip to another commune (time to reach
the main roads), fitted by a damped fixed-point iteration: where the computed APL is
above the official one the commune's access time grows, where it is below it shrinks
(never below 0, never above ``MAX_ACCESS``), and the supplies are refitted.

The result is NOT observed data: it is the supply and the access times that make
optisite's APL match the official one. Every manifest and report says "calibrated to
the DREES APL 2023". See ``models/instances.md`` for the fit achieved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .decay import decay_steps, decay_weight
from .parameters import Parameters
from .travel import TravelTimes

MAX_ACCESS = 20.0  # minutes: at most the decay's cutoff (beyond it a commune reaches nobody)
STEP = 4.0  # minutes of access per unit of relative APL error (damped fixed point)
ITERATIONS = 30
PRUNE_ROUNDS = (15, 20)  # after these rounds, supply points below MIN_FTE are removed (see _keep)
MIN_FTE = 0.25  # a calibrated practice offers at least a quarter of a full-time GP
NEIGHBOUR_ROW_WEIGHT = 0.2  # neighbours' official APL also depends on supply beyond them
DENSE_LIMIT = 4000  # zones: dense NNLS below, sparse bounded least squares above
KEEP_ABOVE = 0.0  # a commune the DREES gives more APL than this keeps its main supply point


@dataclass(frozen=True)
class Calibration:
    """Calibrated supply (consultations/year per zone), access minutes and the fit achieved."""

    supply: pd.Series  # consultations/year per zone id (0 where no practice)
    access_minutes: pd.Series  # per zone id
    fitted_apl: pd.Series  # APL of each zone under the calibrated supply and travel times
    history: list[dict]  # fit statistics per iteration (planning zones with an official value)


def _fit_stats(fit: np.ndarray, official: np.ndarray, population: np.ndarray, mask: np.ndarray,
               threshold: float) -> dict:
    m = mask & ~np.isnan(official)
    if not m.any():
        return {"agreement": float("nan"), "median_abs_error": float("nan"), "zeros_above_1": 0}
    agree = (fit[m] < threshold) == (official[m] < threshold)
    pop = population[m]
    share = float((pop * agree).sum() / pop.sum()) if pop.sum() > 0 else float(agree.mean())
    return {"agreement": share, "median_abs_error": float(np.median(np.abs(fit[m] - official[m]))),
            "zeros_above_1": int(((fit[m] <= 1e-9) & (official[m] > 1)).sum())}


def _keep(A: sp.csr_matrix, supply: np.ndarray, min_supply: float, official: np.ndarray) -> np.ndarray:
    """Supply points to keep: those of at least ``min_supply``, and, for every commune with
    an official APL above ``KEEP_ABOVE``, the point that gives it the most APL (a mountain
    village served by a small practice is not turned into a desert, nor left to a far one)."""
    keep = supply >= min_supply
    contrib = (A @ sp.diags(supply)).tocsr()
    need = np.flatnonzero(np.nan_to_num(official) > KEEP_ABOVE)
    for i in need:
        lo, hi = contrib.indptr[i], contrib.indptr[i + 1]
        if hi > lo and contrib.data[lo:hi].max() > 0:
            keep[contrib.indices[lo + int(np.argmax(contrib.data[lo:hi]))]] = True
    return keep


def calibrate_supply(zones: pd.DataFrame, parameters: Parameters | None = None, *,
                     planning: np.ndarray | None = None, iterations: int = ITERATIONS) -> Calibration:
    """Fit supply and access minutes so that the APL of ``zones`` matches ``apl_official``.

    ``zones`` needs ``zone_id, lon, lat, population, apl_official`` and may carry
    ``population_standardised`` (the APL demand, as in :func:`optisite.apl.demand_population`).
    ``planning`` marks the zones whose fit counts fully (the others, neighbours across
    the border, count with ``NEIGHBOUR_ROW_WEIGHT``). Deterministic.
    """
    from scipy.optimize import lsq_linear, nnls

    p = parameters or Parameters()
    ids = pd.Index(zones["zone_id"].astype(str).to_numpy(), dtype=object)
    n = len(ids)
    planning = np.ones(n, dtype=bool) if planning is None else np.asarray(planning, dtype=bool)
    population = zones["population"].to_numpy(float)
    demand = population.copy()
    if "population_standardised" in zones:
        std = pd.to_numeric(zones["population_standardised"], errors="coerce").to_numpy(float)
        demand = np.where(np.isnan(std), population, std)
    official = pd.to_numeric(zones["apl_official"], errors="coerce").to_numpy(float)
    known = ~np.isnan(official)
    row_weight = np.where(planning, 1.0, NEIGHBOUR_ROW_WEIGHT) * known
    target = row_weight * np.nan_to_num(official)

    cutoff = max(upper for upper, _ in decay_steps(p.apl_decay))
    tt = TravelTimes.from_coordinates(ids, zones["lon"].to_numpy(), zones["lat"].to_numpy(),
                                      detour_factor=p.detour_factor, speed_kmh=p.speed_kmh,
                                      max_pairs=p.max_pairs)
    pairs = tt.pairs(ids, ids, cutoff)  # access minutes only lengthen trips: this set suffices
    pairs = pairs[pairs["from_id"] != pairs["to_id"]]
    fi = ids.get_indexer(pairs["from_id"])
    ti = ids.get_indexer(pairs["to_id"])
    base = pairs["minutes"].to_numpy(float)
    diag = np.arange(n)

    def structure(access):
        w = decay_weight(base + access[fi] + access[ti], p.apl_decay)
        keep = w > 0
        W = sp.csr_matrix((np.r_[w[keep], np.ones(n)], (np.r_[fi[keep], diag], np.r_[ti[keep], diag])),
                          shape=(n, n))
        D = np.asarray(W.T @ demand).ravel()
        inv = np.zeros(n)
        np.divide(1.0, D, out=inv, where=D > 0)
        return (W @ sp.diags(inv)).tocsr()

    columns = np.ones(n, dtype=bool)

    def fit_supply(A):
        Aw = (sp.diags(row_weight) @ A).tocsc()[:, columns]
        if n <= DENSE_LIMIT:
            s, _ = nnls(Aw.toarray(), target, maxiter=50 * n)
        else:
            s = lsq_linear(Aw, target, bounds=(0.0, np.inf), lsmr_tol="auto", max_iter=500).x
        out = np.zeros(n)
        out[columns] = s
        return out

    min_supply = MIN_FTE * p.days_per_fte * p.consultations_per_day_liberal * p.working_weeks

    def finish(access, supply):
        """Drop the points NNLS left below MIN_FTE (unless a commune's main source, see
        _keep); a commune then left at APL 0 while the DREES gives it some takes the largest
        access minutes under which it reaches a supply point again (the decay's last step,
        the least APL it can get), 0 if none."""
        A = structure(access)
        supply = np.where(_keep(A, supply, min_supply, official), supply, 0.0)
        fitted = A @ supply
        cut_off = known & (fitted <= 1e-9) & (np.nan_to_num(official) > 0)
        if cut_off.any():
            access = access.copy()
            access[cut_off] = _reaching_access(cut_off, fi, ti, base, access, supply, cutoff)
            fitted = structure(access) @ supply
        return access, supply, fitted

    access = np.zeros(n)
    history = []
    best = None  # (score, access, supply, fitted) of the best finished round on pruned columns
    last_prune = max(PRUNE_ROUNDS)
    for k in range(iterations + 1):
        A = structure(access)
        supply = fit_supply(A)
        fitted = A @ supply
        history.append({"iteration": k, **_fit_stats(fitted, official, population, planning,
                                                     p.apl_threshold),
                        "supply_points": int((supply > 0).sum()),
                        "mean_access_minutes": float(access.mean())})
        if k > last_prune or k == iterations:
            # The fixed point oscillates: keep the best finished round (agreement and median
            # error over the planning communes) once the supply points are settled.
            done = finish(access, supply)
            stats = _fit_stats(done[2], official, population, planning, p.apl_threshold)
            score = (1.0 - stats["agreement"]) + stats["median_abs_error"] + stats["zeros_above_1"]
            if not np.isfinite(score):
                score = 0.0
            if best is None or score < best[0]:
                best = (score, *done)
        if k == iterations:
            break
        if k in PRUNE_ROUNDS:
            columns &= _keep(A, supply, min_supply, official)
        error = np.where(known, (fitted - np.nan_to_num(official)) / (np.nan_to_num(official) + 1.0), 0.0)
        access = access + STEP * error
        access = np.round(np.clip(access, 0.0, MAX_ACCESS), 2)
    _, access, supply, fitted = best
    history.append({"iteration": "final", **_fit_stats(fitted, official, population, planning,
                                                       p.apl_threshold),
                    "supply_points": int((supply > 0).sum()), "mean_access_minutes": float(access.mean())})
    return Calibration(supply=pd.Series(supply, index=ids, name="supply"),
                       access_minutes=pd.Series(access, index=ids, name="access_minutes"),
                       fitted_apl=pd.Series(fitted, index=ids, name="apl"), history=history)


def _reaching_access(rows: np.ndarray, fi: np.ndarray, ti: np.ndarray, base: np.ndarray,
                     access: np.ndarray, supply: np.ndarray, cutoff: float) -> np.ndarray:
    """For the zones ``rows`` (mask), the largest access minutes (at most their current ones,
    rounded down to 0.01) under which some trip to a supplied zone stays under ``cutoff``."""
    slack = cutoff - base - access[ti] - 0.01
    use = rows[fi] & (supply[ti] > 0) & (slack >= 0)
    best = np.full(len(access), -1.0)
    np.maximum.at(best, fi[use], slack[use])
    out = np.where(best >= 0, np.minimum(access, np.floor(best * 100) / 100), 0.0)
    return out[rows]


def calibrate_by_departement(zones: pd.DataFrame, parameters: Parameters | None = None, *,
                             planning: np.ndarray | None = None) -> Calibration:
    """:func:`calibrate_supply` one planning département at a time (with the zones within
    the APL cutoff of it), so that the least-squares problems stay small on large builds.

    Each département's own communes take its fit; a neighbour outside every planning
    département takes the fit of the first (by code) département whose block holds it.
    The returned ``fitted_apl`` is recomputed over the whole instance.
    """
    p = parameters or Parameters()
    n = len(zones)
    planning = np.ones(n, dtype=bool) if planning is None else np.asarray(planning, dtype=bool)
    deps = zones["departement"].astype(str).to_numpy()
    codes = sorted(set(deps[planning]))
    if len(codes) <= 1:
        return calibrate_supply(zones, p, planning=planning)
    ids = pd.Index(zones["zone_id"].astype(str).to_numpy(), dtype=object)
    cutoff = max(upper for upper, _ in decay_steps(p.apl_decay))
    tt = TravelTimes.from_coordinates(ids, zones["lon"].to_numpy(), zones["lat"].to_numpy(),
                                      detour_factor=p.detour_factor, speed_kmh=p.speed_kmh,
                                      max_pairs=p.max_pairs)
    supply, access = np.zeros(n), np.zeros(n)
    assigned = np.zeros(n, dtype=bool)
    history: list[dict] = []
    for code in codes:
        own = planning & (deps == code)
        near = ids.isin(tt.pairs(ids[own], ids, cutoff)["to_id"].unique()) | own
        block = calibrate_supply(zones[near], p, planning=own[near])
        take = near & (own | (~planning & ~assigned))
        pos = np.flatnonzero(take)
        supply[pos] = block.supply.reindex(ids[pos]).to_numpy()
        access[pos] = block.access_minutes.reindex(ids[pos]).to_numpy()
        assigned |= take
        history += [{"departement": code, **h} for h in block.history[-1:]]
    fitted = _apl(zones, p, tt, ids, supply, access)
    official = pd.to_numeric(zones["apl_official"], errors="coerce").to_numpy(float)
    history.append({"iteration": "final", **_fit_stats(fitted, official, zones["population"].to_numpy(float),
                                                       planning, p.apl_threshold),
                    "supply_points": int((supply > 0).sum()), "mean_access_minutes": float(access.mean())})
    return Calibration(supply=pd.Series(supply, index=ids, name="supply"),
                       access_minutes=pd.Series(access, index=ids, name="access_minutes"),
                       fitted_apl=pd.Series(fitted, index=ids, name="apl"), history=history)


def _apl(zones, p: Parameters, tt: TravelTimes, ids: pd.Index, supply: np.ndarray,
         access: np.ndarray) -> np.ndarray:
    """APL of every zone for a supply per zone and access minutes (same rules as calibrate_supply)."""
    n = len(ids)
    cutoff = max(upper for upper, _ in decay_steps(p.apl_decay))
    population = zones["population"].to_numpy(float)
    demand = population
    if "population_standardised" in zones:
        std = pd.to_numeric(zones["population_standardised"], errors="coerce").to_numpy(float)
        demand = np.where(np.isnan(std), population, std)
    pairs = tt.pairs(ids, ids, cutoff)
    pairs = pairs[pairs["from_id"] != pairs["to_id"]]
    fi, ti = ids.get_indexer(pairs["from_id"]), ids.get_indexer(pairs["to_id"])
    w = decay_weight(pairs["minutes"].to_numpy(float) + access[fi] + access[ti], p.apl_decay)
    keep = w > 0
    diag = np.arange(n)
    W = sp.csr_matrix((np.r_[w[keep], np.ones(n)], (np.r_[fi[keep], diag], np.r_[ti[keep], diag])), shape=(n, n))
    D = np.asarray(W.T @ demand).ravel()
    inv = np.zeros(n)
    np.divide(1.0, D, out=inv, where=D > 0)
    return np.asarray(W @ (supply * inv)).ravel()


def calibrated_practices(zones: pd.DataFrame, calibration: Calibration,
                         parameters: Parameters | None = None) -> pd.DataFrame:
    """One practice per commune with calibrated supply: FTE = consultations / per-FTE capacity.

    The per-FTE capacity is the model's own (days_per_fte x consultations_per_day_liberal x
    working_weeks, 5,520 at the defaults), so that the practices' capacity in every model
    equals the calibrated activity. FTE are rounded to 0.001.
    """
    p = parameters or Parameters()
    per_fte = p.days_per_fte * p.consultations_per_day_liberal * p.working_weeks
    names = dict(zip(zones["zone_id"].astype(str), zones["name"]))
    s = calibration.supply[calibration.supply > 0]
    fte = np.round(s.to_numpy() / per_fte, 3)
    frame = pd.DataFrame({"practice_id": ["MG-" + z for z in s.index], "zone_id": list(s.index),
                          "name": [f"GPs of {names[z]} (calibrated to the DREES APL 2023)" for z in s.index],
                          "physicians": fte})
    frame = frame[frame["physicians"] > 0]
    return frame.sort_values("practice_id", kind="stable").reset_index(drop=True)
