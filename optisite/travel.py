"""Travel times between zones: from a user's distancier or from coordinates.

Sites and practices take the times of the zone they stand in, so every question
the models ask is about zone pairs. Pairs are only ever materialised under a
cutoff: computed times use a k-d tree on the unit sphere, never a dense matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .errors import InputError

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius

PAIR_COLUMNS = ["from_id", "to_id", "minutes"]


def great_circle_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Haversine distance in km between arrays of WGS84 points (degrees)."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(a, dtype=float)) for a in (lon1, lat1, lon2, lat2))
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _unit_vectors(lon, lat) -> np.ndarray:
    lon = np.radians(np.asarray(lon, dtype=float))
    lat = np.radians(np.asarray(lat, dtype=float))
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


class TravelTimes:
    """Minutes between zones, queried sparsely under a cutoff.

    Built either from a long table (``from_table``) in which an absent pair is
    unreachable, or from zone coordinates (``from_coordinates``) as great-circle
    distance x detour factor / speed. Time within one zone is 0 in both cases.
    """

    def __init__(self, zone_ids: pd.Index, *, table: pd.DataFrame | None = None,
                 lon=None, lat=None, detour_factor: float = 1.3, speed_kmh: float = 60.0,
                 max_pairs: float = 5e7, access_minutes=None):
        self.zone_ids = pd.Index(zone_ids, dtype=object)
        self.max_pairs = int(max_pairs)
        self.detour_factor = float(detour_factor)
        self.speed_kmh = float(speed_kmh)
        if table is not None:
            self.kind = "table"
            t = table[PAIR_COLUMNS].copy()
            t = t[t["from_id"] != t["to_id"]]
            self._table = t.reset_index(drop=True)
            self._lookup = pd.Series(
                self._table["minutes"].to_numpy(float),
                index=pd.MultiIndex.from_arrays([self._table["from_id"], self._table["to_id"]]),
            )
        else:
            self.kind = "computed"
            self._lon = np.asarray(lon, dtype=float)
            self._lat = np.asarray(lat, dtype=float)
            if self._lon.shape != (len(self.zone_ids),) or self._lat.shape != (len(self.zone_ids),):
                raise ValueError("lon and lat must give one value per zone id")
            if not (np.isfinite(self._lon).all() and np.isfinite(self._lat).all()):
                raise ValueError("every zone needs finite lon and lat to compute travel times")
            self._xyz = _unit_vectors(self._lon, self._lat)
            self._pos = pd.Series(np.arange(len(self.zone_ids)), index=self.zone_ids)
            # Minutes added at each end of a trip between two distinct zones (the zones
            # table's optional access_minutes, e.g. fitted to the DREES APL by the builder).
            access = np.zeros(len(self.zone_ids)) if access_minutes is None else \
                np.nan_to_num(np.asarray(access_minutes, dtype=float), nan=0.0)
            if access.shape != (len(self.zone_ids),) or (access < 0).any() or not np.isfinite(access).all():
                raise ValueError("access_minutes must give one finite non-negative value per zone id")
            self._access = access

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_table(cls, zone_ids, table: pd.DataFrame, *, symmetric: bool = False,
                   max_pairs: float = 5e7) -> "TravelTimes":
        if symmetric:
            reverse = table.rename(columns={"from_id": "to_id", "to_id": "from_id"})
            table = pd.concat([table, reverse], ignore_index=True)
            # A pair given both ways keeps the time given in its own direction.
            table = table.drop_duplicates(["from_id", "to_id"], keep="first")
        return cls(zone_ids, table=table, max_pairs=max_pairs)

    @classmethod
    def from_coordinates(cls, zone_ids, lon, lat, *, detour_factor: float, speed_kmh: float,
                         max_pairs: float = 5e7, access_minutes=None) -> "TravelTimes":
        """Great-circle km x detour / speed, plus each end's ``access_minutes`` (default 0)."""
        return cls(zone_ids, lon=lon, lat=lat, detour_factor=detour_factor,
                   speed_kmh=speed_kmh, max_pairs=max_pairs, access_minutes=access_minutes)

    def describe(self) -> str:
        if self.kind == "table":
            return f"user travel table ({len(self._table):,} pairs; absent pairs unreachable)"
        text = f"great-circle distance x {self.detour_factor:g} / {self.speed_kmh:g} km/h"
        if self._access.any():
            text += (f" + access minutes at each end (zones column access_minutes, mean "
                     f"{self._access.mean():.2f}, max {self._access.max():.1f})")
        return text + " (no travel table)"

    # -- queries ----------------------------------------------------------------------
    def pairs(self, origins, destinations, cutoff: float) -> pd.DataFrame:
        """All (origin zone, destination zone, minutes) with minutes <= cutoff.

        ``origins`` and ``destinations`` are zone ids (duplicates are ignored).
        The result is sorted by (from_id, to_id) and includes same-zone pairs at 0.
        """
        o = pd.Index(pd.unique(pd.Index(origins, dtype=object)))
        d = pd.Index(pd.unique(pd.Index(destinations, dtype=object)))
        if len(o) == 0 or len(d) == 0:
            return pd.DataFrame({"from_id": pd.Series(dtype=object), "to_id": pd.Series(dtype=object),
                                 "minutes": pd.Series(dtype=float)})
        self._check_known(o)
        self._check_known(d)
        if self.kind == "table":
            t = self._table
            t = t[t["from_id"].isin(o) & t["to_id"].isin(d) & (t["minutes"] <= cutoff)]
            same = o.intersection(d)
            out = pd.concat(
                [t, pd.DataFrame({"from_id": same, "to_id": same, "minutes": 0.0})],
                ignore_index=True,
            )
        else:
            out = self._computed_pairs(o, d, cutoff)
        self._refuse_if_too_many(len(out), cutoff)
        return out.sort_values(["from_id", "to_id"], kind="stable").reset_index(drop=True)

    def minutes(self, from_ids, to_ids) -> np.ndarray:
        """Pointwise minutes for aligned arrays of zone ids; inf where unreachable."""
        f = pd.Index(from_ids, dtype=object)
        t = pd.Index(to_ids, dtype=object)
        if len(f) != len(t):
            raise ValueError("from_ids and to_ids must have the same length")
        self._check_known(f)
        self._check_known(t)
        same = np.asarray(f == t)
        if self.kind == "table":
            key = pd.MultiIndex.from_arrays([f, t])
            out = self._lookup.reindex(key).to_numpy(float)
            out = np.where(np.isnan(out), np.inf, out)
        else:
            i = self._pos.reindex(f).to_numpy()
            j = self._pos.reindex(t).to_numpy()
            km = great_circle_km(self._lon[i], self._lat[i], self._lon[j], self._lat[j])
            out = km * self.detour_factor / self.speed_kmh * 60.0 + self._access[i] + self._access[j]
        return np.where(same, 0.0, out)

    # -- internals ------------------------------------------------------------------------
    def _check_known(self, ids: pd.Index) -> None:
        unknown = ids.difference(self.zone_ids)
        if len(unknown):
            raise KeyError(f"not zone ids of this instance: {', '.join(map(str, unknown[:5]))}")

    def _computed_pairs(self, o: pd.Index, d: pd.Index, cutoff: float) -> pd.DataFrame:
        io_ = self._pos.reindex(o).to_numpy()
        id_ = self._pos.reindex(d).to_numpy()
        km = cutoff * self.speed_kmh / 60.0 / self.detour_factor
        angle = min(km / EARTH_RADIUS_KM, np.pi)
        chord = 2.0 * np.sin(angle / 2.0) * (1 + 1e-12)  # tiny slack; exact filter below
        ta, tb = cKDTree(self._xyz[io_]), cKDTree(self._xyz[id_])
        count = int(ta.count_neighbors(tb, chord))
        self._refuse_if_too_many(count, cutoff)
        # 'ndarray' output keeps zero distances (two zones on one point), unlike sparse types.
        m = ta.sparse_distance_matrix(tb, chord, output_type="ndarray")
        a, b = m["i"].astype(np.int64), m["j"].astype(np.int64)
        ia, ib = io_[a], id_[b]
        minutes = great_circle_km(self._lon[ia], self._lat[ia], self._lon[ib], self._lat[ib])
        minutes = minutes * self.detour_factor / self.speed_kmh * 60.0 + self._access[ia] + self._access[ib]
        minutes = np.where(ia == ib, 0.0, minutes)
        out = pd.DataFrame({"from_id": o.to_numpy()[a], "to_id": d.to_numpy()[b], "minutes": minutes})
        out = out[out["minutes"] <= cutoff].drop_duplicates(["from_id", "to_id"])
        return out

    def _refuse_if_too_many(self, count: int, cutoff: float) -> None:
        if count > self.max_pairs:
            raise InputError(
                f"{count:,} reachable pairs under {cutoff:g} minutes exceed the limit of "
                f"{self.max_pairs:,}",
                file="instance.toml", column="max_pairs",
                fix="lower the cutoffs, split the territory, or raise max_pairs if the "
                "machine has the memory (about 24 bytes a pair)",
            )
